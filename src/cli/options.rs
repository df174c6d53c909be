//! The options shared by every command that runs a guest.

use clap::Args;
use std::path::PathBuf;
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

    /// The hostname inside the sandbox
    #[arg(long, value_name = "NAME", default_value = wsandbox::policy::DEFAULT_HOSTNAME)]
    hostname: String,

    /// The uid inside the sandbox (default: the caller's)
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,

    /// The gid inside the sandbox (default: the caller's)
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,

    /// If the kernel refuses an isolation layer, run without it (and say
    /// which) instead of failing
    #[arg(long)]
    allow_degraded: bool,

    /// Keep the caller's session and terminal (no setsid), for interactive
    /// guests; pushing input into the terminal stays refused
    #[arg(long)]
    keep_terminal: bool,

    /// Stop the guest after this much wall-clock time (500ms, 2s, 1m): exit 124
    #[arg(long, value_name = "DURATION", value_parser = wsandbox::policy::parse_duration)]
    timeout: Option<std::time::Duration>,

    /// The most linear memory an instance may have (64M, 1G): growing past
    /// it fails
    #[arg(long, value_name = "SIZE", value_parser = wsandbox::policy::parse_size)]
    memory: Option<u64>,

    /// Stop the guest after about N wasm instructions, the same point on
    /// every run: exit 124
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    fuel: Option<u64>,

    /// Accept an artifact of `wsandbox compile` as MODULE: it is machine code
    /// run as given, so only pass artifacts you trust
    #[arg(long)]
    allow_precompiled: bool,

    /// Compile the module afresh: neither read nor write the compilation
    /// cache ($XDG_CACHE_HOME/wsandbox)
    #[arg(long)]
    no_cache: bool,

    /// Write the outcome as JSON to FILE (`-` for stderr), whatever it is
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

impl PolicyOptions {
    /// The policy these options describe (not yet validated).
    pub fn to_policy(&self) -> Policy {
        let dirs = self.dirs.iter().map(|d| DirGrant::parse(d, Access::ReadWrite));
        let ro_dirs = self.ro_dirs.iter().map(|d| DirGrant::parse(d, Access::ReadOnly));
        Policy {
            dirs: dirs.chain(ro_dirs).collect(),
            env: self.env.iter().map(|e| EnvVar::parse(e)).collect(),
            hostname: self.hostname.clone(),
            uid: self.uid,
            gid: self.gid,
            allow_degraded: self.allow_degraded,
            keep_terminal: self.keep_terminal,
            timeout: self.timeout,
            memory: self.memory,
            fuel: self.fuel,
            allow_precompiled: self.allow_precompiled,
        }
    }

    /// How a command runs its guest: the policy, the cache, the report.
    pub fn setup(&self) -> super::guest::Setup {
        super::guest::Setup {
            policy: self.to_policy(),
            cache: !self.no_cache,
            report: self.report.clone(),
            keep: Vec::new(),
            purpose: wsandbox::engine::Purpose::Command,
        }
    }
}
