//! Raw system calls: the only module with most of the crate's `unsafe`.
//!
//! Invariants:
//! - Every wrapper returns `io::Result` (or the errno) and never panics.
//! - Wrappers that are safe to call from a process created by `clone3`
//!   without `CLONE_VM` (the sandbox child) do not allocate unless noted:
//!   the child is a copy of the single-threaded supervisor, so allocation is
//!   in fact fine there, but the lock-down path keeps to plain syscalls.
//! - Owned descriptors are returned as `OwnedFd`; borrowed ones are taken as
//!   `BorrowedFd` or `RawFd` where the caller already owns them.

use std::ffi::CStr;
use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Converts a `-1`-on-error return value into `io::Result`.
fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Result of `clone3` as seen by the caller.
pub enum Cloned {
    /// In the parent: the child's pid (in the parent's PID namespace) and pidfd.
    Parent { pid: i32, pidfd: OwnedFd },
    /// In the child.
    Child,
}

/// `clone3` without `CLONE_VM`: fork-like semantics (the child runs on a
/// copy of the caller's stack), plus `CLONE_PIDFD` and the given namespace
/// flags.
///
/// # Safety
/// The caller must be single-threaded (the child gets a copy of only the
/// calling thread) and the child must leave with `_exit`, never return
/// into code that assumes it is the parent. glibc's cached thread id is
/// stale in the child: it must not use `raise`/`pthread_kill`.
pub unsafe fn clone3(ns_flags: u64) -> io::Result<Cloned> {
    let mut pidfd: RawFd = -1;
    // SAFETY: clone_args is plain data; all-zero is a valid value.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = ns_flags | libc::CLONE_PIDFD as u64;
    args.pidfd = &mut pidfd as *mut RawFd as u64;
    args.exit_signal = libc::SIGCHLD as u64;
    // SAFETY: args is a valid clone_args of the size we pass; stack 0 and no
    // CLONE_VM give fork semantics; the caller upholds single-threadedness.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            size_of::<libc::clone_args>(),
        )
    };
    let pid = cvt(ret)?;
    if pid == 0 {
        return Ok(Cloned::Child);
    }
    // SAFETY: CLONE_PIDFD made the kernel store a new descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok(Cloned::Parent {
        pid: pid as i32,
        pidfd,
    })
}

/// Plain `fork` via the raw syscall (no atfork handlers).
///
/// # Safety
/// Same as [`clone3`].
pub unsafe fn fork_raw() -> io::Result<i32> {
    // SAFETY: fork semantics; caller is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    cvt(ret).map(|p| p as i32)
}

pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Duplicates descriptor `target_fd` of the process behind `pidfd` into ours.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, target_fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target_fd, 0) })?;
    // SAFETY: the kernel returned a new (close-on-exec) descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall; a null siginfo means "as kill(2)".
    cvt(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// How a waited-for process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
}

/// `waitid(P_PIDFD, ..., WEXITED | extra)`. Returns `None` if `WNOHANG` was
/// given and the child has not exited.
pub fn waitid_pidfd(pidfd: BorrowedFd<'_>, extra: i32) -> io::Result<Option<WaitStatus>> {
    waitid_raw(libc::P_PIDFD, pidfd.as_raw_fd() as libc::id_t, extra).map(|o| o.map(|(_, s)| s))
}

/// `waitid(idtype, id, WEXITED | extra)`; returns the pid and status.
pub fn waitid_raw(
    idtype: libc::idtype_t,
    id: libc::id_t,
    extra: i32,
) -> io::Result<Option<(i32, WaitStatus)>> {
    let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: info points to writable siginfo_t storage.
    let ret = unsafe { libc::waitid(idtype, id, info.as_mut_ptr(), libc::WEXITED | extra) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised and possibly filled in by the kernel.
    let info = unsafe { info.assume_init() };
    // SAFETY: the accessors read union fields valid for SIGCHLD siginfo.
    let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
    if pid == 0 {
        return Ok(None);
    }
    let st = if info.si_code == libc::CLD_EXITED {
        WaitStatus::Exited(status)
    } else {
        WaitStatus::Signaled(status)
    };
    Ok(Some((pid, st)))
}

/// Closes every descriptor `>= first`.
pub fn close_range_from(first: u32) -> io::Result<()> {
    // SAFETY: plain syscall; closing descriptors we do not reference later.
    cvt(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) }).map(drop)
}

