"""Property tests: random bytes and random frames never make the decoder raise anything but
ProtocolError, and every frame survives a round trip."""

from __future__ import annotations

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    MAIL_FOLDERS,
    Delete,
    DeleteMail,
    Edit,
    Encoding,
    Hello,
    Hide,
    ListReports,
    ListThreads,
    MarkMail,
    MoveMail,
    Ping,
    Post,
    ProtocolError,
    ReportMail,
    SendMail,
    Subscribe,
    Typing,
    Unsubscribe,
    decode_client,
    encode_client,
)

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

channels = st.builds(lambda k, n: f"{k}:{n}", st.sampled_from(["room", "mail", "feed"]), st.integers(1, 10**12))
refs = st.one_of(st.none(), st.integers(-(2**62), 2**62), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20))
# Valid texts: not blank, no lone surrogates, no NUL (PostgreSQL text cannot hold it).
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=200).filter(
    lambda s: s.strip() != ""
)
ids = st.integers(1, 2**62)
frames = st.one_of(
    st.builds(Hello, token=st.one_of(st.none(), st.text(alphabet="abcdefXYZ-_0123456789", min_size=1, max_size=60)), ref=refs),
    st.builds(Subscribe, channel=channels, since=st.one_of(st.none(), st.integers(0, 2**62)), ref=refs),
    st.builds(Unsubscribe, channel=channels, ref=refs),
    st.builds(Post, channel=channels, text=texts, client_id=st.one_of(st.none(), texts.filter(lambda s: len(s) <= 64)), ref=refs),
    st.builds(Edit, channel=channels, id=ids, text=texts, ref=refs),
    st.builds(Delete, channel=channels, id=ids, ref=refs),
    st.builds(Hide, channel=channels, id=ids, reason=st.one_of(st.just(""), texts.filter(lambda s: len(s) <= 500)), ref=refs),
    st.builds(Typing, channel=channels, ref=refs),
    st.builds(Ping, ref=refs),
    st.builds(
        SendMail, space=ids, to=st.lists(ids, min_size=1, max_size=50, unique=True).map(tuple), text=texts,
        subject=st.one_of(st.none(), texts), reply_to=st.one_of(st.none(), ids),
        client_id=st.one_of(st.none(), texts.filter(lambda s: len(s) <= 64)), ref=refs,
    ),
    st.builds(MarkMail, id=ids, read=st.booleans(), ref=refs),
    st.builds(MoveMail, id=ids, folder=st.sampled_from(MAIL_FOLDERS), ref=refs),
    st.builds(DeleteMail, id=ids, ref=refs),
    st.builds(ReportMail, id=ids, note=st.one_of(st.just(""), texts), ref=refs),
    st.builds(ListThreads, space=ids, folder=st.sampled_from(MAIL_FOLDERS), before=st.one_of(st.none(), ids),
              limit=st.integers(1, 100), ref=refs),
    st.builds(ListReports, space=ids, before=st.one_of(st.none(), ids), limit=st.integers(1, 100), ref=refs),
)


def _decodes_or_refuses(data, encoding):
    try:
        decode_client(data, encoding)
    except ProtocolError:
        pass


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes_msgpack(data):
    _decodes_or_refuses(data, Encoding.MSGPACK)


@FAST
@given(st.binary(max_size=2000))
def test_random_bytes_json(data):
    _decodes_or_refuses(data, Encoding.JSON)


@FAST
@given(st.text(max_size=2000))
def test_random_text_json(data):
    _decodes_or_refuses(data, Encoding.JSON)


# Values msgpack can pack: 64-bit integers, no lone surrogates.
safe_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | safe_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(safe_text, inner, max_size=4),
    max_leaves=20,
)
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from([
        "hello", "subscribe", "post", "edit", "delete", "hide", "typing", "ping", "x",
        "send_mail", "mark_mail", "move_mail", "report_mail", "mail_threads", "mail_reports",
    ])},
    optional={
        "channel": json_values | channels, "text": json_values | texts, "since": json_values,
        "id": json_values, "ref": json_values, "client_id": json_values, "token": json_values,
        "space": json_values, "to": json_values, "subject": json_values, "read": json_values,
        "folder": json_values, "limit": json_values, "before": json_values, "note": json_values,
    },
)


@FAST
@given(frame_like)
def test_frame_shaped_maps_with_wrong_types(m):
    import json

    _decodes_or_refuses(json.dumps(m), Encoding.JSON)
    _decodes_or_refuses(msgpack.packb(m), Encoding.MSGPACK)


@FAST
@given(frames, st.sampled_from(list(Encoding)))
def test_every_frame_round_trips(frame, encoding):
    assert decode_client(encode_client(frame, encoding), encoding) == frame
