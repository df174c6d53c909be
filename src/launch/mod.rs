//! The one pipeline that runs a guest behind both walls: the policy checked
//! and the module read before any namespace, the compilation cache opened
//! outside, the outer wall, the code loaded inside, the job done, the
//! ending told, reported, and turned into an exit code.
//!
//! Every command (`run`, `call`, `serve`, `compile`) and the plugin worker
//! is a [`Launch`] with its [`Job`]:
//!
//! ```no_run
//! use wsandbox::launch::{CacheChoice, Job, Launch};
//!
//! let code = Launch::new("hello.wasm", Job::Run { args: vec![] })
//!     .cache(CacheChoice::Off)
//!     .execute()?;
//! # Ok::<(), wsandbox::Error>(())
//! ```
//!
//! [`Launch::execute`] returns in both processes the wall makes: in the
//! supervisor (outside) with the code to exit with, after the sandbox
//! ended; in the sandbox, after the job, with the guest's code. Call it
//! from `main` (while the process has one thread) and exit with its code.

use crate::cache::{Cache, Publisher};
use crate::engine::{
    self, Artifact, Call, CodeCache, Ended, Module, Outcome, Precompiled, Program, Purpose, Serving,
};
use crate::report::{ModuleInfo, Report, ReportFile};
use crate::wall::{self, Loaded};
use crate::{Error, Policy};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a launch does inside the walls.
#[derive(Debug)]
#[non_exhaustive]
pub enum Job {
    /// Run a WASI command with these arguments after its name (`run`).
    Run {
        /// The guest's arguments.
        args: Vec<String>,
    },
    /// Call one export and print its result in WAVE on stdout (`call`).
    Call(Call),
    /// Print the exports with their signatures on stdout (`call --list`).
    List,
    /// Serve a `wasi:http/proxy` component on `listener`, bound before the
    /// walls (`serve`); the first line on stderr is `http://ADDRESS`.
    Serve {
        /// The listening socket, the sandbox's only one.
        listener: std::net::TcpListener,
        /// The server's limits.
        serving: Serving,
    },
    /// Answer a plugin host's calls over `channel` (the plugin worker).
    Worker {
        /// The host's end is the other end of this socket.
        channel: OwnedFd,
    },
    /// Compile the module ahead of time into `output`, replaced only once
    /// it is whole (`compile`).
    Compile {
        /// Where the artifact goes.
        output: PathBuf,
        /// With fuel metering, for runs with a fuel limit.
        metered: bool,
        /// For `serve`'s engine.
        serve: bool,
    },
}

/// Which compilation cache a launch uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheChoice {
    /// None.
    Off,
    /// The user's ([`Cache::default_dir`]).
    #[default]
    Default,
    /// This directory.
    At(PathBuf),
}

/// A guest to run behind both walls, and how.
#[derive(Debug)]
pub struct Launch {
    /// The policy (not yet resolved: the launch resolves it).
    pub policy: Policy,
    /// The module's path.
    pub module: PathBuf,
    /// What to do with it.
    pub job: Job,
    /// Which compilation cache to use.
    pub cache: CacheChoice,
    /// Where to write the JSON report, if anywhere (`-`: stderr).
    pub report: Option<PathBuf>,
}

/// How long a server without a request timeout has to drain after
/// SIGINT/SIGTERM/SIGHUP before it is killed (as Kubernetes waits).
const SERVE_STOP_GRACE: Duration = Duration::from_secs(30);

impl Launch {
    /// A launch of `module` for `job`, under the default policy, with the
    /// user's cache and no report.
    pub fn new(module: impl Into<PathBuf>, job: Job) -> Launch {
        Launch {
            policy: Policy::default(),
            module: module.into(),
            job,
            cache: CacheChoice::Default,
            report: None,
        }
    }

    /// Under `policy`.
    pub fn policy(mut self, policy: Policy) -> Launch {
        self.policy = policy;
        self
    }

    /// With this compilation cache.
    pub fn cache(mut self, cache: CacheChoice) -> Launch {
        self.cache = cache;
        self
    }

    /// Writing a report to `path`.
    pub fn report(mut self, path: Option<PathBuf>) -> Launch {
        self.report = path;
        self
    }

    /// Runs the job behind both walls and returns the exit code (DESIGN.md):
    /// in the supervisor, the sandbox's once it ended; in the sandbox, the
    /// job's. With a report, the outcome is written whatever it is. Must
    /// be called while the process has a single thread.
    pub fn execute(self) -> Result<u8, Error> {
        let started = Instant::now();
        let mut report = self.report.as_deref().map(ReportFile::create).transpose()?;
        let mut module_info = None;
        let result = match self.job {
            Job::Compile { .. } => compile(self),
            _ => walled(self, &mut report, &mut module_info, started),
        };
        // Only failures before the sandbox existed return here; a sandboxed
        // run is reported by its supervisor.
        if let (Err(err), Some(report)) = (&result, &mut report) {
            report.write(&Report::error(err, started.elapsed(), module_info));
        }
        result
    }
}

