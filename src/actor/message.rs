//! Messages: the owned values actors send each other (spec/actors.md §4).
//!
//! A [`Message`] owns everything it holds (bytes, nested members, file
//! descriptors) and never refers to a Lua VM, so it is `Send` and crosses
//! threads freely. [`from_lua`] deep-copies a Lua value out of the sender's
//! VM; [`to_lua`] builds it anew, as fresh plain tables, in the receiver's.
//!
//! Invariants:
//! - The copy out of Lua reads tables with raw access only (`rawlen`,
//!   `rawget`, `next`): no metamethod, `__index`, `__len` or `__pairs`, ever
//!   runs. A table with a metatable is refused at the top level and treated
//!   as an unsupported member below it.
//! - Both directions walk the tree with an explicit stack, never native
//!   recursion. Each open level pins one Lua handle (LuaJIT allows ~8k live
//!   handles per VM), so depth is bounded by [`Limits::max_depth`]; a table
//!   wider than that pins no more handles than a narrow one (object members
//!   that are tables are fetched again by key, one at a time).
//! - Everything the script controls is bounded before it is allocated:
//!   depth, array length, member count and payload bytes ([`Limits`]);
//!   strings are copied after a `try_reserve_exact` of their length, so a
//!   hostile script meets a clear error, not an abort. A DAG is copied as a
//!   tree (each reference is copied again), so the member and byte budgets
//!   are what stop `a = {a, a}` repeated sixty times.
//! - A reference cycle (a table reachable from itself along the path being
//!   copied) is an error (`emilua.json.dom` code 4), a shared sub-table is
//!   not.
//! - A file descriptor member is an [`OwnedFd`] dup'ed with
//!   `F_DUPFD_CLOEXEC` from the sender's descriptor: the sender keeps its
//!   own; whoever drops the [`Message`] (or the part holding the fd) closes
//!   the copy exactly once, on every path including errors half-way.
//! - Lua values never become members through anything but this module's
//!   rules; userdata becomes a member only when the [`Capabilities`] hooks
//!   recognise it (file descriptors today, channel addresses with the
//!   channel work).
//!
//! Not representable: `nil` (it cannot be sent and ends arrays), functions,
//! coroutines, light userdata, tables with metatables, userdata the hooks do
//! not recognise (sockets, sync primitives, fiber handles). Byte spans and
//! `ip.address` values have variants ([`Message::Bytes`], [`Message::Ip`])
//! but only the hooks of a channel to a sandboxed actor produce them: an
//! in-process channel refuses them, as Emilua's do.
//!
//! Messages built by hand in Rust may nest deeper than [`Limits::max_depth`];
//! [`to_lua`] refuses those. Dropping a message recurses once per level, as
//! for any Rust tree, so such hand-built trees should stay shallow too.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use mlua::{AnyUserData, Lua, Table, Value};

use crate::modules::error::{ErrorCode, JsonDomError};

/// A message value: what one actor sends another.
///
/// Built by the runtime from a Lua value, by an embedder from Rust values
/// (`Message::from("text")`, [`Message::object`], …), and turned back into
/// Lua by the receiving VM. It owns all it holds and is `Send`.
///
/// Arrays are Lua sequences (`t[1]`, `t[2]`, …); objects are tables with
/// string keys (byte strings, not necessarily UTF-8). An empty array and an
/// empty object both become an empty Lua table, which reads back as an empty
/// object.
#[derive(Debug)]
#[non_exhaustive]
pub enum Message {
    /// A Lua boolean.
    Bool(bool),
    /// Lua numbers are doubles; NaN and the infinities travel unchanged.
    Number(f64),
    /// A Lua string: any bytes.
    String(Vec<u8>),
    /// A sequence; the receiver gets `t[1] .. t[n]`.
    Array(Vec<Message>),
    /// String-keyed members. Ordered by key, so a message has one shape
    /// whatever order the sender's table iterated in.
    Object(BTreeMap<Vec<u8>, Message>),
    /// A file descriptor capability, owned by the message. The receiver gets
    /// it as a `file_descriptor` object; dropping the message closes it.
    Fd(OwnedFd),
    /// A channel address (tx-channel or inbox); it counts as a sender of
    /// that actor while it lives.
    Address(ActorAddress),
    /// A `byte_span`'s bytes; the receiver gets a new byte_span holding
    /// them (messages to and from sandboxed actors only).
    Bytes(Vec<u8>),
    /// An `ip.address` (messages to and from sandboxed actors only).
    Ip(crate::ipc::IpAddress),
}

