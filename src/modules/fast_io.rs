//! The per-chunk fast path of stream I/O (`read_some`/`write_some` of
//! `file.stream` and pipe streams, `read_some`/`write_some`/`receive`/
//! `send` of TCP and unix stream sockets): one raw `lua_CFunction`
//! (`H.fast_op`) submits the op, without mlua's callback frame, argument
//! conversion and userdata type checks (docs/performance.md "File read").
//!
//! Invariants:
//! - An object's fast handle (`H.fast_new(holder)`, kept in its Lua state
//!   as `st.fast` beside `st.fast_holder`) is a full userdata with its own
//!   metatable (registry key `FAST_HANDLE_KEY`) holding a clone of the
//!   holder's descriptor. lua/io_object.lua uses it only while
//!   `st.fast_holder` is the object's current holder, and `close()` and
//!   `release()` empty it (`H.fast_clear`) before dropping the holder, so
//!   the handle never keeps a closed object's descriptor open.
//! - A handle caches, per direction (0 read, 1 write), the last byte_span
//!   bound to it (`H.fast_bind`, an mlua function that checks the value is a
//!   byte_span): its userdata address and a clone of its view. The Lua
//!   state keeps that byte_span referenced (`st.fast_rbuf`/`fast_wbuf`) while it is
//!   cached, so the address cannot be reused by another object meanwhile,
//!   and a byte_span's view never changes: an equal address is the same
//!   buffer. Anything else (another buffer, a string, a light userdata) is
//!   a miss.
//! - `fast_op` never raises and never guesses: on a miss, a state it cannot
//!   borrow, a VM that ended or a coroutine that cannot yield (the caller
//!   checks yieldability only then: a Lua call of `coroutine.isyieldable`
//!   ends a JIT trace) it returns nil before anything is submitted,
//!   and the caller takes the ordinary mlua primitive, which owns every
//!   error path. An error of the submission itself (the output flush
//!   before a write, a full SQ, the inline attempt's `io_uring_enter`) is
//!   kept in the handle and raised by `H.fast_raise`, as the primitive
//!   would have raised it.
//! - Each op's slot holds its own clones of descriptor and buffer, as
//!   through the primitives: emptying or collecting a handle frees neither
//!   under the kernel.
//! - A read that may complete inline, on a handle whose descriptor is a
//!   regular file without `O_DIRECT` (checked once, at the first such
//!   read; a file system that answers `EOPNOTSUPP` turns it off), is first tried
//!   as a direct read of cached data (`Executor::read_direct`, under the
//!   same conditions as an inline completion); only a positive count is
//!   taken, anything else submits the ring op as before. A direct read has
//!   no op: `fast_op` returns id 0 with its result.
//! - The same direct read is reachable through LuaJIT's FFI
//!   (`read_direct_ffi`, so that the JIT compiles the call into the
//!   reader's trace): it takes the handle (never a raw fd) and its bound
//!   read buffer, and does nothing `fast_op` would not do in its place;
//!   anything but a positive count sends the caller to `fast_op`. The
//!   pointers it gets are made by runtime Lua code only and stay out of
//!   user code's reach (docs/architecture.md "Direct reads through the
//!   FFI"). LuaJIT's `ffi` library is opened once per VM, by `load_ffi`
//!   or by the lexer for an int64 literal, and stays referenced from the
//!   registry's `_LOADED` for the VM's life (its table keeps the C type
//!   state's `miscmap` alive).
//! - Socket receives and sends with a bound buffer are reachable through
//!   the FFI too (`socket_op_ffi`), for the same reason and under the same
//!   rules: it does what `fast_op` would do in its place (same `submit`),
//!   and every refusal submits nothing and sends the caller to `fast_op`.
//!   A sandbox's fixed-only executor never takes it (`fast_ffi_ok`).

use std::ffi::{c_int, c_void, CStr};
use std::rc::Rc;

use mlua::ffi;
use mlua::{Lua, Table, Value};

use crate::actor::vm::{
    borrow_state, io_err, submit_maybe_inline, unless_closing, SharedState, VmState,
};
use crate::executor::{DirectRead, OpBuffer, OpFd, OpId, RecvStream, StreamRead};
use crate::modules::byte_span::{self, SpanRef};
use crate::modules::error::einval;
use crate::modules::io_object::holder_fd;

use crate::actor::raw_calls::lua_isyieldable;

/// LuaJIT's `lua_gc` option "is the collector running" (lua.h; not in
/// mlua's bindings). It only reads the collector's threshold.
const LUA_GCISRUNNING: c_int = 9;

/// Registry key of the fast handles' metatable.
const FAST_HANDLE_KEY: &CStr = c"luring.fast_io_handle";

