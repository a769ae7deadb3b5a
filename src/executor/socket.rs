//! Socket operations on the ring (the `ip` and `unix` modules): connect,
//! accept, send/recv and sendmsg/recvmsg.
//!
//! Invariants:
//! - Everything the kernel reads or writes for a socket op (the socket
//!   address, the `msghdr`, its `iovec` and control buffer, the data buffer)
//!   lives in one boxed [`SocketResource`] owned by the op's slot, so it
//!   stays put and alive until the completion is reaped, whatever happens to
//!   the fiber that started it. fds passed with `sendmsg` are held as
//!   [`OpFd`] clones by the slot until the completion, so their numbers
//!   cannot be closed and reused while the kernel reads them.
//! - A multishot accept's slot stays in flight while its CQEs say more
//!   will come (`IORING_CQE_F_MORE`); each CQE queues its output in order.
//! - What a completion carries beyond its result (an accepted connection's
//!   fd and peer address, a received message's sender, fds and flags) is
//!   turned into a [`SocketOutput`] when the CQE is dispatched (fds become
//!   `OwnedFd`s right there, received ones are never left as bare numbers)
//!   and waits in the executor under the op's id until
//!   [`Executor::take_socket_output`] takes it. The Lua side takes it after
//!   every wait, whether the wait returned or raised; an output nobody took
//!   is dropped (its fds closed) with the executor.
//! - `recvmsg` always uses `MSG_CMSG_CLOEXEC`, walks every control message,
//!   and when the kernel reports `MSG_CTRUNC` closes every fd that did
//!   arrive and reports the truncation instead of returning them; so it
//!   does when more fds arrived than were asked for (they fit in the
//!   control buffer's alignment padding).
//! - `send`/`sendmsg` always add `MSG_NOSIGNAL`: a peer that went away is
//!   `EPIPE`, never a signal.

use std::collections::{HashMap, HashSet, VecDeque};

use super::on_target;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use io_uring::opcode;

use super::ops::{OpBuffer, OpFd, OpId, OpSlot};
use super::Executor;

/// Most fds one control message may carry (the kernel's `SCM_MAX_FD`).
pub const MAX_FDS_PER_MESSAGE: usize = 253;

/// A socket address of any family, as the kernel reads and writes it.
#[derive(Clone, Copy)]
pub struct SockAddr {
    pub storage: libc::sockaddr_storage,
    pub len: libc::socklen_t,
}

impl std::fmt::Debug for SockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SockAddr")
            .field("family", &self.storage.ss_family)
            .field("len", &self.len)
            .finish()
    }
}

