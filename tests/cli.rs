//! The `luring` command line: exit statuses, load errors, help, logging.

#[path = "support/scratch.rs"]
mod scratch;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn luring() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_luring"));
    c.env_remove("LURING_LOG");
    c
}

fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    scratch::scratch_file("cli", name, contents)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn assert_one_clean_line(out: &Output) -> String {
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(!err.contains("panicked at"), "Rust panic leaked: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "Rust panic leaked: {err}");
    err
}

#[test]
fn help_and_version() {
    let out = luring().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("Usage: luring [OPTIONS] <SCRIPT> [ARGS]..."),
        "{help}"
    );
    assert!(help.contains("--memory-limit <SIZE>"), "{help}");
    let out = luring().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("luring {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn no_script_is_a_usage_error() {
    let out = luring().output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("<SCRIPT>"));
}

#[test]
fn missing_script() {
    let out = luring().arg("/nonexistent/missing.lua").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = assert_one_clean_line(&out);
    assert_eq!(
        err,
        "luring: cannot read /nonexistent/missing.lua: No such file or directory\n"
    );
}

#[test]
fn unreadable_script() {
    // A directory cannot be read as a script (EISDIR), whoever runs the test.
    let dir = std::env::temp_dir();
    let out = luring().arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = assert_one_clean_line(&out);
    assert_eq!(
        err,
        format!("luring: cannot read {}: Is a directory\n", dir.display())
    );
}

#[test]
fn syntax_error_names_file_and_line() {
    let p = scratch("bad.lua", b"print('ok')\nlocal x = = 1\n");
    let out = luring().arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing of the script ran");
    let err = assert_one_clean_line(&out);
    assert_eq!(
        err,
        format!("luring: {}:2: unexpected symbol near '='\n", p.display())
    );
}

#[test]
fn binary_chunk_script_is_refused() {
    let p = scratch("binary.lua", b"\x1bLJ\x02\x00garbage");
    let out = luring().arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = assert_one_clean_line(&out);
    assert!(err.contains("binary chunks are refused"), "{err}");
}

#[test]
fn exit_statuses() {
    let ok = scratch("ok.lua", b"print('fine')\n");
    let out = luring().arg(&ok).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "fine\n");
    assert!(out.stderr.is_empty());

    let exit = scratch(
        "exit.lua",
        b"spawn(function() require_ = nil end)\nrequire('system').exit(7)\nprint('not reached')\n",
    );
    let out = luring().arg(&exit).output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(out.stdout.is_empty());

    let panic = scratch("panic.lua", b"print('before')\nerror('boom')\n");
    let out = luring().arg(&panic).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "before\n");
    let err = text(&out.stderr);
    assert!(err.starts_with("Main fiber from VM 0x"), "{err}");
    assert!(
        err.contains(&format!(
            "panicked: '{}:2: boom'\nstack traceback:\n",
            panic.display()
        )),
        "{err}"
    );
}

/// The `luring` command keeps ending the process for forced exits (an
/// embedding application's runtime does not: tests/embedding_threads.rs).
#[test]
fn forced_exits_end_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let quick = scratch(
        "quick.lua",
        b"print('out')\nrequire('system').exit(9, {force = 2})\nprint('not reached')\n",
    );
    let out = luring().arg(&quick).output().unwrap();
    assert_eq!(out.status.code(), Some(9));
    assert_eq!(text(&out.stdout), "out\n");
    let abort = scratch(
        "abort.lua",
        b"require('system').exit(0, {force = 'abort'})\nprint('not reached')\n",
    );
    let out = luring().arg(&abort).output().unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGABRT));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_bundled_example_runs_with_arguments() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello.lua");
    let out = luring()
        .arg(example)
        .args(["a", "b", "c"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "hello from luring; arguments:\ta b c\nhi fiber\n"
    );
}

#[test]
fn logging_is_off_by_default_and_luring_log_shows_fiber_and_executor_events() {
    let p = scratch(
        "log.lua",
        b"spawn(function() end):join()\nlocal time = require 'time'\ntime.sleep(0)\n",
    );
    let quiet = luring().arg(&p).output().unwrap();
    assert!(quiet.status.success());
    assert!(quiet.stderr.is_empty(), "{}", text(&quiet.stderr));
    let loud = luring()
        .arg(&p)
        .env("LURING_LOG", "debug")
        .output()
        .unwrap();
    assert!(loud.status.success());
    let err = text(&loud.stderr);
    assert!(err.contains("fiber spawned"), "{err}");
    assert!(err.contains("fiber finished"), "{err}");
    assert!(err.contains("executor: turn"), "{err}");
}

#[test]
fn print_reaches_a_terminal_at_once_even_when_the_fiber_never_blocks() {
    use std::io::Read;
    use std::os::fd::OwnedFd;
    let p = scratch("spin.lua", b"print('first line')\nwhile true do end\n");
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave: OwnedFd = pty.slave;
    let mut child = luring()
        .arg(&p)
        .stdout(std::process::Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    // The script spins forever after printing: the line can only arrive
    // if print flushed it to the terminal.
    while !String::from_utf8_lossy(&seen).contains("first line") {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, 10_000u16).expect("poll");
        if ready == 0 {
            child.kill().unwrap();
            panic!("nothing printed to the terminal within 10 s: {seen:?}");
        }
        let n = master.read(&mut buf).expect("read from the pty");
        assert!(n > 0, "pty closed before the line arrived");
        seen.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
