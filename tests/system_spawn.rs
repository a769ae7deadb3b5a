//! Children outlive no VM by accident: when the program ends (normally or
//! by `system.exit`, with a fiber still waiting for the child), the
//! subprocess handles are collected and their running children get
//! `signal_on_gcreaper`; a child spawned with `pdeathsig` dies with a
//! luring that was killed outright.

#[path = "support/scratch.rs"]
mod scratch;
use std::process::Command;
use std::time::{Duration, Instant};

fn script(name: &str, src: &str) -> std::path::PathBuf {
    scratch::scratch_file("spawn", name, src)
}

/// True once `pid` no longer runs (gone, or a zombie of whoever adopted it).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn child_of_run(name: &str, src: &str, expected_code: i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(script(name, src))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(expected_code),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: i32 = text
        .trim()
        .parse()
        .expect("the script prints the child's pid");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ended(pid) {
        assert!(Instant::now() < deadline, "child {pid} still runs");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn exit_with_a_fiber_waiting_for_a_child_ends_the_child() {
    child_of_run(
        "exit_waiting.lua",
        "local system = require 'system'\n\
         local p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }\n\
         print(p.pid)\nspawn(function() p:wait() end)\nthis_fiber.yield()\nsystem.exit(5)\n",
        5,
    );
}

#[test]
fn a_program_that_ends_ends_its_running_children() {
    child_of_run(
        "end_running.lua",
        "local system = require 'system'\n\
         KEEP = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' } }\n\
         print(KEEP.pid)\n",
        0,
    );
}

#[test]
fn pdeathsig_ends_the_child_when_luring_is_killed() {
    use std::io::{BufRead, BufReader};
    let mut luring = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(script(
            "pdeathsig.lua",
            "local system = require 'system'\n\
             local p = system.spawn{ program = '/bin/sleep', arguments = { 'sleep', '1000' },\n\
               pdeathsig = system.signal.SIGKILL }\n\
             print(p.pid)\nrequire('time').sleep(1000)\n",
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(luring.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: i32 = line
        .trim()
        .parse()
        .expect("the script prints the child's pid");
    assert!(!ended(pid), "the child runs while luring does");
    luring.kill().unwrap();
    luring.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ended(pid) {
        assert!(Instant::now() < deadline, "child {pid} outlived luring");
        std::thread::sleep(Duration::from_millis(10));
    }
}
