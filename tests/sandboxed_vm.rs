//! A Lua VM inside a luring sandbox, driven from Rust: the host spawns the
//! registered `luring-vm` entry through the supervisor, sends the module
//! over the control socket and reads what the sandboxed actor printed
//! (its stdout and stderr are pipes granted at spawn). Runs without the
//! libtest harness: the supervisor must be forked before any thread exists.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use luring::sandbox_internals::{self as sbx, send_boot};
use luring_sandbox::{ExitStatus, SandboxSpec, Stdio, Supervisor};

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn pipe() -> (std::io::PipeReader, OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r, w.into())
}

/// Runs `source` in a fresh `sandbox = {}`-like sandbox and waits (10 s
/// at most) for it to end.
fn run(sv: &Supervisor, source: &str) -> Ran {
    run_as(sv, "case.lua", source)
}

/// [`run`] with the module shown as `display` (an `init.lua` is not a leaf).
fn run_as(sv: &Supervisor, display: &str, source: &str) -> Ran {
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        stderr: Stdio::Fd(err_w),
        ..SandboxSpec::default()
    };
    let mut h = spawn_entry(sv, &spec);
    drop(spec);
    send_boot(h.control(), display, source.as_bytes()).expect("boot");
    let status = h
        .wait_timeout(10_000)
        .expect("wait")
        .unwrap_or_else(|| panic!("sandboxed VM still running after 10 s:\n{source}"));
    drop(h);
    let mut stdout = String::new();
    out_r.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    err_r.read_to_string(&mut stderr).unwrap();
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("--- {display}: {status}\n{stdout}--- stderr\n{stderr}");
    }
    Ran {
        status,
        stdout,
        stderr,
    }
}

type Case = fn(&Supervisor);

