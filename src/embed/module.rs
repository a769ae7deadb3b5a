//! Rust modules for Lua: [`RuntimeBuilder::module`](crate::RuntimeBuilder::module)
//! registers a [`Module`] that every actor of the runtime can `require`.
//!
//! Invariants:
//! - The modules of a runtime are fixed at `build()` (checked there: valid
//!   names, no clash with a builtin module, no name twice) and stored in
//!   its `Process`; a VM builds a module's Lua table on its first `require`
//!   (`rt.host_module`, called by lua/core/modules.lua only for names that
//!   are no builtin module). Sandboxed actors run in another process and
//!   never see them.
//! - A plain function runs on the calling actor's thread, inside the Lua
//!   call. An asynchronous function is a job on [`module_pool`] (bounded
//!   threads and queue, the blocking pool's machinery): the fiber waits for
//!   the job's ring op like for any op, so the actor's ring never blocks;
//!   interrupting the fiber cancels the op and whoever finishes last drops
//!   the job's result (executor/blocking.rs).
//! - Every call of a Rust function is under `catch_unwind` (once: the
//!   raw path has no mlua frame, the general path's mlua frame sees no
//!   panic): a panic becomes a Lua error in the calling fiber only. Its
//!   error (or panic) text is raised as a Lua string; nothing of it
//!   outlives the call.
//! - Arguments are copied out of Lua as [`Message`]s with the rules of
//!   messages between actors (no nil, no functions); a value that cannot
//!   be copied is a Lua error naming the argument, and the function does not
//!   run.
//! - A plain function is a raw `lua_CFunction` ([`fast_call`]). When every
//!   argument is a boolean, a number or a string within the message limit,
//!   it reads them straight off the Lua stack (a typed function
//!   deserializes them from there, with the same values and errors as
//!   from messages: `serde::from_scalar_args`); any other argument sends
//!   the whole call to the general mlua function, which copies and
//!   refuses arguments as described above. A result that is not a
//!   boolean, number or string is built by an mlua function too.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use mlua::{ffi, Function, Lua, MultiValue, Table, Value};
use serde::{de::DeserializeOwned, Serialize};

use crate::actor::message::{self, Limits};
use crate::actor::vm::{submit_op, unless_closing};
use crate::embed::serde::{from_args, from_scalar_args, Scalar};
use crate::executor::blocking::{JobOutput, Pool, MAX_QUEUED, MAX_THREADS};
use crate::modules::file_descriptor::FdCapabilities;
use crate::modules::io_object::LuaBuilder;
use crate::{Message, RuntimeError};

/// What a Rust function of a [`Module`] returns.
pub type ModuleResult = Result<Message, ModuleError>;

type HostFn = dyn Fn(Vec<Message>) -> ModuleResult + Send + Sync;

/// The same function called on arguments read straight off the Lua stack
/// (all booleans, numbers or short strings: see [`fast_call`]).
type FastFn = dyn for<'call> Fn(StackArgs<'call>) -> ModuleResult + Send + Sync;

#[derive(Clone)]
struct Entry {
    on_pool: bool,
    function: Arc<HostFn>,
    /// Plain functions only.
    fast: Option<Arc<FastFn>>,
}

