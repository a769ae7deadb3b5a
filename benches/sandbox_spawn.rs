//! Sandbox spawn latency: spawn → entry point running → exit, with the full
//! lock-down (user/mount/PID/net/IPC/UTS/cgroup namespaces, tmpfs root +
//! pivot_root, capabilities dropped, no_new_privs, Landlock ABI 6, seccomp,
//! restricted ring), against `bwrap --unshare-all --die-with-parent
//! --ro-bind / / true` and `unshare -Urmnpf --mount-proc true`, in the same
//! run. Medians and p90 of N runs each (N = $SANDBOX_SPAWN_RUNS, default 200).
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

fn run_cmd(argv: &[&str], n: usize) -> Option<Vec<Duration>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 5 {
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
    let mut ours = Vec::with_capacity(n);
    let mut ready = Vec::with_capacity(n);
    for i in 0..n + 5 {
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
    let enf = {
        let h = sv.spawn("noop", b"", &spec).expect("spawn");
        *h.enforcement()
    };
    let (m, p90) = stats(ours);
    let (rm, rp90) = stats(ready);
    println!(
        "sandbox_spawn: {n} runs each, kernel {}",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );
    println!("  enforcement: {enf:?}");
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
    );
    match bwrap {
        Some(v) => {
            let (bm, bp) = stats(v);
            println!("  bwrap --unshare-all ... true median {bm:.3} ms  p90 {bp:.3} ms");
            println!("  ratio luring/bwrap: {:.2}x", m / bm);
        }
        None => {
            println!("  bwrap: not available (run benches/sandbox_spawn.sh to install bubblewrap)")
        }
    }
    match run_cmd(&["unshare", "-Urmnpf", "--mount-proc", "true"], n) {
        Some(v) => {
            let (um, up) = stats(v);
            println!("  unshare -Urmnpf --mount-proc true median {um:.3} ms  p90 {up:.3} ms");
            println!("  ratio luring/unshare: {:.2}x", m / um);
        }
        None => println!("  unshare: not available"),
    }
}
