//! The socket primitives the `ip` and `unix` modules share (their Lua code
//! is lua/ip.lua and lua/unix.lua on lua/io_object.lua).
//!
//! Invariants:
//! - Sockets are created `SOCK_CLOEXEC` and blocking: the ring waits on
//!   them (a non-blocking socket would make ring reads fail with `EAGAIN`).
//!   Creation, bind, listen, options, shutdown and the endpoint queries are
//!   plain non-blocking syscalls on the VM thread ([B] in spec/io.md);
//!   everything that waits for a peer is a ring op.
//! - Lua hands addresses to these primitives as *packed endpoints*: a Lua
//!   string holding the raw `sockaddr` bytes, built only by `ip_endpoint`
//!   and `unix_endpoint` here (and by the kernel: accept, recvmsg,
//!   getsockname), and checked again (family, length) before any use, so a
//!   forged string can at worst name another address, never make the
//!   kernel read out of bounds.
//! - An op with extra completion data (accept, recvmsg) is taken with
//!   `take(id)` after its wait, returned or raised (lua/io_object.lua's
//!   `IO.run_op_taking`): the accepted fd or received fds reach Lua only as
//!   owned objects, and an output nobody takes is dropped with its fds.

use std::os::fd::{FromRawFd, OwnedFd};

use mlua::{Lua, Table, Value};

use crate::actor::vm::{submit_op, unless_closing, with_state, HeldState};
use crate::executor::socket::{SockAddr, SocketOutput, MAX_FDS_PER_MESSAGE};
use crate::executor::{OpBuffer, OpFd, OpId};
use crate::modules::byte_span;
use crate::modules::error::{einval, ErrorCode};
use crate::modules::file_descriptor::{self, push};
use crate::modules::io_object::holder_fd;

fn last_os_error() -> mlua::Error {
    ErrorCode::from_io(&std::io::Error::last_os_error()).into()
}

fn check(ret: libc::c_int) -> mlua::Result<libc::c_int> {
    if ret < 0 {
        Err(last_os_error())
    } else {
        Ok(ret)
    }
}

/// A new `SOCK_CLOEXEC` socket (blocking).
pub(crate) fn new_socket(domain: i32, kind: i32) -> mlua::Result<OwnedFd> {
    // SAFETY: socket(2) has no memory arguments.
    let fd = check(unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: the kernel just created `fd`; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The packed endpoint of argument `index` (see the module invariants).
pub(crate) fn endpoint_arg(v: &Value, index: i32) -> mlua::Result<SockAddr> {
    let Value::String(s) = v else {
        return Err(einval(index));
    };
    let bytes = s.as_bytes();
    let mut addr = SockAddr::empty();
    if bytes.len() < std::mem::size_of::<libc::sa_family_t>()
        || bytes.len() > std::mem::size_of::<libc::sockaddr_storage>()
    {
        return Err(einval(index));
    }
    // SAFETY: at most size_of(sockaddr_storage) bytes (checked) are copied
    // into the live storage.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (&mut addr.storage as *mut libc::sockaddr_storage).cast::<u8>(),
            bytes.len(),
        )
    };
    addr.len = bytes.len() as libc::socklen_t;
    let min = match addr.family() {
        libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
        libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
        libc::AF_UNIX => std::mem::size_of::<libc::sa_family_t>(),
        _ => return Err(einval(index)),
    };
    if bytes.len() < min {
        return Err(einval(index));
    }
    Ok(addr)
}

/// `addr` as a packed endpoint string.
pub(crate) fn push_endpoint(lua: &Lua, addr: &SockAddr) -> mlua::Result<Value> {
    let len = (addr.len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `len` bytes of the live storage (bounded above).
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&addr.storage as *const libc::sockaddr_storage).cast::<u8>(),
            len,
        )
    };
    Ok(Value::String(lua.create_string(bytes)?))
}

