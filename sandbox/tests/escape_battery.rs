//! The escape battery of SECURITY.md (cases 1–21, 23–27; case 22 is the Lua
//! runtime's): a probe entry point inside the sandbox attempts each attack
//! and reports what happened; the host asserts the safe outcome. Each probe
//! also proves a positive control (a granted path, fd or ring slot works).
//! Runs as root and as uid 61000.

mod common;

use common::{errname, errno, recv, send, try_recv, Tally};
use luring_sandbox::io_uring::{opcode, squeue, types, IoUring};
use luring_sandbox::*;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the probe is told (newline-separated): case, supervisor pid,
/// sibling pid, abstract socket name, ro dir, rw dir, the fixture directory
/// (which holds ro and rw) and the names of the host's sockets in it, and
/// whether the host is root.
struct Info {
    case: u32,
    sup_pid: i32,
    sibling_pid: i32,
    abstract_name: String,
    ro: String,
    rw: String,
    fixture: String,
    /// A stream listener of the host user's own.
    sock_name: String,
    /// A datagram socket of the host user's own.
    dgram_name: String,
    /// A stream listener owned by root:61001, mode 0660 (docker.sock-like).
    docker_name: String,
    host_root: bool,
}

impl Info {
    fn encode(&self) -> Vec<u8> {
        [
            self.case.to_string(),
            self.sup_pid.to_string(),
            self.sibling_pid.to_string(),
            self.abstract_name.clone(),
            self.ro.clone(),
            self.rw.clone(),
            self.fixture.clone(),
            self.sock_name.clone(),
            self.dgram_name.clone(),
            self.docker_name.clone(),
            (self.host_root as u8).to_string(),
        ]
        .join("\n")
        .into_bytes()
    }
    fn decode(b: &[u8]) -> Info {
        let s = String::from_utf8_lossy(b);
        let v: Vec<&str> = s.split('\n').collect();
        Info {
            case: v[0].parse().unwrap(),
            sup_pid: v[1].parse().unwrap(),
            sibling_pid: v[2].parse().unwrap(),
            abstract_name: v[3].into(),
            ro: v[4].into(),
            rw: v[5].into(),
            fixture: v[6].into(),
            sock_name: v[7].into(),
            dgram_name: v[8].into(),
            docker_name: v[9].into(),
            host_root: v[10] == "1",
        }
    }
}

/// Findings of one probe run.
#[derive(Default)]
struct Probe {
    fails: Vec<String>,
    notes: Vec<String>,
}

impl Probe {
    /// Records that an attempt was denied with exactly one of `want` (the
    /// battery never accepts "some error").
    fn denied_with(&mut self, what: &str, r: Result<i64, i32>, want: &[i32]) {
        match r {
            Ok(v) => self.fails.push(format!("{what}: SUCCEEDED ({v})")),
            Err(e) if want.contains(&e) => self.notes.push(format!("{what}: {}", errname(e))),
            Err(e) => self
                .fails
                .push(format!("{what}: unexpected {}", errname(e))),
        }
    }
    /// A positive check of a call that sets errno when it fails.
    fn worked(&mut self, what: &str, cond: bool) {
        if cond {
            self.notes.push(format!("{what}: ok"));
        } else {
            self.fails.push(format!("{what}: {}", errname(errno())));
        }
    }
    fn ok(&mut self, what: &str, cond: bool, detail: String) {
        if cond {
            self.notes.push(format!("{what}: {detail}"));
        } else {
            self.fails.push(format!("{what}: {detail}"));
        }
    }
}

fn sys(r: i64) -> Result<i64, i32> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r)
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn open(path: &str, flags: i32) -> Result<i64, i32> {
    let p = c(path);
    // SAFETY: valid NUL-terminated path.
    let r = sys(unsafe { libc::open(p.as_ptr(), flags | libc::O_CLOEXEC, 0o644) } as i64);
    if let Ok(fd) = r {
        // SAFETY: closing the descriptor we just opened.
        unsafe { libc::close(fd as i32) };
    }
    r
}

fn openat(dir: i32, path: &str, flags: i32) -> Result<i64, i32> {
    let p = c(path);
    // SAFETY: valid NUL-terminated path.
    let r = sys(unsafe { libc::openat(dir, p.as_ptr(), flags | libc::O_CLOEXEC, 0o644) } as i64);
    if let Ok(fd) = r {
        // SAFETY: closing the descriptor we just opened.
        unsafe { libc::close(fd as i32) };
    }
    r
}

/// openat that keeps the descriptor (the caller closes it).
fn openat_keep(dir: i32, path: &str, flags: i32, mode: u32) -> Result<i64, i32> {
    let p = c(path);
    // SAFETY: valid NUL-terminated path.
    sys(unsafe { libc::openat(dir, p.as_ptr(), flags | libc::O_CLOEXEC, mode) } as i64)
}

fn stat_at(dir: i32, path: &str) -> Result<libc::stat, i32> {
    let p = c(path);
    // SAFETY: st is plain data written by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and stat buffer.
    sys(unsafe { libc::fstatat(dir, p.as_ptr(), &mut st, 0) } as i64).map(|_| st)
}

fn ino(st: &Result<libc::stat, i32>) -> Result<(u64, u64), String> {
    st.as_ref()
        .map(|s| (s.st_dev, s.st_ino))
        .map_err(|e| errname(*e))
}

fn same_file(a: &Result<libc::stat, i32>, b: &Result<libc::stat, i32>) -> bool {
    matches!((ino(a), ino(b)), (Ok(x), Ok(y)) if x == y)
}

fn access_at(dir: i32, path: &str) -> Result<i64, i32> {
    let p = c(path);
    // SAFETY: valid path.
    sys(unsafe { libc::faccessat(dir, p.as_ptr(), libc::F_OK, 0) } as i64)
}

fn read_file(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn ring_op(ring: &mut IoUring, e: squeue::Entry) -> i32 {
    // SAFETY: entries reference buffers that outlive the wait below.
    unsafe { ring.submission().push(&e).expect("sq full") };
    ring.submit_and_wait(1).expect("submit");
    let cqe = ring.completion().next().expect("cqe");
    cqe.result()
}

fn fixed_flags() -> squeue::Flags {
    squeue::Flags::FIXED_FILE
}

/// A pathname (or, with a leading NUL, abstract) unix socket address and
/// its length.
fn unix_addr(path: &[u8]) -> (libc::sockaddr_un, u32) {
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + path.len()) as u32;
    (addr, len)
}

/// Runs `op` on a new unix socket of `kind` and the address of `path`,
/// then closes the socket.
fn with_unix_socket(
    kind: i32,
    path: &[u8],
    op: impl FnOnce(i32, *const libc::sockaddr, u32) -> i64,
) -> Result<i64, i32> {
    // SAFETY: socket with integer arguments.
    let s = unsafe { libc::socket(libc::AF_UNIX, kind | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(errno());
    }
    let (addr, len) = unix_addr(path);
    let r = sys(op(s, &addr as *const _ as *const libc::sockaddr, len));
    // SAFETY: closing our socket.
    unsafe { libc::close(s) };
    r
}

fn connect_unix(path: &[u8]) -> Result<i64, i32> {
    with_unix_socket(libc::SOCK_STREAM, path, |s, addr, len| {
        // SAFETY: addr points to a valid sockaddr_un of `len` bytes.
        unsafe { libc::connect(s, addr, len) as i64 }
    })
}

/// Sends one datagram to a pathname unix socket.
fn sendto_unix(path: &[u8]) -> Result<i64, i32> {
    with_unix_socket(libc::SOCK_DGRAM, path, |s, addr, len| {
        // SAFETY: addr points to a valid sockaddr_un of `len` bytes; the
        // payload is a live 7-byte literal.
        unsafe { libc::sendto(s, b"escaped".as_ptr().cast(), 7, 0, addr, len) as i64 }
    })
}

/// Runs `f` in a forked child and returns how it ended (wait status).
fn in_child(f: impl FnOnce()) -> i32 {
    // SAFETY: the probe is single-threaded here.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        f();
        // SAFETY: leave the child.
        unsafe { libc::_exit(0) };
    }
    let mut st = 0;
    // SAFETY: waiting for our child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    st
}

fn probe(mut ctx: EntryContext) -> i32 {
    let info = Info::decode(&ctx.arg);
    let ctl = ctx.control.as_raw_fd();
    // Wait for the host's go (it may first install a capability).
    let go = recv(ctl);
    let mut p = Probe::default();
    run_case(info.case, &info, &mut ctx, &mut p);
    let _ = go;
    let mut report = String::new();
    for f in &p.fails {
        report.push_str(&format!("FAIL {f}; "));
    }
    for n in &p.notes {
        report.push_str(&format!("{n}; "));
    }
    send(ctl, report.as_bytes());
    if p.fails.is_empty() {
        0
    } else {
        1
    }
}

