//! The supervisor: a fork of the host made before any thread or secret
//! exists, which creates every sandbox.
//!
//! Invariants:
//! - The host owns one end of a `SOCK_SEQPACKET` pair; the supervisor owns
//!   the other and serves one request at a time (requests are serialised by
//!   a mutex on the host side, so each reply answers the last request).
//! - The supervisor accepts only [`Request`]'s four variants (Spawn,
//!   Signal, Discard, Taken); a malformed frame is answered with an error
//!   and its descriptors are closed. Every request but Taken gets exactly
//!   one reply; Taken gets none. Nothing is ever read from the offer
//!   socket.
//! - It dies with the host (`PR_SET_PDEATHSIG` + a parent re-check, and EOF
//!   on the socket), and every sandbox dies with it (each sandbox's PID 1 has
//!   a parent-death signal and re-checks a lifeline pipe; killing PID 1 tears
//!   its PID namespace down).
//! - Per sandbox it keeps: PID 1's pidfd (to reap it), the report pipe from
//!   PID 1 and the status pipe to the host. No ring, no queue mapping.
//! - Ring hand-over: a `Spawned` reply names the supervisor's dup of the
//!   ring by number and by identity (device, inode). The supervisor keeps
//!   that dup open until the host's next datagram; the host holds its
//!   socket lock from the request until it has taken the ring with
//!   `pidfd_getfd` and checked its identity, so the number cannot be
//!   closed or reused in between, whatever the sandbox or other host
//!   threads do. Then the host sends `Taken` (no reply, no round trip) and
//!   the supervisor drops its dup, so it holds no ring (and no capability
//!   installed in one) of a running sandbox. If the host cannot take the
//!   sandbox over, it sends `Discard`, and the supervisor kills and reaps
//!   it before answering.
//! - It keeps at most one warm child (`spawn::Warm`): the next sandbox's
//!   PID 1, made whenever nothing else is pending once a first sandbox was
//!   asked for (after a failure to make one, not again until the next
//!   spawn request), used for one spawn
//!   whose ring shape matches, killed and reaped on shutdown or if it dies
//!   before its request.
//! - It keeps at most one pooled sandbox (`spawn::Pooled`) for the pool
//!   spec of the entry registered with `register_pooled_entry`: made from
//!   the warm child once a spawn asked for that spec, and only when no
//!   spawn was requested or taken in the last [`REPLENISH_DELAY`] (at once
//!   while spawns come in a burst, less than [`BURST_GAP`] apart); taken
//!   by (moved out for) exactly one spawn with that spec, never put back;
//!   killed and reaped (and not remade until the next such request) if it
//!   fails its lock-down or dies while it waits, and on shutdown.
//! - Offer and claim: once the pooled sandbox reported `Ready`, it is moved
//!   out of the pool and *offered*: recorded as a sandbox (like a spawn
//!   that took it) and sent on the offer socket (a second
//!   `SOCK_SEQPACKET` pair, written only by the supervisor) as a
//!   `Spawned` reply with its pidfd, control socket, status pipe and the
//!   supervisor's `/dev/null`. At most one offer is outstanding, and no
//!   pooled sandbox is made while it is. The host reads the offer socket
//!   only with its socket lock held and answers every offer it read
//!   (`Taken` or `Discard`) before it unlocks; so when a spawn with the
//!   pool's spec arrives while an offer is outstanding, that offer waits
//!   unread and the reply is `Offered` ("take it"). The offered ring's dup
//!   stays open until that offer's `Taken` or `Discard` (not merely the
//!   next datagram). A spawn with an inherited standard stream is never
//!   told to take it (the host does not hold the supervisor's streams).
//! - It zeroes every copy of a request once handled (receive buffer, the
//!   decoded request, the frame sent to a warm child, the Landlock rules'
//!   paths, error replies; see `wire`), so a later clone of it holds no
//!   earlier request. Replies carry no request bytes of their own.
//! - It zeroes its copy of argv and environ right after the fork.
//! - It ignores SIGPIPE (whatever the host's disposition): a write to a
//!   dropped handle's status pipe fails with EPIPE and changes nothing else.

use crate::plan::SupervisorEnv;
use crate::spawn::{self, Child, Pooled, Warm};
use crate::wire::{self, Reply, Request, SpawnRequest};
use crate::{sys, SandboxHandle, SandboxSpec, SpawnError, StartError, Stdio, ENTRIES, STARTED};
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The host's connection to its supervisor.
#[derive(Debug)]
pub struct Supervisor {
    sock: Mutex<OwnedFd>,
    /// The host's end of the offer socket, on which the supervisor puts
    /// its pooled sandbox once it is ready (a `Reply::Spawned` and its
    /// descriptors, see [`Supervisor::spawn`]). Read only with `sock`
    /// locked.
    offers: OwnedFd,
    pid: i32,
    pidfd: OwnedFd,
    /// The last spawn took the pooled sandbox: the next one likely will
    /// too, and its reply is watched for ([`REPLY_WATCH`]).
    last_pooled: AtomicBool,
}

