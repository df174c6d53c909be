//! The one pipeline that runs a guest behind both walls: the policy checked
//! and the module read before any namespace, the compilation cache opened
//! outside, the outer wall, the code loaded inside, the job done, the
//! ending told, reported, and turned into an exit code.
//!
//! Every command (`run`, `call`, `serve`, `compile`) and the plugin worker
//! is a [`Launch`] with its [`Job`]:
//!
//! ```no_run
//! use wsandbox::launch::{CacheChoice, Job, Launch};
//!
//! let code = Launch::new("hello.wasm", Job::Run { args: vec![], argv0: None })
//!     .cache(CacheChoice::Off)
//!     .execute()?;
//! # Ok::<(), wsandbox::Error>(())
//! ```
//!
//! [`Launch::execute`] returns the code to exit with once the sandbox
//! ended. Call it while the process has one thread (from `main`): the
//! sandbox is a copy of this process, made by `clone`.

mod publisher;
pub mod report;
mod served;

use crate::cache::{Cache, Pending};
use crate::engine::{
    self, Artifact, Call, CodeCache, CodeSource, Ended, Module, Outcome, Outgoing, Precompiled, Program,
    Purpose, Serving, Wasi,
};
use crate::error::{EXIT_SANDBOX_FAILED, EXIT_TIMEOUT, EXIT_TRAPPED};
use crate::policy::{PolicyError, Setting};
use crate::serve::{Bounds, Served};
use crate::wall::{self, End, Entered, Sandbox};
use crate::{Error, Policy};
use publisher::Publisher;
use report::{ModuleInfo, Report, ReportFile};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a launch does inside the walls.
#[derive(Debug)]
#[non_exhaustive]
pub enum Job {
    /// Run a WASI command with these arguments after its name (`run`).
    Run {
        /// The guest's arguments.
        args: Vec<String>,
        /// Its `argv[0]`, if not the module's file name.
        argv0: Option<String>,
    },
    /// Call one export and print its result in WAVE on stdout (`call`).
    Call(Call),
    /// Print the exports with their signatures on stdout (`call --list`).
    List,
    /// Serve a `wasi:http/proxy` component on `listener`, bound before the
    /// walls (`serve`); the first line on stderr is `http://ADDRESS`. Its
    /// limits are the policy's: `timeout` and `memory` for each request,
    /// the `[serve]` settings for the rest (unset ones take their
    /// defaults).
    Serve {
        /// The listening socket.
        listener: std::net::TcpListener,
        /// The admin listener's (`/healthz`, `/readyz`), if any: the
        /// sandbox's only other socket.
        admin: Option<std::net::TcpListener>,
    },
    /// Answer a plugin host's calls over `channel` (the plugin worker).
    Worker {
        /// The host's end is the other end of this socket.
        channel: OwnedFd,
        /// The host functions the plugin may import (`interface.function`),
        /// each call forwarded to the host over the channel.
        imports: Vec<String>,
    },
    /// Compile the module ahead of time into `output`, replaced only once
    /// it is whole (`compile`).
    Compile {
        /// Where the artifact goes.
        output: PathBuf,
        /// With fuel metering, for runs with a fuel limit.
        metered: bool,
        /// For `serve`'s engine.
        serve: bool,
    },
    /// Native code behind the outer wall alone, in place of a guest: no
    /// module is read and no engine built. For checking the wall from
    /// inside, as `tests/escape.rs` does; untrusted code runs as wasm.
    Native {
        /// What the sandbox runs, given `keep`'s descriptors in order (and
        /// last, when the policy allows a destination, the broker's channel:
        /// [`wall::Sandbox::take_broker`]); the sandbox exits with what it
        /// returns.
        body: NativeBody,
        /// The descriptors the sandbox keeps.
        keep: Vec<OwnedFd>,
        /// Its seccomp allow-list.
        syscalls: wall::Syscalls,
    },
}

/// The code of a [`Job::Native`].
///
/// # Safety
///
/// It runs in a copy of the caller's process in which every descriptor but
/// stdio and those it is given is closed under whatever owned it: it must
/// use none of them (a static file, socket or pipe of the caller's).
pub type NativeBody = unsafe fn(Vec<OwnedFd>) -> u8;

/// Which compilation cache a launch uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheChoice {
    /// None.
    Off,
    /// The user's ([`Cache::default_dir`]).
    #[default]
    Default,
    /// This directory.
    At(PathBuf),
}

/// A guest to run behind both walls, and how.
#[derive(Debug)]
pub struct Launch {
    /// The policy (not yet resolved: the launch resolves it).
    pub policy: Policy,
    /// The module's path (for a module given as bytes, its name in errors).
    pub module: PathBuf,
    /// The module itself, if it is not read from `module`.
    pub bytes: Option<Vec<u8>>,
    /// What to do with it.
    pub job: Job,
    /// Which compilation cache to use.
    pub cache: CacheChoice,
    /// Where to write the JSON report, if anywhere (`-`: stderr).
    pub report: Option<PathBuf>,
}

/// How long a server without a request timeout has to drain after
/// SIGINT/SIGTERM/SIGHUP before it is killed (as Kubernetes waits).
const SERVE_STOP_GRACE: Duration = Duration::from_secs(30);

impl Launch {
    /// A launch of `module` for `job`, under the default policy, with the
    /// user's cache and no report.
    pub fn new(module: impl Into<PathBuf>, job: Job) -> Launch {
        Launch {
            policy: Policy::default(),
            module: module.into(),
            bytes: None,
            job,
            cache: CacheChoice::Default,
            report: None,
        }
    }

