//! `wsandbox call`: one export, called with typed arguments written in
//! WAVE (the WebAssembly Value Encoding): `greet("world")`,
//! `norm({x: 1, y: -2})`, `wsandbox:shapes/values.add(2, 3)`. The result is
//! printed in WAVE too.

use super::Error;
use super::{Outcome, wit};
use wasmtime::component::wasm_wave::{self, untyped::UntypedFuncCall};

/// A call as the user wrote it: an export's name and WAVE arguments. Its
/// syntax is checked when parsed, before any sandbox exists; its types
/// once the module is compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The export: `greet`, `values.add`, `wsandbox:shapes/values.add`.
    pub name: String,
    /// The call with a placeholder name of the same length (WAVE names
    /// allow no `:`, `/`, `.` or `@`): `xxxxx("world")`.
    wave: String,
    /// The expression as given, for messages.
    text: String,
}

impl Call {
    /// Parses `NAME(ARGS...)`.
    pub fn parse(text: &str) -> Result<Call, Error> {
        let bad = |why: String| Error::Call(format!("{text:?}: {why}"));
        let open = text.find('(').ok_or_else(|| {
            bad("not a call: write NAME(ARGS...), such as greet(\"world\") or add(2, 3)".into())
        })?;
        let name = text[..open].trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(bad(
                "not a call: the export's name comes first, such as greet(\"world\")".into(),
            ));
        }
        // The name is replaced by as many `x`s (a WAVE label) so that the
        // positions WAVE's errors give are the user's own.
        let wave = format!("{}{}", "x".repeat(open), text[open..].trim_end());
        UntypedFuncCall::parse(&wave).map_err(|e| bad(format!("not WAVE: {e}")))?;
        Ok(Call {
            name: name.into(),
            wave,
            text: text.trim().into(),
        })
    }

    /// The arguments, typed as `types` asks; `signature` explains an error.
    fn arguments<V: wasm_wave::wasm::WasmValue + 'static>(
        &self,
        types: &[V::Type],
        signature: &str,
    ) -> Result<Vec<V>, Error> {
        let call = UntypedFuncCall::parse(&self.wave).expect("checked when parsed");
        call.to_wasm_params::<V>(types.iter()).map_err(|e| {
            Error::Call(format!(
                "{}: the arguments do not fit: {e}; {}: {signature}",
                self.text, self.name
            ))
        })
    }

    /// An export that is not there: says which are.
    fn unknown(&self, exports: &[(String, String)]) -> Error {
        Error::Call(format!("{}: {}", self.text, unknown_export(&self.name, exports)))
    }
}

/// Calls `call` on a component instance and returns its results (or what
/// stopped it). An `Err` outside means the call never started.
pub(super) fn invoke_component<T: 'static>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::component::Instance,
    exports: &[(String, String)],
    call: &Call,
) -> Result<wasmtime::Result<Vec<wasmtime::component::Val>>, Error> {
    let ready = ready_component(store, instance, exports, call)?;
    let mut results = ready.results();
    Ok(ready
        .func
        .call(&mut *store, &ready.args, &mut results)
        .map(|()| results))
}

/// A call on a component instance, ready to be made: the function and
/// its arguments, parsed for its parameters' types.
pub(super) struct Ready {
    pub(super) func: wasmtime::component::Func,
    pub(super) args: Vec<wasmtime::component::Val>,
    results: usize,
}

impl Ready {
    /// Room for the call's results.
    pub(super) fn results(&self) -> Vec<wasmtime::component::Val> {
        vec![wasmtime::component::Val::Bool(false); self.results]
    }
}

/// Finds `call`'s function among `exports` and parses its arguments; an
/// error means the call cannot start.
pub(super) fn ready_component<T: 'static>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::component::Instance,
    exports: &[(String, String)],
    call: &Call,
) -> Result<Ready, Error> {
    let func =
        find_component_func(store, instance, exports, &call.name).ok_or_else(|| call.unknown(exports))?;
    let ty = func.ty(&*store);
    let signature = wit::component_func(&ty);
    let types: Vec<_> = ty.params().map(|(_, ty)| ty).collect();
    let args = call.arguments(&types, &signature)?;
    Ok(Ready {
        func,
        args,
        results: ty.results().len(),
    })
}

