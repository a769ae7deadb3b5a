use std::os::fd::{AsRawFd, OwnedFd, RawFd};
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
        all.extend(r.completions.iter().map(|c| (c.id, c.result)));
    }
    all
}

fn owned(fd: OwnedFd) -> OpFd {
    OpFd::owned(fd)
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
fn a_later_executor_makes_its_ring_on_its_first_op() {
    // The process's first executor made its ring at once: not this one.
    let _first = Executor::new().unwrap();
    let mut ex = Executor::new().unwrap();
    assert_eq!(ex.ring_fd(), -1);
    // Turns, looks and output checks without an op make no ring.
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    ex.turn(true, &mut r).unwrap();
    assert!(r.completions.is_empty() && !r.woken);
    assert!(!ex.has_completions());
    ex.submit_queued().unwrap();
    assert_eq!(ex.ring_fd(), -1);
    let id = ex.sleep(1_000_000).unwrap();
    assert!(ex.ring_fd() >= 0);
    assert_eq!(reap_n(&mut ex, 1), vec![(id, -libc::ETIME)]);
}

#[test]
fn a_ring_that_cannot_be_made_fails_the_op_and_the_next_op_tries_again() {
    let _first = Executor::new().unwrap();
    let mut ex = Executor::new().unwrap();
    ex.faults.setup_errno = Some(libc::EMFILE);
    let err = ex.sleep(1_000_000).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EMFILE));
    // Nothing was left behind: no slot, no ring, turns still work.
    assert_eq!(ex.in_flight(), 0);
    assert_eq!(ex.ring_fd(), -1);
    let mut r = Reaped::default();
    ex.turn(true, &mut r).unwrap();
    assert!(r.completions.is_empty());
    let id = ex.sleep(1_000_000).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, -libc::ETIME)]);
}

#[test]
fn cancelling_an_in_flight_read_keeps_its_buffer_until_the_completion() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let r_op = owned(r.try_clone().unwrap());
    let span = SpanRef::new_zeroed(16, 16);
    let id = ex.read(&r_op, OpBuffer::Span(span.clone())).unwrap();
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
    // All due at once so that their CQEs exceed the CQ size (CQ_ENTRIES) and go
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
    // its overflow list: the CQ (CQ_ENTRIES) really overflowed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ex.ring().unwrap().submission().cq_overflow() {
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
    // Keep the target "busy" so turn(true) really blocks in the kernel
    // (its first op also makes its ring).
    target.sleep(60_000_000_000).unwrap();
    let target_fd = target.ring_fd();
    let t = std::thread::spawn(move || {
        let mut sender = Executor::new().unwrap();
        // SAFETY: the target ring outlives this thread, which is joined
        // before the target executor is dropped.
        let target_fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(target_fd) };
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
    let (r, w) = (owned(r), owned(w));
    let a = ex
        .write(&w, OpBuffer::Owned(b"abc".to_vec().into_boxed_slice()))
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(a, 3)]);
    let b = ex
        .write(&w, OpBuffer::Span(SpanRef::from_bytes(b"defg")))
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(b, 4)]);
    let span = SpanRef::new_zeroed(7, 7);
    let c = ex.read(&r, OpBuffer::Span(span.clone())).unwrap();
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
    let opened = reap_n_completions(&mut ex, 1).pop().unwrap();
    assert_eq!(opened.id, id);
    assert!(opened.result >= 0, "open failed: {}", opened.result);
    let owned_fd = opened.fd.expect("the completion carries the new fd");
    let fd = owned_fd.as_raw_fd();
    assert_eq!(fd, opened.result);
    // The fd is close-on-exec.
    // SAFETY: fcntl(F_GETFD) only reads the fd's flags.
    assert_eq!(
        unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC,
        libc::FD_CLOEXEC
    );
    let span = SpanRef::new_zeroed(4, 4);
    let file = owned(owned_fd);
    let r = ex.read_at(&file, OpBuffer::Span(span.clone()), 3).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(r, 4)]);
    assert_eq!(span.to_vec(), b"3456");
    let c = ex.close(file).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(c, 0)]);
    // SAFETY: probing a closed fd number has no effect.
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_GETFD) }, -1);
    let missing =
        std::ffi::CString::new(dir.join("missing").as_os_str().as_encoded_bytes()).unwrap();
    let m = ex.open(missing, libc::O_RDONLY).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(m, -libc::ENOENT)]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Like `reap_n`, keeping the whole completions (with their fds).
fn reap_n_completions(ex: &mut Executor, n: usize) -> Vec<Completion> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = Vec::new();
    let mut r = Reaped::default();
    while all.len() < n {
        assert!(Instant::now() < deadline, "only {} of {n}", all.len());
        ex.turn(true, &mut r).expect("turn");
        all.append(&mut r.completions);
    }
    all
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only inspects the fd table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

// ---- fd ownership -------------------------------------------------------

#[test]
fn an_op_keeps_its_fd_alive_after_the_caller_closed_it() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let raw = r.as_raw_fd();
    let r = owned(r);
    let span = SpanRef::new_zeroed(8, 8);
    let read = ex.read(&r, OpBuffer::Span(span.clone())).unwrap();
    // The caller lets go of the fd while the read is queued (not even
    // submitted yet): the read still holds it, so the number stays open
    // and cannot be handed to a new fd.
    let close = ex.close(r).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(close, 0)]);
    assert!(fd_is_open(raw), "closed under a pending read");
    let (other_r, _other_w) = pipe();
    assert_ne!(other_r.as_raw_fd(), raw, "the number was reused");
    // The read acts on the original pipe.
    nix::unistd::write(&w, b"original").unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(read, 8)]);
    assert_eq!(span.to_vec(), b"original");
    // Completed: the last reference went with the slot, the fd is closed.
    assert!(!fd_is_open(raw));
}

