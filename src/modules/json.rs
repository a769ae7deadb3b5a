//! The `json` builtin module (Emilua's `json`): `encode`, `decode`,
//! `is_array`, `into_array`, `null`, `writer.new`, the `__tojson` hook and
//! the error categories `dom_ecat` / `lexer_ecat`.
//!
//! Invariants:
//! - Nothing here calls a metamethod of a user value except `__tojson`, and
//!   that one only while no Rust borrow of a writer is held: tables are read
//!   with raw access (`raw_get`, `raw_len`, raw `next`), metatables are read
//!   raw (`__metatable` does not hide them), so `__index`, `__pairs`, `__len`
//!   or `__eq` can neither run nor lie.
//! - `json.null` is one userdata and every decoded array shares one
//!   metatable; both are created once per VM (named registry values) and are
//!   locked (`getmetatable` answers a name), so the deep copy each importing
//!   module gets of the module table shares them and `v == json.null` holds
//!   across modules.
//! - Depth is bounded: `decode` by serde_json's recursion limit
//!   ([`MAX_DEPTH`] levels), `encode` by the same number of nested tables
//!   (`__tojson` ones included) and by [`MAX_TOJSON_NESTING`] nested
//!   `__tojson` calls, both counted per thread so a `__tojson` that
//!   re-enters `encode` is bounded too. Deeper input is "Too many levels",
//!   never a stack overflow: the deepest legal case fits a 2 MiB thread
//!   stack in a debug build (tested).
//! - An error a `__tojson` raises reaches the caller of `encode` as the
//!   same value (see `ENCODE_WRAPPER`).
//! - A writer only ever holds valid JSON: every token is checked against
//!   the container it goes into before a byte is written, literals are
//!   validated, strings must be UTF-8, numbers finite. A failed call writes
//!   nothing; `generate` refuses an unfinished document.

use crate::actor::vm::unless_closing;
use std::cell::{Cell, RefCell};

use mlua::{
    AnyUserData, Function, Lua, LuaString, MetaMethod, MultiValue, Table, UserData,
    UserDataMethods, Value,
};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::modules::error::{
    einval, CoreError, ErrField, ErrorCode, JsonDomError, JsonSyntaxError,
};

/// Containers nested deeper than this are refused ("Too many levels"), by
/// `decode` (serde_json's recursion limit, which counts the same way) and by
/// `encode`/the writer.
pub const MAX_DEPTH: usize = 127;

/// Longest `opts.indent`: indentation is repeated per level on every line,
/// so its length multiplies the output (at most 127 levels × this much
/// per element).
pub const MAX_INDENT: usize = 16;

const NULL_KEY: &str = "luring.json.null";
const ARRAY_MT_KEY: &str = "luring.json.array_mt";
const RAW_PCALL_KEY: &str = "luring.json.raw_pcall";
/// `{value}`: what a `__tojson` raised, on its way out of `encode`.
const PENDING_KEY: &str = "luring.json.pending_error";

/// `json.encode` as user code sees it. An error a `__tojson` raises must
/// reach the caller unchanged (a table stays that table), but mlua turns a
/// Lua error that crosses a Rust function into a message string. So the
/// Rust encoder calls `__tojson` under the raw `pcall`, parks what it raised
/// and fails; this wrapper raises the parked value again.
const ENCODE_WRAPPER: &str = r#"
local rust_encode, raw_pcall, take_pending, error = ...
return function(value, opts)
  local ok, r = raw_pcall(rust_encode, value, opts)
  if ok then return r end
  local parked, original = take_pending()
  if parked then error(original, 0) end
  error(r, 0)
end
"#;

/// The Rust error that stands for a parked `__tojson` error.
#[derive(Debug, thiserror::Error)]
#[error("json: __tojson raised an error")]
struct TojsonRaised;

// ---------------------------------------------------------------------------
// Registration

/// `json.null`: compares equal only to itself, `tostring` gives "null".
struct JsonNull;

impl UserData for JsonNull {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(MetaMethod::Index, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::core(CoreError::BadIndex).into())
        });
        methods.add_meta_function(MetaMethod::NewIndex, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::generic(libc::EPERM).into())
        });
        methods.add_meta_function(MetaMethod::ToString, |_, ()| Ok("null"));
    }
}

/// Puts `json` into `k.builtin_modules`. Everything it needs (the module
/// table, `json.null`, the array metatable, the userdata metatables, the
/// encode wrapper) is built on first `require`: most VMs never use JSON,
/// and each would otherwise pay for it at boot.
pub(crate) fn register(lua: &Lua, k: &Table) -> mlua::Result<()> {
    let k2 = k.clone();
    // The boot-time globals: the encode wrapper is runtime code, whose
    // environment must not be the requiring module's (getfenv hides it).
    let globals = lua.globals();
    let build = lua.create_function(unless_closing(move |lua, ()| {
        build_module(lua, &k2, &globals)
    }))?;
    k.get::<Table>("builtin_modules")?.raw_set("json", build)
}

