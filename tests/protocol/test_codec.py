"""The codecs, exact to the byte where it matters, and the decoder's refusals."""

from __future__ import annotations

import json

import msgpack
import pytest

from protocol import (
    DEFAULT_LIMITS,
    Delete,
    DeleteMail,
    Edit,
    Encoding,
    Error,
    ErrorCode,
    Event,
    GetMail,
    GetThread,
    Hello,
    Hide,
    InvitationNotice,
    Limits,
    ListModeration,
    ListRecipients,
    ListReports,
    ListThreads,
    MarkMail,
    MoveMail,
    Mute,
    Ok,
    Ping,
    Pong,
    Post,
    Presence,
    ProtocolError,
    RemoveMember,
    Report,
    ReportMail,
    ResolveReport,
    RoomNotice,
    SendMail,
    SetRole,
    Subscribe,
    Typing,
    TypingNotice,
    Unhide,
    Unmute,
    Unsubscribe,
    Welcome,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
    encode_server_item,
    join_batch,
)

CLIENT_FRAMES = [
    Hello(token="abc", ref=1),
    Hello(),
    Subscribe("room:1", since=0, ref="s1"),
    Subscribe("room:99"),
    Unsubscribe("room:3", ref=2),
    Post("room:5", "Bonjour 🌊", client_id="c-1", ref=3),
    Post("room:5", "no ref"),
    Post("room:9", "An entry", title="Week 1", links=("https://a.example/x",), ref=15),
    Post("room:9", "A comment", parent=12),
    Edit("room:5", 7, "fixed", ref=4),
    Delete("room:5", 7),
    Hide("room:5", 7, reason="unkind", ref=5),
    Typing("room:5"),
    Ping(ref=9),
    SendMail(3, (7, 8), "Bonjour 🌊", subject="Water", ref=10),
    SendMail(3, (7,), "Re", reply_to=12, client_id="m-1"),
    MarkMail(12, True, ref=11),
    MoveMail(12, "archive"),
    DeleteMail(12, ref=12),
    ReportMail(12, note="unkind", ref=13),
    GetMail(12),
    ListThreads(3, folder="sent", before=40, limit=50, ref=14),
    GetThread(3, 12),
    ListRecipients(3),
    ListReports(3, limit=5),
    Delete("room:5", 7, reason="a phone number", ref=15),
    Unhide("room:5", 7, reason="my mistake"),
    Report("room:5", 7, note="mean", ref=16),
    ResolveReport(4, "dismissed", note="a joke"),
    ListModeration(),
    ListModeration(3, status="open", before=9, limit=10),
    Mute(3, 8, "pupils_corner", 1440, reason="unkind", ref=17),
    Unmute(3, 8, "all"),
    Subscribe("moderation:0", since=4),
    SetRole(3, 8, "pupil_admin", ref=18),
    RemoveMember(3, 8),
]

SERVER_FRAMES = [
    Welcome(user={"id": 1, "name": "Ana"}, spaces=[], limits={"max_text_chars": 4000}, ref=1),
    Ok(ref=3, data={"channel": "room:5", "seq": 12, "id": 40, "duplicate": False}),
    Ok(),
    Error("forbidden", "no", ref="x", data={"channel": "room:3"}),
    Error("bad_frame", "broken"),
    Event("room:5", 12, "message.posted", {"message": {"id": 40, "text": "hi"}}),
    TypingNotice("room:5", {"id": 2}),
    Presence("room:5", members=[{"id": 1}], count=1),
    Presence("room:5", joined=[{"id": 1}], left=[], count=4),
    Presence("room:5", count=250),
    RoomNotice("room:5", {"id": 5, "channel": "room:5", "name": "Samples", "area": "activities", "kind": "room",
                          "archived": True}),
    InvitationNotice({"id": 3, "space": {"id": 1, "name": "Water"}, "role": "teacher_member", "status": "pending"}),
    Pong(ref=9),
]


