//! Asynchronous `stat` (issue 9): 10,000 files sized from four fibers with
//! the `filesystem` module while a fifth fiber keeps ticking, against the
//! same stats as blocking calls.
//!
//! | | what runs |
//! |---|---|
//! | luring | `luring benches/lua/stat_fibers.lua DIR N`: 4 fibers call `filesystem.file_size` on N files (each its quarter), a 5th loops on `time.sleep(0.001)` and counts ticks; the script prints the stats' elapsed time and the ticks seen meanwhile (skipped, saying why, while `require 'filesystem'` fails) |
//! | reference | this process, one thread: N blocking `statx(AT_FDCWD, path, 0, STATX_SIZE)` calls |
//!
//! Ticks are what show that the actor's other fibers keep running: with
//! stats that blocked the actor's thread, the ticker could not run until
//! they were all done (0 ticks); with ring ops it ticks about once per
//! millisecond of the elapsed time (a 1 ms kernel timer each, so somewhat
//! fewer). Both sides check the sum of the files' sizes.
//!
//! N = `LURING_BENCH_FILES` (default 10,000) files of 0–3 bytes in a
//! temporary directory (`LURING_BENCH_DIR` or the system's), created before
//! the first run (so their inodes are cached) and removed at the end.
//! Medians of RUNS runs (`LURING_BENCH_RUNS`, default 5).
//!
//! Run: `cargo bench --bench stat_fibers`.

#[path = "io_common/mod.rs"]
mod io_common;

use io_common::{env_or, median};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

fn file_name(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("f{i}"))
}

fn size_of_file(i: usize) -> u64 {
    (i % 4) as u64
}

/// Blocking reference: statx of every file on this thread. Returns the
/// seconds taken and the sum of the sizes.
fn blocking_stats(paths: &[CString]) -> (f64, u64) {
    let t0 = Instant::now();
    let mut sum = 0;
    for p in paths {
        // SAFETY: all-zero is a valid statx value; the kernel fills it.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: `p` is a NUL-terminated path and `st` a live statx the
        // call writes into.
        let rc = unsafe { libc::statx(libc::AT_FDCWD, p.as_ptr(), 0, libc::STATX_SIZE, &mut st) };
        assert_eq!(rc, 0, "statx {p:?}: {}", std::io::Error::last_os_error());
        sum += st.stx_size;
    }
    (t0.elapsed().as_secs_f64(), sum)
}

struct LuringRun {
    elapsed_s: f64,
    ticks: f64,
}

fn luring_stats(dir: &Path, n: usize, expected_sum: u64) -> Result<LuringRun, String> {
    let out = Command::new(io_common::luring_bin())
        .arg(io_common::lua_script("stat_fibers.lua"))
        .arg(dir)
        .arg(n.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run luring: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| -> Option<f64> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
    };
    match (value("elapsed_s"), value("ticks"), value("size_sum")) {
        (Some(elapsed_s), Some(ticks), Some(sum))
            if out.status.success() && sum == expected_sum as f64 =>
        {
            Ok(LuringRun { elapsed_s, ticks })
        }
        _ => Err(format!(
            "stat_fibers.lua failed ({}), expected size_sum {expected_sum}:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn main() {
    let n: usize = env_or("LURING_BENCH_FILES", 10_000usize).max(1);
    let runs = io_common::runs();
    let dir = io_common::TempDir::new("stat");
    for i in 1..=n {
        let content = vec![b'x'; size_of_file(i) as usize];
        std::fs::write(file_name(dir.path(), i), content).expect("create a bench file");
    }
    let expected_sum: u64 = (1..=n).map(size_of_file).sum();
    let paths: Vec<CString> = (1..=n)
        .map(|i| CString::new(file_name(dir.path(), i).as_os_str().as_bytes()).expect("no NUL"))
        .collect();
    println!(
        "stat_fibers: {n} files in {}, {runs} runs",
        dir.path().display()
    );

    let luring = io_common::probe_module("filesystem");
    if let Err(why) = &luring {
        println!("luring: skipped: {why}");
    }
    let (mut blocking, mut elapsed, mut ticks) = (Vec::new(), Vec::new(), Vec::new());
    let mut luring_failed = None;
    for run in 1..=runs {
        let (secs, sum) = blocking_stats(&paths);
        assert_eq!(sum, expected_sum, "sizes seen by statx");
        blocking.push(secs);
        eprint!("run {run}/{runs}: blocking {:.1} ms", secs * 1e3);
        if luring.is_ok() && luring_failed.is_none() {
            match luring_stats(dir.path(), n, expected_sum) {
                Ok(r) => {
                    eprint!(
                        ", luring {:.1} ms with {} ticks",
                        r.elapsed_s * 1e3,
                        r.ticks
                    );
                    elapsed.push(r.elapsed_s);
                    ticks.push(r.ticks);
                }
                Err(why) => luring_failed = Some(why),
            }
        }
        eprintln!();
    }
    if let Some(why) = &luring_failed {
        println!("luring: failed: {why}");
    }
    let blocking = median(blocking);
    println!();
    println!(
        "| {n} stats | elapsed | µs per stat | ticks of a 1 ms sleeper meanwhile | vs blocking |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| blocking statx, one thread (Rust) | {:.1} ms | {:.2} | — (the thread is blocked) | 1.00× |",
        blocking * 1e3,
        blocking * 1e6 / n as f64
    );
    if elapsed.is_empty() {
        println!("| luring, 4 fibers + ticker | — | — | — | — |");
    } else {
        let (e, t) = (median(elapsed), median(ticks));
        println!(
            "| luring, 4 fibers + ticker | {:.1} ms | {:.2} | {t:.0} (at most ~{:.0}) | {:.2}× |",
            e * 1e3,
            e * 1e6 / n as f64,
            e * 1e3,
            e / blocking
        );
    }
    println!("(medians of {runs} runs)");
}
