use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::*;
use crate::modules::byte_span::SpanRef;

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r.into(), w.into())
}

/// Turns until `n` completions were reaped (or panics after 10 s).
fn reap_n(ex: &mut Executor, n: usize) -> Vec<(OpId, i32)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    let mut r = Reaped::default();
    while all.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} completions",
            all.len()
        );
        ex.turn(true, &mut r).expect("turn");
        all.extend_from_slice(&r.completions);
    }
    all
}

#[test]
fn timer_expires_with_etime() {
    let mut ex = Executor::new().unwrap();
    let id = ex.sleep(1_000_000).unwrap();
    let done = reap_n(&mut ex, 1);
    assert_eq!(done, vec![(id, -libc::ETIME)]);
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn cancelling_an_in_flight_read_keeps_its_buffer_until_the_completion() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let span = SpanRef::new_zeroed(16, 16);
    let id = ex
        .read(r.as_raw_fd(), OpBuffer::Span(span.clone()))
        .unwrap();
    // Let the kernel start the read (it parks on the empty pipe).
    let mut reaped = Reaped::default();
    ex.turn(false, &mut reaped).unwrap();
    assert!(reaped.completions.is_empty());
    ex.cancel(id).unwrap();
    // Still owned by the executor until the cancelled CQE is reaped.
    assert_eq!(ex.in_flight(), 1);
    let done = reap_n(&mut ex, 1);
    assert_eq!(done, vec![(id, -libc::ECANCELED)]);
    assert_eq!(ex.in_flight(), 0);
    // The cancelled read consumed nothing: the data written now is still
    // in the pipe and the span was never written.
    nix::unistd::write(&w, b"late").unwrap();
    let mut buf = [0u8; 8];
    let n = nix::unistd::read(&r, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"late");
    assert_eq!(span.to_vec(), vec![0u8; 16]);
}

#[test]
fn a_timer_that_fires_while_being_cancelled_reports_one_result() {
    // The timer is already due when the cancellation is submitted: the CQE
    // carries either -ETIME (it fired first) or -ECANCELED, exactly once.
    let mut ex = Executor::new().unwrap();
    let id = ex.sleep(0).unwrap();
    ex.cancel(id).unwrap();
    let done = reap_n(&mut ex, 1);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, id);
    assert!(
        done[0].1 == -libc::ETIME || done[0].1 == -libc::ECANCELED,
        "unexpected result {}",
        done[0].1
    );
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty(), "a second completion arrived");
    // Cancelling an op that already completed is a no-op.
    ex.cancel(id).unwrap();
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn ten_thousand_concurrent_timers_overflowing_the_completion_queue() {
    let mut ex = Executor::new().unwrap();
    // All due at once so that their CQEs exceed the CQ size (1024) and go
    // through the kernel's overflow list.
    let now = {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes one timespec into a live local.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    };
    let due = now + 20_000_000;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..10_000 {
        ids.insert(ex.sleep_until(due, false).unwrap());
    }
    assert_eq!(ex.in_flight(), 10_000);
    ex.submit_pending().unwrap();
    // Without reaping, wait until the kernel flags that completions went to
    // its overflow list: the CQ (1024 entries) really overflowed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ex.ring.submission().cq_overflow() {
        assert!(
            Instant::now() < deadline,
            "the completion queue never overflowed"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let done = reap_n(&mut ex, 10_000);
    assert_eq!(done.len(), 10_000);
    for (id, res) in done {
        assert_eq!(res, -libc::ETIME);
        assert!(ids.remove(&id), "duplicate or unknown completion");
    }
    assert!(ids.is_empty());
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn a_thread_without_a_ring_wakes_a_blocked_executor_through_its_eventfd() {
    let mut ex = Executor::new().unwrap();
    let waker = ex.remote_waker().unwrap();
    let t = std::thread::spawn(move || waker.wake().unwrap());
    let mut r = Reaped::default();
    let start = Instant::now();
    while !r.woken {
        assert!(start.elapsed() < Duration::from_secs(10), "never woken");
        ex.turn(true, &mut r).unwrap();
    }
    t.join().unwrap();
    // The eventfd read is re-armed: a second wake-up is seen too.
    let waker = ex.remote_waker().unwrap();
    waker.wake().unwrap();
    let mut r = Reaped::default();
    while !r.woken {
        ex.turn(true, &mut r).unwrap();
    }
}

#[test]
fn one_ring_wakes_another_with_msg_ring() {
    let mut target = Executor::new().unwrap();
    let target_fd = target.ring_fd();
    // Keep the target "busy" so turn(true) really blocks in the kernel.
    target.sleep(60_000_000_000).unwrap();
    let t = std::thread::spawn(move || {
        let mut sender = Executor::new().unwrap();
        sender.post_wake(target_fd).unwrap();
        let mut r = Reaped::default();
        sender.turn(false, &mut r).unwrap();
    });
    let mut r = Reaped::default();
    let start = Instant::now();
    while !r.woken {
        assert!(start.elapsed() < Duration::from_secs(10), "never woken");
        target.turn(true, &mut r).unwrap();
    }
    t.join().unwrap();
    assert!(r.completions.is_empty());
}

#[test]
fn writes_from_owned_bytes_and_spans_reach_the_fd() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let a = ex
        .write(
            w.as_raw_fd(),
            OpBuffer::Owned(b"abc".to_vec().into_boxed_slice()),
        )
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(a, 3)]);
    let b = ex
        .write(w.as_raw_fd(), OpBuffer::Span(SpanRef::from_bytes(b"defg")))
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(b, 4)]);
    let span = SpanRef::new_zeroed(7, 7);
    let c = ex
        .read(r.as_raw_fd(), OpBuffer::Span(span.clone()))
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(c, 7)]);
    assert_eq!(span.to_vec(), b"abcdefg");
}

