//! `system.spawn` and subprocess handles (spec/io.md "system"), on pidfds.
//!
//! Invariants:
//! - Everything the child needs (paths, argv, envp, the fds to install)
//!   is prepared before the fork; between `fork` and `execve` the child
//!   only makes async-signal-safe calls and never allocates. Any failure
//!   there is written (errno, 4 bytes) to a close-on-exec pipe the parent
//!   reads to EOF: a successful `execve` closes it empty, so `spawn`
//!   returns only once the program runs or has failed to start.
//! - The child starts with every signal's disposition at its default and
//!   an empty signal mask (the runtime blocks signals for signal sets),
//!   and with nothing open but 0-2 and the `extra_fds` it was given: fds
//!   10 and up are marked close-on-exec and 3-9 closed unless given.
//! - A `Subprocess` owns the child's pidfd. The child is reaped once: by
//!   `reap` after `wait()` saw it exit, or, when the handle is collected
//!   first, by the process-wide reaper thread after it was sent
//!   `signal_on_gcreaper` (no zombies either way). The pid is never
//!   waited for by number, so it cannot be reused under us.

use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};

use mlua::{Lua, Table, UserData, Value};

use crate::actor::vm::{submit_op, unless_closing, with_state, VmState};
use crate::executor::OpFd;
use crate::modules::error::{self, ErrorCode};
use crate::modules::file_descriptor;

/// How the child's exit was collected: its exit code, or the signal that
/// ended it.
#[derive(Clone, Copy)]
enum Exit {
    Code(i32),
    Signal(i32),
}

pub(crate) struct Subprocess {
    pidfd: OpFd,
    pid: libc::pid_t,
    gc_signal: i32,
    exit: Cell<Option<Exit>>,
}

impl UserData for Subprocess {}

impl Subprocess {
    /// Collects the exit status if the child has exited (never blocks).
    fn try_reap(&self) -> std::io::Result<Option<Exit>> {
        if let Some(exit) = self.exit.get() {
            return Ok(Some(exit));
        }
        let exit = reap_nohang(self.pidfd.raw())?;
        self.exit.set(exit);
        Ok(exit)
    }
}

/// `waitid(P_PIDFD, fd, WEXITED | WNOHANG)`: the exit status of a child
/// that has exited (now reaped), `None` while it runs.
fn reap_nohang(pidfd: RawFd) -> std::io::Result<Option<Exit>> {
    // SAFETY: a zeroed siginfo_t is valid; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is live; `pidfd` is held open by the caller.
    let r = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: waitid filled `info` for a child event (or left it zeroed,
    // pid 0: nothing exited).
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(if info.si_code == libc::CLD_EXITED {
        Exit::Code(status)
    } else {
        Exit::Signal(status)
    }))
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        if self.exit.get().is_some() {
            return;
        }
        match reap_nohang(self.pidfd.raw()) {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) => {}
        }
        if self.gc_signal != 0 {
            // SAFETY: the pidfd is live; no pointer argument.
            unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.pidfd.raw(),
                    self.gc_signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
        }
        // Ops in flight may hold the pidfd too: the reaper gets its own.
        let dup = match &self.pidfd {
            OpFd::Owned(fd) => fd.try_clone(),
            // A pidfd is always owned; nothing to reap otherwise.
            OpFd::Shared(_) | OpFd::Std(_) | OpFd::Fixed(_) | OpFd::Slot(_) | OpFd::Granted(_) => {
                return
            }
        };
        if let Ok(fd) = dup {
            reap_in_background(fd);
        }
    }
}

/// The reaper thread's queue: pidfds of collected handles whose child may
/// still run, and the eventfd that tells the thread about new ones.
struct Reaper {
    queue: Mutex<Vec<OwnedFd>>,
    wake: OwnedFd,
}

fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            // SAFETY: creates a new fd; checked below.
            let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: the kernel just created `fd` for us.
            let wake = unsafe { OwnedFd::from_raw_fd(fd) };
            let wake_raw = wake.as_raw_fd();
            std::thread::Builder::new()
                .name("luring-reaper".into())
                .stack_size(64 << 10)
                .spawn(move || reap_loop(wake_raw))
                .ok()?;
            Some(Reaper {
                queue: Mutex::new(Vec::new()),
                wake,
            })
        })
        .as_ref()
}

fn reap_in_background(pidfd: OwnedFd) {
    let Some(r) = reaper() else {
        // No thread for it: the child is reaped when the process ends.
        std::mem::forget(pidfd);
        return;
    };
    r.queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(pidfd);
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local to the live eventfd.
    unsafe { libc::write(r.wake.as_raw_fd(), (&raw const one).cast(), 8) };
}

