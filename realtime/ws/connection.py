"""One WebSocket connection: a reader, a writer, and a bounded outbox between the hub and the socket.

    hub / session ──push(encoded item)──▶ outbox (a byte budget) ──writer task──▶ ASGI send

push() never blocks and never awaits: fan-out never waits for a socket. While a socket keeps up
(its writer is idle, its transport buffer is empty), what is pushed to it during a turn of the
event loop — one event, or a group commit's burst, or a batch read from Redis — is written at
the start of the next turn as *one* WebSocket message, an array of frames joined from the
already-encoded items, and framed once for every socket that got the same items
(realtime/ws/server_protocol.py: no task to wake, no per-recipient encoding). At low load a message
holds one event; under load the cost of a message (the join, the frame, the syscall, the
client's wake-up) is shared by everything the turn produced. While a socket is behind, what is
pushed waits in the outbox, and the writer task takes *everything* waiting (up to a size cap)
and sends it as one message when the transport takes it. No timers.

A client that does not read fast enough fills its outbox (a byte budget, 1 MiB by default); it
is then closed with 4009 (slow consumer) and resumes with `since` when it reconnects — the
server's memory per socket stays bounded. (If the socket is so stuck that even the close frame
cannot be written within 2 s, the TCP connection is dropped: the client sees 1006.)

A `welcome` is outside that budget (`send_whole`): it is the server's own answer, whose size
grows with the projects a member is in and their rooms, not with how far behind the client is,
so it never closes a socket by itself. The session queues one only once the outbox is at most
half full and holds no other (`drained`), so a socket holds at most one welcome beyond its budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from protocol import (
    CloseCode,
    Encoding,
    Error,
    ErrorCode,
    ProtocolError,
    ServerFrame,
    decode_client,
    encode_server_item,
    join_batch,
)
from protocol.limits import Limits

from ..errors import refusals
from .server_protocol import frame_message

log = logging.getLogger("twinhub.connection")

ASGIReceive = Any
ASGISend = Any


class Connection:
    """Outlet for the hub, transport for a Session. Build it after the handshake was accepted.

    Memory matters here (one per socket, thousands per process): the reader runs in the ASGI
    task itself, the writer is the only extra task, and the outbox is a plain list.
    """

    __slots__ = (
        "encoding", "_receive", "_send", "_limits", "_outbox", "_outbox_limit", "_queued", "_batch_bytes",
        "_wakeup", "_drain_waiters", "_close_reason", "_main", "_receiving", "_errors", "_max_errors",
        "_error_window", "_text", "_write_now", "_flush_armed", "_send_message", "messages_sent", "_whole",
    )

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
        self._outbox: list[bytes] = []
        self._outbox_limit = outbox_bytes
        self._queued = 0  # bytes waiting in the outbox
        self._whole = 0  # ... of which outside the budget: a welcome (send_whole)
        self._batch_bytes = batch_bytes
        self._wakeup: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self._close_reason: tuple[int, str] | None = None
        self._main: asyncio.Task[Any] | None = None
        self._receiving = False
        self._errors: list[float] | None = None
        self._max_errors = max_errors
        self._error_window = error_window
        self._text = encoding is Encoding.JSON
        # The server's direct paths to the socket, where it has them (uvicorn with our protocol,
        # realtime/ws/server_protocol.py); else ASGI send.
        protocol = getattr(receive, "__self__", None)
        self._write_now = getattr(protocol, "write_message", None)
        self._send_message = getattr(protocol, "send_message", None)
        self._flush_armed = False  # in _FLUSH's list for the next turn
        self.messages_sent = 0

    # -- outlet ------------------------------------------------------------------------------

    def push(self, item: bytes) -> None:
        if self._close_reason is not None:
            return
        self._queued += len(item)
        if self._queued > self._outbox_limit:
            self._outbox = []
            self._queued = self._whole = 0
            self.close(CloseCode.SLOW_CONSUMER, "slow consumer: reconnect and resume with since")
            return
        self._outbox.append(item)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():  # the writer is idle
            if self._write_now is not None and self._queued <= self._batch_bytes:
                if not self._flush_armed:
                    self._flush_armed = True
                    _FLUSH.add(self)
                return
            wakeup.set_result(None)

    def _flush(self) -> None:
        """At the start of the turn after a push: write the outbox as one message now if the
        socket keeps up, else leave it to the writer task."""
        self._flush_armed = False
        items = self._outbox
        wakeup = self._wakeup
        if not items or wakeup is None or wakeup.done():
            return  # sent already, or the writer has it (woken by a push past the cap, or close())
        framed = _FRAMED[self.encoding]
        if self._write_now(framed.get(items)):
            self._outbox = []
            self._queued = self._whole = 0
            self.messages_sent += 1
            if self._drain_waiters:
                self._release_drain_waiters()
        else:
            framed.forget()  # this outbox will grow: its framing must not be reused
            wakeup.set_result(None)

    def send(self, frame: ServerFrame) -> None:
        self.push(encode_server_item(frame, self.encoding))

    def send_whole(self, frame: ServerFrame) -> None:
        """Queue `frame` (a welcome) outside the outbox's budget: however large, it never closes
        the connection as a slow consumer. Call it after `drained()`, one at a time, so that a
        socket holds at most one such frame beyond its budget."""
        if self._close_reason is not None:
            return
        item = encode_server_item(frame, self.encoding)
        self._whole += len(item)
        self._outbox.append(item)
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():  # the writer is idle
            if self._write_now is not None and self._queued + self._whole <= self._batch_bytes:
                if not self._flush_armed:
                    self._flush_armed = True
                    _FLUSH.add(self)
                return
            wakeup.set_result(None)

    async def drained(self) -> None:
        """Return once the outbox is at most half full and holds no `send_whole` frame — at once,
        unless the client is behind (or the connection closing)."""
        while (self._queued > self._outbox_limit // 2 or self._whole) and self._close_reason is None:
            await self._drain()

    def close(self, code: int, reason: str) -> None:
        """Ask for the connection to close with `code` (idempotent; the first reason wins)."""
        if self._close_reason is not None:
            return
        self._close_reason = (code, reason)
        self._release_drain_waiters()
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)  # the writer sends what is queued, then stops
        # Interrupt the reader only where it is safe: while it waits for the next frame (never in
        # the middle of a request it is carrying out; it checks for a close after each one).
        if self._receiving and self._main is not None:
            self._main.cancel()

    async def send_paced(self, frame: ServerFrame) -> None:
        """send(), but past half the outbox budget wait for the socket to take some first: a
        replay of thousands of events must not fill the outbox faster than the socket empties it."""
        self.send(frame)
        while self._queued > self._outbox_limit // 2 and self._close_reason is None:
            await self._drain()

    def _drain(self) -> asyncio.Future[None]:
        """A future the writer resolves when it takes what waits in the outbox."""
        fut = asyncio.get_running_loop().create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(fut)
        return fut

    def _release_drain_waiters(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    @property
    def closing(self) -> bool:
        return self._close_reason is not None

    def count_error(self, code: str | None = None) -> None:
        """One more refused frame; a peer that keeps sending refused frames is closed as abusive.
        Refusals that are the server's fault (`unavailable`: the database is down; `internal`)
        do not count: a client retrying through an outage is not abusing anyone."""
        if code in _NOT_THE_PEERS_FAULT:
            return
        now = time.monotonic()
        if self._errors is None:
            self._errors = []
        errors = self._errors = [t for t in self._errors if now - t <= self._error_window]
        errors.append(now)
        if len(errors) > self._max_errors:
            self.close(CloseCode.ABUSIVE, "too many refused frames")

    # -- tasks -------------------------------------------------------------------------------

    async def run(self, session: Any) -> None:
        """Read (in this task) and write (in one more) until the peer leaves or close() is
        called; then end the session and close the socket with the close() code."""
        self._main = asyncio.current_task()
        writer = asyncio.create_task(self._write_loop())
        writer.add_done_callback(self._writer_done)
        try:
            await self._read_loop(session)
        except asyncio.CancelledError:
            if self._close_reason is None or self._main is None or not self._main.cancelling():
                raise  # cancelled from outside (server shutdown): not ours to swallow
            self._main.uncancel()
        finally:
            self._main = None
            reason = self._close_reason
            if reason is not None and reason[0] != CloseCode.SLOW_CONSUMER and not writer.done():
                # Let the last frames (e.g. the error that explains the close) go out first.
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(writer), 2)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            await session.close()
        if self._close_reason is not None:
            code, reason = self._close_reason
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send({"type": "websocket.close", "code": code, "reason": reason}), 2)

    def _writer_done(self, writer: asyncio.Task[None]) -> None:
        if not writer.cancelled() and writer.exception() is not None:
            self.close(CloseCode.NORMAL, "")  # the socket is gone; stop reading too

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        limit = self._batch_bytes
        while True:
            while not self._outbox:
                if self._close_reason is not None:
                    return
                self._wakeup = loop.create_future()
                await self._wakeup
                self._wakeup = None
            items, self._outbox = self._outbox, []
            self._queued = self._whole = 0  # everything queued was in the outbox, which is now empty
            if self._drain_waiters and self._queued <= self._outbox_limit // 4:
                self._release_drain_waiters()
            start = 0
            while start < len(items):  # one message, or a few when a lot was waiting
                end, size = start + 1, len(items[start])
                while end < len(items) and size < limit:
                    size += len(items[end])
                    end += 1
                payload = join_batch(items[start:end], self.encoding)
                if self._send_message is not None:
                    await self._send_message(payload, text=self._text)
                elif self._text:
                    await self._send({"type": "websocket.send", "text": payload.decode()})
                else:
                    await self._send({"type": "websocket.send", "bytes": payload})
                self.messages_sent += 1
                start = end

    async def _read_loop(self, session: Any) -> None:
        encoding, limits = self.encoding, self._limits
        while self._close_reason is None:
            self._receiving = True
            try:
                message = await self._receive()
            finally:
                self._receiving = False
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
                refusals.note(f"refused {exc.code.value}", "refused a frame: %s", exc.code.value)
                continue
            except Exception as exc:  # a bug in the decoder: the peer still gets an answer, the socket lives
                # Not the message: it may quote the frame, and a frame may carry a token.
                refusals.note(f"decoder {type(exc).__name__}", "decode_client raised %s on a %d-byte frame: a bug, "
                              "only ProtocolError may escape", type(exc).__name__, len(data), level=logging.ERROR)
                self.send(Error(ErrorCode.INTERNAL.value, "the server could not read this frame"))
                continue
            await session.dispatch(frame)


_NOT_THE_PEERS_FAULT = frozenset({ErrorCode.UNAVAILABLE.value, ErrorCode.INTERNAL.value})


class _Framed:
    """The last outbox asked for, framed as one WebSocket message. A fan-out leaves the same
    items, in the same order, in every recipient's outbox: they are joined and framed once, and
    telling that the next outbox holds the same items is a comparison of pointers (a list
    compares its elements by identity first)."""

    __slots__ = ("encoding", "items", "wire")

    def __init__(self, encoding: Encoding) -> None:
        self.encoding = encoding
        self.items: list[bytes] | None = None
        self.wire = b""

    def get(self, items: list[bytes]) -> bytes:
        if items != self.items:
            self.wire = frame_message(join_batch(items, self.encoding), text=self.encoding is Encoding.JSON)
            self.items = items
        return self.wire

    def forget(self) -> None:
        self.items = None


_FRAMED = {encoding: _Framed(encoding) for encoding in Encoding}


FLUSH_CHUNK = 128  # sockets written per turn of the event loop (~1.5 ms of send())


class _Flush:
    """The connections pushed to in this turn of the event loop while their writers were idle:
    one callback at the start of the next turn writes each one's outbox (Connection._flush) —
    one callback a turn, not a task wake-up per socket; FLUSH_CHUNK sockets a turn at most."""

    __slots__ = ("_pending", "_armed_on")

    def __init__(self) -> None:
        self._pending: list[Connection] = []
        self._armed_on: asyncio.AbstractEventLoop | None = None

    def add(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        if self._armed_on is not loop:  # (a loop that closed with us armed leaves its list behind)
            self._armed_on = loop
            self._pending = []
            loop.call_soon(self._run)
        self._pending.append(conn)

    def _run(self) -> None:
        pending = self._pending
        if len(pending) > FLUSH_CHUNK:
            # A post to 1,000 sockets is ~11 ms of send() calls. Written in one go, a post that
            # arrives meanwhile (and its commit's round trips to PostgreSQL) would wait for all
            # of them; a turn of the loop between chunks lets it start at once.
            pending, self._pending = pending[:FLUSH_CHUNK], pending[FLUSH_CHUNK:]
            asyncio.get_running_loop().call_soon(self._run)
        else:
            self._pending = []
            self._armed_on = None
        for conn in pending:
            try:
                conn._flush()
            except Exception:  # one broken socket must not leave the others' outboxes unsent
                log.exception("writing to a socket failed")
                conn._flush_armed = False
                conn.close(CloseCode.NORMAL, "")


_FLUSH = _Flush()
