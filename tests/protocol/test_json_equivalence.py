"""JSON frames are parsed and written by orjson, and must mean exactly what the standard
library made of them (protocol/codec.py): the same values accepted, the same refused."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.codec import _JSON_DECODER, _dumps_json, _dumps_json_bytes, _loads_json

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Any text, lone surrogates included (valid JSON escapes that orjson refuses).
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=30)
# Integers the wire can carry; beyond 64 bits orjson reads a float (refused where an integer
# belongs, as the integer itself is: tests/protocol/test_hostile_frames.py).
values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | any_text,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(any_text, inner, max_size=5),
    max_leaves=20,
)


def standard(data: str) -> tuple[str, object]:
    try:
        return "ok", _JSON_DECODER.decode(data)
    except (ValueError, RecursionError) as exc:
        return "refused", type(exc).__name__


def ours(data: str) -> tuple[str, object]:
    try:
        return "ok", _loads_json(data)
    except (ValueError, RecursionError) as exc:
        return "refused", type(exc).__name__


def huge(v: object) -> bool:
    """Holds an integer beyond 64 bits somewhere (which orjson reads as a float)."""
    if isinstance(v, dict):
        return any(huge(x) for x in v.values())
    if isinstance(v, list):
        return any(huge(x) for x in v)
    return isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**64


def same(a: object, b: object) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 and True are not the same)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)  # type: ignore[union-attr]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    return a == b


@FAST
@given(values, st.booleans())
def test_what_the_standard_library_reads_we_read_the_same(value, ascii_only):
    data = json.dumps(value, ensure_ascii=ascii_only)
    kind, got = ours(data)
    assert kind == "ok" and same(got, standard(data)[1])
    assert same(_loads_json(data.encode("utf-8", "surrogatepass")) if ascii_only else got, got)


@FAST
@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsn \\u\t\n', max_size=40))
def test_what_the_standard_library_refuses_we_refuse(data):
    mine, theirs = ours(data), standard(data)
    assert mine[0] == theirs[0]
    if mine[0] == "ok":
        assert same(mine[1], theirs[1]) or huge(theirs[1])


@FAST
@given(values)
def test_what_we_write_reads_back_as_what_the_standard_library_wrote(value):
    """Or both refuse it: a lone surrogate cannot be written as UTF-8 by either."""
    try:
        expected = json.loads(_dumps_json(value).encode())
    except UnicodeEncodeError:
        try:
            _dumps_json_bytes(value)
        except UnicodeEncodeError:
            return
        raise AssertionError("wrote what the standard library could not") from None
    assert same(json.loads(_dumps_json_bytes(value)), expected)


def test_integer_keys_are_written_as_strings_as_before():
    assert json.loads(_dumps_json_bytes({1: "a", "b": [2**64 - 1]})) == {"1": "a", "b": [2**64 - 1]}
    assert json.loads(_dumps_json_bytes({"big": 2**70})) == {"big": 2**70}  # the standard library's way
