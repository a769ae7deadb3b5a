//! A Lua actor VM inside a luring sandbox (`luring-sandbox`).
//!
//! Invariants:
//! - [`VM_ENTRY`] is registered with `luring_sandbox::register_entry`
//!   before the supervisor is forked ([`start_supervisor`], first thing in
//!   `main`); the supervisor is kept process-wide and used by every VM.
//! - Inside the sandbox the VM runs on the ring the supervisor made for it
//!   (restricted, `IOSQE_FIXED_FILE` required) through a fixed-only
//!   executor: fixed slot [`CONTROL_SLOT`] is the control socket,
//!   [`STDOUT_SLOT`] and [`STDERR_SLOT`] the sandbox's stdout and stderr
//!   (granted at spawn: the host's own, as `"share"`). The sandbox puts
//!   them in its own table with `IORING_REGISTER_FILES_UPDATE`, the one
//!   register opcode its ring allows besides buffer rings.
//! - The module's code is the first thing on the control socket (the boot
//!   message, [`send_boot`]): a header datagram, then the source in chunks
//!   of at most [`BOOT_CHUNK`] bytes, at most `MAX_CODE_BYTES` in all. The
//!   sandbox reads it with blocking `recvmsg` before its VM exists (no
//!   fiber can run yet, so blocking the thread is harmless); anything that
//!   breaks the format, or carries descriptors, makes the sandbox exit
//!   [`EXIT_BAD_BOOT`] with every received descriptor closed.
//! - The sandboxed VM has no import root: `require` finds builtin modules
//!   only (a project path fails with `EPERM`), and its environment is the
//!   safe one every luring VM has (no `io`, `ffi`, `debug`, binary chunks).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

use luring_sandbox::{EntryContext, StartError, Supervisor};

use super::module_files::MAX_CODE_BYTES;
use super::vm::{on_vm_thread, Vm};
use crate::executor::{Executor, FixedStdio};
use crate::RuntimeError;

/// The name the sandboxed VM's entry point is registered under.
pub const VM_ENTRY: &str = "luring-vm";

/// Fixed-file slots of a sandboxed VM's ring.
pub const CONTROL_SLOT: u32 = 0;
pub const STDOUT_SLOT: u32 = 1;
pub const STDERR_SLOT: u32 = 2;
/// First slot free for capabilities the host installs later.
pub const FIRST_CAPABILITY_SLOT: u32 = 3;

/// Exit status of a sandbox whose boot message was malformed.
pub const EXIT_BAD_BOOT: i32 = 65;
/// Exit status of a sandbox whose VM could not start (its reason is
/// written to its stderr).
pub const EXIT_START_FAILED: i32 = 66;

const BOOT_MAGIC: &[u8; 8] = b"LRNGBT01";
/// Largest datagram of the boot message.
pub const BOOT_CHUNK: usize = 64 * 1024;
/// Longest display name of the module.
const MAX_DISPLAY: usize = 4096;

static SUPERVISOR: OnceLock<Result<Supervisor, String>> = OnceLock::new();

