"""Hostile frames, named one by one (issue 9, part 2): each is refused with ProtocolError and a
stable code — never another exception, never a hang, never an allocation out of proportion to
the frame's size. The random search for the same properties is test_fuzz.py (hypothesis) and
tests/fuzz/fuzz_decoder.py (atheris, coverage-guided)."""

from __future__ import annotations

import json
import struct
import time
import tracemalloc

import msgpack
import pytest

from protocol import Encoding, ErrorCode, Post, ProtocolError, Subscribe, decode_client, encode_client
from protocol.limits import DEFAULT_LIMITS

LIMIT = DEFAULT_LIMITS.max_frame_bytes


def refused(data: bytes | str, encoding: Encoding) -> ProtocolError:
    """Decode `data`, which must be refused; return the error. Checks, as it goes, that the
    decoder neither hangs nor allocates much more than the frame itself."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ProtocolError) as caught:
            decode_client(data, encoding)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Generous bounds: a decoder that hangs or trusts a declared length misses them by orders of
    # magnitude (a forged 4 GiB header would allocate 4 GiB).
    assert elapsed < 2.0, f"decoding took {elapsed:.2f} s"
    assert peak < 64 * max(len(data), 1024) + 1_000_000, f"decoding a {len(data)}-byte frame peaked at {peak} bytes"
    return caught.value


def msgpack_post(**fields: object) -> bytes:
    return msgpack.packb({"type": "post", "channel": "room:1", "text": "hi", **fields})


# -- nesting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [100, 1_000, (LIMIT - 60) // 2])
def test_deeply_nested_json_is_refused(depth):
    frame = '{"type":"post","channel":"room:1","text":' + "[" * depth + "]" * depth + "}"
    assert len(frame) <= LIMIT
    error = refused(frame, Encoding.JSON)
    assert error.code in (ErrorCode.INVALID_FIELD, ErrorCode.BAD_FRAME)


@pytest.mark.parametrize("depth", [100, 1_000, LIMIT - 40])
def test_deeply_nested_msgpack_is_refused(depth):
    head = msgpack.packb({"type": "post", "channel": "room:1"})[1:]  # the map's items, no header
    nested = b"\x91" * depth + b"\xc0"  # [[[...[nil]...]]]
    frame = b"\x83" + head + msgpack.packb("text") + nested
    assert len(frame) <= LIMIT
    error = refused(frame, Encoding.MSGPACK)
    assert error.code in (ErrorCode.INVALID_FIELD, ErrorCode.BAD_FRAME)


# -- declared lengths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        b"\xdb" + struct.pack(">I", 2**32 - 1),  # str 32 of 4 GiB
        b"\xc6" + struct.pack(">I", 2**32 - 1),  # bin 32 of 4 GiB
        b"\xdd" + struct.pack(">I", 2**32 - 1),  # array 32 of 4 G items
        b"\xdf" + struct.pack(">I", 2**32 - 1),  # map 32 of 4 G pairs
        b"\xc9" + struct.pack(">I", 2**32 - 1) + b"\x01",  # ext 32
    ],
)
def test_a_forged_huge_length_allocates_nothing(header):
    for frame in (header + b"x" * 16, b"\x81\xa4type" + header + b"x" * 16):
        assert refused(frame, Encoding.MSGPACK).code is ErrorCode.BAD_FRAME


def test_a_frame_over_the_limit_is_refused_before_parsing():
    big = json.dumps({"type": "post", "channel": "room:1", "text": "x" * LIMIT})
    assert refused(big, Encoding.JSON).code is ErrorCode.TOO_LARGE
    assert refused(msgpack_post(text="x" * LIMIT), Encoding.MSGPACK).code is ErrorCode.TOO_LARGE
    # Counted in bytes, not characters: 4-byte characters cannot smuggle 4x the limit in.
    emoji = json.dumps({"type": "post", "channel": "room:1", "text": "😀" * (LIMIT // 4)}, ensure_ascii=False)
    assert len(emoji) < LIMIT < len(emoji.encode())
    assert refused(emoji, Encoding.JSON).code is ErrorCode.TOO_LARGE


# -- text encodings ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"])
def test_invalid_utf8_is_refused_in_both_encodings(bad):
    json_frame = b'{"type":"post","channel":"room:1","text":"a' + bad + b'"}'
    assert refused(json_frame, Encoding.JSON).code is ErrorCode.BAD_FRAME
    # MessagePack str with invalid UTF-8 inside (raw=False decodes and must refuse).
    packed = msgpack_post(text="a")
    raw_text = b"\xa1a"
    forged = packed.replace(raw_text, bytes([0xA0 | (1 + len(bad))]) + b"a" + bad)
    assert forged != packed
    assert refused(forged, Encoding.MSGPACK).code is ErrorCode.BAD_FRAME


def test_a_lone_surrogate_escape_in_json_never_reaches_storage():
    # Valid JSON, but "\ud800" is no character: PostgreSQL's text could not store it.
    frame = '{"type":"post","channel":"room:1","text":"a\\ud800b"}'
    assert refused(frame, Encoding.JSON).code is ErrorCode.INVALID_FIELD


def test_nul_in_text_is_refused():
    assert refused('{"type":"post","channel":"room:1","text":"a\\u0000b"}', Encoding.JSON).code is ErrorCode.INVALID_FIELD
    assert refused(msgpack_post(text="a\x00b"), Encoding.MSGPACK).code is ErrorCode.INVALID_FIELD


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_are_refused(constant):
    frame = '{"type":"subscribe","channel":"room:1","since":' + constant + "}"
    assert refused(frame, Encoding.JSON).code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1.5, -0.0])
def test_a_float_where_an_integer_belongs_is_refused(value):
    frame = msgpack.packb({"type": "subscribe", "channel": "room:1", "since": value})
    assert refused(frame, Encoding.MSGPACK).code is ErrorCode.INVALID_FIELD
    if value == value and abs(value) != float("inf"):
        assert refused(json.dumps({"type": "subscribe", "channel": "room:1", "since": value}), Encoding.JSON).code is (
            ErrorCode.INVALID_FIELD
        )


@pytest.mark.parametrize("digits", [20, 400, 4_301, 10_000])
def test_huge_json_integers_are_refused(digits):
    # 2**63 and beyond cannot be a seq or an id (PostgreSQL bigint); past 4,300 digits CPython
    # refuses to convert at all (a ValueError the decoder must turn into BAD_FRAME).
    frame = '{"type":"subscribe","channel":"room:1","since":' + "9" * digits + "}"
    assert refused(frame, Encoding.JSON).code in (ErrorCode.INVALID_FIELD, ErrorCode.BAD_FRAME)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -1, -(2**63)])
def test_out_of_range_integers_are_refused(value):
    frame = msgpack.packb({"type": "subscribe", "channel": "room:1", "since": value})
    assert refused(frame, Encoding.MSGPACK).code is ErrorCode.INVALID_FIELD
    assert refused(json.dumps({"type": "subscribe", "channel": f"room:{value}"}), Encoding.JSON).code in (
        ErrorCode.INVALID_FIELD, ErrorCode.NOT_FOUND,
    )


def test_the_largest_bigint_still_decodes():
    frame = Subscribe("room:1", since=2**63 - 1)
    for encoding in Encoding:
        assert decode_client(encode_client(frame, encoding), encoding) == frame


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [[], [1, 2], "post", 42, None, True, {"type": None}, {"type": ["post"]}, {"TYPE": "post"}],
)
def test_anything_but_a_frame_object_is_refused(value):
    # {"type": ["post"]} once escaped as a TypeError (an unhashable type looked up in a dict).
    for encoding, data in ((Encoding.JSON, json.dumps(value)), (Encoding.MSGPACK, msgpack.packb(value))):
        assert refused(data, encoding).code in (ErrorCode.BAD_FRAME, ErrorCode.UNKNOWN_TYPE, ErrorCode.INVALID_FIELD)


def test_msgpack_oddities_are_refused():
    cases = [
        msgpack.packb({1: "post"}),  # a non-string key
        b"\x81\xa4type\xd6\xff\x00\x00\x00\x00",  # a timestamp extension where a string belongs
        b"\xc1",  # the one byte MessagePack never uses
        msgpack_post() + b"\x00",  # trailing bytes after the frame
        msgpack_post()[:-1],  # truncated
    ]
    for frame in cases:
        assert refused(frame, Encoding.MSGPACK).code in (ErrorCode.BAD_FRAME, ErrorCode.INVALID_FIELD), frame


def test_json_oddities_are_refused():
    cases = [
        '{"type":"post","channel":"room:1","text":"hi"} {"type":"post"}',  # two values
        "{'type':'post'}",  # not JSON
        '{"type":"post","channel":"room:1","text":"hi",}',  # trailing comma
        "\ufeff" + json.dumps({"type": "ping"}) + "\x00",  # NUL after the value
    ]
    for frame in cases:
        assert refused(frame, Encoding.JSON).code is ErrorCode.BAD_FRAME, frame


def test_a_duplicated_key_cannot_hide_a_second_value():
    # Parsers disagree on which duplicate wins; we keep the last, like the server's own JSON
    # parser: what is validated is what is used.
    frame = '{"type":"post","channel":"room:1","text":"' + "x" * 10 + '","text":"' + "y" * 5000 + '"}'
    assert refused(frame, Encoding.JSON).code is ErrorCode.TOO_LARGE
    decoded = decode_client('{"type":"post","channel":"room:1","text":"first","text":"second"}', Encoding.JSON)
    assert isinstance(decoded, Post) and decoded.text == "second"
