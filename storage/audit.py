"""The append-only audit log: who did what to what, when and why.

The table refuses UPDATE, DELETE and TRUNCATE (a trigger in 0001_core.sql); rows are written in
the same transaction as the act they record, so there is no act without its entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .db import read, transaction


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    space_id: int | None
    actor_id: int | None
    action: str
    target_kind: str
    target_id: int | None
    reason: str
    details: dict[str, Any]
    created_at: datetime
    actor_name: str | None = None


async def record(
    conn: asyncpg.Connection,
    *,
    space_id: int | None,
    actor_id: int | None,
    action: str,
    target_kind: str,
    target_id: int | None,
    reason: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry, in the caller's transaction."""
    await conn.execute(
        "INSERT INTO audit_log (space_id, actor_id, action, target_kind, target_id, reason, details)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        space_id, actor_id, action, target_kind, target_id, reason, json.dumps(details or {}),
    )


async def record_lockout(pool: asyncpg.Pool, *, user_id: int, failures: int, seconds: float) -> None:
    """A login was locked after repeated failures: one entry in each project the user is in, so
    that its teacher admins see it in their log."""
    async with transaction(pool, "record_lockout") as conn:
        await conn.execute(
            "INSERT INTO audit_log (space_id, actor_id, action, target_kind, target_id, details)"
            " SELECT space_id, NULL, 'login.locked', 'user', $1, $2::jsonb FROM members WHERE user_id = $1",
            user_id, json.dumps({"failures": failures, "locked_seconds": seconds}),
        )


# What ends a login lockout before its time, as the member list shows it (storage/members.py):
# a teacher lifting it, or a teacher giving the pupil a new password.
LOCK_LIFTED_BY = ("login.unlocked", "member.password_reset")

# Whether project $2's log shows a lockout of user $1 still running: not over, and neither lifted
# nor followed by a new password since.
_LOCK_RUNNING = (
    "SELECT EXISTS (SELECT 1 FROM audit_log l WHERE l.space_id = $2 AND l.action = 'login.locked'"
    " AND l.target_id = $1"
    " AND l.created_at + make_interval(secs => coalesce((l.details->>'locked_seconds')::float8, 0)) > now()"
    " AND NOT EXISTS (SELECT 1 FROM audit_log x WHERE x.space_id = $2 AND x.target_id = $1"
    "   AND x.action = ANY($3::text[]) AND x.created_at >= l.created_at))"
)


async def record_unlock(pool: asyncpg.Pool, *, user_id: int, space_id: int, actor_id: int) -> bool:
    """A teacher of project `space_id` lifted the login lockout of `user_id`: one `login.unlocked`
    entry in each project the user is in (as the lockout and a password reset are), written if
    this project's log shows that lockout still running — not for a lock already over or already
    lifted. The account's row is locked first, so that of unlocks sent at once one writes.
    Returns whether it wrote."""
    async with transaction(pool, "record_unlock") as conn:
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
        running = await conn.fetchval(_LOCK_RUNNING, user_id, space_id, list(LOCK_LIFTED_BY))
        if not running:
            return False
        await conn.execute(
            "INSERT INTO audit_log (space_id, actor_id, action, target_kind, target_id, details)"
            " SELECT space_id, $2, 'login.unlocked', 'user', $1, $3::jsonb FROM members WHERE user_id = $1",
            user_id, actor_id, json.dumps({"by_project": space_id}),
        )
    return True


async def entries(
    pool: asyncpg.Pool, space_id: int, limit: int = 100, before: int | None = None, *,
    action: str | None = None, actor_id: int | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> list[AuditEntry]:
    """The space's most recent entries, newest first (with id < before, to page); only those of
    one action, by one actor, written at `since` or after and before `until`, when given."""
    async with read(pool, "audit_entries") as conn:
        rows = await conn.fetch(
            "SELECT a.id, a.space_id, a.actor_id, u.display_name AS actor_name, a.action, a.target_kind,"
            " a.target_id, a.reason, a.details, a.created_at"
            " FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id"
            " WHERE a.space_id = $1 AND ($3::bigint IS NULL OR a.id < $3)"
            " AND ($4::text IS NULL OR a.action = $4) AND ($5::bigint IS NULL OR a.actor_id = $5)"
            " AND ($6::timestamptz IS NULL OR a.created_at >= $6) AND ($7::timestamptz IS NULL OR a.created_at < $7)"
            " ORDER BY a.id DESC LIMIT $2",
            space_id, limit, before, action, actor_id, since, until,
        )
    return [
        AuditEntry(
            r["id"], r["space_id"], r["actor_id"], r["action"], r["target_kind"], r["target_id"], r["reason"],
            json.loads(r["details"]), r["created_at"], r["actor_name"],
        )
        for r in rows
    ]
