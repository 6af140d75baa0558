"""TwinMail: mails, each member's mailbox items, and each mailbox's gap-free event log.

Privacy is in the shape of the queries: every function that reads or changes a mailbox takes
the owner's user id (which the caller takes from the authenticated session) and the spaces the
owner may use; there is no query that opens a mailbox by its id alone, or a mail without the
owner who holds it. Reports (storage/mail_reports.py) are the one way a mail leaves its
mailboxes, and each look at them is written to the audit log in the same transaction.

Unread counts are kept per mailbox and folder in the `mailboxes` row by the same statement that
bumps the mailbox's seq, and every event row carries the counts right after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import asyncpg

from .db import read, transaction
from .errors import Conflict

FOLDERS = ("inbox", "sent", "archive", "trash")  # the order of every unread array


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    name: str
    school: str
    role: str | None = None  # their role in the mail's project now (None: no longer a member)


@dataclass(frozen=True, slots=True)
class MailItem:
    """One mail as one owner sees it: the mail (shared) and the owner's state of it."""

    mailbox_id: int
    mail_id: int
    space_id: int
    thread_id: int
    reply_to: int | None
    sender: Person
    recipients: tuple[Person, ...]
    subject: str | None  # None once deleted from this mailbox
    text: str | None
    created_at: datetime
    origin: str  # inbox (received) | sent
    folder: str
    read: bool
    deleted: bool
    client_id: str | None = None  # the sender's own idempotency key, on the sender's copy only


@dataclass(frozen=True, slots=True)
class MailboxEvent:
    mailbox_id: int
    seq: int
    kind: str  # mail.received | mail.sent | mail.updated | mail.deleted
    item: MailItem
    unread: dict[str, int]  # folder -> unread items, right after this event


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: int
    space_id: int
    last_seq: int
    unread: dict[str, int]


@dataclass(frozen=True, slots=True)
class NewMail:
    space_id: int
    sender: Person
    sender_mailbox: int
    recipients: tuple[tuple[Person, int], ...]  # (recipient, their mailbox id), no duplicates
    subject: str
    text: str
    thread_id: int | None  # None: a new thread
    reply_to: int | None
    client_id: str | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """A mail just stored, in one holder's mailbox: where it went in the mailbox's log."""

    mailbox_id: int
    seq: int
    unread: tuple[int, int, int, int]  # per folder (FOLDERS order), right after this event


@dataclass(frozen=True, slots=True)
class SendResult:
    mail_id: int
    thread_id: int
    created_at: datetime | None  # None for a duplicate
    sent: Delivery | None  # the sender's event; None for a duplicate
    received: tuple[Delivery, ...]  # one per recipient, in the order given; empty for a duplicate
    seq: int  # the seq of the sender's mail.sent event (the original one for a duplicate)
    sender_mailbox: int  # where that event is (the original's project for a duplicate)
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Replay:
    events: list[MailboxEvent]
    head: int
    more: bool


@dataclass(frozen=True, slots=True)
class Thread:
    thread_id: int
    mails: int  # in this folder of this mailbox
    unread: int
    last: MailItem


def _unread(values: Any) -> dict[str, int]:
    return dict(zip(FOLDERS, values, strict=True))


_UNREAD_COLUMNS = "unread_inbox, unread_sent, unread_archive, unread_trash"