#[test]
fn no_op_acts_on_a_reused_fd_number_when_the_caller_drops_its_fd() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let raw = r.as_raw_fd();
    let r = owned(r);
    let span = SpanRef::new_zeroed(4, 4);
    let read = ex.read(&r, OpBuffer::Span(span.clone())).unwrap();
    // As if Lua's fd object were garbage collected with the op queued.
    drop(r);
    // New fds get other numbers while the op owns `raw`.
    let fresh: Vec<(OwnedFd, OwnedFd)> = (0..4).map(|_| pipe()).collect();
    for (a, b) in &fresh {
        assert_ne!(a.as_raw_fd(), raw);
        assert_ne!(b.as_raw_fd(), raw);
    }
    nix::unistd::write(&w, b"mine").unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(read, 4)]);
    assert_eq!(span.to_vec(), b"mine");
    assert!(!fd_is_open(raw));
}

#[test]
fn closing_the_last_reference_closes_through_the_ring_exactly_once() {
    let mut ex = Executor::new().unwrap();
    let (r, _w) = pipe();
    let raw = r.as_raw_fd();
    let c = ex.close(owned(r)).unwrap();
    // Queued, not yet run: the number is still owned by the close op.
    assert!(fd_is_open(raw));
    assert_eq!(reap_n(&mut ex, 1), vec![(c, 0)]);
    assert!(!fd_is_open(raw));
    // The number is free again; the completed close op must not close its
    // new owner.
    let (again, _w2) = pipe();
    drop(ex);
    assert!(fd_is_open(again.as_raw_fd()));
}

#[test]
fn a_shared_fd_closes_with_its_last_holder_be_it_another_vm_or_an_op() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let raw = r.as_raw_fd();
    let shared = std::sync::Arc::new(r);
    // Another VM's reference (an import root every worker holds).
    let other_vm = shared.clone();
    let fd = OpFd::Shared(shared);
    let span = SpanRef::new_zeroed(4, 4);
    let read = ex.read(&fd, OpBuffer::Span(span.clone())).unwrap();
    // `close` drops only this caller's reference: nothing is closed while
    // the other VM or the read still holds the fd.
    let close = ex.close(fd).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(close, 0)]);
    assert!(fd_is_open(raw), "closed under the other holders");
    nix::unistd::write(&w, b"mine").unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(read, 4)]);
    assert_eq!(span.to_vec(), b"mine");
    assert!(fd_is_open(raw), "closed under the other VM");
    assert_eq!(std::sync::Arc::strong_count(&other_vm), 1);
    drop(other_vm);
    assert!(!fd_is_open(raw));
}

#[test]
fn standard_streams_are_borrowed_and_cannot_be_closed() {
    let mut ex = Executor::new().unwrap();
    for s in [StdStream::In, StdStream::Out, StdStream::Err] {
        let e = ex.close(OpFd::Std(s)).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }
    assert!(fd_is_open(0) || fd_is_open(1));
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn an_opened_fd_that_nobody_receives_is_closed() {
    let mut ex = Executor::new().unwrap();
    let path = std::ffi::CString::new("/proc/self/status").unwrap();
    let id = ex.open(path, libc::O_RDONLY).unwrap();
    let c = reap_n_completions(&mut ex, 1).pop().unwrap();
    assert_eq!(c.id, id);
    let raw = c.fd.as_ref().expect("fd").as_raw_fd();
    assert!(fd_is_open(raw));
    drop(c);
    assert!(!fd_is_open(raw));
}

// ---- op ids ---------------------------------------------------------------

/// `discard` (the reap's in-place drop) frees a slot once: a stale id,
/// or the same id again, changes nothing, so the index is not handed
/// out twice.
#[test]
fn discarding_a_slot_frees_its_index_once() {
    let mut table = ops::OpTable::default();
    let (a, _) = table.insert(OpSlot::bare()).unwrap();
    let fd = OpFd::owned(std::fs::File::open("/dev/null").unwrap().into());
    let (b, _) = table
        .insert_with(|| OpSlot::buffer_on_target(OpBuffer::Owned(vec![0; 4].into()), &fd))
        .unwrap();
    assert_eq!(table.len(), 2);
    table.discard(a);
    assert!(table.get(a).is_none());
    assert_eq!(table.len(), 1);
    table.discard(a);
    assert_eq!(table.len(), 1);
    let (c, _) = table.insert(OpSlot::bare()).unwrap();
    let (d, _) = table.insert(OpSlot::bare()).unwrap();
    assert_eq!(
        c.to_user_data() as u32,
        a.to_user_data() as u32,
        "a's index is reused"
    );
    assert_ne!(c, a, "with a new generation");
    assert_ne!(d.to_user_data() as u32, c.to_user_data() as u32);
    assert!(table.get(b).is_some());
    table.discard(b);
    assert_eq!(table.len(), 2);
}

#[test]
fn op_ids_never_repeat_across_a_generation_wrap() {
    let mut ex = Executor::new().unwrap();
    let first = ex.yield_now().unwrap();
    reap_n(&mut ex, 1);
    // The freed slot is about to issue its last generation.
    ex.ops.age_free_slots(ops::MAX_GENERATION - 1);
    let last = ex.yield_now().unwrap();
    assert_eq!(last.to_user_data() >> 32, u64::from(ops::MAX_GENERATION));
    assert_eq!(OpId::from_f64(last.to_f64()), Some(last));
    assert!(last.to_f64() < (1u64 << 53) as f64);
    // A stale id of that slot is held (say by Lua) while the slot completes.
    assert_eq!(reap_n(&mut ex, 1), vec![(last, 0)]);
    let mut seen = std::collections::HashSet::from([first, last]);
    let long = ex.sleep(60_000_000_000).unwrap();
    assert!(seen.insert(long), "an id was issued twice");
    for _ in 0..1000 {
        let id = ex.yield_now().unwrap();
        assert!(seen.insert(id), "an id was issued twice");
        reap_n(&mut ex, 1);
    }
    // The stale id names nothing: cancelling it leaves the timer alone.
    ex.cancel(last).unwrap();
    ex.cancel(first).unwrap();
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty());
    assert_eq!(ex.in_flight(), 1);
}

