//! wsandbox runs untrusted WebAssembly behind two walls.
//!
//! - The **outer wall** is the kernel ([`wall`]): before it touches the
//!   guest, the process isolates itself in fresh namespaces with an empty
//!   root holding only what was granted, then drops every privilege and
//!   installs Landlock and a seccomp allow-list.
//! - The **inner wall** is WASI ([`engine`]): wasmtime runs the guest with
//!   capabilities only — preopened directories, explicit environment and
//!   arguments, limits on memory and fuel.
//!
//! A run is: a [`Policy`] (plain data) and an [`engine::Module`] loaded from
//! disk; [`wall::enter`] builds the outer wall; [`engine::load`] gets the
//! machine code (compiled, from the [`cache`], or precompiled) and
//! [`engine::Program::run`] or [`engine::Program::call`] returns how it
//! ended. A `wasi:http/proxy` component is served, a fresh instance per
//! request, by [`serve::serve`]. Host programs keep a plugin in a
//! sandboxed worker with [`plugin::Plugin`].

#![warn(missing_docs)]
// Raw syscalls and their `unsafe` blocks live in `sys`, and the two
// deserializations of machine code in `engine::artifact`: the only modules
// allowed them. One contract crosses that line: the sandbox is a copy of
// the caller's process in which the caller's descriptors are closed, so
// entering the wall is `unsafe` (`wall::enter`, its child steps), and its
// two callers (`launch`, and `launch::publisher`'s helper) say, each at
// the one statement allowed, why nothing that owned one runs again.
#![deny(unsafe_code)]

pub mod cache;
pub mod engine;
pub mod error;
pub mod launch;
pub mod plugin;
pub mod policy;
pub mod say;
pub mod serve;
#[allow(unsafe_code)]
pub mod sys;
pub mod wall;

pub use error::Error;
pub use policy::Policy;

/// The README's Rust examples, compiled as doctests (its other examples are
/// run by `tests/all/readme.rs`).
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
