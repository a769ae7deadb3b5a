//! The Lua side of actor messaging: tx-channel handles, the inbox object
//! and the `rt` functions lua/core/actors.lua builds `send`, `receive` and
//! `close` from (spec/actors.md §2–4).
//!
//! Invariants:
//! - A tx-channel handle holds an `ActorAddress` (an `Arc` of the small
//!   mailbox record), never the addressed VM; `close` drops it at once, GC
//!   or the VM's teardown drops it otherwise.
//! - The inbox object holds this VM's mailbox without counting as a sender;
//!   dropping it (GC after the main fiber ended, or teardown) closes the
//!   inbox.
//! - No function here calls a user metamethod: messages are read with raw
//!   access (message.rs), methods are looked up in tables the core code
//!   registered, and every callback that touches Lua handles refuses to run
//!   while the VM closes (`unless_closing`).
//! - Same-thread delivery is an in-memory hand-off: no syscall.
//! - A `file_descriptor` in a message travels as a close-on-exec duplicate
//!   owned by the message (`FdCapabilities`, after the channel kinds): the
//!   sender keeps its object, an emptied one is `EBUSY`, and a message
//!   dropped undelivered closes its copies.

use std::cell::RefCell;
use std::sync::Arc;

use mlua::{AnyUserData, Lua, MetaMethod, Table, UserData, UserDataMethods, Value};

use super::mailbox::{ActorAddress, Envelope, Mailbox};
use super::message::{self, Capabilities, Limits, Message, MessageError};
use super::vm::{borrow_state, unless_closing, with_state, SharedState, VmState};
use crate::modules::error::{self, CoreError, ErrorCode};
use crate::modules::file_descriptor::FdCapabilities;

/// A tx-channel handle. `None` once closed.
pub(crate) struct ChannelHandle(RefCell<Option<ActorAddress>>);

impl ChannelHandle {
    pub(crate) fn new(address: ActorAddress) -> Self {
        Self(RefCell::new(Some(address)))
    }
}

/// The `inbox` object of a VM.
pub(crate) struct InboxHandle(Arc<Mailbox>);

impl Drop for InboxHandle {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Makes `methods` the `__index` of every userdata of `probe`'s type: a
/// method lookup is then a plain table read (the table's own `__index`,
/// set by the core code, raises `bad_index` for unknown keys). `methods`
/// may also be a function (an object with properties).
pub(crate) fn set_index_table(
    lua: &Lua,
    probe: AnyUserData,
    methods: impl mlua::IntoLua,
) -> mlua::Result<()> {
    // SAFETY: `exec_raw` pushes `probe` and `methods` (stack: [.., probe,
    // methods]) and runs the closure in protected mode with room for 3
    // more values. We push the metatable and a key, `lua_rawset` pops key
    // and value (a copy of `methods`), then we pop the metatable and both
    // arguments, leaving the stack as we found it.
    unsafe {
        lua.exec_raw::<()>((probe, methods), |state| {
            if mlua::ffi::lua_getmetatable(state, -2) != 0 {
                mlua::ffi::lua_pushstring(state, c"__index".as_ptr());
                mlua::ffi::lua_pushvalue(state, -3);
                mlua::ffi::lua_rawset(state, -3);
                mlua::ffi::lua_pop(state, 1);
            }
            mlua::ffi::lua_pop(state, 2);
        })
    }
}

impl UserData for ChannelHandle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        // `__index` is the core code's method table (`set_actor_methods`).
        methods.add_meta_function(MetaMethod::NewIndex, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::generic(libc::EPERM).into())
        });
        methods.add_meta_function(
            MetaMethod::Eq,
            unless_closing(|_, (a, b): (AnyUserData, AnyUserData)| {
                if a.to_pointer() == b.to_pointer() {
                    return Ok(true);
                }
                let (a, b) = (a.borrow::<ChannelHandle>()?, b.borrow::<ChannelHandle>()?);
                let (a, b) = (a.0.borrow(), b.0.borrow());
                Ok(matches!((&*a, &*b), (Some(a), Some(b)) if a.same_actor(b)))
            }),
        );
    }
}