    /// Under `policy`.
    pub fn policy(mut self, policy: Policy) -> Launch {
        self.policy = policy;
        self
    }

    /// Of the module `bytes` (when `Some`), named by its path in errors,
    /// instead of the file at its path.
    pub fn module_bytes(mut self, bytes: Option<Vec<u8>>) -> Launch {
        self.bytes = bytes;
        self
    }

    /// With this compilation cache.
    pub fn cache(mut self, cache: CacheChoice) -> Launch {
        self.cache = cache;
        self
    }

    /// The cache this launch uses: none when the policy says `no_cache`,
    /// the policy's `cache_dir` unless the launch chose a directory.
    pub fn cache_choice(&self) -> CacheChoice {
        match (&self.cache, &self.policy.cache_dir) {
            _ if self.policy.no_cache => CacheChoice::Off,
            (CacheChoice::Default, Some(dir)) => CacheChoice::At(dir.clone()),
            (choice, _) => choice.clone(),
        }
    }

    /// Writing a report to `path`.
    pub fn report(mut self, path: Option<PathBuf>) -> Launch {
        self.report = path;
        self
    }

    /// Runs the job behind both walls and returns the exit code of
    /// DESIGN.md once the sandbox ended; with a report, the outcome is
    /// written whatever it is. Returns only in the caller's process: the
    /// sandboxed copy of it ends after the job, with the job's exit code
    /// (and, when the job failed, its error on stderr), never returning
    /// into the caller's frames. Refused while the process has more than
    /// one thread.
    pub fn execute(self) -> Result<u8, Error> {
        let started = Instant::now();
        crate::say::read_env_filter();
        let mut report = self.report.as_deref().map(ReportFile::create).transpose()?;
        let mut module_info = None;
        let result = match self.job {
            Job::Native { body, keep, syscalls } => {
                native(self.policy, body, keep, syscalls, &mut report, started)
            }
            _ => walled(self, &mut report, &mut module_info, started),
        };
        // Only failures before the sandbox existed return here; a sandboxed
        // run is reported by its supervisor.
        if let (Err(err), Some(report)) = (&result, &mut report) {
            report.write(&Report::error(err, started.elapsed(), module_info));
        }
        result
    }
}

/// How long the sandbox has after a forwarded SIGINT/SIGTERM/SIGHUP before
/// SIGKILL. A server drains the requests in flight (each up to its
/// timeout, and a second more), so it has that long on top.
fn stop_grace(purpose: &Purpose) -> Duration {
    match purpose {
        Purpose::Command | Purpose::Concurrent => wall::STOP_GRACE,
        Purpose::Serve(serving) => serving.timeout.map_or(SERVE_STOP_GRACE, |t| {
            t + Duration::from_secs(1) + wall::STOP_GRACE
        }),
    }
}

/// What the sandbox does with the program: a [`Job`] without the
/// descriptors, which the wall keeps for it.
#[derive(Debug)]
enum Work {
    Run(Option<String>, Vec<String>),
    Call(Call),
    List,
    Serve(Serving, Bounds),
    Worker(Vec<String>),
    Compile { metered: bool, serve: bool },
}

impl Work {
    /// The job's work, its descriptors (a listener and the admin one, a
    /// channel) and, for `compile`, its output.
    fn of(job: Job) -> (Work, Vec<OwnedFd>, Option<PathBuf>) {
        match job {
            Job::Run { args, argv0 } => (Work::Run(argv0, args), vec![], None),
            Job::Call(call) => (Work::Call(call), vec![], None),
            Job::List => (Work::List, vec![], None),
            Job::Serve { listener, admin } => (
                Work::Serve(Serving::default(), Bounds::default()),
                std::iter::once(listener)
                    .chain(admin)
                    .map(OwnedFd::from)
                    .collect(),
                None,
            ),
            Job::Worker { channel, imports } => (Work::Worker(imports), vec![channel], None),
            Job::Compile {
                output,
                metered,
                serve,
            } => (Work::Compile { metered, serve }, vec![], Some(output)),
            Job::Native { .. } => unreachable!("a native job is launched by `native`"),
        }
    }

    /// The engine it needs.
    fn purpose(&self) -> Purpose {
        match self {
            Work::Serve(serving, _) => Purpose::Serve(*serving),
            Work::Compile { serve: true, .. } => Purpose::Serve(Serving::default()),
            _ => Purpose::Command,
        }
    }
}

/// How a server runs its requests and bounds its clients, from `policy`:
/// its `timeout` and `memory` become each request's (taken out of the
/// policy, so that they do not bound the whole sandbox); its `[serve]`
/// settings the rest, the defaults where unset.
fn serving_of(policy: &mut Policy) -> (Serving, Bounds) {
    let settings = &policy.serve;
    let (engine, server) = (Serving::default(), Bounds::default());
    let bounds = Bounds {
        max_queued: settings.max_queued.unwrap_or(server.max_queued),
        max_connections: settings.max_connections.unwrap_or(server.max_connections),
        idle_timeout: settings.idle_timeout.unwrap_or(server.idle_timeout),
        request_timeout: settings.request_timeout.unwrap_or(server.request_timeout),
        max_body_size: settings.max_body_size.unwrap_or(server.max_body_size),
    };
    let serving = Serving {
        max_concurrent: settings.max_concurrent.unwrap_or(engine.max_concurrent),
        timeout: policy.timeout.take(),
        memory: policy.memory.take(),
        ..engine
    };
    (serving, bounds)
}

