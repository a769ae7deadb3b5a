//! The embedding API: a running [`Runtime`](crate::Runtime) inside a Rust
//! application, actors spawned from Rust, and Rust-side mailboxes.
//!
//! Invariants:
//! - An embedded runtime is one actor `Process` (marked `embedded`) with no
//!   master VM. The runtime itself is registered as one of its threads and
//!   never counts as stuck, so the process does not end when every actor
//!   waits for a message from Rust; it ends on `shutdown`, on drop, on
//!   `system.exit` in any actor, or on a runtime failure.
//! - Every actor spawned from Rust gets its own host thread (host.rs
//!   `spawn_thread_in`), or, with `RuntimeBuilder::threads(n)`, the next of
//!   `n` pool threads in turn (host.rs `Lane`); actors it spawns from Lua
//!   follow `spawn_vm`'s rules.
//! - `spawning` is held while a thread is added and while the runtime is
//!   ended: no thread is started after `shutdown` began, so `shutdown`
//!   joins every thread the runtime ever started.
//! - A message from Rust (`ActorHandle::send`) has no sender: it is queued
//!   at once (no rendezvous) and costs the receiver's thread at most one
//!   wake-up per sleep (the `ThreadSignal` rule).

pub(crate) mod mailbox;
pub(crate) mod module;
pub(crate) mod sandboxed;
pub(crate) mod serde;
mod spec;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::actor::host::{self, ThreadFailed};
use crate::actor::mailbox::Envelope;
use crate::actor::process::{Process, ThreadSignal};
use crate::{ActorAddress, ExitStatus, Message, RuntimeError};

pub use sandboxed::{DeliveryError, SandboxOptions, SandboxStdin};
pub use spec::ActorSpec;

/// Settings of an embedded [`Runtime`](crate::Runtime); see
/// [`Runtime::builder`](crate::Runtime::builder).
///
/// Threads: by default each actor spawned from Rust runs on an OS thread
/// of its own; with [`threads`](Self::threads) they share a fixed number.
/// Host threads are named `luring-actor` and have a 16 MiB stack of
/// address space so deep Lua recursion ends as a Lua error; actors spawned
/// with `spawn_vm` share their spawner's thread unless they ask for
/// `inherit_context = false`.
///
/// ```
/// let runtime = luring::Runtime::builder()
///     .memory_limit(Some(64 << 20))
///     .import_root(".")
///     .build()?;
/// # Ok::<(), luring::RuntimeError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RuntimeBuilder {
    pub(crate) memory_limit: Option<usize>,
    pub(crate) import_root: Option<PathBuf>,
    pub(crate) threads: Option<usize>,
    pub(crate) modules: Vec<(String, module::Module)>,
}