/// Calls the export `name` with `args` (values built by a host program),
/// each made a value of its parameter's type by `fit` and checked against
/// it, so that a value of the wrong shape is a clear error, not a failure
/// inside the call.
pub(super) fn invoke_component_with<T: 'static, A>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::component::Instance,
    exports: &[(String, String)],
    name: &str,
    args: Vec<A>,
    fit: impl Fn(A, &wasmtime::component::types::Type) -> Result<wasmtime::component::Val, String>,
) -> Result<wasmtime::Result<Typed>, String> {
    let func =
        find_component_func(store, instance, exports, name).ok_or_else(|| unknown_export(name, exports))?;
    let ty = func.ty(&*store);
    let signature = || format!("{name}: {}", wit::component_func(&ty));
    if ty.params().len() != args.len() {
        return Err(format!(
            "{} argument(s) given, {} wanted; {}",
            args.len(),
            ty.params().len(),
            signature()
        ));
    }
    let mut values = Vec::with_capacity(args.len());
    for ((param, ty), arg) in ty.params().zip(args) {
        let value = fit(arg, &ty)
            .and_then(|value| fits(&value, &ty).map(|()| value))
            .map_err(|why| format!("argument `{param}`: {why}; {}", signature()))?;
        values.push(value);
    }
    Ok(call_func(store, &func, &ty, &values).map(|results| (results, ty.results().collect())))
}

/// A call's results, with their types.
pub(super) type Typed = (
    Vec<wasmtime::component::Val>,
    Vec<wasmtime::component::types::Type>,
);

/// Calls `func` (of type `ty`) with `args`; its results, or what stopped it.
fn call_func<T: 'static>(
    store: &mut wasmtime::Store<T>,
    func: &wasmtime::component::Func,
    ty: &wasmtime::component::types::ComponentFunc,
    args: &[wasmtime::component::Val],
) -> wasmtime::Result<Vec<wasmtime::component::Val>> {
    let mut results = vec![wasmtime::component::Val::Bool(false); ty.results().len()];
    func.call(&mut *store, args, &mut results).map(|()| results)
}

/// No function `name` among `exports`: which there are.
fn unknown_export(name: &str, exports: &[(String, String)]) -> String {
    let names: Vec<&str> = exports.iter().map(|(name, _)| name.as_str()).collect();
    let names = if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    };
    format!("no exported function {name:?}; the exports are: {names}")
}

/// Calls the plugin world's `handle` with `input`, typed (no value per
/// byte): the fast path for bytes in, bytes out.
pub(super) fn invoke_handle<T: 'static>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::component::Instance,
    exports: &[(String, String)],
    input: Vec<u8>,
) -> Result<wasmtime::Result<Result<Vec<u8>, String>>, String> {
    let name = format!("{}.handle", super::plugin_host::GUEST_INTERFACE);
    let func = find_component_func(store, instance, exports, &name)
        .ok_or_else(|| format!("no exported function {name:?}: not a plugin of the plugin world"))?;
    let typed = func
        .typed::<(Vec<u8>,), (Result<Vec<u8>, String>,)>(&*store)
        .map_err(|e| format!("{name} is not the plugin world's: {e}"))?;
    Ok(typed.call(&mut *store, (input,)).map(|(result,)| result))
}

