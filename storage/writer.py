"""Group commit: concurrent posts are gathered and committed in one transaction.

A single committer task takes *everything* waiting when it is free and commits it at once, so
batches grow with load and shrink to one post when the server is quiet — no timer, no added
latency at low load. Every future is resolved only after COMMIT returned: "ok" means committed.

If a batch fails as a whole (a unique race with another process, say), its posts are retried
one by one so that one bad post cannot fail its neighbours. If PostgreSQL is unavailable, every
post of the batch gets Unavailable and nothing is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

import asyncpg

from .db import transaction
from .errors import StorageError, Unavailable
from .messages import NewPost, PostResult, post_many

log = logging.getLogger("twinhub.storage")


class GroupCommitWriter:
    """`await writer.post(p)` returns the PostResult once it is committed.

    Ordering: posts submitted in order a, b to the same room get seqs in that order, and their
    futures are resolved in that order. Cancellation: a caller that is cancelled after its post
    was taken into a batch does not un-post it (it was, or will be, committed).
    """

    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 500, max_queue: int = 20_000) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._queue: deque[tuple[NewPost, asyncio.Future[PostResult]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # counters for /metrics and the benchmarks
        self.committed = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="group-commit-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(Unavailable("server shutting down; the post was not stored"))

    async def post(self, post: NewPost) -> PostResult:
        if len(self._queue) >= self._max_queue:
            raise Unavailable("too many posts waiting to be committed")
        fut: asyncio.Future[PostResult] = asyncio.get_running_loop().create_future()
        self._queue.append((post, fut))
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

    async def _commit(self, batch: list[tuple[NewPost, asyncio.Future[PostResult]]]) -> None:
        posts = [p for p, _ in batch]
        try:
            async with transaction(self._pool, "post_batch") as conn:
                results = await post_many(conn, posts)
        except Unavailable as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(Unavailable(str(exc)))
            return
        except Exception as exc:  # the committer must survive anything, or every later post would hang
            if not isinstance(exc, StorageError):
                log.exception("unexpected failure committing %d posts", len(batch))
            if len(batch) > 1:
                log.warning("batch of %d posts failed; retrying them one by one", len(batch))
                for item in batch:
                    await self._commit([item])
                return
            _, fut = batch[0]
            if not fut.done():
                fut.set_exception(StorageError("the post could not be stored"))
            return
        self.batches += 1
        self.committed += len(batch)
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)
