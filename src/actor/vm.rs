//! One actor VM: a LuaJIT state, its executor and the `rt` table through
//! which the core Lua code (lua/core/) reaches the ring.
//!
//! Invariants:
//! - The VM, its executor and all their state live on one thread.
//! - `VmState` is the only mutable Rust state a VM has; `rt` functions
//!   borrow it for the duration of one call and never call back into Lua
//!   while holding the borrow.
//! - Standard output written by `print` is buffered here and flushed before
//!   anything is written to stderr, before any ring write to fd 1 or 2, before
//!   the thread blocks in the ring, when it reaches 64 KiB, after each
//!   `print` when stdout is a terminal, and when the VM ends.
//! - User code never sees the raw globals: every module gets a fresh
//!   environment of safe names (lua/core/modules.lua); the `debug` library is
//!   only reachable by the core code, which captured it before it was removed.
//!   After boot the main thread's environment is an empty, sealed table
//!   (`seal_main_thread`), so nothing running there can reach them either.
//! - The import root's `O_PATH` fd lives in `VmState` from the moment the
//!   entry script is read until the VM ends, after the executor (and so
//!   after every op that names it) is gone.

use std::io::Write;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use mlua::{Function, Lua, LuaOptions, StdLib, Table, Value};

use crate::executor::{Executor, OpBuffer, OpId, Reaped};
use crate::modules::byte_span;
use crate::modules::error::{self, ErrorCode};
use crate::RuntimeError;

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
    /// `O_PATH` fd of the import root, set when the entry script is read.
    /// Declared after `executor` so it is closed only once every op that
    /// names it has completed (fields drop in order).
    import_root: Option<std::os::fd::OwnedFd>,
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
    lua: Lua,
    core: Table,
}

fn with_state<R>(lua: &Lua, f: impl FnOnce(&mut VmState) -> R) -> mlua::Result<R> {
    let mut st = lua
        .app_data_mut::<VmState>()
        .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))?;
    Ok(f(&mut st))
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
        Value::String(s) => Ok(OpBuffer::Owned(s.as_bytes().to_vec().into_boxed_slice())),
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
        lua.create_function(|lua, (fd, buf): (RawFd, Value)| {
            let span = byte_span::span_arg(&buf, 2)?;
            submit_op(lua, |st| st.executor.read(fd, OpBuffer::Span(span)))
        })?,
    )?;
    rt.set(
        "read_at",
        lua.create_function(|lua, (fd, buf, offset): (RawFd, Value, f64)| {
            let span = byte_span::span_arg(&buf, 2)?;
            submit_op(lua, |st| {
                st.executor.read_at(fd, OpBuffer::Span(span), offset as u64)
            })
        })?,
    )?;
    rt.set(
        "open",
        lua.create_function(|lua, path: mlua::LuaString| {
            let path =
                std::ffi::CString::new(path.as_bytes().to_vec()).map_err(|_| error::einval(1))?;
            submit_op(lua, |st| st.executor.open(path, libc::O_RDONLY))
        })?,
    )?;
    rt.set(
        "close",
        lua.create_function(|lua, fd: RawFd| submit_op(lua, |st| st.executor.close(fd)))?,
    )?;
    rt.set(
        "write",
        lua.create_function(|lua, (fd, buf): (RawFd, Value)| {
            let buf = op_buffer(&buf)?;
            submit_op(lua, |st| {
                if fd == 1 || fd == 2 {
                    st.flush_stdout();
                }
                st.executor.write(fd, buf)
            })
        })?,
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
        lua.create_function(|lua, s: mlua::LuaString| {
            with_state(lua, |st| {
                st.stdout.extend_from_slice(&s.as_bytes());
                if st.stdout_is_tty || st.stdout.len() >= STDOUT_BUFFER_LIMIT {
                    st.flush_stdout();
                }
            })
        })?,
    )?;
    rt.set(
        "stderr_write",
        lua.create_function(|lua, s: mlua::LuaString| {
            with_state(lua, |st| st.flush_stdout())?;
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(&s.as_bytes());
            let _ = err.flush();
            Ok(())
        })?,
    )?;
    add_module_file_rt(lua, &rt)?;
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

