//! `serve`: a `wasi:http/proxy` component answering HTTP requests, one
//! fresh instance per request.
//!
//! One engine, built with the pooling allocator sized for
//! [`Serving::max_concurrent`] instances, epoch interruption and async
//! support; one `InstancePre`; per request a new store with the request's
//! own limits. A tokio runtime runs hyper's HTTP/1 connections on the
//! listening socket it is handed (bound outside the walls: inside, nothing
//! can be bound or connected).
//!
//! - `--timeout`: each request's instance has that long, from the moment it
//!   gets a slot, to answer and finish its body: past it the instance is
//!   dropped (a guest spinning in wasm yields at every epoch tick, so it
//!   can be), and the client gets 504 if nothing was answered yet.
//! - `--memory`, `--fuel`: per instance, as in `run`; a guest that traps
//!   (at a limit or not) gets its client a 500, and no other request is
//!   touched: they have their own stores.
//! - [`Serving::max_concurrent`] instances at once; [`Serving::max_queued`]
//!   more requests wait for a slot; past that, 503 at once.
//! - [`Serving::max_connections`] connections at once: past them, new ones
//!   are not accepted — they wait in the kernel's backlog — until one
//!   closes. A connection with no request under way (just accepted, or
//!   its last answer sent) has [`Serving::idle_timeout`] to deliver a
//!   request's whole head, else it is closed without an answer.
//! - [`Serving::request_timeout`]: the head must arrive within it too, and
//!   a function never waits longer than that, from the moment its request
//!   has an instance, for the client to send the body ([`RequestBody`]);
//!   [`Serving::max_body_size`]: a larger `Content-Length` gets 413 before
//!   any instance. A body that comes too late or grows too large stops
//!   the instance: 408 or 413 if nothing was answered yet, and the
//!   connection is closed (the rest of the request is never read).
//! - A request whose framing two parsers could read two ways (both
//!   `Content-Length` and `Transfer-Encoding`, `Content-Length` twice,
//!   `chunked` twice) gets 400 before any instance, and its connection
//!   is closed ([`framing`]); the other ambiguities (different lengths,
//!   folded fields, a coding that is not chunked last) hyper refuses
//!   itself with 400.
//! - Accepting that fails for a reason that lasts (out of descriptors,
//!   `EMFILE`): one line, then quiet while it lasts, a pause of 10 ms
//!   doubling to 250 ms between tries, and one line when it works again.
//! - Outgoing HTTP is refused (`HTTP-request-denied`) before any socket is
//!   tried; `wasi:sockets` has no address allowed.
//! - The guest's stdout and stderr become lines on the server's stderr,
//!   each prefixed with the request's id.
//! - SIGINT, SIGTERM or SIGHUP: the listener closes, idle connections too,
//!   requests in flight finish (bounded by the timeout), and `serve`
//!   returns; a second signal ends it at once.

mod framing;

use super::Error;
use super::limits::Limits;
use super::{Ended, Module, Outcome, unrunnable};
use crate::Policy;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Bytes};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// How requests are served: how many at once, and each one's time and
/// memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// Instances alive at once (and the pool's size).
    pub max_concurrent: u32,
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
    /// Each request's wall-clock limit, from the moment it has a slot.
    pub timeout: Option<Duration>,
    /// Each instance's linear memory limit, in bytes.
    pub memory: Option<u64>,
}

impl Default for Serving {
    fn default() -> Serving {
        Serving {
            max_concurrent: 64,
            max_queued: 256,
            max_connections: 512,
            idle_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_body_size: 16 << 20,
            timeout: None,
            memory: None,
        }
    }
}

/// How often the epoch advances: the granularity of the timeout, and how
/// often a guest busy in wasm yields its thread to other requests.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The first pause of the accept loop when accepting fails for a reason
/// that lasts (out of descriptors or memory), doubled at each failure up
/// to [`ACCEPT_PAUSE_MAX`]: the listening socket stays readable, so
/// without a pause the loop would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);
const ACCEPT_PAUSE_MAX: Duration = Duration::from_millis(250);

/// What one instance of a typical component takes from the pool, per
/// instance slot (a component is a few core instances, each with at most
/// one memory and a few tables).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 16;

