"""Invitations of teachers and visitors (seed: teacher admins invite members and choose their
role; an invited teacher accepts). Two ways in:

- an existing account, by its username: it appears in the invitee's pending invitations
  (`GET /api/invitations`) until they accept or decline it;
- a one-time code, for someone without an account (a parent, a head teacher, a teacher from a
  country outside eTwinning), handed over by the teacher: with it they make their account and
  join in one step, or join with the account they have.

Pupils are not invited this way: teachers make their accounts (realtime/services/pupils.py). Rights:
policy.decide_invite.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import Conflict, NotFound, WrongKind
from storage import invitations as store
from storage.invitations import Invitation

from ..errors import RateLimited, ServiceError, database, rate_limited
from ..fanout.control import Changes, InvitationChanged, MemberChanged
from ..fanout.directory import Directory, Viewer
from ..policy import Role, decide_invite
from ..ratelimit import Limiter, Throttle, address_key
from . import access
from .auth import MIN_ADULT_PASSWORD, Hashing, hash_password, token_hash
from .feed import Feed
from .lookalike import looks_like

INVITABLE = (Role.TEACHER_ADMIN.value, Role.TEACHER_MEMBER.value, Role.VISITOR.value)
INVITATION_DAYS = 30
# An invitation gives an adult's role: a pupil's account never takes one (adult and pupil are
# kinds of account, not roles; storage keeps it too).
def _for_adults() -> ServiceError:
    return ServiceError(ErrorCode.FORBIDDEN, "invitations are for adults' accounts: pupils join through their own teachers")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


def invitation_data(i: Invitation) -> dict[str, Any]:
    return {
        "id": i.id, "space": {"id": i.space_id, "name": i.space_name}, "role": i.role, "invitee": i.invitee,
        "label": i.label, "note": i.note, "invited_by": i.invited_by, "status": i.status,
        "created_at": iso(i.created_at), "expires_at": iso(i.expires_at), "answered_at": iso(i.answered_at),
        "answered_by": i.answered_by,
    }


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must be a string of at most {limit} characters")
    return value.strip()


def _person_text(value: Any, name: str, limit: int) -> str:
    """A name or school someone chose for themselves: NFKC-normalised (one spelling per look:
    full-width letters, ligatures) and free of format and control characters (zero-width
    joiners, bidi overrides: what could make two names look alike or one look like another)."""
    text = unicodedata.normalize("NFKC", _text(value, name, limit)).strip()
    if any(unicodedata.category(c) in ("Cf", "Cc") for c in text):
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must not contain invisible or control characters")
    return text


# Invitation codes are read from a card and typed, or read aloud over the phone: 16 characters of
# Crockford's base32 (digits and capitals without I, L, O, U), 80 bits, shown in groups of four
# ("K7QM-4TZP-9XWD-2F8H"). Typed back in any case, with or without the dashes or spaces; I and L
# read as 1, O as 0 (Crockford's rules). Only the SHA-256 of the 16 characters is kept. A code
# made before these (24 characters of URL-safe base64, case-sensitive) is kept as its own hash
# and still works as it was given.
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16  # 16 × 5 = 80 bits
_CROCKFORD_READS = str.maketrans({"I": "1", "L": "1", "O": "0"})
_CODE_SEPARATORS = re.compile("[\\s\\-\u2010-\u2015]+")  # spaces, dashes (hyphens, en and em dashes too)


def new_code() -> tuple[str, str]:
    """A fresh code: (what is stored, hashed: 16 characters; what is shown: in groups of four)."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return raw, "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def code_forms(typed: str) -> list[str]:
    """What a typed code may be, best first: a code of today (its 16 characters, read by
    Crockford's rules), and the text as typed (a code made before, which is case-sensitive)."""
    forms = []
    read = _CODE_SEPARATORS.sub("", typed).upper().translate(_CROCKFORD_READS)
    if len(read) == CODE_LENGTH and all(c in CODE_ALPHABET for c in read):
        forms.append(read)
    if typed not in forms:
        forms.append(typed)
    return forms


# Invitations a teacher admin may make at once, and a project: a term's parents by code, or a
# partner school's teachers, fit; a script trying usernames does not. Then one a minute each.
INVITES_PER_MEMBER = 40
INVITES_PER_PROJECT = 100
INVITE_REFILL = 1 / 60


