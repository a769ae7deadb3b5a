//! Spawning one sandbox, supervisor side: ring, pipes, `clone3` into fresh
//! namespaces, id maps, and the hand-shake with the child's PID 1.
//!
//! Invariants:
//! - Everything the child needs is prepared before the clone (`plan::ChildPlan`);
//!   the child is a copy of the supervisor and takes its ring by value from
//!   its copy of the plan, while the supervisor drops its own copy (its
//!   mapping of the queues) right after the clone and keeps a dup of the fd.
//! - The child waits on the sync pipe until its id maps are written; EOF on
//!   that pipe (supervisor died) makes it exit.
//! - The spawn succeeds only once PID 1 reports `Ready` after the whole
//!   lock-down; a `Failed` report (or silence for 10 s, or death) makes it
//!   fail with the step's name, and the child is killed and reaped.
//! - Warm children ([`Warm`]): cloned into new user and PID namespaces
//!   only; the child unshares the other five ([`crate::plan::WARM_UNSHARE`]) itself, so
//!   every sandbox still gets all seven fresh. States: warm (waiting for
//!   one spec on its socketpair) → handed a spec (the request's bytes and
//!   copies of its descriptors, `SCM_RIGHTS`) → running (`Ready`) →
//!   exited. It is used at most once; if it cannot take the spec, the
//!   spawn is done cold. From the hand-over on, the supervisor treats it
//!   exactly as a cold PID 1 (same `Ready` wait, record and reply).
//! - Pooled sandboxes ([`Pooled`]): a warm child handed the pool spec by
//!   the supervisor itself (streams `/dev/null`, flagged "pooled", so its
//!   entry knows to wait for them). States: locking down → ready (its
//!   entry prepares, then waits for the stdio hand-over) → taken (the
//!   spawn's streams sent on its control socket; from then on a sandbox
//!   like any other) or offered (ready: handed to the host, which sends
//!   the streams itself when a spawn claims it; see `supervisor`) or dead
//!   (killed and reaped, never handed out).
//! - Sandbox uid/gid: 0 inside, mapped to the supervisor's own uid/gid when
//!   unprivileged, and to 65534 (nobody) when the supervisor is root, so a
//!   sandbox never runs as host root.

use crate::init;
use crate::landlock::{self, LandlockReport};
use crate::plan::{
    decode_record, make_plan, Record, SupervisorEnv, WarmPlan, NS_FLAGS, WARM_CLONE,
};
use crate::wire::{self, Reply, SpawnRequest};
use crate::{lookup_entry, ring, sys, Enforcement, EntryFn, ExitStatus, Requirement};
use io_uring::IoUring;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

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