/// Whether `val` is a value of type `ty`; if not, why not.
fn fits(val: &wasmtime::component::Val, ty: &wasmtime::component::types::Type) -> Result<(), String> {
    use wasmtime::component::Val;
    use wasmtime::component::types::Type;
    let want = || format!("a {} is wanted, not {}", wit::ty_of(ty), kind_of(val));
    let each = |vals: &[Val], ty: &Type| vals.iter().try_for_each(|v| fits(v, ty));
    let maybe = |val: &Option<Box<Val>>, ty: Option<Type>| match (val, ty) {
        (None, None) => Ok(()),
        (Some(val), Some(ty)) => fits(val, &ty),
        (Some(_), None) => Err("a value where none is wanted".to_string()),
        (None, Some(ty)) => Err(format!("a {} is missing", wit::ty_of(&ty))),
    };
    match (val, ty) {
        (Val::Bool(_), Type::Bool)
        | (Val::S8(_), Type::S8)
        | (Val::U8(_), Type::U8)
        | (Val::S16(_), Type::S16)
        | (Val::U16(_), Type::U16)
        | (Val::S32(_), Type::S32)
        | (Val::U32(_), Type::U32)
        | (Val::S64(_), Type::S64)
        | (Val::U64(_), Type::U64)
        | (Val::Float32(_), Type::Float32)
        | (Val::Float64(_), Type::Float64)
        | (Val::Char(_), Type::Char)
        | (Val::String(_), Type::String) => Ok(()),
        (Val::List(vals), Type::List(list)) => each(vals, &list.ty()),
        (Val::Tuple(vals), Type::Tuple(tuple)) => {
            let types: Vec<Type> = tuple.types().collect();
            if vals.len() != types.len() {
                return Err(want());
            }
            vals.iter().zip(&types).try_for_each(|(v, t)| fits(v, t))
        }
        (Val::Record(fields), Type::Record(record)) => {
            let wanted: Vec<_> = record.fields().collect();
            if fields.len() != wanted.len()
                || fields
                    .iter()
                    .zip(&wanted)
                    .any(|((name, _), field)| name != field.name)
            {
                return Err(want());
            }
            fields.iter().zip(&wanted).try_for_each(|((name, v), field)| {
                fits(v, &field.ty).map_err(|why| format!("field `{name}`: {why}"))
            })
        }
        (Val::Variant(case, payload), Type::Variant(variant)) => {
            let found = variant.cases().find(|c| c.name == case).ok_or_else(want)?;
            maybe(payload, found.ty)
        }
        (Val::Enum(case), Type::Enum(e)) if e.names().any(|n| n == case) => Ok(()),
        (Val::Flags(names), Type::Flags(flags)) if names.iter().all(|n| flags.names().any(|f| f == n)) => {
            Ok(())
        }
        (Val::Option(payload), Type::Option(option)) => match payload {
            None => Ok(()),
            Some(v) => fits(v, &option.ty()),
        },
        (Val::Result(Ok(payload)), Type::Result(result)) => maybe(payload, result.ok()),
        (Val::Result(Err(payload)), Type::Result(result)) => maybe(payload, result.err()),
        _ => Err(want()),
    }
}

/// What kind of value `val` is, for messages.
fn kind_of(val: &wasmtime::component::Val) -> String {
    use wasmtime::component::Val;
    match val {
        Val::Bool(_) => "a bool",
        Val::S8(_) => "an s8",
        Val::U8(_) => "a u8",
        Val::S16(_) => "an s16",
        Val::U16(_) => "a u16",
        Val::S32(_) => "an s32",
        Val::U32(_) => "a u32",
        Val::S64(_) => "an s64",
        Val::U64(_) => "a u64",
        Val::Float32(_) => "an f32",
        Val::Float64(_) => "an f64",
        Val::Char(_) => "a char",
        Val::String(_) => "a string",
        Val::List(_) | Val::FixedLengthList(_) => "a list",
        Val::Map(_) => "a map",
        Val::Record(_) => "a record",
        Val::Tuple(_) => "a tuple",
        Val::Variant(case, _) => return format!("the case `{case}`"),
        Val::Enum(case) => return format!("the case `{case}`"),
        Val::Option(_) => "an option",
        Val::Result(_) => "a result",
        Val::Flags(_) => "flags",
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => "a handle",
    }
    .into()
}

/// Calls `call` on a fresh instance of a component.
pub(super) fn component<T: 'static>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::component::Instance,
    exports: &[(String, String)],
    call: &Call,
) -> Result<wasmtime::Result<Outcome>, Error> {
    Ok(invoke_component(store, instance, exports, call)?.and_then(returned))
}

/// What a component's call returned, as `wsandbox call` says it: in WAVE,
/// failed if it is a `result`'s `err`.
pub(super) fn returned(results: Vec<wasmtime::component::Val>) -> wasmtime::Result<Outcome> {
    use wasmtime::component::Val;
    let failed = matches!(results.as_slice(), [Val::Result(Err(_))]);
    let value = wave_of(&results, wasm_wave::to_string)?;
    Ok(Outcome::Returned { value, failed })
}

