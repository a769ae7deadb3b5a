//! Moving a file descriptor from one actor's ring to another's: what an
//! in-process message with a `file_descriptor` costs per path, all in the
//! same run (medians of `RUNS` runs of `N` moves each).
//!
//! - `dup + close`: what messages do (spec/actors.md §4: the sender keeps
//!   its own; the receiver's copy is closed later): `F_DUPFD_CLOEXEC`,
//!   then `close` of the copy.
//! - `MSG_RING slot->slot`: the fd already sits in a fixed slot of the
//!   sender's ring; `IORING_OP_MSG_RING` (`MsgRingSendFd`) installs it into
//!   the receiver's sparse table (replacing the previous one). One
//!   `io_uring_enter` per move, and the receiver only has a fixed slot.
//! - `MSG_RING full`: what Lua objects (plain fds) would need: register the
//!   plain fd in the sender's table (`FilesUpdate`, linked to the send, so
//!   one enter), send it, and in the receiver turn the slot into a plain fd
//!   (`FixedFdInstall`, a second enter), closed later like the dup.
//!
//! Run: `cargo bench --bench fd_move` or `cargo bench --bench fd_move -- N RUNS`.

use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};

fn dup_close(fd: RawFd, n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: `fd` is open for the whole benchmark; the copy is ours.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        assert!(copy >= 0, "dup: {}", std::io::Error::last_os_error());
        // SAFETY: closes the copy made just above, once.
        unsafe { libc::close(copy) };
    }
    start.elapsed()
}

fn rings() -> (IoUring, IoUring) {
    let sender = IoUring::new(8).expect("sender ring");
    let receiver = IoUring::new(8).expect("receiver ring");
    sender
        .submitter()
        .register_files_sparse(1)
        .expect("sparse table");
    receiver
        .submitter()
        .register_files_sparse(1)
        .expect("sparse table");
    (sender, receiver)
}

fn send_entry(receiver: &IoUring) -> squeue::Entry {
    opcode::MsgRingSendFd::new(
        types::Fd(receiver.as_raw_fd()),
        types::Fixed(0),
        types::DestinationSlot::try_from_slot_target(0).expect("slot 0"),
        7,
    )
    .build()
    .user_data(1)
}

/// Pushes `entries`, enters once and waits for `wait` completions, which
/// must all succeed.
fn submit(ring: &mut IoUring, entries: &[squeue::Entry], wait: usize) -> Vec<i32> {
    for e in entries {
        // SAFETY: every entry names only fds and slots alive for the run.
        unsafe { ring.submission().push(e).expect("queue has room") };
    }
    ring.submit_and_wait(wait).expect("io_uring_enter");
    let results: Vec<i32> = ring.completion().map(|c| c.result()).collect();
    assert_eq!(results.len(), wait);
    for r in &results {
        assert!(
            *r >= 0,
            "op failed: {}",
            std::io::Error::from_raw_os_error(-r)
        );
    }
    results
}

fn msg_ring_slot_to_slot(fd: RawFd, n: u32) -> Duration {
    let (mut sender, mut receiver) = rings();
    sender
        .submitter()
        .register_files_update(0, &[fd])
        .expect("fd in the sender's slot");
    let send = send_entry(&receiver);
    let start = Instant::now();
    for _ in 0..n {
        submit(&mut sender, std::slice::from_ref(&send), 1);
        // The receiver's completion is in its queue: no syscall to reap.
        assert_eq!(receiver.completion().map(|c| c.user_data()).sum::<u64>(), 7);
    }
    start.elapsed()
}

fn msg_ring_full(fd: RawFd, n: u32) -> Duration {
    let (mut sender, mut receiver) = rings();
    let fds = [fd];
    let register = opcode::FilesUpdate::new(fds.as_ptr(), 1)
        .offset(0)
        .build()
        .flags(squeue::Flags::IO_LINK)
        .user_data(2);
    let send = send_entry(&receiver);
    let install = opcode::FixedFdInstall::new(types::Fixed(0), 0)
        .build()
        .user_data(3);
    let start = Instant::now();
    for _ in 0..n {
        submit(&mut sender, &[register.clone(), send.clone()], 2);
        assert_eq!(receiver.completion().map(|c| c.user_data()).sum::<u64>(), 7);
        let installed = submit(&mut receiver, std::slice::from_ref(&install), 1)[0];
        // SAFETY: the plain fd FixedFdInstall just created is ours.
        unsafe { libc::close(installed) };
    }
    start.elapsed()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u32>().ok());
    let n = args.next().unwrap_or(100_000);
    let runs = args.next().unwrap_or(5).max(1);
    let (r, _w) = std::io::pipe().expect("pipe");
    let fd = r.as_raw_fd();
    let per_move = |d: Duration| d.as_nanos() as f64 / n as f64;
    let (mut dup, mut slot, mut full) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        dup.push(per_move(dup_close(fd, n)));
        slot.push(per_move(msg_ring_slot_to_slot(fd, n)));
        full.push(per_move(msg_ring_full(fd, n)));
    }
    println!("fd move, {n} moves x {runs} runs, median ns per move:");
    println!(
        "  dup + close (reference, used by messages): {:8.1}",
        median(dup)
    );
    println!(
        "  MSG_RING slot->slot:                       {:8.1}",
        median(slot)
    );
    println!(
        "  MSG_RING full (register, send, install):   {:8.1}",
        median(full)
    );
}
