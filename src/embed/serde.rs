//! Typed messages: serde between Rust values and [`Message`].
//!
//! The mapping (what Lua sees):
//! - struct, map with string keys → table with string keys; a `None` field
//!   is left out (Lua reads `nil`), and a missing field reads back as
//!   `None`.
//! - `Vec`, tuple, array, set → sequence (`t[1]..t[n]`); a `None` element
//!   is refused (it would end the Lua sequence).
//! - `bool` → boolean; `String`, `char` → string; `serde_bytes`-style byte
//!   buffers → string (any bytes).
//! - numbers → Lua numbers (f64). An integer that f64 cannot hold exactly
//!   (|n| > 2^53) is refused; reading an integer type back refuses a
//!   fractional or out-of-range number.
//! - unit variant → its name as a string; newtype, tuple and struct
//!   variants → a one-member table `{Variant = value}` (serde's "externally
//!   tagged" form, like serde_json).
//! - `()` and unit structs → empty table; a top-level `None` is refused
//!   (`nil` is not a message).
//!
//! File descriptors and addresses have no serde form: put them into a
//! [`Message`] directly (`Message::from(owned_fd)`, `Message::from(address)`);
//! [`from_value`] refuses them where a serde value is expected.
//!
//! Invariants: conversion never panics on any input; every refusal is a
//! [`ConvertError`] naming what could not be converted.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use crate::Message;

/// Largest integer every smaller one of which f64 holds exactly (2^53).
const MAX_EXACT: u64 = 1 << 53;

/// A value could not be converted to or from a [`Message`]; its text says
/// what and why.
///
/// ```
/// let err = luring::to_value(&vec![Some(1), None]).unwrap_err();
/// assert!(err.to_string().contains("cannot hold nil"), "{err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConvertError(String);

impl ser::Error for ConvertError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ConvertError(msg.to_string())
    }
}

impl de::Error for ConvertError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ConvertError(msg.to_string())
    }
}

/// Converts a Rust value to a [`Message`] (the mapping is in the module
/// docs of `luring::to_value`'s page).
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Job { id: u32, tags: Vec<String>, note: Option<String> }
/// let m = luring::to_value(&Job { id: 7, tags: vec!["a".into()], note: None })?;
/// assert_eq!(m.get("id").and_then(|v| v.as_number()), Some(7.0));
/// assert!(m.get("note").is_none());
/// assert!(luring::to_value(&(1u64 << 60)).is_err()); // not exact as a Lua number
/// # Ok::<(), luring::ConvertError>(())
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Message, ConvertError> {
    value
        .serialize(ValueSerializer)?
        .ok_or_else(|| ConvertError("nil (None) cannot be a message".into()))
}

/// Converts a [`Message`] to a Rust value.
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Reply { ok: bool, count: i32, note: Option<String> }
/// let m = luring::Message::object([("ok", true.into()), ("count", 3.into())]);
/// let reply: Reply = luring::from_value(m)?;
/// assert_eq!(reply, Reply { ok: true, count: 3, note: None });
/// assert!(luring::from_value::<i32>(luring::Message::Number(1.5)).is_err());
/// # Ok::<(), luring::ConvertError>(())
/// ```
pub fn from_value<T: DeserializeOwned>(message: Message) -> Result<T, ConvertError> {
    T::deserialize(ValueDeserializer(message))
}

fn exact_i(v: i64) -> Result<Message, ConvertError> {
    if v.unsigned_abs() > MAX_EXACT {
        return Err(ConvertError(format!(
            "the integer {v} is not exactly representable as a Lua number (|n| > 2^53)"
        )));
    }
    Ok(Message::Number(v as f64))
}

fn exact_u(v: u64) -> Result<Message, ConvertError> {
    if v > MAX_EXACT {
        return Err(ConvertError(format!(
            "the integer {v} is not exactly representable as a Lua number (n > 2^53)"
        )));
    }
    Ok(Message::Number(v as f64))
}