/// How long the sandbox has after a forwarded SIGINT/SIGTERM/SIGHUP before
/// SIGKILL. A server drains the requests in flight (each up to its
/// timeout, and a second more), so it has that long on top.
fn stop_grace(purpose: &Purpose) -> Duration {
    match purpose {
        Purpose::Command => wall::STOP_GRACE,
        Purpose::Serve(serving) => serving.timeout.map_or(SERVE_STOP_GRACE, |t| {
            t + Duration::from_secs(1) + wall::STOP_GRACE
        }),
    }
}

/// The engine a job needs, and the descriptors of the caller's that the
/// sandbox keeps.
fn purpose_of(job: &Job) -> (Purpose, Vec<RawFd>) {
    match job {
        Job::Serve { listener, serving } => (Purpose::Serve(*serving), vec![listener.as_raw_fd()]),
        Job::Worker { channel } => (Purpose::Command, vec![channel.as_raw_fd()]),
        _ => (Purpose::Command, Vec::new()),
    }
}

fn walled(
    launch: Launch,
    report: &mut Option<ReportFile>,
    module_info: &mut Option<ModuleInfo>,
    started: Instant,
) -> Result<u8, Error> {
    // 1. Everything that can fail on bad input, before any namespace.
    let mut policy = launch.policy;
    let mut job = launch.job;
    if let Job::Serve { serving, .. } = &mut job {
        // The timeout and the memory limit are each request's, not the
        // sandbox's: the supervisor must not kill the server at the
        // timeout, nor bound its data by one instance's memory.
        serving.timeout = policy.timeout.take();
        serving.memory = policy.memory.take();
    }
    policy.resolve()?;
    // The sandboxed process has no environment of the host's: the guest's
    // values of passed-through names are read now.
    policy.take_host_env()?;
    let module = Module::load(&launch.module)?;
    engine::admit(&policy, &module)?;
    if report.is_some() {
        *module_info = Some(ModuleInfo::of(&module));
    }
    let (purpose, keep) = purpose_of(&job);
    // The compilation cache lives outside the walls: its entry is read, or
    // an unnamed file reserved for a new one, before they exist.
    let (mut code_cache, mut publisher) = open_cache(&launch.cache, &policy, &module, purpose);
    if policy.allow_precompiled {
        code_cache.precompiled = Some(Precompiled::allowed_by_policy());
    }
    let keep: Vec<RawFd> = code_cache
        .sink
        .iter()
        .map(|sink| sink.as_raw_fd())
        .chain(keep)
        .collect();
    // 2-9. The outer wall; only the sandboxed child returns. The parent
    // names a freshly written cache entry (if the child said, before the
    // guest ran, that it wrote one), reports how the run ended, then exits
    // with its code.
    let mut on_end = |ending: &wall::Ending| {
        if let Some(publisher) = publisher.take() {
            publisher.finish(ending.loaded.as_ref().is_some_and(|l| l.written));
        }
        if let Some(report) = report.as_mut() {
            report.write(&Report::ended(ending, started.elapsed(), module_info.clone()));
        }
    };
    let syscalls = match &purpose {
        Purpose::Command => wall::Syscalls::Guest,
        Purpose::Serve(_) => wall::Syscalls::Server,
    };
    let grace = stop_grace(&purpose);
    let mut sandbox = wall::enter(&mut policy, &keep, syscalls, grace, &mut on_end)?;
    if let Purpose::Serve(_) = purpose {
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
    let ended = engine::load_for(&policy, &module, code_cache, purpose).and_then(|program| {
        if let Job::Run { .. } = job {
            program.check_command()?;
        }
        sandbox.loaded(Loaded {
            code: program.source.name().into(),
            written: program.cached,
        });
        work(&policy, program, job)
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
                if let Err(err) = crate::say::out(&format!("{value}\n")) {
                    crate::say!("wsandbox: cannot write the result on stdout: {err}");
                }
            }
            sandbox.ended("exited", None, fuel);
        }
        Outcome::Trapped { message, backtrace } => {
            crate::say!("wsandbox: guest trapped: {message}");
            if let Some(backtrace) = backtrace {
                crate::say!("{backtrace}");
            }
            sandbox.ended("trapped", Some(message.clone()), fuel);
        }
        Outcome::OutOfFuel => {
            let message = format!(
                "the guest ran out of fuel (--fuel {}) and was stopped",
                policy.fuel.unwrap_or_default()
            );
            crate::say!("wsandbox: {message}");
            sandbox.ended("fuel", Some(message), fuel);
        }
    }
    Ok(ended.outcome.exit_code())
}

