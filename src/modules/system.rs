//! The `system` module's process calls (spec/io.md "system"): process
//! identity and credentials, `kill`, `system.signal` (constants,
//! `raise`/`default`/`ignore`, signal sets) and `system.spawn`
//! (src/modules/subprocess.rs). lua/core/system.lua holds the standard
//! streams; the rest is lua/system_process.lua, compiled and merged into
//! the `system` table on its first `require` (boot pays nothing for it).
//!
//! Invariants:
//! - Signals are read only through signalfds. A signal a set can wait for
//!   (`WAITABLE_SIGNALS`) is blocked in every thread of the process: the
//!   `luring` command blocks them in its main thread before any other
//!   thread exists ([`prepare_process_signals`]), and every thread inherits
//!   that mask. A process that did not (a Rust embedder) gets `ENOTSUP`
//!   from `signal.set.new`.
//! - A blocked signal that no set waits for still gets its default action:
//!   a watcher thread reads a signalfd whose mask is the waitable signals
//!   minus those some live set holds (`Registry`), and re-raises what it
//!   reads at itself with the signal unblocked (so Ctrl-C still ends the
//!   program, Ctrl-Z still stops it, an ignored signal stays ignored).
//! - Each set owns its signalfd (a private holder of lua/io_object.lua) and
//!   a `SignalRegistration` that counts its signals in the registry until
//!   it is collected; a set's mask only ever holds waitable signals.
//! - Children never inherit the blocked mask nor the runtime's fds
//!   (subprocess.rs resets both in the child).
//! - `raise`, `default` and `ignore` change process-wide state: only the
//!   master VM may call them (`EPERM` elsewhere).

use std::cell::Cell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use mlua::{Lua, Table, Value};

use crate::actor::vm::{unless_closing, with_state};
use crate::executor::OpFd;
use crate::modules::byte_span;
use crate::modules::error::{self, ErrorCode};
use crate::modules::file_descriptor::push;
use crate::modules::io_object::{self, holder_fd};

/// The signals a `signal.set` can wait for. Left out on purpose: signals
/// the kernel sends to one thread for what it did (SIGSEGV, SIGPIPE,
/// SIGXFSZ, ...), SIGKILL and SIGSTOP (cannot be blocked), SIGTTIN and
/// SIGTTOU (blocking them turns a background terminal read into `EIO`).
pub const WAITABLE_SIGNALS: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGCHLD,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGWINCH,
];

fn waitable(sig: i32) -> bool {
    WAITABLE_SIGNALS.contains(&sig)
}

fn sigset_of(signals: impl IntoIterator<Item = i32>) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset write into the live local set.
    unsafe {
        let mut set = std::mem::zeroed::<libc::sigset_t>();
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// The bit of signal `sig` (1..=64) in a mask word.
fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

fn signals_in(mask: u64) -> impl Iterator<Item = i32> {
    (1..=64).filter(move |s| mask & bit(*s) != 0)
}

/// How many live sets hold each signal, and the watcher's signalfd.
struct Registry {
    holders: [u32; 65],
    watcher: Option<OwnedFd>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    holders: [0; 65],
    watcher: None,
});
static PREPARED: AtomicBool = AtomicBool::new(false);

impl Registry {
    /// Points the watcher at the waitable signals no set holds.
    fn update_watcher(&self) {
        let Some(fd) = &self.watcher else { return };
        let mask = sigset_of(
            WAITABLE_SIGNALS
                .iter()
                .copied()
                .filter(|s| self.holders[*s as usize] == 0),
        );
        // SAFETY: `fd` is the watcher's live signalfd; the kernel copies
        // the mask (it also wakes the watcher, which rereads it).
        unsafe { libc::signalfd(fd.as_raw_fd(), &mask, 0) };
    }

