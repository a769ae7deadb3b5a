//! Inside a sandbox: the inbox fed by the host's frames.
//!
//! Invariants:
//! - At most one `RECV` of the control socket is in flight ([`ControlRead`]),
//!   into the inbox's one frame buffer, which only Rust holds (Lua never
//!   sees it: no script can read or write it while the kernel does). It is armed when a fiber receives
//!   and, again, once a frame was decoded (the buffer is free again: the
//!   decoder copied the frame): queued after the reply's `SEND` (or before
//!   the next ring turn), it leaves with it in one `io_uring_enter`. The
//!   host gains at most one frame of room (the one read ahead); nothing is
//!   decoded before a fiber receives, so a frame's slots become the VM's
//!   only then.
//! - A read-ahead's completion never reaches Lua unless a fiber awaits it:
//!   `rt.turn` hands it to [`ControlRead`] (through `ring_relay::Relays`),
//!   and the next `control_recv` returns its result without waiting,
//!   decoded in the same call when it is a frame (by the same checks as
//!   `control_decode`).
//! - Hand-over: the awaited read's frame, when it is a boolean or a number
//!   for the inbox (nothing to own), is decoded in the turn that reaped it
//!   (same decoder) and its value returned by `rt.turn` for the fiber,
//!   which gets the read's result as before and then needs no
//!   `control_decode` (lua/core/actors.lua `host_handed`). Only the one
//!   awaited read is in flight, so the value is that result's frame; any
//!   other frame is decoded by `control_decode` as before. Either way the
//!   next read is wanted only once the frame was decoded.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use mlua::{Lua, Table, Value};

use super::host::SandboxChannel;
use super::ring_relay::HandOver;
use super::CONTROL_SLOT;
use crate::actor::mailbox::Mailbox;
use crate::actor::message::{self, Message};
use crate::executor::{Completion, Executor, GrantedSlot, OpBuffer, OpFd, OpId};
use crate::modules::byte_span;

/// Inside a sandbox: the mailboxes that stand for the host's routes in
/// messages to the host (route 0, its inbox, and the addresses it gave
/// this sandbox: routes.rs), one per route id, made when a host frame (or
/// the spawner's channel) first names it. The host holds at most
/// `MAX_ROUTES` routes besides 0 for a sandbox, and never takes back one a
/// frame carried: more ids than that is a broken host, refused.
static ROUTE_MARKERS: Mutex<Vec<(u32, Arc<Mailbox>)>> = Mutex::new(Vec::new());

fn route_markers() -> std::sync::MutexGuard<'static, Vec<(u32, Arc<Mailbox>)>> {
    ROUTE_MARKERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The route a channel object inside a sandbox stands for, as an address
/// (`None` past the bound).
fn route_marker(route: u32) -> Option<Arc<Mailbox>> {
    let mut markers = route_markers();
    if let Some((_, marker)) = markers.iter().find(|(r, _)| *r == route) {
        return Some(marker.clone());
    }
    if markers.len() > crate::ipc::MAX_ROUTES as usize {
        return None;
    }
    let marker = Mailbox::new();
    markers.push((route, marker.clone()));
    Some(marker)
}

/// The route `address` stands for, if it is one of the host's (a channel
/// decoded from a host frame).
pub(super) fn route_of(address: &crate::actor::mailbox::ActorAddress) -> Option<u32> {
    route_markers()
        .iter()
        .find(|(_, m)| Arc::ptr_eq(m, &address.mailbox))
        .map(|(route, _)| *route)
}

/// Inside a sandbox, a channel to the host as a message member: the
/// address of its route. Every channel object inside is one (a sandbox
/// spawns no actors); a closed one addresses nothing and, like a closed
/// in-process handle, is left out.
pub(super) fn host_channel_member(
    channel: &SandboxChannel,
) -> Option<Result<Message, message::MessageError>> {
    let open =
        matches!(&*channel.control.borrow(), Some(OpFd::Fixed(slot)) if *slot == CONTROL_SLOT);
    let marker = route_marker(channel.route)?;
    (open && channel.ring.is_none()).then(|| {
        Ok(Message::Address(crate::actor::mailbox::ActorAddress::new(
            marker,
        )))
    })
}

