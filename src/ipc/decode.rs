//! Frame bytes → value. Every rule the canonical form states is checked
//! here; see the module doc of `ipc` for the allocation and stack bounds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;

use super::{
    tag, FdPlacement, FrameError, IpAddress, Routing, Value, FLAG_FIXED_SLOTS, FLAG_ROUTES,
    HEADER_LEN, MAGIC, MAX_CHANNELS, MAX_DEPTH, MAX_FDS, MAX_FRAME_BYTES, MAX_KEY_BYTES,
    MAX_STRING_BYTES, MAX_TABLE_MEMBERS, MAX_TOTAL_MEMBERS, VERSION,
};

/// How the receiving channel gets descriptors: the caller says which, and
/// a frame that says otherwise is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdMode {
    /// With the packet, by `SCM_RIGHTS`.
    ScmRights,
    /// Installed beforehand in this receiver's fixed-file table of
    /// `table_size` slots; the frame lists the slots.
    FixedSlots { table_size: u32 },
}

impl FdMode {
    fn name(fixed: bool) -> &'static str {
        if fixed {
            "fixed-file slots"
        } else {
            "SCM_RIGHTS descriptors"
        }
    }
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'p> {
    pub value: Value<'p>,
    /// How many fds the frame names (`Value::Fd(0..fd_count)` all occur).
    pub fd_count: usize,
    /// For [`FdMode::FixedSlots`]: `fd_slots[k]` is fd `k`'s slot. Empty
    /// for `SCM_RIGHTS`.
    pub fd_slots: Vec<u32>,
    /// Whether the frame was in fixed-slot form.
    pub fixed_slots: bool,
    /// How many channel table entries the frame names
    /// (`Value::Channel(0..channel_count)` all occur).
    pub channel_count: usize,
    /// The frame's routes (all 0 without the routes flag).
    pub routing: Routing,
}

impl Decoded<'_> {
    /// The placement that re-encodes this frame to the same bytes.
    pub fn placement(&self) -> FdPlacement<'_> {
        if self.fixed_slots {
            FdPlacement::FixedSlots(&self.fd_slots)
        } else {
            FdPlacement::ScmRights
        }
    }
}

/// A frame decoded together with the descriptors that came with it.
#[derive(Debug)]
pub struct ReceivedFrame<'p> {
    pub value: Value<'p>,
    /// `fds[k]` is `Value::Fd(k)`.
    pub fds: Vec<OwnedFd>,
    pub channel_count: usize,
    pub routing: Routing,
}

/// Decodes a packet whose descriptors arrived by `SCM_RIGHTS`, taking
/// ownership of them: on any error they are all closed (dropped) before
/// this returns, so a malformed or hostile frame leaks none.
pub fn decode_with_fds(packet: &[u8], fds: Vec<OwnedFd>) -> Result<ReceivedFrame<'_>, FrameError> {
    let decoded = decode(packet, FdMode::ScmRights, fds.len())?;
    Ok(ReceivedFrame {
        value: decoded.value,
        fds,
        channel_count: decoded.channel_count,
        routing: decoded.routing,
    })
}

