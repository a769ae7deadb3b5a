//! The codec's rules, one test per rule, and the property tests: valid
//! values round-trip; truncated and mutated frames are rejected or are the
//! canonical encoding of what they decode to; nothing panics.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use proptest::prelude::*;

use super::*;
use crate::Message;

fn s(text: &str) -> Value<'static> {
    Value::String(Cow::Owned(text.as_bytes().to_vec()))
}

fn object(members: Vec<(&str, Value<'static>)>) -> Value<'static> {
    Value::Object(
        members
            .into_iter()
            .map(|(k, v)| (Cow::Owned(k.as_bytes().to_vec()), v))
            .collect(),
    )
}

fn scm(value: &Value<'_>) -> Vec<u8> {
    encode(value, FdPlacement::ScmRights).expect("encodable")
}

/// A frame with a valid header around `payload`.
fn raw(flags: u8, fds: u8, channels: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[VERSION, flags, fds, channels]);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

fn reject(packet: &[u8], fds: usize) -> FrameError {
    decode(packet, FdMode::ScmRights, fds).expect_err("the frame must be rejected")
}

/// Decodes, checks the re-encoding is byte-identical, returns the value.
fn accept(packet: &[u8], mode: FdMode, fds: usize) -> Value<'_> {
    let decoded = decode(packet, mode, fds).expect("the frame must be accepted");
    let again = encode(&decoded.value, decoded.placement()).expect("re-encodable");
    assert_eq!(again, packet, "accepted frames are canonical");
    decoded.value
}

#[test]
fn every_kind_round_trips() {
    let value = Value::Array(vec![
        Value::Bool(true),
        Value::Bool(false),
        Value::Float(1.5),
        Value::Float(-0.0),
        Value::Float(f64::INFINITY),
        Value::Float(f64::from_bits(0x7ff8_dead_beef_0001)),
        Value::Integer(i64::MIN),
        Value::Integer(i64::MAX),
        s(""),
        s("text"),
        Value::Bytes(Cow::Borrowed(b"\0\xff")),
        Value::Array(vec![]),
        Value::Object(BTreeMap::new()),
        Value::Fd(0),
        Value::Channel(0),
        Value::Ip(IpAddress::V4(Ipv4Addr::new(127, 0, 0, 1))),
        Value::Ip(IpAddress::V6 {
            address: Ipv6Addr::LOCALHOST,
            scope_id: 7,
        }),
        object(vec![
            ("", Value::Fd(1)),
            ("nested", object(vec![("x", Value::Channel(1))])),
        ]),
    ]);
    let bytes = scm(&value);
    assert_eq!(accept(&bytes, FdMode::ScmRights, 2), value);
    assert_eq!(bytes[6], 2, "fd count");
    assert_eq!(bytes[7], 2, "channel count");
}

#[test]
fn kinds_that_look_alike_stay_apart() {
    let pairs = [
        (s("ab"), Value::Bytes(Cow::Borrowed(b"ab"))),
        (Value::Float(1.0), Value::Integer(1)),
        (Value::Float(0.0), Value::Float(-0.0)),
        (Value::Array(vec![]), Value::Object(BTreeMap::new())),
        (
            Value::Ip(IpAddress::V4(Ipv4Addr::new(1, 2, 3, 4))),
            Value::Ip(IpAddress::V6 {
                address: Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped(),
                scope_id: 0,
            }),
        ),
    ];
    for (a, b) in pairs {
        assert_ne!(scm(&a), scm(&b), "{a:?} and {b:?}");
        assert_ne!(a, b);
    }
}

/// The example frame of docs/ipc.md, byte by byte.
#[test]
fn layout_matches_the_documented_example() {
    let value = object(vec![("k", Value::Array(vec![Value::Bool(true), s("hi")]))]);
    let expected: &[u8] = &[
        b'L', b'U', b'R', b'M', 1, 0, 0, 0, 11, 0, 0, 0, // header
        0x08, 1, 1, b'k', // object, 1 member, key "k"
        0x07, 2, 0x02, 0x05, 2, b'h', b'i', // array of 2: true, "hi"
    ];
    assert_eq!(scm(&value), expected);
}

/// The routed example of docs/ipc.md: `{ a = <channel>, b = <channel> }`
/// from a sandbox to route 2, its channels naming routes 0 and 1.
#[test]
fn routes_travel_between_the_slots_and_the_value() {
    let value = object(vec![("a", Value::Channel(0)), ("b", Value::Channel(1))]);
    let routing = Routing {
        destination: 2,
        channels: vec![0, 1],
    };
    let frame = encode_routed(&value, FdPlacement::ScmRights, &routing).unwrap();
    let expected: &[u8] = &[
        b'L', b'U', b'R', b'M', 1, 0x04, 0, 2, 13, 0, 0, 0, // header: ROUTES, 2 channels
        2, 0, 1, // to route 2; channel 0 names route 0, channel 1 route 1
        0x08, 2, 1, b'a', 0x0a, 0, 1, b'b', 0x0a, 1, // { a = channel 0, b = channel 1 }
    ];
    assert_eq!(frame, expected);
    let decoded = decode(&frame, FdMode::ScmRights, 0).unwrap();
    assert_eq!((decoded.value, decoded.routing), (value.clone(), routing));
    // With fixed slots the routes come after the slot list.
    let fd_value = Value::Array(vec![Value::Fd(0), Value::Channel(0)]);
    let routing = Routing {
        destination: 0,
        channels: vec![MAX_ROUTES],
    };
    let frame = encode_routed(&fd_value, FdPlacement::FixedSlots(&[7]), &routing).unwrap();
    assert_eq!(
        &frame[5..],
        &[0x05, 1, 1, 12, 0, 0, 0, 7, 0, 0, 0, 0, 64, 0x07, 2, 0x09, 0, 0x0a, 0]
    );
    let decoded = decode(&frame, FdMode::FixedSlots { table_size: 8 }, 0).unwrap();
    assert_eq!(decoded.routing, routing);
    assert_eq!(decoded.fd_slots, vec![7]);
    // All 0 is no routes at all: the flag stays clear.
    let plain = encode_routed(&value, FdPlacement::ScmRights, &Routing::default()).unwrap();
    assert_eq!(plain, scm(&value));
    let zeros = Routing {
        destination: 0,
        channels: vec![0, 0],
    };
    assert_eq!(
        encode_routed(&value, FdPlacement::ScmRights, &zeros).unwrap(),
        plain
    );
}

#[test]
fn routes_are_checked() {
    let value = Value::Array(vec![Value::Channel(0)]);
    let routed = |destination, channel| {
        let routing = Routing {
            destination,
            channels: vec![channel],
        };
        encode_routed(&value, FdPlacement::ScmRights, &routing)
    };
    // Any 32-bit id (route tables draw them at random): the widest takes
    // five varint bytes.
    for (destination, channel) in [(u32::MAX, 0), (0, u32::MAX), (1 << 28, 127), (128, 1)] {
        let frame = routed(destination, channel).unwrap();
        let decoded = decode(&frame, FdMode::ScmRights, 0).unwrap();
        assert_eq!(decoded.routing.destination, destination);
        assert_eq!(decoded.routing.channel(0), channel);
    }
    assert_eq!(
        &routed(u32::MAX, 0).unwrap()[12..18],
        &[0xff, 0xff, 0xff, 0xff, 0x0f, 0]
    );
    // Encoder: one route per channel.
    let two = Routing {
        destination: 0,
        channels: vec![1, 1],
    };
    assert_eq!(
        encode_routed(&value, FdPlacement::ScmRights, &two),
        Err(FrameError::RouteCountMismatch {
            routes: 2,
            channels: 1
        })
    );
    // Decoder: header, 2 route bytes, then the value (3 bytes).
    let good = routed(1, 3).unwrap();
    assert_eq!(&good[12..14], &[1, 3]);
    let with = |at: usize, byte: u8| {
        let mut frame = good.clone();
        frame[at] = byte;
        frame
    };
    // A varint past 32 bits.
    let mut wide = routed(u32::MAX, 0).unwrap();
    wide[16] = 0x1f;
    assert_eq!(
        reject(&wide, 0),
        FrameError::NonCanonicalVarint { offset: 12 }
    );
    let mut overlong = with(12, 0x81);
    overlong[13] = 0;
    assert_eq!(
        reject(&overlong, 0),
        FrameError::NonCanonicalVarint { offset: 12 }
    );
    // Every route 0 under the flag: not canonical.
    let mut zeros = with(12, 0);
    zeros[13] = 0;
    assert_eq!(reject(&zeros, 0), FrameError::NeedlessRoutes);
    // A route list cut short.
    let mut short = good[..13].to_vec();
    short[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        reject(&short, 0),
        FrameError::Truncated {
            what: "the route list"
        }
    );
}

#[test]
fn zero_byte_packet_is_rejected() {
    assert_eq!(reject(&[], 0), FrameError::Empty);
}

#[test]
fn every_short_header_is_truncated() {
    let frame = scm(&Value::Bool(true));
    for len in 1..HEADER_LEN {
        assert_eq!(
            reject(&frame[..len], 0),
            FrameError::Truncated { what: "the header" },
            "{len} bytes"
        );
    }
}

#[test]
fn header_fields_are_checked() {
    let good = scm(&Value::Bool(true));
    let with = |at: usize, byte: u8| {
        let mut frame = good.clone();
        frame[at] = byte;
        frame
    };
    assert_eq!(reject(&with(0, b'X'), 0), FrameError::BadMagic);
    assert_eq!(reject(&with(3, b'm'), 0), FrameError::BadMagic);
    assert_eq!(
        reject(&with(4, 2), 0),
        FrameError::UnsupportedVersion { found: 2 }
    );
    assert_eq!(
        reject(&with(5, 0x02), 0),
        FrameError::UnknownFlags { flags: 0x02 }
    );
    assert_eq!(
        reject(&with(5, 0x81), 0),
        FrameError::UnknownFlags { flags: 0x81 }
    );
    assert_eq!(
        reject(&with(6, 254), 0),
        FrameError::TooManyFds {
            count: 254,
            limit: MAX_FDS
        }
    );
    assert_eq!(
        reject(&with(7, MAX_CHANNELS as u8 + 1), 0),
        FrameError::TooManyChannels {
            count: MAX_CHANNELS + 1,
            limit: MAX_CHANNELS
        }
    );
}

#[test]
fn fd_mode_must_match_the_channel() {
    let scm_frame = scm(&Value::Bool(true));
    assert!(matches!(
        decode(&scm_frame, FdMode::FixedSlots { table_size: 8 }, 0),
        Err(FrameError::FdModeMismatch { .. })
    ));
    let fixed = encode(&Value::Bool(true), FdPlacement::FixedSlots(&[])).unwrap();
    assert!(matches!(
        reject(&fixed, 0),
        FrameError::FdModeMismatch { .. }
    ));
    accept(&fixed, FdMode::FixedSlots { table_size: 8 }, 0);
}

#[test]
fn payload_length_must_match_the_packet() {
    let frame = scm(&s("abc"));
    let mut longer = frame.clone();
    longer.push(0);
    assert_eq!(
        reject(&longer, 0),
        FrameError::LengthMismatch {
            claimed: frame.len() - HEADER_LEN,
            actual: frame.len() - HEADER_LEN + 1
        }
    );
    assert!(matches!(
        reject(&frame[..frame.len() - 1], 0),
        FrameError::LengthMismatch { .. }
    ));
}

#[test]
fn oversize_packet_is_rejected_before_parsing() {
    let packet = vec![0u8; MAX_FRAME_BYTES + 1];
    assert_eq!(
        reject(&packet, 0),
        FrameError::TooLarge {
            len: MAX_FRAME_BYTES + 1,
            limit: MAX_FRAME_BYTES
        }
    );
}

#[test]
fn bytes_after_the_value_are_rejected() {
    let packet = raw(0, 0, 0, &[tag::TRUE, tag::TRUE]);
    assert_eq!(reject(&packet, 0), FrameError::TrailingBytes { count: 1 });
}

#[test]
fn unknown_tags_are_rejected() {
    for bad in [0x00, 0x0D, 0x7F, 0xFF] {
        assert_eq!(
            reject(&raw(0, 0, 0, &[bad]), 0),
            FrameError::BadTag {
                tag: bad,
                offset: HEADER_LEN
            }
        );
    }
    // Inside a table too.
    assert_eq!(
        reject(&raw(0, 0, 0, &[tag::ARRAY, 1, 0x00]), 0),
        FrameError::BadTag {
            tag: 0,
            offset: HEADER_LEN + 2
        }
    );
}

#[test]
fn missing_value_is_truncated() {
    assert!(matches!(
        reject(&raw(0, 0, 0, &[]), 0),
        FrameError::Truncated { .. }
    ));
    for payload in [
        &[tag::FLOAT, 0, 0, 0][..],
        &[tag::INTEGER, 1],
        &[tag::STRING, 3, b'a'],
        &[tag::STRING],
        &[tag::IPV4, 1, 2, 3],
        &[tag::IPV6, 0, 0],
        &[tag::ARRAY, 2, tag::TRUE, tag::STRING],
        &[tag::OBJECT, 1, 1, b'k'],
        &[tag::OBJECT, 1, 5, b'k', tag::TRUE],
    ] {
        assert!(
            matches!(
                reject(&raw(0, 0, 0, payload), 0),
                FrameError::Truncated { .. }
            ),
            "{payload:?}"
        );
    }
}

#[test]
fn lengths_must_be_minimal_varints() {
    let cases: [&[u8]; 4] = [
        &[tag::STRING, 0x80, 0x00],                  // 0 in two bytes
        &[tag::STRING, 0x81, 0x00, b'a'],            // 1 in two bytes
        &[tag::ARRAY, 0x80, 0x80, 0x80, 0x80, 0x00], // five bytes of 0
        &[tag::ARRAY, 0xff, 0xff, 0xff, 0xff, 0x1f], // over 32 bits
    ];
    for payload in cases {
        assert_eq!(
            reject(&raw(0, 0, 0, payload), 0),
            FrameError::NonCanonicalVarint {
                offset: HEADER_LEN + 1
            },
            "{payload:?}"
        );
    }
    assert!(matches!(
        reject(
            &raw(0, 0, 0, &[tag::ARRAY, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            0
        ),
        FrameError::NonCanonicalVarint { .. }
    ));
    // The largest length the encoder writes in two bytes is accepted.
    let text = "x".repeat(200);
    accept(&scm(&s(&text)), FdMode::ScmRights, 0);
}

fn nested_arrays(depth: usize) -> Value<'static> {
    let mut value = Value::Bool(true);
    for _ in 0..depth {
        value = Value::Array(vec![value]);
    }
    value
}

#[test]
fn depth_is_bounded_on_both_sides() {
    accept(&scm(&nested_arrays(MAX_DEPTH)), FdMode::ScmRights, 0);
    assert_eq!(
        encode(&nested_arrays(MAX_DEPTH + 1), FdPlacement::ScmRights),
        Err(FrameError::TooDeep { limit: MAX_DEPTH })
    );
    let mut payload = Vec::new();
    for _ in 0..=MAX_DEPTH {
        payload.extend_from_slice(&[tag::OBJECT, 1, 0]);
    }
    payload.push(tag::TRUE);
    assert_eq!(
        reject(&raw(0, 0, 0, &payload), 0),
        FrameError::TooDeep { limit: MAX_DEPTH }
    );
    // A hostile depth far beyond the bound fails at the bound, no deeper.
    let deep = [tag::ARRAY, 1].repeat(50_000);
    assert_eq!(
        reject(&raw(0, 0, 0, &deep), 0),
        FrameError::TooDeep { limit: MAX_DEPTH }
    );
}

#[test]
fn table_size_is_bounded_before_allocation() {
    let mut payload = vec![tag::ARRAY];
    encode::write_varint(&mut payload, MAX_TABLE_MEMBERS as u32 + 1);
    payload.resize(payload.len() + MAX_TABLE_MEMBERS + 1, tag::TRUE);
    assert_eq!(
        reject(&raw(0, 0, 0, &payload), 0),
        FrameError::TableTooLarge {
            count: MAX_TABLE_MEMBERS + 1,
            limit: MAX_TABLE_MEMBERS
        }
    );
    assert_eq!(
        encode(
            &Value::Array(vec![Value::Bool(true); MAX_TABLE_MEMBERS + 1]),
            FdPlacement::ScmRights
        ),
        Err(FrameError::TableTooLarge {
            count: MAX_TABLE_MEMBERS + 1,
            limit: MAX_TABLE_MEMBERS
        })
    );
    accept(
        &scm(&Value::Array(vec![Value::Bool(true); MAX_TABLE_MEMBERS])),
        FdMode::ScmRights,
        0,
    );
    // A claim the bytes present cannot hold is refused before any member
    // is read or reserved.
    let mut claim = vec![tag::ARRAY];
    encode::write_varint(&mut claim, 4000);
    claim.extend_from_slice(&[tag::TRUE; 3]);
    assert_eq!(
        reject(&raw(0, 0, 0, &claim), 0),
        FrameError::CountExceedsBytes {
            count: 4000,
            offset: HEADER_LEN + 1
        }
    );
    // Objects need two bytes a member.
    assert!(matches!(
        reject(&raw(0, 0, 0, &[tag::OBJECT, 2, 0, tag::TRUE]), 0),
        FrameError::CountExceedsBytes { count: 2, .. }
    ));
}

#[test]
fn total_members_are_bounded() {
    let full = Value::Array(vec![Value::Bool(false); MAX_TABLE_MEMBERS]);
    let tables = MAX_TOTAL_MEMBERS / MAX_TABLE_MEMBERS;
    // `tables` full arrays plus the tables themselves and the root: over.
    let too_many = Value::Array(vec![full.clone(); tables]);
    assert_eq!(
        encode(&too_many, FdPlacement::ScmRights),
        Err(FrameError::TooManyMembers {
            limit: MAX_TOTAL_MEMBERS
        })
    );
    // The same bytes, hand-built, are refused by the decoder.
    let mut payload = vec![tag::ARRAY];
    encode::write_varint(&mut payload, tables as u32);
    for _ in 0..tables {
        payload.push(tag::ARRAY);
        encode::write_varint(&mut payload, MAX_TABLE_MEMBERS as u32);
        payload.resize(payload.len() + MAX_TABLE_MEMBERS, tag::FALSE);
    }
    assert_eq!(
        reject(&raw(0, 0, 0, &payload), 0),
        FrameError::TooManyMembers {
            limit: MAX_TOTAL_MEMBERS
        }
    );
    // Exactly at the bound is accepted: the root, `tables` arrays, and
    // members filling the rest.
    let mut members = vec![full; tables - 1];
    members.push(Value::Array(vec![
        Value::Bool(false);
        MAX_TOTAL_MEMBERS
            - 1
            - tables
            - (tables - 1) * MAX_TABLE_MEMBERS
    ]));
    accept(&scm(&Value::Array(members)), FdMode::ScmRights, 0);
}

#[test]
fn strings_and_keys_are_bounded() {
    let mut claim = vec![tag::STRING];
    encode::write_varint(&mut claim, MAX_STRING_BYTES as u32 + 1);
    assert_eq!(
        reject(&raw(0, 0, 0, &claim), 0),
        FrameError::StringTooLong {
            len: MAX_STRING_BYTES + 1,
            limit: MAX_STRING_BYTES
        },
        "the claim is checked before the bytes are looked for"
    );
    claim[0] = tag::BYTES;
    assert!(matches!(
        reject(&raw(0, 0, 0, &claim), 0),
        FrameError::StringTooLong { .. }
    ));
    let long = Value::Bytes(Cow::Owned(vec![7; MAX_STRING_BYTES + 1]));
    assert!(matches!(
        encode(&long, FdPlacement::ScmRights),
        Err(FrameError::StringTooLong { .. })
    ));
    accept(
        &scm(&Value::Bytes(Cow::Owned(vec![7; MAX_STRING_BYTES]))),
        FdMode::ScmRights,
        0,
    );

    let mut key = vec![tag::OBJECT, 1];
    encode::write_varint(&mut key, MAX_KEY_BYTES as u32 + 1);
    key.resize(key.len() + MAX_KEY_BYTES + 1, b'k');
    key.push(tag::TRUE);
    assert_eq!(
        reject(&raw(0, 0, 0, &key), 0),
        FrameError::KeyTooLong {
            len: MAX_KEY_BYTES + 1,
            limit: MAX_KEY_BYTES
        }
    );
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(
        encode(
            &object(vec![(&long_key, Value::Bool(true))]),
            FdPlacement::ScmRights
        ),
        Err(FrameError::KeyTooLong { .. })
    ));
}

#[test]
fn oversize_message_is_refused_by_the_encoder() {
    let chunk = s(&"x".repeat(MAX_STRING_BYTES));
    let value = Value::Array(vec![chunk.clone(), chunk]);
    assert!(matches!(
        encode(&value, FdPlacement::ScmRights),
        Err(FrameError::TooLarge {
            limit: MAX_FRAME_BYTES,
            ..
        })
    ));
}

#[test]
fn object_keys_are_strictly_sorted() {
    let member = |key: &[u8]| {
        let mut out = vec![key.len() as u8];
        out.extend_from_slice(key);
        out.push(tag::TRUE);
        out
    };
    let obj = |keys: &[&[u8]]| {
        let mut payload = vec![tag::OBJECT, keys.len() as u8];
        for key in keys {
            payload.extend(member(key));
        }
        raw(0, 0, 0, &payload)
    };
    accept(&obj(&[b"", b"a", b"ab", b"b"]), FdMode::ScmRights, 0);
    assert_eq!(
        reject(&obj(&[b"a", b"a"]), 0),
        FrameError::DuplicateKey {
            offset: HEADER_LEN + 5
        }
    );
    assert_eq!(
        reject(&obj(&[b"b", b"a"]), 0),
        FrameError::KeysOutOfOrder {
            offset: HEADER_LEN + 5
        }
    );
    assert!(matches!(
        reject(&obj(&[b"ab", b"a"]), 0),
        FrameError::KeysOutOfOrder { .. }
    ));
    // Order is bytewise, not by length or as signed bytes.
    accept(&obj(&[b"\x7f", b"\x80", b"\xff"]), FdMode::ScmRights, 0);
    // A duplicate key further in, after a nested table.
    let mut payload = vec![tag::OBJECT, 2, 1, b'a', tag::ARRAY, 1, tag::TRUE];
    payload.extend(member(b"a"));
    assert!(matches!(
        reject(&raw(0, 0, 0, &payload), 0),
        FrameError::DuplicateKey { .. }
    ));
}

#[test]
fn fd_references_are_checked() {
    let two = Value::Array(vec![Value::Fd(0), Value::Fd(1)]);
    let frame = scm(&two);
    accept(&frame, FdMode::ScmRights, 2);
    assert_eq!(
        reject(&frame, 1),
        FrameError::FdCountMismatch {
            named: 2,
            received: 1
        }
    );
    assert_eq!(
        reject(&frame, 3),
        FrameError::FdCountMismatch {
            named: 2,
            received: 3
        },
        "an extra descriptor rejects the frame"
    );
    assert_eq!(
        reject(&raw(0, 2, 0, &[tag::ARRAY, 2, tag::FD, 1, tag::FD, 0]), 2),
        FrameError::FdReference {
            index: 1,
            expected: 0
        }
    );
    assert_eq!(
        reject(&raw(0, 2, 0, &[tag::ARRAY, 2, tag::FD, 0, tag::FD, 0]), 2),
        FrameError::FdReference {
            index: 0,
            expected: 1
        },
        "one fd referenced twice"
    );
    assert_eq!(
        reject(&raw(0, 1, 0, &[tag::ARRAY, 2, tag::FD, 0, tag::FD, 1]), 1),
        FrameError::FdReferencesExceedList { named: 1 }
    );
    assert_eq!(
        reject(&raw(0, 2, 0, &[tag::FD, 0]), 2),
        FrameError::UnusedFds {
            named: 2,
            referenced: 1
        }
    );
    assert_eq!(
        reject(&raw(0, 0, 0, &[tag::FD, 0]), 0),
        FrameError::FdReferencesExceedList { named: 0 },
        "a forged fd reference with no fd"
    );
    assert_eq!(
        encode(&Value::Fd(3), FdPlacement::ScmRights),
        Err(FrameError::FdReference {
            index: 3,
            expected: 0
        })
    );
    let too_many = Value::Array((0..=MAX_FDS as u32).map(Value::Fd).collect());
    assert!(matches!(
        encode(&too_many, FdPlacement::ScmRights),
        Err(FrameError::TooManyFds { .. })
    ));
    let most = Value::Array((0..MAX_FDS as u32).map(Value::Fd).collect());
    accept(&scm(&most), FdMode::ScmRights, MAX_FDS);
}

#[test]
fn channel_references_are_checked() {
    let frame = scm(&Value::Array(vec![Value::Channel(0), Value::Channel(1)]));
    accept(&frame, FdMode::ScmRights, 0);
    assert_eq!(
        reject(
            &raw(0, 0, 2, &[tag::ARRAY, 2, tag::CHANNEL, 1, tag::CHANNEL, 0]),
            0
        ),
        FrameError::ChannelReference {
            index: 1,
            expected: 0
        }
    );
    assert_eq!(
        reject(
            &raw(0, 0, 1, &[tag::ARRAY, 2, tag::CHANNEL, 0, tag::CHANNEL, 1]),
            0
        ),
        FrameError::ChannelReferencesExceedList { named: 1 }
    );
    assert_eq!(
        reject(&raw(0, 0, 3, &[tag::CHANNEL, 0]), 0),
        FrameError::UnusedChannels {
            named: 3,
            referenced: 1
        }
    );
    let too_many = Value::Array((0..=MAX_CHANNELS as u32).map(Value::Channel).collect());
    assert!(matches!(
        encode(&too_many, FdPlacement::ScmRights),
        Err(FrameError::TooManyChannels { .. })
    ));
    assert!(matches!(
        encode(&Value::Channel(1), FdPlacement::ScmRights),
        Err(FrameError::ChannelReference { .. })
    ));
}

#[test]
fn fixed_slots_are_checked() {
    let value = Value::Array(vec![Value::Fd(0), Value::Fd(1)]);
    let frame = encode(&value, FdPlacement::FixedSlots(&[9, 4])).unwrap();
    assert_eq!(
        &frame[HEADER_LEN..HEADER_LEN + 8],
        &[9, 0, 0, 0, 4, 0, 0, 0]
    );
    let decoded = decode(&frame, FdMode::FixedSlots { table_size: 10 }, 0).unwrap();
    assert_eq!(decoded.fd_slots, vec![9, 4]);
    assert_eq!(decoded.value, value);
    assert_eq!(
        decode(&frame, FdMode::FixedSlots { table_size: 9 }, 0),
        Err(FrameError::SlotOutOfRange {
            slot: 9,
            table_size: 9
        })
    );
    assert_eq!(
        decode(&frame, FdMode::FixedSlots { table_size: 10 }, 1),
        Err(FrameError::FdCountMismatch {
            named: 0,
            received: 1
        }),
        "SCM_RIGHTS descriptors on a fixed-slot channel are extras"
    );
    let mut duplicate = frame.clone();
    duplicate[HEADER_LEN + 4] = 9;
    assert_eq!(
        decode(&duplicate, FdMode::FixedSlots { table_size: 10 }, 0),
        Err(FrameError::DuplicateSlot { slot: 9 })
    );
    assert!(matches!(
        decode(
            &frame[..HEADER_LEN + 6],
            FdMode::FixedSlots { table_size: 10 },
            0
        ),
        Err(FrameError::LengthMismatch { .. })
    ));
    let short = raw(FLAG_FIXED_SLOTS, 2, 0, &[9, 0, 0, 0, 4, 0]);
    assert_eq!(
        decode(&short, FdMode::FixedSlots { table_size: 10 }, 0),
        Err(FrameError::Truncated {
            what: "the fixed-file slot list"
        })
    );
    assert_eq!(
        encode(&value, FdPlacement::FixedSlots(&[1])),
        Err(FrameError::SlotCountMismatch { slots: 1, fds: 2 })
    );
    assert_eq!(
        encode(&value, FdPlacement::FixedSlots(&[3, 3])),
        Err(FrameError::DuplicateSlot { slot: 3 })
    );
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().expect("pipe")
}

/// True when every copy of the pipe's write end is closed: a read sees EOF.
fn write_end_closed(read_end: &OwnedFd) -> bool {
    nix::fcntl::fcntl(
        read_end,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .expect("set O_NONBLOCK");
    let mut byte = [0u8; 1];
    matches!(nix::unistd::read(read_end, &mut byte), Ok(0))
}

#[test]
fn decode_with_fds_closes_every_descriptor_of_a_rejected_frame() {
    // One frame per rejection class that involves descriptors.
    let frames = [
        scm(&Value::Array(vec![Value::Fd(0)])), // extra fd
        raw(0, 2, 0, &[tag::FD, 0]),            // unused fd
        raw(0, 2, 0, &[tag::ARRAY, 2, tag::FD, 1, tag::FD, 0]), // order
        raw(0, 2, 0, &[0xEE]),                  // bad tag
        Vec::new(),                             // empty
    ];
    for frame in frames {
        let (read_a, write_a) = pipe();
        let (read_b, write_b) = pipe();
        let result = decode_with_fds(&frame, vec![write_a, write_b]);
        assert!(result.is_err(), "{frame:?}");
        drop(result);
        assert!(
            write_end_closed(&read_a) && write_end_closed(&read_b),
            "{frame:?}"
        );
    }
}

#[test]
fn decode_with_fds_hands_out_descriptors_in_order() {
    let (read_a, write_a) = pipe();
    let (read_b, write_b) = pipe();
    let (raw_a, raw_b) = (write_a.as_raw_fd(), write_b.as_raw_fd());
    let frame = scm(&object(vec![("a", Value::Fd(0)), ("b", Value::Fd(1))]));
    let received = decode_with_fds(&frame, vec![write_a, write_b]).unwrap();
    assert_eq!(received.fds[0].as_raw_fd(), raw_a);
    assert_eq!(received.fds[1].as_raw_fd(), raw_b);
    drop(received);
    assert!(write_end_closed(&read_a) && write_end_closed(&read_b));
}

#[test]
fn messages_encode_with_capabilities_in_member_order() {
    let (_read_a, write_a) = pipe();
    let (_read_b, write_b) = pipe();
    let (raw_a, raw_b) = (write_a.as_raw_fd(), write_b.as_raw_fd());
    // Key order, not insertion order, decides which fd is first.
    let message = Message::object([
        ("z", Message::Fd(write_a)),
        (
            "a",
            Message::array([Message::from("x"), Message::Fd(write_b), Message::from(2.5)]),
        ),
    ]);
    let frame = encode_message(&message, FdPlacement::ScmRights).unwrap();
    assert_eq!(
        frame
            .fds
            .iter()
            .map(|fd| fd.as_raw_fd())
            .collect::<Vec<_>>(),
        vec![raw_b, raw_a]
    );
    assert_eq!(
        message_fds(&message)
            .unwrap()
            .iter()
            .map(|fd| fd.as_raw_fd())
            .collect::<Vec<_>>(),
        vec![raw_b, raw_a]
    );
    let decoded = accept(&frame.bytes, FdMode::ScmRights, 2);
    assert_eq!(
        decoded,
        object(vec![
            (
                "a",
                Value::Array(vec![s("x"), Value::Fd(0), Value::Float(2.5)])
            ),
            ("z", Value::Fd(1)),
        ])
    );
    let fixed = encode_message(&message, FdPlacement::FixedSlots(&[5, 6])).unwrap();
    accept(&fixed.bytes, FdMode::FixedSlots { table_size: 7 }, 0);
}

#[test]
fn messages_over_the_bounds_are_refused() {
    let mut deep = Message::from(true);
    for _ in 0..=MAX_DEPTH {
        deep = Message::array([deep]);
    }
    assert_eq!(
        encode_message(&deep, FdPlacement::ScmRights).unwrap_err(),
        FrameError::TooDeep { limit: MAX_DEPTH }
    );
    let wide = Message::array((0..=MAX_TABLE_MEMBERS).map(|_| Message::from(true)));
    assert!(matches!(
        encode_message(&wide, FdPlacement::ScmRights),
        Err(FrameError::TableTooLarge { .. })
    ));
}

/// Emilua's flat messages (spec/actors.md §6) keep their meaning: a scalar
/// is the root value; a dictionary is an object of scalars.
#[test]
fn emilua_flat_messages_map_to_flat_values() {
    let dictionary = Message::object([
        ("n", Message::from(f64::NAN)),
        ("s", Message::from("str")),
        ("t", Message::from(true)),
    ]);
    let frame = encode_message(&dictionary, FdPlacement::ScmRights).unwrap();
    let value = accept(&frame.bytes, FdMode::ScmRights, 0);
    let Value::Object(members) = value else {
        panic!("a dictionary is an object");
    };
    assert!(matches!(members[&b"n"[..]], Value::Float(n) if n.is_nan()));
    assert_eq!(members[&b"s"[..]], s("str"));
    let number = Message::from(-1.25);
    let scalar = encode_message(&number, FdPlacement::ScmRights).unwrap();
    assert_eq!(
        accept(&scalar.bytes, FdMode::ScmRights, 0),
        Value::Float(-1.25)
    );
}

// ---- property tests ----

/// Any value the format can carry, with `Fd`/`Channel` placeholders that
/// `number_capabilities` renumbers into member order.
fn any_value() -> impl Strategy<Value = Value<'static>> {
    let bytes = proptest::collection::vec(any::<u8>(), 0..12);
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(|bits| Value::Float(f64::from_bits(bits))),
        any::<i64>().prop_map(Value::Integer),
        bytes.clone().prop_map(|b| Value::String(Cow::Owned(b))),
        bytes.prop_map(|b| Value::Bytes(Cow::Owned(b))),
        Just(Value::Fd(0)),
        Just(Value::Channel(0)),
        any::<[u8; 4]>().prop_map(|a| Value::Ip(IpAddress::V4(a.into()))),
        (any::<[u8; 16]>(), any::<u32>()).prop_map(|(a, scope_id)| Value::Ip(IpAddress::V6 {
            address: a.into(),
            scope_id
        })),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        // Keys from a small alphabet, so siblings share prefixes.
        let key = proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0xff)], 0..4);
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(key.prop_map(Cow::Owned), inner, 0..6)
                .prop_map(Value::Object),
        ]
    })
}