# An item as its owner sees it. The recipients' names are read with the mail so that a mailbox
# page is one query; a deleted item keeps its place (for replay) but never its content.
ITEM_SELECT = (
    "SELECT i.mailbox_id, i.mail_id, b.space_id, i.thread_id, m.reply_to,"
    " m.sender_id, su.display_name AS sender_name, su.school AS sender_school, m.recipient_ids,"
    " (SELECT sm.role FROM members sm WHERE sm.space_id = b.space_id AND sm.user_id = m.sender_id) AS sender_role,"
    " ARRAY(SELECT u.display_name FROM unnest(m.recipient_ids) WITH ORDINALITY r(id, n)"
    "       JOIN users u ON u.id = r.id ORDER BY r.n) AS recipient_names,"
    " ARRAY(SELECT u.school FROM unnest(m.recipient_ids) WITH ORDINALITY r(id, n)"
    "       JOIN users u ON u.id = r.id ORDER BY r.n) AS recipient_schools,"
    " ARRAY(SELECT rm.role FROM unnest(m.recipient_ids) WITH ORDINALITY r(id, n)"
    "       LEFT JOIN members rm ON rm.space_id = b.space_id AND rm.user_id = r.id ORDER BY r.n) AS recipient_roles,"
    " CASE WHEN i.deleted_at IS NULL THEN m.subject END AS subject,"
    " CASE WHEN i.deleted_at IS NULL THEN m.text END AS text,"
    " m.created_at, i.origin, i.folder, i.read, i.deleted_at IS NOT NULL AS deleted,"
    " CASE WHEN i.origin = 'sent' THEN m.client_id END AS client_id"
    " FROM mailbox_items i JOIN mailboxes b ON b.id = i.mailbox_id JOIN mails m ON m.id = i.mail_id"
    " JOIN users su ON su.id = m.sender_id"
)


def item_from_row(r: asyncpg.Record) -> MailItem:
    recipients = tuple(
        Person(i, n, s, role)
        for i, n, s, role in zip(
            r["recipient_ids"], r["recipient_names"], r["recipient_schools"], r["recipient_roles"], strict=True
        )
    )
    return MailItem(
        r["mailbox_id"], r["mail_id"], r["space_id"], r["thread_id"], r["reply_to"],
        Person(r["sender_id"], r["sender_name"], r["sender_school"], r["sender_role"]), recipients, r["subject"],
        r["text"],
        r["created_at"], r["origin"], r["folder"], r["read"], r["deleted"], r["client_id"],
    )


# -- mailboxes ------------------------------------------------------------------------------------


async def mailboxes_of(pool: asyncpg.Pool, owner_id: int, space_ids: list[int]) -> list[Mailbox]:
    """The owner's mailboxes in `space_ids`, with their head seq and unread counts (one snapshot)."""
    async with read(pool, "mailboxes_of") as conn:
        rows = await conn.fetch(
            f"SELECT id, space_id, last_seq, {_UNREAD_COLUMNS} FROM mailboxes"
            " WHERE owner_id = $1 AND space_id = ANY($2::bigint[]) ORDER BY space_id",
            owner_id, space_ids,
        )
    return [_mailbox(r) for r in rows]


async def mailboxes_of_owners(conn: asyncpg.Connection, owner_ids: list[int]) -> list[list[Mailbox]]:
    """Every mailbox of each owner of `owner_ids` (all their spaces: the caller keeps those the
    owner may open now), in order, in one statement (the welcomes of a reconnect storm)."""
    rows = await conn.fetch(
        f"SELECT id, space_id, owner_id, last_seq, {_UNREAD_COLUMNS} FROM mailboxes"
        " WHERE owner_id = ANY($1::bigint[]) ORDER BY owner_id, space_id",
        owner_ids,
    )
    found: dict[int, list[Mailbox]] = {}
    for r in rows:
        found.setdefault(r["owner_id"], []).append(_mailbox(r))
    return [found.get(o, []) for o in owner_ids]


def _mailbox(r: asyncpg.Record) -> Mailbox:
    return Mailbox(r["id"], r["space_id"], r["last_seq"], _unread([r[f"unread_{f}"] for f in FOLDERS]))


