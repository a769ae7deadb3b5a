//! The `ip` builtin module (spec/io.md "ip"): addresses, TCP acceptors and
//! sockets, UDP sockets. The objects and their waits are Lua (lua/ip.lua);
//! this file adds the address primitives to the shared socket primitives
//! (`socket::common`).
//!
//! Invariants: those of `socket` and `io_object`. An `ip.address` is, on
//! the Lua side, its raw bytes (4 for IPv4, 16 for IPv6) plus a scope id;
//! only `parse` here (or the kernel, through an endpoint) makes them, and
//! `ip_endpoint` checks their length again before packing an endpoint.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mlua::{Lua, Table, Value};

use crate::actor::vm::{submit_op, unless_closing};
use crate::executor::socket::SockAddr;
use crate::executor::OpFd;
use crate::modules::error::{einval, ErrorCode};
use crate::modules::file_descriptor;
use crate::modules::io_object::{self, holder_fd};
use crate::modules::socket::{self, endpoint_arg, push_endpoint};

/// Registry keys of lua/ip.lua's address reader and constructor
/// (`P.set_codec`, run when the module is first loaded).
const CODEC_PARTS: &str = "luring.ip.parts";
const CODEC_NEW: &str = "luring.ip.new";
/// Registry key of the function that loads a builtin module once
/// (lua/core/modules.lua sets it).
pub(crate) const BUILTIN_LOADER: &str = "luring.builtin_loader";

/// The `ip.address` that table `t` is, if it is one. No `ip.address` can
/// exist before lua/ip.lua ran, so an unset reader means "not one". Reads
/// the module's own weak table: none of `t`'s metamethods runs.
pub(crate) fn address_of(lua: &Lua, t: &Table) -> mlua::Result<Option<crate::ipc::IpAddress>> {
    let Value::Function(parts) = lua.named_registry_value::<Value>(CODEC_PARTS)? else {
        return Ok(None);
    };
    let (bytes, scope): (Option<mlua::LuaString>, Option<u32>) = parts.call(t.clone())?;
    let (Some(bytes), Some(scope)) = (bytes, scope) else {
        return Ok(None);
    };
    Ok(match bytes_to_ip(&bytes.as_bytes()) {
        Some(IpAddr::V4(a)) => Some(crate::ipc::IpAddress::V4(a)),
        Some(IpAddr::V6(address)) => Some(crate::ipc::IpAddress::V6 {
            address,
            scope_id: scope,
        }),
        None => None,
    })
}

/// A new `ip.address` object in `lua` (the `ip` module is loaded if this
/// VM has not loaded it yet).
pub(crate) fn address_to_lua(lua: &Lua, address: crate::ipc::IpAddress) -> mlua::Result<Value> {
    let mut new = lua.named_registry_value::<Value>(CODEC_NEW)?;
    if new.is_nil() {
        let loader: mlua::Function = lua.named_registry_value(BUILTIN_LOADER)?;
        loader.call::<()>("ip")?;
        new = lua.named_registry_value::<Value>(CODEC_NEW)?;
    }
    let Value::Function(new) = new else {
        return Err(mlua::Error::runtime(
            "luring: the ip module gave no address constructor",
        ));
    };
    match address {
        crate::ipc::IpAddress::V4(a) => new.call((lua.create_string(a.octets())?, 0)),
        crate::ipc::IpAddress::V6 { address, scope_id } => {
            new.call((lua.create_string(address.octets())?, scope_id))
        }
    }
}

/// The `ip` builtin module (registered by `super::register`).
pub(crate) const MODULE: io_object::LuaModule = io_object::LuaModule {
    name: "ip",
    chunk: &crate::fiber::lib_chunks::IP,
    primitives,
};

