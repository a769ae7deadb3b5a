//! The allocator of each actor VM's Lua heap.
//!
//! mlua's own allocator calls `handle_alloc_error` when the system refuses
//! memory, which aborts the whole process (every actor with it). This one
//! returns NULL instead, which LuaJIT turns into a catchable "not enough
//! memory" error in the VM that asked; it also enforces the VM's optional
//! memory limit, so a memory bomb hits its own actor's limit first.
//!
//! Invariants:
//! - Installed once, right after the state is created and before any user
//!   code runs; it stays installed through `lua_close`, so finalizers that
//!   run at exit cannot abort the process either. Blocks allocated before
//!   the switch came from mlua's allocator, which uses the same global
//!   allocator and the same layout (`SYS_MIN_ALIGN`), so either may free
//!   any block.
//! - `VmMemory` outlives the Lua state (the `Vm` owns both and drops the
//!   state first); it is only touched from the VM's thread.
//! - `used` counts the bytes of the heap's live blocks (starting from
//!   LuaJIT's own count at the switch); a growth that would take it past
//!   `limit` fails without touching the system allocator.
//!
//! Cost of the switch: mlua frees its own small allocator record only when
//! its allocator is still installed when the state closes; that record
//! (a few dozen bytes per VM) is left behind.

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;

use mlua::ffi;

/// Accounting and limit of one VM's Lua heap.
pub(crate) struct VmMemory {
    used: Cell<usize>,
    /// Zero: no limit.
    limit: Cell<usize>,
}

impl VmMemory {
    pub(crate) fn new() -> Box<Self> {
        Box::new(Self {
            used: Cell::new(0),
            limit: Cell::new(0),
        })
    }

    /// `None` lifts the limit.
    pub(crate) fn set_limit(&self, bytes: Option<usize>) {
        self.limit.set(bytes.unwrap_or(0));
    }

    /// Makes `self` the allocator of `state`.
    ///
    /// # Safety
    /// `state` is a live Lua state on this thread and `self` stays at its
    /// address until that state is closed.
    pub(crate) unsafe fn install(&self, state: *mut ffi::lua_State) {
        // SAFETY: the caller guarantees `state` is live; `self` outlives it,
        // and `vm_alloc` only reads `ud` as a `VmMemory`.
        unsafe {
            // What the heap holds already counts against the limit.
            let kib = ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0).max(0) as usize;
            let rest = ffi::lua_gc(state, ffi::LUA_GCCOUNTB, 0).max(0) as usize;
            self.used.set(kib * 1024 + rest);
            ffi::lua_setallocf(state, vm_alloc, self as *const Self as *mut c_void);
        }
    }
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size, ffi::SYS_MIN_ALIGN).ok()
}

/// The `lua_Alloc` of every VM: like mlua's, but a refusal (system or
/// limit) returns NULL instead of aborting.
unsafe extern "C" fn vm_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the `VmMemory` given to `install`, alive while the
    // state is (see `VmMemory::install`).
    let memory = unsafe { &*(ud as *const VmMemory) };
    if nsize == 0 {
        if !ptr.is_null() {
            if let Some(old) = layout(osize) {
                // SAFETY: LuaJIT hands back a block it got from this
                // allocator (or mlua's, same global allocator and layout)
                // with its size `osize`.
                unsafe { std::alloc::dealloc(ptr as *mut u8, old) };
            }
            memory.used.set(memory.used.get().saturating_sub(osize));
        }
        return std::ptr::null_mut();
    }
    let Some(new_layout) = layout(nsize) else {
        return std::ptr::null_mut();
    };
    let old_size = if ptr.is_null() { 0 } else { osize };
    let limit = memory.limit.get();
    let used_after = memory
        .used
        .get()
        .saturating_sub(old_size)
        .saturating_add(nsize);
    if limit != 0 && nsize > old_size && used_after > limit {
        return std::ptr::null_mut();
    }
    let new_ptr = if ptr.is_null() {
        // SAFETY: `new_layout` has a non-zero size.
        unsafe { std::alloc::alloc(new_layout) }
    } else {
        let Some(old) = layout(osize) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `ptr` is a live block of `osize` bytes from the global
        // allocator with this alignment; `nsize` is non-zero and was checked
        // to form a valid layout. On failure the old block stays valid, as
        // LuaJIT expects.
        unsafe { std::alloc::realloc(ptr as *mut u8, old, nsize) }
    };
    if !new_ptr.is_null() {
        memory.used.set(used_after);
    }
    new_ptr as *mut c_void
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_returns_null_and_limit_holds() {
        let memory = VmMemory::new();
        let ud = &*memory as *const VmMemory as *mut c_void;
        memory.set_limit(Some(1024));
        // SAFETY: `ud` is a live VmMemory; blocks are freed with their sizes.
        unsafe {
            let a = vm_alloc(ud, std::ptr::null_mut(), 0, 512);
            assert!(!a.is_null());
            assert!(vm_alloc(ud, std::ptr::null_mut(), 0, 1024).is_null());
            let a = vm_alloc(ud, a, 512, 1000);
            assert!(!a.is_null());
            assert!(
                vm_alloc(ud, a, 1000, 2000).is_null(),
                "growth past the limit"
            );
            // shrinking is always allowed
            let a = vm_alloc(ud, a, 1000, 10);
            assert!(!a.is_null());
            vm_alloc(ud, a, 10, 0);
            assert_eq!(memory.used.get(), 0);
            // the system refusing (1 PiB, more than any machine here has) is
            // NULL, not an abort. `black_box` keeps an optimised build from
            // assuming an allocation whose pointer is unused succeeds.
            memory.set_limit(None);
            let huge = std::hint::black_box(vm_alloc(ud, std::ptr::null_mut(), 0, 1 << 50));
            assert!(huge.is_null());
        }
    }
}