impl UserData for InboxHandle {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_function(MetaMethod::NewIndex, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::generic(libc::EPERM).into())
        });
    }
}

/// Channels and the inbox inside messages; everything else goes to
/// `others` (the `file_descriptor` hooks plug in there).
pub(crate) struct ActorCapabilities<'a> {
    pub own: &'a Arc<Mailbox>,
    pub others: &'a dyn Capabilities,
}

impl Capabilities for ActorCapabilities<'_> {
    fn capability_of(&self, ud: &AnyUserData) -> Option<Result<Message, MessageError>> {
        if let Ok(handle) = ud.borrow::<ChannelHandle>() {
            // A closed handle addresses nothing: unsupported, like a closed fd.
            return handle
                .0
                .borrow()
                .as_ref()
                .map(|a| Ok(Message::Address(a.clone())));
        }
        if ud.is::<InboxHandle>() {
            return Some(Ok(Message::Address(ActorAddress::new(self.own.clone()))));
        }
        self.others.capability_of(ud)
    }

    fn capability_to_lua(&self, lua: &Lua, capability: Message) -> mlua::Result<Value> {
        match capability {
            Message::Address(a) => Ok(Value::UserData(lua.create_userdata(ChannelHandle::new(a))?)),
            other => self.others.capability_to_lua(lua, other),
        }
    }

    fn object_of(&self, lua: &Lua, table: &Table) -> Option<Result<Message, MessageError>> {
        self.others.object_of(lua, table)
    }
}

/// The hooks for userdata that is not a channel: `file_descriptor` objects
/// travel as a close-on-exec duplicate (the sender keeps its own).
fn fd_capabilities() -> &'static dyn Capabilities {
    &FdCapabilities
}

fn own_mailbox(lua: &Lua) -> mlua::Result<Arc<Mailbox>> {
    with_state(lua, |st| st.mailbox.clone())
}

fn channel_closed() -> mlua::Error {
    ErrorCode::core(CoreError::ChannelClosed).into()
}

