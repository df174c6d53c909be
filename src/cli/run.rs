//! `wsandbox run`: run a WASI command, a core module or a component.

use super::options::PolicyOptions;
use clap::Args;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::Instant;
use wsandbox::Policy;
use wsandbox::cache::{Cache, Publisher};
use wsandbox::engine::{self, CodeCache, Module, Outcome};
use wsandbox::report::{ModuleInfo, Report, ReportFile};
use wsandbox::shell::{self, Loaded};

/// Run a WASI command (a p1 core module or a p2 component, detected)
#[derive(Debug, Args)]
#[command(
    trailing_var_arg = true,
    after_help = "Examples:\n  \
        wsandbox run guests/wat/hello.wat\n  \
        wsandbox run --ro-dir ./data::/data --env LANG=C app.wasm --input /data/x"
)]
pub struct RunCommand {
    #[command(flatten)]
    policy: PolicyOptions,

    /// The module (.wasm or .wat), then the arguments the guest receives
    #[arg(value_name = "MODULE [ARGS]...", required = true, num_args = 1..)]
    module_and_args: Vec<String>,
}

impl RunCommand {
    /// Validates the policy, loads the module, runs it, and returns the
    /// exit code: the guest's own, or 134 when it trapped. With `--report`,
    /// the outcome is written whatever it is.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let started = Instant::now();
        let mut report = self.policy.report().map(ReportFile::create).transpose()?;
        let mut module_info = None;
        let result = self.run(&mut report, &mut module_info, started);
        // Only failures before the sandbox existed return here; a sandboxed
        // run is reported by its supervisor.
        if let (Err(err), Some(report)) = (&result, &mut report) {
            report.write(&Report::error(err, started.elapsed(), module_info));
        }
        result
    }

    fn run(
        self,
        report: &mut Option<ReportFile>,
        module_info: &mut Option<ModuleInfo>,
        started: Instant,
    ) -> Result<u8, wsandbox::Error> {
        // 1. Everything that can fail on bad input, before any namespace.
        let mut policy = self.policy.to_policy();
        policy.resolve()?;
        let (module, args) = self.module_and_args.split_first().expect("clap requires MODULE");
        let module = Module::load(&PathBuf::from(module))?;
        engine::admit(&policy, &module)?;
        if report.is_some() {
            *module_info = Some(ModuleInfo::of(&module));
        }
        // The compilation cache lives outside the walls: its entry is read,
        // or an unnamed file reserved for a new one, before they exist.
        let (code_cache, mut publisher) = if self.policy.cache() {
            open_cache(&policy, &module)
        } else {
            (CodeCache::default(), None)
        };
        let keep: Vec<RawFd> = code_cache.sink.iter().map(|sink| sink.as_raw_fd()).collect();
        // 2-9. The outer wall; only the sandboxed child returns. The parent
        // names a freshly written cache entry (if the child said, before the
        // guest ran, that it wrote one), reports how the run ended, then
        // exits with its code.
        let mut on_end = |ending: &shell::Ending| {
            if let Some(publisher) = publisher.take() {
                publisher.finish(ending.loaded.as_ref().is_some_and(|l| l.written));
            }
            if let Some(report) = report.as_mut() {
                report.write(&Report::ended(ending, started.elapsed(), module_info.clone()));
            }
        };
        let mut sandbox = shell::enter(&policy, &keep, &mut on_end)?;
        if let Some(report) = report.take() {
            report.abandon_in_sandbox();
        }
        if let Some(publisher) = publisher.take() {
            publisher.abandon_in_sandbox();
        }
        // 10. The inner wall: load the code (closing the cache's file), say
        // how, and only then run the guest.
        let ended = match engine::load(&policy, &module, code_cache).and_then(|program| {
            sandbox.loaded(Loaded {
                code: program.source.name().into(),
                written: program.cached,
            });
            program.run(&policy, args)
        }) {
            Ok(ended) => ended,
            Err(err) => {
                sandbox.ended("error", Some(err.to_string()), None);
                return Err(err);
            }
        };
        let fuel = ended.fuel_consumed;
        match &ended.outcome {
            Outcome::Exited(_) => sandbox.ended("exited", None, fuel),
            Outcome::Trapped { message, backtrace } => {
                eprintln!("wsandbox: guest trapped: {message}");
                if let Some(backtrace) = backtrace {
                    eprintln!("{backtrace}");
                }
                sandbox.ended("trapped", Some(message.clone()), fuel);
            }
            Outcome::OutOfFuel => {
                let message = format!(
                    "the guest ran out of fuel (--fuel {}) and was stopped",
                    policy.fuel.unwrap_or_default()
                );
                eprintln!("wsandbox: {message}");
                sandbox.ended("fuel", Some(message), fuel);
            }
        }
        Ok(ended.outcome.exit_code())
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
fn open_cache(policy: &Policy, module: &Module) -> (CodeCache, Option<Publisher>) {
    let Some(cache) = (!module.precompiled).then(Cache::open_default).flatten() else {
        return (CodeCache::default(), None);
    };
    let key = Cache::key(module, &engine::settings(policy.fuel.is_some()));
    let entry = cache.lookup(&key);
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
