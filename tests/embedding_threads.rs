//! The embedding API from plain threads, through the public API only:
//! spawning (file, module, source), messages both ways, load errors, sends
//! to ended actors, monitors, shutdown, and system.exit inside an embedded
//! runtime.

use std::collections::HashSet;
use std::time::Duration;

use luring::{
    ActorEnded, ActorSpec, Mailbox, Message, RecvTimeoutError, Runtime, SpawnError, TryRecvError,
};

const DEADLINE: Duration = Duration::from_secs(30);

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embedding")
}

fn runtime() -> Runtime {
    Runtime::builder()
        .import_root(fixtures())
        .build()
        .expect("runtime starts")
}

/// 100,000 numbers Rust → Lua → Rust: none lost, none duplicated, in
/// order; the sender and the receiver are different Rust threads.
#[test]
fn hundred_thousand_messages_round_trip_in_order() {
    const N: u32 = 100_000;
    let rt = runtime();
    let replies = rt.mailbox();
    let echo = rt.spawn(ActorSpec::module("workers/echo")).unwrap();
    echo.send(replies.address().into()).unwrap();
    let sender = {
        let echo = echo.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                echo.send(Message::from(i)).unwrap();
            }
        })
    };
    let mut seen = HashSet::new();
    for expected in 0..N {
        let m = replies.recv_timeout(DEADLINE).expect("reply in time");
        let n = m.as_number().expect("a number") as u32;
        assert_eq!(n, expected, "lost or reordered");
        assert!(seen.insert(n), "duplicated {n}");
    }
    sender.join().unwrap();
    assert_eq!(replies.try_recv(), Err(TryRecvError::Empty));
    echo.send("stop".into()).unwrap();
    assert_eq!(rt.shutdown().unwrap(), None);
}

#[test]
fn file_actors_use_their_directory_as_import_root() {
    let rt = Runtime::builder().build().unwrap();
    let replies = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::file(fixtures().join("uses_helper.lua")))
        .unwrap();
    actor
        .send(Message::object([
            ("n", 21.into()),
            ("reply", replies.address().into()),
        ]))
        .unwrap();
    let m = replies.recv_timeout(DEADLINE).unwrap();
    assert_eq!(m.as_number(), Some(42.0));
}

#[test]
fn load_errors_are_returned() {
    let rt = runtime();
    let syntax = rt
        .spawn(ActorSpec::source("bad.lua", "local = 1"))
        .unwrap_err();
    assert!(
        matches!(&syntax, SpawnError::Load { reason, .. } if reason.contains("bad.lua:1")),
        "{syntax}"
    );
    let file = rt
        .spawn(ActorSpec::file(fixtures().join("broken.lua")))
        .unwrap_err();
    assert!(
        matches!(&file, SpawnError::Load { reason, .. } if reason.contains("broken.lua:1")),
        "{file}"
    );
    let missing = rt
        .spawn(ActorSpec::file(fixtures().join("nope.lua")))
        .unwrap_err();
    assert!(missing.to_string().contains("No such file"), "{missing}");
    let module = rt.spawn(ActorSpec::module("workers/nope")).unwrap_err();
    assert!(module.to_string().contains("module not found"), "{module}");
    for bad in ["../escape", "/abs/../x", "", "a//b", "a/.hidden"] {
        let err = rt.spawn(ActorSpec::module(bad)).unwrap_err();
        assert!(matches!(err, SpawnError::InvalidName(_)), "{bad}: {err}");
    }
    let err = rt.spawn(ActorSpec::source("../x.lua", "")).unwrap_err();
    assert!(matches!(err, SpawnError::InvalidName(_)), "{err}");
    // A binary chunk is refused like by the `luring` command.
    let err = rt
        .spawn(ActorSpec::source("bin.lua", b"\x1bLJ\x02".to_vec()))
        .unwrap_err();
    assert!(matches!(err, SpawnError::Load { .. }), "{err}");
    // Nothing else changed: the runtime still spawns.
    let ok = rt.spawn(ActorSpec::source("fine.lua", "return")).unwrap();
    drop(ok);
}

