//! Rust modules for Lua (`RuntimeBuilder::module`), through the public API
//! only: plain and asynchronous functions, errors and panics (each an
//! error of the calling fiber only), argument conversion errors,
//! interruption of an asynchronous call, many concurrent calls, one module
//! shared by actors on two threads, and the names `build()` refuses.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use luring::{ActorSpec, Mailbox, Message, Module, ModuleError, Runtime, RuntimeError};

const DEADLINE: Duration = Duration::from_secs(30);

/// Spawns `source`, hands it `reply` (as `m.reply`) and returns the first
/// thing it sends there.
fn run(runtime: &Runtime, name: &str, source: &str) -> Message {
    let replies = runtime.mailbox();
    let actor = runtime.spawn(ActorSpec::source(name, source)).unwrap();
    actor
        .send(Message::object([("reply", replies.address().into())]))
        .unwrap();
    replies.recv_timeout(DEADLINE).expect("a reply in time")
}

fn texts(m: &Message) -> Vec<String> {
    m.as_array()
        .expect("an array")
        .iter()
        .map(|x| match x.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => format!("{:?}", x.as_number().or(x.as_bool().map(f64::from))),
        })
        .collect()
}

fn math() -> Module {
    Module::new()
        .function("sum", |args| {
            let mut total = 0.0;
            for a in &args {
                total += a.as_number().ok_or("sum: numbers only")?;
            }
            Ok(total.into())
        })
        .typed("pair", |(name, n): (String, u32)| {
            Ok(serde_json_like(name, n))
        })
        .async_function("twice", |args| {
            let n = args
                .first()
                .and_then(Message::as_number)
                .ok_or("twice: a number")?;
            Ok((2.0 * n).into())
        })
        .async_typed("upper", |(s,): (String,)| Ok(s.to_uppercase()))
        .function("fail", |_| Err(ModuleError::new("no such user: bob")))
        .async_function("fail_later", |_| Err("the disk is on fire".into()))
        .function("boom", |_| panic!("sync boom"))
        .async_function("boom_later", |_| panic!("async boom"))
}

#[derive(serde::Serialize)]
struct Pair {
    name: String,
    n: u32,
}

fn serde_json_like(name: String, n: u32) -> Pair {
    Pair { name, n }
}

#[test]
fn plain_and_async_functions_return_their_values() {
    let runtime = Runtime::builder().module("math", math()).build().unwrap();
    let answer = run(
        &runtime,
        "calls.lua",
        "local math = require 'math'
         local m = require('inbox'):receive()
         local p = math.pair('ann', 7)
         m.reply:send({ math.sum(1, 2, 3.5), p.name, p.n, math.twice(21), math.upper('abc'),
                        type(math.sum), require('math') ~= nil })",
    );
    assert_eq!(
        texts(&answer),
        [
            "Some(6.5)",
            "ann",
            "Some(7.0)",
            "Some(42.0)",
            "ABC",
            "function",
            "Some(1.0)"
        ]
    );
}

