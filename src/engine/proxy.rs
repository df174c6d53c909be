//! A `wasi:http` component, one fresh instance per request: the engine's
//! part of serving ([`crate::serve`] is the HTTP server around it).
//!
//! One engine, built with the pooling allocator sized for
//! [`Serving::max_concurrent`] instances, epoch interruption and async
//! support (and the component model's async when a WASI 0.3 service is
//! served: [`Serving::component_model_async`]); one `InstancePre`,
//! checked to be a WASI 0.2 `wasi:http/proxy` (exporting
//! `wasi:http/incoming-handler`) or a WASI 0.3 `wasi:http/service`
//! (exporting `wasi:http/handler`); per request a new store with the
//! request's own limits and an epoch deadline that yields at every tick
//! ([`Proxy::handle`]).
//!
//! A 0.3 service gets a fresh instance per request too, though 0.3 would
//! let one instance take several requests at once (as `wasmtime serve`
//! does): requests of different clients then never share a heap, a
//! global or a leftover task, and each one's `--memory`, `--fuel` and
//! `--timeout` bound that request alone. Its instance lives until its
//! answer's body is over *and* its tasks have ended (work it does after
//! the body, such as a log line, is waited for), within the timeout.
//! Its request has the scheme `http` and the authority of its `Host`.
//!
//! - [`Serving::timeout`]: each request's instance has that long to
//!   answer and finish its body: past it the instance is dropped (a guest
//!   spinning in wasm yields at every epoch tick, so it can be).
//! - [`Serving::memory`] and the policy's fuel: per instance, as in `run`;
//!   a guest that traps (at a limit or not) stops its own instance, and no
//!   other request is touched: they have their own stores.
//! - Outgoing HTTP goes where the policy's `allow_http` allows, through
//!   the broker outside the walls ([`super::Outgoing`]); anything else is
//!   refused (`HTTP-request-denied`) before any socket is tried.
//!   `wasi:sockets` has no address allowed.
//! - The guest's stdout and stderr go where the caller of
//!   [`Proxy::handle`] says, one stream each per request.
//!
//! A [`Proxy`] keeps a thread that advances the engine's epoch every
//! [`EPOCH_TICK`], until it is dropped; [`Proxy::handle`] runs in a tokio
//! runtime (with its timer) that its caller owns.

use super::Error;
use super::limits::Limits;
use super::outgoing::{Http, Outgoing};
use super::{Module, Outcome, unrunnable};
use crate::Policy;
use crate::engine::module::Wasi;
use http_body_util::BodyExt as _;
use hyper::body::{Bytes, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use wasmtime::component::{Accessor, Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::p3::bindings::ServicePre;
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// How requests are run: how many instances at once (the pool is sized
/// for them), and each one's time and memory. The HTTP server's bounds on
/// its clients are [`crate::serve::Bounds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// Instances alive at once (and the pool's size).
    pub max_concurrent: u32,
    /// Each request's wall-clock limit, from the moment it has a slot.
    pub timeout: Option<Duration>,
    /// Each instance's linear memory limit, in bytes.
    pub memory: Option<u64>,
    /// A WASI 0.3 service is among the functions: the engine has the
    /// component model's async (and its cache entries their own key).
    pub component_model_async: bool,
}

impl Default for Serving {
    fn default() -> Serving {
        Serving {
            max_concurrent: 64,
            timeout: None,
            memory: None,
            component_model_async: false,
        }
    }
}

/// What one instance of a typical component takes from the pool, per
/// instance slot (a component is a few core instances, each with at most
/// one memory and a few tables).
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 16;
/// Fiber stacks per instance slot: one for a WASI 0.2 instance; a 0.3
/// one may have a few tasks waiting in host calls at once.
const STACKS_PER_CONCURRENT_COMPONENT: u32 = 4;

/// Sets up `config` for serving: epochs and the pooling allocator.
pub(super) fn configure(config: &mut wasmtime::Config, serving: &Serving) {
    config.epoch_interruption(true);
    let slots = serving.max_concurrent.max(1);
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(slots.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(match serving.component_model_async {
            true => slots.saturating_mul(STACKS_PER_CONCURRENT_COMPONENT),
            false => slots,
        });
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
    http: Http,
    table: ResourceTable,
    limits: Limits,
    observer: Option<MemoryObserver>,
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(observer) = &self.observer {
            observer(self.limits.peak_memory());
        }
    }
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
        self.http.view(&mut self.table)
    }
}

