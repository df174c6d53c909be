"""The protocol's codec: the bytes are those of wsandbox's own encoder
(``src/plugin/wire.rs``: ``the_encoding_is_documented_byte_for_byte``),
and whatever a hostile worker sends decodes or fails with ``WireError``,
never anything else."""

import random
import struct

import pytest

from wsandbox import Err, Ok
from wsandbox import _wire


def body(frame: bytes) -> bytes:
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    return frame[4:]


def test_messages_are_encoded_as_wsandbox_encodes_them() -> None:
    # Call { name: "f", args: [S32(-2), U64(300), String("é")] }: a Python
    # int goes as s64 (the worker fits it), so -2 is s64 here.
    assert body(_wire.call("f", [-2, 300, "é"])) == bytes(
        [1, 1, ord("f"), 3, 7, 3, 7, 0xD8, 0x04, 12, 2, 0xC3, 0xA9]
    )
    assert body(_wire.start(("json", "{}"), ["h"], None)) == bytes([0, 3, 0, 2, ord("{"), ord("}"), 1, 1, ord("h"), 0])
    assert body(_wire.host_returned(None, "x")) == bytes([3, 1, 1, ord("x")])
    assert body(_wire.handle(b"\x01\x02")) == bytes([2, 2, 1, 2])


def test_answers_are_decoded_as_wsandbox_encodes_them() -> None:
    assert _wire.decode_from_worker(bytes([0, 3]), 10) == ("hello", 3)
    assert _wire.decode_from_worker(bytes([3, 0, 3, 1, 2, 3]), 10) == ("handled", Ok(b"\x01\x02\x03"))
    assert _wire.decode_from_worker(bytes([3, 1, 2, ord("n"), ord("o")]), 10) == ("handled", Err("no"))
    # Returned([S32(-2), F64(0.5), Option(None)])
    returned = bytes([2, 3, 5, 3, 10]) + struct.pack("<d", 0.5) + bytes([19, 0])
    assert _wire.decode_from_worker(returned, 10) == ("returned", [-2, 0.5, None])


def test_values_are_bounded_as_they_are_decoded() -> None:
    many = bytes([2, 1, 14]) + bytes([200, 1]) + bytes([0, 1]) * 200
    with pytest.raises(_wire.WireError, match="too many values"):
        _wire.decode_from_worker(many, 100)
    assert _wire.decode_from_worker(many, 1000)[0] == "returned"
    deep = bytes([2, 1]) + bytes([14, 1]) * 100_000 + bytes([0, 1])
    with pytest.raises(_wire.WireError, match="nested too deep"):
        _wire.decode_from_worker(deep, 1 << 30)
    claims = bytes([2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0])
    with pytest.raises(_wire.WireError, match="longer than its frame"):
        _wire.decode_from_worker(claims, 1 << 30)


def test_any_bytes_decode_or_fail_cleanly() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        case = rng.randrange(8)
        data = bytes([case]) + bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
        try:
            _wire.decode_from_worker(data, 64)
        except _wire.WireError:
            pass


def test_values_that_cannot_cross_are_refused() -> None:
    with pytest.raises(_wire.WireError, match="does not fit in 64 bits"):
        _wire.call("f", [2**64])
    with pytest.raises(_wire.WireError, match="cannot cross"):
        _wire.call("f", [object()])
    nested: list = []
    for _ in range(200):
        nested = [nested]
    with pytest.raises(_wire.WireError, match="nested more than"):
        _wire.call("f", [nested])
