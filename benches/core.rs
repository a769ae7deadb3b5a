//! Runtime core benchmarks, each against a reference measured in the same run:
//!
//! | benchmark            | luring                          | reference                         |
//! |----------------------|---------------------------------|-----------------------------------|
//! | spawn+join (seq)     | `spawn(f):join()` × N           | `resume(create(f))` × N, raw LuaJIT |
//! | spawn+join (batch)   | N spawns, then N joins          | N creates, then N resumes         |
//! | spawn+join (closures) | the same, each fiber its own closure (captures its index, returns it); peak RSS is the memory per live fiber | the same with coroutines |
//! | yield                | `this_fiber.yield()` × N, 2 fibers | `coroutine.yield()`+resume × N; and the same resumed from Rust through mlua's `Thread::resume` (the design not taken) |
//! | sleep(0)             | `time.sleep(0)` × N, one fiber (each wakes on an IORING_OP_NOP the scheduler submits per turn for all its sleep(0) waiters; ≤ 1 syscall per sleep, strace count printed) | raw io_uring NOP round trips; and raw TIMEOUT(0) round trips (what sleep(0) cost before) |
//! | startup              | `luring empty.lua`              | a process running an empty script in raw LuaJIT |
//! | waiters (mutex)      | 40k fibers blocked on one mutex, from the unlock until all had it | 40k suspended coroutines resumed from an array |
//! | waiters (timer)      | 40k fibers in one `steady_timer:wait()` (they share one kernel timeout), from the expiry until all woke | same |
//!
//! The reference LuaJIT is the same vendored build luring links (this binary
//! re-executes itself with `--raw-lua`), so each process's peak RSS is its
//! own. Reports medians of RUNS runs and the ratio luring / reference.
//!
//! Run: `cargo bench --bench core` (set LURING_BENCH_RUNS to change the number
//! of runs, default 7).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

// build.rs links every target of the package with
// `--wrap=lj_vm_cpuid` (src/actor/cpuid.rs caches the answers). This bench
// links LuaJIT without the luring library: its raw reference keeps
// LuaJIT's own probe, so the wrapper hands each call straight through.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod plain_cpuid {
    unsafe extern "C" {
        fn __real_lj_vm_cpuid(f: u32, res: *mut u32) -> std::ffi::c_int;
    }

    /// # Safety
    /// As LuaJIT's `lj_vm_cpuid`: `res` points to four writable words.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn __wrap_lj_vm_cpuid(f: u32, res: *mut u32) -> std::ffi::c_int {
        // SAFETY: the caller's contract is the real probe's.
        unsafe { __real_lj_vm_cpuid(f, res) }
    }
}

fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/lua")
}

/// `--raw-lua SCRIPT ARGS...`: run SCRIPT in a plain LuaJIT VM.
fn raw_lua(script: &str, args: &[String]) {
    let lua = mlua::Lua::new();
    let g = lua.globals();
    g.set(
        "ARGS",
        lua.create_sequence_from(args.iter().cloned()).unwrap(),
    )
    .unwrap();
    let start = Instant::now();
    g.set(
        "now_ns",
        lua.create_function(move |_, ()| Ok(start.elapsed().as_nanos() as f64))
            .unwrap(),
    )
    .unwrap();
    let src = std::fs::read_to_string(script).expect("bench script");
    lua.load(src)
        .set_name(script)
        .exec()
        .expect("raw script runs");
}

/// `--mlua-thread-yield N`: the alternative design luring did not take:
/// a scheduler in Rust resuming a fiber through mlua's `Thread::resume`,
/// N times (each one resume from Rust plus one `coroutine.yield()`).
fn mlua_thread_yield(n: u64) {
    let lua = mlua::Lua::new();
    let f: mlua::Function = lua
        .load("return function() while true do coroutine.yield() end end")
        .eval()
        .unwrap();
    let thread = lua.create_thread(f).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        thread.resume::<()>(()).unwrap();
    }
    println!("ns_per_op {}", start.elapsed().as_nanos() as f64 / n as f64);
}

