//! The fixed-only executor on a restricted ring made the way the
//! supervisor makes a sandbox's (`luring_sandbox::ring::create_restricted`):
//! what a sandboxed VM needs works, everything reaching outside the
//! fixed-file table is refused before it reaches the kernel.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use luring_sandbox::ring::{create_restricted, RingSpec};

use super::*;
use crate::modules::byte_span::SpanRef;

const STDOUT_SLOT: u32 = 1;
const STDERR_SLOT: u32 = 2;
const STDIN_SLOT: u32 = 3;
const DATA_SLOT: u32 = 5;

struct Rig {
    ex: Executor,
    /// Read ends of the pipes installed as stdout and stderr.
    out: std::io::PipeReader,
    err: std::io::PipeReader,
}

/// A restricted ring with pipes in the stdout and stderr slots (and
/// `extra` in `DATA_SLOT`; the stdin slot is empty), adopted by a
/// fixed-only executor.
fn rig(extra: Option<&OwnedFd>) -> Rig {
    rig_with_stdin(extra, None)
}

/// [`rig`] with `stdin` in the stdin slot.
fn rig_with_stdin(extra: Option<&OwnedFd>, stdin: Option<&OwnedFd>) -> Rig {
    let ring = create_restricted(RingSpec::default()).expect("restricted ring");
    let (out, out_w) = std::io::pipe().unwrap();
    let (err, err_w) = std::io::pipe().unwrap();
    let sub = ring.submitter();
    sub.register_files_update(STDOUT_SLOT, &[out_w.as_raw_fd()])
        .unwrap();
    sub.register_files_update(STDERR_SLOT, &[err_w.as_raw_fd()])
        .unwrap();
    if let Some(fd) = extra {
        sub.register_files_update(DATA_SLOT, &[fd.as_raw_fd()])
            .unwrap();
    }
    if let Some(fd) = stdin {
        sub.register_files_update(STDIN_SLOT, &[fd.as_raw_fd()])
            .unwrap();
    }
    // The table holds its own references: the pipes' write ends can go.
    drop((out_w, err_w));
    let ex = Executor::on_restricted_ring(
        ring,
        FixedStdio {
            stdin: STDIN_SLOT,
            stdout: STDOUT_SLOT,
            stderr: STDERR_SLOT,
        },
    )
    .expect("executor on a restricted ring");
    assert!(ex.is_fixed_only());
    Rig { ex, out, err }
}

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

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

#[test]
fn timers_and_yields_run_on_a_restricted_ring() {
    let mut rig = rig(None);
    let timer = rig.ex.sleep(1_000_000).unwrap();
    let nop = rig.ex.yield_now().unwrap();
    let mut done = reap_n(&mut rig.ex, 2);
    done.sort_by_key(|(id, _)| *id == timer);
    assert_eq!(done, vec![(nop, 0), (timer, -libc::ETIME)]);
}

#[test]
fn reads_and_writes_on_fixed_slots() {
    let (r, w) = pipe();
    let mut rig = rig(Some(&w));
    let slot = OpFd::Fixed(DATA_SLOT);
    let id = rig
        .ex
        .write(&slot, OpBuffer::Owned(b"through the table".to_vec().into()))
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 17)]);
    drop(w);
    let mut got = vec![0; 17];
    std::fs::File::from(r).read_exact(&mut got).unwrap();
    assert_eq!(got, b"through the table");

    // A read on a slot, and its cancellation (ASYNC_CANCEL on the ring).
    let (r2, mut w2) = std::io::pipe().unwrap();
    let r2: OwnedFd = r2.into();
    let mut rig = self::rig(Some(&r2));
    let span = SpanRef::new_zeroed(8, 8);
    let id = rig
        .ex
        .read(&OpFd::Fixed(DATA_SLOT), OpBuffer::Span(span.clone()))
        .unwrap();
    w2.write_all(b"abc").unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 3)]);
    assert_eq!(&span.to_vec()[..3], b"abc");
    let id = rig
        .ex
        .read(&OpFd::Fixed(DATA_SLOT), OpBuffer::Span(span))
        .unwrap();
    let mut r = Reaped::default();
    rig.ex.turn(false, &mut r).unwrap();
    rig.ex.cancel(id).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, -libc::ECANCELED)]);
}

