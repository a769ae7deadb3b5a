//! The `filesystem` builtin module (spec/io.md "filesystem"), asynchronous:
//! every call that touches the file system suspends the calling fiber
//! instead of blocking the VM's thread (Emilua blocks it). Calls the kernel
//! has a ring op for (statx, mkdirat, unlinkat, renameat, symlinkat,
//! linkat) are ring ops (`src/executor/fs.rs`); the others (directory
//! listings, realpath, copies, chmod, statvfs, readlink, mknod, truncate)
//! are jobs on the blocking pool (`src/executor/blocking.rs`). The paths
//! and the composed calls are Lua (lua/filesystem.lua); this file gives it
//! its primitives.
//!
//! Invariants:
//! - A path reaches the kernel only as a `CString` made here: a path with
//!   a NUL byte is `EINVAL` naming the caller's argument, before anything
//!   is submitted.
//! - A job owns copies of its paths (it runs on another thread); its
//!   output is a `Message` built into the Lua result by `rt.turn`, so an
//!   interrupted caller leaves nothing behind (see `io_object`).
//! - A statx result is written into a byte_span the op's slot keeps alive;
//!   `stat_fields` reads it only after the completion.
//! - A directory being iterated is a `DirStream` userdata sharing its
//!   listing with the batch job in flight (if any); the directory closes
//!   at the end of the listing, on `close_dir`, or when both are gone.
//!   Nothing on the VM's thread ever waits for its lock.
//! - A recursive walk, and `copy_tree` on both of its sides, open each
//!   entry beneath the top relative to its parent's descriptor, by one
//!   name, with `O_NOFOLLOW` unless following that symlink was asked for:
//!   an entry swapped for a symlink is refused (`ENOTDIR`/`ELOOP`), never
//!   followed out of the tree.

use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mlua::{Lua, Table, Value};

use crate::actor::message::Message;
use crate::actor::vm::{submit_op, unless_closing};
use crate::executor::blocking::{JobOutput, JobResult};
use crate::modules::byte_span;
use crate::modules::error::{einval, ErrorCode};
use crate::modules::io_object::{self, LuaBuilder};

/// The `filesystem` builtin module (registered by `super::register`).
pub(crate) const MODULE: io_object::LuaModule = io_object::LuaModule {
    name: "filesystem",
    chunk: &crate::fiber::lib_chunks::FILESYSTEM,
    primitives,
};

/// Argument `arg` as a path for the kernel: a string without NUL bytes.
pub(crate) fn path_arg(v: &Value, arg: i32) -> mlua::Result<CString> {
    match v {
        Value::String(s) => CString::new(s.as_bytes().to_vec()).map_err(|_| einval(arg)),
        _ => Err(einval(arg)),
    }
}

fn os_path(c: &CString) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(c.as_bytes()))
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn done(msg: Message) -> JobResult {
    Ok(Box::new(msg) as JobOutput)
}

/// Submits `job` on the blocking pool; Lua waits for the op id.
fn run_job(
    lua: &Lua,
    job: impl FnOnce() -> Result<Message, io::Error> + Send + 'static,
) -> mlua::Result<f64> {
    submit_op(lua, |st| {
        st.executor.run_blocking(move || match job() {
            Ok(msg) => done(msg),
            Err(e) => Err(errno_of(&e)),
        })
    })
}

/// [`run_job`] for a job whose syscall a sandbox's seccomp policy does not
/// list (`fchownat`, `mknodat`, `utimensat`): a sandboxed VM gets `EPERM`
/// instead of being killed by the call.
fn run_job_outside_sandbox(
    lua: &Lua,
    job: impl FnOnce() -> Result<Message, io::Error> + Send + 'static,
) -> mlua::Result<f64> {
    if crate::actor::vm::with_state(lua, |st| st.executor.is_fixed_only())? {
        return Err(ErrorCode::generic(libc::EPERM).into());
    }
    run_job(lua, job)
}

/// The file type names of `filesystem.file_type` (std::filesystem's).
fn type_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "regular",
        libc::S_IFDIR => "directory",
        libc::S_IFLNK => "symlink",
        libc::S_IFBLK => "block",
        libc::S_IFCHR => "character",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        _ => "unknown",
    }
}

