//! Core modules: linked against WASI preview 1, run as commands (`_start`)
//! or called export by export.

use super::Error;
use super::limits::Limits;
use super::{Ended, Module, Outcome, unrunnable};
use wasmtime::{Engine, InstancePre, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// The store's data for a core module guest.
pub(super) struct Host {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// A core module linked against WASI preview 1.
pub(super) type Linked = InstancePre<Host>;

/// Links `compiled` against WASI preview 1.
pub(super) fn link(engine: &Engine, module: &Module, compiled: &wasmtime::Module) -> Result<Linked, Error> {
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host| &mut host.wasi)
        .map_err(|e| Error::Engine(crate::say::error_line(&e)))?;
    linker
        .instantiate_pre(compiled)
        .map_err(|e| unrunnable(module, crate::say::error_line(&e)))
}

/// Checks that `linked` is a WASI command: it exports `_start`.
pub(super) fn check_command(module: &Module, linked: &Linked) -> Result<(), Error> {
    match linked.module().get_export("_start") {
        Some(wasmtime::ExternType::Func(_)) => Ok(()),
        _ => Err(unrunnable(
            module,
            "no entry point: the module exports no `_start` function (is it a WASI command?)",
        )),
    }
}

/// A store for one instance of a core module, under `limits`.
pub(super) fn store(engine: &Engine, mut wasi: WasiCtxBuilder, limits: Limits) -> Store<Host> {
    let mut store = Store::new(
        engine,
        Host {
            wasi: wasi.build_p1(),
            limits,
        },
    );
    store.limiter(|host| &mut host.limits);
    Limits::fuel_up(&mut store, limits_of);
    store
}

/// The limits of a store's instance.
pub(super) fn limits_of(host: &Host) -> &Limits {
    &host.limits
}

/// Instantiates `linked` under `limits` and calls `_start`.
pub(super) fn run(
    engine: &Engine,
    module: &Module,
    linked: Linked,
    wasi: WasiCtxBuilder,
    limits: Limits,
) -> Result<Ended, Error> {
    check_command(module, &linked)?;
    let mut store = store(engine, wasi, limits);
    let started = std::time::Instant::now();
    let ended = linked.instantiate(&mut store).and_then(|instance| {
        tracing::debug!("engine: instantiated: {:.3} ms", super::ms_since(started));
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call(&mut store, ())
    });
    Ok(Limits::sort(
        &store,
        limits_of,
        ended.map(|()| Outcome::Exited(0)),
    ))
}