async def roster(pool: asyncpg.Pool, space_id: int) -> list[tuple[Person, str, int]]:
    """Every member of the space: (person, role, mailbox id)."""
    async with read(pool, "mail_roster") as conn:
        rows = await conn.fetch(
            "SELECT u.id, u.display_name, u.school, m.role, b.id AS mailbox_id FROM members m"
            " JOIN users u ON u.id = m.user_id"
            " JOIN mailboxes b ON b.space_id = m.space_id AND b.owner_id = m.user_id"
            " WHERE m.space_id = $1 ORDER BY u.display_name, u.id",
            space_id,
        )
    return [(Person(r["id"], r["display_name"], r["school"]), r["role"], r["mailbox_id"]) for r in rows]


# -- sending --------------------------------------------------------------------------------------


async def send_many(conn: asyncpg.Connection, sends: list[NewMail]) -> list[SendResult]:
    """Store `sends`: each mail once, an item and an event in the sender's mailbox and in each
    recipient's. One result per send, in order. One statement does it all, so `conn` needs no
    transaction (the writer runs it with atomic=True); only a batch holding a retried client_id
    reads the originals afterwards.

    A send whose (sender, client_id) is already stored, or appears earlier in the batch, is not
    stored again: its result is the original with duplicate=True.
    """
    results: list[SendResult | None] = [None] * len(sends)
    first_in_batch: dict[tuple[int, str], int] = {}
    fresh: list[int] = []
    repeats: list[int] = []
    for i, s in enumerate(sends):
        if s.client_id is not None:
            key = (s.sender.id, s.client_id)
            if key in first_in_batch:
                repeats.append(i)
                continue
            first_in_batch[key] = i
        fresh.append(i)
    if fresh:
        stored_before = await _store(conn, [sends[i] for i in fresh], fresh, results)
        if stored_before:
            await _originals(conn, sends, stored_before, results)
    for i in repeats:
        s = sends[i]
        first = results[first_in_batch[(s.sender.id, s.client_id)]]  # type: ignore[index]
        assert first is not None
        results[i] = SendResult(
            first.mail_id, first.thread_id, None, None, (), first.seq, first.sender_mailbox, duplicate=True
        )
    return results  # type: ignore[return-value]


# The mails already sent under these (sender_id, client_id) keys, with the sender's mailbox and
# the seq of its mail.sent event there.
_ORIGINALS_SQL = (
    "SELECT m.id, m.thread_id, m.sender_id, m.client_id, b.id AS mailbox_id,"
    " (SELECT e.seq FROM mailbox_events e WHERE e.mailbox_id = b.id"
    "   AND e.mail_id = m.id AND e.kind = 'mail.sent') AS seq"
    " FROM mails m JOIN unnest($1::bigint[], $2::text[]) AS k(sender_id, client_id)"
    " ON m.sender_id = k.sender_id AND m.client_id = k.client_id"
    " JOIN mailboxes b ON b.space_id = m.space_id AND b.owner_id = m.sender_id"
)


def _original(r: asyncpg.Record) -> SendResult:
    return SendResult(r["id"], r["thread_id"], None, None, (), r["seq"] or 0, r["mailbox_id"], duplicate=True)


async def _originals(conn: asyncpg.Connection, sends: list[NewMail], where: list[int], results: list[Any]) -> None:
    """The results of sends whose client_id had been used before: the first mail, as a duplicate."""
    rows = await conn.fetch(
        _ORIGINALS_SQL, [sends[i].sender.id for i in where], [sends[i].client_id for i in where],
    )
    stored = {(r["sender_id"], r["client_id"]): r for r in rows}
    for i in where:
        results[i] = _original(stored[(sends[i].sender.id, sends[i].client_id)])


async def original(pool: asyncpg.Pool, sender_id: int, client_id: str) -> SendResult | None:
    """The mail `sender_id` sent under `client_id` (in any of their projects), as a duplicate's
    result, if there is one."""
    async with read(pool, "original_mail") as conn:
        r = await conn.fetchrow(_ORIGINALS_SQL, [sender_id], [client_id])
    return None if r is None else _original(r)