/// Numbers fds and channels in member order; returns their counts.
fn number_capabilities(value: &mut Value<'_>) -> (u32, u32) {
    let (mut fds, mut channels) = (0, 0);
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Fd(k) => {
                *k = fds;
                fds += 1;
            }
            Value::Channel(k) => {
                *k = channels;
                channels += 1;
            }
            // Reversed so the stack pops them in member order.
            Value::Array(items) => stack.extend(items.iter_mut().rev()),
            Value::Object(members) => stack.extend(members.values_mut().rev()),
            _ => {}
        }
    }
    (fds, channels)
}

/// Routes for a frame with `channels` channels from `seed`: half the time
/// none (all 0), else a destination and one route per channel, each in
/// small (`0..=MAX_ROUTES`) or any 32-bit id, as a route table draws them
/// (as decoded: no channel routes when all are 0).
fn routing_from(seed: &[u32], channels: u32) -> Routing {
    let route = |k: usize| {
        seed.get(k)
            .map_or(0, |&r| if r % 3 == 0 { r } else { r % (MAX_ROUTES + 1) })
    };
    if seed.first().is_none_or(|s| s % 2 == 0) {
        return Routing::default();
    }
    let mut routing = Routing {
        destination: route(1) % 3,
        channels: (0..channels as usize).map(|k| route(k + 2)).collect(),
    };
    if routing.channels.iter().all(|&r| r == 0) {
        routing.channels.clear();
    }
    routing
}

