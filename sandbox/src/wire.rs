//! Wire encoding between the host and the supervisor, and between a
//! sandbox's PID 1 and the supervisor.
//!
//! Invariants:
//! - One request or reply per `SOCK_SEQPACKET` datagram, at most
//!   [`MAX_FRAME`] bytes; a truncated datagram (MSG_TRUNC/MSG_CTRUNC), a
//!   control message other than one `SCM_RIGHTS`, a descriptor count that
//!   differs from what the request declares, an unknown tag or trailing
//!   bytes are all refused, and every descriptor that came with a refused
//!   request is closed (it was owned by the `Received` value).
//! - The decoder never allocates more than the frame's own length.
//! - The request set is closed: [`Request`] has three variants.

use crate::{ExitStatus, Network};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub const MAX_FRAME: usize = 64 * 1024;
const MAX_LIST: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed frame: {0}")]
pub struct DecodeError(pub &'static str);

#[derive(Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.u32(v as u32)
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
}

pub struct Dec<'a>(pub &'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > MAX_LIST {
            return Err(DecodeError("list too long"));
        }
        Ok(n)
    }
    pub fn end(&self) -> Result<(), DecodeError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(DecodeError("trailing bytes"))
        }
    }
}

/// Stdio kinds on the wire.
pub const STDIO_NULL: u8 = 0;
pub const STDIO_INHERIT: u8 = 1;
pub const STDIO_FD: u8 = 2;

/// A spawn request as the supervisor sees it (descriptors travel alongside:
/// first the stdio ones of kind `STDIO_FD` in order, then the grants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnRequest {
    pub entry: String,
    pub arg: Vec<u8>,
    pub ro_paths: Vec<OsString>,
    pub rw_paths: Vec<OsString>,
    /// Per granted fd: true = read-write.
    pub grant_rw: Vec<bool>,
    pub stdio: [u8; 3],
    pub network: Network,
    pub nofile: u64,
    pub pids: u64,
    pub address_space: u64,
    pub cpu_seconds: u64,
    pub env: Vec<(OsString, OsString)>,
    pub ring_entries: u32,
    pub ring_fixed_files: u32,
    pub mount_proc: bool,
    pub landlock_best_effort: bool,
}

impl SpawnRequest {
    pub fn fd_count(&self) -> usize {
        self.stdio.iter().filter(|k| **k == STDIO_FD).count() + self.grant_rw.len()
    }

    /// Overwrites the request's bytes (argument, paths, environment) before
    /// they are freed, so that no later sandbox (a copy of the supervisor's
    /// memory) finds them in its heap.
    pub fn wipe(&mut self) {
        fn zero(v: &mut [u8]) {
            v.fill(0);
            std::hint::black_box(v);
        }
        zero(&mut self.arg);
        let take = |s: &mut OsString| std::mem::take(s).into_vec();
        for p in self.ro_paths.iter_mut().chain(self.rw_paths.iter_mut()) {
            zero(&mut take(p));
        }
        for (k, v) in self.env.iter_mut() {
            zero(&mut take(k));
            zero(&mut take(v));
        }
        // SAFETY: zero bytes are valid UTF-8.
        zero(unsafe { self.entry.as_bytes_mut() });
    }
}

/// The closed set of requests the supervisor accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Spawn(Box<SpawnRequest>),
    Signal { id: u64, signal: i32 },
    /// The host could not take over sandbox `id` (its reply's descriptors
    /// or ring did not arrive): kill and reap it, forget it.
    Discard { id: u64 },
}

const T_SPAWN: u8 = 1;
const T_SIGNAL: u8 = 2;
const T_DISCARD: u8 = 3;

