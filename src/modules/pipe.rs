//! The `pipe` builtin module (spec/io.md "pipe"): `pipe.pair()`,
//! `pipe.read_stream` and `pipe.write_stream`. The objects and their waits
//! are Lua (lua/pipe.lua on the shared lua/io_object.lua); this file gives
//! that code its primitives.
//!
//! Invariants: those of `io_object` (private holders, ops own their fd and
//! buffer), and pipes are created close-on-exec and blocking (the ring
//! waits on them; a non-blocking fd would make reads fail with `EAGAIN`).

use mlua::{Lua, Table};

use crate::actor::vm::unless_closing;
use crate::modules::error::ErrorCode;
use crate::modules::file_descriptor::push;
use crate::modules::io_object;

/// The `pipe` builtin module (registered by `super::register`).
pub(crate) const MODULE: io_object::LuaModule = io_object::LuaModule {
    name: "pipe",
    chunk: &crate::fiber::lib_chunks::PIPE,
    primitives,
};

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = lua.create_table()?;
    p.raw_set(
        "pair",
        lua.create_function(unless_closing(|lua, ()| {
            let (r, w) = std::io::pipe().map_err(|e| ErrorCode::from_io(&e))?;
            // In a sandbox both ends go to LOCAL slots of its ring.
            let adopt = crate::actor::sandboxed::slots::adopt;
            Ok((
                push(lua, adopt(lua, r.into())?)?,
                push(lua, adopt(lua, w.into())?)?,
            ))
        }))?,
    )?;
    p.raw_set("read", io_object::holder_read(lua)?)?;
    p.raw_set("write", io_object::holder_write(lua)?)?;
    Ok(p)
}
