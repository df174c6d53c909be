//! `wsandbox serve`: a `wasi:http/proxy` component behind both walls, a
//! fresh instance per request.

use super::options::PolicyOptions;
use clap::Args;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use wsandbox::engine::{Purpose, Serving};

/// Serve a wasi:http proxy component, a fresh instance per request
///
/// The listening socket is bound before the sandbox exists and is the only
/// descriptor it keeps besides stdio: inside, the server answers
/// connections but can open none. The first line on stderr is the address,
/// `http://HOST:PORT`, once connections are accepted. --timeout, --memory
/// and --fuel apply to each request's instance: past the timeout the client
/// gets 504, a trap (a memory limit included) 500. SIGINT or SIGTERM stops
/// accepting, lets the requests in flight finish, and exits 0.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox serve --addr 127.0.0.1:8080 api.wasm\n  \
    wsandbox serve --addr 127.0.0.1:0 --timeout 2s --memory 64M --max-concurrent 16 api.wasm\n  \
    wsandbox serve --ro-dir ./static::/static --env GREETING=hi api.wasm")]
pub struct ServeCommand {
    #[command(flatten)]
    policy: PolicyOptions,

    /// Listen on HOST:PORT (port 0 picks a free one)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,

    /// Requests served at once, each by its own instance (the instance
    /// pool's size)
    #[arg(long, value_name = "N", default_value_t = Serving::default().max_concurrent,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_concurrent: u32,

    /// Requests that may wait for an instance when all are busy; past them
    /// the answer is 503
    #[arg(long, value_name = "N", default_value_t = Serving::default().max_queued)]
    max_queued: u32,

    /// The wasi:http proxy component (.wasm or .wat)
    #[arg(value_name = "COMPONENT")]
    component: PathBuf,
}

impl ServeCommand {
    /// Binds the address, then serves behind both walls until SIGINT or
    /// SIGTERM: exit 0 after the requests in flight finished.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let mut setup = self.policy.setup();
        // The timeout and the memory limit are each request's, not the
        // sandbox's: the supervisor must not kill the server at the
        // timeout, nor bound its data by one instance's memory.
        let serving = Serving {
            max_concurrent: self.max_concurrent,
            max_queued: self.max_queued,
            timeout: setup.policy.timeout.take(),
            memory: setup.policy.memory.take(),
        };
        setup.purpose = Purpose::Serve(serving);
        let listener = std::net::TcpListener::bind(self.addr)
            .map_err(|err| wsandbox::Error::Listen(format!("--addr {}: cannot listen: {err}", self.addr)))?;
        setup.keep.push(listener.as_raw_fd());
        super::guest::execute(
            setup,
            &self.component,
            |_| Ok(()),
            move |policy, program| program.serve(policy, listener, |address| eprintln!("http://{address}")),
        )
    }
}
