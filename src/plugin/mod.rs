//! Plugins for host programs: a component kept alive in a sandboxed worker
//! process, called like a function.
//!
//! A [`Plugin`] starts `wsandbox worker` — the same binary, behind the same
//! two walls as `wsandbox run`, under the [`Policy`] you give — which
//! compiles the component once (with the compilation cache), instantiates
//! it once, and answers calls over a private socket. State persists
//! between calls. A trap, a call past its time limit or a worker that died
//! is an error value, and the next call starts a fresh worker. Several
//! plugins (and several workers of one module) may run at once.
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
//! The worker binary is found in this order: [`Plugin::binary`], the
//! `WSANDBOX_BIN` environment variable, then `wsandbox` on `PATH`. It must
//! speak this library's protocol version ([`wire::PROTOCOL`]); another is
//! refused. Any value but resources, streams, futures and maps can cross
//! both ways; `handle`'s bytes cross without a value per byte.

pub mod wire;
pub mod worker;

use crate::Policy;
use crate::engine::GUEST_INTERFACE;
use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub use wasmtime::component::Val;
use wire::{FromWorker, PROTOCOL, Received, ToWorker, WireVal};

/// What went wrong with a plugin call. After `Trapped`, `OutOfFuel`,
/// `Timeout` and `Died` the worker is gone, and the next call starts a
/// fresh one; after `Call` and `Value` it lives on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The worker could not be started, or ended before it was ready.
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
    /// The plugin trapped.
    #[error("the plugin trapped: {0}")]
    Trapped(String),
    /// The call burnt all the fuel the policy gives a call.
    #[error("the plugin ran out of fuel: {0}")]
    OutOfFuel(String),
    /// The call ran past [`Plugin::call_timeout`]; its worker was killed.
    #[error("the plugin's call ran past its time limit ({0:?}) and its worker was stopped")]
    Timeout(Duration),
    /// The worker died during a call.
    #[error("the plugin's worker died: {0}")]
    Died(String),
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

/// A plugin: a component in a sandboxed worker, started on first use.
#[derive(Debug)]
pub struct Plugin {
    module: PathBuf,
    policy: Policy,
    binary: Option<PathBuf>,
    call_timeout: Option<Duration>,
    cache: bool,
    worker: Option<Worker>,
}

