//! Error values that Rust functions raise into Lua.
//!
//! Lua sees runtime errors as tables `{code=, category=}` (spec/core.md §7).
//! A table cannot cross mlua's Rust boundary as an error value, so Rust code
//! returns `Err(ErrorCode.into())`; the Lua side turns that wrapped error
//! back into the table wherever an error can be observed (`pcall`, `xpcall`,
//! `coroutine.resume`, fiber ends) through [`decode`], exposed to the
//! runtime's internal Lua as `rt.decode_error`.
//!
//! Invariant: every error a Rust function raises on purpose is an
//! `ErrorCode`; anything else reaching Lua is a bug or an mlua failure and is
//! shown as its message string.

use mlua::{Lua, MultiValue, Value};

/// Error categories, by the name `tostring(category)` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Category {
    /// errno values reported unmodified by the OS.
    System,
    /// POSIX errno values the runtime itself decides on (EINVAL, EPERM, …).
    Generic,
    /// `emilua.core` codes.
    Core,
    /// `emilua.json.dom`: a value that cannot cross between Lua and JSON
    /// (see [`JsonDomError`]).
    Json,
    /// `trial.protocol.json`: malformed JSON text or writer misuse (see
    /// [`JsonSyntaxError`]); Emilua's name for its JSON lexer's errors.
    JsonSyntax,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::System => "system",
            Category::Generic => "generic",
            Category::Core => "emilua.core",
            Category::Json => "emilua.json.dom",
            Category::JsonSyntax => "trial.protocol.json",
        }
    }
}

/// `emilua.core` codes (spec/core.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum CoreError {
    InvalidModuleName = 1,
    ModuleNotFound = 2,
    RootCannotImportParent = 3,
    CyclicImport = 4,
    LeafCannotImportChild = 5,
    OnlyMainFiberMayImport = 6,
    BadRootContext = 7,
    BadIndex = 8,
    BadCoroutine = 9,
    SuspensionAlreadyAllowed = 10,
    InterruptionAlreadyAllowed = 11,
    ForbidSuspendBlock = 12,
    Interrupted = 13,
    UnmatchedScopeCleanup = 14,
    ChannelClosed = 15,
    NoSenders = 16,
    InternalModule = 17,
    BrokenPromise = 22,
    PromiseAlreadySatisfied = 23,
    CurrentModuleNotKnown = 24,
}

/// `emilua.json.dom` codes (lua/core/errors.lua has their messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum JsonDomError {
    /// A number JSON cannot hold (NaN, ±inf, or a literal beyond f64).
    OutOfRange = 1,
    TooManyLevels = 2,
    ArrayTooLong = 3,
    CycleExists = 4,
}

/// `trial.protocol.json` codes, numbered as Emilua's JSON lexer numbers
/// them (lua/core/errors.lua has their messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
#[non_exhaustive]
pub enum JsonSyntaxError {
    UnexpectedToken = 1,
    InvalidKey = 2,
    InvalidValue = 3,
    IncompatibleType = 4,
    UnbalancedEndArray = 5,
    UnbalancedEndObject = 6,
    ExpectedEndArray = 7,
    ExpectedEndObject = 8,
    InsufficientTokens = 9,
}

/// Which argument an `EINVAL`-style error refers to (`arg=` field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrArg {
    Index(i32),
    Name(String),
}

/// The value of an extra field of an error (`path`, `line`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrField {
    Int(i64),
    Str(String),
    /// Becomes a Lua sequence.
    List(Vec<ErrField>),
}

/// An error value for Lua: category, code, optional `arg` and extra fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} error {code}", category.name())]
pub struct ErrorCode {
    pub category: Category,
    pub code: i32,
    pub arg: Option<ErrArg>,
    /// More fields of the Lua error table, e.g. where a JSON text is wrong.
    pub fields: Vec<(&'static str, ErrField)>,
}

impl ErrorCode {
    pub fn generic(errno: i32) -> Self {
        Self {
            category: Category::Generic,
            code: errno,
            arg: None,
            fields: Vec::new(),
        }
    }

    pub fn system(errno: i32) -> Self {
        Self {
            category: Category::System,
            code: errno,
            arg: None,
            fields: Vec::new(),
        }
    }

    /// The OS error of an `io::Error` (EIO when it carries none).
    pub fn from_io(e: &std::io::Error) -> Self {
        Self::system(e.raw_os_error().unwrap_or(libc::EIO))
    }

    pub fn core(code: CoreError) -> Self {
        Self {
            category: Category::Core,
            code: code as i32,
            arg: None,
            fields: Vec::new(),
        }
    }

    pub fn json(code: JsonDomError) -> Self {
        Self {
            category: Category::Json,
            code: code as i32,
            arg: None,
            fields: Vec::new(),
        }
    }

