"""Chat messages and the room channel's gap-free event log.

Every change to a room — a post, an edit, a delete, a hide — takes the room's next `seq` in the
same transaction that makes the change, and writes one `room_events` row. `replay` returns those
rows in order with each message's *current* state, so a message deleted or hidden since is
replayed without its text.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import activity, audit
from .activity import Activity, NewActivity
from .db import read, transaction
from .errors import NotFound
from .records import record


@record
class Message:
    id: int
    room_id: int
    seq: int
    author_id: int
    author_name: str
    author_school: str
    text: str | None  # None once erased; kept (for reviewers) but never sent while hidden
    client_id: str | None
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    hidden_at: datetime | None
    title: str | None = None  # journal entries
    parent_id: int | None = None  # journal comments: the entry they are about
    links: tuple[str, ...] | None = None  # journal entries
    author_role: str | None = None  # the author's badge in the project when they wrote it (policy.badge)

    @property
    def state(self) -> str:
        if self.deleted_at is not None:
            return "deleted"
        if self.hidden_at is not None:
            return "hidden"
        return "visible"


@record
class RoomEvent:
    room_id: int
    seq: int
    kind: str  # message.posted | message.edited | message.deleted | message.hidden | message.unhidden
    message: Message
    activity: Activity | None = None  # the feed's record of a change, when it has one


@record
class NewPost:
    space_id: int
    room_id: int
    author_id: int
    author_name: str
    author_school: str
    text: str
    client_id: str | None
    area: str  # the room's area: the activity feed shows the post only to who may read it
    title: str | None = None  # a journal entry's
    parent_id: int | None = None  # a journal comment's entry
    links: tuple[str, ...] | None = None  # a journal entry's
    room_name: str | None = None  # for the feed record; read from the table when not given
    author_role: str | None = None  # the author's badge in the project now (policy.badge)


@record
class PostResult:
    event: RoomEvent | None  # None only when refused
    duplicate: bool  # True: this client_id was already posted; `event` is the original post
    activity: Activity | None = None  # the feed's record of the post (None for a duplicate)
    refused: str | None = None  # the room's state ("archived", "deleted") when it took no post: nothing written


@dataclass(frozen=True, slots=True)
class Replay:
    events: list[RoomEvent]
    head: int  # the room's last seq in the same snapshot
    more: bool  # True when more events than the limit were waiting: page on from events[-1].seq


_MESSAGE_COLUMNS = (
    "m.id, m.room_id, m.seq, m.author_id, u.display_name AS author_name, u.school AS author_school,"
    " m.text, m.client_id, m.created_at, m.edited_at, m.deleted_at, m.hidden_at, m.title, m.parent_id, m.links,"
    " m.author_role"
)


def _message(r: asyncpg.Record) -> Message:
    return Message(
        r["id"], r["room_id"], r["seq"], r["author_id"], r["author_name"], r["author_school"], r["text"],
        r["client_id"], r["created_at"], r["edited_at"], r["deleted_at"], r["hidden_at"], r["title"], r["parent_id"],
        None if r["links"] is None else tuple(r["links"]), r["author_role"],
    )


# The posts already stored under these (author_id, client_id) keys: one probe of that unique
# index per key. Written as a plain join, the planner hashes the batch and scans the whole
# messages table for as long as it thinks it small (tens of thousands of rows): a cost per batch
# that grows with the history. LIMIT 1 (the key is unique) keeps the subquery from being
# flattened into that join. tests/storage/test_plans.py checks the plan.
ORIGINALS_SQL = (
    "SELECT d.* FROM unnest($1::bigint[], $2::text[]) AS k(author_id, client_id) CROSS JOIN LATERAL ("
    f" SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id"
    " WHERE m.author_id = k.author_id AND m.client_id = k.client_id LIMIT 1) d"
)


async def post_many(conn: asyncpg.Connection, posts: list[NewPost]) -> list[PostResult]:
    """Write `posts` in the caller's transaction; one result per post, in the same order.

    Seqs are taken per room in list order, so a batch keeps its submitters' order. A post whose
    (author, client_id) is already stored — earlier, or earlier in this same batch — is not
    written again: its result is the original post with duplicate=True.
    """
    results: list[PostResult | None] = [None] * len(posts)

    keyed = [(i, p) for i, p in enumerate(posts) if p.client_id is not None]
    first_in_batch: dict[tuple[int, str], int] = {}
    if keyed:
        rows = await conn.fetch(
            ORIGINALS_SQL, [p.author_id for _, p in keyed], [p.client_id for _, p in keyed],
        )
        stored = {(r["author_id"], r["client_id"]): _message(r) for r in rows}
        for i, p in keyed:
            key = (p.author_id, p.client_id)
            if key in stored:
                m = stored[key]
                results[i] = PostResult(RoomEvent(m.room_id, m.seq, "message.posted", m), duplicate=True)
            elif key in first_in_batch:
                results[i] = None  # filled from its first occurrence below
            else:
                first_in_batch[key] = i

    fresh = [
        i for i, p in enumerate(posts)
        if results[i] is None and (p.client_id is None or first_in_batch.get((p.author_id, p.client_id)) == i)
    ]
    if fresh:
        per_room: dict[int, int] = defaultdict(int)
        for i in fresh:
            per_room[posts[i].room_id] += 1
        rooms = sorted(per_room)  # a fixed lock order
        # Only an active room takes posts: an archived or deleted one (0018_room_states.sql) is
        # skipped here, under the row lock a state change takes, so a post the service checked
        # just before the room was archived is refused rather than written after it.
        rows = await conn.fetch(
            "UPDATE rooms SET last_seq = rooms.last_seq + c.n"
            " FROM unnest($1::bigint[], $2::bigint[]) AS c(room_id, n)"
            " WHERE rooms.id = c.room_id AND rooms.state = 'active' RETURNING rooms.id, rooms.last_seq",
            rooms, [per_room[r] for r in rooms],
        )
        next_seq = {r["id"]: r["last_seq"] - per_room[r["id"]] + 1 for r in rows}
        if len(next_seq) < len(rooms):
            fresh = await _refuse_inactive(conn, posts, fresh, results, set(rooms) - set(next_seq))
        seqs = []
        for i in fresh:
            room = posts[i].room_id
            seqs.append(next_seq[room])
            next_seq[room] += 1
        rows = await conn.fetch(
            "WITH ins AS ("
            "  INSERT INTO messages (space_id, room_id, seq, author_id, text, client_id, title, parent_id, links,"
            "                        author_role)"
            "  SELECT s, r, q, a, t, c, ti, p, l::text[], b FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],"
            "         $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bigint[], $9::text[], $10::text[])"
            "         AS n(s, r, q, a, t, c, ti, p, l, b)"
            "  RETURNING id, room_id, seq, created_at"
            "), ev AS ("
            "  INSERT INTO room_events (room_id, seq, kind, message_id, created_at)"
            "  SELECT room_id, seq, 'message.posted', id, created_at FROM ins"
            ") SELECT id, room_id, seq, created_at FROM ins",
            [posts[i].space_id for i in fresh], [posts[i].room_id for i in fresh], seqs,
            [posts[i].author_id for i in fresh], [posts[i].text for i in fresh], [posts[i].client_id for i in fresh],
            [posts[i].title for i in fresh], [posts[i].parent_id for i in fresh],
            [_text_array(posts[i].links) for i in fresh], [posts[i].author_role for i in fresh],
        )
        by_position = {(r["room_id"], r["seq"]): r for r in rows}
        stored = []
        for i, seq in zip(fresh, seqs, strict=True):
            p = posts[i]
            r = by_position[(p.room_id, seq)]
            stored.append(Message(
                r["id"], p.room_id, seq, p.author_id, p.author_name, p.author_school, p.text, p.client_id,
                r["created_at"], None, None, None, p.title, p.parent_id, p.links, p.author_role,
            ))
        records = await activity.record(conn, [
            NewActivity(posts[i].space_id, _activity_kind(posts[i]), posts[i].area, m.author_id, m.room_id, m.id,
                        actor_name=m.author_name, actor_school=m.author_school, room_name=posts[i].room_name)
            for i, m in zip(fresh, stored, strict=True)
        ])
        for i, m, a in zip(fresh, stored, records, strict=True):
            results[i] = PostResult(RoomEvent(m.room_id, m.seq, "message.posted", m), duplicate=False, activity=a)

    for i, p in enumerate(posts):
        if results[i] is None:  # a repeat of a client_id first seen earlier in this batch
            first = results[first_in_batch[(p.author_id, p.client_id)]]  # type: ignore[index]
            assert first is not None
            results[i] = first if first.refused else PostResult(first.event, duplicate=True)
    return results  # type: ignore[return-value]


async def _refuse_inactive(
    conn: asyncpg.Connection, posts: list[NewPost], fresh: list[int], results: list[PostResult | None],
    skipped: set[int],
) -> list[int]:
    """The posts of `fresh` whose room took them. Those to a room that is not active are given
    a refused result; a room that does not exist fails the batch (the check a foreign key made:
    0014_hot_path_references.sql)."""
    states = {r["id"]: r["state"] for r in await conn.fetch(
        "SELECT id, state FROM rooms WHERE id = ANY($1::bigint[])", sorted(skipped)
    )}
    if len(states) < len(skipped):
        raise NotFound(f"no room {sorted(skipped - set(states))}: nothing of the batch was written")
    kept = []
    for i in fresh:
        state = states.get(posts[i].room_id)
        if state is None:
            kept.append(i)
        else:
            results[i] = PostResult(None, duplicate=False, refused=state)
    return kept


def _text_array(items: tuple[str, ...] | None) -> str | None:
    """A text[] literal, for a column of arrays passed through unnest (arrays of arrays must be
    rectangular; these are not)."""
    if items is None:
        return None
    return "{" + ",".join('"' + x.replace("\\", "\\\\").replace('"', '\\"') + '"' for x in items) + "}"


def _activity_kind(p: NewPost) -> str:
    if p.title is not None:
        return "journal.entry"
    return "journal.comment" if p.parent_id is not None else "message.posted"


async def get_message(pool: asyncpg.Pool, room_id: int, message_id: int) -> Message | None:
    """The message `message_id` if it is in room `room_id` (a message of another room is None)."""
    async with read(pool, "get_message") as conn:
        r = await conn.fetchrow(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id"
            " WHERE m.id = $1 AND m.room_id = $2",
            message_id, room_id,
        )
    return None if r is None else _message(r)


async def original(pool: asyncpg.Pool, author_id: int, client_id: str) -> Message | None:
    """The post `author_id` stored under `client_id`, if there is one (in any room)."""
    async with read(pool, "original_post") as conn:
        r = await conn.fetchrow(ORIGINALS_SQL, [author_id], [client_id])
    return None if r is None else _message(r)


# Changes the feed shows (an erasure is not advertised).
_IN_FEED = ("message.edited", "message.hidden")


async def _change(conn: asyncpg.Connection, room_id: int, message_id: int, kind: str, actor_id: int) -> RoomEvent:
    room = await conn.fetchrow(
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq, space_id, area", room_id
    )
    seq = room["last_seq"]
    await conn.execute(
        "INSERT INTO room_events (room_id, seq, kind, message_id) VALUES ($1, $2, $3, $4)",
        room_id, seq, kind, message_id,
    )
    r = await conn.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id WHERE m.id = $1", message_id
    )
    record = None
    if kind in _IN_FEED:
        [record] = await activity.record(
            conn, [NewActivity(room["space_id"], kind, room["area"], actor_id, room_id, message_id)]
        )
    return RoomEvent(room_id, seq, kind, _message(r), record)


async def edit(pool: asyncpg.Pool, room_id: int, message_id: int, author_id: int, text: str) -> RoomEvent | None:
    """Replace the text of the author's own visible message. None if there is no such message."""
    async with transaction(pool, "edit_message") as conn:
        found = await conn.fetchval(
            "UPDATE messages SET text = $4, edited_at = now()"
            " WHERE id = $1 AND room_id = $2 AND author_id = $3 AND deleted_at IS NULL AND hidden_at IS NULL"
            " RETURNING id",
            message_id, room_id, author_id, text,
        )
        return None if found is None else await _change(conn, room_id, message_id, "message.edited", author_id)


