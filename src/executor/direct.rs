//! Direct reads: a read of a regular file's cached data without the ring
//! (docs/architecture.md "Direct reads of cached file data").
//!
//! A sequential reader whose data is in the page cache gets nothing from
//! the ring: each read completes during its own `io_uring_enter`, and the
//! ring's submission and completion path costs more kernel time than a
//! plain read (docs/performance.md "io-nowait"). So such a read is first
//! tried as `preadv2(fd, iov, 1, -1, RWF_NOWAIT)`, at the file position as
//! `IORING_OP_READ` with offset -1 reads.
//!
//! Invariants:
//! - It never waits: `RWF_NOWAIT` copies page-cache hits only and answers
//!   `EAGAIN` instead of starting I/O, so "every wait goes through the
//!   ring" still holds.
//! - Only a positive count is taken. Zero (end of file, or a size that
//!   changed) and every error, `EAGAIN` included, mean "not done": nothing
//!   was read, the file position did not move, and the caller submits the
//!   ring op, whose result or error the fiber gets as it always did.
//! - Only on a descriptor the process owns ([`OpFd::Owned`]) that was a
//!   regular file without `O_DIRECT` when the caller checked
//!   ([`direct_readable`]; an open file's type never changes), and never
//!   on a fixed-only (sandboxed) executor: there every file is a slot of
//!   the restricted ring, and the sandbox keeps the ring path. `O_DIRECT`
//!   is left out because `RWF_NOWAIT` does not make its reads skip the
//!   device: they would wait for the disk. (Another holder of the same
//!   open file description could set `O_DIRECT` later with `fcntl`; such
//!   reads would still return the right data, waiting for the disk.)
//! - A file system without `RWF_NOWAIT` support answers `EOPNOTSUPP`:
//!   [`DirectRead::Unsupported`] tells the caller to stop trying on it.
//! - Only when the ring has nothing queued for the kernel and nothing
//!   stashed, so ops other fibers queued are not held back by it; the
//!   caller allows it only where an inline completion would be allowed
//!   (the same budget between two ring turns).

use std::os::fd::AsRawFd;

use super::{Executor, OpFd};
use crate::modules::byte_span::SpanRef;

/// Whether `fd` is a descriptor the process owns of a regular file not
/// opened with `O_DIRECT`: the only kind [`Executor::read_direct`] reads.
pub fn direct_readable(fd: &OpFd) -> bool {
    let OpFd::Owned(owned) = fd else {
        return false;
    };
    // SAFETY: F_GETFL only reads the flags of the fd `owned` keeps open.
    let flags = unsafe { libc::fcntl(owned.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || flags & libc::O_DIRECT != 0 {
        return false;
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is writable memory of a `stat`; the fd stays open while
    // `owned` is borrowed.
    let rc = unsafe { libc::fstat(owned.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: fstat succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// What [`Executor::read_direct`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum DirectRead {
    /// Read this many bytes (> 0); the file position moved by as many.
    Done(usize),
    /// Nothing read, the position unchanged: the ring op must do it.
    UseRing,
    /// As `UseRing`, and this file never reads without waiting
    /// (`EOPNOTSUPP`): do not try it again.
    Unsupported,
}

impl Executor {
    /// Reads cached data of the regular file `fd` at its position into
    /// `span` without the ring (see the module's invariants).
    pub fn read_direct(&mut self, fd: &OpFd, span: &mut SpanRef) -> DirectRead {
        if self.is_fixed_only() || self.has_stashed() || self.sq_pending() {
            return DirectRead::UseRing;
        }
        let OpFd::Owned(owned) = fd else {
            return DirectRead::UseRing;
        };
        let (ptr, len) = span.raw_parts();
        // The ring op reads at most u32::MAX bytes: so does this.
        let len = len.min(u32::MAX as usize);
        if len == 0 {
            return DirectRead::UseRing;
        }
        let iov = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        // SAFETY: `iov` names `len` writable bytes of `span`'s storage,
        // alive for the call (`span` is borrowed); the fd stays open while
        // `owned` is borrowed. The call returns before anything else runs.
        let n = unsafe { libc::preadv2(owned.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        if n > 0 {
            DirectRead::Done(n as usize)
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EOPNOTSUPP)
        {
            DirectRead::Unsupported
        } else {
            DirectRead::UseRing
        }
    }
}
