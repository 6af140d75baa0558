"""Invitations of teachers and visitors: made by a teacher admin, answered by the invitee.

An invitation names an existing account (`invitee_id`) or carries a one-time code (stored as
its hash) for someone without one. Answering is one transaction: the invitation's state, the
membership (storage/spaces.put_member: mailbox, feed record, audit) and the audit row of the
answer. Who may invite is the policy's call (realtime/policy.decide_invite).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit
from .accounts import User, user_from_row
from .db import read, transaction
from .errors import Conflict, NotFound
from .spaces import put_member


@dataclass(frozen=True, slots=True)
class Invitation:
    id: int
    space_id: int
    space_name: str
    role: str
    invitee: dict[str, object] | None  # id, username, name — None for a code
    label: str
    note: str
    invited_by: dict[str, object]  # id, name, school
    status: str  # pending | accepted | declined | revoked | expired
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None
    answered_by: dict[str, object] | None  # id, name: who answered (for a code, who joined with it)

    @property
    def by_code(self) -> bool:
        return self.invitee is None


_SELECT = (
    "SELECT i.*, CASE WHEN i.status = 'pending' AND i.expires_at <= now() THEN 'expired' ELSE i.status END"
    " AS state, s.name AS space_name, iu.username AS invitee_username, iu.display_name AS invitee_name,"
    " bu.display_name AS inviter_name, bu.school AS inviter_school, au.display_name AS answerer_name"
    " FROM invitations i JOIN spaces s ON s.id = i.space_id JOIN users bu ON bu.id = i.invited_by"
    " LEFT JOIN users iu ON iu.id = i.invitee_id LEFT JOIN users au ON au.id = i.answered_by"
)


def _invitation(r: asyncpg.Record) -> Invitation:
    invitee = None
    if r["invitee_id"] is not None:
        # Their real name is theirs to give: shown once they accepted, not to whoever typed a username.
        invitee = {"id": r["invitee_id"], "username": r["invitee_username"],
                   "name": r["invitee_name"] if r["state"] == "accepted" else None}
    return Invitation(
        r["id"], r["space_id"], r["space_name"], r["role"], invitee, r["label"], r["note"],
        {"id": r["invited_by"], "name": r["inviter_name"], "school": r["inviter_school"]},
        r["state"], r["created_at"], r["expires_at"], r["answered_at"],
        None if r["answered_by"] is None else {"id": r["answered_by"], "name": r["answerer_name"]},
    )


async def invite_account(
    pool: asyncpg.Pool, *, space_id: int, role: str, username: str, invited_by: int, note: str, expires_at: datetime
) -> Invitation:
    """Invite the adult account `username`. Raises NotFound — the same for no such account, a
    platform moderator's, and a pupil's (pupils join through their own teachers, never by
    username) — or Conflict (already a member, or already invited and not yet answered)."""
    async with transaction(pool, "invite_account") as conn:
        invitee = await conn.fetchval(
            "SELECT id FROM users WHERE username = $1 AND platform_role IS NULL AND kind = 'adult'", username
        )
        if invitee is None:
            raise NotFound(f"account {username}")
        if await conn.fetchval("SELECT 1 FROM members WHERE space_id = $1 AND user_id = $2", space_id, invitee):
            raise Conflict("already a member")
        # One that expired unanswered does not stand in the way of a new one.
        await conn.execute(
            "UPDATE invitations SET status = 'expired' WHERE space_id = $1 AND invitee_id = $2"
            " AND status = 'pending' AND expires_at <= now()",
            space_id, invitee,
        )
        invitation_id = await conn.fetchval(
            "INSERT INTO invitations (space_id, role, invitee_id, invited_by, note, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
            space_id, role, invitee, invited_by, note, expires_at,
        )
        if invitation_id is None:
            raise Conflict("already invited")
        await audit.record(
            conn, space_id=space_id, actor_id=invited_by, action="member.invite", target_kind="user",
            target_id=invitee, reason=note, details={"role": role, "invitation_id": invitation_id},
        )
        return _invitation(await conn.fetchrow(f"{_SELECT} WHERE i.id = $1", invitation_id))


async def invite_by_code(
    pool: asyncpg.Pool, *, space_id: int, role: str, code_hash: bytes, label: str, invited_by: int, note: str,
    expires_at: datetime,
) -> Invitation:
    """A one-time code for someone without an account (the caller shows the code once)."""
    async with transaction(pool, "invite_by_code") as conn:
        invitation_id = await conn.fetchval(
            "INSERT INTO invitations (space_id, role, code_hash, label, invited_by, note, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            space_id, role, code_hash, label, invited_by, note, expires_at,
        )
        await audit.record(
            conn, space_id=space_id, actor_id=invited_by, action="member.invite", target_kind="invitation",
            target_id=invitation_id, reason=note, details={"role": role, "label": label},
        )
        return _invitation(await conn.fetchrow(f"{_SELECT} WHERE i.id = $1", invitation_id))


async def pending_for(pool: asyncpg.Pool, user_id: int) -> list[Invitation]:
    """The invitations waiting for the user's answer, newest first (expired ones left out)."""
    async with read(pool, "pending_invitations") as conn:
        rows = await conn.fetch(
            f"{_SELECT} WHERE i.invitee_id = $1 AND i.status = 'pending' AND i.expires_at > now() ORDER BY i.id DESC",
            user_id,
        )
    return [_invitation(r) for r in rows]