#[test]
fn forged_ids_are_rejected() {
    assert_eq!(
        OpId::from_user_data(0),
        None,
        "generation 0 is never issued"
    );
    assert_eq!(OpId::from_user_data(CANCEL_TAG), None);
    assert_eq!(OpId::from_user_data(WAKE_TAG), None);
    assert_eq!(OpId::from_f64(f64::NAN), None);
    assert_eq!(OpId::from_f64((1u64 << 53) as f64), None);
    assert_eq!(OpId::from_f64(-1.0), None);
}

// ---- NOP yield --------------------------------------------------------------

#[test]
fn a_yield_completes_after_what_was_queued_before_it_and_cancelling_it_wins() {
    let mut ex = Executor::new().unwrap();
    let a = ex.yield_now().unwrap();
    let b = ex.yield_now().unwrap();
    assert_eq!(reap_n(&mut ex, 2), vec![(a, 0), (b, 0)]);
    let c = ex.yield_now().unwrap();
    ex.cancel(c).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(c, -libc::ECANCELED)]);
    // Submitted and run before the cancel: still reported cancelled.
    let d = ex.yield_now().unwrap();
    ex.submit_pending().unwrap();
    ex.cancel(d).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(d, -libc::ECANCELED)]);
    assert_eq!(ex.in_flight(), 0);
}

// ---- dropped completions ----------------------------------------------------

#[test]
fn a_dropped_completion_fails_every_turn_instead_of_waiting_forever() {
    let mut ex = Executor::new().unwrap();
    let lost = ex.sleep(1_000_000).unwrap();
    let _forever = ex.sleep(3600 * 1_000_000_000).unwrap();
    ex.faults.drop_cqe_of = Some(lost);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut r = Reaped::default();
    let err = loop {
        assert!(
            Instant::now() < deadline,
            "the dropped completion went unnoticed"
        );
        match ex.turn(true, &mut r) {
            Ok(()) => assert!(r.completions.is_empty()),
            Err(e) => break e,
        }
    };
    let dropped = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<CompletionsDropped>())
        .expect("a CompletionsDropped error");
    assert_eq!(dropped.count, 1);
    assert!(
        err.to_string().contains("dropped 1 io_uring completion"),
        "{err}"
    );
    // It stays failed, even without blocking.
    assert!(ex.turn(false, &mut r).is_err());
    // Dropping waits for the kernel (a drained NOP), not for the lost CQE,
    // and does not hang on the hour-long timer.
    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn the_kernels_dropped_counter_is_what_is_checked() {
    // No fault injected: a healthy ring reports nothing dropped.
    let mut ex = Executor::new().unwrap();
    assert_eq!(ex.ring().unwrap().completion().overflow(), 0);
    let id = ex.yield_now().unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 0)]);
    assert!(ex.check_dropped().is_ok());
}

// ---- EBUSY --------------------------------------------------------------------

#[test]
fn ebusy_on_submit_reaps_to_make_room_and_loses_nothing() {
    let mut ex = Executor::new().unwrap();
    // Completions waiting in the CQ, as when the kernel answers EBUSY.
    let early: Vec<OpId> = (0..100).map(|_| ex.yield_now().unwrap()).collect();
    ex.submit_pending().unwrap();
    ex.faults.ebusy = 3;
    // More than the SQ holds: pushing must submit, and meets EBUSY.
    let late: Vec<OpId> = (0..300).map(|_| ex.yield_now().unwrap()).collect();
    assert_eq!(ex.faults.ebusy, 0, "EBUSY was never met");
    let done = reap_n(&mut ex, 400);
    let ids: Vec<OpId> = done.iter().map(|d| d.0).collect();
    let expected: Vec<OpId> = early.iter().chain(&late).copied().collect();
    assert_eq!(ids, expected, "lost, repeated or reordered completions");
    assert!(done.iter().all(|d| d.1 == 0));
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty());
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn ebusy_in_a_blocking_turn_does_not_hang_nor_reorder() {
    let mut ex = Executor::new().unwrap();
    let id = ex.yield_now().unwrap();
    ex.faults.ebusy = 2;
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 0)]);
    // Completions in the CQ, more SQEs queued, and the blocking enter and
    // the retry both meet EBUSY: everything arrives once, in ring order.
    let first: Vec<OpId> = (0..100).map(|_| ex.yield_now().unwrap()).collect();
    ex.submit_pending().unwrap();
    let then: Vec<OpId> = (0..10).map(|_| ex.yield_now().unwrap()).collect();
    ex.faults.ebusy = 3;
    let got: Vec<OpId> = reap_n(&mut ex, 110).into_iter().map(|d| d.0).collect();
    assert_eq!(ex.faults.ebusy, 0);
    let expected: Vec<OpId> = first.into_iter().chain(then).collect();
    assert_eq!(got, expected);
}

#[test]
fn ebusy_that_never_clears_is_an_error_not_a_spin() {
    let mut ex = Executor::new().unwrap();
    ex.faults.ebusy = u32::MAX;
    let start = Instant::now();
    let err = (0..300)
        .map(|_| ex.yield_now())
        .find_map(Result::err)
        .expect("submitting through a ring that refuses everything fails");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(err.kind(), io::ErrorKind::ResourceBusy, "{err}");
    ex.faults.ebusy = 0;
    // Nothing was lost: every op that was accepted completes.
    let n = ex.in_flight();
    assert_eq!(reap_n(&mut ex, n).len(), n);
}

// ---- Drop error paths -------------------------------------------------------

/// An executor with a read parked on a pipe, holding `fd` and `span`.
fn executor_with_parked_read(fd: &OpFd, span: &SpanRef) -> Executor {
    let mut ex = Executor::new().unwrap();
    ex.read(fd, OpBuffer::Span(span.clone())).unwrap();
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty());
    ex
}

