//! Actors: one Lua VM per actor with its own executor; `spawn_vm`, the
//! inbox and tx-channels connect them (host.rs runs the VMs of a thread,
//! mailbox.rs is the shared inbox record, channels.rs the Lua objects).

pub(crate) mod channels;
mod compiled_modules;
#[cfg(target_arch = "x86_64")]
mod cpuid;
pub(crate) mod host;
pub(crate) mod mailbox;
mod memory;
pub mod message;
pub(crate) mod module_files;
pub(crate) mod nursery;
pub(crate) mod process;
pub(crate) mod raw_calls;
pub mod sandboxed;
pub mod vm;