async def delete(pool: asyncpg.Pool, room_id: int, message_id: int, author_id: int) -> RoomEvent | None:
    """Erase the author's own message: its words are gone for good (a report of it kept what
    was reported, storage/reports.py). None if there is no such message."""
    async with transaction(pool, "delete_message") as conn:
        found = await conn.fetchval(
            "UPDATE messages SET text = NULL, title = NULL, links = NULL, deleted_at = now()"
            " WHERE id = $1 AND room_id = $2 AND author_id = $3 AND deleted_at IS NULL RETURNING id",
            message_id, room_id, author_id,
        )
        return None if found is None else await _change(conn, room_id, message_id, "message.deleted", author_id)


async def moderator_delete(
    pool: asyncpg.Pool, *, space_id: int, room_id: int, message_id: int, moderator_id: int, reason: str
) -> RoomEvent | None:
    """A moderator erases someone's message for good (what must not stay stored at all, such as a
    pupil's address), including the words its reports quoted; the act, not the words, goes to
    the audit log. None if there is no such message (or it is already erased)."""
    async with transaction(pool, "moderator_delete_message") as conn:
        author = await conn.fetchval(
            "UPDATE messages SET text = NULL, title = NULL, links = NULL, deleted_at = now()"
            " WHERE id = $1 AND room_id = $2 AND deleted_at IS NULL RETURNING author_id",
            message_id, room_id,
        )
        if author is None:
            return None
        await conn.execute(
            "UPDATE reports SET reported_text = NULL, reported_title = NULL WHERE message_id = $1", message_id
        )
        event = await _change(conn, room_id, message_id, "message.deleted", moderator_id)
        await audit.record(
            conn, space_id=space_id, actor_id=moderator_id, action="message.delete", target_kind="message",
            target_id=message_id, reason=reason, details={"room_id": room_id, "author_id": author},
        )
        return event