/// Decodes one packet.
///
/// `scm_fds_received` is how many descriptors arrived with the packet by
/// `SCM_RIGHTS` (in fixed-slot mode any is an error). On error the caller
/// closes every descriptor that came with the packet and closes the
/// channel.
pub fn decode(
    packet: &[u8],
    mode: FdMode,
    scm_fds_received: usize,
) -> Result<Decoded<'_>, FrameError> {
    if packet.is_empty() {
        return Err(FrameError::Empty);
    }
    if packet.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: packet.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    if packet.len() < HEADER_LEN {
        return Err(FrameError::Truncated { what: "the header" });
    }
    if packet[0..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if packet[4] != VERSION {
        return Err(FrameError::UnsupportedVersion { found: packet[4] });
    }
    let flags = packet[5];
    if flags & !(FLAG_FIXED_SLOTS | FLAG_ROUTES) != 0 {
        return Err(FrameError::UnknownFlags { flags });
    }
    let fixed = flags & FLAG_FIXED_SLOTS != 0;
    let expects_fixed = matches!(mode, FdMode::FixedSlots { .. });
    if fixed != expects_fixed {
        return Err(FrameError::FdModeMismatch {
            found: FdMode::name(fixed),
            expected: FdMode::name(expects_fixed),
        });
    }
    let fd_count = usize::from(packet[6]);
    if fd_count > MAX_FDS {
        return Err(FrameError::TooManyFds {
            count: fd_count,
            limit: MAX_FDS,
        });
    }
    let channel_count = usize::from(packet[7]);
    if channel_count > MAX_CHANNELS {
        return Err(FrameError::TooManyChannels {
            count: channel_count,
            limit: MAX_CHANNELS,
        });
    }
    let claimed = u32::from_le_bytes([packet[8], packet[9], packet[10], packet[11]]) as usize;
    let actual = packet.len() - HEADER_LEN;
    if claimed != actual {
        return Err(FrameError::LengthMismatch { claimed, actual });
    }
    let scm_named = if fixed { 0 } else { fd_count };
    if scm_fds_received != scm_named {
        return Err(FrameError::FdCountMismatch {
            named: scm_named,
            received: scm_fds_received,
        });
    }

    let mut reader = Reader {
        buf: packet,
        pos: HEADER_LEN,
    };
    let mut fd_slots = Vec::new();
    if let FdMode::FixedSlots { table_size } = mode {
        if 4 * fd_count > reader.remaining() {
            return Err(FrameError::Truncated {
                what: "the fixed-file slot list",
            });
        }
        fd_slots.reserve_exact(fd_count);
        for _ in 0..fd_count {
            let bytes = reader.take(4, "the fixed-file slot list")?;
            let slot = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            if slot >= table_size {
                return Err(FrameError::SlotOutOfRange { slot, table_size });
            }
            if fd_slots.contains(&slot) {
                return Err(FrameError::DuplicateSlot { slot });
            }
            fd_slots.push(slot);
        }
    }

    let mut routing = Routing::default();
    if flags & FLAG_ROUTES != 0 {
        // Any id: only the receiver's route table gives it a meaning.
        let mut route = || reader.varint("the route list");
        routing.destination = route()?;
        // At most MAX_CHANNELS (64) routes.
        let channels = (0..channel_count)
            .map(|_| route())
            .collect::<Result<Vec<_>, _>>()?;
        if channels.iter().any(|&r| r != 0) {
            routing.channels = channels;
        } else if routing.destination == 0 {
            return Err(FrameError::NeedlessRoutes);
        }
    }

    let mut tree = TreeReader {
        reader,
        fd_count,
        channel_count,
        fds_seen: 0,
        channels_seen: 0,
        members: 1,
    };
    let value = tree.value_tree()?;
    let TreeReader {
        reader,
        fds_seen,
        channels_seen,
        ..
    } = tree;
    if reader.pos != packet.len() {
        return Err(FrameError::TrailingBytes {
            count: packet.len() - reader.pos,
        });
    }
    if fds_seen as usize != fd_count {
        return Err(FrameError::UnusedFds {
            named: fd_count,
            referenced: fds_seen as usize,
        });
    }
    if channels_seen as usize != channel_count {
        return Err(FrameError::UnusedChannels {
            named: channel_count,
            referenced: channels_seen as usize,
        });
    }
    Ok(Decoded {
        value,
        fd_count,
        fd_slots,
        fixed_slots: fixed,
        channel_count,
        routing,
    })
}

struct Reader<'p> {
    buf: &'p [u8],
    pos: usize,
}

