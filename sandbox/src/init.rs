//! Inside the sandbox: PID 1's lock-down, its reaper loop, and the entry
//! process.
//!
//! Invariants:
//! - This code runs in a `clone3` copy of the single-threaded supervisor; it
//!   never returns (every path ends in `_exit`), so nothing of the
//!   supervisor's state is dropped or reused here.
//! - Order of the lock-down (each step needs the privileges the previous ones
//!   leave): parent-death signal → wait for id maps → become uid/gid 0 of
//!   the new namespace → parent-death signal again (credential changes clear
//!   it) → empty the capability bounding set → new session, hostname →
//!   stdio (never a directory) and close every other descriptor → tmpfs
//!   root with bind-mounted grants, granted directories attached at
//!   `/.luring-grants/N`, `/proc` if asked, `pivot_root`, each granted
//!   directory's descriptor replaced by one opened through its mount, root
//!   read-only → `lo` up if asked → rlimits → not dumpable → drop every
//!   other capability and lock securebits → `no_new_privs` → Landlock →
//!   seccomp → re-check the supervisor is alive → report Ready → fork the
//!   entry process.
//! - A warm PID 1 (`run_warm`) does the same steps in another order: close
//!   every descriptor but its own → wait for id maps → uid/gid 0 → empty
//!   the bounding set → unshare mount, network, IPC, UTS, cgroup
//!   namespaces → new session, hostname → PID 1's signal handlers → wait
//!   for one spec → from the descriptor step on, exactly the cold
//!   lock-down. (Everything before the spec depends on no spec.) The
//!   spec frame starts with a flag byte: 1 when the supervisor made it
//!   for its pool, which the entry learns as `EntryContext::pooled`.
//! - A granted directory descriptor names a mount of the host's mount
//!   namespace, from which `..` climbs into the host's tree (and
//!   `connect`, `stat`, `chdir` through it are not Landlock's to mediate);
//!   such a mount cannot be cloned from the sandbox's namespace. So the
//!   directory is found again by the path the descriptor shows, checked to
//!   be the same device and inode, bind-mounted inside the sandbox's root,
//!   and the sandbox's descriptor is re-opened through that mount: `..`
//!   from it walks the sandbox's tree and stops at its root. Spawns that
//!   grant no directory pay one `fstat` per grant for this.
//! - PID 1 sets up signal forwarding before it reports Ready, so no signal
//!   the host sends after the spawn returns is lost.
//! - PID 1 and the entry process share the same Landlock domain and seccomp
//!   filters (both inherited by every later thread and child).
//! - PID 1 keeps only the report pipe; it forwards HUP/INT/QUIT/TERM/USR1/
//!   USR2/WINCH/CONT to the entry process, reaps every orphan, and when the
//!   entry process ends it reports its status and exits, which makes the
//!   kernel kill whatever is left in the PID namespace.

use crate::plan::{
    make_plan, write_record, ChildPlan, Record, SupervisorEnv, WarmPlan, WARM_UNSHARE,
};
use crate::wire;
use crate::{seccomp, sys, EntryContext, ExitStatus};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

const FORWARDED: [i32; 8] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
];

const SECCOMP_MARK: u64 = 0x5ECC_0000_0000_0000;
const SYS_SECCOMP: i32 = 1;

/// The page shared by PID 1 and the entry process where the SIGSYS handler
/// leaves the offending syscall number.
static SIGSYS_PAGE: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

type StepResult<T> = Result<T, (String, io::Error)>;

fn step<T>(name: &str, r: io::Result<T>) -> StepResult<T> {
    r.map_err(|e| (name.to_string(), e))
}

fn cstr(b: &[u8]) -> CString {
    CString::new(b).unwrap_or_else(|_| CString::new("/nonexistent").unwrap())
}

/// Runs in the cloned child. Never returns.
pub(crate) fn run_child(plan: &mut ChildPlan<'_>) -> ! {
    let report_w = plan.report_w;
    match lock_down(plan) {
        Ok(landlock) => {
            let waited = pid1_signals();
            write_record(report_w, &Record::Ready(landlock));
            pid1(plan, waited)
        }
        Err((step, e)) => {
            write_record(
                report_w,
                &Record::Failed {
                    step,
                    errno: e.raw_os_error().unwrap_or(0),
                },
            );
            sys::exit_now(127)
        }
    }
}

