//! Receive streams (recv_multi.rs): the buffer ring running dry, a
//! delivery taken back from a reader that left, the flow-control pause,
//! CQEs nobody waits for, the byte queue.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::recv_multi::{ByteQueue, QUEUE_CAP, STREAM_RETRY};
use super::{Executor, OpFd, Reaped, RecvStream, StreamRead};
use crate::modules::byte_span::SpanRef;

const DEADLINE: Duration = Duration::from_secs(20);

fn stream_pair() -> (OwnedFd, OwnedFd) {
    let mut sv = [-1; 2];
    // SAFETY: socketpair writes two fds into `sv`, which we then own.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) };
    assert_eq!(r, 0, "socketpair");
    // SAFETY: just created, owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(sv[0]), OwnedFd::from_raw_fd(sv[1])) }
}

fn write_all(fd: &OwnedFd, bytes: &[u8]) {
    // SAFETY: writes from a live slice to an fd we own.
    let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n, bytes.len() as isize, "write");
}

fn bytes_of(span: &SpanRef, n: usize) -> Vec<u8> {
    span.to_vec()[..n].to_vec()
}

/// Reads `stream` into `span` until it delivers: turns the ring while it
/// waits, re-reading after every completion of its op that said "read
/// again". Returns the bytes.
fn read_until_delivered(ex: &mut Executor, fd: &OpFd, stream: &Rc<RecvStream>) -> Vec<u8> {
    let deadline = Instant::now() + DEADLINE;
    let mut span = SpanRef::new_zeroed(16, 16);
    let mut r = Reaped::default();
    loop {
        assert!(Instant::now() < deadline, "the stream never delivered");
        let id = match ex
            .read_stream(fd, stream, &mut span)
            .expect("read")
            .expect("a ring")
        {
            StreamRead::Bytes(n) => return bytes_of(&span, n),
            StreamRead::Ended(e) => panic!("the stream ended: {e}"),
            StreamRead::Wait(id) => id,
        };
        loop {
            ex.turn(true, &mut r).expect("turn");
            if let Some(c) = r.completions.iter().find(|c| c.id == id) {
                if c.result >= 0 {
                    return bytes_of(&span, c.result as usize);
                }
                break;
            }
        }
    }
}

#[test]
fn more_streams_than_buffers_end_with_enobufs_and_every_byte_arrives_after_a_re_arm() {
    let mut ex = Executor::new().expect("executor");
    const STREAMS: usize = 100; // > BUF_COUNT (64)
    let mut pairs = Vec::new();
    let mut spans = Vec::new();
    for _ in 0..STREAMS {
        let (a, b) = stream_pair();
        let fd = OpFd::owned(a);
        let stream = Rc::new(RecvStream::default());
        let mut span = SpanRef::new_zeroed(16, 16);
        let read = ex.read_stream(&fd, &stream, &mut span).expect("read");
        assert!(matches!(read, Some(StreamRead::Wait(_))), "{read:?}");
        pairs.push((fd, b, stream));
        spans.push(span);
    }
    // All armed in the kernel, then a message to each before any reap.
    let mut r = Reaped::default();
    ex.turn(false, &mut r).expect("submit");
    for (i, (_, peer, _)) in pairs.iter().enumerate() {
        write_all(peer, format!("m{i:03}").as_bytes());
    }
    // One turn: at most 64 buffers, so some receives end (ENOBUFS) and
    // say "read again"; the others delivered into their targets.
    let deadline = Instant::now() + DEADLINE;
    let mut delivered = vec![None; STREAMS];
    let mut retries = 0;
    let mut seen = 0;
    while seen < STREAMS {
        assert!(Instant::now() < deadline, "CQEs missing");
        ex.turn(true, &mut r).expect("turn");
        for c in &r.completions {
            // (a delivering op stays armed; one that ran dry is not)
            let Some(i) = pairs.iter().position(|p| p.2.armed() == Some(c.id)) else {
                if c.result == STREAM_RETRY {
                    retries += 1;
                    seen += 1;
                }
                continue;
            };
            assert!(c.result > 0, "{}", c.result);
            delivered[i] = Some(bytes_of(&spans[i], c.result as usize));
            seen += 1;
        }
    }
    assert!(retries > 0, "the ring never ran dry (no ENOBUFS)");
    assert_eq!(retries + delivered.iter().flatten().count(), STREAMS);
    // The streams that ran dry re-arm at their next read and get theirs.
    for (i, (fd, _, stream)) in pairs.iter().enumerate() {
        let got = match delivered[i].take() {
            Some(got) => got,
            None => {
                assert_eq!(stream.armed(), None, "an ENOBUFS end disarms");
                read_until_delivered(&mut ex, fd, stream)
            }
        };
        assert_eq!(got, format!("m{i:03}").into_bytes());
    }
}