/// `text` as an address: dotted IPv4 or IPv6 with an optional `%scope`
/// (a number or an interface name).
fn parse(text: &[u8]) -> Option<(IpAddr, u32)> {
    let text = std::str::from_utf8(text).ok()?;
    let (addr, scope) = match text.split_once('%') {
        Some((a, s)) => (a, Some(s)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let scope = match (ip, scope) {
        (_, None) => 0,
        (IpAddr::V4(_), Some(_)) => return None,
        (IpAddr::V6(_), Some(s)) => match s.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let name = std::ffi::CString::new(s).ok()?;
                // SAFETY: `name` is a live NUL-terminated string.
                let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
                if index == 0 {
                    return None;
                }
                index
            }
        },
    };
    Some((ip, scope))
}

fn bytes_to_ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))),
        16 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(bytes).ok()?,
        ))),
        _ => None,
    }
}

fn ip_bytes(lua: &Lua, ip: IpAddr) -> mlua::Result<Value> {
    Ok(Value::String(match ip {
        IpAddr::V4(a) => lua.create_string(a.octets())?,
        IpAddr::V6(a) => lua.create_string(a.octets())?,
    }))
}

fn port_arg(v: &Value, index: i32) -> mlua::Result<u16> {
    match v {
        Value::Integer(i) => u16::try_from(*i).map_err(|_| einval(index)),
        Value::Number(n) if n.fract() == 0.0 && (0.0..=65535.0).contains(n) => Ok(*n as u16),
        _ => Err(einval(index)),
    }
}

fn sockaddr_of(ip: IpAddr, port: u16, scope: u32) -> SockAddr {
    let mut addr = SockAddr::empty();
    match ip {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: port.to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe {
                std::ptr::write(
                    (&mut addr.storage as *mut libc::sockaddr_storage).cast(),
                    sin,
                )
            };
            addr.len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: port.to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: scope,
            };
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in6.
            unsafe {
                std::ptr::write(
                    (&mut addr.storage as *mut libc::sockaddr_storage).cast(),
                    sin6,
                )
            };
            addr.len = std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        }
    }
    addr
}

/// (ip, port, scope) of an AF_INET/AF_INET6 endpoint.
fn decode(addr: &SockAddr) -> Option<(IpAddr, u16, u32)> {
    let base = (&addr.storage as *const libc::sockaddr_storage).cast::<u8>();
    match addr.family() {
        libc::AF_INET if addr.len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the storage holds a whole sockaddr_in (length checked).
            let sin = unsafe { std::ptr::read_unaligned(base.cast::<libc::sockaddr_in>()) };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some((IpAddr::V4(ip), u16::from_be(sin.sin_port), 0))
        }
        libc::AF_INET6 if addr.len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the storage holds a whole sockaddr_in6 (length checked).
            let sin6 = unsafe { std::ptr::read_unaligned(base.cast::<libc::sockaddr_in6>()) };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some((
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_scope_id,
            ))
        }
        _ => None,
    }
}

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = socket::common(lua)?;
    add_resolver(lua, &p)?;
    add_send_file(lua, &p)?;
    add_multicast(lua, &p)?;
    // set_codec(parts, new): lua/ip.lua hands over how to read an
    // ip.address (parts(v) -> bytes, scope | nil) and make one
    // (new(bytes, scope)), for messages to and from sandboxed actors.
    p.raw_set(
        "set_codec",
        lua.create_function(|lua, (parts, new): (mlua::Function, mlua::Function)| {
            lua.set_named_registry_value(CODEC_PARTS, parts)?;
            lua.set_named_registry_value(CODEC_NEW, new)
        })?,
    )?;
    // parse(text) -> bytes, scope | nil
    p.raw_set(
        "parse",
        lua.create_function(|lua, text: Value| {
            let Value::String(text) = text else {
                return Err(einval(1));
            };
            match parse(&text.as_bytes()) {
                Some((ip, scope)) => Ok((ip_bytes(lua, ip)?, Value::Integer(scope.into()))),
                None => Ok((Value::Nil, Value::Nil)),
            }
        })?,
    )?;
    // format(bytes, scope) -> text
    p.raw_set(
        "format",
        lua.create_function(|_, (bytes, scope): (mlua::LuaString, u32)| {
            let ip = bytes_to_ip(&bytes.as_bytes()).ok_or_else(|| einval(1))?;
            Ok(match ip {
                IpAddr::V6(a) if scope != 0 => format!("{a}%{scope}"),
                ip => ip.to_string(),
            })
        })?,
    )?;
    // ip_endpoint(bytes, port, scope) -> packed endpoint
    p.raw_set(
        "ip_endpoint",
        lua.create_function(|lua, (bytes, port, scope): (Value, Value, Option<u32>)| {
            let Value::String(bytes) = bytes else {
                return Err(einval(1));
            };
            let ip = bytes_to_ip(&bytes.as_bytes()).ok_or_else(|| einval(1))?;
            let port = port_arg(&port, 2)?;
            push_endpoint(lua, &sockaddr_of(ip, port, scope.unwrap_or(0)))
        })?,
    )?;
    // ip_decode(packed endpoint) -> bytes, port, scope
    p.raw_set(
        "ip_decode",
        lua.create_function(|lua, ep: Value| {
            let addr = endpoint_arg(&ep, 1)?;
            let (ip, port, scope) = decode(&addr).ok_or_else(|| einval(1))?;
            Ok((ip_bytes(lua, ip)?, port, scope))
        })?,
    )?;
    p.raw_set(
        "host_name",
        lua.create_function(unless_closing(|_, ()| {
            let mut buf = [0u8; 256];
            // SAFETY: gethostname writes at most buf.len() bytes into it.
            if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } < 0 {
                return Err(ErrorCode::from_io(&std::io::Error::last_os_error()).into());
            }
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            Ok(bstr(&buf[..end]))
        }))?,
    )?;
    Ok(p)
}

