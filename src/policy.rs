//! The sandbox policy: plain data describing what a guest is granted.
//!
//! One [`Policy`] is built by the command line (and by library users); the
//! engine and, later, the outer shell read nothing else. Nothing is granted
//! by default: no directories, no environment variables.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// What a guest may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Host directories preopened for the guest.
    pub dirs: Vec<DirGrant>,
    /// Environment variables the guest sees, in order; a later entry with
    /// the same name wins.
    pub env: Vec<EnvVar>,
    /// The hostname inside the sandbox.
    pub hostname: String,
    /// The uid inside the sandbox (default: the caller's).
    pub uid: Option<u32>,
    /// The gid inside the sandbox (default: the caller's).
    pub gid: Option<u32>,
    /// Run with the isolation layers the kernel grants, listing the missing
    /// ones, instead of failing.
    pub allow_degraded: bool,
    /// Keep the caller's session and controlling terminal (no `setsid`),
    /// for interactive guests; pushing input into the terminal (`TIOCSTI`,
    /// `TIOCLINUX`) stays refused by the seccomp filter.
    pub keep_terminal: bool,
    /// Wall-clock limit of the run: past it, the sandbox is killed and the
    /// run ends with exit 124.
    pub timeout: Option<std::time::Duration>,
    /// The most linear memory an instance may have, in bytes: a grow past
    /// it fails (and a guest that then traps gets exit 134 naming it).
    pub memory: Option<u64>,
    /// A deterministic budget of fuel (about one unit per wasm
    /// instruction): when it runs out the guest stops, exit 124. `None`
    /// runs without metering, which costs nothing.
    pub fuel: Option<u64>,
    /// Accept a precompiled artifact (from `wsandbox compile`) as the
    /// module. It is machine code that wasmtime runs as given, so it is
    /// trusted code: refused unless asked for.
    pub allow_precompiled: bool,
}

/// The hostname a sandbox gets unless the policy names one.
pub const DEFAULT_HOSTNAME: &str = "wsandbox";

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            dirs: Vec::new(),
            env: Vec::new(),
            hostname: DEFAULT_HOSTNAME.into(),
            uid: None,
            gid: None,
            allow_degraded: false,
            keep_terminal: false,
            timeout: None,
            memory: None,
            fuel: None,
            allow_precompiled: false,
        }
    }
}

/// A host directory made visible to the guest at `guest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: PathBuf,
    /// The path under which the guest sees it.
    pub guest: String,
    /// What the guest may do there.
    pub access: Access,
}

/// The rights a guest has in a granted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    /// Read files and list directories; no write, create, delete, rename,
    /// truncate or set-times.
    ReadOnly,
    /// Everything, within the directory.
    ReadWrite,
}

/// One environment variable for the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value; `None` passes the host's value through (and sets nothing
    /// when the host has none).
    pub value: Option<String>,
}

/// A policy that cannot be applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A granted directory is missing or is not a directory.
    #[error("{flag} {}: {reason}", host.display())]
    BadDir {
        /// `--dir` or `--ro-dir`.
        flag: &'static str,
        /// The host path as given.
        host: PathBuf,
        /// Why it cannot be granted.
        reason: String,
    },
    /// Two grants claim the same guest path.
    #[error("guest path {0:?} is granted twice")]
    DuplicateGuestPath(String),
    /// A guest path is empty.
    #[error("a granted directory has an empty guest path")]
    EmptyGuestPath,
    /// An environment variable name is empty or contains `=` or NUL.
    #[error("invalid environment variable name {0:?}")]
    BadEnvName(String),
    /// A directory that the sandbox reserves for itself.
    #[error("{flag} {}: cannot grant {}: the sandbox mounts its own there", host.display(), canonical.display())]
    ReservedDir {
        /// `--dir` or `--ro-dir`.
        flag: &'static str,
        /// The host path as given.
        host: PathBuf,
        /// What it resolves to.
        canonical: PathBuf,
    },
    /// The hostname is empty, too long or has characters a hostname cannot.
    #[error("invalid hostname {0:?}: 1 to 64 letters, digits, '-' or '.'")]
    BadHostname(String),
    /// A policy that cannot be read (not the format, an unknown key).
    #[error("cannot read the policy: {0}")]
    Unreadable(String),
    /// A passed-through environment variable is not valid UTF-8 on the host.
    #[error("--env {0}: the host's value is not valid UTF-8")]
    EnvNotUtf8(String),
}

/// Parses a duration as the command line takes it: a number and a unit,
/// `ms`, `s`, `m` or `h` (`500ms`, `2s`, `1.5m`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?}: a unit is needed (ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a number and a unit (e.g. 500ms, 2s, 1m)"))?;
    let seconds = match unit {
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
    };
    if !(seconds > 0.0 && seconds < 1e9) {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// Parses a size as the command line takes it: a number of bytes, or with
/// a binary unit `K`, `M` or `G` (`KiB`, `MiB`, `GiB` too): `64M`, `1G`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: not a size (e.g. 64M, 1G)"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (K, M or G)")),
    };
    match number.checked_mul(scale) {
        Some(0) => Err(format!("{text:?}: must be more than zero")),
        Some(bytes) => Ok(bytes),
        None => Err(format!("{text:?}: too large")),
    }
}

impl Access {
    /// The command-line flag that grants this access.
    pub fn flag(self) -> &'static str {
        match self {
            Access::ReadOnly => "--ro-dir",
            Access::ReadWrite => "--dir",
        }
    }
}

impl DirGrant {
    /// Parses `HOST[::GUEST]`; the guest path defaults to HOST as written.
    pub fn parse(spec: &str, access: Access) -> DirGrant {
        let (host, guest) = match spec.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (spec, spec),
        };
        DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_owned(),
            access,
        }
    }
}

