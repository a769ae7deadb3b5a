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
//!   `limit` fails without touching the system allocator. After such a
//!   refusal, and until `used` is back under `limit`, growth may take up
//!   to `LIMIT_RESERVE` more (for the code that handles the error), never
//!   beyond.
//!
//! - Small blocks (up to `SMALL_MAX` bytes) come from the VM's own slab:
//!   2 KiB chunks carved in 8-byte steps, with no per-block header (Lua
//!   passes a block's size back when it frees or resizes it, so a header
//!   would only repeat it). A freed small block goes to the free list of
//!   its size and serves the next block of that size; when that list is
//!   empty, the smallest larger free block is split (its rest goes to the
//!   list of the rest's size) before new memory is carved. A block lies in the
//!   slab exactly when its address falls inside the region's chunks handed
//!   out so far or one of `chunks` (blocks
//!   from before the switch and large blocks come from the global
//!   allocator, which never hands out memory inside a live chunk, itself
//!   one of its blocks). Slab blocks are 8-byte aligned, as with LuaJIT's
//!   own allocator; no userdata the runtime or mlua stores needs more. The
//!   slab stops growing at `SLAB_MAX_CHUNKS`: beyond that small blocks come
//!   from the global allocator too, so a VM that piled up and dropped small
//!   objects keeps at most 512 KiB it cannot give back (tests/vm_limits.rs,
//!   recovery under `RLIMIT_AS`). Chunks are freed with the `VmMemory`.
//! - The first `REGION / CHUNK` chunks are the consecutive parts of one
//!   block (`Slab::region`), whose pages are faulted in by one
//!   `MADV_POPULATE_WRITE` when it is made: every VM's boot fills more
//!   than that many chunks, so nothing is made resident that boot would
//!   not touch anyway, and one call replaces a page fault per page. Those
//!   chunks are freed with the region, never one by one.
//!
//! Cost of the switch: mlua frees its own small allocator record only when
//! its allocator is still installed when the state closes; that record
//! (a few dozen bytes per VM) is left behind.

use std::alloc::Layout;
use std::cell::{Cell, RefCell};
use std::ffi::c_void;

use mlua::ffi;

/// Accounting and limit of one VM's Lua heap.
pub(crate) struct VmMemory {
    used: Cell<usize>,
    /// Zero: no limit.
    limit: Cell<usize>,
    /// Set by a refusal at the limit, cleared once `used` is back under
    /// it: meanwhile growth may take up to `LIMIT_RESERVE` more.
    refused: Cell<bool>,
    slab: RefCell<Slab>,
}

/// What the heap may take past its limit after a refusal, until a
/// collection brings it back under: the failed code's garbage is still
/// there when the error is caught, and what catches it (a stack growth on
/// the way to the runtime's emergency collection, an error report) must
/// not fail too. Without it, a bomb caught by `pcall` in a VM whose stack
/// had never grown closed the whole VM (LUA_ERRMEM outside any handler).
const LIMIT_RESERVE: usize = 64 * 1024;