    pub fn json_syntax(code: JsonSyntaxError) -> Self {
        Self {
            category: Category::JsonSyntax,
            code: code as i32,
            arg: None,
            fields: Vec::new(),
        }
    }

    pub fn arg(mut self, index: i32) -> Self {
        self.arg = Some(ErrArg::Index(index));
        self
    }

    pub fn arg_name(mut self, name: &str) -> Self {
        self.arg = Some(ErrArg::Name(name.to_owned()));
        self
    }

    /// Adds field `name` to the error table Lua sees.
    pub fn field(mut self, name: &'static str, value: ErrField) -> Self {
        self.fields.push((name, value));
        self
    }
}

impl From<ErrorCode> for mlua::Error {
    fn from(e: ErrorCode) -> Self {
        mlua::Error::external(e)
    }
}

/// Shorthand for the most common raise: generic `EINVAL` naming argument `i`.
pub fn einval(arg: i32) -> mlua::Error {
    ErrorCode::generic(libc::EINVAL).arg(arg).into()
}

fn find_code(e: &mlua::Error) -> Option<&ErrorCode> {
    match e {
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<ErrorCode>(),
        mlua::Error::CallbackError { cause, .. } => find_code(cause),
        mlua::Error::WithContext { cause, .. } => find_code(cause),
        _ => None,
    }
}

fn field_value(lua: &Lua, f: &ErrField) -> mlua::Result<Value> {
    Ok(match f {
        ErrField::Int(i) => Value::Number(*i as f64),
        ErrField::Str(s) => Value::String(lua.create_string(s)?),
        ErrField::List(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, field_value(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

/// `rt.decode_error(v)`: for a wrapped Rust error, returns
/// `category_name, code, arg, fields` (a table, or nil when there are none)
/// when it is an [`ErrorCode`], or its message string otherwise; for any
/// other value returns nothing.
pub fn decode(lua: &Lua, v: Value) -> mlua::Result<MultiValue> {
    let Value::Error(err) = v else {
        return Ok(MultiValue::new());
    };
    if let Some(code) = find_code(&err) {
        let arg = match &code.arg {
            None => Value::Nil,
            Some(ErrArg::Index(i)) => Value::Integer((*i).into()),
            Some(ErrArg::Name(s)) => Value::String(lua.create_string(s)?),
        };
        let fields = if code.fields.is_empty() {
            Value::Nil
        } else {
            let t = lua.create_table()?;
            for (name, f) in &code.fields {
                t.raw_set(*name, field_value(lua, f)?)?;
            }
            Value::Table(t)
        };
        return Ok(MultiValue::from_vec(vec![
            Value::String(lua.create_string(code.category.name())?),
            Value::Integer(code.code.into()),
            arg,
            fields,
        ]));
    }
    let cause = match &*err {
        mlua::Error::CallbackError { cause, .. } => cause,
        other => other,
    };
    // A runtime error's text is the message itself, without mlua's
    // "runtime error: " label.
    let msg = match cause {
        mlua::Error::RuntimeError(text) => text.clone(),
        other => other.to_string(),
    };
    Ok(MultiValue::from_vec(vec![Value::String(
        lua.create_string(msg)?,
    )]))
}

/// The C library's strerror(3) text of an errno (what Emilua prints too),
/// without the "(os error N)" suffix std adds.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_gives_extra_fields_as_a_table() {
        let lua = Lua::new();
        let err: mlua::Error = ErrorCode::json(JsonDomError::OutOfRange)
            .field(
                "path",
                ErrField::List(vec![ErrField::Int(3), ErrField::Str("a".into())]),
            )
            .field("line", ErrField::Int(7))
            .into();
        let out = decode(&lua, Value::Error(Box::new(err))).unwrap();
        let v: Vec<Value> = out.into_iter().collect();
        assert_eq!(
            v[0].as_string().unwrap().to_str().unwrap(),
            "emilua.json.dom"
        );
        assert_eq!(v[1], Value::Integer(1));
        assert_eq!(v[2], Value::Nil);
        let fields = v[3].as_table().unwrap();
        assert_eq!(fields.get::<i64>("line").unwrap(), 7);
        let path: Vec<Value> = fields
            .get::<mlua::Table>("path")
            .unwrap()
            .sequence_values()
            .collect::<mlua::Result<_>>()
            .unwrap();
        assert_eq!(path.len(), 2);
        assert_eq!(path[0], Value::Number(3.0));

        let plain: mlua::Error = ErrorCode::generic(libc::EINVAL).arg(1).into();
        let out: Vec<Value> = decode(&lua, Value::Error(Box::new(plain)))
            .unwrap()
            .into_iter()
            .collect();
        assert_eq!(out[3], Value::Nil, "no fields: nil, not an empty table");
    }
}
