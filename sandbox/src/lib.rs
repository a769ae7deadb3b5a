//! luring-sandbox: starts untrusted code in a process that can reach nothing
//! but what it is handed.
//!
//! How it fits together (each module states its own invariants):
//! - [`Supervisor::start`] runs at the very top of `main`, before any thread
//!   or secret exists, and forks the supervisor (`supervisor.rs`). The host
//!   talks to it over a `SOCK_SEQPACKET` socket with a closed set of requests
//!   (`wire.rs`): spawn, signal, release-ring. Anything else is refused.
//! - For a spawn, the supervisor creates the sandbox's restricted io_uring
//!   (`ring.rs`), then `clone3`s a child into new user, mount, PID, network,
//!   IPC, UTS and cgroup namespaces (`spawn.rs`). The child is the sandbox's
//!   PID 1 (`init.rs`): it builds an empty tmpfs root with the granted paths
//!   bind-mounted, `pivot_root`s, closes every descriptor not granted, drops
//!   all capabilities, sets `no_new_privs`, applies Landlock (`landlock.rs`)
//!   and seccomp (`seccomp.rs`), then forks the process that runs the
//!   registered entry point and reaps until it exits. The supervisor keeps
//!   the next PID 1 warm (namespaces entered, ring inherited, waiting for
//!   its spec), so a spawn mostly pays only for the spec-dependent steps.
//!   For an entry registered with [`register_pooled_entry`] it also keeps
//!   one sandbox of the default spec fully started ahead of its spawn; a
//!   spawn with that spec takes it and hands it its standard streams.
//! - The host gets a [`SandboxHandle`]: pidfd, control socket, a dup of the
//!   sandbox's ring fd (to install capabilities with `MsgRingSendFd`), an exit
//!   status channel, and the [`Enforcement`] report.
//!
//! Entry points are registered with [`register_entry`] before
//! [`Supervisor::start`]: the sandbox is a clone of the supervisor, which is
//! a fork of the host at start-up, so only functions known then exist there.

#![deny(unsafe_op_in_unsafe_fn)]

mod init;
pub mod landlock;
mod plan;
pub mod ring;
pub mod seccomp;
mod spawn;
mod supervisor;
pub mod sys;
mod wire;

use std::ffi::OsString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;

pub use io_uring;
pub use io_uring::IoUring;
pub use ring::RingSpec;
pub use supervisor::Supervisor;

/// An entry point: runs inside the sandbox; its return value is the exit code.
pub type EntryFn = fn(EntryContext) -> i32;

/// Registered entry points: name, function, and whether it may be started
/// ahead of its spawn ([`register_pooled_entry`]).
static ENTRIES: Mutex<Vec<(&'static str, EntryFn, bool)>> = Mutex::new(Vec::new());
static STARTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers an entry point under `name`. Must be called before
/// [`Supervisor::start`] (the supervisor only knows what existed when it was
/// forked).
pub fn register_entry(name: &'static str, f: EntryFn) -> Result<(), StartError> {
    register(name, f, false)
}

/// Registers an entry point that the supervisor may start ahead of its
/// spawn (at most one such entry per process). Once a first spawn asked
/// for it, the supervisor keeps one sandbox of this entry ready for the
/// *pool spec*: [`SandboxSpec::default`] with any stdin, stdout and stderr
/// and no argument bytes. Such a sandbox has run the whole lock-down of
/// that spec, and its entry runs with [`EntryContext::pooled`] set: it may
/// prepare whatever needs nothing from the spawn, then must call
/// [`receive_spawn_stdio`] before it uses its standard streams or the
/// control socket. A spawn with the pool spec takes it; any other spec is
/// spawned as with [`register_entry`].
pub fn register_pooled_entry(name: &'static str, f: EntryFn) -> Result<(), StartError> {
    register(name, f, true)
}

fn register(name: &'static str, f: EntryFn, pooled: bool) -> Result<(), StartError> {
    if STARTED.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(StartError::RegisterAfterStart(name));
    }
    let mut e = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
    if e.iter().any(|(n, _, _)| *n == name) {
        return Err(StartError::DuplicateEntry(name));
    }
    if pooled {
        if let Some((other, _, _)) = e.iter().find(|(_, _, p)| *p) {
            return Err(StartError::SecondPooledEntry(name, other));
        }
    }
    e.push((name, f, pooled));
    Ok(())
}