impl Supervisor {
    /// Forks the supervisor. Call at the very top of `main`, before any
    /// thread exists and after every [`crate::register_entry`].
    pub fn start() -> Result<Supervisor, StartError> {
        // Forking with other threads running would copy their locks and
        // secrets half-made; if we cannot tell, refuse rather than guess.
        match sys::thread_count() {
            Ok(n) if n > 1 => return Err(StartError::ThreadsRunning(n)),
            Ok(_) => {}
            Err(e) => return Err(StartError::ThreadCheck(e)),
        }
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(StartError::AlreadyStarted);
        }
        // Keep 0, 1 and 2 occupied so that no other descriptor lands there.
        for fd in 0..3 {
            // SAFETY: F_GETFD only queries.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")?;
                let f: OwnedFd = f.into();
                if f.as_raw_fd() != fd {
                    sys::dup_to(f.as_raw_fd(), fd)?;
                } else {
                    std::mem::forget(f);
                }
            }
        }
        // Make sure the registry lock is not held across the fork.
        drop(ENTRIES.lock());
        let (host, sup) = sys::socketpair_seqpacket()?;
        let (host_offers, sup_offers) = sys::socketpair_seqpacket()?;
        // SAFETY: getpid has no preconditions.
        let host_pid = unsafe { libc::getpid() };
        // SAFETY: we checked that this process is single-threaded; the child
        // never returns from `serve`.
        match unsafe { sys::clone3(0) }? {
            sys::Cloned::Child => {
                drop(host);
                drop(host_offers);
                serve(sup, sup_offers, host_pid)
            }
            sys::Cloned::Parent { pid, pidfd } => {
                drop(sup);
                drop(sup_offers);
                Ok(Supervisor {
                    sock: Mutex::new(host),
                    offers: host_offers,
                    pid,
                    pidfd,
                    last_pooled: AtomicBool::new(false),
                })
            }
        }
    }

    /// PID of the supervisor process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Why this system would refuse a user namespace, if it would.
    pub fn user_namespace_problem() -> Option<String> {
        spawn::userns_problem()
    }

    /// Sends one request and receives its reply on `sock`, which the
    /// caller holds locked (so the reply answers this request); `watch`:
    /// the reply is expected within a fraction of a millisecond.
    fn exchange(
        sock: &OwnedFd,
        req: &Request,
        fds: &[RawFd],
        watch: bool,
    ) -> Result<(Reply, sys::Received), SpawnError> {
        let bytes = req.encode().map_err(|e| {
            SpawnError::InvalidSpec(format!(
                "{e}: a request holds at most 64 KiB and {} items per list",
                wire::MAX_LIST
            ))
        })?;
        sys::send_with_fds(sock.as_raw_fd(), &bytes, fds).map_err(gone)?;
        let mut buf = vec![0u8; wire::MAX_FRAME];
        if watch {
            sys::watch_readable(sock.as_raw_fd(), std::time::Instant::now() + REPLY_WATCH);
        }
        let r = sys::recv_with_fds(sock.as_raw_fd(), &mut buf, 0).map_err(gone)?;
        if r.len == 0 {
            return Err(SpawnError::SupervisorGone);
        }
        let reply = Reply::decode(&buf[..r.len]).map_err(|e| SpawnError::Refused(e.to_string()))?;
        Ok((reply, r))
    }

    fn call(&self, req: &Request) -> Result<Reply, SpawnError> {
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        // Descriptors attached to an Ok or Err reply are closed here.
        Self::exchange(&sock, req, &[], false).map(|(reply, _)| reply)
    }

    /// Takes the new sandbox over from a `Spawned` reply: its three
    /// descriptors, and its ring with `pidfd_getfd` while the caller still
    /// holds the socket (the supervisor keeps the number open until our next
    /// request), checked to be the ring the supervisor named.
    fn take_over(
        &self,
        r: sys::Received,
        ring_fd: RawFd,
        ring_identity: (u64, u64),
    ) -> Result<[OwnedFd; 4], SpawnError> {
        let handover = |step: &'static str, err: std::io::Error| SpawnError::Handover { step, err };
        if r.truncated {
            return Err(handover(
                "receiving its descriptors",
                std::io::Error::other(
                    "control message truncated (MSG_CTRUNC): the host is probably at its descriptor limit (RLIMIT_NOFILE)",
                ),
            ));
        }
        let Ok([pidfd, control, status]) = <[OwnedFd; 3]>::try_from(r.fds) else {
            return Err(handover(
                "receiving its descriptors",
                std::io::Error::other("the reply does not carry exactly three descriptors"),
            ));
        };
        let ring = self.take_ring(ring_fd, ring_identity)?;
        Ok([pidfd, control, status, ring])
    }

    /// The sandbox's ring: the supervisor's descriptor `ring_fd`, taken
    /// with `pidfd_getfd` (the supervisor keeps it open until we answer the
    /// reply or offer that named it) and checked to be the ring it named.
    fn take_ring(&self, ring_fd: RawFd, ring_identity: (u64, u64)) -> Result<OwnedFd, SpawnError> {
        let handover = |step: &'static str, err: std::io::Error| SpawnError::Handover { step, err };
        let ring = sys::pidfd_getfd(self.pidfd.as_fd(), ring_fd)
            .map_err(|e| handover("taking its ring (pidfd_getfd)", e))?;
        let identity = sys::file_identity(ring.as_fd())
            .map_err(|e| handover("checking its ring's identity", e))?;
        if identity != ring_identity {
            return Err(handover(
                "checking its ring's identity",
                std::io::Error::other(format!(
                    "descriptor {ring_fd} of the supervisor is not the ring it reported (device/inode {identity:?}, expected {ring_identity:?})"
                )),
            ));
        }
        Ok(ring)
    }

    /// Starts entry point `entry` in a new sandbox described by `spec`.
    ///
    /// Returns once the sandbox is locked down and the host holds its
    /// descriptors and ring. If the host cannot take it over (e.g. at its
    /// `RLIMIT_NOFILE`), the sandbox is killed and reaped and the error is
    /// [`SpawnError::Handover`]; no descriptor is left behind on either side.
    ///
    /// A spawn with the pool's spec (see [`crate::register_pooled_entry`])
    /// takes the supervisor's pooled sandbox straight from the offer socket
    /// when it waits there (a *claim*, see `claim`): the host checks it is
    /// alive, hands its entry the spawn's standard streams itself, takes
    /// its ring as from a spawn reply and sends `Taken`, with no round
    /// trip. Such a spawn wakes one process, the entry, which finds its
    /// streams (and then what the caller sends, e.g. its module) waiting.
    /// A claimed sandbox that died or cannot be taken is discarded (killed
    /// and reaped by the supervisor) and the spawn goes the normal way.
    pub fn spawn(
        &self,
        entry: &str,
        arg: &[u8],
        spec: &SandboxSpec,
    ) -> Result<SandboxHandle, SpawnError> {
        let (req, fds) = spawn_request(entry, arg, spec)?;
        let claimable = claimable(entry, &req, &fds);
        let stdio = req.stdio;
        // Held until the sandbox is taken over (`Taken` sent) or discarded:
        // the supervisor keeps the ring's number open until our next
        // datagram, so no other thread's request may come in between.
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        if claimable && !TEST_SKIP_OFFER_CHECK.load(Ordering::Relaxed) {
            if let Some(claimed) = self.claim(&sock, stdio, &fds) {
                return Ok(claimed);
            }
        }
        let watch = self.last_pooled.load(Ordering::Relaxed);
        let request = Request::Spawn(Box::new(req));
        let mut exchanged = Self::exchange(&sock, &request, &fds, watch)?;
        if matches!(exchanged.0, Reply::Offered) && claimable {
            // The supervisor offered its pooled sandbox just before it
            // read our request: the offer waits unread (every read of the
            // offer socket is acknowledged before the lock is released).
            if let Some(claimed) = self.claim(&sock, stdio, &fds) {
                return Ok(claimed);
            }
            // Dead or not taken: discarded by now, so no offer is
            // outstanding and the supervisor spawns.
            exchanged = Self::exchange(&sock, &request, &fds, false)?;
        }
        let (reply, r) = exchanged;
        match reply {
            Reply::Spawned {
                id,
                pid,
                ring_fd,
                ring_dev,
                ring_ino,
                pooled,
                enforcement,
            } => {
                test_handover_delay();
                self.last_pooled.store(pooled, Ordering::Relaxed);
                match self.take_over(r, ring_fd, (ring_dev, ring_ino)) {
                    Ok(taken) => Ok(taken_over(&sock, id, pid, taken, enforcement, pooled)),
                    Err(e) => {
                        // Whatever arrived is closed by now; the supervisor
                        // kills and reaps the sandbox before it answers (if
                        // it cannot answer it is gone, and so is the sandbox).
                        let _ = Self::exchange(&sock, &Request::Discard { id }, &[], false);
                        Err(e)
                    }
                }
            }
            Reply::Err {
                kind,
                errno,
                ref message,
            } => Err(spawn_error(kind, errno, message, entry)),
            Reply::Ok | Reply::Offered => Err(SpawnError::Refused("unexpected reply".into())),
        }
    }

    /// Takes the sandbox the supervisor offered, if an offer waits on the
    /// offer socket, for a spawn with the pool's spec whose standard
    /// streams are `stdio` (wire kinds; `fds`: the request's descriptors,
    /// stdio ones first). Called with `sock` (the supervisor socket)
    /// locked; every offer read is answered (`Taken` or `Discard`) before
    /// this returns: so an offer the supervisor made before it read a
    /// request of ours is still there when it answers `Reply::Offered`.
    ///
    /// `None`: no offer, or the offered sandbox cannot serve (it died, or
    /// its descriptors or ring could not be taken); then it has been
    /// discarded (the supervisor kills and reaps it before it answers).
    fn claim(&self, sock: &OwnedFd, stdio: [u8; 3], fds: &[RawFd]) -> Option<SandboxHandle> {
        // A `Spawned` reply is ~60 bytes.
        let mut buf = [0u8; 512];
        let mut r =
            sys::recv_with_fds(self.offers.as_raw_fd(), &mut buf, libc::MSG_DONTWAIT).ok()?;
        // A malformed offer names no sandbox to discard (nor can an empty
        // datagram, the supervisor's end closed): the supervisor keeps it
        // outstanding, and its next answer says so.
        let Ok(Reply::Spawned {
            id,
            pid,
            ring_fd,
            ring_dev,
            ring_ino,
            pooled: true,
            enforcement,
        }) = Reply::decode(&buf[..r.len])
        else {
            return None;
        };
        let discard = || {
            let _ = Self::exchange(sock, &Request::Discard { id }, &[], false);
            None
        };
        test_handover_delay();
        // Pidfd, control socket, status pipe, then the supervisor's
        // `/dev/null` for the streams the spawn leaves empty.
        if r.truncated || r.fds.len() != 4 {
            return discard();
        }
        let devnull = r.fds.pop().expect("four descriptors");
        let Ok([pidfd, control, status]) = <[OwnedFd; 3]>::try_from(r.fds) else {
            return discard();
        };
        // Alive and untouched: PID 1 not gone, no exit status, and nothing
        // on the control socket (the entry sends nothing before it has
        // its streams: any event there means it is gone). An entry that
        // just died may show in none of them yet (its ring's table, alive
        // through the supervisor's dup, keeps its end of the control
        // socket open; PID 1 reports its end within moments): such a
        // sandbox is handed out and its end reported, as for one that dies
        // right after any spawn.
        let mut watched = [&pidfd, &control, &status].map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        if !matches!(sys::poll_many(&mut watched, 0), Ok(0)) {
            return discard();
        }
        let mut given = fds.iter();
        let mut streams = [-1; 3];
        for (stream, kind) in streams.iter_mut().zip(stdio) {
            *stream = match kind {
                wire::STDIO_NULL => devnull.as_raw_fd(),
                _ => match given.next() {
                    Some(fd) => *fd,
                    None => return discard(),
                },
            };
        }
        // The streams wake the entry (a wake-up of ~0.1 ms on a VM), so
        // they go first; the ring is taken meanwhile. A sandbox whose ring
        // cannot be taken is discarded before anything else reached it.
        if sys::send_with_fds(control.as_raw_fd(), crate::STDIO_HANDOVER, &streams).is_err() {
            return discard();
        }
        let Ok(ring) = self.take_ring(ring_fd, (ring_dev, ring_ino)) else {
            return discard();
        };
        // `Taken` as after a spawn reply: the supervisor makes the next
        // pooled sandbox after its quiet moment. (Sent before the caller's
        // first datagrams: the socket lock is not held while they are
        // sent, which may block.) The next spawn's reply, if it needs one,
        // comes from a fresh sandbox in milliseconds: not watched.
        self.last_pooled.store(false, Ordering::Relaxed);
        Some(taken_over(
            sock,
            id,
            pid,
            [pidfd, control, status, ring],
            enforcement,
            true,
        ))
    }

    /// Whether the supervisor's offer (its pooled sandbox) waits, unclaimed,
    /// on the offer socket: for tests that need the claimed path.
    #[doc(hidden)]
    pub fn offer_waiting(&self) -> bool {
        matches!(
            sys::poll_one(self.offers.as_raw_fd(), libc::POLLIN, 0),
            Ok(n) if n > 0
        )
    }

    /// Asks the supervisor to signal sandbox `id`'s PID 1.
    pub fn signal(&self, id: u64, signal: i32) -> Result<(), SpawnError> {
        match self.call(&Request::Signal { id, signal })? {
            Reply::Ok => Ok(()),
            Reply::Err { ref message, .. } => Err(SpawnError::Refused(message.clone())),
            _ => Err(SpawnError::Refused("unexpected reply".into())),
        }
    }

    /// Sends raw bytes (and descriptors) as a request and returns the raw
    /// reply: for tests of the supervisor's refusal of malformed frames.
    /// (A well-formed `Taken` frame gets no reply: this would block.)
    #[doc(hidden)]
    pub fn raw_request(&self, bytes: &[u8], fds: &[RawFd]) -> std::io::Result<(Vec<u8>, usize)> {
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        sys::send_with_fds(sock.as_raw_fd(), bytes, fds)?;
        let mut buf = vec![0u8; wire::MAX_FRAME];
        let r = sys::recv_with_fds(sock.as_raw_fd(), &mut buf, 0)?;
        buf.truncate(r.len);
        Ok((buf, r.fds.len()))
    }

    /// Raw socket, for tests that send a control message of another type.
    #[doc(hidden)]
    pub fn raw_socket(&self) -> RawFd {
        self.sock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_raw_fd()
    }
}

