//! The inner wall: wasmtime running a guest with WASI capabilities only.
//!
//! A run is a straight line in two calls: [`load`] (engine → machine code,
//! compiled, from the cache, or precompiled → link) and [`Program::run`]
//! (instantiate → call the entry point → sort the ending into an
//! [`Outcome`]). Both must be called only once the outer wall stands:
//! building an engine may start threads, and compiling is the first thing
//! that touches the untrusted bytes with more than a parser.
//!
//! A program loaded for serving ([`Purpose::Serve`]) becomes a [`Proxy`]
//! ([`Program::proxy`]) that runs one request in a fresh instance
//! ([`Proxy::handle`]); the HTTP server around it is [`crate::serve`].

#[allow(unsafe_code)]
mod artifact;
mod call;
mod component;
mod concurrent;
mod core;
mod limits;
mod module;
mod outcome;
mod outgoing;
mod plugin_host;
pub mod proxy;
mod wasi;
mod wit;

pub use artifact::{Artifact, Precompiled};
pub use call::Call;
pub use module::{Module, ModuleError, ModuleKind, Wasi};
pub use outcome::Outcome;
pub use outgoing::Outgoing;
pub use plugin_host::{GUEST_INTERFACE, HostCalls};
pub(crate) use wit::ty_of as wit_type;

pub use proxy::{Proxy, Serving};

use crate::Policy;
use crate::policy::PolicyError;
use crate::say::error_line;

/// Why the engine could not load or run a program. The crate's
/// [`crate::Error`] takes each case as its own (`From`), with its exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The module is invalid or cannot be run here.
    #[error(transparent)]
    Module(#[from] ModuleError),
    /// The policy names something the engine cannot grant (a directory
    /// that cannot be opened, a variable that is not UTF-8).
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The engine could not be set up.
    #[error("cannot set up the engine: {0}")]
    Engine(String),
    /// A call that does not fit the program: not a call, an unknown
    /// export, arguments of the wrong number or type.
    #[error("{0}")]
    Call(String),
}

/// How a guest's run ended, and what it used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// How the guest ended.
    pub outcome: Outcome,
    /// The fuel it burnt, when it ran with `--fuel`.
    pub fuel_consumed: Option<u64>,
}

/// What an engine is built for: running commands and calls (one instance
/// at a time, synchronous), or serving requests (many instances, async,
/// epochs, the pooling allocator sized for them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Purpose {
    /// `run`, `call`, plugins.
    #[default]
    Command,
    /// `run` of a WASI 0.3 command: the component model's async.
    Concurrent,
    /// `serve`, with its limits.
    Serve(Serving),
}

impl Purpose {
    /// The purpose of running `module`: `self`, or [`Purpose::Concurrent`]
    /// for a WASI 0.3 command; serving a WASI 0.3 service needs the
    /// component model's async ([`Serving::component_model_async`]).
    pub fn of(self, module: &Module) -> Purpose {
        match (self, module.wasi()) {
            (Purpose::Command, module::Wasi::Preview3) => Purpose::Concurrent,
            (Purpose::Serve(serving), module::Wasi::Preview3) => Purpose::Serve(Serving {
                component_model_async: true,
                ..serving
            }),
            (purpose, _) => purpose,
        }
    }

    /// [`Purpose::of`], and [`Purpose::Concurrent`] too for any other
    /// component that uses the component model's async (async functions
    /// to call: [`Module::uses_async`], which parses its types, so this
    /// is for where the compiler runs, inside the sandbox).
    pub fn of_code(self, module: &Module) -> Purpose {
        match self.of(module) {
            Purpose::Command if module.uses_async() => Purpose::Concurrent,
            purpose => purpose,
        }
    }
}

/// Where a program's machine code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeSource {
    /// Compiled from the module for this run.
    Compiled,
    /// Read from the compilation cache.
    Cache,
    /// The module is an artifact of `wsandbox compile`.
    Precompiled,
}

impl CodeSource {
    /// Its name in reports: `compiled`, `cache` or `precompiled`.
    pub fn name(self) -> &'static str {
        match self {
            CodeSource::Compiled => "compiled",
            CodeSource::Cache => "cache",
            CodeSource::Precompiled => "precompiled",
        }
    }
}