# One statement stores a whole batch: the mails, every holder's item, each holder mailbox's
# seq and unread count, and the events — holders, seqs and counts are worked out by PostgreSQL
# from one row per mail, so the server neither builds nor encodes a row per holder. Within a
# mailbox, events follow the batch order (pos); a mail's sender holder comes first (k = 0), then
# its recipients in the order given. A mail whose (sender, client_id) is already stored is
# skipped by the insert (ON CONFLICT) and so has no holders: the retry that lost its `ok` costs
# no extra query unless it happens.
_SEND_BATCH = """
WITH n AS MATERIALIZED (
    SELECT u.pos, nextval(pg_get_serial_sequence('mails', 'id')) AS id, u.space_id, u.sender_id,
           u.recipients::bigint[] AS recipients, u.thread_id, u.reply_to, u.subject, u.text, u.client_id,
           u.sender_box, u.boxes::bigint[] AS boxes
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[],
                $8::text[], $9::bigint[], $10::text[])
         WITH ORDINALITY AS u(space_id, sender_id, recipients, thread_id, reply_to, subject, text, client_id,
                              sender_box, boxes, pos)
), ins_mails AS (
    INSERT INTO mails (id, space_id, sender_id, recipient_ids, thread_id, reply_to, subject, text, client_id)
    SELECT id, space_id, sender_id, recipients, coalesce(thread_id, id), reply_to, subject, text, client_id FROM n
    ON CONFLICT (sender_id, client_id) DO NOTHING
    RETURNING id, created_at
), kept AS MATERIALIZED (
    SELECT n.* FROM n JOIN ins_mails USING (id)
), holders AS MATERIALIZED (
    SELECT kept.pos, 0::bigint AS k, kept.id AS mail_id, coalesce(kept.thread_id, kept.id) AS thread_id,
           kept.sender_box AS box, 'sent' AS origin
    FROM kept
    UNION ALL
    SELECT kept.pos, r.k, kept.id, coalesce(kept.thread_id, kept.id), r.box, 'inbox'
    FROM kept CROSS JOIN LATERAL unnest(kept.boxes) WITH ORDINALITY AS r(box, k)
), per_box AS (
    SELECT box, count(*)::int AS n, (count(*) FILTER (WHERE origin = 'inbox'))::int AS u FROM holders GROUP BY box
), up AS (
    UPDATE mailboxes m SET last_seq = m.last_seq + p.n, unread_inbox = m.unread_inbox + p.u
    FROM per_box p WHERE m.id = p.box
    RETURNING m.id, m.last_seq, m.unread_inbox, m.unread_sent, m.unread_archive, m.unread_trash, p.n, p.u
), ev AS MATERIALIZED (
    SELECT h.pos, h.k, h.box, h.mail_id, h.thread_id, h.origin,
           up.last_seq - up.n + row_number() OVER w AS seq,
           (up.unread_inbox - up.u + count(*) FILTER (WHERE h.origin = 'inbox') OVER w)::int AS inbox,
           up.unread_sent AS sent, up.unread_archive AS archive, up.unread_trash AS trash
    FROM holders h JOIN up ON up.id = h.box
    WINDOW w AS (PARTITION BY h.box ORDER BY h.pos ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
), ins_items AS (
    INSERT INTO mailbox_items (mailbox_id, mail_id, thread_id, origin, folder, read)
    SELECT box, mail_id, thread_id, origin, origin, origin = 'sent' FROM ev
), ins_events AS (
    INSERT INTO mailbox_events (mailbox_id, seq, kind, mail_id, unread)
    SELECT box, seq, CASE WHEN origin = 'sent' THEN 'mail.sent' ELSE 'mail.received' END, mail_id,
           ARRAY[inbox, sent, archive, trash]
    FROM ev
)
SELECT (SELECT array_agg(id ORDER BY pos) FROM n) AS ids,
       (SELECT array_agg(id) FROM ins_mails) AS stored,
       (SELECT min(created_at) FROM ins_mails) AS created_at,
       array_agg(box ORDER BY pos, k) AS boxes, array_agg(seq ORDER BY pos, k) AS seqs,
       array_agg(inbox ORDER BY pos, k) AS inbox, array_agg(sent ORDER BY pos, k) AS sent,
       array_agg(archive ORDER BY pos, k) AS archive, array_agg(trash ORDER BY pos, k) AS trash
FROM ev
"""