/// A set of Rust functions that Lua scripts `require` by the name given to
/// [`RuntimeBuilder::module`](crate::RuntimeBuilder::module).
///
/// A function takes its Lua arguments as [`Message`]s (copied like a
/// message between actors: numbers, strings, booleans, plain tables,
/// channels, file descriptors; never `nil` or functions) and returns one
/// `Message`, or a [`ModuleError`] that the Lua caller gets as an error
/// with its text. A panic is caught and becomes an error of the calling
/// fiber only.
///
/// - [`function`](Self::function) / [`typed`](Self::typed): plain; runs on
///   the actor's thread while Lua waits (keep it short: the actor's other
///   fibers wait too).
/// - [`async_function`](Self::async_function) /
///   [`async_typed`](Self::async_typed): runs on a helper thread; only the
///   calling fiber waits, the actor goes on with its other fibers.
///
/// `Module` is `Send + Sync + Clone`: every actor of the runtime, on any
/// thread, calls the same functions.
///
/// ```
/// use luring::{ActorSpec, Message, Module, ModuleError, Runtime};
///
/// let math = Module::new()
///     .function("sum", |args| {
///         let mut total = 0.0;
///         for a in &args {
///             total += a.as_number().ok_or("sum: numbers only")?;
///         }
///         Ok(total.into())
///     })
///     .typed("greet", |(name,): (String,)| Ok(format!("hello, {name}")))
///     .async_function("slow_double", |args| {
///         let n = args.first().and_then(Message::as_number).ok_or("a number, please")?;
///         std::thread::sleep(std::time::Duration::from_millis(10));
///         Ok((2.0 * n).into())
///     });
/// let runtime = Runtime::builder().module("math", math).build()?;
/// let replies = runtime.mailbox();
/// let actor = runtime.spawn(ActorSpec::source("use_math.lua", r#"
///     local math = require 'math'
///     local m = require('inbox'):receive()
///     local ok, err = pcall(math.sum, 1, 'x')
///     m.reply:send({ math.sum(1, 2, 3), math.greet('Lua'), math.slow_double(21), err })
/// "#))?;
/// actor.send(Message::object([("reply", replies.address().into())]))?;
/// let answer = replies.recv_timeout(std::time::Duration::from_secs(30))?;
/// let answer = answer.as_array().unwrap();
/// assert_eq!(answer[0].as_number(), Some(6.0));
/// assert_eq!(answer[1].as_str(), Some("hello, Lua"));
/// assert_eq!(answer[2].as_number(), Some(42.0));
/// assert_eq!(answer[3].as_str(), Some("sum: numbers only"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Module {
    functions: BTreeMap<String, Entry>,
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Module {
    /// An empty module.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(
        mut self,
        name: &str,
        on_pool: bool,
        function: Arc<HostFn>,
        fast: Option<Arc<FastFn>>,
    ) -> Self {
        let entry = Entry {
            on_pool,
            function,
            fast,
        };
        self.functions.insert(name.to_owned(), entry);
        self
    }

    /// A plain function: it runs on the calling actor's thread, inside the
    /// Lua call. A second function of the same name replaces the first.
    ///
    /// ```
    /// let m = luring::Module::new().function("answer", |_args| Ok(42.0.into()));
    /// assert_eq!(m.function_names().collect::<Vec<_>>(), ["answer"]);
    /// ```
    pub fn function(
        self,
        name: &str,
        f: impl Fn(Vec<Message>) -> ModuleResult + Send + Sync + 'static,
    ) -> Self {
        let f = Arc::new(f);
        let on_stack = f.clone();
        let fast: Arc<FastFn> =
            Arc::new(move |args: StackArgs| on_stack(args.map(Scalar::to_message).collect()));
        self.add(name, false, Arc::new(move |args| f(args)), Some(fast))
    }

    /// A plain function with serde types: the Lua arguments, as a
    /// sequence, are read as `A` with [`from_value`](crate::from_value)
    /// (a tuple such as `(String, f64)`; `(T,)` for one argument) and the
    /// result converted with [`to_value`](crate::to_value). Arguments that
    /// do not fit `A` are a Lua error (`bad arguments to 'module.name'`).
    ///
    /// ```
    /// let m = luring::Module::new().typed("add", |(a, b): (i64, i64)| Ok(a + b));
    /// # drop(m);
    /// ```
    pub fn typed<A, R>(
        self,
        name: &str,
        f: impl Fn(A) -> Result<R, ModuleError> + Send + Sync + 'static,
    ) -> Self
    where
        A: DeserializeOwned,
        R: Serialize,
    {
        // Two monomorphised copies of the conversion: one for a Vec of
        // messages (the general path), one reading the Lua stack.
        let f = Arc::new(f);
        let on_stack = f.clone();
        let fast: Arc<FastFn> =
            Arc::new(move |args: StackArgs| typed_call(&*on_stack, from_scalar_args(args)));
        let general = move |args: Vec<Message>| typed_call(&*f, from_args(args));
        self.add(name, false, Arc::new(general), Some(fast))
    }

    /// An asynchronous function: the calling fiber suspends while `f` runs
    /// on a helper thread of luring's module pool (at most 4 threads for
    /// the whole process, 1,024 calls queued; past that the call fails
    /// with `EAGAIN`); the actor's other fibers go on. Interrupting the
    /// fiber raises `interrupted` in it at once; `f` still finishes on
    /// its thread and its result is dropped.
    ///
    /// Use it for work that blocks or computes for a while. To drive an
    /// async Rust future from here, block on it inside `f` with the
    /// executor of your choice (`futures::executor::block_on`, or a
    /// `tokio::runtime::Handle::block_on` of a runtime running elsewhere).
    ///
    /// ```
    /// let m = luring::Module::new().async_function("fetch", |_args| {
    ///     Ok("pretend this came from the network".into())
    /// });
    /// # drop(m);
    /// ```
    pub fn async_function(
        self,
        name: &str,
        f: impl Fn(Vec<Message>) -> ModuleResult + Send + Sync + 'static,
    ) -> Self {
        self.add(name, true, Arc::new(f), None)
    }

    /// [`async_function`](Self::async_function) with serde types, like
    /// [`typed`](Self::typed).
    ///
    /// ```
    /// let m = luring::Module::new()
    ///     .async_typed("checksum", |(text,): (String,)| Ok(text.bytes().map(u32::from).sum::<u32>()));
    /// # drop(m);
    /// ```
    pub fn async_typed<A, R>(
        self,
        name: &str,
        f: impl Fn(A) -> Result<R, ModuleError> + Send + Sync + 'static,
    ) -> Self
    where
        A: DeserializeOwned,
        R: Serialize,
    {
        let general = move |args: Vec<Message>| typed_call(&f, from_args(args));
        self.add(name, true, Arc::new(general), None)
    }

    /// The names of the module's functions, in order.
    pub fn function_names(&self) -> impl Iterator<Item = &str> {
        self.functions.keys().map(String::as_str)
    }
}

