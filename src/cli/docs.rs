//! `wsandbox completions` and `wsandbox man`: shell completions and man
//! pages, generated from the command line's own definitions.

use clap::Args;

/// Print a completion script for SHELL
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox completions bash > /etc/bash_completion.d/wsandbox\n  \
    wsandbox completions zsh > \"${fpath[1]}/_wsandbox\"\n  \
    wsandbox completions fish > ~/.config/fish/completions/wsandbox.fish")]
pub struct CompletionsCommand {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

impl CompletionsCommand {
    /// Writes the script on stdout.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let mut command = super::command();
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut command, "wsandbox", &mut script);
        super::print(&script, "completions")
    }
}

/// Print the man page of wsandbox, or of one of its commands (roff)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox man | man -l -\n  \
    wsandbox man serve > wsandbox-serve.1")]
pub struct ManCommand {
    /// The command whose page to print (run, call, serve, ...)
    #[arg(value_name = "COMMAND")]
    command: Option<String>,
}

impl ManCommand {
    /// Writes the page on stdout; an unknown command is a usage error.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let mut top = super::command();
        top.build();
        let page = match &self.command {
            None => top,
            Some(name) => {
                let Some(sub) = top.find_subcommand(name).filter(|s| !s.is_hide_set()) else {
                    return Err(wsandbox::Error::Call(format!("man: no command {name:?}")));
                };
                sub.clone()
            }
        };
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .map_err(|e| wsandbox::Error::Output(format!("man: {e}")))?;
        super::print(&roff, "man")
    }
}
