//! The embedding API from a tokio application: `Mailbox::recv_async` on a
//! current-thread runtime (the thread never blocks in luring), many
//! concurrent round trips, and a receive that is dropped half-way.

use std::time::Duration;

use luring::{ActorSpec, Message, Runtime};

/// Echoes to the first channel it gets; ends quietly once no sender is
/// left (the handle was dropped).
const ECHO: &str = "local inbox = require 'inbox'
local reply = inbox:receive()
while true do
  local ok, m = pcall(inbox.receive, inbox)
  if not ok then return end
  reply:send(m)
end";

#[test]
fn async_receive_on_a_current_thread_tokio_runtime() {
    let rt = Runtime::builder().build().unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    tokio.block_on(async {
        // Eight actors, each answering its own mailbox; one task per actor.
        let mut tasks = Vec::new();
        for a in 0..8u32 {
            let replies = rt.mailbox();
            let echo = rt.spawn(ActorSpec::source("echo.lua", ECHO)).unwrap();
            echo.send(replies.address().into()).unwrap();
            tasks.push(tokio::spawn(async move {
                for i in 0..500u32 {
                    echo.send(Message::from(a * 1000 + i)).unwrap();
                    let m = tokio::time::timeout(Duration::from_secs(30), replies.recv_async())
                        .await
                        .expect("reply in time")
                        .unwrap();
                    assert_eq!(m.as_number(), Some(f64::from(a * 1000 + i)));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

/// A receive future dropped before a message came leaves the mailbox
/// usable: the next receive gets the message.
#[test]
fn a_dropped_receive_future_loses_nothing() {
    let rt = Runtime::builder().build().unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let replies = rt.mailbox();
    let echo = rt.spawn(ActorSpec::source("echo.lua", ECHO)).unwrap();
    echo.send(replies.address().into()).unwrap();
    tokio.block_on(async {
        let early = tokio::time::timeout(Duration::from_millis(20), replies.recv_async()).await;
        assert!(early.is_err(), "nothing was sent yet");
        echo.send("late".into()).unwrap();
        let m = tokio::time::timeout(Duration::from_secs(30), replies.recv_async())
            .await
            .expect("reply in time")
            .unwrap();
        assert_eq!(m.as_str(), Some("late"));
    });
}