impl RuntimeBuilder {
    /// Caps the Lua heap of each actor VM at `bytes` (default: no cap).
    /// Past it, allocations fail as Lua "not enough memory" errors in that
    /// VM only. [`ActorSpec::memory_limit`] overrides it per actor.
    pub fn memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// The directory beneath which [`ActorSpec::module`] and
    /// [`ActorSpec::source`] actors find their modules (`require`).
    /// Default: the current directory when the runtime is built.
    /// [`ActorSpec::file`] actors use their file's directory, like the
    /// `luring` command.
    pub fn import_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.import_root = Some(dir.into());
        self
    }

    /// Runs the actors spawned with [`Runtime::spawn`](crate::Runtime::spawn)
    /// on at most `n` host threads, placed in turn (the first on thread 1,
    /// the `n`+1st on thread 1 again), instead of one thread per actor (the
    /// default). Actors on one thread run their ready fibers in turn and
    /// never run at the same time, like actors that `spawn_vm` placed on
    /// the same thread; a thread whose actors all ended leaves, and the
    /// next actor placed there starts a new one. An actor spawned by a
    /// Rust function (see [`module`](Self::module)) that runs on a pool
    /// thread goes on that same thread. Sandboxed actors run in their own
    /// process and are not counted. `build()` refuses `0`
    /// ([`RuntimeError::Setting`]).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().threads(2).build()?;
    /// let replies = runtime.mailbox();
    /// for n in 0..10 {
    ///     let actor = runtime.spawn(luring::ActorSpec::source(
    ///         "echo.lua",
    ///         "local m = require('inbox'):receive(); m.to:send(m.n)",
    ///     ))?;
    ///     let to = luring::Message::Address(replies.address());
    ///     actor.send(luring::Message::object([("n", n.into()), ("to", to)]))?;
    /// }
    /// let mut got: Vec<f64> = (0..10).map(|_| replies.recv().unwrap().as_number().unwrap()).collect();
    /// got.sort_by(f64::total_cmp);
    /// assert_eq!(got, (0..10).map(f64::from).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }

    /// Registers a Rust [`Module`](crate::Module) that the scripts of every
    /// actor of this runtime load with `require 'name'` (not sandboxed
    /// actors: they run in another process). `build()` refuses a name that
    /// is not like `game` or `game.world`, the name of a builtin module
    /// (`time`, `json`, …) and a name given twice
    /// ([`RuntimeError::Module`]).
    ///
    /// ```
    /// let Err(err) = luring::Runtime::builder()
    ///     .module("json", luring::Module::new())
    ///     .build()
    /// else {
    ///     panic!("a module named json was accepted")
    /// };
    /// assert!(matches!(err, luring::RuntimeError::Module { .. }), "{err}");
    /// ```
    pub fn module(mut self, name: &str, module: module::Module) -> Self {
        self.modules.push((name.to_owned(), module));
        self
    }

    /// Starts the runtime: no thread yet, actors get theirs when spawned.
    /// Fails when the import root cannot be opened as a directory, no
    /// eventfd is available, or a module is refused (see
    /// [`module`](Self::module)).
    pub fn build(self) -> Result<crate::Runtime, RuntimeError> {
        let modules = module::check(self.modules)?;
        if self.threads == Some(0) {
            return Err(RuntimeError::Setting {
                name: "threads",
                reason: "an embedded runtime needs at least one thread for its actors".into(),
            });
        }
        let runtime = crate::Runtime {
            memory_limit: self.memory_limit,
            threads: self.threads,
            embedded: std::sync::OnceLock::new(),
            import_root: self.import_root.clone(),
        };
        let embedded = runtime.embedded()?;
        // Before any actor exists: every VM sees the same set.
        let _ = embedded.process.host_modules.set(modules);
        Ok(runtime)
    }
}

/// The host threads that actors spawned from Rust share, in spawn order.
#[derive(Default)]
struct Pool {
    /// One per thread of the pool; `None` until its first actor.
    lanes: Vec<Option<Arc<host::Lane>>>,
    next: usize,
}

/// The state of an embedded runtime.
pub(crate) struct Embedded {
    process: Arc<Process>,
    /// The runtime's own place among the process's threads: it keeps the
    /// process from ending while actors wait for Rust, and its eventfd
    /// becomes readable (and stays so: nobody reads it) when the process
    /// ends.
    signal: Arc<ThreadSignal>,
    /// Shared by every actor spawned from Rust (`spec`).
    root: std::sync::Arc<OwnedFd>,
    root_path: PathBuf,
    memory_limit: Option<usize>,
    /// Held while a thread is added; the pool's threads when there is a
    /// pool (`RuntimeBuilder::threads`), else empty.
    spawning: Mutex<Pool>,
    /// How it ended, once every thread was joined.
    ended: Mutex<Option<Result<Option<i32>, String>>>,
    sources: std::sync::atomic::AtomicU64,
}