pub(crate) fn lookup_entry(name: &str) -> Option<EntryFn> {
    let e = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
    e.iter().find(|(n, _, _)| *n == name).map(|(_, f, _)| *f)
}

/// The entry registered with [`register_pooled_entry`], if any.
pub(crate) fn pooled_entry() -> Option<&'static str> {
    let e = ENTRIES.lock().unwrap_or_else(|p| p.into_inner());
    e.iter().find(|(_, _, p)| *p).map(|(n, _, _)| *n)
}

/// First bytes of the datagram that hands a pooled sandbox its spawn's
/// standard streams.
pub(crate) const STDIO_HANDOVER: &[u8; 8] = b"LRNGSIO1";

/// In a sandbox started ahead of its spawn ([`EntryContext::pooled`]):
/// waits (blocking) until a spawn takes this sandbox, then puts that
/// spawn's stdin, stdout and stderr on descriptors 0, 1 and 2 in place of
/// `/dev/null` (`dup3`, which the seccomp filter allows anyway) and closes
/// the received copies. They come on the control socket as one datagram
/// carrying exactly three descriptors, from the supervisor before the host
/// gets its end, or from the host that claimed this sandbox (see
/// [`Supervisor::spawn`]), before anything else it sends;
/// anything else is an error (every received descriptor is closed) and the
/// entry should exit. Until this returns, what the entry
/// writes to 1 or 2 goes to `/dev/null`: no spawn owns it yet.
pub fn receive_spawn_stdio(control: BorrowedFd<'_>) -> std::io::Result<()> {
    let mut buf = [0u8; 16];
    let r = sys::recv_with_fds(control.as_raw_fd(), &mut buf, 0)?;
    // Dropping `r` closes whatever it carried.
    if r.truncated || r.foreign_cmsg || r.cmsg_count != 1 {
        return Err(std::io::Error::other(
            "stdio hand-over: truncated, or not one SCM_RIGHTS message",
        ));
    }
    if &buf[..r.len] != STDIO_HANDOVER || r.fds.len() != 3 {
        return Err(std::io::Error::other(
            "stdio hand-over: not the hand-over datagram with three descriptors",
        ));
    }
    for (target, fd) in r.fds.iter().enumerate() {
        sys::dup_to(fd.as_raw_fd(), target as RawFd)?;
    }
    Ok(())
}

/// What an entry point receives.
pub struct EntryContext {
    /// The sandbox's only io_uring, restricted (see [`ring`]): every SQE must
    /// use `IOSQE_FIXED_FILE`, so it reaches only what the host installed in
    /// its fixed-file table.
    pub ring: IoUring,
    /// The sandbox's end of the control socket (`SOCK_SEQPACKET`).
    pub control: OwnedFd,
    /// The granted descriptors, in the order of [`SandboxSpec::fds`].
    pub fds: Vec<OwnedFd>,
    /// The argument bytes of the spawn request.
    pub arg: Vec<u8>,
    /// Started ahead of its spawn ([`register_pooled_entry`]): the entry
    /// must call [`receive_spawn_stdio`] before it uses its standard
    /// streams or the control socket. `arg` is empty then.
    pub pooled: bool,
}

impl EntryContext {
    /// Every descriptor the sandbox holds, sorted: stdio, the ring, the
    /// control socket and the grants. Nothing else is open at entry.
    pub fn expected_fds(&self) -> Vec<RawFd> {
        let mut v = vec![0, 1, 2, self.ring.as_raw_fd(), self.control.as_raw_fd()];
        v.extend(self.fds.iter().map(|f| f.as_raw_fd()));
        v.sort_unstable();
        v
    }
}

