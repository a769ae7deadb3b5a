//! The nursery: one thread per process that boots actor VMs ahead of their
//! spawns, so that `Vm::new` (about two thirds of a spawn's CPU) runs on
//! the other core instead of on the spawner's path.
//!
//! Invariants:
//! - The thread starts at the process's first spawn that asks for a VM
//!   (`Nursery::take`): a process that never spawns has no nursery thread
//!   and no pooled VM. It is not a host thread (it runs no actor and does
//!   not count in `Process::running`); its handle is in `Process::joins`.
//! - States: `Unstarted` → `Running` → `Gone`. `Gone` is final: set by
//!   `close` (the process ended), by a failed boot or thread start, or by
//!   the thread itself when it leaves for any reason (a guard sets it,
//!   panics included). A spawn that finds no pooled VM, whatever the
//!   state, boots its own VM synchronously (its error is raised as
//!   without a nursery): a spawn never waits for the nursery.
//! - All state is under one mutex; the thread sleeps on the condition
//!   variable only with the mutex held and `sleeping` set, and a take
//!   wakes it only when `sleeping` is set (a wake-up is a syscall; in a
//!   burst the thread is busy booting and no spawn pays for one).
//! - The pool holds at most `BURST_POOL` VMs while spawns come in a burst
//!   (less than `BURST_GAP` apart), else `IDLE_POOL`: the thread drops the
//!   surplus once the burst ended. Pooled VMs belong to the thread until
//!   taken; once `Gone` the thread drops what is left, on its own thread
//!   through each VM's own allocator, and leaves.
//! - A pooled VM crosses threads only inside `BootedVm` (its `Send`
//!   argument is there): it was booted and nothing else; no handle to it
//!   stays on the nursery thread once it is in the pool.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::process::Process;
use super::vm::Vm;

/// VMs kept while spawns come in a burst.
///
/// Measured with `benches/lua/actors_spawn.lua` (docs/performance.md
/// "nursery"): a back-to-back burst drains the pool faster than one thread
/// boots (the spawner's share of a spawn is about half a boot), so more
/// only serves the first spawns of a burst that follows a pause.
pub(crate) const BURST_POOL: usize = 4;

/// VMs kept once spawns stopped: the next spawn still finds one ready.
/// Each costs an idle process about one idle actor's memory.
pub(crate) const IDLE_POOL: usize = 1;

/// Spawns closer than this to the one before form a burst.
const BURST_GAP: Duration = Duration::from_millis(5);

/// Stack of the nursery thread: boot runs only the runtime's own Lua code
/// (address space; only the pages boot touches are resident).
const NURSERY_STACK_SIZE: usize = 1 << 20;

/// A booted VM that no thread hosts yet: made by the nursery thread,
/// handed to the spawner's (or a new) host thread.
pub(crate) struct BootedVm(Vm);

// SAFETY: a `Vm` is `!Send` because of what it holds: the mlua `Lua`
// (`Rc` and `RefCell` inside, mlua being built without its `send`
// feature), the `core` table handle (a weak reference to the same state),
// the VM state in the Lua's app data (`Rc<RefCell<VmState>>`, whose other
// clones live only in closures the Lua state owns) and the allocator's
// `Cell`s (`VmMemory`). All of it is reachable only through this one value:
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
    last_take: Option<Instant>,
    /// The last take came within `BURST_GAP` of the one before.
    burst: bool,
}

impl Pool {
    /// How many VMs to keep at `now`.
    fn target(&self, now: Instant) -> usize {
        match self.burst_ends() {
            Some(end) if now < end => BURST_POOL,
            _ => IDLE_POOL,
        }
    }

    /// When the current burst counts as over.
    fn burst_ends(&self) -> Option<Instant> {
        self.last_take
            .filter(|_| self.burst)
            .map(|last| last + BURST_GAP)
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
        let now = Instant::now();
        let mut pool = self.lock();
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
        self.wake_if_short(&mut pool, now);
        vm.map(BootedVm::into_vm)
    }

    /// Wakes the thread if it sleeps and the pool is below its target.
    fn wake_if_short(&self, pool: &mut Pool, now: Instant) {
        if pool.sleeping && pool.vms.len() < pool.target(now) {
            pool.sleeping = false;
            self.wake.notify_one();
        }
    }

