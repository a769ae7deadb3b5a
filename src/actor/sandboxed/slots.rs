//! Slots of a sandboxed VM's fixed-file table (docs/guide/sandboxes.md,
//! "How capabilities flow"). Slots 0–2 are the control socket and stdio;
//! the upper half, `luring_sandbox::ring::host_slots`, is where the host's
//! ring installs capabilities (`MsgRingSendFd`, the kernel picks the slot).
//!
//! Invariant: a slot is cleared only through [`clear_slot`], by whoever owns
//! it (for a received capability: the last [`crate::executor::OpFd`]
//! reference to it, so never while an op still names it).

use std::os::fd::RawFd;

/// Empties `slot` of the table of the ring `ring_fd`
/// (`IORING_REGISTER_FILES_UPDATE` with fd -1, a register op the sandbox's
/// ring allows; `IORING_OP_CLOSE` refuses fixed files there).
pub(crate) fn clear_slot(ring_fd: RawFd, slot: u32) -> std::io::Result<()> {
    let fds: [RawFd; 1] = [-1];
    let update = libc_files_update {
        offset: slot,
        resv: 0,
        fds: fds.as_ptr() as u64,
    };
    // SAFETY: `update` and the one-element array it points to are live for
    // the call; the kernel only reads them.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            luring_sandbox::ring::IORING_REGISTER_FILES_UPDATE,
            &update as *const libc_files_update,
            1,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `struct io_uring_files_update` (linux/io_uring.h).
#[repr(C)]
#[allow(non_camel_case_types)]
struct libc_files_update {
    offset: u32,
    resv: u32,
    fds: u64,
}
