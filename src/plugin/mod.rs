//! Plugins for host programs: a component kept alive in a sandboxed worker
//! process, called like a function.
//!
//! A [`Plugin`] starts a worker — the host program itself or `wsandbox
//! worker`, behind the same two walls as `wsandbox run`, under the
//! [`Policy`] you give — which compiles the component once (with the
//! compilation cache), instantiates it once, and answers calls over a
//! private socket. State persists between calls. A trap, a call past its
//! time limit or a worker that died is an error value, and the next call
//! starts a fresh worker. Several plugins (and several workers of one
//! module) may run at once.
//!
//! ```no_run
//! use wsandbox::Policy;
//! use wsandbox::plugin::{Plugin, Val};
//!
//! let mut plugin = Plugin::new("words.wasm", Policy::default())
//!     .call_timeout(std::time::Duration::from_secs(2));
//! let summary = plugin.handle(b"the cat saw the dog")?;
//! let greeting = plugin.call("greet", &[Val::String("world".into())])?;
//! # Ok::<(), wsandbox::plugin::PluginError>(())
//! ```
//!
//! The worker is, in this order: the binary [`Plugin::binary`] names; the
//! one the `WSANDBOX_BIN` environment variable names; this program itself
//! when its `main` called [`worker_main`] first (a copy of it,
//! `/proc/self/exe`, serves the plugin); `wsandbox` on `PATH`. It must
//! speak this library's protocol version ([`wire::PROTOCOL`]); another is
//! refused. Any value but resources, streams, futures and maps can cross
//! both ways; byte lists cross as bytes. A plugin may import functions of
//! its host program's ([`Plugin::host_fn`]), and may come as bytes rather
//! than a file ([`Plugin::from_bytes`]).
//!
//! A plugin cannot hang or exhaust its host program: every wait on the
//! worker has a deadline — starting ([`Plugin::start_timeout`], 60 s unless
//! told), instantiating (the call timeout, else the start timeout), each
//! call with its request ([`Plugin::call_timeout`]; without one, a request
//! the worker does not take within 30 s), the worker's exit once its
//! channel closed (2 s) — after which the worker is killed and the call
//! fails. An answer is at most [`Plugin::max_answer`] bytes (64 MiB unless
//! told) holding at most one value per 64 of them (at least 1024), nested
//! at most 100 deep, counted as it is decoded: decoding one costs at most
//! about twice its size and 80 bytes per value. The
//! worker's stderr is passed on line by line, each prefixed with the
//! plugin's name ([`Plugin::name`]; the module's file name without its
//! extension unless told), cut at 4 KiB, control characters escaped.

mod pool;
pub mod wire;
pub mod worker;

use crate::Policy;
use crate::engine::GUEST_INTERFACE;
pub use pool::{PluginPool, QUEUE_TIMEOUT};
use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub use wasmtime::component::Val;
use wire::{Failure, FromWorker, PROTOCOL, PolicySource, Received, ToWorker, WireVal};

/// What went wrong with a plugin call. After `Trapped`, `OutOfFuel`,
/// `Timeout` and `Died` the worker is gone, and the next call starts a
/// fresh one; after `Call` and `Value` it lives on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The worker could not be started, or ended before it was ready (a
    /// plugin that imports a function its host does not offer among the
    /// reasons).
    #[error("cannot start the plugin's worker: {0}")]
    Start(String),
    /// The worker speaks another protocol version.
    #[error(
        "the plugin's worker speaks protocol {found}, this library speaks {PROTOCOL}: use the wsandbox binary of the same version"
    )]
    Version {
        /// The worker's version.
        found: u32,
    },
    /// The worker sent something that is not this protocol.
    #[error("the plugin's worker sent garbage: {0}")]
    Protocol(String),
    /// The call does not fit the plugin: an unknown export, arguments of
    /// the wrong number or type.
    #[error("{0}")]
    Call(String),
    /// A value that cannot cross between the host and the worker.
    #[error("{0}")]
    Value(String),
    /// The plugin trapped (a host function that failed, when the function
    /// returns no `result`, among the reasons).
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    /// The call burnt all the fuel the policy gives a call.
    #[error("the plugin ran out of fuel: {0}")]
    OutOfFuel(String),
    /// The call ran past [`Plugin::call_timeout`] (its host functions'
    /// time included); its worker was killed.
    #[error("the plugin's call ran past its time limit ({0:?}) and its worker was stopped")]
    Timeout(Duration),
    /// The worker died during a call.
    #[error("the plugin's worker died: {0}")]
    Died(String),
    /// Every worker of a [`PluginPool`] stayed busy for as long as a call
    /// may wait for one.
    #[error("all {workers} workers of the plugin's pool stayed busy for {waited:?}")]
    Busy {
        /// How many workers the pool has.
        workers: usize,
        /// How long the call waited.
        waited: Duration,
    },
}

