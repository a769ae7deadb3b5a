//! Tests of the message deep copy against a real LuaJIT state: every row of
//! spec/actors.md §4, the array/object rules, limits, fds and round trips.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use mlua::{AnyUserData, Lua, UserData, Value};
use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use proptest::prelude::*;

use super::*;
use crate::modules::error::{self, ErrorCode, JsonDomError};

/// A stand-in for the runtime's `file_descriptor` object: `None` is a
/// closed (or lent) descriptor, which Lua would show as -1.
struct TestFd(Option<OwnedFd>);
impl UserData for TestFd {}

/// A userdata the hooks do not know (like a byte_span or a socket).
struct Opaque;
impl UserData for Opaque {}

struct TestCaps;
impl Capabilities for TestCaps {
    fn capability_of(&self, ud: &AnyUserData) -> Option<Result<Message, MessageError>> {
        let fd = ud.borrow::<TestFd>().ok()?;
        Some(dup_fd_for_message(fd.0.as_ref().map(|f| f.as_fd())))
    }

    fn capability_to_lua(&self, lua: &Lua, cap: Message) -> mlua::Result<Value> {
        match cap {
            Message::Fd(fd) => Ok(Value::UserData(lua.create_userdata(TestFd(Some(fd)))?)),
            _ => Err(ErrorCode::generic(libc::ENOTSUP).into()),
        }
    }
}

fn lua() -> Lua {
    let lua = Lua::new();
    lua.globals()
        .set(
            "opaque",
            lua.create_function(|lua, ()| lua.create_userdata(Opaque))
                .unwrap(),
        )
        .unwrap();
    lua
}

fn eval(lua: &Lua, src: &str) -> Value {
    lua.load(src).eval().expect("test chunk runs")
}

fn copy(lua: &Lua, src: &str) -> Result<Message, MessageError> {
    from_lua(lua, &eval(lua, src), &TestCaps, &Limits::DEFAULT)
}

fn copy_with(lua: &Lua, src: &str, limits: Limits) -> Result<Message, MessageError> {
    from_lua(lua, &eval(lua, src), &TestCaps, &limits)
}

fn n(x: f64) -> Message {
    Message::Number(x)
}

fn s(x: &str) -> Message {
    Message::from(x)
}

fn empty_object() -> Message {
    Message::Object(Default::default())
}

fn code(e: &MessageError) -> ErrorCode {
    e.to_error_code().expect("an error Lua can see")
}

fn generic(errno: i32) -> ErrorCode {
    ErrorCode::generic(errno)
}

/// A pipe whose read end tells whether any write end is still open.
fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).expect("pipe2")
}

/// True while some copy of the pipe's write end is open anywhere in the
/// process: a non-blocking read says EAGAIN, not EOF. Race-free against
/// other tests (unlike checking fd numbers).
fn writers_alive(read_end: &OwnedFd) -> bool {
    let mut byte = [0u8; 1];
    match nix::unistd::read(read_end, &mut byte) {
        Ok(0) => false,
        Err(nix::errno::Errno::EAGAIN) => true,
        other => panic!("unexpected read result {other:?}"),
    }
}

