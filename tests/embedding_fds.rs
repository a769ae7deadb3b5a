//! Actors spawned from Rust hold no descriptor of their own: they share
//! the runtime's import root (on a pool of threads; a thread has its own
//! ring and eventfd). A test binary of its own: it counts the
//! whole process's fds.

use std::time::{Duration, Instant};

use luring::{ActorSpec, Runtime};

const DEADLINE: Duration = Duration::from_secs(30);

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The fd count once it is `n`, or whatever it is after `DEADLINE` (a
/// close through a ring completes a moment after the op that asked it).
fn settled_fds(n: usize) -> usize {
    let until = Instant::now() + DEADLINE;
    loop {
        let now = fds();
        if now == n || Instant::now() > until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

const WAITER: &str = "local inbox = require 'inbox'
local back = inbox:receive()
back:send('ready')
pcall(inbox.receive, inbox)";

#[test]
fn two_hundred_live_actors_add_no_descriptor() {
    let rt = Runtime::builder()
        .import_root(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embedding"))
        // a pool: with a thread per actor (the default) each thread's
        // wake-up eventfd would be counted
        .threads(2)
        .build()
        .unwrap();
    let ready = rt.mailbox();
    let spawn = |module: bool| {
        let spec = if module {
            ActorSpec::module("workers/echo")
        } else {
            ActorSpec::source("waiter.lua", WAITER)
        };
        let actor = rt.spawn(spec).unwrap();
        actor.send(ready.address().into()).unwrap();
        if module {
            // workers/echo answers every later message on that channel
            actor.send("ready".into()).unwrap();
        }
        actor
    };
    let await_ready = |n: usize| {
        for _ in 0..n {
            ready.recv_timeout(DEADLINE).expect("an actor answered");
        }
    };
    // One of each first: what the runtime makes once (threads' rings, the
    // nursery) is in the baseline.
    let mut alive = vec![spawn(true), spawn(false)];
    await_ready(2);
    let baseline = settled_fds(fds());
    for i in 0..200 {
        alive.push(spawn(i % 2 == 0));
    }
    await_ready(200);
    assert_eq!(
        settled_fds(baseline),
        baseline,
        "live actors hold descriptors"
    );
    // Shut down with the handles alive: the actors are ended by the
    // runtime, not by the loss of their last sender (which would report).
    assert_eq!(rt.shutdown().unwrap(), None);
    drop(alive);
}