/// A valid value, how its frame carries fds, and the frame.
fn valid_frame() -> impl Strategy<Value = (Value<'static>, FdMode, Vec<u8>)> {
    (
        any_value(),
        any::<bool>(),
        any::<u32>(),
        proptest::collection::vec(any::<u32>(), 0..8),
    )
        .prop_filter_map(
            "over the fd or channel bound",
            |(mut value, fixed, slot_base, route_seed)| {
                let (fds, channels) = number_capabilities(&mut value);
                if fds as usize > MAX_FDS || channels as usize > MAX_CHANNELS {
                    return None;
                }
                let routing = routing_from(&route_seed, channels);
                let (mode, frame) = if fixed {
                    // Distinct slots in a scrambled order.
                    let slots: Vec<u32> = (0..fds).map(|k| (slot_base % 64) ^ (k * 3)).collect();
                    let table_size = slots.iter().max().map_or(1, |max| max + 1);
                    let frame =
                        encode_routed(&value, FdPlacement::FixedSlots(&slots), &routing).ok()?;
                    (FdMode::FixedSlots { table_size }, frame)
                } else {
                    (
                        FdMode::ScmRights,
                        encode_routed(&value, FdPlacement::ScmRights, &routing).ok()?,
                    )
                };
                Some((value, mode, frame))
            },
        )
}