/// Runs in a warm child (cloned into new user and PID namespaces). Never
/// returns. States: warm (entering the namespaces, then waiting for a spec)
/// → handed a spec (the same lock-down as a cold PID 1 from the descriptor
/// step on) → running (Ready reported, entry forked) → exited.
pub(crate) fn run_warm(w: &mut WarmPlan, env: &SupervisorEnv) -> ! {
    let report_w = w.report_w;
    let fail = |(step, e): (String, io::Error)| -> ! {
        write_record(
            report_w,
            &Record::Failed {
                step,
                errno: e.raw_os_error().unwrap_or(0),
            },
        );
        sys::exit_now(127)
    };
    let pdeath = || sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0);
    if let Err(e) = step("parent-death signal", pdeath()) {
        fail(e)
    }
    // Drop everything of the supervisor's at once (other sandboxes' pipes,
    // pidfds and ring dups, the host's socket, the sync and lifeline write
    // ends): only what this sandbox will use stays.
    let ring_fd = w.ring.as_ref().map(|r| r.as_raw_fd()).unwrap_or(-1);
    let mut keep = vec![
        0,
        1,
        2,
        env.devnull.as_raw_fd(),
        env.lifeline_r.as_raw_fd(),
        ring_fd,
        w.control,
        w.report_w,
        w.sync_r,
        w.spec_r,
    ];
    keep.sort_unstable();
    keep.dedup();
    if let Err(e) = step(
        "closing inherited descriptors",
        sys::close_all_except(&keep),
    ) {
        fail(e)
    }
    if let Err(e) = enter_user_namespace(w.sync_r) {
        fail(e)
    }
    // The other five namespaces, owned by the new user namespace as they
    // would be with clone3 (the mount namespace is a copy of the
    // supervisor's with every inherited mount locked).
    // SAFETY: plain syscall with integer flags.
    if unsafe { libc::unshare(WARM_UNSHARE) } < 0 {
        fail((
            "unsharing mount, network, IPC, UTS and cgroup namespaces".into(),
            io::Error::last_os_error(),
        ))
    }
    if let Err(e) = new_session_and_hostname() {
        fail(e)
    }
    // Forwarding handlers and the blocked set depend on no spec either.
    let waited = pid1_signals();
    // Wait for the spec; the supervisor's death (lifeline HUP, or EOF on the
    // spec socket) ends the wait and this process.
    let mut pfds = [
        libc::pollfd {
            fd: w.spec_r,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: env.lifeline_r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        match sys::poll_many(&mut pfds, -1) {
            Ok(_) if pfds[1].revents != 0 => sys::exit_now(0),
            Ok(_) if pfds[0].revents != 0 => break,
            _ => continue,
        }
    }
    // One flag byte (1: made for the pool, ahead of its spawn), then the
    // request.
    // Received into untouched memory: only the pages the frame fills are
    // faulted in (a zeroed 64 KiB buffer cost ~16 page faults per spawn),
    // and only those bytes are wiped below.
    let mut buf: Vec<u8> = Vec::with_capacity(wire::MAX_FRAME + 1);
    let r = match sys::recv_with_fds_uninit(
        w.spec_r,
        &mut buf.spare_capacity_mut()[..wire::MAX_FRAME + 1],
        0,
    ) {
        Ok(r) if r.len > 1 && !r.truncated && !r.foreign_cmsg => r,
        _ => sys::exit_now(0),
    };
    // SAFETY: the kernel wrote the frame's first `r.len` bytes (at most
    // the room it was given) into the spare capacity.
    unsafe { buf.set_len(r.len) };
    close_raw(w.spec_r);
    let pooled = buf[0] == 1;
    let req = match wire::Request::decode(&buf[1..r.len]) {
        Ok(wire::Request::Spawn(req)) if req.fd_count() == r.fds.len() && buf[0] <= 1 => req,
        _ => fail((
            "decoding the spec".into(),
            io::Error::from_raw_os_error(libc::EINVAL),
        )),
    };
    buf.fill(0);
    drop(buf);
    let Some(entry) = crate::lookup_entry(&req.entry) else {
        fail((
            "unknown entry".into(),
            io::Error::from_raw_os_error(libc::EINVAL),
        ))
    };
    let requirement = if req.landlock_best_effort {
        crate::Requirement::BestEffort
    } else {
        crate::Requirement::Required
    };
    let mut plan = make_plan(
        &req,
        &r.fds,
        env,
        entry,
        requirement,
        w.ring.take(),
        w.control,
        w.report_w,
    );
    plan.pooled = pooled;
    // The descriptors now belong to the plan (kept or closed by raw number).
    std::mem::forget(r.fds);
    match confine(&mut plan) {
        Ok(landlock) => {
            write_record(report_w, &Record::Ready(landlock));
            pid1(&mut plan, waited)
        }
        Err(e) => fail(e),
    }
}

