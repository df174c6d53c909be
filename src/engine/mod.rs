//! The inner wall: wasmtime running a guest with WASI capabilities only.
//!
//! [`run`] is a straight line: engine → compile → link → instantiate → call
//! the entry point → sort the ending into an [`Outcome`]. It must be called
//! only once the outer wall stands, because building an engine may start
//! threads.

mod component;
mod core;
mod limits;
mod module;
mod outcome;
mod wasi;

pub use module::{Module, ModuleError, ModuleKind};
pub use outcome::Outcome;

use crate::{Error, Policy};

/// Runs `module` as a WASI command under `policy`, with `args` after its
/// program name. Returns how the guest ended; errors mean it never started.
pub fn run(policy: &Policy, module: &Module, args: &[String]) -> Result<Outcome, Error> {
    let engine = new_engine()?;
    let argv: Vec<String> = std::iter::once(module.program_name())
        .chain(args.iter().cloned())
        .collect();
    let wasi = wasi::builder(policy, &argv)?;
    match module.kind {
        ModuleKind::Core => core::run(&engine, module, wasi, policy.memory),
        ModuleKind::Component => component::run(&engine, module, wasi, policy.memory),
    }
}

/// Compiles `module` with the engine `run` uses, without running it: an
/// error means `run` would refuse it as invalid.
pub fn check(module: &Module) -> Result<(), Error> {
    let engine = new_engine()?;
    match module.kind {
        ModuleKind::Core => wasmtime::Module::new(&engine, &module.bytes).map(drop),
        ModuleKind::Component => wasmtime::component::Component::new(&engine, &module.bytes).map(drop),
    }
    .map_err(|e| invalid(module, e))
}

/// The engine every command shares: Cranelift, wasm backtraces without
/// DWARF details.
fn new_engine() -> Result<wasmtime::Engine, Error> {
    let mut config = wasmtime::Config::new();
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    wasmtime::Engine::new(&config).map_err(|e| Error::Engine(crate::error::one_line(&e)))
}

/// An error about `module`'s contents.
fn invalid(module: &Module, err: wasmtime::Error) -> Error {
    ModuleError::Invalid {
        path: module.path.clone(),
        reason: crate::error::one_line(&err),
    }
    .into()
}

/// An error about linking `module` or finding its entry point.
fn unrunnable(module: &Module, reason: impl std::fmt::Display) -> Error {
    ModuleError::Unrunnable {
        path: module.path.clone(),
        reason: reason.to_string(),
    }
    .into()
}