/// Calls a typed function on its arguments read as `A` (like
/// `from_value(Message::Array(args))`); converts its result to a message.
#[inline]
fn typed_call<A, R>(
    f: &impl Fn(A) -> Result<R, ModuleError>,
    args: Result<A, crate::ConvertError>,
) -> ModuleResult
where
    R: Serialize,
{
    let args = args.map_err(|e| ModuleError::new(format!("bad arguments: {e}")))?;
    let result = f(args)?;
    crate::to_value(&result)
        .map_err(|e| ModuleError::new(format!("the result cannot go to Lua: {e}")))
}

/// The error a Rust function of a [`Module`] returns; the Lua caller gets
/// its text as the error value (a string).
///
/// ```
/// let e: luring::ModuleError = "no such user".into();
/// assert_eq!(e.to_string(), "no such user");
/// let e = luring::ModuleError::new(format!("{} is out of range", 7));
/// assert_eq!(e.message(), "7 is out of range");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleError(String);

impl ModuleError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModuleError {}

impl From<String> for ModuleError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for ModuleError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}

impl From<crate::ConvertError> for ModuleError {
    fn from(e: crate::ConvertError) -> Self {
        Self(e.to_string())
    }
}

/// The modules of a runtime, by name.
pub(crate) type HostModules = Arc<BTreeMap<String, Module>>;

/// Builtin module names (Emilua's core module ids, listed in
/// lua/core/modules.lua): a Rust module may not take one. A unit test below
/// checks that this list and modules.lua's name the same modules.
const BUILTIN_MODULES: &[&str] = &[
    "ffi",
    "generic_error",
    "asio_error",
    "mutex",
    "recursive_mutex",
    "condition_variable",
    "future",
    "inbox",
    "json",
    "time",
    "filesystem",
    "pipe",
    "ip",
    "file",
    "unix",
    "stream",
    "regex",
    "serial_port",
    "tls",
    "system",
];

