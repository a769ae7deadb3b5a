//! The Landlock policy of a sandboxed process.
//!
//! Invariants:
//! - Pinned to Landlock ABI 6 (Linux 6.12), the newest ABI whose rights were
//!   tested here: every file-system right of ABI 6 and both TCP rights are
//!   *handled* (denied by default), and abstract unix sockets and signals are
//!   scoped to the sandbox. Newer ABIs' rights are not requested.
//! - The only allowed accesses are the plan's rules: read-only or read-write
//!   beneath each granted path or granted directory descriptor, read-only on
//!   the sandbox's own `/proc` when mounted, and the listed TCP ports.
//! - [`Plan`] is pure data (unit-tested); [`Plan::apply`] is the only step
//!   that touches the process, and it is called once, in the sandbox's PID 1,
//!   after `no_new_privs` and before seccomp.
//! - `Requirement::Required` maps to the crate's `HardRequirement`: a kernel
//!   that cannot enforce all of the above makes the spawn fail, naming what is
//!   missing. `BestEffort` enforces what the kernel has and reports it.

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, NetPort, PathBeneath, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use crate::Requirement;

/// The ABI this policy is written against.
pub const PINNED_ABI: ABI = ABI::V6;
/// Its number, for reports.
pub const PINNED_ABI_VERSION: i32 = 6;

/// Access granted beneath a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rights {
    ReadOnly,
    ReadWrite,
}

impl Rights {
    /// Landlock rights for this grant; `is_dir == false` keeps only the rights
    /// that apply to a file.
    pub fn access(self, is_dir: bool) -> BitFlags<AccessFs> {
        let all = match self {
            Rights::ReadOnly => AccessFs::from_read(PINNED_ABI),
            Rights::ReadWrite => AccessFs::from_all(PINNED_ABI),
        };
        if is_dir {
            all
        } else {
            all & AccessFs::from_file(PINNED_ABI)
        }
    }
}

/// Where a rule applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A path inside the sandbox's root (after `pivot_root`).
    Path(PathBuf),
    /// A granted descriptor: a rule only if it is a directory (a granted
    /// open file needs none, and a rule would let its path be re-opened).
    Fd(RawFd),
}

/// A Landlock policy: what is allowed, everything else being denied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub rules: Vec<(Target, Rights)>,
    pub tcp_bind: Vec<u16>,
    pub tcp_connect: Vec<u16>,
    pub requirement: Requirement,
}

/// What was actually enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LandlockReport {
    /// The kernel's Landlock ABI (0: unavailable).
    pub kernel_abi: i32,
    /// File-system rights of the pinned ABI are all enforced.
    pub fs_full: bool,
    /// Some file-system restriction is enforced.
    pub fs: bool,
    /// TCP bind/connect restrictions are enforced (ABI 4, Linux 6.7).
    pub net: bool,
    /// Abstract-socket and signal scoping is enforced (ABI 6, Linux 6.12).
    pub scope: bool,
}

/// Errors from applying the Landlock policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LandlockError {
    #[error(
        "Landlock ABI {PINNED_ABI_VERSION} (Linux 6.12) is required but the kernel offers ABI {kernel_abi}; \
         upgrade the kernel, enable Landlock (lsm=landlock,...), or opt down with \
         `compat.landlock = Requirement::BestEffort`"
    )]
    Unsupported { kernel_abi: i32 },
    #[error("Landlock rule for {what} could not be added: {err}")]
    Rule { what: String, err: String },
    #[error("Landlock ruleset could not be enforced: {0}")]
    Enforce(String),
}

/// The running kernel's Landlock ABI version (0 if Landlock is unavailable).
pub fn kernel_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: a null attribute with size 0 and the VERSION flag only queries.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if v < 0 {
        0
    } else {
        v as i32
    }
}

/// What a kernel with `abi` can enforce of this policy.
pub fn expected_report(abi: i32) -> LandlockReport {
    LandlockReport {
        kernel_abi: abi,
        fs_full: abi >= PINNED_ABI_VERSION,
        fs: abi >= 1,
        net: abi >= 4,
        scope: abi >= 6,
    }
}

/// Fails early (before any clone) when a required policy cannot be enforced.
pub fn check_supported(req: Requirement) -> Result<LandlockReport, LandlockError> {
    let abi = kernel_abi();
    if req == Requirement::Required && abi < PINNED_ABI_VERSION {
        return Err(LandlockError::Unsupported { kernel_abi: abi });
    }
    Ok(expected_report(abi))
}

fn is_dir(fd: BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: st is writable stat storage; fd is a valid descriptor.
    let r = unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) };
    // SAFETY: fstat succeeded (r == 0) so st is initialised.
    r == 0 && unsafe { st.assume_init() }.st_mode & libc::S_IFMT == libc::S_IFDIR
}