impl SockAddr {
    /// An empty address with room for any family (what accept and recvmsg
    /// fill in).
    pub fn empty() -> Self {
        Self {
            // SAFETY: sockaddr_storage is plain old data; all-zero is valid.
            storage: unsafe { std::mem::zeroed() },
            len: std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub fn family(&self) -> i32 {
        i32::from(self.storage.ss_family)
    }

    fn as_ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    fn as_mut_ptr(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }
}

/// What a socket op's slot owns (boxed: the kernel holds pointers into it).
pub(crate) struct SocketResource {
    op: SocketOpKind,
    addr: SockAddr,
    iov: libc::iovec,
    msg: libc::msghdr,
    /// Control messages; u64 keeps them aligned for `cmsghdr`.
    control: Vec<u64>,
    buffer: Option<OpBuffer>,
    /// fds a sendmsg passes, kept open until its completion.
    _passed: Vec<OpFd>,
    /// The most fds a recvmsg returns (its control buffer, rounded up to
    /// alignment, may hold one more).
    max_fds: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SocketOpKind {
    Connect,
    Accept,
    /// Multishot accept: one CQE per connection while it stays armed.
    AcceptMulti,
    SendMsg,
    RecvMsg,
}

/// The extra data of a completed socket op (see the module invariants).
#[derive(Debug)]
pub enum SocketOutput {
    /// A new connection: its fd (owned) and the peer's address.
    Accepted { fd: OwnedFd, peer: SockAddr },
    /// A received message: who sent it (`from.len == 0` when the socket is
    /// connected or the peer unnamed), the fds that came with it
    /// (close-on-exec, owned) and the `msg_flags` the kernel reported.
    /// `fds_truncated`: the kernel set `MSG_CTRUNC`; the fds that did
    /// arrive were closed and `fds` is empty.
    Received {
        from: SockAddr,
        fds: Vec<OwnedFd>,
        flags: i32,
        fds_truncated: bool,
        /// Control messages the kernel wrote, and whether one of them was
        /// not `SCM_RIGHTS` (a peer-chosen frame format may refuse both).
        control_messages: usize,
        foreign_control: bool,
    },
}

impl SocketResource {
    fn new(op: SocketOpKind, addr: SockAddr) -> Box<Self> {
        Box::new(Self {
            op,
            addr,
            iov: libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            },
            // SAFETY: msghdr is plain old data; all-zero (null pointers,
            // zero lengths) is a valid empty header.
            msg: unsafe { std::mem::zeroed() },
            control: Vec::new(),
            buffer: None,
            _passed: Vec::new(),
            max_fds: 0,
        })
    }

    /// Points `msg` at this resource's own iovec, address and control
    /// buffer; the iovec at the data buffer. Called once the resource sits
    /// in its slot (its address no longer changes).
    fn wire_msghdr(&mut self, with_name: bool) {
        let (ptr, len) = match &mut self.buffer {
            Some(OpBuffer::Span(span)) => span.raw_parts(),
            Some(OpBuffer::Owned(bytes)) => (bytes.as_mut_ptr(), bytes.len()),
            None => (std::ptr::null_mut(), 0),
        };
        self.iov = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        self.msg.msg_iov = &mut self.iov;
        self.msg.msg_iovlen = 1;
        if with_name {
            self.msg.msg_name = self.addr.as_mut_ptr().cast();
            self.msg.msg_namelen = self.addr.len;
        }
        if !self.control.is_empty() {
            self.msg.msg_control = self.control.as_mut_ptr().cast();
            self.msg.msg_controllen = self.control.len() * std::mem::size_of::<u64>();
        }
    }

    /// Builds the output of a completed op with result `result`.
    fn output(&mut self, result: i32) -> Option<SocketOutput> {
        match self.op {
            SocketOpKind::Accept | SocketOpKind::AcceptMulti if result >= 0 => {
                Some(SocketOutput::Accepted {
                    // SAFETY: the kernel just created this fd for this accept;
                    // nothing else knows it.
                    fd: unsafe { OwnedFd::from_raw_fd(result) },
                    peer: self.addr,
                })
            }
            SocketOpKind::RecvMsg if result >= 0 => {
                let (mut fds, control_messages, foreign_control) = self.received_fds();
                // More than asked for fit in the alignment padding: as
                // truncated as if the kernel had dropped them.
                let fds_truncated =
                    self.msg.msg_flags & libc::MSG_CTRUNC != 0 || fds.len() > self.max_fds;
                if fds_truncated {
                    fds.clear();
                }
                let mut from = self.addr;
                from.len = self.msg.msg_namelen;
                Some(SocketOutput::Received {
                    from,
                    fds,
                    flags: self.msg.msg_flags,
                    fds_truncated,
                    control_messages,
                    foreign_control,
                })
            }
            _ => None,
        }
    }

    /// Every `SCM_RIGHTS` fd in the control messages the kernel wrote, as
    /// owned fds (so none can leak, whatever the caller does with them),
    /// the number of control messages and whether one was not
    /// `SCM_RIGHTS`.
    fn received_fds(&mut self) -> (Vec<OwnedFd>, usize, bool) {
        let mut fds = Vec::new();
        let (mut count, mut foreign) = (0, false);
        let capacity = self.control.len() * std::mem::size_of::<u64>();
        if self.msg.msg_control.is_null() || self.msg.msg_controllen > capacity {
            return (fds, count, foreign);
        }
        // SAFETY: msg_control points at our own control buffer and the
        // kernel set msg_controllen to the bytes it wrote there (checked
        // against the capacity above); CMSG_FIRSTHDR/NXTHDR stay within
        // msg_controllen.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&self.msg) };
        while !cmsg.is_null() {
            // SAFETY: cmsg points at a complete cmsghdr inside the buffer
            // (CMSG_FIRSTHDR/NXTHDR only return such pointers).
            let header = unsafe { std::ptr::read_unaligned(cmsg) };
            count += 1;
            if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
                // SAFETY: CMSG_LEN(0) is the header size.
                let header_len = unsafe { libc::CMSG_LEN(0) } as usize;
                let data_len = header.cmsg_len.saturating_sub(header_len);
                // SAFETY: CMSG_DATA points just past this header, inside the
                // buffer; the kernel wrote cmsg_len bytes for this message.
                let data = unsafe { libc::CMSG_DATA(cmsg) };
                for i in 0..data_len / std::mem::size_of::<libc::c_int>() {
                    // SAFETY: index i is within the data_len bytes above.
                    let raw =
                        unsafe { std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i)) };
                    if raw >= 0 {
                        // SAFETY: the kernel installed this fd for us just
                        // now; nothing else owns it.
                        fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
                    }
                }
            } else {
                foreign = true;
            }
            // SAFETY: both pointers are the header and cmsg from above.
            cmsg = unsafe { libc::CMSG_NXTHDR(&self.msg, cmsg) };
        }
        (fds, count, foreign)
    }
}

