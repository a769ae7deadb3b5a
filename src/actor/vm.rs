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
//!   (The few that hold the state themselves, `borrow_state` and
//!   `HeldState`, fail on `ended`, which is set before `lua_close`; those
//!   that also read Lua handles, socket recv and send, check `vm_closing`
//!   like any other.) Only
//!   `stderr_write`, `strerror` and `decode_error` work then, so that
//!   reports still get out (written straight to fd 2: the output queue was
//!   drained when the VM ended).
//! - The Lua heap's allocator never aborts (actor/memory.rs), and neither
//!   does output: a copy the print buffer or the output queue has no memory
//!   for is written straight to its stream once the queue is drained.
//! - Standard output written by `print` is buffered here and handed to the
//!   executor's ordered output queue (written through the ring, never by a
//!   blocking write on this thread) before anything is written to stderr,
//!   before any ring write to fd 1 or 2, before the thread blocks in the
//!   ring, when it reaches 64 KiB, after each `print` when stdout is a
//!   terminal (which then waits until the line was written, like C's
//!   line-buffered stdout), and when the VM ends, which waits until all
//!   output was written.
//! - The I/O primitives of `rt` (fd objects, the standard streams, reads
//!   and writes) live in src/modules/stdio.rs, with their invariants.
//! - User code never sees the raw globals: every module gets a fresh
//!   environment of safe names (lua/core/modules.lua); the `debug` library is
//!   only reachable by the core code, which captured it before it was removed.
//!   After boot the main thread's environment is an empty, sealed table
//!   (`seal_main_thread`), so nothing running there can reach them either.
//! - The import root's `O_PATH` fd lives in `VmState` from the moment the
//!   entry script is read (or the worker starts) until the VM ends, after
//!   the executor (and so after every op that names it) is gone. It is
//!   shared with the VMs spawned from it and only read through: no VM can
//!   close it under another.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlua::{ffi, Function, Lua, LuaOptions, StdLib, Table, Value};
use std::ffi::c_int;

use crate::actor::compiled_modules;
use crate::actor::mailbox::{Mailbox, Scalar};
use crate::actor::memory::VmMemory;
use crate::actor::message::Message;
use crate::executor::{
    Completion, CompletionsDropped, Executor, OpBuffer, OpFd, OpId, Reaped, StdStream,
};
use crate::modules::byte_span;
use crate::modules::error::{self, ErrorCode};
use crate::modules::stdio::{fd_arg, op_buffer, push_fd};
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
    crate::modules::system::start_signal_watcher();
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

/// The exit code an embedding application sees for `system.exit(code,
/// {force = 'abort'})` (128 + SIGABRT, what a shell reports for an abort).
pub(crate) const EMBEDDED_ABORT_CODE: i32 = 128 + libc::SIGABRT;

/// This VM runs in an embedding application's runtime: `system.exit` must
/// not end the host process.
fn embedded() -> bool {
    super::host::current_process().is_some_and(|p| p.embedded)
}

/// How the VM ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmExit {
    /// The code passed to `system.exit`, if it was called.
    pub exit_code: Option<i32>,
    /// True when the main fiber ended with an error (its report was printed).
    pub main_panicked: bool,
    /// True when that error, or the runtime's own, was "not enough memory".
    pub out_of_memory: bool,
}

pub(crate) struct VmState {
    pub(crate) executor: Executor,
    stdout: Vec<u8>,
    /// A terminal sees each line as it is printed (like C's line-buffered
    /// stdout); a pipe or file gets bigger writes.
    stdout_is_tty: bool,
    exit_code: Option<i32>,
    /// `O_PATH` fd of the import root, set when the entry script is read
    /// and shared with the VMs this one spawns (one fd for all of them: an
    /// actor costs no descriptor). Every op that opens a module holds a
    /// clone of it in its slot, so it cannot be closed under the op;
    /// declared after `executor` as well, so the VM's own reference is
    /// dropped last (fields drop in order).
    pub(crate) import_root: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// Set once the VM has ended and its output was drained (`Vm::drop`):
    /// finalizers that run after that (in `lua_close`) get `vm_closed_error` from every `rt` function, and
    /// their reports are written straight to fd 2.
    ended: bool,
    /// This VM's inbox as other actors address it.
    pub(crate) mailbox: Arc<Mailbox>,
    /// Spare buffer for rendezvous receipts.
    pub(crate) receipts: Vec<(u64, bool)>,
    /// The message the host handed to the running step that owes its
    /// sender (a VM of this thread) a receipt (`Mailbox::take_handable`):
    /// put back by `rt.inbox_put_back`, settled by `rt.inbox_close` or by
    /// a receive that takes from the queue after it (raw_calls.rs `take`),
    /// else by the host once the step ended (`Hosted::settle`).
    pub(crate) handed: Option<crate::actor::mailbox::Envelope>,
    /// The heap cap of this VM, which the VMs it spawns inherit.
    pub(crate) memory_limit: Option<usize>,
    /// The master VM owns process-wide state (spec/actors.md §1
    /// `new_master`): its main fiber's failure makes the exit status 1.
    pub(crate) master: bool,
    /// The inbox to tell when this VM ends (`spawn_vm{monitor = true}`);
    /// it counts as a sender of that inbox meanwhile.
    pub(crate) monitor: Option<crate::actor::mailbox::ActorAddress>,
    /// What keeps this VM's sandboxed actors on a leash: dropped with the
    /// VM, each kills its sandbox (`actor/sandboxed.rs`).
    pub(crate) sandboxes: Vec<Box<dyn std::any::Any>>,
    /// The frames of those sandboxes, read on this VM's ring (after
    /// `executor` in drop order: its ops are cancelled and reaped first).
    pub(crate) relays: crate::actor::sandboxed::ring_relay::Relays,
    /// The completions of a turn after its first, as the scheduler reads
    /// them through LuaJIT's FFI (made by `fast_completions` in
    /// src/modules/fast_io.rs when a VM that opened `ffi` asks for it;
    /// `None` in every other VM): see `write_completion_array`. Never
    /// replaced or freed before the VM's state, which outlives its Lua
    /// code, so the pointer Lua keeps stays valid. Made filled with -1
    /// ("in the table"), and written by turns only once `on` (set after
    /// the scheduler took the pointer: until then, and if taking it
    /// failed, every completion goes to the table as before).
    pub(crate) completion_array: Option<(Box<[f64]>, bool)>,
}

/// Doubles in a VM's completion array: completions 2..=256 of a turn
/// (an id and a result each); later ones go into `rt.completions`.
pub(crate) const COMPLETION_ARRAY_LEN: usize = 512;

/// Writes `list[i]` for 1 <= i < min(len, LEN / 2) into `arr`: a plain
/// completion (a number result) as its id at `2i` and its result at
/// `2i + 1`, any other as -1 at `2i` (ids are never negative: Lua then
/// reads it from `rt.completions`). Returns how many of `list` it covered
/// (those from there on, and the non-plain ones, go into the table) and
/// whether it marked any with -1 (else the turn need not look at the
/// covered ones again).
fn write_completion_array(arr: &mut [f64], list: &[Completion]) -> (usize, bool) {
    let covered = list.len().min(arr.len() / 2);
    let mut marked = false;
    if covered > 1 {
        let pairs = arr[2..2 * covered].chunks_exact_mut(2);
        for (pair, c) in pairs.zip(&list[1..covered]) {
            if c.fd.is_none() && c.output.is_none() {
                pair[0] = c.id.to_f64();
                pair[1] = f64::from(c.result);
            } else {
                pair[0] = -1.0;
                marked = true;
            }
        }
    }
    (covered, marked)
}

/// Whether fd 1 is a terminal, asked once per process (every VM would
/// otherwise make the same `ioctl`).
fn stdout_is_tty() -> bool {
    static IS_TTY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *IS_TTY.get_or_init(|| std::io::IsTerminal::is_terminal(&std::io::stdout()))
}

/// Buffered `print` output is written once it reaches this size, so a fiber
/// that prints without ever blocking does not grow the buffer unbounded.
const STDOUT_BUFFER_LIMIT: usize = 64 * 1024;

impl VmState {
    /// Set once the VM ended (see the field).
    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    /// Ring operations whose completion has not been reaped yet.
    pub(crate) fn in_flight(&self) -> bool {
        self.executor.in_flight() > 0
    }

    /// Whether the VM's ring exists (see `Executor::has_ring`).
    pub(crate) fn has_ring(&self) -> bool {
        self.executor.has_ring()
    }

    /// A step would find completions to deliver (see
    /// `Executor::has_completions`).
    pub(crate) fn has_completions(&mut self) -> bool {
        self.executor.has_completions()
    }

    /// Writes what this VM printed before another actor can react to a
    /// message from it (that actor may print on another thread).
    /// Takes the receipts that came for this VM's sends. One is returned;
    /// several stay
    /// in `receipts`, where `rt.mailbox_poll` finds them first.
    pub(crate) fn take_receipts(&mut self) -> Receipts {
        let mut receipts = std::mem::take(&mut self.receipts);
        self.mailbox.take_receipts(&mut receipts);
        let taken = match receipts.as_slice() {
            [] => Receipts::None,
            &[(id, delivered)] => {
                receipts.clear();
                Receipts::One(id, delivered)
            }
            _ => Receipts::Several,
        };
        self.receipts = receipts;
        taken
    }

    pub(crate) fn flush_if_output(&mut self) {
        if !self.stdout.is_empty() || self.executor.output_backlog() > 0 {
            let _ = self.finish_output();
        }
    }

    /// Moves buffered `print` output to the executor's output queue; with
    /// `submit_now` its write is handed to the kernel at once.
    pub(crate) fn flush_stdout(&mut self, submit_now: bool) -> std::io::Result<()> {
        if self.stdout.is_empty() {
            return Ok(());
        }
        let buffered = std::mem::take(&mut self.stdout);
        let queued = self.write_stream(StdStream::Out, &buffered, submit_now);
        // keep the buffer's capacity
        self.stdout = buffered;
        self.stdout.clear();
        queued
    }

    /// Queues runtime output for `stream`. When the queue has no memory for
    /// a copy, it waits until everything queued was written and writes
    /// `bytes` straight to the stream: output keeps its order, and running
    /// out of memory never aborts the process.
    fn write_stream(
        &mut self,
        stream: StdStream,
        bytes: &[u8],
        submit_now: bool,
    ) -> std::io::Result<()> {
        match self.executor.write_output(stream, bytes, submit_now) {
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                self.executor.finish_output()?;
                write_direct(stream, bytes)
            }
            queued => queued,
        }
    }

    /// Writes everything buffered or queued for stdout and stderr, waiting
    /// for the streams (the VM is ending or exiting).
    fn finish_output(&mut self) -> std::io::Result<()> {
        self.flush_stdout(true)?;
        self.executor.finish_output()
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
    /// `lua`'s main state, for the raw calls made with no Lua code
    /// running (`collect_cycle`); it lives as long as `lua`.
    state: *mut ffi::lua_State,
    /// A registry reference (`luaL_ref`, made at boot) to
    /// `K.prepare_worker` (lua/core/modules.lua), which a worker's start
    /// calls through the C API ([`Vm::finish_start`]).
    prepare_worker: c_int,
}

/// How much a worker's start may grow the heap before its garbage is
/// collected at once. Its garbage is small (the parser's constant tables
/// and local names, two small tables, one string): under this it stays,
/// as an idle actor's heap never doubles, and a collection would cost
/// ~35 µs, a tenth of a spawn's CPU (docs/performance.md "startgc").
const START_GROWTH_BEFORE_COLLECTING: usize = 16 * 1024;

/// What one scheduler step left (`K.step` in lua/core/scheduler.lua).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Fibers are queued: step again soon.
    Ready,
    /// Waiting for ring ops or for other actors.
    Idle,
    /// Nothing can wake a fiber of this VM any more (or it was terminated).
    Done,
}

/// `K.step` of one VM, called with `lua_pcall` on the VM's main state:
/// mlua's `Function::call` (its traceback handler, the function moved over
/// from its reference thread, per-argument stack checks and the result's
/// conversion) was about a ninth of the instructions of a same-thread
/// message round trip (docs/performance.md "Actors"). Errors still come
/// out as mlua makes them: the error value is read back through mlua
/// (a Rust panic raised inside the step resumes as a panic there).
///
/// Invariant: used only with the `Vm` it came from, while that VM lives,
/// on its thread, and never while an mlua call on the VM is under way
/// (the host calls it between steps, like `Function::call` was).
pub(crate) struct StepFunction {
    state: *mut ffi::lua_State,
    /// Registry reference of `K.step` (freed with the Lua state).
    func: c_int,
}

/// Registry key the error of a failed step passes through.
const STEP_ERROR_KEY: &std::ffi::CStr = c"luring.step_error";

impl StepFunction {
    fn call(
        &self,
        lua: &Lua,
        flags: [bool; 3],
        id: Option<f64>,
        delivered: bool,
        handed: Option<Scalar>,
    ) -> mlua::Result<i32> {
        let l = self.state;
        // SAFETY: see the type's invariant: `l` is the live main state and
        // no other code uses its stack now. Everything pushed here is
        // popped again (`lua_settop` back to `top`); `lua_pcall` catches
        // every Lua error of the step, and the pushes before it stay
        // within the slots `lua_checkstack` granted.
        let rc = unsafe {
            let top = ffi::lua_gettop(l);
            if ffi::lua_checkstack(l, 8) == 0 {
                return Err(mlua::Error::StackError);
            }
            // (the raw calls: mlua's `lua_rawgeti` also asks the type,
            // its `lua_tointeger` checks the number's range)
            ffi::lua_rawgeti_(l, ffi::LUA_REGISTRYINDEX, self.func);
            // block 1, poll 2, alone 4: one number, not three booleans
            let [block, poll, alone] = flags;
            ffi::lua_pushnumber(
                l,
                f64::from(u8::from(block) | u8::from(poll) << 1 | u8::from(alone) << 2),
            );
            // Arguments left out are nil: the receipt's without one, both
            // when no message is handed over either. (At most 5 slots.)
            let nargs = match (id, &handed) {
                (None, None) => 1,
                (Some(id), _) => {
                    ffi::lua_pushnumber(l, id);
                    ffi::lua_pushboolean(l, delivered as c_int);
                    3
                }
                (None, Some(_)) => {
                    ffi::lua_pushnil(l);
                    ffi::lua_pushnil(l);
                    3
                }
            };
            let nargs = match handed {
                Some(Scalar::Number(n)) => {
                    ffi::lua_pushnumber(l, n);
                    nargs + 1
                }
                Some(Scalar::Bool(b)) => {
                    ffi::lua_pushboolean(l, b as c_int);
                    nargs + 1
                }
                None => nargs,
            };
            let rc = ffi::lua_pcall(l, nargs, 1, 0);
            if rc == ffi::LUA_OK {
                let result = ffi::lua_tonumber(l, -1) as i32;
                ffi::lua_settop(l, top);
                return Ok(result);
            }
            // (no allocation: `step_function` made the slot)
            ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, STEP_ERROR_KEY.as_ptr());
            ffi::lua_settop(l, top);
            rc
        };
        let key = STEP_ERROR_KEY.to_str().unwrap_or_default();
        let error = lua.named_registry_value::<Value>(key);
        let _ = lua.set_named_registry_value(key, false);
        Err(match error {
            Ok(Value::Error(e)) => *e,
            Ok(Value::String(text)) if rc == ffi::LUA_ERRMEM => {
                mlua::Error::MemoryError(text.to_string_lossy())
            }
            Ok(Value::String(text)) => mlua::Error::RuntimeError(text.to_string_lossy()),
            Ok(other) => mlua::Error::RuntimeError(format!(
                "the scheduler step failed with a {} error value",
                other.type_name()
            )),
            Err(e) => e,
        })
    }
}

