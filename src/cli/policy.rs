//! `wsandbox policy`: the effective policy, as a policy file.

use super::options::PolicyOptions;
use super::serve::ServeOptions;
use clap::Args;

/// Print the effective policy — the policy file (if any) with the options
/// over it, paths resolved — as TOML
///
/// What it prints is exactly what a command with these options would grant,
/// and is itself a policy file: `--config` takes it back unchanged.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox policy --ro-dir ./data::/data --env LANG=C --timeout 2s\n  \
    wsandbox policy --config ci.toml --memory 1G\n  \
    wsandbox policy --config ci.toml --timeout 5m > effective.toml")]
pub struct PolicyCommand {
    #[command(flatten)]
    policy: PolicyOptions,

    #[command(flatten)]
    serve: ServeOptions,
}

impl PolicyCommand {
    /// Merges, validates and prints the policy: exit 0, or 125 for a
    /// policy that cannot be applied.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        if let Some(report) = self.policy.report() {
            return Err(wsandbox::Error::Usage(format!(
                "--report {}: `wsandbox policy` runs nothing, so it has no outcome to report",
                report.display()
            )));
        }
        let mut policy = self.policy.to_policy()?;
        self.serve.apply(&mut policy.serve);
        policy.resolve()?;
        super::print(policy.to_toml()?.as_bytes(), "policy")
    }
}