/// The extra data of completed socket ops, by op id (in CQE order: a
/// multishot op queues one per CQE).
#[derive(Default)]
pub(crate) struct SocketOutputs {
    queued: HashMap<OpId, VecDeque<SocketOutput>>,
    /// Ops whose outputs nobody will take (a closed acceptor's multishot
    /// accept until its last CQE): dropped as they come.
    discarded: HashSet<OpId>,
    /// The control buffer of the last completed `recvmsg`, for the next
    /// one (a sandbox relay reads every frame with one, and allocating
    /// ~1 KiB each time showed as `malloc_consolidate` in its profile).
    spare_control: Vec<u64>,
}

impl SocketOutputs {
    /// Called for every dispatched completion: keeps what the socket op of
    /// `slot` produced, if any.
    #[inline(always)]
    pub(crate) fn completed(&mut self, id: OpId, slot: &mut OpSlot, result: i32) {
        // (inlined into the reap: most completions have no socket resource)
        if let Some(r) = slot.socket_resource() {
            self.completed_socket(id, r, result);
        }
    }

    fn completed_socket(&mut self, id: OpId, r: &mut super::socket::SocketResource, result: i32) {
        if let Some(output) = r.output(result) {
            if !self.discarded.contains(&id) {
                self.queued.entry(id).or_default().push_back(output);
            }
        }
        // A recvmsg completes once (never multishot here): its control
        // buffer, read above, is free now; the kernel is done with it.
        if r.op == SocketOpKind::RecvMsg && self.spare_control.is_empty() {
            self.spare_control = std::mem::take(&mut r.control);
            r.msg.msg_control = std::ptr::null_mut();
            r.msg.msg_controllen = 0;
        }
    }

    /// A zeroed control buffer of `words` words: the spare one when it
    /// has that size, else a new one.
    fn control_buffer(&mut self, words: usize) -> Vec<u64> {
        if words == 0 || self.spare_control.len() != words {
            return vec![0u64; words];
        }
        let mut control = std::mem::take(&mut self.spare_control);
        control.fill(0);
        control
    }

    /// The op's last CQE was dispatched.
    #[inline(always)]
    pub(crate) fn ended(&mut self, id: OpId) {
        // Almost always empty: spare every op's end a SipHash.
        if !self.discarded.is_empty() {
            self.discarded.remove(&id);
        }
    }
}

/// Bytes of control buffer for `maxfds` fds (rounded up to u64s).
fn control_words(maxfds: usize) -> usize {
    if maxfds == 0 {
        return 0;
    }
    // SAFETY: CMSG_SPACE is arithmetic.
    let bytes = unsafe { libc::CMSG_SPACE((maxfds * std::mem::size_of::<libc::c_int>()) as u32) };
    (bytes as usize).div_ceil(std::mem::size_of::<u64>())
}

impl Executor {
    /// The extra data of completed op `id` (taken once).
    pub(crate) fn take_socket_output(&mut self, id: OpId) -> Option<SocketOutput> {
        let queue = self.socket_outputs.queued.get_mut(&id)?;
        let output = queue.pop_front();
        if queue.is_empty() {
            self.socket_outputs.queued.remove(&id);
        }
        output
    }

    /// Outputs of op `id` not taken yet (a multishot accept's queue).
    pub(crate) fn socket_outputs_queued(&self, id: OpId) -> usize {
        self.socket_outputs.queued.get(&id).map_or(0, VecDeque::len)
    }

    /// Drops (closes) every output of op `id` not taken yet, and those it
    /// still produces until its last CQE.
    pub(crate) fn drop_socket_outputs(&mut self, id: OpId) {
        self.socket_outputs.queued.remove(&id);
        if self.ops.get_mut(id).is_some() {
            self.socket_outputs.discarded.insert(id);
        }
    }

    /// Whether op `id` has not finished (a multishot op stays armed).
    pub(crate) fn op_in_flight(&mut self, id: OpId) -> bool {
        self.ops.get_mut(id).is_some()
    }

