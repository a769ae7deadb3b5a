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
//! - Canonical frames only: a frame decodes only if encoding the decoded
//!   value gives the same bytes back. Booleans are 0 or 1, every tag and
//!   kind is one the encoder writes, text is UTF-8, lists hold at most
//!   [`MAX_LIST`] items, lengths are exact, nothing trails. The encoder
//!   refuses values the decoder would reject (so round trips are exact).
//! - The decoder never allocates more than the frame's own length.
//! - The request set is closed: [`Request`] has four variants.
//! - No copy of a request outlives its use unwiped: frames are built in a
//!   [`Frame`] of fixed capacity (never reallocated, zeroed on drop),
//!   decoded byte fields are exact-size allocations, lists are allocated at
//!   their final size, and [`SpawnRequest`] and [`Reply`] zero their bytes
//!   when dropped.

use crate::{landlock::LandlockReport, Enforcement, ExitStatus, Network};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

pub const MAX_FRAME: usize = 64 * 1024;
pub const MAX_LIST: usize = 256;
/// Longest error message in a reply (longer ones are cut at a character
/// boundary when encoded).
pub const MAX_MESSAGE: usize = 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed frame: {0}")]
pub struct DecodeError(pub &'static str);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot encode: {0}")]
pub struct EncodeError(pub &'static str);

/// Overwrites `v` with zeros; the stores are kept although the memory is
/// about to be freed.
pub fn wipe(v: &mut [u8]) {
    for b in v.iter_mut() {
        // SAFETY: `b` is a valid, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

fn wipe_os(s: &mut OsString) {
    let mut v = std::mem::take(s).into_vec();
    wipe(&mut v);
}

/// An encoded frame: allocated once at its final capacity (never grown, so
/// no reallocation leaves a partial copy behind) and zeroed when dropped.
pub struct Frame(Vec<u8>);

impl Frame {
    fn with_capacity(cap: usize) -> Frame {
        Frame(Vec::with_capacity(cap))
    }
}

impl std::ops::Deref for Frame {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Builds a [`Frame`] of fixed capacity; writing past it marks the
/// encoding as failed instead of growing the buffer.
pub struct Enc {
    frame: Frame,
    overflow: bool,
}

impl Enc {
    pub fn with_capacity(cap: usize) -> Enc {
        Enc {
            frame: Frame::with_capacity(cap),
            overflow: false,
        }
    }
    fn put(&mut self, b: &[u8]) -> &mut Self {
        let v = &mut self.frame.0;
        if self.overflow || v.capacity() - v.len() < b.len() {
            self.overflow = true;
        } else {
            v.extend_from_slice(b);
        }
        self
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.put(&[v])
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.u32(v as u32)
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.put(&v.to_le_bytes())
    }
    pub fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.put(b)
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        if b.len() > u32::MAX as usize {
            self.overflow = true;
            return self;
        }
        self.u32(b.len() as u32);
        self.put(b)
    }
    /// A list count; more than [`MAX_LIST`] items fail the encoding.
    pub fn count(&mut self, n: usize) -> &mut Self {
        if n > MAX_LIST {
            self.overflow = true;
            return self;
        }
        self.u32(n as u32)
    }
    pub fn finish(self) -> Result<Frame, EncodeError> {
        if self.overflow {
            Err(EncodeError("too large (frame, list or field)"))
        } else {
            Ok(self.frame)
        }
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
    /// A boolean: exactly 0 or 1.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError("boolean other than 0 or 1")),
        }
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
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// An owned copy of a byte field, allocated at its exact size.
    pub fn vec(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.bytes()?.to_vec())
    }
    pub fn text(&mut self, what: &'static str) -> Result<String, DecodeError> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| DecodeError(what))
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
/// Its bytes (argument, paths, environment, entry name) are zeroed when it
/// is dropped, in every copy.
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

    /// Overwrites the request's bytes (argument, paths, environment, entry)
    /// before they are freed, so that no later sandbox (a copy of the
    /// supervisor's memory) finds them in its heap.
    pub fn wipe(&mut self) {
        wipe(&mut self.arg);
        for p in self.ro_paths.iter_mut().chain(self.rw_paths.iter_mut()) {
            wipe_os(p);
        }
        for (k, v) in self.env.iter_mut() {
            wipe_os(k);
            wipe_os(v);
        }
        // SAFETY: zero bytes are valid UTF-8.
        wipe(unsafe { self.entry.as_bytes_mut() });
    }

    /// `prefix`, then this request as a `Spawn` frame (without copying it
    /// first), in one frame of at most [`MAX_FRAME`] + `prefix.len()`
    /// bytes.
    pub fn encode_after(&self, prefix: &[u8]) -> Result<Frame, EncodeError> {
        let mut e = Enc::with_capacity(MAX_FRAME + prefix.len());
        e.raw(prefix);
        self.encode_into(&mut e);
        e.finish()
    }

    fn encode_into(&self, e: &mut Enc) {
        e.u8(T_SPAWN).bytes(self.entry.as_bytes()).bytes(&self.arg);
        for list in [&self.ro_paths, &self.rw_paths] {
            e.count(list.len());
            for p in list {
                e.bytes(p.as_bytes());
            }
        }
        e.count(self.grant_rw.len());
        for g in &self.grant_rw {
            e.bool(*g);
        }
        e.u8(self.stdio[0]).u8(self.stdio[1]).u8(self.stdio[2]);
        match &self.network {
            Network::None => {
                e.u8(0);
            }
            Network::Loopback {
                tcp_bind,
                tcp_connect,
            } => {
                e.u8(1);
                ports(e, tcp_bind);
                ports(e, tcp_connect);
            }
        }
        e.u64(self.nofile)
            .u64(self.pids)
            .u64(self.address_space)
            .u64(self.cpu_seconds);
        e.count(self.env.len());
        for (k, v) in &self.env {
            e.bytes(k.as_bytes()).bytes(v.as_bytes());
        }
        e.u32(self.ring_entries).u32(self.ring_fixed_files);
        e.bool(self.mount_proc).bool(self.landlock_best_effort);
    }

    fn decode_from(d: &mut Dec<'_>) -> Result<SpawnRequest, DecodeError> {
        // Built field by field into a value that wipes itself if a later
        // field is malformed.
        let mut r = SpawnRequest {
            entry: String::new(),
            arg: Vec::new(),
            ro_paths: Vec::new(),
            rw_paths: Vec::new(),
            grant_rw: Vec::new(),
            stdio: [0; 3],
            network: Network::None,
            nofile: 0,
            pids: 0,
            address_space: 0,
            cpu_seconds: 0,
            env: Vec::new(),
            ring_entries: 0,
            ring_fixed_files: 0,
            mount_proc: false,
            landlock_best_effort: false,
        };
        r.entry = d.text("entry name is not UTF-8")?;
        r.arg = d.vec()?;
        for l in [&mut r.ro_paths, &mut r.rw_paths] {
            let n = d.count()?;
            *l = Vec::with_capacity(n);
            for _ in 0..n {
                l.push(OsString::from_vec(d.vec()?));
            }
        }
        let n = d.count()?;
        r.grant_rw = Vec::with_capacity(n);
        for _ in 0..n {
            r.grant_rw.push(d.bool()?);
        }
        r.stdio = [d.u8()?, d.u8()?, d.u8()?];
        if r.stdio.iter().any(|k| *k > STDIO_FD) {
            return Err(DecodeError("stdio kind"));
        }
        r.network = match d.u8()? {
            0 => Network::None,
            1 => {
                let mut p = [Vec::new(), Vec::new()];
                for l in p.iter_mut() {
                    let n = d.count()?;
                    *l = Vec::with_capacity(n);
                    for _ in 0..n {
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
        (r.nofile, r.pids, r.address_space, r.cpu_seconds) =
            (d.u64()?, d.u64()?, d.u64()?, d.u64()?);
        let n = d.count()?;
        r.env = Vec::with_capacity(n);
        for _ in 0..n {
            let k = OsString::from_vec(d.vec()?);
            let v = OsString::from_vec(d.vec()?);
            r.env.push((k, v));
        }
        (r.ring_entries, r.ring_fixed_files) = (d.u32()?, d.u32()?);
        r.mount_proc = d.bool()?;
        r.landlock_best_effort = d.bool()?;
        Ok(r)
    }
}

impl Drop for SpawnRequest {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// The closed set of requests the supervisor accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Spawn(Box<SpawnRequest>),
    Signal {
        id: u64,
        signal: i32,
    },
    /// The host could not take over sandbox `id` (its reply's descriptors
    /// or ring did not arrive): kill and reap it, forget it.
    Discard {
        id: u64,
    },
    /// The host holds its copy of sandbox `id`'s ring: the supervisor drops
    /// its own. The one request without a reply (sent with the socket still
    /// locked, so it adds no round trip and cannot be mistaken for another
    /// request's answer).
    Taken {
        id: u64,
    },
}

const T_SPAWN: u8 = 1;
const T_SIGNAL: u8 = 2;
const T_DISCARD: u8 = 3;
const T_TAKEN: u8 = 4;

fn ports(e: &mut Enc, p: &[u16]) {
    e.count(p.len());
    for x in p {
        e.u16(*x);
    }
}

impl Request {
    pub fn encode(&self) -> Result<Frame, EncodeError> {
        let mut e = Enc::with_capacity(MAX_FRAME);
        match self {
            Request::Spawn(r) => r.encode_into(&mut e),
            Request::Signal { id, signal } => {
                e.u8(T_SIGNAL).u64(*id).i32(*signal);
            }
            Request::Discard { id } => {
                e.u8(T_DISCARD).u64(*id);
            }
            Request::Taken { id } => {
                e.u8(T_TAKEN).u64(*id);
            }
        }
        e.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Request, DecodeError> {
        let mut d = Dec(buf);
        let r = match d.u8()? {
            T_SPAWN => Request::Spawn(Box::new(SpawnRequest::decode_from(&mut d)?)),
            T_SIGNAL => Request::Signal {
                id: d.u64()?,
                signal: d.i32()?,
            },
            T_DISCARD => Request::Discard { id: d.u64()? },
            T_TAKEN => Request::Taken { id: d.u64()? },
            _ => return Err(DecodeError("unknown request tag")),
        };
        d.end()?;
        Ok(r)
    }
}

/// Replies from the supervisor. An error message is zeroed when the reply
/// is dropped (it may name a granted path).
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
        /// Taken from the supervisor's pool (started ahead of the spawn).
        pooled: bool,
        enforcement: Enforcement,
    },
    Ok,
    Err {
        kind: u8,
        errno: i32,
        message: String,
    },
    /// To a spawn with the pool's spec: the supervisor had offered its
    /// pooled sandbox (on the offer socket, `Reply::Spawned` with its
    /// descriptors) before it read this request, so that offer waits
    /// there, unread: take it instead.
    Offered,
}

pub const ERR_REFUSED: u8 = 1;
pub const ERR_UNKNOWN_ENTRY: u8 = 2;
pub const ERR_MISSING: u8 = 3;
pub const ERR_USERNS: u8 = 4;
pub const ERR_SETUP: u8 = 5;
pub const ERR_SPEC: u8 = 6;

const R_SPAWNED: u8 = 1;
const R_OK: u8 = 2;
const R_ERR: u8 = 3;
const R_OFFERED: u8 = 4;

impl Reply {
    pub fn encode(&self) -> Result<Frame, EncodeError> {
        let mut e = Enc::with_capacity(MAX_FRAME);
        match self {
            Reply::Spawned {
                id,
                pid,
                ring_fd,
                ring_dev,
                ring_ino,
                pooled,
                enforcement,
            } => {
                e.u8(R_SPAWNED)
                    .u64(*id)
                    .i32(*pid)
                    .i32(*ring_fd)
                    .u64(*ring_dev)
                    .u64(*ring_ino)
                    .bool(*pooled);
                encode_enforcement(&mut e, enforcement);
            }
            Reply::Ok => {
                e.u8(R_OK);
            }
            Reply::Offered => {
                e.u8(R_OFFERED);
            }
            Reply::Err {
                kind,
                errno,
                message,
            } => {
                let mut cut = message.len().min(MAX_MESSAGE);
                while !message.is_char_boundary(cut) {
                    cut -= 1;
                }
                e.u8(R_ERR)
                    .u8(*kind)
                    .i32(*errno)
                    .bytes(&message.as_bytes()[..cut]);
            }
        }
        e.finish()
    }

    pub fn decode(buf: &[u8]) -> Result<Reply, DecodeError> {
        let mut d = Dec(buf);
        let r = match d.u8()? {
            R_SPAWNED => Reply::Spawned {
                id: d.u64()?,
                pid: d.i32()?,
                ring_fd: d.i32()?,
                ring_dev: d.u64()?,
                ring_ino: d.u64()?,
                pooled: d.bool()?,
                enforcement: decode_enforcement(&mut d)?,
            },
            R_OK => Reply::Ok,
            R_OFFERED => Reply::Offered,
            R_ERR => {
                let kind = d.u8()?;
                if !(ERR_REFUSED..=ERR_SPEC).contains(&kind) {
                    return Err(DecodeError("error kind"));
                }
                let errno = d.i32()?;
                let message = d.text("error message is not UTF-8")?;
                if message.len() > MAX_MESSAGE {
                    return Err(DecodeError("error message too long"));
                }
                Reply::Err {
                    kind,
                    errno,
                    message,
                }
            }
            _ => return Err(DecodeError("unknown reply tag")),
        };
        d.end()?;
        Ok(r)
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Reply::Err { message, .. } = self {
            // SAFETY: zero bytes are valid UTF-8.
            wipe(unsafe { message.as_bytes_mut() });
        }
    }
}

/// Bits of the enforcement flags, in order.
const ENFORCEMENT_FLAGS: u32 = 9;

/// Encodes what the host learns about enforcement.
pub fn encode_enforcement(e: &mut Enc, en: &Enforcement) {
    let l = &en.landlock;
    let flags = [
        en.namespaces,
        en.capabilities_dropped,
        en.no_new_privs,
        en.seccomp,
        en.ring_restricted,
        l.fs,
        l.fs_full,
        l.net,
        l.scope,
    ]
    .iter()
    .enumerate()
    .fold(0u16, |acc, (i, b)| acc | ((*b as u16) << i));
    e.u16(flags)
        .i32(l.kernel_abi)
        .u64(en.pids_limit)
        .u32(en.host_uid);
}

pub fn decode_enforcement(d: &mut Dec<'_>) -> Result<Enforcement, DecodeError> {
    let f = d.u16()?;
    if f >> ENFORCEMENT_FLAGS != 0 {
        return Err(DecodeError("unknown enforcement flag"));
    }
    let abi = d.i32()?;
    let pids = d.u64()?;
    let uid = d.u32()?;
    let bit = |i: u32| f & (1 << i) != 0;
    Ok(Enforcement {
        namespaces: bit(0),
        capabilities_dropped: bit(1),
        no_new_privs: bit(2),
        seccomp: bit(3),
        ring_restricted: bit(4),
        landlock: LandlockReport {
            kernel_abi: abi,
            fs: bit(5),
            fs_full: bit(6),
            net: bit(7),
            scope: bit(8),
        },
        pids_limit: pids,
        host_uid: uid,
    })
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

pub fn decode_status(b: &[u8; 8]) -> Result<ExitStatus, DecodeError> {
    let k = u32::from_le_bytes(b[..4].try_into().unwrap());
    let v = i32::from_le_bytes(b[4..].try_into().unwrap());
    Ok(match (k, v) {
        (0, v) => ExitStatus::Exited(v),
        (1, v) => ExitStatus::Signaled(v),
        (2, v) => ExitStatus::Seccomp { syscall: v },
        (3, 0) => ExitStatus::Lost,
        _ => return Err(DecodeError("exit status kind")),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so that failures
    /// reproduce.
    pub(crate) struct Gen(pub u64);

    impl Gen {
        pub fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        pub fn flag(&mut self) -> bool {
            self.next() & 1 == 1
        }
        pub fn bytes(&mut self, max: u64) -> Vec<u8> {
            let n = self.below(max + 1);
            (0..n).map(|_| self.next() as u8).collect()
        }
        pub fn text(&mut self, max: u64) -> String {
            let n = self.below(max + 1);
            (0..n)
                .map(|_| match self.below(4) {
                    0 => 'é',
                    1 => '€',
                    _ => (b'a' + self.below(26) as u8) as char,
                })
                .collect()
        }
        pub fn os(&mut self, max: u64) -> OsString {
            OsString::from_vec(self.bytes(max))
        }
        fn list<T>(&mut self, max: u64, mut f: impl FnMut(&mut Gen) -> T) -> Vec<T> {
            let n = self.below(max + 1);
            (0..n).map(|_| f(self)).collect()
        }
        pub fn status(&mut self) -> ExitStatus {
            let v = self.next() as i32;
            match self.below(4) {
                0 => ExitStatus::Exited(v),
                1 => ExitStatus::Signaled(v),
                2 => ExitStatus::Seccomp { syscall: v },
                _ => ExitStatus::Lost,
            }
        }
        pub fn enforcement(&mut self) -> Enforcement {
            Enforcement {
                namespaces: self.flag(),
                capabilities_dropped: self.flag(),
                no_new_privs: self.flag(),
                seccomp: self.flag(),
                ring_restricted: self.flag(),
                landlock: LandlockReport {
                    kernel_abi: self.next() as i32,
                    fs: self.flag(),
                    fs_full: self.flag(),
                    net: self.flag(),
                    scope: self.flag(),
                },
                pids_limit: self.next(),
                host_uid: self.next() as u32,
            }
        }
        fn spawn(&mut self) -> SpawnRequest {
            SpawnRequest {
                entry: self.text(6),
                arg: self.bytes(6),
                ro_paths: self.list(2, |g| g.os(5)),
                rw_paths: self.list(2, |g| g.os(5)),
                grant_rw: self.list(3, |g| g.flag()),
                stdio: [
                    self.below(3) as u8,
                    self.below(3) as u8,
                    self.below(3) as u8,
                ],
                network: if self.flag() {
                    Network::None
                } else {
                    Network::Loopback {
                        tcp_bind: self.list(2, |g| g.next() as u16),
                        tcp_connect: self.list(2, |g| g.next() as u16),
                    }
                },
                nofile: self.next(),
                pids: self.next(),
                address_space: self.next(),
                cpu_seconds: self.next(),
                env: self.list(2, |g| (g.os(4), g.os(4))),
                ring_entries: self.next() as u32,
                ring_fixed_files: self.next() as u32,
                mount_proc: self.flag(),
                landlock_best_effort: self.flag(),
            }
        }
        pub fn request(&mut self) -> Request {
            match self.below(4) {
                0 => Request::Spawn(Box::new(self.spawn())),
                1 => Request::Signal {
                    id: self.next(),
                    signal: self.next() as i32,
                },
                2 => Request::Discard { id: self.next() },
                _ => Request::Taken { id: self.next() },
            }
        }
        pub fn reply(&mut self) -> Reply {
            match self.below(4) {
                0 => Reply::Spawned {
                    id: self.next(),
                    pid: self.next() as i32,
                    ring_fd: self.next() as i32,
                    ring_dev: self.next(),
                    ring_ino: self.next(),
                    pooled: self.below(2) == 1,
                    enforcement: self.enforcement(),
                },
                1 => Reply::Ok,
                2 => Reply::Offered,
                _ => Reply::Err {
                    kind: 1 + self.below(6) as u8,
                    errno: self.next() as i32,
                    message: self.text(8),
                },
            }
        }
    }

    /// The canonical-frame property for one valid value: it round-trips;
    /// every truncation and every appended byte is rejected; every
    /// single-byte mutation is rejected or decodes to a value that encodes
    /// to exactly the mutated bytes.
    pub(crate) fn check_canonical<T: PartialEq + std::fmt::Debug>(
        value: &T,
        enc: impl Fn(&T) -> Vec<u8>,
        dec: impl Fn(&[u8]) -> Option<T>,
    ) {
        let bytes = enc(value);
        assert_eq!(dec(&bytes).as_ref(), Some(value), "round trip of {value:?}");
        for n in 0..bytes.len() {
            assert!(
                dec(&bytes[..n]).is_none(),
                "prefix {n} of {value:?} accepted"
            );
        }
        for extra in [0u8, 1, 0xff] {
            let mut longer = bytes.clone();
            longer.push(extra);
            assert!(
                dec(&longer).is_none(),
                "trailing {extra} after {value:?} accepted"
            );
        }
        let mut m = bytes.clone();
        for i in 0..bytes.len() {
            for b in 0..=255u8 {
                if b == bytes[i] {
                    continue;
                }
                m[i] = b;
                if let Some(v) = dec(&m) {
                    assert_eq!(
                        enc(&v),
                        m,
                        "byte {i} of {value:?} set to {b} decodes to {v:?}, which encodes differently"
                    );
                }
            }
            m[i] = bytes[i];
        }
    }

    #[test]
    fn requests_are_canonical() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for _ in 0..60 {
            let r = g.request();
            check_canonical(
                &r,
                |r| r.encode().unwrap().to_vec(),
                |b| Request::decode(b).ok(),
            );
        }
    }

    #[test]
    fn replies_are_canonical() {
        let mut g = Gen(0xD1B5_4A32_D192_ED03);
        for _ in 0..60 {
            let r = g.reply();
            check_canonical(
                &r,
                |r| r.encode().unwrap().to_vec(),
                |b| Reply::decode(b).ok(),
            );
        }
    }

    #[test]
    fn statuses_are_canonical() {
        let mut g = Gen(7);
        for _ in 0..200 {
            let s = g.status();
            check_canonical(
                &s,
                |s| encode_status(*s).to_vec(),
                |b| decode_status(b.try_into().ok()?).ok(),
            );
        }
    }

    #[test]
    fn non_canonical_fields_are_rejected() {
        let mut e = Enc::with_capacity(64);
        e.u8(T_SIGNAL).u64(1).i32(9);
        assert!(Request::decode(&e.finish().unwrap()).is_ok());
        // A boolean of 2 (mount_proc) is not "false".
        let mut r = Request::Spawn(Box::new(Gen(3).spawn()))
            .encode()
            .unwrap()
            .to_vec();
        let last = r.len() - 2;
        r[last] = 2;
        assert_eq!(
            Request::decode(&r),
            Err(DecodeError("boolean other than 0 or 1"))
        );
        // Invalid UTF-8 in an error message is refused, not replaced.
        let mut e = Enc::with_capacity(64);
        e.u8(R_ERR).u8(ERR_SPEC).i32(0).bytes(&[0xff, 0xfe]);
        assert!(Reply::decode(&e.finish().unwrap()).is_err());
        // An unknown error kind, an unknown enforcement flag, a Lost
        // status carrying a value.
        let mut e = Enc::with_capacity(64);
        e.u8(R_ERR).u8(9).i32(0).bytes(b"x");
        assert_eq!(
            Reply::decode(&e.finish().unwrap()),
            Err(DecodeError("error kind"))
        );
        let mut e = Enc::with_capacity(64);
        e.u8(R_SPAWNED)
            .u64(1)
            .i32(2)
            .i32(3)
            .u64(4)
            .u64(5)
            .u16(1 << 9)
            .i32(6)
            .u64(7)
            .u32(8);
        assert!(Reply::decode(&e.finish().unwrap()).is_err());
        assert!(decode_status(&encode_status(ExitStatus::Lost)).is_ok());
        let mut lost = encode_status(ExitStatus::Lost);
        lost[4] = 1;
        assert!(decode_status(&lost).is_err());
    }

    #[test]
    fn a_prefixed_spawn_frame_is_the_prefix_then_the_request() {
        let mut g = Gen(11);
        for _ in 0..50 {
            let r = g.spawn();
            let framed = r.encode_after(&[1]).unwrap();
            assert_eq!(framed[0], 1);
            assert_eq!(
                Request::decode(&framed[1..]),
                Ok(Request::Spawn(Box::new(r.clone())))
            );
            assert_eq!(
                &framed[1..],
                &*Request::Spawn(Box::new(r)).encode().unwrap()
            );
        }
    }

    #[test]
    fn encoder_refuses_what_the_decoder_rejects() {
        let mut r = Gen(5).spawn();
        r.env = (0..=MAX_LIST).map(|_| ("k".into(), "v".into())).collect();
        assert!(Request::Spawn(Box::new(r)).encode().is_err());
        let mut r = Gen(5).spawn();
        r.arg = vec![0; MAX_FRAME];
        assert!(r.encode_after(&[1]).is_err());
        // Cut at a character boundary.
        let long = Reply::Err {
            kind: ERR_SETUP,
            errno: 0,
            message: "é".repeat(MAX_MESSAGE),
        };
        match Reply::decode(&long.encode().unwrap()) {
            Ok(Reply::Err { ref message, .. }) => assert_eq!(message.len(), MAX_MESSAGE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn frames_never_grow() {
        // The frame is allocated once at its final capacity: the encoder
        // cannot leave a reallocated partial copy behind.
        let r = Request::Spawn(Box::new(Gen(11).spawn()));
        let f = r.encode().unwrap();
        assert_eq!(f.0.capacity(), MAX_FRAME);
    }

    #[test]
    fn claimed_lengths_do_not_allocate() {
        // a list count beyond the limit, and a byte length beyond the frame
        let mut e = Enc::with_capacity(64);
        e.u8(T_SPAWN).bytes(b"x").bytes(b"").u32(u32::MAX);
        assert_eq!(
            Request::decode(&e.finish().unwrap()),
            Err(DecodeError("list too long"))
        );
        let mut e = Enc::with_capacity(64);
        e.u8(T_SPAWN).u32(u32::MAX);
        assert_eq!(
            Request::decode(&e.finish().unwrap()),
            Err(DecodeError("truncated"))
        );
    }

    #[test]
    fn wipe_zeroes_every_field() {
        let mut r = Gen(13).spawn();
        r.entry = "entry".into();
        r.arg = b"arg".to_vec();
        r.ro_paths = vec!["/p".into()];
        r.env = vec![("k".into(), "v".into())];
        r.wipe();
        assert!(r.entry.bytes().all(|b| b == 0) && r.arg.iter().all(|b| *b == 0));
        assert!(
            r.ro_paths.iter().all(|p| p.is_empty())
                && r.env.iter().all(|(k, v)| k.is_empty() && v.is_empty())
        );
    }
}