/// Machine code the engine may use instead of compiling, and where to
/// write the code when it has to compile: the compilation cache as the
/// engine sees it, and the word that a precompiled module may run.
#[derive(Default)]
pub struct CodeCache {
    /// A cached artifact for this module and these engine settings.
    pub entry: Option<Artifact>,
    /// Where a freshly compiled artifact goes: called once with it, says
    /// whether it was written whole (in the cache's own format: the engine
    /// knows nothing of it). Dropped (its file closed) by [`load`] before
    /// it returns, so the guest can never write to it.
    pub sink: Option<ArtifactSink>,
    /// Precompiled modules may run (the policy must allow them too);
    /// without this word the engine refuses them.
    pub precompiled: Option<Precompiled>,
}

/// Writes a freshly compiled artifact somewhere; says whether it was
/// written whole.
pub type ArtifactSink = Box<dyn FnOnce(&[u8]) -> bool>;

impl std::fmt::Debug for CodeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeCache")
            .field("entry", &self.entry)
            .field("sink", &self.sink.is_some())
            .field("precompiled", &self.precompiled)
            .finish()
    }
}

/// A module compiled and linked, ready to run.
pub struct Program {
    engine: wasmtime::Engine,
    linked: Linked,
    /// The module's path, kind and name, without its bytes.
    identity: Module,
    /// Where its machine code came from.
    pub source: CodeSource,
    /// A fresh artifact was written to the cache's sink.
    pub cached: bool,
    /// Where its outgoing requests may go: nowhere until
    /// [`Program::reach_out`].
    outgoing: std::sync::Arc<Outgoing>,
    /// Its engine meters fuel (then a store with no fuel limit of its own
    /// gets all there is).
    metered: bool,
}

/// A linked program of either kind, or a component linked for serving.
enum Linked {
    Core(core::Linked),
    Component(component::Linked),
    Concurrent(concurrent::Linked),
    Proxy(proxy::Linked, Serving),
}

/// Gets `module`'s machine code — from `cache` when its entry is valid for
/// this engine, else by compiling (and then writing it to the cache's
/// sink) — and links it against WASI.
pub fn load(policy: &Policy, module: &Module, cache: CodeCache) -> Result<Program, Error> {
    load_for(policy, module, cache, Purpose::Command)
}

/// [`load`], for `purpose`: a program to serve is linked against
/// `wasi:http` and must be a `wasi:http/proxy` component.
pub fn load_for(
    policy: &Policy,
    module: &Module,
    cache: CodeCache,
    purpose: Purpose,
) -> Result<Program, Error> {
    admit(policy, module)?;
    let started = std::time::Instant::now();
    let metered = policy.fuel.is_some();
    let engine = new_engine(metered, purpose)?;
    tracing::debug!("engine: built ({purpose:?}): {:.3} ms", ms_since(started));
    load_on(&engine, metered, module, cache, purpose, None).map_err(|err| match err {
        // Refused for its async (told from its types only now, on this
        // path alone): no 0.3 entry point made it a 0.3 command.
        Error::Module(ModuleError::Invalid { .. }) if purpose == Purpose::Command && module.uses_async() => {
            unrunnable(
                module,
                "no entry point: it uses the component model's async (WASI 0.3) but exports \
                 no `wasi:cli/run@0.3`; call its functions with `wsandbox call`",
            )
        }
        err => err,
    })
}

/// [`load`], for a plugin whose host program offers it `host`'s
/// functions: the component may import those, and no other function from
/// outside WASI and the plugin world.
pub fn load_plugin(
    policy: &Policy,
    module: &Module,
    cache: CodeCache,
    host: std::sync::Arc<dyn HostCalls>,
) -> Result<Program, Error> {
    admit(policy, module)?;
    if module.uses_async() {
        return Err(unrunnable(
            module,
            "a plugin of the component model's async (WASI 0.3) is not supported yet: \
             call its functions one by one with `wsandbox call`",
        ));
    }
    let metered = policy.fuel.is_some();
    let engine = new_engine(metered, Purpose::Command)?;
    load_on(&engine, metered, module, cache, Purpose::Command, Some(&host))
}

