//! examples/http_hello.lua: started on a free port, it answers `curl`
//! (when installed) and raw HTTP/1.1 requests with 200, honours
//! keep-alive and `Connection: close`, reassembles a request that arrives
//! in pieces, skips a request body, and answers malformed requests with
//! 400 and a close, leaving no fd behind; then it is killed by PID.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

mod example_server;
use example_server::{fd_count, start};

const HELLO: &str = "Hello from luring!\n";

struct Response {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    BufReader::new(s)
}

/// Reads one response (status line, headers, Content-Length body).
fn read_response(conn: &mut BufReader<TcpStream>) -> Response {
    let mut status = String::new();
    conn.read_line(&mut status).expect("status line");
    assert!(status.ends_with("\r\n"), "status line {status:?}");
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).expect("header line");
        let line = line.strip_suffix("\r\n").expect("CRLF").to_string();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(": ").expect("name: value");
        headers.push((name.to_string(), value.to_string()));
    }
    let mut resp = Response {
        status: status.trim_end().to_string(),
        headers,
        body: String::new(),
    };
    let len: usize = resp
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    let mut body = vec![0; len];
    conn.read_exact(&mut body).expect("body");
    resp.body = String::from_utf8(body).unwrap();
    resp
}

/// The server closed the connection: nothing more comes.
fn assert_closed(conn: &mut BufReader<TcpStream>) {
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
}

fn send(conn: &mut BufReader<TcpStream>, bytes: &[u8]) {
    conn.get_mut().write_all(bytes).expect("write");
}

#[test]
fn curl_gets_200() {
    let server = start("http_hello.lua");
    let Ok(out) = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "30"])
        .arg(format!("http://127.0.0.1:{}/", server.port))
        .output()
    else {
        // No curl here: the raw requests below cover the same.
        eprintln!("curl not found; skipped (raw TcpStream tests still run)");
        return;
    };
    assert!(out.status.success(), "curl: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:?}");
    assert!(text.ends_with(HELLO), "{text:?}");
}

#[test]
fn raw_requests_keep_alive_split_body_and_close() {
    let server = start("http_hello.lua");
    let mut conn = connect(server.port);
    // Two requests on one connection, then a pipelined pair.
    send(&mut conn, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = read_response(&mut conn);
    assert_eq!(r.status, "HTTP/1.1 200 OK");
    assert_eq!(r.body, HELLO);
    assert_eq!(r.header("Connection"), None, "kept alive");
    send(
        &mut conn,
        b"GET /two HTTP/1.1\r\nHost: x\r\n\r\nHEAD / HTTP/1.1\r\n\r\n",
    );
    assert_eq!(read_response(&mut conn).body, HELLO);
    let head = read_response(&mut conn); // HEAD: no body
    assert_eq!(head.status, "HTTP/1.1 200 OK");
    assert_eq!(head.header("Content-Length"), Some("0"));

    // A request split across several writes: no answer before it is whole.
    let pieces: [&[u8]; 5] = [
        b"GE",
        b"T /split HT",
        b"TP/1.1\r\nHo",
        b"st: x\r",
        b"\n\r\n",
    ];
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    for piece in pieces {
        let mut probe = [0u8; 1];
        match conn.get_mut().read(&mut probe) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("the server answered a partial request: {other:?}"),
        }
        send(&mut conn, piece);
    }
    conn.get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    assert_eq!(read_response(&mut conn).body, HELLO);

    // A body (split from its headers) is read and skipped.
    send(
        &mut conn,
        b"POST /form HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello",
    );
    send(&mut conn, b" body");
    send(&mut conn, b"!GET /after HTTP/1.1\r\n\r\n");
    assert_eq!(read_response(&mut conn).body, HELLO);
    assert_eq!(read_response(&mut conn).body, HELLO, "the body was skipped");

    // Connection: close ends the connection after the answer.
    send(&mut conn, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    let r = read_response(&mut conn);
    assert_eq!(r.body, HELLO);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_closed(&mut conn);

    // HTTP/1.0 closes unless asked to keep alive.
    let mut conn = connect(server.port);
    send(
        &mut conn,
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    );
    assert_eq!(read_response(&mut conn).header("Connection"), None);
    send(&mut conn, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(read_response(&mut conn).header("Connection"), Some("close"));
    assert_closed(&mut conn);
}

/// Waits (generous deadline) until the server holds `want` fds.
fn await_fd_count(pid: u32, want: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = fd_count(pid);
        if n == want || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn malformed_requests_get_400_and_a_close() {
    let server = start("http_hello.lua");
    let pid = server.child.id();
    // One full exchange first; once the server closed it, the fds the
    // server keeps are settled.
    let mut conn = connect(server.port);
    send(&mut conn, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    read_response(&mut conn);
    assert_closed(&mut conn);
    let baseline = fd_count(pid);
    let long_header = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(10_000));
    let many_headers = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(101));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"GARBAGE\r\n\r\n".to_vec()),
        ("no version", b"GET /\r\n\r\n".to_vec()),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\n\r\n".to_vec()),
        (
            "bad header",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
        ),
        (
            "space before colon",
            b"GET / HTTP/1.1\r\nX : y\r\n\r\n".to_vec(),
        ),
        (
            "bad length",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n".to_vec(),
        ),
        (
            "huge length",
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n".to_vec(),
        ),
        (
            "chunked",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".to_vec(),
        ),
        ("line too long", long_header.into_bytes()),
        ("too many headers", many_headers.into_bytes()),
    ];
    for (what, request) in cases {
        let mut conn = connect(server.port);
        send(&mut conn, &request);
        let r = read_response(&mut conn);
        assert_eq!(r.status, "HTTP/1.1 400 Bad Request", "{what}");
        assert_eq!(r.header("Connection"), Some("close"), "{what}");
        // Our side is done too: the server reads to our EOF, then closes.
        conn.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
        assert_closed(&mut conn);
    }
    // A client that leaves without a word costs nothing; the server still
    // serves.
    drop(connect(server.port));
    let mut conn = connect(server.port);
    send(&mut conn, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(read_response(&mut conn).body, HELLO);
    drop(conn);
    assert_eq!(
        await_fd_count(pid, baseline),
        baseline,
        "every connection's fd was closed"
    );
}
