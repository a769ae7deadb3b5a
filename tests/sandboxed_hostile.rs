//! The message DoS cases of SECURITY.md for sandboxed actors, with a
//! hostile sandbox: this binary registers its own entry under the
//! sandboxed VM's name before the supervisor starts, so `spawn_vm{ sandbox
//! = {} }` in a script run here starts code that writes raw datagrams on
//! its control socket (what a sandbox whose VM was taken over could do).
//! The module's text picks the behaviour. Scripts run in this process
//! (`Runtime::run_file`), so the host's descriptors and memory can be
//! measured; a script reports success with exit code 42.
//!
//! Runs without the libtest harness: the supervisor must be forked before
//! any thread exists.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use luring::sandbox_internals::{self as sbx, recv_boot};
use luring::Message;
use luring_sandbox::{EntryContext, Supervisor};

/// One valid frame carrying `msg`.
fn frame(msg: &Message) -> Vec<u8> {
    luring::ipc::encode_message(msg, luring::ipc::FdPlacement::ScmRights)
        .expect("encodable")
        .bytes
        .to_vec()
}

fn send(control: RawFd, bytes: &[u8]) -> std::io::Result<()> {
    luring_sandbox::sys::send_with_fds(control, bytes, &[])
}

/// One valid frame carrying `value` to route `destination`, its channels
/// naming `channels` (a hand-made frame: the routes a sandbox may claim).
fn routed(value: &luring::ipc::Value<'_>, destination: u32, channels: Vec<u32>) -> Vec<u8> {
    let routing = luring::ipc::Routing {
        destination,
        channels,
    };
    luring::ipc::encode_routed(value, luring::ipc::FdPlacement::ScmRights, &routing)
        .expect("encodable")
}

fn string(s: &str) -> luring::ipc::Value<'static> {
    luring::ipc::Value::String(s.as_bytes().to_vec().into())
}

/// The host's next frame: its value's number (if it is one) and the
/// routes its channels name, in order.
fn host_frame(control: RawFd) -> std::io::Result<(Option<f64>, Vec<u32>)> {
    let mut buf = vec![0u8; 4096];
    let got = luring_sandbox::sys::recv_with_fds(control, &mut buf, 0)?;
    let packet = &buf[..got.len];
    let mode = if packet
        .get(5)
        .is_some_and(|f| f & luring::ipc::FLAG_FIXED_SLOTS != 0)
    {
        luring::ipc::FdMode::FixedSlots {
            table_size: u32::MAX,
        }
    } else {
        luring::ipc::FdMode::ScmRights
    };
    let bad = |e: luring::ipc::FrameError| std::io::Error::other(e.to_string());
    let decoded = luring::ipc::decode(packet, mode, 0).map_err(bad)?;
    let number = match decoded.value {
        luring::ipc::Value::Float(x) => Some(x),
        luring::ipc::Value::Integer(i) => Some(i as f64),
        _ => None,
    };
    let routes = (0..decoded.channel_count)
        .map(|k| decoded.routing.channel(k))
        .collect();
    Ok((number, routes))
}

/// The one route of the host's next frame.
fn given_route(control: RawFd) -> std::io::Result<u32> {
    match host_frame(control)?.1[..] {
        [r] if r != 0 => Ok(r),
        ref other => Err(std::io::Error::other(format!("one route, not {other:?}"))),
    }
}

/// Ids a sandbox given route `r` might try for another: its neighbours
/// (route tables once counted up from 1).
fn guess_from(r: u32) -> u32 {
    if r == u32::MAX {
        r - 1
    } else {
        r + 1
    }
}