fn run_case(case: u32, info: &Info, ctx: &mut EntryContext, p: &mut Probe) {
    let ro_dir = ctx.fds[0].as_raw_fd();
    let ro_file = ctx.fds[1].as_raw_fd();
    let ring_fd = ctx.ring.as_raw_fd();
    match case {
        1 => {
            // SAFETY: io_uring_setup with a zeroed params block.
            let mut params = [0u8; 120];
            p.denied_with(
                "io_uring_setup",
                sys(unsafe { libc::syscall(libc::SYS_io_uring_setup, 8, params.as_mut_ptr()) }),
                &[libc::EPERM],
            );
            p.denied_with(
                "IoUring::new",
                IoUring::new(8)
                    .map(|_| 0)
                    .map_err(|e| e.raw_os_error().unwrap_or(0)),
                &[libc::EPERM],
            );
        }
        2 => {
            // positive controls first: the host's wake-up and the installed pipe
            let woke = ctx
                .ring
                .completion()
                .any(|c| c.user_data() == 0xfeed && c.result() == 42);
            p.ok(
                "MsgRingData wake-up from the host",
                woke,
                format!("seen={woke}"),
            );
            let mut buf = [0u8; 16];
            let r = ring_op(
                &mut ctx.ring,
                opcode::Read::new(types::Fixed(0), buf.as_mut_ptr(), 16)
                    .build()
                    .flags(fixed_flags()),
            );
            p.ok(
                "READ on fixed slot 0 (installed by the host)",
                r == 4 && &buf[..4] == b"data",
                format!("res={r}"),
            );
            let r = ring_op(
                &mut ctx.ring,
                opcode::Nop::new().build().flags(fixed_flags()),
            );
            p.ok("NOP with FIXED_FILE", r == 0, format!("res={r}"));
            let r = ring_op(&mut ctx.ring, opcode::Nop::new().build());
            p.ok(
                "NOP without FIXED_FILE",
                r == -libc::EACCES,
                format!("res={} ", errname(-r)),
            );
            let ts = types::Timespec::new().nsec(1_000_000);
            let r = ring_op(
                &mut ctx.ring,
                opcode::Timeout::new(&ts).build().flags(fixed_flags()),
            );
            p.ok(
                "TIMEOUT with FIXED_FILE (no fd: flag ignored)",
                r == -libc::ETIME,
                format!("res={}", errname(-r)),
            );
            let before = std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count())
                .unwrap_or(0);
            let path = c("/proc/self/status");
            let how = types::OpenHow::new().flags(libc::O_RDONLY as u64);
            for (name, e) in [
                (
                    "OPENAT (fixed)",
                    opcode::OpenAt::new(types::Fd(0), path.as_ptr())
                        .build()
                        .flags(fixed_flags()),
                ),
                (
                    "OPENAT (plain)",
                    opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr()).build(),
                ),
                (
                    "SOCKET",
                    opcode::Socket::new(libc::AF_INET, libc::SOCK_STREAM, 0)
                        .build()
                        .flags(fixed_flags()),
                ),
                (
                    "URING_CMD",
                    opcode::UringCmd16::new(types::Fixed(0), 0)
                        .build()
                        .flags(fixed_flags()),
                ),
                (
                    "CONNECT on a non-fixed fd",
                    opcode::Connect::new(types::Fd(ctx.control.as_raw_fd()), std::ptr::null(), 0)
                        .build(),
                ),
                (
                    "STATX",
                    opcode::Statx::new(
                        types::Fd(libc::AT_FDCWD),
                        path.as_ptr(),
                        std::ptr::null_mut(),
                    )
                    .build()
                    .flags(fixed_flags()),
                ),
                (
                    "OPENAT2",
                    opcode::OpenAt2::new(types::Fd(libc::AT_FDCWD), path.as_ptr(), &how)
                        .build()
                        .flags(fixed_flags()),
                ),
                (
                    "READ on a plain fd",
                    opcode::Read::new(types::Fd(ro_file), buf.as_mut_ptr(), 16).build(),
                ),
            ] {
                let r = ring_op(&mut ctx.ring, e);
                p.ok(name, r == -libc::EACCES, format!("res={}", errname(-r)));
            }
            let after = std::fs::read_dir("/proc/self/fd")
                .map(|d| d.count())
                .unwrap_or(0);
            p.ok(
                "no descriptor appeared",
                before == after,
                format!("{before} -> {after}"),
            );
            // The host's attempt to send a directory into slot 1 was refused.
            let r = ring_op(
                &mut ctx.ring,
                opcode::Read::new(types::Fixed(1), buf.as_mut_ptr(), 16)
                    .build()
                    .flags(fixed_flags()),
            );
            p.ok(
                "slot 1 (a directory the host tried to send) is empty: EBADF",
                r == -libc::EBADF,
                format!("res={}", errname(-r)),
            );
        }
        3 => {
            let reg = |op: u32, arg: *const libc::c_void, n: u32| {
                // SAFETY: io_uring_register on our ring with a small valid buffer.
                sys(unsafe { libc::syscall(libc::SYS_io_uring_register, ring_fd, op, arg, n) })
            };
            let zero = [0u64; 64];
            let z = zero.as_ptr().cast();
            // Every one is refused by the seccomp argument check (EPERM);
            // the ring's own restriction would say EACCES (checked from the
            // host in case 4).
            for (name, op, n) in [
                ("REGISTER_PERSONALITY", ring::IORING_REGISTER_PERSONALITY, 0),
                (
                    "REGISTER_RESTRICTIONS",
                    ring::IORING_REGISTER_RESTRICTIONS,
                    1,
                ),
                (
                    "REGISTER_ENABLE_RINGS",
                    ring::IORING_REGISTER_ENABLE_RINGS,
                    0,
                ),
                ("REGISTER_FILES", ring::IORING_REGISTER_FILES, 1),
                ("REGISTER_PROBE", ring::IORING_REGISTER_PROBE, 1),
                ("REGISTER_BUFFERS", 0, 1),
                (
                    "FILES_UPDATE | USE_REGISTERED_RING",
                    ring::IORING_REGISTER_FILES_UPDATE | (1 << 31),
                    1,
                ),
            ] {
                p.denied_with(name, reg(op, z, n), &[libc::EPERM]);
            }
            // positive: clearing a slot of its own table is allowed
            let r = ctx.ring.submitter().register_files_update(3, &[-1]);
            p.ok(
                "FILES_UPDATE clearing a slot (allowed)",
                r.is_ok(),
                format!("{r:?}"),
            );
        }
        4 => {
            // The same NOP twice: only the personality field differs. No
            // personality can exist on this ring (registering one is refused
            // by seccomp, case 3, and by the ring's restriction, checked by
            // the host), so naming one fails with EINVAL.
            let plain = opcode::Nop::new().build().flags(fixed_flags());
            let r = ring_op(&mut ctx.ring, plain.clone());
            p.ok(
                "control: the same NOP without a personality",
                r == 0,
                format!("res={r}"),
            );
            for id in [1u16, 2, 0xffff] {
                let r = ring_op(&mut ctx.ring, plain.clone().personality(id));
                p.ok(
                    &format!("NOP naming personality {id}: EINVAL"),
                    r == -libc::EINVAL,
                    format!("res={}", errname(-r)),
                );
            }
            let e = opcode::Nop::new()
                .build()
                .flags(fixed_flags() | squeue::Flags::ASYNC);
            let r = ring_op(&mut ctx.ring, e);
            p.ok(
                "IOSQE_ASYNC (outside the allow-list)",
                r == -libc::EACCES,
                format!("res={}", errname(-r)),
            );
            let r = ring_op(
                &mut ctx.ring,
                opcode::Nop::new()
                    .build()
                    .flags(fixed_flags() | squeue::Flags::IO_DRAIN),
            );
            p.ok(
                "IOSQE_IO_DRAIN (outside the allow-list)",
                r == -libc::EACCES,
                format!("res={}", errname(-r)),
            );
        }
        5 => {
            for (what, path, want) in [
                ("open /etc/passwd", "/etc/passwd", libc::ENOENT),
                (
                    "open /proc/self/root/etc/passwd",
                    "/proc/self/root/etc/passwd",
                    libc::ENOENT,
                ),
                // PID 1 is not dumpable: its root link is closed to us
                (
                    "open /proc/1/root/etc/passwd",
                    "/proc/1/root/etc/passwd",
                    libc::EACCES,
                ),
                (
                    "open ../../../../etc/passwd",
                    "../../../../etc/passwd",
                    libc::ENOENT,
                ),
            ] {
                p.denied_with(what, open(path, libc::O_RDONLY), &[want]);
            }
            p.denied_with(
                "open <ro>/../../../../etc/passwd",
                open(
                    &format!("{}/../../../../etc/passwd", info.ro),
                    libc::O_RDONLY,
                ),
                &[libc::ENOENT],
            );
            // A file that exists in the sandbox's root but is beneath no
            // Landlock rule: the root directory itself.
            p.denied_with(
                "open / for reading (not granted)",
                open("/", libc::O_RDONLY | libc::O_DIRECTORY),
                &[libc::EACCES],
            );
            let ok = read_file(&format!("{}/file.txt", info.ro)).as_deref() == Some("granted");
            p.ok("positive: read <ro>/file.txt", ok, format!("{ok}"));
        }
        6 => {
            let rw_dir = ctx.fds[2].as_raw_fd();
            p.ok(
                "positive: openat(granted dir, file.txt)",
                openat(ro_dir, "file.txt", libc::O_RDONLY).is_ok(),
                String::new(),
            );
            // The descriptor is the re-attached one (its link names no
            // host path).
            let opath_dir = ctx.fds[3].as_raw_fd();
            // SAFETY: F_GETFL only queries.
            let fl = unsafe { libc::fcntl(opath_dir, libc::F_GETFL) };
            p.ok(
                "the O_PATH directory grant is still O_PATH",
                fl >= 0 && fl & libc::O_PATH != 0,
                format!("{fl:#o}"),
            );
            p.ok(
                "positive: openat(O_PATH dir grant, file.txt)",
                openat(opath_dir, "file.txt", libc::O_RDONLY).is_ok(),
                String::new(),
            );
            p.ok(
                "`..` from the O_PATH dir grant is the sandbox's root",
                same_file(
                    &stat_at(opath_dir, "../../../.."),
                    &stat_at(libc::AT_FDCWD, "/"),
                ),
                String::new(),
            );
            p.denied_with(
                "fstatat(O_PATH dir grant, ../outside.txt)",
                stat_at(opath_dir, "../outside.txt").map(|_| 0),
                &[libc::ENOENT],
            );
            for (fd, want) in [
                (ro_dir, "/.luring-grants/0"),
                (rw_dir, "/.luring-grants/2"),
                (opath_dir, "/.luring-grants/3"),
            ] {
                let link = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                    .map(|p| p.display().to_string());
                p.ok(
                    &format!("/proc/self/fd/{fd} names {want}"),
                    link.as_deref().ok() == Some(want),
                    format!("{link:?}"),
                );
            }
            // `..` from the granted descriptor walks the sandbox's tree and
            // stops at its root.
            let root = stat_at(libc::AT_FDCWD, "/");
            for route in [
                "../../../../../../../..".to_string(),
                format!("/proc/self/fd/{ro_dir}/../../../../../.."),
            ] {
                let top = stat_at(ro_dir, &route);
                p.ok(
                    &format!("{route} from the granted dir is the sandbox's root"),
                    top.is_ok() && same_file(&top, &root),
                    format!("{:?} vs {:?}", ino(&top), ino(&root)),
                );
            }
            let fd_path = |rest: &str| format!("/proc/self/fd/{ro_dir}/{rest}");
            // The host's files next to and above the grant: ENOENT by every
            // route (they do not exist in the sandbox's tree).
            for (what, r) in [
                (
                    "openat(dir, ../outside.txt)",
                    openat(ro_dir, "../outside.txt", libc::O_RDONLY),
                ),
                (
                    "openat(dir, ../../../../etc/passwd)",
                    openat(ro_dir, "../../../../etc/passwd", libc::O_RDONLY),
                ),
                (
                    "openat(dir, relative symlink out)",
                    openat(ro_dir, "escape", libc::O_RDONLY),
                ),
                (
                    "openat(dir, absolute symlink)",
                    openat(ro_dir, "abs", libc::O_RDONLY),
                ),
                (
                    "fstatat(dir, ../outside.txt)",
                    stat_at(ro_dir, "../outside.txt").map(|_| 0),
                ),
                (
                    "fstatat(dir, ../../../../../etc/shadow)",
                    stat_at(ro_dir, "../../../../../etc/shadow").map(|_| 0),
                ),
                (
                    "faccessat(dir, ../../../../../etc/shadow)",
                    access_at(ro_dir, "../../../../../etc/shadow"),
                ),
                (
                    "stat /proc/self/fd/N/../outside.txt",
                    stat_at(libc::AT_FDCWD, &fd_path("../outside.txt")).map(|_| 0),
                ),
                (
                    "open /proc/self/fd/N/../outside.txt",
                    open(&fd_path("../outside.txt"), libc::O_RDONLY),
                ),
                (
                    "access /proc/self/fd/N/../../../../etc/shadow",
                    access_at(libc::AT_FDCWD, &fd_path("../../../../etc/shadow")),
                ),
                (
                    "stat /etc/shadow",
                    stat_at(libc::AT_FDCWD, "/etc/shadow").map(|_| 0),
                ),
                (
                    "access /etc/shadow",
                    access_at(libc::AT_FDCWD, "/etc/shadow"),
                ),
            ] {
                p.denied_with(what, r, &[libc::ENOENT]);
            }
            // ".." as a descriptor: the sandbox's grant mount directory.
            // SAFETY: opening ".." of the granted dir as O_PATH.
            let up =
                unsafe { libc::openat(ro_dir, c"..".as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
            p.worked("O_PATH of .. opens", up >= 0);
            if up >= 0 {
                p.denied_with(
                    "fstatat(\"..\" of granted dir, outside.txt)",
                    stat_at(up, "outside.txt").map(|_| 0),
                    &[libc::ENOENT],
                );
                // SAFETY: closing our descriptor.
                unsafe { libc::close(up) };
            }
            // chdir through the grant: the working directory climbs the
            // sandbox's tree only.
            // SAFETY: fchdir/chdir with a valid descriptor and paths.
            unsafe {
                p.worked("fchdir(granted dir)", libc::fchdir(ro_dir) == 0);
                p.worked("chdir(..) from it", libc::chdir(c"..".as_ptr()) == 0);
                let cwd = std::env::current_dir().map(|d| d.display().to_string());
                p.ok(
                    "cwd after chdir(..) is the sandbox's grant mount directory",
                    cwd.as_deref().ok() == Some("/.luring-grants"),
                    format!("{cwd:?}"),
                );
                libc::chdir(c"../../../../..".as_ptr());
                let cwd = std::env::current_dir().map(|d| d.display().to_string());
                p.ok(
                    "cwd after chdir(../../../../..) is /",
                    cwd.as_deref().ok() == Some("/"),
                    format!("{cwd:?}"),
                );
                p.denied_with(
                    "stat etc/shadow from there",
                    stat_at(libc::AT_FDCWD, "etc/shadow").map(|_| 0),
                    &[libc::ENOENT],
                );
                libc::chdir(c"/".as_ptr());
            }
            p.denied_with(
                "openat(granted ro dir, new file, O_CREAT)",
                openat(ro_dir, "new", libc::O_CREAT | libc::O_WRONLY),
                &[libc::EROFS],
            );
            // rw directory grant: writes inside work; renames and links out
            // of it cross a mount (EXDEV), and a symlink resolves in the
            // sandbox's tree. The host checks nothing left the grant.
            p.ok(
                "positive: create fa in the rw dir grant",
                openat(rw_dir, "fa", libc::O_CREAT | libc::O_WRONLY).is_ok(),
                String::new(),
            );
            let rnat = |from: &str, dir: i32, to: &str| {
                let (f, t) = (c(from), c(to));
                // SAFETY: valid paths.
                sys(unsafe { libc::renameat(rw_dir, f.as_ptr(), dir, t.as_ptr()) } as i64)
            };
            p.denied_with(
                "renameat(rw dir fa, ../fa)",
                rnat("fa", rw_dir, "../fa"),
                &[libc::EXDEV],
            );
            p.denied_with(
                "renameat(rw dir fa, /fa)",
                rnat("fa", libc::AT_FDCWD, "/fa"),
                &[libc::EXDEV],
            );
            let (f, t) = (c("fa"), c("../fl"));
            // A link's new name is checked first: its directory is on the
            // read-only root.
            p.denied_with(
                "linkat(rw dir fa, ../fl)",
                // SAFETY: valid paths.
                sys(unsafe { libc::linkat(rw_dir, f.as_ptr(), rw_dir, t.as_ptr(), 0) } as i64),
                &[libc::EROFS],
            );
            let (target, name) = (c("/etc/passwd"), c("fsym"));
            // SAFETY: valid paths.
            let made = unsafe { libc::symlinkat(target.as_ptr(), rw_dir, name.as_ptr()) } == 0;
            p.worked("positive: symlink made in the rw dir grant", made);
            p.denied_with(
                "follow it",
                openat(rw_dir, "fsym", libc::O_RDONLY),
                &[libc::ENOENT],
            );
            // rw path grant: the same by path
            let a = format!("{}/a", info.rw);
            let ok = std::fs::write(&a, b"x").is_ok()
                && std::fs::create_dir(format!("{}/d", info.rw)).is_ok();
            p.ok("positive: write and mkdir in <rw>", ok, format!("{ok}"));
            let rn = |from: &str, to: &str| {
                let (f, t) = (c(from), c(to));
                // SAFETY: valid paths.
                sys(unsafe { libc::rename(f.as_ptr(), t.as_ptr()) } as i64)
            };
            p.denied_with(
                "rename <rw>/a to <rw>/../a",
                rn(&a, &format!("{}/../a", info.rw)),
                &[libc::EXDEV],
            );
            p.denied_with(
                "rename <rw>/d to /d",
                rn(&format!("{}/d", info.rw), "/d"),
                &[libc::EXDEV],
            );
            let l = (c(&a), c(&format!("{}/../link", info.rw)));
            // SAFETY: valid paths.
            p.denied_with(
                "link <rw>/a out of <rw> (into the read-only root)",
                sys(unsafe { libc::link(l.0.as_ptr(), l.1.as_ptr()) } as i64),
                &[libc::EROFS],
            );
            let s = (c("/etc/passwd"), c(&format!("{}/sym", info.rw)));
            // SAFETY: valid paths.
            let made = unsafe { libc::symlink(s.0.as_ptr(), s.1.as_ptr()) } == 0;
            p.denied_with(
                &format!("follow a symlink made in <rw> (made={made})"),
                open(&format!("{}/sym", info.rw), libc::O_RDONLY),
                &[libc::ENOENT],
            );
        }
        7 => {
            // stdin is the slave of a pty the host opened (its master stays
            // with the host, which compares the settings before and after).
            // SAFETY: termios and winsize are plain data.
            let mut t: libc::termios = unsafe { std::mem::zeroed() };
            // SAFETY: ioctl with a valid pointer.
            let r = unsafe { libc::ioctl(0, libc::TCGETS, &mut t) };
            p.worked("positive: TCGETS on the pty (isatty)", r == 0);
            // SAFETY: as above.
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: ioctl with a valid pointer.
            let r = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
            p.ok(
                "positive: TIOCGWINSZ",
                r == 0,
                format!("{}x{}", ws.ws_col, ws.ws_row),
            );
            let mut changed = t;
            changed.c_lflag ^= libc::ECHO | libc::ICANON | libc::ISIG;
            changed.c_oflag ^= libc::OPOST;
            for (name, req) in [
                ("TCSETS", libc::TCSETS),
                ("TCSETSW", libc::TCSETSW),
                ("TCSETSF", libc::TCSETSF),
            ] {
                p.denied_with(
                    name,
                    // SAFETY: ioctl with a valid termios.
                    sys(unsafe { libc::ioctl(0, req, &changed) } as i64),
                    &[libc::EPERM],
                );
            }
            let small = libc::winsize {
                ws_row: 1,
                ws_col: 1,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            p.denied_with(
                "TIOCSWINSZ",
                // SAFETY: ioctl with a valid winsize.
                sys(unsafe { libc::ioctl(0, libc::TIOCSWINSZ, &small) } as i64),
                &[libc::EPERM],
            );
            let n_null: libc::c_int = 27;
            p.denied_with(
                "TIOCSETD N_NULL",
                // SAFETY: ioctl with a valid int.
                sys(unsafe { libc::ioctl(0, libc::TIOCSETD, &n_null) } as i64),
                &[libc::EPERM],
            );
            // SAFETY: setsid has no preconditions; the entry is not a group leader.
            let sid = unsafe { libc::setsid() };
            p.worked("positive: setsid (a session of its own)", sid > 0);
            p.denied_with(
                "TIOCSCTTY after setsid",
                // SAFETY: ioctl with an integer argument.
                sys(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 1) } as i64),
                &[libc::EPERM],
            );
            let ch = b'x';
            let pgrp: libc::pid_t = sid;
            for (name, req, arg) in [
                ("TIOCSTI", libc::TIOCSTI, &ch as *const u8 as u64),
                (
                    "TIOCSTI|1<<32",
                    libc::TIOCSTI | (1 << 32),
                    &ch as *const u8 as u64,
                ),
                ("TIOCLINUX", 0x541C, &ch as *const u8 as u64),
                ("TIOCSPGRP", libc::TIOCSPGRP, &pgrp as *const i32 as u64),
                ("TIOCCONS", libc::TIOCCONS, 0),
                ("TIOCVHANGUP", 0x5437, 0),
                ("TCFLSH", libc::TCFLSH, libc::TCIOFLUSH as u64),
                ("TIOCEXCL", libc::TIOCEXCL, 0),
                ("TCXONC (stop output)", libc::TCXONC, libc::TCOOFF as u64),
                ("TIOCSBRK", libc::TIOCSBRK, 0),
            ] {
                p.denied_with(
                    name,
                    // SAFETY: raw ioctl; every pointer argument is valid.
                    sys(unsafe { libc::syscall(libc::SYS_ioctl, 0, req, arg) }),
                    &[libc::EPERM],
                );
            }
            p.denied_with(
                "open /dev/tty",
                open("/dev/tty", libc::O_RDWR),
                &[libc::ENOENT],
            );
            // field 7 of /proc/self/stat: the controlling terminal (0: none)
            let stat = read_file("/proc/self/stat").unwrap_or_default();
            let tty_nr = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(4))
                .unwrap_or("?")
                .to_string();
            p.ok(
                "no controlling terminal",
                tty_nr == "0",
                format!("tty_nr={tty_nr}"),
            );
        }
        8 => {
            let mut name = vec![0u8];
            name.extend_from_slice(info.abstract_name.as_bytes());
            // Its own network namespace has no such name (the host's
            // listener sees nothing: checked by the host).
            p.denied_with(
                "connect to the host's abstract socket",
                connect_unix(&name),
                &[libc::ECONNREFUSED],
            );
            p.denied_with(
                "connect to @/tmp/.X11-unix/X0",
                connect_unix(b"\0/tmp/.X11-unix/X0"),
                &[libc::ECONNREFUSED],
            );
        }
        9 => {
            let rw_dir = ctx.fds[2].as_raw_fd();
            let fixture = &info.fixture;
            let mut routes: Vec<(String, String)> = Vec::new();
            for name in [&info.sock_name, &info.dgram_name, &info.docker_name] {
                for r in [
                    format!("{fixture}/{name}"),
                    format!("{}/../{name}", info.ro),
                    format!("{}/../{name}", info.rw),
                    format!("/proc/self/fd/{ro_dir}/../{name}"),
                    format!("/proc/self/fd/{rw_dir}/../../../../../../{fixture}/{name}"),
                ] {
                    routes.push((name.clone(), r));
                }
            }
            let cwd_routes = |name: &str| {
                vec![
                    format!("../{name}"),
                    format!("../../../../../../..{fixture}/{name}"),
                ]
            };
            for (name, path) in &routes {
                let r = if name == &info.dgram_name {
                    sendto_unix(path.as_bytes())
                } else {
                    connect_unix(path.as_bytes())
                };
                p.denied_with(&format!("reach {path}"), r, &[libc::ENOENT]);
            }
            for dir in [ro_dir, rw_dir] {
                // SAFETY: fchdir to a granted directory.
                unsafe { libc::fchdir(dir) };
                for name in [&info.sock_name, &info.dgram_name, &info.docker_name] {
                    for path in cwd_routes(name) {
                        let r = if name == &info.dgram_name {
                            sendto_unix(path.as_bytes())
                        } else {
                            connect_unix(path.as_bytes())
                        };
                        p.denied_with(
                            &format!("reach {path} from cwd = granted dir {dir}"),
                            r,
                            &[libc::ENOENT],
                        );
                    }
                }
            }
            // SAFETY: chdir to a valid path.
            unsafe { libc::chdir(c"/".as_ptr()) };
            for path in [
                &b"/run/dbus/system_bus_socket"[..],
                b"/var/run/docker.sock",
                b"/run/docker.sock",
            ] {
                p.denied_with(
                    &format!("connect to {}", String::from_utf8_lossy(path)),
                    connect_unix(path),
                    &[libc::ENOENT],
                );
            }
        }
        10 => {
            for (name, fam, ty) in [
                ("socket AF_INET", libc::AF_INET, libc::SOCK_STREAM),
                ("socket AF_INET6", libc::AF_INET6, libc::SOCK_DGRAM),
                ("socket AF_NETLINK", libc::AF_NETLINK, libc::SOCK_RAW),
                ("socket AF_PACKET", libc::AF_PACKET, libc::SOCK_RAW),
                ("socket AF_VSOCK", libc::AF_VSOCK, libc::SOCK_STREAM),
            ] {
                // SAFETY: socket with integer arguments.
                p.denied_with(
                    name,
                    sys(unsafe { libc::socket(fam, ty, 0) } as i64),
                    &[libc::EPERM],
                );
            }
            let mut pair = [0; 2];
            for (name, fam, ty) in [
                ("socketpair AF_INET", libc::AF_INET, libc::SOCK_STREAM),
                ("socketpair AF_NETLINK", libc::AF_NETLINK, libc::SOCK_RAW),
                ("socketpair AF_TIPC", libc::AF_TIPC, libc::SOCK_SEQPACKET),
                ("socketpair AF_VSOCK", libc::AF_VSOCK, libc::SOCK_STREAM),
            ] {
                p.denied_with(
                    name,
                    // SAFETY: socketpair with a valid output array.
                    sys(unsafe { libc::socketpair(fam, ty, 0, pair.as_mut_ptr()) } as i64),
                    &[libc::EPERM],
                );
            }
            // SAFETY: socket/socketpair with integer arguments and a valid array.
            let u = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) };
            p.ok("positive: socket AF_UNIX", u >= 0, String::new());
            // SAFETY: as above.
            let r =
                unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr()) };
            p.worked("positive: socketpair AF_UNIX", r == 0);
        }
        11 => {
            // SAFETY: kill/pidfd_open with integer arguments.
            p.denied_with(
                "kill(supervisor pid, 0)",
                sys(unsafe { libc::kill(info.sup_pid, 0) } as i64),
                &[libc::ESRCH],
            );
            p.denied_with(
                "kill(sibling sandbox pid, 0)",
                sys(unsafe { libc::kill(info.sibling_pid, 0) } as i64),
                &[libc::ESRCH],
            );
            p.denied_with(
                "pidfd_open(supervisor pid)",
                sys(unsafe { libc::syscall(libc::SYS_pidfd_open, info.sup_pid, 0) }),
                &[libc::ESRCH],
            );
            // From inside, "1" is the sandbox's own PID 1: the host's init cannot be named.
            let ns_init = read_file("/proc/1/status")
                .map(|s| s.contains("Name:"))
                .unwrap_or(false);
            p.notes.push(format!(
                "pid 1 here is the sandbox's own init (visible={ns_init})"
            ));
            let count = std::fs::read_dir("/proc")
                .map(|d| {
                    d.filter(|e| {
                        e.as_ref()
                            .map(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                            .unwrap_or(false)
                    })
                    .count()
                })
                .unwrap_or(0);
            p.ok(
                "only the sandbox's own processes are visible",
                count <= 2,
                format!("{count} pids in /proc"),
            );
        }
        12 => {
            // SAFETY: ptrace/process_vm_readv with valid or null arguments.
            p.denied_with(
                "ptrace(ATTACH, 1)",
                sys(unsafe { libc::ptrace(libc::PTRACE_ATTACH, 1, 0, 0) }),
                &[libc::EPERM],
            );
            p.denied_with(
                "ptrace(TRACEME)",
                sys(unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) }),
                &[libc::EPERM],
            );
            let mut b = [0u8; 8];
            let local = libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: 8,
            };
            let remote = libc::iovec {
                iov_base: 0x400000 as *mut _,
                iov_len: 8,
            };
            // SAFETY: valid iovecs; the call is denied before use.
            p.denied_with(
                "process_vm_readv(1)",
                sys(unsafe { libc::process_vm_readv(1, &local, 1, &remote, 1, 0) } as i64),
                &[libc::EPERM],
            );
            // PID 1 is not dumpable: ptrace access to it is refused.
            p.denied_with(
                "open /proc/1/mem",
                open("/proc/1/mem", libc::O_RDONLY),
                &[libc::EACCES],
            );
            p.denied_with(
                "open /proc/1/environ",
                open("/proc/1/environ", libc::O_RDONLY),
                &[libc::EACCES],
            );
            // The sandbox's /proc is read-only to it (Landlock).
            p.denied_with(
                "open /proc/self/mem for writing",
                open("/proc/self/mem", libc::O_RDWR),
                &[libc::EACCES],
            );
        }
        13 => {
            // The binary is the host's file, beneath no Landlock rule.
            for (what, flags) in [
                ("O_WRONLY", libc::O_WRONLY),
                ("O_RDWR", libc::O_RDWR),
                ("O_RDONLY", libc::O_RDONLY),
            ] {
                p.denied_with(
                    &format!("open /proc/self/exe {what}"),
                    open("/proc/self/exe", flags),
                    &[libc::EACCES],
                );
            }
            // Names only (a known limit, docs/security.md): the link shows
            // the host's path of the binary.
            let exe = std::fs::read_link("/proc/self/exe").map(|p| p.display().to_string());
            p.notes.push(format!("readlink /proc/self/exe = {exe:?}"));
        }
        14 => {
            let mut listed: Vec<i32> = std::fs::read_dir("/proc/self/fd")
                .map(|d| {
                    d.filter_map(|e| e.ok()?.file_name().to_string_lossy().parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            listed.sort_unstable();
            let mut probed: Vec<i32> = (0..1024)
                // SAFETY: F_GETFD only queries.
                .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
                .collect();
            probed.sort_unstable();
            let want = ctx.expected_fds();
            // read_dir holds one extra descriptor while listing
            let listed_ok =
                listed.len() == want.len() + 1 && want.iter().all(|f| listed.contains(f));
            p.ok(
                "/proc/self/fd listing = granted set (+ the listing's own fd)",
                listed_ok,
                format!("listed {listed:?}, granted {want:?}"),
            );
            p.ok(
                "fds 0..1023 = granted set",
                probed == want,
                format!("open {probed:?}"),
            );
        }
        15 => {
            // SAFETY: unshare/clone with integer flags; a successful clone would
            // return twice, so only namespace flags that seccomp rejects are used.
            p.denied_with(
                "unshare(CLONE_NEWUSER)",
                sys(unsafe { libc::unshare(libc::CLONE_NEWUSER) } as i64),
                &[libc::EPERM],
            );
            p.denied_with(
                "unshare(CLONE_NEWNS)",
                sys(unsafe { libc::unshare(libc::CLONE_NEWNS) } as i64),
                &[libc::EPERM],
            );
            let mut args = [0u64; 11];
            args[0] = libc::CLONE_NEWUSER as u64;
            args[4] = libc::SIGCHLD as u64;
            p.denied_with(
                "clone3(CLONE_NEWUSER)",
                sys(unsafe { libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), 88) }),
                &[libc::ENOSYS],
            );
            for (name, f) in [
                ("clone(CLONE_NEWUSER)", libc::CLONE_NEWUSER),
                ("clone(CLONE_NEWPID)", libc::CLONE_NEWPID),
                ("clone(CLONE_NEWNET)", libc::CLONE_NEWNET),
            ] {
                p.denied_with(
                    name,
                    sys(unsafe {
                        libc::syscall(libc::SYS_clone, (f | libc::SIGCHLD) as u64, 0, 0, 0, 0)
                    }),
                    &[libc::EPERM],
                );
            }
        }
        16 => {
            // SAFETY: each call is denied by seccomp before it reads its arguments.
            unsafe {
                p.denied_with(
                    "mount tmpfs",
                    sys(libc::mount(
                        c"none".as_ptr(),
                        c"/".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    ) as i64),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "umount2 /",
                    sys(libc::umount2(c"/".as_ptr(), libc::MNT_DETACH) as i64),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "pivot_root",
                    sys(libc::syscall(
                        libc::SYS_pivot_root,
                        c".".as_ptr(),
                        c".".as_ptr(),
                    )),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "chroot /",
                    sys(libc::chroot(c"/".as_ptr()) as i64),
                    &[libc::EPERM],
                );
                p.denied_with("setns", sys(libc::setns(0, 0) as i64), &[libc::EPERM]);
                p.denied_with(
                    "open_tree",
                    sys(libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        c"/".as_ptr(),
                        1,
                    )),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "fsopen",
                    sys(libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), 0)),
                    &[libc::EPERM],
                );
            }
        }
        17 => {
            let st = in_child(|| {
                // SAFETY: an x32 getpid: the filter kills the process first.
                unsafe { libc::syscall(libc::SYS_getpid | 0x4000_0000) };
            });
            p.ok(
                "x32 getpid kills the process",
                libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
                format!("wait status {st:#x}"),
            );
            let st = in_child(|| {
                // SAFETY: a 32-bit compat getpid via int 0x80; the arch check kills first.
                unsafe { std::arch::asm!("int 0x80", inlateout("eax") 20 => _, options(nostack)) };
            });
            p.ok(
                "int 0x80 (i386 ABI) kills the process",
                libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
                format!("wait status {st:#x}"),
            );
        }
        18 => {
            let argv = [c"/bin/sh".as_ptr(), std::ptr::null()];
            // SAFETY: valid argv; denied by seccomp.
            p.denied_with(
                "execve /bin/sh",
                sys(
                    unsafe { libc::execve(c"/bin/sh".as_ptr(), argv.as_ptr(), std::ptr::null()) }
                        as i64,
                ),
                &[libc::EPERM],
            );
            // SAFETY: memfd_create with a valid name.
            p.denied_with(
                "memfd_create",
                sys(unsafe { libc::memfd_create(c"x".as_ptr(), 0) } as i64),
                &[libc::EPERM],
            );
            // The granted file, executed through its descriptor.
            // SAFETY: valid argv; denied by seccomp.
            p.denied_with(
                "execveat(granted fd, AT_EMPTY_PATH)",
                sys(unsafe {
                    libc::syscall(
                        libc::SYS_execveat,
                        ro_file,
                        c"".as_ptr(),
                        argv.as_ptr(),
                        std::ptr::null::<*const i8>(),
                        libc::AT_EMPTY_PATH,
                    )
                }),
                &[libc::EPERM],
            );
        }
        19 => {
            // SAFETY: every call is denied by seccomp before it reads arguments.
            unsafe {
                p.denied_with(
                    "bpf",
                    sys(libc::syscall(libc::SYS_bpf, 0, 0, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "perf_event_open",
                    sys(libc::syscall(libc::SYS_perf_event_open, 0, 0, -1, -1, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "userfaultfd",
                    sys(libc::syscall(libc::SYS_userfaultfd, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "keyctl",
                    sys(libc::syscall(libc::SYS_keyctl, 0, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "add_key",
                    sys(libc::syscall(libc::SYS_add_key, 0, 0, 0, 0, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "init_module",
                    sys(libc::syscall(libc::SYS_init_module, 0, 0, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "finit_module",
                    sys(libc::syscall(libc::SYS_finit_module, 0, 0, 0)),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "kexec_load",
                    sys(libc::syscall(libc::SYS_kexec_load, 0, 0, 0, 0)),
                    &[libc::EPERM],
                );
            }
        }
        20 => {
            // A permissive seccomp layer of our own: accepted, changes nothing.
            let allow = [libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            }];
            let prog = libc::sock_fprog {
                len: 1,
                filter: allow.as_ptr() as *mut _,
            };
            // SAFETY: valid one-instruction program.
            let r = unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, &prog) };
            p.ok(
                "installing an extra allow-all seccomp filter",
                r == 0,
                format!("r={r}"),
            );
            // SAFETY: denied by the original filter.
            p.denied_with(
                "mount after it",
                sys(unsafe {
                    libc::mount(
                        c"none".as_ptr(),
                        c"/".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                } as i64),
                &[libc::EPERM],
            );
            // A Landlock layer that allows "everything" beneath /: still bounded by the first.
            let attr: [u64; 1] = [(1 << 2) | (1 << 3)]; // READ_FILE | READ_DIR
                                                        // SAFETY: valid ruleset attribute of 8 bytes (ABI 1 layout).
            let rs = unsafe {
                libc::syscall(libc::SYS_landlock_create_ruleset, attr.as_ptr(), 8usize, 0)
            };
            #[repr(C, packed)]
            struct PathBeneath {
                allowed: u64,
                fd: i32,
            }
            let pb = PathBeneath {
                allowed: (1 << 2) | (1 << 3),
                fd: ro_dir,
            };
            // SAFETY: valid rule for the ruleset fd.
            let a = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    rs,
                    1,
                    &pb as *const PathBeneath,
                    0,
                )
            };
            // SAFETY: restricting ourselves with the ruleset.
            let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, rs, 0) };
            p.ok(
                "adding a permissive Landlock layer",
                rs >= 0 && a == 0 && r == 0,
                format!("rs={rs} add={a} restrict={r}"),
            );
            p.denied_with(
                "open / (beneath no rule) still denied",
                open("/", libc::O_RDONLY | libc::O_DIRECTORY),
                &[libc::EACCES],
            );
            p.ok(
                "positive: granted file still readable",
                openat(ro_dir, "file.txt", libc::O_RDONLY).is_ok(),
                String::new(),
            );
            // A tightening layer: no reads at all. It takes effect.
            let attr: [u64; 1] = [1 << 2];
            // SAFETY: as above, with no rules.
            let rs = unsafe {
                libc::syscall(libc::SYS_landlock_create_ruleset, attr.as_ptr(), 8usize, 0)
            };
            let r = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, rs, 0) };
            p.ok(
                "adding a tightening Landlock layer",
                r == 0,
                format!("r={r}"),
            );
            p.denied_with(
                "granted file after tightening",
                openat(ro_dir, "file.txt", libc::O_RDONLY),
                &[libc::EACCES],
            );
        }
        21 => {
            // Done before the spec in a warm child, in the lock-down in a
            // cold one: the same outcome either way.
            // SAFETY: uname fills the zeroed struct it is given.
            let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
            let r = unsafe { libc::uname(&mut uts) };
            // SAFETY: uname NUL-terminates nodename (zeroed before).
            let host = unsafe { std::ffi::CStr::from_ptr(uts.nodename.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            p.ok(
                "hostname",
                r == 0 && host == "luring-sandbox",
                format!("r={r} {host}"),
            );
            // SAFETY: getsid has no preconditions.
            let sid = unsafe { libc::getsid(0) };
            p.ok(
                "session of the sandbox's PID 1",
                sid == 1,
                format!("sid={sid}"),
            );
            let (e, pm, i) = sys::capget_self().unwrap_or((u64::MAX, u64::MAX, u64::MAX));
            p.ok(
                "no effective/permitted/inheritable capabilities",
                e == 0 && pm == 0 && i == 0,
                format!("{e:#x}/{pm:#x}/{i:#x}"),
            );
            let status = read_file("/proc/self/status").unwrap_or_default();
            for key in ["CapBnd:", "CapAmb:"] {
                let v = status
                    .lines()
                    .find(|l| l.starts_with(key))
                    .unwrap_or("")
                    .to_string();
                p.ok(key, v.ends_with("0000000000000000"), v.clone());
            }
            // Supplementary groups: none when the host is root (the
            // supervisor drops them); an unprivileged host's stay (shown as
            // the overflow gid 65534), see docs/security.md.
            let groups: Vec<String> = status
                .lines()
                .find_map(|l| l.strip_prefix("Groups:"))
                .unwrap_or("?")
                .split_whitespace()
                .map(String::from)
                .collect();
            let want: Vec<String> = if info.host_root {
                vec![]
            } else {
                vec!["65534".into()]
            };
            p.ok(
                "supplementary groups",
                groups == want,
                format!("{groups:?}"),
            );
            // SAFETY: prctl query.
            let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
            p.ok("no_new_privs", nnp == 1, format!("{nnp}"));
            // SAFETY: denied by seccomp.
            p.denied_with(
                "setuid(0)",
                sys(unsafe { libc::syscall(libc::SYS_setuid, 0) }),
                &[libc::EPERM],
            );
            let argv = [c"/usr/bin/passwd".as_ptr(), std::ptr::null()];
            // SAFETY: denied by seccomp.
            p.denied_with(
                "execve a setuid binary",
                sys(unsafe { libc::execve(argv[0], argv.as_ptr(), std::ptr::null()) } as i64),
                &[libc::EPERM],
            );
        }
        23 => {
            let mut buf = [0u8; 8];
            let r = ring_op(
                &mut ctx.ring,
                opcode::Read::new(types::Fixed(9), buf.as_mut_ptr(), 8)
                    .build()
                    .flags(fixed_flags()),
            );
            p.ok(
                "READ on a never-installed fixed slot",
                r == -libc::EBADF,
                format!("res={}", errname(-r)),
            );
            let r = ring_op(
                &mut ctx.ring,
                opcode::Read::new(types::Fixed(100_000), buf.as_mut_ptr(), 8)
                    .build()
                    .flags(fixed_flags()),
            );
            p.ok(
                "READ on an out-of-range fixed slot",
                r == -libc::EBADF,
                format!("res={}", errname(-r)),
            );
            // SAFETY: reading into a valid buffer from a made-up descriptor.
            p.denied_with(
                "read(made-up fd 100)",
                sys(unsafe { libc::read(100, buf.as_mut_ptr().cast(), 8) } as i64),
                &[libc::EBADF],
            );
        }
        25 => {
            let path = format!("/proc/self/fd/{ro_file}");
            p.denied_with(
                "reopen granted read-only fd O_RDWR via /proc/self/fd",
                open(&path, libc::O_RDWR),
                &[libc::EACCES],
            );
            p.denied_with(
                "reopen granted read-only fd O_WRONLY via /proc/self/fd",
                open(&path, libc::O_WRONLY),
                &[libc::EACCES],
            );
            let mut b = [0u8; 8];
            // SAFETY: valid buffer.
            let n = unsafe { libc::pread(ro_file, b.as_mut_ptr().cast(), 8, 0) };
            p.ok(
                "positive: read the granted fd itself",
                n == 7,
                format!("n={n}"),
            );
            // SAFETY: valid buffer.
            p.denied_with(
                "write the granted read-only fd",
                sys(unsafe { libc::write(ro_file, b.as_ptr().cast(), 1) } as i64),
                &[libc::EBADF],
            );
        }
        26 => {
            let h = std::thread::spawn(move || {
                let st = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
                let seccomp = st.lines().any(|l| l == "Seccomp:\t2");
                let nnp = st.lines().any(|l| l == "NoNewPrivs:\t1");
                // SAFETY: denied by seccomp.
                let mount = unsafe {
                    libc::mount(
                        c"none".as_ptr(),
                        c"/".as_ptr(),
                        c"tmpfs".as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                };
                let mount_errno = errno();
                // Landlock: the sandbox's root is beneath no rule.
                let landlock = open("/", libc::O_RDONLY | libc::O_DIRECTORY);
                (
                    seccomp,
                    nnp,
                    mount < 0 && mount_errno == libc::EPERM,
                    landlock == Err(libc::EACCES),
                )
            });
            let (s, n, m, o) = h.join().unwrap_or((false, false, false, false));
            p.ok(
                "new thread: Seccomp 2, NoNewPrivs 1, mount EPERM, reading / EACCES (Landlock)",
                s && n && m && o,
                format!("{s} {n} {m} {o}"),
            );
            let tasks: Vec<String> = std::fs::read_dir("/proc/self/task")
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .map(|e| e.path().join("status").to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            let all = tasks.iter().all(|t| {
                read_file(t)
                    .map(|s| s.contains("Seccomp:\t2") && s.contains("Seccomp_filters:\t1"))
                    .unwrap_or(false)
            });
            p.ok(
                "every task: Seccomp 2 with our one filter",
                all && !tasks.is_empty(),
                format!("{} tasks", tasks.len()),
            );
        }
        27 => {
            p.denied_with(
                "open /sys/fs/cgroup",
                open("/sys/fs/cgroup", libc::O_RDONLY | libc::O_DIRECTORY),
                &[libc::ENOENT],
            );
            let d = c("/sys");
            // SAFETY: valid path.
            p.denied_with(
                "mkdir /sys (root is read-only)",
                sys(unsafe { libc::mkdir(d.as_ptr(), 0o755) } as i64),
                &[libc::EROFS],
            );
            let t = c("/cgroup");
            // SAFETY: valid path.
            p.denied_with(
                "mount cgroup2",
                sys(unsafe {
                    libc::mount(
                        c"cgroup2".as_ptr(),
                        t.as_ptr(),
                        c"cgroup2".as_ptr(),
                        0,
                        std::ptr::null(),
                    )
                } as i64),
                &[libc::EPERM],
            );
            let cg = read_file("/proc/self/cgroup").unwrap_or_default();
            p.notes.push(format!("/proc/self/cgroup = {:?}", cg.trim()));
        }
        28 => {
            // limits.address_space = 128 MiB: memory outside the address
            // space (an anonymous file, the tmpfs root, /dev/shm) is closed.
            let mfd = |flags: u32| {
                // SAFETY: memfd_create with a valid name.
                sys(unsafe { libc::memfd_create(c"big".as_ptr(), flags) } as i64)
            };
            p.denied_with("memfd_create", mfd(0), &[libc::EPERM]);
            p.denied_with(
                "memfd_create(MFD_CLOEXEC)",
                mfd(libc::MFD_CLOEXEC),
                &[libc::EPERM],
            );
            p.denied_with(
                "open(/, O_TMPFILE)",
                open("/", libc::O_TMPFILE | libc::O_RDWR),
                &[libc::EROFS],
            );
            p.denied_with(
                "create /big in the tmpfs root",
                open("/big", libc::O_CREAT | libc::O_WRONLY),
                &[libc::EROFS],
            );
            p.denied_with(
                "create /dev/shm/big",
                open("/dev/shm/big", libc::O_CREAT | libc::O_RDWR),
                &[libc::ENOENT],
            );
            let map = |len: usize| {
                // SAFETY: an anonymous private mapping; unmapped at once.
                let a = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                if a == libc::MAP_FAILED {
                    return Err(errno());
                }
                // SAFETY: unmapping what we mapped.
                unsafe { libc::munmap(a, len) };
                Ok(len as i64)
            };
            p.denied_with("mmap 256 MiB", map(256 << 20), &[libc::ENOMEM]);
            p.ok(
                "positive: mmap 16 MiB",
                map(16 << 20).is_ok(),
                String::new(),
            );
            let st = in_child(|| {
                // SAFETY: System V shared memory is on no list: the filter traps.
                unsafe { libc::shmget(libc::IPC_PRIVATE, 256 << 20, libc::IPC_CREAT | 0o600) };
            });
            p.ok(
                "shmget kills the process (SIGSYS)",
                libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGSYS,
                format!("wait status {st:#x}"),
            );
        }
        29 => {
            // No set-user/group-id bit can be planted on the host through a
            // read-write grant (the host checks the files' modes afterwards).
            let rw_dir = ctx.fds[2].as_raw_fd();
            let made = openat_keep(rw_dir, "plain", libc::O_CREAT | libc::O_WRONLY, 0o644);
            p.ok(
                "positive: create plain in the rw dir grant",
                made.is_ok(),
                format!("{made:?}"),
            );
            let fd = made.unwrap_or(-1) as i32;
            for mode in [0o4755, 0o2755, 0o6755, 0o4000] {
                p.denied_with(
                    &format!("fchmod {mode:o}"),
                    // SAFETY: fchmod on our descriptor.
                    sys(unsafe { libc::fchmod(fd, mode) } as i64),
                    &[libc::EPERM],
                );
            }
            // SAFETY: fchmod on our descriptor.
            let r = unsafe { libc::fchmod(fd, 0o755) };
            p.worked("positive: fchmod 0755", r == 0);
            // Beneath a read-only directory grant even plain mode bits stay:
            // its mount is read-only.
            let ro_fd = openat_keep(ro_dir, "file.txt", libc::O_RDONLY, 0).unwrap_or(-1) as i32;
            p.denied_with(
                "fchmod 0600 of a file beneath the read-only dir grant",
                // SAFETY: fchmod on our descriptor.
                sys(unsafe { libc::fchmod(ro_fd, 0o600) } as i64),
                &[libc::EROFS],
            );
            // SAFETY: closing our descriptor.
            unsafe { libc::close(ro_fd) };
            let plain = c("plain");
            let abs_plain = c(&format!("{}/plain", info.rw));
            // SAFETY: each call names a valid path; seccomp refuses them all.
            unsafe {
                p.denied_with(
                    "chmod <rw>/plain 0755",
                    sys(libc::chmod(abs_plain.as_ptr(), 0o755) as i64),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "fchmodat(rw dir, plain, 04755)",
                    sys(libc::fchmodat(rw_dir, plain.as_ptr(), 0o4755, 0) as i64),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "fchmodat2(fd, \"\", 04755, AT_EMPTY_PATH)",
                    sys(libc::syscall(
                        libc::SYS_fchmodat2,
                        fd,
                        c"".as_ptr(),
                        0o4755,
                        libc::AT_EMPTY_PATH,
                    )),
                    &[libc::EPERM],
                );
                libc::close(fd);
            }
            for (name, flags, mode) in [
                ("suid-creat", libc::O_CREAT | libc::O_WRONLY, 0o4755),
                (
                    "sgid-creat",
                    libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL,
                    0o2755,
                ),
                (".", libc::O_TMPFILE | libc::O_WRONLY, 0o4755),
            ] {
                p.denied_with(
                    &format!("openat(rw dir, {name}, {flags:#o}, {mode:o})"),
                    openat_keep(rw_dir, name, flags, mode),
                    &[libc::EPERM],
                );
            }
            let path = c(&format!("{}/suid-open", info.rw));
            p.denied_with(
                "open(<rw>/suid-open, O_CREAT, 04755)",
                // SAFETY: valid path.
                sys(
                    unsafe { libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o4755) }
                        as i64,
                ),
                &[libc::EPERM],
            );
            let (name, path) = (c("suid-dir"), c(&format!("{}/sgid-dir", info.rw)));
            // SAFETY: valid paths.
            unsafe {
                p.denied_with(
                    "mkdirat(rw dir, suid-dir, 04755)",
                    sys(libc::mkdirat(rw_dir, name.as_ptr(), 0o4755) as i64),
                    &[libc::EPERM],
                );
                p.denied_with(
                    "mkdir(<rw>/sgid-dir, 02775)",
                    sys(libc::mkdir(path.as_ptr(), 0o2775) as i64),
                    &[libc::EPERM],
                );
            }
            p.denied_with(
                "openat2 (its mode is out of seccomp's reach)",
                // SAFETY: a zeroed open_how of 24 bytes.
                sys(unsafe {
                    let how = [0u64; 3];
                    libc::syscall(libc::SYS_openat2, rw_dir, c"x".as_ptr(), how.as_ptr(), 24)
                }),
                &[libc::ENOSYS],
            );
            let path = c("/proc/self/status");
            let r = ring_op(
                &mut ctx.ring,
                opcode::OpenAt2::new(
                    types::Fd(libc::AT_FDCWD),
                    path.as_ptr(),
                    &types::OpenHow::new()
                        .mode(0o4755)
                        .flags(libc::O_CREAT as u64),
                )
                .build()
                .flags(fixed_flags()),
            );
            p.ok(
                "ring OPENAT2: EACCES",
                r == -libc::EACCES,
                format!("res={}", errname(-r)),
            );
        }
        30 => {
            // fcntl commands that reach past the process (a lease stalls
            // the host's opens of a granted file, signal re-routing of a
            // shared description, inode write hints): EPERM.
            let rw_dir = ctx.fds[2].as_raw_fd();
            let f = openat_keep(rw_dir, "leased", libc::O_CREAT | libc::O_RDONLY, 0o644)
                .unwrap_or(-1) as i32;
            let hint: u64 = 2;
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() } as u64;
            for (name, fd, cmd, arg) in [
                (
                    "F_SETLEASE F_RDLCK",
                    f,
                    libc::F_SETLEASE,
                    libc::F_RDLCK as u64,
                ),
                (
                    "F_NOTIFY on the rw dir",
                    rw_dir,
                    libc::F_NOTIFY,
                    0x4, /* DN_CREATE */
                ),
                ("F_SETOWN on stdin", 0, libc::F_SETOWN, me),
                ("F_SETSIG on stdin", 0, 10, libc::SIGUSR1 as u64),
                ("F_SET_RW_HINT", f, 1036, &hint as *const u64 as u64),
                ("F_SET_FILE_RW_HINT", f, 1038, &hint as *const u64 as u64),
                (
                    "F_ADD_SEALS",
                    f,
                    libc::F_ADD_SEALS,
                    libc::F_SEAL_WRITE as u64,
                ),
            ] {
                p.denied_with(
                    name,
                    // SAFETY: raw fcntl; pointer arguments are valid.
                    sys(unsafe { libc::syscall(libc::SYS_fcntl, fd, cmd, arg) }),
                    &[libc::EPERM],
                );
            }
            // SAFETY: flock is plain data; fcntl/pipe with valid arguments.
            unsafe {
                let mut lk: libc::flock = std::mem::zeroed();
                lk.l_type = libc::F_RDLCK as i16;
                lk.l_whence = libc::SEEK_SET as i16;
                let r = libc::fcntl(f, libc::F_SETLK, &lk);
                p.worked("positive: F_SETLK read lock on a granted file", r == 0);
                let r = libc::fcntl(f, libc::F_DUPFD_CLOEXEC, 3);
                p.worked("positive: F_DUPFD_CLOEXEC", r >= 0);
                let r = libc::fcntl(0, libc::F_GETFL);
                p.worked("positive: F_GETFL", r >= 0);
                let mut pipe = [0; 2];
                libc::pipe(pipe.as_mut_ptr());
                let r = libc::fcntl(pipe[0], libc::F_SETPIPE_SZ, 1 << 16);
                p.worked("positive: F_SETPIPE_SZ", r >= 0);
                libc::close(f);
            }
        }
        _ => p.fails.push(format!("unknown case {case}")),
    }
}

/// Blocks until the host closes the control socket.
/// The entry of [`pooled_cases`]: started ahead of its spawn or not, it
/// takes the spawn's streams (pooled), then reports each attempt of
/// [`POOLED_ATTEMPTS`] (errno name, "SUCCEEDED", or the signal that killed
/// the child), its descriptors (case 14: exactly the expected ones), its
/// protections (case 21, 26: no_new_privs, seccomp mode, no capability),
/// on the control socket; then writes one line to its stdout.
fn pooled_probe(ctx: EntryContext) -> i32 {
    if ctx.pooled && receive_spawn_stdio(ctx.control.as_fd()).is_err() {
        return 3;
    }
    let mut lines = Vec::new();
    for (name, attempt) in POOLED_ATTEMPTS {
        let st = in_child(|| {
            let r = attempt();
            let code = if r >= 0 { 200 } else { errno() };
            // SAFETY: leave the child with the outcome.
            unsafe { libc::_exit(code) };
        });
        let outcome = if libc::WIFSIGNALED(st) {
            format!("killed by signal {}", libc::WTERMSIG(st))
        } else if libc::WEXITSTATUS(st) == 200 {
            "SUCCEEDED".to_string()
        } else {
            errname(libc::WEXITSTATUS(st))
        };
        lines.push(format!("{name}: {outcome}"));
    }
    // SAFETY: F_GETFD only queries.
    let open: Vec<i32> = (0..1024)
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect();
    lines.push(format!(
        "14 exactly the expected descriptors: {}",
        open == ctx.expected_fds()
    ));
    // SAFETY: prctl queries with integer arguments.
    let (nnp, seccomp) = unsafe {
        (
            libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
            libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0),
        )
    };
    lines.push(format!("21 no_new_privs: {}", nnp == 1));
    lines.push(format!("26 seccomp filter mode: {}", seccomp == 2));
    let caps = luring_sandbox::sys::capget_self().map(|c| c == (0, 0, 0));
    lines.push(format!("21 no capability: {}", caps.unwrap_or(false)));
    send(ctx.control.as_raw_fd(), lines.join("\n").as_bytes());
    let line = b"stdout of this spawn\n";
    // SAFETY: writing a valid buffer to our stdout.
    unsafe { libc::write(1, line.as_ptr().cast(), line.len()) };
    0
}

fn idle(ctx: EntryContext) -> i32 {
    let _ = recv(ctx.control.as_raw_fd());
    0
}

/// The docker.sock-like listener made by `main` (root:61001, 0660 when the
/// test runs as root), shared by both runs.
static DOCKER_LISTENER: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
const DOCKER_SOCK: &str = "docker.sock";

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = PathBuf::from(format!("/tmp/luring-battery-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("ro")).unwrap();
        std::fs::write(dir.join("ro/file.txt"), "granted").unwrap();
        std::fs::write(dir.join("outside.txt"), "outside").unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", dir.join("ro/escape")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("ro/abs")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        for (p, m) in [
            ("", 0o1777),
            ("ro", 0o755),
            ("outside.txt", 0o644),
            ("ro/file.txt", 0o644),
        ] {
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(m)).unwrap();
        }
        let docker = std::os::unix::net::UnixListener::bind(dir.join(DOCKER_SOCK)).unwrap();
        docker.set_nonblocking(true).unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(
                dir.join(DOCKER_SOCK),
                Some(0),
                Some(common::SUPPLEMENTARY_GID),
            )
            .unwrap();
            std::fs::set_permissions(
                dir.join(DOCKER_SOCK),
                std::fs::Permissions::from_mode(0o660),
            )
            .unwrap();
        }
        DOCKER_LISTENER.store(
            std::os::fd::IntoRawFd::into_raw_fd(docker),
            std::sync::atomic::Ordering::SeqCst,
        );
        Fixture { dir }
    }
}

