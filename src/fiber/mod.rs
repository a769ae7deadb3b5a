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

use mlua::{chunk::ChunkMode, Function, Lua};

/// One core Lua chunk: its source and the bytecode build.rs compiled from it.
#[derive(Clone, Copy)]
pub struct CoreChunk {
    pub name: &'static str,
    source: &'static str,
    /// Empty when the build could not precompile (cross-compiling).
    bytecode: &'static [u8],
    /// The source build.rs compiled, to check that `bytecode` is not stale.
    #[cfg(test)]
    compiled_from: &'static str,
}

/// A chunk of the runtime's own Lua: `lua/<dir>NAME.lua`, with the
/// bytecode build.rs wrote as `$OUT_DIR/<prefix>NAME.ljbc` (and the source
/// it compiled beside it).
macro_rules! chunk {
    ($dir:literal, $prefix:literal, $name:literal) => {
        CoreChunk {
            name: $name,
            source: include_str!(concat!("../../lua/", $dir, $name, ".lua")),
            bytecode: include_bytes!(concat!(env!("OUT_DIR"), "/", $prefix, $name, ".ljbc")),
            #[cfg(test)]
            compiled_from: include_str!(concat!(env!("OUT_DIR"), "/", $prefix, $name, ".lua")),
        }
    };
}

/// A core chunk (`lua/core/NAME.lua`).
macro_rules! core_chunk {
    ($name:literal) => {
        chunk!("core/", "", $name)
    };
}

/// A builtin module's Lua code (`lua/NAME.lua`, build.rs's `lib_NAME`),
/// precompiled like the core chunks; loaded (`CoreChunk::load_with`) on
/// the module's first use.
macro_rules! lib_chunk {
    ($name:literal) => {
        chunk!("", "lib_", $name)
    };
}

/// The builtin modules' Lua code (src/modules/, `LuaModule::chunk`).
pub mod lib_chunks {
    use super::CoreChunk;
    pub const FILE: CoreChunk = lib_chunk!("file");
    pub const FILESYSTEM: CoreChunk = lib_chunk!("filesystem");
    pub const IO_OBJECT: CoreChunk = lib_chunk!("io_object");
    pub const IP: CoreChunk = lib_chunk!("ip");
    pub const PIPE: CoreChunk = lib_chunk!("pipe");
    pub const STREAM: CoreChunk = lib_chunk!("stream");
    pub const SYSTEM_PROCESS: CoreChunk = lib_chunk!("system_process");
    pub const UNIX: CoreChunk = lib_chunk!("unix");
    /// All of them (tests).
    #[cfg(test)]
    pub const ALL: &[CoreChunk] = &[
        FILE,
        FILESYSTEM,
        IO_OBJECT,
        IP,
        PIPE,
        STREAM,
        SYSTEM_PROCESS,
        UNIX,
    ];
}

/// The core Lua chunks every VM runs at boot, in this order, with the
/// runtime's internal table as their only argument. Chunk name `?<name>`
/// keeps runtime frames recognisable in tracebacks (`[string "?<name>"]`).
pub const CORE_CHUNKS: &[CoreChunk] = &[
    core_chunk!("errors"),
    core_chunk!("scheduler"),
    core_chunk!("actors"),
    core_chunk!("modules"),
];

/// Core chunks a VM loads on first use (`rt.core_chunk`,
/// lua/core/modules.lua), so an actor that never uses them neither loads
/// nor keeps their code: `sync`, `time` and `system` define builtin modules
/// (loaded when one of them is first required); `loader` is module loading
/// beyond the entry module and spawning (`require` of a project module, the
/// master's entry script, `spawn_vm`); `sandboxes` the methods of a
/// sandboxed actor's channel (loaded before the VM's first one exists);
/// `sandbox_inbox` a sandboxed VM's inbox, read from its host (loaded
/// while that VM is prepared).
pub const LAZY_CORE_CHUNKS: &[CoreChunk] = &[
    core_chunk!("sync"),
    core_chunk!("time"),
    core_chunk!("system"),
    core_chunk!("loader"),
    core_chunk!("sandboxes"),
    core_chunk!("sandbox_inbox"),
    RAW_LAZY_CHUNKS[0].0,
    RAW_LAZY_CHUNKS[1].0,
    RAW_LAZY_CHUNKS[2].0,
    RAW_LAZY_CHUNKS[3].0,
    RAW_LAZY_CHUNKS[4].0,
];

