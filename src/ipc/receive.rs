//! Receiving one packet and its descriptors from a `SOCK_SEQPACKET`
//! socket, with the control-message checks SECURITY.md case 24 asks for.
//!
//! Invariants: every descriptor the kernel installed while receiving
//! (`SCM_RIGHTS`, and `SCM_PIDFD` should the socket ask for pidfds) is
//! owned by an [`OwnedFd`] before any check runs, so every error path closes
//! them all; they are close-on-exec (`MSG_CMSG_CLOEXEC`). A packet is
//! accepted only whole (`MSG_TRUNC` clear), with its control data whole
//! (`MSG_CTRUNC` clear) and at most one control message, `SCM_RIGHTS`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::MAX_FDS;

/// `SCM_PIDFD` (linux/socket.h, Linux 6.5): carries a pidfd the kernel
/// installs; not in the libc crate yet.
const SCM_PIDFD: libc::c_int = 0x04;

/// Rounds up to the alignment of control messages (`CMSG_ALIGN`).
const fn cmsg_align(len: usize) -> usize {
    let align = std::mem::size_of::<usize>();
    (len + align - 1) & !(align - 1)
}

/// Control space for one `SCM_RIGHTS` message of [`MAX_FDS`] descriptors
/// (`CMSG_SPACE(253 * 4)`), plus room for one more small message so that
/// an unexpected one (credentials) is reported as such rather than as a
/// truncation.
pub const CONTROL_SPACE: usize = cmsg_align(std::mem::size_of::<libc::cmsghdr>())
    + cmsg_align(MAX_FDS * std::mem::size_of::<RawFd>())
    + 64;

/// One packet received: its length in the caller's buffer and the
/// descriptors that came with it, in order.
#[derive(Debug)]
pub struct ReceivedPacket {
    pub len: usize,
    pub fds: Vec<OwnedFd>,
}

/// Why a packet was refused. Every descriptor that came with it has been
/// closed; the channel should be closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    #[error("receiving from the IPC socket failed: {0}")]
    Io(#[source] std::io::Error),
    #[error("packet longer than the {limit}-byte buffer (MSG_TRUNC): over the frame limit; its descriptors were closed")]
    PacketTooLarge { limit: usize },
    #[error("the packet's control data was cut short (MSG_CTRUNC: more descriptors than a frame may carry, or no free descriptor slots); those that arrived were closed")]
    ControlTruncated,
    #[error("more than one control message came with the packet; a frame brings at most one SCM_RIGHTS message")]
    ExtraControlMessage,
    #[error("a control message of level {level}, type {kind} (credentials or other) came with the packet; only SCM_RIGHTS is accepted")]
    UnexpectedControlMessage { level: i32, kind: i32 },
}

/// Control buffer with the alignment `cmsghdr` needs.
#[repr(C)]
struct ControlBuffer {
    _align: [libc::cmsghdr; 0],
    bytes: [u8; CONTROL_SPACE],
}

/// Receives one packet into `buf` (give it at least
/// [`super::MAX_FRAME_BYTES`] bytes) with `recvmsg(MSG_CMSG_CLOEXEC)`.
///
/// `Ok(None)`: the peer is gone (end of stream, or a zero-length packet,
/// which SEQPACKET cannot tell apart); any descriptors were closed. Blocks
/// or fails with `EAGAIN` as the socket's mode says.
pub fn receive_packet(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> Result<Option<ReceivedPacket>, ReceiveError> {
    receive_with_control(socket, buf, CONTROL_SPACE)
}

/// [`receive_packet`] offering the kernel only `control_len` bytes
/// (≤ [`CONTROL_SPACE`]) of control space: tests use a short one to make
/// the kernel truncate.
pub(super) fn receive_with_control(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    control_len: usize,
) -> Result<Option<ReceivedPacket>, ReceiveError> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = ControlBuffer {
        _align: [],
        bytes: [0; CONTROL_SPACE],
    };
    // SAFETY: msghdr is plain old data; all zeroes is an empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes.as_mut_ptr().cast();
    msg.msg_controllen = control_len.min(CONTROL_SPACE) as _;
    // SAFETY: `msg` points at `iov` (naming `buf`) and `control`, all live
    // and writable for the call, with their true lengths.
    let received = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if received < 0 {
        return Err(ReceiveError::Io(std::io::Error::last_os_error()));
    }

    // Take ownership of every descriptor first, so each return closes them.
    let mut fds = Vec::new();
    let mut messages = 0;
    let mut unexpected = None;
    // SAFETY: `msg` was filled by the recvmsg above; the CMSG walk stays
    // within `msg_controllen` bytes of `control`, which is alive.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: CMSG_FIRSTHDR/NXTHDR return a header inside the buffer.
        let header = unsafe { std::ptr::read_unaligned(cmsg) };
        messages += 1;
        let carries_fds = header.cmsg_level == libc::SOL_SOCKET
            && (header.cmsg_type == libc::SCM_RIGHTS || header.cmsg_type == SCM_PIDFD);
        if carries_fds {
            // SAFETY: the data of this control message starts here.
            let data = unsafe { libc::CMSG_DATA(cmsg) };
            let header_bytes = data as usize - cmsg as usize;
            let count = (header.cmsg_len as usize).saturating_sub(header_bytes)
                / std::mem::size_of::<RawFd>();
            for k in 0..count {
                // SAFETY: `count` ints fit in this message's data, which the
                // kernel wrote (cmsg_len covers it, within msg_controllen).
                let raw = unsafe { std::ptr::read_unaligned(data.cast::<RawFd>().add(k)) };
                // SAFETY: the kernel installed this descriptor in our table
                // during the recvmsg above; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
        if !(header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS) {
            unexpected.get_or_insert((header.cmsg_level, header.cmsg_type));
        }
        // SAFETY: as for CMSG_FIRSTHDR; `cmsg` is a header of `msg`.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }

    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(ReceiveError::ControlTruncated);
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(ReceiveError::PacketTooLarge { limit: buf.len() });
    }
    if let Some((level, kind)) = unexpected {
        return Err(ReceiveError::UnexpectedControlMessage { level, kind });
    }
    if messages > 1 {
        return Err(ReceiveError::ExtraControlMessage);
    }
    if received == 0 {
        return Ok(None);
    }
    Ok(Some(ReceivedPacket {
        len: received as usize,
        fds,
    }))
}