/// Registers the userdata names and the actor functions of `rt`. The
/// functions a message passes through hold the VM state (`state`) and
/// borrow it directly: looking it up in the app data at each step was
/// about a tenth of a same-thread round trip.
pub(crate) fn add_rt(lua: &Lua, rt: &Table, state: &SharedState) -> mlua::Result<()> {
    let probe = lua.create_userdata(ChannelHandle(RefCell::new(None)))?;
    crate::modules::name_userdata_metatable(lua, probe, c"tx-channel")?;
    // The probe must not close this VM's inbox: give it a mailbox of its own.
    let probe = lua.create_userdata(InboxHandle(Mailbox::new()))?;
    crate::modules::name_userdata_metatable(lua, probe, c"rx-channel")?;

    rt.set(
        "set_actor_methods",
        lua.create_function(|lua, (tx, rx): (Table, Table)| {
            let probe = lua.create_userdata(ChannelHandle(RefCell::new(None)))?;
            set_index_table(lua, probe, tx)?;
            let probe = lua.create_userdata(InboxHandle(Mailbox::new()))?;
            set_index_table(lua, probe, rx)
        })?,
    )?;
    // chan_send(handle, value, send id) -> true queued | false closed
    let held = state.clone();
    rt.set(
        "chan_send",
        lua.create_function(unless_closing(
            move |lua, (handle, value, id): (Value, Value, u64)| {
                let Value::UserData(ud) = handle else {
                    return Err(error::einval(1));
                };
                let handle = ud.borrow::<ChannelHandle>().map_err(|_| error::einval(1))?;
                let dest = match &*handle.0.borrow() {
                    Some(a) => a.mailbox.clone(),
                    None => return Err(channel_closed()),
                };
                drop(handle);
                if dest.is_closed() {
                    return Ok(false);
                }
                let own = borrow_state(&held, |st| st.mailbox.clone())?;
                let caps = ActorCapabilities {
                    own: &own,
                    others: fd_capabilities(),
                };
                let msg = message::from_lua(lua, &value, &caps, &Limits::default())?;
                let env = Envelope {
                    msg,
                    sender: Some(own),
                    send_id: id,
                };
                // What this VM printed comes out before the receiver can
                // react, on whatever thread it runs.
                borrow_state(&held, VmState::flush_if_output)?;
                Ok(dest.post(env).is_ok())
            },
        ))?,
    )?;
    // chan_box(handle) -> the address box chan_send_fast takes (raw_calls.rs)
    // | false when the handle is closed
    rt.set(
        "chan_box",
        lua.create_function(unless_closing(|lua, handle: Value| {
            let Value::UserData(ud) = handle else {
                return Err(error::einval(1));
            };
            let handle = ud.borrow::<ChannelHandle>().map_err(|_| error::einval(1))?;
            let dest = match &*handle.0.borrow() {
                Some(a) => a.mailbox.clone(),
                None => return Ok(Value::Boolean(false)),
            };
            super::raw_calls::new_addr_box(lua, dest)
        }))?,
    )?;
    rt.set(
        "chan_close",
        lua.create_function(unless_closing(|_, handle: AnyUserData| {
            let handle = handle
                .borrow::<ChannelHandle>()
                .map_err(|_| error::einval(1))?;
            handle.0.borrow_mut().take();
            Ok(())
        }))?,
    )?;
    // mailbox_poll and inbox_take are raw C functions (raw_calls.rs); a
    // message they cannot build alone (tables, channels, fds) is built by
    // inbox_unstash() -> message.
    let stash = super::raw_calls::register(lua, rt, state)?;
    let held = state.clone();
    rt.set(
        "inbox_unstash",
        lua.create_function(unless_closing(move |lua, ()| {
            let msg = stash
                .take()
                .ok_or_else(|| mlua::Error::runtime("luring: no message to unstash"))?;
            let own = borrow_state(&held, |st| st.mailbox.clone())?;
            let caps = ActorCapabilities {
                own: &own,
                others: fd_capabilities(),
            };
            message::to_lua(lua, msg, &caps, &Limits::default())
        }))?,
    )?;
    rt.set(
        "inbox_closed",
        lua.create_function(unless_closing(|lua, ()| Ok(own_mailbox(lua)?.is_closed())))?,
    )?;
    // inbox_close(dropped): `dropped`, the message handed to this step
    // was still held (the caller dropped it): if it owes a receipt, it
    // goes back to the head of the queue, and closing refuses it first;
    // else a receive took it, and its sender is told so first. (Receipts
    // keep the order of the messages.)
    rt.set(
        "inbox_close",
        lua.create_function(unless_closing(|lua, dropped: Option<bool>| {
            let (mailbox, handed) = with_state(lua, |st| (st.mailbox.clone(), st.handed.take()))?;
            match handed {
                Some(env) if dropped == Some(true) => mailbox.put_back(env),
                Some(env) => Mailbox::deliver(env),
                None => {}
            }
            mailbox.close();
            Ok(())
        }))?,
    )?;
    // inbox_put_back(message): the number or boolean the host handed to
    // the step, which no receive took (Mailbox::put_back). One owing a
    // receipt waits in the state with its sender; one from Rust is made
    // again from the value.
    rt.set(
        "inbox_put_back",
        lua.create_function(unless_closing(|lua, v: Value| {
            let (mailbox, handed) = with_state(lua, |st| (st.mailbox.clone(), st.handed.take()))?;
            let env = match (handed, v) {
                (Some(env), _) => env,
                (None, Value::Number(n)) => Envelope::unowed(Message::Number(n)),
                (None, Value::Integer(n)) => Envelope::unowed(Message::Number(n as f64)),
                (None, Value::Boolean(b)) => Envelope::unowed(Message::Bool(b)),
                _ => return Err(mlua::Error::runtime("inbox_put_back: not a handed message")),
            };
            mailbox.put_back(env);
            Ok(())
        }))?,
    )?;
    rt.set(
        "inbox_object",
        lua.create_function(unless_closing(|lua, ()| {
            lua.create_userdata(InboxHandle(own_mailbox(lua)?))
        }))?,
    )?;
    Ok(())
}