    fn change(&mut self, added: u64, removed: u64) {
        for s in signals_in(added) {
            self.holders[s as usize] += 1;
        }
        for s in signals_in(removed) {
            self.holders[s as usize] -= 1;
        }
        self.update_watcher();
    }
}

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Blocks the waitable signals in the calling thread and creates the
/// watcher's signalfd, which gives them their default action while no set
/// waits for them. Call it once, before the process has any other thread
/// (every thread created afterwards inherits the mask); the `luring`
/// command does this first thing. It starts no thread itself (a
/// supervisor may still be forked after it): the watcher thread starts
/// with the first VM thread (`start_signal_watcher`); signals that
/// arrive before that wait for it.
pub fn prepare_process_signals() -> std::io::Result<()> {
    if PREPARED.load(Ordering::Acquire) {
        return Ok(());
    }
    let all = sigset_of(WAITABLE_SIGNALS.iter().copied());
    // SAFETY: `all` is a live, initialised set; the old mask is not wanted.
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut()) };
    if r != 0 {
        return Err(std::io::Error::from_raw_os_error(r));
    }
    // SAFETY: creates a new fd from a live mask; checked below.
    let fd = unsafe { libc::signalfd(-1, &all, libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just created `fd` for us.
    registry().watcher = Some(unsafe { OwnedFd::from_raw_fd(fd) });
    PREPARED.store(true, Ordering::Release);
    Ok(())
}

/// Starts the watcher thread once, if the process was prepared (called
/// before a VM thread is created).
pub(crate) fn start_signal_watcher() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if !PREPARED.load(Ordering::Acquire) {
        return;
    }
    STARTED.call_once(|| {
        let Some(raw) = registry().watcher.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        let started = std::thread::Builder::new()
            .name("luring-signals".into())
            .stack_size(64 << 10)
            .spawn(move || watch_signals(raw));
        if let Err(e) = started {
            tracing::error!(error = %e, "no signal watcher: signals no set holds stay pending");
        }
    });
}

/// The watcher thread: each signal read gets its default action (or the
/// disposition `system.signal.ignore/default` set), as if it had never
/// been blocked. The watcher's fd lives as long as the process.
fn watch_signals(fd: RawFd) {
    loop {
        // SAFETY: zeroed plain-data struct the kernel fills.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: reads at most `size` bytes into the live local `info`.
        let n = unsafe { libc::read(fd, (&raw mut info).cast(), size) };
        if n != size as isize {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return;
        }
        let sig = info.ssi_signo as i32;
        let one = sigset_of([sig]);
        // SAFETY: unblocking one signal in this thread and sending it to
        // this thread: it is delivered before tgkill returns, with the
        // process's disposition for it; then it is blocked again.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &one, std::ptr::null_mut());
            libc::syscall(libc::SYS_tgkill, libc::getpid(), libc::gettid(), sig);
            libc::pthread_sigmask(libc::SIG_BLOCK, &one, std::ptr::null_mut());
        }
    }
}

/// The signals a set holds, counted in the registry until it is dropped.
struct SignalRegistration {
    mask: Cell<u64>,
}

impl mlua::UserData for SignalRegistration {}

impl SignalRegistration {
    /// Changes the set's mask to `mask`. The watcher lets go of a signal
    /// before the set's signalfd takes it, and takes it back only after
    /// the signalfd let go: the two never both read one signal (the
    /// watcher would give it its default action under the set's nose).
    fn set_mask(&self, fd: &OpFd, mask: u64) -> mlua::Result<()> {
        let old = self.mask.get();
        let (added, removed) = (mask & !old, old & !mask);
        registry().change(added, 0);
        let set = sigset_of(signals_in(mask));
        // SAFETY: `fd` is the set's live signalfd (held by `OpFd`); the
        // kernel copies the mask.
        if unsafe { libc::signalfd(fd.raw(), &set, 0) } < 0 {
            let e = std::io::Error::last_os_error();
            registry().change(0, added);
            return Err(ErrorCode::from_io(&e).into());
        }
        self.mask.set(mask);
        registry().change(0, removed);
        Ok(())
    }
}

impl Drop for SignalRegistration {
    fn drop(&mut self) {
        let old = self.mask.replace(0);
        if old != 0 {
            registry().change(0, old);
        }
    }
}

fn signal_arg(v: &Value, index: i32) -> mlua::Result<i32> {
    match v {
        Value::Integer(i) => i32::try_from(*i).map_err(|_| error::einval(index)),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e9 => Ok(*n as i32),
        _ => Err(error::einval(index)),
    }
}

