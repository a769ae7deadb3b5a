//! The `rt` calls a message passes through as raw `lua_CFunction`s:
//! `chan_send_fast` (out of the sender), `mailbox_poll` and `inbox_take`
//! (into the receiver), `chan_withdraw` (an interrupted send),
//! `control_next` (a sandbox's read of its host's frames), without
//! mlua's callback frame and argument
//! conversion (together about a third of a same-thread round trip,
//! docs/performance.md "Actors").
//!
//! Invariants:
//! - Each function holds the VM state through its upvalue 1, a userdata
//!   (`Slot`) whose `__gc` lets go of the state; after that (finalizers run
//!   by `lua_close`) the functions raise the "VM is closing" error, and so
//!   they do once the VM `ended`, like `borrow_state`.
//! - No Lua API call that can raise (allocation: strings, table slots) runs
//!   while a `VmState` borrow is held; an error unwinds through these
//!   frames only where they own nothing but plain data and message bytes
//!   (dropped on the way, like in any mlua callback).
//! - A message that is not a boolean, number, string or flat table (one
//!   level of those, `is_flat`) is not built here: it waits in the slot's
//!   `stash` and the caller gets kind 4, then calls `rt.inbox_unstash` (an
//!   mlua function) to build its tables. Nothing else runs in between.
//! - `chan_send_fast` copies booleans, numbers, strings and flat plain
//!   tables within the default message limits, by message.rs's rules (raw
//!   reads only, nothing that can raise); for anything else (nested tables,
//!   metatables, userdata, functions, a limit reached, a failed allocation)
//!   and a closed handle it answers nil and the caller uses the mlua
//!   `rt.chan_send`, which copies it again and owns every error path. It addresses an inbox through an address box (`AddrBox`, a
//!   userdata only `rt.chan_box` makes, checked by its metatable): the
//!   inbox's `Arc`, which is not a sender (only the tx-channel handle it
//!   was made from counts as one); the core code drops its box when it
//!   closes the handle. `chan_withdraw` takes the box a send went through
//!   (kept by the sending fiber), so no send id -> inbox map is kept.

use std::cell::Cell;
use std::ffi::{c_int, CStr};
use std::rc::Rc;
use std::sync::Arc;

use mlua::ffi;
use mlua::{Lua, Table};

use super::mailbox::{Envelope, Mailbox, Taken};
use super::message::{Limits, Message};
use super::vm::{SharedState, VmState};

/// A message taken from the inbox that needs mlua to be built (tables,
/// channels, fds): see the module invariants.
pub(crate) type Stash = Rc<Cell<Option<Message>>>;

/// Upvalue 1 of every function here (a full userdata).
struct Slot {
    state: Option<SharedState>,
    stash: Stash,
    /// The address boxes' metatable (upvalue 2, and in the registry, so
    /// never collected while these functions live): a userdata whose
    /// metatable is this one is an `AddrBox`. Compared by address, which
    /// costs less than `lua_rawequal` with an upvalue's pseudo-index.
    box_mt: *const std::ffi::c_void,
}

/// What a take found: a kind for Lua (0 nothing, 2 closed, 3 no senders,
/// 4 stashed) or a message to push (kind 1): a scalar, or a flat table
/// (see `is_flat`).
enum Got {
    Kind(c_int),
    Scalar(Message),
}

/// Whether `msg` is a leaf `push_got` and `flat_table_at` copy: a boolean,
/// number or string.
fn is_scalar(msg: &Message) -> bool {
    matches!(
        msg,
        Message::Bool(_) | Message::Number(_) | Message::String(_)
    )
}

/// Whether `msg` is an array or object whose members are all scalars: one
/// level, built here without `rt.inbox_unstash` (as `message::to_lua`
/// would build it: a fresh plain table).
fn is_flat(msg: &Message) -> bool {
    match msg {
        Message::Array(items) => items.iter().all(is_scalar),
        Message::Object(members) => members.values().all(is_scalar),
        _ => false,
    }
}

const VM_CLOSED: &CStr =
    c"the VM is closing: runtime functions are unavailable in finalizers run at exit";
const STATE_BUSY: &CStr = c"luring: VM state is busy (runtime function called from a finalizer)";