fn open_fd(p: &Path, flags: i32) -> OwnedFd {
    let f = std::fs::OpenOptions::new();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = f;
    f.read(true).custom_flags(flags);
    f.open(p).unwrap().into()
}

/// The host's sockets that no probe may reach.
struct HostSockets {
    stream: std::os::unix::net::UnixListener,
    dgram: std::os::unix::net::UnixDatagram,
    abstract_fd: i32,
    docker_fd: i32,
}

impl HostSockets {
    /// What reached any of them since the last call (drained).
    fn reached(&self) -> Vec<String> {
        let mut got = Vec::new();
        while let Ok((_, addr)) = self.stream.accept() {
            got.push(format!(
                "a connection on the host's stream socket from {addr:?}"
            ));
        }
        let mut buf = [0u8; 64];
        while let Ok(n) = self.dgram.recv(&mut buf) {
            got.push(format!(
                "a datagram on the host's datagram socket: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ));
        }
        for (name, fd) in [
            ("abstract", self.abstract_fd),
            ("docker-like", self.docker_fd),
        ] {
            loop {
                // SAFETY: non-blocking accept on our listener.
                let c = unsafe {
                    libc::accept4(
                        fd,
                        std::ptr::null_mut(),
                        std::ptr::null_mut(),
                        libc::SOCK_CLOEXEC,
                    )
                };
                if c < 0 {
                    break;
                }
                // SAFETY: closing the accepted connection.
                unsafe { libc::close(c) };
                got.push(format!("a connection on the host's {name} socket"));
            }
        }
        got
    }
}

/// A pty whose slave is the probe's stdin; the host keeps the master and
/// compares the terminal's state before and after.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

#[derive(PartialEq, Debug)]
struct TtyState {
    termios: Vec<u8>,
    winsize: (u16, u16),
    ldisc: i32,
}

impl Pty {
    fn open() -> std::io::Result<Pty> {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two descriptors; null name/termios/winsize are allowed.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: openpty returned two descriptors we own.
        let pty = unsafe {
            use std::os::fd::FromRawFd;
            Pty {
                master: OwnedFd::from_raw_fd(m),
                slave: OwnedFd::from_raw_fd(s),
            }
        };
        // Raw mode, so any injected byte would be readable at once; and a
        // size that is not the default.
        // SAFETY: termios is plain data; tcgetattr/tcsetattr/ioctl on our pty.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(s, &mut t);
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(s, libc::TCSANOW, &t);
            let ws = libc::winsize {
                ws_row: 33,
                ws_col: 101,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            libc::ioctl(m, libc::TIOCSWINSZ, &ws);
            let fl = libc::fcntl(s, libc::F_GETFL);
            libc::fcntl(s, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        Ok(pty)
    }

    fn state(&self) -> TtyState {
        let m = self.master.as_raw_fd();
        // SAFETY: plain data filled by the kernel from our own pty.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            libc::tcgetattr(m, &mut t);
            let bytes = std::slice::from_raw_parts(
                (&t as *const libc::termios).cast::<u8>(),
                std::mem::size_of::<libc::termios>(),
            )
            .to_vec();
            let mut ws: libc::winsize = std::mem::zeroed();
            libc::ioctl(m, libc::TIOCGWINSZ, &mut ws);
            let mut ldisc = -1;
            libc::ioctl(self.slave.as_raw_fd(), libc::TIOCGETD, &mut ldisc);
            TtyState {
                termios: bytes,
                winsize: (ws.ws_row, ws.ws_col),
                ldisc,
            }
        }
    }

    /// Bytes waiting on the slave's input (an injected TIOCSTI would be there).
    fn pending_input(&self) -> Result<Vec<u8>, i32> {
        let mut buf = [0u8; 64];
        // SAFETY: non-blocking read into a valid buffer.
        let n = unsafe { libc::read(self.slave.as_raw_fd(), buf.as_mut_ptr().cast(), 64) };
        if n < 0 {
            Err(errno())
        } else {
            Ok(buf[..n as usize].to_vec())
        }
    }

    /// The pty still carries data from master to slave.
    fn still_works(&self) -> bool {
        // SAFETY: valid buffer.
        unsafe { libc::write(self.master.as_raw_fd(), b"ok".as_ptr().cast(), 2) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if sys::poll_one(self.slave.as_raw_fd(), libc::POLLIN, 100).unwrap_or(0) > 0 {
                return self.pending_input() == Ok(b"ok".to_vec());
            }
        }
        false
    }
}

/// Case 4, host side: the ring's own restriction refuses a personality
/// (EACCES), independent of seccomp; an unrestricted ring accepts one.
fn personality_on_rings() -> (bool, String) {
    let restricted = match ring::create_restricted(RingSpec::default()) {
        Ok(r) => r,
        Err(e) => return (false, format!("create_restricted: {e}")),
    };
    let r = restricted.submitter().register_personality();
    let open = IoUring::new(2).and_then(|r| r.submitter().register_personality());
    let ok = matches!(&r, Err(e) if e.raw_os_error() == Some(libc::EACCES))
        && matches!(open, Ok(id) if id >= 1);
    (
        ok,
        format!("restricted ring: {r:?} (want EACCES); unrestricted ring: {open:?}"),
    )
}

/// Case 2, host side: sending a directory or an O_PATH descriptor to a
/// running sandbox is refused before anything is sent.
fn refuse_dir_sends(
    host: &mut IoUring,
    child_ring: std::os::fd::BorrowedFd<'_>,
    fx: &Path,
) -> (bool, String) {
    let dir = open_fd(&fx.join("ro"), libc::O_DIRECTORY);
    let opath = open_fd(&fx.join("outside.txt"), libc::O_PATH);
    let a = ring::send_fd(host, 1, child_ring, dir.as_fd(), 1);
    let b = ring::send_fd(host, 1, child_ring, opath.as_fd(), 1);
    let refused = |r: &std::io::Result<()>, word: &str| matches!(r, Err(e) if e.kind() == std::io::ErrorKind::InvalidInput && e.to_string().contains(word));
    (
        refused(&a, "directory") && refused(&b, "O_PATH"),
        format!("directory: {a:?}; O_PATH: {b:?}"),
    )
}

/// Case 6, host side: nothing the probe made left its grants.
fn nothing_left_the_grants(fx: &Path, rw: &Path) -> (bool, String) {
    let outside: Vec<&str> = ["a", "d", "l", "link", "fa", "fl", "fsym"]
        .into_iter()
        .filter(|n| fx.join(n).symlink_metadata().is_ok())
        .collect();
    let inside = ["a", "d", "fa", "fsym"]
        .iter()
        .all(|n| rw.join(n).symlink_metadata().is_ok());
    (
        outside.is_empty() && inside,
        format!("next to the grants: {outside:?}; still inside: {inside}"),
    )
}

/// Case 29, host side: no file in the rw grant has a set-id bit, none of
/// the refused names exists, and the permitted chmod took effect.
fn no_set_id_files(rw: &Path) -> (bool, String) {
    use std::os::unix::fs::PermissionsExt;
    let mut bad = Vec::new();
    for e in std::fs::read_dir(rw)
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let mode = e.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        if mode & 0o6000 != 0 {
            bad.push(format!("{:?} {mode:o}", e.file_name()));
        }
    }
    let present: Vec<&str> = [
        "suid-creat",
        "sgid-creat",
        "suid-open",
        "suid-dir",
        "sgid-dir",
    ]
    .into_iter()
    .filter(|n| rw.join(n).symlink_metadata().is_ok())
    .collect();
    let plain = std::fs::metadata(rw.join("plain")).map(|m| m.permissions().mode() & 0o7777);
    (
        bad.is_empty() && present.is_empty() && matches!(plain, Ok(0o755)),
        format!(
            "set-id files {bad:?}; refused names present {present:?}; plain {:?}",
            plain.map(|m| format!("{m:o}")).map_err(|e| e.to_string())
        ),
    )
}

fn suite(t: &mut Tally) {
    let fx = Fixture {
        dir: PathBuf::from(format!(
            "/tmp/luring-battery-{}",
            std::os::unix::process::parent_id()
        )),
    };
    let sv = match Supervisor::start() {
        Ok(s) => s,
        Err(e) => {
            t.check("supervisor start", false, &e.to_string());
            return;
        }
    };
    if let Some(why) = Supervisor::user_namespace_problem() {
        t.check("user namespaces available", false, &why);
        return;
    }
    let user = t.user.replace(' ', "");
    // Host-side resources the probe tries to reach.
    let abstract_name = format!("luring-battery-{}-{user}", std::process::id());
    let abs_listener = {
        // SAFETY: socket/bind/listen on a fresh socket with a valid address.
        unsafe {
            let s = libc::socket(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            );
            let mut addr: libc::sockaddr_un = std::mem::zeroed();
            addr.sun_family = libc::AF_UNIX as u16;
            for (d, c) in addr.sun_path[1..].iter_mut().zip(abstract_name.as_bytes()) {
                *d = *c as libc::c_char;
            }
            let len = (2 + 1 + abstract_name.len()) as u32;
            libc::bind(s, &addr as *const _ as *const libc::sockaddr, len);
            libc::listen(s, 4);
            s
        }
    };
    let sock_name = format!("host-{user}.sock");
    let dgram_name = format!("host-dgram-{user}.sock");
    for n in [&sock_name, &dgram_name] {
        let _ = std::fs::remove_file(fx.dir.join(n));
    }
    let host = HostSockets {
        stream: std::os::unix::net::UnixListener::bind(fx.dir.join(&sock_name)).unwrap(),
        dgram: std::os::unix::net::UnixDatagram::bind(fx.dir.join(&dgram_name)).unwrap(),
        abstract_fd: abs_listener,
        docker_fd: DOCKER_LISTENER.load(std::sync::atomic::Ordering::SeqCst),
    };
    host.stream.set_nonblocking(true).unwrap();
    host.dgram.set_nonblocking(true).unwrap();
    // Control: this host user can reach every one of them (the docker-like
    // socket through its supplementary group), so "unreachable" below is
    // the sandbox's doing.
    let reachable = std::os::unix::net::UnixStream::connect(fx.dir.join(&sock_name)).is_ok()
        && std::os::unix::net::UnixStream::connect(fx.dir.join(DOCKER_SOCK)).is_ok()
        && std::os::unix::net::UnixDatagram::unbound()
            .and_then(|d| d.send_to(b"control", fx.dir.join(&dgram_name)))
            .is_ok();
    let drained = host.reached().len();
    t.check(
        "control: the host user reaches its sockets",
        reachable && drained == 3,
        &format!(
            "stream, docker-like (root:{} 0660) and datagram: {reachable}, {drained} arrived",
            common::SUPPLEMENTARY_GID
        ),
    );
    let sibling = sv.spawn("idle", b"", &SandboxSpec::default());

    let ro = fx.dir.join("ro");
    // A read-write directory of this user's own.
    let rw = fx.dir.join(format!("rw-{user}"));
    let _ = std::fs::create_dir(&rw);
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&rw, std::fs::Permissions::from_mode(0o777));
    }
    // Every case once from the warm sandbox; the directory-grant cases
    // again cold (another ring shape), whose mount namespace is copied at
    // the clone rather than ahead of the request, and the capability case
    // (the bounding set is emptied on entering the user namespace, before
    // a warm child waits for its spec: both paths must end with none).
    let cases: Vec<(u32, bool)> = (1..=21)
        .chain(23..=30)
        .filter(|c| *c != 24)
        .map(|c| (c, false))
        .chain([(6, true), (9, true), (21, true)])
        .collect();
    for (case, cold) in cases {
        let mut spec = SandboxSpec {
            ro_paths: vec![ro.clone()],
            rw_paths: vec![rw.clone()],
            fds: vec![
                Grant {
                    fd: open_fd(&ro, libc::O_DIRECTORY),
                    access: Access::ReadOnly,
                },
                Grant {
                    fd: open_fd(&fx.dir.join("outside.txt"), 0),
                    access: Access::ReadOnly,
                },
                Grant {
                    fd: open_fd(&rw, libc::O_DIRECTORY),
                    access: Access::ReadWrite,
                },
                Grant {
                    fd: open_fd(&ro, libc::O_DIRECTORY | libc::O_PATH),
                    access: Access::ReadOnly,
                },
            ],
            mount_proc: true,
            stderr: Stdio::Inherit,
            ..Default::default()
        };
        let mut pty = None;
        if case == 7 {
            match Pty::open() {
                Ok(p) => {
                    spec.stdin = Stdio::Fd(p.slave.try_clone().unwrap());
                    pty = Some(p);
                }
                Err(e) => {
                    t.check("case  7", false, &format!("openpty: {e}"));
                    continue;
                }
            }
        }
        if case == 28 {
            spec.limits.address_space = Some(128 << 20);
        }
        if case == 6 {
            // What a previous run of the case made in the rw grant.
            for n in ["a", "fa", "fsym", "sym"] {
                let _ = std::fs::remove_file(rw.join(n));
            }
            let _ = std::fs::remove_dir(rw.join("d"));
        }
        if cold {
            spec.ring = RingSpec {
                entries: 32,
                fixed_files: 64,
            };
        }
        let tty_before = pty.as_ref().map(Pty::state);
        let info = Info {
            case,
            sup_pid: sv.pid(),
            sibling_pid: sibling.as_ref().map(|s| s.pid()).unwrap_or(1),
            abstract_name: abstract_name.clone(),
            ro: ro.to_string_lossy().into_owned(),
            rw: rw.to_string_lossy().into_owned(),
            fixture: fx.dir.to_string_lossy().into_owned(),
            sock_name: sock_name.clone(),
            dgram_name: dgram_name.clone(),
            docker_name: DOCKER_SOCK.into(),
            // SAFETY: geteuid has no preconditions.
            host_root: unsafe { libc::geteuid() } == 0,
        };
        let name = format!("case {case:2}{}", if cold { " (cold spawn)" } else { "" });
        let mut h = match sv.spawn("probe", &info.encode(), &spec) {
            Ok(h) => h,
            Err(e) => {
                t.check(&name, false, &format!("spawn failed: {e}"));
                continue;
            }
        };
        drop(spec);
        let mut host_checks: Vec<(bool, String)> = Vec::new();
        if case == 2 {
            // Install a capability (a pipe's read end) into slot 0 and wake the ring.
            let mut fds = [0; 2];
            // SAFETY: fds is writable.
            unsafe { libc::pipe(fds.as_mut_ptr()) };
            let res = (|| -> std::io::Result<()> {
                let mut host = ring::host_ring(4)?;
                let child_ring = h
                    .ring_fd()
                    .ok_or_else(|| std::io::Error::other("no ring fd"))?;
                // SAFETY: fds[0] is open for this scope.
                let pr = unsafe { std::os::fd::BorrowedFd::borrow_raw(fds[0]) };
                ring::send_fd(&mut host, 0, child_ring, pr, 0)?;
                host_checks.push(refuse_dir_sends(&mut host, child_ring, &fx.dir));
                // SAFETY: valid buffer.
                unsafe { libc::write(fds[1], b"data".as_ptr().cast(), 4) };
                ring::wake(&mut host, child_ring, 42, 0xfeed)?;
                Ok(())
            })();
            // SAFETY: closing our pipe ends.
            unsafe {
                libc::close(fds[0]);
                libc::close(fds[1]);
            }
            if let Err(e) = res {
                host_checks.push((false, format!("installing the capability failed: {e}")));
            }
        }
        if case == 4 {
            host_checks.push(personality_on_rings());
        }
        send(h.control().as_raw_fd(), b"go");
        let st = h.wait_timeout(20_000).ok().flatten();
        let report = try_recv(h.control().as_raw_fd())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| "(no report)".into());
        let reached = host.reached();
        host_checks.push((
            reached.is_empty(),
            format!("host sockets reached: {reached:?}"),
        ));
        if let (Some(p), Some(before)) = (&pty, &tty_before) {
            let after = p.state();
            host_checks.push((
                &after == before,
                format!("terminal unchanged: {}", &after == before),
            ));
            let pending = p.pending_input();
            host_checks.push((
                pending == Err(libc::EAGAIN),
                format!("nothing injected: {pending:?}"),
            ));
            let works = p.still_works();
            host_checks.push((works, format!("pty still carries data: {works}")));
        }
        if case == 6 {
            host_checks.push(nothing_left_the_grants(&fx.dir, &rw));
        }
        if case == 29 {
            host_checks.push(no_set_id_files(&rw));
        }
        let host_ok = host_checks.iter().all(|(ok, _)| *ok);
        let host_s: Vec<String> = host_checks
            .iter()
            .map(|(ok, s)| if *ok { s.clone() } else { format!("FAIL {s}") })
            .collect();
        let ok = st == Some(ExitStatus::Exited(0)) && !report.contains("FAIL") && host_ok;
        let st_s = st
            .map(|s| s.to_string())
            .unwrap_or_else(|| "timed out".into());
        t.check(
            &name,
            ok,
            &format!("{st_s}: {report} host: {}", host_s.join("; ")),
        );
        if st.is_none() {
            let _ = h.kill();
        }
    }

    // Case 24: extra descriptors, a second control message, spoofed
    // credentials, malformed frames: refused, extras closed, supervisor alive.
    let live: Vec<i32> = sibling.iter().map(|s| s.pid()).collect();
    case24(t, &sv, &live);
    case24_peer(t, &sv);
    dir_grant_refusals(t, &sv, &fx.dir, &user);
    pooled_cases(t, &sv);

    for n in [&sock_name, &dgram_name] {
        let _ = std::fs::remove_file(fx.dir.join(n));
    }
    drop(host);
    // SAFETY: closing our listener.
    unsafe { libc::close(abs_listener) };
    drop(sibling);
}

