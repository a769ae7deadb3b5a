//! One actor VM: a LuaJIT state, its executor and the `rt` table through
//! which the core Lua code (lua/core/) reaches the ring.
//!
//! Invariants:
//! - The VM, its executor and all their state live on one thread.
//! - `VmState` is the only mutable Rust state a VM has; `rt` functions
//!   borrow it for the duration of one call and never call back into Lua
//!   while holding the borrow.
//! - Finalizers may call Rust functions while `lua_close` runs, when mlua
//!   has no handle to the VM left: every Rust function that reads a Lua
//!   handle (string, table, userdata) or the VM state checks `vm_closing`
//!   first (`unless_closing`, `with_state`) and raises an error instead.
//!   Only `stderr_write`, `strerror` and `decode_error` work then, so that
//!   reports still get out.
//! - The Lua heap's allocator never aborts (actor/memory.rs).
//! - Standard output written by `print` is buffered here and flushed before
//!   anything is written to stderr, before any ring write to fd 1 or 2, before
//!   the thread blocks in the ring, when it reaches 64 KiB, after each
//!   `print` when stdout is a terminal, and when the VM ends.
//! - User code never sees the raw globals: every module gets a fresh
//!   environment of safe names (lua/core/modules.lua); the `debug` library is
//!   only reachable by the core code, which captured it before it was removed.

use std::io::Write;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};

use crate::actor::memory::VmMemory;
use crate::executor::{Executor, OpBuffer, OpId, Reaped};
use crate::modules::byte_span;
use crate::modules::error::{self, ErrorCode};
use crate::RuntimeError;

/// Stack size of the OS thread a VM runs on, whatever `ulimit -s` says.
/// Recursion through C inside LuaJIT is bounded twice: by the runtime's
/// C-depth limit (200 nested resumes or gsub callbacks, about 2 MiB of stack
/// at worst) and by LuaJIT's Lua stack limit (65k slots; recursing through
/// `string.format('%s')`, `load` readers or sort comparators until then
/// takes up to about 4 MiB). 16 MiB holds both with room to spare; it is
/// address space, touched only by deep recursion.
pub const VM_THREAD_STACK_SIZE: usize = 16 << 20;

/// Runs `f` (which creates and runs a VM) on a new thread with a
/// `VM_THREAD_STACK_SIZE` stack and waits for it.
pub(crate) fn on_vm_thread<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, RuntimeError> + Send + 'static,
) -> Result<R, RuntimeError> {
    let thread = std::thread::Builder::new()
        .name("luring-vm".into())
        .stack_size(VM_THREAD_STACK_SIZE)
        .spawn(f)
        .map_err(|e| RuntimeError::Internal(format!("cannot start the VM thread: {e}")))?;
    match thread.join() {
        Ok(result) => result,
        // A panic on the VM thread is a bug in luring: let it surface as one.
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// How the VM ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExit {
    /// The code passed to `system.exit`, if it was called.
    pub exit_code: Option<i32>,
    /// True when the main fiber ended with an error (its report was printed).
    pub main_panicked: bool,
}

pub(crate) struct VmState {
    executor: Executor,
    reaped: Reaped,
    stdout: Vec<u8>,
    /// A terminal sees each line as it is printed (like C's line-buffered
    /// stdout); a pipe or file gets bigger writes.
    stdout_is_tty: bool,
    exit_code: Option<i32>,
}

/// Buffered `print` output is written once it reaches this size, so a fiber
/// that prints without ever blocking does not grow the buffer unbounded.
const STDOUT_BUFFER_LIMIT: usize = 64 * 1024;

impl VmState {
    fn flush_stdout(&mut self) {
        if self.stdout.is_empty() {
            return;
        }
        let mut out = std::io::stdout().lock();
        // A closed stdout (EPIPE) must not abort the VM: the output is lost
        // the way a C program's would be.
        let _ = out.write_all(&self.stdout);
        let _ = out.flush();
        self.stdout.clear();
    }
}

/// What the entry script gets: its path and `system.arguments`.
pub struct VmConfig {
    pub script: PathBuf,
    pub arguments: Vec<String>,
    pub context: &'static str,
}

pub struct Vm {
    // Dropped in this order: the state closes before its allocator goes.
    lua: Lua,
    core: Table,
    memory: Box<VmMemory>,
}

/// True while `lua_close` runs the VM's finalizers. mlua's handle to the VM
/// then has no strong owner left, and every mlua call that needs one (app
/// data, table and string handles) would panic or touch freed memory, so
/// Rust callbacks reached from a finalizer at close must check this first.
pub(crate) fn vm_closing(lua: &Lua) -> bool {
    lua.weak().try_upgrade().is_none()
}

/// The error a runtime function raises when a finalizer calls it while the
/// VM closes: its ring and state are gone.
fn vm_closed_error() -> mlua::Error {
    mlua::Error::runtime(
        "the VM is closing: runtime functions are unavailable in finalizers run at exit",
    )
}

/// Wraps a Rust callback so that, called from a finalizer while the VM
/// closes, it raises `vm_closed_error` instead of reaching mlua handles.
pub(crate) fn unless_closing<A, R, F>(f: F) -> impl Fn(&Lua, A) -> mlua::Result<R> + 'static
where
    F: Fn(&Lua, A) -> mlua::Result<R> + 'static,
{
    move |lua, args| {
        if vm_closing(lua) {
            return Err(vm_closed_error());
        }
        f(lua, args)
    }
}

fn with_state<R>(lua: &Lua, f: impl FnOnce(&mut VmState) -> R) -> mlua::Result<R> {
    if vm_closing(lua) {
        return Err(vm_closed_error());
    }
    // A finalizer that runs while another `rt` call holds the state (a GC
    // step inside that call) gets an error, not a panic.
    let mut st = lua
        .try_app_data_mut::<VmState>()
        .map_err(|_| {
            mlua::Error::runtime(
                "luring: VM state is busy (runtime function called from a finalizer)",
            )
        })?
        .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))?;
    Ok(f(&mut st))
}

