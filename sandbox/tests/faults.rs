//! Fault cases of SECURITY.md that belong to the sandbox crate: child crash,
//! SIGKILL of the child, seccomp kill reporting, host death kills every
//! sandbox, fork bomb stopped by the pids limit, no zombies, signal
//! forwarding, clear spawn errors. Runs as root and as uid 61000.
//!
//! Timing: nothing here sleeps for a fixed time or races a state check.
//! Every wait is for a condition (a status, a readable descriptor, a
//! process state) with a generous deadline (`DEADLINE`, 30 s), so a loaded
//! machine only makes the suite slower. The supervisor's warm child is
//! told apart from sandboxes by pid (every spawned sandbox's pid is
//! recorded), never by counting children while one is still exiting.

mod common;

use common::{recv, Tally};
use luring_sandbox::*;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long any condition is awaited before the check fails.
const DEADLINE: Duration = Duration::from_secs(30);
const DEADLINE_MS: i32 = 30_000;

/// Pids of every sandbox this process spawned (PID 1 in the host's view).
static SANDBOX_PIDS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// `sv.spawn`, recording the sandbox's pid.
fn spawn(
    sv: &Supervisor,
    entry: &str,
    arg: &[u8],
    spec: &SandboxSpec,
) -> Result<SandboxHandle, SpawnError> {
    let h = sv.spawn(entry, arg, spec)?;
    SANDBOX_PIDS.lock().unwrap().push(h.pid());
    Ok(h)
}

/// Waits for the sandbox's status, up to `DEADLINE`.
fn wait(h: &mut SandboxHandle) -> std::io::Result<ExitStatus> {
    h.wait_timeout(DEADLINE_MS)?.ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "no exit status within 30 s")
    })
}

fn crash(_: EntryContext) -> i32 {
    // SAFETY: deliberately invalid: the test wants a SIGSEGV.
    unsafe { std::ptr::write_volatile(std::ptr::null_mut::<u8>().wrapping_add(8), 1) };
    0
}

fn idle(ctx: EntryContext) -> i32 {
    let _ = recv(ctx.control.as_raw_fd());
    0
}

fn bad_syscall(_: EntryContext) -> i32 {
    // SAFETY: sysfs(2) is on no list: the filter traps it.
    unsafe { libc::syscall(libc::SYS_sysfs, 1, 0, 0) };
    0
}

fn fork_bomb(ctx: EntryContext) -> i32 {
    let mut n = 0;
    let err = loop {
        // SAFETY: the children only pause; they die with the PID namespace.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        if pid < 0 {
            break common::errno();
        }
        n += 1;
        if n > 1000 {
            break 0;
        }
    };
    common::send(ctx.control.as_raw_fd(), format!("{n} {err}").as_bytes());
    0
}

fn orphans(_: EntryContext) -> i32 {
    // Make an orphan that exits at once: PID 1 must reap it.
    let mut p = [0; 2];
    // SAFETY: p is writable.
    unsafe { libc::pipe(p.as_mut_ptr()) };
    // SAFETY: single-threaded fork; the children only exit.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: as above.
        let g = unsafe { libc::fork() };
        if g > 0 {
            let s = g.to_string();
            // SAFETY: valid buffer.
            unsafe { libc::write(p[1], s.as_ptr().cast(), s.len()) };
        }
        // SAFETY: leave the child.
        unsafe { libc::_exit(0) };
    }
    // SAFETY: closing our copy of the write end; waiting for our own child.
    unsafe {
        libc::close(p[1]);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    let mut buf = [0u8; 16];
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(p[0], buf.as_mut_ptr().cast(), 16) };
    let g = String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned();
    if g.is_empty() {
        return 2;
    }
    // Wait until the orphan is gone from /proc (reaped), up to 30 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match std::fs::read_to_string(format!("/proc/{g}/stat")) {
            Err(_) => return 0,
            Ok(_) if std::time::Instant::now() > deadline => return 1,
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

fn wait_term(_: EntryContext) -> i32 {
    // Default SIGTERM action: dies when PID 1 forwards the signal.
    loop {
        // SAFETY: pause has no preconditions.
        unsafe { libc::pause() };
    }
}

fn env_check(_: EntryContext) -> i32 {
    let ok = std::env::var("LURING_TEST").as_deref() == Ok("yes") && std::env::var("HOME").is_err();
    if ok {
        0
    } else {
        3
    }
}

/// Reports its seven namespace links on the control socket, then waits for
/// a byte from the host (so that two probes are alive at once and the
/// kernel cannot reuse a namespace's inode number between them).
fn ns_probe(ctx: EntryContext) -> i32 {
    let mut out = String::new();
    for ns in ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        match std::fs::read_link(format!("/proc/self/ns/{ns}")) {
            Ok(l) => out.push_str(&format!("{}\n", l.display())),
            Err(_) => return 2,
        }
    }
    // SAFETY: valid buffer; our control socket.
    unsafe { libc::write(ctx.control.as_raw_fd(), out.as_ptr().cast(), out.len()) };
    let mut b = [0u8; 1];
    // SAFETY: valid buffer.
    unsafe { libc::read(ctx.control.as_raw_fd(), b.as_mut_ptr().cast(), 1) };
    0
}

/// Exits 0 if descriptors 0..1023 are exactly the granted set.
fn fd_exact(ctx: EntryContext) -> i32 {
    let open: Vec<i32> = (0..1024)
        // SAFETY: F_GETFD only queries.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect();
    if open == ctx.expected_fds() && ctx.fds.len() == ctx.arg[0] as usize {
        0
    } else {
        eprintln!("open {open:?} want {:?}", ctx.expected_fds());
        4
    }
}

