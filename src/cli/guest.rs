//! What every command that runs a guest shares: the policy checked and the
//! module read before any namespace, the compilation cache opened outside,
//! the outer wall, the code loaded inside, the ending told and reported.

use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Instant;
use wsandbox::cache::{Cache, Publisher};
use wsandbox::engine::{self, CodeCache, Ended, Module, Outcome, Program, Purpose};
use wsandbox::report::{ModuleInfo, Report, ReportFile};
use wsandbox::shell::{self, Loaded};
use wsandbox::{Error, Policy};

/// How long a server without a request timeout has to drain after
/// SIGINT/SIGTERM/SIGHUP before it is killed (as Kubernetes waits).
const SERVE_STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// How long the sandbox has after a forwarded SIGINT/SIGTERM/SIGHUP before
/// SIGKILL. A server drains the requests in flight (each up to its
/// timeout, and a second more), so it has that long on top.
fn stop_grace(purpose: &Purpose) -> std::time::Duration {
    match purpose {
        Purpose::Command => shell::STOP_GRACE,
        Purpose::Serve(serving) => serving.timeout.map_or(SERVE_STOP_GRACE, |t| {
            t + std::time::Duration::from_secs(1) + shell::STOP_GRACE
        }),
    }
}

/// How a guest is to be run, besides the module.
#[derive(Debug)]
pub struct Setup {
    /// The policy (not yet resolved).
    pub policy: Policy,
    /// Which compilation cache to use, if any.
    pub cache: CacheChoice,
    /// Where `--report` goes.
    pub report: Option<PathBuf>,
    /// Descriptors of the caller's the sandbox keeps (a worker's channel,
    /// a server's listening socket).
    pub keep: Vec<RawFd>,
    /// What the engine is for: commands, or serving requests (which also
    /// gives the sandbox the server's syscalls).
    pub purpose: Purpose,
}

/// Which compilation cache a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheChoice {
    /// None (`--no-cache`).
    Off,
    /// The user's ([`Cache::default_dir`]).
    Default,
    /// This directory (`--cache-dir`).
    At(PathBuf),
}

/// Runs `work` on `module` behind both walls as `setup` says, and returns
/// wsandbox's exit code. `check` vets the loaded program before any of its
/// code runs (before the supervisor hears it was loaded). With a report,
/// the outcome is written whatever it is.
pub fn execute(
    setup: Setup,
    module: &Path,
    check: impl FnOnce(&Program) -> Result<(), Error>,
    work: impl FnOnce(&Policy, Program) -> Result<Ended, Error>,
) -> Result<u8, Error> {
    let started = Instant::now();
    let mut report = setup.report.as_deref().map(ReportFile::create).transpose()?;
    let mut module_info = None;
    let result = walled(setup, module, check, work, &mut report, &mut module_info, started);
    // Only failures before the sandbox existed return here; a sandboxed
    // run is reported by its supervisor.
    if let (Err(err), Some(report)) = (&result, &mut report) {
        report.write(&Report::error(err, started.elapsed(), module_info));
    }
    result
}