#[test]
fn output_goes_to_the_stdio_slots_in_order() {
    let mut rig = rig(None);
    rig.ex
        .write_output(StdStream::Out, b"one\n", false)
        .unwrap();
    rig.ex
        .write_output(StdStream::Err, b"two\n", false)
        .unwrap();
    let user = rig
        .ex
        .write(
            &OpFd::Std(StdStream::Out),
            OpBuffer::Owned(b"three\n".to_vec().into()),
        )
        .unwrap();
    rig.ex.finish_output().unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(user, 6)]);
    drop(rig.ex);
    let mut out = String::new();
    rig.out.read_to_string(&mut out).unwrap();
    let mut err = String::new();
    rig.err.read_to_string(&mut err).unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("one\nthree\n", "two\n"));
}

/// A read of fd 0 reads the stdin slot, never the process's fd 0 (which
/// the ring cannot name): its chunks in order, then EOF (0) once the
/// writer is gone. With the slot empty it fails with EBADF.
#[test]
fn stdin_reads_come_from_the_stdin_slot() {
    let (r, w) = pipe();
    let mut rig = rig_with_stdin(None, Some(&r));
    drop(r);
    let mut w = std::fs::File::from(w);
    let span = SpanRef::new_zeroed(16, 16);
    let stdin = OpFd::Std(StdStream::In);
    for chunk in [&b"first"[..], b"second chunk"] {
        let id = rig.ex.read(&stdin, OpBuffer::Span(span.clone())).unwrap();
        w.write_all(chunk).unwrap();
        assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, chunk.len() as i32)]);
        assert_eq!(&span.to_vec()[..chunk.len()], chunk);
    }
    drop(w);
    let id = rig.ex.read(&stdin, OpBuffer::Span(span.clone())).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 0)]);

    let mut rig = rig_with_stdin(None, None);
    let id = rig.ex.read(&stdin, OpBuffer::Span(span)).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, -libc::EBADF)]);
}

#[test]
fn ops_reaching_outside_the_table_are_refused_with_eperm() {
    let mut rig = rig(None);
    let eperm = |r: io::Result<OpId>| r.unwrap_err().raw_os_error();
    let path = || std::ffi::CString::new("/etc/passwd").unwrap();
    assert_eq!(
        eperm(rig.ex.open(path(), libc::O_RDONLY)),
        Some(libc::EPERM)
    );
    let (r, _w) = pipe();
    let plain = OpFd::owned(r);
    assert_eq!(
        eperm(rig.ex.read(&plain, OpBuffer::Owned(vec![0; 4].into()))),
        Some(libc::EPERM)
    );
    assert_eq!(
        eperm(rig.ex.open_beneath(&plain, path(), libc::O_RDONLY, 0)),
        Some(libc::EPERM)
    );
    assert_eq!(
        rig.ex.remote_waker().unwrap_err().raw_os_error(),
        Some(libc::EPERM)
    );
    let other = IoUring::new(2).unwrap();
    assert_eq!(
        rig.ex
            .post_wake(std::os::fd::AsFd::as_fd(&unsafe_borrow(&other)))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EPERM)
    );
    assert_eq!(
        rig.ex
            .close(OpFd::Fixed(DATA_SLOT))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
    // Nothing was handed to the kernel, nothing is left in flight.
    assert_eq!(rig.ex.in_flight(), 0);
}

