//! Ring ops of the `system` module (src/modules/system.rs): waiting for a
//! child process through its pidfd.
//!
//! Invariants: those of the executor; the wait's slot owns the pidfd
//! (an `OpFd` clone) and the `siginfo_t` buffer the kernel fills until the
//! completion is reaped. The wait uses `WNOWAIT`: it never reaps, so a
//! cancelled or interrupted wait loses no exit status; the caller collects
//! the status with a non-blocking `waitid` once the op completed with 0.
//! `IORING_OP_WAITID` needs Linux ≥ 6.7.

use std::io;

use io_uring::opcode;

use super::{Executor, OpBuffer, OpFd, OpId, OpSlot};

impl Executor {
    /// `waitid(P_PIDFD, pidfd, WEXITED | WNOWAIT)`: completes with 0 once
    /// the process exited (it stays a zombie until reaped).
    pub(crate) fn wait_exited(&mut self, pidfd: &OpFd) -> io::Result<OpId> {
        let info = vec![0u8; std::mem::size_of::<libc::siginfo_t>()].into_boxed_slice();
        // SAFETY: the SQE names the slot's fd and points into the slot's
        // own buffer, which is a whole `siginfo_t` long.
        unsafe {
            self.submit(OpSlot::buffer(OpBuffer::Owned(info)).on_fd(pidfd), |slot| {
                let (info, _) = slot.buffer_mut_ptr(0);
                opcode::WaitId::new(
                    libc::P_PIDFD,
                    slot.raw_fd() as libc::id_t,
                    libc::WEXITED | libc::WNOWAIT,
                )
                .infop(info.cast::<libc::siginfo_t>().cast_const())
                .build()
            })
        }
    }
}