/// `--raw-ring-sleep0 N`: N IORING_OP_TIMEOUT(0) round trips, one
/// `submit_and_wait(1)` each, with the io-uring crate directly.
fn raw_ring_sleep0(n: u64) {
    use io_uring::{opcode, types, IoUring};
    let mut ring = IoUring::new(256).expect("ring");
    let ts = types::Timespec::new();
    let start = Instant::now();
    for i in 0..n {
        let sqe = opcode::Timeout::new(&ts).build().user_data(i);
        // SAFETY: `ts` outlives the operation, which completes before the
        // next iteration.
        unsafe { ring.submission().push(&sqe).expect("sq has room") };
        ring.submit_and_wait(1).expect("enter");
        let cqe = ring.completion().next().expect("one completion");
        assert_eq!(cqe.result(), -libc::ETIME);
    }
    println!("ns_per_op {}", start.elapsed().as_nanos() as f64 / n as f64);
}

/// `--raw-ring-nop N`: N IORING_OP_NOP round trips, one `submit_and_wait(1)`
/// each: the floor for a `time.sleep(0)` that arms no timer.
fn raw_ring_nop(n: u64) {
    use io_uring::{opcode, IoUring};
    let mut ring = IoUring::new(256).expect("ring");
    let start = Instant::now();
    for i in 0..n {
        let sqe = opcode::Nop::new().build().user_data(i);
        // SAFETY: a NOP carries no pointer.
        unsafe { ring.submission().push(&sqe).expect("sq has room") };
        ring.submit_and_wait(1).expect("enter");
        let cqe = ring.completion().next().expect("one completion");
        assert_eq!(cqe.result(), 0);
    }
    println!("ns_per_op {}", start.elapsed().as_nanos() as f64 / n as f64);
}

struct Run {
    value: f64,
    wall_ms: f64,
    max_rss_kb: i64,
}

/// Runs a command, returns its `ns_per_op` line (if any), wall time and
/// peak RSS (from wait4's rusage).
// The child is reaped by wait4 (for its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Run {
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    let t0 = Instant::now();
    let mut child = cmd.spawn().expect("bench child starts");
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child; `status` and `usage` are live locals.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    assert_eq!(pid, child.id() as i32, "wait4");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "bench child failed: {cmd:?}\n{out}"
    );
    let value = out
        .lines()
        .find_map(|l| l.strip_prefix("ns_per_op"))
        .map(|v| v.trim().parse::<f64>().expect("number"))
        .unwrap_or(f64::NAN);
    Run {
        value,
        wall_ms,
        max_rss_kb: usage.ru_maxrss,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Stats {
    value: f64,
    wall_ms: f64,
    rss_mb: f64,
}

fn repeat(runs: usize, mut make: impl FnMut() -> Command) -> Stats {
    let results: Vec<Run> = (0..runs).map(|_| measure(&mut make())).collect();
    Stats {
        value: median(results.iter().map(|r| r.value).collect()),
        wall_ms: median(results.iter().map(|r| r.wall_ms).collect()),
        rss_mb: median(
            results
                .iter()
                .map(|r| r.max_rss_kb as f64 / 1024.0)
                .collect(),
        ),
    }
}

fn luring(script: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_luring"));
    c.arg(bench_dir().join(script)).args(args);
    c
}

fn reference(mode: &str, args: &[&str]) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.arg(mode).args(args);
    c
}

fn raw(script: &str, args: &[&str]) -> Command {
    let mut c = reference("--raw-lua", &[]);
    c.arg(bench_dir().join(script)).args(args);
    c
}

