//! The `format(fmt, ...)` global: {fmt}-library format strings (Emilua's
//! `format`), e.g. `format('{} and {:>5}', a, b)`, `{0}`, `{name}`,
//! `{:.2f}`, `{:#x}`, `{:*^9}`, `{:.{}f}`, `{{` / `}}`.
//!
//! Invariants:
//! - Arguments are booleans, numbers, strings, or `{name, value}` pairs (a
//!   named argument, also reachable by position); anything else is EINVAL
//!   naming that argument. No metamethod of any value is ever called (no
//!   `__tostring`, no `__index`: pairs are read raw).
//! - The format string is parsed here (the spec grammar is {fmt}'s); the
//!   digits come from Rust's formatting (`{:.*}`, `{:.*e}`, `{:x}`, ...),
//!   padding is done here so any fill character works.
//! - Width and precision, literal or from an argument, are capped at
//!   [`MAX_WIDTH`]: a spec can never make the result grow beyond what the
//!   caller could have written out themselves. Every malformed spec,
//!   missing argument or spec that does not fit its argument is EINVAL
//!   (arg 1: the format string; arg n: the n-th argument of `format`), and
//!   nothing is returned.
//! - One call adds at most [`MAX_GROWTH`] bytes (padding, digits) to the
//!   text it was given, else it fails with ENOMEM before growing further.

use crate::actor::vm::unless_closing;
use mlua::{Lua, LuaString, MultiValue, Value};

use crate::modules::error::{einval, ErrorCode};

/// Largest width or precision a spec may ask for. Rust's formatter takes a
/// precision of at most 65535, and `{:g}` asks it for up to 4 digits more
/// than the spec's precision.
pub const MAX_WIDTH: usize = 60_000;

/// What one call may add beyond the text it was given (the format string
/// and the string arguments): padding and digits. Without it, a short
/// format string of many `{:60000}` fields could allocate gigabytes
/// outside the Lua heap.
pub const MAX_GROWTH: usize = 16 * 1024 * 1024;

/// One argument of `format`, after the type check.
enum Arg {
    Bool(bool),
    Num(f64),
    Str(Vec<u8>),
}

struct Args {
    values: Vec<Arg>,
    names: Vec<(Vec<u8>, usize)>,
}

/// Which Lua argument of `format` value `i` (0-based) came from.
fn lua_arg(i: usize) -> i32 {
    i32::try_from(i + 2).unwrap_or(i32::MAX)
}

fn bad_format() -> mlua::Error {
    einval(1)
}

fn scalar(v: &Value) -> Option<Arg> {
    match v {
        Value::Boolean(b) => Some(Arg::Bool(*b)),
        Value::Integer(i) => Some(Arg::Num(*i as f64)),
        Value::Number(n) => Some(Arg::Num(*n)),
        Value::String(s) => Some(Arg::Str(s.as_bytes().to_vec())),
        _ => None,
    }
}

fn collect_args(values: MultiValue) -> mlua::Result<Args> {
    let mut args = Args {
        values: Vec::with_capacity(values.len()),
        names: Vec::new(),
    };
    for (i, v) in values.into_iter().enumerate() {
        let arg = match &v {
            Value::Table(t) => {
                // a named argument: {name, value}
                let name = match t.raw_get::<Value>(1)? {
                    Value::String(s) if is_identifier(&s.as_bytes()) => s.as_bytes().to_vec(),
                    _ => return Err(einval(lua_arg(i))),
                };
                let value = scalar(&t.raw_get::<Value>(2)?).ok_or_else(|| einval(lua_arg(i)))?;
                args.names.push((name, i));
                value
            }
            other => scalar(other).ok_or_else(|| einval(lua_arg(i)))?,
        };
        args.values.push(arg);
    }
    Ok(args)
}

fn is_identifier(s: &[u8]) -> bool {
    match s.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        }
        None => false,
    }
}

