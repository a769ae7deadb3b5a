//! Multishot receives of stream sockets into a provided buffer ring
//! (`IORING_OP_RECV` with `IORING_RECV_MULTISHOT`, Linux 6.0; the ring of
//! buffers `IORING_REGISTER_PBUF_RING`, 5.19).
//!
//! Invariants:
//! - A socket that receives this way has one [`RecvStream`], shared (`Rc`)
//!   by the socket's fast handle (src/modules/fast_io.rs) and by the slot
//!   of its armed multishot op. The bytes the kernel moved into provided
//!   buffers belong to that stream: when a CQE is dispatched (in CQE
//!   order, the kernel's order for one socket) its bytes go to the buffer
//!   of the reader waiting for it (`target`, set by the read that found
//!   the queue empty, so nothing queued is skipped; the completion then
//!   carries the count) and the rest, or all without a target, to the
//!   queue's end; reads take from the queue's front. Nothing is dropped
//!   but with the stream itself (the socket closed, or both handle and op
//!   gone).
//! - Delivery: each CQE takes the target (its completion wakes the reader
//!   whatever it carries). A CQE that goes on (`IORING_CQE_F_MORE`) and
//!   finds no target wakes nobody and makes no completion: nobody waits
//!   for it but a fiber quiescing the stream (lua/io_object.lua), and
//!   that one cancelled the op and waits for its last CQE, which always
//!   makes one. A delivery whose completion was never seen by
//!   its reader (it left, interrupted, while the completion waited in the
//!   stash) is taken back by `unwait`: the bytes return to the queue's
//!   front and that completion says [`STREAM_RETRY`].
//! - Every buffer a CQE names is handed back to the kernel in the same
//!   dispatch, after its bytes were copied out: buffers are never held
//!   between turns, so one slow reader cannot starve the ring.
//! - At most one multishot op is armed per stream (`armed`); it ends with
//!   its last CQE (no `IORING_CQE_F_MORE`): `ENOBUFS` (the ring ran dry)
//!   and `ECANCELED` end it silently (the next read re-arms), 0 (EOF) and
//!   other errors are kept in `end` and reach the reader after the bytes
//!   queued before them.
//! - Flow control: once the queue holds [`QUEUE_CAP`] bytes or more, the
//!   armed op is cancelled (the kernel keeps the rest in the socket and
//!   the peer's window shrinks, as with plain receives); the next read
//!   that finds the queue empty re-arms it.
//! - The buffer ring is made on the first multishot receive of the
//!   executor and lives as long as the ring: its memory is freed only
//!   after the ring was dropped (field order of `Executor`) or, when the
//!   executor is leaked, leaked with it. A ring that cannot have one (a
//!   sandbox's restricted ring, an old kernel) never tries again; its
//!   sockets keep plain receives.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use io_uring::types::BufRingEntry;
use io_uring::{cqueue, opcode};

use super::ops::{OpFd, OpId, OpSlot};
use super::{on_target, Executor};
use crate::modules::byte_span::SpanRef;

/// The buffer group id of the executor's one buffer ring.
const BUF_GROUP: u16 = 0;
/// Buffers in the ring (a power of two): more than the connections that
/// usually get bytes in one turn of a busy server (the echo bench: 50).
pub(crate) const BUF_COUNT: usize = 64;
/// Bytes per buffer: a receive takes at most this much per CQE.
pub(crate) const BUF_SIZE: usize = 2048;
/// Queued bytes at which a stream stops taking more (see "Flow control").
pub(crate) const QUEUE_CAP: usize = 64 * 1024;
/// A queue that emptied with more capacity than this gives it back.
const SHRINK_ABOVE: usize = 4 * BUF_SIZE;

/// What a read of a [`RecvStream`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamRead {
    /// Bytes copied into the reader's buffer (0 only for an empty buffer
    /// or at EOF: see `Ended`).
    Bytes(usize),
    /// The stream ended: 0 (EOF) or a negative errno, reported once.
    Ended(i32),
    /// Nothing queued: wait for the next CQE of this op (armed now or
    /// before).
    Wait(OpId),
}

/// Bytes received and not read yet, `buf[head..]`, read from the front.
/// A vector and a start index rather than a `VecDeque<u8>`: one copy in,
/// one copy out (the deque's `extend` and `drain` cost ~60 instructions
/// per echoed message more; docs/performance.md "echocut").
#[derive(Default)]
pub(crate) struct ByteQueue {
    buf: Vec<u8>,
    head: usize,
}

