//! What actor to start from Rust, and how it becomes a `WorkerStart`.
//!
//! Invariants:
//! - Module and source names are checked before any file is opened: no
//!   absolute path, no `.` or `..` component, names of letters, digits and
//!   `_` (`-` too for source names' file part); module files are read
//!   beneath the import root with `RESOLVE_BENEATH`, so a symlink cannot
//!   lead outside it.
//! - The actors of a runtime share its import root's one `O_PATH` fd (an
//!   `Arc`, only read through): spawning costs no descriptor.

use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use super::{Embedded, SpawnError};
use crate::actor::host::WorkerStart;
use crate::actor::module_files::{self, EntryError};
use crate::ActorAddress;

/// What actor to start: see [`Runtime::spawn`](crate::Runtime::spawn).
///
/// ```
/// let runtime = luring::Runtime::builder().build()?;
/// let replies = runtime.mailbox();
/// let actor = runtime.spawn(
///     luring::ActorSpec::source("quits.lua", "error('bye')").monitor(&replies),
/// )?;
/// let notice = replies.recv_timeout(std::time::Duration::from_secs(30))?;
/// let ended = luring::ActorEnded::from_message(&notice).unwrap();
/// assert_eq!(ended.reason, "panic");
/// assert!(ended.error.unwrap().contains("bye"));
/// # drop(actor);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ActorSpec {
    kind: Kind,
    memory_limit: Option<Option<usize>>,
    monitor: Option<ActorAddress>,
    sandbox: Option<super::SandboxOptions>,
    replies: Option<ActorAddress>,
}

#[derive(Debug)]
enum Kind {
    File(PathBuf),
    Source { name: String, text: Vec<u8> },
    Module(String),
}

impl ActorSpec {
    fn new(kind: Kind) -> Self {
        Self {
            kind,
            memory_limit: None,
            monitor: None,
            sandbox: None,
            replies: None,
        }
    }