fn check(r: libc::c_int) -> mlua::Result<libc::c_int> {
    if r < 0 {
        Err(ErrorCode::from_io(&std::io::Error::last_os_error()).into())
    } else {
        Ok(r)
    }
}

/// The master VM only (process-wide dispositions): `EPERM` elsewhere.
fn master_only(lua: &Lua) -> mlua::Result<()> {
    if with_state(lua, |st| st.master)? {
        Ok(())
    } else {
        Err(ErrorCode::system(libc::EPERM).into())
    }
}

fn set_disposition(lua: &Lua, v: Value, handler: libc::sighandler_t) -> mlua::Result<()> {
    master_only(lua)?;
    let sig = signal_arg(&v, 1)?;
    // SAFETY: a zeroed sigaction with a plain disposition (SIG_DFL or
    // SIG_IGN, never a function) is valid; the kernel copies it.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        libc::sigemptyset(&mut action.sa_mask);
        check(libc::sigaction(sig, &action, std::ptr::null_mut()))?;
    }
    Ok(())
}

pub(crate) fn register(lua: &Lua, k: &Table) -> mlua::Result<()> {
    let loader = io_object::lua_chunk_loader(
        lua,
        k,
        &crate::fiber::lib_chunks::SYSTEM_PROCESS,
        primitives,
    )?;
    k.raw_set("load_system_process", loader)
}

fn signal_numbers(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    macro_rules! signals {
        ($($name:ident),* $(,)?) => { $( t.raw_set(stringify!($name), libc::$name)?; )* };
    }
    signals!(
        SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGKILL, SIGUSR1,
        SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM, SIGSTKFLT, SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP,
        SIGTTIN, SIGTTOU, SIGURG, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGWINCH, SIGIO, SIGPWR,
        SIGSYS,
    );
    Ok(t)
}

fn id_list(lua: &Lua, ids: &[libc::gid_t]) -> mlua::Result<Table> {
    lua.create_sequence_from(ids.iter().map(|g| *g as f64))
}

fn id_arg(v: &Value, index: i32) -> mlua::Result<u32> {
    match v {
        // -1: "leave unchanged" for setres*id.
        Value::Integer(-1) => Ok(u32::MAX),
        Value::Number(n) if *n == -1.0 => Ok(u32::MAX),
        Value::Integer(i) => u32::try_from(*i).map_err(|_| error::einval(index)),
        Value::Number(n) if n.fract() == 0.0 && *n >= 0.0 && *n <= u32::MAX as f64 => Ok(*n as u32),
        _ => Err(error::einval(index)),
    }
}

