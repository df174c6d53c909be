"""The plugin channel's protocol (version 3), as wsandbox's
``src/plugin/wire.rs`` defines it: frames of a 4-byte big-endian length
and one message in postcard (varints, zigzag for signed integers, floats
as little-endian bits, strings and byte lists as a length and their bytes,
an enum's case as its index, an option as a 0/1 byte).

Only what a host sends and reads is here: messages to the worker are
encoded, messages from it decoded. A value from Python is sent in the
plainest form that fits it (an ``int`` as ``s64``, a ``dict`` as a record,
...): the worker fits it to the type the plugin expects.
"""

from __future__ import annotations

import struct
from typing import Any, List, Optional, Tuple

from ._values import Err, Ok, Variant

PROTOCOL = 3
MAX_FRAME = 256 << 20
MAX_DEPTH = 100

# The cases of WireVal, in the protocol's order.
(BOOL, S8, U8, S16, U16, S32, U32, S64, U64, F32, F64, CHAR, STRING, BYTES,
 LIST, RECORD, TUPLE, VARIANT, ENUM, OPTION, RESULT, FLAGS) = range(22)

# The cases of the messages.
TO_START, TO_CALL, TO_HANDLE, TO_HOST_RETURNED = range(4)
FROM_HELLO, FROM_READY, FROM_RETURNED, FROM_HANDLED, FROM_FAILED, FROM_HOST_CALL = range(6)
FAILURES = ("call", "trap", "fuel")


class WireError(Exception):
    """Bytes that are not a message of this protocol, or a value that
    cannot cross."""


# -- encoding -------------------------------------------------------------


def _varint(out: bytearray, n: int) -> None:
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _str(out: bytearray, s: str) -> None:
    data = s.encode("utf-8")
    _varint(out, len(data))
    out += data


def _bytes(out: bytearray, data: bytes) -> None:
    _varint(out, len(data))
    out += data


