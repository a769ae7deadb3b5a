//! No fd or thread is leaked by 1,000 runtime cycles (build, spawn actors
//! that receive, sleep and exchange messages, shut down), nor by dropping a
//! runtime instead of shutting it down. A test binary of its own: it counts
//! the whole process's fds and threads.

use std::time::{Duration, Instant};

use luring::{ActorSpec, Runtime};

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

/// The entries of `dir` once they number `n`, or after a minute: a joined
/// thread stays listed in /proc/self/task until the kernel has reaped it,
/// a moment after its join returned.
fn settled_count(dir: &str, n: usize) -> usize {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let now = count(dir);
        if now == n || Instant::now() > until {
            return now;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn cycle(shutdown: bool) {
    let rt = Runtime::builder().build().unwrap();
    let ready = rt.mailbox();
    let receiver = rt
        .spawn(ActorSpec::source(
            "receiver.lua",
            "local inbox = require 'inbox'
             local ch = inbox:receive(); ch:send('ready'); inbox:receive()",
        ))
        .unwrap();
    let sleeper = rt
        .spawn(ActorSpec::source(
            "sleeper.lua",
            "local ch = require('inbox'):receive(); ch:send('ready')
             require('time').sleep(3600)",
        ))
        .unwrap();
    receiver.send(ready.address().into()).unwrap();
    sleeper.send(ready.address().into()).unwrap();
    for _ in 0..2 {
        let m = ready.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(m.as_str(), Some("ready"));
    }
    if shutdown {
        assert_eq!(rt.shutdown().unwrap(), None);
    } else {
        // Dropped before the handles: the actors are killed, not ended by
        // the loss of their last sender (which would print reports).
        drop(rt);
    }
}

#[test]
fn a_thousand_cycles_leak_no_fd_and_no_thread() {
    cycle(true); // one-time process state (signal watcher, LuaJIT) first
    let (fds, threads) = (count("/proc/self/fd"), count("/proc/self/task"));
    for i in 0..1000 {
        cycle(i % 2 == 0);
    }
    assert_eq!(count("/proc/self/fd"), fds, "fds leaked");
    assert_eq!(
        settled_count("/proc/self/task", threads),
        threads,
        "threads leaked"
    );
}