/// Inside a sandbox, a channel member of a host frame naming `route`: a
/// channel object whose sends are frames to that route on the control
/// socket.
fn route_channel(lua: &Lua, route: u32) -> mlua::Result<Value> {
    if route_marker(route).is_none() {
        return Err(mlua::Error::runtime(format!(
            "receive: a frame from the host names route {route}, past the {} routes a \
             host gives one sandbox",
            crate::ipc::MAX_ROUTES
        )));
    }
    Ok(Value::UserData(lua.create_userdata(SandboxChannel {
        control: RefCell::new(Some(OpFd::Fixed(CONTROL_SLOT))),
        child: RefCell::new(None),
        ring: None,
        routes: None,
        route,
    })?))
}

/// Takes ownership of the fixed-file slots a host frame names. A slot
/// outside the range the host installs in (stdio, the control socket, the
/// sandbox's own) is never the host's to name: the frame is refused
/// (second member) and such a slot is left alone; the slots that were in
/// range are owned (and so emptied when dropped) either way.
fn grant_slots(ring_fd: i32, slots: &[u32], table_size: u32) -> (Vec<OpFd>, Option<String>) {
    let host_slots = luring_sandbox::ring::host_slots(table_size);
    let mut granted = Vec::with_capacity(slots.len());
    let mut reason = None;
    for &slot in slots {
        if host_slots.contains(&slot) {
            granted.push(OpFd::Granted(Rc::new(GrantedSlot::new(ring_fd, slot))));
        } else {
            reason.get_or_insert_with(|| {
                format!(
                    "frame from the host names fixed-file slot {slot}, outside the slots \
                     {}..{} it installs capabilities in",
                    host_slots.start, host_slots.end
                )
            });
        }
    }
    (granted, reason)
}

/// Builds a host frame's value in `lua`: fd `k` becomes a
/// `file_descriptor` owning `granted[k]`, channel `k` a channel to the
/// host's route `routing.channel(k)`, a byte span a `byte_span`, an
/// `ip.address` an address object.
/// Recursion is bounded by the decoder's depth limit. On an error the fds
/// not placed yet stay in `granted` (their slots are emptied when it is
/// dropped) and those placed are collected with their objects.
fn wire_to_lua(
    lua: &Lua,
    value: crate::ipc::Value<'_>,
    granted: &mut [Option<OpFd>],
    routing: &crate::ipc::Routing,
) -> mlua::Result<Value> {
    use crate::ipc::Value as W;
    Ok(match value {
        W::Bool(b) => Value::Boolean(b),
        W::Float(f) => Value::Number(f),
        // Lua numbers are doubles (the encoder writes floats).
        W::Integer(i) => Value::Number(i as f64),
        W::String(s) => Value::String(lua.create_string(&*s)?),
        W::Bytes(b) => Value::UserData(byte_span::push_span(
            lua,
            byte_span::SpanRef::from_bytes(&b),
        )?),
        W::Ip(address) => crate::modules::ip::address_to_lua(lua, address)?,
        W::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, wire_to_lua(lua, item, granted, routing)?)?;
            }
            Value::Table(t)
        }
        W::Object(members) => {
            let t = lua.create_table_with_capacity(0, members.len())?;
            for (key, item) in members {
                t.raw_set(
                    lua.create_string(&*key)?,
                    wire_to_lua(lua, item, granted, routing)?,
                )?;
            }
            Value::Table(t)
        }
        W::Channel(k) => route_channel(lua, routing.channel(k as usize))?,
        W::Fd(k) => {
            let fd = granted
                .get_mut(k as usize)
                .and_then(Option::take)
                // The decoder lets each fd be referenced exactly once.
                .ok_or_else(|| mlua::Error::runtime("luring: a host frame's fd used twice"))?;
            Value::UserData(crate::modules::file_descriptor::push(lua, fd)?)
        }
    })
}