impl Drop for Supervisor {
    /// Closing the socket makes the supervisor kill and reap every sandbox
    /// and exit; wait for that so that it leaves no zombie.
    fn drop(&mut self) {
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: shutting down our own socket.
        unsafe { libc::shutdown(sock.as_raw_fd(), libc::SHUT_RDWR) };
        let _ = sys::waitid_pidfd(self.pidfd.as_fd(), 0);
    }
}

/// Test hook: a delay (µs) the host waits between receiving a spawn reply
/// (or an offer) and taking the ring, to widen races in tests.
static HANDOVER_DELAY_US: AtomicU64 = AtomicU64::new(0);

/// Test hook: spawns ask the supervisor before they look for an offer (so
/// an outstanding one is answered with `Reply::Offered`).
static TEST_SKIP_OFFER_CHECK: AtomicBool = AtomicBool::new(false);

fn test_handover_delay() {
    let us = HANDOVER_DELAY_US.load(Ordering::Relaxed);
    if us != 0 {
        std::thread::sleep(std::time::Duration::from_micros(us));
    }
}

impl Supervisor {
    /// For tests only: make every spawn of this process wait `delay`
    /// between the supervisor's reply and taking the sandbox's ring (a slow,
    /// preempted host).
    #[doc(hidden)]
    pub fn set_handover_delay_for_tests(delay: std::time::Duration) {
        HANDOVER_DELAY_US.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// For tests only: `false` makes every spawn of this process send its
    /// request before it looks for an offered sandbox (the supervisor then
    /// answers `Reply::Offered` while one is outstanding).
    #[doc(hidden)]
    pub fn set_offer_check_for_tests(check_first: bool) {
        TEST_SKIP_OFFER_CHECK.store(!check_first, Ordering::Relaxed);
    }
}

/// Whether a spawn of `entry` with `req` (its descriptors `fds`) can take
/// an offered sandbox: the pool's spec of the pooled entry, and no
/// inherited standard stream (the supervisor's own, which the host does
/// not hold: such a spawn goes to the supervisor).
/// The handle of sandbox `id`, whose descriptors (pidfd, control socket,
/// status pipe, ring) the host now holds, after telling the supervisor
/// (`Taken`, one-way: it drops its copy of the ring; if the send fails the
/// supervisor is gone, the next call says so, and it drops everything
/// anyway).
fn taken_over(
    sock: &OwnedFd,
    id: u64,
    pid: i32,
    [pidfd, control, status, ring]: [OwnedFd; 4],
    enforcement: crate::Enforcement,
    pooled: bool,
) -> SandboxHandle {
    if let Ok(taken) = (Request::Taken { id }).encode() {
        let _ = sys::send_with_fds(sock.as_raw_fd(), &taken, &[]);
    }
    SandboxHandle {
        id,
        pid,
        pidfd,
        control,
        ring: Some(ring),
        status,
        exit: None,
        enforcement,
        pooled,
    }
}

fn claimable(entry: &str, req: &SpawnRequest, fds: &[RawFd]) -> bool {
    crate::pooled_entry() == Some(entry)
        && !req.stdio.contains(&wire::STDIO_INHERIT)
        && spawn::has_pool_spec(req, fds, entry)
}

/// The request for a spawn, and the descriptors that travel with it
/// (the `Stdio::Fd` ones in order, then the grants).
fn spawn_request(
    entry: &str,
    arg: &[u8],
    spec: &SandboxSpec,
) -> Result<(SpawnRequest, Vec<RawFd>), SpawnError> {
    let mut fds: Vec<RawFd> = Vec::new();
    let mut stdio = [wire::STDIO_NULL; 3];
    for (i, s) in [&spec.stdin, &spec.stdout, &spec.stderr]
        .into_iter()
        .enumerate()
    {
        stdio[i] = match s {
            Stdio::Null => wire::STDIO_NULL,
            Stdio::Inherit => wire::STDIO_INHERIT,
            Stdio::Fd(f) => {
                fds.push(f.as_raw_fd());
                wire::STDIO_FD
            }
        };
    }
    fds.extend(spec.fds.iter().map(|g| g.fd.as_raw_fd()));
    if fds.len() > sys::MAX_FDS {
        return Err(SpawnError::InvalidSpec(format!(
            "at most {} descriptors per spawn",
            sys::MAX_FDS
        )));
    }
    let canon = |list: &[std::path::PathBuf]| -> Result<Vec<std::ffi::OsString>, SpawnError> {
        list.iter()
            .map(|p| {
                std::fs::canonicalize(p)
                    .map(|c| c.into_os_string())
                    .map_err(|e| SpawnError::InvalidSpec(format!("path {}: {e}", p.display())))
            })
            .collect()
    };
    let req = SpawnRequest {
        entry: entry.to_string(),
        arg: arg.to_vec(),
        ro_paths: canon(&spec.ro_paths)?,
        rw_paths: canon(&spec.rw_paths)?,
        grant_rw: spec
            .fds
            .iter()
            .map(|g| g.access == crate::Access::ReadWrite)
            .collect(),
        stdio,
        network: spec.network.clone(),
        nofile: spec.limits.nofile,
        pids: spec.limits.pids,
        address_space: spec.limits.address_space.unwrap_or(0),
        cpu_seconds: spec.limits.cpu_seconds.unwrap_or(0),
        env: spec.env.clone(),
        ring_entries: spec.ring.entries,
        ring_fixed_files: spec.ring.fixed_files,
        mount_proc: spec.mount_proc,
        landlock_best_effort: spec.compat.landlock == crate::Requirement::BestEffort,
    };
    if req
        .ro_paths
        .iter()
        .chain(&req.rw_paths)
        .any(|p| p.as_bytes() == b"/")
    {
        return Err(SpawnError::InvalidSpec(
            "granting / is not supported".into(),
        ));
    }
    Ok((req, fds))
}

/// The error for a refused spawn (the supervisor's replies carry no request
/// bytes: the entry's name comes from the caller).
fn spawn_error(kind: u8, errno: i32, message: &str, entry: &str) -> SpawnError {
    match kind {
        wire::ERR_UNKNOWN_ENTRY => SpawnError::UnknownEntry(entry.to_string()),
        wire::ERR_MISSING => SpawnError::MissingProtection(message.to_string()),
        wire::ERR_USERNS => SpawnError::UserNamespaces(message.to_string()),
        wire::ERR_SETUP => SpawnError::Setup {
            step: message.to_string(),
            err: std::io::Error::from_raw_os_error(errno),
        },
        wire::ERR_SPEC => SpawnError::InvalidSpec(message.to_string()),
        _ => SpawnError::Refused(message.to_string()),
    }
}

fn gone(e: std::io::Error) -> SpawnError {
    match e.raw_os_error() {
        Some(libc::EPIPE) | Some(libc::ECONNRESET) | Some(libc::ENOTCONN) => {
            SpawnError::SupervisorGone
        }
        _ => SpawnError::Io(e),
    }
}

/// Overwrites this process's argv and environ strings (the supervisor must
/// not keep what the host was started with).
fn zero_argv_environ() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the parenthesised command name; arg_start is field 48.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return;
    };
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // rest starts at field 3, so field N is f[N - 3].
    if f.len() < 52 - 3 {
        return;
    }
    let (as_, ae, es, ee) = (f[48 - 3], f[49 - 3], f[50 - 3], f[51 - 3]);
    for (s, e) in [(as_, ae), (es, ee)] {
        if s != 0 && e > s && e - s < (1 << 20) {
            // SAFETY: [s, e) is this process's argument/environment block
            // as reported by the kernel; it is mapped and writable (it lives
            // on the initial stack). Nothing reads it as Rust data after this
            // (std's args/env reading would see empty strings).
            unsafe { std::ptr::write_bytes(s as *mut u8, 0, (e - s) as usize) };
        }
    }
    let name = b"luring-supervisor";
    if ae > as_ + name.len() as u64 {
        // SAFETY: within the argument block zeroed above.
        unsafe { std::ptr::copy_nonoverlapping(name.as_ptr(), as_ as *mut u8, name.len()) };
    }
    // SAFETY: single-threaded; clearenv only touches libc's environ.
    unsafe { libc::clearenv() };
}