/// The op `fast_op` submits (its argument 4).
#[derive(Clone, Copy)]
enum Kind {
    /// `read(2)` at the file's position.
    Read = 0,
    /// `write(2)` at the file's position (earlier print output first).
    Write = 1,
    /// `recv(2)`, no flags, never tried inline.
    Recv = 2,
    /// `send(2)`, no flags.
    Send = 3,
    /// `read(2)` at the position, never tried inline (a pipe: a read
    /// usually waits for the writer).
    ReadWait = 4,
    /// A read of the handle's multishot receive stream (`stream_read`):
    /// through `socket_op_ffi` only.
    Stream = 5,
}

impl Kind {
    fn from_number(n: f64) -> Option<Kind> {
        Some(match n as i32 {
            0 => Kind::Read,
            1 => Kind::Write,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::ReadWait,
            _ => return None,
        })
    }

    /// The handle's buffer cache this kind uses (0 read, 1 write).
    fn direction(self) -> usize {
        match self {
            Kind::Read | Kind::Recv | Kind::ReadWait | Kind::Stream => 0,
            Kind::Write | Kind::Send => 1,
        }
    }
}

/// A fast handle (see the invariants).
struct Handle {
    fd: Option<OpFd>,
    /// Whether reads of `fd` may be direct (`direct_readable`); unknown
    /// until the first read that may complete inline.
    direct: Option<bool>,
    bufs: [Option<(*const c_void, SpanRef)>; 2],
    error: Option<std::io::Error>,
    /// The socket's multishot receive stream (src/executor/recv_multi.rs),
    /// made by its first `stream_read`.
    stream: Option<Rc<RecvStream>>,
}

/// Makes the socket's close send a reset (`SO_LINGER` on, 0 s): what the
/// kernel does when a socket closes with bytes it received and nobody
/// read, which the stream's queue now holds instead of the kernel.
fn reset_at_close(fd: &OpFd) {
    let raw = fd.raw();
    if raw < 0 {
        return;
    }
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: passes a live `linger` of the size given; `raw` is held open
    // by the handle's descriptor for this call.
    let r = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "SO_LINGER for a reset at close");
    }
}

/// Lets go of the handle's stream: its armed op is cancelled now when the
/// state can be borrowed, else at its next CQE (`RecvStream::orphan`); its
/// queued bytes are dropped.
fn orphan_stream(slot: &Slot, h: &mut Handle) {
    let Some(stream) = h.stream.take() else {
        return;
    };
    if stream.buffered() > 0 {
        if let Some(fd) = h.fd.as_ref() {
            reset_at_close(fd);
        }
    }
    stream.orphan();
    if let (Some(id), Some(state)) = (stream.armed(), slot.state.as_ref()) {
        if let Ok(mut st) = state.try_borrow_mut() {
            if let Err(e) = st.executor.cancel(id) {
                tracing::debug!(error = %e, "could not cancel an orphaned multishot receive");
            }
        }
    }
}

/// Upvalue 1 of `fast_op` and `fast_clear` (upvalue 2: the handles'
/// metatable).
struct Slot {
    state: Option<SharedState>,
}

unsafe extern "C-unwind" fn slot_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: set only on the `Slot` userdata `register` initialised.
    unsafe {
        let slot = ffi::lua_touserdata(l, 1) as *mut Slot;
        if !slot.is_null() {
            drop((*slot).state.take());
        }
    }
    0
}

unsafe extern "C-unwind" fn handle_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: set only on handles `new_handle` initialised; the contents
    // are taken out once and the userdata is never used after `__gc`.
    // Upvalue 1 is the `Slot` (set by `register`).
    unsafe {
        let h = ffi::lua_touserdata(l, 1) as *mut Handle;
        let slot = ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Slot;
        if !h.is_null() {
            let h = &mut *h;
            if let Some(slot) = slot.as_ref() {
                orphan_stream(slot, h);
            }
            drop(h.fd.take());
            h.bufs = [None, None];
            drop(h.error.take());
        }
    }
    0
}

/// The handle at stack index `idx`, if that is one: its metatable is the
/// handles', found at index `mt` (an upvalue, or pushed by the caller).
/// A C function has room for the value this pushes.
unsafe fn handle_at<'a>(l: *mut ffi::lua_State, idx: c_int, mt: c_int) -> Option<&'a mut Handle> {
    // SAFETY: the metatable check proves the userdata is a `Handle`
    // `new_handle` wrote; the stack is restored before returning.
    unsafe {
        let top = ffi::lua_gettop(l);
        let is_handle = ffi::lua_getmetatable(l, idx) != 0 && ffi::lua_rawequal(l, -1, mt) != 0;
        ffi::lua_settop(l, top);
        if !is_handle {
            return None;
        }
        (ffi::lua_touserdata(l, idx) as *mut Handle).as_mut()
    }
}