/// Set while the cases run again on pooled sandboxes: [`spawn_entry`]
/// then awaits the supervisor's offer of its pooled sandbox and checks
/// the spawn claimed it.
static POOLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Spawns the VM entry with `spec` (the pool's spec: `SandboxSpec::default()`
/// with its own stdio). In the pooled pass, the spawn must take the
/// sandbox the supervisor made ahead, after awaiting it.
fn spawn_entry(sv: &Supervisor, spec: &SandboxSpec) -> luring_sandbox::SandboxHandle {
    if !POOLED.load(std::sync::atomic::Ordering::SeqCst) {
        return sv.spawn(sbx::VM_ENTRY, &[], spec).expect("spawn");
    }
    let (pid1, _) = await_offer(sv);
    let h = sv.spawn(sbx::VM_ENTRY, &[], spec).expect("spawn");
    assert!(
        h.pooled() && h.pid() == pid1,
        "the spawn took the pooled sandbox {pid1}: pooled {}, pid {}",
        h.pooled(),
        h.pid()
    );
    h
}

/// (state, parent) of process `pid`, from /proc.
fn stat(pid: i32) -> Option<(char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ppid ...": the state follows the last ')'.
    let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// The living (not zombie) children of `parent`.
fn children(parent: i32) -> Vec<i32> {
    let mut kids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if stat(pid).is_some_and(|(state, ppid)| ppid == parent && state != 'Z') {
            kids.push(pid);
        }
    }
    kids
}

/// The supervisor's pooled sandbox, awaited (30 s at most): (its PID 1,
/// the entry process). It is the supervisor's one child with a child of
/// its own once no other sandbox runs (a warm child has none; a sandbox
/// that ended has reaped its entry before its status arrived).
fn await_pool(sup: i32) -> (i32, i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let pooled: Vec<(i32, Vec<i32>)> = children(sup)
            .into_iter()
            .map(|pid| (pid, children(pid)))
            .filter(|(_, kids)| !kids.is_empty())
            .collect();
        if let [(pid1, kids)] = &pooled[..] {
            if let [entry] = kids[..] {
                return (*pid1, entry);
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no pooled sandbox under supervisor {sup} after 30 s: {pooled:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The supervisor's pooled sandbox once it is offered to the host (on
/// the offer socket, 30 s at most): the next spawn with the pool's spec
/// claims it. (its PID 1, the entry process)
fn await_offer(sv: &Supervisor) -> (i32, i32) {
    let pooled = await_pool(sv.pid());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sv.offer_waiting() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pooled sandbox {pooled:?} was not offered in 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    pooled
}

/// This process's open descriptors.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A spawn with the pool's spec takes the sandbox made ahead, and only
/// that spawn does: a second spawn right after gets another sandbox, and
/// each prints to its own stdout only (the pooled one got this spawn's,
/// handed over after it was made). A later pooled sandbox is a new one
/// and keeps nothing of the earlier one's globals.
fn the_pool_hands_each_sandbox_to_one_spawn(sv: &Supervisor) {
    // Any spawn with the pool's spec makes the supervisor keep one.
    assert_eq!(run(sv, "print('first')").stdout, "first\n");
    let (pid1, _) = await_offer(sv);
    let start = |source: &str| start_printing(sv, source);
    let (mut a, mut a_out) = start("left_by_a = 'a' print('a', left_by_a)");
    let (mut b, mut b_out) = start("print('b', rawget(_G, 'left_by_a'))");
    assert!(
        a.pooled() && a.pid() == pid1,
        "a: {} {}",
        a.pooled(),
        a.pid()
    );
    assert_ne!(b.pid(), a.pid(), "one sandbox handed to two spawns");
    for h in [&mut a, &mut b] {
        assert_eq!(h.wait_timeout(10_000).unwrap(), Some(ExitStatus::Exited(0)));
    }
    drop((a, b));
    let (mut out_a, mut out_b) = (String::new(), String::new());
    a_out.read_to_string(&mut out_a).unwrap();
    b_out.read_to_string(&mut out_b).unwrap();
    assert_eq!((out_a.as_str(), out_b.as_str()), ("a\ta\n", "b\tnil\n"));
    // The next pooled sandbox is another process, made after `a` ended.
    let (next, _) = await_offer(sv);
    assert_ne!(next, pid1, "a pooled sandbox was reused");
    let (mut c, mut c_out) = start("print('c', rawget(_G, 'left_by_a'))");
    assert!(c.pooled() && c.pid() == next);
    assert_eq!(c.wait_timeout(10_000).unwrap(), Some(ExitStatus::Exited(0)));
    drop(c);
    let mut out_c = String::new();
    c_out.read_to_string(&mut out_c).unwrap();
    assert_eq!(out_c, "c\tnil\n");
}

/// What a sandbox's entry process holds, as the host sees it: the
/// protection lines of its /proc status, and (when this user may read
/// them: as root) its descriptors by kind.
fn held_by(entry: i32) -> (Vec<String>, Option<Vec<String>>) {
    let status = std::fs::read_to_string(format!("/proc/{entry}/status")).unwrap();
    let protections = status
        .lines()
        .filter(|l| {
            [
                "Cap",
                "NoNewPrivs",
                "Seccomp",
                "Uid",
                "Gid",
                "Groups",
                "NSpid",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| {
            // NSpid: the host's PIDs differ, the sandbox's do not.
            match l.strip_prefix("NSpid:") {
                Some(pids) => format!("NSpid in sandbox: {:?}", pids.split_whitespace().last()),
                None => l.to_string(),
            }
        })
        .collect();
    let fds = std::fs::read_dir(format!("/proc/{entry}/fd"))
        .ok()
        .map(|dir| {
            let mut fds: Vec<String> = dir
                .flatten()
                .map(|e| {
                    let target = std::fs::read_link(e.path()).unwrap_or_default();
                    let target = target.to_string_lossy();
                    // "pipe:[1234]" -> "pipe": the kind, not the instance;
                    // above stdio the numbers depend on the supervisor's own.
                    let kind = target.split(":[").next().unwrap_or_default().to_string();
                    match e.file_name().to_string_lossy().parse::<i32>() {
                        Ok(n @ 0..=2) => format!("{n} {kind}"),
                        _ => format!("3+ {kind}"),
                    }
                })
                .collect();
            fds.sort();
            fds
        });
    (protections, fds)
}

/// A pooled sandbox holds what a fresh one with the same spec holds:
/// the same capabilities (none), no_new_privs, seccomp filters, ids and
/// the same descriptors (its stdio the spawn's, nothing else received or
/// left over), read while both wait for their first message. The fresh
/// one is spawned with the same boot options spelt out (8 zero bytes: no
/// memory limit), which the pool does not serve.
fn a_pooled_sandbox_holds_what_a_fresh_one_holds(sv: &Supervisor) {
    assert_eq!(
        run(sv, "print('asks for the pool')").stdout,
        "asks for the pool\n"
    );
    let (pid1, _) = await_offer(sv);
    let start = |arg: &[u8]| {
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        let spec = SandboxSpec {
            stdout: Stdio::Fd(out_w),
            stderr: Stdio::Fd(err_w),
            ..SandboxSpec::default()
        };
        let h = sv.spawn(sbx::VM_ENTRY, arg, &spec).expect("spawn");
        let waits = "print('waiting') io = nil require('inbox'):receive()";
        send_boot(h.control(), "case.lua", waits.as_bytes()).expect("boot");
        (h, out_r, err_r)
    };
    let (mut pooled, mut pooled_out, _pooled_err) = start(&[]);
    let (mut fresh, mut fresh_out, _fresh_err) = start(&[0; 8]);
    assert!(pooled.pooled() && pooled.pid() == pid1);
    assert!(!fresh.pooled());
    // Both have started their module once they printed.
    let mut line = [0u8; 8];
    for out in [&mut pooled_out, &mut fresh_out] {
        out.read_exact(&mut line).unwrap();
        assert_eq!(&line, b"waiting\n");
    }
    let entry_of = |h: &luring_sandbox::SandboxHandle| match children(h.pid())[..] {
        [entry] => entry,
        ref other => panic!("one entry process under {}: {other:?}", h.pid()),
    };
    let (pooled_held, fresh_held) = (held_by(entry_of(&pooled)), held_by(entry_of(&fresh)));
    assert_eq!(pooled_held, fresh_held, "pooled vs fresh");
    assert!(
        pooled_held
            .0
            .iter()
            .any(|l| l.starts_with("Seccomp:") && l.ends_with('2'))
            && pooled_held
                .0
                .iter()
                .any(|l| l.starts_with("NoNewPrivs:") && l.ends_with('1'))
            && pooled_held
                .0
                .iter()
                .any(|l| l.starts_with("CapEff:") && l.ends_with("0000000000000000")),
        "{:?}",
        pooled_held.0
    );
    for h in [&mut pooled, &mut fresh] {
        h.kill().unwrap();
        assert!(h.wait_timeout(10_000).unwrap().is_some());
    }
}

/// A pooled sandbox that died while it waited (its entry killed, or its
/// PID 1) is never handed out: the next spawn gets a fresh sandbox and
/// works, with no error.
fn a_dead_pooled_sandbox_is_not_handed_out(sv: &Supervisor) {
    for kill_pid1 in [false, true] {
        assert_eq!(
            run(sv, "print('asks for the pool')").stdout,
            "asks for the pool\n"
        );
        let (pid1, entry) = await_pool(sv.pid());
        let victim = if kill_pid1 { pid1 } else { entry };
        // SAFETY: plain kill of a process of this test's sandbox.
        assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
        // Dead: PID 1 a zombie (it becomes one only once every process of
        // its namespace is gone); the entry reaped by PID 1 (as a zombie
        // its VM thread may still hold its descriptors).
        // (And PID 1 exited: until then, with the entry dead, nothing the
        // host holds tells it apart from a live one; see
        // `a_dead_claimed_sandbox_is_discarded`.)
        let dead = || !runs(pid1) && stat(entry).is_none();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !dead() {
            assert!(
                std::time::Instant::now() < deadline,
                "{victim} survived SIGKILL"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let (mut out_r, out_w) = pipe();
        let spec = SandboxSpec {
            stdout: Stdio::Fd(out_w),
            ..SandboxSpec::default()
        };
        let mut h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
        drop(spec);
        assert_ne!(
            h.pid(),
            pid1,
            "a dead pooled sandbox was handed out (killed its {}; PID 1 {:?}, entry {:?})",
            if kill_pid1 { "PID 1" } else { "entry" },
            stat(pid1),
            stat(entry)
        );
        send_boot(h.control(), "case.lua", b"print('fresh')").expect("boot");
        assert_eq!(h.wait_timeout(10_000).unwrap(), Some(ExitStatus::Exited(0)));
        drop(h);
        let mut out = String::new();
        out_r.read_to_string(&mut out).unwrap();
        assert_eq!(
            out,
            "fresh\n",
            "killed the pooled {}",
            if kill_pid1 { "PID 1" } else { "entry" }
        );
    }
}

/// A spawn with the pool's spec but a directory as a standard stream
/// (which the lock-down refuses: `..` from it would reach the host) does
/// not take the pooled sandbox, which has its lock-down behind it: it
/// takes the normal path and gets that error; the pooled one stays.
fn a_directory_stream_never_takes_the_pooled_sandbox(sv: &Supervisor) {
    assert_eq!(
        run(sv, "print('asks for the pool')").stdout,
        "asks for the pool\n"
    );
    let (pid1, _) = await_offer(sv);
    let dir: OwnedFd = std::fs::File::open("/").unwrap().into();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(dir),
        ..SandboxSpec::default()
    };
    match sv.spawn(sbx::VM_ENTRY, &[], &spec) {
        Err(luring_sandbox::SpawnError::Setup { step, err }) => {
            assert!(step.contains("standard stream 1 is a directory"), "{step}");
            assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        }
        other => panic!("a directory as stdout: {other:?}"),
    }
    assert_eq!(
        await_pool(sv.pid()).0,
        pid1,
        "the pooled sandbox was used or lost"
    );
    assert!(sv.offer_waiting(), "the offer was taken or lost");
    let r = run(sv, "print('still served')");
    assert_eq!(r.stdout, "still served\n");
}

/// The claimed path's spawn: stdout a pipe, `source` sent as the module
/// once the spawn returned. (handle, its stdout)
fn start_printing(
    sv: &Supervisor,
    source: &str,
) -> (luring_sandbox::SandboxHandle, std::io::PipeReader) {
    let (out_r, out_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        ..SandboxSpec::default()
    };
    let h = sv.spawn(sbx::VM_ENTRY, &[], &spec).expect("spawn");
    send_boot(h.control(), "case.lua", source.as_bytes()).expect("boot");
    (h, out_r)
}

/// Waits for `h` to exit 0 and returns what it printed.
fn printed(mut h: luring_sandbox::SandboxHandle, mut out: std::io::PipeReader) -> String {
    assert_eq!(h.wait_timeout(10_000).unwrap(), Some(ExitStatus::Exited(0)));
    drop(h);
    let mut s = String::new();
    out.read_to_string(&mut s).unwrap();
    s
}

/// Two threads spawn with the pool's spec while an offer waits, each
/// claim slowed down (a preempted host): exactly one of them claims the
/// offered sandbox, the other gets a sandbox of its own; each prints to
/// its own stdout only and sees nothing of the other. No descriptor is
/// left in the host afterwards (the offer's /dev/null included).
fn a_claimed_sandbox_serves_exactly_one_spawn(sv: &Supervisor) {
    assert_eq!(
        run(sv, "print('asks for the pool')").stdout,
        "asks for the pool\n"
    );
    let (pid1, _) = await_offer(sv);
    let fds_before = open_fds();
    Supervisor::set_handover_delay_for_tests(std::time::Duration::from_millis(20));
    let source = |tag: &str| format!("print('{tag}', rawget(_G, 'left')) left = '{tag}'");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| start_printing(sv, &source("a")));
        let b = s.spawn(|| start_printing(sv, &source("b")));
        (a.join().unwrap(), b.join().unwrap())
    });
    Supervisor::set_handover_delay_for_tests(std::time::Duration::ZERO);
    let claimed = [&a.0, &b.0]
        .iter()
        .filter(|h| h.pooled() && h.pid() == pid1)
        .count();
    assert_eq!(
        claimed,
        1,
        "pids {} {} (pooled {} {}), offered {pid1}",
        a.0.pid(),
        b.0.pid(),
        a.0.pooled(),
        b.0.pooled()
    );
    assert_ne!(a.0.pid(), b.0.pid(), "one sandbox served two spawns");
    assert_eq!(printed(a.0, a.1), "a\tnil\n");
    assert_eq!(printed(b.0, b.1), "b\tnil\n");
    assert_eq!(open_fds(), fds_before, "descriptors left in the host");
}

/// A spawn that asks the supervisor while an offer waits (it was made
/// just before the request arrived) is told to take the offer, and does:
/// the same sandbox, served once.
fn a_spawn_that_asks_first_takes_the_offer(sv: &Supervisor) {
    assert_eq!(
        run(sv, "print('asks for the pool')").stdout,
        "asks for the pool\n"
    );
    let (pid1, _) = await_offer(sv);
    Supervisor::set_offer_check_for_tests(false);
    let (a, a_out) = start_printing(sv, "print('a')");
    let (b, b_out) = start_printing(sv, "print('b')");
    Supervisor::set_offer_check_for_tests(true);
    assert!(
        a.pooled() && a.pid() == pid1,
        "a: pooled {}, pid {} (offered {pid1})",
        a.pooled(),
        a.pid()
    );
    assert_ne!(b.pid(), pid1, "one sandbox served two spawns");
    assert_eq!(printed(a, a_out), "a\n");
    assert_eq!(printed(b, b_out), "b\n");
}

/// A spawn with an inherited standard stream (the supervisor's own, which
/// the host does not hold) never takes the offer, nor is it told to:
/// it gets a sandbox of its own, and the offer keeps waiting.
fn an_inherited_stream_never_takes_the_offer(sv: &Supervisor) {
    assert_eq!(
        run(sv, "print('asks for the pool')").stdout,
        "asks for the pool\n"
    );
    let (pid1, _) = await_offer(sv);
    for check_first in [true, false] {
        Supervisor::set_offer_check_for_tests(check_first);
        let (out_r, out_w) = pipe();
        let spec = SandboxSpec {
            stdin: Stdio::Inherit,
            stdout: Stdio::Fd(out_w),
            ..SandboxSpec::default()
        };
        let spawned = sv.spawn(sbx::VM_ENTRY, &[], &spec);
        Supervisor::set_offer_check_for_tests(true);
        let h = spawned.expect("spawn");
        drop(spec);
        assert!(
            !h.pooled() && h.pid() != pid1,
            "check first {check_first}: pooled {}, pid {} (offered {pid1})",
            h.pooled(),
            h.pid()
        );
        assert!(sv.offer_waiting(), "the offer was taken or lost");
        send_boot(h.control(), "case.lua", b"print('own')").expect("boot");
        assert_eq!(printed(h, out_r), "own\n");
    }
}

/// An offered sandbox that died before a spawn claimed it (its entry
/// killed, or its PID 1) is discarded: killed and reaped (no zombie, no
/// descriptor left in the host), and the spawn gets a fresh sandbox and
/// works, with no error; whether the spawn looked for the offer first or
/// was told of it by the supervisor.
fn a_dead_claimed_sandbox_is_discarded(sv: &Supervisor) {
    for (kill_pid1, check_first) in [(false, true), (true, true), (false, false), (true, false)] {
        let what = format!(
            "killed its {}, check first {check_first}",
            if kill_pid1 { "PID 1" } else { "entry" }
        );
        assert_eq!(
            run(sv, "print('asks for the pool')").stdout,
            "asks for the pool\n"
        );
        let (pid1, entry) = await_offer(sv);
        let fds_before = open_fds();
        let victim = if kill_pid1 { pid1 } else { entry };
        // SAFETY: plain kill of a process of this test's sandbox.
        assert_eq!(unsafe { libc::kill(victim, libc::SIGKILL) }, 0);
        // Dead: the entry reaped by PID 1 (as a zombie its VM thread may
        // still hold its descriptors) and PID 1 exited (it does once it
        // reported the entry's end). Until then the host cannot tell: the
        // entry's end of the control socket stays open in its ring's
        // table, which the supervisor's dup keeps alive until the claim.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while runs(pid1) || stat(entry).is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "{victim} survived SIGKILL ({what})"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        Supervisor::set_offer_check_for_tests(check_first);
        let started = std::panic::catch_unwind(|| start_printing(sv, "print('fresh')"));
        Supervisor::set_offer_check_for_tests(true);
        let (h, out) = started.unwrap_or_else(|_| panic!("spawn failed ({what})"));
        assert_ne!(
            h.pid(),
            pid1,
            "a dead offered sandbox was handed out ({what})"
        );
        // Discarded: reaped by the supervisor (not even a zombie is left).
        assert!(
            stat(pid1).is_none_or(|(_, parent)| parent != sv.pid()),
            "the dead offered sandbox {pid1} was not reaped ({what}): {:?}",
            stat(pid1)
        );
        assert_eq!(printed(h, out), "fresh\n", "{what}");
        assert_eq!(
            open_fds(),
            fds_before,
            "descriptors left in the host ({what})"
        );
    }
}

/// The host at its descriptor limit while an offer waits: the offer's
/// descriptors arrive cut off (MSG_CTRUNC) or its ring cannot be taken
/// (EMFILE). The offered sandbox is then discarded (killed and reaped,
/// even after it was sent the spawn's streams) and the spawn goes the
/// normal way: it fails with a clear error naming the limit, or succeeds
/// with a fresh sandbox once the discarded offer's descriptors are closed.
/// Never a hang, never a descriptor left in the host.
fn a_claim_at_the_descriptor_limit_is_discarded(sv: &Supervisor) {
    let mut saved = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `saved` is writable.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved) },
        0
    );
    let numbers_in_use = || -> Vec<i32> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    };
    // Offer: 4 descriptors, its ring 1 more.
    for free in 0..=5usize {
        assert_eq!(
            run(sv, "print('asks for the pool')").stdout,
            "asks for the pool\n"
        );
        let (pid1, _) = await_offer(sv);
        let fds_before = open_fds();
        let (out_r, out_w) = pipe();
        let spec = SandboxSpec {
            stdout: Stdio::Fd(out_w),
            ..SandboxSpec::default()
        };
        // (The listing's own descriptor is closed again.)
        let in_use = numbers_in_use();
        // The limit that leaves exactly `free` numbers unused below it.
        let (mut limit, mut unused) = (0, 0);
        while unused < free || in_use.contains(&limit) {
            if !in_use.contains(&limit) {
                unused += 1;
            }
            limit += 1;
        }
        let low = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: saved.rlim_max,
        };
        // SAFETY: valid rlimit structs; the soft limit is restored at once.
        let spawned = unsafe {
            libc::setrlimit(libc::RLIMIT_NOFILE, &low);
            let r = sv.spawn(sbx::VM_ENTRY, &[], &spec);
            libc::setrlimit(libc::RLIMIT_NOFILE, &saved);
            r
        };
        drop(spec);
        let offer_gone = || stat(pid1).is_none_or(|(_, parent)| parent != sv.pid());
        match spawned {
            Ok(h) => {
                assert!(
                    h.pid() == pid1 || offer_gone(),
                    "{free} free: a fresh sandbox {}, and the offered {pid1} was not reaped",
                    h.pid()
                );
                send_boot(h.control(), "case.lua", b"print('served')").expect("boot");
                assert_eq!(printed(h, out_r), "served\n", "{free} free");
            }
            Err(e) => {
                let message = e.to_string();
                assert!(
                    matches!(e, luring_sandbox::SpawnError::Handover { .. })
                        && (message.contains("RLIMIT_NOFILE")
                            || message.contains("Too many open files")),
                    "{free} free: {message}"
                );
                assert!(
                    offer_gone(),
                    "{free} free: the offered {pid1} was not reaped ({message})"
                );
                drop(out_r);
            }
        }
        assert_eq!(
            open_fds(),
            fds_before,
            "{free} free: descriptors left in the host"
        );
    }
}