/// The `json` module table (called once per VM: modules.lua caches it).
fn build_module(lua: &Lua, k: &Table, globals: &Table) -> mlua::Result<Table> {
    let null = lua.create_userdata(JsonNull)?;
    super::name_userdata_metatable(lua, null.clone(), c"json-null")?;
    lua.set_named_registry_value(NULL_KEY, null)?;
    let array_mt = lua.create_table()?;
    array_mt.raw_set("__metatable", "json.array")?;
    lua.set_named_registry_value(ARRAY_MT_KEY, array_mt)?;
    let probe = lua.create_userdata(JsonWriter::new(None))?;
    super::name_userdata_metatable(lua, probe, c"json.writer")?;
    let raw_pcall: Function = k.get("raw_pcall")?;
    lua.set_named_registry_value(RAW_PCALL_KEY, raw_pcall.clone())?;
    let take_pending = lua.create_function(unless_closing(|lua, ()| {
        let pending: Value = lua.named_registry_value(PENDING_KEY)?;
        lua.set_named_registry_value(PENDING_KEY, Value::Nil)?;
        match pending {
            Value::Table(t) => Ok((true, t.raw_get::<Value>(1)?)),
            _ => Ok((false, Value::Nil)),
        }
    }))?;
    let error: Function = k.get("raw_error")?;
    let encode: Function = lua
        .load(ENCODE_WRAPPER)
        .set_name("=json.encode")
        .set_environment(globals.clone())
        .call((
            lua.create_function(unless_closing(lua_encode))?,
            raw_pcall,
            take_pending,
            error,
        ))?;

    let m = lua.create_table()?;
    m.raw_set("null", null_value(lua)?)?;
    m.raw_set("encode", encode)?;
    m.raw_set("decode", lua.create_function(unless_closing(lua_decode))?)?;
    m.raw_set(
        "is_array",
        lua.create_function(unless_closing(lua_is_array))?,
    )?;
    m.raw_set(
        "into_array",
        lua.create_function(unless_closing(lua_into_array))?,
    )?;
    let writer = lua.create_table()?;
    writer.raw_set(
        "new",
        lua.create_function(unless_closing(|lua, ()| {
            lua.create_userdata(JsonWriter::new(None))
        }))?,
    )?;
    m.raw_set("writer", writer)?;
    // `get`: errors.lua makes these categories on their first lookup.
    let categories: Table = k.raw_get("categories")?;
    m.raw_set("dom_ecat", categories.get::<Value>("emilua.json.dom")?)?;
    m.raw_set(
        "lexer_ecat",
        categories.get::<Value>("trial.protocol.json")?,
    )?;
    Ok(m)
}

fn null_value(lua: &Lua) -> mlua::Result<AnyUserData> {
    lua.named_registry_value(NULL_KEY)
}

fn array_mt(lua: &Lua) -> mlua::Result<Table> {
    lua.named_registry_value(ARRAY_MT_KEY)
}

fn dom(code: JsonDomError) -> mlua::Error {
    ErrorCode::json(code).into()
}

fn syntax(code: JsonSyntaxError) -> mlua::Error {
    ErrorCode::json_syntax(code).into()
}

// ---------------------------------------------------------------------------
// is_array / into_array

/// `json.is_array(v)`: true for a table tagged by `into_array` or `decode`.
fn lua_is_array(lua: &Lua, v: Value) -> mlua::Result<bool> {
    match v {
        Value::Table(t) => {
            let mt = array_mt(lua)?;
            Ok(t.metatable().is_some_and(|m| m == mt))
        }
        _ => Ok(false),
    }
}

/// `json.into_array([t])`: tags `t` (or a new table) as a JSON array. A
/// table with another metatable is refused (EINVAL): its metatable stays.
fn lua_into_array(lua: &Lua, args: MultiValue) -> mlua::Result<Table> {
    let mt = array_mt(lua)?;
    match args.into_iter().next() {
        None => {
            let t = lua.create_table()?;
            t.set_metatable(Some(mt))?;
            Ok(t)
        }
        Some(Value::Table(t)) => match t.metatable() {
            None => {
                t.set_metatable(Some(mt))?;
                Ok(t)
            }
            Some(m) if m == mt => Ok(t),
            Some(_) => Err(einval(1)),
        },
        Some(_) => Err(einval(1)),
    }
}

// ---------------------------------------------------------------------------
// The writer

/// One open container of a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    array: bool,
    /// Complete values in it (elements, or members' values).
    count: usize,
    /// An object waits for a key (not for a member's value).
    expect_key: bool,
}

/// Where a writer is: how deep, and how many values are complete there
/// (at the top level: 0 or 1). `__tojson` must advance it by one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    depth: usize,
    count: usize,
}

/// An incremental JSON generator (Emilua's `json.writer`): keeps track of
/// the containers it is in and writes separators itself.
pub struct JsonWriter {
    out: Vec<u8>,
    stack: Vec<Frame>,
    /// A whole top-level value has been written.
    done: bool,
    /// `generate` was called: the writer is spent.
    spent: bool,
    indent: Option<Vec<u8>>,
}

