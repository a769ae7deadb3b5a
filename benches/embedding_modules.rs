//! A Rust module function called from Lua N times (default 2,000,000)
//! against a plain mlua function doing the same work (`x + 1`) in the same
//! run (the reference). Two module functions: `Module::typed` (`(f64,)`
//! in, `f64` out) and `Module::function` (a `Vec<Message>` in, a
//! `Message` out). Runs alternate typed/function/mlua, 5 of each; medians
//! are printed with their ratio to mlua. Both module functions are raw
//! `lua_CFunction`s that read their arguments off the Lua stack and call
//! the Rust function under `catch_unwind`; the mlua reference is
//! `create_function(|_, x: f64| ...)`, which has its own `catch_unwind`
//! and reads `x` off the stack too. Both loops call a local (the mlua one
//! copies its global `inc` into a local first), and both run on the same
//! vendored LuaJIT.
//!
//! Run: `cargo bench --bench embedding_modules` or `… -- N`.

use std::time::{Duration, Instant};

use luring::{ActorSpec, Message, Module, Runtime};

const LOOP: &str = "local m = require 'bench'
local inbox = require 'inbox'
while true do
  local ok, job = pcall(inbox.receive, inbox)
  if not ok then return end
  local s = 0
  local inc = m[job.f]
  for i = 1, job.n do s = inc(s) end
  job.reply:send(s)
end";

fn module_calls(rt: &Runtime, actor: &luring::ActorHandle, f: &str, n: u32) -> Duration {
    let replies = rt.mailbox();
    let start = Instant::now();
    actor
        .send(Message::object([
            ("n", n.into()),
            ("f", f.into()),
            ("reply", replies.address().into()),
        ]))
        .unwrap();
    let s = replies.recv().unwrap();
    let elapsed = start.elapsed();
    assert_eq!(s.as_number(), Some(f64::from(n)));
    elapsed
}

fn mlua_calls(lua: &mlua::Lua, n: u32) -> Duration {
    let start = Instant::now();
    let s: f64 = lua
        .load("local n = ... local inc = inc local s = 0 for i = 1, n do s = inc(s) end return s")
        .call(n)
        .unwrap();
    let elapsed = start.elapsed();
    assert_eq!(s, f64::from(n));
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let module = Module::new()
        .function("inc", |args| {
            let x = args
                .first()
                .and_then(Message::as_number)
                .ok_or("a number")?;
            Ok((x + 1.0).into())
        })
        .typed("inc_typed", |(x,): (f64,)| Ok(x + 1.0));
    let rt = Runtime::builder().module("bench", module).build().unwrap();
    let actor = rt.spawn(ActorSpec::source("calls.lua", LOOP)).unwrap();
    let lua = mlua::Lua::new();
    lua.globals()
        .set("inc", lua.create_function(|_, x: f64| Ok(x + 1.0)).unwrap())
        .unwrap();
    // Warm-up.
    module_calls(&rt, &actor, "inc_typed", 10_000);
    module_calls(&rt, &actor, "inc", 10_000);
    mlua_calls(&lua, 10_000);
    let (mut t, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..5 {
        t.push(module_calls(&rt, &actor, "inc_typed", n));
        a.push(module_calls(&rt, &actor, "inc", n));
        b.push(mlua_calls(&lua, n));
    }
    let (t, a, b) = (median(t), median(a), median(b));
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(n);
    let ratio = |d: Duration| d.as_secs_f64() / b.as_secs_f64();
    println!("{n} calls, median of 5 (alternating):");
    println!(
        "  luring typed function:  {t:?} ({:.1} ns/call, {:.2}x mlua)",
        per(t),
        ratio(t)
    );
    println!(
        "  luring Vec function:    {a:?} ({:.1} ns/call, {:.2}x mlua)",
        per(a),
        ratio(a)
    );
    println!("  plain mlua function:    {b:?} ({:.1} ns/call)", per(b));
    drop(actor);
    rt.shutdown().unwrap();
}
