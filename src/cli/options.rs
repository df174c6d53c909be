//! The options shared by every command that runs a guest.

use super::wasmtime::dir_grant;
use clap::Args;
use std::path::{Path, PathBuf};
use wsandbox::launch::report::{Report, ReportFile};
use wsandbox::launch::{Job, Launch};
use wsandbox::policy::net::Rule;
use wsandbox::policy::{Access, EnvVar, Policy};

/// What the guest is granted. Nothing is granted unless named here or in
/// the policy file.
#[derive(Debug, Args)]
pub struct PolicyOptions {
    /// Read the policy from a TOML file; the options given here win over
    /// it (directories and variables add to its own)
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Preopen HOST read-write at GUEST (default: the same path);
    /// HOST::GUEST::ro is read-only, as --ro-dir
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,

    /// Preopen HOST read-only at GUEST: no write, create, delete or rename
    #[arg(long = "ro-dir", value_name = "HOST[::GUEST]")]
    ro_dirs: Vec<String>,

    /// Set NAME=VALUE, or pass NAME through from the host; nothing else is
    /// inherited
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    env: Vec<String>,

    /// The hostname inside the sandbox [default: wsandbox]
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,

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

    /// Stop the guest after this much wall-clock time (500ms, 2s, 1m; a
    /// bare number is seconds): exit 124
    #[arg(long, value_name = "DURATION", value_parser = wsandbox::policy::parse_duration)]
    timeout: Option<std::time::Duration>,

    /// The most linear memory an instance may have (64M, 1G; binary: K,
    /// KiB and KB are 1024 bytes; a bare number is bytes): growing past it
    /// fails
    #[arg(long, value_name = "SIZE", value_parser = wsandbox::policy::parse_size)]
    memory: Option<u64>,

    /// Stop the guest after about N wasm instructions, the same point on
    /// every run: exit 124
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    fuel: Option<u64>,

    /// Let the guest send wasi:http requests to HOST[:PORT], through the
    /// broker outside the walls (repeatable): a name, *.DOMAIN, *, an IP or
    /// a CIDR range; no port: 80 for http, 443 for https; :* any. Loopback,
    /// private, link-local and other special addresses are reached only
    /// when a rule names them (127.0.0.1:8080)
    #[arg(long = "allow-http", value_name = "HOST[:PORT]", value_parser = |s: &str| Rule::parse(s, false))]
    allow_http: Vec<Rule>,

    /// Let the guest open TCP connections to HOST:PORT through wasi:sockets
    /// (not available yet: refused with a reason)
    #[arg(long = "allow-tcp", value_name = "HOST:PORT", value_parser = |s: &str| Rule::parse(s, true))]
    allow_tcp: Vec<Rule>,

    /// Trust the PEM certificates of FILE for the guest's HTTPS, besides the
    /// host's bundle
    #[arg(long = "tls-ca", value_name = "FILE")]
    tls_ca: Option<PathBuf>,

    /// Accept an artifact of `wsandbox compile` as MODULE: it is machine code
    /// run as given, so only pass artifacts you trust
    #[arg(long)]
    allow_precompiled: bool,

    /// Compile the module afresh: neither read nor write the compilation
    /// cache (whatever --cache-dir says)
    #[arg(long)]
    no_cache: bool,

    /// Keep the compilation cache in DIR (default: $XDG_CACHE_HOME/wsandbox
    /// or ~/.cache/wsandbox; root's in root's home); it must be the
    /// caller's, writable by no one else, and outside every grant
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Write the outcome as JSON to FILE (`-` for stderr), whatever it is
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,

    #[command(flatten)]
    wasmtime: super::wasmtime::WasmtimeOptions,
}

impl PolicyOptions {
    /// The policy these options describe: the policy file's, if one is
    /// named, with the options over it (not yet validated).
    pub fn to_policy(&self) -> Result<Policy, wsandbox::Error> {
        let mut policy = match &self.config {
            Some(path) => Policy::from_file(path)?,
            None => Policy::default(),
        };
        // wasmtime's spellings first: wsandbox's own options win over them.
        let rules = super::wasmtime::Rules {
            http: !(policy.allow_http.is_empty() && self.allow_http.is_empty()),
            tcp: !(policy.allow_tcp.is_empty() && self.allow_tcp.is_empty()),
        };
        self.wasmtime.apply(&mut policy, rules)?;
        for dir in &self.dirs {
            policy.dirs.push(dir_grant(dir, Access::ReadWrite)?);
        }
        for dir in &self.ro_dirs {
            policy.dirs.push(dir_grant(dir, Access::ReadOnly)?);
        }
        policy.env.extend(self.env.iter().map(|e| EnvVar::parse(e)));
        if let Some(hostname) = &self.hostname {
            policy.hostname = hostname.clone();
        }
        policy.uid = self.uid.or(policy.uid);
        policy.gid = self.gid.or(policy.gid);
        policy.allow_degraded |= self.allow_degraded;
        policy.keep_terminal |= self.keep_terminal;
        policy.timeout = self.timeout.or(policy.timeout);
        policy.memory = self.memory.or(policy.memory);
        policy.fuel = self.fuel.or(policy.fuel);
        policy.allow_precompiled |= self.allow_precompiled;
        policy.no_cache |= self.no_cache;
        if let Some(dir) = &self.cache_dir {
            policy.cache_dir = Some(dir.clone());
        }
        policy.allow_http.extend(self.allow_http.iter().cloned());
        policy.allow_tcp.extend(self.allow_tcp.iter().cloned());
        if let Some(ca) = &self.tls_ca {
            policy.tls_ca = Some(ca.clone());
        }
        Ok(policy)
    }

    /// Where the report goes, if anywhere (`--report`).
    pub fn report(&self) -> Option<&Path> {
        self.report.as_deref()
    }

    /// The launch of `module` for `job` these options describe: the
    /// policy, the cache, the report. A policy file that cannot be read is
    /// reported too.
    pub fn launch(&self, module: &Path, job: Job) -> Result<Launch, wsandbox::Error> {
        let policy = self.to_policy().inspect_err(|err| {
            if let Some(mut report) = self
                .report
                .as_deref()
                .and_then(|path| ReportFile::create(path).ok())
            {
                report.write(&Report::error(err, std::time::Duration::ZERO, None));
            }
        })?;
        Ok(Launch::new(module, job)
            .policy(policy)
            .report(self.report.clone()))
    }
}
