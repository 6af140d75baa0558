"""Rate limits counted in Redis, so that they hold across processes: a member posting through
three processes at once gets the same 5 posts a second as through one.

Each check is one token-bucket step in a Lua script (atomic, on Redis's own clock). Checks are
sent in batches, one pipeline per loop turn, over one connection, and answered in the order they
were asked: a session's posts, checked in order, stay in order (realtime/ws/session.py relies on it).

Redis not answering within `timeout` (dead, or hung: stopped, or behind a network that drops
packets): the checks waiting for it fall back to this process's own buckets (limits still hold,
per process), and so does every check after them, at once, without asking Redis, until a probe
in the background finds that it answers again (realtime/fanout/breaker.py). A hung Redis thus
costs the checks in flight when it stopped one `timeout` at most, and the others nothing; it is
said in the log once when it stops answering and once when it is back. Service does not stop for
a limiter. The login throttle does the same, through the same breaker.

On a Redis Cluster each bucket lives on the node that owns its key, and the pipeline sends each
node its own checks (answers still come back in the order asked). A node that has not seen the
script yet (new, restarted, failed over) answers NOSCRIPT: the script is loaded on every node and
the batch asked again once — a check that had passed on another node then counts twice, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

from ..ratelimit import Attempt, LoginThrottle, RateLimiter
from .breaker import Breaker
from .redis_client import REDIS_ERRORS, open_client

T = TypeVar("T")

# KEYS[1]: the bucket; ARGV: rate per second, burst. Returns the wait in seconds, as a string
# (a Lua number returned as is would be truncated to an integer).
_TOKEN_BUCKET = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 't', 'a')
local tokens, at = tonumber(b[1]) or burst, tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(now - at, 0) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate else tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'a', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class SharedLimits:
    """One connection and one ordered batch of checks for every shared limiter of a process."""

    def __init__(self, url: str, *, prefix: str = "twinhub", timeout: float = 0.5, cluster: bool = False,
                 probe_every: float = 0.5) -> None:
        """`timeout`: the longest a batch of checks, or one read of a login's call, waits for
        Redis (a round trip takes ~1 ms); one that waited this long falls back and opens the
        breaker. `probe_every`: while Redis does not answer, how often it is asked whether it
        does again."""
        self.client = open_client(url, cluster=cluster, socket_connect_timeout=1, socket_timeout=timeout)
        self.prefix = prefix
        self.timeout = timeout
        self.breaker = Breaker(self.client.ping, what="rate limits and login throttling", timeout=timeout,
                               every=probe_every)
        self._queue: list[tuple[str, float, int, asyncio.Future[float]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sha = hashlib.sha1(_TOKEN_BUCKET.encode()).hexdigest()  # EVALSHA: the script once per node

    def limiter(self, name: str, rate: float, burst: int) -> SharedRateLimiter:
        return SharedRateLimiter(self, name, rate, burst)

    def login_throttle(self, *, name: str, limit: int, window: float, lockout: float, backoff: float = 0.0,
                       free: int = 2) -> SharedLoginThrottle:
        return SharedLoginThrottle(self, name, limit=limit, window=window, lockout=lockout, backoff=backoff, free=free)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shared rate limits")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.breaker.stop()
        await self.client.aclose()

    def ask(self, key: str, rate: float, burst: int) -> asyncio.Future[float]:
        """A check for the next batch; its future fails with the Redis error if Redis did not
        answer it (the caller falls back). Callers ask only while `breaker.answering`."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((f"{self.prefix}:rl:{key}", rate, burst, fut))
        self._wake.set()
        return fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if not batch:
                continue
            if not self.breaker.answering:  # found out (by a login) since these were asked
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(RedisConnectionError("Redis does not answer (the breaker is open)"))
                continue
            try:
                try:
                    answers = await self._check(batch)
                except NoScriptError:
                    await asyncio.wait_for(self.client.script_load(_TOKEN_BUCKET), self.timeout)
                    answers = await self._check(batch)
                for (_, _, _, fut), wait in zip(batch, answers, strict=True):
                    if not fut.done():
                        fut.set_result(float(wait))
            except REDIS_ERRORS as exc:
                if self.breaker.failed(exc):
                    # The checks asked while this batch waited would wait as long again: they
                    # fall back now, with this batch and before any check asked after it (the
                    # callers resume in this order, so a session's posts keep theirs).
                    batch, self._queue = batch + self._queue, []
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)

    async def redis_or(self, in_redis: Callable[[], Awaitable[T]], here: Callable[[], Awaitable[T]]) -> T:
        """`in_redis()`, each of its reads given `timeout` (the client's socket timeout: a first
        call on a cluster, which learns the slots and the commands, takes several); `here()`
        (this process's own count) if Redis did not answer or answered with an error — and at
        once, without asking, while the breaker says that Redis does not answer."""
        if self.breaker.answering:
            try:
                return await in_redis()
            except REDIS_ERRORS as exc:
                self.breaker.failed(exc)
        return await here()

    async def _check(self, batch: list[tuple[str, float, int, asyncio.Future[float]]]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for key, rate, burst, _ in batch:
                # As a raw command: a cluster's pipeline refuses the evalsha() helper, whose
                # NOSCRIPT handling it cannot do; ours is in _run.
                pipe.execute_command("EVALSHA", self._sha, 1, key, rate, burst)
            return await asyncio.wait_for(pipe.execute(), self.timeout)


class SharedRateLimiter:
    def __init__(self, shared: SharedLimits, name: str, rate: float, burst: int) -> None:
        self._shared = shared
        self._name = name
        self.rate = rate
        self.burst = burst
        self._local = RateLimiter(rate, burst)  # when Redis does not answer

    async def acquire(self, key: Hashable) -> float:
        """Take one token from the bucket of `key`, counted across processes (in this process
        alone while Redis does not answer). Returns 0.0 if allowed, else the seconds until one is
        available."""
        if self._shared.breaker.answering:
            try:
                return await self._shared.ask(f"{self._name}:{key}", self.rate, self.burst)
            except REDIS_ERRORS:
                pass
        return self._local.take(key)


# KEYS[1]: the key's recent failures (a sorted set), KEYS[2]: its lock (a key that expires).
# An attempt counted before it is verified (ARGV: window, limit, lockout, backoff, free, and a
# unique name for the attempt). Returns
# {allowed (the key was neither locked nor slowed before), locked (this one reached the limit)};
# the lock carries the attempt's name, so that its release can lift it. The back-off waits for
# the verdict (_LOGIN_CONFIRM).
_LOGIN_RESERVE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local window, limit, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local backoff, free = tonumber(ARGV[4]), tonumber(ARGV[5])
local allowed = 1
if redis.call('PTTL', KEYS[2]) > 0 then allowed = 0 end
local held = redis.call('GET', KEYS[2])
if held and string.sub(held, 1, 7) == 'locked:' then
  return {0, 0}  -- locked: refused, and nothing more to count (nor a second lockout) until it ends
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[6])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  redis.call('SET', KEYS[2], 'locked:' .. ARGV[6], 'PX', math.ceil(lockout * 1000))
  redis.call('DEL', KEYS[1])
  return {allowed, 1}
