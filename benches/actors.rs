//! Actor benchmarks, each with a reference measured in the same run:
//!
//! | benchmark | luring | reference |
//! |---|---|---|
//! | ping-pong, same thread | 2 actors, N round trips (`send` + reply) | crossbeam-channel ping-pong between two threads |
//! | ping-pong, two threads | the echo actor on its own thread | the same crossbeam ping-pong |
//! | throughput | 1 actor on another thread sends N small tables (16 sending fibers) | crossbeam: N small owned values through an unbounded channel |
//! | wake-ups per message | eventfd writes (`LURING_REPORT_WAKEUPS`) / N in the throughput run | target ≤ 0.05 |
//! | spawn | `spawn_vm` + first round trip × N, same thread | — |
//! | RSS per idle actor | (peak RSS with N actors − with 1) / N | — |
//!
//! Medians of RUNS runs (LURING_BENCH_RUNS, default 5).
//!
//! Run: `cargo bench --bench actors` or `cargo bench --bench actors -- N`
//! (N round trips / messages, default 100,000; spawn uses N / 100, at least 10).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("benches/lua")
        .join(name)
}

/// Runs luring; returns (stdout, stderr, peak RSS in kB).
// The child is reaped by `wait4` (for its own rusage), not `Child::wait`.
#[allow(clippy::zombie_processes)]
fn luring(name: &str, args: &[&str], wakeups: bool) -> (String, String, i64) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_luring"));
    c.arg(script(name)).args(args);
    if wakeups {
        c.env("LURING_REPORT_WAKEUPS", "1");
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("luring runs");
    let (mut out, mut err) = (String::new(), String::new());
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain integers; all-zero is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the live locals; the
    // `Child` is not waited for again.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(
        pid > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{name} failed: {err}"
    );
    (out, err, usage.ru_maxrss)
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

fn crossbeam_ping_pong(n: u64) -> f64 {
    let (to_b, b_rx) = crossbeam_channel::bounded::<u64>(1);
    let (to_a, a_rx) = crossbeam_channel::bounded::<u64>(1);
    let echo = std::thread::spawn(move || {
        while let Ok(x) = b_rx.recv() {
            to_a.send(x).unwrap();
        }
    });
    let t0 = Instant::now();
    for i in 0..n {
        to_b.send(i).unwrap();
        a_rx.recv().unwrap();
    }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    drop(to_b);
    echo.join().unwrap();
    ns
}

fn crossbeam_throughput(n: u64) -> f64 {
    let (tx, rx) = crossbeam_channel::unbounded::<(u64, u64, String)>();
    let t0 = Instant::now();
    let sender = std::thread::spawn(move || {
        for i in 0..n {
            tx.send((i, i, "x".to_owned())).unwrap();
        }
    });
    for _ in 0..n {
        rx.recv().unwrap();
    }
    sender.join().unwrap();
    n as f64 / t0.elapsed().as_secs_f64()
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
    let ns = n.to_string();
    let spawn_n = (n / 100).max(10).to_string();

    let (mut same, mut threads, mut cb, mut tput, mut cb_tput, mut wake, mut spawn) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        same.push(value(
            &luring("actors_pingpong.lua", &[&ns], false).0,
            "ns_per_op",
        ));
        threads.push(value(
            &luring("actors_pingpong.lua", &[&ns, "thread"], false).0,
            "ns_per_op",
        ));
        cb.push(crossbeam_ping_pong(n));
        let (out, err, _) = luring("actors_throughput.lua", &[&ns], true);
        tput.push(value(&out, "msgs_per_s"));
        let wakeups: f64 = err
            .lines()
            .find_map(|l| l.strip_prefix("luring: ")?.split(' ').next()?.parse().ok())
            .expect("wake-up count");
        wake.push(wakeups / n as f64);
        cb_tput.push(crossbeam_throughput(n));
        spawn.push(value(
            &luring("actors_spawn.lua", &[&spawn_n], false).0,
            "ns_per_op",
        ));
    }
    // RSS: peak with 1 actor and with spawn_n alive.
    let (_, _, rss_one) = luring("actors_spawn.lua", &["1"], false);
    let (_, _, rss_many) = luring("actors_spawn.lua", &[&spawn_n], false);
    let per_actor_kb = (rss_many - rss_one) as f64 / (spawn_n.parse::<f64>().unwrap() - 1.0);

    let (same, threads, cb) = (median(same), median(threads), median(cb));
    println!("actors, medians of {runs} runs, N = {n}");
    println!("ping-pong same thread:  {:8.0} ns/round trip   (crossbeam 2 threads {:6.0} ns, ratio {:.2})", same, cb, same / cb);
    println!("ping-pong two threads:  {:8.0} ns/round trip   (crossbeam 2 threads {:6.0} ns, ratio {:.2})", threads, cb, threads / cb);
    println!("throughput other thread: {:8.0} msgs/s   (crossbeam {:.0} msgs/s); wake-ups per message {:.4}", median(tput), median(cb_tput), median(wake));
    println!(
        "spawn_vm + first round trip: {:8.0} ns/actor ({spawn_n} actors)",
        median(spawn)
    );
    println!("RSS per idle actor: {per_actor_kb:.0} kB ({spawn_n} alive)");
}
