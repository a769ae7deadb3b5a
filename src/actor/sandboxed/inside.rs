//! Inside a sandbox: the inbox fed by the host's frames.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use mlua::{Lua, Table, Value};

use super::host::SandboxChannel;
use super::{frame_to_message, CONTROL_SLOT};
use crate::actor::mailbox::Mailbox;
use crate::actor::message::{self, Message};
use crate::executor::{OpBuffer, OpFd};
use crate::modules::byte_span;

/// Inside a sandbox: the mailbox that stands for "the host" in decoded
/// messages; [`HostChannelCaps`] turns it into a channel object that
/// sends on the control socket.
fn host_marker() -> &'static Arc<Mailbox> {
    static MARKER: OnceLock<Arc<Mailbox>> = OnceLock::new();
    MARKER.get_or_init(Mailbox::new)
}

struct HostChannelCaps;

impl message::Capabilities for HostChannelCaps {
    fn capability_of(
        &self,
        _: &mlua::AnyUserData,
    ) -> Option<Result<Message, message::MessageError>> {
        None
    }

    fn capability_to_lua(&self, lua: &Lua, capability: Message) -> mlua::Result<Value> {
        match capability {
            Message::Address(a) if Arc::ptr_eq(&a.mailbox, host_marker()) => {
                Ok(Value::UserData(lua.create_userdata(SandboxChannel {
                    control: RefCell::new(Some(OpFd::Fixed(CONTROL_SLOT))),
                    child: RefCell::new(None),
                })?))
            }
            _ => Ok(Value::Nil),
        }
    }
}

/// The rt functions of a sandboxed VM's inbox (lua/core/actors.lua): the
/// host's frames are read from the control socket with a ring `RECV` on
/// [`CONTROL_SLOT`], only while a fiber receives.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use crate::actor::vm::{submit_op, unless_closing};
    rt.set("max_frame_bytes", crate::ipc::MAX_FRAME_BYTES)?;
    // control_recv(byte_span) -> op id; the result is the frame's length
    // (above the span's: truncated), 0 when the host is gone, or -errno.
    rt.set(
        "control_recv",
        lua.create_function(unless_closing(|lua, buf: Value| {
            let span = byte_span::span_arg(&buf, 1)?;
            submit_op(lua, |st| {
                if !st.executor.is_fixed_only() {
                    return Err(std::io::Error::from_raw_os_error(libc::EPERM));
                }
                st.executor
                    .recv_datagram(&OpFd::Fixed(CONTROL_SLOT), OpBuffer::Span(span))
            })
        }))?,
    )?;
    // control_decode(byte_span, n) -> true, message | false, reason
    rt.set(
        "control_decode",
        lua.create_function(unless_closing(|lua, (buf, n): (Value, usize)| {
            let span = byte_span::span_arg(&buf, 1)?;
            if n > span.len() {
                return Ok((
                    false,
                    Value::String(lua.create_string(
                        "frame from the host larger than the frame limit (truncated)",
                    )?),
                ));
            }
            let bytes = span.to_vec();
            let table_size = luring_sandbox::RingSpec::default().fixed_files;
            let decoded = match crate::ipc::decode(
                &bytes[..n],
                crate::ipc::FdMode::FixedSlots { table_size },
                0,
            ) {
                Ok(d) => d,
                Err(e) => {
                    return Ok((false, Value::String(lua.create_string(e.to_string())?)));
                }
            };
            match frame_to_message(decoded.value, Some(host_marker())) {
                Ok(msg) => Ok((
                    true,
                    message::to_lua(lua, msg, &HostChannelCaps, &message::Limits::default())?,
                )),
                Err(reason) => Ok((false, Value::String(lua.create_string(reason)?))),
            }
        }))?,
    )?;
    Ok(())
}
