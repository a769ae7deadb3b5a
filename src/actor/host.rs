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
//! - A VM that is done is torn down at once: its inbox closes first (its
//!   queued senders get `channel_closed`), then its Lua state closes, which
//!   drops its channel handles (other inboxes may see `no_senders`).
//! - The process ends when every VM is done, when `system.exit` ran in any
//!   of them (that code wins), or when none can ever be woken: every VM
//!   idle, no op in flight, no mailbox touched even after a full garbage
//!   collection in each VM.

use std::cell::RefCell;
use std::ffi::CString;
use std::sync::Arc;

use mlua::{Function, Lua, Table, Value};

use super::channels::ChannelHandle;
use super::mailbox::{ActorAddress, Mailbox};
use super::module_files::{self, EntryError};
use super::vm::{with_state, Ran, Step, Vm, VmExit};
use crate::executor::OpFd;
use crate::modules::error;
use crate::RuntimeError;

struct Hosted {
    vm: Vm,
    step: Function,
    poll: Function,
    mailbox: Arc<Mailbox>,
    master: bool,
}

impl Hosted {
    fn new(vm: Vm, master: bool) -> Result<Self, RuntimeError> {
        let (step, poll) = vm
            .step_functions()
            .map_err(|e| RuntimeError::Boot(e.to_string()))?;
        let mailbox = vm.mailbox();
        Ok(Self {
            vm,
            step,
            poll,
            mailbox,
            master,
        })
    }

    /// Polls the mailbox if touched, then steps.
    fn run_once(&self, block: bool) -> Result<Step, Ran> {
        if self.mailbox.take_pending() {
            self.vm.poll_mailbox(&self.poll)?;
        }
        self.vm.step(&self.step, block)
    }

    /// Tears the VM down: inbox closed first, then the Lua state.
    fn end(self, ran: Ran) -> Result<VmExit, RuntimeError> {
        let exit = self.vm.finish(ran);
        self.mailbox.close();
        drop(self.vm);
        exit
    }
}

thread_local! {
    /// VMs spawned on this thread since the host last looked.
    static SPAWNED: RefCell<Vec<Hosted>> = const { RefCell::new(Vec::new()) };
}

