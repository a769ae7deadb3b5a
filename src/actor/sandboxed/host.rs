//! Host side of sandboxed actors: spawning, the channel, the relay thread
//! (for detached sandboxes that outlive their VM and for Rust; a Lua VM
//! reads its sandboxes' frames on its own ring, `ring_relay.rs`).

use std::cell::{Cell, RefCell};
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::Arc;

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use luring_sandbox::{
    Compat, ExitStatus, Limits, Network, Requirement, SandboxHandle, SandboxSpec, Stdio,
};
use mlua::{MetaMethod, UserData, UserDataMethods};

use super::ring_relay::RingRelay;
use super::routes::RouteTable;
use super::{send_boot, supervisor, BootOptions, ADDRESS_SPACE_HEADROOM, VM_ENTRY};
use crate::actor::mailbox::{ActorAddress, Envelope};
use crate::actor::message::{self, Message};
use crate::actor::module_files::{self, EntryError};
use crate::actor::vm::with_state;
use crate::embed::sandboxed::SandboxOptions;
use crate::executor::{OpBuffer, OpFd};
use crate::modules::error::{self, ErrorCode};
use mlua::{Lua, Table, Value};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A sandboxed actor as its spawner's VM holds it. Invariants: the VM's
/// state owns a [`SandboxKiller`] for every sandbox it spawned (so the
/// sandbox dies when the VM ends, unless it ended first or was detached);
/// the Lua object owns the host's end of the control socket (`None` once
/// closed).
pub(crate) struct SandboxChannel {
    pub(super) control: RefCell<Option<OpFd>>,
    /// The sandbox as a direct child of this VM: `None` in the probe that
    /// names the metatable, for a sandbox's channel to its host, and once
    /// detached (or killed with SIGKILL).
    pub(super) child: RefCell<Option<DirectChild>>,
    /// The host's dup of the sandbox's ring fd, the target of the
    /// `MsgRingSendFd` that installs a sent capability; `None` when the
    /// supervisor could not hand it over (fds cannot be sent then), in the
    /// probe, and for a sandbox's channel to its host. Its relay (on the
    /// VM's ring, or a thread) empties it once the sandbox ended: the
    /// sandbox's ring (and every file in its table, such as a pipe given
    /// as its stdout) must not outlive it because the host kept a
    /// reference.
    pub(super) ring: Option<SharedRing>,
    /// The sandbox's route table (routes.rs), shared with its relay:
    /// `None` in the probe and inside a sandbox.
    pub(super) routes: Option<Arc<RouteTable>>,
    /// Inside a sandbox: the route its frames go to (0, the host's inbox,
    /// or an address the host gave it); 0 on the host.
    pub(super) route: u32,
}

/// What a spawner holds of a sandbox it supervises.
pub(crate) struct DirectChild {
    pidfd: OwnedFd,
    /// PID of the sandbox's PID 1 in the host's PID namespace.
    pid: i32,
    /// Shared with the VM's [`SandboxKiller`]: cleared by `detach()`.
    supervised: Rc<Cell<bool>>,
}

/// The host's reference to a sandbox's ring, shared by its channel and its
/// relay, on the ring or a thread (which empties it when the sandbox
/// ended). Users hold the lock while they use the fd, so it is never
/// closed under them.
pub(crate) type SharedRing = Arc<std::sync::Mutex<Option<OwnedFd>>>;

pub(super) fn lock_ring(ring: &SharedRing) -> std::sync::MutexGuard<'_, Option<OwnedFd>> {
    ring.lock().unwrap_or_else(|e| e.into_inner())
}

/// SIGKILLs a sandbox when dropped, unless it was detached (a sandbox that
/// already ended is left alone: its pidfd then answers `ESRCH`).
pub(crate) struct SandboxKiller {
    pidfd: OwnedFd,
    supervised: Rc<Cell<bool>>,
}