/// The rendezvous receipts the host took out of a VM's mailbox before its
/// step (`VmState::take_receipts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Receipts {
    None,
    /// The usual case: one (send id, delivered), handed to the step as
    /// two numbers (no call back into Rust to fetch it).
    One(u64, bool),
    /// Several: they wait in `VmState::receipts` for `rt.mailbox_poll`.
    Several,
}

/// How a VM's scheduler ended: `Ok(None)` normally, `Ok(Some(reported))`
/// when it ran out of memory (and whether the report got out), `Err` for a
/// failure of the runtime's own code.
pub(crate) type Ran = Result<Option<bool>, mlua::Error>;

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

/// The VM state. The app data holds it for `with_state`; the hottest `rt`
/// functions (`yield_op`, `sleep`, `turn`) hold it too and borrow it
/// directly, skipping the app-data lookup.
pub(crate) type SharedState = std::rc::Rc<RefCell<VmState>>;

pub(crate) fn with_state<R>(lua: &Lua, f: impl FnOnce(&mut VmState) -> R) -> mlua::Result<R> {
    if vm_closing(lua) {
        return Err(vm_closed_error());
    }
    let state = lua
        .try_app_data_ref::<SharedState>()
        .ok()
        .flatten()
        .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))?;
    borrow_state(&state, f)
}

/// `with_state` for a function that holds the state: it works without the
/// VM's handle (also while `lua_close` runs finalizers, where `ended` makes
/// it fail).
pub(crate) fn borrow_state<R>(
    state: &RefCell<VmState>,
    f: impl FnOnce(&mut VmState) -> R,
) -> mlua::Result<R> {
    // A finalizer that runs while another `rt` call holds the state (a GC
    // step inside that call) gets an error, not a panic.
    let mut st = state.try_borrow_mut().map_err(|_| {
        mlua::Error::runtime("luring: VM state is busy (runtime function called from a finalizer)")
    })?;
    if st.ended {
        return Err(vm_closed_error());
    }
    Ok(f(&mut st))
}

/// Writes `bytes` to fd 1 or 2 with plain `write` calls, outside the output
/// queue: for reports while the VM closes (the queue was drained), and for
/// output the queue had no memory for (after draining it). Waits for room
/// on a non-blocking stream; an error such as `EPIPE` (nobody reads) drops
/// the rest, the way a C program's output to a closed pipe is lost.
/// The runtime's reports (a fiber's panic, a deadlock, a VM closed for
/// memory) from an embedded runtime's actors go to the application's
/// `tracing` subscriber (target `luring::actor`, level ERROR), when it
/// installed a global one: stderr belongs to the application. True when
/// the report went there; else it goes to stderr as under `luring`.
fn report_to_host(text: &[u8]) -> bool {
    if !tracing::dispatcher::has_been_set()
        || !super::host::current_process().is_some_and(|p| p.embedded)
    {
        return false;
    }
    tracing::error!(target: "luring::actor", "{}", String::from_utf8_lossy(text).trim_end());
    true
}

fn write_direct(stream: StdStream, mut bytes: &[u8]) -> std::io::Result<()> {
    let fd = stream as RawFd;
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live slice; fd 1 and 2 stay open for the
        // program's life (they are borrowed, never closed by the runtime).
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 {
            bytes = &bytes[n as usize..];
            continue;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) => {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one live pollfd, count 1.
                unsafe { libc::poll(&mut pfd, 1, -1) };
            }
            _ => return Err(err),
        }
    }
    Ok(())
}

/// Submits one op on the VM's executor; Lua gets its id as a number.
pub(crate) fn submit_op(
    lua: &Lua,
    submit: impl FnOnce(&mut VmState) -> std::io::Result<OpId>,
) -> mlua::Result<f64> {
    with_state(lua, submit)?.map(OpId::to_f64).map_err(io_err)
}

/// The VM state held by a per-message primitive (socket recv and send, file
/// stream read and write), the
/// way `sleep` and `yield_op` hold it: `submit` skips the app-data lookup of
/// [`submit_op`]. Like them it reads no Lua handle itself and fails once the
/// VM `ended`.
#[derive(Clone)]
pub(crate) struct HeldState(SharedState);

impl HeldState {
    pub(crate) fn of(lua: &Lua) -> mlua::Result<Self> {
        lua.app_data_ref::<SharedState>()
            .map(|state| HeldState(state.clone()))
            .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))
    }

    /// [`submit_op`] on the held state.
    pub(crate) fn submit(
        &self,
        submit: impl FnOnce(&mut VmState) -> std::io::Result<OpId>,
    ) -> mlua::Result<f64> {
        borrow_state(&self.0, submit)?
            .map(OpId::to_f64)
            .map_err(io_err)
    }

    /// [`HeldState::submit`], and with `inline` (the scheduler allows it:
    /// lua/core/scheduler.lua `K.may_complete_inline`) an attempt to finish
    /// the op at once (`Executor::complete_inline`): returns its id and,
    /// when that worked, its result, which the caller then has instead of
    /// a wait. Not while the mailbox has news: a turn must see it first.
    pub(crate) fn submit_inline(
        &self,
        inline: bool,
        submit: impl FnOnce(&mut VmState) -> std::io::Result<OpId>,
    ) -> mlua::Result<(f64, Option<i32>)> {
        borrow_state(&self.0, |st| submit_maybe_inline(st, inline, submit))?
            .map(|(id, result)| (id.to_f64(), result))
            .map_err(io_err)
    }

    /// [`submit_read`] on the held state, maybe completed inline (see
    /// [`HeldState::submit_inline`]).
    pub(crate) fn read(
        &self,
        inline: bool,
        fd: &OpFd,
        span: byte_span::SpanRef,
    ) -> mlua::Result<(f64, Option<i32>)> {
        self.submit_inline(inline, |st| st.executor.read(fd, OpBuffer::Span(span)))
    }

    /// A ring write of a string (copied) or byte_span on the held state,
    /// maybe completed inline.
    pub(crate) fn write(
        &self,
        inline: bool,
        fd: &OpFd,
        buf: &Value,
    ) -> mlua::Result<(f64, Option<i32>)> {
        let buf = op_buffer(buf)?;
        self.submit_inline(inline, |st| {
            // Earlier print output goes first (the fd may be a copy of stdout).
            st.flush_stdout(false)?;
            st.executor.write(fd, buf)
        })
    }
}

/// Submits one op and, with `inline` (see [`HeldState::submit_inline`]),
/// tries to finish it at once: its id and, when that worked, its result.
#[inline(always)]
pub(crate) fn submit_maybe_inline(
    st: &mut VmState,
    inline: bool,
    submit: impl FnOnce(&mut VmState) -> std::io::Result<OpId>,
) -> std::io::Result<(OpId, Option<i32>)> {
    let id = submit(st)?;
    let result = if inline && !st.mailbox.is_pending() {
        st.executor.complete_inline(id)?
    } else {
        None
    };
    Ok((id, result))
}

/// Ring reads and writes for Rust modules (src/modules/): Lua gets the op
/// id to wait for. The op's slot holds a clone of `fd` and the buffer until
/// its completion.
pub(crate) fn submit_read(lua: &Lua, fd: &OpFd, span: byte_span::SpanRef) -> mlua::Result<f64> {
    submit_op(lua, |st| st.executor.read(fd, OpBuffer::Span(span)))
}

fn op_id(n: f64) -> mlua::Result<OpId> {
    OpId::from_f64(n).ok_or_else(|| error::einval(1))
}

pub(crate) fn io_err(e: std::io::Error) -> mlua::Error {
    if let Some(dropped) = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<CompletionsDropped>())
    {
        // Not a Lua-catchable I/O error: the VM cannot go on.
        return mlua::Error::runtime(format!("luring: {dropped}"));
    }
    ErrorCode::from_io(&e).into()
}

/// The errno names the runtime knows (`rt.errno`), with their values.
macro_rules! errnos {
    ($($name:ident),* $(,)?) => { &[$( (stringify!($name), libc::$name) ),*] };
}
const ERRNOS: &[(&str, i32)] = errnos!(
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

/// `rt.errno`: filled on first read of each name by a raw `__index`
/// (`errno_index`), so a VM keeps only the names its code used (every
/// name string and the 128-slot table were ~5 kB of each VM's heap); the
/// core code reads it as a plain table. A raw C function, so that a
/// finalizer running while the VM closes can still read it.
fn errno_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let mt = lua.create_table()?;
    // SAFETY: `errno_index` is a valid `lua_CFunction` that follows the
    // Lua C API protocol (see its SAFETY comment).
    mt.raw_set("__index", unsafe { lua.create_c_function(errno_index) }?)?;
    t.set_metatable(Some(mt))?;
    Ok(t)
}

/// `__index(t, name)` of `rt.errno`: the value of a known errno name (and
/// stored in `t`, so the next read is a plain one), else nil.
unsafe extern "C-unwind" fn errno_index(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by LuaJIT as `__index` with the table at 1 and the key
    // at 2; a string key's bytes stay valid while it is on the stack; the
    // pushes use the slots LuaJIT guarantees a C function (at most 3 here);
    // `lua_rawset` may raise "not enough memory", which unwinds through no
    // Rust frame that owns anything.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE || ffi::lua_type(l, 2) != ffi::LUA_TSTRING {
            return 0;
        }
        let mut len = 0;
        let ptr = ffi::lua_tolstring(l, 2, &mut len);
        let name = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
        let Some(&(_, value)) = ERRNOS.iter().find(|(n, _)| n.as_bytes() == name) else {
            return 0;
        };
        ffi::lua_pushvalue(l, 2);
        ffi::lua_pushinteger(l, value as ffi::lua_Integer);
        ffi::lua_rawset(l, 1);
        ffi::lua_pushinteger(l, value as ffi::lua_Integer);
        1
    }
}

/// The messages of the runtime's own error categories (errors.lua), by
/// code from 1: kept here rather than as Lua strings every VM would hold
/// (~5 kB of each VM's heap); a VM makes a message's string only when an
/// error is shown.
const CORE_MESSAGES: &[&str] = &[
    "Cannot have a module with this name",
    "Module not found",
    "The root module doesn't have a parent and can't reference one",
    "The module you're trying to import has a dependency on the current module (and it is partially loaded already)",
    "A leaf module cannot import child modules",
    "You can only import modules from the main fiber",
    "Bad root context",
    "Requested key wasn't found in the table/userdata",
    "The fiber coroutine is reserved to the scheduler",
    "Suspension already allowed",
    "Interrupt-ability already allowed",
    "EPERM within a forbid-suspend block",
    "Fiber interrupted",
    "scope_cleanup_pop() called w/o a matching scope_cleanup_push()",
    "Channel closed",
    "Broadcast the address before attempting to receive on it",
    "Lua code cannot import this module directly",
    "std::raise() failed",
    "Failed to parse RDF",
    "Parsed RDF doesn't contain a recognized Emilua module",
    "Parsed RDF module contains an invalid error category",
    "Broken promise",
    "Promise already satisfied",
    "Global _FILE is missing or invalid",
];
const JSON_DOM_MESSAGES: &[&str] = &[
    "ERANGE on json",
    "Too many levels",
    "Array too long",
    "Reference cycle exists",
];
/// Emilua's JSON lexer category (trial.protocol): a message for every code.
const JSON_SYNTAX_MESSAGES: &[&str] = &[
    "unexpected token",
    "invalid key",
    "invalid value",
    "incompatible type",
    "unbalanced end array bracket",
    "unbalanced end object bracket",
    "expected end array bracket",
    "expected end object bracket",
    "insufficient tokens",
];
const ASIO_MISC_MESSAGES: &[&str] = &[
    "Already open",
    "End of file",
    "Element not found",
    "The descriptor does not fit into the select call's fd_set",
];

/// `rt.error_text(category, code)`: the message of `code` in one of the
/// runtime's own categories, '' for a code without one (not an integer
/// from 1, or past the last). Reads only its arguments: it works in
/// finalizers while the VM closes too (reports call it then).
fn error_text(category: &[u8], code: f64) -> &'static str {
    let messages = match category {
        b"emilua.core" => CORE_MESSAGES,
        b"emilua.json.dom" => JSON_DOM_MESSAGES,
        b"trial.protocol.json" => JSON_SYNTAX_MESSAGES,
        b"asio.misc" => ASIO_MISC_MESSAGES,
        _ => return "",
    };
    if code.fract() != 0.0 || !(1.0..=messages.len() as f64).contains(&code) {
        return "";
    }
    messages[code as usize - 1]
}

/// `rt.errno_names()`: every known errno name and its value, in a new
/// table (the generic_error module is built from it).
fn add_errno_names_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    rt.set(
        "errno_names",
        lua.create_function(unless_closing(|lua, ()| {
            let t = lua.create_table_with_capacity(0, ERRNOS.len())?;
            for &(name, value) in ERRNOS {
                t.raw_set(name, value)?;
            }
            Ok(t)
        }))?,
    )
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