async def unhide(
    pool: asyncpg.Pool, *, space_id: int, room_id: int, message_id: int, moderator_id: int, reason: str
) -> RoomEvent | None:
    """Show a hidden message again (a hide that was a mistake), audited. None if there is no
    hidden message with that id in the room."""
    return await _set_hidden(pool, False, space_id, room_id, message_id, moderator_id, reason)


async def hide(
    pool: asyncpg.Pool, *, space_id: int, room_id: int, message_id: int, moderator_id: int, reason: str
) -> RoomEvent | None:
    """Hide a message from everyone and write the act to the audit log, in one transaction.
    The text stays stored for the audit; it is never sent. None if there is no such message."""
    return await _set_hidden(pool, True, space_id, room_id, message_id, moderator_id, reason)


async def _set_hidden(
    pool: asyncpg.Pool, hidden: bool, space_id: int, room_id: int, message_id: int, moderator_id: int, reason: str
) -> RoomEvent | None:
    """Hide or show again: the message's state, its room event and the audit row, in one
    transaction. None if the message is not in the other state (or not in the room)."""
    async with transaction(pool, "hide_message" if hidden else "unhide_message") as conn:
        found = await conn.fetchval(
            "UPDATE messages SET hidden_at = CASE WHEN $3 THEN now() END, hidden_by = CASE WHEN $3 THEN $4::bigint END"
            " WHERE id = $1 AND room_id = $2 AND deleted_at IS NULL AND (hidden_at IS NULL) = $3 RETURNING id",
            message_id, room_id, hidden, moderator_id,
        )
        if found is None:
            return None
        event = await _change(conn, room_id, message_id, "message.hidden" if hidden else "message.unhidden", moderator_id)
        await audit.record(
            conn, space_id=space_id, actor_id=moderator_id, action="message.hide" if hidden else "message.unhide",
            target_kind="message", target_id=message_id, reason=reason, details={"room_id": room_id},
        )
        return event


