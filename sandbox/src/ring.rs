//! The sandbox's io_uring: made by the supervisor, restricted, inherited.
//!
//! Invariants:
//! - The ring is created with `IORING_SETUP_R_DISABLED`, given a sparse
//!   fixed-file table, restricted (opcode allow-list, `IOSQE_FIXED_FILE`
//!   required on every SQE, a short list of other SQE flags, a short list of
//!   `io_uring_register` opcodes) and only then enabled (Linux 5.10;
//!   sparse tables 5.19). Restrictions cannot be changed once registered.
//! - With `FIXED_FILE` required, every fd-taking op can reach only what the
//!   host installed in the table (with `MsgRingSendFd`, Linux 6.0). Ops that
//!   take no fd (NOP, TIMEOUT, TIMEOUT_REMOVE, ASYNC_CANCEL, LINK_TIMEOUT)
//!   ignore the flag, so they still work (measured by the battery, case 2).
//!   `IORING_OP_CLOSE` refuses `FIXED_FILE` (EBADF), so the sandbox clears a
//!   slot with `IORING_REGISTER_FILES_UPDATE` and fd -1 instead.
//! - The upper half of the table, [`host_slots`], is the file-alloc range
//!   (`IORING_REGISTER_FILE_ALLOC_RANGE`, set before the ring is enabled;
//!   restrictions forbid that register op afterwards): the host installs
//!   capabilities there with `MsgRingSendFd` and `IORING_FILE_INDEX_ALLOC`,
//!   so the kernel picks the slot. The lower half (after stdio and the
//!   control socket) is the sandbox's own, for descriptors it opens itself.
//! - No SQPOLL, no personalities (registering one is denied), no
//!   `IOSQE_ASYNC` or `IO_DRAIN`.
//! - Capabilities sent after the spawn ([`send_fd`]) are open files,
//!   sockets, pipes: [`check_capability`] refuses a directory or an
//!   `O_PATH` descriptor, which would name the host's tree (directories
//!   are granted at spawn, where the sandbox re-attaches them). Any other
//!   route by which a host hands a running sandbox a descriptor (the
//!   control socket's `SCM_RIGHTS`) must call it too.
//! - The process that clones the sandbox keeps no mapping of the queues:
//!   it drops its `IoUring` after the clone and keeps only a dup of the fd
//!   (which the host fetches with `pidfd_getfd`; an io_uring fd cannot travel
//!   by `SCM_RIGHTS`).

use io_uring::{opcode, register::Restriction, squeue, types, IoUring};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Shape of the sandbox's ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSpec {
    /// Submission queue entries (power of two, ≤ 4096).
    pub entries: u32,
    /// Slots in the sparse fixed-file table (≤ 4096).
    pub fixed_files: u32,
}

impl Default for RingSpec {
    fn default() -> Self {
        RingSpec {
            entries: 64,
            fixed_files: 64,
        }
    }
}

/// SQE opcodes the sandbox may submit: I/O on capabilities, waiting,
/// cancellation, turning a slot into a plain fd (to send it back). Never: openat/statx/socket/uring_cmd (reach beyond the
/// table), splice/tee (take a second, non-fixed fd), read/write_fixed
/// (need registered buffers, which are not allowed).
pub fn allowed_ops() -> Vec<u8> {
    vec![
        opcode::Nop::CODE,
        opcode::Read::CODE,
        opcode::Write::CODE,
        opcode::Readv::CODE,
        opcode::Writev::CODE,
        opcode::Send::CODE,
        opcode::Recv::CODE,
        opcode::SendMsg::CODE,
        opcode::RecvMsg::CODE,
        opcode::Timeout::CODE,
        opcode::TimeoutRemove::CODE,
        opcode::LinkTimeout::CODE,
        opcode::AsyncCancel::CODE,
        opcode::PollAdd::CODE,
        opcode::PollRemove::CODE,
        opcode::Accept::CODE,
        opcode::Connect::CODE,
        opcode::Shutdown::CODE,
        opcode::Fsync::CODE,
        // A plain fd for a slot the sandbox holds (Linux 6.8), so that it
        // can hand a capability back by SCM_RIGHTS on its control socket.
        // It reaches nothing new: the file is already the sandbox's, and
        // the slots it holds are what the host sent it and what it opened
        // itself under Landlock.
        opcode::FixedFdInstall::CODE,
    ]
}

