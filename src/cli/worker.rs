//! `wsandbox worker`: the sandboxed side of a plugin of the library
//! (`wsandbox::plugin`). Not for people: the library starts it with a
//! socket, sends the policy over it (never on the command line, which
//! every user can read), and speaks a private protocol over it.

use clap::Args;
use std::path::PathBuf;

/// The worker of a plugin, started by the wsandbox library
#[derive(Debug, Args)]
pub struct WorkerCommand {
    /// The descriptor of the channel to the host program
    #[arg(long, value_name = "FD")]
    channel_fd: i32,

    /// Compile afresh: neither read nor write the compilation cache
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,

    /// Keep the compilation cache in DIR
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// The plugin (a component); `-`: the host sends it over the channel
    #[arg(value_name = "MODULE")]
    module: PathBuf,
}

impl WorkerCommand {
    /// Serves calls until the host closes the channel (exit 0).
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let channel =
            wsandbox::sys::inherited_fd(self.channel_fd).map_err(wsandbox::wall::WallError::from)?;
        wsandbox::plugin::worker::run(
            channel,
            wsandbox::plugin::worker::sent_or_named(&self.module),
            match (self.no_cache, self.cache_dir) {
                (true, _) => wsandbox::launch::CacheChoice::Off,
                (false, Some(dir)) => wsandbox::launch::CacheChoice::At(dir),
                (false, None) => wsandbox::launch::CacheChoice::Default,
            },
        )
    }
}