fn ports(e: &mut Enc, p: &[u16]) {
    e.u32(p.len() as u32);
    for x in p {
        e.u16(*x);
    }
}

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        match self {
            Request::Spawn(r) => {
                e.u8(T_SPAWN).bytes(r.entry.as_bytes()).bytes(&r.arg);
                for list in [&r.ro_paths, &r.rw_paths] {
                    e.u32(list.len() as u32);
                    for p in list {
                        e.bytes(p.as_bytes());
                    }
                }
                e.u32(r.grant_rw.len() as u32);
                for g in &r.grant_rw {
                    e.u8(*g as u8);
                }
                e.u8(r.stdio[0]).u8(r.stdio[1]).u8(r.stdio[2]);
                match &r.network {
                    Network::None => {
                        e.u8(0);
                    }
                    Network::Loopback {
                        tcp_bind,
                        tcp_connect,
                    } => {
                        e.u8(1);
                        ports(&mut e, tcp_bind);
                        ports(&mut e, tcp_connect);
                    }
                }
                e.u64(r.nofile)
                    .u64(r.pids)
                    .u64(r.address_space)
                    .u64(r.cpu_seconds);
                e.u32(r.env.len() as u32);
                for (k, v) in &r.env {
                    e.bytes(k.as_bytes()).bytes(v.as_bytes());
                }
                e.u32(r.ring_entries).u32(r.ring_fixed_files);
                e.u8(r.mount_proc as u8).u8(r.landlock_best_effort as u8);
            }
            Request::Signal { id, signal } => {
                e.u8(T_SIGNAL).u64(*id).i32(*signal);
            }
            Request::Discard { id } => {
                e.u8(T_DISCARD).u64(*id);
            }
        }
        e.0
    }

    pub fn decode(buf: &[u8]) -> Result<Request, DecodeError> {
        let mut d = Dec(buf);
        let r = match d.u8()? {
            T_SPAWN => {
                let entry = String::from_utf8(d.bytes()?.to_vec())
                    .map_err(|_| DecodeError("entry name"))?;
                let arg = d.bytes()?.to_vec();
                let mut lists = [Vec::new(), Vec::new()];
                for l in lists.iter_mut() {
                    for _ in 0..d.count()? {
                        l.push(OsString::from_vec(d.bytes()?.to_vec()));
                    }
                }
                let [ro_paths, rw_paths] = lists;
                let mut grant_rw = Vec::new();
                for _ in 0..d.count()? {
                    grant_rw.push(match d.u8()? {
                        0 => false,
                        1 => true,
                        _ => return Err(DecodeError("grant access")),
                    });
                }
                let stdio = [d.u8()?, d.u8()?, d.u8()?];
                if stdio.iter().any(|k| *k > STDIO_FD) {
                    return Err(DecodeError("stdio kind"));
                }
                let network = match d.u8()? {
                    0 => Network::None,
                    1 => {
                        let mut p = [Vec::new(), Vec::new()];
                        for l in p.iter_mut() {
                            for _ in 0..d.count()? {
                                l.push(d.u16()?);
                            }
                        }
                        let [tcp_bind, tcp_connect] = p;
                        Network::Loopback {
                            tcp_bind,
                            tcp_connect,
                        }
                    }
                    _ => return Err(DecodeError("network kind")),
                };
                let (nofile, pids, address_space, cpu_seconds) =
                    (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
                let mut env = Vec::new();
                for _ in 0..d.count()? {
                    let k = OsString::from_vec(d.bytes()?.to_vec());
                    let v = OsString::from_vec(d.bytes()?.to_vec());
                    env.push((k, v));
                }
                let (ring_entries, ring_fixed_files) = (d.u32()?, d.u32()?);
                let mount_proc = d.u8()? == 1;
                let landlock_best_effort = d.u8()? == 1;
                Request::Spawn(Box::new(SpawnRequest {
                    entry,
                    arg,
                    ro_paths,
                    rw_paths,
                    grant_rw,
                    stdio,
                    network,
                    nofile,
                    pids,
                    address_space,
                    cpu_seconds,
                    env,
                    ring_entries,
                    ring_fixed_files,
                    mount_proc,
                    landlock_best_effort,
                }))
            }
            T_SIGNAL => Request::Signal {
                id: d.u64()?,
                signal: d.i32()?,
            },
            T_DISCARD => Request::Discard { id: d.u64()? },
            _ => return Err(DecodeError("unknown request tag")),
        };
        d.end()?;
        Ok(r)
    }
}

/// Replies from the supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Descriptors: pidfd, control socket, status pipe. The ring travels
    /// apart (`pidfd_getfd` of `ring_fd`, which the supervisor keeps open
    /// until the host's next request); `ring_dev`/`ring_ino` identify it.
    Spawned {
        id: u64,
        pid: i32,
        ring_fd: i32,
        ring_dev: u64,
        ring_ino: u64,
        report: Vec<u8>,
    },
    Ok,
    Err {
        kind: u8,
        errno: i32,
        message: String,
    },
}

