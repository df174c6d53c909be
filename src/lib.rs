//! wsandbox runs untrusted WebAssembly behind two walls.
//!
//! - The **outer wall** is the kernel: before it touches the guest, the host
//!   process isolates itself in fresh namespaces with an empty root holding
//!   only what was granted (see `DESIGN.md`; it slots in before the engine).
//! - The **inner wall** is WASI: wasmtime runs the guest with capabilities
//!   only — preopened directories, explicit environment and arguments.
//!
//! A run is: a [`Policy`] (plain data) and a [`engine::Module`] loaded from
//! disk go into [`engine::run`], which returns an [`engine::Outcome`].

pub mod cache;
pub mod engine;
pub mod error;
pub mod plugin;
pub mod policy;
pub mod report;
pub mod shell;

pub use error::Error;
pub use policy::Policy;
