//! Helpers shared by the I/O benchmarks (`echo`, `file_read`,
//! `stat_fibers`): settings from the environment, medians, CPU pinning, a
//! temporary directory removed on drop, and the probe that tells whether the
//! `luring` binary has a given Lua module yet.
//!
//! Each bench includes this file with `#[path]`, so not every helper is used
//! by every bench.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root (where `examples/` and `benches/lua/` live).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A `benches/lua/` script.
pub fn lua_script(name: &str) -> PathBuf {
    repo().join("benches/lua").join(name)
}

/// The `luring` binary cargo built for this bench.
pub fn luring_bin() -> &'static str {
    env!("CARGO_BIN_EXE_luring")
}

/// A second `luring` binary to measure beside this one in the same runs
/// (`LURING_BENCH_REF_BIN`, say a copy of main's build): an A/B that shares
/// the machine's noise.
pub fn reference_bin() -> Option<PathBuf> {
    std::env::var_os("LURING_BENCH_REF_BIN").map(PathBuf::from)
}

/// CPU seconds (user + system) of every child this process waited for so
/// far: the difference around a child's life is its CPU time.
pub fn children_cpu() -> f64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed local.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// An environment setting parsed as `T`, or `default` when unset. A value
/// that does not parse stops the bench with a message naming the variable.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Err(_) => default,
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("{name}={v:?} is not a valid value; unset it or give a number");
            std::process::exit(2)
        }),
    }
}

/// Runs per benchmark (`LURING_BENCH_RUNS`, default 5, at least 1).
pub fn runs() -> usize {
    env_or("LURING_BENCH_RUNS", 5usize).max(1)
}

/// The median of `values` (the mean of the two middle ones for an even
/// count); NaN for none.
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Pins the calling thread to `cpu`. Returns false (and the thread stays
/// unpinned) when the machine has no such CPU or the call is refused.
pub fn pin_current_thread(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if cpu >= 8 * std::mem::size_of::<libc::cpu_set_t>() {
        return false;
    }
    // SAFETY: CPU_SET writes one bit of the live local `set`; `cpu` was
    // checked against the set's capacity above.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` is a live, initialised set
    // of the size passed.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0 }
}

/// Number of CPUs this process may run on.
pub fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Makes `cmd`'s process pinned to `cpu` from its first instruction on
/// (set between fork and exec, so it is inherited by everything it starts).
pub fn pin_command(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes the async-signal-safe sched_setaffinity system call.
    unsafe {
        cmd.pre_exec(move || {
            if pin_current_thread(cpu) {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
}

/// A directory under the system temporary directory (or `LURING_BENCH_DIR`
/// when set), removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::var_os("LURING_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("luring-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!(
                "cannot create {}: {e} (set LURING_BENCH_DIR)",
                dir.display()
            )
        });
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `require(module)` works in the `luring` binary: Ok, or the
/// reason it does not (the script's own report, or how luring failed).
pub fn probe_module(module: &str) -> Result<(), String> {
    let out = Command::new(luring_bin())
        .arg(lua_script("probe_module.lua"))
        .arg(module)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", luring_bin()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.lines().any(|l| l == "ok") {
        return Ok(());
    }
    let why = stdout
        .lines()
        .find_map(|l| l.strip_prefix("failed: "))
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "luring exited with {} ({})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        });
    Err(format!("require '{module}' fails: {why}"))
}
