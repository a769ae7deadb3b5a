//! Round trips with a sandboxed actor, with and without a file descriptor
//! in the message (benches/lua/sandbox_fd.lua), in one run, the kinds
//! alternated (A/B/C) so that noise on a shared machine hits them alike:
//!
//! | kind | what one round trip does |
//! |---|---|
//! | plain | `ch:send{ n = i, reply = inbox }`, the sandbox replies |
//! | fd | the same with one pipe end: the host's ring installs it in the sandbox's table (`MSG_RING` send-fd), the sandbox closes it (clears the slot) |
//! | fd_back | the sandbox also sends it back: `FIXED_FD_INSTALL`, ring `SENDMSG` with `SCM_RIGHTS`, the host gets a `file_descriptor` and closes it |
//!
//! The reference is `plain` in the same run (ratios printed). Medians of
//! RUNS runs (LURING_BENCH_RUNS, default 5).
//!
//! Run: `cargo bench --bench sandbox_fd` or `cargo bench --bench sandbox_fd -- N`
//! (N round trips per run and kind, default 2,000).

use std::path::Path;
use std::process::Command;

fn round_trip_ns(n: &str, kind: &str) -> f64 {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/lua/sandbox_fd.lua");
    let out = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(script)
        .args([n, kind])
        .output()
        .expect("luring runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{kind} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_op"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ns_per_op in {stdout:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000);
    let runs: usize = std::env::var("LURING_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let ns = n.to_string();
    let kinds = ["plain", "fd", "fd_back"];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    for _ in 0..runs {
        for (k, kind) in kinds.iter().enumerate() {
            results[k].push(round_trip_ns(&ns, kind));
        }
    }
    let medians: Vec<f64> = results.into_iter().map(median).collect();
    println!("sandboxed round trips, {n} per run, median of {runs} runs (2 shared vCPUs: noisy)");
    for (kind, m) in kinds.iter().zip(&medians) {
        println!(
            "  {kind:8} {:10.1} us/round trip   x{:.2} of plain",
            m / 1000.0,
            m / medians[0]
        );
    }
}
