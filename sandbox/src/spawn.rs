//! Spawning one sandbox, supervisor side: ring, pipes, `clone3` into fresh
//! namespaces, id maps, and the hand-shake with the child's PID 1.
//!
//! Invariants:
//! - Everything the child needs is prepared before the clone ([`ChildPlan`]);
//!   the child is a copy of the supervisor and takes its ring by value from
//!   its copy of the plan, while the supervisor drops its own copy (its
//!   mapping of the queues) right after the clone and keeps a dup of the fd.
//! - The child waits on the sync pipe until its id maps are written; EOF on
//!   that pipe (supervisor died) makes it exit.
//! - The spawn succeeds only once PID 1 reports `Ready` after the whole
//!   lock-down; a `Failed` report (or silence for 10 s, or death) makes it
//!   fail with the step's name, and the child is killed and reaped.
//! - Warm children ([`Warm`]): cloned into new user and PID namespaces
//!   only; the child unshares the other five ([`WARM_UNSHARE`]) itself, so
//!   every sandbox still gets all seven fresh. States: warm (waiting for
//!   one spec on its socketpair) → handed a spec (the request's bytes and
//!   copies of its descriptors, `SCM_RIGHTS`) → running (`Ready`) →
//!   exited. It is used at most once; if it cannot take the spec, the
//!   spawn is done cold. From the hand-over on, the supervisor treats it
//!   exactly as a cold PID 1 (same `Ready` wait, record and reply).
//! - Sandbox uid/gid: 0 inside, mapped to the supervisor's own uid/gid when
//!   unprivileged, and to 65534 (nobody) when the supervisor is root, so a
//!   sandbox never runs as host root.

use crate::init;
use crate::landlock::{self, LandlockReport, Plan, Rights, Target};
use crate::seccomp::{self, CompiledPolicy, SeccompPolicy};
use crate::wire::{self, Reply, SpawnRequest};
use crate::{lookup_entry, ring, sys, Enforcement, EntryFn, ExitStatus, Network, Requirement};
use io_uring::IoUring;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

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

/// A sandbox as the supervisor tracks it.
///
/// The host learns the entry's exit status exactly once, on `status_w`:
/// as soon as PID 1's `Exit` record arrives ([`Child::relay_exit`]), which
/// is before PID 1 and its namespaces are torn down; or, if PID 1 dies
/// without one (killed, crashed), when it is reaped ([`Child::try_reap`]).
pub(crate) struct Child {
    pub pidfd: OwnedFd,
    pub report_r: OwnedFd,
    pub status_w: OwnedFd,
    pub ring_dup: Option<OwnedFd>,
    /// The host has been told the status.
    pub reported: bool,
}

impl Child {
    /// Called when `report_r` is readable after `Ready`: forwards an `Exit`
    /// record to the host at once.
    pub fn relay_exit(&mut self) {
        if self.reported {
            return;
        }
        let _ = sys::set_nonblocking(self.report_r.as_raw_fd(), true);
        if let Some(Record::Exit(s)) = read_record(self.report_r.as_raw_fd()) {
            let _ = sys::write_all(self.status_w.as_raw_fd(), &wire::encode_status(s));
            self.reported = true;
        }
    }

    /// Reaps PID 1 if it exited and, unless `relay_exit` already did, tells
    /// the host; true when done.
    pub fn try_reap(&mut self) -> bool {
        let ws = match sys::waitid_pidfd(self.pidfd.as_fd(), libc::WNOHANG) {
            Ok(Some(ws)) => ws,
            Ok(None) => return false,
            Err(_) => {
                if !self.reported {
                    let _ = sys::write_all(
                        self.status_w.as_raw_fd(),
                        &wire::encode_status(ExitStatus::Lost),
                    );
                }
                return true;
            }
        };
        self.relay_exit();
        if !self.reported {
            let status = match ws {
                sys::WaitStatus::Exited(c) => ExitStatus::Exited(c),
                sys::WaitStatus::Signaled(s) => ExitStatus::Signaled(s),
            };
            let _ = sys::write_all(self.status_w.as_raw_fd(), &wire::encode_status(status));
            self.reported = true;
        }
        true
    }
}

/// Records PID 1 sends to the supervisor on the report pipe.
pub(crate) enum Record {
    Ready(LandlockReport),
    Failed { step: String, errno: i32 },
    Exit(ExitStatus),
}

