"""Erasing an account (docs/privacy.md, "Erasure"): an adult deleting their own, or the teacher
admins of a pupil's home project erasing the pupil's.

What goes: who the person was — name, username, school, password, sessions, profile — and what
ties them to the projects now: memberships, mutes, their own copies of mail. What stays: what
others hold or need as evidence — messages (0014: never deleted; their words stay, signed by
"a former member"), the mail they sent in their recipients' mailboxes, the reports they made or
that name them, and the append-only audit log, whose entries keep naming the account's id, an id
that no longer maps to a person. All of it in one transaction, with its audit entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from . import activity, audit
from .activity import NewActivity
from .db import read, transaction
from .errors import Conflict, LastTeacherAdmin, NotFound

FORMER_MEMBER = "a former member"  # what an erased account's name reads, wherever it is shown


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the rights over an account are decided on: its kind, its home, and its role in the
    project asked about (None: not a member there)."""

    id: int
    kind: str  # adult | pupil
    home_space_id: int | None
    role: str | None


async def account_in(pool: asyncpg.Pool, space_id: int, user_id: int) -> AccountFacts | None:
    """An account that is not erased, with its role in `space_id`; None if there is none."""
    async with read(pool, "account_in") as conn:
        r = await conn.fetchrow(
            "SELECT u.id, u.kind, u.home_space_id, m.role FROM users u"
            " LEFT JOIN members m ON m.space_id = $1 AND m.user_id = u.id"
            " WHERE u.id = $2 AND u.erased_at IS NULL AND u.platform_role IS NULL",
            space_id, user_id,
        )
    return None if r is None else AccountFacts(r["id"], r["kind"], r["home_space_id"], r["role"])


@dataclass(frozen=True, slots=True)
class Erased:
    user_id: int
    spaces: list[int]  # the projects the account was a member of, now told
    # The contents of the files they uploaded, now unrecorded: (project, SHA-256) each, for the
    # caller to delete from the blob store where no other upload holds the same.
    files: list[tuple[int, bytes]] = field(default_factory=list)