/// Blocks up to this size come from the slab. An idle actor's heap is
/// mostly objects of 16–256 bytes (prototypes of small functions, table
/// parts of up to 8 slots), where the global allocator's header and
/// 16-byte rounding cost ~12 bytes a block. 256 measured best once boot
/// collected its garbage at more points (rss150b: −2 kB RSS per idle
/// actor against 128; 192 and 384: −1.4 kB); before that, 256 was +1.4 kB
/// (more of boot's garbage waited on free lists for a block of its size),
/// 1024 +10 kB, 64 +4 kB (fewer blocks saved their header).
const SMALL_MAX: usize = 256;
// `Slab::nonempty` has a bit per size class.
const _: () = assert!(SMALL_MAX / GRAIN < 64);
/// Slab block sizes are multiples of this (LuaJIT's own allocator aligns
/// to 8 too; userdata payloads sit at 8 modulo 16 either way).
const GRAIN: usize = 8;
/// An idle VM's newest chunk is half used on average: 2 KiB chunks left
/// 1.3 kB less per idle actor than 4 KiB ones (docs/performance.md
/// "Actors", a8-rss).
const CHUNK: usize = 2 << 10;
/// 512 KiB of chunks at most.
const SLAB_MAX_CHUNKS: usize = 256;
/// The first chunks' block (see the module's invariants): 44 chunks. A
/// VM's boot fills 45 (2026-12-04, every VM: boot runs the same code);
/// a boot that shrinks below 44 must shrink this too, or its populated
/// pages would be resident for nothing. 32 chunks at first (1,000
/// spawns: −2% CPU per spawn against none, docs/performance.md
/// "spawn-boot"); 44 saves the rest of boot's chunk allocations and page
/// faults ("spawnboot").
const REGION: usize = 88 << 10;
/// Room in `Slab::chunks` (the chunks outside the region) from the start:
/// an idle worker has ~28 of them (~145 kB in all), so its list is never
/// reallocated on the spawner's thread, where the block (born in the
/// nursery's glibc arena) took that arena's lock against the nursery's own
/// allocations: 130 futex sleeps per 1,000 spawns when the list held the
/// region's chunks too and grew from 64 to 128 (docs/performance.md
/// "arenas").
const CHUNKS_AT_FIRST: usize = 48;

/// The small-block part of a VM heap (see the module's invariants).
struct Slab {
    /// Start addresses of the chunks outside the region, sorted.
    chunks: Vec<usize>,
    /// Next free byte of the newest chunk and the end of that chunk.
    bump: usize,
    end: usize,
    /// Per size class (`size / GRAIN`), the address of the first free
    /// block, whose first word holds the next (0 ends the list).
    free: [usize; SMALL_MAX / GRAIN + 1],
    /// Bit `class` is set when `free[class]` is not empty (finds the
    /// smallest larger free block without a scan).
    nonempty: u64,
    /// The block of the first chunks (0: not made yet, or refused), and
    /// the start of its next chunk not handed out yet.
    region: usize,
    region_next: usize,
    /// Whether the region was tried (a refusal is not tried again).
    region_tried: bool,
}

fn region_layout() -> Layout {
    // Page-aligned, so the populate call covers all of it.
    Layout::from_size_align(REGION, 4096).unwrap()
}

fn chunk_layout() -> Layout {
    // Aligned to GRAIN only: a chunk aligned to its size cost the global
    // allocator more padding than the headers it saves.
    Layout::from_size_align(CHUNK, GRAIN).unwrap()
}

impl Slab {
    fn new() -> Self {
        Self {
            chunks: Vec::with_capacity(CHUNKS_AT_FIRST),
            bump: 0,
            end: 0,
            free: [0; SMALL_MAX / GRAIN + 1],
            nonempty: 0,
            region: 0,
            region_next: 0,
            region_tried: false,
        }
    }

    #[inline(always)]
    fn owns(&self, ptr: usize) -> bool {
        // Most blocks lie in the region: one range check instead of a
        // search (a region of 0 is never made, so this never matches then).
        if self.region != 0 && ptr.wrapping_sub(self.region) < REGION {
            return self.region_next > ptr;
        }
        // The last chunk starting at or before `ptr`.
        let after = self.chunks.partition_point(|&c| c <= ptr);
        after > 0 && ptr - self.chunks[after - 1] < CHUNK
    }

    /// A block of `size` (1..=SMALL_MAX) bytes, or NULL when the slab is
    /// full or the system refused a chunk (the caller falls back).
    fn alloc(&mut self, size: usize) -> *mut u8 {
        let block = self.alloc_at_hand(size);
        if !block.is_null() {
            return block;
        }
        self.alloc_other(size.div_ceil(GRAIN))
    }

