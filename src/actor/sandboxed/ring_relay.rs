//! A sandbox's frames read on its spawner VM's own ring, with no relay
//! thread: a `RECVMSG` of the control socket and a `POLL_ADD` of the
//! sandbox's status fd, whose completions Rust handles inside the VM's
//! ring turn (`rt.turn` in vm.rs), never Lua.
//!
//! Invariants:
//! - One [`RingRelay`] per sandbox a Lua VM spawned, in that VM's state
//!   ([`Relays`]). At most one `RECVMSG` of its control socket is in
//!   flight, and the next is armed only once the frame before it was taken
//!   from the inbox (its receipt came back): a flood from the sandbox costs
//!   the host one message (the backpressure of the thread relay).
//! - A frame goes to its destination route (routes.rs): the spawner's inbox,
//!   or another actor the sandbox was given, posted with a receipt all the
//!   same (one frame in flight whatever the route; a receipt from another
//!   thread wakes this VM). A route the sandbox's table does not hold
//!   closes the channel, as any bad frame. The table is let go in
//!   `finish`.
//! - Hand-over: when a fiber of the spawner waits in `receive` (Lua says
//!   so with the turn), the spawner's inbox holds nothing and a frame to
//!   it is a boolean or a number, the frame's value is not posted:
//!   the turn returns it and the scheduler gives it to that fiber at once
//!   (at most one per turn, [`HandOver`]). It is taken as surely as a
//!   posted one whose receipt came, so the next read is armed before the
//!   next turn as after a receipt: still one frame in flight, in order
//!   (the inbox was empty and the next frame is read only after).
//! - The sandbox's end frame (`ipc::decode_end`) is kept for its monitor
//!   notice and stops reading: its runtime writes nothing after it.
//! - A frame is checked as `SandboxHandle::recv_control` checks it:
//!   truncated data or control data (`MSG_TRUNC`, `MSG_CTRUNC`), more than
//!   `ipc::MAX_FDS` descriptors, a control message that is not
//!   `SCM_RIGHTS` or more than one message, an undecodable frame: its fds
//!   are closed (`MSG_CMSG_CLOEXEC` until then) and the relay stops reading
//!   (that one channel closes). An empty datagram or EOF stops reading too.
//! - The sandbox's end (its status fd turned readable) cancels the
//!   `RECVMSG` in flight; what it left in the socket is then read without
//!   waiting, still one frame at a time; only then its status is read, its
//!   ring reference dropped and the monitor told. The relay keeps an
//!   address of the spawner's inbox until then (no `no_senders` while the
//!   sandbox may still send), like the thread relay.
//! - A relay dropped with its VM (the VM's executor, dropped first, has
//!   cancelled and reaped its ops): a supervised sandbox was killed by its
//!   `SandboxKiller` already; a detached one that still runs is handed to
//!   a relay thread (`host::serve_sandbox`), which ends it when the process
//!   is over, as before.

use std::cell::Cell;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;

use luring_sandbox::{ExitStatus, SandboxHandle};

use super::host::{
    frame_from_sandbox, lock_ring, sandbox_notice, serve_sandbox, FromSandbox, SharedRing,
};
use super::routes::RouteTable;
use crate::actor::mailbox::{ActorAddress, Envelope, Mailbox};
use crate::actor::message::Message;
use crate::actor::process::Process;
use crate::executor::socket::SocketOutput;
use crate::executor::{Completion, Executor, OpBuffer, OpFd, OpId};
use crate::modules::byte_span::SpanRef;

/// The relays of one VM's sandboxes; in a sandboxed VM, also its own read
/// of the control socket (inside.rs), whose completions are taken out of
/// the same turns.
#[derive(Default)]
pub(crate) struct Relays {
    relays: Vec<RingRelay>,
    pub(crate) control: super::inside::ControlRead,
}

/// A frame's value handed to the fiber waiting in the spawner's
/// `receive` instead of being posted (module doc): allowed for one frame
/// per turn, and only while a fiber waits.
pub(crate) struct HandOver {
    allowed: bool,
    value: Option<Message>,
}