/// The control socket's `RECV` of a sandboxed VM (module doc). Held in
/// the VM state (`ring_relay::Relays`), whose drop comes after the
/// executor's: an op still armed then was cancelled and reaped with it.
#[derive(Default)]
pub(crate) struct ControlRead {
    /// The read in flight, if any.
    armed: Option<OpId>,
    /// A fiber awaits `armed`: its completion goes to Lua.
    awaited: bool,
    /// The result of a read-ahead that completed while no fiber waited.
    done: Option<i32>,
    /// A frame was decoded: the next read goes out with the next submit,
    /// after the SQEs queued before it (the reply's `SEND` first: a `RECV`
    /// ahead of it in the queue would delay it by the poll arming).
    wanted: Option<byte_span::SpanRef>,
    /// The inbox's frame buffer (`frame_buffer`), once made.
    buffer: Option<byte_span::SpanRef>,
}

impl ControlRead {
    /// After a frame was decoded into `buf`: the next one is to be read
    /// ahead ([`ControlRead::arm_wanted`]).
    fn want_next(&mut self, buf: byte_span::SpanRef) {
        self.wanted = Some(buf);
    }

    /// Queues the read-ahead a decoded frame asked for (before a ring
    /// turn; inside, after a send's SQE).
    pub(crate) fn arm_wanted(&mut self, executor: &mut Executor) {
        if let Some(buf) = self.wanted.take() {
            self.read_ahead(executor, buf);
        }
    }

    /// Reads the next frame ahead into `buf` unless a read is in flight or
    /// its result is still to be taken.
    fn read_ahead(&mut self, executor: &mut Executor, buf: byte_span::SpanRef) {
        if self.armed.is_some() || self.done.is_some() {
            return;
        }
        // A failure to arm is not the frame's: the next receive submits
        // the read again and reports what fails then.
        if let Ok(id) = executor.recv_datagram(&OpFd::Fixed(CONTROL_SLOT), OpBuffer::Span(buf)) {
            self.armed = Some(id);
            self.awaited = false;
        }
    }

    /// For a fiber that receives: the read to await (submitted now unless
    /// one is in flight), or the result of a read-ahead that completed.
    fn next(
        &mut self,
        executor: &mut Executor,
        buf: byte_span::SpanRef,
    ) -> std::io::Result<(OpId, Option<i32>)> {
        // Not queued yet: the read below is that one.
        self.wanted = None;
        if let (Some(id), Some(n)) = (self.armed, self.done) {
            self.armed = None;
            self.done = None;
            return Ok((id, Some(n)));
        }
        if let Some(id) = self.armed {
            self.awaited = true;
            return Ok((id, None));
        }
        let id = executor.recv_datagram(&OpFd::Fixed(CONTROL_SLOT), OpBuffer::Span(buf))?;
        self.armed = Some(id);
        self.awaited = true;
        Ok((id, None))
    }

    /// After a ring turn: a read-ahead's completion is kept here (Lua has
    /// no waiter for it); an awaited one goes on to Lua, and when its
    /// frame is a boolean or a number for the inbox, that value is handed
    /// over with the turn (`hand`, module doc): the fiber then needs no
    /// `control_decode`.
    pub(crate) fn after_turn(
        &mut self,
        executor: &mut Executor,
        completions: &mut Vec<Completion>,
        hand: &mut HandOver,
    ) {
        let Some(id) = self.armed else { return };
        let Some(at) = completions.iter().position(|c| c.id == id) else {
            return;
        };
        if !self.awaited {
            self.done = Some(completions.remove(at).result);
            return;
        }
        self.armed = None;
        self.awaited = false;
        let n = completions[at].result;
        let (Ok(n), Some(buf)) = (usize::try_from(n), &self.buffer) else {
            return;
        };
        if n == 0 || hand.holds() {
            return;
        }
        if let Some(value) = buf.with_bytes(|b| b.get(..n).and_then(scalar_value)) {
            // As `decode_frame` does for a frame it decoded.
            executor.note_traffic();
            self.want_next(buf.clone());
            hand.give(value);
        }
    }
}