fn close_raw(fd: RawFd) {
    // SAFETY: closing a descriptor this copy of the process does not use again.
    unsafe { libc::close(fd) };
}

fn mkdir_p(path: &[u8]) -> io::Result<()> {
    let mut cur = Vec::with_capacity(path.len());
    for comp in path.split(|c| *c == b'/').filter(|c| !c.is_empty()) {
        cur.push(b'/');
        cur.extend_from_slice(comp);
        let c = cstr(&cur);
        // SAFETY: c is NUL-terminated.
        if unsafe { libc::mkdir(c.as_ptr(), 0o755) } < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Parent-death signal, wait for the id maps, become uid/gid 0 of the new
/// user namespace, parent-death signal again (credential changes clear it).
fn enter_user_namespace(sync_r: RawFd) -> StepResult<()> {
    let pdeath = || sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0);
    let mut go = [0u8; 1];
    if step("waiting for id maps", sys::read(sync_r, &mut go))? != 1 {
        // The supervisor died before writing our maps.
        sys::exit_now(0);
    }
    close_raw(sync_r);
    // SAFETY: plain syscalls with integer arguments.
    if unsafe { libc::setresgid(0, 0, 0) } < 0 || unsafe { libc::setresuid(0, 0, 0) } < 0 {
        return Err((
            "becoming uid 0 in the user namespace".into(),
            io::Error::last_os_error(),
        ));
    }
    step("parent-death signal", pdeath())?;
    drop_bounding_set()
}

/// Empties the capability bounding set (what an `execve` could ever gain).
/// Done on entering the user namespace rather than with the other
/// capabilities: it depends on no spec, and a warm child does it before it
/// waits for one, which takes ~40 syscalls off the spawn's critical path.
/// The effective capabilities the mounts need stay until
/// `drop_capabilities`.
fn drop_bounding_set() -> StepResult<()> {
    for cap in 0..64 {
        if let Err(e) = sys::prctl(libc::PR_CAPBSET_DROP, cap, 0) {
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(("dropping the bounding set".into(), e));
        }
    }
    Ok(())
}

fn lock_down(plan: &mut ChildPlan<'_>) -> StepResult<crate::landlock::LandlockReport> {
    let pdeath = || sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0);
    step("parent-death signal", pdeath())?;
    close_raw(plan.sync_w);
    close_raw(plan.lifeline_w);
    enter_user_namespace(plan.sync_r)?;
    new_session_and_hostname()?;
    confine(plan)
}

/// A session of its own and the sandbox's hostname, in its fresh UTS
/// namespace. Depends on no spec: a warm child does it before it waits for
/// one (`sethostname` waits for a global lock, which on a busy machine
/// took up to a few ms in measurements).
fn new_session_and_hostname() -> StepResult<()> {
    // SAFETY: setsid has no preconditions (PID 1 is not a group leader here).
    unsafe { libc::setsid() };
    step(
        "hostname",
        nix::unistd::sethostname("luring-sandbox").map_err(io::Error::from),
    )
}