impl HandOver {
    /// `receiving`: a fiber of this VM waits in its inbox's `receive`.
    pub(crate) fn new(receiving: bool) -> Self {
        HandOver {
            allowed: receiving,
            value: None,
        }
    }

    /// The value handed over, if a frame's was.
    pub(crate) fn take(&mut self) -> Option<Message> {
        self.value.take()
    }

    /// Whether a value is handed over already (one per turn).
    pub(super) fn holds(&self) -> bool {
        self.value.is_some()
    }

    /// Inside a sandbox: hands over the value of the frame the fiber
    /// waiting in `receive` awaited (inside.rs `ControlRead::after_turn`;
    /// `allowed` is about the spawner's inbox, which a sandboxed VM's
    /// frames do not go through).
    pub(super) fn give(&mut self, msg: Message) {
        debug_assert!(self.value.is_none());
        self.value = Some(msg);
    }

    /// Takes `msg` if it may be handed over to the spawner's fiber (see
    /// the module doc); gives it back otherwise.
    fn offer(&mut self, msg: Message, inbox: &Mailbox) -> Result<(), Message> {
        // (a string would allocate in Lua: it is posted as before)
        let scalar = matches!(msg, Message::Bool(_) | Message::Number(_));
        if !self.allowed || self.value.is_some() || !scalar || !inbox.is_open_and_empty() {
            return Err(msg);
        }
        self.value = Some(msg);
        Ok(())
    }
}

impl Relays {
    pub(crate) fn push(&mut self, relay: RingRelay) {
        self.relays.push(relay);
    }

    /// Relays whose sandbox has not been fully served yet: while there are
    /// any, a VM with a fiber waiting for a message turns its ring.
    pub(crate) fn active(&self) -> usize {
        self.relays.len()
    }

    /// Before a turn: arms the next read of each relay whose last frame was
    /// taken (its receipt came), so the `RECVMSG` goes out with the turn's
    /// `io_uring_enter`.
    pub(crate) fn before_turn(&mut self, executor: &mut Executor) {
        self.control.arm_wanted(executor);
        if self.relays.is_empty() {
            return;
        }
        for relay in &mut self.relays {
            relay.take_receipt();
            relay.advance(executor);
        }
        self.relays.retain(|r| !r.done);
    }

    /// After a turn: takes the completions of relay ops out of `completions`
    /// (Lua never sees them) and handles them.
    /// A frame for a fiber waiting in `receive` may be handed over in
    /// `hand` instead of posted (module doc).
    pub(crate) fn after_turn(
        &mut self,
        executor: &mut Executor,
        completions: &mut Vec<Completion>,
        hand: &mut HandOver,
    ) {
        self.control.after_turn(executor, completions, hand);
        if self.relays.is_empty() {
            return;
        }
        let mut handled = false;
        completions.retain(|c| match self.relays.iter_mut().find(|r| r.owns(c.id)) {
            Some(relay) => {
                relay.completed(executor, c.id, c.result, hand);
                handled = true;
                false
            }
            None => true,
        });
        self.relays.retain(|r| !r.done);
        if handled {
            // What that queued (a cancel, the next read when the frame went
            // nowhere) goes out now: this thread may next sleep in poll(2)
            // on the ring, which submits nothing. A failure shows at the
            // next turn's submission.
            if let Err(e) = executor.submit_queued() {
                tracing::debug!(error = %e, "submitting a sandbox relay's ops failed");
            }
        }
    }
}

