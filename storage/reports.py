"""Reports and the moderation queues.

A member reports a room message (here) or a mail they received (mail_reports.py); either way it
is one row of `reports`, open until a reviewer resolves or dismisses it with a note. Every
report's opening and closing is an event on two resumable queues, in the transaction that makes
it: the project's (`queue` = its space id) and the platform's (`queue` = 0, for moderators).
Events are replayed with the report as it is now.

Who may report or review is not decided here (realtime/policy.py); these functions take the
spaces a caller may act in and find nothing outside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from . import audit
from .db import read, transaction

PLATFORM_QUEUE = 0
OUTCOMES = ("resolved", "dismissed")
_AUDIT_ACTION = {"resolved": "report.resolve", "dismissed": "report.dismiss"}


@dataclass(frozen=True, slots=True)
class ReportView:
    """A report as reviewers see it. For a message, its words as they were when reported (an
    edit or its author's erasure since does not change them) and its state now; for a mail,
    only its id: its words are read through the audited mail report listing."""

    id: int
    space_id: int
    kind: str  # message | mail
    status: str  # open | resolved | dismissed
    reporter: dict[str, Any]
    note: str
    created_at: datetime
    message: dict[str, Any] | None
    mail_id: int | None
    resolution: dict[str, Any] | None  # by, note, at — once resolved or dismissed
    about_id: int | None = None  # the member reported: the message's author, the mail's sender


@dataclass(frozen=True, slots=True)
class QueueEvent:
    queue: int
    seq: int
    kind: str  # report.opened | report.resolved | report.dismissed
    report: ReportView


@dataclass(frozen=True, slots=True)
class Reported:
    report: ReportView
    duplicate: bool  # the reporter had already reported this: the first report, nothing new
    events: list[QueueEvent]


_SELECT = (
    "SELECT p.id, p.space_id, p.kind, p.status, p.note, p.created_at, p.mail_id, p.message_id, p.room_id,"
    " coalesce(m.author_id, ml.sender_id) AS about_id,"
    " p.resolution, p.resolved_at, p.resolved_by, ru.display_name AS reporter_name, ru.school AS reporter_school,"
    " p.reporter_id, vu.display_name AS resolver_name, r.name AS room_name, r.area AS room_area,"
    " m.author_id, au.display_name AS author_name, au.school AS author_school, p.reported_text, p.reported_title,"
    " m.edited_at, m.created_at AS"
    " message_at, m.deleted_at, m.hidden_at"
    " FROM reports p JOIN users ru ON ru.id = p.reporter_id LEFT JOIN users vu ON vu.id = p.resolved_by"
    " LEFT JOIN messages m ON m.id = p.message_id LEFT JOIN rooms r ON r.id = p.room_id"
    " LEFT JOIN users au ON au.id = m.author_id"
    " LEFT JOIN LATERAL (SELECT sender_id FROM mails WHERE id = p.mail_id) ml ON true"
)


def _view(r: asyncpg.Record) -> ReportView:
    message = None
    if r["kind"] == "message":
        state = "deleted" if r["deleted_at"] else "hidden" if r["hidden_at"] else "visible"
        message = {
            "id": r["message_id"], "room": {"id": r["room_id"], "name": r["room_name"], "area": r["room_area"]},
            "author": {"id": r["author_id"], "name": r["author_name"], "school": r["author_school"]},
            "text": r["reported_text"], "title": r["reported_title"], "state": state,
            "created_at": r["message_at"], "edited_at": r["edited_at"],
        }
    resolution = None
    if r["status"] != "open":
        resolution = {
            "by": {"id": r["resolved_by"], "name": r["resolver_name"]}, "note": r["resolution"],
            "at": r["resolved_at"],
        }
    return ReportView(
        r["id"], r["space_id"], r["kind"], r["status"],
        {"id": r["reporter_id"], "name": r["reporter_name"], "school": r["reporter_school"]},
        r["note"], r["created_at"], message, r["mail_id"], resolution, r["about_id"],
    )


async def _one(conn: asyncpg.Connection, report_id: int) -> ReportView:
    return _view(await conn.fetchrow(f"{_SELECT} WHERE p.id = $1", report_id))


async def enqueue(conn: asyncpg.Connection, space_id: int, kind: str, report_id: int) -> list[QueueEvent]:
    """Put an event about a report on its project's queue and the platform's, in the caller's
    transaction (the platform's row is locked last, so that concurrent reports queue up on it
    in one order)."""
    view = await _one(conn, report_id)
    events = []
    for queue in (space_id, PLATFORM_QUEUE):
        seq = await conn.fetchval(
            "INSERT INTO moderation_queues (queue, last_seq) VALUES ($1, 1)"
            " ON CONFLICT (queue) DO UPDATE SET last_seq = moderation_queues.last_seq + 1 RETURNING last_seq",
            queue,
        )
        await conn.execute(
            "INSERT INTO moderation_events (queue, seq, kind, report_id) VALUES ($1, $2, $3, $4)",
            queue, seq, kind, report_id,
        )
        events.append(QueueEvent(queue, seq, kind, view))
    return events


async def report_message(
    pool: asyncpg.Pool, *, reporter_id: int, space_id: int, room_id: int, message_id: int, note: str
) -> Reported | None:
    """Report a visible message of the room. None if there is none (or it is already hidden or
    erased). Reporting it again returns the first report and changes nothing."""
    async with transaction(pool, "report_message") as conn:
        found = await conn.fetchrow(
            "SELECT text, title FROM messages WHERE id = $1 AND room_id = $2 AND deleted_at IS NULL AND hidden_at IS NULL",
            message_id, room_id,
        )
        if found is None:
            return None
        report_id = await conn.fetchval(
            "INSERT INTO reports (space_id, kind, message_id, room_id, reporter_id, note, reported_text, reported_title)"
            " VALUES ($1, 'message', $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id, reporter_id) DO NOTHING"
            " RETURNING id",
            space_id, message_id, room_id, reporter_id, note, found["text"], found["title"],
        )
        if report_id is None:
            first = await conn.fetchval(
                "SELECT id FROM reports WHERE message_id = $1 AND reporter_id = $2", message_id, reporter_id
            )
            return Reported(await _one(conn, first), True, [])
        await audit.record(
            conn, space_id=space_id, actor_id=reporter_id, action="message.report", target_kind="message",
            target_id=message_id, reason=note, details={"report_id": report_id, "room_id": room_id},
        )
        events = await enqueue(conn, space_id, "report.opened", report_id)
        return Reported(events[0].report, False, events)


async def space_of(pool: asyncpg.Pool, report_id: int) -> tuple[int, int | None] | None:
    """The report's project and the member it is about (None: no such report)."""
    async with read(pool, "report_space") as conn:
        r = await conn.fetchrow(
            "SELECT p.space_id, coalesce(m.author_id, ml.sender_id) AS about_id FROM reports p"
            " LEFT JOIN messages m ON m.id = p.message_id LEFT JOIN mails ml ON ml.id = p.mail_id WHERE p.id = $1",
            report_id,
        )
    return None if r is None else (r["space_id"], r["about_id"])


async def resolve(
    pool: asyncpg.Pool, *, report_id: int, space_id: int, reviewer_id: int, outcome: str, note: str
) -> tuple[ReportView, list[QueueEvent]] | None:
    """Close an open report of the space as `outcome` (resolved | dismissed) with the reviewer's
    note. None if the report is not open (already closed, or not in the space)."""
    assert outcome in OUTCOMES
    async with transaction(pool, "resolve_report") as conn:
        target = await conn.fetchrow(
            "UPDATE reports SET status = $3, resolved_by = $4, resolution = $5, resolved_at = now()"
            " WHERE id = $1 AND space_id = $2 AND status = 'open'"
            " RETURNING kind, coalesce(message_id, mail_id) AS target_id",
            report_id, space_id, outcome, reviewer_id, note,
        )
        if target is None:
            return None
        await audit.record(
            conn, space_id=space_id, actor_id=reviewer_id, action=_AUDIT_ACTION[outcome],
            target_kind=target["kind"], target_id=target["target_id"], reason=note, details={"report_id": report_id},
        )
        events = await enqueue(conn, space_id, f"report.{outcome}", report_id)
        return events[0].report, events


async def get(pool: asyncpg.Pool, report_id: int) -> ReportView | None:
    async with read(pool, "get_report") as conn:
        r = await conn.fetchrow(f"{_SELECT} WHERE p.id = $1", report_id)
    return None if r is None else _view(r)


async def page(
    pool: asyncpg.Pool, *, space_id: int | None, status: str | None, before: int | None, limit: int,
    not_about: int | None = None,
) -> tuple[list[ReportView], bool]:
    """Reports newest first — of one project, or of every project (space_id None) — optionally
    only those in `status`, with id < before, leaving out those about the member `not_about`;
    and whether more are waiting."""
    async with read(pool, "report_page") as conn:
        rows = await conn.fetch(
            f"SELECT * FROM ({_SELECT}) x WHERE ($1::bigint IS NULL OR x.space_id = $1)"
            " AND ($2::text IS NULL OR x.status = $2) AND ($3::bigint IS NULL OR x.id < $3)"
            " AND ($5::bigint IS NULL OR x.about_id IS DISTINCT FROM $5) ORDER BY x.id DESC LIMIT $4",
            space_id, status, before, limit + 1, not_about,
        )
    return [_view(r) for r in rows[:limit]], len(rows) > limit


@dataclass(frozen=True, slots=True)
class QueuePage:
    events: list[QueueEvent]
    head: int
    more: bool


async def replay(pool: asyncpg.Pool, queue: int, since: int, limit: int) -> QueuePage:
    """The queue's events after `since`, oldest first, each with its report as it is now, and the
    queue's head in the same snapshot."""
    async with transaction(pool, "moderation_replay", isolation="repeatable_read", readonly=True) as conn:
        head = await conn.fetchval("SELECT last_seq FROM moderation_queues WHERE queue = $1", queue) or 0
        rows = await conn.fetch(
            "SELECT e.seq AS event_seq, e.kind AS event_kind, x.* FROM moderation_events e"
            f" CROSS JOIN LATERAL ({_SELECT} WHERE p.id = e.report_id) x"
            " WHERE e.queue = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
            queue, since, limit + 1,
        )
    events = [QueueEvent(queue, r["event_seq"], r["event_kind"], _view(r)) for r in rows[:limit]]
    return QueuePage(events, head, len(rows) > limit)


async def head(pool: asyncpg.Pool, queue: int) -> int:
    async with read(pool, "moderation_head") as conn:
        return await conn.fetchval("SELECT last_seq FROM moderation_queues WHERE queue = $1", queue) or 0
