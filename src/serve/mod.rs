//! The HTTP server over `wasi:http/proxy` programs: one fresh instance
//! per request ([`Proxy`]), on a listening socket it is handed
//! (bound outside the walls: inside, nothing can be bound or connected).
//! Each program is a [`Function`] on its path prefix; a request goes to
//! the function of the longest prefix that covers its path, and gets 404
//! when none does.
//!
//! [`serve`] owns a tokio runtime that runs hyper's HTTP/1 connections;
//! it returns to its caller, which decides how the process ends.
//!
//! - `--timeout` (or its route's): each request's instance has that long, from the moment it
//!   gets a slot, to answer and finish its body: past it the instance is
//!   dropped (a guest spinning in wasm yields at every epoch tick, so it
//!   can be), and the client gets 504 if nothing was answered yet.
//! - `--memory`, `--fuel`: per instance, as in `run`; a guest that traps
//!   (at a limit or not) gets its client a 500, and no other request is
//!   touched: they have their own stores.
//! - [`Serving::max_concurrent`](crate::engine::Serving::max_concurrent)
//!   instances at once, all functions together; [`Bounds::max_queued`]
//!   more requests wait for a slot; past that, 503 at once (`admission.rs`).
//! - [`Bounds::max_connections`] connections at once: past them, new ones
//!   are not accepted — they wait in the kernel's backlog — until one
//!   closes. A connection with no request under way (just accepted, or
//!   its last answer sent) has [`Bounds::idle_timeout`] to deliver a
//!   request's whole head, else it is closed without an answer
//!   (`accept.rs`).
//! - [`Bounds::request_timeout`]: the head must arrive within it too, and
//!   a function never waits longer than that, from the moment its request
//!   has an instance, for the client to send the body (`body.rs`);
//!   [`Bounds::max_body_size`]: a larger `Content-Length` gets 413 before
//!   any instance. A body that comes too late or grows too large stops
//!   the instance: 408 or 413 if nothing was answered yet, and the
//!   connection is closed (the rest of the request is never read).
//! - A request whose framing two parsers could read two ways (both
//!   `Content-Length` and `Transfer-Encoding`, `Content-Length` twice,
//!   `chunked` twice) gets 400 before any instance, and its connection
//!   is closed (`framing.rs`); the other ambiguities (different lengths,
//!   folded fields, a coding that is not chunked last) hyper refuses
//!   itself with 400.
//! - Accepting that fails for a reason that lasts (out of descriptors,
//!   `EMFILE`): one line, then quiet while it lasts, a pause of 10 ms
//!   doubling to 250 ms between tries, and one line when it works again.
//! - Outgoing HTTP is refused (`HTTP-request-denied`) before any socket is
//!   tried; `wasi:sockets` has no address allowed (the engine's part).
//! - The guest's stdout and stderr become lines on the server's stderr,
//!   each prefixed with the request's id (`log.rs`); so does each failed
//!   request, with its status and why (`request.rs`).
//! - SIGINT, SIGTERM or SIGHUP: the listener closes, idle connections too,
//!   requests in flight finish (bounded by the timeout), and [`serve`]
//!   returns [`Served::Drained`]; a second signal ends serving at once,
//!   and it returns [`Served::Cut`].

mod accept;
mod admin;
mod admission;
mod body;
mod framing;
mod log;
mod metrics;
mod request;

