//! `wsandbox worker`: the sandboxed side of a plugin of the library
//! (`wsandbox::plugin`). Not for people: the library starts it with a
//! socket, sends the policy over it (never on the command line, which
//! every user can read), and speaks a private protocol over it.

use clap::Args;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use wsandbox::engine::{Ended, Outcome};
use wsandbox::{Error, Policy};

/// The worker of a plugin, started by the wsandbox library
#[derive(Debug, Args)]
pub struct WorkerCommand {
    /// The descriptor of the channel to the host program
    #[arg(long, value_name = "FD")]
    channel_fd: i32,

    /// Compile afresh: neither read nor write the compilation cache
    #[arg(long)]
    no_cache: bool,

    /// The plugin (a component)
    #[arg(value_name = "MODULE")]
    module: PathBuf,
}

impl WorkerCommand {
    /// Serves calls until the host closes the channel (exit 0).
    pub fn execute(self) -> Result<u8, Error> {
        let channel =
            wsandbox::shell::sys::inherited_fd(self.channel_fd).map_err(wsandbox::shell::ShellError::from)?;
        let mut channel = std::fs::File::from(channel);
        let policy: Policy = wsandbox::plugin::worker::policy(&mut channel)
            .map_err(|e| Error::Call(format!("the plugin's channel: {e}")))?;
        let channel = std::os::fd::OwnedFd::from(channel);
        let setup = super::guest::Setup {
            policy,
            cache: if self.no_cache {
                super::guest::CacheChoice::Off
            } else {
                super::guest::CacheChoice::Default
            },
            report: None,
            keep: vec![channel.as_raw_fd()],
            purpose: wsandbox::engine::Purpose::Command,
        };
        super::guest::execute(
            setup,
            &self.module,
            |_| Ok(()),
            |policy, program| {
                let mut channel = std::fs::File::from(channel);
                wsandbox::plugin::worker::hello(&mut channel)
                    .map_err(|e| Error::Call(format!("the plugin's channel failed: {e}")))?;
                let live = program.instantiate(policy)?;
                wsandbox::plugin::worker::serve(live, &mut channel, policy.fuel)
                    .map_err(|e| Error::Call(format!("the plugin's channel failed: {e}")))?;
                Ok(Ended {
                    outcome: Outcome::Exited(0),
                    fuel_consumed: None,
                })
            },
        )
    }
}
