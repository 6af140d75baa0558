"""Bad input over a real socket: each gets an error frame with a stable code, the connection
stays usable, nothing stored is harmed; an abusive peer is closed with a documented code."""

from __future__ import annotations

import asyncio
import json

import msgpack
import pytest
import websockets

from protocol import CloseCode, Encoding, Error, Ok, Ping, Pong, Post, Subscribe
from protocol.limits import DEFAULT_LIMITS
from realtime.policy import Area
from tests.client import Client


async def next_error(client: Client) -> Error:
    return await client.next_frame(Error)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{oops", "bad_frame"),
        ('{"type":"fly"}', "unknown_type"),
        ('{"type":"post","channel":"room:1","text":42}', "invalid_field"),
        ('{"type":"subscribe","channel":"room:1","since":"yesterday"}', "invalid_field"),
        ('{"type":"post","channel":"room:1","text":"' + "x" * 5000 + '"}', "too_large"),
        ("x" * (DEFAULT_LIMITS.max_frame_bytes + 1), "too_large"),
        ('{"type":["post"]}', "bad_frame"),  # once a TypeError that ended the connection
        ('{"type":{"a":1}}', "bad_frame"),
        ('{"type":"subscribe","channel":"room:1","since":NaN}', "bad_frame"),
        ('{"type":"subscribe","channel":"room:1","since":' + "9" * 5000 + "}", "bad_frame"),
        ('{"type":"post","channel":"room:1","text":' + "[" * 5000 + "]" * 5000 + "}", "bad_frame"),
    ],
)
async def test_bad_frames_get_an_error_and_the_connection_lives_on(raw, code, world, connect):
    client = await connect(world.users["pupil_member"])
    await client.send_raw(raw)
    err = await next_error(client)
    assert err.code == code and err.message
    assert isinstance(await client.request(Ping()), Pong)
    chat = world.channel(Area.CHAT)
    ok = await client.ok(Post(chat, "still here"))
    assert ok.data["seq"] >= 1


async def test_a_decoder_bug_answers_internal_and_the_socket_lives_on(world, connect, monkeypatch, caplog):
    """Defence in depth: should the decoder ever raise something other than ProtocolError (it
    once did, a TypeError for a list as `type`), the peer gets `internal`, the connection stays
    usable, and the log names the bug without quoting the frame (which may hold a token)."""
    import realtime.ws.connection

    real = realtime.ws.connection.decode_client

    def buggy(data, encoding, limits):
        if "trip-the-bug" in (data if isinstance(data, str) else data.decode(errors="replace")):
            raise KeyError("secret-looking-bit")
        return real(data, encoding, limits)

    monkeypatch.setattr(realtime.ws.connection, "decode_client", buggy)
    client = await connect(world.users["pupil_member"])
    with caplog.at_level("ERROR", logger="twinhub.connection"):
        await client.send_raw('{"type":"ping","ref":"trip-the-bug"}')
        err = await next_error(client)
    assert err.code == "internal" and err.message
    assert isinstance(await client.request(Ping()), Pong)
    assert any("KeyError" in r.getMessage() for r in caplog.records)
    assert not any("secret-looking-bit" in r.getMessage() or "trip-the-bug" in r.getMessage() for r in caplog.records)


async def test_bad_msgpack_frames(world, connect):
    client = await connect(world.users["pupil_member"], Encoding.MSGPACK)
    for raw, code in [
        (b"\xc1", "bad_frame"),
        (b"\xdb\xff\xff\xff\xff", "bad_frame"),
        (msgpack.packb({"type": "post", "channel": "room:1", "text": ["x"]}), "invalid_field"),
        ('{"type":"ping"}', "bad_frame"),  # a text frame on a MessagePack connection
    ]:
        await client.send_raw(raw)
        assert (await next_error(client)).code == code
    assert isinstance(await client.request(Ping()), Pong)


async def test_frame_over_the_transport_limit_closes_with_1009(world, connect, server):
    client = await connect(world.users["pupil_member"])
    await client.send_raw("x" * (server.settings.limits.max_transport_bytes + 1))
    assert await client.closed() == CloseCode.MESSAGE_TOO_BIG


