//! `serve`'s functions through the pipeline. Outside the walls, each
//! route's policy is made and resolved, its component read and its cache
//! entry opened ([`plan`]), and the sandbox's policy gets the grants and
//! rules of all of them — the outer wall holds their union. Inside, the
//! functions are loaded on one engine, each with its own grants and rules
//! (the inner wall holds each one's), and handed to the server
//! ([`load`]).
//!
//! `serve COMPONENT` is one route, `/`, under the policy as given; a
//! policy file's `[[serve.routes]]` are several, and an error of one of
//! them names it (`route /api: ...`).

use super::{CacheChoice, Sink, open_cache};
use crate::engine::{self, CodeCache, Module, Outgoing, Precompiled, Program, Purpose, Serving, Wasi};
use crate::policy::{DirGrant, Route, RoutePrefix};
use crate::serve::Function;
use crate::{Error, Policy};
use std::path::Path;

/// A function of the server, made ready outside the walls.
pub(super) struct Planned {
    prefix: RoutePrefix,
    /// Its instances' policy: resolved, the host's environment taken.
    policy: Policy,
    /// Where its grants are in the sandbox's policy, in order.
    grants: Vec<usize>,
    module: Module,
    code_cache: CodeCache,
    /// A cache entry's file was reserved for its code, and kept.
    pub(super) has_sink: bool,
    /// Its own limits.
    serving: Serving,
    /// Its errors name its route.
    named: bool,
}

impl Planned {
    /// Its component.
    pub(super) fn module(&self) -> &Module {
        &self.module
    }

    /// `error`, naming this function's route if the policy named routes.
    fn name(&self, error: impl Into<Error>) -> Error {
        named(&self.prefix, self.named, error)
    }
}

fn named(prefix: &RoutePrefix, named: bool, error: impl Into<Error>) -> Error {
    match named {
        true => Error::Route {
            route: prefix.to_string(),
            error: Box::new(error.into()),
        },
        false => error.into(),
    }
}

/// The server's functions: the policy's routes, or `component` alone at
/// `/` (the policy then being its own).
pub(super) fn routes(policy: &Policy, component: &Path) -> (Vec<Route>, bool) {
    match policy.serve.routes.is_empty() {
        true => {
            let root = Route {
                prefix: RoutePrefix::try_from("/".to_string()).expect("/ is a prefix"),
                component: component.to_path_buf(),
                timeout: None,
                memory: None,
                fuel: None,
                dirs: Vec::new(),
                env: Vec::new(),
                allow_http: Vec::new(),
            };
            (vec![root], false)
        }
        false => (policy.serve.routes.clone(), true),
    }
}

/// Makes `routes` ready, each under `policy` changed by its own settings
/// (before the serve's limits were taken out of it: they are the routes'
/// defaults), with `max_concurrent` instances at once in all; `named`
/// routes name themselves in errors.
pub(super) fn plan(
    policy: &Policy,
    routes: Vec<Route>,
    named: bool,
    max_concurrent: u32,
) -> Result<Vec<Planned>, Error> {
    let mut planned = Vec::with_capacity(routes.len());
    for route in routes {
        let fail = |error: Error| self::named(&route.prefix, named, error);
        let mut own = policy.for_route(&route);
        own.resolve().map_err(|e| fail(e.into()))?;
        own.take_host_env().map_err(|e| fail(e.into()))?;
        let module = Module::load(&route.component).map_err(|e| fail(e.into()))?;
        engine::admit(&own, &module).map_err(|e| fail(e.into()))?;
        let serving = Serving {
            max_concurrent,
            timeout: own.timeout,
            memory: own.memory,
            component_model_async: module.wasi() == Wasi::Preview3,
        };
        planned.push(Planned {
            prefix: route.prefix,
            policy: own,
            grants: Vec::new(),
            module,
            code_cache: CodeCache::default(),
            has_sink: false,
            serving,
            named,
        });
    }
    Ok(planned)
}

