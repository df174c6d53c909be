//! `wsandbox compile`: compile a module ahead of time, inside the walls.

use clap::Args;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use wsandbox::cache::{Pending, Publisher};
use wsandbox::engine::{self, Module};
use wsandbox::shell::{self, Loaded};
use wsandbox::{Error, Policy};

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
    pub fn execute(self) -> Result<u8, Error> {
        // 1. The module read and the output reserved, before any namespace.
        let module = Module::load(&self.module)?;
        engine::compilable(&module)?;
        let output = reserve(&self.output)?;
        let mut sink = Some(output.sink().map_err(|e| cannot_write(&self.output, &e))?);
        let keep: Vec<_> = sink.iter().map(|s| s.as_raw_fd()).collect();
        let mut publisher =
            Some(Publisher::new(output, shell::gives_up_root()).map_err(|e| cannot_write(&self.output, &e))?);
        let mut policy = Policy {
            allow_degraded: self.allow_degraded,
            ..Policy::default()
        };
        // 2-9. The outer wall. The parent names OUT once the child said it
        // wrote it whole and the child exited 0.
        let mut on_end = |ending: &shell::Ending| {
            if let Some(publisher) = publisher.take() {
                let written = ending.loaded.as_ref().is_some_and(|l| l.written);
                publisher.finish(written && ending.exit_code == 0);
            }
        };
        let mut sandbox = shell::enter(
            &mut policy,
            &keep,
            shell::Syscalls::Guest,
            shell::STOP_GRACE,
            &mut on_end,
        )?;
        if let Some(publisher) = publisher.take() {
            publisher.abandon_in_sandbox();
        }
        // 10. Compile, write, close.
        let purpose = if self.serve {
            engine::Purpose::Serve(engine::Serving::default())
        } else {
            engine::Purpose::Command
        };
        let artifact = engine::compile(&module, self.metered, purpose)?;
        let mut sink = sink.take().expect("the sink is kept for the sandbox");
        sink.write_all(&artifact)
            .map_err(|e| cannot_write(&self.output, &e))?;
        drop(sink);
        sandbox.loaded(Loaded {
            code: "compiled".into(),
            written: true,
        });
        Ok(0)
    }
}

/// An unnamed file beside `out`, named `out` once written.
fn reserve(out: &Path) -> Result<Pending, Error> {
    let name = out
        .file_name()
        .ok_or_else(|| Error::Output(format!("-o {}: not a file name", out.display())))?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Pending::new(dir, &name.to_string_lossy(), 0o644).map_err(|e| cannot_write(out, &e))
}

fn cannot_write(out: &Path, e: &std::io::Error) -> Error {
    Error::Output(format!(
        "-o {}: cannot write: {}",
        out.display(),
        wsandbox::policy::io_reason(e)
    ))
}