/// The pooled sandbox's processes: killed and reaped when the runtime
/// exits (no process left), and killed when the supervisor dies. As this
/// user, and as uid 65534 when run as root.
fn the_pooled_sandbox_ends_with_the_runtime(_: &Supervisor) {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for uid in [None].into_iter().chain(root.then_some(Some(65534))) {
        pooled_sandbox_lifetime(uid, false);
        pooled_sandbox_lifetime(uid, true);
    }
}

/// Starts `luring` on a script of tests/lua/sandboxed/fixtures (as `uid`
/// if given) and returns it with the first line it printed.
fn start_fixture_host(
    script: &str,
    uid: Option<u32>,
    stdin: std::process::Stdio,
) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/sandboxed/fixtures");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_luring"));
    command
        .arg(script)
        .current_dir(&dir)
        .stdin(stdin)
        .stdout(std::process::Stdio::piped());
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut host = command.spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(host.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (host, line)
}

fn pooled_sandbox_lifetime(uid: Option<u32>, kill_supervisor: bool) {
    use std::io::Write;
    let (mut host, line) =
        start_fixture_host("pool_then_wait.lua", uid, std::process::Stdio::piped());
    assert_eq!(line, "ready\n", "uid {uid:?}");
    let sup = match children(host.id() as i32)[..] {
        [sup] => sup,
        ref other => panic!("the host's one child is its supervisor: {other:?}"),
    };
    let (pid1, entry) = await_pool(sup);
    let what = format!("uid {uid:?}, supervisor {sup}, pooled PID 1 {pid1}, entry {entry}");
    let await_gone = |pids: &[i32], after: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while pids.iter().any(|p| runs(*p)) {
            assert!(
                std::time::Instant::now() < deadline,
                "{pids:?} still run 30 s after {after} ({what})"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    };
    if kill_supervisor {
        // SAFETY: plain kill of the host's supervisor (ours to kill).
        assert_eq!(unsafe { libc::kill(sup, libc::SIGKILL) }, 0);
        // Before the runtime is told to exit: the supervisor's death
        // alone ends the pooled sandbox.
        await_gone(&[pid1, entry], "its supervisor was killed");
    } else {
        host.stdin.take().unwrap().write_all(b"x").unwrap();
    }
    drop(host.stdin.take());
    let status = host.wait().unwrap();
    if !kill_supervisor {
        assert!(status.success(), "{what}: {status}");
        await_gone(&[pid1, entry, sup], "the runtime exited");
    }
}

fn hello(sv: &Supervisor) {
    let r = run(sv, "print('hello from a sandboxed ' .. _CONTEXT)");
    assert_eq!(
        r.stdout, "hello from a sandboxed worker\n",
        "stderr: {}",
        r.stderr
    );
    assert_eq!(r.status, ExitStatus::Exited(0));
}

/// `system.in_` reads the sandbox's stdin (a pipe granted at spawn, fd 0
/// and the ring's stdin slot): each chunk as the host writes it, then EOF
/// once the host closed its end. Without a stdin (`/dev/null`) the first
/// read is EOF. Fresh and pooled (the pooled VM gets the spawn's stdin
/// after it booted).
fn stdin_reaches_system_in(sv: &Supervisor) {
    use std::io::{BufRead, Write};
    // `system.out:write_some` is not buffered like `print`: the host sees
    // each line as soon as the chunk was read.
    const READ_ALL: &str = r#"
        local system = require 'system'
        local buf = byte_span.new(64)
        while true do
          local ok, n = pcall(system.in_.read_some, system.in_, buf)
          if not ok then system.out:write_some('ended: ' .. tostring(n) .. '\n') break end
          system.out:write_some('chunk: ' .. tostring(buf:slice(1, n)) .. '\n')
        end
    "#;
    let r = run(sv, READ_ALL);
    assert_eq!(r.stdout, "ended: End of file\n", "stderr: {}", r.stderr);
    assert_eq!(r.status, ExitStatus::Exited(0));

    let (in_r, in_w) = pipe();
    let (out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let spec = SandboxSpec {
        stdin: Stdio::Fd(in_r.into()),
        stdout: Stdio::Fd(out_w),
        stderr: Stdio::Fd(err_w),
        ..SandboxSpec::default()
    };
    let mut h = spawn_entry(sv, &spec);
    drop(spec);
    send_boot(h.control(), "stdin.lua", READ_ALL.as_bytes()).expect("boot");
    let mut lines = std::io::BufReader::new(out_r);
    let mut next_line = || {
        // (30 s at most: a sandbox that stopped reading fails the case.)
        let ready = if !lines.buffer().is_empty() {
            1
        } else {
            luring_sandbox::sys::poll_one(
                std::os::fd::AsRawFd::as_raw_fd(lines.get_ref()),
                libc::POLLIN,
                30_000,
            )
            .expect("poll")
        };
        assert_ne!(ready, 0, "no line from the sandbox in 30 s");
        let mut line = String::new();
        lines.read_line(&mut line).expect("read");
        line
    };
    let mut in_w = std::fs::File::from(in_w);
    for chunk in ["one", "two two", "three"] {
        in_w.write_all(chunk.as_bytes()).expect("write stdin");
        assert_eq!(next_line(), format!("chunk: {chunk}\n"));
    }
    drop(in_w);
    assert_eq!(next_line(), "ended: End of file\n");
    let status = h.wait_timeout(30_000).expect("wait").expect("ended");
    drop(h);
    let mut stderr = String::new();
    err_r.read_to_string(&mut stderr).unwrap();
    assert_eq!(status, ExitStatus::Exited(0), "stderr: {stderr}");
}

fn fibers_timers_and_stderr(sv: &Supervisor) {
    let src = r#"
        local time = require 'time'
        local order = {}
        local f = spawn(function() time.sleep(0.02) order[#order + 1] = 'late' end)
        spawn(function() order[#order + 1] = 'early' end)
        f:join()
        print(table.concat(order, ' '))
        local system = require 'system'
        system.err:write_some('to stderr\n')
        system.out:write_some('written\n')
    "#;
    let r = run(sv, src);
    assert_eq!(r.stdout, "early late\nwritten\n", "stderr: {}", r.stderr);
    assert_eq!(r.stderr, "to stderr\n");
    assert_eq!(r.status, ExitStatus::Exited(0));
}

fn exit_codes_and_errors(sv: &Supervisor) {
    let r = run(sv, "require('system').exit(7)");
    assert_eq!(r.status, ExitStatus::Exited(7), "stderr: {}", r.stderr);
    let r = run(sv, "error('boom')");
    assert_eq!(r.status, ExitStatus::Exited(1));
    assert!(
        r.stderr.contains("case.lua:1: boom"),
        "stderr: {}",
        r.stderr
    );
    let r = run(sv, "this is not lua");
    assert_eq!(r.status, ExitStatus::Exited(1));
    assert!(r.stderr.contains("case.lua:1:"), "stderr: {}", r.stderr);
}

fn safe_environment(sv: &Supervisor) {
    let src = r#"
        print(io, debug, package, dofile, loadfile, jit, string.dump)
        for _, id in ipairs({ 'ffi', 'io', 'debug', 'package' }) do
          local ok, e = pcall(require, id)
          print(id, ok)
        end
        print(load('\27LJ\2\10\0\255\255\255\255', 'x'))
        local ok, e = pcall(require, './neighbour')
        print('project module', ok, tostring(e))
        local ok, e = pcall(require, '/etc/passwd')
        print('host path', ok, tostring(e))
    "#;
    let leaf = run(sv, src);
    let leaf: Vec<&str> = leaf.stdout.lines().collect();
    assert!(
        leaf[6].contains("\tfalse\t") && leaf[6].contains("leaf module"),
        "{}",
        leaf[6]
    );
    let r = run_as(sv, "plugin/init.lua", src);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "nil\tnil\tnil\tnil\tnil\tnil\tnil");
    assert_eq!(
        &lines[1..5],
        ["ffi\tfalse", "io\tfalse", "debug\tfalse", "package\tfalse"]
    );
    assert!(
        lines[5].starts_with("nil\t") && lines[5].contains("binary"),
        "{}",
        lines[5]
    );
    for l in &lines[6..8] {
        assert!(
            l.contains("\tfalse\t") && l.contains("not permitted"),
            "{l}"
        );
    }
}

fn cannot_open_a_path_or_make_a_ring(sv: &Supervisor) {
    let src = r#"
        local file = require 'file'
        local f = file.stream.new()
        print('open', pcall(function() f:open('/etc/passwd', file.open_flag.read_only) end))
        print('open /', pcall(function() f:open('/', file.open_flag.read_only) end))
        print('spawn_vm', pcall(spawn_vm, '.'))
    "#;
    let r = run(sv, src);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    // The sandbox's root is empty, and Landlock refuses even that.
    assert_eq!(lines[0], "open\tfalse\tNo such file or directory");
    assert_eq!(lines[1], "open /\tfalse\tPermission denied");
    // Its ring is the only one it may have: no VM can be hosted beside it.
    assert_eq!(lines[2], "spawn_vm\tfalse\tOperation not supported");
}

/// The last datagram a sandbox wrote on its control socket before it
/// ended (the socket is drained without waiting).
fn last_datagram(h: &luring_sandbox::SandboxHandle) -> Option<Vec<u8>> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&h.control());
    let mut buf = vec![0u8; luring::ipc::MAX_FRAME_BYTES];
    let mut last = None;
    while luring_sandbox::sys::poll_one(fd, libc::POLLIN, 0).unwrap() & libc::POLLIN != 0 {
        let r = luring_sandbox::sys::recv_with_fds(fd, &mut buf, 0).unwrap();
        if r.len == 0 {
            break;
        }
        last = Some(buf[..r.len].to_vec());
    }
    last
}

/// A malformed boot message ends the sandbox: its runtime says why with
/// an end frame (`failed`) and exits [`sbx::EXIT_RUNTIME_END`].
fn bad_boot_messages_end_the_sandbox(sv: &Supervisor) {
    let (_out_r, out_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        ..SandboxSpec::default()
    };
    let failed = Some(Ok(luring::ipc::EndReason::Failed));
    let mut h = spawn_entry(sv, &spec);
    luring_sandbox::sys::send_with_fds(
        std::os::fd::AsRawFd::as_raw_fd(&h.control()),
        b"not a boot header at all",
        &[],
    )
    .unwrap();
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_RUNTIME_END));
    let end = last_datagram(&h).expect("an end frame");
    assert_eq!(luring::ipc::decode_end(&end), failed);
    // A datagram carrying a descriptor is refused too.
    let mut h = spawn_entry(sv, &spec);
    let (r, _w) = pipe();
    luring_sandbox::sys::send_with_fds(
        std::os::fd::AsRawFd::as_raw_fd(&h.control()),
        b"LRNGBT01",
        &[std::os::fd::AsRawFd::as_raw_fd(&r.as_fd())],
    )
    .unwrap();
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_RUNTIME_END));
    let end = last_datagram(&h).expect("an end frame");
    assert_eq!(luring::ipc::decode_end(&end), failed);
    // Malformed spawn options: the same.
    let mut h = sv.spawn(sbx::VM_ENTRY, &[1, 2, 3], &spec).expect("spawn");
    let status = h.wait_timeout(10_000).unwrap().expect("ends");
    assert_eq!(status, ExitStatus::Exited(sbx::EXIT_RUNTIME_END));
    let end = last_datagram(&h).expect("an end frame");
    assert_eq!(luring::ipc::decode_end(&end), failed);
}