/// Serializes to `Some(message)`, or `None` for `None` (a field to leave
/// out).
struct ValueSerializer;

type Out = Result<Option<Message>, ConvertError>;

impl ser::Serializer for ValueSerializer {
    type Ok = Option<Message>;
    type Error = ConvertError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeq;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMap;

    fn serialize_bool(self, v: bool) -> Out {
        Ok(Some(Message::Bool(v)))
    }
    fn serialize_i8(self, v: i8) -> Out {
        exact_i(v.into()).map(Some)
    }
    fn serialize_i16(self, v: i16) -> Out {
        exact_i(v.into()).map(Some)
    }
    fn serialize_i32(self, v: i32) -> Out {
        exact_i(v.into()).map(Some)
    }
    fn serialize_i64(self, v: i64) -> Out {
        exact_i(v).map(Some)
    }
    fn serialize_i128(self, v: i128) -> Out {
        let v = i64::try_from(v)
            .map_err(|_| ConvertError(format!("the integer {v} does not fit a Lua number")))?;
        exact_i(v).map(Some)
    }
    fn serialize_u8(self, v: u8) -> Out {
        exact_u(v.into()).map(Some)
    }
    fn serialize_u16(self, v: u16) -> Out {
        exact_u(v.into()).map(Some)
    }
    fn serialize_u32(self, v: u32) -> Out {
        exact_u(v.into()).map(Some)
    }
    fn serialize_u64(self, v: u64) -> Out {
        exact_u(v).map(Some)
    }
    fn serialize_u128(self, v: u128) -> Out {
        let v = u64::try_from(v)
            .map_err(|_| ConvertError(format!("the integer {v} does not fit a Lua number")))?;
        exact_u(v).map(Some)
    }
    fn serialize_f32(self, v: f32) -> Out {
        Ok(Some(Message::Number(v.into())))
    }
    fn serialize_f64(self, v: f64) -> Out {
        Ok(Some(Message::Number(v)))
    }
    fn serialize_char(self, v: char) -> Out {
        Ok(Some(Message::from(v.to_string())))
    }
    fn serialize_str(self, v: &str) -> Out {
        Ok(Some(Message::from(v)))
    }
    fn serialize_bytes(self, v: &[u8]) -> Out {
        Ok(Some(Message::from(v)))
    }
    fn serialize_none(self) -> Out {
        Ok(None)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Out {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Out {
        Ok(Some(Message::Object(BTreeMap::new())))
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Out {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Out {
        Ok(Some(Message::from(variant)))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Out {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Out {
        let inner = to_value(value)?;
        Ok(Some(Message::object([(variant, inner)])))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ConvertError> {
        Ok(SeqBuilder(Vec::with_capacity(len.unwrap_or(0).min(4096))))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ConvertError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ConvertError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeq, ConvertError> {
        Ok(VariantSeq(variant, self.serialize_seq(Some(len))?))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<MapBuilder, ConvertError> {
        Ok(MapBuilder {
            members: BTreeMap::new(),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, ConvertError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMap, ConvertError> {
        Ok(VariantMap(variant, self.serialize_map(Some(len))?))
    }
}

struct SeqBuilder(Vec<Message>);

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        match value.serialize(ValueSerializer)? {
            Some(m) => {
                self.0.push(m);
                Ok(())
            }
            None => Err(ConvertError(format!(
                "element {} of a sequence is None: a Lua sequence cannot hold nil",
                self.0.len() + 1
            ))),
        }
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.push(value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::Array(self.0)))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.push(value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::Array(self.0)))
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.push(value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::Array(self.0)))
    }
}

struct VariantSeq(&'static str, SeqBuilder);

impl ser::SerializeTupleVariant for VariantSeq {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.1.push(value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::object([(self.0, Message::Array(self.1 .0))])))
    }
}

struct MapBuilder {
    members: BTreeMap<Vec<u8>, Message>,
    key: Option<Vec<u8>>,
}

impl MapBuilder {
    fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), ConvertError> {
        // A None member is left out: Lua reads nil.
        if let Some(m) = value.serialize(ValueSerializer)? {
            self.members.insert(key, m);
        }
        Ok(())
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ConvertError> {
        match key.serialize(ValueSerializer)? {
            Some(Message::String(bytes)) => {
                self.key = Some(bytes);
                Ok(())
            }
            _ => Err(ConvertError(
                "map keys must be strings (Lua tables in messages have string keys)".into(),
            )),
        }
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        let key = self
            .key
            .take()
            .ok_or_else(|| ConvertError("a map value came without its key".into()))?;
        self.insert(key, value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::Object(self.members)))
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ConvertError> {
        self.insert(key.as_bytes().to_vec(), value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::Object(self.members)))
    }
}

struct VariantMap(&'static str, MapBuilder);

impl ser::SerializeStructVariant for VariantMap {
    type Ok = Option<Message>;
    type Error = ConvertError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), ConvertError> {
        self.1.insert(key.as_bytes().to_vec(), value)
    }
    fn end(self) -> Out {
        Ok(Some(Message::object([(
            self.0,
            Message::Object(self.1.members),
        )])))
    }
}

/// Reads a [`Message`] as serde data.
struct ValueDeserializer(Message);

fn kind(m: &Message) -> &'static str {
    match m {
        Message::Bool(_) => "a boolean",
        Message::Number(_) => "a number",
        Message::String(_) => "a string",
        Message::Array(_) => "a sequence",
        Message::Object(_) => "a table",
        Message::Fd(_) => "a file descriptor",
        Message::Address(_) => "a channel",
        Message::Bytes(_) => "a byte span",
        Message::Ip(_) => "an ip address",
    }
}

fn integer(n: f64, what: &str) -> Result<i128, ConvertError> {
    if n.fract() != 0.0 || !n.is_finite() || n.abs() > MAX_EXACT as f64 {
        return Err(ConvertError(format!(
            "the number {n} is not an integer {what} can hold"
        )));
    }
    Ok(n as i128)
}

macro_rules! deserialize_integer {
    ($method:ident, $ty:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
            match self.0 {
                Message::Number(n) => {
                    let i = integer(n, stringify!($ty))?;
                    let v = <$ty>::try_from(i).map_err(|_| {
                        ConvertError(format!(
                            "the number {n} is out of range for {}",
                            stringify!($ty)
                        ))
                    })?;
                    visitor.$visit(v)
                }
                other => Err(ConvertError(format!(
                    "expected an integer ({}), found {}",
                    stringify!($ty),
                    kind(&other)
                ))),
            }
        }
    };
}

/// The deserializer methods whose Lua form is another one's: a unit
/// struct is a unit, a newtype struct its content, a struct a table (map);
/// with `tuples`, a tuple or tuple struct an array (seq).
macro_rules! struct_forms {
    () => {
        fn deserialize_unit_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, ConvertError> {
            self.deserialize_unit(visitor)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            visitor: V,
        ) -> Result<V::Value, ConvertError> {
            visitor.visit_newtype_struct(self)
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, ConvertError> {
            self.deserialize_map(visitor)
        }
    };
    (tuples) => {
        struct_forms!();

        fn deserialize_tuple<V: Visitor<'de>>(
            self,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, ConvertError> {
            self.deserialize_seq(visitor)
        }

        fn deserialize_tuple_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            _len: usize,
            visitor: V,
        ) -> Result<V::Value, ConvertError> {
            self.deserialize_seq(visitor)
        }
    };
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::Bool(b) => visitor.visit_bool(b),
            Message::Number(n) => {
                if n.fract() == 0.0 && n.abs() <= MAX_EXACT as f64 {
                    visitor.visit_i64(n as i64)
                } else {
                    visitor.visit_f64(n)
                }
            }
            Message::String(bytes) => match String::from_utf8(bytes) {
                Ok(s) => visitor.visit_string(s),
                Err(e) => visitor.visit_byte_buf(e.into_bytes()),
            },
            Message::Array(items) => visitor.visit_seq(SeqAccess(items.into_iter())),
            Message::Object(members) => visitor.visit_map(MapAccess {
                members: members.into_iter(),
                value: None,
            }),
            other => Err(ConvertError(format!(
                "{} has no serde form: read it from the Message itself",
                kind(&other)
            ))),
        }
    }

    deserialize_integer!(deserialize_i8, i8, visit_i8);
    deserialize_integer!(deserialize_i16, i16, visit_i16);
    deserialize_integer!(deserialize_i32, i32, visit_i32);
    deserialize_integer!(deserialize_i64, i64, visit_i64);
    deserialize_integer!(deserialize_i128, i128, visit_i128);
    deserialize_integer!(deserialize_u8, u8, visit_u8);
    deserialize_integer!(deserialize_u16, u16, visit_u16);
    deserialize_integer!(deserialize_u32, u32, visit_u32);
    deserialize_integer!(deserialize_u64, u64, visit_u64);
    deserialize_integer!(deserialize_u128, u128, visit_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::Number(n) => visitor.visit_f64(n),
            other => Err(ConvertError(format!(
                "expected a number, found {}",
                kind(&other)
            ))),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::String(bytes) | Message::Bytes(bytes) => visitor.visit_byte_buf(bytes),
            Message::Array(items) => visitor.visit_seq(SeqAccess(items.into_iter())),
            other => Err(ConvertError(format!(
                "expected a string, found {}",
                kind(&other)
            ))),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::Object(m) if m.is_empty() => visitor.visit_unit(),
            Message::Array(a) if a.is_empty() => visitor.visit_unit(),
            other => Err(ConvertError(format!(
                "expected an empty table, found {}",
                kind(&other)
            ))),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::Array(items) => visitor.visit_seq(SeqAccess(items.into_iter())),
            // An empty Lua table reads back as an empty object.
            Message::Object(m) if m.is_empty() => {
                visitor.visit_seq(SeqAccess(Vec::new().into_iter()))
            }
            other => Err(ConvertError(format!(
                "expected a sequence, found {}",
                kind(&other)
            ))),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::Object(members) => visitor.visit_map(MapAccess {
                members: members.into_iter(),
                value: None,
            }),
            Message::Array(a) if a.is_empty() => visitor.visit_map(MapAccess {
                members: BTreeMap::new().into_iter(),
                value: None,
            }),
            other => Err(ConvertError(format!(
                "expected a table, found {}",
                kind(&other)
            ))),
        }
    }

