//! Landlock: the sandboxed process may reach only the granted directories
//! (with their read or read-write rights) and the four device nodes; no TCP
//! bind or connect; no abstract unix socket or signal outside its domain.
//! See landlock(7). Rights this kernel's ABI lacks are left out (the status
//! says so); a kernel without Landlock fails the run unless degraded.

use crate::policy::{Access, Policy};
use landlock::{
    ABI, Access as _, AccessFs, AccessNet, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, path_beneath_rules,
};

/// The newest ABI wsandbox asks for; older kernels get what they offer.
const ABI_WANTED: ABI = ABI::V7;

/// Landlock could not be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LandlockError {
    /// A ruleset call failed.
    #[error("landlock: {0}")]
    Ruleset(#[from] landlock::RulesetError),
    /// The kernel does not enforce Landlock.
    #[error(
        "Landlock is not available (the kernel lacks it, or it is not among the active LSMs: \
         boot with lsm=...,landlock); run with --allow-degraded to go without it"
    )]
    NotEnforced,
}

/// What Landlock enforces for this process, for `check` and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Every right wsandbox asks for.
    Full,
    /// Those of an older ABI.
    Partial,
    /// None: the kernel has no Landlock (only with `allow_degraded`).
    None,
}

impl Enforcement {
    /// As reports name it: `full`, `partial` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Enforcement::Full => "full",
            Enforcement::Partial => "partial",
            Enforcement::None => "none",
        }
    }
}

/// The one file of procfs a server may read: its own memory's use, for
/// its metrics.
pub const OWN_MEMORY: &str = "/proc/self/statm";

/// Restricts this process (and the threads it creates later) to `policy`'s
/// grants, the sandbox's device nodes, and the files of `own` to read
/// (files of the process's own, such as [`OWN_MEMORY`]).
pub fn restrict(policy: &Policy, devices: &[&str], own: &[&str]) -> Result<Enforcement, LandlockError> {
    let read = AccessFs::from_read(ABI_WANTED);
    let all = AccessFs::from_all(ABI_WANTED);
    let (ro, rw): (Vec<_>, Vec<_>) = policy.dirs.iter().partition(|d| d.access == Access::ReadOnly);
    let status: RestrictionStatus = Ruleset::default()
        .handle_access(all)?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)?
        .create()?
        .add_rules(path_beneath_rules(ro.iter().map(|d| &d.host), read))?
        .add_rules(path_beneath_rules(rw.iter().map(|d| &d.host), all))?
        .add_rules(path_beneath_rules(
            devices,
            AccessFs::ReadFile | AccessFs::WriteFile,
        ))?
        .add_rules(path_beneath_rules(own, AccessFs::ReadFile))?
        .restrict_self()?;
    match status.ruleset {
        RulesetStatus::FullyEnforced => Ok(Enforcement::Full),
        RulesetStatus::PartiallyEnforced => Ok(Enforcement::Partial),
        RulesetStatus::NotEnforced if policy.allow_degraded => {
            crate::say_log!(
                WARN,
                "wsandbox: warning: running without Landlock ({})",
                crate::policy::Setting::AllowDegraded
            );
            Ok(Enforcement::None)
        }
        RulesetStatus::NotEnforced => Err(LandlockError::NotEnforced),
    }
}
