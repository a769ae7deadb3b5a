//! TCP echo benchmark (issue 9): the same load against three servers in the
//! same run.
//!
//! | server | what runs on 127.0.0.1:PORT, pinned to CPU 0 |
//! |---|---|
//! | luring | `luring examples/echo_server.lua PORT` (skipped, saying why, until that script exists) |
//! | tokio | this binary re-executed as `--serve tokio PORT`: a current-thread runtime, one task per connection, `read` + `write_all` |
//! | io-uring | this binary re-executed as `--serve uring PORT`: one ring, multishot accept, one recv or send in flight per connection, one `io_uring_enter` per loop turn |
//!
//! The load generator runs in this process, pinned to CPU 1: one thread and
//! one io_uring ring (no SQPOLL) driving CONNS connections (50); each sends
//! a 64-byte message (its sequence number and a pattern), waits for all 64
//! bytes to come back, checks them and sends the next. All connections'
//! sends and receives are submitted in batches with one `io_uring_enter` per
//! loop turn, so the client spends far less CPU per message than a
//! thread-per-connection client would. A warm-up (a tenth of the run, at
//! most 1 s) is not counted; then for SECS seconds every echoed message
//! counts and its latency (send submitted → whole echo reaped) goes into a
//! sorted sample for p50/p99.
//!
//! Syscalls per echoed message are counted in a separate, shorter pass per
//! server (the counter slows the server): the server is started under
//! `perf stat -e raw_syscalls:sys_enter` (or `strace -f -c` when perf cannot
//! count that tracepoint), loaded for SYSCALL_SECS, stopped with SIGTERM, and
//! every system call of all its threads over its whole life (start-up and
//! accepts included) is divided by every message it echoed.
//!
//! Server CPU per message: the server's user + system time over its whole
//! life in a measured run (`getrusage` of the reaped child), divided by
//! every message it echoed; steadier than msgs/s when the machine is shared.
//! Load CPU per message: the load generator thread's user + system time over
//! the run (warm-up included, connecting not), divided by the same count;
//! each run's line also gives its ring turns per message. With server and
//! load generator on different CPUs both are busy nearly all the time and
//! each pays for waking the other, so the server's way of answering shows
//! on both sides (docs/performance.md "echopin").
//!
//! Settings (environment): LURING_BENCH_SECS (10), LURING_BENCH_RUNS (5),
//! LURING_BENCH_CONNS (50), LURING_BENCH_SYSCALL_SECS (min(SECS, 3)),
//! LURING_BENCH_SERVER_CPU (0; 1 puts each server on the load generator's
//! CPU, where every echo figure before 2026-12-04 09:00 UTC was measured:
//! docs/performance.md "echoflush"),
//! LURING_BENCH_SYSCALL_COUNTER (`perf`, `strace` or `none`; default perf if
//! it works, else strace), LURING_BENCH_REF_BIN (another `luring` binary,
//! say main's, served as `luring-ref` in the same runs: an A/B within one
//! run). Arguments select servers: `luring`, `luring-ref`, `tokio`, `uring`
//! (default all; `luring-ref` only when LURING_BENCH_REF_BIN is set).
//! LURING_BENCH_URING (read by the io-uring server): a comma-separated list
//! of kernel features to probe, for measuring what they save on the kernel
//! path with no user code in the way (docs/performance.md "echo-kern"):
//! `fixed` (each socket in the ring's sparse fixed-file table, every recv
//! and send with `IOSQE_FIXED_FILE`), `defer` (`SINGLE_ISSUER` +
//! `DEFER_TASKRUN`), `coop` (`COOP_TASKRUN` + `TASKRUN_FLAG`, as luring's
//! rings), `multishot` (one multishot recv per connection into a provided
//! buffer ring, copied out as it comes, instead of a recv per message). To
//! A/B one against the plain server in the same runs, serve it as
//! `luring-ref` through a two-line script that runs `env
//! LURING_BENCH_URING=... <this binary> --serve uring "$2"`.
//!
//! Run: `cargo bench --bench echo` or e.g.
//! `LURING_BENCH_SECS=1 LURING_BENCH_RUNS=1 cargo bench --bench echo -- tokio uring`.

#[path = "io_common/mod.rs"]
mod io_common;

use io_common::{env_or, median, pin_command, pin_current_thread, usable_cpus};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MESSAGE_LEN: usize = 64;
/// The servers' CPU unless LURING_BENCH_SERVER_CPU says otherwise.
const SERVER_CPU: usize = 0;
const LOAD_CPU: usize = 1;
/// The CPU each server is pinned to, set once the load generator runs
/// pinned to `LOAD_CPU` (`usize::MAX`: none).
static SERVER_PIN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(usize::MAX);
/// How long a server may take to start listening, and how long the load may
/// go without any completion before the run is declared stuck.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Server {
    Luring,
    LuringRef,
    Tokio,
    Uring,
}

