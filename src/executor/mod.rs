//! One io_uring per actor thread.
//!
//! Invariants:
//! - An `Executor` lives on one thread and is never `Send`; only a
//!   [`RemoteWaker`] crosses threads.
//! - Every operation submitted to the ring has exactly one [`OpSlot`] in
//!   `ops`, which owns everything the kernel may read or write (timespecs,
//!   buffers, fds) until the operation's completion has been reaped.
//!   Slot states: `InFlight` → (`cancel`) `Cancelling` → freed on completion.
//!   A slot is never freed before its completion arrives, whatever the
//!   caller does; the kernel never writes into freed memory.
//! - `Drop` cancels every in-flight op and waits for all their completions
//!   before the owned resources are released.
//! - Completions are returned to the caller as `(OpId, result)` in the order
//!   the ring produced them; cancellation requests and wake-ups have reserved
//!   user_data values and are consumed here.
//! - Cross-thread wake-ups arrive either as an `IORING_OP_MSG_RING` posted by
//!   another ring ([`Executor::post_wake`]) or as a write to the executor's
//!   eventfd, whose read is kept armed on the ring while a `RemoteWaker`
//!   exists. Both surface as [`Reaped::woken`].

mod ops;

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

pub use ops::{OpBuffer, OpId, OpSlot};

use crate::modules::byte_span::SpanRef;

/// user_data of `ASYNC_CANCEL` requests: their own completions are ignored.
const CANCEL_TAG: u64 = u64::MAX;
/// user_data of a wake-up posted by another ring with `MSG_RING`.
pub const WAKE_TAG: u64 = u64::MAX - 1;
/// user_data of the executor's own eventfd read.
const EVENTFD_TAG: u64 = u64::MAX - 2;

/// Ring sizing; the completion queue is larger so that bursts of timers
/// rarely reach the overflow list (which is survived anyway).
const SQ_ENTRIES: u32 = 256;
const CQ_ENTRIES: u32 = 1024;

/// What one turn of the ring produced.
#[derive(Default, Debug)]
pub struct Reaped {
    /// `(op, result)` pairs; `result` is the CQE result (negative errno).
    pub completions: Vec<(OpId, i32)>,
    /// True when another thread or ring asked this executor to look at its
    /// inbox.
    pub woken: bool,
}

/// A handle another thread uses to wake this executor.
#[derive(Clone, Debug)]
pub struct RemoteWaker {
    eventfd: Arc<OwnedFd>,
}

impl RemoteWaker {
    /// Wake the executor from a thread that has no ring of its own.
    pub fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        let n = unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            // EINTR: the write did not happen; any other error is real.
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
            return self.wake();
        }
        Ok(())
    }
}

pub struct Executor {
    ring: IoUring,
    ops: ops::OpTable,
    /// Eventfd plus the 8-byte buffer its armed read fills; created lazily.
    eventfd: Option<(Arc<OwnedFd>, Box<u64>)>,
    eventfd_armed: bool,
    /// Number of SQEs pushed since the last `io_uring_enter`.
    unsubmitted: usize,
    /// Set by `Drop`: no more re-arming of the eventfd read.
    closing: bool,
}

impl Executor {
    pub fn new() -> io::Result<Self> {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .build(SQ_ENTRIES)?;
        tracing::debug!(fd = ring.as_raw_fd(), "executor ring created");
        Ok(Self {
            ring,
            ops: ops::OpTable::default(),
            eventfd: None,
            eventfd_armed: false,
            unsubmitted: 0,
            closing: false,
        })
    }