/// Polls the queued pidfds; each becomes readable when its child exits,
/// which is then reaped and its pidfd closed.
fn reap_loop(wake: RawFd) {
    let mut children: Vec<OwnedFd> = Vec::new();
    let mut pollfds: Vec<libc::pollfd> = Vec::new();
    loop {
        pollfds.clear();
        pollfds.push(libc::pollfd {
            fd: wake,
            events: libc::POLLIN,
            revents: 0,
        });
        pollfds.extend(children.iter().map(|c| libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        // SAFETY: `pollfds` is a live array of its length.
        let n = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue;
        }
        if pollfds[0].revents != 0 {
            let mut count = 0u64;
            // SAFETY: reads 8 bytes into a live local.
            unsafe { libc::read(wake, (&raw mut count).cast(), 8) };
            let Some(r) = reaper() else { return };
            children.append(&mut r.queue.lock().unwrap_or_else(|e| e.into_inner()));
        }
        let exited: Vec<RawFd> = pollfds[1..]
            .iter()
            .filter(|p| p.revents != 0)
            .map(|p| p.fd)
            .collect();
        children.retain(|c| {
            if !exited.contains(&c.as_raw_fd()) {
                return true;
            }
            // Reaped (or not ours any more): drop it either way.
            !matches!(reap_nohang(c.as_raw_fd()), Ok(Some(_)) | Err(_))
        });
    }
}

/// One fd the child gets: `target` becomes a copy of `source`.
struct Install {
    target: RawFd,
    source: RawFd,
}

/// Everything the child needs, ready before the fork.
struct Plan {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// Keeps every source fd open until the child has exec'd.
    _held: Vec<OpFd>,
    installs: Vec<Install>,
    cwd: Option<CString>,
    umask: Option<libc::mode_t>,
    new_session: bool,
    process_group: Option<libc::pid_t>,
    pdeathsig: i32,
}

fn cstring(bytes: &[u8], index: &str) -> mlua::Result<CString> {
    CString::new(bytes).map_err(|_| ErrorCode::generic(libc::EINVAL).arg_name(index).into())
}

fn bad(name: &str) -> mlua::Error {
    ErrorCode::generic(libc::EINVAL).arg_name(name).into()
}

/// Reads the table lua/system_process.lua normalised (fresh, no
/// metatable: raw reads only).
fn plan_from(opts: &Table, dev_null: &mut Option<OpFd>) -> mlua::Result<Plan> {
    let program: mlua::LuaString = opts.raw_get("program")?;
    let program = cstring(&program.as_bytes(), "program")?;
    let mut argv = Vec::new();
    let args: Table = opts.raw_get("arguments")?;
    for i in 1..=args.raw_len() {
        let a: mlua::LuaString = args.raw_get(i)?;
        argv.push(cstring(&a.as_bytes(), "arguments")?);
    }
    let mut envp = Vec::new();
    let env: Table = opts.raw_get("environment")?;
    for i in 1..=env.raw_len() {
        let a: mlua::LuaString = env.raw_get(i)?;
        envp.push(cstring(&a.as_bytes(), "environment")?);
    }
    let mut held = Vec::new();
    let mut installs = Vec::new();
    for (target, name) in [(0, "stdin"), (1, "stdout"), (2, "stderr")] {
        match opts.raw_get::<Value>(name)? {
            Value::String(s) if s.as_bytes().as_ref() == b"share" => {}
            Value::Nil => {
                if dev_null.is_none() {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open("/dev/null")
                        .map_err(|e| ErrorCode::from_io(&e))?;
                    *dev_null = Some(OpFd::owned(f.into()));
                }
                let fd = dev_null.clone().expect("opened above");
                installs.push(Install {
                    target,
                    source: fd.raw(),
                });
                held.push(fd);
            }
            v => {
                let fd = file_descriptor::arg(&v, 1)
                    .map_err(|_| bad(name))?
                    .op_fd()
                    .ok_or_else(|| {
                        mlua::Error::from(ErrorCode::generic(libc::EBUSY).arg_name(name))
                    })?;
                installs.push(Install {
                    target,
                    source: fd.raw(),
                });
                held.push(fd);
            }
        }
    }
    let extra: Table = opts.raw_get("extra_fds")?;
    for target in 3..=9 {
        let v: Value = extra.raw_get(target)?;
        if v.is_nil() {
            continue;
        }
        let fd = file_descriptor::arg(&v, 1)
            .map_err(|_| bad("extra_fds"))?
            .op_fd()
            .ok_or_else(|| {
                mlua::Error::from(ErrorCode::generic(libc::EBUSY).arg_name("extra_fds"))
            })?;
        installs.push(Install {
            target,
            source: fd.raw(),
        });
        held.push(fd);
    }
    let cwd = match opts.raw_get::<Option<mlua::LuaString>>("working_directory")? {
        Some(s) => Some(cstring(&s.as_bytes(), "working_directory")?),
        None => None,
    };
    let umask = opts
        .raw_get::<Option<i64>>("umask")?
        .map(|m| m as libc::mode_t);
    let process_group = opts
        .raw_get::<Option<i64>>("process_group")?
        .map(|g| g as libc::pid_t);
    Ok(Plan {
        program,
        argv,
        envp,
        _held: held,
        installs,
        cwd,
        umask,
        new_session: opts.raw_get::<bool>("start_new_session")?,
        process_group,
        pdeathsig: opts.raw_get::<Option<i32>>("pdeathsig")?.unwrap_or(0),
    })
}

/// The kernel's `struct sigaction` (x86-64 and aarch64 layout) for
/// `rt_sigaction`.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

fn null_terminated(list: &[CString]) -> Vec<*const libc::c_char> {
    list.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The child between `fork` and `execve`: async-signal-safe calls only,
/// no allocation (everything it reads was built by the parent).
///
/// # Safety
/// Call only in the child of a `fork`, with `argv`/`envp` null-terminated
/// arrays of pointers into `plan`.
unsafe fn child(
    plan: &Plan,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    err: RawFd,
    parent: libc::pid_t,
) -> ! {
    // SAFETY (whole body): raw syscalls on fds and memory the child owns
    // (a copy of the parent's at the fork); nothing allocates or locks.
    unsafe {
        let fail = |err_fd: RawFd| -> ! {
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(err_fd, bytes.as_ptr().cast(), 4);
            libc::_exit(127)
        };
        // Default dispositions and an empty mask: the runtime's choices
        // (SIGPIPE ignored, signal sets' signals blocked) are not the
        // program's.
        // The raw syscall: glibc's wrapper refuses signals 32 and 33,
        // which the child may have inherited as ignored.
        let action = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &action as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        // Move the error pipe and every source out of 0-9, so that
        // installing one never overwrites another.
        let moved_err = libc::fcntl(err, libc::F_DUPFD_CLOEXEC, 10);
        if moved_err < 0 {
            // Reported through the original (nothing was installed yet).
            fail(err);
        }
        let err = moved_err;
        if plan.new_session && libc::setsid() < 0 {
            fail(err);
        }
        if let Some(pgid) = plan.process_group {
            if libc::setpgid(0, pgid) < 0 {
                fail(err);
            }
        }
        if plan.pdeathsig != 0 {
            if libc::prctl(libc::PR_SET_PDEATHSIG, plan.pdeathsig as libc::c_ulong) < 0 {
                fail(err);
            }
            // The parent may have died before the prctl.
            if libc::getppid() != parent {
                libc::_exit(127);
            }
        }
        if let Some(mask) = plan.umask {
            libc::umask(mask);
        }
        let mut moved = [-1 as RawFd; 10];
        for (i, install) in plan.installs.iter().enumerate() {
            let fd = libc::fcntl(install.source, libc::F_DUPFD_CLOEXEC, 10);
            if fd < 0 {
                fail(err);
            }
            moved[i] = fd;
        }
        let mut given = [false; 10];
        for (i, install) in plan.installs.iter().enumerate() {
            // dup2 leaves the new fd without FD_CLOEXEC: the program gets it.
            if libc::dup2(moved[i], install.target) < 0 {
                fail(err);
            }
            given[install.target as usize] = true;
        }
        for fd in 3..10 {
            if !given[fd as usize] {
                libc::close(fd);
            }
        }
        libc::syscall(
            libc::SYS_close_range,
            10u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if let Some(cwd) = &plan.cwd {
            if libc::chdir(cwd.as_ptr()) < 0 {
                fail(err);
            }
        }
        libc::execve(plan.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(err)
    }
}

/// Forks and execs `plan`; returns the child's pidfd and pid, or the errno
/// that kept the program from starting (the child is reaped then).
fn spawn(plan: &Plan) -> std::io::Result<(OwnedFd, libc::pid_t)> {
    let argv = null_terminated(&plan.argv);
    let envp = null_terminated(&plan.envp);
    let (reader, writer) = std::io::pipe()?;
    // SAFETY: getpid has no argument.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the child runs only `child`, which is async-signal-safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: this is the child of the fork; argv/envp point into plan.
        unsafe { child(plan, &argv, &envp, writer.as_raw_fd(), parent) }
    }
    drop(writer);
    // Nobody else waits for this pid, so it names our child until we reap
    // it: the pidfd is race-free.
    // SAFETY: no pointer argument.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
    let pidfd = if pidfd < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: our own child; reap it after killing it.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(e);
    } else {
        // SAFETY: the kernel just created `pidfd` for us.
        unsafe { OwnedFd::from_raw_fd(pidfd) }
    };
    let mut errno = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        // SAFETY: reads into the live local buffer's remaining bytes.
        let n = unsafe {
            libc::read(
                reader.as_raw_fd(),
                errno[got..].as_mut_ptr().cast(),
                4 - got,
            )
        };
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    if got == 0 {
        return Ok((pidfd, pid));
    }
    // It failed before exec: collect it.
    let _ = reap_blocking(&pidfd);
    Err(std::io::Error::from_raw_os_error(if got == 4 {
        i32::from_ne_bytes(errno)
    } else {
        libc::EIO
    }))
}

fn reap_blocking(pidfd: &OwnedFd) -> std::io::Result<()> {
    // SAFETY: a zeroed siginfo_t is valid; waitid fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `info` is live; the pidfd is held open.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn subprocess_arg(v: &Value) -> mlua::Result<mlua::UserDataRef<Subprocess>> {
    match v {
        Value::UserData(ud) => ud.borrow::<Subprocess>().map_err(|_| error::einval(1)),
        _ => Err(error::einval(1)),
    }
}

/// Primitives of `system.spawn` and subprocess objects.
pub(crate) fn add_primitives(lua: &Lua, p: &Table) -> mlua::Result<()> {
    // spawn(normalised options) -> subprocess userdata
    p.raw_set(
        "spawn",
        lua.create_function(unless_closing(|lua, opts: Table| {
            let mut dev_null = None;
            let plan = plan_from(&opts, &mut dev_null)?;
            // What this VM printed reaches a shared stdout before anything
            // the child writes there.
            with_state(lua, VmState::flush_if_output)?;
            let (pidfd, pid) = spawn(&plan).map_err(|e| ErrorCode::from_io(&e))?;
            let gc_signal = opts.raw_get::<i32>("signal_on_gcreaper")?;
            lua.create_userdata(Subprocess {
                pidfd: OpFd::owned(pidfd),
                pid,
                gc_signal,
                exit: Cell::new(None),
            })
        }))?,
    )?;
    p.raw_set(
        "pid",
        lua.create_function(|_, c: Value| Ok(subprocess_arg(&c)?.pid as f64))?,
    )?;
    // wait_op(subprocess) -> op id (completes with 0 when the child exited)
    p.raw_set(
        "wait_op",
        lua.create_function(unless_closing(|lua, c: Value| {
            let fd = subprocess_arg(&c)?.pidfd.clone();
            submit_op(lua, |st| st.executor.wait_exited(&fd))
        }))?,
    )?;
    // exit(subprocess) -> nil while running | code, signal (collects it)
    p.raw_set(
        "exit",
        lua.create_function(|_, c: Value| {
            let c = subprocess_arg(&c)?;
            match c.try_reap().map_err(|e| ErrorCode::from_io(&e))? {
                None => Ok((Value::Nil, Value::Nil)),
                Some(Exit::Code(code)) => Ok((Value::Integer(code.into()), Value::Nil)),
                Some(Exit::Signal(sig)) => Ok((
                    Value::Integer((128 + sig).into()),
                    Value::Integer(sig.into()),
                )),
            }
        })?,
    )?;
    p.raw_set(
        "send_signal",
        lua.create_function(|_, (c, sig): (Value, Value)| {
            let c = subprocess_arg(&c)?;
            let sig = match sig {
                Value::Integer(i) => i32::try_from(i).map_err(|_| error::einval(2))?,
                Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e9 => n as i32,
                _ => return Err(error::einval(2)),
            };
            if c.exit.get().is_some() {
                // Reaped: the process is gone.
                return Err(ErrorCode::system(libc::ESRCH).into());
            }
            // SAFETY: the pidfd is live; no pointer argument.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    c.pidfd.raw(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            if r < 0 {
                return Err(ErrorCode::from_io(&std::io::Error::last_os_error()).into());
            }
            Ok(())
        })?,
    )?;
    Ok(())
}