/// What `pooled_probe` tries, each in a child of its own (a call the
/// filter traps kills only that child): the name and the attempt, which
/// returns the raw syscall result.
type Attempt = (&'static str, fn() -> i64);

const POOLED_ATTEMPTS: &[Attempt] = &[
    ("1 io_uring_setup", || {
        let mut params = [0u8; 120];
        // SAFETY: params is a writable io_uring_params-sized buffer.
        unsafe { libc::syscall(libc::SYS_io_uring_setup, 4, params.as_mut_ptr()) }
    }),
    ("5 open /etc/passwd", || {
        // SAFETY: valid NUL-terminated path.
        unsafe { libc::open(c"/etc/passwd".as_ptr(), libc::O_RDONLY) as i64 }
    }),
    ("10 socket AF_INET", || {
        // SAFETY: plain syscall with integer arguments.
        unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) as i64 }
    }),
    ("10 socket AF_NETLINK", || {
        // SAFETY: plain syscall with integer arguments.
        unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, 0) as i64 }
    }),
    ("12 ptrace PID 1", || {
        // SAFETY: plain syscall with integer arguments.
        unsafe { libc::ptrace(libc::PTRACE_ATTACH, 1, 0, 0) }
    }),
    ("15 unshare user namespace", || {
        // SAFETY: plain syscall with integer arguments.
        unsafe { libc::unshare(libc::CLONE_NEWUSER) as i64 }
    }),
    ("16 mount tmpfs", || {
        // SAFETY: valid NUL-terminated strings.
        unsafe {
            libc::mount(
                c"none".as_ptr(),
                c"/".as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                std::ptr::null(),
            ) as i64
        }
    }),
    ("16 chroot", || {
        // SAFETY: valid NUL-terminated path.
        unsafe { libc::chroot(c"/".as_ptr()) as i64 }
    }),
    ("18 execve /bin/sh", || {
        let argv = [c"sh".as_ptr(), std::ptr::null()];
        // SAFETY: NUL-terminated path and argv; an empty environment.
        unsafe { libc::execve(c"/bin/sh".as_ptr(), argv.as_ptr(), argv[1..].as_ptr()) as i64 }
    }),
    ("19 bpf", || {
        // SAFETY: a null attribute pointer with size 0.
        unsafe { libc::syscall(libc::SYS_bpf, 0, std::ptr::null::<u8>(), 0) }
    }),
    ("19 userfaultfd", || {
        // SAFETY: plain syscall with integer arguments.
        unsafe { libc::syscall(libc::SYS_userfaultfd, 0) }
    }),
];