/// Whether a protection may be weakened on a kernel that lacks it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Requirement {
    /// The spawn fails, naming the missing protection (the default).
    #[default]
    Required,
    /// Enforce what the kernel offers; [`Enforcement`] says what that was.
    BestEffort,
}

/// Protections that can be opted down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Compat {
    /// Landlock ABI 6 (Linux 6.12): file system, TCP and scoping.
    pub landlock: Requirement,
}

/// A granted descriptor.
///
/// A directory is re-attached inside the sandbox: it is bind-mounted at
/// `/.luring-grants/N` (N: its index in [`SandboxSpec::fds`]; nosuid,
/// nodev, noexec, read-only unless [`Access::ReadWrite`]) and the sandbox's
/// descriptor is opened through that mount, so `..` from it (also through
/// `/proc/self/fd/N/..`, `fchdir`, `connect`, `stat`) never leaves the
/// sandbox's tree. The directory must be reachable by the path its
/// descriptor shows (by uid 65534 when the host is root), or the spawn
/// fails. Directories can be granted only here, at spawn:
/// [`ring::send_fd`] refuses them later.
#[derive(Debug)]
pub struct Grant {
    pub fd: OwnedFd,
    /// For a directory: what Landlock allows beneath it (and whether its
    /// mount is read-only). An open file keeps the rights it was opened
    /// with either way.
    pub access: Access,
}

/// Access to a granted path or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// Network of the sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// An empty network namespace: no interface is up; only AF_UNIX sockets
    /// may be created.
    #[default]
    None,
    /// Its own network namespace with `lo` up; AF_INET/AF_INET6 sockets may
    /// be created, and Landlock allows TCP bind/connect on the listed ports.
    Loopback {
        tcp_bind: Vec<u16>,
        tcp_connect: Vec<u16>,
    },
}

/// Standard stream of the sandbox.
#[derive(Debug, Default)]
pub enum Stdio {
    /// `/dev/null` (opened by the supervisor).
    #[default]
    Null,
    /// The supervisor's (i.e. the host's at start-up).
    Inherit,
    /// This descriptor.
    Fd(OwnedFd),
}

/// Resource limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `RLIMIT_NOFILE`.
    pub nofile: u64,
    /// Processes and threads (`RLIMIT_NPROC`, counted per user namespace, so
    /// it is a pids limit of this sandbox alone).
    pub pids: u64,
    /// `RLIMIT_AS` in bytes.
    pub address_space: Option<u64>,
    /// `RLIMIT_CPU` in seconds.
    pub cpu_seconds: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            nofile: 256,
            pids: 64,
            address_space: None,
            cpu_seconds: None,
        }
    }
}

/// Everything a sandbox is given. Nothing is granted unless listed here.
#[derive(Debug, Default)]
pub struct SandboxSpec {
    /// Host paths bind-mounted read-only at the same path.
    pub ro_paths: Vec<PathBuf>,
    /// Host paths bind-mounted read-write at the same path.
    pub rw_paths: Vec<PathBuf>,
    /// Descriptors handed over (they appear in [`EntryContext::fds`]);
    /// see [`Grant`] for what happens to a directory.
    pub fds: Vec<Grant>,
    pub network: Network,
    pub limits: Limits,
    /// The environment of the entry process (nothing else is inherited).
    pub env: Vec<(OsString, OsString)>,
    /// Standard streams; a directory here makes the spawn fail.
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub ring: RingSpec,
    /// Mount a `/proc` of the sandbox's own PID namespace (`subset=pid`,
    /// read-only through Landlock).
    pub mount_proc: bool,
    pub compat: Compat,
}

