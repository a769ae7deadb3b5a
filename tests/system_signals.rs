//! Signals and the `luring` process: the signals signal sets can wait for
//! are blocked in every thread, yet a signal no set holds still gets its
//! default action (the process ends by it); one a set holds is delivered
//! to the set, whichever thread's VM waits. An embedder that did not call
//! `prepare_process_signals` gets ENOTSUP from `signal.set.new`.

#[path = "support/scratch.rs"]
mod scratch;
use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn script(name: &str, src: &str) -> PathBuf {
    scratch::scratch_file("signals", name, src)
}

/// Runs `src` and returns (exit code, signal, output); the process is
/// killed after a generous deadline (a hang fails the test).
fn run(name: &str, src: &str) -> (Option<i32>, Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(script(name, src))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{name}: luring did not end");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (status.code(), status.signal(), text)
}

#[test]
fn a_signal_no_set_holds_gets_its_default_action() {
    let (code, signal, out) = run(
        "default_term.lua",
        "local S = require('system').signal\nS.raise(S.SIGTERM)\n\
         require('time').sleep(30)\nprint('survived')\n",
    );
    assert_eq!((code, signal), (None, Some(libc::SIGTERM)), "{out}");
    assert!(!out.contains("survived"), "{out}");
}

#[test]
fn a_collected_set_gives_its_signals_back_to_the_default_action() {
    // (written with write_some: print's buffer dies with the process)
    let (code, signal, out) = run(
        "collected_set.lua",
        "local S = require('system').signal\n\
         local set = S.set.new(S.SIGUSR1)\nS.raise(S.SIGUSR1)\n\
         require('system').out:write_some('got\\t' .. set:wait() .. '\\n')\n\
         set = nil\ncollectgarbage()\ncollectgarbage()\n\
         S.raise(S.SIGUSR1)\nrequire('time').sleep(30)\nprint('survived')\n",
    );
    assert_eq!((code, signal), (None, Some(libc::SIGUSR1)), "{out}");
    assert!(out.contains("got\t10"), "{out}");
    assert!(!out.contains("survived"), "{out}");
}

#[test]
fn a_signal_from_outside_reaches_the_set_that_waits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
        .arg(script(
            "outside.lua",
            "local S = require('system').signal\nlocal set = S.set.new(S.SIGTERM, S.SIGINT)\n\
             print('ready')\nprint('got', set:wait())\nprint('got', set:wait())\n",
        ))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(lines.next().unwrap().unwrap(), "got\t2");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(lines.next().unwrap().unwrap(), "got\t15");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn an_outside_signal_without_a_set_ends_the_program() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_luring"));
    command
        .arg(script(
            "outside_default.lua",
            "print('ready')\nrequire('time').sleep(60)\nprint('survived')\n",
        ))
        .stdout(Stdio::piped());
    // The default action is what the program inherits: a shell's
    // background job (`cmd &` without job control) ignores SIGINT, and so
    // would the child. It gets the default disposition whatever ran us.
    // SAFETY: only `signal`, async-signal-safe, runs between fork and exec.
    unsafe {
        command.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT));
}

#[test]
fn an_embedder_without_prepared_signals_gets_enotsup() {
    let path = script(
        "embedded.lua",
        "local S = require('system').signal\nlocal ok, e = pcall(S.set.new, S.SIGUSR1)\n\
         if not ok and e.code == require('generic_error').ENOTSUP.code then require('system').exit(3) end\n",
    );
    let status = luring::Runtime::new()
        .unwrap()
        .run_file(&path, &[])
        .unwrap();
    assert_eq!(status.code(), 3);
}
