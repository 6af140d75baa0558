"""Floods, oversized traffic and slow handshakes, against a server of its own with small limits:
connections per address, the time to send a request's head (slowloris), per-member and
per-connection limits, and oversized requests.

Covered elsewhere (docs/security.md): posting too fast on one socket
(tests/e2e/test_bad_input.py), mail floods (tests/e2e/test_mail.py), report floods
(tests/e2e/test_moderation.py), a flood of bad frames closed 4008 and frames over 64 KiB closed
1009 (tests/e2e/test_bad_input.py), slow consumers closed 4009
(tests/e2e/test_live_rights_and_slow_consumers.py).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import websockets

from protocol import Edit, MarkMail, Ping, Pong, Post, SendMail, Subscribe
from protocol.limits import Limits
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import RunningServer
from realtime.web.headers import SECURITY_HEADERS
from tests.client import Client
from tests.conftest import login

CAP = 5
HEAD_TIMEOUT = 0.5


@pytest.fixture(scope="module")
async def strict(database_url):
    """A server whose only client address (127.0.0.1) is not a trusted proxy: it is capped."""
    settings = Settings(
        database_url=database_url, port=0, log_level="warning", post_rate=1.0, post_burst=3,
        max_connections_per_address=CAP, handshake_timeout=HEAD_TIMEOUT, trusted_proxies=(),
        limits=Limits(max_channels=3),
    )
    running = RunningServer(settings)
    await running.start()
    yield running
    await running.stop()


def guard_of(running: RunningServer):
    return running.server.config.http.guard


async def settled(running: RunningServer, expected: int = 0, timeout: float = 5.0) -> None:
    """Wait until the server counts `expected` open connections from 127.0.0.1."""
    deadline = time.monotonic() + timeout
    while guard_of(running).open.get("127.0.0.1", 0) != expected:
        assert time.monotonic() < deadline, guard_of(running).open
        await asyncio.sleep(0.02)


async def raw(running: RunningServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", running.port)


async def read_until_closed(reader: asyncio.StreamReader, timeout: float) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


async def test_one_address_holds_at_most_the_cap_of_connections(strict):
    """Threat: one machine opens thousands of sockets (idle WebSockets, half-open handshakes)
    to exhaust the server's file descriptors and memory."""
    await settled(strict)
    url = f"ws://127.0.0.1:{strict.port}/ws"
    held = [await websockets.connect(url, subprotocols=["twinhub.v1.json"]) for _ in range(CAP)]
    try:
        await settled(strict, CAP)
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url, subprotocols=["twinhub.v1.json"])
        assert refused.value.response.status_code == 503
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{strict.port}", timeout=5) as http:
            r = await http.get("/healthz")
        assert r.status_code == 503 and r.headers["retry-after"] == "10"
        assert "too many connections" in r.text
        for name, value in SECURITY_HEADERS:
            assert r.headers[name.decode()] == value.decode()
        # A socket that closes gives its place back.
        await held.pop().close()
        await settled(strict, CAP - 1)
        again = await websockets.connect(url, subprotocols=["twinhub.v1.json"])
        held.append(again)
        await again.send('{"type":"ping","ref":1}')
        assert "pong" in await asyncio.wait_for(again.recv(), 5)
    finally:
        for ws in held:
            await ws.close()
    await settled(strict, 0)  # nothing leaks: HTTP connections and WebSockets alike were given back


async def test_trusted_proxies_are_not_capped(database_url):
    """Threat (to availability, by our own defence): a load balancer carries every client on
    its connections; capping its address would cap the whole site."""
    settings = Settings(
        database_url=database_url, port=0, log_level="warning", max_connections_per_address=2,
        trusted_proxies=("127.0.0.0/8",),
    )
    running = RunningServer(settings)
    await running.start()
    try:
        url = f"ws://127.0.0.1:{running.port}/ws"
        held = [await websockets.connect(url, subprotocols=["twinhub.v1.json"]) for _ in range(4)]
        assert guard_of(running).open == {}
        for ws in held:
            await ws.close()
    finally:
        await running.stop()