/// The cases of the battery that need no grant, run by an entry the
/// supervisor may start ahead of its spawn (registered pooled): from a
/// pooled sandbox and from fresh ones with the same spec (the same entry
/// with argument bytes, which the pool never serves), the outcomes must be
/// the same line for line, every attempt denied, and each sandbox's stdout
/// the spawn's own. Runs last: the pool exists only once a spawn asked for
/// its spec.
fn pooled_cases(t: &mut Tally, sv: &Supervisor) {
    let run = |arg: &[u8]| -> Result<(bool, String, String), String> {
        let (mut out_r, out_w) = std::io::pipe().map_err(|e| e.to_string())?;
        let spec = SandboxSpec {
            stdout: Stdio::Fd(out_w.into()),
            ..Default::default()
        };
        let mut h = sv
            .spawn("pooled_probe", arg, &spec)
            .map_err(|e| e.to_string())?;
        drop(spec);
        let report = recv(h.control().as_raw_fd()).unwrap_or_default();
        let status = h.wait_timeout(10_000).map_err(|e| e.to_string())?;
        drop(h);
        let mut out = String::new();
        std::io::Read::read_to_string(&mut out_r, &mut out).map_err(|e| e.to_string())?;
        if status != Some(ExitStatus::Exited(0)) {
            return Err(format!("probe ended {status:?}: {out}"));
        }
        Ok((
            arg.is_empty(),
            String::from_utf8_lossy(&report).into_owned(),
            out,
        ))
    };
    let fresh = match run(b"fresh") {
        Ok((_, report, out)) => {
            t.check(
                "pooled cases: fresh sandbox, stdout is the spawn's",
                out == "stdout of this spawn\n",
                &out,
            );
            let denied = report
                .lines()
                .all(|l| !l.contains("SUCCEEDED") && !l.ends_with("false"));
            t.check(
                "pooled cases: fresh sandbox, every attempt denied",
                denied,
                &report,
            );
            report
        }
        Err(e) => return t.check("pooled cases: fresh sandbox", false, &e),
    };
    // The first spawn with the pool's spec asks for the pool; spawns go on
    // (each another fresh run to compare) until one takes the pooled
    // sandbox, which is made 2 ms after the last spawn.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let h = match sv.spawn("pooled_probe", b"", &SandboxSpec::default()) {
            Ok(h) => h,
            Err(e) => return t.check("pooled cases: spawn", false, &e.to_string()),
        };
        let pooled = h.pooled();
        let report = recv(h.control().as_raw_fd()).unwrap_or_default();
        drop(h);
        let report = String::from_utf8_lossy(&report).into_owned();
        if !pooled {
            if report != fresh {
                return t.check("pooled cases: fresh sandboxes agree", false, &report);
            }
        } else {
            // Taken ahead of the spawn (claimed from the supervisor's
            // offer, or handed over by it): the same outcomes.
            t.check(
                "pooled cases: the first pooled sandbox, same outcomes as a fresh one",
                report == fresh,
                &format!("pooled:\n{report}\nfresh:\n{fresh}"),
            );
            break;
        }
        if std::time::Instant::now() > deadline {
            return t.check("pooled cases: a pooled sandbox within 30 s", false, "");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Now one is (being) made ahead: this spawn takes it.
    match run(b"") {
        Ok((_, report, out)) => {
            t.check(
                "pooled cases: pooled sandbox, same outcomes as a fresh one",
                report == fresh,
                &format!("pooled:\n{report}\nfresh:\n{fresh}"),
            );
            t.check(
                "pooled cases: pooled sandbox, stdout is the spawn's",
                out == "stdout of this spawn\n",
                &out,
            );
        }
        Err(e) => t.check("pooled cases: pooled sandbox", false, &e),
    }
}