/// The functions of a server of several, each a `wasi:http/proxy`
/// component, loaded on one engine: `serving` sizes its pool (its memory
/// bound is the largest of the functions'), and it meters fuel if a
/// function has a fuel limit. Each function's own limits are its
/// `Serving` and its policy's fuel. A function that cannot be loaded is
/// an error with its index.
pub fn load_served(
    functions: Vec<(&Policy, &Module, CodeCache, Serving)>,
    serving: Serving,
) -> Result<Vec<Program>, (usize, Error)> {
    let metered = functions.iter().any(|(policy, ..)| policy.fuel.is_some());
    let started = std::time::Instant::now();
    let engine = new_engine(metered, Purpose::Serve(serving)).map_err(|e| (0, e))?;
    tracing::debug!(
        "engine: built for {} functions: {:.3} ms",
        functions.len(),
        ms_since(started)
    );
    functions
        .into_iter()
        .enumerate()
        .map(|(index, (policy, module, cache, own))| {
            admit(policy, module)
                .and_then(|()| load_on(&engine, metered, module, cache, Purpose::Serve(own), None))
                .map_err(|e| (index, e))
        })
        .collect()
}

/// Loads `module`'s code on `engine` (built with fuel metering if
/// `metered`, for `purpose`), from `cache` or compiled, and links it.
fn load_on(
    engine: &wasmtime::Engine,
    metered: bool,
    module: &Module,
    mut cache: CodeCache,
    purpose: Purpose,
    host: Option<&std::sync::Arc<dyn HostCalls>>,
) -> Result<Program, Error> {
    let engine = engine.clone();
    let started = std::time::Instant::now();
    let (code, source) = if module.precompiled {
        let Some(word) = cache.precompiled else {
            return Err(unrunnable(
                module,
                "a precompiled module runs only when its caller trusts it (engine::Precompiled)",
            ));
        };
        let code = deserialize(
            &engine,
            module,
            artifact::Vouched::Precompiled(&module.bytes, word),
        )
        .map_err(|err| {
            let metered = match metered {
                true => " with fuel metering",
                false => " without fuel metering",
            };
            let serve = if matches!(purpose, Purpose::Serve(_)) {
                ", for serve"
            } else {
                ""
            };
            match err {
                Error::Module(ModuleError::Invalid { path, reason }) => ModuleError::Invalid {
                    path,
                    reason: format!("{reason} (compile it again{metered}{serve})"),
                }
                .into(),
                other => other,
            }
        })?;
        (code, CodeSource::Precompiled)
    } else if let Some(code) = cache
        .entry
        .take()
        .and_then(|entry| deserialize(&engine, module, artifact::Vouched::Artifact(&entry)).ok())
    {
        // An entry the engine refuses (another wasmtime, other settings,
        // another CPU) is stale: it is compiled afresh below.
        (code, CodeSource::Cache)
    } else {
        (compile_code(&engine, module)?, CodeSource::Compiled)
    };
    tracing::debug!(
        "engine: code of {} ({} bytes) {}: {:.3} ms",
        module.path.display(),
        module.bytes.len(),
        match source {
            CodeSource::Compiled => "compiled",
            CodeSource::Cache => "loaded from the cache",
            CodeSource::Precompiled => "loaded, precompiled",
        },
        ms_since(started)
    );
    let cached = match (source, cache.sink.take()) {
        (CodeSource::Compiled, Some(sink)) => write_artifact(&code, sink),
        _ => false,
    };
    let linked = match (code, purpose) {
        (Code::Core(_), Purpose::Serve(_)) => {
            return Err(unrunnable(
                module,
                "serve needs a wasi:http component, and this is a core module",
            ));
        }
        (Code::Component(compiled), Purpose::Serve(serving)) => {
            Linked::Proxy(proxy::link(&engine, module, &compiled)?, serving)
        }
        (Code::Core(compiled), Purpose::Command) => Linked::Core(core::link(&engine, module, &compiled)?),
        (Code::Core(_), Purpose::Concurrent) => {
            return Err(unrunnable(module, "a core module is not a WASI 0.3 component"));
        }
        (Code::Component(compiled), Purpose::Concurrent) => {
            Linked::Concurrent(concurrent::link(&engine, module, &compiled)?)
        }
        (Code::Component(compiled), Purpose::Command) => {
            Linked::Component(component::link(&engine, module, &compiled, host)?)
        }
    };
    tracing::debug!("engine: linked against WASI");
    Ok(Program {
        engine,
        linked,
        identity: module.clone_without_bytes(),
        source,
        cached,
        outgoing: Default::default(),
        metered,
    })
}