fn refs(fd: &OpFd) -> usize {
    match fd {
        OpFd::Owned(rc) => std::rc::Rc::strong_count(rc),
        OpFd::Shared(arc) => std::sync::Arc::strong_count(arc),
        OpFd::Std(_) | OpFd::Fixed(_) => 0,
        OpFd::Slot(rc) => std::rc::Rc::strong_count(rc),
        OpFd::Granted(rc) => std::rc::Rc::strong_count(rc),
    }
}

#[test]
fn dropping_waits_for_cancelled_ops_then_frees_them() {
    let (r, _w) = pipe();
    let fd = owned(r);
    let span = SpanRef::new_zeroed(8, 8);
    let ex = executor_with_parked_read(&fd, &span);
    assert_eq!(refs(&fd), 2);
    drop(ex);
    assert_eq!(refs(&fd), 1, "the completed op released its fd");
}

#[test]
fn a_ring_failing_while_dropping_leaks_instead_of_freeing() {
    let (r, _w) = pipe();
    let fd = owned(r);
    let span = SpanRef::new_zeroed(8, 8);
    let mut ex = executor_with_parked_read(&fd, &span);
    ex.faults.enter_errno = Some(libc::EIO);
    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5), "drop hung");
    // The read may still be in the kernel: its fd and buffer were leaked.
    assert_eq!(refs(&fd), 2);
}

#[test]
fn a_cancel_that_cannot_be_pushed_while_dropping_leaks_instead_of_hanging() {
    let (r, _w) = pipe();
    let fd = owned(r);
    let span = SpanRef::new_zeroed(8, 8);
    let mut ex = executor_with_parked_read(&fd, &span);
    // A full SQ and a failing enter: the cancel request cannot be queued.
    let capacity = ex.ring().unwrap().submission().capacity();
    while ex.ring().unwrap().submission().len() < capacity {
        // SAFETY: a NOP carries no pointer and no fd.
        let nop = opcode::Nop::new().build().user_data(CANCEL_TAG);
        unsafe { ex.ring().unwrap().submission().push(&nop).unwrap() };
    }
    ex.faults.enter_errno = Some(libc::EIO);
    let start = Instant::now();
    drop(ex);
    assert!(start.elapsed() < Duration::from_secs(5), "drop hung");
    assert_eq!(refs(&fd), 2);
}

// ---- ordered output -------------------------------------------------------------

/// An executor whose stdout and stderr output goes to one pipe's write end;
/// returns the read end.
fn executor_with_output_pipe() -> (Executor, OwnedFd) {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let w = owned(w);
    ex.faults.output_targets = Some([w.clone(), w]);
    (ex, r)
}

fn read_available(r: &OwnedFd) -> Vec<u8> {
    nix::fcntl::fcntl(
        r,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = nix::unistd::read(r, &mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    all
}

fn owned_bytes(b: &[u8]) -> OpBuffer {
    OpBuffer::Owned(b.to_vec().into_boxed_slice())
}

#[test]
fn output_keeps_its_order_across_streams_and_user_writes() {
    let (mut ex, r) = executor_with_output_pipe();
    ex.write_output(StdStream::Out, b"a1\n", false).unwrap();
    ex.write_output(StdStream::Err, b"e1\n", true).unwrap();
    let u1 = ex
        .write(&OpFd::Std(StdStream::Out), owned_bytes(b"u1\n"))
        .unwrap();
    ex.write_output(StdStream::Out, b"a2\n", false).unwrap();
    ex.write_output(StdStream::Out, b"a3\n", false).unwrap();
    let u2 = ex
        .write(&OpFd::Std(StdStream::Err), owned_bytes(b"u2\n"))
        .unwrap();
    ex.write_output(StdStream::Err, b"e2\n", false).unwrap();
    ex.finish_output().unwrap();
    assert_eq!(ex.output_backlog(), 0);
    assert_eq!(read_available(&r), b"a1\ne1\nu1\na2\na3\nu2\ne2\n");
    // The user writes' completions were kept for the next turn.
    let mut done = reap_n(&mut ex, 2);
    done.sort_by_key(|d| d.0.to_user_data());
    let mut expected = vec![(u1, 3), (u2, 3)];
    expected.sort_by_key(|d| d.0.to_user_data());
    assert_eq!(done, expected);
    assert_eq!(ex.in_flight(), 0);
}

/// Regression (a host thread slept for ever): a completion reaped while
/// output was flushed is in no ring any more, so `has_stashed` must say so
/// until a turn delivers it, while `in_flight` is already 0.
#[test]
fn completions_reaped_by_an_output_flush_are_reported_until_a_turn_delivers_them() {
    let (mut ex, r) = executor_with_output_pipe();
    let nop = ex.yield_now().unwrap();
    ex.write_output(StdStream::Out, b"flushed\n", false)
        .unwrap();
    ex.finish_output().unwrap();
    assert_eq!(read_available(&r), b"flushed\n");
    assert_eq!(ex.in_flight(), 0, "the NOP's slot was reaped by the flush");
    assert!(ex.has_stashed(), "its completion waits for the next turn");
    let mut out = Reaped::default();
    ex.turn(false, &mut out).unwrap();
    assert_eq!(out.completions.len(), 1);
    assert_eq!(out.completions[0].id, nop);
    assert!(!ex.has_stashed());
}

/// Address space that is readable but backed by nothing: more than half
/// of x86-64's 128 TiB user space, so no copy of it can ever be allocated,
/// whatever the overcommit policy.
struct UncopyableBytes {
    ptr: *mut libc::c_void,
    len: usize,
}

impl UncopyableBytes {
    fn new() -> Self {
        let len = 80usize << 40;
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        assert_ne!(ptr, libc::MAP_FAILED, "{}", std::io::Error::last_os_error());
        Self { ptr, len }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is readable for `len` bytes while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.cast(), self.len) }
    }
}