@pytest.mark.parametrize("encoding", list(Encoding))
@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: f.type)
def test_client_frames_round_trip(frame, encoding):
    assert decode_client(encode_client(frame, encoding), encoding) == frame


@pytest.mark.parametrize("encoding", list(Encoding))
def test_server_messages_round_trip(encoding):
    assert decode_server(encode_server(SERVER_FRAMES, encoding), encoding) == SERVER_FRAMES


def test_json_wire_form_is_documented_shape():
    assert encode_client(Post("room:5", "hi", ref=3), Encoding.JSON) == '{"type":"post","channel":"room:5","text":"hi","ref":3}'
    assert encode_server([Ok(ref=3, data={"seq": 1})], Encoding.JSON) == b'[{"type":"ok","seq":1,"ref":3}]'
    assert encode_server([RoomNotice("room:5", {"id": 5, "archived": True})], Encoding.JSON) == (
        b'[{"type":"room","channel":"room:5","room":{"id":5,"archived":true}}]')
    assert encode_server([InvitationNotice({"id": 3, "status": "pending"})], Encoding.JSON) == (
        b'[{"type":"invitation","invitation":{"id":3,"status":"pending"}}]')


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 65535, 65536, 70000])
def test_msgpack_batch_header_agrees_with_msgpack_package(n):
    items = [encode_server_item(Pong(ref=i), Encoding.MSGPACK) for i in range(n)]
    joined = join_batch(items, Encoding.MSGPACK)
    assert joined == msgpack.packb([{"type": "pong", "ref": i} for i in range(n)])


def test_msgpack_items_agree_with_msgpack_package():
    event = Event("room:5", 12, "message.posted", {"message": {"id": 40, "text": "é"}})
    item = encode_server_item(event, Encoding.MSGPACK)
    assert msgpack.unpackb(item) == {"type": "event", "channel": "room:5", "seq": 12, "kind": "message.posted",
                                     "message": {"id": 40, "text": "é"}}


def test_json_batch_is_a_json_array():
    items = [encode_server_item(Pong(ref=i), Encoding.JSON) for i in range(3)]
    assert json.loads(join_batch(items, Encoding.JSON)) == [{"type": "pong", "ref": i} for i in range(3)]


def refused(data, encoding=Encoding.JSON, limits=DEFAULT_LIMITS) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_client(data, encoding, limits)
    return info.value


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("{not json", ErrorCode.BAD_FRAME),
        ("", ErrorCode.BAD_FRAME),
        ("[1,2]", ErrorCode.BAD_FRAME),
        ('"post"', ErrorCode.BAD_FRAME),
        ('{"channel":"room:1"}', ErrorCode.BAD_FRAME),
        ('{"type":7}', ErrorCode.BAD_FRAME),
        ('{"type":"launch"}', ErrorCode.UNKNOWN_TYPE),
        ('{"type":"post","channel":"room:1"}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"room:1","text":5}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"room:1","text":"   "}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"chat","text":"x"}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"room:0","text":"x"}', ErrorCode.INVALID_FIELD),
        ('{"type":"subscribe","channel":"moderation:00"}', ErrorCode.INVALID_FIELD),
        ('{"type":"resolve_report","id":1,"outcome":"deleted"}', ErrorCode.INVALID_FIELD),
        ('{"type":"reports","status":"maybe"}', ErrorCode.INVALID_FIELD),
        ('{"type":"mute","space":1,"user_id":2,"scope":"chat","minutes":0}', ErrorCode.INVALID_FIELD),
        ('{"type":"mute","space":1,"user_id":2,"scope":"everywhere","minutes":5}', ErrorCode.INVALID_FIELD),
        ('{"type":"report","channel":"room:1"}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"room:1 OR 1=1","text":"x"}', ErrorCode.INVALID_FIELD),
        ('{"type":"subscribe","channel":"room:1","since":-1}', ErrorCode.INVALID_FIELD),
        ('{"type":"subscribe","channel":"room:1","since":true}', ErrorCode.INVALID_FIELD),
        ('{"type":"subscribe","channel":"room:1","since":1.5}', ErrorCode.INVALID_FIELD),
        ('{"type":"subscribe","channel":"room:1","since":99999999999999999999999}', ErrorCode.INVALID_FIELD),
        ('{"type":"subscribe","channel":"room:1","since":NaN}', ErrorCode.BAD_FRAME),
        ('{"type":"subscribe","channel":"room:1","since":Infinity}', ErrorCode.BAD_FRAME),
        ('{"type":"edit","channel":"room:1","id":0,"text":"x"}', ErrorCode.INVALID_FIELD),
        ('{"type":"ping","ref":[1]}', ErrorCode.INVALID_FIELD),
        ('{"type":"ping","ref":true}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"room:1","text":"\\ud800"}', ErrorCode.INVALID_FIELD),
        ('{"type":"post","channel":"room:1","text":"nul \\u0000 byte"}', ErrorCode.INVALID_FIELD),
        (b"\xff\xfe\x00", ErrorCode.BAD_FRAME),
        ("[" * 5000, ErrorCode.BAD_FRAME),
    ],
)
def test_bad_json_is_refused_with_a_stable_code(data, code):
    assert refused(data).code is code


