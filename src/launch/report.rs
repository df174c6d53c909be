//! The outcome of a run as JSON (`--report FILE`, `-` for stderr), written
//! for every ending, errors included, by the supervising parent — outside
//! the sandbox, so the guest can neither reach the file nor forge the exit
//! code, the times or the memory figures. The schema is in the README.

use super::{Account, GuestEnd, exit_code};
use crate::Error;
use crate::engine::{CodeSource, Module, ModuleKind};
use crate::wall::{Applied, End, Ending, Enforcement, Layer};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `exited`, `trapped`, `timeout`, `fuel`, `killed` or `error`.
    pub outcome: OutcomeName,
    /// wsandbox's exit code.
    pub exit_code: i32,
    /// What happened, in one line: the trap, the error, the signal.
    pub message: Option<String>,
    /// Wall-clock time from start to end, in milliseconds.
    pub wall_ms: f64,
    /// CPU time of the sandbox (user + system), in milliseconds; absent when
    /// no sandbox was started.
    pub cpu_ms: Option<f64>,
    /// The sandbox's peak resident memory, in bytes; absent when no sandbox
    /// was started.
    pub peak_memory_bytes: Option<u64>,
    /// The fuel the guest burnt, when it ran with `--fuel` (as the sandbox
    /// counted it).
    pub fuel_consumed: Option<u64>,
    /// Where the guest's machine code came from: `compiled`, `cache` or
    /// `precompiled`; absent when the guest never started.
    pub code_source: Option<CodeSource>,
    /// The module, once it was read.
    pub module: Option<ModuleInfo>,
    /// What isolated the run, as applied; absent when setup never finished.
    pub isolation: Option<Isolation>,
    /// The connections the guest asked the broker for, and what came of
    /// each (the first 1,000; `network_unlisted` counts the rest); absent
    /// when the policy allows no destination or none was asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub network: Vec<crate::wall::Connection>,
    /// How many more connections were asked for than `network` lists.
    #[serde(skip_serializing_if = "is_zero")]
    pub network_unlisted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// How a run ended, as its report tells it: one case for each outcome of
/// DESIGN.md, with what belongs to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The guest exited (or a call returned) on its own.
    Exited,
    /// The guest trapped: the trap, as the sandbox told it.
    Trapped(Option<String>),
    /// Past the time limit.
    Timeout,
    /// Out of fuel: what the sandbox said of it.
    Fuel(Option<String>),
    /// Ended by this signal, sent to it or forwarded by the supervisor.
    Killed(i32),
    /// wsandbox failed, or the module could not run: why.
    Error(String),
}

/// The name of an outcome in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeName {
    /// See [`RunEnd::Exited`].
    Exited,
    /// See [`RunEnd::Trapped`].
    Trapped,
    /// See [`RunEnd::Timeout`].
    Timeout,
    /// See [`RunEnd::Fuel`].
    Fuel,
    /// See [`RunEnd::Killed`].
    Killed,
    /// See [`RunEnd::Error`].
    Error,
}

impl RunEnd {
    /// How a supervised run ended. The exit status and the signal are the
    /// kernel's; the guest's own account of its end (a trap's message) is
    /// taken only when the kernel says it exited on its own.
    pub fn of(end: &End, account: &Account) -> RunEnd {
        match end {
            End::SetupFailed(error) => RunEnd::Error(format!("cannot set up the sandbox: {error}")),
            End::TimedOut => RunEnd::Timeout,
            End::Signaled(signal)
            | End::Exited {
                forwarded: Some(signal),
                ..
            } => RunEnd::Killed(*signal),
            End::Exited {
                code,
                forwarded: None,
            } => match &account.ended {
                Some(told) => match told.how {
                    GuestEnd::Exited => RunEnd::Exited,
                    GuestEnd::Trapped => RunEnd::Trapped(told.message.clone()),
                    GuestEnd::Fuel => RunEnd::Fuel(told.message.clone()),
                    GuestEnd::Error => RunEnd::Error(told.message.clone().unwrap_or_default()),
                },
                None => RunEnd::Error(format!("the sandbox ended without saying how (exit {code})")),
            },
            End::Lost => RunEnd::Error("the supervisor lost sight of the sandbox".into()),
        }
    }

    /// Its name in the report.
    pub fn name(&self) -> OutcomeName {
        match self {
            RunEnd::Exited => OutcomeName::Exited,
            RunEnd::Trapped(_) => OutcomeName::Trapped,
            RunEnd::Timeout => OutcomeName::Timeout,
            RunEnd::Fuel(_) => OutcomeName::Fuel,
            RunEnd::Killed(_) => OutcomeName::Killed,
            RunEnd::Error(_) => OutcomeName::Error,
        }
    }

    /// What happened, in one line.
    pub fn message(&self) -> Option<String> {
        match self {
            RunEnd::Exited => None,
            RunEnd::Trapped(message) | RunEnd::Fuel(message) => message.clone(),
            RunEnd::Timeout => Some("the guest ran past its time limit".into()),
            RunEnd::Killed(signal) => {
                let name = nix::sys::signal::Signal::try_from(*signal).map_or("?", |s| s.as_str());
                Some(format!("ended by signal {signal} ({name})"))
            }
            RunEnd::Error(message) => Some(message.clone()),
        }
    }
}