/// Builds the `rt` table of Rust functions the core Lua code calls.
fn make_rt(lua: &Lua) -> mlua::Result<Table> {
    let state: SharedState = lua
        .app_data_ref::<SharedState>()
        .map(|state| state.clone())
        .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))?;
    let held_for_channels = state.clone();
    let rt = lua.create_table()?;
    rt.set("errno", errno_table(lua)?)?;
    rt.set(
        "strerror",
        lua.create_function(|_, code: i32| Ok(error::strerror(code)))?,
    )?;
    rt.set("decode_error", lua.create_function(error::decode)?)?;
    rt.set(
        "error_text",
        lua.create_function(|_, (category, code): (mlua::BString, f64)| {
            Ok(error_text(&category, code))
        })?,
    )?;
    rt.set(
        "cancel",
        lua.create_function(|lua, id: f64| {
            let id = op_id(id)?;
            with_state(lua, |st| st.executor.cancel(id))?.map_err(io_err)
        })?,
    )?;
    // turn(block, nop, receiving) -> n, id1, result1, nop_id, host_wanted, relays, handed:
    // one turn of the ring
    // (`Executor::turn`), n completions. With `nop` it first queues one
    // IORING_OP_NOP (`nop_id`, submitted by the same io_uring_enter): the
    // scheduler's group of sleep(0) waiters wakes on its completion.
    // `host_wanted`: the mailbox was touched or the thread host has work
    // (`host::host_has_work`): a step must return to the host now.
    // `relays`: sandboxes whose frames this ring still reads (their ops
    // are handled here, in Rust; a fiber waiting for a message needs turns).
    // `receiving`: a fiber waits in the inbox's receive; then a sandbox's
    // frame to it may come back as `handed` instead of being posted
    // (ring_relay.rs `HandOver`), for the scheduler to give it that fiber.
    // The first completion comes back as return values (one is the
    // common case, and returning it is cheaper than storing it); those after
    // it are in `rt.completions`: id at [2i - 1], result at [2i] for i = 2..n
    // (in a VM with a completion array, the first 255 of them are there
    // instead, as `write_completion_array` says).
    // A result is the CQE's result, or for an op that opened an fd, the fd
    // object (an opened fd reaches Lua only as an owned object), or for a
    // blocking-pool job the Lua value of its output.
    let completions = lua.create_table()?;
    rt.set("completions", &completions)?;
    // The vector completions are reaped into, kept for its capacity. (A
    // `turn` reached from a finalizer run by this one gets a new one.)
    let reaped_buffer = std::cell::Cell::new(Reaped::default());
    rt.set(
        "turn",
        lua.create_function(
            move |lua, (block, nop, receiving): (bool, bool, Option<bool>)| {
                // It stores Lua values below: never while the VM closes.
                if vm_closing(lua) {
                    return Err(vm_closed_error());
                }
                let mut reaped = reaped_buffer.take();
                let mut hand =
                    crate::actor::sandboxed::ring_relay::HandOver::new(receiving == Some(true));
                let (nop_id, mailbox_touched, relays, array) = borrow_state(&state, |st| {
                    let nop_id = if nop {
                        Some(st.executor.yield_now()?)
                    } else {
                        None
                    };
                    if block {
                        st.flush_stdout(false)?;
                    }
                    // Sandbox frames (ring_relay.rs): the next read goes out
                    // with this turn; their completions never reach Lua.
                    st.relays.before_turn(&mut st.executor);
                    st.executor.turn(block, &mut reaped)?;
                    st.relays
                        .after_turn(&mut st.executor, &mut reaped.completions, &mut hand);
                    // (numbers only: nothing here can run Lua)
                    let array = match st.completion_array.as_mut() {
                        Some((arr, true)) => write_completion_array(arr, &reaped.completions),
                        _ => (0, false),
                    };
                    Ok::<_, std::io::Error>((
                        nop_id,
                        st.mailbox.is_pending(),
                        st.relays.active(),
                        array,
                    ))
                })?
                .map_err(io_err)?;
                let (in_array, marked) = array;
                // No borrow of the state is held from here on: creating Lua
                // values may run finalizers, which may call `rt` functions.
                // Plain results (numbers: every socket, file and timer op)
                // after the first go into `rt.completions` through the C API
                // in one protected call: mlua's `raw_set` per value cost ~420
                // instructions each, ~1,700 per echoed message
                // (docs/performance.md "echo-ffi"). Richer results follow.
                // Those the completion array took are skipped (-17% of
                // this path's instructions per echoed message again:
                // docs/performance.md "echo-kern").
                let plain = |c: &Completion| c.fd.is_none() && c.output.is_none();
                if reaped.completions.iter().skip(in_array.max(1)).any(plain) {
                    let list = &reaped.completions;
                    // SAFETY: `exec_raw` pushes `completions` (stack: [t])
                    // and runs this in protected mode (a failed table resize
                    // raises a memory error it turns into `Err`); each push
                    // is popped by the `lua_rawseti` right after it.
                    unsafe {
                        lua.exec_raw::<()>(&completions, |l| {
                            for (i, c) in list.iter().enumerate().skip(in_array.max(1)) {
                                if !plain(c) {
                                    continue;
                                }
                                let k = (2 * i + 1) as ffi::lua_Integer;
                                ffi::lua_pushnumber(l, c.id.to_f64());
                                ffi::lua_rawseti(l, 1, k);
                                ffi::lua_pushnumber(l, f64::from(c.result));
                                ffi::lua_rawseti(l, 1, k + 1);
                            }
                        })?;
                    }
                }
                let mut first = (Value::Nil, Value::Nil);
                // Past the first, only non-plain completions are built
                // here: when the array took every other one as plain,
                // the first is all there is to look at.
                let n = reaped.completions.len();
                let scan = if marked || n > in_array.max(1) {
                    n
                } else {
                    n.min(1)
                };
                for (i, c) in reaped.completions[..scan].iter_mut().enumerate() {
                    if i > 0 && plain(c) {
                        continue;
                    }
                    // (a non-plain completion is always in the table: the
                    // array says so with -1)
                    let id = Value::Number(c.id.to_f64());
                    let result = match (c.fd.take(), c.output.take()) {
                        (Some(fd), _) => Value::UserData(push_fd(lua, OpFd::owned(fd))?),
                        // io-fs: a blocking-pool job's output.
                        // A failure to build it fails that op only: the other
                        // completions of this turn must still be delivered.
                        (None, Some(output)) => {
                            crate::modules::io_object::job_output_to_lua(lua, output)
                                .unwrap_or_else(|e| {
                                    tracing::warn!(error = %e, "blocking job output not delivered");
                                    Value::Integer(i64::from(-libc::ENOMEM))
                                })
                        }
                        (None, None) => Value::Integer(c.result.into()),
                    };
                    if i == 0 {
                        first = (id, result);
                    } else {
                        completions.raw_set(2 * i + 1, id)?;
                        completions.raw_set(2 * i + 2, result)?;
                    }
                }
                reaped.completions.clear();
                reaped_buffer.set(reaped);
                let host_wanted = mailbox_touched || crate::actor::host::host_has_work();
                // (only numbers and booleans are handed over: pushing them
                // allocates nothing, so the value cannot be lost on the way)
                let handed = match hand.take() {
                    Some(Message::Bool(b)) => Value::Boolean(b),
                    Some(Message::Number(x)) => Value::Number(x),
                    _ => Value::Nil,
                };
                Ok((
                    n,
                    first.0,
                    first.1,
                    nop_id.map(OpId::to_f64),
                    host_wanted,
                    relays,
                    handed,
                ))
            },
        )?,
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
                // Big output skips the print buffer (copying it there would
                // not save a write), and so does output the buffer has no
                // memory for: it goes to the queue after what is buffered.
                if bytes.len() >= STDOUT_BUFFER_LIMIT || st.stdout.try_reserve(bytes.len()).is_err()
                {
                    st.flush_stdout(false)?;
                    st.write_stream(StdStream::Out, &bytes, true)?;
                } else {
                    st.stdout.extend_from_slice(&bytes);
                }
                if st.stdout_is_tty {
                    // Line-buffered like C's stdout on a terminal: the line
                    // is written before print returns (only a terminal can
                    // stall this; a pipe never does).
                    st.finish_output()
                } else if st.stdout.len() >= STDOUT_BUFFER_LIMIT {
                    st.flush_stdout(true)
                } else {
                    Ok(())
                }
            })?
            .map_err(io_err)
        })?,
    )?;
    rt.set(
        "stderr_write",
        // `BString` is read straight off the Lua stack, which also works in
        // a finalizer run while the VM closes (a string handle would not).
        lua.create_function(|lua, s: mlua::BString| {
            if report_to_host(&s) {
                return Ok(());
            }
            if vm_closing(lua) {
                // The queue was drained when the VM ended; a lost report
                // (EPIPE) is lost as in C.
                let _ = write_direct(StdStream::Err, &s);
                return Ok(());
            }
            let queued = with_state(lua, |st| {
                st.flush_stdout(false)?;
                st.write_stream(StdStream::Err, &s, true)
            });
            match queued {
                Ok(result) => result.map_err(io_err),
                // The VM has ended (finalizers run by `lua_close`), or a
                // finalizer inside another `rt`
                // call (the state is borrowed): the report still gets out.
                Err(_) => {
                    let _ = write_direct(StdStream::Err, &s);
                    Ok(())
                }
            }
        })?,
    )?;
    super::channels::add_rt(lua, &rt, &held_for_channels)?;
    // Read by lua/core/modules.lua at boot (the module-file functions
    // themselves are lazy).
    rt.set("max_code_bytes", super::module_files::MAX_CODE_BYTES)?;
    rt.set("statx_size", std::mem::size_of::<libc::statx>())?;
    rt.set(
        "set_builtin_loader",
        lua.create_function(|lua, loader: mlua::Function| {
            lua.set_named_registry_value(crate::modules::ip::BUILTIN_LOADER, loader)
        })?,
    )?;
    // Fiber events for LURING_LOG; the Lua side calls this only when
    // `rt.log_enabled` is true.
    rt.set(
        "log_enabled",
        tracing::enabled!(target: "luring::fiber", tracing::Level::DEBUG),
    )?;
    set_lazy_rt(lua, &rt)?;
    Ok(rt)
}

/// A group of `rt` entries built together on the first read of any of
/// them (`LAZY_RT`).
struct LazyRt {
    /// Exactly the names `add` sets (checked by a test).
    names: &'static [&'static str],
    add: fn(&Lua, &Table) -> mlua::Result<()>,
}

/// The `rt` entries most VMs never use (spawning, sandboxes, module
/// files, timers, the standard streams as objects, process exit): each
/// mlua function costs a VM about 200 bytes of heap plus a Rust box, and
/// its boot about a microsecond. They are built when the core code first
/// reads one (`rt.<name>` through `__index`); what boot itself reads stays
/// eager. Not lazy: everything a finalizer may call while the VM closes
/// (`stderr_write`, `strerror`, `decode_error`): nothing can be built then.
const LAZY_RT: &[LazyRt] = &[
    LazyRt {
        names: &["sleep", "yield_op", "sleep_until"],
        add: add_timer_rt,
    },
    LazyRt {
        names: &[
            "environment",
            "core_chunk",
            "set_exit",
            "quick_exit",
            "abort",
            "log",
        ],
        add: add_process_rt,
    },
    LazyRt {
        names: &["errno_names"],
        add: add_errno_names_rt,
    },
    LazyRt {
        names: &["read_entry", "open_module", "statx", "stat_info"],
        add: add_module_file_rt,
    },
    LazyRt {
        names: &[
            "stdio_fd", "read", "read_at", "open", "close", "write", "isatty",
        ],
        add: crate::modules::stdio::add_rt,
    },
    LazyRt {
        names: &["host_module"],
        add: crate::embed::module::add_rt,
    },
    LazyRt {
        names: &["spawn_vm"],
        add: super::host::add_rt,
    },
    LazyRt {
        names: &["control_prepare", "control_recv", "control_decode"],
        add: super::sandboxed::add_rt,
    },
    LazyRt {
        names: &[
            "set_sandbox_methods",
            "spawn_sandboxed",
            "sandbox_send",
            "sandbox_clear_slots",
            "sandbox_revoke_routes",
            "sandbox_close",
            "sandbox_kill",
            "sandbox_detach",
            "sandbox_child_pid",
        ],
        add: super::sandboxed::add_host_rt,
    },
];

/// Gives `rt` the `__index` that builds a `LAZY_RT` group on first use;
/// any other missing name reads as nil, as before.
fn set_lazy_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    let index = lua.create_function(|lua, (rt, name): (Table, Value)| {
        let Value::String(name) = name else {
            return Ok(Value::Nil);
        };
        let group = LAZY_RT
            .iter()
            .find(|group| group.names.iter().any(|n| name.as_bytes() == n.as_bytes()));
        let Some(group) = group else {
            return Ok(Value::Nil);
        };
        // Building Lua values needs mlua's handle to the VM.
        if vm_closing(lua) {
            return Err(vm_closed_error());
        }
        (group.add)(lua, &rt)?;
        rt.raw_get(name)
    })?;
    let mt = lua.create_table()?;
    mt.raw_set("__index", index)?;
    rt.set_metatable(Some(mt))?;
    Ok(())
}

/// `rt.sleep`, `rt.yield_op`, `rt.sleep_until` (lazy: `LAZY_RT`). The
/// first two hold the VM state (they skip the app-data lookup).
fn add_timer_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    let state = HeldState::of(lua)?.0;
    let held = state.clone();
    rt.set(
        "sleep",
        lua.create_function(move |_, ns: f64| {
            borrow_state(&held, |st| st.executor.sleep(ns as u64))?
                .map(OpId::to_f64)
                .map_err(io_err)
        })?,
    )?;
    let held = state.clone();
    rt.set(
        "yield_op",
        lua.create_function(move |_, ()| {
            borrow_state(&held, |st| st.executor.yield_now())?
                .map(OpId::to_f64)
                .map_err(io_err)
        })?,
    )?;
    rt.set(
        "sleep_until",
        lua.create_function(|lua, (ns, realtime): (f64, bool)| {
            submit_op(lua, |st| st.executor.sleep_until(ns as u64, realtime))
        })?,
    )?;
    Ok(())
}

