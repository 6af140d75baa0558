"""The member list of a project, as its members and teachers see it (realtime/services/projects.py
decides who sees which columns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .audit import LOCK_LIFTED_BY
from .db import read


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: int
    username: str
    name: str
    school: str
    role: str
    invited_by: int | None
    joined_at: datetime
    locked_at: datetime | None  # the last time repeated failed logins locked this account
    lockouts: int  # how many times in the last 30 days
    locked_until: datetime | None  # when that last lock ended, or ends (locked_at + its length, or
    # when a teacher lifted it or gave a new password, if sooner)
    home_space_id: int | None = None  # the project that made the account, if it is a pupil's
    staff: bool = False  # the account has a platform role (a moderator placed in the project)


async def member_list(pool: asyncpg.Pool, space_id: int) -> list[MemberRow]:
    """The project's members by role then name, each with the lockouts of their login (the audit
    rows written in this project when repeated failures locked it)."""
    async with read(pool, "member_list") as conn:
        rows = await conn.fetch(
            "SELECT u.id, u.username, u.display_name, u.school, m.role, m.invited_by, m.joined_at,"
            " u.home_space_id, u.platform_role IS NOT NULL AS staff,"
            " l.locked_at, coalesce(l.lockouts, 0) AS lockouts,"
            " CASE WHEN f.lifted_at IS NULL THEN l.locked_until ELSE least(l.locked_until, f.lifted_at) END"
            "   AS locked_until"
            " FROM members m JOIN users u ON u.id = m.user_id"
            " LEFT JOIN LATERAL (SELECT max(a.created_at) AS locked_at,"
            "   count(*) FILTER (WHERE a.created_at > now() - interval '30 days') AS lockouts,"
            "   max(a.created_at + make_interval(secs => coalesce((a.details->>'locked_seconds')::float8, 0)))"
            "     AS locked_until"
            "   FROM audit_log a WHERE a.space_id = m.space_id AND a.action = 'login.locked' AND a.target_id = m.user_id"
            " ) l ON true"
            # The last lock ended early if a teacher lifted it, or gave a new password, since it began.
            " LEFT JOIN LATERAL (SELECT min(x.created_at) AS lifted_at FROM audit_log x"
            "   WHERE l.locked_at IS NOT NULL AND x.space_id = m.space_id AND x.target_id = m.user_id"
            "   AND x.action = ANY($2::text[]) AND x.created_at >= l.locked_at"
            " ) f ON true"
            " WHERE m.space_id = $1"
            " ORDER BY array_position(ARRAY['teacher_admin','teacher_member','pupil_admin','pupil_member','visitor'],"
            "   m.role), u.display_name, u.id",
            space_id, list(LOCK_LIFTED_BY),
        )
    return [
        MemberRow(r["id"], r["username"], r["display_name"], r["school"], r["role"], r["invited_by"], r["joined_at"],
                  r["locked_at"], r["lockouts"], r["locked_until"], r["home_space_id"], r["staff"])
        for r in rows
    ]