impl ByteQueue {
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.head == self.buf.len()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The queued bytes, oldest first.
    pub(crate) fn front(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    /// Appends `bytes`. The bytes already taken are dropped first when
    /// the vector would have to grow: its capacity stays within about
    /// twice what is queued, however long the queue is never emptied.
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.head > 0 && self.buf.len() + bytes.len() > self.buf.capacity() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Drops the first `n` bytes (at most `len()`).
    pub(crate) fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.buf.len());
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
    }

    /// Puts `bytes` back before the oldest queued byte.
    pub(crate) fn push_front(&mut self, bytes: &[u8]) {
        if bytes.len() <= self.head {
            self.head -= bytes.len();
            self.buf[self.head..self.head + bytes.len()].copy_from_slice(bytes);
        } else {
            let mut buf = Vec::with_capacity(bytes.len() + self.len());
            buf.extend_from_slice(bytes);
            buf.extend_from_slice(self.front());
            self.buf = buf;
            self.head = 0;
        }
    }
}

#[derive(Default)]
struct StreamState {
    queue: ByteQueue,
    /// The armed multishot op.
    armed: Option<OpId>,
    /// EOF (0) or an error that ended the last op, after the queued bytes.
    end: Option<i32>,
    /// Its socket object is gone (`orphan`): the armed op is cancelled at
    /// its next CQE, nothing more is queued.
    orphaned: bool,
    /// The buffer of the fiber waiting for the op's next CQE (set by the
    /// read that found nothing): that CQE's bytes, or the end, go straight
    /// there, and its completion carries the count (see "Delivery").
    target: Option<SpanRef>,
    /// What the last CQE put in the target's buffer, until the next read:
    /// taken back if its completion was never delivered (`unwait`).
    handed: Option<(i32, SpanRef)>,
}

/// The completion result of a multishot receive's CQE that delivered
/// nothing to a waiting reader: read again.
pub const STREAM_RETRY: i32 = -libc::EAGAIN;

/// A socket's multishot receive state (see the invariants).
#[derive(Default)]
pub struct RecvStream {
    state: RefCell<StreamState>,
}

impl RecvStream {
    /// Bytes queued and not read yet.
    pub fn buffered(&self) -> usize {
        self.state.borrow().queue.len()
    }

    /// The armed op, if any.
    pub fn armed(&self) -> Option<OpId> {
        self.state.borrow().armed
    }

    /// Its socket object let go of it (closed or collected): the queued
    /// bytes are dropped (as the kernel drops unread bytes at close), and
    /// the armed op, if the caller could not cancel it, is cancelled at its
    /// next CQE.
    pub fn orphan(&self) {
        let mut st = self.state.borrow_mut();
        st.orphaned = true;
        st.queue = ByteQueue::default();
    }

    /// Copies up to `span.len()` queued bytes into `span`; without bytes,
    /// the end the last op reported (taken once), else `None`.
    #[inline]
    pub fn take_into(&self, span: &mut SpanRef) -> Option<StreamRead> {
        self.copy_into(span, false)
    }

    /// [`Executor::read_stream`] where no op need be armed: queued bytes,
    /// the end, or (an op armed) `span` made its target; `None` when the
    /// op must be armed. Needs no executor.
    #[inline]
    pub fn read_armed(&self, span: &mut SpanRef) -> Option<StreamRead> {
        if let Some(read) = self.take_into(span) {
            return Some(read);
        }
        let mut st = self.state.borrow_mut();
        st.handed = None;
        let id = st.armed?;
        st.target = Some(span.clone());
        Some(StreamRead::Wait(id))
    }

    /// Copies up to `span.len()` queued bytes into `span`, taking them
    /// unless `peek` (then the end stays too).
    #[inline]
    pub fn copy_into(&self, span: &mut SpanRef, peek: bool) -> Option<StreamRead> {
        let mut st = self.state.borrow_mut();
        if span.is_empty() {
            return Some(StreamRead::Bytes(0));
        }
        if st.queue.is_empty() {
            if peek {
                return st.end.map(StreamRead::Ended);
            }
            return st.end.take().map(StreamRead::Ended);
        }
        let front = st.queue.front();
        let n = span.len().min(front.len());
        let (ptr, _) = span.raw_parts();
        // SAFETY: `ptr` points at `span.len() >= n` writable bytes of the
        // span's live storage; the queue is Rust memory that cannot
        // overlap it.
        unsafe { std::ptr::copy_nonoverlapping(front.as_ptr(), ptr, n) };
        if !peek {
            st.queue.consume(n);
            // A burst's capacity is not kept by an idle connection.
            if st.queue.is_empty() && st.queue.capacity() > SHRINK_ABOVE {
                st.queue = ByteQueue::default();
            }
        }
        Some(StreamRead::Bytes(n))
    }
}

