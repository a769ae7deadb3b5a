//! Message deep-copy benchmark: a plain 10-field table (numbers, strings, a
//! boolean) copied out of a LuaJIT VM into a `Message` and built back into
//! the VM, N times (default 1,000,000). No reference implementation yet;
//! the in-process actor work will compare it with a send/receive pair.
//!
//! Run: `cargo bench --bench message` or `cargo bench --bench message -- N`.

fn main() {
    let iterations: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let elapsed =
        luring::bench::bench_copy_ten_fields(iterations).expect("the benchmark table copies");
    println!(
        "message copy, 10-field table, Lua -> Message -> Lua: {:.1} ns per round trip ({iterations} iterations)",
        elapsed.as_nanos() as f64 / iterations as f64
    );
}