fn same_file(a: &impl AsFd, b: &impl AsFd) -> bool {
    let a = nix::sys::stat::fstat(a).unwrap();
    let b = nix::sys::stat::fstat(b).unwrap();
    (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
}

fn is_cloexec(fd: &impl AsFd) -> bool {
    let flags = fcntl(fd, FcntlArg::F_GETFD).unwrap();
    FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
}

fn set_fd(lua: &Lua, name: &str, fd: Option<OwnedFd>) {
    lua.globals()
        .set(name, lua.create_userdata(TestFd(fd)).unwrap())
        .unwrap();
}

// ---- §4 top-level table ----------------------------------------------------

#[test]
fn top_level_nil_function_coroutine_light_userdata_are_einval() {
    let lua = lua();
    for src in [
        "return nil",
        "return function() end",
        "return print",
        "return coroutine.create(function() end)",
    ] {
        let e = copy(&lua, src).unwrap_err();
        assert!(
            matches!(e, MessageError::NotSendable { .. }),
            "{src}: {e:?}"
        );
        assert_eq!(code(&e), generic(libc::EINVAL), "{src}");
    }
    let light = Value::LightUserData(mlua::LightUserData(std::ptr::null_mut()));
    let e = from_lua(&lua, &light, &TestCaps, &Limits::DEFAULT).unwrap_err();
    assert_eq!(code(&e), generic(libc::EINVAL));
}

#[test]
fn top_level_scalars_are_copied() {
    let lua = lua();
    assert_eq!(copy(&lua, "return true").unwrap(), Message::Bool(true));
    assert_eq!(copy(&lua, "return false").unwrap(), Message::Bool(false));
    assert_eq!(copy(&lua, "return 42").unwrap(), n(42.0));
    assert_eq!(copy(&lua, "return -0.5").unwrap(), n(-0.5));
    assert_eq!(
        copy(&lua, "return 2^53 + 2").unwrap(),
        n(9007199254740994.0)
    );
    assert_eq!(copy(&lua, "return 1/0").unwrap(), n(f64::INFINITY));
    assert_eq!(copy(&lua, "return -1/0").unwrap(), n(f64::NEG_INFINITY));
    assert!(copy(&lua, "return 0/0")
        .unwrap()
        .as_number()
        .unwrap()
        .is_nan());
    let neg_zero = copy(&lua, "return -0.0").unwrap().as_number().unwrap();
    assert_eq!(neg_zero.to_bits(), (-0.0f64).to_bits());
    assert_eq!(copy(&lua, "return ''").unwrap(), s(""));
    assert_eq!(
        copy(&lua, r"return 'a\0b\255'").unwrap(),
        Message::from(&b"a\0b\xff"[..])
    );
}

#[test]
fn top_level_string_of_any_length_within_the_budget_is_copied() {
    let lua = lua();
    let msg = copy(&lua, "return string.rep('x', 8 * 1024 * 1024)").unwrap();
    assert_eq!(msg.as_bytes().unwrap().len(), 8 * 1024 * 1024);
    assert!(msg.as_bytes().unwrap().iter().all(|&b| b == b'x'));
}

#[test]
fn top_level_table_with_a_metatable_is_einval_even_when_protected() {
    let lua = lua();
    for src in [
        "return setmetatable({}, {})",
        "return setmetatable({1, 2}, {__metatable = 'locked'})",
        "return setmetatable({a = 1}, {__index = function() error('ran') end})",
    ] {
        let e = copy(&lua, src).unwrap_err();
        assert_eq!(code(&e), generic(libc::EINVAL), "{src}");
    }
}

#[test]
fn top_level_unknown_userdata_is_enotsup() {
    let lua = lua();
    let e = copy(&lua, "return opaque()").unwrap_err();
    assert!(matches!(e, MessageError::Unsupported { .. }));
    assert_eq!(code(&e), generic(libc::ENOTSUP));
    // An fd userdata with no hooks connected is unknown too.
    let (_r, w) = pipe();
    set_fd(&lua, "fd", Some(w));
    let e = from_lua(
        &lua,
        &eval(&lua, "return fd"),
        &NoCapabilities,
        &Limits::DEFAULT,
    )
    .unwrap_err();
    assert_eq!(code(&e), generic(libc::ENOTSUP));
}

#[test]
fn top_level_plain_table_is_deep_copied() {
    let lua = lua();
    let msg = copy(&lua, "return {a = {b = {c = 'deep'}}, list = {1, {2, 3}}}").unwrap();
    let expected = Message::object([
        (
            "a",
            Message::object([("b", Message::object([("c", s("deep"))]))]),
        ),
        (
            "list",
            Message::array([n(1.0), Message::array([n(2.0), n(3.0)])]),
        ),
    ]);
    assert_eq!(msg, expected);
}

// ---- arrays ----------------------------------------------------------------

#[test]
fn array_is_copied_until_the_first_nil() {
    let lua = lua();
    assert_eq!(
        copy(&lua, "return {1, 2, nil, 4}").unwrap(),
        Message::array([n(1.0), n(2.0)])
    );
    // #t > 0 but t[1] is nil: an empty array (an empty table for Lua).
    assert_eq!(
        copy(&lua, "return {nil, nil, 3}").unwrap(),
        Message::array([])
    );
}

#[test]
fn sparse_array_stops_at_its_first_hole_whatever_its_border() {
    let lua = lua();
    let msg = copy(
        &lua,
        "local t = {} t[1] = 'a' t[2] = 'b' t[4] = 'd' t[1000] = 'z' return t",
    )
    .unwrap();
    assert_eq!(msg, Message::array([s("a"), s("b")]));
}

#[test]
fn array_ignores_non_integer_keys() {
    let lua = lua();
    assert_eq!(
        copy(&lua, "return {1, 2, x = 3, [1.5] = 4, [true] = 5}").unwrap(),
        Message::array([n(1.0), n(2.0)])
    );
}

#[test]
fn first_unsupported_element_ends_the_array() {
    let lua = lua();
    let (_r, w) = pipe();
    set_fd(&lua, "closed_fd", None);
    set_fd(&lua, "fd", Some(w));
    for (what, elem) in [
        ("function", "function() end"),
        ("coroutine", "coroutine.create(print)"),
        ("unknown userdata", "opaque()"),
        ("table with metatable", "setmetatable({}, {})"),
        ("closed fd", "closed_fd"),
    ] {
        let src = format!("return {{1, 'two', {elem}, 4, 5}}");
        assert_eq!(
            copy(&lua, &src).unwrap(),
            Message::array([n(1.0), s("two")]),
            "{what}"
        );
    }
    // The spec's example: {ch2, 'foobar', function() end, 33, 44} arrives as
    // {ch2, 'foobar'} (an fd stands in for the channel).
    let msg = copy(&lua, "return {fd, 'foobar', function() end, 33, 44}").unwrap();
    let items = msg.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0].as_fd().is_some());
    assert_eq!(items[1], s("foobar"));
}