/// Checks the modules given to the builder (see the invariants).
pub(crate) fn check(modules: Vec<(String, Module)>) -> Result<HostModules, RuntimeError> {
    let refuse = |name: &str, reason: String| RuntimeError::Module {
        name: name.to_owned(),
        reason,
    };
    let mut checked = BTreeMap::new();
    for (name, module) in modules {
        let word_ok = |w: &str| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !name.split('.').all(word_ok) {
            return Err(refuse(
                &name,
                "a module name is one or more words of letters, digits and _ (not starting \
                 with a digit) joined by dots, like `game` or `game.world`"
                    .into(),
            ));
        }
        if BUILTIN_MODULES.contains(&name.as_str()) {
            return Err(refuse(
                &name,
                "it is the name of a builtin module; choose another name".into(),
            ));
        }
        if checked.insert(name.clone(), module).is_some() {
            return Err(refuse(&name, "it was registered twice".into()));
        }
    }
    Ok(Arc::new(checked))
}

/// The process-wide pool asynchronous functions run on: separate from the
/// blocking pool, so slow module calls never hold up file system jobs.
fn module_pool() -> &'static Arc<Pool> {
    static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(MAX_THREADS, MAX_QUEUED))
}

/// Adds `rt.host_module(id, make_async) -> module table | nil`: builds the
/// Lua table of the runtime's module `id`; each asynchronous function is
/// a Rust function that queues its job and returns the op id, passed
/// through `make_async` (Lua, lua/core/modules.lua), which awaits it.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    rt.set(
        "host_module",
        lua.create_function(unless_closing(
            |lua, (id, make_async): (mlua::BString, Function)| {
                let Some(process) = crate::actor::host::current_process() else {
                    return Ok(Value::Nil);
                };
                let Some(modules) = process.host_modules.get() else {
                    return Ok(Value::Nil);
                };
                let Some((name, module)) = std::str::from_utf8(&id)
                    .ok()
                    .and_then(|id| modules.get_key_value(id))
                else {
                    return Ok(Value::Nil);
                };
                let table = lua.create_table()?;
                for (fname, entry) in &module.functions {
                    let qualified: Arc<str> = format!("{name}.{fname}").into();
                    let function = match &entry.fast {
                        _ if entry.on_pool => {
                            make_async.call::<Function>(async_submitter(lua, entry, qualified)?)?
                        }
                        Some(fast) => plain_fast(lua, entry, fast.clone(), qualified)?,
                        None => plain(lua, entry, qualified)?,
                    };
                    table.raw_set(fname.as_str(), function)?;
                }
                Ok(Value::Table(table))
            },
        ))?,
    )
}

/// The general path of a plain function: an mlua function copying any
/// arguments with the message rules.
fn plain(lua: &Lua, entry: &Entry, qualified: Arc<str>) -> mlua::Result<Function> {
    let function = entry.function.clone();
    lua.create_function(move |lua, args: MultiValue| {
        let args = arguments(lua, &qualified, args)?;
        let result = call(&qualified, || function(args)).map_err(mlua::Error::runtime)?;
        result_to_lua(lua, result, &qualified)
    })
}

fn result_to_lua(lua: &Lua, result: Message, qualified: &str) -> mlua::Result<Value> {
    match result {
        // Scalars skip the general copier (a third of a call's cost).
        Message::Number(n) => Ok(Value::Number(n)),
        Message::Bool(b) => Ok(Value::Boolean(b)),
        other => message::to_lua(lua, other, &FdCapabilities, &Limits::default()).map_err(|e| {
            mlua::Error::runtime(format!("the result of {qualified} cannot go to Lua: {e}"))
        }),
    }
}

/// Upvalue 1 of a [`fast_call`] closure, in a full userdata as
/// `Option<FastSlot>` (`None` once its `__gc` ran).
struct FastSlot {
    fast: Arc<FastFn>,
    qualified: Arc<str>,
    /// A result that is not a boolean, number or string, waiting for
    /// upvalue 3 to build it (nothing runs in between).
    stash: Rc<Cell<Option<Message>>>,
}

