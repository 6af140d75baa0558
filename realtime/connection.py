"""One WebSocket connection: a reader, a writer, and a bounded outbox between the hub and the socket.

    hub / session ──push(encoded item)──▶ outbox (bounded deque) ──writer task──▶ ASGI send

push() never blocks and never awaits: fan-out never waits for a socket. The writer takes
*everything* waiting (up to a size cap) and sends it as one WebSocket message, an array of
frames joined from the already-encoded items: at low load a message holds one frame and goes at
once; under load the cost of a message is shared by many frames. No timers.

A client that does not read fast enough fills its outbox (a byte budget, 1 MiB by default); it
is then closed with 4009 (slow consumer) and resumes with `since` when it reconnects — the
server's memory per socket stays bounded. (If the socket is so stuck that even the close frame
cannot be written within 2 s, the TCP connection is dropped: the client sees 1006.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any

from protocol import (
    CloseCode,
    Encoding,
    Error,
    ProtocolError,
    ServerFrame,
    decode_client,
    encode_server_item,
    join_batch,
)
from protocol.limits import Limits

log = logging.getLogger("twinhub.connection")

ASGIReceive = Any
ASGISend = Any


class Connection:
    """Outlet for the hub, transport for a Session. Build it after the handshake was accepted."""

    def __init__(
        self,
        receive: ASGIReceive,
        send: ASGISend,
        encoding: Encoding,
        limits: Limits,
        *,
        outbox_bytes: int = 1024 * 1024,
        batch_bytes: int = 256 * 1024,
        max_errors: int = 50,
        error_window: float = 10.0,
    ) -> None:
        self.encoding = encoding
        self._receive = receive
        self._send = send
        self._limits = limits
        self._outbox: deque[bytes | str] = deque()
        self._outbox_limit = outbox_bytes
        self._queued = 0  # bytes (or characters, for JSON text) waiting in the outbox
        self._batch_bytes = batch_bytes
        self._wakeup: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closing: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
        self._errors: deque[float] = deque()
        self._max_errors = max_errors
        self._error_window = error_window
        self._key = "text" if encoding is Encoding.JSON else "bytes"
        self.messages_sent = 0

    # -- outlet ------------------------------------------------------------------------------

    def push(self, item: bytes | str) -> None:
        if self._closing.done():
            return
        self._queued += len(item)
        if self._queued > self._outbox_limit:
            self._outbox.clear()
            self._queued = 0
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and resume with since")
            return
        self._outbox.append(item)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    def send(self, frame: ServerFrame) -> None:
        self.push(encode_server_item(frame, self.encoding))

    def close(self, code: int, reason: str) -> None:
        """Ask for the connection to close with `code` (idempotent; the first reason wins)."""
        if not self._closing.done():
            self._closing.set_result((code, reason))

    async def send_paced(self, frame: ServerFrame) -> None:
        """send(), but past half the outbox budget wait for the socket to take some first: a
        replay of thousands of events must not fill the outbox faster than the socket empties it."""
        self.send(frame)
        if self._queued > self._outbox_limit // 2:
            await self._drained()

    async def _drained(self) -> None:
        while self._queued > self._outbox_limit // 4 and not self._closing.done():
            fut = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(fut)
            await asyncio.wait({fut, self._closing}, return_when=asyncio.FIRST_COMPLETED)

    @property
    def closing(self) -> bool:
        return self._closing.done()

    def count_error(self) -> None:
        """One more refused frame; a peer that keeps sending refused frames is closed as abusive."""
        now = time.monotonic()
        errors = self._errors
        errors.append(now)
        while errors and now - errors[0] > self._error_window:
            errors.popleft()
        if len(errors) > self._max_errors:
            self.close(CloseCode.ABUSIVE, "too many refused frames")

    # -- tasks -------------------------------------------------------------------------------

    async def run(self, session: Any) -> None:
        """Read and write until the peer leaves or close() is called; then close the socket."""
        writer = asyncio.create_task(self._write_loop())
        reader = asyncio.create_task(self._read_loop(session))
        try:
            await asyncio.wait({writer, reader, self._closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await session.close()
        if self._closing.done():
            code, reason = self._closing.result()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send({"type": "websocket.close", "code": code, "reason": reason}), 2)

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        outbox = self._outbox
        while True:
            while not outbox:
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            batch = [outbox.popleft()]
            size = len(batch[0])
            while outbox and size < self._batch_bytes:
                item = outbox.popleft()
                size += len(item)
                batch.append(item)
            self._queued -= size
            if self._drain_waiters and self._queued <= self._outbox_limit // 4:
                waiters, self._drain_waiters = self._drain_waiters, []
                for fut in waiters:
                    if not fut.done():
                        fut.set_result(None)
            await self._send({"type": "websocket.send", self._key: join_batch(batch, self.encoding)})
            self.messages_sent += 1

    async def _read_loop(self, session: Any) -> None:
        encoding, limits = self.encoding, self._limits
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            try:
                frame = decode_client(data, encoding, limits)
            except ProtocolError as exc:
                self.send(Error(exc.code.value, exc.message, ref=exc.ref))
                self.count_error()
                continue
            await session.dispatch(frame)
            if self._closing.done():
                return