/// Spawns `source` (stdout to a pipe) and sends it `frames` (raw packets),
/// then closes the host's sending side; returns what it printed.
fn run_with_frames(sv: &Supervisor, source: &str, frames: &[Vec<u8>]) -> Ran {
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        stderr: Stdio::Fd(err_w),
        ..SandboxSpec::default()
    };
    let mut h = spawn_entry(sv, &spec);
    drop(spec);
    send_boot(h.control(), "case.lua", source.as_bytes()).expect("boot");
    let control = std::os::fd::AsRawFd::as_raw_fd(&h.control());
    for f in frames {
        luring_sandbox::sys::send_with_fds(control, f, &[]).expect("send frame");
    }
    // SAFETY: shutdown on a socket the handle owns; no memory involved.
    assert_eq!(unsafe { libc::shutdown(control, libc::SHUT_WR) }, 0);
    let status = h.wait_timeout(10_000).unwrap().expect("ended within 10 s");
    drop(h);
    let mut stdout = String::new();
    out_r.read_to_string(&mut stdout).unwrap();
    let mut stderr = String::new();
    err_r.read_to_string(&mut stderr).unwrap();
    Ran {
        status,
        stdout,
        stderr,
    }
}

fn frame(msg: &luring::Message) -> Vec<u8> {
    luring::ipc::encode_message(msg, luring::ipc::FdPlacement::FixedSlots(&[]))
        .expect("encode")
        .bytes
}

