"""realtime/ws/connection.py's outbox and a `welcome`: the slow-consumer budget is for what a
client falls behind on, never for the server's own welcome — however large — and the session
queues welcomes one at a time (`drained`), so a socket holds at most one beyond its budget."""

from __future__ import annotations

import asyncio
import contextlib

from protocol import CloseCode, Encoding, Event, Welcome
from protocol.limits import DEFAULT_LIMITS
from realtime.ws.connection import Connection

BUDGET = 4096


class Socket:
    """An ASGI peer whose sends wait until `gate` opens (a client that does not read)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def receive(self) -> dict:
        await asyncio.Event().wait()  # never: the tests drive the writer alone
        return {}

    async def send(self, message: dict) -> None:
        await self.gate.wait()
        self.sent.append(message.get("text", ""))


def _welcome(size: int) -> Welcome:
    return Welcome(user={"id": 1}, spaces=[{"rooms": "x" * size}], limits={})


def _event(seq: int, size: int) -> Event:
    return Event("room:1", seq, "message.posted", {"message": {"text": "y" * size}})


async def _connection() -> tuple[Connection, Socket, asyncio.Task[None]]:
    socket = Socket()
    conn = Connection(socket.receive, socket.send, Encoding.JSON, DEFAULT_LIMITS, outbox_bytes=BUDGET)
    writer = asyncio.create_task(conn._write_loop())
    await asyncio.sleep(0)  # the writer waits for something to send
    return conn, socket, writer


async def _stop(writer: asyncio.Task[None]) -> None:
    writer.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writer


async def test_a_welcome_larger_than_the_budget_never_closes_the_connection_but_events_still_do():
    conn, socket, writer = await _connection()
    try:
        conn.send_whole(_welcome(4 * BUDGET))
        await asyncio.sleep(0)  # the writer took it, and waits on the socket
        conn.send_whole(_welcome(4 * BUDGET))  # one more, waiting in the outbox
        assert not conn.closing
        for seq in range(1, 4):  # events within the budget, beside it
            conn.send(_event(seq, BUDGET // 4))
        assert not conn.closing
        for seq in range(4, 8):  # an event past the budget: the client is behind on events
            conn.send(_event(seq, BUDGET // 4))
        assert conn.closing and conn._close_reason[0] == CloseCode.SLOW_CONSUMER
    finally:
        await _stop(writer)


async def test_drained_waits_until_the_waiting_welcome_was_taken():
    conn, socket, writer = await _connection()
    try:
        conn.send_whole(_welcome(100))
        await asyncio.sleep(0)  # taken by the writer, which waits on the socket
        await asyncio.wait_for(conn.drained(), 1)  # nothing waits in the outbox
        conn.send_whole(_welcome(100))
        waiting = asyncio.create_task(conn.drained())
        await asyncio.sleep(0.05)
        assert not waiting.done(), "a second welcome must wait while one waits"
        socket.gate.set()  # the client reads again
        await asyncio.wait_for(waiting, 1)
        await asyncio.sleep(0)
        assert len(socket.sent) == 2
    finally:
        await _stop(writer)


async def test_drained_waits_while_the_outbox_is_over_half_full():
    conn, socket, writer = await _connection()
    try:
        conn.send(_event(1, 10))
        await asyncio.sleep(0)  # in flight
        conn.send(_event(2, BUDGET * 3 // 4))
        waiting = asyncio.create_task(conn.drained())
        await asyncio.sleep(0.05)
        assert not waiting.done()
        socket.gate.set()
        await asyncio.wait_for(waiting, 1)
    finally:
        await _stop(writer)