impl EnvVar {
    /// Parses `NAME=VALUE`, or `NAME` to pass the host's value through.
    pub fn parse(spec: &str) -> EnvVar {
        match spec.split_once('=') {
            Some((name, value)) => EnvVar {
                name: name.to_owned(),
                value: Some(value.to_owned()),
            },
            None => EnvVar {
                name: spec.to_owned(),
                value: None,
            },
        }
    }
}

impl Policy {
    /// Checks that the policy can be applied on this host: every granted
    /// directory exists and is a directory, guest paths are distinct, and
    /// variable names are valid.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let mut guests = HashSet::new();
        for dir in &self.dirs {
            let bad = |reason: String| PolicyError::BadDir {
                flag: dir.access.flag(),
                host: dir.host.clone(),
                reason,
            };
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(bad("not a directory".into())),
                Err(e) => return Err(bad(io_reason(&e))),
            }
            if dir.guest.is_empty() {
                return Err(PolicyError::EmptyGuestPath);
            }
            if !guests.insert(dir.guest.trim_end_matches('/')) {
                return Err(PolicyError::DuplicateGuestPath(dir.guest.clone()));
            }
        }
        let host_ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        if self.hostname.is_empty() || self.hostname.len() > 64 || !self.hostname.chars().all(host_ok) {
            return Err(PolicyError::BadHostname(self.hostname.clone()));
        }
        for var in &self.env {
            if var.name.is_empty() || var.name.contains(['=', '\0']) {
                return Err(PolicyError::BadEnvName(var.name.clone()));
            }
        }
        Ok(())
    }

    /// Validates the policy, then replaces every granted host path by its
    /// canonical form (symlinks resolved), which is where the sandbox
    /// mounts it. Paths the sandbox reserves (`/`, `/proc`, `/dev`) are
    /// refused.
    pub fn resolve(&mut self) -> Result<(), PolicyError> {
        self.validate()?;
        for dir in &mut self.dirs {
            let canonical = std::fs::canonicalize(&dir.host).map_err(|e| PolicyError::BadDir {
                flag: dir.access.flag(),
                host: dir.host.clone(),
                reason: io_reason(&e),
            })?;
            let reserved = canonical == Path::new("/")
                || canonical.starts_with("/proc")
                || canonical.starts_with("/dev")
                || canonical.starts_with("/oldroot");
            if reserved {
                return Err(PolicyError::ReservedDir {
                    flag: dir.access.flag(),
                    host: dir.host.clone(),
                    canonical,
                });
            }
            dir.host = canonical;
        }
        Ok(())
    }

    /// The guest's environment: explicit values, plus the host's values of
    /// passed-through names (skipped when unset on the host). A later entry
    /// replaces an earlier one of the same name.
    pub fn guest_env(&self) -> Result<Vec<(String, String)>, PolicyError> {
        let mut env: Vec<(String, String)> = Vec::new();
        for var in &self.env {
            let value = match &var.value {
                Some(value) => value.clone(),
                None => match std::env::var(&var.name) {
                    Ok(value) => value,
                    Err(std::env::VarError::NotPresent) => continue,
                    Err(std::env::VarError::NotUnicode(_)) => {
                        return Err(PolicyError::EnvNotUtf8(var.name.clone()));
                    }
                },
            };
            env.retain(|(name, _)| *name != var.name);
            env.push((var.name.clone(), value));
        }
        Ok(env)
    }
}

/// An I/O error as a short reason, without the "(os error N)" suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_spec_defaults_guest_to_host() {
        let d = DirGrant::parse("/data", Access::ReadOnly);
        assert_eq!(d.host, PathBuf::from("/data"));
        assert_eq!(d.guest, "/data");
        let d = DirGrant::parse("/srv/x::/x", Access::ReadWrite);
        assert_eq!(d.host, PathBuf::from("/srv/x"));
        assert_eq!(d.guest, "/x");
    }

    #[test]
    fn env_spec_value_or_passthrough() {
        assert_eq!(EnvVar::parse("A=b=c").value.as_deref(), Some("b=c"));
        assert_eq!(EnvVar::parse("A=").value.as_deref(), Some(""));
        assert_eq!(EnvVar::parse("HOME").value, None);
    }

    #[test]
    fn later_env_entries_win() {
        let policy = Policy {
            env: vec![EnvVar::parse("A=1"), EnvVar::parse("B=2"), EnvVar::parse("A=3")],
            ..Policy::default()
        };
        let env = policy.guest_env().unwrap();
        assert_eq!(env, [("B".into(), "2".into()), ("A".into(), "3".into())]);
    }

    #[test]
    fn validate_rejects_bad_grants() {
        let tmp = std::env::temp_dir();
        let dir = |spec: &str| DirGrant::parse(spec, Access::ReadWrite);
        let with = |dirs: Vec<DirGrant>| {
            Policy {
                dirs,
                ..Policy::default()
            }
            .validate()
        };
        assert!(with(vec![dir(tmp.to_str().unwrap())]).is_ok());
        assert!(matches!(
            with(vec![dir("/definitely/not/here")]),
            Err(PolicyError::BadDir { .. })
        ));
        let twice = format!("{}::/a", tmp.display());
        assert!(matches!(
            with(vec![dir(&twice), dir(&twice)]),
            Err(PolicyError::DuplicateGuestPath(_))
        ));
        let bad_env = Policy {
            env: vec![EnvVar::parse("=x")],
            ..Policy::default()
        };
        assert!(matches!(bad_env.validate(), Err(PolicyError::BadEnvName(_))));
    }
}
