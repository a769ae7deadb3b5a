//! The `format` global.
use mlua::Lua;

pub(crate) fn register(_lua: &Lua) -> mlua::Result<()> {
    Ok(())
}