/// How a sandbox ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// The entry point returned (or called exit) with this code.
    Exited(i32),
    /// The entry process (or the whole sandbox) was killed by this signal.
    Signaled(i32),
    /// The entry process made a syscall outside the seccomp allow-list.
    /// The number is reported by the sandbox's own SIGSYS handler (code
    /// that replaced the handler can hide it; the kill itself cannot be).
    Seccomp { syscall: i32 },
    /// The supervisor went away before reporting.
    Lost,
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exited with code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Seccomp { syscall } => write!(f, "killed by seccomp: syscall {syscall}"),
            ExitStatus::Lost => write!(f, "status lost (supervisor gone)"),
        }
    }
}

/// What is enforced on a sandbox (reported by its PID 1 after lock-down).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enforcement {
    /// New user, mount, PID, network, IPC, UTS and cgroup namespaces (always).
    pub namespaces: bool,
    /// Capabilities dropped (all sets, bounding set, ambient) and securebits locked.
    pub capabilities_dropped: bool,
    pub no_new_privs: bool,
    pub landlock: landlock::LandlockReport,
    /// The seccomp filter (always).
    pub seccomp: bool,
    /// The ring is restricted (always).
    pub ring_restricted: bool,
    /// The pids limit in force.
    pub pids_limit: u64,
    /// The host uid the sandbox runs as.
    pub host_uid: u32,
}

/// A kernel feature a protection needs, for reports and errors.
#[derive(Clone, Copy, Debug)]
pub struct Protection {
    pub name: &'static str,
    pub kernel: &'static str,
    pub when_missing: &'static str,
}

/// Every protection with the kernel it needs (docs/security.md mirrors this).
pub const PROTECTIONS: &[Protection] = &[
    Protection {
        name: "user namespaces (and unprivileged use)",
        kernel: "3.8",
        when_missing: "spawn fails: UserNamespaces",
    },
    Protection {
        name: "clone3 with CLONE_PIDFD",
        kernel: "5.3",
        when_missing: "spawn fails: Clone",
    },
    Protection {
        name: "pidfd_getfd (host's dup of the ring fd)",
        kernel: "5.6",
        when_missing: "spawn fails: Handover",
    },
    Protection {
        name: "close_range",
        kernel: "5.9",
        when_missing: "spawn fails: Setup",
    },
    Protection {
        name: "io_uring restrictions + R_DISABLED",
        kernel: "5.10",
        when_missing: "spawn fails: Ring",
    },
    Protection {
        name: "mount_setattr (read-only binds)",
        kernel: "5.12",
        when_missing: "spawn fails: Setup",
    },
    Protection {
        name: "sparse fixed-file table",
        kernel: "5.19",
        when_missing: "spawn fails: Ring",
    },
    Protection {
        name: "MsgRingSendFd (capability install)",
        kernel: "6.0",
        when_missing: "send_fd fails",
    },
    Protection {
        name: "Landlock ABI 6 (fs + TCP + scoping)",
        kernel: "6.12",
        when_missing: "spawn fails unless compat.landlock = BestEffort",
    },
    Protection {
        name: "seccomp filters (SECCOMP_RET_KILL_PROCESS)",
        kernel: "4.14",
        when_missing: "spawn fails: Setup",
    },
];

