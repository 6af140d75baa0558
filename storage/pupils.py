"""Pupil accounts: created in bulk by a teacher, with generated usernames and passwords (pupils
need no e-mail address), password resets by teachers (pupils never change their own), and a
removed pupil added back by their home project."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import activity, audit
from .activity import NewActivity
from .db import read, transaction
from .errors import Conflict, NotFound
from .spaces import put_member


@dataclass(frozen=True, slots=True)
class NewPupil:
    username: str
    display_name: str
    school: str
    password_hash: str
    language: str | None = None  # the page's language the account starts in (the project's)


@dataclass(frozen=True, slots=True)
class Membership:
    role: str
    invited_by: int | None
    home_space_id: int | None  # the project that made the account, if it is a pupil's
    staff: bool = False  # the account has a platform role (a moderator placed in the project)
    username: str = ""


async def invite(
    pool: asyncpg.Pool, *, space_id: int, actor_id: int, role: str, pupils: list[NewPupil]
) -> list[int]:
    """Create the accounts and make them members with `role`, all or none, in one transaction;
    each gets a mailbox and a feed record. Returns the new user ids, in order. Raises Conflict if
    a username is taken."""
    async with transaction(pool, "invite_pupils") as conn:
        ids = await conn.fetch(
            "INSERT INTO users (username, display_name, school, password_hash, language)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) RETURNING id",
            [p.username for p in pupils], [p.display_name for p in pupils], [p.school for p in pupils],
            [p.password_hash for p in pupils], [p.language for p in pupils],
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
            "SELECT m.role, m.invited_by, u.home_space_id, u.platform_role IS NOT NULL AS staff, u.username"
            " FROM members m JOIN users u ON u.id = m.user_id WHERE m.space_id = $1 AND m.user_id = $2",
            space_id, user_id,
        )
    return None if r is None else Membership(r["role"], r["invited_by"], r["home_space_id"], r["staff"], r["username"])


async def is_home_pupil(pool: asyncpg.Pool, space_id: int, user_id: int) -> bool:
    """Whether `user_id` is a pupil's account made by project `space_id` (its home)."""
    async with read(pool, "is_home_pupil") as conn:
        return bool(await conn.fetchval(
            "SELECT 1 FROM users WHERE id = $1 AND kind = 'pupil' AND home_space_id = $2", user_id, space_id
        ))


async def restore(pool: asyncpg.Pool, *, space_id: int, user_id: int, role: str, actor_id: int) -> None:
    """Make a pupil removed from their home project a member of it again with `role`: the
    mailbox they had is theirs again as they left it (a removal never touches it), their
    messages never left. The feed says `member.joined`; the audit log `member.restored`. Raises
    NotFound if `user_id` is not a pupil's account whose home is this project, Conflict if they
    are a member already. The account's row is locked first, so that re-adds at once make one
    membership: the others see it and raise Conflict."""
    async with transaction(pool, "restore_pupil") as conn:
        home = await conn.fetchval(
            "SELECT 1 FROM users WHERE id = $1 AND kind = 'pupil' AND home_space_id = $2 FOR UPDATE", user_id, space_id
        )
        if home is None:
            raise NotFound(f"former pupil {user_id} of space {space_id}")
        if await conn.fetchval("SELECT 1 FROM members WHERE space_id = $1 AND user_id = $2", space_id, user_id):
            raise Conflict("already a member")
        await put_member(conn, space_id, user_id, role, actor_id=actor_id, invited_by=actor_id,
                         audit_action="member.restored")


@dataclass(frozen=True, slots=True)
class FormerPupil:
    id: int
    username: str
    name: str
    school: str
    removed_at: datetime | None  # when they last left (the audit log's member.removed), if known


async def former_pupils(pool: asyncpg.Pool, space_id: int) -> list[FormerPupil]:
    """The pupils this project made who are not its members now (removed, or left), by name: the
    ones its teachers may add back."""
    async with read(pool, "former_pupils") as conn:
        rows = await conn.fetch(
            "SELECT u.id, u.username, u.display_name, u.school,"
            " (SELECT max(a.created_at) FROM audit_log a WHERE a.space_id = $1 AND a.action = 'member.removed'"
            "   AND a.target_kind = 'user' AND a.target_id = u.id) AS removed_at"
            " FROM users u WHERE u.kind = 'pupil' AND u.home_space_id = $1"
            " AND NOT EXISTS (SELECT 1 FROM members m WHERE m.space_id = $1 AND m.user_id = u.id)"
            " ORDER BY u.display_name, u.id",
            space_id,
        )
    return [FormerPupil(r["id"], r["username"], r["display_name"], r["school"], r["removed_at"]) for r in rows]


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

