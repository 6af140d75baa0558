"""Passwords, sessions and login throttling.

- Passwords are hashed with argon2id (argon2-cffi); verification runs in a thread so a login
  never stalls the event loop's sockets.
- A session token is 32 random bytes (URL-safe text) given to the client once; only its SHA-256
  is stored, so neither logs nor a database copy can replay it. Tokens are never logged.
- Brute force: failures are counted per username and per address; past a few, attempts are
  refused for a while (`rate_limited` with a retry delay), whether the password is right or not.
  A signed-in user proving their password again (to change it, to delete their account) is
  counted the same way, on the same counts: a stolen session is no way around the throttle.
  The failure that locks answers `rate_limited` itself (not "wrong password"); a teacher who may
  reset a pupil's password may lift the pupil's lock (`unlock`), and a reset lifts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from protocol import ErrorCode
from protocol.limits import DEFAULT_LIMITS
from storage import Conflict, NotFound, accounts, audit
from storage.accounts import PasswordReset, User

from ..errors import RateLimited, Refused, ServiceError, database
from ..fanout.control import Changes, SessionsRevoked
from ..policy import decide_own_account
from ..ratelimit import LoginThrottle, Throttle, address_key

log = logging.getLogger("twinhub.auth")

# A fixed hash to verify against when the username is unknown, so that a wrong username and a
# wrong password take the same time (no username enumeration by timing).
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_ADULT_PASSWORD = 10  # an adult's own password (teachers, parents): no 5-character ones


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class Hashing:
    """Bounds the argon2 work in flight (logins, code redemptions): argon2 is slow on purpose, and a
    crowd of requests must not queue for ever behind it. `slots` checks run at once; up to
    `waiting` more wait their turn, each at most `patience` seconds (a class logging in at once
    waits a moment); past that a request is refused at once (`rate_limited`, retry in a second)."""

    def __init__(self, slots: int = 4, waiting: int = 64, patience: float = 5.0) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._waiting = 0
        self.max_waiting = waiting
        self._patience = patience

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self.max_waiting:
            raise RateLimited(1.0, "the server is busy checking passwords; try again in a second")
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self._patience)
        except TimeoutError:
            raise RateLimited(1.0, "the server is busy checking passwords; try again in a second") from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()


def _keys(username: str, address: str) -> tuple[str, str]:
    """The login throttle's keys: per username (any case), per address (an IPv6 /64)."""
    return f"user:{username.lower()}", f"addr:{address_key(address)}"


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def session_key(token: str | None) -> bytes | None:
    """The stored key of a session token, or None for what cannot be one (nothing to hash or look
    up): none, or longer than any token (DEFAULT_LIMITS.max_token_chars, 200)."""
    if not token or len(token) > DEFAULT_LIMITS.max_token_chars:
        return None
    return token_hash(token)


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    user: User
    expires_at: datetime
    password_reset: PasswordReset | None  # a teacher reset the password since the last login