/// What the sandbox holds for `functions`: `sandbox` (the server's
/// policy, resolved, its per-request limits taken out) gets the union of
/// their grants and of their rules; each function learns where its
/// grants are in it.
pub(super) fn join(sandbox: &mut Policy, functions: &mut [Planned]) {
    sandbox.dirs.clear();
    sandbox.allow_http.clear();
    for function in functions.iter_mut() {
        function.grants = function
            .policy
            .dirs
            .iter()
            .map(|dir| index_of(&mut sandbox.dirs, dir))
            .collect();
        for rule in &function.policy.allow_http {
            if !sandbox.allow_http.contains(rule) {
                sandbox.allow_http.push(rule.clone());
            }
        }
    }
}

/// Where `dir` (its host path and access) is in `dirs`, added if missing.
fn index_of(dirs: &mut Vec<DirGrant>, dir: &DirGrant) -> usize {
    match dirs
        .iter()
        .position(|d| d.host == dir.host && d.access == dir.access)
    {
        Some(index) => index,
        None => {
            dirs.push(dir.clone());
            dirs.len() - 1
        }
    }
}

/// The engine's limits for `functions`: the pool sized for
/// `max_concurrent` instances as large as the largest function's memory
/// (unbounded if one has none); the drain bounded by the longest timeout
/// (unbounded if one has none); the component model's async if a function
/// is a WASI 0.3 service.
pub(super) fn engine_serving(functions: &[Planned], max_concurrent: u32) -> Serving {
    let servings = || functions.iter().map(|f| f.serving);
    Serving {
        max_concurrent,
        timeout: servings().try_fold(std::time::Duration::ZERO, |most, s| Some(most.max(s.timeout?))),
        memory: servings().try_fold(0, |most, s| Some(most.max(s.memory?))),
        component_model_async: servings().any(|s| s.component_model_async),
    }
}

/// Opens each function's cache entry (and reserves a file for a new one)
/// while the host's files are in sight; returns the reserved files, in
/// order.
pub(super) fn open_caches(
    functions: &mut [Planned],
    choice: &CacheChoice,
    sandbox: &Policy,
    purpose: Purpose,
) -> Vec<Sink> {
    let metered = functions.iter().any(|f| f.policy.fuel.is_some());
    let mut sinks = Vec::new();
    for function in functions.iter_mut() {
        let (mut code_cache, sink) = open_cache(choice, &sandbox.dirs, metered, &function.module, purpose);
        if function.policy.allow_precompiled {
            code_cache.precompiled = Some(Precompiled::allowed_by_policy());
        }
        function.code_cache = code_cache;
        function.has_sink = sink.is_some();
        sinks.extend(sink);
    }
    sinks
}

/// Inside the walls: each function's grants moved to where the sandbox
/// has them (`sandbox`, after the wall), its code's sink taken from
/// `sinks` (in order), and all loaded on one engine sized by `serving`;
/// each reaches out through `outgoing` within its own rules. Returns the
/// functions, and how each one's code was loaded.
pub(super) fn load(
    functions: Vec<Planned>,
    sandbox: &Policy,
    sinks: &mut impl Iterator<Item = engine::ArtifactSink>,
    serving: Serving,
    outgoing: Option<&Outgoing>,
) -> Result<Vec<(Function, super::Loaded)>, Error> {
    let mut functions = functions;
    for function in &mut functions {
        for (dir, &index) in function.policy.dirs.iter_mut().zip(&function.grants) {
            dir.host = sandbox.dirs[index].host.clone();
        }
        if function.has_sink {
            function.code_cache.sink = sinks.next();
        }
    }
    let loading = functions
        .iter_mut()
        .map(|f| {
            let cache = std::mem::take(&mut f.code_cache);
            (&f.policy, &f.module, cache, f.serving)
        })
        .collect();
    let programs = match engine::load_served(loading, serving) {
        Ok(programs) => programs,
        Err((index, error)) => return Err(functions[index].name(error)),
    };
    Ok(functions
        .into_iter()
        .zip(programs)
        .map(|(function, mut program): (Planned, Program)| {
            if let Some(outgoing) = outgoing {
                program.reach_out(outgoing.only(function.policy.allow_http.clone()));
            }
            let loaded = super::Loaded {
                code: program.source,
                written: program.cached,
                wasi: Some(program.wasi()),
            };
            let function = Function {
                prefix: function.prefix,
                program,
                policy: function.policy,
            };
            (function, loaded)
        })
        .collect())
}