/// What a token is, for the checks before it is written.
#[derive(PartialEq, Eq)]
enum Token {
    /// A string: a key in key position, a value elsewhere.
    Str,
    /// Any other value, or the start of a container.
    Other,
}

impl JsonWriter {
    fn new(indent: Option<Vec<u8>>) -> Self {
        Self {
            out: Vec::new(),
            stack: Vec::new(),
            done: false,
            spent: false,
            indent,
        }
    }

    fn level(&self) -> usize {
        self.stack.len()
    }

    fn newline(&mut self, level: usize) {
        if let Some(indent) = &self.indent {
            self.out.push(b'\n');
            for _ in 0..level {
                self.out.extend_from_slice(indent);
            }
        }
    }

    fn position(&self) -> Position {
        match self.stack.last() {
            None => Position {
                depth: 0,
                count: usize::from(self.done),
            },
            Some(f) => Position {
                depth: self.stack.len(),
                count: f.count,
            },
        }
    }

    /// Checks that `token` may come next; returns true when it is a key.
    fn check(&self, token: &Token) -> mlua::Result<bool> {
        if self.spent {
            return Err(einval(1));
        }
        match self.stack.last() {
            None if self.done => Err(syntax(JsonSyntaxError::UnexpectedToken)),
            Some(f) if !f.array && f.expect_key => {
                if *token == Token::Str {
                    Ok(true)
                } else {
                    Err(syntax(JsonSyntaxError::InvalidKey))
                }
            }
            _ => Ok(false),
        }
    }

    /// Writes the separator before a token that `check` accepted.
    fn separate(&mut self, is_key: bool) {
        let level = self.stack.len();
        let Some(f) = self.stack.last() else {
            return;
        };
        // an element, or a member's key (its value follows the ':')
        if f.array || is_key {
            if f.count > 0 {
                self.out.push(b',');
            }
            self.newline(level);
        }
    }

    /// Bookkeeping after a complete value (or key) was written.
    fn finish(&mut self, was_key: bool) {
        let spaced = self.indent.is_some();
        match self.stack.last_mut() {
            None => self.done = true,
            Some(f) if was_key => {
                f.expect_key = false;
                self.out.push(b':');
                if spaced {
                    self.out.push(b' ');
                }
            }
            Some(f) => {
                f.count += 1;
                f.expect_key = !f.array;
            }
        }
    }

    fn string(&mut self, s: &[u8]) -> mlua::Result<()> {
        let text = std::str::from_utf8(s).map_err(|_| ErrorCode::generic(libc::EILSEQ))?;
        let is_key = self.check(&Token::Str)?;
        self.separate(is_key);
        serde_json::to_writer(&mut self.out, text).map_err(mlua::Error::external)?;
        self.finish(is_key);
        Ok(())
    }

    fn number(&mut self, n: f64) -> mlua::Result<()> {
        if !n.is_finite() {
            return Err(dom(JsonDomError::OutOfRange));
        }
        let is_key = self.check(&Token::Other)?;
        self.separate(is_key);
        write_number(&mut self.out, n);
        self.finish(is_key);
        Ok(())
    }

    fn raw_token(&mut self, text: &[u8]) -> mlua::Result<()> {
        let is_key = self.check(&Token::Other)?;
        self.separate(is_key);
        self.out.extend_from_slice(text);
        self.finish(is_key);
        Ok(())
    }

    fn begin(&mut self, array: bool) -> mlua::Result<()> {
        let is_key = self.check(&Token::Other)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(dom(JsonDomError::TooManyLevels));
        }
        self.separate(is_key);
        self.out.push(if array { b'[' } else { b'{' });
        self.stack.push(Frame {
            array,
            count: 0,
            expect_key: !array,
        });
        Ok(())
    }

    fn end(&mut self, array: bool) -> mlua::Result<()> {
        if self.spent {
            return Err(einval(1));
        }
        let empty = match self.stack.last() {
            Some(f) if f.array == array && (array || f.expect_key) => f.count == 0,
            // a key without its value
            Some(f) if !f.array && !array => return Err(syntax(JsonSyntaxError::UnexpectedToken)),
            _ if array => return Err(syntax(JsonSyntaxError::UnbalancedEndArray)),
            _ => return Err(syntax(JsonSyntaxError::UnbalancedEndObject)),
        };
        self.stack.pop();
        if !empty {
            self.newline(self.stack.len());
        }
        self.out.push(if array { b']' } else { b'}' });
        self.finish(false);
        Ok(())
    }

    /// A raw JSON text: checked to be one valid JSON value (a string in key
    /// position) so the output stays valid.
    fn literal(&mut self, raw: &[u8]) -> mlua::Result<()> {
        let parsed: serde_json::Value =
            serde_json::from_slice(raw).map_err(|e| parse_error(&e, None))?;
        let is_key = self.check(if parsed.is_string() {
            &Token::Str
        } else {
            &Token::Other
        })?;
        if self.stack.len() + nesting(&parsed) > MAX_DEPTH {
            return Err(dom(JsonDomError::TooManyLevels));
        }
        self.separate(is_key);
        self.out.extend_from_slice(raw);
        self.finish(is_key);
        Ok(())
    }

    fn generate(&mut self) -> mlua::Result<Vec<u8>> {
        if self.spent {
            return Err(einval(1));
        }
        if !self.done {
            return Err(syntax(JsonSyntaxError::InsufficientTokens));
        }
        self.spent = true;
        Ok(std::mem::take(&mut self.out))
    }
}