/// What the sandbox tells its supervisor, above the wall's own messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Said {
    /// Just before the guest's first instruction: how its code was loaded.
    Loaded(Loaded),
    /// How the guest ended (the guest's process says it: untrusted).
    Ended(Told),
}

/// How the guest's code was loaded, said before it started (so not the
/// guest's word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    /// Where its machine code came from.
    pub code: CodeSource,
    /// Freshly compiled code was written whole to the unnamed file passed
    /// in for it (a cache entry, `compile`'s output), which is closed now:
    /// the supervisor may name it.
    pub written: bool,
    /// The WASI version its engine was built for, when the code's types
    /// told more than its exports' names (a component of async functions
    /// is 0.3): the report's `module.wasi`.
    #[serde(default)]
    pub wasi: Option<Wasi>,
}

/// How the guest ended, as the sandbox told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    /// How.
    pub how: GuestEnd,
    /// What (a trap's message, an error's line).
    pub message: Option<String>,
    /// The fuel it burnt, when metered.
    pub fuel_consumed: Option<u64>,
}

/// How a guest ended, in the sandbox's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuestEnd {
    /// It exited (or a call returned).
    Exited,
    /// It trapped.
    Trapped,
    /// It ran out of fuel.
    Fuel,
    /// It never ran: the job failed.
    Error,
}

/// What the supervisor makes of what the sandbox said: the first account
/// of the loading (sent before the guest ran, so wsandbox's own) and the
/// first of the end (the guest's process's: untrusted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Account {
    /// How the code was loaded; absent if the guest never started.
    pub loaded: Option<Loaded>,
    /// How each program was loaded, in order (a server's functions; the
    /// first is `loaded`).
    pub all_loaded: Vec<Loaded>,
    /// How the guest ended, as told.
    pub ended: Option<Told>,
}

impl Account {
    /// Reads `said`, ignoring what is not one of the launch's messages.
    pub fn of(said: &[serde_json::Value]) -> Account {
        let mut account = Account::default();
        for value in said {
            match Said::deserialize(value) {
                Ok(Said::Loaded(loaded)) => {
                    account.loaded.get_or_insert(loaded);
                    account.all_loaded.push(loaded);
                }
                Ok(Said::Ended(told)) if account.ended.is_none() => account.ended = Some(told),
                _ => {}
            }
        }
        account
    }

    /// The sandbox said, before the guest ran, that it wrote the file of
    /// its program number `index`.
    fn written(&self, index: usize) -> bool {
        self.all_loaded.get(index).is_some_and(|loaded| loaded.written)
    }
}

/// The exit code of wsandbox for a sandbox that ended so (DESIGN.md): its
/// own status, 128+S for a signal, 124 past the timeout, 125 when the wall
/// could not be built.
pub fn exit_code(end: &End) -> u8 {
    match end {
        // Unix keeps the low 8 bits of an exit status.
        End::Exited { code, .. } => *code as u8,
        End::Signaled(signal) => (128 + signal) as u8,
        End::TimedOut => EXIT_TIMEOUT,
        End::SetupFailed(_) | End::Lost => EXIT_SANDBOX_FAILED,
    }
}

/// The exit code of a guest that ended so.
pub fn outcome_code(outcome: &Outcome) -> u8 {
    match outcome {
        // Unix keeps the low 8 bits of an exit status.
        Outcome::Exited(code) => *code as u8,
        Outcome::Trapped { .. } => EXIT_TRAPPED,
        Outcome::OutOfFuel => EXIT_TIMEOUT,
        Outcome::Returned { failed, .. } => u8::from(*failed),
    }
}

/// A file the sandbox writes and the supervisor names once whole: a cache
/// entry, or `compile`'s output.
struct Sink {
    file: std::fs::File,
    publisher: Publisher,
}

