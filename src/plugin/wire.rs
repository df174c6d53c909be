//! The private protocol between a [`super::Plugin`] and its worker: frames
//! of a 4-byte big-endian length and a JSON message, over a socket pair.
//! The host speaks first: the protocol version and the policy (which so
//! never appears on the worker's command line, where `ps` would show it
//! to every user). The worker answers with its protocol version once it
//! has the code compiled, then with its exports once the plugin is
//! instantiated; then each call is one request and one answer.
//!
//! Values travel as [`WireVal`], a structural copy of the component value
//! (floats as their bits, byte lists as hex), so nothing is lost either
//! way; the worker checks arguments against the function's parameters.
//! `handle`'s bytes travel as hex and are passed to the plugin typed, with
//! no value per byte.

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use wasmtime::component::Val;

/// The protocol version this library and this worker speak.
pub const PROTOCOL: u32 = 2;

/// The largest frame either side accepts: a call's arguments or results.
pub const MAX_FRAME: u32 = 256 << 20;

/// A message from the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// `handle` returned: the output in hex, or the plugin's refusal.
    Handled(Result<String, String>),
    /// A call failed; the worker goes on unless `fatal`.
    Failed {
        /// How.
        kind: Failure,
        /// One line.
        message: String,
        /// The instance is gone (a trap): the worker exits.
        fatal: bool,
    },
}

/// How a call failed, in a [`FromWorker::Failed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The call does not fit the plugin: an unknown export, arguments of
    /// the wrong number or type, a value that cannot cross.
    Call,
    /// The plugin trapped.
    Trap,
    /// The call burnt all its fuel.
    Fuel,
}

/// A message to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    /// The first message: the host's protocol version and the policy.
    Start {
        /// The host's protocol version.
        protocol: u32,
        /// What the plugin is granted.
        policy: Box<crate::Policy>,
    },
    /// Call the export `name` with `args`.
    Call {
        /// The export, as `wsandbox call` names it.
        name: String,
        /// The arguments.
        args: Vec<WireVal>,
    },
    /// Call the plugin world's `handle` with these bytes, in hex.
    Handle(String),
}

/// A component value on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// `f32`, as its bits (JSON has no NaN).
    F32(u32),
    /// `f64`, as its bits.
    F64(u64),
    /// `char`.
    Char(char),
    /// `string`.
    String(String),
    /// `list<u8>`, in hex.
    Bytes(String),
    /// Any other `list`.
    List(Vec<WireVal>),
    /// `record`.
    Record(Vec<(String, WireVal)>),
    /// `tuple`.
    Tuple(Vec<WireVal>),
    /// `variant`.
    Variant(String, Option<Box<WireVal>>),
    /// `enum`.
    Enum(String),
    /// `option`.
    Option(Option<Box<WireVal>>),
    /// `result`.
    Result(Result<Option<Box<WireVal>>, Option<Box<WireVal>>>),
    /// `flags`.
    Flags(Vec<String>),
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
            Val::Float32(v) => WireVal::F32(v.to_bits()),
            Val::Float64(v) => WireVal::F64(v.to_bits()),
            Val::Char(v) => WireVal::Char(*v),
            Val::String(v) => WireVal::String(v.clone()),
            Val::List(vs) if !vs.is_empty() && vs.iter().all(|v| matches!(v, Val::U8(_))) => {
                let bytes: Vec<u8> = vs
                    .iter()
                    .map(|v| if let Val::U8(b) = v { *b } else { 0 })
                    .collect();
                WireVal::Bytes(crate::cache::hex(&bytes))
            }
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

    /// The component value this stands for.
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
            WireVal::F32(bits) => Val::Float32(f32::from_bits(bits)),
            WireVal::F64(bits) => Val::Float64(f64::from_bits(bits)),
            WireVal::Char(v) => Val::Char(v),
            WireVal::String(v) => Val::String(v),
            WireVal::Bytes(hex) => Val::List(unhex(&hex)?.into_iter().map(Val::U8).collect()),
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
}

