//! file_descriptor objects in messages, against a real LuaJIT state: fds
//! arrive usable, the sender keeps its own, emptied fds are EBUSY, and the
//! copy is close-on-exec.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use mlua::{Lua, Value};
use nix::fcntl::{fcntl, FcntlArg, FdFlag};

use super::*;
use crate::actor::message::{from_lua, to_lua, Limits};

/// A plain state: `push` names the metatable itself (nothing registers it
/// beforehand, as in a VM since boot stopped doing so).
fn vm() -> Lua {
    Lua::new()
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

/// Sends `v` through a message and builds it back in the same VM.
fn round_trip(lua: &Lua, v: &Value) -> Result<Value, MessageError> {
    let msg = from_lua(lua, v, &FdCapabilities, &Limits::DEFAULT)?;
    Ok(to_lua(lua, msg, &FdCapabilities, &Limits::DEFAULT)?)
}

fn raw_of(v: &Value) -> i32 {
    match v {
        Value::UserData(ud) => ud.borrow::<FileDescriptor>().unwrap().raw(),
        other => panic!("not a file_descriptor: {other:?}"),
    }
}

#[test]
fn an_fd_arrives_usable_and_the_sender_keeps_its_own() {
    let lua = vm();
    let (r, w) = pipe();
    let sent = Value::UserData(push(&lua, OpFd::owned(w)).unwrap());
    let got = round_trip(&lua, &sent).expect("an fd is sendable");
    assert_ne!(raw_of(&got), raw_of(&sent));
    assert!(raw_of(&sent) >= 0, "the sender's object is untouched");
    // SAFETY: `got` owns this descriptor and lives until the end of the test.
    let got_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw_of(&got)) };
    let flags = fcntl(got_fd, FcntlArg::F_GETFD).unwrap();
    assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
    assert_eq!(
        lua.load("return getmetatable(...), tostring(...)")
            .call::<(String, String)>(got.clone())
            .unwrap(),
        (
            "file_descriptor".to_owned(),
            format!("/dev/fd/{}", raw_of(&got))
        )
    );
    // Write into the received copy, read from the other end.
    let Value::UserData(ud) = &got else {
        unreachable!()
    };
    let fd = ud.borrow::<FileDescriptor>().unwrap().op_fd().unwrap();
    let OpFd::Owned(fd) = fd else { unreachable!() };
    std::fs::File::from(fd.as_fd().try_clone_to_owned().unwrap())
        .write_all(b"through the copy")
        .unwrap();
    let mut buf = [0u8; 16];
    std::fs::File::from(r).read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"through the copy");
}

#[test]
fn fds_inside_tables_arrive_as_new_objects() {
    let lua = vm();
    let (r, w) = pipe();
    let t = lua.create_table().unwrap();
    t.set("reader", push(&lua, OpFd::owned(r)).unwrap())
        .unwrap();
    let list = lua.create_table().unwrap();
    list.raw_set(1, push(&lua, OpFd::owned(w)).unwrap())
        .unwrap();
    t.set("list", list).unwrap();
    let got = round_trip(&lua, &Value::Table(t.clone())).unwrap();
    let Value::Table(got) = got else {
        panic!("a table")
    };
    let reader: Value = got.get("reader").unwrap();
    let writer: Value = got.get::<mlua::Table>("list").unwrap().raw_get(1).unwrap();
    assert_ne!(raw_of(&reader), raw_of(&t.get::<Value>("reader").unwrap()));
    assert!(raw_of(&writer) >= 0);
}