pub(crate) fn write_record(fd: RawFd, r: &Record) {
    let mut e = wire::Enc::default();
    match r {
        Record::Ready(l) => {
            let flags =
                (l.fs as u8) | (l.fs_full as u8) << 1 | (l.net as u8) << 2 | (l.scope as u8) << 3;
            e.u8(1).i32(l.kernel_abi).u8(flags);
        }
        Record::Failed { step, errno } => {
            let s = &step.as_bytes()[..step.len().min(200)];
            e.u8(2).i32(*errno).bytes(s);
        }
        Record::Exit(s) => {
            e.u8(3);
            e.0.extend_from_slice(&wire::encode_status(*s));
        }
    }
    let mut framed = vec![e.0.len() as u8];
    framed.extend_from_slice(&e.0);
    // One write below PIPE_BUF: atomic.
    let _ = sys::write_all(fd, &framed);
}

fn read_record(fd: RawFd) -> Option<Record> {
    let mut len = [0u8; 1];
    if sys::read(fd, &mut len).ok()? != 1 {
        return None;
    }
    let mut buf = vec![0u8; len[0] as usize];
    if sys::read(fd, &mut buf).ok()? != buf.len() {
        return None;
    }
    let mut d = wire::Dec(&buf);
    match d.u8().ok()? {
        1 => {
            let abi = d.i32().ok()?;
            let f = d.u8().ok()?;
            Some(Record::Ready(LandlockReport {
                kernel_abi: abi,
                fs: f & 1 != 0,
                fs_full: f & 2 != 0,
                net: f & 4 != 0,
                scope: f & 8 != 0,
            }))
        }
        2 => {
            let errno = d.i32().ok()?;
            let step = String::from_utf8_lossy(d.bytes().ok()?).into_owned();
            Some(Record::Failed { step, errno })
        }
        3 => Some(Record::Exit(wire::decode_status(d.0.try_into().ok()?))),
        _ => None,
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
}

/// Why this system would refuse a user namespace, if it would.
pub(crate) fn userns_problem() -> Option<String> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .map(|s| s.trim().to_string())
    };
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return Some(
            "user.max_user_namespaces is 0; raise it (sysctl -w user.max_user_namespaces=10000)"
                .into(),
        );
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            return Some(
                "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0); \
                 enable them (sysctl -w kernel.unprivileged_userns_clone=1) or run as root"
                    .into(),
            );
        }
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
            return Some(
                "AppArmor restricts unprivileged user namespaces \
                 (kernel.apparmor_restrict_unprivileged_userns=1); give this program an AppArmor \
                 profile with `userns,` or run as root"
                    .into(),
            );
        }
    }
    None
}

fn err(kind: u8, errno: i32, message: impl Into<String>) -> Reply {
    Reply::Err {
        kind,
        errno,
        message: message.into(),
    }
}

fn io_err(step: &str, e: std::io::Error) -> Reply {
    err(wire::ERR_SETUP, e.raw_os_error().unwrap_or(0), step)
}

pub(crate) fn decode_enforcement(b: &[u8]) -> Option<Enforcement> {
    let mut d = wire::Dec(b);
    let f = d.u16().ok()?;
    let abi = d.i32().ok()?;
    let pids = d.u64().ok()?;
    let uid = d.u32().ok()?;
    let bit = |i: u32| f & (1 << i) != 0;
    Some(Enforcement {
        namespaces: bit(0),
        capabilities_dropped: bit(1),
        no_new_privs: bit(2),
        seccomp: bit(3),
        ring_restricted: bit(4),
        landlock: LandlockReport {
            kernel_abi: abi,
            fs: bit(5),
            fs_full: bit(6),
            net: bit(7),
            scope: bit(8),
        },
        pids_limit: pids,
        host_uid: uid,
    })
}