fn limits_of(host: &Host) -> &Limits {
    &host.limits
}

/// A component linked for serving, checked to be a `wasi:http` program.
pub(super) enum Linked {
    /// WASI 0.2: a `wasi:http/proxy`, exporting
    /// `wasi:http/incoming-handler`.
    P2(ProxyPre<Host>),
    /// WASI 0.3: a `wasi:http/service`, exporting `wasi:http/handler`.
    P3(ServicePre<Host>),
}

impl Linked {
    /// The component.
    pub(super) fn component(&self) -> &Component {
        match self {
            Linked::P2(pre) => pre.instance_pre().component(),
            Linked::P3(pre) => pre.instance_pre().component(),
        }
    }
}

/// Links `component` for serving: against WASI 0.2 and its `wasi:http`,
/// and for a WASI 0.3 service ([`Wasi::Preview3`]) also against WASI 0.3
/// and its `wasi:http` (on an engine with the component model's async).
pub(super) fn link(engine: &Engine, module: &Module, component: &Component) -> Result<Linked, Error> {
    let mut linker: Linker<Host> = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| Error::Engine(crate::say::error_line(&e));
    let p3 = module.wasi() == Wasi::Preview3;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
    if p3 {
        wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(engine_error)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(engine_error)?;
    }
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| unrunnable(module, crate::say::error_line(&e)))?;
    let not_a_service = |export: &str, e: wasmtime::Error| {
        unrunnable(
            module,
            format!(
                "not a wasi:http proxy: the component does not export `{export}` ({})",
                crate::say::error_line(&e)
            ),
        )
    };
    match p3 {
        true => ServicePre::new(pre)
            .map(Linked::P3)
            .map_err(|e| not_a_service("wasi:http/handler@0.3", e)),
        false => ProxyPre::new(pre)
            .map(Linked::P2)
            .map_err(|e| not_a_service("wasi:http/incoming-handler", e)),
    }
}

/// How often the epoch advances: the granularity of the timeout, and how
/// often a guest busy in wasm yields its thread to other requests.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A response of an instance's (or of the server's own): its body streams.
pub type Response = hyper::Response<HyperOutgoingBody>;

/// What an instance answers: its response, or the error it set instead.
pub type Answer = Result<Response, wasmtime_wasi_http::Error>;

/// Why a request's instance stopped before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    /// It ran past [`Serving::timeout`], this long.
    Timeout(Duration),
    /// It trapped (at a limit of memory or not) or ran out of fuel: why,
    /// in one line.
    Trapped(String),
    /// It could not be instantiated, or failed in the host: why, in one
    /// line.
    Failed(String),
}

/// Told the peak linear memory of each instance as it ends
/// ([`Proxy::observe_memory`]).
pub type MemoryObserver = Arc<dyn Fn(u64) + Send + Sync>;

/// A program loaded for serving, ready for requests: the engine, the
/// linked component, the policy each instance's WASI context is built
/// from, and the limits of each instance. Made by
/// [`Program::proxy`](super::Program::proxy); shared by all requests.
pub struct Proxy {
    engine: Engine,
    pre: Linked,
    policy: Policy,
    program_name: String,
    serving: Serving,
    outgoing: Arc<Outgoing>,
    /// The engine meters fuel: a store without a fuel limit gets all.
    metered: bool,
    observer: Option<MemoryObserver>,
    /// The thread that advances the engine's epoch, shared by the proxies
    /// of one engine; it ends with the last of them.
    ticker: Arc<Ticker>,
}

/// What a [`Proxy`] is made of, but its engine.
pub(super) struct Function {
    pub(super) pre: Linked,
    pub(super) policy: Policy,
    pub(super) program_name: String,
    pub(super) serving: Serving,
    pub(super) outgoing: Arc<Outgoing>,
    pub(super) metered: bool,
}

