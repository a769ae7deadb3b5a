//! One io_uring per actor thread.
//!
//! Invariants:
//! - An `Executor` lives on one thread and is never `Send`; only a
//!   [`RemoteWaker`] crosses threads.
//! - Every operation submitted to the ring has exactly one `OpSlot` in
//!   `ops`, which owns everything the kernel may read or write (timespecs,
//!   buffers, paths) and the fd it acts on ([`OpFd`]) until the operation's
//!   completion has been reaped. Slot states: `Deferred` (queued behind
//!   earlier output, not submitted) → `InFlight` → (`cancel`) `Cancelling` →
//!   freed on completion. A slot is never freed before its completion
//!   arrives, whatever the caller does; the kernel never writes into freed
//!   memory nor acts on an fd number that was closed and reused.
//! - The only way to hand the kernel an SQE is [`Executor::submit`], an
//!   `unsafe fn` whose caller promises that the SQE points only into the
//!   slot's own resources; the safe methods (one per op) uphold that.
//! - Completions are returned to the caller as [`Completion`]s in the order
//!   the ring produced them, except that each reap puts the receive
//!   streams' deliveries (multishot receive CQEs that go on) before its
//!   other completions, keeping the order within each group: the kernel
//!   orders one op's CQEs, never two ops' (see `reap`). A receive
//!   stream's CQE that goes on while no reader waits makes no completion
//!   (recv_multi.rs "Delivery"). Cancellation requests, wake-ups and the
//!   runtime's own output writes have reserved user_data values or slot
//!   kinds and are consumed here. Completions reaped outside `turn` (while
//!   making room to submit, or while waiting for output) are stashed and
//!   returned by the next `turn`, never lost.
//! - A completion the kernel dropped (its overflow list could not allocate:
//!   the CQ `overflow` counter grew, or `io_uring_enter` said `EBADR`)
//!   poisons the executor: some op will never complete and nobody can tell
//!   which, so every later `turn` fails with [`CompletionsDropped`] instead
//!   of leaving a fiber waiting forever.
//! - `Drop` cancels every in-flight op and waits for all their completions
//!   (after a drop, for a drained NOP that completes only once everything
//!   submitted before it did) before the owned resources are released; if
//!   the ring fails on the way, the resources are leaked, never freed early.
//! - A fixed-only executor ([`Executor::on_restricted_ring`]) runs on a
//!   sandboxed actor's ring, whose restrictions require `IOSQE_FIXED_FILE`
//!   on every SQE: it sets that flag on everything it pushes and refuses,
//!   before anything reaches the kernel, every op that names an fd number
//!   or opens a new fd (`EPERM`); stdout and stderr are fixed slots. The
//!   kernel's restrictions are the protection; the refusal only makes the
//!   error clear and immediate. Path ops (mkdir, unlink, rename, links,
//!   statx) and blocking-pool jobs run there as plain syscalls on the
//!   VM's thread instead (`run_inline`: confined by the sandbox's root,
//!   Landlock and seccomp), their result delivered by a NOP.
//! - Cross-thread wake-ups arrive either as an `IORING_OP_MSG_RING` posted by
//!   another ring ([`Executor::post_wake`]) or as a write to the executor's
//!   eventfd, whose read is kept armed on the ring while a `RemoteWaker`
//!   exists. Both surface as [`Reaped::woken`].
//! - After traffic with another process (a sandbox's frames:
//!   [`Executor::note_traffic`]) a blocking `turn` first submits, then
//!   watches the CQ from user space for up to [`WATCH`] before it sleeps
//!   in `io_uring_enter`. A watch that sees nothing in time sleeps (and
//!   no turn watches until the next traffic); watches that keep failing
//!   (about one in nine or more often, [`Executor::watched`]), or find
//!   only after giving the core away, stop the watching for
//!   [`WATCH_BACKOFF`]. Rings
//!   are made with `COOP_TASKRUN` + `TASKRUN_FLAG` when the kernel has
//!   them: a completion's task work then never interrupts the running
//!   thread; the kernel sets `IORING_SQ_TASKRUN`, and the watch answers it
//!   with an enter with `GETEVENTS`, which runs it. A sleeping thread is
//!   woken as without the flags. Whatever the watch does, completions are
//!   only reaped by `turn` itself, in order.
//! - The ring is made on first use: an executor starts without one (the
//!   process's first executor excepted, so a kernel without a usable
//!   io_uring fails the start-up) and makes it when an op is first pushed
//!   or a ring-only call needs it. Until then every look at the ring
//!   (turns, `has_completions`, the dropped-completion check) sees an
//!   empty one and `ring_fd` is -1: nothing can be in flight. An idle
//!   actor then maps no SQ/CQ pages (8 kB of RSS). A ring that cannot be
//!   made fails that op (errno of `io_uring_setup`) and leaves no slot;
//!   the next op tries again.

// io-nowait: reads of cached file data without the ring
mod direct;
mod ops;
mod output;
// io-net: socket ops
pub mod socket;
// io-fs: the blocking helper pool and the file system ops.
pub(crate) mod blocking;
mod fs;
// system: child processes (io-proc)
mod process;
// io-finish: splice (send_file)
mod splice;
// io-net: multishot receives into a provided buffer ring
pub mod recv_multi;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use io_uring::{opcode, squeue, types, IoUring};

pub use direct::{direct_readable, DirectRead};
pub use ops::{GrantedSlot, OpBuffer, OpFd, OpId, StdStream};
pub(crate) use ops::{OpSlot, SlotKind, Target};
pub use recv_multi::{RecvStream, StreamRead};

/// Builds an SQE on what the slot names: `$t` is bound to a
/// `types::Fd` or a `types::Fixed` (which sets `IOSQE_FIXED_FILE`).
macro_rules! on_target {
    ($slot:expr, |$t:ident| $build:expr) => {
        $crate::executor::on_target!(@at $slot.target(), |$t| $build)
    };
    // `target` read before the slot's resources are borrowed.
    (@at $target:expr, |$t:ident| $build:expr) => {
        match $target {
            $crate::executor::Target::Fd(fd) => {
                let $t = ::io_uring::types::Fd(fd);
                $build
            }
            $crate::executor::Target::Fixed(index) => {
                let $t = ::io_uring::types::Fixed(index);
                $build
            }
        }
    };
}
pub(crate) use on_target;

use crate::modules::byte_span::SpanRef;

/// user_data of `ASYNC_CANCEL` requests and `MSG_RING` posts: their own
/// completions are ignored.
const CANCEL_TAG: u64 = u64::MAX;
/// user_data of a wake-up posted by another ring with `MSG_RING`.
pub(crate) const WAKE_TAG: u64 = u64::MAX - 1;
/// user_data of the executor's own eventfd read.
const EVENTFD_TAG: u64 = u64::MAX - 2;
/// user_data of the drained NOP `Drop` waits for after dropped completions.
const DRAIN_TAG: u64 = u64::MAX - 3;
/// user_data of the `MSG_RING` that installs an fd in another ring's
/// table ([`Executor::send_fd_to_ring`]).
const SEND_FD_TAG: u64 = u64::MAX - 4;
/// user_data of the `FIXED_FD_INSTALL` of [`Executor::fd_of_slot`].
const FD_OF_SLOT_TAG: u64 = u64::MAX - 5;
/// The slot of this ring's own table that an fd passes through on its way
/// to another ring ([`Executor::send_fd_to_ring`]).
const SEND_FD_SLOT: u32 = 0;
/// `IORING_MSG_RING_CQE_SKIP` (linux/io_uring.h): the target ring gets no
/// CQE for a `MSG_RING`.
const IORING_MSG_RING_CQE_SKIP: u32 = 1;