    /// `alloc`'s common cases, calling nothing: a free block of the size,
    /// or the newest chunk's next bytes when no larger free block is
    /// waiting (it would be split first); NULL otherwise.
    #[inline(always)]
    fn alloc_at_hand(&mut self, size: usize) -> *mut u8 {
        let class = size.div_ceil(GRAIN);
        let head = self.free[class];
        if head != 0 {
            // SAFETY: `head` is a free slab block of at least GRAIN bytes,
            // whose first word `free_block` wrote.
            let next = unsafe { (head as *const usize).read() };
            self.free[class] = next;
            if next == 0 {
                self.nonempty &= !(1u64 << class);
            }
            return head as *mut u8;
        }
        let rounded = class * GRAIN;
        if self.nonempty >> (class + 1) == 0 && self.end - self.bump >= rounded {
            let block = self.bump;
            self.bump += rounded;
            return block as *mut u8;
        }
        std::ptr::null_mut()
    }

    /// `alloc` of a block of size class `class` when `alloc_at_hand`
    /// found none.
    fn alloc_other(&mut self, class: usize) -> *mut u8 {
        let rounded = class * GRAIN;
        // No free block of this size: split the smallest larger free one
        // before carving new memory. Boot's garbage (freed by the
        // collection that ends boot) then serves the VM's later blocks
        // instead of staying resident in holes of its chunks.
        let larger_classes = self.nonempty >> (class + 1);
        if larger_classes != 0 {
            let larger = class + 1 + larger_classes.trailing_zeros() as usize;
            let head = self.free[larger];
            // SAFETY: as above, `head` is a free slab block of the class
            // `larger`, whose first word `free_block` wrote.
            let next = unsafe { (head as *const usize).read() };
            self.free[larger] = next;
            if next == 0 {
                self.nonempty &= !(1u64 << larger);
            }
            self.free_block(head + rounded, (larger - class) * GRAIN);
            return head as *mut u8;
        }
        if self.end - self.bump < rounded {
            if self.chunk_count() >= SLAB_MAX_CHUNKS {
                return std::ptr::null_mut();
            }
            let chunk = self.new_chunk();
            if chunk == 0 {
                return std::ptr::null_mut();
            }
            // The old chunk's tail serves blocks of its size.
            let tail = self.end - self.bump;
            if tail >= GRAIN {
                self.free_block(self.bump, tail);
            }
            if !self.in_region(chunk) {
                let at = self.chunks.partition_point(|&c| c < chunk);
                self.chunks.insert(at, chunk);
            }
            self.bump = chunk;
            self.end = chunk + CHUNK;
        }
        let block = self.bump;
        self.bump += rounded;
        block as *mut u8
    }

    /// A chunk's start: the region's next one, else a block of the global
    /// allocator; 0 when the system refused.
    fn new_chunk(&mut self) -> usize {
        if !self.region_tried {
            self.region_tried = true;
            // SAFETY: the layout has a non-zero size.
            let region = unsafe { std::alloc::alloc(region_layout()) } as usize;
            if region != 0 {
                // Faults its pages in now, in one call (an error, such as
                // a kernel before 5.14, leaves them to fault one by one).
                // SAFETY: the range is the block just allocated, ours.
                unsafe { libc::madvise(region as *mut c_void, REGION, libc::MADV_POPULATE_WRITE) };
                self.region = region;
                self.region_next = region;
            }
        }
        if self.region != 0 && self.region_next < self.region + REGION {
            let chunk = self.region_next;
            self.region_next += CHUNK;
            return chunk;
        }
        // SAFETY: the layout has a non-zero size.
        unsafe { std::alloc::alloc(chunk_layout()) as usize }
    }

    /// Chunks handed out: the region's and the others.
    fn chunk_count(&self) -> usize {
        (self.region_next - self.region) / CHUNK + self.chunks.len()
    }

    fn in_region(&self, chunk: usize) -> bool {
        self.region != 0 && chunk >= self.region && chunk < self.region + REGION
    }

