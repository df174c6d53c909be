//! The host's side of the plugin world (`wit/plugin.wit`):
//! `wsandbox:plugin/host`, offered to every component. Its one function,
//! `log`, writes a line to stderr: `words: info: 12 bytes, 3 words`.

use wasmtime::component::{Linker, Val};

/// The interface's name, as components import it.
pub(crate) const INTERFACE: &str = "wsandbox:plugin/host@0.1.0";

/// The interface a plugin exports (`handle`, `metadata`).
pub const GUEST_INTERFACE: &str = "wsandbox:plugin/guest@0.1.0";

/// The longest log message written; longer ones are cut.
const MAX_MESSAGE: usize = 4096;

/// Adds `wsandbox:plugin/host` to `linker`.
pub(super) fn add_to_linker<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker
        .instance(INTERFACE)?
        .func_new("log", |_store, _ty, params, _results| {
            let level = match params.first() {
                Some(Val::Enum(level)) => level.as_str(),
                _ => "info",
            };
            let message = match params.get(1) {
                Some(Val::String(message)) => message.as_str(),
                _ => "",
            };
            crate::say!("plugin: {level}: {}", logged(message));
            Ok(())
        })
}

/// `message` on one line of at most [`MAX_MESSAGE`] bytes, escaped
/// ([`crate::say::escaped`]): a plugin cannot forge other lines of the log
/// or drive the terminal.
fn logged(message: &str) -> crate::say::Escaped<'_> {
    crate::say::escaped(message).at_most(MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_message_is_one_safe_line() {
        let line = |message: &str| super::logged(message).to_string();
        assert_eq!(line("ok"), "ok");
        assert_eq!(line("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        let long = "x".repeat(10_000);
        assert!(line(&long).len() < 4200);
    }
}