/// A statx buffer's fields as a table.
fn stat_fields(lua: &Lua, span: &byte_span::SpanRef) -> mlua::Result<Table> {
    let bytes = span.to_vec();
    if bytes.len() < std::mem::size_of::<libc::statx>() {
        return Err(einval(1));
    }
    // SAFETY: `bytes` holds at least one `statx` (checked above) that the
    // kernel wrote; `read_unaligned` copes with the Vec's alignment, and
    // every bit pattern is a valid `statx` (plain integers).
    let sx: libc::statx = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast()) };
    let t = lua.create_table()?;
    t.set("type", type_name(u32::from(sx.stx_mode)))?;
    t.set("mode", u32::from(sx.stx_mode) & 0o7777)?;
    t.set("size", sx.stx_size as f64)?;
    t.set("nlink", sx.stx_nlink)?;
    t.set("ino", sx.stx_ino as f64)?;
    t.set("dev_major", sx.stx_dev_major)?;
    t.set("dev_minor", sx.stx_dev_minor)?;
    t.set("uid", sx.stx_uid)?;
    t.set("gid", sx.stx_gid)?;
    t.set("mtime_sec", sx.stx_mtime.tv_sec as f64)?;
    t.set("mtime_nsec", sx.stx_mtime.tv_nsec)?;
    Ok(t)
}

/// An open directory being listed in batches (`directory_iterator`): each
/// batch is a job of its own, so memory stays bounded whatever the
/// directory's size and a loop that breaks early lists no more. The
/// listing closes when it ends or the object is collected; a walk's stream
/// keeps `base` (the same directory) until `close_dir`, to open its
/// subdirectories relative to it.
#[derive(Clone)]
struct DirStream(Arc<Mutex<DirState>>);

struct DirState {
    listing: Option<nix::dir::OwningIter>,
    base: Option<OwnedFd>,
}

impl mlua::UserData for DirStream {}

/// Entries per batch of a directory listing.
const DIR_BATCH: usize = 256;

/// Opens directory `name` relative to `dirfd` for listing (`keep_base`:
/// for a walk, which opens subdirectories relative to it).
fn open_dir_stream(
    dirfd: RawFd,
    name: &CString,
    nofollow: bool,
    keep_base: bool,
) -> io::Result<DirStream> {
    let nofollow = if nofollow { libc::O_NOFOLLOW } else { 0 };
    let fd = open_at(dirfd, name, DIR_FLAGS | nofollow, 0)?;
    let base = if keep_base {
        Some(fd.try_clone()?)
    } else {
        None
    };
    let listing = nix::dir::Dir::from_fd(fd).map_err(io::Error::from)?;
    Ok(DirStream(Arc::new(Mutex::new(DirState {
        listing: Some(listing.into_iter()),
        base,
    }))))
}

fn dir_stream_arg(v: &Value, arg: i32) -> mlua::Result<DirStream> {
    match v {
        Value::UserData(ud) => Ok(ud.borrow::<DirStream>().map_err(|_| einval(arg))?.clone()),
        _ => Err(einval(arg)),
    }
}

/// The type of entry `name` of directory `dirfd`: the listing's `d_type`,
/// or an `lstat` where the file system gives none.
fn listed_type(dirfd: RawFd, name: &std::ffi::CStr, t: Option<nix::dir::Type>) -> &'static str {
    use nix::dir::Type;
    match t {
        Some(Type::Fifo) => "fifo",
        Some(Type::CharacterDevice) => "character",
        Some(Type::Directory) => "directory",
        Some(Type::BlockDevice) => "block",
        Some(Type::File) => "regular",
        Some(Type::Symlink) => "symlink",
        Some(Type::Socket) => "socket",
        None => {
            // SAFETY: an all-zero `stat` is a valid value to be overwritten.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: `name` is NUL-terminated, `st` a live out-parameter,
            // `dirfd` the open directory being listed.
            let rc =
                unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
            if rc == 0 {
                type_name(st.st_mode)
            } else {
                "unknown"
            }
        }
    }
}

/// A job's result that becomes the stream's userdata on the VM's thread.
fn dir_stream_output(dir: DirStream) -> JobOutput {
    Box::new(LuaBuilder(Box::new(move |lua: &Lua| {
        lua.create_userdata(dir).map(Value::UserData)
    })))
}

