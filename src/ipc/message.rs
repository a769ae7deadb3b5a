//! [`Message`] ↔ frame: what the transport calls to send an in-process
//! message across a process boundary, and to deliver a received frame to
//! an in-process actor.

use std::borrow::Cow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::{
    encode_routed, FdPlacement, FrameError, ReceivedFrame, Routing, Value, MAX_CHANNELS, MAX_DEPTH,
    MAX_FDS, MAX_TABLE_MEMBERS,
};
use crate::actor::message::{ActorAddress, Message};

/// A message encoded for one `sendmsg`, borrowing its capabilities from the
/// message (which must outlive the send).
#[derive(Debug)]
pub struct Frame<'m> {
    /// The packet.
    pub bytes: Vec<u8>,
    /// The descriptors, fd `k` as `fds[k]`: attach them in this order with
    /// `SCM_RIGHTS`, or (fixed-slot placement) they are the ones that were
    /// installed in the slots given to [`encode_message`], in order.
    pub fds: Vec<BorrowedFd<'m>>,
    /// The channel table: `Value::Channel(k)` is `channels[k]`; the
    /// transport maps each address to something the receiver can use.
    pub channels: Vec<&'m ActorAddress>,
}

/// Encodes `message` as a frame. Its fds and addresses become the frame's
/// fd list and channel table in member order (arrays by index, objects by
/// key). Numbers become [`Value::Float`], strings [`Value::String`].
///
/// With [`FdPlacement::FixedSlots`], `slots[k]` must hold a copy of the
/// `k`-th descriptor of [`message_fds`] (the same order), already installed
/// in the receiver's table.
pub fn encode_message<'m>(
    message: &'m Message,
    fds: FdPlacement<'_>,
) -> Result<Frame<'m>, FrameError> {
    convert_message(message)?.encode(fds, &Routing::default())
}

/// The descriptors of `message` in frame order (fd `k` of its frame is the
/// `k`-th): a transport using fixed slots installs them in this order
/// before calling [`encode_message`] with the slots.
pub fn message_fds(message: &Message) -> Result<Vec<BorrowedFd<'_>>, FrameError> {
    Ok(convert_message(message)?.fds)
}

/// A message as the wire sees it, before it is encoded: a transport that
/// routes channels looks at `channels` first, then encodes with their
/// routes ([`Converted::encode`]).
pub struct Converted<'m> {
    value: Value<'m>,
    /// fd `k` is `fds[k]`.
    pub fds: Vec<BorrowedFd<'m>>,
    /// Channel `k` is `channels[k]`.
    pub channels: Vec<&'m ActorAddress>,
}

/// Borrows `message` as a wire value with its capabilities in frame order.
pub fn convert_message(message: &Message) -> Result<Converted<'_>, FrameError> {
    let mut caps = Caps::default();
    let value = caps.convert(message, 0)?;
    Ok(Converted {
        value,
        fds: caps.fds,
        channels: caps.channels,
    })
}

impl<'m> Converted<'m> {
    /// The frame, with `routing` ([`encode_routed`]).
    pub fn encode(self, fds: FdPlacement<'_>, routing: &Routing) -> Result<Frame<'m>, FrameError> {
        let bytes = encode_routed(&self.value, fds, routing)?;
        Ok(Frame {
            bytes,
            fds: self.fds,
            channels: self.channels,
        })
    }
}

#[derive(Default)]
struct Caps<'m> {
    fds: Vec<BorrowedFd<'m>>,
    channels: Vec<&'m ActorAddress>,
}

