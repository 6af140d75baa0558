"""Read positions: how far each member has read each room, and what is unread there.

A position is a seq of the room's channel: every message whose post has a greater seq is unread,
unless its reader wrote it, or it is deleted or hidden. Counts stop at UNREAD_CAP — the menu says
"99+" beyond it, and counting a room of thousands never read would cost for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from .db import read, transaction

UNREAD_CAP = 100


@dataclass(frozen=True, slots=True)
class Unread:
    room_id: int
    read: int  # the reader's position: the seq they read up to (0: never opened)
    unread: int  # visible messages by others after it, at most UNREAD_CAP
    latest: int | None  # the id of the room's newest message (None: no message yet)


async def mark_read(pool: asyncpg.Pool, user_id: int, room_id: int, seq: int | None) -> int:
    """Store that `user_id` has read `room_id` up to `seq` (None: everything so far), never
    beyond the room's head nor back from a position already stored; the position now."""
    async with transaction(pool, "mark_read") as conn:
        return await conn.fetchval(
            "INSERT INTO room_reads (user_id, room_id, seq)"
            " SELECT $1, r.id, LEAST(COALESCE($3, r.last_seq), r.last_seq) FROM rooms r WHERE r.id = $2"
            " ON CONFLICT (user_id, room_id)"
            " DO UPDATE SET seq = GREATEST(room_reads.seq, EXCLUDED.seq), read_at = now()"
            " RETURNING seq",
            user_id, room_id, seq,
        ) or 0


async def unread(pool: asyncpg.Pool, user_id: int, room_ids: list[int]) -> list[Unread]:
    """Each room of `room_ids` as `user_id` left it, in order, from one statement (one snapshot).
    Each count walks the room's (room_id, seq) index from the reader's position, UNREAD_CAP rows
    at most."""
    async with read(pool, "unread") as conn:
        rows = await conn.fetch(
            "SELECT q.room_id, COALESCE(rr.seq, 0) AS read,"
            " (SELECT count(*) FROM (SELECT 1 FROM messages m WHERE m.room_id = q.room_id"
            "   AND m.seq > COALESCE(rr.seq, 0) AND m.author_id <> $1"
            "   AND m.deleted_at IS NULL AND m.hidden_at IS NULL LIMIT $3) u) AS unread,"
            " (SELECT m.id FROM messages m WHERE m.room_id = q.room_id ORDER BY m.seq DESC LIMIT 1) AS latest"
            " FROM unnest($2::bigint[]) WITH ORDINALITY AS q(room_id, k)"
            " LEFT JOIN room_reads rr ON rr.user_id = $1 AND rr.room_id = q.room_id"
            " ORDER BY q.k",
            user_id, room_ids, UNREAD_CAP,
        )
    return [Unread(r["room_id"], r["read"], r["unread"], r["latest"]) for r in rows]
