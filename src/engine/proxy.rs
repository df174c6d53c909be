//! A `wasi:http/proxy` component, one fresh instance per request: the
//! engine's part of serving ([`crate::serve`] is the HTTP server around
//! it).
//!
//! One engine, built with the pooling allocator sized for
//! [`Serving::max_concurrent`] instances, epoch interruption and async
//! support; one `InstancePre`, checked to be a `wasi:http/proxy`; per request a new
//! store with the request's own limits and an epoch deadline that yields
//! at every tick ([`Proxy::handle`]).
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
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
}

impl Default for Serving {
    fn default() -> Serving {
        Serving {
            max_concurrent: 64,
            timeout: None,
            memory: None,
        }
    }
}

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

/// How often the epoch advances: the granularity of the timeout, and how
/// often a guest busy in wasm yields its thread to other requests.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A response of an instance's (or of the server's own): its body streams.
pub type Response = hyper::Response<HyperOutgoingBody>;

/// What an instance answers: its response, or the error it set instead.
pub type Answer = Result<Response, ErrorCode>;

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
    /// guest's `wasi:http/incoming-handler` gets `request`, and its answer
    /// goes to `answer` as soon as it sets one — the body then streams
    /// from the instance, which this future drives. The guest's stdout and
    /// stderr go to `stdout` and `stderr`; its stdin is empty.
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
        B: hyper::body::Body<Data = hyper::body::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let mut store = self
            .new_store(id, stdout, stderr)
            .map_err(|e| Stopped::Failed(e.to_string()))?;
        let work = async {
            let started = std::time::Instant::now();
            let proxy = match self.pre.instantiate_async(&mut store).await {
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
                Err(err) => Err(self.why_failed(&store, err)),
            }
        };
        match self.serving.timeout {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or(Err(Stopped::Timeout(limit))),
            None => work.await,
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