#[test]
fn light_userdata_ends_an_array_and_is_dropped_from_an_object() {
    let lua = lua();
    let t = lua.create_table().unwrap();
    let light = Value::LightUserData(mlua::LightUserData(std::ptr::null_mut()));
    t.raw_set(1, 1).unwrap();
    t.raw_set(2, &light).unwrap();
    t.raw_set(3, 3).unwrap();
    let msg = from_lua(&lua, &Value::Table(t), &TestCaps, &Limits::DEFAULT).unwrap();
    assert_eq!(msg, Message::array([n(1.0)]));
    let o = lua.create_table().unwrap();
    o.raw_set("a", &light).unwrap();
    o.raw_set("b", true).unwrap();
    let msg = from_lua(&lua, &Value::Table(o), &TestCaps, &Limits::DEFAULT).unwrap();
    assert_eq!(msg, Message::object([("b", Message::Bool(true))]));
}

#[test]
fn nested_metatable_ends_an_array_without_running_any_metamethod() {
    let lua = lua();
    let src = r#"
        ran = false
        local mt = {
            __index = function() ran = true end,
            __len = function() ran = true return 5 end,
            __pairs = function() ran = true return next, {} end,
            __newindex = function() ran = true end,
        }
        return {1, setmetatable({9, 9}, mt), 3}
    "#;
    assert_eq!(copy(&lua, src).unwrap(), Message::array([n(1.0)]));
    let src = "return {a = setmetatable({9}, {__len = function() ran = true return 1 end, __index = function() ran = true end}), b = 2}";
    assert_eq!(copy(&lua, src).unwrap(), Message::object([("b", n(2.0))]));
    let ran: bool = lua.globals().get("ran").unwrap();
    assert!(!ran, "a metamethod ran during the copy");
}

// ---- objects ---------------------------------------------------------------

#[test]
fn object_keeps_only_string_keys_and_drops_unsupported_values() {
    let lua = lua();
    set_fd(&lua, "closed_fd", None);
    let msg = copy(
        &lua,
        r#"return {
            a = 1, b = 'x', c = true, d = {},
            [0] = 'zero key', [1.5] = 'float key', [true] = 'bool key',
            [{}] = 'table key', [print] = 'function key',
            f = function() end, co = coroutine.create(print), u = opaque(),
            m = setmetatable({}, {}), fd = closed_fd,
        }"#,
    )
    .unwrap();
    let expected = Message::object([
        ("a", n(1.0)),
        ("b", s("x")),
        ("c", Message::Bool(true)),
        ("d", empty_object()),
    ]);
    assert_eq!(msg, expected);
}

#[test]
fn empty_table_and_tables_with_only_ignored_keys_are_empty_objects() {
    let lua = lua();
    assert_eq!(copy(&lua, "return {}").unwrap(), empty_object());
    assert_eq!(
        copy(&lua, "return {[0] = 1, [-1] = 2}").unwrap(),
        empty_object()
    );
    assert_eq!(copy(&lua, "return {f = print}").unwrap(), empty_object());
}