/// The rarely used process functions of `rt` (lazy: `LAZY_RT`).
fn add_process_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    // environment() -> a new table of the process's environment variables
    rt.set(
        "environment",
        lua.create_function(unless_closing(|lua, ()| {
            let env = lua.create_table()?;
            for (k, v) in std::env::vars_os() {
                env.raw_set(
                    lua.create_string(k.as_encoded_bytes())?,
                    lua.create_string(v.as_encoded_bytes())?,
                )?;
            }
            Ok(env)
        }))?,
    )?;
    // core_chunk(name, env) -> the main function of the lazy core chunk
    // `name` (crate::fiber::LAZY_CORE_CHUNKS), with function environment
    // `env` (the runtime's globals).
    rt.set(
        "core_chunk",
        lua.create_function(unless_closing(
            |lua, (name, env): (mlua::BString, Table)| {
                let chunk = crate::fiber::LAZY_CORE_CHUNKS
                    .iter()
                    .find(|c| c.name.as_bytes() == name.as_slice())
                    .ok_or_else(|| error::einval(1))?;
                chunk.load_with(lua, Some(&env))
            },
        ))?,
    )?;
    rt.set(
        "set_exit",
        lua.create_function(|lua, code: i32| with_state(lua, |st| st.exit_code = Some(code)))?,
    )?;
    // quick_exit(code) and abort() end the host process, except in an
    // embedding application (`Runtime::builder`): there they return (abort
    // with exit code 134, as 128 + SIGABRT) and system.exit ends the
    // runtime like a plain exit, reported to the application.
    rt.set(
        "quick_exit",
        lua.create_function(|lua, code: i32| -> mlua::Result<()> {
            // Output that cannot be written is lost, as on any exit.
            let _ = with_state(lua, VmState::finish_output)?;
            if embedded() {
                return Ok(());
            }
            std::process::exit(code)
        })?,
    )?;
    rt.set(
        "abort",
        lua.create_function(|lua, ()| -> mlua::Result<i32> {
            let _ = with_state(lua, VmState::finish_output)?;
            if embedded() {
                return Ok(EMBEDDED_ABORT_CODE);
            }
            std::process::abort()
        })?,
    )?;
    rt.set(
        "log",
        lua.create_function(|_, (event, fiber, detail): (String, String, Option<String>)| {
            tracing::debug!(target: "luring::fiber", fiber = %fiber, detail = detail.as_deref().unwrap_or(""), "{event}");
            Ok(())
        })?,
    )?;
    Ok(())
}

/// The rt functions of the module loader (lua/core/modules.lua): the entry
/// script is read before the scheduler starts; modules with ring ops
/// beneath the import root (see `module_files`).
fn add_module_file_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    use super::module_files::{self, FileInfo};
    // read_entry(absolute path) -> source, identity | nil, reason
    rt.set(
        "read_entry",
        lua.create_function(unless_closing(|lua, path: mlua::LuaString| {
            let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&path.as_bytes()));
            match module_files::read_entry(&path) {
                Ok(entry) => {
                    with_state(lua, |st| {
                        st.import_root = Some(std::sync::Arc::new(entry.root))
                    })?;
                    Ok((
                        Value::String(lua.create_string(&entry.source)?),
                        Value::String(lua.create_string(&entry.identity)?),
                    ))
                }
                Err(e) => Ok((Value::Nil, Value::String(lua.create_string(e.to_string())?))),
            }
        }))?,
    )?;
    // open_module(path relative to the import root) -> op id; the result is
    // an fd object or -errno (EXDEV: the path leads outside the root).
    rt.set(
        "open_module",
        lua.create_function(unless_closing(|lua, path: mlua::LuaString| {
            let path =
                std::ffi::CString::new(path.as_bytes().to_vec()).map_err(|_| error::einval(1))?;
            submit_op(lua, |st| {
                // A sandboxed VM has no import root and no file access.
                let no_root = if st.executor.is_fixed_only() {
                    libc::EPERM
                } else {
                    libc::EBADF
                };
                let root = st
                    .import_root
                    .clone()
                    .ok_or_else(|| std::io::Error::from_raw_os_error(no_root))?;
                st.executor.open_beneath(
                    &OpFd::Shared(root),
                    path,
                    module_files::CODE_OPEN_FLAGS,
                    module_files::MODULE_RESOLVE,
                )
            })
        }))?,
    )?;
    // statx(fd object, byte_span of rt.statx_size bytes) -> op id
    rt.set(
        "statx",
        lua.create_function(unless_closing(|lua, (fd, buf): (Value, Value)| {
            let fd = fd_arg(&fd)?;
            let span = byte_span::span_arg(&buf, 2)?;
            submit_op(lua, |st| {
                st.executor.statx_fd(&fd, span, module_files::STATX_MASK)
            })
        }))?,
    )?;
    // stat_info(byte_span filled by statx) -> kind, size, identity
    rt.set(
        "stat_info",
        lua.create_function(unless_closing(|_, buf: Value| {
            let span = byte_span::span_arg(&buf, 1)?;
            let info =
                FileInfo::from_statx_bytes(&span.to_vec()).ok_or_else(|| error::einval(1))?;
            Ok((info.kind.name(), info.size as f64, info.identity))
        }))?,
    )?;
    Ok(())
}

/// One garbage-collection cycle, from marking the roots to the end of the
/// sweep: with the collector idle between cycles (stopped during boot, or
/// just done with one), a full collection. LuaJIT's `collectgarbage()`
/// (`lj_gc_fullgc`) first sweeps every object and string chain once "in
/// case a cycle was caught in the middle", which from an idle collector
/// frees nothing and was a third of its cost; here the cycle is run
/// through `LUA_GCSTEP` with a debt that never runs out before the cycle
/// ends. (Caught mid-cycle, this finishes that cycle: what became garbage
/// after its marking stays until the next one.) Like `lj_gc_fullgc`, it
/// leaves the collector running with its threshold at `pause` times the
/// live heap.
///
/// Called through `lua_cpcall` directly, not mlua's `exec_raw`: on a state
/// with this runtime's allocator, each `exec_raw` costs a `lua_cpcall` of
/// mlua's own to make its two C closures (garbage) before its `lua_pcall`.
///
/// # Safety
/// `state` is a VM's main state on this thread, with no Lua code running
/// on it (boot, a worker's start, the host between steps).
pub(crate) unsafe fn collect_cycle(state: *mut ffi::lua_State) -> mlua::Result<()> {
    unsafe extern "C-unwind" fn cycle(state: *mut ffi::lua_State) -> c_int {
        // SAFETY: called by `lua_cpcall` on the caller's live state;
        // `lua_gc` touches only the collector (finalizers run protected
        // inside it, as in a full collection).
        unsafe {
            // A step that stopped short for want of debt returns 0: call
            // again until one reports the cycle finished.
            while ffi::lua_gc(state, ffi::LUA_GCSTEP, c_int::MAX) == 0 {}
        }
        0
    }
    // SAFETY: as the caller's; `lua_cpcall` runs `cycle` in protected mode
    // and leaves an error's value on the stack, which is taken off.
    unsafe {
        match ffi::lua_cpcall(state, cycle, std::ptr::null_mut()) {
            ffi::LUA_OK => Ok(()),
            code => {
                let error = if code == ffi::LUA_ERRMEM {
                    mlua::Error::MemoryError("not enough memory".into())
                } else {
                    let mut len = 0;
                    let text = ffi::lua_tolstring(state, -1, &mut len);
                    let text = if text.is_null() {
                        "luring: the collector failed".into()
                    } else {
                        String::from_utf8_lossy(std::slice::from_raw_parts(text.cast(), len))
                            .into_owned()
                    };
                    mlua::Error::runtime(text)
                };
                ffi::lua_pop(state, 1);
                Err(error)
            }
        }
    }
}

/// A registry reference (`luaL_ref`) to `f`, for raw calls.
fn keep_in_registry(lua: &Lua, f: Function) -> mlua::Result<c_int> {
    let mut reference = None;
    // SAFETY: `exec_raw` runs the closure in a protected call on the live
    // state with `f` pushed; `luaL_ref` pops it into the registry (it may
    // raise out of memory: protected).
    unsafe {
        lua.exec_raw::<()>(f, |state| {
            reference = Some(ffi::luaL_ref(state, ffi::LUA_REGISTRYINDEX));
        })
    }?;
    reference.ok_or_else(|| mlua::Error::runtime("luring: a registry reference was not made"))
}

/// Whether a start reads and fills the process's cache of compiled worker
/// modules (src/actor/compiled_modules.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModuleCache {
    /// Always parse (a sandboxed actor: one start per process).
    Off,
    /// Load cached bytecode on a hit; on a miss parse and add nothing (a
    /// VM with a memory limit: the dump's buffer counts against it, and
    /// the spawn must not fail for the cache's sake).
    Use,
    /// Load cached bytecode on a hit; on a miss parse, dump, add it.
    UseAndFill,
}

/// How [`Vm::finish_start`] went.
#[derive(Debug)]
enum Started {
    /// The module was parsed from its text: the parser's garbage is left.
    Parsed,
    /// The module was loaded from this process's cached bytecode.
    FromBytecode,
    /// The module does not compile: the text `load` would give.
    CompileError(String),
}

/// What [`Vm::finish_start`] hands `finish_call`.
struct FinishCall<'a> {
    prepare_worker: c_int,
    src: &'a [u8],
    /// NUL-terminated.
    chunk_name: &'a [u8],
    identity: &'a [u8],
    path: &'a [u8],
    display: &'a [u8],
    root: &'a [u8],
    display_root: &'a [u8],
    is_init: bool,
    /// Bytecode this process compiled from `src` before
    /// (`compiled_modules`): loaded instead of parsing `src`.
    bytecode: Option<&'a [u8]>,
    /// `Some`: `src` is to be dumped here once compiled, for the cache.
    dump: Option<Vec<u8>>,
    /// The module's compile error, when it has one.
    compile_error: Option<String>,
}

/// `lua_dump`'s writer: appends to the `Vec<u8>` at `buffer`.
unsafe extern "C-unwind" fn append_dump(
    _state: *mut ffi::lua_State,
    bytes: *const std::ffi::c_void,
    len: usize,
    buffer: *mut std::ffi::c_void,
) -> c_int {
    // SAFETY: `finish_call` passes its `FinishCall::dump`, alive and not
    // otherwise borrowed during `lua_dump`; LuaJIT passes `len` readable
    // bytes at `bytes`.
    unsafe {
        let buffer = &mut *buffer.cast::<Vec<u8>>();
        buffer.extend_from_slice(std::slice::from_raw_parts(bytes.cast::<u8>(), len));
    }
    0
}

unsafe extern "C" {
    // LuaJIT's own (lj_load.c): mlua-sys's wrapper of the same name checks
    // the mode itself, with its own error text; this one gives the text
    // `load` gives (`raw_load`, lua/core/modules.lua).
    #[link_name = "luaL_loadbufferx"]
    fn lj_loadbufferx(
        state: *mut ffi::lua_State,
        buf: *const std::ffi::c_char,
        size: usize,
        name: *const std::ffi::c_char,
        mode: *const std::ffi::c_char,
    ) -> c_int;
}

/// The string on the top of the stack (an error value), lossily.
///
/// # Safety
/// `state` is a live state on this thread.
unsafe fn lossy_top(state: *mut ffi::lua_State) -> String {
    // SAFETY: as the caller's; the bytes stay valid while the value is
    // on the stack, and are copied before it is taken off.
    unsafe {
        let mut len = 0;
        let text = ffi::lua_tolstring(state, -1, &mut len);
        if text.is_null() {
            "luring: the start failed".into()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(text.cast(), len)).into_owned()
        }
    }
}

/// `dirname` of lua/core/modules.lua: what comes before the last `/`, or
/// `none` (`.` for a path, `` for a display path) without one.
fn dir_of<'a>(path: &'a [u8], none: &'a [u8]) -> &'a [u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(slash) => &path[..slash],
        None => none,
    }
}

unsafe extern "C-unwind" fn finish_call(state: *mut ffi::lua_State) -> c_int {
    /// `t[key] = value` for the table at `t` and the value on the top.
    ///
    /// # Safety
    /// As `finish_call`'s; `t` is an absolute index of a table.
    unsafe fn set(state: *mut ffi::lua_State, t: c_int, key: &std::ffi::CStr) {
        // SAFETY: as the caller's; `lua_rawset` pops key and value.
        unsafe {
            ffi::lua_pushstring(state, key.as_ptr());
            ffi::lua_insert(state, -2);
            ffi::lua_rawset(state, t);
        }
    }
    /// Pushes `bytes` as a Lua string.
    ///
    /// # Safety
    /// As `finish_call`'s.
    unsafe fn push(state: *mut ffi::lua_State, bytes: &[u8]) {
        // SAFETY: as the caller's.
        unsafe { ffi::lua_pushlstring(state, bytes.as_ptr().cast(), bytes.len()) };
    }
    // SAFETY: called by `lua_cpcall` (`Vm::finish_start`) with a live
    // `FinishCall` as its light userdata (index 1) and LUA_MINSTACK free
    // slots, of which this uses at most 13 (1 + info + 7 results + the
    // module + 3); the registry reference is the one `Vm::new` made to
    // `K.prepare_worker`; no table written here has a metatable a raw
    // access would skip (`K.file_path` is called as a function); the byte
    // slices outlive the call; the bytes loaded as binary are this
    // process's own dump (`compiled_modules`); an error (out of memory)
    // unwinds to `lua_cpcall` through no Rust frame that owns anything
    // (the dump's buffer is `FinishCall`'s, owned by `finish_start`).
    unsafe {
        let call = &mut *ffi::lua_touserdata(state, 1).cast::<FinishCall>();
        // The module's info (2), made here with its fields: as a table
        // constructor in `K.prepare_worker` it would keep a template table
        // in every VM.
        let info = 2;
        ffi::lua_createtable(state, 0, 6);
        push(state, call.root);
        set(state, info, c"root");
        push(state, call.display_root);
        set(state, info, c"display_root");
        push(state, dir_of(call.path, b"."));
        set(state, info, c"dir");
        push(state, dir_of(call.display, b""));
        set(state, info, c"display_dir");
        ffi::lua_pushboolean(state, c_int::from(!call.is_init));
        set(state, info, c"leaf");
        ffi::lua_pushboolean(state, 0);
        set(state, info, c"is_root");
        ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, call.prepare_worker.into());
        ffi::lua_pushvalue(state, info);
        ffi::lua_call(state, 1, 7);
        // 3..9: what `K.prepare_worker` returned
        let (env, mf, w1, module_of_env, loaded, identity_of, file_path) = (3, 4, 5, 6, 7, 8, 9);
        let module = 10;
        // Binary only for bytes this process dumped itself from the same
        // source and name (`compiled_modules`' invariant); `src` as text.
        let (bytes, mode) = match call.bytecode {
            Some(bytecode) => (bytecode, c"b"),
            None => (call.src, c"t"),
        };
        let status = lj_loadbufferx(
            state,
            bytes.as_ptr().cast(),
            bytes.len(),
            call.chunk_name.as_ptr().cast(),
            mode.as_ptr(),
        );
        if status != ffi::LUA_OK {
            call.compile_error = Some(lossy_top(state));
            return 0;
        }
        if let Some(buffer) = call.dump.as_mut() {
            // Not stripped: the cached module keeps its line numbers.
            let buffer: *mut Vec<u8> = buffer;
            if ffi::lua_dump_(state, append_dump, buffer.cast()) != 0 {
                call.dump = None;
            }
        }
        ffi::lua_pushvalue(state, env);
        ffi::lua_setfenv(state, module);
        // mf[W1] = the module's function: the main fiber's job
        ffi::lua_pushvalue(state, w1);
        ffi::lua_pushvalue(state, module);
        ffi::lua_rawset(state, mf);
        // env._FILE = K.file_path(path)
        ffi::lua_pushvalue(state, file_path);
        push(state, call.path);
        ffi::lua_call(state, 1, 1);
        set(state, env, c"_FILE");
        // loaded[identity] = 'loading'
        push(state, call.identity);
        ffi::lua_pushstring(state, c"loading".as_ptr());
        ffi::lua_rawset(state, loaded);
        // identity_of[path below the root] = identity
        push(
            state,
            call.path.get(call.root.len() + 1..).unwrap_or_default(),
        );
        push(state, call.identity);
        ffi::lua_rawset(state, identity_of);
        // module_of_env[env] = { info = info, path = path, display = display }
        ffi::lua_pushvalue(state, env);
        ffi::lua_createtable(state, 0, 3);
        let rec = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, info);
        set(state, rec, c"info");
        push(state, call.path);
        set(state, rec, c"path");
        push(state, call.display);
        set(state, rec, c"display");
        ffi::lua_rawset(state, module_of_env);
        ffi::lua_settop(state, 1);
    }
    0
}