/// How arguments are referred to: {fmt} forbids mixing `{}` with `{0}`.
#[derive(PartialEq, Eq)]
enum Indexing {
    Unknown,
    Automatic(usize),
    Manual,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
    Center,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sign {
    Minus,
    Plus,
    Space,
}

struct Spec {
    fill: char,
    align: Option<Align>,
    sign: Sign,
    alternate: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    kind: Option<u8>,
}

impl Spec {
    /// `{}`: no spec at all.
    const PLAIN: Spec = Spec {
        fill: ' ',
        align: None,
        sign: Sign::Minus,
        alternate: false,
        zero: false,
        width: 0,
        precision: None,
        kind: None,
    };
}

/// A cursor over the format string.
struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    indexing: Indexing,
    args: &'a Args,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn integer(&mut self) -> mlua::Result<Option<usize>> {
        let start = self.pos;
        let mut n: usize = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(usize::from(c - b'0')))
                .filter(|n| *n <= MAX_WIDTH)
                .ok_or_else(bad_format)?;
            self.pos += 1;
        }
        Ok((self.pos > start).then_some(n))
    }

    /// An argument id (index or name) or nothing; resolves it to an index.
    fn arg_id(&mut self) -> mlua::Result<usize> {
        if let Some(i) = self.integer()? {
            if self.indexing == Indexing::Unknown {
                self.indexing = Indexing::Manual;
            }
            if self.indexing != Indexing::Manual {
                return Err(bad_format());
            }
            return self.check_index(i);
        }
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'_' {
                self.pos += 1;
            } else {
                break;
            }
        }
        if self.pos > start {
            let name = &self.s[start..self.pos];
            if !is_identifier(name) {
                return Err(bad_format());
            }
            return self
                .args
                .names
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, i)| *i)
                .ok_or_else(bad_format);
        }
        match self.indexing {
            Indexing::Unknown => {
                self.indexing = Indexing::Automatic(1);
                self.check_index(0)
            }
            Indexing::Automatic(next) => {
                self.indexing = Indexing::Automatic(next + 1);
                self.check_index(next)
            }
            Indexing::Manual => Err(bad_format()),
        }
    }

    fn check_index(&self, i: usize) -> mlua::Result<usize> {
        if i < self.args.values.len() {
            Ok(i)
        } else {
            Err(bad_format())
        }
    }

    /// A width or precision: digits, or `{}` / `{id}` naming an integer
    /// argument.
    fn count(&mut self) -> mlua::Result<Option<usize>> {
        if self.peek() != Some(b'{') {
            return self.integer();
        }
        self.pos += 1;
        let i = self.arg_id()?;
        if self.peek() != Some(b'}') {
            return Err(bad_format());
        }
        self.pos += 1;
        match &self.args.values[i] {
            Arg::Num(n) if n.fract() == 0.0 && *n >= 0.0 && *n <= MAX_WIDTH as f64 => {
                Ok(Some(*n as usize))
            }
            _ => Err(einval(lua_arg(i))),
        }
    }

    /// The next character of the spec (fill may be any character).
    fn char_at(&self, pos: usize) -> Option<(char, usize)> {
        let rest = self.s.get(pos..)?;
        let len = match rest.first()? {
            b if *b < 0x80 => 1,
            b if *b >= 0xF0 => 4,
            b if *b >= 0xE0 => 3,
            _ => 2,
        };
        let c = std::str::from_utf8(rest.get(..len)?).ok()?.chars().next()?;
        Some((c, len))
    }

    fn spec(&mut self) -> mlua::Result<Spec> {
        let mut spec = Spec::PLAIN;
        let align_of = |c: u8| match c {
            b'<' => Some(Align::Left),
            b'>' => Some(Align::Right),
            b'^' => Some(Align::Center),
            _ => None,
        };
        if let Some((c, len)) = self.char_at(self.pos) {
            if let Some(a) = self.s.get(self.pos + len).copied().and_then(align_of) {
                if c == '{' || c == '}' {
                    return Err(bad_format());
                }
                spec.fill = c;
                spec.align = Some(a);
                self.pos += len + 1;
            } else if let Some(a) = align_of(self.s[self.pos]) {
                spec.align = Some(a);
                self.pos += 1;
            }
        }
        match self.peek() {
            Some(b'+') => spec.sign = Sign::Plus,
            Some(b' ') => spec.sign = Sign::Space,
            Some(b'-') => spec.sign = Sign::Minus,
            _ => {}
        }
        if matches!(self.peek(), Some(b'+' | b' ' | b'-')) {
            self.pos += 1;
        }
        if self.peek() == Some(b'#') {
            spec.alternate = true;
            self.pos += 1;
        }
        if self.peek() == Some(b'0') {
            spec.zero = true;
            self.pos += 1;
        }
        spec.width = self.count()?.unwrap_or(0);
        if self.peek() == Some(b'.') {
            self.pos += 1;
            spec.precision = Some(self.count()?.ok_or_else(bad_format)?);
        }
        if self.peek() == Some(b'L') {
            // locale-specific form: the C locale's, which is the plain one
            self.pos += 1;
        }
        if let Some(c) = self.peek() {
            if c.is_ascii_alphabetic() || c == b'?' {
                spec.kind = Some(c);
                self.pos += 1;
            }
        }
        if self.peek() != Some(b'}') {
            return Err(bad_format());
        }
        Ok(spec)
    }
}

