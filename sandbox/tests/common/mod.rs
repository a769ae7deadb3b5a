//! Shared harness of the sandbox's integration tests (harness = false).
//!
//! Each suite runs twice: as root and as a throwaway unprivileged user
//! (uid/gid 61000), each time in a forked child of the test binary that
//! starts its own supervisor (before any thread exists), so that the code
//! under test is exactly what an unprivileged host would run.
#![allow(dead_code)]

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub const UNPRIVILEGED: u32 = 61000;
/// The unprivileged user's one supplementary group (like `docker`): the
/// escape battery proves a root:61001 0660 socket stays out of reach.
pub const SUPPLEMENTARY_GID: u32 = 61001;

/// Results of one suite run.
#[derive(Default)]
pub struct Tally {
    pub passed: u32,
    pub failed: u32,
    pub user: String,
}

impl Tally {
    pub fn check(&mut self, name: &str, ok: bool, detail: &str) {
        if ok {
            self.passed += 1;
            println!("ok   [{}] {name}: {detail}", self.user);
        } else {
            self.failed += 1;
            println!("FAIL [{}] {name}: {detail}", self.user);
        }
        let _ = std::io::stdout().flush();
    }
}

/// Runs `suite` as root and as uid 61000 in forked children; prints the
/// closing line and returns the exit code.
pub fn run_as_users(suite: fn(&mut Tally)) -> i32 {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut users: Vec<Option<u32>> = vec![None];
    if root {
        users.push(Some(UNPRIVILEGED));
    } else {
        println!("note: not root; running the suite as uid {} only", unsafe {
            libc::geteuid()
        });
    }
    let (mut passed, mut failed) = (0, 0);
    for user in users {
        let (p, f) = run_forked(user, suite);
        passed += p;
        failed += f;
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        0
    } else {
        1
    }
}

fn run_forked(user: Option<u32>, suite: fn(&mut Tally)) -> (u32, u32) {
    let mut fds = [0; 2];
    // SAFETY: fds is writable.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the pipe ends are new descriptors we own.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let _ = std::io::stdout().flush();
    // SAFETY: the test binary is single-threaded here (harness = false).
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        drop(r);
        let mut t = Tally {
            user: "root".into(),
            ..Default::default()
        };
        if let Some(uid) = user {
            become_user(uid);
            t.user = format!("uid {uid}");
        } else {
            // SAFETY: geteuid has no preconditions.
            t.user = format!("uid {}", unsafe { libc::geteuid() });
            if t.user == "uid 0" {
                t.user = "root".into();
            }
        }
        suite(&mut t);
        let mut out = [0u8; 8];
        out[..4].copy_from_slice(&t.passed.to_le_bytes());
        out[4..].copy_from_slice(&t.failed.to_le_bytes());
        // SAFETY: writing 8 bytes from a valid buffer.
        unsafe { libc::write(w.as_raw_fd(), out.as_ptr().cast(), 8) };
        let _ = std::io::stdout().flush();
        // SAFETY: leave without running the parent's exit handlers twice.
        unsafe { libc::_exit(0) };
    }
    drop(w);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let mut buf = [0u8; 8];
    // SAFETY: reading into a valid buffer.
    let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    if n != 8 {
        println!("FAIL suite process for {user:?} died (status {status:#x})");
        return (0, 1);
    }
    (
        u32::from_le_bytes(buf[..4].try_into().unwrap()),
        u32::from_le_bytes(buf[4..].try_into().unwrap()),
    )
}

/// Drops to uid/gid `uid` with one supplementary group
/// ([`SUPPLEMENTARY_GID`]), staying dumpable (a
/// setuid transition clears it, which would hide /proc/PID/uid_map of our
/// own children from us; an ordinary unprivileged user is dumpable).
pub fn become_user(uid: u32) {
    // SAFETY: plain credential syscalls on the calling process.
    unsafe {
        let groups = [SUPPLEMENTARY_GID];
        assert_eq!(libc::setgroups(1, groups.as_ptr()), 0, "setgroups");
        assert_eq!(libc::setresgid(uid, uid, uid), 0, "setresgid");
        assert_eq!(libc::setresuid(uid, uid, uid), 0, "setresuid");
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
}

/// Sends one datagram on a SEQPACKET socket.
pub fn send(fd: i32, data: &[u8]) -> bool {
    // SAFETY: valid buffer.
    unsafe {
        libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) == data.len() as isize
    }
}

/// Receives one datagram (blocking).
pub fn recv(fd: i32) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid buffer.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// Receives one datagram if one is queued.
pub fn try_recv(fd: i32) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    // SAFETY: valid buffer.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n <= 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub fn errname(e: i32) -> String {
    let n = match e {
        0 => "success",
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EINVAL => "EINVAL",
        libc::ENOTTY => "ENOTTY",
        libc::EROFS => "EROFS",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ETIME => "ETIME",
        libc::ETXTBSY => "ETXTBSY",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENXIO => "ENXIO",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EISDIR => "EISDIR",
        libc::ENOMEM => "ENOMEM",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        _ => return format!("errno {e}"),
    };
    n.to_string()
}
