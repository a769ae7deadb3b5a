//! Blocking-pool jobs leave no fd behind: finished, cancelled before or
//! while running, or abandoned by an executor dropped with them in flight,
//! each job's eventfd and any fd in its output are closed once the pool
//! is done with it. A test binary of its own: counting `/proc/self/fd` is
//! only exact with no other test threads opening fds.

use std::any::Any;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use luring::executor::{Executor, OpId, Reaped};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs is mounted")
        .count()
}

/// A job that returns a fresh fd (one end of a pipe; the other is closed).
fn fd_job() -> Result<Box<dyn Any + Send>, i32> {
    let (r, _w) = std::io::pipe().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    Ok(Box::new(OwnedFd::from(r)))
}

fn wait_all(ex: &mut Executor, mut ids: Vec<OpId>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut r = Reaped::default();
    while !ids.is_empty() {
        assert!(Instant::now() < deadline, "jobs never completed");
        ex.turn(true, &mut r).expect("turn");
        for c in r.completions.drain(..) {
            ids.retain(|id| *id != c.id);
        }
    }
}

/// The pool threads drop their side of a job a moment after it completed.
fn await_fd_count(expected: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = open_fds();
        if now == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} fds open, {expected} expected"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn jobs_leak_no_fd_however_they_end() {
    let at_start = open_fds();
    // The executor's ring stays open meanwhile (one fd); pool threads hold
    // no fd of their own.
    let mut ex = Executor::new().unwrap();
    let before = at_start + 1;
    assert_eq!(open_fds(), before);

    for round in 0..5 {
        // Finished: the output fds go with the completions.
        let ids: Vec<OpId> = (0..50).map(|_| ex.run_blocking(fd_job).unwrap()).collect();
        wait_all(&mut ex, ids);
        // Cancelled at once (most never start) and cancelled later.
        let ids: Vec<OpId> = (0..50).map(|_| ex.run_blocking(fd_job).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            if i % 2 == round % 2 {
                ex.cancel(*id).unwrap();
            }
        }
        wait_all(&mut ex, ids);
        await_fd_count(before);
    }

    // Dropped with jobs in flight.
    for _ in 0..50 {
        ex.run_blocking(fd_job).unwrap();
    }
    drop(ex);
    await_fd_count(at_start);
}