use crate::engine::{Program, Proxy};
use crate::policy::RoutePrefix;
use crate::{Error, Policy};
use metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The server's bounds on its clients (the policy's `[serve]` settings of
/// the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Requests that may wait for an instance; past them, 503.
    pub max_queued: u32,
    /// Connections open at once; past them, new ones are not accepted
    /// (they wait in the kernel's backlog) until one closes.
    pub max_connections: u32,
    /// How long a connection with no request under way (just accepted,
    /// or its last answer sent) may take to deliver a request's whole
    /// head; then it is closed, without an answer.
    pub idle_timeout: Duration,
    /// How long a client may take to send a request: its head (within
    /// the idle timeout too), and its body from the moment the request
    /// has an instance — the function never waits longer for it. Past
    /// it, the instance is stopped, the client gets 408 if nothing was
    /// answered yet, and the connection is closed.
    pub request_timeout: Duration,
    /// The largest request body, in bytes: a larger `Content-Length` gets
    /// 413 before any instance; a body that grows past it stops the
    /// instance (413 if nothing was answered yet), and the connection is
    /// closed.
    pub max_body_size: u64,
}

impl Default for Bounds {
    fn default() -> Bounds {
        Bounds {
            max_queued: 256,
            max_connections: 512,
            idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_body_size: 16 << 20,
        }
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// A termination signal came: the listener closed, and the requests
    /// in flight finished (or their grace period passed).
    Drained,
    /// A second termination signal, this one, ended serving at once: the
    /// requests in flight were dropped.
    Cut(i32),
}

/// One function of a server: the requests under `prefix` (the longest
/// prefix that covers their path wins) are answered by `program` — loaded
/// for serving ([`Purpose::Serve`](crate::engine::Purpose::Serve), all on
/// one engine: [`crate::engine::load_served`]) — each instance under
/// `policy`.
pub struct Function {
    /// Where it answers.
    pub prefix: RoutePrefix,
    /// What answers.
    pub program: Program,
    /// Each of its instances' policy: WASI grants and fuel.
    pub policy: Policy,
}

/// Serves `functions` on `listener`, a fresh instance per request, until
/// SIGINT, SIGTERM or SIGHUP; then lets the requests in flight finish and
/// returns. A request no function's prefix covers gets 404. `bounds` are
/// the clients'. `ready` is called with the address once connections are
/// being accepted; then, with an `admin` listener, `admin: http://ADDRESS`
/// is said on stderr, and it answers `/healthz`, `/readyz` and `/metrics`
/// (`admin.rs`).
///
/// Those signals are blocked in this thread (and so in the runtime's) and
/// taken by a thread of the server's, which stays to wait for a second
/// one; a caller that started other threads before must have blocked them
/// there too ([`termination_signals`]), before any other thread exists,
/// so that they reach the server.
pub fn serve(
    functions: Vec<Function>,
    listener: std::net::TcpListener,
    admin: Option<std::net::TcpListener>,
    bounds: Bounds,
    ready: impl FnOnce(SocketAddr),
) -> Result<Served, Error> {
    let setup = |what: &str, err: &dyn std::fmt::Display| Error::Engine(format!("serve: {what}: {err}"));
    let address = listener
        .local_addr()
        .map_err(|e| setup("the listening socket", &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| setup("the listening socket", &e))?;
    let admin_address = match &admin {
        Some(admin) => {
            admin
                .set_nonblocking(true)
                .map_err(|e| setup("the admin socket", &e))?;
            Some(admin.local_addr().map_err(|e| setup("the admin socket", &e))?)
        }
        None => None,
    };
    let signals = termination_signals();
    signals
        .thread_block()
        .map_err(|e| setup("blocking the termination signals", &e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| setup("starting the runtime", &e))?;
    let routes = routes_of(functions)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(Stop::Serving);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            // A wait that fails (never, with these signals) leaves the
            // server serving.
            if signals.wait().is_ok() {
                let _ = stop_tx.send(Stop::Drain);
                if let Ok(second) = signals.wait() {
                    let _ = stop_tx.send(Stop::Now(second as i32));
                }
            }
        })
        .map_err(|e| setup("starting the signal thread", &e))?;
    let metrics = admin.as_ref().map(|_| {
        let labels: Vec<&'static str> = routes.iter().map(|route| route.label).collect();
        Arc::new(Metrics::new(&labels))
    });
    let shared = Arc::new(Shared::new(routes, bounds, metrics.clone()));
    let ready = move |address| {
        ready(address);
        if let Some(admin) = admin_address {
            crate::say!("admin: http://{admin}");
        }
    };
    let served = runtime.block_on(async {
        if let (Some(admin), Some(metrics)) = (admin, metrics) {
            admin::start(admin, stop_rx.clone(), metrics)?;
        }
        accept::serve_connections(shared, listener, stop_rx, ready, address).await
    });
    // Tasks still running (past the grace period, or cut by a second
    // signal) are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
    served
}

/// The signals that end [`serve`]: gracefully the first, at once a second.
pub fn termination_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for signal in crate::sys::TERMINATION_SIGNALS {
        set.add(signal);
    }
    set
}