fn pid_arg(v: &Value, index: i32) -> mlua::Result<libc::pid_t> {
    match v {
        Value::Integer(i) => libc::pid_t::try_from(*i).map_err(|_| error::einval(index)),
        Value::Number(n) if n.fract() == 0.0 && n.abs() <= i32::MAX as f64 => Ok(*n as i32),
        _ => Err(error::einval(index)),
    }
}

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = lua.create_table()?;
    p.raw_set("signal_numbers", signal_numbers(lua)?)?;
    macro_rules! getter {
        ($name:literal, $call:expr) => {
            p.raw_set(
                $name,
                lua.create_function(|_, ()| {
                    // SAFETY: a query syscall with no pointer argument.
                    Ok(unsafe { $call } as f64)
                })?,
            )?;
        };
    }
    getter!("getpid", libc::getpid());
    getter!("getppid", libc::getppid());
    getter!("getpgrp", libc::getpgrp());
    p.raw_set(
        "getpgid",
        lua.create_function(|_, pid: Value| {
            let pid = if pid.is_nil() { 0 } else { pid_arg(&pid, 1)? };
            // SAFETY: no pointer argument.
            Ok(check(unsafe { libc::getpgid(pid) })? as f64)
        })?,
    )?;
    p.raw_set(
        "getsid",
        lua.create_function(|_, pid: Value| {
            let pid = if pid.is_nil() { 0 } else { pid_arg(&pid, 1)? };
            // SAFETY: no pointer argument.
            Ok(check(unsafe { libc::getsid(pid) })? as f64)
        })?,
    )?;
    p.raw_set(
        "setpgid",
        lua.create_function(|_, (pid, pgid): (Value, Value)| {
            let pid = pid_arg(&pid, 1)?;
            let pgid = pid_arg(&pgid, 2)?;
            // SAFETY: no pointer argument.
            check(unsafe { libc::setpgid(pid, pgid) })?;
            Ok(())
        })?,
    )?;
    p.raw_set(
        "setsid",
        lua.create_function(|_, ()| {
            // SAFETY: no pointer argument.
            Ok(check(unsafe { libc::setsid() })? as f64)
        })?,
    )?;
    p.raw_set(
        "getresuid",
        lua.create_function(|_, ()| {
            let (mut r, mut e, mut s) = (0, 0, 0);
            // SAFETY: three live locals the call fills.
            check(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })?;
            Ok((r as f64, e as f64, s as f64))
        })?,
    )?;
    p.raw_set(
        "getresgid",
        lua.create_function(|_, ()| {
            let (mut r, mut e, mut s) = (0, 0, 0);
            // SAFETY: three live locals the call fills.
            check(unsafe { libc::getresgid(&mut r, &mut e, &mut s) })?;
            Ok((r as f64, e as f64, s as f64))
        })?,
    )?;
    p.raw_set(
        "setresuid",
        lua.create_function(|_, (r, e, s): (Value, Value, Value)| {
            let (r, e, s) = (id_arg(&r, 1)?, id_arg(&e, 2)?, id_arg(&s, 3)?);
            // SAFETY: no pointer argument (glibc applies it to every thread).
            check(unsafe { libc::setresuid(r, e, s) })?;
            Ok(())
        })?,
    )?;
    p.raw_set(
        "setresgid",
        lua.create_function(|_, (r, e, s): (Value, Value, Value)| {
            let (r, e, s) = (id_arg(&r, 1)?, id_arg(&e, 2)?, id_arg(&s, 3)?);
            // SAFETY: no pointer argument (glibc applies it to every thread).
            check(unsafe { libc::setresgid(r, e, s) })?;
            Ok(())
        })?,
    )?;
    p.raw_set(
        "getgroups",
        lua.create_function(|lua, ()| {
            // SAFETY: size 0 asks for the count only.
            let n = check(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
            let mut groups = vec![0; n as usize];
            // SAFETY: `groups` has room for `n` ids.
            let n = check(unsafe { libc::getgroups(n, groups.as_mut_ptr()) })?;
            id_list(lua, &groups[..n as usize])
        })?,
    )?;
    p.raw_set(
        "setgroups",
        lua.create_function(|_, list: Value| {
            let Value::Table(list) = list else {
                return Err(error::einval(1));
            };
            let mut groups = Vec::new();
            for i in 1..=list.raw_len() {
                groups.push(id_arg(&list.raw_get(i)?, 1)?);
            }
            // SAFETY: `groups` holds `len` ids (glibc applies it to every
            // thread).
            check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) })?;
            Ok(())
        })?,
    )?;
    p.raw_set(
        "kill",
        lua.create_function(|_, (pid, sig): (Value, Value)| {
            let pid = pid_arg(&pid, 1)?;
            let sig = signal_arg(&sig, 2)?;
            // SAFETY: no pointer argument.
            check(unsafe { libc::kill(pid, sig) })?;
            Ok(())
        })?,
    )?;
    p.raw_set(
        "raise",
        lua.create_function(|lua, sig: Value| {
            master_only(lua)?;
            let sig = signal_arg(&sig, 1)?;
            // Process-directed, so the signalfd of a set (read by any
            // thread) or the watcher sees it, whichever thread runs this.
            // SAFETY: no pointer argument.
            check(unsafe { libc::kill(libc::getpid(), sig) })?;
            Ok(())
        })?,
    )?;
    p.raw_set(
        "default",
        lua.create_function(|lua, sig: Value| set_disposition(lua, sig, libc::SIG_DFL))?,
    )?;
    p.raw_set(
        "ignore",
        lua.create_function(|lua, sig: Value| set_disposition(lua, sig, libc::SIG_IGN))?,
    )?;
    add_std_stream_primitives(lua, &p)?;
    add_signal_set_primitives(lua, &p)?;
    crate::modules::subprocess::add_primitives(lua, &p)?;
    Ok(p)
}

