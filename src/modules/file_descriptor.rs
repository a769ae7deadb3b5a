//! `file_descriptor` objects (spec/actors.md §7): the capability a Lua
//! program holds for an open file description.
//!
//! Invariants:
//! - A `file_descriptor` owns an [`OpFd`] reference, never a bare number.
//!   Ring ops clone that reference into their slot, so closing the object
//!   (or collecting it) while an op is in flight only drops the object's
//!   reference: the descriptor is closed when the last op holding it
//!   completes, never under the kernel's feet and never twice.
//! - Lua code cannot construct one: the only constructors are Rust
//!   ([`push`], used by `release()` of I/O objects and by messages).
//! - An emptied object (closed, or consumed by `X.new(fd)`/`assign(fd)`) is
//!   inert: every method raises `EBUSY`, `tostring` says `/dev/fd/-1`.
//! - The metatable is locked and named `file_descriptor`; methods take the
//!   object as a plain value and refuse anything else with `EINVAL`, so no
//!   user value is ever mistaken for a descriptor.
//! - In a message ([`FdCapabilities`]) the descriptor is duplicated with
//!   `F_DUPFD_CLOEXEC`: the sender keeps its own, the receiver gets a new
//!   object owning the copy.

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};

use mlua::{AnyUserData, Lua, MetaMethod, UserData, UserDataMethods, Value};

use crate::actor::message::{dup_fd_for_message, Capabilities, Message, MessageError};
use crate::actor::vm::unless_closing;
use crate::executor::OpFd;
use crate::modules::error::{self, CoreError, ErrorCode};

/// The Lua `file_descriptor` object. `None`: closed or handed on.
pub(crate) struct FileDescriptor(RefCell<Option<OpFd>>);

impl FileDescriptor {
    /// A clone of the reference (for an op), or `EBUSY` when emptied.
    pub(crate) fn op_fd(&self) -> Option<OpFd> {
        self.0.borrow().clone()
    }

    /// Takes the descriptor out, leaving the object emptied.
    pub(crate) fn take(&self) -> Option<OpFd> {
        self.0.borrow_mut().take()
    }

    fn raw(&self) -> i32 {
        self.0.borrow().as_ref().map_or(-1, OpFd::raw)
    }
}

fn busy() -> mlua::Error {
    ErrorCode::generic(libc::EBUSY).into()
}

/// The `file_descriptor` behind argument `index`, or `EINVAL`.
pub(crate) fn arg(v: &Value, index: i32) -> mlua::Result<mlua::UserDataRef<FileDescriptor>> {
    match v {
        Value::UserData(ud) => ud
            .borrow::<FileDescriptor>()
            .map_err(|_| error::einval(index)),
        _ => Err(error::einval(index)),
    }
}

/// A new `file_descriptor` object owning `fd`. Every one is made here:
/// the VM's first also builds and names the type's metatable, which boot
/// no longer does (mlua makes it with one function per method: ~7% of a
/// spawn's CPU for a type most actors never use).
pub(crate) fn push(lua: &Lua, fd: OpFd) -> mlua::Result<AnyUserData> {
    let ud = lua.create_userdata(FileDescriptor(RefCell::new(Some(fd))))?;
    if lua.app_data_ref::<MetatableNamed>().is_none() {
        name_metatable(lua, &ud)?;
    }
    Ok(ud)
}

/// Set once this VM's `file_descriptor` metatable is named.
struct MetatableNamed;

/// Makes `getmetatable(fd)` return `"file_descriptor"` (mlua sets `false`)
/// for every fd object of this VM; `ud` is the VM's first one.
#[cold]
fn name_metatable(lua: &Lua, ud: &AnyUserData) -> mlua::Result<()> {
    super::name_userdata_metatable(lua, ud.clone(), c"file_descriptor")?;
    // Only once it is named: a failure (no memory) is retried next time.
    // While some caller holds app data (the VM state) the flag cannot be
    // set (`set_app_data` would panic); naming again later is harmless.
    let _ = lua.try_set_app_data(MetatableNamed);
    Ok(())
}

/// Duplicates `fd` close-on-exec.
fn dup_cloexec(fd: &OpFd) -> std::io::Result<OwnedFd> {
    match fd {
        OpFd::Owned(fd) => fd.as_fd().try_clone_to_owned(),
        OpFd::Shared(fd) => fd.as_fd().try_clone_to_owned(),
        // SAFETY: fd 0, 1 and 2 stay open for the program's life.
        OpFd::Std(s) => {
            unsafe { std::os::fd::BorrowedFd::borrow_raw(*s as i32) }.try_clone_to_owned()
        }
        // A fixed slot has no fd number in this process.
        OpFd::Fixed(_) | OpFd::Slot(_) => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        // A sandbox cannot turn a slot into a second slot or an fd number.
        OpFd::Granted(_) => Err(std::io::Error::from_raw_os_error(libc::ENOTSUP)),
    }
}

