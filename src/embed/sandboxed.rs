//! Sandboxed actors spawned from Rust: typed sandbox options, the link a
//! handle keeps to its sandbox, sending to it, killing it.
//!
//! Invariants:
//! - [`SandboxOptions`] is the one typed form of Lua's `sandbox = {...}`:
//!   Lua's parser builds it too, and `host::spec_of_options` alone turns it
//!   into a `SandboxSpec` (but for stdin: each side turns its own kind of
//!   descriptor into the spec's stream, Lua's in `host::stdio_of`). [`SandboxOptions::check`] applies the ranges
//!   lua/core/actors.lua applies, so Rust cannot ask for more than Lua can.
//! - A sandbox spawned from Rust is served by a relay thread
//!   (`host::serve_sandbox`; one spawned from Lua is read on its VM's ring
//!   instead, which a Rust mailbox has not): its frames go to the replies
//!   mailbox, its end to the monitor; the relay kills it when the runtime
//!   ends. Dropping every handle does not kill it (as a detached sandbox).
//! - A descriptor sent to it is installed in its ring's table with a
//!   `MSG_RING` from a small ring of the link's own (one per link, behind a
//!   mutex), through the same checks as from Lua (`refuse_reaching`);
//!   when the send fails, the slots already filled are emptied and the
//!   message, descriptors included, comes back to the caller.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use io_uring::{opcode, types, IoUring};

use super::{ActorHandle, SpawnError};
use crate::actor::mailbox::{ActorAddress, Mailbox as Inbox};
use crate::actor::process::Process;
use crate::actor::sandboxed::host;
use crate::actor::sandboxed::routes::RouteTable;
use crate::Message;

/// The sandbox of an actor spawned from Rust: the same options as Lua's
/// `spawn_vm{ sandbox = {...} }` (docs/guide/sandboxes.md), with the same
/// ranges. Nothing is granted unless a method says so.
///
/// ```
/// let options = luring::SandboxOptions::new()
///     .read_only("/usr/share")
///     .network_loopback([], [5432])
///     .open_files(64)
///     .processes(16)
///     .memory(64 << 20)
///     .cpu_seconds(10);
/// # drop(options);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxOptions {
    pub(crate) stdin: SandboxStdin,
    pub(crate) read_only: Vec<PathBuf>,
    pub(crate) read_write: Vec<PathBuf>,
    /// `Some((tcp_bind, tcp_connect))`: a loopback-only network.
    pub(crate) network: Option<(Vec<u16>, Vec<u16>)>,
    pub(crate) open_files: Option<u64>,
    pub(crate) processes: Option<u64>,
    pub(crate) memory: Option<u64>,
    pub(crate) cpu_seconds: Option<u64>,
    pub(crate) allow_weaker_landlock: bool,
}

/// The standard input of a sandboxed actor (Lua's `sandbox = { stdin =
/// ... }`), read inside with `system.in_`. Its standard output and error
/// are always this process's.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum SandboxStdin {
    /// `/dev/null`: the first read is end of file.
    #[default]
    Null,
    /// A copy of this process's standard input: both read the same stream.
    Share,
    /// A copy of this descriptor (a pipe's read end, a file, a socket), made
    /// when the actor is spawned. A directory is refused then (`..` from it
    /// would reach the host's tree).
    Fd(Arc<OwnedFd>),
}

