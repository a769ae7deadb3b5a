//! Sandboxed actors spawned from Rust through the public API only:
//! round trips, a descriptor arriving usable, every monitor reason a
//! plugin can provoke, kill, refused options and messages, stdin. Runs
//! without the libtest harness (the supervisor is forked before any thread
//! exists); as root it runs itself again as uid 65534.

use std::os::fd::OwnedFd;
use std::time::Duration;

use luring::{
    ActorEnded, ActorHandle, ActorSpec, DeliveryError, KillError, Mailbox, Message, Runtime,
    SandboxOptions, SandboxStdin, SpawnError,
};

const WAIT: Duration = Duration::from_secs(30);
const UNPRIVILEGED_RUN: &str = "LURING_TEST_UNPRIVILEGED_RUN";
/// Set in the child that `stdin_shared_with_plugin` runs with a piped stdin.
const SHARE_CHILD: &str = "LURING_TEST_SHARE_STDIN_CHILD";

/// A plugin that answers `{n, reply}` with `n * 2` (and the channel it
/// was given, which names the replies mailbox again) and ends on `'stop'`.
const DOUBLER: &str = r#"
local inbox = require 'inbox'
while true do
  local m = inbox:receive()
  if m == 'stop' then return end
  m.reply:send{ doubled = m.n * 2, context = _CONTEXT, reply = m.reply }
end
"#;

fn ended(watch: &Mailbox) -> ActorEnded {
    let notice = watch
        .recv_timeout(WAIT)
        .expect("a monitor notice within 30 s");
    ActorEnded::from_message(&notice).expect("a monitor notice")
}

fn sandboxed(name: &str, source: &str, options: SandboxOptions, mb: &Mailbox) -> ActorSpec {
    ActorSpec::source(name, source)
        .sandbox(options)
        .replies_to(mb)
        .monitor(mb)
}

/// The doubler plugin with default options, replying to and monitored by `mb`.
fn spawn_doubler(runtime: &Runtime, mb: &Mailbox) -> ActorHandle {
    runtime
        .spawn(sandboxed("doubler.lua", DOUBLER, SandboxOptions::new(), mb))
        .unwrap()
}

fn round_trip() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = spawn_doubler(&runtime, &mb);
    assert!(plugin.is_sandboxed());
    for n in [1.0, 21.0, -4.5] {
        plugin
            .send(Message::object([
                ("n", n.into()),
                ("reply", mb.address().into()),
            ]))
            .unwrap();
        let reply = mb.recv_timeout(WAIT).unwrap();
        assert_eq!(
            reply.get("doubled").and_then(|d| d.as_number()),
            Some(n * 2.0)
        );
        assert_eq!(
            reply.get("context").and_then(|c| c.as_str()),
            Some("worker")
        );
        match reply.get("reply") {
            Some(Message::Address(a)) => assert!(a.same_actor(&mb.address())),
            other => panic!("the plugin's channel came back as {other:?}"),
        }
    }
    plugin.send("stop".into()).unwrap();
    let end = ended(&mb);
    assert!(end.sandboxed, "{end:?}");
    assert_eq!((end.reason.as_str(), end.code), ("exited", Some(0)));
    // Its control socket is gone: sends fail and the message comes back.
    wait_until(|| plugin.is_closed());
    let (back, why) = plugin.send_checked("late".into()).unwrap_err();
    assert!(matches!(why, DeliveryError::Closed), "{why}");
    assert_eq!(back.as_str(), Some("late"));
    assert_eq!(runtime.shutdown().unwrap(), None);
}

fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met in 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A read-only descriptor sent from Rust is installed in the sandbox's
/// table and reads the file; writing through it fails.
fn fd_capability_arrives_usable() {
    let dir = temp_dir("fd");
    let path = dir.join("input.txt");
    std::fs::write(&path, "words from the host").unwrap();
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let source = r#"
        local file = require 'file'
        local m = require('inbox'):receive()
        local s = file.stream.new(m.input)
        local buf = byte_span.new(64)
        local n = s:read_some(buf)
        local wrote = pcall(s.write_some, s, 'x')
        m.reply:send{ text = tostring(buf:slice(1, n)), wrote = wrote }
    "#;
    let plugin = runtime
        .spawn(sandboxed("reader.lua", source, SandboxOptions::new(), &mb))
        .unwrap();
    let fd: OwnedFd = std::fs::File::open(&path).unwrap().into();
    plugin
        .send(Message::object([
            ("input", Message::Fd(fd)),
            ("reply", mb.address().into()),
        ]))
        .unwrap();
    let reply = mb.recv_timeout(WAIT).unwrap();
    assert_eq!(
        reply.get("text").and_then(|t| t.as_str()),
        Some("words from the host")
    );
    assert!(matches!(reply.get("wrote"), Some(Message::Bool(false))));
    assert_eq!(ended(&mb).code, Some(0));
    std::fs::remove_dir_all(dir).unwrap();
}