/// A send is checked after its slot went into the op table
/// (`Executor::submit_with`): a refused one leaves nothing there, and the
/// next op (a send on a fixed slot) runs and completes as usual.
#[test]
fn a_refused_send_leaves_no_slot_and_the_next_op_runs() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let b: OwnedFd = b.into();
    let mut rig = rig(Some(&b));
    let plain = OpFd::owned(a.try_clone().unwrap().into());
    let refused = rig
        .ex
        .send(&plain, OpBuffer::Owned(b"never".to_vec().into()), 0)
        .unwrap_err();
    assert_eq!(refused.raw_os_error(), Some(libc::EPERM));
    assert_eq!(rig.ex.in_flight(), 0);
    let id = rig
        .ex
        .send(
            &OpFd::Fixed(DATA_SLOT),
            OpBuffer::Owned(b"hello".to_vec().into()),
            0,
        )
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 5)]);
    assert_eq!(rig.ex.in_flight(), 0);
    let mut got = [0; 5];
    (&a).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");
}

/// The ring's fd as an `OwnedFd` dup (post_wake borrows an fd).
fn unsafe_borrow(ring: &IoUring) -> OwnedFd {
    // SAFETY: the ring's fd is open for `ring`'s life; dup makes our own.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(ring.as_raw_fd()) }
        .try_clone_to_owned()
        .unwrap()
}

#[test]
fn a_fixed_slot_is_refused_by_ops_that_take_an_fd_number() {
    let mut ex = Executor::new().unwrap();
    let span = SpanRef::new_zeroed(512, 512);
    assert_eq!(
        ex.statx_fd(&OpFd::Fixed(0), span, 0)
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn dropping_the_executor_with_a_read_in_flight_returns() {
    let (r, _w) = pipe();
    let mut rig = rig(Some(&r));
    let _id = rig
        .ex
        .read(&OpFd::Fixed(DATA_SLOT), OpBuffer::Owned(vec![0; 4].into()))
        .unwrap();
    let mut reaped = Reaped::default();
    rig.ex.turn(false, &mut reaped).unwrap();
    assert_eq!(rig.ex.in_flight(), 1);
    // Drop cancels (ASYNC_CANCEL carries the required flag) and waits.
    drop(rig.ex);
}

/// The executor's refusals only make errors clear: the ring itself refuses
/// the same ops (`-EACCES`), flag or no flag, so a bug in the executor's
/// checks could not open a path or reach an fd number either.
#[test]
fn the_restricted_ring_itself_refuses_what_the_executor_refuses() {
    let mut ring = create_restricted(RingSpec::default()).unwrap();
    let path = std::ffi::CString::new("/etc/passwd").unwrap();
    let (r, _w) = pipe();
    let mut buf = [0u8; 8];
    let entries = [
        // openat on the cwd, with and without FIXED_FILE
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .build()
            .user_data(1),
        opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path.as_ptr())
            .build()
            .flags(squeue::Flags::FIXED_FILE)
            .user_data(2),
        // a read naming an fd number rather than a slot
        opcode::Read::new(types::Fd(r.as_raw_fd()), buf.as_mut_ptr(), 8)
            .build()
            .user_data(3),
        // MSG_RING and IO_DRAIN, which the executor never uses there
        opcode::MsgRingData::new(types::Fd(r.as_raw_fd()), 0, 0, None)
            .build()
            .flags(squeue::Flags::FIXED_FILE)
            .user_data(4),
        opcode::Nop::new()
            .build()
            .flags(squeue::Flags::FIXED_FILE | squeue::Flags::IO_DRAIN)
            .user_data(5),
    ];
    // One at a time: a refused SQE ends the kernel's submission batch.
    let mut got = Vec::new();
    for e in &entries {
        // SAFETY: `path` and `buf` outlive the submission and its
        // completion, reaped right below.
        unsafe { ring.submission().push(e).unwrap() };
        ring.submit_and_wait(1).unwrap();
        got.extend(ring.completion().map(|c| (c.user_data(), c.result())));
    }
    assert_eq!(got, (1..=5).map(|u| (u, -libc::EACCES)).collect::<Vec<_>>());
}

#[test]
fn path_ops_and_jobs_run_as_plain_calls_and_complete_on_the_ring() {
    let mut rig = rig(None);
    let dir = std::env::temp_dir().join(format!("luring-inline-{}", std::process::id()));
    let c = |p: &std::path::Path| std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let id = rig.ex.mkdir(c(&dir), 0o700).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 0)]);
    assert!(dir.is_dir());
    // The syscall's errno is the completion's result.
    let id = rig.ex.mkdir(c(&dir), 0o700).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, -libc::EEXIST)]);
    let size = std::mem::size_of::<libc::statx>();
    let span = SpanRef::new_zeroed(size, size);
    let id = rig
        .ex
        .statx_path(c(&dir), 0, libc::STATX_BASIC_STATS, span.clone())
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 0)]);
    // SAFETY: the span holds one whole statx the kernel wrote; any bit
    // pattern is a valid statx.
    let sx: libc::statx = unsafe { std::ptr::read_unaligned(span.to_vec().as_ptr().cast()) };
    assert_eq!(u32::from(sx.stx_mode) & libc::S_IFMT, libc::S_IFDIR);
    // A job runs here and its output comes with the completion.
    let id = rig.ex.run_blocking(|| Ok(Box::new(7u32) as _)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut r = Reaped::default();
    while r.completions.is_empty() {
        assert!(Instant::now() < deadline, "job completion");
        rig.ex.turn(false, &mut r).unwrap();
    }
    let mut done = r.completions.remove(0);
    assert_eq!((done.id, done.result), (id, 0));
    let output = done.output.take().expect("job output");
    assert_eq!(*output.downcast::<u32>().unwrap(), 7);
    let id = rig.ex.unlink(c(&dir), libc::AT_REMOVEDIR).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 0)]);
    assert!(!dir.exists());
}