#[test]
fn errors_and_panics_are_errors_of_the_calling_fiber_only() {
    let runtime = Runtime::builder().module("math", math()).build().unwrap();
    // A fiber that does not catch the panic ends; the actor and its main
    // fiber go on.
    let answer = run(
        &runtime,
        "errors.lua",
        "local math = require 'math'
         local m = require('inbox'):receive()
         local out = {}
         for _, name in ipairs{ 'fail', 'fail_later', 'boom', 'boom_later' } do
           local ok, e = pcall(math[name])
           out[#out + 1] = tostring(ok) .. ' ' .. type(e) .. ' ' .. tostring(e)
         end
         local f = spawn(function() math.boom_later() end)
         local ok = pcall(f.join, f)
         out[#out + 1] = 'uncaught in a fiber: join ok=' .. tostring(ok)
         out[#out + 1] = 'still working: ' .. math.sum(1, 1)
         m.reply:send(out)",
    );
    assert_eq!(
        texts(&answer),
        [
            "false string no such user: bob",
            "false string the disk is on fire",
            "false string the Rust function math.boom panicked: sync boom",
            "false string the Rust function math.boom_later panicked: async boom",
            "uncaught in a fiber: join ok=false",
            "still working: 2",
        ]
    );
    // The runtime is still fine: another actor calls the module.
    let again = run(
        &runtime,
        "again.lua",
        "local m = require('inbox'):receive()
         m.reply:send(require('math').twice(4))",
    );
    assert_eq!(again.as_number(), Some(8.0));
}

#[test]
fn arguments_that_cannot_be_converted_are_lua_errors_and_the_function_does_not_run() {
    let ran = Arc::new(Mutex::new(0u32));
    let counter = ran.clone();
    let module = Module::new()
        .function("count", move |_| {
            *counter.lock().unwrap() += 1;
            Ok(true.into())
        })
        .typed("add", |(a, b): (i64, i64)| Ok(a + b))
        .async_typed("add_later", |(a, b): (i64, i64)| Ok(a + b));
    let runtime = Runtime::builder().module("m", module).build().unwrap();
    let answer = run(
        &runtime,
        "bad_args.lua",
        "local m = require 'm'
         local r = require('inbox'):receive()
         local out = {}
         local function try(...) local ok, e = pcall(...) out[#out + 1] = tostring(ok) .. ' ' .. tostring(e) end
         try(m.count, 1, function() end)
         try(m.count, nil)
         try(m.count, setmetatable({}, {}))
         try(m.add, 1, 'two')
         try(m.add, 1.5, 2)
         try(m.add_later, 1)
         try(m.add_later, 1, 'x')
         out[#out + 1] = 'ok ' .. m.add(40, 2) .. ' ' .. m.add_later(1, 2)
         r.reply:send(out)",
    );
    let got = texts(&answer);
    assert_eq!(got.len(), 8, "{got:?}");
    assert!(
        got[0].starts_with("false bad argument #2 to 'm.count' (a function cannot be sent"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("false bad argument #1 to 'm.count' (a nil cannot be sent"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("false bad argument #1 to 'm.count' ("),
        "{got:?}"
    );
    for g in &got[3..7] {
        assert!(g.starts_with("false bad arguments: "), "{got:?}");
    }
    assert_eq!(got[7], "ok 42 3");
    assert_eq!(*ran.lock().unwrap(), 0, "count never ran");
}

/// Booleans, numbers and strings are read straight off the Lua stack;
/// a call with any other argument (here a trailing `{}`, which the typed
/// functions ignore when they have all they need) takes the general path. Both give the same values,
/// the same errors and catch the same panics.
#[test]
fn scalar_arguments_and_the_general_path_give_the_same_results_and_errors() {
    let module = Module::new()
        .typed("echo", |(s,): (String,)| Ok(s))
        .typed("not", |(b,): (bool,)| Ok(!b))
        .typed("mix", |(n, s, b): (f64, String, bool)| {
            Ok(format!("{n} {s} {b}"))
        })
        .typed("small", |(n,): (u8,)| Ok(u32::from(n) * 2))
        .typed("range", |(n,): (u32,)| Ok((1..=n).collect::<Vec<_>>()))
        .typed("none", |(): ()| Ok("none"))
        .typed("fail", |(n,): (f64,)| -> Result<f64, ModuleError> {
            Err(ModuleError::new(format!("no {n}")))
        })
        .typed("boom", |(n,): (f64,)| -> Result<f64, ModuleError> {
            panic!("typed boom {n}")
        })
        .typed("sum", |(v,): (Vec<f64>,)| Ok(v.iter().sum::<f64>()))
        .function("kinds", |args| {
            let kinds: Vec<&str> = args
                .iter()
                .map(|a| match a {
                    Message::Bool(_) => "bool",
                    Message::Number(_) => "number",
                    Message::String(_) => "string",
                    Message::Object(_) => "table",
                    _ => "other",
                })
                .collect();
            Ok(kinds.join(",").into())
        });
    let runtime = Runtime::builder().module("m", module).build().unwrap();
    let answer = run(
        &runtime,
        "scalars.lua",
        r#"local m = require 'm'
         local r = require('inbox'):receive()
         local out = {}
         local function show(ok, v)
           if type(v) == 'table' then v = '{' .. table.concat(v, ',') .. '}' end
           return tostring(ok) .. ' ' .. type(v) .. ' ' .. tostring(v)
         end
         -- each call with scalar arguments only, then with a trailing table
         local function both(name, ...)
           local fast = show(pcall(m[name], ...))
           local n = select('#', ...)
           local args = { ... }
           args[n + 1] = {}
           local general = show(pcall(m[name], unpack(args, 1, n + 1)))
           out[#out + 1] = name .. ': ' .. fast
           if general ~= fast then out[#out + 1] = name .. ' differs: ' .. general end
         end
         both('echo', 'héllo')
         both('echo', '\xff\xfe')
         both('echo', 7)
         out[#out + 1] = 'echo: ' .. show(pcall(m.echo))
         both('not', true)
         both('not', 1)
         both('mix', 1.5, 'x', false)
         out[#out + 1] = 'mix: ' .. show(pcall(m.mix, 1.5, 'x'))
         both('small', 200)
         both('small', 256)
         both('small', -1)
         both('small', 1.5)
         both('range', 3)
         both('fail', 2)
         both('boom', 3)
         out[#out + 1] = 'none: ' .. show(pcall(m.none))
         out[#out + 1] = 'none with one: ' .. show(pcall(m.none, 1))
         out[#out + 1] = 'sum: ' .. show(pcall(m.sum, { 1, 2, 3.5 }))
         out[#out + 1] = 'kinds: ' .. m.kinds(true, 1, 's', {})
         out[#out + 1] = 'kinds fast: ' .. m.kinds(false, 2.5, '')
         out[#out + 1] = 'nil: ' .. show(pcall(m.echo, nil))
         out[#out + 1] = 'function: ' .. show(pcall(m["not"], true, print))
         local huge = string.rep('x', 64 * 1024 * 1024 + 1)
         out[#out + 1] = 'huge: ' .. show(pcall(m.echo, huge))
         out[#out + 1] = 'still working: ' .. m.small(4)
         r.reply:send(out)"#,
    );
    let got = texts(&answer);
    let expected_start = [
        "echo: true string héllo",
        "echo: false string bad arguments: invalid value: byte array, expected a string",
        "echo: false string bad arguments: invalid type: integer `7`, expected a string",
        "echo: false string bad arguments: invalid length 0, expected a tuple of size 1",
        "not: true boolean false",
        "not: false string bad arguments: invalid type: integer `1`, expected a boolean",
        "mix: true string 1.5 x false",
        "mix: false string bad arguments: invalid length 2, expected a tuple of size 3",
        "small: true number 400",
        "small: false string bad arguments: the number 256 is out of range for u8",
        "small: false string bad arguments: the number -1 is out of range for u8",
        "small: false string bad arguments: the number 1.5 is not an integer u8 can hold",
        "range: true string {1,2,3}",
        "fail: false string no 2",
        "boom: false string the Rust function m.boom panicked: typed boom 3",
        "none: true string none",
        "none with one: false string bad arguments: expected an empty table, found a sequence",
        "sum: true number 6.5",
        "kinds: bool,number,string,table",
        "kinds fast: bool,number,string",
        "nil: false string bad argument #1 to 'm.echo' (a nil cannot be sent",
        "function: false string bad argument #2 to 'm.not' (a function cannot be sent",
        "huge: false string bad argument #1 to 'm.echo' (",
        "still working: 8",
    ];
    assert_eq!(got.len(), expected_start.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected_start) {
        assert!(
            g.starts_with(e),
            "got {g:?}, expected it to start with {e:?}\n{got:#?}"
        );
    }
}

fn too_deep() -> Message {
    let mut m = Message::from(1.0);
    for _ in 0..300 {
        m = Message::array([m]);
    }
    m
}

#[test]
fn a_result_lua_cannot_take_is_an_error_of_the_call() {
    let module = Module::new()
        .function("deep", |_| Ok(too_deep()))
        .async_function("deep_later", |_| Ok(too_deep()));
    let runtime = Runtime::builder().module("m", module).build().unwrap();
    let answer = run(
        &runtime,
        "deep.lua",
        "local m = require 'm'
         local r = require('inbox'):receive()
         local a, ea = pcall(m.deep)
         local b, eb = pcall(m.deep_later)
         r.reply:send({ tostring(a), tostring(ea), tostring(b), tostring(eb) })",
    );
    let got = texts(&answer);
    assert_eq!(got[0], "false");
    assert!(
        got[1].starts_with("the result of m.deep cannot go to Lua: "),
        "{got:?}"
    );
    assert_eq!(got[2], "false");
    assert!(
        got[3].starts_with("the result of m.deep_later cannot go to Lua: "),
        "{got:?}"
    );
}

#[test]
fn an_interrupted_async_call_raises_interrupted_and_its_result_is_dropped() {
    // The job blocks until the test lets it go, then returns the write end
    // of a pipe: once that result is dropped (nobody takes it), reading
    // the read end gives end-of-file.
    let (release_tx, release_rx) = mpsc::channel::<OwnedFd>();
    let release_rx = Mutex::new(release_rx);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let module = Module::new().async_function("wait", move |_| {
        started_tx.lock().unwrap().send(()).unwrap();
        let fd = release_rx
            .lock()
            .unwrap()
            .recv()
            .map_err(|_| "no release")?;
        Ok(Message::from(fd))
    });
    let runtime = Runtime::builder().module("slow", module).build().unwrap();
    let replies: Mailbox = runtime.mailbox();
    let actor = runtime
        .spawn(ActorSpec::source(
            "interrupt.lua",
            "local slow = require 'slow'
             local inbox = require 'inbox'
             local m = inbox:receive()
             local got
             local f = spawn(function()
               local ok, e = pcall(slow.wait)
               got = 'waiter: ' .. tostring(ok) .. ' ' .. tostring(e)
             end)
             -- the actor goes on while the job blocks its helper thread
             m.reply:send('waiting')
             inbox:receive()          -- the job has started
             f:interrupt()
             f:join()
             m.reply:send(got)
             m.reply:send('joined')",
        ))
        .unwrap();
    actor
        .send(Message::object([("reply", replies.address().into())]))
        .unwrap();
    assert_eq!(
        replies.recv_timeout(DEADLINE).unwrap().as_str(),
        Some("waiting")
    );
    started_rx.recv_timeout(DEADLINE).expect("the job started");
    actor.send("go on".into()).unwrap();
    assert_eq!(
        replies.recv_timeout(DEADLINE).unwrap().as_str(),
        Some("waiter: false Fiber interrupted")
    );
    assert_eq!(
        replies.recv_timeout(DEADLINE).unwrap().as_str(),
        Some("joined")
    );

    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    release_tx.send(write_end).unwrap();
    // The read ends once every write end is closed: the dropped result's
    // fd was the last one.
    let (eof_tx, eof_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::fs::File::from(read_end);
        let mut buf = [0u8; 1];
        let _ = eof_tx.send(reader.read(&mut buf).map_err(|e| e.to_string()));
    });
    assert_eq!(
        eof_rx.recv_timeout(DEADLINE).expect("end-of-file in time"),
        Ok(0)
    );
}

#[test]
fn many_fibers_call_async_functions_at_once() {
    let module = Module::new().async_typed("delay", |(n,): (u32,)| {
        std::thread::sleep(Duration::from_millis(1));
        Ok(n * 2)
    });
    let runtime = Runtime::builder().module("work", module).build().unwrap();
    let answer = run(
        &runtime,
        "many.lua",
        "local work = require 'work'
         local m = require('inbox'):receive()
         local fibers, results = {}, {}
         for i = 1, 300 do
           fibers[i] = spawn(function() results[i] = work.delay(i) end)
         end
         for i = 1, 300 do fibers[i]:join() end
         local bad = 0
         for i = 1, 300 do if results[i] ~= 2 * i then bad = bad + 1 end end
         m.reply:send({ #results, bad })",
    );
    assert_eq!(texts(&answer), ["Some(300.0)", "Some(0.0)"]);
}

#[test]
fn one_module_serves_actors_on_different_threads() {
    let threads = Arc::new(Mutex::new(HashSet::new()));
    let seen = threads.clone();
    let module = Module::new().function("whoami", move |args| {
        seen.lock().unwrap().insert(std::thread::current().id());
        Ok(args.into_iter().next().unwrap_or(Message::Bool(false)))
    });
    let runtime = Runtime::builder().module("who", module).build().unwrap();
    let replies = runtime.mailbox();
    let source = "local who = require 'who'
                  local m = require('inbox'):receive()
                  for i = 1, 100 do assert(who.whoami(i) == i) end
                  m.reply:send(who.whoami(m.name))";
    let mut actors = Vec::new();
    for name in ["a", "b"] {
        let actor = runtime.spawn(ActorSpec::source("who.lua", source)).unwrap();
        actor
            .send(Message::object([
                ("reply", replies.address().into()),
                ("name", name.into()),
            ]))
            .unwrap();
        actors.push(actor);
    }
    let mut names: Vec<String> = (0..2)
        .map(|_| {
            replies
                .recv_timeout(DEADLINE)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(threads.lock().unwrap().len(), 2, "each actor's own thread");
}

#[test]
fn build_refuses_bad_module_names() {
    for (name, why) in [
        ("time", "builtin"),
        ("inbox", "builtin"),
        ("", "one or more words"),
        ("1abc", "one or more words"),
        ("a..b", "one or more words"),
        ("./local", "one or more words"),
        ("with space", "one or more words"),
    ] {
        match Runtime::builder().module(name, Module::new()).build() {
            Err(RuntimeError::Module { name: n, reason }) => {
                assert_eq!(n, name);
                assert!(reason.contains(why), "{name:?}: {reason}");
            }
            Err(other) => panic!("{name:?}: {other}"),
            Ok(_) => panic!("{name:?} was accepted"),
        }
    }
    match Runtime::builder()
        .module("game.world", Module::new())
        .module("game.world", Module::new())
        .build()
    {
        Err(RuntimeError::Module { reason, .. }) => assert!(reason.contains("twice"), "{reason}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a name given twice was accepted"),
    }
    // A dotted name works; a name nobody registered is still not found.
    let runtime = Runtime::builder()
        .module(
            "game.world",
            Module::new().function("size", |_| Ok(3.0.into())),
        )
        .build()
        .unwrap();
    let answer = run(
        &runtime,
        "dotted.lua",
        "local m = require('inbox'):receive()
         local ok, e = pcall(require, 'game.other')
         m.reply:send({ require('game.world').size(), tostring(ok), tostring(e) })",
    );
    let got = texts(&answer);
    assert_eq!(got[..2], ["Some(3.0)", "false"]);
    assert!(got[2].contains("not found"), "{got:?}");
}