impl Embedded {
    pub(crate) fn new(
        memory_limit: Option<usize>,
        import_root: Option<&std::path::Path>,
        threads: Option<usize>,
    ) -> Result<Self, RuntimeError> {
        let dir = match import_root {
            Some(dir) => dir.to_path_buf(),
            None => PathBuf::from("."),
        };
        let root_path = std::path::absolute(&dir).map_err(|e| RuntimeError::Load {
            script: dir.clone(),
            reason: format!("the import root {} is not usable: {e}", dir.display()),
        })?;
        let root = nix::fcntl::open(
            &root_path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| RuntimeError::Load {
            script: dir.clone(),
            reason: format!("cannot open the import root {}: {e}", dir.display()),
        })?;
        crate::modules::system::start_signal_watcher();
        let process = Process::new_embedded();
        let signal = process
            .add_thread()
            .map_err(|e| RuntimeError::Internal(format!("cannot create an eventfd: {e}")))?;
        Ok(Self {
            process,
            signal,
            root: std::sync::Arc::new(root),
            root_path,
            memory_limit,
            spawning: Mutex::new(Pool {
                lanes: vec![None; threads.unwrap_or(0)],
                next: 0,
            }),
            ended: Mutex::new(None),
            sources: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn spawn(&self, mut spec: ActorSpec) -> Result<ActorHandle, SpawnError> {
        let name: Arc<str> = spec.name().into();
        let (sandbox, replies) = spec.take_sandbox()?;
        let start = spec.into_start(self)?;
        if let Some(options) = sandbox {
            let _spawning = self.spawning.lock().unwrap_or_else(|e| e.into_inner());
            if self.process.is_over() {
                return Err(SpawnError::Ended);
            }
            let display = String::from_utf8_lossy(&start.display).into_owned();
            return sandboxed::spawn(
                &self.process,
                name,
                &display,
                &start.src,
                &options,
                replies,
                start.monitor,
            );
        }
        let mut pool = self.spawning.lock().unwrap_or_else(|e| e.into_inner());
        if self.process.is_over() {
            return Err(SpawnError::Ended);
        }
        let started = if pool.lanes.is_empty() {
            host::spawn_thread_in(&self.process, start)
        } else if let Some(own) = host::current_lane()
            .filter(|own| pool.lanes.iter().flatten().any(|l| Arc::ptr_eq(l, own)))
        {
            // A Rust function on one of our pool threads: the actor goes on
            // that thread, which never waits for another pool thread (two
            // of them waiting for each other would never end).
            host::boot_here(&own, start)
        } else if host::on_host_thread() {
            // Another runtime's actor thread: a new thread of its own,
            // which waits for nobody.
            host::spawn_thread_in(&self.process, start)
        } else {
            let at = pool.next % pool.lanes.len();
            pool.next = at + 1;
            match host::hand_to_lane(&self.process, &mut pool.lanes[at], start) {
                Ok(host::Handed::Queued(report)) => {
                    // The pool thread may be running an actor that spawns
                    // too (it needs this lock): wait without it. A shutdown
                    // meanwhile answers `Ended`.
                    drop(pool);
                    host::wait_started(report)
                }
                Ok(host::Handed::Started(started)) => Ok(started),
                Err(e) => Err(e),
            }
        };
        match started {
            Ok(Ok(address)) => Ok(ActorHandle {
                address,
                name,
                sandbox: None,
            }),
            Ok(Err(reason)) => Err(SpawnError::Load {
                name: name.to_string(),
                reason,
            }),
            Err(ThreadFailed::Os(e)) => Err(SpawnError::Os(e)),
            Err(ThreadFailed::Boot(text)) => Err(SpawnError::Boot(text)),
            Err(ThreadFailed::Ended) => Err(SpawnError::Ended),
        }
    }

    /// Waits until the process is over (or `deadline` passed: false).
    fn wait_over(&self, deadline: Option<Instant>) -> bool {
        while !self.process.is_over() {
            let timeout_ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int
                }
            };
            let mut pfd = libc::pollfd {
                fd: self.signal.eventfd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one live pollfd; the eventfd lives as long as `self`.
            unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        }
        true
    }

    /// Ends every actor (see `Runtime::shutdown`), joins every thread and
    /// says how the runtime ended.
    fn finish(&self, shut_down: bool) -> Result<Option<ExitStatus>, RuntimeError> {
        if shut_down {
            let _spawning = self.spawning.lock().unwrap_or_else(|e| e.into_inner());
            self.process.lock_outcome().shut_down = true;
            self.process.end();
        }
        let mut ended = self.ended.lock().unwrap_or_else(|e| e.into_inner());
        if ended.is_none() {
            self.wait_over(None);
            loop {
                let joins = std::mem::take(
                    &mut *self.process.joins.lock().unwrap_or_else(|e| e.into_inner()),
                );
                if joins.is_empty() {
                    break;
                }
                for j in joins {
                    if j.join().is_err() {
                        self.process
                            .lock_outcome()
                            .failure
                            .get_or_insert_with(|| "an actor thread panicked".into());
                    }
                }
            }
            self.process.forget(&self.signal);
            let outcome = self.process.lock_outcome();
            *ended = Some(match &outcome.failure {
                Some(reason) => Err(reason.clone()),
                None => Ok(outcome.exit_code),
            });
        }
        match ended.as_ref().expect("set above") {
            Ok(code) => Ok(code.map(|code| ExitStatus { code })),
            Err(reason) => Err(RuntimeError::Internal(reason.clone())),
        }
    }
}

impl crate::Runtime {
    /// Settings for a runtime embedded in a Rust application; `build()`
    /// starts it.
    ///
    /// Call [`start_supervisor`](crate::start_supervisor) and
    /// [`prepare_process_signals`](crate::prepare_process_signals) first
    /// thing in `main`, while the process has one thread: the sandbox
    /// supervisor is a fork of the process (forking later would copy other
    /// threads' locks in whatever state they are), and every thread must
    /// inherit the blocked signal mask that Lua's `system.signal` sets need.
    /// Without them, sandboxed actors and signal sets are unavailable;
    /// everything else works.
    ///
    /// luring logs through the `tracing` crate: its events (targets
    /// `luring::*`) go to whatever subscriber the application installed;
    /// luring never installs one itself (the `luring` command does). With a
    /// global subscriber installed, the reports about actors (a fiber's
    /// panic, a VM closed for memory) go there too (ERROR, target
    /// `luring::actor`) instead of stderr.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let actor = runtime.spawn(luring::ActorSpec::source("idle.lua", "require('inbox'):receive()"))?;
    /// assert_eq!(runtime.shutdown()?, None); // ended by shutdown, not by system.exit
    /// assert!(actor.send("late".into()).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    pub(crate) fn embedded(&self) -> Result<&Embedded, RuntimeError> {
        if let Some(e) = self.embedded.get() {
            return Ok(e);
        }
        let e = Embedded::new(self.memory_limit, self.import_root.as_deref(), self.threads)?;
        Ok(self.embedded.get_or_init(|| e))
    }

    /// Starts an actor on a new thread of this runtime. Returns once its
    /// module compiled and its main fiber is queued; compile and read
    /// errors come back as [`SpawnError::Load`].
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let err = runtime.spawn(luring::ActorSpec::source("bad.lua", "this is not lua")).unwrap_err();
    /// assert!(matches!(err, luring::SpawnError::Load { .. }), "{err}");
    /// # Ok::<(), luring::RuntimeError>(())
    /// ```
    pub fn spawn(&self, spec: ActorSpec) -> Result<ActorHandle, SpawnError> {
        self.embedded().map_err(SpawnError::Runtime)?.spawn(spec)
    }

    /// A new Rust-side mailbox (the same as [`Mailbox::new`](crate::Mailbox::new)).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let mailbox = runtime.mailbox();
    /// let address: luring::ActorAddress = mailbox.address();
    /// # drop(address);
    /// # Ok::<(), luring::RuntimeError>(())
    /// ```
    pub fn mailbox(&self) -> crate::Mailbox {
        crate::Mailbox::new()
    }

    /// Whether the runtime still runs (no shutdown, no `system.exit`, no
    /// failure yet).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// assert!(runtime.is_running());
    /// runtime.shutdown()?;
    /// assert!(!runtime.is_running());
    /// # Ok::<(), luring::RuntimeError>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.embedded.get().is_none_or(|e| !e.process.is_over())
    }