pub const IORING_REGISTER_FILES: u32 = 2;
pub const IORING_REGISTER_FILES_UPDATE: u32 = 6;
pub const IORING_REGISTER_PROBE: u32 = 8;
pub const IORING_REGISTER_PERSONALITY: u32 = 9;
pub const IORING_REGISTER_RESTRICTIONS: u32 = 11;
pub const IORING_REGISTER_ENABLE_RINGS: u32 = 12;
pub const IORING_REGISTER_PBUF_RING: u32 = 22;
pub const IORING_UNREGISTER_PBUF_RING: u32 = 23;
pub const IORING_REGISTER_FILE_ALLOC_RANGE: u32 = 25;

/// The slots `[start, end)` of a table of `fixed_files` slots that the
/// kernel allocates from when the host installs a capability
/// (`IORING_FILE_INDEX_ALLOC`): the upper half.
pub fn host_slots(fixed_files: u32) -> std::ops::Range<u32> {
    fixed_files / 2..fixed_files
}

/// `struct io_uring_file_index_range` (linux/io_uring.h).
#[repr(C)]
struct FileIndexRange {
    off: u32,
    len: u32,
    resv: u64,
}

/// Sets the range of `ring`'s table that `IORING_FILE_INDEX_ALLOC` picks
/// from (Linux 6.0).
pub fn set_file_alloc_range(ring: BorrowedFd<'_>, range: std::ops::Range<u32>) -> io::Result<()> {
    let arg = FileIndexRange {
        off: range.start,
        len: range.end.saturating_sub(range.start),
        resv: 0,
    };
    // SAFETY: `arg` is a live, correctly laid out io_uring_file_index_range
    // that the kernel only reads during the call; nr_args is 0 as required.
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_FILE_ALLOC_RANGE,
            &arg as *const FileIndexRange,
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `io_uring_register` opcodes the sandbox may use: update its own table
/// (to clear a slot, or to place a descriptor it received over the control
/// socket) and provided-buffer rings. Enforced twice: by the ring's
/// restrictions and by seccomp on the syscall's argument.
pub fn allowed_register_ops() -> Vec<u32> {
    vec![
        IORING_REGISTER_FILES_UPDATE,
        IORING_REGISTER_PBUF_RING,
        IORING_UNREGISTER_PBUF_RING,
    ]
}

/// SQE flags that are allowed besides the required `FIXED_FILE`.
pub fn allowed_sqe_flags() -> u8 {
    (squeue::Flags::IO_LINK
        | squeue::Flags::IO_HARDLINK
        | squeue::Flags::BUFFER_SELECT
        | squeue::Flags::SKIP_SUCCESS)
        .bits()
}

/// Creates the restricted ring described by `spec`.
pub fn create_restricted(spec: RingSpec) -> io::Result<IoUring> {
    if spec.entries == 0 || spec.entries > 4096 || spec.fixed_files == 0 || spec.fixed_files > 4096
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "ring entries/fixed_files out of range",
        ));
    }
    // COOP_TASKRUN + TASKRUN_FLAG (Linux 5.19; older kernels go without):
    // a completion does not interrupt the sandbox's running thread with an
    // IPI; the thread runs the task work when it enters the kernel, and
    // its executor sees the flag while it watches the CQ. No opcode or
    // register op comes with them.
    let ring = IoUring::builder()
        .setup_r_disabled()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(spec.entries)
        .or_else(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => IoUring::builder().setup_r_disabled().build(spec.entries),
            _ => Err(e),
        })?;
    ring.submitter().register_files_sparse(spec.fixed_files)?;
    // An opcode the kernel does not know makes the restrictions EINVAL:
    // leave out what it lacks (FIXED_FD_INSTALL before Linux 6.8; the
    // sandbox then cannot send descriptors back, and says so).
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let mut res: Vec<Restriction> = allowed_ops()
        .into_iter()
        .filter(|&op| op != opcode::FixedFdInstall::CODE || probe.is_supported(op))
        .map(Restriction::sqe_op)
        .collect();
    for op in allowed_register_ops() {
        res.push(Restriction::register_op(op as u8));
    }
    res.push(Restriction::sqe_flags_required(
        squeue::Flags::FIXED_FILE.bits(),
    ));
    res.push(Restriction::sqe_flags_allowed(allowed_sqe_flags()));
    ring.submitter().register_restrictions(&mut res)?;
    // Still allowed: restrictions apply once the ring is enabled.
    let fd = ring.as_raw_fd();
    // SAFETY: `ring` owns `fd` and outlives the call.
    set_file_alloc_range(
        unsafe { BorrowedFd::borrow_raw(fd) },
        host_slots(spec.fixed_files),
    )?;
    ring.submitter().register_enable_rings()?;
    Ok(ring)
}