unsafe extern "C-unwind" fn slot_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: this `__gc` is only set on the userdata `register` made,
    // which holds an initialised `Slot`; `state` is taken out, never read
    // after (the functions see `None` and raise).
    unsafe {
        let slot = ffi::lua_touserdata(l, 1) as *mut Slot;
        if !slot.is_null() {
            drop((*slot).state.take());
            (*slot).stash.set(None);
        }
    }
    0
}

/// Raises `msg` as a Lua error. Callers own nothing that needs a drop.
unsafe fn raise(l: *mut ffi::lua_State, msg: &'static CStr) -> ! {
    // SAFETY: the caller's frame owns nothing to drop (see above); the
    // string is static.
    unsafe {
        ffi::lua_pushstring(l, msg.as_ptr());
        ffi::lua_error(l)
    }
}

/// The slot of the running function.
unsafe fn slot<'a>(l: *mut ffi::lua_State) -> &'a Slot {
    // SAFETY: every function here is a closure made by `register` with the
    // `Slot` userdata as upvalue 1; the userdata lives while the closure
    // is running (the closure references it).
    unsafe { &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Slot) }
}

/// Borrows the state of `slot` for `f` (no Lua runs inside `f`).
fn with_state<R>(slot: &Slot, f: impl FnOnce(&mut VmState) -> R) -> Result<R, &'static CStr> {
    let state = slot.state.as_ref().ok_or(VM_CLOSED)?;
    let mut st = state.try_borrow_mut().map_err(|_| STATE_BUSY)?;
    if st.is_ended() {
        return Err(VM_CLOSED);
    }
    Ok(f(&mut st))
}

/// What `receive` finds in the inbox; a message's sender gets its receipt.
fn take(slot: &Slot, st: &mut VmState) -> Got {
    // The receipt may let the sender print on another thread.
    st.flush_if_output();
    // A message handed to this step that owes a receipt was received
    // already (every receive takes it before asking here): its receipt
    // goes first, so that receipts keep the order of the receives.
    if let Some(env) = st.handed.take() {
        Mailbox::deliver(env);
    }
    match st.mailbox.take() {
        Taken::Message(env) => match env.msg {
            m if is_scalar(&m) || is_flat(&m) => Got::Scalar(m),
            other => {
                slot.stash.set(Some(other));
                Got::Kind(4)
            }
        },
        Taken::Closed => Got::Kind(2),
        Taken::NoSenders => Got::Kind(3),
        Taken::Nothing => Got::Kind(0),
    }
}

/// Pushes a scalar message (1 value).
unsafe fn push_scalar(l: *mut ffi::lua_State, m: Message) {
    // SAFETY: the caller made room for the value; `lua_pushlstring`
    // copies the bytes, which are dropped afterwards (or while an
    // out-of-memory error unwinds).
    unsafe {
        match m {
            Message::Bool(b) => ffi::lua_pushboolean(l, b as c_int),
            Message::Number(n) => ffi::lua_pushnumber(l, n),
            Message::String(s) => {
                ffi::lua_pushlstring(l, s.as_ptr().cast(), s.len());
            }
            _ => unreachable!("only scalars are pushed here"),
        }
    }
}

/// Pushes kind and value (2 values, and 2 more slots while a flat table
/// is built).
unsafe fn push_got(l: *mut ffi::lua_State, got: Got) {
    // SAFETY: the caller made room for 4 values (`lua_checkstack` or the
    // 20 slots LuaJIT guarantees a C function). Allocation errors
    // (tables, strings) unwind through here owning only message data,
    // which is dropped on the way.
    unsafe {
        match got {
            Got::Kind(kind) => {
                ffi::lua_pushinteger(l, kind as ffi::lua_Integer);
                ffi::lua_pushnil(l);
            }
            Got::Scalar(Message::Array(items)) => {
                ffi::lua_pushinteger(l, 1);
                ffi::lua_createtable(l, c_int::try_from(items.len()).unwrap_or(0), 0);
                for (i, item) in (1..).zip(items) {
                    push_scalar(l, item);
                    ffi::lua_rawseti(l, -2, i);
                }
            }
            Got::Scalar(Message::Object(members)) => {
                ffi::lua_pushinteger(l, 1);
                ffi::lua_createtable(l, 0, c_int::try_from(members.len()).unwrap_or(0));
                for (key, value) in members {
                    ffi::lua_pushlstring(l, key.as_ptr().cast(), key.len());
                    push_scalar(l, value);
                    ffi::lua_rawset(l, -3);
                }
            }
            Got::Scalar(m) => {
                ffi::lua_pushinteger(l, 1);
                push_scalar(l, m);
            }
        }
    }
}