/// The host's side of one sandbox on its spawner's ring.
pub(crate) struct RingRelay {
    /// `None` once the sandbox was fully served (its status read).
    handle: Option<SandboxHandle>,
    control: OpFd,
    status: OpFd,
    /// The frame buffer (`ipc::MAX_FRAME_BYTES`), shared with the op that
    /// reads into it.
    buffer: SpanRef,
    /// Where the inbox sends the receipt of each posted frame.
    receipts: Arc<Mailbox>,
    spawner: Option<ActorAddress>,
    monitor: Option<ActorAddress>,
    ring: Option<SharedRing>,
    /// The sandbox's route table (routes.rs), let go in `finish`.
    routes: Arc<RouteTable>,
    supervised: Rc<Cell<bool>>,
    process: Arc<Process>,
    recv_op: Option<OpId>,
    poll_op: Option<OpId>,
    /// The send id of the frame posted and not yet taken.
    awaiting: Option<u64>,
    /// The frame `awaiting` names was handed over (`HandOver`): taken,
    /// as if its receipt had come, at the next `take_receipt`.
    handed: bool,
    next_id: u64,
    /// False once the channel from the sandbox closed (EOF, a rejected
    /// frame, an error).
    reading: bool,
    /// The status fd turned readable: the sandbox is gone.
    ended: bool,
    done: bool,
    /// The status poll failed once already.
    poll_failed: bool,
    /// The reason of the sandbox's end frame, if it sent one.
    end: Option<crate::ipc::EndReason>,
    receipts_buffer: Vec<(u64, bool)>,
}

impl RingRelay {
    /// Starts serving `handle` on `executor`'s ring: its frames go to
    /// `spawner` (or the routes of `routes`), its end to `monitor`.
    #[allow(clippy::too_many_arguments)] // each is one of the sandbox's parts
    pub(crate) fn start(
        executor: &mut Executor,
        handle: SandboxHandle,
        spawner: ActorAddress,
        monitor: Option<ActorAddress>,
        ring: Option<SharedRing>,
        routes: Arc<RouteTable>,
        supervised: Rc<Cell<bool>>,
        process: Arc<Process>,
    ) -> std::io::Result<Self> {
        let control = OpFd::owned(handle.control().try_clone_to_owned()?);
        let status = OpFd::owned(handle.status_fd().try_clone_to_owned()?);
        let mut relay = RingRelay {
            handle: Some(handle),
            control,
            status,
            buffer: SpanRef::new_zeroed(crate::ipc::MAX_FRAME_BYTES, crate::ipc::MAX_FRAME_BYTES),
            receipts: Mailbox::new(),
            spawner: Some(spawner),
            monitor,
            ring,
            routes,
            supervised,
            process,
            recv_op: None,
            poll_op: None,
            awaiting: None,
            handed: false,
            next_id: 0,
            reading: true,
            ended: false,
            done: false,
            poll_failed: false,
            end: None,
            receipts_buffer: Vec::new(),
        };
        relay.poll_op = Some(executor.poll(&relay.status, libc::POLLIN as u32)?);
        relay.advance(executor);
        Ok(relay)
    }

    fn owns(&self, id: OpId) -> bool {
        self.recv_op == Some(id) || self.poll_op == Some(id)
    }

    /// Notes the receipt of the frame in the inbox, if it came.
    fn take_receipt(&mut self) {
        if self.handed {
            // (its read is armed before the next turn, as after a receipt:
            // it then leaves with that turn's enter, not one of its own)
            self.handed = false;
            self.awaiting = None;
            return;
        }
        if self.awaiting.is_none() || !self.receipts.take_pending() {
            return;
        }
        self.receipts.take_receipts(&mut self.receipts_buffer);
        let awaiting = self.awaiting;
        if self
            .receipts_buffer
            .drain(..)
            .any(|(id, _)| Some(id) == awaiting)
        {
            self.awaiting = None;
        }
    }

    /// Does what comes next: arms the next read, reads what an ended
    /// sandbox left, or finishes.
    fn advance(&mut self, executor: &mut Executor) {
        while !self.done && self.awaiting.is_none() && self.recv_op.is_none() {
            if self.reading && !self.ended {
                // (armed after the frame before was taken, mostly right
                // after this VM's own send: the socket is empty)
                match executor.recv_msg_polled(
                    &self.control,
                    OpBuffer::Span(self.buffer.clone()),
                    crate::ipc::MAX_FDS,
                    0,
                ) {
                    Ok(id) => self.recv_op = Some(id),
                    Err(e) => {
                        tracing::debug!(error = %e, "sandbox frame read not armed; its channel closes");
                        self.reading = false;
                    }
                }
                return;
            }
            if self.reading && self.ended {
                self.read_left_over();
                continue;
            }
            if self.ended {
                self.finish();
            }
            // Not reading, still running: the status poll ends it.
            return;
        }
    }