#[test]
fn object_keys_are_bytes() {
    let lua = lua();
    let msg = copy(&lua, r#"return {["k\0\255"] = 1, [""] = 2, ["1"] = 3}"#).unwrap();
    assert_eq!(msg.get(b"k\0\xff").unwrap(), &n(1.0));
    assert_eq!(msg.get("").unwrap(), &n(2.0));
    assert_eq!(msg.get("1").unwrap(), &n(3.0));
}

#[test]
fn wide_object_of_tables_pins_few_lua_handles() {
    // 20,000 table members (more than LuaJIT's ~8k live handles): each is
    // fetched again by key, so the copy never holds them all at once.
    let lua = lua();
    let msg = copy(
        &lua,
        "local t = {} for i = 1, 20000 do t['k' .. i] = {i} end return t",
    )
    .unwrap();
    assert_eq!(msg.as_object().unwrap().len(), 20000);
    assert_eq!(msg.get("k777").unwrap(), &Message::array([n(777.0)]));
}

// ---- DAG and cycles --------------------------------------------------------

#[test]
fn shared_sub_table_is_copied_twice() {
    let lua = lua();
    assert_eq!(
        copy(&lua, "local a = {} return {a, a}").unwrap(),
        Message::array([empty_object(), empty_object()])
    );
    let msg = copy(&lua, "local a = {1} return {x = a, y = {a, a}}").unwrap();
    let one = || Message::array([n(1.0)]);
    assert_eq!(
        msg,
        Message::object([("x", one()), ("y", Message::array([one(), one()]))])
    );
}

#[test]
fn reference_cycle_is_the_json_error_4() {
    let lua = lua();
    for src in [
        "local m = {} m.m = m return m",
        "local t = {} t[1] = t return t",
        "local a, b = {}, {} a.b = b b[1] = a return a",
        "local a = {x = {y = {}}} a.x.y.z = a.x return {ok = 1, a = a}",
    ] {
        let e = copy(&lua, src).unwrap_err();
        assert!(matches!(e, MessageError::ReferenceCycle), "{src}: {e:?}");
        assert_eq!(
            code(&e),
            ErrorCode::json(JsonDomError::CycleExists),
            "{src}"
        );
    }
}

#[test]
fn message_errors_reach_lua_in_their_categories() {
    let lua = lua();
    let cases = [
        (MessageError::ReferenceCycle, "emilua.json.dom", 4),
        (MessageError::TooDeep { limit: 1 }, "emilua.json.dom", 2),
        (
            MessageError::ArrayTooLong { limit: 1 },
            "emilua.json.dom",
            3,
        ),
        (MessageError::FdClosed, "generic", libc::EBUSY),
        (
            MessageError::TooLarge { limit: 1 },
            "generic",
            libc::EMSGSIZE,
        ),
        (
            MessageError::FdDup(std::io::Error::from_raw_os_error(libc::EMFILE)),
            "system",
            libc::EMFILE,
        ),
    ];
    for (e, category, number) in cases {
        let lua_err: mlua::Error = e.into();
        let decoded = error::decode(&lua, Value::Error(Box::new(lua_err))).unwrap();
        let decoded: Vec<Value> = decoded.into_iter().collect();
        assert_eq!(decoded[0].as_string().unwrap().to_str().unwrap(), category);
        assert_eq!(decoded[1].as_integer(), Some(number.into()));
    }
}

// ---- limits ----------------------------------------------------------------

#[test]
fn depth_up_to_the_limit_is_copied_and_one_more_is_too_many_levels() {
    let lua = lua();
    let limit = Limits::DEFAULT.max_depth;
    let nest =
        |levels: usize| format!("local t = {{}} for i = 2, {levels} do t = {{t}} end return t");
    let msg = copy(&lua, &nest(limit)).unwrap();
    assert_eq!(msg.summary().depth, limit);
    let e = copy(&lua, &nest(limit + 1)).unwrap_err();
    assert!(matches!(e, MessageError::TooDeep { limit: l } if l == limit));
    assert_eq!(code(&e), ErrorCode::json(JsonDomError::TooManyLevels));
    // Objects count the same way.
    let nest_obj =
        |levels: usize| format!("local t = {{}} for i = 2, {levels} do t = {{x = t}} end return t");
    assert_eq!(copy(&lua, &nest_obj(limit)).unwrap().summary().depth, limit);
    assert!(matches!(
        copy(&lua, &nest_obj(limit + 1)).unwrap_err(),
        MessageError::TooDeep { .. }
    ));
}

#[test]
fn a_million_levels_of_nesting_is_too_many_levels_without_overflowing() {
    let lua = lua();
    let e = copy(
        &lua,
        "local t = {} for i = 1, 1000000 do t = {t} end return t",
    )
    .unwrap_err();
    assert!(matches!(e, MessageError::TooDeep { .. }));
    let e = copy(
        &lua,
        "local t = {} for i = 1, 100000 do t = {next = t} end return t",
    )
    .unwrap_err();
    assert!(matches!(e, MessageError::TooDeep { .. }));
}

#[test]
fn array_longer_than_the_limit_is_array_too_long() {
    let lua = lua();
    let limits = Limits::new(8, 3, 1000, 1000);
    assert_eq!(
        copy_with(&lua, "return {1, 2, 3}", limits).unwrap(),
        Message::array([n(1.0), n(2.0), n(3.0)])
    );
    let e = copy_with(&lua, "return {1, 2, 3, 4}", limits).unwrap_err();
    assert!(matches!(e, MessageError::ArrayTooLong { limit: 3 }));
    assert_eq!(code(&e), ErrorCode::json(JsonDomError::ArrayTooLong));
    // A 4th element that would end the array anyway is not "too long".
    assert!(copy_with(&lua, "return {1, 2, 3, print}", limits).is_ok());
    // Nested arrays too, and table elements count.
    let e = copy_with(&lua, "return {x = {{}, {}, {}, {}}}", limits).unwrap_err();
    assert!(matches!(e, MessageError::ArrayTooLong { .. }));
}

#[test]
fn array_one_past_the_default_limit_is_array_too_long() {
    let lua = lua();
    let len = Limits::DEFAULT.max_array_len;
    let src = format!("local t = {{}} for i = 1, {len} do t[i] = i end return t");
    let msg = copy(&lua, &src).unwrap();
    assert_eq!(msg.as_array().unwrap().len(), len);
    assert_eq!(msg.as_array().unwrap()[len - 1], n(len as f64));
    let src = format!(
        "local t = {{}} for i = 1, {} do t[i] = true end return t",
        len + 1
    );
    assert!(matches!(
        copy(&lua, &src).unwrap_err(),
        MessageError::ArrayTooLong { .. }
    ));
}

#[test]
fn dag_blow_up_hits_the_member_budget() {
    // 60 doublings: 2^60 members if copied in full, from a 60-table heap.
    let lua = lua();
    let src = "local a = {1} for i = 1, 60 do a = {a, a} end return a";
    let limits = Limits::new(256, 1 << 20, 10_000, 1 << 20);
    let e = copy_with(&lua, src, limits).unwrap_err();
    assert!(matches!(e, MessageError::TooManyMembers { limit: 10_000 }));
    assert_eq!(code(&e), generic(libc::EMSGSIZE));
    // Same with the default budget (2^21 members) and objects.
    let src = "local a = {v = 1} for i = 1, 60 do a = {l = a, r = a} end return a";
    assert!(matches!(
        copy(&lua, src).unwrap_err(),
        MessageError::TooManyMembers { .. }
    ));
}

#[test]
fn member_budget_counts_containers_and_leaves_exactly() {
    let lua = lua();
    let src = "return {1, 2, {3}}"; // root, 1, 2, inner, 3 = 5 members
    assert_eq!(
        copy_with(&lua, src, Limits::new(8, 8, 5, 100))
            .unwrap()
            .summary()
            .members,
        5
    );
    assert!(matches!(
        copy_with(&lua, src, Limits::new(8, 8, 4, 100)).unwrap_err(),
        MessageError::TooManyMembers { limit: 4 }
    ));
}

#[test]
fn shared_string_referenced_many_times_hits_the_byte_budget() {
    // One 1 MiB string in the sender's heap, referenced 100 times.
    let lua = lua();
    let src = "local s = string.rep('y', 1024 * 1024) local t = {} for i = 1, 100 do t[i] = s end return t";
    let limits = Limits::new(8, 1000, 1000, 10 << 20);
    let e = copy_with(&lua, src, limits).unwrap_err();
    assert!(matches!(e, MessageError::TooLarge { limit } if limit == 10 << 20));
    assert_eq!(code(&e), generic(libc::EMSGSIZE));
}

#[test]
fn string_over_the_default_byte_budget_is_too_large() {
    let lua = lua();
    let max = Limits::DEFAULT.max_payload_bytes;
    let msg = copy(&lua, &format!("return string.rep('z', {max})")).unwrap();
    assert_eq!(msg.summary().payload_bytes, max);
    drop(msg);
    let e = copy(&lua, &format!("return {{string.rep('z', {})}}", max + 1)).unwrap_err();
    assert!(matches!(e, MessageError::TooLarge { .. }));
}

#[test]
fn object_keys_count_towards_the_byte_budget() {
    let lua = lua();
    let src = "return {abcd = 'efgh', ijkl = {}}"; // 4 + 4 + 4 bytes
    let ok = copy_with(&lua, src, Limits::new(8, 8, 100, 12)).unwrap();
    assert_eq!(ok.summary().payload_bytes, 12);
    assert!(matches!(
        copy_with(&lua, src, Limits::new(8, 8, 100, 11)).unwrap_err(),
        MessageError::TooLarge { limit: 11 }
    ));
}

// ---- into a VM -------------------------------------------------------------

#[test]
fn to_lua_builds_fresh_plain_tables() {
    let lua = lua();
    let msg = Message::object([
        ("n", n(1.5)),
        ("i", n(7.0)),
        ("s", Message::from(&b"\0\xff"[..])),
        ("b", Message::Bool(false)),
        ("a", Message::array([s("x"), Message::array([])])),
        ("o", empty_object()),
    ]);
    let v = to_lua(&lua, msg, &TestCaps, &Limits::DEFAULT).unwrap();
    lua.globals().set("v", v).unwrap();
    let checks: String = lua
        .load(
            r#"
            local out = {}
            local function add(x) out[#out + 1] = tostring(x) end
            add(getmetatable(v) == nil and getmetatable(v.a) == nil and getmetatable(v.o) == nil)
            add(type(v.n) .. ' ' .. v.n .. ' ' .. type(v.i) .. ' ' .. v.i)
            add(v.s == '\0\255')
            add(v.b == false)
            add(#v.a .. ' ' .. v.a[1] .. ' ' .. type(v.a[2]) .. ' ' .. #v.a[2] .. ' ' .. tostring(next(v.o)))
            return table.concat(out, '|')
        "#,
        )
        .eval()
        .unwrap();
    assert_eq!(checks, "true|number 1.5 number 7|true|true|2 x table 0 nil");
}

#[test]
fn to_lua_scalars() {
    let lua = lua();
    let v = to_lua(&lua, s("hi"), &TestCaps, &Limits::DEFAULT).unwrap();
    assert_eq!(v.as_string().unwrap().to_str().unwrap(), "hi");
    let v = to_lua(&lua, n(f64::NAN), &TestCaps, &Limits::DEFAULT).unwrap();
    assert!(v.as_f64().unwrap().is_nan());
    let v = to_lua(&lua, Message::Bool(true), &TestCaps, &Limits::DEFAULT).unwrap();
    assert_eq!(v, Value::Boolean(true));
}

#[test]
fn to_lua_refuses_hand_built_messages_deeper_than_the_limit() {
    let lua = lua();
    let limits = Limits::new(10, 10, 100, 100);
    let nest = |levels: usize| {
        let mut m = Message::array([]);
        for _ in 1..levels {
            m = Message::array([m]);
        }
        m
    };
    assert!(to_lua(&lua, nest(10), &TestCaps, &limits).is_ok());
    let e = to_lua(&lua, nest(11), &TestCaps, &limits).unwrap_err();
    let decoded = error::decode(&lua, Value::Error(Box::new(e))).unwrap();
    let decoded: Vec<Value> = decoded.into_iter().collect();
    assert_eq!(
        decoded[0].as_string().unwrap().to_str().unwrap(),
        "emilua.json.dom"
    );
    assert_eq!(decoded[1].as_integer(), Some(2));
}

// ---- round trips -----------------------------------------------------------

#[test]
fn lua_to_message_to_lua_preserves_values() {
    let src = r#"return {
        1, 'two', true, false, 0.5, -0.0, 1/0, 2^53,
        {a = 'x', b = {c = {1, 2, {d = 'deep'}}}},
        {}, 'bytes\0\255', {[''] = 'empty key'},
    }"#;
    let sender = lua();
    let first = copy(&sender, src).unwrap();
    let receiver = lua();
    let v = to_lua(&receiver, first, &TestCaps, &Limits::DEFAULT).unwrap();
    let again = from_lua(&receiver, &v, &TestCaps, &Limits::DEFAULT).unwrap();
    assert_eq!(again, copy(&sender, src).unwrap());
    // And Lua sees the same structure the sender built.
    receiver.globals().set("v", v).unwrap();
    let same: bool = receiver
        .load(
            r#"return v[1] == 1 and v[2] == 'two' and v[3] == true and v[4] == false
               and v[5] == 0.5 and 1 / v[6] == -1/0 and v[7] == 1/0 and v[8] == 2^53
               and v[9].b.c[3].d == 'deep' and next(v[10]) == nil
               and v[11] == 'bytes\0\255' and v[12][''] == 'empty key' and #v == 12"#,
        )
        .eval()
        .unwrap();
    assert!(same);
}

/// Equality that treats NaN as equal to NaN and compares numbers bitwise
/// otherwise, and an empty array as an empty object (both are `{}`).
fn equivalent(a: &Message, b: &Message) -> bool {
    match (a, b) {
        (Message::Number(x), Message::Number(y)) => {
            (x.is_nan() && y.is_nan()) || x.to_bits() == y.to_bits()
        }
        (Message::Array(x), Message::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equivalent(p, q))
        }
        (Message::Object(x), Message::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kp, p), (kq, q))| kp == kq && equivalent(p, q))
        }
        (Message::Array(x), Message::Object(y)) | (Message::Object(y), Message::Array(x)) => {
            x.is_empty() && y.is_empty()
        }
        _ => a == b,
    }
}