impl PartialEq for SandboxStdin {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Null, Self::Null) | (Self::Share, Self::Share) => true,
            (Self::Fd(a), Self::Fd(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for SandboxStdin {}

impl From<OwnedFd> for SandboxStdin {
    fn from(fd: OwnedFd) -> Self {
        Self::Fd(Arc::new(fd))
    }
}

const MAX_PATHS: usize = 64;
const MAX_PORTS: usize = 64;

impl SandboxOptions {
    /// A sandbox that grants nothing (Lua's `sandbox = {}`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Bind-mounts `path` (absolute) read-only at the same place.
    pub fn read_only(mut self, path: impl Into<PathBuf>) -> Self {
        self.read_only.push(path.into());
        self
    }

    /// Bind-mounts `path` (absolute) read-write at the same place.
    pub fn read_write(mut self, path: impl Into<PathBuf>) -> Self {
        self.read_write.push(path.into());
        self
    }

    /// A network namespace with `lo` only; TCP `bind` on `tcp_bind` ports and
    /// `connect` to `tcp_connect` ports are allowed (Lua's `network = {...}`;
    /// both empty is `'loopback'`). The default is no network at all.
    pub fn network_loopback(
        mut self,
        tcp_bind: impl IntoIterator<Item = u16>,
        tcp_connect: impl IntoIterator<Item = u16>,
    ) -> Self {
        self.network = Some((
            tcp_bind.into_iter().collect(),
            tcp_connect.into_iter().collect(),
        ));
        self
    }

    /// `RLIMIT_NOFILE` (16 to 65536; default 256).
    pub fn open_files(mut self, n: u64) -> Self {
        self.open_files = Some(n);
        self
    }

    /// Processes and threads (4 to 4096; default 64).
    pub fn processes(mut self, n: u64) -> Self {
        self.processes = Some(n);
        self
    }

    /// The Lua heap limit in bytes (at least 1 MiB); past it the plugin
    /// ends with reason `memory` unless it catches the error.
    pub fn memory(mut self, bytes: u64) -> Self {
        self.memory = Some(bytes);
        self
    }

    /// CPU-time budget in seconds (at least 1); used up, the plugin ends
    /// with reason `cpu_budget`.
    pub fn cpu_seconds(mut self, seconds: u64) -> Self {
        self.cpu_seconds = Some(seconds);
        self
    }

    /// Its standard input (default [`SandboxStdin::Null`]), read inside
    /// with `system.in_`: e.g. a pipe the host writes a request into.
    ///
    /// ```
    /// let (reader, writer) = std::io::pipe()?;
    /// let options = luring::SandboxOptions::new().stdin(std::os::fd::OwnedFd::from(reader));
    /// // runtime.spawn(luring::ActorSpec::file("filter.lua").sandbox(options)) ...
    /// # drop((options, writer));
    /// let shared = luring::SandboxOptions::new().stdin(luring::SandboxStdin::Share);
    /// # drop(shared);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdin(mut self, stdin: impl Into<SandboxStdin>) -> Self {
        self.stdin = stdin.into();
        self
    }

    /// Runs the sandbox with the Landlock the kernel has when it lacks ABI 6
    /// (Lua's `allow_weaker = { 'landlock' }`); without it such a kernel
    /// refuses the spawn.
    pub fn allow_weaker_landlock(mut self) -> Self {
        self.allow_weaker_landlock = true;
        self
    }

    /// The reason these options are refused, naming the option (the ranges
    /// of docs/guide/sandboxes.md).
    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, list) in [
            ("read_only", &self.read_only),
            ("read_write", &self.read_write),
        ] {
            if list.len() > MAX_PATHS {
                return Err(format!("{name}: more than {MAX_PATHS} paths"));
            }
            for p in list {
                let bytes = std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str());
                if !p.is_absolute() || bytes.contains(&0) || bytes.len() >= 4096 {
                    return Err(format!(
                        "{name}: {} is not an absolute path (shorter than 4096 bytes, no NUL)",
                        p.display()
                    ));
                }
            }
        }
        if let Some((bind, connect)) = &self.network {
            if bind.len() > MAX_PORTS || connect.len() > MAX_PORTS {
                return Err(format!("network: more than {MAX_PORTS} ports in a list"));
            }
        }
        let range = |name: &str, v: Option<u64>, lo: u64, hi: u64| match v {
            Some(n) if n < lo || n > hi => Err(format!("{name}: {n} is not in {lo}..={hi}")),
            _ => Ok(()),
        };
        range("open_files", self.open_files, 16, 65536)?;
        range("processes", self.processes, 4, 4096)?;
        range("memory", self.memory, 1 << 20, (1 << 53) - 1)?;
        range("cpu_seconds", self.cpu_seconds, 1, 1 << 31)?;
        Ok(())
    }
}

/// What a handle keeps of a sandbox it can send to and kill.
pub(crate) struct SandboxLink {
    control: OwnedFd,
    /// The host's dup of the sandbox's ring fd (`None`: the supervisor did
    /// not hand it over, so no descriptor can be sent).
    ring: Option<OwnedFd>,
    pidfd: OwnedFd,
    /// Route 0 of the sandbox: the replies mailbox (the sandbox sees it as
    /// its channel to the host).
    replies: Option<ActorAddress>,
    /// The sandbox's route table (routes.rs), shared with its relay.
    routes: Arc<RouteTable>,
    /// Made on the first descriptor sent.
    fd_sender: Mutex<Option<FdSender>>,
}

/// Why a message did not reach a sandboxed actor; see
/// [`ActorHandle::send_checked`](crate::ActorHandle::send_checked).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The actor's inbox or control socket is closed (it ended).
    #[error(
        "the actor's inbox is closed (the actor ended or closed it); the message was not delivered"
    )]
    Closed,
    /// The message cannot go to this actor (a directory or `O_PATH`
    /// descriptor, channels to more than 64 mailboxes besides its replies
    /// one, a full table of received descriptors, a frame too large);
    /// nothing was sent.
    #[error("{0}")]
    Refused(String),
}

