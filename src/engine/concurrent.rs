//! WASI 0.3 components: the component model's async (`stream`, `future`,
//! async functions), linked against WASI 0.3 (and 0.2, which a 0.3 guest's
//! standard library may still import), run as commands
//! (`wasi:cli/run@0.3.x`) or called export by export (async functions
//! or not), on a single-threaded tokio runtime.

use super::Error;
use super::call::{self, Call};
use super::component::{Host, limits_of, store};
use super::limits::Limits;
use super::outgoing::Outgoing;
use super::{Ended, Module, Outcome, unrunnable};
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime_wasi::WasiCtxBuilder;

/// A WASI 0.3 component, linked.
pub(super) type Linked = InstancePre<Host>;

/// Links `component` against WASI 0.3, WASI 0.2 (async), their
/// `wasi:http` (outgoing requests, allowed by the policy's `allow_http`
/// only) if it imports it, and `wsandbox:plugin/host`.
pub(super) fn link(engine: &Engine, module: &Module, component: &Component) -> Result<Linked, Error> {
    let mut linker: Linker<Host> = Linker::new(engine);
    let engine_error = |e: wasmtime::Error| Error::Engine(crate::say::error_line(&e));
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker).map_err(engine_error)?;
    // Only a component that asks for `wasi:http` pays for linking it; its
    // requests go where the policy's `allow_http` allows, as a 0.2 one's.
    if super::component::imports_http(engine, component) {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(engine_error)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut linker).map_err(engine_error)?;
    }
    super::plugin_host::add_to_linker(&mut linker).map_err(engine_error)?;
    linker
        .instantiate_pre(component)
        .map_err(|e| unrunnable(module, crate::say::error_line(&e)))
}

/// Checks that `linked` is a WASI 0.3 command: that it exports
/// `wasi:cli/run@0.3`.
pub(super) fn check_command(module: &Module, linked: &Linked) -> Result<(), Error> {
    wasmtime_wasi::p3::bindings::CommandIndices::new(linked)
        .map(drop)
        .map_err(|e| unrunnable(module, no_entry_point(&e)))
}

fn no_entry_point(err: &wasmtime::Error) -> String {
    format!(
        "no entry point: the component does not export `wasi:cli/run@0.3` ({})",
        crate::say::error_line(err)
    )
}

/// Instantiates `linked` under `limits` and calls `wasi:cli/run@0.3`, on a
/// tokio runtime of this thread alone.
pub(super) fn run(
    engine: &Engine,
    linked: Linked,
    wasi: WasiCtxBuilder,
    limits: Limits,
    outgoing: Arc<Outgoing>,
) -> Result<Ended, Error> {
    let mut store = store(engine, wasi, limits, outgoing);
    let runtime = runtime()?;
    let started = std::time::Instant::now();
    let ended = runtime.block_on(async {
        let instance = linked.instantiate_async(&mut store).await?;
        tracing::debug!("engine: instantiated: {:.3} ms", super::ms_since(started));
        let command = wasmtime_wasi::p3::bindings::Command::new(&mut store, &instance)
            .map_err(|e| wasmtime::Error::msg(no_entry_point(&e)))?;
        store
            .run_concurrent(async |store| command.wasi_cli_run().call_run(store).await)
            .await?
    });
    // `run` returning `err` is the component's way to fail without a code.
    let ended = ended.map(|result| Outcome::Exited(if result.is_ok() { 0 } else { 1 }));
    Ok(Limits::sort(&store, limits_of, ended))
}

/// Instantiates `linked` under `limits` and makes `call` (an async
/// function or not) on it, on a tokio runtime of this thread alone;
/// `exports` are the component's. An `Err` means the call never started.
pub(super) fn call(
    engine: &Engine,
    linked: Linked,
    wasi: WasiCtxBuilder,
    limits: Limits,
    outgoing: Arc<Outgoing>,
    exports: &[(String, String)],
    call: &Call,
) -> Result<Ended, Error> {
    let mut store = store(engine, wasi, limits, outgoing);
    runtime()?.block_on(async {
        let instance = match linked.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(err) => return Ok(Limits::sort(&store, limits_of, Err(err))),
        };
        let ready = call::ready_component(&mut store, &instance, exports, call)?;
        let mut results = ready.results();
        let made = store
            .run_concurrent(async |accessor| {
                ready
                    .func
                    .call_concurrent(accessor, &ready.args, &mut results)
                    .await
            })
            .await
            .and_then(|made| made);
        let returned = made.and_then(|()| call::returned(results));
        Ok(Limits::sort(&store, limits_of, returned))
    })
}

/// A tokio runtime on this thread alone, with its timer and its I/O (the
/// broker's socket, for outgoing requests).
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .enable_io()
        .build()
        .map_err(|e| Error::Engine(format!("cannot start the async runtime: {e}")))
}