fn walled(
    mut launch: Launch,
    report: &mut Option<ReportFile>,
    module_info: &mut Option<ModuleInfo>,
    started: Instant,
) -> Result<u8, Error> {
    // 1. Everything that can fail on bad input, before any namespace.
    let cache_choice = launch.cache_choice();
    let mut policy = launch.policy;
    let (mut work, job_fds, output) = Work::of(launch.job);
    policy.resolve()?;
    // A server's functions: each route's policy, component and limits
    // (the policy's timeout and memory are their defaults).
    let mut functions = match &work {
        Work::Serve(..) => {
            let (routes, named) = served::routes(&policy, &launch.module);
            let max_concurrent = policy
                .serve
                .max_concurrent
                .unwrap_or(Serving::default().max_concurrent);
            served::plan(&policy, routes, named, max_concurrent)?
        }
        _ => Vec::new(),
    };
    if let Work::Serve(serving, bounds) = &mut work {
        // The timeout and the memory limit are each request's, not the
        // sandbox's: the supervisor must not kill the server at the
        // timeout, nor bound its data by one instance's memory. The
        // sandbox holds the grants and rules of every function.
        (*serving, *bounds) = serving_of(&mut policy);
        *serving = served::engine_serving(&functions, serving.max_concurrent);
        served::join(&mut policy, &mut functions);
    }
    if let Some(rule) = policy.allow_tcp.first() {
        return Err(PolicyError::TcpUnsupported {
            rule: rule.to_string(),
        }
        .into());
    }
    // The certificate authorities of the guest's HTTPS, read while the
    // host's files are in sight.
    let roots = match policy.allow_http.is_empty() {
        true => Vec::new(),
        false => ca_bundle(&policy)?,
    };
    // The sandboxed process has no environment of the host's: the guest's
    // values of passed-through names are read now.
    policy.take_host_env()?;
    let purpose = work.purpose();
    let module = match functions.first() {
        // A server's report names its first function's component.
        Some(first) => first.module().clone_without_bytes(),
        None => {
            let module = match launch.bytes.take() {
                Some(bytes) => Module::from_bytes(&launch.module, bytes)?,
                None => Module::load(&launch.module)?,
            };
            match &work {
                Work::Compile { .. } => engine::compilable(&module)?,
                _ => engine::admit(&policy, &module)?,
            }
            module
        }
    };
    // A WASI 0.3 command needs the engine of the component model's async.
    let purpose = purpose.of(&module);
    if report.is_some() {
        *module_info = Some(ModuleInfo::of(&module));
    }
    // The compilation cache lives outside the walls: its entries are read,
    // or unnamed files reserved for new ones, before they exist; as is
    // `compile`'s output.
    let metered = policy.fuel.is_some();
    let (mut code_cache, sinks) = match (&output, functions.is_empty()) {
        (Some(out), _) => (CodeCache::default(), vec![reserve_output(out)?]),
        (None, true) => {
            let (cache, sink) = open_cache(&cache_choice, &policy.dirs, metered, &module, purpose);
            (cache, sink.into_iter().collect())
        }
        (None, false) => (
            CodeCache::default(),
            served::open_caches(&mut functions, &cache_choice, &policy, purpose),
        ),
    };
    if policy.allow_precompiled {
        code_cache.precompiled = Some(Precompiled::allowed_by_policy());
    }
    let (sink_files, publishers): (Vec<std::fs::File>, Vec<Publisher>) =
        sinks.into_iter().map(|s| (s.file, s.publisher)).unzip();
    let sink_count = sink_files.len();
    let keep: Vec<OwnedFd> = sink_files.into_iter().map(OwnedFd::from).chain(job_fds).collect();
    // 2-9. The outer wall.
    let syscalls = match purpose {
        Purpose::Serve(_) if !matches!(work, Work::Compile { .. }) => wall::Syscalls::Server,
        _ => wall::Syscalls::Guest,
    };
    let grace = stop_grace(&purpose);
    // SAFETY: in the sandbox, this launch's own descriptors (the report,
    // the publishers' files), closed by the wall, are forgotten, never
    // dropped or used; the rest of its values own none (the job's went
    // into `keep`); and `inside` ends the process: no frame above this one
    // runs there again.
    #[allow(unsafe_code)]
    let entered = unsafe { wall::enter(&mut policy, keep, syscalls, grace)? };
    let supervisor = match entered {
        Entered::Supervisor(supervisor) => supervisor,
        Entered::Sandbox(sandbox) => {
            std::mem::forget((report.take(), publishers));
            let job = Inside {
                policy: &policy,
                module: &module,
                purpose,
                code_cache,
                sink_count,
                roots,
                functions,
            };
            inside(sandbox, job, work, output)
        }
    };
    // A fresh cache entry is named as soon as the sandbox says, before the
    // guest runs, that it wrote it whole — a server or a plugin's worker
    // lives long, and the next one to start should find it; `compile`'s
    // output only once the compiler exited 0. A server's entries are its
    // functions' with a file, in order.
    let owners: Vec<usize> = match functions.is_empty() {
        true => vec![0],
        false => (0..functions.len()).filter(|&i| functions[i].has_sink).collect(),
    };
    let mut publishers: Vec<Option<Publisher>> = publishers.into_iter().map(Some).collect();
    let mut programs = 0;
    let mut named_early = |value: &serde_json::Value| {
        let Ok(Said::Loaded(loaded)) = Said::deserialize(value) else {
            return;
        };
        let program = programs;
        programs += 1;
        let owner = owners.iter().position(|&owner| owner == program);
        if let (true, None, Some(owner)) = (loaded.written, &output, owner)
            && let Some(publisher) = publishers[owner].take()
        {
            publisher.finish(true);
        }
    };
    let (ending, code) = supervise_telling(supervisor, policy.timeout, &mut named_early);
    let account = Account::of(&ending.said);
    for (publisher, owner) in publishers.into_iter().zip(&owners) {
        if let Some(publisher) = publisher {
            publisher.finish(account.written(*owner) && (output.is_none() || code == 0));
        }
    }
    Ok(reported(
        report,
        &ending,
        &account,
        started,
        module_info.clone(),
        code,
    ))
}

/// What the sandbox was handed for its work, besides the work itself.
struct Inside<'a> {
    policy: &'a Policy,
    module: &'a Module,
    /// The engine the work needs (told from the module before the walls).
    purpose: Purpose,
    code_cache: CodeCache,
    /// How many of the kept descriptors, first, are files for code.
    sink_count: usize,
    /// A server's functions (none for other work).
    functions: Vec<served::Planned>,
    /// PEM text of the certificate authorities the guest's HTTPS trusts.
    roots: Vec<u8>,
}

/// The most a file of certificates may hold.
const MAX_CA_FILE: u64 = 8 << 20;

