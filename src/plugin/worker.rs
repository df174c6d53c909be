//! The worker's side of a plugin: inside both walls, one live instance
//! answering calls over the channel until the host closes it, and asking
//! the host whenever the plugin calls one of its functions.

use super::wire::{self, Failure, FromWorker, PROTOCOL, PolicySource, Received, ToWorker, WireVal};
use crate::engine::{CallFailure, HostCalls, Live, Program};
use crate::launch::{CacheChoice, Job, Launch};
use crate::{Error, Policy};
use std::collections::HashSet;
use std::io::{BufReader, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::component::Val;
use wasmtime::component::types::{ComponentFunc, Type};

/// What the host's first message says.
#[derive(Debug)]
pub struct Started {
    /// The plugin's policy.
    pub policy: Policy,
    /// The host functions it offers.
    pub imports: Vec<String>,
    /// The module, if the host sent it rather than naming a file.
    pub module: Option<Vec<u8>>,
}

/// The worker's whole life: reads the host's first message (the policy,
/// never on the command line, which every user can read; the host's
/// functions; the module when `module` is `None`), then serves the plugin
/// behind both walls until the host closes the channel. Returns the exit
/// code, in the supervisor and in the sandbox.
pub fn run(channel: OwnedFd, module: Option<&Path>, cache: CacheChoice) -> Result<u8, Error> {
    let mut channel = std::fs::File::from(channel);
    let started = start(&mut channel)?;
    let (path, bytes) = match (module, started.module) {
        (Some(path), None) => (path.to_path_buf(), None),
        (None, Some(bytes)) => (PathBuf::from(label(&bytes)), Some(bytes)),
        (Some(_), Some(_)) => return Err(channel_error("a module both named and sent")),
        (None, None) => return Err(channel_error("no module: neither named nor sent")),
    };
    Launch::new(
        path,
        Job::Worker {
            channel: channel.into(),
            imports: started.imports,
        },
    )
    .policy(started.policy)
    .module_bytes(bytes)
    .cache(cache)
    .execute()
}

/// The name of a module sent as bytes, in errors and logs: its content
/// hash, `sha256:` and the first 16 hex digits of its SHA-256.
pub fn label(bytes: &[u8]) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
    format!("sha256:{}", &crate::cache::hex(&digest)[..16])
}

fn channel_error(why: impl std::fmt::Display) -> Error {
    Error::Call(format!("the plugin's channel: {why}"))
}

/// A worker started as `PROGRAM --wsandbox-plugin-worker --channel-fd FD
/// [--no-cache | --cache-dir DIR] MODULE` ([`super::worker_main`]; MODULE
/// `-`: sent by the host): `args` are those after the first.
pub(super) fn from_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<u8, Error> {
    let usage = |why: &str| Error::Call(format!("a plugin worker's arguments: {why}"));
    let (mut fd, mut cache, mut module) = (None, CacheChoice::Default, None);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--channel-fd") => {
                let value = args.next().and_then(|v| v.to_str()?.parse::<i32>().ok());
                fd = Some(value.ok_or_else(|| usage("--channel-fd needs a descriptor number"))?);
            }
            Some("--no-cache") => cache = CacheChoice::Off,
            Some("--cache-dir") => {
                let dir = args
                    .next()
                    .ok_or_else(|| usage("--cache-dir needs a directory"))?;
                cache = CacheChoice::At(dir.into());
            }
            _ if module.is_none() && args.peek().is_none() => module = Some(PathBuf::from(arg)),
            _ => return Err(usage(&format!("unexpected {:?}", arg))),
        }
    }
    let fd = fd.ok_or_else(|| usage("no --channel-fd"))?;
    let module = module.ok_or_else(|| usage("no module"))?;
    let channel = crate::sys::inherited_fd(fd).map_err(crate::wall::WallError::from)?;
    run(channel, sent_or_named(&module), cache)
}

/// MODULE as the worker's argument: `-` for a module the host sends.
pub fn sent_or_named(module: &Path) -> Option<&Path> {
    (module != Path::new("-")).then_some(module)
}

