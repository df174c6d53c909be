//! Components: linked against WASI preview 2 and the plugin world's host,
//! run as commands (`wasi:cli/run`) or called export by export.

use super::Error;
use super::limits::Limits;
use super::outgoing::{Http, Outgoing};
use super::plugin_host::HostCalls;
use super::{Ended, Module, Outcome, unrunnable};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// The store's data for a component guest.
pub(super) struct Host {
    wasi: WasiCtx,
    http: Http,
    table: ResourceTable,
    limits: Limits,
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http.view(&mut self.table)
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

/// A component linked against WASI preview 2 (with `wasi:http`'s
/// outgoing requests) and `wsandbox:plugin/host`.
pub(super) type Linked = InstancePre<Host>;

/// Links `component` against WASI preview 2, `wasi:http` (outgoing
/// requests, allowed by the policy's `allow_http` only),
/// `wsandbox:plugin/host` and, for a plugin, its `host` program's
/// functions: then every other import must be one of those.
pub(super) fn link(
    engine: &Engine,
    module: &Module,
    component: &Component,
    host: Option<&Arc<dyn HostCalls>>,
) -> Result<Linked, Error> {
    let mut linker: Linker<Host> = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| Error::Engine(crate::say::error_line(&e));
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;
    // Only a component that asks for `wasi:http` pays for linking it.
    if imports_http(engine, component) {
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker).map_err(engine_error)?;
    }
    super::plugin_host::add_to_linker(&mut linker).map_err(engine_error)?;
    if let Some(host) = host {
        super::plugin_host::add_host_calls(&mut linker, engine, component, host)
            .map_err(|why| unrunnable(module, why))?;
    }
    linker
        .instantiate_pre(component)
        .map_err(|e| unrunnable(module, crate::say::error_line(&e)))
}

/// Whether `component` imports anything of `wasi:http`.
pub(super) fn imports_http(engine: &Engine, component: &Component) -> bool {
    component
        .component_type()
        .imports(engine)
        .any(|(name, _)| name.starts_with("wasi:http/"))
}

/// `linked` as a WASI command: it must export `wasi:cli/run`.
fn command(module: &Module, linked: Linked) -> Result<CommandPre<Host>, Error> {
    CommandPre::new(linked).map_err(|e| {
        unrunnable(
            module,
            format!(
                "no entry point: the component does not export `wasi:cli/run` ({})",
                crate::say::error_line(&e)
            ),
        )
    })
}

/// Checks that `linked` is a WASI command.
pub(super) fn check_command(module: &Module, linked: &Linked) -> Result<(), Error> {
    command(module, linked.clone()).map(drop)
}

/// A store for one instance of a component, under `limits`; its outgoing
/// requests go by `outgoing`.
pub(super) fn store(
    engine: &Engine,
    mut wasi: WasiCtxBuilder,
    limits: Limits,
    outgoing: Arc<Outgoing>,
) -> Store<Host> {
    let host = Host {
        wasi: wasi.build(),
        http: Http::new(outgoing, None),
        table: ResourceTable::new(),
        limits,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    Limits::fuel_up(&mut store, limits_of);
    store
}

/// The limits of a store's instance.
pub(super) fn limits_of(host: &Host) -> &Limits {
    &host.limits
}

/// Instantiates `linked` under `limits` and calls `wasi:cli/run`.
pub(super) fn run(
    engine: &Engine,
    module: &Module,
    linked: Linked,
    wasi: WasiCtxBuilder,
    limits: Limits,
    outgoing: Arc<Outgoing>,
) -> Result<Ended, Error> {
    let command = self::command(module, linked)?;
    let mut store = store(engine, wasi, limits, outgoing);
    let started = std::time::Instant::now();
    let ended = command
        .instantiate(&mut store)
        .and_then(|command| {
            tracing::debug!("engine: instantiated: {:.3} ms", super::ms_since(started));
            command.wasi_cli_run().call_run(&mut store)
        })
        // `run` returning `err` is the component's way to fail without a code.
        .map(|result| Outcome::Exited(if result.is_ok() { 0 } else { 1 }));
    Ok(Limits::sort(&store, limits_of, ended))
}