fn next_batch(dir: &DirStream) -> io::Result<Message> {
    let mut guard = dir.0.lock().unwrap_or_else(|e| e.into_inner());
    let mut entries = Vec::new();
    if let Some(listing) = guard.listing.as_mut() {
        let dirfd = listing.as_raw_fd();
        while entries.len() < DIR_BATCH {
            let Some(entry) = listing.next() else { break };
            let entry = entry.map_err(io::Error::from)?;
            let name = entry.file_name();
            if matches!(name.to_bytes(), b"." | b"..") {
                continue;
            }
            entries.push(Message::object([
                ("name", Message::from(name.to_bytes())),
                (
                    "type",
                    Message::from(listed_type(dirfd, name, entry.file_type())),
                ),
            ]));
        }
        if entries.len() < DIR_BATCH {
            // The end: close the listing now, not at collection.
            guard.listing = None;
        }
    }
    Ok(Message::array(entries))
}

/// `openat(dir, name, flags, mode)` as an owned descriptor.
fn open_at(dir: RawFd, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a live NUL-terminated string; `dir` is AT_FDCWD or
    // a descriptor the caller keeps open for the call.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fstatat(dir, name, flags)`.
fn stat_at(dir: RawFd, name: &CStr, flags: i32) -> io::Result<libc::stat> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is NUL-terminated, `st` a live out-parameter, `dir`
    // AT_FDCWD or an open descriptor.
    if unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

/// What `copy_file` does when the target exists (std::filesystem's
/// copy_options): 0 fail with EEXIST, 1 skip, 2 overwrite, 3 overwrite
/// when the source is newer.
fn copy_file(from: &CStr, to: &CStr, existing: u8) -> io::Result<Message> {
    let src = std::fs::File::from(open_at(libc::AT_FDCWD, from, libc::O_RDONLY, 0)?);
    copy_into(&src, libc::AT_FDCWD, to, existing, false)
}

/// Copies the open file `src` (which must be a regular file) to `name` in
/// directory `dir`, as `existing` says when the target exists;
/// `nofollow`: a target that is a symlink is refused, not written through.
fn copy_into(
    src: &std::fs::File,
    dir: RawFd,
    name: &CStr,
    existing: u8,
    nofollow: bool,
) -> io::Result<Message> {
    let meta = src.metadata()?;
    if !meta.is_file() {
        return Err(errno(libc::EINVAL));
    }
    let follow_flag = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    match stat_at(dir, name, follow_flag) {
        Ok(target) => {
            if target.st_dev == meta.dev() && target.st_ino == meta.ino() {
                return Err(errno(libc::EEXIST));
            }
            match existing {
                1 => return Ok(Message::Bool(false)),
                2 => {}
                3 if (meta.mtime(), meta.mtime_nsec())
                    <= (target.st_mtime, target.st_mtime_nsec) =>
                {
                    return Ok(Message::Bool(false));
                }
                3 => {}
                _ => return Err(errno(libc::EEXIST)),
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mut flags = libc::O_WRONLY | libc::O_CREAT;
    flags |= if existing == 0 {
        libc::O_EXCL
    } else {
        libc::O_TRUNC
    };
    if nofollow {
        flags |= libc::O_NOFOLLOW;
    }
    let mut dst = std::fs::File::from(open_at(
        dir,
        name,
        flags,
        meta.permissions().mode() & 0o7777,
    )?);
    // copy_file_range in the kernel where it can.
    io::copy(&mut &*src, &mut dst)?;
    dst.set_permissions(meta.permissions())?;
    Ok(Message::Bool(true))
}

/// `fs.copy`'s options (std::filesystem::copy_options).
#[derive(Clone, Copy)]
struct CopyOptions {
    existing: u8,
    recursive: bool,
    copy_symlinks: bool,
    skip_symlinks: bool,
}

/// Symlink `name` of `dir` made again as `to_name` in `to_dir`.
fn copy_symlink_at(dir: RawFd, name: &CStr, to_dir: RawFd, to_name: &CStr) -> io::Result<()> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: `buf` is a live buffer of `buf.len()` bytes; `name` is
    // NUL-terminated; `dir` AT_FDCWD or an open descriptor.
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize >= buf.len() {
        return Err(errno(libc::ENAMETOOLONG));
    }
    buf.truncate(n as usize);
    let target = CString::new(buf).map_err(|_| errno(libc::EINVAL))?;
    // SAFETY: both strings are NUL-terminated; `to_dir` AT_FDCWD or open.
    if unsafe { libc::symlinkat(target.as_ptr(), to_dir, to_name.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mkdirat` that accepts an existing directory (any other file is
/// `EEXIST`), following a final symlink only for the top (`follow`).
fn make_dir_at(dir: RawFd, name: &CStr, follow: bool) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated; `dir` AT_FDCWD or open.
    if unsafe { libc::mkdirat(dir, name.as_ptr(), 0o777) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EEXIST) {
        let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
        if stat_at(dir, name, flags).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
            return Ok(());
        }
    }
    Err(e)
}

const DIR_FLAGS: i32 = libc::O_RDONLY | libc::O_DIRECTORY;

/// `fs.copy`: a file, a symlink or a directory (its files; everything
/// beneath with `recursive`). Beneath the top, every file is opened by one
/// name relative to its parent directory's descriptor, on both sides, with
/// `O_NOFOLLOW` unless the source entry is a symlink the copy follows
/// (neither `copy_symlinks` nor `skip_symlinks`): an entry swapped for a
/// symlink mid-copy is refused (`ELOOP`/`ENOTDIR`), so the copy never
/// reads from or writes to a place outside the two trees it was given.
/// The walk keeps its own stack (a deep tree cannot overflow the thread's).
fn copy_tree(from: &CStr, to: &CStr, o: CopyOptions) -> io::Result<Message> {
    let keep_links = o.copy_symlinks || o.skip_symlinks;
    let nofollow_top = if keep_links { libc::O_NOFOLLOW } else { 0 };
    let at = libc::AT_FDCWD;
    let st = stat_at(
        at,
        from,
        if keep_links {
            libc::AT_SYMLINK_NOFOLLOW
        } else {
            0
        },
    )?;
    match st.st_mode & libc::S_IFMT {
        libc::S_IFLNK => {
            if !o.skip_symlinks {
                copy_symlink_at(at, from, at, to)?;
            }
            return Ok(Message::Bool(true));
        }
        libc::S_IFREG => {
            let src = std::fs::File::from(open_at(at, from, libc::O_RDONLY | nofollow_top, 0)?);
            // A directory target gets the file inside it.
            let into_dir =
                stat_at(at, to, 0).is_ok_and(|d| d.st_mode & libc::S_IFMT == libc::S_IFDIR);
            let target = if into_dir {
                let name = Path::new(OsStr::from_bytes(from.to_bytes()))
                    .file_name()
                    .ok_or_else(|| errno(libc::EINVAL))?;
                let mut joined = to.to_bytes().to_vec();
                joined.push(b'/');
                joined.extend_from_slice(name.as_bytes());
                CString::new(joined).map_err(|_| errno(libc::EINVAL))?
            } else {
                to.to_owned()
            };
            copy_into(&src, at, &target, o.existing, false)?;
            return Ok(Message::Bool(true));
        }
        libc::S_IFDIR => {}
        _ => return Err(errno(libc::EINVAL)),
    }
    make_dir_at(at, to, true)?;
    let src_root = open_at(at, from, DIR_FLAGS | nofollow_top, 0)?;
    let dst_root = open_at(at, to, DIR_FLAGS, 0)?;
    let mut stack = vec![(
        nix::dir::Dir::from_fd(src_root)
            .map_err(io::Error::from)?
            .into_iter(),
        dst_root,
    )];
    while let Some((listing, dst_dir)) = stack.last_mut() {
        let Some(entry) = listing.next() else {
            stack.pop();
            continue;
        };
        let entry = entry.map_err(io::Error::from)?;
        let name = entry.file_name().to_owned();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let (src_dir, dst_dir) = (listing.as_raw_fd(), dst_dir.as_raw_fd());
        let lst = stat_at(src_dir, &name, libc::AT_SYMLINK_NOFOLLOW)?;
        let is_link = lst.st_mode & libc::S_IFMT == libc::S_IFLNK;
        // A symlink the copy follows is opened through it; anything else
        // must still be what was just looked at.
        let (kind, nofollow) = if is_link && !keep_links {
            (stat_at(src_dir, &name, 0)?.st_mode & libc::S_IFMT, 0)
        } else {
            (lst.st_mode & libc::S_IFMT, libc::O_NOFOLLOW)
        };
        match kind {
            libc::S_IFLNK => {
                if !o.skip_symlinks {
                    copy_symlink_at(src_dir, &name, dst_dir, &name)?;
                }
            }
            libc::S_IFREG => {
                let src =
                    std::fs::File::from(open_at(src_dir, &name, libc::O_RDONLY | nofollow, 0)?);
                copy_into(&src, dst_dir, &name, o.existing, true)?;
            }
            libc::S_IFDIR if o.recursive => {
                make_dir_at(dst_dir, &name, false)?;
                let src = open_at(src_dir, &name, DIR_FLAGS | nofollow, 0)?;
                let dst = open_at(dst_dir, &name, DIR_FLAGS | libc::O_NOFOLLOW, 0)?;
                stack.push((
                    nix::dir::Dir::from_fd(src)
                        .map_err(io::Error::from)?
                        .into_iter(),
                    dst,
                ));
            }
            libc::S_IFDIR => {}
            _ => return Err(errno(libc::EINVAL)),
        }
    }
    Ok(Message::Bool(true))
}

/// Removes `path` and everything beneath it (symlinks are removed, never
/// followed); the number of entries removed, 0 when it did not exist. The
/// removal itself is `std::fs::remove_dir_all`, which walks with
/// `openat`/`unlinkat` relative to directory fds and `O_NOFOLLOW`, so a
/// directory swapped for a symlink mid-walk cannot redirect it outside the
/// tree; the count comes from a walk before it (exact unless the tree
/// changes meanwhile).
fn remove_all(path: &Path) -> io::Result<u64> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        std::fs::remove_file(path)?;
        return Ok(1);
    }
    let count = count_tree(path).unwrap_or(0);
    std::fs::remove_dir_all(path)?;
    Ok(count)
}

/// Entries in the tree at `path` (itself included), symlinks not followed.
/// Each directory is opened relative to its parent's descriptor with
/// `O_NOFOLLOW`, as `copy_tree` does: a directory swapped for a symlink
/// mid-walk is counted as one entry and not entered, so the walk never
/// leaves the tree (a link to `/` cannot make it count the whole system).
fn count_tree(path: &Path) -> io::Result<u64> {
    let root = open_at(
        libc::AT_FDCWD,
        &cstring(path)?,
        DIR_FLAGS | libc::O_NOFOLLOW,
        0,
    )?;
    let mut count = 1;
    let mut stack = vec![nix::dir::Dir::from_fd(root)
        .map_err(io::Error::from)?
        .into_iter()];
    while let Some(listing) = stack.last_mut() {
        let Some(entry) = listing.next() else {
            stack.pop();
            continue;
        };
        let entry = entry.map_err(io::Error::from)?;
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        count += 1;
        let is_dir = match entry.file_type() {
            Some(t) => t == nix::dir::Type::Directory,
            None => {
                let st = stat_at(listing.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW)?;
                st.st_mode & libc::S_IFMT == libc::S_IFDIR
            }
        };
        if is_dir {
            match open_at(listing.as_raw_fd(), name, DIR_FLAGS | libc::O_NOFOLLOW, 0) {
                Ok(fd) => stack.push(
                    nix::dir::Dir::from_fd(fd)
                        .map_err(io::Error::from)?
                        .into_iter(),
                ),
                // Swapped for a symlink or a file, or gone: counted, not entered.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ELOOP | libc::ENOTDIR | libc::ENOENT)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(count)
}

/// realpath of the longest prefix that exists, the rest appended as is
/// (Lua normalizes it lexically).
fn weakly_canonical(path: &Path) -> io::Result<PathBuf> {
    let parts: Vec<_> = path.components().collect();
    for cut in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..cut].iter().collect();
        match std::fs::canonicalize(&prefix) {
            Ok(mut real) => {
                real.extend(&parts[cut..]);
                return Ok(real);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(path.to_path_buf())
}

fn cstring(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn space(path: &Path) -> io::Result<Message> {
    let c = cstring(path)?;
    // SAFETY: statvfs fills the zeroed local struct; `c` is a live
    // NUL-terminated string.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statvfs(c.as_ptr(), &mut vfs) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let unit = vfs.f_frsize as f64;
    Ok(Message::object([
        ("capacity", Message::from(vfs.f_blocks as f64 * unit)),
        ("free", Message::from(vfs.f_bfree as f64 * unit)),
        ("available", Message::from(vfs.f_bavail as f64 * unit)),
    ]))
}

fn fchmodat(path: &Path, mode: u32, nofollow: bool) -> io::Result<Message> {
    let c = cstring(path)?;
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: `c` is a live NUL-terminated string.
    if unsafe { libc::fchmodat(libc::AT_FDCWD, c.as_ptr(), mode, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Message::Bool(true))
}

fn mknod_fifo(path: &Path, mode: u32) -> io::Result<Message> {
    let c = cstring(path)?;
    // SAFETY: `c` is a live NUL-terminated string.
    if unsafe { libc::mkfifoat(libc::AT_FDCWD, c.as_ptr(), mode) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Message::Bool(true))
}

fn fchownat(path: &Path, uid: u32, gid: u32, nofollow: bool) -> io::Result<Message> {
    let c = cstring(path)?;
    let flags = if nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: `c` is a live NUL-terminated string.
    if unsafe { libc::fchownat(libc::AT_FDCWD, c.as_ptr(), uid, gid, flags) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Message::Bool(true))
}

fn mknodat(path: &Path, mode: u32, dev: u64) -> io::Result<Message> {
    let c = cstring(path)?;
    // SAFETY: `c` is a live NUL-terminated string.
    if unsafe { libc::mknodat(libc::AT_FDCWD, c.as_ptr(), mode, dev) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Message::Bool(true))
}

/// A uid or gid argument: 0..2^32-2, or -1 for "leave unchanged".
fn id_arg(v: &Value, arg: i32) -> mlua::Result<u32> {
    let n = number_arg(v, arg)?;
    if n == -1.0 {
        return Ok(u32::MAX);
    }
    Ok(count_arg(v, arg, u64::from(u32::MAX - 1))? as u32)
}

fn set_mtime(path: &Path, sec: i64, nsec: i64) -> io::Result<Message> {
    let c = cstring(path)?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        },
    ];
    // SAFETY: `c` is a live NUL-terminated string, `times` two live timespecs.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Message::Bool(true))
}

fn number_arg(v: &Value, arg: i32) -> mlua::Result<f64> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Number(n) if n.is_finite() => Ok(*n),
        _ => Err(einval(arg)),
    }
}

/// A non-negative integer that fits the kernel's type (`max`).
pub(crate) fn count_arg(v: &Value, arg: i32, max: u64) -> mlua::Result<u64> {
    let n = number_arg(v, arg)?;
    if n < 0.0 || n.fract() != 0.0 || n > max as f64 {
        return Err(einval(arg));
    }
    Ok(n as u64)
}

fn mode_arg(v: &Value, arg: i32) -> mlua::Result<u32> {
    Ok(count_arg(v, arg, 0o7777)? as u32)
}

/// Process-wide state (the working directory, the umask) belongs to the
/// master VM (spec/actors.md §1): other actors get `EPERM`.
fn require_master(lua: &Lua) -> mlua::Result<()> {
    if crate::actor::vm::with_state(lua, |st| st.master)? {
        Ok(())
    } else {
        Err(ErrorCode::generic(libc::EPERM).into())
    }
}

fn primitives(lua: &Lua) -> mlua::Result<Table> {
    let p = lua.create_table()?;
    macro_rules! prim {
        ($name:literal, $f:expr) => {
            p.raw_set($name, lua.create_function(unless_closing($f))?)?;
        };
    }
    // statx(path, nofollow, span) -> op id: fills span (a statx).
    prim!(
        "statx",
        |lua, (path, nofollow, buf): (Value, bool, Value)| {
            let path = path_arg(&path, 1)?;
            let span = byte_span::span_arg(&buf, 3)?;
            let flags = if nofollow {
                libc::AT_SYMLINK_NOFOLLOW
            } else {
                0
            };
            submit_op(lua, |st| {
                st.executor
                    .statx_path(path, flags, libc::STATX_BASIC_STATS, span)
            })
        }
    );
    prim!("stat_fields", |lua, buf: Value| {
        stat_fields(lua, &byte_span::span_arg(&buf, 1)?)
    });
    p.raw_set("statx_size", std::mem::size_of::<libc::statx>())?;
    prim!("mkdir", |lua, (path, mode): (Value, Value)| {
        let path = path_arg(&path, 1)?;
        let mode = mode_arg(&mode, 2)?;
        submit_op(lua, |st| st.executor.mkdir(path, mode))
    });
    prim!("unlink", |lua, (path, dir): (Value, bool)| {
        let path = path_arg(&path, 1)?;
        let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
        submit_op(lua, |st| st.executor.unlink(path, flags))
    });
    prim!("rename", |lua, (from, to): (Value, Value)| {
        let from = path_arg(&from, 1)?;
        let to = path_arg(&to, 2)?;
        submit_op(lua, |st| st.executor.rename(from, to, 0))
    });
    prim!("symlink", |lua, (target, link): (Value, Value)| {
        let target = path_arg(&target, 1)?;
        let link = path_arg(&link, 2)?;
        submit_op(lua, |st| st.executor.symlink(target, link))
    });
    prim!("link", |lua, (existing, new): (Value, Value)| {
        let existing = path_arg(&existing, 1)?;
        let new = path_arg(&new, 2)?;
        submit_op(lua, |st| st.executor.hard_link(existing, new))
    });
    // Jobs on the blocking pool.
    // open_dir(path, walk) -> op id; the result is a directory stream
    // object (a walk's keeps a descriptor for `open_subdir`).
    prim!("open_dir", |lua, (path, walk): (Value, bool)| {
        let path = path_arg(&path, 1)?;
        submit_op(lua, |st| {
            st.executor.run_blocking(move || {
                match open_dir_stream(libc::AT_FDCWD, &path, false, walk) {
                    Ok(dir) => Ok(dir_stream_output(dir)),
                    Err(e) => Err(errno_of(&e)),
                }
            })
        })
    });
    // open_subdir(parent, name, follow) -> op id: directory `name` (one
    // component) of a walk's stream `parent`, with O_NOFOLLOW unless
    // `follow`; the result is a walk's directory stream.
    prim!("open_subdir", |lua,
                          (parent, name, follow): (
        Value,
        Value,
        bool
    )| {
        let parent = dir_stream_arg(&parent, 1)?;
        let name = path_arg(&name, 2)?;
        if matches!(name.as_bytes(), b"" | b"." | b"..") || name.as_bytes().contains(&b'/') {
            return Err(einval(2));
        }
        submit_op(lua, |st| {
            st.executor.run_blocking(move || {
                let guard = parent.0.lock().unwrap_or_else(|e| e.into_inner());
                let Some(base) = guard.base.as_ref() else {
                    return Err(libc::EBADF);
                };
                match open_dir_stream(base.as_raw_fd(), &name, !follow, true) {
                    Ok(dir) => Ok(dir_stream_output(dir)),
                    Err(e) => Err(errno_of(&e)),
                }
            })
        })
    });
    // read_dir(stream) -> op id; the result is the next batch of entries
    // (an empty array at the end).
    prim!("read_dir", |lua, dir: Value| {
        let dir = dir_stream_arg(&dir, 1)?;
        run_job(lua, move || next_batch(&dir))
    });
    // close_dir(stream): closes the directory now unless a batch is being
    // read (then it closes when that job and the object are gone); never
    // waits.
    prim!("close_dir", |_, dir: Value| {
        if let Value::UserData(ud) = &dir {
            if let Ok(dir) = ud.borrow::<DirStream>() {
                if let Ok(mut guard) = dir.0.try_lock() {
                    guard.listing = None;
                    guard.base = None;
                }
                return Ok(());
            }
        }
        Err(einval(1))
    });
    prim!("canonical", |lua, path: Value| {
        let path = os_path(&path_arg(&path, 1)?);
        run_job(lua, move || {
            std::fs::canonicalize(&path).map(|p| Message::from(p.as_os_str().as_bytes()))
        })
    });
    prim!("weakly_canonical", |lua, path: Value| {
        let path = os_path(&path_arg(&path, 1)?);
        run_job(lua, move || {
            weakly_canonical(&path).map(|p| Message::from(p.as_os_str().as_bytes()))
        })
    });
    prim!(
        "copy_file",
        |lua, (from, to, existing): (Value, Value, u8)| {
            let from = path_arg(&from, 1)?;
            let to = path_arg(&to, 2)?;
            run_job(lua, move || copy_file(&from, &to, existing))
        }
    );
    // copy_tree(from, to, existing, recursive, copy_symlinks, skip_symlinks)
    prim!("copy_tree", |lua,
                        (
        from,
        to,
        existing,
        recursive,
        copy_symlinks,
        skip_symlinks,
    ): (
        Value,
        Value,
        u8,
        bool,
        bool,
        bool
    )| {
        let from = path_arg(&from, 1)?;
        let to = path_arg(&to, 2)?;
        let o = CopyOptions {
            existing,
            recursive,
            copy_symlinks,
            skip_symlinks,
        };
        run_job(lua, move || copy_tree(&from, &to, o))
    });
    prim!("remove_all", |lua, path: Value| {
        let path = os_path(&path_arg(&path, 1)?);
        run_job(lua, move || {
            remove_all(&path).map(|n| Message::from(n as f64))
        })
    });
    prim!("read_symlink", |lua, path: Value| {
        let path = os_path(&path_arg(&path, 1)?);
        run_job(lua, move || {
            std::fs::read_link(&path).map(|p| Message::from(p.as_os_str().as_bytes()))
        })
    });
    prim!("space", |lua, path: Value| {
        let path = os_path(&path_arg(&path, 1)?);
        run_job(lua, move || space(&path))
    });
    prim!(
        "chmod",
        |lua, (path, mode, nofollow): (Value, Value, bool)| {
            let path = os_path(&path_arg(&path, 1)?);
            let mode = mode_arg(&mode, 2)?;
            run_job(lua, move || fchmodat(&path, mode, nofollow))
        }
    );
    prim!("chown", |lua,
                    (path, uid, gid, nofollow): (
        Value,
        Value,
        Value,
        bool
    )| {
        let path = os_path(&path_arg(&path, 1)?);
        let uid = id_arg(&uid, 2)?;
        let gid = id_arg(&gid, 3)?;
        run_job_outside_sandbox(lua, move || fchownat(&path, uid, gid, nofollow))
    });
    // mknod(path, mode, dev): mode = file type bits | permission bits.
    prim!("mknod", |lua, (path, mode, dev): (Value, Value, Value)| {
        let path = os_path(&path_arg(&path, 1)?);
        let mode = count_arg(&mode, 2, u64::from(u32::MAX))? as u32;
        let kind = mode & libc::S_IFMT;
        let known = [
            libc::S_IFREG,
            libc::S_IFCHR,
            libc::S_IFBLK,
            libc::S_IFIFO,
            libc::S_IFSOCK,
        ];
        if mode & !(libc::S_IFMT | 0o7777) != 0 || (kind != 0 && !known.contains(&kind)) {
            return Err(einval(2));
        }
        let dev = count_arg(&dev, 3, (1u64 << 53) - 1)?;
        run_job_outside_sandbox(lua, move || mknodat(&path, mode, dev))
    });
    prim!("makedev", |_, (major, minor): (Value, Value)| {
        let major = count_arg(&major, 1, u64::from(u32::MAX))? as u32;
        let minor = count_arg(&minor, 2, u64::from(u32::MAX))? as u32;
        let dev = libc::makedev(major, minor);
        // Lua numbers are exact below 2^53.
        if dev >= 1 << 53 {
            return Err(einval(1));
        }
        Ok(dev as f64)
    });
    p.raw_set("S_IFCHR", libc::S_IFCHR)?;
    p.raw_set("S_IFBLK", libc::S_IFBLK)?;
    p.raw_set("S_IFIFO", libc::S_IFIFO)?;
    p.raw_set("S_IFREG", libc::S_IFREG)?;
    p.raw_set("S_IFSOCK", libc::S_IFSOCK)?;
    prim!("mkfifo", |lua, (path, mode): (Value, Value)| {
        let path = os_path(&path_arg(&path, 1)?);
        let mode = mode_arg(&mode, 2)?;
        run_job_outside_sandbox(lua, move || mknod_fifo(&path, mode))
    });
    prim!("truncate", |lua, (path, len): (Value, Value)| {
        let path = os_path(&path_arg(&path, 1)?);
        let len = count_arg(&len, 2, i64::MAX as u64)?;
        run_job(lua, move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)?
                .set_len(len)
                .map(|()| Message::Bool(true))
        })
    });
    prim!(
        "set_mtime",
        |lua, (path, sec, nsec): (Value, Value, Value)| {
            let path = os_path(&path_arg(&path, 1)?);
            let sec = number_arg(&sec, 2)? as i64;
            let nsec = count_arg(&nsec, 3, 999_999_999)? as i64;
            run_job_outside_sandbox(lua, move || set_mtime(&path, sec, nsec))
        }
    );
    // Process-wide state: plain syscalls that never wait for a disk.
    prim!("getcwd", |lua, ()| {
        let cwd = std::env::current_dir().map_err(|e| ErrorCode::from_io(&e))?;
        lua.create_string(cwd.as_os_str().as_bytes())
    });
    prim!("chdir", |lua, path: Value| {
        let path = os_path(&path_arg(&path, 1)?);
        require_master(lua)?;
        std::env::set_current_dir(path).map_err(|e| ErrorCode::from_io(&e).into())
    });
    prim!("umask", |lua, mask: Value| {
        let mask = mode_arg(&mask, 1)?;
        require_master(lua)?;
        // SAFETY: umask has no memory arguments and cannot fail.
        Ok(unsafe { libc::umask(mask as libc::mode_t) })
    });
    prim!("temp_dir", |lua, ()| {
        let dir = std::env::temp_dir();
        lua.create_string(dir.as_os_str().as_bytes())
    });
    Ok(p)
}