/// Waits for "report" on the control socket, then sends the user_data of
/// every completion on its ring (e.g. `MsgRingData` from the host), one per
/// line.
fn ring_echo(mut ctx: EntryContext) -> i32 {
    let _ = recv(ctx.control.as_raw_fd());
    let mut out = String::new();
    for cqe in ctx.ring.completion() {
        out.push_str(&format!("{}\n", cqe.user_data()));
    }
    common::send(ctx.control.as_raw_fd(), out.as_bytes());
    0
}

fn quick(_: EntryContext) -> i32 {
    0
}

/// Every handle's ring is its own sandbox's, also when the host is slow to
/// take it while other threads spawn and short-lived sandboxes exit (their
/// ring numbers are freed and reused in the supervisor): each handle posts
/// a token to its ring; each long-lived sandbox must report exactly its own
/// token, and no handle may lack a ring.
fn ring_handover(t: &mut Tally, sv: &Supervisor) {
    const ECHO_THREADS: u64 = 3;
    const QUICK_THREADS: u64 = 2;
    const PER_THREAD: u64 = 8;
    Supervisor::set_handover_delay_for_tests(std::time::Duration::from_millis(3));
    /// Per thread: the long-lived handles with their tokens, and errors.
    type Outcome = (Vec<(u64, SandboxHandle)>, Vec<String>);
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..ECHO_THREADS + QUICK_THREADS)
            .map(|th| {
                s.spawn(move || {
                    let echo = th < ECHO_THREADS;
                    let mut kept = Vec::new();
                    let mut errors = Vec::new();
                    let mut host = match ring::host_ring(4) {
                        Ok(r) => r,
                        Err(e) => return (kept, vec![format!("host ring: {e}")]),
                    };
                    for i in 0..PER_THREAD {
                        let token = (th + 1) << 32 | i;
                        let entry = if echo { "ring_echo" } else { "quick" };
                        let mut h = match spawn(sv, entry, b"", &SandboxSpec::default()) {
                            Ok(h) => h,
                            Err(e) => {
                                errors.push(format!("spawn {entry}: {e}"));
                                continue;
                            }
                        };
                        match h.ring_fd() {
                            None => errors.push(format!("{entry} #{i}: no ring fd")),
                            Some(r) => {
                                if let Err(e) = ring::wake(&mut host, r, 0, token) {
                                    errors.push(format!("{entry} #{i}: wake: {e}"));
                                }
                            }
                        }
                        if echo {
                            kept.push((token, h));
                        } else if !matches!(h.wait_timeout(DEADLINE_MS), Ok(Some(_))) {
                            errors.push(format!("quick #{i} did not exit"));
                        }
                    }
                    (kept, errors)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    Supervisor::set_handover_delay_for_tests(std::time::Duration::ZERO);
    let mut errors: Vec<String> = Vec::new();
    let mut echoed = 0;
    for (kept, errs) in results {
        errors.extend(errs);
        for (token, mut h) in kept {
            common::send(h.control().as_raw_fd(), b"report");
            let got: Vec<u64> = read_control(&h)
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            if got == [token] {
                echoed += 1;
            } else {
                errors.push(format!("sandbox with token {token:#x} received {got:x?}"));
            }
            let _ = h.wait_timeout(DEADLINE_MS);
        }
    }
    t.check(
        "ring hand-over: with a slow host and concurrent spawns, every handle has its own sandbox's ring",
        errors.is_empty() && echoed == ECHO_THREADS * PER_THREAD,
        &format!("{echoed} of {} sandboxes received exactly their own token; {errors:?}", ECHO_THREADS * PER_THREAD),
    );
}

/// A capability installed in a sandbox's ring dies with the sandbox and
/// its handle: the supervisor keeps no copy of the ring once the host has
/// taken it (even when the host sends nothing more). A pipe's write end
/// installed with `send_fd`: its reader sees EOF once the handle is dropped.
fn capability_released(t: &mut Tally, sv: &Supervisor) {
    let name =
        "a capability in a dropped sandbox's ring is released (the supervisor keeps no ring)";
    let h = match spawn(sv, "idle", b"", &SandboxSpec::default()) {
        Ok(h) => h,
        Err(e) => return t.check(name, false, &format!("spawn: {e}")),
    };
    let mut p = [0; 2];
    // SAFETY: p is writable.
    unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
    // SAFETY: new descriptors we own.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(p[0]), OwnedFd::from_raw_fd(p[1])) };
    let sent = ring::host_ring(4).and_then(|mut host| {
        let ring = h
            .ring_fd()
            .ok_or_else(|| std::io::Error::other("no ring"))?;
        ring::send_fd(&mut host, 0, ring, std::os::fd::AsFd::as_fd(&w), 0)
    });
    drop(w);
    drop(h);
    let revents =
        luring_sandbox::sys::poll_one(r.as_raw_fd(), libc::POLLIN, DEADLINE_MS).unwrap_or(0);
    t.check(
        name,
        sent.is_ok() && revents & libc::POLLHUP != 0,
        &format!(
            "installed: {sent:?}; reader POLLHUP within 30 s: {}",
            revents & libc::POLLHUP != 0
        ),
    );
}

/// Children of the supervisor, as pids.
fn children_of(pid: i32) -> Vec<i32> {
    supervisor_children(pid)
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect()
}

/// The supervisor's warm child: its one living child that is neither a
/// sandbox this process spawned nor in `known`. Awaited (the supervisor
/// makes it when idle), up to `DEADLINE`.
fn await_warm(sup: i32, known: &[i32]) -> Option<i32> {
    let mut found = None;
    await_cond(|| {
        let spawned = SANDBOX_PIDS.lock().unwrap().clone();
        let w: Vec<i32> = children_of(sup)
            .into_iter()
            .filter(|p| !known.contains(p) && !spawned.contains(p) && state(*p) != Some('Z'))
            .collect();
        found = (w.len() == 1).then(|| w[0]);
        found.is_some()
    });
    found
}

/// Waits until the supervisor is at rest: every sandbox this process
/// spawned is reaped and its only child is the warm one; then one request
/// round trip (which the supervisor answers only between two steps of its
/// loop, so any warm child's set-up is complete and the last spawn's ring
/// released). Returns the warm child's pid and the supervisor's open
/// descriptor count, which nothing changes until the next request.
fn quiesce(sv: &Supervisor) -> Option<(i32, usize)> {
    let sup = sv.pid();
    let mut warm = None;
    let settled = await_cond(|| {
        let kids = children_of(sup);
        let spawned = SANDBOX_PIDS.lock().unwrap().clone();
        warm = (kids.len() == 1
            && !spawned.contains(&kids[0])
            && state(kids[0]).is_some_and(|c| c != 'Z'))
        .then(|| kids[0]);
        warm.is_some()
    });
    if !settled {
        return None;
    }
    let _ = sv.signal(u64::MAX, 0);
    Some((warm?, supervisor_fds(sup)))
}

fn supervisor_fds(sup: i32) -> usize {
    std::fs::read_dir(format!("/proc/{sup}/fd"))
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

/// The state letter of process `p` (`R`, `S`, `Z`, ...), if it exists.
fn state(p: i32) -> Option<char> {
    std::fs::read_to_string(format!("/proc/{p}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim().chars().next()))
        .flatten()
}

fn read_control(h: &SandboxHandle) -> String {
    if luring_sandbox::sys::poll_one(h.control().as_raw_fd(), libc::POLLIN, DEADLINE_MS)
        .unwrap_or(0)
        == 0
    {
        return String::new();
    }
    let mut buf = [0u8; 1024];
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(h.control().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    String::from_utf8_lossy(&buf[..n.max(0) as usize]).into_owned()
}

/// The warm sandbox: each spawn takes the supervisor's warm child (its pid
/// is the handle's), and gets namespaces of its own, distinct from the
/// previous sandbox's and from the host's; a spec with another ring shape
/// takes the cold path and leaves the warm child in place; no descriptor of
/// a previous request reaches the next sandbox.
fn warm_sandbox(t: &mut Tally, sv: &Supervisor) {
    let sup = sv.pid();
    let probe_spec = || SandboxSpec {
        mount_proc: true,
        ..Default::default()
    };
    // Nothing warm before the first spawn request (a host that never
    // spawns pays for no namespaces). The supervisor answers a request only
    // between two steps of its loop, so after this round trip an eager warm
    // child would exist already.
    let _ = sv.signal(u64::MAX, 0);
    let before = children_of(sup);
    t.check(
        "no warm child before the first spawn request",
        before.is_empty(),
        &format!("supervisor children {before:?}"),
    );
    // The first spawn is cold; a warm child is made after it.
    match spawn(sv, "env_check", b"", &SandboxSpec::default()) {
        Ok(mut h) => {
            let st = h.wait_timeout(DEADLINE_MS);
            t.check(
                "the first sandbox is spawned cold",
                matches!(st, Ok(Some(ExitStatus::Exited(3)))),
                &format!("{st:?}"),
            );
        }
        Err(e) => return t.check("the first sandbox is spawned cold", false, &e.to_string()),
    }
    let w1 = await_warm(sup, &[]);
    let a = spawn(sv, "ns_probe", b"", &probe_spec());
    let (mut a, w1) = match (a, w1) {
        (Ok(a), Some(w)) => (a, w),
        (a, w) => {
            return t.check(
                "warm sandbox: first probe",
                false,
                &format!("{:?} warm {w:?}", a.err()),
            )
        }
    };
    let ns_a = read_control(&a);
    let w2 = await_warm(sup, &[a.pid()]);
    let mut b = match spawn(sv, "ns_probe", b"", &probe_spec()) {
        Ok(b) => b,
        Err(e) => return t.check("warm sandbox: second probe", false, &e.to_string()),
    };
    let ns_b = read_control(&b);
    let host: Vec<String> = ["user", "mnt", "pid", "net", "ipc", "uts", "cgroup"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/self/ns/{n}"))
                .map(|l| l.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    let la: Vec<&str> = ns_a.lines().collect();
    let lb: Vec<&str> = ns_b.lines().collect();
    let fresh = la.len() == 7
        && lb.len() == 7
        && la.iter().zip(&lb).all(|(x, y)| x != y)
        && la.iter().chain(&lb).all(|x| !host.iter().any(|h| h == x));
    t.check(
        "warm sandboxes: the handle's pid is the warm child's",
        a.pid() == w1 && Some(b.pid()) == w2,
        &format!("a {} (warm {w1}), b {} (warm {w2:?})", a.pid(), b.pid()),
    );
    t.check(
        "two consecutive warm sandboxes have seven namespaces each, none shared with each other or the host",
        fresh,
        &format!("a {la:?} b {lb:?}"),
    );
    for h in [&a, &b] {
        // SAFETY: valid buffer; the host's end of the control socket.
        unsafe { libc::write(h.control().as_raw_fd(), b"x".as_ptr().cast(), 1) };
    }
    let (sa, sb) = (a.wait_timeout(DEADLINE_MS), b.wait_timeout(DEADLINE_MS));
    t.check(
        "both probes exit",
        matches!(sa, Ok(Some(ExitStatus::Exited(0))))
            && matches!(sb, Ok(Some(ExitStatus::Exited(0)))),
        &format!("{sa:?} {sb:?}"),
    );

    // A ring shape other than the warm child's: cold path.
    let warm = await_warm(sup, &[]);
    let odd = SandboxSpec {
        ring: RingSpec {
            entries: 128,
            fixed_files: 16,
        },
        ..Default::default()
    };
    match spawn(sv, "env_check", b"", &odd) {
        Ok(mut h) => {
            let cold = Some(h.pid()) != warm;
            let st = h.wait_timeout(DEADLINE_MS);
            let still = warm.is_some_and(|w| children_of(sup).contains(&w));
            t.check(
                "incompatible spec (other ring shape) is spawned cold; the warm child stays",
                cold && still && matches!(st, Ok(Some(ExitStatus::Exited(3)))),
                &format!("pid {} warm {warm:?} still there {still}, {st:?}", h.pid()),
            );
        }
        Err(e) => t.check("incompatible spec", false, &e.to_string()),
    }

    // Two consecutive spawns with different grants: each sees exactly its own.
    let grant = |n: usize| -> Vec<Grant> {
        (0..n)
            .map(|_| Grant {
                fd: std::fs::File::open("/dev/null").unwrap().into(),
                access: Access::ReadOnly,
            })
            .collect()
    };
    let mut results = Vec::new();
    for n in [3usize, 1] {
        let warm = await_warm(sup, &[]);
        let spec = SandboxSpec {
            fds: grant(n),
            ..Default::default()
        };
        match spawn(sv, "fd_exact", &[n as u8], &spec) {
            Ok(mut h) => {
                let was_warm = Some(h.pid()) == warm;
                results.push((n, was_warm, h.wait_timeout(DEADLINE_MS).ok().flatten()));
            }
            Err(e) => {
                eprintln!("spawn: {e}");
                results.push((n, false, None))
            }
        }
    }
    t.check(
        "two consecutive warm spawns (3 grants, then 1): descriptors = exactly the granted set",
        results
            .iter()
            .all(|(_, w, s)| *w && *s == Some(ExitStatus::Exited(0))),
        &format!("{results:?}"),
    );
}

fn supervisor_children(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Host death: a forked "host" starts a supervisor and three sandboxes and
/// is then SIGKILLed; every sandbox (and the supervisor) must die. Watched
/// from here, the host's parent, through pidfds.
fn host_death(t: &mut Tally) {
    let mut p = [0; 2];
    // SAFETY: p is writable.
    unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
    // SAFETY: the suite process is single-threaded and has no supervisor yet.
    let host = unsafe { libc::fork() };
    if host == 0 {
        let sv = Supervisor::start().expect("start");
        let mut pids = vec![sv.pid()];
        let mut handles = Vec::new();
        for _ in 0..3 {
            match spawn(&sv, "idle", b"", &SandboxSpec::default()) {
                Ok(h) => {
                    pids.push(h.pid());
                    handles.push(h);
                }
                Err(e) => eprintln!("spawn: {e}"),
            }
        }
        // The warm child, made once the supervisor is idle.
        if let Some(w) = await_warm(sv.pid(), &pids[1..]) {
            pids.push(w);
        }
        let s = pids
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        // SAFETY: valid buffer.
        unsafe { libc::write(p[1], s.as_ptr().cast(), s.len()) };
        loop {
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(p[1]) };
    let mut buf = [0u8; 256];
    // SAFETY: valid buffer.
    let n = unsafe { libc::read(p[0], buf.as_mut_ptr().cast(), buf.len()) };
    // SAFETY: closing the read end.
    unsafe { libc::close(p[0]) };
    let pids: Vec<i32> = String::from_utf8_lossy(&buf[..n.max(0) as usize])
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let fds: Vec<OwnedFd> = pids
        .iter()
        .filter_map(|p| {
            // SAFETY: pidfd_open with integer arguments.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, *p, 0) };
            // SAFETY: a new descriptor we own.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
        })
        .collect();
    // SAFETY: killing and reaping our own child.
    unsafe {
        libc::kill(host, libc::SIGKILL);
        libc::waitpid(host, std::ptr::null_mut(), 0);
    }
    let mut dead = 0;
    for f in &fds {
        if luring_sandbox::sys::poll_one(f.as_raw_fd(), libc::POLLIN, DEADLINE_MS).unwrap_or(0) != 0
        {
            dead += 1;
        }
    }
    t.check(
        "host death kills the supervisor, every sandbox and the warm child",
        pids.len() == 5 && fds.len() == 5 && dead == 5,
        &format!(
            "{} pids watched (supervisor + 3 sandboxes + warm child), {dead} exited within 5 s",
            fds.len()
        ),
    );
}

/// Writes datagrams on its control socket until the host goes away.
fn chatter(ctx: EntryContext) -> i32 {
    while common::send(ctx.control.as_raw_fd(), b"chatter") {}
    0
}

/// The marker of an earlier request is passed XOR-ed with this, so that the
/// scanning sandbox's own request does not hold it.
const MARKER_KEY: u8 = 0x5A;

/// An anonymous private mapping (outside the heap the scan looks at).
fn scratch(len: usize) -> &'static mut [u8] {
    // SAFETY: a fresh anonymous mapping, never unmapped, used only here.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        std::slice::from_raw_parts_mut(p.cast(), len)
    }
}

/// Scans its own memory (every readable anonymous or writable private
/// mapping: heap, stack, .data/.bss, anonymous maps; read in place) for the
/// marker in its argument (XOR-ed with `MARKER_KEY`) and reports the hits
/// ("hits N ..." on the control socket). The needle lives in a mapping of
/// its own, which is skipped. (/proc/self/mem is closed to it: it is not
/// dumpable.)
fn residue_scan(ctx: EntryContext) -> i32 {
    let needle_map = scratch(4096);
    let n = ctx.arg.len();
    for (d, s) in needle_map.iter_mut().zip(&ctx.arg) {
        *d = s ^ MARKER_KEY;
    }
    let own = needle_map.as_ptr() as u64;
    // Positive control: the needle reversed, placed on the heap, must be
    // found (proves the heap is scanned).
    let control: Vec<u8> = needle_map[..n].iter().rev().copied().collect();
    let control = std::hint::black_box(control);
    let mut control_hits = 0;
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut hits = Vec::new();
    let mut scanned = 0u64;
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (range, perms, name) = (f[0], f[1], f.get(5).copied().unwrap_or(""));
        let anonymous = name.is_empty()
            || name.starts_with("[heap")
            || name.starts_with("[stack")
            || name.starts_with("[anon");
        let private_rw = perms.starts_with("rw") && perms.ends_with('p');
        if !perms.starts_with('r') || name.starts_with("[v") || !(anonymous || private_rw) {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        if a == own {
            continue;
        }
        // SAFETY: [a, b) is a readable mapping of this process (from its
        // maps, read after the last mapping change it makes here); it is
        // only read.
        let mem = unsafe { std::slice::from_raw_parts(a as *const u8, (b - a) as usize) };
        scanned += b - a;
        let needle = &needle_map[..n];
        for (i, w) in mem.windows(n).enumerate() {
            if w[0] == needle[0] && w == needle {
                hits.push(format!("{:#x} {name}", a + i as u64));
            }
            if w[0] == control[0] && w == control.as_slice() {
                control_hits += 1;
            }
        }
    }
    let report = format!(
        "hits {} scanned {scanned} {hits:?} (control hits {control_hits})",
        hits.len()
    );
    common::send(ctx.control.as_raw_fd(), report.as_bytes());
    0
}

/// No copy of an earlier request (argument, paths, environment, entry name
/// in an error, a child's failure message naming a path; cold and warm
/// spawns) is left in the supervisor's memory, which every later sandbox
/// is cloned from: a later sandbox scans its own memory for the marker.
fn request_residue(t: &mut Tally, sv: &Supervisor) {
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let marker = format!("QZX{pid:x}RESIDUE{nanos:x}MARK");
    let dir = std::env::temp_dir().join(format!("luring-{marker}"));
    let _ = std::fs::create_dir_all(&dir);
    let marked = |cold: bool| SandboxSpec {
        ro_paths: vec![dir.clone()],
        env: vec![(format!("K{marker}").into(), format!("V{marker}").into())],
        ring: if cold {
            RingSpec {
                entries: 128,
                fixed_files: 16,
            }
        } else {
            RingSpec::default()
        },
        ..Default::default()
    };
    let mut notes = Vec::new();
    for cold in [false, true] {
        let _ = await_warm(sv.pid(), &[]);
        match spawn(
            sv,
            "env_check",
            format!("A{marker}").as_bytes(),
            &marked(cold),
        ) {
            Ok(mut h) => notes.push(format!("marked spawn: {:?}", h.wait_timeout(DEADLINE_MS))),
            Err(e) => notes.push(format!("marked spawn failed: {e}")),
        }
    }
    // An error reply that names the request's entry.
    let e = spawn(sv, &format!("E{marker}"), b"", &SandboxSpec::default());
    notes.push(format!("unknown entry: {}", e.is_err()));
    // A failure inside the child whose step names a granted path (root
    // only: a directory the sandbox's uid 65534 may not enter).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let locked = dir.join(format!("L{marker}"));
        let inner = locked.join("in");
        let _ = std::fs::create_dir_all(&inner);
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700));
        let e = spawn(
            sv,
            "env_check",
            b"",
            &SandboxSpec {
                ro_paths: vec![inner],
                ..Default::default()
            },
        );
        notes.push(format!(
            "child failure: {:?}",
            e.err().map(|e| e.to_string())
        ));
    }
    let key: Vec<u8> = marker.bytes().map(|b| b ^ MARKER_KEY).collect();
    for cold in [false, true] {
        let warm = await_warm(sv.pid(), &[]);
        let spec = SandboxSpec {
            mount_proc: true,
            ..marked_free(cold)
        };
        let name = format!(
            "request residue: a later {} sandbox finds no byte of earlier requests in its memory",
            if cold { "cold" } else { "warm" }
        );
        match spawn(sv, "residue_scan", &key, &spec) {
            Ok(mut h) => {
                let report = read_control(&h);
                let st = h.wait_timeout(DEADLINE_MS);
                t.check(
                    &name,
                    report.starts_with("hits 0 ")
                        && !report.contains("(control hits 0)")
                        && (cold || Some(h.pid()) == warm),
                    &format!("{report}; {st:?}; earlier: {notes:?}"),
                );
            }
            Err(e) => t.check(&name, false, &e.to_string()),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn marked_free(cold: bool) -> SandboxSpec {
    SandboxSpec {
        ring: if cold {
            RingSpec {
                entries: 128,
                fixed_files: 16,
            }
        } else {
            RingSpec::default()
        },
        ..Default::default()
    }
}

/// Open descriptors of this process among 0..4096 (probed without opening
/// anything).
fn open_fds() -> Vec<i32> {
    (0..4096)
        // SAFETY: F_GETFD only queries.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect()
}

/// Awaits `cond` for up to 30 s (generous: the machine may be loaded);
/// true if it held.
fn await_cond(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `host` in a forked process (before this process starts its own
/// supervisor, so the child may start one) and returns its exit code.
fn in_forked_host(host: fn() -> i32) -> i32 {
    // SAFETY: the suite process is single-threaded here and has no supervisor yet.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = host();
        let _ = std::io::Write::flush(&mut std::io::stdout());
        // SAFETY: leave the forked host without running the suite's exit path.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// A host that restored SIGPIPE's default action and drops handles in the
/// middle of a conversation: the supervisor must survive and serve the
/// next spawn. Exit code 0 on success.
fn sigpipe_host() -> i32 {
    // SAFETY: setting this process's SIGPIPE disposition before any thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let sv = match Supervisor::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("start: {e}");
            return 2;
        }
    };
    for round in 0..3 {
        let Ok(h) = spawn(&sv, "chatter", b"", &SandboxSpec::default()) else {
            return 10 + round;
        };
        // Mid-conversation: one datagram read, then the handle is dropped
        // (kill; the status pipe's reader closes before the supervisor
        // writes the status).
        if read_control(&h) != "chatter" {
            return 20 + round;
        }
        drop_and_await_reap(h);
        let Ok(h) = spawn(&sv, "idle", b"", &SandboxSpec::default()) else {
            return 30 + round;
        };
        drop_and_await_reap(h);
    }
    match spawn(&sv, "env_check", b"", &SandboxSpec::default()) {
        Ok(mut h) => match h.wait_timeout(DEADLINE_MS) {
            Ok(Some(ExitStatus::Exited(3))) => 0,
            other => {
                eprintln!("last sandbox: {other:?}");
                3
            }
        },
        Err(e) => {
            eprintln!("spawn after dropped handles: {e}");
            4
        }
    }
}

/// With /proc hidden (a tmpfs over it in a private mount namespace),
/// `Supervisor::start` cannot count threads: it must refuse, not skip the
/// check. Exit code 0 when it refused with the clear error.
fn no_proc_host() -> i32 {
    // SAFETY: plain syscalls in this single-threaded forked process.
    unsafe {
        let flags = if libc::geteuid() == 0 {
            libc::CLONE_NEWNS
        } else {
            libc::CLONE_NEWUSER | libc::CLONE_NEWNS
        };
        if libc::unshare(flags) != 0 {
            eprintln!("unshare: {}", std::io::Error::last_os_error());
            return 2;
        }
        let none = std::ptr::null();
        if libc::mount(
            none,
            c"/".as_ptr(),
            none,
            libc::MS_REC | libc::MS_PRIVATE,
            none.cast(),
        ) != 0
            || libc::mount(
                c"tmpfs".as_ptr(),
                c"/proc".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                none.cast(),
            ) != 0
        {
            eprintln!("mount: {}", std::io::Error::last_os_error());
            return 3;
        }
    }
    if std::path::Path::new("/proc/self/status").exists() {
        return 4;
    }
    match Supervisor::start() {
        Ok(_) => 1,
        Err(e @ StartError::ThreadCheck(_)) => {
            let msg = e.to_string();
            if msg.contains("/proc") {
                0
            } else {
                eprintln!("unclear message: {msg}");
                5
            }
        }
        Err(e) => {
            eprintln!("wrong error: {e}");
            6
        }
    }
}

/// Drops the handle (which kills the sandbox and closes the status pipe's
/// read end), then waits until the supervisor has reaped PID 1: it writes
/// the status to the closed pipe right after reaping, so by then a SIGPIPE
/// would have been raised.
fn drop_and_await_reap(h: SandboxHandle) {
    let pid = h.pid();
    drop(h);
    await_cond(|| state(pid).is_none());
}

fn sigpipe(t: &mut Tally) {
    let code = in_forked_host(sigpipe_host);
    t.check(
        "SIGPIPE: a host with SIGPIPE at SIG_DFL drops handles mid-conversation; the supervisor survives and spawns again",
        code == 0,
        &format!("forked host exit code {code} (0 = every spawn worked)"),
    );
}

/// The host at its descriptor limit cannot receive the spawn reply's
/// descriptors (MSG_CTRUNC) or take the ring (EMFILE): the spawn fails with
/// `Handover`, and the sandbox it made (warm or cold) is killed and reaped
/// before `spawn` returns; no descriptor is left over on either side.
fn nofile_limit(t: &mut Tally, sv: &Supervisor) {
    let sup = sv.pid();
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is writable.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    let cold_spec = || SandboxSpec {
        ring: RingSpec {
            entries: 128,
            fixed_files: 16,
        },
        ..Default::default()
    };
    for cold in [false, true] {
        for free in 0..=3usize {
            let case = format!(
                "{} spawn, {free} descriptors free",
                if cold { "cold" } else { "warm" }
            );
            // A settled supervisor: only its warm child, the last ring dup
            // released (any request does), descriptors counted.
            let Some((warm, sup_before)) = quiesce(sv) else {
                return t.check(
                    &case,
                    false,
                    "the supervisor did not come to rest (one warm child)",
                );
            };
            let host_before = open_fds();
            // The limit that leaves exactly `free` numbers unused below it.
            let mut limit = 0;
            let mut unused = 0;
            while unused < free || host_before.contains(&limit) {
                if !host_before.contains(&limit) {
                    unused += 1;
                }
                limit += 1;
            }
            let spec = if cold {
                cold_spec()
            } else {
                SandboxSpec::default()
            };
            let low = libc::rlimit {
                rlim_cur: limit as libc::rlim_t,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: valid rlimit structs; the soft limit is restored at once.
            let r = unsafe {
                libc::setrlimit(libc::RLIMIT_NOFILE, &low);
                let r = spawn(sv, "idle", b"", &spec);
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                r
            };
            let err = match r {
                Err(e @ SpawnError::Handover { .. }) => e.to_string(),
                Err(e) => {
                    t.check(&case, false, &format!("wrong error: {e}"));
                    continue;
                }
                Ok(h) => {
                    t.check(
                        &case,
                        false,
                        &format!("spawn succeeded (ring {:?})", h.ring_fd()),
                    );
                    continue;
                }
            };
            // Killed and reaped before spawn returned: the warm child (used
            // by a warm spawn) is no longer the supervisor's child, and no
            // other child but a new warm one appears.
            let kids = children_of(sup);
            let warm_gone = cold || !kids.contains(&warm);
            let host_after = open_fds();
            let rest = quiesce(sv);
            let (one_child, sup_same) =
                (rest.is_some(), rest.is_some_and(|(_, n)| n == sup_before));
            t.check(
                &format!("host at RLIMIT_NOFILE ({case}): spawn fails, the sandbox is killed and reaped, no descriptor leaks"),
                warm_gone && one_child && host_after == host_before && sup_same && err.contains("RLIMIT_NOFILE"),
                &format!(
                    "{err}; children right after {kids:?} (warm was {warm}), host fds {} -> {}, supervisor fds {sup_before} -> {}",
                    host_before.len(),
                    host_after.len(),
                    supervisor_fds(sup)
                ),
            );
        }
    }
    // And the supervisor still serves.
    let ok = sv
        .spawn("env_check", b"", &SandboxSpec::default())
        .map(|mut h| h.wait_timeout(DEADLINE_MS).ok().flatten())
        .ok()
        .flatten();
    t.check(
        "after the failed spawns the supervisor still serves",
        ok == Some(ExitStatus::Exited(3)),
        &format!("{ok:?}"),
    );
}

fn suite(t: &mut Tally) {
    host_death(t);
    sigpipe(t);
    let code = in_forked_host(no_proc_host);
    t.check(
        "Supervisor::start refuses when /proc is unreadable (the thread check cannot run)",
        code == 0,
        &format!("forked host exit code {code} (0 = refused with StartError::ThreadCheck naming /proc, 1 = started)"),
    );
    let sv = match Supervisor::start() {
        Ok(s) => s,
        Err(e) => return t.check("supervisor start", false, &e.to_string()),
    };
    let spec = SandboxSpec::default;
    warm_sandbox(t, &sv);
    capability_released(t, &sv);
    ring_handover(t, &sv);
    nofile_limit(t, &sv);
    request_residue(t, &sv);

    // Child crash: SIGSEGV reported, control socket closes, host goes on.
    match spawn(&sv, "crash", b"", &spec()) {
        Ok(mut h) => {
            let st = wait(&mut h);
            let eof = read_control(&h).is_empty()
                && luring_sandbox::sys::poll_one(h.control().as_raw_fd(), libc::POLLIN, 0)
                    .unwrap_or(0)
                    & libc::POLLHUP
                    != 0;
            t.check(
                "child crash",
                matches!(st, Ok(ExitStatus::Signaled(libc::SIGSEGV))) && eof,
                &format!("{st:?}, control socket EOF={eof}"),
            );
        }
        Err(e) => t.check("child crash", false, &e.to_string()),
    }

    // SIGKILL of the child.
    match spawn(&sv, "idle", b"", &spec()) {
        Ok(mut h) => {
            let k = h.kill();
            let st = wait(&mut h);
            let pidfd_ready =
                luring_sandbox::sys::poll_one(h.pidfd().as_raw_fd(), libc::POLLIN, DEADLINE_MS)
                    .unwrap_or(0)
                    != 0;
            t.check(
                "SIGKILL of the child",
                k.is_ok() && matches!(st, Ok(ExitStatus::Signaled(libc::SIGKILL))) && pidfd_ready,
                &format!("{st:?}, pidfd readable={pidfd_ready}"),
            );
        }
        Err(e) => t.check("SIGKILL of the child", false, &e.to_string()),
    }

    // Seccomp violation reported with the syscall number.
    match spawn(&sv, "bad_syscall", b"", &spec()) {
        Ok(mut h) => {
            let st = wait(&mut h);
            let ok = matches!(st, Ok(ExitStatus::Seccomp { syscall }) if syscall == libc::SYS_sysfs as i32);
            t.check(
                "seccomp kill reported as \"killed by seccomp: syscall N\"",
                ok,
                &st.map(|s| s.to_string()).unwrap_or_default(),
            );
        }
        Err(e) => t.check("seccomp kill", false, &e.to_string()),
    }

    // Fork bomb stopped by the pids limit.
    let bomb_spec = SandboxSpec {
        limits: Limits {
            pids: 16,
            ..Default::default()
        },
        ..Default::default()
    };
    match spawn(&sv, "fork_bomb", b"", &bomb_spec) {
        Ok(mut h) => {
            let st = wait(&mut h);
            let msg = common::try_recv(h.control().as_raw_fd())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let mut it = msg
                .split_whitespace()
                .map(|x| x.parse::<i32>().unwrap_or(-1));
            let (n, err) = (it.next().unwrap_or(-1), it.next().unwrap_or(-1));
            t.check(
                "fork bomb stopped by the pids limit (16)",
                st.as_ref()
                    .map(|s| *s == ExitStatus::Exited(0))
                    .unwrap_or(false)
                    && (1..16).contains(&n)
                    && err == libc::EAGAIN,
                &format!("{n} forks then {}; sandbox {st:?}", common::errname(err)),
            );
        }
        Err(e) => t.check("fork bomb", false, &e.to_string()),
    }

    // Orphans inside the sandbox are reaped by its PID 1.
    match spawn(
        &sv,
        "orphans",
        b"",
        &SandboxSpec {
            mount_proc: true,
            ..Default::default()
        },
    ) {
        Ok(mut h) => {
            let st = wait(&mut h);
            t.check(
                "no zombies inside: PID 1 reaps orphans",
                matches!(st, Ok(ExitStatus::Exited(0))),
                &format!("{st:?}"),
            );
        }
        Err(e) => t.check("orphans", false, &e.to_string()),
    }

    // Signals are forwarded by PID 1 to the entry process.
    match spawn(&sv, "wait_term", b"", &spec()) {
        Ok(mut h) => {
            let s = h.signal(libc::SIGTERM);
            let st = h.wait_timeout(DEADLINE_MS);
            t.check(
                "SIGTERM forwarded by PID 1",
                s.is_ok() && matches!(st, Ok(Some(ExitStatus::Signaled(libc::SIGTERM)))),
                &format!("{st:?}"),
            );
        }
        Err(e) => t.check("signal forwarding", false, &e.to_string()),
    }

    // Environment: only what the spec lists.
    let env_spec = SandboxSpec {
        env: vec![("LURING_TEST".into(), "yes".into())],
        ..Default::default()
    };
    match spawn(&sv, "env_check", b"", &env_spec) {
        Ok(mut h) => {
            let st = wait(&mut h);
            t.check(
                "environment is exactly the spec's",
                matches!(st, Ok(ExitStatus::Exited(0))),
                &format!("{st:?}"),
            );
        }
        Err(e) => t.check("environment", false, &e.to_string()),
    }

    // Clear errors.
    let e = sv
        .spawn("nope", b"", &spec())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    t.check(
        "unknown entry point is named",
        e.contains("nope") && e.contains("register_entry"),
        &e,
    );
    let bad = SandboxSpec {
        ro_paths: vec!["/does/not/exist".into()],
        ..Default::default()
    };
    let e = sv
        .spawn("idle", b"", &bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    t.check(
        "missing granted path is named",
        e.contains("/does/not/exist"),
        &e,
    );
    let bad = SandboxSpec {
        limits: Limits {
            pids: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    let e = sv
        .spawn("idle", b"", &bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    t.check("pids limit below 2 is refused", e.contains("pids"), &e);

    // No zombies on the host: the supervisor reaps every sandbox; its only
    // child left is the warm one (alive, not a zombie). Awaited: a sandbox
    // whose status was relayed may still be tearing down.
    let mut kids = Vec::new();
    let settled = await_cond(|| {
        kids = children_of(sv.pid());
        let spawned = SANDBOX_PIDS.lock().unwrap().clone();
        kids.len() == 1 && !spawned.contains(&kids[0]) && state(kids[0]).is_some_and(|c| c != 'Z')
    });
    t.check(
        "no zombies on the host (supervisor's only child is the warm one)",
        settled,
        &format!(
            "children: {kids:?} (states {:?})",
            kids.iter().map(|k| state(*k)).collect::<Vec<_>>()
        ),
    );

    // Closing the host's socket ends the supervisor.
    let sup_pid = sv.pid();
    // SAFETY: pidfd_open with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, sup_pid, 0) } as i32;
    drop(sv);
    let gone = luring_sandbox::sys::poll_one(fd, libc::POLLIN, DEADLINE_MS).unwrap_or(0) != 0;
    // SAFETY: closing our pidfd.
    unsafe { libc::close(fd) };
    t.check("supervisor exits when the host closes its socket", gone, "");
}

fn main() {
    for (n, f) in [
        ("crash", crash as EntryFn),
        ("idle", idle),
        ("bad_syscall", bad_syscall),
        ("fork_bomb", fork_bomb),
        ("orphans", orphans),
        ("wait_term", wait_term),
        ("env_check", env_check),
        ("ns_probe", ns_probe),
        ("fd_exact", fd_exact),
        ("ring_echo", ring_echo),
        ("quick", quick),
        ("chatter", chatter),
        ("residue_scan", residue_scan),
    ] {
        register_entry(n, f).unwrap();
    }
    std::process::exit(common::run_as_users(suite));
}