/// Ring sizing. Every actor has a ring, so it starts small (kernel memory
/// and set-up time grow with it): a full SQ is submitted and refilled
/// (`push`), and CQEs beyond the CQ wait in the kernel's overflow list
/// (`NODROP`), which a turn flushes. The CQ is larger than the SQ so that
/// bursts of timers rarely get there; 128 entries (not 256) keep the CQ
/// ring in one page: −4 kB of RSS per actor, and a burst beyond it costs
/// only a flush of the overflow list (tests.rs, tests/lua/time/sleep_burst.lua).
const SQ_ENTRIES: u32 = 64;
const CQ_ENTRIES: u32 = 128;
/// How long a blocking turn after traffic with a sandbox watches the CQ
/// before it sleeps: a peer on another core answers within a few µs.
const WATCH: std::time::Duration = crate::actor::host::SPIN;
/// After watches that kept finding nothing, none for this long: the peer
/// is slow or the machine busy, and a sleep costs less than watching in
/// vain.
const WATCH_BACKOFF: std::time::Duration = std::time::Duration::from_millis(10);
/// What a vain watch adds to `watch_strikes` (a watch that found its
/// completion takes one off); at [`WATCH_STRIKES_MAX`] the back-off
/// starts. So a lone stall (an interrupt, the peer's collection) costs
/// one sleep, not 10 ms of them (sbx-pp3: 7-16 such per 21,000 round
/// trips at `chrt -f 10`, each then ~300 round trips slept through, a
/// quarter of the run), while watches failing about one time in nine or
/// more often (a slow peer, a busy machine) add up and back off: two in
/// a row at once.
const WATCH_STRIKE: u32 = 8;
/// Strikes that start the back-off.
const WATCH_STRIKES_MAX: u32 = 2 * WATCH_STRIKE;
/// Spins (of 64 looks each, ~1 µs) before a watch starts yielding.
const WATCH_YIELD_AFTER: u32 = 8;
/// A yield that took this long gave the core away: another task ran.
/// (One that finds nothing else to run took 0.22 µs on average here, and
/// ≥ 4 µs once in ~10,000 calls: performance.md, sbx-pp3.)
const WATCH_CORE_LOST: std::time::Duration = std::time::Duration::from_micros(4);

/// `IORING_RECVSEND_POLL_FIRST` (include/uapi/linux/io_uring.h, Linux
/// 5.19), in a receive's `ioprio`: the socket is assumed empty, so the
/// poll is armed without a receive first (the crate keeps it private).
const RECVSEND_POLL_FIRST: u16 = 1;

/// What a watch of the CQ (`Executor::watch_completions`) saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Watched {
    /// A completion, in time, without giving the core away.
    Found,
    /// A completion in time, but only after a yield gave the core away:
    /// to the peer on the same core (which then answered) or to another
    /// task (a busy machine). Sleeping would have done as well for less
    /// CPU: it counts against watching, like finding nothing.
    FoundLate,
    /// Nothing in time.
    Nothing,
}

/// The fixed-file slots a fixed-only executor reads standard input from
/// and writes standard output and standard error to (installed before
/// the executor starts): an op on `OpFd::Std` acts on the stream's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedStdio {
    pub stdin: u32,
    pub stdout: u32,
    pub stderr: u32,
}

/// Consecutive `EBUSY` answers, with nothing left to reap, after which
/// submitting gives up instead of spinning.
const EBUSY_RETRIES: u32 = 64;

/// One reaped operation.
#[derive(Debug)]
pub struct Completion {
    pub id: OpId,
    /// The CQE result (negative errno on failure).
    pub result: i32,
    /// For an op that opens an fd (`open`, `open_beneath`) and succeeded:
    /// the new fd, now owned by whoever receives this completion (closed if
    /// dropped).
    pub fd: Option<OwnedFd>,
    /// For a blocking-pool job that succeeded (`run_blocking`): what the
    /// job returned, owned by whoever receives this completion.
    pub output: Option<blocking::JobOutput>,
}

impl Completion {
    /// A completion that hands over nothing but its result.
    #[inline(always)]
    fn bare(id: OpId, result: i32) -> Self {
        Completion {
            id,
            result,
            fd: None,
            output: None,
        }
    }
}

/// What one turn of the ring produced.
#[derive(Default, Debug)]
pub struct Reaped {
    /// Completions in the order the ring produced them, but each reap's
    /// receive-stream deliveries first (see the module's invariants).
    pub completions: Vec<Completion>,
    /// True when another thread or ring asked this executor to look at its
    /// inbox.
    pub woken: bool,
}

/// The kernel dropped completions: the executor cannot go on.
#[derive(Debug, thiserror::Error)]
#[error(
    "the kernel dropped {count} io_uring completion(s) because it could not allocate \
     memory for its overflow list; the operations they belonged to can no longer be \
     told apart, so this VM stops (free memory, or run fewer concurrent operations)"
)]
pub struct CompletionsDropped {
    pub count: u32,
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
        loop {
            // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
            let n = unsafe {
                libc::write(
                    self.eventfd.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            // EINTR: the write did not happen; any other error is real.
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

/// Failures a test injects into the ring's syscalls.
#[cfg(test)]
#[derive(Default)]
struct Faults {
    /// Answer the next `n` enters with `EBUSY` without entering.
    ebusy: u32,
    /// Answer every enter with this errno.
    enter_errno: Option<i32>,
    /// Discard the next CQE of this op and count it as dropped.
    drop_cqe_of: Option<OpId>,
    dropped: u32,
    /// Make the next lazy creation of the ring fail with this errno.
    setup_errno: Option<i32>,
    /// Where output for stdout and stderr goes instead of fds 1 and 2.
    output_targets: Option<[OpFd; 2]>,
    /// Make the next `n` runtime output writes write nothing and report
    /// `-EAGAIN`, as a full non-blocking stream would.
    output_eagain: u32,
}

#[cfg(test)]
thread_local! {
    /// Test hook: dropped completions the next executor created on this
    /// thread starts with (for testing a whole VM).
    pub(crate) static DROPPED_AT_START: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

pub struct Executor {
    /// `None` until the first op needs it (see "The ring is made on first
    /// use" in the module's invariants); a restricted ring is always there.
    ring: Option<IoUring>,
    ops: ops::OpTable,
    /// Eventfd plus the 8-byte buffer its armed read fills; created lazily.
    eventfd: Option<(Arc<OwnedFd>, Box<u64>)>,
    eventfd_armed: bool,
    /// Set by `Drop`: no more re-arming of the eventfd read.
    closing: bool,
    /// Completions reaped outside `turn`, returned by the next one.
    stash: Vec<Completion>,
    stash_woken: bool,
    /// CQEs copied out of the ring before they are dispatched (dispatching
    /// may push new SQEs).
    cqes: Vec<(u64, i32, u32)>,
    /// A reap's receive-stream deliveries, until they go before its other
    /// completions (`reap`; kept for its capacity).
    stream_first: Vec<Completion>,
    /// A reap's other completions, until they follow its deliveries
    /// (`reap`; kept for its capacity).
    reap_rest: Vec<Completion>,
    /// Completions the kernel dropped so far (0 unless poisoned).
    dropped: u32,
    /// The runtime's ordered writes to stdout and stderr.
    output: output::OutputQueue,
    // io-net: extra data of completed socket ops, until taken (socket.rs).
    socket_outputs: socket::SocketOutputs,
    /// Set on a sandboxed actor's restricted ring: only fixed files.
    fixed_only: Option<FixedStdio>,
    /// Ops a fixed-only executor ran as plain syscalls (`run_inline`),
    /// with their results, until their NOPs complete. (Kept here, not in
    /// `OpSlot`: every slot of every executor would grow for it.)
    inline_results: Vec<(OpId, i32)>,
    /// Set while `run_inline` submits its NOP: the slot's resources were
    /// used by the syscall already, the SQE reaches nothing.
    submitting_inline: bool,
    /// Whether this ring has its one-slot table for `send_fd_to_ring`
    /// (registered on first use: most VMs never send a sandbox an fd).
    send_table: bool,
    /// The CQE result of the `send_fd_to_ring` or `fd_of_slot` under way.
    sync_result: Option<i32>,
    /// Traffic with another process since the last watch of the CQ that
    /// found nothing: the next blocking turn watches before it sleeps.
    spin_wait: bool,
    /// No watch before this: the watches kept finding nothing.
    no_watch_until: Option<std::time::Instant>,
    /// Recent vain watches, weighted ([`WATCH_STRIKE`]).
    watch_strikes: u32,
    /// The provided buffers of multishot receives (made on first use).
    /// After `ring` and `ops`: freed only once the kernel is done with them.
    buf_ring: recv_multi::BufRingState,
    #[cfg(test)]
    faults: Faults,
}

/// Set once the process made its first executor, which makes its ring at
/// once (see "The ring is made on first use").
static FIRST_RING_MADE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A new ring with the runtime's sizes and flags.
fn new_ring() -> io::Result<IoUring> {
    // COOP_TASKRUN: a completion's task work does not interrupt this
    // thread while it runs (no IPI); it runs at the thread's next
    // kernel entry, and TASKRUN_FLAG shows it is waiting (see
    // `watch_completions`). Linux 5.19; older kernels go without.
    let ring = IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .setup_clamp()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(SQ_ENTRIES)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => IoUring::builder()
                .setup_cqsize(CQ_ENTRIES)
                .setup_clamp()
                .build(SQ_ENTRIES),
            _ => Err(e),
        })?;
    if !ring.params().is_feature_nodrop() {
        // Without NODROP an overflowing CQ silently loses completions.
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "io_uring lacks IORING_FEAT_NODROP (Linux ≥ 5.5 is needed)",
        ));
    }
    tracing::debug!(fd = ring.as_raw_fd(), "executor ring created");
    Ok(ring)
}

impl Executor {
    /// An executor whose ring is made by its first op; the process's first
    /// executor makes it at once, so a kernel without a usable io_uring
    /// fails the start-up, not some later op.
    pub fn new() -> io::Result<Self> {
        let first = !FIRST_RING_MADE.swap(true, std::sync::atomic::Ordering::Relaxed);
        let ring = if first { Some(new_ring()?) } else { None };
        Ok(Self::with_ring(ring, None))
    }