/// Reads the host's first message. A host of another protocol version is
/// an error (after the worker said its own, so that the host can say which
/// it speaks: in JSON to a host of protocol 2), as is anything else.
fn start(channel: &mut std::fs::File) -> Result<Started, Error> {
    let body = match wire::read_frame(channel, wire::MAX_FRAME).map_err(channel_error)? {
        Some(body) => body,
        None => return Err(channel_error("the host closed it before the policy")),
    };
    if wire::is_json(&body) {
        let _ = channel.write_all(&wire::json_hello_frame());
        return Err(channel_error(format!(
            "the host speaks an older protocol (JSON), this worker {PROTOCOL}"
        )));
    }
    let (policy, imports, module) = match wire::decode::<ToWorker>(&body, usize::MAX) {
        Ok(ToWorker::Start {
            protocol,
            policy,
            imports,
            module,
        }) if protocol == PROTOCOL => (policy, imports, module),
        Ok(ToWorker::Start { protocol, .. }) => {
            let _ = hello(channel);
            return Err(channel_error(format!(
                "the host speaks protocol {protocol}, this worker {PROTOCOL}"
            )));
        }
        Ok(_) => return Err(channel_error("the host did not start with the policy")),
        Err(err) => return Err(channel_error(err)),
    };
    let policy = match policy {
        PolicySource::Json(json) => serde_json::from_str(&json)
            .map_err(|e| crate::policy::PolicyError::Unreadable(format!("the host's policy: {e}")))?,
        PolicySource::File(path) => Policy::from_file(Path::new(&path))?,
    };
    Ok(Started {
        policy,
        imports,
        module,
    })
}

/// Says which protocol this worker speaks: the code is compiled, and the
/// plugin is about to be instantiated.
fn hello(channel: &mut std::fs::File) -> std::io::Result<()> {
    wire::send(channel, &FromWorker::Hello { protocol: PROTOCOL })
}

/// The worker's end of the channel, shared by the loop that answers the
/// host's requests and the host functions that ask the host in the middle
/// of one. It is a socket used as a file: `read` and `write` are on the
/// sandbox's syscall allow-list, `recvfrom` and `sendto` are not.
pub(crate) struct Channel(Mutex<BufReader<std::fs::File>>);

impl Channel {
    /// The channel over `fd`.
    pub(crate) fn new(fd: OwnedFd) -> Arc<Channel> {
        Arc::new(Channel(Mutex::new(BufReader::with_capacity(
            64 << 10,
            std::fs::File::from(fd),
        ))))
    }

    fn send(&self, message: &FromWorker) -> std::io::Result<()> {
        let frame = wire::frame(message)?;
        let reader = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut file = reader.get_ref();
        file.write_all(&frame)
    }

    fn receive(&self) -> std::io::Result<Received<ToWorker>> {
        let mut reader = self.0.lock().unwrap_or_else(|e| e.into_inner());
        wire::receive(&mut *reader)
    }
}

/// The host's functions, each call forwarded over the channel.
pub(crate) struct Forwarder {
    channel: Arc<Channel>,
    offered: HashSet<String>,
}

impl Forwarder {
    /// Calls of `offered` over `channel`.
    pub(crate) fn new(channel: Arc<Channel>, offered: Vec<String>) -> Forwarder {
        Forwarder {
            channel,
            offered: offered.into_iter().collect(),
        }
    }
}

impl HostCalls for Forwarder {
    fn offers(&self, name: &str) -> bool {
        self.offered.contains(name)
    }

