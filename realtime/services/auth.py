"""Passwords, sessions and login throttling.

- Passwords are hashed with argon2id (argon2-cffi); verification runs in a thread so a login
  never stalls the event loop's sockets.
- A session token is 32 random bytes (URL-safe text) given to the client once; only its SHA-256
  is stored, so neither logs nor a database copy can replay it. Tokens are never logged.
- Brute force: failures are counted per username and per address; past a few, attempts are
  refused for a while (`rate_limited` with a retry delay), whether the password is right or not.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from protocol import ErrorCode
from storage import accounts, audit
from storage.accounts import User

from ..errors import ServiceError

log = logging.getLogger("twinhub.auth")

SESSION_COOKIE = "twinhub_session"

# A fixed hash to verify against when the username is unknown, so that a wrong username and a
# wrong password take the same time (no username enumeration by timing).
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def session_key(token: str | None) -> bytes | None:
    """The stored key of a session token, or None for what cannot be one (nothing to look up)."""
    if not token or len(token) > 200:
        return None
    return token_hash(token)


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    user: User
    expires_at: datetime


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

    def retry_after(self, key: str, now: float) -> float:
        until = self._locked_until.get(key, 0.0)
        if until > now:
            return until - now
        self._locked_until.pop(key, None)
        return 0.0

    def fail(self, key: str, now: float) -> bool:
        """Count a failure; True when this one locked the key."""
        recent = [t for t in self._failures.get(key, []) if now - t < self.window]
        recent.append(now)
        self._failures[key] = recent
        locked = len(recent) >= self.limit
        if locked:
            self._locked_until[key] = now + self.lockout
            self._failures.pop(key, None)
            log.warning("login locked for %.0f s after %d failures (%s)", self.lockout, len(recent), key.split(":")[0])
        elif self.backoff and len(recent) > self.free:
            self._locked_until[key] = now + self.backoff * 2 ** (len(recent) - self.free - 1)
        if len(self._failures) > 100_000:  # memory stays bounded under a spray of usernames
            self._failures = {k: v for k, v in self._failures.items() if now - v[-1] < self.window}
        return locked

    def succeed(self, key: str) -> None:
        self._failures.pop(key, None)

    # The interface Auth uses, shared with the Redis-backed throttle (realtime/shared_limits.py).

    async def wait(self, key: str) -> float:
        return self.retry_after(key, time.monotonic())

    async def failed(self, key: str) -> bool:
        return self.fail(key, time.monotonic())

    async def cleared(self, key: str) -> None:
        self.succeed(key)


class Throttle(Protocol):
    limit: int
    lockout: float

    async def wait(self, key: str) -> float:
        """Seconds before `key` may try again (0: now)."""

    async def failed(self, key: str) -> bool:
        """Count a failure; True when it locked the key."""

    async def cleared(self, key: str) -> None: ...


class Auth:
    def __init__(
        self, pool: asyncpg.Pool, *, session_ttl: timedelta = timedelta(hours=12), login_backoff: float = 1.0,
        throttle: Callable[..., Throttle] = LoginThrottle,
    ) -> None:
        self._pool = pool
        self._ttl = session_ttl
        # Per username: two free mistakes, then 1 s, 2 s between tries, then locked for 5 minutes.
        # Per address, no back-off and a high limit: a whole class logs in from one school address.
        # `throttle` makes them: in this process's memory, or counted in Redis across processes.
        self.per_user = throttle(name="user", limit=5, window=900, lockout=300, backoff=login_backoff)
        self.per_address = throttle(name="addr", limit=50, window=900, lockout=900)

    async def login(self, username: str, password: str, address: str) -> Login:
        """A new session for these credentials. Raises ServiceError(unauthenticated|rate_limited)."""
        user_key, addr_key = f"user:{username.lower()}", f"addr:{address}"
        wait = max(await self.per_user.wait(user_key), await self.per_address.wait(addr_key))
        if wait:
            raise ServiceError(
                ErrorCode.RATE_LIMITED, f"too many failed logins; try again in {int(wait) + 1} s",
                retry_after_ms=int(wait * 1000) + 1,
            )
        creds = await accounts.credentials(self._pool, username)
        ok = await asyncio.to_thread(_verify, creds.password_hash if creds else None, password)
        if not ok or creds is None:
            locked = await self.per_user.failed(user_key)
            await self.per_address.failed(addr_key)
            if locked and creds is not None:
                # Someone is trying passwords on a real account: its teachers should know.
                await audit.record_lockout(
                    self._pool, user_id=creds.user.id, failures=self.per_user.limit, seconds=self.per_user.lockout
                )
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "wrong username or password")
        await self.per_user.cleared(user_key)
        token = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + self._ttl
        await accounts.create_session(self._pool, token_hash(token), creds.user.id, expires_at)
        return Login(token, creds.user, expires_at)

    async def user_for(self, token: str | None) -> User | None:
        """The user of a live session token, or None (unknown, expired or revoked)."""
        key = session_key(token)
        if key is None:
            return None
        found = await accounts.session_user(self._pool, key)
        return None if found is None else found[0]

    async def logout(self, token: str) -> None:
        await accounts.revoke_session(self._pool, token_hash(token))
