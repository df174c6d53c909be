//! `wsandbox serve`: a `wasi:http/proxy` component behind both walls, a
//! fresh instance per request.

use super::options::PolicyOptions;
use clap::Args;
use std::path::PathBuf;
use wsandbox::launch::Job;
use wsandbox::policy::ServeSettings;

/// Serve a wasi:http component (a 0.2 proxy or a 0.3 service), a fresh instance per request
///
/// Or several, each on a path prefix: [[serve.routes]] in the policy file
/// (--config), with its own component, limits, grants and allow rules, all
/// served by one engine in one sandbox (the longest prefix wins; a path no
/// prefix covers gets 404).
///
/// The listening socket (and the admin one, with --admin-addr) is bound
/// before the sandbox exists and is the only descriptor it keeps besides
/// stdio: inside, the server answers connections but can open none. The first line on stderr is the address,
/// `http://HOST:PORT`, once connections are accepted. --timeout, --memory
/// and --fuel apply to each request's instance: past the timeout the client
/// gets 504, a trap (a memory limit included) 500. Clients are bounded
/// too: --max-connections at once, --idle-timeout for a connection with no
/// request under way, --request-timeout to send a request (408), and
/// --max-body-size (413). SIGINT or SIGTERM stops accepting (/readyz of
/// the admin listener answers 503), lets the requests in flight finish,
/// and exits 0.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox serve --addr 127.0.0.1:8080 api.wasm\n  \
    wsandbox serve --addr 127.0.0.1:0 --timeout 2s --memory 64M --max-concurrent 16 api.wasm\n  \
    wsandbox serve --addr 0.0.0.0:8080 --admin-addr 127.0.0.1:9090 api.wasm\n  \
    wsandbox serve --max-connections 256 --idle-timeout 2s --max-body-size 1M api.wasm\n  \
    wsandbox serve --ro-dir ./static::/static --env GREETING=hi api.wasm\n  \
    wsandbox serve --config function.toml api.wasm\n  \
    wsandbox serve --config routes.toml --admin-addr 127.0.0.1:9090")]
pub struct ServeCommand {
    #[command(flatten)]
    policy: PolicyOptions,

    #[command(flatten)]
    serve: ServeOptions,

    /// The wasi:http component, 0.2 or 0.3 (.wasm or .wat); none when the
    /// policy file (--config) names routes, [[serve.routes]]
    #[arg(value_name = "COMPONENT")]
    component: Option<PathBuf>,
}

/// `serve`'s own options (its keys in a policy file's `[serve]` table).
#[derive(Debug, Args)]
pub struct ServeOptions {
    /// Listen on HOST:PORT, an IP address or a name (localhost:8080: a
    /// name is bound at its first IPv4 address); port 0 picks a free one
    /// [default: 127.0.0.1:8080]
    #[arg(long, value_name = "HOST:PORT", value_parser = wsandbox::policy::parse_addr)]
    addr: Option<std::net::SocketAddr>,

    /// Answer an orchestrator's probes on HOST:PORT (port 0 picks one):
    /// GET /healthz (200 while running), GET /readyz (200 while accepting,
    /// 503 while draining), GET /metrics (Prometheus); printed as
    /// `admin: http://HOST:PORT` after the public address. Never served on
    /// --addr
    #[arg(long, value_name = "HOST:PORT", value_parser = wsandbox::policy::parse_addr)]
    admin_addr: Option<std::net::SocketAddr>,

    /// Requests served at once, each by its own instance (the instance
    /// pool's size) [default: 64]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    max_concurrent: Option<u32>,

    /// Requests that may wait for an instance when all are busy; past them
    /// the answer is 503 [default: 256]
    #[arg(long, value_name = "N")]
    max_queued: Option<u32>,

    /// Connections open at once; past them, a new connection waits in the
    /// kernel's backlog until one closes [default: 512]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: Option<u32>,

    /// Close a connection with no request under way (just opened, or its
    /// last answer sent) whose next request's head has not arrived in full
    /// within DURATION [default: 5s]
    #[arg(long, value_name = "DURATION", value_parser = wsandbox::policy::parse_duration)]
    idle_timeout: Option<std::time::Duration>,

    /// How long a client may take to send a request: its head, and then
    /// its body — the function never waits longer for it, counted from
    /// the moment the request has an instance. Past it the instance is
    /// stopped, the client gets 408 if nothing was answered yet, and the
    /// connection is closed [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = wsandbox::policy::parse_duration)]
    request_timeout: Option<std::time::Duration>,

    /// The largest request body (64K, 16M): a larger Content-Length gets
    /// 413 at once, without an instance; a body that grows past it stops
    /// the instance (413 if nothing was answered yet) and closes the
    /// connection [default: 16M]
    #[arg(long, value_name = "SIZE", value_parser = wsandbox::policy::parse_size)]
    max_body_size: Option<u64>,
}

impl ServeOptions {
    /// Puts the options given over the policy's `[serve]` settings.
    pub fn apply(&self, settings: &mut ServeSettings) {
        settings.addr = self.addr.or(settings.addr);
        settings.admin_addr = self.admin_addr.or(settings.admin_addr);
        settings.max_concurrent = self.max_concurrent.or(settings.max_concurrent);
        settings.max_queued = self.max_queued.or(settings.max_queued);
        settings.max_connections = self.max_connections.or(settings.max_connections);
        settings.idle_timeout = self.idle_timeout.or(settings.idle_timeout);
        settings.request_timeout = self.request_timeout.or(settings.request_timeout);
        settings.max_body_size = self.max_body_size.or(settings.max_body_size);
    }
}

/// The address `serve` listens on unless told.
const DEFAULT_ADDR: &str = "127.0.0.1:8080";

impl ServeCommand {
    /// Binds the address, then serves behind both walls until SIGINT or
    /// SIGTERM: exit 0 after the requests in flight finished.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        // The job is set below, once the address is bound.
        let component = self.component.clone().unwrap_or_default();
        let mut launch = self.policy.launch(&component, Job::List)?;
        self.serve.apply(&mut launch.policy.serve);
        let routes = &launch.policy.serve.routes;
        match (&self.component, routes.first()) {
            (Some(component), Some(route)) => {
                return Err(wsandbox::Error::Call(format!(
                    "serve: {}: the policy file names routes ({} and more), so no COMPONENT is given",
                    component.display(),
                    route.prefix
                )));
            }
            (None, None) => {
                return Err(wsandbox::Error::Call(
                    "serve: no COMPONENT, and no [[serve.routes]] in a policy file (--config)".into(),
                ));
            }
            _ => {}
        }
        if let Some(route) = routes.first() {
            // The report names the first function's component.
            launch.module = route.component.clone();
        }
        let addr = launch
            .policy
            .serve
            .addr
            .unwrap_or_else(|| DEFAULT_ADDR.parse().expect("the default address parses"));
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|err| wsandbox::Error::Listen(format!("--addr {addr}: cannot listen: {err}")))?;
        let admin = match launch.policy.serve.admin_addr {
            Some(admin) => Some(std::net::TcpListener::bind(admin).map_err(|err| {
                wsandbox::Error::Listen(format!("--admin-addr {admin}: cannot listen: {err}"))
            })?),
            None => None,
        };
        launch.job = Job::Serve { listener, admin };
        launch.execute()
    }
}