    /// The process ended: the thread drops its VMs and leaves; no VM is
    /// pooled from now on.
    pub(crate) fn close(&self) {
        let mut pool = self.lock();
        let was = std::mem::replace(&mut pool.state, State::Gone);
        if was == State::Running && pool.sleeping {
            pool.sleeping = false;
            self.wake.notify_one();
        }
    }

    /// How many VMs are pooled now (tests).
    #[cfg(test)]
    pub(crate) fn pooled(&self) -> usize {
        self.lock().vms.len()
    }

    /// A spawn that took nothing (as when its VM came from elsewhere):
    /// keeps a burst going (tests).
    #[cfg(test)]
    fn note_spawn(&self) {
        let now = Instant::now();
        let mut pool = self.lock();
        pool.burst = pool.last_take.is_some();
        pool.last_take = Some(now);
        self.wake_if_short(&mut pool, now);
    }

    /// Starts the thread (under the pool's lock, so `close` either sees it
    /// running or it sees `Gone`). Its handle joins the process's threads.
    fn start(&self, process: &Arc<Process>, pool: &mut Pool) {
        let thread_process = process.clone();
        let spawned = std::thread::Builder::new()
            .name("luring-nursery".into())
            .stack_size(NURSERY_STACK_SIZE)
            .spawn(move || serve(&thread_process));
        match spawned {
            Ok(handle) => {
                pool.state = State::Running;
                process
                    .joins
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(handle);
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

/// The nursery thread: keeps the pool at its target until the process
/// ends or a boot fails.
fn serve(process: &Arc<Process>) {
    let nursery = &process.nursery;
    let _leave = LeaveGuard(nursery);
    let mut pool = nursery.lock();
    loop {
        if pool.state == State::Gone {
            return;
        }
        let now = Instant::now();
        let target = pool.target(now);
        if pool.vms.len() > target {
            let surplus = pool.vms.split_off(target);
            drop(pool);
            drop(surplus);
            pool = nursery.lock();
            continue;
        }
        if pool.vms.len() == target {
            // Full: sleep until a take, or until the burst is over (then
            // the surplus goes).
            let until_quiet = pool
                .burst_ends()
                .filter(|_| target > IDLE_POOL)
                .map(|end| end.saturating_duration_since(now));
            pool.sleeping = true;
            pool = match until_quiet {
                Some(timeout) => {
                    nursery
                        .wake
                        .wait_timeout(pool, timeout)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => nursery.wake.wait(pool).unwrap_or_else(|e| e.into_inner()),
            };
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
    use super::*;

    /// Waits (generously) until `cond` holds.
    fn await_condition(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn joins(process: &Process) -> usize {
        process.joins.lock().unwrap().len()
    }

    fn join_all(process: &Process) {
        for j in std::mem::take(&mut *process.joins.lock().unwrap()) {
            j.join().unwrap();
        }
    }

    #[test]
    fn first_take_starts_the_thread_and_later_ones_get_booted_vms() {
        let process = Process::new();
        assert_eq!(joins(&process), 0, "no thread before the first spawn");
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(joins(&process), 1);
        await_condition("the idle pool filled", || {
            process.nursery.pooled() == IDLE_POOL
        });
        let vm = process.nursery.take(&process).expect("a pooled VM");
        drop(vm);
        process.end();
        join_all(&process);
        assert_eq!(process.nursery.pooled(), 0, "left VMs are dropped");
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(joins(&process), 0, "no thread after the end");
    }

    #[test]
    fn a_burst_fills_the_pool_and_the_surplus_goes_after_it() {
        let process = Process::new();
        assert!(process.nursery.take(&process).is_none());
        assert!(
            process.nursery.take(&process).is_none(),
            "nothing booted yet"
        );
        // Spawns keep the burst going until the burst pool is full.
        await_condition("the burst pool filled", || {
            process.nursery.note_spawn();
            process.nursery.pooled() == BURST_POOL
        });
        await_condition("the surplus dropped", || {
            process.nursery.pooled() == IDLE_POOL
        });
        process.end();
        join_all(&process);
    }

    #[test]
    fn an_ended_process_starts_no_nursery() {
        let process = Process::new();
        process.end();
        assert!(process.nursery.take(&process).is_none());
        assert_eq!(joins(&process), 0);
    }
}
