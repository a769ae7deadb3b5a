//! Operation slots: what an in-flight io_uring operation owns.
//!
//! Invariants:
//! - A slot's resources (buffers, timespecs, paths, fds) stay at a stable
//!   address and alive from submission until the slot is removed, which
//!   happens only when its completion is reaped (or, on executor drop, after
//!   every completion arrived).
//! - An op never names a bare fd number: its slot holds an [`OpFd`] (a
//!   reference to an owned or shared fd, or one of the process's standard streams), so
//!   the number cannot be closed and reused while the kernel may still act on
//!   it.
//! - Ids are unique for the table's life: a slot's generation grows with
//!   every use, and a slot whose generation reached [`MAX_GENERATION`] is
//!   retired (never reused), so no id is ever issued twice and a stale id
//!   held by Lua never names a later op. Ids fit in 53 bits (exact as Lua
//!   numbers): 32 bits of index, 21 of generation.

use std::ffi::CString;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;

use io_uring::types::Timespec;

use crate::modules::byte_span::SpanRef;

/// Identifies one submitted operation: slot index plus generation, packed so
/// that it survives a round trip through a Lua number (< 2^53).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId {
    index: u32,
    generation: u32,
}

const GENERATION_BITS: u32 = 21;
/// The last generation a slot is used with before it is retired.
pub(crate) const MAX_GENERATION: u32 = (1 << GENERATION_BITS) - 1;

impl OpId {
    pub fn to_user_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    /// The id packed in `data`, or `None` for values no op id can have
    /// (generation 0 or beyond 21 bits: reserved tags, forged numbers).
    pub fn from_user_data(data: u64) -> Option<Self> {
        let generation = data >> 32;
        if generation == 0 || generation > u64::from(MAX_GENERATION) {
            return None;
        }
        Some(Self {
            index: data as u32,
            generation: generation as u32,
        })
    }

    /// The id as a Lua number (exact: fewer than 54 bits are used).
    /// Converted as an `i64` (the id never reaches bit 63): x86-64 turns
    /// a signed conversion into one instruction, an unsigned one into a
    /// branch and several (this runs for every op and completion).
    #[inline(always)]
    pub fn to_f64(self) -> f64 {
        self.to_user_data() as i64 as f64
    }

    pub fn from_f64(n: f64) -> Option<Self> {
        if !(n >= 0.0 && n < (1u64 << 53) as f64) || n.fract() != 0.0 {
            return None;
        }
        Self::from_user_data(n as u64)
    }
}

/// Memory an operation reads from or writes into.
pub enum OpBuffer {
    /// A byte_span: shared with Lua, whose storage never moves or shrinks.
    Span(SpanRef),
    /// Bytes copied out of a Lua string for a write.
    Owned(Box<[u8]>),
}

impl OpBuffer {
    fn len(&self) -> usize {
        match self {
            OpBuffer::Span(span) => span.len(),
            OpBuffer::Owned(bytes) => bytes.len(),
        }
    }
}

/// The fd an op acts on, kept alive by the op's slot until its completion.
#[derive(Clone, Debug)]
pub enum OpFd {
    /// An fd the runtime owns; closing the last reference closes it, which
    /// cannot happen while an op holds a clone.
    Owned(Rc<OwnedFd>),
    /// An fd that VMs of this process share and only read through (an
    /// import root): one fd for any number of actors, so spawning costs
    /// no descriptor. It closes when the last VM and op drop it; `close`
    /// only drops the caller's reference.
    Shared(Arc<OwnedFd>),
    /// fd 0, 1 or 2: the process's standard streams, borrowed for the
    /// program's life (the runtime never closes them). A fixed-only
    /// executor maps them to their fixed slots instead (`FixedStdio`).
    Std(StdStream),
    /// A slot of the ring's fixed-file table (a sandboxed actor's
    /// capabilities live there). The kernel takes its own reference to the
    /// slot's file when an op is issued, so replacing or clearing the slot
    /// meanwhile cannot free the file under the op.
    Fixed(u32),
    /// A slot of a sandboxed ring's table that this process filled and
    /// owns (a path it opened, a socket it made): the slot is cleared when
    /// the last reference (the object's, or an op's) goes.
    Slot(Rc<crate::actor::sandboxed::OwnedSlot>),
    /// A slot of a sandboxed ring's table holding a capability the host
    /// installed: like `Fixed`, but the slot is cleared when the last
    /// reference (the `file_descriptor`, the I/O object, an op in flight)
    /// goes.
    Granted(Rc<GrantedSlot>),
}

