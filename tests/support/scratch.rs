//! One scratch directory per test binary (`$TMPDIR/luring-TAG-PID`),
//! made on first use and removed when the binary exits (an `atexit`
//! handler: the tests of a binary share it and run in parallel, so no
//! single test may remove it).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_scratch_dir() {
    if let Some(dir) = DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// This binary's scratch directory; `tag` names it (the first call's tag).
pub fn scratch_dir(tag: &str) -> &'static Path {
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("luring-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: registers a function without arguments that only reads
        // `DIR`, which is set before any exit can run it.
        unsafe { libc::atexit(remove_scratch_dir) };
        dir
    })
}

/// Writes `contents` to `name` in the scratch directory; returns its path.
pub fn scratch_file(tag: &str, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = scratch_dir(tag).join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
