//! The blocking pool: a few helper threads that run the work io_uring has
//! no op for (directory listings, `realpath`, name resolution, copies)
//! off the actor's thread, each job completing an ordinary ring op.
//!
//! How a job completes: [`Executor::run_blocking`] makes an eventfd for the
//! job and submits an `IORING_OP_READ` of it; a pool thread runs the job,
//! stores its result in the job's [`JobCell`], then writes the eventfd, and
//! the read completes. So a fiber waiting for a job suspends like for any
//! op, and cancelling it is a real kernel cancellation of the read
//! (`ASYNC_CANCEL`), with nothing special in the executor's drop path.
//! (The other design measured against it, the pool thread posting the CQE
//! with `MSG_RING` from a ring of its own, would need the pool to keep the
//! actor's ring fd alive, and a cancellation would have no kernel op to
//! cancel: the executor would fake it and later ignore a stray CQE. One
//! eventfd per job costs three cheap syscalls, small beside the work a job
//! does.)
//!
//! Invariants:
//! - A job's [`JobCell`] is shared by the op's slot and the pool (`Arc`).
//!   The cell owns the eventfd, so the fd the read names stays open until
//!   both the completion was reaped and the pool is done with the job.
//! - The result is stored before the eventfd is written: a read that
//!   completed with 8 bytes finds it. A read that completed otherwise
//!   (cancelled, failed) leaves the result where it is, and whoever drops
//!   the cell last drops it: an interrupted wait leaks nothing (an fd in
//!   the output is closed, memory freed), whichever side finishes first.
//! - A job whose op was already cancelled and reaped when a pool thread
//!   takes it (the pool holds the only reference to its cell) is not run.
//! - The pool is process-wide, started lazily (no thread exists before the
//!   first job: the sandbox supervisor forks before any), has at most
//!   [`MAX_THREADS`] threads and at most [`MAX_QUEUED`] jobs waiting; a job
//!   beyond that is refused with `EAGAIN` rather than queued unbounded.
//! - A job that panics completes with `EIO`; the pool thread survives.
//! - Pool threads block every signal, so they never take one meant for the
//!   actors (or a signalfd).

use std::any::Any;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use io_uring::{opcode, types};

use super::{Executor, OpId, OpSlot, SlotKind};

/// What a job hands back: any owned, sendable value (the module that
/// submitted it knows its type), or an errno.
pub type JobOutput = Box<dyn Any + Send>;
pub type JobResult = Result<JobOutput, i32>;
type JobFn = Box<dyn FnOnce() -> JobResult + Send>;

/// Pool threads at most: enough to overlap a few slow file system calls
/// without competing with the actor threads for the cores.
pub const MAX_THREADS: usize = 4;
/// Jobs waiting for a thread at most.
pub const MAX_QUEUED: usize = 1024;

/// The state one job's slot and the pool share.
pub(crate) struct JobCell {
    eventfd: OwnedFd,
    result: Mutex<Option<JobResult>>,
}

impl JobCell {
    pub(crate) fn eventfd(&self) -> RawFd {
        self.eventfd.as_raw_fd()
    }