fn bstr(b: &[u8]) -> mlua::BString {
    mlua::BString::from(b.to_vec())
}

/// How a name-resolution failure reaches Lua: asio's category and code
/// (`asio.netdb`, `asio.addrinfo`, or `system` with an errno).
fn addrinfo_error(code: i32) -> (&'static str, i32) {
    // glibc's EAI_ADDRFAMILY (the libc crate lacks it).
    const EAI_ADDRFAMILY: i32 = -9;
    match code {
        libc::EAI_AGAIN => ("asio.netdb", 2),
        libc::EAI_FAIL => ("asio.netdb", 3),
        libc::EAI_NONAME | libc::EAI_NODATA | EAI_ADDRFAMILY => ("asio.netdb", 1),
        libc::EAI_SERVICE => ("asio.addrinfo", 1),
        libc::EAI_SOCKTYPE => ("asio.addrinfo", 2),
        libc::EAI_BADFLAGS => ("system", libc::EINVAL),
        libc::EAI_FAMILY => ("system", libc::EAFNOSUPPORT),
        libc::EAI_MEMORY => ("system", libc::ENOMEM),
        _ => (
            "system",
            std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        ),
    }
}

fn error_message(category: &str, code: i32) -> crate::actor::message::Message {
    use crate::actor::message::Message;
    let mut m = std::collections::BTreeMap::new();
    m.insert(
        b"category".to_vec(),
        Message::String(category.as_bytes().to_vec()),
    );
    m.insert(b"code".to_vec(), Message::Number(code.into()));
    Message::Object(m)
}