/// `getsockname`/`getpeername` of `fd`.
fn endpoint_of(fd: &OpFd, peer: bool) -> mlua::Result<SockAddr> {
    let mut addr = SockAddr::empty();
    let ptr = (&mut addr.storage as *mut libc::sockaddr_storage).cast::<libc::sockaddr>();
    // SAFETY: the kernel writes at most `addr.len` bytes into the live
    // storage and updates `addr.len`; the fd is kept open by `fd`.
    let ret = unsafe {
        if peer {
            libc::getpeername(fd.raw(), ptr, &mut addr.len)
        } else {
            libc::getsockname(fd.raw(), ptr, &mut addr.len)
        }
    };
    check(ret)?;
    Ok(addr)
}

/// How a socket option's value reads from and to Lua.
#[derive(Clone, Copy)]
enum OptKind {
    Bool,
    Int,
    Linger,
}

/// The socket options `set_option`/`get_option` know (spec/io.md; asio's
/// names).
fn option(name: &[u8]) -> Option<(i32, i32, OptKind)> {
    use libc::*;
    Some(match name {
        b"reuse_address" => (SOL_SOCKET, SO_REUSEADDR, OptKind::Bool),
        b"reuse_port" => (SOL_SOCKET, SO_REUSEPORT, OptKind::Bool),
        b"keep_alive" => (SOL_SOCKET, SO_KEEPALIVE, OptKind::Bool),
        b"broadcast" => (SOL_SOCKET, SO_BROADCAST, OptKind::Bool),
        b"debug" => (SOL_SOCKET, SO_DEBUG, OptKind::Bool),
        b"do_not_route" => (SOL_SOCKET, SO_DONTROUTE, OptKind::Bool),
        b"out_of_band_inline" => (SOL_SOCKET, SO_OOBINLINE, OptKind::Bool),
        b"receive_buffer_size" => (SOL_SOCKET, SO_RCVBUF, OptKind::Int),
        b"send_buffer_size" => (SOL_SOCKET, SO_SNDBUF, OptKind::Int),
        b"receive_low_watermark" => (SOL_SOCKET, SO_RCVLOWAT, OptKind::Int),
        b"send_low_watermark" => (SOL_SOCKET, SO_SNDLOWAT, OptKind::Int),
        b"linger" => (SOL_SOCKET, SO_LINGER, OptKind::Linger),
        b"tcp_no_delay" => (IPPROTO_TCP, TCP_NODELAY, OptKind::Bool),
        b"v6_only" => (IPPROTO_IPV6, IPV6_V6ONLY, OptKind::Bool),
        b"multicast_loop" => (IPPROTO_IP, IP_MULTICAST_LOOP, OptKind::Bool),
        b"multicast_hops" => (IPPROTO_IP, IP_MULTICAST_TTL, OptKind::Int),
        b"unicast_hops" => (IPPROTO_IP, IP_TTL, OptKind::Int),
        _ => return None,
    })
}

/// The v6 twin of an IPv4-level option (an AF_INET6 socket takes those).
fn option_for_family(fd: &OpFd, (level, name, kind): (i32, i32, OptKind)) -> (i32, i32, OptKind) {
    if level != libc::IPPROTO_IP {
        return (level, name, kind);
    }
    let is_v6 = endpoint_of(fd, false).is_ok_and(|a| a.family() == libc::AF_INET6);
    if !is_v6 {
        return (level, name, kind);
    }
    let name = match name {
        libc::IP_MULTICAST_LOOP => libc::IPV6_MULTICAST_LOOP,
        libc::IP_MULTICAST_TTL => libc::IPV6_MULTICAST_HOPS,
        libc::IP_TTL => libc::IPV6_UNICAST_HOPS,
        other => other,
    };
    (libc::IPPROTO_IPV6, name, kind)
}

fn int_value(v: &Value, index: i32) -> mlua::Result<i32> {
    match v {
        Value::Integer(i) => i32::try_from(*i).map_err(|_| einval(index)),
        Value::Number(n) if n.fract() == 0.0 && n.abs() <= i32::MAX as f64 => Ok(*n as i32),
        _ => Err(einval(index)),
    }
}