/// A plain function as a raw `lua_CFunction` ([`fast_call`]) holding
/// the slot, the general mlua function ([`plain`]) for arguments it does
/// not read itself, and the builder of results that are not scalars.
fn plain_fast(
    lua: &Lua,
    entry: &Entry,
    fast: Arc<FastFn>,
    qualified: Arc<str>,
) -> mlua::Result<Function> {
    const _: () = assert!(std::mem::align_of::<Option<FastSlot>>() <= 8);
    let general = plain(lua, entry, qualified.clone())?;
    let stash: Rc<Cell<Option<Message>>> = Rc::default();
    let build = {
        let (stash, qualified) = (stash.clone(), qualified.clone());
        lua.create_function(move |lua, ()| match stash.take() {
            Some(result) => result_to_lua(lua, result, &qualified),
            None => Err(mlua::Error::runtime(format!(
                "luring: no result of {qualified} to build"
            ))),
        })?
    };
    let slot = Some(FastSlot {
        fast,
        qualified,
        stash,
    });
    // SAFETY: `exec_raw` pushes `general` and `build` and runs this in
    // protected mode with room for 3 more values. The metatable is made
    // before the userdata, so the slot is written right after the
    // allocation, before anything else can fail; `pushcclosure` takes the
    // userdata, `general` and `build` (in that order) as upvalues and
    // leaves only the closure, which is the result.
    unsafe {
        lua.exec_raw::<Function>((general, build), |l| {
            // stack: [general, build]
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushcfunction(l, fast_slot_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            ffi::lua_pushboolean(l, 0);
            ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
            let ud = ffi::lua_newuserdata(l, std::mem::size_of::<Option<FastSlot>>())
                as *mut Option<FastSlot>;
            std::ptr::write(ud, slot);
            // [general, build, mt, ud] -> [general, build, ud]
            ffi::lua_insert(l, -2);
            ffi::lua_setmetatable(l, -2);
            // [ud, general, build]
            ffi::lua_insert(l, -3);
            ffi::lua_pushcclosure(l, fast_call, 3);
        })
    }
}

unsafe extern "C-unwind" fn fast_slot_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: this `__gc` is only set on the userdata `plain_fast` made
    // (its metatable is hidden by `__metatable`), which holds an
    // initialised `Option<FastSlot>`; the slot is taken out once.
    unsafe {
        let slot = ffi::lua_touserdata(l, 1) as *mut Option<FastSlot>;
        if !slot.is_null() {
            drop((*slot).take());
        }
    }
    0
}

/// Whether argument `idx` is read by [`StackArgs`]: a boolean, a number,
/// or a string that fits in a message.
unsafe fn stack_scalar(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: reads a stack slot of the running function; `lua_tolstring`
    // is only called on strings (it converts nothing, allocates nothing).
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TBOOLEAN | ffi::LUA_TNUMBER => true,
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                ffi::lua_tolstring(l, idx, &mut len);
                len <= Limits::DEFAULT.max_payload_bytes
            }
            _ => false,
        }
    }
}

/// The arguments of the running [`fast_call`], read one by one off its
/// Lua stack (`Scalar::to_message` gives what [`arguments`] would copy).
/// Only `fast_call` makes one, after checking each with [`stack_scalar`].
/// `'call` is the running call: strings borrow from its Lua stack.
struct StackArgs<'call> {
    l: *mut ffi::lua_State,
    next: c_int,
    last: c_int,
    call: PhantomData<&'call ()>,
}

impl<'call> Iterator for StackArgs<'call> {
    type Item = Scalar<'call>;

