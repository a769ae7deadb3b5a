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
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the probe is told (newline-separated): case, supervisor pid,
/// sibling pid, abstract socket name, pathname socket, ro dir, rw dir.
struct Info {
    case: u32,
    sup_pid: i32,
    sibling_pid: i32,
    abstract_name: String,
    sock_path: String,
    ro: String,
    rw: String,
}

impl Info {
    fn encode(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.case,
            self.sup_pid,
            self.sibling_pid,
            self.abstract_name,
            self.sock_path,
            self.ro,
            self.rw
        )
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
            sock_path: v[4].into(),
            ro: v[5].into(),
            rw: v[6].into(),
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
    /// Records that an attempt was denied (an error, never success).
    fn denied(&mut self, what: &str, r: Result<i64, i32>) {
        match r {
            Ok(v) => self.fails.push(format!("{what}: SUCCEEDED ({v})")),
            Err(e) => self.notes.push(format!("{what}: {}", errname(e))),
        }
    }
    /// Records that an attempt was denied with one of `want`.
    fn denied_with(&mut self, what: &str, r: Result<i64, i32>, want: &[i32]) {
        match r {
            Ok(v) => self.fails.push(format!("{what}: SUCCEEDED ({v})")),
            Err(e) if want.contains(&e) => self.notes.push(format!("{what}: {}", errname(e))),
            Err(e) => self
                .fails
                .push(format!("{what}: unexpected {}", errname(e))),
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

fn connect_unix(path: &[u8]) -> Result<i64, i32> {
    // SAFETY: socket with integer arguments.
    let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(errno());
    }
    // SAFETY: sockaddr_un is plain data.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as u16;
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    let len = (std::mem::size_of::<libc::sa_family_t>() + path.len()) as u32;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes.
    let r =
        sys(unsafe { libc::connect(s, &addr as *const _ as *const libc::sockaddr, len) } as i64);
    // SAFETY: closing our socket.
    unsafe { libc::close(s) };
    r
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
            p.denied(
                "IoUring::new",
                IoUring::new(8)
                    .map(|_| 0)
                    .map_err(|e| e.raw_os_error().unwrap_or(0)),
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
        }
        3 => {
            let reg = |op: u32, arg: *const libc::c_void, n: u32| {
                // SAFETY: io_uring_register on our ring with a small valid buffer.
                sys(unsafe { libc::syscall(libc::SYS_io_uring_register, ring_fd, op, arg, n) })
            };
            let zero = [0u64; 64];
            let z = zero.as_ptr().cast();
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
                p.denied(name, reg(op, z, n));
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
            let mut e = opcode::Nop::new()
                .build()
                .flags(fixed_flags())
                .personality(1);
            let r = ring_op(&mut ctx.ring, e.clone());
            p.ok(
                "SQE naming personality 1",
                r < 0,
                format!("res={}", errname(-r)),
            );
            e = opcode::Nop::new()
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
            p.denied("open /etc/passwd", open("/etc/passwd", libc::O_RDONLY));
            p.denied(
                "open /proc/self/root/etc/passwd",
                open("/proc/self/root/etc/passwd", libc::O_RDONLY),
            );
            p.denied(
                "open /proc/1/root/etc/passwd",
                open("/proc/1/root/etc/passwd", libc::O_RDONLY),
            );
            p.denied(
                "open ../../../../etc/passwd",
                open("../../../../etc/passwd", libc::O_RDONLY),
            );
            p.denied(
                "open <ro>/../../../../etc/passwd",
                open(
                    &format!("{}/../../../../etc/passwd", info.ro),
                    libc::O_RDONLY,
                ),
            );
            let ok = read_file(&format!("{}/file.txt", info.ro)).as_deref() == Some("granted");
            p.ok("positive: read <ro>/file.txt", ok, format!("{ok}"));
        }
        6 => {
            p.ok(
                "positive: openat(granted dir, file.txt)",
                openat(ro_dir, "file.txt", libc::O_RDONLY).is_ok(),
                String::new(),
            );
            p.denied(
                "openat(granted dir, ../outside.txt)",
                openat(ro_dir, "../outside.txt", libc::O_RDONLY),
            );
            p.denied(
                "openat(granted dir, ../../../../etc/passwd)",
                openat(ro_dir, "../../../../etc/passwd", libc::O_RDONLY),
            );
            p.denied(
                "openat(granted dir, relative symlink out)",
                openat(ro_dir, "escape", libc::O_RDONLY),
            );
            p.denied(
                "openat(granted dir, absolute symlink)",
                openat(ro_dir, "abs", libc::O_RDONLY),
            );
            // SAFETY: opening ".." of the granted dir as O_PATH, then using it.
            let up =
                unsafe { libc::openat(ro_dir, c"..".as_ptr(), libc::O_PATH | libc::O_DIRECTORY) };
            if up >= 0 {
                p.denied(
                    "openat(\"..\" of granted dir, outside.txt)",
                    openat(up, "outside.txt", libc::O_RDONLY),
                );
                // SAFETY: closing our descriptor.
                unsafe { libc::close(up) };
            } else {
                p.notes
                    .push(format!("open .. of granted dir: {}", errname(errno())));
            }
            p.denied(
                "openat(granted ro dir, new file, O_CREAT)",
                openat(ro_dir, "new", libc::O_CREAT | libc::O_WRONLY),
            );
            // rw path grant: writes inside work, renames out do not
            let a = format!("{}/a", info.rw);
            let ok = std::fs::write(&a, b"x").is_ok()
                && std::fs::create_dir(format!("{}/d", info.rw)).is_ok();
            p.ok("positive: write and mkdir in <rw>", ok, format!("{ok}"));
            let rn = |from: &str, to: &str| {
                let (f, t) = (c(from), c(to));
                // SAFETY: valid paths.
                sys(unsafe { libc::rename(f.as_ptr(), t.as_ptr()) } as i64)
            };
            p.denied(
                "rename <rw>/a to <rw>/../a",
                rn(&a, &format!("{}/../a", info.rw)),
            );
            p.denied("rename <rw>/d to /d", rn(&format!("{}/d", info.rw), "/d"));
            let l = (c(&a), c(&format!("{}/../link", info.rw)));
            // SAFETY: valid paths.
            p.denied(
                "link <rw>/a out of <rw>",
                sys(unsafe { libc::link(l.0.as_ptr(), l.1.as_ptr()) } as i64),
            );
            let s = (c("/etc/passwd"), c(&format!("{}/sym", info.rw)));
            // SAFETY: valid paths.
            let made = unsafe { libc::symlink(s.0.as_ptr(), s.1.as_ptr()) } == 0;
            p.denied(
                &format!("follow a symlink made in <rw> (made={made})"),
                open(&format!("{}/sym", info.rw), libc::O_RDONLY),
            );
        }
        7 => {
            let ch = b'x';
            // SAFETY: ioctl with a valid pointer argument.
            p.denied_with(
                "ioctl TIOCSTI",
                sys(unsafe { libc::ioctl(0, libc::TIOCSTI, &ch) } as i64),
                &[libc::EPERM],
            );
            // SAFETY: raw ioctl with bit 32 set in the command.
            p.denied_with(
                "ioctl TIOCSTI|1<<32",
                sys(unsafe { libc::syscall(libc::SYS_ioctl, 0, libc::TIOCSTI | (1 << 32), &ch) }),
                &[libc::EPERM],
            );
            // SAFETY: raw ioctl.
            p.denied_with(
                "ioctl TIOCLINUX",
                sys(unsafe { libc::syscall(libc::SYS_ioctl, 0, 0x541Cu64, &ch) }),
                &[libc::EPERM],
            );
            p.denied("open /dev/tty", open("/dev/tty", libc::O_RDWR));
            let mut sid = 0;
            // SAFETY: ioctl with a valid pointer.
            p.denied(
                "TIOCGSID on stdin (no controlling terminal)",
                sys(unsafe { libc::ioctl(0, libc::TIOCGSID, &mut sid) } as i64),
            );
        }
        8 => {
            let mut name = vec![0u8];
            name.extend_from_slice(info.abstract_name.as_bytes());
            p.denied("connect to the host's abstract socket", connect_unix(&name));
            p.denied(
                "connect to @/tmp/.X11-unix/X0",
                connect_unix(b"\0/tmp/.X11-unix/X0"),
            );
        }
        9 => {
            p.denied(
                "connect to a host pathname socket",
                connect_unix(info.sock_path.as_bytes()),
            );
            p.denied(
                "connect to /run/dbus/system_bus_socket",
                connect_unix(b"/run/dbus/system_bus_socket"),
            );
            p.denied(
                "connect to /var/run/docker.sock",
                connect_unix(b"/var/run/docker.sock"),
            );
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
            // SAFETY: socket with integer arguments.
            let u = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) };
            p.ok("positive: socket AF_UNIX", u >= 0, String::new());
        }
        11 => {
            // SAFETY: kill/pidfd_open with integer arguments.
            p.denied(
                "kill(supervisor pid, 0)",
                sys(unsafe { libc::kill(info.sup_pid, 0) } as i64),
            );
            p.denied(
                "kill(sibling sandbox pid, 0)",
                sys(unsafe { libc::kill(info.sibling_pid, 0) } as i64),
            );
            p.denied(
                "pidfd_open(supervisor pid)",
                sys(unsafe { libc::syscall(libc::SYS_pidfd_open, info.sup_pid, 0) }),
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
            p.denied("open /proc/1/mem", open("/proc/1/mem", libc::O_RDONLY));
            p.denied(
                "open /proc/1/environ",
                open("/proc/1/environ", libc::O_RDONLY),
            );
            p.denied(
                "open /proc/self/mem for writing",
                open("/proc/self/mem", libc::O_RDWR),
            );
        }
        13 => {
            p.denied(
                "open /proc/self/exe O_WRONLY",
                open("/proc/self/exe", libc::O_WRONLY),
            );
            p.denied(
                "open /proc/self/exe O_RDWR",
                open("/proc/self/exe", libc::O_RDWR),
            );
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
            let m = unsafe { libc::memfd_create(c"x".as_ptr(), 0) };
            p.ok("positive: memfd_create", m >= 0, String::new());
            // SAFETY: writing a small ELF-ish header and trying to exec it.
            unsafe { libc::write(m, b"\x7fELF".as_ptr().cast(), 4) };
            p.denied_with(
                "execveat(memfd, AT_EMPTY_PATH)",
                sys(unsafe {
                    libc::syscall(
                        libc::SYS_execveat,
                        m,
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
            p.denied(
                "openat(granted dir, ../outside.txt) still denied",
                openat(ro_dir, "../outside.txt", libc::O_RDONLY),
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
            p.denied(
                "granted file after tightening",
                openat(ro_dir, "file.txt", libc::O_RDONLY),
            );
        }
        21 => {
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
                r < 0,
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
            p.denied(
                "reopen granted read-only fd O_RDWR via /proc/self/fd",
                open(&path, libc::O_RDWR),
            );
            p.denied(
                "reopen granted read-only fd O_WRONLY via /proc/self/fd",
                open(&path, libc::O_WRONLY),
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
            p.denied(
                "write the granted read-only fd",
                sys(unsafe { libc::write(ro_file, b.as_ptr().cast(), 1) } as i64),
            );
        }
        26 => {
            let ro = info.ro.clone();
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
                let outside = std::fs::read(format!("{ro}/../outside.txt")).is_err();
                (seccomp, nnp, mount < 0, outside)
            });
            let (s, n, m, o) = h.join().unwrap_or((false, false, false, false));
            p.ok(
                "new thread: Seccomp 2, NoNewPrivs 1, mount denied, Landlock holds",
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
            p.denied(
                "open /sys/fs/cgroup",
                open("/sys/fs/cgroup", libc::O_RDONLY | libc::O_DIRECTORY),
            );
            let d = c("/sys");
            // SAFETY: valid path.
            p.denied(
                "mkdir /sys (root is read-only)",
                sys(unsafe { libc::mkdir(d.as_ptr(), 0o755) } as i64),
            );
            let t = c("/cgroup");
            // SAFETY: valid path.
            p.denied(
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
            );
            let cg = read_file("/proc/self/cgroup").unwrap_or_default();
            p.notes.push(format!("/proc/self/cgroup = {:?}", cg.trim()));
        }
        _ => p.fails.push(format!("unknown case {case}")),
    }
}

/// Blocks until the host closes the control socket.
fn idle(ctx: EntryContext) -> i32 {
    let _ = recv(ctx.control.as_raw_fd());
    0
}

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
    // Host-side resources the probe tries to reach.
    let abstract_name = format!(
        "luring-battery-{}-{}",
        std::process::id(),
        t.user.replace(' ', "")
    );
    let abs_listener = {
        // SAFETY: socket/bind/listen on a fresh socket with a valid address.
        unsafe {
            let s = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
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
    let sock_path = fx
        .dir
        .join(format!("host-{}.sock", t.user.replace(' ', "")));
    let _ = std::fs::remove_file(&sock_path);
    let path_listener = std::os::unix::net::UnixListener::bind(&sock_path).ok();
    let sibling = sv.spawn("idle", b"", &SandboxSpec::default());

    let ro = fx.dir.join("ro");
    // A read-write directory of this user's own.
    let rw = fx.dir.join(format!("rw-{}", t.user.replace(' ', "")));
    let _ = std::fs::create_dir(&rw);
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&rw, std::fs::Permissions::from_mode(0o777));
    }
    let cases: Vec<u32> = (1..=21)
        .chain(23..=27)
        .filter(|c| *c != 22 && *c != 24)
        .collect();
    for case in cases {
        let spec = SandboxSpec {
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
            ],
            mount_proc: true,
            stderr: Stdio::Inherit,
            ..Default::default()
        };
        let info = Info {
            case,
            sup_pid: sv.pid(),
            sibling_pid: sibling.as_ref().map(|s| s.pid()).unwrap_or(1),
            abstract_name: abstract_name.clone(),
            sock_path: sock_path.to_string_lossy().into_owned(),
            ro: ro.to_string_lossy().into_owned(),
            rw: rw.to_string_lossy().into_owned(),
        };
        let name = format!("case {case:2}");
        let mut h = match sv.spawn("probe", &info.encode(), &spec) {
            Ok(h) => h,
            Err(e) => {
                t.check(&name, false, &format!("spawn failed: {e}"));
                continue;
            }
        };
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
                t.check(
                    &name,
                    false,
                    &format!("installing the capability failed: {e}"),
                );
            }
        }
        send(h.control().as_raw_fd(), b"go");
        let st = h.wait_timeout(20_000).ok().flatten();
        let report = try_recv(h.control().as_raw_fd())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|| "(no report)".into());
        let ok = st == Some(ExitStatus::Exited(0)) && !report.contains("FAIL");
        let st_s = st
            .map(|s| s.to_string())
            .unwrap_or_else(|| "timed out".into());
        t.check(&name, ok, &format!("{st_s}: {report}"));
        if st.is_none() {
            let _ = h.kill();
        }
    }

    // Case 24: extra descriptors, a second control message, spoofed
    // credentials, malformed frames: refused, extras closed, supervisor alive.
    let live: Vec<i32> = sibling.iter().map(|s| s.pid()).collect();
    case24(t, &sv, &live);
    case24_peer(t, &sv);

    drop(path_listener);
    let _ = std::fs::remove_file(&sock_path);
    // SAFETY: closing our listener.
    unsafe { libc::close(abs_listener) };
    drop(sibling);
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
    let fx = Fixture::new();
    let code = common::run_as_users(suite);
    let _ = std::fs::remove_dir_all(&fx.dir);
    std::process::exit(code);
}
