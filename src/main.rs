//! The `wsandbox` binary: parse, execute, print the error, exit.

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::parse();
    match cli.init_logging().and_then(|()| cli.execute()) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            wsandbox::say::failure(format_args!("wsandbox: {err}"));
            ExitCode::from(err.exit_code())
        }
    }
}