/// Checks what the supervisor can check before any process exists.
fn validate(req: &SpawnRequest) -> Result<(EntryFn, Requirement), Reply> {
    let entry = lookup_entry(&req.entry)
        .ok_or_else(|| err(wire::ERR_UNKNOWN_ENTRY, 0, req.entry.clone()))?;
    if req.pids < 2 {
        return Err(err(
            wire::ERR_SPEC,
            0,
            "limits.pids must be at least 2 (PID 1 and the entry process)",
        ));
    }
    if req.nofile < 8 {
        return Err(err(wire::ERR_SPEC, 0, "limits.nofile must be at least 8"));
    }
    for p in req.ro_paths.iter().chain(&req.rw_paths) {
        let p = PathBuf::from(p);
        if !p.is_absolute() {
            return Err(err(
                wire::ERR_SPEC,
                0,
                format!("path {p:?} is not absolute"),
            ));
        }
        if p.starts_with(init::GRANT_MOUNTS) {
            return Err(err(
                wire::ERR_SPEC,
                0,
                format!(
                    "path {p:?} is beneath {}, where the sandbox attaches granted directories",
                    init::GRANT_MOUNTS
                ),
            ));
        }
    }
    let requirement = if req.landlock_best_effort {
        Requirement::BestEffort
    } else {
        Requirement::Required
    };
    landlock::check_supported(requirement).map_err(|e| err(wire::ERR_MISSING, 0, e.to_string()))?;
    Ok((entry, requirement))
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
    }
}

/// Writes a child's id maps (from the supervisor, which owns the parent
/// user namespace) and releases it.
fn write_id_maps(env: &SupervisorEnv, pid: i32, sync_w: OwnedFd) -> Result<(), Reply> {
    let maps = [
        ("uid_map", format!("0 {} 1\n", env.sandbox_uid)),
        ("setgroups", "deny\n".to_string()),
        ("gid_map", format!("0 {} 1\n", env.sandbox_gid)),
    ];
    for (file, content) in maps {
        if let Err(e) = std::fs::write(format!("/proc/{pid}/{file}"), content) {
            return Err(io_err(&format!("writing /proc/PID/{file}"), e));
        }
    }
    sys::write_all(sync_w.as_raw_fd(), b"g").map_err(|e| io_err("sync", e))
}

/// A cloned PID 1, as the supervisor holds it until its `Ready` report.
struct Started {
    pid: i32,
    pidfd: OwnedFd,
    ring_dup: OwnedFd,
    control_host: OwnedFd,
    report_r: OwnedFd,
}

fn kill_reap(pidfd: &OwnedFd) {
    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = sys::waitid_pidfd(pidfd.as_fd(), 0);
}

/// Waits for PID 1's `Ready` and builds the supervisor's record, the reply
/// and the host's descriptors (pidfd, control, status).
fn finish(
    s: Started,
    req: &SpawnRequest,
    env: &SupervisorEnv,
    id: u64,
) -> Result<(Child, Reply, Vec<OwnedFd>), Reply> {
    let kill = |msg: Reply| {
        kill_reap(&s.pidfd);
        msg
    };
    match sys::poll_one(s.report_r.as_raw_fd(), libc::POLLIN, 10_000) {
        Ok(0) => {
            return Err(kill(err(
                wire::ERR_SETUP,
                libc::ETIMEDOUT,
                "sandbox setup timed out",
            )))
        }
        Err(e) => return Err(kill(io_err("poll", e))),
        Ok(_) => {}
    }
    let landlock = match read_record(s.report_r.as_raw_fd()) {
        Some(Record::Ready(l)) => l,
        Some(Record::Failed { step, errno }) => {
            let kind = if step.starts_with("Landlock") {
                wire::ERR_MISSING
            } else {
                wire::ERR_SETUP
            };
            return Err(kill(err(kind, errno, step)));
        }
        _ => return Err(kill(err(wire::ERR_SETUP, 0, "sandbox died during setup"))),
    };
    let (status_r, status_w) = sys::pipe().map_err(|e| kill(io_err("pipe", e)))?;
    let host_pidfd = s
        .pidfd
        .try_clone()
        .map_err(|e| kill(io_err("dup pidfd", e)))?;
    let enforcement = Enforcement {
        namespaces: true,
        capabilities_dropped: true,
        no_new_privs: true,
        landlock,
        seccomp: true,
        ring_restricted: true,
        pids_limit: req.pids,
        host_uid: env.sandbox_uid,
    };
    let reply = Reply::Spawned {
        id,
        pid: s.pid,
        ring_fd: s.ring_dup.as_raw_fd(),
        report: crate::supervisor::encode_enforcement(&enforcement),
    };
    let child = Child {
        pidfd: s.pidfd,
        report_r: s.report_r,
        status_w,
        ring_dup: Some(s.ring_dup),
        reported: false,
    };
    Ok((child, reply, vec![host_pidfd, s.control_host, status_r]))
}

