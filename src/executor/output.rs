//! Ordered output to the process's stdout and stderr through the ring.
//!
//! Invariants:
//! - Everything written to fd 1 or 2 — the runtime's buffered output
//!   (`print`, error reports) and user writes (`system.out:write_some`) —
//!   goes through one FIFO queue, and at most one write of it is in the
//!   kernel at a time, so bytes reach the streams in the order they were
//!   queued, across both streams.
//! - A chunk of runtime output is written completely: a short write
//!   continues from where it stopped, `-EAGAIN` (a non-blocking stream)
//!   waits for `POLLOUT` and retries, `-EINTR` retries. Any other error
//!   (`EPIPE`: nobody reads any more) drops the rest of that chunk, the way a
//!   C program's output to a closed pipe is lost.
//! - A user write is a deferred op (`SlotKind::Deferred`): it has its id and
//!   owns its buffer from the start, but is submitted only when it reaches
//!   the head of the queue; its completion (possibly a short count) goes to
//!   the caller like any other. Cancelling it before that completes it with
//!   `-ECANCELED` and it never runs.
//! - Nothing here pushes SQEs while completions are being dispatched: a
//!   completed chunk only records what comes next, `pump_output` (called by
//!   `turn`) submits it.
//! - Queuing output never aborts for lack of memory: `write_output` then
//!   fails with `ENOMEM` and queues nothing.
//! - The fiber thread never blocks on a full stream while the VM runs, except
//!   when more than [`OUTPUT_BACKLOG_LIMIT`] bytes wait (memory bound), and
//!   at the end (`finish_output`).

use std::collections::VecDeque;
use std::io;

use io_uring::opcode;

use super::{on_target, Executor, OpBuffer, OpFd, OpId, OpSlot, SlotKind, StdStream};

/// Runtime output waiting beyond this size makes the writer wait for the
/// streams (stalling the VM) instead of growing without bound.
pub(crate) const OUTPUT_BACKLOG_LIMIT: usize = 16 << 20;

enum Queued {
    /// Runtime output (adjacent chunks to one stream are merged).
    Bytes { stream: StdStream, data: Vec<u8> },
    /// A deferred user write.
    User(OpId),
}

#[derive(Default)]
pub(crate) struct OutputQueue {
    queue: VecDeque<Queued>,
    /// The op of the queue's head while it is in the kernel.
    active: Option<OpId>,
    /// A partly written runtime chunk to submit again (kind `Output` to
    /// write, `OutputPoll` to wait for room first).
    resume: Option<OpSlot>,
    /// Bytes of runtime output queued or in the kernel.
    backlog: usize,
    /// Test hook: the op whose (empty) write reports `-EAGAIN`.
    fake_eagain: Option<OpId>,
}

impl OutputQueue {
    pub(super) fn is_active(&self, id: OpId) -> bool {
        self.active == Some(id)
    }

    pub(super) fn user_write_done(&mut self) {
        self.active = None;
    }

    fn idle(&self) -> bool {
        self.active.is_none() && self.resume.is_none() && self.queue.is_empty()
    }
}

impl Executor {
    /// The fd ops on `stream` (output included) act on: its fixed slot on
    /// a fixed-only executor.
    pub(super) fn stream_fd(&self, stream: StdStream) -> OpFd {
        if let Some(fixed) = self.fixed_only {
            return OpFd::Fixed(match stream {
                StdStream::In => fixed.stdin,
                StdStream::Out => fixed.stdout,
                StdStream::Err => fixed.stderr,
            });
        }
        #[cfg(test)]
        if let Some(targets) = &self.faults.output_targets {
            return targets[stream as usize - 1].clone();
        }
        OpFd::Std(stream)
    }

