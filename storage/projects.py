"""The platform's view of its projects: made with their rooms and first teacher admin, listed,
renamed, and closed all at once (at the start of a school year). What happens inside one project
is spaces.py's; who may do any of this is the caller's to decide (realtime/policy.decide_platform).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import activity, audit
from .accounts import User, user_from_row
from .activity import NewActivity
from .db import read, transaction
from .errors import Conflict, NotFound
from .spaces import _ROOM_COLUMNS, _SPACE_COLUMNS, Room, Space, _room, _space, put_member


@dataclass(frozen=True, slots=True)
class Made:
    space: Space
    rooms: list[Room]  # the journal first, then the rooms asked for, in order
    admin: User | None  # its first teacher admin


async def create_project(
    pool: asyncpg.Pool, *, slug: str, name: str, description: str, rooms: list[tuple[str, str]],
    admin: str | None, actor_id: int | None,
) -> Made:
    """A project with its feed, its journal, `rooms` ((area, name) each) and, with `admin` (a
    username), its first teacher admin — all or nothing, in one transaction, written to the new
    project's audit log (`space.create`, then the admin's `member.joined`). The first teacher
    admin is an adult's account without a platform role: a pupil's, a moderator's, an
    administrator's, a bot's and an unknown username all raise the same NotFound. Raises
    Conflict if the slug is taken."""
    async with transaction(pool, "create_project") as conn:
        first = None
        if admin is not None:
            r = await conn.fetchrow(
                "SELECT id, username, display_name, platform_role, school FROM users"
                " WHERE username = $1 AND platform_role IS NULL AND kind = 'adult' FOR UPDATE",
                admin,
            )
            if r is None:
                raise NotFound(f"adult account {admin}")
            first = user_from_row(r)
        # A slug taken (now, or by a request at once) is a unique violation: Conflict (db.py).
        r = await conn.fetchrow(
            f"INSERT INTO spaces (slug, name, description) VALUES ($1, $2, $3) RETURNING {_SPACE_COLUMNS}",
            slug, name, description,
        )
        space = _space(r)
        await conn.execute("INSERT INTO feeds (space_id) VALUES ($1)", space.id)
        made = [_room(await conn.fetchrow(
            "INSERT INTO rooms (space_id, area, name, kind) VALUES ($1, 'home', 'Project journal', 'journal')"
            f" RETURNING {_ROOM_COLUMNS}", space.id,
        ))]
        for area, room_name in rooms:
            made.append(_room(await conn.fetchrow(
                f"INSERT INTO rooms (space_id, area, name) VALUES ($1, $2, $3) RETURNING {_ROOM_COLUMNS}",
                space.id, area, room_name,
            )))
        await audit.record(
            conn, space_id=space.id, actor_id=actor_id, action="space.create", target_kind="space",
            target_id=space.id, details={"slug": slug, "name": name},
        )
        if first is not None:
            await put_member(conn, space.id, first.id, "teacher_admin", actor_id=actor_id)
    return Made(space, made, first)


@dataclass(frozen=True, slots=True)
class Project:
    space: Space
    created_at: datetime
    members: int
    teacher_admins: list[dict[str, Any]]  # id, username, name, school: whom to ask about it


async def list_projects(
    pool: asyncpg.Pool, *, closed: bool | None, before: int | None, limit: int
) -> list[Project]:
    """Projects newest first (ids below `before`), only the closed or the open ones if `closed`
    says so, each with its number of members and its teacher admins (adults: their names are
    the platform's to know; nobody else of a project is named here)."""
    async with read(pool, "list_projects") as conn:
        rows = await conn.fetch(
            f"SELECT {', '.join('s.' + c for c in _SPACE_COLUMNS.split(', '))}, s.created_at,"
            " (SELECT count(*) FROM members m WHERE m.space_id = s.id) AS members,"
            " (SELECT coalesce(json_agg(json_build_object('id', u.id, 'username', u.username,"
            "   'name', u.display_name, 'school', u.school) ORDER BY u.id), '[]')"
            "  FROM members m JOIN users u ON u.id = m.user_id"
            "  WHERE m.space_id = s.id AND m.role = 'teacher_admin') AS teacher_admins"
            " FROM spaces s WHERE ($1::boolean IS NULL OR (s.closed_at IS NOT NULL) = $1)"
            " AND ($2::bigint IS NULL OR s.id < $2) ORDER BY s.id DESC LIMIT $3",
            closed, before, limit,
        )
    return [Project(_space(r), r["created_at"], r["members"], json.loads(r["teacher_admins"])) for r in rows]


@dataclass(frozen=True, slots=True)
class Renamed:
    space: Space  # as it is now
    changed: bool  # False: it already had that name and description (nothing written)


async def rename_project(
    pool: asyncpg.Pool, space_id: int, *, name: str | None, description: str | None, actor_id: int
) -> Renamed:
    """A new name and/or description (None: unchanged), with `space.rename` in the project's
    audit log (what it was and what it is). Renames at once are each written once, in the order
    they took the row lock; the last stands. Raises NotFound if there is no such project."""
    async with transaction(pool, "rename_project") as conn:
        r = await conn.fetchrow(f"SELECT {_SPACE_COLUMNS} FROM spaces WHERE id = $1 FOR UPDATE", space_id)
        if r is None:
            raise NotFound(f"space {space_id}")
        new_name = r["name"] if name is None else name
        new_description = r["description"] if description is None else description
        if (new_name, new_description) == (r["name"], r["description"]):
            return Renamed(_space(r), False)
        details: dict[str, Any] = {}
        if new_name != r["name"]:
            details.update(name=new_name, was=r["name"])
        if new_description != r["description"]:
            details.update(description=new_description, description_was=r["description"])
        r = await conn.fetchrow(
            f"UPDATE spaces SET name = $2, description = $3 WHERE id = $1 RETURNING {_SPACE_COLUMNS}",
            space_id, new_name, new_description,
        )
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="space.rename", target_kind="space",
            target_id=space_id, details=details,
        )
    return Renamed(_space(r), True)