/// `getaddrinfo`, run on the blocking pool: an array of
/// `{endpoint = packed, canonical_name = name}`, or `{category, code}`.
fn get_address_info(
    host: Option<std::ffi::CString>,
    service: Option<std::ffi::CString>,
    family: i32,
    socktype: i32,
    flags: i32,
) -> crate::actor::message::Message {
    use crate::actor::message::Message;
    // SAFETY: addrinfo is plain old data; all-zero is an empty hint.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = family;
    hints.ai_socktype = socktype;
    hints.ai_flags = flags;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: host and service are live NUL-terminated strings or null;
    // hints is a live addrinfo; `list` receives a list we free below.
    let code = unsafe { libc::getaddrinfo(ptr(&host), ptr(&service), &hints, &mut list) };
    if code != 0 {
        let (category, code) = addrinfo_error(code);
        return error_message(category, code);
    }
    let mut out = Vec::new();
    let mut canonical = Vec::new();
    let mut node = list;
    while !node.is_null() {
        // SAFETY: `node` is an element of the list getaddrinfo returned,
        // not yet freed.
        let ai = unsafe { &*node };
        if !ai.ai_canonname.is_null() && canonical.is_empty() {
            // SAFETY: ai_canonname is a NUL-terminated string of the list.
            canonical = unsafe { std::ffi::CStr::from_ptr(ai.ai_canonname) }
                .to_bytes()
                .to_vec();
        }
        let len = (ai.ai_addrlen as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
        if !ai.ai_addr.is_null()
            && (ai.ai_family == libc::AF_INET || ai.ai_family == libc::AF_INET6)
        {
            // SAFETY: ai_addr points at ai_addrlen bytes of the list.
            let bytes =
                unsafe { std::slice::from_raw_parts(ai.ai_addr.cast::<u8>(), len) }.to_vec();
            let mut m = std::collections::BTreeMap::new();
            m.insert(b"endpoint".to_vec(), Message::String(bytes));
            out.push(m);
        }
        node = ai.ai_next;
    }
    // SAFETY: `list` came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(list) };
    Message::Array(
        out.into_iter()
            .map(|mut m| {
                m.insert(
                    b"canonical_name".to_vec(),
                    Message::String(canonical.clone()),
                );
                Message::Object(m)
            })
            .collect(),
    )
}

/// `getnameinfo`, run on the blocking pool: `{host, service}` or
/// `{category, code}`.
fn get_name_info(addr: SockAddr, flags: i32) -> crate::actor::message::Message {
    use crate::actor::message::Message;
    let mut host = [0 as libc::c_char; 1025];
    let mut service = [0 as libc::c_char; 32];
    // SAFETY: the address is `addr.len` live bytes; libc writes
    // NUL-terminated strings of at most the given lengths into the live
    // buffers.
    let code = unsafe {
        libc::getnameinfo(
            (&addr.storage as *const libc::sockaddr_storage).cast(),
            addr.len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            service.as_mut_ptr(),
            service.len() as libc::socklen_t,
            flags,
        )
    };
    if code != 0 {
        let (category, code) = addrinfo_error(code);
        return error_message(category, code);
    }
    // SAFETY: getnameinfo succeeded: both buffers hold NUL-terminated
    // strings.
    let text = |b: &[libc::c_char]| {
        unsafe { std::ffi::CStr::from_ptr(b.as_ptr()) }
            .to_bytes()
            .to_vec()
    };
    let mut m = std::collections::BTreeMap::new();
    m.insert(b"host".to_vec(), Message::String(text(&host)));
    m.insert(b"service".to_vec(), Message::String(text(&service)));
    Message::Object(m)
}

fn cstring_arg(v: &Value, index: i32) -> mlua::Result<Option<std::ffi::CString>> {
    match v {
        Value::Nil => Ok(None),
        Value::String(s) => std::ffi::CString::new(s.as_bytes().to_vec())
            .map(Some)
            .map_err(|_| einval(index)),
        Value::Integer(_) | Value::Number(_) => {
            let port = port_arg(v, index)?;
            Ok(Some(
                std::ffi::CString::new(port.to_string()).expect("digits"),
            ))
        }
        _ => Err(einval(index)),
    }
}

/// `resolve` and `name_info` primitives: both run on the blocking pool
/// (never on the actor's thread); the op's result is the job's table.
pub(crate) fn add_resolver(lua: &Lua, p: &Table) -> mlua::Result<()> {
    use crate::actor::vm::submit_op;
    // resolve(host|nil, service|nil, family, socktype, flags) -> op id
    p.raw_set(
        "resolve",
        lua.create_function(unless_closing(
            |lua, (host, service, family, socktype, flags): (Value, Value, i32, i32, i32)| {
                let host = cstring_arg(&host, 1)?;
                let service = cstring_arg(&service, 2)?;
                if host.is_none() && service.is_none() {
                    return Err(einval(1));
                }
                submit_op(lua, move |st| {
                    st.executor.run_blocking(move || {
                        Ok(Box::new(get_address_info(
                            host, service, family, socktype, flags,
                        )))
                    })
                })
            },
        ))?,
    )?;
    // name_info(packed endpoint, flags) -> op id
    p.raw_set(
        "name_info",
        lua.create_function(unless_closing(|lua, (ep, flags): (Value, i32)| {
            let addr = endpoint_arg(&ep, 1)?;
            submit_op(lua, move |st| {
                st.executor
                    .run_blocking(move || Ok(Box::new(get_name_info(addr, flags))))
            })
        }))?,
    )?;
    for (name, value) in [
        ("AI_ADDRCONFIG", libc::AI_ADDRCONFIG),
        ("AI_ALL", libc::AI_ALL),
        ("AI_CANONNAME", libc::AI_CANONNAME),
        ("AI_NUMERICHOST", libc::AI_NUMERICHOST),
        ("AI_NUMERICSERV", libc::AI_NUMERICSERV),
        ("AI_PASSIVE", libc::AI_PASSIVE),
        ("AI_V4MAPPED", libc::AI_V4MAPPED),
        ("AF_UNSPEC", libc::AF_UNSPEC),
        ("NI_DGRAM", libc::NI_DGRAM),
    ] {
        p.raw_set(name, value)?;
    }
    Ok(())
}

/// io-finish: the primitives of `send_file` (lua/ip.lua): a private pipe
/// per call and ring splices through it.
fn add_send_file(lua: &Lua, p: &Table) -> mlua::Result<()> {
    // splice_pipe() -> read holder, write holder (close-on-exec, blocking:
    // the ring waits on them).
    p.raw_set(
        "splice_pipe",
        lua.create_function(unless_closing(|lua, ()| {
            let (r, w) = std::io::pipe().map_err(|e| ErrorCode::from_io(&e))?;
            Ok((
                file_descriptor::push(lua, OpFd::owned(r.into()))?,
                file_descriptor::push(lua, OpFd::owned(w.into()))?,
            ))
        }))?,
    )?;
    // splice(in holder, in offset | nil, out holder, len[, keep holder])
    // -> op id; `keep` (the pipe's other end) stays open until the
    // completion (src/executor/splice.rs says why).
    p.raw_set(
        "splice",
        lua.create_function(unless_closing(
            |lua, (input, offset, output, len, keep): (Value, Option<f64>, Value, f64, Value)| {
                let input = holder_fd(&input)?;
                let output = holder_fd(&output)?;
                let keep = if keep.is_nil() {
                    None
                } else {
                    Some(holder_fd(&keep)?)
                };
                let offset = match offset {
                    None => None,
                    Some(o) if o >= 0.0 && o.fract() == 0.0 && o < 2f64.powi(63) => Some(o as u64),
                    Some(_) => return Err(einval(2)),
                };
                if !(len >= 1.0 && len.fract() == 0.0 && len <= f64::from(u32::MAX)) {
                    return Err(einval(4));
                }
                submit_op(lua, |st| {
                    st.executor
                        .splice(&input, offset, &output, len as u32, keep.as_ref())
                })
            },
        ))?,
    )?;
    Ok(())
}

/// io-finish: multicast group membership and the outgoing interface.
/// `multicast(holder, what, group bytes | nil, interface)`, where `what` is
/// `"join"`, `"leave"` (`group` 4 or 16 bytes, already checked to be
/// multicast by lua/ip.lua; `interface` for IPv4 the 4 bytes of a local
/// address or nil for any, for IPv6 an interface index) or `"interface"`
/// (no group; `interface` 4 bytes for IPv4 or an index for IPv6, told apart
/// by the socket's family).
fn add_multicast(lua: &Lua, p: &Table) -> mlua::Result<()> {
    p.raw_set(
        "multicast",
        lua.create_function(unless_closing(
            |_, (holder, what, group, interface): (Value, mlua::LuaString, Value, Value)| {
                let fd = holder_fd(&holder)?;
                let what = what.as_bytes();
                let group = match &group {
                    Value::Nil => None,
                    Value::String(g) => Some(g.as_bytes().to_vec()),
                    _ => return Err(einval(3)),
                };
                let v4_interface = |v: &Value| -> mlua::Result<libc::in_addr> {
                    Ok(match v {
                        Value::Nil => libc::in_addr { s_addr: 0 },
                        Value::String(b) => {
                            let b = <[u8; 4]>::try_from(&*b.as_bytes()).map_err(|_| einval(4))?;
                            libc::in_addr {
                                s_addr: u32::from_ne_bytes(b),
                            }
                        }
                        _ => return Err(einval(4)),
                    })
                };
                let index = |v: &Value| -> mlua::Result<u32> {
                    match v {
                        Value::Nil => Ok(0),
                        Value::Integer(i) => u32::try_from(*i).map_err(|_| einval(4)),
                        Value::Number(n)
                            if n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(n) =>
                        {
                            Ok(*n as u32)
                        }
                        _ => Err(einval(4)),
                    }
                };
                let set = |level: i32, name: i32, ptr: *const libc::c_void, len: usize| {
                    // SAFETY: `ptr` points at a live value of `len` bytes; the
                    // fd is kept open by `fd`.
                    let ret = unsafe {
                        libc::setsockopt(fd.raw(), level, name, ptr, len as libc::socklen_t)
                    };
                    if ret < 0 {
                        Err(mlua::Error::from(ErrorCode::from_io(
                            &std::io::Error::last_os_error(),
                        )))
                    } else {
                        Ok(())
                    }
                };
                match (&*what, group.as_deref()) {
                    (b"join" | b"leave", Some(g)) if g.len() == 4 => {
                        let mreq = libc::ip_mreq {
                            imr_multiaddr: libc::in_addr {
                                s_addr: u32::from_ne_bytes(g.try_into().expect("4 bytes")),
                            },
                            imr_interface: v4_interface(&interface)?,
                        };
                        let name = if &*what == b"join" {
                            libc::IP_ADD_MEMBERSHIP
                        } else {
                            libc::IP_DROP_MEMBERSHIP
                        };
                        set(
                            libc::IPPROTO_IP,
                            name,
                            (&mreq as *const libc::ip_mreq).cast(),
                            std::mem::size_of_val(&mreq),
                        )
                    }
                    (b"join" | b"leave", Some(g)) if g.len() == 16 => {
                        let mreq = libc::ipv6_mreq {
                            ipv6mr_multiaddr: libc::in6_addr {
                                s6_addr: g.try_into().expect("16 bytes"),
                            },
                            ipv6mr_interface: index(&interface)?,
                        };
                        let name = if &*what == b"join" {
                            libc::IPV6_ADD_MEMBERSHIP
                        } else {
                            libc::IPV6_DROP_MEMBERSHIP
                        };
                        set(
                            libc::IPPROTO_IPV6,
                            name,
                            (&mreq as *const libc::ipv6_mreq).cast(),
                            std::mem::size_of_val(&mreq),
                        )
                    }
                    (b"interface", None) => {
                        if matches!(interface, Value::String(_)) {
                            let addr = v4_interface(&interface)?;
                            set(
                                libc::IPPROTO_IP,
                                libc::IP_MULTICAST_IF,
                                (&addr as *const libc::in_addr).cast(),
                                std::mem::size_of_val(&addr),
                            )
                        } else {
                            let index = index(&interface)? as libc::c_int;
                            set(
                                libc::IPPROTO_IPV6,
                                libc::IPV6_MULTICAST_IF,
                                (&index as *const libc::c_int).cast(),
                                std::mem::size_of_val(&index),
                            )
                        }
                    }
                    _ => Err(einval(2)),
                }
            },
        ))?,
    )?;
    Ok(())
}