/// The plugin world's metadata (`wit/plugin.wit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The plugin's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does, in a line.
    pub description: String,
}

/// A function of the host program's that its plugins may import: it gets
/// the plugin's arguments and returns its results, or why it failed (the
/// plugin's error value when the function returns a `result<_, string>`
/// or `result`, else a trap of the plugin's call).
pub type HostFn = Arc<dyn Fn(&[Val]) -> Result<Vec<Val>, String> + Send + Sync>;

/// The host functions of a plugin, by the name plugins import them by.
#[derive(Clone, Default)]
struct HostFns(BTreeMap<String, HostFn>);

impl std::fmt::Debug for HostFns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl HostFns {
    /// Runs `name` with `args`, as the worker asked: its results, or why it
    /// failed (a panic of the function's among the reasons).
    fn run(&self, name: &str, args: Vec<WireVal>) -> Result<Vec<WireVal>, String> {
        let function = self
            .0
            .get(name)
            .ok_or_else(|| format!("the host offers no function `{name}`"))?;
        let args = args
            .into_iter()
            .map(WireVal::into_val)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.0)?;
        let returned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| function(&args)))
            .map_err(|_| format!("the host function `{name}` panicked"))??;
        returned
            .iter()
            .map(WireVal::from_val)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the host function `{name}` returned a value that cannot cross: {e}"))
    }
}

/// Where a plugin's component comes from.
#[derive(Debug, Clone)]
enum Source {
    /// A file, read by the worker.
    File(PathBuf),
    /// Bytes, sent to the worker.
    Bytes {
        bytes: Arc<Vec<u8>>,
        /// Their SHA-256, in hex.
        hash: String,
    },
}

/// A plugin: a component in a sandboxed worker, started on first use.
#[derive(Debug)]
pub struct Plugin {
    source: Source,
    policy: Policy,
    host: HostFns,
    binary: Option<PathBuf>,
    name: String,
    call_timeout: Option<Duration>,
    start_timeout: Duration,
    max_answer: u32,
    cache: crate::launch::CacheChoice,
    worker: Option<Worker>,
}

/// How long a worker may take to start (the walls, compiling) unless told.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer, in bytes on the wire, unless told.
pub const MAX_ANSWER: u32 = 64 << 20;
/// An answer holds at most one value per this many of its bytes.
const BYTES_PER_VALUE: u32 = 64;
/// Without a call timeout: how long a worker may leave a request untaken.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a worker that closed its channel may take to exit.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// How long a worker's end waits for the rest of its stderr to be passed
/// on once it exited.
const STDERR_GRACE: Duration = Duration::from_secs(1);

/// The longest line of a worker's stderr passed on, in bytes.
const MAX_LINE: usize = 4096;

/// A running worker.
#[derive(Debug)]
struct Worker {
    process: Child,
    link: Link,
    exports: Vec<(String, String)>,
    /// The last line the worker wrote on stderr (its error, if it failed);
    /// every line is also passed on to this process's stderr.
    last_line: Arc<Mutex<String>>,
    /// Disconnects once the worker's stderr reached its end and every line
    /// was passed on.
    stderr_done: std::sync::mpsc::Receiver<()>,
}

/// Serializes the spawning of workers: the worker's end of its channel is
/// inheritable only while its own worker is spawned.
static SPAWNING: Mutex<()> = Mutex::new(());

impl Plugin {
    /// A plugin of the component at `module`, to run under `policy` (the
    /// `timeout` of a policy bounds the worker's whole life; use
    /// [`Plugin::call_timeout`] for each call). Nothing starts until the
    /// first call or [`Plugin::start`].
    pub fn new(module: impl Into<PathBuf>, policy: Policy) -> Plugin {
        let module = module.into();
        let name = module
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        Plugin::of(Source::File(module), name, policy)
    }

