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
        print('open /', pcall(function() f:open('/', file.open_flag.read_only) end))
        print('spawn_vm', pcall(spawn_vm, '.'))
    "#;
    let r = run(sv, src);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // The sandbox's root is empty, and Landlock refuses even that.
    assert_eq!(lines[0], "open\tfalse\tNo such file or directory");
    assert_eq!(lines[1], "open /\tfalse\tPermission denied");
    // Its ring is the only one it may have: no VM can be hosted beside it.
    assert_eq!(lines[2], "spawn_vm\tfalse\tOperation not supported");
}

/// The last datagram a sandbox wrote on its control socket before it
/// ended (the socket is drained without waiting).
fn last_datagram(h: &luring_sandbox::SandboxHandle) -> Option<Vec<u8>> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&h.control());
    let mut buf = vec![0u8; luring::ipc::MAX_FRAME_BYTES];
    let mut last = None;
    while luring_sandbox::sys::poll_one(fd, libc::POLLIN, 0).unwrap() & libc::POLLIN != 0 {
        let r = luring_sandbox::sys::recv_with_fds(fd, &mut buf, 0).unwrap();
        if r.len == 0 {
            break;
        }
        last = Some(buf[..r.len].to_vec());
    }
    last
}

/// A malformed boot message ends the sandbox: its runtime says why with
/// an end frame (`failed`) and exits [`sbx::EXIT_RUNTIME_END`].
fn bad_boot_messages_end_the_sandbox(sv: &Supervisor) {
    let (_out_r, out_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        ..SandboxSpec::default()
    };
    let failed = Some(Ok(luring::ipc::EndReason::Failed));
    let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    luring_sandbox::sys::send_with_fds(
        std::os::fd::AsRawFd::as_raw_fd(&h.control()),
        b"not a boot header at all",
        &[],
    )
    .unwrap();
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_RUNTIME_END));
    let end = last_datagram(&h).expect("an end frame");
    assert_eq!(luring::ipc::decode_end(&end), failed);
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
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_RUNTIME_END));
    let end = last_datagram(&h).expect("an end frame");
    assert_eq!(luring::ipc::decode_end(&end), failed);
    // Malformed spawn options: the same.
    let mut h = sv.spawn(sbx::VM_ENTRY, &[1, 2, 3], &spec).expect("spawn");
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_RUNTIME_END));
    let end = last_datagram(&h).expect("an end frame");
    assert_eq!(luring::ipc::decode_end(&end), failed);
}

/// Spawns `source` (stdout to a pipe) and sends it `frames` (raw packets),
/// then closes the host's sending side; returns what it printed.
fn run_with_frames(sv: &Supervisor, source: &str, frames: &[Vec<u8>]) -> Ran {
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        stderr: Stdio::Fd(err_w),
        ..SandboxSpec::default()
    };
    let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    drop(spec);
    send_boot(h.control(), "case.lua", source.as_bytes()).expect("boot");
    let control = std::os::fd::AsRawFd::as_raw_fd(&h.control());
    for f in frames {
        luring_sandbox::sys::send_with_fds(control, f, &[]).expect("send frame");
    }
    // SAFETY: shutdown on a socket the handle owns; no memory involved.
    assert_eq!(unsafe { libc::shutdown(control, libc::SHUT_WR) }, 0);
    let status = h.wait_timeout(10_000).unwrap().expect("ended within 10 s");
    drop(h);
    let mut stdout = String::new();
    out_r.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    err_r.read_to_string(&mut stderr).unwrap();
    Ran {
        status,
        stdout,
        stderr,
    }
}

fn frame(msg: &luring::Message) -> Vec<u8> {
    luring::ipc::encode_message(msg, luring::ipc::FdPlacement::FixedSlots(&[]))
        .expect("encode")
        .bytes
}