    /// Waits until the runtime ended by itself: `system.exit` in some actor
    /// (`Ok(Some(status))`), a runtime failure (`Err`), or a `shutdown`
    /// from another thread (`Ok(None)`); then joins its threads.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// runtime.spawn(luring::ActorSpec::source(
    ///     "main.lua",
    ///     "require('time').sleep(0.01); require('system').exit(0)",
    /// ))?;
    /// assert_eq!(runtime.wait()?.map(|s| s.code()), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait(&self) -> Result<Option<ExitStatus>, RuntimeError> {
        self.embedded()?.finish(false)
    }

    /// [`wait`](Self::wait) for at most `timeout`: `None` if the runtime
    /// still runs then.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// runtime.spawn(luring::ActorSpec::source("exit.lua", "require('system').exit(3)"))?;
    /// let ended = runtime.wait_timeout(std::time::Duration::from_secs(30));
    /// assert_eq!(ended.unwrap()?.map(|s| s.code()), Some(3));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> Option<Result<Option<ExitStatus>, RuntimeError>> {
        let embedded = match self.embedded() {
            Ok(e) => e,
            Err(e) => return Some(Err(e)),
        };
        if !embedded.wait_over(Some(Instant::now() + timeout)) {
            return None;
        }
        Some(embedded.finish(false))
    }

    /// Ends every actor and joins every thread of the runtime; later calls
    /// (and `wait`) return the same result. How: the process is marked over
    /// and each host thread is woken (one eventfd write each); each thread
    /// then tears its VMs down at once, whatever they wait for (a receive,
    /// a sleep, I/O): its inbox closes first (queued senders get
    /// `channel_closed`), then its Lua state closes, which cancels its ring
    /// operations and closes its descriptors; monitors get a notice with
    /// reason `killed`. No cleanup handler (`scope_cleanup_push`) of a
    /// fiber that was still waiting runs.
    ///
    /// Returns `Some(status)` when `system.exit` had ended the runtime
    /// already, `None` when this call ended it. Dropping the runtime does
    /// the same.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let watch = runtime.mailbox();
    /// runtime.spawn(
    ///     luring::ActorSpec::source("sleeps.lua", "require('time').sleep(3600)").monitor(&watch),
    /// )?;
    /// assert_eq!(runtime.shutdown()?, None);
    /// let notice = watch.recv()?;
    /// assert_eq!(luring::ActorEnded::from_message(&notice).unwrap().reason, "killed");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(&self) -> Result<Option<ExitStatus>, RuntimeError> {
        match self.embedded.get() {
            Some(e) => e.finish(true),
            None => Ok(None),
        }
    }
}

