"""uvicorn's `websockets-sansio` WebSocket protocol, with less kept per open socket.

An idle socket is what most of a school's connections are, so its memory sets how many one
process holds (docs/performance.md, "Idle connections"). Measured with tracemalloc on 1,000
idle sockets, uvicorn's protocol kept, per socket:

- an `asyncio.Queue` for incoming messages and an `asyncio.Event` for write flow control: five
  `collections.deque`s allocated up front (each ~760 B with its first block), ~3.8 KB, although
  one reader awaits the queue and the writer waits on the event only while the kernel's send
  buffer is full. `Inbox` and `Flag` below do the same jobs with lists made when needed;
- the handshake's request and response (~4 KB with their headers): uvicorn never reads them
  after the accept, and the `websockets` parser's generator frame keeps the request alive as a
  local variable for the socket's whole life. `forget_handshake()` drops uvicorn's references
  and empties the request's headers in place, which the generator cannot be asked to let go.

Behaviour is uvicorn's own: only what it asks of these two objects (`put_nowait`, `get`,
`empty`; `set`, `clear`, `wait`) is implemented, for its one reader and its senders.

One addition for every HTTP answer of the handshake: `answer_headers` (the security headers,
set by realtime/run/guard.py) go on the `101 Switching Protocols` and on every refusal — the
app's 403, and those the `websockets` handshake writes by itself (400 for a malformed handshake,
431 for a header line over 8 KiB, 500) — all of which pass through its `reject` or
`send_response` (`AnsweringWithHeaders`).

Two additions, for realtime/ws/connection.py:

- `write_message()` writes a message framed once for all its recipients (`frame_message`; a
  server's frames are not masked, so every recipient's bytes are the same) straight to the
  transport, when the socket keeps up — no ASGI `send`, no task to wake, no per-recipient
  encoding. The connection uses it while nothing else waits to be sent, and falls back to its
  writer task (which batches) as soon as the socket falls behind.
- `send_message()` is uvicorn's `send()` of a `websocket.send` event for a payload that is
  already bytes (the writer's batches): no ASGI event, no `str` to encode again, and, without
  permessage-deflate, one copy to frame it instead of the `websockets` library's two.
"""

from __future__ import annotations

import asyncio
import struct
from functools import cache
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Response
from websockets.protocol import State
from websockets.server import ServerProtocol

Headers = tuple[tuple[bytes, bytes], ...]


def frame_message(payload: bytes, *, text: bool) -> bytes:
    """One unfragmented, unmasked, uncompressed WebSocket message (RFC 6455 §5.2), as a server
    sends it: FIN set, opcode text (1) or binary (2), then the payload length in 7, 16 or 64 bits."""
    head = 0x81 if text else 0x82
    n = len(payload)
    if n < 126:
        return bytes((head, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload


class Inbox:
    """A queue for one consumer: what uvicorn's protocol asks of its `asyncio.Queue`."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None  # a list only while something waits to be read
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = [item]
        else:
            self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        items = self._items
        item = items.pop(0)  # a handful at most: the transport's reading pauses above that
        if not items:
            self._items = None
        return item

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items) if self._items else 0


class Flag:
    """What uvicorn's protocol asks of its `asyncio.Event` (writable or not)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = True
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> None:
        while not self._set:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            await waiter


class AnsweringWithHeaders(ServerProtocol):
    """websockets' server side of the handshake, adding `extra` to every HTTP answer it builds
    or sends: `reject` for the answers uvicorn writes without sending them through
    `send_response` (a request that did not parse), `send_response` for the rest (the 101, and
    the answers an ASGI app builds itself). Headers already there are not repeated."""

    extra: list[tuple[str, str]] = []

    def reject(self, status: HTTPStatus | int, text: str) -> Response:
        response = super().reject(status, text)
        self._add(response)
        return response

    def send_response(self, response: Response) -> None:
        self._add(response)
        super().send_response(response)

    def _add(self, response: Response) -> None:
        for name, value in self.extra:
            if name not in response.headers:
                response.headers[name] = value


@cache
def answering_with(headers: Headers) -> type[AnsweringWithHeaders]:
    """The handshake's class adding `headers` (one class per set of headers, made once)."""
    extra = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]
    return type("AnsweringWithHeaders", (AnsweringWithHeaders,), {"extra": extra})


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    answer_headers: Headers = ()  # on every HTTP answer of the handshake (realtime/run/guard.py)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue = Inbox()  # type: ignore[assignment]
        self.writable = Flag()  # type: ignore[assignment]
        if self.answer_headers:
            # uvicorn builds a plain ServerProtocol (its extensions and limits from its config);
            # ours is the same object with two methods overridden and no state of its own, so
            # its class is changed rather than the object built again from uvicorn's internals.
            self.conn.__class__ = answering_with(self.answer_headers)

    def write_message(self, wire: bytes) -> bool:
        """Write `wire` (from frame_message) now and return True — if the socket is open, takes
        plain frames (no permessage-deflate, which compresses per recipient) and has nothing
        waiting in its transport buffer; else return False and write nothing."""
        if (
            self.close_sent or self.disconnected or not self.handshake_complete or self.conn.extensions
            or self.conn.state is not State.OPEN
        ):
            return False
        transport = self.transport
        if transport.get_write_buffer_size() or transport.is_closing():
            return False
        transport.write(wire)
        return True

    async def send_message(self, payload: bytes, *, text: bool) -> None:
        """Send one message, waiting while the transport asks us to (flow control). Raises
        ClientDisconnected, as uvicorn's send() does, once the socket is closing or gone."""
        await self.writable.wait()
        if self.disconnected or self.close_sent:
            raise ClientDisconnected()
        conn = self.conn
        if conn.extensions:  # permessage-deflate: the websockets protocol compresses
            try:
                (conn.send_text if text else conn.send_binary)(payload)
            except InvalidState:
                raise ClientDisconnected() from None
            self.transport.write(b"".join(conn.data_to_send()))
            return
        if conn.state is not State.OPEN:
            raise ClientDisconnected()
        self.transport.write(frame_message(payload, text=text))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # The `websockets` parser is a suspended generator whose frame holds its ServerProtocol,
        # which holds it back: a cycle, and uvicorn never feeds it the EOF that would end it. Left
        # so, every closed socket's protocol, reader and handshake waited for a garbage collection
        # that tune_gc makes rare — the soak's RSS growth under churn (docs/reliability.md).
        self.conn.parser.close()

    def forget_handshake(self) -> None:
        """Called by the app once it has accepted the socket (realtime/ws/endpoint.py)."""
        if self.request is not None:
            self.request.headers.clear()
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