def _id_list(ids: Any) -> str:
    return "{" + ",".join(map(str, ids)) + "}"


async def _store(conn: asyncpg.Connection, sends: list[NewMail], where: list[int], results: list[Any]) -> list[int]:
    """Store the batch; fill `results` for the mails stored. Returns the positions (from `where`)
    of the sends whose client_id had been used before: nothing was stored for them."""
    r = await conn.fetchrow(
        _SEND_BATCH,
        [s.space_id for s in sends], [s.sender.id for s in sends],
        [_id_list(p.id for p, _ in s.recipients) for s in sends],
        [s.thread_id for s in sends], [s.reply_to for s in sends], [s.subject for s in sends],
        [s.text for s in sends], [s.client_id for s in sends], [s.sender_mailbox for s in sends],
        [_id_list(box for _, box in s.recipients) for s in sends],
    )
    stored = set(r["stored"] or ())
    holders = zip(
        r["boxes"] or (), r["seqs"] or (), r["inbox"] or (), r["sent"] or (), r["archive"] or (), r["trash"] or (),
        strict=True,
    )
    created = r["created_at"]
    skipped = []
    for s, mail_id, i in zip(sends, r["ids"], where, strict=True):
        if mail_id not in stored:
            skipped.append(i)
            continue
        made = [Delivery(box, seq, (a, b, c, d)) for box, seq, a, b, c, d in islice(holders, len(s.recipients) + 1)]
        results[i] = SendResult(
            mail_id, s.thread_id or mail_id, created, made[0], tuple(made[1:]), made[0].seq, s.sender_mailbox,
            duplicate=False,
        )
    return skipped


# -- one owner's mail -----------------------------------------------------------------------------


async def get_item(pool: asyncpg.Pool, owner_id: int, space_ids: list[int], mail_id: int) -> MailItem | None:
    """The owner's copy of `mail_id`, if they hold it (not deleted) in one of `space_ids`."""
    async with read(pool, "get_mail") as conn:
        r = await conn.fetchrow(
            f"{ITEM_SELECT} WHERE b.owner_id = $1 AND b.space_id = ANY($2::bigint[]) AND i.mail_id = $3"
            " AND i.deleted_at IS NULL",
            owner_id, space_ids, mail_id,
        )
    return None if r is None else item_from_row(r)


@dataclass(frozen=True, slots=True)
class Change:
    """What to do to an owner's item: each field None keeps it as it is."""

    folder: str | None = None
    read: bool | None = None
    delete: bool = False


