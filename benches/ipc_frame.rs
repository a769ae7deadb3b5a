//! IPC frame codec benchmark: the same 10-field message as `--bench
//! message` (numbers, strings, a boolean), encoded from a `Message` into a
//! frame and decoded back, N times (default 1,000,000); and a 64 KiB
//! string, which decoding borrows instead of copying. Codec cost only: no
//! socket, no Lua.
//!
//! Run: `cargo bench --bench ipc_frame` or `cargo bench --bench ipc_frame -- N`.

use std::hint::black_box;
use std::time::Instant;

use luring::ipc::{decode, encode_message, FdMode, FdPlacement};
use luring::Message;

fn round_trips(message: &Message, iterations: u64) -> (f64, usize) {
    let mut frame_len = 0;
    let start = Instant::now();
    for _ in 0..iterations {
        let frame = encode_message(black_box(message), FdPlacement::ScmRights).expect("encodes");
        frame_len = frame.bytes.len();
        black_box(decode(&frame.bytes, FdMode::ScmRights, 0).expect("decodes"));
    }
    (
        start.elapsed().as_nanos() as f64 / iterations as f64,
        frame_len,
    )
}

fn main() {
    let iterations: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let ten_fields = Message::object([
        ("id", Message::from(42)),
        ("name", Message::from("worker-7")),
        ("ok", Message::from(true)),
        ("ratio", Message::from(0.25)),
        ("tags", Message::from("a,b,c")),
        ("x", Message::from(1)),
        ("y", Message::from(2)),
        ("z", Message::from(3)),
        ("w", Message::from(-1)),
        ("label", Message::from("hello")),
    ]);
    let (ns, len) = round_trips(&ten_fields, iterations);
    println!(
        "ipc frame, 10-field table, Message -> frame -> Value: {ns:.1} ns per round trip ({len}-byte frame, {iterations} iterations)"
    );
    let big = Message::from(vec![b'x'; 64 * 1024]);
    let big_iterations = (iterations / 100).max(1);
    let (ns, len) = round_trips(&big, big_iterations);
    println!(
        "ipc frame, one 64 KiB string: {ns:.1} ns per round trip ({len}-byte frame, {big_iterations} iterations)"
    );
}