/// A running worker.
#[derive(Debug)]
struct Worker {
    process: Child,
    channel: UnixStream,
    exports: Vec<(String, String)>,
    /// The last line the worker wrote on stderr (its error, if it failed);
    /// every line is also passed on to this process's stderr.
    last_line: Arc<Mutex<String>>,
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
        Plugin {
            module: module.into(),
            policy,
            binary: None,
            call_timeout: None,
            cache: true,
            worker: None,
        }
    }

    /// Whether the worker may use the compilation cache (it does unless
    /// told not to, as `wsandbox run` does).
    pub fn cache(mut self, cache: bool) -> Plugin {
        self.cache = cache;
        self
    }

    /// Uses the wsandbox binary at `path` for the worker.
    pub fn binary(mut self, path: impl Into<PathBuf>) -> Plugin {
        self.binary = Some(path.into());
        self
    }

    /// Bounds each call: past `limit`, the worker is killed and the call
    /// fails with [`PluginError::Timeout`].
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
    /// one-line refusal out. The bytes pass typed, without a value per byte.
    pub fn handle(&mut self, input: &[u8]) -> Result<Result<Vec<u8>, String>, PluginError> {
        match self.ask(&ToWorker::Handle(crate::cache::hex(input)))? {
            FromWorker::Handled(Ok(output)) => {
                Ok(Ok(wire::unhex(&output).map_err(|e| PluginError::Protocol(e.0))?))
            }
            FromWorker::Handled(Err(why)) => Ok(Err(why)),
            other => Err(self.unexpected(other)),
        }
    }

    /// Sends `request` to the worker (starting one if needed) and returns
    /// its answer; a failure is an error, and a fatal one stops the worker.
    fn ask(&mut self, request: &ToWorker) -> Result<FromWorker, PluginError> {
        self.start()?;
        let worker = self.worker.as_mut().expect("started");
        match worker.ask(request, self.call_timeout) {
            Ok(FromWorker::Failed { kind, message, fatal }) => {
                if fatal {
                    self.stop();
                }
                Err(match kind.as_str() {
                    "trap" => PluginError::Trapped(message),
                    "fuel" => PluginError::OutOfFuel(message),
                    _ => PluginError::Call(message),
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
        PluginError::Protocol(format!("an answer out of place: {answer:?}"))
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

impl Worker {
    fn start(plugin: &Plugin) -> Result<Worker, PluginError> {
        let start_error = |what: String| PluginError::Start(what);
        let binary = find_binary(plugin.binary.as_deref()).ok_or_else(|| {
            start_error(
                "no wsandbox binary: set Plugin::binary, WSANDBOX_BIN, or put wsandbox on PATH".into(),
            )
        })?;
        let policy = serde_json::to_string(&plugin.policy).map_err(|e| start_error(e.to_string()))?;
        let (channel, theirs) = UnixStream::pair().map_err(|e| start_error(format!("socketpair: {e}")))?;
        let mut process = {
            let _spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
            inheritable(&theirs).map_err(|e| start_error(format!("fcntl: {e}")))?;
            let mut command = Command::new(&binary);
            command.arg("worker");
            if !plugin.cache {
                command.arg("--no-cache");
            }
            let spawned = command
                .arg("--channel-fd")
                .arg(theirs.as_raw_fd().to_string())
                .arg("--policy")
                .arg(&policy)
                .arg(&plugin.module)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn();
            drop(theirs);
            spawned.map_err(|e| start_error(format!("{}: {e}", binary.display())))?
        };
        let last_line = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = process.stderr.take() {
            let last_line = Arc::clone(&last_line);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    crate::say!("{line}");
                    *last_line.lock().unwrap_or_else(|e| e.into_inner()) = line;
                }
            });
        }
        let mut worker = Worker {
            process,
            channel,
            exports: Vec::new(),
            last_line,
        };
        match wire::receive::<FromWorker>(&mut worker.channel) {
            Ok(Received::Message(FromWorker::Hello { protocol, exports })) if protocol == PROTOCOL => {
                worker.exports = exports;
                Ok(worker)
            }
            Ok(Received::Message(FromWorker::Hello { protocol, .. })) => {
                worker.stop();
                Err(PluginError::Version { found: protocol })
            }
            Ok(Received::Message(other)) => {
                worker.stop();
                Err(PluginError::Protocol(format!("{other:?} before hello")))
            }
            Ok(Received::Closed) => Err(PluginError::Start(worker.ended())),
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                worker.stop();
                Err(PluginError::Protocol(err.to_string()))
            }
            Err(err) => {
                worker.stop();
                Err(PluginError::Start(err.to_string()))
            }
        }
    }

    /// Sends `request` and waits for the answer, at most `limit`.
    fn ask(&mut self, request: &ToWorker, limit: Option<Duration>) -> Result<FromWorker, PluginError> {
        if let Err(err) = wire::send(&mut self.channel, request) {
            return Err(PluginError::Died(format!("{err}; {}", self.ended())));
        }
        let mut reader = Deadline {
            channel: &self.channel,
            deadline: limit.map(|limit| Instant::now() + limit),
        };
        match wire::receive::<FromWorker>(&mut reader) {
            Ok(Received::Message(answer)) => Ok(answer),
            Ok(Received::Closed) => Err(PluginError::Died(self.ended())),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(PluginError::Timeout(limit.unwrap_or_default()))
            }
            Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
                Err(PluginError::Protocol(err.to_string()))
            }
            Err(err) => Err(PluginError::Died(err.to_string())),
        }
    }

    /// Waits for a worker that closed its channel; says how it ended.
    fn ended(&mut self) -> String {
        let status = self.process.wait();
        // Let the stderr thread pass on the worker's last line.
        std::thread::sleep(Duration::from_millis(20));
        let line = self.last_line.lock().map(|l| l.clone()).unwrap_or_default();
        let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        if line.is_empty() {
            format!("the worker ended ({status})")
        } else {
            format!("{} ({status})", line.trim_start_matches("wsandbox: "))
        }
    }

    /// Ends the worker: closes its channel (it exits), and kills it if it
    /// has not within a moment.
    fn stop(mut self) {
        let _ = self.channel.shutdown(std::net::Shutdown::Both);
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

/// The channel, read until a deadline for the whole answer (however many
/// reads it takes): past it, reads fail with `TimedOut`.
struct Deadline<'a> {
    channel: &'a UnixStream,
    deadline: Option<Instant>,
}

impl std::io::Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = match self.deadline {
            None => None,
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Err(std::io::ErrorKind::TimedOut.into()),
            },
        };
        self.channel.set_read_timeout(left)?;
        let mut channel = self.channel;
        channel.read(buf)
    }
}

/// The wsandbox binary: `explicit`, else `$WSANDBOX_BIN`, else `wsandbox`
/// on `PATH`.
fn find_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.into());
    }
    if let Some(path) = std::env::var_os("WSANDBOX_BIN").filter(|p| !p.is_empty()) {
        return Some(path.into());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("wsandbox"))
        .find(|path| path.is_file())
}

/// Lets `socket` be inherited by the next program this process spawns.
fn inheritable(socket: &UnixStream) -> nix::Result<()> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(socket, FcntlArg::F_SETFD(FdFlag::empty())).map(drop)
}
