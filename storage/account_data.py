"""One account's data, read for its export (docs/privacy.md, "Export"): the account itself, its
memberships, the messages it wrote and the mail it holds. Messages and mail are read in pages by
their keys, each page a short statement of its own, so that a long export never holds a
connection while a slow client downloads it.

Mail is read only from the account's own mailboxes (the owner is the argument, as in
storage/mail.py): the copies it holds, sent and received, never anyone else's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .db import read
from .mail import ITEM_SELECT, MailItem, item_from_row


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    username: str
    display_name: str
    school: str
    kind: str
    home_space_id: int | None
    platform_role: str | None
    created_at: datetime
    language: str | None = None  # the page's language the account chose


@dataclass(frozen=True, slots=True)
class MembershipRow:
    space_id: int
    space_name: str
    role: str
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class OwnMessage:
    id: int
    space_id: int
    room_id: int
    room_name: str
    area: str
    seq: int
    text: str | None  # None once erased
    title: str | None
    parent_id: int | None
    links: tuple[str, ...] | None
    created_at: datetime
    edited_at: datetime | None
    deleted_at: datetime | None
    hidden_at: datetime | None


async def account(pool: asyncpg.Pool, user_id: int) -> AccountRow | None:
    """The account's own row (None: it does not exist, or was erased)."""
    async with read(pool, "export_account") as conn:
        r = await conn.fetchrow(
            "SELECT id, username, display_name, school, kind, home_space_id, platform_role, created_at, language FROM users"
            " WHERE id = $1 AND erased_at IS NULL",
            user_id,
        )
    return None if r is None else AccountRow(
        r["id"], r["username"], r["display_name"], r["school"], r["kind"], r["home_space_id"], r["platform_role"],
        r["created_at"], r["language"],
    )


async def memberships(pool: asyncpg.Pool, user_id: int, space_id: int | None = None) -> list[MembershipRow]:
    """The projects the account is in (only `space_id`, when given), oldest project first."""
    async with read(pool, "export_memberships") as conn:
        rows = await conn.fetch(
            "SELECT m.space_id, s.name, m.role, m.joined_at FROM members m JOIN spaces s ON s.id = m.space_id"
            " WHERE m.user_id = $1 AND ($2::bigint IS NULL OR m.space_id = $2) ORDER BY m.space_id",
            user_id, space_id,
        )
    return [MembershipRow(r["space_id"], r["name"], r["role"], r["joined_at"]) for r in rows]


async def messages(
    pool: asyncpg.Pool, author_id: int, after: int, limit: int, space_id: int | None = None
) -> list[OwnMessage]:
    """A page of the messages the account wrote (in project `space_id` only, when given), by id,
    with id > `after`: every state — an erased one without its words, a hidden one with them
    (they are the author's own)."""
    async with read(pool, "export_messages") as conn:
        rows = await conn.fetch(
            "SELECT m.id, m.space_id, m.room_id, r.name AS room_name, r.area, m.seq, m.text, m.title, m.parent_id,"
            " m.links, m.created_at, m.edited_at, m.deleted_at, m.hidden_at"
            " FROM messages m JOIN rooms r ON r.id = m.room_id"
            " WHERE m.author_id = $1 AND m.id > $2 AND ($4::bigint IS NULL OR m.space_id = $4)"
            " ORDER BY m.id LIMIT $3",
            author_id, after, limit, space_id,
        )
    return [
        OwnMessage(
            r["id"], r["space_id"], r["room_id"], r["room_name"], r["area"], r["seq"], r["text"], r["title"],
            r["parent_id"], None if r["links"] is None else tuple(r["links"]), r["created_at"], r["edited_at"],
            r["deleted_at"], r["hidden_at"],
        )
        for r in rows
    ]


async def mail(pool: asyncpg.Pool, owner_id: int, after: tuple[int, int], limit: int) -> list[MailItem]:
    """A page of the mail the account holds in its own mailboxes (every project, every folder,
    not the copies it deleted), by (mailbox, mail), after the key `after` ((0, 0) to begin)."""
    async with read(pool, "export_mail") as conn:
        rows = await conn.fetch(
            f"{ITEM_SELECT} WHERE b.owner_id = $1 AND i.deleted_at IS NULL AND (i.mailbox_id, i.mail_id) > ($2, $3)"
            " ORDER BY i.mailbox_id, i.mail_id LIMIT $4",
            owner_id, after[0], after[1], limit,
        )
    return [item_from_row(r) for r in rows]