/// `inbox_take() -> 1, message | 2 (closed) | 3 (no senders) | 0
/// (nothing) | 4 (call inbox_unstash for the message)`
unsafe extern "C-unwind" fn inbox_take(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: see `slot`; `raise` runs with nothing to drop here (the
    // error is a static string).
    unsafe {
        let slot = slot(l);
        let got = match with_state(slot, |st| take(slot, st)) {
            Ok(got) => got,
            Err(msg) => raise(l, msg),
        };
        push_got(l, got);
    }
    2
}

/// `mailbox_poll(buf, receiving) -> n, kind, message[, id, delivered]`:
/// how many receipts arrived, then, when a fiber is receiving, what
/// `inbox_take` would return; the first receipt follows as two values,
/// the others are in buf (buf[2i-1], buf[2i] = send id, delivered).
unsafe extern "C-unwind" fn mailbox_poll(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: see `slot`; argument 1 is checked to be a table before any
    // write; the receipts vector is plain data (lost with an error, like
    // the mlua version lost them).
    unsafe {
        let slot = slot(l);
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
            raise(l, c"bad argument #1 to 'mailbox_poll' (table expected)");
        }
        let receiving = ffi::lua_toboolean(l, 2) != 0;
        let receipts = match with_state(slot, |st| {
            let mut receipts = std::mem::take(&mut st.receipts);
            st.mailbox.take_receipts(&mut receipts);
            receipts
        }) {
            Ok(r) => r,
            Err(msg) => raise(l, msg),
        };
        let n = receipts.len();
        let first = receipts.first().copied();
        for (i, &(id, ok)) in receipts.iter().skip(1).enumerate() {
            ffi::lua_pushnumber(l, id as f64);
            ffi::lua_rawseti(l, 1, (2 * i + 1) as ffi::lua_Integer);
            ffi::lua_pushboolean(l, ok as c_int);
            ffi::lua_rawseti(l, 1, (2 * i + 2) as ffi::lua_Integer);
        }
        // Keep the vector's capacity for the next poll.
        let got = with_state(slot, move |st| {
            let mut receipts = receipts;
            receipts.clear();
            st.receipts = receipts;
            if receiving {
                take(slot, st)
            } else {
                Got::Kind(0)
            }
        });
        let got = match got {
            Ok(got) => got,
            Err(msg) => raise(l, msg),
        };
        ffi::lua_pushnumber(l, n as f64);
        push_got(l, got);
        match first {
            Some((id, ok)) => {
                ffi::lua_pushnumber(l, id as f64);
                ffi::lua_pushboolean(l, ok as c_int);
                5
            }
            None => 3,
        }
    }
}