impl Plan {
    /// Applies the plan to the calling process (and its future children).
    pub fn apply(&self) -> Result<LandlockReport, LandlockError> {
        let level = match self.requirement {
            Requirement::Required => CompatLevel::HardRequirement,
            Requirement::BestEffort => CompatLevel::BestEffort,
        };
        let expected = check_supported(self.requirement)?;
        let map = |e: landlock::RulesetError| LandlockError::Enforce(e.to_string());
        let mut rs = Ruleset::default()
            .set_compatibility(level)
            .handle_access(AccessFs::from_all(PINNED_ABI))
            .map_err(map)?;
        if expected.net || level == CompatLevel::HardRequirement {
            rs = rs
                .handle_access(AccessNet::from_all(PINNED_ABI))
                .map_err(map)?;
        }
        if expected.scope || level == CompatLevel::HardRequirement {
            rs = rs.scope(Scope::from_all(PINNED_ABI)).map_err(map)?;
        }
        let mut created = rs.create().map_err(map)?;
        for (target, rights) in &self.rules {
            let (fd, what): (OwnedFd, String) = match target {
                Target::Path(p) => {
                    let f = std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
                        .open(p)
                        .map_err(|e| LandlockError::Rule {
                            what: p.display().to_string(),
                            err: e.to_string(),
                        })?;
                    (f.into(), p.display().to_string())
                }
                Target::Fd(fd) => {
                    // SAFETY: the fd is a granted descriptor that stays open for
                    // the sandbox's lifetime; it is only borrowed to duplicate it.
                    let b = unsafe { BorrowedFd::borrow_raw(*fd) };
                    let owned = b.try_clone_to_owned().map_err(|e| LandlockError::Rule {
                        what: format!("granted fd {fd}"),
                        err: e.to_string(),
                    })?;
                    (owned, format!("granted fd {fd}"))
                }
            };
            let dir = {
                use std::os::fd::AsFd;
                is_dir(fd.as_fd())
            };
            if !dir && matches!(target, Target::Fd(_)) {
                // A granted open file is usable as it is; a rule would also
                // let the sandbox re-open its path with other flags.
                continue;
            }
            created = created
                .add_rule(PathBeneath::new(fd, rights.access(dir)))
                .map_err(|e| LandlockError::Rule {
                    what,
                    err: e.to_string(),
                })?;
        }
        if expected.net {
            for p in &self.tcp_bind {
                created = created
                    .add_rule(NetPort::new(*p, AccessNet::BindTcp))
                    .map_err(|e| LandlockError::Rule {
                        what: format!("tcp bind {p}"),
                        err: e.to_string(),
                    })?;
            }
            for p in &self.tcp_connect {
                created = created
                    .add_rule(NetPort::new(*p, AccessNet::ConnectTcp))
                    .map_err(|e| LandlockError::Rule {
                        what: format!("tcp connect {p}"),
                        err: e.to_string(),
                    })?;
            }
        }
        let st = created.restrict_self().map_err(map)?;
        let mut report = expected;
        match st.ruleset {
            RulesetStatus::FullyEnforced => {}
            RulesetStatus::PartiallyEnforced => report.fs_full = false,
            RulesetStatus::NotEnforced => {
                report = LandlockReport {
                    kernel_abi: expected.kernel_abi,
                    ..Default::default()
                }
            }
        }
        if self.requirement == Requirement::Required && st.ruleset != RulesetStatus::FullyEnforced {
            return Err(LandlockError::Unsupported {
                kernel_abi: expected.kernel_abi,
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_has_no_write_rights() {
        let ro = Rights::ReadOnly.access(true);
        assert!(ro.contains(AccessFs::ReadFile) && ro.contains(AccessFs::ReadDir));
        for w in [
            AccessFs::WriteFile,
            AccessFs::RemoveDir,
            AccessFs::RemoveFile,
            AccessFs::MakeReg,
            AccessFs::MakeSock,
            AccessFs::MakeSym,
            AccessFs::Refer,
            AccessFs::Truncate,
            AccessFs::IoctlDev,
        ] {
            assert!(!ro.contains(w), "{w:?} in read-only set");
        }
    }

    #[test]
    fn read_write_covers_every_pinned_right() {
        assert_eq!(
            Rights::ReadWrite.access(true),
            AccessFs::from_all(PINNED_ABI)
        );
        // files only get file rights (Landlock rejects directory rights on files)
        let f = Rights::ReadWrite.access(false);
        assert!(f.contains(AccessFs::WriteFile) && !f.contains(AccessFs::MakeDir));
    }

    #[test]
    fn pinned_abi_handles_net_and_scopes() {
        assert_eq!(
            AccessNet::from_all(PINNED_ABI),
            AccessNet::BindTcp | AccessNet::ConnectTcp
        );
        assert_eq!(
            Scope::from_all(PINNED_ABI),
            Scope::AbstractUnixSocket | Scope::Signal
        );
        assert!(AccessFs::from_all(PINNED_ABI).contains(AccessFs::IoctlDev));
    }

    #[test]
    fn expected_reports_follow_kernel_minimums() {
        assert_eq!(expected_report(0), LandlockReport::default());
        let r = expected_report(4);
        assert!(r.fs && r.net && !r.scope && !r.fs_full);
        let r = expected_report(7);
        assert!(r.fs_full && r.net && r.scope);
    }

    #[test]
    fn required_fails_on_old_kernels_only() {
        let abi = kernel_abi();
        let r = check_supported(Requirement::Required);
        assert_eq!(r.is_ok(), abi >= PINNED_ABI_VERSION);
        assert!(check_supported(Requirement::BestEffort).is_ok());
        let msg = LandlockError::Unsupported { kernel_abi: 3 }.to_string();
        assert!(msg.contains("Linux 6.12") && msg.contains("BestEffort"));
    }
}