/// How many containers deep a parsed value is (serde_json parsed it, so at
/// most its recursion limit).
fn nesting(v: &serde_json::Value) -> usize {
    match v {
        serde_json::Value::Array(a) => 1 + a.iter().map(nesting).max().unwrap_or(0),
        serde_json::Value::Object(o) => 1 + o.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// A finite number as JSON: integral values up to 2^63 without a fraction
/// ("3", not "3.0"), anything else in the shortest form that reads back as
/// the same double.
fn write_number(out: &mut Vec<u8>, n: f64) {
    const I64_BOUND: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.fract() == 0.0 && n.abs() < I64_BOUND {
        out.extend_from_slice((n as i64).to_string().as_bytes());
    } else {
        // serde_json writes finite doubles in the shortest round-trip form
        // ("0.1", "1e300"); it cannot fail on a Vec.
        let _ = serde_json::to_writer(&mut *out, &n);
    }
}

fn writer_arg(v: &Value) -> mlua::Result<AnyUserData> {
    match v {
        Value::UserData(ud) if ud.is::<JsonWriter>() => Ok(ud.clone()),
        _ => Err(einval(1)),
    }
}

fn with_writer<R>(
    ud: &AnyUserData,
    f: impl FnOnce(&mut JsonWriter) -> mlua::Result<R>,
) -> mlua::Result<R> {
    let mut w = ud.borrow_mut::<JsonWriter>().map_err(|_| einval(1))?;
    f(&mut w)
}

/// `writer:value(v)` for one scalar (or `json.null`).
fn write_scalar(lua: &Lua, w: &AnyUserData, v: &Value, arg: i32) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => with_writer(w, |w| w.raw_token(if *b { b"true" } else { b"false" })),
        Value::Integer(i) => with_writer(w, |w| w.number(*i as f64)),
        Value::Number(n) => with_writer(w, |w| w.number(*n)),
        Value::String(s) => with_writer(w, |w| w.string(&s.as_bytes())),
        Value::UserData(ud) if *ud == null_value(lua)? => with_writer(w, |w| w.raw_token(b"null")),
        _ => Err(einval(arg)),
    }
}

impl UserData for JsonWriter {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function(
            "value",
            unless_closing(|lua, (this, v): (Value, Value)| {
                let w = writer_arg(&this)?;
                write_scalar(lua, &w, &v, 2)
            }),
        );
        methods.add_function(
            "begin_object",
            unless_closing(|_, this: Value| with_writer(&writer_arg(&this)?, |w| w.begin(false))),
        );
        methods.add_function(
            "end_object",
            unless_closing(|_, this: Value| with_writer(&writer_arg(&this)?, |w| w.end(false))),
        );
        methods.add_function(
            "begin_array",
            unless_closing(|_, this: Value| with_writer(&writer_arg(&this)?, |w| w.begin(true))),
        );
        methods.add_function(
            "end_array",
            unless_closing(|_, this: Value| with_writer(&writer_arg(&this)?, |w| w.end(true))),
        );
        methods.add_function(
            "literal",
            unless_closing(|_, (this, raw): (Value, Value)| {
                let w = writer_arg(&this)?;
                let Value::String(raw) = raw else {
                    return Err(einval(2));
                };
                with_writer(&w, |w| w.literal(&raw.as_bytes()))
            }),
        );
        methods.add_function(
            "generate",
            unless_closing(|lua, this: Value| {
                let bytes = with_writer(&writer_arg(&this)?, |w| w.generate())?;
                lua.create_string(bytes)
            }),
        );
        // mlua's generated `__index` looks up the methods above first and
        // calls this for every other key.
        methods.add_meta_function(
            MetaMethod::Index,
            unless_closing(|_, (this, key): (Value, Value)| {
                let w = writer_arg(&this)?;
                match key {
                    Value::String(s) if s.as_bytes() == b"level" => {
                        with_writer(&w, |w| Ok(w.level()))
                    }
                    _ => Err(ErrorCode::core(CoreError::BadIndex).into()),
                }
            }),
        );
        methods.add_meta_function(MetaMethod::NewIndex, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::generic(libc::EPERM).into())
        });
    }
}

// ---------------------------------------------------------------------------
// encode

/// `__tojson` calls nested in each other (through `json.encode` called
/// from a `__tojson`) beyond this are "Too many levels": each one costs a
/// Rust-to-Lua-to-Rust round trip of stack, far more than a plain table.
pub const MAX_TOJSON_NESTING: usize = 16;