/// `control_next() -> id[, n[, true, value]]` | nothing: inside a
/// sandbox, the read of the host's next frame (inside.rs `next_fast`:
/// the read to await, or a read-ahead's result, with its boolean or
/// number value); nothing when `rt.control_recv` must do it.
unsafe extern "C-unwind" fn control_next(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: see `slot`; `raise` runs with nothing to drop here (the
    // error is a static string); at most 4 values are pushed (LuaJIT
    // guarantees a C function 20 slots), none allocates.
    unsafe {
        let slot = slot(l);
        let got = match with_state(slot, crate::actor::sandboxed::next_fast) {
            Ok(got) => got,
            Err(msg) => raise(l, msg),
        };
        let Some((id, done, value)) = got else {
            return 0;
        };
        ffi::lua_pushnumber(l, id.to_f64());
        let Some(n) = done else { return 1 };
        ffi::lua_pushnumber(l, f64::from(n));
        let Some(value) = value else { return 2 };
        ffi::lua_pushboolean(l, 1);
        push_scalar(l, value);
        4
    }
}

/// The inbox a tx-channel handle addressed when its box was made (a
/// full userdata, metatable `ADDR_BOX_KEY` in the registry).
struct AddrBox(Option<Arc<Mailbox>>);

/// Registry key of the address boxes' metatable.
const ADDR_BOX_KEY: &CStr = c"luring.addr_box";

unsafe extern "C-unwind" fn addr_box_gc(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: set only on boxes `new_addr_box` initialised; the `Arc` is
    // taken out once.
    unsafe {
        let b = ffi::lua_touserdata(l, 1) as *mut AddrBox;
        if !b.is_null() {
            drop((*b).0.take());
        }
    }
    0
}

/// A new address box for `inbox` (what `rt.chan_box` returns).
pub(crate) fn new_addr_box(lua: &Lua, inbox: Arc<Mailbox>) -> mlua::Result<mlua::Value> {
    const _: () = assert!(std::mem::align_of::<AddrBox>() <= 8);
    // SAFETY: `exec_raw` runs this in protected mode with room for 3
    // values: the metatable is fetched before the userdata is made, so the
    // box is written right after its allocation, before anything else can
    // fail; the box is left on the stack as the result.
    unsafe {
        lua.exec_raw::<mlua::Value>((), |l| {
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, ADDR_BOX_KEY.as_ptr());
            let b = ffi::lua_newuserdata(l, std::mem::size_of::<AddrBox>()) as *mut AddrBox;
            std::ptr::write(b, AddrBox(Some(inbox)));
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setmetatable(l, -2);
            ffi::lua_remove(l, -2);
        })
    }
}

/// The scalar message argument `idx` holds, if it is one that
/// `chan_send_fast` copies.
unsafe fn scalar_at(l: *mut ffi::lua_State, idx: c_int) -> Option<Message> {
    // SAFETY: reads a stack slot of the running function; `lua_tolstring`
    // on a string allocates nothing and the bytes are copied at once.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TBOOLEAN => Some(Message::Bool(ffi::lua_toboolean(l, idx) != 0)),
            ffi::LUA_TNUMBER => Some(Message::Number(ffi::lua_tonumber(l, idx))),
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                if p.is_null() || len > Limits::DEFAULT.max_payload_bytes {
                    return None;
                }
                Some(Message::String(
                    std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec(),
                ))
            }
            _ => None,
        }
    }
}