/// Closes every descriptor except those in `keep` (which must be sorted and
/// deduplicated).
pub fn close_all_except(keep: &[RawFd]) -> io::Result<()> {
    let mut next: u32 = 0;
    for &k in keep {
        let k = k as u32;
        if k > next {
            // SAFETY: plain syscall on a range of descriptors we drop.
            cvt(unsafe { libc::syscall(libc::SYS_close_range, next, k - 1, 0) })?;
        }
        next = k + 1;
    }
    close_range_from(next)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> io::Result<()> {
    // SAFETY: both are valid NUL-terminated strings.
    cvt(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })
        .map(drop)
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(2)` (Linux 5.12): sets mount attributes without touching
/// the ones locked by a less privileged namespace.
pub fn mount_setattr(path: &CStr, set: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: path is NUL-terminated; attr is a valid mount_attr of that size.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: libc::c_ulong,
    data: Option<&CStr>,
) -> io::Result<()> {
    let p = |c: Option<&CStr>| c.map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: all pointers are null or NUL-terminated strings.
    let ret = unsafe {
        libc::mount(
            p(src),
            target.as_ptr(),
            p(fstype),
            flags,
            p(data) as *const libc::c_void,
        )
    };
    cvt(ret as libc::c_long).map(drop)
}

pub fn umount2(target: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: target is NUL-terminated.
    cvt(unsafe { libc::umount2(target.as_ptr(), flags) } as libc::c_long).map(drop)
}

pub fn prctl(option: i32, a2: libc::c_ulong, a3: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: prctl options used in this crate take integer arguments only.
    cvt(
        unsafe { libc::prctl(option, a2, a3, 0 as libc::c_ulong, 0 as libc::c_ulong) }
            as libc::c_long,
    )
    .map(|r| r as i32)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Clears the effective, permitted and inheritable capability sets.
pub fn capset_clear() -> io::Result<()> {
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and two data words as capset(2) v3 expects.
    cvt(unsafe { libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) })
        .map(drop)
}

/// Returns (effective, permitted, inheritable) as 64-bit masks.
pub fn capget_self() -> io::Result<(u64, u64, u64)> {
    let hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and two writable data words as capget(2) v3 expects.
    cvt(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &hdr as *const CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    let join = |f: fn(&CapData) -> u32| (f(&data[1]) as u64) << 32 | f(&data[0]) as u64;
    Ok((
        join(|d| d.effective),
        join(|d| d.permitted),
        join(|d| d.inheritable),
    ))
}

pub fn socketpair_seqpacket() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: fds is a writable array of two ints.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    cvt(ret as libc::c_long)?;
    // SAFETY: the kernel returned two new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: fds is a writable array of two ints.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } as libc::c_long)?;
    // SAFETY: the kernel returned two new descriptors we own.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `read(2)` retrying on EINTR.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is writable for its length.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `write(2)` of the whole buffer, retrying on EINTR / short writes.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is readable for its length.
        let r = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[r as usize..];
    }
    Ok(())
}

/// `poll(2)` on one descriptor; returns revents (0 on timeout).
pub fn poll_one(fd: RawFd, events: i16, timeout_ms: i32) -> io::Result<i16> {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut p, 1, timeout_ms) };
        if r >= 0 {
            return Ok(if r == 0 { 0 } else { p.revents });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Looks (`poll` with no timeout, yielding the core between looks) until
/// `fd` is readable or `until` passed; true when readable. For a wait
/// whose answer is expected within a fraction of a millisecond: a thread
/// that sleeps instead pays its wake-up, about 0.1 ms on a VM whose vCPU
/// went idle meanwhile. Gives up early when a yield gave the core away
/// for long (a busy machine: watching on would keep the peer from
/// running). Errors count as readable (the read that follows reports
/// them).
pub fn watch_readable(fd: RawFd, until: std::time::Instant) -> bool {
    const BUSY_GAP: std::time::Duration = std::time::Duration::from_micros(30);
    loop {
        if !matches!(poll_one(fd, libc::POLLIN, 0), Ok(0)) {
            return true;
        }
        let before = std::time::Instant::now();
        if before >= until {
            return false;
        }
        std::thread::yield_now();
        if before.elapsed() > BUSY_GAP {
            return false;
        }
    }
}

/// `poll(2)` on many descriptors.
pub fn poll_many(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    loop {
        // SAFETY: fds is a valid slice of pollfd.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Maximum descriptors carried by one message (both directions).
pub const MAX_FDS: usize = 64;

/// Sends one datagram with optional `SCM_RIGHTS` descriptors.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    assert!(fds.len() <= MAX_FDS);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    // 8-byte aligned control buffer large enough for MAX_FDS descriptors.
    let mut cbuf = [0u64; (MAX_FDS * 4 + 64) / 8];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(bytes) } as usize;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points to `space` writable, aligned bytes, so the
        // first header and its data fit.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr(),
                libc::CMSG_DATA(cmsg) as *mut RawFd,
                fds.len(),
            );
        }
    }
    loop {
        // SAFETY: msg describes valid buffers for the duration of the call.
        let r = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if r >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// One received datagram.
pub struct Received {
    pub len: usize,
    /// Descriptors from every `SCM_RIGHTS` message, in order.
    pub fds: Vec<OwnedFd>,
    /// Number of control messages seen (of any type).
    pub cmsg_count: usize,
    /// A control message that was not `SCM_RIGHTS` was present.
    pub foreign_cmsg: bool,
    /// The datagram or its control data was truncated.
    pub truncated: bool,
}

/// Receives one datagram; every descriptor that arrives is owned by the
/// result (and so closed unless the caller keeps it).
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8], flags: i32) -> io::Result<Received> {
    // SAFETY: the same bytes seen as possibly uninitialised; only the
    // kernel writes them, and only with initialised bytes.
    let buf = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
    recv_with_fds_uninit(sock, buf, flags)
}

/// [`recv_with_fds`] into memory that need not be initialised (nor its
/// pages touched): the first `len` bytes of `buf` are initialised when
/// it returns.
pub fn recv_with_fds_uninit(
    sock: RawFd,
    buf: &mut [std::mem::MaybeUninit<u8>],
    flags: i32,
) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; (MAX_FDS * 4 + 256) / 8];
    // SAFETY: msghdr is plain data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    let n = loop {
        // SAFETY: msg describes valid writable buffers.
        let r = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC | flags) };
        if r >= 0 {
            break r as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    };
    let mut out = Received {
        len: n,
        fds: Vec::new(),
        cmsg_count: 0,
        foreign_cmsg: false,
        truncated: msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0,
    };
    // SAFETY: walking the control buffer the kernel filled, with the libc
    // macros that bound every header by msg_controllen.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            out.cmsg_count += 1;
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let len = (*cmsg).cmsg_len - (data as usize - cmsg as usize);
                let count = len / size_of::<RawFd>();
                for i in 0..count {
                    let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                    out.fds.push(OwnedFd::from_raw_fd(fd));
                }
            } else {
                out.foreign_cmsg = true;
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(out)
}

/// Sets `fd`'s `O_NONBLOCK` flag.
pub fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments.
    let fl = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) } as libc::c_long)? as i32;
    let fl = if on {
        fl | libc::O_NONBLOCK
    } else {
        fl & !libc::O_NONBLOCK
    };
    // SAFETY: fcntl with integer arguments.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, fl) } as libc::c_long).map(drop)
}

/// Clears the close-on-exec flag (descriptors a sandbox keeps are plain).
pub fn dup_to(fd: RawFd, target: RawFd) -> io::Result<()> {
    if fd == target {
        // SAFETY: fcntl with integer arguments.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } as libc::c_long)?;
        return Ok(());
    }
    // SAFETY: dup2 with integer arguments; target is replaced on purpose.
    cvt(unsafe { libc::dup2(fd, target) } as libc::c_long).map(drop)
}

pub fn setrlimit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    setrlimit_soft_hard(resource, value, value)
}

/// `setrlimit` with distinct soft and hard limits.
pub fn setrlimit_soft_hard(
    resource: libc::__rlimit_resource_t,
    soft: u64,
    hard: u64,
) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: lim is a valid rlimit.
    cvt(unsafe { libc::setrlimit(resource, &lim) } as libc::c_long).map(drop)
}

/// Exits the calling process immediately (no destructors, no atexit).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// Anonymous shared mapping of one page, kept for the process lifetime.
pub fn shared_page() -> io::Result<*mut u64> {
    // SAFETY: anonymous mapping; no existing memory is affected.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    Ok(p.cast())
}

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket syscall.
    let s = cvt(
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) }
            as libc::c_long,
    )? as RawFd;
    // SAFETY: s is a new descriptor we own.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, c) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *c as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into a valid ifreq.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } as libc::c_long)?;
    // SAFETY: the flags member of the union was just filled in.
    unsafe { ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    cvt(unsafe { libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } as libc::c_long).map(drop)
}

/// Number of threads of the calling process, from `/proc/self/status`
/// (an error if it cannot be read or has no `Threads:` line).
pub fn thread_count() -> io::Result<usize> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Threads: line"))
}

/// Device and inode of the file behind `fd` (each io_uring instance has an
/// inode of its own): identifies a file across processes.
pub fn file_identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st points to writable stat storage.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstat succeeded and filled it in.
    let st = unsafe { st.assume_init() };
    Ok((st.st_dev, st.st_ino))
}

/// `fstat(2)` of a descriptor.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st is writable storage of the right size.
    cvt(unsafe { libc::fstat(fd, st.as_mut_ptr()) } as libc::c_long)?;
    // SAFETY: fstat succeeded, so st is initialised.
    Ok(unsafe { st.assume_init() })
}

/// Whether `st` describes a directory.
pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// The file status flags of a descriptor (`F_GETFL`).
pub fn status_flags(fd: RawFd) -> io::Result<i32> {
    // SAFETY: fcntl with integer arguments.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) } as libc::c_long).map(|f| f as i32)
}

/// `open(2)` of a path, close-on-exec, as an owned descriptor.
pub fn open_path(path: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: path is NUL-terminated; the mode is ignored without O_CREAT.
    let fd = cvt(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0) } as libc::c_long)?;
    // SAFETY: open returned a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The path a descriptor names, as `/proc/self/fd/N` shows it (relative to
/// the caller's mount namespace root; " (deleted)" appended if unlinked).
pub fn fd_path(fd: RawFd) -> io::Result<Vec<u8>> {
    let link = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).expect("no NUL");
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: link is NUL-terminated; buf is writable for its length.
    let n = cvt(
        unsafe { libc::readlink(link.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
            as libc::c_long,
    )? as usize;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn watch_readable_sees_data_a_hang_up_or_the_deadline() {
        let (a, b) = socketpair_seqpacket().unwrap();
        // Nothing to read: false (at the deadline, or earlier on a busy
        // machine).
        assert!(!watch_readable(
            a.as_raw_fd(),
            Instant::now() + Duration::from_millis(2)
        ));
        // A datagram sent from another thread while it watches (it may
        // give up early on a busy machine: the data is there after the
        // join in any case).
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            send_with_fds(b.as_raw_fd(), b"x", &[]).unwrap();
            b
        });
        watch_readable(a.as_raw_fd(), Instant::now() + Duration::from_secs(30));
        let b = sender.join().unwrap();
        assert!(watch_readable(
            a.as_raw_fd(),
            Instant::now() + Duration::from_secs(30)
        ));
        let mut buf = [0u8; 4];
        assert_eq!(recv_with_fds(a.as_raw_fd(), &mut buf, 0).unwrap().len, 1);
        // The peer gone: readable (the read reports it).
        drop(b);
        assert!(watch_readable(
            a.as_raw_fd(),
            Instant::now() + Duration::from_secs(30)
        ));
    }
}