thread_local! {
    /// Tables and `__tojson` calls the encoders on this thread are inside,
    /// across re-entrant `encode` calls.
    static ENCODE_DEPTH: Cell<usize> = const { Cell::new(0) };
    /// The `__tojson` calls among them.
    static TOJSON_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Counts one level of encoder recursion for as long as it lives.
struct DepthGuard(&'static std::thread::LocalKey<Cell<usize>>);

impl DepthGuard {
    fn enter(
        counter: &'static std::thread::LocalKey<Cell<usize>>,
        limit: usize,
    ) -> mlua::Result<DepthGuard> {
        counter.with(|d| {
            if d.get() >= limit {
                Err(dom(JsonDomError::TooManyLevels))
            } else {
                d.set(d.get() + 1);
                Ok(DepthGuard(counter))
            }
        })
    }
}

impl Drop for DepthGuard {
    fn drop(&mut self) {
        self.0.with(|d| d.set(d.get() - 1));
    }
}

/// One encode call: the writer, the `visited` table shared with `__tojson`
/// and the `state` table handed to it (made when first needed).
struct Encoder<'a> {
    lua: &'a Lua,
    writer: AnyUserData,
    visited: Table,
    state: RefCell<Option<Table>>,
    indent: Option<LuaString>,
    null: AnyUserData,
    array_mt: Table,
}

impl Encoder<'_> {
    fn state(&self) -> mlua::Result<Table> {
        if let Some(s) = &*self.state.borrow() {
            return Ok(s.clone());
        }
        let s = self.lua.create_table()?;
        s.raw_set("writer", self.writer.clone())?;
        s.raw_set("visited", self.visited.clone())?;
        s.raw_set("indent", self.indent.clone())?;
        *self.state.borrow_mut() = Some(s.clone());
        Ok(s)
    }

    fn enter(&self, t: &Table) -> mlua::Result<()> {
        if self.visited.raw_get::<Value>(t)? != Value::Nil {
            return Err(dom(JsonDomError::CycleExists));
        }
        self.visited.raw_set(t, true)
    }

    fn leave(&self, t: &Table) -> mlua::Result<()> {
        self.visited.raw_set(t, Value::Nil)
    }

    fn write(&self, f: impl FnOnce(&mut JsonWriter) -> mlua::Result<()>) -> mlua::Result<()> {
        with_writer(&self.writer, f)
    }

    fn is_null(&self, ud: &AnyUserData) -> bool {
        *ud == self.null
    }

    /// A top-level value or an array element: anything that has no JSON form
    /// is an error (EINVAL).
    fn value(&self, v: &Value) -> mlua::Result<()> {
        match v {
            Value::Table(t) => self.table(t),
            Value::UserData(ud) if self.is_null(ud) => self.write(|w| w.raw_token(b"null")),
            Value::Boolean(_) | Value::Integer(_) | Value::Number(_) | Value::String(_) => {
                write_scalar(self.lua, &self.writer, v, 1)
            }
            _ => Err(ErrorCode::generic(libc::EINVAL).into()),
        }
    }

    fn table(&self, t: &Table) -> mlua::Result<()> {
        let _depth = DepthGuard::enter(&ENCODE_DEPTH, MAX_DEPTH)?;
        if let Some(tojson) = tojson_hook(t)? {
            let _nesting = DepthGuard::enter(&TOJSON_DEPTH, MAX_TOJSON_NESTING)?;
            self.enter(t)?;
            let before = with_writer(&self.writer, |w| Ok(w.position()))?;
            let raw_pcall: Function = self.lua.named_registry_value(RAW_PCALL_KEY)?;
            let (ok, raised): (bool, Value) = raw_pcall.call((tojson, t.clone(), self.state()?))?;
            if !ok {
                let parked = self.lua.create_table()?;
                parked.raw_set(1, raised)?;
                self.lua.set_named_registry_value(PENDING_KEY, parked)?;
                return Err(mlua::Error::external(TojsonRaised));
            }
            let after = with_writer(&self.writer, |w| Ok(w.position()))?;
            // exactly one value, every container it opened closed again
            if after.depth > before.depth {
                return Err(syntax(JsonSyntaxError::InsufficientTokens));
            }
            if after.depth < before.depth || after.count != before.count + 1 {
                return Err(syntax(if after.count <= before.count {
                    JsonSyntaxError::InsufficientTokens
                } else {
                    JsonSyntaxError::UnexpectedToken
                }));
            }
            return self.leave(t);
        }
        self.enter(t)?;
        if t.metatable().is_some_and(|m| m == self.array_mt) || t.raw_len() > 0 {
            self.write(|w| w.begin(true))?;
            // ipairs order: 1, 2, ... up to the first nil
            let mut i: i64 = 1;
            loop {
                let v: Value = t.raw_get(i)?;
                if v == Value::Nil {
                    break;
                }
                self.value(&v)?;
                i += 1;
            }
            self.write(|w| w.end(true))?;
        } else {
            self.write(|w| w.begin(false))?;
            // String keys only, in byte order so the output is stable. The
            // keys are copied out: a Rust-side handle per member would
            // exhaust LuaJIT's handle stack on a big table.
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for pair in t.pairs::<Value, Value>() {
                if let (Value::String(k), _) = pair? {
                    keys.push(k.as_bytes().to_vec());
                }
            }
            keys.sort_unstable();
            for k in &keys {
                let key = self.lua.create_string(k)?;
                let v: Value = t.raw_get(&key)?;
                self.member(&key, &v)?;
            }
            self.write(|w| w.end(false))?;
        }
        self.leave(t)
    }

    /// An object member: values without a JSON form (functions, threads,
    /// userdata other than `json.null`) are left out, as Emilua does.
    fn member(&self, k: &LuaString, v: &Value) -> mlua::Result<()> {
        match v {
            Value::Boolean(_) | Value::Integer(_) | Value::Number(_) | Value::String(_) => {
                self.write(|w| w.string(&k.as_bytes()))?;
                write_scalar(self.lua, &self.writer, v, 1)
            }
            Value::UserData(ud) if self.is_null(ud) => {
                self.write(|w| w.string(&k.as_bytes()))?;
                self.write(|w| w.raw_token(b"null"))
            }
            Value::Table(t) => {
                self.write(|w| w.string(&k.as_bytes()))?;
                self.table(t)
            }
            _ => Ok(()),
        }
    }
}