/// The executor's provided buffers: a ring of [`BUF_COUNT`] entries (its
/// own page-aligned allocation, as the kernel wants) over as many buffers
/// of [`BUF_SIZE`] bytes.
pub(crate) struct BufRing {
    entries: *mut BufRingEntry,
    bufs: Box<[u8]>,
    tail: u16,
}

fn entries_layout() -> std::alloc::Layout {
    std::alloc::Layout::from_size_align(BUF_COUNT * std::mem::size_of::<BufRingEntry>(), 4096)
        .expect("a valid layout")
}

impl BufRing {
    /// Registers a new buffer ring on `ring` (group [`BUF_GROUP`]).
    fn register(ring: &io_uring::IoUring) -> io::Result<BufRing> {
        // SAFETY: a non-zero size.
        let entries: *mut BufRingEntry =
            unsafe { std::alloc::alloc_zeroed(entries_layout()) }.cast();
        if entries.is_null() {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        let mut br = BufRing {
            entries,
            // Untouched pages of a large zeroed allocation cost no RSS
            // until the kernel writes them.
            bufs: vec![0u8; BUF_COUNT * BUF_SIZE].into_boxed_slice(),
            tail: 0,
        };
        for bid in 0..BUF_COUNT {
            br.give(bid as u16);
        }
        // SAFETY: `entries` holds BUF_COUNT entries; it and the buffers
        // live in `br`, which the executor keeps until its ring is gone.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries as u64,
                BUF_COUNT as u16,
                BUF_GROUP,
                0,
            )
        }?;
        Ok(br)
    }

    /// Hands buffer `bid` (back) to the kernel.
    fn give(&mut self, bid: u16) {
        let bid = usize::from(bid) & (BUF_COUNT - 1);
        // SAFETY: the index is masked into the ring; the entry's buffer
        // lies inside `bufs`; the tail is published with release ordering
        // after the entry was written, as the kernel reads it.
        unsafe {
            let e = &mut *self.entries.add(usize::from(self.tail) & (BUF_COUNT - 1));
            e.set_addr(self.bufs.as_ptr().add(bid * BUF_SIZE) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid as u16);
            self.tail = self.tail.wrapping_add(1);
            let tail = BufRingEntry::tail(self.entries) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    /// The first `len` bytes of buffer `bid`.
    fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let start = (usize::from(bid) & (BUF_COUNT - 1)) * BUF_SIZE;
        &self.bufs[start..start + len.min(BUF_SIZE)]
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with this layout; the ring that
        // read it is gone (see the invariants).
        unsafe { std::alloc::dealloc(self.entries.cast(), entries_layout()) };
    }
}

/// Whether the executor has its buffer ring.
#[derive(Default)]
pub(crate) enum BufRingState {
    #[default]
    Untried,
    Ready(BufRing),
    Unavailable,
}

impl Executor {
    /// Reads `stream` into `span`: queued bytes first, then the end the
    /// last op reported; with neither, arms the multishot receive on `fd`
    /// unless one is armed, and says which op to wait for. `Ok(None)`:
    /// this executor cannot receive that way (a restricted ring, a kernel
    /// without buffer rings): the caller takes a plain receive, and will
    /// every time.
    pub fn read_stream(
        &mut self,
        fd: &OpFd,
        stream: &Rc<RecvStream>,
        span: &mut SpanRef,
    ) -> io::Result<Option<StreamRead>> {
        if let Some(read) = stream.read_armed(span) {
            return Ok(Some(read));
        }
        if !self.has_buf_ring()? {
            return Ok(None);
        }
        // SAFETY: the SQE names the slot's fd and no memory: the kernel
        // picks a buffer of the registered ring, which lives as long as
        // the ring (see the invariants).
        let id = unsafe {
            self.submit(
                OpSlot::recv_stream(Rc::clone(stream)).on_target(fd),
                |slot| on_target!(slot, |t| opcode::RecvMulti::new(t, BUF_GROUP).build()),
            )
        }?;
        let mut st = stream.state.borrow_mut();
        st.armed = Some(id);
        st.target = Some(span.clone());
        Ok(Some(StreamRead::Wait(id)))
    }