class Auth:
    def __init__(
        self, pool: asyncpg.Pool, changes: Changes, *, session_ttl: timedelta = timedelta(hours=12),
        login_backoff: float = 1.0, throttle: Callable[..., Throttle] = LoginThrottle, hashing: Hashing | None = None,
    ) -> None:
        self._pool = pool
        self._changes = changes
        self._ttl = session_ttl
        # Per username: two free mistakes, then 1 s, 2 s between tries, then locked for 5 minutes.
        # Per address, no back-off and a high limit: a whole class logs in from one school address.
        # `throttle` makes them: in this process's memory, or counted in Redis across processes.
        self.per_user = throttle(name="user", limit=5, window=900, lockout=300, backoff=login_backoff)
        self.hashing = hashing or Hashing()
        self.per_address = throttle(name="addr", limit=50, window=900, lockout=900)

    async def login(self, username: str, password: str, address: str) -> Login:
        """A new session for these credentials. Raises ServiceError(unauthenticated|rate_limited)."""
        await self._refuse_if_throttled(*_keys(username, address))
        creds = await accounts.credentials(self._pool, username)
        if not await self._verified(username, creds, password, address):
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "wrong username or password")
        assert creds is not None
        token = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + self._ttl
        reset = await accounts.create_session(self._pool, token_hash(token), creds.user.id, expires_at)
        return Login(token, creds.user, expires_at, reset)

    async def _verified(self, username: str, creds: accounts.Credentials | None, password: str, address: str) -> bool:
        """Whether `password` is the one of `creds` (None: no such account — argon2 runs all the
        same), counted by the login throttle per username and per address. Raises RateLimited
        while either is slowed or locked, the right password included."""
        user_key, addr_key = _keys(username, address)
        # Count the attempt before verifying it: guesses sent at once on many connections all
        # count, and those past the limit are refused without an argon2 verification.
        on_user = await self.per_user.reserve(user_key)
        on_address = await self.per_address.reserve(addr_key)
        if not (on_user.allowed and on_address.allowed):
            await self._locked(creds, on_user.locked)
            await self._refuse_if_throttled(user_key, addr_key)
            raise RateLimited(1.0, "too many failed logins; try again in a moment")
        async with self.hashing.slot():
            ok = await asyncio.to_thread(_verify, creds.password_hash if creds else None, password)
        if not ok or creds is None:
            await self.per_user.confirm(user_key, on_user.token)
            await self.per_address.confirm(addr_key, on_address.token)
            await self._locked(creds, on_user.locked)
            if on_user.locked or on_address.locked:
                # This failure locked the username (or the address): it says so now, as the next
                # try would (429 with the lock's wait), not "wrong password" — and alike for an
                # unknown username, which is counted and locked the same way.
                await self._refuse_if_throttled(user_key, addr_key)
            return False
        await self.per_user.release(user_key, on_user.token)
        await self.per_address.release(addr_key, on_address.token)
        await self.per_user.cleared(user_key)
        return True

    async def prove(self, user: User, password: Any, address: str, change: str) -> accounts.Credentials:
        """The signed-in `user`'s credentials, once they proved they know their password again
        (before `change`, policy.decide_own_account: 'password' or 'delete'). Throttled as a login
        is, on the same counts: a stolen session cannot be used to try passwords. Raises
        forbidden (a pupil; a wrong password), rate_limited, not_found (the account is gone)."""
        if not isinstance(password, str) or not password or len(password) > 200:
            raise ServiceError(ErrorCode.INVALID_FIELD, "password: your current password is required")
        await self._refuse_if_throttled(*_keys(user.username, address))
        creds = await database(accounts.credentials_of(self._pool, user.id))
        if creds is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "this account no longer exists")
        refusal = decide_own_account(creds.kind, change)
        if refusal is not None:
            raise Refused(refusal)
        if not await self._verified(creds.user.username, creds, password, address):
            raise ServiceError(ErrorCode.FORBIDDEN, "that is not your current password")
        return creds

    async def change_password(self, user: User, current: Any, new: Any, address: str) -> tuple[Login, int]:
        """The account's own password change (adults; pupils' are reset by their teachers): the
        current password proved, then every session of the account ends — this one too — and
        their open sockets close on every process; the caller gets a new session (a login), and
        how many sessions ended. Of several changes at once one wins; the others answer conflict."""
        if not isinstance(new, str) or not MIN_ADULT_PASSWORD <= len(new) <= 200:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"new_password must have {MIN_ADULT_PASSWORD} to 200 characters")
        if new == current:
            raise ServiceError(ErrorCode.INVALID_FIELD, "new_password is your current password: choose another")
        creds = await self.prove(user, current, address, "password")
        assert creds.password_hash is not None
        async with self.hashing.slot():
            new_hash = await asyncio.to_thread(hash_password, new)
        token = secrets.token_urlsafe(32)
        expires_at = datetime.now(UTC) + self._ttl
        try:
            ended = await database(accounts.change_password(
                self._pool, user_id=user.id, expected_hash=creds.password_hash, password_hash=new_hash,
                token_hash=token_hash(token), expires_at=expires_at,
            ))
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, "your password was changed while this change was checked; "
                               "nothing was changed by this one") from None
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, "this account no longer exists") from None
        await self._changes.send(SessionsRevoked(user.id))
        return Login(token, creds.user, expires_at, None), ended

    async def _locked(self, creds: accounts.Credentials | None, locked: bool) -> None:
        """This failed attempt locked a real account: someone is trying passwords on it, and its
        teachers should know (an entry in each of its projects' audit logs)."""
        if locked and creds is not None:
            await audit.record_lockout(
                self._pool, user_id=creds.user.id, failures=self.per_user.limit, seconds=self.per_user.lockout
            )

    async def unlock(self, username: str) -> bool:
        """Lift the username's login lockout (or back-off) and forget its failures, on every
        process: its teacher unlocked it, or gave it a new password. The address's count is not
        touched (it protects a whole school's address, not one account). True if a lockout or a
        back-off was in force here."""
        return await self.per_user.lift(_keys(username, "?")[0])

    async def _refuse_if_throttled(self, user_key: str, addr_key: str) -> None:
        wait = max(await self.per_user.wait(user_key), await self.per_address.wait(addr_key))
        if wait:
            raise RateLimited(wait, f"too many failed logins; try again in {int(wait) + 1} s")

    async def user_for(self, token: str | None) -> User | None:
        """The user of a live session token, or None (unknown, expired or revoked)."""
        key = session_key(token)
        if key is None:
            return None
        found = await accounts.session_user(self._pool, key)
        return None if found is None else found[0]

    async def logout(self, token: str) -> None:
        await accounts.revoke_session(self._pool, token_hash(token))

    async def logout_everywhere(self, user_id: int) -> int:
        """End every session of the user — other browsers, lost phones — and close their sockets on
        every process. Returns how many sessions ended."""
        ended = await database(accounts.revoke_all_sessions(self._pool, user_id))
        await self._changes.send(SessionsRevoked(user_id))
        return ended
