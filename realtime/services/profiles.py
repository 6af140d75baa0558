"""Member profiles (docs/protocol.md, "Member profiles"): a short "about me", the languages one
speaks and a few interests — one per account, written by its owner (pupils too), read in a
project by the members the role matrix lets read it (policy.decide_profile), emptied by a
moderator (policy.decide_profile_clear). Never on the public view, never to another project.

Unicode hygiene: every text is NFKC-normalised (a full-width or ligature look-alike becomes the
plain letters) and trimmed; one holding a control, format (zero-width, bidirectional override),
private-use, unassigned or line-separator character is refused, not silently cleaned — so that
what a reader sees is what was written, and the writer knows why it was refused.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import erasure
from storage import profiles as store
from storage.profiles import Profile

from ..errors import ServiceError, database, rate_limited
from ..fanout.directory import Directory, Viewer
from ..policy import Role, badge, decide_profile, decide_profile_clear
from ..ratelimit import Limiter
from . import access

MAX_ABOUT = 500  # characters, after normalisation
MAX_ABOUT_LINES = 10
MAX_ITEMS = 10  # languages, and interests
MAX_INTEREST = 40
MAX_REASON = 500
# A language tag (BCP 47's common shapes: "fr", "pl", "en-gb", "zh-hant"): tags, not free text,
# so that a field meant for languages carries no message.
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8}){0,2}$")
# Control, format, surrogate, private-use and unassigned characters, and the line and paragraph
# separators: invisible, or able to reorder or break what a reader sees.
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Writing a profile: ten in a row, then one every ten seconds.
PROFILE_WRITES_IN_A_ROW = 10
PROFILE_REFILL = 1 / 10


def profile_data(p: Profile) -> dict[str, Any]:
    return {"about": p.about, "languages": list(p.languages), "interests": list(p.interests),
            "updated_at": iso(p.updated_at)}


def clean_text(value: Any, name: str, limit: int, *, lines: int = 1) -> str:
    """`value` as stored: NFKC, trimmed, at most `limit` characters and `lines` lines. Raises
    invalid_field (not a string; an invisible or control character; too many lines) or
    too_large."""
    if not isinstance(value, str):
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must be a string")
    text = unicodedata.normalize("NFKC", value.replace("\r\n", "\n")).strip()
    for ch in text:
        if (ch != "\n" or lines == 1) and unicodedata.category(ch) in _REFUSED:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} holds an invisible or control character "
                               f"(U+{ord(ch):04X}); remove it")
    if text.count("\n") >= lines:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} has at most {lines} line(s)")
    if len(text) > limit:
        raise ServiceError(ErrorCode.TOO_LARGE, f"{name} is at most {limit} characters")
    return text


def _items(value: Any, name: str, clean: Any) -> list[str]:
    """A list of at most MAX_ITEMS distinct, non-empty entries, each cleaned by `clean`, in order."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must be a list of strings")
    if len(value) > MAX_ITEMS:
        raise ServiceError(ErrorCode.TOO_LARGE, f"at most {MAX_ITEMS} {name}")
    found: list[str] = []
    for raw in value:
        item = clean(raw)
        if not item:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} may not hold an empty entry")
        if item not in found:
            found.append(item)
    return found


def _language(raw: Any) -> str:
    tag = clean_text(raw, "languages", 35).lower()  # longer than any tag: the pattern says what is wrong
    if not _LANGUAGE.match(tag):
        raise ServiceError(ErrorCode.INVALID_FIELD, "languages are language tags such as \"fr\", \"pl\" or \"en-gb\"")
    return tag


def _interest(raw: Any) -> str:
    return clean_text(raw, "interests", MAX_INTEREST)


class Profiles:
    def __init__(self, pool: asyncpg.Pool, directory: Directory, limiter: Limiter) -> None:
        self._pool = pool
        self._directory = directory
        self._limiter = limiter

    async def own(self, viewer: Viewer) -> dict[str, Any]:
        return profile_data(await database(store.get(self._pool, viewer.user.id)))

    async def put_own(self, viewer: Viewer, body: dict[str, Any]) -> dict[str, Any]:
        """Replace the viewer's profile: `about`, `languages`, `interests` (a field left out is
        emptied). Every account writes its own, pupils included."""
        about = clean_text(body.get("about", ""), "about", MAX_ABOUT, lines=MAX_ABOUT_LINES)
        languages = _items(body.get("languages"), "languages", _language)
        interests = _items(body.get("interests"), "interests", _interest)
        rate_limited(await self._limiter.acquire(viewer.user.id), "you are changing your profile")
        return profile_data(await database(store.put(self._pool, viewer.user.id, about, languages, interests)))

    async def of_member(self, viewer: Viewer, space_id: int, user_id: int) -> dict[str, Any]:
        """Member `user_id`'s profile as seen in project `space_id`, with their card there."""
        roles = viewer.roles_in(space_id)
        member = (await database(self._directory.roster(space_id))).get(user_id) if roles else None
        refusal = decide_profile(roles, member.role if member else None,
                                 own=member is not None and user_id == viewer.user.id)
        access.space(viewer, space_id, refusal)
        assert member is not None
        profile = await database(store.get(self._pool, user_id))
        card = {"id": user_id, "name": member.person.name, "school": member.person.school,
                "role": badge((member.role,))}
        return {"space": space_id, "user": card, **profile_data(profile)}

    async def clear(self, viewer: Viewer, space_id: int, user_id: int, reason: Any) -> dict[str, Any]:
        """Empty a member's profile (moderation), audited in this project with `reason`."""
        reason = "" if reason is None else reason
        if not isinstance(reason, str):
            raise ServiceError(ErrorCode.INVALID_FIELD, "reason must be a string")
        if len(reason) > MAX_REASON:
            raise ServiceError(ErrorCode.TOO_LARGE, f"a reason is at most {MAX_REASON} characters")
        facts = await database(erasure.account_in(self._pool, space_id, user_id)) if viewer.roles_in(space_id) else None
        refusal = decide_profile_clear(
            viewer.roles_in(space_id), Role(facts.role) if facts and facts.role else None,
            home=facts is not None and facts.home_space_id == space_id,
        )
        access.space(viewer, space_id, refusal)
        cleared = await database(store.clear(
            self._pool, user_id=user_id, space_id=space_id, actor_id=viewer.user.id, reason=reason
        ))
        return {"space": space_id, "user_id": user_id, "cleared": cleared}