_REPLAY_EVENTS = (
    f"SELECT e.seq AS event_seq, e.kind, {_MESSAGE_COLUMNS} FROM room_events e"
    " JOIN messages m ON m.id = e.message_id JOIN users u ON u.id = m.author_id"
)


async def replay(pool: asyncpg.Pool, room_id: int, since: int, limit: int) -> Replay:
    """Events of room `room_id` with seq > since, oldest first, at most `limit` of them, and the
    room's head — one statement, hence one snapshot (no transaction needed for the two to agree)."""
    async with read(pool, "replay") as conn:
        [found] = await replay_many(conn, [(room_id, since, limit)])
    return found


async def replay_many(conn: asyncpg.Connection, keys: list[tuple[int, int, int]]) -> list[Replay]:
    """One Replay per (room_id, since, limit) of `keys`, in order, all read by one statement: the
    same snapshot for every key, each head agreeing with its events (a reconnect storm's replays,
    gathered by storage/reader.py). An unknown room replays nothing, with head 0."""
    rows = await conn.fetch(
        "SELECT q.k, r.last_seq AS head, ev.* FROM unnest($1::bigint[], $2::bigint[], $3::int[])"
        "  WITH ORDINALITY AS q(room_id, since, n, k)"
        " JOIN rooms r ON r.id = q.room_id"
        " LEFT JOIN LATERAL ("
        f"  {_REPLAY_EVENTS} WHERE e.room_id = q.room_id AND e.seq > q.since ORDER BY e.seq LIMIT q.n + 1"
        " ) ev ON true"
        " ORDER BY q.k, ev.event_seq",
        [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys],
    )
    heads: dict[int, int] = {}
    found: dict[int, list[RoomEvent]] = defaultdict(list)
    for r in rows:
        k = r["k"] - 1
        heads[k] = r["head"] or 0
        if r["event_seq"] is not None:
            found[k].append(RoomEvent(keys[k][0], r["event_seq"], r["kind"], _message(r)))
    out = []
    for k, (_, _, limit) in enumerate(keys):
        events = found.get(k, [])
        out.append(Replay(events[:limit], heads.get(k, 0), len(events) > limit))
    return out