    /// The Lua file at `path`; its directory is its import root (as for the
    /// `luring` command).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let err = runtime.spawn(luring::ActorSpec::file("no/such/file.lua")).unwrap_err();
    /// assert!(err.to_string().contains("No such file"), "{err}");
    /// # Ok::<(), luring::RuntimeError>(())
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::new(Kind::File(path.into()))
    }

    /// Lua source text, shown in errors and tracebacks as `name` (e.g.
    /// `filter.lua`); it `require`s modules beneath the runtime's import
    /// root as if it were the file `name` there.
    pub fn source(name: impl Into<String>, text: impl Into<Vec<u8>>) -> Self {
        Self::new(Kind::Source {
            name: name.into(),
            text: text.into(),
        })
    }

    /// The module `name` beneath the runtime's import root: `a/b` is
    /// `a/b.lua`, or else `a/b/init.lua` (a leading `/` is allowed, as in
    /// Lua's `spawn_vm('/a/b')`).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().import_root("tests/embedding").build()?;
    /// let echo = runtime.spawn(luring::ActorSpec::module("workers/echo"))?;
    /// assert_eq!(echo.name(), "workers/echo");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn module(name: impl Into<String>) -> Self {
        Self::new(Kind::Module(name.into()))
    }

    /// Caps this actor's Lua heap (overrides the runtime's setting; `None`:
    /// no cap).
    ///
    /// ```
    /// let runtime = luring::Runtime::builder().build()?;
    /// let watch = runtime.mailbox();
    /// runtime.spawn(
    ///     luring::ActorSpec::source("bomb.lua", "local t = {} while true do t[#t + 1] = {} end")
    ///         .memory_limit(Some(4 << 20))
    ///         .monitor(&watch),
    /// )?;
    /// let ended = luring::ActorEnded::from_message(&watch.recv()?).unwrap();
    /// // Its main fiber failed with "not enough memory", or the VM was
    /// // closed for lack of memory; other actors are not affected.
    /// assert!(matches!(ended.reason.as_str(), "panic" | "killed"), "{ended:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.memory_limit = Some(bytes);
        self
    }

    /// Puts a notice in `mailbox` when the actor ends (read it with
    /// [`ActorEnded::from_message`](crate::ActorEnded::from_message)). The
    /// notice is the one Lua monitors get:
    /// `{monitor = 'ended', actor = <address>, reason = 'normal' | 'panic' | 'killed', error = <text>}`.
    pub fn monitor(mut self, mailbox: &crate::Mailbox) -> Self {
        self.monitor = Some(mailbox.address());
        self
    }

    /// Runs the actor in a sandbox of its own (a separate process that
    /// reaches nothing but what `options` grant and the descriptors it is
    /// sent), as Lua's `spawn_vm{ sandbox = {...} }`. The module's text is
    /// read here and sent to the sandbox. Needs
    /// [`start_supervisor`](crate::start_supervisor) first thing in
    /// `main`. Its monitor notice says why it ended: `exited` (with its
    /// code), `memory`, `cpu_budget`, `killed`, `seccomp` or `lost` (see
    /// [`ActorEnded`](crate::ActorEnded)). Its stdout and stderr are the
    /// host's. Dropping its handles does not end it; the runtime's
    /// shutdown, [`ActorHandle::kill`](crate::ActorHandle::kill) or its own
    /// end do.
    ///
    /// ```
    /// // No supervisor in this doctest: a clear error, nothing started.
    /// let runtime = luring::Runtime::builder().build()?;
    /// let err = runtime
    ///     .spawn(luring::ActorSpec::source("p.lua", "return").sandbox(luring::SandboxOptions::new()))
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("start_supervisor"), "{err}");
    /// # Ok::<(), luring::RuntimeError>(())
    /// ```
    pub fn sandbox(mut self, options: super::SandboxOptions) -> Self {
        self.sandbox = Some(options);
        self
    }

    /// Where a sandboxed actor's messages go: everything it sends on its
    /// channel to the host (this address, sent to it) arrives in
    /// `mailbox`. Messages sent to it may carry this address and those of
    /// up to 64 other mailboxes or actors: what it sends on those reaches
    /// them directly.
    pub fn replies_to(mut self, mailbox: &crate::Mailbox) -> Self {
        self.replies = Some(mailbox.address());
        self
    }

    /// The sandbox options and replies address (in-process actors have no
    /// use for `replies_to`; sandboxed ones take their memory limit from
    /// their options).
    pub(crate) fn take_sandbox(
        &mut self,
    ) -> Result<(Option<super::SandboxOptions>, Option<ActorAddress>), SpawnError> {
        match (&self.sandbox, &self.replies, &self.memory_limit) {
            (None, Some(_), _) => Err(SpawnError::InvalidSandboxOption(
                "replies_to: only a sandboxed actor has replies (an in-process actor is sent                  the mailbox's address in a message)"
                    .into(),
            )),
            (Some(_), _, Some(_)) => Err(SpawnError::InvalidSandboxOption(
                "memory_limit: use SandboxOptions::memory for a sandboxed actor".into(),
            )),
            _ => Ok((self.sandbox.take(), self.replies.take())),
        }
    }

    pub(crate) fn name(&self) -> String {
        match &self.kind {
            Kind::File(path) => path.display().to_string(),
            Kind::Source { name, .. } | Kind::Module(name) => name.clone(),
        }
    }

    pub(crate) fn into_start(self, rt: &Embedded) -> Result<WorkerStart, SpawnError> {
        let load = |name: &str, reason: String| SpawnError::Load {
            name: name.to_owned(),
            reason,
        };
        let memory_limit = self.memory_limit.unwrap_or(rt.memory_limit);
        let root_bytes = rt.root_path.as_os_str().as_bytes().to_vec();
        let (src, identity, path, display, root_path, display_root, root) = match self.kind {
            Kind::File(file) => {
                let absolute = std::path::absolute(&file)
                    .map_err(|e| load(&file.display().to_string(), e.to_string()))?;
                let entry = module_files::read_entry(&absolute).map_err(|e| {
                    load(
                        &file.display().to_string(),
                        format!("cannot read {}: {e}", file.display()),
                    )
                })?;
                let dir = absolute.parent().unwrap_or(std::path::Path::new("/"));
                let display_dir = file
                    .parent()
                    .map(|p| p.as_os_str().as_bytes().to_vec())
                    .unwrap_or_default();
                (
                    entry.source,
                    entry.identity,
                    absolute.as_os_str().as_bytes().to_vec(),
                    file.as_os_str().as_bytes().to_vec(),
                    dir.as_os_str().as_bytes().to_vec(),
                    display_dir,
                    std::sync::Arc::new(entry.root),
                )
            }
            Kind::Source { name, text } => {
                check_name(&name, true)?;
                let serial = rt
                    .sources
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut path = root_bytes.clone();
                path.push(b'/');
                path.extend_from_slice(name.as_bytes());
                (
                    text,
                    format!("source:{serial}:{name}"),
                    path,
                    name.into_bytes(),
                    root_bytes,
                    Vec::new(),
                    rt.root.clone(),
                )
            }
            Kind::Module(name) => {
                let rel = name.strip_prefix('/').unwrap_or(&name);
                check_name(rel, false)?;
                let mut found = None;
                for candidate in [format!("{rel}.lua"), format!("{rel}/init.lua")] {
                    let c = std::ffi::CString::new(candidate.clone())
                        .map_err(|_| SpawnError::InvalidName(name.clone()))?;
                    let root = std::os::fd::AsFd::as_fd(&rt.root);
                    match module_files::read_beneath(root, &c) {
                        Ok(read) => {
                            found = Some((candidate, read));
                            break;
                        }
                        Err(EntryError::Os(libc::ENOENT)) => continue,
                        Err(e) => return Err(load(&name, format!("cannot read {candidate}: {e}"))),
                    }
                }
                let Some((candidate, (src, identity))) = found else {
                    return Err(load(
                        &name,
                        format!("module not found beneath {}", rt.root_path.display()),
                    ));
                };
                let mut path = root_bytes.clone();
                path.push(b'/');
                path.extend_from_slice(candidate.as_bytes());
                (
                    src,
                    identity,
                    path,
                    candidate.into_bytes(),
                    root_bytes,
                    Vec::new(),
                    rt.root.clone(),
                )
            }
        };
        let is_init = path.ends_with(b"/init.lua");
        Ok(WorkerStart {
            src,
            identity,
            path,
            display,
            root_path,
            display_root,
            is_init,
            root,
            memory_limit,
            master: false,
            monitor: self.monitor,
        })
    }
}

/// `a/b/c` with Lua module names as components (`source` names may end in
/// a file name such as `filter.lua` or `my-plugin.lua`).
fn check_name(name: &str, file_last: bool) -> Result<(), SpawnError> {
    let parts: Vec<&str> = name.split('/').collect();
    let word = |p: &str, extra: &[char]| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(&c))
            && !p.starts_with('.')
    };
    let last = parts.len() - 1;
    let ok = parts.iter().enumerate().all(|(i, p)| {
        if file_last && i == last {
            word(p, &['.', '-'])
        } else {
            word(p, &[])
        }
    });
    if ok {
        Ok(())
    } else {
        Err(SpawnError::InvalidName(name.to_owned()))
    }
}
