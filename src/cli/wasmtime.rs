//! wasmtime's own options, read as wsandbox's: a command line written for
//! `wasmtime run` (or `serve`) works here with the same meaning — the
//! same [`Policy`] its wsandbox spelling gives — or is refused with one
//! line that names what to write instead. Nothing is accepted and then
//! ignored. The README's table lists each option and what becomes of it.

use clap::Args;
use wsandbox::policy::{Access, DirGrant, EnvVar, Policy, parse_duration, parse_size};

/// wasmtime's options, for a command line written for wasmtime.
#[derive(Debug, Args)]
pub struct WasmtimeOptions {
    /// wasmtime's wasm options: timeout=DURATION (--timeout),
    /// max-memory-size=SIZE (--memory), fuel=N (--fuel); the proposals
    /// wsandbox's engine has by default (simd, tail-call, ...) may be named;
    /// the rest are refused with what to use instead
    #[arg(short = 'W', long = "wasm", value_name = "KEY[=VAL[,..]]")]
    wasm: Vec<String>,

    /// wasmtime's WASI options: cli, http (requests go only where
    /// --allow-http allows), inherit-env (every host variable, as --env
    /// NAME); network options are refused with --allow-http/--allow-tcp
    #[arg(short = 'S', long = "wasi", value_name = "KEY[=VAL[,..]]")]
    wasi: Vec<String>,

    /// wasmtime's optimization options: refused (wsandbox tunes its engine)
    #[arg(short = 'O', long = "optimize", value_name = "KEY[=VAL[,..]]", hide = true)]
    optimize: Vec<String>,

    /// wasmtime's codegen options: cache=n is --no-cache; others refused
    #[arg(short = 'C', long = "codegen", value_name = "KEY[=VAL[,..]]", hide = true)]
    codegen: Vec<String>,

    /// wasmtime's debug options: refused
    #[arg(short = 'D', long = "debug", value_name = "KEY[=VAL[,..]]", hide = true)]
    debug: Vec<String>,

    /// wasmtime's recording options: refused
    #[arg(short = 'R', long = "record", value_name = "KEY[=VAL[,..]]", hide = true)]
    record: Vec<String>,

    /// wasmtime's --target: refused (wsandbox compiles for this host)
    #[arg(long, value_name = "TARGET", hide = true)]
    target: Option<String>,

    /// wasmtime's --profile: refused
    #[arg(long, value_name = "STRATEGY", hide = true)]
    profile: Option<String>,

    /// wasmtime's --preload: refused
    #[arg(long, value_name = "NAME=MODULE_PATH", hide = true)]
    preload: Vec<String>,

    /// wasmtime's --gdbstub: refused
    #[arg(short = 'g', long, value_name = "[ADDR:]PORT", hide = true)]
    gdbstub: Option<String>,
}

/// A wasmtime option wsandbox does not take, with what to use instead: a
/// usage error (exit 2).
fn refused(option: &str, instead: &str) -> wsandbox::Error {
    wsandbox::Error::Usage(format!("{option}: {instead}"))
}

/// `KEY[=VAL],KEY[=VAL]...` of one `-W`/`-S`/`-C` value.
fn pairs(values: &[String]) -> impl Iterator<Item = (&str, Option<&str>)> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim())),
            None => (pair.trim(), None),
        })
}

/// A boolean as wasmtime reads it: nothing, `y`, `yes`, `true`, or `n`,
/// `no`, `false`.
fn yes(option: &str, value: Option<&str>) -> Result<bool, wsandbox::Error> {
    match value {
        None | Some("y" | "yes" | "true") => Ok(true),
        Some("n" | "no" | "false") => Ok(false),
        Some(other) => Err(wsandbox::Error::Usage(format!(
            "{option}={other}: not a yes or no (y, yes, true; n, no, false)"
        ))),
    }
}

/// The value of a `KEY=VAL` option that needs one.
fn needed<'a>(option: &str, value: Option<&'a str>) -> Result<&'a str, wsandbox::Error> {
    value.ok_or_else(|| wsandbox::Error::Usage(format!("{option}: needs a value ({option}=...)")))
}

/// The wasm proposals wsandbox's engine has, as wasmtime's are on by
/// default: `-W KEY` asks for what is there anyway.
const PROPOSALS_ON: [&str; 12] = [
    "bulk-memory",
    "multi-value",
    "reference-types",
    "simd",
    "relaxed-simd",
    "tail-call",
    "multi-memory",
    "extended-const",
    "memory64",
    "function-references",
    "component-model",
    "component-model-async",
];