impl<'p> Reader<'p> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// `n` bytes, after checking they are present.
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'p [u8], FrameError> {
        if n > self.remaining() {
            return Err(FrameError::Truncated { what });
        }
        let bytes = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Minimal unsigned LEB128 of at most 32 bits.
    fn varint(&mut self, what: &'static str) -> Result<u32, FrameError> {
        let offset = self.pos;
        let mut value: u64 = 0;
        for i in 0..5 {
            let [byte] = self.array::<1>(what)?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                // A last byte of 0 after the first adds nothing: overlong.
                if (i > 0 && byte == 0) || value > u64::from(u32::MAX) {
                    return Err(FrameError::NonCanonicalVarint { offset });
                }
                return Ok(value as u32);
            }
        }
        Err(FrameError::NonCanonicalVarint { offset })
    }

    /// A length-prefixed byte string of at most `limit` bytes.
    fn bytes(
        &mut self,
        limit: usize,
        what: &'static str,
        too_long: fn(usize, usize) -> FrameError,
    ) -> Result<&'p [u8], FrameError> {
        let len = self.varint(what)? as usize;
        if len > limit {
            return Err(too_long(len, limit));
        }
        self.take(len, what)
    }
}

/// A table being read.
enum Open<'p> {
    Array {
        items: Vec<Value<'p>>,
        remaining: usize,
    },
    Object {
        members: BTreeMap<Cow<'p, [u8]>, Value<'p>>,
        remaining: usize,
        /// The key of the member being read, and the one before it.
        key: &'p [u8],
        previous_key: Option<&'p [u8]>,
    },
}

impl<'p> Open<'p> {
    /// Adds a finished member; returns whether the table is complete.
    fn push(&mut self, value: Value<'p>) -> bool {
        match self {
            Open::Array { items, remaining } => {
                items.push(value);
                *remaining -= 1;
                *remaining == 0
            }
            Open::Object {
                members,
                remaining,
                key,
                ..
            } => {
                members.insert(Cow::Borrowed(*key), value);
                *remaining -= 1;
                *remaining == 0
            }
        }
    }

    fn into_value(self) -> Value<'p> {
        match self {
            Open::Array { items, .. } => Value::Array(items),
            Open::Object { members, .. } => Value::Object(members),
        }
    }
}

struct TreeReader<'p> {
    reader: Reader<'p>,
    fd_count: usize,
    channel_count: usize,
    fds_seen: u32,
    channels_seen: u32,
    /// Values read or claimed by an open table (the root counts).
    members: usize,
}