/// Spawns that must be refused with a clear error: a directory as a
/// standard stream (it would not be re-attached, so `..` from it would
/// reach the host), and a granted directory that has no path in the
/// sandbox's mount namespace (deleted after it was opened).
fn dir_grant_refusals(t: &mut Tally, sv: &Supervisor, fx: &Path, user: &str) {
    let dir = open_fd(&fx.join("ro"), libc::O_DIRECTORY);
    let spec = SandboxSpec {
        stdin: Stdio::Fd(dir),
        ..Default::default()
    };
    let r = sv.spawn("idle", b"", &spec);
    let detail = format!("{:?}", r.as_ref().map(|h| h.pid()));
    let ok = matches!(&r, Err(SpawnError::Setup { step, err })
        if step.contains("standard stream 0 is a directory")
            && err.raw_os_error() == Some(libc::EISDIR));
    t.check("directory as stdin refused", ok, &detail);

    let gone = fx.join(format!("gone-{user}"));
    let _ = std::fs::create_dir(&gone);
    let fd = open_fd(&gone, libc::O_DIRECTORY);
    let _ = std::fs::remove_dir(&gone);
    let spec = SandboxSpec {
        fds: vec![Grant {
            fd,
            access: Access::ReadOnly,
        }],
        ..Default::default()
    };
    let r = sv.spawn("idle", b"", &spec);
    let detail = format!("{:?}", r.as_ref().map(|h| h.pid()));
    let ok = matches!(&r, Err(SpawnError::Setup { step, err })
        if step.starts_with("granted directory #0 has no path naming it")
            && err.raw_os_error() == Some(libc::ENOENT));
    t.check("deleted directory grant refused", ok, &detail);

    // A path grant beneath the directory where granted directories are
    // attached (made for the test when the host is root and it is absent).
    let reserved = Path::new("/.luring-grants");
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && !reserved.exists() {
        let made = std::fs::create_dir_all(reserved.join("x")).is_ok();
        let spec = SandboxSpec {
            ro_paths: vec![reserved.join("x")],
            ..Default::default()
        };
        let r = sv.spawn("idle", b"", &spec);
        let detail = format!("{:?}", r.as_ref().map(|h| h.pid()));
        let _ = std::fs::remove_dir_all(reserved);
        let ok = made
            && matches!(&r, Err(SpawnError::InvalidSpec(m))
                if m.contains("where the sandbox attaches granted directories"));
        t.check("path grant beneath /.luring-grants refused", ok, &detail);
    }
}

