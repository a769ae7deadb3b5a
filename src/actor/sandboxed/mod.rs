//! A Lua actor VM inside a luring sandbox (`luring-sandbox`).
//!
//! Invariants:
//! - [`VM_ENTRY`] is registered with `luring_sandbox::register_pooled_entry`
//!   before the supervisor is forked ([`start_supervisor`], first thing in
//!   `main`); the supervisor is kept process-wide and used by every VM.
//!   Pooled, the supervisor keeps one `sandbox = {}` VM booted ahead of its
//!   spawn: its stdin, stdout and stderr are `/dev/null` (slots 3, 1 and 2
//!   too) until a spawn takes it and hands it its own, before any fiber
//!   runs.
//! - Inside the sandbox the VM runs on the ring the supervisor made for it
//!   (restricted, `IOSQE_FIXED_FILE` required) through a fixed-only
//!   executor: fixed slot [`CONTROL_SLOT`] is the control socket,
//!   [`STDOUT_SLOT`], [`STDERR_SLOT`] and [`STDIN_SLOT`] the sandbox's
//!   stdout, stderr and stdin (granted at spawn: the host's own as
//!   `"share"`, a descriptor, or `/dev/null`), which `system.in_`,
//!   `system.out` and `system.err` use. The sandbox puts them in its own
//!   table with `IORING_REGISTER_FILES_UPDATE`, the one register opcode
//!   its ring allows besides buffer rings. None of these slots is in the
//!   host's install range, so a frame that names one is refused.
//! - The module's code is the first thing on the control socket (the boot
//!   message, [`send_boot`]): a header datagram, then the source in chunks
//!   of at most [`BOOT_CHUNK`] bytes, at most `MAX_CODE_BYTES` in all. The
//!   sandbox reads it with blocking `recvmsg` before its VM runs any fiber
//!   (so blocking the thread is harmless); anything that
//!   breaks the format, or carries descriptors, makes the sandbox end
//!   (reason `failed`) with every received descriptor closed. The VM boots
//!   (core code only) before the boot message is read, so that the boot
//!   overlaps the host's take-over; no fiber runs until the module is in.
//! - The entry is single-threaded until its VM runs; the VM runs on the
//!   entry's own thread when `RLIMIT_STACK` lets that thread's stack grow
//!   as far as a VM thread's (raised up to the hard limit), on a VM thread
//!   otherwise. Either way the entry sends its end frame and exits only
//!   once the VM has ended.
//! - The sandboxed VM has no import root: `require` finds builtin modules
//!   only (a project path fails with `EPERM`), and its environment is the
//!   safe one every luring VM has (no `io`, `ffi`, `debug`, binary chunks).
//! - Host side (`host.rs`): `spawn_vm{ sandbox = {} }` spawns through the
//!   supervisor and returns a channel; the spawning VM's state holds a
//!   killer per sandbox (it dies with the VM unless `detach()`ed; a
//!   detached one still ends when the process does: its relay kills it
//!   once the process is over, and the supervisor's death ends it if the
//!   host dies). Its frames are read on the spawner VM's own ring
//!   (`ring_relay.rs`), one at a time, and how it ended goes to a monitor;
//!   a detached sandbox that outlives its VM, and one spawned from Rust,
//!   is served by a relay thread (`host::serve_sandbox`) instead. Sandbox
//!   side (`inside.rs`): the inbox reads
//!   the host's frames with a ring `RECV` on [`CONTROL_SLOT`].
//! - Channels between host and sandbox are routes of the sandbox's own
//!   table (`routes.rs`): route 0 the spawner's inbox, the others the
//!   in-process addresses the host sent it; a sandbox can name no other.
//! - An end the runtime causes (it could not start, the memory limit) is
//!   told to the host by an end frame (`ipc::encode_end`), the last thing
//!   the sandbox writes on its control socket, after its VM's ring ops
//!   were all reaped; a script's messages are encoded by
//!   `ipc::encode_message`, which cannot make one. Its exit status is then
//!   [`EXIT_RUNTIME_END`]; any other exit status is the script's own.