/// Calls `call` on a fresh instance of a core module (after its
/// `_initialize`, if it has one).
pub(super) fn core<T: 'static>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::Instance,
    exports: &[(String, String)],
    call: &Call,
) -> Result<wasmtime::Result<Outcome>, Error> {
    use wasmtime::Val;
    // Only what `call --list` offers: not `_initialize` and its kind.
    let func = exports
        .iter()
        .any(|(name, _)| *name == call.name)
        .then(|| instance.get_func(&mut *store, &call.name))
        .flatten()
        .ok_or_else(|| call.unknown(exports))?;
    let ty = func.ty(&*store);
    let signature = wit::core_func(&ty);
    let types: Vec<_> = ty.params().collect();
    let args: Vec<Val> = call.arguments(&types, &signature)?;
    let mut results = vec![Val::I32(0); ty.results().len()];
    let returned = match instance.get_typed_func::<(), ()>(&mut *store, "_initialize") {
        Ok(init) => init.call(&mut *store, ()),
        Err(_) => Ok(()),
    };
    let returned = returned.and_then(|()| func.call(&mut *store, &args, &mut results));
    Ok(returned.and_then(|()| {
        let value = wave_of(&results, wasm_wave::to_string)?;
        Ok(Outcome::Returned { value, failed: false })
    }))
}

/// A function's results in WAVE: nothing, one value, or a tuple.
fn wave_of<V, E: std::fmt::Display>(
    results: &[V],
    to_wave: impl Fn(&V) -> Result<String, E>,
) -> wasmtime::Result<Option<String>> {
    let values = results
        .iter()
        .map(to_wave)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| wasmtime::Error::msg(format!("cannot print the result: {e}")))?;
    Ok(match values.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        many => Some(format!("({})", many.join(", "))),
    })
}

/// The function `name` names among `exports` (see [`super::Program::exports`]):
/// a top-level one (`greet`), or one in an exported instance, named in full
/// (`wsandbox:shapes/values.add`) or by its interface alone (`values.add`).
fn find_component_func<T: 'static>(
    store: &mut wasmtime::Store<T>,
    instance: &wasmtime::component::Instance,
    exports: &[(String, String)],
    name: &str,
) -> Option<wasmtime::component::Func> {
    let short = |full: &str| match full.rsplit_once('.') {
        Some((interface, func)) => format!("{}.{func}", short_name(interface)),
        None => full.to_owned(),
    };
    let (full, _) = exports
        .iter()
        .find(|(full, _)| full == name)
        .or_else(|| exports.iter().find(|(full, _)| short(full) == name))?;
    match full.rsplit_once('.') {
        None => instance.get_func(&mut *store, full.as_str()),
        Some((interface, func)) => {
            let index = instance.get_export_index(&mut *store, None, interface)?;
            let index = instance.get_export_index(&mut *store, Some(&index), func)?;
            instance.get_func(&mut *store, index)
        }
    }
}

/// An interface's name without its package and version:
/// `wsandbox:shapes/values@0.1.0` → `values`.
fn short_name(full: &str) -> &str {
    let name = full.rsplit_once('/').map_or(full, |(_, name)| name);
    name.split_once('@').map_or(name, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_parse_with_any_export_name() {
        let call = Call::parse(r#"greet("world")"#).unwrap();
        assert_eq!(call.name, "greet");
        let call = Call::parse("wsandbox:shapes/values@0.1.0.add(2, -3)").unwrap();
        assert_eq!(call.name, "wsandbox:shapes/values@0.1.0.add");
        assert_eq!(Call::parse("  counter()  ").unwrap().name, "counter");
        let call = Call::parse("norm({x: 1, y: -2})").unwrap();
        assert_eq!(call.wave, "xxxx({x: 1, y: -2})");
    }

    #[test]
    fn bad_calls_are_refused_with_a_hint() {
        for bad in [
            "greet",
            "(1)",
            "greet(",
            "greet(1,,2)",
            "two words(1)",
            r#"greet("open)"#,
        ] {
            let err = Call::parse(bad).unwrap_err();
            assert!(matches!(err, Error::Call(_)), "{bad}: {err}");
            assert_eq!(err.to_string().lines().count(), 1, "{bad}: {err}");
        }
    }

    #[test]
    fn interface_names_shorten() {
        assert_eq!(short_name("wsandbox:shapes/values@0.1.0"), "values");
        assert_eq!(short_name("wsandbox:shapes/values"), "values");
        assert_eq!(short_name("values"), "values");
    }
}
