"""The activity feed's records: one per domain action, in the action's own transaction.

`record(conn, items)` is called by the storage functions that carry out actions (posting,
creating a room, changing a membership, closing a project), inside their transaction: there is
no action without its record and no record without its action. Each space's records take the
space's next seqs (gap-free); a reader sees only the areas their role may read, so their feed
has holes in its seqs, which is expected.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from .db import read, transaction
from .records import record

# Every kind of record TwinHub writes itself (docs/protocol.md, "Activity feed"): the page has a
# sentence for each (locales/*.json, `kind.<kind>`), so a kind added here needs its words there.
KINDS = frozenset({
    "message.posted", "message.edited", "message.hidden", "journal.entry", "journal.comment",
    "room.created", "room.renamed", "room.archived", "room.unarchived", "room.deleted",
    "member.joined", "member.role_changed", "member.removed", "space.closed", "space.reopened",
})
# ... and the services outside TwinHub whose records a service token posts, as
# "<service>.<word>" (realtime/services/bots.py): the page words them by the service.
EXTERNAL_SERVICES = ("page", "document", "calendar", "forum", "blog", "wiki", "gallery")


def known_kind(kind: str) -> bool:
    service, dot, _ = kind.partition(".")
    return kind in KINDS or (dot == "." and service in EXTERNAL_SERVICES)


@record
class NewActivity:
    space_id: int
    kind: str  # message.posted, message.edited, message.hidden, room.created, member.joined, ...
    area: str | None  # None: the project as a whole (every member sees it)
    actor_id: int | None
    room_id: int | None = None
    message_id: int | None = None
    user_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None  # records posted by a service over HTTP
    # Names the caller already holds (a post's author and room): with them for every item of a
    # call, record() writes without reading users and rooms back, a third of its cost per post.
    actor_name: str | None = None
    actor_school: str | None = None
    room_name: str | None = None


@record
class Activity:
    space_id: int
    seq: int
    kind: str
    area: str | None
    actor: dict[str, Any] | None  # id, name, school, role
    room: dict[str, Any] | None  # id, name
    message_id: int | None
    user: dict[str, Any] | None  # id, name, school
    details: dict[str, Any]
    created_at: datetime


# The feed's records about a pupil (joined, role changed, removed) are shown to those who may
# read the pupils' corner: every role of a project but visitors (docs/roles.md), so that a parent
# is never told who the pupils are, nor their ids or roles. The feed filters records by area
# (realtime/services/feed.py with policy.readable_areas); this only says which area such a record
# belongs to.
PUPIL_RECORDS_AREA = "pupils_corner"


def member_record_area(role: str | None) -> str | None:
    """The area of a record about a member with `role`: None (the whole project) for adults."""
    return PUPIL_RECORDS_AREA if role in ("pupil_admin", "pupil_member") else None


@dataclass(frozen=True, slots=True)
class Page:
    activities: list[Activity]
    head: int
    more: bool


def _select(source: str) -> str:
    """Records from `source` (the table, or the rows an INSERT returned) with the names they need."""
    return (
        "SELECT a.space_id, a.seq, a.kind, a.area, a.actor_id, a.actor_role, au.display_name AS actor_name,"
        " au.school AS actor_school, a.room_id, r.name AS room_name, a.message_id, a.user_id,"
        " uu.display_name AS user_name, uu.school AS user_school, a.details, a.created_at"
        f" FROM {source} a LEFT JOIN users au ON au.id = a.actor_id LEFT JOIN rooms r ON r.id = a.room_id"
        " LEFT JOIN users uu ON uu.id = a.user_id"
    )


_SELECT = _select("activities")


def _actor(actor_id: int | None, name: str | None, school: str | None, role: str | None) -> dict[str, Any] | None:
    return None if actor_id is None else {"id": actor_id, "name": name, "school": school, "role": role}


def _room(room_id: int | None, name: str | None) -> dict[str, Any] | None:
    return None if room_id is None else {"id": room_id, "name": name}


def _activity(r: asyncpg.Record) -> Activity:
    user = None if r["user_id"] is None else {"id": r["user_id"], "name": r["user_name"], "school": r["user_school"]}
    details = r["details"]
    return Activity(
        r["space_id"], r["seq"], r["kind"], r["area"],
        _actor(r["actor_id"], r["actor_name"], r["actor_school"], r["actor_role"]), _room(r["room_id"], r["room_name"]),
        r["message_id"], user,
        {} if details == "{}" else json.loads(details),  # most records (every post's) have none
        r["created_at"],
    )


async def record(conn: asyncpg.Connection, items: list[NewActivity]) -> list[Activity]:
    """Write `items` in the caller's transaction, each space's in order on its next seqs."""
    if not items:
        return []
    unknown = [a.kind for a in items if not known_kind(a.kind)]
    if unknown:  # a kind nobody has words for would reach the feed as a raw name
        raise ValueError(f"activity kinds not in activity.KINDS: {unknown}")
    per_space = Counter(a.space_id for a in items)
    spaces = sorted(per_space)
    rows = await conn.fetch(
        "UPDATE feeds SET last_seq = feeds.last_seq + c.n FROM unnest($1::bigint[], $2::bigint[]) AS c(space_id, n)"
        " WHERE feeds.space_id = c.space_id RETURNING feeds.space_id, feeds.last_seq",
        spaces, [per_space[s] for s in spaces],
    )
    next_seq = {r["space_id"]: r["last_seq"] - per_space[r["space_id"]] + 1 for r in rows}
    seqs = []
    for a in items:
        seqs.append(next_seq[a.space_id])
        next_seq[a.space_id] += 1
    args = (
        [a.space_id for a in items], seqs, [a.kind for a in items], [a.area for a in items],
        [a.actor_id for a in items], [a.room_id for a in items], [a.message_id for a in items],
        [a.user_id for a in items], [json.dumps(a.details) if a.details else "{}" for a in items],
        [a.idempotency_key for a in items],
    )
    if all(_names_known(a) for a in items):
        rows = await conn.fetch(f"{_INSERT} RETURNING space_id, seq, actor_role, created_at", *args)
        made = {(r["space_id"], r["seq"]): r for r in rows}
        return [_from_known(a, seq, made[(a.space_id, seq)]) for a, seq in zip(items, seqs, strict=True)]
    rows = await conn.fetch(f"WITH ins AS ({_INSERT} RETURNING *) {_select('ins')}", *args)
    by_key = {(r["space_id"], r["seq"]): _activity(r) for r in rows}
    return [by_key[(a.space_id, seq)] for a, seq in zip(items, seqs, strict=True)]


# The actor's role is read in the same statement: "the role when they acted", from the table.
_INSERT = (
    "INSERT INTO activities (space_id, seq, kind, area, actor_id, actor_role, room_id, message_id, user_id, details,"
    "                        idempotency_key)"
    " SELECT n.space_id, n.seq, n.kind, n.area, n.actor_id, m.role, n.room_id, n.message_id, n.user_id,"
    "        n.details::jsonb, n.idempotency_key"
    " FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],"
    "             $8::bigint[], $9::text[], $10::text[])"
    "      AS n(space_id, seq, kind, area, actor_id, room_id, message_id, user_id, details, idempotency_key)"
    " LEFT JOIN members m ON m.space_id = n.space_id AND m.user_id = n.actor_id"
)


def _names_known(a: NewActivity) -> bool:
    return (
        a.user_id is None
        and (a.actor_id is None or (a.actor_name is not None and a.actor_school is not None))
        and (a.room_id is None or a.room_name is not None)
    )


def _from_known(a: NewActivity, seq: int, r: asyncpg.Record) -> Activity:
    """The record as _activity would read it back, from the names the caller gave."""
    return Activity(
        a.space_id, seq, a.kind, a.area, _actor(a.actor_id, a.actor_name, a.actor_school, r["actor_role"]),
        _room(a.room_id, a.room_name), a.message_id, None, a.details, r["created_at"],
    )


async def record_once(pool: asyncpg.Pool, item: NewActivity) -> tuple[Activity, bool]:
    """Record `item` (in a transaction of its own) unless a record with its idempotency key
    exists in the space: then return that one, and True (a duplicate)."""
    async with transaction(pool, "record_activity") as conn:
        if item.idempotency_key is not None:
            r = await conn.fetchrow(
                f"{_SELECT} WHERE a.space_id = $1 AND a.idempotency_key = $2", item.space_id, item.idempotency_key
            )
            if r is not None:
                return _activity(r), True
        [done] = await record(conn, [item])
        return done, False


async def replay(pool: asyncpg.Pool, space_id: int, since: int, limit: int, areas: list[str]) -> Page:
    """Records of the space after `since` whose area is one of `areas` (or the whole project),
    oldest first, at most `limit`, and the feed's head in the same snapshot."""
    return await _page(pool, space_id, "a.seq > $2 ORDER BY a.seq", since, limit, areas)


async def recent(pool: asyncpg.Pool, space_id: int, before: int | None, limit: int, areas: list[str]) -> Page:
    """A page of the space's records the reader may see, newest first, with seq < before."""
    return await _page(pool, space_id, "($2::bigint IS NULL OR a.seq < $2) ORDER BY a.seq DESC", before, limit, areas)


async def _page(pool: asyncpg.Pool, space_id: int, where_order: str, bound: int | None, limit: int,
                areas: list[str]) -> Page:
    async with transaction(pool, "feed_page", isolation="repeatable_read", readonly=True) as conn:
        head = await conn.fetchval("SELECT last_seq FROM feeds WHERE space_id = $1", space_id) or 0
        rows = await conn.fetch(
            f"{_SELECT} WHERE a.space_id = $1 AND (a.area IS NULL OR a.area = ANY($3::text[])) AND {where_order}"
            " LIMIT $4",
            space_id, bound, areas, limit + 1,
        )
    return Page([_activity(r) for r in rows[:limit]], head, len(rows) > limit)


async def head(pool: asyncpg.Pool, space_id: int) -> int:
    async with read(pool, "feed_head") as conn:
        return await conn.fetchval("SELECT last_seq FROM feeds WHERE space_id = $1", space_id) or 0