async def close_all(pool: asyncpg.Pool, *, actor_id: int) -> list[int]:
    """Close every open project (seed 000_…: all are closed at the start of each school year), in
    one transaction: each one closed is written to its own audit log (`space.close`, with
    `{"all": true}`) and its feed (`space.closed`), as a teacher admin's closing is. Returns the
    ids of the projects closed now, in order; those closed already are left as they were (closed
    since when they were), so that two requests at once close each project once."""
    async with transaction(pool, "close_all_projects") as conn:
        rows = await conn.fetch(
            "WITH closed AS (UPDATE spaces SET closed_at = now() WHERE closed_at IS NULL RETURNING id)"
            " SELECT id FROM closed ORDER BY id"
        )
        ids = [r["id"] for r in rows]
        for space_id in ids:
            await audit.record(
                conn, space_id=space_id, actor_id=actor_id, action="space.close", target_kind="space",
                target_id=space_id, details={"all": True},
            )
        await activity.record(conn, [NewActivity(space_id, "space.closed", None, actor_id) for space_id in ids])
    return ids


async def add_moderator(pool: asyncpg.Pool, space_id: int, username: str, role: str, *, actor_id: int) -> User:
    """Make the platform moderator `username` a member of project `space_id` with `role` (their
    mailbox, the feed's and the audit log's `member.joined`). Raises NotFound — the same for an
    unknown username and an account that is not a platform moderator's — and Conflict if they
    are a member already."""
    async with transaction(pool, "add_moderator") as conn:
        r = await conn.fetchrow(
            "SELECT id, username, display_name, platform_role, school FROM users"
            " WHERE username = $1 AND platform_role = 'moderator' FOR UPDATE",
            username,
        )
        if r is None:
            raise NotFound(f"moderator {username}")
        user = user_from_row(r)
        if await conn.fetchval("SELECT 1 FROM members WHERE space_id = $1 AND user_id = $2", space_id, user.id):
            raise Conflict("already a member")
        await put_member(conn, space_id, user.id, role, actor_id=actor_id)
    return user