/// `format(fmt, ...)`.
fn lua_format(lua: &Lua, mut values: MultiValue) -> mlua::Result<LuaString> {
    let fmt = match values.pop_front() {
        Some(Value::String(s)) => s,
        _ => return Err(einval(1)),
    };
    let args = collect_args(values)?;
    let bytes = fmt.as_bytes();
    let out = render(&bytes, &args)?;
    lua.create_string(out)
}

fn render(fmt: &[u8], args: &Args) -> mlua::Result<Vec<u8>> {
    let mut p = Parser {
        s: fmt,
        pos: 0,
        indexing: Indexing::Unknown,
        args,
    };
    let given: usize = fmt.len()
        + args
            .values
            .iter()
            .map(|a| match a {
                Arg::Str(s) => s.len(),
                _ => 0,
            })
            .sum::<usize>();
    let budget = given.saturating_add(MAX_GROWTH);
    let mut out = Vec::with_capacity(fmt.len());
    while let Some(c) = p.peek() {
        // one field adds at most ~2 * MAX_WIDTH + 330 bytes beyond its
        // argument, so checking between fields bounds the overshoot
        if out.len() > budget {
            return Err(ErrorCode::generic(libc::ENOMEM).into());
        }
        p.pos += 1;
        match c {
            b'{' if p.peek() == Some(b'{') => {
                p.pos += 1;
                out.push(b'{');
            }
            b'}' if p.peek() == Some(b'}') => {
                p.pos += 1;
                out.push(b'}');
            }
            b'}' => return Err(bad_format()),
            b'{' => {
                let i = p.arg_id()?;
                let spec = match p.peek() {
                    Some(b':') => {
                        p.pos += 1;
                        p.spec()?
                    }
                    Some(b'}') => Spec::PLAIN,
                    _ => return Err(bad_format()),
                };
                p.pos += 1; // the closing '}'
                format_arg(&mut out, &args.values[i], &spec).map_err(|e| match e {
                    FieldError::Spec => bad_format(),
                    FieldError::Value => einval(lua_arg(i)),
                })?;
            }
            other => out.push(other),
        }
    }
    if out.len() > budget {
        return Err(ErrorCode::generic(libc::ENOMEM).into());
    }
    Ok(out)
}

/// Why one replacement field failed: its spec is invalid for the kind of
/// value, or the value cannot be shown that way (e.g. 1.5 as hex).
enum FieldError {
    Spec,
    Value,
}

fn format_arg(out: &mut Vec<u8>, arg: &Arg, spec: &Spec) -> Result<(), FieldError> {
    match arg {
        Arg::Str(s) => format_str(out, s, spec),
        Arg::Bool(b) => match spec.kind {
            None | Some(b's') => format_str(out, if *b { b"true" } else { b"false" }, spec),
            Some(b'b' | b'B' | b'c' | b'd' | b'o' | b'x' | b'X') => {
                format_num(out, f64::from(u8::from(*b)), spec)
            }
            _ => Err(FieldError::Spec),
        },
        Arg::Num(n) => format_num(out, *n, spec),
    }
}

/// Number of characters a text takes for padding: code points when it is
/// UTF-8, bytes otherwise.
fn text_width(s: &[u8]) -> usize {
    match std::str::from_utf8(s) {
        Ok(t) => t.chars().count(),
        Err(_) => s.len(),
    }
}

fn pad(out: &mut Vec<u8>, body: &[u8], spec: &Spec, default: Align) {
    let len = text_width(body);
    let total = spec.width.saturating_sub(len);
    let (before, after) = match spec.align.unwrap_or(default) {
        Align::Left => (0, total),
        Align::Right => (total, 0),
        Align::Center => (total / 2, total - total / 2),
    };
    let mut fill = [0u8; 4];
    let fill = spec.fill.encode_utf8(&mut fill).as_bytes();
    for _ in 0..before {
        out.extend_from_slice(fill);
    }
    out.extend_from_slice(body);
    for _ in 0..after {
        out.extend_from_slice(fill);
    }
}