fn supervisor_fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

/// The supervisor's descriptor count at rest: awaited (up to 30 s) until
/// its children are exactly the `live` sandboxes plus its warm child (not
/// yet under seccomp, so told apart from a sandbox's PID 1 that is still
/// tearing down), then after one request round trip (answered between two
/// steps of its loop: the warm child's set-up done, the last spawn's ring
/// released). Nothing changes it until the next request.
fn quiesced_fd_count(sv: &Supervisor, live: &[i32]) -> Option<usize> {
    let sup = sv.pid();
    let field = |p: i32, key: &str| -> Option<String> {
        let st = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
        st.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let kids: Vec<i32> = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let others: Vec<i32> = kids.iter().copied().filter(|k| !live.contains(k)).collect();
        let at_rest = live.iter().all(|l| kids.contains(l))
            && others.len() == 1
            && field(others[0], "Seccomp:").as_deref() == Some("0")
            && field(others[0], "State:").is_some_and(|s| !s.starts_with('Z'));
        if at_rest {
            break;
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let _ = sv.signal(u64::MAX, 0);
    Some(supervisor_fd_count(sup))
}

fn case24(t: &mut Tally, sv: &Supervisor, live: &[i32]) {
    let before = quiesced_fd_count(sv, live);
    let pipe = || {
        let mut f = [0; 2];
        // SAFETY: f is writable.
        unsafe { libc::pipe2(f.as_mut_ptr(), libc::O_CLOEXEC) };
        f
    };
    let p = pipe();
    let refused =
        |r: std::io::Result<(Vec<u8>, usize)>| matches!(r, Ok((b, 0)) if b.first() == Some(&3));
    // A Signal request carrying descriptors it does not take.
    let mut sig = vec![2u8];
    sig.extend_from_slice(&999u64.to_le_bytes());
    sig.extend_from_slice(&0i32.to_le_bytes());
    let r1 = refused(sv.raw_request(&sig, &[p[0], p[1]]));
    // Garbage, a bad tag, a truncated spawn, an empty datagram.
    let r2 = refused(sv.raw_request(&[1, 2, 3], &[p[0]]));
    let r3 = refused(sv.raw_request(&[77], &[]));
    let r4 = refused(sv.raw_request(&[], &[]));
    // Two SCM_RIGHTS control messages in one datagram, plus SCM_CREDENTIALS.
    let r5 = two_cmsgs(sv, p[0], p[1]);
    // SAFETY: closing our pipe ends.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
    let after = quiesced_fd_count(sv, live);
    // The supervisor still works.
    let alive = sv
        .spawn("idle", b"", &SandboxSpec::default())
        .map(|h| h.kill().is_ok())
        .unwrap_or(false);
    t.check(
        "case 24",
        r1 && r2 && r3 && r4 && r5 && before.is_some() && before == after && alive,
        &format!(
            "extra fds refused={r1}, garbage refused={r2}, bad tag refused={r3}, empty refused={r4}, \
             second cmsg/credentials refused={r5}, supervisor fds {before:?}->{after:?} (extras closed), still serving={alive}"
        ),
    );
}

/// Sends a datagram with two SCM_RIGHTS messages and an SCM_CREDENTIALS one.
fn two_cmsgs(sv: &Supervisor, a: i32, b: i32) -> bool {
    let sock = sv.raw_socket();
    let data = [3u8, 0, 0, 0, 0, 0, 0, 0, 0];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 32];
    // SAFETY: building three control messages in an aligned buffer big enough for them.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        let one = libc::CMSG_SPACE(4) as usize;
        let cred = libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32) as usize;
        msg.msg_controllen = 2 * one + cred;
        let c1 = libc::CMSG_FIRSTHDR(&msg);
        (*c1).cmsg_level = libc::SOL_SOCKET;
        (*c1).cmsg_type = libc::SCM_RIGHTS;
        (*c1).cmsg_len = libc::CMSG_LEN(4) as usize;
        *(libc::CMSG_DATA(c1) as *mut i32) = a;
        let c2 = libc::CMSG_NXTHDR(&msg, c1);
        (*c2).cmsg_level = libc::SOL_SOCKET;
        (*c2).cmsg_type = libc::SCM_RIGHTS;
        (*c2).cmsg_len = libc::CMSG_LEN(4) as usize;
        *(libc::CMSG_DATA(c2) as *mut i32) = b;
        let c3 = libc::CMSG_NXTHDR(&msg, c2);
        (*c3).cmsg_level = libc::SOL_SOCKET;
        (*c3).cmsg_type = libc::SCM_CREDENTIALS;
        (*c3).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::ucred>() as u32) as usize;
        // Spoofed: claim to be pid 1 / uid 0 (accepted by the kernel only for root).
        *(libc::CMSG_DATA(c3) as *mut libc::ucred) = libc::ucred {
            pid: 1,
            uid: 0,
            gid: 0,
        };
        let mut r = libc::sendmsg(sock, &msg, 0);
        if r < 0 {
            // Unprivileged: the kernel refuses the spoofed credentials itself.
            msg.msg_controllen = 2 * one;
            r = libc::sendmsg(sock, &msg, 0);
        }
        if r < 0 {
            return false;
        }
        let reply = recv(sock).unwrap_or_default();
        reply.first() == Some(&3)
    }
}