/// The handle Lua value `handle` is (mlua side), as a raw pointer, and the
/// userdata address of `buf` (null when it is none), as `fast_op` sees it.
fn handle_ptr(
    lua: &Lua,
    handle: &Value,
    buf: &Value,
) -> mlua::Result<(*mut Handle, *const c_void)> {
    let mut ptr: *mut Handle = std::ptr::null_mut();
    let mut key: *const c_void = std::ptr::null();
    // SAFETY: `exec_raw` pushes both values (stack: [handle, buf]) and runs
    // this in protected mode with room for 3 more; `handle_at` restores
    // the stack.
    unsafe {
        lua.exec_raw::<()>((handle, buf), |l| {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, FAST_HANDLE_KEY.as_ptr());
            if let Some(h) = handle_at(l, 1, 3) {
                ptr = h;
            }
            if ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA {
                key = ffi::lua_touserdata(l, 2) as *const c_void;
            }
            ffi::lua_settop(l, 0);
        })?;
    }
    if ptr.is_null() {
        return Err(einval(1));
    }
    Ok((ptr, key))
}

/// `fast_op(handle, buf, inline, kind[, no_direct]) -> id[, result] |
/// false (error kept: call fast_raise) | nil (take the primitive)`;
/// `no_direct`: `read_direct_ffi` just tried the direct read.
unsafe extern "C-unwind" fn fast_op(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is the `Slot` userdata `register` made (alive while
    // this closure runs); argument 1 is used as a handle only after
    // `handle_at` checked its metatable; nothing here raises, and no Lua
    // runs while the state is borrowed.
    unsafe {
        let slot = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Slot);
        let Some(h) = handle_at(l, 1, ffi::lua_upvalueindex(2)) else {
            return 0;
        };
        let Some(kind) = Kind::from_number(ffi::lua_tonumber(l, 4)) else {
            return 0;
        };
        let Some(fd) = h.fd.as_ref() else { return 0 };
        // What `coroutine.isyieldable()` says in the Lua caller: a C
        // function called from Lua runs on its caller's C frame.
        if lua_isyieldable(l) == 0 {
            return 0;
        }
        // A full userdata only: a light one's address is just a number.
        if ffi::lua_type(l, 2) != ffi::LUA_TUSERDATA {
            return 0;
        }
        let key = ffi::lua_touserdata(l, 2) as *const c_void;
        let span = match &h.bufs[kind.direction()] {
            Some((cached, span)) if !key.is_null() && *cached == key => span.clone(),
            _ => return 0,
        };
        let inline = ffi::lua_toboolean(l, 3) != 0 && !matches!(kind, Kind::Recv | Kind::ReadWait);
        let Some(state) = slot.state.as_ref() else {
            return 0;
        };
        let Ok(mut st) = state.try_borrow_mut() else {
            return 0;
        };
        if st.is_ended() {
            return 0;
        }
        let mut direct = matches!(kind, Kind::Read)
            && inline
            && ffi::lua_toboolean(l, 5) == 0
            && *h
                .direct
                .get_or_insert_with(|| crate::executor::direct_readable(fd));
        let tried = direct;
        let submitted = submit(&mut st, kind, inline, &mut direct, fd, span);
        if tried && !direct {
            // EOPNOTSUPP: this file system never reads without waiting.
            h.direct = Some(false);
        }
        match submitted {
            Ok((id, result)) => {
                drop(st);
                ffi::lua_pushnumber(l, id.map_or(0.0, OpId::to_f64));
                match result {
                    Some(res) => {
                        ffi::lua_pushinteger(l, res as ffi::lua_Integer);
                        2
                    }
                    None => 1,
                }
            }
            Err(e) => {
                drop(st);
                h.error = Some(e);
                ffi::lua_pushboolean(l, 0);
                1
            }
        }
    }
}

/// Does the op: its id (none for a direct read) and, when it completed at
/// once, its result. `direct` is cleared when the file turned out never
/// to read directly.
#[inline(always)]
fn submit(
    st: &mut VmState,
    kind: Kind,
    inline: bool,
    direct: &mut bool,
    fd: &OpFd,
    mut span: SpanRef,
) -> std::io::Result<(Option<OpId>, Option<i32>)> {
    // `direct`: a read of a regular file that may complete inline; the
    // mailbox check is `submit_maybe_inline`'s.
    if *direct && !st.mailbox.is_pending() {
        match st.executor.read_direct(fd, &mut span) {
            DirectRead::Done(n) => return Ok((None, Some(n as i32))),
            DirectRead::UseRing => {}
            DirectRead::Unsupported => *direct = false,
        }
    }
    let buf = OpBuffer::Span(span);
    let (id, result) = submit_maybe_inline(st, inline, |st| match kind {
        Kind::Read | Kind::ReadWait => st.executor.read(fd, buf),
        Kind::Write => {
            // Earlier print output goes first (the fd may be a copy of
            // stdout), as in `HeldState::write`.
            st.flush_stdout(false)?;
            st.executor.write(fd, buf)
        }
        Kind::Recv => st.executor.recv(fd, buf, 0),
        Kind::Send => st.executor.send(fd, buf, 0),
        // (stream reads go through `stream_op`, never here)
        Kind::Stream => Err(std::io::Error::from_raw_os_error(libc::EINVAL)),
    })?;
    Ok((Some(id), result))
}