/// Sets up `config` for serving: epochs and the pooling allocator.
pub(super) fn configure(config: &mut wasmtime::Config, serving: &Serving) {
    config.epoch_interruption(true);
    let slots = serving.max_concurrent.max(1);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(slots.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(slots);
    if let Some(memory) = serving.memory {
        // Rounded up to whole wasm pages; the limiter holds the exact bound.
        let pages = memory.div_ceil(1 << 16).max(1);
        pool.max_memory_size(usize::try_from(pages << 16).unwrap_or(usize::MAX));
    }
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
}

/// The store's data for one request.
pub(super) struct Host {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: Limits,
    hooks: NoOutgoing,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Outgoing HTTP: refused, at once, whatever the address.
struct NoOutgoing;

type Outgoing = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                hyper::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for NoOutgoing {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Outgoing {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

fn limits_of(host: &Host) -> &Limits {
    &host.limits
}

/// A component linked against WASI preview 2 and `wasi:http`, checked to
/// be a `wasi:http/proxy`.
pub(super) type Linked = ProxyPre<Host>;

/// Links `component` for serving.
pub(super) fn link(engine: &Engine, module: &Module, component: &Component) -> Result<Linked, Error> {
    let mut linker: Linker<Host> = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| Error::Engine(crate::say::error_line(&e));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| unrunnable(module, crate::say::error_line(&e)))?;
    ProxyPre::new(pre).map_err(|e| {
        unrunnable(
            module,
            format!(
                "not a wasi:http proxy: the component does not export `wasi:http/incoming-handler` ({})",
                crate::say::error_line(&e)
            ),
        )
    })
}

/// Everything a request needs, shared by all of them.
struct Shared {
    engine: Engine,
    pre: Linked,
    policy: Policy,
    program_name: String,
    serving: Serving,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    next_id: AtomicU64,
}

/// Serves `linked` on `listener` until a termination signal, then lets
/// the requests in flight finish. `ready` is called once connections are
/// being accepted. SIGINT, SIGTERM and SIGHUP are blocked in this thread
/// (and so in the runtime's) and taken by a thread of the server's; a
/// caller that started other threads before must have blocked them there
/// too (see [`termination_signals`]).
pub(super) fn serve(
    engine: Engine,
    pre: Linked,
    policy: &Policy,
    program_name: String,
    serving: &Serving,
    listener: std::net::TcpListener,
    ready: impl FnOnce(SocketAddr),
) -> Result<Ended, Error> {
    let setup = |what: &str, err: &dyn std::fmt::Display| Error::Engine(format!("serve: {what}: {err}"));
    let address = listener
        .local_addr()
        .map_err(|e| setup("the listening socket", &e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| setup("the listening socket", &e))?;
    let signals = termination_signals();
    signals
        .thread_block()
        .map_err(|e| setup("blocking the termination signals", &e))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| setup("starting the runtime", &e))?;
    let ticker = engine.clone();
    std::thread::Builder::new()
        .name("epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        })
        .map_err(|e| setup("starting the epoch thread", &e))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let first = signals.wait();
            let _ = stop_tx.send(true);
            let second = signals.wait();
            let code = [first, second]
                .into_iter()
                .flatten()
                .last()
                .map_or(1, |signal| 128 + signal as i32);
            crate::sys::exit_now(code);
        })
        .map_err(|e| setup("starting the signal thread", &e))?;
    let shared = Arc::new(Shared {
        engine,
        pre,
        policy: policy.clone(),
        program_name,
        serving: *serving,
        slots: Arc::new(Semaphore::new(serving.max_concurrent.max(1) as usize)),
        waiting: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
    });
    runtime.block_on(accept_loop(shared, listener, stop_rx, ready, address))?;
    // Tasks still running (only past the grace period) are dropped with
    // the runtime.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(Ended {
        outcome: Outcome::Exited(0),
        fuel_consumed: None,
    })
}

/// The signals that end `serve` gracefully.
pub fn termination_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set
}

