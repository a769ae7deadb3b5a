//! A Lua VM inside a luring sandbox, driven from Rust: the host spawns the
//! registered `luring-vm` entry through the supervisor, sends the module
//! over the control socket and reads what the sandboxed actor printed
//! (its stdout and stderr are pipes granted at spawn). Runs without the
//! libtest harness: the supervisor must be forked before any thread exists.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use luring::sandbox_internals::{self as sbx, send_boot};
use luring_sandbox::{ExitStatus, SandboxSpec, Stdio, Supervisor};

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn pipe() -> (std::io::PipeReader, OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r, w.into())
}

/// Runs `source` in a fresh `sandbox = {}`-like sandbox and waits (10 s
/// at most) for it to end.
fn run(sv: &Supervisor, source: &str) -> Ran {
    run_as(sv, "case.lua", source)
}

/// [`run`] with the module shown as `display` (an `init.lua` is not a leaf).
fn run_as(sv: &Supervisor, display: &str, source: &str) -> Ran {
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        stderr: Stdio::Fd(err_w),
        ..SandboxSpec::default()
    };
    let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    drop(spec);
    send_boot(h.control(), display, source.as_bytes()).expect("boot");
    let status = h
        .wait_timeout(10_000)
        .expect("wait")
        .unwrap_or_else(|| panic!("sandboxed VM still running after 10 s:\n{source}"));
    drop(h);
    let mut stdout = String::new();
    out_r.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    err_r.read_to_string(&mut stderr).unwrap();
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("--- {display}: {status}\n{stdout}--- stderr\n{stderr}");
    }
    Ran {
        status,
        stdout,
        stderr,
    }
}

type Case = fn(&Supervisor);

fn hello(sv: &Supervisor) {
    let r = run(sv, "print('hello from a sandboxed ' .. _CONTEXT)");
    assert_eq!(
        r.stdout, "hello from a sandboxed worker\n",
        "stderr: {}",
        r.stderr
    );
    assert_eq!(r.status, ExitStatus::Exited(0));
}

fn fibers_timers_and_stderr(sv: &Supervisor) {
    let src = r#"
        local time = require 'time'
        local order = {}
        local f = spawn(function() time.sleep(0.02) order[#order + 1] = 'late' end)
        spawn(function() order[#order + 1] = 'early' end)
        f:join()
        print(table.concat(order, ' '))
        local system = require 'system'
        system.err:write_some('to stderr\n')
        system.out:write_some('written\n')
    "#;
    let r = run(sv, src);
    assert_eq!(r.stdout, "early late\nwritten\n", "stderr: {}", r.stderr);
    assert_eq!(r.stderr, "to stderr\n");
    assert_eq!(r.status, ExitStatus::Exited(0));
}

fn exit_codes_and_errors(sv: &Supervisor) {
    let r = run(sv, "require('system').exit(7)");
    assert_eq!(r.status, ExitStatus::Exited(7), "stderr: {}", r.stderr);
    let r = run(sv, "error('boom')");
    assert_eq!(r.status, ExitStatus::Exited(1));
    assert!(
        r.stderr.contains("case.lua:1: boom"),
        "stderr: {}",
        r.stderr
    );
    let r = run(sv, "this is not lua");
    assert_eq!(r.status, ExitStatus::Exited(1));
    assert!(r.stderr.contains("case.lua:1:"), "stderr: {}", r.stderr);
}

fn safe_environment(sv: &Supervisor) {
    let src = r#"
        print(io, debug, package, dofile, loadfile, jit, string.dump)
        for _, id in ipairs({ 'ffi', 'io', 'debug', 'package' }) do
          local ok, e = pcall(require, id)
          print(id, ok)
        end
        print(load('\27LJ\2\10\0\255\255\255\255', 'x'))
        local ok, e = pcall(require, './neighbour')
        print('project module', ok, tostring(e))
        local ok, e = pcall(require, '/etc/passwd')
        print('host path', ok, tostring(e))
    "#;
    let leaf = run(sv, src);
    let leaf: Vec<&str> = leaf.stdout.lines().collect();
    assert!(
        leaf[6].contains("\tfalse\t") && leaf[6].contains("leaf module"),
        "{}",
        leaf[6]
    );
    let r = run_as(sv, "plugin/init.lua", src);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "nil\tnil\tnil\tnil\tnil\tnil\tnil");
    assert_eq!(
        &lines[1..5],
        ["ffi\tfalse", "io\tfalse", "debug\tfalse", "package\tfalse"]
    );
    assert!(
        lines[5].starts_with("nil\t") && lines[5].contains("binary"),
        "{}",
        lines[5]
    );
    for l in &lines[6..8] {
        assert!(
            l.contains("\tfalse\t") && l.contains("not permitted"),
            "{l}"
        );
    }
}

fn cannot_open_a_path_or_make_a_ring(sv: &Supervisor) {
    let src = r#"
        local file = require 'file'
        local f = file.stream.new()
        print('open', pcall(function() f:open('/etc/passwd', file.open_flag.read_only) end))
        print('spawn_vm', pcall(spawn_vm, '.'))
    "#;
    let r = run(sv, src);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("open\tfalse\t") && lines[0].contains("not permitted"),
        "{}",
        lines[0]
    );
    // Its ring is the only one it may have: no VM can be hosted beside it.
    assert_eq!(lines[1], "spawn_vm\tfalse\tOperation not supported");
}

fn bad_boot_messages_end_the_sandbox(sv: &Supervisor) {
    let (_out_r, out_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        ..SandboxSpec::default()
    };
    let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    luring_sandbox::sys::send_with_fds(
        std::os::fd::AsRawFd::as_raw_fd(&h.control()),
        b"not a boot header at all",
        &[],
    )
    .unwrap();
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_BAD_BOOT));
    // A datagram carrying a descriptor is refused too.
    let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    let (r, _w) = pipe();
    luring_sandbox::sys::send_with_fds(
        std::os::fd::AsRawFd::as_raw_fd(&h.control()),
        b"LRNGBT01",
        &[std::os::fd::AsRawFd::as_raw_fd(&r.as_fd())],
    )
    .unwrap();
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_BAD_BOOT));
}

fn main() {
    if let Some(problem) = Supervisor::user_namespace_problem() {
        println!("skipped: this system refuses user namespaces ({problem})");
        return;
    }
    luring::start_supervisor().expect("supervisor");
    let sv = sbx::supervisor().expect("supervisor");
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let cases: &[(&str, Case)] = &[
        ("hello", hello),
        ("fibers_timers_and_stderr", fibers_timers_and_stderr),
        ("exit_codes_and_errors", exit_codes_and_errors),
        ("safe_environment", safe_environment),
        (
            "cannot_open_a_path_or_make_a_ring",
            cannot_open_a_path_or_make_a_ring,
        ),
        (
            "bad_boot_messages_end_the_sandbox",
            bad_boot_messages_end_the_sandbox,
        ),
    ];
    let mut failed = 0;
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(sv))) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