impl Drop for UncopyableBytes {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

#[test]
fn output_the_queue_has_no_memory_for_is_enomem_and_queues_nothing() {
    let (mut ex, r) = executor_with_output_pipe();
    let huge = UncopyableBytes::new();
    ex.write_output(StdStream::Out, b"before\n", false).unwrap();
    // appended to the queued chunk of the same stream, and as a new chunk
    for stream in [StdStream::Out, StdStream::Err] {
        let err = ex.write_output(stream, huge.bytes(), false).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOMEM));
    }
    assert_eq!(ex.output_backlog(), b"before\n".len());
    ex.write_output(StdStream::Out, b"after\n", false).unwrap();
    ex.finish_output().unwrap();
    assert_eq!(read_available(&r), b"before\nafter\n");
}

#[test]
fn a_stream_nobody_reads_blocks_no_turn_and_loses_nothing() {
    let (mut ex, r) = executor_with_output_pipe();
    // Four times what a pipe holds, in odd-sized pieces.
    let mut expected = Vec::new();
    for i in 0..8000u32 {
        let line = format!("{i:05} {}\n", "z".repeat((i % 97) as usize));
        expected.extend_from_slice(line.as_bytes());
        ex.write_output(StdStream::Out, line.as_bytes(), false)
            .unwrap();
    }
    assert!(expected.len() > 4 * 65536);
    // Timers keep completing while the pipe is full.
    for _ in 0..3 {
        let t = ex.sleep(1_000_000).unwrap();
        assert_eq!(reap_n(&mut ex, 1), vec![(t, -libc::ETIME)]);
    }
    assert!(
        ex.output_backlog() > 0,
        "the pipe cannot have taken everything"
    );
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut all).unwrap();
        all
    });
    ex.finish_output().unwrap();
    // Closing the write end (the executor holds it) ends the reader.
    drop(ex);
    assert_eq!(reader.join().unwrap(), expected);
}

#[test]
fn eagain_from_a_stream_waits_for_room_and_retries() {
    let (mut ex, r) = executor_with_output_pipe();
    ex.faults.output_eagain = 3;
    ex.write_output(StdStream::Out, b"first\n", true).unwrap();
    ex.write_output(StdStream::Err, b"second\n", true).unwrap();
    ex.finish_output().unwrap();
    assert_eq!(ex.faults.output_eagain, 0, "the EAGAIN path never ran");
    assert_eq!(read_available(&r), b"first\nsecond\n");
}

#[test]
fn a_queued_user_write_cancelled_before_its_turn_never_runs() {
    let (mut ex, r) = executor_with_output_pipe();
    ex.write_output(StdStream::Out, b"runtime\n", false)
        .unwrap();
    let queued = ex
        .write(&OpFd::Std(StdStream::Out), owned_bytes(b"never\n"))
        .unwrap();
    let after = ex
        .write(&OpFd::Std(StdStream::Out), owned_bytes(b"after\n"))
        .unwrap();
    ex.cancel(queued).unwrap();
    let mut done = reap_n(&mut ex, 2);
    done.sort_by_key(|d| d.0.to_user_data());
    let mut expected = vec![(queued, -libc::ECANCELED), (after, 6)];
    expected.sort_by_key(|d| d.0.to_user_data());
    assert_eq!(done, expected);
    ex.finish_output().unwrap();
    assert_eq!(read_available(&r), b"runtime\nafter\n");
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn output_to_a_closed_pipe_is_dropped_and_user_writes_see_epipe() {
    let (mut ex, r) = executor_with_output_pipe();
    drop(r);
    ex.write_output(StdStream::Out, &[b'x'; 100_000], true)
        .unwrap();
    ex.finish_output().unwrap();
    assert_eq!(ex.output_backlog(), 0);
    let u = ex
        .write(&OpFd::Std(StdStream::Out), owned_bytes(b"late\n"))
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(u, -libc::EPIPE)]);
}

#[test]
fn a_vm_whose_ring_dropped_a_completion_ends_with_a_clear_internal_error() {
    use crate::actor::vm::{Vm, VmConfig};
    let dir = std::env::temp_dir().join(format!("luring-dropped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("main.lua");
    std::fs::write(
        &script,
        "local time = require 'time'\ntime.sleep(0.001)\nerror('not reached')\n",
    )
    .unwrap();
    DROPPED_AT_START.set(1);
    let vm = Vm::new().unwrap();
    let start = Instant::now();
    let result = vm.run_main(&VmConfig {
        script,
        arguments: vec![],
        context: "main",
    });
    assert!(start.elapsed() < Duration::from_secs(5));
    match result {
        Err(crate::RuntimeError::Internal(msg)) => {
            assert!(msg.contains("dropped 1 io_uring completion"), "{msg}")
        }
        other => panic!("expected an internal error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn output_beyond_the_backlog_limit_waits_for_the_stream_instead_of_growing() {
    let (mut ex, r) = executor_with_output_pipe();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut all).unwrap();
        all
    });
    let piece: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let pieces = output::OUTPUT_BACKLOG_LIMIT / piece.len() + 4;
    for _ in 0..pieces {
        ex.write_output(StdStream::Out, &piece, false).unwrap();
        assert!(ex.output_backlog() <= output::OUTPUT_BACKLOG_LIMIT);
    }
    ex.finish_output().unwrap();
    drop(ex);
    let got = reader.join().unwrap();
    assert_eq!(got.len(), pieces * piece.len());
    assert!(got.chunks(piece.len()).all(|c| c == piece.as_slice()));
}

/// A read with data ready completes during its submission: `complete_inline`
/// hands back its result and the op is over (slot freed, buffer filled).
#[test]
fn a_read_with_data_ready_completes_inline() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    nix::unistd::write(&w, b"hello").unwrap();
    let span = SpanRef::new_zeroed(16, 16);
    let id = ex.read(&owned(r), OpBuffer::Span(span.clone())).unwrap();
    assert_eq!(ex.complete_inline(id).unwrap(), Some(5));
    assert_eq!(ex.in_flight(), 0);
    assert!(!ex.has_stashed());
    assert_eq!(&span.to_vec()[..5], b"hello");
}