async fn accept_loop(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    mut stop: tokio::sync::watch::Receiver<bool>,
    ready: impl FnOnce(SocketAddr),
    address: SocketAddr,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| Error::Engine(format!("serve: the listening socket: {e}")))?;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(shared.serving.max_connections.max(1) as usize));
    let mut http = hyper::server::conn::http1::Builder::new();
    // The timer starts whenever the connection waits for a request's head:
    // once accepted, and after each answer.
    let head_timeout = shared.serving.idle_timeout.min(shared.serving.request_timeout);
    http.keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(head_timeout);
    let mut starved = Starved::default();
    ready(address);
    loop {
        // Past the cap, connections wait in the kernel's backlog.
        let (held, stream) = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            accepted = async {
                let held = connections.clone().acquire_owned().await.ok()?;
                Some((held, starved.accept(&listener).await))
            } => match accepted {
                Some(accepted) => accepted,
                None => break,
            },
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stream = framing::Watched::new(stream);
        let verdict = stream.verdict();
        let requests = AtomicU64::new(0);
        let connection = http.serve_connection(
            hyper_util::rt::TokioIo::new(stream),
            hyper::service::service_fn(move |request| {
                let ambiguous = verdict.of(requests.fetch_add(1, Ordering::Relaxed));
                handle(shared.clone(), request, ambiguous)
            }),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(held);
        });
    }
    drop(listener);
    // Idle connections close now; the ones with a request in flight once
    // it is answered, within the timeout (and a little for the answer to
    // leave).
    let grace = shared.serving.timeout.map(|t| t + Duration::from_secs(1));
    match grace {
        Some(grace) => {
            let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
        }
        None => graceful.shutdown().await,
    }
    Ok(())
}

/// The accept loop's account of a failure that lasts — out of
/// descriptors (`EMFILE`, `ENFILE`) or of memory: one line when it
/// starts, one when it ends, quiet in between, and a pause before each
/// new try that doubles up to [`ACCEPT_PAUSE_MAX`].
#[derive(Default)]
struct Starved {
    /// The pause before the next try, while accepting fails.
    pause: Option<Duration>,
}

impl Starved {
    /// The next connection, however many failures it takes.
    async fn accept(&mut self, listener: &tokio::net::TcpListener) -> tokio::net::TcpStream {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    if self.pause.take().is_some() {
                        crate::say!("wsandbox: serve: accepting connections again");
                    }
                    return stream;
                }
                // A connection reset before it was accepted, or with a
                // network error pending, is the client's and over: the
                // next one is tried at once.
                Err(err) if is_the_connections(&err) => {}
                Err(err) => {
                    let pause = match self.pause {
                        None => {
                            crate::say!(
                                "wsandbox: serve: cannot accept connections: {err}; trying again until it can"
                            );
                            ACCEPT_PAUSE
                        }
                        Some(pause) => (pause * 2).min(ACCEPT_PAUSE_MAX),
                    };
                    self.pause = Some(pause);
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// Whether `accept` failed for the connection it was about to return
/// (reset, or a network error pending on it: accept(2) says to try again
/// at once), not for the server.
fn is_the_connections(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::ECONNRESET
                | libc::EPROTO
                | libc::ENETDOWN
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::ENONET
                | libc::EHOSTUNREACH
                | libc::EOPNOTSUPP
                | libc::ENETUNREACH
        )
    )
}

type Response = hyper::Response<HyperOutgoingBody>;

