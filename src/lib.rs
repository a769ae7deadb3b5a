//! luring: a Lua-scriptable actor runtime for Linux on io_uring.
//!
//! Each actor is its own LuaJIT VM running cooperative fibers on its own
//! io_uring executor. This crate is both the `luring` command and the
//! library that embeds it:
//!
//! ```no_run
//! let status = luring::Runtime::new()?.run_file("examples/hello.lua", &["a".into()])?;
//! std::process::exit(status.code());
//! # Ok::<(), luring::RuntimeError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
// The default build's public surface is the embedding API only, all of it
// documented. The `internals` feature (tests, benches and fuzz targets enable
// it through the crate's dev-dependency on itself) also makes the modules
// below public, hidden from the docs.
#![cfg_attr(not(feature = "internals"), deny(missing_docs))]

// Without `internals`, code that only tests and benches reach is unused.
#[cfg_attr(not(feature = "internals"), allow(dead_code, unused_imports))]
pub(crate) mod actor;
mod embed;
/// The guide's examples compile (docs/guide/embedding.md).
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/embedding.md")]
struct EmbeddingGuide;
/// The README's Rust example compiles.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct Readme;
/// The per-actor io_uring executor. Not part of the embedding API: public
/// (and hidden) with the `internals` feature only, so that
/// `tests/executor_fd_leak.rs` can count the process's fds in a test binary
/// of its own. Its API is safe: ops take owned buffers and fds, never raw
/// pointers or bare fd numbers.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod executor;
#[cfg(not(feature = "internals"))]
#[allow(dead_code)]
pub(crate) mod executor;
pub(crate) mod fiber;
/// The IPC wire format: messages as `SOCK_SEQPACKET` frames (docs/ipc.md).
/// Internal: a Rust host reaches plugins through [`ActorHandle`] and
/// [`Message`], never through frames; the format may change between
/// versions. Public (hidden) with the `internals` feature for tests,
/// benches and fuzz targets.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod ipc;
#[cfg(not(feature = "internals"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod ipc;
#[cfg_attr(not(feature = "internals"), allow(dead_code))]
pub(crate) mod modules;

/// Owned message values: what actors exchange, deep-copied out of one VM
/// and built anew in another (spec/actors.md §4).
pub use modules::file_descriptor::FdCapabilities;
/// Call first thing in `main` (before any thread exists) so that Lua's
/// `system.signal.set` can wait for signals; see its docs.
pub use modules::system::prepare_process_signals;

pub use actor::message::{
    ActorAddress, Limits as MessageLimits, Message, MessageError, Summary as MessageSummary,
};
pub use embed::mailbox::{Mailbox, RecvError, RecvTimeoutError, TryRecvError};
pub use embed::module::{Module, ModuleError, ModuleResult};
pub use embed::serde::{from_value, to_value, ConvertError};
pub use embed::{
    ActorEnded, ActorHandle, ActorSpec, DeliveryError, KillError, RuntimeBuilder, SandboxOptions,
    SandboxStdin, SendError, SpawnError,
};

/// Benchmark hooks, not part of the embedding API.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod bench {
    pub use crate::actor::message::bench_copy_ten_fields;
    pub use crate::modules::file_descriptor::message_round_trips as fd_message_round_trips;
}

/// Sandboxed actors: the entry point and supervisor (call
/// [`start_supervisor`] first thing in `main`).
pub use actor::sandboxed::start_supervisor;
/// The sandboxed VM's boot protocol and slots, public for tests and
/// benchmarks only.
#[cfg(feature = "internals")]
#[doc(hidden)]
pub mod sandbox_internals {
    pub use crate::actor::sandboxed::*;
}

use std::path::{Path, PathBuf};

use actor::vm::{Vm, VmConfig};