/// Where hosts keep their bundle of certificate authorities (Debian's and
/// Alpine's, Fedora's, openSUSE's, the BSDs' and macOS's).
const CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certificate authorities of the guest's HTTPS, as PEM text: the
/// host's bundle (`SSL_CERT_FILE`, or the first of [`CA_BUNDLES`] there is),
/// and the policy's `tls_ca`, which must hold at least one certificate.
/// Each file is bounded ([`MAX_CA_FILE`]).
fn ca_bundle(policy: &Policy) -> Result<Vec<u8>, Error> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let read = |path: &Path| -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_CA_FILE + 1)
            .read_to_end(&mut bytes)?;
        match bytes.len() as u64 > MAX_CA_FILE {
            true => Err(std::io::Error::other(format!(
                "larger than {}",
                crate::policy::size_text(MAX_CA_FILE)
            ))),
            false => Ok(bytes),
        }
    };
    let host = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let mut pem = host
        .iter()
        .map(PathBuf::as_path)
        .chain(CA_BUNDLES.iter().map(Path::new))
        .find_map(|path| {
            let bytes = read(path).ok()?;
            tracing::debug!("HTTPS: the host's certificate authorities: {}", path.display());
            Some(bytes)
        })
        .unwrap_or_default();
    if let Some(path) = &policy.tls_ca {
        let bad = |reason: String| PolicyError::TlsCa {
            path: path.clone(),
            reason,
        };
        let bytes = read(path).map_err(|e| bad(crate::policy::io_reason(&e)))?;
        let certificates = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
        if certificates.is_empty() {
            return Err(bad("no PEM certificate in it".into()).into());
        }
        pem.push(b'\n');
        pem.extend_from_slice(&bytes);
    }
    Ok(pem)
}

/// Tells the supervisor how the guest ended (a message cut to the
/// channel's bound).
fn tell(sandbox: &mut Sandbox, how: GuestEnd, message: Option<String>, fuel_consumed: Option<u64>) {
    let message = message.map(|mut text| {
        wall::truncate(&mut text);
        text
    });
    sandbox.say(&Said::Ended(Told {
        how,
        message,
        fuel_consumed,
    }));
}

/// Writes the report of a supervised run, if one was asked for; returns
/// its exit code.
fn reported(
    report: &mut Option<ReportFile>,
    ending: &wall::Ending,
    account: &Account,
    started: Instant,
    module: Option<ModuleInfo>,
    code: u8,
) -> u8 {
    if let Some(report) = report.as_mut() {
        // A component's version, told better by its engine (a component
        // of async functions is 0.3 without a 0.3 entry point).
        let module = module.map(|mut module| {
            if let Some(wasi) = account.loaded.and_then(|loaded| loaded.wasi)
                && module.kind == "component"
                && wasi != Wasi::Preview1
            {
                module.wasi = wasi.version();
            }
            module
        });
        report.write(&Report::ended(ending, account, started.elapsed(), module));
    }
    let _ = std::io::stdout().flush();
    code
}

/// A [`Job::Native`]: the policy resolved, the outer wall, `body` in the
/// sandbox; supervised and reported as a guest's run.
fn native(
    mut policy: Policy,
    body: NativeBody,
    keep: Vec<OwnedFd>,
    syscalls: wall::Syscalls,
    report: &mut Option<ReportFile>,
    started: Instant,
) -> Result<u8, Error> {
    policy.resolve()?;
    policy.take_host_env()?;
    // SAFETY: in the sandbox, the report (closed by the wall) is forgotten,
    // never dropped or used, and nothing else of this launch owns a
    // descriptor; `body` is held to the same contract (`NativeBody`), and
    // the process ends with its code.
    #[allow(unsafe_code)]
    let entered = unsafe { wall::enter(&mut policy, keep, syscalls, wall::STOP_GRACE)? };
    let supervisor = match entered {
        Entered::Supervisor(supervisor) => supervisor,
        Entered::Sandbox(mut sandbox) => {
            std::mem::forget(report.take());
            let mut kept = sandbox.take_kept();
            kept.extend(sandbox.take_broker());
            // SAFETY: `body`'s contract is its author's (`NativeBody`).
            #[allow(unsafe_code)]
            let code = unsafe { body(kept) };
            tell(&mut sandbox, GuestEnd::Exited, None, None);
            let _ = std::io::stdout().flush();
            std::process::exit(code.into())
        }
    };
    let (ending, code) = supervise(supervisor, policy.timeout);
    let account = Account::of(&ending.said);
    Ok(reported(report, &ending, &account, started, None, code))
}

/// The supervisor's half of a launch: waits for the sandbox's end, says on
/// stderr why the wall failed or that the guest ran past `timeout`, and
/// returns how it ended with wsandbox's exit code for it. From here on the
/// process only supervises and reports: a panic ends it with 125, in one
/// line, without unwinding.
pub fn supervise(supervisor: wall::Supervisor, timeout: Option<Duration>) -> (wall::Ending, u8) {
    supervise_telling(supervisor, timeout, &mut |_| {})
}

/// [`supervise`], giving `told` what the sandbox says as it arrives.
fn supervise_telling(
    supervisor: wall::Supervisor,
    timeout: Option<Duration>,
    told: &mut dyn FnMut(&serde_json::Value),
) -> (wall::Ending, u8) {
    crate::say::end_on_panic();
    let ending = supervisor.wait_telling(told);
    match &ending.end {
        End::SetupFailed(error) => crate::say!("wsandbox: cannot set up the sandbox: {error}"),
        End::TimedOut => crate::say!(
            "wsandbox: the guest ran past its time limit ({} {}) and was stopped",
            Setting::Timeout,
            crate::policy::duration_text(timeout.unwrap_or_default())
        ),
        _ => {}
    }
    let code = exit_code(&ending.end);
    (ending, code)
}

