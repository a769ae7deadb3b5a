//! The plans and reports shared by the supervisor side of a spawn
//! (`spawn.rs`) and the sandbox side (`init.rs`): what a child needs,
//! prepared before its clone, and the records PID 1 sends back. Both sides
//! depend on this module, never on each other's (supervisor → spawn →
//! init → plan → sys).
//!
//! Invariants:
//! - A plan is complete before the clone; the child takes what it needs
//!   from its copy and never returns, the supervisor drops its own copy
//!   right after the clone (zeroing the Landlock rules' copies of the
//!   request's paths).
//! - Records are canonical frames (see `wire`), at most 255 bytes, written
//!   with one atomic pipe write.

use crate::landlock::{LandlockReport, Plan, Rights, Target};
use crate::seccomp::{self, CompiledPolicy, SeccompPolicy};
use crate::wire::{self, SpawnRequest};
use crate::{ring, sys, EntryFn, ExitStatus, Network, Requirement};
use io_uring::IoUring;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;

/// Namespaces every sandbox gets.
pub const NS_FLAGS: u64 = (libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP) as u64;

/// Supervisor-wide state shared by all spawns.
pub(crate) struct SupervisorEnv {
    /// Read end given to every sandbox; the supervisor alone keeps the write
    /// end, so POLLHUP on it means the supervisor is gone.
    pub lifeline_r: OwnedFd,
    pub lifeline_w: OwnedFd,
    pub devnull: OwnedFd,
    pub policy_unix: CompiledPolicy,
    pub policy_inet: CompiledPolicy,
    pub sandbox_uid: u32,
    pub sandbox_gid: u32,
}

impl SupervisorEnv {
    pub fn new() -> std::io::Result<SupervisorEnv> {
        let (lifeline_r, lifeline_w) = sys::pipe()?;
        let devnull: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?
            .into();
        let ops = ring::allowed_register_ops();
        let mk = |inet| {
            seccomp::build(&SeccompPolicy {
                allow_inet: inet,
                uring_register_ops: ops.clone(),
            })
            .map_err(std::io::Error::other)
        };
        // SAFETY: geteuid/getegid have no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let (sandbox_uid, sandbox_gid) = if euid == 0 {
            (65534, 65534)
        } else {
            (euid, egid)
        };
        Ok(SupervisorEnv {
            lifeline_r,
            lifeline_w,
            devnull,
            policy_unix: mk(false)?,
            policy_inet: mk(true)?,
            sandbox_uid,
            sandbox_gid,
        })
    }
}

/// Records PID 1 sends to the supervisor on the report pipe.
#[derive(Debug, PartialEq)]
pub(crate) enum Record {
    Ready(LandlockReport),
    Failed { step: String, errno: i32 },
    Exit(ExitStatus),
}

/// Longest step name a `Failed` record carries (cut at a character
/// boundary), so that a record stays one atomic pipe write.
const MAX_STEP: usize = 200;

const REC_READY: u8 = 1;
const REC_FAILED: u8 = 2;
const REC_EXIT: u8 = 3;

/// A record's bytes (without the length prefix); canonical like every
/// frame of `wire`.
pub(crate) fn encode_record(r: &Record) -> wire::Frame {
    let mut e = wire::Enc::with_capacity(255);
    match r {
        Record::Ready(l) => {
            let flags =
                (l.fs as u8) | (l.fs_full as u8) << 1 | (l.net as u8) << 2 | (l.scope as u8) << 3;
            e.u8(REC_READY).i32(l.kernel_abi).u8(flags);
        }
        Record::Failed { step, errno } => {
            let mut cut = step.len().min(MAX_STEP);
            while !step.is_char_boundary(cut) {
                cut -= 1;
            }
            e.u8(REC_FAILED).i32(*errno).bytes(&step.as_bytes()[..cut]);
        }
        Record::Exit(s) => {
            e.u8(REC_EXIT).raw(&wire::encode_status(*s));
        }
    }
    e.finish().expect("a record fits in 255 bytes")
}

pub(crate) fn decode_record(b: &[u8]) -> Result<Record, wire::DecodeError> {
    let mut d = wire::Dec(b);
    let r = match d.u8()? {
        REC_READY => {
            let abi = d.i32()?;
            let f = d.u8()?;
            if f > 0xF {
                return Err(wire::DecodeError("unknown Landlock flag"));
            }
            Record::Ready(LandlockReport {
                kernel_abi: abi,
                fs: f & 1 != 0,
                fs_full: f & 2 != 0,
                net: f & 4 != 0,
                scope: f & 8 != 0,
            })
        }
        REC_FAILED => {
            let errno = d.i32()?;
            let step = d.text("step name is not UTF-8")?;
            if step.len() > MAX_STEP {
                return Err(wire::DecodeError("step name too long"));
            }
            Record::Failed { step, errno }
        }
        REC_EXIT => Record::Exit(wire::decode_status(d.raw(8)?.try_into().unwrap())?),
        _ => return Err(wire::DecodeError("unknown record tag")),
    };
    d.end()?;
    Ok(r)
}

pub(crate) fn write_record(fd: RawFd, r: &Record) {
    let body = encode_record(r);
    let mut framed = wire::Enc::with_capacity(256);
    framed.u8(body.len() as u8).raw(&body);
    if let Ok(framed) = framed.finish() {
        // One write below PIPE_BUF: atomic.
        let _ = sys::write_all(fd, &framed);
    }
}