/// The plain table argument `idx` holds, copied into a message as
/// `message::from_lua` would, when it is flat: an array (`rawlen > 0`)
/// of booleans, numbers and strings up to its first nil, or an object
/// whose string keys hold only such values (other keys are left out, as
/// there). `None` for anything else, and for a table over the default
/// limits or an allocation that fails: `rt.chan_send` then copies it and
/// raises the errors.
unsafe fn flat_table_at(l: *mut ffi::lua_State, idx: c_int) -> Option<Message> {
    /// The default limits' budget of members and string bytes.
    struct Budget {
        members: usize,
        bytes: usize,
    }
    impl Budget {
        fn charge(&mut self, bytes: usize) -> Option<()> {
            let limits = Limits::DEFAULT;
            self.members += 1;
            self.bytes = self.bytes.checked_add(bytes)?;
            (self.members <= limits.max_members && self.bytes <= limits.max_payload_bytes)
                .then_some(())
        }
    }
    /// The scalar on top of the stack, copied (`None`: not a scalar, or
    /// over the budget); pops it.
    unsafe fn take_top(l: *mut ffi::lua_State, budget: &mut Budget) -> Option<Message> {
        // SAFETY: reads and pops the top slot; `lua_tolstring` on a string
        // allocates nothing and the bytes are copied before the pop.
        unsafe {
            let m = match ffi::lua_type(l, -1) {
                ffi::LUA_TBOOLEAN => budget
                    .charge(0)
                    .map(|()| Message::Bool(ffi::lua_toboolean(l, -1) != 0)),
                ffi::LUA_TNUMBER => budget
                    .charge(0)
                    .map(|()| Message::Number(ffi::lua_tonumber(l, -1))),
                ffi::LUA_TSTRING => copy_string(l, -1, budget).map(Message::String),
                _ => None,
            };
            ffi::lua_pop(l, 1);
            m
        }
    }
    unsafe fn copy_string(
        l: *mut ffi::lua_State,
        idx: c_int,
        budget: &mut Budget,
    ) -> Option<Vec<u8>> {
        // SAFETY: `idx` holds a string; its bytes live while it is on the
        // stack and are copied here.
        unsafe {
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, idx, &mut len);
            budget.charge(len)?;
            let mut out = Vec::new();
            out.try_reserve_exact(len).ok()?;
            out.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len));
            Some(out)
        }
    }
    // SAFETY: `idx` is an absolute index of the running function's stack.
    // Only raw reads run (`lua_rawgeti`, `lua_next` over keys it gave):
    // nothing here raises or runs Lua code, and each path pops what it
    // pushed (at most 2 values).
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TTABLE {
            return None;
        }
        if ffi::lua_getmetatable(l, idx) != 0 {
            ffi::lua_pop(l, 1);
            return None;
        }
        let mut budget = Budget {
            members: 1,
            bytes: 0,
        };
        let len = ffi::lua_objlen(l, idx);
        if len > 0 {
            // (a border `lua_objlen` finds in a sparse table may be far
            // beyond its first nil: presize a little, grow as items come)
            let mut items = Vec::new();
            items.try_reserve_exact(len.min(64)).ok()?;
            for i in 1..=len {
                if ffi::lua_rawgeti(l, idx, i as ffi::lua_Integer) == ffi::LUA_TNIL {
                    ffi::lua_pop(l, 1);
                    break; // nil ends the array
                }
                if items.len() >= Limits::DEFAULT.max_array_len {
                    ffi::lua_pop(l, 1);
                    return None;
                }
                items.try_reserve(1).ok()?;
                items.push(take_top(l, &mut budget)?);
            }
            return Some(Message::Array(items));
        }
        let mut members = std::collections::BTreeMap::new();
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            // stack: [.., key, value]
            if ffi::lua_type(l, -2) != ffi::LUA_TSTRING {
                ffi::lua_pop(l, 1); // only string keys are kept
                continue;
            }
            let Some(value) = take_top(l, &mut budget) else {
                ffi::lua_pop(l, 1);
                return None;
            };
            // (the value was charged as a member: the key adds bytes only)
            budget.members -= 1;
            let Some(key) = copy_string(l, -1, &mut budget) else {
                ffi::lua_pop(l, 1);
                return None;
            };
            members.insert(key, value);
        }
        Some(Message::Object(members))
    }
}

// LuaJIT 2.1 exports it (lj_api.c); mlua's LuaJIT bindings do not declare
// it. What `coroutine.isyieldable()` says in the Lua caller of a C
// function (which runs on its caller's C frame), without the Lua call
// that would end a JIT trace.
extern "C-unwind" {
    pub(crate) fn lua_isyieldable(l: *mut ffi::lua_State) -> c_int;
}

/// `chan_send_fast(box, value, send id) -> true queued | false closed |
/// nil (use rt.chan_send)`. Nil also when the calling coroutine cannot
/// yield (checked before anything is posted: a message another thread
/// may have taken cannot be withdrawn): the caller's own check then
/// raises the error. Checking here spares the send a Lua call of
/// `coroutine.isyieldable`, which ends a JIT trace.
unsafe extern "C-unwind" fn chan_send_fast(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: argument 1 is read as an `AddrBox` only after its metatable
    // was found to be the boxes' (`is_box`); see `slot` and `raise` (the
    // message is moved into the closure, so nothing is left to drop when
    // `raise` runs).
    unsafe {
        let slot = slot(l);
        if !is_box(l, 1, slot) {
            raise(
                l,
                c"bad argument #1 to 'chan_send_fast' (address box expected)",
            );
        }
        // (`is_box` left the metatable pushed: arguments are read by
        // index, and the result pushed last is the one returned)
        // What `coroutine.isyieldable()` says in the Lua caller: a C
        // function called from Lua runs on its caller's C frame.
        if lua_isyieldable(l) == 0 {
            return 0;
        }
        let dest = match &(*(ffi::lua_touserdata(l, 1) as *const AddrBox)).0 {
            Some(dest) => dest,
            None => return 0,
        };
        let Some(msg) = scalar_at(l, 2).or_else(|| flat_table_at(l, 2)) else {
            return 0;
        };
        let id = ffi::lua_tonumber(l, 3) as u64;
        // (A closed inbox refuses the post below: no separate look.)
        let queued = with_state(slot, move |st| {
            // What this VM printed comes out before the receiver can
            // react, on whatever thread it runs.
            st.flush_if_output();
            let env = Envelope {
                msg,
                sender: Some(st.mailbox.clone()),
                send_id: id,
            };
            dest.post(env).is_ok()
        });
        match queued {
            Ok(q) => ffi::lua_pushboolean(l, q as c_int),
            Err(msg) => raise(l, msg),
        }
    }
    1
}