pub const ERR_REFUSED: u8 = 1;
pub const ERR_UNKNOWN_ENTRY: u8 = 2;
pub const ERR_MISSING: u8 = 3;
pub const ERR_USERNS: u8 = 4;
pub const ERR_SETUP: u8 = 5;
pub const ERR_SPEC: u8 = 6;

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc::default();
        match self {
            Reply::Spawned {
                id,
                pid,
                ring_fd,
                ring_dev,
                ring_ino,
                report,
            } => {
                e.u8(1)
                    .u64(*id)
                    .i32(*pid)
                    .i32(*ring_fd)
                    .u64(*ring_dev)
                    .u64(*ring_ino)
                    .bytes(report);
            }
            Reply::Ok => {
                e.u8(2);
            }
            Reply::Err {
                kind,
                errno,
                message,
            } => {
                e.u8(3).u8(*kind).i32(*errno).bytes(message.as_bytes());
            }
        }
        e.0
    }
    pub fn decode(buf: &[u8]) -> Result<Reply, DecodeError> {
        let mut d = Dec(buf);
        let r = match d.u8()? {
            1 => Reply::Spawned {
                id: d.u64()?,
                pid: d.i32()?,
                ring_fd: d.i32()?,
                ring_dev: d.u64()?,
                ring_ino: d.u64()?,
                report: d.bytes()?.to_vec(),
            },
            2 => Reply::Ok,
            3 => Reply::Err {
                kind: d.u8()?,
                errno: d.i32()?,
                message: String::from_utf8_lossy(d.bytes()?).into_owned(),
            },
            _ => return Err(DecodeError("unknown reply tag")),
        };
        d.end()?;
        Ok(r)
    }
}

/// Exit status as the supervisor writes it to the host (8 bytes).
pub fn encode_status(s: ExitStatus) -> [u8; 8] {
    let (k, v) = match s {
        ExitStatus::Exited(c) => (0u32, c),
        ExitStatus::Signaled(c) => (1, c),
        ExitStatus::Seccomp { syscall } => (2, syscall),
        ExitStatus::Lost => (3, 0),
    };
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&k.to_le_bytes());
    b[4..].copy_from_slice(&v.to_le_bytes());
    b
}

pub fn decode_status(b: &[u8; 8]) -> ExitStatus {
    let k = u32::from_le_bytes(b[..4].try_into().unwrap());
    let v = i32::from_le_bytes(b[4..].try_into().unwrap());
    match k {
        0 => ExitStatus::Exited(v),
        1 => ExitStatus::Signaled(v),
        2 => ExitStatus::Seccomp { syscall: v },
        _ => ExitStatus::Lost,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SpawnRequest {
        SpawnRequest {
            entry: "probe".into(),
            arg: b"12".to_vec(),
            ro_paths: vec!["/usr".into()],
            rw_paths: vec![],
            grant_rw: vec![true, false],
            stdio: [STDIO_NULL, STDIO_FD, STDIO_INHERIT],
            network: Network::Loopback {
                tcp_bind: vec![8080],
                tcp_connect: vec![],
            },
            nofile: 64,
            pids: 8,
            address_space: 0,
            cpu_seconds: 0,
            env: vec![("A".into(), "b".into())],
            ring_entries: 8,
            ring_fixed_files: 8,
            mount_proc: true,
            landlock_best_effort: false,
        }
    }

    #[test]
    fn round_trip() {
        for r in [
            Request::Spawn(Box::new(sample())),
            Request::Signal { id: 3, signal: 9 },
            Request::Discard { id: 7 },
        ] {
            assert_eq!(Request::decode(&r.encode()), Ok(r));
        }
        assert_eq!(sample().fd_count(), 3);
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        let enc = Request::Spawn(Box::new(sample())).encode();
        for n in 0..enc.len() {
            assert!(Request::decode(&enc[..n]).is_err(), "prefix {n}");
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert_eq!(Request::decode(&longer), Err(DecodeError("trailing bytes")));
        assert!(Request::decode(&[9]).is_err());
        assert!(Request::decode(&[]).is_err());
    }

    #[test]
    fn claimed_lengths_do_not_allocate() {
        // a list count beyond the limit, and a byte length beyond the frame
        let mut e = Enc::default();
        e.u8(T_SPAWN).bytes(b"x").bytes(b"").u32(u32::MAX);
        assert_eq!(Request::decode(&e.0), Err(DecodeError("list too long")));
        let mut e = Enc::default();
        e.u8(T_SPAWN).u32(u32::MAX);
        assert_eq!(Request::decode(&e.0), Err(DecodeError("truncated")));
    }

    #[test]
    fn status_round_trip() {
        for s in [
            ExitStatus::Exited(3),
            ExitStatus::Signaled(9),
            ExitStatus::Seccomp { syscall: 165 },
            ExitStatus::Lost,
        ] {
            assert_eq!(decode_status(&encode_status(s)), s);
        }
    }
}