fn read_record(fd: RawFd) -> Option<Record> {
    let mut len = [0u8; 1];
    if sys::read(fd, &mut len).ok()? != 1 {
        return None;
    }
    let mut buf = vec![0u8; len[0] as usize];
    let r = match sys::read(fd, &mut buf) {
        Ok(n) if n == buf.len() => decode_record(&buf).ok(),
        _ => None,
    };
    // A failure record may name a granted path.
    wire::wipe(&mut buf);
    r
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

/// Checks what the supervisor can check before any process exists.
fn validate(req: &SpawnRequest) -> Result<(EntryFn, Requirement), Reply> {
    // No request bytes in a reply (the host names the entry itself): the
    // reply is one more copy to wipe.
    let entry = lookup_entry(&req.entry).ok_or_else(|| err(wire::ERR_UNKNOWN_ENTRY, 0, ""))?;
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
    // Errors name a grant by position only: replies carry no request bytes.
    for (i, p) in req.ro_paths.iter().chain(&req.rw_paths).enumerate() {
        let p = std::path::Path::new(p);
        if !p.is_absolute() {
            return Err(err(
                wire::ERR_SPEC,
                0,
                format!("granted path #{i} (read-only ones first) is not absolute"),
            ));
        }
        if p.starts_with(init::GRANT_MOUNTS) {
            return Err(err(
                wire::ERR_SPEC,
                0,
                format!(
                    "granted path #{i} (read-only ones first) is beneath {}, where the sandbox attaches granted directories",
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

pub(crate) fn kill_reap(pidfd: &OwnedFd) {
    let _ = sys::pidfd_send_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = sys::waitid_pidfd(pidfd.as_fd(), 0);
}

/// A sandbox that reported `Ready`, as `spawn` hands it to the serve loop.
pub(crate) struct Made {
    /// The supervisor's record.
    pub child: Child,
    pub reply: Reply,
    /// For the host, in this order: pidfd, control socket, status pipe.
    pub host_fds: Vec<OwnedFd>,
    /// The supervisor's dup of the ring, whose number the reply names: kept
    /// open until the host's next request (the host takes its copy with
    /// `pidfd_getfd` before it sends anything else).
    pub ring: OwnedFd,
}

/// Waits for PID 1's `Ready` and builds the supervisor's record, the reply
/// and the host's descriptors (pidfd, control, status).
fn finish(s: Started, req: &SpawnRequest, env: &SupervisorEnv, id: u64) -> Result<Made, Reply> {
    let landlock = wait_ready(&s)?;
    made(s, landlock, req, env, id, false)
}

/// Waits (10 s at most) for PID 1's `Ready` record; on anything else PID 1
/// is killed and reaped and the error is the reply.
fn wait_ready(s: &Started) -> Result<LandlockReport, Reply> {
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
    Ok(landlock)
}

/// The supervisor's record, the reply and the host's descriptors of a
/// sandbox that reported `Ready` (`pooled`: taken from the pool).
fn made(
    s: Started,
    landlock: LandlockReport,
    req: &SpawnRequest,
    env: &SupervisorEnv,
    id: u64,
    pooled: bool,
) -> Result<Made, Reply> {
    let kill = |msg: Reply| {
        kill_reap(&s.pidfd);
        msg
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
    let (ring_dev, ring_ino) =
        sys::file_identity(s.ring_dup.as_fd()).map_err(|e| kill(io_err("fstat ring", e)))?;
    let reply = Reply::Spawned {
        id,
        pid: s.pid,
        ring_fd: s.ring_dup.as_raw_fd(),
        ring_dev,
        ring_ino,
        pooled,
        enforcement,
    };
    let child = Child {
        pidfd: s.pidfd,
        report_r: s.report_r,
        status_w,
        reported: false,
    };
    Ok(Made {
        child,
        reply,
        host_fds: vec![host_pidfd, s.control_host, status_r],
        ring: s.ring_dup,
    })
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
/// cold. On success returns the supervisor's record, the reply, the
/// descriptors for the host and the ring dup to keep until the host took it.
pub(crate) fn spawn(
    req: &SpawnRequest,
    fds: Vec<OwnedFd>,
    env: &SupervisorEnv,
    id: u64,
    warm: &mut Option<Warm>,
) -> Result<Made, Reply> {
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
        if let Some(started) = w.hand_over(req, &fds, false) {
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
) -> Result<Made, Reply> {
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

    /// Hands the spec and its descriptors to the warm child (`pooled`: the
    /// pool's spec, for a sandbox made ahead of its spawn). `None` if the
    /// child cannot take it (it is then killed and reaped).
    fn hand_over(self, req: &SpawnRequest, fds: &[OwnedFd], pooled: bool) -> Option<Started> {
        // One flag byte, then the request, in a frame that is zeroed when
        // dropped.
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let sent = req
            .encode_after(&[pooled as u8])
            .map_err(std::io::Error::other)
            .and_then(|bytes| sys::send_with_fds(self.spec_w.as_raw_fd(), &bytes, &raw));
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

/// The pool's spec for `entry`: what [`crate::SandboxSpec::default`]
/// asks for, no argument bytes, `/dev/null` as every standard stream (a
/// spawn that takes the sandbox hands it its own streams).
pub(crate) fn pool_request(entry: &str) -> SpawnRequest {
    let limits = crate::Limits::default();
    let ring = ring::RingSpec::default();
    SpawnRequest {
        entry: entry.to_string(),
        arg: Vec::new(),
        ro_paths: Vec::new(),
        rw_paths: Vec::new(),
        grant_rw: Vec::new(),
        stdio: [wire::STDIO_NULL; 3],
        network: crate::Network::None,
        nofile: limits.nofile,
        pids: limits.pids,
        address_space: 0,
        cpu_seconds: 0,
        env: Vec::new(),
        ring_entries: ring.entries,
        ring_fixed_files: ring.fixed_files,
        mount_proc: false,
        landlock_best_effort: false,
    }
}

/// Whether `req` asks for exactly the pool's spec of `entry`, standard
/// streams aside (`fds` are its descriptors: only stdio ones then). A
/// directory as a standard stream is refused by the lock-down, which a
/// pooled sandbox has behind it: such a request takes the normal path
/// (and gets its error there).
pub(crate) fn has_pool_spec(req: &SpawnRequest, fds: &[impl AsRawFd], entry: &str) -> bool {
    let pool = pool_request(entry);
    let same = req.entry == pool.entry
        && req.arg.is_empty()
        && req.ro_paths.is_empty()
        && req.rw_paths.is_empty()
        && req.grant_rw.is_empty()
        && req.network == pool.network
        && req.nofile == pool.nofile
        && req.pids == pool.pids
        && req.address_space == pool.address_space
        && req.cpu_seconds == pool.cpu_seconds
        && req.env.is_empty()
        && req.ring_entries == pool.ring_entries
        && req.ring_fixed_files == pool.ring_fixed_files
        && req.mount_proc == pool.mount_proc
        && req.landlock_best_effort == pool.landlock_best_effort;
    same && fds.len() == req.fd_count()
        && fds
            .iter()
            .all(|f| sys::fstat(f.as_raw_fd()).is_ok_and(|st| !sys::is_dir(&st)))
}

/// A sandbox made ahead of its spawn with the pool's spec: its PID 1 ran
/// the whole lock-down (the same `confine` as any spawn), reported `Ready`
/// and forked the entry, which prepares (the Lua VM boots) and then waits
/// on its control socket for the stdio hand-over. States: locking down
/// (`landlock` is `None`) → ready → taken by one spawn (moved out of the
/// supervisor's state, never put back) or dead (killed and reaped).
pub(crate) struct Pooled {
    started: Started,
    landlock: Option<LandlockReport>,
}

impl Pooled {
    /// Hands the warm child the pool's spec for `entry`. `None` if it
    /// cannot take it (it is then killed and reaped).
    pub fn make(warm: Warm, entry: &str) -> Option<Pooled> {
        let started = warm.hand_over(&pool_request(entry), &[], true)?;
        Some(Pooled {
            started,
            landlock: None,
        })
    }

    /// Descriptors to watch while it waits: its pidfd (PID 1 gone), its
    /// control socket (the entry holds the only other end and sends
    /// nothing before it is taken: any event means the entry exited,
    /// which closes it at once, before PID 1 even reaps it) and its report
    /// pipe (`Ready`, then only an `Exit` record: its entry ended).
    pub fn watched(&self) -> [RawFd; 3] {
        [
            self.started.pidfd.as_raw_fd(),
            self.started.control_host.as_raw_fd(),
            self.started.report_r.as_raw_fd(),
        ]
    }

    /// It reported `Ready` (its lock-down is done; its entry may still be
    /// preparing).
    pub fn is_ready(&self) -> bool {
        self.landlock.is_some()
    }

    /// Makes it a sandbox that is handed out (for an offer to the host,
    /// `req` being the pool's request): once `Ready`, as [`Pooled::take`]
    /// without the streams, which the host hands over itself when it
    /// claims it. `None` (it is killed and reaped) if it is not ready or
    /// its record cannot be made.
    pub fn offer(self, req: &SpawnRequest, env: &SupervisorEnv, id: u64) -> Option<Made> {
        let Some(landlock) = self.landlock else {
            self.kill();
            return None;
        };
        made(self.started, landlock, req, env, id, true).ok()
    }

    /// Called when its report pipe is readable: true if it is (still)
    /// fine, i.e. this was its `Ready`.
    pub fn on_report(&mut self) -> bool {
        if self.landlock.is_some() {
            // After Ready only the entry's end (or PID 1's) is reported.
            return false;
        }
        match read_record(self.started.report_r.as_raw_fd()) {
            Some(Record::Ready(l)) => {
                self.landlock = Some(l);
                true
            }
            _ => false,
        }
    }

    /// Kills and reaps it (the whole PID namespace goes with PID 1).
    pub fn kill(self) {
        kill_reap(&self.started.pidfd);
    }

    /// Hands this sandbox to the spawn `req` (which [`has_pool_spec`]):
    /// waits for its `Ready` if the lock-down is still running, checks it
    /// is alive, sends its entry the request's standard streams, and
    /// returns it as a spawn would. `None` (it is killed and reaped) if it
    /// died or cannot take them: the caller spawns the normal way.
    pub fn take(
        self,
        req: &SpawnRequest,
        fds: &[OwnedFd],
        env: &SupervisorEnv,
        id: u64,
    ) -> Option<Made> {
        let landlock = match self.landlock {
            Some(l) => l,
            None => wait_ready(&self.started).ok()?,
        };
        let s = self.started;
        // Dead or dying while it waited: its pidfd, control socket or report
        // pipe says so.
        let quiet = |fd: &OwnedFd| matches!(sys::poll_one(fd.as_raw_fd(), libc::POLLIN, 0), Ok(0));
        let stdio = match stdio_of(req, fds, env) {
            Some(stdio) if quiet(&s.pidfd) && quiet(&s.control_host) && quiet(&s.report_r) => stdio,
            _ => {
                kill_reap(&s.pidfd);
                return None;
            }
        };
        // The reply is made before the streams are handed over: they wake
        // the entry, which may take this CPU until it waits for the module,
        // and the host's reply should not wait for that.
        let made = made(s, landlock, req, env, id, true).ok()?;
        let control = made.host_fds[1].as_raw_fd();
        if sys::send_with_fds(control, crate::STDIO_HANDOVER, &stdio).is_err() {
            kill_reap(&made.child.pidfd);
            return None;
        }
        Some(made)
    }
}

/// The three standard streams a request names, as the supervisor's
/// descriptors (`fds`: the request's, stdio ones first).
fn stdio_of(req: &SpawnRequest, fds: &[OwnedFd], env: &SupervisorEnv) -> Option<[RawFd; 3]> {
    let mut it = fds.iter();
    let mut stdio = [-1; 3];
    for (i, kind) in req.stdio.iter().enumerate() {
        stdio[i] = match *kind {
            wire::STDIO_NULL => env.devnull.as_raw_fd(),
            wire::STDIO_INHERIT => i as RawFd,
            _ => it.next()?.as_raw_fd(),
        };
    }
    Some(stdio)
}