impl UserData for FileDescriptor {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_function(
            "close",
            unless_closing(|_, this: Value| {
                let this = arg(&this, 1)?;
                // A borrowed standard stream is not ours to close.
                if matches!(*this.0.borrow(), None | Some(OpFd::Std(_) | OpFd::Fixed(_))) {
                    return Err(busy());
                }
                // Closes now unless an op in flight still holds a clone; then
                // the op's completion closes it.
                drop(this.take());
                Ok(())
            }),
        );
        methods.add_function(
            "dup",
            unless_closing(|lua, this: Value| {
                let this = arg(&this, 1)?;
                let fd = this.op_fd().ok_or_else(busy)?;
                let copy = dup_cloexec(&fd).map_err(|e| ErrorCode::from_io(&e))?;
                push(lua, OpFd::owned(copy))
            }),
        );
        for name in ["cap_get", "cap_set"] {
            methods.add_function(
                name,
                unless_closing(|_, this: Value| -> mlua::Result<()> {
                    arg(&this, 1)?;
                    // Capsicum-style per-fd capabilities are not implemented.
                    Err(ErrorCode::generic(libc::ENOTSUP).into())
                }),
            );
        }
        // Like every runtime object: an unknown key is an error, fields
        // cannot be set.
        methods.add_meta_function(MetaMethod::Index, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::core(CoreError::BadIndex).into())
        });
        methods.add_meta_function(MetaMethod::NewIndex, |_, ()| -> mlua::Result<()> {
            Err(ErrorCode::generic(libc::EPERM).into())
        });
        // Works in finalizers at VM close too: it reads only the object.
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("/dev/fd/{}", this.raw()))
        });
    }
}

/// The fd half of a VM's message capabilities. Channel capabilities
/// delegate here for userdata they do not recognise (and for
/// [`Message::Fd`] members), so both kinds travel in one message:
///
/// ```text
/// impl Capabilities for VmCapabilities {
///     fn capability_of(&self, ud: &AnyUserData) -> Option<Result<Message, MessageError>> {
///         self.channel_of(ud).or_else(|| FdCapabilities.fd_of(ud))
///     }
///     fn capability_to_lua(&self, lua: &Lua, cap: Message) -> mlua::Result<Value> {
///         match cap {
///             Message::Fd(fd) => FdCapabilities.fd_to_lua(lua, fd),
///             other => self.channel_to_lua(lua, other),
///         }
///     }
/// }
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct FdCapabilities;

impl FdCapabilities {
    /// `Some` when `userdata` is a `file_descriptor`: a close-on-exec
    /// duplicate, [`MessageError::FdClosed`] (`EBUSY`) for an emptied or
    /// borrowed one, or the dup's errno.
    pub fn fd_of(&self, userdata: &AnyUserData) -> Option<Result<Message, MessageError>> {
        let fd = userdata.borrow::<FileDescriptor>().ok()?;
        let fd = fd.0.borrow();
        Some(match &*fd {
            Some(OpFd::Owned(owned)) => dup_fd_for_message(Some(owned.as_fd())),
            Some(OpFd::Shared(shared)) => dup_fd_for_message(Some(shared.as_fd())),
            // The standard streams are borrowed, never handed on.
            Some(OpFd::Std(_) | OpFd::Fixed(_) | OpFd::Slot(_) | OpFd::Granted(_)) | None => {
                dup_fd_for_message(None)
            }
        })
    }

    /// A new `file_descriptor` owning `fd` (the receiver's copy).
    pub fn fd_to_lua(&self, lua: &Lua, fd: OwnedFd) -> mlua::Result<Value> {
        push(lua, OpFd::owned(fd)).map(Value::UserData)
    }
}

impl Capabilities for FdCapabilities {
    fn capability_of(&self, userdata: &AnyUserData) -> Option<Result<Message, MessageError>> {
        self.fd_of(userdata)
    }

    fn capability_to_lua(&self, lua: &Lua, capability: Message) -> mlua::Result<Value> {
        match capability {
            Message::Fd(fd) => self.fd_to_lua(lua, fd),
            // Channel addresses need the channel capabilities.
            _ => Err(ErrorCode::generic(libc::ENOTSUP).into()),
        }
    }
}

#[cfg(test)]
#[path = "file_descriptor_tests.rs"]
mod tests;

/// For the fd-leak test binary and benches: `n` times, copies a pipe's
/// `file_descriptor` into a message and builds it back as a new object in
/// the same VM (the way a message crosses to another actor), checks that
/// the copy is a distinct usable descriptor, then lets the VM collect it.
/// `before_sending` runs once the VM and the pipe exist.
#[doc(hidden)]
pub fn message_round_trips(n: usize, before_sending: &mut dyn FnMut()) -> Result<(), String> {
    use crate::actor::message::{from_lua, to_lua, Limits};
    let lua = Lua::new();
    let (r, w) = std::io::pipe().map_err(|e| e.to_string())?;
    let sent = push(&lua, OpFd::owned(r.into())).map_err(|e| e.to_string())?;
    let writer: OwnedFd = w.into();
    let caps = FdCapabilities;
    before_sending();
    for i in 0..n {
        let msg = from_lua(
            &lua,
            &Value::UserData(sent.clone()),
            &caps,
            &Limits::DEFAULT,
        )
        .map_err(|e| e.to_string())?;
        let got = to_lua(&lua, msg, &caps, &Limits::DEFAULT).map_err(|e| e.to_string())?;
        let Value::UserData(got) = got else {
            return Err("the copy is not a userdata".into());
        };
        let got = got.borrow::<FileDescriptor>().map_err(|e| e.to_string())?;
        if got.raw() < 0
            || got.raw()
                == sent
                    .borrow::<FileDescriptor>()
                    .map_err(|e| e.to_string())?
                    .raw()
        {
            return Err(format!("round trip {i}: not a new descriptor"));
        }
        drop(got);
        if i % 1000 == 999 {
            lua.gc_collect().map_err(|e| e.to_string())?;
        }
    }
    lua.gc_collect().map_err(|e| e.to_string())?;
    drop(writer);
    Ok(())
}
