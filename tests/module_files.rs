//! What `require` and the entry script accept as code files, with fixtures
//! that cannot be committed to git (FIFOs, sockets, device nodes, hard
//! links, sparse oversized files, absolute symlinks into the tree): only
//! regular files of at most 16 MiB, opened beneath the import root, one
//! module per (device, inode). Every case must end with a clear error within
//! the deadline; none may hang or read without bound.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A script that hangs fails its test instead of hanging the suite.
const DEADLINE: Duration = Duration::from_secs(30);

/// A fresh directory for one test (the import root), removed when dropped.
struct Root(PathBuf);

impl std::ops::Deref for Root {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Root {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn root(name: &str) -> Root {
    let dir = std::env::temp_dir().join(format!("luring-modfiles-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Root(dir)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// Runs `luring script` in `dir`; returns its exit code and merged output.
fn run(dir: &Path, script: &str) -> (i32, String) {
    let out_path = dir.join(".output");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_luring"))
        .current_dir(dir)
        .arg(script)
        .env_remove("LURING_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("luring {script} hung (killed after {DEADLINE:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(&out_path).unwrap();
    (status.code().unwrap_or(-1), text)
}

/// A main.lua that requires each id and prints how it failed.
fn requiring(ids: &[&str]) -> String {
    let mut s = String::new();
    for id in ids {
        s.push_str(&format!(
            "do local ok, e = pcall(require, '{id}')\n\
             print('{id}', ok, tostring(e.category), e.code, e.module, e.file_type, tostring(e)) end\n"
        ));
    }
    s
}

const NOT_REGULAR: &str =
    "A module must be a regular file, not a FIFO, socket or device (see the error's file_type)";

#[test]
fn fifo_module_is_refused_without_hanging() {
    let dir = root("fifo");
    mkfifo(&dir.join("pipe.lua"));
    std::fs::create_dir(dir.join("pkg")).unwrap();
    mkfifo(&dir.join("pkg/init.lua"));
    write(&dir, "main.lua", &requiring(&["./pipe", "./pkg", "./pipe"]));
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!(
            "./pipe\tfalse\tluring.module\t2\t./pipe\tfifo\t{NOT_REGULAR}\n\
             ./pkg\tfalse\tluring.module\t2\t./pkg\tfifo\t{NOT_REGULAR}\n\
             ./pipe\tfalse\tluring.module\t2\t./pipe\tfifo\t{NOT_REGULAR}\n"
        )
    );
}

#[test]
fn socket_module_is_refused() {
    let dir = root("socket");
    let _listener = std::os::unix::net::UnixListener::bind(dir.join("sock.lua")).unwrap();
    write(&dir, "main.lua", &requiring(&["./sock"]));
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!("./sock\tfalse\tluring.module\t2\t./sock\tspecial file\t{NOT_REGULAR}\n")
    );
}

/// Device nodes inside the root need CAP_MKNOD to create; without it the
/// symlinked devices of tests/lua/modules/symlinks.lua still cover the path
/// (refused as escapes), so only the creation is skipped.
#[test]
fn device_modules_are_refused_before_any_read() {
    let dir = root("devices");
    let mut made = Vec::new();
    for (name, minor) in [("zero.lua", 5), ("urandom.lua", 9)] {
        let r = nix::sys::stat::mknod(
            &dir.join(name),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            nix::sys::stat::makedev(1, minor),
        );
        match r {
            Ok(()) => made.push(name.trim_end_matches(".lua")),
            Err(e) => {
                eprintln!("skipping device node {name}: mknod: {e} (needs CAP_MKNOD)");
            }
        }
    }
    if made.is_empty() {
        return;
    }
    let ids: Vec<String> = made.iter().map(|n| format!("./{n}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    write(&dir, "main.lua", &requiring(&ids));
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    let expected: String = ids
        .iter()
        .map(|id| format!("{id}\tfalse\tluring.module\t2\t{id}\tcharacter device\t{NOT_REGULAR}\n"))
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn oversized_module_is_refused_and_the_limit_is_16_mib() {
    let dir = root("big");
    let big = std::fs::File::create(dir.join("big.lua")).unwrap();
    // sparse: costs no disk
    big.set_len(16 * 1024 * 1024 + 1).unwrap();
    // within the limit, ends with a comment line of 1 MiB
    let fine = format!("value = 'fine'\n--{}\n", "x".repeat(1024 * 1024));
    write(&dir, "fine.lua", &fine);
    write(
        &dir,
        "main.lua",
        &(requiring(&["./big"]) + "print(require('./fine').value)\n"),
    );
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "./big\tfalse\tluring.module\t3\t./big\tnil\tThe module is larger than the 16 MiB limit\n\
         fine\n"
    );
}

#[test]
fn hard_links_are_one_module() {
    let dir = root("hardlink");
    write(&dir, "a.lua", "print('a evaluated')\nname = 'a'\n");
    std::fs::hard_link(dir.join("a.lua"), dir.join("b.lua")).unwrap();
    write(
        &dir,
        "main.lua",
        "local a = require './a'\nlocal b = require './b'\nprint(a == b, b.name)\n",
    );
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "a evaluated\ntrue\ta\n");
}

/// RESOLVE_BENEATH refuses every absolute symlink, even one that names a
/// file inside the root; relative links inside the root work.
#[test]
fn absolute_symlink_into_the_root_is_refused_relative_one_works() {
    let dir = root("abslink");
    write(&dir, "real.lua", "name = 'real'\n");
    symlink(dir.join("real.lua"), dir.join("abs.lua")).unwrap();
    symlink("real.lua", dir.join("rel.lua")).unwrap();
    write(
        &dir,
        "main.lua",
        &(requiring(&["./abs"]) + "print(require('./rel').name)\n"),
    );
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "./abs\tfalse\tluring.module\t1\t./abs\tnil\tThe module's path leads outside the import root \
         (through an absolute symlink or one that climbs out with '..')\nreal\n"
    );
}

/// A directory symlink inside the root that leads out of it (absolute, or
/// relative climbing with `..`) is refused; the code outside never runs.
#[test]
fn symlink_escape_through_a_parent_directory_link() {
    let outside = root("outside");
    write(&outside, "secret.lua", "print('outside code ran')\n");
    let dir = root("parentlink");
    symlink(&*outside, dir.join("lib")).unwrap();
    std::fs::create_dir(dir.join("d")).unwrap();
    symlink("../../", dir.join("d/up")).unwrap();
    write(
        &dir,
        "main.lua",
        &requiring(&["/lib/secret", "/d/up/secret"]),
    );
    let (code, out) = run(&dir, "main.lua");
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("outside code ran"), "{out}");
    assert_eq!(out.lines().count(), 2, "{out}");
    for line in out.lines() {
        assert!(line.contains("\tfalse\tluring.module\t1\t"), "{out}");
    }
}

fn entry_error(dir: &Path, script: &str) -> String {
    let (code, out) = run(dir, script);
    assert_eq!(code, 1, "{out}");
    out
}

#[test]
fn fifo_entry_script_is_refused_without_hanging() {
    let dir = root("entryfifo");
    mkfifo(&dir.join("main.lua"));
    assert_eq!(
        entry_error(&dir, "main.lua"),
        "luring: cannot read main.lua: a script must be a regular file, this is a fifo\n"
    );
}

#[test]
fn device_and_stdin_entry_scripts_are_refused() {
    let dir = root("entrydev");
    assert_eq!(
        entry_error(&dir, "/dev/zero"),
        "luring: cannot read /dev/zero: a script must be a regular file, this is a character device\n"
    );
    assert_eq!(
        entry_error(&dir, "/dev/urandom"),
        "luring: cannot read /dev/urandom: a script must be a regular file, this is a character device\n"
    );
    // stdin is /dev/null here: a character device too
    assert_eq!(
        entry_error(&dir, "/dev/stdin"),
        "luring: cannot read /dev/stdin: a script must be a regular file, this is a character device\n"
    );
}

#[test]
fn oversized_entry_script_is_refused() {
    let dir = root("entrybig");
    let big = std::fs::File::create(dir.join("main.lua")).unwrap();
    big.set_len(16 * 1024 * 1024 + 1).unwrap();
    assert_eq!(
        entry_error(&dir, "main.lua"),
        "luring: cannot read main.lua: a script may not be larger than 16 MiB\n"
    );
}