/// About how many keys `K` holds once a worker has started (88 on
/// 2026-12-04; `k_fits_its_presized_hash` keeps it between 64 and 128, the
/// hash size this asks for).
const K_KEYS: usize = 88;

unsafe extern "C" {
    // LuaJIT's own resize of its string interning table (lj_str.c; linked
    // statically, like `lj_vm_cpuid` in src/actor/cpuid.rs). It does nothing
    // during the collector's string sweep; it raises on allocation failure.
    fn lj_str_resize(state: *mut ffi::lua_State, newmask: u32);
}

/// The string table's size from a VM's creation: boot's peak of strings
/// (~500, garbage included; 2026-12-04) fits it, so the table never grows
/// during boot. 1,024 slots until then (when boot peaked above 512): each
/// of boot's two collections swept every slot, one collector step each;
/// half the slots take ~76K instructions (5%) off a boot
/// (docs/performance.md "spawnboot"). A boot that interns more grows it
/// back to 1,024 at its 513th string (the test
/// `boot_fits_its_strings_in_a_512_slot_table` says when).
const STRING_TABLE_SLOTS: u32 = 512;

/// The string table's size once a worker has started and collected its
/// start's garbage: ~500 strings stay live then (docs/performance.md
/// "rss-str"), so half the booted table holds them: -4 kB per idle actor.
const STARTED_STRING_TABLE_SLOTS: u32 = 512;

unsafe extern "C-unwind" fn resize_string_table(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by `lua_cpcall` on a live state, with the slot count
    // as its light userdata argument (index 1); `lua_cpcall` catches the
    // allocation error `lj_str_resize` may raise.
    unsafe {
        let slots = ffi::lua_touserdata(state, 1) as usize as u32;
        lj_str_resize(state, slots - 1);
    }
    0
}

/// Gives a new state's string table its booted size at once: it grew
/// 256 -> 512 (-> 1,024, when boot interned more) slots during boot,
/// each time rehashing every string and leaving the old table to the
/// allocator. -2% CPU per spawn, RSS unchanged (docs/performance.md
/// "rss150c"). A failure leaves the table to grow as before.
///
/// # Safety
/// `state` is a live Lua state on this thread, with no Lua code running.
unsafe fn presize_string_table(state: *mut ffi::lua_State) {
    // SAFETY: as the caller's.
    unsafe { set_string_table_slots(state, STRING_TABLE_SLOTS) }
}

/// Resizes the string table to `slots` (a power of two). More strings than
/// slots is still correct (LuaJIT chains them, and grows the table again
/// at its next new string); a failure leaves the table as it was.
///
/// # Safety
/// `state` is a live Lua state on this thread, with no Lua code running.
unsafe fn set_string_table_slots(state: *mut ffi::lua_State, slots: u32) {
    // SAFETY: `lua_cpcall` runs the C function in protected mode on the
    // caller's live state, with `slots` as a light userdata (an integer,
    // never dereferenced); an error it leaves on the stack is popped.
    unsafe {
        let ud = slots as usize as *mut std::ffi::c_void;
        if ffi::lua_cpcall(state, resize_string_table, ud) != 0 {
            ffi::lua_pop(state, 1);
        }
    }
}

/// The standard libraries a VM opens besides the base library (which mlua
/// opened with the state; in LuaJIT it brings `coroutine` too), in mlua's
/// order. `debug` is for the runtime's own Lua code, which captures what it
/// needs; it is removed from the globals before any user code runs and
/// user environments never include it. `ffi` is not opened at all, nor are
/// `io` and `package`: nothing uses them (boot removed them from the
/// globals anyway), and every VM paid for them.
const LIBRARIES: [(&std::ffi::CStr, ffi::lua_CFunction); 7] = [
    (c"table", ffi::luaopen_table),
    (c"os", ffi::luaopen_os),
    (c"string", ffi::luaopen_string),
    (c"bit", ffi::luaopen_bit),
    (c"math", ffi::luaopen_math),
    (c"debug", ffi::luaopen_debug),
    (c"jit", ffi::luaopen_jit),
];

/// Opens `LIBRARIES` the way LuaJIT's `luaL_openlibs` does: each opener
/// called with its name, which registers the library as a global and in
/// `_LOADED`. (mlua's `load_std_libs` wraps each in a protected call of
/// its own and registers it once more (`luaL_requiref`): two new C
/// closures per library: 1.6% of a boot's instructions, callgrind.)
///
/// # Safety
/// `state` is a live Lua state on this thread, inside a protected call.
unsafe fn open_libraries(state: *mut ffi::lua_State) {
    for (name, open) in LIBRARIES {
        // SAFETY: as the caller's; a C function gets LUA_MINSTACK free
        // slots, of which this uses two at a time.
        unsafe {
            ffi::lua_pushcfunction(state, open);
            ffi::lua_pushstring(state, name.as_ptr());
            ffi::lua_call(state, 1, 0);
        }
    }
}

impl Vm {
    /// Creates the VM and runs the core Lua code; no user code runs yet.
    pub fn new() -> Result<Self, RuntimeError> {
        Self::with_executor(Executor::new().map_err(RuntimeError::Ring)?)
    }

    /// [`Vm::new`] on a given executor (a sandboxed VM's fixed-only one).
    pub(crate) fn with_executor(executor: Executor) -> Result<Self, RuntimeError> {
        crate::actor::memory::reserve_heap_growth();
        // mlua's `Drop for Lua` runs a full collection on the handle
        // `unsafe_new_with` returns, right before `lua_close` (which runs
        // every finalizer and frees everything anyway): a mark of the whole
        // heap per VM ended. A clone drops without it, so the first handle
        // is dropped here, while its heap is still empty.
        let lua = {
            let first = unsafe { Lua::unsafe_new_with(StdLib::NONE, LuaOptions::default()) };
            let kept = first.clone();
            drop(first);
            kept
        };
        let memory = VmMemory::new();
        // SAFETY: `exec_raw` runs the closure with the live state on this
        // thread; `memory` is boxed (its address never changes) and the
        // `Vm` drops it only after the state (field order).
        let mut main_state = std::ptr::null_mut();
        unsafe {
            lua.exec_raw::<()>((), |state| {
                memory.install(state);
                presize_string_table(state);
                main_state = state;
            })
        }
        .map_err(|e| RuntimeError::Boot(e.to_string()))?;
        // The libraries are opened once this VM's allocator is in place, so
        // their many small objects (functions, names, tables) come from the
        // slab without glibc's per-block header (docs/performance.md
        // "Actors", a8-rss).
        // The collector stays idle until boot's first collection, which is
        // then one whole cycle (`collect_cycle`).
        lua.gc_stop();
        // SAFETY: `exec_raw` runs the closure in a protected call on this
        // VM's live state; `open_libraries` follows the C API's rules.
        if let Err(e) = unsafe { lua.exec_raw::<()>((), |state| open_libraries(state)) } {
            drop(lua);
            drop(memory);
            return Err(RuntimeError::Boot(e.to_string()));
        }
        let state: SharedState = std::rc::Rc::new(RefCell::new(VmState {
            executor,
            stdout: Vec::new(),
            stdout_is_tty: stdout_is_tty(),
            exit_code: None,
            import_root: None,
            ended: false,
            mailbox: Mailbox::new(),
            receipts: Vec::new(),
            handed: None,
            memory_limit: None,
            master: false,
            monitor: None,
            sandboxes: Vec::new(),
            relays: Default::default(),
            completion_array: None,
        }));
        lua.set_app_data(state);
        // The collector is off while boot runs (nearly all it allocates is
        // kept: incremental steps marked it over and over) and one
        // collection cycle after frees boot's garbage before the VM may
        // idle; it leaves the collector running. 1,000 spawns, against leaving the
        // collector on: -20 kB RSS per idle actor for +6% CPU; stopped
        // without that collection, boot's garbage stayed: +17 kB, -3% CPU
        // (docs/performance.md "Actors"). Each collection during boot stops
        // it again, so the next one starts from an idle collector.
        let booted = Self::boot(&lua, main_state).and_then(|core| {
            let prepare_worker = keep_in_registry(&lua, core.get::<Function>("prepare_worker")?)?;
            // SAFETY: the VM's main state, no Lua code running.
            unsafe { collect_cycle(main_state) }?;
            Ok((core, prepare_worker))
        });
        let (core, prepare_worker) = match booted {
            Ok(booted) => booted,
            Err(e) => {
                // The state frees its memory through `memory`'s allocator:
                // it must close first (locals drop in reverse order).
                drop(lua);
                drop(memory);
                return Err(RuntimeError::Boot(e.to_string()));
            }
        };
        Ok(Self {
            lua,
            core,
            memory,
            state: main_state,
            prepare_worker,
        })
    }

    /// Caps the bytes this VM's Lua heap may hold (`None`: no cap, the
    /// default). Past it, allocations fail as Lua "not enough memory" errors
    /// in this VM only. Rust-side buffers (byte_span storage, ring buffers)
    /// are not counted.
    pub fn set_memory_limit(&self, bytes: Option<usize>) {
        self.memory.set_limit(bytes);
        let _ = with_state(&self.lua, |st| st.memory_limit = bytes);
    }

    fn boot(lua: &Lua, state: *mut ffi::lua_State) -> mlua::Result<Table> {
        let g = lua.globals();
        // (Turning the JIT off while the core chunks run saved ~10 kB per
        // VM, but left VMs near their memory limit unable to recover from
        // a refusal: tests/lua/limits/memory_limit failed most runs.)
        Self::boot_core(lua, &g, state)
    }

    /// `state`: `lua`'s main state.
    fn boot_core(lua: &Lua, g: &Table, state: *mut ffi::lua_State) -> mlua::Result<Table> {
        // At its final size (`K_KEYS`): growing it through 4..128 slots
        // rehashed it six times and left its outgrown hash parts as
        // garbage. -1% CPU per spawn, RSS unchanged (docs/performance.md
        // "rss150c").
        let k = lua.create_table_with_capacity(0, K_KEYS)?;
        k.set("rt", make_rt(lua)?)?;
        // Of the debug library the core code uses these alone; the rest of
        // it, like the whole `jit` table, becomes garbage below.
        let debug = g.get::<Table>("debug")?;
        let core_debug = lua.create_table_with_capacity(0, 5)?;
        for name in ["getinfo", "getmetatable", "traceback", "getfenv", "setfenv"] {
            core_debug.raw_set(name, debug.raw_get::<Function>(name)?)?;
        }
        k.set("debug", core_debug)?;
        k.set("raw_pcall", g.get::<Function>("pcall")?)?;
        k.set("raw_error", g.get::<Function>("error")?)?;
        // Errors raised by `__gc` finalizers reach the runtime through this
        // LuaJIT VM event (lua/core/scheduler.lua reports them).
        k.set(
            "jit_attach",
            g.get::<Table>("jit")?.get::<Function>("attach")?,
        )?;
        // `jit.off(f)`: no traces for `f` (code that runs once per VM).
        k.set("jit_off", g.get::<Table>("jit")?.get::<Function>("off")?)?;
        // Opening a library also records it in the registry (`_LOADED`,
        // and `_PRELOAD` for `jit.util` and `jit.profile`); nothing reads
        // those tables (no `require` of a C library ever runs), and they kept
        // every library whole in every VM: `os.execute` and the rest of `os`,
        // `jit` and `debug` after boot took them out of reach. The globals
        // the core code no longer needs go now, before the collection below,
        // so their blocks serve the core chunks.
        for name in ["_LOADED", "_PRELOAD"] {
            lua.unset_named_registry_value(name)?;
        }
        // An empty `_LOADED` again: where LuaJIT records its `ffi` library
        // when the lexer opens it for an int64 literal (`1LL`). That keeps
        // the library table alive, and with it the C type state's
        // `miscmap`, which the state points to without marking it: without
        // `_LOADED` a user's `1LL` left it to the collector, and a later
        // `(1LL).x` read freed memory (a crash). The runtime's direct reads
        // take the same opening (src/modules/fast_io.rs `load_ffi`).
        lua.set_named_registry_value("_LOADED", lua.create_table()?)?;
        for name in ["debug", "jit"] {
            g.raw_set(name, Value::Nil)?;
        }
        // SAFETY: `load_lazy_chunk` is a `lua_CFunction` that follows the
        // C API's stack rules (see there).
        k.set("load_lazy_chunk", unsafe {
            lua.create_c_function(crate::fiber::load_lazy_chunk)
        }?)?;
        k.set("builtin_modules", lua.create_table()?)?;
        let span_table = byte_span::register(lua)?;
        g.set("byte_span", span_table)?;
        crate::modules::register(lua, &k)?;
        k.set(
            "is_byte_span",
            lua.create_function(unless_closing(|_, v: Value| {
                Ok(byte_span::span_from_value(&v).is_some())
            }))?,
        )?;
        // The Rust side's set-up left garbage (mlua opens each library in
        // a protected call, which makes three C functions; building `rt`
        // leaves ~50 small blocks too). A full collection here paid -6 kB
        // RSS per idle actor (a8-rss); the cycle after scheduler.lua frees
        // that garbage early enough for the later chunks to reuse: the same
        // RSS without it, ~25 µs less per spawn (docs/performance.md
        // "spawn-boot").
        for chunk in crate::fiber::CORE_CHUNKS {
            chunk.load(lua)?.call::<()>(k.clone())?;
            // scheduler.lua leaves garbage (its main function and the
            // tables and closures only its set-up used) and so did the Rust
            // side's set-up: collected now, their blocks serve the next
            // chunks instead of staying as holes in the slab: -10 kB RSS
            // per idle actor for ~9% of a spawn's CPU (docs/performance.md
            // "rss150b", "spawn-boot"). Stopped again, so the next
            // collection starts from an idle collector.
            if chunk.name == "scheduler" {
                // SAFETY: the main state; the chunk's call has returned.
                unsafe { collect_cycle(state) }?;
                lua.gc_stop();
            }
        }
        // What the core code captured is all it needs; none of this is ever
        // reachable from user code, and removing it leaves less to find if
        // that ever failed.
        for name in [
            "io",
            "package",
            "dofile",
            "loadfile",
            "module",
            "require",
            "load",
            "loadstring",
            "os",
        ] {
            g.raw_set(name, Value::Nil)?;
        }
        g.get::<Table>("string")?.raw_set("dump", Value::Nil)?;
        k.get::<Function>("seal_main_thread")?.call::<()>(())?;
        Ok(k)
    }