    /// The job's output once its read completed; `Err(errno)` for a job
    /// that failed.
    pub(crate) fn take(&self) -> Option<JobResult> {
        self.result.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn finish(&self, result: JobResult) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the eventfd this cell
        // owns. An eventfd write of 1 cannot fail unless the counter would
        // overflow, which one write per job never reaches.
        let _ = unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}

struct Queue {
    jobs: VecDeque<(Arc<JobCell>, JobFn)>,
    threads: usize,
    idle: usize,
}

/// A bounded set of helper threads with a bounded queue.
pub(crate) struct Pool {
    queue: Mutex<Queue>,
    ready: Condvar,
    max_threads: usize,
    max_queued: usize,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, max_queued: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                threads: 0,
                idle: 0,
            }),
            ready: Condvar::new(),
            max_threads: max_threads.max(1),
            max_queued,
        })
    }

    /// The process's pool.
    pub(crate) fn global() -> &'static Arc<Pool> {
        static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(MAX_THREADS, MAX_QUEUED))
    }

    /// Queues `job` once `submit` (which submits the job's op) succeeded:
    /// the queue stays locked meanwhile, so a job is either refused before
    /// its op exists or queued with it, never half of both.
    fn enqueue(
        self: &Arc<Self>,
        cell: Arc<JobCell>,
        job: JobFn,
        submit: impl FnOnce() -> io::Result<OpId>,
    ) -> io::Result<OpId> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.jobs.len() >= self.max_queued {
            tracing::warn!(
                "{}",
                BlockingPoolFull {
                    queued: q.jobs.len()
                }
            );
            return Err(io::Error::from_raw_os_error(libc::EAGAIN));
        }
        // One more thread while the jobs waiting (this one included)
        // outnumber the idle threads (a woken thread counts as idle until
        // it takes a job, so this errs towards more threads, up to the cap).
        if q.jobs.len() + 1 > q.idle && q.threads < self.max_threads {
            let pool = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("luring-blocking".into())
                .spawn(move || pool.work());
            match spawned {
                Ok(_) => q.threads += 1,
                // With no thread at all the job would wait forever.
                Err(e) if q.threads == 0 => return Err(e),
                Err(e) => tracing::warn!(error = %e, "blocking pool: cannot add a thread"),
            }
        }
        let id = submit()?;
        q.jobs.push_back((cell, job));
        self.ready.notify_one();
        Ok(id)
    }

    fn work(&self) {
        block_signals();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let Some((cell, job)) = q.jobs.pop_front() else {
                q.idle += 1;
                q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                q.idle -= 1;
                continue;
            };
            drop(q);
            // Nobody waits for it any more (cancelled and reaped): skip.
            if Arc::strong_count(&cell) > 1 {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                    .unwrap_or(Err(libc::EIO));
                cell.finish(result);
            }
            drop(cell);
            q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Pool threads take no signals: a process-directed signal must reach a
/// thread that handles it (or stay pending for a signalfd), never a helper
/// busy in a `readdir`.
fn block_signals() {
    // SAFETY: `set` is a live local sigset_t that sigfillset initialises
    // before pthread_sigmask reads it; a null old-set pointer is allowed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// The pool's queue is full (logged; the caller gets `EAGAIN`).
#[derive(Debug, thiserror::Error)]
#[error(
    "the blocking helper pool already has {queued} jobs waiting (directory listings, \
     copies, name lookups): wait for some to finish before starting more"
)]
pub struct BlockingPoolFull {
    pub queued: usize,
}

impl Executor {
    /// Runs `job` on the process's blocking pool; the op completes (result
    /// 8, the eventfd read's length) when the job is done, and its
    /// [`Completion::output`](super::Completion::output) holds what the job
    /// returned; a job's `Err(errno)` completes with `-errno` instead.
    /// Cancelling the op completes it with `-ECANCELED` (unless the job
    /// finished first); the job's output is then dropped wherever it is.
    /// A full queue is `EAGAIN` (see [`BlockingPoolFull`]).
    pub fn run_blocking(
        &mut self,
        job: impl FnOnce() -> JobResult + Send + 'static,
    ) -> io::Result<OpId> {
        self.run_blocking_on(Pool::global(), Box::new(job))
    }

    pub(crate) fn run_blocking_on(&mut self, pool: &Arc<Pool>, job: JobFn) -> io::Result<OpId> {
        // SAFETY: eventfd(2) has no memory arguments.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let cell = Arc::new(JobCell {
            // SAFETY: `fd` was just returned by eventfd and nobody else owns it.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            result: Mutex::new(None),
        });
        let slot = OpSlot::job(Arc::clone(&cell)).kind(SlotKind::Job);
        if self.is_fixed_only() {
            // A sandbox has no pool (its threads are few, its ring reaches
            // no eventfd): the job runs here, the VM waiting meanwhile.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                .unwrap_or(Err(libc::EIO));
            cell.finish(result);
            // SAFETY: the call only reads what the job stored.
            return unsafe { self.run_inline(slot, |_| 0) };
        }
        pool.enqueue(cell, job, || {
            // SAFETY: the SQE names the eventfd the slot's cell owns and
            // points at the slot's own 8-byte counter.
            unsafe {
                self.submit(slot, |slot| {
                    let (fd, counter) = slot.job_read_parts();
                    opcode::Read::new(types::Fd(fd), counter, 8).build()
                })
            }
        })
    }
}

#[cfg(test)]
mod tests;