    #[inline]
    fn next(&mut self) -> Option<Scalar<'call>> {
        if self.next > self.last {
            return None;
        }
        let idx = self.next;
        self.next += 1;
        // SAFETY: `fast_call` is running on `l` (the iterator does not
        // outlive its call) and checked that `idx` holds a boolean, a
        // number or a string; a string stays on the stack (alive, not
        // moved: LuaJIT strings do not move) until the call returns, and
        // the Rust function only gets owned copies of it (`A:
        // DeserializeOwned`, or a `Message`).
        unsafe {
            Some(match ffi::lua_type(self.l, idx) {
                ffi::LUA_TBOOLEAN => Scalar::Bool(ffi::lua_toboolean(self.l, idx) != 0),
                ffi::LUA_TNUMBER => Scalar::Number(ffi::lua_tonumber(self.l, idx)),
                _ => {
                    let mut len = 0usize;
                    let p = ffi::lua_tolstring(self.l, idx, &mut len);
                    Scalar::String(std::slice::from_raw_parts(p.cast::<u8>(), len))
                }
            })
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.last - self.next + 1).max(0) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for StackArgs<'_> {}

/// A plain function called from Lua. When every argument is a boolean,
/// a number or a short string they are read straight off the stack (no
/// mlua callback frame, no `MultiValue`, no `Vec` for a typed function);
/// otherwise the general mlua function (upvalue 2) does the call, with
/// its copier and its errors.
unsafe extern "C-unwind" fn fast_call(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is the `Option<FastSlot>` userdata `plain_fast`
    // made, alive while this closure runs. An error is raised (by
    // `lua_error` or from inside `lua_call`) only where this frame owns
    // nothing but the message being pushed (dropped while the error
    // unwinds, like in any mlua callback); the panic of a Rust function
    // is caught by `call` and never crosses into Lua.
    unsafe {
        let slot = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Option<FastSlot>);
        let Some(slot) = slot else {
            ffi::lua_pushstring(l, MODULE_CLOSED.as_ptr());
            ffi::lua_error(l)
        };
        let nargs = ffi::lua_gettop(l);
        if !(1..=nargs).all(|idx| stack_scalar(l, idx)) {
            ffi::lua_pushvalue(l, ffi::lua_upvalueindex(2));
            ffi::lua_insert(l, 1);
            ffi::lua_call(l, nargs, ffi::LUA_MULTRET);
            return ffi::lua_gettop(l);
        }
        let args = StackArgs {
            l,
            next: 1,
            last: nargs,
            call: PhantomData,
        };
        match call(&slot.qualified, || (slot.fast)(args)) {
            Ok(Message::Number(n)) => ffi::lua_pushnumber(l, n),
            Ok(Message::Bool(b)) => ffi::lua_pushboolean(l, c_int::from(b)),
            Ok(Message::String(s)) => {
                ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
            }
            Ok(other) => {
                slot.stash.set(Some(other));
                ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
                ffi::lua_call(l, 0, 1);
            }
            Err(text) => {
                ffi::lua_pushlstring(l, text.as_ptr().cast(), text.len());
                drop(text);
                ffi::lua_error(l)
            }
        }
        1
    }
}

const MODULE_CLOSED: &CStr =
    c"the VM is closing: Rust module functions are unavailable in finalizers run at exit";

/// A Rust function that queues the call on the module pool and returns
/// its op id; its result arrives as `{true, value}` or `{false, message}`.
fn async_submitter(lua: &Lua, entry: &Entry, qualified: Arc<str>) -> mlua::Result<Function> {
    let function = entry.function.clone();
    lua.create_function(move |lua, args: MultiValue| {
        let args = arguments(lua, &qualified, args)?;
        let function = function.clone();
        let qualified = qualified.clone();
        let job = move || {
            let outcome = call(&qualified, || function(args));
            let build = move |lua: &Lua| {
                let result = lua.create_table()?;
                let converted = outcome.and_then(|m| {
                    message::to_lua(lua, m, &FdCapabilities, &Limits::default())
                        .map_err(|e| format!("the result of {qualified} cannot go to Lua: {e}"))
                });
                match converted {
                    Ok(value) => {
                        result.raw_set(1, true)?;
                        result.raw_set(2, value)?;
                    }
                    Err(text) => {
                        result.raw_set(1, false)?;
                        result.raw_set(2, text)?;
                    }
                }
                Ok(Value::Table(result))
            };
            Ok(Box::new(LuaBuilder(Box::new(build))) as JobOutput)
        };
        submit_op(lua, |st| {
            st.executor.run_blocking_on(module_pool(), Box::new(job))
        })
    })
}