pub(crate) mod host;
mod inside;
pub(crate) mod ring_relay;
pub(crate) mod routes;
pub(crate) mod slots;

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::OnceLock;

pub(crate) use host::add_host_rt;
pub use host::{send_message, SendError};
pub(crate) use inside::{add_rt, next_fast};
pub use slots::OwnedSlot;

use crate::actor::message::{self, Message};

use luring_sandbox::{EntryContext, StartError, Supervisor};

use super::module_files::MAX_CODE_BYTES;
use super::vm::{on_vm_thread, Vm, VM_THREAD_STACK_SIZE};
use crate::executor::{Executor, FixedStdio};
use crate::RuntimeError;

/// The name the sandboxed VM's entry point is registered under.
pub const VM_ENTRY: &str = "luring-vm";

/// Fixed-file slots of a sandboxed VM's ring: 0–3 are filled at start
/// (control socket, stdout, stderr, stdin), then come the sandbox's own
/// (LOCAL, `slots.rs`) up to half the table, then the host's install
/// range (`luring_sandbox::ring::host_slots`).
pub const CONTROL_SLOT: u32 = 0;
pub const STDOUT_SLOT: u32 = 1;
pub const STDERR_SLOT: u32 = 2;
/// After stdout and stderr so that the slots 0–2 keep their numbers.
pub const STDIN_SLOT: u32 = 3;
/// First slot for descriptors the sandbox opens itself (LOCAL).
pub const FIRST_CAPABILITY_SLOT: u32 = 4;

/// Exit status of a sandbox whose runtime ended it (it could not start,
/// or ran out of its memory limit). Only the end frame it sends first
/// (`ipc::encode_end`) says why: an exit status is the user's to choose
/// (`system.exit(n)`), so it proves nothing.
pub const EXIT_RUNTIME_END: i32 = 1;

/// How long a sandbox that ends waits for room for its end frame in the
/// control socket (full when its host is not taking its messages); past
/// it the sandbox exits without one, and is reported as exited with
/// [`EXIT_RUNTIME_END`].
const END_FRAME_WAIT_MS: u64 = 10_000;

/// `RLIMIT_AS` of a sandbox with a memory limit: the limit plus this, for
/// the process's own mappings (code, thread stacks, the ring's queues).
pub(crate) const ADDRESS_SPACE_HEADROOM: u64 = 1 << 30;

/// What the sandboxed VM itself is told at spawn (the spawn request's
/// argument bytes): its Lua heap's memory limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BootOptions {
    pub(crate) memory_limit: Option<u64>,
}

impl BootOptions {
    const LEN: usize = 8;

    /// No bytes when there is no option: the argument of the pool's spec,
    /// so a `sandbox = {}` spawn can take a pre-booted sandbox.
    pub(crate) fn encode(&self) -> Vec<u8> {
        match self.memory_limit {
            None => Vec::new(),
            Some(limit) => limit.to_le_bytes().to_vec(),
        }
    }