const RECEIVE_ALL: &str = r#"
    local inbox = require 'inbox'
    while true do
      local ok, m = pcall(inbox.receive, inbox)
      if not ok then print('ended:', tostring(m)) break end
      if type(m) == 'table' then
        print('got table', m.greeting, m.n, #m.list, m.list[2], m.nested.deep)
      else
        print('got', m)
      end
    end
    print('again:', select(2, pcall(inbox.receive, inbox)))
"#;

/// RECEIVE_ALL with a pause after each message: the next frame is read
/// ahead while no fiber receives, and decoded by the receive that finds it
/// (`control_recv`, src/actor/sandboxed/inside.rs), not after a wait.
const RECEIVE_ALL_PAUSING: &str = r#"
    local inbox = require 'inbox'
    local time = require 'time'
    while true do
      local ok, m = pcall(inbox.receive, inbox)
      if not ok then print('ended:', tostring(m)) break end
      print('got', m)
      time.sleep(0.02)
    end
    print('again:', select(2, pcall(inbox.receive, inbox)))
"#;

fn messages_from_the_host_reach_the_inbox(sv: &Supervisor) {
    use luring::Message as M;
    let table = M::object([
        ("greeting", M::from("hello")),
        ("n", M::from(42.5)),
        ("list", M::array([M::from(true), M::from("two")])),
        ("nested", M::object([("deep", M::from("down"))])),
    ]);
    let r = run_with_frames(sv, RECEIVE_ALL, &[frame(&M::from("first")), frame(&table)]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout,
        "got\tfirst\ngot table\thello\t42.5\t2\ttwo\tdown\n\
         ended:\tBroadcast the address before attempting to receive on it\n\
         again:\tBroadcast the address before attempting to receive on it\n",
        "stderr: {}",
        r.stderr
    );
    // The same through the library's sender.
    let (mut out_r, out_w) = pipe();
    let spec = SandboxSpec {
        stdout: Stdio::Fd(out_w),
        ..SandboxSpec::default()
    };
    let mut h = spawn_entry(sv, &spec);
    drop(spec);
    send_boot(
        h.control(),
        "case.lua",
        b"print(require('inbox'):receive())",
    )
    .unwrap();
    sbx::send_message(h.control(), &M::from("via send_message")).unwrap();
    assert_eq!(h.wait_timeout(10_000).unwrap(), Some(ExitStatus::Exited(0)));
    drop(h);
    let mut out = String::new();
    out_r.read_to_string(&mut out).unwrap();
    assert_eq!(out, "via send_message\n");
}

fn a_malformed_frame_closes_the_inbox(sv: &Supervisor) {
    use luring::Message as M;
    let mut bad_version = frame(&M::from("x"));
    bad_version[4] = 99;
    let mut scm_mode = frame(&M::from("x"));
    scm_mode[5] = 0;
    for bad in [
        b"garbage that is no frame".to_vec(),
        bad_version,
        scm_mode,
        frame(&M::from("ok"))[..13].to_vec(),
    ] {
        // (decoded after a wait, and read ahead: decoded by the receive
        // that finds it)
        for script in [RECEIVE_ALL, RECEIVE_ALL_PAUSING] {
            let r = run_with_frames(
                sv,
                script,
                &[
                    frame(&M::from("before")),
                    bad.clone(),
                    frame(&M::from("after")),
                ],
            );
            assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
            assert_eq!(
                r.stdout, "got\tbefore\nended:\tChannel closed\nagain:\tChannel closed\n",
                "stderr: {}",
                r.stderr
            );
        }
    }
}

/// A frame whose value is `{ fd = <fd 0> }`, fd 0 said to be in `slot`.
fn frame_naming_slot(slot: u32) -> Vec<u8> {
    use luring::ipc::{encode, FdPlacement, Value};
    let value = Value::Object(
        [(b"fd".as_slice().into(), Value::Fd(0))]
            .into_iter()
            .collect(),
    );
    encode(&value, FdPlacement::FixedSlots(&[slot])).expect("encode")
}

const USE_FD: &str = r#"
    local inbox = require 'inbox'
    local pipe = require 'pipe'
    while true do
      local ok, m = pcall(inbox.receive, inbox)
      if not ok then print('ended:', tostring(m)) break end
      print('fd:', getmetatable(m.fd), pcall(function()
        local r = pipe.read_stream.new(m.fd)
        return r:read_some(byte_span.new(1))
      end))
    end
    print('stdout still works')
"#;

/// A frame naming slots the host never filled reaches nothing: an empty
/// slot of the host's range arrives as a file_descriptor that fails with
/// EBADF; a slot outside that range (the control socket, stdio, the
/// sandbox's own) or
/// outside the table is refused (the inbox closes) and left as it was.
fn forged_slots_reach_nothing(sv: &Supervisor) {
    let r = run_with_frames(sv, USE_FD, &[frame_naming_slot(40)]);
    assert_eq!(r.status, ExitStatus::Exited(0), "stderr: {}", r.stderr);
    assert_eq!(
        r.stdout,
        "fd:\tfile_descriptor\tfalse\tBad file descriptor\n\
         ended:\tBroadcast the address before attempting to receive on it\n\
         stdout still works\n",
        "stderr: {}",
        r.stderr
    );
    // 3: stdin; 4: the first of the sandbox's own.
    for slot in [0, 1, 2, 3, 4, 5, 31, 64, 1000] {
        let r = run_with_frames(sv, USE_FD, &[frame_naming_slot(slot)]);
        assert_eq!(
            r.status,
            ExitStatus::Exited(0),
            "slot {slot}; stderr: {}",
            r.stderr
        );
        assert_eq!(
            r.stdout, "ended:\tChannel closed\nstdout still works\n",
            "slot {slot}; stderr: {}",
            r.stderr
        );
    }
}

/// `0x…` ids renumbered by first appearance (as tests/lua_scripts.rs does).
fn renumber_hex(text: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("0x") {
        out.push_str(&rest[..i]);
        let digits: String = rest[i + 2..]
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        if digits.is_empty() {
            out.push_str("0x");
            rest = &rest[i + 2..];
            continue;
        }
        let n = match seen.iter().position(|d| *d == digits) {
            Some(n) => n + 1,
            None => {
                seen.push(digits.clone());
                seen.len()
            }
        };
        out.push_str(&format!("0x{n}"));
        rest = &rest[i + 2 + digits.len()..];
    }
    out.push_str(rest);
    out
}

/// The Lua scripts of tests/lua/sandboxed, run by an unprivileged user
/// (uid/gid 65534): same output as when root runs them. Skipped unless
/// this test runs as root (it must switch users).
fn lua_scripts_as_an_unprivileged_user(_: &Supervisor) {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: not root, cannot switch to an unprivileged user");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/sandboxed");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "lua") && p.with_extension("out").exists())
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5, "sandboxed scripts found: {scripts:?}");
    for script in scripts {
        // A `-- stdin: text` header (first line, as tests/lua_scripts.rs
        // reads it): that text on a pipe, else /dev/null.
        let stdin_text = std::fs::read_to_string(&script)
            .unwrap()
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-- stdin:"))
            .map(|v| v.trim_start().replace("\\n", "\n"));
        let (mut reader, writer) = std::io::pipe().unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_luring"))
            .arg(script.file_name().unwrap())
            .current_dir(&dir)
            .uid(65534)
            .gid(65534)
            .stdin(match stdin_text {
                Some(_) => std::process::Stdio::piped(),
                None => std::process::Stdio::null(),
            })
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .spawn()
            .unwrap();
        if let (Some(text), Some(mut stdin)) = (&stdin_text, child.stdin.take()) {
            use std::io::Write;
            stdin.write_all(text.as_bytes()).unwrap();
        }
        let mut output = String::new();
        reader.read_to_string(&mut output).unwrap();
        let status = child.wait().unwrap();
        let expected = std::fs::read_to_string(script.with_extension("out")).unwrap();
        assert_eq!(
            renumber_hex(&output),
            expected,
            "{} as uid 65534 ({status})",
            script.display()
        );
    }
}

