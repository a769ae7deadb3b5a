//! examples/echo_server.lua: started on a free port, it echoes what
//! clients send, serves 1,000 connections (some at once) and afterwards
//! holds exactly the fds it held before them (no fd leaked per
//! connection); then it is killed by PID.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod example_server;
use example_server::{fd_count, start};

fn echo_once(port: u16, payload: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(payload).expect("write");
    let mut got = vec![0; payload.len()];
    s.read_exact(&mut got).expect("echo");
    assert_eq!(got, payload);
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .expect("the server closes after EOF");
    assert!(rest.is_empty(), "nothing after the echo");
}

/// Waits (generous deadline) until the server holds `want` fds.
fn await_fd_count(pid: u32, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = fd_count(pid);
        if n == want || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn echo_server_echoes_and_leaks_no_fd_after_1000_connections() {
    let server = start("echo_server.lua");
    let pid = server.child.id();
    echo_once(server.port, b"hello, echo");
    // A payload bigger than one read of the server's 4 KiB buffer.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    echo_once(server.port, &big);
    // echo_once returns once the server closed its end: the count is
    // settled.
    let baseline = fd_count(pid);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let port = server.port;
            std::thread::spawn(move || {
                for i in 0..250 {
                    echo_once(port, format!("thread {t} message {i}").as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let after = await_fd_count(pid, baseline);
    assert_eq!(after, baseline, "fds before and after 1,000 connections");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the server still runs"
    );
    echo_once(server.port, b"still serving");
}