/// Writes straight to fd 1 or 2: large `print` output, and reports that
/// cannot reach the VM state (finalizers run while the VM closes, after its
/// buffered stdout was flushed).
fn write_unbuffered(to_stderr: bool, bytes: &[u8]) {
    // A closed stdout or stderr (EPIPE) loses the text, as in C.
    if to_stderr {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes);
        let _ = err.flush();
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }
}

/// Submits one op on the VM's executor; Lua gets its id as a number.
fn submit_op(
    lua: &Lua,
    submit: impl FnOnce(&mut VmState) -> std::io::Result<OpId>,
) -> mlua::Result<f64> {
    with_state(lua, submit)?.map(OpId::to_f64).map_err(io_err)
}

fn op_id(n: f64) -> mlua::Result<OpId> {
    OpId::from_f64(n).ok_or_else(|| error::einval(1))
}

fn io_err(e: std::io::Error) -> mlua::Error {
    ErrorCode::from_io(&e).into()
}

fn errno_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    macro_rules! errnos {
        ($($name:ident),* $(,)?) => { $( t.raw_set(stringify!($name), libc::$name)?; )* };
    }
    errnos!(
        EPERM,
        ENOENT,
        ESRCH,
        EINTR,
        EIO,
        ENXIO,
        E2BIG,
        ENOEXEC,
        EBADF,
        ECHILD,
        EAGAIN,
        ENOMEM,
        EACCES,
        EFAULT,
        EBUSY,
        EEXIST,
        EXDEV,
        ENODEV,
        ENOTDIR,
        EISDIR,
        EINVAL,
        ENFILE,
        EMFILE,
        ENOTTY,
        ETXTBSY,
        EFBIG,
        ENOSPC,
        ESPIPE,
        EROFS,
        EMLINK,
        EPIPE,
        EDOM,
        ERANGE,
        EDEADLK,
        ENAMETOOLONG,
        ENOLCK,
        ENOSYS,
        ENOTEMPTY,
        ELOOP,
        EWOULDBLOCK,
        ENOMSG,
        EIDRM,
        ENOSTR,
        ENODATA,
        ETIME,
        ENOSR,
        ENOLINK,
        EPROTO,
        EBADMSG,
        EOVERFLOW,
        EILSEQ,
        ENOTSOCK,
        EDESTADDRREQ,
        EMSGSIZE,
        EPROTOTYPE,
        ENOPROTOOPT,
        EPROTONOSUPPORT,
        EOPNOTSUPP,
        ENOTSUP,
        EAFNOSUPPORT,
        EADDRINUSE,
        EADDRNOTAVAIL,
        ENETDOWN,
        ENETUNREACH,
        ENETRESET,
        ECONNABORTED,
        ECONNRESET,
        ENOBUFS,
        EISCONN,
        ENOTCONN,
        ETIMEDOUT,
        ECONNREFUSED,
        EHOSTUNREACH,
        EALREADY,
        EINPROGRESS,
        ECANCELED,
        EOWNERDEAD,
        ENOTRECOVERABLE,
    );
    Ok(t)
}