impl Program {
    /// Lets the program's outgoing `wasi:http` requests go where
    /// `outgoing` allows (components only: a core module has no
    /// `wasi:http`).
    pub fn reach_out(&mut self, outgoing: Outgoing) {
        self.outgoing = std::sync::Arc::new(outgoing);
    }

    /// Instantiates the program and runs it as a WASI command under
    /// `policy`, with `args` after its program name (`argv0`, else the
    /// module's file name). Errors mean the guest never started.
    pub fn run(self, policy: &Policy, argv0: Option<&str>, args: &[String]) -> Result<Ended, Error> {
        let name = argv0.map_or_else(|| self.identity.program_name(), str::to_owned);
        let argv: Vec<String> = std::iter::once(name).chain(args.iter().cloned()).collect();
        let wasi = wasi::builder(policy, &argv)?;
        let limits = limits::Limits::new(policy.memory, policy.fuel);
        match self.linked {
            Linked::Core(linked) => core::run(&self.engine, &self.identity, linked, wasi, limits),
            Linked::Component(linked) => {
                component::run(&self.engine, &self.identity, linked, wasi, limits, self.outgoing)
            }
            Linked::Concurrent(linked) => concurrent::run(&self.engine, linked, wasi, limits, self.outgoing),
            Linked::Proxy(..) => Err(served_only(&self.identity)),
        }
    }

    /// The WASI version its engine and linking were chosen for.
    pub fn wasi(&self) -> Wasi {
        match &self.linked {
            Linked::Core(_) => Wasi::Preview1,
            Linked::Component(_) | Linked::Proxy(proxy::Linked::P2(_), _) => Wasi::Preview2,
            Linked::Concurrent(_) | Linked::Proxy(proxy::Linked::P3(_), _) => Wasi::Preview3,
        }
    }

    /// Checks that the program is a WASI command, as [`Program::run`] needs.
    pub fn check_command(&self) -> Result<(), Error> {
        match &self.linked {
            Linked::Core(linked) => core::check_command(&self.identity, linked),
            Linked::Component(linked) => component::check_command(&self.identity, linked),
            Linked::Concurrent(linked) => concurrent::check_command(&self.identity, linked),
            Linked::Proxy(..) => Err(served_only(&self.identity)),
        }
    }

    /// The functions the program exports, with their signatures in WIT
    /// syntax, in the names [`Program::call`] takes: `greet`,
    /// `wsandbox:shapes/values.add` (an interface's functions also answer to
    /// `values.add`).
    pub fn exports(&self) -> Vec<(String, String)> {
        match &self.linked {
            Linked::Core(linked) => linked
                .module()
                .exports()
                .filter_map(|export| match export.ty() {
                    wasmtime::ExternType::Func(func) if callable(export.name()) => {
                        Some((export.name().to_owned(), wit::core_func(&func)))
                    }
                    _ => None,
                })
                .collect(),
            Linked::Component(linked) | Linked::Concurrent(linked) => {
                component_exports(&self.engine, linked.component())
            }
            Linked::Proxy(linked, _) => component_exports(&self.engine, linked.component()),
        }
    }

    /// Instantiates the program under `policy` (its WASI context has no
    /// arguments but the program's name) and makes `call`. Errors mean the
    /// call never started: an unknown export, arguments that do not fit.
    pub fn call(self, policy: &Policy, call: &Call) -> Result<Ended, Error> {
        let wasi = wasi::builder(policy, &[self.identity.program_name()])?;
        let limits = limits::Limits::new(policy.memory, policy.fuel);
        let exports = self.exports();
        match self.linked {
            Linked::Core(linked) => {
                let mut store = core::store(&self.engine, wasi, limits);
                let returned = match linked.instantiate(&mut store) {
                    Ok(instance) => call::core(&mut store, &instance, &exports, call)?,
                    Err(err) => Err(err),
                };
                Ok(limits::Limits::sort(&store, core::limits_of, returned))
            }
            Linked::Component(linked) => {
                let mut store = component::store(&self.engine, wasi, limits, self.outgoing);
                let returned = match linked.instantiate(&mut store) {
                    Ok(instance) => call::component(&mut store, &instance, &exports, call)?,
                    Err(err) => Err(err),
                };
                Ok(limits::Limits::sort(&store, component::limits_of, returned))
            }
            Linked::Concurrent(linked) => {
                concurrent::call(&self.engine, linked, wasi, limits, self.outgoing, &exports, call)
            }
            Linked::Proxy(..) => Err(served_only(&self.identity)),
        }
    }

