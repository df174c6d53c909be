//! The outcome of a run as JSON (`--report FILE`, `-` for stderr), written
//! for every ending, errors included, by the supervising parent — outside
//! the sandbox, so the guest can neither reach the file nor forge the exit
//! code, the times or the memory figures. The schema is in the README.

use crate::Error;
use crate::engine::{Module, ModuleKind};
use crate::wall::{Applied, Ending};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One run's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `exited`, `trapped`, `timeout`, `fuel`, `killed` or `error`.
    pub outcome: String,
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
    pub code_source: Option<String>,
    /// The module, once it was read.
    pub module: Option<ModuleInfo>,
    /// What isolated the run, as applied; absent when setup never finished.
    pub isolation: Option<Applied>,
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
        }
    }
}

impl Report {
    /// The report of a run that failed before any sandbox existed.
    pub fn error(err: &Error, wall: Duration, module: Option<ModuleInfo>) -> Report {
        Report {
            outcome: "error".into(),
            exit_code: err.exit_code().into(),
            message: Some(err.to_string()),
            wall_ms: wall.as_secs_f64() * 1e3,
            cpu_ms: None,
            peak_memory_bytes: None,
            fuel_consumed: None,
            code_source: None,
            module,
            isolation: None,
        }
    }

    /// The report of a supervised run. The exit code, signal and usage are
    /// the kernel's; the guest's own account of its end (a trap's message)
    /// is taken only if it names a known outcome.
    pub fn ended(ending: &Ending, wall: Duration, module: Option<ModuleInfo>) -> Report {
        let said = ending
            .guest
            .clone()
            .filter(|(outcome, _)| ["exited", "trapped", "fuel", "error"].contains(&outcome.as_str()));
        let (outcome, message) = if let Some(error) = &ending.setup_error {
            (
                "error".to_string(),
                Some(format!("cannot set up the sandbox: {error}")),
            )
        } else if ending.timed_out {
            (
                "timeout".to_string(),
                Some("the guest ran past its time limit (--timeout)".into()),
            )
        } else if let Some(signal) = ending.signal {
            let name = nix::sys::signal::Signal::try_from(signal).map_or("?", |s| s.as_str());
            (
                "killed".to_string(),
                Some(format!("ended by signal {signal} ({name})")),
            )
        } else if let Some(said) = said {
            said
        } else {
            (
                "error".to_string(),
                Some(format!(
                    "the sandbox ended without saying how (exit {})",
                    ending.exit_code
                )),
            )
        };
        Report {
            outcome,
            exit_code: ending.exit_code,
            message,
            wall_ms: wall.as_secs_f64() * 1e3,
            cpu_ms: Some(ending.cpu_ms),
            peak_memory_bytes: Some(ending.peak_memory_bytes),
            fuel_consumed: ending.fuel_consumed,
            code_source: ending.loaded.as_ref().map(|l| l.code.clone()),
            module,
            isolation: ending.applied.clone(),
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
                    "--report {}: {}",
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
            crate::say!("wsandbox: --report {}: {e}", self.path.display());
        }
    }

    /// In the sandboxed process: lets go of this report without closing its
    /// descriptor, which the sandbox has already closed with every other
    /// one of the caller's (closing it again would abort).
    pub fn abandon_in_sandbox(self) {
        std::mem::forget(self);
    }
}