/// Errors from [`Supervisor::start`] and [`register_entry`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("Supervisor::start must run before any thread exists ({0} threads running); call it first thing in main")]
    ThreadsRunning(usize),
    #[error("Supervisor::start cannot check that no other thread runs: reading /proc/self/status failed ({0}); mount /proc before starting the supervisor")]
    ThreadCheck(std::io::Error),
    #[error("Supervisor::start was already called")]
    AlreadyStarted,
    #[error("entry point {0:?} registered after Supervisor::start; register entry points first")]
    RegisterAfterStart(&'static str),
    #[error("entry point {0:?} registered twice")]
    DuplicateEntry(&'static str),
    #[error("entry point {0:?} registered as pooled, but {1:?} already is: at most one pooled entry per process")]
    SecondPooledEntry(&'static str, &'static str),
    #[error("could not start the supervisor: {0}")]
    Io(#[from] std::io::Error),
}

/// Errors from [`Supervisor::spawn`] and friends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    #[error(
        "no entry point named {0:?}; register it with register_entry before Supervisor::start"
    )]
    UnknownEntry(String),
    #[error("{0}")]
    MissingProtection(String),
    #[error("cannot create a user namespace: {0}")]
    UserNamespaces(String),
    #[error("sandbox setup failed at {step}: {err}")]
    Setup { step: String, err: std::io::Error },
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("the supervisor refused the request: {0}")]
    Refused(String),
    #[error("the new sandbox could not be handed over to the host ({step}: {err}); it was killed and reaped{}", handover_hint(err))]
    Handover {
        step: &'static str,
        err: std::io::Error,
    },
    #[error("the supervisor is gone (it exits when the host's socket closes or on a protocol error); start a new one")]
    SupervisorGone,
    #[error("supervisor I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn handover_hint(err: &std::io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EMFILE) | Some(libc::ENFILE) => {
            "; the host is at its descriptor limit: close descriptors or raise RLIMIT_NOFILE"
        }
        Some(libc::EPERM) | Some(libc::EACCES) => {
            "; pidfd_getfd was refused (kernel.yama.ptrace_scope = 3 forbids it): lower ptrace_scope"
        }
        _ => "",
    }
}

/// One datagram from a sandbox's control socket: `buf[..len]` of the
/// caller's buffer, and the descriptors that came with it.
#[derive(Debug)]
pub struct ControlFrame {
    pub len: usize,
    pub fds: Vec<OwnedFd>,
}

/// Why [`SandboxHandle::recv_control`] rejected a datagram. In every case
/// the datagram is consumed and each descriptor it carried is closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    #[error("frame from the sandbox truncated (larger than the buffer, or its descriptors did not fit: MSG_CTRUNC, e.g. the host at RLIMIT_NOFILE); dropped, its descriptors closed")]
    Truncated,
    #[error("frame from the sandbox carried a control message other than one SCM_RIGHTS (e.g. credentials); rejected, its descriptors closed")]
    ControlMessage,
    #[error("frame from the sandbox carried {got} descriptors, more than the {max} allowed; rejected, all closed")]
    TooManyFds { got: usize, max: usize },
    #[error("the sandbox's control socket is closed")]
    Closed,
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
}

/// A running (or finished) sandbox, as seen by the host.
#[derive(Debug)]
pub struct SandboxHandle {
    pub(crate) id: u64,
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) control: OwnedFd,
    pub(crate) ring: Option<OwnedFd>,
    pub(crate) status: OwnedFd,
    pub(crate) exit: Option<ExitStatus>,
    pub(crate) enforcement: Enforcement,
    pub(crate) pooled: bool,
}

