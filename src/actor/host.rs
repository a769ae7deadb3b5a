//! The thread host: runs every actor VM placed on one OS thread.
//!
//! Invariants:
//! - Each VM keeps its own Lua state, ring and run queue; the host only
//!   calls their scheduler steps (`K.step`) in turn, in spawn order.
//! - A step never sleeps while another VM on the thread could run: steps
//!   run with `block = false` (reaping a ring's completions reads shared
//!   memory, no syscall) and the host sleeps in one place when every VM is
//!   idle: in the one VM's ring when only one has ops in flight, else in
//!   `poll(2)` on the rings that do (a ring fd is readable once it has
//!   completions; the rings are set up without `DEFER_TASKRUN`, so task work
//!   runs without the ring's own thread entering it first).
//! - A VM whose mailbox was touched (message, receipt, last sender gone,
//!   inbox closed) is polled before its next step; messages between VMs on
//!   one thread never make a syscall.
//! - Output: with several VMs on the thread, each VM's output is written
//!   (and waited for) at the end of the step that made it, so the streams
//!   show it in the order the VMs ran.
//! - A spawn's VM comes booted from the process's nursery (nursery.rs)
//!   when one is ready, else it boots right there; either way the thread
//!   that will host it compiles its module and queues its main fiber
//!   (`WorkerStart::start`), so a load error reaches the spawner as before.
//! - A VM that is done is torn down at once: its inbox closes first (its
//!   queued senders get `channel_closed`), then its Lua state closes, which
//!   drops its channel handles (other inboxes may see `no_senders`).
//! - A pool thread (a `Lane`) also boots the VMs other threads hand it,
//!   between two rounds of steps; it leaves only when it has no VM and no
//!   start waiting (checked under the lane's lock, so a start handed to it
//!   is either booted or sees the lane closed and takes a new thread), and
//!   answers `Ended` to the starts still waiting when the process ends.
//! - The process ends when every VM is done, when `system.exit` ran in any
//!   of them (that code wins), or when none can ever be woken: every VM
//!   idle, no op in flight, no mailbox touched even after a full garbage
//!   collection in each VM.

use std::cell::RefCell;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::sync::Arc;

use mlua::{Lua, Table, Value};

use super::channels::ChannelHandle;
use super::mailbox::{ActorAddress, Envelope, Mailbox};
use super::message::Message;
use super::module_files::{self, EntryError};
use super::process::{Process, Sleep, ThreadSignal};
use super::vm::{
    with_state, Ran, Receipts, SharedState, Step, StepFunction, Vm, VmExit, VmState,
    VM_THREAD_STACK_SIZE,
};
use crate::modules::error;
use crate::RuntimeError;

struct Hosted {
    vm: Vm,
    step: StepFunction,
    mailbox: Arc<Mailbox>,
    /// The VM's state, read between steps without a Lua call.
    state: SharedState,
    /// The last step left fibers queued (a new VM starts so: its main
    /// fiber is queued).
    ready: bool,
    /// Skipped by its thread's rounds until its mailbox is noted woken or
    /// `ready` is set (`park_if_idle`).
    parked: bool,
}

impl Hosted {
    fn new(vm: Vm) -> Result<Self, RuntimeError> {
        let boot = |e: mlua::Error| RuntimeError::Boot(e.to_string());
        let step = vm.step_function().map_err(boot)?;
        let state = vm.shared_state().map_err(boot)?;
        let mailbox = vm.mailbox();
        Ok(Self {
            vm,
            step,
            mailbox,
            state,
            ready: true,
            parked: false,
        })
    }

    /// Parks the VM if nothing but its mailbox can give it work: no fibers
    /// queued, no ring and no op (so no completion to come). Called only
    /// after `wants_step` said no (nothing stashed either).
    /// A parked VM costs its thread's rounds no look at its mailbox or
    /// state (two or three cache misses each: with a thousand idle actors
    /// on a thread, most of a round); its mailbox, once pending, notes it
    /// with the thread's signal (`Mailbox::set_parked`).
    fn park_if_idle(&mut self) {
        if self.ready || self.parked {
            return;
        }
        // (No ring: no op was ever submitted; no op at all either: a
        // write still queued for the output stream, or one whose cancel
        // left a completion in the stash, is counted in flight.)
        let quiet = self
            .state
            .try_borrow()
            .is_ok_and(|st| !st.has_ring() && !st.in_flight());
        if quiet && self.mailbox.set_parked() {
            self.parked = true;
        }
    }

    fn unpark(&mut self) {
        self.parked = false;
        self.mailbox.clear_parked();
    }