/// What isolated a run, as the sandbox applied it. The lockdown steps are
/// always all there: the sandbox says it is ready only once each of them
/// succeeded (a failing step is an `error` report instead).
#[derive(Debug, Clone, Serialize)]
pub struct Isolation {
    /// Namespaces in place (`user`, `pid`, `mount`, `uts`, `ipc`, `net`,
    /// `cgroup`).
    pub namespaces: Vec<Layer>,
    /// Namespaces the kernel refused (only with `allow_degraded`).
    pub missing: Vec<Layer>,
    /// The host uid and gid the sandbox runs as.
    pub host_ids: (u32, u32),
    /// Every capability set emptied, the bounding set included.
    pub capabilities_dropped: bool,
    /// `PR_SET_NO_NEW_PRIVS`.
    pub no_new_privs: bool,
    /// The seccomp allow-list is installed.
    pub seccomp: bool,
    /// Landlock: `full`, `partial` (an older ABI) or `none` (degraded).
    pub landlock: Enforcement,
    /// rlimits: core 0, bounded open files, file size and processes.
    pub rlimits: bool,
    /// Every descriptor of the caller's but stdio and those handed in
    /// closed.
    pub fds_closed: bool,
    /// A session of its own (no controlling terminal).
    pub own_session: bool,
}

impl From<&Applied> for Isolation {
    fn from(applied: &Applied) -> Isolation {
        Isolation {
            namespaces: applied.namespaces.clone(),
            missing: applied.missing.clone(),
            host_ids: applied.host_ids,
            capabilities_dropped: true,
            no_new_privs: true,
            seccomp: true,
            landlock: applied.landlock,
            rlimits: true,
            fds_closed: true,
            own_session: applied.own_session,
        }
    }
}

/// Which module ran.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleInfo {
    /// Its path, as given.
    pub path: PathBuf,
    /// The SHA-256 of the file, in hex.
    pub sha256: String,
    /// `core` or `component`.
    pub kind: &'static str,
    /// The WASI version it is written for: `0.1`, `0.2` or `0.3`.
    pub wasi: &'static str,
}

impl ModuleInfo {
    /// Describes `module`, hashing the file it was read from.
    pub fn of(module: &Module) -> ModuleInfo {
        let digest = std::fs::read(&module.path)
            .map(Sha256::digest)
            .unwrap_or_else(|_| Sha256::digest(&module.bytes));
        ModuleInfo {
            path: module.path.clone(),
            sha256: crate::cache::hex(&digest),
            kind: match module.kind {
                ModuleKind::Core => "core",
                ModuleKind::Component => "component",
            },
            wasi: module.wasi().version(),
        }
    }
}

impl Report {
    /// The report of a run that failed before any sandbox existed.
    pub fn error(err: &Error, wall: Duration, module: Option<ModuleInfo>) -> Report {
        Report {
            outcome: OutcomeName::Error,
            exit_code: err.exit_code().into(),
            message: Some(err.to_string()),
            wall_ms: wall.as_secs_f64() * 1e3,
            cpu_ms: None,
            peak_memory_bytes: None,
            fuel_consumed: None,
            code_source: None,
            module,
            isolation: None,
            network: Vec::new(),
            network_unlisted: 0,
        }
    }

    /// The report of a supervised run: its outcome is [`RunEnd::of`] the
    /// sandbox's end; the usage is the kernel's.
    pub fn ended(ending: &Ending, account: &Account, wall: Duration, module: Option<ModuleInfo>) -> Report {
        let end = RunEnd::of(&ending.end, account);
        Report {
            outcome: end.name(),
            exit_code: exit_code(&ending.end).into(),
            message: end.message(),
            wall_ms: wall.as_secs_f64() * 1e3,
            cpu_ms: Some(ending.cpu_ms),
            peak_memory_bytes: Some(ending.peak_memory_bytes),
            fuel_consumed: account.ended.as_ref().and_then(|said| said.fuel_consumed),
            code_source: account.loaded.map(|loaded| loaded.code),
            module,
            isolation: ending.applied.as_ref().map(Isolation::from),
            network: ending.network.connections.clone(),
            network_unlisted: ending.network.unlisted,
        }
    }
}

/// Where a report goes: a file, or stderr (`-`). The file is opened before
/// the run, by the caller (who may then give up root), so that a path that
/// cannot be written fails early and the supervisor can still write it.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    file: Option<std::fs::File>,
}

impl ReportFile {
    /// Creates (or truncates) `path` for the report (`-`: stderr).
    pub fn create(path: &Path) -> Result<ReportFile, Error> {
        let file = if path == Path::new("-") {
            None
        } else {
            Some(std::fs::File::create(path).map_err(|e| {
                Error::Report(format!(
                    "{} {}: {}",
                    crate::policy::Setting::Report,
                    path.display(),
                    crate::policy::io_reason(&e)
                ))
            })?)
        };
        Ok(ReportFile {
            path: path.into(),
            file,
        })
    }

    /// Writes `report` as one JSON object and a newline; a failure is said
    /// on stderr (the run's exit code stands).
    pub fn write(&mut self, report: &Report) {
        let mut json = serde_json::to_string(report).expect("reports serialize");
        json.push('\n');
        let written = match &mut self.file {
            Some(file) => file.write_all(json.as_bytes()),
            None => std::io::stderr().write_all(json.as_bytes()),
        };
        if let Err(e) = written {
            crate::say!(
                "wsandbox: {} {}: {e}",
                crate::policy::Setting::Report,
                self.path.display()
            );
        }
    }
}