/// Lazy core chunks loaded through [`load_lazy_chunk`] (C API only), with
/// their chunk names (`CoreChunk::chunk_name`): `coroutines` (the
/// fiber-aware `coroutine` library and `string.gsub` wrapper) and `fibers`
/// (`spawn`, fiber handles, most of `this_fiber`), loaded by the first call
/// that needs them (lua/core/scheduler.lua); `user_env` (what user code
/// gets as `load`, `loadstring`, `getfenv`, `setfenv`, `newproxy`: a
/// user finalizer may call them first, lua/core/modules.lua); `reports` (a panic report's text and traceback, loaded by the first
/// report, which may be written while the VM closes); `scopes` (`scope`,
/// `scope_cleanup_push`, `scope_cleanup_pop`, `xpcall`: their stubs in
/// lua/core/scheduler.lua load it, also from a finalizer).
const RAW_LAZY_CHUNKS: [(CoreChunk, &std::ffi::CStr); 5] = [
    (core_chunk!("coroutines"), c"?coroutines"),
    (core_chunk!("fibers"), c"?fibers"),
    (core_chunk!("user_env"), c"?user_env"),
    (core_chunk!("reports"), c"?reports"),
    (core_chunk!("scopes"), c"?scopes"),
];

/// `K.load_lazy_chunk(env, name)`: the main function of the lazy core
/// chunk `name` (one of `RAW_LAZY_CHUNKS`) with function environment
/// `env`. A plain C function that calls only LuaJIT's C API, unlike
/// `rt.core_chunk` (mlua): a finalizer may need these chunks while the VM
/// closes, when nothing can be built through mlua. The bytecode is tried
/// first, then the source (no bytecode, or this LuaJIT refused it); out of
/// memory raises.
///
/// # Safety
/// Called by LuaJIT as a `lua_CFunction`.
pub(crate) unsafe extern "C-unwind" fn load_lazy_chunk(
    l: *mut mlua::ffi::lua_State,
) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by LuaJIT as a `lua_CFunction` (this function's
    // contract); a string argument's bytes stay valid while it is on the
    // stack; `lua_error` unwinds through no Rust frame that owns anything.
    unsafe {
        let mut len = 0;
        let ptr = ffi::lua_tolstring(l, 2, &mut len);
        let name: &[u8] = if ptr.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(ptr.cast(), len)
        };
        match RAW_LAZY_CHUNKS
            .iter()
            .find(|(chunk, _)| chunk.name.as_bytes() == name)
        {
            Some((chunk, chunk_name)) => push_chunk_with_env(l, chunk, chunk_name),
            None => {
                ffi::lua_pushstring(l, c"luring: no such lazy core chunk".as_ptr());
                ffi::lua_error(l)
            }
        }
    }
}

