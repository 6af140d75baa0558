"""Pupil accounts: created in bulk by a teacher, with generated usernames and passwords (pupils
need no e-mail address), and password resets by teachers. Pupils never change their own."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from . import activity, audit
from .activity import NewActivity
from .db import read, transaction


@dataclass(frozen=True, slots=True)
class NewPupil:
    username: str
    display_name: str
    school: str
    password_hash: str


@dataclass(frozen=True, slots=True)
class Membership:
    role: str
    invited_by: int | None
    home_space_id: int | None  # the project that made the account, if it is a pupil's


async def invite(
    pool: asyncpg.Pool, *, space_id: int, actor_id: int, role: str, pupils: list[NewPupil]
) -> list[int]:
    """Create the accounts and make them members with `role`, all or none, in one transaction;
    each gets a mailbox and a feed record. Returns the new user ids, in order. Raises Conflict if
    a username is taken."""
    async with transaction(pool, "invite_pupils") as conn:
        ids = await conn.fetch(
            "INSERT INTO users (username, display_name, school, password_hash)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) RETURNING id",
            [p.username for p in pupils], [p.display_name for p in pupils], [p.school for p in pupils],
            [p.password_hash for p in pupils],
        )
        user_ids = [r["id"] for r in ids]
        await conn.execute(
            "INSERT INTO members (space_id, user_id, role, invited_by) SELECT $1, u, $2, $3 FROM unnest($4::bigint[]) u",
            space_id, role, actor_id, user_ids,
        )
        await conn.execute(
            "INSERT INTO mailboxes (space_id, owner_id) SELECT $1, u FROM unnest($2::bigint[]) u", space_id, user_ids
        )
        await activity.record(conn, [
            NewActivity(space_id, "member.joined", activity.member_record_area(role), actor_id, user_id=u,
                        details={"role": role})
            for u in user_ids
        ])
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="member.invite", target_kind="users", target_id=None,
            details={"role": role, "user_ids": user_ids},
        )
    return user_ids


async def membership(pool: asyncpg.Pool, space_id: int, user_id: int) -> Membership | None:
    async with read(pool, "membership") as conn:
        r = await conn.fetchrow(
            "SELECT m.role, m.invited_by, u.home_space_id FROM members m JOIN users u ON u.id = m.user_id"
            " WHERE m.space_id = $1 AND m.user_id = $2",
            space_id, user_id,
        )
    return None if r is None else Membership(r["role"], r["invited_by"], r["home_space_id"])


async def reset_password(pool: asyncpg.Pool, *, space_id: int, user_id: int, actor_id: int, password_hash: str) -> int:
    """Set a new password (remembering who set it, to tell the pupil at their next login) and end
    every session of the user; written to the audit log of every project the account belongs to.
    Returns how many sessions ended."""
    async with transaction(pool, "reset_password") as conn:
        await conn.execute(
            "UPDATE users SET password_hash = $2, password_reset_by = $3, password_reset_at = now() WHERE id = $1",
            user_id, password_hash, actor_id,
        )
        ended = await conn.fetchval(
            "WITH ended AS (UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL"
            " RETURNING 1) SELECT count(*) FROM ended",
            user_id,
        )
        for project in await conn.fetch("SELECT space_id FROM members WHERE user_id = $1 ORDER BY space_id", user_id):
            await audit.record(
                conn, space_id=project["space_id"], actor_id=actor_id, action="member.password_reset",
                target_kind="user", target_id=user_id, details={"by_project": space_id},
            )
    return ended