async def test_unknown_and_foreign_channels_are_not_found(world, make_world, connect):
    client = await connect(world.users["teacher_admin"])
    other = await make_world()
    for channel in ("room:999999999", other.channel(Area.CHAT)):
        for frame in (Subscribe(channel), Post(channel, "hello?")):
            err = await client.error(frame)
            assert err.code == "not_found"


async def test_requests_before_hello_are_refused(server, world):
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
    try:
        err = await client.error(Subscribe(world.channel(Area.CHAT)))
        assert err.code == "unauthenticated"
        assert isinstance(await client.request(Ping()), Pong)
    finally:
        await client.close()


async def test_forged_token_closes_with_4001(server):
    from protocol import Hello

    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
    err = await client.error(Hello(token="forged-token-that-was-never-issued"))
    assert err.code == "unauthenticated"
    assert await client.closed() == CloseCode.AUTH_FAILED


async def test_no_hello_in_time_closes_with_4001(server):
    from dataclasses import replace

    server.app.state.ws_endpoint.settings = replace(server.settings, auth_timeout=0.3)
    try:
        client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
        assert await client.closed(timeout=3) == CloseCode.AUTH_FAILED
    finally:
        server.app.state.ws_endpoint.settings = server.settings


async def test_second_hello_is_refused(world, connect):
    from protocol import Hello

    client = await connect(world.users["pupil_member"])
    err = await client.error(Hello(token="whatever"))
    assert err.code == "already_authenticated"


async def test_flood_of_bad_frames_closes_as_abusive(world, connect):
    client = await connect(world.users["pupil_member"])
    for _ in range(60):
        await client.send_raw("{")
    assert await client.closed() == CloseCode.ABUSIVE


async def test_unsupported_subprotocol_is_refused(server):
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(f"ws://127.0.0.1:{server.port}/ws", subprotocols=["chat.v9"])


async def test_no_subprotocol_means_json(server, world, http):
    from tests.conftest import login

    token = await login(http, world.users["pupil_member"].username)
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        await ws.send(json.dumps({"type": "hello", "token": token, "ref": 1}))
        [welcome] = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome" and welcome["ref"] == 1


async def test_posting_too_fast_is_rate_limited(database_url, world, http):
    from realtime.config import Settings
    from realtime.run.server import RunningServer
    from tests.conftest import login

    slow = RunningServer(Settings(database_url=database_url, port=0, post_rate=1.0, post_burst=3, log_level="warning"))
    await slow.start()
    try:
        token = await login(http, world.users["pupil_member"].username)
        client = await Client.connect(f"ws://127.0.0.1:{slow.port}/ws", token)
        chat = world.channel(Area.CHAT)
        replies = [await client.request(Post(chat, f"spam {i}")) for i in range(5)]
        assert [isinstance(r, Ok) for r in replies] == [True, True, True, False, False]
        assert replies[3].code == "rate_limited" and replies[3].data["retry_after_ms"] > 0
        await client.close()
    finally:
        await slow.stop()


async def test_sql_looking_text_is_just_text(world, connect):
    client = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    nasty = "Robert'); DROP TABLE messages;-- <script>alert(1)</script>"
    await client.ok(Post(chat, nasty, client_id="'; DELETE FROM users; --"))
    reader = await connect(world.users["teacher_admin"])
    await reader.ok(Subscribe(chat, since=0))
    [event] = await reader.wait_events(chat, 1)
    assert event.data["message"]["text"] == nasty


async def test_a_hello_sent_in_time_is_not_cut_off_while_it_is_checked(server, world, http):
    """A reconnect storm queues hellos for the database: the deadline is for sending hello."""
    from dataclasses import replace

    from protocol import Hello, Welcome
    from tests.conftest import login

    token = await login(http, world.users["pupil_member"].username)
    auth = server.app.state.services.auth
    real_user_for = auth.user_for

    async def slow_user_for(token):
        await asyncio.sleep(0.6)  # a busy database
        return await real_user_for(token)

    endpoint = server.app.state.ws_endpoint
    endpoint.settings = replace(server.settings, auth_timeout=0.3)
    auth.user_for = slow_user_for
    try:
        client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
        welcome = await client.request(Hello(token=token), timeout=5)
        assert isinstance(welcome, Welcome)
        await asyncio.sleep(0.4)
        assert isinstance(await client.request(Ping()), Pong)
        await client.close()
    finally:
        auth.user_for = real_user_for
        endpoint.settings = server.settings
