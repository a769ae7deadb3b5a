//! Rust → sandboxed plugin → Rust round trip (blocking API): Rust sends a
//! number to a sandboxed Lua echo and waits for it on a `Mailbox`, N times
//! (default 20,000), against the same round trip with an in-process actor
//! in the same run (the reference). Runs alternate A/B, 5 of each
//! (LURING_BENCH_RUNS); per-round-trip medians are printed with their
//! ratio. The target (issue 11) is a median of at most 20 µs.
//!
//! Run: `cargo bench --bench embedding_sandboxed` or
//! `cargo bench --bench embedding_sandboxed -- N`.

use std::time::{Duration, Instant};

use luring::{ActorSpec, Message, Runtime, SandboxOptions};

const ECHO: &str = "local inbox = require 'inbox'
local reply = inbox:receive().reply
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  reply:send(m)
end";

fn round_trips(rt: &Runtime, n: u32, sandboxed: bool) -> Duration {
    let replies = rt.mailbox();
    let spec = ActorSpec::source("echo.lua", ECHO);
    let spec = if sandboxed {
        spec.sandbox(SandboxOptions::new()).replies_to(&replies)
    } else {
        spec
    };
    let echo = rt.spawn(spec).unwrap();
    echo.send(Message::object([("reply", replies.address().into())]))
        .unwrap();
    // Warm-up (the VM starts, the JIT compiles the loop).
    for i in 0..1000 {
        echo.send(Message::from(i)).unwrap();
        replies.recv().unwrap();
    }
    let start = Instant::now();
    for i in 0..n {
        echo.send(Message::from(i)).unwrap();
        replies.recv().unwrap();
    }
    let took = start.elapsed();
    if sandboxed {
        echo.kill().unwrap();
    }
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    luring::start_supervisor().expect("supervisor");
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let runs: usize = std::env::var("LURING_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = Runtime::builder().build().unwrap();
    let (mut sandboxed, mut local) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        sandboxed.push(round_trips(&rt, n, true).as_nanos() as f64 / f64::from(n));
        local.push(round_trips(&rt, n, false).as_nanos() as f64 / f64::from(n));
    }
    let (s, l) = (median(sandboxed), median(local));
    println!(
        "sandboxed round trip: median {:.2} µs ({runs} runs of {n})",
        s / 1000.0
    );
    println!("in-process round trip: median {:.2} µs", l / 1000.0);
    println!("ratio sandboxed / in-process: {:.1}x", s / l);
}