/// How long after a spawn (its request, then its `Taken`) the supervisor
/// makes nothing ahead (a warm child, a pooled sandbox): both take a few
/// ms of CPU, which the sandbox just spawned needs for its start and
/// first messages. Measured on 2 vCPUs (docs/performance.md):
/// replenishing at once made a spaced pooled spawn + round trip ~2.5×
/// slower than waiting 1–3 ms.
const REPLENISH_DELAY: std::time::Duration = std::time::Duration::from_millis(2);

/// Spawns that start less than this apart are a burst: then the next
/// spawn comes before a sandbox made after [`REPLENISH_DELAY`] could be
/// ready (making one takes ~1.5 ms of CPU), so waiting for a quiet moment
/// only sends it the cold way (all namespaces, the lock-down and the VM
/// boot on its path). In a burst the supervisor replenishes as soon as
/// the last spawn was taken: back-to-back `sandbox = {}` spawn + round
/// trip 1.8 → 0.86 ms on 2 vCPUs, while spaced spawns (20 ms apart) keep
/// their quiet moment (docs/performance.md, "sbx-spawn").
const BURST_GAP: std::time::Duration = std::time::Duration::from_millis(5);

/// How long the host watches for the supervisor's reply to a spawn before
/// it sleeps on it, when the last spawn took the pooled sandbox: such a
/// reply comes within ~0.2 ms (a sleep would add a wake-up of ~0.1 ms on
/// a VM). A cold spawn's reply takes milliseconds, and watching for it
/// took CPU the supervisor needed (back to back spawns were slower), so
/// after a spawn that did not take the pooled sandbox nothing is watched.
const REPLY_WATCH: std::time::Duration = std::time::Duration::from_micros(500);

