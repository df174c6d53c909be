//! Types as WIT writes them, for `wsandbox call --list` and for the
//! signatures in call errors: `greet: func(name: string) -> string`.
//!
//! Components keep no names for the types of their functions (a `record`
//! is its fields), so named types are written out in place:
//! `norm: func(p: record { x: s32, y: s32 }) -> record { x: s32, y: s32 }`.

use wasmtime::component::types::{ComponentFunc, Type};

/// A component function's signature: `func(a: s32, b: s32) -> s32`, or
/// `async func(ms: u64) -> string` for an async one (WASI 0.3).
pub(crate) fn component_func(func: &ComponentFunc) -> String {
    let params: Vec<String> = func
        .params()
        .map(|(name, ty)| format!("{name}: {}", ty_of(&ty)))
        .collect();
    let results: Vec<String> = func.results().map(|ty| ty_of(&ty)).collect();
    let text = signature(&params, &results);
    match func.async_() {
        true => format!("async {text}"),
        false => text,
    }
}

/// A core function's signature, in WIT's names for the core types:
/// `func(p0: s32, p1: f64) -> s64`.
pub(crate) fn core_func(func: &wasmtime::FuncType) -> String {
    let params: Vec<String> = func
        .params()
        .enumerate()
        .map(|(i, ty)| format!("p{i}: {}", core_ty(&ty)))
        .collect();
    let results: Vec<String> = func.results().map(|ty| core_ty(&ty)).collect();
    signature(&params, &results)
}

fn signature(params: &[String], results: &[String]) -> String {
    let mut text = format!("func({})", params.join(", "));
    match results {
        [] => {}
        [one] => text.push_str(&format!(" -> {one}")),
        many => text.push_str(&format!(" -> tuple<{}>", many.join(", "))),
    }
    text
}

fn core_ty(ty: &wasmtime::ValType) -> String {
    match ty {
        wasmtime::ValType::I32 => "s32".into(),
        wasmtime::ValType::I64 => "s64".into(),
        wasmtime::ValType::F32 => "f32".into(),
        wasmtime::ValType::F64 => "f64".into(),
        other => format!("{other}"),
    }
}

/// A component value type in WIT syntax.
pub(crate) fn ty_of(ty: &Type) -> String {
    let list = |types: Vec<String>| types.join(", ");
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", ty_of(&l.ty())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", ty_of(&l.ty()), l.len()),
        Type::Map(m) => format!("map<{}, {}>", ty_of(&m.key()), ty_of(&m.value())),
        Type::Tuple(t) => format!("tuple<{}>", list(t.types().map(|t| ty_of(&t)).collect())),
        Type::Option(o) => format!("option<{}>", ty_of(&o.ty())),
        Type::Result(r) => match (r.ok(), r.err()) {
            (None, None) => "result".into(),
            (Some(ok), None) => format!("result<{}>", ty_of(&ok)),
            (None, Some(err)) => format!("result<_, {}>", ty_of(&err)),
            (Some(ok), Some(err)) => format!("result<{}, {}>", ty_of(&ok), ty_of(&err)),
        },
        Type::Record(r) => format!(
            "record {{ {} }}",
            list(
                r.fields()
                    .map(|f| format!("{}: {}", f.name, ty_of(&f.ty)))
                    .collect()
            )
        ),
        Type::Variant(v) => format!(
            "variant {{ {} }}",
            list(
                v.cases()
                    .map(|c| match c.ty {
                        Some(ty) => format!("{}({})", c.name, ty_of(&ty)),
                        None => c.name.to_string(),
                    })
                    .collect()
            )
        ),
        Type::Enum(e) => format!("enum {{ {} }}", list(e.names().map(String::from).collect())),
        Type::Flags(f) => format!("flags {{ {} }}", list(f.names().map(String::from).collect())),
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(f) => match f.ty() {
            Some(ty) => format!("future<{}>", ty_of(&ty)),
            None => "future".into(),
        },
        Type::Stream(s) => match s.ty() {
            Some(ty) => format!("stream<{}>", ty_of(&ty)),
            None => "stream".into(),
        },
        Type::ErrorContext => "error-context".into(),
    }
}