#[test]
fn a_delivery_to_a_reader_that_left_is_taken_back_before_its_completion_is_seen() {
    let mut ex = Executor::new().expect("executor");
    let (a, peer) = stream_pair();
    let fd = OpFd::owned(a);
    let stream = Rc::new(RecvStream::default());
    let mut target = SpanRef::new_zeroed(16, 16);
    let Some(StreamRead::Wait(id)) = ex.read_stream(&fd, &stream, &mut target).expect("read")
    else {
        panic!("nothing queued: the read waits");
    };
    let mut r = Reaped::default();
    ex.turn(false, &mut r).expect("submit");
    write_all(&peer, b"abc");
    // Reap outside a turn (as an inline op does): the CQE's bytes go to
    // the target and its completion waits in the stash.
    let deadline = Instant::now() + DEADLINE;
    while !ex.stash.iter().any(|c| c.id == id) {
        assert!(Instant::now() < deadline, "no CQE");
        let nop = ex.yield_now().expect("nop");
        let _ = ex.complete_inline(nop).expect("inline");
    }
    assert_eq!(bytes_of(&target, 3), b"abc");
    // The reader leaves before the turn delivers it.
    ex.unwait(&stream, id);
    ex.turn(false, &mut r).expect("turn");
    let c = r
        .completions
        .iter()
        .find(|c| c.id == id)
        .expect("the stashed completion");
    assert_eq!(
        c.result, STREAM_RETRY,
        "the stale completion says read again"
    );
    let mut next = SpanRef::new_zeroed(16, 16);
    let read = ex.read_stream(&fd, &stream, &mut next).expect("read");
    assert_eq!(read, Some(StreamRead::Bytes(3)));
    assert_eq!(bytes_of(&next, 3), b"abc");
}

#[test]
fn a_stream_that_queued_its_cap_stops_receiving_and_the_rest_stays_in_the_socket() {
    let mut ex = Executor::new().expect("executor");
    let (a, peer) = stream_pair();
    let fd = OpFd::owned(a);
    let stream = Rc::new(RecvStream::default());
    let mut one = SpanRef::new_zeroed(1, 1);
    write_all(&peer, b"x");
    assert_eq!(read_until_delivered(&mut ex, &fd, &stream), b"x");
    // Nobody reads while twice the cap arrives.
    let chunk = vec![7u8; 4096];
    let total = 2 * QUEUE_CAP;
    let mut r = Reaped::default();
    let mut sent = 0;
    while sent < total {
        write_all(&peer, &chunk);
        sent += chunk.len();
        ex.turn(false, &mut r).expect("turn");
    }
    let deadline = Instant::now() + DEADLINE;
    while stream.armed().is_some() {
        assert!(Instant::now() < deadline, "never paused");
        ex.turn(true, &mut r).expect("turn");
    }
    let queued = stream.buffered();
    assert!((QUEUE_CAP..total).contains(&queued), "{queued}");
    // Reading drains the queue, then re-arms for what the socket kept.
    let mut got = 0;
    while got < total {
        assert!(Instant::now() < deadline, "bytes missing");
        match ex
            .read_stream(&fd, &stream, &mut one)
            .expect("read")
            .expect("ring")
        {
            StreamRead::Bytes(n) => got += n,
            StreamRead::Ended(e) => panic!("ended {e}"),
            StreamRead::Wait(id) => {
                let c = super::test_support::await_one(&mut ex, id);
                if c.result > 0 {
                    got += c.result as usize;
                }
            }
        }
    }
    assert_eq!(got, total);
}

