//! Writes the seed corpus of the `ipc_frame` fuzz target: one valid frame
//! per value kind and bound, prefixed with the target's mode byte.
//!
//! `cargo run --manifest-path tests/fuzz/Cargo.toml --bin make_ipc_corpus
//! [DIR]` (default `tests/fuzz/corpus/ipc_frame`). Deterministic: the
//! same build writes the same files, so the committed seeds can be checked
//! (tests/ipc_corpus.rs decodes every one).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use luring::ipc::{self, encode, encode_routed, FdPlacement, IpAddress, Routing, Value};

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

fn nested(depth: usize) -> Value<'static> {
    let mut value = Value::Integer(-1);
    for level in 0..depth {
        value = if level % 2 == 0 {
            Value::Array(vec![value])
        } else {
            object(vec![("k", value)])
        };
    }
    value
}

fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fuzz/corpus/ipc_frame".to_owned());
    std::fs::create_dir_all(&dir)?;

    let scm: Vec<(&str, Value<'static>)> = vec![
        ("true", Value::Bool(true)),
        ("false", Value::Bool(false)),
        ("float", Value::Float(0.1)),
        (
            "float-nan",
            Value::Float(f64::from_bits(0x7ff8_0000_0000_0001)),
        ),
        ("float-neg-inf", Value::Float(f64::NEG_INFINITY)),
        ("integer", Value::Integer(i64::MIN)),
        ("string-empty", s("")),
        ("string", s("hello, sandbox")),
        ("string-200", s(&"x".repeat(200))),
        ("bytes", Value::Bytes(Cow::Borrowed(b"\x00\x01\xfe\xff"))),
        ("array-empty", Value::Array(vec![])),
        ("object-empty", Value::Object(BTreeMap::new())),
        (
            "ipv4",
            Value::Ip(IpAddress::V4(Ipv4Addr::new(127, 0, 0, 1))),
        ),
        (
            "ipv6-scoped",
            Value::Ip(IpAddress::V6 {
                address: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                scope_id: 2,
            }),
        ),
        (
            "emilua-dictionary",
            object(vec![
                ("a", Value::Float(1.0)),
                ("b", s("str")),
                ("c", Value::Bool(false)),
                ("fd", Value::Fd(0)),
                ("reply", Value::Channel(0)),
            ]),
        ),
        (
            "nested-mixed",
            object(vec![
                (
                    "",
                    Value::Array(vec![Value::Fd(0), Value::Channel(0), Value::Fd(1)]),
                ),
                ("ab", object(vec![("a", Value::Bytes(Cow::Borrowed(b"z")))])),
                (
                    "b",
                    Value::Array(vec![Value::Integer(7), Value::Float(-0.0)]),
                ),
            ]),
        ),
        ("deep-max", nested(ipc::MAX_DEPTH)),
        (
            "wide-array",
            Value::Array((0..300).map(Value::Integer).collect()),
        ),
        (
            "wide-object",
            Value::Object(
                (0..200u32)
                    .map(|i| {
                        (
                            Cow::Owned(i.to_be_bytes().to_vec()),
                            Value::Bool(i % 2 == 0),
                        )
                    })
                    .collect(),
            ),
        ),
        (
            "fds-many",
            Value::Array((0..ipc::MAX_FDS as u32).map(Value::Fd).collect()),
        ),
        (
            "channels-many",
            Value::Array((0..ipc::MAX_CHANNELS as u32).map(Value::Channel).collect()),
        ),
    ];
    for (name, value) in &scm {
        let frame = encode(value, FdPlacement::ScmRights).expect("seed encodes");
        write(&dir, name, 0, &frame)?;
    }

    let fixed = Value::Array(vec![
        Value::Fd(0),
        object(vec![("in", Value::Fd(1)), ("out", Value::Fd(2))]),
    ]);
    let slots = [17, 3, 40];
    let table_size: u32 = 64;
    let mode = (((table_size - 1) << 1) | 1) as u8;
    let frame = encode(&fixed, FdPlacement::FixedSlots(&slots)).expect("seed encodes");
    write(&dir, "fixed-slots", mode, &frame)?;
    let frame = encode(&s("no fds"), FdPlacement::FixedSlots(&[])).expect("seed encodes");
    write(&dir, "fixed-slots-none", mode, &frame)?;

    // Routes: a sandbox's frame to another route, channels naming routes
    // (up to the bound, each channel a different route), and a host frame
    // with fixed slots and routed channels.
    let routed = object(vec![
        ("a", Value::Channel(0)),
        ("b", Value::Array(vec![Value::Channel(1), Value::Fd(0)])),
    ]);
    let routing = Routing {
        destination: 3,
        channels: vec![0, 1],
    };
    let frame = encode_routed(&routed, FdPlacement::ScmRights, &routing).expect("seed encodes");
    write(&dir, "routes", 0, &frame)?;
    let to_route = Routing {
        destination: ipc::MAX_ROUTES,
        channels: Vec::new(),
    };
    let frame = encode_routed(&s("to a route"), FdPlacement::ScmRights, &to_route)
        .expect("seed encodes");
    write(&dir, "routes-destination", 0, &frame)?;
    let many = Value::Array((0..ipc::MAX_CHANNELS as u32).map(Value::Channel).collect());
    let every_route = Routing {
        destination: 0,
        channels: (1..=ipc::MAX_CHANNELS as u32).collect(),
    };
    let frame = encode_routed(&many, FdPlacement::ScmRights, &every_route).expect("seed encodes");
    write(&dir, "routes-many", 0, &frame)?;
    let frame = encode_routed(
        &fixed,
        FdPlacement::FixedSlots(&slots),
        &Routing {
            destination: 0,
            channels: Vec::new(),
        },
    )
    .expect("seed encodes");
    assert_eq!(frame, encode(&fixed, FdPlacement::FixedSlots(&slots)).unwrap());
    let host_frame = Value::Array(vec![Value::Fd(0), Value::Channel(0), Value::Channel(1)]);
    let routing = Routing {
        destination: 0,
        channels: vec![2, 0],
    };
    let frame = encode_routed(&host_frame, FdPlacement::FixedSlots(&[40]), &routing)
        .expect("seed encodes");
    write(&dir, "routes-fixed-slots", mode, &frame)?;
    // Route ids as a route table draws them: any u32, up to 5 varint bytes.
    let wide = Routing {
        destination: u32::MAX,
        channels: vec![0xdead_beef, 1 << 21, 0],
    };
    let three = Value::Array((0..3).map(Value::Channel).collect());
    let frame = encode_routed(&three, FdPlacement::ScmRights, &wide).expect("seed encodes");
    write(&dir, "routes-wide-ids", 0, &frame)?;
    Ok(())
}

fn write(dir: &str, name: &str, mode: u8, frame: &[u8]) -> std::io::Result<()> {
    let mut input = vec![mode];
    input.extend_from_slice(frame);
    std::fs::write(format!("{dir}/seed-{name}"), input)
}
