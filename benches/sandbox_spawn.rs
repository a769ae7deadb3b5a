//! Sandbox spawn latency: spawn → entry point running → exit, with the full
//! lock-down (user/mount/PID/net/IPC/UTS/cgroup namespaces, tmpfs root +
//! pivot_root, capabilities dropped, no_new_privs, Landlock ABI 6, seccomp,
//! restricted ring), against `bwrap --unshare-all --die-with-parent
//! --ro-bind / / true` and `unshare -Urmnpf --mount-proc true`, in the same
//! run. Medians and p90 of N runs each (N = $SANDBOX_SPAWN_RUNS, default 200).
//!
//! Two rounds: *back to back* (the next spawn starts as soon as the previous
//! one exited, so each pays for the kernel's asynchronous tear-down of the
//! previous namespaces and, for luring, for preparing the next warm PID 1:
//! a throughput-bound latency on 2 vCPUs), and *isolated* (a 20 ms idle gap
//! before each spawn, the same for all three tools: the latency of one spawn
//! on a quiet machine).
//!
//! Run with `benches/sandbox_spawn.sh` (installs bubblewrap if missing) or
//! `cargo bench --bench sandbox_spawn`.

use luring_sandbox::{register_entry, EntryContext, SandboxSpec, Supervisor};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn noop(_: EntryContext) -> i32 {
    0
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]))
}

/// Idle time before each spawn in the isolated round.
const GAP: Duration = Duration::from_millis(20);

fn run_cmd(argv: &[&str], n: usize, gap: Option<Duration>) -> Option<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 5 {
        if let Some(g) = gap {
            std::thread::sleep(g);
        }
        let t = Instant::now();
        let st = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        let d = t.elapsed();
        if !st.success() {
            return None;
        }
        if i >= 5 {
            out.push(d);
        }
    }
    Some(out)
}

fn main() {
    register_entry("noop", noop).expect("register");
    let sv = Supervisor::start().expect("supervisor");
    let n: usize = std::env::var("SANDBOX_SPAWN_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
        .max(50);

    let spec = SandboxSpec::default();
    println!(
        "sandbox_spawn: {n} runs each, kernel {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    let enf = {
        let h = sv.spawn("noop", b"", &spec).expect("spawn");
        *h.enforcement()
    };
    println!("  enforcement: {enf:?}");
    for (round, gap) in [
        ("back to back", None),
        ("isolated (20 ms idle before each)", Some(GAP)),
    ] {
        println!("{round}:");
        let mut ours = Vec::with_capacity(n);
        let mut ready = Vec::with_capacity(n);
        for i in 0..n + 5 {
            if let Some(g) = gap {
                std::thread::sleep(g);
            }
            let t = Instant::now();
            let mut h = sv.spawn("noop", b"", &spec).expect("spawn");
            let r = t.elapsed();
            let st = h.wait().expect("wait");
            let d = t.elapsed();
            assert_eq!(st, luring_sandbox::ExitStatus::Exited(0));
            if i >= 5 {
                ours.push(d);
                ready.push(r);
            }
        }
        let (m, p90) = stats(ours);
        let (rm, rp90) = stats(ready);
        println!("  luring-sandbox spawn->exit   median {m:.3} ms  p90 {p90:.3} ms");
        println!("  luring-sandbox spawn returns median {rm:.3} ms  p90 {rp90:.3} ms (locked down, entry being forked)");
        let bwrap = run_cmd(
            &[
                "bwrap",
                "--unshare-all",
                "--die-with-parent",
                "--ro-bind",
                "/",
                "/",
                "true",
            ],
            n,
            gap,
        );
        match bwrap {
            Some(v) => {
                let (bm, bp) = stats(v);
                println!("  bwrap --unshare-all ... true median {bm:.3} ms  p90 {bp:.3} ms");
                println!("  ratio luring/bwrap: {:.2}x", m / bm);
            }
            None => println!(
                "  bwrap: not available (run benches/sandbox_spawn.sh to install bubblewrap)"
            ),
        }
        match run_cmd(&["unshare", "-Urmnpf", "--mount-proc", "true"], n, gap) {
            Some(v) => {
                let (um, up) = stats(v);
                println!("  unshare -Urmnpf --mount-proc true median {um:.3} ms  p90 {up:.3} ms");
                println!("  ratio luring/unshare: {:.2}x", m / um);
            }
            None => println!("  unshare: not available"),
        }
    }
}