/// Registers the sandboxed VM's entry point and forks the supervisor.
/// Call first thing in `main`, before any thread exists. Idempotent after
/// success. When the supervisor cannot start (e.g. threads already run),
/// the reason is kept: sandboxed spawns then fail with it, everything else
/// works.
pub fn start_supervisor() -> Result<(), String> {
    let r = SUPERVISOR.get_or_init(|| {
        match luring_sandbox::register_entry(VM_ENTRY, vm_entry) {
            Ok(()) | Err(StartError::DuplicateEntry(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        Supervisor::start().map_err(|e| e.to_string())
    });
    r.as_ref().map(drop).map_err(Clone::clone)
}

/// The process's supervisor, or why there is none.
pub fn supervisor() -> Result<&'static Supervisor, String> {
    match SUPERVISOR.get() {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) => Err(format!("the sandbox supervisor did not start: {e}")),
        None => Err("the sandbox supervisor was not started (call \
                     luring::start_supervisor first thing in main)"
            .into()),
    }
}

/// Why a boot message was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    #[error("module source of {0} bytes is larger than the {MAX_CODE_BYTES}-byte limit")]
    TooLarge(u64),
    #[error("module name longer than {MAX_DISPLAY} bytes")]
    NameTooLong,
    #[error("malformed boot message: {0}")]
    Malformed(&'static str),
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends the module `source` (shown as `display` in messages) on the
/// host's end of a sandbox's control socket (blocking).
pub fn send_boot(control: BorrowedFd<'_>, display: &str, source: &[u8]) -> Result<(), BootError> {
    if source.len() as u64 > MAX_CODE_BYTES {
        return Err(BootError::TooLarge(source.len() as u64));
    }
    if display.len() > MAX_DISPLAY {
        return Err(BootError::NameTooLong);
    }
    let mut header = Vec::with_capacity(20 + display.len());
    header.extend_from_slice(BOOT_MAGIC);
    header.extend_from_slice(&(source.len() as u64).to_le_bytes());
    header.extend_from_slice(&(display.len() as u32).to_le_bytes());
    header.extend_from_slice(display.as_bytes());
    let fd = control.as_raw_fd();
    luring_sandbox::sys::send_with_fds(fd, &header, &[])?;
    for chunk in source.chunks(BOOT_CHUNK) {
        luring_sandbox::sys::send_with_fds(fd, chunk, &[])?;
    }
    Ok(())
}

/// One boot datagram: its bytes, refused if it carried descriptors or a
/// control message, or was truncated (the descriptors are closed).
fn recv_boot_datagram(control: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, BootError> {
    let r = luring_sandbox::sys::recv_with_fds(control.as_raw_fd(), buf, 0)?;
    if r.truncated {
        return Err(BootError::Malformed("datagram truncated"));
    }
    if r.cmsg_count > 0 || !r.fds.is_empty() {
        return Err(BootError::Malformed("descriptors or control messages"));
    }
    if r.len == 0 {
        return Err(BootError::Malformed("empty datagram or closed socket"));
    }
    Ok(r.len)
}

/// Reads the boot message: (display name, source).
pub fn recv_boot(control: BorrowedFd<'_>) -> Result<(String, Vec<u8>), BootError> {
    let mut buf = vec![0u8; BOOT_CHUNK];
    let n = recv_boot_datagram(control, &mut buf)?;
    let h = &buf[..n];
    if n < 20 || &h[..8] != BOOT_MAGIC {
        return Err(BootError::Malformed("bad header"));
    }
    let len = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    let name_len = u32::from_le_bytes(h[16..20].try_into().expect("4 bytes")) as usize;
    if len > MAX_CODE_BYTES {
        return Err(BootError::TooLarge(len));
    }
    if name_len > MAX_DISPLAY || 20 + name_len != n {
        return Err(BootError::Malformed("bad module name length"));
    }
    let display = String::from_utf8_lossy(&h[20..]).into_owned();
    let mut source = Vec::new();
    // Grown as data arrives: a claimed length allocates nothing.
    while (source.len() as u64) < len {
        let n = recv_boot_datagram(control, &mut buf)?;
        if (source.len() + n) as u64 > len {
            return Err(BootError::Malformed("more source than announced"));
        }
        source.extend_from_slice(&buf[..n]);
    }
    Ok((display, source))
}

/// The entry point inside the sandbox: installs the control socket and
/// stdio in the ring's table, reads the module, runs it as a worker VM.
/// Returns the VM's exit code.
fn vm_entry(ctx: EntryContext) -> i32 {
    let EntryContext { ring, control, .. } = ctx;
    let table = [control.as_raw_fd(), 1, 2];
    if let Err(e) = ring.submitter().register_files_update(CONTROL_SLOT, &table) {
        eprintln!("luring sandbox: cannot install the control socket and stdio in the ring: {e}");
        return EXIT_START_FAILED;
    }
    let (display, source) = match recv_boot(std::os::fd::AsFd::as_fd(&control)) {
        Ok(boot) => boot,
        Err(e) => {
            eprintln!("luring sandbox: {e}");
            return EXIT_BAD_BOOT;
        }
    };
    let stdio = FixedStdio {
        stdout: STDOUT_SLOT,
        stderr: STDERR_SLOT,
    };
    let result = on_vm_thread(move || {
        // The table holds the control socket now; this process keeps its
        // own copy open too, for the entry's lifetime.
        let _control = control;
        let executor = Executor::on_restricted_ring(ring, stdio).map_err(RuntimeError::Ring)?;
        let vm = Vm::with_executor(executor)?;
        vm.run_sandboxed(&display, &source)
    });
    match result {
        Ok(exit) => match exit.exit_code {
            Some(code) => code,
            None if exit.main_panicked => 1,
            None => 0,
        },
        Err(e) => {
            eprintln!("luring sandbox: {e}");
            match e {
                RuntimeError::Load { .. } => 1,
                _ => EXIT_START_FAILED,
            }
        }
    }
}

/// Why a frame from the host was refused (the sandbox's inbox then closes:
/// its only channel broke a rule).
/// `host`: inside a sandbox, the marker mailbox a channel member becomes
/// (the only address a sandbox can be sent: its spawner's inbox, reached
/// through the control socket); `None` refuses channels.
fn frame_to_message(
    value: crate::ipc::Value<'_>,
    host: Option<&Arc<super::mailbox::Mailbox>>,
) -> Result<Message, &'static str> {
    use crate::ipc::Value as W;
    Ok(match value {
        W::Bool(b) => Message::Bool(b),
        W::Float(f) => Message::Number(f),
        // Lua numbers are doubles (the encoder only writes floats).
        W::Integer(i) => Message::Number(i as f64),
        W::String(s) | W::Bytes(s) => Message::String(s.into_owned()),
        W::Array(items) => Message::array(
            items
                .into_iter()
                .map(|v| frame_to_message(v, host))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        W::Object(members) => {
            let mut out = Vec::with_capacity(members.len());
            for (k, v) in members {
                out.push((k.into_owned(), frame_to_message(v, host)?));
            }
            Message::object(out)
        }
        W::Channel(_) => match host {
            Some(host) => Message::Address(ActorAddress::new(host.clone())),
            None => return Err("channels cannot be sent to the host yet"),
        },
        W::Fd(_) => return Err("file descriptors in frames are not supported yet"),
        W::Ip(_) => return Err("ip.address values are not supported yet"),
    })
}

use crate::actor::message::{self, Message, NoCapabilities};
use crate::executor::{OpBuffer, OpFd};
use crate::modules::byte_span;
use mlua::{Lua, Table, Value};

/// Inside a sandbox: the mailbox that stands for "the host" in decoded
/// messages; [`HostChannelCaps`] turns it into a channel object that
/// sends on the control socket.
fn host_marker() -> &'static Arc<super::mailbox::Mailbox> {
    static MARKER: OnceLock<Arc<super::mailbox::Mailbox>> = OnceLock::new();
    MARKER.get_or_init(super::mailbox::Mailbox::new)
}

struct HostChannelCaps;

impl message::Capabilities for HostChannelCaps {
    fn capability_of(
        &self,
        _: &mlua::AnyUserData,
    ) -> Option<Result<Message, message::MessageError>> {
        None
    }

    fn capability_to_lua(&self, lua: &Lua, capability: Message) -> mlua::Result<Value> {
        match capability {
            Message::Address(a) if Arc::ptr_eq(&a.mailbox, host_marker()) => {
                Ok(Value::UserData(lua.create_userdata(SandboxChannel {
                    control: RefCell::new(Some(OpFd::Fixed(CONTROL_SLOT))),
                    pidfd: None,
                })?))
            }
            _ => Ok(Value::Nil),
        }
    }
}

/// The rt functions of a sandboxed VM's inbox (lua/core/actors.lua): the
/// host's frames are read from the control socket with a ring `RECV` on
/// [`CONTROL_SLOT`], only while a fiber receives.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use super::vm::{submit_op, unless_closing};
    rt.set("max_frame_bytes", crate::ipc::MAX_FRAME_BYTES)?;
    // control_recv(byte_span) -> op id; the result is the frame's length
    // (above the span's: truncated), 0 when the host is gone, or -errno.
    rt.set(
        "control_recv",
        lua.create_function(unless_closing(|lua, buf: Value| {
            let span = byte_span::span_arg(&buf, 1)?;
            submit_op(lua, |st| {
                if !st.executor.is_fixed_only() {
                    return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                }
                st.executor
                    .recv_datagram(&OpFd::Fixed(CONTROL_SLOT), OpBuffer::Span(span))
            })
        }))?,
    )?;
    // control_decode(byte_span, n) -> true, message | false, reason
    rt.set(
        "control_decode",
        lua.create_function(unless_closing(|lua, (buf, n): (Value, usize)| {
            let span = byte_span::span_arg(&buf, 1)?;
            if n > span.len() {
                return Ok((
                    false,
                    Value::String(lua.create_string(
                        "frame from the host larger than the frame limit (truncated)",
                    )?),
                ));
            }
            let bytes = span.to_vec();
            let table_size = luring_sandbox::RingSpec::default().fixed_files;
            let decoded = match crate::ipc::decode(
                &bytes[..n],
                crate::ipc::FdMode::FixedSlots { table_size },
                0,
            ) {
                Ok(d) => d,
                Err(e) => {
                    return Ok((false, Value::String(lua.create_string(e.to_string())?)));
                }
            };
            match frame_to_message(decoded.value, Some(host_marker())) {
                Ok(msg) => Ok((
                    true,
                    message::to_lua(lua, msg, &HostChannelCaps, &message::Limits::default())?,
                )),
                Err(reason) => Ok((false, Value::String(lua.create_string(reason)?))),
            }
        }))?,
    )?;
    Ok(())
}

/// Why [`send_message`] refused a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("file descriptors and channels cannot be sent to a sandboxed actor yet")]
    Capabilities,
    #[error(transparent)]
    Frame(#[from] crate::ipc::FrameError),
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends `msg` to a sandboxed VM as one frame on the host's end of its
/// control socket (blocking). Messages with capabilities are refused for
/// now (they will travel through the host ring, `FLAG_FIXED_SLOTS`).
pub fn send_message(control: BorrowedFd<'_>, msg: &Message) -> Result<(), SendError> {
    let frame = crate::ipc::encode_message(msg, crate::ipc::FdPlacement::FixedSlots(&[]))?;
    if !frame.fds.is_empty() || !frame.channels.is_empty() {
        return Err(SendError::Capabilities);
    }
    luring_sandbox::sys::send_with_fds(control.as_raw_fd(), &frame.bytes, &[])?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Host side: `spawn_vm{ module = ..., sandbox = {} }`.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use luring_sandbox::{ExitStatus, SandboxHandle, SandboxSpec, Stdio};
use mlua::{MetaMethod, UserData, UserDataMethods};

use super::mailbox::{ActorAddress, Envelope};
use super::module_files::{self, EntryError};
use super::vm::with_state;
use crate::modules::error::{self, ErrorCode};

/// A sandboxed actor as its spawner's VM holds it. Invariants: the VM's
/// state owns a [`SandboxKiller`] for every sandbox it spawned (so the
/// sandbox dies when the VM ends, unless it ended first); the Lua object
/// owns the host's end of the control socket (`None` once closed).
pub(crate) struct SandboxChannel {
    control: RefCell<Option<OpFd>>,
    /// `None` only in the probe that names the metatable.
    pidfd: Option<OwnedFd>,
}

/// SIGKILLs a sandbox when dropped (a sandbox that already ended is left
/// alone: its pidfd then answers `ESRCH`).
pub(crate) struct SandboxKiller(OwnedFd);

impl Drop for SandboxKiller {
    fn drop(&mut self) {
        if luring_sandbox::sys::pidfd_send_signal(self.0.as_fd(), libc::SIGKILL).is_ok() {
            // PID 1's exit kills and waits for every process of the
            // sandbox before its pidfd turns readable: after this, nothing
            // of the sandbox runs (and sees its channel close). Bounded,
            // in case the kernel takes unusually long.
            let _ = luring_sandbox::sys::poll_one(self.0.as_raw_fd(), libc::POLLIN, 1000);
        }
    }
}

impl SandboxChannel {
    /// Ends the host's sending side: the sandbox's receive sees EOF
    /// (`no_senders`) once it has read what was already sent, even though
    /// the [`SandboxHandle`] still holds its own copy of the socket.
    fn close(&self) {
        // (A sandbox's channel to its host, a fixed slot, just lets go.)
        if let Some(fd @ OpFd::Owned(_)) = self.control.borrow_mut().take() {
            // SAFETY: shutdown on a socket `fd` keeps open; no memory.
            unsafe { libc::shutdown(fd.raw(), libc::SHUT_WR) };
        }
    }
}

impl Drop for SandboxChannel {
    fn drop(&mut self) {
        self.close();
    }
}

impl UserData for SandboxChannel {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // `__index` is the core code's method table (`set_sandbox_methods`).
        methods.add_meta_function(MetaMethod::NewIndex, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::generic(libc::EPERM).into())
        });
    }
}

