//! Value → frame bytes, enforcing every bound the decoder enforces.

use std::collections::btree_map;
use std::slice;

use super::{
    tag, FrameError, IpAddress, Value, FLAG_FIXED_SLOTS, FLAG_ROUTES, HEADER_LEN, MAGIC,
    MAX_CHANNELS, MAX_DEPTH, MAX_FDS, MAX_FRAME_BYTES, MAX_KEY_BYTES, MAX_STRING_BYTES,
    MAX_TABLE_MEMBERS, MAX_TOTAL_MEMBERS, VERSION,
};

/// How the frame's descriptors reach the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdPlacement<'s> {
    /// Attached to the packet with `SCM_RIGHTS`, fd `k` as the k-th.
    ScmRights,
    /// Already installed in the receiver's fixed-file table (by
    /// `MsgRingSendFd` from the host's ring): `slots[k]` is fd `k`'s slot.
    FixedSlots(&'s [u32]),
}

/// Where a frame goes and what its channels name, as route ids of the
/// sender's route table (a sandbox's, `actor/sandboxed/routes.rs`): route
/// 0 is the spawner's inbox. The default (all 0) is a frame without the
/// routes flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// The route the frame is delivered to (from a sandbox; 0 towards one).
    pub destination: u32,
    /// `channels[k]` is channel `k`'s route; empty when every channel
    /// names route 0 (the form a decoded frame has then).
    pub channels: Vec<u32>,
}

impl Routing {
    /// Channel `k`'s route.
    pub fn channel(&self, k: usize) -> u32 {
        self.channels.get(k).copied().unwrap_or(0)
    }

    /// Whether every route is 0 (the frame carries none).
    pub fn is_default(&self) -> bool {
        self.destination == 0 && self.channels.iter().all(|&r| r == 0)
    }
}

/// Encodes `value` as one frame.
///
/// `value`'s `Fd` and `Channel` members must count up from 0 in member
/// order (see [`Value`]); the frame names as many fds and channels as it
/// references. With [`FdPlacement::FixedSlots`] there must be one distinct
/// slot per fd.
pub fn encode(value: &Value<'_>, fds: FdPlacement<'_>) -> Result<Vec<u8>, FrameError> {
    encode_routed(value, fds, &Routing::default())
}

/// [`encode`] with routes: `routing.channels` is empty or has one route
/// per channel member; a route is any `u32` (0: the spawner's inbox).
pub fn encode_routed(
    value: &Value<'_>,
    fds: FdPlacement<'_>,
    routing: &Routing,
) -> Result<Vec<u8>, FrameError> {
    let routed = !routing.is_default();
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(
        match fds {
            FdPlacement::ScmRights => 0,
            FdPlacement::FixedSlots(_) => FLAG_FIXED_SLOTS,
        } | if routed { FLAG_ROUTES } else { 0 },
    );
    // fd count, channel count and payload length are filled in at the end.
    out.extend_from_slice(&[0; HEADER_LEN - 6]);
    if let FdPlacement::FixedSlots(slots) = fds {
        if slots.len() > MAX_FDS {
            return Err(FrameError::TooManyFds {
                count: slots.len(),
                limit: MAX_FDS,
            });
        }
        for (k, slot) in slots.iter().enumerate() {
            if slots[..k].contains(slot) {
                return Err(FrameError::DuplicateSlot { slot: *slot });
            }
            out.extend_from_slice(&slot.to_le_bytes());
        }
    }

    // The routes go here once the channel count is known (a frame with
    // routes is the rare case: the copy is cheap).
    let routes_at = out.len();

    let mut writer = Writer {
        out,
        fds: 0,
        channels: 0,
        members: 1,
    };
    writer.tree(value)?;
    let Writer {
        mut out,
        fds: fd_count,
        channels,
        ..
    } = writer;

    if let FdPlacement::FixedSlots(slots) = fds {
        if slots.len() != fd_count as usize {
            return Err(FrameError::SlotCountMismatch {
                slots: slots.len(),
                fds: fd_count as usize,
            });
        }
    }
    if !routing.channels.is_empty() && routing.channels.len() != channels as usize {
        return Err(FrameError::RouteCountMismatch {
            routes: routing.channels.len(),
            channels: channels as usize,
        });
    }
    if routed {
        let mut routes = Vec::with_capacity(1 + channels as usize);
        let channel_routes = (0..channels as usize).map(|k| routing.channel(k));
        for route in std::iter::once(routing.destination).chain(channel_routes) {
            write_varint(&mut routes, route);
        }
        out.splice(routes_at..routes_at, routes);
    }
    if out.len() > MAX_FRAME_BYTES {
        return Err(FrameError::TooLarge {
            len: out.len(),
            limit: MAX_FRAME_BYTES,
        });
    }
    // Both fit a byte: the writer refuses references past MAX_FDS (253)
    // and MAX_CHANNELS (64).
    out[6] = fd_count as u8;
    out[7] = channels as u8;
    let payload_len = (out.len() - HEADER_LEN) as u32;
    out[8..12].copy_from_slice(&payload_len.to_le_bytes());
    Ok(out)
}

