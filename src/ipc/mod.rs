//! The IPC wire format: one message per `SOCK_SEQPACKET` packet, a *frame*
//! (docs/ipc.md gives the layout byte by byte).
//!
//! A frame is a fixed 12-byte header (magic, version, flags, fd count,
//! channel count, payload length), then — when the frame names fixed-file
//! slots — one `u32` slot per fd, then — when a route is not 0 — its
//! routes ([`Routing`]), then exactly one [`Value`]. Capabilities
//! are not in the bytes: an fd member is an index into the frame's fd list
//! (descriptors attached with `SCM_RIGHTS`, or slots of the receiver's
//! fixed-file table that the host filled with `MsgRingSendFd` before
//! sending); a channel member is an index into a per-frame channel table
//! that the transport keeps beside the frame.
//!
//! Invariants:
//! - Canonical form: every accepted frame is the only encoding of what it
//!   decodes to, so `encode(decode(b)) == b` for every accepted `b` and
//!   `decode(encode(v)) == v` for every encodable `v`. Lengths and counts
//!   are minimal LEB128; object keys are strictly increasing bytewise (no
//!   duplicates); fd and channel members are numbered in the order they
//!   appear (pre-order, arrays in index order, objects in key order), each
//!   list entry referenced exactly once; floats are bit-exact (every NaN
//!   payload is its own value); the flags byte matches the fd mode the
//!   receiver expects; the routes flag is set only when a route is not 0.
//! - The decoder trusts nothing: every claimed length or count is checked
//!   against the bounds below and against the bytes still present before
//!   anything is allocated for it, and the members every open table claims
//!   count against [`MAX_TOTAL_MEMBERS`] up front, so a frame can make the
//!   decoder allocate at most that many values whatever it claims. It
//!   walks with an explicit stack (no recursion) and never panics.
//! - Strings and byte spans are borrowed from the packet ([`Value`] holds
//!   `Cow`s), so decoding copies no payload bytes.
//! - The encoder enforces the same bounds, so it never produces a frame the
//!   decoder rejects. Fds and channels in a frame are the caller's: a
//!   rejected frame's received descriptors are closed by whoever owns them
//!   ([`decode_with_fds`] takes ownership and closes them on every error).
//!
//! Files: `encode.rs` and `decode.rs` (value ↔ bytes), `value.rs` (the
//! tree), `message.rs` ([`crate::Message`] → frame and
//! [`ReceivedFrame::into_message`] back), `receive.rs` (`recvmsg` with the
//! control-message checks, and `send_frame`), `end.rs` (the end frame a
//! sandbox's runtime sends before it exits).

mod decode;
mod encode;
mod end;
mod message;
mod receive;
mod value;

#[cfg(test)]
mod tests;

pub use decode::{decode, decode_with_fds, Decoded, FdMode, ReceivedFrame};
pub use encode::{encode, encode_routed, FdPlacement, Routing};
pub use end::{decode_end, encode_end, EndReason, FLAG_END};
pub use message::{convert_message, encode_message, message_fds, Converted, Frame};
pub use receive::{receive_packet, send_frame, ReceiveError, ReceivedPacket, CONTROL_SPACE};
pub use value::{IpAddress, Value};

/// First four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"LURM";
/// The format version this build reads and writes.
pub const VERSION: u8 = 1;
/// Bytes before the payload: magic, version, flags, fd count, channel
/// count, payload length.
pub const HEADER_LEN: usize = 12;
/// Header flag: the frame's fds are fixed-file slots of the receiver's
/// ring, listed after the header; without it they arrive by `SCM_RIGHTS`.
/// (Bit 1 is [`FLAG_END`], never set in a message.)
pub const FLAG_FIXED_SLOTS: u8 = 0x01;
/// Header flag: after the slot list come the frame's routes (a varint
/// destination route, then one varint route per channel). Set only when
/// one of them is not 0: a frame without it goes to route 0 and all its
/// channels name route 0 (the spawner's inbox, for a sandbox).
pub const FLAG_ROUTES: u8 = 0x04;

/// Whole packet, header included. Fits the default unix socket send buffer
/// (`net.core.wmem_default`, 208 KiB), so one frame is one `sendmsg`; larger
/// data goes through a descriptor (a memfd or pipe) sent in the message.
pub const MAX_FRAME_BYTES: usize = 128 * 1024;
/// Nesting levels of tables; a scalar is depth 0, a flat table depth 1.
pub const MAX_DEPTH: usize = 64;
/// Members of one array or object.
pub const MAX_TABLE_MEMBERS: usize = 4096;
/// Values in the whole message, tables included.
pub const MAX_TOTAL_MEMBERS: usize = 16 * 1024;
/// Bytes of one string or byte span.
pub const MAX_STRING_BYTES: usize = 64 * 1024;
/// Bytes of one object key.
pub const MAX_KEY_BYTES: usize = 1024;
/// File descriptors per frame: the kernel's `SCM_MAX_FD`, the most one
/// `SCM_RIGHTS` control message carries.
pub const MAX_FDS: usize = 253;
/// Channel members per frame.
pub const MAX_CHANNELS: usize = 64;
/// Routes one sandbox may hold besides route 0 (the spawner's inbox, its
/// host's). A route id is any non-zero `u32`: the host's route table draws
/// them at random, so a frame may carry any id and only that table says
/// what it names.
pub const MAX_ROUTES: u32 = 64;

