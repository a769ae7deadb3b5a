//! Dropping an executor with operations in flight closes every fd it opened
//! and lets the kernel finish with every buffer first. A test binary of its
//! own: counting `/proc/self/fd` is only exact with no other test threads.

use std::os::fd::{AsRawFd, OwnedFd};

use luring::executor::{Executor, OpBuffer, Reaped};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs is mounted")
        .count()
}

#[test]
fn dropping_an_executor_with_ops_in_flight_leaks_no_fd() {
    let (r, w) = std::io::pipe().expect("pipe");
    let (r, w): (OwnedFd, OwnedFd) = (r.into(), w.into());
    let before = open_fds();
    for round in 0..3 {
        let mut ex = Executor::new().expect("ring");
        let waker = ex.remote_waker().expect("eventfd");
        for _ in 0..8 {
            ex.read(
                r.as_raw_fd(),
                OpBuffer::Owned(vec![0; 64].into_boxed_slice()),
            )
            .expect("read submitted");
        }
        ex.sleep(60_000_000_000).expect("timer submitted");
        let mut reaped = Reaped::default();
        ex.turn(false, &mut reaped).expect("turn");
        assert_eq!(ex.in_flight(), 9, "round {round}");
        drop(ex);
        // A waker that outlives its executor only keeps the eventfd open.
        drop(waker);
        assert_eq!(open_fds(), before, "round {round}");
    }
    // None of the cancelled reads consumed what is written afterwards.
    nix::unistd::write(&w, b"still here").expect("write");
    let mut buf = [0u8; 16];
    let n = nix::unistd::read(&r, &mut buf).expect("read");
    assert_eq!(&buf[..n], b"still here");
}