async def head(pool: asyncpg.Pool, room_id: int) -> int:
    """The room's last seq (0 for an empty or unknown room)."""
    async with read(pool, "room_head") as conn:
        return await conn.fetchval("SELECT last_seq FROM rooms WHERE id = $1", room_id) or 0


async def public_journal(
    pool: asyncpg.Pool, space_id: int, room_id: int, before_seq: int | None, limit: int
) -> list[tuple[Message, str | None, bool]]:
    """A page of a journal's visible entries and comments, newest first, each with its author's
    role in the space (None: not a member) and whether the author is a bot — what the public
    view needs to decide whose name it may show."""
    async with read(pool, "public_journal") as conn:
        rows = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS}, mb.role AS member_role, u.platform_role = 'bot' AS author_is_bot"
            " FROM messages m JOIN users u ON u.id = m.author_id"
            " LEFT JOIN members mb ON mb.space_id = $1 AND mb.user_id = m.author_id"
            " WHERE m.room_id = $2 AND m.deleted_at IS NULL AND m.hidden_at IS NULL"
            " AND ($3::bigint IS NULL OR m.seq < $3) ORDER BY m.seq DESC LIMIT $4",
            space_id, room_id, before_seq, limit,
        )
    return [(_message(r), r["member_role"], bool(r["author_is_bot"])) for r in rows]


async def history(pool: asyncpg.Pool, room_id: int, before_seq: int | None, limit: int) -> list[Message]:
    """A page of the room's messages (current state), newest first, with seq < before_seq."""
    async with read(pool, "history") as conn:
        rows = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id"
            " WHERE m.room_id = $1 AND ($2::bigint IS NULL OR m.seq < $2) ORDER BY m.seq DESC LIMIT $3",
            room_id, before_seq, limit,
        )
    return [_message(r) for r in rows]


async def history_after(pool: asyncpg.Pool, room_id: int, after_seq: int, limit: int) -> list[Message]:
    """A page of the room's messages (current state) with seq > after_seq: the `limit` oldest of
    them, given newest first like `history`."""
    async with read(pool, "history_after") as conn:
        rows = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id"
            " WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
            room_id, after_seq, limit,
        )
    return [_message(r) for r in reversed(rows)]


async def history_around(
    pool: asyncpg.Pool, room_id: int, message_id: int, older: int, newer: int
) -> tuple[list[Message], list[Message]] | None:
    """The message `message_id` of the room with up to `older` messages before it, and up to
    `newer` messages after it: (the message and those before it, those after it), each newest
    first, read in one snapshot. None when the room has no such message."""
    async with transaction(pool, "history_around", isolation="repeatable_read", readonly=True) as conn:
        seq = await conn.fetchval("SELECT seq FROM messages WHERE id = $1 AND room_id = $2", message_id, room_id)
        if seq is None:
            return None
        before = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id"
            " WHERE m.room_id = $1 AND m.seq <= $2 ORDER BY m.seq DESC LIMIT $3",
            room_id, seq, older + 1,
        )
        after = await conn.fetch(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages m JOIN users u ON u.id = m.author_id"
            " WHERE m.room_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
            room_id, seq, newer,
        )
    return [_message(r) for r in before], [_message(r) for r in reversed(after)]