#[test]
fn sending_to_an_ended_actor_gives_the_message_back() {
    let rt = runtime();
    let watch = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::source("quick.lua", "return").monitor(&watch))
        .unwrap();
    let notice = watch.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ActorEnded::from_message(&notice).unwrap().reason, "normal");
    assert!(actor.is_closed());
    let err = actor.send("hello".into()).unwrap_err();
    assert_eq!(err.0.as_str(), Some("hello"));
    assert!(err.to_string().contains("inbox is closed"));
}

#[test]
fn monitors_report_panics() {
    let rt = runtime();
    let watch = rt.mailbox();
    let _actor = rt
        .spawn(ActorSpec::source("boom.lua", "error('boom')").monitor(&watch))
        .unwrap();
    let ended = ActorEnded::from_message(&watch.recv_timeout(DEADLINE).unwrap()).unwrap();
    assert_eq!(ended.reason, "panic");
    assert!(ended.error.unwrap().contains("boom"));
}

/// Lua's send to a Rust mailbox is a rendezvous: the Lua fiber is released
/// only when Rust takes the message.
#[test]
fn lua_senders_wait_until_rust_takes_the_message() {
    let rt = runtime();
    let replies = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::source(
            "rendezvous.lua",
            "local ch = require('inbox'):receive()
             ch:send('first')
             ch:send('second')",
        ))
        .unwrap();
    actor.send(replies.address().into()).unwrap();
    let first = replies.recv_timeout(DEADLINE).unwrap();
    assert_eq!(first.as_str(), Some("first"));
    let second = replies.recv_timeout(DEADLINE).unwrap();
    assert_eq!(second.as_str(), Some("second"));
    // The actor ended after its second send was taken: its channel (the
    // last address) is gone.
    assert_eq!(
        replies.recv_timeout(DEADLINE),
        Err(RecvTimeoutError::Disconnected)
    );
}

/// A Rust mailbox dropped while a Lua fiber sends to it: the fiber gets
/// channel_closed (the actor reports it through its monitor).
#[test]
fn a_dropped_rust_mailbox_closes_the_channel() {
    let rt = runtime();
    let watch = rt.mailbox();
    let target = Mailbox::new();
    let actor = rt
        .spawn(
            ActorSpec::source(
                "closed.lua",
                "local ch = require('inbox'):receive()
                 local ok, err = pcall(ch.send, ch, 'x')
                 error('send: ' .. tostring(err))",
            )
            .monitor(&watch),
        )
        .unwrap();
    actor.send(target.address().into()).unwrap();
    drop(target);
    let ended = ActorEnded::from_message(&watch.recv_timeout(DEADLINE).unwrap()).unwrap();
    assert!(
        ended.error.as_deref().unwrap().contains("channel_closed")
            || ended.error.as_deref().unwrap().contains("closed"),
        "{ended:?}"
    );
}