/// When the supervisor may make something ahead (a warm child, a pooled
/// sandbox): after each spawn's request and `Taken`, not for
/// [`REPLENISH_DELAY`] (the quiet moment), unless spawns come in a burst
/// (each less than [`BURST_GAP`] after the one before): then at once.
#[derive(Debug, Default)]
struct Pace {
    /// Nothing is made ahead before this moment.
    quiet_until: Option<std::time::Instant>,
    /// When the last spawn started (its request, or a claim of the offer
    /// its request was not told to take).
    last_spawn: Option<std::time::Instant>,
    /// The last spawn came within [`BURST_GAP`] of the one before.
    burst: bool,
}

impl Pace {
    /// A spawn starts at `now` (a request, or a claim of the offer).
    fn spawn_started(&mut self, now: std::time::Instant) {
        self.burst = self
            .last_spawn
            .is_some_and(|last| now.saturating_duration_since(last) < BURST_GAP);
        self.last_spawn = Some(now);
    }

    /// After a spawn's request or `Taken` at `now`: the quiet moment,
    /// unless spawns come in a burst.
    fn quiet_moment(&mut self, now: std::time::Instant) {
        self.quiet_until = (!self.burst).then(|| now + REPLENISH_DELAY);
    }

    /// How long to wait from `now` before making anything ahead.
    fn wait(&self, now: std::time::Instant) -> std::time::Duration {
        self.quiet_until
            .map(|t| t.saturating_duration_since(now))
            .unwrap_or_default()
    }
}