/// What a receiver would pass for a packet: the fd count its header names
/// when the frame came by SCM_RIGHTS (so mutations reach past the count
/// check), none for fixed slots.
fn scm_fds_for(packet: &[u8], mode: FdMode) -> usize {
    match mode {
        FdMode::ScmRights if packet.len() > 6 => usize::from(packet[6]),
        _ => 0,
    }
}

/// The property every packet must have: rejected, or the canonical
/// encoding of what it decodes to.
fn rejected_or_canonical(packet: &[u8], mode: FdMode) -> Result<(), TestCaseError> {
    if let Ok(decoded) = decode(packet, mode, scm_fds_for(packet, mode)) {
        let again = encode_routed(&decoded.value, decoded.placement(), &decoded.routing);
        prop_assert_eq!(again.as_deref(), Ok(packet), "accepted but not canonical");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_values_round_trip((value, mode, frame) in valid_frame()) {
        let decoded = decode(&frame, mode, scm_fds_for(&frame, mode)).expect("valid frame");
        prop_assert_eq!(&decoded.value, &value);
        let again = encode_routed(&decoded.value, decoded.placement(), &decoded.routing).unwrap();
        prop_assert_eq!(again, frame);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every truncation (with the header's length left as it was, and
    /// patched to match) and every single-byte replacement.
    #[test]
    fn truncated_and_mutated_frames_are_rejected_or_canonical(
        (_value, mode, frame) in valid_frame()
    ) {
        for len in 0..frame.len() {
            prop_assert!(decode(&frame[..len], mode, scm_fds_for(&frame, mode)).is_err());
            if len >= HEADER_LEN {
                let mut patched = frame[..len].to_vec();
                patched[8..12].copy_from_slice(&((len - HEADER_LEN) as u32).to_le_bytes());
                prop_assert!(
                    decode(&patched, mode, scm_fds_for(&patched, mode)).is_err(),
                    "a strict prefix of a valid value is never a valid value"
                );
            }
        }
        let mut mutated = frame.clone();
        for at in 0..frame.len() {
            for byte in 0..=u8::MAX {
                if byte == frame[at] {
                    continue;
                }
                mutated[at] = byte;
                rejected_or_canonical(&mutated, mode)?;
            }
            mutated[at] = frame[at];
        }
    }
}

// ---- receiving packets (SECURITY.md case 24, MSG_CTRUNC / MSG_TRUNC) ----

mod receiving {
    use std::io::IoSlice;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};

    use nix::sys::socket::{
        sendmsg, setsockopt, socketpair, sockopt, AddressFamily, ControlMessage, MsgFlags,
        SockFlag, SockType,
    };

    use super::super::receive::receive_with_control;
    use super::super::*;
    use super::{pipe, scm, write_end_closed};

    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair")
    }

    fn send(socket: &OwnedFd, bytes: &[u8], fds: &[OwnedFd]) {
        let raw: Vec<i32> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
        let control = [ControlMessage::ScmRights(&raw)];
        let control: &[ControlMessage] = if fds.is_empty() { &[] } else { &control };
        sendmsg::<()>(
            socket.as_raw_fd(),
            &[IoSlice::new(bytes)],
            control,
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");
    }

    /// `copies` duplicates of a pipe's write end, and its read end.
    fn write_ends(copies: usize) -> (OwnedFd, Vec<OwnedFd>) {
        let (read, write) = pipe();
        let dups = (0..copies)
            .map(|_| write.try_clone().expect("dup"))
            .collect();
        (read, dups)
    }

    #[test]
    fn a_frame_and_its_fds_arrive_close_on_exec() {
        let (tx, rx) = seqpacket_pair();
        let (read, writes) = write_ends(2);
        let frame = scm(&Value::Array(vec![Value::Fd(0), Value::Fd(1)]));
        send(&tx, &frame, &writes);
        drop(writes);
        let mut buf = vec![0; MAX_FRAME_BYTES];
        let packet = receive_packet(rx.as_fd(), &mut buf)
            .unwrap()
            .expect("a packet");
        assert_eq!(&buf[..packet.len], &frame[..]);
        for fd in &packet.fds {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
            assert_ne!(
                flags & libc::FD_CLOEXEC,
                0,
                "received fds are close-on-exec"
            );
        }
        let received = decode_with_fds(&buf[..packet.len], packet.fds).unwrap();
        assert_eq!(received.fds.len(), 2);
        drop(received);
        assert!(write_end_closed(&read));
    }

    #[test]
    fn credentials_with_a_frame_are_refused_and_its_fds_closed() {
        let (tx, rx) = seqpacket_pair();
        // A receiver that (wrongly) asks for credentials gets them with
        // every packet; the frame is refused rather than trusted.
        setsockopt(&rx, sockopt::PassCred, &true).expect("SO_PASSCRED");
        let (read, writes) = write_ends(3);
        send(&tx, &scm(&Value::Bool(true)), &writes);
        drop(writes);
        let mut buf = vec![0; MAX_FRAME_BYTES];
        let error = receive_packet(rx.as_fd(), &mut buf).unwrap_err();
        assert!(
            matches!(
                error,
                ReceiveError::UnexpectedControlMessage {
                    level: libc::SOL_SOCKET,
                    kind: libc::SCM_CREDENTIALS
                }
            ),
            "{error:?}"
        );
        assert!(write_end_closed(&read), "the frame's fds were closed");
    }

    #[test]
    fn truncated_control_data_is_detected_and_nothing_leaks() {
        let (tx, rx) = seqpacket_pair();
        let (read, writes) = write_ends(MAX_FDS);
        send(&tx, &scm(&Value::Bool(true)), &writes);
        drop(writes);
        let mut buf = vec![0; MAX_FRAME_BYTES];
        // Room for a header and one fd: the kernel installs what fits,
        // sets MSG_CTRUNC and drops the rest.
        let error = receive_with_control(rx.as_fd(), &mut buf, 24).unwrap_err();
        assert!(matches!(error, ReceiveError::ControlTruncated), "{error:?}");
        assert!(
            write_end_closed(&read),
            "installed and dropped fds are all closed"
        );
    }

    #[test]
    fn the_full_fd_allowance_fits_the_control_space() {
        let (tx, rx) = seqpacket_pair();
        let (read, writes) = write_ends(MAX_FDS);
        let frame = scm(&Value::Array((0..MAX_FDS as u32).map(Value::Fd).collect()));
        send(&tx, &frame, &writes);
        drop(writes);
        let mut buf = vec![0; MAX_FRAME_BYTES];
        let packet = receive_packet(rx.as_fd(), &mut buf)
            .unwrap()
            .expect("a packet");
        assert_eq!(packet.fds.len(), MAX_FDS);
        let received = decode_with_fds(&buf[..packet.len], packet.fds).unwrap();
        drop(received);
        assert!(write_end_closed(&read));
    }

    #[test]
    fn an_oversize_packet_is_refused_with_its_fds_closed() {
        let (tx, rx) = seqpacket_pair();
        let (read, writes) = write_ends(1);
        send(&tx, &vec![0x55; 4096], &writes);
        drop(writes);
        let mut buf = vec![0; 1024];
        let error = receive_packet(rx.as_fd(), &mut buf).unwrap_err();
        assert!(
            matches!(error, ReceiveError::PacketTooLarge { limit: 1024 }),
            "{error:?}"
        );
        assert!(write_end_closed(&read));
    }

    #[test]
    fn a_zero_length_packet_or_end_of_stream_means_the_peer_is_gone() {
        let (tx, rx) = seqpacket_pair();
        let (read, writes) = write_ends(1);
        send(&tx, &[], &writes);
        drop(writes);
        let mut buf = vec![0; 64];
        assert!(receive_packet(rx.as_fd(), &mut buf).unwrap().is_none());
        assert!(
            write_end_closed(&read),
            "fds with a zero-length packet are closed"
        );
        drop(tx);
        assert!(receive_packet(rx.as_fd(), &mut buf).unwrap().is_none());
    }
}

// ---- frames delivered as in-process messages ----

mod delivery {
    use std::borrow::Cow;
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::super::*;
    use super::{object, pipe, s, scm, write_end_closed};
    use crate::actor::mailbox::Mailbox;
    use crate::{ActorAddress, Message};

    /// What a receiver would get for `frame`: duplicates of its fds.
    fn received_fds(frame: &Frame<'_>) -> Vec<OwnedFd> {
        frame
            .fds
            .iter()
            .map(|fd| fd.try_clone_to_owned().expect("dup"))
            .collect()
    }

    #[test]
    fn a_message_survives_the_round_trip_with_its_capabilities() {
        let (_read, write) = pipe();
        let inbox = Mailbox::new();
        let address = ActorAddress::new(inbox.clone());
        let message = Message::object([
            ("fd", Message::Fd(write)),
            (
                "list",
                Message::array([
                    Message::from(1.5),
                    Message::from("two"),
                    Message::from(true),
                ]),
            ),
            ("reply", Message::Address(address)),
            ("nested", Message::object([("deeper", Message::array([]))])),
        ]);
        let frame = encode_message(&message, FdPlacement::ScmRights).unwrap();
        let fds = received_fds(&frame);
        let fd_number = fds[0].as_raw_fd();
        let channels: Vec<ActorAddress> = frame.channels.iter().map(|&a| a.clone()).collect();
        let received = decode_with_fds(&frame.bytes, fds).unwrap();
        let delivered = received.into_message(channels).unwrap();

        assert_eq!(
            delivered
                .get("fd")
                .and_then(Message::as_fd)
                .map(|fd| fd.as_raw_fd()),
            Some(fd_number)
        );
        match delivered.get("reply") {
            Some(Message::Address(a)) => assert!(a.same_actor(&ActorAddress::new(inbox))),
            other => panic!("reply is {other:?}"),
        }
        let list = delivered.get("list").and_then(Message::as_array).unwrap();
        assert_eq!(
            list,
            &[
                Message::from(1.5),
                Message::from("two"),
                Message::from(true)
            ][..]
        );
        assert_eq!(
            delivered.get("nested"),
            Some(&Message::object([("deeper", Message::array([]))]))
        );
        assert_eq!(delivered.summary(), message.summary());
    }

    #[test]
    fn exact_integers_become_numbers() {
        for (i, n) in [(0i64, 0.0), (-7, -7.0), (1 << 53, 9007199254740992.0)] {
            let frame = scm(&Value::Integer(i));
            let delivered = decode_with_fds(&frame, vec![])
                .unwrap()
                .into_message(vec![]);
            assert_eq!(delivered.unwrap(), Message::Number(n));
        }
    }

    #[test]
    fn byte_spans_and_addresses_become_their_message_forms() {
        let address = IpAddress::V6 {
            address: "fe80::1".parse().unwrap(),
            scope_id: 3,
        };
        let frame = scm(&Value::Array(vec![
            Value::Bytes(Cow::Borrowed(b"raw\0")),
            Value::Ip(IpAddress::V4([10, 0, 0, 1].into())),
            Value::Ip(address),
        ]));
        let delivered = decode_with_fds(&frame, vec![])
            .unwrap()
            .into_message(vec![])
            .unwrap();
        assert_eq!(
            delivered,
            Message::array([
                Message::Bytes(b"raw\0".to_vec()),
                Message::Ip(IpAddress::V4([10, 0, 0, 1].into())),
                Message::Ip(address),
            ])
        );
        // A byte span is not a string, nor the reverse.
        assert_ne!(Message::Bytes(b"x".to_vec()), Message::from("x"));
    }

    #[test]
    fn kinds_without_a_message_form_are_refused_and_fds_closed() {
        let values = [Value::Integer((1 << 53) + 1), Value::Integer(i64::MIN)];
        for value in values {
            let (read, write) = pipe();
            // The fd comes first in key order, so it is taken before the
            // refusal; it must still be closed.
            let frame = scm(&object(vec![("a", Value::Fd(0)), ("b", value.clone())]));
            let received = decode_with_fds(&frame, vec![write]).unwrap();
            let error = received.into_message(vec![]).unwrap_err();
            assert!(
                matches!(error, FrameError::NoMessageForm { .. }),
                "{value:?}: {error:?}"
            );
            assert!(write_end_closed(&read), "{value:?}");
        }
    }

    #[test]
    fn the_channel_table_must_match_the_frame() {
        let frame = scm(&Value::Array(vec![Value::Channel(0), s("x")]));
        let received = decode_with_fds(&frame, vec![]).unwrap();
        assert_eq!(
            received.into_message(vec![]).unwrap_err(),
            FrameError::ChannelTableMismatch { named: 1, given: 0 }
        );
    }
}

// ---- generated in-process messages ----

/// Messages without capabilities (those are covered by `delivery`);
/// numbers are any double but NaN, which `Message`'s equality (f64 `==`)
/// cannot compare (the wire keeps NaN bits: `every_kind_round_trips`).
fn any_message() -> impl Strategy<Value = Message> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Message::Bool),
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("NaN", |n| !n.is_nan())
            .prop_map(Message::Number),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Message::String),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Message::Bytes),
        any::<[u8; 4]>().prop_map(|a| Message::Ip(IpAddress::V4(a.into()))),
        (any::<[u8; 16]>(), any::<u32>()).prop_map(|(a, scope_id)| Message::Ip(IpAddress::V6 {
            address: a.into(),
            scope_id
        })),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Message::Array),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..4),
                inner,
                0..6
            )
            .prop_map(Message::Object),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn messages_round_trip_through_frames(message in any_message()) {
        let frame = encode_message(&message, FdPlacement::ScmRights).unwrap();
        let received = decode_with_fds(&frame.bytes, vec![]).unwrap();
        prop_assert_eq!(received.into_message(vec![]).unwrap(), message);
    }
}

