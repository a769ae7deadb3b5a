//! Socket ops leave no fd behind: a luring process runs many fd-passing
//! receives that the kernel truncated (MSG_CTRUNC), receives and accepts
//! that were interrupted or completed for a fiber that dropped the result,
//! and connections over a pathname socket in a temporary directory; its
//! fd count afterwards equals the count before.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str = r#"
local unix = require 'unix'
local ip = require 'ip'
local system = require 'system'
local dir = system.arguments[3]
local line = byte_span.new(16)
-- modules loaded and objects warmed up before the first count
local a, b = unix.stream_socket.pair()
local buf = byte_span.new(16)
local pa, pb = unix.stream_socket.pair()
local x, y = pa:release(), pb:release()
print('ready')
system.in_:read_some(line)

for _ = 1, 300 do
  -- three fds, room for one: the one that came is closed, EMSGSIZE
  a:send_with_fds('m', { x, y, x })
  local ok, e = pcall(b.receive_with_fds, b, buf, 1)
  assert(not ok and e.code == 90, tostring(e))
  -- a receive that completes for a fiber interrupted too late: it drops
  -- what it got
  local f = spawn(function() b:receive_with_fds(buf, 2) end)
  this_fiber.yield()
  a:send_with_fds('n', { x, y })
  f:interrupt()
  f:join()
  -- a receive interrupted while waiting
  f = spawn(function() pcall(b.receive_with_fds, b, buf, 2) end)
  this_fiber.yield()
  f:interrupt()
  f:join()
end

-- a pathname socket in the temporary directory
local path = dir .. '/sock'
local acc = unix.stream_acceptor.new()
acc:open()
acc:bind(path)
acc:listen()
assert(acc.local_path == path, acc.local_path)
for _ = 1, 200 do
  local f = spawn(function() return acc:accept() end)
  local c = unix.stream_socket.new()
  c:connect(path)
  local s = f:join()
  c:write_some('x')
  assert(s:read_some(buf) == 1)
  c:close()
  s:close()
  -- an accept interrupted while waiting
  f = spawn(function() pcall(acc.accept, acc) end)
  this_fiber.yield()
  f:interrupt()
  f:join()
end
acc:close()

-- tcp: accepted connections whose fiber was interrupted too late
local tacc = ip.tcp.acceptor.new()
tacc:open('v4')
tacc:bind('127.0.0.1', 0)
tacc:listen()
for _ = 1, 200 do
  local f = spawn(function() tacc:accept() end)
  this_fiber.yield()
  local c = ip.tcp.socket.new()
  c:connect('127.0.0.1', tacc.local_port)
  f:interrupt()
  f:join()
  c:close()
end
tacc:close()

-- multishot accept: connections queued when the acceptor is closed, or
-- collected while still armed
for i = 1, 100 do
  local a = ip.tcp.acceptor.new()
  a:open('v4')
  a:bind('127.0.0.1', 0)
  a:listen()
  local f = spawn(function() return a:accept() end)
  local c = ip.tcp.socket.new()
  c:connect('127.0.0.1', a.local_port)
  local s = f:join()
  local q = ip.tcp.socket.new()
  q:connect('127.0.0.1', a.local_port)
  s:close()
  q:close()
  c:close()
  if i % 2 == 0 then a:close() end
end
collectgarbage()
collectgarbage()
print('done')
system.in_:read_some(line)
"#;

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("luring runs")
        .count()
}

#[test]
fn socket_ops_leak_no_fd() {
    let dir = std::env::temp_dir().join(format!("luring-socket-fd-leak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let script = dir.join("leak.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(&script)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("luring starts");
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let before = fd_count(pid);
    stdin.write_all(b"go\n").unwrap();
    line.clear();
    let deadline = Instant::now() + Duration::from_secs(120);
    out.read_line(&mut line).unwrap();
    // Cancelled ops (collected acceptors) release their fds when their
    // completions are reaped, which the waiting VM does as they come.
    let mut after = fd_count(pid);
    while after != before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        after = fd_count(pid);
    }
    stdin.write_all(b"end\n").unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        line,
        "done\n",
        "script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(after, before, "fds before and after");
    assert!(output.status.success());
}