/// shutdown ends actors blocked in receive, in sleep and in a busy loop
/// of yields; their monitors say `killed`; later spawns are refused.
#[test]
fn shutdown_ends_actors_mid_receive_and_mid_sleep() {
    let rt = runtime();
    let watch = rt.mailbox();
    let ready = rt.mailbox();
    let scripts = [
        ("receiver.lua", "local inbox = require('inbox'); local ch = inbox:receive(); ch:send(1); inbox:receive()"),
        ("sleeper.lua", "local ch = require('inbox'):receive(); ch:send(1); require('time').sleep(3600)"),
        ("yielder.lua", "local ch = require('inbox'):receive(); ch:send(1); while true do this_fiber.yield() end"),
    ];
    let mut actors = Vec::new();
    for (name, src) in scripts {
        let a = rt
            .spawn(ActorSpec::source(name, src).monitor(&watch))
            .unwrap();
        a.send(ready.address().into()).unwrap();
        actors.push(a);
    }
    for _ in 0..actors.len() {
        ready
            .recv_timeout(DEADLINE)
            .expect("each actor started waiting");
    }
    assert!(rt.is_running());
    assert_eq!(rt.shutdown().unwrap(), None);
    assert!(!rt.is_running());
    for _ in 0..actors.len() {
        let ended = ActorEnded::from_message(&watch.recv_timeout(DEADLINE).unwrap()).unwrap();
        assert_eq!(ended.reason, "killed");
    }
    for a in &actors {
        assert!(a.send("late".into()).is_err());
    }
    assert!(matches!(
        rt.spawn(ActorSpec::source("late.lua", "")),
        Err(SpawnError::Ended)
    ));
    // Idempotent.
    assert_eq!(rt.shutdown().unwrap(), None);
}

/// system.exit in an embedded actor ends the runtime, not this process,
/// for every `force` mode; the code reaches the host.
#[test]
fn system_exit_ends_the_runtime_not_the_process() {
    for (src, code) in [
        ("require('system').exit(3)", 3),
        ("require('system').exit(4, {force = 2})", 4),
        ("require('system').exit(5, {force = 'abort'})", 134),
    ] {
        let rt = runtime();
        let watch = rt.mailbox();
        let _idle = rt
            .spawn(ActorSpec::source("idle.lua", "require('inbox'):receive()").monitor(&watch))
            .unwrap();
        rt.spawn(ActorSpec::source("exit.lua", src)).unwrap();
        let ended = rt.wait_timeout(DEADLINE).expect("the runtime ended");
        assert_eq!(ended.unwrap().map(|s| s.code()), Some(code), "{src}");
        let notice = ActorEnded::from_message(&watch.recv_timeout(DEADLINE).unwrap()).unwrap();
        assert_eq!(notice.reason, "killed");
        assert_eq!(rt.shutdown().unwrap().map(|s| s.code()), Some(code));
    }
}

/// Handles are shared by several threads at once.
#[test]
fn handles_are_send_sync_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<luring::ActorHandle>();
    fn assert_shared<T: Send + Sync>() {}
    assert_shared::<Runtime>();
    assert_shared::<Mailbox>();
    let rt = runtime();
    let replies = rt.mailbox();
    let echo = rt.spawn(ActorSpec::module("/workers/echo")).unwrap();
    echo.send(replies.address().into()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let echo = echo.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    echo.send(Message::from(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for _ in 0..4000 {
        let n = replies.recv_timeout(DEADLINE).unwrap().as_number().unwrap() as u32;
        assert!(seen.insert(n));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(seen.len(), 4000);
}

/// `wait` on one thread returns when another thread shuts the runtime
/// down; `Runtime::new()` starts the embedded runtime on first use.
#[test]
fn wait_returns_when_another_thread_shuts_down() {
    let rt = std::sync::Arc::new(Runtime::new().unwrap());
    let ready = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::source(
            "idle.lua",
            "local inbox = require 'inbox'; inbox:receive():send(1); inbox:receive()",
        ))
        .unwrap();
    actor.send(ready.address().into()).unwrap();
    ready.recv_timeout(DEADLINE).unwrap();
    assert!(
        rt.wait_timeout(Duration::from_millis(10)).is_none(),
        "still running"
    );
    let waiter = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.wait().map(|s| s.map(|s| s.code())))
    };
    assert_eq!(rt.shutdown().unwrap(), None);
    assert_eq!(waiter.join().unwrap().unwrap(), None);
}