    /// Puts the slab block at `ptr` (at least `size` bytes) on its free list.
    #[inline(always)]
    fn free_block(&mut self, ptr: usize, size: usize) {
        let class = (size / GRAIN).min(SMALL_MAX / GRAIN);
        if class == 0 {
            return;
        }
        // SAFETY: `ptr` is a slab block of at least GRAIN bytes that Lua no
        // longer uses; its first word becomes the list link.
        unsafe { (ptr as *mut usize).write(self.free[class]) };
        self.free[class] = ptr;
        self.nonempty |= 1u64 << class;
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        for &chunk in &self.chunks {
            // SAFETY: every chunk outside the region came from
            // `alloc(chunk_layout())`; the Lua state that used it has
            // closed (module invariants).
            unsafe { std::alloc::dealloc(chunk as *mut u8, chunk_layout()) };
        }
        if self.region != 0 {
            // SAFETY: the region came from `alloc(region_layout())`; its
            // chunks' state has closed too.
            unsafe { std::alloc::dealloc(self.region as *mut u8, region_layout()) };
        }
    }
}

/// What [`reserve_heap_growth`] asks of the thread's heap at once.
const HEAP_GROWTH: usize = 256 << 10;

/// Lets the calling thread's malloc heap grow once by `HEAP_GROWTH` before
/// a VM is made, instead of a page at a time while it boots. glibc grows a
/// thread's arena (not the main one, and every VM thread's is such) by just
/// the pages a request lacks, each growth one `mprotect` call: ~21 per VM
/// (6,264 for 300 spawns, `strace -c`). A block of `HEAP_GROWTH` taken and
/// freed at once extends the heap in one call and goes back to its free
/// top, which the VM's blocks are then carved from. Its pages are never
/// written (only its first, by the header), so none becomes resident that
/// the VM would not touch: 1,000 spawns, −10 µs CPU per spawn, RSS per
/// idle actor unchanged (docs/performance.md "bootcut"). (The first such
/// block exceeds glibc's initial mmap threshold and is mapped instead;
/// freeing it raises the threshold, glibc's own adaptation, after which
/// they come from the heap.) A refusal changes nothing.
pub(crate) fn reserve_heap_growth() {
    // SAFETY: a block from `malloc` (or NULL, which `free` ignores) freed at
    // once; `black_box` keeps the pair from being optimised away.
    unsafe { libc::free(std::hint::black_box(libc::malloc(HEAP_GROWTH))) }
}

impl VmMemory {
    pub(crate) fn new() -> Box<Self> {
        Box::new(Self {
            used: Cell::new(0),
            limit: Cell::new(0),
            refused: Cell::new(false),
            slab: RefCell::new(Slab::new()),
        })
    }

    /// `used` after growing by `size` bytes, when that stays within the
    /// limit (no limit, or at most `limit`: then the refusal's reserve
    /// closes, as it does for any growth back under the limit); `None`
    /// when it would pass the limit (`vm_alloc_other` decides).
    #[inline(always)]
    fn grows_within_limit(&self, size: usize) -> Option<usize> {
        let used_after = self.used.get().saturating_add(size);
        let limit = self.limit.get();
        if limit == 0 {
            Some(used_after)
        } else if used_after <= limit {
            self.refused.set(false);
            Some(used_after)
        } else {
            None
        }
    }

