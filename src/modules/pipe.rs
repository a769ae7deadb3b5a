//! The `pipe` builtin module (spec/io.md "pipe"): `pipe.pair()`,
//! `pipe.read_stream` and `pipe.write_stream`. The objects and their waits
//! are Lua (lua/pipe.lua, loaded on the first `require 'pipe'`); this file
//! gives that code its primitives.
//!
//! Invariants:
//! - A stream object holds its descriptor in a private `FileDescriptor`
//!   userdata (a "holder") that user code never sees; `release()` moves the
//!   descriptor into a new user-visible `file_descriptor`, `new(fd)` and
//!   `assign(fd)` move it out of the user's object (which becomes inert).
//! - Reads and writes are ring ops whose slots hold a clone of the
//!   descriptor and own the buffer (a byte_span reference or a copy of the
//!   string), so closing or collecting the stream with an op in flight
//!   never frees either under the kernel.
//! - Pipes are created close-on-exec and blocking (the ring waits on them;
//!   a non-blocking fd would make reads fail with `EAGAIN`).

use mlua::{Lua, Table, Value};

use crate::actor::vm::{submit_read, submit_write, unless_closing};
use crate::executor::OpFd;
use crate::modules::byte_span;
use crate::modules::error::ErrorCode;
use crate::modules::file_descriptor::{self, push};

const PIPE_LUA: &str = include_str!("../../lua/pipe.lua");

/// Puts `pipe` into `k.builtin_modules`; its Lua code is compiled on the
/// first `require`, so VMs that never use pipes pay nothing at boot.
pub(crate) fn register(lua: &Lua, k: &Table) -> mlua::Result<()> {
    // The boot-time globals (the main thread's environment is sealed empty
    // afterwards); user code never reaches this table.
    let globals = lua.globals();
    let k2 = k.clone();
    let build = lua.create_function(unless_closing(move |lua, ()| {
        let prims = primitives(lua)?;
        lua.load(PIPE_LUA)
            .set_name("?pipe")
            .set_environment(globals.clone())
            .call::<Table>((k2.clone(), prims))
    }))?;
    k.get::<Table>("builtin_modules")?.raw_set("pipe", build)
}

fn holder_fd(v: &Value) -> mlua::Result<OpFd> {
    // Holders are private; an emptied one means the stream was closed.
    file_descriptor::arg(v, 1)?
        .op_fd()
        .ok_or_else(|| ErrorCode::system(libc::EBADF).into())
}

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = lua.create_table()?;
    p.raw_set(
        "pair",
        lua.create_function(unless_closing(|lua, ()| {
            let (r, w) = std::io::pipe().map_err(|e| ErrorCode::from_io(&e))?;
            Ok((
                push(lua, OpFd::owned(r.into()))?,
                push(lua, OpFd::owned(w.into()))?,
            ))
        }))?,
    )?;
    p.raw_set(
        "read",
        lua.create_function(unless_closing(|lua, (holder, buf): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let span = byte_span::span_arg(&buf, 2)?;
            submit_read(lua, &fd, span)
        }))?,
    )?;
    p.raw_set(
        "write",
        lua.create_function(unless_closing(|lua, (holder, buf): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            submit_write(lua, &fd, &buf)
        }))?,
    )?;
    // release(holder) -> file_descriptor owning what the holder held.
    p.raw_set(
        "release",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = file_descriptor::arg(&holder, 1)?
                .take()
                .ok_or_else(|| mlua::Error::from(ErrorCode::system(libc::EBADF)))?;
            push(lua, fd)
        }))?,
    )?;
    // close(holder): drops the stream's reference (ops in flight keep
    // theirs until they complete).
    p.raw_set(
        "close",
        lua.create_function(unless_closing(|_, holder: Value| {
            drop(file_descriptor::arg(&holder, 1)?.take());
            Ok(())
        }))?,
    )?;
    // adopt(file_descriptor, arg index) -> a new holder; the user's object
    // is emptied. Not a file_descriptor: EINVAL; emptied: EBUSY.
    p.raw_set(
        "adopt",
        lua.create_function(unless_closing(|lua, (fd, index): (Value, i32)| {
            let fd = file_descriptor::arg(&fd, index)?
                .take()
                .ok_or_else(|| mlua::Error::from(ErrorCode::generic(libc::EBUSY)))?;
            push(lua, fd)
        }))?,
    )?;
    Ok(p)
}