/// A read that must wait is submitted but not completed: it stays in
/// flight and a later turn delivers it, as for any op.
#[test]
fn a_read_that_must_wait_is_left_to_a_turn() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    let id = ex
        .read(&owned(r), OpBuffer::Span(SpanRef::new_zeroed(16, 16)))
        .unwrap();
    assert_eq!(ex.complete_inline(id).unwrap(), None);
    assert_eq!(ex.in_flight(), 1);
    nix::unistd::write(&w, b"late").unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 4)]);
}

/// When another op completed in the same submission (or completions wait
/// in the stash), nothing is taken inline: every completion, the op's own
/// included, is delivered by the next turn in the ring's order.
#[test]
fn other_completions_send_an_inline_op_through_the_turn() {
    let mut ex = Executor::new().unwrap();
    let (r, w) = pipe();
    nix::unistd::write(&w, b"abc").unwrap();
    let nop = ex.yield_now().unwrap();
    let id = ex
        .read(&owned(r), OpBuffer::Span(SpanRef::new_zeroed(16, 16)))
        .unwrap();
    assert_eq!(ex.complete_inline(id).unwrap(), None);
    assert!(ex.has_stashed());
    let mut reaped = Reaped::default();
    ex.turn(false, &mut reaped).unwrap();
    let got: Vec<_> = reaped
        .completions
        .iter()
        .map(|c| (c.id, c.result))
        .collect();
    assert_eq!(got, vec![(nop, 0), (id, 3)]);
    // With completions stashed, nothing is even submitted: the stash is
    // delivered first, then the op in the ring's order.
    let (r2, w2) = pipe();
    nix::unistd::write(&w2, b"x").unwrap();
    let nop1 = ex.yield_now().unwrap();
    let nop2 = ex.yield_now().unwrap();
    assert_eq!(ex.complete_inline(nop2).unwrap(), None);
    assert!(ex.has_stashed());
    let id = ex
        .read(&owned(r2), OpBuffer::Span(SpanRef::new_zeroed(4, 4)))
        .unwrap();
    assert_eq!(ex.complete_inline(id).unwrap(), None);
    assert_eq!(ex.in_flight(), 1, "the read waits in the SQ");
    ex.turn(false, &mut reaped).unwrap();
    let got: Vec<_> = reaped
        .completions
        .iter()
        .map(|c| (c.id, c.result))
        .collect();
    assert_eq!(got, vec![(nop1, 0), (nop2, 0), (id, 1)]);
}

/// A received message reports how many control messages came and whether
/// one was not `SCM_RIGHTS` (the sandbox relay refuses both): here an fd
/// plus `SCM_CREDENTIALS` (while the receiver sets `SO_PASSCRED`), then an
/// fd only.
#[test]
fn recv_msg_counts_control_messages_and_flags_foreign_ones() {
    let mut pair = [0; 2];
    // SAFETY: socketpair writes two fds into the array on success.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0);
    // SAFETY: both fds were just created and are owned by nothing else.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    let (pr, _pw) = pipe();
    let b = owned(b);
    let mut ex = Executor::new().unwrap();
    for pass_credentials in [true, false] {
        let on = libc::c_int::from(pass_credentials);
        // SAFETY: setsockopt reads one c_int from a live local.
        let r = unsafe {
            libc::setsockopt(
                b.raw(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(r, 0);
        luring_sandbox::sys::send_with_fds(a.as_raw_fd(), b"frame", &[pr.as_raw_fd()]).unwrap();
        // Room for 16 fds: the credentials fit beside the one fd.
        let span = SpanRef::new_zeroed(64, 64);
        let id = ex.recv_msg(&b, OpBuffer::Span(span), 16, 0).unwrap();
        assert_eq!(reap_n(&mut ex, 1), vec![(id, 5)]);
        match ex.take_socket_output(id) {
            Some(socket::SocketOutput::Received {
                fds,
                control_messages,
                foreign_control,
                fds_truncated,
                ..
            }) => {
                assert_eq!((fds.len(), fds_truncated), (1, false), "the fd arrived");
                assert_eq!(control_messages, if pass_credentials { 2 } else { 1 });
                assert_eq!(foreign_control, pass_credentials);
            }
            other => panic!("no received output: {other:?}"),
        }
    }
}

/// A datagram socket pair (`SOCK_SEQPACKET`), as a sandbox's control
/// socket.
fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    let mut sv = [0; 2];
    // SAFETY: socketpair writes two fds into `sv`, which we then own.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0, sv.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair");
    // SAFETY: both fds were just created and are owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) }
}

#[test]
fn after_traffic_a_blocking_turn_watches_and_delivers_a_frame_from_another_thread() {
    // (Whether the frame's task work already ran when the watch starts,
    // or waits behind IORING_SQ_TASKRUN, depends on the scheduler: either
    // way the completion must come out of the watch.)
    let mut ex = Executor::new().unwrap();
    let (a, b) = seqpacket_pair();
    let span = SpanRef::new_zeroed(64, 64);
    let id = ex.recv(&owned(a), OpBuffer::Span(span), 0).unwrap();
    let mut r = Reaped::default();
    // Submitted: the socket is empty, so the RECV waits (poll armed).
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty());
    ex.note_traffic();
    // The frame arrives from another thread while this one runs without
    // a syscall: with COOP_TASKRUN the RECV's task work may then wait for
    // this thread's next kernel entry (IORING_SQ_TASKRUN set), which the
    // watch makes.
    use std::sync::atomic::{AtomicU8, Ordering};
    let step = std::sync::Arc::new(AtomicU8::new(0));
    let sender = {
        let step = step.clone();
        std::thread::spawn(move || {
            while step.load(Ordering::Acquire) == 0 {
                std::hint::spin_loop();
            }
            // SAFETY: `b` is open; the buffer is valid for its length.
            let sent = unsafe { libc::send(b.as_raw_fd(), b"frame".as_ptr().cast(), 5, 0) };
            step.store(if sent == 5 { 2 } else { 3 }, Ordering::Release);
            b
        })
    };
    step.store(1, Ordering::Release);
    while step.load(Ordering::Acquire) == 1 {
        std::hint::spin_loop();
    }
    assert_eq!(step.load(Ordering::Acquire), 2, "send failed");
    let done = reap_n(&mut ex, 1);
    drop(sender.join());
    assert_eq!(done, vec![(id, 5)]);
}

/// A datagram read armed as if the socket were empty (POLL_FIRST, where
/// the kernel has it) gets a datagram that was there already, one that
/// comes later, and a truncated one's real length, as a plain receive.
#[test]
fn a_datagram_read_gets_frames_queued_before_and_after_it() {
    let mut ex = Executor::new().unwrap();
    let (a, b) = seqpacket_pair();
    let a = owned(a);
    let send = |bytes: &[u8]| {
        // SAFETY: `b` is open; the buffer is valid for its length.
        let sent = unsafe { libc::send(b.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        assert_eq!(sent, bytes.len() as isize);
    };
    send(b"early");
    let span = SpanRef::new_zeroed(8, 8);
    let id = ex.recv_datagram(&a, OpBuffer::Span(span.clone())).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 5)]);
    span.with_bytes(|bytes| assert_eq!(&bytes[..5], b"early"));
    let id = ex.recv_datagram(&a, OpBuffer::Span(span.clone())).unwrap();
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty(), "nothing to read yet");
    send(b"late");
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 4)]);
    span.with_bytes(|bytes| assert_eq!(&bytes[..4], b"late"));
    let id = ex.recv_datagram(&a, OpBuffer::Span(span)).unwrap();
    send(b"longer than eight");
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 17)]);
}