#[test]
fn a_reaps_stream_deliveries_come_before_its_other_completions_each_group_in_order() {
    let mut ex = Executor::new().expect("executor");
    let mut r = Reaped::default();
    let mut waits = Vec::new();
    let mut peers = Vec::new();
    let mut spans = Vec::new();
    for _ in 0..2 {
        let (a, b) = stream_pair();
        let fd = OpFd::owned(a);
        let stream = Rc::new(RecvStream::default());
        let mut span = SpanRef::new_zeroed(16, 16);
        let read = ex.read_stream(&fd, &stream, &mut span).expect("read");
        let Some(StreamRead::Wait(id)) = read else {
            panic!("an empty stream waits: {read:?}")
        };
        waits.push(id);
        peers.push((fd, b, stream));
        spans.push(span);
    }
    // Both receives armed, nothing reaped.
    ex.submit_queued().expect("submit");
    // Two NOPs complete at their submission: their CQEs come first.
    let nops = [ex.yield_now().expect("nop"), ex.yield_now().expect("nop")];
    ex.submit_queued().expect("submit");
    write_all(&peers[1].1, b"second");
    write_all(&peers[0].1, b"first");
    let deadline = Instant::now() + DEADLINE;
    let mut order = Vec::new();
    while order.len() < 4 {
        assert!(Instant::now() < deadline, "got only {order:?}");
        ex.turn(order.is_empty(), &mut r).expect("turn");
        order.extend(r.completions.iter().map(|c| c.id));
    }
    // The deliveries in the order the bytes arrived, then the NOPs in
    // theirs (when both came in one reap: the point of this test).
    assert_eq!(order, [waits[1], waits[0], nops[0], nops[1]]);
    assert_eq!(bytes_of(&spans[0], 5), b"first");
    assert_eq!(bytes_of(&spans[1], 6), b"second");
}

#[test]
fn bytes_that_arrive_while_no_reader_waits_make_no_completion_and_stay_queued() {
    let mut ex = Executor::new().expect("executor");
    let (a, peer) = stream_pair();
    let fd = OpFd::owned(a);
    let stream = Rc::new(RecvStream::default());
    write_all(&peer, b"one");
    assert_eq!(read_until_delivered(&mut ex, &fd, &stream), b"one");
    let id = stream.armed().expect("the receive stays armed");
    // Nobody reads: the CQE's bytes are queued and wake nobody.
    write_all(&peer, b"two");
    let deadline = Instant::now() + DEADLINE;
    let mut r = Reaped::default();
    while stream.buffered() < 3 {
        assert!(Instant::now() < deadline, "the bytes never came");
        ex.turn(true, &mut r).expect("turn");
        assert!(
            r.completions.iter().all(|c| c.id != id),
            "a completion for a CQE nobody waited for: {:?}",
            r.completions
        );
    }
    assert_eq!(stream.buffered(), 3);
    // What a fiber quiescing the stream waits for: the op's last CQE,
    // which makes a completion (cancelled), bytes still queued.
    ex.cancel(id).expect("cancel");
    let c = super::test_support::await_one(&mut ex, id);
    assert_eq!(c.result, -libc::ECANCELED);
    assert_eq!(stream.armed(), None);
    let mut span = SpanRef::new_zeroed(16, 16);
    assert_eq!(stream.take_into(&mut span), Some(StreamRead::Bytes(3)));
    assert_eq!(bytes_of(&span, 3), b"two");
}

#[test]
fn the_byte_queue_keeps_its_order_through_partial_takes_and_puts_back() {
    let mut q = ByteQueue::default();
    q.extend(b"abcdef");
    q.consume(2);
    assert_eq!(q.front(), b"cdef");
    // Put back into the room the taken bytes left...
    q.push_front(b"xy");
    assert_eq!(q.front(), b"xycdef");
    // ... and more than that room.
    q.consume(1);
    q.push_front(b"123");
    assert_eq!(q.front(), b"123ycdef");
    q.extend(b"gh");
    assert_eq!(q.front(), b"123ycdefgh");
    assert_eq!(q.len(), 10);
    q.consume(10);
    assert!(q.is_empty());
    assert_eq!(q.front(), b"");
}

#[test]
fn a_byte_queue_never_emptied_stays_within_twice_its_contents() {
    let mut q = ByteQueue::default();
    let mut stream = Vec::new();
    for i in 0..10_000u32 {
        // 100 bytes in, 99 out: never empty, slowly growing to 10,000
        // bytes, with 990,000 taken in between.
        let chunk: Vec<u8> = (0..100).map(|k| (i * 7 + k) as u8).collect();
        stream.extend_from_slice(&chunk);
        q.extend(&chunk);
        q.consume(99);
    }
    assert_eq!(q.len(), 10_000);
    assert!(q.capacity() <= 2 * (q.len() + 100), "{}", q.capacity());
    assert_eq!(q.front(), &stream[stream.len() - 10_000..]);
}