/// The sandboxed process, walls up: does the work and ends the process
/// with its exit code (its error, if it failed, on stderr). It never
/// returns: the caller's values in this copy of the process are not its
/// own to drop.
fn inside(mut sandbox: Sandbox, job: Inside<'_>, work: Work, output: Option<PathBuf>) -> ! {
    let Inside {
        policy,
        module,
        purpose,
        mut code_cache,
        sink_count,
        roots,
        functions,
    } = job;
    let mut kept = sandbox.take_kept().into_iter();
    let files: Vec<std::fs::File> = kept.by_ref().take(sink_count).map(std::fs::File::from).collect();
    let job_fds: Vec<OwnedFd> = kept.collect();
    let mut sinks = files.into_iter();
    let code = match work {
        Work::Compile { metered, .. } => {
            let out = output.unwrap_or_default();
            compile_inside(&mut sandbox, module, metered, purpose, sinks.next(), &out)
        }
        Work::Serve(serving, bounds) => {
            let mut sinks = sinks.map(artifact_sink);
            let served = ServeInside {
                functions,
                serving,
                bounds,
                roots,
            };
            serve_inside(&mut sandbox, policy, served, &mut sinks, job_fds)
        }
        work => {
            code_cache.sink = sinks.next().map(artifact_sink);
            let inside = RunInside {
                module,
                purpose,
                code_cache,
                roots,
            };
            run_inside(&mut sandbox, policy, inside, work, job_fds)
        }
    };
    let code = code.unwrap_or_else(|err| {
        crate::say::failure(format_args!("wsandbox: {err}"));
        err.exit_code()
    });
    let _ = std::io::stdout().flush();
    std::process::exit(code.into())
}

/// Where the engine writes fresh code: `file`, in the cache's format.
fn artifact_sink(mut file: std::fs::File) -> engine::ArtifactSink {
    Box::new(move |artifact| crate::cache::write_entry(&mut file, artifact).is_ok())
}

/// What a server needs inside, besides the policy and the descriptors.
struct ServeInside {
    functions: Vec<served::Planned>,
    /// The engine's limits (the pool's size and memory, the drain's time).
    serving: Serving,
    bounds: Bounds,
    /// PEM text of the certificate authorities the guests' HTTPS trusts.
    roots: Vec<u8>,
}

/// `serve` inside (step 10): the functions loaded on one engine (their
/// code's files, from `sinks`, closed), said loaded, then served on the
/// listener of `job_fds` (and the admin one after it) until a signal.
fn serve_inside(
    sandbox: &mut Sandbox,
    policy: &Policy,
    served: ServeInside,
    sinks: &mut impl Iterator<Item = engine::ArtifactSink>,
    job_fds: Vec<OwnedFd>,
) -> Result<u8, Error> {
    // Before the engine starts threads: termination signals are the
    // server's to take (gracefully), in every thread.
    let _ = crate::serve::termination_signals().thread_block();
    let started = (|| {
        let outgoing = match sandbox.take_broker() {
            Some(channel) => {
                let client = wall::BrokerClient::new(channel)
                    .map_err(|e| Error::Engine(format!("cannot start the network broker's client: {e}")))?;
                Some(Outgoing::new(std::sync::Arc::new(client), served.roots))
            }
            None => None,
        };
        served::load(served.functions, policy, sinks, served.serving, outgoing.as_ref())
    })();
    let loaded = match started {
        Ok(loaded) => loaded,
        Err(err) => {
            tell(sandbox, GuestEnd::Error, Some(err.to_string()), None);
            return Err(err);
        }
    };
    let mut functions = Vec::with_capacity(loaded.len());
    for (function, loaded) in loaded {
        sandbox.say(&Said::Loaded(loaded));
        functions.push(function);
    }
    let mut job_fds = job_fds.into_iter();
    let listener = job_fds
        .next()
        .map(std::net::TcpListener::from)
        .ok_or_else(|| Error::Engine("the listening socket was not kept".into()))?;
    let admin = job_fds.next().map(std::net::TcpListener::from);
    let served = crate::serve::serve(functions, listener, admin, served.bounds, |address| {
        crate::say!("http://{address}")
    });
    let code = match served {
        // 0 once the requests in flight finished; 128+S when a second
        // signal cut them short.
        Ok(Served::Drained) => 0,
        Ok(Served::Cut(signal)) => 128 + signal,
        Err(err) => {
            tell(sandbox, GuestEnd::Error, Some(err.to_string()), None);
            return Err(err);
        }
    };
    tell(sandbox, GuestEnd::Exited, None, None);
    Ok(u8::try_from(code).unwrap_or(u8::MAX))
}

/// The inner wall (step 10): load the code (closing the cache's file), say how,
/// and only then let the guest's code run; say how it ended.
/// What a program's work needs inside, besides the policy and the
/// descriptors.
struct RunInside<'a> {
    module: &'a Module,
    /// The engine it needs.
    purpose: Purpose,
    code_cache: CodeCache,
    /// PEM text of the certificate authorities the guest's HTTPS trusts.
    roots: Vec<u8>,
}

