//! Running a core module as a WASI preview 1 command.

use super::{Module, Outcome, invalid, outcome, unrunnable};
use crate::Error;
use wasmtime::{Engine, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;

/// Compiles, links and instantiates `module`, then calls `_start`.
pub(super) fn run(engine: &Engine, module: &Module, mut wasi: WasiCtxBuilder) -> Result<Outcome, Error> {
    let compiled = wasmtime::Module::new(engine, &module.bytes).map_err(|e| invalid(module, e))?;
    if !matches!(compiled.get_export("_start"), Some(wasmtime::ExternType::Func(_))) {
        return Err(unrunnable(
            module,
            "no entry point: the module exports no `_start` function (is it a WASI command?)",
        ));
    }
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)
        .map_err(|e| Error::Engine(crate::error::one_line(&e)))?;
    let pre = linker
        .instantiate_pre(&compiled)
        .map_err(|e| unrunnable(module, crate::error::one_line(&e)))?;
    let mut store = Store::new(engine, wasi.build_p1());
    let ended = pre.instantiate(&mut store).and_then(|instance| {
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
        start.call(&mut store, ())
    });
    Ok(match ended {
        Ok(()) => Outcome::Exited(0),
        Err(err) => outcome::classify(err),
    })
}