/// Type tags: the first byte of every encoded value.
pub(crate) mod tag {
    pub const FALSE: u8 = 0x01;
    pub const TRUE: u8 = 0x02;
    /// 8 bytes, little-endian IEEE 754 bits.
    pub const FLOAT: u8 = 0x03;
    /// 8 bytes, little-endian two's complement.
    pub const INTEGER: u8 = 0x04;
    /// varint length, then the bytes.
    pub const STRING: u8 = 0x05;
    /// varint length, then the bytes (a `byte_span`).
    pub const BYTES: u8 = 0x06;
    /// varint count, then that many values.
    pub const ARRAY: u8 = 0x07;
    /// varint count, then that many (varint key length, key, value).
    pub const OBJECT: u8 = 0x08;
    /// varint index into the frame's fd list.
    pub const FD: u8 = 0x09;
    /// varint index into the frame's channel table.
    pub const CHANNEL: u8 = 0x0A;
    /// 4 address bytes, network order.
    pub const IPV4: u8 = 0x0B;
    /// 16 address bytes, network order, then the scope id (u32 LE).
    pub const IPV6: u8 = 0x0C;
}

/// Why a frame was rejected (decoding) or could not be built (encoding).
///
/// A receiver that meets any of these closes that one channel, closes the
/// descriptors that came with the frame, and goes on with its other
/// channels: the peer broke the protocol or is hostile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("zero-byte packet: a frame has at least a {HEADER_LEN}-byte header (a peer closing its end sends no packet)")]
    Empty,
    #[error("frame of {len} bytes is over the {limit}-byte limit; send large data through a descriptor (memfd or pipe)")]
    TooLarge { len: usize, limit: usize },
    #[error("frame ends inside {what}: it was truncated or its lengths are wrong")]
    Truncated { what: &'static str },
    #[error("not a luring frame: bad magic bytes")]
    BadMagic,
    #[error("frame version {found} is not supported (this build speaks version {VERSION}); run the same luring on both sides")]
    UnsupportedVersion { found: u8 },
    #[error("frame has unknown flag bits {flags:#04x}")]
    UnknownFlags { flags: u8 },
    #[error("malformed end frame: an end frame has no fds or channels and names one known reason")]
    BadEndFrame,
    #[error("frame names its fds as {found} but this channel carries them as {expected}")]
    FdModeMismatch {
        found: &'static str,
        expected: &'static str,
    },
    #[error("header says {claimed} payload bytes but the packet holds {actual}")]
    LengthMismatch { claimed: usize, actual: usize },
    #[error("{count} bytes after the message's value: a frame holds exactly one value")]
    TrailingBytes { count: usize },
    #[error("unknown type tag {tag:#04x} at byte {offset}")]
    BadTag { tag: u8, offset: usize },
    #[error("length or count at byte {offset} is not in minimal LEB128 form or exceeds 32 bits")]
    NonCanonicalVarint { offset: usize },
    #[error("tables nest more than {limit} levels deep; flatten the message")]
    TooDeep { limit: usize },
    #[error("a table has {count} members, over the {limit} allowed per table; send it in parts")]
    TableTooLarge { count: usize, limit: usize },
    #[error("a table at byte {offset} claims {count} members but fewer bytes than that remain")]
    CountExceedsBytes { count: usize, offset: usize },
    #[error("the message has more than {limit} values in all; send it in parts")]
    TooManyMembers { limit: usize },
    #[error("a string or byte span of {len} bytes is over the {limit}-byte limit; send it through a descriptor")]
    StringTooLong { len: usize, limit: usize },
    #[error("an object key of {len} bytes is over the {limit}-byte limit")]
    KeyTooLong { len: usize, limit: usize },
    #[error("object key at byte {offset} repeats the previous key")]
    DuplicateKey { offset: usize },
    #[error(
        "object key at byte {offset} is not after the previous key in byte order (keys are sorted)"
    )]
    KeysOutOfOrder { offset: usize },
    #[error("{count} fds in one frame, over the limit of {limit} (SCM_MAX_FD)")]
    TooManyFds { count: usize, limit: usize },
    #[error("{count} channels in one frame, over the limit of {limit}")]
    TooManyChannels { count: usize, limit: usize },
    #[error("the frame names {named} fds but {received} arrived with it; all of them are closed")]
    FdCountMismatch { named: usize, received: usize },
    #[error("fd member {index} where {expected} was next: each of the frame's fds is referenced once, in order")]
    FdReference { index: u32, expected: u32 },
    #[error("the message references more fds than the {named} its frame names")]
    FdReferencesExceedList { named: usize },
    #[error("the frame names {named} fds but the message references only {referenced}; unreferenced fds are closed")]
    UnusedFds { named: usize, referenced: usize },
    #[error("channel member {index} where {expected} was next: each of the frame's channels is referenced once, in order")]
    ChannelReference { index: u32, expected: u32 },
    #[error("the message references more channels than the {named} its frame names")]
    ChannelReferencesExceedList { named: usize },
    #[error("the frame names {named} channels but the message references only {referenced}")]
    UnusedChannels { named: usize, referenced: usize },
    #[error("fixed-file slot {slot} is outside the receiver's table of {table_size} slots")]
    SlotOutOfRange { slot: u32, table_size: u32 },
    #[error("fixed-file slot {slot} is named twice in one frame")]
    DuplicateSlot { slot: u32 },
    #[error(
        "{slots} fixed-file slots were given for a message with {fds} fds; install one slot per fd"
    )]
    SlotCountMismatch { slots: usize, fds: usize },
    #[error(
        "the frame's routes are all 0: a frame with only route 0 leaves the routes flag unset"
    )]
    NeedlessRoutes,
    #[error("{routes} routes were given for a message with {channels} channels; give one route per channel (or none)")]
    RouteCountMismatch { routes: usize, channels: usize },
    #[error("the frame names {named} channels but the transport gave {given} addresses for them")]
    ChannelTableMismatch { named: usize, given: usize },
    #[error("a {kind} cannot be delivered as an in-process message (luring::Message has no form for it yet)")]
    NoMessageForm { kind: &'static str },
}
