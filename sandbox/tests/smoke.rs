use luring_sandbox::*;
fn hello(ctx: EntryContext) -> i32 {
    eprintln!("hello from sandbox, fds {:?} arg {:?}", ctx.expected_fds(), ctx.arg);
    7
}
fn main() {
    register_entry("hello", hello).unwrap();
    let sv = Supervisor::start().unwrap();
    let spec = SandboxSpec { stderr: Stdio::Inherit, ..Default::default() };
    let t = std::time::Instant::now();
    let mut h = match sv.spawn("hello", b"x", &spec) { Ok(h) => h, Err(e) => { println!("spawn error: {e}"); std::process::exit(1) } };
    println!("spawned {:?} ring={:?}", h.enforcement(), h.ring_fd().is_some());
    println!("status {}", h.wait().unwrap());
    println!("took {:?}", t.elapsed());
    println!("1 passed, 0 failed");
}