    /// Polls the mailbox if touched, then steps. `alone`: the only VM of a
    /// single-threaded process, so the step may go on while fibers are
    /// ready and neither its mailbox nor the host needs a look (one call
    /// into Lua per turn costs as much as the scheduler's own work).
    fn run_once(&mut self, block: bool, alone: bool) -> Result<Step, Ran> {
        let poll = self.mailbox.take_pending();
        let mut owed = false;
        let (receipts, handed) = match poll.then(|| self.state.try_borrow_mut()) {
            Some(Ok(mut st)) => {
                let receipts = st.take_receipts();
                // A number or boolean from Rust or from a VM of this
                // thread comes with the wake-up: the receiving fiber then
                // takes it without a call into Rust (the step gives it
                // back if no receive did; a receipt it owes is posted
                // once the step ended, `settle`).
                let handed = self.mailbox.take_handable().map(|(value, env)| {
                    if env.sender.is_some() {
                        owed = true;
                        st.handed = Some(env);
                    }
                    value
                });
                (receipts, handed)
            }
            Some(Err(_)) => (Receipts::Several, None),
            None => (Receipts::None, None),
        };
        let outcome = self
            .vm
            .step(&self.step, block, poll, alone, receipts, handed);
        if owed {
            self.settle(&outcome);
        }
        self.ready = matches!(outcome, Ok(Step::Ready));
        outcome
    }

    /// After a step that was handed a message owing a receipt: unless the
    /// step put it back or the inbox was closed (either took it out of
    /// the state), a receive took it: its sender gets "delivered" now.
    /// A step that ended the VM (done, or failed) may have left it
    /// unreceived: then it goes back to the queue, which the VM's end
    /// closes (its sender gets "refused").
    fn settle(&self, outcome: &Result<Step, Ran>) {
        let Some(env) = self
            .state
            .try_borrow_mut()
            .ok()
            .and_then(|mut st| st.handed.take())
        else {
            return;
        };
        let received = match outcome {
            // (a step that goes on gives back what no receive took)
            Ok(Step::Ready | Step::Idle) => true,
            _ => !self.vm.handed_still_held(),
        };
        if received {
            Mailbox::deliver(env);
        } else {
            self.mailbox.put_back(env);
        }
    }

    /// Whether a step could do anything: fibers are queued, the mailbox
    /// was touched or the ring (or its stash) holds completions. An idle
    /// VM is not stepped: that is one call into Lua saved per VM and host
    /// round, which with many actors on a thread made every host round
    /// O(actors) Lua calls.
    fn wants_step(&self) -> bool {
        self.ready || self.mailbox.is_pending() || self.with_state(VmState::has_completions)
    }

    /// Writes what the VM printed in its step (several VMs share the
    /// thread's streams: output keeps the order the VMs ran in).
    fn flush_output(&self) {
        self.with_state(|st| {
            st.flush_if_output();
            false
        });
    }

    fn in_flight(&self) -> bool {
        self.with_state(|st| st.in_flight())
    }

    /// Between steps no Lua runs, so the state is free; `false` if not.
    fn with_state(&self, f: impl FnOnce(&mut VmState) -> bool) -> bool {
        self.state
            .try_borrow_mut()
            .map(|mut st| f(&mut st))
            .unwrap_or(false)
    }

    /// Tears the VM down (inbox closed first, then the Lua state) and
    /// records how it ended in the process outcome.
    fn end(mut self, ran: Ran, process: &Process) {
        self.unpark();
        let master = self.vm.is_master();
        let exit = self.vm.finish(ran);
        let monitor = self.vm.take_monitor();
        self.mailbox.close();
        drop(self.vm);
        if let Some((to, main_done, error)) = monitor {
            let notice = monitor_notice(&self.mailbox, &exit, main_done, error);
            let _ = to.mailbox.post(Envelope {
                msg: notice,
                sender: None,
                send_id: 0,
            });
        }
        let mut outcome = process.lock_outcome();
        match exit {
            Ok(exit) => {
                if master && exit.main_panicked {
                    outcome.master_panicked = true;
                    outcome.master_out_of_memory = exit.out_of_memory;
                }
                if let Some(code) = exit.exit_code {
                    outcome.exit_code.get_or_insert(code);
                    drop(outcome);
                    process.end();
                }
            }
            Err(e) => {
                outcome.failure.get_or_insert(e.to_string());
                drop(outcome);
                process.end();
            }
        }
    }
}

