//! File system ring ops (io-fs): open with a mode, statx of a path, mkdir,
//! rename, unlink, symlink, link, fsync, fallocate, ftruncate and
//! positioned writes.
//!
//! Invariants: those of every op (see `ops.rs`): each path is a `CString`
//! owned by the op's slot, each fd an [`OpFd`] clone held by the slot, and
//! each output buffer a byte_span the slot keeps alive, until the
//! completion is reaped. Paths are resolved relative to the process's
//! current directory (`AT_FDCWD`), as the same calls made directly would.

use std::ffi::CString;
use std::io;

use io_uring::{opcode, types};

use super::{on_target, Executor, OpBuffer, OpFd, OpId, OpSlot, SlotKind};
use crate::modules::byte_span::SpanRef;

const CWD: types::Fd = types::Fd(libc::AT_FDCWD);

impl Executor {
    /// On a fixed-only executor (a sandbox, whose ring reaches its
    /// fixed-file table only): runs `call` on the slot's own resources as
    /// a plain syscall on this thread (confined like any syscall there, by
    /// Landlock and the sandbox's root; the paths are local) and delivers
    /// its result (`-errno` on failure) through a NOP, so the caller sees
    /// an ordinary completion. Callers use it only when
    /// [`is_fixed_only`](Executor::is_fixed_only).
    ///
    /// # Safety
    /// `call` touches only the slot's own resources.
    pub(crate) unsafe fn run_inline(
        &mut self,
        mut slot: OpSlot,
        call: impl FnOnce(&mut OpSlot) -> libc::c_long,
    ) -> io::Result<OpId> {
        let ret = call(&mut slot);
        let result = if ret < 0 {
            -io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO)
        } else {
            ret as i32
        };
        self.inline_results.try_reserve(1)?;
        self.submitting_inline = true;
        // SAFETY: a NOP carries no pointer and no fd.
        let id = unsafe { self.submit(slot, |_| opcode::Nop::new().build()) };
        self.submitting_inline = false;
        let id = id?;
        self.inline_results.push((id, result));
        Ok(id)
    }

    /// `openat(AT_FDCWD, path, flags | O_CLOEXEC, mode)`; the completion
    /// carries the new fd.
    pub fn open_mode(&mut self, path: CString, flags: i32, mode: u32) -> io::Result<OpId> {
        // SAFETY: the SQE points at the slot's own path.
        unsafe {
            self.submit(OpSlot::path(path).kind(SlotKind::OpensFd), |slot| {
                opcode::OpenAt::new(CWD, slot.path_ptr())
                    .flags(flags | libc::O_CLOEXEC)
                    .mode(mode)
                    .build()
            })
        }
    }

    /// `statx(AT_FDCWD, path, flags, mask)` into `buf`, which must hold a
    /// whole `struct statx` (else `EINVAL` without submitting).
    pub fn statx_path(
        &mut self,
        path: CString,
        flags: i32,
        mask: u32,
        buf: SpanRef,
    ) -> io::Result<OpId> {
        if buf.len() < std::mem::size_of::<libc::statx>() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if self.is_fixed_only() {
            // SAFETY: the call writes one statx into the slot's own buffer
            // (long enough, checked above) and reads its own path.
            return unsafe {
                self.run_inline(OpSlot::statx_path_into(path, buf), |slot| {
                    let out = slot.statx_ptr().cast::<libc::statx>();
                    libc::statx(libc::AT_FDCWD, slot.path_ptr(), flags, mask, out).into()
                })
            };
        }
        // SAFETY: the SQE points at the slot's own path and statx buffer
        // (long enough, checked above).
        unsafe {
            self.submit(OpSlot::statx_path_into(path, buf), |slot| {
                let out = slot.statx_ptr();
                opcode::Statx::new(CWD, slot.path_ptr(), out)
                    .flags(flags)
                    .mask(mask)
                    .build()
            })
        }
    }

    /// `mkdirat(AT_FDCWD, path, mode)`.
    pub fn mkdir(&mut self, path: CString, mode: u32) -> io::Result<OpId> {
        if self.is_fixed_only() {
            // SAFETY: the call reads the slot's own path.
            return unsafe {
                self.run_inline(OpSlot::path(path), |slot| {
                    libc::mkdirat(libc::AT_FDCWD, slot.path_ptr(), mode).into()
                })
            };
        }
        // SAFETY: the SQE points at the slot's own path.
        unsafe {
            self.submit(OpSlot::path(path), |slot| {
                opcode::MkDirAt::new(CWD, slot.path_ptr())
                    .mode(mode)
                    .build()
            })
        }
    }

    /// `unlinkat(AT_FDCWD, path, flags)` (`AT_REMOVEDIR` for directories).
    pub fn unlink(&mut self, path: CString, flags: i32) -> io::Result<OpId> {
        if self.is_fixed_only() {
            // SAFETY: the call reads the slot's own path.
            return unsafe {
                self.run_inline(OpSlot::path(path), |slot| {
                    libc::unlinkat(libc::AT_FDCWD, slot.path_ptr(), flags).into()
                })
            };
        }
        // SAFETY: the SQE points at the slot's own path.
        unsafe {
            self.submit(OpSlot::path(path), |slot| {
                opcode::UnlinkAt::new(CWD, slot.path_ptr())
                    .flags(flags)
                    .build()
            })
        }
    }

    /// `renameat2(AT_FDCWD, from, AT_FDCWD, to, flags)`.
    pub fn rename(&mut self, from: CString, to: CString, flags: u32) -> io::Result<OpId> {
        if self.is_fixed_only() {
            // SAFETY: the call reads the slot's own two paths.
            return unsafe {
                self.run_inline(OpSlot::paths(from, to), |slot| {
                    libc::syscall(
                        libc::SYS_renameat2,
                        libc::AT_FDCWD,
                        slot.path_ptr(),
                        libc::AT_FDCWD,
                        slot.second_path_ptr(),
                        flags,
                    )
                })
            };
        }
        // SAFETY: the SQE points at the slot's own two paths.
        unsafe {
            self.submit(OpSlot::paths(from, to), |slot| {
                opcode::RenameAt::new(CWD, slot.path_ptr(), CWD, slot.second_path_ptr())
                    .flags(flags)
                    .build()
            })
        }
    }

    /// `symlinkat(target, AT_FDCWD, link)`.
    pub fn symlink(&mut self, target: CString, link: CString) -> io::Result<OpId> {
        if self.is_fixed_only() {
            // SAFETY: the call reads the slot's own two paths.
            return unsafe {
                self.run_inline(OpSlot::paths(target, link), |slot| {
                    libc::symlinkat(slot.path_ptr(), libc::AT_FDCWD, slot.second_path_ptr()).into()
                })
            };
        }
        // SAFETY: the SQE points at the slot's own two paths.
        unsafe {
            self.submit(OpSlot::paths(target, link), |slot| {
                opcode::SymlinkAt::new(CWD, slot.path_ptr(), slot.second_path_ptr()).build()
            })
        }
    }

    /// `linkat(AT_FDCWD, existing, AT_FDCWD, new, 0)`.
    pub fn hard_link(&mut self, existing: CString, new: CString) -> io::Result<OpId> {
        if self.is_fixed_only() {
            // SAFETY: the call reads the slot's own two paths.
            return unsafe {
                self.run_inline(OpSlot::paths(existing, new), |slot| {
                    libc::linkat(
                        libc::AT_FDCWD,
                        slot.path_ptr(),
                        libc::AT_FDCWD,
                        slot.second_path_ptr(),
                        0,
                    )
                    .into()
                })
            };
        }
        // SAFETY: the SQE points at the slot's own two paths.
        unsafe {
            self.submit(OpSlot::paths(existing, new), |slot| {
                opcode::LinkAt::new(CWD, slot.path_ptr(), CWD, slot.second_path_ptr()).build()
            })
        }
    }

    /// `fsync(fd)` (`fdatasync` when `data_only`).
    pub fn fsync(&mut self, fd: &OpFd, data_only: bool) -> io::Result<OpId> {
        let flags = if data_only {
            types::FsyncFlags::DATASYNC
        } else {
            types::FsyncFlags::empty()
        };
        // SAFETY: the SQE names the slot's fd.
        unsafe {
            self.submit(OpSlot::bare().on_target(fd), |slot| {
                on_target!(slot, |t| opcode::Fsync::new(t).flags(flags).build())
            })
        }
    }

    /// `fallocate(fd, mode, offset, len)`.
    pub fn fallocate(&mut self, fd: &OpFd, mode: i32, offset: u64, len: u64) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd.
        unsafe {
            self.submit(OpSlot::bare().on_fd(fd), |slot| {
                opcode::Fallocate::new(types::Fd(slot.raw_fd()), len)
                    .offset(offset)
                    .mode(mode)
                    .build()
            })
        }
    }

    /// `ftruncate(fd, len)` (Linux ≥ 6.9).
    pub fn ftruncate(&mut self, fd: &OpFd, len: u64) -> io::Result<OpId> {
        // SAFETY: the SQE names the slot's fd.
        unsafe {
            self.submit(OpSlot::bare().on_target(fd), |slot| {
                on_target!(slot, |t| opcode::Ftruncate::new(t, len).build())
            })
        }
    }

    /// `pwrite(2)`: write `buf` at `offset`.
    pub fn write_at(&mut self, fd: &OpFd, buf: OpBuffer, offset: u64) -> io::Result<OpId> {
        let offset = offset.min(i64::MAX as u64);
        // SAFETY: the SQE names the slot's fd and points into its buffer.
        unsafe {
            self.submit(OpSlot::buffer(buf).on_target(fd), |slot| {
                let (ptr, len) = slot.buffer_mut_ptr(0);
                on_target!(slot, |t| opcode::Write::new(t, ptr, len)
                    .offset(offset)
                    .build())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    //! Each op against a scratch directory, checked with std (the Lua
    //! tests cover them through the modules).
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::executor::test_support::await_one as run;

    fn c(p: &std::path::Path) -> CString {
        CString::new(p.to_str().unwrap()).unwrap()
    }

    #[test]
    fn file_system_ops_do_what_their_syscalls_do() {
        let dir = std::env::temp_dir().join(format!("luring-fsops-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let mut ex = Executor::new().unwrap();

        let id = ex.mkdir(c(&dir.join("d")), 0o750).unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert_eq!(
            std::fs::metadata(dir.join("d")).unwrap().mode() & 0o777,
            0o750 & !umask()
        );
        let id = ex.mkdir(c(&dir.join("d")), 0o750).unwrap();
        assert_eq!(run(&mut ex, id).result, -libc::EEXIST);

        let id = ex
            .open_mode(c(&dir.join("f")), libc::O_RDWR | libc::O_CREAT, 0o600)
            .unwrap();
        let opened = run(&mut ex, id);
        let fd = OpFd::owned(opened.fd.expect("the new fd"));
        let id = ex
            .write_at(&fd, OpBuffer::Owned(b"abc".to_vec().into_boxed_slice()), 5)
            .unwrap();
        assert_eq!(run(&mut ex, id).result, 3);
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"\0\0\0\0\0abc");
        let id = ex.fallocate(&fd, 0, 0, 4096).unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert_eq!(std::fs::metadata(dir.join("f")).unwrap().len(), 4096);
        let id = ex.ftruncate(&fd, 2).unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert_eq!(std::fs::metadata(dir.join("f")).unwrap().len(), 2);
        for data_only in [false, true] {
            let id = ex.fsync(&fd, data_only).unwrap();
            assert_eq!(run(&mut ex, id).result, 0);
        }

        let buf = SpanRef::new_zeroed(
            std::mem::size_of::<libc::statx>(),
            std::mem::size_of::<libc::statx>(),
        );
        let id = ex
            .statx_path(c(&dir.join("f")), 0, libc::STATX_SIZE, buf.clone())
            .unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        let bytes = buf.to_vec();
        // SAFETY: the kernel wrote a whole statx into `bytes`; any bit
        // pattern is a valid statx.
        let sx: libc::statx = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
        assert_eq!(sx.stx_size, 2);
        let short = SpanRef::new_zeroed(8, 8);
        let refused = ex.statx_path(c(&dir.join("f")), 0, libc::STATX_SIZE, short);
        assert_eq!(refused.unwrap_err().raw_os_error(), Some(libc::EINVAL));

        let id = ex
            .symlink(c(std::path::Path::new("f")), c(&dir.join("s")))
            .unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert_eq!(
            std::fs::read_link(dir.join("s")).unwrap(),
            std::path::Path::new("f")
        );
        let id = ex.hard_link(c(&dir.join("f")), c(&dir.join("h"))).unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert_eq!(std::fs::metadata(dir.join("f")).unwrap().nlink(), 2);
        let id = ex
            .rename(c(&dir.join("h")), c(&dir.join("d/h")), 0)
            .unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert!(dir.join("d/h").exists() && !dir.join("h").exists());
        let id = ex.unlink(c(&dir.join("d")), libc::AT_REMOVEDIR).unwrap();
        assert_eq!(run(&mut ex, id).result, -libc::ENOTEMPTY);
        let id = ex.unlink(c(&dir.join("d/h")), 0).unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        let id = ex.unlink(c(&dir.join("d")), libc::AT_REMOVEDIR).unwrap();
        assert_eq!(run(&mut ex, id).result, 0);
        assert!(!dir.join("d").exists());
        drop(fd);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The process's umask, read without changing it (other tests run in
    /// parallel).
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
    }
}
