//! Running a core module as a WASI preview 1 command.

use super::limits::Limits;
use super::{Module, Outcome, invalid, outcome, unrunnable};
use crate::Error;
use wasmtime::{Engine, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// The store's data for a core module guest.
struct Host {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// Compiles, links and instantiates `module`, then calls `_start`, with at
/// most `memory` bytes of linear memory.
pub(super) fn run(
    engine: &Engine,
    module: &Module,
    mut wasi: WasiCtxBuilder,
    memory: Option<u64>,
) -> Result<Outcome, Error> {
    let compiled = wasmtime::Module::new(engine, &module.bytes).map_err(|e| invalid(module, e))?;
    if !matches!(compiled.get_export("_start"), Some(wasmtime::ExternType::Func(_))) {
        return Err(unrunnable(
            module,
            "no entry point: the module exports no `_start` function (is it a WASI command?)",
        ));
    }
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |host| &mut host.wasi)
        .map_err(|e| Error::Engine(crate::error::one_line(&e)))?;
    let pre = linker
        .instantiate_pre(&compiled)
        .map_err(|e| unrunnable(module, crate::error::one_line(&e)))?;
    let mut store = Store::new(
        engine,
        Host {
            wasi: wasi.build_p1(),
            limits: Limits::new(memory),
        },
    );
    store.limiter(|host| &mut host.limits);
    let ended = pre.instantiate(&mut store).and_then(|instance| {
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call(&mut store, ())
    });
    Ok(match ended {
        Ok(()) => Outcome::Exited(0),
        Err(err) => store.data().limits.explain(outcome::classify(err)),
    })
}
