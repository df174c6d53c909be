//! The server of `wsandbox serve` without the outer wall: the same
//! pooled, per-request instances, served in this process on an address it
//! binds itself. `benches/serve.sh` compares `wsandbox serve` against it.
//!
//! Usage: `cargo run --release --example bare_serve -- ADDR COMPONENT`
//! (ADDR such as `127.0.0.1:0`); the first line on stderr is the address.

use std::path::Path;
use std::process::ExitCode;
use wsandbox::Policy;
use wsandbox::engine::{self, CodeCache, Module, Purpose, Serving};
use wsandbox::serve::{self, Served};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, component] = args.as_slice() else {
        eprintln!("usage: bare_serve ADDR COMPONENT");
        return ExitCode::from(2);
    };
    // Before any thread exists: the server takes SIGINT and SIGTERM itself.
    let _ = serve::termination_signals().thread_block();
    let policy = Policy::default();
    let served = Module::load(Path::new(component))
        .map_err(wsandbox::Error::from)
        .and_then(|module| {
            engine::load_for(
                &policy,
                &module,
                CodeCache::default(),
                Purpose::Serve(Serving::default()),
            )
            .map_err(wsandbox::Error::from)
        })
        .and_then(|program| {
            let listener = std::net::TcpListener::bind(addr.as_str())
                .map_err(|e| wsandbox::Error::Listen(format!("{addr}: cannot listen: {e}")))?;
            let function = serve::Function {
                prefix: "/".to_string().try_into().expect("/ is a prefix"),
                program,
                policy,
            };
            serve::serve(
                vec![function],
                listener,
                None,
                serve::Bounds::default(),
                |address| eprintln!("http://{address}"),
            )
        });
    match served {
        Ok(Served::Drained) => ExitCode::SUCCESS,
        // A second signal: 128+S, as a shell reports a process it ended.
        Ok(Served::Cut(signal)) => ExitCode::from((128 + signal) as u8),
        Err(err) => {
            eprintln!("bare_serve: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