fn message_tree() -> impl Strategy<Value = Message> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Message::Bool),
        any::<f64>().prop_map(Message::Number),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Message::String),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Message::Array),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..10),
                inner,
                0..8
            )
            .prop_map(Message::Object),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_messages_round_trip_through_lua(msg in message_tree()) {
        let lua = Lua::new();
        let expected_summary = msg.summary();
        let expected = clone_plain(&msg);
        let v = to_lua(&lua, msg, &NoCapabilities, &Limits::DEFAULT).unwrap();
        let back = from_lua(&lua, &v, &NoCapabilities, &Limits::DEFAULT).unwrap();
        prop_assert!(equivalent(&expected, &back), "{expected:?} != {back:?}");
        prop_assert_eq!(back.summary().members, expected_summary.members);
        prop_assert_eq!(back.summary().payload_bytes, expected_summary.payload_bytes);
    }
}

/// Copies a message without fds (the generated ones have none).
fn clone_plain(m: &Message) -> Message {
    match m {
        Message::Bool(b) => Message::Bool(*b),
        Message::Number(x) => Message::Number(*x),
        Message::String(b) => Message::String(b.clone()),
        Message::Array(items) => Message::Array(items.iter().map(clone_plain).collect()),
        Message::Object(members) => Message::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), clone_plain(v)))
                .collect(),
        ),
        other => panic!("not a plain member: {other:?}"),
    }
}

