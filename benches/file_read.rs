//! Sequential file read (issue 9): `file.stream` in 64 KiB chunks against
//! `cat`, same file, same run, warm page cache.
//!
//! | | what is timed (wall clock of the whole process) |
//! |---|---|
//! | luring | `luring benches/lua/read_file.lua FILE`: `file.stream`, `read_some` into one 64 KiB `byte_span` until end of file (skipped, saying why, while `require 'file'` fails) |
//! | reference | `cat FILE > /dev/null` |
//! | luring-ref | as luring, with the binary `LURING_BENCH_REF_BIN` names (say a copy of main's build; only when set): an A/B in the same runs |
//!
//! The file (1 GiB of a byte pattern; `LURING_BENCH_FILE_BYTES` changes the
//! size) is written to a temporary directory (`LURING_BENCH_DIR` or the
//! system's), read once by `cat` to warm the cache, and removed at the end.
//! Each run times both programs once, alternating; the table gives the
//! medians of RUNS runs (`LURING_BENCH_RUNS`, default 5) in GB/s (10^9
//! bytes per second, start-up included) and luring / cat (target ≥ 0.90),
//! and the median CPU time (user + system, from `getrusage` of the waited
//! child), steadier than wall time on a machine shared with other work.
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

/// Wall and CPU seconds of `cat FILE > /dev/null`.
fn time_cat(path: &Path) -> (f64, f64) {
    let cpu0 = io_common::children_cpu();
    let t0 = Instant::now();
    let status = Command::new("cat")
        .arg(path)
        .stdout(dev_null())
        .status()
        .expect("cat runs");
    let secs = t0.elapsed().as_secs_f64();
    assert!(status.success(), "cat failed: {status}");
    (secs, io_common::children_cpu() - cpu0)
}

/// Wall and CPU seconds of `BIN read_file.lua FILE`; checks it read `size`
/// bytes.
fn time_luring(bin: &Path, path: &Path, size: u64) -> Result<(f64, f64), String> {
    let cpu0 = io_common::children_cpu();
    let t0 = Instant::now();
    let out = Command::new(bin)
        .arg(io_common::lua_script("read_file.lua"))
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run luring: {e}"))?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = io_common::children_cpu() - cpu0;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let read: Option<u64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("bytes"))
        .and_then(|v| v.trim().parse().ok());
    match read {
        Some(n) if out.status.success() && n == size => Ok((secs, cpu)),
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
    // The luring binaries measured: this build, and the reference if set.
    let mut readers: Vec<Reader> = Vec::new();
    if luring.is_ok() {
        readers.push(Reader::new(
            "luring file.stream, 64 KiB reads",
            io_common::luring_bin().into(),
        ));
        if let Some(bin) = io_common::reference_bin() {
            readers.push(Reader::new("luring-ref (LURING_BENCH_REF_BIN)", bin));
        }
    }
    let (mut cat_secs, mut cat_cpu) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        let (cat, cpu) = time_cat(&path);
        cat_secs.push(cat);
        cat_cpu.push(cpu);
        eprint!("run {run}/{runs}: cat {:.3} GB/s", size as f64 / cat / 1e9);
        for r in readers.iter_mut().filter(|r| r.failed.is_none()) {
            match time_luring(&r.bin, &path, size) {
                Ok((secs, cpu)) => {
                    r.secs.push(secs);
                    r.cpu.push(cpu);
                    eprint!(", {} {:.3} GB/s", r.label, size as f64 / secs / 1e9);
                }
                Err(why) => r.failed = Some(why),
            }
        }
        eprintln!();
    }
    let gbps = |secs: &[f64]| size as f64 / median(secs.to_vec()) / 1e9;
    let cat = gbps(&cat_secs);
    let cat_cpu = median(cat_cpu);
    println!();
    println!("| reader | GB/s | vs cat | CPU s | vs cat's CPU |");
    println!("|---|---|---|---|---|");
    println!("| cat | {cat:.3} | 1.00× | {cat_cpu:.3} | 1.00× |");
    for r in &readers {
        if let Some(why) = &r.failed {
            println!("| {} | failed: {why} | | | |", r.label);
            continue;
        }
        let l = gbps(&r.secs);
        let verdict = if l / cat >= 0.90 {
            "≥ 0.90 ✔"
        } else {
            "< 0.90 ✘"
        };
        let cpu = median(r.cpu.clone());
        println!(
            "| {} | {l:.3} | {:.2}× ({verdict}) | {cpu:.3} | {:.2}× |",
            r.label,
            l / cat,
            cat_cpu / cpu
        );
    }
    println!("(medians of {runs} runs; GB/s from whole-process wall time; CPU = user + system)");
}

/// One luring binary's measurements.
struct Reader {
    label: &'static str,
    bin: std::path::PathBuf,
    secs: Vec<f64>,
    cpu: Vec<f64>,
    failed: Option<String>,
}

impl Reader {
    fn new(label: &'static str, bin: std::path::PathBuf) -> Self {
        Reader {
            label,
            bin,
            secs: Vec::new(),
            cpu: Vec::new(),
            failed: None,
        }
    }
}