async def change(
    pool: asyncpg.Pool, owner_id: int, space_ids: list[int], mail_id: int, what: Change
) -> tuple[MailItem, MailboxEvent | None] | None:
    """Apply `what` to the owner's copy of `mail_id`. Returns (item now, its event), with no event
    when nothing changed (asking twice is harmless); None if the owner holds no such mail.
    Raises Conflict for a move that is not archive, trash, or back to where the mail came from."""
    async with transaction(pool, "change_mail") as conn:
        r = await conn.fetchrow(
            "SELECT i.mailbox_id, i.origin, i.folder, i.read FROM mailbox_items i JOIN mailboxes b ON b.id = i.mailbox_id"
            " WHERE b.owner_id = $1 AND b.space_id = ANY($2::bigint[]) AND i.mail_id = $3 AND i.deleted_at IS NULL"
            " FOR UPDATE OF i",
            owner_id, space_ids, mail_id,
        )
        if r is None:
            return None
        box, old_folder, old_read = r["mailbox_id"], r["folder"], r["read"]
        folder = what.folder or old_folder
        if folder not in (r["origin"], "archive", "trash"):
            raise Conflict(f"a mail from {r['origin']} cannot go to {folder}")
        is_read = old_read if what.read is None else what.read
        if not what.delete and (folder, is_read) == (old_folder, old_read):
            return await _item_in(conn, box, mail_id), None
        delta = [0, 0, 0, 0]
        if not old_read:
            delta[FOLDERS.index(old_folder)] -= 1
        if not is_read and not what.delete:
            delta[FOLDERS.index(folder)] += 1
        await conn.execute(
            "UPDATE mailbox_items SET folder = $3, read = $4, deleted_at = CASE WHEN $5 THEN now() END"
            " WHERE mailbox_id = $1 AND mail_id = $2",
            box, mail_id, folder, is_read, what.delete,
        )
        kind = "mail.deleted" if what.delete else "mail.updated"
        event = await _bump(conn, box, mail_id, kind, delta)
        if what.delete:
            # The last holder deleting it erases the words themselves (children's data is kept
            # no longer than someone wants it) — unless it was reported: the report keeps it.
            # The holders are the sender and the recipients: their items are found by the key.
            await conn.execute(
                "UPDATE mails m SET subject = '', text = '' WHERE m.id = $1"
                " AND NOT EXISTS (SELECT 1 FROM mailboxes b JOIN mailbox_items i ON i.mailbox_id = b.id"
                "   WHERE b.space_id = m.space_id AND b.owner_id = ANY(m.recipient_ids || m.sender_id)"
                "   AND i.mail_id = m.id AND i.deleted_at IS NULL)"
                " AND NOT EXISTS (SELECT 1 FROM reports WHERE mail_id = $1)",
                mail_id,
            )
        return event.item, event


async def _item_in(conn: asyncpg.Connection, box: int, mail_id: int) -> MailItem:
    r = await conn.fetchrow(f"{ITEM_SELECT} WHERE i.mailbox_id = $1 AND i.mail_id = $2", box, mail_id)
    return item_from_row(r)


async def _bump(conn: asyncpg.Connection, box: int, mail_id: int, kind: str, delta: list[int]) -> MailboxEvent:
    """Take the mailbox's next seq, apply the unread deltas, and log the event."""
    r = await conn.fetchrow(
        "UPDATE mailboxes SET last_seq = last_seq + 1, unread_inbox = unread_inbox + $2,"
        " unread_sent = unread_sent + $3, unread_archive = unread_archive + $4, unread_trash = unread_trash + $5"
        f" WHERE id = $1 RETURNING last_seq, {_UNREAD_COLUMNS}",
        box, *delta,
    )
    counts = [r[f"unread_{f}"] for f in FOLDERS]
    await conn.execute(
        "INSERT INTO mailbox_events (mailbox_id, seq, kind, mail_id, unread) VALUES ($1, $2, $3, $4, $5)",
        box, r["last_seq"], kind, mail_id, counts,
    )
    return MailboxEvent(box, r["last_seq"], kind, await _item_in(conn, box, mail_id), _unread(counts))


