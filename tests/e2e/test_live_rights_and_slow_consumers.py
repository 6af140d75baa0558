"""Rights follow membership changes at once; a client that stops reading is cut off while the
others carry on (bounded memory), and it resumes without loss."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct

from protocol import Error, Post, Subscribe
from realtime.config import Settings
from realtime.policy import Area, Role
from realtime.run.server import RunningServer
from realtime.ws.server_protocol import Flag, Inbox
from tests.client import Client
from tests.conftest import login


async def test_removed_member_stops_receiving_and_is_refused(world, connect, server):
    chat = world.channel(Area.CHAT)
    leaving = await connect(world.users["teacher_member"])
    staying = await connect(world.users["teacher_admin"])
    await leaving.ok(Subscribe(chat))
    await staying.ok(Subscribe(chat))

    await server.app.state.projects.set_member(world.space_id, world.users["teacher_member"].id, None)
    ended = await leaving.next_frame(Error, timeout=2)
    assert ended.code == "not_member" and ended.data["channel"] == chat

    await staying.ok(Post(chat, "after she left"))
    await staying.wait_events(chat, 1)
    await asyncio.sleep(0.1)  # bounded: an event wrongly delivered would have arrived by now
    assert chat not in leaving.events
    err = await leaving.error(Post(chat, "still here?"))
    assert err.code == "not_found"


async def test_teacher_demoted_to_visitor_loses_the_chat_at_once(world, connect, server):
    chat = world.channel(Area.CHAT)
    teacher = await connect(world.users["teacher_member"])
    await teacher.ok(Subscribe(chat))
    await server.app.state.projects.set_member(world.space_id, world.users["teacher_member"].id, Role.VISITOR)
    ended = await teacher.next_frame(Error, timeout=2)
    assert ended.code == "forbidden" and ended.data["channel"] == chat
    assert (await teacher.error(Subscribe(chat))).code == "forbidden"


async def test_slow_consumer_is_closed_and_resumes_without_loss(database_url, world, http):
    settings = Settings(
        database_url=database_url, port=0, post_rate=10_000.0, post_burst=10_000, outbox_bytes=64 * 1024,
        log_level="warning",
    )
    small = RunningServer(settings)
    await small.start()
    url = f"ws://127.0.0.1:{small.port}/ws"
    chat = world.channel(Area.CHAT)
    try:
        token = await login(http, world.users["pupil_member"].username)
        poster = await Client.connect(url, token)
        healthy = await Client.connect(url, await login(http, world.users["teacher_member"].username))
        await healthy.ok(Subscribe(chat))

        # A client with a tiny receive buffer that authenticates, subscribes, and never reads again.
        sock = await stalled_client(small.port, await login(http, world.users["teacher_admin"].username), chat)

        for _ in range(100):
            if len(small.app.state.services.hub.subscribers(chat)) == 2:
                break
            await asyncio.sleep(0.02)
        big = "x" * 3900
        total = 0
        open_before = small.app.state.ws_endpoint.open
        # Enough to fill the kernel's socket buffers (up to 4 MB here), the transport's and the
        # outbox; a round's events (5 × 4 KB) fit the outbox of a client that reads.
        for _ in range(600):
            await asyncio.gather(*(poster.ok(Post(chat, big)) for _ in range(5)))
            total += 5
            if small.app.state.ws_endpoint.open < open_before:
                break
        for _ in range(50):  # the close frame may wait up to 2 s for the stuck socket
            if small.app.state.ws_endpoint.open < open_before:
                break
            await asyncio.sleep(0.1)
        assert small.app.state.ws_endpoint.open == open_before - 1, "the stuck client was never cut off"

        events = await healthy.wait_events(chat, total, timeout=20)
        assert [e.seq for e in events] == list(range(1, total + 1))

        # The server has ended the stuck client's TCP connection: reading what was buffered ends
        # (drain times out otherwise). The client resumes from the start and misses nothing.
        await drain(sock)
        sock.close()
        again = await Client.connect(url, await login(http, world.users["teacher_admin"].username))
        await again.ok(Subscribe(chat, since=0))
        events = await again.wait_events(chat, total, timeout=10)
        assert [e.seq for e in events] == list(range(1, total + 1))
        for c in (poster, healthy, again):
            await c.close()
    finally:
        await small.stop()


async def stalled_client(port: int, token: str, channel: str) -> socket.socket:
    """A raw WebSocket client (RFC 6455 by hand) that sends hello and subscribe, then stops reading."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    await loop.sock_sendall(sock, (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: twinhub.v1.json\r\n\r\n"
    ).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += await asyncio.wait_for(loop.sock_recv(sock, 1), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    for frame in ({"type": "hello", "token": token}, {"type": "subscribe", "channel": channel}):
        await loop.sock_sendall(sock, masked_text_frame(json.dumps(frame).encode()))
    return sock


def masked_text_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    header = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + struct.pack("!H", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def drain(sock: socket.socket) -> bytes:
    """Read until the server closes the TCP connection (bounded); returns the last bytes read."""
    loop = asyncio.get_running_loop()
    tail = b""
    while True:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
        if not chunk:
            return tail
        tail = (tail + chunk)[-256:]


async def test_server_restart_keeps_history(database_url, world, http):
    """Stop the server, start a new one on the same database: the history is there."""
    chat = world.channel(Area.CHAT)
    first = RunningServer(Settings(database_url=database_url, port=0, log_level="warning"))
    await first.start()
    try:
        token = await login(http, world.users["pupil_member"].username)
        c = await Client.connect(f"ws://127.0.0.1:{first.port}/ws", token)
        for i in range(3):
            await c.ok(Post(chat, f"before restart {i}"))
        await c.close()
    finally:
        await first.stop()
    second = RunningServer(Settings(database_url=database_url, port=0, log_level="warning"))
    await second.start()
    try:
        c = await Client.connect(f"ws://127.0.0.1:{second.port}/ws", token)
        await c.ok(Subscribe(chat, since=0))
        events = await c.wait_events(chat, 3)
        assert [e.data["message"]["text"] for e in events] == [f"before restart {i}" for i in range(3)]
        await c.close()
    finally:
        await second.stop()



async def test_open_sockets_do_not_keep_their_handshake(server, world, connect):
    """Memory per idle socket: the handshake's request and response are dropped after the
    accept, and the request's headers emptied (the websockets parser keeps the request itself
    alive); uvicorn's queue and event are the lean ones (realtime/ws/server_protocol.py). If uvicorn's
    protocol changes, this says so."""
    client = await connect(world.users["pupil_member"])
    protocols = [p for p in server.server.server_state.connections if hasattr(p, "handshake_complete")]
    assert protocols, "no uvicorn WebSocket protocol found"
    accepted = [p for p in protocols if p.handshake_complete]
    assert accepted and all(p.request is None and p.response is None for p in accepted)
    assert all(isinstance(p.queue, Inbox) and isinstance(p.writable, Flag) for p in accepted)
    frame = accepted[0].conn.parser.gi_frame  # the request, as the websockets parser still holds it
    held = [v for v in frame.f_locals.values() if type(v).__name__ == "Request"]
    assert held and all(len(r.headers) == 0 for r in held)
    await client.ok(Subscribe(world.channel(Area.CHAT)))  # and the socket works on
