//! The private protocol between a plugin host and its worker, version 3:
//! frames over a socket pair, each a 4-byte big-endian length and one
//! message in [postcard] (serde's compact binary format: integers as
//! varints, signed ones zigzagged, floats as little-endian bits, strings
//! and byte lists as a varint length and their bytes, an enum's case as a
//! varint index in declaration order, an option as a 0/1 byte).
//!
//! The host speaks first: [`ToWorker::Start`], with the protocol version,
//! the policy (as JSON, or a policy file's path: it never appears on the
//! worker's command line, where `ps` would show it to every user), the
//! host functions it offers and, for a plugin loaded from bytes, the
//! module. The worker answers [`FromWorker::Hello`] once the code is
//! compiled, then [`FromWorker::Ready`] with the exports once the plugin is
//! instantiated; then each call is one request and one answer, between
//! which the worker may ask the host any number of [`FromWorker::HostCall`]
//! questions, each answered by one [`ToWorker::HostReturned`].
//!
//! Values travel as [`WireVal`], a structural copy of a component value,
//! so nothing is lost either way; byte lists travel as bytes. The worker
//! fits what it receives to the types it expects ([`WireVal::into_typed`]),
//! so a host without the component's types (the Python package) may send
//! plain numbers, strings, lists and records.
//!
//! A frame is at most [`MAX_FRAME`] bytes, and a value at most
//! [`MAX_DEPTH`] deep; the reader of a frame bounds the number of values in
//! it ([`receive_bounded`]), counted as they are decoded, so that what
//! decoding costs is bounded too.
//!
//! A host or worker of protocol 2 spoke JSON: a worker answers such a
//! host's first message with a JSON hello naming its version, and a host
//! reads such a worker's, so that either side can say which version the
//! other speaks.
//!
//! [postcard]: https://docs.rs/postcard

use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::io::{Read, Write};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

/// The protocol version this library and this worker speak.
pub const PROTOCOL: u32 = 3;

/// The largest frame either side accepts: a call's arguments or results.
pub const MAX_FRAME: u32 = 256 << 20;

/// How deeply values may nest in a frame (lists of lists of ...).
pub const MAX_DEPTH: usize = 100;

/// A message from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The first message, once the code is compiled: who is speaking.
    Hello {
        /// The worker's protocol version.
        protocol: u32,
    },
    /// The plugin is instantiated (its start function ran).
    Ready {
        /// The exported functions with their signatures (WIT syntax).
        exports: Vec<(String, String)>,
    },
    /// A call returned these results.
    Returned(Vec<WireVal>),
    /// `handle` returned: the output, or the plugin's refusal.
    Handled(#[serde(with = "bytes_or_refusal")] Result<Vec<u8>, String>),
    /// A call failed; the worker goes on unless `fatal`.
    Failed {
        /// How.
        kind: Failure,
        /// One line.
        message: String,
        /// The instance is gone (a trap): the worker exits.
        fatal: bool,
    },
    /// During a call: the plugin calls the host function `name` (as the
    /// host registered it) with `args`; the host answers with
    /// [`ToWorker::HostReturned`].
    HostCall {
        /// `interface.function`, or a world's own `function`.
        name: String,
        /// The arguments.
        args: Vec<WireVal>,
    },
}

/// How a call failed, in a [`FromWorker::Failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Failure {
    /// The call does not fit the plugin: an unknown export, arguments of
    /// the wrong number or type, a value that cannot cross.
    Call,
    /// The plugin trapped (a host function that failed outside an error
    /// value among the reasons).
    Trap,
    /// The call burnt all its fuel.
    Fuel,
}

/// Where the worker's policy comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicySource {
    /// A policy as JSON, with the keys of a policy file (`timeout`,
    /// `memory`, `dirs`, ...; durations and sizes as text).
    Json(String),
    /// A policy file, read by the worker before its walls go up (its
    /// relative paths are relative to the file).
    File(String),
}

/// A message to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// The first message: the host's protocol version, the policy, the
    /// host functions, and the module if it is not a file.
    Start {
        /// The host's protocol version.
        protocol: u32,
        /// What the plugin is granted.
        policy: PolicySource,
        /// The host functions the plugin may import, each as
        /// `interface.function` (`my:app/host.fetch`) or a world's own
        /// `function`. An import of the plugin's not among them refuses
        /// the plugin at load.
        imports: Vec<String>,
        /// The module's bytes, when the host has them rather than a path
        /// (the worker's MODULE argument is then `-`).
        #[serde(with = "maybe_bytes")]
        module: Option<Vec<u8>>,
    },
    /// Call the export `name` with `args`.
    Call {
        /// The export, as `wsandbox call` names it.
        name: String,
        /// The arguments.
        args: Vec<WireVal>,
    },
    /// Call the plugin world's `handle` with these bytes.
    Handle(#[serde(with = "bytes")] Vec<u8>),
    /// The answer to a [`FromWorker::HostCall`]: the results, or why the
    /// host function failed (the plugin gets it as its error value when
    /// the function returns a `result`, else the call traps).
    HostReturned(Result<Vec<WireVal>, String>),
}

/// A component value on the wire. The order of the cases is the protocol's
/// (postcard encodes a case by its index).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum WireVal {
    /// `bool`.
    Bool(bool),
    /// `s8`.
    S8(i8),
    /// `u8`.
    U8(u8),
    /// `s16`.
    S16(i16),
    /// `u16`.
    U16(u16),
    /// `s32`.
    S32(i32),
    /// `u32`.
    U32(u32),
    /// `s64`.
    S64(i64),
    /// `u64`.
    U64(u64),
    /// `f32`.
    F32(f32),
    /// `f64`.
    F64(f64),
    /// `char`.
    Char(char),
    /// `string`.
    String(String),
    /// `list<u8>`, as bytes.
    Bytes(#[serde(with = "bytes")] Vec<u8>),
    /// Any other `list`.
    List(Vec<WireVal>),
    /// `record`: its fields by name.
    Record(Vec<(String, WireVal)>),
    /// `tuple`.
    Tuple(Vec<WireVal>),
    /// `variant`: the case and its payload.
    Variant(String, Option<Box<WireVal>>),
    /// `enum`.
    Enum(String),
    /// `option`.
    Option(Option<Box<WireVal>>),
    /// `result`.
    Result(Result<Option<Box<WireVal>>, Option<Box<WireVal>>>),
    /// `flags`: the names of those set.
    Flags(Vec<String>),
}

