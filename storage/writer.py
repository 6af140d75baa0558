"""Group commit: concurrent writes of one kind (chat posts, mail) are gathered and committed in
one transaction.

A single committer task takes *everything* waiting when it is free and commits it at once, so
batches grow with load and shrink to one write when the server is quiet — no timer, no added
latency at low load. Every future is resolved only after COMMIT returned: "ok" means committed.
A write is answered within one batch's time after the batch before it: a batch that fails
because PostgreSQL is unavailable fails what was queued behind it too (nothing of it stored).

If a batch fails as a whole (a unique race with another process, say), its writes are retried
one by one so that one bad write cannot fail its neighbours; a single write that met another
process's commit of the same unique key is tried once more, and finds that commit. If PostgreSQL is unavailable, every
write of the batch gets Unavailable and nothing is acknowledged.

The writer knows nothing of what it writes: `commit_many(conn, items)` stores a batch in the
transaction it is given and returns one result per item, in order (messages.post_many,
mail.send_many).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

from .db import read, transaction
from .errors import Conflict, StorageError, Unavailable

log = logging.getLogger("twinhub.storage")

T = TypeVar("T")
R = TypeVar("R")


class GroupCommitWriter(Generic[T, R]):
    """`await writer.submit(item)` returns the item's result once it is committed.

    Ordering: items submitted in order a, b get their seqs in that order, and their futures are
    resolved in that order. Cancellation: a caller that is cancelled after its item was taken
    into a batch does not un-write it (it was, or will be, committed).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        commit_many: Callable[[asyncpg.Connection, list[T]], Awaitable[list[R]]],
        *,
        name: str,
        atomic: bool = False,
        max_batch: int = 500,
        max_queue: int = 20_000,
    ) -> None:
        """`atomic`: commit_many stores a batch in one statement, which PostgreSQL makes atomic by
        itself — no BEGIN and COMMIT round trips around it."""
        self._pool = pool
        self._commit_many = commit_many
        self._atomic = atomic
        self.name = name
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # counters for /metrics and the benchmarks
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"group-commit {self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(Unavailable(f"server shutting down; the {self.name} was not stored"))

    async def submit(self, item: T) -> R:
        if len(self._queue) >= self._max_queue:
            raise Unavailable(f"too many writes ({self.name}) waiting to be committed")
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                n = min(len(self._queue), self._max_batch)
                batch = [self._queue.popleft() for _ in range(n)]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]], *, raced: bool = False) -> None:
        items = [p for p, _ in batch]
        try:
            scope = read if self._atomic else transaction
            async with scope(self._pool, f"{self.name}_batch") as conn:
                results = await self._commit_many(conn, items)
        except Unavailable as exc:
            # What was queued while this batch failed is failed with it, untried: against a
            # database that stopped answering, its own batch would wait out command_timeout again,
            # and a client would hear twice as late that nothing was stored.
            waiting = list(self._queue)
            self._queue.clear()
            for _, fut in (*batch, *waiting):
                if not fut.done():
                    fut.set_exception(Unavailable(str(exc)))
            return
        except Exception as exc:  # the committer must survive anything, or every later write would hang
            if not isinstance(exc, StorageError):
                log.exception("unexpected failure committing %d writes (%s)", len(batch), self.name)
            if len(batch) > 1:
                log.warning("batch of %d writes (%s) failed; retrying them one by one", len(batch), self.name)
                for item in batch:
                    await self._commit([item])
                return
            if isinstance(exc, Conflict) and not raced:
                # One idempotency key in flight on two processes at once: this insert waited for
                # the other's commit, then met its unique key. That commit is visible now, so
                # the write, tried again, finds it and answers it as the original (duplicate) —
                # rather than telling the client its message was not stored.
                await self._commit(batch, raced=True)
                return
            _, fut = batch[0]
            if not fut.done():
                fut.set_exception(StorageError(f"the {self.name} could not be stored"))
            return
        self.batches += 1
        self.committed += len(batch)
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)
