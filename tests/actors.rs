//! Actor scale tests: many actors spawned and joined, many messages across
//! threads with none lost or duplicated, teardown with every kind of
//! object alive. Each runs the `luring` binary on a script written to a
//! temporary directory and checks its output and exit status.

#[path = "support/scratch.rs"]
mod scratch;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn script(name: &str, src: &str) -> PathBuf {
    scratch::scratch_file("actors", name, src)
}

/// Runs the script; fails the test if it takes longer than `deadline`.
fn run(path: &PathBuf, args: &[&str], deadline: Duration) -> (i32, String, String) {
    run_command(
        Command::new(env!("CARGO_BIN_EXE_luring")),
        path,
        args,
        deadline,
    )
}

/// `run` with the process's descriptor limit (`RLIMIT_NOFILE`) at `fds`.
fn run_with_fd_limit(
    path: &PathBuf,
    fds: libc::rlim_t,
    deadline: Duration,
) -> (i32, String, String) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luring"));
    let limit = libc::rlimit {
        rlim_cur: fds,
        rlim_max: fds,
    };
    // SAFETY: the closure only calls setrlimit (async-signal-safe) on a
    // struct it owns, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    run_command(cmd, path, &[], deadline)
}

fn run_command(
    mut cmd: Command,
    path: &PathBuf,
    args: &[&str],
    deadline: Duration,
) -> (i32, String, String) {
    let mut child = cmd
        .arg(path)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            panic!("{} did not finish within {deadline:?}", path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_thousand_actors_spawned_and_joined() {
    let path = script(
        "thousand.lua",
        r#"
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  m.back:send(m.i)
  return
end
local n = 1000
local seen = {}
for i = 1, n do
  local w = spawn_vm({ module = '.', monitor = true })
  w:send({ back = inbox, i = i })
end
local replies, ended = 0, 0
while replies < n or ended < n do
  local m = inbox:receive()
  if type(m) == 'table' then
    assert(m.monitor == 'ended' and m.reason == 'normal', m.reason)
    ended = ended + 1
  else
    assert(not seen[m], 'duplicate reply')
    seen[m] = true
    replies = replies + 1
  end
end
print('replies', replies, 'ended', ended)
"#,
    );
    let (code, out, err) = run(&path, &[], Duration::from_secs(300));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "replies\t1000\tended\t1000\n", "")
    );
}

/// An actor holds no descriptor of its own (its import root is shared):
/// under a limit of 64 descriptors, 300 actors live at once, workers spawn
/// workers, and a worker still loads a module beneath the root afterwards.
#[test]
fn more_actors_alive_than_the_descriptor_limit() {
    script("fdless_helper.lua", "answer = 42\n");
    let path = script(
        "fdless.lua",
        r#"
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  if m.child then
    -- a worker's own spawn shares the same root
    local w = spawn_vm('.')
    w:send({ back = m.back, i = m.i + 1000 })
  end
  m.back:send(m.i)
  pcall(inbox.receive, inbox)  -- alive until no one holds its address
  return
end
local n, alive, seen = 300, {}, {}
for i = 1, n do
  alive[i] = spawn_vm('.')
  alive[i]:send({ back = inbox, i = i, child = i <= 10 })
end
for _ = 1, n + 10 do
  local i = inbox:receive()
  assert(not seen[i], 'duplicate reply')
  seen[i] = true
end
print('alive', n + 10, 'module', require('./fdless_helper').answer)
"#,
    );
    let (code, out, err) = run_with_fd_limit(&path, 64, Duration::from_secs(120));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "alive\t310\tmodule\t42\n", "")
    );
}