fn temp_dir(what: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "luring-emb-sbx-{what}-{}-{}",
        std::process::id(),
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// Each way a plugin can end, as its monitor tells it.
fn monitor_reasons() {
    let runtime = Runtime::builder().build().unwrap();
    let cases: &[(&str, &str, SandboxOptions, &str, Option<i32>)] = &[
        (
            "returns.lua",
            "return",
            SandboxOptions::new(),
            "exited",
            Some(0),
        ),
        (
            "exits.lua",
            "require('system').exit(3)",
            SandboxOptions::new(),
            "exited",
            Some(3),
        ),
        // The codes the runtime once used for its own reasons are the
        // script's like any other: only the runtime's end frame says
        // `memory` or `failed`.
        (
            "exits65.lua",
            "require('system').exit(65)",
            SandboxOptions::new(),
            "exited",
            Some(65),
        ),
        (
            "exits66.lua",
            "require('system').exit(66)",
            SandboxOptions::new(),
            "exited",
            Some(66),
        ),
        (
            "exits67.lua",
            "require('system').exit(67)",
            SandboxOptions::new().memory(8 << 20),
            "exited",
            Some(67),
        ),
        (
            "crashes.lua",
            "error('boom')",
            SandboxOptions::new(),
            "exited",
            Some(1),
        ),
        (
            "syntax.lua",
            "this is not lua",
            SandboxOptions::new(),
            "exited",
            Some(1),
        ),
        (
            "bomb.lua",
            "local t = {} while true do t[#t + 1] = string.rep('x', 1e5) .. #t end",
            SandboxOptions::new().memory(8 << 20),
            "memory",
            None,
        ),
        (
            "loops.lua",
            "while true do end",
            SandboxOptions::new().cpu_seconds(1),
            "cpu_budget",
            None,
        ),
    ];
    let mut watches = Vec::new();
    for (name, source, options, _, _) in cases {
        let mb = runtime.mailbox();
        runtime
            .spawn(sandboxed(name, source, options.clone(), &mb))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        watches.push(mb);
    }
    for ((name, _, _, reason, code), mb) in cases.iter().zip(&watches) {
        let end = ended(mb);
        assert_eq!(
            (end.reason.as_str(), end.code),
            (*reason, *code),
            "{name}: {end:?}"
        );
        assert!(end.sandboxed);
    }
}

/// `kill` ends a plugin at once (reason `killed`, SIGKILL); a second kill
/// does nothing; an in-process actor cannot be killed alone.
fn kill() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = runtime
        .spawn(sandboxed(
            "idle.lua",
            "require('inbox'):receive()",
            SandboxOptions::new(),
            &mb,
        ))
        .unwrap();
    assert!(!plugin.is_closed());
    plugin.kill().unwrap();
    let end = ended(&mb);
    assert_eq!(
        (end.reason.as_str(), end.signal),
        ("killed", Some(libc::SIGKILL))
    );
    assert!(plugin.is_closed());
    plugin.kill().unwrap();
    let local = runtime
        .spawn(ActorSpec::source("local.lua", "require('inbox'):receive()"))
        .unwrap();
    let err = local.kill().unwrap_err();
    assert!(matches!(err, KillError::NotSandboxed), "{err}");
    assert!(err.to_string().contains("shutdown"), "{err}");
}

/// A plugin still running when the runtime shuts down is killed, and its
/// monitor told.
fn shutdown_kills_plugins() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = runtime
        .spawn(sandboxed(
            "sleeps.lua",
            "require('time').sleep(3600)",
            SandboxOptions::new(),
            &mb,
        ))
        .unwrap();
    assert_eq!(runtime.shutdown().unwrap(), None);
    assert_eq!(ended(&mb).reason, "killed");
    assert!(plugin.is_closed());
    let err = runtime
        .spawn(sandboxed("late.lua", "return", SandboxOptions::new(), &mb))
        .unwrap_err();
    assert!(matches!(err, SpawnError::Ended), "{err}");
}