/// The sandboxed VM runs on the entry's own thread only when that
/// thread's stack may grow as far as a VM thread's (`RLIMIT_STACK`, raised
/// up to its hard limit); under a hard limit of 8 MiB it gets a thread of
/// its own, and deep recursion through C and Lua still ends as a catchable
/// error, with the same output as tests/lua/sandboxed/stack_depth.out.
fn deep_recursion_under_a_low_hard_stack_limit(_: &Supervisor) {
    use std::os::unix::process::CommandExt;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lua/sandboxed");
    for limit in [8u64 << 20, 64 << 20] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_luring"));
        cmd.arg("stack_depth.lua").current_dir(&dir);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
        // child before exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                if libc::setrlimit(libc::RLIMIT_STACK, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let expected = std::fs::read_to_string(dir.join("stack_depth.out")).unwrap();
        assert!(out.status.success(), "stack limit {limit}: {:?}", out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr),
            expected,
            "stack limit {limit}"
        );
    }
}

/// Whether `pid` runs (a zombie counts as ended).
fn runs(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rfind(')')
            .is_some_and(|i| !stat[i + 1..].trim_start().starts_with('Z')),
    }
}

/// A detached sandbox outlives the VM that spawned it, never the process:
/// killing the host (SIGKILL, no clean-up at all) ends it through the
/// supervisor's death. As this user, and as uid 65534 when run as root.
fn a_detached_sandbox_dies_with_the_host(_: &Supervisor) {
    detached_sandbox_dies_with_host_as(None);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        detached_sandbox_dies_with_host_as(Some(65534));
    }
}