/// Syscalls a command makes, counted by `strace -c -f` (None if strace is
/// missing).
fn syscalls(cmd: Command) -> Option<u64> {
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let out = Command::new("strace")
        .args(["-f", "-c", "-o", "/dev/stderr"])
        .arg(prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let total = text.lines().find(|l| l.trim_end().ends_with("total"))?;
    // columns: % time, seconds, usecs/call, calls, [errors], syscall
    let fields: Vec<&str> = total.split_whitespace().collect();
    fields.get(3).and_then(|c| c.parse().ok())
}

fn row(name: &str, unit: &str, ours: &Stats, theirs: &Stats, value: impl Fn(&Stats) -> f64) {
    let (a, b) = (value(ours), value(theirs));
    println!(
        "| {name} | {a:.1} {unit} | {b:.1} {unit} | {:.2}× | {:.1} MB | {:.1} MB |",
        a / b,
        ours.rss_mb,
        theirs.rss_mb
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--raw-lua") => return raw_lua(&args[2], &args[3..]),
        Some("--raw-ring-sleep0") => return raw_ring_sleep0(args[2].parse().unwrap()),
        Some("--raw-ring-nop") => return raw_ring_nop(args[2].parse().unwrap()),
        Some("--mlua-thread-yield") => return mlua_thread_yield(args[2].parse().unwrap()),
        _ => {}
    }
    // `cargo bench` passes --bench; a filter argument selects benchmarks.
    let filter: Option<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .find(|a| !a.starts_with('-'));
    let want = |name: &str| filter.is_none_or(|f| name.contains(f));
    let runs: usize = std::env::var("LURING_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    println!(
        "luring core benchmarks: medians of {runs} runs (value per op; peak RSS per process)\n"
    );
    println!("| benchmark | luring | reference | ratio | luring RSS | reference RSS |");
    println!("|---|---|---|---|---|---|");
    let n_spawn = "100000";
    if want("spawn") {
        let ours = repeat(runs, || luring("spawn_join.lua", &["seq", n_spawn]));
        let theirs = repeat(runs, || raw("spawn_join_raw.lua", &["seq", n_spawn]));
        row(
            "spawn+join 100k, one at a time",
            "ns",
            &ours,
            &theirs,
            |s| s.value,
        );
        let ours = repeat(runs, || luring("spawn_join.lua", &["batch", n_spawn]));
        let theirs = repeat(runs, || raw("spawn_join_raw.lua", &["batch", n_spawn]));
        row(
            "spawn+join 100k, all live at once",
            "ns",
            &ours,
            &theirs,
            |s| s.value,
        );
        // Issue 6's memory target: 100k live fibers, each spawned with its
        // own closure, peak RSS <= 40 MB (the "luring RSS" column).
        let ours = repeat(runs, || luring("spawn_join.lua", &["closures", n_spawn]));
        let theirs = repeat(runs, || raw("spawn_join_raw.lua", &["closures", n_spawn]));
        row(
            "spawn+join 100k, all live, each its own closure",
            "ns",
            &ours,
            &theirs,
            |s| s.value,
        );
    }
    if want("yield") {
        let n = "10000000";
        let ours = repeat(runs, || luring("yield.lua", &[n]));
        let theirs = repeat(runs, || raw("yield_raw.lua", &[n]));
        row(
            "yield 10M (2 fibers vs coroutine)",
            "ns",
            &ours,
            &theirs,
            |s| s.value,
        );
        let rust_driven = repeat(runs, || reference("--mlua-thread-yield", &[n]));
        row(
            "yield 10M vs one held mlua Thread resumed from Rust",
            "ns",
            &ours,
            &rust_driven,
            |s| s.value,
        );
    }
    if want("sleep") {
        let n = "100000";
        let ours = repeat(runs, || luring("sleep0.lua", &[n]));
        let nop = repeat(runs, || reference("--raw-ring-nop", &[n]));
        row("time.sleep(0) 100k vs raw NOP", "ns", &ours, &nop, |s| {
            s.value
        });
        let timeout = repeat(runs, || reference("--raw-ring-sleep0", &[n]));
        row(
            "time.sleep(0) 100k vs raw TIMEOUT(0)",
            "ns",
            &ours,
            &timeout,
            |s| s.value,
        );
        let base = syscalls(luring("empty.lua", &[]));
        let with = syscalls(luring("sleep0.lua", &[n]));
        match (base, with) {
            (Some(b), Some(w)) => println!(
                "\nsyscalls per time.sleep(0): {:.3} (strace -c -f: {w} with 100k sleeps, {b} for an empty script)\n",
                (w.saturating_sub(b)) as f64 / 100_000.0
            ),
            _ => println!("\nsyscalls per sleep: strace not available (apt-get install strace)\n"),
        }
    }
    if want("waiters") {
        let n = "40000";
        for mode in ["mutex", "timer"] {
            let ours = repeat(runs, || luring("waiters.lua", &[mode, n]));
            let theirs = repeat(runs, || raw("waiters_raw.lua", &[mode, n]));
            row(
                &format!("40k waiters on one {mode}, released together (per waiter)"),
                "ns",
                &ours,
                &theirs,
                |s| s.value,
            );
        }
    }
    if want("startup") {
        let ours = repeat(runs.max(15), || luring("empty.lua", &[]));
        let theirs = repeat(runs.max(15), || raw("empty_raw.lua", &[]));
        row("startup, empty script (wall)", "ms", &ours, &theirs, |s| {
            s.wall_ms
        });
    }
}
