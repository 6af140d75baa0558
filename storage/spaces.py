"""Spaces (projects), their members with a role each, and their rooms."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import activity, audit
from .activity import Activity, NewActivity
from .db import read, transaction
from .errors import Conflict, NotFound


@dataclass(frozen=True, slots=True)
class Space:
    id: int
    slug: str
    name: str
    description: str
    closed_at: datetime | None
    public: bool = False  # the name, description and journal are shown without login (off until turned on)
    language: str = "en"  # pupils' new accounts start in it; their login sheets are printed in it

    @property
    def closed(self) -> bool:
        return self.closed_at is not None


@dataclass(frozen=True, slots=True)
class Room:
    id: int
    space_id: int
    area: str
    name: str
    last_seq: int
    kind: str = "room"  # or "journal": the project journal (one per space, in the home area)
    state: str = "active"  # or "archived" (read-only) or "deleted" (gone for the members): ROOM_STATES

    @property
    def archived(self) -> bool:
        return self.state == "archived"

    @property
    def deleted(self) -> bool:
        return self.state == "deleted"


@dataclass(frozen=True, slots=True)
class Membership:
    space: Space
    role: str


_SPACE_COLUMNS = "id, slug, name, description, closed_at, public, language"
_ROOM_COLUMNS = "id, space_id, area, name, last_seq, kind, state"
ROOM_STATES = ("active", "archived", "deleted")


def _space(r: asyncpg.Record) -> Space:
    return Space(r["id"], r["slug"], r["name"], r["description"], r["closed_at"], r["public"], r["language"])


def _room(r: asyncpg.Record) -> Room:
    return Room(r["id"], r["space_id"], r["area"], r["name"], r["last_seq"], r["kind"], r["state"])


async def create_space(
    pool: asyncpg.Pool, *, slug: str, name: str, description: str = "", public: bool = False
) -> Space:
    """Insert a space, its public view off unless `public` says otherwise (the demo's is on).
    Raises Conflict if the slug is taken."""
    async with transaction(pool, "create_space") as conn:
        r = await conn.fetchrow(
            f"INSERT INTO spaces (slug, name, description, public) VALUES ($1, $2, $3, $4) RETURNING {_SPACE_COLUMNS}",
            slug, name, description, public,
        )
        await conn.execute("INSERT INTO feeds (space_id) VALUES ($1)", r["id"])
        await conn.execute(
            "INSERT INTO rooms (space_id, area, name, kind) VALUES ($1, 'home', 'Project journal', 'journal')", r["id"]
        )
    return _space(r)


async def get_space(pool: asyncpg.Pool, space_id: int) -> Space:
    async with read(pool, "get_space") as conn:
        r = await conn.fetchrow(f"SELECT {_SPACE_COLUMNS} FROM spaces WHERE id = $1", space_id)
    if r is None:
        raise NotFound(f"space {space_id}")
    return _space(r)


async def space_by_slug(pool: asyncpg.Pool, slug: str) -> Space | None:
    async with read(pool, "space_by_slug") as conn:
        r = await conn.fetchrow(f"SELECT {_SPACE_COLUMNS} FROM spaces WHERE slug = $1", slug)
    return None if r is None else _space(r)


async def set_closed(pool: asyncpg.Pool, space_id: int, closed: bool, *, actor_id: int | None) -> Space:
    """Close (read-only) or reopen a space, and write the act to the audit log and the feed."""
    async with transaction(pool, "set_space_closed") as conn:
        r = await conn.fetchrow(
            "UPDATE spaces SET closed_at = CASE WHEN $2 THEN coalesce(closed_at, now()) ELSE NULL END"
            f" WHERE id = $1 RETURNING {_SPACE_COLUMNS}",
            space_id, closed,
        )
        if r is None:
            raise NotFound(f"space {space_id}")
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="space.close" if closed else "space.reopen",
            target_kind="space", target_id=space_id,
        )
        kind = "space.closed" if closed else "space.reopened"
        await activity.record(conn, [NewActivity(space_id, kind, None, actor_id)])
    return _space(r)


async def set_public(pool: asyncpg.Pool, space_id: int, public: bool, *, actor_id: int | None) -> Space:
    """Turn the project's public view on or off, and write the act to the audit log."""
    action = "space.public_on" if public else "space.public_off"
    return await _set_setting(pool, space_id, "public", public, actor_id, action, None)


async def set_language(pool: asyncpg.Pool, space_id: int, language: str, *, actor_id: int) -> Space:
    """The project's own language, written to the audit log (`space.language`)."""
    return await _set_setting(pool, space_id, "language", language, actor_id, "space.language", {"language": language})


_SETTINGS = {"public": "UPDATE spaces SET public = $2", "language": "UPDATE spaces SET language = $2"}


async def _set_setting(
    pool: asyncpg.Pool, space_id: int, setting: str, value: Any, actor_id: int | None, action: str,
    details: dict[str, Any] | None,
) -> Space:
    """One of a project's settings changed, and the act audited, in one transaction."""
    async with transaction(pool, f"set_space_{setting}") as conn:
        r = await conn.fetchrow(f"{_SETTINGS[setting]} WHERE id = $1 RETURNING {_SPACE_COLUMNS}", space_id, value)
        if r is None:
            raise NotFound(f"space {space_id}")
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action=action, target_kind="space", target_id=space_id,
            details=details,
        )
    return _space(r)


