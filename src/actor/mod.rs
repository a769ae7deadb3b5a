//! Actors: one Lua VM per actor with its own executor. For now the process
//! runs one actor, the main VM; `spawn_vm`, the inbox and channels come with
//! the actors work.

mod memory;
pub mod message;
pub(crate) mod module_files;
pub mod vm;