/// A `recvmsg` armed as if the socket were empty (`recv_msg_polled`, the
/// host's read of a sandbox's frames) gets a frame that was there
/// already, with its fd, and one that comes later, as `recv_msg`.
#[test]
fn a_polled_message_read_gets_frames_queued_before_and_after_it() {
    let mut ex = Executor::new().unwrap();
    let (a, b) = seqpacket_pair();
    let a = owned(a);
    let (pr, _pw) = std::io::pipe().unwrap();
    luring_sandbox::sys::send_with_fds(b.as_raw_fd(), b"early", &[pr.as_raw_fd()]).unwrap();
    let span = SpanRef::new_zeroed(8, 8);
    let id = ex
        .recv_msg_polled(&a, OpBuffer::Span(span.clone()), 4, 0)
        .unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 5)]);
    span.with_bytes(|bytes| assert_eq!(&bytes[..5], b"early"));
    match ex.take_socket_output(id) {
        Some(socket::SocketOutput::Received { fds, .. }) => assert_eq!(fds.len(), 1),
        other => panic!("no received output: {other:?}"),
    }
    let id = ex
        .recv_msg_polled(&a, OpBuffer::Span(span.clone()), 4, 0)
        .unwrap();
    let mut r = Reaped::default();
    ex.turn(false, &mut r).unwrap();
    assert!(r.completions.is_empty(), "nothing to read yet");
    luring_sandbox::sys::send_with_fds(b.as_raw_fd(), b"late", &[]).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, 4)]);
    span.with_bytes(|bytes| assert_eq!(&bytes[..4], b"late"));
}

/// A timer for a watch to wait for in vain: 100 ms.
const VAIN_WATCH_TIMER_NS: u64 = 100_000_000;

#[test]
fn a_watch_that_finds_nothing_sleeps_and_backs_off() {
    let mut ex = Executor::new().unwrap();
    // Far longer than a watch (50 µs), and than any stall of this thread
    // between the turn's submission of the timer and its watch (a watch
    // that found the timer's completion would not be a vain one): the
    // turn watches in vain, then sleeps in the ring until the timer
    // fires. One vain watch is a
    // stall, not a pattern: no back-off yet, but no watch either until
    // the next traffic.
    ex.note_traffic();
    let id = ex.sleep(VAIN_WATCH_TIMER_NS).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, -libc::ETIME)]);
    assert!(!ex.spin_wait);
    assert!(
        ex.no_watch_until.is_none(),
        "one vain watch starts no back-off"
    );
    // The next one in vain, with no watch that found its completion in
    // between: the back-off starts.
    ex.note_traffic();
    let before = Instant::now();
    let id = ex.sleep(VAIN_WATCH_TIMER_NS).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(id, -libc::ETIME)]);
    let after = Instant::now();
    assert!(!ex.spin_wait);
    // The back-off runs WATCH_BACKOFF from when the watch gave up, which
    // was between `before` and `after`. (Checked against these bounds, not
    // by calling may_watch now: a loaded machine may stall this thread
    // past the 10 ms, and then watching again is right.)
    let until = ex
        .no_watch_until
        .expect("a second vain watch starts a back-off");
    assert!(until >= before + WATCH_BACKOFF && until <= after + WATCH_BACKOFF);
    // Within the back-off (a deadline no stall reaches): no watch, and
    // traffic alone does not end it.
    ex.no_watch_until = Some(after + Duration::from_secs(3600));
    assert!(!ex.may_watch(), "no watch within the back-off");
    ex.note_traffic();
    assert!(!ex.may_watch());
    // Once it is over, watching is allowed again and the back-off cleared.
    ex.no_watch_until = Some(before);
    assert!(ex.may_watch());
    assert!(ex.no_watch_until.is_none());
}

#[test]
fn watches_that_find_their_completion_forgive_a_vain_one() {
    let mut ex = Executor::new().unwrap();
    // A vain watch, then as many that found their completion as it
    // weighs: the next vain one is again a lone stall.
    ex.watched(Watched::Nothing);
    for _ in 0..WATCH_STRIKE {
        ex.watched(Watched::Found);
    }
    ex.watched(Watched::Nothing);
    assert!(ex.no_watch_until.is_none());
    // Fewer found ones leave a remainder: vain watches more often than
    // about one in WATCH_STRIKE add up, and back off.
    for _ in 1..WATCH_STRIKE {
        ex.watched(Watched::Found);
    }
    ex.watched(Watched::Nothing);
    assert!(ex.no_watch_until.is_none());
    ex.watched(Watched::Nothing);
    assert!(ex.no_watch_until.is_some());
    // The back-off starts the count afresh.
    assert_eq!(ex.watch_strikes, 0);
}