// ---- a message over a real socket pair ----

mod over_a_socket {
    use std::os::fd::{AsFd, OwnedFd};

    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    use super::super::*;
    use super::{pipe, write_end_closed};
    use crate::Message;

    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair")
    }

    #[test]
    fn send_frame_then_receive_delivers_the_message_and_a_usable_fd() {
        let (tx, rx) = seqpacket_pair();
        let (read, write) = pipe();
        let message = Message::object([
            ("out", Message::Fd(write)),
            ("text", Message::from("hello")),
        ]);
        let frame = encode_message(&message, FdPlacement::ScmRights).unwrap();
        send_frame(tx.as_fd(), &frame).unwrap();
        drop(frame);
        drop(message); // the sender's copy of the write end

        let mut buf = vec![0; MAX_FRAME_BYTES];
        let packet = receive_packet(rx.as_fd(), &mut buf)
            .unwrap()
            .expect("a packet");
        let delivered = decode_with_fds(&buf[..packet.len], packet.fds)
            .unwrap()
            .into_message(vec![])
            .unwrap();
        assert_eq!(delivered.get("text"), Some(&Message::from("hello")));
        let out = delivered
            .get("out")
            .and_then(Message::as_fd)
            .expect("an fd");
        assert_eq!(nix::unistd::write(out, b"through").unwrap(), 7);
        let mut got = [0u8; 7];
        assert_eq!(nix::unistd::read(&read, &mut got).unwrap(), 7);
        assert_eq!(&got, b"through");
        drop(delivered);
        assert!(
            write_end_closed(&read),
            "the received copy closes with the message"
        );
    }

    fn sigpipe_pending_on_this_thread() -> bool {
        // SAFETY: sigpending and sigismember only write and read `set`,
        // which lives on this stack.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            assert_eq!(libc::sigpending(&mut set), 0);
            libc::sigismember(&set, libc::SIGPIPE) == 1
        }
    }

    #[test]
    fn sending_to_a_gone_peer_is_epipe_not_sigpipe() {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

        let (tx, rx) = seqpacket_pair();
        drop(rx);
        let message = Message::from(true);
        let frame = encode_message(&message, FdPlacement::ScmRights).unwrap();
        // Rust ignores SIGPIPE, which would hide one (and an embedder may
        // not); a blocked signal stays pending even when ignored, so block
        // it on this thread and look.
        let mut pipe_only = SigSet::empty();
        pipe_only.add(Signal::SIGPIPE);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe_only), None).unwrap();
        let result = send_frame(tx.as_fd(), &frame);
        let raised = sigpipe_pending_on_this_thread();
        // Unblocking discards a pending, ignored SIGPIPE.
        pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&pipe_only), None).unwrap();
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::EPIPE));
        assert!(!raised, "send_frame raised SIGPIPE");
    }
}