async def erase(
    pool: asyncpg.Pool, *, user_id: int, actor_id: int, reason: str = "", by_project: int | None = None,
    expected_hash: str | None = None,
) -> Erased:
    """Erase account `user_id`, by `actor_id` (themselves, or a teacher admin of `by_project`, the
    pupil's home). `expected_hash`: the password hash the account's own password was just
    checked against — if it changed meanwhile nothing is erased (Conflict). Raises NotFound if
    the account does not exist, is erased already (of twenty erasures at once, one erases), or
    is not a pupil at home in `by_project`; LastTeacherAdmin if a project would be left without
    a teacher admin (the account stays as it is)."""
    async with transaction(pool, "erase_account") as conn:
        account = await conn.fetchrow(
            "SELECT password_hash, kind, home_space_id FROM users WHERE id = $1 AND erased_at IS NULL"
            " AND platform_role IS DISTINCT FROM 'bot' FOR UPDATE",
            user_id,
        )
        if account is None:
            raise NotFound(f"user {user_id}")
        if expected_hash is not None and account["password_hash"] != expected_hash:
            raise Conflict(f"user {user_id}: the password changed meanwhile")
        if by_project is not None and (account["kind"] != "pupil" or account["home_space_id"] != by_project):
            raise NotFound(f"no pupil {user_id} at home in project {by_project}")
        memberships = await conn.fetch(
            "SELECT space_id, role FROM members WHERE user_id = $1 ORDER BY space_id", user_id
        )
        led = [m["space_id"] for m in memberships if m["role"] == "teacher_admin"]
        if led:
            # The projects' rows are locked first (in id order), so that two of a project's teacher
            # admins erasing their accounts at once do not both find the other one still there.
            await conn.execute("SELECT 1 FROM spaces WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", led)
            alone = await conn.fetch(
                "SELECT s FROM unnest($1::bigint[]) s WHERE NOT EXISTS (SELECT 1 FROM members"
                " WHERE space_id = s AND role = 'teacher_admin' AND user_id <> $2) ORDER BY s",
                led, user_id,
            )
            if alone:
                raise LastTeacherAdmin([r["s"] for r in alone])
        # The feed's records first, while the actor's role (read by record()) is still there —
        # someone erasing their own account is a member until the next statement.
        await activity.record(conn, [
            NewActivity(m["space_id"], "member.removed", activity.member_record_area(m["role"]), actor_id,
                        user_id=user_id)
            for m in memberships
        ])
        # Leaving every project: the trigger of 0017 revokes the bots they made, each audited.
        await conn.execute("DELETE FROM members WHERE user_id = $1", user_id)
        details = {"by_project": by_project} if by_project is not None else {"own": True}
        for space_id in [m["space_id"] for m in memberships] or [None]:
            await audit.record(
                conn, space_id=space_id, actor_id=actor_id, action="account.erased", target_kind="user",
                target_id=user_id, reason=reason, details=details,
            )
        await conn.execute("DELETE FROM mutes WHERE user_id = $1", user_id)
        await _drop_own_mail(conn, user_id)
        # Invitations: a pending one to them is void; the words a teacher wrote about whom a code
        # was for ("Mme Durand, a parent") go with the person they named.
        await conn.execute(
            "UPDATE invitations SET status = 'revoked', answered_at = now()"
            " WHERE invitee_id = $1 AND status = 'pending'",
            user_id,
        )
        await conn.execute(
            "UPDATE invitations SET label = '', note = ''"
            " WHERE invitee_id = $1 OR (answered_by = $1 AND status = 'accepted')",
            user_id,
        )
        await conn.execute("DELETE FROM profiles WHERE user_id = $1", user_id)
        await conn.execute("DELETE FROM room_reads WHERE user_id = $1", user_id)
        # The files they added: a child's photos go with the child.
        uploaded = await conn.fetch(
            "DELETE FROM files WHERE uploader_id = $1 RETURNING space_id, sha256, thumb_sha256", user_id
        )
        await conn.execute("DELETE FROM sessions WHERE user_id = $1", user_id)
        await conn.execute(
            "UPDATE users SET display_name = $2, username = '#erased-' || id, school = '', password_hash = NULL,"
            " password_reset_by = NULL, password_reset_at = NULL, erased_at = now() WHERE id = $1",
            user_id, FORMER_MEMBER,
        )
    contents = {(r["space_id"], bytes(c)) for r in uploaded for c in (r["sha256"], r["thumb_sha256"]) if c is not None}
    return Erased(user_id, [m["space_id"] for m in memberships], sorted(contents))


async def _drop_own_mail(conn: asyncpg.Connection, user_id: int) -> None:
    """Delete every copy of mail the account holds, as if they had deleted each one (nobody may
    open that mailbox again: its channel's owner is gone, so no event is logged). A mail nobody
    holds any more loses its words, unless it was reported (storage/mail.py's rule for the last
    holder). The copies their recipients hold are theirs, and stay."""
    dropped = await conn.fetch(
        "UPDATE mailbox_items i SET deleted_at = now() FROM mailboxes b"
        " WHERE b.id = i.mailbox_id AND b.owner_id = $1 AND i.deleted_at IS NULL RETURNING i.mail_id",
        user_id,
    )
    await conn.execute(
        "UPDATE mailboxes SET unread_inbox = 0, unread_sent = 0, unread_archive = 0, unread_trash = 0"
        " WHERE owner_id = $1",
        user_id,
    )
    if dropped:
        await conn.execute(
            "UPDATE mails m SET subject = '', text = '' WHERE m.id = ANY($1::bigint[])"
            " AND NOT EXISTS (SELECT 1 FROM mailboxes b JOIN mailbox_items i ON i.mailbox_id = b.id"
            "   WHERE b.space_id = m.space_id AND b.owner_id = ANY(m.recipient_ids || m.sender_id)"
            "   AND i.mail_id = m.id AND i.deleted_at IS NULL)"
            " AND NOT EXISTS (SELECT 1 FROM reports WHERE mail_id = m.id)",
            [r["mail_id"] for r in dropped],
        )
