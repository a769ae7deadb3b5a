//! No fd leaks through messages: 10,000 file_descriptor round trips
//! (Lua object -> message -> new Lua object, collected) leave exactly the
//! descriptors that were open before, and a failing dup is reported with
//! its errno. A test binary of its own: counting `/proc/self/fd` (and
//! lowering RLIMIT_NOFILE) is only safe with no other test threads opening
//! fds, so the tests here take one lock.

use std::sync::Mutex;

static FD_COUNTING: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("procfs is mounted")
        .count()
}

#[test]
fn ten_thousand_fd_messages_leak_no_fd() {
    let _lock = FD_COUNTING.lock().unwrap();
    let before = open_fds();
    luring::bench::fd_message_round_trips(10_000, &mut || {}).expect("round trips");
    assert_eq!(open_fds(), before);
}

#[test]
fn a_failing_dup_reports_its_errno_and_leaks_nothing() {
    let _lock = FD_COUNTING.lock().unwrap();
    let before = open_fds();
    let mut saved = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: one live rlimit.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut saved) },
        0
    );
    let r = luring::bench::fd_message_round_trips(1, &mut || {
        // No new descriptor may be created: dup fails (EINVAL, as
        // F_DUPFD_CLOEXEC's lower bound 0 is not below the limit).
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: saved.rlim_max,
        };
        // SAFETY: one live rlimit.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &none) }, 0);
    });
    // SAFETY: one live rlimit, the values read above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &saved) }, 0);
    let err = r.expect_err("dup must fail without descriptors left");
    assert!(
        err.contains("cannot duplicate the file descriptor") && err.contains("os error"),
        "{err}"
    );
    assert_eq!(open_fds(), before);
}