    /// Queues runtime output (`print`, error reports) for `stream`, after
    /// everything queued before. With `submit_now` the write is handed to
    /// the kernel at once (a terminal sees each line as it is printed);
    /// otherwise the next `turn` submits it.
    pub fn write_output(
        &mut self,
        stream: StdStream,
        bytes: &[u8],
        submit_now: bool,
    ) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        // The copy may be large: a failed allocation is ENOMEM for the
        // caller (which may write the bytes itself), never an abort.
        let no_memory = |_| io::Error::from_raw_os_error(libc::ENOMEM);
        match self.output.queue.back_mut() {
            Some(Queued::Bytes { stream: s, data }) if *s == stream => {
                data.try_reserve(bytes.len()).map_err(no_memory)?;
                data.extend_from_slice(bytes)
            }
            _ => {
                let mut data = Vec::new();
                data.try_reserve_exact(bytes.len()).map_err(no_memory)?;
                data.extend_from_slice(bytes);
                self.output.queue.try_reserve(1).map_err(no_memory)?;
                self.output.queue.push_back(Queued::Bytes { stream, data })
            }
        }
        self.output.backlog += bytes.len();
        self.pump_output()?;
        if self.output.backlog > OUTPUT_BACKLOG_LIMIT {
            return self.wait_output(OUTPUT_BACKLOG_LIMIT);
        }
        if submit_now && self.sq_pending() {
            self.submit_pending()?;
        }
        Ok(())
    }

    /// Waits until every queued output reached its stream (or failed).
    /// Blocks the thread; other completions are kept for the next `turn`.
    pub fn finish_output(&mut self) -> io::Result<()> {
        self.wait_output(0)?;
        debug_assert!(self.output.idle());
        Ok(())
    }

    /// Bytes of runtime output not yet written.
    pub fn output_backlog(&self) -> usize {
        self.output.backlog
    }

    /// Blocks until at most `limit` bytes of runtime output are pending
    /// (and, for 0, no user write is queued either).
    fn wait_output(&mut self, limit: usize) -> io::Result<()> {
        loop {
            self.pump_output()?;
            let done = if limit == 0 {
                self.output.idle()
            } else {
                self.output.backlog <= limit
            };
            if done {
                return Ok(());
            }
            match self.enter(1) {
                Ok(()) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBADR) => {
                    self.dropped = self.dropped.max(1);
                }
                Err(e) => return Err(e),
            }
            self.reap_into_stash()?;
            self.check_dropped()?;
        }
    }

    /// A user write to stdout or stderr, ordered after all earlier output.
    pub(super) fn write_std_in_order(
        &mut self,
        stream: StdStream,
        buf: OpBuffer,
    ) -> io::Result<OpId> {
        let slot = OpSlot::buffer(buf)
            .on_target(&self.stream_fd(stream))
            .kind(SlotKind::Deferred);
        let Some((id, _)) = self.ops.insert(slot) else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "the executor ran out of operation ids",
            ));
        };
        self.output.queue.push_back(Queued::User(id));
        if let Err(e) = self.pump_output() {
            // If it was not handed to the kernel, it never will be.
            if self
                .ops
                .get_mut(id)
                .is_some_and(|s| s.kind == SlotKind::Deferred)
            {
                self.ops.remove(id);
                self.output
                    .queue
                    .retain(|q| !matches!(q, Queued::User(u) if *u == id));
            }
            return Err(e);
        }
        Ok(id)
    }

    /// Hands the queue's head to the kernel when nothing of it is there.
    pub(super) fn pump_output(&mut self) -> io::Result<()> {
        if self.closing || self.output.active.is_some() {
            return Ok(());
        }
        if let Some(slot) = self.output.resume.take() {
            return self.submit_output_slot(slot);
        }
        while let Some(next) = self.output.queue.pop_front() {
            match next {
                Queued::Bytes { stream, data } => {
                    let slot = OpSlot::buffer(OpBuffer::Owned(data.into_boxed_slice()))
                        .on_target(&self.stream_fd(stream))
                        .kind(SlotKind::Output { stream, offset: 0 });
                    return self.submit_output_slot(slot);
                }
                Queued::User(id) => {
                    // Gone when it was cancelled while queued.
                    let Some(slot) = self.ops.get_mut(id) else {
                        continue;
                    };
                    slot.kind = SlotKind::Plain;
                    let (ptr, len) = slot.buffer_mut_ptr(0);
                    let entry = on_target!(slot, |t| opcode::Write::new(t, ptr, len)
                        .offset(u64::MAX)
                        .build())
                    .user_data(id.to_user_data());
                    if let Err(e) = self.push(entry) {
                        self.ops.remove(id);
                        self.stash.push(super::Completion {
                            id,
                            result: -e.raw_os_error().unwrap_or(libc::EIO),
                            fd: None,
                            output: None,
                        });
                        continue;
                    }
                    self.output.active = Some(id);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Submits a runtime output chunk: its write, or its wait for room.
    fn submit_output_slot(&mut self, slot: OpSlot) -> io::Result<()> {
        let len = slot.buffer_len();
        #[cfg(test)]
        let fake_eagain =
            matches!(slot.kind, SlotKind::Output { .. }) && self.faults.output_eagain > 0;
        #[cfg(test)]
        if fake_eagain {
            self.faults.output_eagain -= 1;
        }
        #[cfg(not(test))]
        let fake_eagain = false;
        let id = match slot.kind {
            // SAFETY: the SQE names one of the standard streams and points
            // into the slot's own buffer.
            SlotKind::Output { offset, .. } => unsafe {
                self.submit(slot, |slot| {
                    let (ptr, n) = slot.buffer_mut_ptr(offset);
                    // (a test's simulated EAGAIN writes nothing)
                    let n = if fake_eagain { 0 } else { n };
                    on_target!(slot, |t| opcode::Write::new(t, ptr, n)
                        .offset(u64::MAX)
                        .build())
                })
            },
            // SAFETY: the SQE names one of the standard streams.
            SlotKind::OutputPoll { .. } => unsafe {
                self.submit(slot, |slot| {
                    on_target!(slot, |t| opcode::PollAdd::new(t, libc::POLLOUT as u32)
                        .build())
                })
            },
            _ => unreachable!("only output slots are resubmitted"),
        };
        match id {
            Ok(id) => {
                self.output.active = Some(id);
                if fake_eagain {
                    self.output.fake_eagain = Some(id);
                }
                Ok(())
            }
            Err(e) => {
                // The chunk is lost with the error that stops the VM.
                self.output.backlog = self.output.backlog.saturating_sub(len);
                Err(e)
            }
        }
    }

    /// A runtime output op completed: note what comes next.
    pub(super) fn output_completed(&mut self, id: OpId, mut slot: OpSlot, result: i32) {
        self.output.active = None;
        let result = if self.output.fake_eagain == Some(id) {
            self.output.fake_eagain = None;
            -libc::EAGAIN
        } else {
            result
        };
        let len = slot.buffer_len();
        let (stream, offset) = match slot.kind {
            SlotKind::Output { stream, offset } | SlotKind::OutputPoll { stream, offset } => {
                (stream, offset)
            }
            _ => unreachable!("only output slots are dispatched here"),
        };
        let writing = matches!(slot.kind, SlotKind::Output { .. });
        let next = match (writing, result) {
            _ if self.closing => None,
            (true, n) if n > 0 && offset + (n as usize) < len => Some(SlotKind::Output {
                stream,
                offset: offset + n as usize,
            }),
            (true, n) if n > 0 => None,
            (true, n) if n == -libc::EAGAIN => {
                tracing::debug!(?stream, "output stream full (EAGAIN): waiting for POLLOUT");
                Some(SlotKind::OutputPoll { stream, offset })
            }
            (true, n) if n == -libc::EINTR => Some(SlotKind::Output { stream, offset }),
            (true, n) => {
                tracing::debug!(?stream, errno = -n, "output to a standard stream lost");
                None
            }
            // Room (or an error the write will report): write again.
            (false, _) => Some(SlotKind::Output { stream, offset }),
        };
        match next {
            Some(kind) => {
                slot.kind = kind;
                self.output.resume = Some(slot);
            }
            None => self.output.backlog = self.output.backlog.saturating_sub(len),
        }
    }
}