    /// A plugin of the component `bytes` (binary or text), sent to its
    /// worker over the channel, so that it need not be a file. Its name in
    /// errors and logs is its content hash (`sha256:` and 16 hex digits:
    /// [`Plugin::hash`] is the whole), and its compiled code is cached by
    /// content, as a file's is.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>, policy: Policy) -> Plugin {
        let bytes: Vec<u8> = bytes.into();
        let label = worker::label(&bytes);
        let hash = crate::cache::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let source = Source::Bytes {
            bytes: Arc::new(bytes),
            hash,
        };
        Plugin::of(source, label, policy)
    }

    fn of(source: Source, name: String, policy: Policy) -> Plugin {
        Plugin {
            source,
            policy,
            host: HostFns::default(),
            binary: None,
            name,
            call_timeout: None,
            start_timeout: START_TIMEOUT,
            max_answer: MAX_ANSWER,
            cache: crate::launch::CacheChoice::Default,
            worker: None,
        }
    }

    /// A plugin with this one's settings, its worker not started.
    fn fresh(&self) -> Plugin {
        Plugin {
            source: self.source.clone(),
            policy: self.policy.clone(),
            host: self.host.clone(),
            binary: self.binary.clone(),
            name: self.name.clone(),
            call_timeout: self.call_timeout,
            start_timeout: self.start_timeout,
            max_answer: self.max_answer,
            cache: self.cache.clone(),
            worker: None,
        }
    }

    /// The SHA-256 of a plugin given as bytes, in hex.
    pub fn hash(&self) -> Option<&str> {
        match &self.source {
            Source::Bytes { hash, .. } => Some(hash),
            Source::File(_) => None,
        }
    }

    /// Offers the plugin the host function `name`: an import of
    /// `interface.function` (`my:app/host@1.0.0.lookup`), or of a world's
    /// own `function`, is a call of `function` in this process. A plugin
    /// that imports a function not offered is refused when its worker
    /// starts ([`PluginError::Start`], naming the import); one of the
    /// plugin world's `host` interface (`log`) may be offered, and then
    /// replaces wsandbox's.
    ///
    /// The function runs on the thread that called the plugin, while that
    /// call waits (so the plugin may call it any number of times in one
    /// call), and its time counts against the call's
    /// [`Plugin::call_timeout`]. Its arguments are the plugin's values, of
    /// the import's types; its results must be of the import's result
    /// types. An error is the plugin's error value when the import returns
    /// a `result` with a `string` error (or none), else it traps the call.
    ///
    /// ```no_run
    /// use wsandbox::plugin::{Plugin, Val};
    ///
    /// let plugin = Plugin::new("hosted.wasm", wsandbox::Policy::default())
    ///     .host_fn("my:app/host.double", |args| match args {
    ///         [Val::S32(n)] => Ok(vec![Val::S32(n * 2)]),
    ///         _ => Err("double takes one s32".into()),
    ///     });
    /// ```
    pub fn host_fn(
        mut self,
        name: impl Into<String>,
        function: impl Fn(&[Val]) -> Result<Vec<Val>, String> + Send + Sync + 'static,
    ) -> Plugin {
        self.host.0.insert(name.into(), Arc::new(function));
        self
    }

    /// The name that prefixes each line the worker writes on stderr
    /// (default: the module's file name without its extension; for bytes,
    /// their hash).
    pub fn name(mut self, name: impl Into<String>) -> Plugin {
        self.name = crate::say::escaped(&name.into()).at_most(64).to_string();
        self
    }

    /// Bounds the worker's start, until it has compiled the plugin
    /// (default [`START_TIMEOUT`], 60 s): past it, the worker is killed and
    /// the call fails with [`PluginError::Start`].
    pub fn start_timeout(mut self, limit: Duration) -> Plugin {
        self.start_timeout = limit;
        self
    }

    /// Bounds an answer of the plugin's: at most `bytes` on the wire
    /// (default [`MAX_ANSWER`], 64 MiB; at most 256 MiB), and one value per
    /// 64 of them (at least 1024). A larger answer is a
    /// [`PluginError::Protocol`], and the worker is stopped.
    pub fn max_answer(mut self, bytes: u32) -> Plugin {
        self.max_answer = bytes.min(wire::MAX_FRAME);
        self
    }

    /// Whether the worker may use the compilation cache (it does unless
    /// told not to, as `wsandbox run` does). Workers of one component share
    /// its entry: the first to compile it names it as soon as it is
    /// written, before the plugin runs.
    pub fn cache(mut self, cache: bool) -> Plugin {
        self.cache = match cache {
            true => crate::launch::CacheChoice::Default,
            false => crate::launch::CacheChoice::Off,
        };
        self
    }

    /// Keeps the compilation cache in `dir` rather than the user's.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Plugin {
        self.cache = crate::launch::CacheChoice::At(dir.into());
        self
    }

    /// Uses the wsandbox binary at `path` for the worker.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Plugin {
        self.binary = Some(path.into());
        self
    }

    /// Bounds each call (the host functions it calls included), and the
    /// plugin's instantiation (its start function): past `limit`, the
    /// worker is killed and the call fails with [`PluginError::Timeout`].
    pub fn call_timeout(mut self, limit: Duration) -> Plugin {
        self.call_timeout = Some(limit);
        self
    }

    /// Starts the worker, if it is not running: compiles and instantiates
    /// the plugin behind both walls.
    pub fn start(&mut self) -> Result<(), PluginError> {
        if self.worker.is_none() {
            self.worker = Some(Worker::start(self)?);
        }
        Ok(())
    }

    /// The process id of the running worker (the `wsandbox` process outside
    /// the sandbox; the sandboxed process is its child).
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.as_ref().map(|w| w.process.id())
    }

    /// The plugin's exported functions with their signatures (WIT syntax).
    pub fn exports(&mut self) -> Result<Vec<(String, String)>, PluginError> {
        self.start()?;
        Ok(self
            .worker
            .as_ref()
            .map(|w| w.exports.clone())
            .unwrap_or_default())
    }

    /// Calls the export `name` (as `wsandbox call` names it: `greet`,
    /// `values.add`, `wsandbox:shapes/values.add`) with `args`, and returns
    /// its results.
    pub fn call(&mut self, name: &str, args: &[Val]) -> Result<Vec<Val>, PluginError> {
        let args = args
            .iter()
            .map(WireVal::from_val)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PluginError::Value(format!("cannot pass an argument to the plugin: {e}")))?;
        let request = ToWorker::Call {
            name: name.into(),
            args,
        };
        match self.ask(&request)? {
            FromWorker::Returned(results) => results
                .into_iter()
                .map(|r| r.into_val().map_err(|e| PluginError::Protocol(e.0)))
                .collect(),
            other => Err(self.unexpected(other)),
        }
    }

    /// The plugin world's `handle`: `input` in, the output or the plugin's
    /// one-line refusal out. The bytes pass as bytes, without a value per
    /// byte.
    pub fn handle(&mut self, input: &[u8]) -> Result<Result<Vec<u8>, String>, PluginError> {
        match self.ask(&ToWorker::Handle(input.to_vec()))? {
            FromWorker::Handled(output) => Ok(output),
            other => Err(self.unexpected(other)),
        }
    }

    /// Sends `request` to the worker (starting one if needed) and returns
    /// its answer, running the host functions the plugin calls meanwhile;
    /// a failure is an error, and a fatal one stops the worker.
    fn ask(&mut self, request: &ToWorker) -> Result<FromWorker, PluginError> {
        self.start()?;
        let worker = self.worker.as_mut().expect("started");
        match worker.ask(request, self.call_timeout, self.max_answer, &self.host) {
            Ok(FromWorker::Failed { kind, message, fatal }) => {
                if fatal {
                    self.stop();
                }
                Err(match kind {
                    Failure::Trap => PluginError::Trapped(message),
                    Failure::Fuel => PluginError::OutOfFuel(message),
                    Failure::Call => PluginError::Call(message),
                })
            }
            Ok(answer) => Ok(answer),
            Err(err) => {
                self.stop();
                Err(err)
            }
        }
    }

    /// An answer that does not answer the request: the worker is stopped.
    fn unexpected(&mut self, answer: FromWorker) -> PluginError {
        self.stop();
        PluginError::Protocol(format!("an answer out of place: {}", answer_name(&answer)))
    }

    /// The plugin world's `metadata`.
    pub fn metadata(&mut self) -> Result<Metadata, PluginError> {
        let results = self.call(&format!("{GUEST_INTERFACE}.metadata"), &[])?;
        let Some(Val::Record(fields)) = results.into_iter().next() else {
            return Err(not_the_world("metadata"));
        };
        let field = |name: &str| {
            fields.iter().find_map(|(n, v)| match v {
                Val::String(s) if n == name => Some(s.clone()),
                _ => None,
            })
        };
        match (field("name"), field("version"), field("description")) {
            (Some(name), Some(version), Some(description)) => Ok(Metadata {
                name,
                version,
                description,
            }),
            _ => Err(not_the_world("metadata")),
        }
    }

    /// Stops the worker (it is started again by the next call).
    pub fn stop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.stop();
    }
}

