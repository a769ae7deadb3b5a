//! Fibers, scopes, interruption and the synchronisation primitives.
//!
//! They are written in Lua (`lua/core/`) and run inside each actor's VM:
//! a fiber switch is then a plain LuaJIT coroutine resume/yield, with no
//! crossing of the Rust boundary (measured in `benches/core.rs`). The
//! scheduler calls into the executor (`rt.turn`) only when its run queue is
//! empty or ring operations are in flight.
//!
//! Invariants (enforced by `lua/core/scheduler.lua`):
//! - one FIFO run queue per VM; every wake-up appends;
//! - a suspended fiber is woken exactly once; interruption runs the
//!   fiber's interrupter at most once and only while it is suspended;
//! - every ring op a fiber waits for keeps its resources (owned by the
//!   executor) until its completion arrives, even if the fiber was
//!   interrupted or the VM is closing;
//! - fiber coroutines are pooled: a finished fiber's coroutine runs the
//!   next spawned function.

/// The core Lua sources, run in this order with the runtime's internal
/// table as their only argument. Chunk name `?` keeps runtime frames
/// recognisable in tracebacks (`[string "?"]`).
pub const CORE_CHUNKS: &[(&str, &str)] = &[
    ("errors", include_str!("../../lua/core/errors.lua")),
    ("scheduler", include_str!("../../lua/core/scheduler.lua")),
    ("sync", include_str!("../../lua/core/sync.lua")),
    ("time", include_str!("../../lua/core/time.lua")),
    ("actors", include_str!("../../lua/core/actors.lua")),
    ("modules", include_str!("../../lua/core/modules.lua")),
    ("system", include_str!("../../lua/core/system.lua")),
];