class Invitations:
    def __init__(
        self, pool: asyncpg.Pool, changes: Changes, feed: Feed, *, by_member: Limiter, by_project: Limiter,
        codes: Throttle, hashing: Hashing, directory: Directory,
    ) -> None:
        self._pool = pool
        self._changes = changes
        self._feed = feed
        self._by_member = by_member
        self._by_project = by_project
        self._codes = codes
        self._hashing = hashing
        self._directory = directory

    async def invite(self, viewer: Viewer, space_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A teacher admin invites `username` with `role`, or (no username) makes a one-time code,
        shown in this answer only."""
        role = body.get("role")
        if role not in INVITABLE:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"role must be one of {', '.join(INVITABLE)}")
        refusal = decide_invite(viewer.roles_in(space_id), Role(role))
        access.space(viewer, space_id, refusal)
        rate_limited(await self._by_member.acquire(viewer.user.id), "you are inviting")
        rate_limited(await self._by_project.acquire(space_id), "this project is inviting")
        note = _text(body.get("note"), "note", 500)
        expires_at = datetime.now(UTC) + timedelta(days=INVITATION_DAYS)
        username = body.get("username")
        if username is not None:
            if not isinstance(username, str) or not 1 <= len(username) <= 64:
                raise ServiceError(ErrorCode.INVALID_FIELD, "username must be an account's username")
            try:
                done = await database(store.invite_account(
                    self._pool, space_id=space_id, role=role, username=username, invited_by=viewer.user.id,
                    note=note, expires_at=expires_at,
                ))
            except NotFound:
                raise ServiceError(ErrorCode.NOT_FOUND, f"there is no account {username!r} to invite") from None
            except Conflict as exc:
                raise ServiceError(ErrorCode.CONFLICT, f"{username} is {exc}") from None
            await self._tell_invitee(done)
            return {"invitation": invitation_data(done)}
        stored, code = new_code()
        done = await database(store.invite_by_code(
            self._pool, space_id=space_id, role=role, code_hash=token_hash(stored),
            label=_text(body.get("label"), "label", 200), invited_by=viewer.user.id, note=note, expires_at=expires_at,
        ))
        return {"invitation": invitation_data(done), "code": code}

    async def of_space(self, viewer: Viewer, space_id: int, status: str | None = None) -> dict[str, Any]:
        """The project's invitations, newest first (teacher admins): every status, or with
        `status` "pending" only those still waiting for an answer."""
        if status not in (None, "pending"):
            raise ServiceError(ErrorCode.INVALID_FIELD, "status must be pending (or left out: every invitation)")
        refusal = decide_invite(viewer.roles_in(space_id), Role.TEACHER_ADMIN)
        access.space(viewer, space_id, refusal)
        found = await database(store.of_space(self._pool, space_id, pending=status == "pending"))
        return {"space": space_id, "invitations": [invitation_data(i) for i in found]}

    async def revoke(self, viewer: Viewer, space_id: int, invitation_id: int) -> dict[str, Any]:
        refusal = decide_invite(viewer.roles_in(space_id), Role.TEACHER_ADMIN)
        access.space(viewer, space_id, refusal)
        done = await database(store.revoke(self._pool, space_id, invitation_id, viewer.user.id))
        if done is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no pending invitation {invitation_id} in this project")
        await self._tell_invitee(done)
        return {"invitation": invitation_data(done)}

    async def mine(self, viewer: Viewer) -> dict[str, Any]:
        found = await database(store.pending_for(self._pool, viewer.user.id))
        return {"invitations": [invitation_data(i) for i in found]}

    async def answer(self, viewer: Viewer, invitation_id: int, accept: bool) -> dict[str, Any]:
        try:
            done = await database(store.answer(self._pool, invitation_id, viewer.user.id, accept))
        except WrongKind:
            raise _for_adults() from None
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, "you are already a member of this project") from None
        if done is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"you have no pending invitation {invitation_id}")
        if accept:
            await self._joined(done, viewer.user.id)
        await self._tell_invitee(done)  # their other sockets show it answered
        return {"invitation": invitation_data(done)}

    async def notice(self, user_id: int, invitation_id: int) -> dict[str, Any] | None:
        """What an `invitation` frame tells `user_id` of invitation `invitation_id`, if it names
        them (None otherwise: nobody is told of another's invitation)."""
        found = await database(store.of_invitee(self._pool, invitation_id, user_id))
        return None if found is None else invitation_data(found)

    async def _tell_invitee(self, done: Invitation) -> None:
        """The invitee's open sockets, on every process, are told (an invitation by code has
        nobody to tell until it is redeemed)."""
        invitee = done.invitee
        if invitee is not None:
            await self._changes.send(InvitationChanged(int(invitee["id"]), done.id))

    async def redeem(self, viewer: Viewer | None, body: dict[str, Any], address: str = "?") -> dict[str, Any]:
        """Accept a code: signed in, with one's account; otherwise with a new account made from
        `username`, `name`, `password` (and `school`)."""
        code = body.get("code")
        if not isinstance(code, str) or not 8 <= len(code) <= 100:
            raise ServiceError(ErrorCode.INVALID_FIELD, "code must be the invitation code you were given")
        unknown = ServiceError(ErrorCode.NOT_FOUND, "this invitation code is unknown, used, withdrawn or expired")
        # Codes are guessed like passwords: every try counts per address (an IPv6 /64) until it
        # joins; past the limit every try is refused for a while, right or wrong. So a good code
        # is no free oracle for usernames either: a taken one counts like a wrong code.
        addr_key = f"addr:{address_key(address)}"
        wait = await self._codes.wait(addr_key)
        if wait:
            raise RateLimited(wait, f"too many wrong invitation codes; try again in {int(wait) + 1} s")
        attempt = await self._codes.reserve(addr_key)
        if not attempt.allowed:
            raise RateLimited(1.0, "too many wrong invitation codes; try again in a moment")
        space_id = None
        for form in code_forms(code.strip()):
            space_id = await database(store.pending_code_space(self._pool, token_hash(form)))
            if space_id is not None:
                code = form  # the form it was made in: its hash is the one kept
                break
        if space_id is None:
            raise unknown  # checked before any password is hashed: a wrong code costs no argon2
        if viewer is not None:
            if viewer.is_moderator:
                raise ServiceError(ErrorCode.FORBIDDEN, "platform moderators are in every project without joining one")
            try:
                done = await database(store.redeem(self._pool, token_hash(code), viewer.user.id))
            except WrongKind:
                raise _for_adults() from None
            except Conflict:
                raise ServiceError(ErrorCode.CONFLICT, "you are already a member of this project") from None
            if done is None:
                raise unknown
            await self._joined(done, viewer.user.id)
            await self._codes.release(addr_key, attempt.token)
            return {"invitation": invitation_data(done), "user": {"id": viewer.user.id}}
        username, name, password = body.get("username"), body.get("name"), body.get("password")
        if not isinstance(username, str) or not USERNAME.match(username):
            raise ServiceError(
                ErrorCode.INVALID_FIELD, "username: 3 to 64 lowercase letters, digits, dots, dashes or underscores"
            )
        name = _person_text(name, "name", 100)
        if not name:
            raise ServiceError(ErrorCode.INVALID_FIELD, "name must be 1 to 100 characters")
        roster = await database(self._directory.roster(space_id))
        if looks_like(name, [m.person.name for m in roster.values()]):
            raise ServiceError(
                ErrorCode.CONFLICT, "a member of this project already has that name, or one that looks like it: "
                "add an initial or your school"
            )
        if not isinstance(password, str) or not MIN_ADULT_PASSWORD <= len(password) <= 200:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"password must have {MIN_ADULT_PASSWORD} to 200 characters")
        school = _person_text(body.get("school"), "school", 200)
        async with self._hashing.slot():
            password_hash = await asyncio.to_thread(hash_password, password)
        try:
            made = await database(store.redeem_new_account(
                self._pool, token_hash(code), username=username, display_name=name,
                password_hash=password_hash, school=school,
            ))
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, f"the username {username} is taken; choose another") from None
        if made is None:
            raise unknown
        done, user = made
        await self._joined(done, user.id)
        await self._codes.release(addr_key, attempt.token)
        return {"invitation": invitation_data(done), "user": {"id": user.id, "username": user.username}}

    async def _joined(self, done: Invitation, user_id: int) -> None:
        # Their open sockets may follow the project's channels at once (every process).
        await self._changes.send(MemberChanged(done.space_id, user_id))
        await self._feed.announce(done.space_id)