end
return {allowed, 0}
"""

# A reserved attempt failed (ARGV: backoff, free): past the free ones the next must wait, from
# now; a back-off never shortens a lockout.
_LOGIN_CONFIRM = """
local backoff, free = tonumber(ARGV[1]), tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if backoff > 0 and n > free then
  local ms = math.ceil(backoff * 2 ^ (n - free - 1) * 1000)
  if redis.call('PTTL', KEYS[2]) < ms then
    redis.call('SET', KEYS[2], 'slowed', 'PX', ms)
  end
end
return 0
"""

# ARGV[1]: the attempt that succeeded. Un-count it; lift the lock or back-off it set itself.
_LOGIN_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local set = redis.call('GET', KEYS[2])
if set == 'locked:' .. ARGV[1] or set == 'slowed:' .. ARGV[1] then redis.call('DEL', KEYS[2]) end
return 0
"""


class SharedLoginThrottle:
    """realtime/auth.LoginThrottle counted in Redis: an attacker spreading password guesses over
    the processes gets no more tries than through one. Redis not answering: this process's own
    count (never an open door, never a locked one for nothing), at once while the breaker is open."""

    def __init__(self, shared: SharedLimits, name: str, *, limit: int, window: float, lockout: float,
                 backoff: float, free: int) -> None:
        self._shared = shared
        self._name = name
        self.limit = limit
        self.lockout = lockout
        self._args = [window, limit, lockout, backoff, free]
        self._local = LoginThrottle(limit=limit, window=window, lockout=lockout, backoff=backoff, free=free)
        self._reserve = shared.client.register_script(_LOGIN_RESERVE)
        self._release = shared.client.register_script(_LOGIN_RELEASE)
        self._confirm = shared.client.register_script(_LOGIN_CONFIRM)
        self._backoff = [backoff, free]

    def _keys(self, key: str) -> list[str]:
        # One hash tag for both keys: the script takes them together, so on a cluster they
        # must share a slot.
        base = f"{{{self._shared.prefix}:login:{self._name}:{key}}}"
        return [f"{base}:failures", f"{base}:lock"]

    async def wait(self, key: str) -> float:
        async def in_redis() -> float:
            return max(await self._shared.client.pttl(self._keys(key)[1]), 0) / 1000

        return await self._shared.redis_or(in_redis, lambda: self._local.wait(key))

    async def failed(self, key: str) -> bool:
        """Count a failure already known (reserve, then confirm); True when it locked the key."""
        attempt = await self.reserve(key)
        await self.confirm(key, attempt.token)
        return attempt.locked

    async def cleared(self, key: str) -> None:
        async def in_redis() -> None:
            await self._shared.client.delete(self._keys(key)[0])

        await self._shared.redis_or(in_redis, lambda: self._local.cleared(key))

    async def reserve(self, key: str) -> Attempt:
        token = secrets.token_hex(8)

        async def in_redis() -> Attempt:
            allowed, locked = await self._reserve(keys=self._keys(key), args=[*self._args, token])
            return Attempt(bool(allowed), bool(locked), token)

        return await self._shared.redis_or(in_redis, lambda: self._local.reserve(key))

    async def confirm(self, key: str, token: str) -> None:
        async def in_redis() -> None:
            await self._confirm(keys=self._keys(key), args=self._backoff)

        await self._shared.redis_or(in_redis, lambda: self._local.confirm(key, token))

    async def release(self, key: str, token: str) -> None:
        async def in_redis() -> None:
            await self._release(keys=self._keys(key), args=[token])

        async def here() -> None:
            with contextlib.suppress(ValueError):  # a token of Redis's, while Redis is away: nothing here
                await self._local.release(key, token)

        await self._shared.redis_or(in_redis, here)

    async def lift(self, key: str) -> bool:
        """Forget the key's failures and lift its lockout or back-off: in Redis, where every
        process counts (so it holds on all of them at once), and in this process's own count too
        (what it uses while Redis does not answer). True if a lockout or a back-off was in force."""
        here = await self._local.lift(key)

        async def in_redis() -> bool:
            failures, lock = self._keys(key)
            held = await self._shared.client.delete(lock)
            await self._shared.client.delete(failures)
            return bool(held)

        async def away() -> bool:
            return here

        return await self._shared.redis_or(in_redis, away) or here
