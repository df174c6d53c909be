//! The command line: one file per subcommand, one options group shared by
//! every command that runs a guest, turned into one [`wsandbox::Policy`].

mod call;
mod check;
mod compile;
mod guest;
mod options;
mod run;
mod serve;
mod worker;

use clap::{Parser, Subcommand};

/// Run untrusted WebAssembly behind two walls: Linux namespaces outside,
/// WASI capabilities inside.
#[derive(Debug, Parser)]
#[command(name = "wsandbox", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Run(run::RunCommand),
    Call(call::CallCommand),
    Serve(serve::ServeCommand),
    Compile(compile::CompileCommand),
    Check(check::CheckCommand),
    #[command(hide = true)]
    Worker(worker::WorkerCommand),
}

impl Cli {
    /// Runs the chosen subcommand; `Ok` carries the process exit code.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        match self.command {
            Command::Run(cmd) => cmd.execute(),
            Command::Call(cmd) => cmd.execute(),
            Command::Serve(cmd) => cmd.execute(),
            Command::Compile(cmd) => cmd.execute(),
            Command::Check(cmd) => cmd.execute(),
            Command::Worker(cmd) => cmd.execute(),
        }
    }
}