// ---- file descriptors ------------------------------------------------------

#[test]
fn fd_member_is_a_cloexec_dup_and_the_sender_keeps_its_own() {
    let lua = lua();
    let (r, w) = pipe();
    let original = w.as_raw_fd();
    set_fd(&lua, "fd", Some(w));
    let msg = copy(&lua, "return fd").unwrap();
    let copied = msg.as_fd().expect("an fd member");
    assert_ne!(copied.as_raw_fd(), original);
    assert!(is_cloexec(&copied));
    assert!(same_file(&copied, &r));
    // The sender's object still holds its open descriptor.
    let ud: AnyUserData = lua.globals().get("fd").unwrap();
    let held = ud.borrow::<TestFd>().unwrap();
    let held = held.0.as_ref().expect("sender keeps its fd");
    assert_eq!(held.as_raw_fd(), original);
    assert!(same_file(held, &r));
}

#[test]
fn dropping_a_message_closes_its_fds() {
    let lua = lua();
    let (r, w) = pipe();
    set_fd(&lua, "fd", Some(w));
    let msg = copy(&lua, "return {fd, {x = fd}, fd}").unwrap();
    assert_eq!(msg.summary().fds, 3);
    // Close the sender's copy: only the message's three dups remain.
    lua.globals().set("fd", Value::Nil).unwrap();
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    assert!(writers_alive(&r));
    drop(msg);
    assert!(!writers_alive(&r), "a dup'ed fd outlived its message");
}