/// The supervisor process's main loop. Never returns.
fn serve(sock: OwnedFd, offers: OwnedFd, host_pid: i32) -> ! {
    detach_from_host(&sock, &offers, host_pid);
    let env = match SupervisorEnv::new() {
        Ok(e) => e,
        Err(_) => sys::exit_now(1),
    };
    let mut state = State {
        env,
        children: HashMap::new(),
        warm: None,
        // Nothing warm until the first spawn request: a host that never
        // spawns a sandbox pays for no namespaces.
        warm_paused: true,
        pool: None,
        offers,
        offered: None,
        pool_wanted: false,
        pace: Pace::default(),
        offer_announced: false,
        next_id: 1,
        handed_ring: None,
    };
    let mut buf = vec![0u8; wire::MAX_FRAME];
    loop {
        let revents = state.wait_for_request(sock.as_raw_fd());
        let r = match sys::recv_with_fds(sock.as_raw_fd(), &mut buf, libc::MSG_DONTWAIT) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => state.shutdown(),
        };
        // The host takes the last spawn's ring before it sends anything
        // else (it holds its socket lock from request to take-over), so
        // our copy of that number can go now, not earlier.
        drop(state.handed_ring.take());
        if r.len == 0 && r.cmsg_count == 0 && revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // EOF: the host closed its end or died. (A zero-byte datagram
            // without HUP is refused below as malformed.)
            state.shutdown();
        }
        let len = r.len;
        let handled = state.handle(&buf[..len], r);
        let Some((reply, out_fds)) = handled else {
            // `Taken`: no reply.
            wire::wipe(&mut buf[..len]);
            continue;
        };
        // Descriptors of a refused request were owned by `r` and are closed
        // by now.
        let raw: Vec<RawFd> = out_fds.iter().map(|f| f.as_raw_fd()).collect();
        // No request's bytes stay in memory a later sandbox is cloned from.
        wire::wipe(&mut buf[..len]);
        let sent = match reply.encode() {
            Ok(bytes) => sys::send_with_fds(sock.as_raw_fd(), &bytes, &raw),
            Err(_) => Err(std::io::Error::other("reply too large")),
        };
        if sent.is_err() {
            state.shutdown();
        }
    }
}

/// The supervisor's first steps: die with the host, ignore SIGPIPE, keep
/// nothing of the host's but stdio, `sock` and `offers`, forget argv and
/// environ, drop root's supplementary groups.
fn detach_from_host(sock: &OwnedFd, offers: &OwnedFd, host_pid: i32) {
    // Die with the host, and re-check it did not die before the prctl.
    let _ = sys::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0);
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } != host_pid {
        sys::exit_now(0);
    }
    // A host that dropped a handle closed that sandbox's status pipe: the
    // write of its status must fail with EPIPE, not kill the supervisor
    // (and with it every sandbox) when the host left SIGPIPE at SIG_DFL.
    // SAFETY: setting a disposition in this single-threaded process.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // Keep only stdio and our end of the socket: nothing else the host had
    // open at start-up stays reachable from here (or from a sandbox).
    let mut keep = [0, 1, 2, sock.as_raw_fd(), offers.as_raw_fd()];
    keep.sort_unstable();
    let _ = sys::close_all_except(&keep);
    zero_argv_environ();
    let _ = sys::prctl(libc::PR_SET_NAME, c"luring-sv".as_ptr() as libc::c_ulong, 0);
    // SAFETY: geteuid has no preconditions; setgroups with an empty list.
    if unsafe { libc::geteuid() } == 0 {
        // Sandboxes inherit supplementary groups; root's must not leak in.
        // SAFETY: empty list.
        unsafe { libc::setgroups(0, std::ptr::null()) };
    }
}

/// What the supervisor holds between requests.
struct State {
    env: SupervisorEnv,
    children: HashMap<u64, Child>,
    /// The next sandbox's PID 1, made while nothing else is pending.
    warm: Option<Warm>,
    /// No warm child is made until the next spawn request: set at start
    /// (a host that never spawns a sandbox pays for no namespaces) and when
    /// making one failed.
    warm_paused: bool,
    /// The sandbox made ahead of its spawn for the pool's spec (see
    /// `spawn::Pooled`), while it locks down (and, ready, until it is
    /// offered).
    pool: Option<Pooled>,
    /// Our end of the offer socket: a ready pooled sandbox is put there at
    /// once, as a `Reply::Spawned` with its descriptors, for the host to
    /// take at its next spawn with the pool's spec (`Supervisor::claim`).
    offers: OwnedFd,
    /// The sandbox offered there, until the host's `Taken` or `Discard`
    /// for it: its id and our dup of its ring, whose number the offer
    /// names. At most one: no pooled sandbox is made while it is
    /// outstanding. Its record is in `children` from the offer on.
    offered: Option<(u64, OwnedFd)>,
    /// A pooled sandbox is made while idle: set by each spawn request with
    /// the pool's spec, cleared when one failed or died while it waited
    /// (so a sandbox that cannot start is not remade in a loop).
    pool_wanted: bool,
    /// When a warm child or pooled sandbox may be made.
    pace: Pace,
    /// The last spawn request was answered `Reply::Offered`: the claim
    /// that follows is that spawn, not another.
    offer_announced: bool,
    next_id: u64,
    /// The ring dup named by the last `Spawned` reply, until the next
    /// request.
    handed_ring: Option<OwnedFd>,
}

fn refuse(msg: &str) -> Reply {
    Reply::Err {
        kind: wire::ERR_REFUSED,
        errno: 0,
        message: msg.to_string(),
    }
}