/// Advances an engine's epoch every [`EPOCH_TICK`] until dropped.
struct Ticker {
    ticking: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: &Engine) -> Result<Ticker, Error> {
        let ticking = Arc::new(AtomicBool::new(true));
        let ticker = engine.clone();
        let still = ticking.clone();
        std::thread::Builder::new()
            .name("epoch".into())
            .spawn(move || {
                while still.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    ticker.increment_epoch();
                }
            })
            .map_err(|e| Error::Engine(format!("serve: starting the epoch thread: {e}")))?;
        Ok(Ticker { ticking })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

impl Proxy {
    /// The proxy for `function`, linked on `engine` (built with
    /// [`configure`]); the thread that advances the epoch every
    /// [`EPOCH_TICK`] is `beside`'s when given (a proxy of the same
    /// engine), else its own.
    pub(super) fn new(engine: Engine, function: Function, beside: Option<&Proxy>) -> Result<Proxy, Error> {
        let ticker = match beside {
            Some(first) if Engine::same(&first.engine, &engine) => first.ticker.clone(),
            _ => Arc::new(Ticker::start(&engine)?),
        };
        Ok(Proxy {
            engine,
            pre: function.pre,
            policy: function.policy,
            program_name: function.program_name,
            serving: function.serving,
            outgoing: function.outgoing,
            metered: function.metered,
            observer: None,
            ticker,
        })
    }

    /// Tells `observer` the peak linear memory of each instance, all its
    /// memories together, as it ends (however it ends).
    pub fn observe_memory(&mut self, observer: MemoryObserver) {
        self.observer = Some(observer);
    }

    /// The limits it was loaded with.
    pub fn serving(&self) -> &Serving {
        &self.serving
    }

