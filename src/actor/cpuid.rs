//! LuaJIT's CPU feature probe, answered once per process.
//!
//! Every VM opens the `jit` library, whose `luaopen_jit` asks the CPU for
//! its features (`lj_vm_cpuid`: leaves 0, 1 and 7, sub-leaf 0). Under a
//! hypervisor each `cpuid` instruction traps to the host: in a profile of
//! 1,000 spawns `lj_vm_cpuid` alone was ~4% of the samples (docs/
//! performance.md "spawn-boot"). The answers cannot change while the
//! process runs, so the binary is linked with `--wrap=lj_vm_cpuid`
//! (build.rs): LuaJIT's calls reach [`__wrap_lj_vm_cpuid`], which asks the
//! CPU once per leaf and hands out the same four words afterwards. LuaJIT's
//! sources are not changed; a program that links the library without that
//! flag keeps LuaJIT's own probe (this function is then never called).
//!
//! Invariants: the answer for a leaf is exactly what `cpuid` with that leaf
//! and sub-leaf 0 returned (LuaJIT's `lj_vm_cpuid` clears `ecx` the same
//! way); leaves other than 0, 1 and 7 are not cached.

use std::sync::OnceLock;

/// The leaves LuaJIT asks for, in `CACHE` order.
const LEAVES: [u32; 3] = [0, 1, 7];
static CACHE: [OnceLock<[u32; 4]>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];

/// `cpuid` with `leaf` and sub-leaf 0: eax, ebx, ecx, edx.
fn ask(leaf: u32) -> [u32; 4] {
    let r = std::arch::x86_64::__cpuid_count(leaf, 0);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// `int lj_vm_cpuid(uint32_t f, uint32_t res[4])`: fills `res` and returns
/// 1 (x86-64 always has `cpuid`).
///
/// # Safety
/// `res` must point to four writable `u32`s (LuaJIT's callers pass a local
/// array).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_lj_vm_cpuid(f: u32, res: *mut u32) -> std::ffi::c_int {
    let words = match LEAVES.iter().position(|&l| l == f) {
        Some(i) => *CACHE[i].get_or_init(|| ask(f)),
        None => ask(f),
    };
    // SAFETY: the caller passes four writable words (see above).
    unsafe { std::ptr::copy_nonoverlapping(words.as_ptr(), res, 4) };
    1
}

#[cfg(test)]
mod tests {
    #[test]
    fn cached_answers_are_the_cpus() {
        for leaf in [0u32, 1, 7, 0x8000_0000] {
            let mut got = [0u32; 4];
            for _ in 0..2 {
                // SAFETY: `got` is four writable words.
                assert_eq!(
                    unsafe { super::__wrap_lj_vm_cpuid(leaf, got.as_mut_ptr()) },
                    1
                );
                assert_eq!(got, super::ask(leaf), "leaf {leaf:#x}");
            }
        }
    }
}