fn clock_nanos(realtime: bool) -> f64 {
    let clock = if realtime {
        libc::CLOCK_REALTIME
    } else {
        libc::CLOCK_MONOTONIC
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the live local `ts`.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

fn op_buffer(v: &Value) -> mlua::Result<OpBuffer> {
    match v {
        Value::String(s) => {
            // The copy may be large: failing to allocate it is ENOMEM.
            let bytes = s.as_bytes();
            let mut owned = Vec::new();
            owned
                .try_reserve_exact(bytes.len())
                .map_err(|_| io_err(std::io::Error::from_raw_os_error(libc::ENOMEM)))?;
            owned.extend_from_slice(&bytes);
            Ok(OpBuffer::Owned(owned.into_boxed_slice()))
        }
        other => byte_span::span_from_value(other)
            .map(OpBuffer::Span)
            .ok_or_else(|| error::einval(2)),
    }
}

/// Builds the `rt` table of Rust functions the core Lua code calls.
fn make_rt(lua: &Lua) -> mlua::Result<Table> {
    let rt = lua.create_table()?;
    rt.set("errno", errno_table(lua)?)?;
    rt.set(
        "strerror",
        lua.create_function(|_, code: i32| Ok(error::strerror(code)))?,
    )?;
    rt.set("decode_error", lua.create_function(error::decode)?)?;
    rt.set(
        "sleep",
        lua.create_function(|lua, ns: f64| submit_op(lua, |st| st.executor.sleep(ns as u64)))?,
    )?;
    rt.set(
        "sleep_until",
        lua.create_function(|lua, (ns, realtime): (f64, bool)| {
            submit_op(lua, |st| st.executor.sleep_until(ns as u64, realtime))
        })?,
    )?;
    rt.set(
        "cancel",
        lua.create_function(|lua, id: f64| {
            let id = op_id(id)?;
            with_state(lua, |st| st.executor.cancel(id))?.map_err(io_err)
        })?,
    )?;
    rt.set(
        "read",
        lua.create_function(unless_closing(|lua, (fd, buf): (RawFd, Value)| {
            let span = byte_span::span_arg(&buf, 2)?;
            submit_op(lua, |st| st.executor.read(fd, OpBuffer::Span(span)))
        }))?,
    )?;
    rt.set(
        "read_at",
        lua.create_function(unless_closing(
            |lua, (fd, buf, offset): (RawFd, Value, f64)| {
                let span = byte_span::span_arg(&buf, 2)?;
                submit_op(lua, |st| {
                    st.executor.read_at(fd, OpBuffer::Span(span), offset as u64)
                })
            },
        ))?,
    )?;
    rt.set(
        "open",
        lua.create_function(unless_closing(|lua, path: mlua::LuaString| {
            let path =
                std::ffi::CString::new(path.as_bytes().to_vec()).map_err(|_| error::einval(1))?;
            submit_op(lua, |st| st.executor.open(path, libc::O_RDONLY))
        }))?,
    )?;
    rt.set(
        "close",
        lua.create_function(|lua, fd: RawFd| submit_op(lua, |st| st.executor.close(fd)))?,
    )?;
    rt.set(
        "write",
        lua.create_function(unless_closing(|lua, (fd, buf): (RawFd, Value)| {
            let buf = op_buffer(&buf)?;
            submit_op(lua, |st| {
                if fd == 1 || fd == 2 {
                    st.flush_stdout();
                }
                st.executor.write(fd, buf)
            })
        }))?,
    )?;
    rt.set(
        "turn",
        lua.create_function(|lua, (block, buf): (bool, Table)| {
            let reaped = with_state(lua, |st| {
                if block {
                    st.flush_stdout();
                }
                let mut reaped = std::mem::take(&mut st.reaped);
                let r = st.executor.turn(block, &mut reaped);
                (r, reaped)
            })?;
            let (result, reaped) = reaped;
            result.map_err(io_err)?;
            for (i, (id, res)) in reaped.completions.iter().enumerate() {
                buf.raw_set(2 * i + 1, id.to_f64())?;
                buf.raw_set(2 * i + 2, *res)?;
            }
            let n = reaped.completions.len();
            with_state(lua, |st| st.reaped = reaped)?;
            Ok(n)
        })?,
    )?;
    rt.set(
        "clock",
        lua.create_function(|_, realtime: bool| Ok(clock_nanos(realtime)))?,
    )?;
    rt.set(
        "stdout_write",
        // In a finalizer run while the VM closes this fails (with_state):
        // the string could not even be read then.
        lua.create_function(|lua, s: mlua::LuaString| {
            with_state(lua, |st| {
                let bytes = s.as_bytes();
                // Output that would overflow the buffer goes out directly,
                // after what is buffered: copying it could fail for lack of
                // memory, and would not save a write anyway.
                if st.stdout.len() + bytes.len() > STDOUT_BUFFER_LIMIT
                    || st.stdout.try_reserve(bytes.len()).is_err()
                {
                    st.flush_stdout();
                    write_unbuffered(false, &bytes);
                    return;
                }
                st.stdout.extend_from_slice(&bytes);
                if st.stdout_is_tty {
                    st.flush_stdout();
                }
            })
        })?,
    )?;
    rt.set(
        "stderr_write",
        // `BString` is read straight off the Lua stack, which also works in
        // a finalizer run while the VM closes (a string handle would not).
        lua.create_function(|lua, s: mlua::BString| {
            // Reports must get out: if the state cannot be reached (closing,
            // or a finalizer inside another `rt` call) the text is written
            // without flushing the print buffer first.
            if !vm_closing(lua) {
                let _ = with_state(lua, |st| st.flush_stdout());
            }
            write_unbuffered(true, &s);
            Ok(())
        })?,
    )?;
    // Only for the entry script, read before the scheduler starts; modules
    // are read with ring ops (lua/core/modules.lua).
    rt.set(
        "read_file",
        lua.create_function(|lua, path: String| match std::fs::read(&path) {
            Ok(bytes) => Ok((Value::String(lua.create_string(bytes)?), Value::Nil)),
            Err(e) => Ok((
                Value::Nil,
                Value::Integer(e.raw_os_error().unwrap_or(libc::EIO).into()),
            )),
        })?,
    )?;
    rt.set(
        "set_exit",
        lua.create_function(|lua, code: i32| with_state(lua, |st| st.exit_code = Some(code)))?,
    )?;
    rt.set(
        "quick_exit",
        lua.create_function(|lua, code: i32| -> mlua::Result<()> {
            with_state(lua, |st| st.flush_stdout())?;
            std::process::exit(code)
        })?,
    )?;
    rt.set(
        "abort",
        lua.create_function(|lua, ()| -> mlua::Result<()> {
            with_state(lua, |st| st.flush_stdout())?;
            std::process::abort()
        })?,
    )?;
    // Fiber events for LURING_LOG; the Lua side calls this only when
    // `rt.log_enabled` is true.
    rt.set(
        "log_enabled",
        tracing::enabled!(target: "luring::fiber", tracing::Level::DEBUG),
    )?;
    rt.set(
        "log",
        lua.create_function(|_, (event, fiber, detail): (String, String, Option<String>)| {
            tracing::debug!(target: "luring::fiber", fiber = %fiber, detail = detail.as_deref().unwrap_or(""), "{event}");
            Ok(())
        })?,
    )?;
    rt.set(
        "isatty",
        // SAFETY: isatty only inspects the fd number.
        lua.create_function(|_, fd: RawFd| Ok(unsafe { libc::isatty(fd) } == 1))?,
    )?;
    Ok(rt)
}

impl Vm {
    /// Creates the VM and runs the core Lua code; no user code runs yet.
    pub fn new() -> Result<Self, RuntimeError> {
        // SAFETY: `debug` is loaded only for the runtime's own Lua code, which
        // captures what it needs; it is removed from the globals before any
        // user code runs and user environments never include it. `ffi` is not
        // loaded at all.
        let lua = unsafe {
            Lua::unsafe_new_with(StdLib::ALL_SAFE | StdLib::DEBUG, LuaOptions::default())
        };
        let memory = VmMemory::new();
        // SAFETY: `exec_raw` runs the closure with the live state on this
        // thread; `memory` is boxed (its address never changes) and the
        // `Vm` drops it only after the state (field order).
        unsafe { lua.exec_raw::<()>((), |state| memory.install(state)) }
            .map_err(|e| RuntimeError::Boot(e.to_string()))?;
        let executor = Executor::new().map_err(RuntimeError::Ring)?;
        lua.set_app_data(VmState {
            executor,
            reaped: Reaped::default(),
            stdout: Vec::new(),
            stdout_is_tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            exit_code: None,
        });
        let core = Self::boot(&lua).map_err(|e| RuntimeError::Boot(e.to_string()))?;
        Ok(Self { lua, core, memory })
    }

    /// Caps the bytes this VM's Lua heap may hold (`None`: no cap, the
    /// default). Past it, allocations fail as Lua "not enough memory" errors
    /// in this VM only. Rust-side buffers (byte_span storage, ring buffers)
    /// are not counted.
    pub fn set_memory_limit(&self, bytes: Option<usize>) {
        self.memory.set_limit(bytes);
    }

    fn boot(lua: &Lua) -> mlua::Result<Table> {
        let g = lua.globals();
        let k = lua.create_table()?;
        k.set("rt", make_rt(lua)?)?;
        k.set("debug", g.get::<Table>("debug")?)?;
        k.set("raw_pcall", g.get::<Function>("pcall")?)?;
        // Errors raised by `__gc` finalizers reach the runtime through this
        // LuaJIT VM event (lua/core/scheduler.lua reports them).
        k.set(
            "jit_attach",
            g.get::<Table>("jit")?.get::<Function>("attach")?,
        )?;
        k.set("builtin_modules", lua.create_table()?)?;
        let span_table = byte_span::register(lua)?;
        g.set("byte_span", span_table)?;
        k.set(
            "is_byte_span",
            lua.create_function(|_, v: Value| Ok(byte_span::span_from_value(&v).is_some()))?,
        )?;
        for (name, src) in crate::fiber::CORE_CHUNKS {
            lua.load(*src)
                .set_name(format!("?{name}"))
                .call::<()>(k.clone())?;
        }
        for name in [
            "debug", "jit", "io", "package", "dofile", "loadfile", "module",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        Ok(k)
    }

    /// Runs `config.script` as the main fiber until nothing can wake a fiber.
    /// Errors are about the script itself failing to start.
    pub fn run_main(self, config: &VmConfig) -> Result<VmExit, RuntimeError> {
        let script = &config.script;
        let display = script.to_string_lossy().into_owned();
        let absolute = absolute_path(script);
        let args = self
            .lua
            .create_sequence_from(config.arguments.iter().map(String::as_str))
            .map_err(lua_boot)?;
        self.core.set("arguments", args).map_err(lua_boot)?;
        let env = self.lua.create_table().map_err(lua_boot)?;
        for (k, v) in std::env::vars_os() {
            env.set(
                self.lua
                    .create_string(k.as_encoded_bytes())
                    .map_err(lua_boot)?,
                self.lua
                    .create_string(v.as_encoded_bytes())
                    .map_err(lua_boot)?,
            )
            .map_err(lua_boot)?;
        }
        self.core.set("environment", env).map_err(lua_boot)?;
        let start: Function = self.core.get("start_main").map_err(lua_boot)?;
        let (ok, err): (bool, Option<String>) = start
            .call((
                absolute.to_string_lossy().into_owned(),
                display,
                config.context,
            ))
            .map_err(lua_boot)?;
        if !ok {
            return Err(RuntimeError::Load {
                script: script.clone(),
                reason: err.unwrap_or_default(),
            });
        }
        tracing::debug!(script = %script.display(), "main fiber scheduled");
        let run: Function = self.core.get("run").map_err(lua_boot)?;
        let mut closed_for_memory = false;
        if let Err(e) = run.call::<()>(()) {
            if !is_memory_error(&e) {
                return Err(RuntimeError::Internal(e.to_string()));
            }
            // The scheduler itself ran out of memory: the VM is closed with
            // the spec's report (its text was built beforehand).
            closed_for_memory = true;
            let reported = self
                .core
                .get::<Function>("report_errmem")
                .and_then(|report| report.call::<()>(()));
            if reported.is_err() {
                write_unbuffered(true, b"VM forcibly closed due to 'LUA_ERRMEM'\n");
            }
        }
        let main_panicked =
            closed_for_memory || self.core.get::<bool>("main_panicked").unwrap_or(false);
        let exit_code = with_state(&self.lua, |st| {
            st.flush_stdout();
            st.exit_code
        })
        .map_err(lua_boot)?;
        Ok(VmExit {
            exit_code,
            main_panicked,
        })
    }
}

/// Whether `e` is (or wraps) a Lua allocation failure.
fn is_memory_error(e: &mlua::Error) -> bool {
    match e {
        mlua::Error::MemoryError(_) => true,
        mlua::Error::CallbackError { cause, .. } => is_memory_error(cause),
        mlua::Error::RuntimeError(text) => text.contains("not enough memory"),
        _ => false,
    }
}

fn lua_boot(e: mlua::Error) -> RuntimeError {
    RuntimeError::Internal(e.to_string())
}

fn absolute_path(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
