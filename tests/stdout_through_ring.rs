//! Standard output and error are written through the ring: a stdout pipe
//! that nobody reads stalls no fiber, and print output, error reports and
//! `system.out:write_some` reach the streams complete and in order.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("luring-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const LINES: usize = 20_000;

const SCRIPT: &str = r#"
local time = require 'time'
local system = require 'system'
spawn(function()
  -- about 1 MiB: far more than the pipe holds, printed without blocking
  for i = 1, 20000 do print(('line %05d %s'):format(i, ('x'):rep(40))) end
  spawn(function() error('report from a detached fiber') end):detach()
  print('after spawn')
end):detach()
local ticks = 0
for _ = 1, 20 do time.sleep(0.002); ticks = ticks + 1 end
time.sleep(0)
print('timers ran ' .. ticks)
-- Opening this module is the signal the test waits for (inotify).
require './marker'
print('main done')
-- (a non-blocking stdout may refuse a user write with EAGAIN: only the
-- runtime's own output retries)
if system.arguments[3] ~= 'nonblocking' then system.out:write_some('bye\n') end
"#;

#[test]
fn a_stdout_pipe_nobody_reads_stalls_no_fiber_and_loses_nothing() {
    blocked_stdout(false);
}

#[test]
fn a_non_blocking_stdout_pipe_nobody_reads_stalls_no_fiber_and_loses_nothing() {
    // The write end is O_NONBLOCK (shared with whoever set it): ring writes
    // then fail with EAGAIN and the runtime waits for POLLOUT.
    blocked_stdout(true);
}

fn blocked_stdout(nonblocking: bool) {
    let dir = scratch_dir(if nonblocking {
        "stdout-ring-nb"
    } else {
        "stdout-ring"
    });
    std::fs::write(dir.join("main.lua"), SCRIPT).unwrap();
    // Module files must be regular files (a FIFO is refused unopened), so
    // the script's progress is seen as the open of a regular file.
    let marker = dir.join("marker.lua");
    std::fs::write(&marker, "return 1\n").unwrap();
    use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
    let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
    inotify.add_watch(&marker, AddWatchFlags::IN_OPEN).unwrap();
    let (out_r, out_w) = std::io::pipe().unwrap();
    if nonblocking {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        fcntl(&out_w, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    }
    let err_w = out_w.try_clone().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg("main.lua")
        .args(nonblocking.then_some("nonblocking"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(out_w)
        .stderr(err_w)
        .spawn()
        .unwrap();
    // Without reading stdout, wait until the script opens the marker: it
    // got there only if its timers ran while the pipe was full.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut fds = [nix::poll::PollFd::new(
            inotify.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, 50u16).expect("poll");
        match inotify.read_events() {
            Ok(events) if !events.is_empty() => break,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
            Err(e) => panic!("reading inotify events: {e}"),
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("luring exited before reaching the marker: {status}");
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the timers fiber was stalled by the blocked stdout");
        }
    }
    // The pipe is really full: the script's output is waiting on it.
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int into the live local.
    assert_eq!(
        unsafe { libc::ioctl(out_r.as_raw_fd(), libc::FIONREAD, &mut queued) },
        0
    );
    assert!(
        queued >= 4096,
        "stdout was not blocked ({queued} bytes in the pipe)"
    );
    let mut output = Vec::new();
    (&out_r).read_to_end(&mut output).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let output = String::from_utf8(output).unwrap();
    let mut lines = output.lines();
    for i in 1..=LINES {
        let expected = format!("line {i:05} {}", "x".repeat(40));
        assert_eq!(lines.next(), Some(expected.as_str()), "line {i}");
    }
    let rest: Vec<&str> = lines.collect();
    assert_eq!(rest[0], "after spawn");
    assert!(
        rest[1].starts_with("Fiber ") && rest[1].contains("report from a detached fiber"),
        "{rest:?}"
    );
    let tail: Vec<&str> = rest
        .iter()
        .copied()
        .filter(|l| !l.starts_with('\t') && !l.starts_with("stack traceback"))
        .skip(2)
        .collect();
    let mut expected = vec!["timers ran 20", "main done"];
    if !nonblocking {
        expected.push("bye");
    }
    assert_eq!(tail, expected, "{rest:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_to_a_closed_pipe_is_lost_without_stopping_the_vm() {
    let dir = scratch_dir("stdout-epipe");
    std::fs::write(
        dir.join("main.lua"),
        "local time = require 'time'\n\
         local system = require 'system'\n\
         for i = 1, 5000 do print(('%05d %s'):format(i, ('y'):rep(60))) end\n\
         time.sleep(0.01)\n\
         system.exit(7)\n",
    )
    .unwrap();
    let (out_r, out_w) = std::io::pipe().unwrap();
    drop(out_r);
    let status = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg("main.lua")
        .current_dir(&dir)
        .stdout(out_w)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_line_printed_reaches_a_terminal_at_once_even_when_the_fiber_never_blocks() {
    use std::os::fd::AsFd;
    let dir = scratch_dir("stdout-pty");
    // Several lines in a row: each must be written before the next print
    // returns, not only the first one.
    std::fs::write(
        dir.join("spin.lua"),
        "for i = 1, 50 do print('line ' .. i) end\nprint('last line')\nwhile true do end\n",
    )
    .unwrap();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg("spin.lua")
        .current_dir(&dir)
        .stdout(Stdio::from(pty.slave))
        .spawn()
        .unwrap();
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("last line") {
        let mut fds = [nix::poll::PollFd::new(
            master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, 10_000u16).expect("poll");
        if ready == 0 {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "not every line reached the terminal within 10 s: {:?}",
                String::from_utf8_lossy(&seen)
            );
        }
        let n = master.read(&mut buf).expect("read from the pty");
        assert!(n > 0, "pty closed before the lines arrived");
        seen.extend_from_slice(&buf[..n]);
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = String::from_utf8_lossy(&seen).replace('\r', "");
    let expected: String = (1..=50).map(|i| format!("line {i}\n")).collect();
    assert!(text.starts_with(&expected), "{text:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
