"""Every answer a client can get is in docs/protocol.md's tables (issue 22, point 12): the less
obvious ones, sent for real, each answering the code the docs give it ("Every request, and what
it may answer", the error codes table, the sections of the frames)."""

from __future__ import annotations

import json

import pytest

from protocol import (
    Edit,
    Encoding,
    Error,
    Hello,
    Hide,
    MarkMail,
    Ok,
    Ping,
    Pong,
    Post,
    SendMail,
    Subscribe,
    Typing,
)
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import RunningServer
from tests.client import Client
from tests.conftest import login


async def test_editing_a_message_a_moderator_hid_is_forbidden(world, connect):
    pupil, admin = await connect(world.users["pupil_member"]), await connect(world.users["teacher_admin"])
    corner = world.channel(Area.PUPILS_CORNER)
    posted = await pupil.ok(Post(corner, "something unkind"))
    await admin.ok(Hide(corner, posted.data["id"], "unkind"))
    refused = await pupil.error(Edit(corner, posted.data["id"], "something kind"))
    assert (refused.code, refused.message) == ("forbidden", "a hidden message cannot be edited")


async def test_a_client_id_over_64_characters_is_too_large(world, connect):
    pupil = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    assert (await pupil.error(Post(chat, "hello", client_id="c" * 65))).code == "too_large"
    assert isinstance(await pupil.request(Post(chat, "hello", client_id="c" * 64)), Ok)


async def test_a_ref_over_64_characters_is_invalid_and_the_error_has_no_ref(world, connect):
    pupil = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    await pupil.send_raw(json.dumps({"type": "post", "channel": chat, "text": "hello", "ref": "r" * 65}))
    refused = await pupil.next_frame(Error)
    assert refused.code == "invalid_field" and refused.ref is None and "ref" in refused.message
    await pupil.send_raw(json.dumps({"type": "ping", "ref": "r" * 64}))
    assert (await pupil.next_frame(Pong)).ref == "r" * 64


@pytest.mark.parametrize("channel", ["chat", "room:0", "room:-1", "Room:5", "room:5x", "room: 5"])
async def test_a_channel_not_like_room_42_is_invalid(channel, world, connect):
    pupil = await connect(world.users["pupil_member"])
    refused = await pupil.error(Subscribe(channel))
    assert (refused.code, refused.message) == ("invalid_field", "field 'channel' must look like 'room:42'")


async def test_a_channel_of_no_known_kind_is_not_found(world, connect):
    pupil = await connect(world.users["pupil_member"])
    assert (await pupil.error(Subscribe("chat:5"))).code == "not_found"


async def test_typing_without_the_right_to_post_is_forbidden(world, connect):
    """A teacher member reads the pupils' corner and may not post there: nor type."""
    teacher = await connect(world.users["teacher_member"])
    corner = world.channel(Area.PUPILS_CORNER)
    await teacher.ok(Subscribe(corner))
    refused = await teacher.error(Typing(corner))
    assert (refused.code, refused.message) == ("forbidden", "your role may not post in the pupils' corner")


async def test_typing_outside_a_room_or_unsubscribed(world, connect):
    pupil = await connect(world.users["pupil_member"])
    assert (await pupil.error(Typing(world.channel(Area.CHAT)))).code == "not_subscribed"
    [space] = pupil.welcome.spaces
    mailbox = space["mailbox"]["channel"]
    await pupil.ok(Subscribe(mailbox))
    refused = await pupil.error(Typing(mailbox))
    assert (refused.code, refused.message) == ("invalid_field", "typing notices are for rooms")


async def test_a_binary_frame_on_a_json_socket_is_read_as_utf8_json(world, connect):
    pupil = await connect(world.users["pupil_member"])
    await pupil.send_raw(b'{"type": "ping", "ref": "binary"}')
    assert (await pupil.next_frame(Pong)).ref == "binary"
    await pupil.send_raw(b"\xff\xfe not utf-8")
    assert (await pupil.next_frame(Error)).code == "bad_frame"
    assert isinstance(await pupil.request(Ping()), Pong)  # the socket lives on


async def test_a_text_frame_on_a_msgpack_socket_is_a_bad_frame(world, connect):
    pupil = await connect(world.users["pupil_member"], Encoding.MSGPACK)
    await pupil.send_raw('{"type": "ping"}')
    assert (await pupil.next_frame(Error)).code == "bad_frame"
    assert isinstance(await pupil.request(Ping()), Pong)


async def test_a_token_over_200_characters_is_refused_like_any_bad_token(server):
    """protocol.md, error codes: `unauthenticated`, and the socket closes with 4001 — the same
    answer as HTTP's 401 for it (refused before any lookup)."""
    from protocol import CloseCode

    for token in ("t" * 201, "t" * 200):
        client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
        try:
            assert (await client.error(Hello(token=token))).code == "unauthenticated"
            assert await client.closed() == CloseCode.AUTH_FAILED
        finally:
            await client.close()


async def test_more_than_100_pupils_at_once_is_too_large_and_creates_nobody(world, http, pool):
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    before = await pool.fetchval("SELECT count(*) FROM members WHERE space_id = $1", world.space_id)
    r = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=admin,
                        json={"pupils": [f"Pupil {i}" for i in range(101)]})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == {"code": "too_large", "message": "at most 100 pupils at a time"}
    assert await pool.fetchval("SELECT count(*) FROM members WHERE space_id = $1", world.space_id) == before


async def test_a_mute_reason_over_500_characters_is_too_large_over_http_too(world, http):
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    mute = {"user_id": world.users["pupil_member"].id, "scope": "chat", "minutes": 5, "reason": "r" * 501}
    r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin, json=mute)
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")


async def test_filing_mail_takes_from_the_post_budget(database_url, world, http):
    server = RunningServer(Settings(database_url=database_url, port=0, log_level="warning", post_rate=0.01, post_burst=1))
    await server.start()
    try:
        teacher = await Client.connect(f"ws://127.0.0.1:{server.port}/ws",
                                       await login(http, world.users["teacher_admin"].username))
        pupil = await Client.connect(f"ws://127.0.0.1:{server.port}/ws",
                                     await login(http, world.users["pupil_member"].username))
        sent = await teacher.ok(SendMail(world.space_id, (world.users["pupil_member"].id,), "Read me", subject="Hi"))
        assert isinstance(await pupil.request(MarkMail(sent.data["id"], True)), Ok)
        refused = await pupil.error(MarkMail(sent.data["id"], False))
        assert refused.code == "rate_limited" and refused.data["retry_after_ms"] > 0
        for c in (teacher, pupil):
            await c.close()
    finally:
        await server.stop()