/// `fast_clear(handle)`: lets go of the descriptor and buffers.
unsafe extern "C-unwind" fn fast_clear(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: see `handle_at`; dropping an `OpFd` runs no Lua.
    unsafe {
        let slot = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Slot);
        if let Some(h) = handle_at(l, 1, ffi::lua_upvalueindex(2)) {
            orphan_stream(slot, h);
            drop(h.fd.take());
            h.bufs = [None, None];
            drop(h.error.take());
        }
    }
    0
}

/// `read_direct(slot, thread, handle) -> bytes read (> 0) | 0 (not tried)
/// | -1 (tried: nothing read, the ring op must do it)`:
/// the direct read of `fast_op` (kind `Read`, inline allowed) for a caller
/// that reaches it through LuaJIT's FFI (lua/io_object.lua IO.run_fast), so
/// that the JIT compiles the call into the reader's trace. The three
/// pointers are made by runtime Lua code only and never reach user code:
/// the payloads of the `Slot` userdata and of a handle (both kept alive by
/// the caller while it calls), and the running fiber's own coroutine
/// (held by the caller's cache). 0 and -1 ask the caller for `fast_op`,
/// which decides everything else (errors, the ring op, refusals); after
/// -1 it is told not to try the same direct read again.
///
/// It calls no Lua API but `lua_isyieldable` (a read of the thread's C
/// frame) and `lua_gc(LUA_GCISRUNNING)` (a read of the collector's
/// threshold): an FFI call must not touch the Lua stack.
extern "C" fn read_direct_ffi(
    slot: *const Slot,
    thread: *mut ffi::lua_State,
    handle: *mut Handle,
) -> c_int {
    // SAFETY: see above: `slot` and `handle` point to live payloads that
    // `register` and `new_handle` initialised (a handle emptied by
    // `fast_clear` or `__gc` has no fd: nothing is done), `thread` to a
    // live coroutine; no other reference to the handle exists while this
    // runs (nothing here calls back into Lua).
    unsafe {
        let (slot, h) = (&*slot, &mut *handle);
        // What `coroutine.isyieldable()` says in the fiber: false in a
        // callback from C (`fast_op` then returns nil and the caller's
        // check raises). A finalizer runs on LuaJIT's VM thread, not the
        // fiber's, with the collector held off (LuaJIT sets its threshold
        // to the value `LUA_GCISRUNNING` reports as stopped): then, and
        // when the user stopped the collector, `fast_op` checks the
        // thread that really runs.
        if thread.is_null()
            || lua_isyieldable(thread) == 0
            || ffi::lua_gc(thread, LUA_GCISRUNNING, 0) == 0
            || h.direct != Some(true)
        {
            return 0;
        }
        let (Some(fd), Some((_, span))) = (h.fd.as_ref(), h.bufs[0].as_mut()) else {
            return 0;
        };
        let Some(state) = slot.state.as_ref() else {
            return 0;
        };
        let Ok(mut st) = state.try_borrow_mut() else {
            return 0;
        };
        if st.is_ended() || st.mailbox.is_pending() {
            return 0;
        }
        match st.executor.read_direct(fd, span) {
            // At most `u32::MAX` asked; the kernel returns at most ~2 GiB.
            DirectRead::Done(n) => c_int::try_from(n).unwrap_or(0),
            DirectRead::UseRing => -1,
            DirectRead::Unsupported => {
                h.direct = Some(false);
                -1
            }
        }
    }
}

/// Added to a stream read's count of bytes it took from the queue where
/// the reader may not go on without yielding (`may_complete_inline` said
/// no): it yields (stays ready, behind the fibers ready before it), then
/// returns the count. The bytes are in its buffer already: an
/// interruption meanwhile cannot lose them (a ready fiber is not woken
/// by one).
const FFI_YIELD_AFTER: f64 = 2147483648.0;

/// A read of `stream` into `span` as a number (see `stream_read`):
/// `None` when this executor has no multishot receives.
fn stream_op(
    st: &mut VmState,
    fd: &OpFd,
    stream: &Rc<RecvStream>,
    span: &mut SpanRef,
    inline: bool,
) -> std::io::Result<Option<f64>> {
    Ok(st
        .executor
        .read_stream(fd, stream, span)?
        .map(|read| stream_answer(read, inline)))
}

/// A stream read as `socket_op`'s number (see `stream_read`).
#[inline(always)]
fn stream_answer(read: StreamRead, inline: bool) -> f64 {
    match read {
        // (`usize` through `i64`: one instruction, as `OpId::to_f64`)
        StreamRead::Bytes(n) if !inline && n > 0 => n as i64 as f64 + FFI_YIELD_AFTER,
        StreamRead::Bytes(n) => n as i64 as f64,
        StreamRead::Ended(res) => f64::from(res),
        StreamRead::Wait(id) => id.to_f64(),
    }
}