fn not_the_world(func: &str) -> PluginError {
    PluginError::Call(format!(
        "the plugin's `{func}` is not the plugin world's (wit/plugin.wit): is it a wsandbox plugin?"
    ))
}

/// A worker's message's name, for errors (not its content: it may be
/// large, and it is the worker's).
fn answer_name(answer: &FromWorker) -> &'static str {
    match answer {
        FromWorker::Hello { .. } => "a hello",
        FromWorker::Ready { .. } => "the exports",
        FromWorker::Returned(_) => "a call's results",
        FromWorker::Handled(_) => "handle's output",
        FromWorker::Failed { .. } => "a failure",
        FromWorker::HostCall { .. } => "a host function call",
    }
}

impl Worker {
    fn start(plugin: &Plugin) -> Result<Worker, PluginError> {
        let start_error = |what: String| PluginError::Start(what);
        let (binary, itself) = find_binary(plugin.binary.as_deref()).ok_or_else(|| {
            start_error(
                "no worker: call wsandbox::plugin::worker_main() first in main, set Plugin::binary or WSANDBOX_BIN, or put wsandbox on PATH".into(),
            )
        })?;
        let (channel, theirs) = UnixStream::pair().map_err(|e| start_error(format!("socketpair: {e}")))?;
        let mut process = {
            let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
            inheritable(&theirs).map_err(|e| start_error(format!("fcntl: {e}")))?;
            let mut command = Command::new(&binary);
            if itself {
                // Its own name, not /proc/self/exe, in `ps`.
                if let Some(name) = std::env::args_os().next() {
                    std::os::unix::process::CommandExt::arg0(&mut command, name);
                }
                command.arg(WORKER_ARG);
            } else {
                command.arg("worker");
            }
            match &plugin.cache {
                crate::launch::CacheChoice::Off => {
                    command.arg("--no-cache");
                }
                crate::launch::CacheChoice::At(dir) => {
                    command.arg("--cache-dir").arg(dir);
                }
                crate::launch::CacheChoice::Default => {}
            }
            let module = match &plugin.source {
                Source::File(path) => path.as_os_str(),
                Source::Bytes { .. } => std::ffi::OsStr::new("-"),
            };
            let spawned = command
                .arg("--channel-fd")
                .arg(theirs.as_raw_fd().to_string())
                .arg(module)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn();
            drop(theirs);
            spawned.map_err(|e| start_error(format!("{}: {e}", binary.display())))?
        };
        let last_line = Arc::new(Mutex::new(String::new()));
        let (done, stderr_done) = std::sync::mpsc::channel::<()>();
        if let Some(stderr) = process.stderr.take() {
            let (last_line, name) = (Arc::clone(&last_line), plugin.name.clone());
            std::thread::spawn(move || {
                pass_on(stderr, |line| {
                    crate::say!("{name}: {line}");
                    *last_line.lock().unwrap_or_else(|e| e.into_inner()) = line;
                });
                drop(done);
            });
        }
        let mut worker = Worker {
            process,
            link: Link::new(channel),
            exports: Vec::new(),
            last_line,
            stderr_done,
        };
        match worker.begin(plugin) {
            Ok(exports) => {
                worker.exports = exports;
                Ok(worker)
            }
            Err(err) => {
                worker.stop();
                Err(err)
            }
        }
    }