/// Runs `master` and every actor it spawns on this thread until the
/// process is over; returns how the master ended (with the code of a
/// `system.exit` called in any actor).
pub(crate) fn run(master: Vm) -> Result<VmExit, RuntimeError> {
    let mut vms = vec![Hosted::new(master, true)?];
    let mut master_exit: Option<VmExit> = None;
    let mut exit_code: Option<i32> = None;
    let mut collected = false;
    let result = (|| -> Result<(), RuntimeError> {
        loop {
            let several = vms.len() > 1;
            let mut progress = false;
            let mut i = 0;
            while i < vms.len() {
                let outcome = vms[i].run_once(false);
                if several {
                    vms[i].vm.flush_output();
                }
                match outcome {
                    Ok(Step::Ready) => progress = true,
                    Ok(Step::Idle) => {}
                    Ok(Step::Done) | Err(_) => {
                        let ran = outcome.map(|_| None).or_else(|ran| ran);
                        let h = vms.remove(i);
                        let master = h.master;
                        let exit = h.end(ran)?;
                        if master {
                            master_exit = Some(exit);
                        }
                        if let Some(code) = exit.exit_code {
                            exit_code = Some(code);
                            return Ok(());
                        }
                        progress = true;
                        continue;
                    }
                }
                i += 1;
            }
            SPAWNED.with_borrow_mut(|spawned| {
                if !spawned.is_empty() {
                    progress = true;
                    vms.append(spawned);
                }
            });
            if vms.is_empty() {
                return Ok(());
            }
            if progress || vms.iter().any(|h| h.mailbox.is_pending()) {
                collected = false;
                continue;
            }
            // Every VM is idle.
            let waiting: Vec<usize> = (0..vms.len()).filter(|&i| vms[i].vm.in_flight()).collect();
            match waiting.as_slice() {
                [] => {
                    if collected {
                        // Nothing can ever wake any of them.
                        for h in &vms {
                            h.vm.report_stuck();
                        }
                        return Ok(());
                    }
                    // Unreferenced handles may be the last senders of an inbox.
                    for h in &vms {
                        h.vm.collect_garbage();
                    }
                    collected = true;
                }
                [only] => {
                    let h = &vms[*only];
                    let outcome = h.vm.step(&h.step, true);
                    if several {
                        h.vm.flush_output();
                    }
                    if let Err(ran) = outcome {
                        let h = vms.remove(*only);
                        let master = h.master;
                        let exit = h.end(ran)?;
                        if master {
                            master_exit = Some(exit);
                        }
                    }
                }
                many => sleep_in_rings(many.iter().map(|&i| vms[i].vm.ring_fd())),
            }
        }
    })();
    // Teardown, newest first (the master last).
    let mut failure = result.err();
    while let Some(h) = vms.pop() {
        let master = h.master;
        match h.end(Ok(None)) {
            Ok(exit) if master => master_exit = Some(exit),
            Ok(_) => {}
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    SPAWNED.with_borrow_mut(|spawned| {
        while let Some(h) = spawned.pop() {
            let _ = h.end(Ok(None));
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let mut exit = master_exit.unwrap_or(VmExit {
        exit_code: None,
        main_panicked: false,
    });
    if exit_code.is_some() {
        exit.exit_code = exit_code;
    }
    Ok(exit)
}

/// Sleeps until one of the rings has a completion.
fn sleep_in_rings(fds: impl Iterator<Item = std::os::fd::RawFd>) {
    let mut pfds: Vec<libc::pollfd> = fds
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a live array of `pfds.len()` pollfds. EINTR just
    // returns to the loop, which steps every VM again.
    unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
}

fn lua_err(e: RuntimeError) -> mlua::Error {
    mlua::Error::runtime(e.to_string())
}

/// `rt.spawn_vm`.
pub(crate) fn add_rt(lua: &Lua, rt: &Table) -> mlua::Result<()> {
    // spawn_vm(rel, path, display, is_init, root, display_root)
    //   -> handle | nil, 'errno', errno | nil, 'special', kind
    //   | nil, 'too_large' | false, load error text
    rt.set(
        "spawn_vm",
        lua.create_function(super::vm::unless_closing(
            |lua,
             (rel, path, display, is_init, root_path, display_root): (
                mlua::BString,
                mlua::BString,
                mlua::BString,
                bool,
                mlua::BString,
                mlua::BString,
            )| {
                let rel = CString::new(Vec::from(rel)).map_err(|_| error::einval(1))?;
                let root_fd = with_state(lua, |st| st.import_root.clone())?.ok_or_else(|| {
                    mlua::Error::from(error::ErrorCode::core(
                        error::CoreError::CurrentModuleNotKnown,
                    ))
                })?;
                // SAFETY: `root_fd` (a clone of the VM's reference) keeps the
                // fd open for as long as `root` is used.
                let root = unsafe { std::os::fd::BorrowedFd::borrow_raw(root_fd.raw()) };
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
                // The worker's own reference to the root: a new fd, so that
                // nothing is shared between the VMs.
                let worker_root = root
                    .try_clone_to_owned()
                    .map_err(|e| mlua::Error::from(error::ErrorCode::from_io(&e)))?;
                let memory_limit = with_state(lua, |st| st.memory_limit)?;
                let worker = Vm::new().map_err(lua_err)?;
                let started = worker.start_worker(
                    &src,
                    &identity,
                    &path,
                    &display,
                    &root_path,
                    &display_root,
                    is_init,
                    OpFd::owned(worker_root),
                    memory_limit,
                )?;
                if let Err(text) = started {
                    return Ok((
                        Value::Boolean(false),
                        Value::String(lua.create_string(text)?),
                        Value::Nil,
                    ));
                }
                let hosted = Hosted::new(worker, false).map_err(lua_err)?;
                let address = ActorAddress::new(hosted.mailbox.clone());
                SPAWNED.with_borrow_mut(|spawned| spawned.push(hosted));
                let handle = lua.create_userdata(ChannelHandle::new(address))?;
                Ok((Value::UserData(handle), Value::Nil, Value::Nil))
            },
        ))?,
    )?;
    Ok(())
}