#[test]
fn watches_that_find_only_after_losing_the_core_back_off() {
    // (The peer shares this core, or the machine is busy: each watch
    // found its completion only once a yield let another task run.)
    let mut ex = Executor::new().unwrap();
    ex.note_traffic();
    ex.watched(Watched::FoundLate);
    // Its completion came: the next traffic-less turn may still watch.
    assert!(ex.spin_wait);
    assert!(ex.no_watch_until.is_none());
    ex.watched(Watched::FoundLate);
    assert!(ex.no_watch_until.is_some(), "two in a row back off");
}

#[test]
fn a_watch_with_its_completion_ready_finds_it_without_yielding() {
    let mut ex = Executor::new().unwrap();
    // (a NOP completes at submission: its CQE is there before the watch.
    // A stall of this thread longer than the watch inside it, possible on
    // a loaded machine, rightly makes it late: three tries.)
    let mut watched = Vec::new();
    for _ in 0..3 {
        let id = ex.yield_now().unwrap();
        ex.submit_pending().unwrap();
        watched.push(ex.watch_completions());
        assert_eq!(reap_n(&mut ex, 1), vec![(id, 0)]);
        if watched.last() == Some(&Watched::Found) {
            return;
        }
    }
    panic!("a ready completion was never found in time: {watched:?}");
}

/// Direct reads (direct.rs): a regular file's cached data comes without
/// the ring, at the file position; the end of the file, a queued SQE and
/// descriptors that are not regular files leave the read to the ring.
#[test]
fn direct_reads_take_cached_file_data_and_leave_the_rest_to_the_ring() {
    let dir = std::env::temp_dir().join(format!("luring-direct-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("data");
    std::fs::write(&path, b"0123456789").unwrap();
    let file = owned(std::fs::File::open(&path).unwrap().into());
    assert!(direct_readable(&file));
    let mut ex = Executor::new().unwrap();
    let mut span = SpanRef::new_zeroed(4, 4);
    // Written just now, so cached: read directly, and the position moves.
    assert_eq!(ex.read_direct(&file, &mut span), DirectRead::Done(4));
    assert_eq!(span.to_vec(), b"0123");
    assert_eq!(ex.read_direct(&file, &mut span), DirectRead::Done(4));
    assert_eq!(span.to_vec(), b"4567");
    // A short read at the end, then the end itself goes to the ring (which
    // reads 0 there), the position unchanged.
    assert_eq!(ex.read_direct(&file, &mut span), DirectRead::Done(2));
    assert_eq!(ex.read_direct(&file, &mut span), DirectRead::UseRing);
    let r = ex.read(&file, OpBuffer::Span(span.clone())).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(r, 0)]);
    // With an SQE queued for the kernel (not yet submitted), no direct
    // read: the queued op is not held back.
    let (pr, pw) = pipe();
    let waiting = ex
        .read(&owned(pr), OpBuffer::Span(SpanRef::new_zeroed(1, 1)))
        .unwrap();
    // SAFETY: lseek only names the fd, which `file` keeps open.
    assert_eq!(unsafe { libc::lseek(file.raw(), 0, libc::SEEK_SET) }, 0);
    assert_eq!(ex.read_direct(&file, &mut span), DirectRead::UseRing);
    let r = ex.read(&file, OpBuffer::Span(span.clone())).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(r, 4)]);
    // Once submitted, direct reads go on from the ring's position.
    assert_eq!(ex.read_direct(&file, &mut span), DirectRead::Done(4));
    assert_eq!(span.to_vec(), b"4567");
    // An empty view reads nothing directly.
    assert_eq!(
        ex.read_direct(&file, &mut SpanRef::new_zeroed(0, 4)),
        DirectRead::UseRing
    );
    // A file system without RWF_NOWAIT (procfs): a regular file, but the
    // read says so, and the ring reads it.
    let status = owned(std::fs::File::open("/proc/self/status").unwrap().into());
    assert!(direct_readable(&status));
    assert_eq!(ex.read_direct(&status, &mut span), DirectRead::Unsupported);
    let r = ex.read(&status, OpBuffer::Span(span.clone())).unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(r, 4)]);
    assert_eq!(span.to_vec(), b"Name");
    // O_DIRECT reads wait for the device even with RWF_NOWAIT: never
    // direct. (File systems without O_DIRECT refuse the open: EINVAL.)
    match std::os::unix::fs::OpenOptionsExt::custom_flags(
        std::fs::File::options().read(true),
        libc::O_DIRECT,
    )
    .open(&path)
    {
        Ok(f) => assert!(!direct_readable(&owned(f.into()))),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "open O_DIRECT: {e}"),
    }
    // Pipes, sockets, character devices, directories and the standard
    // streams are not regular files.
    let (r2, w2) = pipe();
    assert!(!direct_readable(&owned(r2)));
    let (s1, _s2) = std::os::unix::net::UnixStream::pair().unwrap();
    assert!(!direct_readable(&owned(s1.into())));
    let null = std::fs::File::open("/dev/null").unwrap();
    assert!(!direct_readable(&owned(null.into())));
    let d = std::fs::File::open(&dir).unwrap();
    assert!(!direct_readable(&owned(d.into())));
    assert!(!direct_readable(&OpFd::Std(StdStream::In)));
    // The pipe read still waits in the ring; a byte completes it.
    std::io::Write::write_all(&mut std::fs::File::from(pw), b"x").unwrap();
    assert_eq!(reap_n(&mut ex, 1), vec![(waiting, 1)]);
    drop(w2);
    std::fs::remove_dir_all(&dir).unwrap();
}