/// Everything after entering the namespaces: the spec-dependent lock-down.
fn confine(plan: &mut ChildPlan<'_>) -> StepResult<crate::landlock::LandlockReport> {
    let pdeath = || sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0);
    // Descriptors: stdio, then close everything not granted.
    for (i, src) in plan.stdio.iter().enumerate() {
        step("stdio", sys::dup_to(*src, i as RawFd))?;
        // A directory as a standard stream would be a directory grant that
        // is not re-attached inside the sandbox (`..` from it reaches the host).
        if sys::fstat(i as RawFd).is_ok_and(|st| sys::is_dir(&st)) {
            return Err((
                format!(
                    "standard stream {i} is a directory (`..` from it would reach the \
                     host's tree); grant directories as paths or through SandboxSpec.fds"
                ),
                io::Error::from_raw_os_error(libc::EISDIR),
            ));
        }
    }
    let ring_fd = plan
        .ring
        .as_ref()
        .map(std::os::fd::AsRawFd::as_raw_fd)
        .unwrap_or(-1);
    let mut keep: Vec<RawFd> = vec![
        0,
        1,
        2,
        ring_fd,
        plan.control,
        plan.report_w,
        plan.lifeline_r,
    ];
    keep.extend(&plan.grants);
    keep.sort_unstable();
    keep.dedup();
    step(
        "closing inherited descriptors",
        sys::close_all_except(&keep),
    )?;

    build_root(plan)?;

    if matches!(plan.req.network, crate::Network::Loopback { .. }) {
        step("bringing lo up", sys::loopback_up())?;
    }

    let req = plan.req;
    step(
        "RLIMIT_NOFILE",
        sys::setrlimit(libc::RLIMIT_NOFILE, req.nofile),
    )?;
    step(
        "RLIMIT_NPROC (pids limit)",
        sys::setrlimit(libc::RLIMIT_NPROC, req.pids),
    )?;
    step("RLIMIT_CORE", sys::setrlimit(libc::RLIMIT_CORE, 0))?;
    if req.address_space != 0 {
        step(
            "RLIMIT_AS",
            sys::setrlimit(libc::RLIMIT_AS, req.address_space),
        )?;
    }
    if req.cpu_seconds != 0 {
        step(
            "RLIMIT_CPU",
            // Soft limit first: SIGXCPU names the cause; the hard limit a
            // second later (SIGKILL) stops an entry that ignores it.
            sys::setrlimit_soft_hard(
                libc::RLIMIT_CPU,
                req.cpu_seconds,
                req.cpu_seconds.saturating_add(1),
            ),
        )?;
    }
    step("not dumpable", sys::prctl(libc::PR_SET_DUMPABLE, 0, 0))?;
    drop_capabilities()?;
    step("no_new_privs", sys::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0))?;

    let landlock = plan.landlock.apply().map_err(|e| {
        (
            format!("Landlock: {e}"),
            io::Error::from_raw_os_error(libc::EOPNOTSUPP),
        )
    })?;
    seccomp::install(plan.seccomp).map_err(|e| {
        (
            format!("seccomp: {e}"),
            io::Error::from_raw_os_error(libc::EINVAL),
        )
    })?;

    // Re-check the supervisor after the last credential change.
    step("parent-death signal", pdeath())?;
    if step("lifeline", sys::poll_one(plan.lifeline_r, libc::POLLIN, 0))? != 0 {
        sys::exit_now(0);
    }
    Ok(landlock)
}

/// Where granted directories are attached inside the sandbox's root, one
/// mount point per grant, named by its index in [`crate::SandboxSpec::fds`].
pub(crate) const GRANT_MOUNTS: &str = "/.luring-grants";

/// A granted directory descriptor, found again in the sandbox's own mount
/// namespace (the descriptor itself names a mount of the host's, from which
/// `..` climbs into the host's tree, and which cannot be cloned from here).
struct DirGrant {
    /// The grant's descriptor number, replaced after `pivot_root` by one
    /// opened through the attached clone.
    fd: RawFd,
    index: usize,
    /// The same directory (same device and inode), opened by path here.
    source: OwnedFd,
    rw: bool,
    o_path: bool,
}