/// Ownership of one slot of this process's fixed-file table (a capability
/// the host sent a sandboxed VM). Dropping it clears the slot.
#[derive(Debug)]
pub struct GrantedSlot {
    /// The ring whose table holds the slot. A sandbox has one ring for its
    /// whole life (seccomp denies io_uring_setup), so this number never
    /// names another ring.
    ring_fd: RawFd,
    index: u32,
}

impl GrantedSlot {
    pub(crate) fn new(ring_fd: RawFd, index: u32) -> Self {
        GrantedSlot { ring_fd, index }
    }

    pub fn index(&self) -> u32 {
        self.index
    }
}

impl Drop for GrantedSlot {
    fn drop(&mut self) {
        if let Err(e) = crate::actor::sandboxed::slots::clear_slot(self.ring_fd, self.index) {
            tracing::debug!(slot = self.index, error = %e, "clearing a granted fixed-file slot failed");
        }
    }
}

impl OpFd {
    pub fn owned(fd: OwnedFd) -> Self {
        OpFd::Owned(Rc::new(fd))
    }

    pub(crate) fn raw(&self) -> RawFd {
        match self {
            OpFd::Owned(fd) => fd.as_raw_fd(),
            OpFd::Shared(fd) => fd.as_raw_fd(),
            OpFd::Std(s) => *s as RawFd,
            // Never used as an fd number: ops that accept a slot build
            // their SQE from `OpSlot::target`, the others are refused.
            OpFd::Fixed(_) | OpFd::Granted(_) => -1,
            // Plain calls (bind, lseek...) use the sandbox's own fd.
            OpFd::Slot(slot) => slot.raw_fd(),
        }
    }
}

/// What an SQE names: an fd number, or a slot of the fixed-file table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Fd(RawFd),
    Fixed(u32),
}

/// The process's standard streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdStream {
    In = 0,
    Out = 1,
    Err = 2,
}

enum Resource {
    None,
    Timespec(Box<Timespec>),
    Buffer(OpBuffer),
    Path(CString),
    /// openat2: the path and the `open_how` the kernel reads.
    PathHow(CString, Box<io_uring::types::OpenHow>),
    /// statx of the slot's fd (empty path, `AT_EMPTY_PATH`) into a byte_span.
    StatxInto(CString, SpanRef),
    // --- io-fs ---
    /// Two paths (renameat, linkat, symlinkat).
    Paths(CString, CString),
    // io-net: a socket op's address, msghdr and buffers (socket.rs).
    Socket(Box<super::socket::SocketResource>),
    /// A multishot receive's stream: where its CQEs' bytes go.
    RecvStream(Rc<super::recv_multi::RecvStream>),
    // --- io-fs: the blocking pool ---
    /// A blocking-pool job: the read of its eventfd fills the counter.
    Job(Box<u64>, std::sync::Arc<super::blocking::JobCell>),
    // --- io-finish: splice ---
    /// The other fd of a two-fd op (splice's input; the slot's fd is its
    /// output), and one more fd kept open (only held) until the completion.
    OtherFd {
        other: OpFd,
        _keep: Option<OpFd>,
    },
}