    /// `None` for anything but what [`encode`](Self::encode) makes or
    /// nothing (no option: what an embedding that spawns the entry itself
    /// sends).
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.is_empty() {
            return Some(Self::default());
        }
        let limit = u64::from_le_bytes(bytes.get(..Self::LEN)?.try_into().ok()?);
        (bytes.len() == Self::LEN).then_some(BootOptions {
            memory_limit: (limit != 0).then_some(limit),
        })
    }
}

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
        // Pooled: the supervisor keeps one `sandbox = {}` VM booted ahead
        // of its spawn (see `vm_entry`).
        match luring_sandbox::register_pooled_entry(VM_ENTRY, vm_entry) {
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

/// One boot datagram, in `buf` (whose capacity is at least
/// [`BOOT_CHUNK`]; what it held is replaced), refused if it carried
/// descriptors or a control message, or was truncated (the descriptors
/// are closed).
fn recv_boot_datagram(control: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<usize, BootError> {
    buf.clear();
    buf.reserve_exact(BOOT_CHUNK);
    let r = luring_sandbox::sys::recv_with_fds_uninit(
        control.as_raw_fd(),
        &mut buf.spare_capacity_mut()[..BOOT_CHUNK],
        0,
    )?;
    // SAFETY: the kernel wrote the datagram's first `r.len` bytes (at most
    // BOOT_CHUNK, the room it was given) into the spare capacity.
    unsafe { buf.set_len(r.len) };
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
    recv_boot_into(control, &mut boot_buffer())
}

/// A buffer for [`recv_boot_into`], with room for [`BOOT_CHUNK`] bytes,
/// made before the entry waits for the module. Its pages are left
/// untouched: only those the module's datagrams fill are faulted in (a
/// small module: one; a touched 64 KiB buffer cost 16 page faults, ~40 µs
/// of CPU in every sandbox, pooled or not).
fn boot_buffer() -> Vec<u8> {
    Vec::with_capacity(BOOT_CHUNK)
}

/// [`recv_boot`] with a buffer from [`boot_buffer`] (its contents do not
/// matter).
fn recv_boot_into(
    control: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
) -> Result<(String, Vec<u8>), BootError> {
    let n = recv_boot_datagram(control, buf)?;
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
        let n = recv_boot_datagram(control, buf)?;
        if (source.len() + n) as u64 > len {
            return Err(BootError::Malformed("more source than announced"));
        }
        source.extend_from_slice(&buf[..n]);
    }
    Ok((display, source))
}

/// How long a pooled entry watches for the module before it sleeps on
/// it: the host sends it as soon as it has the supervisor's reply, which
/// went out right after the entry's streams, so it comes within a
/// fraction of a millisecond, and a thread that slept meanwhile pays a wake-up of ~0.1
/// ms on a VM (docs/performance.md, "Spaced sandboxed spawn").
const BOOT_WATCH: std::time::Duration = std::time::Duration::from_micros(500);

/// The entry point inside the sandbox: installs the control socket and
/// stdio in the ring's table, reads the module, runs it as a worker VM.
/// Returns the VM's exit code.
///
/// Started ahead of its spawn (`pooled`), it boots the VM first, then
/// waits for the spawn's standard streams (`receive_spawn_stdio`: on fds
/// 0–2 from then on) and puts stdin, stdout and stderr in their slots
/// again (until then the slots held `/dev/null`, which nothing read or
/// wrote: no fiber runs before the module is in).
fn vm_entry(ctx: EntryContext) -> i32 {
    let EntryContext {
        ring,
        control,
        arg,
        pooled,
        ..
    } = ctx;
    let (code, end) = run_entry(ring, &control, &arg, pooled);
    if let Some(reason) = end {
        send_end_frame(control.as_raw_fd(), reason);
    }
    code
}

/// Runs the sandboxed VM; returns its exit code and, when the runtime
/// (not the script) ended it, why.
fn run_entry(
    ring: io_uring::IoUring,
    control: &std::os::fd::OwnedFd,
    arg: &[u8],
    pooled: bool,
) -> (i32, Option<crate::ipc::EndReason>) {
    use crate::ipc::EndReason;
    let failed = (EXIT_RUNTIME_END, Some(EndReason::Failed));
    let Some(options) = BootOptions::decode(arg) else {
        eprintln!("luring sandbox: malformed spawn options");
        return failed;
    };
    // Slots CONTROL_SLOT.. in order: control, stdout, stderr, stdin.
    const _: () =
        assert!(CONTROL_SLOT == 0 && STDOUT_SLOT == 1 && STDERR_SLOT == 2 && STDIN_SLOT == 3);
    let table = [control.as_raw_fd(), 1, 2, 0];
    if let Err(e) = ring.submitter().register_files_update(CONTROL_SLOT, &table) {
        eprintln!("luring sandbox: cannot install the control socket and stdio in the ring: {e}");
        return failed;
    }
    let stdio = FixedStdio {
        stdin: STDIN_SLOT,
        stdout: STDOUT_SLOT,
        stderr: STDERR_SLOT,
    };
    one_heap_for_the_vm_thread();
    // The table holds the control socket now; the entry keeps its own
    // copy open too (the boot message is read and the end frame written
    // on it) until the VM ended.
    let control_fd = control.as_raw_fd();
    let run = move || {
        slots::init_local(luring_sandbox::RingSpec::default().fixed_files);
        let executor = Executor::on_restricted_ring(ring, stdio).map_err(RuntimeError::Ring)?;
        let ring_fd = executor.ring_fd();
        // The VM boots while the host is still taking the sandbox over and
        // sending the module (or, pooled, before any spawn asked for it):
        // its boot needs nothing from the host.
        let vm = Vm::with_executor(executor)?;
        vm.prepare_sandboxed()?;
        let mut boot_buf = boot_buffer();
        // SAFETY: `control` outlives this thread: `on_vm_thread` joins it
        // before `run_entry` returns.
        let control = unsafe { BorrowedFd::borrow_raw(control_fd) };
        if pooled {
            let handed = luring_sandbox::receive_spawn_stdio(control).and_then(|()| {
                slots::fill_slot(ring_fd, STDOUT_SLOT, 1)?;
                slots::fill_slot(ring_fd, STDERR_SLOT, 2)?;
                slots::fill_slot(ring_fd, STDIN_SLOT, 0)
            });
            if let Err(e) = handed {
                return Ok(Err(BootError::Io(e)));
            }
        }
        if let Some(limit) = options.memory_limit {
            vm.set_memory_limit(Some(usize::try_from(limit).unwrap_or(usize::MAX)));
        }
        if pooled {
            // The host sends the module as soon as it has the supervisor's
            // reply, which followed the streams: watched, not slept on.
            luring_sandbox::sys::watch_readable(control_fd, std::time::Instant::now() + BOOT_WATCH);
        }
        let (display, source) = match recv_boot_into(control, &mut boot_buf) {
            Ok(boot) => boot,
            Err(e) => return Ok(Err(e)),
        };
        // Its memory goes back to the heap, for the VM.
        drop(boot_buf);
        vm.run_sandboxed(&display, &source).map(Ok)
    };
    // The entry's own thread has nothing else to do while the VM runs:
    // the VM runs on it when its stack may grow as far as a VM thread's
    // (a new thread cost ~36 syscalls and its stack's page faults per
    // spawn: docs/performance.md, "sbx-spawn").
    let result = if main_stack_fits_a_vm() {
        run()
    } else {
        on_vm_thread(run)
    };
    match result {
        Ok(Ok(exit)) => match exit.exit_code {
            Some(code) => (code, None),
            None if exit.main_panicked && exit.out_of_memory => {
                (EXIT_RUNTIME_END, Some(EndReason::Memory))
            }
            None if exit.main_panicked => (1, None),
            None => (0, None),
        },
        Ok(Err(bad_boot)) => {
            eprintln!("luring sandbox: {bad_boot}");
            failed
        }
        Err(e) => {
            eprintln!("luring sandbox: {e}");
            match e {
                // The module's own error (a syntax error): as a main fiber
                // that failed.
                RuntimeError::Load { .. } => (1, None),
                _ => failed,
            }
        }
    }
}

/// Writes the end frame for `reason` on the control socket, waiting (at
/// most [`END_FRAME_WAIT_MS`]) for room while the host is not reading. A
/// host that is gone, or never makes room, goes without it.
fn send_end_frame(control: std::os::fd::RawFd, reason: crate::ipc::EndReason) {
    let frame = crate::ipc::encode_end(reason);
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(END_FRAME_WAIT_MS);
    loop {
        // SAFETY: `frame` is valid for its length during the call.
        let sent = unsafe {
            libc::send(
                control,
                frame.as_ptr().cast(),
                frame.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if sent >= 0 {
            return;
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    eprintln!("luring sandbox: the host took no message for {END_FRAME_WAIT_MS} ms; ending without telling it why ({})", reason.name());
                    return;
                }
                let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
                let _ = luring_sandbox::sys::poll_one(control, libc::POLLOUT, ms);
            }
            _ => return,
        }
    }
}

/// Whether this (single-threaded) entry's main thread can run the VM: its
/// stack may grow to [`VM_THREAD_STACK_SIZE`] plus what the frames below
/// the entry already use. `RLIMIT_STACK`'s soft limit is raised to that
/// when its hard limit allows (a sandbox may set its own limits below the
/// hard one anyway); if not, the VM gets a thread of its own as
/// in-process VMs do. The main stack's growth is bounded by the limit
/// only: the kernel keeps the gap below it free (at least 128 MiB).
fn main_stack_fits_a_vm() -> bool {
    // Frames below the entry (the supervisor's loop, PID 1, the fork):
    // well under 1 MiB.
    const WANTED: u64 = (VM_THREAD_STACK_SIZE + (1 << 20)) as u64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut lim) } != 0 {
        return false;
    }
    if lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur >= WANTED {
        return true;
    }
    if lim.rlim_max != libc::RLIM_INFINITY && lim.rlim_max < WANTED {
        return false;
    }
    lim.rlim_cur = WANTED;
    // SAFETY: setrlimit reads the struct it is given.
    unsafe { libc::setrlimit(libc::RLIMIT_STACK, &lim) == 0 }
}