/// Finds every granted directory by its path in this mount namespace and
/// checks it is the very directory granted. Runs before the staging tmpfs
/// hides anything. Grants that are not directories need nothing.
fn find_dir_grants(plan: &ChildPlan<'_>) -> StepResult<Vec<DirGrant>> {
    let mut found = Vec::new();
    for (index, fd) in plan.grants.iter().copied().enumerate() {
        let st = step("fstat of a granted descriptor", sys::fstat(fd))?;
        if !sys::is_dir(&st) {
            continue;
        }
        let what = format!("granted directory #{index}");
        // The record that carries this to the host holds 200 bytes: the
        // advice first, the path last.
        let unreachable = |path: &[u8], e: io::Error| {
            (
                format!(
                    "{what} has no path naming it in the sandbox's mount namespace (grant a \
                     directory reachable by path, by uid 65534 if the host is root): {}",
                    String::from_utf8_lossy(path)
                ),
                e,
            )
        };
        let path = step(&format!("{what}: reading its path"), sys::fd_path(fd))?;
        if path.first() != Some(&b'/') || path.ends_with(b" (deleted)") {
            return Err(unreachable(
                &path,
                io::Error::from_raw_os_error(libc::ENOENT),
            ));
        }
        let source = sys::open_path(&cstr(&path), libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| unreachable(&path, e))?;
        let here = step(&format!("{what}: fstat"), sys::fstat(source.as_raw_fd()))?;
        if (here.st_dev, here.st_ino) != (st.st_dev, st.st_ino) {
            return Err(unreachable(
                &path,
                io::Error::from_raw_os_error(libc::EXDEV),
            ));
        }
        let flags = step(&format!("{what}: F_GETFL"), sys::status_flags(fd))?;
        found.push(DirGrant {
            fd,
            index,
            source,
            rw: plan.req.grant_rw.get(index).copied().unwrap_or(false),
            o_path: flags & libc::O_PATH != 0,
        });
    }
    Ok(found)
}

fn grant_mount_point(index: usize) -> Vec<u8> {
    format!("{GRANT_MOUNTS}/{index}").into_bytes()
}

/// Bind-mounts `source` (a descriptor opened in this mount namespace) on
/// `target`, recursively, then sets nosuid, nodev, noexec and, unless
/// `rw`, read-only on every mount of the copy.
fn attach(source: &OwnedFd, target: &[u8], rw: bool, what: &str) -> StepResult<()> {
    let t = cstr(target);
    let src = CString::new(format!("/proc/self/fd/{}", source.as_raw_fd())).unwrap();
    step(
        &format!("bind-mounting {what}"),
        sys::mount(
            Some(&src),
            &t,
            None,
            (libc::MS_BIND | libc::MS_REC) as libc::c_ulong,
            None,
        ),
    )?;
    let mut attrs = sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC;
    if !rw {
        attrs |= sys::MOUNT_ATTR_RDONLY;
    }
    step(
        "mount_setattr on a grant (Linux 5.12)",
        sys::mount_setattr(&t, attrs, true),
    )
}

/// After `pivot_root`: each granted directory's descriptor is replaced by
/// one opened through its clone in the sandbox's root, so `..` from it
/// walks the sandbox's tree and stops at the sandbox's root.
fn reopen_dir_grants(grants: &[DirGrant]) -> StepResult<()> {
    for g in grants {
        let access = if g.o_path {
            libc::O_PATH
        } else {
            libc::O_RDONLY
        };
        let fresh = step(
            "opening a granted directory through its mount",
            sys::open_path(
                &cstr(&grant_mount_point(g.index)),
                access | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            ),
        )?;
        step(
            "replacing a granted directory's descriptor",
            sys::dup_to(fresh.as_raw_fd(), g.fd),
        )?;
    }
    Ok(())
}

