//! `wsandbox run`: run a WASI command, a core module or a component.

use super::options::PolicyOptions;
use clap::Args;
use std::path::Path;
use wsandbox::launch::Job;

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
    /// exit code: the guest's own, 134 when it trapped, 124 at a limit.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let (module, args) = self.module_and_args.split_first().expect("clap requires MODULE");
        let job = Job::Run { args: args.to_vec() };
        self.policy.launch(Path::new(module), job)?.execute()
    }
}