/// `socket_op` answers: nothing was done, the caller takes `fast_op`.
const FFI_NOT_TAKEN: f64 = -1e18;
/// `socket_op` answers: the submission failed, the error is kept in the
/// handle for `fast_raise` (as `fast_op`'s `false`).
const FFI_ERROR_KEPT: f64 = -2e18;

/// `socket_op(slot, thread, handle, kind, inline) -> id (>= 2^32: the op
/// waits) | result (-2^31..2^32: it completed inline) | FFI_NOT_TAKEN |
/// FFI_ERROR_KEPT`: what `fast_op` does for a socket receive (kind 2) or
/// send (kind 3) with the handle's bound buffer of that direction, for a
/// caller that reaches it through LuaJIT's FFI (lua/io_object.lua
/// IO.run_fast), so that the JIT compiles the call into the fiber's trace
/// instead of ending it at a `lua_CFunction` (docs/performance.md
/// "echo-ffi"). The caller checked with `rawequal` that its buffer is the
/// bound one (as for `read_direct_ffi`); the pointers are made by runtime
/// Lua code only and never reach user code. An op id always has a
/// generation >= 1, so it is >= 2^32 and never mistaken for a result.
/// Every refusal (another kind, an emptied handle, a coroutine that
/// cannot yield, a finalizer, a state it cannot borrow, a VM that ended)
/// submits nothing and sends the caller to `fast_op`, which decides.
///
/// Like `read_direct_ffi`, it calls no Lua API but `lua_isyieldable` and
/// `lua_gc(LUA_GCISRUNNING)`, which only read the thread and the collector.
extern "C" fn socket_op_ffi(
    slot: *const Slot,
    thread: *mut ffi::lua_State,
    handle: *mut Handle,
    kind: c_int,
    inline: c_int,
) -> f64 {
    // SAFETY: as for `read_direct_ffi`: `slot` and `handle` point to live
    // payloads `register` and `new_handle` initialised (an emptied handle
    // has no fd: nothing is done), `thread` to a live coroutine; no other
    // reference to the handle exists while this runs (nothing here calls
    // back into Lua).
    unsafe {
        let (slot, h) = (&*slot, &mut *handle);
        if thread.is_null()
            || lua_isyieldable(thread) == 0
            || ffi::lua_gc(thread, LUA_GCISRUNNING, 0) == 0
        {
            return FFI_NOT_TAKEN;
        }
        let kind = match kind {
            2 => Kind::Recv,
            3 => Kind::Send,
            5 => Kind::Stream,
            _ => return FFI_NOT_TAKEN,
        };
        let (Some(fd), Some((_, span))) = (h.fd.as_ref(), h.bufs[kind.direction()].as_mut()) else {
            return FFI_NOT_TAKEN;
        };
        // A stream read that arms nothing needs no state: the common case.
        // (The handle's span itself: a clone only if it becomes the target.)
        if let (Kind::Stream, Some(stream)) = (kind, h.stream.as_ref()) {
            if let Some(read) = stream.read_armed(span) {
                return stream_answer(read, inline != 0);
            }
        }
        let Some(state) = slot.state.as_ref() else {
            return FFI_NOT_TAKEN;
        };
        let Ok(mut st) = state.try_borrow_mut() else {
            return FFI_NOT_TAKEN;
        };
        if st.is_ended() {
            return FFI_NOT_TAKEN;
        }
        if let Kind::Stream = kind {
            let Some(stream) = h.stream.clone() else {
                return FFI_NOT_TAKEN;
            };
            let mut span = span.clone();
            let read = stream_op(&mut st, fd, &stream, &mut span, inline != 0);
            drop(st);
            return match read {
                Ok(Some(r)) => r,
                Ok(None) => FFI_NOT_TAKEN,
                Err(e) => {
                    h.error = Some(e);
                    FFI_ERROR_KEPT
                }
            };
        }
        // Receives are never tried inline (as in `fast_op`). A send is
        // `submit`'s `Kind::Send` without its dispatch on the kind (a call
        // of its closure per send).
        let submitted = match kind {
            // (`submit_maybe_inline`, spelled out: its closure was a call)
            Kind::Send => match st.executor.send_span(fd, span, 0) {
                Ok(id) if inline != 0 && !st.mailbox.is_pending() => {
                    st.executor.complete_inline(id).map(|res| (Some(id), res))
                }
                Ok(id) => Ok((Some(id), None)),
                Err(e) => Err(e),
            },
            _ => submit(&mut st, kind, false, &mut false, fd, span.clone()),
        };
        drop(st);
        match submitted {
            Ok((_, Some(res))) => f64::from(res),
            Ok((Some(id), None)) => id.to_f64(),
            // (no direct read was asked for: always an id or a result)
            Ok((None, None)) => FFI_NOT_TAKEN,
            Err(e) => {
                h.error = Some(e);
                FFI_ERROR_KEPT
            }
        }
    }
}