    /// Once the sandbox ended: reads one frame it left in the socket
    /// without waiting (`recv_control`, the thread relay's read), or stops
    /// reading when there is none.
    fn read_left_over(&mut self) {
        let Some(handle) = &self.handle else {
            self.reading = false;
            return;
        };
        let readable = luring_sandbox::sys::poll_one(handle.control().as_raw_fd(), libc::POLLIN, 0)
            .map(|revents| revents & libc::POLLIN != 0)
            .unwrap_or(false);
        if !readable {
            self.reading = false;
            return;
        }
        let mut buf = vec![0u8; crate::ipc::MAX_FRAME_BYTES];
        match handle.recv_control(&mut buf, crate::ipc::MAX_FDS) {
            Ok(frame) if frame.len == 0 => self.reading = false,
            Ok(frame) => {
                let inbox = self.spawner.as_ref().map(|a| &a.mailbox);
                let from = frame_from_sandbox(&buf[..frame.len], frame.fds, inbox, &self.routes);
                self.received(from);
            }
            Err(e) => self.reject(&e.to_string()),
        }
    }

    fn completed(&mut self, executor: &mut Executor, id: OpId, result: i32, hand: &mut HandOver) {
        if self.poll_op == Some(id) {
            self.poll_op = None;
            if result < 0 && !self.poll_failed {
                // Not an end: look again, once (an error that repeats
                // would have this VM turn for nothing).
                tracing::debug!(errno = -result, "poll of a sandbox's status failed");
                self.poll_failed = true;
                if let Ok(id) = executor.poll(&self.status, libc::POLLIN as u32) {
                    self.poll_op = Some(id);
                    return;
                }
            }
            // Readable (or the poll failed twice: `finish` waits a bounded
            // time, then reports it lost and the handle's drop kills it).
            self.ended = true;
            if let Some(recv) = self.recv_op {
                // Its completion comes (a frame that beat the cancel, or
                // ECANCELED); then what is left is read without waiting.
                if let Err(e) = executor.cancel(recv) {
                    tracing::debug!(error = %e, "cancelling a sandbox frame read failed");
                }
            }
        } else if self.recv_op == Some(id) {
            self.recv_op = None;
            // A frame (or the end) from the sandbox: its next one is likely
            // microseconds away.
            executor.note_traffic();
            let output = executor.take_socket_output(id);
            self.frame_read(result, output, hand);
        }
        self.advance(executor);
    }

    /// A `RECVMSG` completed with `result` and `output`.
    fn frame_read(&mut self, result: i32, output: Option<SocketOutput>, hand: &mut HandOver) {
        if result == -libc::ECANCELED {
            // Cancelled because the sandbox ended: nothing was read.
            return;
        }
        if result < 0 {
            let e = std::io::Error::from_raw_os_error(-result);
            return self.reject(&format!("control socket: {e}"));
        }
        let Some(SocketOutput::Received {
            fds,
            flags,
            fds_truncated,
            control_messages,
            foreign_control,
            ..
        }) = output
        else {
            return self.reject("a frame read left no output");
        };
        // On every rejection below `fds` is dropped: all closed.
        if flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 || fds_truncated {
            return self.reject(&format!(
                "truncated frame or too many descriptors (at most {})",
                crate::ipc::MAX_FDS
            ));
        }
        if foreign_control || control_messages > 1 {
            return self.reject("unexpected control message");
        }
        let len = result as usize;
        if len == 0 {
            // EOF, or an empty datagram (never a valid frame).
            self.reading = false;
            return;
        }
        let inbox = self.spawner.as_ref().map(|a| &a.mailbox);
        let routes = &self.routes;
        let decoded = self.buffer.with_bytes(|bytes| match bytes.get(..len) {
            Some(packet) => frame_from_sandbox(packet, fds, inbox, routes),
            None => Err("frame longer than the buffer".into()),
        });
        match decoded {
            // To the spawner: maybe straight to its waiting fiber.
            Ok(FromSandbox::Message(msg, None)) => {
                let Some(spawner) = &self.spawner else {
                    return;
                };
                match hand.offer(msg, &spawner.mailbox) {
                    Ok(()) => {
                        self.next_id += 1;
                        self.awaiting = Some(self.next_id);
                        self.handed = true;
                    }
                    Err(msg) => self.post(msg, None),
                }
            }
            other => self.received(other),
        }
    }

