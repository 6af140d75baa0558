"""Reports of mail: a recipient reports one mail they received, and that mail — nothing else of
any mailbox — becomes visible to the project's reviewers (teacher admins, platform moderators;
who may is the policy's call). The report, and every look at it, go to the audit log in the
transaction that makes or shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit, reports
from .db import transaction
from .mail import ITEM_SELECT, MailItem, Person, item_from_row
from .reports import QueueEvent


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    space_id: int
    reporter: Person
    note: str
    created_at: datetime
    mail: MailItem  # the reported mail, as its reporter holds it
    duplicate: bool = False
    events: tuple[QueueEvent, ...] = ()  # the report's place on the moderation queues (a new report)


async def report(
    pool: asyncpg.Pool, owner_id: int, space_ids: list[int], mail_id: int, note: str
) -> Report | None:
    """The owner reports a mail they received. None if they hold no such received mail. Reporting
    the same mail again changes nothing and returns the first report (duplicate=True)."""
    async with transaction(pool, "report_mail") as conn:
        r = await conn.fetchrow(
            f"{ITEM_SELECT} WHERE b.owner_id = $1 AND b.space_id = ANY($2::bigint[]) AND i.mail_id = $3"
            " AND i.deleted_at IS NULL AND i.origin = 'inbox'",
            owner_id, space_ids, mail_id,
        )
        if r is None:
            return None
        item = item_from_row(r)
        row = await conn.fetchrow(
            "INSERT INTO reports (space_id, kind, mail_id, reporter_id, note) VALUES ($1, 'mail', $2, $3, $4)"
            " ON CONFLICT (mail_id, reporter_id) DO NOTHING RETURNING id, note, created_at",
            item.space_id, mail_id, owner_id, note,
        )
        duplicate = row is None
        events: list[QueueEvent] = []
        if duplicate:
            row = await conn.fetchrow(
                "SELECT id, note, created_at FROM reports WHERE mail_id = $1 AND reporter_id = $2",
                mail_id, owner_id,
            )
        else:
            await audit.record(
                conn, space_id=item.space_id, actor_id=owner_id, action="mail.report", target_kind="mail",
                target_id=mail_id, reason=note, details={"report_id": row["id"]},
            )
            events = await reports.enqueue(conn, item.space_id, "report.opened", row["id"])
        reporter = await conn.fetchrow("SELECT id, display_name, school FROM users WHERE id = $1", owner_id)
    return Report(
        row["id"], item.space_id, Person(reporter["id"], reporter["display_name"], reporter["school"]),
        row["note"], row["created_at"], item, duplicate, tuple(events),
    )


async def reports_for_review(
    pool: asyncpg.Pool, space_id: int, reviewer_id: int, before: int | None, limit: int
) -> tuple[list[Report], bool]:
    """A page of the space's mail reports, newest first, each with the one mail reported, and
    whether more are waiting. Every report returned is written to the audit log as seen by
    `reviewer_id`, in the same transaction: nobody reads a reported mail without it being on record."""
    async with transaction(pool, "review_mail_reports") as conn:
        rows = await conn.fetch(
            "SELECT p.id AS report_id, p.note, p.created_at AS reported_at,"
            " ru.id AS reporter_id, ru.display_name AS reporter_name, ru.school AS reporter_school, x.*"
            " FROM reports p JOIN users ru ON ru.id = p.reporter_id"
            f" CROSS JOIN LATERAL ({ITEM_SELECT}"
            "   WHERE b.owner_id = p.reporter_id AND b.space_id = p.space_id AND i.mail_id = p.mail_id) x"
            " WHERE p.space_id = $1 AND p.kind = 'mail' AND ($2::bigint IS NULL OR p.id < $2)"
            # A mail reported is never shown to its sender, a reviewer or not.
            " AND x.sender_id <> $4 ORDER BY p.id DESC LIMIT $3",
            space_id, before, limit + 1, reviewer_id,
        )
        found = []
        for r in rows[:limit]:
            item = item_from_row(r)
            if item.deleted:  # the reporter deleted their copy since: the report still shows the mail
                item = await _mail_content(conn, item)
            found.append(Report(
                r["report_id"], space_id, Person(r["reporter_id"], r["reporter_name"], r["reporter_school"]),
                r["note"], r["reported_at"], item,
            ))
        for p in found:
            await audit.record(
                conn, space_id=space_id, actor_id=reviewer_id, action="mail_report.view", target_kind="mail",
                target_id=p.mail.mail_id, details={"report_id": p.id},
            )
    return found, len(rows) > limit


async def _mail_content(conn: asyncpg.Connection, item: MailItem) -> MailItem:
    r = await conn.fetchrow("SELECT subject, text FROM mails WHERE id = $1", item.mail_id)
    return MailItem(
        item.mailbox_id, item.mail_id, item.space_id, item.thread_id, item.reply_to, item.sender, item.recipients,
        r["subject"], r["text"], item.created_at, item.origin, item.folder, item.read, item.deleted, item.client_id,
    )