/// Everything the child needs, prepared before the clone.
pub(crate) struct ChildPlan<'a> {
    pub entry: EntryFn,
    pub req: &'a SpawnRequest,
    pub ring: Option<IoUring>,
    pub control: RawFd,
    pub grants: Vec<RawFd>,
    pub stdio: [RawFd; 3],
    pub report_w: RawFd,
    pub sync_r: RawFd,
    pub sync_w: RawFd,
    pub lifeline_r: RawFd,
    pub lifeline_w: RawFd,
    pub seccomp: &'a CompiledPolicy,
    pub landlock: Plan,
    /// Made for the supervisor's pool, ahead of its spawn: the entry is
    /// told so ([`crate::EntryContext::pooled`]).
    pub pooled: bool,
}

impl Drop for ChildPlan<'_> {
    /// The Landlock rules hold copies of the request's paths: zeroed before
    /// they are freed (in the supervisor, after the clone; a sandbox never
    /// drops its plan).
    fn drop(&mut self) {
        for (target, _) in self.landlock.rules.iter_mut() {
            if let Target::Path(p) = target {
                let mut v = std::mem::take(p).into_os_string().into_vec();
                wire::wipe(&mut v);
            }
        }
    }
}

/// The request-dependent part of a plan, computed where the request's
/// descriptors live: in the supervisor for a cold spawn, in the warm child
/// for a warm one. `fds` are the request's descriptors in wire order (the
/// `STDIO_FD` ones, then the grants).
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_plan<'a>(
    req: &'a SpawnRequest,
    fds: &[OwnedFd],
    env: &'a SupervisorEnv,
    entry: EntryFn,
    requirement: Requirement,
    ring: Option<IoUring>,
    control: RawFd,
    report_w: RawFd,
) -> ChildPlan<'a> {
    let mut it = fds.iter();
    let mut stdio = [0; 3];
    for (i, k) in req.stdio.iter().enumerate() {
        stdio[i] = match *k {
            wire::STDIO_NULL => env.devnull.as_raw_fd(),
            wire::STDIO_INHERIT => i as RawFd,
            _ => it
                .next()
                .map(|f| f.as_raw_fd())
                .unwrap_or(env.devnull.as_raw_fd()),
        };
    }
    let grants: Vec<RawFd> = it.map(|f| f.as_raw_fd()).collect();

    let mut rules: Vec<(Target, Rights)> = Vec::new();
    for p in &req.ro_paths {
        rules.push((Target::Path(p.into()), Rights::ReadOnly));
    }
    for p in &req.rw_paths {
        rules.push((Target::Path(p.into()), Rights::ReadWrite));
    }
    for (fd, rw) in grants.iter().zip(&req.grant_rw) {
        rules.push((
            Target::Fd(*fd),
            if *rw {
                Rights::ReadWrite
            } else {
                Rights::ReadOnly
            },
        ));
    }
    if req.mount_proc {
        rules.push((Target::Path("/proc".into()), Rights::ReadOnly));
    }
    let (tcp_bind, tcp_connect, inet) = match &req.network {
        Network::None => (vec![], vec![], false),
        Network::Loopback {
            tcp_bind,
            tcp_connect,
        } => (tcp_bind.clone(), tcp_connect.clone(), true),
    };
    ChildPlan {
        entry,
        req,
        ring,
        control,
        grants,
        stdio,
        report_w,
        sync_r: -1,
        sync_w: -1,
        lifeline_r: env.lifeline_r.as_raw_fd(),
        lifeline_w: env.lifeline_w.as_raw_fd(),
        seccomp: if inet {
            &env.policy_inet
        } else {
            &env.policy_unix
        },
        landlock: Plan {
            rules,
            tcp_bind,
            tcp_connect,
            requirement,
        },
        pooled: false,
    }
}

/// The namespaces a warm child is cloned into; it unshares the rest
/// ([`WARM_UNSHARE`]) itself, off the supervisor's critical path. The PID
/// namespace can only be entered by a clone, and the user namespace comes
/// first so that the others are owned by it.
pub const WARM_CLONE: u64 = (libc::CLONE_NEWUSER | libc::CLONE_NEWPID) as u64;
/// The namespaces a warm child unshares: together with [`WARM_CLONE`],
/// exactly [`NS_FLAGS`].
pub const WARM_UNSHARE: i32 = libc::CLONE_NEWNS
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP;

/// What a warm child needs, prepared before its clone.
pub(crate) struct WarmPlan {
    pub ring: Option<IoUring>,
    pub control: RawFd,
    pub report_w: RawFd,
    pub sync_r: RawFd,
    pub spec_r: RawFd,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tests::{check_canonical, Gen};

    #[test]
    fn records_are_canonical() {
        let mut g = Gen(0xA076_1D64_78BD_642F);
        for _ in 0..200 {
            let r = match g.below(3) {
                0 => {
                    let e = g.enforcement();
                    Record::Ready(e.landlock)
                }
                1 => Record::Failed {
                    step: g.text(12),
                    errno: g.next() as i32,
                },
                _ => Record::Exit(g.status()),
            };
            check_canonical(&r, |r| encode_record(r).to_vec(), |b| decode_record(b).ok());
        }
    }

    #[test]
    fn long_steps_are_cut_at_a_character_boundary() {
        let r = Record::Failed {
            step: "é".repeat(MAX_STEP),
            errno: 2,
        };
        match decode_record(&encode_record(&r)) {
            Ok(Record::Failed { step, .. }) => assert_eq!(step.len(), MAX_STEP),
            other => panic!("{other:?}"),
        }
    }
}