async def set_public_everywhere(pool: asyncpg.Pool, public: bool, *, actor_id: int | None) -> list[int]:
    """Turn every project's public view off (or on) at once, in one transaction — an operator's
    `twinhub admin public-view --all`. Each project changed is written to its own audit log
    (`space.public_off` or `space.public_on`, `{"all": true}`); those already so are left as
    they were. Returns the ids of the projects changed, in order."""
    async with transaction(pool, "set_public_everywhere") as conn:
        rows = await conn.fetch(
            "WITH changed AS (UPDATE spaces SET public = $1 WHERE public <> $1 RETURNING id)"
            " SELECT id FROM changed ORDER BY id",
            public,
        )
        ids = [r["id"] for r in rows]
        for space_id in ids:
            await audit.record(
                conn, space_id=space_id, actor_id=actor_id, action="space.public_on" if public else "space.public_off",
                target_kind="space", target_id=space_id, details={"all": True},
            )
    return ids


async def set_member(
    pool: asyncpg.Pool, space_id: int, user_id: int, role: str, *, actor_id: int | None = None
) -> None:
    """Add a member with `role` (and their mailbox), or change the role of an existing one; the
    feed records who joined or whose role changed."""
    async with transaction(pool, "set_member") as conn:
        await put_member(conn, space_id, user_id, role, actor_id=actor_id)


async def put_member(
    conn: asyncpg.Connection, space_id: int, user_id: int, role: str, *, actor_id: int | None,
    invited_by: int | None = None, audit_action: str | None = None,
) -> None:
    """set_member in the caller's transaction (an accepted invitation joins in its own).
    `audit_action`: what the audit log calls a join (default: the feed's kind, member.joined)."""
    old = await conn.fetchval(
        "SELECT role FROM members WHERE space_id = $1 AND user_id = $2 FOR UPDATE", space_id, user_id
    )
    if old == role:
        return
    await conn.execute(
        "INSERT INTO members (space_id, user_id, role, invited_by) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (space_id, user_id) DO UPDATE SET role = EXCLUDED.role",
        space_id, user_id, role, invited_by,
    )
    area = activity.member_record_area(role)
    if old is None:
        change = NewActivity(space_id, "member.joined", area, actor_id, user_id=user_id, details={"role": role})
    else:
        change = NewActivity(
            space_id, "member.role_changed", area, actor_id, user_id=user_id, details={"role": role, "was": old}
        )
    await activity.record(conn, [change])
    await audit.record(
        conn, space_id=space_id, actor_id=actor_id, action=audit_action if old is None and audit_action else change.kind,
        target_kind="user", target_id=user_id, details=change.details,
    )
    # Every member has a mailbox in the space, from the moment they join (kept if they leave).
    await conn.execute(
        "INSERT INTO mailboxes (space_id, owner_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", space_id, user_id
    )


async def remove_member(pool: asyncpg.Pool, space_id: int, user_id: int, *, actor_id: int | None = None) -> bool:
    async with transaction(pool, "remove_member") as conn:
        role = await conn.fetchval(
            "DELETE FROM members WHERE space_id = $1 AND user_id = $2 RETURNING role", space_id, user_id
        )
        if role is None:
            return False
        await activity.record(conn, [NewActivity(
            space_id, "member.removed", activity.member_record_area(role), actor_id, user_id=user_id,
        )])
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="member.removed", target_kind="user", target_id=user_id,
        )
    return True