/// The rt functions of the module loader (lua/core/modules.lua): the entry
/// script is read before the scheduler starts; modules with ring ops
/// beneath the import root (see `module_files`).
fn add_module_file_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use super::module_files::{self, FileInfo};
    rt.set("max_code_bytes", module_files::MAX_CODE_BYTES)?;
    // read_entry(absolute path) -> source, identity | nil, reason
    rt.set(
        "read_entry",
        lua.create_function(|lua, path: mlua::LuaString| {
            let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&path.as_bytes()));
            match module_files::read_entry(&path) {
                Ok(entry) => {
                    with_state(lua, |st| st.import_root = Some(entry.root))?;
                    Ok((
                        Value::String(lua.create_string(&entry.source)?),
                        Value::String(lua.create_string(&entry.identity)?),
                    ))
                }
                Err(e) => Ok((Value::Nil, Value::String(lua.create_string(e.to_string())?))),
            }
        })?,
    )?;
    // open_module(path relative to the import root) -> op id; the result is
    // an fd or -errno (EXDEV: the path leads outside the root).
    rt.set(
        "open_module",
        lua.create_function(|lua, path: mlua::LuaString| {
            let path =
                std::ffi::CString::new(path.as_bytes().to_vec()).map_err(|_| error::einval(1))?;
            submit_op(lua, |st| {
                let root = st
                    .import_root
                    .as_ref()
                    .map(std::os::fd::AsRawFd::as_raw_fd)
                    .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))?;
                st.executor.open_beneath(
                    root,
                    path,
                    module_files::CODE_OPEN_FLAGS,
                    module_files::MODULE_RESOLVE,
                )
            })
        })?,
    )?;
    // statx(fd, byte_span of rt.statx_size bytes) -> op id
    rt.set("statx_size", std::mem::size_of::<libc::statx>())?;
    rt.set(
        "statx",
        lua.create_function(|lua, (fd, buf): (RawFd, Value)| {
            let span = byte_span::span_arg(&buf, 2)?;
            submit_op(lua, |st| {
                st.executor.statx_fd(fd, span, module_files::STATX_MASK)
            })
        })?,
    )?;
    // stat_info(byte_span filled by statx) -> kind, size, identity
    rt.set(
        "stat_info",
        lua.create_function(|_, buf: Value| {
            let span = byte_span::span_arg(&buf, 1)?;
            let info = FileInfo::from_statx_bytes(&span.to_vec()).ok_or_else(|| error::einval(1))?;
            Ok((info.kind.name(), info.size as f64, info.identity))
        })?,
    )?;
    Ok(())
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
        let executor = Executor::new().map_err(RuntimeError::Ring)?;
        lua.set_app_data(VmState {
            executor,
            reaped: Reaped::default(),
            stdout: Vec::new(),
            stdout_is_tty: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            exit_code: None,
            import_root: None,
        });
        let core = Self::boot(&lua).map_err(|e| RuntimeError::Boot(e.to_string()))?;
        Ok(Self { lua, core })
    }

    fn boot(lua: &Lua) -> mlua::Result<Table> {
        let g = lua.globals();
        let k = lua.create_table()?;
        k.set("rt", make_rt(lua)?)?;
        k.set("debug", g.get::<Table>("debug")?)?;
        k.set("raw_pcall", g.get::<Function>("pcall")?)?;
        k.set("builtin_modules", lua.create_table()?)?;
        let span_table = byte_span::register(lua)?;
        g.set("byte_span", span_table)?;
        crate::modules::register(lua, &k)?;
        k.set(
            "is_byte_span",
            lua.create_function(|_, v: Value| Ok(byte_span::span_from_value(&v).is_some()))?,
        )?;
        for (name, src) in crate::fiber::CORE_CHUNKS {
            lua.load(*src)
                .set_name(format!("?{name}"))
                .call::<()>(k.clone())?;
        }
        // What the core code captured is all it needs; none of this is ever
        // reachable from user code, and removing it leaves less to find if
        // that ever failed.
        for name in [
            "debug", "jit", "io", "package", "dofile", "loadfile", "module", "require", "load",
            "loadstring", "os",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        g.get::<Table>("string")?.raw_set("dump", Value::Nil)?;
        k.get::<Function>("seal_main_thread")?.call::<()>(())?;
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
        run.call::<()>(())
            .map_err(|e| RuntimeError::Internal(e.to_string()))?;
        let main_panicked = self.core.get::<bool>("main_panicked").unwrap_or(false);
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

fn lua_boot(e: mlua::Error) -> RuntimeError {
    RuntimeError::Internal(e.to_string())
}

fn absolute_path(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After boot the main thread (where the scheduler runs, and any user
    /// metamethod it might ever trigger) has no globals: a chunk loaded
    /// there sees nothing, cannot write, and the runtime's own globals hold
    /// none of what the core code captured.
    #[test]
    fn main_thread_has_a_sealed_empty_environment() {
        let vm = Vm::new().expect("VM boots");
        let (os, print, load, g): (Value, Value, Value, Value) = vm
            .lua
            .load("return os, print, load, _G")
            .call(())
            .expect("chunk runs");
        assert!(os.is_nil() && print.is_nil() && load.is_nil() && g.is_nil());
        let err = vm
            .lua
            .load("leak = true")
            .exec()
            .expect_err("writing a global on the main thread fails");
        assert!(err.to_string().contains("Operation not permitted"), "{err}");
        let meta = vm
            .lua
            .load("return getmetatable(nil)")
            .call::<Value>(())
            .expect_err("no library function is reachable either")
            .to_string();
        assert!(meta.contains("attempt to call global 'getmetatable'"), "{meta}");
    }
}