/// The proposals and engine features wsandbox's engine does not have: `-W
/// KEY=n` asks for what is so anyway.
const PROPOSALS_OFF: [&str; 23] = [
    "all-proposals",
    "relaxed-simd-deterministic",
    "threads",
    "shared-memory",
    "shared-everything-threads",
    "component-model-more-async-builtins",
    "component-model-async-stackful",
    "component-model-threading",
    "component-model-error-context",
    "component-model-gc",
    "component-model-map",
    "component-model-memory64",
    "component-model-fixed-length-lists",
    "component-model-implements",
    "stack-switching",
    "gc",
    "gc-support",
    "custom-page-sizes",
    "wide-arithmetic",
    "branch-hinting",
    "exceptions",
    "nan-canonicalization",
    "wmemcheck",
];

/// The engine tunings wasmtime's `-W` offers that wsandbox sets itself.
const ENGINE_OWN: [&str; 12] = [
    "max-wasm-stack",
    "async-stack-size",
    "async-stack-zeroing",
    "epoch-interruption",
    "concurrency-support",
    "max-table-elements",
    "max-instances",
    "max-tables",
    "max-memories",
    "unknown-exports-allow",
    "unknown-imports-trap",
    "unknown-imports-default",
];

/// wasmtime's WASI proposals wsandbox does not offer: `-S KEY=n` is so
/// anyway.
const WASI_ABSENT: [&str; 11] = [
    "nn",
    "threads",
    "config",
    "keyvalue",
    "tls",
    "listenfd",
    "preview0",
    "cli-exit-with-code",
    "network-error-code",
    "udp",
    "inherit-network",
];

impl WasmtimeOptions {
    /// Puts what these options mean into `policy`, or refuses the first
    /// one wsandbox does not take. `-W`'s limits and `-S inherit-env` go
    /// under the wsandbox options given beside them, which win; `rules`
    /// says whether there are `--allow-http` and `--allow-tcp` rules
    /// (given beside them, or in `policy`).
    pub fn apply(&self, policy: &mut Policy, rules: Rules) -> Result<(), wsandbox::Error> {
        for (key, value) in pairs(&self.wasm) {
            apply_wasm(policy, key, value)?;
        }
        for (key, value) in pairs(&self.wasi) {
            apply_wasi(policy, key, value, rules)?;
        }
        for (key, value) in pairs(&self.codegen) {
            let option = format!("-C {key}");
            match key {
                "cache" => policy.no_cache |= !yes(&option, value)?,
                "cache-config" => {
                    return Err(refused(
                        &option,
                        "wsandbox keeps its own compilation cache: use --cache-dir DIR (or --no-cache)",
                    ));
                }
                "parallel-compilation" if yes(&option, value)? => {}
                _ => {
                    return Err(refused(
                        &option,
                        "wsandbox compiles with one setting of its own (so that the cache serves every run): drop it",
                    ));
                }
            }
        }
        if let Some((key, _)) = pairs(&self.optimize).next() {
            return Err(refused(
                &format!("-O {key}"),
                "wsandbox tunes its engine itself (the pooling allocator for serve, memory reservations): drop it",
            ));
        }
        if let Some((key, _)) = pairs(&self.debug).next() {
            return Err(refused(
                &format!("-D {key}"),
                "wsandbox offers no debugging of a guest: -v and -vv log what the engine did",
            ));
        }
        if let Some((key, _)) = pairs(&self.record).next() {
            return Err(refused(
                &format!("-R {key}"),
                "wsandbox does not record executions: drop it",
            ));
        }
        if self.target.is_some() {
            return Err(refused(
                "--target",
                "wsandbox compiles for the host it runs on: use `wsandbox compile` on the machine that runs the code",
            ));
        }
        if self.profile.is_some() {
            return Err(refused(
                "--profile",
                "no profiler reaches into the sandbox: profile the module under wasmtime outside it",
            ));
        }
        if !self.preload.is_empty() {
            return Err(refused(
                "--preload",
                "wsandbox runs one module: link the others into it first (a component, e.g. with `wasm-tools compose`)",
            ));
        }
        if self.gdbstub.is_some() {
            return Err(refused(
                "--gdbstub",
                "a debugger cannot reach into the sandbox: debug the module under wasmtime outside it",
            ));
        }
        Ok(())
    }
}

