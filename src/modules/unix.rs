//! The `unix` builtin module (spec/io.md "unix"): stream and seqpacket
//! acceptors and sockets, datagram sockets, `pair()`, and fd passing with
//! `SCM_RIGHTS` through ring sendmsg/recvmsg. The objects and their waits
//! are Lua (lua/unix.lua); this file adds the unix address primitives to
//! the shared socket primitives (`socket::common`).
//!
//! Invariants: those of `socket` and `io_object`. A path becomes a
//! `sockaddr_un` only here: a pathname must fit `sun_path` with its NUL and
//! contain no NUL (`EINVAL`, `ENAMETOOLONG`); a name that starts with a NUL
//! byte is an abstract name and is used byte for byte.

use mlua::{Lua, Table, Value};

use crate::executor::socket::SockAddr;
use crate::modules::error::{einval, ErrorCode};
use crate::modules::io_object;
use crate::modules::socket::{self, endpoint_arg, push_endpoint};

/// The `unix` builtin module (registered by `super::register`).
pub(crate) const MODULE: io_object::LuaModule = io_object::LuaModule {
    name: "unix",
    chunk: &crate::fiber::lib_chunks::UNIX,
    primitives,
};

/// Offset of `sun_path` in `sockaddr_un`.
const PATH_OFFSET: usize = std::mem::size_of::<libc::sa_family_t>();

fn sockaddr_of(path: &[u8], index: i32) -> mlua::Result<SockAddr> {
    let abstract_name = path.first() == Some(&0);
    if path.is_empty() || (!abstract_name && path.contains(&0)) {
        return Err(einval(index));
    }
    let mut sun = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; 108],
    };
    // A pathname needs room for its terminating NUL.
    let room = if abstract_name {
        sun.sun_path.len()
    } else {
        sun.sun_path.len() - 1
    };
    if path.len() > room {
        return Err(ErrorCode::system(libc::ENAMETOOLONG).into());
    }
    for (dst, src) in sun.sun_path.iter_mut().zip(path) {
        *dst = *src as libc::c_char;
    }
    let mut addr = SockAddr::empty();
    // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_un.
    unsafe {
        std::ptr::write(
            (&mut addr.storage as *mut libc::sockaddr_storage).cast(),
            sun,
        )
    };
    // Pathnames count their NUL; abstract names exactly their bytes.
    addr.len = (PATH_OFFSET + path.len() + usize::from(!abstract_name)) as libc::socklen_t;
    Ok(addr)
}

/// The path of a unix endpoint ("" when unnamed); a pathname loses its
/// trailing NUL, an abstract name keeps its leading one.
fn path_of(addr: &SockAddr) -> Option<Vec<u8>> {
    if addr.family() != libc::AF_UNIX {
        return None;
    }
    let len = (addr.len as usize).clamp(PATH_OFFSET, std::mem::size_of::<libc::sockaddr_un>());
    let base = (&addr.storage as *const libc::sockaddr_storage).cast::<u8>();
    // SAFETY: `len` is within the storage (clamped to a sockaddr_un).
    let bytes = unsafe { std::slice::from_raw_parts(base.add(PATH_OFFSET), len - PATH_OFFSET) };
    if bytes.first() == Some(&0) {
        return Some(bytes.to_vec());
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    Some(bytes[..end].to_vec())
}

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = socket::common(lua)?;
    // unix_endpoint(path, arg index for errors) -> packed endpoint
    p.raw_set(
        "unix_endpoint",
        lua.create_function(|lua, (path, index): (Value, Option<i32>)| {
            let index = index.unwrap_or(1);
            let Value::String(path) = path else {
                return Err(einval(index));
            };
            push_endpoint(lua, &sockaddr_of(&path.as_bytes(), index)?)
        })?,
    )?;
    // unix_decode(packed endpoint) -> path
    p.raw_set(
        "unix_decode",
        lua.create_function(|lua, ep: Value| {
            let addr = endpoint_arg(&ep, 1)?;
            let path = path_of(&addr).ok_or_else(|| einval(1))?;
            lua.create_string(path)
        })?,
    )?;
    Ok(p)
}