    /// The ring, made now if this executor has none yet. A failure (no
    /// fds left, no memory for the rings) is the failing op's error and
    /// changes nothing: the next op tries again.
    #[inline(always)]
    fn ring(&mut self) -> io::Result<&mut IoUring> {
        // (inlined into every push: the ring exists but for the first op)
        if self.ring.is_none() {
            self.make_ring()?;
        }
        Ok(self.ring.as_mut().expect("made above"))
    }

    #[cold]
    fn make_ring(&mut self) -> io::Result<()> {
        #[cfg(test)]
        if let Some(errno) = self.faults.setup_errno.take() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.ring = Some(new_ring()?);
        Ok(())
    }

    /// Whether SQEs wait in the SQ for a submission (never without a ring).
    fn sq_pending(&mut self) -> bool {
        self.ring
            .as_mut()
            .is_some_and(|r| !r.submission().is_empty())
    }

    /// Whether the kernel holds completions in its overflow list.
    fn cq_overflowed(&mut self) -> bool {
        self.ring
            .as_mut()
            .is_some_and(|r| r.submission().cq_overflow())
    }

    /// An executor on a sandboxed actor's ring, made by the host: created
    /// disabled, restricted (opcode allow-list, `IOSQE_FIXED_FILE`
    /// required; see `luring_sandbox::ring`) and enabled before it reaches
    /// here. Every op runs on fixed files: stdin, stdout and stderr are
    /// the slots `stdio` names; ops that need an fd number or a new fd are
    /// refused with `EPERM` (path ops and jobs run as plain syscalls); cross-thread wake-ups (eventfd, `MSG_RING`
    /// from this ring) are not available. `ring` must be this process's
    /// only user of those queues.
    pub fn on_restricted_ring(ring: IoUring, stdio: FixedStdio) -> io::Result<Self> {
        if !ring.params().is_feature_nodrop() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "io_uring lacks IORING_FEAT_NODROP (Linux ≥ 5.5 is needed)",
            ));
        }
        tracing::debug!(
            fd = ring.as_raw_fd(),
            ?stdio,
            "executor adopted a restricted ring"
        );
        Ok(Self::with_ring(Some(ring), Some(stdio)))
    }

    /// True on a sandboxed actor's restricted ring.
    pub fn is_fixed_only(&self) -> bool {
        self.fixed_only.is_some()
    }

    fn with_ring(ring: Option<IoUring>, fixed_only: Option<FixedStdio>) -> Self {
        Self {
            ring,
            ops: ops::OpTable::default(),
            eventfd: None,
            eventfd_armed: false,
            closing: false,
            stash: Vec::new(),
            stash_woken: false,
            cqes: Vec::new(),
            stream_first: Vec::new(),
            reap_rest: Vec::new(),
            dropped: 0,
            output: output::OutputQueue::default(),
            socket_outputs: socket::SocketOutputs::default(),
            fixed_only,
            inline_results: Vec::new(),
            submitting_inline: false,
            send_table: false,
            sync_result: None,
            spin_wait: false,
            no_watch_until: None,
            watch_strikes: 0,
            buf_ring: recv_multi::BufRingState::default(),
            #[cfg(test)]
            faults: Faults {
                dropped: DROPPED_AT_START.take(),
                ..Faults::default()
            },
        }
    }

    /// Whether the ring was made (by the first op): an executor without
    /// one has nothing in flight and can get no completion.
    pub fn has_ring(&self) -> bool {
        self.ring.is_some()
    }

    /// The ring's fd, the address other rings post `MSG_RING` wake-ups to;
    /// -1 while the ring is not made yet (nothing is in flight then).
    pub fn ring_fd(&self) -> RawFd {
        self.ring.as_ref().map_or(-1, |r| r.as_raw_fd())
    }

    /// Operations whose completion has not been reaped yet (including the
    /// runtime's own output writes).
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Completions reaped outside a turn (while waiting for output or for
    /// room to submit) wait in the stash for the next turn: the ring shows
    /// nothing for them, so whoever decides to sleep must look here first.
    pub fn has_stashed(&self) -> bool {
        !self.stash.is_empty() || self.stash_woken
    }

    /// Whether a turn would deliver something now: completions in the CQ,
    /// in the kernel's overflow list or in the stash, or dropped ones (the
    /// turn then fails). Reads the rings' shared memory only: no syscall.
    /// (Completions still in task work show up in the CQ, or wake a poll
    /// of the ring fd, once the kernel ran it.)
    pub fn has_completions(&mut self) -> bool {
        if self.has_stashed() {
            return true;
        }
        let Some(ring) = self.ring.as_mut() else {
            return false;
        };
        {
            let mut cq = ring.completion();
            cq.sync();
            if !cq.is_empty() || cq.overflow() > 0 {
                return true;
            }
        }
        ring.submission().cq_overflow()
    }

    /// Push an SQE, submitting first when the submission queue is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // The restricted ring refuses (-EACCES) any SQE without the flag;
        // ops without an fd ignore it. Plain fds never get here (`submit`).
        let entry = if self.fixed_only.is_some() {
            entry.flags(squeue::Flags::FIXED_FILE)
        } else {
            entry
        };
        loop {
            // SAFETY: every caller builds `entry` from memory owned by an
            // OpSlot (or by `self`) that outlives the operation's completion.
            let pushed = unsafe { self.ring()?.submission().push(&entry) };
            if pushed.is_ok() {
                return Ok(());
            }
            self.submit_pending()?;
        }
    }

    /// `io_uring_enter`: submit the SQ and wait for `want` completions.
    fn enter(&mut self, want: usize) -> io::Result<()> {
        #[cfg(test)]
        {
            if let Some(errno) = self.faults.enter_errno {
                return Err(io::Error::from_raw_os_error(errno));
            }
            if self.faults.ebusy > 0 {
                self.faults.ebusy -= 1;
                return Err(io::Error::from_raw_os_error(libc::EBUSY));
            }
        }
        self.ring()?.submitter().submit_and_wait(want).map(|_| ())
    }

    /// Hands the kernel what was queued since the last submission, without
    /// waiting; nothing when the queue is empty. For ops queued after a
    /// turn's submission (a sandbox relay's, in `after_turn`): a thread
    /// that then sleeps in `poll(2)` on the ring fd would otherwise wait
    /// for completions of ops the kernel never got.
    pub(crate) fn submit_queued(&mut self) -> io::Result<()> {
        if !self.sq_pending() {
            return Ok(());
        }
        self.submit_pending()
    }

    /// Hands every queued SQE to the kernel without waiting.
    fn submit_pending(&mut self) -> io::Result<()> {
        let mut stalled = 0;
        loop {
            let Err(e) = self.enter(0) else {
                return self.check_dropped();
            };
            match e.raw_os_error() {
                Some(libc::EINTR) => {}
                // The kernel takes no submissions while completions wait in
                // its overflow list (older kernels): make room in the CQ by
                // reaping into the stash; the next enter flushes the list.
                Some(libc::EBUSY) => {
                    if self.reap_into_stash()? > 0 {
                        stalled = 0;
                    } else {
                        stalled += 1;
                        if stalled >= EBUSY_RETRIES {
                            return Err(io::Error::new(
                                io::ErrorKind::ResourceBusy,
                                "io_uring keeps refusing submissions (EBUSY) with an empty \
                                 completion queue",
                            ));
                        }
                    }
                }
                Some(libc::EBADR) => {
                    self.dropped = self.dropped.max(1);
                    return self.check_dropped();
                }
                _ => return Err(e),
            }
        }
    }

    /// Submit an operation whose SQE is built from the slot's own resources.
    /// The slot is kept until the completion arrives.
    ///
    /// # Safety
    /// Every pointer and fd number in the SQE `build` returns must refer to
    /// resources owned by the slot it is given (or to the process's standard
    /// streams), which live until the completion is reaped.
    pub(crate) unsafe fn submit(
        &mut self,
        slot: OpSlot,
        build: impl FnOnce(&mut OpSlot) -> squeue::Entry,
    ) -> io::Result<OpId> {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.submit_with(|| slot, build) }
    }

    /// `submit` of the slot `make` returns, which is made in its place in
    /// the op table: for the busiest ops (a socket send), where moving
    /// the slot (~90 bytes) from its making into the table cost copies.
    ///
    /// # Safety
    /// As for [`Executor::submit`].
    #[inline(always)]
    pub(crate) unsafe fn submit_with(
        &mut self,
        make: impl FnOnce() -> OpSlot,
        build: impl FnOnce(&mut OpSlot) -> squeue::Entry,
    ) -> io::Result<OpId> {
        // The slot goes into the table first and is checked there: checks
        // between its making and its insertion made the compiler copy it
        // (~90 bytes) three more times per op (docs/performance.md
        // "echolua"). A refused slot leaves the table before anything
        // reaches the kernel.
        let Some((id, slot)) = self.ops.insert_with(make) else {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                "the executor ran out of operation ids",
            ));
        };
        let slot = if self.fixed_only.is_some() || slot.fd_is_fixed() {
            self.check_reach_in_table(id)?;
            self.ops.get_mut(id).expect("the slot passed its checks")
        } else {
            slot
        };
        let entry = build(slot).user_data(id.to_user_data());
        tracing::trace!(op = id.to_user_data(), opcode = ?entry, "executor: op queued");
        if let Err(e) = self.push(entry) {
            // Nothing was handed to the kernel: the slot can go.
            self.ops.remove(id);
            return Err(e);
        }
        Ok(id)
    }

    /// `submit`'s checks of a slot already in the table (a fixed-only
    /// ring, or an fd that is a fixed slot): on a restricted ring fds 0-2
    /// become their slots; an op this executor's ring cannot run (a fixed
    /// slot given to an op that builds its SQE on an fd number, or on a
    /// fixed-only ring anything reaching outside the fixed-file table) is
    /// refused and its slot removed again. (Inlined and cold: made a
    /// call of its own, the compiler outlined `OpSlot`'s drop glue in two
    /// parts, +18 instructions per completion.)
    #[inline(always)]
    #[cold]
    fn check_reach_in_table(&mut self, id: OpId) -> io::Result<()> {
        if self.fixed_only.is_some() {
            // fds 0-2 are out of a restricted ring's reach: their slots.
            let slot = self.ops.get(id).expect("the slot was just inserted");
            if let Some(stream) = slot.std_target() {
                let fd = self.stream_fd(stream);
                let slot = self.ops.get_mut(id).expect("the slot was just inserted");
                slot.map_std(|_| fd);
            }
        }
        let slot = self.ops.get(id).expect("the slot was just inserted");
        if let Err(e) = self.check_reach_fixed(slot) {
            self.ops.remove(id);
            return Err(e);
        }
        Ok(())
    }

    #[cold]
    fn check_reach_fixed(&self, slot: &OpSlot) -> io::Result<()> {
        if !slot.accepts_fixed && matches!(slot.target(), Target::Fixed(_)) {
            tracing::debug!("executor: refused a fixed slot for an op that takes an fd number");
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if self.fixed_only.is_some() && !self.submitting_inline {
            if let Some(why) = slot.reaches_outside_table() {
                tracing::debug!(
                    why,
                    "executor: op refused on a restricted (fixed-file only) ring"
                );
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
        }
        Ok(())
    }

    /// Submits everything queued (one `io_uring_enter`, no wait) and, when
    /// op `id` completed during that submission (a read of cached file
    /// data does) and nothing else did, takes its result: the op is over
    /// and its slot freed, as if a turn had delivered it. Otherwise every
    /// completion reaped waits in the stash for the next turn, `id`'s too,
    /// and `None` is returned. Completions already stashed, or one that
    /// carries an fd or a job's output, are left for the turn as well.
    pub fn complete_inline(&mut self, id: OpId) -> io::Result<Option<i32>> {
        if self.has_stashed() {
            return Ok(None);
        }
        self.submit_pending()?;
        self.reap_into_stash()?;
        match self.stash.as_slice() {
            [only]
                if only.id == id
                    && !self.stash_woken
                    && only.fd.is_none()
                    && only.output.is_none() =>
            {
                let result = only.result;
                self.stash.clear();
                Ok(Some(result))
            }
            _ => Ok(None),
        }
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
        // SAFETY: the SQE points at the slot's own boxed timespec.
        unsafe {
            self.submit(OpSlot::timespec(ts), |slot| {
                opcode::Timeout::new(slot.timespec_ptr())
                    .flags(flags)
                    .build()
            })
        }
    }

    /// An op that completes (with 0) as soon as the ring runs it, after the
    /// completions already queued: a turn of the loop without a timer.
    /// Cancelling it always wins (-ECANCELED), without a kernel request.
    pub fn yield_now(&mut self) -> io::Result<OpId> {
        // SAFETY: a NOP carries no pointer and no fd.
        unsafe {
            self.submit(OpSlot::bare().kind(SlotKind::Yield), |_| {
                opcode::Nop::new().build()
            })
        }
    }

    /// `read(2)` at the file's current position into `buf`.
    pub fn read(&mut self, fd: &OpFd, buf: OpBuffer) -> io::Result<OpId> {
        self.read_at_offset(fd, buf, u64::MAX)
    }

    /// `pread(2)`: read at `offset` into `buf`.
    pub fn read_at(&mut self, fd: &OpFd, buf: OpBuffer, offset: u64) -> io::Result<OpId> {
        self.read_at_offset(fd, buf, offset.min(i64::MAX as u64))
    }

    fn read_at_offset(&mut self, fd: &OpFd, buf: OpBuffer, offset: u64) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit(OpSlot::buffer(buf).on_target(fd), |slot| {
                let (ptr, len) = slot.buffer_mut_ptr(0);
                on_target!(slot, |t| opcode::Read::new(t, ptr, len)
                    .offset(offset)
                    .build())
            })
        }
    }

    /// The `ioprio` of a receive armed when its socket is likely empty:
    /// `IORING_RECVSEND_POLL_FIRST` where the ring reports
    /// `RECVSEND_BUNDLE` (6.10; the flag is 5.19), so an older kernel
    /// never sees it. The result of the receive is the same either way.
    pub(crate) fn poll_first_ioprio(&self) -> u16 {
        let poll_first = self
            .ring
            .as_ref()
            .is_some_and(|r| r.params().is_feature_recvsend_bundle());
        if poll_first {
            RECVSEND_POLL_FIRST
        } else {
            0
        }
    }

    /// `recv(2)` of one datagram into `buf` with `MSG_TRUNC`: the result
    /// is the datagram's real length, so a result above `buf`'s length
    /// means it was truncated (the caller must reject it). 0 is a
    /// zero-byte datagram or the peer's end closed (`SOCK_SEQPACKET`).
    /// Its caller (a sandbox's read of its control socket, mostly queued
    /// right after its own send) expects the socket to be empty: the
    /// kernel is told so (`IORING_RECVSEND_POLL_FIRST`, Linux 5.19; set
    /// where the ring reports `RECVSEND_BUNDLE`, 6.10, so an older kernel
    /// never sees the flag) and arms its poll without a receive that
    /// fails first. The result is the same either way.
    pub fn recv_datagram(&mut self, fd: &OpFd, buf: OpBuffer) -> io::Result<OpId> {
        let ioprio = self.poll_first_ioprio();
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit(OpSlot::buffer(buf).on_target(fd), |slot| {
                let (ptr, len) = slot.buffer_mut_ptr(0);
                on_target!(slot, |t| opcode::Recv::new(t, ptr, len)
                    .flags(libc::MSG_TRUNC)
                    .ioprio(ioprio)
                    .build())
            })
        }
    }

    /// `send(2)` of `buf` as one datagram (`MSG_NOSIGNAL`: a closed peer
    /// is `-EPIPE`, never a signal).
    pub fn send_datagram(&mut self, fd: &OpFd, buf: OpBuffer) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit(OpSlot::buffer(buf).on_target(fd), |slot| {
                let (ptr, len) = slot.buffer_mut_ptr(0);
                on_target!(slot, |t| opcode::Send::new(t, ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build())
            })
        }
    }

    /// `openat(AT_FDCWD, path, flags | O_CLOEXEC)`. The completion carries
    /// the new fd in [`Completion::fd`].
    pub fn open(&mut self, path: std::ffi::CString, flags: i32) -> io::Result<OpId> {
        // SAFETY: the SQE points at the slot's own path.
        unsafe {
            self.submit(OpSlot::path(path).kind(SlotKind::OpensFd), |slot| {
                opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), slot.path_ptr())
                    .flags(flags | libc::O_CLOEXEC)
                    .build()
            })
        }
    }

    /// `openat2(dir, path, {flags | O_CLOEXEC, resolve})`: the module
    /// loader opens files beneath the import root with
    /// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` (Linux ≥ 5.6). The slot
    /// holds `dir` until the completion is reaped, so it cannot be closed
    /// under the op. The completion carries the new fd in
    /// [`Completion::fd`].
    pub fn open_beneath(
        &mut self,
        dir: &OpFd,
        path: std::ffi::CString,
        flags: i32,
        resolve: u64,
    ) -> io::Result<OpId> {
        let how = types::OpenHow::new()
            .flags((flags | libc::O_CLOEXEC) as u64)
            .resolve(resolve);
        // SAFETY: the SQE names the slot's fd and points at its own path
        // and open_how.
        unsafe {
            self.submit(
                OpSlot::path_how(path, how)
                    .on_fd(dir)
                    .kind(SlotKind::OpensFd),
                |slot| {
                    opcode::OpenAt2::new(
                        types::Fd(slot.raw_fd()),
                        slot.path_ptr(),
                        slot.open_how_ptr(),
                    )
                    .build()
                },
            )
        }
    }

    /// `statx(fd, "", AT_EMPTY_PATH, mask)` into `buf`, which must hold a
    /// whole `struct statx` (else `EINVAL` without submitting). The slot
    /// holds `fd` until the completion is reaped.
    pub fn statx_fd(&mut self, fd: &OpFd, buf: SpanRef, mask: u32) -> io::Result<OpId> {
        if buf.len() < std::mem::size_of::<libc::statx>() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // SAFETY: the SQE names the slot's fd and points at its own empty
        // path and statx buffer (long enough, checked above).
        unsafe {
            self.submit(OpSlot::statx_into(buf).on_fd(fd), |slot| {
                let out = slot.statx_ptr();
                opcode::Statx::new(types::Fd(slot.raw_fd()), slot.path_ptr(), out)
                    .flags(libc::AT_EMPTY_PATH)
                    .mask(mask)
                    .build()
            })
        }
    }

    /// Closes the caller's reference to `fd`. When it is the last one the
    /// fd is closed with `IORING_OP_CLOSE`; when in-flight ops still hold it,
    /// it closes when the last of them completes (the op completes with 0 at
    /// once). Closing a standard stream is refused with `EBADF`.
    pub fn close(&mut self, fd: OpFd) -> io::Result<OpId> {
        match fd {
            // Slots of a sandbox's table are the host's to manage for now.
            OpFd::Std(_) | OpFd::Fixed(_) => Err(io::Error::from_raw_os_error(libc::EBADF)),
            // The slot is cleared (a shared fd closed) when the last
            // reference goes (now, or when the last op holding it completes).
            OpFd::Slot(_) | OpFd::Granted(_) | OpFd::Shared(_) => {
                drop(fd);
                // SAFETY: a NOP carries no pointer and no fd.
                unsafe { self.submit(OpSlot::bare(), |_| opcode::Nop::new().build()) }
            }
            OpFd::Owned(rc) => match std::rc::Rc::try_unwrap(rc) {
                // SAFETY: the SQE names the fd the slot owns; the slot
                // forgets it when the close completes.
                Ok(owned) => unsafe {
                    self.submit(OpSlot::closing(owned), |slot| {
                        opcode::Close::new(types::Fd(slot.raw_fd())).build()
                    })
                },
                Err(shared) => {
                    drop(shared);
                    // SAFETY: a NOP carries no pointer and no fd.
                    unsafe { self.submit(OpSlot::bare(), |_| opcode::Nop::new().build()) }
                }
            },
        }
    }

    /// `write(2)` at the file's current position from `buf`. Writes to the
    /// standard output and error streams are queued behind the runtime's
    /// own buffered output to them (see [`Executor::write_output`]), so the
    /// two never interleave out of order.
    pub fn write(&mut self, fd: &OpFd, buf: OpBuffer) -> io::Result<OpId> {
        if let OpFd::Std(stream @ (StdStream::Out | StdStream::Err)) = fd {
            return self.write_std_in_order(*stream, buf);
        }
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit(OpSlot::buffer(buf).on_target(fd), |slot| {
                let (ptr, len) = slot.buffer_mut_ptr(0);
                on_target!(slot, |t| opcode::Write::new(t, ptr, len)
                    .offset(u64::MAX)
                    .build())
            })
        }
    }

    /// Ask the kernel to cancel `id`. The op keeps owning its resources until
    /// its (cancelled or completed) CQE is reaped. Unknown or already
    /// cancelled ids are ignored.
    pub fn cancel(&mut self, id: OpId) -> io::Result<()> {
        let Some(slot) = self.ops.get_mut(id) else {
            return Ok(());
        };
        if slot.cancelling {
            return Ok(());
        }
        slot.cancelling = true;
        tracing::debug!(op = id.to_user_data(), "executor: cancel requested");
        match slot.kind {
            // The NOP's completion is reported as cancelled when reaped.
            SlotKind::Yield => Ok(()),
            // Never handed to the kernel: complete it here.
            SlotKind::Deferred => {
                self.ops.remove(id);
                self.stash.push(Completion::bare(id, -libc::ECANCELED));
                Ok(())
            }
            _ => {
                let entry = opcode::AsyncCancel::new(id.to_user_data())
                    .build()
                    .user_data(CANCEL_TAG);
                self.push(entry)
            }
        }
    }

    /// A handle other threads use to wake this executor; arms the eventfd
    /// read on first use.
    pub fn remote_waker(&mut self) -> io::Result<RemoteWaker> {
        if self.fixed_only.is_some() {
            // Its read would name the eventfd by number.
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
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
        // The eventfd and its counter live in `self` until `Drop` has seen
        // this read complete.
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
    /// Submitted before this returns: the kernel resolves the target fd
    /// while `target` is still borrowed.
    pub fn post_wake(&mut self, target: BorrowedFd<'_>) -> io::Result<()> {
        if self.fixed_only.is_some() {
            // MSG_RING is not on a restricted ring's allow-list.
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let entry = opcode::MsgRingData::new(types::Fd(target.as_raw_fd()), 0, WAKE_TAG, None)
            .build()
            .user_data(CANCEL_TAG);
        self.push(entry)?;
        self.submit_pending()
    }

    /// Installs `fd` in a free slot of the file-alloc range of the ring
    /// `target`'s fixed-file table (`IORING_OP_MSG_RING` /
    /// `IORING_MSG_SEND_FD` with `IORING_FILE_INDEX_ALLOC`, Linux 6.0) and
    /// returns that slot. The target ring gets no completion for it
    /// (`IORING_MSG_RING_CQE_SKIP`). `fd` passes through slot 0 of this
    /// ring's own table, registered on first use and emptied again before
    /// this returns; `target` shares the open file, the caller keeps `fd`.
    ///
    /// Waits (blocking the thread) for the one completion, which the kernel
    /// posts at once or after one trip through its worker threads; other
    /// completions reaped meanwhile wait for the next turn. A full range is
    /// `ENFILE`; a restricted ring cannot do this (`EPERM`).
    pub fn send_fd_to_ring(
        &mut self,
        fd: BorrowedFd<'_>,
        target: BorrowedFd<'_>,
    ) -> io::Result<u32> {
        if self.fixed_only.is_some() {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        if !self.send_table {
            self.ring()?.submitter().register_files_sparse(1)?;
            self.send_table = true;
        }
        self.ring()?
            .submitter()
            .register_files_update(SEND_FD_SLOT, &[fd.as_raw_fd()])?;
        let entry = opcode::MsgRingSendFd::new(
            types::Fd(target.as_raw_fd()),
            types::Fixed(SEND_FD_SLOT),
            types::DestinationSlot::auto_target(),
            0,
        )
        .opcode_flags(IORING_MSG_RING_CQE_SKIP)
        .build()
        .user_data(SEND_FD_TAG);
        self.sync_result = None;
        let waited = self.push(entry).and_then(|()| self.wait_sync_result());
        // Empty the passing slot whatever happened (the MSG_RING holds its
        // own reference to the file while it runs).
        let cleared = self
            .ring()
            .and_then(|r| r.submitter().register_files_update(SEND_FD_SLOT, &[-1]));
        let result = waited?;
        cleared?;
        if result < 0 {
            return Err(io::Error::from_raw_os_error(-result));
        }
        Ok(result as u32)
    }

    /// A plain, close-on-exec fd for the fixed slot `fd` names
    /// (`IORING_OP_FIXED_FD_INSTALL`, Linux 6.8), on a fixed-only ring: a
    /// sandboxed actor sends it by `SCM_RIGHTS`. Waits (blocking the
    /// thread) for the one completion, as `send_fd_to_ring` does. `EBADF`
    /// for a descriptor that is not a slot, `EPERM` on another ring.
    pub fn fd_of_slot(&mut self, fd: &OpFd) -> io::Result<OwnedFd> {
        if self.fixed_only.is_none() {
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        let slot = match fd {
            OpFd::Fixed(slot) => *slot,
            OpFd::Granted(granted) => granted.index(),
            OpFd::Slot(local) => local.index(),
            OpFd::Owned(_) | OpFd::Shared(_) | OpFd::Std(_) => {
                return Err(io::Error::from_raw_os_error(libc::EBADF))
            }
        };
        let entry = opcode::FixedFdInstall::new(types::Fixed(slot), 0)
            .build()
            .user_data(FD_OF_SLOT_TAG);
        self.sync_result = None;
        self.push(entry)?;
        let result = self.wait_sync_result()?;
        if result < 0 {
            return Err(io::Error::from_raw_os_error(-result));
        }
        // SAFETY: the kernel just installed this descriptor in our table
        // for us; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(result) })
    }

    /// Submits and waits until the completion of the synchronous op under
    /// way (`SEND_FD_TAG`, `FD_OF_SLOT_TAG`) was reaped; other completions
    /// wait in the stash.
    fn wait_sync_result(&mut self) -> io::Result<i32> {
        loop {
            if let Some(result) = self.sync_result.take() {
                return Ok(result);
            }
            match self.enter(1) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {}
                Err(e) => return Err(e),
            }
            self.reap_into_stash()?;
        }
    }

    /// One turn: submit everything queued and, when `block`, wait for at
    /// least one completion in the same `io_uring_enter`; then reap every
    /// completion available.
    pub fn turn(&mut self, block: bool, out: &mut Reaped) -> io::Result<()> {
        out.completions.clear();
        out.woken = false;
        self.check_dropped()?;
        self.pump_output()?;
        // Completions reaped while making room to submit come first.
        self.unstash(out);
        // Stashed completions are ready now: do not sleep on top of them.
        let mut block = block && out.completions.is_empty() && !out.woken;
        let waiting_for_something = !self.ops.is_empty() || self.eventfd_armed;
        if block && waiting_for_something && self.spin_wait && self.may_watch() {
            // A peer process usually answers within microseconds: watching
            // the CQ costs less than its wake-up of a sleeping thread.
            if self.sq_pending() {
                self.submit_in_turn(out)?;
            }
            if out.completions.is_empty() && !out.woken {
                let watched = self.watch_completions();
                self.watched(watched);
                block = watched == Watched::Nothing;
            } else {
                block = false;
            }
        }
        if block && waiting_for_something {
            match self.enter(1) {
                Ok(()) => {}
                // A signal interrupted the wait: reap what there is, the
                // next turn waits again.
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                // Completions wait in the overflow list (older kernels):
                // reaping makes room, then the SQ is submitted again.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    self.reap(out);
                    self.submit_in_turn(out)?;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBADR) => {
                    self.dropped = self.dropped.max(1);
                }
                Err(e) => return Err(e),
            }
        } else if self.sq_pending() || self.cq_overflowed() {
            self.submit_in_turn(out)?;
        }
        self.reap(out);
        // Completions held in the kernel's overflow list are flushed by an
        // enter with GETEVENTS, which `submit` issues when the flag is set.
        while self.cq_overflowed() {
            self.submit_in_turn(out)?;
            if self.reap(out) == 0 {
                break;
            }
        }
        self.check_dropped()?;
        if out.woken {
            self.arm_eventfd()?;
        }
        // Output writes that completed may have left the next one to start.
        self.pump_output()?;
        if self.sq_pending() {
            self.submit_in_turn(out)?;
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

    /// Notes traffic with another process (a sandbox's frame in or out):
    /// the next blocking turns watch the CQ before they sleep.
    pub fn note_traffic(&mut self) {
        self.spin_wait = true;
    }

    /// Counts a watch: one that found nothing sleeps, and no turn watches
    /// until the next traffic; when they fail too often, or find only
    /// after giving the core away (the peer was slow, shares this core or
    /// is not running: a busy machine), sleeping is cheaper for a while.
    fn watched(&mut self, watched: Watched) {
        match watched {
            Watched::Found => {
                self.watch_strikes = self.watch_strikes.saturating_sub(1);
                return;
            }
            Watched::FoundLate => {}
            Watched::Nothing => self.spin_wait = false,
        }
        self.watch_strikes += WATCH_STRIKE;
        if self.watch_strikes >= WATCH_STRIKES_MAX {
            self.watch_strikes = 0;
            self.no_watch_until = Some(std::time::Instant::now() + WATCH_BACKOFF);
        }
    }

    /// Whether the last back-off is [`WATCH_BACKOFF`] old.
    fn may_watch(&mut self) -> bool {
        match self.no_watch_until {
            Some(t) if std::time::Instant::now() < t => false,
            _ => {
                self.no_watch_until = None;
                true
            }
        }
    }

    /// Watches the CQ from user space for up to [`WATCH`] (yielding the
    /// core now and then, as `host::spin_until` does) and says what came.
    /// When the kernel flags task work to run (`IORING_SQ_TASKRUN`, a
    /// `COOP_TASKRUN` ring), an enter with `GETEVENTS` runs it (its CQEs
    /// then appear) and the watch goes on.
    fn watch_completions(&mut self) -> Watched {
        let until = std::time::Instant::now() + WATCH;
        // A yield gave the core away (see `Watched::FoundLate`).
        let mut lost = false;
        let mut round = 0u32;
        loop {
            // SAFETY: the status reads the ring's head and tail, which live
            // as long as `self.ring`; it is dropped before this returns.
            // (No ring: nothing was ever submitted, nothing can come.)
            let Some(ring) = self.ring.as_mut() else {
                return Watched::Nothing;
            };
            let status = unsafe { ring.completion().status() };
            let ring = &*ring;
            // SAFETY: no other submission queue of this ring exists while
            // the watch runs (`self` is borrowed for it).
            let taskrun = || unsafe { ring.submission_shared() }.taskrun();
            // Both looked at every spin: a frame's `RECV` completes only
            // through task work, so the flag is what comes first, and a
            // look only every 64 spins (~0.7-1 µs of `pause` here) was
            // that much added to each hop (performance.md, sbx-pp2).
            let flagged = 'spin: loop {
                for _ in 0..64 {
                    if !status.is_empty() {
                        break 'spin false;
                    }
                    if taskrun() {
                        break 'spin true;
                    }
                    std::hint::spin_loop();
                }
                let now = std::time::Instant::now();
                if now >= until {
                    return Watched::Nothing;
                }
                round += 1;
                if round > WATCH_YIELD_AFTER {
                    // A peer sharing this core gets to answer; with none
                    // this returns at once.
                    std::thread::yield_now();
                    lost |= now.elapsed() >= WATCH_CORE_LOST;
                }
            };
            if flagged {
                // (`submit_and_wait(0)` adds GETEVENTS when the flag is set.)
                if self.enter(0).is_err() {
                    return Watched::Nothing;
                }
            }
            // SAFETY: as above (the enter needed `self` whole).
            let Some(ring) = self.ring.as_mut() else {
                return Watched::Nothing;
            };
            if unsafe { ring.completion().status() }.is_empty() {
                // (the flag was for task work that posted nothing)
                continue;
            }
            return if std::time::Instant::now() >= until {
                // Found only past the deadline (a stall carried the watch
                // past its end: a busy machine): not in time.
                Watched::Nothing
            } else if lost {
                Watched::FoundLate
            } else {
                Watched::Found
            };
        }
    }

    /// Moves stashed completions to `out`, after those already there (the
    /// stash holds what was reaped since).
    fn unstash(&mut self, out: &mut Reaped) {
        out.woken |= std::mem::take(&mut self.stash_woken);
        out.completions.append(&mut self.stash);
    }

    /// `submit_pending` inside a turn: whatever it had to reap joins `out`
    /// in order.
    fn submit_in_turn(&mut self, out: &mut Reaped) -> io::Result<()> {
        let submitted = self.submit_pending();
        self.unstash(out);
        submitted
    }

    /// Fails for good once the kernel dropped a completion.
    fn check_dropped(&mut self) -> io::Result<()> {
        let counted = self.ring.as_mut().map_or(0, |r| r.completion().overflow());
        #[cfg(test)]
        let counted = counted + self.faults.dropped;
        self.dropped = self.dropped.max(counted);
        if self.dropped == 0 {
            return Ok(());
        }
        Err(io::Error::other(CompletionsDropped {
            count: self.dropped,
        }))
    }

    /// Reaps outside `turn`: completions are kept for the next turn.
    fn reap_into_stash(&mut self) -> io::Result<usize> {
        let mut out = Reaped {
            completions: std::mem::take(&mut self.stash),
            woken: false,
        };
        let before = out.completions.len();
        self.reap(&mut out);
        let n = out.completions.len() - before;
        self.stash = out.completions;
        self.stash_woken |= out.woken;
        Ok(n + usize::from(out.woken))
    }

    /// Copies every available CQE out of the ring, then dispatches them.
    /// Returns the number of CQEs seen.
    ///
    /// The receive streams' deliveries go before the other completions of
    /// the reap: a reader woken by one has waited since before this turn,
    /// while a fiber woken by a send's CQE of the same reap may find its
    /// next bytes already queued and take them at once. In CQE order the
    /// latter ran first and sent first, so their peers answered first again
    /// and the readers kept waiting a turn more: the echo bench's p99 at
    /// 1.35× tokio's (docs/performance.md "echouser").
    fn reap(&mut self, out: &mut Reaped) -> usize {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        if let Some(ring) = self.ring.as_mut() {
            let mut cq = ring.completion();
            cq.sync();
            cqes.extend((&mut cq).map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())));
        }
        let n = cqes.len();
        // The other completions gather apart (`dispatch` puts the stream
        // deliveries in `stream_first`) and follow the deliveries: two
        // appends, where a splice of the deliveries in front cost ~15
        // instructions per echoed message (docs/performance.md "echocut").
        let mut rest = Reaped {
            completions: std::mem::take(&mut self.reap_rest),
            woken: false,
        };
        for &(data, result, flags) in &cqes {
            self.dispatch(data, result, flags, &mut rest);
        }
        self.cqes = cqes;
        out.woken |= rest.woken;
        out.completions.append(&mut self.stream_first);
        out.completions.append(&mut rest.completions);
        self.reap_rest = rest.completions;
        n
    }

    fn dispatch(&mut self, data: u64, result: i32, flags: u32, out: &mut Reaped) {
        match data {
            CANCEL_TAG | DRAIN_TAG => return,
            SEND_FD_TAG | FD_OF_SLOT_TAG => {
                self.sync_result = Some(result);
                return;
            }
            WAKE_TAG => {
                out.woken = true;
                return;
            }
            EVENTFD_TAG => {
                self.eventfd_armed = false;
                out.woken = true;
                return;
            }
            _ => {}
        }
        let Some(id) = OpId::from_user_data(data) else {
            tracing::warn!(user_data = data, "completion with a foreign user_data");
            return;
        };
        #[cfg(test)]
        if self.faults.drop_cqe_of == Some(id) {
            // As if the kernel had dropped it: the slot stays in flight.
            self.faults.drop_cqe_of = None;
            self.faults.dropped += 1;
            return;
        }
        // io-net: a CQE of a multishot op that goes on (socket.rs): its
        // slot stays in flight for the next ones.
        if io_uring::cqueue::more(flags) {
            let stream = self.ops.get_mut(id).and_then(|s| s.recv_stream_of());
            if let Some(stream) = stream {
                // A receive stream's: a completion only for a reader that
                // waits (recv_multi.rs "Delivery"); its slot has no socket
                // output.
                if let Some(result) = self.stream_cqe(&stream, result, flags, false) {
                    self.stream_first.push(Completion::bare(id, result));
                }
                return;
            }
            if let Some(slot) = self.ops.get_mut(id) {
                self.socket_outputs.completed(id, slot, result);
                out.completions.push(Completion::bare(id, result));
            }
            return;
        }
        // The slot is read where it is and dropped there (`discard`):
        // moving it out of the table cost two copies of its ~90 bytes
        // per completion (docs/performance.md "echolua"). Output slots
        // are taken out: their completion consumes them.
        let Some(slot) = self.ops.get_mut(id) else {
            tracing::warn!(user_data = data, "completion for an unknown op");
            return;
        };
        if slot.completes_plainly() {
            // The common completion (a send, a read, a timeout): what the
            // general path below does for such a slot, without its
            // lookups and tests for the other kinds (~70 instructions per
            // echoed message; docs/performance.md "echocut").
            self.socket_outputs.ended(id);
            if self.output.is_active(id) {
                self.output.user_write_done();
            }
            let result = if self.inline_results.is_empty() {
                result
            } else {
                self.inline_result(id, result)
            };
            self.ops.discard(id);
            out.completions.push(Completion::bare(id, result));
            return;
        }
        slot.completed();
        let result = match slot.recv_stream_of() {
            // (the last CQE always makes a completion)
            Some(stream) => self
                .stream_cqe(&stream, result, flags, true)
                .unwrap_or(result),
            None => result,
        };
        let slot = self.ops.get_mut(id).expect("the slot is in the table");
        // io-net: an accepted fd, a received message's sender and fds.
        self.socket_outputs.completed(id, slot, result);
        self.socket_outputs.ended(id);
        let kind = slot.kind;
        if let SlotKind::Output { .. } | SlotKind::OutputPoll { .. } = kind {
            let slot = self.ops.remove(id).expect("the slot is in the table");
            self.output_completed(id, slot, result);
            return;
        }
        if self.output.is_active(id) {
            self.output.user_write_done();
        }
        // (`inline_result`, by field: `slot` borrows the table)
        let result = match self.inline_results.iter().position(|(i, _)| *i == id) {
            Some(k) => self.inline_results.swap_remove(k).1,
            None => result,
        };
        let result = if kind == SlotKind::Yield && slot.cancelling {
            -libc::ECANCELED
        } else {
            result
        };
        let fd = (kind == SlotKind::OpensFd && result >= 0).then(|| {
            // SAFETY: the kernel just created this fd for this op;
            // nothing else knows it.
            unsafe { OwnedFd::from_raw_fd(result) }
        });
        let (result, output) = if kind == SlotKind::Job && result >= 0 {
            match slot.take_job_result() {
                Some(Ok(output)) => (0, Some(output)),
                Some(Err(errno)) => (-errno, None),
                None => (-libc::EIO, None),
            }
        } else {
            (result, None)
        };
        self.ops.discard(id);
        // A cancelled op's result is delivered too: the fiber must
        // see a real result that beat the cancellation.
        out.completions.push(Completion {
            id,
            result,
            fd,
            output,
        });
    }

    /// The result op `id` got when it ran inline (`run_inline`), if it
    /// did, else the CQE's `result`.
    fn inline_result(&mut self, id: OpId, result: i32) -> i32 {
        match self.inline_results.iter().position(|(i, _)| *i == id) {
            Some(k) => self.inline_results.swap_remove(k).1,
            None => result,
        }
    }

    /// Gives up on the ring: everything the kernel may still use is leaked.
    fn leak_everything(&mut self) {
        std::mem::forget(std::mem::take(&mut self.ops));
        std::mem::forget(self.eventfd.take());
        std::mem::forget(std::mem::take(&mut self.buf_ring));
        self.eventfd_armed = false;
    }

    /// Waits until every op submitted so far completed, even if its CQE
    /// was dropped: a NOP with `IO_DRAIN` starts only after all earlier
    /// SQEs completed. Its own CQE may be dropped too, then another is sent.
    fn drain_all(&mut self) -> io::Result<()> {
        if self.fixed_only.is_some() {
            // IO_DRAIN is not on a restricted ring's allowed flags: the
            // caller leaks what is in flight instead.
            return Err(io::Error::from_raw_os_error(libc::EPERM));
        }
        loop {
            let before = self.ring()?.completion().overflow();
            let entry = opcode::Nop::new()
                .build()
                .flags(squeue::Flags::IO_DRAIN)
                .user_data(DRAIN_TAG);
            self.push(entry)?;
            loop {
                match self.enter(1) {
                    Ok(()) => {}
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                    // The kernel may answer EBADR without waiting from now
                    // on: let the cancelled ops finish without spinning hot.
                    Err(e) if e.raw_os_error() == Some(libc::EBADR) => std::thread::yield_now(),
                    Err(e) => return Err(e),
                }
                let mut cq = self.ring()?.completion();
                cq.sync();
                let drained = cq.any(|cqe| cqe.user_data() == DRAIN_TAG);
                // Consume the rest; nobody receives them any more.
                (&mut cq).for_each(drop);
                drop(cq);
                if drained {
                    return Ok(());
                }
                if self.ring()?.completion().overflow() != before {
                    break;
                }
            }
        }
    }

    /// `Drop` without giving up: cancel everything and wait for it.
    fn shut_down(&mut self) -> io::Result<()> {
        self.closing = true;
        for id in self.ops.ids() {
            self.cancel(id)?;
        }
        if self.eventfd_armed {
            let entry = opcode::AsyncCancel::new(EVENTFD_TAG)
                .build()
                .user_data(CANCEL_TAG);
            self.push(entry)?;
        }
        // Deferred ops were completed by `cancel`; nothing else to wait for.
        self.stash.clear();
        let mut reaped = Reaped::default();
        while !self.ops.is_empty() || self.eventfd_armed {
            if let Err(e) = self.turn(true, &mut reaped) {
                if e.get_ref().is_some_and(|e| e.is::<CompletionsDropped>()) {
                    // Some completions never come: wait for the kernel to
                    // be done with everything instead.
                    self.drain_all()?;
                    self.ops = ops::OpTable::default();
                    self.eventfd_armed = false;
                    return Ok(());
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if self.ops.is_empty() && !self.eventfd_armed {
            return;
        }
        if let Err(e) = self.shut_down() {
            // The ring is unusable: leak the slots rather than free memory
            // (or close fds) the kernel may still use.
            tracing::error!(error = %e, "executor: ring failed while closing; leaking its ops");
            self.leak_everything();
        }
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

#[cfg(test)]
mod module_ops_tests;

#[cfg(test)]
mod restricted_tests;

#[cfg(test)]
mod recv_multi_tests;