/// Options out of range, a granted path that does not exist, options that
/// do not go together: a clear error naming the option, nothing started.
fn bad_options() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let bad: &[(SandboxOptions, &str)] = &[
        (SandboxOptions::new().memory(1000), "memory"),
        (SandboxOptions::new().cpu_seconds(0), "cpu_seconds"),
        (SandboxOptions::new().open_files(3), "open_files"),
        (SandboxOptions::new().processes(1 << 20), "processes"),
        (
            SandboxOptions::new().read_only("relative/path"),
            "read_only",
        ),
        (SandboxOptions::new().read_write("/a\0b"), "read_write"),
        (
            SandboxOptions::new().network_loopback(0..100, []),
            "network",
        ),
    ];
    for (options, named) in bad {
        let err = runtime
            .spawn(sandboxed("p.lua", "return", options.clone(), &mb))
            .unwrap_err();
        assert!(matches!(err, SpawnError::InvalidSandboxOption(_)), "{err}");
        assert!(err.to_string().contains(named), "{named}: {err}");
    }
    let err = runtime
        .spawn(sandboxed(
            "p.lua",
            "return",
            SandboxOptions::new().read_only("/no/such/path/luring"),
            &mb,
        ))
        .unwrap_err();
    assert!(matches!(err, SpawnError::Sandbox(_)), "{err}");
    assert!(err.to_string().contains("/no/such/path/luring"), "{err}");
    let err = runtime
        .spawn(ActorSpec::source("p.lua", "return").replies_to(&mb))
        .unwrap_err();
    assert!(err.to_string().contains("replies_to"), "{err}");
    let err = runtime
        .spawn(
            ActorSpec::source("p.lua", "return")
                .sandbox(SandboxOptions::new())
                .memory_limit(Some(1 << 20)),
        )
        .unwrap_err();
    assert!(err.to_string().contains("SandboxOptions::memory"), "{err}");
    assert!(
        mb.try_recv().is_err(),
        "nothing was started by the bad options"
    );
}