    /// Runs `config.script` as the main fiber of the process's master VM
    /// until every actor has finished or can never be woken.
    /// Errors are about the script itself failing to start.
    pub fn run_main(self, config: &VmConfig) -> Result<VmExit, RuntimeError> {
        self.start_main(config)?;
        tracing::debug!(script = %config.script.display(), "main fiber scheduled");
        super::host::run(self)
    }

    /// What a sandboxed VM needs before its module, none of it from the
    /// host: done before the boot message is waited for (pooled: before
    /// the spawn), so it is off the spawn's path.
    pub(crate) fn prepare_sandboxed(&self) -> Result<(), RuntimeError> {
        self.set_process_info(&[])?;
        self.core.set("sandboxed", true).map_err(lua_boot)?;
        // The host's channel reaches this VM in its first frame.
        for ready in ["sandbox_methods_ready", "sandbox_inbox_ready"] {
            self.core
                .get::<Function>(ready)
                .and_then(|ready| ready.call::<()>(()))
                .map_err(lua_boot)?;
        }
        Ok(())
    }

    /// Runs `source` as the main fiber of a sandboxed process's only VM
    /// (`_CONTEXT` 'worker', no import root: `require` finds builtin
    /// modules only) until it ends; [`Vm::prepare_sandboxed`] first.
    pub(crate) fn run_sandboxed(
        self,
        display: &str,
        source: &[u8],
    ) -> Result<VmExit, RuntimeError> {
        // As in-process: a module is a leaf unless it is an init.lua.
        let is_init = display == "init.lua" || display.ends_with("/init.lua");
        let path = if is_init {
            "/sandbox/module/init.lua"
        } else {
            "/sandbox/module.lua"
        };
        let identity = format!("sandbox:{display}");
        let started = self
            .finish_start(
                source,
                identity.as_bytes(),
                path.as_bytes(),
                display.as_bytes(),
                b"/sandbox",
                b"",
                is_init,
                ModuleCache::Off,
            )
            .map_err(lua_boot)?;
        if let Started::CompileError(reason) = started {
            return Err(RuntimeError::Load {
                script: PathBuf::from(display),
                reason,
            });
        }
        super::host::run(self)
    }

    /// Sets `system.arguments` (`system.environment` is built when the
    /// `system` module is first required: `rt.environment`).
    fn set_process_info(&self, arguments: &[String]) -> Result<(), RuntimeError> {
        let args = self
            .lua
            .create_sequence_from(arguments.iter().map(String::as_str))
            .map_err(lua_boot)?;
        self.core.set("arguments", args).map_err(lua_boot)
    }

    /// Loads the entry script and queues its main fiber.
    fn start_main(&self, config: &VmConfig) -> Result<(), RuntimeError> {
        let script = &config.script;
        let display = script.to_string_lossy().into_owned();
        let absolute = absolute_path(script);
        self.set_process_info(&config.arguments)?;
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
        Ok(())
    }