/// The value of a host frame that is a boolean or a number for the inbox
/// (destination 0, no fds or channels: nothing to own), decoded by the
/// same checks as any frame; `None` for any other frame, which
/// `control_decode` then decodes (and refuses) as before.
fn scalar_value(bytes: &[u8]) -> Option<Message> {
    let table_size = luring_sandbox::RingSpec::default().fixed_files;
    let decoded =
        crate::ipc::decode(bytes, crate::ipc::FdMode::FixedSlots { table_size }, 0).ok()?;
    if decoded.routing.destination != 0 || !decoded.fd_slots.is_empty() {
        return None;
    }
    match decoded.value {
        crate::ipc::Value::Bool(b) => Some(Message::Bool(b)),
        crate::ipc::Value::Float(f) => Some(Message::Number(f)),
        // Lua numbers are doubles (as `wire_to_lua`).
        crate::ipc::Value::Integer(i) => Some(Message::Number(i as f64)),
        _ => None,
    }
}

/// `rt.control_next` (raw_calls.rs, no mlua frame): what
/// `control_recv` does when nothing fails and the frame, if a read-ahead
/// brought one, is a boolean or a number: the read to await (result
/// `None`), or the read-ahead's result with that value decoded. `None`
/// for anything else (not a sandboxed VM, no buffer yet, another kind of
/// frame, the read not armed): the caller then asks `control_recv`, which
/// does it all again and owns every error path. Runs no Lua.
pub(crate) fn next_fast(
    st: &mut crate::actor::vm::VmState,
) -> Option<(OpId, Option<i32>, Option<Message>)> {
    if !st.executor.is_fixed_only() {
        return None;
    }
    let control = &mut st.relays.control;
    let buf = control.buffer.clone()?;
    if let Some(n) = control.done {
        // A read-ahead's frame: taken here only if it is a scalar (else
        // `control_recv` decodes it into tables and the like).
        let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
        let value = buf.with_bytes(|b| b.get(..n).and_then(scalar_value))?;
        let (id, done) = control.next(&mut st.executor, buf.clone()).ok()?;
        // (as `decode_frame` does for a frame it decoded)
        st.executor.note_traffic();
        control.want_next(buf);
        return Some((id, done, Some(value)));
    }
    let (id, done) = control.next(&mut st.executor, buf).ok()?;
    Some((id, done, None))
}

/// The inbox's one frame buffer (`ipc::MAX_FRAME_BYTES`), made once
/// (`control_prepare`, before the module comes) and kept in the VM state:
/// Lua never holds it, so no script can reach the bytes a read is writing.
fn frame_buffer(st: &mut crate::actor::vm::VmState) -> std::io::Result<byte_span::SpanRef> {
    if let Some(buf) = &st.relays.control.buffer {
        return Ok(buf.clone());
    }
    let max = crate::ipc::MAX_FRAME_BYTES;
    // Mapped: a frame fills a page or two of these 128 KiB, and a
    // zeroed heap chunk cost ~32 page faults per sandbox (~55 µs here).
    let buf = byte_span::SpanRef::try_new_mapped(max, max)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOMEM))?;
    st.relays.control.buffer = Some(buf.clone());
    Ok(buf)
}

/// Frames up to this size are copied to the stack to be decoded (the
/// common case); longer ones to the heap.
const SMALL_FRAME: usize = 512;