    struct_forms!(tuples);

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self.0 {
            Message::String(bytes) => {
                let name = String::from_utf8(bytes)
                    .map_err(|_| ConvertError("an enum variant name must be UTF-8".into()))?;
                visitor.visit_enum(IntoDeserializer::<ConvertError>::into_deserializer(name))
            }
            Message::Object(members) if members.len() == 1 => {
                let (key, value) = members.into_iter().next().expect("one member");
                let variant = String::from_utf8(key)
                    .map_err(|_| ConvertError("an enum variant name must be UTF-8".into()))?;
                visitor.visit_enum(EnumAccess { variant, value })
            }
            other => Err(ConvertError(format!(
                "expected an enum (a variant name, or a table with one member), found {}",
                kind(&other)
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool char str string identifier ignored_any
    }
}

struct SeqAccess(std::vec::IntoIter<Message>);

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = ConvertError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        self.0
            .next()
            .map(|m| seed.deserialize(ValueDeserializer(m)))
            .transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct MapAccess {
    members: std::collections::btree_map::IntoIter<Vec<u8>, Message>,
    value: Option<Message>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = ConvertError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        match self.members.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(ValueDeserializer(Message::String(key)))
                    .map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, ConvertError> {
        let value = self
            .value
            .take()
            .ok_or_else(|| ConvertError("a map key came without its value".into()))?;
        seed.deserialize(ValueDeserializer(value))
    }
}

struct EnumAccess {
    variant: String,
    value: Message,
}

impl<'de> de::EnumAccess<'de> for EnumAccess {
    type Error = ConvertError;
    type Variant = VariantAccess;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccess), ConvertError> {
        let variant = seed.deserialize(IntoDeserializer::<ConvertError>::into_deserializer(
            self.variant,
        ))?;
        Ok((variant, VariantAccess(self.value)))
    }
}

struct VariantAccess(Message);

impl<'de> de::VariantAccess<'de> for VariantAccess {
    type Error = ConvertError;
    fn unit_variant(self) -> Result<(), ConvertError> {
        de::Deserialize::deserialize(ValueDeserializer(self.0))
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ConvertError> {
        seed.deserialize(ValueDeserializer(self.0))
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        de::Deserializer::deserialize_seq(ValueDeserializer(self.0), visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        de::Deserializer::deserialize_map(ValueDeserializer(self.0), visitor)
    }
}

/// Reads the arguments of a Lua call, in order, as serde data: exactly
/// what [`from_value`] does with `Message::Array(args)`, without building
/// the array.
pub(crate) fn from_args<T: DeserializeOwned>(args: Vec<Message>) -> Result<T, ConvertError> {
    T::deserialize(ArgsDeserializer(args.into_iter().map(ValueDeserializer)))
}

/// A boolean, number or string argument, borrowed from where it lies
/// (the Lua stack of a running call).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scalar<'a> {
    Bool(bool),
    Number(f64),
    String(&'a [u8]),
}

impl Scalar<'_> {
    /// The message the general path of a module call copies for it
    /// (module.rs `arguments`).
    pub(crate) fn to_message(self) -> Message {
        match self {
            Scalar::Bool(b) => Message::Bool(b),
            Scalar::Number(n) => Message::Number(n),
            Scalar::String(s) => Message::String(s.to_vec()),
        }
    }
}

/// [`from_args`] for arguments that are all scalars, read without
/// copying them into messages first: same values, same errors.
pub(crate) fn from_scalar_args<'a, T, I>(args: I) -> Result<T, ConvertError>
where
    T: DeserializeOwned,
    I: ExactSizeIterator<Item = Scalar<'a>>,
{
    T::deserialize(ArgsDeserializer(args.map(ScalarDeserializer)))
}

/// The arguments of a call as one sequence: each method does what
/// [`ValueDeserializer`] does for a `Message::Array` (a unit test below
/// compares them).
struct ArgsDeserializer<I>(I);

impl<I> ArgsDeserializer<I> {
    fn refuse<T>(expected: &str) -> Result<T, ConvertError> {
        Err(ConvertError(format!(
            "expected {expected}, found a sequence"
        )))
    }
}

macro_rules! args_integer {
    ($($method:ident $ty:ty),*) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvertError> {
            Self::refuse(concat!("an integer (", stringify!($ty), ")"))
        }
    )*};
}

impl<'de, I> de::Deserializer<'de> for ArgsDeserializer<I>
where
    I: ExactSizeIterator,
    I::Item: de::Deserializer<'de, Error = ConvertError>,
{
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        visitor.visit_seq(ArgsAccess(self.0))
    }