async def test_a_silent_connection_is_dropped_after_the_handshake_timeout(strict):
    """Threat: slowloris — sockets opened and never used, each held for ever."""
    reader, writer = await raw(strict)
    started = time.monotonic()
    answer = await read_until_closed(reader, HEAD_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert HEAD_TIMEOUT * 0.8 <= time.monotonic() - started < HEAD_TIMEOUT + 3
    writer.close()


async def test_a_head_sent_a_byte_at_a_time_is_cut_off(strict):
    """Threat: slowloris — a request head trickled byte by byte keeps the socket alive for ever
    unless the whole head has a deadline (not each byte)."""
    reader, writer = await raw(strict)
    head = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + b"X-Pad: " + b"a" * 100

    async def trickle() -> None:
        for byte in head:
            if writer.is_closing():
                return
            writer.write(bytes([byte]))
            await asyncio.sleep(0.02)

    feeding = asyncio.create_task(trickle())
    try:
        answer = await read_until_closed(reader, HEAD_TIMEOUT + 3)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert not feeding.done()  # cut off while it was still sending
    finally:
        feeding.cancel()
        writer.close()


async def test_a_slow_second_head_on_a_keep_alive_connection_is_cut_off(strict):
    """Threat: slowloris after one honest request — uvicorn's keep-alive timer stops at the
    first byte of the next request."""
    reader, writer = await raw(strict)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = await asyncio.wait_for(reader.readuntil(b'{"status":"ok"}'), 5)
    assert first.startswith(b"HTTP/1.1 200 ")
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # and nothing more
    answer = await read_until_closed(reader, HEAD_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()


async def test_honest_clients_outlive_the_handshake_timeout(strict, world, http):
    """Threat (to availability, by our own defence): the head deadline must not cut an open
    WebSocket or a keep-alive connection used at a normal pace."""
    token = await login(http, world.users["pupil_member"].username)
    client = await Client.connect(f"ws://127.0.0.1:{strict.port}/ws", token)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{strict.port}", timeout=5) as keep_alive:
        for _ in range(3):
            assert (await keep_alive.get("/healthz")).status_code == 200
            await asyncio.sleep(HEAD_TIMEOUT * 0.6)
        await asyncio.sleep(HEAD_TIMEOUT * 2)
        assert isinstance(await client.request(Ping()), Pong)
        assert (await keep_alive.get("/healthz")).status_code == 200  # a fresh connection if need be
    await client.close()


async def test_the_post_limit_is_per_member_not_per_socket(strict, world, http, pool):
    """Threat: a pupil floods a room by spreading posts over several sockets (tabs)."""
    token = await login(http, world.users["pupil_member"].username)
    url = f"ws://127.0.0.1:{strict.port}/ws"
    sockets = [await Client.connect(url, token) for _ in range(3)]
    chat = world.channel(Area.CHAT)
    try:
        replies = [await sockets[i % 3].request(Post(chat, f"flood {i}")) for i in range(6)]
        codes = [getattr(r, "code", "ok") for r in replies]
        assert codes == ["ok"] * 3 + ["rate_limited"] * 3
        stored = await pool.fetchval(
            "SELECT count(*) FROM messages WHERE room_id = $1 AND text LIKE 'flood %'", world.rooms[Area.CHAT]
        )
        assert stored == 3
    finally:
        for s in sockets:
            await s.close()


async def test_edits_and_mail_filing_take_from_the_post_budget(strict, world, http, connect):
    """Threat: a pupil floods every screen of a room with edits of one message, or their own
    sockets with mark/unmark, which the post limit alone did not count."""
    chat = world.channel(Area.CHAT)
    pupil = world.users["pupil_admin"]
    sender = await connect(world.users["teacher_member"])  # on the main server: its limits are loose
    mailed = await sender.ok(SendMail(world.space_id, (pupil.id,), "hello", "a mail to file"))
    url = f"ws://127.0.0.1:{strict.port}/ws"
    client = await Client.connect(url, await login(http, pupil.username))
    try:
        posted = await client.ok(Post(chat, "first"))  # 1 of the budget of 3
        replies = [await client.request(Edit(chat, posted.data["id"], f"edit {i}")) for i in range(3)]
        assert [getattr(r, "code", "ok") for r in replies] == ["ok", "ok", "rate_limited"]
        assert replies[2].data["retry_after_ms"] > 0
        await asyncio.sleep(3.2)  # the bucket refills (1 a second): three more
        marks = [await client.request(MarkMail(mailed.data["id"], read=i % 2 == 0)) for i in range(4)]
        assert [getattr(r, "code", "ok") for r in marks] == ["ok", "ok", "ok", "rate_limited"]
    finally:
        await client.close()


async def test_subscriptions_are_capped_per_connection(strict, world, http):
    """Threat: one socket subscribes to every channel it can name, to multiply the fan-out
    work and memory spent on it."""
    token = await login(http, world.users["pupil_member"].username)
    url = f"ws://127.0.0.1:{strict.port}/ws"
    readable = [world.channel(a) for a in (Area.HOME, Area.ACTIVITIES, Area.PUPILS_CORNER, Area.CHAT)]
    client = await Client.connect(url, token)
    try:
        for channel in readable[:3]:
            await client.ok(Subscribe(channel))
        err = await client.error(Subscribe(readable[3]))
        assert err.code == "too_many_channels"
        other = await Client.connect(url, token)  # the cap is per connection
        await other.ok(Subscribe(readable[3]))
        await other.close()
    finally:
        await client.close()


async def test_an_oversized_http_body_is_refused_and_stores_nothing(world, http, pool):
    """Threat: a request body of megabytes to tie up memory, or to smuggle an oversized mail."""
    token = await login(http, world.users["teacher_admin"].username)
    before = await pool.fetchval("SELECT count(*) FROM mails")
    body = {"to": [world.users["pupil_member"].id], "subject": "big", "text": "x" * 70_000}  # over the 64 KiB body limit
    r = await http.post(f"/api/spaces/{world.space_id}/mail", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert await pool.fetchval("SELECT count(*) FROM mails") == before


async def test_an_oversized_request_head_is_refused_with_431(server):
    """Threat: a request head of many kilobytes, to make the parser buffer it. Past 16 KiB it is
    refused (realtime/run/guard.py) — still arriving (h11 alone stopped that one, with a 400), or
    arrived whole in one read (which h11 parsed, whatever its size: tests/e2e/test_contract_points.py)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000)  # and no end in sight
    answer = await read_until_closed(reader, 5)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"x-content-type-options: nosniff" in answer.lower()
    writer.close()


async def test_pupil_mail_is_limited_per_member_across_sockets(world, connect):
    """Threat: a pupil spams classmates' mailboxes from several sockets at once."""
    first = await connect(world.users["pupil_member"])
    second = await connect(world.users["pupil_member"])
    to = (world.users["pupil_admin"].id,)
    burst = 8  # tests/conftest.py: pupil_mail_burst
    replies = await asyncio.gather(
        *((first if i % 2 else second).request(SendMail(world.space_id, to, f"spam {i}", subject="s")) for i in range(burst + 2))
    )
    codes = sorted(getattr(r, "code", "ok") for r in replies)
    assert codes == ["ok"] * burst + ["rate_limited"] * 2



async def test_rooms_are_limited_per_member_and_per_project_and_audited(world, http, pool):
    """Threat: a member (or a script with their session) filling a project with rooms."""
    from realtime.services.projects import MAX_ROOMS, ROOMS_PER_MEMBER
    from storage import spaces

    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    url = f"/api/spaces/{world.space_id}/rooms"
    made = [await http.post(url, headers=admin, json={"area": "activities", "name": f"Group {i}"})
            for i in range(ROOMS_PER_MEMBER)]
    assert [r.status_code for r in made] == [201] * ROOMS_PER_MEMBER
    r = await http.post(url, headers=admin, json={"area": "activities", "name": "one more"})
    assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited") and "retry-after" in r.headers
    log = (await http.get(f"/api/spaces/{world.space_id}/audit", headers=admin)).json()["entries"]
    assert sorted(e["target_id"] for e in log if e["action"] == "room.created") == sorted(m.json()["id"] for m in made)
    # The cap holds whoever asks: fill the project to it, then a fresh member's room is refused.
    have = await pool.fetchval("SELECT count(*) FROM rooms WHERE space_id = $1", world.space_id)
    for i in range(MAX_ROOMS - have):
        await spaces.create_room(pool, space_id=world.space_id, area="activities", name=f"filler {i}")
    pupil = {"authorization": f"Bearer {await login(http, world.users['pupil_admin'].username)}"}
    r = await http.post(url, headers=pupil, json={"area": "activities", "name": "our group"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
    assert await pool.fetchval("SELECT count(*) FROM rooms WHERE space_id = $1", world.space_id) == MAX_ROOMS
