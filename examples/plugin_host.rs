//! A host program with a plugin, as a user of the library writes one: it
//! loads a plugin of the plugin world (`wit/plugin.wit`) into a sandboxed
//! worker, says what the plugin is, hands it stdin and prints its output.
//!
//! ```sh
//! cargo build --release
//! cargo build --release --target wasm32-wasip2 --manifest-path guests/components/Cargo.toml
//! cargo run --release --example plugin_host -- \
//!     guests/components/target/wasm32-wasip2/release/words.wasm < README.md
//! ```
//!
//! The worker is this program itself: `main` calls
//! `wsandbox::plugin::worker_main()` first, so no `wsandbox` binary needs
//! to be installed.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;
use wsandbox::Policy;
use wsandbox::plugin::Plugin;

fn main() -> ExitCode {
    // Started as its plugin's worker, this serves the plugin and exits;
    // otherwise it returns, and the plugins run in copies of this program.
    wsandbox::plugin::worker_main();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: plugin_host PLUGIN.wasm < INPUT");
        return ExitCode::from(2);
    };
    let mut plugin = Plugin::new(path, Policy::default()).call_timeout(Duration::from_secs(10));
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("plugin_host: cannot read stdin: {e}");
        return ExitCode::from(2);
    }
    let result = plugin.metadata().and_then(|about| {
        eprintln!(
            "plugin_host: {} {}: {}",
            about.name, about.version, about.description
        );
        plugin.handle(&input)
    });
    match result {
        Ok(Ok(output)) => {
            let _ = std::io::stdout().write_all(&output);
            let _ = std::io::stdout().write_all(b"\n");
            ExitCode::SUCCESS
        }
        Ok(Err(refusal)) => {
            eprintln!("plugin_host: the plugin refused the input: {refusal}");
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("plugin_host: {err}");
            ExitCode::from(2)
        }
    }
}
