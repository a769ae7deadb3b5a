//! `IORING_OP_SPLICE` (io-finish): moves bytes between two fds, one of them
//! a pipe, without copying them through user memory; `ip.tcp.socket`'s
//! `send_file` splices file → pipe → socket with it.
//!
//! Invariants: those of every op (see `ops.rs`): both fds are [`OpFd`]
//! clones held by the op's slot until its completion is reaped, so neither
//! number can be closed and reused under the kernel. The kernel runs a
//! splice that would block on one of its io-wq workers; cancelling it there
//! interrupts the wait (the op ends with `-EINTR` or `-ECANCELED`).
//! A splice out of a pipe holds the pipe's lock while it waits (for room
//! in a socket), and closing either end of that pipe takes the lock: so a
//! splice out of a pipe also keeps the pipe's other end (`keep`) until its
//! completion, or a close of it (say by a VM's teardown, which closes its
//! objects before its executor cancels their ops) would block the thread
//! until the peer reads.

use std::io;

use io_uring::{opcode, types};

use super::{Executor, OpFd, OpId, OpSlot};

impl Executor {
    /// `splice(input, input_offset, output, -1, len, 0)`; `input_offset`
    /// `None` reads at the input's position (a pipe must have `None`).
    /// `keep` is held open until the completion too (see the module doc).
    /// An offset beyond `i64::MAX` is `EINVAL` without submitting.
    pub fn splice(
        &mut self,
        input: &OpFd,
        input_offset: Option<u64>,
        output: &OpFd,
        len: u32,
        keep: Option<&OpFd>,
    ) -> io::Result<OpId> {
        let off_in = match input_offset {
            None => -1,
            Some(off) => {
                i64::try_from(off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?
            }
        };
        // SAFETY: the SQE names the slot's two fds and points at nothing.
        unsafe {
            self.submit(OpSlot::other_fd(input, keep).on_fd(output), |slot| {
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

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;
    use crate::executor::test_support::await_one as run;

    /// The slot holds both fds: the caller's references can go at once.
    #[test]
    fn splice_moves_bytes_at_an_offset_and_holds_both_fds() {
        let path = std::env::temp_dir().join(format!("luring-splice-{}", std::process::id()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let file = OpFd::owned(std::fs::File::open(&path).unwrap().into());
        std::fs::remove_file(&path).unwrap();
        let (mut reader, writer) = std::io::pipe().unwrap();
        let writer = OpFd::owned(writer.into());
        let mut ex = Executor::new().unwrap();
        let id = ex.splice(&file, Some(3), &writer, 4, None).unwrap();
        drop((file, writer));
        assert_eq!(run(&mut ex, id).result, 4);
        // the slot released the write end with the completion: EOF after
        // the four bytes
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"3456");
    }

    #[test]
    fn an_offset_beyond_i64_is_einval_without_submitting() {
        let (r, w) = std::io::pipe().unwrap();
        let (r, w) = (OpFd::owned(r.into()), OpFd::owned(w.into()));
        let mut ex = Executor::new().unwrap();
        let err = ex.splice(&r, Some(u64::MAX), &w, 1, None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
        assert_eq!(ex.in_flight(), 0);
    }
}