fn set_option(fd: &OpFd, name: &[u8], a: &Value, b: &Value) -> mlua::Result<()> {
    let opt = option(name).ok_or_else(|| einval(2))?;
    let (level, optname, kind) = option_for_family(fd, opt);
    let set = |ptr: *const libc::c_void, len: usize| {
        // SAFETY: `ptr` points at a live value of `len` bytes; the fd is
        // kept open by `fd`.
        check(unsafe { libc::setsockopt(fd.raw(), level, optname, ptr, len as libc::socklen_t) })
    };
    match kind {
        OptKind::Bool => {
            let Value::Boolean(on) = a else {
                return Err(einval(3));
            };
            let v = libc::c_int::from(*on);
            set((&v as *const libc::c_int).cast(), std::mem::size_of_val(&v))?;
        }
        OptKind::Int => {
            let v = int_value(a, 3)?;
            set((&v as *const libc::c_int).cast(), std::mem::size_of_val(&v))?;
        }
        OptKind::Linger => {
            let Value::Boolean(on) = a else {
                return Err(einval(3));
            };
            let secs = if b.is_nil() { 0 } else { int_value(b, 4)? };
            let v = libc::linger {
                l_onoff: libc::c_int::from(*on),
                l_linger: secs,
            };
            set(
                (&v as *const libc::linger).cast(),
                std::mem::size_of_val(&v),
            )?;
        }
    }
    Ok(())
}

fn get_option(fd: &OpFd, name: &[u8]) -> mlua::Result<mlua::MultiValue> {
    let opt = option(name).ok_or_else(|| einval(2))?;
    let (level, optname, kind) = option_for_family(fd, opt);
    let mut buf = [0u8; std::mem::size_of::<libc::linger>()];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into the live buffer;
    // the fd is kept open by `fd`.
    check(unsafe {
        libc::getsockopt(fd.raw(), level, optname, buf.as_mut_ptr().cast(), &mut len)
    })?;
    let int_at = |i: usize| i32::from_ne_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
    let values = match kind {
        OptKind::Bool => vec![Value::Boolean(int_at(0) != 0)],
        OptKind::Int => vec![Value::Integer(int_at(0).into())],
        OptKind::Linger => vec![
            Value::Boolean(int_at(0) != 0),
            Value::Integer(int_at(4).into()),
        ],
    };
    Ok(mlua::MultiValue::from_vec(values))
}

/// Message flags a caller may pass (`ip.message_flag`,
/// `unix.message_flag`): anything else is `EINVAL`.
const ALLOWED_MESSAGE_FLAGS: i32 =
    libc::MSG_PEEK | libc::MSG_OOB | libc::MSG_DONTROUTE | libc::MSG_EOR | libc::MSG_WAITALL;

fn flags_arg(v: &Value, index: i32) -> mlua::Result<i32> {
    if v.is_nil() {
        return Ok(0);
    }
    let flags = int_value(v, index)?;
    if flags & !ALLOWED_MESSAGE_FLAGS != 0 {
        return Err(einval(index));
    }
    Ok(flags)
}

/// A write buffer argument: a string (copied; a copy that cannot be
/// allocated is `ENOMEM`) or a byte_span.
fn write_buffer(v: &Value, index: i32) -> mlua::Result<OpBuffer> {
    match v {
        Value::String(s) => {
            let bytes = s.as_bytes();
            let mut owned = Vec::new();
            owned
                .try_reserve_exact(bytes.len())
                .map_err(|_| mlua::Error::from(ErrorCode::system(libc::ENOMEM)))?;
            owned.extend_from_slice(&bytes);
            Ok(OpBuffer::Owned(owned.into_boxed_slice()))
        }
        other => byte_span::span_from_value(other)
            .map(OpBuffer::Span)
            .ok_or_else(|| einval(index)),
    }
}