    /// Runs request `id` in a fresh instance, from instantiation to the
    /// end of its response's body, within [`Serving::timeout`]: the
    /// guest's `wasi:http/incoming-handler` (or 0.3 `wasi:http/handler`)
    /// gets `request`, and its answer goes to `answer` as soon as it sets
    /// one — the body then streams from the instance, which this future
    /// drives. The guest's stdout and stderr go to `stdout` and `stderr`;
    /// its stdin is empty.
    ///
    /// Dropping the future stops the instance. It must be polled in a
    /// tokio runtime with its timer.
    pub async fn handle<B>(
        &self,
        id: u64,
        request: hyper::Request<B>,
        answer: oneshot::Sender<Answer>,
        stdout: impl StdoutStream + 'static,
        stderr: impl StdoutStream + 'static,
    ) -> Result<(), Stopped>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut store = self
            .new_store(id, stdout, stderr)
            .map_err(|e| Stopped::Failed(e.to_string()))?;
        // Dropped before the store (declared after it): then a 0.3
        // answer's body that has not ended is cut, never ended as if whole.
        let mut unfinished = Unfinished::default();
        let stopped = unfinished.flag.clone();
        let work = async {
            match &self.pre {
                Linked::P2(pre) => self.handle_p2(&mut store, pre, id, request, answer).await,
                Linked::P3(pre) => {
                    self.handle_p3(&mut store, pre, id, request, answer, stopped)
                        .await
                }
            }
        };
        let ended = match self.serving.timeout {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or(Err(Stopped::Timeout(limit))),
            None => work.await,
        };
        if ended.is_ok() {
            unfinished.finished();
        }
        ended
    }

    /// [`Proxy::handle`] of a WASI 0.2 `wasi:http/proxy`: its
    /// `incoming-handler` call lasts until its body is over.
    async fn handle_p2<B>(
        &self,
        store: &mut Store<Host>,
        pre: &ProxyPre<Host>,
        id: u64,
        request: hyper::Request<B>,
        answer: oneshot::Sender<Answer>,
    ) -> Result<(), Stopped>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = std::time::Instant::now();
        let proxy = pre
            .instantiate_async(&mut *store)
            .await
            .map_err(cannot_instantiate)?;
        tracing::trace!("[req {id}] instantiated: {:.3} ms", super::ms_since(started));
        let called = async {
            let request = store
                .data_mut()
                .http()
                .new_incoming_request(Scheme::Http, request)?;
            let out = store
                .data_mut()
                .http()
                .new_response_outparam_from_callback(move |set| {
                    // A client that left dropped the receiver: nothing to tell.
                    let _ = answer.send(set.map_err(Into::into));
                })?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut *store, request, out)
                .await
        };
        called.await.map_err(|err| self.why_failed(store, err))
    }

    /// [`Proxy::handle`] of a WASI 0.3 `wasi:http/service`: its `handle`
    /// returns the answer, whose body its tasks go on writing; the
    /// instance lives until the body is over and its tasks have ended.
    /// `stopped` is set (by the caller) if it stops before: the body then
    /// ends in an error.
    async fn handle_p3<B>(
        &self,
        store: &mut Store<Host>,
        pre: &ServicePre<Host>,
        id: u64,
        request: hyper::Request<B>,
        answer: oneshot::Sender<Answer>,
        stopped: Arc<AtomicBool>,
    ) -> Result<(), Stopped>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let started = std::time::Instant::now();
        let service = pre
            .instantiate_async(&mut *store)
            .await
            .map_err(cannot_instantiate)?;
        tracing::trace!("[req {id}] instantiated: {:.3} ms", super::ms_since(started));
        let request = with_origin(request);
        let ran = store
            .run_concurrent(async move |accessor| -> wasmtime::Result<()> {
                let request = accessor.with(|mut access| {
                    let hooks = access.get().http().hooks;
                    // The second half would tell what the guest found
                    // wrong with the request's body; the server watches
                    // that body itself (`serve::body`), so it goes unread.
                    wasmtime_wasi_http::p3::Request::from_http(hooks, request).0
                });
                let response = match service.handle(accessor, request).await? {
                    Ok(response) => response,
                    Err(code) => {
                        let _ = answer.send(Err(code.into()));
                        return tasks_ended(accessor).await;
                    }
                };
                let (told, sent) = oneshot::channel();
                let (over, body_over) = oneshot::channel();
                // What the guest learns of its answer's delivery.
                let delivered = async move {
                    sent.await
                        .unwrap_or(Err(wasmtime_wasi_http::Error::ConnectionTerminated))
                };
                let response = accessor.with(|mut access| response.into_http(&mut access, delivered))?;
                let response = response.map(|body| {
                    Watched {
                        body,
                        told: Some(told),
                        over: Some(over),
                        stopped,
                    }
                    .boxed_unsync()
                });
                // Refused (the client left), the answer is dropped, and
                // with it its body: that is its end.
                let _ = answer.send(Ok(response));
                let _ = body_over.await;
                tasks_ended(accessor).await
            })
            .await;
        match ran {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) | Err(err) => Err(self.why_failed(store, err)),
        }
    }

    /// What stopped a guest, explained by the limits it ran into.
    fn why_failed(&self, store: &Store<Host>, err: wasmtime::Error) -> Stopped {
        match Limits::sort(store, limits_of, Err(err)).outcome {
            Outcome::Trapped { message, .. } => Stopped::Trapped(format!("guest trapped: {message}")),
            Outcome::OutOfFuel => Stopped::Trapped(format!(
                "the guest ran out of fuel ({} {})",
                crate::policy::Setting::Fuel,
                self.policy.fuel.unwrap_or_default()
            )),
            other => Stopped::Failed(format!("{other:?}")),
        }
    }

    /// A store for one request: the policy's WASI context, but stdio of
    /// the caller's; the limits of one instance; an epoch deadline that
    /// yields at every tick.
    fn new_store(
        &self,
        id: u64,
        stdout: impl StdoutStream + 'static,
        stderr: impl StdoutStream + 'static,
    ) -> Result<Store<Host>, Error> {
        let mut wasi = super::wasi::builder(&self.policy, std::slice::from_ref(&self.program_name))?;
        wasi.allow_blocking_current_thread(false)
            .stdin(tokio::io::empty())
            .stdout(stdout)
            .stderr(stderr);
        let host = Host {
            wasi: wasi.build(),
            http: Http::new(self.outgoing.clone(), Some(id)),
            table: ResourceTable::new(),
            limits: Limits::new(
                self.serving.memory,
                // An engine that meters fuel for another function's limit
                // runs this one with all there is.
                self.policy.fuel.or(self.metered.then_some(u64::MAX)),
            ),
            observer: self.observer.clone(),
        };
        let mut store = Store::new(&self.engine, host);
        store.limiter(|host| &mut host.limits);
        Limits::fuel_up(&mut store, limits_of);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }
}

