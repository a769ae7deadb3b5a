//! Fuzzes the IPC frame decoder (src/ipc/decode.rs).
//!
//! Input: one mode byte, then the packet. Mode bit 0 clear: fds by
//! SCM_RIGHTS, and the receiver is told as many arrived as the packet's
//! header names (so inputs reach past the count check). Bit 0 set: fixed
//! slots in a table of `(mode >> 1) + 1` slots, no SCM_RIGHTS fds.
//!
//! Oracle: the decoder never panics, and whatever it accepts is the
//! canonical encoding of what it decodes to, routes included
//! (encode(decode(b)) == b, and decoding that again gives the same value).
#![no_main]

use libfuzzer_sys::fuzz_target;
use luring::ipc::{decode, encode_routed, FdMode};

fuzz_target!(|data: &[u8]| {
    let Some((&mode_byte, packet)) = data.split_first() else {
        return;
    };
    let (mode, scm_fds) = if mode_byte & 1 == 0 {
        (
            FdMode::ScmRights,
            packet.get(6).map_or(0, |&n| usize::from(n)),
        )
    } else {
        let table_size = u32::from(mode_byte >> 1) + 1;
        (FdMode::FixedSlots { table_size }, 0)
    };
    let Ok(decoded) = decode(packet, mode, scm_fds) else {
        return;
    };
    let again = encode_routed(&decoded.value, decoded.placement(), &decoded.routing)
        .expect("an accepted frame's value must be encodable");
    assert_eq!(again, packet, "accepted frame is not canonical");
    let twice = decode(&again, mode, scm_fds).expect("re-encoded frame must decode");
    assert_eq!(twice, decoded);
});
