//! The ring ops the module loader uses: `open_beneath` (openat2 with
//! RESOLVE_BENEATH) and `statx_fd`.

use std::os::fd::OwnedFd;

use super::test_support::await_one as run_one;
use super::*;
use crate::actor::module_files::{FileInfo, FileKind, CODE_OPEN_FLAGS, MODULE_RESOLVE};

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("luring-modops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open_dir(path: &std::path::Path) -> OwnedFd {
    nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap()
}

/// The opened fd, owned (the completion hands it over), or the errno.
fn open_beneath(ex: &mut Executor, root: &OpFd, path: &str) -> Result<OwnedFd, i32> {
    let id = ex
        .open_beneath(
            root,
            std::ffi::CString::new(path).unwrap(),
            CODE_OPEN_FLAGS,
            MODULE_RESOLVE,
        )
        .unwrap();
    let done = run_one(ex, id);
    match done.fd {
        Some(fd) => Ok(fd),
        None => {
            assert!(done.result < 0, "{path}: a result without an fd");
            Err(-done.result)
        }
    }
}

#[test]
fn open_beneath_stays_beneath_the_directory() {
    let dir = scratch("beneath");
    std::fs::create_dir(dir.join("root")).unwrap();
    std::fs::write(dir.join("root/in.lua"), "x").unwrap();
    std::fs::write(dir.join("out.lua"), "x").unwrap();
    std::os::unix::fs::symlink("../out.lua", dir.join("root/rel_out.lua")).unwrap();
    std::os::unix::fs::symlink(dir.join("root/in.lua"), dir.join("root/abs_in.lua")).unwrap();
    std::os::unix::fs::symlink("in.lua", dir.join("root/rel_in.lua")).unwrap();
    let root = OpFd::owned(open_dir(&dir.join("root")));
    let mut ex = Executor::new().unwrap();
    for ok in ["in.lua", "rel_in.lua"] {
        if let Err(errno) = open_beneath(&mut ex, &root, ok) {
            panic!("{ok}: errno {errno}");
        }
    }
    for escape in ["../out.lua", "rel_out.lua", "abs_in.lua", "/etc/passwd"] {
        assert_eq!(
            open_beneath(&mut ex, &root, escape).err(),
            Some(libc::EXDEV),
            "{escape}"
        );
    }
    assert_eq!(
        open_beneath(&mut ex, &root, "missing.lua").err(),
        Some(libc::ENOENT)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn statx_fd_reports_type_size_and_identity() {
    let dir = scratch("statx");
    std::fs::write(dir.join("a.lua"), "hello").unwrap();
    std::fs::hard_link(dir.join("a.lua"), dir.join("b.lua")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("p"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let root = OpFd::owned(open_dir(&dir));
    let mut ex = Executor::new().unwrap();
    let mut infos = Vec::new();
    for name in ["a.lua", "b.lua", "p"] {
        let fd = OpFd::owned(
            open_beneath(&mut ex, &root, name).unwrap_or_else(|e| panic!("{name}: errno {e}")),
        );
        let buf = SpanRef::new_zeroed(
            std::mem::size_of::<libc::statx>(),
            std::mem::size_of::<libc::statx>(),
        );
        let id = ex
            .statx_fd(&fd, buf.clone(), crate::actor::module_files::STATX_MASK)
            .unwrap();
        assert_eq!(run_one(&mut ex, id).result, 0);
        infos.push(FileInfo::from_statx_bytes(&buf.to_vec()).unwrap());
    }
    assert_eq!((infos[0].kind, infos[0].size), (FileKind::Regular, 5));
    assert_eq!(infos[0].identity, infos[1].identity, "hard links: one file");
    assert_eq!(infos[2].kind, FileKind::Fifo);
    assert_ne!(infos[0].identity, infos[2].identity);
    // A buffer too small for a statx is refused before anything is submitted.
    let small = SpanRef::new_zeroed(8, 8);
    let err = ex
        .statx_fd(&OpFd::Std(StdStream::In), small, 0)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert_eq!(ex.in_flight(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The directory an `open_beneath` resolves from and the file a `statx_fd`
/// looks at are held by the op's slot: dropping the caller's last reference
/// before the ring even sees the op closes nothing under it.
#[test]
fn module_ops_hold_their_fds_until_completion() {
    let dir = scratch("hold");
    std::fs::write(dir.join("m.lua"), "abc").unwrap();
    let mut ex = Executor::new().unwrap();
    let root = OpFd::owned(open_dir(&dir));
    let id = ex
        .open_beneath(
            &root,
            std::ffi::CString::new("m.lua").unwrap(),
            CODE_OPEN_FLAGS,
            MODULE_RESOLVE,
        )
        .unwrap();
    drop(root);
    let opened = run_one(&mut ex, id);
    let file = OpFd::owned(
        opened
            .fd
            .unwrap_or_else(|| panic!("open: {}", opened.result)),
    );
    let buf = SpanRef::new_zeroed(
        std::mem::size_of::<libc::statx>(),
        std::mem::size_of::<libc::statx>(),
    );
    let id = ex
        .statx_fd(&file, buf.clone(), crate::actor::module_files::STATX_MASK)
        .unwrap();
    drop(file);
    assert_eq!(run_one(&mut ex, id).result, 0);
    let info = FileInfo::from_statx_bytes(&buf.to_vec()).unwrap();
    assert_eq!((info.kind, info.size), (FileKind::Regular, 3));
    assert_eq!(ex.in_flight(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