/// Bytes from lowercase hex.
pub fn unhex(hex: &str) -> Result<Vec<u8>, WireError> {
    let bad = || WireError("a byte list that is not hex".into());
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// Writes `message` as one frame.
pub fn send<M: Serialize>(to: &mut impl Write, message: &M) -> std::io::Result<()> {
    let body = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    let length = u32::try_from(body.len())
        .ok()
        .filter(|&n| n <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other(format!("a message of {} bytes is too large", body.len())))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    to.write_all(&frame)?;
    to.flush()
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
/// holding more than `max_values` values (JSON objects and strings,
/// counted before anything is decoded): what decoding it may cost is
/// bounded by the frame's size.
pub fn receive_bounded<M: for<'de> Deserialize<'de>>(
    from: &mut impl Read,
    max_frame: u32,
    max_values: usize,
) -> std::io::Result<Received<M>> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, WireError(why));
    let mut length = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match from.read(&mut length[got..]) {
            Ok(0) if got == 0 => return Ok(Received::Closed),
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
    let values = values_in(&body);
    if values > max_values {
        return Err(invalid(format!(
            "a frame of {values} values (at most {max_values})"
        )));
    }
    serde_json::from_slice(&body)
        .map(Received::Message)
        .map_err(|e| invalid(format!("not a message of this protocol: {e}")))
}

/// How many JSON objects and strings `json` holds (each becomes at least
/// one allocation when decoded); garbage counts as whatever it looks like.
fn values_in(json: &[u8]) -> usize {
    let (mut values, mut in_string, mut escaped) = (0, false, false);
    for &b in json {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
            values += 1;
        } else if b == b'{' {
            values += 1;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_before_anything_is_decoded() {
        assert_eq!(values_in(br#"{"returned":[{"u16":1},{"u16":2}]}"#), 6);
        // Braces and quotes inside strings are not values.
        assert_eq!(values_in(br#"{"string":"{\"{{"}"#), 3);
        let list = WireVal::List(vec![WireVal::U16(7); 5000]);
        let mut frame = Vec::new();
        send(&mut frame, &FromWorker::Returned(vec![list])).unwrap();
        let got = receive_bounded::<FromWorker>(&mut &frame[..], MAX_FRAME, 5000);
        let err = got.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("values (at most 5000)"), "{err}");
        assert!(receive_bounded::<FromWorker>(&mut &frame[..], MAX_FRAME, 20_000).is_ok());
        let err = receive_bounded::<FromWorker>(&mut &frame[..], 1000, usize::MAX).unwrap_err();
        assert!(err.to_string().contains("at most 1000"), "{err}");
    }

    fn round_trip(val: Val) {
        let wire = WireVal::from_val(&val).unwrap();
        let json = serde_json::to_string(&wire).unwrap();
        let back: WireVal = serde_json::from_str(&json).unwrap();
        let back = back.into_val().unwrap();
        assert_eq!(format!("{back:?}"), format!("{val:?}"), "{json}");
    }

    #[test]
    fn every_value_survives_the_wire() {
        round_trip(Val::Float64(f64::NAN));
        round_trip(Val::Float32(-0.0));
        round_trip(Val::Float64(f64::INFINITY));
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

    #[test]
    fn frames_read_back() {
        let mut buffer = Vec::new();
        send(
            &mut buffer,
            &ToWorker::Call {
                name: "f".into(),
                args: vec![WireVal::U8(1)],
            },
        )
        .unwrap();
        send(
            &mut buffer,
            &ToWorker::Call {
                name: "g".into(),
                args: vec![],
            },
        )
        .unwrap();
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
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        ];
        for bytes in cases {
            let err = receive::<FromWorker>(&mut bytes.as_slice()).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{bytes:?}: {err}");
        }
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
                cases: 2000,
                failure_persistence: None,
                ..Config::default()
            },
            proptest::test_runner::TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
        );
        let frame = prop::collection::vec(any::<u8>(), 0..64).prop_map(|body| {
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend(body);
            bytes
        });
        let anything = prop::collection::vec(any::<u8>(), 0..80);
        runner
            .run(&prop_oneof![frame, anything], |bytes| {
                let mut reader = bytes.as_slice();
                for _ in 0..4 {
                    match receive::<FromWorker>(&mut reader) {
                        Ok(Received::Closed) => break,
                        Ok(Received::Message(_)) => {}
                        Err(e) => {
                            prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                            break;
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}
