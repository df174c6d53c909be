//! The engine of `wsandbox run` without the outer wall: the baseline that
//! `benches/outer-wall.sh` compares `wsandbox run` against.
//!
//! Usage: `cargo run --release --example bare_run -- MODULE [ARGS...]`

use std::path::Path;
use std::process::ExitCode;
use wsandbox::Policy;
use wsandbox::engine::{self, Module};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((module, args)) = args.split_first() else {
        eprintln!("usage: bare_run MODULE [ARGS...]");
        return ExitCode::from(2);
    };
    let run = Module::load(Path::new(module))
        .map_err(wsandbox::Error::from)
        .and_then(|module| engine::run(&Policy::default(), &module, args));
    match run {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(err) => {
            eprintln!("bare_run: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
