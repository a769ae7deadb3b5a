//! The shared path of every I/O module (pipe, and the socket, file and
//! file-system modules built on it): how a module's Lua code is loaded, the
//! descriptor "holders" its objects keep, and the submit helpers that hand
//! a ring op its fd and buffer.
//!
//! Invariants:
//! - A module's Lua code (`lua/<name>.lua`) is compiled on its first
//!   `require`, with `(K, P, IO)`: the core table, the module's Rust
//!   primitives and the shared object machinery of lua/io_object.lua, which
//!   is built once per VM and cached in `K.io_object`. VMs that never use
//!   I/O modules pay nothing at boot.
//! - An I/O object holds its descriptor in a private `file_descriptor`
//!   userdata (a "holder") that user code never sees; `release()` moves the
//!   descriptor into a new user-visible `file_descriptor`, `new(fd)` and
//!   `assign(fd)` move it out of the user's object (which becomes inert).
//! - Every op's slot holds a clone of the descriptor and owns its buffer (a
//!   byte_span reference or a copy of the string) until its completion, so
//!   closing or collecting an object with an op in flight frees neither
//!   under the kernel.
//! - A blocking-pool job (`Executor::run_blocking`) returns a
//!   [`Message`](crate::actor::message::Message) (or a bare `OwnedFd`):
//!   or a [`LuaBuilder`] (any other owned state, made into a Lua value on
//!   the VM's thread): `rt.turn` builds it as the op's Lua result
//!   ([`job_output_to_lua`]), so
//!   a waiter that was interrupted simply never looks at it and the
//!   collector frees it (an fd in it is a `file_descriptor` object, closed
//!   when collected). Nothing is kept by op id.

use mlua::{Lua, Table, Value};

use crate::actor::vm::{unless_closing, HeldState};
use crate::executor::OpFd;
use crate::modules::error::ErrorCode;
use crate::modules::file_descriptor::{self, push};

pub(crate) use crate::actor::vm::submit_read;

/// A blocking job's output that becomes a Lua value on the VM's thread (a
/// userdata owning what the job made, say). Dropped unbuilt, the closure
/// and everything it captured are dropped.
pub(crate) struct LuaBuilder(pub BuildLua);

/// See [`LuaBuilder`].
pub(crate) type BuildLua = Box<dyn FnOnce(&Lua) -> mlua::Result<Value> + Send>;

/// The Lua value of a blocking job's output (see the invariants).
pub(crate) fn job_output_to_lua(
    lua: &Lua,
    output: crate::executor::blocking::JobOutput,
) -> mlua::Result<Value> {
    use crate::actor::message::{self, Limits, Message};
    let output = match output.downcast::<Message>() {
        Ok(msg) => {
            return message::to_lua(
                lua,
                *msg,
                &file_descriptor::FdCapabilities,
                &Limits::default(),
            )
        }
        Err(other) => other,
    };
    let output = match output.downcast::<LuaBuilder>() {
        Ok(builder) => return (builder.0)(lua),
        Err(other) => other,
    };
    match output.downcast::<std::os::fd::OwnedFd>() {
        Ok(fd) => push(lua, OpFd::owned(*fd)).map(Value::UserData),
        Err(_) => Err(mlua::Error::runtime(
            "luring: a blocking job returned a value of no known type",
        )),
    }
}

/// Builds the Rust primitives of a module (a table of functions).
pub(crate) type Primitives = fn(&Lua) -> mlua::Result<Table>;

/// A builtin module written in Lua on Rust primitives.
pub(crate) struct LuaModule {
    pub name: &'static str,
    /// Runs on the first `require` with `(K, primitives(lua), IO)` and
    /// returns the module table (`lua/NAME.lua`, precompiled by build.rs).
    pub chunk: &'static crate::fiber::CoreChunk,
    pub primitives: Primitives,
}

/// Puts each of `modules` into `k.builtin_modules`, all behind one loader
/// function that lua/core/modules.lua calls with the module's name (one
/// mlua function per module cost every VM ~200 bytes of heap and a Rust
/// box at boot).
pub(crate) fn register_lua_modules(
    lua: &Lua,
    k: &Table,
    modules: &'static [LuaModule],
) -> mlua::Result<()> {
    // The boot-time globals (the main thread's environment is sealed empty
    // afterwards); user code never reaches this table.
    let globals = lua.globals();
    let k2 = k.clone();
    let build = lua.create_function(unless_closing(move |lua, name: mlua::BString| {
        let module = modules
            .iter()
            .find(|m| m.name.as_bytes() == name.as_slice())
            .ok_or_else(|| crate::modules::error::einval(1))?;
        let io = io_object(lua, &k2, &globals)?;
        let prims = (module.primitives)(lua)?;
        module
            .chunk
            .load_with(lua, Some(&globals))?
            .call::<Table>((k2.clone(), prims, io))
    }))?;
    let builtin = k.get::<Table>("builtin_modules")?;
    for module in modules {
        builtin.raw_set(module.name, &build)?;
    }
    Ok(())
}

