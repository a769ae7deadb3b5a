//! Lua-facing modules implemented in Rust. Modules written in Lua live in
//! `lua/core/` and are listed in `crate::fiber::CORE_CHUNKS` (precompiled
//! by build.rs).
//!
//! Each module registers itself from its own file; `register` is the one
//! hook the VM's boot calls (before the core Lua chunks run, so globals set
//! here are in the snapshot lua/core/modules.lua takes of the safe names).

use std::ffi::CStr;

use mlua::{AnyUserData, Lua, Table};

pub mod byte_span;
pub mod error;
pub(crate) mod fast_io;
pub mod file_descriptor;
pub mod format;
pub mod io_object;
pub mod json;
pub mod pipe;
// io-fs
pub mod file;
pub mod filesystem;
pub mod stdio;
pub mod stream;
// system: process calls, signals, spawn (io-proc)
pub mod subprocess;
pub mod system;
// io-net: sockets
pub mod ip;
pub(crate) mod socket;
pub mod unix;

/// Registers the Rust modules that are not part of the core `rt` table:
/// the `format` global, the `file_descriptor` type and the builtin modules
/// `json` and `pipe` (in `k.builtin_modules`).
pub(crate) fn register(lua: &Lua, k: &Table) -> mlua::Result<()> {
    format::register(lua)?;
    json::register(lua, k)?;
    io_object::register_lua_modules(lua, k, LUA_MODULES)?;
    system::register(lua, k)?;
    Ok(())
}

/// The builtin modules written in Lua on Rust primitives.
const LUA_MODULES: &[io_object::LuaModule] = &[
    pipe::MODULE,
    // io-fs
    file::MODULE,
    filesystem::MODULE,
    stream::MODULE,
    // io-net: sockets
    ip::MODULE,
    unix::MODULE,
];

/// Makes `getmetatable(v)` answer `name` for every userdata of `probe`'s
/// type (mlua locks the shared metatable with `false`); the metatable stays
/// locked either way, so user code can neither read nor replace it.
pub(crate) fn name_userdata_metatable(
    lua: &Lua,
    probe: AnyUserData,
    name: &'static CStr,
) -> mlua::Result<()> {
    // SAFETY: `exec_raw` pushes `probe` (stack: [.., probe]) and runs the
    // closure in protected mode with at least 3 free slots. We push at most
    // 3 values (metatable, key, value), `lua_rawset` pops key and value, and
    // we pop the metatable and `probe`, leaving the stack as we found it, so
    // the call returns no values. `lua_pushstring` copies the NUL-terminated
    // strings.
    unsafe {
        lua.exec_raw::<()>(probe, |state| {
            if mlua::ffi::lua_getmetatable(state, -1) != 0 {
                mlua::ffi::lua_pushstring(state, c"__metatable".as_ptr());
                mlua::ffi::lua_pushstring(state, name.as_ptr());
                mlua::ffi::lua_rawset(state, -3);
                mlua::ffi::lua_pop(state, 1);
            }
            mlua::ffi::lua_pop(state, 1);
        })
    }
}