fn format_str(out: &mut Vec<u8>, s: &[u8], spec: &Spec) -> Result<(), FieldError> {
    if spec.sign != Sign::Minus || spec.alternate || spec.zero {
        return Err(FieldError::Spec);
    }
    let quoted;
    let body: &[u8] = match spec.kind {
        None | Some(b's') => s,
        Some(b'?') => {
            quoted = debug_string(s);
            &quoted
        }
        _ => return Err(FieldError::Spec),
    };
    let body = match spec.precision {
        Some(p) => truncate_chars(body, p),
        None => body,
    };
    pad(out, body, spec, Align::Left);
    Ok(())
}

fn truncate_chars(s: &[u8], n: usize) -> &[u8] {
    match std::str::from_utf8(s) {
        Ok(t) => match t.char_indices().nth(n) {
            Some((cut, _)) => &s[..cut],
            None => s,
        },
        Err(_) => &s[..n.min(s.len())],
    }
}

/// `{:?}`: the string quoted, with escapes; bytes that are not UTF-8 as
/// `\x{..}`.
fn debug_string(s: &[u8]) -> Vec<u8> {
    let mut out = vec![b'"'];
    let mut buf = [0u8; 4];
    for chunk in s.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\'' => out.push(b'\''),
                '\0' => out.extend_from_slice(b"\\u{0}"),
                c => {
                    for e in c.escape_debug() {
                        out.extend_from_slice(e.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
        }
        for b in chunk.invalid() {
            out.extend_from_slice(format!("\\x{{{b:x}}}").as_bytes());
        }
    }
    out.push(b'"');
    out
}

const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_127: f64 = 1.7014118346046923e38;

fn format_num(out: &mut Vec<u8>, n: f64, spec: &Spec) -> Result<(), FieldError> {
    let negative = n.is_sign_negative() && !n.is_nan();
    let upper = matches!(spec.kind, Some(b'B' | b'X' | b'E' | b'F' | b'G' | b'A'));
    let mut prefix = "";
    let digits: String = match spec.kind {
        Some(kind @ (b'b' | b'B' | b'c' | b'd' | b'o' | b'x' | b'X')) => {
            if spec.precision.is_some() || n.fract() != 0.0 || n.abs() >= TWO_POW_127 {
                return Err(if spec.precision.is_some() {
                    FieldError::Spec
                } else {
                    FieldError::Value
                });
            }
            let m = n.abs() as u128;
            match kind {
                b'c' => {
                    if spec.sign != Sign::Minus || spec.alternate {
                        return Err(FieldError::Spec);
                    }
                    let c = u32::try_from(n as i128)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or(FieldError::Value)?;
                    let mut buf = [0u8; 4];
                    pad(out, c.encode_utf8(&mut buf).as_bytes(), spec, Align::Left);
                    return Ok(());
                }
                b'd' => m.to_string(),
                b'o' => {
                    if spec.alternate && m != 0 {
                        prefix = "0";
                    }
                    format!("{m:o}")
                }
                b'b' | b'B' => {
                    if spec.alternate {
                        prefix = if upper { "0B" } else { "0b" };
                    }
                    format!("{m:b}")
                }
                _ => {
                    if spec.alternate {
                        prefix = if upper { "0X" } else { "0x" };
                    }
                    if upper {
                        format!("{m:X}")
                    } else {
                        format!("{m:x}")
                    }
                }
            }
        }
        Some(b'a' | b'A' | b's' | b'?' | b'p') => return Err(FieldError::Spec),
        Some(kind @ (b'e' | b'E' | b'f' | b'F' | b'g' | b'G')) if n.is_finite() => {
            let m = n.abs();
            let p = spec.precision.unwrap_or(6);
            let text = match kind {
                b'e' | b'E' => exponent_form(m, p, spec.alternate),
                b'f' | b'F' => {
                    let mut t = format!("{m:.p$}");
                    if spec.alternate && p == 0 {
                        t.push('.');
                    }
                    t
                }
                _ => general_form(m, p, spec.alternate),
            };
            if upper {
                text.to_ascii_uppercase()
            } else {
                text
            }
        }
        Some(b'e' | b'E' | b'f' | b'F' | b'g' | b'G') | None => {
            if !n.is_finite() {
                let t = if n.is_nan() { "nan" } else { "inf" };
                let t = if upper {
                    t.to_ascii_uppercase()
                } else {
                    t.to_owned()
                };
                let mut body = sign_text(negative, spec.sign).to_owned();
                body.push_str(&t);
                // '0' never pads a non-number with zeros
                pad(out, body.as_bytes(), spec, Align::Right);
                return Ok(());
            }
            let m = n.abs();
            match spec.precision {
                Some(p) => general_form(m, p, spec.alternate),
                None if n.fract() == 0.0 && m < TWO_POW_63 => {
                    let mut t = (m as u64).to_string();
                    if spec.alternate {
                        t.push('.');
                    }
                    t
                }
                None => shortest_form(m, spec.alternate),
            }
        }
        Some(_) => return Err(FieldError::Spec),
    };
    // An integer presentation has no negative zero; a double shows it.
    let integer_kind = matches!(spec.kind, Some(b'b' | b'B' | b'd' | b'o' | b'x' | b'X'));
    let sign = sign_text(if integer_kind { n < 0.0 } else { negative }, spec.sign);
    let mut body = String::with_capacity(sign.len() + prefix.len() + digits.len());
    body.push_str(sign);
    body.push_str(prefix);
    if spec.zero && spec.align.is_none() {
        let used = sign.len() + prefix.len() + digits.len();
        for _ in used..spec.width {
            body.push('0');
        }
    }
    body.push_str(&digits);
    pad(out, body.as_bytes(), spec, Align::Right);
    Ok(())
}

fn sign_text(negative: bool, sign: Sign) -> &'static str {
    match (negative, sign) {
        (true, _) => "-",
        (false, Sign::Plus) => "+",
        (false, Sign::Space) => " ",
        (false, Sign::Minus) => "",
    }
}