impl Drop for crate::Runtime {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// A handle to an actor started from Rust: `Send + Sync + Clone`.
///
/// While any handle (or any other address of the actor) lives, the actor's
/// `inbox:receive()` waits instead of raising `no_senders`.
///
/// ```
/// let runtime = luring::Runtime::builder().build()?;
/// let printer = runtime.spawn(luring::ActorSpec::source(
///     "printer.lua",
///     "local inbox = require 'inbox'; print(inbox:receive())",
/// ))?;
/// assert_eq!(printer.name(), "printer.lua");
/// let from_another_thread = printer.clone();
/// std::thread::spawn(move || from_another_thread.send("hi".into()))
///     .join()
///     .unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ActorHandle {
    address: ActorAddress,
    name: Arc<str>,
    /// A sandboxed actor: its control socket, ring and pidfd.
    sandbox: Option<Arc<sandboxed::SandboxLink>>,
}

/// A message could not be delivered: the actor's inbox is closed (the
/// actor ended, or closed it). The message comes back.
///
/// ```
/// let runtime = luring::Runtime::builder().build()?;
/// let watch = runtime.mailbox();
/// let actor = runtime.spawn(luring::ActorSpec::source("done.lua", "return").monitor(&watch))?;
/// watch.recv_timeout(std::time::Duration::from_secs(30))?; // it ended
/// let luring::SendError(message) = actor.send("too late".into()).unwrap_err();
/// assert_eq!(message.as_str(), Some("too late"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(thiserror::Error)]
#[error(
    "the actor's inbox is closed (the actor ended or closed it); the message was not delivered"
)]
pub struct SendError(pub Message);

impl std::fmt::Debug for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendError(..)")
    }
}