    /// The program — a `wasi:http/proxy` component loaded for
    /// [`Purpose::Serve`] — ready to answer requests under `policy`, a
    /// fresh instance per request ([`Proxy::handle`]). It starts the
    /// thread that advances the engine's epoch: block the signals that
    /// other threads must not take before.
    pub fn proxy(self, policy: &Policy) -> Result<Proxy, Error> {
        self.proxy_beside(policy, None)
    }

    /// [`Program::proxy`], for a program loaded on the same engine as
    /// `first`'s ([`load_served`]), whose epoch thread it shares.
    pub fn proxy_beside(self, policy: &Policy, first: Option<&Proxy>) -> Result<Proxy, Error> {
        let Linked::Proxy(linked, serving) = self.linked else {
            return Err(unrunnable(
                &self.identity,
                "the program was not loaded for serving",
            ));
        };
        let function = proxy::Function {
            pre: linked,
            policy: policy.clone(),
            program_name: self.identity.program_name(),
            serving,
            outgoing: self.outgoing,
            metered: self.metered,
        };
        Proxy::new(self.engine, function, first)
    }
}

/// The exported functions of a component, with their signatures.
fn component_exports(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
) -> Vec<(String, String)> {
    use wasmtime::component::types::ComponentItem;
    let mut exports = Vec::new();
    for (name, item) in component.component_type().exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => exports.push((name.to_owned(), wit::component_func(&func))),
            ComponentItem::ComponentInstance(instance) => {
                for (func_name, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(func) = item.ty {
                        exports.push((format!("{name}.{func_name}"), wit::component_func(&func)));
                    }
                }
            }
            _ => {}
        }
    }
    exports
}

/// A program loaded for serving was asked to run or be called.
fn served_only(module: &Module) -> Error {
    unrunnable(module, "a program loaded for serving can only be served")
}

/// A component instance that lives between calls: a plugin in its worker.
pub struct Live {
    store: wasmtime::Store<component::Host>,
    instance: wasmtime::component::Instance,
    exports: Vec<(String, String)>,
    fuel: Option<u64>,
}

/// Why a call on a [`Live`] instance failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// The call does not fit: an unknown export, arguments of the wrong
    /// number or type. The instance lives on.
    Call(String),
    /// The guest trapped (memory limit included); the instance is gone.
    Trapped(String),
    /// The call burnt all its fuel; the instance is gone.
    OutOfFuel,
}

impl Program {
    /// Instantiates the program once, to be called many times: a plugin.
    /// It must be a component. Its WASI context is `policy`'s, with the
    /// module's name as its only argument.
    pub fn instantiate(self, policy: &Policy) -> Result<Live, Error> {
        let exports = self.exports();
        let Linked::Component(linked) = self.linked else {
            return Err(unrunnable(
                &self.identity,
                "a plugin must be a component, and this is a core module",
            ));
        };
        let wasi = wasi::builder(policy, &[self.identity.program_name()])?;
        let limits = limits::Limits::new(policy.memory, policy.fuel);
        let mut store = component::store(&self.engine, wasi, limits, self.outgoing);
        let instance = linked
            .instantiate(&mut store)
            .map_err(|e| unrunnable(&self.identity, format!("cannot instantiate: {}", error_line(&e))))?;
        Ok(Live {
            store,
            instance,
            exports,
            fuel: policy.fuel,
        })
    }
}

impl Live {
    /// The exported functions with their signatures, as [`Program::exports`].
    pub fn exports(&self) -> &[(String, String)] {
        &self.exports
    }

