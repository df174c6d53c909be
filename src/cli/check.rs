//! `wsandbox check`: which isolation layers this host supports, and why not.

use clap::Args;
use wsandbox::wall::{self, Layer};

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($out, $($arg)*);
    }};
}

/// Report which isolation layers this host supports, and why not
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    wsandbox check\n  \
    wsandbox check && wsandbox run app.wasm")]
pub struct CheckCommand {}

impl CheckCommand {
    /// Prints one line per layer; exits 0 when every required layer is
    /// available, 125 otherwise.
    pub fn execute(self) -> Result<u8, wsandbox::Error> {
        let statuses = wall::probe();
        let user_ok = statuses
            .iter()
            .any(|s| s.layer == Layer::User && s.available.is_ok());
        let mut out = String::new();
        let mut all_required = true;
        for status in &statuses {
            let layer = status.layer;
            let Err(err) = &status.available else {
                outln!(out, "{:<8} available", layer.name());
                continue;
            };
            all_required &= !layer.required();
            let need = if layer.required() { "required" } else { "optional" };
            if layer != Layer::User && !user_ok {
                outln!(
                    out,
                    "{:<8} unavailable ({need}): needs the user namespace",
                    layer.name()
                );
            } else {
                outln!(
                    out,
                    "{:<8} unavailable ({need}): {err}; to enable: {}",
                    layer.name(),
                    layer.hint(err.errno)
                );
            }
        }
        // Lockdown layers: what the kernel offers (wsandbox applies both).
        let filters = std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|status| status.lines().any(|l| l.starts_with("Seccomp_filters:")));
        match filters {
            true => outln!(
                out,
                "{:<8} available (an allow-list; other calls fail with EPERM)",
                "seccomp"
            ),
            false => outln!(
                out,
                "{:<8} unavailable: the kernel has no seccomp filters",
                "seccomp"
            ),
        }
        match wsandbox::sys::landlock_abi() {
            Ok(abi) => outln!(out, "{:<8} available (ABI {abi})", "landlock"),
            Err(err) => outln!(out, "{:<8} unavailable: {err}", "landlock"),
        }
        // Applied on every run, whatever the host.
        outln!(
            out,
            "{:<8} applied (every capability set emptied, bounding and ambient too; no_new_privs)",
            "privs"
        );
        outln!(
            out,
            "{:<8} applied ({}; only stdio kept)",
            "limits",
            wall::limits_described()
        );
        // What the engine runs, whatever the host.
        outln!(
            out,
            "{:<8} 0.1 (core modules: run, call), 0.2 (components: run, call, serve wasi:http/proxy, plugins), 0.3 (async components: run wasi:cli/run@0.3, call, serve wasi:http/handler@0.3)",
            "wasi"
        );
        super::print(out.as_bytes(), "check")?;
        Ok(if all_required {
            0
        } else {
            wsandbox::error::EXIT_SANDBOX_FAILED
        })
    }
}