#[test]
fn closed_fd_is_ebusy_at_top_level() {
    let lua = lua();
    set_fd(&lua, "fd", None);
    let e = copy(&lua, "return fd").unwrap_err();
    assert!(matches!(e, MessageError::FdClosed));
    assert_eq!(code(&e), generic(libc::EBUSY));
    assert!(matches!(
        dup_fd_for_message(None).unwrap_err(),
        MessageError::FdClosed
    ));
}

#[test]
fn failed_copy_closes_the_fds_it_already_dup_ed() {
    let lua = lua();
    let (r, w) = pipe();
    set_fd(&lua, "fd", Some(w));
    for src in [
        "local c = {} c.c = c return {fd, {fd}, c}",           // cycle after fds
        "return {a = fd, b = {fd}, z = print, [1.5] = 1, c = (function() local t = {} for i = 1, 300 do t = {t} end return t end)()}",
    ] {
        assert!(copy(&lua, src).is_err(), "{src}");
    }
    lua.globals().set("fd", Value::Nil).unwrap();
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    assert!(!writers_alive(&r), "an fd dup'ed by a failed copy leaked");
}

#[test]
fn fd_arrives_as_a_new_object_through_the_hooks() {
    let lua = lua();
    let (r, w) = pipe();
    let msg = Message::array([Message::from(w), s("tag")]);
    let v = to_lua(&lua, msg, &TestCaps, &Limits::DEFAULT).unwrap();
    let t = v.as_table().unwrap();
    let ud: AnyUserData = t.raw_get(1).unwrap();
    assert!(same_file(
        ud.borrow::<TestFd>().unwrap().0.as_ref().unwrap(),
        &r
    ));
    drop((t.clone(), ud));
    drop(v);
    lua.gc_collect().unwrap();
    lua.gc_collect().unwrap();
    assert!(
        !writers_alive(&r),
        "the Lua object's fd was not closed by GC"
    );
}

#[test]
fn fd_without_hooks_is_refused_on_delivery_and_closed() {
    let lua = lua();
    let (r, w) = pipe();
    let msg = Message::object([("a", n(1.0)), ("fd", Message::from(w)), ("z", n(2.0))]);
    let e = to_lua(&lua, msg, &NoCapabilities, &Limits::DEFAULT).unwrap_err();
    let decoded: Vec<Value> = error::decode(&lua, Value::Error(Box::new(e)))
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(decoded[1].as_integer(), Some(libc::ENOTSUP.into()));
    assert!(!writers_alive(&r));
}

/// Runs `test` in a child process (this test binary, filtered to `name`):
/// for tests that change process-wide state such as RLIMIT_NOFILE.
fn in_child_process(name: &str, test: impl FnOnce()) {
    const CHILD: &str = "LURING_MESSAGE_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        test();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child test {name} failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A filter that matched nothing would pass silently.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child test {name} did not run"
    );
}

#[test]
fn dup_failure_reports_its_errno() {
    in_child_process(
        "actor::message::tests::dup_failure_reports_its_errno",
        || {
            let lua = lua();
            let (_r, w) = pipe();
            set_fd(&lua, "fd", Some(w));
            let limit = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            // SAFETY: plain syscall on a valid struct; this process runs only
            // this test.
            assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
            let mut hoard = Vec::new();
            while let Ok(f) = std::fs::File::open("/dev/null") {
                hoard.push(f);
            }
            let e = copy(&lua, "return fd").unwrap_err();
            assert!(
                matches!(&e, MessageError::FdDup(io) if io.raw_os_error() == Some(libc::EMFILE))
            );
            assert_eq!(code(&e), ErrorCode::system(libc::EMFILE));
            // Inside a table the failure is not silently dropped either.
            let e = copy(&lua, "return {1, fd}").unwrap_err();
            assert!(matches!(e, MessageError::FdDup(_)));
            let e = copy(&lua, "return {x = fd}").unwrap_err();
            assert!(matches!(e, MessageError::FdDup(_)));
        },
    );
}

// ---- the rest --------------------------------------------------------------

#[test]
fn messages_are_send_and_sync_so_they_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Message>();
}

#[test]
fn summary_counts_members_bytes_depth_and_fds() {
    let (_r, w) = pipe();
    let msg = Message::object([
        ("ab", Message::array([s("xyz"), Message::array([n(1.0)])])),
        ("fd", Message::from(w)),
    ]);
    let sum = msg.summary();
    assert_eq!(sum.members, 6);
    assert_eq!(sum.payload_bytes, 2 + 3 + 2);
    assert_eq!(sum.depth, 3);
    assert_eq!(sum.fds, 1);
    assert_eq!(s("x").summary().depth, 0);
}

#[test]
fn equality_of_deep_messages_does_not_recurse() {
    // 100,000 levels: `==` walks them with its own stack (a recursive
    // comparison would overflow the test thread's stack). Dropping such a
    // tree recurses, so it is leaked on purpose here.
    let deep = || {
        let mut m = Message::array([]);
        for _ in 0..100_000 {
            m = Message::array([m]);
        }
        m
    };
    let (a, b) = (deep(), deep());
    assert!(a == b);
    assert_eq!(a.summary().depth, 100_001);
    std::mem::forget(a);
    std::mem::forget(b);
}

