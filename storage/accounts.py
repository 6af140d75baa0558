"""Users and their login sessions.

Only hashes are stored: argon2 hashes of passwords (made by the caller, realtime/services/auth.py) and
SHA-256 hashes of session tokens, so a copy of the database opens no account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit
from .db import read, transaction
from .errors import Conflict, NotFound


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    display_name: str
    platform_role: str | None
    school: str
    language: str | None = None  # the page's language the account chose (0024_languages.sql); None: the browser's


@dataclass(frozen=True, slots=True)
class Credentials:
    user: User
    password_hash: str | None
    kind: str = "adult"  # adult | pupil (0015_account_home.sql): pupils never change their own password


_USER_COLUMNS = "id, username, display_name, platform_role, school, language"


def user_from_row(r: asyncpg.Record) -> User:
    return User(r["id"], r["username"], r["display_name"], r["platform_role"], r["school"], r.get("language"))


async def create_user(
    pool: asyncpg.Pool,
    *,
    username: str,
    display_name: str,
    password_hash: str | None,
    school: str = "",
    platform_role: str | None = None,
) -> User:
    """Insert a user. Raises Conflict if the username is taken."""
    async with transaction(pool, "create_user") as conn:
        r = await conn.fetchrow(
            "INSERT INTO users (username, display_name, password_hash, school, platform_role)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}",
            username, display_name, password_hash, school, platform_role,
        )
    return user_from_row(r)


async def credentials(pool: asyncpg.Pool, username: str) -> Credentials | None:
    """The user and password hash for a login attempt, or None for an unknown username."""
    async with read(pool, "credentials") as conn:
        r = await conn.fetchrow(f"SELECT {_USER_COLUMNS}, password_hash, kind FROM users WHERE username = $1", username)
    return None if r is None else Credentials(user_from_row(r), r["password_hash"], r["kind"])


async def credentials_of(pool: asyncpg.Pool, user_id: int) -> Credentials | None:
    """credentials() of an account by its id (a signed-in user proving their password again);
    None for an account that does not exist or was erased."""
    async with read(pool, "credentials_of") as conn:
        r = await conn.fetchrow(
            f"SELECT {_USER_COLUMNS}, password_hash, kind FROM users WHERE id = $1 AND erased_at IS NULL", user_id
        )
    return None if r is None else Credentials(user_from_row(r), r["password_hash"], r["kind"])


async def change_password(
    pool: asyncpg.Pool, *, user_id: int, expected_hash: str, password_hash: str, token_hash: bytes,
    expires_at: datetime,
) -> int:
    """The account's own password change: the new hash, if the stored one is still
    `expected_hash` (the one the current password was checked against — two changes at once do
    not both win); every session ended and a new one started (`token_hash`), in one transaction.
    Returns how many sessions ended. Raises Conflict if the password changed meanwhile, NotFound
    if the account is gone."""
    async with transaction(pool, "change_password") as conn:
        stored = await conn.fetchrow(
            "SELECT password_hash FROM users WHERE id = $1 AND erased_at IS NULL FOR UPDATE", user_id
        )
        if stored is None:
            raise NotFound(f"user {user_id}")
        if stored["password_hash"] != expected_hash:
            raise Conflict(f"user {user_id}: the password changed meanwhile")
        await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
        ended = await conn.fetchval(
            "WITH ended AS (UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
            " RETURNING 1) SELECT count(*) FROM ended",
            user_id,
        )
        await conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)", token_hash, user_id, expires_at
        )
        # The account's own act, in no project's log (a teacher reading their project's log has
        # no business knowing when a colleague or a parent changed their password).
        await audit.record(
            conn, space_id=None, actor_id=user_id, action="account.password_changed", target_kind="user",
            target_id=user_id, details={"sessions_ended": ended},
        )
    return ended


async def get_user(pool: asyncpg.Pool, user_id: int) -> User:
    async with read(pool, "get_user") as conn:
        r = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
    if r is None:
        raise NotFound(f"user {user_id}")
    return user_from_row(r)


async def user_by_username(pool: asyncpg.Pool, username: str) -> User | None:
    async with read(pool, "user_by_username") as conn:
        r = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE username = $1", username)
    return None if r is None else user_from_row(r)


async def set_password_hash(pool: asyncpg.Pool, user_id: int, password_hash: str) -> None:
    async with transaction(pool, "set_password_hash") as conn:
        status = await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)
    if status.endswith(" 0"):
        raise NotFound(f"user {user_id}")


@dataclass(frozen=True, slots=True)
class PasswordReset:
    """Who set the password the user just logged in with, and when (a teacher's reset)."""

    by_name: str
    by_school: str
    at: datetime


async def create_session(
    pool: asyncpg.Pool, token_hash: bytes, user_id: int, expires_at: datetime
) -> PasswordReset | None:
    """Start a session. Returns who reset the password, when this is the first session since."""
    async with transaction(pool, "create_session") as conn:
        r = await conn.fetchrow(
            "SELECT b.display_name, b.school, u.password_reset_at FROM users u JOIN users b ON b.id = u.password_reset_by"
            " WHERE u.id = $1 AND u.password_reset_at > coalesce("
            "(SELECT max(created_at) FROM sessions WHERE user_id = $1), '-infinity')",
            user_id,
        )
        await conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
            token_hash, user_id, expires_at,
        )
    return None if r is None else PasswordReset(r["display_name"], r["school"], r["password_reset_at"])


async def set_language(pool: asyncpg.Pool, user_id: int, language: str | None) -> None:
    """The account's own language (None: the browser's languages decide)."""
    async with transaction(pool, "set_language") as conn:
        await conn.execute("UPDATE users SET language = $2 WHERE id = $1 AND erased_at IS NULL", user_id, language)


async def session_user(pool: asyncpg.Pool, token_hash: bytes) -> tuple[User, datetime] | None:
    """The user and expiry of a live session (not expired, not revoked), or None."""
    async with read(pool, "session_user") as conn:
        r = await conn.fetchrow(
            f"SELECT {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))}, s.expires_at"
            " FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()",
            token_hash,
        )
    return None if r is None else (user_from_row(r), r["expires_at"])


async def session_users(conn: asyncpg.Connection, token_hashes: list[bytes]) -> list[tuple[User, datetime] | None]:
    """session_user() for many tokens in one statement (storage/reader.py gathers a reconnect
    storm's hellos): one answer per hash, in order."""
    rows = await conn.fetch(
        f"SELECT s.token_hash, {', '.join('u.' + c for c in _USER_COLUMNS.split(', '))}, s.expires_at"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.token_hash = ANY($1::bytea[]) AND s.revoked_at IS NULL AND s.expires_at > now()",
        token_hashes,
    )
    found = {bytes(r["token_hash"]): (user_from_row(r), r["expires_at"]) for r in rows}
    return [found.get(h) for h in token_hashes]


async def revoke_all_sessions(pool: asyncpg.Pool, user_id: int) -> int:
    """End every session of the user ("log out everywhere"); how many there were."""
    async with transaction(pool, "revoke_all_sessions") as conn:
        status = await conn.execute(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id
        )
    return int(status.split()[-1])


async def revoke_session(pool: asyncpg.Pool, token_hash: bytes) -> None:
    async with transaction(pool, "revoke_session") as conn:
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL", token_hash
        )
