//! `wsandbox call`: call one export of a module, with typed arguments.

use super::options::PolicyOptions;
use clap::Args;
use std::path::PathBuf;
use wsandbox::engine::Call;
use wsandbox::launch::Job;

/// Call one exported function of a component or core module, behind both
/// walls
///
/// EXPR is a call in WAVE (the WebAssembly Value Encoding): strings in
/// double quotes, records in braces, lists in brackets, `some(x)`/`none`,
/// `ok(x)`/`err(e)`, variant cases by name. The result is printed in WAVE
/// on stdout; a returned `err(...)` exits 1. Every option of `run` applies.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox call --list plugin.wasm\n  \
    wsandbox call plugin.wasm 'greet(\"world\")'\n  \
    wsandbox call plugin.wasm 'values.norm({x: 1, y: -2})'\n  \
    wsandbox call plugin.wasm 'wsandbox:shapes/values.divide(7, 0)'\n  \
    wsandbox call --fuel 1000000 math.wasm 'add(2, 3)'")]
pub struct CallCommand {
    #[command(flatten)]
    policy: PolicyOptions,

    /// List the exported functions with their signatures (WIT syntax)
    /// instead of calling one
    #[arg(long, conflicts_with = "expr")]
    list: bool,

    /// The module (.wasm or .wat, or an artifact of `wsandbox compile`)
    #[arg(value_name = "MODULE")]
    module: PathBuf,

    /// The call: NAME(ARGS...), such as 'greet("world")' or 'add(2, 3)'
    #[arg(value_name = "EXPR", required_unless_present = "list")]
    expr: Option<String>,
}

impl CallCommand {
    /// Lists the exports, or makes the call: exit 0 with the result on
    /// stdout, 1 for a returned `err`, 2 for a call that does not fit the
    /// module, and as `run` for traps and limits.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        // The call's syntax is checked before any namespace exists.
        let job = match self.expr.as_deref() {
            Some(expr) => Job::Call(Call::parse(expr)?),
            None => Job::List,
        };
        self.policy.launch(&self.module, job)?.execute()
    }
}