/// Whether argument `idx` is an address box (its metatable is the
/// boxes'). Leaves one value pushed either way (the metatable, or
/// whatever `lua_getmetatable` left: nothing it pushes when there is none
/// is read; the callers pop one value or return).
unsafe fn is_box(l: *mut ffi::lua_State, idx: c_int, slot: &Slot) -> bool {
    // SAFETY: reads stack slots of the running function; a userdata's
    // metatable is a live table while it is on the stack.
    unsafe {
        if ffi::lua_getmetatable(l, idx) == 0 {
            ffi::lua_pushnil(l);
            return false;
        }
        ffi::lua_topointer(l, -1) == slot.box_mt
    }
}

/// The inbox of the address box argument `idx` (checked against the
/// boxes' metatable, `is_box`); raises `what` otherwise. `None`: the
/// handle the box was made from was closed since.
unsafe fn box_at<'a>(
    l: *mut ffi::lua_State,
    idx: c_int,
    what: &'static CStr,
) -> Option<&'a Arc<Mailbox>> {
    // SAFETY: the userdata is read as an `AddrBox` only after its
    // metatable was found to be the boxes'; it lives while it is on the
    // stack. `raise` leaves nothing to drop here.
    unsafe {
        if !is_box(l, idx, slot(l)) {
            raise(l, what);
        }
        ffi::lua_pop(l, 1);
        (*(ffi::lua_touserdata(l, idx) as *const AddrBox))
            .0
            .as_ref()
    }
}

/// `chan_withdraw(box, send id) -> true` when the message this VM sent
/// through `box` was still queued (it is taken back: no receipt will
/// come), `false` when a receiver took it already.
unsafe extern "C-unwind" fn chan_withdraw(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: see `box_at`, `slot` and `raise` (static messages).
    unsafe {
        let slot = slot(l);
        let dest = box_at(
            l,
            1,
            c"bad argument #1 to 'chan_withdraw' (address box expected)",
        );
        let id = ffi::lua_tonumber(l, 2) as u64;
        let withdrawn = match with_state(slot, |st| {
            dest.is_some_and(|dest| dest.withdraw(&st.mailbox, id))
        }) {
            Ok(w) => w,
            Err(msg) => raise(l, msg),
        };
        ffi::lua_pushboolean(l, withdrawn as c_int);
    }
    1
}

