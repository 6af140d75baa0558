"""A closed socket's objects are freed when it closes, not at some later garbage collection.

The server makes full collections rare on purpose (realtime/run/server.py, `tune_gc`), so anything
a closed socket leaves in a reference cycle stays in memory for a long time: the soak's RSS
growth under churn was exactly that (docs/reliability.md). These tests close sockets with the
collector switched off and check that the server-side objects of each are gone."""

from __future__ import annotations

import asyncio
import gc
import weakref

from protocol import Subscribe
from realtime.policy import Area
from tests.client import Client
from tests.conftest import login


def _ws_protocols(server) -> list:  # type: ignore[no-untyped-def]
    return [p for p in server.server.server_state.connections if hasattr(p, "handshake_complete")]


async def test_closed_sockets_leave_nothing_for_the_garbage_collector(server, world, http):
    token = await login(http, world.users["pupil_member"].username)
    url = f"ws://127.0.0.1:{server.port}/ws"
    already = set(map(id, _ws_protocols(server)))
    gc.collect()
    gc.disable()
    try:
        refs: list[tuple[str, weakref.ref]] = []
        for i in range(12):
            client = await Client.connect(url, token)
            await client.ok(Subscribe(world.channel(Area.CHAT)))
            (protocol,) = [p for p in _ws_protocols(server) if id(p) not in already and p.handshake_complete]
            refs += [("uvicorn protocol", weakref.ref(protocol)), ("websockets protocol", weakref.ref(protocol.conn)),
                     ("websockets parser", weakref.ref(protocol.conn.parser))]
            del protocol
            if i % 3 == 0:
                await client.close()  # a close frame, answered
            elif i % 3 == 1:
                client.ws.transport.abort()  # the TCP connection cut: no close frame
                await client.close()
            else:
                await client.ws.close(code=4000)  # a close with an application's code
                await client.close()
        for _ in range(200):
            if not [p for p in _ws_protocols(server) if id(p) not in already]:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # the app's handler and the connection's tasks end after the transport
        alive = [name for name, ref in refs if ref() is not None]
        assert alive == [], f"still alive without a collection: {alive}"
    finally:
        gc.enable()
