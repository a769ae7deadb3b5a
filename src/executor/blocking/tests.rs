//! The blocking pool: results, errors, cancellation before and after a job
//! started, the bounded queue, panics, and an executor dropped with a job
//! in flight.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::*;
use crate::executor::test_support::{await_all as wait_all, await_one as wait_for};

const DEADLINE: Duration = Duration::from_secs(20);

/// Polls `cond` (set by another thread) until it holds.
fn await_condition(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn job(f: impl FnOnce() -> JobResult + Send + 'static) -> JobFn {
    Box::new(f)
}

#[test]
fn job_output_arrives_with_its_completion() {
    let mut ex = Executor::new().unwrap();
    let id = ex
        .run_blocking(|| Ok(Box::new(String::from("done")) as JobOutput))
        .unwrap();
    let c = wait_for(&mut ex, id);
    assert_eq!(c.result, 0);
    let out = c.output.expect("output").downcast::<String>().unwrap();
    assert_eq!(*out, "done");
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn job_errno_is_the_completion_result() {
    let mut ex = Executor::new().unwrap();
    let id = ex.run_blocking(|| Err(libc::ENOENT)).unwrap();
    let c = wait_for(&mut ex, id);
    assert_eq!(c.result, -libc::ENOENT);
    assert!(c.output.is_none());
}

#[test]
fn panicking_job_completes_with_eio_and_the_pool_goes_on() {
    let pool = Pool::new(1, 8);
    let mut ex = Executor::new().unwrap();
    let id = ex
        .run_blocking_on(&pool, job(|| panic!("job panics on purpose")))
        .unwrap();
    assert_eq!(wait_for(&mut ex, id).result, -libc::EIO);
    let id = ex
        .run_blocking_on(&pool, job(|| Ok(Box::new(7u8) as JobOutput)))
        .unwrap();
    assert_eq!(wait_for(&mut ex, id).result, 0);
}

#[test]
fn cancelling_a_running_job_completes_at_once_and_its_output_is_dropped_later() {
    let pool = Pool::new(1, 8);
    let mut ex = Executor::new().unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let started = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicBool::new(false));
    let (s, d) = (started.clone(), dropped.clone());
    let id = ex
        .run_blocking_on(
            &pool,
            job(move || {
                s.store(true, Ordering::SeqCst);
                gate_rx.recv().unwrap();
                Ok(Box::new(DropFlag(d)) as JobOutput)
            }),
        )
        .unwrap();
    await_condition("the job to start", || started.load(Ordering::SeqCst));
    ex.cancel(id).unwrap();
    let c = wait_for(&mut ex, id);
    assert_eq!(c.result, -libc::ECANCELED);
    assert!(c.output.is_none());
    assert_eq!(ex.in_flight(), 0);
    assert!(!dropped.load(Ordering::SeqCst));
    gate_tx.send(()).unwrap();
    await_condition("the abandoned output to be dropped", || {
        dropped.load(Ordering::SeqCst)
    });
}

#[test]
fn a_job_cancelled_before_it_started_never_runs() {
    let pool = Pool::new(1, 8);
    let mut ex = Executor::new().unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let first = ex
        .run_blocking_on(
            &pool,
            job(move || {
                gate_rx.recv().unwrap();
                Ok(Box::new(()) as JobOutput)
            }),
        )
        .unwrap();
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let second = ex
        .run_blocking_on(
            &pool,
            job(move || {
                r.store(true, Ordering::SeqCst);
                Ok(Box::new(()) as JobOutput)
            }),
        )
        .unwrap();
    ex.cancel(second).unwrap();
    assert_eq!(wait_for(&mut ex, second).result, -libc::ECANCELED);
    gate_tx.send(()).unwrap();
    assert_eq!(wait_for(&mut ex, first).result, 0);
    // One thread, FIFO: once a third job completed, the second was taken.
    let third = ex
        .run_blocking_on(&pool, job(|| Ok(Box::new(()) as JobOutput)))
        .unwrap();
    assert_eq!(wait_for(&mut ex, third).result, 0);
    assert!(!ran.load(Ordering::SeqCst), "a cancelled job ran");
}

#[test]
fn a_full_queue_refuses_with_eagain_and_leaves_no_op() {
    let pool = Pool::new(1, 2);
    let mut ex = Executor::new().unwrap();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    let running = ex
        .run_blocking_on(
            &pool,
            job(move || {
                s.store(true, Ordering::SeqCst);
                gate_rx.recv().unwrap();
                Ok(Box::new(()) as JobOutput)
            }),
        )
        .unwrap();
    await_condition("the first job to start", || started.load(Ordering::SeqCst));
    let queued: Vec<OpId> = (0..2)
        .map(|_| {
            ex.run_blocking_on(&pool, job(|| Ok(Box::new(()) as JobOutput)))
                .unwrap()
        })
        .collect();
    let refused_ran = Arc::new(AtomicBool::new(false));
    let r = refused_ran.clone();
    let err = ex
        .run_blocking_on(
            &pool,
            job(move || {
                r.store(true, Ordering::SeqCst);
                Ok(Box::new(()) as JobOutput)
            }),
        )
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EAGAIN));
    assert_eq!(ex.in_flight(), 3, "the refused job left an op behind");
    gate_tx.send(()).unwrap();
    let ids: Vec<OpId> = std::iter::once(running).chain(queued).collect();
    for c in wait_all(&mut ex, &ids) {
        assert_eq!(c.result, 0);
    }
    assert!(!refused_ran.load(Ordering::SeqCst));
}