def encode_value(out: bytearray, value: Any, depth: int = 0) -> None:
    """Appends ``value`` as a WireVal, in the plainest form that fits."""
    if depth > MAX_DEPTH:
        raise WireError(f"a value nested more than {MAX_DEPTH} deep")
    if isinstance(value, bool):
        out += bytes((BOOL, 1 if value else 0))
    elif isinstance(value, int):
        if -(1 << 63) <= value < (1 << 63):
            out.append(S64)
            _varint(out, _zigzag(value) & ((1 << 64) - 1))
        elif 0 <= value < (1 << 64):
            out.append(U64)
            _varint(out, value)
        else:
            raise WireError(f"{value} does not fit in 64 bits")
    elif isinstance(value, float):
        out.append(F64)
        out += struct.pack("<d", value)
    elif isinstance(value, str):
        out.append(STRING)
        _str(out, value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        out.append(BYTES)
        _bytes(out, bytes(value))
    elif value is None:
        out += bytes((OPTION, 0))
    elif isinstance(value, Ok):
        out += bytes((RESULT, 0, 1))
        encode_value(out, value.value, depth + 1)
    elif isinstance(value, Err):
        out += bytes((RESULT, 1, 1))
        encode_value(out, value.value, depth + 1)
    elif isinstance(value, Variant):
        out.append(VARIANT)
        _str(out, value.case)
        if value.value is None:
            out.append(0)
        else:
            out.append(1)
            encode_value(out, value.value, depth + 1)
    elif isinstance(value, dict):
        out.append(RECORD)
        _varint(out, len(value))
        for name, field in value.items():
            if not isinstance(name, str):
                raise WireError(f"a record's field names are strings, not {name!r}")
            _str(out, name)
            encode_value(out, field, depth + 1)
    elif isinstance(value, (set, frozenset)):
        out.append(FLAGS)
        _varint(out, len(value))
        for name in sorted(value):
            if not isinstance(name, str):
                raise WireError(f"flags are strings, not {name!r}")
            _str(out, name)
    elif isinstance(value, tuple):
        out.append(TUPLE)
        _varint(out, len(value))
        for item in value:
            encode_value(out, item, depth + 1)
    elif isinstance(value, list):
        out.append(LIST)
        _varint(out, len(value))
        for item in value:
            encode_value(out, item, depth + 1)
    else:
        raise WireError(f"a {type(value).__name__} cannot cross to a plugin")


def _values(out: bytearray, values: List[Any]) -> None:
    _varint(out, len(values))
    for value in values:
        encode_value(out, value)


def frame(body: bytearray) -> bytes:
    if len(body) > MAX_FRAME:
        raise WireError(f"a message of {len(body)} bytes is too large")
    return struct.pack(">I", len(body)) + bytes(body)


def start(policy: Tuple[str, str], imports: List[str], module: Optional[bytes]) -> bytes:
    """The host's first message: ``policy`` is ``("json", text)`` or
    ``("file", path)``."""
    out = bytearray((TO_START,))
    _varint(out, PROTOCOL)
    kind, text = policy
    out.append(0 if kind == "json" else 1)
    _str(out, text)
    _varint(out, len(imports))
    for name in imports:
        _str(out, name)
    if module is None:
        out.append(0)
    else:
        out.append(1)
        _bytes(out, module)
    return frame(out)


def call(name: str, args: List[Any]) -> bytes:
    out = bytearray((TO_CALL,))
    _str(out, name)
    _values(out, args)
    return frame(out)


def handle(data: bytes) -> bytes:
    out = bytearray((TO_HANDLE,))
    _bytes(out, data)
    return frame(out)


def host_returned(results: Optional[List[Any]], error: Optional[str]) -> bytes:
    out = bytearray((TO_HOST_RETURNED,))
    if error is None:
        out.append(0)
        _values(out, results or [])
    else:
        out.append(1)
        _str(out, error)
    return frame(out)


# -- decoding -------------------------------------------------------------


class Reader:
    """A frame's body, read front to back; every value counted against
    ``budget`` and nested at most ``MAX_DEPTH`` deep."""

    def __init__(self, body: bytes, budget: int):
        self.body = memoryview(body)
        self.at = 0
        self.budget = budget

    def byte(self) -> int:
        if self.at >= len(self.body):
            raise WireError("not a message of this protocol: it ends early")
        b = self.body[self.at]
        self.at += 1
        return b

    def take(self, n: int) -> bytes:
        if n > len(self.body) - self.at:
            raise WireError("not a message of this protocol: it ends early")
        data = bytes(self.body[self.at:self.at + n])
        self.at += n
        return data

    def varint(self, bits: int = 64) -> int:
        n, shift = 0, 0
        while True:
            b = self.byte()
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift >= bits + 7:
                raise WireError("not a message of this protocol: a varint too long")
        if n >> bits:
            raise WireError("not a message of this protocol: a varint too large")
        return n

    def signed(self, bits: int) -> int:
        n = self.varint(bits)
        return (n >> 1) ^ -(n & 1)

    def string(self) -> str:
        try:
            return self.take(self.varint(32)).decode("utf-8")
        except UnicodeDecodeError as e:
            raise WireError(f"not a message of this protocol: {e}") from None

    def bytes_(self) -> bytes:
        return self.take(self.varint(32))

    def flag(self) -> bool:
        b = self.byte()
        if b > 1:
            raise WireError(f"not a message of this protocol: a bool or option of {b}")
        return b == 1

    def count(self) -> int:
        """A list's length: never more than the bytes left could hold."""
        n = self.varint(32)
        if n > len(self.body) - self.at:
            raise WireError("not a message of this protocol: a list longer than its frame")
        return n

    def value(self, depth: int = 0) -> Any:
        if self.budget <= 0:
            raise WireError("a frame of too many values")
        if depth >= MAX_DEPTH:
            raise WireError(f"a frame of values nested too deep (at most {MAX_DEPTH})")
        self.budget -= 1
        case = self.varint(32)
        if case == BOOL:
            return self.flag()
        if case == S8:
            return struct.unpack("<b", self.take(1))[0]
        if case == U8:
            return self.byte()
        if case in (S16, S32, S64):
            return self.signed({S16: 16, S32: 32, S64: 64}[case])
        if case in (U16, U32, U64):
            return self.varint({U16: 16, U32: 32, U64: 64}[case])
        if case == F32:
            return struct.unpack("<f", self.take(4))[0]
        if case == F64:
            return struct.unpack("<d", self.take(8))[0]
        if case in (CHAR, STRING, ENUM):
            return self.string()
        if case == BYTES:
            return self.bytes_()
        if case in (LIST, TUPLE):
            items = [self.value(depth + 1) for _ in range(self.count())]
            return items if case == LIST else tuple(items)
        if case == RECORD:
            fields = {}
            for _ in range(self.count()):
                name = self.string()
                fields[name] = self.value(depth + 1)
            return fields
        if case == VARIANT:
            name = self.string()
            payload = self.value(depth + 1) if self.flag() else None
            return Variant(name, payload)
        if case == OPTION:
            return self.value(depth + 1) if self.flag() else None
        if case == RESULT:
            ok = self.byte()
            if ok > 1:
                raise WireError(f"not a message of this protocol: a result of {ok}")
            payload = self.value(depth + 1) if self.flag() else None
            return Ok(payload) if ok == 0 else Err(payload)
        if case == FLAGS:
            return {self.string() for _ in range(self.count())}
        raise WireError(f"not a message of this protocol: a value of case {case}")

    def values(self) -> List[Any]:
        return [self.value() for _ in range(self.count())]

    def end(self) -> None:
        if self.at != len(self.body):
            raise WireError(
                f"not a message of this protocol: {len(self.body) - self.at} bytes after its end"
            )


def decode_from_worker(body: bytes, budget: int) -> Tuple[str, Any]:
    """A message from the worker: its kind and its content."""
    r = Reader(body, budget)
    case = r.varint(32)
    if case == FROM_HELLO:
        message: Tuple[str, Any] = ("hello", r.varint(32))
    elif case == FROM_READY:
        message = ("ready", [(r.string(), r.string()) for _ in range(r.count())])
    elif case == FROM_RETURNED:
        message = ("returned", r.values())
    elif case == FROM_HANDLED:
        message = ("handled", Ok(r.bytes_()) if r.byte() == 0 else Err(r.string()))
    elif case == FROM_FAILED:
        kind = r.varint(32)
        if kind >= len(FAILURES):
            raise WireError(f"not a message of this protocol: a failure of kind {kind}")
        message = ("failed", (FAILURES[kind], r.string(), r.flag()))
    elif case == FROM_HOST_CALL:
        message = ("host_call", (r.string(), r.values()))
    else:
        raise WireError(f"not a message of this protocol: a message of case {case}")
    r.end()
    return message


def json_hello(body: bytes) -> Optional[int]:
    """The version in a JSON hello of protocol 2 or earlier, if ``body`` is one."""
    import json

    try:
        version = json.loads(body)["hello"]["protocol"]
    except (ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, int) else None