async def threads(
    pool: asyncpg.Pool, owner_id: int, space_id: int, folder: str, before: int | None, limit: int
) -> tuple[list[Thread], Mailbox | None]:
    """A page of the owner's threads that have mail in `folder`, the most recently active first,
    and the mailbox (head seq, unread counts) in the same snapshot — a client may resume its
    mailbox channel from that seq. `before`: the last mail id of the previous page's last thread."""
    async with transaction(pool, "mail_threads", isolation="repeatable_read", readonly=True) as conn:
        box = await conn.fetchrow(
            f"SELECT id, space_id, last_seq, {_UNREAD_COLUMNS} FROM mailboxes WHERE owner_id = $1 AND space_id = $2",
            owner_id, space_id,
        )
        rows = await conn.fetch(
            "SELECT i.thread_id, max(i.mail_id) AS last_id, count(*) AS mails, count(*) FILTER (WHERE NOT i.read) AS unread"
            " FROM mailbox_items i JOIN mailboxes b ON b.id = i.mailbox_id"
            " WHERE b.owner_id = $1 AND b.space_id = $2 AND i.folder = $3 AND i.deleted_at IS NULL"
            " GROUP BY i.thread_id HAVING ($4::bigint IS NULL OR max(i.mail_id) < $4)"
            " ORDER BY last_id DESC LIMIT $5",
            owner_id, space_id, folder, before, limit,
        )
        mailbox = None if box is None else _mailbox(box)
        if not rows:
            return [], mailbox
        items = await conn.fetch(
            f"{ITEM_SELECT} WHERE b.owner_id = $1 AND b.space_id = $2 AND i.mail_id = ANY($3::bigint[])",
            owner_id, space_id, [r["last_id"] for r in rows],
        )
    last = {r["mail_id"]: item_from_row(r) for r in items}
    return [Thread(r["thread_id"], r["mails"], r["unread"], last[r["last_id"]]) for r in rows], mailbox


async def thread(
    pool: asyncpg.Pool, owner_id: int, space_id: int, thread_id: int, after: int | None, limit: int
) -> list[MailItem]:
    """The owner's mails of one thread (every folder, not deleted), oldest first, with mail id >
    `after` (paging)."""
    async with read(pool, "mail_thread") as conn:
        rows = await conn.fetch(
            f"{ITEM_SELECT} WHERE b.owner_id = $1 AND b.space_id = $2 AND i.thread_id = $3"
            " AND i.deleted_at IS NULL AND ($4::bigint IS NULL OR i.mail_id > $4) ORDER BY i.mail_id LIMIT $5",
            owner_id, space_id, thread_id, after, limit,
        )
    return [item_from_row(r) for r in rows]


# -- a mailbox as a channel -----------------------------------------------------------------------


async def replay(pool: asyncpg.Pool, owner_id: int, mailbox_id: int, since: int, limit: int) -> Replay:
    """Events of the owner's mailbox with seq > since, oldest first, at most `limit`; each with
    the item's *current* state (a mail deleted since is replayed without its content)."""
    async with transaction(pool, "mail_replay", isolation="repeatable_read", readonly=True) as conn:
        head = await conn.fetchval(
            "SELECT last_seq FROM mailboxes WHERE id = $1 AND owner_id = $2", mailbox_id, owner_id
        )
        rows = await conn.fetch(
            "SELECT e.seq AS event_seq, e.kind, e.unread AS event_unread, x.* FROM mailbox_events e"
            f" CROSS JOIN LATERAL ({ITEM_SELECT} WHERE i.mailbox_id = e.mailbox_id AND i.mail_id = e.mail_id) x"
            " JOIN mailboxes o ON o.id = e.mailbox_id"
            " WHERE e.mailbox_id = $1 AND o.owner_id = $2 AND e.seq > $3 ORDER BY e.seq LIMIT $4",
            mailbox_id, owner_id, since, limit + 1,
        )
    events = [
        MailboxEvent(mailbox_id, r["event_seq"], r["kind"], item_from_row(r), _unread(r["event_unread"])) for r in rows[:limit]
    ]
    return Replay(events, head or 0, len(rows) > limit)


async def head(pool: asyncpg.Pool, owner_id: int, mailbox_id: int) -> int:
    """The last seq of the owner's mailbox (0 if it is not theirs)."""
    async with read(pool, "mailbox_head") as conn:
        return await conn.fetchval(
            "SELECT last_seq FROM mailboxes WHERE id = $1 AND owner_id = $2", mailbox_id, owner_id
        ) or 0