#[test]
fn messages_across_threads_arrive_once_each() {
    // 16 fibers of an actor on another thread send 1,000,000 tagged
    // messages concurrently; the receiver checks each tag arrives exactly once.
    let path = script(
        "across.lua",
        r#"
local inbox = require 'inbox'
local FIBERS = 16
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  local fibers = {}
  for f = 1, FIBERS do
    fibers[f] = spawn(function()
      for i = f, m.n, FIBERS do m.back:send(i) end
    end)
  end
  for f = 1, FIBERS do fibers[f]:join() end
  return
end
local n = tonumber(require('system').arguments[3])
local w = spawn_vm({ module = '.', inherit_context = false })
w:send({ back = inbox, n = n })
local seen, count = {}, 0
for _ = 1, n do
  local i = inbox:receive()
  assert(not seen[i], 'duplicate ' .. i)
  seen[i] = true
  count = count + 1
end
w = nil
collectgarbage()
-- nothing more: every sender is gone
local ok, e = pcall(inbox.receive, inbox)
print(count, ok, tostring(e))
"#,
    );
    let (code, out, err) = run(&path, &["1000000"], Duration::from_secs(600));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            0,
            "1000000\tfalse\tBroadcast the address before attempting to receive on it\n",
            ""
        )
    );
}

#[test]
fn teardown_with_every_object_kind_alive() {
    // system.exit from a worker on another thread while other actors hold
    // channels, queued messages, blocked sends and receives, timers,
    // mutexes, futures, byte_spans and coroutines.
    let path = script(
        "teardown.lua",
        r#"
local inbox = require 'inbox'
local time = require 'time'
local mutex = require 'mutex'
local function hold_everything()
  local keep = {
    span = byte_span.new(64), co = coroutine.create(function() end),
    mutex = mutex.new(), timer = time.steady_timer.new(),
  }
  keep.mutex:lock()
  spawn(function() keep.mutex:lock() end)
  spawn(function() time.sleep(3600) end)
  return keep
end
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  local keep = hold_everything()
  if m.role == 'exit' then
    -- a moment for the others to block (exit ends them wherever they are)
    time.sleep(0.05)
    require('system').exit(5)
  end
  -- blocked sending to the main actor, which never receives again
  spawn(function() m.back:send({ queued = true }) end)
  inbox:receive()
  return
end
local keep = hold_everything()
local workers = {}
for i = 1, 4 do
  workers[i] = spawn_vm({ module = '.', inherit_context = i % 2 == 0 })
  workers[i]:send({ back = inbox, role = 'hold' })
end
local e = spawn_vm({ module = '.', inherit_context = false })
e:send({ back = inbox, role = 'exit' })
spawn(function() workers[1]:send('never taken?') end)
time.sleep(3600)
"#,
    );
    let (code, _out, err) = run(&path, &[], Duration::from_secs(60));
    assert_eq!(code, 5, "stderr: {err}");
    assert!(!err.contains("panicked at"), "{err}");
}

/// CLOCK_MONOTONIC in seconds, the clock of Lua's `time.steady_clock`.
fn monotonic_now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The nursery (actor/nursery.rs) holds booted VMs and is booting more
/// while the last actor ends: the process still exits at once (its VMs
/// are dropped, its thread joined), not after a delay or never.
#[test]
fn exit_is_prompt_with_vms_pooled_and_booting() {
    let path = script(
        "pooled_exit.lua",
        r#"
local inbox = require 'inbox'
if _CONTEXT == 'worker' then
  inbox:receive().back:send(true)
  return
end
for i = 1, 40 do
  spawn_vm('.'):send({ back = inbox })
  inbox:receive()
end
print(string.format('%.6f', require('time').steady_clock.now().seconds_since_epoch))
"#,
    );
    for _ in 0..5 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Polled every millisecond: the exit time is read within one.
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} did not finish within 60 s", path.display());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let exited = monotonic_now();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        let ended: f64 = stdout.trim().parse().unwrap();
        let exit_time = exited - ended;
        // ~1-3 ms here; a nursery the exit waited for (a boot per pooled
        // VM, or a hang) would take far longer.
        assert!(
            exit_time < 1.0,
            "exit took {exit_time:.3} s after the script ended"
        );
    }
}
