//! The options shared by every command that runs a guest.

use clap::Args;
use wsandbox::policy::{Access, DirGrant, EnvVar, Policy};

/// What the guest is granted. Nothing is granted unless named here.
#[derive(Debug, Args)]
pub struct PolicyOptions {
    /// Preopen HOST read-write at GUEST (default: the same path)
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Preopen HOST read-only at GUEST: no write, create, delete or rename
    #[arg(long = "ro-dir", value_name = "HOST[::GUEST]")]
    ro_dirs: Vec<String>,

    /// Set NAME=VALUE, or pass NAME through from the host; nothing else is
    /// inherited
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,
}

impl PolicyOptions {
    /// The policy these options describe (not yet validated).
    pub fn to_policy(&self) -> Policy {
        let dirs = self.dirs.iter().map(|d| DirGrant::parse(d, Access::ReadWrite));
        let ro_dirs = self.ro_dirs.iter().map(|d| DirGrant::parse(d, Access::ReadOnly));
        Policy {
            dirs: dirs.chain(ro_dirs).collect(),
            env: self.env.iter().map(|e| EnvVar::parse(e)).collect(),
        }
    }
}