impl ActorHandle {
    /// Queues `message` in the actor's inbox. It does not wait for the
    /// actor to take it (Rust is not a fiber: there is no rendezvous this
    /// way); messages from one Rust thread arrive in order.
    ///
    /// To a sandboxed actor the message travels as one frame on its control
    /// socket (this blocks while the socket is full); each `OwnedFd` in it
    /// is installed in the sandbox's table as a capability. Any failure
    /// gives the message back as [`SendError`]; [`send_checked`](Self::send_checked)
    /// says why.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_checked(message)
            .map_err(|(message, _)| SendError(message))
    }

    /// [`send`](Self::send), saying why a message was not delivered: the
    /// actor ended ([`DeliveryError::Closed`]), or the message cannot go to
    /// it ([`DeliveryError::Refused`]: for a sandboxed actor a directory or
    /// `O_PATH` descriptor, channels to more than 64 mailboxes besides its
    /// replies one, a full table of descriptors). The message comes back
    /// whole, descriptors included.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let actor = runtime.spawn(luring::ActorSpec::source("idle.lua", "return"))?;
    /// runtime.shutdown()?;
    /// let (message, why) = actor.send_checked("late".into()).unwrap_err();
    /// assert!(matches!(why, luring::DeliveryError::Closed));
    /// assert_eq!(message.as_str(), Some("late"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_checked(&self, message: Message) -> Result<(), (Message, DeliveryError)> {
        if let Some(link) = &self.sandbox {
            return link.send(message);
        }
        self.address
            .mailbox
            .post(Envelope {
                msg: message,
                sender: None,
                send_id: 0,
            })
            .map_err(|envelope| (envelope.msg, DeliveryError::Closed))
    }

    /// Kills a sandboxed actor at once (`SIGKILL` to its sandbox) and
    /// returns once nothing of it runs (waiting at most a second); its
    /// monitor gets reason `killed` with signal 9. Killing one that already
    /// ended does nothing. An in-process actor cannot be killed alone (its
    /// VM shares a thread with others): that is [`KillError::NotSandboxed`],
    /// and [`Runtime::shutdown`](crate::Runtime::shutdown) ends them all.
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let actor = runtime.spawn(luring::ActorSpec::source("idle.lua", "return"))?;
    /// assert!(matches!(actor.kill(), Err(luring::KillError::NotSandboxed)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn kill(&self) -> Result<(), KillError> {
        match &self.sandbox {
            Some(link) => link.kill().map_err(KillError::Os),
            None => Err(KillError::NotSandboxed),
        }
    }

    /// Whether the actor runs in a sandbox.
    pub fn is_sandboxed(&self) -> bool {
        self.sandbox.is_some()
    }

    /// The actor's address, to put in a message (another actor receives
    /// it as a tx-channel). A sandboxed actor has no inbox in this process:
    /// its address is a closed one (sends to it fail); use
    /// [`send`](Self::send).
    pub fn address(&self) -> ActorAddress {
        self.address.clone()
    }

    /// Whether the actor's inbox is closed (sends fail); for a sandboxed
    /// actor, whether its sandbox ended.
    pub fn is_closed(&self) -> bool {
        if let Some(link) = &self.sandbox {
            return link.has_ended();
        }
        self.address.mailbox.is_closed()
    }

    /// The name the actor was spawned as (its file, source name or module).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for ActorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorHandle")
            .field("name", &self.name)
            .field("address", &self.address)
            .finish()
    }
}

