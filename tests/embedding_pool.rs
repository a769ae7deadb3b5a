//! `RuntimeBuilder::threads`: actors spawned from Rust share a fixed
//! number of host threads. Through the public API only: how many threads
//! exist, actors on one thread taking turns, a thread that left and is
//! replaced, load errors, spawning from a Rust function that runs on a
//! pool thread, shutdown, and the setting `build()` refuses.
//!
//! The tests count the process's `luring-actor` threads, so they run one
//! at a time (`serial`).

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use luring::{ActorEnded, ActorSpec, Message, Module, Runtime, RuntimeError, SpawnError};

const DEADLINE: Duration = Duration::from_secs(30);

fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Threads of this process named `luring-actor`.
fn actor_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end() == "luring-actor")
        .count()
}

/// Waits until the number of actor threads satisfies `ok`. A count is a
/// snapshot of /proc, which can be off for a moment either way: a thread
/// an actor thread just created carries its creator's name until it first
/// runs and names itself (the nursery's, late on a loaded machine), and a
/// joined thread stays listed until the kernel has reaped it.
fn await_thread_count(expected: &str, ok: impl Fn(usize) -> bool) {
    let until = Instant::now() + DEADLINE;
    while !ok(actor_threads()) {
        assert!(
            Instant::now() < until,
            "{} actor threads, expected {expected}",
            actor_threads()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Waits until `actor_threads()` is `n`.
fn await_actor_threads(n: usize) {
    await_thread_count(&n.to_string(), |c| c == n);
}

/// Waits until at most `n` actor threads run.
fn await_at_most_actor_threads(n: usize) {
    await_thread_count(&format!("at most {n}"), |c| c <= n);
}

/// Receives one message `{to = address, n = number}` and sends `n` back,
/// then waits for messages until the runtime ends.
const ECHO_ONCE: &str = "local inbox = require 'inbox'
local m = inbox:receive()
m.to:send(m.n)
while true do inbox:receive() end";

/// Receives `{to = address, n = number}`, sends `n` back and ends.
const ANSWER_ONCE: &str = "local m = require('inbox'):receive(); m.to:send(m.n)";

/// A module whose `spawn_echo(n)` spawns an `ANSWER_ONCE` actor on the
/// runtime in `slot` and asks it to send `n` to `to`.
fn echo_spawner(slot: Arc<OnceLock<Arc<Runtime>>>, to: luring::ActorAddress) -> Module {
    Module::new().function("spawn_echo", move |args| {
        let n = args
            .first()
            .and_then(Message::as_number)
            .ok_or("a number")?;
        let runtime = slot.get().ok_or("no runtime yet")?;
        let actor = runtime
            .spawn(ActorSpec::source("once.lua", ANSWER_ONCE))
            .map_err(|e| e.to_string())?;
        let to = Message::Address(to.clone());
        actor
            .send(Message::object([("n", n.into()), ("to", to)]))
            .map_err(|_| "the echo ended")?;
        Ok(true.into())
    })
}

/// A runtime of `threads` pool threads with `echo_spawner` as module
/// `spawner`, and the mailbox its echoes answer to.
fn runtime_with_spawner(threads: usize) -> (Arc<Runtime>, luring::Mailbox) {
    let slot: Arc<OnceLock<Arc<Runtime>>> = Arc::new(OnceLock::new());
    let replies = luring::Mailbox::new();
    let module = echo_spawner(slot.clone(), replies.address());
    let runtime = Arc::new(
        Runtime::builder()
            .threads(threads)
            .module("spawner", module)
            .build()
            .unwrap(),
    );
    slot.set(runtime.clone()).ok().unwrap();
    (runtime, replies)
}

fn ask(actor: &luring::ActorHandle, replies: &luring::Mailbox, n: u32) {
    let to = Message::Address(replies.address());
    actor
        .send(Message::object([("n", n.into()), ("to", to)]))
        .unwrap();
}

fn sorted_numbers(replies: &luring::Mailbox, count: usize) -> Vec<f64> {
    let mut got: Vec<f64> = (0..count)
        .map(|_| {
            let m = replies.recv_timeout(DEADLINE).expect("a reply in time");
            m.as_number().expect("a number")
        })
        .collect();
    got.sort_by(f64::total_cmp);
    got
}

#[test]
fn twenty_actors_share_two_threads() {
    let _serial = serial();
    let before = actor_threads();
    let runtime = Runtime::builder().threads(2).build().unwrap();
    let replies = runtime.mailbox();
    let actors: Vec<_> = (0..20)
        .map(|_| {
            runtime
                .spawn(ActorSpec::source("echo.lua", ECHO_ONCE))
                .unwrap()
        })
        .collect();
    for (n, actor) in actors.iter().enumerate() {
        ask(actor, &replies, n as u32);
    }
    let expected: Vec<f64> = (0..20).map(f64::from).collect();
    assert_eq!(sorted_numbers(&replies, 20), expected);
    // 20 actors on a pool of 2 threads.
    await_actor_threads(before + 2);
    runtime.shutdown().unwrap();
    await_actor_threads(before);
}

#[test]
fn without_the_setting_each_actor_has_its_thread() {
    let _serial = serial();
    let before = actor_threads();
    let runtime = Runtime::builder().build().unwrap();
    let replies = runtime.mailbox();
    let actors: Vec<_> = (0..5)
        .map(|_| {
            runtime
                .spawn(ActorSpec::source("echo.lua", ECHO_ONCE))
                .unwrap()
        })
        .collect();
    for (n, actor) in actors.iter().enumerate() {
        ask(actor, &replies, n as u32);
    }
    assert_eq!(sorted_numbers(&replies, 5).len(), 5);
    await_actor_threads(before + 5);
    runtime.shutdown().unwrap();
    await_actor_threads(before);
}

#[test]
fn actors_on_one_thread_take_turns() {
    let _serial = serial();
    let before = actor_threads();
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let watch = runtime.mailbox();
    // Never waits: yields for ever. The other actors on its thread must
    // still run, and shutdown must still end it.
    runtime
        .spawn(
            ActorSpec::source("spinner.lua", "while true do this_fiber.yield() end")
                .monitor(&watch),
        )
        .unwrap();
    let sleeper = runtime
        .spawn(ActorSpec::source(
            "sleeper.lua",
            "local inbox = require 'inbox'
            local m = inbox:receive()
            require('time').sleep(0.01)
            m.to:send(m.n)",
        ))
        .unwrap();
    let echo = runtime
        .spawn(ActorSpec::source("echo.lua", ECHO_ONCE))
        .unwrap();
    let replies = runtime.mailbox();
    ask(&sleeper, &replies, 1);
    ask(&echo, &replies, 2);
    assert_eq!(sorted_numbers(&replies, 2), vec![1.0, 2.0]);
    assert_eq!(runtime.shutdown().unwrap(), None);
    let notice = watch.recv_timeout(DEADLINE).unwrap();
    assert_eq!(ActorEnded::from_message(&notice).unwrap().reason, "killed");
    await_actor_threads(before);
}

#[test]
fn a_thread_whose_actors_ended_is_replaced() {
    let _serial = serial();
    let before = actor_threads();
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let replies = runtime.mailbox();
    // Each actor answers and ends. Between two checkpoints the answers
    // wait (a Lua send waits until Rust takes it), so the thread takes
    // new actors while it hosts others; at each checkpoint every answer is
    // taken, the thread runs out of actors and leaves, and the next actor
    // needs a new thread. None may be lost either way.
    let mut got = Vec::new();
    for n in 0..200u32 {
        let actor = runtime
            .spawn(ActorSpec::source("once.lua", ANSWER_ONCE))
            .unwrap();
        ask(&actor, &replies, n);
        if n % 50 == 49 {
            got.extend(sorted_numbers(&replies, 50));
            await_actor_threads(before);
        }
    }
    got.sort_by(f64::total_cmp);
    assert_eq!(got, (0..200u32).map(f64::from).collect::<Vec<_>>());
    await_at_most_actor_threads(before + 1);
    runtime.shutdown().unwrap();
    await_actor_threads(before);
}

#[test]
fn load_errors_leave_the_thread_serving() {
    let _serial = serial();
    let before = actor_threads();
    let runtime = Runtime::builder().threads(1).build().unwrap();
    let replies = runtime.mailbox();
    let first = runtime
        .spawn(ActorSpec::source("echo.lua", ECHO_ONCE))
        .unwrap();
    let err = runtime
        .spawn(ActorSpec::source("broken.lua", "this is not lua"))
        .unwrap_err();
    assert!(
        matches!(&err, SpawnError::Load { name, .. } if name == "broken.lua"),
        "{err}"
    );
    // Fails when it runs, not when it loads: only that actor ends.
    runtime
        .spawn(ActorSpec::source("raises.lua", "error('on purpose')"))
        .unwrap();
    let second = runtime
        .spawn(ActorSpec::source("echo.lua", ECHO_ONCE))
        .unwrap();
    ask(&first, &replies, 1);
    ask(&second, &replies, 2);
    assert_eq!(sorted_numbers(&replies, 2), vec![1.0, 2.0]);
    await_actor_threads(before + 1);
    runtime.shutdown().unwrap();
    await_actor_threads(before);
}

#[test]
fn a_rust_function_on_a_pool_thread_can_spawn_there() {
    let _serial = serial();
    let before = actor_threads();
    // The function runs on the pool's only thread and spawns onto that
    // same thread: the VM boots right there instead of waiting for it.
    let (runtime, replies) = runtime_with_spawner(1);
    // The parent stays (its handle lives) so the thread does not leave
    // before it is counted.
    let _parent = runtime
        .spawn(ActorSpec::source(
            "parent.lua",
            "assert(require('spawner').spawn_echo(7)); require('inbox'):receive()",
        ))
        .unwrap();
    let got = replies.recv_timeout(DEADLINE).expect("the child's reply");
    assert_eq!(got.as_number(), Some(7.0));
    await_actor_threads(before + 1);
    runtime.shutdown().unwrap();
    await_actor_threads(before);
}

#[test]
fn pool_threads_spawning_at_once_do_not_wait_for_each_other() {
    let _serial = serial();
    let before = actor_threads();
    // Two pool threads whose actors spawn through a Rust function while a
    // plain thread spawns too. A spawn from a pool thread must not wait
    // for the other pool thread (which may be waiting for it).
    let (runtime, replies) = runtime_with_spawner(2);
    for base in [0, 100] {
        runtime
            .spawn(ActorSpec::source(
                "parent.lua",
                format!(
                    "local spawner = require 'spawner'
                    for i = 1, 25 do spawner.spawn_echo({base} + i) end"
                ),
            ))
            .unwrap();
    }
    let from_rust = {
        let (runtime, to) = (runtime.clone(), replies.address());
        std::thread::spawn(move || {
            for n in 201..=225u32 {
                let actor = runtime
                    .spawn(ActorSpec::source("once.lua", ANSWER_ONCE))
                    .unwrap();
                let to = Message::Address(to.clone());
                actor
                    .send(Message::object([("n", n.into()), ("to", to)]))
                    .unwrap();
            }
        })
    };
    let got = sorted_numbers(&replies, 75);
    from_rust.join().unwrap();
    let expected: Vec<f64> = (1..=25)
        .chain(101..=125)
        .chain(201..=225)
        .map(f64::from)
        .collect();
    assert_eq!(got, expected);
    await_at_most_actor_threads(before + 2);
    runtime.shutdown().unwrap();
    await_actor_threads(before);
}

#[test]
fn shutdown_ends_every_pool_thread() {
    let _serial = serial();
    let before = actor_threads();
    let runtime = Runtime::builder().threads(3).build().unwrap();
    let watch = runtime.mailbox();
    for _ in 0..7 {
        runtime
            .spawn(ActorSpec::source("sleeps.lua", "require('time').sleep(3600)").monitor(&watch))
            .unwrap();
    }
    await_actor_threads(before + 3);
    assert_eq!(runtime.shutdown().unwrap(), None);
    for _ in 0..7 {
        let notice = watch.recv_timeout(DEADLINE).unwrap();
        assert_eq!(ActorEnded::from_message(&notice).unwrap().reason, "killed");
    }
    await_actor_threads(before);
    assert!(matches!(
        runtime.spawn(ActorSpec::source("late.lua", "return")),
        Err(SpawnError::Ended)
    ));
}

#[test]
fn zero_threads_is_refused() {
    let Err(err) = Runtime::builder().threads(0).build() else {
        panic!("threads(0) was accepted")
    };
    assert!(
        matches!(
            err,
            RuntimeError::Setting {
                name: "threads",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("at least one thread"), "{err}");
}