/// What the signal thread tells the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// No signal yet.
    Serving,
    /// A first signal: stop accepting, let the requests in flight finish.
    Drain,
    /// A second signal, this one: stop now.
    Now(i32),
}

/// Where requests under a prefix go.
struct Route {
    /// The prefix, as the metrics label it (made once for each function).
    label: &'static str,
    prefix: RoutePrefix,
    proxy: Proxy,
}

/// The functions' routes, longest prefix first, their proxies made on
/// their one engine.
fn routes_of(functions: Vec<Function>) -> Result<Vec<Route>, Error> {
    let mut routes: Vec<Route> = Vec::with_capacity(functions.len());
    for function in functions {
        let proxy = function
            .program
            .proxy_beside(&function.policy, routes.first().map(|route| &route.proxy))?;
        routes.push(Route {
            // Once per function, for the server's life.
            label: Box::leak(function.prefix.as_str().to_owned().into_boxed_str()),
            prefix: function.prefix,
            proxy,
        });
    }
    if routes.is_empty() {
        return Err(Error::Engine("serve: no function to serve".into()));
    }
    routes.sort_by_key(|route| std::cmp::Reverse(route.prefix.as_str().len()));
    Ok(routes)
}

/// Everything a request needs, shared by all of them.
struct Shared {
    routes: Vec<Route>,
    bounds: Bounds,
    admission: admission::Admission,
    /// Instances at once, all routes together.
    max_concurrent: u32,
    /// The longest time a request may take, if every route bounds it.
    longest: Option<Duration>,
    next_id: AtomicU64,
    /// Kept when there is an admin listener to show them.
    metrics: Option<Arc<Metrics>>,
    /// A line per request on the log (at `-v`).
    access_log: bool,
}

impl Shared {
    /// What requests to `routes` share, bounded by `bounds`, counted in
    /// `metrics` if there are.
    fn new(mut routes: Vec<Route>, bounds: Bounds, metrics: Option<Arc<Metrics>>) -> Shared {
        let queued = metrics.as_ref().map(|m| m.queued.clone()).unwrap_or_default();
        if let Some(metrics) = &metrics {
            for route in &mut routes {
                let metrics = metrics.clone();
                route
                    .proxy
                    .observe_memory(Arc::new(move |bytes| metrics.instance_memory(bytes)));
            }
        }
        // The pool is the engine's, sized by the first function's (all
        // share the server's max_concurrent).
        let max_concurrent = routes[0].proxy.serving().max_concurrent;
        let longest = routes
            .iter()
            .map(|route| route.proxy.serving().timeout)
            .try_fold(Duration::ZERO, |longest, timeout| Some(longest.max(timeout?)));
        Shared {
            admission: admission::Admission::new(max_concurrent, bounds.max_queued, queued),
            routes,
            bounds,
            max_concurrent,
            longest,
            next_id: AtomicU64::new(1),
            metrics,
            access_log: tracing::enabled!(target: "wsandbox::access", tracing::Level::DEBUG),
        }
    }

    /// The route of a request for `path` (its index), if one covers it.
    fn route(&self, path: &str) -> Option<usize> {
        self.routes.iter().position(|route| route.prefix.covers(path))
    }
}