#[test]
fn a_local_slot_is_usable_by_ring_ops_and_cleared_with_its_last_reference() {
    use crate::actor::sandboxed::slots;
    let mut rig = rig(None);
    slots::init_local(RingSpec::default().fixed_files);
    let (r, w) = pipe();
    let slot = slots::install_local(rig.ex.ring_fd(), w).unwrap();
    // The first slot past the control socket and stdio (0-3).
    assert_eq!(slot.index(), crate::actor::sandboxed::FIRST_CAPABILITY_SLOT);
    assert_eq!(slot.index(), 4);
    let fd = OpFd::Slot(std::rc::Rc::new(slot));
    let id = rig
        .ex
        .write(&fd, OpBuffer::Owned(b"local".to_vec().into()))
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 5)]);
    // The object lets go: the slot is cleared (EOF for the reader, once
    // the plain fd closed too) and handed out again.
    let id = rig.ex.close(fd).unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 0)]);
    let mut got = Vec::new();
    std::fs::File::from(r).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"local");
    // The cleared slot reaches nothing: a write on it fails.
    let id = rig
        .ex
        .write(&OpFd::Fixed(4), OpBuffer::Owned(b"x".to_vec().into()))
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, -libc::EBADF)]);
    let (_r2, w2) = pipe();
    let again = slots::install_local(rig.ex.ring_fd(), w2).unwrap();
    assert_eq!(again.index(), 4);
}

// ---- capabilities installed by a host ring (MSG_RING send-fd) ----