    /// Sends the policy, the host functions and the module if it is bytes,
    /// then waits for the worker's hello (within the start timeout) and for
    /// the plugin's exports (within the call timeout, else the start
    /// timeout: a start function may loop).
    fn begin(&mut self, plugin: &Plugin) -> Result<Vec<(String, String)>, PluginError> {
        let policy = serde_json::to_string(&plugin.policy)
            .map_err(|e| PluginError::Start(format!("cannot send the policy: {e}")))?;
        let start = ToWorker::Start {
            protocol: PROTOCOL,
            policy: PolicySource::Json(policy),
            imports: plugin.host.0.keys().cloned().collect(),
            module: match &plugin.source {
                Source::Bytes { bytes, .. } => Some(bytes.to_vec()),
                Source::File(_) => None,
            },
        };
        self.link.until(Some(Instant::now() + plugin.start_timeout));
        if let Err(err) = self.link.send(&start) {
            return Err(PluginError::Start(match err.kind() {
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                    format!(
                        "the worker did not take its policy within {}",
                        crate::policy::duration_text(plugin.start_timeout)
                    )
                }
                _ => format!("{err}; {}", self.ended()),
            }));
        }
        let timed_out = |what: &str| {
            PluginError::Start(format!(
                "the worker did not {what} within {}",
                crate::policy::duration_text(plugin.start_timeout)
            ))
        };
        let hello = self.link.read_frame(1 << 20);
        let hello = match hello {
            // A worker of protocol 2 or earlier says hello in JSON.
            Ok(Some(body)) if wire::is_json(&body) => {
                return Err(match wire::json_hello(&body) {
                    Some(found) => PluginError::Version { found },
                    None => PluginError::Protocol("JSON where a hello was wanted".into()),
                });
            }
            Ok(Some(body)) => wire::decode(&body, 1 << 10).map(Received::Message),
            Ok(None) => Ok(Received::Closed),
            Err(err) => Err(err),
        };
        match self.awaited(hello)? {
            Awaited::Message(FromWorker::Hello { protocol }) if protocol == PROTOCOL => {}
            Awaited::Message(FromWorker::Hello { protocol }) => {
                return Err(PluginError::Version { found: protocol });
            }
            Awaited::Message(other) => {
                return Err(PluginError::Protocol(format!(
                    "{} before hello",
                    answer_name(&other)
                )));
            }
            Awaited::TimedOut => return Err(timed_out("compile the plugin")),
        }
        let limit = plugin.call_timeout.unwrap_or(plugin.start_timeout);
        self.link.until(Some(Instant::now() + limit));
        let ready = self.link.receive(plugin.max_answer);
        match self.awaited(ready)? {
            Awaited::Message(FromWorker::Ready { exports }) => Ok(exports),
            Awaited::Message(other) => Err(PluginError::Protocol(format!(
                "{} before the exports",
                answer_name(&other)
            ))),
            Awaited::TimedOut if plugin.call_timeout.is_some() => Err(PluginError::Timeout(limit)),
            Awaited::TimedOut => Err(timed_out("instantiate the plugin")),
        }
    }

    /// What a wait for one of the worker's first messages gave: the
    /// message, or the deadline passed; any other end is the error.
    fn awaited(&mut self, got: std::io::Result<Received<FromWorker>>) -> Result<Awaited, PluginError> {
        match got {
            Ok(Received::Message(message)) => Ok(Awaited::Message(message)),
            Ok(Received::Closed) => Err(PluginError::Start(self.ended())),
            Err(err) if timed_out(&err) => Ok(Awaited::TimedOut),
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                Err(PluginError::Protocol(err.to_string()))
            }
            // A worker that exited with our message unread resets the
            // channel: how it ended is the news.
            Err(err) => Err(PluginError::Start(format!("{err}; {}", self.ended()))),
        }
    }

    /// Sends `request` and waits for the answer (of at most `max_answer`
    /// bytes), at most `limit` for both and the host functions the plugin
    /// calls meanwhile, which `host` runs.
    fn ask(
        &mut self,
        request: &ToWorker,
        limit: Option<Duration>,
        max_answer: u32,
        host: &HostFns,
    ) -> Result<FromWorker, PluginError> {
        let deadline = limit.map(|limit| Instant::now() + limit);
        let mut request = std::borrow::Cow::Borrowed(request);
        loop {
            self.link
                .until(Some(deadline.unwrap_or_else(|| Instant::now() + SEND_TIMEOUT)));
            if let Err(err) = self.link.send(&request) {
                return Err(match (timed_out(&err), limit) {
                    (true, Some(limit)) => PluginError::Timeout(limit),
                    (true, None) => PluginError::Died(format!(
                        "the worker did not take the request within {SEND_TIMEOUT:?}"
                    )),
                    (false, _) => PluginError::Died(format!("{err}; {}", self.ended())),
                });
            }
            self.link.until(deadline);
            let answer = match self.link.receive(max_answer) {
                Ok(Received::Message(answer)) => answer,
                Ok(Received::Closed) => return Err(PluginError::Died(self.ended())),
                Err(err) if timed_out(&err) => return Err(PluginError::Timeout(limit.unwrap_or_default())),
                Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(PluginError::Protocol(err.to_string()));
                }
                Err(err) => return Err(PluginError::Died(format!("{err}; {}", self.ended()))),
            };
            let FromWorker::HostCall { name, args } = answer else {
                return Ok(answer);
            };
            let returned = host.run(&name, args);
            if let (Some(deadline), Some(limit)) = (deadline, limit)
                && Instant::now() >= deadline
            {
                return Err(PluginError::Timeout(limit));
            }
            request = std::borrow::Cow::Owned(ToWorker::HostReturned(returned));
        }
    }

    /// Waits (at most [`EXIT_GRACE`], then kills it) for a worker that
    /// closed its channel; says how it ended.
    fn ended(&mut self) -> String {
        let until = Instant::now() + EXIT_GRACE;
        let status = loop {
            match self.process.try_wait() {
                Ok(Some(status)) => break Ok(status.to_string()),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => {
                    let _ = self.process.kill();
                    let _ = self.process.wait();
                    break Ok(format!(
                        "still running {EXIT_GRACE:?} after it closed its channel: killed"
                    ));
                }
                Err(err) => break Err(err.to_string()),
            }
        };
        // Every line the worker wrote is passed on before its end is told
        // (something it started may hold its stderr open: not for long).
        let _ = self.stderr_done.recv_timeout(STDERR_GRACE);
        let line = self.last_line.lock().map(|l| l.clone()).unwrap_or_default();
        let status = status.unwrap_or_else(|e| e);
        if line.is_empty() {
            format!("the worker ended ({status})")
        } else {
            format!("{} ({status})", line.trim_start_matches("wsandbox: "))
        }
    }

    /// Ends the worker: closes its channel (it exits), and kills it if it
    /// has not within a moment.
    fn stop(mut self) {
        let _ = self.link.shutdown();
        for _ in 0..50 {
            if matches!(self.process.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// Whether `err` is a deadline that passed.
fn timed_out(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// See [`Worker::awaited`].
enum Awaited {
    Message(FromWorker),
    TimedOut,
}

/// How many values an answer of at most `max_answer` bytes may hold.
fn values_of(max_answer: u32) -> usize {
    (max_answer / BYTES_PER_VALUE).max(1024) as usize
}

/// Passes the worker's stderr `from` on to `each`, a line at a time: each
/// at most [`MAX_LINE`] bytes (the rest of a longer one is dropped, and
/// the line marked `[...]`), not UTF-8 replaced, control characters
/// escaped — whatever the worker writes, it is never more than one line
/// of this process's stderr, and never holds more than a line in memory.
fn pass_on(mut from: impl std::io::Read, mut each: impl FnMut(String)) {
    let mut line = Vec::with_capacity(256);
    let mut cut = false;
    let mut emit = |line: &mut Vec<u8>, cut: &mut bool| {
        let mut text = crate::say::escaped(&String::from_utf8_lossy(line))
            .at_most(MAX_LINE)
            .to_string();
        if std::mem::take(cut) && !text.ends_with("[...]") {
            text.push_str(" [...]");
        }
        each(text);
        line.clear();
    };
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        for piece in buf[..n].split_inclusive(|&b| b == b'\n') {
            let (body, ends) = match piece.split_last() {
                Some((b'\n', body)) => (body, true),
                _ => (piece, false),
            };
            let room = MAX_LINE.saturating_sub(line.len());
            line.extend_from_slice(&body[..body.len().min(room)]);
            cut |= body.len() > room;
            if ends {
                emit(&mut line, &mut cut);
            }
        }
    }
    if !line.is_empty() || cut {
        emit(&mut line, &mut cut);
    }
}

/// The host's end of a worker's channel: frames read through a buffer (a
/// small answer is one `read`), each written in one `write`, every wait
/// bounded by the deadline of what is being done ([`Link::until`]).
#[derive(Debug)]
struct Link {
    reader: BufReader<Timed>,
}

/// The socket, each read or write ending by a deadline for the whole
/// message (however many calls it takes): past it, they fail with
/// `TimedOut`.
#[derive(Debug)]
struct Timed {
    stream: UnixStream,
    deadline: Option<Instant>,
    /// The socket's read and write timeouts, as last set.
    read_set: Option<Duration>,
    write_set: Option<Duration>,
}

/// How far past its deadline a wait may end: a socket's timeout is set
/// again only when the one it has would end later than that (most calls
/// then cost no system call but the read and the write).
const SLACK: Duration = Duration::from_millis(10);

impl Link {
    fn new(stream: UnixStream) -> Link {
        let timed = Timed {
            stream,
            deadline: None,
            read_set: None,
            write_set: None,
        };
        Link {
            reader: BufReader::with_capacity(64 << 10, timed),
        }
    }

    /// Bounds what follows by `deadline` (`None`: no bound).
    fn until(&mut self, deadline: Option<Instant>) {
        self.reader.get_mut().deadline = deadline;
    }

    fn send(&mut self, message: &ToWorker) -> std::io::Result<()> {
        let frame = wire::frame(message)?;
        self.reader.get_mut().write_all(&frame)
    }

    /// The next frame's body, of at most `max_frame` bytes.
    fn read_frame(&mut self, max_frame: u32) -> std::io::Result<Option<Vec<u8>>> {
        wire::read_frame(&mut self.reader, max_frame)
    }

    /// The worker's next message, of at most `max_answer` bytes and
    /// [`values_of`] it values.
    fn receive(&mut self, max_answer: u32) -> std::io::Result<Received<FromWorker>> {
        match self.read_frame(max_answer)? {
            None => Ok(Received::Closed),
            Some(body) => wire::decode(&body, values_of(max_answer)).map(Received::Message),
        }
    }

    fn shutdown(&self) -> std::io::Result<()> {
        self.reader.get_ref().stream.shutdown(std::net::Shutdown::Both)
    }
}

impl Timed {
    /// What a wait may take now (`None`: forever); past the deadline, the
    /// error.
    fn left(&self) -> std::io::Result<Option<Duration>> {
        match self.deadline {
            None => Ok(None),
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(Some(left)),
                _ => Err(std::io::ErrorKind::TimedOut.into()),
            },
        }
    }

    /// Sets a timeout (`current`, by `set`) that ends a wait by `left`,
    /// unless the one set already does, give or take [`SLACK`].
    fn bound(
        current: &mut Option<Duration>,
        left: Option<Duration>,
        set: impl FnOnce(Option<Duration>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let enough = match (left, *current) {
            (None, None) => true,
            (Some(left), Some(set)) => set <= left + SLACK,
            _ => false,
        };
        if !enough {
            set(left)?;
            *current = left;
        }
        Ok(())
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let left = self.left()?;
            let stream = &self.stream;
            Timed::bound(&mut self.read_set, left, |t| stream.set_read_timeout(t))?;
            match (&self.stream).read(buf) {
                // The socket's timeout, not the deadline: `left` says.
                Err(err) if timed_out(&err) => continue,
                other => return other,
            }
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            let left = self.left()?;
            let stream = &self.stream;
            Timed::bound(&mut self.write_set, left, |t| stream.set_write_timeout(t))?;
            match (&self.stream).write(buf) {
                Err(err) if timed_out(&err) => continue,
                other => return other,
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The worker to start: its program, and whether it is this program
/// (started with [`WORKER_ARG`]) or a `wsandbox` binary (`wsandbox worker`).
fn find_binary(explicit: Option<&Path>) -> Option<(PathBuf, bool)> {
    if let Some(path) = explicit {
        return Some((path.into(), false));
    }
    if let Some(path) = std::env::var_os("WSANDBOX_BIN").filter(|p| !p.is_empty()) {
        return Some((path.into(), false));
    }
    if SELF_WORKER.load(Ordering::Relaxed) {
        return Some((PathBuf::from("/proc/self/exe"), true));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("wsandbox"))
        .find(|path| path.is_file())
        .map(|path| (path, false))
}

/// The first argument that makes a program that called [`worker_main`] a
/// plugin worker.
pub const WORKER_ARG: &str = "--wsandbox-plugin-worker";

/// [`worker_main`] was called: this program is its own plugins' worker.
static SELF_WORKER: AtomicBool = AtomicBool::new(false);

/// Makes this program the worker of its own plugins, so that no `wsandbox`
/// binary need be installed: call it first in `main`, before any thread
/// starts.
///
/// Started by a [`Plugin`] as a worker (its first argument is
/// [`WORKER_ARG`]), it serves the plugin behind both walls and ends the
/// process; otherwise it returns at once, and from then on this program's
/// plugins run in copies of it (`/proc/self/exe`) unless
/// [`Plugin::binary`] or `WSANDBOX_BIN` names another worker.
///
/// ```no_run
/// // First thing in `main`:
/// wsandbox::plugin::worker_main();
/// // ... then the host program, with its plugins.
/// ```
pub fn worker_main() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(WORKER_ARG)) {
        SELF_WORKER.store(true, Ordering::Relaxed);
        return;
    }
    let code = match worker::from_args(args) {
        Ok(code) => code,
        Err(err) => {
            crate::say!("wsandbox: {err}");
            err.exit_code()
        }
    };
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::process::exit(code.into())
}

/// Lets `socket` be inherited by the next program this process spawns.
fn inheritable(socket: &UnixStream) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(socket, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        pass_on(input, |line| out.push(line));
        out
    }

    #[test]
    fn a_workers_stderr_is_passed_on_as_bounded_escaped_lines() {
        assert_eq!(lines(b"one\ntwo\n"), ["one", "two"]);
        assert_eq!(lines(b"no newline"), ["no newline"]);
        assert_eq!(lines(b"\x1b[2Jclear\r\n"), ["\\u{1b}[2Jclear\\r"]);
        assert_eq!(lines(b"bad \xff utf-8\n"), ["bad \u{fffd} utf-8"]);
        // A line of 10 MB without a newline: one line of 4 KiB, marked.
        let huge = vec![b'x'; 10 << 20];
        let got = lines(&huge);
        assert_eq!(got.len(), 1);
        assert!(
            got[0].len() <= MAX_LINE + 16 && got[0].ends_with(" [...]"),
            "{}",
            got[0].len()
        );
        // What follows a cut line is the next line, whole.
        let mut two = vec![b'y'; 3 * MAX_LINE];
        two.extend_from_slice(b"\nnext\n");
        let got = lines(&two);
        assert_eq!(got.len(), 2);
        assert!(got[0].ends_with(" [...]"));
        assert_eq!(got[1], "next");
    }
}