/// What the executor does with an op's completion besides delivering it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotKind {
    /// Delivered to the caller as is.
    Plain,
    /// A NOP standing for "let everything else run first": cancelling it
    /// needs no kernel request, and a cancelled one reports `-ECANCELED`.
    Yield,
    /// A non-negative result is a new fd that the receiver owns.
    OpensFd,
    /// Created but not submitted: a write to a standard stream queued
    /// behind earlier output (see `output.rs`).
    Deferred,
    /// The runtime's own write of buffered output; never delivered.
    Output { stream: StdStream, offset: usize },
    /// Waiting for a standard stream to accept more output (after
    /// `-EAGAIN`); its buffer is the output still to write.
    OutputPoll { stream: StdStream, offset: usize },
    /// io-fs: a blocking-pool job's eventfd read; a completed one delivers
    /// the job's output (`blocking.rs`).
    Job,
}

pub struct OpSlot {
    resource: Resource,
    /// The fd the op acts on; released when the slot is removed.
    fd: Option<OpFd>,
    /// An fd a close op hands to the kernel: forgotten (not closed again)
    /// when the close completes.
    closing_fd: Option<OwnedFd>,
    pub(crate) kind: SlotKind,
    pub(crate) cancelling: bool,
    /// Set by `on_target`: the op builds its SQE from `target`, so its fd
    /// may be a fixed slot.
    pub(crate) accepts_fixed: bool,
}

impl OpSlot {
    #[inline(always)]
    fn with(resource: Resource) -> Self {
        Self {
            resource,
            fd: None,
            closing_fd: None,
            kind: SlotKind::Plain,
            cancelling: false,
            accepts_fixed: false,
        }
    }

    pub(crate) fn bare() -> Self {
        Self::with(Resource::None)
    }

    pub(crate) fn timespec(ts: Timespec) -> Self {
        Self::with(Resource::Timespec(Box::new(ts)))
    }

    #[inline(always)]
    pub(crate) fn buffer(buf: OpBuffer) -> Self {
        Self::with(Resource::Buffer(buf))
    }

    /// `OpSlot::buffer(buf).on_target(fd)` in one value (no copy between
    /// the two steps).
    #[inline(always)]
    pub(crate) fn buffer_on_target(buf: OpBuffer, fd: &OpFd) -> Self {
        Self {
            resource: Resource::Buffer(buf),
            fd: Some(fd.clone()),
            closing_fd: None,
            kind: SlotKind::Plain,
            cancelling: false,
            accepts_fixed: true,
        }
    }

    pub(crate) fn path(path: CString) -> Self {
        Self::with(Resource::Path(path))
    }

    pub(crate) fn on_fd(mut self, fd: &OpFd) -> Self {
        self.fd = Some(fd.clone());
        self
    }

    /// Like `on_fd`, for an op whose SQE is built from [`OpSlot::target`]
    /// (so `fd` may be a fixed slot).
    #[inline(always)]
    pub(crate) fn on_target(mut self, fd: &OpFd) -> Self {
        self.fd = Some(fd.clone());
        self.accepts_fixed = true;
        self
    }

    /// For an op that builds its SQE from [`OpSlot::target`] and acts on
    /// a standard stream: puts `to(stream)` in its place (a fixed-only
    /// executor's slot for that stream). Other ops are left as they are.
    pub(crate) fn map_std(&mut self, to: impl FnOnce(StdStream) -> OpFd) {
        if let (true, Some(OpFd::Std(stream))) = (self.accepts_fixed, &self.fd) {
            self.fd = Some(to(*stream));
        }
    }

    /// The standard stream an op that builds its SQE from
    /// [`OpSlot::target`] acts on, if any (what `map_std` replaces).
    pub(crate) fn std_target(&self) -> Option<StdStream> {
        match (self.accepts_fixed, &self.fd) {
            (true, Some(OpFd::Std(stream))) => Some(*stream),
            _ => None,
        }
    }

    /// Whether the op's fd is a slot of the fixed-file table (what
    /// `target` names as `Fixed`).
    #[inline(always)]
    pub(crate) fn fd_is_fixed(&self) -> bool {
        matches!(
            &self.fd,
            Some(OpFd::Fixed(_) | OpFd::Slot(_) | OpFd::Granted(_))
        )
    }