/// An instance that could not be made.
fn cannot_instantiate(err: wasmtime::Error) -> Stopped {
    Stopped::Failed(format!("cannot instantiate: {}", crate::say::error_line(&err)))
}

/// Waits until the store's guest tasks have all ended (returned, and done
/// with what they went on with after).
async fn tasks_ended(accessor: &Accessor<Host>) -> wasmtime::Result<()> {
    std::future::poll_fn(|cx| accessor.poll_no_interesting_tasks(cx)).await;
    Ok(())
}

/// `request` with the scheme (`http`: the server speaks nothing else) and
/// the authority (its `Host`) that a client's request target (`/path`)
/// leaves out, so that a 0.3 service sees whole URIs.
fn with_origin<B>(request: hyper::Request<B>) -> hyper::Request<B> {
    let (mut head, body) = request.into_parts();
    let mut uri = head.uri.clone().into_parts();
    if uri.authority.is_none() {
        uri.authority = head
            .headers
            .get(hyper::header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse().ok());
    }
    // A URI with a scheme must have an authority and a path.
    if uri.authority.is_some() {
        uri.scheme.get_or_insert(hyper::http::uri::Scheme::HTTP);
        uri.path_and_query
            .get_or_insert(hyper::http::uri::PathAndQuery::from_static("/"));
        if let Ok(whole) = hyper::Uri::from_parts(uri) {
            head.uri = whole;
        }
    }
    hyper::Request::from_parts(head, body)
}

/// Set when an instance stops before it finished, as this is dropped
/// unless it was told [`Unfinished::finished`].
#[derive(Default)]
struct Unfinished {
    flag: Arc<AtomicBool>,
    finished: bool,
}

impl Unfinished {
    fn finished(&mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            self.flag.store(true, Ordering::Release);
        }
    }
}

/// A 0.3 instance's answer body, watched on its way to the client: its
/// end (or its drop, when the client left) tells the guest whether it was
/// delivered, and the instance that the body is over. A body the stopped
/// instance can no longer write ends in an error — the client sees it cut
/// short — never as if it were whole.
struct Watched {
    body: HyperOutgoingBody,
    told: Option<oneshot::Sender<Result<(), wasmtime_wasi_http::Error>>>,
    over: Option<oneshot::Sender<()>>,
    /// Set when the instance stopped before it finished.
    stopped: Arc<AtomicBool>,
}

impl Watched {
    fn end(&mut self, delivered: Result<(), wasmtime_wasi_http::Error>) {
        if let Some(told) = self.told.take() {
            let _ = told.send(delivered);
        }
        if let Some(over) = self.over.take() {
            let _ = over.send(());
        }
    }
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        Poll::Ready(match polled {
            Some(Ok(frame)) => Some(Ok(frame)),
            Some(Err(err)) => {
                this.end(Err(wasmtime_wasi_http::Error::HttpProtocolError));
                Some(Err(err))
            }
            None if this.stopped.load(Ordering::Acquire) => {
                this.end(Err(wasmtime_wasi_http::Error::HttpResponseIncomplete));
                Some(Err(wasmtime_wasi_http::Error::InternalError(Some(
                    "the function stopped before its answer's body was over".into(),
                ))))
            }
            None => {
                this.end(Ok(()));
                None
            }
        })
    }

    /// Over only once its end was seen, so that it is always seen.
    fn is_end_stream(&self) -> bool {
        self.over.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.end(Err(wasmtime_wasi_http::Error::ConnectionTerminated));
    }
}
