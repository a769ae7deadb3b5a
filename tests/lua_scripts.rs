//! Runs every `tests/lua/**/NAME.lua` (and `examples/**/NAME.lua`, so the
//! guide's examples stay true) that has a `NAME.out` beside it with
//! the `luring` binary and compares stdout+stderr (merged into one pipe, so
//! their interleaving is real) with `NAME.out`.
//!
//! Header lines at the top of a script configure its run:
//!   `-- exit: N`      expected exit status (default 0)
//!   `-- args: a b c`  script arguments
//!   `-- options: --memory-limit 32M`  luring options (before the script)
//!   `-- stdin: text`  bytes written to the script's standard input
//!   `-- stdin-open`   standard input is a pipe kept open (never EOF)
//! Hexadecimal ids (`0x…`) are renumbered in order of first appearance
//! (`0x1`, `0x2`, …), so only their consistency is compared.
//!
//! Whatever the expected output says, a case fails when the process ended
//! by a signal, or its output shows a Rust panic or an internal error of
//! the runtime (`CRASH_MARKERS`): a `.out` file cannot bless a crash.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};

const CASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Output that only a bug in luring can produce: a Rust panic (with or
/// without unwinding), a failure of the runtime's own Lua code, a LuaJIT
/// complaint that bypassed the runtime's reports.
const CRASH_MARKERS: &[&str] = &[
    "panicked at",
    "RUST_BACKTRACE",
    "fatal runtime error",
    "thread caused non-unwinding panic",
    "has overflowed its stack",
    "memory allocation of",
    "internal scheduler error",
    "internal runtime error",
    "internal error",
    "ERROR in finalizer",
    "VM handler failed",
];

/// Why a finished run is a crash whatever its output was expected to be.
fn crash_problems(status: &std::process::ExitStatus, output: &str) -> Vec<String> {
    use std::os::unix::process::ExitStatusExt;
    let mut problems = Vec::new();
    if let Some(signal) = status.signal() {
        problems.push(format!("luring was killed by signal {signal}"));
    }
    for marker in CRASH_MARKERS {
        if output.contains(marker) {
            problems.push(format!("output shows a crash ({marker:?})"));
        }
    }
    problems
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/lua is readable")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        // Symlinked directories are fixtures (some lead outside tests/lua on
        // purpose): never walked.
        let is_link = p
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink());
        if p.is_dir() && !is_link {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "lua") && p.with_extension("out").exists() {
            out.push(p);
        }
    }
}

