"""Telling running servers that rights changed, through PostgreSQL: `twinhub admin` commits a change
and NOTIFYs; each server process LISTENs and reloads what the message names. The command line
shares nothing else with the servers — no bus, no Redis, no secret — but always the database, and
a notification is delivered only once its transaction commits, to every listening connection.

A listener whose connection is lost reconnects (with a growing pause) and, once listening again,
calls `on_reconnect`: notifications sent meanwhile are gone, so the caller reloads what it keeps.
LISTEN needs a session of its own: behind PgBouncer, point the server at a session-mode pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import asyncpg

from .db import _UNAVAILABLE, read

log = logging.getLogger("twinhub.storage")

CHANNEL = "twinhub_control"
MAX_PAYLOAD = 7000  # PostgreSQL refuses payloads of 8000 bytes and more


async def notify(pool: asyncpg.Pool, payload: str) -> None:
    """Tell every listening server `payload` (a control message's JSON)."""
    if len(payload.encode()) > MAX_PAYLOAD:
        raise ValueError("a notification's payload is a small control message")
    async with read(pool, "notify") as conn:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)


class Listener:
    def __init__(
        self, url: str, on_payload: Callable[[str], None], on_reconnect: Callable[[], Awaitable[None]],
        *, retry: float = 1.0, max_retry: float = 10.0,
    ) -> None:
        self._url = url
        self._on_payload = on_payload
        self._on_reconnect = on_reconnect
        self._retry, self._max_retry = retry, max_retry
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    async def start(self) -> None:
        """Listen in the background; returns once listening (or once the first try failed)."""
        self._task = asyncio.create_task(self._run(), name="notify-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 10)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        pause, first = self._retry, True
        while True:
            lost = asyncio.Event()
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._url, timeout=10)
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, lambda _c, _pid, _channel, payload: self._on_payload(payload))
                self.listening.set()
                if not first:
                    log.info("listening for command-line changes again; reloading what may have changed")
                    try:
                        await self._on_reconnect()
                    except Exception:  # noqa: BLE001 — the database is away again: the next reconnect reloads
                        log.warning("could not reload after reconnecting", exc_info=True)
                first, pause = False, self._retry
                await lost.wait()
                self.listening.clear()
                log.warning("lost the connection that listens for command-line changes; reconnecting")
            except _UNAVAILABLE as exc:
                self.listening.clear()
                log.warning("cannot listen for command-line changes (%s); retrying in %.0f s", type(exc).__name__, pause)
                first = False
                await asyncio.sleep(pause)
                pause = min(pause * 2, self._max_retry)
            finally:
                if conn is not None and not conn.is_closed():
                    await conn.close(timeout=2)