/// The `__tojson` of `t`'s real metatable, read raw.
fn tojson_hook(t: &Table) -> mlua::Result<Option<Function>> {
    let Some(mt) = t.metatable() else {
        return Ok(None);
    };
    match mt.raw_get::<Value>("__tojson")? {
        Value::Nil => Ok(None),
        Value::Function(f) => Ok(Some(f)),
        _ => Err(ErrorCode::generic(libc::EINVAL).into()),
    }
}

/// `json.encode(v[, opts])`: the JSON text of `v`; with `opts.state` (the
/// state a `__tojson` received) it writes `v` into that state's writer and
/// returns nothing.
fn lua_encode(lua: &Lua, (v, opts): (Value, Value)) -> mlua::Result<Option<LuaString>> {
    let opts = match opts {
        Value::Nil => None,
        Value::Table(t) => Some(t),
        _ => return Err(einval(2)),
    };
    let state = match &opts {
        Some(o) => match o.raw_get::<Value>("state")? {
            Value::Nil => None,
            Value::Table(s) => Some(s),
            _ => return Err(einval(2)),
        },
        None => None,
    };
    let null = null_value(lua)?;
    if let Some(state) = state {
        let writer = match state.raw_get::<Value>("writer")? {
            Value::UserData(ud) if ud.is::<JsonWriter>() => ud,
            _ => return Err(einval(2)),
        };
        let Value::Table(visited) = state.raw_get::<Value>("visited")? else {
            return Err(einval(2));
        };
        let indent = match state.raw_get::<Value>("indent")? {
            Value::String(s) => Some(s),
            _ => None,
        };
        let enc = Encoder {
            lua,
            writer,
            visited,
            state: RefCell::new(Some(state)),
            indent,
            null,
            array_mt: array_mt(lua)?,
        };
        enc.value(&v)?;
        return Ok(None);
    }
    let indent = match &opts {
        Some(o) => match o.raw_get::<Value>("indent")? {
            Value::Nil => None,
            Value::String(s) if s.as_bytes().len() <= MAX_INDENT => Some(s),
            _ => return Err(einval(2)),
        },
        None => None,
    };
    let writer = lua.create_userdata(JsonWriter::new(
        indent.as_ref().map(|s| s.as_bytes().to_vec()),
    ))?;
    let enc = Encoder {
        lua,
        writer: writer.clone(),
        visited: lua.create_table()?,
        state: RefCell::new(None),
        indent,
        null,
        array_mt: array_mt(lua)?,
    };
    enc.value(&v)?;
    let bytes = with_writer(&writer, |w| w.generate())?;
    Ok(Some(lua.create_string(bytes)?))
}

// ---------------------------------------------------------------------------
// decode

/// Builds Lua values straight from serde_json's parser.
#[derive(Clone, Copy)]
struct LuaSeed<'a> {
    lua: &'a Lua,
    cx: &'a DecodeCx,
}

struct DecodeCx {
    null: AnyUserData,
    array_mt: Table,
    /// Keys and (1-based) indices down to the value being parsed: the
    /// `path` field of a range error, as Emilua gives it.
    path: RefCell<Vec<ErrField>>,
    /// A Lua or dom error met while building, reported instead of the
    /// serde_json error it had to be wrapped in.
    failure: RefCell<Option<mlua::Error>>,
}

impl DecodeCx {
    fn path(&self) -> ErrField {
        ErrField::List(self.path.borrow().clone())
    }
}

impl LuaSeed<'_> {
    fn fail<E: serde::de::Error>(&self, e: mlua::Error) -> E {
        *self.cx.failure.borrow_mut() = Some(e);
        E::custom("luring: value could not be built")
    }
}