/// Answers one request with a fresh instance, or with the error that
/// stopped it; a request whose framing is `ambiguous` gets 400 and ends
/// its connection.
async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<hyper::body::Incoming>,
    ambiguous: Option<&'static str>,
) -> Result<Response, std::convert::Infallible> {
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let asked = Asked {
        id,
        method: request.method().clone(),
        uri: request.uri().clone(),
    };
    // The server's log has the whole story; the client gets the status
    // and a line that gives nothing of the guest's away.
    let failed = |status: u16, why: String| {
        asked.log(format_args!("{status}"), &why);
        let told = match status {
            400 if ambiguous.is_some() => "the request's length is ambiguous",
            400 => "a request needs a Host header",
            408 => "the request did not arrive in time",
            413 => "the request's body is too large",
            503 => "too many requests, try again later",
            504 => "the function did not answer in time",
            _ => "the function failed",
        };
        let mut response = plain(status, &format!("{told} (request {id})"));
        if matches!(status, 408 | 413) || ambiguous.is_some() {
            // What is left of the request is not read (or could be read
            // two ways): the connection cannot carry another.
            response.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        Ok(response)
    };
    if let Some(why) = ambiguous {
        return failed(400, format!("its framing is ambiguous: {why}"));
    }
    let has_authority =
        request.uri().authority().is_some() || request.headers().contains_key(hyper::header::HOST);
    if !has_authority {
        return failed(400, "no Host header".into());
    }
    let announced = request.body().size_hint().lower();
    if announced > shared.serving.max_body_size {
        let max = super::limits::human(shared.serving.max_body_size);
        return failed(
            413,
            format!("a body of {announced} bytes announced, over --max-body-size {max}"),
        );
    }
    let Some(permit) = admit(&shared).await else {
        return failed(
            503,
            format!(
                "too many requests: {} in flight and {} waiting",
                shared.serving.max_concurrent, shared.serving.max_queued
            ),
        );
    };
    let (answer_tx, answer_rx) = oneshot::channel();
    let task = tokio::spawn(instance(shared.clone(), id, request, answer_tx, permit));
    match answer_rx.await {
        Ok(Ok(response)) => {
            // The body streams on from the instance: how that ends is
            // logged, since the client can only see it cut short.
            tokio::spawn(async move {
                match task.await {
                    Ok(Err(Stopped::Timeout(limit))) => asked.log(
                        format_args!("stopped while answering"),
                        &format!("past --timeout {limit:?}"),
                    ),
                    Ok(Err(Stopped::Unread(unread))) => {
                        asked.log(format_args!("stopped while answering"), &unread.to_string())
                    }
                    Ok(Err(Stopped::Failed(why))) => asked.log(format_args!("failed while answering"), &why),
                    _ => {}
                }
            });
            Ok(response)
        }
        Ok(Err(code)) => failed(500, format!("the function answered with an error: {code:?}")),
        // The guest ended without answering: why?
        Err(_) => match task.await {
            Ok(Ok(())) => failed(500, "the function returned without answering".into()),
            Ok(Err(Stopped::Timeout(limit))) => failed(
                504,
                format!("the function did not answer within --timeout {limit:?} and was stopped"),
            ),
            Ok(Err(Stopped::Unread(unread))) => failed(unread.status(), unread.to_string()),
            Ok(Err(Stopped::Failed(why))) => failed(500, why),
            Err(err) => failed(500, format!("the request's task failed: {err}")),
        },
    }
}

/// A request as the log names it: its id, method and path.
struct Asked {
    id: u64,
    method: hyper::Method,
    uri: hyper::Uri,
}

/// The most of a request's path that a line of the log shows.
const PATH_IN_LOG: usize = 256;

impl Asked {
    /// One line of the log about this request: `what` happened and `why`,
    /// every byte of the client's or the guest's escaped.
    fn log(&self, what: std::fmt::Arguments, why: &str) {
        use crate::say::escaped;
        crate::say!(
            "wsandbox: [req {}] {} {}: {what}: {}",
            self.id,
            escaped(self.method.as_str()),
            escaped(self.uri.path()).at_most(PATH_IN_LOG),
            escaped(why)
        );
    }
}

/// Why an instance stopped before it finished.
enum Stopped {
    Timeout(Duration),
    Failed(String),
    Unread(Unread),
}

/// Why a request's body could not be read to its end.
#[derive(Debug, Clone, Copy)]
enum Unread {
    /// It grew past this many bytes, [`Serving::max_body_size`].
    TooLarge(u64),
    /// The client had not sent it when the function waited for it past
    /// [`Serving::request_timeout`].
    Late(Duration),
}

impl Unread {
    /// The status for the client, when nothing was answered yet.
    fn status(self) -> u16 {
        match self {
            Unread::TooLarge(_) => 413,
            Unread::Late(_) => 408,
        }
    }
}

impl std::fmt::Display for Unread {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unread::TooLarge(max) => write!(
                out,
                "the request's body grew past --max-body-size {}; the function was stopped",
                super::limits::human(*max)
            ),
            Unread::Late(limit) => write!(
                out,
                "the client did not send the request's body within --request-timeout {limit:?}; the function was stopped"
            ),
        }
    }
}

/// A request's body as the guest reads it, watched: past
/// [`Serving::max_body_size`] bytes, or when the guest waits for the
/// client past the deadline, the instance is told (and stops it), and the
/// guest gets nothing more — it is about to be dropped. An empty body is
/// not watched: it costs nothing.
struct RequestBody {
    inner: hyper::body::Incoming,
    /// The bytes it may still have.
    left: u64,
    max: u64,
    timeout: Duration,
    /// Set the first time the guest waits for the client.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    watch: Watch,
}