    /// The ring's fd, the address other rings post `MSG_RING` wake-ups to.
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Operations whose completion has not been reaped yet.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Push an SQE, submitting first when the submission queue is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every pointer in `entry` refers to memory owned by an
            // OpSlot (or by `self`) that outlives the operation's completion.
            let pushed = unsafe { self.ring.submission().push(&entry) };
            if pushed.is_ok() {
                self.unsubmitted += 1;
                return Ok(());
            }
            self.submit_pending()?;
        }
    }

    fn submit_pending(&mut self) -> io::Result<()> {
        loop {
            match self.ring.submit() {
                Ok(_) => {
                    self.unsubmitted = 0;
                    return Ok(());
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                // The kernel holds back submissions while completions sit in
                // the overflow list: the next reap drains them, retry after.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Submit an operation whose SQE is built from the slot's own resources.
    /// The slot is kept until the completion arrives.
    pub fn submit(
        &mut self,
        slot: OpSlot,
        build: impl FnOnce(&mut OpSlot) -> squeue::Entry,
    ) -> io::Result<OpId> {
        let (id, slot) = self.ops.insert(slot);
        let entry = build(slot).user_data(id.to_user_data());
        tracing::trace!(op = id.to_user_data(), opcode = ?entry, "executor: op queued");
        if let Err(e) = self.push(entry) {
            self.ops.remove(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Relative timeout (`IORING_OP_TIMEOUT`); completes with `-ETIME` on
    /// expiry.
    pub fn sleep(&mut self, nanos: u64) -> io::Result<OpId> {
        self.timeout(nanos, types::TimeoutFlags::empty())
    }

    /// Absolute timeout on `CLOCK_MONOTONIC` (or `CLOCK_REALTIME` when
    /// `realtime`).
    pub fn sleep_until(&mut self, nanos: u64, realtime: bool) -> io::Result<OpId> {
        let mut flags = types::TimeoutFlags::ABS;
        if realtime {
            flags |= types::TimeoutFlags::REALTIME;
        }
        self.timeout(nanos, flags)
    }

    fn timeout(&mut self, nanos: u64, flags: types::TimeoutFlags) -> io::Result<OpId> {
        let ts = types::Timespec::new()
            .sec(nanos / 1_000_000_000)
            .nsec((nanos % 1_000_000_000) as u32);
        self.submit(OpSlot::timespec(ts), |slot| {
            opcode::Timeout::new(slot.timespec_ptr())
                .flags(flags)
                .build()
        })
    }

    /// `read(2)` at the file's current position into `buf`.
    pub fn read(&mut self, fd: RawFd, buf: OpBuffer) -> io::Result<OpId> {
        self.submit(OpSlot::buffer(buf), |slot| {
            let (ptr, len) = slot.buffer_mut_ptr();
            opcode::Read::new(types::Fd(fd), ptr, len)
                .offset(u64::MAX)
                .build()
        })
    }

    /// `pread(2)`: read at `offset` into `buf`.
    pub fn read_at(&mut self, fd: RawFd, buf: OpBuffer, offset: u64) -> io::Result<OpId> {
        self.submit(OpSlot::buffer(buf), |slot| {
            let (ptr, len) = slot.buffer_mut_ptr();
            opcode::Read::new(types::Fd(fd), ptr, len)
                .offset(offset)
                .build()
        })
    }

    /// `openat(AT_FDCWD, path, flags | O_CLOEXEC)`. The completion's result is
    /// the new fd, owned by whoever receives the completion.
    pub fn open(&mut self, path: std::ffi::CString, flags: i32) -> io::Result<OpId> {
        self.submit(OpSlot::path_opening_fd(path), |slot| {
            opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), slot.path_ptr())
                .flags(flags | libc::O_CLOEXEC)
                .build()
        })
    }

    /// `openat2(dirfd, path, {flags | O_CLOEXEC, resolve})`: the module
    /// loader opens files beneath the import root with
    /// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` (Linux ≥ 5.6). `dirfd` must
    /// stay open until the completion is reaped (the caller owns it for the
    /// executor's whole life). The result is a new fd owned by the receiver.
    pub fn open_beneath(
        &mut self,
        dirfd: RawFd,
        path: std::ffi::CString,
        flags: i32,
        resolve: u64,
    ) -> io::Result<OpId> {
        let how = types::OpenHow::new()
            .flags((flags | libc::O_CLOEXEC) as u64)
            .resolve(resolve);
        self.submit(OpSlot::path_how_opening_fd(path, how), |slot| {
            opcode::OpenAt2::new(types::Fd(dirfd), slot.path_ptr(), slot.open_how_ptr()).build()
        })
    }

    /// `statx(fd, "", AT_EMPTY_PATH, mask)` into `buf`, which must hold a
    /// whole `struct statx` (else `EINVAL` without submitting).
    pub fn statx_fd(&mut self, fd: RawFd, buf: SpanRef, mask: u32) -> io::Result<OpId> {
        if buf.len() < std::mem::size_of::<libc::statx>() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.submit(OpSlot::statx_into(buf), |slot| {
            let out = slot.statx_ptr();
            opcode::Statx::new(types::Fd(fd), slot.path_ptr(), out)
                .flags(libc::AT_EMPTY_PATH)
                .mask(mask)
                .build()
        })
    }

    /// `close(2)` of an fd the caller owns.
    pub fn close(&mut self, fd: RawFd) -> io::Result<OpId> {
        self.submit(OpSlot::bare(), |_| {
            opcode::Close::new(types::Fd(fd)).build()
        })
    }

    /// `write(2)` at the file's current position from `buf`.
    pub fn write(&mut self, fd: RawFd, buf: OpBuffer) -> io::Result<OpId> {
        self.submit(OpSlot::buffer(buf), |slot| {
            let (ptr, len) = slot.buffer_mut_ptr();
            opcode::Write::new(types::Fd(fd), ptr, len)
                .offset(u64::MAX)
                .build()
        })
    }

    /// Ask the kernel to cancel `id`. The op keeps owning its resources until
    /// its (cancelled or completed) CQE is reaped. Unknown or already
    /// cancelled ids are ignored.
    pub fn cancel(&mut self, id: OpId) -> io::Result<()> {
        if !self.ops.mark_cancelling(id) {
            return Ok(());
        }
        tracing::debug!(op = id.to_user_data(), "executor: cancel requested");
        let entry = opcode::AsyncCancel::new(id.to_user_data())
            .build()
            .user_data(CANCEL_TAG);
        self.push(entry)
    }

    /// A handle other threads use to wake this executor; arms the eventfd
    /// read on first use.
    pub fn remote_waker(&mut self) -> io::Result<RemoteWaker> {
        if self.eventfd.is_none() {
            // SAFETY: eventfd(2) has no memory arguments.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
            let owned = unsafe { OwnedFd::from_raw_fd(fd) };
            self.eventfd = Some((Arc::new(owned), Box::new(0)));
        }
        self.arm_eventfd()?;
        let (fd, _) = self.eventfd.as_ref().expect("eventfd was just created");
        Ok(RemoteWaker {
            eventfd: Arc::clone(fd),
        })
    }

    fn arm_eventfd(&mut self) -> io::Result<()> {
        if self.eventfd_armed || self.closing {
            return Ok(());
        }
        let Some((fd, counter)) = self.eventfd.as_mut() else {
            return Ok(());
        };
        let entry = opcode::Read::new(
            types::Fd(fd.as_raw_fd()),
            (&mut **counter as *mut u64).cast(),
            8,
        )
        .build()
        .user_data(EVENTFD_TAG);
        self.push(entry)?;
        self.eventfd_armed = true;
        Ok(())
    }

    /// Post a wake-up to another executor's ring with `IORING_OP_MSG_RING`.
    pub fn post_wake(&mut self, target_ring_fd: RawFd) -> io::Result<()> {
        let entry = opcode::MsgRingData::new(types::Fd(target_ring_fd), 0, WAKE_TAG, None)
            .build()
            .user_data(CANCEL_TAG);
        self.push(entry)
    }

    /// One turn: submit everything queued and, when `block`, wait for at
    /// least one completion in the same `io_uring_enter`; then reap every
    /// completion available.
    pub fn turn(&mut self, block: bool, out: &mut Reaped) -> io::Result<()> {
        out.completions.clear();
        out.woken = false;
        let waiting_for_something = !self.ops.is_empty() || self.eventfd_armed;
        if block && waiting_for_something {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                // A signal interrupted the wait, or the kernel holds back
                // submissions until overflowed completions are reaped: reap
                // what there is, the next turn waits again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => return Err(e),
            }
            self.unsubmitted = 0;
        } else if self.unsubmitted > 0 || self.ring.submission().cq_overflow() {
            self.submit_pending()?;
        }
        self.reap(out);
        // Completions held in the kernel's overflow list are flushed by an
        // enter with GETEVENTS, which `submit` issues when the flag is set.
        while self.ring.submission().cq_overflow() {
            self.submit_pending()?;
            if self.reap(out) == 0 {
                break;
            }
        }
        if out.woken {
            self.arm_eventfd()?;
        }
        tracing::debug!(
            blocked = block && waiting_for_something,
            completions = out.completions.len(),
            woken = out.woken,
            in_flight = self.ops.len(),
            "executor: turn"
        );
        Ok(())
    }

    fn reap(&mut self, out: &mut Reaped) -> usize {
        let mut n = 0;
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            n += 1;
            match cqe.user_data() {
                CANCEL_TAG => {}
                WAKE_TAG => out.woken = true,
                EVENTFD_TAG => {
                    self.eventfd_armed = false;
                    out.woken = true;
                }
                data => {
                    let id = OpId::from_user_data(data);
                    // A cancelled op's result is delivered too: the fiber
                    // must see a real result that beat the cancellation.
                    if let Some(slot) = self.ops.remove(id) {
                        if self.closing && slot.yields_fd() && cqe.result() >= 0 {
                            // Nobody will receive this fd any more.
                            // SAFETY: the kernel just created this fd for
                            // this op; nothing else knows it.
                            unsafe { libc::close(cqe.result()) };
                        }
                        out.completions.push((id, cqe.result()));
                    } else {
                        tracing::warn!(user_data = data, "completion for an unknown op");
                    }
                }
            }
        }
        n
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if self.ops.is_empty() && !self.eventfd_armed {
            return;
        }
        // Cancel everything, then wait until the kernel has let go of every
        // buffer before the slots are dropped.
        self.closing = true;
        let ids = self.ops.ids();
        for id in ids {
            let _ = self.cancel(id);
        }
        if self.eventfd_armed {
            let entry = opcode::AsyncCancel::new(EVENTFD_TAG)
                .build()
                .user_data(CANCEL_TAG);
            let _ = self.push(entry);
        }
        let mut reaped = Reaped::default();
        while !self.ops.is_empty() || self.eventfd_armed {
            if self.turn(true, &mut reaped).is_err() {
                // The ring is unusable: leak the slots rather than free
                // memory the kernel may still write into.
                std::mem::forget(std::mem::take(&mut self.ops));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod module_ops_tests;