#[test]
fn op_ids_round_trip_through_lua_numbers_and_stale_ids_are_ignored() {
    let mut ex = Executor::new().unwrap();
    let id = ex.sleep(0).unwrap();
    assert_eq!(OpId::from_f64(id.to_f64()), Some(id));
    assert_eq!(OpId::from_f64(-1.0), None);
    assert_eq!(OpId::from_f64(0.5), None);
    reap_n(&mut ex, 1);
    // The slot is reused with a new generation: the old id names nothing.
    let id2 = ex.sleep(60_000_000_000).unwrap();
    assert_ne!(id, id2);
    ex.cancel(id).unwrap();
    assert_eq!(ex.in_flight(), 1);
    ex.cancel(id2).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id2, -libc::ECANCELED)]);
}

#[test]
fn open_read_at_and_close_are_ring_ops() {
    let dir = std::env::temp_dir().join(format!("luring-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data.txt");
    std::fs::write(&path, b"0123456789").unwrap();
    let mut ex = Executor::new().unwrap();
    let cpath = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let id = ex.open(cpath, libc::O_RDONLY).unwrap();
    let (done, fd) = reap_n(&mut ex, 1)[0];
    assert_eq!(done, id);
    assert!(fd >= 0, "open failed: {fd}");
    // The fd is close-on-exec.
    // SAFETY: fcntl(F_GETFD) only reads the fd's flags.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC,
        libc::FD_CLOEXEC
    );
    let span = SpanRef::new_zeroed(4, 4);
    let r = ex.read_at(fd, OpBuffer::Span(span.clone()), 3).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(r, 4)]);
    assert_eq!(span.to_vec(), b"3456");
    let c = ex.close(fd).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(c, 0)]);
    // SAFETY: probing a closed fd number has no effect.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, -1);
    let missing =
        std::ffi::CString::new(dir.join("missing").as_os_str().as_encoded_bytes()).unwrap();
    let m = ex.open(missing, libc::O_RDONLY).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(m, -libc::ENOENT)]);
    std::fs::remove_dir_all(&dir).unwrap();
}
