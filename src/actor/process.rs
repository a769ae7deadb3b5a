//! Process-wide actor state shared by the host threads: who is running,
//! when the process is over, its exit code, and how one thread wakes
//! another.
//!
//! Invariants:
//! - `running` counts host threads that are not stuck (a stuck thread has
//!   only idle VMs with nothing in flight). Whoever moves a thread out of
//!   STUCK adds it back first (the waker, in `ThreadSignal::wake`, while it
//!   itself counts as running), so the count reaches zero only when no
//!   thread can make progress: then the process is over.
//! - A thread is woken (one eventfd write) only when it is SLEEPING or
//!   STUCK; messages to a RUNNING thread cost no syscall, so a burst of
//!   messages costs at most one wake-up per sleep of the receiver.
//! - Once `over` is set it stays set; every thread tears its VMs down and
//!   leaves; the thread that runs the master joins the others. The
//!   nursery is closed then too (nothing is pooled or booted ahead after
//!   the end).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Wake-up writes made so far by this process (benches/actors.rs reads it
/// through `LURING_REPORT_WAKEUPS`).
pub(crate) static WAKEUPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

const RUNNING: u8 = 0;
const SLEEPING: u8 = 1;
const STUCK: u8 = 2;

/// How the process ended, as far as the actors decide it.
#[derive(Default)]
pub(crate) struct Outcome {
    /// `system.exit` code, from whichever actor called it first.
    pub exit_code: Option<i32>,
    /// The master VM's main fiber failed.
    pub master_panicked: bool,
    /// ... with "not enough memory" (a sandboxed VM reports it).
    pub master_out_of_memory: bool,
    /// A runtime failure on some host thread (exit 70).
    pub failure: Option<String>,
    /// The embedding application shut the runtime down: the VMs left are
    /// torn down without a "blocked on" report.
    pub shut_down: bool,
}

pub(crate) struct Process {
    /// Run by an embedding application (`Runtime::builder`): `system.exit`
    /// ends the runtime, never the host process.
    pub(crate) embedded: bool,
    running: AtomicUsize,
    threads: AtomicUsize,
    over: AtomicBool,
    signals: Mutex<Vec<Arc<ThreadSignal>>>,
    pub(crate) outcome: Mutex<Outcome>,
    pub(crate) joins: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The Rust modules of an embedding application, set by `build()`
    /// before any actor starts.
    pub(crate) host_modules: std::sync::OnceLock<crate::embed::module::HostModules>,
    /// Boots VMs ahead of spawns (started by the first spawn).
    pub(crate) nursery: super::nursery::Nursery,
}

impl Process {
    pub(crate) fn new() -> Arc<Self> {
        Self::with_mode(false)
    }

    /// A process for an embedding application (see `embedded`).
    pub(crate) fn new_embedded() -> Arc<Self> {
        Self::with_mode(true)
    }

    fn with_mode(embedded: bool) -> Arc<Self> {
        Arc::new(Self {
            embedded,
            running: AtomicUsize::new(0),
            threads: AtomicUsize::new(0),
            over: AtomicBool::new(false),
            signals: Mutex::new(Vec::new()),
            outcome: Mutex::new(Outcome::default()),
            joins: Mutex::new(Vec::new()),
            host_modules: std::sync::OnceLock::new(),
            nursery: super::nursery::Nursery::new(),
        })
    }

