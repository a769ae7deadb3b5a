//! Worker modules compiled once per process: bytecode this process made
//! with `lua_dump` from a module's source, so the next VM that starts the
//! same module loads it with `luaL_loadbufferx(..., "b")` instead of
//! parsing it again (no parser garbage in the new VM, no parse CPU; see
//! docs/performance.md "spawnstart").
//!
//! Invariants:
//! - Every bytecode held here was dumped by this process from a function
//!   it had just compiled **as text** from `source` under `chunk_name`.
//!   Nothing else ever inserts: no user's bytes reach the binary loader
//!   (user `load` stays text-only, lua/core/modules.lua `raw_load`).
//! - A hit needs the exact chunk name and the exact source bytes (not a
//!   path or an mtime): an edited file, or the same text under another
//!   name, compiles afresh.
//! - Bounded: at most [`ENTRIES`] modules and [`MAX_BYTES`] of source
//!   plus bytecode; the least recently used entry goes first. A module
//!   larger than that alone is never kept.
//! - The lock is held only to compare and to clone an `Arc`; no Lua code
//!   runs under it.

use std::sync::{Arc, Mutex};

/// How many modules are kept (a program spawns workers from a few).
const ENTRIES: usize = 8;
/// Source plus bytecode of all entries together, at most.
const MAX_BYTES: usize = 2 * 1024 * 1024;

struct Entry {
    chunk_name: Box<[u8]>,
    source: Box<[u8]>,
    bytecode: Arc<[u8]>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.source.len() + self.bytecode.len()
    }
}

/// Most recently used first.
static CACHE: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn cache() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    // A panic under the lock leaves the entries whole (each is pushed or
    // removed in one step): keep using them.
    CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The bytecode this process compiled from exactly `source` under
/// `chunk_name`, if it still has it.
pub(crate) fn lookup(chunk_name: &[u8], source: &[u8]) -> Option<Arc<[u8]>> {
    let mut entries = cache();
    let at = entries
        .iter()
        .position(|e| *e.chunk_name == *chunk_name && *e.source == *source)?;
    let bytecode = entries[at].bytecode.clone();
    if at != 0 {
        let entry = entries.remove(at);
        entries.insert(0, entry);
    }
    Some(bytecode)
}

/// Keeps `bytecode`, which this process dumped from `source` just
/// compiled as text under `chunk_name` (the module's invariant: call it
/// with nothing else).
pub(crate) fn insert(chunk_name: &[u8], source: &[u8], bytecode: Vec<u8>) {
    let entry = Entry {
        chunk_name: chunk_name.into(),
        source: source.into(),
        bytecode: bytecode.into(),
    };
    if entry.bytes() > MAX_BYTES {
        return;
    }
    let mut entries = cache();
    // Another thread may have compiled the same module meanwhile.
    entries.retain(|e| !(*e.chunk_name == *chunk_name && *e.source == *source));
    entries.insert(0, entry);
    while entries.len() > ENTRIES || entries.iter().map(Entry::bytes).sum::<usize>() > MAX_BYTES {
        entries.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The cache is process-wide and other tests spawn workers: these use
    // chunk names nothing else uses, and each asserts only on its own.

    #[test]
    fn a_hit_needs_the_same_name_and_the_same_bytes() {
        insert(b"@cache_test_a.lua\0", b"return 1", vec![1, 2, 3]);
        assert_eq!(
            lookup(b"@cache_test_a.lua\0", b"return 1").as_deref(),
            Some(&[1u8, 2, 3][..])
        );
        assert!(lookup(b"@cache_test_a.lua\0", b"return 2").is_none());
        assert!(lookup(b"@cache_test_b.lua\0", b"return 1").is_none());
    }

    #[test]
    fn too_large_a_module_is_not_kept_and_entries_are_bounded() {
        let big = vec![b' '; MAX_BYTES];
        insert(b"@cache_test_big.lua\0", &big, vec![0; 16]);
        assert!(lookup(b"@cache_test_big.lua\0", &big).is_none());
        for i in 0..ENTRIES + 4 {
            insert(format!("@cache_test_n{i}.lua\0").as_bytes(), b"x", vec![0]);
        }
        assert!(cache().len() <= ENTRIES);
        let last = format!("@cache_test_n{}.lua\0", ENTRIES + 3);
        assert!(lookup(last.as_bytes(), b"x").is_some());
    }
}
