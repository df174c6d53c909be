//! The worker's side of a plugin: inside both walls, one live instance
//! answering calls over the channel until the host closes it.

use super::wire::{self, Failure, FromWorker, PROTOCOL, Received, ToWorker, WireVal};
use crate::engine::{CallFailure, Live, Program};
use crate::launch::{CacheChoice, Job, Launch};
use crate::{Error, Policy};
use std::os::fd::OwnedFd;
use std::path::Path;

/// The worker's whole life: reads the policy from `channel` (never from
/// the command line, which every user can read), then serves the plugin at
/// `module` behind both walls until the host closes the channel. Returns
/// the exit code, in the supervisor and in the sandbox.
pub fn run(channel: OwnedFd, module: &Path, cache: bool) -> Result<u8, Error> {
    let mut channel = std::fs::File::from(channel);
    let policy = policy(&mut channel).map_err(|e| Error::Call(format!("the plugin's channel: {e}")))?;
    Launch::new(
        module,
        Job::Worker {
            channel: channel.into(),
        },
    )
    .policy(policy)
    .cache(if cache {
        CacheChoice::Default
    } else {
        CacheChoice::Off
    })
    .execute()
}

/// A worker started as `PROGRAM --wsandbox-plugin-worker --channel-fd FD
/// [--no-cache] MODULE` ([`super::worker_main`]): `args` are those after
/// the first.
pub(super) fn from_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<u8, Error> {
    let usage = |why: &str| Error::Call(format!("a plugin worker's arguments: {why}"));
    let (mut fd, mut cache, mut module) = (None, true, None);
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--channel-fd") => {
                let value = args.next().and_then(|v| v.to_str()?.parse::<i32>().ok());
                fd = Some(value.ok_or_else(|| usage("--channel-fd needs a descriptor number"))?);
            }
            Some("--no-cache") => cache = false,
            _ if module.is_none() && args.peek().is_none() => module = Some(std::path::PathBuf::from(arg)),
            _ => return Err(usage(&format!("unexpected {:?}", arg))),
        }
    }
    let fd = fd.ok_or_else(|| usage("no --channel-fd"))?;
    let module = module.ok_or_else(|| usage("no module"))?;
    let channel = crate::sys::inherited_fd(fd).map_err(crate::wall::WallError::from)?;
    run(channel, &module, cache)
}

/// Inside both walls: says hello, instantiates the plugin, and answers the
/// host over `channel` until it closes it.
pub(crate) fn serve_channel(policy: &Policy, program: Program, channel: OwnedFd) -> Result<(), Error> {
    let failed = |e: std::io::Error| Error::Call(format!("the plugin's channel failed: {e}"));
    let mut channel = std::fs::File::from(channel);
    hello(&mut channel).map_err(failed)?;
    let live = program.instantiate(policy)?;
    serve(live, &mut channel, policy.fuel).map_err(failed)
}

/// The host's first message: the policy. A host of another protocol
/// version is an error (after the worker said its own, so that the host
/// can say which it speaks), as is anything else.
pub fn policy(channel: &mut std::fs::File) -> std::io::Result<crate::Policy> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    match wire::receive::<ToWorker>(channel)? {
        Received::Message(ToWorker::Start { protocol, policy }) if protocol == PROTOCOL => Ok(*policy),
        Received::Message(ToWorker::Start { protocol, .. }) => {
            hello(channel)?;
            Err(invalid(format!(
                "the host speaks protocol {protocol}, this worker {PROTOCOL}"
            )))
        }
        Received::Message(_) => Err(invalid("the host did not start with the policy".into())),
        Received::Closed => Err(invalid("the host closed the channel before the policy".into())),
    }
}

/// Says which protocol this worker speaks: the code is compiled, and the
/// plugin is about to be instantiated.
pub fn hello(channel: &mut std::fs::File) -> std::io::Result<()> {
    wire::send(channel, &FromWorker::Hello { protocol: PROTOCOL })
}

/// Says the plugin is instantiated and what it exports, then answers each
/// call, until the host closes the channel (`Ok`) or a call ends the
/// instance (a trap, no fuel left: `Ok` after saying so). Garbage from the
/// host is an `Err`.
///
/// The channel is a socket used as a file: `read` and `write` are on the
/// sandbox's syscall allow-list, `recvfrom` and `sendto` are not.
pub fn serve(mut live: Live, channel: &mut std::fs::File, fuel: Option<u64>) -> std::io::Result<()> {
    wire::send(
        channel,
        &FromWorker::Ready {
            exports: live.exports().to_vec(),
        },
    )?;
    loop {
        let request = match wire::receive::<ToWorker>(channel)? {
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
                match args
                    .into_iter()
                    .map(WireVal::into_val)
                    .collect::<Result<Vec<_>, _>>()
                {
                    Err(err) => failed(Failure::Call, err.0, false),
                    Ok(args) => match live.call(&name, &args) {
                        Ok(results) => match results
                            .iter()
                            .map(WireVal::from_val)
                            .collect::<Result<Vec<_>, _>>()
                        {
                            Ok(results) => FromWorker::Returned(results),
                            Err(err) => failed(Failure::Call, err.0, false),
                        },
                        Err(err) => failure(err),
                    },
                }
            }
            ToWorker::Start { .. } => failed(Failure::Call, "the policy was given already".into(), false),
            ToWorker::Handle(input) => match wire::unhex(&input) {
                Err(err) => failed(Failure::Call, err.0, false),
                Ok(input) => match live.handle(input) {
                    Ok(output) => FromWorker::Handled(output.map(|bytes| crate::cache::hex(&bytes))),
                    Err(err) => failure(err),
                },
            },
        };
        let fatal = matches!(answer, FromWorker::Failed { fatal: true, .. });
        wire::send(channel, &answer)?;
        if fatal {
            return Ok(());
        }
    }
}
