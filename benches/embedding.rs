//! Embedding round trip: Rust sends a number to an in-process Lua echo
//! actor and waits for the answer on a Rust `Mailbox` (blocking API), N
//! times (default 100,000), against a crossbeam-channel ping-pong between
//! two threads in the same run (the reference). Runs alternate A/B, 5 of
//! each; medians are printed with their ratio.
//!
//! Run: `cargo bench --bench embedding` or `cargo bench --bench embedding -- N`.
//! The message is the round trip's number (crossbeam sends a `u32`); with
//! `LURING_BENCH_PAYLOAD=string` a one-byte string, with `=table` a
//! one-element array table instead (numbers and booleans from Rust travel
//! with the actor's wake-up; other values take the general path).

use std::time::{Duration, Instant};

use luring::{ActorSpec, Message, Runtime};

const ECHO: &str = "local inbox = require 'inbox'
local reply = inbox:receive()
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  reply:send(m)
end";

/// What the messages are (module doc).
#[derive(Clone, Copy)]
enum Payload {
    Number,
    String,
    Table,
}

impl Payload {
    fn from_env() -> Payload {
        match std::env::var("LURING_BENCH_PAYLOAD").as_deref() {
            Ok("string") => Payload::String,
            Ok("table") => Payload::Table,
            _ => Payload::Number,
        }
    }

    /// The message of round trip `i`.
    fn message(self, i: u32) -> Message {
        match self {
            Payload::Number => Message::from(i),
            Payload::String => Message::from("x"),
            Payload::Table => Message::from(vec![Message::from(i)]),
        }
    }
}

fn luring_round_trips(rt: &Runtime, n: u32, payload: Payload) -> Duration {
    let replies = rt.mailbox();
    let echo = rt.spawn(ActorSpec::source("echo.lua", ECHO)).unwrap();
    echo.send(replies.address().into()).unwrap();
    // Warm-up (the actor's thread starts, the JIT compiles the loop).
    for i in 0..1000 {
        echo.send(payload.message(i)).unwrap();
        replies.recv().unwrap();
    }
    let start = Instant::now();
    for i in 0..n {
        echo.send(payload.message(i)).unwrap();
        let m = replies.recv().unwrap();
        if let Payload::Number = payload {
            debug_assert_eq!(m.as_number(), Some(f64::from(i)));
        }
    }
    start.elapsed()
}

fn crossbeam_round_trips(n: u32) -> Duration {
    let (to_echo, echo_in) = crossbeam_channel::unbounded::<u32>();
    let (to_main, main_in) = crossbeam_channel::unbounded::<u32>();
    let echo = std::thread::spawn(move || {
        while let Ok(x) = echo_in.recv() {
            if to_main.send(x).is_err() {
                break;
            }
        }
    });
    for i in 0..1000 {
        to_echo.send(i).unwrap();
        main_in.recv().unwrap();
    }
    let start = Instant::now();
    for i in 0..n {
        to_echo.send(i).unwrap();
        assert_eq!(main_in.recv().unwrap(), i);
    }
    let elapsed = start.elapsed();
    drop(to_echo);
    echo.join().unwrap();
    elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let payload = Payload::from_env();
    let rt = Runtime::builder().build().unwrap();
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        ours.push(luring_round_trips(&rt, n, payload).as_nanos() as f64 / f64::from(n));
        reference.push(crossbeam_round_trips(n).as_nanos() as f64 / f64::from(n));
    }
    let (a, b) = (median(ours.clone()), median(reference.clone()));
    println!("Rust -> Lua actor -> Rust round trip: median {a:.0} ns ({ours:.0?})");
    println!("crossbeam ping-pong between two threads: median {b:.0} ns ({reference:.0?})");
    println!(
        "ratio luring / crossbeam: {:.2}x ({n} round trips per run)",
        a / b
    );
}