    /// Calls the export `name` with `args`, with the policy's fuel (if
    /// any) for this call alone. After a trap or running out of fuel the
    /// instance must not be called again.
    pub fn call(
        &mut self,
        name: &str,
        args: &[wasmtime::component::Val],
    ) -> Result<Vec<wasmtime::component::Val>, CallFailure> {
        self.call_fitting(name, args.to_vec(), |arg, _| Ok(arg))
            .map(|(results, _)| results)
    }

    /// [`Live::call`] with arguments of any form, each made a value of its
    /// parameter's type by `fit` (its error names what does not fit); the
    /// results come with their types.
    #[allow(clippy::type_complexity)]
    pub fn call_fitting<A>(
        &mut self,
        name: &str,
        args: Vec<A>,
        fit: impl Fn(A, &wasmtime::component::types::Type) -> Result<wasmtime::component::Val, String>,
    ) -> Result<
        (
            Vec<wasmtime::component::Val>,
            Vec<wasmtime::component::types::Type>,
        ),
        CallFailure,
    > {
        self.refuel();
        match call::invoke_component_with(&mut self.store, &self.instance, &self.exports, name, args, fit) {
            Err(why) => Err(CallFailure::Call(why)),
            Ok(returned) => returned.map_err(|err| self.failure(err)),
        }
    }

    /// The plugin world's `handle`, typed: `input` in, the output or the
    /// plugin's refusal out.
    pub fn handle(&mut self, input: Vec<u8>) -> Result<Result<Vec<u8>, String>, CallFailure> {
        self.refuel();
        match call::invoke_handle(&mut self.store, &self.instance, &self.exports, input) {
            Err(why) => Err(CallFailure::Call(why)),
            Ok(returned) => returned.map_err(|err| self.failure(err)),
        }
    }

    fn refuel(&mut self) {
        if let Some(fuel) = self.fuel {
            let _ = self.store.set_fuel(fuel);
        }
    }

    /// What an error that ended a call means.
    fn failure(&self, err: wasmtime::Error) -> CallFailure {
        match limits::Limits::sort(&self.store, component::limits_of, Err(err)).outcome {
            Outcome::OutOfFuel => CallFailure::OutOfFuel,
            Outcome::Trapped { message, .. } => CallFailure::Trapped(message),
            other => CallFailure::Trapped(format!("{other:?}")),
        }
    }
}

/// Loads `module` under `policy` without a cache, on the engine its WASI
/// version needs ([`load_for`]), and runs it ([`Program::run`]).
pub fn run(policy: &Policy, module: &Module, args: &[String]) -> Result<Ended, Error> {
    let program = load_for(policy, module, CodeCache::default(), Purpose::Command.of(module))?;
    program.check_command()?;
    program.run(policy, None, args)
}

/// Compiles `module` with the engine `run` (or `serve`, for `purpose`)
/// uses, with fuel metering when `metered`, as a run with `--fuel` needs,
/// and returns the artifact `wsandbox compile` writes.
pub fn compile(module: &Module, metered: bool, purpose: Purpose) -> Result<Vec<u8>, Error> {
    compilable(module)?;
    let engine = new_engine(metered, purpose)?;
    compile_code(&engine, module)?
        .serialize()
        .map_err(|e| Error::Engine(error_line(&e)))
}

/// Refuses what cannot be compiled again: an artifact of `wsandbox compile`.
pub fn compilable(module: &Module) -> Result<(), Error> {
    if module.precompiled {
        return Err(invalid_reason(module, "already a precompiled artifact"));
    }
    Ok(())
}

/// Compiles `module` with the engine `run` uses, without running it: an
/// error means `run` would refuse it as invalid.
pub fn check(module: &Module) -> Result<(), Error> {
    compilable(module)?;
    let engine = new_engine(false, Purpose::Command)?;
    compile_code(&engine, module).map(drop)
}

/// Refuses a precompiled artifact unless the policy trusts them.
pub fn admit(policy: &Policy, module: &Module) -> Result<(), Error> {
    if module.precompiled && !policy.allow_precompiled {
        return Err(unrunnable(
            module,
            format!(
                "a precompiled artifact is machine code run as given: trust it with {}",
                crate::policy::Setting::AllowPrecompiled
            ),
        ));
    }
    Ok(())
}