/// What a [`RequestBody`] still has to watch for.
enum Watch {
    /// Nothing: the body is empty, or has arrived whole, or failed.
    Off,
    /// Its size, and the guest's waiting for the client until `deadline`;
    /// the instance is told through `tell`.
    On {
        tell: oneshot::Sender<Unread>,
        deadline: tokio::time::Instant,
    },
    /// The instance was told; the guest waits until it is stopped.
    Told,
}

impl RequestBody {
    /// `request` with its body watched from now, by `serving`'s limits;
    /// and where the instance learns that the body cannot be read (none
    /// for an empty body).
    fn watch(
        request: hyper::Request<hyper::body::Incoming>,
        serving: &Serving,
    ) -> (hyper::Request<RequestBody>, Option<oneshot::Receiver<Unread>>) {
        let (parts, inner) = request.into_parts();
        let (watch, unread) = if inner.is_end_stream() {
            (Watch::Off, None)
        } else {
            let (tell, told) = oneshot::channel();
            let deadline = tokio::time::Instant::now() + serving.request_timeout;
            (Watch::On { tell, deadline }, Some(told))
        };
        let body = RequestBody {
            inner,
            left: serving.max_body_size,
            max: serving.max_body_size,
            timeout: serving.request_timeout,
            timer: None,
            watch,
        };
        (hyper::Request::from_parts(parts, body), unread)
    }