/// The body of a `lua_CFunction` that returns `chunk`'s main function,
/// named `name`, with the table at stack index 1 as its environment.
///
/// # Safety
/// `l` is the state of a running `lua_CFunction` call.
unsafe fn push_chunk_with_env(
    l: *mut mlua::ffi::lua_State,
    chunk: &CoreChunk,
    name: &std::ffi::CStr,
) -> std::ffi::c_int {
    use mlua::ffi;
    let name = name.as_ptr();
    // SAFETY: a C function gets at least LUA_MINSTACK (20) free slots and
    // uses three; the buffers are 'static and `name` is NUL-terminated;
    // `lua_error` unwinds through no Rust frame that owns anything.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
            ffi::lua_pushstring(
                l,
                c"luring: a core chunk needs an environment table".as_ptr(),
            );
            ffi::lua_error(l);
        }
        let bytecode = chunk.bytecode;
        let mut status = ffi::LUA_ERRSYNTAX;
        if !bytecode.is_empty() {
            status = ffi::luaL_loadbuffer(l, bytecode.as_ptr().cast(), bytecode.len(), name);
            if status == ffi::LUA_ERRMEM {
                ffi::lua_error(l);
            }
            if status != ffi::LUA_OK {
                ffi::lua_pop(l, 1);
            }
        }
        if status != ffi::LUA_OK {
            let source = chunk.source;
            if ffi::luaL_loadbuffer(l, source.as_ptr().cast(), source.len(), name) != ffi::LUA_OK {
                ffi::lua_error(l);
            }
        }
        ffi::lua_pushvalue(l, 1);
        ffi::lua_setfenv(l, -2);
        1
    }
}

/// Every core chunk, the lazy ones included.
#[cfg(test)]
fn all_core_chunks() -> impl Iterator<Item = &'static CoreChunk> {
    CORE_CHUNKS
        .iter()
        .chain(LAZY_CORE_CHUNKS)
        .chain(lib_chunks::ALL)
}

impl CoreChunk {
    /// The chunk name build.rs compiled the chunk under. A stripped dump
    /// does not carry it: loading gives it again (tracebacks need it).
    pub fn chunk_name(&self) -> String {
        format!("?{}", self.name)
    }

    /// The chunk's main function: its precompiled bytecode (the runtime's
    /// own, trusted; user code is only ever loaded as text), or, when there
    /// is none or this LuaJIT refuses it, its source compiled now.
    pub fn load(&self, lua: &Lua) -> mlua::Result<Function> {
        self.load_with(lua, None)
    }

