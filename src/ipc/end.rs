//! The end frame: how a sandbox's runtime tells its host why it ended,
//! when the exit code alone cannot say it (docs/ipc.md "End frame").
//!
//! Invariants:
//! - An end frame has the [`FLAG_END`] header bit; [`super::decode`]
//!   rejects that bit (`UnknownFlags`), and the message encoder never sets
//!   it, so a message a script sends can never be taken for one.
//! - Its form is fixed: no fds, no channels, a payload that is exactly one
//!   string naming an [`EndReason`]; anything else with the bit set is
//!   [`FrameError::BadEndFrame`].

use super::{tag, FrameError, HEADER_LEN, MAGIC, VERSION};

/// Header flag: the frame is an end frame, not a message.
pub const FLAG_END: u8 = 0x02;

/// Why the runtime inside a sandbox ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The Lua heap hit its memory limit (an uncaught `not enough memory`).
    Memory,
    /// The runtime failed: the VM could not start (bad boot message, no
    /// ring) or luring itself failed. The details are on its stderr.
    Failed,
}

impl EndReason {
    /// The name on the wire, and the monitor notice's `reason`.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Memory => "memory",
            EndReason::Failed => "failed",
        }
    }

    fn from_name(name: &[u8]) -> Option<Self> {
        [EndReason::Memory, EndReason::Failed]
            .into_iter()
            .find(|r| r.name().as_bytes() == name)
    }
}

/// The end frame for `reason`.
pub fn encode_end(reason: EndReason) -> Vec<u8> {
    let name = reason.name().as_bytes();
    // Names are short: the string's length is a one-byte varint.
    debug_assert!(name.len() < 0x80);
    let payload_len = 2 + name.len();
    let mut frame = Vec::with_capacity(HEADER_LEN + payload_len);
    frame.extend_from_slice(&MAGIC);
    frame.extend_from_slice(&[VERSION, FLAG_END, 0, 0]);
    frame.extend_from_slice(&(payload_len as u32).to_le_bytes());
    frame.extend_from_slice(&[tag::STRING, name.len() as u8]);
    frame.extend_from_slice(name);
    frame
}

/// `None` when `packet` is not an end frame (no [`FLAG_END`] bit: decode
/// it as a message); otherwise its reason, or why it is malformed.
pub fn decode_end(packet: &[u8]) -> Option<Result<EndReason, FrameError>> {
    if packet.len() < HEADER_LEN || packet[..4] != MAGIC || packet[5] & FLAG_END == 0 {
        return None;
    }
    let header_ok = packet[4] == VERSION && packet[5] == FLAG_END && packet[6..8] == [0, 0];
    let payload = &packet[HEADER_LEN..];
    let claimed = u32::from_le_bytes(packet[8..12].try_into().expect("4 bytes")) as usize;
    let reason = match payload {
        [t, len, name @ ..]
            if header_ok
                && claimed == payload.len()
                && *t == tag::STRING
                && usize::from(*len) == name.len() =>
        {
            EndReason::from_name(name)
        }
        _ => None,
    };
    Some(reason.ok_or(FrameError::BadEndFrame))
}
