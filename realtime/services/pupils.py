"""Pupil accounts: teachers invite a class at once and get a sheet of generated logins to print
(pupils need no e-mail address); teachers reset pupils' passwords; pupils never change their own
(seed `000_…`); the same teachers lift a pupil's login lockout (a new password lifts it too).
Rights: policy.decide_invite, policy.decide_password_reset, policy.decide_unlock."""

from __future__ import annotations

import asyncio
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from anyascii import anyascii

from protocol import ErrorCode
from storage import Conflict, audit
from storage import pupils as store
from storage.pupils import NewPupil

from ..errors import ServiceError, database
from ..fanout.control import Changes, MemberChanged, SessionsRevoked
from ..fanout.directory import Directory, Viewer
from ..policy import Role, decide_invite, decide_password_reset, decide_unlock
from . import access
from .auth import hash_password
from .feed import Feed
from .languages import language_tag

MAX_PUPILS = 100  # per invitation
# No 0/O, 1/l/I: a pupil copies it from paper.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_TEACHER_SET = re.compile(r"^\S{5,8}$")  # a teacher may give a pupil a simple 5–8 character password


_DRAWS = 5  # a collision needs ~31^4 same-stem pupils: five draws in a row never all collide


def _generated(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def username_for(name: str) -> str:
    """'Zoé Dupont' -> 'zoe.d-k3f9', 'Łucja Ślusarczyk' -> 'lucja.s-…', 'Жанна' -> 'zhanna-…':
    readable ASCII a pupil can type on any keyboard. Every letter is transliterated (anyascii:
    Latin, Greek, Cyrillic and the other scripts, by Unicode's data rather than a hand table);
    the random tail keeps two Annas apart, and `invite` draws again on the rare collision."""
    letters = "".join(c if unicodedata.category(c)[0] in "LN" else " " for c in name)  # no emoji's :name:
    words = re.findall(r"[a-z0-9]+", anyascii(letters).lower()) or ["pupil"]
    stem = words[0][:12] + (f".{words[-1][0]}" if len(words) > 1 else "")
    return f"{stem}-{_generated(4)}"


def _distinct_usernames(names: list[str]) -> list[str]:
    """One username per name, none twice in the batch (the database refuses one taken before)."""
    chosen: list[str] = []
    for name in names:
        username = username_for(name)
        while username in chosen:
            username = username_for(name)
        chosen.append(username)
    return chosen


async def _nothing_to_lift(username: str) -> bool:
    return False


class Pupils:
    def __init__(
        self, pool: asyncpg.Pool, changes: Changes, feed: Feed, directory: Directory,
        lift_lock: Callable[[str], Awaitable[bool]] = _nothing_to_lift,
    ) -> None:
        """`lift_lock(username)`: the login throttle's (Auth.unlock), lifting a lockout on every
        process."""
        self._pool = pool
        self._changes = changes
        self._feed = feed
        self._directory = directory
        self._lift_lock = lift_lock

    async def invite(
        self, viewer: Viewer, space_id: int, names: Any, school: Any, language: Any = None
    ) -> list[dict[str, Any]]:
        """Create accounts for `names` (one per pupil) as pupil members, reading the page in
        `language` (the project's own when None); returns their logins, the only time the
        passwords are shown."""
        refusal = decide_invite(viewer.roles_in(space_id), Role.PUPIL_MEMBER)
        access.space(viewer, space_id, refusal)
        if not isinstance(names, list) or not names:
            raise ServiceError(ErrorCode.INVALID_FIELD, "pupils must be a non-empty list of names")
        if len(names) > MAX_PUPILS:
            raise ServiceError(ErrorCode.TOO_LARGE, f"at most {MAX_PUPILS} pupils at a time")
        if any(not isinstance(n, str) or not 1 <= len(n.strip()) <= 100 for n in names):
            raise ServiceError(ErrorCode.INVALID_FIELD, "each pupil's name must be 1 to 100 characters")
        language = (await self._directory.space(space_id)).language if language is None else language_tag(language)
        if school is None:
            school = viewer.user.school
        if not isinstance(school, str) or len(school) > 200:
            raise ServiceError(ErrorCode.INVALID_FIELD, "school must be a string of at most 200 characters")
        names = [n.strip() for n in names]
        passwords = [_generated(8) for _ in names]
        # argon2 is slow on purpose: hash off the event loop.
        hashes = await asyncio.to_thread(lambda: [hash_password(p) for p in passwords])
        for _ in range(_DRAWS):
            usernames = _distinct_usernames(names)
            pupils = [NewPupil(u, n, school, h, language) for u, n, h in zip(usernames, names, hashes, strict=True)]
            try:
                ids = await database(store.invite(
                    self._pool, space_id=space_id, actor_id=viewer.user.id, role=Role.PUPIL_MEMBER.value, pupils=pupils
                ))
                break
            except Conflict:  # a random tail met an existing username: nothing was stored; draw again
                continue
        else:
            raise ServiceError(ErrorCode.UNAVAILABLE, "no free usernames were found; please try again")
        logins = list(zip(names, usernames, passwords, strict=True))
        for user_id in ids:
            await self._changes.send(MemberChanged(space_id, user_id))
        await self._feed.announce(space_id)
        return [
            {"id": i, "name": n, "username": u, "password": p, "school": school, "language": language}
            for i, (n, u, p) in zip(ids, logins, strict=True)
        ]

    async def reset_password(self, viewer: Viewer, space_id: int, user_id: int, password: Any) -> dict[str, Any]:
        member = await database(store.membership(self._pool, space_id, user_id))
        refusal = decide_password_reset(
            viewer.roles_in(space_id), viewer.user.id, Role(member.role) if member else None,
            member.invited_by if member else None, home=member is not None and member.home_space_id == space_id,
        )
        access.space(viewer, space_id, refusal)
        if password is None:
            password = _generated(8)
        elif not isinstance(password, str) or not _TEACHER_SET.match(password):
            raise ServiceError(ErrorCode.INVALID_FIELD, "a password set by a teacher has 5 to 8 characters, no spaces")
        new_hash = await asyncio.to_thread(hash_password, password)
        await database(store.reset_password(
            self._pool, space_id=space_id, user_id=user_id, actor_id=viewer.user.id, password_hash=new_hash
        ))
        # The old password's sessions are over everywhere: its open sockets close (4001) at once.
        await self._changes.send(SessionsRevoked(user_id))
        # The new password works at once: a lockout of the old one's tries is over.
        assert member is not None
        await self._lift_lock(member.username)
        return {"id": user_id, "password": password}

    async def unlock(self, viewer: Viewer, space_id: int, user_id: int) -> dict[str, Any]:
        """Lift a pupil's login lockout (and forget their failed tries) on every process, for
        whoever may reset their password; written to the audit log of each of the pupil's projects
        (`login.unlocked`) when this project's log showed the lock running. `unlocked`: whether a
        lock (or a back-off) was lifted by this request — of several at once, the others find it
        lifted already."""
        member = await database(store.membership(self._pool, space_id, user_id))
        refusal = decide_unlock(
            viewer.roles_in(space_id), viewer.user.id, Role(member.role) if member else None,
            member.invited_by if member else None, home=member is not None and member.home_space_id == space_id,
        )
        access.space(viewer, space_id, refusal)
        assert member is not None
        lifted = await self._lift_lock(member.username)
        recorded = await database(audit.record_unlock(
            self._pool, user_id=user_id, space_id=space_id, actor_id=viewer.user.id
        ))
        return {"space": space_id, "user_id": user_id, "unlocked": lifted or recorded}
