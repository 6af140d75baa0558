"""Rate limits, in this process's memory: token buckets keyed per member, per address, … and the
login throttle (failures per username and per address, then back-off and lockout).

A bucket holds up to `burst` tokens and refills at `rate` per second; each action takes one.
Buckets idle long enough to be full again are forgotten, so memory follows active keys only.
Several processes count members' limits and login failures together in Redis instead
(realtime/fanout/shared_limits.py); both kinds answer the same interfaces (`Limiter`, `Throttle`).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

from .errors import refusals


def address_key(address: str) -> str:
    """What a client address is limited by: an IPv4 address itself; an IPv6 address its /64 —
    a home, a school or a phone is given a whole /64 and may use any address in it, so counting
    by address would give one machine 2**64 fresh budgets (RFC 7421; an IPv4-mapped address
    counts as its IPv4 address). Anything else (a Unix socket's name) is its own key."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


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


class LoginThrottle:
    """Failures per key within `window` s. After `free` failures each further attempt must wait
    (`backoff` s, doubling: the attempts are slowed); at `limit` failures the key is locked for
    `lockout` s (refused)."""

    def __init__(
        self, *, limit: int, window: float, lockout: float, backoff: float = 0.0, free: int = 2, name: str = "",
    ) -> None:
        self.limit = limit
        self.window = window
        self.lockout = lockout
        self.backoff = backoff
        self.free = free
        self._failures: dict[str, list[float]] = {}
        self._locked_until: dict[str, float] = {}  # the lockout, or the back-off before the next try
        self._set_by: dict[str, float] = {}  # the attempt whose reservation set _locked_until
        self._locks: dict[str, float] = {}  # when a key's lockout (not a back-off) ends

    def retry_after(self, key: str, now: float) -> float:
        until = self._locked_until.get(key, 0.0)
        if until > now:
            return until - now
        self._locked_until.pop(key, None)
        return 0.0

    def fail(self, key: str, now: float) -> bool:
        """Count a failure already known (reserve, then confirm); True when this one locked the key."""
        locked = self.reserve_now(key, now).locked
        self.confirm_now(key, now)
        return locked

    def succeed(self, key: str) -> None:
        self._failures.pop(key, None)

    def reserve_now(self, key: str, now: float) -> Attempt:
        """Count an attempt as a failure before it is verified (so that attempts sent at once all
        count), saying whether it may go on: not if the key was locked or slowed before it. The
        attempt that reaches the limit locks the key; the back-off waits for the verdict
        (`confirm`), so that it runs from the failure, as a person retyping sees it."""
        allowed = self.retry_after(key, now) == 0
        if self._locks.get(key, 0.0) > now:
            # Locked: refused, and nothing more to count (nor a second lockout) until it ends.
            return Attempt(False, False, repr(now))
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        recent.append(now)
        self._failures[key] = recent
        locked = len(recent) >= self.limit
        if locked:
            self._locked_until[key] = self._locks[key] = max(now + self.lockout, self._locked_until.get(key, 0.0))
            self._set_by[key] = now
            self._failures.pop(key, None)
            kind = key.split(":")[0]
            refusals.note(f"login locked ({kind})", "login locked for %.0f s after %d failures (%s)", self.lockout,
                          len(recent), kind, level=logging.WARNING)
        if len(self._failures) > 100_000:  # memory stays bounded under a spray of usernames
            self._failures = {k: v for k, v in self._failures.items() if now - v[-1] < self.window}
        if len(self._locks) > 100_000:
            self._locks = {k: until for k, until in self._locks.items() if until > now}
        return Attempt(allowed, locked, repr(now))

    def confirm_now(self, key: str, now: float) -> None:
        """A reserved attempt failed: past the free ones, the next must wait (from now)."""
        n = len(self._failures.get(key, ()))
        if self.backoff and n > self.free:
            until = now + self.backoff * 2 ** (n - self.free - 1)
            if until > self._locked_until.get(key, 0.0):
                self._locked_until[key] = until

    def release_now(self, key: str, token: str) -> None:
        """The attempt `token` succeeded: it was no failure. Un-count it, and lift what its own
        reservation set (a back-off, or the lock it reached)."""
        at = float(token)
        recent = self._failures.get(key)
        if recent and at in recent:
            recent.remove(at)
        if self._set_by.get(key) == at:
            self._set_by.pop(key, None)
            self._locked_until.pop(key, None)
            self._locks.pop(key, None)

    def lift_now(self, key: str, now: float) -> bool:
        """Forget the key's failures and lift its lockout or back-off (a teacher unlocked a pupil's
        login, or gave them a new password). True if a lockout or a back-off was in force."""
        was = self.retry_after(key, now) > 0 or self._locks.get(key, 0.0) > now
        self._failures.pop(key, None)
        self._locked_until.pop(key, None)
        self._set_by.pop(key, None)
        self._locks.pop(key, None)
        return was

    # The interface Auth uses, shared with the Redis-backed throttle (realtime/fanout/shared_limits.py).

    async def wait(self, key: str) -> float:
        return self.retry_after(key, time.monotonic())

    async def failed(self, key: str) -> bool:
        return self.fail(key, time.monotonic())

    async def cleared(self, key: str) -> None:
        self.succeed(key)

    async def reserve(self, key: str) -> Attempt:
        return self.reserve_now(key, time.monotonic())

    async def release(self, key: str, token: str) -> None:
        self.release_now(key, token)

    async def confirm(self, key: str, token: str) -> None:
        self.confirm_now(key, time.monotonic())

    async def lift(self, key: str) -> bool:
        return self.lift_now(key, time.monotonic())


@dataclass(frozen=True, slots=True)
class Attempt:
    allowed: bool  # the key was neither locked nor slowed before this attempt
    locked: bool  # this attempt's reservation reached the limit and locked the key
    token: str  # to release it if it succeeds


class Throttle(Protocol):
    limit: int
    lockout: float

    async def wait(self, key: str) -> float:
        """Seconds before `key` may try again (0: now)."""

    async def failed(self, key: str) -> bool:
        """Count a failure; True when it locked the key."""

    async def cleared(self, key: str) -> None: ...

    async def reserve(self, key: str) -> Attempt:
        """Count an attempt before verifying it; whether it may go on."""

    async def release(self, key: str, token: str) -> None:
        """Un-count a reserved attempt that succeeded."""

    async def confirm(self, key: str, token: str) -> None:
        """A reserved attempt failed: start the back-off, if it is due, from now."""

    async def lift(self, key: str) -> bool:
        """Forget the key's failures and lift its lockout or back-off, for every process; True if
        one was in force."""