impl Server {
    const ALL: [Server; 4] = [
        Server::Luring,
        Server::LuringRef,
        Server::Tokio,
        Server::Uring,
    ];

    fn name(self) -> &'static str {
        match self {
            Server::Luring => "luring",
            Server::LuringRef => "luring-ref",
            Server::Tokio => "tokio",
            Server::Uring => "uring",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Server::Luring => "luring (echo_server.lua)",
            Server::LuringRef => "luring-ref (LURING_BENCH_REF_BIN)",
            Server::Tokio => "tokio (current thread)",
            Server::Uring => "io-uring (plain)",
        }
    }

    /// The command that serves on `port`, or why it cannot run here.
    fn command(self, port: u16) -> Result<Command, String> {
        match self {
            Server::Luring | Server::LuringRef => {
                let script = echo_script();
                if !script.exists() {
                    return Err(format!("{} does not exist yet", script.display()));
                }
                let bin = match self {
                    Server::LuringRef => {
                        io_common::reference_bin().ok_or("LURING_BENCH_REF_BIN is not set")?
                    }
                    _ => io_common::luring_bin().into(),
                };
                let mut c = Command::new(bin);
                c.arg(script).arg(port.to_string());
                Ok(c)
            }
            Server::Tokio | Server::Uring => {
                let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
                let mut c = Command::new(exe);
                c.args(["--serve", self.name(), &port.to_string()]);
                Ok(c)
            }
        }
    }
}

fn echo_script() -> PathBuf {
    io_common::repo().join("examples/echo_server.lua")
}

// ---------------------------------------------------------------------------
// Reference servers (run in a re-executed copy of this binary).

fn serve(kind: &str, port: u16) {
    match kind {
        "tokio" => tokio_server(port),
        "uring" => uring_server(port),
        other => {
            eprintln!("unknown server {other:?}: use tokio or uring");
            std::process::exit(2)
        }
    }
}