/// Reads `system.in_` to its end and answers `{ text = all of it, ended =
/// why reading stopped }`.
const STDIN_READER: &str = r#"
    local system = require 'system'
    local reply = require('inbox'):receive()
    local buf, parts = byte_span.new(64), {}
    while true do
      local ok, n = pcall(system.in_.read_some, system.in_, buf)
      if not ok then
        reply:send{ text = table.concat(parts), ended = tostring(n) }
        return
      end
      parts[#parts + 1] = tostring(buf:slice(1, n))
    end
"#;

/// The text a [`STDIN_READER`] plugin spawned with `options` read.
fn read_by_plugin(options: SandboxOptions, feed: Option<std::io::PipeWriter>) -> String {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = runtime
        .spawn(sandboxed("stdin.lua", STDIN_READER, options, &mb))
        .unwrap();
    plugin.send(mb.address().into()).unwrap();
    if let Some(writer) = feed {
        use std::io::Write;
        // Two writes: the plugin may see them as one read or two.
        (&writer).write_all(b"first line\n").unwrap();
        (&writer).write_all(b"second line\n").unwrap();
        // Dropped: the plugin reads end of file after the lines.
    }
    let reply = mb.recv_timeout(WAIT).unwrap();
    let why = reply.get("ended").and_then(|e| e.as_str()).unwrap();
    assert!(why.contains("End of file"), "{why}");
    assert_eq!(ended(&mb).code, Some(0));
    reply
        .get("text")
        .and_then(|t| t.as_str())
        .unwrap()
        .to_owned()
}

/// `SandboxOptions::stdin`: a pipe's read end (pooled and fresh sandbox),
/// the default `/dev/null`; a directory is refused at spawn.
fn stdin_reaches_plugin() {
    for options in [SandboxOptions::new(), SandboxOptions::new().open_files(64)] {
        let (reader, writer) = std::io::pipe().unwrap();
        let text = read_by_plugin(options.stdin(OwnedFd::from(reader)), Some(writer));
        assert_eq!(text, "first line\nsecond line\n");
    }
    assert_eq!(read_by_plugin(SandboxOptions::new(), None), "");
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let dir: OwnedFd = std::fs::File::open("/").unwrap().into();
    let err = runtime
        .spawn(sandboxed(
            "stdin.lua",
            STDIN_READER,
            SandboxOptions::new().stdin(dir),
            &mb,
        ))
        .unwrap_err();
    assert!(matches!(err, SpawnError::Sandbox(_)), "{err}");
    assert!(err.to_string().contains("is a directory"), "{err}");
    assert!(mb.try_recv().is_err(), "nothing was started");
}

/// `SandboxStdin::Share`: the plugin reads this process's stdin. Run in a
/// child of this test binary whose stdin is a pipe with known text.
fn stdin_shared_with_plugin() {
    if std::env::var_os(SHARE_CHILD).is_some() {
        let text = read_by_plugin(SandboxOptions::new().stdin(SandboxStdin::Share), None);
        assert_eq!(text, "the host's own stdin\n");
        return;
    }
    use std::io::Write;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("stdin_shared_with_plugin")
        .env(SHARE_CHILD, "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"the host's own stdin\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("test stdin_shared_with_plugin (") && stdout.contains("1 passed"),
        "{stdout}"
    );
}

/// Messages a sandbox cannot be sent: a directory, a channel to a 65th
/// mailbox besides its replies one. They come back whole; the plugin
/// still works.
fn refused_messages() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = spawn_doubler(&runtime, &mb);
    let dir: OwnedFd = std::fs::File::open("/").unwrap().into();
    let (back, why) = plugin
        .send_checked(Message::object([("dir", Message::Fd(dir))]))
        .unwrap_err();
    assert!(
        matches!(&why, DeliveryError::Refused(r) if r.contains("directory")),
        "{why}"
    );
    assert!(
        matches!(back.get("dir"), Some(Message::Fd(_))),
        "the fd came back"
    );
    // 64 other mailboxes fit (one frame: the reply and 63 more)...
    let others: Vec<Mailbox> = (0..65).map(|_| runtime.mailbox()).collect();
    let more: Vec<Message> = others[1..64].iter().map(|m| m.address().into()).collect();
    plugin
        .send(Message::object([
            ("n", 1.into()),
            ("reply", others[0].address().into()),
            ("more", Message::Array(more)),
        ]))
        .unwrap();
    let reply = others[0].recv_timeout(WAIT).unwrap();
    assert_eq!(reply.get("doubled").and_then(|d| d.as_number()), Some(2.0));
    // ...a 65th does not, and the message comes back.
    let (back, why) = plugin
        .send_checked(Message::object([
            ("n", 5.into()),
            ("reply", others[64].address().into()),
        ]))
        .unwrap_err();
    assert!(
        matches!(&why, DeliveryError::Refused(r) if r.contains("64 other actors")),
        "{why}"
    );
    assert_eq!(back.get("n").and_then(|n| n.as_number()), Some(5.0));
    plugin
        .send(Message::object([
            ("n", 2.into()),
            ("reply", mb.address().into()),
        ]))
        .unwrap();
    let reply = mb.recv_timeout(WAIT).unwrap();
    assert_eq!(reply.get("doubled").and_then(|d| d.as_number()), Some(4.0));
    plugin.kill().unwrap();
}

/// Any mailbox's address sent to a plugin becomes a channel the plugin
/// sends on (a route of its sandbox): its reply reaches that mailbox, with
/// the channel back naming that same mailbox.
fn other_mailboxes_are_reachable() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = spawn_doubler(&runtime, &mb);
    let other = runtime.mailbox();
    for n in [3.0, 4.0] {
        plugin
            .send(Message::object([
                ("n", n.into()),
                ("reply", other.address().into()),
            ]))
            .unwrap();
        let reply = other.recv_timeout(WAIT).unwrap();
        assert_eq!(
            reply.get("doubled").and_then(|d| d.as_number()),
            Some(n * 2.0)
        );
        match reply.get("reply") {
            Some(Message::Address(a)) => assert!(a.same_actor(&other.address())),
            got => panic!("the channel came back as {got:?}"),
        }
    }
    assert!(
        mb.try_recv().is_err(),
        "nothing went to the replies mailbox"
    );
    plugin.send("stop".into()).unwrap();
    let end = ended(&mb);
    assert_eq!((end.reason.as_str(), end.code), ("exited", Some(0)));
    assert_eq!(runtime.shutdown().unwrap(), None);
}

/// An echo plugin: its first message is `{reply = address}`, then it sends
/// every message back there (until its inbox closes).
const ECHO: &str = "local inbox = require 'inbox'
local reply = inbox:receive().reply
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  reply:send(m)
end";