/// Whether a core module's function export is one to call: not the
/// plumbing that toolchains export for the runtime — `_initialize` (which
/// `call` runs first, once), the canonical ABI's `cabi_realloc` and
/// `cabi_post_*`, and the linker's `__wasm_*` functions.
fn callable(name: &str) -> bool {
    !(name == "_initialize" || name.starts_with("cabi_") || name.starts_with("__wasm_"))
}

/// What the engine of a run of `metered`, for `purpose`, is made from, as
/// far as the supervisor can tell without building one: the versions of
/// wsandbox and wasmtime, the target and the CPU features Cranelift may
/// use, fuel metering and the purpose. The cache remembers the engine's
/// own hash ([`compatibility_hash`]) under it, so that the engine is built
/// only inside the walls once a host's first run has hashed it.
pub fn host_settings(metered: bool, purpose: Purpose) -> String {
    format!(
        "wsandbox {}; wasmtime {}; {}-{}; cpu {}; fuel metering {metered}{}",
        env!("CARGO_PKG_VERSION"),
        env!("WSANDBOX_WASMTIME_VERSION"),
        std::env::consts::ARCH,
        std::env::consts::OS,
        cpu_features(),
        match purpose {
            Purpose::Serve(Serving {
                component_model_async: true,
                ..
            }) => "; epochs; component-model-async",
            Purpose::Serve(_) => "; epochs",
            Purpose::Concurrent => "; component-model-async",
            Purpose::Command => "",
        }
    )
}

/// The CPU features Cranelift's code for this host may depend on.
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let features = [
            ("sse3", has!("sse3")),
            ("ssse3", has!("ssse3")),
            ("sse4.1", has!("sse4.1")),
            ("sse4.2", has!("sse4.2")),
            ("popcnt", has!("popcnt")),
            ("avx", has!("avx")),
            ("avx2", has!("avx2")),
            ("fma", has!("fma")),
            ("bmi1", has!("bmi1")),
            ("bmi2", has!("bmi2")),
            ("lzcnt", has!("lzcnt")),
            ("avx512f", has!("avx512f")),
            ("avx512vl", has!("avx512vl")),
            ("avx512dq", has!("avx512dq")),
            ("avx512bitalg", has!("avx512bitalg")),
            ("avx512vbmi", has!("avx512vbmi")),
        ];
        let present: Vec<&str> = features
            .iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect();
        present.join(",")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        String::from("native")
    }
}

/// wasmtime's own hash of everything the engine of a run of `metered`,
/// for `purpose`, compiles with (`Engine::precompile_compatibility_hash`:
/// its version, the target and the CPU features Cranelift uses, its
/// tunables and wasm features — fuel metering, epochs and the component
/// model's async among them), in hex: what the cache's key is made of, so
/// that an entry is never stale for the run that finds it (wasmtime checks
/// again when it loads one).
///
/// It builds an engine to hash: the one this process's next run of the
/// same settings then uses ([`new_engine`] takes it), so that a run builds
/// one engine, not two. The cache remembers the hash ([`host_settings`]),
/// so a host's first run of each setting is the only one that hashes.
pub fn compatibility_hash(metered: bool, purpose: Purpose) -> Result<String, Error> {
    use std::hash::Hash as _;
    /// `std::hash::Hasher` into BLAKE3, whose output does not change with
    /// Rust's version as `DefaultHasher`'s may.
    struct Blake(blake3::Hasher);
    impl std::hash::Hasher for Blake {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            let hash = self.0.finalize();
            u64::from_le_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default())
        }
    }
    let engine = new_engine(metered, purpose)?;
    // A server's engine reserves its pool: it is built for the hash alone.
    if !matches!(purpose, Purpose::Serve(_)) {
        *BUILT.lock().unwrap_or_else(|e| e.into_inner()) = Some(((metered, purpose), engine.clone()));
    }
    let mut hasher = Blake(blake3::Hasher::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    Ok(hasher.0.finalize().to_hex().to_string())
}

/// The engine [`compatibility_hash`] built for its hash, for [`new_engine`] to take.
static BUILT: std::sync::Mutex<Option<((bool, Purpose), wasmtime::Engine)>> = std::sync::Mutex::new(None);