/// Replaces each distinct `0x<hex>` with `0x1`, `0x2`, … by first appearance.
pub fn renumber_hex(text: &str) -> String {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'0'
            && i + 2 < bytes.len()
            && bytes[i + 1] == b'x'
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let start = i + 2;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_hexdigit() {
                end += 1;
            }
            let key = &text[start..end];
            let n = seen.len() + 1;
            let id = *seen.entry(key.to_owned()).or_insert(n);
            out.push_str(&format!("0x{id}"));
            i = end;
        } else {
            let ch = text[i..].chars().next().expect("char boundary");
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

struct Header {
    exit: i32,
    args: Vec<String>,
    options: Vec<String>,
    stdin: Option<String>,
    stdin_open: bool,
}

fn header(src: &str) -> Header {
    let mut h = Header {
        exit: 0,
        args: Vec::new(),
        options: Vec::new(),
        stdin: None,
        stdin_open: false,
    };
    for line in src.lines().take_while(|l| l.starts_with("--")) {
        if let Some(v) = line.strip_prefix("-- exit:") {
            h.exit = v.trim().parse().expect("-- exit: takes a number");
        } else if let Some(v) = line.strip_prefix("-- args:") {
            h.args = v.split_whitespace().map(str::to_owned).collect();
        } else if let Some(v) = line.strip_prefix("-- options:") {
            h.options = v.split_whitespace().map(str::to_owned).collect();
        } else if line.trim_end() == "-- stdin-open" {
            h.stdin_open = true;
        } else if let Some(v) = line.strip_prefix("-- stdin:") {
            h.stdin = Some(v.trim_start().replace("\\n", "\n"));
        }
    }
    h
}

fn run_case(script: &Path) -> Result<(), Failed> {
    let src = std::fs::read_to_string(script).map_err(|e| format!("{}: {e}", script.display()))?;
    let h = header(&src);
    let expected =
        std::fs::read_to_string(script.with_extension("out")).map_err(|e| e.to_string())?;
    let (mut reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
    let writer: OwnedFd = writer.into();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luring"));
    cmd.current_dir(script.parent().expect("script has a directory"))
        .args(&h.options)
        .arg(script.file_name().expect("script has a name"))
        .args(&h.args)
        .env_remove("LURING_LOG")
        .stdout(Stdio::from(
            writer
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| e.to_string())?,
        ))
        .stderr(Stdio::from(writer))
        .stdin(if h.stdin.is_some() || h.stdin_open {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start luring: {e}"))?;
    drop(cmd);
    // Held until the child has exited when the case wants stdin kept open.
    let mut _open_stdin = None;
    if let Some(input) = &h.stdin {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| e.to_string())?;
    } else if h.stdin_open {
        _open_stdin = child.stdin.take();
    }
    // A hung script must fail its case rather than hang the suite: kill it
    // if it has not finished within the limit.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let pid = child.id() as i32;
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(CASE_TIMEOUT).is_err() {
            // SAFETY: kill(2) on our own child, which has not been reaped yet
            // (the main thread reaps it only after this thread reported).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return true;
        }
        false
    });
    let mut output = String::new();
    let read = reader.read_to_string(&mut output);
    let _ = done_tx.send(());
    let timed_out = watchdog.join().expect("watchdog thread");
    let status = child.wait().map_err(|e| e.to_string())?;
    read.map_err(|e| e.to_string())?;
    if timed_out {
        return Err(
            format!("did not finish within {CASE_TIMEOUT:?}; output so far:\n{output}").into(),
        );
    }
    let mut problems = crash_problems(&status, &output);
    let output = renumber_hex(&output);
    if output != expected {
        problems.push(format!(
            "--- expected output\n{expected}--- actual output\n{output}---"
        ));
    }
    if status.code() != Some(h.exit) {
        problems.push(format!("expected exit status {}, got {status}", h.exit));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The crash check itself: a signal or a marker fails a case, a clean exit
/// with ordinary reports does not.
fn crash_detection() -> Result<(), Failed> {
    use std::os::unix::process::ExitStatusExt;
    let clean = std::process::ExitStatus::from_raw(0);
    let exit_1 = std::process::ExitStatus::from_raw(1 << 8);
    let sigsegv = std::process::ExitStatus::from_raw(libc::SIGSEGV);
    let sigabrt_core = std::process::ExitStatus::from_raw(libc::SIGABRT | 0x80);
    let report = "Fiber 0x1 panicked: 'boom'\nstack traceback:\n";
    let checks = [
        (clean, report, 0),
        (exit_1, report, 0),
        (sigsegv, "", 1),
        (sigabrt_core, "", 1),
        (clean, "thread 'main' panicked at src/x.rs:1:1:\n", 1),
        (clean, "luring: internal scheduler error: x\n", 1),
        (exit_1, "luring: internal runtime error: x\n", 1),
        (clean, "memory allocation of 8 bytes failed\n", 1),
    ];
    for (status, output, expected) in checks {
        let found = crash_problems(&status, output);
        if found.len() != expected {
            return Err(format!(
                "{status} {output:?}: expected {expected} problems, got {found:?}"
            )
            .into());
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    collect(&manifest.join("tests/lua"), &mut scripts);
    collect(&manifest.join("examples"), &mut scripts);
    let mut trials: Vec<Trial> = vec![Trial::test("harness/crash_detection", crash_detection)];
    trials.extend(scripts.into_iter().map(|p| {
        let rel = p
            .strip_prefix(manifest)
            .expect("under the crate")
            .with_extension("");
        let name = rel.strip_prefix("tests/lua").unwrap_or(&rel).to_path_buf();
        Trial::test(name.to_string_lossy(), move || run_case(&p))
    }));
    libtest_mimic::run(&args, trials).exit();
}