impl SandboxLink {
    /// Sends `msg` as one frame (blocking while the control socket is
    /// full). On failure the message comes back whole.
    pub(crate) fn send(&self, msg: Message) -> Result<(), (Message, DeliveryError)> {
        // (Its socket's other end may outlive it in the supervisor: a send
        // would succeed and reach nobody.)
        if self.has_ended() {
            return Err((msg, DeliveryError::Closed));
        }
        match self.send_frame(&msg) {
            Ok(()) => Ok(()),
            Err(e) => Err((msg, e)),
        }
    }

    fn send_frame(&self, msg: &Message) -> Result<(), DeliveryError> {
        let refused = DeliveryError::Refused;
        let converted =
            crate::ipc::convert_message(msg).map_err(|e| refused(format!("send: {e}")))?;
        // The replies mailbox is route 0; any other address gets a route
        // of this sandbox's table (routes.rs). Checked first: a refused
        // frame installs nothing.
        let replies = self.replies.as_ref().map(|r| &r.mailbox);
        let plan = self
            .routes
            .routes_for(replies, &converted.channels)
            .map_err(|e| refused(e.message()))?;
        let slots = match (converted.fds.is_empty(), &self.ring) {
            (true, _) => Vec::new(),
            (false, None) => {
                return Err(refused(
                    "send: this sandbox's ring was not handed to the host, so no file \
                     descriptor can be installed in it"
                        .into(),
                ))
            }
            (false, Some(ring)) => self
                .install(&converted.fds, ring.as_fd())
                .map_err(refused)?,
        };
        let undo = |slots: &[u32]| {
            if let Some(ring) = &self.ring {
                host::clear_slots(ring.as_raw_fd(), slots);
            }
        };
        let routing = crate::ipc::Routing {
            destination: 0,
            channels: plan.as_ref().map(|p| p.routes.clone()).unwrap_or_default(),
        };
        let frame = match converted.encode(crate::ipc::FdPlacement::FixedSlots(&slots), &routing) {
            Ok(frame) => frame,
            Err(e) => {
                undo(&slots);
                return Err(refused(format!("send: {e}")));
            }
        };
        // Added before the (blocking) send: the relay thread must not wait
        // for the table while the sandbox waits for it. A send that fails
        // from here revokes them again.
        let named = plan.map(crate::actor::sandboxed::routes::RoutePlan::commit);
        luring_sandbox::sys::send_with_fds(self.control.as_raw_fd(), &frame.bytes, &[]).map_err(
            |e| {
                undo(&slots);
                if let Some(named) = &named {
                    self.routes.revoke(named);
                }
                match e.raw_os_error() {
                    Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) => DeliveryError::Closed,
                    _ => refused(format!("send: control socket: {e}")),
                }
            },
        )
    }

    /// Installs `fds` in the sandbox ring's table; on failure empties the
    /// slots already filled.
    fn install(&self, fds: &[BorrowedFd<'_>], ring: BorrowedFd<'_>) -> Result<Vec<u32>, String> {
        let mut sender = self.fd_sender.lock().unwrap_or_else(|e| e.into_inner());
        if sender.is_none() {
            *sender = Some(
                FdSender::new()
                    .map_err(|e| format!("send: cannot make a ring to pass descriptors: {e}"))?,
            );
        }
        let sender = sender.as_mut().expect("made above");
        let mut slots = Vec::with_capacity(fds.len());
        for fd in fds {
            let installed = host::refuse_reaching(*fd)
                .and_then(|()| sender.send(*fd, ring).map_err(|e| host::install_error(&e)));
            match installed {
                Ok(slot) => slots.push(slot),
                Err(reason) => {
                    host::clear_slots(ring.as_raw_fd(), &slots);
                    return Err(reason);
                }
            }
        }
        Ok(slots)
    }

    /// SIGKILLs the sandbox (nothing if it already ended) and waits (at most
    /// a second) until nothing of it runs.
    pub(crate) fn kill(&self) -> std::io::Result<()> {
        match luring_sandbox::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL) {
            Ok(()) => {
                let _ = luring_sandbox::sys::poll_one(self.pidfd.as_raw_fd(), libc::POLLIN, 1000);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the sandbox ended (its pidfd is readable).
    pub(crate) fn has_ended(&self) -> bool {
        matches!(
            luring_sandbox::sys::poll_one(self.pidfd.as_raw_fd(), libc::POLLIN, 0),
            Ok(r) if r != 0
        )
    }
}

/// A two-entry ring that passes a descriptor into another ring's table
/// (`IORING_OP_MSG_RING` with `IORING_MSG_SEND_FD`, through slot 0 of its
/// own one-slot table), as the executor does for a VM.
struct FdSender {
    ring: IoUring,
}

/// `IORING_MSG_RING_CQE_SKIP`: the target ring gets no completion.
const MSG_RING_CQE_SKIP: u32 = 1;

impl FdSender {
    fn new() -> std::io::Result<Self> {
        let ring = IoUring::new(2)?;
        ring.submitter().register_files_sparse(1)?;
        Ok(Self { ring })
    }

    fn send(&mut self, fd: BorrowedFd<'_>, target: BorrowedFd<'_>) -> std::io::Result<u32> {
        self.ring
            .submitter()
            .register_files_update(0, &[fd.as_raw_fd()])?;
        let entry = opcode::MsgRingSendFd::new(
            types::Fd(target.as_raw_fd()),
            types::Fixed(0),
            types::DestinationSlot::auto_target(),
            0,
        )
        .opcode_flags(MSG_RING_CQE_SKIP)
        .build();
        // SAFETY: the entry holds no pointer into memory of ours.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        let result = pushed
            .map_err(|_| std::io::Error::other("submission queue full"))
            .and_then(|()| self.ring.submit_and_wait(1))
            .and_then(|_| {
                self.ring
                    .completion()
                    .next()
                    .map(|cqe| cqe.result())
                    .ok_or_else(|| std::io::Error::other("no completion"))
            });
        // Empty the passing slot whatever happened.
        let cleared = self.ring.submitter().register_files_update(0, &[-1]);
        let result = result?;
        cleared?;
        if result < 0 {
            return Err(std::io::Error::from_raw_os_error(-result));
        }
        Ok(result as u32)
    }
}

/// A dup of the host's standard stream `fd`.
fn share_std(fd: i32) -> Result<luring_sandbox::Stdio, SpawnError> {
    // SAFETY: fds 0, 1 and 2 stay open for the program's life.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fd.try_clone_to_owned()
        .map(luring_sandbox::Stdio::Fd)
        .map_err(SpawnError::Os)
}

/// Spawns `source` (shown as `display`) in a sandbox; its frames go to
/// `replies`, how it ended to `monitor`.
pub(crate) fn spawn(
    process: &Arc<Process>,
    name: Arc<str>,
    display: &str,
    source: &[u8],
    options: &SandboxOptions,
    replies: Option<ActorAddress>,
    monitor: Option<ActorAddress>,
) -> Result<ActorHandle, SpawnError> {
    options.check().map_err(SpawnError::InvalidSandboxOption)?;
    let supervisor = crate::actor::sandboxed::supervisor().map_err(SpawnError::Sandbox)?;
    let (mut spec, boot) = host::spec_of_options(options);
    spec.stdin = match &options.stdin {
        SandboxStdin::Null => luring_sandbox::Stdio::Null,
        SandboxStdin::Share => share_std(0)?,
        SandboxStdin::Fd(fd) => luring_sandbox::Stdio::Fd(fd.try_clone().map_err(SpawnError::Os)?),
    };
    spec.stdout = share_std(1)?;
    spec.stderr = share_std(2)?;
    let handle = supervisor
        .spawn(crate::actor::sandboxed::VM_ENTRY, &boot.encode(), &spec)
        .map_err(|e| {
            SpawnError::Sandbox(match e {
                luring_sandbox::SpawnError::MissingProtection(what) => format!(
                    "{what} (SandboxOptions::allow_weaker_landlock runs it with what the \
                     kernel has)"
                ),
                e => e.to_string(),
            })
        })?;
    crate::actor::sandboxed::send_boot(handle.control(), display, source)
        .map_err(|e| SpawnError::Sandbox(format!("cannot send the module: {e}")))?;
    let control = handle
        .control()
        .try_clone_to_owned()
        .map_err(SpawnError::Os)?;
    let pidfd = handle
        .pidfd()
        .try_clone_to_owned()
        .map_err(SpawnError::Os)?;
    let ring = match handle.ring_fd() {
        Some(fd) => Some(fd.try_clone_to_owned().map_err(SpawnError::Os)?),
        None => None,
    };
    // With no replies mailbox its frames go to a closed inbox: dropped.
    let closed = || {
        let inbox = Inbox::new();
        inbox.close();
        ActorAddress::new(inbox)
    };
    let spawner = replies.clone().unwrap_or_else(closed);
    // On failure the handle was dropped, which killed the sandbox.
    let routes = RouteTable::new();
    host::serve_sandbox(
        process.clone(),
        handle,
        spawner,
        monitor,
        None,
        routes.clone(),
    )
    .map_err(SpawnError::Os)?;
    Ok(ActorHandle {
        address: closed(),
        name,
        sandbox: Some(Arc::new(SandboxLink {
            control,
            ring,
            pidfd,
            replies,
            routes,
            fd_sender: Mutex::new(None),
        })),
    })
}