/// `fast_thread(co)`: the `lua_State` of coroutine `co` as a light
/// userdata (null for anything else), for `read_direct`'s yieldability
/// check.
unsafe extern "C-unwind" fn fast_thread(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: reads argument 1 and pushes one value, which a C function
    // has room for.
    unsafe {
        let thread = ffi::lua_tothread(l, 1);
        ffi::lua_pushlightuserdata(l, thread.cast());
    }
    1
}

/// `fast_direct(handle) -> bool`: whether reads of the handle's descriptor
/// may be direct (a regular file without `O_DIRECT` the process owns, on
/// an executor that is not fixed-only); decided once per handle.
unsafe extern "C-unwind" fn fast_direct(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: see `handle_at`; `fast_direct` has the handles' metatable as
    // upvalue 2 and the `Slot` as upvalue 1, like `fast_op`.
    unsafe {
        let slot = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Slot);
        let mut ok = false;
        if let Some(h) = handle_at(l, 1, ffi::lua_upvalueindex(2)) {
            let fixed_only = match slot.state.as_ref().map(|s| s.try_borrow()) {
                Some(Ok(st)) => st.executor.is_fixed_only(),
                _ => true,
            };
            if let (false, Some(fd)) = (fixed_only, h.fd.as_ref()) {
                ok = *h
                    .direct
                    .get_or_insert_with(|| crate::executor::direct_readable(fd));
            }
        }
        ffi::lua_pushboolean(l, ok as c_int);
        1
    }
}

/// `fast_ffi_ok() -> bool`: whether this VM may take `socket_op_ffi`:
/// not on a sandbox's fixed-only executor, which never opens LuaJIT's
/// `ffi` library for the runtime (as for direct reads: the sandbox keeps
/// the plain paths).
unsafe extern "C-unwind" fn fast_ffi_ok(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: upvalue 1 is the `Slot` userdata `register` made; pushes one
    // value, which a C function has room for.
    unsafe {
        let slot = &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Slot);
        let ok = match slot.state.as_ref().map(|s| s.try_borrow()) {
            Some(Ok(st)) => !st.executor.is_fixed_only(),
            _ => false,
        };
        ffi::lua_pushboolean(l, ok as c_int);
        1
    }
}

/// `load_ffi()`: LuaJIT's `ffi` library, for runtime code only (never a
/// global, never in user code's reach). The lexer opens it by itself for
/// an int64 literal (`1LL`) in any chunk, and opening it twice would make a
/// second C type state and leak the first: LuaJIT records each opening in
/// the registry's `_LOADED` (boot leaves it there, empty), so an opening
/// found there is taken rather than made. The table stays there: it holds
/// the C type state's `miscmap` (key `"!"`), which the state points to
/// without keeping it alive; collected, every later use of it (a cdata's
/// metamethod lookup, a compiled FFI call) would read freed memory.
unsafe extern "C-unwind" fn load_ffi(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: at most 3 values on the stack of a C function (room for 20)
    // before `luaopen_ffi`, which grows the stack as it needs; it raises
    // only memory errors, like any allocation here, and `luaL_error` a
    // plain error.
    unsafe {
        ffi::lua_settop(l, 0);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"_LOADED".as_ptr());
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
            return ffi::luaL_error(l, c"luring: the registry's _LOADED is missing".as_ptr());
        }
        ffi::lua_getfield(l, 1, c"ffi".as_ptr());
        if ffi::lua_type(l, 2) == ffi::LUA_TTABLE {
            return 1;
        }
        ffi::lua_settop(l, 0);
        // Records itself in `_LOADED`; leaves its table on top.
        ffi::luaopen_ffi(l);
        1
    }
}

/// A new handle holding `fd`.
fn new_handle(lua: &Lua, fd: OpFd) -> mlua::Result<Value> {
    const _: () = assert!(std::mem::align_of::<Handle>() <= 8);
    let handle = Handle {
        direct: None,
        fd: Some(fd),
        bufs: [None, None],
        error: None,
        stream: None,
    };
    // SAFETY: `exec_raw` runs this in protected mode with room for 3
    // values: the metatable is fetched before the userdata is made, so the
    // handle is written right after its allocation, before anything else
    // can fail; the userdata is left on the stack as the result.
    unsafe {
        lua.exec_raw::<Value>((), |l| {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, FAST_HANDLE_KEY.as_ptr());
            let h = ffi::lua_newuserdata(l, std::mem::size_of::<Handle>()) as *mut Handle;
            std::ptr::write(h, handle);
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_remove(l, -2);
        })
    }
}