    /// Tells the instance why the body cannot be read, and holds the guest.
    fn tell(
        &mut self,
        why: Unread,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, WasiHttpError>>> {
        if let Watch::On { tell, .. } = std::mem::replace(&mut self.watch, Watch::Told) {
            let _ = tell.send(why);
        }
        std::task::Poll::Pending
    }
}

type WasiHttpError = wasmtime_wasi_http::Error;

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = WasiHttpError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, WasiHttpError>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let deadline = match this.watch {
            Watch::Told => return Poll::Pending,
            Watch::Off => {
                return std::pin::Pin::new(&mut this.inner)
                    .poll_frame(cx)
                    .map_err(WasiHttpError::Hyper);
            }
            Watch::On { deadline, .. } => deadline,
        };
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                // The guest waits for the client: not past the deadline.
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    return this.tell(Unread::Late(this.timeout));
                }
                Poll::Pending
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    match this.left.checked_sub(data.len() as u64) {
                        Some(left) => this.left = left,
                        None => return this.tell(Unread::TooLarge(this.max)),
                    }
                }
                if this.inner.is_end_stream() {
                    this.watch = Watch::Off;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(ended) => {
                // Whole, or cut by the client: nothing more to watch.
                this.watch = Watch::Off;
                Poll::Ready(ended.map(|frame| frame.map_err(WasiHttpError::Hyper)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !matches!(self.watch, Watch::Told) && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A slot for one more instance: at once, after waiting in the queue, or
/// none when the queue is full.
async fn admit(shared: &Shared) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = shared.slots.clone().try_acquire_owned() {
        return Some(permit);
    }
    // Counted out again however the wait ends: with a slot, or with the
    // client gone (hyper then drops this future).
    struct InQueue<'a>(&'a AtomicUsize);
    impl Drop for InQueue<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
    let waiting = shared.waiting.fetch_add(1, Ordering::SeqCst);
    let _in_queue = InQueue(&shared.waiting);
    if waiting >= shared.serving.max_queued as usize {
        return None;
    }
    shared.slots.clone().acquire_owned().await.ok()
}

/// One request's instance, from instantiation to the end of its body,
/// within the timeout, and no longer than its request's body can be read
/// ([`RequestBody`]). The slot is given back when it ends.
async fn instance(
    shared: Arc<Shared>,
    id: u64,
    request: hyper::Request<hyper::body::Incoming>,
    answer: oneshot::Sender<Result<Response, ErrorCode>>,
    permit: OwnedSemaphorePermit,
) -> Result<(), Stopped> {
    let _permit = permit;
    let (request, unread) = RequestBody::watch(request, &shared.serving);
    let mut store = new_store(&shared, id).map_err(|e| Stopped::Failed(e.to_string()))?;
    let work = async {
        let started = std::time::Instant::now();
        let proxy = match shared.pre.instantiate_async(&mut store).await {
            Ok(proxy) => proxy,
            Err(err) => {
                let why = format!("cannot instantiate: {}", crate::say::error_line(&err));
                return Err(Stopped::Failed(why));
            }
        };
        tracing::trace!(
            "[req {id}] instantiated: {:.3} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        let called = async {
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let out = store.data_mut().http().new_response_outparam(answer)?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, out)
                .await
        };
        match called.await {
            Ok(()) => Ok(()),
            Err(err) => Err(Stopped::Failed(why_failed(&shared, &store, err))),
        }
    };
    let bounded = async {
        match shared.serving.timeout {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or(Err(Stopped::Timeout(limit))),
            None => work.await,
        }
    };
    match unread {
        None => bounded.await,
        // Told that the body cannot be read, the instance is stopped; once
        // the body is whole (the sender dropped), only `bounded` is left.
        Some(mut unread) => tokio::select! {
            biased;
            Ok(why) = &mut unread => Err(Stopped::Unread(why)),
            ended = bounded => ended,
        },
    }
}

/// What stopped a guest, explained by the limits it ran into.
fn why_failed(shared: &Shared, store: &Store<Host>, err: wasmtime::Error) -> String {
    match Limits::sort(store, limits_of, Err(err)).outcome {
        Outcome::Trapped { message, .. } => format!("guest trapped: {message}"),
        Outcome::OutOfFuel => format!(
            "the guest ran out of fuel (--fuel {})",
            shared.policy.fuel.unwrap_or_default()
        ),
        other => format!("{other:?}"),
    }
}

/// A store for request `id`: the policy's WASI context, but stdio that
/// goes to the server's stderr line by line, prefixed; the limits of one
/// instance; an epoch deadline that yields at every tick.
fn new_store(shared: &Shared, id: u64) -> Result<Store<Host>, Error> {
    let mut wasi = super::wasi::builder(&shared.policy, std::slice::from_ref(&shared.program_name))?;
    wasi.allow_blocking_current_thread(false)
        .stdin(tokio::io::empty())
        .stdout(LogStream::new(id, "stdout"))
        .stderr(LogStream::new(id, "stderr"));
    let host = Host {
        wasi: wasi.build(),
        http: WasiHttpCtx::new(),
        table: ResourceTable::new(),
        limits: Limits::new(shared.serving.memory, shared.policy.fuel),
        hooks: NoOutgoing,
    };
    let mut store = Store::new(&shared.engine, host);
    store.limiter(|host| &mut host.limits);
    Limits::fuel_up(&mut store, limits_of);
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    Ok(store)
}

/// A short plain-text answer of the server's own.
fn plain(status: u16, text: &str) -> Response {
    let body = http_body_util::Full::new(Bytes::from(format!("{text}\n")))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = hyper::Response::new(body);
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// A guest's stdout or stderr: whole lines on the server's stderr, each
/// prefixed with the request's id and the stream's name, escaped
/// ([`crate::say::escaped`]), at most [`LogStream::LINE`] bytes a line.
#[derive(Clone)]
struct LogStream {
    prefix: Arc<str>,
}

impl LogStream {
    const LINE: usize = 4096;

    fn new(id: u64, stream: &str) -> LogStream {
        LogStream {
            prefix: format!("[req {id} {stream}] ").into(),
        }
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogStream {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter {
            prefix: self.prefix.clone(),
            line: Vec::new(),
        })
    }
}

/// Collects bytes into lines, and writes each whole line with its prefix.
struct LineWriter {
    prefix: Arc<str>,
    line: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let mut text = String::with_capacity(self.prefix.len() + self.line.len() + 1);
        text.push_str(&self.prefix);
        let _ = writeln!(
            text,
            "{}",
            crate::say::escaped(&String::from_utf8_lossy(&self.line))
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
        self.line.clear();
    }
}

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                self.emit();
            } else {
                self.line.push(byte);
                if self.line.len() >= LogStream::LINE {
                    self.emit();
                }
            }
        }
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.line.is_empty() {
            self.emit();
        }
        std::task::Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.emit();
        }
    }
}
