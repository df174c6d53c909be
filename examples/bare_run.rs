//! The engine of `wsandbox run` without the outer wall: the inner wall
//! alone. `benches/outer-wall.sh` compares `wsandbox run` against it, and
//! the filesystem tests run every attack through it too, to show that WASI
//! holds on its own.
//!
//! Usage: `cargo run --release --example bare_run -- [--dir HOST[::GUEST]]...
//! [--ro-dir HOST[::GUEST]]... [--env NAME[=VALUE]]... MODULE [ARGS...]`

use std::path::Path;
use std::process::ExitCode;
use wsandbox::Policy;
use wsandbox::engine::{self, Module};
use wsandbox::policy::{Access, DirGrant, EnvVar};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let mut policy = Policy::default();
    while let Some(flag) = args.next_if(|a| a.starts_with("--")) {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--dir" => policy.dirs.push(DirGrant::parse(&value, Access::ReadWrite)),
            "--ro-dir" => policy.dirs.push(DirGrant::parse(&value, Access::ReadOnly)),
            "--env" => policy.env.push(EnvVar::parse(&value)),
            _ => {
                eprintln!("bare_run: unknown option {flag}");
                return ExitCode::from(2);
            }
        }
    }
    let args: Vec<String> = args.collect();
    let Some((module, args)) = args.split_first() else {
        eprintln!("usage: bare_run [--dir|--ro-dir|--env VALUE]... MODULE [ARGS...]");
        return ExitCode::from(2);
    };
    let run = policy
        .resolve()
        .map_err(wsandbox::Error::from)
        .and_then(|()| Module::load(Path::new(module)).map_err(wsandbox::Error::from))
        .and_then(|module| Ok(engine::run(&policy, &module, args)?));
    match run {
        Ok(ended) => ExitCode::from(wsandbox::launch::outcome_code(&ended.outcome)),
        Err(err) => {
            eprintln!("bare_run: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
