//! The nursery: one thread per process that boots actor VMs ahead of their
//! spawns, so that `Vm::new` (two thirds of a spawn's CPU) runs on another
//! core instead of on the spawner's path.
//!
//! Invariants:
//! - The thread starts at the process's first spawn (`Nursery::take`): a
//!   process that never spawns has no nursery thread and no pooled VM. It
//!   is not a host thread (it runs no actor, does not count in
//!   `Process::running`, has no `ThreadSignal`). In an embedded runtime
//!   its handle is in `Process::joins`, so the runtime's end joins it;
//!   otherwise it is detached and leaves by itself once closed.
//! - States: `Unstarted` → `Running` → `Gone`, and `Unstarted` → `Gone`.
//!   `Gone` is final: set by `close` (the process ended), when the thread
//!   cannot be started, and by the thread itself when it leaves for any
//!   reason (a boot failed, or it panicked: a guard sets it). All state is
//!   under one mutex, so `close` either sees the thread running (and wakes
//!   it) or the start sees `Gone` (and starts nothing).
//! - A spawn never waits for the nursery: it takes a pooled VM if one is
//!   ready (and the lock free), else boots its own synchronously, whatever
//!   the state (a boot error is then raised by that spawn as without a
//!   nursery).
//! - The pool holds at most `BURST_POOL` VMs; the thread refills it as
//!   soon as a spawn took one, up to `BURST_POOL` while spawns come in a
//!   burst and `IDLE_POOL` otherwise. It sleeps on the condition variable
//!   only with the pool at its target (or the nursery gone) and
//!   `sleeping` set; a take wakes it only when `sleeping` is set: in a
//!   burst the thread is booting and no spawn pays for a wake-up.
//! - Pooled VMs belong to the pool until taken; once `Gone` the thread
//!   drops what is left (each VM closes through its own allocator) and
//!   leaves. A VM crosses threads only inside `BootedVm` (its `Send`
//!   argument is there): booted and nothing else, with no handle to it
//!   kept on the nursery thread.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::process::Process;
use super::vm::Vm;

/// VMs the nursery keeps ready while spawns come in a burst (each less
/// than `BURST_GAP` after the one before). A back-to-back burst takes
/// them faster than one thread boots (a boot costs ~1.7 times the
/// spawner's own share of a spawn, docs/performance.md "nursery"), so no
/// pool keeps it fed: spawns that find none boot their own, and the pool
/// must not stop the nursery meanwhile. 1,000 spawns, per spawn: 1 →
/// the nursery slept with its VM ready while the spawner booted; 2 →
/// 0.272 ms; 3 → 0.243–0.250 ms; 4 and 8 → 0.245 ms (main: 0.38 ms).
pub(crate) const BURST_POOL: usize = 3;

/// VMs the nursery refills to outside a burst: the next spawn still finds
/// one, and an idle process pays less than an idle actor for it (~70 kB
/// of RSS measured). (A burst may leave `BURST_POOL`: they stay until
/// spawns take them; nothing booted is thrown away.)
pub(crate) const IDLE_POOL: usize = 1;

/// Spawns less than this apart form a burst.
const BURST_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// Stack of the nursery thread: boot runs only the runtime's own Lua code
/// (address space; only the pages boot touches become resident).
const NURSERY_STACK_SIZE: usize = 1 << 20;

/// A booted VM that no thread hosts yet: made by the nursery thread,
/// handed to the spawner's (or a new) host thread.
pub(crate) struct BootedVm(Vm);

