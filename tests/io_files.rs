//! Files and the file system from the outside: examples/copy_file.lua on a
//! real file (bytes compared), its error exits, and `EACCES`, which needs
//! an unprivileged user (root bypasses permission bits): when the tests run
//! as root, the script runs under `setpriv` as nobody (65534).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn luring() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_luring"));
    c.env_remove("LURING_LOG");
    c
}

/// A fresh directory for one test (removed first if a previous run left it).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("luring-io-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/copy_file.lua")
}

fn copy(src: &Path, dst: &Path) -> Output {
    luring().arg(example()).arg(src).arg(dst).output().unwrap()
}

#[test]
fn copy_file_example_copies_every_byte() {
    let dir = scratch("copy");
    let src = dir.join("src.bin");
    // Not a multiple of the 64 KiB buffer, with every byte value.
    let data: Vec<u8> = (0..(3 * 65536 + 1234))
        .map(|i: u32| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(&src, &data).unwrap();
    let dst = dir.join("dst.bin");
    std::fs::write(&dst, vec![b'x'; 1 << 20]).unwrap(); // truncated by the copy
    let out = copy(&src, &dst);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("copied {} bytes\n", data.len()));
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    let empty = dir.join("empty");
    std::fs::write(&empty, b"").unwrap();
    let out = copy(&empty, &dir.join("empty.copy"));
    assert_eq!(text(&out.stdout), "copied 0 bytes\n");
    assert_eq!(std::fs::read(dir.join("empty.copy")).unwrap(), b"");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn copy_file_example_reports_what_failed() {
    let dir = scratch("copy-errors");
    let out = copy(&dir.join("missing"), &dir.join("dst"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("cannot open source")
            && text(&out.stdout).contains("No such file or directory"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !dir.join("dst").exists(),
        "nothing is created when the source is missing"
    );

    std::fs::write(dir.join("src"), b"data").unwrap();
    let out = copy(&dir.join("src"), &dir.join("no/such/dir"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("cannot open destination"),
        "{}",
        text(&out.stdout)
    );

    let out = luring().arg(example()).arg("only-one").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stdout).contains("usage"), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&dir).unwrap();
}

const EACCES_SCRIPT: &str = r#"
local fs = require 'filesystem'
local file = require 'file'
local system = require 'system'
local locked = fs.path.new(system.arguments[3])
local function try(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return 'ok' end
  return tostring(e.category) .. ': ' .. tostring(e)
end
print('open', try(function() file.stream.new():open(locked / 'f', file.open_flag.read_only) end))
print('create', try(function()
  file.stream.new():open(locked / 'new', bit.bor(file.open_flag.write_only, file.open_flag.create))
end))
print('status', try(fs.status, locked / 'f'))
print('create_directory', try(fs.create_directory, locked / 'd'))
print('directory_iterator', try(fs.directory_iterator, locked))
print('remove', try(fs.remove, locked / 'f'))
print('copy_file', try(fs.copy_file, locked / 'f', fs.temp_directory_path() / 'x'))
print('canonical', try(fs.canonical, locked / 'f'))
local function walk(opts)
  return function() for _ in fs.recursive_directory_iterator(locked.parent_path, opts) do end end
end
print('recursive', try(walk()))
print('recursive skip', try(walk({ skip_permission_denied = true })))
"#;

#[test]
fn permission_denied_is_eacces() {
    let dir = scratch("eacces");
    let script = dir.join("eacces.lua");
    std::fs::write(&script, EACCES_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let locked = dir.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("f"), b"secret").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();

    // SAFETY: geteuid has no arguments and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let mut cmd = if root {
        // The binary must be reachable by nobody: copy it next to the script.
        let bin = dir.join("luring");
        std::fs::copy(env!("CARGO_BIN_EXE_luring"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin)
            .env_remove("LURING_LOG");
        c
    } else {
        luring()
    };
    let out = cmd.arg(&script).arg(&locked).output().unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let expected = "open\tsystem: Permission denied\n\
                    create\tsystem: Permission denied\n\
                    status\tsystem: Permission denied\n\
                    create_directory\tsystem: Permission denied\n\
                    directory_iterator\tsystem: Permission denied\n\
                    remove\tsystem: Permission denied\n\
                    copy_file\tsystem: Permission denied\n\
                    canonical\tsystem: Permission denied\n\
                    recursive\tsystem: Permission denied\n\
                    recursive skip\tok\n";
    assert_eq!(text(&out.stdout), expected, "stderr: {}", text(&out.stderr));
    assert_eq!(std::fs::read(locked.join("f")).unwrap(), b"secret");
    assert!(!locked.join("new").exists() && !locked.join("d").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn chown_lchown_and_mknod_change_what_they_say() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: chown to another user and mknod of a device need root");
        return;
    }
    let dir = scratch("chown");
    let script = dir.join("own.lua");
    std::fs::write(
        &script,
        r#"
local fs = require 'filesystem'
local d = fs.path.new(require('system').arguments[3])
fs.mknod(d / 'null2', bit.bor(fs.file_type_bits.character, fs.mode(6, 6, 6)), fs.makedev(1, 3))
fs.mknod(d / 'plain', bit.bor(fs.file_type_bits.regular, fs.mode(6, 4, 0)))
fs.chown(d / 'plain', 65534, -1)
fs.create_symlink('plain', d / 'link')
fs.lchown(d / 'link', 123, 456)
print('ok')
"#,
    )
    .unwrap();
    let out = luring().arg(&script).arg(&dir).output().unwrap();
    assert_eq!(text(&out.stdout), "ok\n", "{}", text(&out.stderr));
    let null2 = std::fs::metadata(dir.join("null2")).unwrap();
    assert!(null2.file_type().is_char_device());
    assert_eq!(null2.rdev(), libc::makedev(1, 3));
    let plain = std::fs::metadata(dir.join("plain")).unwrap();
    assert!(plain.is_file());
    assert_eq!(
        (plain.uid(), plain.gid(), plain.mode() & 0o777),
        (65534, 0, 0o640)
    );
    let link = std::fs::symlink_metadata(dir.join("link")).unwrap();
    assert_eq!((link.uid(), link.gid()), (123, 456));
    std::fs::remove_dir_all(&dir).unwrap();
}
