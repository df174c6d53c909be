//! `wsandbox run`: run a WASI command, a core module or a component.

use super::options::PolicyOptions;
use clap::Args;
use std::path::PathBuf;
use wsandbox::engine::{self, Module, Outcome};

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
    /// exit code: the guest's own, or 134 when it trapped.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        // 1. Everything that can fail on bad input, before any namespace.
        let mut policy = self.policy.to_policy();
        policy.resolve()?;
        let (module, args) = self.module_and_args.split_first().expect("clap requires MODULE");
        let module = Module::load(&PathBuf::from(module))?;
        // 2-7. The outer wall; only the sandboxed child returns.
        wsandbox::shell::enter(&policy)?;
        // 10. The inner wall.
        let outcome = engine::run(&policy, &module, args)?;
        if let Outcome::Trapped { message, backtrace } = &outcome {
            eprintln!("wsandbox: guest trapped: {message}");
            if let Some(backtrace) = backtrace {
                eprintln!("{backtrace}");
            }
        }
        Ok(outcome.exit_code())
    }
}