    /// Multishot `accept4(fd, NULL, SOCK_CLOEXEC)`: a CQE per connection
    /// (each an [`SocketOutput::Accepted`] with an empty peer address)
    /// while it stays armed; it ends with an error CQE (or on cancel).
    pub fn accept_multi(&mut self, fd: &OpFd) -> io::Result<OpId> {
        let res = SocketResource::new(SocketOpKind::AcceptMulti, SockAddr::empty());
        // SAFETY: the SQE names the slot's fd and points at nothing.
        unsafe {
            self.submit(OpSlot::socket(res).on_target(fd), |slot| {
                on_target!(slot, |t| opcode::AcceptMulti::new(t)
                    .flags(libc::SOCK_CLOEXEC)
                    .build())
            })
        }
    }

    /// `connect(fd, addr)`.
    pub fn connect(&mut self, fd: &OpFd, addr: SockAddr) -> io::Result<OpId> {
        let res = SocketResource::new(SocketOpKind::Connect, addr);
        // SAFETY: the SQE names the slot's fd and points at the slot's own
        // boxed address.
        unsafe {
            self.submit(OpSlot::socket(res).on_target(fd), |slot| {
                let target = slot.target();
                let r = slot.socket_resource().expect("socket slot");
                on_target!(@at target, |t| opcode::Connect::new(t, r.addr.as_ptr(), r.addr.len).build())
            })
        }
    }

    /// `accept4(fd, &peer, SOCK_CLOEXEC)`; the new fd and the peer come as
    /// [`SocketOutput::Accepted`].
    pub fn accept(&mut self, fd: &OpFd) -> io::Result<OpId> {
        let res = SocketResource::new(SocketOpKind::Accept, SockAddr::empty());
        // SAFETY: the SQE names the slot's fd and points at the slot's own
        // boxed address and its length.
        unsafe {
            self.submit(OpSlot::socket(res).on_target(fd), |slot| {
                let target = slot.target();
                let r = slot.socket_resource().expect("socket slot");
                let len: *mut libc::socklen_t = &mut r.addr.len;
                on_target!(@at target, |t| opcode::Accept::new(t, r.addr.as_mut_ptr(), len)
                    .flags(libc::SOCK_CLOEXEC)
                    .build())
            })
        }
    }