impl Drop for SandboxKiller {
    fn drop(&mut self) {
        if !self.supervised.get() {
            return;
        }
        if luring_sandbox::sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL).is_ok() {
            // PID 1's exit kills and waits for every process of the
            // sandbox before its pidfd turns readable: after this, nothing
            // of the sandbox runs (and sees its channel close). Bounded,
            // in case the kernel takes unusually long.
            let _ = luring_sandbox::sys::poll_one(self.pidfd.as_raw_fd(), libc::POLLIN, 1000);
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
/// `{ monitor = 'ended', sandbox = true, reason = 'exited' | 'memory' |
/// 'failed' | 'cpu_budget' | 'killed' | 'seccomp' | 'lost', code | signal
/// | syscall = n }`. `end` is the reason of the sandbox's end frame, if it
/// sent one: believed only with the exit status its runtime gives it
/// ([`super::EXIT_RUNTIME_END`]); a signal or another code wins.
pub(super) fn sandbox_notice(status: ExitStatus, end: Option<crate::ipc::EndReason>) -> Message {
    let mut members: Vec<(&str, Message)> =
        vec![("monitor", "ended".into()), ("sandbox", true.into())];
    match (status, end) {
        (ExitStatus::Exited(super::EXIT_RUNTIME_END), Some(reason)) => {
            members.push(("reason", reason.name().into()));
        }
        (ExitStatus::Exited(code), _) => {
            members.push(("reason", "exited".into()));
            members.push(("code", f64::from(code).into()));
        }
        (ExitStatus::Signaled(libc::SIGXCPU), _) => {
            members.push(("reason", "cpu_budget".into()));
        }
        (ExitStatus::Signaled(signal), _) => {
            members.push(("reason", "killed".into()));
            members.push(("signal", f64::from(signal).into()));
        }
        (ExitStatus::Seccomp { syscall }, _) => {
            members.push(("reason", "seccomp".into()));
            members.push(("syscall", f64::from(syscall).into()));
        }
        (ExitStatus::Lost, _) => members.push(("reason", "lost".into())),
    }
    Message::object(members)
}

/// The host's side of one sandbox, on a thread of its own: reads the
/// sandbox's frames (one at a time: the next is read only once the
/// spawner took the previous one, so a flood costs the host one message)
/// and posts them to the spawner's inbox (or the actor of their route,
/// `routes`), and tells `monitor` how the sandbox ended. The thread
/// counts as a running thread of the process (it can still wake the
/// spawner) and holds an address of the spawner's inbox (a sender), and
/// the route table its routes, until the sandbox is gone.
pub(crate) fn serve_sandbox(
    process: Arc<crate::actor::process::Process>,
    handle: SandboxHandle,
    spawner: ActorAddress,
    monitor: Option<ActorAddress>,
    ring: Option<SharedRing>,
    routes: Arc<RouteTable>,
) -> std::io::Result<()> {
    let signal = process.add_thread()?;
    let feed = SandboxFeed::new(handle, signal.clone(), routes.clone());
    let weak: std::sync::Weak<SandboxFeed> = Arc::downgrade(&feed);
    spawner.mailbox.add_feed(weak);
    let thread_process = process.clone();
    let thread_signal = signal.clone();
    let spawned = std::thread::Builder::new()
        .name("luring-sandbox".into())
        .spawn(move || {
            let (status, end) = relay(&feed, &spawner, &thread_process, &thread_signal);
            // Waiters stop reading it now (they hold it only while polling).
            drop(feed);
            // Its routes' actors stop counting it as a sender.
            routes.end();
            if let Some(ring) = &ring {
                lock_ring(ring).take();
            }
            if let Some(monitor) = monitor {
                let _ = monitor.mailbox.post(Envelope {
                    msg: sandbox_notice(status, end),
                    sender: None,
                    send_id: 0,
                });
            }
            drop(spawner);
            thread_process.leave(&thread_signal);
            // Its eventfd must not pile up in a long-lived embedding runtime.
            thread_process.forget(&thread_signal);
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
            process.forget(&signal);
            Err(e)
        }
    }
}

/// How long after a spinning receiver got its message the relay thread
/// still leaves the socket to receivers (a request-reply loop spins again
/// within microseconds); past it the relay reads again. It is also the
/// relay's sleep while it leaves the socket to them, so it bounds how late
/// a frame is when the receivers stop for good.
const LEASE_LINGER_MS: i32 = 1;

/// One sandbox's frames as both its relay thread and the Rust receivers
/// spinning on its spawner's mailbox read them (`Feed`).
///
/// Invariants:
/// - Every frame is read, checked and posted under `state`'s lock, by
///   whichever thread holds it (receivers only `try_lock`): each frame
///   once, in the socket's order, with the same checks (`read_frame`).
/// - At most one frame is in flight: the next is read only once the
///   receipt of the previous one came back (`awaiting`), whoever reads.
/// - While a receiver spins (`spinning` > 0) and for `LEASE_LINGER_MS`
///   after one got its message (`linger_until`), the relay thread does not
///   poll the socket (the frame would wake it for nothing) nor ask to be
///   woken by receipts (`wants_receipt`); a receiver that stops spinning
///   without a message hands the socket back at once (wakes the relay).
/// - The sandbox's end (status, exit, kill, draining after the exit)
///   stays the relay thread's alone.
pub(crate) struct SandboxFeed {
    state: std::sync::Mutex<FeedState>,
    /// Receipts of the frames posted (the relay's inbox for them).
    receipts: Arc<crate::actor::mailbox::Mailbox>,
    control: std::os::fd::RawFd,
    status: std::os::fd::RawFd,
    spinning: std::sync::atomic::AtomicUsize,
    /// `state.awaiting.is_some()`, for the relay's last look before it
    /// sleeps (a receiver may have taken the receipt it waits for).
    in_flight: std::sync::atomic::AtomicBool,
    /// Nanoseconds since `born` until which the socket is left to receivers.
    linger_until: std::sync::atomic::AtomicU64,
    born: std::time::Instant,
    /// The relay thread sleeps waiting for a receipt (set before it
    /// publishes its sleep, SeqCst, like `ThreadSignal`'s protocol).
    wants_receipt: Arc<std::sync::atomic::AtomicBool>,
    relay_signal: Arc<crate::actor::process::ThreadSignal>,
}

struct FeedState {
    /// Owns the fds `control` and `status` of the feed.
    handle: SandboxHandle,
    buf: Vec<u8>,
    /// The send id of the frame posted and not yet taken.
    awaiting: Option<u64>,
    next_id: u64,
    /// False once the channel is closed (EOF, end frame, a rejected frame).
    reading: bool,
    end: Option<crate::ipc::EndReason>,
    got: Vec<(u64, bool)>,
    /// The sandbox's route table (routes.rs).
    routes: Arc<RouteTable>,
}

/// Wakes the relay thread for a receipt only when it sleeps waiting for
/// one (while receivers read the socket, they take the receipts).
struct ReceiptWaiter {
    wants: Arc<std::sync::atomic::AtomicBool>,
    signal: Arc<crate::actor::process::ThreadSignal>,
}

impl crate::actor::mailbox::Waiter for ReceiptWaiter {
    fn notify(&self) {
        if self.wants.load(std::sync::atomic::Ordering::SeqCst) {
            self.signal.wake();
        }
    }
}

impl SandboxFeed {
    fn new(
        handle: SandboxHandle,
        relay_signal: Arc<crate::actor::process::ThreadSignal>,
        routes: Arc<RouteTable>,
    ) -> Arc<Self> {
        let receipts = crate::actor::mailbox::Mailbox::new();
        let wants_receipt = Arc::new(std::sync::atomic::AtomicBool::new(false));
        receipts.set_waiter(Arc::new(ReceiptWaiter {
            wants: wants_receipt.clone(),
            signal: relay_signal.clone(),
        }));
        Arc::new(Self {
            control: handle.control().as_raw_fd(),
            status: handle.status_fd().as_raw_fd(),
            state: std::sync::Mutex::new(FeedState {
                handle,
                buf: vec![0u8; crate::ipc::MAX_FRAME_BYTES],
                awaiting: None,
                next_id: 0,
                reading: true,
                end: None,
                got: Vec::new(),
                routes,
            }),
            receipts,
            spinning: std::sync::atomic::AtomicUsize::new(0),
            in_flight: std::sync::atomic::AtomicBool::new(false),
            linger_until: std::sync::atomic::AtomicU64::new(0),
            born: std::time::Instant::now(),
            wants_receipt,
            relay_signal,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the receipts that came back (under the lock); true when that
    /// ended the frame in flight.
    fn take_receipts(&self, st: &mut FeedState) -> bool {
        let was = st.awaiting.is_some();
        st.take_receipts(&self.receipts);
        self.note_in_flight(st);
        was && st.awaiting.is_none()
    }

    fn note_in_flight(&self, st: &FeedState) {
        self.in_flight
            .store(st.awaiting.is_some(), std::sync::atomic::Ordering::SeqCst);
    }

    fn now_ns(&self) -> u64 {
        self.born.elapsed().as_nanos() as u64
    }

    /// Whether receivers read the socket now (the relay leaves it to them).
    fn leased(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.spinning.load(Ordering::SeqCst) > 0
            || self.now_ns() < self.linger_until.load(Ordering::SeqCst)
    }
}

impl crate::actor::mailbox::Feed for SandboxFeed {
    fn start(&self) {
        self.spinning
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn poll(&self, into: &Arc<crate::actor::mailbox::Mailbox>) -> bool {
        let mut st = match self.state.try_lock() {
            Ok(st) => st,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            // The relay thread (or another receiver) is at it.
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        if self.take_receipts(&mut st)
            && self.wants_receipt.load(std::sync::atomic::Ordering::SeqCst)
        {
            // The relay thread sleeps waiting for the receipt just taken.
            self.relay_signal.wake();
        }
        if !st.reading || st.awaiting.is_some() {
            return false;
        }
        let read = st.read_frame(&self.receipts, into);
        self.note_in_flight(&st);
        read
    }

    fn stop(&self, soon: bool) {
        use std::sync::atomic::Ordering;
        if soon {
            let until = self.now_ns() + LEASE_LINGER_MS as u64 * 1_000_000;
            self.linger_until.fetch_max(until, Ordering::SeqCst);
        }
        if self.spinning.fetch_sub(1, Ordering::SeqCst) == 1 && !soon {
            // Nobody reads it now: the relay takes the socket back.
            self.linger_until.store(0, Ordering::SeqCst);
            self.relay_signal.wake();
        }
    }

    fn hand_back(&self) {
        use std::sync::atomic::Ordering;
        if self.spinning.load(Ordering::SeqCst) == 0
            && self.now_ns() < self.linger_until.load(Ordering::SeqCst)
        {
            // (A receiver that starts spinning meanwhile leases it again:
            // the relay looks at `leased` before each poll of the socket.)
            self.linger_until.store(0, Ordering::SeqCst);
            self.relay_signal.wake();
        }
    }
}

impl FeedState {
    /// Takes the receipts that came back; the frame in flight is taken
    /// once its receipt is here.
    fn take_receipts(&mut self, receipts: &crate::actor::mailbox::Mailbox) {
        if receipts.take_pending() {
            receipts.take_receipts(&mut self.got);
            let awaiting = self.awaiting;
            if self.got.drain(..).any(|(id, _)| Some(id) == awaiting) {
                self.awaiting = None;
            }
        }
    }

    /// Reads one frame without waiting and posts it to `into`; false when
    /// the socket was empty. Any frame that breaks a rule closes the
    /// channel (`reading` false), its descriptors closed.
    fn read_frame(
        &mut self,
        receipts: &Arc<crate::actor::mailbox::Mailbox>,
        into: &Arc<crate::actor::mailbox::Mailbox>,
    ) -> bool {
        match self
            .handle
            .try_recv_control(&mut self.buf, crate::ipc::MAX_FDS)
        {
            Err(luring_sandbox::ControlError::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock =>
            {
                return false;
            }
            Ok(frame) if frame.len == 0 => self.reading = false,
            Ok(frame) => match frame_from_sandbox(
                &self.buf[..frame.len],
                frame.fds,
                Some(into),
                &self.routes,
            ) {
                Ok(FromSandbox::End(reason)) => {
                    // The runtime's last write: nothing follows it.
                    self.end = Some(reason);
                    self.reading = false;
                }
                Ok(FromSandbox::Message(msg, to)) => {
                    self.next_id += 1;
                    let env = Envelope {
                        msg,
                        sender: Some(receipts.clone()),
                        send_id: self.next_id,
                    };
                    // (Another route's actor that is gone: dropped, as a
                    // packet to a dead peer.)
                    let target = to.as_ref().map_or(into, |a| &a.mailbox);
                    if target.post(env).is_ok() {
                        self.awaiting = Some(self.next_id);
                    }
                }
                Err(reason) => {
                    // The one channel that broke a rule closes.
                    tracing::debug!(%reason, "sandbox frame rejected; its channel closes");
                    self.reading = false;
                }
            },
            Err(luring_sandbox::ControlError::Closed) => self.reading = false,
            Err(e) => {
                tracing::debug!(error = %e, "sandbox frame rejected; its channel closes");
                self.reading = false;
            }
        }
        true
    }
}

/// Relays the sandbox's frames to `spawner` until the sandbox ended;
/// returns how it ended, and the reason of its end frame if it sent one.
/// While Rust receivers spin on the spawner's mailbox they read the frames
/// themselves (`SandboxFeed`) and this thread only watches the sandbox.
fn relay(
    feed: &SandboxFeed,
    spawner: &ActorAddress,
    process: &crate::actor::process::Process,
    signal: &Arc<crate::actor::process::ThreadSignal>,
) -> (ExitStatus, Option<crate::ipc::EndReason>) {
    use std::sync::atomic::Ordering;
    let mut ended = false;
    loop {
        let (reading, awaiting) = {
            let mut st = feed.lock();
            feed.take_receipts(&mut st);
            (st.reading, st.awaiting.is_some())
        };
        // A sandbox that ended may have left frames in the socket: they
        // are relayed first (its end is closed now, so EOF follows them).
        if ended && !reading {
            let mut st = feed.lock();
            let status = st.handle.wait().unwrap_or(ExitStatus::Lost);
            return (status, st.end.take());
        }
        if process.is_over() {
            // The process is ending (`system.exit`, a failed master): its
            // threads are being joined, so this one must end too, and a
            // sandbox still running (a detached one) ends with it. (Before
            // this check the loop spun here: `prepare_sleep` answers
            // `Retry` forever once the process is over.)
            let mut st = feed.lock();
            let _ = st.handle.kill();
            let status = match st.handle.wait_timeout(1000) {
                Ok(Some(status)) => status,
                _ => ExitStatus::Lost,
            };
            return (status, st.end.take());
        }
        // Once the sandbox ended the relay drains the socket itself.
        let leased = !ended && feed.leased();
        let control = if reading && !awaiting && !leased {
            feed.control
        } else {
            -1
        };
        let mut fds = [
            libc::pollfd {
                fd: if ended { -1 } else { feed.status },
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
        let wants_receipt = awaiting && !leased;
        if wants_receipt && !ended {
            // The receiver (a Rust mailbox spinning for its reply, a VM)
            // usually takes the frame within microseconds: looking for the
            // receipt a little while costs less than the eventfd write and
            // the wake-up of this thread it would take once asleep.
            crate::actor::host::spin_until(
                crate::actor::host::SPIN,
                None,
                || feed.receipts.is_pending(),
                || process.is_over(),
            );
        }
        // Publish "sleeping" first, so that a receipt posted from now on
        // writes the eventfd (a running thread is not woken); a receiver
        // handing the socket back wakes it the same way.
        feed.wants_receipt.store(wants_receipt, Ordering::SeqCst);
        let sleep = matches!(
            signal.prepare_sleep(process, false, || {
                (wants_receipt
                    && (feed.receipts.is_pending() || !feed.in_flight.load(Ordering::SeqCst)))
                    || (leased && !feed.leased())
            }),
            crate::actor::process::Sleep::Wait
        );
        // Once the sandbox ended, everything it sent is in the socket
        // already (others may hold its end open: no EOF to wait for).
        let draining = ended && !awaiting;
        if sleep {
            // While receivers read the socket, look again at each linger's
            // end: they may have stopped for good.
            let timeout = if draining {
                0
            } else if leased {
                LEASE_LINGER_MS
            } else {
                -1
            };
            // SAFETY: three live pollfds; a negative fd is ignored by poll.
            unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
            if draining && fds[1].revents == 0 {
                feed.lock().reading = false;
            }
        }
        signal.awake(process);
        if !sleep {
            continue;
        }
        if fds[1].revents != 0 {
            // A receiver may have read it meanwhile: then this finds none.
            let mut st = feed.lock();
            feed.take_receipts(&mut st);
            if st.reading && st.awaiting.is_none() {
                st.read_frame(&feed.receipts, &spawner.mailbox);
                feed.note_in_flight(&st);
            }
        }
        if fds[0].revents != 0 {
            ended = true;
        }
    }
}

/// What a frame from a sandbox is.
pub(super) enum FromSandbox {
    /// A message, and where it goes: `None` for route 0 (the inbox the
    /// relay serves), or the address of another route of the sandbox.
    Message(Message, Option<ActorAddress>),
    /// Its runtime's end frame: why it ends (nothing follows it).
    End(crate::ipc::EndReason),
}

/// A frame from the sandbox: its end frame, or a message whose
/// descriptors came with it by `SCM_RIGHTS` (`recv_control` checked the
/// control data and closes extras and truncated ones) and become fd
/// members. Its destination and each channel it names are routes of
/// `routes`, the sandbox's own table: route 0 is `inbox` (the spawner's),
/// any other must be one its host gave it (routes.rs), so whatever the
/// frame says it can name no other address; a route the table does not
/// hold is a forged frame. On any error every descriptor is closed.
pub(super) fn frame_from_sandbox(
    packet: &[u8],
    fds: Vec<OwnedFd>,
    inbox: Option<&Arc<crate::actor::mailbox::Mailbox>>,
    routes: &RouteTable,
) -> Result<FromSandbox, String> {
    if let Some(end) = crate::ipc::decode_end(packet) {
        if !fds.is_empty() {
            return Err("an end frame carries no descriptors".into());
        }
        return end.map(FromSandbox::End).map_err(|e| e.to_string());
    }
    let received = crate::ipc::decode_with_fds(packet, fds).map_err(|e| e.to_string())?;
    let route = |route: u32| match route {
        0 => inbox
            .map(|inbox| ActorAddress::new(inbox.clone()))
            .ok_or_else(|| "a frame names its host's inbox, and that inbox is gone".to_owned()),
        r => routes
            .address(r)
            .ok_or_else(|| format!("a frame names route {r}, which this sandbox was never given")),
    };
    let destination = match received.routing.destination {
        0 => None,
        r => Some(route(r)?),
    };
    let channels = (0..received.channel_count)
        .map(|k| route(received.routing.channel(k)))
        .collect::<Result<Vec<_>, _>>()?;
    received
        .into_message(channels)
        .map(|msg| FromSandbox::Message(msg, destination))
        .map_err(|e| e.to_string())
}

/// The error `spawn_vm` raises when the supervisor refused a sandbox. A
/// protection the kernel lacks is named, with the Lua way to opt down.
pub(crate) fn spawn_error_message(e: &luring_sandbox::SpawnError) -> String {
    match e {
        luring_sandbox::SpawnError::MissingProtection(what) => format!(
            "spawn_vm: cannot start the sandbox: {what} (from Lua: \
             sandbox = {{ allow_weaker = {{ 'landlock' }} }} runs it with what the kernel has)"
        ),
        e => format!("spawn_vm: cannot start the sandbox: {e}"),
    }
}

/// The typed options of a sandbox from the table `spawn_vm` checked
/// (lua/core/actors.lua `sandbox_options`; the checks here only guard
/// against a core bug). Rust builds the same struct itself
/// ([`crate::SandboxOptions`]); both end in [`spec_of_options`].
fn options_of_table(options: &Table) -> mlua::Result<SandboxOptions> {
    let bad = |what: &str| mlua::Error::runtime(format!("spawn_vm: bad sandbox option {what}"));
    let paths = |key: &str| -> mlua::Result<Vec<PathBuf>> {
        let Some(list) = options.get::<Option<Table>>(key)? else {
            return Ok(Vec::new());
        };
        list.sequence_values::<mlua::BString>()
            .map(|p| {
                let p = p?;
                Ok(PathBuf::from(std::ffi::OsString::from_vec(Vec::from(p))))
            })
            .collect()
    };
    let ports = |t: &Table, key: &str| -> mlua::Result<Vec<u16>> {
        t.get::<Table>(key)?.sequence_values::<u16>().collect()
    };
    let mut out = SandboxOptions::new();
    out.read_only = paths("read_only")?;
    out.read_write = paths("read_write")?;
    if let Some(t) = options.get::<Option<Table>>("network")? {
        out.network = Some((ports(&t, "tcp_bind")?, ports(&t, "tcp_connect")?));
    }
    if let Some(t) = options.get::<Option<Table>>("limits")? {
        out.open_files = t.get::<Option<u64>>("open_files")?;
        out.processes = t.get::<Option<u64>>("processes")?;
    }
    if let Some(bytes) = options.get::<Option<f64>>("memory")? {
        if !(bytes >= 1.0 && bytes.fract() == 0.0 && bytes < 2f64.powi(53)) {
            return Err(bad("memory"));
        }
        out.memory = Some(bytes as u64);
    }
    out.cpu_seconds = options.get::<Option<u64>>("cpu_seconds")?;
    if let Some(weaker) = options.get::<Option<Table>>("allow_weaker")? {
        for pair in weaker.pairs::<String, bool>() {
            match pair?.0.as_str() {
                "landlock" => out.allow_weaker_landlock = true,
                other => return Err(bad(other)),
            }
        }
    }
    Ok(out)
}

/// The spec of a sandbox from its options (checked by their maker: Lua's
/// `sandbox_options` or [`SandboxOptions::check`]), and what the sandboxed
/// VM itself is told. The one place options become a [`SandboxSpec`].
pub(crate) fn spec_of_options(options: &SandboxOptions) -> (SandboxSpec, BootOptions) {
    let network = match &options.network {
        None => Network::None,
        Some((bind, connect)) => Network::Loopback {
            tcp_bind: bind.clone(),
            tcp_connect: connect.clone(),
        },
    };
    let mut limits = Limits::default();
    if let Some(n) = options.open_files {
        limits.nofile = n;
    }
    if let Some(n) = options.processes {
        limits.pids = n;
    }
    if let Some(bytes) = options.memory {
        // The Lua heap's limit is the real one; RLIMIT_AS is a backstop
        // against memory taken outside it, so it leaves room for the
        // process's own mappings (code, thread stacks, the ring).
        limits.address_space = Some(bytes.saturating_add(ADDRESS_SPACE_HEADROOM));
    }
    limits.cpu_seconds = options.cpu_seconds;
    let mut compat = Compat::default();
    if options.allow_weaker_landlock {
        compat.landlock = Requirement::BestEffort;
    }
    let spec = SandboxSpec {
        ro_paths: options.read_only.clone(),
        rw_paths: options.read_write.clone(),
        network,
        limits,
        compat,
        ..SandboxSpec::default()
    };
    (
        spec,
        BootOptions {
            memory_limit: options.memory,
        },
    )
}

/// Host-side rt functions: `spawn_sandboxed`, `sandbox_send`,
/// `sandbox_close`, `sandbox_kill`, `set_sandbox_methods`.
pub(crate) fn add_host_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use crate::actor::vm::{submit_op, unless_closing};
    let probe = lua.create_userdata(SandboxChannel {
        control: RefCell::new(None),
        child: RefCell::new(None),
        ring: None,
        routes: None,
        route: 0,
    })?;
    crate::modules::name_userdata_metatable(lua, probe, c"ipc_actor_channel")?;
    rt.set(
        "set_sandbox_methods",
        // The channel's `__index`: a function (for the `child_pid`
        // property).
        lua.create_function(|lua, index: mlua::Function| {
            let probe = lua.create_userdata(SandboxChannel {
                control: RefCell::new(None),
                child: RefCell::new(None),
                ring: None,
                routes: None,
                route: 0,
            })?;
            crate::actor::channels::set_index_table(lua, probe, index)
        })?,
    )?;
    // spawn_sandboxed(rel, display, monitor, subprocess) -> handle
    //   | nil, 'errno', errno | nil, 'special', kind | nil, 'too_large'
    // (`subprocess`: the plan lua/core/actors.lua checked, or nil)
    rt.set(
        "spawn_sandboxed",
        lua.create_function(unless_closing(
            |lua,
             (rel, display, monitor, options, subprocess): (
                mlua::BString,
                mlua::BString,
                bool,
                Option<Table>,
                Option<Table>,
            )| {
                let rel = std::ffi::CString::new(Vec::from(rel)).map_err(|_| error::einval(1))?;
                let root_fd = with_state(lua, |st| st.import_root.clone())?.ok_or_else(|| {
                    mlua::Error::from(ErrorCode::core(error::CoreError::CurrentModuleNotKnown))
                })?;
                let root = std::os::fd::AsFd::as_fd(&*root_fd);
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
                let (spec, boot) = match (&subprocess, options) {
                    (Some(plan), _) => (subprocess_spec(plan)?, BootOptions::default()),
                    (None, Some(options)) => {
                        let (mut spec, boot) = spec_of_options(&options_of_table(&options)?);
                        spec.stdin = stdio_of(options.raw_get("stdin")?, 0, "sandbox/stdin")?;
                        spec.stdout = share_std(1)?;
                        spec.stderr = share_std(2)?;
                        (spec, boot)
                    }
                    (None, None) => {
                        return Err(mlua::Error::runtime(
                            "spawn_sandboxed: neither sandbox options nor a subprocess plan",
                        ))
                    }
                };
                let handle = sv
                    .spawn(VM_ENTRY, &boot.encode(), &spec)
                    .map_err(|e| mlua::Error::runtime(spawn_error_message(&e)))?;
                let display = String::from_utf8_lossy(&display).into_owned();
                send_boot(handle.control(), &display, &source).map_err(|e| {
                    mlua::Error::runtime(format!("spawn_vm: cannot send the module: {e}"))
                })?;
                let io = |e: std::io::Error| mlua::Error::from(ErrorCode::from_io(&e));
                let control = handle.control().try_clone_to_owned().map_err(io)?;
                let pidfd = handle.pidfd().try_clone_to_owned().map_err(io)?;
                let ring = match handle.ring_fd() {
                    Some(fd) => Some(Arc::new(std::sync::Mutex::new(Some(
                        fd.try_clone_to_owned().map_err(io)?,
                    )))),
                    None => None,
                };
                let pid = handle.pid();
                let supervised = Rc::new(Cell::new(true));
                let killer = SandboxKiller {
                    pidfd: handle.pidfd().try_clone_to_owned().map_err(io)?,
                    supervised: supervised.clone(),
                };
                let own = with_state(lua, |st| st.mailbox.clone())?;
                let monitor = monitor.then(|| ActorAddress::new(own.clone()));
                // On failure the handle was dropped, which killed it.
                let process = crate::actor::host::current_process().ok_or_else(|| {
                    mlua::Error::runtime("spawn_vm: sandboxes are spawned from a host thread")
                })?;
                let routes = RouteTable::new();
                // Its frames are read on this VM's own ring (ring_relay.rs).
                with_state(lua, |st| {
                    let relay = RingRelay::start(
                        &mut st.executor,
                        handle,
                        ActorAddress::new(own),
                        monitor,
                        ring.clone(),
                        routes.clone(),
                        supervised.clone(),
                        process,
                    )?;
                    st.relays.push(relay);
                    Ok::<_, std::io::Error>(())
                })?
                .map_err(io)?;
                with_state(lua, |st| st.sandboxes.push(Box::new(killer)))?;
                let ch = lua.create_userdata(SandboxChannel {
                    control: RefCell::new(Some(OpFd::owned(control))),
                    child: RefCell::new(Some(DirectChild {
                        pidfd,
                        pid,
                        supervised,
                    })),
                    ring,
                    routes: Some(routes),
                    route: 0,
                })?;
                Ok((Value::UserData(ch), Value::Nil, Value::Nil))
            },
        ))?,
    )?;
    // sandbox_send(channel, message, inline) -> op id (the result: bytes
    // sent or -errno), the slots the message's fds were installed in (a
    // table, or nil) and, fourth, the routes the frame named (a table, or
    // nil): if the send fails or is interrupted, Lua hands them to
    // sandbox_clear_slots and sandbox_revoke_routes (the frame that named
    // them never left).
    // With `inline` (K.may_complete_inline), a third value: the result,
    // when the send completed at once (no wait; inside a sandbox its
    // enter also carries the inbox's read-ahead, inside.rs; on the host,
    // for a boolean, number or short string, the relays' next reads).
    type SendArgs = (Value, Value, Option<bool>);
    rt.set(
        "sandbox_send",
        lua.create_function(unless_closing(|lua, (ch, msg, inline): SendArgs| {
            let ch = channel_arg(&ch)?;
            let control = ch.control.borrow().clone().ok_or_else(|| {
                mlua::Error::from(ErrorCode::core(error::CoreError::ChannelClosed))
            })?;
            let (own, sandboxed) = with_state(lua, |st| {
                // Its answer is likely microseconds away (executor.rs).
                st.executor.note_traffic();
                (st.mailbox.clone(), st.executor.is_fixed_only())
            })?;
            if sandboxed {
                let (id, done) =
                    send_to_host(lua, &control, ch.route, &own, &msg, inline == Some(true))?;
                return Ok((id, Value::Nil, done, Value::Nil));
            }
            // A boolean, number or short string: no fd, no route, no copy
            // into a `Message` first (the same bytes: `scalar_frame`).
            if let Some(frame) = super::scalar_frame(&msg, crate::ipc::FdPlacement::FixedSlots(&[]))
            {
                let bytes = frame
                    .map_err(|e| mlua::Error::runtime(format!("send: {e}")))?
                    .into_boxed_slice();
                // With `inline` the send may complete at once (a datagram
                // that fits the socket does): the fiber goes on to its
                // receive without a ring turn. The sandboxes' next reads
                // (ring_relay.rs) leave in the same enter, after the send.
                let (id, done) = with_state(lua, |st| {
                    crate::actor::vm::submit_maybe_inline(st, inline == Some(true), |st| {
                        let id = st
                            .executor
                            .send_datagram(&control, OpBuffer::Owned(bytes))?;
                        st.relays.before_turn(&mut st.executor);
                        Ok(id)
                    })
                })?
                .map_err(crate::actor::vm::io_err)?;
                return Ok((id.to_f64(), Value::Nil, done, Value::Nil));
            }
            let caps = crate::actor::channels::ActorCapabilities {
                own: &own,
                others: &super::SandboxCapabilities,
            };
            let msg = message::from_lua(lua, &msg, &caps, &message::Limits::default())?;
            let converted = crate::ipc::convert_message(&msg)
                .map_err(|e| mlua::Error::runtime(format!("send: {e}")))?;
            // The sender's inbox is route 0 (replies come back on the
            // control socket); any other address gets a route of this
            // sandbox's table (routes.rs), added once the frame is sent.
            // Checked first: a refused frame installs nothing.
            let plan = match &ch.routes {
                Some(table) => table
                    .routes_for(Some(&own), &converted.channels)
                    .map_err(|e| mlua::Error::runtime(e.message()))?,
                None if converted
                    .channels
                    .iter()
                    .all(|a| Arc::ptr_eq(&a.mailbox, &own)) =>
                {
                    None
                }
                None => return Err(ErrorCode::generic(libc::ENOTSUP).into()),
            };
            let fds = &converted.fds;
            // Held until the frame is submitted: the ring fd stays open.
            let ring = ch.ring.as_ref().map(lock_ring);
            let slots = match (fds.is_empty(), ring.as_deref()) {
                (true, _) => Vec::new(),
                (false, None) => {
                    return Err(mlua::Error::runtime(
                        "send: this sandbox's ring was not handed to the host, so no file \
                         descriptor can be installed in it",
                    ))
                }
                (false, Some(None)) => {
                    return Err(mlua::Error::runtime(
                        "send: the sandboxed actor has ended: no file descriptor can be \
                         installed in it",
                    ))
                }
                (false, Some(Some(ring))) => install_fds(lua, fds, ring.as_fd())?,
            };
            let ring_fd = ring
                .as_deref()
                .and_then(|r| r.as_ref().map(AsRawFd::as_raw_fd));
            let undo = |slots: &[u32]| {
                if let Some(ring) = ring_fd {
                    clear_slots(ring, slots);
                }
            };
            let routing = crate::ipc::Routing {
                destination: 0,
                channels: plan.as_ref().map(|p| p.routes.clone()).unwrap_or_default(),
            };
            let frame =
                match converted.encode(crate::ipc::FdPlacement::FixedSlots(&slots), &routing) {
                    Ok(frame) => frame,
                    Err(e) => {
                        undo(&slots);
                        return Err(mlua::Error::runtime(format!("send: {e}")));
                    }
                };
            let bytes = frame.bytes.into_boxed_slice();
            let id = match submit_op(lua, |st| {
                st.executor.send_datagram(&control, OpBuffer::Owned(bytes))
            }) {
                Ok(id) => id,
                Err(e) => {
                    undo(&slots);
                    return Err(e);
                }
            };
            let named = plan.map(super::routes::RoutePlan::commit);
            let slots = if slots.is_empty() {
                Value::Nil
            } else {
                Value::Table(lua.create_sequence_from(slots)?)
            };
            let named = match named {
                Some(named) if !named.is_empty() => Value::Table(lua.create_sequence_from(named)?),
                _ => Value::Nil,
            };
            Ok((id, slots, None, named))
        }))?,
    )?;
    // sandbox_revoke_routes(channel, routes): the frame that named `routes`
    // (sandbox_send's fourth value) was not sent (routes.rs `revoke`).
    rt.set(
        "sandbox_revoke_routes",
        lua.create_function(unless_closing(|_, (ch, routes): (Value, Vec<u32>)| {
            if let Some(table) = &channel_arg(&ch)?.routes {
                table.revoke(&routes);
            }
            Ok(())
        }))?,
    )?;
    // sandbox_clear_slots(channel, slots): empties slots installed for a
    // frame that was not sent.
    rt.set(
        "sandbox_clear_slots",
        lua.create_function(unless_closing(|_, (ch, mut slots): (Value, Vec<u32>)| {
            let ch = channel_arg(&ch)?;
            let table = luring_sandbox::RingSpec::default().fixed_files;
            let host_slots = luring_sandbox::ring::host_slots(table);
            if let Some(ring) = ch
                .ring
                .as_ref()
                .map(lock_ring)
                .as_deref()
                .and_then(Option::as_ref)
            {
                // Only the range the host installs in: never stdio or the
                // control socket, whatever the caller passes.
                slots.retain(|slot| host_slots.contains(slot));
                clear_slots(ring.as_raw_fd(), &slots);
            }
            Ok(())
        }))?,
    )?;
    rt.set(
        "sandbox_close",
        lua.create_function(unless_closing(|_, ch: Value| {
            channel_arg(&ch)?.close();
            Ok(())
        }))?,
    )?;
    // sandbox_kill(channel, signo): closed -> channel_closed; not a direct
    // child (a channel to the host, or detached) -> EPERM.
    rt.set(
        "sandbox_kill",
        lua.create_function(unless_closing(|_, (ch, signo): (Value, Option<i32>)| {
            let ch = channel_arg(&ch)?;
            if ch.control.borrow().is_none() {
                return Err(ErrorCode::core(error::CoreError::ChannelClosed).into());
            }
            let child = ch.child.borrow();
            let pidfd = &child
                .as_ref()
                .ok_or_else(|| mlua::Error::from(ErrorCode::generic(libc::EPERM)))?
                .pidfd;
            let signo = signo.unwrap_or(libc::SIGKILL);
            if !(1..=64).contains(&signo) {
                return Err(error::einval(2));
            }
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
                drop(child);
                ch.close();
            }
            Ok(())
        }))?,
    )?;
    // sandbox_detach(channel): the VM stops supervising the sandbox (no
    // SIGKILL when it ends); not a direct child -> EINVAL.
    rt.set(
        "sandbox_detach",
        lua.create_function(unless_closing(|_, ch: Value| {
            let child = channel_arg(&ch)?
                .child
                .borrow_mut()
                .take()
                .ok_or_else(|| error::einval(1))?;
            child.supervised.set(false);
            Ok(())
        }))?,
    )?;
    // sandbox_child_pid(channel) -> pid; not a direct child -> EINVAL.
    rt.set(
        "sandbox_child_pid",
        lua.create_function(unless_closing(|_, ch: Value| {
            let ch = channel_arg(&ch)?;
            let child = ch.child.borrow();
            Ok(child.as_ref().ok_or_else(|| error::einval(1))?.pid)
        }))?,
    )?;
    Ok(())
}

/// Inside a sandbox: sends `msg` to the host as one frame on the control
/// socket (a ring `SEND` on its slot, `SENDMSG` when it carries fds). Each `file_descriptor` in it is
/// turned into a plain fd of this process (`fd_of_slot`) and attached by
/// `SCM_RIGHTS`; the op holds those fds and closes them once it completed.
/// The frame goes to `route` (the channel's: 0, the spawner's inbox, or
/// another address its host gave it). The only channels it may name are
/// the host's routes (channels this sandbox was sent): any other, its own
/// inbox included, is `ENOTSUP`. Returns the op id.
fn send_to_host(
    lua: &Lua,
    control: &OpFd,
    route: u32,
    own: &Arc<crate::actor::mailbox::Mailbox>,
    msg: &Value,
    inline: bool,
) -> mlua::Result<(f64, Option<i32>)> {
    if route == 0 {
        // A boolean, number or short string to the spawner: no fd, no
        // channel, no copy into a `Message` first (`scalar_frame`).
        if let Some(frame) = super::scalar_frame(msg, crate::ipc::FdPlacement::ScmRights) {
            let bytes = frame
                .map_err(|e| mlua::Error::runtime(format!("send: {e}")))?
                .into_boxed_slice();
            return submit_to_host(lua, control, bytes, Vec::new(), inline);
        }
    }
    let caps = crate::actor::channels::ActorCapabilities {
        own,
        others: &ToHostCapabilities { lua },
    };
    let mut msg = message::from_lua(lua, msg, &caps, &message::Limits::default())?;
    let converted = crate::ipc::convert_message(&msg)
        .map_err(|e| mlua::Error::runtime(format!("send: {e}")))?;
    let channels = converted
        .channels
        .iter()
        .map(|a| super::inside::route_of(a))
        .collect::<Option<Vec<u32>>>()
        .ok_or_else(|| mlua::Error::from(ErrorCode::generic(libc::ENOTSUP)))?;
    let routing = crate::ipc::Routing {
        destination: route,
        // (Empty when all are route 0: the common case allocates nothing.)
        channels: if channels.iter().all(|&r| r == 0) {
            Vec::new()
        } else {
            channels
        },
    };
    let frame = converted
        .encode(crate::ipc::FdPlacement::ScmRights, &routing)
        .map_err(|e| mlua::Error::runtime(format!("send: {e}")))?;
    let bytes = frame.bytes.into_boxed_slice();
    let fds: Vec<OpFd> = take_fds(&mut msg).into_iter().map(OpFd::owned).collect();
    submit_to_host(lua, control, bytes, fds, inline)
}

/// Submits a frame to the host (`send_to_host`), maybe completed inline.
fn submit_to_host(
    lua: &Lua,
    control: &OpFd,
    bytes: Box<[u8]>,
    fds: Vec<OpFd>,
    inline: bool,
) -> mlua::Result<(f64, Option<i32>)> {
    let (id, done) = with_state(lua, |st| {
        crate::actor::vm::submit_maybe_inline(st, inline, |st| {
            // Without fds a plain `SEND` (the same packet; no msghdr for
            // the kernel to copy in).
            let id = if fds.is_empty() {
                st.executor.send_datagram(control, OpBuffer::Owned(bytes))?
            } else {
                st.executor
                    .send_msg(control, OpBuffer::Owned(bytes), None, fds, 0)?
            };
            // The inbox's read-ahead goes out right after it (inside.rs).
            st.relays.control.arm_wanted(&mut st.executor);
            Ok(id)
        })
    })?
    .map_err(crate::actor::vm::io_err)?;
    Ok((id.to_f64(), done))
}

/// Inside a sandbox, the hooks of a message to the host: a received
/// `file_descriptor` (a slot) becomes a plain fd of this process, to
/// travel by `SCM_RIGHTS`; byte spans and addresses as everywhere
/// ([`super::SandboxCapabilities`]).
struct ToHostCapabilities<'l> {
    lua: &'l Lua,
}

impl message::Capabilities for ToHostCapabilities<'_> {
    fn capability_of(
        &self,
        userdata: &mlua::AnyUserData,
    ) -> Option<Result<Message, message::MessageError>> {
        if let Ok(fd) = userdata.borrow::<crate::modules::file_descriptor::FileDescriptor>() {
            return Some(match fd.op_fd() {
                Some(slot @ OpFd::Granted(_)) => {
                    match with_state(self.lua, |st| st.executor.fd_of_slot(&slot)) {
                        Ok(Ok(plain)) => Ok(Message::Fd(plain)),
                        Ok(Err(e)) => Err(message::MessageError::FdDup(e)),
                        Err(e) => Err(e.into()),
                    }
                }
                // Closed, or a slot that is not the actor's to give (stdio).
                _ => Err(message::MessageError::FdClosed),
            });
        }
        if let Ok(channel) = userdata.borrow::<SandboxChannel>() {
            return super::inside::host_channel_member(&channel);
        }
        super::SandboxCapabilities.capability_of(userdata)
    }

    fn capability_to_lua(&self, lua: &Lua, capability: Message) -> mlua::Result<Value> {
        super::SandboxCapabilities.capability_to_lua(lua, capability)
    }

    fn object_of(
        &self,
        lua: &Lua,
        table: &Table,
    ) -> Option<Result<Message, message::MessageError>> {
        super::SandboxCapabilities.object_of(lua, table)
    }
}

/// Takes the fds out of `msg` in frame order (pre-order: arrays by index,
/// objects by key, as `encode_message` numbers them), leaving `false` in
/// their place.
fn take_fds(msg: &mut Message) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    let mut stack = vec![msg];
    while let Some(m) = stack.pop() {
        match m {
            Message::Fd(_) => {
                if let Message::Fd(fd) = std::mem::replace(m, Message::Bool(false)) {
                    fds.push(fd);
                }
            }
            // Reversed so the stack pops them in member order.
            Message::Array(items) => stack.extend(items.iter_mut().rev()),
            Message::Object(members) => stack.extend(members.values_mut().rev()),
            _ => {}
        }
    }
    fds
}

/// Installs each of `fds` in the sandbox ring `ring`'s table from this
/// VM's ring and returns their slots, in order. Directories and `O_PATH`
/// descriptors are refused; on any failure the slots already filled are
/// emptied again, so nothing is left behind.
fn install_fds(lua: &Lua, fds: &[BorrowedFd<'_>], ring: BorrowedFd<'_>) -> mlua::Result<Vec<u32>> {
    let mut slots = Vec::with_capacity(fds.len());
    for fd in fds {
        let installed = refuse_reaching(*fd).and_then(|()| {
            with_state(lua, |st| st.executor.send_fd_to_ring(*fd, ring))
                .map_err(|e| format!("send: {e}"))?
                .map_err(|e| install_error(&e))
        });
        match installed {
            Ok(slot) => slots.push(slot),
            Err(reason) => {
                clear_slots(ring.as_raw_fd(), &slots);
                return Err(mlua::Error::runtime(reason));
            }
        }
    }
    Ok(slots)
}

/// Refuses what would reach past itself inside the sandbox
/// (`luring_sandbox::ring::check_capability`), in the words of a Lua user.
pub(crate) fn refuse_reaching(fd: BorrowedFd<'_>) -> Result<(), String> {
    let Err(e) = luring_sandbox::ring::check_capability(fd) else {
        return Ok(());
    };
    let is_dir = luring_sandbox::sys::fstat(fd.as_raw_fd())
        .map(|st| luring_sandbox::sys::is_dir(&st))
        .unwrap_or(false);
    Err(if is_dir {
        "send: a directory cannot be sent to a sandboxed actor (`..` from it would reach \
         the host's tree); grant paths when the sandbox is spawned"
            .to_owned()
    } else if e.kind() == std::io::ErrorKind::InvalidInput {
        "send: an O_PATH descriptor cannot be sent to a sandboxed actor; open the file \
         itself and send that"
            .to_owned()
    } else {
        format!("send: {e}")
    })
}

pub(crate) fn install_error(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ENFILE) {
        let table = luring_sandbox::RingSpec::default().fixed_files;
        let range = luring_sandbox::ring::host_slots(table);
        format!(
            "send: the sandboxed actor's table of received descriptors is full ({} slots, \
             counting this message's); it must close some before it is sent more (nothing \
             was sent)",
            range.len()
        )
    } else {
        format!("send: cannot install the descriptor in the sandbox's ring: {e}")
    }
}

/// Empties `slots` of the sandbox ring `ring`'s table (best effort: a
/// sandbox that is gone has no table left to tidy).
pub(crate) fn clear_slots(ring: std::os::fd::RawFd, slots: &[u32]) {
    for &slot in slots {
        if let Err(e) = super::slots::clear_slot(ring, slot) {
            tracing::debug!(slot, error = %e, "clearing a slot of a sandbox's table failed");
        }
    }
}

/// A dup of the host's standard stream `fd` (`"share"`).
fn share_std(fd: i32) -> mlua::Result<Stdio> {
    // SAFETY: fds 0, 1 and 2 stay open for the program's life.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    fd.try_clone_to_owned()
        .map(Stdio::Fd)
        .map_err(|e| mlua::Error::from(ErrorCode::from_io(&e)))
}

/// A sandbox's standard stream `std_fd` as the option `name` gives it
/// (checked by lua/core/loader.lua: nil, `'share'` or userdata): nil is
/// `/dev/null`, `'share'` a dup of this process's own, a
/// `file_descriptor` a dup of it (`EINVAL` for other userdata, `EBUSY`
/// for a closed one, both naming the option).
fn stdio_of(value: Value, std_fd: i32, name: &str) -> mlua::Result<Stdio> {
    let bad = |errno| mlua::Error::from(ErrorCode::generic(errno).arg_name(name));
    Ok(match value {
        Value::Nil => Stdio::Null,
        Value::String(_) => share_std(std_fd)?,
        v => {
            let fd = crate::modules::file_descriptor::arg(&v, 1)
                .map_err(|_| bad(libc::EINVAL))?
                .op_fd()
                .ok_or_else(|| bad(libc::EBUSY))?;
            if matches!(fd, OpFd::Fixed(_)) {
                // (A slot of a sandbox's ring: no descriptor here.)
                return Err(bad(libc::EBADF));
            }
            // SAFETY: `fd` (a reference the object shares) keeps the
            // descriptor open while it is duplicated.
            let raw = unsafe { BorrowedFd::borrow_raw(fd.raw()) };
            Stdio::Fd(
                raw.try_clone_to_owned()
                    .map_err(|e| mlua::Error::from(ErrorCode::from_io(&e)))?,
            )
        }
    })
}

/// The sandbox of Emilua's `subprocess = {...}` form, from the plan
/// lua/core/actors.lua checked (a fresh table: raw reads). The namespace
/// flags are not in it: every sandbox gets every namespace.
fn subprocess_spec(plan: &Table) -> mlua::Result<SandboxSpec> {
    let mut env = Vec::new();
    let environment: Table = plan.raw_get("environment")?;
    for pair in environment.pairs::<mlua::BString, mlua::BString>() {
        let (k, v) = pair?;
        use std::os::unix::ffi::OsStringExt;
        env.push((
            std::ffi::OsString::from_vec(k.into()),
            std::ffi::OsString::from_vec(v.into()),
        ));
    }
    let mut stdio = Vec::with_capacity(3);
    for (std_fd, name) in [(0, "stdin"), (1, "stdout"), (2, "stderr")] {
        stdio.push(stdio_of(
            plan.raw_get(name)?,
            std_fd,
            &format!("subprocess/{name}"),
        )?);
    }
    let [stdin, stdout, stderr]: [Stdio; 3] = stdio.try_into().expect("three streams");
    Ok(SandboxSpec {
        env,
        stdin,
        stdout,
        stderr,
        ..SandboxSpec::default()
    })
}

/// Why [`send_message`] refused a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    #[error("file descriptors and channels cannot be sent through this blocking helper; a VM's channel (`ch:send` in Lua) installs descriptors with its ring")]
    Capabilities,
    #[error(transparent)]
    Frame(#[from] crate::ipc::FrameError),
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Sends `msg` to a sandboxed VM as one frame on the host's end of its
/// control socket (blocking). Messages with capabilities are refused: only
/// a VM's channel installs descriptors (from its ring, `FLAG_FIXED_SLOTS`).
pub fn send_message(control: BorrowedFd<'_>, msg: &Message) -> Result<(), SendError> {
    let frame = crate::ipc::encode_message(msg, crate::ipc::FdPlacement::FixedSlots(&[]))?;
    if !frame.fds.is_empty() || !frame.channels.is_empty() {
        return Err(SendError::Capabilities);
    }
    luring_sandbox::sys::send_with_fds(control.as_raw_fd(), &frame.bytes, &[])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever a frame from a sandbox names as channels with route 0 (a
    /// compromised sandbox writes any frame it likes), each becomes the
    /// inbox it is delivered to; with no inbox left, the frame is refused.
    #[test]
    fn a_sandbox_s_channels_can_only_name_the_inbox_they_reach() {
        use crate::ipc::{encode, FdPlacement, Value as W};
        let packet = encode(
            &W::Array(vec![W::Channel(0), W::Array(vec![W::Channel(1)])]),
            FdPlacement::ScmRights,
        )
        .unwrap();
        let inbox = crate::actor::mailbox::Mailbox::new();
        let routes = RouteTable::new();
        let Ok(FromSandbox::Message(Message::Array(items), None)) =
            frame_from_sandbox(&packet, Vec::new(), Some(&inbox), &routes)
        else {
            panic!("a message with two channels, to the inbox");
        };
        let named =
            |m: &Message| matches!(m, Message::Address(a) if Arc::ptr_eq(&a.mailbox, &inbox));
        assert!(named(&items[0]));
        assert!(matches!(&items[1], Message::Array(inner) if named(&inner[0])));
        assert!(frame_from_sandbox(&packet, Vec::new(), None, &routes).is_err());
    }

    /// A frame's destination and channels name routes of that sandbox's
    /// own table: a route it was given reaches its actor (nested or not);
    /// a route it was not given (a guess, one only another sandbox holds,
    /// after its end) is refused, its fds closed.
    #[test]
    fn a_sandbox_reaches_only_the_routes_it_was_given() {
        use crate::ipc::{encode_routed, FdPlacement, Routing, Value as W};
        let inbox = crate::actor::mailbox::Mailbox::new();
        let third = ActorAddress::new(crate::actor::mailbox::Mailbox::new());
        let given = RouteTable::new();
        let [r] = given
            .routes_for(Some(&inbox), &[&third])
            .unwrap()
            .unwrap()
            .commit()[..]
        else {
            panic!("one route");
        };
        // Ids a sandbox might guess: its own route's neighbours, the
        // small ids of a sequential table, the largest.
        let guesses = [
            r.wrapping_add(1).max(1),
            r.wrapping_sub(1).max(1),
            1,
            2,
            64,
            65,
            u32::MAX,
        ]
        .into_iter()
        .filter(|&g| g != r);
        // Spawned by the same actor, given nothing.
        let other_sandbox = RouteTable::new();
        // Channel k nested in a table of its own, then one fd.
        let frame = |destination, channels: Vec<u32>| {
            let mut members: Vec<W> = (0..channels.len() as u32)
                .map(|k| W::Array(vec![W::Channel(k)]))
                .collect();
            members.push(W::Fd(0));
            let routing = Routing {
                destination,
                channels,
            };
            encode_routed(&W::Array(members), FdPlacement::ScmRights, &routing).unwrap()
        };
        // A pipe's write end as the frame's fd: (result, whether the frame
        // left no copy of it open).
        let deliver = |packet: &[u8], table: &RouteTable| {
            let (read, write) = nix::unistd::pipe().expect("pipe");
            let result = frame_from_sandbox(packet, vec![write], Some(&inbox), table);
            nix::fcntl::fcntl(
                &read,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            )
            .expect("set O_NONBLOCK");
            let kept = result.is_ok();
            let closed = !kept && matches!(nix::unistd::read(&read, &mut [0u8; 1]), Ok(0));
            (result, closed)
        };
        let is_third = |a: &ActorAddress| a.same_actor(&third);
        let is_inbox = |a: &ActorAddress| Arc::ptr_eq(&a.mailbox, &inbox);
        let nested = |m: &Message, k: usize| match m {
            Message::Array(items) => match &items[k] {
                Message::Array(inner) => match &inner[0] {
                    Message::Address(a) => a.clone(),
                    _ => panic!("a channel"),
                },
                _ => panic!("a nested table"),
            },
            _ => panic!("an array"),
        };
        // To the third actor, carrying it and the inbox.
        let (Ok(FromSandbox::Message(msg, Some(to))), _) = deliver(&frame(r, vec![r, 0]), &given)
        else {
            panic!("a message to route {r}");
        };
        assert!(is_third(&to));
        assert!(is_third(&nested(&msg, 0)) && is_inbox(&nested(&msg, 1)));
        // Forged: routes the table does not hold, as the destination or a
        // nested channel; the frame's fd is closed.
        for (packet, route) in
            guesses.flat_map(|g| [(frame(g, vec![]), g), (frame(0, vec![0, r, g]), g)])
        {
            let (Err(e), closed) = deliver(&packet, &given) else {
                panic!("route {route} was never given");
            };
            assert!(
                e.contains(&format!(
                    "route {route}, which this sandbox was never given"
                )),
                "{e}"
            );
            assert!(closed, "the fd of a refused frame is closed");
        }
        // A route another sandbox of the same spawner holds means nothing here.
        for packet in [frame(r, vec![]), frame(0, vec![r])] {
            let (Err(e), closed) = deliver(&packet, &other_sandbox) else {
                panic!("another sandbox's route used");
            };
            assert!(
                e.contains(&format!("route {r}, which this sandbox was never given")),
                "{e}"
            );
            assert!(closed);
        }
        // Once the sandbox ended, nothing is reachable through the table.
        given.end();
        assert!(deliver(&frame(r, vec![]), &given).0.is_err());
    }

    #[test]
    fn an_end_frame_is_believed_only_with_the_runtime_s_exit_code() {
        use crate::ipc::EndReason;
        let reason = |status, end| {
            let notice = sandbox_notice(status, end);
            let text = |k: &str| notice.get(k).and_then(|m| m.as_str()).map(str::to_owned);
            let code = notice.get("code").and_then(Message::as_number);
            (text("reason").unwrap_or_default(), code)
        };
        let exit_end = ExitStatus::Exited(super::super::EXIT_RUNTIME_END);
        assert_eq!(
            reason(exit_end, Some(EndReason::Memory)),
            ("memory".into(), None)
        );
        assert_eq!(
            reason(exit_end, Some(EndReason::Failed)),
            ("failed".into(), None)
        );
        // No end frame: the code is the script's.
        assert_eq!(reason(exit_end, None), ("exited".into(), Some(1.0)));
        assert_eq!(
            reason(ExitStatus::Exited(67), None),
            ("exited".into(), Some(67.0))
        );
        // Another code or a signal wins over an end frame.
        assert_eq!(
            reason(ExitStatus::Exited(5), Some(EndReason::Memory)),
            ("exited".into(), Some(5.0))
        );
        assert_eq!(
            reason(ExitStatus::Signaled(libc::SIGKILL), Some(EndReason::Memory)).0,
            "killed"
        );
        assert_eq!(
            reason(ExitStatus::Signaled(libc::SIGXCPU), Some(EndReason::Memory)).0,
            "cpu_budget"
        );
    }

    #[test]
    fn a_missing_protection_names_it_and_the_lua_opt_down() {
        let e = luring_sandbox::SpawnError::MissingProtection(
            "Landlock ABI 6 (Linux 6.12) is required but the kernel offers ABI 3".into(),
        );
        let msg = spawn_error_message(&e);
        assert!(msg.contains("Landlock ABI 6"), "{msg}");
        assert!(msg.contains("allow_weaker = { 'landlock' }"), "{msg}");
        let e = luring_sandbox::SpawnError::InvalidSpec("path /x: gone".into());
        assert_eq!(
            spawn_error_message(&e),
            "spawn_vm: cannot start the sandbox: invalid spec: path /x: gone"
        );
    }
}
