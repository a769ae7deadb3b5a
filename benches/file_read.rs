//! Sequential file read (issue 9): `file.stream` in 64 KiB chunks against
//! `cat`, same file, same run, warm page cache.
//!
//! | | what is timed (wall clock of the whole process) |
//! |---|---|
//! | luring | `luring benches/lua/read_file.lua FILE`: `file.stream`, `read_some` into one 64 KiB `byte_span` until end of file (skipped, saying why, while `require 'file'` fails) |
//! | reference | `cat FILE > /dev/null` |
//!
//! The file (1 GiB of a byte pattern; `LURING_BENCH_FILE_BYTES` changes the
//! size) is written to a temporary directory (`LURING_BENCH_DIR` or the
//! system's), read once by `cat` to warm the cache, and removed at the end.
//! Each run times both programs once, alternating; the table gives the
//! medians of RUNS runs (`LURING_BENCH_RUNS`, default 5) in GB/s (10^9
//! bytes per second, start-up included) and luring / cat (target ≥ 0.90).
//!
//! Run: `cargo bench --bench file_read`, or for a quick check
//! `LURING_BENCH_FILE_BYTES=67108864 LURING_BENCH_RUNS=1 cargo bench --bench file_read`.

#[path = "io_common/mod.rs"]
mod io_common;

use io_common::{env_or, median};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Writes `size` bytes of a repeating pattern to `path`.
fn make_file(path: &Path, size: u64) {
    let chunk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut f = File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).expect("write the bench file");
        left -= n as u64;
    }
    f.sync_all().expect("fsync the bench file");
}

fn dev_null() -> Stdio {
    Stdio::from(
        File::options()
            .write(true)
            .open("/dev/null")
            .expect("open /dev/null"),
    )
}

/// Seconds `cat FILE > /dev/null` takes.
fn time_cat(path: &Path) -> f64 {
    let t0 = Instant::now();
    let status = Command::new("cat")
        .arg(path)
        .stdout(dev_null())
        .status()
        .expect("cat runs");
    let secs = t0.elapsed().as_secs_f64();
    assert!(status.success(), "cat failed: {status}");
    secs
}

/// Seconds `luring read_file.lua FILE` takes; checks it read `size` bytes.
fn time_luring(path: &Path, size: u64) -> Result<f64, String> {
    let t0 = Instant::now();
    let out = Command::new(io_common::luring_bin())
        .arg(io_common::lua_script("read_file.lua"))
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run luring: {e}"))?;
    let secs = t0.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let read: Option<u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("bytes"))
        .and_then(|v| v.trim().parse().ok());
    match read {
        Some(n) if out.status.success() && n == size => Ok(secs),
        _ => Err(format!(
            "read_file.lua failed ({}), expected to read {size} bytes:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn main() {
    let size: u64 = env_or("LURING_BENCH_FILE_BYTES", 1u64 << 30).max(1);
    let runs = io_common::runs();
    let dir = io_common::TempDir::new("file-read");
    let path = dir.path().join("data");
    println!(
        "file_read: {size} bytes in {}, warm cache, {runs} runs",
        path.display()
    );
    make_file(&path, size);
    time_cat(&path); // warms the page cache

    let luring = io_common::probe_module("file");
    if let Err(why) = &luring {
        println!("luring: skipped: {why}");
    }
    let (mut cat_secs, mut luring_secs) = (Vec::new(), Vec::new());
    let mut luring_failed = None;
    for run in 1..=runs {
        let cat = time_cat(&path);
        cat_secs.push(cat);
        eprint!("run {run}/{runs}: cat {:.3} GB/s", size as f64 / cat / 1e9);
        if luring.is_ok() && luring_failed.is_none() {
            match time_luring(&path, size) {
                Ok(secs) => {
                    luring_secs.push(secs);
                    eprint!(", luring {:.3} GB/s", size as f64 / secs / 1e9);
                }
                Err(why) => luring_failed = Some(why),
            }
        }
        eprintln!();
    }
    if let Some(why) = &luring_failed {
        println!("luring: failed: {why}");
    }
    let gbps = |secs: Vec<f64>| size as f64 / median(secs) / 1e9;
    let cat = gbps(cat_secs);
    println!();
    println!("| reader | GB/s | vs cat |");
    println!("|---|---|---|");
    println!("| cat | {cat:.3} | 1.00× |");
    if luring_secs.is_empty() {
        println!("| luring file.stream, 64 KiB reads | — | — |");
    } else {
        let l = gbps(luring_secs);
        let verdict = if l / cat >= 0.90 {
            "≥ 0.90 ✔"
        } else {
            "< 0.90 ✘"
        };
        println!(
            "| luring file.stream, 64 KiB reads | {l:.3} | {:.2}× ({verdict}) |",
            l / cat
        );
    }
    println!("(medians of {runs} runs; whole-process wall time)");
}