fn channel_arg(v: &Value) -> mlua::Result<mlua::UserDataRef<SandboxChannel>> {
    match v {
        Value::UserData(ud) => ud.borrow::<SandboxChannel>().map_err(|_| error::einval(1)),
        _ => Err(error::einval(1)),
    }
}

/// The monitor notice of a sandboxed actor (docs/guide/sandboxes.md):
/// `{ monitor = 'ended', sandbox = true, reason = 'exited' | 'killed' |
/// 'seccomp' | 'lost', code | signal | syscall = n }`.
fn sandbox_notice(status: ExitStatus) -> Message {
    let mut members: Vec<(&str, Message)> =
        vec![("monitor", "ended".into()), ("sandbox", true.into())];
    match status {
        ExitStatus::Exited(code) => {
            members.push(("reason", "exited".into()));
            members.push(("code", f64::from(code).into()));
        }
        ExitStatus::Signaled(signal) => {
            members.push(("reason", "killed".into()));
            members.push(("signal", f64::from(signal).into()));
        }
        ExitStatus::Seccomp { syscall } => {
            members.push(("reason", "seccomp".into()));
            members.push(("syscall", f64::from(syscall).into()));
        }
        ExitStatus::Lost => members.push(("reason", "lost".into())),
    }
    Message::object(members)
}