    /// Starts a worker VM (spawn_vm): `src` was read from `path` beneath
    /// the spawner's import root `root_fd`, which this VM inherits.
    /// `Err(text)`: the module does not compile.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_worker(
        &self,
        src: &[u8],
        identity: &str,
        path: &[u8],
        display: &[u8],
        root: &[u8],
        display_root: &[u8],
        is_init: bool,
        root_fd: std::sync::Arc<std::os::fd::OwnedFd>,
        memory_limit: Option<usize>,
    ) -> mlua::Result<Result<(), String>> {
        self.set_memory_limit(memory_limit);
        with_state(&self.lua, |st| st.import_root = Some(root_fd))?;
        let heap_before = self.heap_bytes();
        let cache = if memory_limit.is_some() {
            ModuleCache::Use
        } else {
            ModuleCache::UseAndFill
        };
        let started = self.finish_start(
            src,
            identity.as_bytes(),
            path,
            display,
            root,
            display_root,
            is_init,
            cache,
        )?;
        // A module loaded from cached bytecode leaves almost no garbage (see
        // `finish_start`): no collection then, unless the start grew the
        // heap past `START_GROWTH_BEFORE_COLLECTING`. A parsed one leaves
        // the parser's constant tables and names: collected, or they would
        // stay until the heap doubled, holes in the slab (docs/performance.md
        // "rss150b", "startgc", "spawnstart").
        let grown = self.heap_bytes().saturating_sub(heap_before);
        let parsed = matches!(started, Started::Parsed);
        if parsed || grown > START_GROWTH_BEFORE_COLLECTING {
            // SAFETY: the VM's main state on this thread, the start's call
            // has returned.
            unsafe { collect_cycle(self.state) }?;
            // What stays live now fits a 512-slot string table, which the
            // start's strings (a parse's names) may have grown; an idle
            // worker interns only a few more (its first round trip's). A
            // module with more string constants just grows it back at its
            // next new string.
            // SAFETY: as above.
            unsafe { set_string_table_slots(self.state, STARTED_STRING_TABLE_SLOTS) };
        }
        // Without a collection nothing was freed: the table is still boot's
        // 512 slots (`boot_fits_its_strings_in_a_512_slot_table`) unless
        // the module's strings outgrew it, and then halving it would only
        // make LuaJIT grow it again. LuaJIT rehashes every string even for
        // a same-size resize, on memory the nursery warmed in the other
        // core's cache: ~20% of such a start (docs/performance.md
        // "spawnstart").
        Ok(match started {
            Started::CompileError(text) => Err(text),
            Started::Parsed | Started::FromBytecode => Ok(()),
        })
    }

    /// The Lua heap's size in bytes (LuaJIT's count; allocates nothing).
    fn heap_bytes(&self) -> usize {
        // SAFETY: the VM's main state on this thread, no Lua code running;
        // `lua_gc`'s counts only read the collector's state.
        unsafe {
            ffi::lua_gc(self.state, ffi::LUA_GCCOUNT, 0) as usize * 1024
                + ffi::lua_gc(self.state, ffi::LUA_GCCOUNTB, 0) as usize
        }
    }

    /// Makes the worker's env and main fiber (`K.prepare_worker`), then
    /// loads `src` (read from `path`) as its module and makes it the main
    /// fiber's job, all in one raw protected call (`finish_call`). The
    /// module is this process's cached bytecode of exactly `src` when
    /// `cache` allows and it has one; else `src` is compiled as text (and
    /// dumped into the cache with `UseAndFill`). Its only garbage:
    /// `K.prepare_worker`'s options table and id text, the call's C
    /// function, and after a parse the parser's (constant tables, names
    /// of locals); no Lua string of the source, no Lua code of the
    /// start's own.
    #[allow(clippy::too_many_arguments)]
    fn finish_start(
        &self,
        src: &[u8],
        identity: &[u8],
        path: &[u8],
        display: &[u8],
        root: &[u8],
        display_root: &[u8],
        is_init: bool,
        cache: ModuleCache,
    ) -> mlua::Result<Started> {
        // The chunk name, as `load(src, '@' .. display)` would give it (a
        // C string: a display path has no NUL; one would end the name).
        let name = display.split(|&b| b == 0).next().unwrap_or_default();
        let mut chunk_name = Vec::with_capacity(name.len() + 2);
        chunk_name.push(b'@');
        chunk_name.extend_from_slice(name);
        chunk_name.push(0);
        let cached = match cache {
            ModuleCache::Off => None,
            ModuleCache::Use | ModuleCache::UseAndFill => {
                compiled_modules::lookup(&chunk_name, src)
            }
        };
        let dump = (cached.is_none() && cache == ModuleCache::UseAndFill).then(Vec::new);
        let mut call = FinishCall {
            bytecode: cached.as_deref(),
            dump,
            prepare_worker: self.prepare_worker,
            src,
            chunk_name: &chunk_name,
            identity,
            path,
            display,
            root,
            display_root,
            is_init,
            compile_error: None,
        };
        // SAFETY: `lua_cpcall` runs `finish_call` in protected mode on the
        // VM's main state (no Lua code running), with `call` as its light
        // userdata, which outlives the call; an error it leaves on the
        // stack is taken off.
        unsafe {
            let ud = (&mut call as *mut FinishCall).cast();
            match ffi::lua_cpcall(self.state, finish_call, ud) {
                ffi::LUA_OK => {}
                code => {
                    let error = if code == ffi::LUA_ERRMEM {
                        mlua::Error::MemoryError("not enough memory".into())
                    } else {
                        mlua::Error::runtime(lossy_top(self.state))
                    };
                    ffi::lua_pop(self.state, 1);
                    return Err(error);
                }
            }
        }
        if let Some(text) = call.compile_error {
            return Ok(Started::CompileError(text));
        }
        if let Some(bytecode) = call.dump.filter(|b| !b.is_empty()) {
            compiled_modules::insert(&chunk_name, src, bytecode);
        }
        Ok(if cached.is_some() {
            Started::FromBytecode
        } else {
            Started::Parsed
        })
    }

    pub(crate) fn mailbox(&self) -> Arc<Mailbox> {
        with_state(&self.lua, |st| st.mailbox.clone())
            .expect("VM state is present until the VM ends")
    }

    /// The VM's state, for the thread host's checks between steps (no Lua
    /// runs then, so it is never borrowed elsewhere).
    pub(crate) fn shared_state(&self) -> mlua::Result<SharedState> {
        self.lua
            .try_app_data_ref::<SharedState>()
            .ok()
            .flatten()
            .map(|state| state.clone())
            .ok_or_else(|| mlua::Error::runtime("luring: VM state missing"))
    }

    /// The Lua state and the core table, for unit tests of `rt` functions.
    #[cfg(test)]
    pub(crate) fn lua_and_core(&self) -> (&Lua, &Table) {
        (&self.lua, &self.core)
    }

    /// The scheduler's step function, looked up once and called through
    /// the raw C API (`Vm::step`).
    pub(crate) fn step_function(&self) -> mlua::Result<StepFunction> {
        let step: Function = self.core.get("step")?;
        // SAFETY: `exec_raw` runs this on the VM's main state in protected
        // mode with room for the function it pushes and 3 more values;
        // `luaL_ref` pops it into the registry (it may raise out of
        // memory: protected), the error slot is made now so that a failed
        // step fills it without allocating. The main state lives as long
        // as `self.lua`, which the caller keeps beside the result (host.rs
        // `Hosted`).
        unsafe {
            self.lua
                .exec_raw::<(i64, mlua::LightUserData)>(step, |l| {
                    ffi::lua_pushboolean(l, 0);
                    ffi::lua_setfield(l, ffi::LUA_REGISTRYINDEX, STEP_ERROR_KEY.as_ptr());
                    let func = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
                    ffi::lua_pushinteger(l, func as ffi::lua_Integer);
                    ffi::lua_pushlightuserdata(l, l.cast());
                })
                .map(|(func, state)| StepFunction {
                    state: state.0.cast(),
                    func: func as c_int,
                })
        }
    }

    /// Runs one scheduler step (`block`: may sleep in this VM's ring;
    /// `poll`: deliver what other actors left in the mailbox first, with
    /// `receipts` taken from it already, and `handed`, its oldest message
    /// when `Mailbox::take_handable` took it: the step gives it back
    /// unless a receive took it).
    pub(crate) fn step(
        &self,
        step: &StepFunction,
        block: bool,
        poll: bool,
        alone: bool,
        receipts: Receipts,
        handed: Option<Scalar>,
    ) -> Result<Step, Ran> {
        let (id, delivered) = match receipts {
            Receipts::None => (None, false),
            Receipts::One(id, delivered) => (Some(id as f64), delivered),
            Receipts::Several => (Some(-1.0), false),
        };
        match step.call(&self.lua, [block, poll, alone], id, delivered, handed) {
            Ok(0) => Ok(Step::Done),
            Ok(1) => Ok(Step::Ready),
            Ok(_) => Ok(Step::Idle),
            Err(e) => Err(self.scheduler_failed(e)),
        }
    }

    /// After a step that ended the VM: whether the message handed to it
    /// is still held, unreceived (lua/core/actors.lua `handed_v`; the
    /// scheduler's `handed_held[1]`). When that cannot be read, it counts
    /// as unreceived: its sender then gets "refused".
    pub(crate) fn handed_still_held(&self) -> bool {
        self.core
            .get::<Table>("handed_held")
            .and_then(|held| held.raw_get::<bool>(1))
            .unwrap_or(true)
    }

    fn scheduler_failed(&self, e: mlua::Error) -> Ran {
        if is_memory_error(&e) {
            // The scheduler itself ran out of memory: the VM is closed
            // with the spec's report (its text was built beforehand) and
            // exit status 1, not as an internal error.
            let reported = self
                .core
                .get::<Function>("report_errmem")
                .and_then(|report| report.call::<()>(()))
                .is_ok();
            return Ok(Some(reported));
        }
        Err(e)
    }

    pub(crate) fn is_master(&self) -> bool {
        with_state(&self.lua, |st| st.master).unwrap_or(false)
    }

    /// Takes what a monitor of this VM needs: where to tell, and the
    /// main fiber's state (finished, its error if it failed).
    pub(crate) fn take_monitor(
        &self,
    ) -> Option<(crate::actor::mailbox::ActorAddress, bool, Option<String>)> {
        let monitor = with_state(&self.lua, |st| st.monitor.take()).ok()??;
        let main_done = self.core.get::<bool>("main_done").unwrap_or(false);
        let error = self.core.get::<Option<String>>("main_error").ok().flatten();
        Some((monitor, main_done, error))
    }

    pub(crate) fn set_monitor(&self, monitor: Option<crate::actor::mailbox::ActorAddress>) {
        let _ = with_state(&self.lua, |st| st.monitor = monitor);
    }

    pub(crate) fn set_master(&self, master: bool) {
        let _ = with_state(&self.lua, |st| st.master = master);
    }

    /// A VM ended while others could still not run: report what its fibers
    /// were blocked on.
    pub(crate) fn report_stuck(&self) {
        if let Ok(f) = self.core.get::<Function>("finish_run") {
            let _ = f.call::<()>(());
        }
    }

    /// Collects garbage (handles nobody references may be the last senders
    /// of some inbox).
    pub(crate) fn collect_garbage(&self) {
        let _ = self.lua.gc_collect();
    }

    /// After the scheduler stopped: flushes output and says how the VM ended.
    pub(crate) fn finish(&self, ran: Ran) -> Result<VmExit, RuntimeError> {
        // Everything printed reaches its stream before the VM is gone, even
        // when the scheduler failed, and before any error message.
        let flushed = with_state(&self.lua, VmState::finish_output).map_err(lua_boot)?;
        let closed_for_memory = match ran.map_err(|e| RuntimeError::Internal(e.to_string()))? {
            Some(reported) => {
                if !reported {
                    // Even that call found no memory: write the report the
                    // scheduler built beforehand (reading it allocates
                    // nothing in the Lua heap).
                    let text = self
                        .core
                        .get::<mlua::BString>("errmem_report")
                        .map(Vec::from)
                        .unwrap_or_else(|_| b"VM forcibly closed due to 'LUA_ERRMEM'\n".to_vec());
                    if !report_to_host(&text) {
                        let _ = write_direct(StdStream::Err, &text);
                    }
                }
                true
            }
            None => false,
        };
        if let Err(e) = flushed {
            if e.get_ref().is_some_and(|e| e.is::<CompletionsDropped>()) {
                return Err(RuntimeError::Internal(e.to_string()));
            }
        }
        // A fiber coroutine that failed outside its error handler: the
        // scheduler stopped the VM and left the reason here.
        if let Ok(Some(reason)) = self.core.get::<Option<String>>("internal_error") {
            return Err(RuntimeError::Internal(reason));
        }
        let main_panicked =
            closed_for_memory || self.core.get::<bool>("main_panicked").unwrap_or(false);
        // (Read only after a panic: near the memory limit even this read
        // may fail, and its error allocates in Rust.)
        let out_of_memory = closed_for_memory
            || (main_panicked
                && self
                    .core
                    .get::<Option<mlua::BString>>("main_error")
                    .ok()
                    .flatten()
                    .is_some_and(|e| e.as_slice() == b"not enough memory"));
        let exit_code = with_state(&self.lua, |st| st.exit_code).map_err(lua_boot)?;
        Ok(VmExit {
            exit_code,
            main_panicked,
            out_of_memory,
        })
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        // Output queued after `run_main` drained the queue (a finalizer's
        // report) is written before the VM closes. Finalizers that run
        // after this (`lua_close` runs every one left, reachable or not)
        // find the VM ended: reports go straight to fd 2.
        let _ = with_state(&self.lua, |st| {
            let _ = st.finish_output();
            // Sandboxes die with the VM, before its objects (their channels)
            // are collected: none sees its channel close first.
            st.sandboxes.clear();
            st.ended = true;
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `src` as the main script of `vm` (after `sabotage` broke the VM).
    fn run_script(
        name: &str,
        src: &str,
        sabotage: impl FnOnce(&Vm),
    ) -> Result<VmExit, RuntimeError> {
        // A directory per call: the tests run in parallel, so none may
        // remove a shared one.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("luring-vm-test-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join(name);
        std::fs::write(&script, src).unwrap();
        let vm = Vm::new().unwrap();
        sabotage(&vm);
        let r = vm.run_main(&VmConfig {
            script: script.clone(),
            arguments: vec!["luring".into(), script.to_string_lossy().into_owned()],
            context: "main",
        });
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn scheduler_failure_in_a_fiber_coroutine_is_an_internal_error() {
        // A root-scope handler raising makes the scheduler print a report
        // that, with a broken VM id, fails outside any error handler.
        let r = run_script(
            "internal_fiber.lua",
            "spawn(function() scope_cleanup_push(function() error('x') end) end)\n",
            |vm| {
                vm.lua
                    .load(
                        "local K = ...; local start = K.start_main
                         K.start_main = function(...)
                           local ok, err = start(...); K.vm_id = {}; return ok, err
                         end",
                    )
                    .call::<()>(vm.core.clone())
                    .unwrap()
            },
        );
        let err = r.expect_err("internal error");
        assert!(matches!(err, RuntimeError::Internal(_)), "{err:?}");
        assert_eq!(err.exit_code(), crate::EXIT_INTERNAL_ERROR);
    }

    #[test]
    fn scheduler_failure_in_the_loop_is_an_internal_error() {
        let r = run_script("internal_loop.lua", "print('ran')\n", |vm| {
            let f = vm
                .lua
                .create_function(|_, ()| -> mlua::Result<()> { Err(mlua::Error::runtime("bug")) })
                .unwrap();
            vm.core.set("main_finished", f).unwrap();
        });
        let err = r.expect_err("internal error");
        assert!(err.to_string().contains("bug"), "{err}");
        assert_eq!(err.exit_code(), crate::EXIT_INTERNAL_ERROR);
    }

    #[test]
    fn load_errors_exit_1() {
        let r = run_script("syntax.lua", "this is not lua\n", |_| {});
        assert_eq!(r.expect_err("load error").exit_code(), 1);
    }

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
        assert!(
            meta.contains("attempt to call global 'getmetatable'"),
            "{meta}"
        );
    }

    /// The registry's records of the opened libraries are gone after boot
    /// (they kept all of `os`, `jit` and `debug` alive in every VM), and
    /// the core code keeps only the debug functions it uses.
    #[test]
    fn boot_keeps_no_library_record_and_only_the_debug_functions_it_uses() {
        let vm = Vm::new().expect("VM boots");
        let preload: Value = vm.lua.named_registry_value("_PRELOAD").unwrap();
        assert!(preload.is_nil(), "registry._PRELOAD is {preload:?}");
        // `_LOADED` is there again, empty (LuaJIT records `ffi` in it when
        // it is opened: src/modules/fast_io.rs `load_ffi`).
        let loaded: Table = vm.lua.named_registry_value("_LOADED").unwrap();
        assert_eq!(loaded.pairs::<Value, Value>().count(), 0);
        let debug: Table = vm.core.get("debug").unwrap();
        let mut names: Vec<String> = debug
            .pairs::<String, Function>()
            .map(|pair| pair.unwrap().0)
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["getfenv", "getinfo", "getmetatable", "setfenv", "traceback"]
        );
        // Nothing in the registry reaches `os.execute` any more.
        // SAFETY: pushes the registry table, which `exec_raw` pops as its
        // result; nothing there can raise a Lua error.
        let registry: Table = unsafe {
            vm.lua.exec_raw((), |state| {
                ffi::lua_pushvalue(state, ffi::LUA_REGISTRYINDEX);
            })
        }
        .unwrap();
        for pair in registry.pairs::<Value, Value>() {
            let (key, value) = pair.unwrap();
            if let Value::Table(t) = value {
                let execute: Value = t.raw_get("execute").unwrap();
                assert!(execute.is_nil(), "registry[{key:?}] holds os.execute");
            }
        }
    }

    #[test]
    fn boot_leaves_no_garbage_and_the_collector_running() {
        // Boot stops the collector and ends with a full collection.
        let vm = Vm::new().expect("VM boots");
        let booted = vm.lua.used_memory();
        vm.lua.gc_collect().unwrap();
        let collected = vm.lua.used_memory();
        assert!(
            booted - collected < 4096,
            "boot left {} bytes of garbage",
            booted - collected
        );
        // ~8 MB of short-lived strings: a stopped collector would keep them.
        vm.lua
            .load("local s for i = 1, 200000 do s = i .. 'x' end")
            .exec()
            .unwrap();
        assert!(
            vm.lua.used_memory() < collected + (4 << 20),
            "heap grew to {} bytes",
            vm.lua.used_memory()
        );
    }

    /// `K` is made with a 128-slot hash (`K_KEYS`): if it held 64 keys or
    /// fewer, that would waste half; past 128, it grows as before.
    #[test]
    fn k_fits_its_presized_hash() {
        let vm = Vm::new().unwrap();
        let keys = vm.core.pairs::<Value, Value>().count();
        assert!(keys > 64 && keys <= 128, "K has {keys} keys: update K_KEYS");
        assert_eq!(K_KEYS.next_power_of_two(), 128);
    }

    /// Boot's strings, garbage included, fit the string table it starts
    /// with (`STRING_TABLE_SLOTS`): LuaJIT never grows it during boot, so
    /// boot's collections sweep only those slots. Resizing a booted VM's
    /// table to that size then changes LuaJIT's heap only by the C
    /// function `lua_cpcall` makes (from a grown table it would shrink the
    /// heap by the extra slots). Fails when boot interns more strings
    /// (new `K` or `rt` keys, texts of eager core chunks): then raise
    /// `STRING_TABLE_SLOTS` or intern fewer.
    #[test]
    fn boot_fits_its_strings_in_a_512_slot_table() {
        assert_eq!(STRING_TABLE_SLOTS, 512);
        let vm = Vm::new().unwrap();
        // SAFETY: `exec_raw` runs the closure with the VM's live state on
        // this thread, no Lua code running.
        let change = unsafe {
            vm.lua.exec_raw::<i64>((), |state| {
                let heap = || {
                    ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0) as i64 * 1024
                        + ffi::lua_gc(state, ffi::LUA_GCCOUNTB, 0) as i64
                };
                let start = heap();
                set_string_table_slots(state, STRING_TABLE_SLOTS);
                ffi::lua_pushinteger(state, (heap() - start) as ffi::lua_Integer);
            })
        }
        .unwrap();
        assert!(
            (0..256).contains(&change),
            "boot grew its string table: resizing it changed the heap by {change} bytes"
        );
    }

    /// A started worker's live strings fit a 512-slot string table, and
    /// the start leaves it at that size (docs/performance.md "rss-str"):
    /// resizing it to 1,024 slots then grows LuaJIT's heap by exactly the
    /// 4 kB of 512 more slots (from 1,024, it would not change), also with
    /// 12 more strings interned (LuaJIT grows the table at its 513th).
    /// Fails when something adds enough strings to every VM (new `K` or
    /// `rt` keys, texts of eager core chunks) to push an idle actor back to
    /// an 8 kB table.
    #[test]
    fn a_started_worker_keeps_a_512_slot_string_table() {
        // The first start parses the module (and collects), the second loads
        // its cached bytecode (and does not): both must hold.
        for start in ["parsed", "from bytecode"] {
            string_table_is_512_slots_after_a_start(start);
        }
    }

    fn string_table_is_512_slots_after_a_start(start: &str) {
        let vm = Vm::new().unwrap();
        let root = std::fs::File::open("/").unwrap();
        vm.start_worker(
            b"local t = {} return t -- 512-slot test",
            "1:0:1",
            b"/m.lua",
            b"m.lua",
            b"/",
            b"/",
            false,
            std::sync::Arc::new(root.into()),
            None,
        )
        .unwrap()
        .unwrap();
        let heap = |state: *mut ffi::lua_State| {
            // SAFETY: a live state on this thread, inside `exec_raw`.
            unsafe {
                ffi::lua_gc(state, ffi::LUA_GCCOUNT, 0) as usize * 1024
                    + ffi::lua_gc(state, ffi::LUA_GCCOUNTB, 0) as usize
            }
        };
        // SAFETY: `exec_raw` runs the closure with the VM's live state on
        // this thread, no Lua code running.
        let grown = unsafe {
            vm.lua.exec_raw::<i64>((), |state| {
                // Room for what an idle actor adds (its first round trip
                // interns 4 strings) and a few more: 12 new strings, kept.
                // (This worker holds ~495 live, 16 more still fit on
                // 2026-12-04; actors_spawn.lua's ~500, its paths longer.)
                for i in 0..12 {
                    let s = format!("rss-str margin {i}");
                    ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
                }
                // Each resize also leaves `lua_cpcall`'s C function: a
                // resize to 512 first measures that (and only that, if the
                // table is 512 slots; from 1,024 it would shrink it).
                let start = heap(state) as i64;
                set_string_table_slots(state, STARTED_STRING_TABLE_SLOTS);
                let same = heap(state) as i64 - start;
                set_string_table_slots(state, 1024);
                let grown = heap(state) as i64 - start - same;
                ffi::lua_pop(state, 12);
                ffi::lua_pushinteger(state, (grown - same) as ffi::lua_Integer);
            })
        }
        .unwrap();
        assert_eq!(
            grown, 4096,
            "the worker's string table is not 512 slots after a start {start}"
        );
    }

    /// Starts a fresh VM as a worker of `src`, named `display`, the way a
    /// spawn does (without the collection that follows a parse).
    fn start_module(display: &str, src: &[u8], cache: ModuleCache) -> (Vm, Started) {
        let vm = Vm::new().unwrap();
        let path = format!("/{display}");
        let started = vm
            .finish_start(
                src,
                format!("1:0:{display}").as_bytes(),
                path.as_bytes(),
                display.as_bytes(),
                b"/",
                b"/",
                false,
                cache,
            )
            .unwrap();
        (vm, started)
    }

    /// A module's second start loads the bytecode its first made; the
    /// same name with other bytes (an edited file) compiles afresh, and a
    /// compile error is not cached. (Names no other test uses: the cache
    /// is process-wide.)
    #[test]
    fn a_worker_module_is_parsed_once_and_an_edited_one_again() {
        let first = start_module("cache_once.lua", b"return 1", ModuleCache::UseAndFill).1;
        assert!(matches!(first, Started::Parsed), "{first:?}");
        let second = start_module("cache_once.lua", b"return 1", ModuleCache::UseAndFill).1;
        assert!(matches!(second, Started::FromBytecode), "{second:?}");
        let edited = start_module("cache_once.lua", b"return (", ModuleCache::UseAndFill).1;
        match edited {
            Started::CompileError(text) => {
                assert!(text.starts_with("cache_once.lua:1:"), "{text}")
            }
            other => panic!("an edited module was not compiled: {other:?}"),
        }
        let again = start_module("cache_once.lua", b"return (", ModuleCache::UseAndFill).1;
        assert!(matches!(again, Started::CompileError(_)), "{again:?}");
        let renamed = start_module("cache_other.lua", b"return 1", ModuleCache::UseAndFill).1;
        assert!(matches!(renamed, Started::Parsed), "{renamed:?}");
    }

    /// The binary loader only ever sees this process's own dumps: a module
    /// whose bytes are bytecode (even the very bytes the cache holds for
    /// another module) is refused by the text loader, and not cached.
    #[test]
    fn bytecode_as_a_module_is_refused_even_when_the_cache_holds_it() {
        start_module(
            "cache_dumped.lua",
            b"return 'made here'",
            ModuleCache::UseAndFill,
        );
        let chunk_name = b"@cache_dumped.lua\0";
        let bytecode = compiled_modules::lookup(chunk_name, b"return 'made here'").unwrap();
        assert_eq!(bytecode[0], 27, "a LuaJIT dump starts with ESC");
        for _ in 0..2 {
            match start_module("cache_dumped.lua", &bytecode, ModuleCache::UseAndFill).1 {
                Started::CompileError(text) => {
                    assert!(text.contains("wrong mode"), "{text}")
                }
                other => panic!("bytecode was loaded as a module: {other:?}"),
            }
        }
        assert!(compiled_modules::lookup(chunk_name, &bytecode).is_none());
    }

    /// A VM with a memory limit uses the cache but never fills it (the
    /// dump's buffer would count against its limit); a sandboxed start
    /// (`Off`) neither reads nor fills it.
    #[test]
    fn limited_and_sandboxed_starts_do_not_fill_the_cache() {
        let used = start_module("cache_limited.lua", b"return 2", ModuleCache::Use).1;
        assert!(matches!(used, Started::Parsed), "{used:?}");
        assert!(compiled_modules::lookup(b"@cache_limited.lua\0", b"return 2").is_none());
        start_module("cache_limited.lua", b"return 2", ModuleCache::UseAndFill);
        let hit = start_module("cache_limited.lua", b"return 2", ModuleCache::Use).1;
        assert!(matches!(hit, Started::FromBytecode), "{hit:?}");
        let off = start_module("cache_limited.lua", b"return 2", ModuleCache::Off).1;
        assert!(matches!(off, Started::Parsed), "{off:?}");
    }

    /// `collect_cycle` from a stopped (idle) collector frees what a full
    /// collection frees and runs the same finalizers; from a running one, a
    /// second cycle does; either way the collector runs after it.
    #[test]
    fn a_collection_cycle_frees_what_a_full_collection_frees() {
        let make_garbage = "G_FINALIZED, G_KEEP = 0, {} \
            for i = 1, 2000 do G_KEEP[i] = { i, tostring(i) .. 'y' } end \
            for i = 1, 10 do \
              local p = newproxy(true) \
              getmetatable(p).__gc = function() G_FINALIZED = G_FINALIZED + 1 end \
              G_KEEP[-i] = p \
            end";
        // The heap after making and dropping the garbage, then `collect`.
        let run = |stopped: bool, collect: &dyn Fn(&Lua)| {
            let lua = Lua::new();
            lua.gc_collect().unwrap();
            if stopped {
                lua.gc_stop();
            }
            lua.load(make_garbage).exec().unwrap();
            lua.globals().set("G_KEEP", Value::Nil).unwrap();
            collect(&lua);
            assert_eq!(lua.globals().get::<i64>("G_FINALIZED").unwrap(), 10);
            let after = lua.used_memory();
            // ~8 MB of short-lived strings: a stopped collector keeps them.
            lua.load("local s for i = 1, 200000 do s = i .. 'x' end")
                .exec()
                .unwrap();
            assert!(lua.used_memory() < after + (4 << 20), "the collector runs");
            after
        };
        let full = run(true, &|lua| lua.gc_collect().unwrap());
        // SAFETY: the test's main state (`Lua::state`), no Lua code running.
        let cycle = run(true, &|lua| unsafe { collect_cycle(lua.state()) }.unwrap());
        assert!(cycle.abs_diff(full) < 512, "cycle {cycle}, full {full}");
        let twice = run(false, &|lua| {
            // SAFETY: as above.
            unsafe { collect_cycle(lua.state()) }.unwrap();
            unsafe { collect_cycle(lua.state()) }.unwrap();
        });
        assert!(
            twice <= full + 512,
            "twice from running {twice}, full {full}"
        );
    }

    /// The raw step call turns every kind of failure into the error mlua
    /// would have made: a Lua error string, another error value, a Rust
    /// error raised through mlua; the stack is left as it was, and a step
    /// after a failure still works.
    #[test]
    fn a_failed_raw_step_gives_mluas_error_and_leaves_the_stack_clean() {
        let vm = Vm::new().unwrap();
        // (the main thread's globals are sealed: `error` comes as an upvalue)
        let raising = |src: &str| -> mlua::Function {
            let error: mlua::Function = vm.core.get("raw_error").unwrap();
            vm.lua.load(src).call(error).unwrap()
        };
        let cases: [(&str, mlua::Function); 3] = [
            (
                "boom",
                raising("local error = ... return function() error('boom') end"),
            ),
            (
                "a table error value",
                raising("local error = ... return function() error({}) end"),
            ),
            (
                "from rust",
                vm.lua
                    .create_function(|_, ()| -> mlua::Result<()> {
                        Err(mlua::Error::runtime("from rust"))
                    })
                    .unwrap(),
            ),
        ];
        for (expected, f) in cases {
            vm.core.set("step", f).unwrap();
            let step = vm.step_function().unwrap();
            // SAFETY: the VM's live main state, between calls.
            let before = unsafe { ffi::lua_gettop(step.state) };
            match vm.step(&step, false, false, false, Receipts::None, None) {
                Err(Err(e)) => assert!(e.to_string().contains(expected), "{e}"),
                other => panic!("expected a failure, got {other:?}"),
            }
            // SAFETY: as above.
            assert_eq!(unsafe { ffi::lua_gettop(step.state) }, before);
        }
        // the arguments arrive in order: Ready (1) only if they all did
        let ok: mlua::Function = vm
            .lua
            .load("return function(flags, id, ok) if flags == 7 and id == 7 and ok then return 1 end return 2 end")
            .eval()
            .unwrap();
        vm.core.set("step", ok).unwrap();
        let step = vm.step_function().unwrap();
        assert!(matches!(
            vm.step(&step, true, true, true, Receipts::One(7, true), None),
            Ok(Step::Ready)
        ));
        // each flag its own bit: block 1, poll 2, alone 4
        let poll_only: mlua::Function = vm
            .lua
            .load("return function(flags, id) if flags == 2 and id == nil then return 1 end return 2 end")
            .eval()
            .unwrap();
        vm.core.set("step", poll_only).unwrap();
        let step = vm.step_function().unwrap();
        assert!(matches!(
            vm.step(&step, false, true, false, Receipts::None, None),
            Ok(Step::Ready)
        ));
    }

    /// Each lazy `rt` group sets exactly the names `LAZY_RT` lists for it
    /// (a stale list would build nothing, or leave a name unreachable),
    /// boot builds none of them, and each name reads as its value through
    /// `rt` once asked for.
    #[test]
    fn lazy_rt_groups_are_exact_and_built_on_first_read() {
        let vm = Vm::new().expect("VM boots");
        let (lua, core) = vm.lua_and_core();
        let rt: Table = core.get("rt").unwrap();
        let mut seen = std::collections::HashSet::new();
        for group in LAZY_RT {
            let scratch = lua.create_table().unwrap();
            (group.add)(lua, &scratch).unwrap();
            let mut set: Vec<String> = scratch
                .pairs::<String, Value>()
                .map(|pair| pair.unwrap().0)
                .collect();
            set.sort();
            let mut listed: Vec<String> = group.names.iter().map(|n| n.to_string()).collect();
            listed.sort();
            assert_eq!(set, listed, "LAZY_RT names of one group");
            for name in group.names {
                assert!(seen.insert(*name), "{name} is in two groups");
                assert!(
                    rt.raw_get::<Value>(*name).unwrap().is_nil(),
                    "{name} was built at boot"
                );
            }
        }
        for group in LAZY_RT {
            for name in group.names {
                assert!(!rt.get::<Value>(*name).unwrap().is_nil(), "rt.{name}");
                assert!(
                    !rt.raw_get::<Value>(*name).unwrap().is_nil(),
                    "rt.{name} kept"
                );
            }
        }
        assert!(rt.get::<Value>("no_such_function").unwrap().is_nil());
        assert!(rt.get::<Value>(1).unwrap().is_nil());
    }

    /// `rt.errno` answers every known name (then holds it), nil for any
    /// other key, and `rt.errno_names()` lists them all.
    #[test]
    fn errno_table_fills_on_first_read() {
        let vm = Vm::new().expect("VM boots");
        let (_, core) = vm.lua_and_core();
        let rt: Table = core.get("rt").unwrap();
        let errno: Table = rt.get("errno").unwrap();
        assert!(errno.raw_get::<Value>("ENOTRECOVERABLE").unwrap().is_nil());
        assert_eq!(
            errno.get::<i32>("ENOTRECOVERABLE").unwrap(),
            libc::ENOTRECOVERABLE
        );
        assert_eq!(
            errno.raw_get::<i32>("ENOTRECOVERABLE").unwrap(),
            libc::ENOTRECOVERABLE
        );
        for key in [Value::Integer(1), Value::Boolean(true)] {
            assert!(errno.get::<Value>(key).unwrap().is_nil());
        }
        assert!(errno.get::<Value>("ENOSUCH").unwrap().is_nil());
        assert!(errno.get::<Value>("EPERMX").unwrap().is_nil());
        let names: Table = rt.get::<Function>("errno_names").unwrap().call(()).unwrap();
        assert_eq!(names.pairs::<String, i32>().count(), ERRNOS.len());
        for &(name, value) in ERRNOS {
            assert_eq!(names.raw_get::<i32>(name).unwrap(), value, "{name}");
            assert_eq!(errno.get::<i32>(name).unwrap(), value, "{name}");
        }
    }

    /// `error_text` gives each listed message for codes 1..=n, '' for any
    /// other number and for a category it does not hold.
    #[test]
    fn error_text_bounds() {
        assert_eq!(
            error_text(b"emilua.core", 1.0),
            "Cannot have a module with this name"
        );
        assert_eq!(error_text(b"emilua.core", 13.0), "Fiber interrupted");
        assert_eq!(
            error_text(b"emilua.core", CORE_MESSAGES.len() as f64),
            "Global _FILE is missing or invalid"
        );
        assert_eq!(
            error_text(b"emilua.json.dom", 4.0),
            "Reference cycle exists"
        );
        assert_eq!(
            error_text(b"trial.protocol.json", 9.0),
            "insufficient tokens"
        );
        assert_eq!(error_text(b"asio.misc", 2.0), "End of file");
        for code in [0.0, -1.0, 1.5, f64::NAN, f64::INFINITY, 25.0, 1e300] {
            assert_eq!(error_text(b"emilua.core", code), "", "{code}");
        }
        assert_eq!(error_text(b"asio.misc", 5.0), "");
        assert_eq!(error_text(b"system", 1.0), "");
    }

    /// The completion array holds completions 1..LEN/2 of a turn: plain
    /// ones as id and result, the others as -1 (read from the table),
    /// and says how many it covered and whether it marked any; entry 0 (the
    /// first completion, a return value) is left alone.
    #[test]
    fn completion_array_covers_plain_and_marks_the_rest() {
        let completion = |i: u64, fd: bool| Completion {
            id: OpId::from_user_data((1 << 32) | i).expect("an op id"),
            result: i as i32,
            fd: fd.then(|| std::fs::File::open("/dev/null").expect("/dev/null").into()),
            output: None,
        };
        let mut arr = vec![-7.0; 8];
        let list: Vec<_> = (0..6).map(|i| completion(i, i == 2)).collect();
        assert_eq!(write_completion_array(&mut arr, &list), (4, true));
        assert_eq!(arr[0..2], [-7.0, -7.0]);
        assert_eq!(arr[2..4], [list[1].id.to_f64(), 1.0]);
        assert_eq!(arr[4], -1.0);
        assert_eq!(arr[6..8], [list[3].id.to_f64(), 3.0]);
        let mut arr = vec![-7.0; 8];
        assert_eq!(write_completion_array(&mut arr, &list[..2]), (2, false));
        assert_eq!(arr[4..], [-7.0; 4]);
        // past the non-plain one: nothing marked
        let mut arr = vec![-7.0; 8];
        assert_eq!(write_completion_array(&mut arr, &list[3..]), (3, false));
        assert_eq!(
            arr[2..6],
            [list[4].id.to_f64(), 4.0, list[5].id.to_f64(), 5.0]
        );
        assert_eq!(write_completion_array(&mut arr, &[]), (0, false));
        assert_eq!(write_completion_array(&mut arr, &list[..1]), (1, false));
    }
}
