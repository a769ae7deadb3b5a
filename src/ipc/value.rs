//! The value tree one frame carries.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A message as the wire sees it. Decoding borrows strings and byte spans
/// from the packet; encoding borrows them from the message being sent.
///
/// Unlike [`crate::Message`] it keeps integers apart from floats, byte spans
/// apart from strings, and carries `ip.address` values; capabilities are
/// indexes: `Fd(k)` is the frame's k-th descriptor, `Channel(k)` the k-th
/// entry of the channel table the transport keeps with the frame. In a
/// valid value they count up from 0 in member order (pre-order: arrays by
/// index, objects by key), each once.
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Bool(bool),
    /// Any IEEE 754 double; compared and encoded bit for bit.
    Float(f64),
    /// A 64-bit integer, exact.
    Integer(i64),
    /// A Lua string: any bytes.
    String(Cow<'a, [u8]>),
    /// A `byte_span`'s contents.
    Bytes(Cow<'a, [u8]>),
    Array(Vec<Value<'a>>),
    /// Byte-string keys; `BTreeMap` order is the wire order.
    Object(BTreeMap<Cow<'a, [u8]>, Value<'a>>),
    Fd(u32),
    Channel(u32),
    Ip(IpAddress),
}

/// An `ip.address`: v4, or v6 with its scope id (0 when it has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpAddress {
    V4(Ipv4Addr),
    V6 { address: Ipv6Addr, scope_id: u32 },
}

impl Value<'_> {
    /// Detaches the value from the buffer it borrows from. Recursion is
    /// bounded by the value's depth; decoded values are at most
    /// [`super::MAX_DEPTH`] deep.
    pub fn into_owned(self) -> Value<'static> {
        fn owned(bytes: Cow<'_, [u8]>) -> Cow<'static, [u8]> {
            Cow::Owned(bytes.into_owned())
        }
        match self {
            Value::Bool(b) => Value::Bool(b),
            Value::Float(f) => Value::Float(f),
            Value::Integer(i) => Value::Integer(i),
            Value::String(s) => Value::String(owned(s)),
            Value::Bytes(b) => Value::Bytes(owned(b)),
            Value::Array(items) => Value::Array(items.into_iter().map(Value::into_owned).collect()),
            Value::Object(members) => Value::Object(
                members
                    .into_iter()
                    .map(|(k, v)| (owned(k), v.into_owned()))
                    .collect(),
            ),
            Value::Fd(i) => Value::Fd(i),
            Value::Channel(i) => Value::Channel(i),
            Value::Ip(a) => Value::Ip(a),
        }
    }
}

/// Structural equality without recursion; floats compare by bits (so a
/// NaN equals the same NaN, and `0.0 != -0.0`), as the wire does.
impl PartialEq for Value<'_> {
    fn eq(&self, other: &Self) -> bool {
        let mut pending = vec![(self, other)];
        while let Some(pair) = pending.pop() {
            match pair {
                (Value::Bool(a), Value::Bool(b)) if a == b => {}
                (Value::Float(a), Value::Float(b)) if a.to_bits() == b.to_bits() => {}
                (Value::Integer(a), Value::Integer(b)) if a == b => {}
                (Value::String(a), Value::String(b)) if a == b => {}
                (Value::Bytes(a), Value::Bytes(b)) if a == b => {}
                (Value::Fd(a), Value::Fd(b)) if a == b => {}
                (Value::Channel(a), Value::Channel(b)) if a == b => {}
                (Value::Ip(a), Value::Ip(b)) if a == b => {}
                (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                    pending.extend(a.iter().zip(b));
                }
                (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
                    for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                        if ka != kb {
                            return false;
                        }
                        pending.push((va, vb));
                    }
                }
                _ => return false,
            }
        }
        true
    }
}