/// The host's side of one sandbox, on a thread of its own: reads the
/// sandbox's frames (one at a time: the next is read only once the
/// spawner took the previous one, so a flood costs the host one message)
/// and posts them to the spawner's inbox, and tells `monitor` how the
/// sandbox ended. The thread counts as a running thread of the process
/// (it can still wake the spawner) and holds an address of the spawner's
/// inbox (a sender) until the sandbox is gone.
fn serve_sandbox(
    handle: SandboxHandle,
    spawner: ActorAddress,
    monitor: Option<ActorAddress>,
) -> std::io::Result<()> {
    let process = super::host::current_process()
        .ok_or_else(|| std::io::Error::other("spawn_vm outside a host thread"))?;
    let signal = process.add_thread()?;
    let thread_process = process.clone();
    let thread_signal = signal.clone();
    let spawned = std::thread::Builder::new()
        .name("luring-sandbox".into())
        .spawn(move || {
            let status = relay(handle, &spawner, &thread_process, &thread_signal);
            if let Some(monitor) = monitor {
                let _ = monitor.mailbox.post(Envelope {
                    msg: sandbox_notice(status),
                    sender: None,
                    send_id: 0,
                });
            }
            drop(spawner);
            thread_process.leave(&thread_signal);
        });
    match spawned {
        Ok(join) => {
            process
                .joins
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(join);
            Ok(())
        }
        Err(e) => {
            process.leave(&signal);
            Err(e)
        }
    }
}