#[test]
fn benchmark_body_runs() {
    assert!(bench_copy_ten_fields(100).is_ok());
}

#[test]
fn cdata_and_error_values_are_enotsup_at_top_level_and_unsupported_inside() {
    let lua = lua();
    // LuaJIT parses 1LL as a 64-bit integer cdata (mlua's Value::Other).
    let e = copy(&lua, "return 1LL").unwrap_err();
    assert_eq!(code(&e), generic(libc::ENOTSUP));
    assert_eq!(
        copy(&lua, "return {1, 2LL, 3}").unwrap(),
        Message::array([n(1.0)])
    );
    let err = Value::Error(Box::new(mlua::Error::runtime("boom")));
    let e = from_lua(&lua, &err, &TestCaps, &Limits::DEFAULT).unwrap_err();
    assert_eq!(code(&e), generic(libc::ENOTSUP));
}

#[test]
fn a_hook_returning_a_non_capability_counts_as_unsupported() {
    struct Confused;
    impl Capabilities for Confused {
        fn capability_of(&self, _: &AnyUserData) -> Option<Result<Message, MessageError>> {
            Some(Ok(Message::from("not a capability")))
        }
        fn capability_to_lua(&self, _: &Lua, _: Message) -> mlua::Result<Value> {
            unreachable!()
        }
    }
    let lua = lua();
    let e = from_lua(
        &lua,
        &eval(&lua, "return opaque()"),
        &Confused,
        &Limits::DEFAULT,
    )
    .unwrap_err();
    assert_eq!(code(&e), generic(libc::ENOTSUP));
    let msg = from_lua(
        &lua,
        &eval(&lua, "return {1, opaque(), 3}"),
        &Confused,
        &Limits::DEFAULT,
    )
    .unwrap();
    assert_eq!(msg, Message::array([n(1.0)]));
}

/// Hooks of a channel to a sandbox, in miniature: a marked table is an
/// address (`object_of`), an `Opaque` userdata a byte span.
struct ValueCaps;
impl Capabilities for ValueCaps {
    fn capability_of(&self, ud: &AnyUserData) -> Option<Result<Message, MessageError>> {
        ud.is::<Opaque>()
            .then(|| Ok(Message::Bytes(vec![b'x'; 10])))
    }

    fn capability_to_lua(&self, _: &Lua, _: Message) -> mlua::Result<Value> {
        Err(ErrorCode::generic(libc::ENOTSUP).into())
    }

    fn object_of(&self, _: &Lua, t: &Table) -> Option<Result<Message, MessageError>> {
        let marked: bool = t.raw_get("is_address").ok()?;
        marked.then(|| {
            Ok(Message::Ip(crate::ipc::IpAddress::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )))
        })
    }
}

#[test]
fn hooks_make_byte_spans_and_addresses_and_charge_their_bytes() {
    let lua = lua();
    let value = eval(
        &lua,
        "local a = setmetatable({ is_address = true }, {}) \
         return { span = opaque(), at = a, other = setmetatable({}, {}), list = { a, opaque() } }",
    );
    let msg = from_lua(&lua, &value, &ValueCaps, &Limits::DEFAULT).unwrap();
    let ip = Message::Ip(crate::ipc::IpAddress::V4(std::net::Ipv4Addr::LOCALHOST));
    let bytes = || Message::Bytes(vec![b'x'; 10]);
    assert_eq!(
        msg,
        Message::object([
            (
                "at",
                Message::Ip(crate::ipc::IpAddress::V4(std::net::Ipv4Addr::LOCALHOST))
            ),
            ("list", Message::array([ip, bytes()])),
            ("span", bytes()),
        ])
    );
    assert_eq!(msg.summary().payload_bytes, 2 + 4 + 4 + 10 + 10);
    // A byte span counts against the byte budget.
    let small = Limits::new(256, 1 << 20, 1 << 21, 15);
    assert!(matches!(
        from_lua(
            &lua,
            &eval(&lua, "return { opaque(), opaque() }"),
            &ValueCaps,
            &small
        ),
        Err(MessageError::TooLarge { limit: 15 })
    ));
    // Other tables with a metatable keep their rule.
    assert!(matches!(
        from_lua(
            &lua,
            &eval(&lua, "return setmetatable({}, {})"),
            &ValueCaps,
            &Limits::DEFAULT
        ),
        Err(MessageError::NotSendable { .. })
    ));
}

#[test]
fn byte_spans_arrive_as_byte_spans() {
    let lua = lua();
    let span_table = crate::modules::byte_span::register(&lua).unwrap();
    drop(span_table);
    let v = to_lua(
        &lua,
        Message::array([Message::Bytes(b"a\0b".to_vec()), s("a\0b")]),
        &TestCaps,
        &Limits::DEFAULT,
    )
    .unwrap();
    lua.globals().set("v", v).unwrap();
    let (kind, text, len, plain): (String, String, i64, String) = lua
        .load("return getmetatable(v[1]), tostring(v[1]), #v[1], type(v[2])")
        .eval()
        .unwrap();
    assert_eq!(
        (kind.as_str(), text.as_str(), len, plain.as_str()),
        ("byte_span", "a\0b", 3, "string")
    );
}
