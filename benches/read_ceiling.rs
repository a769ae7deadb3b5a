//! The kernel's ceiling for a sequential 64 KiB reader (issue 9's file-read
//! target): how much CPU each way of reading a cached file costs with no
//! runtime around it. Not a timed harness: run one mode under `perf stat`
//! and alternate with `cat`, e.g.
//!
//! ```text
//! cargo build --release --bench read_ceiling
//! B=$(ls -t target/release/deps/read_ceiling-* | grep -v '\.d$' | head -1)
//! perf stat -r 10 -e task-clock,user_time,system_time $B ring FILE
//! perf stat -r 10 -e task-clock,user_time,system_time cat FILE > /dev/null
//! ```
//!
//! | mode | per 64 KiB read |
//! |---|---|
//! | `read` | `read(2)` |
//! | `nowait` | `preadv2(.., -1, RWF_NOWAIT)` (at the file position) |
//! | `ring` | one `IORING_OP_READ` SQE, one `io_uring_enter` (submit + wait 1), as luring does |
//! | `ring-reg` | `ring` with a registered ring fd and a registered (fixed) file |
//! | `ring-flags` | `ring-reg` on a ring set up with `NO_SQARRAY`, `SINGLE_ISSUER`, `DEFER_TASKRUN` |
//! | `ring-coop` | `ring` on a ring set up with `COOP_TASKRUN`, `SINGLE_ISSUER` |
//!
//! `READ_CEILING_OFFSET=N` starts the buffer N bytes past a 4 KiB boundary
//! (default 0): the kernel's copy is ~3x slower at 8 or 16 here.
//!
//! Prints the byte count (checked by nothing: compare it with the file size).
//! With no arguments (as `cargo bench` runs it) it prints this usage.

use io_uring::{opcode, types, IoUring};
use std::fs::File;
use std::os::fd::AsRawFd;

const CHUNK: usize = 64 * 1024;

fn read_loop(file: &File, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    loop {
        // SAFETY: `buf` is a live, writable slice of `buf.len()` bytes.
        let n = unsafe { libc::read(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        assert!(n >= 0, "read: {}", std::io::Error::last_os_error());
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn nowait_loop(file: &File, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    loop {
        let iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: `iov` describes the live, writable `buf`.
        let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, -1, libc::RWF_NOWAIT) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            assert_eq!(err.raw_os_error(), Some(libc::EAGAIN), "preadv2: {err}");
            // Not cached: the runtime would fall back on the ring. Here a
            // plain read does it.
            // SAFETY: as above.
            let n = unsafe { libc::read(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            assert!(n >= 0);
            if n == 0 {
                return total;
            }
            total += n as u64;
            continue;
        }
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn ring_loop(mut ring: IoUring, file: &File, buf: &mut [u8], registered: bool) -> u64 {
    if registered {
        ring.submitter()
            .register_files(&[file.as_raw_fd()])
            .expect("register the file");
        ring.submitter()
            .register_ring_fd()
            .expect("register the ring fd");
    }
    let mut total = 0u64;
    loop {
        let entry = if registered {
            opcode::Read::new(types::Fixed(0), buf.as_mut_ptr(), buf.len() as u32)
        } else {
            opcode::Read::new(
                types::Fd(file.as_raw_fd()),
                buf.as_mut_ptr(),
                buf.len() as u32,
            )
        }
        .offset(u64::MAX)
        .build()
        .user_data(1);
        // SAFETY: `buf` outlives the op: the loop waits for its completion
        // before touching `buf` again.
        unsafe { ring.submission().push(&entry).expect("SQ has room") };
        ring.submit_and_wait(1).expect("io_uring_enter");
        let cqe = ring.completion().next().expect("one completion");
        let n = cqe.result();
        assert!(n >= 0, "read: {}", std::io::Error::from_raw_os_error(-n));
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(path)) = (args.get(1), args.get(2)) else {
        println!("usage: read_ceiling read|nowait|ring|ring-reg|ring-flags|ring-coop FILE");
        return;
    };
    let file = File::open(path).expect("open FILE");
    // READ_CEILING_OFFSET=N: the buffer starts N bytes after a 4 KiB
    // boundary (the copy's speed depends on the destination's alignment).
    let offset: usize = std::env::var("READ_CEILING_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut backing = vec![0u8; CHUNK + 8192];
    let skip = backing.as_ptr().align_offset(4096) + offset % 4096;
    let buf = &mut backing[skip..skip + CHUNK];
    let total = match mode.as_str() {
        "read" => read_loop(&file, buf),
        "nowait" => nowait_loop(&file, buf),
        "ring" => ring_loop(IoUring::new(256).unwrap(), &file, buf, false),
        "ring-reg" => ring_loop(IoUring::new(256).unwrap(), &file, buf, true),
        "ring-flags" => {
            let ring = IoUring::builder()
                .setup_no_sqarray()
                .setup_single_issuer()
                .setup_defer_taskrun()
                .build(256)
                .expect("ring with NO_SQARRAY, SINGLE_ISSUER, DEFER_TASKRUN");
            ring_loop(ring, &file, buf, true)
        }
        "ring-coop" => {
            let ring = IoUring::builder()
                .setup_coop_taskrun()
                .setup_single_issuer()
                .build(256)
                .expect("ring with COOP_TASKRUN, SINGLE_ISSUER");
            ring_loop(ring, &file, buf, false)
        }
        other => panic!("unknown mode {other}"),
    };
    println!("bytes {total}");
}