#[test]
fn end_frames_round_trip_and_are_never_messages() {
    for reason in [EndReason::Memory, EndReason::Failed] {
        let frame = encode_end(reason);
        assert_eq!(decode_end(&frame), Some(Ok(reason)));
        // The message decoder refuses the end bit, whatever the mode.
        assert_eq!(
            reject(&frame, 0),
            FrameError::UnknownFlags { flags: FLAG_END }
        );
    }
    // The documented bytes (docs/ipc.md "End frame").
    assert_eq!(
        encode_end(EndReason::Memory),
        b"LURM\x01\x02\x00\x00\x08\x00\x00\x00\x05\x06memory".to_vec()
    );
}

#[test]
fn no_message_is_an_end_frame() {
    for value in [s("memory"), object(vec![("reason", s("memory"))])] {
        assert_eq!(decode_end(&scm(&value)), None);
    }
    // Too short or not ours: not an end frame either.
    assert_eq!(decode_end(b"LURM\x01\x02"), None);
    assert_eq!(
        decode_end(b"LURX\x01\x02\x00\x00\x08\x00\x00\x00\x05\x06memory"),
        None
    );
}

#[test]
fn malformed_end_frames_are_rejected() {
    let good = encode_end(EndReason::Failed);
    let with = |at: usize, byte: u8| {
        let mut frame = good.clone();
        frame[at] = byte;
        frame
    };
    let mut longer = good.clone();
    longer.push(0);
    let mut unknown = encode_end(EndReason::Memory);
    unknown[14] = b'M';
    for bad in [
        with(4, 2),           // version
        with(5, 0x03),        // another flag beside it
        with(6, 1),           // an fd
        with(7, 1),           // a channel
        with(8, 7),           // payload length
        with(12, tag::BYTES), // not a string
        with(13, 5),          // string length
        longer,               // trailing byte
        unknown,              // unknown reason
        good[..HEADER_LEN].to_vec(),
    ] {
        assert_eq!(
            decode_end(&bad),
            Some(Err(FrameError::BadEndFrame)),
            "{bad:?}"
        );
    }
}
