//! The I/O primitives of the core `rt` table (lua/core/system.lua's
//! standard streams and lua/core/modules.lua's module reads): fd objects
//! (`LuaFd`), `stdio_fd`, `read`, `read_at`, `open`, `close`, `write` and
//! `isatty`. The VM's plumbing (turn, sleep, clock, output, exit) stays in
//! src/actor/vm.rs, which calls `add_rt` once while it builds `rt`.
//!
//! Invariants:
//! - Lua holds these fds as `LuaFd` userdata owning a reference to the fd,
//!   never as numbers; ops clone the reference into their slot. fds 0, 1
//!   and 2 are borrowed for the program's life (`OpFd::Std`).
//! - `close` takes the reference out: later uses of the object fail with
//!   `EBADF`; ops in flight keep the fd open until they complete.
//! - A string written is copied into the op (`op_buffer`); a byte_span is
//!   shared, and its storage never moves while the op holds it.

use std::cell::RefCell;
use std::os::fd::RawFd;

use mlua::{AnyUserData, Lua, Table, UserData, Value};

use crate::actor::vm::{io_err, submit_op, unless_closing};
use crate::executor::{OpBuffer, OpFd, StdStream};
use crate::modules::byte_span;
use crate::modules::error::{self, ErrorCode};

/// An fd as the core Lua code holds it: a reference to the fd that ops
/// clone while they run. `rt.close` takes it out (later uses fail with
/// EBADF); garbage collection drops it.
struct LuaFd(RefCell<Option<OpFd>>);

impl UserData for LuaFd {}

/// The fd of `LuaFd` argument `v` (argument 1); closed or not an fd: EBADF.
pub(crate) fn fd_arg(v: &Value) -> mlua::Result<OpFd> {
    let closed = || mlua::Error::from(ErrorCode::system(libc::EBADF).arg(1));
    let ud = match v {
        Value::UserData(ud) => ud,
        _ => return Err(closed()),
    };
    let fd = ud.borrow::<LuaFd>().map_err(|_| closed())?;
    let fd = fd.0.borrow().clone();
    fd.ok_or_else(closed)
}

/// The fd an op opened (`rt.turn` delivers it as a `LuaFd`), taken out of
/// that value so a module can hand it on as its own object; `None` for
/// anything else or an emptied one.
pub(crate) fn take_opened_fd(v: &Value) -> Option<OpFd> {
    match v {
        Value::UserData(ud) => ud.borrow::<LuaFd>().ok()?.0.borrow_mut().take(),
        _ => None,
    }
}

/// A new `LuaFd` owning `fd` (also how `rt.turn` hands out an fd an op
/// opened).
pub(crate) fn push_fd(lua: &Lua, fd: OpFd) -> mlua::Result<AnyUserData> {
    lua.create_userdata(LuaFd(RefCell::new(Some(fd))))
}

/// The buffer of a write: a string (copied) or a byte_span (argument 2).
pub(crate) fn op_buffer(v: &Value) -> mlua::Result<OpBuffer> {
    match v {
        Value::String(s) => {
            // The copy may be large: failing to allocate it is ENOMEM.
            let bytes = s.as_bytes();
            let mut owned = Vec::new();
            owned
                .try_reserve_exact(bytes.len())
                .map_err(|_| io_err(std::io::Error::from_raw_os_error(libc::ENOMEM)))?;
            owned.extend_from_slice(&bytes);
            Ok(OpBuffer::Owned(owned.into_boxed_slice()))
        }
        other => byte_span::span_from_value(other)
            .map(OpBuffer::Span)
            .ok_or_else(|| error::einval(2)),
    }
}

/// Adds the I/O primitives to the core `rt` table.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    rt.set(
        "stdio_fd",
        lua.create_function(|lua, n: i64| {
            let stream = match n {
                0 => StdStream::In,
                1 => StdStream::Out,
                2 => StdStream::Err,
                _ => return Err(error::einval(1)),
            };
            push_fd(lua, OpFd::Std(stream))
        })?,
    )?;
    rt.set(
        "read",
        lua.create_function(unless_closing(|lua, (fd, buf): (Value, Value)| {
            let fd = fd_arg(&fd)?;
            let span = byte_span::span_arg(&buf, 2)?;
            submit_op(lua, |st| st.executor.read(&fd, OpBuffer::Span(span)))
        }))?,
    )?;
    rt.set(
        "read_at",
        lua.create_function(unless_closing(
            |lua, (fd, buf, offset): (Value, Value, f64)| {
                let fd = fd_arg(&fd)?;
                let span = byte_span::span_arg(&buf, 2)?;
                submit_op(lua, |st| {
                    st.executor
                        .read_at(&fd, OpBuffer::Span(span), offset as u64)
                })
            },
        ))?,
    )?;
    rt.set(
        "open",
        lua.create_function(unless_closing(|lua, path: mlua::LuaString| {
            let path =
                std::ffi::CString::new(path.as_bytes().to_vec()).map_err(|_| error::einval(1))?;
            submit_op(lua, |st| st.executor.open(path, libc::O_RDONLY))
        }))?,
    )?;
    rt.set(
        "close",
        lua.create_function(unless_closing(|lua, fd: AnyUserData| {
            let fd = fd
                .borrow::<LuaFd>()
                .ok()
                .and_then(|fd| fd.0.borrow_mut().take())
                .ok_or_else(|| mlua::Error::from(ErrorCode::system(libc::EBADF).arg(1)))?;
            submit_op(lua, |st| st.executor.close(fd))
        }))?,
    )?;
    rt.set(
        "write",
        lua.create_function(unless_closing(|lua, (fd, buf): (Value, Value)| {
            let fd = fd_arg(&fd)?;
            let buf = op_buffer(&buf)?;
            submit_op(lua, |st| {
                // Earlier print output goes first.
                st.flush_stdout(false)?;
                st.executor.write(&fd, buf)
            })
        }))?,
    )?;
    rt.set(
        "isatty",
        lua.create_function(unless_closing(|_, fd: Value| {
            let fd: RawFd = fd_arg(&fd)?.raw();
            // SAFETY: isatty only inspects the fd, which `fd_arg`'s clone
            // keeps open.
            Ok(unsafe { libc::isatty(fd) } == 1)
        }))?,
    )?;
    Ok(())
}