/// Adds `chan_send_fast`, `mailbox_poll`, `inbox_take`, `chan_withdraw`
/// and `control_next` to `rt`,
/// holding `state`; returns
/// the stash `rt.inbox_unstash` empties.
pub(crate) fn register(lua: &Lua, rt: &Table, state: &SharedState) -> mlua::Result<Stash> {
    const _: () = assert!(std::mem::align_of::<Slot>() <= 8);
    let stash: Stash = Rc::new(Cell::new(None));
    let slot = Slot {
        state: Some(state.clone()),
        stash: stash.clone(),
        box_mt: std::ptr::null(),
    };
    // SAFETY: `exec_raw` pushes `rt` (stack: [rt]) and runs this in
    // protected mode with room for 3 more values (`lua_checkstack` for
    // the rest). Each metatable is made before its userdata, so that the
    // `Slot` is written right after the allocation, before anything else
    // can fail; each closure takes copies of the slot and the address
    // boxes' metatable as its upvalues; everything pushed is popped.
    unsafe {
        lua.exec_raw::<()>(rt, |l| {
            ffi::lua_checkstack(l, 8);
            // the address boxes' metatable, also in the registry
            ffi::lua_createtable(l, 0, 2);
            ffi::lua_pushcfunction(l, addr_box_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            ffi::lua_pushboolean(l, 0);
            ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
            ffi::lua_pushvalue(l, -1);
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, ADDR_BOX_KEY.as_ptr());
            // stack: [rt, box_mt]
            ffi::lua_createtable(l, 0, 1);
            ffi::lua_pushcfunction(l, slot_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            let ud = ffi::lua_newuserdata(l, std::mem::size_of::<Slot>()) as *mut Slot;
            std::ptr::write(
                ud,
                Slot {
                    box_mt: ffi::lua_topointer(l, -3),
                    ..slot
                },
            );
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setmetatable(l, -2);
            // stack: [rt, box_mt, slot_mt, slot]
            let fns: [(&CStr, ffi::lua_CFunction); 5] = [
                (c"chan_send_fast", chan_send_fast),
                (c"mailbox_poll", mailbox_poll),
                (c"inbox_take", inbox_take),
                (c"chan_withdraw", chan_withdraw),
                (c"control_next", control_next),
            ];
            for (name, f) in fns {
                ffi::lua_pushvalue(l, -1);
                ffi::lua_pushvalue(l, -4);
                ffi::lua_pushcclosure(l, f, 2);
                ffi::lua_setfield(l, -5, name.as_ptr());
            }
            ffi::lua_pop(l, 4);
        })?;
    }
    Ok(stash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::vm::Vm;
    use mlua::Function;

    fn rt_fn(vm: &Vm, name: &str) -> Function {
        let (_, core) = vm.lua_and_core();
        core.get::<Table>("rt").unwrap().get(name).unwrap()
    }

    /// Outside a sandbox `control_next` answers nothing: the caller asks
    /// `control_recv`, which reports why (EPERM, no host to read).
    #[test]
    fn control_next_leaves_a_vm_outside_a_sandbox_to_control_recv() {
        let vm = Vm::new().unwrap();
        let next = rt_fn(&vm, "control_next");
        let got: mlua::MultiValue = next.call(()).unwrap();
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn a_fresh_inbox_has_no_senders_and_misuse_raises() {
        let vm = Vm::new().unwrap();
        let take = rt_fn(&vm, "inbox_take");
        let (kind, v): (i32, mlua::Value) = take.call(()).unwrap();
        assert_eq!((kind, v.is_nil()), (3, true));
        let (lua, _) = vm.lua_and_core();
        let err = rt_fn(&vm, "chan_send_fast")
            .call::<()>((lua.create_table().unwrap(), 1, 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("address box expected"), "{err}");
        let err = rt_fn(&vm, "chan_withdraw")
            .call::<()>((lua.create_table().unwrap(), 1))
            .unwrap_err()
            .to_string();
        assert!(err.contains("address box expected"), "{err}");
        let err = rt_fn(&vm, "mailbox_poll")
            .call::<()>((1, true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("table expected"), "{err}");
    }

    /// A raw function called while the state is borrowed (a finalizer
    /// inside another rt call) raises instead of touching it.
    #[test]
    fn a_busy_state_raises() {
        let vm = Vm::new().unwrap();
        let state = vm.shared_state().unwrap();
        let _busy = state.borrow_mut();
        let err = rt_fn(&vm, "inbox_take")
            .call::<()>(())
            .unwrap_err()
            .to_string();
        assert!(err.contains("VM state is busy"), "{err}");
        let (lua, _) = vm.lua_and_core();
        let err = rt_fn(&vm, "mailbox_poll")
            .call::<()>((lua.create_table().unwrap(), true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("VM state is busy"), "{err}");
    }

    /// After the slot let go of the state (its `__gc` at `lua_close`) or
    /// once the VM ended, the functions raise the closing error.
    #[test]
    fn a_released_or_ended_state_is_refused() {
        let released = Slot {
            state: None,
            stash: Rc::new(Cell::new(None)),
            box_mt: std::ptr::null(),
        };
        assert_eq!(with_state(&released, |_| ()).unwrap_err(), VM_CLOSED);
        let vm = Vm::new().unwrap();
        let held = Slot {
            state: Some(vm.shared_state().unwrap()),
            stash: Rc::new(Cell::new(None)),
            box_mt: std::ptr::null(),
        };
        assert!(with_state(&held, |_| ()).is_ok());
        drop(vm);
        assert_eq!(with_state(&held, |_| ()).unwrap_err(), VM_CLOSED);
    }
}