    /// Accounts for a freed block of `size` bytes.
    #[inline(always)]
    fn shrank_by(&self, size: usize) {
        self.used.set(self.used.get().saturating_sub(size));
        if self.used.get() <= self.limit.get() {
            self.refused.set(false);
        }
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
/// limit) returns NULL instead of aborting, and small blocks come from the
/// VM's slab.
///
/// The two calls boot makes most (a new small block, a slab block freed:
/// ~3,000 a boot) take a short path here that calls nothing; everything
/// else (resizes, large blocks, a new chunk, a growth at the limit) goes
/// to `vm_alloc_other`, kept out of line and called last, so the short
/// path saves no registers.
unsafe extern "C" fn vm_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the `VmMemory` given to `install`, alive while the
    // state is (see `VmMemory::install`).
    let memory = unsafe { &*(ud as *const VmMemory) };
    if ptr.is_null() {
        // 1..=SMALL_MAX bytes, within the limit: the slab's next block.
        if nsize.wrapping_sub(1) < SMALL_MAX {
            if let Some(used_after) = memory.grows_within_limit(nsize) {
                let block = memory.slab.borrow_mut().alloc_at_hand(nsize);
                if !block.is_null() {
                    memory.used.set(used_after);
                    return block as *mut c_void;
                }
            }
        }
    } else if nsize == 0 {
        let mut slab = memory.slab.borrow_mut();
        if slab.owns(ptr as usize) {
            slab.free_block(ptr as usize, osize.div_ceil(GRAIN) * GRAIN);
            drop(slab);
            memory.shrank_by(osize);
            return std::ptr::null_mut();
        }
    }
    // SAFETY: the caller's arguments, passed on unchanged.
    unsafe { vm_alloc_other(memory, ptr, osize, nsize) }
}

/// `vm_alloc` for every call its short path does not serve (the same
/// contract; also serves those, with the same result).
#[inline(never)]
unsafe fn vm_alloc_other(
    memory: &VmMemory,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    let mut slab = memory.slab.borrow_mut();
    let in_slab = !ptr.is_null() && slab.owns(ptr as usize);
    if nsize == 0 {
        if in_slab {
            slab.free_block(ptr as usize, osize.div_ceil(GRAIN) * GRAIN);
        } else if !ptr.is_null() {
            if let Some(old) = layout(osize) {
                // SAFETY: LuaJIT hands back a block it got from this
                // allocator (or mlua's, same global allocator and layout)
                // with its size `osize`.
                unsafe { std::alloc::dealloc(ptr as *mut u8, old) };
            }
        }
        if !ptr.is_null() {
            memory.shrank_by(osize);
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
        let reserve = if memory.refused.get() {
            LIMIT_RESERVE
        } else {
            0
        };
        if used_after > limit.saturating_add(reserve) {
            memory.refused.set(true);
            return std::ptr::null_mut();
        }
    } else if used_after <= limit {
        memory.refused.set(false);
    }
    if in_slab && nsize.div_ceil(GRAIN) <= osize.div_ceil(GRAIN) {
        // Shrinking in place: the block keeps its slot; when freed it goes
        // to the (smaller or equal) list of its new size.
        memory.used.set(used_after);
        return ptr;
    }
    let small = if nsize <= SMALL_MAX {
        slab.alloc(nsize)
    } else {
        std::ptr::null_mut()
    };
    let new_ptr = if !small.is_null() {
        if !ptr.is_null() {
            // SAFETY: both blocks are live and distinct; the old one holds
            // `osize` bytes and the new one at least `nsize`.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr as *const u8, small, osize.min(nsize));
            }
            if in_slab {
                slab.free_block(ptr as usize, osize.div_ceil(GRAIN) * GRAIN);
            } else if let Some(old) = layout(osize) {
                // SAFETY: a block of the global allocator with size `osize`,
                // its contents copied.
                unsafe { std::alloc::dealloc(ptr as *mut u8, old) };
            }
        }
        small
    } else if ptr.is_null() {
        // SAFETY: `new_layout` has a non-zero size.
        unsafe { std::alloc::alloc(new_layout) }
    } else if in_slab {
        // Growing out of the slab (or the slab is full): a new block.
        // SAFETY: `new_layout` has a non-zero size.
        let grown = unsafe { std::alloc::alloc(new_layout) };
        if !grown.is_null() {
            // SAFETY: distinct live blocks; the old one holds `osize` bytes,
            // fewer than `nsize` (shrinking returned above).
            unsafe { std::ptr::copy_nonoverlapping(ptr as *const u8, grown, osize) };
            slab.free_block(ptr as usize, osize.div_ceil(GRAIN) * GRAIN);
        }
        grown
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

    #[test]
    fn after_a_refusal_the_reserve_serves_until_back_under_the_limit() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        memory.set_limit(Some(4096));
        // SAFETY: `ud` is a live VmMemory; blocks are freed with their sizes.
        unsafe {
            let a = vm_alloc(ud, std::ptr::null_mut(), 0, 4000);
            assert!(!a.is_null());
            assert!(
                vm_alloc(ud, std::ptr::null_mut(), 0, 1000).is_null(),
                "past the limit: refused"
            );
            let b = vm_alloc(ud, std::ptr::null_mut(), 0, 1000);
            assert!(!b.is_null(), "the reserve serves the next growth");
            let huge = vm_alloc(ud, std::ptr::null_mut(), 0, LIMIT_RESERVE);
            assert!(huge.is_null(), "never past the limit plus the reserve");
            vm_alloc(ud, b, 1000, 0);
            vm_alloc(ud, a, 4000, 0);
            // back under the limit: the reserve is closed again
            let a = vm_alloc(ud, std::ptr::null_mut(), 0, 4000);
            assert!(!a.is_null());
            assert!(vm_alloc(ud, std::ptr::null_mut(), 0, 1000).is_null());
            vm_alloc(ud, a, 4000, 0);
            assert_eq!(memory.used.get(), 0);
        }
    }

    /// Small blocks take `vm_alloc`'s short path: at the limit it must
    /// refuse, serve the reserve after a refusal, and close the reserve
    /// once frees bring the heap back under, as the long path does.
    #[test]
    fn small_blocks_keep_the_limit_and_its_reserve() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        memory.set_limit(Some(4 * SMALL_MAX));
        // SAFETY: `ud` is a live VmMemory; blocks are freed with their sizes.
        unsafe {
            let full: Vec<_> = (0..4)
                .map(|_| vm_alloc(ud, std::ptr::null_mut(), 0, SMALL_MAX))
                .collect();
            assert!(full.iter().all(|p| !p.is_null()));
            assert_eq!(memory.used.get(), 4 * SMALL_MAX);
            assert!(
                vm_alloc(ud, std::ptr::null_mut(), 0, 8).is_null(),
                "one byte past the limit: refused"
            );
            assert_eq!(memory.used.get(), 4 * SMALL_MAX, "a refusal takes nothing");
            let reserve = vm_alloc(ud, std::ptr::null_mut(), 0, 8);
            assert!(!reserve.is_null(), "the reserve serves the next growth");
            assert!(memory.slab.borrow().owns(reserve as usize));
            // Back under the limit through the short path's free: the
            // reserve closes.
            vm_alloc(ud, reserve, 8, 0);
            vm_alloc(ud, full[0], SMALL_MAX, 0);
            assert!(!memory.refused.get());
            let again = vm_alloc(ud, std::ptr::null_mut(), 0, SMALL_MAX);
            assert!(!again.is_null(), "exactly at the limit is allowed");
            assert!(vm_alloc(ud, std::ptr::null_mut(), 0, 8).is_null());
            vm_alloc(ud, again, SMALL_MAX, 0);
            for &p in &full[1..] {
                vm_alloc(ud, p, SMALL_MAX, 0);
            }
            assert_eq!(memory.used.get(), 0);
        }
    }