/// The supervisor's side of a clone, once it dropped the child's ends: keep
/// the dup of the child's ring and write its id maps (which releases it).
/// On failure the child is killed and reaped.
fn parent_after_clone(
    env: &SupervisorEnv,
    pid: i32,
    pidfd: &OwnedFd,
    ring_dup: std::io::Result<OwnedFd>,
    sync_w: OwnedFd,
) -> Result<OwnedFd, Reply> {
    let ring_dup = ring_dup.map_err(|e| {
        kill_reap(pidfd);
        io_err("dup ring fd", e)
    })?;
    write_id_maps(env, pid, sync_w).inspect_err(|_| kill_reap(pidfd))?;
    Ok(ring_dup)
}

fn dup_ring(ring: &IoUring) -> std::io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
    let fd = unsafe { libc::fcntl(ring.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fcntl returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn clone_error(e: std::io::Error) -> Reply {
    let errno = e.raw_os_error().unwrap_or(0);
    let why = userns_problem().unwrap_or_else(|| format!("clone3 into new namespaces failed: {e}"));
    let kind = if matches!(
        errno,
        libc::EPERM | libc::ENOSPC | libc::EUSERS | libc::EACCES
    ) {
        wire::ERR_USERNS
    } else {
        wire::ERR_SETUP
    };
    err(kind, errno, why)
}

/// Creates one sandbox: from the warm child if `warm` holds one with the
/// request's ring shape (it is consumed either way it is used), otherwise
/// cold. On success returns the supervisor's record, the reply and the
/// descriptors for the host (pidfd, control, status).
pub(crate) fn spawn(
    req: &SpawnRequest,
    fds: Vec<OwnedFd>,
    env: &SupervisorEnv,
    id: u64,
    warm: &mut Option<Warm>,
) -> Result<(Child, Reply, Vec<OwnedFd>), Reply> {
    let (entry, requirement) = validate(req)?;
    let shape = ring::RingSpec {
        entries: req.ring_entries,
        fixed_files: req.ring_fixed_files,
    };
    if warm.as_ref().is_some_and(|w| w.ring_spec == shape) {
        let w = warm.take().expect("warm child");
        // The warm child gets its own copies of the descriptors; ours close
        // when `fds` drops. If it cannot take the spec (it died), fall back
        // to a cold spawn.
        if let Some(started) = w.hand_over(req, &fds) {
            drop(fds);
            return finish(started, req, env, id);
        }
    }
    spawn_cold(req, fds, env, id, entry, requirement, shape)
}

fn spawn_cold(
    req: &SpawnRequest,
    fds: Vec<OwnedFd>,
    env: &SupervisorEnv,
    id: u64,
    entry: EntryFn,
    requirement: Requirement,
    shape: ring::RingSpec,
) -> Result<(Child, Reply, Vec<OwnedFd>), Reply> {
    let ring = ring::create_restricted(shape).map_err(ring_error)?;
    let (control_host, control_child) =
        sys::socketpair_seqpacket().map_err(|e| io_err("socketpair", e))?;
    let (report_r, report_w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
    let (sync_r, sync_w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
    let mut plan = make_plan(
        req,
        &fds,
        env,
        entry,
        requirement,
        Some(ring),
        control_child.as_raw_fd(),
        report_w.as_raw_fd(),
    );
    plan.sync_r = sync_r.as_raw_fd();
    plan.sync_w = sync_w.as_raw_fd();

    // SAFETY: the supervisor is single-threaded; the child never returns
    // from `init::run_child`.
    let (pid, pidfd) = match unsafe { sys::clone3(NS_FLAGS) } {
        Ok(sys::Cloned::Child) => init::run_child(&mut plan),
        Ok(sys::Cloned::Parent { pid, pidfd }) => (pid, pidfd),
        Err(e) => return Err(clone_error(e)),
    };
    // Parent: drop the child's ends and our mapping of its ring.
    let ring = plan.ring.take().expect("ring");
    let ring_dup = dup_ring(&ring);
    drop(ring);
    drop(plan);
    drop(control_child);
    drop(report_w);
    drop(sync_r);
    drop(fds);
    let ring_dup = parent_after_clone(env, pid, &pidfd, ring_dup, sync_w)?;
    finish(
        Started {
            pid,
            pidfd,
            ring_dup,
            control_host,
            report_r,
        },
        req,
        env,
        id,
    )
}

fn ring_error(e: std::io::Error) -> Reply {
    err(
        wire::ERR_MISSING,
        e.raw_os_error().unwrap_or(0),
        format!(
            "restricted io_uring (Linux 5.19: R_DISABLED, restrictions, sparse files) failed: {e}"
        ),
    )
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

/// A sandbox's PID 1 made ahead of its request: cloned into a new user and
/// PID namespace, id maps written, its restricted ring (default
/// [`ring::RingSpec`]) created before the clone and inherited. It unshares
/// its other namespaces, closes every other descriptor and waits for one
/// spec on `spec_w`'s peer.
pub(crate) struct Warm {
    pub pid: i32,
    pub pidfd: OwnedFd,
    ring_dup: OwnedFd,
    ring_spec: ring::RingSpec,
    control_host: OwnedFd,
    report_r: OwnedFd,
    spec_w: OwnedFd,
}

/// What a warm child needs, prepared before its clone.
pub(crate) struct WarmPlan {
    pub ring: Option<IoUring>,
    pub control: RawFd,
    pub report_w: RawFd,
    pub sync_r: RawFd,
    pub spec_r: RawFd,
}

impl Warm {
    /// Clones the next warm child.
    pub fn prepare(env: &SupervisorEnv) -> Result<Warm, Reply> {
        let ring_spec = ring::RingSpec::default();
        let ring = ring::create_restricted(ring_spec).map_err(ring_error)?;
        let (control_host, control_child) =
            sys::socketpair_seqpacket().map_err(|e| io_err("socketpair", e))?;
        let (report_r, report_w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
        let (sync_r, sync_w) = sys::pipe().map_err(|e| io_err("pipe", e))?;
        let (spec_w, spec_r) = sys::socketpair_seqpacket().map_err(|e| io_err("socketpair", e))?;
        let mut plan = WarmPlan {
            ring: Some(ring),
            control: control_child.as_raw_fd(),
            report_w: report_w.as_raw_fd(),
            sync_r: sync_r.as_raw_fd(),
            spec_r: spec_r.as_raw_fd(),
        };
        // SAFETY: the supervisor is single-threaded; the child never returns
        // from `init::run_warm`.
        let (pid, pidfd) = match unsafe { sys::clone3(WARM_CLONE) } {
            Ok(sys::Cloned::Child) => init::run_warm(&mut plan, env),
            Ok(sys::Cloned::Parent { pid, pidfd }) => (pid, pidfd),
            Err(e) => return Err(clone_error(e)),
        };
        let ring = plan.ring.take().expect("ring");
        let ring_dup = dup_ring(&ring);
        drop(ring);
        drop(control_child);
        drop(report_w);
        drop(sync_r);
        drop(spec_r);
        let ring_dup = parent_after_clone(env, pid, &pidfd, ring_dup, sync_w)?;
        Ok(Warm {
            pid,
            pidfd,
            ring_dup,
            ring_spec,
            control_host,
            report_r,
            spec_w,
        })
    }

    /// Hands the spec and its descriptors to the warm child. `None` if the
    /// child cannot take it (it is then killed and reaped).
    fn hand_over(self, req: &SpawnRequest, fds: &[OwnedFd]) -> Option<Started> {
        let mut req = wire::Request::Spawn(Box::new(req.clone()));
        let mut bytes = req.encode();
        if let wire::Request::Spawn(r) = &mut req {
            r.wipe();
        }
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let sent = sys::send_with_fds(self.spec_w.as_raw_fd(), &bytes, &raw);
        bytes.fill(0);
        std::hint::black_box(&bytes);
        if sent.is_err() {
            self.kill();
            return None;
        }
        Some(Started {
            pid: self.pid,
            pidfd: self.pidfd,
            ring_dup: self.ring_dup,
            control_host: self.control_host,
            report_r: self.report_r,
        })
    }

    /// Kills and reaps the warm child.
    pub fn kill(self) {
        kill_reap(&self.pidfd);
    }
}
