"""Bot tokens: one space, journal entries only. Stored as SHA-256; creation and revocation are
audited."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

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


async def create(
    pool: asyncpg.Pool, *, space_id: int, name: str, created_by: int | None, token_hash: bytes, scope: str = "journal"
) -> Bot:
    """A new bot of `space_id`, posting as a user named `name`."""
    async with transaction(pool, "create_bot") as conn:
        creator = None
        if created_by is not None:
            creator = await conn.fetchval("SELECT display_name FROM users WHERE id = $1", created_by)
        user_id = await conn.fetchval(
            "INSERT INTO users (username, display_name, platform_role, school) VALUES ($1, $2, 'bot', $3) RETURNING id",
            f"bot-{secrets.token_hex(8)}", name, f"bot · {creator}" if creator else "bot",
        )
        bot_id = await conn.fetchval(
            "INSERT INTO bots (space_id, user_id, token_hash, created_by, scope) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            space_id, user_id, token_hash, created_by, scope,
        )
        await audit.record(
            conn, space_id=space_id, actor_id=created_by, action="bot.create", target_kind="bot", target_id=bot_id,
            details={"name": name, "scope": scope},
        )
    return Bot(bot_id, space_id, user_id, name, created_by, creator, scope)


async def by_token(pool: asyncpg.Pool, token_hash: bytes) -> Bot | None:
    """The bot holding this token, unless it was revoked."""
    async with read(pool, "bot_by_token") as conn:
        r = await conn.fetchrow(
            "SELECT b.id, b.space_id, b.user_id, u.display_name AS name, b.created_by, c.display_name AS creator, b.scope"
            " FROM bots b JOIN users u ON u.id = b.user_id LEFT JOIN users c ON c.id = b.created_by"
            " WHERE b.token_hash = $1 AND b.revoked_at IS NULL",
            token_hash,
        )
    if r is None:
        return None
    return Bot(r["id"], r["space_id"], r["user_id"], r["name"], r["created_by"], r["creator"], r["scope"])


async def revoke(pool: asyncpg.Pool, *, space_id: int, bot_id: int, actor_id: int) -> bool:
    async with transaction(pool, "revoke_bot") as conn:
        found = await conn.fetchval(
            "UPDATE bots SET revoked_at = now() WHERE id = $1 AND space_id = $2 AND revoked_at IS NULL RETURNING id",
            bot_id, space_id,
        )
        if found is None:
            return False
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="bot.revoke", target_kind="bot", target_id=bot_id,
        )
    return True


async def user_ids(pool: asyncpg.Pool, space_id: int) -> set[int]:
    """The users the space's bots post as (the public view names them)."""
    async with read(pool, "bot_user_ids") as conn:
        rows = await conn.fetch("SELECT user_id FROM bots WHERE space_id = $1", space_id)
    return {r["user_id"] for r in rows}