fn submit_one(host: &mut IoUring, e: squeue::Entry) -> io::Result<i32> {
    // SAFETY: the entry references no memory owned by us (fds and integers only).
    unsafe {
        host.submission().push(&e).map_err(|_| {
            io::Error::new(io::ErrorKind::WouldBlock, "host ring submission queue full")
        })?;
    }
    host.submit_and_wait(1)?;
    let cqe = host
        .completion()
        .next()
        .ok_or_else(|| io::Error::other("no completion from host ring"))?;
    if cqe.result() < 0 {
        return Err(io::Error::from_raw_os_error(-cqe.result()));
    }
    Ok(cqe.result())
}

/// Refuses a descriptor that would reach past itself once inside a
/// sandbox: a directory (`..` from it climbs the host's tree, and
/// `connect`, `stat` or `chdir` through it are not mediated by Landlock)
/// or an `O_PATH` descriptor (it names a path rather than an open file).
/// Directories can be granted only at spawn ([`crate::SandboxSpec::fds`]),
/// where the sandbox re-attaches them inside its own root.
pub fn check_capability(fd: BorrowedFd<'_>) -> io::Result<()> {
    let st = crate::sys::fstat(fd.as_raw_fd())?;
    if crate::sys::is_dir(&st) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a directory descriptor cannot be sent to a running sandbox (`..` from it would \
             reach the host's tree); grant directories at spawn in SandboxSpec.fds",
        ));
    }
    if crate::sys::status_flags(fd.as_raw_fd())? & libc::O_PATH != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an O_PATH descriptor cannot be sent to a running sandbox; open the file itself \
             and send that",
        ));
    }
    Ok(())
}

/// Installs `fd` into slot `dest_slot` of a sandbox's fixed-file table, from
/// the host's ring `host` (which must have a file table with `host_slot`
/// free; the slot is cleared again afterwards). The host ring must not have
/// other operations in flight (this helper waits for one completion).
/// Directories and `O_PATH` descriptors are refused ([`check_capability`]).
pub fn send_fd(
    host: &mut IoUring,
    host_slot: u32,
    sandbox_ring: BorrowedFd<'_>,
    fd: BorrowedFd<'_>,
    dest_slot: u32,
) -> io::Result<()> {
    check_capability(fd)?;
    host.submitter()
        .register_files_update(host_slot, &[fd.as_raw_fd()])?;
    let dest = types::DestinationSlot::try_from_slot_target(dest_slot)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "slot out of range"))?;
    let e = opcode::MsgRingSendFd::new(
        types::Fd(sandbox_ring.as_raw_fd()),
        types::Fixed(host_slot),
        dest,
        0,
    )
    .build();
    let r = submit_one(host, e);
    host.submitter().register_files_update(host_slot, &[-1])?;
    r.map(drop)
}

/// Posts a completion with `result` and `user_data` on the sandbox's ring
/// (a wake-up), from the host's ring.
pub fn wake(
    host: &mut IoUring,
    sandbox_ring: BorrowedFd<'_>,
    result: i32,
    user_data: u64,
) -> io::Result<()> {
    let e = opcode::MsgRingData::new(types::Fd(sandbox_ring.as_raw_fd()), result, user_data, None)
        .build();
    submit_one(host, e).map(drop)
}

/// A host-side ring suitable for [`send_fd`] and [`wake`].
pub fn host_ring(fixed_files: u32) -> io::Result<IoUring> {
    let ring = IoUring::new(8)?;
    ring.submitter().register_files_sparse(fixed_files)?;
    Ok(ring)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_exclude_reaching_ops() {
        let ops = allowed_ops();
        for bad in [
            opcode::OpenAt::CODE,
            opcode::OpenAt2::CODE,
            opcode::Socket::CODE,
            opcode::UringCmd16::CODE,
            opcode::Statx::CODE,
            opcode::Splice::CODE,
            opcode::MsgRingData::CODE,
            opcode::UnlinkAt::CODE,
        ] {
            assert!(!ops.contains(&bad), "opcode {bad} allowed");
        }
        let reg = allowed_register_ops();
        for bad in [
            IORING_REGISTER_FILES,
            IORING_REGISTER_PERSONALITY,
            IORING_REGISTER_RESTRICTIONS,
            IORING_REGISTER_ENABLE_RINGS,
            IORING_REGISTER_PROBE,
        ] {
            assert!(!reg.contains(&bad));
        }
        let f = allowed_sqe_flags();
        assert_eq!(f & squeue::Flags::ASYNC.bits(), 0);
        assert_eq!(f & squeue::Flags::IO_DRAIN.bits(), 0);
    }
}