/// Copies the Lua arguments out as messages.
fn arguments(lua: &Lua, qualified: &str, args: MultiValue) -> mlua::Result<Vec<Message>> {
    // A plain loop into a vector of the right size: `collect` into a
    // `Result<Vec<_>>` grew the vector and moved each message twice (a
    // fifth of a call's cost in `perf`).
    let mut messages = Vec::with_capacity(args.len());
    for (i, v) in args.iter().enumerate() {
        // Numbers and booleans copy as from_lua would, without it.
        let message = match v {
            Value::Number(n) => Message::Number(*n),
            Value::Integer(n) => Message::Number(*n as f64),
            Value::Boolean(b) => Message::Bool(*b),
            _ => message::from_lua(lua, v, &FdCapabilities, &Limits::default()).map_err(|e| {
                mlua::Error::runtime(format!("bad argument #{} to '{qualified}' ({e})", i + 1))
            })?,
        };
        messages.push(message);
    }
    Ok(messages)
}

/// Runs `function` with panics caught; the error text for Lua otherwise.
fn call(qualified: &str, function: impl FnOnce() -> ModuleResult) -> Result<Message, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(function)) {
        Ok(Ok(message)) => Ok(message),
        Ok(Err(e)) => Err(e.0),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text panic value".into());
            Err(format!("the Rust function {qualified} panicked: {what}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A finalizer run by `lua_close` after the slot's own `__gc` gets the
    /// closing error, not a dangling slot.
    #[test]
    fn a_function_whose_slot_was_finalized_raises_the_closing_error() {
        let lua = Lua::new();
        let module = Module::new().typed("inc", |(x,): (f64,)| Ok(x + 1.0));
        let entry = module.functions["inc"].clone();
        let fast = entry
            .fast
            .clone()
            .expect("a plain function has a fast path");
        let f = plain_fast(&lua, &entry, fast, "m.inc".into()).unwrap();
        assert_eq!(f.call::<f64>(1.0).unwrap(), 2.0);
        // The general path (a table argument) in a bare Lua state too.
        let err = f.call::<f64>(lua.create_table().unwrap()).unwrap_err();
        assert!(err.to_string().contains("bad arguments: "), "{err}");
        // SAFETY: stack [f]; upvalue 1 of `f` is its slot userdata, moved
        // to index 1 where its `__gc` reads it, as `lua_close` would call it.
        unsafe {
            lua.exec_raw::<()>(&f, |l| {
                ffi::lua_getupvalue(l, -1, 1);
                ffi::lua_insert(l, 1);
                fast_slot_gc(l);
                ffi::lua_settop(l, 0);
            })
            .unwrap();
        }
        let err = f.call::<f64>(1.0).unwrap_err().to_string();
        assert!(err.contains("the VM is closing"), "{err}");
    }

    /// The builtin names a Rust module may not take are exactly the core
    /// module ids lua/core/modules.lua lists (in a comment: "core ids: a,
    /// b, ... .").
    #[test]
    fn builtin_names_match_the_lua_loader() {
        let loader = include_str!("../../lua/core/modules.lua");
        let start = loader
            .find("core ids: ")
            .expect("modules.lua lists the core ids")
            + "core ids: ".len();
        let end = start + loader[start..].find('.').expect("the list ends with a dot");
        let mut in_lua: Vec<&str> = loader[start..end]
            .split(',')
            .map(|id| id.trim().trim_start_matches("--").trim())
            .filter(|id| !id.is_empty())
            .collect();
        let mut in_rust = BUILTIN_MODULES.to_vec();
        in_lua.sort_unstable();
        in_rust.sort_unstable();
        assert_eq!(in_rust, in_lua);
    }
}
