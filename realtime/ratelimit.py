"""Token buckets, keyed (per member, per address, …), in this process's memory.

A bucket holds up to `burst` tokens and refills at `rate` per second; each action takes one.
Buckets idle long enough to be full again are forgotten, so memory follows active keys only.
Several processes count members' limits together in Redis instead (realtime/shared_limits.py);
both kinds answer `acquire`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Protocol


class Limiter(Protocol):
    async def acquire(self, key: Hashable) -> float:
        """Take one token for `key`: 0.0 if allowed, else the seconds until one is available."""


class RateLimiter:
    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key -> (tokens, at)
        self._last_sweep = clock()

    def take(self, key: Hashable) -> float:
        """Take one token. Returns 0.0 if allowed, else the seconds until one is available."""
        now = self._clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens - 1.0, now)
        if now - self._last_sweep > 60:
            self._sweep(now)
        return 0.0

    async def acquire(self, key: Hashable) -> float:
        """`take` behind the interface the shared limiter has (never suspends)."""
        return self.take(key)

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}
        self._last_sweep = now