fn detached_sandbox_dies_with_host_as(uid: Option<u32>) {
    let (mut host, line) =
        start_fixture_host("detached_forever.lua", uid, std::process::Stdio::null());
    let pid: i32 = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("a PID, got {line:?}"));
    assert!(
        runs(pid),
        "the detached sandbox {pid} should run (uid {uid:?})"
    );
    assert!(
        host.try_wait().unwrap().is_none(),
        "the host should wait for its detached sandbox"
    );
    host.kill().unwrap();
    host.wait().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while runs(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "the detached sandbox {pid} still runs 30 s after its host died"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn main() {
    if let Some(problem) = Supervisor::user_namespace_problem() {
        println!("skipped: this system refuses user namespaces ({problem})");
        return;
    }
    luring::start_supervisor().expect("supervisor");
    let sv = sbx::supervisor().expect("supervisor");
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let cases: &[(&str, Case)] = &[
        ("hello", hello),
        ("fibers_timers_and_stderr", fibers_timers_and_stderr),
        ("exit_codes_and_errors", exit_codes_and_errors),
        ("safe_environment", safe_environment),
        (
            "cannot_open_a_path_or_make_a_ring",
            cannot_open_a_path_or_make_a_ring,
        ),
        (
            "bad_boot_messages_end_the_sandbox",
            bad_boot_messages_end_the_sandbox,
        ),
        (
            "messages_from_the_host_reach_the_inbox",
            messages_from_the_host_reach_the_inbox,
        ),
        (
            "a_malformed_frame_closes_the_inbox",
            a_malformed_frame_closes_the_inbox,
        ),
        ("forged_slots_reach_nothing", forged_slots_reach_nothing),
        ("stdin_reaches_system_in", stdin_reaches_system_in),
        (
            "a_detached_sandbox_dies_with_the_host",
            a_detached_sandbox_dies_with_the_host,
        ),
        (
            "deep_recursion_under_a_low_hard_stack_limit",
            deep_recursion_under_a_low_hard_stack_limit,
        ),
    ];
    let unprivileged: (&str, Case) = (
        "lua_scripts_as_an_unprivileged_user",
        lua_scripts_as_an_unprivileged_user,
    );
    let pool: &[(&str, Case)] = &[
        (
            "the_pool_hands_each_sandbox_to_one_spawn",
            the_pool_hands_each_sandbox_to_one_spawn,
        ),
        (
            "a_pooled_sandbox_holds_what_a_fresh_one_holds",
            a_pooled_sandbox_holds_what_a_fresh_one_holds,
        ),
        (
            "a_directory_stream_never_takes_the_pooled_sandbox",
            a_directory_stream_never_takes_the_pooled_sandbox,
        ),
        (
            "a_dead_pooled_sandbox_is_not_handed_out",
            a_dead_pooled_sandbox_is_not_handed_out,
        ),
        (
            "the_pooled_sandbox_ends_with_the_runtime",
            the_pooled_sandbox_ends_with_the_runtime,
        ),
        (
            "a_claimed_sandbox_serves_exactly_one_spawn",
            a_claimed_sandbox_serves_exactly_one_spawn,
        ),
        (
            "a_spawn_that_asks_first_takes_the_offer",
            a_spawn_that_asks_first_takes_the_offer,
        ),
        (
            "an_inherited_stream_never_takes_the_offer",
            an_inherited_stream_never_takes_the_offer,
        ),
        (
            "a_dead_claimed_sandbox_is_discarded",
            a_dead_claimed_sandbox_is_discarded,
        ),
        (
            "a_claim_at_the_descriptor_limit_is_discarded",
            a_claim_at_the_descriptor_limit_is_discarded,
        ),
    ];
    // The cases that spawn with the pool's spec, again on pooled
    // sandboxes (each awaits the one the supervisor made ahead): a
    // pre-booted VM behaves as a fresh one, escapes included.
    let pooled: &[(&str, Case)] = &cases[..10];
    let mut failed = 0;
    let runs = cases
        .iter()
        .chain([&unprivileged])
        .chain(pool)
        .map(|(name, case)| (name.to_string(), *case, false))
        .chain(
            pooled
                .iter()
                .map(|(name, case)| (format!("{name} (pooled)"), *case, true)),
        );
    for (name, case, in_pool) in runs {
        if filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        POOLED.store(in_pool, std::sync::atomic::Ordering::SeqCst);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(sv))) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