    /// One-shot `IORING_OP_POLL_ADD` of `events` (`POLLIN`, `POLLOUT`,
    /// ...); completes with the events that are ready. `fd` may be a
    /// fixed slot (as for `send` and `recv`).
    pub fn poll(&mut self, fd: &OpFd, events: u32) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd and points at nothing.
        unsafe {
            self.submit(OpSlot::bare().on_target(fd), |slot| {
                on_target!(slot, |t| opcode::PollAdd::new(t, events).build())
            })
        }
    }

    /// `send(fd, buf, flags | MSG_NOSIGNAL)`.
    pub fn send(&mut self, fd: &OpFd, buf: OpBuffer, flags: i32) -> io::Result<OpId> {
        self.send_made(fd, || buf, flags)
    }

    /// `send` of a byte_span's view, cloned straight into the op's slot
    /// (the FFI path's send: no `OpBuffer` made and moved on the way).
    pub(crate) fn send_span(
        &mut self,
        fd: &OpFd,
        span: &crate::modules::byte_span::SpanRef,
        flags: i32,
    ) -> io::Result<OpId> {
        self.send_made(fd, || OpBuffer::Span(span.clone()), flags)
    }

    /// `send` of the buffer `make` returns, made inside the slot's making.
    #[inline(always)]
    fn send_made(
        &mut self,
        fd: &OpFd,
        make: impl FnOnce() -> OpBuffer,
        flags: i32,
    ) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit_with(
                || OpSlot::buffer_on_target(make(), fd),
                |slot| {
                    let (ptr, len) = slot.buffer_mut_ptr(0);
                    on_target!(slot, |t| opcode::Send::new(t, ptr, len)
                        .flags(flags | libc::MSG_NOSIGNAL)
                        .build())
                },
            )
        }
    }

    /// `recv(fd, buf, flags)`.
    pub fn recv(&mut self, fd: &OpFd, buf: OpBuffer, flags: i32) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit(OpSlot::buffer(buf).on_target(fd), |slot| {
                let (ptr, len) = slot.buffer_mut_ptr(0);
                on_target!(slot, |t| opcode::Recv::new(t, ptr, len)
                    .flags(flags)
                    .build())
            })
        }
    }

    /// `sendmsg(fd, {to, buf, SCM_RIGHTS fds}, flags | MSG_NOSIGNAL)`; `fd`
    /// may be a fixed slot, the passed `fds` are fd numbers. `fds`: at most [`MAX_FDS_PER_MESSAGE`] (else `EINVAL`).
    pub fn send_msg(
        &mut self,
        fd: &OpFd,
        buf: OpBuffer,
        to: Option<SockAddr>,
        fds: Vec<OpFd>,
        flags: i32,
    ) -> io::Result<OpId> {
        if fds.len() > MAX_FDS_PER_MESSAGE {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let with_name = to.is_some();
        let mut res =
            SocketResource::new(SocketOpKind::SendMsg, to.unwrap_or_else(SockAddr::empty));
        res.buffer = Some(buf);
        res.control = vec![0u64; control_words(fds.len())];
        // The box's contents never move: the pointers stay valid in the slot.
        res.wire_msghdr(with_name);
        if !fds.is_empty() {
            let data_len = (fds.len() * std::mem::size_of::<libc::c_int>()) as u32;
            // SAFETY: CMSG_SPACE(data_len) bytes fit in the control buffer
            // just sized for it; msg_control/msg_controllen describe it, so
            // CMSG_FIRSTHDR returns its start and CMSG_DATA a pointer with
            // room for data_len bytes.
            unsafe {
                res.msg.msg_controllen = libc::CMSG_SPACE(data_len) as usize;
                let cmsg = libc::CMSG_FIRSTHDR(&res.msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as usize;
                let data = libc::CMSG_DATA(cmsg).cast::<libc::c_int>();
                for (i, fd) in fds.iter().enumerate() {
                    std::ptr::write_unaligned(data.add(i), fd.raw());
                }
            }
        }
        res._passed = fds;
        // SAFETY: the SQE names the slot's fd and points at the slot's own
        // msghdr, whose pointers lead only into the same boxed resource
        // (wired after the box reached the slot) and its buffer; the passed
        // fds are held open by the slot.
        unsafe {
            self.submit(OpSlot::socket(res).on_target(fd), |slot| {
                let target = slot.target();
                let r = slot.socket_resource().expect("socket slot");
                on_target!(@at target, |t| opcode::SendMsg::new(t, &r.msg)
                    .flags((flags | libc::MSG_NOSIGNAL) as u32)
                    .build())
            })
        }
    }

    /// `recvmsg(fd, {from, buf, room for maxfds fds}, flags |
    /// MSG_CMSG_CLOEXEC)`; the sender, fds and flags come as
    /// [`SocketOutput::Received`]. `maxfds` at most [`MAX_FDS_PER_MESSAGE`].
    pub fn recv_msg(
        &mut self,
        fd: &OpFd,
        buf: OpBuffer,
        maxfds: usize,
        flags: i32,
    ) -> io::Result<OpId> {
        self.recv_msg_with(fd, buf, maxfds, flags, 0)
    }

    /// [`Executor::recv_msg`] armed as if the socket were empty (a
    /// sandbox's frames read by its host right after its own send: the
    /// receive the kernel tries before arming its poll would fail,
    /// `Executor::poll_first_ioprio`). Same result.
    pub fn recv_msg_polled(
        &mut self,
        fd: &OpFd,
        buf: OpBuffer,
        maxfds: usize,
        flags: i32,
    ) -> io::Result<OpId> {
        let ioprio = self.poll_first_ioprio();
        self.recv_msg_with(fd, buf, maxfds, flags, ioprio)
    }

    fn recv_msg_with(
        &mut self,
        fd: &OpFd,
        buf: OpBuffer,
        maxfds: usize,
        flags: i32,
        ioprio: u16,
    ) -> io::Result<OpId> {
        if maxfds > MAX_FDS_PER_MESSAGE {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut res = SocketResource::new(SocketOpKind::RecvMsg, SockAddr::empty());
        res.buffer = Some(buf);
        res.control = self.socket_outputs.control_buffer(control_words(maxfds));
        res.max_fds = maxfds;
        // The box's contents never move: the pointers stay valid in the slot.
        res.wire_msghdr(true);
        // SAFETY: the SQE names the slot's fd and points at the slot's own
        // msghdr, whose pointers lead only into the same boxed resource and
        // its buffer.
        unsafe {
            self.submit(OpSlot::socket(res).on_target(fd), |slot| {
                let target = slot.target();
                let r = slot.socket_resource().expect("socket slot");
                on_target!(@at target, |t| opcode::RecvMsg::new(t, &mut r.msg)
                    .flags((flags | libc::MSG_CMSG_CLOEXEC) as u32)
                    .ioprio(ioprio)
                    .build())
            })
        }
    }
}