// SAFETY: a `Vm` is `!Send` because of what it holds: the mlua `Lua`
// (`Rc` and `RefCell` inside, mlua being built without its `send`
// feature), the `core` table handle (a weak reference to the same state),
// the VM state in the Lua's app data (`Rc<RefCell<VmState>>`, whose other
// clones live only in closures the Lua state owns), the allocator's
// `Cell`s (`VmMemory`) and the main state's raw pointer (into the same
// state). All of it is reachable only through this one value:
// the nursery thread makes the VM with `Vm::new`, keeps no clone of any
// handle, no Lua code runs on it after boot, and it moves the `BootedVm`
// out of its reach (into the pool) as a whole. Moving such an object graph
// at once, used by one thread at a time, is what `Send` asks for. Nothing
// in it is bound to the thread that made it:
// - mlua 0.12 (luajit, vendored) has no thread-locals; its statics are
//   only addresses used as registry keys. LuaJIT's one thread-local
//   (`static_uex` in lj_err.c, external unwinding) holds the error being
//   thrown and lives only while that throw unwinds. Its JIT code areas
//   and the CPU probe (actor/cpuid.rs) are process-wide.
// - The executor: its ring is made by its first op, and boot makes no op
//   (only the process's first executor makes its ring at once, and the
//   master's or the first spawner's executor is made before any nursery
//   boot when luring runs a script). A ring that does exist is set up
//   without `SINGLE_ISSUER` and `DEFER_TASKRUN`, the two flags that bind
//   a ring to one task (executor/mod.rs `new_ring`): completions' task
//   work goes to whichever task submitted. The eventfd and the thread's
//   wake-up signal are made or set by the host thread later.
// - What boot computed holds on any thread: `stdout_is_tty` is a fact of
//   the process's fd 1; the mailbox has no thread signal until the host
//   thread sets it (`Hosted`); the memory limit, import root, master and
//   monitor are set by the start, on the host thread.
// - The global allocator (glibc) frees a block from any thread, into the
//   arena it came from.
unsafe impl Send for BootedVm {}