/// [`WireVal`] as decoded, case for case: its decoding is wrapped to count
/// the values of a frame and their depth.
#[derive(Deserialize)]
#[serde(rename = "WireVal")]
enum Decoded {
    Bool(bool),
    S8(i8),
    U8(u8),
    S16(i16),
    U16(u16),
    S32(i32),
    U32(u32),
    S64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Char(char),
    String(String),
    Bytes(#[serde(with = "bytes")] Vec<u8>),
    List(#[serde(deserialize_with = "growing")] Vec<WireVal>),
    Record(#[serde(deserialize_with = "growing")] Vec<(String, WireVal)>),
    Tuple(#[serde(deserialize_with = "growing")] Vec<WireVal>),
    Variant(String, Option<Box<WireVal>>),
    Enum(String),
    Option(Option<Box<WireVal>>),
    Result(Result<Option<Box<WireVal>>, Option<Box<WireVal>>>),
    Flags(#[serde(deserialize_with = "growing")] Vec<String>),
}

/// A list as decoded: room for at most [`PREALLOCATED`] items before they
/// arrive, whatever length it claims, so that lists nested as deep as they
/// may be cannot claim more memory than their values pay for.
fn growing<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(input: D) -> Result<Vec<T>, D::Error> {
    struct Growing<T>(std::marker::PhantomData<T>);

    impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Growing<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list")
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(PREALLOCATED));
            while let Some(item) = seq.next_element()? {
                items.push(item);
            }
            Ok(items)
        }
    }

    input.deserialize_seq(Growing(std::marker::PhantomData))
}

/// How many items of a list are made room for before they arrive.
const PREALLOCATED: usize = 256;

impl From<Decoded> for WireVal {
    fn from(decoded: Decoded) -> WireVal {
        match decoded {
            Decoded::Bool(v) => WireVal::Bool(v),
            Decoded::S8(v) => WireVal::S8(v),
            Decoded::U8(v) => WireVal::U8(v),
            Decoded::S16(v) => WireVal::S16(v),
            Decoded::U16(v) => WireVal::U16(v),
            Decoded::S32(v) => WireVal::S32(v),
            Decoded::U32(v) => WireVal::U32(v),
            Decoded::S64(v) => WireVal::S64(v),
            Decoded::U64(v) => WireVal::U64(v),
            Decoded::F32(v) => WireVal::F32(v),
            Decoded::F64(v) => WireVal::F64(v),
            Decoded::Char(v) => WireVal::Char(v),
            Decoded::String(v) => WireVal::String(v),
            Decoded::Bytes(v) => WireVal::Bytes(v),
            Decoded::List(v) => WireVal::List(v),
            Decoded::Record(v) => WireVal::Record(v),
            Decoded::Tuple(v) => WireVal::Tuple(v),
            Decoded::Variant(case, v) => WireVal::Variant(case, v),
            Decoded::Enum(v) => WireVal::Enum(v),
            Decoded::Option(v) => WireVal::Option(v),
            Decoded::Result(v) => WireVal::Result(v),
            Decoded::Flags(v) => WireVal::Flags(v),
        }
    }
}

/// What decoding the current frame may still cost, on this thread.
#[derive(Clone, Copy)]
struct Budget {
    /// Values it may still decode.
    values: usize,
    /// How deep the value being decoded is.
    depth: usize,
    /// Why decoding was stopped, if it was.
    exceeded: Option<&'static str>,
}

thread_local! {
    static BUDGET: Cell<Budget> = const {
        Cell::new(Budget { values: usize::MAX, depth: 0, exceeded: None })
    };
}

impl<'de> Deserialize<'de> for WireVal {
    fn deserialize<D: serde::Deserializer<'de>>(input: D) -> Result<WireVal, D::Error> {
        let mut budget = BUDGET.get();
        let exceeded = match budget {
            Budget { values: 0, .. } => Some("too many values"),
            Budget { depth, .. } if depth >= MAX_DEPTH => Some("values nested too deep"),
            _ => None,
        };
        if let Some(why) = exceeded {
            budget.exceeded = Some(why);
            BUDGET.set(budget);
            return Err(serde::de::Error::custom(why));
        }
        budget.values -= 1;
        budget.depth += 1;
        BUDGET.set(budget);
        let decoded = Decoded::deserialize(input);
        BUDGET.with(|b| {
            let mut budget = b.get();
            budget.depth -= 1;
            b.set(budget);
        });
        decoded.map(WireVal::from)
    }
}

/// What cannot cross the wire, or did not arrive whole.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct WireError(pub String);

impl WireVal {
    /// The wire form of `val`; resources, streams and futures belong to
    /// their instance and cannot leave it.
    pub fn from_val(val: &Val) -> Result<WireVal, WireError> {
        let boxed = |v: &Option<Box<Val>>| -> Result<Option<Box<WireVal>>, WireError> {
            v.as_deref()
                .map(|v| WireVal::from_val(v).map(Box::new))
                .transpose()
        };
        let all = |vs: &[Val]| vs.iter().map(WireVal::from_val).collect::<Result<Vec<_>, _>>();
        Ok(match val {
            Val::Bool(v) => WireVal::Bool(*v),
            Val::S8(v) => WireVal::S8(*v),
            Val::U8(v) => WireVal::U8(*v),
            Val::S16(v) => WireVal::S16(*v),
            Val::U16(v) => WireVal::U16(*v),
            Val::S32(v) => WireVal::S32(*v),
            Val::U32(v) => WireVal::U32(*v),
            Val::S64(v) => WireVal::S64(*v),
            Val::U64(v) => WireVal::U64(*v),
            Val::Float32(v) => WireVal::F32(*v),
            Val::Float64(v) => WireVal::F64(*v),
            Val::Char(v) => WireVal::Char(*v),
            Val::String(v) => WireVal::String(v.clone()),
            Val::List(vs) if !vs.is_empty() && vs.iter().all(|v| matches!(v, Val::U8(_))) => WireVal::Bytes(
                vs.iter()
                    .map(|v| if let Val::U8(b) = v { *b } else { 0 })
                    .collect(),
            ),
            Val::List(vs) | Val::FixedLengthList(vs) => WireVal::List(all(vs)?),
            Val::Record(fields) => WireVal::Record(
                fields
                    .iter()
                    .map(|(name, v)| Ok((name.clone(), WireVal::from_val(v)?)))
                    .collect::<Result<_, WireError>>()?,
            ),
            Val::Tuple(vs) => WireVal::Tuple(all(vs)?),
            Val::Variant(case, v) => WireVal::Variant(case.clone(), boxed(v)?),
            Val::Enum(case) => WireVal::Enum(case.clone()),
            Val::Option(v) => WireVal::Option(boxed(v)?),
            Val::Result(Ok(v)) => WireVal::Result(Ok(boxed(v)?)),
            Val::Result(Err(v)) => WireVal::Result(Err(boxed(v)?)),
            Val::Flags(names) => WireVal::Flags(names.clone()),
            Val::Map(_) => return Err(WireError("a map cannot cross to the host yet".into())),
            Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
                return Err(WireError(
                    "a resource, future, stream or error-context belongs to its instance and cannot cross to the host"
                        .into(),
                ));
            }
        })
    }