    args_integer!(deserialize_i8 i8, deserialize_i16 i16, deserialize_i32 i32,
        deserialize_i64 i64, deserialize_i128 i128, deserialize_u8 u8, deserialize_u16 u16,
        deserialize_u32 u32, deserialize_u64 u64, deserialize_u128 u128);

    fn deserialize_f32<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvertError> {
        Self::refuse("a number")
    }

    fn deserialize_f64<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvertError> {
        Self::refuse("a number")
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        if self.0.len() == 0 {
            visitor.visit_unit()
        } else {
            Self::refuse("an empty table")
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        if self.0.len() == 0 {
            visitor.visit_map(MapAccess {
                members: BTreeMap::new().into_iter(),
                value: None,
            })
        } else {
            Self::refuse("a table")
        }
    }

    struct_forms!();

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, ConvertError> {
        Self::refuse("an enum (a variant name, or a table with one member)")
    }

    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf seq tuple tuple_struct identifier ignored_any
    }
}

struct ArgsAccess<I>(I);

impl<'de, I> de::SeqAccess<'de> for ArgsAccess<I>
where
    I: ExactSizeIterator,
    I::Item: de::Deserializer<'de, Error = ConvertError>,
{
    type Error = ConvertError;
    #[inline]
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        self.0.next().map(|d| seed.deserialize(d)).transpose()
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Reads one [`Scalar`] as serde data: each method does what
/// [`ValueDeserializer`] does for the same boolean, number or string
/// message (a unit test below compares them).
struct ScalarDeserializer<'a>(Scalar<'a>);