/// `bytes` with `fds` attached as two `SCM_RIGHTS` control messages (the
/// kernel merges them for the receiver).
fn send_fd_spray(control: RawFd, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let (a, b) = fds.split_at(fds.len() / 2);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = |n: usize| unsafe { libc::CMSG_SPACE((n * 4) as u32) } as usize;
    let mut cbuf = vec![0u64; (space(a.len()) + space(b.len())).div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut _,
        iov_len: bytes.len(),
    };
    // SAFETY: an all-zero msghdr is valid; every pointer set below points
    // into `iov`, `cbuf` (8-byte aligned, sized with CMSG_SPACE for both
    // messages) or `bytes`, all alive until sendmsg returns; each header
    // comes from CMSG_FIRSTHDR/CMSG_NXTHDR of that msghdr, and its data
    // area holds exactly `part.len()` fds.
    let r = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space(a.len()) + space(b.len());
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        for part in [a, b] {
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN((part.len() * 4) as u32) as usize;
            std::ptr::copy_nonoverlapping(
                part.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                part.len(),
            );
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        libc::sendmsg(control, &msg, 0)
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Reads (and drops) what the host sends until it closes its side.
fn until_host_closes(control: RawFd) {
    let mut buf = vec![0u8; 256 * 1024];
    while let Ok(r) = luring_sandbox::sys::recv_with_fds(control, &mut buf, 0) {
        if r.len == 0 && r.cmsg_count == 0 {
            return;
        }
    }
}

/// The hostile sandbox. Exit codes tell the script which branch ran.
fn hostile_entry(ctx: EntryContext) -> i32 {
    let (_, source) = match recv_boot(ctx.control.as_fd()) {
        Ok(boot) => boot,
        Err(_) => return 90,
    };
    let control = ctx.control.as_raw_fd();
    let text = String::from_utf8_lossy(&source);
    let result: std::io::Result<i32> = match text.trim() {
        // One datagram past the frame bound, then a valid frame: the host
        // rejects the first, closes that channel and never reads the second.
        "huge" => (|| {
            send(control, &vec![0x55u8; luring::ipc::MAX_FRAME_BYTES + 1])?;
            send(control, &frame(&Message::from("after the huge frame")))?;
            until_host_closes(control);
            Ok(7)
        })(),
        // A valid frame with 253 descriptors in two control messages, then
        // a valid plain frame.
        "fd_spray" => (|| {
            let fds = vec![1; 253];
            send_fd_spray(control, &frame(&Message::from("sprayed")), &fds)?;
            send(control, &frame(&Message::from("after the spray")))?;
            until_host_closes(control);
            Ok(8)
        })(),
        // "ready", then on the host's cue the same spray and frame (so a
        // Rust receiver spinning for a reply reads them itself).
        "spray_on_cue" => (|| {
            send(control, &frame(&Message::from("ready")))?;
            let mut buf = vec![0u8; 4096];
            luring_sandbox::sys::recv_with_fds(control, &mut buf, 0)?;
            let fds = vec![1; 253];
            send_fd_spray(control, &frame(&Message::from("sprayed")), &fds)?;
            send(control, &frame(&Message::from("after the spray")))?;
            until_host_closes(control);
            Ok(8)
        })(),
        "good" => (|| {
            send(control, &frame(&Message::from("still here")))?;
            until_host_closes(control);
            Ok(0)
        })(),
        // 20,000 frames of 16 KiB (320 MB) as fast as the host lets it.
        "flood" => (|| {
            let f = frame(&Message::from("x".repeat(16 * 1024).as_str()));
            for _ in 0..20_000 {
                send(control, &f)?;
            }
            Ok(0)
        })(),
        // An end frame that claims `memory`, then an exit code of its own:
        // the host believes the code.
        "forged_end" => (|| {
            send(
                control,
                &luring::ipc::encode_end(luring::ipc::EndReason::Memory),
            )?;
            Ok(5)
        })(),
        // An end frame and the runtime's exit code, then a frame after it:
        // reported as `memory` (only a taken-over runtime writes this),
        // the frame after the end never delivered.
        "end_then_more" => (|| {
            send(
                control,
                &luring::ipc::encode_end(luring::ipc::EndReason::Memory),
            )?;
            send(control, &frame(&Message::from("after the end")))?;
            Ok(sbx::EXIT_RUNTIME_END)
        })(),
        // A malformed end frame (it carries a descriptor), then a frame:
        // the channel closes at the bad one, its descriptor is closed.
        "bad_end" => (|| {
            let end = luring::ipc::encode_end(luring::ipc::EndReason::Memory);
            luring_sandbox::sys::send_with_fds(control, &end, &[1])?;
            send(control, &frame(&Message::from("after the bad end")))?;
            Ok(sbx::EXIT_RUNTIME_END)
        })(),
        // Given one route (a third actor): tells the host its id, sends a
        // frame to it, then one to a route it was never given, then one to
        // the host: the forged frame closes the channel, the frame after it
        // is never delivered.
        "forged_route" => (|| {
            let r = given_route(control)?;
            send(control, &frame(&Message::from(f64::from(r))))?;
            send(control, &routed(&string("to the third"), r, vec![]))?;
            send(control, &routed(&string("forged"), guess_from(r), vec![]))?;
            send(control, &frame(&Message::from("after the forged route")))?;
            until_host_closes(control);
            Ok(11)
        })(),
        // The same with a forged route in a nested channel member.
        "forged_nested_route" => (|| {
            use luring::ipc::Value as W;
            let r = given_route(control)?;
            let nested = W::Array(vec![W::Channel(0), W::Array(vec![W::Channel(1)])]);
            send(control, &routed(&nested, 0, vec![r, guess_from(r)]))?;
            send(control, &frame(&Message::from("after the forged route")))?;
            until_host_closes(control);
            Ok(12)
        })(),
        // Given nothing but the id of a route another sandbox of the same
        // spawner holds (as a number): forged here.
        "borrowed_route" => (|| {
            let Some(r) = host_frame(control)?.0 else {
                return Ok(93);
            };
            send(
                control,
                &routed(&string("from another sandbox"), r as u32, vec![]),
            )?;
            send(control, &frame(&Message::from("after the forged route")))?;
            until_host_closes(control);
            Ok(13)
        })(),
        // Sends until killed.
        "sends_forever" => (|| loop {
            send(control, &frame(&Message::from("more")))?;
        })(),
        _ => Ok(91),
    };
    result.unwrap_or(92)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Waits until this process has `before` descriptors again, failing with
/// where they point after 30 s. The sandbox supervisor reaps an ended
/// sandbox on its own thread, so its descriptors may close a moment after
/// the runtime that spawned it returned (under load, ~100 ms).
fn await_fds_back_to(before: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while fd_count() != before {
        assert!(
            Instant::now() < deadline,
            "descriptors leaked: {before} before, now {:?}",
            fd_links()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Where this process's descriptors point (for a leak's message).
fn fd_links() -> Vec<String> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|p| p.display().to_string())
        .collect()
}

/// A `/proc/self/status` field in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A directory with the hostile modules (each file's text is its mode).
fn modules() -> Dir {
    let dir = std::env::temp_dir().join(format!("luring-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in [
        "huge",
        "fd_spray",
        "good",
        "flood",
        "sends_forever",
        "forged_end",
        "end_then_more",
        "bad_end",
        "spray_on_cue",
        "forged_route",
        "forged_nested_route",
        "borrowed_route",
    ] {
        std::fs::write(dir.join(format!("{mode}.lua")), mode).unwrap();
    }
    Dir(dir)
}

/// The fd spray read by a Rust receiver spinning on the plugin's replies
/// mailbox (it reads the socket itself while it spins): rejected with
/// every descriptor closed, and the channel closed (the frame after it
/// never arrives: the monitor notice is the next message), as when the
/// relay thread reads it.
fn spray_read_by_rust_receiver() {
    let runtime = luring::Runtime::builder().build().unwrap();
    let wait = Duration::from_secs(30);
    let mut with_one_plugin = 0;
    for round in 0..11 {
        let mb = runtime.mailbox();
        let plugin = runtime
            .spawn(
                luring::ActorSpec::source("spray_on_cue.lua", "spray_on_cue")
                    .sandbox(luring::SandboxOptions::new())
                    .replies_to(&mb)
                    .monitor(&mb),
            )
            .unwrap();
        let ready = mb.recv_timeout(wait).expect("ready within 30 s");
        assert_eq!(ready.as_str(), Some("ready"));
        // With one plugin alive the count is the same each round: what an
        // earlier round opened is closed once its relay thread ended.
        if round == 0 {
            with_one_plugin = fd_count();
        }
        await_fds_back_to(with_one_plugin);
        plugin.send(Message::from("go")).unwrap();
        // Spins (reading the socket) as the spray comes; nothing follows
        // it: the next message is the monitor notice. Which reader took the
        // spray decides whether the sandbox sees its channel close and ends
        // by itself ("exited", possibly within these 20 ms on a loaded
        // machine) or waits to be killed.
        let early = match mb.recv_timeout(Duration::from_millis(20)) {
            Ok(m) => Some(m),
            Err(luring::RecvTimeoutError::Timeout) => None,
            Err(e) => panic!("the plugin's mailbox: {e:?}"),
        };
        let killed = early.is_none();
        let notice = match early {
            Some(m) => m,
            None => {
                plugin.kill().unwrap();
                mb.recv_timeout(wait).expect("the notice within 30 s")
            }
        };
        let end = luring::ActorEnded::from_message(&notice)
            .unwrap_or_else(|| panic!("a monitor notice, got {notice:?}"));
        if killed {
            assert!(
                matches!(&*end.reason, "killed" | "exited"),
                "{}",
                end.reason
            );
        } else {
            assert_eq!(end.reason, "exited");
        }
    }
}

/// Runs `script` (from `dir`) in this process; it must exit 42.
fn run_script(dir: &Path, name: &str, script: &str) {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let status = luring::Runtime::new()
        .unwrap()
        .run_file(&path, &[])
        .unwrap();
    assert_eq!(status.code(), 42, "{name} failed (its output is above)");
}

const CHECK: &str = r#"
local inbox = require 'inbox'
local system = require 'system'
local function expect(what, got, want)
  if got ~= want then
    print(what .. ': got ' .. tostring(got) .. ', expected ' .. tostring(want))
    system.exit(1)
  end
end
"#;

/// A frame over the bound closes that sandbox's channel only: the frame
/// after it is never delivered, the monitor still reports how the sandbox
/// ended, and another sandbox's messages still arrive.
fn huge_frame(dir: &Path) {
    let before = fd_count();
    run_script(
        dir,
        "huge_main.lua",
        &format!(
            "{CHECK}
local bad = spawn_vm{{ module = '/huge', sandbox = {{}}, monitor = true }}
bad:close() -- the sandbox ends once it sees this
local n = inbox:receive()
expect('first message', type(n), 'table')
expect('reason', n.reason, 'exited')
expect('code', n.code, 7)
local good = spawn_vm{{ module = '/good', sandbox = {{}} }}
expect('other sandbox', inbox:receive(), 'still here')
system.exit(42)
"
        ),
    );
    await_fds_back_to(before);
}

/// A frame carrying 253 descriptors (over the bound, in two control
/// messages) is rejected with every descriptor closed; the channel closes.
fn fd_spray(dir: &Path) {
    let before = fd_count();
    run_script(
        dir,
        "spray_main.lua",
        &format!(
            "{CHECK}
local bad = spawn_vm{{ module = '/fd_spray', sandbox = {{}}, monitor = true }}
bad:close()
local n = inbox:receive()
expect('first message', type(n), 'table')
expect('reason', n.reason, 'exited')
expect('code', n.code, 8)
system.exit(42)
"
        ),
    );
    await_fds_back_to(before);
}

/// Routes a taken-over sandbox was not given: a frame to one, or naming
/// one in a nested channel, closes its channel (nothing after it is
/// delivered) and reaches nobody; a route only another sandbox of the same
/// spawner holds is forged too. The route it was given works.
fn forged_routes(dir: &Path) {
    let before = fd_count();
    run_script(
        dir,
        "routes_main.lua",
        &format!(
            "{CHECK}
if _CONTEXT == 'worker' then
  -- The third actor: keeps what it receives; tells on request.
  local main = inbox:receive()
  local got = {{}}
  while true do
    local m = inbox:receive()
    if m == 'what?' then main:send(table.concat(got, ', ')) return end
    got[#got + 1] = tostring(m)
  end
end
local third = spawn_vm{{ module = '.' }}
third:send(inbox)
local a = spawn_vm{{ module = '/forged_route', sandbox = {{}}, monitor = true }}
a:send{{ third = third }}
a:close()
local route_of_a = inbox:receive()
expect('A: its route id', type(route_of_a), 'number')
local n = inbox:receive()
expect('A: then', type(n), 'table')
expect('A: code', n.code, 11)
local b = spawn_vm{{ module = '/borrowed_route', sandbox = {{}}, monitor = true }}
b:send(route_of_a)
b:close()
n = inbox:receive()
expect('B: first message', type(n), 'table')
expect('B: code', n.code, 13)
local c = spawn_vm{{ module = '/forged_nested_route', sandbox = {{}}, monitor = true }}
c:send{{ third = third }}
c:close()
n = inbox:receive()
expect('C: first message', type(n), 'table')
expect('C: code', n.code, 12)
third:send('what?')
expect('the third actor got', inbox:receive(), 'to the third')
system.exit(42)
"
        ),
    );
    await_fds_back_to(before);
}

/// End frames from a taken-over sandbox: one with an exit code that is
/// not the runtime's is not believed; the end is the last frame read (what
/// follows is never delivered); a malformed one closes the channel (its
/// descriptor closed) and the exit code is reported as it is.
fn end_frames(dir: &Path) {
    let before = fd_count();
    run_script(
        dir,
        "end_main.lua",
        &format!(
            "{CHECK}
local function ended(module)
  local ch = spawn_vm{{ module = module, sandbox = {{}}, monitor = true }}
  local n = inbox:receive()
  expect(module .. ': first message', type(n), 'table')
  expect(module .. ': monitor', n.monitor, 'ended')
  return n
end
local n = ended('/forged_end')
expect('forged reason', n.reason, 'exited')
expect('forged code', n.code, 5)
n = ended('/end_then_more')
expect('end reason', n.reason, 'memory')
expect('end code', n.code, nil)
n = ended('/bad_end')
expect('bad end reason', n.reason, 'exited')
expect('bad end code', n.code, 1)
system.exit(42)
"
        ),
    );
    // The same through a Rust runtime (its relay thread reads the frames).
    let runtime = luring::Runtime::builder().build().unwrap();
    for (mode, reason, code) in [
        ("forged_end", "exited", Some(5)),
        ("end_then_more", "memory", None),
        ("bad_end", "exited", Some(1)),
    ] {
        let mb = runtime.mailbox();
        let spec = luring::ActorSpec::source(format!("{mode}.lua"), mode)
            .sandbox(luring::SandboxOptions::new())
            .replies_to(&mb)
            .monitor(&mb);
        runtime.spawn(spec).unwrap();
        let first = mb.recv_timeout(Duration::from_secs(30)).unwrap();
        let end = luring::ActorEnded::from_message(&first)
            .unwrap_or_else(|| panic!("{mode}: a frame after the end came first: {first:?}"));
        assert_eq!((end.reason.as_str(), end.code), (reason, code), "{mode}");
    }
    runtime.shutdown().unwrap();
    drop(runtime);
    await_fds_back_to(before);
}

/// A sandbox sending 320 MB as fast as it can: every message arrives and
/// the host's memory stays flat (it holds one frame at a time).
fn flood_memory(dir: &Path) {
    // Reset the peak RSS (VmHWM) so that it measures this case only.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kb("VmRSS:");
    run_script(
        dir,
        "flood_main.lua",
        &format!(
            "{CHECK}
local ch = spawn_vm{{ module = '/flood', sandbox = {{}}, monitor = true }}
for i = 1, 20000 do
  local m = inbox:receive()
  if #m ~= 16384 then expect('message ' .. i, #m, 16384) end
end
local n = inbox:receive()
expect('reason', n.reason, 'exited')
expect('code', n.code, 0)
system.exit(42)
"
        ),
    );
    let peak = status_kb("VmHWM:");
    println!("flood: RSS before {before} kB, peak {peak} kB (peak reset: {reset})");
    // Generous: 320 MB went through; the host may grow by 64 MB at most.
    assert!(
        peak < before + 64 * 1024,
        "host memory grew under a flood: {before} kB -> peak {peak} kB"
    );
}

/// Children of `pid` that are zombies.
fn zombie_children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // "pid (comm) S ppid ...": comm may hold spaces, the last ')' ends it.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let ppid = fields.next().and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(pid) && state == Some("Z") {
            out.push(child);
        }
    }
    out
}

/// A sandbox killed while it is blocked sending: the spawner sees its
/// channel closed and the monitor's report; the supervisor reaps it.
fn crash_mid_send(dir: &Path, sv: &Supervisor) {
    let before = fd_count();
    run_script(
        dir,
        "crash_main.lua",
        &format!(
            "{CHECK}
local ch = spawn_vm{{ module = '/sends_forever', sandbox = {{}}, monitor = true }}
expect('first', inbox:receive(), 'more')
-- It is blocked in sendmsg now (the host reads one frame at a time).
ch:kill()
local ok, e = pcall(ch.send, ch, 'x')
expect('send after kill', tostring(e), 'Channel closed')
local n = inbox:receive()
while n == 'more' do n = inbox:receive() end -- the frames already read
expect('reason', n.reason, 'killed')
expect('signal', n.signal, 9)
system.exit(42)
"
        ),
    );
    await_fds_back_to(before);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let zombies = zombie_children(sv.pid());
        if zombies.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "zombies of the supervisor after 30 s: {zombies:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The VM that spawned a sandbox ends while the sandbox sends as fast as
/// it can (its frames are read on that VM's ring): a supervised sandbox is
/// killed with it, a detached one is handed to a relay thread and killed
/// when the process ends; nothing hangs, no descriptor is left behind.
fn spawner_ends_mid_send(dir: &Path) {
    let before = fd_count();
    let worker = "local inbox = require 'inbox'
local detach = ...
local ch = spawn_vm{ module = '/sends_forever', sandbox = {} }
for _ = 1, 3 do assert(inbox:receive() == 'more') end
if detach == 'detach' then ch:detach() end
";
    std::fs::write(dir.join("ends_mid_send.lua"), worker).unwrap();
    std::fs::write(
        dir.join("detaches_mid_send.lua"),
        worker.replace("local detach = ...", "local detach = 'detach'"),
    )
    .unwrap();
    run_script(
        dir,
        "ends_main.lua",
        &format!(
            "{CHECK}
for _, w in ipairs({{ '/ends_mid_send', '/detaches_mid_send' }}) do
  spawn_vm{{ module = w, monitor = true }}
  local n = inbox:receive()
  expect(w, n.reason, 'normal')
end
system.exit(42)
"
        ),
    );
    await_fds_back_to(before);
}

fn main() {
    if let Some(problem) = Supervisor::user_namespace_problem() {
        println!("skipped: this system refuses user namespaces ({problem})");
        return;
    }
    luring_sandbox::register_entry(sbx::VM_ENTRY, hostile_entry).expect("register");
    luring::start_supervisor().expect("supervisor");
    let sv = sbx::supervisor().expect("supervisor");
    let dir = modules();
    // A first run warms what the runtime keeps for the process's life, so
    // descriptor counts compare like with like.
    run_script(&dir.0, "warm.lua", "require('system').exit(42)");
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let cases: &[(&str, &dyn Fn())] = &[
        ("huge_frame", &|| huge_frame(&dir.0)),
        ("fd_spray", &|| fd_spray(&dir.0)),
        ("spray_read_by_rust_receiver", &spray_read_by_rust_receiver),
        ("end_frames", &|| end_frames(&dir.0)),
        ("crash_mid_send", &|| crash_mid_send(&dir.0, sv)),
        ("flood_memory", &|| flood_memory(&dir.0)),
        ("spawner_ends_mid_send", &|| spawner_ends_mid_send(&dir.0)),
        ("forged_routes", &|| forged_routes(&dir.0)),
    ];
    let mut failed = 0;
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(case)) {
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