/// Decodes the frame of `n` bytes in the inbox's buffer into a Lua value:
/// `(true, value)`, or `(false, reason)` for a frame that breaks a rule
/// (the caller closes the inbox). Errors (out of memory) are raised.
fn decode_frame(lua: &Lua, n: usize) -> mlua::Result<(bool, Value)> {
    let refuse = |reason: String| -> mlua::Result<(bool, Value)> {
        Ok((false, Value::String(lua.create_string(reason)?)))
    };
    let span =
        crate::actor::vm::with_state(lua, frame_buffer)?.map_err(crate::actor::vm::io_err)?;
    if n > span.len() {
        return refuse("frame from the host larger than the frame limit (truncated)".into());
    }
    // Only the frame is copied (the buffer is `MAX_FRAME_BYTES` long, and
    // copying all of it cost more than the rest of a round trip), and
    // copied at all because the next read goes into the same buffer.
    let mut small = [0u8; SMALL_FRAME];
    let large;
    let bytes: &[u8] = if n <= SMALL_FRAME {
        span.with_bytes(|b| small[..n].copy_from_slice(&b[..n]));
        &small[..n]
    } else {
        large = span.with_bytes(|b| b[..n].to_vec());
        &large
    };
    let table_size = luring_sandbox::RingSpec::default().fixed_files;
    let decoded = match crate::ipc::decode(bytes, crate::ipc::FdMode::FixedSlots { table_size }, 0)
    {
        Ok(d) => d,
        Err(e) => return refuse(e.to_string()),
    };
    // Each slot the frame names is this VM's from now on: owned before
    // anything else can fail, so every path empties it.
    let ring_fd = crate::actor::vm::with_state(lua, |st| {
        // A frame from the host: its next one (or the answer to this
        // one's reply) is likely microseconds away. The buffer is free
        // again (the frame was copied): the next read goes out with this
        // one's reply.
        st.executor.note_traffic();
        st.relays.control.want_next(span.clone());
        st.executor.ring_fd()
    })?;
    let (granted, reason) = grant_slots(ring_fd, &decoded.fd_slots, table_size);
    if let Some(reason) = reason {
        return refuse(reason);
    }
    if decoded.routing.destination != 0 {
        // (Its slots, owned above, are emptied.)
        return refuse(format!(
            "frame from the host names destination route {}: its frames go to this \
             sandbox's inbox",
            decoded.routing.destination
        ));
    }
    let mut granted: Vec<Option<OpFd>> = granted.into_iter().map(Some).collect();
    // (Out of memory and the like are raised, as for any receive.)
    Ok((
        true,
        wire_to_lua(lua, decoded.value, &mut granted, &decoded.routing)?,
    ))
}

/// The rt functions of a sandboxed VM's inbox (lua/core/actors.lua): the
/// host's frames are read from the control socket with a ring `RECV` on
/// [`CONTROL_SLOT`] ([`ControlRead`]: while a fiber receives, and one frame
/// ahead after each decoded frame) into the inbox's buffer, which only
/// Rust holds.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use crate::actor::vm::unless_closing;
    // control_prepare(): makes the inbox's frame buffer now (before the
    // module comes: its first allocation cost ~0.15 ms of a first round
    // trip).
    rt.set(
        "control_prepare",
        lua.create_function(unless_closing(|lua, ()| {
            crate::actor::vm::with_state(lua, |st| frame_buffer(st).map(drop))?
                .map_err(crate::actor::vm::io_err)
        }))?,
    )?;
    // control_recv() -> op id, result | nil, good | nil, message: the
    // result is the frame's length (above the buffer's: truncated), 0
    // when the host is gone, or -errno. A frame read ahead
    // (`ControlRead`) comes as the second value, no wait, and when it is
    // a frame (result > 0) it is decoded at once: third and fourth values
    // as `control_decode`'s (one call from Lua instead of two).
    rt.set(
        "control_recv",
        lua.create_function(unless_closing(|lua, ()| {
            let (id, done) = crate::actor::vm::with_state(lua, |st| {
                if !st.executor.is_fixed_only() {
                    return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                }
                let buf = frame_buffer(st)?;
                st.relays.control.next(&mut st.executor, buf)
            })?
            .map_err(crate::actor::vm::io_err)?;
            let (good, v) = match done {
                Some(n) if n > 0 => {
                    let (good, v) = decode_frame(lua, n as usize)?;
                    (Some(good), v)
                }
                _ => (None, Value::Nil),
            };
            Ok((id.to_f64(), done, good, v))
        }))?,
    )?;
    // control_decode(n) -> true, message | false, reason: the frame of `n`
    // bytes the awaited read left in the buffer.
    rt.set(
        "control_decode",
        lua.create_function(unless_closing(|lua, n: usize| decode_frame(lua, n)))?,
    )?;
    Ok(())
}