/// A table being written: the members still to write.
enum Open<'v, 'a> {
    Array(slice::Iter<'v, Value<'a>>),
    Object(btree_map::Iter<'v, std::borrow::Cow<'a, [u8]>, Value<'a>>),
}

struct Writer {
    out: Vec<u8>,
    fds: u32,
    channels: u32,
    /// Values written or claimed so far (the root counts).
    members: usize,
}

impl Writer {
    /// Writes the tree with an explicit stack, pre-order.
    fn tree(&mut self, root: &Value<'_>) -> Result<(), FrameError> {
        let mut stack: Vec<Open<'_, '_>> = Vec::new();
        let mut next = Some(root);
        loop {
            if let Some(value) = next.take() {
                if let Some(open) = self.value(value, stack.len())? {
                    stack.push(open);
                }
            }
            let Some(top) = stack.last_mut() else {
                return Ok(());
            };
            match top {
                Open::Array(items) => match items.next() {
                    Some(item) => next = Some(item),
                    None => {
                        stack.pop();
                    }
                },
                Open::Object(members) => match members.next() {
                    Some((key, item)) => {
                        if key.len() > MAX_KEY_BYTES {
                            return Err(FrameError::KeyTooLong {
                                len: key.len(),
                                limit: MAX_KEY_BYTES,
                            });
                        }
                        self.bytes(key)?;
                        next = Some(item);
                    }
                    None => {
                        stack.pop();
                    }
                },
            }
        }
    }

    /// Writes one value; a non-empty table is returned to be opened.
    /// `depth` is the number of tables already open around it.
    fn value<'v, 'a>(
        &mut self,
        value: &'v Value<'a>,
        depth: usize,
    ) -> Result<Option<Open<'v, 'a>>, FrameError> {
        match value {
            Value::Bool(false) => self.out.push(tag::FALSE),
            Value::Bool(true) => self.out.push(tag::TRUE),
            Value::Float(f) => {
                self.out.push(tag::FLOAT);
                self.out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::Integer(i) => {
                self.out.push(tag::INTEGER);
                self.out.extend_from_slice(&i.to_le_bytes());
            }
            Value::String(s) | Value::Bytes(s) => {
                if s.len() > MAX_STRING_BYTES {
                    return Err(FrameError::StringTooLong {
                        len: s.len(),
                        limit: MAX_STRING_BYTES,
                    });
                }
                self.out.push(if matches!(value, Value::String(_)) {
                    tag::STRING
                } else {
                    tag::BYTES
                });
                self.bytes(s)?;
            }
            Value::Array(items) => {
                self.table_header(tag::ARRAY, items.len(), depth)?;
                return Ok((!items.is_empty()).then(|| Open::Array(items.iter())));
            }
            Value::Object(members) => {
                self.table_header(tag::OBJECT, members.len(), depth)?;
                return Ok((!members.is_empty()).then(|| Open::Object(members.iter())));
            }
            Value::Fd(index) => {
                if *index != self.fds {
                    return Err(FrameError::FdReference {
                        index: *index,
                        expected: self.fds,
                    });
                }
                if self.fds as usize == MAX_FDS {
                    return Err(FrameError::TooManyFds {
                        count: MAX_FDS + 1,
                        limit: MAX_FDS,
                    });
                }
                self.fds += 1;
                self.out.push(tag::FD);
                write_varint(&mut self.out, *index);
            }
            Value::Channel(index) => {
                if *index != self.channels {
                    return Err(FrameError::ChannelReference {
                        index: *index,
                        expected: self.channels,
                    });
                }
                if self.channels as usize == MAX_CHANNELS {
                    return Err(FrameError::TooManyChannels {
                        count: MAX_CHANNELS + 1,
                        limit: MAX_CHANNELS,
                    });
                }
                self.channels += 1;
                self.out.push(tag::CHANNEL);
                write_varint(&mut self.out, *index);
            }
            Value::Ip(IpAddress::V4(address)) => {
                self.out.push(tag::IPV4);
                self.out.extend_from_slice(&address.octets());
            }
            Value::Ip(IpAddress::V6 { address, scope_id }) => {
                self.out.push(tag::IPV6);
                self.out.extend_from_slice(&address.octets());
                self.out.extend_from_slice(&scope_id.to_le_bytes());
            }
        }
        Ok(None)
    }

    fn table_header(&mut self, tag: u8, count: usize, depth: usize) -> Result<(), FrameError> {
        if depth >= MAX_DEPTH {
            return Err(FrameError::TooDeep { limit: MAX_DEPTH });
        }
        if count > MAX_TABLE_MEMBERS {
            return Err(FrameError::TableTooLarge {
                count,
                limit: MAX_TABLE_MEMBERS,
            });
        }
        self.members += count;
        if self.members > MAX_TOTAL_MEMBERS {
            return Err(FrameError::TooManyMembers {
                limit: MAX_TOTAL_MEMBERS,
            });
        }
        self.out.push(tag);
        write_varint(&mut self.out, count as u32);
        Ok(())
    }

    /// A varint length and the bytes; stops as soon as the frame is over
    /// its limit so a huge message is not copied whole first.
    fn bytes(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        let len = self.out.len() + varint_len(bytes.len() as u32) + bytes.len();
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge {
                len,
                limit: MAX_FRAME_BYTES,
            });
        }
        write_varint(&mut self.out, bytes.len() as u32);
        self.out.extend_from_slice(bytes);
        Ok(())
    }
}

fn varint_len(n: u32) -> usize {
    (32 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Minimal unsigned LEB128.
pub(crate) fn write_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
