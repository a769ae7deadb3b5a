//! Runs every `tests/lua/**/NAME.lua` (and `examples/**/NAME.lua`, so the
//! guide's examples stay true) that has a `NAME.out` beside it with
//! the `luring` binary and compares stdout+stderr (merged into one pipe, so
//! their interleaving is real) with `NAME.out`.
//!
//! Header lines at the top of a script configure its run:
//!   `-- exit: N`      expected exit status (default 0)
//!   `-- args: a b c`  script arguments
//!   `-- stdin: text`  bytes written to the script's standard input
//!   `-- stdin-open`   standard input is a pipe kept open (never EOF)
//! Hexadecimal ids (`0x…`) are renumbered in order of first appearance
//! (`0x1`, `0x2`, …), so only their consistency is compared.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};

const CASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

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
    stdin: Option<String>,
    stdin_open: bool,
}

fn header(src: &str) -> Header {
    let mut h = Header {
        exit: 0,
        args: Vec::new(),
        stdin: None,
        stdin_open: false,
    };
    for line in src.lines().take_while(|l| l.starts_with("--")) {
        if let Some(v) = line.strip_prefix("-- exit:") {
            h.exit = v.trim().parse().expect("-- exit: takes a number");
        } else if let Some(v) = line.strip_prefix("-- args:") {
            h.args = v.split_whitespace().map(str::to_owned).collect();
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
    let output = renumber_hex(&output);
    let mut problems = Vec::new();
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

fn main() {
    let args = Arguments::from_args();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts = Vec::new();
    collect(&manifest.join("tests/lua"), &mut scripts);
    collect(&manifest.join("examples"), &mut scripts);
    let trials = scripts
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(manifest)
                .expect("under the crate")
                .with_extension("");
            let name = rel.strip_prefix("tests/lua").unwrap_or(&rel).to_path_buf();
            Trial::test(name.to_string_lossy(), move || run_case(&p))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