    /// [`load`](Self::load) with the function environment `env` (the
    /// runtime's globals for a lazy chunk, which is loaded while a user
    /// fiber runs and must not get that fiber's globals).
    pub fn load_with(&self, lua: &Lua, env: Option<&mlua::Table>) -> mlua::Result<Function> {
        let chunk = |code: &'static [u8], mode| {
            let chunk = lua.load(code).set_name(self.chunk_name()).set_mode(mode);
            match env {
                Some(env) => chunk.set_environment(env.clone()),
                None => chunk,
            }
        };
        if !self.bytecode.is_empty() {
            let loaded = chunk(self.bytecode, ChunkMode::Binary).into_function();
            match loaded {
                Ok(function) => return Ok(function),
                Err(e) => tracing::warn!(
                    chunk = self.name,
                    error = %e,
                    "precompiled core chunk refused; compiling its source instead"
                ),
            }
        } else {
            tracing::debug!(
                chunk = self.name,
                "no precompiled core chunk; compiling its source"
            );
        }
        chunk(self.source.as_bytes(), ChunkMode::Text).into_function()
    }

    #[cfg(test)]
    fn load_source(&self, lua: &Lua) -> mlua::Result<Function> {
        lua.load(self.source)
            .set_name(self.chunk_name())
            .set_mode(ChunkMode::Text)
            .into_function()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded bytecode was compiled from the embedded source (a
    /// stale dump would run old code), is stripped of debug info unless the
    /// build kept it (build.rs, `LURING_CORE_DEBUG_INFO`), loads in this
    /// build's LuaJIT (else boot would silently fall back to the source)
    /// and, loaded as the runtime loads it, carries its chunk name (which
    /// tracebacks and their filter need). The dump itself is not
    /// byte-for-byte reproducible: LuaJIT writes table templates in the
    /// order of its per-state string hashes.
    #[test]
    fn core_bytecode_is_fresh_loads_and_has_its_chunk_name() {
        let stripped = env!("LURING_CORE_STRIPPED") == "1";
        let lua = Lua::new();
        for chunk in all_core_chunks() {
            assert!(!chunk.bytecode.is_empty(), "{}: no bytecode", chunk.name);
            assert!(
                chunk.compiled_from == chunk.source,
                "{}: stale bytecode",
                chunk.name
            );
            let loaded = lua
                .load(chunk.bytecode)
                .set_mode(ChunkMode::Binary)
                .into_function()
                .unwrap_or_else(|e| panic!("{}: {e}", chunk.name));
            // The header: ESC 'L' 'J', version, flags (BCDUMP_F_STRIP = 2).
            assert_eq!(
                chunk.bytecode[4] & 2 != 0,
                stripped,
                "{}: debug info stripped",
                chunk.name
            );
            if !stripped {
                assert_eq!(
                    loaded.dump(false).len(),
                    chunk.load_source(&lua).unwrap().dump(false).len(),
                    "{}: the dump lacks what compiling the source keeps",
                    chunk.name
                );
            }
            let function = chunk.load(&lua).unwrap();
            assert_eq!(
                function.info().source.as_deref(),
                Some(chunk.chunk_name().as_str())
            );
        }
    }

    /// A dump this LuaJIT refuses (another format version) falls back to
    /// the source.
    #[test]
    fn refused_bytecode_falls_back_to_source() {
        let lua = Lua::new();
        let chunk = CoreChunk {
            name: "errors",
            source: CORE_CHUNKS[0].source,
            bytecode: b"\x1bLJ\x7f\x00garbage",
            compiled_from: CORE_CHUNKS[0].source,
        };
        let function = chunk.load(&lua).unwrap();
        assert_eq!(function.info().source.as_deref(), Some("?errors"));
    }

    /// `K.load_lazy_chunk` (C API only, for finalizers while the VM
    /// closes) gives each chunk its name and the environment it is passed,
    /// from the bytecode or, when that is refused, from the source; an
    /// unknown name or a missing environment is an error, not a crash.
    #[test]
    fn load_lazy_chunk_names_the_chunk_and_sets_its_env() {
        const REFUSED: CoreChunk = CoreChunk {
            name: "fibers",
            source: RAW_LAZY_CHUNKS[1].0.source,
            bytecode: b"\x1bLJ\x7f\x00garbage",
            compiled_from: RAW_LAZY_CHUNKS[1].0.source,
        };
        unsafe extern "C-unwind" fn load_refused(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
            // SAFETY: called by LuaJIT as a `lua_CFunction`.
            unsafe { push_chunk_with_env(l, &REFUSED, c"?fibers") }
        }
        let lua = Lua::new();
        // SAFETY: both are `lua_CFunction`s that follow the C API's rules.
        let (load, load_refused) = unsafe {
            (
                lua.create_c_function(load_lazy_chunk).unwrap(),
                lua.create_c_function(load_refused).unwrap(),
            )
        };
        for (chunk, chunk_name) in &RAW_LAZY_CHUNKS {
            assert_eq!(chunk_name.to_str().unwrap(), chunk.chunk_name());
            let env = lua.create_table().unwrap();
            let function: Function = load.call((env.clone(), chunk.name)).unwrap();
            assert_eq!(
                function.info().source.as_deref(),
                Some(chunk_name.to_str().unwrap())
            );
            assert_eq!(function.environment(), Some(env));
            assert!(load
                .call::<Function>((mlua::Value::Nil, chunk.name))
                .is_err());
        }
        assert!(load
            .call::<Function>((lua.create_table().unwrap(), "errors"))
            .is_err());
        let env = lua.create_table().unwrap();
        let function: Function = load_refused.call(env.clone()).unwrap();
        assert_eq!(function.info().source.as_deref(), Some("?fibers"));
        assert_eq!(function.environment(), Some(env));
    }
}
