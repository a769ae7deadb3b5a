//! The files Lua code is loaded from: the entry script and the modules that
//! `require` finds beneath the import root (lua/core/modules.lua).
//!
//! Invariants:
//! - Only regular files are code. A FIFO, socket, device or directory is
//!   refused with a clear error after an `O_NONBLOCK | O_NOCTTY` open, before
//!   a single byte is read, so such a file can neither hang the actor nor
//!   feed it an endless stream.
//! - Code files are bounded: at most [`MAX_CODE_BYTES`] are read; a larger
//!   file (or one that grows past the bound while it is read) is refused.
//! - The import root is an `O_PATH` directory fd opened once, when the entry
//!   script is read, and shared by that VM and the workers spawned from it
//!   for their whole lives. Modules are
//!   opened relative to it with `openat2(RESOLVE_BENEATH |
//!   RESOLVE_NO_MAGICLINKS)`: the kernel, not path text, keeps them beneath
//!   the root, whatever symlinks or `..` the path meets.
//! - A file's identity is its (device, inode) pair, so one file reached by
//!   two paths is one module.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::modules::error::strerror;

/// Largest entry script or module, in bytes (16 MiB): far above any real
/// Lua source, far below what would hurt the actor's memory.
pub(crate) const MAX_CODE_BYTES: u64 = 16 * 1024 * 1024;

/// Flags of every code-file open: never block on a FIFO's missing writer,
/// never acquire a controlling terminal.
pub(crate) const CODE_OPEN_FLAGS: i32 = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;

/// How modules are resolved beneath the import root (Linux ≥ 5.6).
pub(crate) const MODULE_RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// What statx asks for: enough to know the type, size and identity.
pub(crate) const STATX_MASK: u32 = libc::STATX_TYPE | libc::STATX_SIZE | libc::STATX_INO;

/// The kind of file a path names, as far as loading code cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Regular,
    Directory,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Symlink,
    Unknown,
}

impl FileKind {
    fn from_mode(mode: u32) -> Self {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Self::Regular,
            libc::S_IFDIR => Self::Directory,
            libc::S_IFIFO => Self::Fifo,
            libc::S_IFSOCK => Self::Socket,
            libc::S_IFCHR => Self::CharDevice,
            libc::S_IFBLK => Self::BlockDevice,
            libc::S_IFLNK => Self::Symlink,
            _ => Self::Unknown,
        }
    }

    /// The name Lua code sees (`rt.stat_info`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Regular => "file",
            Self::Directory => "directory",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
            Self::CharDevice => "character device",
            Self::BlockDevice => "block device",
            Self::Symlink => "symlink",
            Self::Unknown => "special file",
        }
    }
}

/// Type, size and identity of an open file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInfo {
    pub kind: FileKind,
    pub size: u64,
    /// `"<major>:<minor>:<inode>"` of the file.
    pub identity: String,
}

impl FileInfo {
    pub(crate) fn from_statx(st: &libc::statx) -> Self {
        Self {
            kind: FileKind::from_mode(u32::from(st.stx_mode)),
            size: st.stx_size,
            identity: format!("{}:{}:{}", st.stx_dev_major, st.stx_dev_minor, st.stx_ino),
        }
    }

    /// Decodes the `struct statx` the kernel wrote into `bytes`; `None` when
    /// `bytes` is too short to hold one.
    pub(crate) fn from_statx_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < std::mem::size_of::<libc::statx>() {
            return None;
        }
        // SAFETY: `bytes` holds at least size_of::<statx>() initialised
        // bytes; statx is plain integers (every bit pattern is valid) and
        // read_unaligned copes with the byte buffer's alignment.
        let st = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<libc::statx>()) };
        Some(Self::from_statx(&st))
    }
}

/// Why the entry script could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum EntryError {
    /// The OS refused (missing file, no permission, directory, ...).
    #[error("{}", strerror(*.0))]
    Os(i32),
    #[error("a script must be a regular file, this is a {}", .0.name())]
    NotRegular(FileKind),
    #[error("a script may not be larger than {} MiB", MAX_CODE_BYTES >> 20)]
    TooLarge,
}

impl From<nix::Error> for EntryError {
    fn from(e: nix::Error) -> Self {
        Self::Os(e as i32)
    }
}

impl From<std::io::Error> for EntryError {
    fn from(e: std::io::Error) -> Self {
        Self::Os(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

/// The entry script's source, its identity and the import root.
pub(crate) struct EntryScript {
    pub source: Vec<u8>,
    pub identity: String,
    /// `O_PATH` fd of the script's directory.
    pub root: OwnedFd,
}

/// statx of an open fd.
pub(crate) fn fd_info(fd: impl AsFd) -> std::io::Result<FileInfo> {
    // SAFETY: statx is plain integers; all-zero is a valid value.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is a NUL-terminated literal, `st` is a live, writable
    // statx, and the fd is borrowed for the duration of the call.
    let rc = unsafe {
        libc::statx(
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            STATX_MASK,
            &mut st,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(FileInfo::from_statx(&st))
}

/// Reads the entry script `path` (absolute) under the code-file rules and
/// opens its directory as the import root. Runs before the scheduler starts,
/// so it may block on the disk; it never blocks on a FIFO or device.
pub(crate) fn read_entry(path: &Path) -> Result<EntryScript, EntryError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().ok_or(EntryError::Os(libc::EISDIR))?;
    let root = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let name = CString::new(name.as_bytes()).map_err(|_| EntryError::Os(libc::EINVAL))?;
    let file = nix::fcntl::openat(
        &root,
        name.as_c_str(),
        OFlag::from_bits_retain(CODE_OPEN_FLAGS | libc::O_CLOEXEC),
        Mode::empty(),
    )?;
    let (source, identity) = read_code_file(file)?;
    Ok(EntryScript {
        source,
        identity,
        root,
    })
}

/// Reads a code file opened for reading: it must be a regular file within
/// `MAX_CODE_BYTES`. Returns its text and identity.
fn read_code_file(file: OwnedFd) -> Result<(Vec<u8>, String), EntryError> {
    let info = fd_info(&file)?;
    match info.kind {
        FileKind::Regular => {}
        FileKind::Directory => return Err(EntryError::Os(libc::EISDIR)),
        kind => return Err(EntryError::NotRegular(kind)),
    }
    if info.size > MAX_CODE_BYTES {
        return Err(EntryError::TooLarge);
    }
    let mut source = Vec::with_capacity(info.size as usize);
    std::fs::File::from(file)
        .take(MAX_CODE_BYTES + 1)
        .read_to_end(&mut source)?;
    if source.len() as u64 > MAX_CODE_BYTES {
        return Err(EntryError::TooLarge);
    }
    Ok((source, info.identity))
}

/// Reads the code file `rel` beneath the import root `root` (a worker's
/// entry module, spawn_vm): symlinks may not lead outside the root
/// (`EXDEV`). Runs synchronously in the spawning VM, as spawn_vm must.
pub(crate) fn read_beneath(
    root: std::os::fd::BorrowedFd<'_>,
    rel: &std::ffi::CStr,
) -> Result<(Vec<u8>, String), EntryError> {
    // SAFETY: open_how is plain integers; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (CODE_OPEN_FLAGS | libc::O_CLOEXEC) as u64;
    how.resolve = MODULE_RESOLVE;
    // SAFETY: `rel` is NUL-terminated, `how` is a live open_how whose size
    // is passed, and `root` is borrowed for the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: openat2 returned a new fd that nothing else owns.
    let file = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) };
    read_code_file(file)
}
