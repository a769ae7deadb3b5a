//! Sandboxed actors from Lua (issue 10), each with a reference measured in
//! the same run:
//!
//! | benchmark | luring | reference |
//! |---|---|---|
//! | spawn + first round trip, back to back | `spawn_vm{ sandbox = {} }`, `send`, reply received; the sandbox is closed and its end awaited before the next | `bwrap --unshare-all --die-with-parent --ro-bind / / true` |
//! | the same, spaced | 20 ms idle before each spawn | the same bwrap, 20 ms apart |
//! | ping-pong | N round trips with a sandboxed echo actor | in-process echo actor on another thread (`inherit_context = false`) |
//!
//! Spawn: median (and p90) of SPAWNS spawns per run (env
//! `SANDBOXED_SPAWNS`, default 200); every figure is the median over RUNS
//! runs (`LURING_BENCH_RUNS`, default 5), luring and bwrap alternating.
//! The luring figure includes what bwrap does not do: the Lua VM's start
//! in the sandbox and a message each way.
//!
//! Run: `cargo bench --bench sandboxed_actor` or `... -- N` (round trips,
//! default 100,000). bwrap is skipped (with a note) when not installed:
//! `apt-get install -y bubblewrap`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/lua")
        .join(name)
}

/// Runs a bench script with the luring binary; returns its stdout.
fn luring(name: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(script(name))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("luring runs");
    assert!(out.status.success(), "{name} failed: {}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

fn value(out: &str, key: &str) -> f64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {out:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

const BWRAP: &[&str] = &[
    "bwrap",
    "--unshare-all",
    "--die-with-parent",
    "--ro-bind",
    "/",
    "/",
    "true",
];

/// bwrap `n` times (after 5 warm-ups), `gap` idle before each: (median,
/// p90) in ms, or `None` when bwrap does not run here.
fn bwrap(n: usize, gap: Option<Duration>) -> Option<(f64, f64)> {
    let mut v = Vec::with_capacity(n);
    for i in 0..n + 5 {
        if let Some(g) = gap {
            std::thread::sleep(g);
        }
        let t = Instant::now();
        let ok = Command::new(BWRAP[0])
            .args(&BWRAP[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        if i >= 5 {
            v.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some((v[v.len() / 2], v[v.len() * 9 / 10]))
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100_000);
    let runs: usize = std::env::var("LURING_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let spawns: usize = std::env::var("SANDBOXED_SPAWNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (ns, spawns_s) = (n.to_string(), spawns.to_string());
    let gap = Some(Duration::from_millis(20));

    let mut rows: Vec<(&str, Vec<f64>)> = [
        "luring b2b median",
        "luring b2b p90",
        "bwrap b2b median",
        "bwrap b2b p90",
        "luring spaced median",
        "luring spaced p90",
        "bwrap spaced median",
        "bwrap spaced p90",
        "ping-pong sandboxed ns",
        "ping-pong in-process ns",
    ]
    .into_iter()
    .map(|k| (k, Vec::new()))
    .collect();
    let mut push = |k: &str, v: f64| {
        rows.iter_mut()
            .find(|(name, _)| *name == k)
            .unwrap()
            .1
            .push(v);
    };
    let mut have_bwrap = true;
    for _ in 0..runs {
        let out = luring("sandbox_spawn_rt.lua", &[&spawns_s]);
        push("luring b2b median", value(&out, "median_ms"));
        push("luring b2b p90", value(&out, "p90_ms"));
        if let Some((m, p)) = bwrap(spawns, None) {
            push("bwrap b2b median", m);
            push("bwrap b2b p90", p);
        } else {
            have_bwrap = false;
        }
        let out = luring("sandbox_spawn_rt.lua", &[&spawns_s, "spaced"]);
        push("luring spaced median", value(&out, "median_ms"));
        push("luring spaced p90", value(&out, "p90_ms"));
        if let Some((m, p)) = bwrap(spawns, gap) {
            push("bwrap spaced median", m);
            push("bwrap spaced p90", p);
        }
        push(
            "ping-pong sandboxed ns",
            value(&luring("sandbox_pingpong.lua", &[&ns]), "ns_per_op"),
        );
        push(
            "ping-pong in-process ns",
            value(
                &luring("actors_pingpong.lua", &[&ns, "thread"]),
                "ns_per_op",
            ),
        );
    }
    let get = |k: &str| {
        let v = &rows.iter().find(|(name, _)| *name == k).unwrap().1;
        (!v.is_empty()).then(|| median(v.clone()))
    };
    println!(
        "sandboxed actors, medians of {runs} runs; spawn: {spawns} per run; ping-pong: N = {n}"
    );
    for round in ["b2b", "spaced"] {
        let l = get(&format!("luring {round} median")).unwrap();
        let lp = get(&format!("luring {round} p90")).unwrap();
        print!("spawn + first round trip, {round}: luring {l:.2} ms (p90 {lp:.2})");
        match (
            get(&format!("bwrap {round} median")),
            get(&format!("bwrap {round} p90")),
        ) {
            (Some(b), Some(bp)) => {
                println!("; bwrap {b:.2} ms (p90 {bp:.2}); ratio {:.2}", l / b)
            }
            _ => println!("; bwrap not available"),
        }
    }
    if !have_bwrap {
        println!("(bwrap did not run: apt-get install -y bubblewrap)");
    }
    let s = get("ping-pong sandboxed ns").unwrap();
    let i = get("ping-pong in-process ns").unwrap();
    println!(
        "ping-pong: sandboxed {:.2} µs/round trip; in-process actor on another thread {:.2} µs; ratio {:.1}",
        s / 1e3,
        i / 1e3,
        s / i
    );
}