fn run_inside(
    sandbox: &mut Sandbox,
    policy: &Policy,
    inside: RunInside<'_>,
    work: Work,
    job_fds: Vec<OwnedFd>,
) -> Result<u8, Error> {
    let RunInside {
        module,
        purpose,
        code_cache,
        roots,
    } = inside;
    // A plugin's worker: its channel is shared by the loop answering the
    // host and the host functions the plugin calls in the middle of a call.
    let (loaded, channel) = match &work {
        Work::Worker(imports) => {
            let channel = job_fds
                .into_iter()
                .next()
                .map(crate::plugin::worker::Channel::new)
                .ok_or_else(|| Error::Engine("the plugin's channel was not kept".into()))?;
            let host =
                crate::plugin::worker::Forwarder::new(std::sync::Arc::clone(&channel), imports.clone());
            let loaded = engine::load_plugin(policy, module, code_cache, std::sync::Arc::new(host));
            (loaded, Some(channel))
        }
        // The functions of a component to call may be async without a
        // 0.3 entry point: told from its types here, where the compiler
        // reads them too (outside, its exports' names told the cache's
        // key; the key is the bytes' too, so one key always finds code of
        // one engine). A run needs an entry point, which the names tell.
        Work::Call(_) | Work::List => {
            let purpose = purpose.of_code(module);
            (engine::load_for(policy, module, code_cache, purpose), None)
        }
        _ => (engine::load_for(policy, module, code_cache, purpose), None),
    };
    let ended = loaded.map_err(Error::from).and_then(|mut program| {
        if let Some(channel) = sandbox.take_broker() {
            let client = wall::BrokerClient::new(channel)
                .map_err(|e| Error::Engine(format!("cannot start the network broker's client: {e}")))?;
            program.reach_out(Outgoing::new(std::sync::Arc::new(client), roots));
        }
        if let Work::Run(..) = work {
            program.check_command()?;
        }
        sandbox.say(&Said::Loaded(Loaded {
            code: program.source,
            written: program.cached,
            wasi: Some(program.wasi()),
        }));
        work_with(policy, program, work, channel)
    });
    let ended = match ended {
        Ok(ended) => ended,
        Err(err) => {
            tell(sandbox, GuestEnd::Error, Some(err.to_string()), None);
            return Err(err);
        }
    };
    let fuel = ended.fuel_consumed;
    match &ended.outcome {
        Outcome::Exited(_) => tell(sandbox, GuestEnd::Exited, None, fuel),
        Outcome::Returned { value, .. } => {
            if let Some(value) = value {
                // stdout may be closed or full for good: the run's end is
                // still told.
                // A reader that has left (`| head`) wanted no more.
                match crate::say::out(&format!("{value}\n")) {
                    Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
                        crate::say!("wsandbox: cannot write the result on stdout: {err}");
                    }
                    _ => {}
                }
            }
            tell(sandbox, GuestEnd::Exited, None, fuel);
        }
        Outcome::Trapped { message, backtrace } => {
            crate::say!("wsandbox: guest trapped: {message}");
            if let Some(backtrace) = backtrace {
                crate::say!("{backtrace}");
            }
            tell(sandbox, GuestEnd::Trapped, Some(message.clone()), fuel);
        }
        Outcome::OutOfFuel => {
            let message = format!(
                "the guest ran out of fuel ({} {}) and was stopped",
                Setting::Fuel,
                policy.fuel.unwrap_or_default()
            );
            crate::say!("wsandbox: {message}");
            tell(sandbox, GuestEnd::Fuel, Some(message), fuel);
        }
    }
    Ok(outcome_code(&ended.outcome))
}

/// Does the work with the loaded program (a plugin's worker, over its
/// `channel`).
fn work_with(
    policy: &Policy,
    program: Program,
    work: Work,
    channel: Option<std::sync::Arc<crate::plugin::worker::Channel>>,
) -> Result<Ended, Error> {
    let exited = Ended {
        outcome: Outcome::Exited(0),
        fuel_consumed: None,
    };
    match work {
        Work::Run(argv0, args) => Ok(program.run(policy, argv0.as_deref(), &args)?),
        Work::Call(call) => Ok(program.call(policy, &call)?),
        Work::List => {
            let mut listing = String::new();
            for (name, signature) in program.exports() {
                listing.push_str(&format!("{name}: {signature}\n"));
            }
            if let Err(err) = crate::say::out(&listing)
                && err.kind() != std::io::ErrorKind::BrokenPipe
            {
                crate::say!("wsandbox: cannot write the exports on stdout: {err}");
            }
            Ok(exited)
        }
        Work::Serve(..) => Err(Error::Engine("serve is not a program's work".into())),
        Work::Worker(_) => {
            let channel = channel.ok_or_else(|| Error::Engine("the plugin's channel was not kept".into()))?;
            crate::plugin::worker::serve_channel(policy, program, &channel)?;
            Ok(exited)
        }
        Work::Compile { .. } => Err(Error::Engine("compile is not a program's work".into())),
    }
}

/// `compile` inside (step 10): compile, write the artifact to the reserved file, close
/// it, and say it was written whole.
fn compile_inside(
    sandbox: &mut Sandbox,
    module: &Module,
    metered: bool,
    purpose: Purpose,
    sink: Option<std::fs::File>,
    out: &Path,
) -> Result<u8, Error> {
    let artifact = engine::compile(module, metered, purpose)?;
    let mut sink = sink.ok_or_else(|| cannot_write(out, &std::io::Error::other("not kept")))?;
    sink.write_all(&artifact).map_err(|e| cannot_write(out, &e))?;
    drop(sink);
    sandbox.say(&Said::Loaded(Loaded {
        code: CodeSource::Compiled,
        written: true,
        wasi: None,
    }));
    Ok(0)
}

