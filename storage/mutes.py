"""Mutes: who may not post (or send mail) where, until when. Each act is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit
from .db import read, transaction


@dataclass(frozen=True, slots=True)
class Mute:
    space_id: int
    user_id: int
    scope: str  # an area, 'mail', or 'all'
    until: datetime


async def mute(
    pool: asyncpg.Pool, *, space_id: int, user_id: int, scope: str, until: datetime, actor_id: int, reason: str
) -> Mute:
    """Mute `user_id` in `scope` until `until` (replacing an earlier end), and audit it."""
    async with transaction(pool, "mute") as conn:
        await conn.execute(
            "INSERT INTO mutes (space_id, user_id, scope, until, muted_by, reason) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (space_id, user_id, scope)"
            " DO UPDATE SET until = EXCLUDED.until, muted_by = EXCLUDED.muted_by, reason = EXCLUDED.reason,"
            " created_at = now()",
            space_id, user_id, scope, until, actor_id, reason,
        )
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="member.mute", target_kind="user", target_id=user_id,
            reason=reason, details={"scope": scope, "until": until.isoformat()},
        )
    return Mute(space_id, user_id, scope, until)


async def unmute(pool: asyncpg.Pool, *, space_id: int, user_id: int, scope: str, actor_id: int) -> bool:
    """Lift a mute; False if there was none (nothing is audited then)."""
    async with transaction(pool, "unmute") as conn:
        status = await conn.execute(
            "DELETE FROM mutes WHERE space_id = $1 AND user_id = $2 AND scope = $3", space_id, user_id, scope
        )
        if status.endswith(" 0"):
            return False
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="member.unmute", target_kind="user",
            target_id=user_id, details={"scope": scope},
        )
    return True


async def active(pool: asyncpg.Pool, user_id: int) -> list[Mute]:
    """The user's mutes that have not ended yet, in every space."""
    async with read(pool, "active_mutes") as conn:
        rows = await conn.fetch(
            "SELECT space_id, user_id, scope, until FROM mutes WHERE user_id = $1 AND until > now()", user_id
        )
    return [Mute(r["space_id"], r["user_id"], r["scope"], r["until"]) for r in rows]


async def active_of(conn: asyncpg.Connection, user_ids: list[int]) -> list[list[Mute]]:
    """active() of each user of `user_ids`, in order, in one statement."""
    rows = await conn.fetch(
        "SELECT space_id, user_id, scope, until FROM mutes WHERE user_id = ANY($1::bigint[]) AND until > now()",
        user_ids,
    )
    found: dict[int, list[Mute]] = {}
    for r in rows:
        found.setdefault(r["user_id"], []).append(Mute(r["space_id"], r["user_id"], r["scope"], r["until"]))
    return [found.get(u, []) for u in user_ids]


@dataclass(frozen=True, slots=True)
class MuteEntry:
    """A mute in force, as a project's moderators list it."""

    user: dict[str, object]  # {"id", "name", "school"}
    scope: str
    until: datetime
    muted_by: dict[str, object] | None  # {"id", "name"}; None once that account is gone
    reason: str
    created_at: datetime


async def of_space(pool: asyncpg.Pool, space_id: int) -> list[MuteEntry]:
    """The mutes of the project's members that have not ended yet, the one ending soonest first
    (a member removed since is not listed: nothing they could post is waiting on it)."""
    async with read(pool, "space_mutes") as conn:
        rows = await conn.fetch(
            "SELECT m.user_id, u.display_name AS user_name, u.school AS user_school, m.scope, m.until,"
            " m.muted_by, b.display_name AS by_name, m.reason, m.created_at"
            " FROM mutes m JOIN members s ON s.space_id = m.space_id AND s.user_id = m.user_id"
            " JOIN users u ON u.id = m.user_id LEFT JOIN users b ON b.id = m.muted_by"
            " WHERE m.space_id = $1 AND m.until > now() ORDER BY m.until, m.user_id, m.scope",
            space_id,
        )
    return [
        MuteEntry(
            {"id": r["user_id"], "name": r["user_name"], "school": r["user_school"]}, r["scope"], r["until"],
            None if r["muted_by"] is None else {"id": r["muted_by"], "name": r["by_name"]}, r["reason"],
            r["created_at"],
        )
        for r in rows
    ]