const RECEIVE_ALL: &str = r#"
    local inbox = require 'inbox'
    while true do
      local ok, m = pcall(inbox.receive, inbox)
      if not ok then print('ended:', tostring(m)) break end
      if type(m) == 'table' then
        print('got table', m.greeting, m.n, #m.list, m.list[2], m.nested.deep)
      else
        print('got', m)
      end
    end
    print('again:', select(2, pcall(inbox.receive, inbox)))
"#;

fn messages_from_the_host_reach_the_inbox(sv: &Supervisor) {
    use luring::Message as M;
    let table = M::object([
        ("greeting", M::from("hello")),
        ("n", M::from(42.5)),
        ("list", M::array([M::from(true), M::from("two")])),
        ("nested", M::object([("deep", M::from("down"))])),
    ]);
    let r = run_with_frames(sv, RECEIVE_ALL, &[frame(&M::from("first")), frame(&table)]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout,
        "got\tfirst\ngot table\thello\t42.5\t2\ttwo\tdown\n\
         ended:\tBroadcast the address before attempting to receive on it\n\
         again:\tBroadcast the address before attempting to receive on it\n",
        "stderr: {}",
        r.stderr
    );
    // The same through the library's sender.
    let (mut out_r, out_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        ..SandboxSpec::default()
    };
    let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    drop(spec);
    send_boot(
        h.control(),
        "case.lua",
        b"print(require('inbox'):receive())",
    )
    .unwrap();
    sbx::send_message(h.control(), &M::from("via send_message")).unwrap();
    assert_eq!(h.wait_timeout(10_000).unwrap(), Some(ExitStatus::Exited(0)));
    drop(h);
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "via send_message\n");
}

fn a_malformed_frame_closes_the_inbox(sv: &Supervisor) {
    use luring::Message as M;
    let mut bad_version = frame(&M::from("x"));
    bad_version[4] = 99;
    let mut scm_mode = frame(&M::from("x"));
    scm_mode[5] = 0;
    for bad in [
        b"garbage that is no frame".to_vec(),
        bad_version,
        scm_mode,
        frame(&M::from("ok"))[..13].to_vec(),
    ] {
        let r = run_with_frames(
            sv,
            RECEIVE_ALL,
            &[frame(&M::from("before")), bad, frame(&M::from("after"))],
        );
        assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
        assert_eq!(
            r.stdout, "got\tbefore\nended:\tChannel closed\nagain:\tChannel closed\n",
            "stderr: {}",
            r.stderr
        );
    }
}

/// A frame whose value is `{ fd = <fd 0> }`, fd 0 said to be in `slot`.
fn frame_naming_slot(slot: u32) -> Vec<u8> {
    use luring::ipc::{encode, FdPlacement, Value};
    let value = Value::Object(
        [(b"fd".as_slice().into(), Value::Fd(0))]
            .into_iter()
            .collect(),
    );
    encode(&value, FdPlacement::FixedSlots(&[slot])).expect("encode")
}

const USE_FD: &str = r#"
    local inbox = require 'inbox'
    local pipe = require 'pipe'
    while true do
      local ok, m = pcall(inbox.receive, inbox)
      if not ok then print('ended:', tostring(m)) break end
      print('fd:', getmetatable(m.fd), pcall(function()
        local r = pipe.read_stream.new(m.fd)
        return r:read_some(byte_span.new(1))
      end))
    end
    print('stdout still works')
"#;

/// A frame naming slots the host never filled reaches nothing: an empty
/// slot of the host's range arrives as a file_descriptor that fails with
/// EBADF; a slot outside that range (the control socket, stdout) or
/// outside the table is refused (the inbox closes) and left as it was.
fn forged_slots_reach_nothing(sv: &Supervisor) {
    let r = run_with_frames(sv, USE_FD, &[frame_naming_slot(40)]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout,
        "fd:\tfile_descriptor\tfalse\tBad file descriptor\n\
         ended:\tBroadcast the address before attempting to receive on it\n\
         stdout still works\n",
        "stderr: {}",
        r.stderr
    );
    for slot in [0, 1, 2, 5, 31, 64, 1000] {
        let r = run_with_frames(sv, USE_FD, &[frame_naming_slot(slot)]);
        assert_eq!(
            r.status,
            ExitStatus::Exited(0),
            "slot {slot}; stderr: {}",
            r.stderr
        );
        assert_eq!(
            r.stdout, "ended:\tChannel closed\nstdout still works\n",
            "slot {slot}; stderr: {}",
            r.stderr
        );
    }
}

