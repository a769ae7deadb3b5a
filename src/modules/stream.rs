//! The `stream` builtin module (spec/io.md "stream"): composed reads and
//! writes and the line scanner, written in Lua (lua/stream.lua) over any
//! object with `read_some`/`write_some`. It needs no primitives of its own.

use mlua::Lua;

use crate::modules::io_object;

/// The `stream` builtin module (registered by `super::register`).
pub(crate) const MODULE: io_object::LuaModule = io_object::LuaModule {
    name: "stream",
    chunk: &crate::fiber::lib_chunks::STREAM,
    primitives: Lua::create_table,
};
