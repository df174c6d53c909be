//! `wsandbox run`: run a WASI command, a core module or a component.

use super::options::PolicyOptions;
use clap::Args;
use std::path::PathBuf;
use std::time::Instant;
use wsandbox::engine::{self, Module, Outcome};
use wsandbox::report::{ModuleInfo, Report, ReportFile};
use wsandbox::shell;

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
        if report.is_some() {
            *module_info = Some(ModuleInfo::of(&module));
        }
        // 2-9. The outer wall; only the sandboxed child returns. The parent
        // reports how the run ended, then exits with its code.
        let mut on_end = |ending: &shell::Ending| {
            if let Some(report) = report.as_mut() {
                report.write(&Report::ended(ending, started.elapsed(), module_info.clone()));
            }
        };
        let mut sandbox = shell::enter(&policy, &mut on_end)?;
        if let Some(report) = report.take() {
            report.abandon_in_sandbox();
        }
        // 10. The inner wall.
        let outcome = match engine::run(&policy, &module, args) {
            Ok(outcome) => outcome,
            Err(err) => {
                sandbox.ended("error", Some(err.to_string()));
                return Err(err);
            }
        };
        match &outcome {
            Outcome::Exited(_) => sandbox.ended("exited", None),
            Outcome::Trapped { message, backtrace } => {
                eprintln!("wsandbox: guest trapped: {message}");
                if let Some(backtrace) = backtrace {
                    eprintln!("{backtrace}");
                }
                sandbox.ended("trapped", Some(message.clone()));
            }
        }
        Ok(outcome.exit_code())
    }
}