/// One `-W KEY[=VAL]`.
fn apply_wasm(policy: &mut Policy, key: &str, value: Option<&str>) -> Result<(), wsandbox::Error> {
    let option = format!("-W {key}");
    let usage = |why: String| wsandbox::Error::Usage(format!("{option}: {why}"));
    match key {
        "timeout" => policy.timeout = Some(parse_duration(needed(&option, value)?).map_err(usage)?),
        "max-memory-size" => policy.memory = Some(parse_size(needed(&option, value)?).map_err(usage)?),
        "fuel" => {
            let fuel = needed(&option, value)?.replace('_', "");
            policy.fuel = Some(match fuel.parse::<u64>() {
                Ok(0) => return Err(usage("must be at least 1 (--fuel N)".into())),
                Ok(fuel) => fuel,
                Err(_) => return Err(usage(format!("{fuel:?}: not a number of units"))),
            });
        }
        "trap-on-grow-failure" if !yes(&option, value)? => {}
        "trap-on-grow-failure" => {
            return Err(refused(
                &option,
                "a grow past --memory fails as wasm says it does (memory.grow gives -1); a guest that then traps exits 134 with the limit named",
            ));
        }
        // A proposal: asking for what the engine has (on, or off) is fine.
        key if PROPOSALS_ON.contains(&key) || PROPOSALS_OFF.contains(&key) => {
            let on = PROPOSALS_ON.contains(&key);
            if yes(&option, value)? != on {
                return Err(refused(
                    &option,
                    match on {
                        true => {
                            "wsandbox's engine has it on, as wasmtime does by default, and cannot turn it off: drop it"
                        }
                        false => {
                            "wsandbox's engine does not offer it (it has wasmtime's default proposals): drop it"
                        }
                    },
                ));
            }
        }
        key if ENGINE_OWN.contains(&key) => {
            return Err(refused(
                &option,
                "wsandbox sets this itself (--memory also bounds tables to 2^20 elements): drop it",
            ));
        }
        _ => {
            return Err(refused(
                &option,
                "not an option of wasmtime's -W that wsandbox knows",
            ));
        }
    }
    Ok(())
}

/// Whether a policy has rules of `--allow-http` and of `--allow-tcp`.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Some `--allow-http`.
    pub http: bool,
    /// Some `--allow-tcp`.
    pub tcp: bool,
}

/// One `-S KEY[=VAL]`.
fn apply_wasi(
    policy: &mut Policy,
    key: &str,
    value: Option<&str>,
    rules: Rules,
) -> Result<(), wsandbox::Error> {
    let option = format!("-S {key}");
    match key {
        // WASI's command-line interfaces are always linked.
        "cli" | "common" | "preview2" | "inherit-stdin" | "inherit-stdout" | "inherit-stderr" | "p3" => {
            if !yes(&option, value)? {
                return Err(refused(
                    &option,
                    match key {
                        "inherit-stdin" | "inherit-stdout" | "inherit-stderr" => {
                            "the guest's stdio is wsandbox's: redirect it (< /dev/null, > /dev/null)"
                        }
                        "p3" => "wsandbox tells WASI 0.3 components apart itself: drop it",
                        _ => "wsandbox links WASI's command-line interfaces for every guest: drop it",
                    },
                ));
            }
        }
        "http" => {
            if !yes(&option, value)? && rules.http {
                return Err(refused(
                    &option,
                    "wsandbox's guests send wasi:http requests only where --allow-http allows: drop the --allow-http rules",
                ));
            }
        }
        "inherit-env" => {
            if yes(&option, value)? {
                let mut names: Vec<String> = std::env::vars_os()
                    .filter_map(|(name, _)| name.into_string().ok())
                    .collect();
                names.sort();
                policy.env.extend(names.iter().map(|name| EnvVar::parse(name)));
            }
        }
        "tcp" if yes(&option, value)? => {
            return Err(refused(
                &option,
                "wsandbox opens no socket for a guest unless a rule names the peer: use --allow-tcp HOST:PORT",
            ));
        }
        "allow-ip-name-lookup" if yes(&option, value)? && !rules.tcp => {
            return Err(refused(
                &option,
                "names are looked up only for the hosts a rule names: use --allow-tcp HOST:PORT (or --allow-http HOST for wasi:http)",
            ));
        }
        "tcp" | "allow-ip-name-lookup" => {}
        key if WASI_ABSENT.contains(&key) => {
            if yes(&option, value)? {
                return Err(refused(
                    &option,
                    match key {
                        "inherit-network" => {
                            "a guest never gets the host's network: use --allow-http HOST[:PORT] for wasi:http requests, --allow-tcp HOST:PORT for sockets"
                        }
                        "udp" => "wsandbox offers no UDP to a guest: drop it",
                        "listenfd" => {
                            "wsandbox passes no listening socket to a command: use `wsandbox serve` for a server"
                        }
                        _ => "wsandbox does not offer this WASI proposal: drop it",
                    },
                ));
            }
        }
        "tcplisten" => {
            return Err(refused(
                &option,
                "wsandbox passes no listening socket to a command: use `wsandbox serve --addr HOST:PORT` for a server",
            ));
        }
        "cwd" => {
            return Err(refused(
                &option,
                "a guest's paths are its preopens: name the directory with --dir HOST::GUEST",
            ));
        }
        "nn-graph" | "config-var" | "keyvalue-in-memory-data" => {
            return Err(refused(
                &option,
                "wsandbox does not offer this WASI proposal: drop it",
            ));
        }
        "max-resources"
        | "hostcall-fuel"
        | "max-component-handles"
        | "max-random-size"
        | "max-http-fields-size"
        | "http-outgoing-body-buffer-chunks"
        | "http-outgoing-body-chunk-size" => {
            return Err(refused(
                &option,
                "wsandbox bounds a guest with --memory, --fuel and --timeout: use those",
            ));
        }
        _ => {
            return Err(refused(
                &option,
                "not an option of wasmtime's -S that wsandbox knows",
            ));
        }
    }
    Ok(())
}