def test_oversized_frame_is_refused_before_parsing():
    limits = Limits(max_frame_bytes=100)
    err = refused('{"type":"post","channel":"room:1","text":"' + "x" * 200 + '"}', limits=limits)
    assert err.code is ErrorCode.TOO_LARGE and "100" in err.message


def test_text_over_limit_is_too_large():
    limits = Limits(max_text_chars=10)
    err = refused('{"type":"post","channel":"room:1","text":"' + "x" * 11 + '","ref":4}', limits=limits)
    assert err.code is ErrorCode.TOO_LARGE and err.ref == 4


def test_invalid_field_error_keeps_the_ref():
    err = refused('{"type":"post","channel":"room:1","text":5,"ref":"abc"}')
    assert err.ref == "abc"


def test_unknown_fields_are_ignored():
    frame = decode_client('{"type":"ping","ref":1,"future_field":{"x":1}}', Encoding.JSON)
    assert frame == Ping(ref=1)


@pytest.mark.parametrize(
    "data",
    [
        b"\xdb\xff\xff\xff\xff",  # str32 declaring 4 GiB
        b"\xdd\xff\xff\xff\xff",  # array32 declaring 4 billion items
        b"\xdf\xff\xff\xff\xff",  # map32 declaring 4 billion pairs
        b"\x91" * 10000,  # nesting
        b"\xc1",  # never-used byte
        msgpack.packb({1: 2}),  # non-string keys
        msgpack.packb({"type": "post", "channel": "room:1", "text": b"bytes not str"}),
        msgpack.packb({"type": "ping"}) + b"\x00",  # trailing bytes
        msgpack.packb({"type": "subscribe", "channel": "room:1", "since": float("nan")}),
        msgpack.packb({"type": "subscribe", "channel": "room:1", "since": 2**64 - 1}),
        msgpack.packb(msgpack.ExtType(1, b"x")),
    ],
)
def test_bad_msgpack_is_refused(data):
    assert refused(data, Encoding.MSGPACK).code in (ErrorCode.BAD_FRAME, ErrorCode.INVALID_FIELD)


def test_text_frame_on_msgpack_connection_is_refused():
    assert refused('{"type":"ping"}', Encoding.MSGPACK).code is ErrorCode.BAD_FRAME


def test_decode_server_refuses_non_arrays():
    for bad in ('{"type":"ok"}', "[1]", "nope", '[{"type":"mystery"}]', '[{"type":"event"}]'):
        with pytest.raises(ProtocolError):
            decode_server(bad, Encoding.JSON)
