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
//! Each round also prints luring's CPU time per spawn: this process's
//! user + system time plus the supervisor's, including every sandbox it
//! reaped (`/proc/PID/stat` utime, stime, cutime, cstime; clock-tick
//! resolution, so ±10 ms over the round). Kernel work done later in
//! kworkers (network namespace and ring tear-down) is not in it. It varies
//! less with other load than the latency does.
//!
//! `SANDBOX_SPAWN_LURING_ONLY=1` skips bwrap and unshare, so that
//! `perf stat -e task-clock` over the bench counts luring's processes only
//! (to compare two builds' CPU cost per spawn).
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

/// CPU time so far of this process (not of its reaped children: those are
/// bwrap and unshare) and of the supervisor `sv_pid` with every sandbox it
/// reaped.
fn luring_cpu(sv_pid: i32) -> Duration {
    let ticks = |path: &str, fields: &[usize]| -> u64 {
        let stat = std::fs::read_to_string(path).unwrap_or_default();
        // Fields are counted from 1; the command name (field 2) may hold
        // spaces, so count from the state (field 3) after its ')'.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        fields
            .iter()
            .filter_map(|i| f.get(i - 3)?.parse::<u64>().ok())
            .sum()
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let t = ticks("/proc/self/stat", &[14, 15])
        + ticks(&format!("/proc/{sv_pid}/stat"), &[14, 15, 16, 17]);
    Duration::from_secs_f64(t as f64 / hz)
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

    let luring_only = std::env::var_os("SANDBOX_SPAWN_LURING_ONLY").is_some_and(|v| v == "1");
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
        let mut cpu_start = Duration::ZERO;
        for i in 0..n + 5 {
            if i == 5 {
                cpu_start = luring_cpu(sv.pid());
            }
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
        let cpu = luring_cpu(sv.pid()).saturating_sub(cpu_start);
        let (m, p90) = stats(ours);
        let (rm, rp90) = stats(ready);
        println!("  luring-sandbox spawn->exit   median {m:.3} ms  p90 {p90:.3} ms");
        println!("  luring-sandbox spawn returns median {rm:.3} ms  p90 {rp90:.3} ms (locked down, entry being forked)");
        println!(
            "  luring-sandbox CPU per spawn {:.3} ms (host + supervisor + sandboxes)",
            cpu.as_secs_f64() * 1e3 / n as f64
        );
        if luring_only {
            continue;
        }
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