impl<'de> DeserializeSeed<'de> for LuaSeed<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LuaSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v as f64))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.lua
            .create_string(v)
            .map(Value::String)
            .map_err(|e| self.fail(e))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::UserData(self.cx.null.clone()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let t = self.lua.create_table().map_err(|e| self.fail(e))?;
        t.set_metatable(Some(self.cx.array_mt.clone()))
            .map_err(|e| self.fail(e))?;
        let mut n: i64 = 0;
        self.cx.path.borrow_mut().push(ErrField::Int(1));
        loop {
            if let Some(top) = self.cx.path.borrow_mut().last_mut() {
                *top = ErrField::Int(n + 1);
            }
            let Some(v) = seq.next_element_seed(self)? else {
                break;
            };
            if n == i64::from(i32::MAX) {
                let e = ErrorCode::json(JsonDomError::ArrayTooLong).field("path", self.cx.path());
                return Err(self.fail(e.into()));
            }
            n += 1;
            t.raw_set(n, v).map_err(|e| self.fail(e))?;
        }
        self.cx.path.borrow_mut().pop();
        Ok(Value::Table(t))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let t = self.lua.create_table().map_err(|e| self.fail(e))?;
        self.cx.path.borrow_mut().push(ErrField::Str(String::new()));
        while let Some(k) = map.next_key_seed(self)? {
            if let (Value::String(key), Some(top)) = (&k, self.cx.path.borrow_mut().last_mut()) {
                *top = ErrField::Str(String::from_utf8_lossy(&key.as_bytes()).into_owned());
            }
            let v = map.next_value_seed(self)?;
            // a repeated key: the last one wins
            t.raw_set(k, v).map_err(|e| self.fail(e))?;
        }
        self.cx.path.borrow_mut().pop();
        Ok(Value::Table(t))
    }
}

/// The `trial.protocol.json` code closest to what serde_json reports.
fn syntax_code(e: &serde_json::Error) -> JsonSyntaxError {
    use serde_json::error::Category;
    if e.classify() == Category::Eof {
        return JsonSyntaxError::InsufficientTokens;
    }
    let msg = e.to_string();
    if msg.starts_with("expected `,` or `]`") {
        JsonSyntaxError::ExpectedEndArray
    } else if msg.starts_with("expected `,` or `}`") {
        JsonSyntaxError::ExpectedEndObject
    } else if msg.starts_with("key must be a string") || msg.starts_with("expected `:`") {
        JsonSyntaxError::InvalidKey
    } else if msg.starts_with("invalid")
        || msg.starts_with("control character")
        || msg.starts_with("lone leading surrogate")
        || msg.starts_with("unexpected end of hex escape")
        || msg.starts_with("number out of range")
    {
        JsonSyntaxError::InvalidValue
    } else {
        JsonSyntaxError::UnexpectedToken
    }
}

/// The error value for a text serde_json refused. A range error names
/// the value (`path`, when known); a syntax error where the text went
/// wrong (`line`, `column`, 1-based; a luring addition).
fn parse_error(e: &serde_json::Error, path: Option<ErrField>) -> mlua::Error {
    let msg = e.to_string();
    if msg.starts_with("recursion limit exceeded") {
        // no path: building it for hostile nesting would cost what the
        // limit saves (Emilua leaves it out too)
        dom(JsonDomError::TooManyLevels)
    } else if msg.starts_with("number out of range") {
        let err = ErrorCode::json(JsonDomError::OutOfRange);
        match path {
            Some(p) => err.field("path", p).into(),
            None => err.into(),
        }
    } else {
        ErrorCode::json_syntax(syntax_code(e))
            .field("line", ErrField::Int(e.line() as i64))
            .field("column", ErrField::Int(e.column() as i64))
            .into()
    }
}