fn scalar_kind(s: &Scalar<'_>) -> &'static str {
    match s {
        Scalar::Bool(_) => "a boolean",
        Scalar::Number(_) => "a number",
        Scalar::String(_) => "a string",
    }
}

macro_rules! scalar_integer {
    ($($method:ident $ty:ty, $visit:ident);*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
            match self.0 {
                Scalar::Number(n) => {
                    let i = integer(n, stringify!($ty))?;
                    let v = <$ty>::try_from(i).map_err(|_| {
                        ConvertError(format!(
                            "the number {n} is out of range for {}",
                            stringify!($ty)
                        ))
                    })?;
                    visitor.$visit(v)
                }
                other => Self::refuse(concat!("an integer (", stringify!($ty), ")"), &other),
            }
        }
    )*};
}

impl ScalarDeserializer<'_> {
    fn refuse<T>(expected: &str, found: &Scalar<'_>) -> Result<T, ConvertError> {
        Err(ConvertError(format!(
            "expected {expected}, found {}",
            scalar_kind(found)
        )))
    }
}

impl<'de> de::Deserializer<'de> for ScalarDeserializer<'_> {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Scalar::Bool(b) => visitor.visit_bool(b),
            Scalar::Number(n) => {
                if n.fract() == 0.0 && n.abs() <= MAX_EXACT as f64 {
                    visitor.visit_i64(n as i64)
                } else {
                    visitor.visit_f64(n)
                }
            }
            // Owned, like `ValueDeserializer` (a visitor may implement
            // only the owned forms); a `String` costs one copy either way.
            Scalar::String(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => visitor.visit_string(s.to_owned()),
                Err(_) => visitor.visit_byte_buf(bytes.to_vec()),
            },
        }
    }

    scalar_integer!(deserialize_i8 i8, visit_i8; deserialize_i16 i16, visit_i16;
        deserialize_i32 i32, visit_i32; deserialize_i64 i64, visit_i64;
        deserialize_i128 i128, visit_i128; deserialize_u8 u8, visit_u8;
        deserialize_u16 u16, visit_u16; deserialize_u32 u32, visit_u32;
        deserialize_u64 u64, visit_u64; deserialize_u128 u128, visit_u128);

    #[inline]
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_f64(visitor)
    }

    #[inline]
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Scalar::Number(n) => visitor.visit_f64(n),
            other => Self::refuse("a number", &other),
        }
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Scalar::String(bytes) => visitor.visit_byte_buf(bytes.to_vec()),
            other => Self::refuse("a string", &other),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvertError> {
        Self::refuse("an empty table", &self.0)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvertError> {
        Self::refuse("a sequence", &self.0)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, ConvertError> {
        Self::refuse("a table", &self.0)
    }

    struct_forms!(tuples);

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self.0 {
            Scalar::String(bytes) => {
                let name = std::str::from_utf8(bytes)
                    .map_err(|_| ConvertError("an enum variant name must be UTF-8".into()))?;
                visitor.visit_enum(IntoDeserializer::<ConvertError>::into_deserializer(
                    name.to_owned(),
                ))
            }
            other => Self::refuse(
                "an enum (a variant name, or a table with one member)",
                &other,
            ),
        }
    }

    serde::forward_to_deserialize_any! {
        bool char str string identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Point {
        x: f64,
        y: f64,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Wrapper(Vec<i32>);

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Shape {
        Dot,
    }

    /// `from_args` reads a call's arguments exactly as `from_value` reads
    /// them as one array: same values, same errors, for every shape.
    #[test]
    fn args_read_like_an_array_of_messages() {
        fn same<T: DeserializeOwned + PartialEq + std::fmt::Debug>(args: fn() -> Vec<Message>) {
            let what = format!("{} from {:?}", std::any::type_name::<T>(), args());
            // Debug text: NaN equals NaN there.
            let by_array = format!("{:?}", from_value::<T>(Message::Array(args())));
            assert_eq!(format!("{:?}", from_args::<T>(args())), by_array, "{what}");
            let messages = args();
            let scalars: Option<Vec<Scalar>> = messages
                .iter()
                .map(|m| match m {
                    Message::Bool(b) => Some(Scalar::Bool(*b)),
                    Message::Number(n) => Some(Scalar::Number(*n)),
                    Message::String(s) => Some(Scalar::String(s)),
                    _ => None,
                })
                .collect();
            if let Some(scalars) = scalars {
                let by_scalars = from_scalar_args::<T, _>(scalars.iter().copied());
                assert_eq!(format!("{by_scalars:?}"), by_array, "scalars: {what}");
                for (scalar, message) in scalars.iter().zip(args()) {
                    assert_eq!(format!("{:?}", scalar.to_message()), format!("{message:?}"));
                }
            }
        }
        let cases: [fn() -> Vec<Message>; 13] = [
            Vec::new,
            || vec![1.0.into()],
            || vec![(-3.0).into()],
            || vec![1e300.into()],
            || vec![f64::NAN.into()],
            || vec![300.0.into(), (-1.0).into()],
            || vec![false.into()],
            || vec!["Dot".into()],
            || vec![1.5.into(), 2.0.into()],
            || vec!["a".into(), 7.0.into()],
            || vec![true.into(), "x".into(), 3.0.into()],
            || vec![Message::array([1.0.into()])],
            || vec![Message::String(vec![0xff, 0xfe])],
        ];
        for args in cases {
            same::<(f64,)>(args);
            same::<(f64, f64)>(args);
            same::<(i64, i64)>(args);
            same::<(String, u32)>(args);
            same::<(bool, String, u8)>(args);
            same::<(u8, i8)>(args);
            same::<(f32,)>(args);
            same::<(i128, u128)>(args);
            same::<(char,)>(args);
            same::<(Option<f64>,)>(args);
            same::<(Shape,)>(args);
            same::<((),)>(args);
            same::<(Point,)>(args);
            same::<(Wrapper,)>(args);
            same::<(serde_bytes_like::Bytes,)>(args);
            same::<(Vec<f64>,)>(args);
            same::<Vec<f64>>(args);
            same::<Vec<String>>(args);
            same::<()>(args);
            same::<Unit>(args);
            same::<Wrapper>(args);
            same::<Option<(f64,)>>(args);
            same::<Point>(args);
            same::<HashMap<String, f64>>(args);
            same::<Shape>(args);
            same::<f64>(args);
            same::<f32>(args);
            same::<i32>(args);
            same::<u64>(args);
            same::<bool>(args);
            same::<String>(args);
            same::<serde_bytes_like::Bytes>(args);
        }
    }

    /// A byte buffer read through `deserialize_byte_buf`.
    mod serde_bytes_like {
        #[derive(Debug, PartialEq)]
        pub struct Bytes(pub Vec<u8>);
        impl<'de> serde::Deserialize<'de> for Bytes {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Bytes;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("bytes")
                    }
                    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Bytes, E> {
                        Ok(Bytes(v))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<Bytes, A::Error> {
                        let mut out = Vec::new();
                        while let Some(b) = seq.next_element::<u8>()? {
                            out.push(b);
                        }
                        Ok(Bytes(out))
                    }
                }
                d.deserialize_byte_buf(V)
            }
        }
    }
}