/// The message a monitor gets when the VM it watches ends
/// (docs/guide/actors.md "Monitors"): `{ monitor = 'ended', actor = <its
/// address>, reason = 'normal' | 'panic' | 'killed', error = <text> }`.
fn monitor_notice(
    mailbox: &Arc<Mailbox>,
    exit: &Result<VmExit, RuntimeError>,
    main_done: bool,
    error: Option<String>,
) -> Message {
    let mut members: Vec<(&str, Message)> = vec![
        ("monitor", "ended".into()),
        (
            "actor",
            Message::Address(ActorAddress::new(mailbox.clone())),
        ),
    ];
    let panicked = matches!(exit, Ok(e) if e.main_panicked);
    let reason = match (panicked, error) {
        (true, Some(text)) => {
            members.push(("error", text.into()));
            "panic"
        }
        // Closed for lack of memory, or by an error in a cleanup handler.
        (true, None) => "killed",
        (false, _) if main_done && exit.is_ok() => "normal",
        // Torn down before its main fiber finished (the process ended).
        (false, _) => "killed",
    };
    members.push(("reason", reason.into()));
    Message::object(members)
}

/// The process and thread a host thread belongs to.
struct HostContext {
    process: Arc<Process>,
}

thread_local! {
    /// VMs spawned on this thread since the host last looked.
    static SPAWNED: RefCell<Vec<Hosted>> = const { RefCell::new(Vec::new()) };
    /// The lane this host thread serves, if it is one.
    static LANE: RefCell<Option<Arc<Lane>>> = const { RefCell::new(None) };
    static CONTEXT: RefCell<Option<HostContext>> = const { RefCell::new(None) };
}

/// A host thread that other threads hand new actors to: one thread of an
/// embedded runtime's pool (`RuntimeBuilder::threads`). The thread boots
/// each start between two rounds of steps and answers its spawner.
pub(crate) struct Lane {
    /// Starts waiting for the thread; `None` once it left for good (it had
    /// no VM left, or the process is over): the lane's next actor needs a
    /// new thread.
    starts: std::sync::Mutex<Option<Vec<LaneStart>>>,
    signal: Arc<ThreadSignal>,
}

/// A start handed to a lane, with where its report goes.
type LaneStart = (WorkerStart, std::sync::mpsc::SyncSender<Started>);

/// What a spawn on a new thread gives: the actor (or its load error) and
/// the thread's lane, when it was asked for one.
type NewThread = (Result<ActorAddress, String>, Option<Arc<Lane>>);

impl Lane {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<LaneStart>>> {
        self.starts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_starts(&self) -> bool {
        self.lock().as_ref().is_some_and(|q| !q.is_empty())
    }

    /// Boots the waiting starts on this (the lane's) thread; true if any.
    fn boot_waiting(&self, process: &Arc<Process>, vms: &mut Vec<Hosted>) -> bool {
        let waiting = match self.lock().as_mut() {
            Some(q) if !q.is_empty() => std::mem::take(q),
            _ => return false,
        };
        for (start, reply) in waiting {
            let (report, hosted) = self.boot(Some(process), start);
            vms.extend(hosted);
            let _ = reply.send(report);
        }
        true
    }

    /// Boots `start` for this lane's thread: the report for its spawner
    /// and, when it started, the VM for the thread to host.
    fn boot(
        &self,
        process: Option<&Arc<Process>>,
        start: WorkerStart,
    ) -> (Started, Option<Hosted>) {
        match start.start(process) {
            Ok(Ok(hosted)) => {
                hosted.mailbox.set_signal(self.signal.clone());
                let address = ActorAddress::new(hosted.mailbox.clone());
                (Started::Ok(address), Some(hosted))
            }
            Ok(Err(text)) => (Started::Load(text), None),
            Err(text) => (Started::Failed(text), None),
        }
    }