fn echo(runtime: &Runtime, mb: &Mailbox, sandbox: bool) -> luring::ActorHandle {
    let spec = ActorSpec::source("echo.lua", ECHO);
    let spec = if sandbox {
        spec.sandbox(SandboxOptions::new()).replies_to(mb)
    } else {
        spec
    };
    let actor = runtime.spawn(spec).unwrap();
    actor
        .send(Message::object([("reply", mb.address().into())]))
        .unwrap();
    actor
}

/// 100,000 round trips: replies come in order, none lost or twice, whether
/// the spinning receiver read the frame itself or the relay thread did
/// (every 1,000th reply is held back by the plugin until `recv_async` has
/// looked once, found nothing and handed the socket back, and is not
/// polled again before its wake-up: so the relay thread must read that
/// reply and wake it, whatever the scheduler does), and `try_recv` reads a
/// reply that sits in the socket.
fn round_trips_none_lost() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = gated_echo(&runtime, &mb);
    for i in 0..100_000u32 {
        let reply = if i % 1000 == 0 {
            plugin
                .send(Message::object([("hold", Message::from(i))]))
                .unwrap();
            recv_async_through_relay(&mb, || plugin.send(Message::from("go")).unwrap())
        } else if i % 1000 == 500 {
            plugin.send(Message::from(i)).unwrap();
            let mut got = None;
            wait_until(|| {
                got = mb.try_recv().ok();
                got.is_some()
            });
            got.unwrap()
        } else {
            plugin.send(Message::from(i)).unwrap();
            mb.recv_timeout(WAIT).expect("a reply within 30 s")
        };
        assert_eq!(reply.as_number(), Some(f64::from(i)), "round trip {i}");
    }
    assert_eq!(mb.try_recv(), Err(luring::TryRecvError::Empty));
    plugin.kill().unwrap();
}

/// Awaits the next message with `recv_async` on this thread while the
/// plugin holds its reply back: the first poll must find nothing (and
/// hands the socket back), then `release` lets the plugin answer, and the
/// future is not polled again until it is woken (30 s at most). Only the
/// relay thread reads the plugin's socket meanwhile, so the wake-up is its
/// doing.
fn recv_async_through_relay(mb: &Mailbox, release: impl FnOnce()) -> Message {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    struct Woken {
        flag: AtomicBool,
        thread: std::thread::Thread,
    }
    impl std::task::Wake for Woken {
        fn wake(self: std::sync::Arc<Self>) {
            self.flag.store(true, Ordering::SeqCst);
            self.thread.unpark();
        }
    }
    let woken = std::sync::Arc::new(Woken {
        flag: AtomicBool::new(false),
        thread: std::thread::current(),
    });
    let waker = std::task::Waker::from(woken.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(mb.recv_async());
    assert!(
        future.as_mut().poll(&mut cx).is_pending(),
        "a reply came while the plugin held it back"
    );
    release();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        while !woken.flag.swap(false, Ordering::SeqCst) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "the relay thread's wake-up did not come in 30 s"
            );
            std::thread::park_timeout(left);
        }
        if let std::task::Poll::Ready(reply) = future.as_mut().poll(&mut cx) {
            return reply.expect("a reply");
        }
    }
}

/// A sandboxed [`GATED_ECHO`] that replies to `mb`.
fn gated_echo(runtime: &Runtime, mb: &Mailbox) -> ActorHandle {
    let spec = ActorSpec::source("gated_echo.lua", GATED_ECHO)
        .sandbox(SandboxOptions::new())
        .replies_to(mb);
    let plugin = runtime.spawn(spec).unwrap();
    plugin
        .send(Message::object([("reply", mb.address().into())]))
        .unwrap();
    plugin
}

/// An echo that holds a `{ hold = v }` back until `'go'` comes, and
/// answers anything else at once.
const GATED_ECHO: &str = "local inbox = require 'inbox'
local reply = inbox:receive().reply
local held
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  if type(m) == 'table' then held = m.hold
  elseif m == 'go' then reply:send(held)
  else reply:send(m) end
end";