fn build_root(plan: &ChildPlan<'_>) -> StepResult<()> {
    let req = plan.req;
    let dir_grants = find_dir_grants(plan)?;
    // Open every source before anything is mounted over it.
    let mut sources: Vec<(OwnedFd, &[u8], bool, bool)> = Vec::new();
    for (list, rw) in [(&req.ro_paths, false), (&req.rw_paths, true)] {
        for p in list {
            let c = cstr(p.as_bytes());
            // SAFETY: c is NUL-terminated; O_PATH opens without access checks on content.
            let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
            if fd < 0 {
                return Err((
                    format!("opening granted path {}", p.to_string_lossy()),
                    io::Error::last_os_error(),
                ));
            }
            // SAFETY: open returned a new descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let is_dir = std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(true);
            sources.push((fd, p.as_bytes(), rw, is_dir));
        }
    }
    let staging: &CStr = if std::path::Path::new("/tmp").is_dir() {
        c"/tmp"
    } else {
        c"/mnt"
    };
    step(
        "making mounts private",
        sys::mount(
            None,
            c"/",
            None,
            (libc::MS_REC | libc::MS_PRIVATE) as libc::c_ulong,
            None,
        ),
    )?;
    step(
        "mounting the tmpfs root",
        sys::mount(
            Some(c"tmpfs"),
            staging,
            Some(c"tmpfs"),
            (libc::MS_NOSUID | libc::MS_NODEV) as libc::c_ulong,
            Some(c"mode=0755,size=64k,nr_inodes=4096"),
        ),
    )?;
    let base = staging.to_bytes();
    for (fd, path, rw, is_dir) in &sources {
        let mut target = base.to_vec();
        target.extend_from_slice(path);
        let t = cstr(&target);
        if *is_dir {
            step("creating a mount point", mkdir_p(&target))?;
        } else {
            let parent = &target[..target.iter().rposition(|c| *c == b'/').unwrap_or(0)];
            step("creating a mount point", mkdir_p(parent))?;
            // SAFETY: t is NUL-terminated.
            let f = unsafe {
                libc::open(
                    t.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if f < 0 {
                return Err(("creating a mount point".into(), io::Error::last_os_error()));
            }
            close_raw(f);
        }
        drop(t);
        attach(fd, &target, *rw, &String::from_utf8_lossy(path))?;
    }
    drop(sources);
    for g in &dir_grants {
        let mut target = base.to_vec();
        target.extend_from_slice(&grant_mount_point(g.index));
        step("creating a grant's mount point", mkdir_p(&target))?;
        attach(
            &g.source,
            &target,
            g.rw,
            &format!("granted directory #{}", g.index),
        )?;
    }
    if req.mount_proc {
        let mut target = base.to_vec();
        target.extend_from_slice(b"/proc");
        step("creating /proc", mkdir_p(&target))?;
        step(
            "mounting /proc",
            sys::mount(
                Some(c"proc"),
                &cstr(&target),
                Some(c"proc"),
                (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC) as libc::c_ulong,
                Some(c"subset=pid"),
            ),
        )?;
    }
    // SAFETY: staging is NUL-terminated.
    if unsafe { libc::chdir(staging.as_ptr()) } < 0 {
        return Err(("chdir to the new root".into(), io::Error::last_os_error()));
    }
    step("pivot_root", sys::pivot_root(c".", c"."))?;
    step(
        "detaching the old root",
        sys::umount2(c".", libc::MNT_DETACH),
    )?;
    reopen_dir_grants(&dir_grants)?;
    drop(dir_grants);
    // SAFETY: "/" is NUL-terminated.
    if unsafe { libc::chdir(c"/".as_ptr()) } < 0 {
        return Err(("chdir /".into(), io::Error::last_os_error()));
    }
    step(
        "making the root read-only",
        sys::mount_setattr(
            c"/",
            sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV,
            false,
        ),
    )?;
    Ok(())
}

fn drop_capabilities() -> StepResult<()> {
    // SECBIT_NOROOT|_LOCKED, NO_SETUID_FIXUP|_LOCKED, KEEP_CAPS_LOCKED,
    // NO_CAP_AMBIENT_RAISE|_LOCKED.
    const SECBITS: libc::c_ulong = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40 | 0x80;
    step(
        "securebits",
        sys::prctl(libc::PR_SET_SECUREBITS, SECBITS, 0),
    )?;
    // (The bounding set went when the user namespace was entered.)
    step(
        "clearing ambient capabilities",
        sys::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
        ),
    )?;
    step("clearing capabilities", sys::capset_clear())
}

extern "C" fn noop_handler(_: libc::c_int) {}

extern "C" fn sigsys_handler(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo; for SIGSYS the syscall
    // number is the int at offset 24 (after si_signo/si_errno/si_code, the
    // padding, and _call_addr).
    let (code, nr) = unsafe { ((*info).si_code, *(info as *const u8).add(24).cast::<i32>()) };
    let page = SIGSYS_PAGE.load(Ordering::Relaxed);
    if code == SYS_SECCOMP && !page.is_null() {
        // SAFETY: the page is a live shared mapping made before the fork.
        unsafe { (*page).store(SECCOMP_MARK | nr as u32 as u64, Ordering::SeqCst) };
    }
    // Die of SIGSYS: default action, raised again (delivered when the
    // handler returns and the mask is restored).
    // SAFETY: async-signal-safe calls with valid arguments.
    unsafe {
        libc::signal(libc::SIGSYS, libc::SIG_DFL);
        libc::syscall(
            libc::SYS_kill,
            libc::syscall(libc::SYS_getpid),
            libc::SIGSYS,
        );
    }
}

fn sigset(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset/sigaddset initialise it.
    unsafe {
        let mut s: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut s);
        for sig in sigs {
            libc::sigaddset(&mut s, *sig);
        }
        s
    }
}