/// `json.decode(text)`: the Lua value of one JSON text. Arrays come back
/// tagged (`is_array`), `null` as `json.null`, numbers as Lua numbers.
fn lua_decode(lua: &Lua, text: Value) -> mlua::Result<Value> {
    let Value::String(text) = text else {
        return Err(einval(1));
    };
    let bytes = text.as_bytes();
    let cx = DecodeCx {
        null: null_value(lua)?,
        array_mt: array_mt(lua)?,
        path: RefCell::new(Vec::new()),
        failure: RefCell::new(None),
    };
    let seed = LuaSeed { lua, cx: &cx };
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let result = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            if let Some(failure) = cx.failure.borrow_mut().take() {
                return Err(failure);
            }
            Err(parse_error(&e, Some(cx.path())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare VM with the json module table (no scheduler, no categories).
    fn json_vm() -> (Lua, Table) {
        let lua = Lua::new();
        let k = lua.create_table().unwrap();
        k.set("builtin_modules", lua.create_table().unwrap())
            .unwrap();
        k.set("categories", lua.create_table().unwrap()).unwrap();
        k.set("raw_pcall", lua.globals().get::<Function>("pcall").unwrap())
            .unwrap();
        k.set("raw_error", lua.globals().get::<Function>("error").unwrap())
            .unwrap();
        register(&lua, &k).unwrap();
        let build: Function = k
            .get::<Table>("builtin_modules")
            .unwrap()
            .get("json")
            .unwrap();
        let json: Table = build.call(()).unwrap();
        lua.globals().set("json", json.clone()).unwrap();
        (lua, json)
    }

    fn error_code(e: &mlua::Error) -> Option<ErrorCode> {
        match e {
            mlua::Error::ExternalError(inner) => inner.downcast_ref::<ErrorCode>().cloned(),
            mlua::Error::CallbackError { cause, .. } => error_code(cause),
            _ => None,
        }
    }

    /// The deepest documents both ways, and an endless `__tojson` chain,
    /// fit in a small thread stack: depth is bounded before the stack is.
    /// Runs `src` in a fresh json VM on a thread with Rust's default
    /// stack (2 MiB, what `std::thread::spawn` gives an actor thread).
    fn on_default_stack(src: String) -> Result<(), String> {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let (lua, _) = json_vm();
                lua.load(src).exec().map_err(|e| {
                    error_code(&e).map_or_else(
                        || e.to_string(),
                        |c| format!("{}:{}", c.category.name(), c.code),
                    )
                })
            })
            .expect("thread starts")
            .join()
            .expect("no stack overflow")
    }

    /// The deepest documents both ways, and the deepest `__tojson` nesting
    /// with the deepest tables inside, fit in a default thread stack even
    /// in a debug build: depth is bounded before the stack is.
    #[test]
    fn maximum_depth_fits_a_default_thread_stack() {
        let n = MAX_DEPTH;
        on_default_stack(format!(
            "local s = string.rep('[', {n}) .. string.rep(']', {n})
             assert(#json.encode(json.decode(s)) == 2 * {n})"
        ))
        .expect("the deepest document round-trips");
        // __tojson levels, each wrapping tables, up to both limits
        let per = (MAX_DEPTH - MAX_TOJSON_NESTING) / MAX_TOJSON_NESTING;
        let script = |rest: usize| {
            format!(
                "local function wrap(t, n)
               for _ = 1, n do t = {{ t }} end
               return t
             end
             local function chain(left)
               if left == 0 then return wrap({{}}, {rest}) end
               return setmetatable({{}}, {{ __tojson = function(_, state)
                 json.encode(wrap(chain(left - 1), {per}), {{ state = state }}) end }})
             end
             local text = json.encode(chain({m}))",
                m = MAX_TOJSON_NESTING,
            )
        };
        let rest = MAX_DEPTH - MAX_TOJSON_NESTING * (per + 1) - 1;
        on_default_stack(script(rest)).expect("the deepest legal nesting encodes");
        assert_eq!(
            on_default_stack(script(rest + 1)),
            Err("emilua.json.dom:2".to_string()),
            "one table more is too deep"
        );
        let endless = "local function chain()
               return setmetatable({}, { __tojson = function(_, state)
                 json.encode(chain(), { state = state }) end })
             end
             json.encode(chain())"
            .to_string();
        assert_eq!(
            on_default_stack(endless),
            Err("emilua.json.dom:2".to_string()),
            "an endless __tojson chain stops with Too many levels"
        );
        let fresh = "local function chain()
               return setmetatable({}, { __tojson = function(_, state)
                 state.writer:value(json.encode(chain())) end })
             end
             json.encode(chain())"
            .to_string();
        assert_eq!(
            on_default_stack(fresh),
            Err("emilua.json.dom:2".to_string())
        );
    }

    #[test]
    fn decoded_arrays_and_null_are_the_registered_ones() {
        let (lua, json) = json_vm();
        let v: Table = lua.load("return json.decode('[null]')").eval().unwrap();
        assert_eq!(v.metatable(), Some(array_mt(&lua).unwrap()));
        let null: AnyUserData = v.raw_get(1).unwrap();
        assert_eq!(null, json.get::<AnyUserData>("null").unwrap());
    }

    #[test]
    fn writer_never_holds_invalid_json() {
        let mut w = JsonWriter::new(None);
        w.begin(false).unwrap();
        assert!(w.number(1.0).is_err(), "a key must be a string");
        w.string(b"k").unwrap();
        assert!(w.end(false).is_err(), "a key needs its value");
        assert!(w.literal(b"[1,").is_err());
        w.literal(b"[1, {\"a\": null}]").unwrap();
        assert!(w.generate().is_err(), "unfinished");
        w.end(false).unwrap();
        let out = w.generate().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON");
        assert_eq!(out, b"{\"k\":[1, {\"a\": null}]}");
    }

    #[test]
    fn numbers_are_integers_when_integral() {
        let mut out = Vec::new();
        for n in [0.0, -0.0, 1.0, -1.0, 2f64.powi(53), 0.5, 1e300, -1e-7] {
            out.clear();
            write_number(&mut out, n);
            let back: f64 = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, n, "{}", String::from_utf8_lossy(&out));
            if n.fract() == 0.0 && n.abs() < 1e15 {
                assert!(!out.contains(&b'.') && !out.contains(&b'e'));
            }
        }
    }
}
