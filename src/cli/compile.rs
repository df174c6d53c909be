//! `wsandbox compile`: compile a module ahead of time, inside the walls.

use clap::Args;
use std::path::PathBuf;
use wsandbox::launch::{CacheChoice, Job, Launch};

/// Compile a module ahead of time, with the engine settings of `run`
///
/// The output is machine code: `wsandbox run --allow-precompiled OUT` runs
/// it without compiling. The compiler itself runs inside the outer wall,
/// as in `run`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox compile app.wasm -o app.cwasm\n  \
    wsandbox run --allow-precompiled app.cwasm\n  \
    wsandbox compile --metered app.wasm -o app.cwasm && wsandbox run --allow-precompiled --fuel 1000000 app.cwasm\n  \
    wsandbox compile --serve api.wasm -o api.cwasm && wsandbox serve --allow-precompiled api.cwasm")]
pub struct CompileCommand {
    /// Compile with fuel metering, for runs with --fuel (an artifact runs
    /// only with the metering it was compiled with)
    #[arg(long)]
    metered: bool,

    /// Compile for `wsandbox serve` (its engine interrupts guests at epochs,
    /// which changes the code)
    #[arg(long)]
    serve: bool,

    /// If the kernel refuses an isolation layer, compile without it (and
    /// say which) instead of failing
    #[arg(long)]
    allow_degraded: bool,

    /// Where to write the artifact (replaced only once it is whole)
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,

    /// The module to compile (.wasm or .wat)
    #[arg(value_name = "MODULE")]
    module: PathBuf,
}

impl CompileCommand {
    /// Compiles MODULE into OUT; exit 0, or the exit code of the failure.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let job = Job::Compile {
            output: self.output,
            metered: self.metered,
            serve: self.serve,
        };
        let policy = wsandbox::Policy {
            allow_degraded: self.allow_degraded,
            ..wsandbox::Policy::default()
        };
        Launch::new(self.module, job)
            .policy(policy)
            .cache(CacheChoice::Off)
            .execute()
    }
}
