//! Typed messages: serde round trips in Rust (a property test over a nested
//! struct), through a Lua actor and back, and every refusal a typed error.

use std::collections::BTreeMap;
use std::time::Duration;

use luring::{from_value, to_value, ActorSpec, Message, Runtime};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Dot,
    Circle(f64),
    Rect { w: u32, h: u32 },
    Line(i32, i32),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Inner {
    name: String,
    score: Option<i64>,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Outer {
    id: u64,
    ok: bool,
    ratio: f64,
    tags: Vec<String>,
    items: Vec<Inner>,
    attrs: BTreeMap<String, i32>,
    note: Option<String>,
    pair: (u8, char),
}

const EXACT: i64 = 1 << 53;

fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Dot),
        (-1e9f64..1e9).prop_map(Shape::Circle),
        (any::<u32>(), any::<u32>()).prop_map(|(w, h)| Shape::Rect { w, h }),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| Shape::Line(a, b)),
    ]
}

fn inner() -> impl Strategy<Value = Inner> {
    (".{0,12}", proptest::option::of(-EXACT..=EXACT), shape())
        .prop_map(|(name, score, shape)| Inner { name, score, shape })
}

fn outer() -> impl Strategy<Value = Outer> {
    (
        0..=(EXACT as u64),
        any::<bool>(),
        any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()),
        proptest::collection::vec(".{0,8}", 0..5),
        proptest::collection::vec(inner(), 0..4),
        proptest::collection::btree_map(".{0,6}", any::<i32>(), 0..4),
        proptest::option::of(".{0,10}"),
        (any::<u8>(), any::<char>()),
    )
        .prop_map(|(id, ok, ratio, tags, items, attrs, note, pair)| Outer {
            id,
            ok,
            ratio,
            tags,
            items,
            attrs,
            note,
            pair,
        })
}

proptest! {
    #[test]
    fn nested_structs_round_trip(value in outer()) {
        let message = to_value(&value).unwrap();
        let back: Outer = from_value(message).unwrap();
        prop_assert_eq!(back, value);
    }
}

#[test]
fn the_mapping_is_the_documented_one() {
    let v = Outer {
        id: 7,
        ok: true,
        ratio: 0.5,
        tags: vec!["a".into()],
        items: vec![Inner {
            name: "n".into(),
            score: None,
            shape: Shape::Dot,
        }],
        attrs: BTreeMap::new(),
        note: None,
        pair: (1, 'x'),
    };
    let m = to_value(&v).unwrap();
    assert_eq!(m.get("id").unwrap().as_number(), Some(7.0));
    assert!(m.get("note").is_none(), "None fields are left out");
    let item = &m.get("items").unwrap().as_array().unwrap()[0];
    assert!(item.get("score").is_none());
    assert_eq!(item.get("shape").unwrap().as_str(), Some("Dot"));
    let rect = to_value(&Shape::Rect { w: 1, h: 2 }).unwrap();
    assert_eq!(
        rect.get("Rect").unwrap().get("h").unwrap().as_number(),
        Some(2.0)
    );
    assert_eq!(
        to_value(&Shape::Circle(1.5))
            .unwrap()
            .get("Circle")
            .unwrap()
            .as_number(),
        Some(1.5)
    );
}

#[test]
fn refusals_are_typed_errors() {
    assert!(to_value(&((1u64 << 53) + 1)).is_err());
    assert!(to_value(&(-(1i64 << 53) - 1)).is_err());
    assert!(to_value(&(1u64 << 53)).is_ok());
    assert!(to_value(&None::<i32>).is_err(), "nil is not a message");
    assert!(
        to_value(&vec![Some(1), None]).is_err(),
        "a hole in a sequence"
    );
    let mut int_keys = BTreeMap::new();
    int_keys.insert(1, 2);
    assert!(to_value(&int_keys).is_err(), "keys must be strings");
    assert!(from_value::<u8>(Message::Number(256.0)).is_err());
    assert!(from_value::<i32>(Message::Number(0.5)).is_err());
    assert!(from_value::<u32>(Message::Number(-1.0)).is_err());
    assert!(from_value::<i64>(Message::Number(f64::INFINITY)).is_err());
    assert!(from_value::<String>(Message::Bool(true)).is_err());
    assert!(from_value::<Outer>(Message::from("x")).is_err());
    let err = from_value::<Inner>(Message::object([("name", "n".into())])).unwrap_err();
    assert!(err.to_string().contains("shape"), "{err}");
    // An fd has no serde form.
    let fd: std::os::fd::OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    assert!(from_value::<String>(Message::from(fd)).is_err());
    // Bytes that are not UTF-8 read as bytes, not as a String.
    assert!(from_value::<String>(Message::from(&b"\xff"[..])).is_err());
    assert_eq!(
        from_value::<serde_bytes_like::Bytes>(Message::from(&b"\xff"[..]))
            .unwrap()
            .0,
        vec![0xff]
    );
}

/// A byte buffer type, as `serde_bytes` would give (no extra dependency).
mod serde_bytes_like {
    pub struct Bytes(pub Vec<u8>);
    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl serde::de::Visitor<'_> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                    Ok(Bytes(v))
                }
            }
            d.deserialize_byte_buf(V)
        }
    }
}

/// A struct goes to Lua as a table, Lua changes it and sends it back.
#[test]
fn structs_travel_through_lua_and_back() {
    let rt = Runtime::builder().build().unwrap();
    let replies = rt.mailbox();
    let actor = rt
        .spawn(ActorSpec::source(
            "edit.lua",
            "local m = require('inbox'):receive()
             local v = m.value
             v.id = v.id + 1
             v.tags[#v.tags + 1] = 'from lua'
             v.note = 'set in lua'
             v.items[1].shape = { Rect = { w = 3, h = 4 } }
             m.reply:send(v)",
        ))
        .unwrap();
    let value = Outer {
        id: 41,
        ok: false,
        ratio: -2.25,
        tags: vec!["rust".into()],
        items: vec![Inner {
            name: "first".into(),
            score: Some(-5),
            shape: Shape::Line(1, -1),
        }],
        attrs: [("k".to_string(), 9)].into_iter().collect(),
        note: None,
        pair: (200, 'é'),
    };
    actor
        .send(Message::object([
            ("value", to_value(&value).unwrap()),
            ("reply", replies.address().into()),
        ]))
        .unwrap();
    let back: Outer = from_value(replies.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    let mut expected = value;
    expected.id = 42;
    expected.tags.push("from lua".into());
    expected.note = Some("set in lua".into());
    expected.items[0].shape = Shape::Rect { w: 3, h: 4 };
    assert_eq!(back, expected);
}