fn walled(
    setup: Setup,
    module: &Path,
    check: impl FnOnce(&Program) -> Result<(), Error>,
    work: impl FnOnce(&Policy, Program) -> Result<Ended, Error>,
    report: &mut Option<ReportFile>,
    module_info: &mut Option<ModuleInfo>,
    started: Instant,
) -> Result<u8, Error> {
    // 1. Everything that can fail on bad input, before any namespace.
    let mut policy = setup.policy;
    policy.resolve()?;
    // The sandboxed process has no environment of the host's: the guest's
    // values of passed-through names are read now.
    policy.take_host_env()?;
    let module = Module::load(module)?;
    engine::admit(&policy, &module)?;
    if report.is_some() {
        *module_info = Some(ModuleInfo::of(&module));
    }
    // The compilation cache lives outside the walls: its entry is read, or
    // an unnamed file reserved for a new one, before they exist.
    let (code_cache, mut publisher) = open_cache(&setup.cache, &policy, &module, setup.purpose);
    let keep: Vec<RawFd> = code_cache
        .sink
        .iter()
        .map(|sink| sink.as_raw_fd())
        .chain(setup.keep)
        .collect();
    // 2-9. The outer wall; only the sandboxed child returns. The parent
    // names a freshly written cache entry (if the child said, before the
    // guest ran, that it wrote one), reports how the run ended, then exits
    // with its code.
    let mut on_end = |ending: &shell::Ending| {
        if let Some(publisher) = publisher.take() {
            publisher.finish(ending.loaded.as_ref().is_some_and(|l| l.written));
        }
        if let Some(report) = report.as_mut() {
            report.write(&Report::ended(ending, started.elapsed(), module_info.clone()));
        }
    };
    let syscalls = match &setup.purpose {
        Purpose::Command => shell::Syscalls::Guest,
        Purpose::Serve(_) => shell::Syscalls::Server,
    };
    let grace = stop_grace(&setup.purpose);
    let mut sandbox = shell::enter(&mut policy, &keep, syscalls, grace, &mut on_end)?;
    if let Purpose::Serve(_) = setup.purpose {
        // Before the engine starts threads: termination signals are the
        // server's to take (gracefully), in every thread.
        let _ = engine::serve::termination_signals().thread_block();
    }
    if let Some(report) = report.take() {
        report.abandon_in_sandbox();
    }
    if let Some(publisher) = publisher.take() {
        publisher.abandon_in_sandbox();
    }
    // 10. The inner wall: load the code (closing the cache's file), say
    // how, and only then let the guest's code run.
    let ended = engine::load_for(&policy, &module, code_cache, setup.purpose).and_then(|program| {
        check(&program)?;
        sandbox.loaded(Loaded {
            code: program.source.name().into(),
            written: program.cached,
        });
        work(&policy, program)
    });
    let ended = match ended {
        Ok(ended) => ended,
        Err(err) => {
            sandbox.ended("error", Some(err.to_string()), None);
            return Err(err);
        }
    };
    let fuel = ended.fuel_consumed;
    match &ended.outcome {
        Outcome::Exited(_) => sandbox.ended("exited", None, fuel),
        Outcome::Returned { value, .. } => {
            if let Some(value) = value {
                // stdout may be closed or full for good: the run's end is
                // still reported.
                if let Err(err) = wsandbox::say::out(&format!("{value}\n")) {
                    wsandbox::say!("wsandbox: cannot write the result on stdout: {err}");
                }
            }
            sandbox.ended("exited", None, fuel);
        }
        Outcome::Trapped { message, backtrace } => {
            wsandbox::say!("wsandbox: guest trapped: {message}");
            if let Some(backtrace) = backtrace {
                wsandbox::say!("{backtrace}");
            }
            sandbox.ended("trapped", Some(message.clone()), fuel);
        }
        Outcome::OutOfFuel => {
            let message = format!(
                "the guest ran out of fuel (--fuel {}) and was stopped",
                policy.fuel.unwrap_or_default()
            );
            wsandbox::say!("wsandbox: {message}");
            sandbox.ended("fuel", Some(message), fuel);
        }
    }
    Ok(ended.outcome.exit_code())
}

/// The cache's entry for `module`, and an unnamed file in the cache for the
/// sandbox to write a fresh one to (should the entry be missing, or stale
/// after all), with who will name it. No cache (none can be created) is a
/// run without one.
///
/// Root's runs reserve a file only on a miss: naming it takes a helper
/// process forked while still root, which a hit should not pay for. A
/// stale entry of root's (which the key makes unlikely) is compiled again
/// on each run, never trusted, and replaced once it is damaged or removed.
fn open_cache(
    choice: &CacheChoice,
    policy: &Policy,
    module: &Module,
    purpose: Purpose,
) -> (CodeCache, Option<Publisher>) {
    if module.precompiled {
        return (CodeCache::default(), None);
    }
    let cache = match choice {
        CacheChoice::Off => return (CodeCache::default(), None),
        CacheChoice::Default => Cache::open_default(),
        CacheChoice::At(dir) => Cache::open(dir),
    }
    .and_then(|cache| {
        cache.check_grants(policy.dirs.iter().map(|d| d.host.as_path()))?;
        Ok(cache)
    });
    let cache = match cache {
        Ok(cache) => cache,
        Err(why) => {
            tracing::debug!("compilation cache not used: {why}");
            return (CodeCache::default(), None);
        }
    };
    tracing::debug!("compilation cache: {}", cache.dir().display());
    let key = Cache::key(module, &engine::settings(policy.fuel.is_some(), purpose));
    let entry = cache.lookup(&key);
    // The key's traces go before the sandbox, a copy of this process, exists.
    wsandbox::cache::scrub_stack();
    let helper = shell::gives_up_root();
    if entry.is_some() && helper {
        return (CodeCache { entry, sink: None }, None);
    }
    let reserved = cache.reserve(&key).and_then(|pending| {
        let sink = pending.sink()?;
        let publisher = Publisher::new(pending, helper)?;
        Ok((sink, publisher))
    });
    match reserved {
        Ok((sink, publisher)) => (
            CodeCache {
                entry,
                sink: Some(sink),
            },
            Some(publisher),
        ),
        Err(_) => (CodeCache { entry, sink: None }, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wsandbox::engine::Serving;

    #[test]
    fn a_server_has_its_drain_time_before_sigkill() {
        assert_eq!(stop_grace(&Purpose::Command), Duration::from_secs(2));
        let serving = |timeout| {
            Purpose::Serve(Serving {
                timeout,
                ..Serving::default()
            })
        };
        assert_eq!(
            stop_grace(&serving(Some(Duration::from_secs(5)))),
            Duration::from_secs(8)
        );
        assert_eq!(stop_grace(&serving(None)), Duration::from_secs(30));
    }
}