    /// What the op's SQE names (`Fd(-1)` without an fd).
    pub(crate) fn target(&self) -> Target {
        match &self.fd {
            Some(OpFd::Fixed(slot)) => Target::Fixed(*slot),
            Some(OpFd::Slot(slot)) => Target::Fixed(slot.index()),
            Some(OpFd::Granted(slot)) => Target::Fixed(slot.index),
            _ => Target::Fd(self.raw_fd()),
        }
    }

    /// Why a fixed-only executor (a sandboxed actor's restricted ring, on
    /// which every SQE carries `IOSQE_FIXED_FILE`) cannot run this op:
    /// it names a path, an fd number outside the fixed-file table, or
    /// opens a new fd. `None` when it can.
    pub(crate) fn reaches_outside_table(&self) -> Option<&'static str> {
        if self.kind == SlotKind::OpensFd {
            return Some("it opens a new descriptor");
        }
        match &self.resource {
            Resource::Path(_) | Resource::PathHow(..) | Resource::Paths(..) => {
                return Some("it names a path");
            }
            Resource::StatxInto(..) => return Some("statx is not on the ring's allow-list"),
            Resource::Job(..) => return Some("blocking-pool jobs complete through an eventfd"),
            _ => {}
        }
        if self.closing_fd.is_some() {
            return Some("it closes an fd number");
        }
        match &self.fd {
            None | Some(OpFd::Fixed(_) | OpFd::Slot(_) | OpFd::Granted(_)) => None,
            Some(_) => Some("it names an fd outside the ring's fixed-file table"),
        }
    }

    pub(crate) fn closing(fd: OwnedFd) -> Self {
        Self {
            closing_fd: Some(fd),
            ..Self::with(Resource::None)
        }
    }

    /// openat2 relative to the slot's directory fd (see `on_fd`).
    pub(crate) fn path_how(path: CString, how: io_uring::types::OpenHow) -> Self {
        Self::with(Resource::PathHow(path, Box::new(how)))
    }

    /// statx of the slot's fd (see `on_fd`), written into `buf` (at least
    /// `size_of::<libc::statx>()` bytes, checked by the caller).
    pub(crate) fn statx_into(buf: SpanRef) -> Self {
        Self::with(Resource::StatxInto(CString::default(), buf))
    }

    /// io-fs: an op on two paths (`fs.rs`).
    pub(crate) fn paths(first: CString, second: CString) -> Self {
        Self::with(Resource::Paths(first, second))
    }

    /// io-fs: the second path of a two-path op (null otherwise).
    pub(crate) fn second_path_ptr(&self) -> *const libc::c_char {
        match &self.resource {
            Resource::Paths(_, p) => p.as_ptr(),
            _ => std::ptr::null(),
        }
    }

    /// io-fs: statx of `path` (relative to the cwd) into `buf` (at least
    /// `size_of::<libc::statx>()` bytes, checked by the caller).
    pub(crate) fn statx_path_into(path: CString, buf: SpanRef) -> Self {
        Self::with(Resource::StatxInto(path, buf))
    }

    // io-net: socket ops (socket.rs).
    pub(crate) fn socket(resource: Box<super::socket::SocketResource>) -> Self {
        Self::with(Resource::Socket(resource))
    }

    #[inline(always)]
    pub(crate) fn socket_resource(&mut self) -> Option<&mut super::socket::SocketResource> {
        match &mut self.resource {
            Resource::Socket(r) => Some(r),
            _ => None,
        }
    }

    /// io-fs: the eventfd read of a blocking-pool job (`blocking.rs`).
    pub(crate) fn recv_stream(stream: Rc<super::recv_multi::RecvStream>) -> Self {
        Self::with(Resource::RecvStream(stream))
    }

    /// The stream of a multishot receive's slot.
    #[inline(always)]
    pub(crate) fn recv_stream_of(&self) -> Option<Rc<super::recv_multi::RecvStream>> {
        match &self.resource {
            Resource::RecvStream(s) => Some(Rc::clone(s)),
            _ => None,
        }
    }

    pub(crate) fn job(cell: std::sync::Arc<super::blocking::JobCell>) -> Self {
        Self::with(Resource::Job(Box::new(0), cell))
    }

    /// The job's eventfd and the counter its read fills.
    pub(crate) fn job_read_parts(&mut self) -> (RawFd, *mut u8) {
        match &mut self.resource {
            Resource::Job(counter, cell) => (cell.eventfd(), (&mut **counter as *mut u64).cast()),
            _ => (-1, std::ptr::null_mut()),
        }
    }

    /// The job's result once its read completed.
    pub(crate) fn take_job_result(&mut self) -> Option<super::blocking::JobResult> {
        match &self.resource {
            Resource::Job(_, cell) => cell.take(),
            _ => None,
        }
    }

    /// io-finish: an op on two fds (`splice.rs`); `other` and `keep` are
    /// held like the slot's own fd until the completion.
    pub(crate) fn other_fd(other: &OpFd, keep: Option<&OpFd>) -> Self {
        Self::with(Resource::OtherFd {
            other: other.clone(),
            _keep: keep.cloned(),
        })
    }

    /// The raw number of the other fd (-1 without one).
    pub(crate) fn other_raw_fd(&self) -> RawFd {
        match &self.resource {
            Resource::OtherFd { other, .. } => other.raw(),
            _ => -1,
        }
    }

    pub(crate) fn kind(mut self, kind: SlotKind) -> Self {
        self.kind = kind;
        self
    }

    /// The raw number of the fd this slot keeps alive (-1 without one).
    pub(crate) fn raw_fd(&self) -> RawFd {
        match (&self.fd, &self.closing_fd) {
            (Some(fd), _) => fd.raw(),
            (None, Some(fd)) => fd.as_raw_fd(),
            _ => -1,
        }
    }

    /// Whether the op's completion needs nothing but delivering and the
    /// slot's removal (`Executor::dispatch`'s short path): a plain op that
    /// closes no fd and has no stream, socket output or job to finish.
    #[inline(always)]
    pub(crate) fn completes_plainly(&self) -> bool {
        self.kind == SlotKind::Plain
            && self.closing_fd.is_none()
            && !matches!(
                self.resource,
                Resource::RecvStream(_) | Resource::Socket(_) | Resource::Job(..)
            )
    }

    /// Called when the op's completion was reaped: a close op's fd number
    /// now belongs to the kernel's past, so it must not be closed again.
    pub(crate) fn completed(&mut self) {
        if let Some(fd) = self.closing_fd.take() {
            let _ = fd.into_raw_fd();
        }
    }

    pub(crate) fn path_ptr(&self) -> *const libc::c_char {
        match &self.resource {
            Resource::Path(p)
            | Resource::PathHow(p, _)
            | Resource::StatxInto(p, _)
            | Resource::Paths(p, _) => p.as_ptr(),
            _ => std::ptr::null(),
        }
    }

    pub(crate) fn open_how_ptr(&self) -> *const io_uring::types::OpenHow {
        match &self.resource {
            Resource::PathHow(_, how) => &**how,
            _ => std::ptr::null(),
        }
    }

    /// Where statx writes its result (null when this is not a statx slot).
    pub(crate) fn statx_ptr(&mut self) -> *mut io_uring::types::statx {
        match &mut self.resource {
            Resource::StatxInto(_, span) => span.raw_parts().0.cast(),
            _ => std::ptr::null_mut(),
        }
    }

    pub(crate) fn timespec_ptr(&self) -> *const Timespec {
        match &self.resource {
            Resource::Timespec(ts) => &**ts,
            _ => std::ptr::null(),
        }
    }

    pub(crate) fn buffer_len(&self) -> usize {
        match &self.resource {
            Resource::Buffer(b) => b.len(),
            _ => 0,
        }
    }

    /// Pointer and length of the owned buffer from byte `skip` on (null, 0
    /// when there is none).
    pub(crate) fn buffer_mut_ptr(&mut self, skip: usize) -> (*mut u8, u32) {
        let (ptr, len) = match &mut self.resource {
            Resource::Buffer(OpBuffer::Span(span)) => span.raw_parts(),
            Resource::Buffer(OpBuffer::Owned(bytes)) => (bytes.as_mut_ptr(), bytes.len()),
            _ => return (std::ptr::null_mut(), 0),
        };
        let skip = skip.min(len);
        // SAFETY: `skip <= len`, so the result points into (or one past the
        // end of) the same live allocation.
        let ptr = unsafe { ptr.add(skip) };
        (ptr, (len - skip).min(u32::MAX as usize) as u32)
    }
}