/// An `OwnedFd` travels as a capability: Rust → Lua (a file_descriptor
/// object) → Rust, still the same open pipe.
#[test]
fn file_descriptors_travel_both_ways() {
    use std::io::{Read, Write};
    let rt = runtime();
    let replies = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::source(
            "fd.lua",
            "local m = require('inbox'):receive()
             m.reply:send({ kind = type(m.fd), fd = m.fd })",
        ))
        .unwrap();
    let (reader, mut writer) = std::io::pipe().unwrap();
    actor
        .send(Message::object([
            ("fd", std::os::fd::OwnedFd::from(reader).into()),
            ("reply", replies.address().into()),
        ]))
        .unwrap();
    let mut back = replies.recv_timeout(DEADLINE).unwrap();
    assert_eq!(back.get("kind").unwrap().as_str(), Some("userdata"));
    let Message::Object(members) = &mut back else {
        panic!("an object")
    };
    let Some(Message::Fd(fd)) = members.remove(&b"fd"[..]) else {
        panic!("an fd")
    };
    writer.write_all(b"through lua").unwrap();
    drop(writer);
    let mut text = String::new();
    std::fs::File::from(fd).read_to_string(&mut text).unwrap();
    assert_eq!(text, "through lua");
}

/// Numbers and booleans from Rust come to the actor with its wake-up and
/// wait there for a receive (src/actor/host.rs): a step in which no
/// receive takes one gives it back to the head of the inbox. Mixed with
/// messages that are not handed over (strings, tables), all arrive in the
/// order sent, while the actor's steps run for other reasons (sleep(0)
/// turns) without receiving; an inbox closed meanwhile drops them like any
/// queued message.
#[test]
fn messages_handed_with_the_wake_up_keep_their_order() {
    const N: u32 = 3_000;
    let rt = runtime();
    let replies = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::source(
            "handed.lua",
            "local inbox = require 'inbox'
             local time = require 'time'
             local back = inbox:receive()
             back:send('ready')
             -- steps without a receive while Rust sends
             for _ = 1, 300 do time.sleep(0) end
             local got = {}
             while true do
               local m = inbox:receive()
               if m == 'end' then break end
               got[#got + 1] = type(m) == 'table' and ('t' .. m[1]) or tostring(m)
             end
             back:send(table.concat(got, ','))
             -- a message that may be handed over when the inbox closes
             back:send('one more')
             for _ = 1, 3 do time.sleep(0) end
             inbox:close()
             local ok, err = pcall(inbox.receive, inbox)
             back:send(tostring(ok) .. ' ' .. tostring(err))",
        ))
        .unwrap();
    actor.send(replies.address().into()).unwrap();
    assert_eq!(
        replies.recv_timeout(DEADLINE).unwrap().as_str(),
        Some("ready")
    );
    let mut expected = Vec::new();
    for i in 0..N {
        let (m, text): (Message, String) = match i % 5 {
            0 | 1 => (Message::from(i), i.to_string()),
            2 => (Message::from(i % 2 == 0), (i % 2 == 0).to_string()),
            3 => (Message::from(format!("s{i}")), format!("s{i}")),
            _ => (Message::Array(vec![Message::from(i)]), format!("t{i}")),
        };
        actor.send(m).unwrap();
        expected.push(text);
    }
    actor.send("end".into()).unwrap();
    let got = replies.recv_timeout(DEADLINE).unwrap();
    let got: Vec<&str> = got.as_str().expect("a string").split(',').collect();
    let first_difference = got.iter().zip(&expected).position(|(g, e)| g != e);
    assert_eq!(first_difference, None, "reordered");
    assert_eq!(got.len(), expected.len(), "lost or duplicated");
    assert_eq!(
        replies.recv_timeout(DEADLINE).unwrap().as_str(),
        Some("one more")
    );
    // (the send succeeds or finds the inbox closed: either way the message
    // is dropped with the inbox)
    let _ = actor.send(Message::from(7));
    let closed = replies.recv_timeout(DEADLINE).unwrap();
    assert_eq!(closed.as_str(), Some("false Channel closed"));
    assert_eq!(rt.shutdown().unwrap(), None);
}