/// A function that loads and runs `chunk` with `(K, primitives(lua),
/// IO)` when called and returns what it returns, as `register_lua_modules`
/// does for a module: for code merged into a core module on first use
/// (lua/system_process.lua).
pub(crate) fn lua_chunk_loader(
    lua: &Lua,
    k: &Table,
    chunk: &'static crate::fiber::CoreChunk,
    primitives: Primitives,
) -> mlua::Result<mlua::Function> {
    // The boot-time globals (the main thread's environment is sealed empty
    // afterwards); user code never reaches this table.
    let globals = lua.globals();
    let k2 = k.clone();
    lua.create_function(unless_closing(move |lua, ()| {
        let io = io_object(lua, &k2, &globals)?;
        let prims = primitives(lua)?;
        chunk
            .load_with(lua, Some(&globals))?
            .call::<Table>((k2.clone(), prims, io))
    }))
}

/// The VM's lua/io_object.lua table, built on first use.
fn io_object(lua: &Lua, k: &Table, globals: &Table) -> mlua::Result<Table> {
    if let Value::Table(t) = k.raw_get("io_object")? {
        return Ok(t);
    }
    let t: Table = crate::fiber::lib_chunks::IO_OBJECT
        .load_with(lua, Some(globals))?
        .call((k.clone(), holder_primitives(lua)?))?;
    k.raw_set("io_object", &t)?;
    Ok(t)
}

/// The descriptor of holder argument `v` for an op. Holders are private;
/// an emptied one means the object was closed: `EBADF`.
pub(crate) fn holder_fd(v: &Value) -> mlua::Result<OpFd> {
    file_descriptor::arg(v, 1)?
        .op_fd()
        .ok_or_else(|| ErrorCode::system(libc::EBADF).into())
}

/// The primitive `read(holder, buf) -> op id`: a ring read of the
/// holder's descriptor into byte_span `buf` (argument 2).
pub(crate) fn holder_read(lua: &Lua) -> mlua::Result<mlua::Function> {
    lua.create_function(unless_closing(|lua, (holder, buf): (Value, Value)| {
        let fd = holder_fd(&holder)?;
        let span = crate::modules::byte_span::span_arg(&buf, 2)?;
        submit_read(lua, &fd, span)
    }))
}

/// The primitive `write(inline, holder, buf) -> op id[, result]`: a ring
/// write of a string (copied) or byte_span to the holder's descriptor. A
/// write usually completes during its submission (room in the pipe), so
/// with `inline` (lua/io_object.lua IO.run_op_inline) it may come back
/// done (`HeldState::submit_inline`).
pub(crate) fn holder_write(lua: &Lua) -> mlua::Result<mlua::Function> {
    let held = HeldState::of(lua)?;
    lua.create_function(unless_closing(
        move |_, (inline, holder, buf): (bool, Value, Value)| {
            let fd = holder_fd(&holder)?;
            held.write(inline, &fd, &buf)
        },
    ))
}

/// `close`, `release` and `adopt` of holders (lua/io_object.lua's `H`).
fn holder_primitives(lua: &Lua) -> mlua::Result<Table> {
    let h = lua.create_table()?;
    let state = lua
        .app_data_ref::<crate::actor::vm::SharedState>()
        .map(|state| state.clone())
        .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))?;
    crate::modules::fast_io::register(lua, &h, &state)?;
    // release(holder) -> file_descriptor owning what the holder held.
    h.raw_set(
        "release",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = file_descriptor::arg(&holder, 1)?
                .take()
                .ok_or_else(|| mlua::Error::from(ErrorCode::system(libc::EBADF)))?;
            push(lua, fd)
        }))?,
    )?;
    // close(holder): drops the object's reference (ops in flight keep
    // theirs until they complete).
    h.raw_set(
        "close",
        lua.create_function(unless_closing(|_, holder: Value| {
            drop(file_descriptor::arg(&holder, 1)?.take());
            Ok(())
        }))?,
    )?;
    // adopt(file_descriptor, arg index) -> a new holder; the user's object
    // is emptied. Not a file_descriptor: EINVAL; emptied: EBUSY.
    h.raw_set(
        "adopt",
        lua.create_function(unless_closing(|lua, (fd, index): (Value, i32)| {
            let fd = file_descriptor::arg(&fd, index)?
                .take()
                .ok_or_else(|| mlua::Error::from(ErrorCode::generic(libc::EBUSY)))?;
            push(lua, fd)
        }))?,
    )?;
    Ok(h)
}