/// Bytes the sandbox's heap grows by at least, each time it grows.
const SANDBOX_HEAP_STEP: libc::c_int = 1 << 20;

/// Makes the sandboxed VM allocate from the process's main heap, grown in
/// [`SANDBOX_HEAP_STEP`] steps, also when it runs on a thread of its own
/// (see `main_stack_fits_a_vm`). Without this, glibc gives the
/// first allocating thread of the (fresh) sandbox process an arena of its
/// own, which it grows one page at a time with `mprotect`: about 35
/// syscalls during each sandboxed VM's boot, on the spawn's critical path.
/// The sandbox runs one VM thread, so one heap costs no lock contention.
fn one_heap_for_the_vm_thread() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; no thread of this
    // process has allocated from an arena of its own yet, so the arena
    // limit holds for the VM thread. A refusal (0) changes nothing.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TOP_PAD, SANDBOX_HEAP_STEP);
    }
}

/// Strings up to this length take [`scalar_frame`]: far below every
/// limit a longer one could reach (message bytes, `MAX_STRING_BYTES`,
/// `MAX_FRAME_BYTES`), so no error path of the generic copy is skipped.
const SCALAR_STRING_BYTES: usize = 4096;

/// The frame of a message that is one boolean, number or short string,
/// encoded straight from the Lua value (`None` for anything else: the
/// generic copy `message::from_lua` → `ipc::convert_message` runs then).
/// The bytes are the ones the generic path makes for the same value (the
/// same encoder, the same value: a number is a float, as
/// `convert_message` makes it); no capability, route or limit is
/// involved. (sandboxed ping-pong: docs/performance.md "sbx-pp2")
pub(crate) fn scalar_frame(
    value: &mlua::Value,
    fds: crate::ipc::FdPlacement<'_>,
) -> Option<Result<Vec<u8>, crate::ipc::FrameError>> {
    use crate::ipc::Value as W;
    let routing = crate::ipc::Routing::default();
    let wire = match value {
        mlua::Value::Boolean(b) => W::Bool(*b),
        // (mlua reports integral doubles as Integer; the cast is exact.)
        mlua::Value::Integer(i) => W::Float(*i as f64),
        mlua::Value::Number(n) => W::Float(*n),
        mlua::Value::String(s) => {
            let bytes = s.as_bytes();
            if bytes.len() > SCALAR_STRING_BYTES {
                return None;
            }
            let wire = W::String(std::borrow::Cow::Borrowed(&bytes));
            return Some(crate::ipc::encode_routed(&wire, fds, &routing));
        }
        _ => return None,
    };
    Some(crate::ipc::encode_routed(&wire, fds, &routing))
}