    /// Handles a frame read from the sandbox.
    fn received(&mut self, from: Result<FromSandbox, String>) {
        match from {
            Ok(FromSandbox::Message(msg, to)) => self.post(msg, to),
            Ok(FromSandbox::End(reason)) => {
                // The runtime's last write: nothing follows it.
                self.end = Some(reason);
                self.reading = false;
            }
            Err(reason) => self.reject(&reason),
        }
    }

    fn reject(&mut self, reason: &str) {
        tracing::debug!(%reason, "sandbox frame rejected; its channel closes");
        self.reading = false;
    }

    /// Posts a frame's message to the spawner's inbox, or to `to`, another
    /// route's actor; its receipt lets the next frame be read. (An inbox
    /// that closed drops it: its VM is ending, or that actor ended.)
    fn post(&mut self, msg: Message, to: Option<ActorAddress>) {
        let Some(spawner) = &self.spawner else {
            return;
        };
        if to.is_some() {
            // That actor may run on another thread: its receipt must wake
            // this VM (the spawner's own receipts come while it runs).
            if let Some(signal) = spawner.mailbox.signal() {
                self.receipts.set_signal(signal.clone());
            }
        }
        self.next_id += 1;
        let env = Envelope {
            msg,
            sender: Some(self.receipts.clone()),
            send_id: self.next_id,
        };
        let target = to.as_ref().map_or(&spawner.mailbox, |a| &a.mailbox);
        if target.post(env).is_ok() {
            self.awaiting = Some(self.next_id);
        }
    }

    /// The sandbox ended and everything it sent was taken: reads its status,
    /// drops the host's reference to its ring and tells the monitor.
    fn finish(&mut self) {
        let status = match self.handle.take() {
            // Known once the status fd is readable; bounded all the same:
            // this runs on the VM's thread.
            Some(mut handle) => match handle.wait_timeout(1000) {
                Ok(Some(status)) => status,
                _ => ExitStatus::Lost,
            },
            None => ExitStatus::Lost,
        };
        if let Some(ring) = &self.ring {
            lock_ring(ring).take();
        }
        // Its routes' actors stop counting it as a sender.
        self.routes.end();
        if let Some(monitor) = self.monitor.take() {
            let _ = monitor.mailbox.post(Envelope {
                msg: sandbox_notice(status, self.end),
                sender: None,
                send_id: 0,
            });
        }
        self.spawner = None;
        self.done = true;
    }
}

impl Drop for RingRelay {
    fn drop(&mut self) {
        // With a signal (`post` to another route) a receipt holds a
        // reference to its mailbox until taken: none is kept from now on.
        self.receipts.close();
        let Some(handle) = self.handle.take() else {
            return;
        };
        // A supervised sandbox was killed with its VM (`SandboxKiller`);
        // dropping the handle makes sure. A detached one goes on, served by
        // a thread until it ends or the process is over.
        if self.supervised.get() || self.process.is_over() {
            return;
        }
        let Some(spawner) = self.spawner.take() else {
            return;
        };
        if let Err(e) = serve_sandbox(
            self.process.clone(),
            handle,
            spawner,
            None,
            self.ring.take(),
            self.routes.clone(),
        ) {
            tracing::warn!(error = %e, "no thread to serve a detached sandbox; it is killed");
        }
    }
}