/// Case 24 from the sandbox's side: hostile frames on its control socket,
/// one per "step" from the host (see `case24_peer`).
fn peer_frames(ctx: EntryContext) -> i32 {
    let ctl = ctx.control.as_raw_fd();
    let mut p = [0; 2];
    // SAFETY: p is writable.
    if unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return 2;
    }
    // SAFETY: getpid/getuid/getgid have no preconditions.
    let own = unsafe {
        libc::ucred {
            pid: libc::getpid(),
            uid: libc::getuid(),
            gid: libc::getgid(),
        }
    };
    let spoofed = libc::ucred {
        pid: 1,
        uid: 0,
        gid: 0,
    };
    let step = || recv(ctl).is_some_and(|b| b == b"step");
    // 1: more descriptors than the host takes.
    if !step() || send_cmsgs(ctl, b"extra", &[&[p[0], p[1], p[0]]], None).is_err() {
        return 3;
    }
    // 2: two SCM_RIGHTS messages in one datagram.
    if !step() || send_cmsgs(ctl, b"two", &[&[p[0]], &[p[1]]], None).is_err() {
        return 4;
    }
    // 3: spoofed credentials (PID 1's pid, with no capability to claim it).
    if !step() {
        return 5;
    }
    let spoof = match send_cmsgs(ctl, b"spoof", &[&[p[0]]], Some(spoofed)) {
        Ok(()) => "sent".to_string(),
        Err(e) => errname(e),
    };
    send(ctl, format!("spoof {spoof}").as_bytes());
    // 4: its own credentials with a descriptor (the host passes credentials now).
    if !step() || send_cmsgs(ctl, b"creds", &[&[p[0]]], Some(own)).is_err() {
        return 6;
    }
    // 5: a frame larger than the host's buffer, with a descriptor.
    if !step() || send_cmsgs(ctl, &[7u8; 4096], &[&[p[0]]], None).is_err() {
        return 7;
    }
    // 6: a well-formed frame with one descriptor (positive control).
    if !step() || send_cmsgs(ctl, b"ok", &[&[p[0]]], None).is_err() {
        return 8;
    }
    0
}

/// Sends `data` with one `SCM_RIGHTS` message per entry of `rights` and
/// optionally `SCM_CREDENTIALS`; the errno on failure.
fn send_cmsgs(
    sock: i32,
    data: &[u8],
    rights: &[&[i32]],
    creds: Option<libc::ucred>,
) -> Result<(), i32> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut _,
        iov_len: data.len(),
    };
    let mut cbuf = [0u64; 64];
    // SAFETY: the control messages are built inside an aligned buffer that
    // is large enough for them (at most a few descriptors and one ucred).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        let cred_len = std::mem::size_of::<libc::ucred>() as u32;
        let mut total = 0usize;
        for r in rights {
            total += libc::CMSG_SPACE(std::mem::size_of_val(*r) as u32) as usize;
        }
        if creds.is_some() {
            total += libc::CMSG_SPACE(cred_len) as usize;
        }
        msg.msg_controllen = total;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        for r in rights {
            let bytes = std::mem::size_of_val(*r) as u32;
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(bytes) as usize;
            std::ptr::copy_nonoverlapping(r.as_ptr(), libc::CMSG_DATA(c).cast(), r.len());
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        if let Some(cr) = creds {
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_CREDENTIALS;
            (*c).cmsg_len = libc::CMSG_LEN(cred_len) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c).cast(), cr);
        }
        if libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// Open descriptors of this process among 0..4096 (probed, none opened).
fn open_fds() -> Vec<i32> {
    (0..4096)
        // SAFETY: F_GETFD only queries.
        .filter(|fd| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0)
        .collect()
}

/// Case 24 with the frames coming FROM a sandboxed peer, read by the host
/// with `SandboxHandle::recv_control`: extra descriptors, a second
/// `SCM_RIGHTS`, credentials (spoofed ones are refused by the kernel;
/// genuine ones, passed because the host enabled `SO_PASSCRED`, make the
/// frame rejected), a truncated frame: each rejected with every descriptor
/// closed on the host (its descriptor set is unchanged); a well-formed
/// frame is accepted.
fn case24_peer(t: &mut Tally, sv: &Supervisor) {
    let name = "case 24 from the sandbox: hostile control frames rejected, extras closed";
    let h = match sv.spawn("peer_frames", b"", &SandboxSpec::default()) {
        Ok(h) => h,
        Err(e) => return t.check(name, false, &format!("spawn: {e}")),
    };
    let ctl = h.control().as_raw_fd();
    let passcred = |on: i32| {
        // SAFETY: setting an int socket option on our own socket.
        unsafe {
            libc::setsockopt(
                ctl,
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        }
    };
    let baseline = open_fds();
    let mut buf = [0u8; 1024];
    let mut out = Vec::new();
    let mut ok = true;
    let next = |buf: &mut [u8], max: usize| {
        send(ctl, b"step");
        if luring_sandbox::sys::poll_one(ctl, libc::POLLIN, 30_000).unwrap_or(0) == 0 {
            return Err(None);
        }
        h.recv_control(buf, max).map_err(Some)
    };
    let r1 = next(&mut buf, 2);
    ok &= matches!(r1, Err(Some(ControlError::TooManyFds { got: 3, max: 2 })));
    out.push(format!("3 fds (max 2): {r1:?}"));
    let r2 = next(&mut buf, 1);
    ok &= matches!(
        r2,
        Err(Some(ControlError::TooManyFds { .. })) | Err(Some(ControlError::ControlMessage))
    );
    out.push(format!("two SCM_RIGHTS: {r2:?}"));
    let r3 = next(&mut buf, 1);
    let spoof = match &r3 {
        Ok(f) if f.fds.is_empty() => String::from_utf8_lossy(&buf[..f.len]).into_owned(),
        other => format!("{other:?}"),
    };
    ok &= spoof == "spoof EPERM";
    out.push(format!("spoofed credentials: {spoof}"));
    passcred(1);
    let r4 = next(&mut buf, 1);
    passcred(0);
    ok &= matches!(r4, Err(Some(ControlError::ControlMessage)));
    out.push(format!("credentials: {r4:?}"));
    let r5 = next(&mut buf, 1);
    ok &= matches!(r5, Err(Some(ControlError::Truncated)));
    out.push(format!("4 KiB into 1 KiB: {r5:?}"));
    let rejected_closed = open_fds() == baseline;
    let r6 = next(&mut buf, 1);
    let accepted = matches!(&r6, Ok(f) if f.fds.len() == 1 && &buf[..f.len] == b"ok");
    drop(r6);
    let mut h = h;
    let st = h.wait_timeout(30_000);
    ok &= accepted && rejected_closed && open_fds() == baseline;
    t.check(
        name,
        ok && matches!(st, Ok(Some(ExitStatus::Exited(0)))),
        &format!(
            "{}; host descriptors unchanged after the rejected frames={rejected_closed}; well-formed frame accepted={accepted}; sandbox {st:?}",
            out.join("; ")
        ),
    );
}

fn main() {
    register_entry("probe", probe).unwrap();
    register_entry("idle", idle).unwrap();
    register_entry("peer_frames", peer_frames).unwrap();
    register_pooled_entry("pooled_probe", pooled_probe).unwrap();
    let fx = Fixture::new();
    let code = common::run_as_users(suite);
    let _ = std::fs::remove_dir_all(&fx.dir);
    std::process::exit(code);
}
