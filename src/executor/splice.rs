//! `IORING_OP_SPLICE` (io-finish): moves bytes between two fds, one of them
//! a pipe, without copying them through user memory; `ip.tcp.socket`'s
//! `send_file` splices file → pipe → socket with it.
//!
//! Invariants: those of every op (see `ops.rs`): both fds are [`OpFd`]
//! clones held by the op's slot until its completion is reaped, so neither
//! number can be closed and reused under the kernel. The kernel runs a
//! splice that would block on one of its io-wq workers; cancelling it there
//! interrupts the wait (the op ends with `-EINTR` or `-ECANCELED`).

use std::io;

use io_uring::{opcode, types};

use super::{Executor, OpFd, OpId, OpSlot};

impl Executor {
    /// `splice(input, input_offset, output, -1, len, 0)`; `input_offset`
    /// `None` reads at the input's position (a pipe must have `None`).
    /// An offset beyond `i64::MAX` is `EINVAL` without submitting.
    pub fn splice(
        &mut self,
        input: &OpFd,
        input_offset: Option<u64>,
        output: &OpFd,
        len: u32,
    ) -> io::Result<OpId> {
        let off_in = match input_offset {
            None => -1,
            Some(off) => {
                i64::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?
            }
        };
        // SAFETY: the SQE names the slot's two fds and points at nothing.
        unsafe {
            self.submit(OpSlot::other_fd(input).on_fd(output), |slot| {
                opcode::Splice::new(
                    types::Fd(slot.other_raw_fd()),
                    off_in,
                    types::Fd(slot.raw_fd()),
                    -1,
                    len,
                )
                .build()
            })
        }
    }
}
