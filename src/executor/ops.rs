//! Operation slots: what an in-flight io_uring operation owns.
//!
//! Invariants: a slot's resources stay at a stable address from submission
//! until the slot is removed, which happens only when its completion is
//! reaped (or, on executor drop, after every completion arrived). Ids carry a
//! generation so a stale id never names a reused slot.

use io_uring::types::Timespec;

use crate::modules::byte_span::SpanRef;

/// Identifies one submitted operation: slot index plus generation, packed so
/// that it survives a round trip through a Lua number (< 2^53).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OpId {
    index: u32,
    generation: u32,
}

const GENERATION_BITS: u32 = 20;
const GENERATION_MASK: u32 = (1 << GENERATION_BITS) - 1;

impl OpId {
    pub fn to_user_data(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    pub fn from_user_data(data: u64) -> Self {
        Self {
            index: data as u32,
            generation: ((data >> 32) as u32) & GENERATION_MASK,
        }
    }

    /// The id as a Lua number (exact: fewer than 53 bits are used).
    pub fn to_f64(self) -> f64 {
        self.to_user_data() as f64
    }

    pub fn from_f64(n: f64) -> Option<Self> {
        if !(n >= 0.0 && n < (1u64 << 53) as f64) || n.fract() != 0.0 {
            return None;
        }
        Some(Self::from_user_data(n as u64))
    }
}

/// Memory an operation reads from or writes into.
pub enum OpBuffer {
    /// A byte_span: shared with Lua, whose storage never moves or shrinks.
    Span(SpanRef),
    /// Bytes copied out of a Lua string for a write.
    Owned(Box<[u8]>),
}

enum Resource {
    None,
    Timespec(Box<Timespec>),
    Buffer(OpBuffer),
    Path(std::ffi::CString),
    /// openat2: the path and the `open_how` the kernel reads.
    PathHow(std::ffi::CString, Box<io_uring::types::OpenHow>),
    /// statx of an fd (empty path, `AT_EMPTY_PATH`) into a byte_span.
    StatxInto(std::ffi::CString, SpanRef),
}

pub struct OpSlot {
    resource: Resource,
    cancelling: bool,
    /// A non-negative result of this op is a new fd that the receiver owns;
    /// if nobody will receive it (executor closing) the executor closes it.
    yields_fd: bool,
}

impl OpSlot {
    fn with(resource: Resource) -> Self {
        Self {
            resource,
            cancelling: false,
            yields_fd: false,
        }
    }

    pub fn bare() -> Self {
        Self::with(Resource::None)
    }

    pub fn timespec(ts: Timespec) -> Self {
        Self::with(Resource::Timespec(Box::new(ts)))
    }

    pub fn buffer(buf: OpBuffer) -> Self {
        Self::with(Resource::Buffer(buf))
    }

    /// An op on a path that returns a new fd (openat).
    pub fn path_opening_fd(path: std::ffi::CString) -> Self {
        Self {
            yields_fd: true,
            ..Self::with(Resource::Path(path))
        }
    }

    /// openat2 relative to a directory fd; returns a new fd.
    pub fn path_how_opening_fd(path: std::ffi::CString, how: io_uring::types::OpenHow) -> Self {
        Self {
            yields_fd: true,
            ..Self::with(Resource::PathHow(path, Box::new(how)))
        }
    }

    /// statx of an fd, written into `buf` (at least `size_of::<libc::statx>()`
    /// bytes, checked by the caller).
    pub fn statx_into(buf: SpanRef) -> Self {
        Self::with(Resource::StatxInto(std::ffi::CString::default(), buf))
    }

    pub(super) fn yields_fd(&self) -> bool {
        self.yields_fd
    }

    pub(super) fn path_ptr(&self) -> *const libc::c_char {
        match &self.resource {
            Resource::Path(p) | Resource::PathHow(p, _) | Resource::StatxInto(p, _) => p.as_ptr(),
            _ => std::ptr::null(),
        }
    }

    pub(super) fn open_how_ptr(&self) -> *const io_uring::types::OpenHow {
        match &self.resource {
            Resource::PathHow(_, how) => &**how,
            _ => std::ptr::null(),
        }
    }

    /// Where statx writes its result (null when this is not a statx slot).
    pub(super) fn statx_ptr(&mut self) -> *mut io_uring::types::statx {
        match &mut self.resource {
            Resource::StatxInto(_, span) => span.raw_parts().0.cast(),
            _ => std::ptr::null_mut(),
        }
    }

    pub(super) fn timespec_ptr(&self) -> *const Timespec {
        match &self.resource {
            Resource::Timespec(ts) => &**ts,
            _ => std::ptr::null(),
        }
    }

    /// Pointer and length of the owned buffer (null, 0 when there is none).
    pub(super) fn buffer_mut_ptr(&mut self) -> (*mut u8, u32) {
        match &mut self.resource {
            Resource::Buffer(OpBuffer::Span(span)) => {
                let (ptr, len) = span.raw_parts();
                (ptr, len.min(u32::MAX as usize) as u32)
            }
            Resource::Buffer(OpBuffer::Owned(bytes)) => (
                bytes.as_mut_ptr(),
                bytes.len().min(u32::MAX as usize) as u32,
            ),
            _ => (std::ptr::null_mut(), 0),
        }
    }
}

#[derive(Default)]
pub(super) struct OpTable {
    slots: Vec<(u32, Option<OpSlot>)>,
    free: Vec<u32>,
    live: usize,
}

impl OpTable {
    pub fn insert(&mut self, slot: OpSlot) -> (OpId, &mut OpSlot) {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push((0, None));
                (self.slots.len() - 1) as u32
            }
        };
        let entry = &mut self.slots[index as usize];
        entry.0 = (entry.0 + 1) & GENERATION_MASK;
        self.live += 1;
        let id = OpId {
            index,
            generation: entry.0,
        };
        (id, entry.1.insert(slot))
    }

    fn get_mut(&mut self, id: OpId) -> Option<&mut OpSlot> {
        match self.slots.get_mut(id.index as usize) {
            Some((generation, Some(slot))) if *generation == id.generation => Some(slot),
            _ => None,
        }
    }

    pub fn remove(&mut self, id: OpId) -> Option<OpSlot> {
        self.get_mut(id)?;
        let slot = self.slots[id.index as usize].1.take();
        self.free.push(id.index);
        self.live -= 1;
        slot
    }

    /// Marks `id` as being cancelled; false when it is unknown or already so.
    pub fn mark_cancelling(&mut self, id: OpId) -> bool {
        match self.get_mut(id) {
            Some(slot) if !slot.cancelling => {
                slot.cancelling = true;
                true
            }
            _ => false,
        }
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
}