impl<'m> Caps<'m> {
    /// Borrows `message` as a [`Value`]. Recursion stops at
    /// [`MAX_DEPTH`], the bound the encoder enforces anyway.
    fn convert(&mut self, message: &'m Message, depth: usize) -> Result<Value<'m>, FrameError> {
        Ok(match message {
            Message::Bool(b) => Value::Bool(*b),
            Message::Number(n) => Value::Float(*n),
            Message::String(s) => Value::String(Cow::Borrowed(s)),
            Message::Bytes(b) => Value::Bytes(Cow::Borrowed(b)),
            Message::Ip(address) => Value::Ip(*address),
            Message::Array(_) | Message::Object(_) if depth >= MAX_DEPTH => {
                return Err(FrameError::TooDeep { limit: MAX_DEPTH });
            }
            Message::Array(items) if items.len() > MAX_TABLE_MEMBERS => {
                return Err(FrameError::TableTooLarge {
                    count: items.len(),
                    limit: MAX_TABLE_MEMBERS,
                });
            }
            Message::Object(members) if members.len() > MAX_TABLE_MEMBERS => {
                return Err(FrameError::TableTooLarge {
                    count: members.len(),
                    limit: MAX_TABLE_MEMBERS,
                });
            }
            Message::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.convert(item, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Message::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(key, item)| {
                        Ok((
                            Cow::Borrowed(key.as_slice()),
                            self.convert(item, depth + 1)?,
                        ))
                    })
                    .collect::<Result<_, FrameError>>()?,
            ),
            Message::Fd(fd) => {
                if self.fds.len() == MAX_FDS {
                    return Err(FrameError::TooManyFds {
                        count: MAX_FDS + 1,
                        limit: MAX_FDS,
                    });
                }
                self.fds.push(fd.as_fd());
                Value::Fd(self.fds.len() as u32 - 1)
            }
            Message::Address(address) => {
                if self.channels.len() == MAX_CHANNELS {
                    return Err(FrameError::TooManyChannels {
                        count: MAX_CHANNELS + 1,
                        limit: MAX_CHANNELS,
                    });
                }
                self.channels.push(address);
                Value::Channel(self.channels.len() as u32 - 1)
            }
        })
    }
}

impl ReceivedFrame<'_> {
    /// The in-process message this frame stands for: fd `k` becomes
    /// `Message::Fd(self.fds[k])`, channel `k` becomes
    /// `Message::Address(channels[k])` (the transport's channel table for
    /// this frame, one address per channel member), floats become
    /// numbers, strings are copied out of the packet.
    ///
    /// Byte spans and `ip.address` values become [`Message::Bytes`] and
    /// [`Message::Ip`]; integers beyond ±2^53 (which a Lua number would
    /// round) are refused ([`FrameError::NoMessageForm`]). On any
    /// error every fd and address is dropped (closed / released).
    pub fn into_message(self, channels: Vec<ActorAddress>) -> Result<Message, FrameError> {
        if channels.len() != self.channel_count {
            return Err(FrameError::ChannelTableMismatch {
                named: self.channel_count,
                given: channels.len(),
            });
        }
        let mut parts = Parts {
            fds: self.fds.into_iter().map(Some).collect(),
            channels: channels.into_iter().map(Some).collect(),
        };
        parts.message(self.value, 0)
    }
}

/// Capabilities not yet placed in the message being built.
struct Parts {
    fds: Vec<Option<OwnedFd>>,
    channels: Vec<Option<ActorAddress>>,
}

/// Integers a Lua number (an f64) holds exactly.
const EXACT_INTEGER_LIMIT: i64 = 1 << 53;

impl Parts {
    /// Recursion stops at [`MAX_DEPTH`] (decoded values are never deeper).
    fn message(&mut self, value: Value<'_>, depth: usize) -> Result<Message, FrameError> {
        Ok(match value {
            Value::Bool(b) => Message::Bool(b),
            Value::Float(f) => Message::Number(f),
            Value::Integer(i) if (-EXACT_INTEGER_LIMIT..=EXACT_INTEGER_LIMIT).contains(&i) => {
                Message::Number(i as f64)
            }
            Value::Integer(_) => {
                return Err(FrameError::NoMessageForm {
                    kind: "integer beyond ±2^53",
                })
            }
            Value::String(s) => Message::String(s.into_owned()),
            Value::Bytes(b) => Message::Bytes(b.into_owned()),
            Value::Ip(address) => Message::Ip(address),
            Value::Array(_) | Value::Object(_) if depth >= MAX_DEPTH => {
                return Err(FrameError::TooDeep { limit: MAX_DEPTH })
            }
            Value::Array(items) => Message::Array(
                items
                    .into_iter()
                    .map(|item| self.message(item, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(members) => Message::Object(
                members
                    .into_iter()
                    .map(|(key, item)| Ok((key.into_owned(), self.message(item, depth + 1)?)))
                    .collect::<Result<_, FrameError>>()?,
            ),
            Value::Fd(index) => Message::Fd(
                self.fds
                    .get_mut(index as usize)
                    .and_then(Option::take)
                    .ok_or(FrameError::FdReference {
                        index,
                        expected: index,
                    })?,
            ),
            Value::Channel(index) => Message::Address(
                self.channels
                    .get_mut(index as usize)
                    .and_then(Option::take)
                    .ok_or(FrameError::ChannelReference {
                        index,
                        expected: index,
                    })?,
            ),
        })
    }
}
