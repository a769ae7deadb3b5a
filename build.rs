//! Precompiles the runtime's own Lua code (`lua/core/*.lua`, and the
//! builtin modules' `lua/*.lua`) to LuaJIT bytecode, so that a VM's boot
//! loads it instead of parsing ~90 KB of source (most of the start-up time
//! of an empty script), and a `require 'file'` its module's code.
//!
//! Invariants:
//! - Only the runtime's own, trusted sources are compiled here; user code is
//!   always loaded as text (lua/core/modules.lua refuses binary chunks).
//! - Every `lua/core/NAME.lua` gets `$OUT_DIR/NAME.ljbc` (every
//!   `lua/NAME.lua`: `$OUT_DIR/lib_NAME.ljbc`), stripped of debug
//!   info (line numbers, local and upvalue names: ~1/3 of the dump and
//!   ~16 kB of every VM's heap). The chunk name `?NAME`, which tracebacks
//!   and their filter (lua/core/scheduler.lua) rely on, is given again when
//!   the runtime loads it (src/fiber/mod.rs); runtime frames show line 0.
//!   `LURING_CORE_DEBUG_INFO=1` at build time keeps it all (for debugging
//!   the runtime's own Lua code).
//! - The bytecode comes from the same vendored LuaJIT, built for the host.
//!   Its format depends on the build (GC64, endianness), so when cross-
//!   compiling the file is left empty and the runtime compiles the source
//!   at boot; a dump the runtime's LuaJIT refuses falls back the same way
//!   (src/fiber/mod.rs).

use std::path::{Path, PathBuf};

fn main() {
    let core_dir = Path::new("lua/core");
    println!("cargo::rerun-if-changed=build.rs");
    // LuaJIT's CPU probe, asked once per process instead of once per VM
    // (src/actor/cpuid.rs): its calls go to `__wrap_lj_vm_cpuid`.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64")
        && std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
    {
        println!("cargo::rustc-link-arg=-Wl,--wrap=lj_vm_cpuid");
    }
    println!("cargo::rerun-if-env-changed=LURING_CORE_DEBUG_INFO");
    let keep_debug_info = std::env::var_os("LURING_CORE_DEBUG_INFO").is_some_and(|v| v != "0");
    // For the test that checks what the dump kept (src/fiber/mod.rs).
    println!(
        "cargo::rustc-env=LURING_CORE_STRIPPED={}",
        if keep_debug_info { "0" } else { "1" }
    );
    println!("cargo::rerun-if-changed={}", core_dir.display());
    let lib_dir = Path::new("lua");
    println!("cargo::rerun-if-changed={}", lib_dir.display());
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cross = std::env::var("HOST").ok() != std::env::var("TARGET").ok();
    if cross {
        println!(
            "cargo::warning=cross-compiling: the core Lua chunks are compiled at each VM start \
             (bytecode built on the host may not match the target's LuaJIT)"
        );
    }
    let lua = mlua::Lua::new();
    // `string.dump(f, strip)`: LuaJIT's `lua_dump` (mlua's `Function::dump`)
    // always keeps debug info.
    let string_dump: mlua::Function = lua
        .globals()
        .get::<mlua::Table>("string")
        .and_then(|string| string.get("dump"))
        .expect("string.dump exists");
    let lua_files = |dir: &Path| {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("lua/ is readable").path())
            .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "lua"))
            .collect();
        paths.sort();
        paths
    };
    let stem = |path: &Path| {
        path.file_stem()
            .and_then(|stem| stem.to_str())
            .expect("chunk names are UTF-8")
            .to_owned()
    };
    let core = lua_files(core_dir).into_iter().map(|p| (stem(&p), p));
    let libs = lua_files(lib_dir).into_iter().map(|p| (stem(&p), p));
    // (a library's files are prefixed: their names may be a core chunk's)
    let sources = core
        .map(|(name, p)| (name.clone(), name, p))
        .chain(libs.map(|(name, p)| (format!("lib_{name}"), name, p)));
    for (file, name, path) in sources {
        let name = name.as_str();
        let source = std::fs::read(&path).expect("core chunk is readable");
        // What was compiled, for the test that the bytecode is not stale.
        std::fs::write(out_dir.join(format!("{file}.lua")), &source).expect("OUT_DIR is writable");
        let bytecode = if cross {
            Vec::new()
        } else {
            let function = lua
                .load(source)
                .set_name(chunk_name(name))
                .into_function()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            string_dump
                .call::<mlua::LuaString>((function, !keep_debug_info))
                .expect("string.dump of a Lua function")
                .as_bytes()
                .to_vec()
        };
        std::fs::write(out_dir.join(format!("{file}.ljbc")), bytecode)
            .expect("OUT_DIR is writable");
    }
}

/// The chunk name of a core chunk (shown as `[string "?NAME"]`); must match
/// `CoreChunk::chunk_name` in src/fiber/mod.rs.
fn chunk_name(name: &str) -> String {
    format!("?{name}")
}