/// PID 1's signal set-up: no-op handlers for the forwarded signals (a
/// PID-namespace init drops signals whose action is the default) and the set
/// blocked for `sigwaitinfo`. Done before `Ready` is reported, so that a
/// signal the host sends as soon as the spawn returns is forwarded, not lost.
fn pid1_signals() -> libc::sigset_t {
    let mut waited: Vec<i32> = FORWARDED.to_vec();
    waited.push(libc::SIGCHLD);
    let set = sigset(&waited);
    // SAFETY: installing a no-op handler and blocking the set; both are
    // process-local.
    unsafe {
        for s in FORWARDED {
            libc::signal(s, noop_handler as *const () as libc::sighandler_t);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    set
}

/// PID 1 after `Ready`; `set` is what [`pid1_signals`] blocked (set up
/// once, before `Ready`: the entry is forked without redoing it).
fn pid1(plan: &mut ChildPlan<'_>, set: libc::sigset_t) -> ! {
    let page = match sys::shared_page() {
        Ok(p) => p as *mut AtomicU64,
        Err(_) => sys::exit_now(126),
    };
    SIGSYS_PAGE.store(page, Ordering::SeqCst);
    // SAFETY: single-threaded; the child never returns.
    let entry_pid = match unsafe { sys::fork_raw() } {
        Ok(0) => run_entry(plan),
        Ok(p) => p,
        Err(_) => sys::exit_now(125),
    };
    let report_w = plan.report_w;
    let _ = sys::close_all_except(&[report_w]);
    loop {
        // SAFETY: set is initialised; a null info pointer is allowed.
        let sig = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if sig == libc::SIGCHLD {
            loop {
                let mut status = 0;
                // SAFETY: status is writable.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid <= 0 {
                    break;
                }
                if pid == entry_pid {
                    let st = if libc::WIFEXITED(status) {
                        ExitStatus::Exited(libc::WEXITSTATUS(status))
                    } else {
                        let s = libc::WTERMSIG(status);
                        // SAFETY: the page lives for the process lifetime.
                        let v = unsafe { (*page).load(Ordering::SeqCst) };
                        if s == libc::SIGSYS && v & 0xFFFF_0000_0000_0000 == SECCOMP_MARK {
                            ExitStatus::Seccomp {
                                syscall: v as u32 as i32,
                            }
                        } else {
                            ExitStatus::Signaled(s)
                        }
                    };
                    write_record(report_w, &Record::Exit(st));
                    sys::exit_now(0);
                }
            }
        } else if sig > 0 {
            // SAFETY: plain kill of our own child.
            unsafe { libc::kill(entry_pid, sig) };
        }
    }
}

fn run_entry(plan: &mut ChildPlan<'_>) -> ! {
    // SAFETY: restoring default dispositions and an empty mask in the new
    // process; installing our SIGSYS handler with SA_SIGINFO.
    unsafe {
        for s in FORWARDED {
            libc::signal(s, libc::SIG_DFL);
        }
        let empty = sigset(&[]);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = sigsys_handler as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
    close_raw(plan.report_w);
    close_raw(plan.lifeline_r);
    // SAFETY: single-threaded; replacing the (already cleared) environment.
    unsafe { libc::clearenv() };
    for (k, v) in &plan.req.env {
        std::env::set_var(k, v);
    }
    let ring = plan.ring.take().expect("ring");
    // SAFETY: these descriptors were kept open for the sandbox and are owned
    // by nothing else in this process.
    let (control, fds) = unsafe {
        (
            OwnedFd::from_raw_fd(plan.control),
            plan.grants
                .iter()
                .map(|f| OwnedFd::from_raw_fd(*f))
                .collect(),
        )
    };
    let ctx = EntryContext {
        ring,
        control,
        fds,
        arg: plan.req.arg.clone(),
        pooled: plan.pooled,
    };
    let entry = plan.entry;
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry(ctx))).unwrap_or(101);
    let _ = io::Write::flush(&mut io::stdout());
    sys::exit_now(code)
}
