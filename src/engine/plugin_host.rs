//! The host's side of the plugin world (`wit/plugin.wit`):
//! `wsandbox:plugin/host`, offered to every component. Its one function,
//! `log`, writes a line to stderr: `words: info: 12 bytes, 3 words`.

use std::sync::Arc;
use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Linker, Val};

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
            let message = logged(message);
            match level {
                "error" => crate::say_log!(ERROR, "plugin: {level}: {message}"),
                "warn" => crate::say_log!(WARN, "plugin: {level}: {message}"),
                "debug" => crate::say_log!(DEBUG, "plugin: {level}: {message}"),
                "trace" => crate::say_log!(TRACE, "plugin: {level}: {message}"),
                _ => crate::say_log!(INFO, "plugin: {level}: {message}"),
            }
            Ok(())
        })
}

/// The functions a plugin's host program offers it: a plugin's worker
/// forwards each call of one to its host ([`crate::plugin`]).
pub trait HostCalls: Send + Sync {
    /// Whether the host offers `name` (`interface.function`, or a world's
    /// own `function`).
    fn offers(&self, name: &str) -> bool;

    /// Calls the host function `name`, of type `ty`, with `params`, and
    /// fills `results`; an error traps the plugin's call.
    fn call(
        &self,
        name: &str,
        ty: &ComponentFunc,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()>;
}

/// Defines in `linker` each function `component` imports from outside WASI
/// as a call of `host`'s: every one must be offered (one of the plugin
/// world's `host` interface may be, and then the host's replaces
/// wsandbox's). What it imports and is not offered is the error: their
/// names, in one line.
pub(super) fn add_host_calls<T: 'static>(
    linker: &mut Linker<T>,
    engine: &wasmtime::Engine,
    component: &Component,
    host: &Arc<dyn HostCalls>,
) -> Result<(), String> {
    linker.allow_shadowing(true);
    let mut missing = Vec::new();
    let mut define = |linker: &mut Linker<T>, instance: Option<&str>, func: &str| -> Result<(), String> {
        let name = match instance {
            Some(instance) => format!("{instance}.{func}"),
            None => func.to_string(),
        };
        if !host.offers(&name) {
            if instance != Some(INTERFACE) || func != "log" {
                missing.push(name);
            }
            return Ok(());
        }
        let host = Arc::clone(host);
        let call = move |_store: wasmtime::StoreContextMut<'_, T>,
                         ty: ComponentFunc,
                         params: &[Val],
                         results: &mut [Val]| host.call(&name, &ty, params, results);
        let defined = match instance {
            Some(instance) => linker.instance(instance).and_then(|mut i| i.func_new(func, call)),
            None => linker.root().func_new(func, call),
        };
        defined.map_err(|e| crate::say::error_line(&e))
    };
    for (name, item) in component.component_type().imports(engine) {
        match item.ty {
            ComponentItem::ComponentInstance(instance) if !name.starts_with("wasi:") => {
                for (func, item) in instance.exports(engine) {
                    if let ComponentItem::ComponentFunc(_) = item.ty {
                        define(linker, Some(name), func)?;
                    }
                }
            }
            ComponentItem::ComponentFunc(_) => define(linker, None, name)?,
            _ => {}
        }
    }
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(format!(
            "it imports `{one}`, which its host program does not offer (a host function must be registered to be imported)"
        )),
        many => Err(format!(
            "it imports `{}`, which its host program does not offer (a host function must be registered to be imported)",
            many.join("`, `")
        )),
    }
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