/// Relays the sandbox's frames to `spawner` until the sandbox ended;
/// returns how it ended.
fn relay(
    mut handle: SandboxHandle,
    spawner: &ActorAddress,
    process: &super::process::Process,
    signal: &Arc<super::process::ThreadSignal>,
) -> ExitStatus {
    let receipts = super::mailbox::Mailbox::new();
    receipts.set_signal(signal.clone());
    let mut buf = vec![0u8; crate::ipc::MAX_FRAME_BYTES];
    let mut awaiting: Option<u64> = None;
    let mut next_id = 0u64;
    let mut reading = true;
    let mut ended = false;
    let mut got = Vec::new();
    loop {
        // A sandbox that ended may have left frames in the socket: they
        // are relayed first (its end is closed now, so EOF follows them).
        if ended && !reading {
            return handle.wait().unwrap_or(ExitStatus::Lost);
        }
        let control = if reading && awaiting.is_none() {
            handle.control().as_raw_fd()
        } else {
            -1
        };
        let mut fds = [
            libc::pollfd {
                fd: if ended {
                    -1
                } else {
                    handle.status_fd().as_raw_fd()
                },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: control,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: signal.eventfd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Publish "sleeping" first, so that a receipt posted from now on
        // writes the eventfd (a running thread is not woken).
        let sleep = matches!(
            signal.prepare_sleep(process, false, || receipts.is_pending()),
            super::process::Sleep::Wait
        );
        // Once the sandbox ended, everything it sent is in the socket
        // already (others may hold its end open: no EOF to wait for).
        let draining = ended && awaiting.is_none();
        if sleep {
            // SAFETY: three live pollfds; a negative fd is ignored by poll.
            unsafe { libc::poll(fds.as_mut_ptr(), 3, if draining { 0 } else { -1 }) };
            if draining && fds[1].revents == 0 {
                reading = false;
            }
        }
        signal.awake(process);
        if receipts.take_pending() {
            receipts.take_receipts(&mut got);
            if got.drain(..).any(|(id, _)| Some(id) == awaiting) {
                awaiting = None;
            }
        }
        if !sleep {
            continue;
        }
        if fds[1].revents != 0 {
            match handle.recv_control(&mut buf, 0) {
                Ok(frame) if frame.len == 0 => reading = false,
                Ok(frame) => match frame_from_sandbox(&buf[..frame.len]) {
                    Ok(msg) => {
                        next_id += 1;
                        let env = Envelope {
                            msg,
                            sender: Some(receipts.clone()),
                            send_id: next_id,
                        };
                        if spawner.mailbox.post(env).is_ok() {
                            awaiting = Some(next_id);
                        }
                    }
                    Err(reason) => {
                        // The one channel that broke a rule closes.
                        tracing::debug!(%reason, "sandbox frame rejected; its channel closes");
                        reading = false;
                    }
                },
                Err(luring_sandbox::ControlError::Closed) => reading = false,
                Err(e) => {
                    tracing::debug!(error = %e, "sandbox frame rejected; its channel closes");
                    reading = false;
                }
            }
        }
        if fds[0].revents != 0 {
            ended = true;
        }
    }
}

/// A frame from the sandbox as a message: plain values only (its
/// capabilities, if any, have nowhere to go yet).
fn frame_from_sandbox(packet: &[u8]) -> Result<Message, String> {
    let table_size = luring_sandbox::RingSpec::default().fixed_files;
    let decoded = crate::ipc::decode(packet, crate::ipc::FdMode::FixedSlots { table_size }, 0)
        .map_err(|e| e.to_string())?;
    frame_to_message(decoded.value, None).map_err(str::to_owned)
}

/// Host-side rt functions: `spawn_sandboxed`, `sandbox_send`,
/// `sandbox_close`, `sandbox_kill`, `set_sandbox_methods`.
pub(crate) fn add_host_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use super::vm::{submit_op, unless_closing};
    let probe = lua.create_userdata(SandboxChannel {
        control: RefCell::new(None),
        pidfd: None,
    })?;
    crate::modules::name_userdata_metatable(lua, probe, c"ipc_actor_channel")?;
    rt.set(
        "set_sandbox_methods",
        lua.create_function(|lua, methods: Table| {
            let probe = lua.create_userdata(SandboxChannel {
                control: RefCell::new(None),
                pidfd: None,
            })?;
            super::channels::set_index_table(lua, probe, methods)
        })?,
    )?;
    // spawn_sandboxed(rel, display, monitor) -> handle | nil, 'errno', errno
    //   | nil, 'special', kind | nil, 'too_large'
    rt.set(
        "spawn_sandboxed",
        lua.create_function(unless_closing(
            |lua, (rel, display, monitor): (mlua::BString, mlua::BString, bool)| {
                let rel = std::ffi::CString::new(Vec::from(rel)).map_err(|_| error::einval(1))?;
                let root_fd = with_state(lua, |st| st.import_root.clone())?.ok_or_else(|| {
                    mlua::Error::from(ErrorCode::core(error::CoreError::CurrentModuleNotKnown))
                })?;
                // SAFETY: `root_fd` (a clone of the VM's reference) keeps the
                // fd open for as long as `root` is used.
                let root = unsafe { BorrowedFd::borrow_raw(root_fd.raw()) };
                let fail = |what: &str, detail: Value| -> mlua::Result<(Value, Value, Value)> {
                    Ok((Value::Nil, Value::String(lua.create_string(what)?), detail))
                };
                let (source, _identity) = match module_files::read_beneath(root, &rel) {
                    Ok(read) => read,
                    Err(EntryError::Os(errno)) => {
                        return fail("errno", Value::Integer(errno.into()))
                    }
                    Err(EntryError::NotRegular(kind)) => {
                        return fail("special", Value::String(lua.create_string(kind.name())?))
                    }
                    Err(EntryError::TooLarge) => return fail("too_large", Value::Nil),
                };
                let sv = supervisor().map_err(|e| {
                    mlua::Error::runtime(format!("spawn_vm: no sandbox can be started: {e}"))
                })?;
                let share = |fd: i32| -> mlua::Result<Stdio> {
                    // SAFETY: fds 1 and 2 stay open for the program's life.
                    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
                    fd.try_clone_to_owned()
                        .map(Stdio::Fd)
                        .map_err(|e| mlua::Error::from(ErrorCode::from_io(&e)))
                };
                let spec = SandboxSpec {
                    stdout: share(1)?,
                    stderr: share(2)?,
                    ..SandboxSpec::default()
                };
                let handle = sv.spawn(VM_ENTRY, &[], &spec).map_err(|e| {
                    mlua::Error::runtime(format!("spawn_vm: cannot start the sandbox: {e}"))
                })?;
                let display = String::from_utf8_lossy(&display).into_owned();
                send_boot(handle.control(), &display, &source).map_err(|e| {
                    mlua::Error::runtime(format!("spawn_vm: cannot send the module: {e}"))
                })?;
                let io = |e: std::io::Error| mlua::Error::from(ErrorCode::from_io(&e));
                let control = handle.control().try_clone_to_owned().map_err(io)?;
                let pidfd = handle.pidfd().try_clone_to_owned().map_err(io)?;
                let killer = SandboxKiller(handle.pidfd().try_clone_to_owned().map_err(io)?);
                let own = with_state(lua, |st| st.mailbox.clone())?;
                let monitor = monitor.then(|| ActorAddress::new(own.clone()));
                // On failure the handle was dropped, which killed it.
                serve_sandbox(handle, ActorAddress::new(own), monitor).map_err(io)?;
                with_state(lua, |st| st.sandboxes.push(Box::new(killer)))?;
                let ch = lua.create_userdata(SandboxChannel {
                    control: RefCell::new(Some(OpFd::owned(control))),
                    pidfd: Some(pidfd),
                })?;
                Ok((Value::UserData(ch), Value::Nil, Value::Nil))
            },
        ))?,
    )?;
    // sandbox_send(channel, message) -> op id (the result: bytes sent or
    // -errno)
    rt.set(
        "sandbox_send",
        lua.create_function(unless_closing(|lua, (ch, msg): (Value, Value)| {
            let control = channel_arg(&ch)?.control.borrow().clone().ok_or_else(|| {
                mlua::Error::from(ErrorCode::core(error::CoreError::ChannelClosed))
            })?;
            let own = with_state(lua, |st| st.mailbox.clone())?;
            let caps = super::channels::ActorCapabilities {
                own: &own,
                others: &NoCapabilities,
            };
            let msg = message::from_lua(lua, &msg, &caps, &message::Limits::default())?;
            let frame = crate::ipc::encode_message(&msg, crate::ipc::FdPlacement::FixedSlots(&[]))
                .map_err(|e| mlua::Error::runtime(format!("send: {e}")))?;
            // The one address a sandbox can be sent: the sender's inbox
            // (its replies come back on the control socket); from inside
            // a sandbox, none.
            let sandboxed = with_state(lua, |st| st.executor.is_fixed_only())?;
            if !frame.fds.is_empty()
                || frame
                    .channels
                    .iter()
                    .any(|a| sandboxed || !Arc::ptr_eq(&a.mailbox, &own))
            {
                return Err(ErrorCode::generic(libc::ENOTSUP).into());
            }
            let bytes = frame.bytes.into_boxed_slice();
            submit_op(lua, |st| {
                st.executor.send_datagram(&control, OpBuffer::Owned(bytes))
            })
        }))?,
    )?;
    rt.set(
        "sandbox_close",
        lua.create_function(unless_closing(|_, ch: Value| {
            channel_arg(&ch)?.close();
            Ok(())
        }))?,
    )?;
    // sandbox_kill(channel, signo)
    rt.set(
        "sandbox_kill",
        lua.create_function(unless_closing(|_, (ch, signo): (Value, Option<i32>)| {
            let ch = channel_arg(&ch)?;
            let signo = signo.unwrap_or(libc::SIGKILL);
            if !(1..=64).contains(&signo) {
                return Err(error::einval(2));
            }
            let pidfd = ch.pidfd.as_ref().ok_or_else(|| error::einval(1))?;
            luring_sandbox::sys::pidfd_send_signal(pidfd.as_fd(), signo)
                .or_else(|e| {
                    if e.raw_os_error() == Some(libc::ESRCH) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| mlua::Error::from(ErrorCode::from_io(&e)))?;
            if signo == libc::SIGKILL {
                // Gone before its channel closes (see SandboxKiller).
                let _ = luring_sandbox::sys::poll_one(pidfd.as_raw_fd(), libc::POLLIN, 1000);
                ch.close();
            }
            Ok(())
        }))?,
    )?;
    Ok(())
}