    /// Whether multishot receives can run here (the buffer ring is made on
    /// the first call).
    pub fn has_buf_ring(&mut self) -> io::Result<bool> {
        match self.buf_ring {
            BufRingState::Ready(_) => return Ok(true),
            BufRingState::Unavailable => return Ok(false),
            BufRingState::Untried => {}
        }
        if self.is_fixed_only() {
            // A sandbox's ring: its restrictions would allow a buffer
            // ring, but receive streams were not tested there; plain
            // receives (nothing is widened either way).
            self.buf_ring = BufRingState::Unavailable;
            return Ok(false);
        }
        let ring = self.ring()?;
        match BufRing::register(ring) {
            Ok(br) => {
                self.buf_ring = BufRingState::Ready(br);
                Ok(true)
            }
            Err(e) => {
                tracing::debug!(error = %e, "executor: no buffer ring; plain receives");
                self.buf_ring = BufRingState::Unavailable;
                Ok(false)
            }
        }
    }

    /// The reader waiting for op `id` of `stream` left (interrupted): a
    /// delivery to its buffer whose completion still waits in the stash
    /// is taken back (bytes to the queue's front, or the end kept), and
    /// that completion says "read again" instead.
    pub fn unwait(&mut self, stream: &RecvStream, id: OpId) {
        let mut st = stream.state.borrow_mut();
        st.target = None;
        let Some((value, span)) = st.handed.take() else {
            return;
        };
        let Some(c) = self
            .stash
            .iter_mut()
            .find(|c| c.id == id && c.result == value)
        else {
            return;
        };
        c.result = STREAM_RETRY;
        if value > 0 {
            span.with_bytes(|b| st.queue.push_front(&b[..value as usize]));
        } else {
            st.end = Some(value);
        }
    }

    /// A CQE of a multishot receive (see the invariants): its bytes go to
    /// the waiting reader's buffer or join the queue, its buffer goes back
    /// to the kernel. Returns the result its completion carries: what went
    /// to the reader (bytes, 0 at EOF, an error), `-ECANCELED` for a
    /// cancelled op, else [`STREAM_RETRY`]; `None` (no completion) for a
    /// CQE that goes on and found no reader waiting (see "Delivery").
    pub(crate) fn stream_cqe(
        &mut self,
        stream: &RecvStream,
        result: i32,
        flags: u32,
        last: bool,
    ) -> Option<i32> {
        let mut st = stream.state.borrow_mut();
        // Whatever this CQE is, it wakes the reader: it reads again or
        // takes what came.
        let mut target = st.target.take();
        let wakes = last || target.is_some();
        let mut out = STREAM_RETRY;
        if let Some(bid) = cqueue::buffer_select(flags) {
            if let BufRingState::Ready(br) = &mut self.buf_ring {
                if result > 0 && !st.orphaned {
                    let data = br.buffer(bid, result as usize);
                    match target.take() {
                        Some(mut span) => {
                            let n = data.len().min(span.len());
                            let (ptr, _) = span.raw_parts();
                            // SAFETY: `ptr` points at `span.len() >= n`
                            // writable bytes of live storage; `data` is
                            // the ring's buffer, which it cannot overlap.
                            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, n) };
                            if n < data.len() {
                                st.queue.extend(&data[n..]);
                            }
                            out = n as i32;
                            st.handed = Some((out, span));
                        }
                        None => st.queue.extend(data),
                    }
                }
                br.give(bid);
            }
        }
        if last {
            st.armed = None;
            if result == -libc::ECANCELED {
                out = result;
            } else if result <= 0 && result != -libc::ENOBUFS {
                match target.take() {
                    Some(span) => {
                        out = result;
                        st.handed = Some((result, span));
                    }
                    None => st.end = Some(result),
                }
            }
        } else if st.queue.len() >= QUEUE_CAP || st.orphaned {
            if let Some(id) = st.armed {
                drop(st);
                if let Err(e) = self.cancel(id) {
                    tracing::debug!(error = %e, "executor: could not pause a multishot receive");
                }
                return wakes.then_some(out);
            }
        }
        wakes.then_some(out)
    }
}