pub use super::mailbox::ActorAddress;

/// Bounds on what one copy of a Lua value into a [`Message`] may build.
///
/// Worst-case memory of one message is about
/// `max_members * size_of::<Message>()` (32 bytes) plus map overhead plus
/// `max_payload_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Nesting levels of tables (a flat table is 1). Each level pins one Lua
    /// handle while it is copied, so keep this far below LuaJIT's ~8k.
    pub max_depth: usize,
    /// Elements of one array.
    pub max_array_len: usize,
    /// Values in the whole message, containers included.
    pub max_members: usize,
    /// String bytes in the whole message: string values plus object keys.
    pub max_payload_bytes: usize,
}

impl Limits {
    /// 256 levels, 2^20 array elements, 2^21 members, 64 MiB of strings.
    pub const DEFAULT: Limits = Limits {
        max_depth: 256,
        max_array_len: 1 << 20,
        max_members: 1 << 21,
        max_payload_bytes: 64 << 20,
    };

    /// Limits with every field given (the struct is `#[non_exhaustive]`).
    pub const fn new(
        max_depth: usize,
        max_array_len: usize,
        max_members: usize,
        max_payload_bytes: usize,
    ) -> Limits {
        Limits {
            max_depth,
            max_array_len,
            max_members,
            max_payload_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why a value could not be copied into a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// nil, a function, a coroutine, light userdata or a table with a
    /// metatable was sent (`EINVAL`).
    #[error("a {what} cannot be sent in a message; send booleans, numbers, strings, plain tables, channels or file descriptors")]
    NotSendable {
        /// The kind of value, as Lua names it.
        what: &'static str,
    },
    /// Userdata that is not a capability (byte_span, socket, …) was sent
    /// (`ENOTSUP`).
    #[error("this {what} cannot be sent in a message; send its contents, or release() an I/O object into a file_descriptor")]
    Unsupported {
        /// The kind of userdata.
        what: &'static str,
    },
    /// The file_descriptor was closed or is lent to an operation (`EBUSY`).
    #[error("the file_descriptor is closed or busy; send it when it holds an open descriptor")]
    FdClosed,
    /// dup() of the file descriptor failed (its errno, e.g. `EMFILE`).
    #[error("cannot duplicate the file descriptor for the message: {0}")]
    FdDup(#[source] std::io::Error),
    /// Tables nest deeper than the limit (json code 2, "Too many levels").
    #[error("the message nests tables more than {limit} levels deep (or they form a very deep chain); flatten it")]
    TooDeep {
        /// The limit that was passed.
        limit: usize,
    },
    /// An array is longer than the limit (json code 3, "Array too long").
    #[error("an array in the message has more than {limit} elements; send it in parts")]
    ArrayTooLong {
        /// The limit that was passed.
        limit: usize,
    },
    /// A table contains itself (json code 4, "Reference cycle exists").
    #[error("the message contains a reference cycle (a table inside itself); break the cycle before sending")]
    ReferenceCycle,
    /// More values than the limit; shared sub-tables count once per
    /// reference (`EMSGSIZE`).
    #[error("the message has more than {limit} values (a sub-table referenced twice is copied twice); send it in parts")]
    TooManyMembers {
        /// The limit that was passed.
        limit: usize,
    },
    /// More string bytes than the limit (`EMSGSIZE`).
    #[error("the message holds more than {limit} bytes of strings; send it in parts")]
    TooLarge {
        /// The limit that was passed.
        limit: usize,
    },
    /// The copy could not allocate (`ENOMEM`).
    #[error("out of memory while copying the message")]
    OutOfMemory,
    /// The sender's Lua VM failed while being read (e.g. out of handles).
    #[error("Lua error while copying the message: {0}")]
    Lua(#[source] mlua::Error),
}

impl MessageError {
    /// The error value Lua code sees, or `None` for [`MessageError::Lua`]
    /// (which travels as the Lua error itself). `send` adds `arg`.
    pub fn to_error_code(&self) -> Option<ErrorCode> {
        Some(match self {
            MessageError::NotSendable { .. } => ErrorCode::generic(libc::EINVAL),
            MessageError::Unsupported { .. } => ErrorCode::generic(libc::ENOTSUP),
            MessageError::FdClosed => ErrorCode::generic(libc::EBUSY),
            MessageError::FdDup(e) => ErrorCode::from_io(e),
            MessageError::TooDeep { .. } => ErrorCode::json(JsonDomError::TooManyLevels),
            MessageError::ArrayTooLong { .. } => ErrorCode::json(JsonDomError::ArrayTooLong),
            MessageError::ReferenceCycle => ErrorCode::json(JsonDomError::CycleExists),
            MessageError::TooManyMembers { .. } | MessageError::TooLarge { .. } => {
                ErrorCode::generic(libc::EMSGSIZE)
            }
            MessageError::OutOfMemory => ErrorCode::generic(libc::ENOMEM),
            MessageError::Lua(_) => return None,
        })
    }
}

impl From<MessageError> for mlua::Error {
    fn from(e: MessageError) -> Self {
        match e.to_error_code() {
            Some(code) => code.into(),
            None => match e {
                MessageError::Lua(inner) => inner,
                _ => unreachable!("every other variant has an error code"),
            },
        }
    }
}

impl From<mlua::Error> for MessageError {
    fn from(e: mlua::Error) -> Self {
        match e {
            mlua::Error::MemoryError(_) => MessageError::OutOfMemory,
            other => MessageError::Lua(other),
        }
    }
}

/// How userdata becomes a message member and back: the hook the
/// `file_descriptor` type (and later channels) connects.
pub trait Capabilities {
    /// Called for each full userdata met in a value being sent. `None`: not
    /// a capability (top level: `ENOTSUP`; inside a table: unsupported
    /// member). `Some(Ok(m))`: the member, which must be [`Message::Fd`] or
    /// [`Message::Address`] (anything else counts as unsupported).
    /// `Some(Err(MessageError::FdClosed))` for a closed or lent descriptor
    /// (top level: `EBUSY`; inside a table: unsupported member); any other
    /// error aborts the copy. Use [`dup_fd_for_message`] to copy an fd.
    fn capability_of(&self, userdata: &AnyUserData) -> Option<Result<Message, MessageError>>;

    /// Builds the receiver's object for a [`Message::Fd`] or
    /// [`Message::Address`] member (a `file_descriptor`, a tx-channel).
    fn capability_to_lua(&self, lua: &Lua, capability: Message) -> mlua::Result<Value>;

    /// Called for each table with a metatable met in a value being sent
    /// (plain tables never get here): `Some(Ok(m))` makes it the member `m`
    /// (an [`Message::Ip`] for an `ip.address`), `None` leaves the usual
    /// rule (refused at the top level, unsupported inside a table). The
    /// table's metamethods must not run.
    fn object_of(&self, _lua: &Lua, _table: &Table) -> Option<Result<Message, MessageError>> {
        None
    }
}

/// Hooks for a VM with no capability types: every userdata is unsupported
/// and a message carrying an fd or address cannot be delivered (`ENOTSUP`;
/// the descriptor is closed).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCapabilities;

impl Capabilities for NoCapabilities {
    fn capability_of(&self, _: &AnyUserData) -> Option<Result<Message, MessageError>> {
        None
    }

    fn capability_to_lua(&self, _: &Lua, _: Message) -> mlua::Result<Value> {
        Err(ErrorCode::generic(libc::ENOTSUP).into())
    }
}

/// The fd member for a `file_descriptor` being sent: `None` (closed or
/// lent, the Lua object reads `-1`) is [`MessageError::FdClosed`]; otherwise
/// a close-on-exec duplicate (`F_DUPFD_CLOEXEC`), or the dup's errno.
pub fn dup_fd_for_message(fd: Option<BorrowedFd<'_>>) -> Result<Message, MessageError> {
    let fd = fd.ok_or(MessageError::FdClosed)?;
    fd.try_clone_to_owned()
        .map(Message::Fd)
        .map_err(MessageError::FdDup)
}

/// Deep-copies `value` out of `lua` into a message, per spec/actors.md §4.
///
/// Top level: nil, functions, coroutines, light userdata and tables with a
/// metatable are `EINVAL` ([`MessageError::NotSendable`]); userdata the
/// hooks do not recognise is `ENOTSUP`. Inside tables, an unsupported value
/// ends an array (the rest is dropped) and is silently left out of an
/// object. Reads tables with raw access only.
pub fn from_lua(
    lua: &Lua,
    value: &Value,
    caps: &dyn Capabilities,
    limits: &Limits,
) -> Result<Message, MessageError> {
    let mut copy = Copier {
        lua,
        caps,
        limits,
        members: 0,
        payload_bytes: 0,
        on_path: HashSet::new(),
    };
    match value {
        Value::Nil => Err(MessageError::NotSendable { what: "nil" }),
        Value::Function(_) => Err(MessageError::NotSendable { what: "function" }),
        Value::Thread(_) => Err(MessageError::NotSendable { what: "coroutine" }),
        Value::LightUserData(_) => Err(MessageError::NotSendable {
            what: "light userdata",
        }),
        Value::Table(t) if t.has_metatable() => match caps.object_of(lua, t) {
            Some(Ok(m)) if m.is_hook_member() => Ok(m),
            Some(Err(e)) => Err(e),
            _ => Err(MessageError::NotSendable {
                what: "table with a metatable",
            }),
        },
        Value::Table(t) => copy.table_tree(t.clone()),
        Value::UserData(ud) => match caps.capability_of(ud) {
            None => Err(MessageError::Unsupported { what: "userdata" }),
            Some(Ok(m)) if m.is_hook_member() => {
                copy.charge_hook_member(&m)?;
                Ok(m)
            }
            Some(Ok(_)) => Err(MessageError::Unsupported { what: "userdata" }),
            Some(Err(e)) => Err(e),
        },
        Value::Error(_) => Err(MessageError::Unsupported {
            what: "error userdata",
        }),
        Value::Other(_) => Err(MessageError::Unsupported { what: "cdata" }),
        scalar => match copy.member(scalar.clone())? {
            Member::Leaf(m) => Ok(m),
            // Booleans, numbers and strings are leaves.
            Member::Table(_) | Member::Unsupported => Err(MessageError::NotSendable {
                what: scalar.type_name(),
            }),
        },
    }
}

/// What a value inside a table becomes.
enum Member {
    Leaf(Message),
    /// A plain table, to be opened as a new level.
    Table(Table),
    /// Ends an array, is left out of an object.
    Unsupported,
}

/// One table being copied.
struct Level {
    table: Table,
    kind: LevelKind,
}

enum LevelKind {
    Array {
        items: Vec<Message>,
        next_index: i64,
    },
    Object {
        members: BTreeMap<Vec<u8>, Message>,
        /// Keys whose values were plain tables at the first pass; fetched
        /// again one by one so at most one child handle is alive.
        table_keys: std::vec::IntoIter<Vec<u8>>,
        /// The key the child level being copied belongs to.
        current_key: Option<Vec<u8>>,
    },
}

/// What a level asks for next.
enum Step {
    Descend(Table),
    Done,
}

struct Copier<'a> {
    lua: &'a Lua,
    caps: &'a dyn Capabilities,
    limits: &'a Limits,
    members: usize,
    payload_bytes: usize,
    /// Identities of the tables on the path from the root to the level
    /// being copied (all kept alive by `Level::table`).
    on_path: HashSet<usize>,
}

impl Copier<'_> {
    fn count_member(&mut self) -> Result<(), MessageError> {
        if self.members >= self.limits.max_members {
            return Err(MessageError::TooManyMembers {
                limit: self.limits.max_members,
            });
        }
        self.members += 1;
        Ok(())
    }

    /// Charges a byte span's bytes (which its hook copied) to the budget.
    fn charge_hook_member(&mut self, member: &Message) -> Result<(), MessageError> {
        if let Message::Bytes(bytes) = member {
            let total = self.payload_bytes.saturating_add(bytes.len());
            if total > self.limits.max_payload_bytes {
                return Err(MessageError::TooLarge {
                    limit: self.limits.max_payload_bytes,
                });
            }
            self.payload_bytes = total;
        }
        Ok(())
    }

    /// Copies script-controlled bytes after charging them to the budget.
    fn copy_bytes(&mut self, bytes: &[u8]) -> Result<Vec<u8>, MessageError> {
        let total = self.payload_bytes.saturating_add(bytes.len());
        if total > self.limits.max_payload_bytes {
            return Err(MessageError::TooLarge {
                limit: self.limits.max_payload_bytes,
            });
        }
        self.payload_bytes = total;
        let mut out = Vec::new();
        out.try_reserve_exact(bytes.len())
            .map_err(|_| MessageError::OutOfMemory)?;
        out.extend_from_slice(bytes);
        Ok(out)
    }

    /// Classifies a value found inside a table; leaves are copied and
    /// counted here, tables when their level opens.
    fn member(&mut self, value: Value) -> Result<Member, MessageError> {
        Ok(match value {
            Value::Boolean(b) => {
                self.count_member()?;
                Member::Leaf(Message::Bool(b))
            }
            // mlua reports integral doubles as Integer; the cast is exact.
            Value::Integer(i) => {
                self.count_member()?;
                Member::Leaf(Message::Number(i as f64))
            }
            Value::Number(n) => {
                self.count_member()?;
                Member::Leaf(Message::Number(n))
            }
            Value::String(s) => {
                self.count_member()?;
                Member::Leaf(Message::String(self.copy_bytes(&s.as_bytes())?))
            }
            Value::Table(t) if t.has_metatable() => match self.caps.object_of(self.lua, &t) {
                Some(Ok(m)) if m.is_hook_member() => {
                    self.count_member()?;
                    Member::Leaf(m)
                }
                Some(Err(e)) => return Err(e),
                _ => Member::Unsupported,
            },
            Value::Table(t) => Member::Table(t),
            Value::UserData(ud) => match self.caps.capability_of(&ud) {
                Some(Ok(m)) if m.is_hook_member() => {
                    self.count_member()?;
                    self.charge_hook_member(&m)?;
                    Member::Leaf(m)
                }
                Some(Ok(_)) | None | Some(Err(MessageError::FdClosed)) => Member::Unsupported,
                Some(Err(e)) => return Err(e),
            },
            Value::Nil
            | Value::Function(_)
            | Value::Thread(_)
            | Value::LightUserData(_)
            | Value::Error(_)
            | Value::Other(_) => Member::Unsupported,
        })
    }

    /// Opens a level for a plain table already checked for depth and
    /// cycles. An object's scalar members are copied here, in one raw pass.
    fn open(&mut self, table: Table) -> Result<Level, MessageError> {
        self.count_member()?;
        if table.raw_len() > 0 {
            return Ok(Level {
                table,
                kind: LevelKind::Array {
                    items: Vec::new(),
                    next_index: 1,
                },
            });
        }
        let mut members = BTreeMap::new();
        let mut table_keys = Vec::new();
        // The callback's error type is mlua's: keep ours aside and stop.
        let mut failure = None;
        let walked = table.for_each::<Value, Value>(|key, value| {
            match self.object_entry(key, value, &mut members, &mut table_keys) {
                Ok(()) => Ok(()),
                Err(e) => {
                    failure = Some(e);
                    Err(mlua::Error::runtime("message copy stopped"))
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        walked?;
        Ok(Level {
            table,
            kind: LevelKind::Object {
                members,
                table_keys: table_keys.into_iter(),
                current_key: None,
            },
        })
    }

    /// First pass over an object: copies a scalar member, or remembers the
    /// key of a plain-table member for later.
    fn object_entry(
        &mut self,
        key: Value,
        value: Value,
        members: &mut BTreeMap<Vec<u8>, Message>,
        table_keys: &mut Vec<Vec<u8>>,
    ) -> Result<(), MessageError> {
        let Value::String(key) = key else {
            return Ok(()); // only string keys are kept
        };
        let key = key.as_bytes();
        match &value {
            Value::Table(t) if !t.has_metatable() => {
                let key = self.copy_bytes(&key)?;
                table_keys
                    .try_reserve(1)
                    .map_err(|_| MessageError::OutOfMemory)?;
                table_keys.push(key);
            }
            _ => {
                if let Member::Leaf(m) = self.member(value)? {
                    let key = self.copy_bytes(&key)?;
                    members.insert(key, m);
                }
            }
        }
        Ok(())
    }

    /// Advances `level` until it needs a child table copied, or is done.
    fn step(&mut self, level: &mut Level) -> Result<Step, MessageError> {
        match &mut level.kind {
            LevelKind::Array { items, next_index } => loop {
                let value: Value = level.table.raw_get(*next_index)?;
                *next_index += 1;
                let member = self.member(value)?;
                if matches!(member, Member::Unsupported) {
                    return Ok(Step::Done); // nil or unsupported ends the array
                }
                if items.len() >= self.limits.max_array_len {
                    return Err(MessageError::ArrayTooLong {
                        limit: self.limits.max_array_len,
                    });
                }
                match member {
                    Member::Leaf(m) => {
                        items
                            .try_reserve(1)
                            .map_err(|_| MessageError::OutOfMemory)?;
                        items.push(m);
                    }
                    Member::Table(t) => return Ok(Step::Descend(t)),
                    Member::Unsupported => unreachable!("handled above"),
                }
            },
            LevelKind::Object {
                members,
                table_keys,
                current_key,
            } => {
                for key in table_keys.by_ref() {
                    // A lookup may run the GC and so finalizers (Lua code):
                    // the value is classified again, whatever it is now.
                    let lua_key = self.lua.create_string(&key)?;
                    let value: Value = level.table.raw_get(lua_key)?;
                    match self.member(value)? {
                        Member::Table(t) => {
                            *current_key = Some(key);
                            return Ok(Step::Descend(t));
                        }
                        Member::Leaf(m) => {
                            members.insert(key, m);
                        }
                        Member::Unsupported => {}
                    }
                }
                Ok(Step::Done)
            }
        }
    }

    /// Copies a plain table and everything below it, level by level.
    fn table_tree(&mut self, root: Table) -> Result<Message, MessageError> {
        self.on_path.insert(root.to_pointer() as usize);
        let mut stack = vec![self.open(root)?];
        loop {
            let top = stack
                .last_mut()
                .expect("stack holds the level being copied");
            match self.step(top)? {
                Step::Descend(child) => {
                    if stack.len() >= self.limits.max_depth {
                        return Err(MessageError::TooDeep {
                            limit: self.limits.max_depth,
                        });
                    }
                    if !self.on_path.insert(child.to_pointer() as usize) {
                        return Err(MessageError::ReferenceCycle);
                    }
                    let level = self.open(child)?;
                    stack.push(level);
                }
                Step::Done => {
                    let done = stack.pop().expect("a level finished");
                    self.on_path.remove(&(done.table.to_pointer() as usize));
                    let msg = match done.kind {
                        LevelKind::Array { items, .. } => Message::Array(items),
                        LevelKind::Object { members, .. } => Message::Object(members),
                    };
                    let Some(parent) = stack.last_mut() else {
                        return Ok(msg);
                    };
                    match &mut parent.kind {
                        LevelKind::Array { items, .. } => {
                            items
                                .try_reserve(1)
                                .map_err(|_| MessageError::OutOfMemory)?;
                            items.push(msg);
                        }
                        LevelKind::Object {
                            members,
                            current_key,
                            ..
                        } => {
                            let key = current_key.take().expect("a child level has its key");
                            members.insert(key, msg);
                        }
                    }
                }
            }
        }
    }
}

/// Builds `msg` in `lua` as fresh plain tables (no metatables), numbers as
/// Lua numbers, fds and addresses through `caps`. Refuses messages nested
/// deeper than `limits.max_depth` (json code 2). On error the rest of the
/// message is dropped, closing its descriptors.
pub fn to_lua(
    lua: &Lua,
    msg: Message,
    caps: &dyn Capabilities,
    limits: &Limits,
) -> mlua::Result<Value> {
    enum Slot {
        Root,
        Index(i64),
        Key(Vec<u8>),
    }
    enum Children {
        Array(std::iter::Zip<std::ops::RangeFrom<i64>, std::vec::IntoIter<Message>>),
        Object(std::collections::btree_map::IntoIter<Vec<u8>, Message>),
    }
    struct Building {
        table: Table,
        children: Children,
        slot: Slot,
    }
    fn open(
        lua: &Lua,
        msg: Message,
        slot: Slot,
    ) -> mlua::Result<Result<Building, (Message, Slot)>> {
        Ok(Ok(match msg {
            Message::Array(items) => Building {
                table: lua.create_table_with_capacity(items.len(), 0)?,
                children: Children::Array((1..).zip(items)),
                slot,
            },
            Message::Object(members) => Building {
                table: lua.create_table_with_capacity(0, members.len())?,
                children: Children::Object(members.into_iter()),
                slot,
            },
            leaf => return Ok(Err((leaf, slot))),
        }))
    }
    fn leaf(lua: &Lua, msg: Message, caps: &dyn Capabilities) -> mlua::Result<Value> {
        Ok(match msg {
            Message::Bool(b) => Value::Boolean(b),
            Message::Number(n) => Value::Number(n),
            Message::String(s) => Value::String(lua.create_string(s)?),
            cap @ (Message::Fd(_) | Message::Address(_)) => caps.capability_to_lua(lua, cap)?,
            Message::Bytes(bytes) => Value::UserData(crate::modules::byte_span::push_span(
                lua,
                crate::modules::byte_span::SpanRef::from_bytes(&bytes),
            )?),
            Message::Ip(address) => crate::modules::ip::address_to_lua(lua, address)?,
            Message::Array(_) | Message::Object(_) => unreachable!("containers are opened"),
        })
    }
    fn store(lua: &Lua, table: &Table, slot: Slot, value: Value) -> mlua::Result<()> {
        match slot {
            Slot::Index(i) => table.raw_set(i, value),
            Slot::Key(k) => table.raw_set(lua.create_string(k)?, value),
            Slot::Root => unreachable!("the root has no parent"),
        }
    }

    let root = match open(lua, msg, Slot::Root)? {
        Ok(building) => building,
        Err((leaf_msg, _root)) => return leaf(lua, leaf_msg, caps),
    };
    let mut stack = vec![root];
    loop {
        let top = stack.last_mut().expect("stack holds the table being built");
        let next = match &mut top.children {
            Children::Array(items) => items.next().map(|(i, m)| (Slot::Index(i), m)),
            Children::Object(members) => members.next().map(|(k, m)| (Slot::Key(k), m)),
        };
        match next {
            Some((slot, child)) => match open(lua, child, slot)? {
                Ok(building) => {
                    if stack.len() >= limits.max_depth {
                        return Err(MessageError::TooDeep {
                            limit: limits.max_depth,
                        }
                        .into());
                    }
                    stack.push(building);
                }
                Err((leaf_msg, slot)) => {
                    let value = leaf(lua, leaf_msg, caps)?;
                    let parent = stack.last().expect("the table being built");
                    store(lua, &parent.table, slot, value)?;
                }
            },
            None => {
                let done = stack.pop().expect("a table finished");
                let value = Value::Table(done.table);
                match stack.last() {
                    None => return Ok(value),
                    Some(parent) => store(lua, &parent.table, done.slot, value)?,
                }
            }
        }
    }
}

/// The shape of a message, for monitoring and limits. [`Message::summary`]
/// walks the message once (no allocation beyond a stack of its depth).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Values, containers included (what [`Limits::max_members`] bounds).
    pub members: usize,
    /// String bytes: string values plus object keys
    /// ([`Limits::max_payload_bytes`]).
    pub payload_bytes: usize,
    /// Nesting levels of containers; 0 for a scalar ([`Limits::max_depth`]).
    pub depth: usize,
    /// File descriptors carried.
    pub fds: usize,
}

impl Message {
    /// An object from `(key, value)` pairs; a repeated key keeps the last
    /// value.
    pub fn object<K: Into<Vec<u8>>>(members: impl IntoIterator<Item = (K, Message)>) -> Message {
        Message::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An array from its elements.
    pub fn array(items: impl IntoIterator<Item = Message>) -> Message {
        Message::Array(items.into_iter().collect())
    }

    /// Whether this is a capability leaf (an fd or an address), the only
    /// kinds a VM's capability hooks produce and consume.
    pub fn is_capability(&self) -> bool {
        matches!(self, Message::Fd(_) | Message::Address(_))
    }

    /// Whether a VM's capability hooks may produce this member: a
    /// capability, a byte span or an `ip.address`.
    pub fn is_hook_member(&self) -> bool {
        matches!(
            self,
            Message::Fd(_) | Message::Address(_) | Message::Bytes(_) | Message::Ip(_)
        )
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Message::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Message::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The string's bytes, if this is a string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Message::String(s) => Some(s),
            _ => None,
        }
    }

    /// The string member as UTF-8, if it is a string and valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Message]> {
        match self {
            Message::Array(items) => Some(items),
            _ => None,
        }
    }

    /// The members by key, if this is an object.
    pub fn as_object(&self) -> Option<&BTreeMap<Vec<u8>, Message>> {
        match self {
            Message::Object(members) => Some(members),
            _ => None,
        }
    }

    /// The member of an object under `key`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&Message> {
        self.as_object()?.get(key.as_ref())
    }

    /// The file descriptor, borrowed, if this is one.
    pub fn as_fd(&self) -> Option<BorrowedFd<'_>> {
        match self {
            Message::Fd(fd) => Some(fd.as_fd()),
            _ => None,
        }
    }

    /// Counts members, bytes, depth and fds, without recursion.
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        let mut stack = vec![(self, 0usize)];
        while let Some((msg, depth)) = stack.pop() {
            summary.members += 1;
            match msg {
                Message::Bool(_) | Message::Number(_) => {}
                Message::String(s) | Message::Bytes(s) => summary.payload_bytes += s.len(),
                Message::Fd(_) => summary.fds += 1,
                Message::Address(_) | Message::Ip(_) => {}
                Message::Array(items) => {
                    summary.depth = summary.depth.max(depth + 1);
                    stack.extend(items.iter().map(|m| (m, depth + 1)));
                }
                Message::Object(members) => {
                    summary.depth = summary.depth.max(depth + 1);
                    for (key, m) in members {
                        summary.payload_bytes += key.len();
                        stack.push((m, depth + 1));
                    }
                }
            }
        }
        summary
    }
}

/// Structural equality, without recursion. Numbers compare as `f64` (NaN
/// differs from itself, `0.0 == -0.0`); two fd members are equal when they
/// are the same descriptor number.
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        let mut pending = vec![(self, other)];
        while let Some(pair) = pending.pop() {
            match pair {
                (Message::Bool(a), Message::Bool(b)) if a == b => {}
                (Message::Number(a), Message::Number(b)) if a == b => {}
                (Message::String(a), Message::String(b)) if a == b => {}
                (Message::Bytes(a), Message::Bytes(b)) if a == b => {}
                (Message::Ip(a), Message::Ip(b)) if a == b => {}
                (Message::Fd(a), Message::Fd(b)) if a.as_raw_fd() == b.as_raw_fd() => {}
                (Message::Address(a), Message::Address(b)) if a.same_actor(b) => {}
                (Message::Array(a), Message::Array(b)) if a.len() == b.len() => {
                    pending.extend(a.iter().zip(b));
                }
                (Message::Object(a), Message::Object(b)) if a.len() == b.len() => {
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

impl From<bool> for Message {
    fn from(b: bool) -> Self {
        Message::Bool(b)
    }
}

impl From<f64> for Message {
    fn from(n: f64) -> Self {
        Message::Number(n)
    }
}

impl From<i32> for Message {
    fn from(n: i32) -> Self {
        Message::Number(n.into())
    }
}

impl From<u32> for Message {
    fn from(n: u32) -> Self {
        Message::Number(n.into())
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::String(s.as_bytes().to_vec())
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::String(s.into_bytes())
    }
}

impl From<&[u8]> for Message {
    fn from(s: &[u8]) -> Self {
        Message::String(s.to_vec())
    }
}

impl From<Vec<u8>> for Message {
    fn from(s: Vec<u8>) -> Self {
        Message::String(s)
    }
}

impl From<Vec<Message>> for Message {
    fn from(items: Vec<Message>) -> Self {
        Message::Array(items)
    }
}

impl From<OwnedFd> for Message {
    fn from(fd: OwnedFd) -> Self {
        Message::Fd(fd)
    }
}

/// Benchmark body (benches call it; not part of the API): copies a plain
/// 10-field table out of a VM and back in, `iterations` times, and returns
/// the elapsed time.
#[doc(hidden)]
pub fn bench_copy_ten_fields(iterations: u64) -> mlua::Result<std::time::Duration> {
    let lua = Lua::new();
    let value: Value = lua
        .load(
            "return { id = 42, name = 'worker-7', ok = true, ratio = 0.25, \
              tags = 'a,b,c', x = 1, y = 2, z = 3, w = -1, label = 'hello' }",
        )
        .eval()?;
    let limits = Limits::DEFAULT;
    let start = std::time::Instant::now();
    for _ in 0..iterations {
        let msg = from_lua(&lua, &value, &NoCapabilities, &limits)?;
        std::hint::black_box(to_lua(&lua, msg, &NoCapabilities, &limits)?);
    }
    Ok(start.elapsed())
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