impl BootedVm {
    pub(crate) fn into_vm(self) -> Vm {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unstarted,
    Running,
    Gone,
}

struct Pool {
    state: State,
    vms: Vec<BootedVm>,
    /// The thread waits on `Nursery::wake` (set and cleared by it).
    sleeping: bool,
    last_take: Option<std::time::Instant>,
    /// The last take came less than `BURST_GAP` after the one before.
    burst: bool,
}

impl Pool {
    /// How many VMs the thread boots ahead now.
    fn target(&self) -> usize {
        let in_burst = self.burst
            && self
                .last_take
                .is_some_and(|last| last.elapsed() < BURST_GAP);
        if in_burst {
            BURST_POOL
        } else {
            IDLE_POOL
        }
    }
}

/// The nursery of one process (see the module's invariants).
pub(crate) struct Nursery {
    pool: Mutex<Pool>,
    wake: Condvar,
}

impl Nursery {
    pub(crate) fn new() -> Self {
        Self {
            pool: Mutex::new(Pool {
                state: State::Unstarted,
                vms: Vec::new(),
                sleeping: false,
                last_take: None,
                burst: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A booted VM for a spawn of `process` (whose nursery `self` is), or
    /// `None` when none is ready: the caller boots its own. The first call
    /// starts the nursery thread.
    pub(crate) fn take(&self, process: &Arc<Process>) -> Option<Vm> {
        // Never blocks: the nursery thread may hold the lock while it is
        // preempted, and then this spawn boots its own VM rather than wait
        // for it to run again.
        let mut pool = match self.pool.try_lock() {
            Ok(pool) => pool,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        let now = std::time::Instant::now();
        pool.burst = pool
            .last_take
            .is_some_and(|last| now.saturating_duration_since(last) < BURST_GAP);
        pool.last_take = Some(now);
        match pool.state {
            State::Running => {}
            State::Unstarted => {
                self.start(process, &mut pool);
                return None;
            }
            State::Gone => return None,
        }
        let vm = pool.vms.pop();
        self.wake_if_short(&mut pool);
        vm.map(BootedVm::into_vm)
    }

    /// Wakes the thread if it sleeps and the pool is below its target.
    fn wake_if_short(&self, pool: &mut Pool) {
        if pool.sleeping && pool.vms.len() < pool.target() {
            pool.sleeping = false;
            self.wake.notify_one();
        }
    }

    /// The process ended: the thread drops its VMs and leaves; nothing is
    /// pooled or started from now on.
    pub(crate) fn close(&self) {
        let mut pool = self.lock();
        pool.state = State::Gone;
        if pool.sleeping {
            pool.sleeping = false;
            self.wake.notify_one();
        }
    }

    /// How many VMs are pooled now (tests).
    #[cfg(test)]
    fn pooled(&self) -> usize {
        self.lock().vms.len()
    }

    /// A spawn that took nothing (its VM came from elsewhere): keeps a
    /// burst going without draining the pool (tests).
    #[cfg(test)]
    fn note_spawn(&self) {
        let mut pool = self.lock();
        pool.burst = pool.last_take.is_some();
        pool.last_take = Some(std::time::Instant::now());
        self.wake_if_short(&mut pool);
    }

    /// Starts the thread, under the pool's lock (see the invariants).
    fn start(&self, process: &Arc<Process>, pool: &mut Pool) {
        let thread_process = process.clone();
        let spawned = std::thread::Builder::new()
            .name("luring-nursery".into())
            .stack_size(NURSERY_STACK_SIZE)
            .spawn(move || serve(&thread_process));
        match spawned {
            Ok(handle) => {
                pool.state = State::Running;
                // An embedded runtime joins it (its application lives on);
                // under `luring` it leaves by itself once closed, and the
                // process's exit does not wait for its last boot and drops.
                if process.embedded {
                    process
                        .joins
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(handle);
                }
            }
            // No thread: every spawn boots its own VM, as without a nursery.
            Err(_) => pool.state = State::Gone,
        }
    }
}

/// Marks the nursery `Gone` when its thread leaves, however it leaves.
struct LeaveGuard<'a>(&'a Nursery);

impl Drop for LeaveGuard<'_> {
    fn drop(&mut self) {
        let left = {
            let mut pool = self.0.lock();
            pool.state = State::Gone;
            std::mem::take(&mut pool.vms)
        };
        // Each VM closes on this thread, through its own allocator.
        drop(left);
    }
}

/// The nursery thread: keeps the pool full until the process ends or a
/// boot fails.
fn serve(process: &Arc<Process>) {
    let nursery = &process.nursery;
    let _leave = LeaveGuard(nursery);
    let mut pool = nursery.lock();
    loop {
        if pool.state == State::Gone {
            return;
        }
        if pool.vms.len() >= pool.target() {
            pool.sleeping = true;
            pool = nursery.wake.wait(pool).unwrap_or_else(|e| e.into_inner());
            pool.sleeping = false;
            continue;
        }
        drop(pool);
        let booted = Vm::new();
        pool = nursery.lock();
        match booted {
            Ok(vm) => pool.vms.push(BootedVm(vm)),
            // Spawns boot their own VM and raise this error themselves.
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::actor::vm::{VmConfig, VmExit};

    /// Waits (generously) until `cond` holds.
    fn await_condition(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn threads(process: &Process) -> usize {
        process.joins.lock().unwrap().len()
    }

    fn join_all(process: &Process) {
        for j in std::mem::take(&mut *process.joins.lock().unwrap()) {
            j.join().unwrap();
        }
    }

    #[test]
    fn the_first_take_starts_the_thread_and_later_ones_get_pooled_vms() {
        let process = Process::new_embedded();
        assert_eq!(threads(&process), 0, "no thread before the first spawn");
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(threads(&process), 1);
        await_condition("the pool filled", || process.nursery.pooled() == IDLE_POOL);
        let vm = process.nursery.take(&process).expect("a pooled VM");
        await_condition("the pool refilled", || {
            process.nursery.pooled() >= IDLE_POOL
        });
        drop(vm);
        process.end();
        join_all(&process);
        assert_eq!(process.nursery.pooled(), 0, "the thread dropped its VMs");
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(threads(&process), 0, "no thread after the end");
    }

    #[test]
    fn outside_an_embedded_runtime_the_thread_is_detached_and_leaves_when_closed() {
        let process = Process::new();
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(threads(&process), 0, "not joined: the exit does not wait");
        await_condition("the pool filled", || process.nursery.pooled() == IDLE_POOL);
        process.end();
        await_condition("the thread dropped its VMs and left", || {
            let pool = process.nursery.lock();
            pool.state == State::Gone && pool.vms.is_empty()
        });
        // (an `Arc` of the process lives in the thread until it returns)
        await_condition("the thread returned", || Arc::strong_count(&process) == 1);
    }

    #[test]
    fn a_burst_fills_the_pool_to_its_burst_size_and_no_further() {
        let process = Process::new_embedded();
        assert!(process.nursery.take(&process).is_none());
        await_condition("the burst pool filled", || {
            process.nursery.note_spawn();
            process.nursery.pooled() == BURST_POOL
        });
        for _ in 0..20 {
            process.nursery.note_spawn();
            assert!(process.nursery.pooled() <= BURST_POOL);
            std::thread::sleep(Duration::from_millis(1));
        }
        process.end();
        join_all(&process);
        assert_eq!(process.nursery.pooled(), 0);
    }

    #[test]
    fn an_ended_process_starts_no_nursery() {
        let process = Process::new_embedded();
        process.end();
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(threads(&process), 0);
    }

    #[test]
    fn a_nursery_that_left_makes_spawns_boot_their_own() {
        let process = Process::new_embedded();
        assert!(process.nursery.take(&process).is_none());
        await_condition("the pool filled", || process.nursery.pooled() == IDLE_POOL);
        // As when its thread failed a boot or panicked: the guard's work.
        process.nursery.close();
        join_all(&process);
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(threads(&process), 0, "no second thread");
    }

    /// A VM the nursery booted, run as a master VM on a third thread:
    /// timers, pipe I/O through its ring, and actors it spawns (themselves
    /// from its own process's nursery) on its thread and on new ones.
    #[test]
    fn a_vm_booted_by_the_nursery_runs_on_another_thread() {
        let dir = std::env::temp_dir().join(format!("luring-nursery-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("main.lua");
        std::fs::write(
            &script,
            r#"
local inbox = require 'inbox'
local pipe = require 'pipe'
local time = require 'time'
local function io_round(text)
  local r, w = pipe.pair()
  w:write_some(text)
  local buf = byte_span.new(32)
  return tostring(buf:slice(1, r:read_some(buf)))
end
if _CONTEXT == 'worker' then
  local m = inbox:receive()
  time.sleep(0.001)
  m.back:send(io_round('w' .. m.n))
  return
end
time.sleep(0.001)
local got = { io_round('main') }
for n = 1, 6 do
  spawn_vm({ module = '.', inherit_context = n % 2 == 0 }):send({ n = n, back = inbox })
  got[#got + 1] = inbox:receive()
end
if table.concat(got, ' ') ~= 'main w1 w2 w3 w4 w5 w6' then
  error(table.concat(got, ' '))
end
require('system').exit(7)
"#,
        )
        .unwrap();
        let process = Process::new_embedded();
        assert!(process.nursery.take(&process).is_none());
        await_condition("the pool filled", || process.nursery.pooled() == IDLE_POOL);
        let runner_process = process.clone();
        let runner = std::thread::Builder::new()
            .stack_size(crate::actor::vm::VM_THREAD_STACK_SIZE)
            .spawn(move || {
                let vm = runner_process
                    .nursery
                    .take(&runner_process)
                    .expect("pooled");
                vm.run_main(&VmConfig {
                    script: script.clone(),
                    arguments: vec!["luring".into(), script.to_string_lossy().into_owned()],
                    context: "main",
                })
                .map_err(|e| e.to_string())
            })
            .unwrap();
        let exit = runner.join().unwrap();
        assert_eq!(
            exit,
            Ok(VmExit {
                exit_code: Some(7),
                main_panicked: false,
                out_of_memory: false,
            })
        );
        process.end();
        join_all(&process);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