/// What the cache's keys of a run of `metered`, for `purpose`, are made
/// of: wsandbox's version and wasmtime's hash of the run's engine
/// ([`engine::compatibility_hash`]). The hash is remembered in the cache,
/// as an entry (sealed like any) named after what the supervisor can tell
/// of the engine without building one ([`engine::host_settings`]): only a
/// host's first run of each setting builds the engine out here to hash it
/// — and hands it to the sandbox — while the others build theirs inside
/// the walls, as every run without a cache does.
fn engine_settings(cache: &Cache, metered: bool, purpose: Purpose) -> Result<String, Error> {
    let memo = format!(
        "engine-{}",
        Cache::key(b"", &engine::host_settings(metered, purpose))
    );
    let remembered = cache.lookup(&memo).and_then(|entry| {
        let hash = std::str::from_utf8(entry.artifact()).ok()?;
        (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_owned())
    });
    let hash = match remembered {
        Some(hash) => hash,
        None => {
            let hash = engine::compatibility_hash(metered, purpose)?;
            tracing::debug!("compilation cache: the engine's hash remembered as {memo}");
            let written = cache.reserve(&memo).and_then(|pending| {
                crate::cache::write_entry(&mut pending.sink()?, hash.as_bytes())?;
                pending.commit()
            });
            if let Err(err) = written {
                tracing::debug!("compilation cache: {memo}: {err}");
            }
            hash
        }
    };
    Ok(format!("wsandbox {}; engine {hash}", env!("CARGO_PKG_VERSION")))
}

/// The cache's entry for `module`, and an unnamed file in the cache for the
/// sandbox to write a fresh one to (should the entry be missing, or stale
/// after all), with who will name it. No cache (none can be created) is a
/// run without one.
///
/// Root's runs reserve a file only on a miss: naming it takes a helper
/// process forked while still root, which a hit should not pay for. A
/// stale entry of root's (which the key makes unlikely) is compiled again
/// on each run, never trusted, and replaced once it is damaged or removed.
fn open_cache(
    choice: &CacheChoice,
    grants: &[crate::policy::DirGrant],
    metered: bool,
    module: &Module,
    purpose: Purpose,
) -> (CodeCache, Option<Sink>) {
    if module.precompiled {
        return (CodeCache::default(), None);
    }
    let cache = match choice {
        CacheChoice::Off => return (CodeCache::default(), None),
        CacheChoice::Default => Cache::open_default(),
        CacheChoice::At(dir) => Cache::open(dir),
    }
    .and_then(|cache| {
        cache.check_grants(grants.iter().map(|d| d.host.as_path()))?;
        Ok(cache)
    });
    let cache = match cache {
        Ok(cache) => cache,
        Err(why) => {
            tracing::debug!("compilation cache not used: {why}");
            return (CodeCache::default(), None);
        }
    };
    tracing::debug!("compilation cache: {}", cache.dir().display());
    let settings = match engine_settings(&cache, metered, purpose) {
        Ok(settings) => settings,
        Err(why) => {
            tracing::debug!("compilation cache not used: {why}");
            return (CodeCache::default(), None);
        }
    };
    let key = Cache::key(&module.bytes, &settings);
    // The cache verified the entry's MAC: it is code wsandbox compiled.
    let entry = cache.lookup(&key).map(|entry| {
        let (bytes, start) = entry.into_parts();
        Artifact::authenticated(bytes, start)
    });
    // The key's traces go before the sandbox, a copy of this process, exists.
    crate::cache::scrub_stack();
    let helper = wall::gives_up_root();
    let found = |entry| CodeCache {
        entry,
        ..CodeCache::default()
    };
    if entry.is_some() && helper {
        return (found(entry), None);
    }
    let reserved = cache.reserve(&key).and_then(|pending| {
        let file = pending.sink()?;
        let publisher = Publisher::new(pending, helper)?;
        Ok(Sink { file, publisher })
    });
    (found(entry), reserved.ok())
}

/// An unnamed file beside `out`, named `out` once written whole.
fn reserve_output(out: &Path) -> Result<Sink, Error> {
    let pending = reserve(out)?;
    let file = pending.sink().map_err(|e| cannot_write(out, &e))?;
    let publisher = Publisher::new(pending, wall::gives_up_root()).map_err(|e| cannot_write(out, &e))?;
    Ok(Sink { file, publisher })
}

fn reserve(out: &Path) -> Result<Pending, Error> {
    let name = out
        .file_name()
        .ok_or_else(|| Error::Output(format!("{} {}: not a file name", Setting::Output, out.display())))?;
    let dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Pending::new(dir, &name.to_string_lossy(), 0o644).map_err(|e| cannot_write(out, &e))
}

fn cannot_write(out: &Path, e: &std::io::Error) -> Error {
    Error::Output(format!(
        "{} {}: cannot write: {}",
        Setting::Output,
        out.display(),
        crate::policy::io_reason(e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_has_its_drain_time_before_sigkill() {
        assert_eq!(stop_grace(&Purpose::Command), Duration::from_secs(2));
        let serving = |timeout| {
            Purpose::Serve(Serving {
                timeout,
                ..Serving::default()
            })
        };
        assert_eq!(
            stop_grace(&serving(Some(Duration::from_secs(5)))),
            Duration::from_secs(8)
        );
        assert_eq!(stop_grace(&serving(None)), Duration::from_secs(30));
    }
}
