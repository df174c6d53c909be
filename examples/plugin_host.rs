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
//! The worker binary is `$WSANDBOX_BIN`, else the `wsandbox` built next to
//! this example, else `wsandbox` on `PATH`.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;
use wsandbox::Policy;
use wsandbox::plugin::Plugin;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: plugin_host PLUGIN.wasm < INPUT");
        return ExitCode::from(2);
    };
    let mut plugin = Plugin::new(path, Policy::default()).call_timeout(Duration::from_secs(10));
    if std::env::var_os("WSANDBOX_BIN").is_none()
        && let Some(built) = built_wsandbox()
    {
        plugin = plugin.binary(built);
    }
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

/// The `wsandbox` binary of the same build: `target/PROFILE/wsandbox`,
/// next to `target/PROFILE/examples/plugin_host`.
fn built_wsandbox() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let built = exe.parent()?.parent()?.join("wsandbox");
    built.is_file().then_some(built)
}