    /// The wire form of `val`, a value of type `ty`: as
    /// [`WireVal::from_val`], but a `list<u8>` is bytes even when empty
    /// (a host without the types then still gets bytes).
    pub fn from_typed(val: &Val, ty: &Type) -> Result<WireVal, WireError> {
        let boxed = |v: &Val, ty: Option<Type>| -> Result<Option<Box<WireVal>>, WireError> {
            match ty {
                Some(ty) => WireVal::from_typed(v, &ty).map(|v| Some(Box::new(v))),
                None => WireVal::from_val(v).map(|v| Some(Box::new(v))),
            }
        };
        Ok(match (val, ty) {
            (Val::List(vs), Type::List(list)) if list.ty() == Type::U8 => WireVal::Bytes(
                vs.iter()
                    .map(|v| match v {
                        Val::U8(b) => Ok(*b),
                        other => Err(WireError(format!("a {other:?} in a list<u8>"))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            (Val::List(vs), Type::List(list)) => {
                let element = list.ty();
                WireVal::List(
                    vs.iter()
                        .map(|v| WireVal::from_typed(v, &element))
                        .collect::<Result<_, _>>()?,
                )
            }
            (Val::Record(fields), Type::Record(record)) => WireVal::Record(
                fields
                    .iter()
                    .zip(record.fields())
                    .map(|((name, v), field)| Ok((name.clone(), WireVal::from_typed(v, &field.ty)?)))
                    .collect::<Result<_, WireError>>()?,
            ),
            (Val::Tuple(vs), Type::Tuple(tuple)) => WireVal::Tuple(
                vs.iter()
                    .zip(tuple.types())
                    .map(|(v, ty)| WireVal::from_typed(v, &ty))
                    .collect::<Result<_, _>>()?,
            ),
            (Val::Variant(case, Some(v)), Type::Variant(variant)) => {
                let ty = variant.cases().find(|c| c.name == case).and_then(|c| c.ty);
                WireVal::Variant(case.clone(), boxed(v, ty)?)
            }
            (Val::Option(Some(v)), Type::Option(option)) => WireVal::Option(boxed(v, Some(option.ty()))?),
            (Val::Result(Ok(Some(v))), Type::Result(result)) => WireVal::Result(Ok(boxed(v, result.ok())?)),
            (Val::Result(Err(Some(v))), Type::Result(result)) => {
                WireVal::Result(Err(boxed(v, result.err())?))
            }
            _ => WireVal::from_val(val)?,
        })
    }

    /// The component value this stands for, as it is.
    pub fn into_val(self) -> Result<Val, WireError> {
        let boxed = |v: Option<Box<WireVal>>| -> Result<Option<Box<Val>>, WireError> {
            v.map(|v| v.into_val().map(Box::new)).transpose()
        };
        let all = |vs: Vec<WireVal>| {
            vs.into_iter()
                .map(WireVal::into_val)
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(match self {
            WireVal::Bool(v) => Val::Bool(v),
            WireVal::S8(v) => Val::S8(v),
            WireVal::U8(v) => Val::U8(v),
            WireVal::S16(v) => Val::S16(v),
            WireVal::U16(v) => Val::U16(v),
            WireVal::S32(v) => Val::S32(v),
            WireVal::U32(v) => Val::U32(v),
            WireVal::S64(v) => Val::S64(v),
            WireVal::U64(v) => Val::U64(v),
            WireVal::F32(v) => Val::Float32(v),
            WireVal::F64(v) => Val::Float64(v),
            WireVal::Char(v) => Val::Char(v),
            WireVal::String(v) => Val::String(v),
            WireVal::Bytes(bytes) => Val::List(bytes.into_iter().map(Val::U8).collect()),
            WireVal::List(vs) => Val::List(all(vs)?),
            WireVal::Record(fields) => Val::Record(
                fields
                    .into_iter()
                    .map(|(name, v)| Ok((name, v.into_val()?)))
                    .collect::<Result<_, WireError>>()?,
            ),
            WireVal::Tuple(vs) => Val::Tuple(all(vs)?),
            WireVal::Variant(case, v) => Val::Variant(case, boxed(v)?),
            WireVal::Enum(case) => Val::Enum(case),
            WireVal::Option(v) => Val::Option(boxed(v)?),
            WireVal::Result(Ok(v)) => Val::Result(Ok(boxed(v)?)),
            WireVal::Result(Err(v)) => Val::Result(Err(boxed(v)?)),
            WireVal::Flags(names) => Val::Flags(names),
        })
    }

    /// The value of type `ty` this stands for. A value of that very shape
    /// is taken as it is; so that a host without the component's types
    /// can call it, plainer forms are fitted too:
    ///
    /// - any integer case, for any integer type it fits in, and for a
    ///   float type;
    /// - a string of one character, for `char`; a string, for an `enum`
    ///   case, and for a `variant` case without a payload;
    /// - a record of one field named after a case, for a `variant` (the
    ///   field's value is the payload);
    /// - a list, for a `tuple`, and bytes or a tuple, for a `list`; a
    ///   list of strings, for `flags`;
    /// - a value that is not an `option`, for `option<T>`: `some` of it;
    /// - a record `{ok: v}` or `{err: e}`, for a `result`, and any other
    ///   value, for its `ok` case (`none`, for an `ok` without payload).
    ///
    /// A record's fields are matched by name, in any order.
    pub fn into_typed(self, ty: &Type) -> Result<Val, WireError> {
        let wrong = |what: &WireVal| WireError(format!("{} where {} was wanted", what.kind(), type_name(ty)));
        macro_rules! int {
            ($case:ident, $t:ty) => {
                match self.integer() {
                    Some(n) => <$t>::try_from(n)
                        .map(Val::$case)
                        .map_err(|_| WireError(format!("{n} is out of range for {}", type_name(ty)))),
                    None => Err(wrong(&self)),
                }
            };
        }
        match ty {
            Type::Bool => match self {
                WireVal::Bool(v) => Ok(Val::Bool(v)),
                other => Err(wrong(&other)),
            },
            Type::S8 => int!(S8, i8),
            Type::U8 => int!(U8, u8),
            Type::S16 => int!(S16, i16),
            Type::U16 => int!(U16, u16),
            Type::S32 => int!(S32, i32),
            Type::U32 => int!(U32, u32),
            Type::S64 => int!(S64, i64),
            Type::U64 => int!(U64, u64),
            Type::Float32 => match self {
                WireVal::F32(v) => Ok(Val::Float32(v)),
                WireVal::F64(v) => Ok(Val::Float32(v as f32)),
                other => match other.integer() {
                    Some(n) => Ok(Val::Float32(n as f32)),
                    None => Err(wrong(&other)),
                },
            },
            Type::Float64 => match self {
                WireVal::F64(v) => Ok(Val::Float64(v)),
                WireVal::F32(v) => Ok(Val::Float64(f64::from(v))),
                other => match other.integer() {
                    Some(n) => Ok(Val::Float64(n as f64)),
                    None => Err(wrong(&other)),
                },
            },
            Type::Char => match self {
                WireVal::Char(c) => Ok(Val::Char(c)),
                WireVal::String(s) => {
                    let mut chars = s.chars();
                    match (chars.next(), chars.next()) {
                        (Some(c), None) => Ok(Val::Char(c)),
                        _ => Err(WireError(format!(
                            "a string of {} characters where a char was wanted",
                            s.chars().count()
                        ))),
                    }
                }
                other => Err(wrong(&other)),
            },
            Type::String => match self {
                WireVal::String(s) => Ok(Val::String(s)),
                WireVal::Char(c) => Ok(Val::String(c.to_string())),
                other => Err(wrong(&other)),
            },
            Type::List(list) => {
                let element = list.ty();
                let items = match self {
                    WireVal::Bytes(bytes) if element == Type::U8 => {
                        return Ok(Val::List(bytes.into_iter().map(Val::U8).collect()));
                    }
                    WireVal::Bytes(bytes) => bytes.into_iter().map(WireVal::U8).collect(),
                    WireVal::List(items) | WireVal::Tuple(items) => items,
                    other => return Err(wrong(&other)),
                };
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        item.into_typed(&element)
                            .map_err(|e| within(&format!("[{i}]"), e))
                    })
                    .collect::<Result<_, _>>()
                    .map(Val::List)
            }
            Type::Record(record) => {
                let WireVal::Record(mut given) = self else {
                    return Err(wrong(&self));
                };
                let mut fields = Vec::with_capacity(given.len());
                for field in record.fields() {
                    let at = given
                        .iter()
                        .position(|(name, _)| name == field.name)
                        .ok_or_else(|| WireError(format!("the record has no field `{}`", field.name)))?;
                    let (name, value) = given.swap_remove(at);
                    let value = value.into_typed(&field.ty).map_err(|e| within(&name, e))?;
                    fields.push((name, value));
                }
                match given.first() {
                    Some((name, _)) => Err(WireError(format!("the record has no field `{name}` to fill"))),
                    None => Ok(Val::Record(fields)),
                }
            }
            Type::Tuple(tuple) => {
                let (WireVal::Tuple(items) | WireVal::List(items)) = self else {
                    return Err(wrong(&self));
                };
                let types: Vec<Type> = tuple.types().collect();
                if types.len() != items.len() {
                    return Err(WireError(format!(
                        "a tuple of {} where one of {} was wanted",
                        items.len(),
                        types.len()
                    )));
                }
                items
                    .into_iter()
                    .zip(&types)
                    .enumerate()
                    .map(|(i, (item, ty))| item.into_typed(ty).map_err(|e| within(&format!(".{i}"), e)))
                    .collect::<Result<_, _>>()
                    .map(Val::Tuple)
            }
            Type::Variant(variant) => {
                let (case, payload) = match self {
                    WireVal::Variant(case, payload) => (case, payload.map(|p| *p)),
                    WireVal::String(case) | WireVal::Enum(case) => (case, None),
                    WireVal::Record(mut fields) if fields.len() == 1 => {
                        let (case, payload) = fields.remove(0);
                        (case, Some(payload))
                    }
                    other => return Err(wrong(&other)),
                };
                let known = variant
                    .cases()
                    .find(|c| c.name == case)
                    .ok_or_else(|| WireError(format!("no case `{case}` in {}", type_name(ty))))?;
                let payload = match (known.ty, payload) {
                    (None, None) => None,
                    (Some(ty), Some(payload)) => {
                        Some(Box::new(payload.into_typed(&ty).map_err(|e| within(&case, e))?))
                    }
                    (None, Some(_)) => return Err(WireError(format!("case `{case}` has no payload"))),
                    (Some(_), None) => return Err(WireError(format!("case `{case}` needs a payload"))),
                };
                Ok(Val::Variant(case, payload))
            }
            Type::Enum(cases) => match self {
                WireVal::Enum(case) | WireVal::String(case) if cases.names().any(|n| n == case) => {
                    Ok(Val::Enum(case))
                }
                WireVal::Enum(case) | WireVal::String(case) => {
                    Err(WireError(format!("no case `{case}` in {}", type_name(ty))))
                }
                other => Err(wrong(&other)),
            },
            Type::Option(option) => match self {
                WireVal::Option(None) => Ok(Val::Option(None)),
                WireVal::Option(Some(v)) => Ok(Val::Option(Some(Box::new(v.into_typed(&option.ty())?)))),
                other => Ok(Val::Option(Some(Box::new(other.into_typed(&option.ty())?)))),
            },
            Type::Result(result) => {
                let (ok, payload) = match self {
                    WireVal::Result(Ok(v)) => (true, v.map(|v| *v)),
                    WireVal::Result(Err(v)) => (false, v.map(|v| *v)),
                    WireVal::Record(mut fields)
                        if fields.len() == 1 && matches!(fields[0].0.as_str(), "ok" | "err") =>
                    {
                        let (case, payload) = fields.remove(0);
                        (case == "ok", Some(payload))
                    }
                    // Any other value is the `ok` case's.
                    other => (true, Some(other)),
                };
                let side = if ok { result.ok() } else { result.err() };
                let payload = match (side, payload) {
                    (None, None | Some(WireVal::Option(None))) => None,
                    (Some(ty), Some(v)) => Some(Box::new(v.into_typed(&ty)?)),
                    (None, Some(_)) => return Err(WireError("a payload where the result has none".into())),
                    (Some(_), None) => return Err(WireError("no payload where the result has one".into())),
                };
                Ok(Val::Result(if ok { Ok(payload) } else { Err(payload) }))
            }
            Type::Flags(flags) => {
                let names = match self {
                    WireVal::Flags(names) => names,
                    WireVal::List(items) => items
                        .into_iter()
                        .map(|item| match item {
                            WireVal::String(s) | WireVal::Enum(s) => Ok(s),
                            other => Err(wrong(&other)),
                        })
                        .collect::<Result<_, _>>()?,
                    other => return Err(wrong(&other)),
                };
                if let Some(unknown) = names.iter().find(|n| !flags.names().any(|f| f == n.as_str())) {
                    return Err(WireError(format!("no flag `{unknown}` in {}", type_name(ty))));
                }
                Ok(Val::Flags(names))
            }
            other => Err(WireError(format!(
                "a {} cannot cross between the host and the worker",
                type_name(other)
            ))),
        }
    }

    /// The integer this holds, if it is one.
    fn integer(&self) -> Option<i128> {
        Some(match *self {
            WireVal::S8(v) => v.into(),
            WireVal::U8(v) => v.into(),
            WireVal::S16(v) => v.into(),
            WireVal::U16(v) => v.into(),
            WireVal::S32(v) => v.into(),
            WireVal::U32(v) => v.into(),
            WireVal::S64(v) => v.into(),
            WireVal::U64(v) => v.into(),
            _ => return None,
        })
    }

    /// What kind of value this is, for errors.
    fn kind(&self) -> &'static str {
        match self {
            WireVal::Bool(_) => "a bool",
            WireVal::S8(_) | WireVal::U8(_) | WireVal::S16(_) | WireVal::U16(_) => "an integer",
            WireVal::S32(_) | WireVal::U32(_) | WireVal::S64(_) | WireVal::U64(_) => "an integer",
            WireVal::F32(_) | WireVal::F64(_) => "a float",
            WireVal::Char(_) => "a char",
            WireVal::String(_) => "a string",
            WireVal::Bytes(_) => "bytes",
            WireVal::List(_) => "a list",
            WireVal::Record(_) => "a record",
            WireVal::Tuple(_) => "a tuple",
            WireVal::Variant(..) => "a variant",
            WireVal::Enum(_) => "an enum case",
            WireVal::Option(_) => "an option",
            WireVal::Result(_) => "a result",
            WireVal::Flags(_) => "flags",
        }
    }
}

/// `error`, found in the part `at` of a value.
fn within(at: &str, error: WireError) -> WireError {
    WireError(format!("{at}: {}", error.0))
}

/// A type's name in errors.
fn type_name(ty: &Type) -> String {
    crate::engine::wit_type(ty)
}

/// Writes `message` as one frame, in one write.
pub fn send<M: Serialize>(to: &mut impl Write, message: &M) -> std::io::Result<()> {
    let frame = frame(message)?;
    to.write_all(&frame)?;
    to.flush()
}

/// `message` as a frame: its length, then its encoding.
pub fn frame<M: Serialize>(message: &M) -> std::io::Result<Vec<u8>> {
    let mut frame = postcard::to_extend(message, vec![0u8; 4]).map_err(std::io::Error::other)?;
    let length = u32::try_from(frame.len() - 4)
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or_else(|| {
            std::io::Error::other(format!("a message of {} bytes is too large", frame.len() - 4))
        })?;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame)
}

/// What reading a frame gave.
#[derive(Debug)]
pub enum Received<M> {
    /// A whole message.
    Message(M),
    /// The other side closed the channel between frames.
    Closed,
}

/// Reads one frame of at most [`MAX_FRAME`] bytes. An I/O error is
/// returned as is (a timeout among them); a frame that is too large, cut
/// short or not a message is a [`WireError`], as an `InvalidData` error.
pub fn receive<M: for<'de> Deserialize<'de>>(from: &mut impl Read) -> std::io::Result<Received<M>> {
    receive_bounded(from, MAX_FRAME, usize::MAX)
}

/// [`receive`], refusing a frame of more than `max_frame` bytes or
/// holding more than `max_values` values (counted as they are decoded, and
/// decoding stops at the first too many): what decoding it costs is
/// bounded by the frame's size and `max_values`.
pub fn receive_bounded<M: for<'de> Deserialize<'de>>(
    from: &mut impl Read,
    max_frame: u32,
    max_values: usize,
) -> std::io::Result<Received<M>> {
    match read_frame(from, max_frame)? {
        None => Ok(Received::Closed),
        Some(body) => decode(&body, max_values).map(Received::Message),
    }
}

/// The body of the next frame of at most `max_frame` bytes, or `None` if
/// the channel closed between frames.
pub fn read_frame(from: &mut impl Read, max_frame: u32) -> std::io::Result<Option<Vec<u8>>> {
    let mut length = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match from.read(&mut length[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(invalid("the channel closed inside a frame".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let length = u32::from_be_bytes(length);
    let max_frame = max_frame.min(MAX_FRAME);
    if length > max_frame {
        return Err(invalid(format!(
            "a frame of {length} bytes (at most {max_frame})"
        )));
    }
    let mut body = vec![0u8; length as usize];
    from.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => invalid("the channel closed inside a frame".into()),
        _ => e,
    })?;
    Ok(Some(body))
}

/// Decodes one message from a frame's `body`, with at most `max_values`
/// values; the whole body must be the message.
pub fn decode<M: for<'de> Deserialize<'de>>(body: &[u8], max_values: usize) -> std::io::Result<M> {
    BUDGET.set(Budget {
        values: max_values,
        depth: 0,
        exceeded: None,
    });
    let decoded = postcard::take_from_bytes::<M>(body);
    let budget = BUDGET.replace(Budget {
        values: usize::MAX,
        depth: 0,
        exceeded: None,
    });
    match (decoded, budget.exceeded) {
        (Ok((message, [])), _) => Ok(message),
        (Ok((_, rest)), _) => Err(invalid(format!(
            "not a message of this protocol: {} bytes after its end",
            rest.len()
        ))),
        (Err(_), Some("too many values")) => {
            Err(invalid(format!("a frame of more than {max_values} values")))
        }
        (Err(_), Some(why)) => Err(invalid(format!("a frame of {why} (at most {MAX_DEPTH})"))),
        (Err(e), None) => Err(invalid(format!("not a message of this protocol: {e}"))),
    }
}

/// The protocol version in a JSON hello of protocol 2 or earlier
/// (`{"hello":{"protocol":N}}`), if `body` is one.
pub fn json_hello(body: &[u8]) -> Option<u32> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value.get("hello")?.get("protocol")?.as_u64()?.try_into().ok()
}

/// Whether `body` is a JSON message (protocol 2 or earlier spoke JSON).
pub fn is_json(body: &[u8]) -> bool {
    body.first() == Some(&b'{')
}

/// A JSON hello saying this worker's protocol, for a host of protocol 2 or
/// earlier.
pub fn json_hello_frame() -> Vec<u8> {
    let body = format!("{{\"hello\":{{\"protocol\":{PROTOCOL}}}}}");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(body.as_bytes());
    frame
}

fn invalid(why: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, WireError(why))
}

/// Serde for a byte list as bytes (postcard: its length and its bytes),
/// not as a sequence of numbers.
mod bytes {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], out: S) -> Result<S::Ok, S::Error> {
        out.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Vec<u8>, D::Error> {
        input.deserialize_byte_buf(Bytes)
    }