async def count_role(pool: asyncpg.Pool, space_id: int, role: str) -> int:
    async with read(pool, "count_role") as conn:
        return await conn.fetchval("SELECT count(*) FROM members WHERE space_id = $1 AND role = $2", space_id, role)


async def memberships(pool: asyncpg.Pool, user_id: int) -> list[Membership]:
    """Every space the user belongs to, with their role there, oldest space first."""
    async with read(pool, "memberships") as conn:
        rows = await conn.fetch(
            f"SELECT {', '.join('s.' + c for c in _SPACE_COLUMNS.split(', '))}, m.role"
            " FROM members m JOIN spaces s ON s.id = m.space_id WHERE m.user_id = $1 ORDER BY s.id",
            user_id,
        )
    return [Membership(_space(r), r["role"]) for r in rows]


async def role_in(pool: asyncpg.Pool, space_id: int, user_id: int) -> str | None:
    async with read(pool, "role_in") as conn:
        return await conn.fetchval("SELECT role FROM members WHERE space_id = $1 AND user_id = $2", space_id, user_id)


async def create_room(
    pool: asyncpg.Pool, *, space_id: int, area: str, name: str, created_by: int | None = None,
    max_rooms: int | None = None,
) -> Room:
    """A new room, recorded in the feed (and, made by someone, in the audit log). With
    `max_rooms`, raises Conflict when the project already has that many (counted under a lock
    on the project, so that rooms made at once cannot pass the cap together). Archived rooms
    count; deleted ones do not."""
    async with transaction(pool, "create_room") as conn:
        if max_rooms is not None:
            await conn.execute("SELECT 1 FROM spaces WHERE id = $1 FOR UPDATE", space_id)
            held = await conn.fetchval(
                "SELECT count(*) FROM rooms WHERE space_id = $1 AND state <> 'deleted'", space_id
            )
            if held >= max_rooms:
                raise Conflict(f"the project has {max_rooms} rooms")
        r = await conn.fetchrow(
            f"INSERT INTO rooms (space_id, area, name, created_by) VALUES ($1, $2, $3, $4) RETURNING {_ROOM_COLUMNS}",
            space_id, area, name, created_by,
        )
        await activity.record(conn, [NewActivity(space_id, "room.created", area, created_by, room_id=r["id"])])
        if created_by is not None:
            await audit.record(
                conn, space_id=space_id, actor_id=created_by, action="room.created", target_kind="room",
                target_id=r["id"], details={"area": area, "name": name},
            )
    return _room(r)


@dataclass(frozen=True, slots=True)
class RoomStateChange:
    room: Room  # as it is now
    changed: bool  # False: it already was in that state (nothing written)
    record: Activity | None  # the feed's record of the change


# state -> (the audit log's action, the feed's kind)
_STATE_ACTS = {
    "archived": ("room.archive", "room.archived"),
    "active": ("room.unarchive", "room.unarchived"),
    "deleted": ("room.delete", "room.deleted"),
}


async def set_room_state(
    pool: asyncpg.Pool, *, space_id: int, room_id: int, state: str, actor_id: int
) -> RoomStateChange:
    """Archive (state "archived"), unarchive ("active") or delete ("deleted") a room of the
    space, with its line in the audit log (the room's name and area in `details`) and its feed
    record, in one transaction. Asking for the state the room is in changes nothing
    (changed=False). Raises NotFound when the space has no such room or it was deleted (a
    deleted room stays deleted: 0018_room_states.sql). The row lock taken here is the one posts
    take (messages.post_many): a post after the change sees the new state."""
    action, kind = _STATE_ACTS[state]
    async with transaction(pool, "set_room_state") as conn:
        r = await conn.fetchrow(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = $1 AND space_id = $2 FOR UPDATE", room_id, space_id
        )
        if r is None or r["state"] == "deleted":
            raise NotFound(f"room {room_id} of space {space_id}")
        if r["state"] == state:
            return RoomStateChange(_room(r), False, None)
        r = await conn.fetchrow(f"UPDATE rooms SET state = $2 WHERE id = $1 RETURNING {_ROOM_COLUMNS}", room_id, state)
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action=action, target_kind="room", target_id=room_id,
            details={"name": r["name"], "area": r["area"]},
        )
        [done] = await activity.record(conn, [NewActivity(space_id, kind, r["area"], actor_id, room_id=room_id)])
    return RoomStateChange(_room(r), True, done)


