//! The VM at the edges of its resources: address space (RLIMIT_AS), thread
//! stack (RLIMIT_STACK) and finalizers raising by the thousand. Whatever a
//! script does there, luring ends with a Lua error or a report and an exit
//! status, never with a signal or a Rust abort.

#[path = "support/scratch.rs"]
mod scratch;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Output};

/// Address space for the OOM runs: the binary, LuaJIT, the VM thread's
/// 16 MiB stack and the ring fit well inside; a script that allocates
/// without bound does not.
const ADDRESS_SPACE: u64 = 512 << 20;

fn script(name: &str, source: &str) -> PathBuf {
    scratch::scratch_file("vm-limits", name, source)
}

/// Runs luring on `source` with `resource` limited to `limit` bytes.
fn run_limited(
    name: &str,
    source: &str,
    resource: libc::__rlimit_resource_t,
    limit: u64,
    options: &[&str],
) -> Output {
    let path = script(name, source);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_luring"));
    cmd.env_remove("LURING_LOG").args(options).arg(&path);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls setrlimit(2), which is async-signal-safe; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(resource, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("luring starts")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// No signal, no Rust panic or abort message, the expected exit code.
fn assert_clean_exit(out: &Output, code: i32) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.signal(),
        None,
        "killed by a signal\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for marker in [
        "panicked at",
        "memory allocation of",
        "fatal runtime error",
        "internal",
    ] {
        assert!(!stderr.contains(marker), "{marker:?} in stderr:\n{stderr}");
    }
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

const ALLOCATE_UNTIL_FAILURE: &str = r#"
local function exhaust(grow)
  local hog = {}
  local ok, err = pcall(function() local i = 0 while true do i = i + 1 hog[i] = grow(i) end end)
  hog = nil
  collectgarbage()
  return ok, err
end
print('strings', exhaust(function(i) return string.rep('x', 1e6) .. i end))
print('tables', exhaust(function(i) return { i, i, i, i, i, i, i, i } end))
print('spans', exhaust(function() return byte_span.new(2^24) end))
print('huge span', pcall(byte_span.new, 2^40))
print('string.rep', pcall(string.rep, 'x', 2^30))
local parts = {}
for i = 1, 300 do parts[i] = string.rep('p', 2^20) end
print('table.concat', pcall(function() return #table.concat({ table.concat(parts), table.concat(parts) }) end))
parts = nil
collectgarbage()
print('alive', #string.rep('z', 2^20))
"#;

#[test]
fn allocation_failure_under_rlimit_as_is_a_lua_error() {
    let out = run_limited(
        "oom.lua",
        ALLOCATE_UNTIL_FAILURE,
        libc::RLIMIT_AS,
        ADDRESS_SPACE,
        &[],
    );
    assert_clean_exit(&out, 0);
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout,
        "strings\tfalse\tnot enough memory\n\
         tables\tfalse\tnot enough memory\n\
         spans\tfalse\tCannot allocate memory\n\
         huge span\tfalse\tCannot allocate memory\n\
         string.rep\tfalse\tnot enough memory\n\
         table.concat\tfalse\tnot enough memory\n\
         alive\t1048576\n"
    );
}

#[test]
fn memory_limit_is_reached_before_rlimit_as() {
    // With a VM limit the Lua heap stops at 32 MiB, far below the address
    // space: the same script gets the same errors.
    let out = run_limited(
        "oom_limited.lua",
        ALLOCATE_UNTIL_FAILURE,
        libc::RLIMIT_AS,
        ADDRESS_SPACE,
        &["--memory-limit", "32M"],
    );
    assert_clean_exit(&out, 0);
    let (stdout, _) = text(&out);
    assert!(
        stdout.starts_with("strings\tfalse\tnot enough memory\ntables\tfalse\tnot enough memory\n"),
        "{stdout}"
    );
    assert!(stdout.ends_with("alive\t1048576\n"), "{stdout}");
}

#[test]
fn fibers_dying_of_oom_under_rlimit_as_are_reported() {
    let source = r#"
local f = spawn(function() local t = {} local i = 0 while true do i = i + 1 t[i] = string.rep('f', 1e6) .. i end end)
print(pcall(f.join, f))
spawn(function() local t = {} local i = 0 while true do i = i + 1 t[i] = { i } end end)
this_fiber.yield()
collectgarbage()
print('main goes on')
"#;
    let out = run_limited(
        "oom_fibers.lua",
        source,
        libc::RLIMIT_AS,
        ADDRESS_SPACE,
        &[],
    );
    assert_clean_exit(&out, 0);
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout, "false\tnot enough memory\nmain goes on\n");
    assert!(stderr.starts_with("Fiber 0x"), "{stderr}");
    assert!(
        stderr.contains(" panicked: 'not enough memory'\n"),
        "{stderr}"
    );
}

#[test]
fn memory_exhausted_under_rlimit_as_never_kills_the_process() {
    // Everything the system gives is kept. Whether the runtime's own code
    // still finds a few free bytes in the C allocator depends on its
    // arenas; either the script goes on, or its own unprotected `spawn`
    // fails and the main fiber dies of 'not enough memory' (a panic
    // report, exit 1; seen since slab blocks go up to 256 bytes, rss150b),
    // or the VM is closed with the LUA_ERRMEM report
    // (tests/lua/limits/memory_exhausted_in_runtime.lua pins that case
    // down with a VM limit). Never a signal.
    let source = r#"
pcall(function() while true do hog = { hog, string.rep('h', 512) } end end)
pcall(function() while true do hog = { hog } end end)
spawn(function() end)
this_fiber.yield()
print('went on')
"#;
    let out = run_limited(
        "oom_runtime.lua",
        source,
        libc::RLIMIT_AS,
        ADDRESS_SPACE,
        &[],
    );
    let (stdout, stderr) = text(&out);
    if out.status.code() == Some(0) {
        assert_clean_exit(&out, 0);
        assert_eq!(stdout, "went on\n");
    } else if stderr.starts_with("Main fiber from VM 0x") {
        assert_clean_exit(&out, 1);
        assert_eq!(stdout, "");
        assert!(
            stderr.contains(" panicked: 'not enough memory'\n"),
            "{stderr}"
        );
    } else {
        assert_clean_exit(&out, 1);
        assert!(stderr.starts_with("VM 0x"), "{stderr}");
        assert!(
            stderr.ends_with(" forcibly closed due to 'LUA_ERRMEM'\n"),
            "{stderr}"
        );
    }
}

#[test]
fn deep_recursion_under_a_small_stack_rlimit_is_a_lua_error() {
    // The VM runs on its own 16 MiB thread, so `ulimit -s` does not matter;
    // recursion through C is cut at 200 levels, recursion in Lua by LuaJIT.
    let source = r#"
local function fmt_rec()
  local t
  t = setmetatable({}, { __tostring = function() return string.format('%s', t) end })
  return string.format('%s', t)
end
local function gsub_rec(n, bottom)
  if n == 0 then return bottom() end
  return (('a'):gsub('.', function() return gsub_rec(n - 1, bottom) end))
end
local function wrap_rec(n, bottom)
  if n == 0 then return bottom() end
  return coroutine.wrap(function() return wrap_rec(n - 1, bottom) end)()
end
print(pcall(gsub_rec, 1000, fmt_rec))
print(pcall(gsub_rec, 199, fmt_rec))
print(pcall(wrap_rec, 199, fmt_rec))
print(pcall(wrap_rec, 1e6, fmt_rec))
print(pcall(gsub_rec, 100, function() return wrap_rec(99, fmt_rec) end))
"#;
    let out = run_limited("deep.lua", source, libc::RLIMIT_STACK, 256 << 10, &[]);
    assert_clean_exit(&out, 0);
    let (stdout, _) = text(&out);
    assert_eq!(
        stdout,
        "false\tC stack overflow\n\
         false\tstack overflow\n\
         false\tstack overflow\n\
         false\tC stack overflow\n\
         false\tstack overflow\n"
    );
}

#[test]
fn thousands_of_raising_finalizers_are_each_reported() {
    // Before LuaJIT's 2025 fix, a raising __gc corrupted the stack of the
    // code the collection interrupted; here 20000 of them interrupt
    // allocation-heavy fibers, and some are still alive when the VM closes.
    let source = r#"
local N = 5000
local function churn(tag)
  local sum = 0
  for i = 1, N do
    local u = newproxy(true)
    getmetatable(u).__gc = function() error('boom', 0) end
    local t = { tostring(i), { i }, string.rep('x', i % 64) }
    sum = sum + #t[1] + t[2][1] + #t[3]
    if i % 500 == 0 then this_fiber.yield() end
  end
  return tag, sum
end
local fibers = {}
for k = 1, 4 do fibers[k] = spawn(churn, k) end
for k = 1, 4 do print(fibers[k]:join()) end
"#;
    let path = script("finalizers.lua", source);
    let out = Command::new(env!("CARGO_BIN_EXE_luring"))
        .env_remove("LURING_LOG")
        .arg(&path)
        .output()
        .expect("luring starts");
    assert_clean_exit(&out, 0);
    let (stdout, stderr) = text(&out);
    let sum: usize = (1..=5000)
        .map(|i: usize| i.to_string().len() + i + i % 64)
        .sum();
    let expected: String = (1..=4).map(|k| format!("{k}\t{sum}\n")).collect();
    assert_eq!(stdout, expected);
    let reports = stderr
        .lines()
        .filter(|l| l.starts_with("Error in __gc finalizer from VM 0x") && l.ends_with(": 'boom'"))
        .count();
    assert_eq!(reports, 20000, "every finalizer error is reported once");
    assert_eq!(
        stderr.lines().count(),
        20000,
        "nothing else on stderr:\n{stderr}"
    );
}

#[test]
fn memory_limit_option_is_validated() {
    for bad in ["0", "12Q", "-5", "", "99999999999G"] {
        let out = Command::new(env!("CARGO_BIN_EXE_luring"))
            .arg(format!("--memory-limit={bad}"))
            .arg("none.lua")
            .output()
            .expect("luring starts");
        assert_eq!(out.status.code(), Some(2), "--memory-limit {bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--memory-limit"), "{stderr}");
    }
}

/// A main fiber that dies of memory exhaustion at the `--memory-limit`,
/// at many limits (so the last allocation fails at a different place each
/// time): whichever of the user's code or the runtime's own runs out, the
/// report names it: `not enough memory` in the panic report, or the
/// LUA_ERRMEM close. Never an empty message (once, building the report
/// itself failed and it printed `panicked: ''`), never a crash.
#[test]
fn out_of_memory_reports_name_the_error_at_any_limit() {
    const SOURCE: &str = "print('printed before')
pcall(function() while true do hog = { hog } end end)
pcall(function() while true do hog = { hog } end end)
spawn(function() end)
this_fiber.yield()
print('unreachable')
";
    let path = script("oom-report.lua", SOURCE);
    let (mut closed, mut panicked) = (0, 0);
    for step in 0..40u64 {
        let limit = (16 << 20) + step * 997;
        let out = Command::new(env!("CARGO_BIN_EXE_luring"))
            .env_remove("LURING_LOG")
            .arg(format!("--memory-limit={limit}"))
            .arg(&path)
            .output()
            .expect("luring starts");
        assert_clean_exit(&out, 1);
        let (stdout, stderr) = text(&out);
        assert_eq!(stdout, "printed before\n", "limit {limit}");
        if stderr.contains("forcibly closed due to 'LUA_ERRMEM'") {
            closed += 1;
        } else if stderr.contains("panicked: 'not enough memory'\n") {
            panicked += 1;
        } else {
            panic!("limit {limit}: the report does not name the error:\n{stderr}");
        }
    }
    assert_eq!(closed + panicked, 40);
}
