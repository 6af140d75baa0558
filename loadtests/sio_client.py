"""The load generator's clients, over socket.io: the smallest part of Engine.IO v4 and of the
socket.io v5 protocol that the socket.io peers need, on the same picows connections.

The peers (loadtests/peers/socketio_python.py, node_socketio.js) carry TwinHub's frames as the
argument of a socket.io event named "m": the client emits `["m", {frame}]`, the server emits
`["m", [frames]]`. So a socket.io client here is a TwinHub client (clients.py) whose bytes are
wrapped: the Subscriber, LeanSubscriber and Publisher logic runs unchanged on the array inside.

What travels on the WebSocket (text messages, one packet each; no long-polling, no binary):

    server -> client  0{"sid":...,"pingInterval":...}   Engine.IO open
    client -> server  40                                socket.io CONNECT to namespace "/"
    server -> client  40{"sid":...}                     connected  (44{...}: refused)
    both ways         42["m",<JSON>]                    an EVENT "m" carrying <JSON>
    server -> client  2         client -> server  3     Engine.IO ping, pong
    server -> client  1 or 41                           closing

A message that is none of these is counted as an error frame ("sio:<first bytes>") and dropped.
Not supported (the peers never use them): acknowledgements (43), binary events (45/46), other
namespaces, the polling transport and its upgrade.
"""

from __future__ import annotations

import asyncio
from typing import Any

from picows import WSMsgType, WSTransport, ws_connect

from .clients import MAX_MESSAGE_BYTES, Client, LeanSubscriber, Publisher, Subscriber, Tally, _dumps

PATH = "/socket.io/?EIO=4&transport=websocket"
_EVENT = b'42["m",'  # socket.io encodes with no spaces: 4 MESSAGE, 2 EVENT, then the JSON array
_PONG = b"3"


class SioClient(Client):
    """A Client whose messages are socket.io "m" events; `connected` resolves on the CONNECT answer."""

    def __init__(self, tally: Tally, *args: Any) -> None:  # args: the Publisher's channel and text size
        super().__init__(tally, *args)
        self.connected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_message(self, payload: bytes) -> None:
        if payload.startswith(_EVENT) and payload.endswith(b"]"):
            super().on_message(payload[len(_EVENT): -1])
        elif payload == b"2":
            assert self.transport is not None
            self.transport.send(WSMsgType.TEXT, _PONG)
        elif payload.startswith(b"40"):
            if not self.connected.done():
                self.connected.set_result(None)
        elif payload.startswith(b"0"):
            assert self.transport is not None
            self.transport.send(WSMsgType.TEXT, b"40")
        elif payload.startswith(b"44") or payload in (b"1", b"41"):
            if not self.connected.done():
                self.connected.set_exception(ConnectionError(f"socket.io refused: {payload[:200]!r}"))
        else:
            self.tally.errors[f"sio:{payload[:8]!r}"] += 1

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionError("closed before the socket.io CONNECT answer"))
        super().on_ws_disconnected(transport)

    def send(self, frame: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, _EVENT + _dumps(frame).encode() + b"]")


class SioSubscriber(SioClient, Subscriber):
    pass


class SioLeanSubscriber(SioClient, LeanSubscriber):
    pass


class SioPublisher(SioClient, Publisher):
    pass


async def connect(base_url: str, make: Any, timeout: float) -> Client:
    """Open a socket.io connection on `base_url` (ws://HOST:PORT) with the WebSocket transport
    and wait for the namespace CONNECT answer, all within `timeout`."""

    async def opened() -> Client:
        _, client = await ws_connect(make, base_url.rstrip("/") + PATH, websocket_handshake_timeout=timeout,
                                     max_frame_size=MAX_MESSAGE_BYTES)
        await client.connected
        return client  # type: ignore[no-any-return]

    return await asyncio.wait_for(opened(), timeout)
