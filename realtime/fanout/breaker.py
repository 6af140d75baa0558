"""Whether Redis answers, as this process last found, so that a Redis that hangs costs the
requests that need it one short wait, not one wait each (issue 22, point 16).

A dead Redis refuses connections at once, and whoever asked falls back in microseconds. One that
hangs — stopped, swapping, behind a network that drops packets — accepts connections and never
answers: each call waits its whole timeout before falling back, and every acknowledgement waits
with it (0.5–1.0 s each, measured, for as long as it hung). The breaker remembers the first such
wait: from then on `answering` is False, callers do not ask Redis and fall back at once, and one
probe in the background asks Redis (`probe`, e.g. PING: at once, then every `every` seconds, each
bounded by `timeout`) until it answers; then callers ask Redis again.

    answering ──a call gets no answer (timeout, connection lost, cluster down)──▶ not answering
        ▲                                                                           │
        └──────────────── the probe gets an answer (any answer) ◀───────────────────┘

Only "no answer" trips it. An error that Redis answered with (a script it does not have yet, a
command its ACL refuses) says that Redis is there: the call that got it falls back alone, and a
probe would close the breaker again at once, so tripping on it would only flap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import ClusterDownError, ResponseError

from .redis_client import REDIS_ERRORS

log = logging.getLogger("twinhub.limits")


def unanswered(exc: BaseException) -> bool:
    """Whether `exc` (one of REDIS_ERRORS, or a timeout) means Redis did not answer, rather than
    that it answered with an error. A cluster that is down answers, but only to say it cannot."""
    return isinstance(exc, ClusterDownError) or not isinstance(exc, ResponseError)


class Breaker:
    """`answering` is what callers read before asking Redis; `failed(exc)` is what they tell it
    when a call did not work. The probe runs only while Redis is taken for not answering."""

    def __init__(self, probe: Callable[[], Awaitable[object]], *, what: str, timeout: float, every: float = 0.5) -> None:
        self.answering = True
        self.opened = 0  # times Redis was found not answering (tests and logs read it)
        self._probe = probe
        self._what = what  # for the log: what falls back while Redis does not answer
        self._timeout = timeout
        self._every = every
        self._task: asyncio.Task[None] | None = None

    def failed(self, exc: BaseException) -> bool:
        """Note a call to Redis that failed with `exc`. Returns True if Redis did not answer
        (the breaker is open now, or already was); False if it answered with an error."""
        if not unanswered(exc):
            return False
        if self.answering:
            self.answering = False
            self.opened += 1
            log.warning("Redis does not answer (%s): %s per process at once until it does; asking it every %.1f s",
                        type(exc).__name__, self._what, self._every)
            self._task = asyncio.get_running_loop().create_task(self._until_it_answers(), name="Redis probe")
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _until_it_answers(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._probe(), self._timeout)
                break
            except REDIS_ERRORS as exc:  # TimeoutError too (an OSError)
                if not unanswered(exc):
                    break
            await asyncio.sleep(self._every)
        self.answering = True
        self._task = None
        log.info("Redis answers again: %s counted in Redis", self._what)