/// Does `job` with the loaded program, inside both walls.
fn work(policy: &Policy, program: Program, job: Job) -> Result<Ended, Error> {
    let exited = Ended {
        outcome: Outcome::Exited(0),
        fuel_consumed: None,
    };
    match job {
        Job::Run { args } => program.run(policy, &args),
        Job::Call(call) => program.call(policy, &call),
        Job::List => {
            let mut listing = String::new();
            for (name, signature) in program.exports() {
                listing.push_str(&format!("{name}: {signature}\n"));
            }
            if let Err(err) = crate::say::out(&listing) {
                crate::say!("wsandbox: cannot write the exports on stdout: {err}");
            }
            Ok(exited)
        }
        Job::Serve { listener, .. } => {
            program.serve(policy, listener, |address| crate::say!("http://{address}"))
        }
        Job::Worker { channel } => {
            crate::plugin::worker::serve_channel(policy, program, channel)?;
            Ok(exited)
        }
        Job::Compile { .. } => unreachable!("compile is not a walled run"),
    }
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
    // The cache verified the entry's MAC: it is code wsandbox compiled.
    let entry = cache.lookup(&key).map(|entry| {
        let (bytes, start) = entry.into_parts();
        Artifact::authenticated(bytes, start)
    });
    // The key's traces go before the sandbox, a copy of this process, exists.
    crate::cache::scrub_stack();
    let helper = wall::gives_up_root();
    let found = |entry| CodeCache {
        entry,
        ..CodeCache::default()
    };
    if entry.is_some() && helper {
        return (found(entry), None);
    }
    let reserved = cache.reserve(&key).and_then(|pending| {
        let sink = pending.sink()?;
        let publisher = Publisher::new(pending, helper)?;
        Ok((sink, publisher))
    });
    match reserved {
        Ok((sink, publisher)) => (
            CodeCache {
                sink: Some(sink),
                ..found(entry)
            },
            Some(publisher),
        ),
        Err(_) => (found(entry), None),
    }
}

/// `compile`: the module read and the output reserved before any
/// namespace; the compiler runs inside the walls and writes the artifact
/// to the reserved file, which the supervisor names once the sandbox said
/// it wrote it whole and exited 0.
fn compile(launch: Launch) -> Result<u8, Error> {
    let Job::Compile {
        output: out,
        metered,
        serve,
    } = launch.job
    else {
        unreachable!("compile() is for Job::Compile");
    };
    // 1. The module read and the output reserved, before any namespace.
    let module = Module::load(&launch.module)?;
    engine::compilable(&module)?;
    let output = reserve(&out)?;
    let mut sink = Some(output.sink().map_err(|e| cannot_write(&out, &e))?);
    let keep: Vec<_> = sink.iter().map(|s| s.as_raw_fd()).collect();
    let mut publisher =
        Some(Publisher::new(output, wall::gives_up_root()).map_err(|e| cannot_write(&out, &e))?);
    let mut policy = Policy {
        allow_degraded: launch.policy.allow_degraded,
        ..Policy::default()
    };
    // 2-9. The outer wall. The parent names OUT once the child said it
    // wrote it whole and the child exited 0.
    let mut on_end = |ending: &wall::Ending| {
        if let Some(publisher) = publisher.take() {
            let written = ending.loaded.as_ref().is_some_and(|l| l.written);
            publisher.finish(written && ending.exit_code == 0);
        }
    };
    let mut sandbox = wall::enter(
        &mut policy,
        &keep,
        wall::Syscalls::Guest,
        wall::STOP_GRACE,
        &mut on_end,
    )?;
    if let Some(publisher) = publisher.take() {
        publisher.abandon_in_sandbox();
    }
    // 10. Compile, write, close.
    let purpose = if serve {
        Purpose::Serve(Serving::default())
    } else {
        Purpose::Command
    };
    let artifact = engine::compile(&module, metered, purpose)?;
    let mut sink = sink.take().expect("the sink is kept for the sandbox");
    sink.write_all(&artifact).map_err(|e| cannot_write(&out, &e))?;
    drop(sink);
    sandbox.loaded(Loaded {
        code: "compiled".into(),
        written: true,
    });
    Ok(0)
}

/// An unnamed file beside `out`, named `out` once written.
fn reserve(out: &Path) -> Result<crate::cache::Pending, Error> {
    let name = out
        .file_name()
        .ok_or_else(|| Error::Output(format!("-o {}: not a file name", out.display())))?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    crate::cache::Pending::new(dir, &name.to_string_lossy(), 0o644).map_err(|e| cannot_write(out, &e))
}

fn cannot_write(out: &Path, e: &std::io::Error) -> Error {
    Error::Output(format!(
        "-o {}: cannot write: {}",
        out.display(),
        crate::policy::io_reason(e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