/// Rust's `1.5e3` as C's `1.5e+03` (sign and at least two exponent digits).
fn c_exponent(rust: &str) -> String {
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => rust.to_owned(),
    }
}

/// `%e` with `p` digits after the point.
fn exponent_form(m: f64, p: usize, alternate: bool) -> String {
    let mut t = format!("{m:.p$e}");
    if alternate && p == 0 {
        t = t.replacen('e', ".e", 1);
    }
    c_exponent(&t)
}

/// The decimal exponent of `m` once rounded to `digits` significant digits.
fn exponent_after_rounding(m: f64, digits: usize) -> i64 {
    let p = digits.saturating_sub(1);
    let t = format!("{m:.p$e}");
    t.split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0)
}

/// `%g` with `p` significant digits (C's rules: fixed when -4 <= exp < p,
/// trailing zeros dropped unless `#`).
fn general_form(m: f64, p: usize, alternate: bool) -> String {
    let p = p.max(1);
    let x = exponent_after_rounding(m, p);
    let text = if x >= -4 && x < p as i64 {
        let decimals = usize::try_from(p as i64 - 1 - x).unwrap_or(0);
        format!("{m:.decimals$}")
    } else {
        let decimals = p - 1;
        c_exponent(&format!("{m:.decimals$e}"))
    };
    if alternate {
        if text.contains('.') {
            return text;
        }
        return match text.split_once('e') {
            Some((a, b)) => format!("{a}.e{b}"),
            None => format!("{text}."),
        };
    }
    strip_zeros(&text)
}

fn strip_zeros(text: &str) -> String {
    let (mantissa, exp) = match text.split_once('e') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    match exp {
        Some(e) => format!("{mantissa}e{e}"),
        None => mantissa.to_owned(),
    }
}

/// {fmt}'s default for a double: the shortest digits that read back as the
/// same value, in exponent form when the exponent is < -4 or >= 16.
fn shortest_form(m: f64, alternate: bool) -> String {
    let e = format!("{m:e}");
    let x: i64 = e
        .split_once('e')
        .and_then(|(_, x)| x.parse().ok())
        .unwrap_or(0);
    let mut t = if (-4..16).contains(&x) {
        format!("{m}")
    } else {
        c_exponent(&e)
    };
    if alternate && !t.contains('.') {
        t = match t.split_once('e') {
            Some((a, b)) => format!("{a}.e{b}"),
            None => format!("{t}."),
        };
    }
    t
}

pub(crate) fn register(lua: &Lua) -> mlua::Result<()> {
    lua.globals()
        .raw_set("format", lua.create_function(unless_closing(lua_format))?)
}

