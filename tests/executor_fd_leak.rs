//! Dropping an executor with operations in flight closes every fd it opened
//! or was handed, and lets the kernel finish with every buffer first. A test
//! binary of its own: counting `/proc/self/fd` is only exact with no other
//! test threads opening fds, so the tests here take one lock.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use luring::executor::{Executor, OpBuffer, OpFd, Reaped};

static FD_COUNTING: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs is mounted")
        .count()
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().expect("pipe");
    (r.into(), w.into())
}

#[test]
fn dropping_an_executor_with_ops_in_flight_leaks_no_fd() {
    let _lock = FD_COUNTING.lock().unwrap();
    let (r, w) = pipe();
    let r = OpFd::owned(r);
    let before = open_fds();
    for round in 0..3 {
        let mut ex = Executor::new().expect("ring");
        let waker = ex.remote_waker().expect("eventfd");
        for _ in 0..8 {
            ex.read(&r, OpBuffer::Owned(vec![0; 64].into_boxed_slice()))
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
    let n = nix::unistd::read(r_raw(&r), &mut buf).expect("read");
    assert_eq!(&buf[..n], b"still here");
}

fn r_raw(fd: &OpFd) -> std::os::fd::BorrowedFd<'_> {
    match fd {
        OpFd::Owned(fd) => {
            use std::os::fd::AsFd;
            fd.as_fd()
        }
        OpFd::Shared(_) | OpFd::Std(_) | OpFd::Fixed(_) | OpFd::Slot(_) | OpFd::Granted(_) => {
            unreachable!()
        }
    }
}

#[test]
fn fds_handed_to_ops_close_when_the_last_op_holding_them_is_gone() {
    let _lock = FD_COUNTING.lock().unwrap();
    let before = open_fds();
    for round in 0..3 {
        let mut ex = Executor::new().expect("ring");
        // The caller's references are gone at once; only the ops hold the
        // pipes, and the executor's drop must release them.
        for _ in 0..4 {
            let (r, _w) = pipe();
            let r = OpFd::owned(r);
            ex.read(&r, OpBuffer::Owned(vec![0; 8].into_boxed_slice()))
                .expect("read submitted");
            ex.close(r).expect("close submitted");
        }
        let mut reaped = Reaped::default();
        ex.turn(false, &mut reaped).expect("turn");
        drop(ex);
        assert_eq!(open_fds(), before, "round {round}");
    }
}

#[test]
fn fds_opened_by_ops_nobody_reaps_are_closed_on_drop() {
    let _lock = FD_COUNTING.lock().unwrap();
    let before = open_fds();
    let mut ex = Executor::new().expect("ring");
    for _ in 0..16 {
        let path = std::ffi::CString::new("/proc/self/status").unwrap();
        ex.open(path, libc::O_RDONLY).expect("open submitted");
    }
    // Some of the opens complete while the executor drops.
    drop(ex);
    assert_eq!(open_fds(), before);
    // Reaped but not taken: the completion owns the fd and closes it.
    let mut ex = Executor::new().expect("ring");
    let path = std::ffi::CString::new("/proc/self/status").unwrap();
    ex.open(path, libc::O_RDONLY).expect("open submitted");
    let mut reaped = Reaped::default();
    while reaped.completions.is_empty() {
        ex.turn(true, &mut reaped).expect("turn");
    }
    assert!(reaped.completions[0]
        .fd
        .as_ref()
        .is_some_and(|fd| fd.as_raw_fd() >= 0));
    drop(reaped);
    drop(ex);
    assert_eq!(open_fds(), before);
}

#[test]
fn a_vm_that_imports_modules_leaves_no_fd_open() {
    let _lock = FD_COUNTING.lock().unwrap();
    let dir = std::env::temp_dir().join(format!("luring-fd-leak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("a_directory.lua")).unwrap();
    let mut main = String::from("local n = 0\n");
    for i in 0..20 {
        std::fs::write(dir.join(format!("m{i}.lua")), format!("value = {i}\n")).unwrap();
        main.push_str(&format!("n = n + require('./m{i}').value\n"));
    }
    // Failing imports: a missing file, and a directory (opens, read fails).
    main.push_str("assert(not pcall(require, './missing'))\n");
    main.push_str("assert(not pcall(require, './a_directory'))\n");
    main.push_str("assert(n == 190)\n");
    std::fs::write(dir.join("main.lua"), main).unwrap();
    let before = open_fds();
    let status = luring::Runtime::new()
        .unwrap()
        .run_file(dir.join("main.lua"), &[])
        .unwrap();
    assert_eq!(status.code(), 0);
    assert_eq!(open_fds(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}
