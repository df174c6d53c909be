//! Running a component as a WASI preview 2 command (`wasi:cli/run`).

use super::limits::Limits;
use super::{Ended, Module, unrunnable};
use crate::Error;
use wasmtime::Engine;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::p2::bindings::sync::CommandPre;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// The store's data for a component guest.
pub(super) struct Host {
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

/// A component linked against WASI preview 2 that exports `wasi:cli/run`.
pub(super) type Linked = CommandPre<Host>;

/// Links `component` against WASI preview 2 and finds `wasi:cli/run`.
pub(super) fn link(engine: &Engine, module: &Module, component: &Component) -> Result<Linked, Error> {
    let mut linker: Linker<Host> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| Error::Engine(crate::error::one_line(&e)))?;
    let pre = linker
        .instantiate_pre(component)
        .map_err(|e| unrunnable(module, crate::error::one_line(&e)))?;
    CommandPre::new(pre).map_err(|e| {
        unrunnable(
            module,
            format!(
                "no entry point: the component does not export `wasi:cli/run` ({})",
                crate::error::one_line(&e)
            ),
        )
    })
}

/// Instantiates `linked` under `limits` and calls `wasi:cli/run`.
pub(super) fn run(
    engine: &Engine,
    linked: Linked,
    mut wasi: WasiCtxBuilder,
    limits: Limits,
) -> Result<Ended, Error> {
    let host = Host {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        limits,
    };
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limits);
    Limits::fuel_up(&mut store, |host| &host.limits);
    let ended = linked
        .instantiate(&mut store)
        .and_then(|command| command.wasi_cli_run().call_run(&mut store))
        // `run` returning `err` is the component's way to fail without a code.
        .map(|result| if result.is_ok() { 0 } else { 1 });
    Ok(Limits::sort(&store, |host| &host.limits, ended))
}
