//! `wsandbox check`: which isolation layers this host supports, and why not.

use clap::Args;
use wsandbox::shell;

/// Report which isolation layers this host supports, and why not
#[derive(Debug, Args)]
pub struct CheckCommand {}

impl CheckCommand {
    /// Prints one line per layer; exits 0 when every required layer is
    /// available, 125 otherwise.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let mut all_required = true;
        for status in shell::probe() {
            let layer = status.layer;
            match &status.available {
                Ok(()) => println!("{:<8} available", layer.name()),
                Err(err) => {
                    all_required &= !layer.required();
                    let need = if layer.required() { "required" } else { "optional" };
                    println!(
                        "{:<8} unavailable ({need}): {err}; to enable: {}",
                        layer.name(),
                        layer.hint()
                    );
                }
            }
        }
        Ok(if all_required {
            0
        } else {
            wsandbox::error::EXIT_SANDBOX_FAILED
        })
    }
}