/// Adds `fast_new`, `fast_bind`, `fast_op`, `fast_clear` and `fast_raise`
/// to the holder primitives `h`, holding `state`.
pub(crate) fn register(lua: &Lua, h: &Table, state: &SharedState) -> mlua::Result<()> {
    const _: () = assert!(std::mem::align_of::<Slot>() <= 8);
    let slot = Slot {
        state: Some(state.clone()),
    };
    // SAFETY: `exec_raw` pushes `h` (stack: [h]) and runs this in protected
    // mode with room for 3 values (`lua_checkstack` for more). The
    // metatables are made before the slot userdata, so the `Slot` is
    // written right after its allocation, before anything else can fail;
    // everything pushed is popped or stored.
    unsafe {
        lua.exec_raw::<()>(h, |l| {
            ffi::lua_checkstack(l, 6);
            // the handles' metatable, in the registry
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushboolean(l, 0);
            ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, FAST_HANDLE_KEY.as_ptr());
            // stack: [h, handle_mt]; the slot's metatable, then the slot
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushcfunction(l, slot_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            let s = ffi::lua_newuserdata(l, std::mem::size_of::<Slot>()) as *mut Slot;
            std::ptr::write(s, slot);
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_remove(l, -2);
            // stack: [h, handle_mt, slot]; the handles' finalizer holds
            // the slot (to cancel an orphaned stream's op)
            ffi::lua_pushvalue(l, 3);
            ffi::lua_pushcclosure(l, handle_gc, 1);
            ffi::lua_setfield(l, 2, c"__gc".as_ptr());
            ffi::lua_pushvalue(l, 3);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_pushcclosure(l, fast_op, 2);
            ffi::lua_setfield(l, 1, c"fast_op".as_ptr());
            ffi::lua_pushvalue(l, 3);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_pushcclosure(l, fast_clear, 2);
            ffi::lua_setfield(l, 1, c"fast_clear".as_ptr());
            ffi::lua_pushvalue(l, 3);
            ffi::lua_pushvalue(l, 2);
            ffi::lua_pushcclosure(l, fast_direct, 2);
            ffi::lua_setfield(l, 1, c"fast_direct".as_ptr());
            ffi::lua_pushvalue(l, 3);
            ffi::lua_pushcclosure(l, fast_ffi_ok, 1);
            ffi::lua_setfield(l, 1, c"fast_ffi_ok".as_ptr());
            // for `read_direct`: the slot itself and the function's address
            ffi::lua_pushvalue(l, 3);
            ffi::lua_setfield(l, 1, c"fast_slot".as_ptr());
            let direct_fn: extern "C" fn(*const Slot, *mut ffi::lua_State, *mut Handle) -> c_int =
                read_direct_ffi;
            ffi::lua_pushlightuserdata(l, direct_fn as *mut c_void);
            ffi::lua_setfield(l, 1, c"fast_read_direct".as_ptr());
            // for `socket_op`: its address, and its two answers that are
            // neither an id nor a result
            let socket_fn: extern "C" fn(
                *const Slot,
                *mut ffi::lua_State,
                *mut Handle,
                c_int,
                c_int,
            ) -> f64 = socket_op_ffi;
            ffi::lua_pushlightuserdata(l, socket_fn as *mut c_void);
            ffi::lua_setfield(l, 1, c"fast_socket_op".as_ptr());
            ffi::lua_pushnumber(l, FFI_NOT_TAKEN);
            ffi::lua_setfield(l, 1, c"fast_not_taken".as_ptr());
            ffi::lua_pushnumber(l, FFI_ERROR_KEPT);
            ffi::lua_setfield(l, 1, c"fast_error_kept".as_ptr());
            ffi::lua_pushnumber(l, FFI_YIELD_AFTER);
            ffi::lua_setfield(l, 1, c"fast_yield_after".as_ptr());
            ffi::lua_pushcfunction(l, fast_thread);
            ffi::lua_setfield(l, 1, c"fast_thread".as_ptr());
            ffi::lua_pushcfunction(l, load_ffi);
            ffi::lua_setfield(l, 1, c"load_ffi".as_ptr());
            ffi::lua_settop(l, 0);
        })?;
    }
    // fast_new(holder) -> a handle holding the holder's descriptor.
    h.raw_set(
        "fast_new",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = holder_fd(&holder)?;
            new_handle(lua, fd)
        }))?,
    )?;
    // fast_bind(handle, buf, direction) -> whether buf is a byte_span (then
    // cached for that direction; the caller keeps it referenced).
    h.raw_set(
        "fast_bind",
        lua.create_function(unless_closing(
            |lua, (handle, buf, direction): (Value, Value, usize)| {
                if direction > 1 {
                    return Err(einval(3));
                }
                let (h, key) = handle_ptr(lua, &handle, &buf)?;
                let Some(span) = byte_span::span_from_value(&buf) else {
                    return Ok(false);
                };
                if key.is_null() {
                    return Ok(false);
                }
                // SAFETY: `handle_ptr` checked the metatable; the handle is
                // alive (the argument references it) and no Lua runs while
                // it is written.
                unsafe { (*h).bufs[direction] = Some((key, span)) };
                Ok(true)
            },
        ))?,
    )?;
    // fast_completions(on) -> pointer, length: the VM's completion array
    // (made now if need be), for the scheduler to read through the FFI
    // (src/actor/vm.rs `write_completion_array`); with `on`, turns start
    // writing it (call it so once the scheduler holds the pointer). The
    // array lives as long as the VM's state, which outlives its Lua code.
    let st = state.clone();
    h.raw_set(
        "fast_completions",
        lua.create_function(unless_closing(move |_, on: bool| {
            borrow_state(&st, |st| {
                let (arr, enabled) = st.completion_array.get_or_insert_with(|| {
                    let len = crate::actor::vm::COMPLETION_ARRAY_LEN;
                    (vec![-1.0; len].into_boxed_slice(), false)
                });
                *enabled |= on;
                (mlua::LightUserData(arr.as_mut_ptr().cast()), arr.len())
            })
        }))?,
    )?;
    // stream_read(handle, buf, inline) -> a number: what `socket_op`
    // kind 5 answers (an op id to wait for then read again, bytes, 0 at
    // EOF, a negative errno; plus FFI_YIELD_AFTER: yield first), or FFI_NOT_TAKEN when this
    // executor has no multishot receives (then never: plain receives).
    // Makes the handle's stream at its first call; raises the errors of
    // the submission.
    let st = state.clone();
    h.raw_set(
        "stream_read",
        lua.create_function(unless_closing(
            move |lua, (handle, buf, inline): (Value, Value, bool)| {
                let (h, _) = handle_ptr(lua, &handle, &Value::Nil)?;
                let mut span = byte_span::span_arg(&buf, 2)?;
                // SAFETY: `handle_ptr` checked the metatable; the argument
                // keeps the handle alive and no Lua runs while it is used.
                let h = unsafe { &mut *h };
                let Some(fd) = h.fd.clone() else {
                    return Err(crate::modules::error::ErrorCode::system(libc::EBADF).into());
                };
                borrow_state(&st, |st| {
                    if h.stream.is_none() {
                        if !st.executor.has_buf_ring().map_err(io_err)? {
                            return Ok(FFI_NOT_TAKEN);
                        }
                        h.stream = Some(Rc::default());
                    }
                    let stream = h.stream.clone().expect("made above");
                    stream_op(st, &fd, &stream, &mut span, inline)
                        .map(|r| r.unwrap_or(FFI_NOT_TAKEN))
                        .map_err(io_err)
                })?
            },
        ))?,
    )?;
    // stream_take(handle, buf, peek) -> bytes copied from the stream's
    // queue into buf (taken unless peek): for a receive with flags after
    // the stream was quiesced (lua/io_object.lua IO.receive_flagged).
    h.raw_set(
        "stream_take",
        lua.create_function(|lua, (handle, buf, peek): (Value, Value, bool)| {
            let (h, _) = handle_ptr(lua, &handle, &Value::Nil)?;
            let mut span = byte_span::span_arg(&buf, 2)?;
            // SAFETY: as in fast_bind.
            let stream = unsafe { (*h).stream.clone() };
            Ok(match stream.and_then(|s| s.copy_into(&mut span, peek)) {
                Some(StreamRead::Bytes(n)) => n,
                _ => 0,
            })
        })?,
    )?;
    // stream_unwait(handle, id): the reader waiting for op `id` of the
    // handle's stream left (Executor::unwait).
    let st = state.clone();
    h.raw_set(
        "stream_unwait",
        lua.create_function(move |lua, (handle, id): (Value, f64)| {
            let (h, _) = handle_ptr(lua, &handle, &Value::Nil)?;
            // SAFETY: as in fast_bind.
            let stream = unsafe { (*h).stream.clone() };
            if let (Some(stream), Some(id)) = (stream, OpId::from_f64(id)) {
                borrow_state(&st, |st| st.executor.unwait(&stream, id))?;
            }
            Ok(())
        })?,
    )?;
    // stream_info(handle) -> armed op id or nil, bytes buffered (0 without
    // a stream).
    h.raw_set(
        "stream_info",
        lua.create_function(|lua, handle: Value| {
            let (h, _) = handle_ptr(lua, &handle, &Value::Nil)?;
            // SAFETY: as in fast_bind.
            let stream = unsafe { (*h).stream.clone() };
            Ok(match stream {
                Some(s) => (s.armed().map(OpId::to_f64), s.buffered()),
                None => (None, 0),
            })
        })?,
    )?;
    // fast_raise(handle): raises the error fast_op kept.
    h.raw_set(
        "fast_raise",
        lua.create_function(|lua, handle: Value| {
            let (h, _) = handle_ptr(lua, &handle, &Value::Nil)?;
            // SAFETY: as in fast_bind.
            let e = unsafe { (*h).error.take() };
            Err::<(), _>(match e {
                Some(e) => io_err(e),
                None => mlua::Error::runtime("luring: fast_raise without an error"),
            })
        })?,
    )?;
    Ok(())
}
