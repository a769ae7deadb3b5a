//! The `file` builtin module (spec/io.md "file"): `file.stream`,
//! `file.random_access`, the `*_at` helpers and `file.open_flag`. Objects
//! and waits are Lua (lua/file.lua on lua/io_object.lua); this file gives
//! that code its primitives: the open (a ring `openat`, so unlike Emilua
//! it suspends), reads and writes at the position or at an offset,
//! `ftruncate` and `statx` as ring ops, and `lseek` (no I/O: a plain call).
//!
//! Invariants: those of `io_object` (private holders; every op owns its fd
//! and buffer until its completion). Open flags are limited to the
//! `open_flag` set (anything else is `EINVAL` before the kernel sees it),
//! files are always opened close-on-exec, and created files get mode 0666
//! minus the process umask.

use std::os::fd::AsRawFd;

use mlua::{Lua, Table, Value};

use crate::actor::vm::{submit_op, unless_closing, HeldState};
use crate::executor::{OpBuffer, OpFd};
use crate::modules::byte_span;
use crate::modules::error::{einval, ErrorCode};
use crate::modules::filesystem::{count_arg, path_arg};
use crate::modules::io_object::{self, holder_fd};

/// The flags `file.open_flag` names.
const OPEN_FLAGS: &[(&str, i32)] = &[
    ("append", libc::O_APPEND),
    ("create", libc::O_CREAT),
    ("exclusive", libc::O_EXCL),
    ("read_only", libc::O_RDONLY),
    ("read_write", libc::O_RDWR),
    ("sync_all_on_write", libc::O_SYNC),
    ("truncate", libc::O_TRUNC),
    ("write_only", libc::O_WRONLY),
];

/// The `file` builtin module (registered by `super::register`).
pub(crate) const MODULE: io_object::LuaModule = io_object::LuaModule {
    name: "file",
    chunk: &crate::fiber::lib_chunks::FILE,
    primitives,
};

/// Offsets are byte counts below 2^53 (exact as Lua numbers).
const MAX_OFFSET: u64 = (1 << 53) - 1;

