//! The executor's socket ops leak no fd when their results are never taken
//! or their executor is dropped with them in flight: accepted connections
//! and fds received with SCM_RIGHTS are owned from the moment the
//! completion is dispatched. A test binary of its own (counting
//! `/proc/self/fd` needs no other test thread opening fds; the tests take
//! one lock).

use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use luring::executor::{Executor, OpBuffer, OpFd, OpId, Reaped};

static FD_COUNTING: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs is mounted")
        .count()
}

fn buf(n: usize) -> OpBuffer {
    OpBuffer::Owned(vec![0; n].into_boxed_slice())
}

/// Turns `ex` until `id` completed; returns its result.
fn wait(ex: &mut Executor, id: OpId) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reaped = Reaped::default();
    loop {
        ex.turn(true, &mut reaped).expect("turn");
        if let Some(c) = reaped.completions.iter().find(|c| c.id == id) {
            return c.result;
        }
        assert!(Instant::now() < deadline, "op {id:?} never completed");
    }
}

fn pair() -> (OpFd, OpFd) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    (OpFd::owned(OwnedFd::from(a)), OpFd::owned(OwnedFd::from(b)))
}

#[test]
fn received_fds_and_accepted_connections_nobody_took_are_closed() {
    let _lock = FD_COUNTING.lock().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().unwrap().port();
    let listener = OpFd::owned(OwnedFd::from(listener));
    let (a, b) = pair();
    let passed: Vec<OpFd> = (0..3).map(|_| pair().0).collect();
    let before = open_fds();
    for round in 0..20 {
        let mut ex = Executor::new().expect("ring");
        // An accept that completes; its output is never taken.
        let accept = ex.accept(&listener).expect("accept");
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        assert!(wait(&mut ex, accept) >= 0, "round {round}");
        drop(client);
        // fds received; the output is never taken.
        let send = ex
            .send_msg(&a, buf(1), None, passed.clone(), 0)
            .expect("sendmsg");
        assert_eq!(wait(&mut ex, send), 1);
        let recv = ex.recv_msg(&b, buf(8), 3, 0).expect("recvmsg");
        assert_eq!(wait(&mut ex, recv), 1);
        // More fds than asked for: closed at once.
        let send = ex
            .send_msg(&a, buf(1), None, passed.clone(), 0)
            .expect("sendmsg");
        assert_eq!(wait(&mut ex, send), 1);
        let recv = ex.recv_msg(&b, buf(8), 1, 0).expect("recvmsg");
        assert_eq!(wait(&mut ex, recv), 1);
        // In flight when the executor goes: cancelled, nothing leaks.
        ex.accept(&listener).expect("accept");
        ex.recv_msg(&b, buf(8), 3, 0).expect("recvmsg");
        drop(ex);
        assert_eq!(open_fds(), before, "round {round}");
    }
}

#[test]
fn send_msg_refuses_more_than_253_fds_and_recv_msg_more_than_253_slots() {
    let _lock = FD_COUNTING.lock().unwrap();
    let (a, b) = pair();
    let mut ex = Executor::new().expect("ring");
    let many = vec![a.clone(); 254];
    let e = ex.send_msg(&a, buf(1), None, many, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    let e = ex.recv_msg(&b, buf(1), 254, 0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(ex.in_flight(), 0);
}

#[test]
fn multishot_accept_stays_armed_and_its_queued_connections_close_with_the_executor() {
    let _lock = FD_COUNTING.lock().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().unwrap().port();
    let listener = OpFd::owned(OwnedFd::from(listener));
    let before = open_fds();
    let mut ex = Executor::new().expect("ring");
    let id = ex.accept_multi(&listener).expect("accept");
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut accepted = 0;
    let mut reaped = Reaped::default();
    while accepted < 3 {
        ex.turn(true, &mut reaped).expect("turn");
        accepted += reaped
            .completions
            .iter()
            .filter(|c| c.id == id && c.result >= 0)
            .count();
        assert!(Instant::now() < deadline, "only {accepted} accepted");
    }
    assert_eq!(ex.in_flight(), 1, "still armed after three connections");
    drop(ex);
    drop(clients);
    assert_eq!(open_fds(), before);
}