/// The message hooks of a channel between a sandboxed actor and its host
/// (besides channels, which `ActorCapabilities` handles): a
/// `file_descriptor` travels as a duplicate (the sender keeps its own; the
/// transport installs the duplicate in the receiver's table), a
/// `byte_span` as its bytes, an `ip.address` as its address.
pub(crate) struct SandboxCapabilities;

impl message::Capabilities for SandboxCapabilities {
    fn capability_of(
        &self,
        userdata: &mlua::AnyUserData,
    ) -> Option<Result<Message, message::MessageError>> {
        if let Ok(span) = userdata.borrow::<crate::modules::byte_span::ByteSpan>() {
            return Some(Ok(Message::Bytes(span.0.to_vec())));
        }
        crate::modules::file_descriptor::FdCapabilities.fd_of(userdata)
    }

    fn capability_to_lua(&self, lua: &mlua::Lua, capability: Message) -> mlua::Result<mlua::Value> {
        crate::modules::file_descriptor::FdCapabilities.capability_to_lua(lua, capability)
    }

    fn object_of(
        &self,
        lua: &mlua::Lua,
        table: &mlua::Table,
    ) -> Option<Result<Message, message::MessageError>> {
        match crate::modules::ip::address_of(lua, table) {
            Ok(Some(address)) => Some(Ok(Message::Ip(address))),
            Ok(None) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::BootOptions;

    #[test]
    fn boot_options_round_trip_and_refuse_anything_else() {
        for o in [
            BootOptions::default(),
            BootOptions {
                memory_limit: Some(64 << 20),
            },
        ] {
            assert_eq!(BootOptions::decode(&o.encode()), Some(o));
        }
        // No bytes at all: no option (an embedding that spawns the entry).
        assert_eq!(BootOptions::decode(&[]), Some(BootOptions::default()));
        assert_eq!(BootOptions::decode(&[1, 2, 3]), None);
        assert_eq!(BootOptions::decode(&[0; 9]), None);
    }

    /// The frame `scalar_frame` makes is, byte for byte, the one the
    /// generic copy (`message::from_lua`, `ipc::convert_message`,
    /// `encode`) makes, in both placements; anything else is left to it.
    #[test]
    fn scalar_frames_are_the_generic_path_s_bytes() {
        use crate::actor::message;
        use crate::ipc::{FdPlacement, Routing};
        let lua = mlua::Lua::new();
        let values: Vec<mlua::Value> = lua
            .load(
                "return true, false, 0, -0.0, 1, -1.5, 2^53, 2^53 + 2, 1/0, -1/0, 0/0, \
                 3.25e-300, '', 'abc', 'a\\0b', string.rep('x', 4096)",
            )
            .eval::<mlua::MultiValue>()
            .expect("values")
            .into_iter()
            .collect();
        let own = crate::actor::mailbox::Mailbox::new();
        let caps = crate::actor::channels::ActorCapabilities {
            own: &own,
            others: &super::SandboxCapabilities,
        };
        for v in &values {
            let msg = message::from_lua(&lua, v, &caps, &message::Limits::default())
                .expect("a scalar is a message");
            for placement in [FdPlacement::ScmRights, FdPlacement::FixedSlots(&[])] {
                let generic = crate::ipc::convert_message(&msg)
                    .and_then(|c| c.encode(placement, &Routing::default()))
                    .expect("generic frame")
                    .bytes;
                let fast = super::scalar_frame(v, placement)
                    .expect("taken by the fast path")
                    .expect("fast frame");
                assert_eq!(fast, generic, "{v:?}");
            }
        }
        // Past the short-string bound, tables, nil, functions: not taken.
        let others: Vec<mlua::Value> = lua
            .load("return string.rep('x', 4097), {}, {1}, nil, print")
            .eval::<mlua::MultiValue>()
            .expect("others")
            .into_iter()
            .collect();
        assert_eq!(others.len(), 5);
        for v in &others {
            assert!(
                super::scalar_frame(v, FdPlacement::ScmRights).is_none(),
                "{v:?}"
            );
        }
    }
}