/// `recv_timeout` whose deadline passes while it spins (and reads the
/// socket) returns `Timeout`; the reply then still arrives, once. Every
/// other round trip's reply is held back until after the deadline, so
/// those deadlines expire whatever the scheduler does (on a loaded
/// machine the plugin may answer before the receiver even looks); the
/// others race the spin and may go either way.
fn recv_timeout_expires_while_spinning() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let plugin = gated_echo(&runtime, &mb);
    for i in 0..300u32 {
        // Deadlines within the spin (50 µs).
        let tiny = Duration::from_micros(u64::from(i % 60));
        let reply = if i % 2 == 1 {
            plugin
                .send(Message::object([("hold", Message::from(i))]))
                .unwrap();
            assert_eq!(
                mb.recv_timeout(tiny),
                Err(luring::RecvTimeoutError::Timeout),
                "round trip {i}: a reply held back cannot come in time"
            );
            plugin.send(Message::from("go")).unwrap();
            mb.recv_timeout(WAIT).expect("a reply within 30 s")
        } else {
            plugin.send(Message::from(i)).unwrap();
            match mb.recv_timeout(tiny) {
                Ok(m) => m,
                Err(luring::RecvTimeoutError::Timeout) => {
                    mb.recv_timeout(WAIT).expect("a reply within 30 s")
                }
                Err(e) => panic!("round trip {i}: {e}"),
            }
        };
        assert_eq!(reply.as_number(), Some(f64::from(i)), "round trip {i}");
    }
    assert_eq!(mb.try_recv(), Err(luring::TryRecvError::Empty));
    plugin.kill().unwrap();
}

/// Two sandboxes and an in-process actor feed one mailbox: each one's
/// replies arrive in its order, none lost, none starved.
fn several_feeders_one_mailbox() {
    let runtime = Runtime::builder().build().unwrap();
    let mb = runtime.mailbox();
    let feeders = [
        echo(&runtime, &mb, true),
        echo(&runtime, &mb, true),
        echo(&runtime, &mb, false),
    ];
    let mut next = [0u32; 3];
    for i in 0..10_000u32 {
        for (who, feeder) in feeders.iter().enumerate() {
            feeder
                .send(Message::object([
                    ("who", (who as f64).into()),
                    ("n", f64::from(i).into()),
                ]))
                .unwrap();
        }
        for _ in 0..3 {
            let reply = mb.recv_timeout(WAIT).expect("a reply within 30 s");
            let who = reply.get("who").and_then(|w| w.as_number()).unwrap() as usize;
            let n = reply.get("n").and_then(|n| n.as_number()).unwrap();
            assert_eq!(n, f64::from(next[who]), "feeder {who} out of order");
            next[who] += 1;
        }
    }
    assert_eq!(next, [10_000; 3]);
    assert_eq!(mb.try_recv(), Err(luring::TryRecvError::Empty));
    feeders[0].kill().unwrap();
    feeders[1].kill().unwrap();
}

fn run_unprivileged() {
    use std::os::unix::process::CommandExt;
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .env(UNPRIVILEGED_RUN, "1")
        .uid(65534)
        .gid(65534)
        .stdin(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the suite as uid 65534: {status}");
}

type Case = fn();

fn main() {
    if let Some(problem) = luring_sandbox::Supervisor::user_namespace_problem() {
        println!("skipped: this system refuses user namespaces ({problem})");
        return;
    }
    luring::start_supervisor().expect("supervisor");
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let mut cases: Vec<(&str, Case)> = vec![
        ("round_trip", round_trip),
        ("fd_capability_arrives_usable", fd_capability_arrives_usable),
        ("monitor_reasons", monitor_reasons),
        ("kill", kill),
        ("shutdown_kills_plugins", shutdown_kills_plugins),
        ("bad_options", bad_options),
        ("refused_messages", refused_messages),
        (
            "other_mailboxes_are_reachable",
            other_mailboxes_are_reachable,
        ),
        ("stdin_reaches_plugin", stdin_reaches_plugin),
        ("stdin_shared_with_plugin", stdin_shared_with_plugin),
        ("round_trips_none_lost", round_trips_none_lost),
        (
            "recv_timeout_expires_while_spinning",
            recv_timeout_expires_while_spinning,
        ),
        ("several_feeders_one_mailbox", several_feeders_one_mailbox),
    ];
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root && std::env::var_os(UNPRIVILEGED_RUN).is_none() {
        cases.push(("all_of_the_above_as_uid_65534", run_unprivileged));
    }
    let who = if root { "root" } else { "unprivileged" };
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        match std::panic::catch_unwind(case) {
            Ok(()) => {
                println!("test {name} ({who}) ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ({who}) ... FAILED");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
