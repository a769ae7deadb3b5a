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

/// The entries, most recently used first.
struct Compiled(Vec<Entry>);

impl Compiled {
    fn lookup(&mut self, chunk_name: &[u8], source: &[u8]) -> Option<Arc<[u8]>> {
        let entries = &mut self.0;
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

    fn insert(&mut self, entry: Entry) {
        if entry.bytes() > MAX_BYTES {
            return;
        }
        let entries = &mut self.0;
        // Another thread may have compiled the same module meanwhile.
        entries.retain(|e| !(e.chunk_name == entry.chunk_name && e.source == entry.source));
        entries.insert(0, entry);
        while entries.len() > ENTRIES || entries.iter().map(Entry::bytes).sum::<usize>() > MAX_BYTES
        {
            entries.pop();
        }
    }
}

static CACHE: Mutex<Compiled> = Mutex::new(Compiled(Vec::new()));

fn cache() -> std::sync::MutexGuard<'static, Compiled> {
    // A panic under the lock leaves the entries whole (each is pushed or
    // removed in one step): keep using them.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The bytecode this process compiled from exactly `source` under
/// `chunk_name`, if it still has it.
pub(crate) fn lookup(chunk_name: &[u8], source: &[u8]) -> Option<Arc<[u8]>> {
    cache().lookup(chunk_name, source)
}

/// Keeps `bytecode`, which this process dumped from `source` just
/// compiled as text under `chunk_name` (the module's invariant: call it
/// with nothing else).
pub(crate) fn insert(chunk_name: &[u8], source: &[u8], bytecode: Vec<u8>) {
    cache().insert(Entry {
        chunk_name: chunk_name.into(),
        source: source.into(),
        bytecode: bytecode.into(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, source: &[u8], bytecode: Vec<u8>) -> Entry {
        Entry {
            chunk_name: name.as_bytes().into(),
            source: source.into(),
            bytecode: bytecode.into(),
        }
    }

    #[test]
    fn a_hit_needs_the_same_name_and_the_same_bytes() {
        let mut cache = Compiled(Vec::new());
        cache.insert(entry("@a.lua", b"return 1", vec![1, 2, 3]));
        assert_eq!(
            cache.lookup(b"@a.lua", b"return 1").as_deref(),
            Some(&[1u8, 2, 3][..])
        );
        assert!(cache.lookup(b"@a.lua", b"return 2").is_none());
        assert!(cache.lookup(b"@b.lua", b"return 1").is_none());
        // The same module compiled again replaces its entry.
        cache.insert(entry("@a.lua", b"return 1", vec![4]));
        assert_eq!(cache.0.len(), 1);
        assert_eq!(
            cache.lookup(b"@a.lua", b"return 1").as_deref(),
            Some(&[4u8][..])
        );
    }

    #[test]
    fn too_large_a_module_is_not_kept_and_the_least_recent_goes_first() {
        let mut cache = Compiled(Vec::new());
        let big = vec![b' '; MAX_BYTES];
        cache.insert(entry("@big.lua", &big, vec![0; 16]));
        assert!(cache.lookup(b"@big.lua", &big).is_none());
        for i in 0..ENTRIES {
            cache.insert(entry(&format!("@n{i}.lua"), b"x", vec![0]));
        }
        // n0 used last: n1 is the least recent when one more comes.
        assert!(cache.lookup(b"@n0.lua", b"x").is_some());
        cache.insert(entry("@one_more.lua", b"x", vec![0]));
        assert_eq!(cache.0.len(), ENTRIES);
        assert!(cache.lookup(b"@n1.lua", b"x").is_none());
        assert!(cache.lookup(b"@n0.lua", b"x").is_some());
        // Bytes bound the entries too.
        let half = vec![b'y'; MAX_BYTES / 2];
        cache.insert(entry("@h1.lua", &half, vec![0]));
        cache.insert(entry("@h2.lua", &half, vec![0]));
        assert!(cache.lookup(b"@h2.lua", &half).is_some());
        assert!(cache.lookup(b"@h1.lua", &half).is_none());
        assert!(cache.0.iter().map(Entry::bytes).sum::<usize>() <= MAX_BYTES);
    }
}