#[test]
fn jobs_run_on_up_to_max_threads_at_once() {
    let pool = Pool::new(3, 16);
    assert_eq!(
        pool.queue.lock().unwrap().threads,
        0,
        "threads before the first job"
    );
    let mut ex = Executor::new().unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let ids: Vec<OpId> = (0..3)
        .map(|_| {
            let b = barrier.clone();
            ex.run_blocking_on(
                &pool,
                job(move || {
                    b.wait();
                    Ok(Box::new(()) as JobOutput)
                }),
            )
            .unwrap()
        })
        .collect();
    for c in wait_all(&mut ex, &ids) {
        assert_eq!(c.result, 0);
    }
    let threads = pool.queue.lock().unwrap().threads;
    assert!(threads <= 3, "{threads} threads for a pool of 3");
}

#[test]
fn dropping_the_executor_with_a_job_in_flight_neither_hangs_nor_leaks() {
    let pool = Pool::new(1, 8);
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let dropped = Arc::new(AtomicBool::new(false));
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let (d, f, s) = (dropped.clone(), finished.clone(), started.clone());
    let mut ex = Executor::new().unwrap();
    ex.run_blocking_on(
        &pool,
        job(move || {
            s.store(true, Ordering::SeqCst);
            gate_rx.recv().unwrap();
            f.fetch_add(1, Ordering::SeqCst);
            Ok(Box::new(DropFlag(d)) as JobOutput)
        }),
    )
    .unwrap();
    await_condition("the job to start", || started.load(Ordering::SeqCst));
    drop(ex);
    gate_tx.send(()).unwrap();
    await_condition("the job's output to be dropped", || {
        dropped.load(Ordering::SeqCst)
    });
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

#[test]
fn pool_threads_block_every_signal() {
    let pool = Pool::new(1, 8);
    let mut ex = Executor::new().unwrap();
    let id = ex
        .run_blocking_on(
            &pool,
            job(|| {
                // SAFETY: reads this thread's mask into a live local set.
                let blocked = unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
                    [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD, libc::SIGUSR1]
                        .iter()
                        .all(|&s| libc::sigismember(&set, s) == 1)
                };
                Ok(Box::new(blocked) as JobOutput)
            }),
        )
        .unwrap();
    let c = wait_for(&mut ex, id);
    assert!(*c.output.unwrap().downcast::<bool>().unwrap());
}
