"""Group read: concurrent reads of one kind (a room's replay after a reconnect, a session token)
are gathered and answered by one statement.

The mirror of the group-commit writer (storage/writer.py): a single reader task takes
*everything* waiting when it is free (up to `max_batch` distinct keys), reads it on one pooled
connection, and resolves every caller's future. Batches grow with load — a reconnect storm of
5,000 sessions becomes a few dozen statements on one connection, not 5,000 round trips queueing
for the pool (and for the writers' connections) — and shrink to one key when the server is quiet.

Callers asking for the same key in the same batch share one read and one result object.

**Freshness.** Every answer comes from a statement that *started after* its caller called
read(): a caller never joins a read already on its way to PostgreSQL. A session that subscribed
to a channel's live events before asking for its replay can therefore rely on the replay's
snapshot being newer than its subscription (docs/protocol.md, "Resume": nothing falls between
the two).

`read_many(conn, keys)` answers a batch of distinct keys on the connection it is given, in one
statement, and returns one result per key, in order. It must not write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import asyncpg

from .db import read
from .errors import StorageError, Unavailable

log = logging.getLogger("twinhub.storage")

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class GroupReader(Generic[K, R]):
    """`await reader.read(key)` returns the result of a statement that started after the call.

    Bounded: at most `max_queue` callers wait (beyond that read() raises Unavailable, as the
    writer does); one connection is used at a time. Cancellation: a caller cancelled while its
    key is being read only drops its own interest.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        read_many: Callable[[asyncpg.Connection, list[K]], Awaitable[list[R]]],
        *,
        name: str,
        max_batch: int = 500,
        max_queue: int = 50_000,
    ) -> None:
        self._pool = pool
        self._read_many = read_many
        self.name = name
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._waiting: dict[K, list[asyncio.Future[R]]] = {}  # insertion-ordered: oldest key first
        self._count = 0  # callers in _waiting
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # counters for /metrics and the benchmarks
        self.keys = 0
        self.callers = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"group-read {self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        waiting, self._waiting, self._count = self._waiting, {}, 0
        for futures in waiting.values():
            for fut in futures:
                if not fut.done():
                    fut.set_exception(Unavailable(f"server shutting down; the {self.name} was not read"))

    async def read(self, key: K) -> R:
        """The result for `key`, from a statement that started after this call. Raises
        Unavailable when PostgreSQL is away (or too many reads wait), StorageError otherwise."""
        if self._task is None or self._task.done():
            raise Unavailable(f"the {self.name} reader is not running")
        if self._count >= self._max_queue:
            raise Unavailable(f"too many reads ({self.name}) waiting")
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append(fut)
        self._count += 1
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch: dict[K, list[asyncio.Future[R]]] = {}
                for key in list(self._waiting)[: self._max_batch]:
                    futures = self._waiting.pop(key)
                    self._count -= len(futures)
                    batch[key] = futures
                await self._answer(batch)

    async def _answer(self, batch: dict[K, list[asyncio.Future[R]]]) -> None:
        keys = list(batch)
        try:
            async with read(self._pool, f"{self.name}_batch") as conn:
                results = await self._read_many(conn, keys)
        except Exception as exc:  # the reader must survive anything, or every later read would hang
            error: StorageError
            if isinstance(exc, StorageError):
                error = exc
            else:
                log.exception("unexpected failure reading %d keys (%s)", len(keys), self.name)
                error = StorageError(f"the {self.name} could not be read")
            for futures in batch.values():
                for fut in futures:
                    if not fut.done():
                        fut.set_exception(type(error)(str(error)))
            return
        self.batches += 1
        self.keys += len(keys)
        for futures, result in zip(batch.values(), results, strict=True):
            self.callers += len(futures)
            for fut in futures:
                if not fut.done():
                    fut.set_result(result)
