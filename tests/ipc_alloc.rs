//! The frame decoder allocates in proportion to the bytes it was given,
//! never in proportion to a length, count or depth the bytes claim
//! (SECURITY.md "Huge message": nothing allocated from a claimed length).
//!
//! A counting global allocator measures what one `decode` call requests on
//! this thread; each hostile frame below is small and claims a lot.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use luring::ipc::{decode, FdMode, FrameError, HEADER_LEN, MAGIC, VERSION};

struct Counting;

thread_local! {
    static REQUESTED: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = REQUESTED.try_with(|r| r.set(r.get() + layout.size()));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = REQUESTED.try_with(|r| r.set(r.get() + new_size));
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn frame(flags: u8, fds: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[VERSION, flags, fds, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Bytes requested while decoding `packet`, and the result's error.
fn requested_by_decode(packet: &[u8], mode: FdMode, fds: usize) -> (usize, Option<FrameError>) {
    let before = REQUESTED.with(Cell::get);
    let result = decode(packet, mode, fds);
    let after = REQUESTED.with(Cell::get);
    (after - before, result.err())
}

#[test]
fn decoding_allocates_per_byte_present_not_per_byte_claimed() {
    let fixed = FdMode::FixedSlots { table_size: 1024 };
    let cases: Vec<(&str, Vec<u8>, FdMode)> = vec![
        // array / object claiming the table bound, with 3 bytes present
        ("array claim", frame(0, 0, &[0x07, 0x80, 0x20, 2, 2, 2]), FdMode::ScmRights),
        ("object claim", frame(0, 0, &[0x08, 0x80, 0x20, 0, 2, 0]), FdMode::ScmRights),
        // a string claiming 64 KiB, 2 bytes present
        ("string claim", frame(0, 0, &[0x05, 0x80, 0x80, 0x04, b'a', b'b']), FdMode::ScmRights),
        // claims the bytes can hold, then a bad tag
        (
            "nested claims",
            frame(0, 0, &[0x07, 0x03, 0x07, 0x02, 2, 2, 2, 0xEE]),
            FdMode::ScmRights,
        ),
        // 253 fixed slots claimed, 4 bytes present
        ("slot claim", frame(0x01, 253, &[0, 0, 0, 0]), fixed),
        // 50,000 levels of nesting
        ("deep", frame(0, 0, &[0x07, 0x01].repeat(50_000)), FdMode::ScmRights),
    ];
    for (name, packet, mode) in cases {
        let (bytes, error) = requested_by_decode(&packet, mode, 0);
        assert!(error.is_some(), "{name}: hostile frame accepted");
        // Roughly one decoded value (and one open table) per byte present.
        let bound = 16 * (packet.len() - HEADER_LEN) + 512;
        assert!(
            bytes <= bound,
            "{name}: decoding {} bytes requested {bytes} bytes of memory (bound {bound}); error {error:?}",
            packet.len()
        );
    }
}