/// A host executor installs descriptors in a restricted ring's allocation
/// range (the upper half of its table, set before the ring was enabled):
/// each lands in a distinct slot of that range, is usable there, and the
/// sender keeps its own. When the range is full the next install is
/// `ENFILE`; a `GrantedSlot` dropped frees its slot for the next one.
#[test]
fn host_installs_land_in_the_allocation_range_until_it_is_full() {
    let (data_r, data_w) = pipe();
    let mut rig = rig(None);
    let mut host = Executor::new().expect("host executor");
    // SAFETY: the rig's executor owns the ring fd for the whole test.
    let target = unsafe { BorrowedFd::borrow_raw(rig.ex.ring_fd()) };
    let range = luring_sandbox::ring::host_slots(RingSpec::default().fixed_files);
    let mut granted = Vec::new();
    for _ in 0..range.len() {
        let slot = host
            .send_fd_to_ring(data_w.as_fd(), target)
            .expect("an install");
        assert!(range.contains(&slot), "slot {slot} outside {range:?}");
        assert!(!granted
            .iter()
            .any(|g: &OpFd| matches!(g, OpFd::Granted(s) if s.index() == slot)));
        granted.push(OpFd::Granted(std::rc::Rc::new(GrantedSlot::new(
            rig.ex.ring_fd(),
            slot,
        ))));
    }
    let full = host.send_fd_to_ring(data_w.as_fd(), target).unwrap_err();
    assert_eq!(full.raw_os_error(), Some(libc::ENFILE));

    // Usable through its slot inside; the sender's copy still works.
    let id = rig
        .ex
        .write(&granted[3], OpBuffer::Owned(Box::from(&b"inside"[..])))
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, 6)]);
    nix::unistd::write(&data_w, b"!").unwrap();
    let mut got = [0u8; 7];
    let mut reader = std::fs::File::from(data_r);
    reader.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"inside!");

    // Dropping a granted slot empties it: the next install fits again.
    let freed = match granted.remove(7) {
        OpFd::Granted(s) => s.index(),
        _ => unreachable!(),
    };
    let slot = host.send_fd_to_ring(data_w.as_fd(), target).unwrap();
    assert_eq!(slot, freed);
    drop(granted);
    // An emptied slot reaches nothing.
    let id = rig
        .ex
        .write(
            &OpFd::Fixed(range.start),
            OpBuffer::Owned(Box::from(&b"x"[..])),
        )
        .unwrap();
    assert_eq!(reap_n(&mut rig.ex, 1), vec![(id, -libc::EBADF)]);
}

/// A directory cannot be sent; a fixed-only executor cannot install into
/// another ring; only a fixed-only executor turns a slot into a plain fd,
/// and only a slot.
#[test]
fn refusals_of_the_install_paths() {
    let mut rig = rig(None);
    let dir = std::fs::File::open("/").unwrap();
    assert!(luring_sandbox::ring::check_capability(dir.as_fd()).is_err());
    let (r, _w) = pipe();
    // SAFETY: the rig's executor owns the ring fd for the whole test.
    let target = unsafe { BorrowedFd::borrow_raw(rig.ex.ring_fd()) };
    let err = rig.ex.send_fd_to_ring(r.as_fd(), target).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    let mut host = Executor::new().unwrap();
    assert_eq!(
        host.fd_of_slot(&OpFd::Fixed(1)).unwrap_err().raw_os_error(),
        Some(libc::EPERM)
    );
    assert_eq!(
        rig.ex
            .fd_of_slot(&OpFd::owned(r))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
}

/// A slot turned into a plain fd (`FIXED_FD_INSTALL`, on the restricted
/// ring's allow-list) is the same open file: what is written through the
/// plain fd comes out of the slot's pipe.
#[test]
fn a_slot_becomes_a_plain_fd_of_the_same_file() {
    let (data_r, data_w) = pipe();
    let mut rig = rig(Some(&data_w));
    drop(data_w);
    let plain = rig
        .ex
        .fd_of_slot(&OpFd::Fixed(DATA_SLOT))
        .expect("a plain fd");
    // SAFETY: F_GETFD on a descriptor we own.
    let flags = unsafe { libc::fcntl(plain.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    nix::unistd::write(&plain, b"plain").unwrap();
    let mut got = [0u8; 5];
    std::fs::File::from(data_r).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"plain");
    // An empty slot gives no fd.
    assert_eq!(
        rig.ex
            .fd_of_slot(&OpFd::Fixed(40))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EBADF)
    );
}
