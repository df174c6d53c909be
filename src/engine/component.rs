//! Running a component as a WASI preview 2 command (`wasi:cli/run`).

use super::limits::Limits;
use super::{Module, Outcome, invalid, outcome, unrunnable};
use crate::Error;
use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The store's data for a component guest.
struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: Limits,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Compiles, links and instantiates `module`, then calls `wasi:cli/run`,
/// with at most `memory` bytes of linear memory per memory.
pub(super) fn run(
    engine: &Engine,
    module: &Module,
    mut wasi: WasiCtxBuilder,
    memory: Option<u64>,
) -> Result<Outcome, Error> {
    let component = Component::new(engine, &module.bytes).map_err(|e| invalid(module, e))?;
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| Error::Engine(crate::error::one_line(&e)))?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| unrunnable(module, crate::error::one_line(&e)))?;
    let pre = CommandPre::new(pre).map_err(|e| {
        unrunnable(
            module,
            format!(
                "no entry point: the component does not export `wasi:cli/run` ({})",
                crate::error::one_line(&e)
            ),
        )
    })?;
    let host = Host {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limits: Limits::new(memory),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    let ended = pre
        .instantiate(&mut store)
        .and_then(|command| command.wasi_cli_run().call_run(&mut store));
    Ok(match ended {
        Ok(Ok(())) => Outcome::Exited(0),
        // `run` returning `err` is the component's way to fail without a code.
        Ok(Err(())) => Outcome::Exited(1),
        Err(err) => store.data().limits.explain(outcome::classify(err)),
    })
}