/// Why [`Runtime::spawn`](crate::Runtime::spawn) started no actor.
///
/// ```
/// let runtime = luring::Runtime::builder().build()?;
/// let err = runtime.spawn(luring::ActorSpec::module("../outside")).unwrap_err();
/// assert!(matches!(err, luring::SpawnError::InvalidName(_)));
/// # Ok::<(), luring::RuntimeError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The module could not be read or does not compile.
    #[error("cannot load {name}: {reason}")]
    Load {
        /// What was spawned (file, source name or module).
        name: String,
        /// The reason, with the line for syntax errors.
        reason: String,
    },
    /// A source name or module name is not valid (empty, absolute, `..`,
    /// a NUL byte or characters other than letters, digits and `_`).
    #[error("invalid actor name {0:?}: use names like `filters/auth` (letters, digits, _)")]
    InvalidName(String),
    /// The runtime has ended (shutdown, `system.exit` or a failure).
    #[error("the runtime has ended")]
    Ended,
    /// The runtime could not start.
    #[error(transparent)]
    Runtime(RuntimeError),
    /// The OS refused a thread or an eventfd.
    #[error("cannot start the actor's thread: {0}")]
    Os(#[source] std::io::Error),
    /// The VM did not boot (no io_uring, or a bug in luring).
    #[error("cannot start the actor's VM: {0}")]
    Boot(String),
    /// A [`SandboxOptions`] value is out of range (the option is named).
    #[error("invalid sandbox option {0}")]
    InvalidSandboxOption(String),
    /// The sandbox could not start: no supervisor
    /// ([`start_supervisor`](crate::start_supervisor) was not called first
    /// thing in `main`), a protection the kernel lacks, a granted path that
    /// does not exist.
    #[error("cannot start the sandbox: {0}")]
    Sandbox(String),
}

/// Why [`ActorHandle::kill`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KillError {
    /// Only sandboxed actors can be killed one by one.
    #[error(
        "only a sandboxed actor can be killed alone; Runtime::shutdown ends in-process actors"
    )]
    NotSandboxed,
    /// The kernel refused the signal.
    #[error("cannot kill the sandbox: {0}")]
    Os(#[source] std::io::Error),
}

/// How an actor ended, read from a monitor notice (see
/// [`ActorSpec::monitor`]).
///
/// ```
/// let runtime = luring::Runtime::builder().build()?;
/// let watch = runtime.mailbox();
/// runtime.spawn(luring::ActorSpec::source("ok.lua", "return").monitor(&watch))?;
/// let ended = luring::ActorEnded::from_message(&watch.recv()?).unwrap();
/// assert_eq!((ended.reason.as_str(), ended.error), ("normal", None));
/// assert!(!ended.sandboxed);
/// assert!(luring::ActorEnded::from_message(&"other".into()).is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ActorEnded {
    /// In-process actors: `normal` (its main fiber returned), `panic` (it
    /// raised an error) or `killed` (torn down: shutdown, `system.exit`
    /// elsewhere, or out of memory).
    ///
    /// Sandboxed actors ([`ActorSpec::sandbox`]): `exited` (with
    /// [`code`](Self::code): 0 when its main fiber returned, 1 when it
    /// raised an error, or its `system.exit` code, whatever it is),
    /// `memory` (its memory limit), `failed` (its runtime could not start
    /// it), `cpu_budget` (its CPU seconds), `killed` (with
    /// [`signal`](Self::signal): [`ActorHandle::kill`], shutdown),
    /// `seccomp` (a forbidden system call, with [`syscall`](Self::syscall))
    /// or `lost` (its status could not be read).
    pub reason: String,
    /// The error of a `panic`.
    pub error: Option<String>,
    /// Whether the notice is a sandboxed actor's.
    pub sandboxed: bool,
    /// The exit code of `exited`.
    pub code: Option<i32>,
    /// The signal of `killed` (sandboxed actors).
    pub signal: Option<i32>,
    /// The system call number of `seccomp`.
    pub syscall: Option<i64>,
}

impl ActorEnded {
    /// Reads a monitor notice (`{monitor = 'ended', reason = …}`); `None`
    /// for any other message.
    pub fn from_message(message: &Message) -> Option<Self> {
        if message.get("monitor")?.as_str()? != "ended" {
            return None;
        }
        let number = |key: &str| message.get(key).and_then(|m| m.as_number());
        Some(Self {
            reason: message.get("reason")?.as_str()?.to_owned(),
            error: message
                .get("error")
                .and_then(|e| e.as_bytes())
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            sandboxed: matches!(message.get("sandbox"), Some(Message::Bool(true))),
            code: number("code").map(|n| n as i32),
            signal: number("signal").map(|n| n as i32),
            syscall: number("syscall").map(|n| n as i64),
        })
    }
}
