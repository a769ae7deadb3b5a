//! Slots of a sandboxed VM's fixed-file table that the sandbox fills
//! itself (LOCAL installs: a granted path it opens, a loopback socket it
//! makes).
//!
//! Invariants:
//! - LOCAL slots are `[FIRST_CAPABILITY_SLOT, fixed_files / 2)`; the upper
//!   half is the kernel's file-alloc range, where the host's ring installs
//!   capabilities (`MsgRingSendFd` with `IORING_FILE_INDEX_ALLOC`). The two
//!   never pick the same slot.
//! - A descriptor the sandbox opens by syscall lives as a plain fd only
//!   until [`install_local`] put it in a free LOCAL slot
//!   (`IORING_REGISTER_FILES_UPDATE`); the plain fd is then closed, so the
//!   slot is the only way to reach the file.
//! - An [`OwnedSlot`] is the one owner of its slot: when the last
//!   reference goes (ops in flight hold clones, see `OpFd::Slot`) the slot
//!   is cleared (fd -1) and only then handed out again, so an op never
//!   reaches a file that replaced the one it was given.

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::FIRST_CAPABILITY_SLOT;

/// `IORING_REGISTER_FILES_UPDATE`.
const REGISTER_FILES_UPDATE: libc::c_uint = 6;

/// Puts `fd` (-1: nothing) in slot `slot` of `ring_fd`'s fixed-file table.
fn update_slot(ring_fd: RawFd, slot: u32, fd: RawFd) -> io::Result<()> {
    let fds = [fd];
    // struct io_uring_rsrc_update { u32 offset; u32 resv; u64 data; }
    #[repr(C)]
    struct RsrcUpdate {
        offset: u32,
        resv: u32,
        data: u64,
    }
    let update = RsrcUpdate {
        offset: slot,
        resv: 0,
        data: fds.as_ptr() as u64,
    };
    // SAFETY: the kernel reads `update` and the one fd it points to, both
    // alive for the call; no memory is written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring_fd,
            REGISTER_FILES_UPDATE,
            &update as *const RsrcUpdate,
            1 as libc::c_uint,
        )
    };
    match r {
        1 => Ok(()),
        r if r < 0 => Err(io::Error::last_os_error()),
        _ => Err(io::Error::other("IORING_REGISTER_FILES_UPDATE updated no slot")),
    }
}

/// Empties slot `slot` of `ring_fd`'s fixed-file table (the file closes
/// once no op in flight holds it).
pub(crate) fn clear_slot(ring_fd: RawFd, slot: u32) -> io::Result<()> {
    update_slot(ring_fd, slot, -1)
}

/// The free LOCAL slots of this process's sandboxed ring.
pub(crate) struct LocalSlots {
    /// Never handed out yet: `next..end`.
    next: u32,
    end: u32,
    /// Handed back (cleared).
    free: Vec<u32>,
}

impl LocalSlots {
    pub(crate) fn new(fixed_files: u32) -> Self {
        LocalSlots {
            next: FIRST_CAPABILITY_SLOT,
            end: (fixed_files / 2).max(FIRST_CAPABILITY_SLOT),
            free: Vec::new(),
        }
    }

    fn take(&mut self) -> Option<u32> {
        if let Some(slot) = self.free.pop() {
            return Some(slot);
        }
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }
}

thread_local! {
    /// Inside a sandbox: its one VM's LOCAL slots (`None` elsewhere).
    static LOCAL: RefCell<Option<LocalSlots>> = const { RefCell::new(None) };
}

/// Called once by the sandboxed VM's thread before it runs Lua code.
pub(crate) fn init_local(fixed_files: u32) {
    LOCAL.with(|l| *l.borrow_mut() = Some(LocalSlots::new(fixed_files)));
}

/// A slot of the ring's table this process filled and owns.
#[derive(Debug)]
pub struct OwnedSlot {
    ring_fd: RawFd,
    slot: u32,
}

impl OwnedSlot {
    pub fn index(&self) -> u32 {
        self.slot
    }
}

impl Drop for OwnedSlot {
    fn drop(&mut self) {
        // If clearing fails (the ring is gone: the VM is ending) the slot
        // is not reused.
        if clear_slot(self.ring_fd, self.slot).is_ok() {
            LOCAL.with(|l| {
                if let Some(l) = l.borrow_mut().as_mut() {
                    l.free.push(self.slot);
                }
            });
        }
    }
}

/// Installs `fd` in a free LOCAL slot of `ring_fd` and closes it: `EMFILE`
/// when every LOCAL slot is taken, `EPERM` outside a sandbox.
pub(crate) fn install_local(ring_fd: RawFd, fd: OwnedFd) -> io::Result<OwnedSlot> {
    let slot = LOCAL
        .with(|l| l.borrow_mut().as_mut().map(LocalSlots::take))
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EPERM))?
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EMFILE))?;
    if let Err(e) = update_slot(ring_fd, slot, fd.as_raw_fd()) {
        LOCAL.with(|l| {
            if let Some(l) = l.borrow_mut().as_mut() {
                l.free.push(slot);
            }
        });
        return Err(e);
    }
    drop(fd);
    Ok(OwnedSlot { ring_fd, slot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_slots_are_the_lower_half_past_stdio_and_come_back() {
        let mut l = LocalSlots::new(8);
        assert_eq!(l.take(), Some(3));
        assert_eq!(l.take(), None);
        l.free.push(3);
        assert_eq!(l.take(), Some(3));
        let mut l = LocalSlots::new(64);
        let all: Vec<u32> = std::iter::from_fn(|| l.take()).collect();
        assert_eq!(all, (3..32).collect::<Vec<_>>());
    }
}
