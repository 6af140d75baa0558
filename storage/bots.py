"""Bot tokens: one space, one scope (journal entries, or activity records). Stored as SHA-256;
creation and revocation are audited. A bot answers to the teacher admin who made it: the schema
refuses a bot from anyone else and revokes a creator's bots when they leave the project or stop
being a teacher admin there (0017_bot_creator_rights.sql), so every path that changes a
membership — the services, the CLI, SQL by hand — does it in its own transaction."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from . import audit
from .db import read, transaction


@dataclass(frozen=True, slots=True)
class Bot:
    id: int
    space_id: int
    user_id: int  # the bot's own user: the author of its entries
    name: str
    created_by: int | None
    created_by_name: str | None
    scope: str = "journal"  # or "activity": posts activity records for the rest of the TwinSpace
    actors: tuple[int, ...] | None = None  # an activity token made for these members only (None: any)
    space_closed: bool = False  # its project is closed (as read with the token)
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class BotRow:
    """A bot as its project's teacher admins list it (never its token's hash)."""

    id: int
    name: str
    scope: str
    created_by: int | None
    created_by_name: str | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_reason: str | None  # 'revoked' (by a teacher admin), 'creator_left', 'creator_demoted'
    actors: tuple[int, ...] | None


# How often a bot's last use is written: a busy bot (one post a second) writes once a minute.
USE_RESOLUTION = timedelta(minutes=1)


async def create(
    pool: asyncpg.Pool, *, space_id: int, name: str, created_by: int | None, token_hash: bytes,
    scope: str = "journal", actors: tuple[int, ...] | None = None,
) -> Bot:
    """A new bot of `space_id`, posting as a user named `name`. Raises NotTeacherAdmin when
    `created_by` is not a teacher admin of the space at commit (the schema checks it under a
    lock on their membership)."""
    async with transaction(pool, "create_bot") as conn:
        creator = None
        if created_by is not None:
            creator = await conn.fetchval("SELECT display_name FROM users WHERE id = $1", created_by)
        user_id = await conn.fetchval(
            "INSERT INTO users (username, display_name, platform_role, school) VALUES ($1, $2, 'bot', $3) RETURNING id",
            f"bot-{secrets.token_hex(8)}", name, f"bot · {creator}" if creator else "bot",
        )
        bot_id = await conn.fetchval(
            "INSERT INTO bots (space_id, user_id, token_hash, created_by, scope, actors)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            space_id, user_id, token_hash, created_by, scope, None if actors is None else list(actors),
        )
        details: dict[str, object] = {"name": name, "scope": scope}
        if actors is not None:
            details["actors"] = list(actors)
        await audit.record(
            conn, space_id=space_id, actor_id=created_by, action="bot.create", target_kind="bot", target_id=bot_id,
            details=details,
        )
    return Bot(bot_id, space_id, user_id, name, created_by, creator, scope, actors)


async def by_token(pool: asyncpg.Pool, token_hash: bytes) -> Bot | None:
    """The bot holding this token, unless it was revoked; with whether its project is closed
    (read here, in the same statement, so that a project closed by any process or by the CLI
    refuses the token at once)."""
    async with read(pool, "bot_by_token") as conn:
        r = await conn.fetchrow(
            "SELECT b.id, b.space_id, b.user_id, u.display_name AS name, b.created_by, c.display_name AS creator,"
            " b.scope, b.actors, s.closed_at IS NOT NULL AS closed, b.last_used_at"
            " FROM bots b JOIN users u ON u.id = b.user_id JOIN spaces s ON s.id = b.space_id"
            " LEFT JOIN users c ON c.id = b.created_by"
            " WHERE b.token_hash = $1 AND b.revoked_at IS NULL",
            token_hash,
        )
    if r is None:
        return None
    return Bot(
        r["id"], r["space_id"], r["user_id"], r["name"], r["created_by"], r["creator"], r["scope"],
        None if r["actors"] is None else tuple(r["actors"]), r["closed"], r["last_used_at"],
    )


async def mark_used(pool: asyncpg.Pool, bot_id: int) -> None:
    """Note that the bot's token was just used — unless that was noted less than a minute ago
    (USE_RESOLUTION): `last_used_at` is right to the minute, and a busy bot writes once a minute."""
    async with transaction(pool, "bot_used") as conn:
        await conn.execute(
            "UPDATE bots SET last_used_at = now()"
            " WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - $2::interval)",
            bot_id, USE_RESOLUTION,
        )


async def of_space(pool: asyncpg.Pool, space_id: int) -> list[BotRow]:
    """Every bot of the space, revoked ones included, oldest first."""
    async with read(pool, "bots_of_space") as conn:
        rows = await conn.fetch(
            "SELECT b.id, u.display_name AS name, b.scope, b.created_by, c.display_name AS creator, b.created_at,"
            " b.last_used_at, b.revoked_at, b.revoked_reason, b.actors"
            " FROM bots b JOIN users u ON u.id = b.user_id LEFT JOIN users c ON c.id = b.created_by"
            " WHERE b.space_id = $1 ORDER BY b.id",
            space_id,
        )
    return [
        BotRow(r["id"], r["name"], r["scope"], r["created_by"], r["creator"], r["created_at"], r["last_used_at"],
               r["revoked_at"], r["revoked_reason"], None if r["actors"] is None else tuple(r["actors"]))
        for r in rows
    ]


async def revoke(pool: asyncpg.Pool, *, space_id: int, bot_id: int, actor_id: int) -> bool:
    """A teacher admin revokes a bot of the space (reason 'revoked'); False if it has no active
    bot `bot_id`."""
    async with transaction(pool, "revoke_bot") as conn:
        found = await conn.fetchval(
            "UPDATE bots SET revoked_at = now(), revoked_reason = 'revoked'"
            " WHERE id = $1 AND space_id = $2 AND revoked_at IS NULL RETURNING id",
            bot_id, space_id,
        )
        if found is None:
            return False
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="bot.revoke", target_kind="bot", target_id=bot_id,
            reason="revoked",
        )
    return True


async def user_ids(pool: asyncpg.Pool, space_id: int) -> set[int]:
    """The users the space's bots post as (the public view names them)."""
    async with read(pool, "bot_user_ids") as conn:
        rows = await conn.fetch("SELECT user_id FROM bots WHERE space_id = $1", space_id)
    return {r["user_id"] for r in rows}