fn open_flags_arg(v: &Value, arg: i32) -> mlua::Result<i32> {
    let allowed = OPEN_FLAGS.iter().fold(0, |acc, (_, f)| acc | f);
    let flags = count_arg(v, arg, i32::MAX as u64)? as i32;
    let access = flags & libc::O_ACCMODE;
    if flags & !allowed != 0 || access == libc::O_ACCMODE {
        return Err(einval(arg));
    }
    Ok(flags)
}

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = lua.create_table()?;
    let flags = lua.create_table()?;
    for (name, value) in OPEN_FLAGS {
        flags.raw_set(*name, *value)?;
    }
    p.raw_set("open_flag", flags)?;
    macro_rules! prim {
        ($name:literal, $f:expr) => {
            p.raw_set($name, lua.create_function(unless_closing($f))?)?;
        };
    }
    // open(path, flags) -> op id; the completion is the fd object.
    prim!("open", |lua, (path, flags): (Value, Value)| {
        let path = path_arg(&path, 2)?;
        let flags = open_flags_arg(&flags, 3)?;
        submit_op(lua, |st| st.executor.open_mode(path, flags, 0o666))
    });
    // open_local(path, flags) -> the object's holder, or nil outside a
    // sandbox (`open` is the way there). Inside, a ring openat is refused
    // (the ring reaches its fixed-file table only), so the open is a plain
    // openat, confined by Landlock and the sandbox's root, and the file
    // goes to a slot of the table (docs/guide/sandboxes.md).
    prim!("open_local", |lua, (path, flags): (Value, Value)| {
        let path = path_arg(&path, 2)?;
        let flags = open_flags_arg(&flags, 3)?;
        let Some(ring_fd) = crate::actor::vm::with_state(lua, |st| {
            st.executor.is_fixed_only().then(|| st.executor.ring_fd())
        })?
        else {
            return Ok(Value::Nil);
        };
        let io = |e: std::io::Error| mlua::Error::from(ErrorCode::from_io(&e));
        // O_NONBLOCK: this call blocks the VM's thread, so a FIFO must not
        // make it wait for a peer (a writer without a reader gets ENXIO);
        // the flag is cleared once the file is open.
        // SAFETY: `path` is a NUL-terminated string alive for the call.
        let fd = unsafe {
            libc::openat(
                libc::AT_FDCWD,
                path.as_ptr(),
                flags | libc::O_CLOEXEC | libc::O_NONBLOCK,
                0o666,
            )
        };
        if fd < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        // SAFETY: openat just made `fd`; nothing else owns it.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // SAFETY: fcntl on the fd `fd` owns; no memory arguments.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags & !libc::O_ACCMODE) } < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        let slot = crate::actor::sandboxed::slots::install_local(ring_fd, fd).map_err(io)?;
        let holder =
            crate::modules::file_descriptor::push(lua, OpFd::Slot(std::rc::Rc::new(slot)))?;
        Ok(Value::UserData(holder))
    });
    // adopt_opened(result of open) -> the object's holder.
    prim!("adopt_opened", |lua, opened: Value| {
        let fd = crate::modules::stdio::take_opened_fd(&opened)
            .ok_or_else(|| mlua::Error::from(ErrorCode::system(libc::EBADF)))?;
        crate::modules::file_descriptor::push(lua, fd)
    });
    // read(inline, holder, buf), write(inline, holder, buf),
    // read_at(inline, holder, offset, buf), write_at(inline, holder,
    // offset, buf) -> op id[, result]: they run once per chunk, so they
    // hold the state, and with `inline` (lua/io_object.lua
    // IO.run_op_inline) a read of cached data or a buffered write
    // completes during its submission (`HeldState::submit_inline`).
    type ChunkArgs = (bool, Value, Value);
    type ChunkAtArgs = (bool, Value, Value, Value);
    let held = HeldState::of(lua)?;
    prim!("read", move |_, (inline, holder, buf): ChunkArgs| {
        let fd = holder_fd(&holder)?;
        held.read(inline, &fd, byte_span::span_arg(&buf, 2)?)
    });
    let held = HeldState::of(lua)?;
    prim!("write", move |_, (inline, holder, buf): ChunkArgs| {
        let fd = holder_fd(&holder)?;
        held.write(inline, &fd, &buf)
    });
    let held = HeldState::of(lua)?;
    prim!(
        "read_at",
        move |_, (inline, holder, offset, buf): ChunkAtArgs| {
            let fd = holder_fd(&holder)?;
            let offset = count_arg(&offset, 2, MAX_OFFSET)?;
            let span = OpBuffer::Span(byte_span::span_arg(&buf, 3)?);
            held.submit_inline(inline, |st| st.executor.read_at(&fd, span, offset))
        }
    );
    let held = HeldState::of(lua)?;
    prim!(
        "write_at",
        move |_, (inline, holder, offset, buf): ChunkAtArgs| {
            let fd = holder_fd(&holder)?;
            let offset = count_arg(&offset, 2, MAX_OFFSET)?;
            let buf = match &buf {
                Value::String(s) => OpBuffer::Owned(s.as_bytes().to_vec().into_boxed_slice()),
                other => OpBuffer::Span(byte_span::span_arg(other, 3)?),
            };
            held.submit_inline(inline, |st| st.executor.write_at(&fd, buf, offset))
        }
    );
    prim!("ftruncate", |lua, (holder, len): (Value, Value)| {
        let fd = holder_fd(&holder)?;
        let len = count_arg(&len, 2, MAX_OFFSET)?;
        submit_op(lua, |st| st.executor.ftruncate(&fd, len))
    });
    prim!("fstat", |lua, (holder, buf): (Value, Value)| {
        let fd = holder_fd(&holder)?;
        let span = byte_span::span_arg(&buf, 2)?;
        submit_op(lua, |st| {
            st.executor.statx_fd(&fd, span, libc::STATX_BASIC_STATS)
        })
    });
    p.raw_set("statx_size", std::mem::size_of::<libc::statx>())?;
    prim!("stat_size", |_, buf: Value| {
        let bytes = byte_span::span_arg(&buf, 1)?.to_vec();
        if bytes.len() < std::mem::size_of::<libc::statx>() {
            return Err(einval(1));
        }
        // SAFETY: `bytes` holds a whole `statx` (checked) the kernel wrote;
        // any bit pattern is a valid `statx`.
        let sx: libc::statx = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        Ok(sx.stx_size as f64)
    });
    // seek(holder, offset, whence) -> new offset: lseek does no I/O.
    prim!(
        "seek",
        |_, (holder, offset, whence): (Value, Value, Value)| {
            let fd = holder_fd(&holder)?;
            let whence = match whence {
                Value::String(s) if &*s.as_bytes() == b"set" => libc::SEEK_SET,
                Value::String(s) if &*s.as_bytes() == b"cur" => libc::SEEK_CUR,
                Value::String(s) if &*s.as_bytes() == b"end" => libc::SEEK_END,
                _ => return Err(einval(3)),
            };
            let offset = match offset {
                Value::Integer(i) => i,
                Value::Number(n) if n.fract() == 0.0 && n.abs() <= MAX_OFFSET as f64 => n as i64,
                _ => return Err(einval(2)),
            };
            // SAFETY: lseek only names the fd, which `fd` keeps open.
            let pos = unsafe { libc::lseek(fd.raw(), offset, whence) };
            if pos < 0 {
                return Err(ErrorCode::from_io(&std::io::Error::last_os_error()).into());
            }
            Ok(pos as f64)
        }
    );
    Ok(p)
}
