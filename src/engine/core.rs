//! Running a core module as a WASI preview 1 command.

use super::limits::Limits;
use super::{Ended, Module, unrunnable};
use crate::Error;
use wasmtime::{Engine, InstancePre, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// The store's data for a core module guest.
pub(super) struct Host {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// A core module linked against WASI preview 1, with a `_start`.
pub(super) type Linked = InstancePre<Host>;

/// Links `compiled` against WASI preview 1 and checks it is a command.
pub(super) fn link(engine: &Engine, module: &Module, compiled: &wasmtime::Module) -> Result<Linked, Error> {
    if !matches!(compiled.get_export("_start"), Some(wasmtime::ExternType::Func(_))) {
        return Err(unrunnable(
            module,
            "no entry point: the module exports no `_start` function (is it a WASI command?)",
        ));
    }
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host| &mut host.wasi)
        .map_err(|e| Error::Engine(crate::error::one_line(&e)))?;
    linker
        .instantiate_pre(compiled)
        .map_err(|e| unrunnable(module, crate::error::one_line(&e)))
}

/// Instantiates `linked` under `limits` and calls `_start`.
pub(super) fn run(
    engine: &Engine,
    linked: Linked,
    mut wasi: WasiCtxBuilder,
    limits: Limits,
) -> Result<Ended, Error> {
    let mut store = Store::new(
        engine,
        Host {
            wasi: wasi.build_p1(),
            limits,
        },
    );
    store.limiter(|host| &mut host.limits);
    Limits::fuel_up(&mut store, |host| &host.limits);
    let ended = linked.instantiate(&mut store).and_then(|instance| {
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call(&mut store, ())
    });
    Ok(Limits::sort(&store, |host| &host.limits, ended.map(|()| 0)))
}