/// `0x…` ids renumbered by first appearance (as tests/lua_scripts.rs does).
fn renumber_hex(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let digits: String = rest[i + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        if digits.is_empty() {
            out.push_str("0x");
            rest = &rest[i + 2..];
            continue;
        }
        let n = match seen.iter().position(|d| *d == digits) {
            Some(n) => n + 1,
            None => {
                seen.push(digits.clone());
                seen.len()
            }
        };
        out.push_str(&format!("0x{n}"));
        rest = &rest[i + 2 + digits.len()..];
    }
    out.push_str(rest);
    out
}

/// The Lua scripts of tests/lua/sandboxed, run by an unprivileged user
/// (uid/gid 65534): same output as when root runs them. Skipped unless
/// this test runs as root (it must switch users).
fn lua_scripts_as_an_unprivileged_user(_: &Supervisor) {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: not root, cannot switch to an unprivileged user");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/sandboxed");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua") && p.with_extension("out").exists())
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5, "sandboxed scripts found: {scripts:?}");
    for script in scripts {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_luring"))
            .arg(script.file_name().unwrap())
            .current_dir(&dir)
            .uid(65534)
            .gid(65534)
            .stdin(std::process::Stdio::null())
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .unwrap();
        let mut output = String::new();
        reader.read_to_string(&mut output).unwrap();
        let status = child.wait().unwrap();
        let expected = std::fs::read_to_string(script.with_extension("out")).unwrap();
        assert_eq!(
            renumber_hex(&output),
            expected,
            "{} as uid 65534 ({status})",
            script.display()
        );
    }
}

/// Whether `pid` runs (a zombie counts as ended).
fn runs(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| !stat[i + 1..].trim_start().starts_with('Z')),
    }
}

/// A detached sandbox outlives the VM that spawned it, never the process:
/// killing the host (SIGKILL, no clean-up at all) ends it through the
/// supervisor's death. As this user, and as uid 65534 when run as root.
fn a_detached_sandbox_dies_with_the_host(_: &Supervisor) {
    detached_sandbox_dies_with_host_as(None);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        detached_sandbox_dies_with_host_as(Some(65534));
    }
}

fn detached_sandbox_dies_with_host_as(uid: Option<u32>) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/sandboxed/fixtures");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_luring"));
    command
        .arg("detached_forever.lua")
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut host = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(host.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("a PID, got {line:?}"));
    assert!(
        runs(pid),
        "the detached sandbox {pid} should run (uid {uid:?})"
    );
    assert!(
        host.try_wait().unwrap().is_none(),
        "the host should wait for its detached sandbox"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while runs(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the detached sandbox {pid} still runs 30 s after its host died"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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
        (
            "messages_from_the_host_reach_the_inbox",
            messages_from_the_host_reach_the_inbox,
        ),
        (
            "a_malformed_frame_closes_the_inbox",
            a_malformed_frame_closes_the_inbox,
        ),
        ("forged_slots_reach_nothing", forged_slots_reach_nothing),
        (
            "a_detached_sandbox_dies_with_the_host",
            a_detached_sandbox_dies_with_the_host,
        ),
    ];
    let unprivileged: (&str, Case) = (
        "lua_scripts_as_an_unprivileged_user",
        lua_scripts_as_an_unprivileged_user,
    );
    let mut failed = 0;
    for (name, case) in cases.iter().chain([&unprivileged]) {
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
