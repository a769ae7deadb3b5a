//! The `stream` builtin module (spec/io.md "stream"): composed reads and
//! writes and the line scanner, written in Lua (lua/stream.lua) over any
//! object with `read_some`/`write_some`. It needs no primitives of its own.

use mlua::{Lua, Table};

use crate::modules::io_object;

const STREAM_LUA: &str = include_str!("../../lua/stream.lua");

pub(crate) fn register(lua: &Lua, k: &Table) -> mlua::Result<()> {
    io_object::register_lua_module(lua, k, "stream", STREAM_LUA, Lua::create_table)
}
