//! `wsandbox run`: run a WASI command, a core module or a component.

use super::options::PolicyOptions;
use clap::Args;
use std::path::Path;
use wsandbox::engine::Call;
use wsandbox::launch::Job;

/// Run a WASI command (a p1 core module or a p2 component, detected)
///
/// `wsandbox MODULE [ARGS]...` is `wsandbox run MODULE [ARGS]...`, as with
/// wasmtime, and wasmtime's options (-W, -S, --invoke, --argv0) are taken
/// with their meaning or refused with what to use instead.
#[derive(Debug, Args)]
#[command(
    trailing_var_arg = true,
    after_help = "Examples:\n  \
        wsandbox run guests/wat/hello.wat\n  \
        wsandbox run --ro-dir ./data::/data --env LANG=C app.wasm --input /data/x\n  \
        wsandbox app.wasm --input x                     (an implicit run)\n  \
        wsandbox run -W timeout=5s -S inherit-env app.wasm  (wasmtime's spelling)"
)]
pub struct RunCommand {
    #[command(flatten)]
    policy: PolicyOptions,

    /// Call the export FUNCTION with ARGS as its arguments, as `wsandbox
    /// call MODULE 'FUNCTION(ARGS, ...)'` does (wasmtime's --invoke); a
    /// whole call in WAVE, 'greet("world")', takes no ARGS
    #[arg(long, value_name = "FUNCTION")]
    invoke: Option<String>,

    /// The guest's argv[0] (default: the module's file name)
    #[arg(long, value_name = "NAME", conflicts_with = "invoke")]
    argv0: Option<String>,

    /// The module (.wasm or .wat), then the arguments the guest receives
    #[arg(value_name = "MODULE [ARGS]...", required = true, num_args = 1..)]
    module_and_args: Vec<String>,
}

impl RunCommand {
    /// Validates the policy, loads the module, runs it, and returns the
    /// exit code: the guest's own, 134 when it trapped, 124 at a limit.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let (module, args) = self.module_and_args.split_first().expect("clap requires MODULE");
        let job = match self.invoke {
            Some(function) => Job::Call(Call::parse(&invoked(&function, args)?)?),
            None => Job::Run {
                args: args.to_vec(),
                argv0: self.argv0,
            },
        };
        self.policy.launch(Path::new(module), job)?.execute()
    }
}

/// The call `--invoke FUNCTION ARGS...` makes: `FUNCTION(ARG, ARG)`, each
/// argument in WAVE (a number as it is), or FUNCTION itself when it is a
/// whole call already.
fn invoked(function: &str, args: &[String]) -> Result<String, wsandbox::Error> {
    match (function.contains('('), args) {
        (false, args) => Ok(format!("{function}({})", args.join(", "))),
        (true, []) => Ok(function.to_owned()),
        (true, _) => Err(wsandbox::Error::Usage(format!(
            "--invoke {function}: a whole call takes no more arguments (give them inside it, or --invoke NAME ARGS...)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn invoke_makes_one_call_of_its_arguments() {
        let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(super::invoked("add", &args(&["1", "2"])).unwrap(), "add(1, 2)");
        assert_eq!(super::invoked("run", &[]).unwrap(), "run()");
        assert_eq!(super::invoked("greet(\"x\")", &[]).unwrap(), "greet(\"x\")");
        assert!(super::invoked("greet(\"x\")", &args(&["1"])).is_err());
    }
}