#[test]
fn a_closed_fd_is_ebusy_at_top_level_and_dropped_inside_tables() {
    let lua = vm();
    let (r, _w) = pipe();
    let fd = push(&lua, OpFd::owned(r)).unwrap();
    lua.load("local fd = ...; fd:close()")
        .call::<()>(fd.clone())
        .unwrap();
    let err = round_trip(&lua, &Value::UserData(fd.clone())).unwrap_err();
    assert!(matches!(err, MessageError::FdClosed), "{err:?}");
    assert_eq!(
        err.to_error_code().unwrap(),
        ErrorCode::generic(libc::EBUSY)
    );
    // In an array it ends the array; in an object it is left out.
    let (arr, obj): (Value, Value) = lua
        .load("local fd = ...; return {1, fd, 3}, {a = fd, b = true}")
        .call(fd)
        .unwrap();
    let arr = round_trip(&lua, &arr).unwrap();
    let obj = round_trip(&lua, &obj).unwrap();
    let (n, has_a, b): (i64, bool, bool) = lua
        .load("local a, o = ...; return #a, o.a ~= nil, o.b")
        .call((arr, obj))
        .unwrap();
    assert_eq!((n, has_a, b), (1, false, true));
}

#[test]
fn a_borrowed_standard_stream_is_ebusy() {
    let lua = vm();
    let fd = push(&lua, OpFd::Std(crate::executor::StdStream::Out)).unwrap();
    let err = round_trip(&lua, &Value::UserData(fd.clone())).unwrap_err();
    assert!(matches!(err, MessageError::FdClosed), "{err:?}");
    // And it cannot be closed either.
    let e = lua
        .load("local fd = ...; fd:close()")
        .call::<()>(fd)
        .unwrap_err();
    assert!(e.to_string().contains("generic error 16"), "{e}");
}

#[test]
fn other_userdata_is_not_a_capability() {
    let lua = vm();
    let ud = lua.create_any_userdata(5u32).unwrap();
    assert!(FdCapabilities.capability_of(&ud).is_none());
    let err = FdCapabilities
        .capability_to_lua(&lua, Message::Bool(true))
        .unwrap_err();
    assert!(err.to_string().contains("95"), "{err}");
}

/// Whether the pipe still has a reader: checked through the write end, so
/// a descriptor number reused by a parallel test cannot fool it.
fn has_reader(w: &OwnedFd) -> bool {
    match std::fs::File::from(w.try_clone().unwrap()).write(b"x") {
        Ok(_) => true,
        Err(e) if e.raw_os_error() == Some(libc::EPIPE) => false,
        Err(e) => panic!("write: {e}"),
    }
}

#[test]
fn closing_the_object_leaves_the_fd_to_an_op_that_still_holds_it() {
    let lua = vm();
    let (r, w) = pipe();
    let fd = push(&lua, OpFd::owned(r)).unwrap();
    // What a ring op's slot keeps while it is in flight.
    let in_flight = fd.borrow::<FileDescriptor>().unwrap().op_fd().unwrap();
    lua.load("local fd = ...; fd:close(); assert(tostring(fd) == '/dev/fd/-1')")
        .call::<()>(fd.clone())
        .unwrap();
    assert!(has_reader(&w), "the op's reference keeps the fd open");
    drop(in_flight);
    assert!(!has_reader(&w), "the last reference closed it");
}

#[test]
fn garbage_collection_closes_the_fd() {
    let lua = vm();
    let (r, w) = pipe();
    drop(push(&lua, OpFd::owned(r)).unwrap());
    assert!(has_reader(&w));
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    assert!(!has_reader(&w));
}

#[test]
fn dup_makes_a_close_on_exec_copy() {
    let lua = vm();
    let (r, _w) = pipe();
    let fd = push(&lua, OpFd::owned(r)).unwrap();
    let copy: Value = lua
        .load("local fd = ...; return fd:dup()")
        .call(fd.clone())
        .unwrap();
    let original = raw_of(&Value::UserData(fd));
    assert!(raw_of(&copy) >= 0 && raw_of(&copy) != original);
    // SAFETY: `copy` owns this descriptor and lives until the end of the test.
    let copy_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw_of(&copy)) };
    let flags = fcntl(copy_fd, FcntlArg::F_GETFD).unwrap();
    assert!(FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC));
}
