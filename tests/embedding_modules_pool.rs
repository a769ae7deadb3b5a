//! The module pool's bound (its own test binary: the pool is process-wide,
//! and filling it would fail the calls of tests running beside it).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use luring::{ActorSpec, Message, Module, Runtime};

#[test]
fn calls_beyond_the_pool_queue_fail_with_eagain_and_the_rest_complete() {
    // Every call waits at the gate until the test opens it, so the pool's
    // 4 threads stay busy and its queue (1,024) fills up.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let waiting_gate = gate.clone();
    let module = Module::new().async_typed("held", move |(n,): (u32,)| {
        let (open, opened) = &*waiting_gate;
        let mut open = open.lock().unwrap();
        while !*open {
            open = opened.wait(open).unwrap();
        }
        Ok(n)
    });
    let runtime = Runtime::builder().module("pool", module).build().unwrap();
    let replies = runtime.mailbox();
    let actor = runtime
        .spawn(ActorSpec::source(
            "fill.lua",
            "local pool = require 'pool'
             local inbox = require 'inbox'
             local m = inbox:receive()
             local fibers, ok_count, refused, other = {}, 0, 0, {}
             for i = 1, 1100 do
               fibers[i] = spawn(function()
                 local ok, e = pcall(pool.held, i)
                 if ok and e == i then ok_count = ok_count + 1
                 elseif not ok and tostring(e) == 'Resource temporarily unavailable' then refused = refused + 1
                 else other[#other + 1] = tostring(e) end
               end)
             end
             -- every fiber has called (and either waits or was refused)
             this_fiber.yield()
             m.reply:send(refused)
             inbox:receive()   -- the gate is open
             for i = 1, 1100 do fibers[i]:join() end
             m.reply:send({ ok_count, refused, #other, other[1] })",
        ))
        .unwrap();
    actor
        .send(Message::object([("reply", replies.address().into())]))
        .unwrap();
    let refused_first = replies
        .recv_timeout(Duration::from_secs(30))
        .unwrap()
        .as_number()
        .unwrap();
    assert!(refused_first >= 1.0, "some calls were refused");
    let (open, opened) = &*gate;
    *open.lock().unwrap() = true;
    opened.notify_all();
    actor.send("open".into()).unwrap();
    let end = replies.recv_timeout(Duration::from_secs(30)).unwrap();
    let end = end.as_array().unwrap();
    let ok_count = end[0].as_number().unwrap();
    let refused = end[1].as_number().unwrap();
    assert_eq!(
        end[2].as_number(),
        Some(0.0),
        "unexpected errors: {:?}",
        end.get(3)
    );
    assert_eq!(ok_count + refused, 1100.0);
    assert!(
        ok_count >= 1024.0,
        "the queue took its 1,024 calls: {ok_count}"
    );
    assert_eq!(refused, refused_first);
}