    pub(super) struct Bytes;

    impl serde::de::Visitor<'_> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
    }
}

/// Serde for an optional byte list as bytes.
mod maybe_bytes {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    struct Wrapped(#[serde(with = "super::bytes")] Vec<u8>);

    struct Borrowed<'a>(&'a [u8]);

    impl Serialize for Borrowed<'_> {
        fn serialize<S: Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
            out.serialize_bytes(self.0)
        }
    }

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, out: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => out.serialize_some(&Borrowed(bytes)),
            None => out.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Wrapped>::deserialize(input)?.map(|w| w.0))
    }
}

/// Serde for `handle`'s answer: the output as bytes, or the refusal.
mod bytes_or_refusal {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize)]
    enum Ref<'a> {
        Ok(#[serde(with = "serde_bytes_ref")] &'a [u8]),
        Err(&'a str),
    }

    #[derive(Deserialize)]
    enum Owned {
        Ok(#[serde(with = "super::bytes")] Vec<u8>),
        Err(String),
    }

    mod serde_bytes_ref {
        pub fn serialize<S: serde::Serializer>(bytes: &&[u8], out: S) -> Result<S::Ok, S::Error> {
            out.serialize_bytes(bytes)
        }
    }

    pub fn serialize<S: Serializer>(value: &Result<Vec<u8>, String>, out: S) -> Result<S::Ok, S::Error> {
        match value {
            Ok(bytes) => Ref::Ok(bytes),
            Err(why) => Ref::Err(why),
        }
        .serialize(out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<Result<Vec<u8>, String>, D::Error> {
        Ok(match Owned::deserialize(input)? {
            Owned::Ok(bytes) => Ok(bytes),
            Owned::Err(why) => Err(why),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_and_bounded_as_they_are_decoded() {
        let list = WireVal::List(vec![WireVal::U16(7); 5000]);
        let frame = frame(&FromWorker::Returned(vec![list])).unwrap();
        let err = receive_bounded::<FromWorker>(&mut &frame[..], MAX_FRAME, 5000).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("more than 5000 values"), "{err}");
        assert!(receive_bounded::<FromWorker>(&mut &frame[..], MAX_FRAME, 5001).is_ok());
        let err = receive_bounded::<FromWorker>(&mut &frame[..], 1000, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("at most 1000"), "{err}");
        // The budget is the frame's: the next frame has its own, and a
        // failed decoding leaves none behind.
        let small = super::frame(&FromWorker::Returned(vec![WireVal::U8(1)])).unwrap();
        assert!(receive_bounded::<FromWorker>(&mut &small[..], MAX_FRAME, 1).is_ok());
    }

    /// What a value costs once decoded, besides its strings' and bytes'
    /// length: the README's bound (80 bytes a value) rests on it.
    #[test]
    fn a_value_costs_at_most_80_bytes_decoded() {
        let per_value = std::mem::size_of::<WireVal>() + std::mem::size_of::<Val>();
        assert!(per_value <= 80, "{per_value}");
    }

    #[test]
    fn values_nested_too_deep_are_refused_without_recursing_further() {
        // Lists in lists, 100,000 deep: 2 bytes each on the wire.
        let depth = 100_000;
        let mut body = vec![2u8, 1]; // Returned, one value
        for _ in 0..depth {
            body.extend_from_slice(&[14, 1]); // List of one
        }
        body.extend_from_slice(&[0, 1]); // Bool(true)
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(body);
        let err = receive::<FromWorker>(&mut &frame[..]).unwrap_err();
        assert!(err.to_string().contains("nested too deep"), "{err}");
        // MAX_DEPTH is fine.
        let mut value = WireVal::Bool(true);
        for _ in 0..MAX_DEPTH - 1 {
            value = WireVal::List(vec![value]);
        }
        let frame = super::frame(&FromWorker::Returned(vec![value])).unwrap();
        assert!(receive::<FromWorker>(&mut &frame[..]).is_ok());
    }

    fn round_trip(val: Val) {
        let wire = WireVal::from_val(&val).unwrap();
        let frame = frame(&FromWorker::Returned(vec![wire])).unwrap();
        let Received::Message(FromWorker::Returned(mut back)) = receive(&mut &frame[..]).unwrap() else {
            panic!("not returned")
        };
        let back = back.remove(0).into_val().unwrap();
        assert_eq!(format!("{back:?}"), format!("{val:?}"));
    }

    #[test]
    fn every_value_survives_the_wire() {
        round_trip(Val::Float64(f64::NAN));
        round_trip(Val::Float32(-0.0));
        round_trip(Val::Float64(f64::INFINITY));
        round_trip(Val::S64(i64::MIN));
        round_trip(Val::U64(u64::MAX));
        round_trip(Val::String("h\u{e9}\0llo".into()));
        round_trip(Val::List(vec![Val::U8(0), Val::U8(255)]));
        round_trip(Val::List(vec![]));
        round_trip(Val::Record(vec![
            ("x".into(), Val::S32(-1)),
            ("y".into(), Val::Char('ü')),
        ]));
        round_trip(Val::Variant(
            "rect".into(),
            Some(Box::new(Val::Tuple(vec![Val::U64(u64::MAX)]))),
        ));
        round_trip(Val::Option(None));
        round_trip(Val::Result(Err(Some(Box::new(Val::String("no".into()))))));
        round_trip(Val::Flags(vec!["read".into(), "exec".into()]));
        round_trip(Val::Enum("blue".into()));
    }

    /// A `list<u8>` leaves as bytes even when empty, when its type is
    /// known: a host without the types gets bytes either way.
    #[test]
    fn typed_byte_lists_leave_as_bytes() {
        use wasmtime::component::types::Type;
        let engine = wasmtime::Engine::default();
        let component = wasmtime::component::Component::new(
            &engine,
            r#"(component
                (import "f" (func (param "t" (tuple (list u8) u32)) (result (option (list u8))))))"#,
        )
        .unwrap();
        let component_type = component.component_type();
        let (_, import) = component_type.imports(&engine).next().unwrap();
        let wasmtime::component::types::ComponentItem::ComponentFunc(func) = import.ty else {
            panic!("not a function")
        };
        let (_, tuple) = func.params().next().unwrap();
        let empty = Val::Tuple(vec![Val::List(vec![]), Val::U32(1)]);
        assert_eq!(
            WireVal::from_typed(&empty, &tuple).unwrap(),
            WireVal::Tuple(vec![WireVal::Bytes(vec![]), WireVal::U32(1)])
        );
        let result: Type = func.results().next().unwrap();
        let some = Val::Option(Some(Box::new(Val::List(vec![]))));
        assert_eq!(
            WireVal::from_typed(&some, &result).unwrap(),
            WireVal::Option(Some(Box::new(WireVal::Bytes(vec![]))))
        );
        // Untyped, an empty list is a list.
        assert_eq!(
            WireVal::from_val(&Val::List(vec![])).unwrap(),
            WireVal::List(vec![])
        );
    }

    /// Plain values are fitted to the types the worker expects.
    #[test]
    fn plain_values_are_fitted_to_their_types() {
        use wasmtime::component::types::Type;
        assert_eq!(WireVal::S64(7).into_typed(&Type::U8).unwrap(), Val::U8(7));
        assert!(
            WireVal::S64(-1)
                .into_typed(&Type::U32)
                .unwrap_err()
                .0
                .contains("out of range")
        );
        assert_eq!(
            WireVal::S64(2).into_typed(&Type::Float64).unwrap(),
            Val::Float64(2.0)
        );
        assert_eq!(
            WireVal::String("é".into()).into_typed(&Type::Char).unwrap(),
            Val::Char('é')
        );
        assert!(WireVal::String("ab".into()).into_typed(&Type::Char).is_err());
        assert!(
            WireVal::Bool(true)
                .into_typed(&Type::String)
                .unwrap_err()
                .0
                .contains("a bool where string")
        );
    }

    #[test]
    fn bytes_cross_as_bytes() {
        let input = vec![7u8; 1 << 20];
        let frame = frame(&ToWorker::Handle(input.clone())).unwrap();
        // A byte each, and a few for the case and the length.
        assert!(frame.len() < input.len() + 16, "{}", frame.len());
        match receive::<ToWorker>(&mut &frame[..]).unwrap() {
            Received::Message(ToWorker::Handle(got)) => assert_eq!(got, input),
            other => panic!("{other:?}"),
        }
        let frame = super::frame(&FromWorker::Handled(Ok(vec![1, 2, 3]))).unwrap();
        assert_eq!(&frame[4..], [3, 0, 3, 1, 2, 3]);
        let frame = super::frame(&FromWorker::Handled(Err("no".into()))).unwrap();
        assert_eq!(&frame[4..], [3, 1, 2, b'n', b'o']);
    }

    /// The encoding is the protocol: these bytes are what a host of
    /// another language reads and writes (`python/wsandbox/wire.py`).
    #[test]
    fn the_encoding_is_documented_byte_for_byte() {
        let body = |m: &ToWorker| frame(m).unwrap()[4..].to_vec();
        assert_eq!(
            body(&ToWorker::Call {
                name: "f".into(),
                args: vec![WireVal::S32(-2), WireVal::U64(300), WireVal::String("é".into())],
            }),
            [1, 1, b'f', 3, 5, 3, 8, 0xac, 0x02, 12, 2, 0xc3, 0xa9]
        );
        assert_eq!(
            body(&ToWorker::Start {
                protocol: 3,
                policy: PolicySource::Json("{}".into()),
                imports: vec!["h".into()],
                module: None,
            }),
            [0, 3, 0, 2, b'{', b'}', 1, 1, b'h', 0]
        );
        assert_eq!(body(&ToWorker::HostReturned(Err("x".into()))), [3, 1, 1, b'x']);
        let hello = frame(&FromWorker::Hello { protocol: 3 }).unwrap();
        assert_eq!(hello, [0, 0, 0, 2, 0, 3]);
    }

    #[test]
    fn frames_read_back() {
        let mut buffer = Vec::new();
        for name in ["f", "g"] {
            send(
                &mut buffer,
                &ToWorker::Call {
                    name: name.into(),
                    args: vec![WireVal::U8(1)],
                },
            )
            .unwrap();
        }
        let mut reader = buffer.as_slice();
        for name in ["f", "g"] {
            match receive::<ToWorker>(&mut reader).unwrap() {
                Received::Message(ToWorker::Call { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            receive::<ToWorker>(&mut reader).unwrap(),
            Received::Closed
        ));
    }

    #[test]
    fn garbage_is_refused_cleanly() {
        let cases: Vec<Vec<u8>> = vec![
            b"\x00\x00".to_vec(),
            b"\x00\x00\x00\x05{}".to_vec(),
            b"\x00\x00\x00\x02{}".to_vec(),
            b"\xff\xff\xff\xffxxxx".to_vec(),
            b"\x00\x00\x00\x04\xff\xfe\xfd\xfc".to_vec(),
            // A whole message and a byte more.
            b"\x00\x00\x00\x03\x00\x03\x00".to_vec(),
            // A list that says it holds 2^32 values.
            b"\x00\x00\x00\x07\x02\xff\xff\xff\xff\x0f\x00".to_vec(),
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        ];
        for bytes in cases {
            let err = receive::<FromWorker>(&mut bytes.as_slice()).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{bytes:?}: {err}");
        }
    }

    #[test]
    fn a_json_hello_of_protocol_2_is_read() {
        let frame = json_hello_frame();
        assert!(is_json(&frame[4..]));
        assert_eq!(json_hello(&frame[4..]), Some(PROTOCOL));
        assert_eq!(json_hello(br#"{"hello":{"protocol":2}}"#), Some(2));
        assert_eq!(json_hello(br#"{"ready":{}}"#), None);
    }

    /// Any bytes at all, from either side: a message, a clean close or an
    /// `InvalidData` error (a short read is one too), never a panic, and
    /// never a read past what a frame announced.
    #[test]
    fn any_bytes_decode_or_fail_cleanly() {
        use proptest::prelude::*;
        use proptest::test_runner::{Config, TestRunner};
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 4000,
                failure_persistence: None,
                ..Config::default()
            },
            proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
        );
        // Frames of random bytes, of bytes that start like a message of
        // each case, and anything at all.
        let frame = (0u8..8, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(case, body)| {
            let mut bytes = ((body.len() + 1) as u32).to_be_bytes().to_vec();
            bytes.push(case);
            bytes.extend(body);
            bytes
        });
        let anything = prop::collection::vec(any::<u8>(), 0..80);
        runner
            .run(&prop_oneof![frame, anything], |bytes| {
                for _ in 0..2 {
                    let mut reader = bytes.as_slice();
                    let got = match receive_bounded::<FromWorker>(&mut reader, MAX_FRAME, 64) {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e.kind()),
                    };
                    prop_assert!(matches!(got, Ok(()) | Err(std::io::ErrorKind::InvalidData)));
                    let mut reader = bytes.as_slice();
                    let got = match receive_bounded::<ToWorker>(&mut reader, MAX_FRAME, 64) {
                        Ok(_) => Ok(()),
                        Err(e) => Err(e.kind()),
                    };
                    prop_assert!(matches!(got, Ok(()) | Err(std::io::ErrorKind::InvalidData)));
                }
                Ok(())
            })
            .unwrap();
    }
}