/// The primitives both socket modules use (see the module doc).
pub(crate) fn common(lua: &Lua) -> mlua::Result<Table> {
    let p = lua.create_table()?;
    // socket(domain, type) -> holder
    p.raw_set(
        "socket",
        lua.create_function(unless_closing(|lua, (domain, kind): (i32, i32)| {
            let fd = new_socket(domain, kind)?;
            push(lua, crate::actor::sandboxed::slots::adopt(lua, fd)?)
        }))?,
    )?;
    p.raw_set("AF_INET", libc::AF_INET)?;
    p.raw_set("AF_INET6", libc::AF_INET6)?;
    p.raw_set("AF_UNIX", libc::AF_UNIX)?;
    p.raw_set("SOCK_STREAM", libc::SOCK_STREAM)?;
    p.raw_set("SOCK_DGRAM", libc::SOCK_DGRAM)?;
    p.raw_set("SOCK_SEQPACKET", libc::SOCK_SEQPACKET)?;
    p.raw_set("MSG_PEEK", libc::MSG_PEEK)?;
    p.raw_set("MSG_OOB", libc::MSG_OOB)?;
    p.raw_set("MSG_DONTROUTE", libc::MSG_DONTROUTE)?;
    p.raw_set("MSG_EOR", libc::MSG_EOR)?;
    p.raw_set("MSG_WAITALL", libc::MSG_WAITALL)?;
    p.raw_set("MSG_TRUNC", libc::MSG_TRUNC)?;
    p.raw_set("max_fds", MAX_FDS_PER_MESSAGE)?;
    // family(holder) -> AF_*
    p.raw_set(
        "family",
        lua.create_function(unless_closing(|_, holder: Value| {
            let fd = holder_fd(&holder)?;
            let mut domain: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: the kernel writes one int into the live `domain`.
            check(unsafe {
                libc::getsockopt(
                    fd.raw(),
                    libc::SOL_SOCKET,
                    libc::SO_DOMAIN,
                    (&mut domain as *mut libc::c_int).cast(),
                    &mut len,
                )
            })?;
            Ok(domain)
        }))?,
    )?;
    p.raw_set(
        "bind",
        lua.create_function(unless_closing(|_, (holder, ep): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let addr = endpoint_arg(&ep, 2)?;
            // SAFETY: the address is `addr.len` live bytes; fd kept open.
            check(unsafe {
                libc::bind(
                    fd.raw(),
                    (&addr.storage as *const libc::sockaddr_storage).cast(),
                    addr.len,
                )
            })?;
            Ok(())
        }))?,
    )?;
    p.raw_set(
        "listen",
        lua.create_function(unless_closing(|_, (holder, backlog): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let backlog = if backlog.is_nil() {
                libc::SOMAXCONN
            } else {
                int_value(&backlog, 2)?
            };
            // SAFETY: listen(2) has no memory arguments; fd kept open.
            check(unsafe { libc::listen(fd.raw(), backlog) })?;
            Ok(())
        }))?,
    )?;
    // connect_now(holder, endpoint|nil, nonblocking): a connect that does
    // not wait. Datagram sockets have no peer to wait for (nil endpoint:
    // disconnect). Unix stream and seqpacket sockets connect at once or
    // find the listener's backlog full: with `nonblocking` that is EAGAIN
    // instead of a wait (such a wait, run by the kernel on an io-wq
    // worker, could not be cancelled: an interrupted fiber, or the VM's
    // teardown, would hang on it).
    p.raw_set(
        "connect_now",
        lua.create_function(unless_closing(
            |_, (holder, ep, nonblocking): (Value, Value, Option<bool>)| {
                let fd = holder_fd(&holder)?;
                let addr = if ep.is_nil() {
                    let mut a = SockAddr::empty();
                    a.storage.ss_family = libc::AF_UNSPEC as libc::sa_family_t;
                    a.len = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
                    a
                } else {
                    endpoint_arg(&ep, 2)?
                };
                let nonblocking = nonblocking.unwrap_or(false);
                // SAFETY: fcntl on the fd `fd` keeps open; no memory arguments.
                let flags = check(unsafe { libc::fcntl(fd.raw(), libc::F_GETFL) })?;
                if nonblocking {
                    // SAFETY: as above.
                    check(unsafe {
                        libc::fcntl(fd.raw(), libc::F_SETFL, flags | libc::O_NONBLOCK)
                    })?;
                }
                // SAFETY: the address is `addr.len` live bytes; fd kept open.
                let ret = unsafe {
                    libc::connect(
                        fd.raw(),
                        (&addr.storage as *const libc::sockaddr_storage).cast(),
                        addr.len,
                    )
                };
                let connected = check(ret);
                if nonblocking {
                    // Back to blocking: the ring waits on it from now on.
                    // SAFETY: as above.
                    check(unsafe { libc::fcntl(fd.raw(), libc::F_SETFL, flags) })?;
                }
                connected?;
                Ok(())
            },
        ))?,
    )?;
    p.raw_set(
        "connect",
        lua.create_function(unless_closing(|lua, (holder, ep): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let addr = endpoint_arg(&ep, 2)?;
            submit_op(lua, |st| st.executor.connect(&fd, addr))
        }))?,
    )?;
    // wait(holder, "read"|"write"|"error") -> op id of a one-shot poll
    p.raw_set(
        "wait",
        lua.create_function(unless_closing(|lua, (holder, what): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let events = match &what {
                Value::String(s) => match &*s.as_bytes() {
                    b"read" => libc::POLLIN,
                    b"write" => libc::POLLOUT,
                    b"error" => libc::POLLERR | libc::POLLPRI,
                    _ => return Err(einval(2)),
                },
                _ => return Err(einval(2)),
            };
            submit_op(lua, |st| st.executor.poll(&fd, events as u32))
        }))?,
    )?;
    // bytes_readable(holder) -> bytes waiting to be read (FIONREAD)
    p.raw_set(
        "bytes_readable",
        lua.create_function(unless_closing(|_, holder: Value| {
            let fd = holder_fd(&holder)?;
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int into the live `n`; fd kept open.
            check(unsafe { libc::ioctl(fd.raw(), libc::FIONREAD, &mut n) })?;
            Ok(n)
        }))?,
    )?;
    p.raw_set(
        "accept",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = holder_fd(&holder)?;
            submit_op(lua, |st| st.executor.accept(&fd))
        }))?,
    )?;
    // Multishot accept (lua/ip.lua's acceptor): accept_multi(holder) -> op
    // id; queued(id) -> connections waiting to be taken; in_flight(id) ->
    // still armed; drop_outputs(id) closes those nobody will take.
    p.raw_set(
        "accept_multi",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = holder_fd(&holder)?;
            submit_op(lua, |st| st.executor.accept_multi(&fd))
        }))?,
    )?;
    p.raw_set(
        "queued",
        lua.create_function(unless_closing(|lua, id: f64| {
            let id = OpId::from_f64(id).ok_or_else(|| einval(1))?;
            with_state(lua, |st| st.executor.socket_outputs_queued(id))
        }))?,
    )?;
    p.raw_set(
        "in_flight",
        lua.create_function(unless_closing(|lua, id: f64| {
            let id = OpId::from_f64(id).ok_or_else(|| einval(1))?;
            with_state(lua, |st| st.executor.op_in_flight(id))
        }))?,
    )?;
    p.raw_set(
        "drop_outputs",
        lua.create_function(unless_closing(|lua, id: f64| {
            let id = OpId::from_f64(id).ok_or_else(|| einval(1))?;
            with_state(lua, |st| st.executor.drop_socket_outputs(id))
        }))?,
    )?;
    // recv(holder, span, flags) -> op id; send(inline, holder, buf, flags)
    // -> op id[, result]: a send usually completes during its submission
    // (room in the socket buffer), so with `inline` (lua/io_object.lua
    // IO.run_op_inline) it may come back done. A receive usually waits for
    // the peer: trying it inline would mostly cost a second
    // `io_uring_enter`, so it never is. Both run once per message of a
    // stream: they hold the state.
    let held = HeldState::of(lua)?;
    p.raw_set(
        "recv",
        lua.create_function(unless_closing(
            move |_, (holder, buf, flags): (Value, Value, Value)| {
                let fd = holder_fd(&holder)?;
                let span = byte_span::span_arg(&buf, 2)?;
                let flags = flags_arg(&flags, 3)?;
                held.submit(|st| st.executor.recv(&fd, OpBuffer::Span(span), flags))
            },
        ))?,
    )?;
    let held = HeldState::of(lua)?;
    p.raw_set(
        "send",
        lua.create_function(unless_closing(
            move |_, (inline, holder, buf, flags): (bool, Value, Value, Value)| {
                let fd = holder_fd(&holder)?;
                let buf = write_buffer(&buf, 2)?;
                let flags = flags_arg(&flags, 3)?;
                held.submit_inline(inline, |st| st.executor.send(&fd, buf, flags))
            },
        ))?,
    )?;
    // send_msg(holder, buf, endpoint|nil, fds|nil, flags) -> op id
    p.raw_set(
        "send_msg",
        lua.create_function(unless_closing(
            |lua, (holder, buf, ep, fds, flags): (Value, Value, Value, Value, Value)| {
                let fd = holder_fd(&holder)?;
                let buf = write_buffer(&buf, 2)?;
                let to = if ep.is_nil() {
                    None
                } else {
                    Some(endpoint_arg(&ep, 3)?)
                };
                let passed = fds_arg(&fds, 3)?;
                let flags = flags_arg(&flags, 4)?;
                submit_op(lua, |st| st.executor.send_msg(&fd, buf, to, passed, flags))
            },
        ))?,
    )?;
    // recv_msg(holder, span, maxfds, flags) -> op id
    p.raw_set(
        "recv_msg",
        lua.create_function(unless_closing(
            |lua, (holder, buf, maxfds, flags): (Value, Value, Value, Value)| {
                let fd = holder_fd(&holder)?;
                let span = byte_span::span_arg(&buf, 2)?;
                let maxfds = if maxfds.is_nil() {
                    0
                } else {
                    int_value(&maxfds, 3)?
                };
                if !(0..=MAX_FDS_PER_MESSAGE as i32).contains(&maxfds) {
                    return Err(einval(3));
                }
                let flags = flags_arg(&flags, 4)?;
                submit_op(lua, |st| {
                    st.executor
                        .recv_msg(&fd, OpBuffer::Span(span), maxfds as usize, flags)
                })
            },
        ))?,
    )?;
    // take(id): the extra data of a completed accept or recv_msg (once):
    //   accept -> "accepted", holder, peer endpoint
    //   recv_msg -> "received", sender endpoint|nil, fds|nil, msg_flags,
    //               fds_truncated
    p.raw_set(
        "take",
        lua.create_function(unless_closing(|lua, id: f64| {
            let id = OpId::from_f64(id).ok_or_else(|| einval(1))?;
            let Some(output) = with_state(lua, |st| st.executor.take_socket_output(id))? else {
                return Ok(mlua::MultiValue::new());
            };
            let mut out = Vec::new();
            match output {
                SocketOutput::Accepted { fd, peer } => {
                    out.push(Value::String(lua.create_string("accepted")?));
                    out.push(Value::UserData(push(
                        lua,
                        crate::actor::sandboxed::slots::adopt(lua, fd)?,
                    )?));
                    out.push(push_endpoint(lua, &peer)?);
                }
                SocketOutput::Received {
                    from,
                    fds,
                    flags,
                    fds_truncated,
                    ..
                } => {
                    out.push(Value::String(lua.create_string("received")?));
                    out.push(
                        if from.len as usize > std::mem::size_of::<libc::sa_family_t>() {
                            push_endpoint(lua, &from)?
                        } else {
                            Value::Nil
                        },
                    );
                    let t = lua.create_table_with_capacity(fds.len(), 0)?;
                    for (i, fd) in fds.into_iter().enumerate() {
                        t.raw_set(
                            i + 1,
                            push(lua, crate::actor::sandboxed::slots::adopt(lua, fd)?)?,
                        )?;
                    }
                    out.push(Value::Table(t));
                    out.push(Value::Integer(flags.into()));
                    out.push(Value::Boolean(fds_truncated));
                }
            }
            Ok(mlua::MultiValue::from_vec(out))
        }))?,
    )?;
    p.raw_set(
        "shutdown",
        lua.create_function(unless_closing(|_, (holder, what): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let how = match &what {
                Value::String(s) => match &*s.as_bytes() {
                    b"receive" => libc::SHUT_RD,
                    b"send" => libc::SHUT_WR,
                    b"both" => libc::SHUT_RDWR,
                    _ => return Err(einval(2)),
                },
                _ => return Err(einval(2)),
            };
            // SAFETY: shutdown(2) has no memory arguments; fd kept open.
            check(unsafe { libc::shutdown(fd.raw(), how) })?;
            Ok(())
        }))?,
    )?;
    // local_endpoint(holder) / remote_endpoint(holder) -> packed endpoint
    p.raw_set(
        "local_endpoint",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = holder_fd(&holder)?;
            push_endpoint(lua, &endpoint_of(&fd, false)?)
        }))?,
    )?;
    p.raw_set(
        "remote_endpoint",
        lua.create_function(unless_closing(|lua, holder: Value| {
            let fd = holder_fd(&holder)?;
            push_endpoint(lua, &endpoint_of(&fd, true)?)
        }))?,
    )?;
    p.raw_set(
        "set_option",
        lua.create_function(unless_closing(
            |_, (holder, name, a, b): (Value, Value, Value, Value)| {
                let fd = holder_fd(&holder)?;
                let Value::String(name) = name else {
                    return Err(einval(2));
                };
                set_option(&fd, &name.as_bytes(), &a, &b)
            },
        ))?,
    )?;
    p.raw_set(
        "get_option",
        lua.create_function(unless_closing(|_, (holder, name): (Value, Value)| {
            let fd = holder_fd(&holder)?;
            let Value::String(name) = name else {
                return Err(einval(2));
            };
            get_option(&fd, &name.as_bytes())
        }))?,
    )?;
    // pair(type) -> holder, holder (AF_UNIX socketpair)
    p.raw_set(
        "pair",
        lua.create_function(unless_closing(|lua, kind: i32| {
            let mut fds = [-1; 2];
            // SAFETY: socketpair writes two ints into the live array.
            check(unsafe {
                libc::socketpair(
                    libc::AF_UNIX,
                    kind | libc::SOCK_CLOEXEC,
                    0,
                    fds.as_mut_ptr(),
                )
            })?;
            // SAFETY: the kernel just created both fds; nothing else owns them.
            let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
            let adopt = crate::actor::sandboxed::slots::adopt;
            Ok((push(lua, adopt(lua, a)?)?, push(lua, adopt(lua, b)?)?))
        }))?,
    )?;
    Ok(p)
}

/// A Lua sequence of `file_descriptor`s to pass: each is held open (an
/// `OpFd` clone) until the sendmsg completes.
fn fds_arg(v: &Value, index: i32) -> mlua::Result<Vec<OpFd>> {
    let t = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(t) => t,
        _ => return Err(einval(index)),
    };
    let n = t.raw_len();
    if n > MAX_FDS_PER_MESSAGE {
        return Err(einval(index));
    }
    let mut fds = Vec::with_capacity(n);
    for i in 1..=n {
        let v: Value = t.raw_get(i)?;
        // An emptied object, or a borrowed standard stream (never handed
        // on, as in messages): EBUSY.
        match file_descriptor::arg(&v, index)?.op_fd() {
            Some(fd @ OpFd::Owned(_)) => fds.push(fd),
            _ => return Err(ErrorCode::generic(libc::EBUSY).arg(index).into()),
        }
    }
    Ok(fds)
}