async def of_space(pool: asyncpg.Pool, space_id: int, limit: int = 200, *, pending: bool = False) -> list[Invitation]:
    """The project's invitations, newest first; with `pending`, only those still waiting for an
    answer (not expired)."""
    where = " AND i.status = 'pending' AND i.expires_at > now()" if pending else ""
    async with read(pool, "space_invitations") as conn:
        rows = await conn.fetch(f"{_SELECT} WHERE i.space_id = $1{where} ORDER BY i.id DESC LIMIT $2", space_id, limit)
    return [_invitation(r) for r in rows]


async def of_invitee(pool: asyncpg.Pool, invitation_id: int, user_id: int) -> Invitation | None:
    """Invitation `invitation_id` if it names `user_id` (in any status), else None."""
    async with read(pool, "invitee_invitation") as conn:
        r = await conn.fetchrow(f"{_SELECT} WHERE i.id = $1 AND i.invitee_id = $2", invitation_id, user_id)
    return None if r is None else _invitation(r)


async def _answer(conn: asyncpg.Connection, row: asyncpg.Record, user_id: int, accept: bool) -> Invitation:
    status = "accepted" if accept else "declined"
    await conn.execute(
        "UPDATE invitations SET status = $2, answered_at = now(), answered_by = $3 WHERE id = $1",
        row["id"], status, user_id,
    )
    if accept:
        await put_member(conn, row["space_id"], user_id, row["role"], actor_id=user_id, invited_by=row["invited_by"])
    await audit.record(
        conn, space_id=row["space_id"], actor_id=user_id, action=f"invitation.{status}", target_kind="invitation",
        target_id=row["id"], details={"role": row["role"]},
    )
    return _invitation(await conn.fetchrow(f"{_SELECT} WHERE i.id = $1", row["id"]))


async def answer(pool: asyncpg.Pool, invitation_id: int, user_id: int, accept: bool) -> Invitation | None:
    """The invitee accepts or declines their pending invitation. None if they have no such
    pending invitation (someone else's answers the same). Raises Conflict when accepting while
    already a member (they joined another way meanwhile: their role stays theirs to change by
    the project's teacher admins, not by an old invitation)."""
    async with transaction(pool, "answer_invitation") as conn:
        row = await conn.fetchrow(
            "SELECT * FROM invitations WHERE id = $1 AND invitee_id = $2 AND status = 'pending' AND expires_at > now()"
            " FOR UPDATE",
            invitation_id, user_id,
        )
        if row is None:
            return None
        if accept and await conn.fetchval(
            "SELECT 1 FROM members WHERE space_id = $1 AND user_id = $2", row["space_id"], user_id
        ):
            raise Conflict("already a member")
        return await _answer(conn, row, user_id, accept)


async def _pending_code(conn: asyncpg.Connection, code_hash: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM invitations WHERE code_hash = $1 AND status = 'pending' AND expires_at > now() FOR UPDATE",
        code_hash,
    )


async def pending_code_space(pool: asyncpg.Pool, code_hash: bytes) -> int | None:
    """The project of a code that may be redeemed now, or None (a cheap look before any password
    is hashed)."""
    async with read(pool, "pending_code_space") as conn:
        return await conn.fetchval(
            "SELECT space_id FROM invitations WHERE code_hash = $1 AND status = 'pending' AND expires_at > now()",
            code_hash,
        )


async def redeem(pool: asyncpg.Pool, code_hash: bytes, user_id: int) -> Invitation | None:
    """A signed-in user accepts a code. None if the code is unknown, used, revoked or expired.
    Raises Conflict if they are already a member (the code stays usable)."""
    async with transaction(pool, "redeem_invitation") as conn:
        row = await _pending_code(conn, code_hash)
        if row is None:
            return None
        if await conn.fetchval("SELECT 1 FROM members WHERE space_id = $1 AND user_id = $2", row["space_id"], user_id):
            raise Conflict("already a member")
        return await _answer(conn, row, user_id, True)


async def redeem_new_account(
    pool: asyncpg.Pool, code_hash: bytes, *, username: str, display_name: str, password_hash: str, school: str
) -> tuple[Invitation, User] | None:
    """Someone without an account accepts a code: their account and their membership are made
    in one transaction. None if the code is not pending; Conflict if the username is taken."""
    async with transaction(pool, "redeem_invitation_new_account") as conn:
        row = await _pending_code(conn, code_hash)
        if row is None:
            return None
        try:
            r = await conn.fetchrow(
                "INSERT INTO users (username, display_name, password_hash, school) VALUES ($1, $2, $3, $4)"
                " RETURNING id, username, display_name, platform_role, school",
                username, display_name, password_hash, school,
            )
        except asyncpg.UniqueViolationError:
            raise Conflict("username taken") from None
        user = user_from_row(r)
        return await _answer(conn, row, user.id, True), user


async def revoke(pool: asyncpg.Pool, space_id: int, invitation_id: int, actor_id: int) -> Invitation | None:
    """Withdraw a pending invitation of the space. None if there is none pending with that id."""
    async with transaction(pool, "revoke_invitation") as conn:
        done = await conn.fetchval(
            "UPDATE invitations SET status = 'revoked', answered_at = now(), answered_by = $3"
            " WHERE id = $1 AND space_id = $2 AND status = 'pending' RETURNING id",
            invitation_id, space_id, actor_id,
        )
        if done is None:
            return None
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="invitation.revoked", target_kind="invitation",
            target_id=invitation_id,
        )
        return _invitation(await conn.fetchrow(f"{_SELECT} WHERE i.id = $1", invitation_id))