@dataclass(frozen=True, slots=True)
class RoomRename:
    room: Room  # as it is now
    changed: bool  # False: it already had that name (nothing written)
    was: str  # its name before
    record: Activity | None  # the feed's record of the change


async def rename_room(pool: asyncpg.Pool, *, space_id: int, room_id: int, name: str, actor_id: int) -> RoomRename:
    """Give a room of the space a new name, with its line in the audit log (`room.rename`: the
    new name, the old one and the area) and its feed record, in one transaction, under the row
    lock a state change takes: renames at once are each written once, in the order they took
    the lock, and the last one stands. The same name changes nothing (changed=False). Raises
    NotFound when the space has no such room or it was deleted."""
    async with transaction(pool, "rename_room") as conn:
        r = await conn.fetchrow(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = $1 AND space_id = $2 FOR UPDATE", room_id, space_id
        )
        if r is None or r["state"] == "deleted":
            raise NotFound(f"room {room_id} of space {space_id}")
        was = r["name"]
        if was == name:
            return RoomRename(_room(r), False, was, None)
        r = await conn.fetchrow(f"UPDATE rooms SET name = $2 WHERE id = $1 RETURNING {_ROOM_COLUMNS}", room_id, name)
        details = {"name": name, "was": was, "area": r["area"]}
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="room.rename", target_kind="room", target_id=room_id,
            details=details,
        )
        [done] = await activity.record(conn, [NewActivity(
            space_id, "room.renamed", r["area"], actor_id, room_id=room_id, details={"was": was},
        )])
    return RoomRename(_room(r), True, was, done)


async def rooms_by_id(pool: asyncpg.Pool, room_ids: list[int]) -> list[Room]:
    """The rooms of `room_ids` that exist, in any state (a directory reading back what it kept)."""
    async with read(pool, "rooms_by_id") as conn:
        rows = await conn.fetch(f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = ANY($1::bigint[])", room_ids)
    return [_room(r) for r in rows]


async def get_room(pool: asyncpg.Pool, room_id: int) -> Room | None:
    async with read(pool, "get_room") as conn:
        r = await conn.fetchrow(f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE id = $1", room_id)
    return None if r is None else _room(r)


async def rooms_of(pool: asyncpg.Pool, space_ids: list[int]) -> list[Room]:
    async with read(pool, "rooms_of") as conn:
        rows = await conn.fetch(
            f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE space_id = ANY($1::bigint[]) ORDER BY space_id, id", space_ids
        )
    return [_room(r) for r in rows]


async def rooms_of_each(conn: asyncpg.Connection, space_ids: list[int]) -> list[list[Room]]:
    """The rooms of each space of `space_ids`, in order, in one statement (the welcomes of a
    reconnect storm, gathered by storage/reader.py)."""
    rows = await conn.fetch(
        f"SELECT {_ROOM_COLUMNS} FROM rooms WHERE space_id = ANY($1::bigint[]) ORDER BY space_id, id", space_ids
    )
    found: dict[int, list[Room]] = {}
    for r in rows:
        found.setdefault(r["space_id"], []).append(_room(r))
    return [found.get(s, []) for s in space_ids]


async def memberships_of(conn: asyncpg.Connection, user_ids: list[int]) -> list[list[Membership]]:
    """memberships() of each user of `user_ids`, in order, in one statement."""
    rows = await conn.fetch(
        f"SELECT m.user_id, {', '.join('s.' + c for c in _SPACE_COLUMNS.split(', '))}, m.role"
        " FROM members m JOIN spaces s ON s.id = m.space_id WHERE m.user_id = ANY($1::bigint[])"
        " ORDER BY m.user_id, s.id",
        user_ids,
    )
    found: dict[int, list[Membership]] = {}
    for r in rows:
        found.setdefault(r["user_id"], []).append(Membership(_space(r), r["role"]))
    return [found.get(u, []) for u in user_ids]