    fn call(
        &self,
        name: &str,
        ty: &ComponentFunc,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let fail = |why: String| wasmtime::Error::msg(format!("host function `{name}`: {why}"));
        let args = params
            .iter()
            .zip(ty.params())
            .map(|(param, (_, ty))| WireVal::from_typed(param, &ty))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(e.0))?;
        self.channel
            .send(&FromWorker::HostCall {
                name: name.into(),
                args,
            })
            .map_err(|e| fail(format!("cannot ask the host: {e}")))?;
        let types: Vec<Type> = ty.results().collect();
        match self.channel.receive() {
            Ok(Received::Message(ToWorker::HostReturned(Ok(mut values)))) => {
                // A host without the function's types answers a function
                // of no results with one `none`.
                if types.is_empty() && values == [WireVal::Option(None)] {
                    values.clear();
                }
                if values.len() != types.len() {
                    return Err(fail(format!(
                        "the host returned {} value(s), {} wanted",
                        values.len(),
                        types.len()
                    )));
                }
                for ((slot, value), ty) in results.iter_mut().zip(values).zip(&types) {
                    *slot = value
                        .into_typed(ty)
                        .map_err(|e| fail(format!("the host returned {e}")))?;
                }
                Ok(())
            }
            Ok(Received::Message(ToWorker::HostReturned(Err(why)))) => match types.as_slice() {
                // A function that returns a `result` fails with its error
                // value: the host's message, if the error is a string.
                [Type::Result(result)] if matches!(result.err(), None | Some(Type::String)) => {
                    let payload = result.err().map(|_| Box::new(Val::String(why)));
                    results[0] = Val::Result(Err(payload));
                    Ok(())
                }
                _ => Err(fail(format!("failed: {why}"))),
            },
            Ok(Received::Message(other)) => Err(fail(format!(
                "the host sent {} where the function's answer was wanted",
                what(&other)
            ))),
            Ok(Received::Closed) => Err(fail("the host closed the channel".into())),
            Err(err) => Err(fail(format!("the channel failed: {err}"))),
        }
    }
}

/// A message's name, for errors.
fn what(message: &ToWorker) -> &'static str {
    match message {
        ToWorker::Start { .. } => "the policy",
        ToWorker::Call { .. } => "a call",
        ToWorker::Handle(_) => "a handle call",
        ToWorker::HostReturned(_) => "a host function's answer",
    }
}

/// Inside both walls: says hello, instantiates the plugin, and answers the
/// host over `channel` until it closes it.
pub(crate) fn serve_channel(policy: &Policy, program: Program, channel: &Channel) -> Result<(), Error> {
    let failed = |e: std::io::Error| Error::Call(format!("the plugin's channel failed: {e}"));
    channel
        .send(&FromWorker::Hello { protocol: PROTOCOL })
        .map_err(failed)?;
    let live = program.instantiate(policy)?;
    match serve(live, channel, policy.fuel) {
        // The host left (it stopped the worker in the middle of a call).
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(failed),
    }
}

/// Says the plugin is instantiated and what it exports, then answers each
/// call, until the host closes the channel (`Ok`) or a call ends the
/// instance (a trap, no fuel left: `Ok` after saying so). Garbage from the
/// host is an `Err`.
fn serve(mut live: Live, channel: &Channel, fuel: Option<u64>) -> std::io::Result<()> {
    channel.send(&FromWorker::Ready {
        exports: live.exports().to_vec(),
    })?;
    loop {
        let request = match channel.receive()? {
            Received::Closed => return Ok(()),
            Received::Message(message) => message,
        };
        let failed =
            |kind: Failure, message: String, fatal: bool| FromWorker::Failed { kind, message, fatal };
        let failure = |failure: CallFailure| match failure {
            CallFailure::Call(message) => failed(Failure::Call, message, false),
            CallFailure::Trapped(message) => failed(Failure::Trap, message, true),
            CallFailure::OutOfFuel => failed(
                Failure::Fuel,
                format!(
                    "the call ran out of fuel ({} {})",
                    crate::policy::Setting::Fuel,
                    fuel.unwrap_or_default()
                ),
                true,
            ),
        };
        let answer = match request {
            ToWorker::Call { name, args } => {
                match live.call_fitting(&name, args, |arg, ty| arg.into_typed(ty).map_err(|e| e.0)) {
                    Ok((results, types)) => match results
                        .iter()
                        .zip(&types)
                        .map(|(result, ty)| WireVal::from_typed(result, ty))
                        .collect::<Result<Vec<_>, _>>()
                    {
                        Ok(results) => FromWorker::Returned(results),
                        Err(err) => failed(Failure::Call, err.0, false),
                    },
                    Err(err) => failure(err),
                }
            }
            ToWorker::Handle(input) => match live.handle(input) {
                Ok(output) => FromWorker::Handled(output),
                Err(err) => failure(err),
            },
            other => failed(
                Failure::Call,
                format!("{} out of place: a call was wanted", what(&other)),
                false,
            ),
        };
        let fatal = matches!(answer, FromWorker::Failed { fatal: true, .. });
        channel.send(&answer)?;
        if fatal {
            return Ok(());
        }
    }
}