/// Used by tests: formats with plain Rust values.
#[cfg(test)]
fn format_for_test(fmt: &str, values: Vec<Arg>) -> Result<String, ErrorCode> {
    let args = Args {
        values,
        names: Vec::new(),
    };
    render(fmt.as_bytes(), &args)
        .map(|v| String::from_utf8(v).expect("utf-8"))
        .map_err(|e| match e {
            mlua::Error::ExternalError(inner) => inner
                .downcast_ref::<ErrorCode>()
                .cloned()
                .expect("an ErrorCode"),
            other => panic!("unexpected error {other}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, values: Vec<Arg>) -> String {
        format_for_test(fmt, values).unwrap_or_else(|e| panic!("{fmt}: {e:?}"))
    }

    fn num(n: f64) -> Arg {
        Arg::Num(n)
    }

    #[test]
    fn floats_match_c_printf() {
        assert_eq!(f("{:.2f}", vec![num(1.23456)]), "1.23");
        assert_eq!(f("{:08.3f}", vec![num(-1.23456)]), "-001.235");
        assert_eq!(f("{:e}", vec![num(1234.5)]), "1.234500e+03");
        assert_eq!(f("{:.0e}", vec![num(0.00012)]), "1e-04");
        assert_eq!(f("{:g}", vec![num(0.0001)]), "0.0001");
        assert_eq!(f("{:g}", vec![num(0.00001)]), "1e-05");
        assert_eq!(f("{:g}", vec![num(123456789.0)]), "1.23457e+08");
        assert_eq!(f("{:G}", vec![num(1e-10)]), "1E-10");
        assert_eq!(f("{:#g}", vec![num(1.0)]), "1.00000");
        assert_eq!(f("{:.3}", vec![num(1.23456)]), "1.23");
        assert_eq!(f("{}", vec![num(0.1)]), "0.1");
        assert_eq!(f("{}", vec![num(1e20)]), "1e+20");
        assert_eq!(f("{}", vec![num(1.5e-7)]), "1.5e-07");
        assert_eq!(f("{}", vec![num(-0.0)]), "-0");
        assert_eq!(f("{:+}", vec![num(f64::INFINITY)]), "+inf");
        assert_eq!(f("{:05}", vec![num(f64::NAN)]), "  nan");
    }

    #[test]
    fn integers_and_prefixes() {
        assert_eq!(f("{:#x}", vec![num(255.0)]), "0xff");
        assert_eq!(f("{:#010X}", vec![num(-255.0)]), "-0X00000FF");
        assert_eq!(f("{:#o}", vec![num(8.0)]), "010");
        assert_eq!(f("{:#b}", vec![num(5.0)]), "0b101");
        assert_eq!(f("{:d}", vec![num(1e20)]), "100000000000000000000");
        assert_eq!(f("{:c}", vec![num(0x263A as f64)]), "\u{263A}");
    }

    #[test]
    fn integer_presentation_of_a_fraction_names_the_argument() {
        let e = format_for_test("{:x}", vec![num(1.5)]).unwrap_err();
        assert_eq!(
            (e.code, e.arg),
            (libc::EINVAL, Some(crate::modules::error::ErrArg::Index(2)))
        );
    }

    #[test]
    fn widths_beyond_the_cap_are_refused_before_allocating() {
        let e = format_for_test("{:999999999}", vec![num(1.0)]).unwrap_err();
        assert_eq!(
            (e.code, e.arg),
            (libc::EINVAL, Some(crate::modules::error::ErrArg::Index(1)))
        );
        let e = format_for_test("{:.99999999999999999999999f}", vec![num(1.0)]).unwrap_err();
        assert_eq!(e.code, libc::EINVAL);
        assert_eq!(f("{:60000}", vec![num(1.0)]).len(), MAX_WIDTH);
        assert!(format_for_test("{:60001}", vec![num(1.0)]).is_err());
        // the largest precision, with the most digits %g adds to it
        assert_eq!(
            f("{:#.60000g}", vec![num(1e-4)]).len(),
            "0.000".len() + 60_000
        );
        assert_eq!(f("{:.60000f}", vec![num(-1.5)]).len(), "-1.".len() + 60_000);
        assert_eq!(
            f("{:.60000e}", vec![num(1e300)]).len(),
            "1.e+300".len() + 60_000
        );
    }
}
