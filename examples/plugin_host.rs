//! A host program with a plugin, as a user of the library writes one: it
//! loads a plugin of the plugin world (`wit/plugin.wit`) into a sandboxed
//! worker, says what the plugin is, hands it stdin and prints its output.
//! It offers the plugin a host function: the plugin world's `log`, which
//! this program takes over from wsandbox (each call crosses from the
//! sandboxed worker to this process, in the middle of the plugin's call).
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
use wsandbox::plugin::{Plugin, Val};

fn main() -> ExitCode {
    // Started as its plugin's worker, this serves the plugin and exits;
    // otherwise it returns, and the plugins run in copies of this program.
    wsandbox::plugin::worker_main();
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: plugin_host PLUGIN.wasm < INPUT");
        return ExitCode::from(2);
    };
    let mut plugin = Plugin::new(path, Policy::default())
        .call_timeout(Duration::from_secs(10))
        .host_fn("wsandbox:plugin/host@0.1.0.log", log);
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

/// The plugin world's `log(level, message)`, as this program logs: the
/// plugin's words, escaped (a plugin may send anything).
fn log(args: &[Val]) -> Result<Vec<Val>, String> {
    let [Val::Enum(level), Val::String(message)] = args else {
        return Err("log takes a level and a message".into());
    };
    eprintln!(
        "plugin_host: the plugin logs ({level}): {}",
        message.escape_debug()
    );
    Ok(vec![])
}