/// A `--dir` or `--ro-dir` grant: `HOST[::GUEST]`, or with a permission
/// after it, as proposed for wasmtime: `HOST::GUEST::ro` (or `readonly`)
/// for read-only, `HOST::GUEST::rw` for read-write.
pub fn dir_grant(spec: &str, access: Access) -> Result<DirGrant, wsandbox::Error> {
    let flag = match access {
        Access::ReadOnly => "--ro-dir",
        Access::ReadWrite => "--dir",
    };
    let Some((grant, permission)) = spec.rsplit_once("::").filter(|(grant, _)| grant.contains("::")) else {
        return Ok(DirGrant::parse(spec, access));
    };
    let asked = match permission {
        "ro" | "readonly" | "read-only" => Access::ReadOnly,
        "rw" | "readwrite" | "read-write" => Access::ReadWrite,
        other => {
            return Err(wsandbox::Error::Usage(format!(
                "{flag} {spec}: unknown permission {other:?}: write HOST::GUEST::ro (or --ro-dir HOST::GUEST) for read-only, HOST::GUEST for read-write"
            )));
        }
    };
    if access == Access::ReadOnly && asked == Access::ReadWrite {
        return Err(wsandbox::Error::Usage(format!(
            "{flag} {spec}: a read-only grant cannot be read-write: use --dir {grant}"
        )));
    }
    Ok(DirGrant::parse(grant, asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(spec: &str, access: Access) -> (String, String, Access) {
        let grant = dir_grant(spec, access).unwrap();
        (grant.host.display().to_string(), grant.guest, grant.access)
    }

    #[test]
    fn a_dir_grant_may_end_in_its_permission() {
        use Access::{ReadOnly, ReadWrite};
        assert_eq!(
            grant("/a::/b::ro", ReadWrite),
            ("/a".into(), "/b".into(), ReadOnly)
        );
        assert_eq!(
            grant("/a::/b::readonly", ReadWrite),
            ("/a".into(), "/b".into(), ReadOnly)
        );
        assert_eq!(
            grant("/a::/b::rw", ReadWrite),
            ("/a".into(), "/b".into(), ReadWrite)
        );
        assert_eq!(grant("/a::/b", ReadOnly), ("/a".into(), "/b".into(), ReadOnly));
        assert_eq!(grant("/a", ReadWrite), ("/a".into(), "/a".into(), ReadWrite));
        let err = dir_grant("/a::/b::dir-perms=r", ReadWrite)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--ro-dir HOST::GUEST"), "{err}");
        let err = dir_grant("/a::/b::rw", ReadOnly).unwrap_err().to_string();
        assert!(err.contains("use --dir /a::/b"), "{err}");
    }

    #[test]
    fn several_keys_share_one_value_as_wasmtime_reads_them() {
        let values = ["timeout=5,fuel=10".to_string(), "simd".to_string()];
        let read: Vec<_> = pairs(&values).collect();
        assert_eq!(
            read,
            [("timeout", Some("5")), ("fuel", Some("10")), ("simd", None)]
        );
        assert!(yes("-W simd", Some("maybe")).is_err());
        assert!(!yes("-W simd", Some("no")).unwrap());
    }
}
