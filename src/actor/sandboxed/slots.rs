//! Slots of a sandboxed VM's fixed-file table that the sandbox fills
//! itself (LOCAL installs: a granted path it opens, a loopback socket it
//! makes).
//!
//! Invariants:
//! - LOCAL slots are `[FIRST_CAPABILITY_SLOT, fixed_files / 2)` (below
//!   them: the control socket and stdio, filled at start); the upper
//!   half is the kernel's file-alloc range, where the host's ring installs
//!   capabilities (`MsgRingSendFd` with `IORING_FILE_INDEX_ALLOC`). The two
//!   never pick the same slot.
//! - A descriptor the sandbox opens by syscall (`openat`, `socket`,
//!   `accept` results) is put by [`install_local`] in a free LOCAL slot
//!   (`IORING_REGISTER_FILES_UPDATE`), where ring ops reach it. The
//!   [`OwnedSlot`] keeps the plain fd as well, for the calls that are not
//!   ring ops (`bind`, `listen`, socket options, `lseek`); both name the
//!   sandbox's own file, so keeping it grants nothing more. Both go
//!   together.
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
        _ => Err(io::Error::other(
            "IORING_REGISTER_FILES_UPDATE updated no slot",
        )),
    }
}

/// Puts `fd` (a reference to its file, not the number) in slot `slot` of
/// `ring_fd`'s fixed-file table, replacing what was there.
pub(crate) fn fill_slot(ring_fd: RawFd, slot: u32, fd: RawFd) -> io::Result<()> {
    update_slot(ring_fd, slot, fd)
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
    /// The same file as a plain fd (closed after the slot is cleared).
    fd: OwnedFd,
}

impl OwnedSlot {
    pub fn index(&self) -> u32 {
        self.slot
    }

    /// The plain fd, for calls that are not ring ops.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
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

/// Installs `fd` in a free LOCAL slot of `ring_fd`: `EMFILE` when every
/// LOCAL slot is taken, `EPERM` outside a sandbox (`fd` is closed then).
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
    Ok(OwnedSlot { ring_fd, slot, fd })
}

/// `fd` as the object it becomes: a LOCAL slot on a sandboxed VM's ring
/// (which reaches nothing else), the fd itself elsewhere.
pub(crate) fn adopt(lua: &mlua::Lua, fd: OwnedFd) -> mlua::Result<crate::executor::OpFd> {
    use crate::executor::OpFd;
    let ring_fd = crate::actor::vm::with_state(lua, |st| {
        st.executor.is_fixed_only().then(|| st.executor.ring_fd())
    })?;
    match ring_fd {
        None => Ok(OpFd::owned(fd)),
        Some(ring_fd) => install_local(ring_fd, fd)
            .map(|slot| OpFd::Slot(std::rc::Rc::new(slot)))
            .map_err(|e| crate::modules::error::ErrorCode::from_io(&e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_slots_are_the_lower_half_past_stdio_and_come_back() {
        let mut l = LocalSlots::new(10);
        assert_eq!(l.take(), Some(4));
        assert_eq!(l.take(), None);
        l.free.push(4);
        assert_eq!(l.take(), Some(4));
        let mut l = LocalSlots::new(64);
        let all: Vec<u32> = std::iter::from_fn(|| l.take()).collect();
        // Never the control socket (0), stdout (1), stderr (2), stdin (3)
        // nor the host's half (32..64).
        assert_eq!(all, (4..32).collect::<Vec<_>>());
        // A table too small for any LOCAL slot hands none out.
        assert_eq!(LocalSlots::new(8).take(), None);
    }
}