impl State {
    /// Serves sandbox events (exit records, PID 1 gone, the warm child
    /// dying) and makes a warm child while idle, until the host's socket
    /// is readable; returns its poll events.
    fn wait_for_request(&mut self, sock: RawFd) -> i16 {
        loop {
            // A ready pooled sandbox is offered to the host at once (a
            // spawn that was already waiting is answered `Reply::Offered`).
            if self.offered.is_none() && self.pool.as_ref().is_some_and(Pooled::is_ready) {
                self.offer_pool();
            }
            let mut pfds = vec![libc::pollfd {
                fd: sock,
                events: libc::POLLIN,
                revents: 0,
            }];
            // Per child: its pidfd (PID 1 gone), then its report pipe (the
            // entry's exit record, relayed to the host at once).
            let ids: Vec<u64> = self.children.keys().copied().collect();
            for id in &ids {
                let c = &self.children[id];
                let report = if c.reported {
                    -1
                } else {
                    c.report_r.as_raw_fd()
                };
                for fd in [c.pidfd.as_raw_fd(), report] {
                    pfds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            // Then the pooled sandbox's pidfd, control socket and report
            // pipe, then the warm child's pidfd.
            let pool_at = pfds.len();
            if let Some(p) = &self.pool {
                for fd in p.watched() {
                    pfds.push(libc::pollfd {
                        fd,
                        events: libc::POLLIN,
                        revents: 0,
                    });
                }
            }
            let warm_at = pfds.len();
            if let Some(w) = &self.warm {
                pfds.push(libc::pollfd {
                    fd: w.pidfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
            let fill_pool = self.pool_wanted && self.pool.is_none() && self.offered.is_none();
            let replenish = fill_pool || (self.warm.is_none() && !self.warm_paused);
            // Replenish once the last spawn had its quiet moment.
            let wait = self.pace.wait(std::time::Instant::now());
            let timeout = if !replenish {
                -1
            } else {
                // Rounded up: never woken before the moment.
                wait.as_micros().div_ceil(1000) as i32
            };
            let ready = match sys::poll_many(&mut pfds, timeout) {
                Ok(n) => n,
                Err(_) => continue,
            };
            if ready == 0 {
                self.pace.quiet_until = None;
                // Idle: the pool first (from the warm child), then a warm
                // child.
                if fill_pool && self.warm.is_some() {
                    self.fill_pool();
                } else if self.warm.is_none() && !self.warm_paused {
                    match Warm::prepare(&self.env) {
                        Ok(w) => self.warm = Some(w),
                        Err(_) => self.warm_paused = true,
                    }
                } else {
                    // The pool wants a warm child that cannot be made.
                    self.pool_wanted = false;
                }
                continue;
            }
            for (i, id) in ids.iter().enumerate() {
                let (pidfd_ready, report_ready) =
                    (pfds[1 + 2 * i].revents != 0, pfds[2 + 2 * i].revents != 0);
                if let Some(c) = self.children.get_mut(id) {
                    if report_ready {
                        c.relay_exit();
                    }
                    if pidfd_ready && c.try_reap() {
                        self.children.remove(id);
                    }
                }
            }
            if self.pool.is_some() {
                let [pidfd, control, report] = [0, 1, 2].map(|i| pfds[pool_at + i].revents);
                let fine = pidfd == 0
                    && control == 0
                    && (report == 0 || self.pool.as_mut().is_some_and(Pooled::on_report));
                if !fine {
                    // It failed its lock-down or died while it waited:
                    // never handed out, and not remade until the next
                    // spawn request with the pool's spec.
                    if let Some(p) = self.pool.take() {
                        p.kill();
                    }
                    self.pool_wanted = false;
                }
            }
            if self.warm.is_some() && pfds[warm_at].revents != 0 {
                // The warm child died before its request (it is killed with
                // the supervisor only, so this is a failure of its own set-up).
                if let Some(w) = self.warm.take() {
                    w.kill();
                }
                self.warm_paused = true;
            }
            if pfds[0].revents != 0 {
                return pfds[0].revents;
            }
        }
    }

    /// Answers one datagram (`bytes`, received as `r`): the reply and the
    /// descriptors that go with it, or nothing for `Taken`. `r`'s
    /// descriptors are consumed.
    fn handle(&mut self, bytes: &[u8], r: sys::Received) -> Option<(Reply, Vec<OwnedFd>)> {
        if r.truncated {
            return Some((refuse("truncated frame or control data"), vec![]));
        }
        if r.foreign_cmsg || r.cmsg_count > 1 {
            return Some((
                refuse("unexpected control message (only one SCM_RIGHTS is accepted)"),
                vec![],
            ));
        }
        Some(match Request::decode(bytes) {
            Err(e) => (refuse(&e.to_string()), vec![]),
            // Never answered (whatever came with it is closed): the host
            // waits for no reply, so one would answer its next request.
            // The ring it acknowledges was dropped on receipt already,
            // or, for a claimed sandbox, is dropped here (the offer held
            // it until now). The quiet moment counts from here: the host
            // sends the sandbox its module right after (claimed: just
            // before).
            Ok(Request::Taken { id }) => {
                if self
                    .offered
                    .as_ref()
                    .is_some_and(|(offered, _)| *offered == id)
                {
                    self.offered = None;
                    // A claim is a spawn we did not see coming, unless we
                    // told its request to take the offer.
                    if !std::mem::take(&mut self.offer_announced) {
                        self.pace.spawn_started(std::time::Instant::now());
                    }
                }
                self.pace.quiet_moment(std::time::Instant::now());
                return None;
            }
            Ok(Request::Spawn(req)) => self.spawn(&req, r.fds),
            Ok(_) if !r.fds.is_empty() => (
                refuse("descriptors attached to a request that takes none"),
                vec![],
            ),
            Ok(Request::Signal { id, signal }) => (self.signal(id, signal), vec![]),
            Ok(Request::Discard { id }) => (self.discard(id), vec![]),
        })
    }

    /// Hands the warm child the pool's spec: it becomes the pooled
    /// sandbox.
    fn fill_pool(&mut self) {
        let (Some(entry), Some(warm)) = (crate::pooled_entry(), self.warm.take()) else {
            self.pool_wanted = false;
            return;
        };
        self.pool = Pooled::make(warm, entry);
        self.pool_wanted = self.pool.is_some();
    }

    /// Offers the ready pooled sandbox to the host: made into a sandbox
    /// record (its status pipe, the host's descriptors) as a spawn that
    /// takes it would, and put on the offer socket with our `/dev/null`.
    /// If the offer cannot be sent it is killed and not remade until the
    /// next spawn request with the pool's spec.
    fn offer_pool(&mut self) {
        // (A pool exists only for the pooled entry.)
        let Some(entry) = crate::pooled_entry() else {
            return;
        };
        let Some(pool) = self.pool.take() else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let Some(made) = pool.offer(&spawn::pool_request(entry), &self.env, id) else {
            self.pool_wanted = false;
            return;
        };
        let mut raw: Vec<RawFd> = made.host_fds.iter().map(|f| f.as_raw_fd()).collect();
        raw.push(self.env.devnull.as_raw_fd());
        let sent = match made.reply.encode() {
            Ok(bytes) => sys::send_with_fds(self.offers.as_raw_fd(), &bytes, &raw),
            Err(_) => Err(std::io::Error::other("offer too large")),
        };
        if sent.is_err() {
            spawn::kill_reap(&made.child.pidfd);
            self.pool_wanted = false;
            return;
        }
        // Our copies of the host's descriptors close here; the status
        // pipe's write end and PID 1's pidfd stay in the record.
        self.children.insert(id, made.child);
        self.offered = Some((id, made.ring));
    }

    /// A spawn request (its bytes are zeroed when the caller drops it).
    fn spawn(&mut self, req: &SpawnRequest, fds: Vec<OwnedFd>) -> (Reply, Vec<OwnedFd>) {
        self.warm_paused = false;
        if fds.len() != req.fd_count() {
            return (
                refuse("descriptor count does not match the request"),
                vec![],
            );
        }
        let id = self.next_id;
        self.next_id += 1;
        // Nothing is made ahead while the new sandbox starts up (unless
        // spawns come in a burst).
        let now = std::time::Instant::now();
        self.pace.spawn_started(now);
        self.pace.quiet_moment(now);
        let pool_spec = crate::pooled_entry().is_some_and(|e| spawn::has_pool_spec(req, &fds, e));
        if pool_spec {
            self.pool_wanted = true;
            if self.offered.is_some() && !req.stdio.contains(&wire::STDIO_INHERIT) {
                // Offered before this request was read: the host takes the
                // offer (its socket is locked until it answers).
                self.offer_announced = true;
                return (Reply::Offered, vec![]);
            }
            // Moved out: handed to this spawn or killed, never put back.
            if let Some(made) = self
                .pool
                .take()
                .and_then(|p| p.take(req, &fds, &self.env, id))
            {
                self.children.insert(id, made.child);
                self.handed_ring = Some(made.ring);
                return (made.reply, made.host_fds);
            }
        }
        match spawn::spawn(req, fds, &self.env, id, &mut self.warm) {
            Ok(made) => {
                self.children.insert(id, made.child);
                self.handed_ring = Some(made.ring);
                (made.reply, made.host_fds)
            }
            Err(reply) => (reply, vec![]),
        }
    }

    fn signal(&self, id: u64, signal: i32) -> Reply {
        match self.children.get(&id) {
            Some(c) => match sys::pidfd_send_signal(c.pidfd.as_fd(), signal) {
                Ok(()) => Reply::Ok,
                Err(e) => refuse(&format!("signal: {e}")),
            },
            None => refuse("no such sandbox"),
        }
    }

    /// The host could not take sandbox `id` over: killed and reaped before
    /// the reply (no zombie); its descriptors here close with the record.
    fn discard(&mut self, id: u64) -> Reply {
        if let Some(c) = self.children.remove(&id) {
            spawn::kill_reap(&c.pidfd);
        }
        if self
            .offered
            .as_ref()
            .is_some_and(|(offered, _)| *offered == id)
        {
            // A claimed sandbox that was dead or could not be taken: not
            // remade until the next spawn request with the pool's spec
            // (one that cannot start is not remade in a loop).
            self.offered = None;
            self.offer_announced = false;
            self.pool_wanted = false;
        }
        Reply::Ok
    }

    /// Kills and reaps every sandbox and the warm child, then exits.
    fn shutdown(self) -> ! {
        if let Some(w) = self.warm {
            w.kill();
        }
        if let Some(p) = self.pool {
            p.kill();
        }
        for c in self.children.values() {
            let _ = sys::pidfd_send_signal(c.pidfd.as_fd(), libc::SIGKILL);
        }
        for c in self.children.values() {
            let _ = sys::waitid_pidfd(c.pidfd.as_fd(), 0);
        }
        sys::exit_now(0)
    }
}

#[cfg(test)]
mod tests {
    use super::{Pace, BURST_GAP, REPLENISH_DELAY};
    use std::time::{Duration, Instant};

    /// A first spawn, and spawns spaced wider than the burst gap, get the
    /// quiet moment after their request and after their `Taken`.
    #[test]
    fn spaced_spawns_get_the_quiet_moment() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        assert_eq!(pace.wait(t0), Duration::ZERO, "nothing to wait for yet");
        pace.spawn_started(t0);
        pace.quiet_moment(t0);
        assert_eq!(pace.wait(t0), REPLENISH_DELAY);
        // Its `Taken` 1 ms later restarts the moment.
        let taken = t0 + Duration::from_millis(1);
        pace.quiet_moment(taken);
        assert_eq!(pace.wait(taken), REPLENISH_DELAY);
        assert_eq!(pace.wait(taken + REPLENISH_DELAY), Duration::ZERO);
        // The next spawn, 20 ms later: still spaced.
        let t1 = t0 + Duration::from_millis(20);
        pace.spawn_started(t1);
        pace.quiet_moment(t1);
        assert_eq!(pace.wait(t1), REPLENISH_DELAY);
    }

    /// A spawn less than the burst gap after the one before gets no quiet
    /// moment (its `Taken` neither); the first spawn after a pause gets it
    /// again.
    #[test]
    fn spawns_in_a_burst_replenish_at_once() {
        let t0 = Instant::now();
        let mut pace = Pace::default();
        pace.spawn_started(t0);
        pace.quiet_moment(t0);
        let t1 = t0 + BURST_GAP - Duration::from_micros(1);
        pace.spawn_started(t1);
        pace.quiet_moment(t1);
        assert_eq!(pace.wait(t1), Duration::ZERO);
        let taken = t1 + Duration::from_micros(300);
        pace.quiet_moment(taken);
        assert_eq!(pace.wait(taken), Duration::ZERO);
        // Exactly the gap apart is no longer a burst.
        let t2 = t1 + BURST_GAP;
        pace.spawn_started(t2);
        pace.quiet_moment(t2);
        assert_eq!(pace.wait(t2), REPLENISH_DELAY);
    }
}