    fn vm_ptr(memory: &VmMemory) -> *mut c_void {
        memory as *const VmMemory as *mut c_void
    }

    #[test]
    fn small_blocks_come_from_the_slab_and_are_reused() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        // SAFETY: `ud` is a live VmMemory; blocks are freed with their sizes.
        unsafe {
            let a = vm_alloc(ud, std::ptr::null_mut(), 0, 40) as *mut u8;
            let b = vm_alloc(ud, std::ptr::null_mut(), 0, 40) as *mut u8;
            assert!(memory.slab.borrow().owns(a as usize));
            assert_eq!(b as usize - a as usize, 40, "no header between blocks");
            // a freed block serves the next block of its size class
            vm_alloc(ud, a as *mut c_void, 40, 0);
            let c = vm_alloc(ud, std::ptr::null_mut(), 0, 37) as *mut u8;
            assert_eq!(c, a);
            // large blocks come from the global allocator
            let big = vm_alloc(ud, std::ptr::null_mut(), 0, SMALL_MAX + 1);
            assert!(!memory.slab.borrow().owns(big as usize));
            vm_alloc(ud, big, SMALL_MAX + 1, 0);
            vm_alloc(ud, b as *mut c_void, 40, 0);
            vm_alloc(ud, c as *mut c_void, 37, 0);
            assert_eq!(memory.used.get(), 0);
        }
    }

    #[test]
    fn a_larger_free_block_is_split_before_new_memory_is_carved() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        // SAFETY: `ud` is a live VmMemory; blocks are freed with their sizes.
        unsafe {
            let a = vm_alloc(ud, std::ptr::null_mut(), 0, 48) as *mut u8;
            let fence = vm_alloc(ud, std::ptr::null_mut(), 0, 48) as *mut u8;
            vm_alloc(ud, a as *mut c_void, 48, 0);
            // no free 24-byte block: the 48-byte one is split in two
            let b = vm_alloc(ud, std::ptr::null_mut(), 0, 24) as *mut u8;
            assert_eq!(b, a);
            let c = vm_alloc(ud, std::ptr::null_mut(), 0, 20) as *mut u8;
            assert_eq!(
                c as usize,
                a as usize + 24,
                "the rest serves the next block"
            );
            // nothing free any more: new memory after the fence
            let d = vm_alloc(ud, std::ptr::null_mut(), 0, 24) as *mut u8;
            assert_eq!(d as usize, fence as usize + 48);
            // both halves written and read back intact
            for (p, n, v) in [(b, 24, 1u8), (c, 20, 2), (d, 24, 3)] {
                std::ptr::write_bytes(p, v, n);
            }
            assert!((0..24).all(|i| *b.add(i) == 1));
            assert!((0..20).all(|i| *c.add(i) == 2));
            for (p, n) in [(b, 24), (c, 20), (d, 24), (fence, 48)] {
                vm_alloc(ud, p as *mut c_void, n, 0);
            }
            assert_eq!(memory.used.get(), 0);
        }
    }

    #[test]
    fn resizing_across_slab_and_global_keeps_the_contents() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        // SAFETY: as above; every resize passes the block's current size.
        unsafe {
            // a block from before the switch (the global allocator)
            let pre = std::alloc::alloc(layout(300).unwrap());
            for i in 0..300 {
                *pre.add(i) = i as u8;
            }
            // shrinking it moves it into the slab
            let small = vm_alloc(ud, pre as *mut c_void, 300, 100) as *mut u8;
            assert!(memory.slab.borrow().owns(small as usize));
            for i in 0..100 {
                assert_eq!(*small.add(i), i as u8);
            }
            // shrinking a slab block keeps it in place
            let same = vm_alloc(ud, small as *mut c_void, 100, 60) as *mut u8;
            assert_eq!(same, small);
            // growing it past SMALL_MAX moves it out
            let grown = vm_alloc(ud, same as *mut c_void, 60, 1000) as *mut u8;
            assert!(!memory.slab.borrow().owns(grown as usize));
            for i in 0..60 {
                assert_eq!(*grown.add(i), i as u8);
            }
            vm_alloc(ud, grown as *mut c_void, 1000, 0);
            assert_eq!(memory.used.get(), 0);
        }
    }

    #[test]
    fn the_first_chunks_are_the_region_then_chunks_of_their_own() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        let per_chunk = CHUNK / SMALL_MAX;
        let in_region = REGION / CHUNK;
        let mut blocks = Vec::new();
        // SAFETY: as above.
        unsafe {
            for i in 0..(in_region + 3) * per_chunk {
                let p = vm_alloc(ud, std::ptr::null_mut(), 0, SMALL_MAX) as *mut u8;
                assert!(memory.slab.borrow().owns(p as usize));
                // Writable, and its own: fill it with its number.
                std::ptr::write_bytes(p, i as u8, SMALL_MAX);
                blocks.push(p);
            }
            let slab = memory.slab.borrow();
            assert_eq!(slab.chunk_count(), in_region + 3);
            assert_eq!(
                slab.chunks.len(),
                3,
                "only the chunks beyond the region are listed"
            );
            assert!(slab.chunks.iter().all(|&c| !slab.in_region(c)));
            drop(slab);
            for (i, &p) in blocks.iter().enumerate() {
                assert!((0..SMALL_MAX).all(|k| *p.add(k) == i as u8), "block {i}");
            }
            for p in blocks {
                vm_alloc(ud, p as *mut c_void, SMALL_MAX, 0);
            }
            assert_eq!(memory.used.get(), 0);
        }
        // Dropping frees the region once and the other chunks each.
        drop(memory);
    }

    /// The reservation is freed at once: taken many times over, it leaves
    /// nothing in use (a leak would show as 64 MiB more).
    #[cfg(target_env = "gnu")]
    #[test]
    fn reserving_heap_growth_keeps_nothing() {
        let in_use = || {
            // SAFETY: `mallinfo2` only reads the allocator's statistics.
            let m = unsafe { libc::mallinfo2() };
            m.uordblks + m.hblkhd
        };
        let before = in_use();
        for _ in 0..256 {
            reserve_heap_growth();
        }
        let after = in_use();
        assert!(
            after < before + 16 * HEAP_GROWTH,
            "in use grew from {before} to {after}"
        );
    }

    /// `owns` answers region addresses without searching `chunks`: it
    /// must agree with the search everywhere, in particular on the
    /// region's part not handed out yet and on chunks outside it.
    #[test]
    fn owns_agrees_with_the_chunk_list_in_and_beyond_the_region() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        let in_region = REGION / CHUNK;
        let mut blocks = Vec::new();
        // Every chunk handed out, the region's included, searched.
        let by_search = |slab: &Slab, ptr: usize| {
            let mut all: Vec<usize> = (slab.region..slab.region_next).step_by(CHUNK).collect();
            all.extend(&slab.chunks);
            all.sort_unstable();
            let after = all.partition_point(|&c| c <= ptr);
            after > 0 && ptr - all[after - 1] < CHUNK
        };
        // SAFETY: as above.
        unsafe {
            // Half the region handed out, then (below) all of it and more.
            for round in [in_region / 2, in_region + 2] {
                while memory.slab.borrow().chunk_count() < round {
                    blocks.push(vm_alloc(ud, std::ptr::null_mut(), 0, SMALL_MAX));
                }
                let slab = memory.slab.borrow();
                assert_ne!(slab.region, 0);
                let mut probes = vec![
                    slab.region - 1,
                    slab.region_next - 1,
                    slab.region_next,
                    slab.region + REGION - 1,
                    slab.region + REGION,
                ];
                for &c in &slab.chunks {
                    probes.extend([c, c + CHUNK - 1, c + CHUNK]);
                }
                for &p in &blocks {
                    probes.push(p as usize);
                }
                for p in probes {
                    assert_eq!(slab.owns(p), by_search(&slab, p), "address {p:#x}");
                }
                // The part of the region not handed out yet is not the slab's.
                if slab.region_next < slab.region + REGION {
                    assert!(!slab.owns(slab.region_next));
                }
            }
            for p in blocks {
                vm_alloc(ud, p, SMALL_MAX, 0);
            }
            assert_eq!(memory.used.get(), 0);
        }
    }

    #[test]
    fn a_full_slab_falls_back_to_the_global_allocator() {
        let memory = VmMemory::new();
        let ud = vm_ptr(&memory);
        let per_chunk = CHUNK / SMALL_MAX;
        let mut blocks = Vec::new();
        // SAFETY: as above.
        unsafe {
            for _ in 0..SLAB_MAX_CHUNKS * per_chunk {
                let p = vm_alloc(ud, std::ptr::null_mut(), 0, SMALL_MAX);
                assert!(memory.slab.borrow().owns(p as usize));
                blocks.push(p);
            }
            assert_eq!(memory.slab.borrow().chunk_count(), SLAB_MAX_CHUNKS);
            let extra = vm_alloc(ud, std::ptr::null_mut(), 0, 16);
            assert!(!extra.is_null());
            assert!(!memory.slab.borrow().owns(extra as usize));
            vm_alloc(ud, extra, 16, 0);
            for p in blocks {
                vm_alloc(ud, p, SMALL_MAX, 0);
            }
            assert_eq!(memory.used.get(), 0);
        }
    }
}