/// Current-thread tokio runtime, one task per connection.
fn tokio_server(port: u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("tokio server binds");
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    let n = match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if socket.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// One connection of the io-uring server. Exactly one op (recv or send) is
/// in flight for it at any time, and it is dropped (closing the socket) only
/// when that op has completed, so the buffer outlives every op that uses it.
struct UringConn {
    socket: OwnedFd,
    buf: Box<[u8; 4096]>,
    len: usize,
    sent: usize,
}

const OP_RECV: u64 = 0;
const OP_SEND: u64 = 1;
const ACCEPT_TOKEN: u64 = u64::MAX;

fn token(conn: usize, op: u64) -> u64 {
    ((conn as u64) << 1) | op
}

/// Pushes `sqe`, submitting first when the queue is full.
fn push(ring: &mut io_uring::IoUring, sqe: io_uring::squeue::Entry) {
    loop {
        // SAFETY: every entry built in this file points into a buffer owned
        // by a connection record that lives until the entry's completion.
        if unsafe { ring.submission().push(&sqe) }.is_ok() {
            return;
        }
        ring.submit().expect("io_uring_enter");
    }
}

/// The kernel features LURING_BENCH_URING asks the io-uring server for.
#[derive(Clone, Copy, Default)]
struct UringProbe {
    fixed: bool,
    defer: bool,
    coop: bool,
    multishot: bool,
}

impl UringProbe {
    fn from_env() -> Self {
        let mut p = UringProbe::default();
        for word in std::env::var("LURING_BENCH_URING")
            .unwrap_or_default()
            .split(',')
        {
            match word.trim() {
                "" => {}
                "fixed" => p.fixed = true,
                "defer" => p.defer = true,
                "coop" => p.coop = true,
                "multishot" => p.multishot = true,
                other => {
                    eprintln!("LURING_BENCH_URING: unknown feature {other:?} (fixed, defer, coop, multishot)");
                    std::process::exit(2)
                }
            }
        }
        p
    }
}

/// Connection `i`'s socket as an SQE names it: its fixed slot (slot `i`)
/// or its fd.
macro_rules! uring_target {
    ($probe:expr, $c:expr, $i:expr, |$t:ident| $build:expr) => {
        if $probe.fixed {
            let $t = io_uring::types::Fixed($i as u32);
            $build
        } else {
            let $t = io_uring::types::Fd($c.socket.as_raw_fd());
            $build
        }
    };
}

fn uring_recv(
    ring: &mut io_uring::IoUring,
    probe: UringProbe,
    conns: &mut [Option<UringConn>],
    i: usize,
) {
    use io_uring::opcode;
    let c = conns[i].as_mut().expect("live connection");
    let sqe = if probe.multishot {
        uring_target!(probe, c, i, |t| opcode::RecvMulti::new(t, BUF_GROUP)
            .build())
    } else {
        let (ptr, len) = (c.buf.as_mut_ptr(), c.buf.len() as u32);
        uring_target!(probe, c, i, |t| opcode::Recv::new(t, ptr, len).build())
    };
    push(ring, sqe.user_data(token(i, OP_RECV)));
}

/// The provided buffers of the `multishot` probe: a buffer ring of
/// `BUF_COUNT` entries (page-aligned, as the kernel wants) over
/// `BUF_COUNT` buffers of `BUF_SIZE` bytes. Registered once and never
/// unregistered: the server runs until it is killed.
const BUF_GROUP: u16 = 0;
const BUF_COUNT: usize = 512;
const BUF_SIZE: usize = 2048;

struct BufRing {
    entries: *mut io_uring::types::BufRingEntry,
    bufs: Box<[u8]>,
    tail: u16,
}

impl BufRing {
    fn register(ring: &io_uring::IoUring) -> Self {
        let layout = std::alloc::Layout::from_size_align(
            BUF_COUNT * std::mem::size_of::<io_uring::types::BufRingEntry>(),
            4096,
        )
        .expect("buffer ring layout");
        // SAFETY: a non-zero size; the memory is never freed (see above).
        let entries: *mut io_uring::types::BufRingEntry =
            unsafe { std::alloc::alloc_zeroed(layout) }.cast();
        assert!(!entries.is_null(), "buffer ring allocation");
        let mut br = BufRing {
            entries,
            bufs: vec![0u8; BUF_COUNT * BUF_SIZE].into_boxed_slice(),
            tail: 0,
        };
        for bid in 0..BUF_COUNT {
            br.give(bid as u16);
        }
        // SAFETY: `entries` holds BUF_COUNT entries and lives (with the
        // buffers they point at) for the process's life.
        unsafe {
            ring.submitter().register_buf_ring_with_flags(
                entries as u64,
                BUF_COUNT as u16,
                BUF_GROUP,
                0,
            )
        }
        .expect("register the buffer ring (Linux 5.19 or later)");
        br
    }

    /// Hands buffer `bid` (back) to the kernel.
    fn give(&mut self, bid: u16) {
        // SAFETY: the index is masked into the ring; the entry's buffer is
        // inside `bufs`; the tail is published with release ordering
        // after the entry is written, as the kernel reads it.
        unsafe {
            let e = &mut *self.entries.add(usize::from(self.tail) & (BUF_COUNT - 1));
            e.set_addr(self.bufs.as_ptr().add(usize::from(bid) * BUF_SIZE) as u64);
            e.set_len(BUF_SIZE as u32);
            e.set_bid(bid);
            self.tail = self.tail.wrapping_add(1);
            let tail = io_uring::types::BufRingEntry::tail(self.entries)
                as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * BUF_SIZE;
        &self.bufs[start..start + len.min(BUF_SIZE)]
    }
}

fn uring_send(
    ring: &mut io_uring::IoUring,
    probe: UringProbe,
    conns: &mut [Option<UringConn>],
    i: usize,
) {
    use io_uring::opcode;
    let c = conns[i].as_mut().expect("live connection");
    let rest = &c.buf[c.sent..c.len];
    let (ptr, len) = (rest.as_ptr(), rest.len() as u32);
    let sqe = uring_target!(probe, c, i, |t| opcode::Send::new(t, ptr, len).build());
    push(ring, sqe.user_data(token(i, OP_SEND)));
}

fn uring_server(port: u16) {
    use io_uring::{cqueue, opcode, types};
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("io-uring server binds");
    let probe = UringProbe::from_env();
    let mut builder = io_uring::IoUring::builder();
    if probe.coop {
        builder.setup_coop_taskrun().setup_taskrun_flag();
    }
    if probe.defer {
        builder.setup_single_issuer().setup_defer_taskrun();
    }
    let mut ring = builder.build(1024).expect("io_uring_setup");
    if probe.fixed {
        ring.submitter()
            .register_files_sparse(4096)
            .expect("a sparse fixed-file table");
    }
    let mut bufs = probe.multishot.then(|| BufRing::register(&ring));
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .build()
        .user_data(ACCEPT_TOKEN);
    push(&mut ring, accept.clone());
    let mut conns: Vec<Option<UringConn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut reaped: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
    loop {
        ring.submit_and_wait(1).expect("io_uring_enter");
        reaped.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for (data, res, flags) in reaped.drain(..) {
            if data == ACCEPT_TOKEN {
                if res >= 0 {
                    // SAFETY: a successful accept completion carries a new
                    // descriptor that nothing else owns.
                    let socket = unsafe { OwnedFd::from_raw_fd(res) };
                    let stream = TcpStream::from(socket);
                    let _ = stream.set_nodelay(true);
                    let conn = UringConn {
                        socket: stream.into(),
                        buf: Box::new([0; 4096]),
                        len: 0,
                        sent: 0,
                    };
                    let i = match free.pop() {
                        Some(i) => {
                            conns[i] = Some(conn);
                            i
                        }
                        None => {
                            conns.push(Some(conn));
                            conns.len() - 1
                        }
                    };
                    if probe.fixed {
                        let fd = conns[i].as_ref().expect("just stored").socket.as_raw_fd();
                        ring.submitter()
                            .register_files_update(i as u32, &[fd])
                            .expect("a fixed-file slot for the connection");
                    }
                    uring_recv(&mut ring, probe, &mut conns, i);
                }
                if res == -libc::EINVAL {
                    eprintln!("io-uring server: multishot accept refused (EINVAL): Linux 5.19 or later is needed");
                    std::process::exit(1);
                }
                if !cqueue::more(flags) {
                    push(&mut ring, accept.clone());
                }
                continue;
            }
            let i = (data >> 1) as usize;
            let op = data & 1;
            if let (Some(br), OP_RECV) = (bufs.as_mut(), op) {
                // Multishot: re-armed when the kernel ended it (no buffer
                // was free, or it stopped on its own); never here, one
                // message at a time, while a send is in flight.
                if res == -libc::ENOBUFS {
                    uring_recv(&mut ring, probe, &mut conns, i);
                    continue;
                }
                if res <= 0 {
                    conns[i] = None;
                    free.push(i);
                    continue;
                }
                let bid = cqueue::buffer_select(flags).expect("a multishot recv's buffer");
                let c = conns[i].as_mut().expect("completion for a live connection");
                let n = res as usize;
                c.buf[..n].copy_from_slice(br.buffer(bid, n));
                br.give(bid);
                c.len = n;
                c.sent = 0;
                if !cqueue::more(flags) {
                    uring_recv(&mut ring, probe, &mut conns, i);
                }
                uring_send(&mut ring, probe, &mut conns, i);
                continue;
            }
            if res <= 0 {
                // EOF, reset or error: no op is in flight for it any more.
                conns[i] = None;
                free.push(i);
                continue;
            }
            let c = conns[i].as_mut().expect("completion for a live connection");
            if op == OP_RECV {
                c.len = res as usize;
                c.sent = 0;
                uring_send(&mut ring, probe, &mut conns, i);
            } else {
                c.sent += res as usize;
                if c.sent < c.len {
                    uring_send(&mut ring, probe, &mut conns, i);
                } else if !probe.multishot {
                    uring_recv(&mut ring, probe, &mut conns, i);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Load generator.

/// One client connection: at most one message in flight, whose send and
/// receive are both submitted when it starts. The records' vector never
/// changes once ops start (so they do not move), and is dropped only when no
/// op points into it any more.
struct ClientConn {
    stream: TcpStream,
    out: [u8; MESSAGE_LEN],
    inp: [u8; MESSAGE_LEN],
    sent: usize,
    got: usize,
    started: Instant,
    seq: u64,
}

struct LoadResult {
    /// Messages echoed in the measured window, per second.
    msgs_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// Every message echoed, warm-up included.
    total_messages: u64,
    /// The load generator's own CPU time over the run (user + system of
    /// its thread, warm-up included): with each side on its own CPU, the
    /// server's way of answering changes what the load generator pays.
    load_cpu_s: f64,
    /// Its ring turns (`io_uring_enter` calls) over the run: fewer per
    /// message means it finds more echoes per turn.
    load_turns: u64,
}

/// CPU seconds (user + system) the calling thread has used.
fn thread_cpu() -> f64 {
    // SAFETY: getrusage writes one `rusage` into the zeroed local.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid `who` and a valid out pointer.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

/// The load generator's ring and connections. `outstanding` counts the ops
/// submitted and not yet reaped; the connections are only dropped once it is
/// zero (see `Drop`).
struct Load {
    ring: io_uring::IoUring,
    clients: Vec<ClientConn>,
    outstanding: usize,
    /// `io_uring_enter` calls made by `turn`.
    turns: u64,
}

impl Load {
    fn send(&mut self, i: usize) {
        use io_uring::{opcode, types};
        let c = &self.clients[i];
        let rest = &c.out[c.sent..];
        let sqe = opcode::Send::new(
            types::Fd(c.stream.as_raw_fd()),
            rest.as_ptr(),
            rest.len() as u32,
        )
        .build()
        .user_data(token(i, OP_SEND));
        push(&mut self.ring, sqe);
        self.outstanding += 1;
    }

    fn recv(&mut self, i: usize) {
        use io_uring::{opcode, types};
        let c = &mut self.clients[i];
        let rest = &mut c.inp[c.got..];
        let sqe = opcode::Recv::new(
            types::Fd(c.stream.as_raw_fd()),
            rest.as_mut_ptr(),
            rest.len() as u32,
        )
        .build()
        .user_data(token(i, OP_RECV));
        push(&mut self.ring, sqe);
        self.outstanding += 1;
    }

    fn start_message(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.seq += 1;
        c.out[..8].copy_from_slice(&c.seq.to_le_bytes());
        c.sent = 0;
        c.got = 0;
        c.started = Instant::now();
        self.send(i);
        self.recv(i);
    }

    /// Submits what is queued, waits up to 1 s for a completion, and moves
    /// every completion into `reaped`.
    fn turn(&mut self, reaped: &mut Vec<(u64, i32)>) -> Result<(), String> {
        use io_uring::types;
        let wait_limit = types::Timespec::new().sec(1);
        let args = types::SubmitArgs::new().timespec(&wait_limit);
        self.turns += 1;
        match self.ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(e) => return Err(format!("io_uring_enter: {e}")),
        }
        let before = reaped.len();
        reaped.extend(self.ring.completion().map(|c| (c.user_data(), c.result())));
        self.outstanding -= reaped.len() - before;
        Ok(())
    }

    /// Runs the load: a warm-up, then `measure`; then lets every message in
    /// flight finish.
    fn run(&mut self, measure: Duration) -> Result<LoadResult, String> {
        let conns = self.clients.len();
        let cpu0 = thread_cpu();
        let turns0 = self.turns;
        let warm_up = (measure / 10).min(Duration::from_secs(1));
        let t0 = Instant::now();
        let (measure_from, stop_at) = (t0 + warm_up, t0 + warm_up + measure);
        let mut latencies_ns: Vec<u64> = Vec::with_capacity(1 << 20);
        let mut total_messages = 0u64;
        let mut busy = conns;
        for i in 0..conns {
            self.start_message(i);
        }
        let mut last_progress = Instant::now();
        let mut reaped: Vec<(u64, i32)> = Vec::with_capacity(4 * conns);
        while busy > 0 {
            self.turn(&mut reaped)?;
            let now = Instant::now();
            if reaped.is_empty() {
                if now - last_progress > PATIENCE {
                    return Err(format!(
                        "no echo for {PATIENCE:?}: the server stopped answering"
                    ));
                }
                continue;
            }
            last_progress = now;
            for (data, res) in reaped.drain(..) {
                let i = (data >> 1) as usize;
                if res < 0 {
                    let err = std::io::Error::from_raw_os_error(-res);
                    return Err(format!("connection {i}: {err}"));
                }
                let c = &mut self.clients[i];
                if data & 1 == OP_SEND {
                    c.sent += res as usize;
                    if c.sent < MESSAGE_LEN {
                        self.send(i);
                        continue;
                    }
                } else {
                    if res == 0 {
                        return Err(format!("connection {i}: the server closed it"));
                    }
                    c.got += res as usize;
                    if c.got < MESSAGE_LEN {
                        self.recv(i);
                        continue;
                    }
                }
                if c.sent < MESSAGE_LEN || c.got < MESSAGE_LEN {
                    continue; // the other half of this message is still in flight
                }
                if c.inp != c.out {
                    return Err(format!(
                        "connection {i}: the echo differs from the message sent"
                    ));
                }
                total_messages += 1;
                if now >= measure_from && now < stop_at {
                    latencies_ns.push((now - c.started).as_nanos() as u64);
                }
                if now < stop_at {
                    self.start_message(i);
                } else {
                    busy -= 1;
                }
            }
        }
        let measured = latencies_ns.len();
        if measured == 0 {
            return Err("no message was echoed in the measured window".into());
        }
        latencies_ns.sort_unstable();
        let pct = |p: f64| latencies_ns[((measured - 1) as f64 * p).round() as usize] as f64 / 1e3;
        Ok(LoadResult {
            msgs_per_s: measured as f64 / measure.as_secs_f64(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            total_messages,
            load_cpu_s: thread_cpu() - cpu0,
            load_turns: self.turns - turns0,
        })
    }
}

impl Drop for Load {
    /// After an error, ops may still point into the connections: shutting
    /// the sockets down completes them; the records are leaked rather than
    /// freed under an op that did not complete in time.
    fn drop(&mut self) {
        if self.outstanding == 0 {
            return;
        }
        for c in &self.clients {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        let deadline = Instant::now() + PATIENCE;
        let mut reaped = Vec::new();
        while self.outstanding > 0 && Instant::now() < deadline {
            if self.turn(&mut reaped).is_err() {
                break;
            }
            reaped.clear();
        }
        if self.outstanding > 0 {
            std::mem::forget(std::mem::take(&mut self.clients));
        }
    }
}

/// Drives `conns` connections against 127.0.0.1:`port` for a warm-up and
/// then `measure`. Errors say what the server did wrong.
fn run_load(port: u16, conns: usize, measure: Duration) -> Result<LoadResult, String> {
    let mut clients: Vec<ClientConn> = Vec::with_capacity(conns);
    for i in 0..conns {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connection {i} to port {port}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut out = [0u8; MESSAGE_LEN];
        for (k, b) in out.iter_mut().enumerate() {
            *b = (k as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        clients.push(ClientConn {
            stream,
            out,
            inp: [0; MESSAGE_LEN],
            sent: 0,
            got: 0,
            started: Instant::now(),
            seq: 0,
        });
    }
    let ring = io_uring::IoUring::new(4 * conns.next_power_of_two().max(8) as u32)
        .map_err(|e| format!("io_uring_setup: {e}"))?;
    let mut load = Load {
        ring,
        clients,
        outstanding: 0,
        turns: 0,
    };
    load.run(measure)
}

// ---------------------------------------------------------------------------
// Server processes.

/// A port that was free a moment ago (the kernel picked it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A started server: `process` is what we spawned (the server itself, or
/// the syscall counter wrapping it), `server_pid` the server.
struct Running {
    process: Child,
    server_pid: libc::pid_t,
}

/// Starts `cmd` pinned to SERVER_CPU and waits until it accepts connections
/// on `port`. With `wrapped`, `cmd` is a counter whose only child is the
/// server.
fn start_server(mut cmd: Command, port: u16, wrapped: bool) -> Result<Running, String> {
    let cpu = SERVER_PIN.load(std::sync::atomic::Ordering::Relaxed);
    if cpu != usize::MAX {
        pin_command(&mut cmd, cpu);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let mut process = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = process.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("the server exited before listening ({status})"));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if Instant::now() > deadline {
            let _ = process.kill();
            let _ = process.wait();
            return Err(format!(
                "the server did not listen on port {port} within {PATIENCE:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let server_pid = if wrapped {
        let pid = process.id();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map_err(|e| format!("children of the counter: {e}"))?;
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or("the syscall counter has no child process")?
    } else {
        process.id() as libc::pid_t
    };
    Ok(Running {
        process,
        server_pid,
    })
}

/// Stops the server with SIGTERM (SIGKILL if it is still there 5 s later)
/// and reaps what we spawned.
fn stop_server(mut running: Running) {
    // SAFETY: signals a process we started and have not reaped yet (or the
    // counter's child, which it has not reaped while it is alive).
    unsafe { libc::kill(running.server_pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match running.process.try_wait() {
            Ok(Some(_)) | Err(_) => return,
            Ok(None) if Instant::now() > deadline => {
                // SAFETY: as above.
                unsafe { libc::kill(running.server_pid, libc::SIGKILL) };
                let _ = running.process.kill();
                let _ = running.process.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

// ---------------------------------------------------------------------------
// Syscall counting.

#[derive(Clone, Copy, PartialEq)]
enum Counter {
    Perf,
    Strace,
    None,
}

impl Counter {
    fn pick() -> Counter {
        match std::env::var("LURING_BENCH_SYSCALL_COUNTER").as_deref() {
            Ok("perf") => Counter::Perf,
            Ok("strace") => Counter::Strace,
            Ok("none") => Counter::None,
            Ok(other) => {
                eprintln!("LURING_BENCH_SYSCALL_COUNTER={other:?}: use perf, strace or none");
                std::process::exit(2)
            }
            Err(_) => {
                let works = |cmd: &mut Command| {
                    cmd.stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                };
                if works(Command::new("perf").args([
                    "stat",
                    "-e",
                    "raw_syscalls:sys_enter",
                    "--",
                    "true",
                ])) {
                    Counter::Perf
                } else if works(Command::new("strace").args(["-c", "-o", "/dev/null", "true"])) {
                    Counter::Strace
                } else {
                    Counter::None
                }
            }
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Counter::Perf => "perf stat -e raw_syscalls:sys_enter (all threads, whole server life)",
            Counter::Strace => "strace -f -c (all threads, whole server life)",
            Counter::None => "not counted (neither perf nor strace works here)",
        }
    }

    /// `server` wrapped in the counter, writing its report to `report`.
    fn wrap(self, server: &Command, report: &std::path::Path) -> Command {
        let mut cmd = match self {
            Counter::Perf => {
                let mut c = Command::new("perf");
                c.args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o"])
                    .arg(report)
                    .arg("--");
                c
            }
            Counter::Strace => {
                let mut c = Command::new("strace");
                c.args(["-f", "-c", "-o"]).arg(report).arg("--");
                c
            }
            Counter::None => unreachable!("nothing to wrap"),
        };
        cmd.arg(server.get_program()).args(server.get_args());
        cmd
    }

    /// The total number of system calls in the counter's report.
    fn parse(self, report: &str) -> Option<u64> {
        match self {
            // CSV: "12345,,raw_syscalls:sys_enter,..."
            Counter::Perf => report
                .lines()
                .find(|l| l.contains("raw_syscalls:sys_enter"))
                .and_then(|l| l.split(',').next()?.trim().parse().ok()),
            // "100.00  0.001234  1  2345  [errors]  total": calls is the 4th column.
            Counter::Strace => report
                .lines()
                .find(|l| l.trim_end().ends_with(" total"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse().ok()),
            Counter::None => None,
        }
    }
}

/// Starts `server` under the counter, loads it for `secs`, and returns the
/// server's system calls per echoed message.
fn count_syscalls(
    server: Server,
    counter: Counter,
    conns: usize,
    secs: Duration,
    scratch: &std::path::Path,
) -> Result<f64, String> {
    let port = free_port();
    let report = scratch.join(format!("syscalls-{}.txt", server.name()));
    let mut cmd = counter.wrap(&server.command(port)?, &report);
    // The counter reports the SIGTERM that ends the server; the server's own
    // errors were already shown by the measured runs.
    cmd.stderr(Stdio::null());
    let running = start_server(cmd, port, true)?;
    let load = run_load(port, conns, secs);
    stop_server(running);
    let load = load?;
    let text = std::fs::read_to_string(&report)
        .map_err(|e| format!("no report from the syscall counter ({e})"))?;
    let calls = counter
        .parse(&text)
        .ok_or_else(|| format!("cannot read the syscall count in:\n{text}"))?;
    Ok(calls as f64 / load.total_messages as f64)
}

// ---------------------------------------------------------------------------

#[derive(Default)]
struct Figures {
    msgs_per_s: Vec<f64>,
    p50_us: Vec<f64>,
    p99_us: Vec<f64>,
    cpu_us_per_msg: Vec<f64>,
    load_cpu_us_per_msg: Vec<f64>,
    syscalls_per_msg: Option<f64>,
    skipped: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        let (Some(kind), Some(port)) = (args.get(2), args.get(3).and_then(|p| p.parse().ok()))
        else {
            eprintln!("usage: echo --serve tokio|uring PORT");
            std::process::exit(2)
        };
        serve(kind, port);
        return;
    }
    let selected: Vec<Server> = {
        let names: Vec<&String> = args
            .iter()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        let mut chosen = Vec::new();
        for name in &names {
            match Server::ALL.iter().find(|s| s.name() == name.as_str()) {
                Some(s) => chosen.push(*s),
                None => {
                    eprintln!(
                        "unknown server {name:?}: choose among luring, luring-ref, tokio, uring"
                    );
                    std::process::exit(2)
                }
            }
        }
        if chosen.is_empty() {
            let with_ref = io_common::reference_bin().is_some();
            Server::ALL
                .into_iter()
                .filter(|s| *s != Server::LuringRef || with_ref)
                .collect()
        } else {
            chosen
        }
    };
    let secs: f64 = env_or("LURING_BENCH_SECS", 10.0);
    let syscall_secs: f64 = env_or("LURING_BENCH_SYSCALL_SECS", secs.min(3.0));
    let conns: usize = env_or("LURING_BENCH_CONNS", 50usize).max(1);
    let runs = io_common::runs();
    let counter = Counter::pick();
    // Asked once, before the pin: `usable_cpus` reads this thread's
    // affinity, and asked after it said 1, so that no server was pinned and
    // each shared the load generator's CPU (docs/performance.md
    // "echoflush").
    let pinned = usable_cpus() >= 2 && pin_current_thread(LOAD_CPU);
    let server_cpu: usize = env_or("LURING_BENCH_SERVER_CPU", SERVER_CPU);
    if pinned {
        SERVER_PIN.store(server_cpu, std::sync::atomic::Ordering::Relaxed);
    }
    println!(
        "echo: {conns} connections x {MESSAGE_LEN}-byte messages, {secs} s per run, {runs} runs; \
         server on CPU {server_cpu}, load generator (one io_uring thread) on CPU {LOAD_CPU}{}",
        if pinned {
            ""
        } else {
            " -- NOT pinned: fewer than 2 CPUs usable"
        }
    );
    println!(
        "syscalls: {}, separate {syscall_secs} s pass",
        counter.describe()
    );

    let scratch = io_common::TempDir::new("echo");
    let mut figures: Vec<(Server, Figures)> =
        selected.iter().map(|s| (*s, Figures::default())).collect();
    for run in 1..=runs {
        // Servers take turns within each run so that machine noise spreads
        // over all of them.
        for (server, fig) in figures.iter_mut() {
            if fig.skipped.is_some() {
                continue;
            }
            let port = free_port();
            let cpu0 = io_common::children_cpu();
            let outcome = server
                .command(port)
                .and_then(|cmd| start_server(cmd, port, false))
                .and_then(|running| {
                    let load = run_load(port, conns, Duration::from_secs_f64(secs));
                    stop_server(running);
                    load
                });
            match outcome {
                Ok(r) => {
                    let per_msg = 1.0 / r.total_messages as f64;
                    let cpu_us = (io_common::children_cpu() - cpu0) * 1e6 * per_msg;
                    let load_cpu_us = r.load_cpu_s * 1e6 * per_msg;
                    eprintln!(
                        "run {run}/{runs} {:<10} {:>10.0} msgs/s  p50 {:>7.1} us  p99 {:>7.1} us  \
                         CPU {cpu_us:.2} us/msg  load CPU {load_cpu_us:.2} us/msg, {:.3} turns/msg",
                        server.name(),
                        r.msgs_per_s,
                        r.p50_us,
                        r.p99_us,
                        r.load_turns as f64 * per_msg
                    );
                    fig.cpu_us_per_msg.push(cpu_us);
                    fig.load_cpu_us_per_msg.push(load_cpu_us);
                    fig.msgs_per_s.push(r.msgs_per_s);
                    fig.p50_us.push(r.p50_us);
                    fig.p99_us.push(r.p99_us);
                }
                Err(why) => {
                    println!("{}: skipped: {why}", server.label());
                    fig.skipped = Some(why);
                }
            }
            let _ = std::io::stdout().flush();
        }
    }
    if counter != Counter::None {
        for (server, fig) in figures.iter_mut() {
            if fig.skipped.is_some() {
                continue;
            }
            match count_syscalls(
                *server,
                counter,
                conns,
                Duration::from_secs_f64(syscall_secs),
                scratch.path(),
            ) {
                Ok(v) => fig.syscalls_per_msg = Some(v),
                Err(why) => println!("{}: syscall count failed: {why}", server.label()),
            }
        }
    }

    let tokio = figures
        .iter()
        .find(|(s, f)| *s == Server::Tokio && f.skipped.is_none())
        .map(|(_, f)| (median(f.msgs_per_s.clone()), median(f.p99_us.clone())));
    println!();
    println!(
        "| server | msgs/s | p50 | p99 | syscalls/msg | server CPU/msg | load CPU/msg | msgs/s vs tokio | p99 vs tokio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (server, fig) in &figures {
        if let Some(why) = &fig.skipped {
            println!("| {} | skipped: {why} | | | | | | | |", server.label());
            continue;
        }
        let (rate, p50, p99) = (
            median(fig.msgs_per_s.clone()),
            median(fig.p50_us.clone()),
            median(fig.p99_us.clone()),
        );
        let syscalls = fig
            .syscalls_per_msg
            .map_or("—".to_owned(), |v| format!("{v:.3}"));
        let (vs_rate, vs_p99) = tokio.map_or(("—".to_owned(), "—".to_owned()), |(tr, tp)| {
            (format!("{:.2}×", rate / tr), format!("{:.2}×", p99 / tp))
        });
        println!(
            "| {} | {rate:.0} | {p50:.1} µs | {p99:.1} µs | {syscalls} | {:.2} µs | {:.2} µs | {vs_rate} | {vs_p99} |",
            server.label(),
            median(fig.cpu_us_per_msg.clone()),
            median(fig.load_cpu_us_per_msg.clone())
        );
    }
    println!("(medians of {runs} runs)");
}