/// `std_dup(n)`, `tcgetpgrp(n)` and `tcsetpgrp(n, pgid)` for the standard
/// stream `n` (0, 1 or 2; the Lua side passes only those).
fn add_std_stream_primitives(lua: &Lua, p: &Table) -> mlua::Result<()> {
    fn std_fd(n: i32) -> mlua::Result<RawFd> {
        if (0..=2).contains(&n) {
            Ok(n)
        } else {
            Err(error::einval(1))
        }
    }
    p.raw_set(
        "std_dup",
        lua.create_function(unless_closing(|lua, n: i32| {
            // SAFETY: duplicating a standard stream (open for the program's
            // life) into a new close-on-exec fd; checked below.
            let fd = check(unsafe { libc::fcntl(std_fd(n)?, libc::F_DUPFD_CLOEXEC, 3) })?;
            // SAFETY: the kernel just created `fd` for us.
            push(lua, OpFd::owned(unsafe { OwnedFd::from_raw_fd(fd) }))
        }))?,
    )?;
    p.raw_set(
        "tcgetpgrp",
        lua.create_function(|_, n: i32| {
            // SAFETY: no pointer argument.
            Ok(check(unsafe { libc::tcgetpgrp(std_fd(n)?) })? as f64)
        })?,
    )?;
    p.raw_set(
        "tcsetpgrp",
        lua.create_function(|_, (n, pgid): (i32, Value)| {
            let pgid = pid_arg(&pgid, 2)?;
            // SAFETY: no pointer argument.
            check(unsafe { libc::tcsetpgrp(std_fd(n)?, pgid) })?;
            Ok(())
        })?,
    )?;
    Ok(())
}

/// Primitives of `signal.set` (lua/system_process.lua): `set_new() ->
/// holder, registration`, `set_mask(registration, holder, op, sig)`,
/// `set_read(holder, byte_span) -> op id` and `signo(byte_span)`.
fn add_signal_set_primitives(lua: &Lua, p: &Table) -> mlua::Result<()> {
    p.raw_set(
        "set_new",
        lua.create_function(unless_closing(|lua, ()| {
            if !PREPARED.load(Ordering::Acquire) {
                // The runtime was embedded without blocking the signals in
                // every thread: a set could never see them reliably.
                return Err(ErrorCode::system(libc::ENOTSUP).into());
            }
            let empty = sigset_of([]);
            // SAFETY: creates a new fd from a live mask; checked below.
            let fd = check(unsafe { libc::signalfd(-1, &empty, libc::SFD_CLOEXEC) })?;
            // SAFETY: the kernel just created `fd` for us.
            let fd = OpFd::owned(unsafe { OwnedFd::from_raw_fd(fd) });
            let registration = SignalRegistration { mask: Cell::new(0) };
            Ok((push(lua, fd)?, lua.create_userdata(registration)?))
        }))?,
    )?;
    // set_mask(registration, holder, "add" | "remove" | "clear", sig,
    // index of `sig` among the caller's arguments)
    p.raw_set(
        "set_mask",
        lua.create_function(unless_closing(
            |_, (reg, holder, op, sig, index): (mlua::AnyUserData, Value, String, Value, i32)| {
                let reg = reg.borrow::<SignalRegistration>()?;
                let fd = holder_fd(&holder)?;
                let old = reg.mask.get();
                let mask = match op.as_str() {
                    "clear" => 0,
                    _ => {
                        let sig = signal_arg(&sig, index)?;
                        if !waitable(sig) {
                            return Err(error::einval(index));
                        }
                        if op == "add" {
                            old | bit(sig)
                        } else {
                            old & !bit(sig)
                        }
                    }
                };
                reg.set_mask(&fd, mask)
            },
        ))?,
    )?;
    p.raw_set("set_read", io_object::holder_read(lua)?)?;
    p.raw_set(
        "signo",
        lua.create_function(unless_closing(|_, buf: Value| {
            let bytes = byte_span::span_arg(&buf, 1)?.to_vec();
            let signo = bytes
                .get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| error::einval(1))?;
            Ok(signo as f64)
        }))?,
    )?;
    p.raw_set(
        "signalfd_siginfo_size",
        std::mem::size_of::<libc::signalfd_siginfo>(),
    )?;
    Ok(())
}
