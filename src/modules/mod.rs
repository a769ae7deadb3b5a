//! Lua-facing modules implemented in Rust. Modules written in Lua live in
//! `lua/core/` and are listed in `crate::fiber::CORE_CHUNKS`.

pub mod byte_span;
pub mod error;