impl<'p> TreeReader<'p> {
    /// Reads the root value with an explicit stack of open tables.
    fn value_tree(&mut self) -> Result<Value<'p>, FrameError> {
        let mut stack: Vec<Open<'p>> = Vec::new();
        loop {
            if let Some(Open::Object {
                key, previous_key, ..
            }) = stack.last_mut()
            {
                let offset = self.reader.pos;
                let next_key =
                    self.reader
                        .bytes(MAX_KEY_BYTES, "an object key", |len, limit| {
                            FrameError::KeyTooLong { len, limit }
                        })?;
                if let Some(previous) = previous_key {
                    if next_key == *previous {
                        return Err(FrameError::DuplicateKey { offset });
                    }
                    if next_key < *previous {
                        return Err(FrameError::KeysOutOfOrder { offset });
                    }
                }
                *key = next_key;
                *previous_key = Some(next_key);
            }

            let mut value = match self.value_head(stack.len())? {
                Head::Done(value) => value,
                Head::Open(open) => {
                    stack.push(open);
                    continue;
                }
            };
            // Hand the finished value to its table, closing every table it
            // completes.
            loop {
                match stack.last_mut() {
                    None => return Ok(value),
                    Some(top) => {
                        if !top.push(value) {
                            break;
                        }
                        value = stack.pop().expect("the top table").into_value();
                    }
                }
            }
        }
    }

    /// Reads one value, or the header of a non-empty table. `depth` is the
    /// number of tables open around it.
    fn value_head(&mut self, depth: usize) -> Result<Head<'p>, FrameError> {
        let offset = self.reader.pos;
        let [tag] = self.reader.array::<1>("a value's tag")?;
        Ok(Head::Done(match tag {
            tag::FALSE => Value::Bool(false),
            tag::TRUE => Value::Bool(true),
            tag::FLOAT => Value::Float(f64::from_bits(u64::from_le_bytes(
                self.reader.array("a float")?,
            ))),
            tag::INTEGER => Value::Integer(i64::from_le_bytes(self.reader.array("an integer")?)),
            tag::STRING | tag::BYTES => {
                let bytes = self
                    .reader
                    .bytes(MAX_STRING_BYTES, "a string", |len, limit| {
                        FrameError::StringTooLong { len, limit }
                    })?;
                if tag == tag::STRING {
                    Value::String(Cow::Borrowed(bytes))
                } else {
                    Value::Bytes(Cow::Borrowed(bytes))
                }
            }
            tag::ARRAY | tag::OBJECT => {
                if depth >= MAX_DEPTH {
                    return Err(FrameError::TooDeep { limit: MAX_DEPTH });
                }
                let count_offset = self.reader.pos;
                let count = self.reader.varint("a table's member count")? as usize;
                if count > MAX_TABLE_MEMBERS {
                    return Err(FrameError::TableTooLarge {
                        count,
                        limit: MAX_TABLE_MEMBERS,
                    });
                }
                // Each array member takes at least its tag; each object
                // member a key length and a tag.
                let least_bytes = if tag == tag::ARRAY { count } else { 2 * count };
                if least_bytes > self.reader.remaining() {
                    return Err(FrameError::CountExceedsBytes {
                        count,
                        offset: count_offset,
                    });
                }
                self.members += count;
                if self.members > MAX_TOTAL_MEMBERS {
                    return Err(FrameError::TooManyMembers {
                        limit: MAX_TOTAL_MEMBERS,
                    });
                }
                match (tag, count) {
                    (tag::ARRAY, 0) => Value::Array(Vec::new()),
                    (_, 0) => Value::Object(BTreeMap::new()),
                    (tag::ARRAY, _) => {
                        return Ok(Head::Open(Open::Array {
                            items: Vec::with_capacity(count),
                            remaining: count,
                        }))
                    }
                    _ => {
                        return Ok(Head::Open(Open::Object {
                            members: BTreeMap::new(),
                            remaining: count,
                            key: &[],
                            previous_key: None,
                        }))
                    }
                }
            }
            tag::FD => {
                let index = self.reader.varint("an fd index")?;
                if self.fds_seen as usize == self.fd_count {
                    return Err(FrameError::FdReferencesExceedList {
                        named: self.fd_count,
                    });
                }
                if index != self.fds_seen {
                    return Err(FrameError::FdReference {
                        index,
                        expected: self.fds_seen,
                    });
                }
                self.fds_seen += 1;
                Value::Fd(index)
            }
            tag::CHANNEL => {
                let index = self.reader.varint("a channel index")?;
                if self.channels_seen as usize == self.channel_count {
                    return Err(FrameError::ChannelReferencesExceedList {
                        named: self.channel_count,
                    });
                }
                if index != self.channels_seen {
                    return Err(FrameError::ChannelReference {
                        index,
                        expected: self.channels_seen,
                    });
                }
                self.channels_seen += 1;
                Value::Channel(index)
            }
            tag::IPV4 => Value::Ip(IpAddress::V4(Ipv4Addr::from(
                self.reader.array::<4>("an IPv4 address")?,
            ))),
            tag::IPV6 => {
                let address = Ipv6Addr::from(self.reader.array::<16>("an IPv6 address")?);
                let scope_id = u32::from_le_bytes(self.reader.array("an IPv6 scope id")?);
                Value::Ip(IpAddress::V6 { address, scope_id })
            }
            other => return Err(FrameError::BadTag { tag: other, offset }),
        }))
    }
}

enum Head<'p> {
    Done(Value<'p>),
    Open(Open<'p>),
}