/// Why a runtime could not run a script.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The script could not be read or compiled. `reason` names the file,
    /// and the line for syntax errors.
    #[error("{reason}")]
    Load {
        /// The script's path, as given.
        script: PathBuf,
        /// What went wrong, for people.
        reason: String,
    },
    /// The actor's io_uring could not be created (kernel without io_uring,
    /// or io_uring disabled by `kernel.io_uring_disabled`).
    #[error(
        "cannot create the actor's io_uring: {0} (luring needs Linux ≥ 6.1 with io_uring enabled)"
    )]
    Ring(#[source] std::io::Error),
    /// The runtime's own Lua code failed to start: a bug in luring.
    #[error("internal error while starting the Lua VM: {0}")]
    Boot(String),
    /// The scheduler failed: a bug in luring. The VM stopped at once (no
    /// more fibers ran); the process exits [`EXIT_INTERNAL_ERROR`].
    #[error("internal runtime error: {0}")]
    Internal(String),
    /// A Rust module given to
    /// [`RuntimeBuilder::module`](crate::RuntimeBuilder::module) was
    /// refused by `build()`: an invalid name, the name of a builtin module,
    /// or a name given twice.
    #[error("cannot register the Rust module {name:?}: {reason}")]
    Module {
        /// The module's name.
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// A [`RuntimeBuilder`] setting is out of range
    /// (the setting is named).
    #[error("invalid runtime setting {name}: {reason}")]
    Setting {
        /// The builder method.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

/// Process exit status for a runtime bug (`EX_SOFTWARE` from sysexits.h).
pub const EXIT_INTERNAL_ERROR: i32 = 70;

impl RuntimeError {
    /// The process exit status the `luring` command uses for this error:
    /// 1 when the script could not start (unreadable, syntax error, no
    /// io_uring), [`EXIT_INTERNAL_ERROR`] (70) for a bug in luring itself.
    pub fn exit_code(&self) -> i32 {
        match self {
            RuntimeError::Load { .. }
            | RuntimeError::Ring(_)
            | RuntimeError::Module { .. }
            | RuntimeError::Setting { .. } => 1,
            RuntimeError::Boot(_) | RuntimeError::Internal(_) => EXIT_INTERNAL_ERROR,
        }
    }
}

/// How a script run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    code: i32,
}

impl ExitStatus {
    /// The process exit code: `system.exit(n)` if it was called, else 1 if
    /// the main fiber panicked, else 0.
    pub fn code(self) -> i32 {
        self.code
    }
}

/// A luring runtime: runs a Lua program as the main actor
/// ([`run_file`](Runtime::run_file), the `luring` command), or actors
/// started from Rust ([`builder`](Runtime::builder),
/// [`spawn`](Runtime::spawn); docs/guide/embedding.md).
///
/// `Send + Sync`: share it by reference or in an `Arc`. Dropping it shuts
/// it down ([`shutdown`](Runtime::shutdown)).
pub struct Runtime {
    memory_limit: Option<usize>,
    import_root: Option<PathBuf>,
    /// Host threads shared by actors spawned from Rust (`None`: one each).
    threads: Option<usize>,
    /// Started by `builder().build()`, or on first use.
    embedded: std::sync::OnceLock<embed::Embedded>,
}

impl Runtime {
    /// A runtime with default settings (the same as
    /// `Runtime::builder().build()`, except that nothing is opened until it
    /// is first used).
    pub fn new() -> Result<Self, RuntimeError> {
        Ok(Self {
            memory_limit: None,
            import_root: None,
            threads: None,
            embedded: std::sync::OnceLock::new(),
        })
    }

    /// Caps the Lua heap of each VM at `bytes` (default: no cap). A VM that
    /// reaches its cap gets "not enough memory" errors, which `pcall` can
    /// catch; other VMs are not affected.
    pub fn with_memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Runs `script` as the main fiber of the master VM until every actor
    /// it spawned has ended or none can ever be woken (or `system.exit` ran
    /// in any of them), and waits for it. The VM runs on its own thread with a
    /// stack of known size (`actor::vm::VM_THREAD_STACK_SIZE`), so deep
    /// recursion ends as a Lua error whatever this thread's stack is.
    /// `args` become `system.arguments[3..]` (`arguments[1]` is "luring",
    /// `arguments[2]` the script path).
    pub fn run_file(
        &self,
        script: impl AsRef<Path>,
        args: &[String],
    ) -> Result<ExitStatus, RuntimeError> {
        let script = script.as_ref().to_path_buf();
        let mut arguments = vec!["luring".to_owned(), script.to_string_lossy().into_owned()];
        arguments.extend(args.iter().cloned());
        let memory_limit = self.memory_limit;
        let exit = actor::vm::on_vm_thread(move || {
            let vm = Vm::new()?;
            vm.set_memory_limit(memory_limit);
            vm.run_main(&VmConfig {
                script,
                arguments,
                context: "main",
            })
        })?;
        let code = match exit.exit_code {
            Some(code) => code,
            None if exit.main_panicked => 1,
            None => 0,
        };
        Ok(ExitStatus { code })
    }
}