fn ms_since(start: std::time::Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// The engine every command shares: Cranelift, wasm backtraces without
/// DWARF details, fuel metering only when asked for (it slows every loop);
/// for serving, also async, epochs and the pooling allocator.
fn new_engine(metered: bool, purpose: Purpose) -> Result<wasmtime::Engine, Error> {
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, engine)) = built.take_if(|(settings, _)| *settings == (metered, purpose)) {
        return Ok(engine);
    }
    drop(built);
    let mut config = wasmtime::Config::new();
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    config.consume_fuel(metered);
    match &purpose {
        Purpose::Serve(serving) => {
            proxy::configure(&mut config, serving);
            if serving.component_model_async {
                config.wasm_component_model_async(true);
            } else {
                config.concurrency_support(false);
            }
        }
        // The component model's async, for WASI 0.3, only where it is
        // used: other stores keep no state for it.
        Purpose::Concurrent => {
            config.wasm_component_model_async(true);
        }
        Purpose::Command => {
            config.concurrency_support(false);
        }
    }
    wasmtime::Engine::new(&config).map_err(|e| Error::Engine(error_line(&e)))
}

/// Machine code of either kind.
enum Code {
    Core(wasmtime::Module),
    Component(wasmtime::component::Component),
}

impl Code {
    /// The artifact wasmtime writes for this code.
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Code::Core(compiled) => compiled.serialize(),
            Code::Component(compiled) => compiled.serialize(),
        }
    }
}

fn compile_code(engine: &wasmtime::Engine, module: &Module) -> Result<Code, Error> {
    match module.kind {
        ModuleKind::Core => wasmtime::Module::new(engine, &module.bytes).map(Code::Core),
        ModuleKind::Component => {
            wasmtime::component::Component::new(engine, &module.bytes).map(Code::Component)
        }
    }
    .map_err(|e| invalid(module, e))
}

/// Loads an artifact of `module`'s kind that someone vouched for.
fn deserialize(
    engine: &wasmtime::Engine,
    module: &Module,
    bytes: artifact::Vouched<'_>,
) -> Result<Code, Error> {
    artifact::deserialize(engine, module.kind, bytes)
        .map_err(|e| invalid_reason(module, format!("incompatible artifact: {}", error_line(&e))))
}

/// Writes `code` to the cache's sink; a failure only means the next run
/// compiles again.
fn write_artifact(code: &Code, sink: ArtifactSink) -> bool {
    code.serialize().is_ok_and(|artifact| sink(&artifact))
}

/// An error about `module`'s contents.
fn invalid(module: &Module, err: wasmtime::Error) -> Error {
    invalid_reason(module, error_line(&err))
}

fn invalid_reason(module: &Module, reason: impl Into<String>) -> Error {
    ModuleError::Invalid {
        path: module.path.clone(),
        reason: reason.into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_key_is_wasmtimes_hash_of_each_engine() {
        let plain = compatibility_hash(false, Purpose::Command).unwrap();
        assert_eq!(
            compatibility_hash(false, Purpose::Command).unwrap(),
            plain,
            "the same engine"
        );
        assert_eq!(plain.len(), 64);
        let metered = compatibility_hash(true, Purpose::Command).unwrap();
        let concurrent = compatibility_hash(false, Purpose::Concurrent).unwrap();
        let served = compatibility_hash(false, Purpose::Serve(Serving::default())).unwrap();
        let all = [&plain, &metered, &concurrent, &served];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b, "engines that compile differently share no key");
            }
        }
        // What the hash is remembered under tells the same engines apart.
        assert_ne!(
            host_settings(false, Purpose::Command),
            host_settings(true, Purpose::Command)
        );
        assert_ne!(
            host_settings(false, Purpose::Command),
            host_settings(false, Purpose::Concurrent)
        );
        // The engine hashed is the one the next build of its settings takes.
        let _ = compatibility_hash(false, Purpose::Concurrent).unwrap();
        let hashed = BUILT.lock().unwrap().as_ref().map(|(of, _)| *of);
        assert_eq!(hashed, Some((false, Purpose::Concurrent)));
        new_engine(false, Purpose::Concurrent).unwrap();
        assert!(BUILT.lock().unwrap().is_none(), "taken, not built again");
    }
}