impl SandboxHandle {
    /// The supervisor's id for this sandbox.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// PID of the sandbox's PID 1 in the host's PID namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }
    /// pidfd of the sandbox's PID 1 (readable when it exits).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }
    /// The host's end of the control socket.
    pub fn control(&self) -> BorrowedFd<'_> {
        self.control.as_fd()
    }
    /// A dup of the sandbox's ring fd (no mapping of its queues), to install
    /// capabilities with [`ring::send_fd`] and wake it with [`ring::wake`].
    /// Always `Some` (the `Option` is kept for compatibility): a spawn whose
    /// ring the host cannot take (or whose identity does not check out)
    /// fails with [`SpawnError::Handover`] and the sandbox is killed.
    pub fn ring_fd(&self) -> Option<BorrowedFd<'_>> {
        self.ring.as_ref().map(|f| f.as_fd())
    }
    /// Readable once the exit status is available.
    pub fn status_fd(&self) -> BorrowedFd<'_> {
        self.status.as_fd()
    }
    /// Receives one datagram the sandbox sent on its control socket
    /// (blocking; poll [`control`](Self::control) first to wait with a
    /// deadline). The frame is the sandbox's, so it is hostile: it is
    /// rejected, and every descriptor that came with it closed, if it was
    /// truncated (larger than `buf`, or descriptors that did not fit:
    /// `MSG_CTRUNC`), carried a control message other than `SCM_RIGHTS`
    /// (e.g. credentials), or more than `max_fds` descriptors (several
    /// `SCM_RIGHTS` messages arrive merged by the kernel, so they count
    /// together). The descriptors of an accepted frame are close-on-exec.
    pub fn recv_control(
        &self,
        buf: &mut [u8],
        max_fds: usize,
    ) -> Result<ControlFrame, ControlError> {
        self.recv_control_with(buf, max_fds, 0)
    }

    /// [`recv_control`](Self::recv_control) without waiting: an empty
    /// socket gives `ControlError::Io` of kind `WouldBlock`. Several
    /// threads may call it; each frame goes to exactly one of them.
    pub fn try_recv_control(
        &self,
        buf: &mut [u8],
        max_fds: usize,
    ) -> Result<ControlFrame, ControlError> {
        self.recv_control_with(buf, max_fds, libc::MSG_DONTWAIT)
    }

    fn recv_control_with(
        &self,
        buf: &mut [u8],
        max_fds: usize,
        flags: i32,
    ) -> Result<ControlFrame, ControlError> {
        let r = sys::recv_with_fds(self.control.as_raw_fd(), buf, flags)?;
        // On every early return below, `r.fds` is dropped: all closed.
        if r.truncated {
            return Err(ControlError::Truncated);
        }
        if r.foreign_cmsg || r.cmsg_count > 1 {
            return Err(ControlError::ControlMessage);
        }
        if r.fds.len() > max_fds {
            return Err(ControlError::TooManyFds {
                got: r.fds.len(),
                max: max_fds,
            });
        }
        if r.len == 0
            && r.cmsg_count == 0
            && sys::poll_one(self.control.as_raw_fd(), libc::POLLIN, 0)? & libc::POLLHUP != 0
        {
            return Err(ControlError::Closed);
        }
        Ok(ControlFrame {
            len: r.len,
            fds: r.fds,
        })
    }
    /// What is enforced on this sandbox.
    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }
    /// Whether the supervisor had started this sandbox ahead of the spawn
    /// (see [`register_pooled_entry`]); the protections are the same.
    pub fn pooled(&self) -> bool {
        self.pooled
    }
    /// Kills the whole sandbox (SIGKILL to its PID 1 tears the PID namespace down).
    pub fn kill(&self) -> std::io::Result<()> {
        self.signal(libc::SIGKILL)
    }
    /// Sends `sig` to the sandbox's PID 1, which forwards it to the entry process.
    pub fn signal(&self, sig: i32) -> std::io::Result<()> {
        match sys::pidfd_send_signal(self.pidfd.as_fd(), sig) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        }
    }
    /// Waits for the sandbox to end: returns the entry process's status as
    /// soon as PID 1 reports it (or PID 1's own, if it died first, e.g.
    /// after [`kill`](Self::kill)). PID 1's exit and the tear-down of the
    /// namespaces may still be finishing then; they cannot be stopped, and
    /// [`pidfd`](Self::pidfd) becomes readable once PID 1 is gone.
    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.wait_timeout(-1).map(|s| s.expect("infinite wait"))
    }
    /// Returns the exit status if it is already known.
    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.wait_timeout(0)
    }
    /// Waits up to `timeout_ms` (-1: forever).
    pub fn wait_timeout(&mut self, timeout_ms: i32) -> std::io::Result<Option<ExitStatus>> {
        if let Some(s) = self.exit {
            return Ok(Some(s));
        }
        let fd = self.status.as_raw_fd();
        if sys::poll_one(fd, libc::POLLIN, timeout_ms)? == 0 {
            return Ok(None);
        }
        let mut buf = [0u8; 8];
        let n = sys::read(fd, &mut buf)?;
        let st = if n == 8 {
            wire::decode_status(&buf).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("exit status from the supervisor: {e}"),
                )
            })?
        } else {
            // EOF: the supervisor went away without reporting.
            ExitStatus::Lost
        };
        self.exit = Some(st);
        Ok(Some(st))
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.kill();
        }
    }
}