    /// The thread leaves unless a start came in meanwhile; true if it
    /// may go. Starts that wait when `ended` (the process is over) are
    /// answered `Ended`.
    fn close(&self, ended: bool) -> bool {
        let mut starts = self.lock();
        if !ended && starts.as_ref().is_some_and(|q| !q.is_empty()) {
            return false;
        }
        for (_, reply) in starts.take().into_iter().flatten() {
            let _ = reply.send(Started::Ended);
        }
        true
    }
}

/// The lane this thread serves, if it is a pool thread.
pub(crate) fn current_lane() -> Option<Arc<Lane>> {
    LANE.with_borrow(|l| l.clone())
}

/// Whether this is a host thread (of any process): a spawn from here must
/// not wait for a pool thread, which may itself wait for this one.
pub(crate) fn on_host_thread() -> bool {
    CONTEXT.with_borrow(|c| c.is_some())
}

/// Boots `start` right here, on the thread that serves `lane` (a Rust
/// function called from one of its actors spawns): waiting for our own
/// thread would never end.
pub(crate) fn boot_here(
    lane: &Lane,
    start: WorkerStart,
) -> Result<Result<ActorAddress, String>, ThreadFailed> {
    let (report, hosted) = lane.boot(current_process().as_ref(), start);
    if let Some(hosted) = hosted {
        SPAWNED.with_borrow_mut(|s| s.push(hosted));
    }
    started(Ok(report))
}

/// A start handed to a pool thread.
pub(crate) enum Handed {
    /// Queued on the slot's running thread: wait for its report with
    /// `wait_started`, holding no lock the pool threads may need.
    Queued(std::sync::mpsc::Receiver<Started>),
    /// The slot had no thread (or it left): a new one started the actor.
    Started(Result<ActorAddress, String>),
}

/// Hands `start` to the pool thread of `slot`, or starts a new thread that
/// becomes the slot's lane when there is none or it left.
pub(crate) fn hand_to_lane(
    process: &Arc<Process>,
    slot: &mut Option<Arc<Lane>>,
    start: WorkerStart,
) -> Result<Handed, ThreadFailed> {
    if let Some(lane) = slot.as_ref() {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Started>(1);
        let mut starts = lane.lock();
        if let Some(queue) = starts.as_mut() {
            queue.push((start, tx));
            drop(starts);
            lane.signal.wake();
            return Ok(Handed::Queued(rx));
        }
    }
    let (started, lane) = spawn_host_thread(process, start, true)?;
    *slot = lane;
    Ok(Handed::Started(started))
}

/// Waits for the report of a start handed to a pool thread.
pub(crate) fn wait_started(
    report: std::sync::mpsc::Receiver<Started>,
) -> Result<Result<ActorAddress, String>, ThreadFailed> {
    started(report.recv())
}

/// The process of the host thread this runs on (`None` outside one).
pub(crate) fn current_process() -> Option<Arc<Process>> {
    CONTEXT.with_borrow(|c| c.as_ref().map(|c| c.process.clone()))
}

/// Whether the host must look before the running VM's next step: a VM was
/// spawned on this thread, another thread runs or the process is over.
/// (K.step keeps stepping a VM alone on its thread until then, see
/// `run_once`.)
pub(crate) fn host_has_work() -> bool {
    SPAWNED.with_borrow(|spawned| !spawned.is_empty())
        || CONTEXT.with_borrow(|c| {
            c.as_ref()
                .is_none_or(|c| c.process.is_over() || c.process.several_threads())
        })
}

/// Runs `master` and every actor it spawns until the process is over;
/// returns how the process ended: the code of a `system.exit` called in
/// any actor, or whether the master's main fiber failed.
pub(crate) fn run(master: Vm) -> Result<VmExit, RuntimeError> {
    let process = Process::new();
    let signal = process.add_thread().map_err(RuntimeError::Ring)?;
    master.set_master(true);
    let hosted = Hosted::new(master)?;
    host_thread(&process, &signal, hosted, None);
    // Wait until the actors on other threads are done too.
    while !process.is_over() {
        sleep_on(&[signal.eventfd()], None);
        signal.awake(&process);
    }
    loop {
        let joins = std::mem::take(&mut *process.joins.lock().unwrap_or_else(|e| e.into_inner()));
        if joins.is_empty() {
            break;
        }
        for j in joins {
            if j.join().is_err() {
                process
                    .lock_outcome()
                    .failure
                    .get_or_insert_with(|| "an actor thread panicked".into());
            }
        }
    }
    if std::env::var_os("LURING_REPORT_WAKEUPS").is_some() {
        eprintln!(
            "luring: {} cross-thread wake-ups",
            super::process::WAKEUPS.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    let outcome = std::mem::take(&mut *process.lock_outcome());
    if let Some(reason) = outcome.failure {
        return Err(RuntimeError::Internal(reason));
    }
    Ok(VmExit {
        exit_code: outcome.exit_code,
        main_panicked: outcome.master_panicked,
        out_of_memory: outcome.master_out_of_memory,
    })
}

/// Runs the VMs of this thread until they are all done or the process is
/// over, then tears down what is left.
fn host_thread(
    process: &Arc<Process>,
    signal: &Arc<ThreadSignal>,
    first: Hosted,
    lane: Option<Arc<Lane>>,
) {
    CONTEXT.with_borrow_mut(|c| {
        *c = Some(HostContext {
            process: process.clone(),
        })
    });
    LANE.with_borrow_mut(|l| l.clone_from(&lane));
    signal.enter_current();
    first.mailbox.set_signal(signal.clone());
    let mut vms = vec![first];
    let mut collected = false;
    // Slept once, not stuck, since the last progress (see `IDLE_GC_DELAY`).
    let mut idle_waited = false;
    // A mailbox was touched since this thread last looked for work
    // without finding any (see `spin_for_work`).
    let mut traffic = false;
    // Mailboxes of parked VMs that became pending (`Hosted::parked`).
    let mut woken: Vec<usize> = Vec::new();
    let mut parking = false;
    loop {
        if process.is_over() {
            break;
        }
        let several = vms.len() > 1 || process.several_threads();
        let mut progress = false;
        // A mailbox was touched: a message, a receipt or no_senders came
        // (the step may still end idle, its fibers waiting again).
        let mut touched = false;
        let park = vms.len() > PARK_ABOVE;
        // (Only a thread that ever had that many VMs may have parked one: a
        // thread with a few pays nothing for parking, per round or message.)
        parking |= park;
        if parking {
            signal.take_woken(&mut woken);
            if woken.len() > 1 {
                woken.sort_unstable();
            }
        }
        let mut i = 0;
        while i < vms.len() {
            let h = &mut vms[i];
            if h.parked {
                if !h.ready && woken.binary_search(&h.mailbox.address()).is_err() {
                    i += 1;
                    continue;
                }
                h.unpark();
            }
            if !h.wants_step() {
                if park {
                    h.park_if_idle();
                }
                i += 1;
                continue;
            }
            touched |= vms[i].mailbox.is_pending();
            let outcome = vms[i].run_once(false, !several);
            if several {
                vms[i].flush_output();
            }
            match outcome {
                Ok(Step::Ready) => progress = true,
                Ok(Step::Idle) => {}
                Ok(Step::Done) | Err(_) => {
                    let ran = outcome.map(|_| None).or_else(|ran| ran);
                    vms.remove(i).end(ran, process);
                    progress = true;
                    continue;
                }
            }
            i += 1;
        }
        SPAWNED.with_borrow_mut(|spawned| {
            if !spawned.is_empty() {
                progress = true;
                for h in spawned.iter() {
                    h.mailbox.set_signal(signal.clone());
                }
                vms.append(spawned);
            }
        });
        if let Some(lane) = &lane {
            progress |= lane.boot_waiting(process, &mut vms);
        }
        if process.is_over() {
            break;
        }
        if vms.is_empty() {
            // A pool thread leaves only with no start waiting for it.
            if lane.as_ref().is_none_or(|lane| lane.close(false)) {
                break;
            }
            continue;
        }
        // A flush after a step may have reaped completions into a VM's
        // stash: that VM must step again before anyone sleeps (its ring
        // shows nothing for them).
        traffic |= touched;
        if touched {
            collected = false;
            idle_waited = false;
        }
        if progress || vms.iter().any(Hosted::wants_step) {
            collected = false;
            idle_waited = false;
            continue;
        }
        // Every VM of this thread is idle.
        if traffic && process.several_threads() {
            traffic = false;
            if spin_for_work(&vms, process) {
                continue;
            }
        }
        let waiting: Vec<usize> = (0..vms.len()).filter(|&i| vms[i].in_flight()).collect();
        if waiting.len() == 1 && !process.several_threads() {
            // Alone in the process: sleep in the ring itself.
            let h = &mut vms[waiting[0]];
            let outcome = h.run_once(true, !several);
            if several {
                h.flush_output();
            }
            // Done here too (the VM ended while it slept, e.g. system.exit
            // with an op left in flight): a VM that is over is never
            // stepped again (it would answer Done at once, forever).
            match outcome {
                Ok(Step::Ready | Step::Idle) => {}
                Ok(Step::Done) | Err(_) => {
                    let ran = outcome.map(|_| None).or_else(|ran| ran);
                    vms.remove(waiting[0]).end(ran, process);
                }
            }
            continue;
        }
        // Nothing in flight: only another thread can wake this one, or a
        // collection that drops the last sender of some inbox (unreferenced
        // handles). The thread first sleeps a little without counting as
        // stuck: a thread between two messages would otherwise trace every
        // VM's heap at each sleep (most of a cross-thread round trip).
        let mut timeout = None;
        if waiting.is_empty() && !collected && !idle_waited {
            idle_waited = true;
            timeout = Some(IDLE_GC_DELAY);
        } else if waiting.is_empty() && !collected {
            // Unreferenced handles may be the last senders of an inbox.
            for h in &mut vms {
                h.vm.collect_garbage();
                // Finalizers may have woken fibers: look at every VM again.
                h.ready = true;
            }
            collected = true;
            continue;
        }
        let has_work = || {
            vms.iter().any(|h| h.mailbox.is_pending())
                || lane.as_ref().is_some_and(|lane| lane.has_starts())
        };
        let stuck = waiting.is_empty() && timeout.is_none();
        match signal.prepare_sleep(process, stuck, has_work) {
            Sleep::Wait => {}
            Sleep::Retry => continue,
            Sleep::Over => break,
        }
        // (Read now: a VM's ring is made by its first op; one with ops in
        // flight has it.)
        let mut fds: Vec<RawFd> = waiting
            .iter()
            .map(|&i| vms[i].state.borrow().executor.ring_fd())
            .collect();
        fds.push(signal.eventfd());
        sleep_on(&fds, timeout);
        signal.awake(process);
    }
    // Teardown, newest first. VMs left behind without an exit or a failure
    // can never be woken: report what they were blocked on.
    let quiet = {
        let o = process.lock_outcome();
        o.exit_code.is_none() && o.failure.is_none() && !o.shut_down
    };
    if let Some(lane) = &lane {
        lane.close(true);
    }
    LANE.with_borrow_mut(|l| *l = None);
    SPAWNED.with_borrow_mut(|spawned| vms.append(spawned));
    while let Some(h) = vms.pop() {
        if quiet {
            h.vm.report_stuck();
        }
        h.end(Ok(None), process);
    }
    CONTEXT.with_borrow_mut(|c| *c = None);
    ThreadSignal::leave_current();
    process.leave(signal);
}

/// A thread with more VMs than this parks its idle ones
/// (`Hosted::park_if_idle`): with few, a look at each is cheaper than
/// parking (a locked store) and noting wake-ups (a lock per message).
const PARK_ABOVE: usize = 16;

/// How long a thread with nothing in flight sleeps before it collects
/// garbage in its VMs and counts as stuck (which may end the process).
/// Short against a program's life, long against the gap between two
/// messages.
const IDLE_GC_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

/// How long an idle host thread that just exchanged messages keeps
/// looking for work before it sleeps (and a blocking Rust `Mailbox`
/// receive looks for its message). Waking a sleeping thread costs an
/// eventfd write (or a futex wake) and 10-60 µs of an idle vCPU here; a
/// partner on another core usually answers within a few µs. Bounded, and
/// only after traffic: an idle process does not spin
/// (tests/lua/actors/idle_cpu.lua).
pub(crate) const SPIN: std::time::Duration = std::time::Duration::from_micros(50);

/// Looks for up to `window` (and never past `deadline`) for `ready`
/// (cheap: checked in tight rounds of 64) or `ready_slow` (checked
/// between rounds); true when one held. The clock is first read after a
/// round that found nothing: a partner that answers within the first
/// round (the usual request-reply case) costs no clock read at all (a
/// vDSO `clock_gettime` is ~25 ns here, a few percent of a round trip).
/// After the first rounds it yields the CPU between looks (`sched_yield`,
/// not a wake-up: it returns at once when nothing else wants this core),
/// so a partner that shares the core still gets to answer. Whatever a
/// partner posts meanwhile costs it no wake-up: the looking thread still
/// counts as running.
pub(crate) fn spin_until(
    window: std::time::Duration,
    deadline: Option<std::time::Instant>,
    ready: impl Fn() -> bool,
    ready_slow: impl Fn() -> bool,
) -> bool {
    let mut until = None;
    let mut round = 0u32;
    loop {
        for _ in 0..64 {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if ready_slow() {
            return true;
        }
        let now = std::time::Instant::now();
        let until = *until.get_or_insert_with(|| {
            let end = now + window;
            deadline.map_or(end, |d| end.min(d))
        });
        if now >= until {
            return false;
        }
        round += 1;
        if round > 8 {
            std::thread::yield_now();
        }
    }
}

/// Looks for up to `SPIN` until a VM of this thread has something to do
/// (with atomics, the rings' shared memory and the vDSO clock).
fn spin_for_work(vms: &[Hosted], process: &Process) -> bool {
    spin_until(
        SPIN,
        None,
        || vms.iter().any(|h| h.mailbox.is_pending()),
        || process.is_over() || vms.iter().any(Hosted::wants_step),
    )
}

/// Sleeps until one of `fds` is readable (a ring with completions, the
/// thread's eventfd) or `timeout` passed. EINTR just returns: the caller
/// looks again.
fn sleep_on(fds: &[RawFd], timeout: Option<std::time::Duration>) {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let timeout_ms = timeout.map_or(-1, |t| t.as_millis().max(1) as libc::c_int);
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfds.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
}

/// What a new actor thread reports back to the spawner.
pub(crate) enum Started {
    /// The spawner's handle, counted as a sender before the actor runs.
    Ok(ActorAddress),
    /// The module does not compile: raised in the caller as is.
    Load(String),
    Failed(String),
    /// The process ended before the lane's thread booted it.
    Ended,
}

/// Creates a worker VM on a new thread, waiting until it started.
fn spawn_thread(start: WorkerStart) -> mlua::Result<Result<ActorAddress, String>> {
    let process = CONTEXT
        .with_borrow(|c| c.as_ref().map(|c| c.process.clone()))
        .ok_or_else(|| mlua::Error::runtime("luring: spawn_vm outside a host thread"))?;
    match spawn_thread_in(&process, start) {
        Ok(started) => Ok(started),
        Err(ThreadFailed::Os(e)) => Err(error::ErrorCode::from_io(&e).into()),
        Err(ThreadFailed::Boot(text)) => Err(mlua::Error::runtime(text)),
        Err(ThreadFailed::Ended) => Err(mlua::Error::runtime("luring: the process has ended")),
    }
}

/// Why `spawn_thread_in` started no actor.
pub(crate) enum ThreadFailed {
    /// No eventfd or no thread (the OS refused).
    Os(std::io::Error),
    /// The VM failed to boot (a bug in luring, or no io_uring).
    Boot(String),
    /// The process ended first (a pool thread was handed the start).
    Ended,
}

/// Creates a worker VM of `process` on a new thread, waiting until it
/// started; works from any thread (an embedding application's too).
/// `Ok(Err(text))`: the module does not compile.
pub(crate) fn spawn_thread_in(
    process: &Arc<Process>,
    start: WorkerStart,
) -> Result<Result<ActorAddress, String>, ThreadFailed> {
    spawn_host_thread(process, start, false).map(|(started, _)| started)
}

/// `spawn_thread_in`; with `as_lane`, the new thread also serves a
/// [`Lane`] (returned once the VM started).
fn spawn_host_thread(
    process: &Arc<Process>,
    start: WorkerStart,
    as_lane: bool,
) -> Result<NewThread, ThreadFailed> {
    let signal = process.add_thread().map_err(ThreadFailed::Os)?;
    let lane = as_lane.then(|| {
        Arc::new(Lane {
            starts: std::sync::Mutex::new(Some(Vec::new())),
            signal: signal.clone(),
        })
    });
    let (tx, rx) = std::sync::mpsc::sync_channel::<Started>(1);
    let thread_process = process.clone();
    let thread_signal = signal.clone();
    let thread_lane = lane.clone();
    let spawned = std::thread::Builder::new()
        .name("luring-actor".into())
        .stack_size(VM_THREAD_STACK_SIZE)
        .spawn(move || {
            let (process, signal) = (thread_process, thread_signal);
            let hosted = match start.start(Some(&process)) {
                Ok(Ok(h)) => h,
                Ok(Err(text)) => {
                    let _ = tx.send(Started::Load(text));
                    process.leave(&signal);
                    process.forget(&signal);
                    return;
                }
                Err(e) => {
                    let _ = tx.send(Started::Failed(e));
                    process.leave(&signal);
                    process.forget(&signal);
                    return;
                }
            };
            let _ = tx.send(Started::Ok(ActorAddress::new(hosted.mailbox.clone())));
            drop(tx);
            host_thread(&process, &signal, hosted, thread_lane);
            process.forget(&signal);
        });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => {
            process.leave(&signal);
            process.forget(&signal);
            return Err(ThreadFailed::Os(e));
        }
    };
    {
        let mut joins = process.joins.lock().unwrap_or_else(|e| e.into_inner());
        // Threads whose actors ended are joined here, so a long-lived
        // process does not keep a handle per thread it ever started.
        let (done, running): (Vec<_>, Vec<_>) = std::mem::take(&mut *joins)
            .into_iter()
            .partition(|j| j.is_finished());
        *joins = running;
        joins.push(handle);
        drop(joins);
        for j in done {
            if j.join().is_err() {
                process
                    .lock_outcome()
                    .failure
                    .get_or_insert_with(|| "an actor thread panicked".into());
            }
        }
    }
    let started = started(rx.recv())?;
    // A VM that did not start left its thread at once: no lane to keep.
    let lane = lane.filter(|_| started.is_ok());
    Ok((started, lane))
}

/// What the spawner makes of its new actor's report.
fn started(
    report: Result<Started, std::sync::mpsc::RecvError>,
) -> Result<Result<ActorAddress, String>, ThreadFailed> {
    match report {
        Ok(Started::Ok(address)) => Ok(Ok(address)),
        Ok(Started::Load(text)) => Ok(Err(text)),
        Ok(Started::Failed(e)) => Err(ThreadFailed::Boot(e)),
        Ok(Started::Ended) => Err(ThreadFailed::Ended),
        Err(_) => Err(ThreadFailed::Boot(
            "luring: the actor thread failed to start".into(),
        )),
    }
}

/// Everything a worker needs to start, owned (it may move to a new thread).
pub(crate) struct WorkerStart {
    pub(crate) src: Vec<u8>,
    pub(crate) identity: String,
    pub(crate) path: Vec<u8>,
    pub(crate) display: Vec<u8>,
    pub(crate) root_path: Vec<u8>,
    pub(crate) display_root: Vec<u8>,
    pub(crate) is_init: bool,
    /// The spawner's import root, shared (no fd per actor).
    pub(crate) root: std::sync::Arc<std::os::fd::OwnedFd>,
    pub(crate) memory_limit: Option<usize>,
    pub(crate) master: bool,
    /// The spawner's inbox, when it monitors the new VM.
    pub(crate) monitor: Option<ActorAddress>,
}

impl WorkerStart {
    /// Boots the VM, or takes one `process`'s nursery booted, and queues
    /// its main fiber. `Ok(Err(text))`: the module does not compile.
    fn start(self, process: Option<&Arc<Process>>) -> Result<Result<Hosted, String>, String> {
        let worker = match process.and_then(|p| p.nursery.take(p)) {
            Some(booted) => booted,
            None => Vm::new().map_err(|e| e.to_string())?,
        };
        let started = worker
            .start_worker(
                &self.src,
                &self.identity,
                &self.path,
                &self.display,
                &self.root_path,
                &self.display_root,
                self.is_init,
                self.root,
                self.memory_limit,
            )
            .map_err(|e| e.to_string())?;
        if let Err(text) = started {
            return Ok(Err(text));
        }
        worker.set_master(self.master);
        worker.set_monitor(self.monitor);
        Hosted::new(worker).map(Ok).map_err(|e| e.to_string())
    }
}

/// `rt.spawn_vm`.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    // spawn_vm(rel, path, display, is_init, root, display_root, new_thread,
    //          new_master, monitor)
    //   -> handle | nil, 'errno', errno | nil, 'special', kind
    //   | nil, 'too_large' | false, load error text
    rt.set(
        "spawn_vm",
        lua.create_function(super::vm::unless_closing(
            |lua,
             (
                rel,
                path,
                display,
                is_init,
                root_path,
                display_root,
                new_thread,
                new_master,
                monitor,
            ): (
                mlua::BString,
                mlua::BString,
                mlua::BString,
                bool,
                mlua::BString,
                mlua::BString,
                bool,
                bool,
                bool,
            )| {
                let rel = CString::new(Vec::from(rel)).map_err(|_| error::einval(1))?;
                let root_fd = with_state(lua, |st| st.import_root.clone())?.ok_or_else(|| {
                    mlua::Error::from(error::ErrorCode::core(
                        error::CoreError::CurrentModuleNotKnown,
                    ))
                })?;
                let root = std::os::fd::AsFd::as_fd(&*root_fd);
                let (src, identity) = match module_files::read_beneath(root, &rel) {
                    Ok(read) => read,
                    Err(EntryError::Os(errno)) => {
                        return Ok((
                            Value::Nil,
                            Value::String(lua.create_string("errno")?),
                            Value::Integer(errno.into()),
                        ));
                    }
                    Err(EntryError::NotRegular(kind)) => {
                        return Ok((
                            Value::Nil,
                            Value::String(lua.create_string("special")?),
                            Value::String(lua.create_string(kind.name())?),
                        ));
                    }
                    Err(EntryError::TooLarge) => {
                        return Ok((
                            Value::Nil,
                            Value::String(lua.create_string("too_large")?),
                            Value::Nil,
                        ));
                    }
                };
                // The worker shares the root's fd (read only, closed with
                // its last holder): a descriptor per actor would make the
                // process's fd limit an actor limit.
                let worker_root = root_fd.clone();
                let (memory_limit, is_master) = with_state(lua, |st| (st.memory_limit, st.master))?;
                if new_master && !is_master {
                    return Err(error::ErrorCode::generic(libc::EPERM).into());
                }
                let start = WorkerStart {
                    src,
                    identity,
                    path: path.to_vec(),
                    display: display.to_vec(),
                    root_path: root_path.to_vec(),
                    display_root: display_root.to_vec(),
                    is_init,
                    root: worker_root,
                    memory_limit,
                    master: new_master,
                    monitor: if monitor {
                        Some(ActorAddress::new(with_state(lua, |st| st.mailbox.clone())?))
                    } else {
                        None
                    },
                };
                let address = if new_thread {
                    match spawn_thread(start)? {
                        Ok(address) => address,
                        Err(text) => {
                            return Ok((
                                Value::Boolean(false),
                                Value::String(lua.create_string(text)?),
                                Value::Nil,
                            ));
                        }
                    }
                } else {
                    match start
                        .start(current_process().as_ref())
                        .map_err(mlua::Error::runtime)?
                    {
                        Ok(hosted) => {
                            let address = ActorAddress::new(hosted.mailbox.clone());
                            SPAWNED.with_borrow_mut(|spawned| spawned.push(hosted));
                            address
                        }
                        Err(text) => {
                            return Ok((
                                Value::Boolean(false),
                                Value::String(lua.create_string(text)?),
                                Value::Nil,
                            ));
                        }
                    }
                };
                if new_master {
                    with_state(lua, |st| st.master = false)?;
                }
                let handle = lua.create_userdata(ChannelHandle::new(address))?;
                Ok((Value::UserData(handle), Value::Nil, Value::Nil))
            },
        ))?,
    )?;
    Ok(())
}