    /// Registers a new host thread (counted as running) and returns its
    /// signal. Called by the spawning thread, before the new one starts, so
    /// the process can never look over in between.
    pub(crate) fn add_thread(self: &Arc<Self>) -> std::io::Result<Arc<ThreadSignal>> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new fd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let signal = Arc::new(ThreadSignal {
            state: AtomicU8::new(RUNNING),
            // SAFETY: `fd` was just created and is owned by nothing else.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            process: Arc::downgrade(self),
            woken: std::sync::Mutex::new(Vec::new()),
            has_woken: std::sync::atomic::AtomicBool::new(false),
        });
        self.running.fetch_add(1, Ordering::AcqRel);
        self.threads.fetch_add(1, Ordering::AcqRel);
        self.lock_signals().push(signal.clone());
        Ok(signal)
    }

    fn lock_signals(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ThreadSignal>>> {
        self.signals.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn lock_outcome(&self) -> std::sync::MutexGuard<'_, Outcome> {
        self.outcome.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// More than one host thread exists (or existed) right now.
    pub(crate) fn several_threads(&self) -> bool {
        self.threads.load(Ordering::Acquire) > 1
    }

    pub(crate) fn is_over(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    /// Ends the process: every thread tears its VMs down.
    pub(crate) fn end(&self) {
        if self.over.swap(true, Ordering::AcqRel) {
            return;
        }
        self.nursery.close();
        for s in self.lock_signals().iter() {
            s.kick();
        }
    }

    /// Drops a thread's signal from the list once it left for good (an
    /// embedding runtime starts threads for as long as it lives: their
    /// eventfds must not pile up).
    pub(crate) fn forget(&self, signal: &Arc<ThreadSignal>) {
        self.lock_signals().retain(|s| !Arc::ptr_eq(s, signal));
    }

    /// A running thread stops counting (stuck, or leaving for good); the
    /// last one ends the process. Returns true if it did.
    fn stop_running(&self) -> bool {
        if self.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.end();
            return true;
        }
        false
    }

    /// A host thread leaves: all its VMs are done.
    pub(crate) fn leave(&self, signal: &ThreadSignal) {
        // The signal stays listed: the master's thread waits on it for the
        // end of the process after its own VMs are gone.
        if signal.state.swap(RUNNING, Ordering::AcqRel) != STUCK {
            self.stop_running();
        }
    }
}

/// What `ThreadSignal::prepare_sleep` decided.
pub(crate) enum Sleep {
    /// Sleep, then call `awake`.
    Wait,
    /// Work arrived meanwhile: look again without sleeping.
    Retry,
    /// This thread was the last one running: the process is over.
    Over,
}

thread_local! {
    /// The signal of the host thread running here (null elsewhere).
    static CURRENT: std::cell::Cell<*const ThreadSignal> =
        const { std::cell::Cell::new(std::ptr::null()) };
}

/// How other threads wake one host thread.
pub(crate) struct ThreadSignal {
    state: AtomicU8,
    eventfd: OwnedFd,
    process: std::sync::Weak<Process>,
    /// Mailboxes (by address) of parked VMs that became pending since the
    /// host thread last looked (`Mailbox::mark_pending`, host.rs
    /// `Hosted::parked`); `has_woken` says whether to look.
    woken: std::sync::Mutex<Vec<usize>>,
    has_woken: std::sync::atomic::AtomicBool,
}

impl ThreadSignal {
    /// Marks `self` as the signal of the host thread that calls this, for
    /// `is_current` (until `leave_current`).
    pub(crate) fn enter_current(self: &Arc<Self>) {
        CURRENT.set(Arc::as_ptr(self));
    }

    /// The host thread is done (see `enter_current`).
    pub(crate) fn leave_current() {
        CURRENT.set(std::ptr::null());
    }

    /// Whether the calling thread is the one this signal wakes: it runs,
    /// so it needs no wake-up, and it reads its own flags in program order.
    #[inline]
    pub(crate) fn is_current(self: &Arc<Self>) -> bool {
        CURRENT.get() == Arc::as_ptr(self)
    }

    /// The thread has work (a message, a receipt): wake it if it sleeps.
    pub(crate) fn wake(&self) {
        // Most wakes find the thread running (same-thread hand-offs, a
        // busy partner): a plain load then, not a locked swap. SeqCst, like
        // the swap: the caller's flag store comes before this load, the
        // sleeper's state store before its flag load, so either the load
        // sees the sleeper's state or the sleeper sees the flag.
        if self.state.load(Ordering::SeqCst) == RUNNING {
            return;
        }
        match self.state.swap(RUNNING, Ordering::SeqCst) {
            RUNNING => {}
            was => {
                if was == STUCK {
                    if let Some(p) = self.process.upgrade() {
                        p.running.fetch_add(1, Ordering::AcqRel);
                    }
                }
                self.kick();
            }
        }
    }

    /// A parked VM's mailbox at `mailbox` became pending: its host thread
    /// steps it again (`take_woken`). The thread is woken as for any
    /// pending mailbox (`wake`), not here.
    pub(crate) fn note_woken(&self, mailbox: usize) {
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        woken.push(mailbox);
        self.has_woken.store(true, Ordering::Release);
    }

    /// Moves the mailboxes noted by `note_woken` into `into` (cleared
    /// first); without a lock when none were noted.
    pub(crate) fn take_woken(&self, into: &mut Vec<usize>) {
        into.clear();
        if !self.has_woken.load(Ordering::Acquire) || !self.has_woken.swap(false, Ordering::AcqRel)
        {
            return;
        }
        let mut woken = self.woken.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *woken, into);
    }

    fn kick(&self) {
        WAKEUPS.fetch_add(1, Ordering::Relaxed);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd. A full
        // counter (EAGAIN) already means "woken".
        unsafe {
            libc::write(
                self.eventfd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    pub(crate) fn eventfd(&self) -> std::os::fd::RawFd {
        self.eventfd.as_raw_fd()
    }

    /// About to sleep: `stuck` when nothing but another thread can wake
    /// this one. The state is published first, then `has_work` is checked
    /// (a waker sets its flag before it reads the state: one of the two
    /// sees the other, both sides use SeqCst), and only then does a stuck
    /// thread stop counting as running.
    pub(crate) fn prepare_sleep(
        &self,
        process: &Process,
        stuck: bool,
        has_work: impl FnOnce() -> bool,
    ) -> Sleep {
        self.state
            .store(if stuck { STUCK } else { SLEEPING }, Ordering::SeqCst);
        if has_work() || process.is_over() {
            // A waker that found STUCK meanwhile already counted this
            // thread again (and left RUNNING): undo that second count.
            if self.state.swap(RUNNING, Ordering::SeqCst) == RUNNING && stuck {
                process.running.fetch_sub(1, Ordering::AcqRel);
            }
            return Sleep::Retry;
        }
        // A wake from here on finds STUCK and counts this thread again
        // before it kicks, so the count cannot reach zero under it.
        if stuck && process.stop_running() {
            return Sleep::Over;
        }
        Sleep::Wait
    }

    /// Back from sleep (or sleep called off): running again.
    pub(crate) fn awake(&self, process: &Process) {
        if self.state.swap(RUNNING, Ordering::SeqCst) == STUCK {
            process.running.fetch_add(1, Ordering::AcqRel);
        }
        let mut buf = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from our non-blocking
        // eventfd (EAGAIN when nobody wrote).
        unsafe {
            libc::read(
                self.eventfd.as_raw_fd(),
                (&mut buf as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }
}