/// The slots of every op not yet reaped, indexed by `OpId::index`.
#[derive(Default)]
pub(crate) struct OpTable {
    /// (generation of the last id issued for this index, slot if live).
    slots: Vec<(u32, Option<OpSlot>)>,
    /// Indexes whose slot is empty and whose generation can still grow.
    free: Vec<u32>,
    live: usize,
}

impl OpTable {
    /// Stores `slot` under a new id; `None` when 2^32 indexes were retired
    /// (2^53 ops: unreachable in practice).
    #[inline(always)]
    pub fn insert(&mut self, slot: OpSlot) -> Option<(OpId, &mut OpSlot)> {
        self.insert_with(|| slot)
    }

    /// `insert` of the slot `make` returns, written straight into its
    /// entry (not made elsewhere and moved in).
    #[inline(always)]
    pub fn insert_with(&mut self, make: impl FnOnce() -> OpSlot) -> Option<(OpId, &mut OpSlot)> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots.len()).ok()?;
                self.slots.push((0, None));
                i
            }
        };
        let entry = &mut self.slots[index as usize];
        debug_assert!(entry.0 < MAX_GENERATION && entry.1.is_none());
        entry.0 += 1;
        self.live += 1;
        let id = OpId {
            index,
            generation: entry.0,
        };
        // (the entry is empty: nothing to drop)
        Some((id, entry.1.insert(make())))
    }

    pub fn get(&self, id: OpId) -> Option<&OpSlot> {
        match self.slots.get(id.index as usize) {
            Some((generation, Some(slot))) if *generation == id.generation => Some(slot),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: OpId) -> Option<&mut OpSlot> {
        match self.slots.get_mut(id.index as usize) {
            Some((generation, Some(slot))) if *generation == id.generation => Some(slot),
            _ => None,
        }
    }

    pub fn remove(&mut self, id: OpId) -> Option<OpSlot> {
        let (generation, slot) = match self.slots.get_mut(id.index as usize) {
            Some(entry) if entry.0 == id.generation && entry.1.is_some() => entry,
            _ => return None,
        };
        let slot = slot.take();
        // A slot that issued its last generation is never reused: no id
        // repeats.
        if *generation < MAX_GENERATION {
            self.free.push(id.index);
        }
        self.live -= 1;
        slot
    }

    /// `remove` that drops the slot where it is (no copy of it out).
    #[inline(always)]
    pub fn discard(&mut self, id: OpId) {
        let Some(entry) = self.slots.get_mut(id.index as usize) else {
            return;
        };
        if entry.0 != id.generation || entry.1.is_none() {
            return;
        }
        entry.1 = None;
        // A slot that issued its last generation is never reused: no id
        // repeats.
        if entry.0 < MAX_GENERATION {
            self.free.push(id.index);
        }
        self.live -= 1;
    }

    pub fn ids(&self) -> Vec<OpId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| s.is_some())
            .map(|(i, (generation, _))| OpId {
                index: i as u32,
                generation: *generation,
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Test hook: make the next id of every free slot `generation + 1`.
    #[cfg(test)]
    pub fn age_free_slots(&mut self, generation: u32) {
        for &i in &self.free {
            self.slots[i as usize].0 = generation;
        }
    }
}
