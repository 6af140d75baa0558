"""Members' short profiles: about-me text, languages, interests — one per account. Who may read
one is the policy's (policy.decide_profile); the texts arrive checked and normalised
(services/profiles.py). A profile cleared by a moderator is audited in the project it was seen in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from . import audit
from .db import read, transaction


@dataclass(frozen=True, slots=True)
class Profile:
    about: str
    languages: tuple[str, ...]
    interests: tuple[str, ...]
    updated_at: datetime | None  # None: never written


EMPTY = Profile("", (), (), None)


def _profile(r: asyncpg.Record | None) -> Profile:
    if r is None:
        return EMPTY
    return Profile(r["about"], tuple(r["languages"]), tuple(r["interests"]), r["updated_at"])


async def get(pool: asyncpg.Pool, user_id: int) -> Profile:
    """The account's profile (EMPTY when it never wrote one)."""
    async with read(pool, "get_profile") as conn:
        return _profile(await conn.fetchrow(
            "SELECT about, languages, interests, updated_at FROM profiles WHERE user_id = $1", user_id
        ))


async def put(pool: asyncpg.Pool, user_id: int, about: str, languages: list[str], interests: list[str]) -> Profile:
    """Replace the account's profile; returns it as stored."""
    async with transaction(pool, "put_profile") as conn:
        return _profile(await conn.fetchrow(
            "INSERT INTO profiles (user_id, about, languages, interests) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (user_id) DO UPDATE SET about = EXCLUDED.about, languages = EXCLUDED.languages,"
            " interests = EXCLUDED.interests, updated_at = now()"
            " RETURNING about, languages, interests, updated_at",
            user_id, about, languages, interests,
        ))


async def clear(pool: asyncpg.Pool, *, user_id: int, space_id: int, actor_id: int, reason: str) -> bool:
    """A moderator empties someone's profile, audited in project `space_id`: the act, never the
    words (the audit log is kept for ever; what was cleared must not be). False: it was empty."""
    async with transaction(pool, "clear_profile") as conn:
        old = await conn.fetchrow(
            "DELETE FROM profiles WHERE user_id = $1 RETURNING about, languages, interests", user_id
        )
        if old is None or not (old["about"] or old["languages"] or old["interests"]):
            return False
        await audit.record(
            conn, space_id=space_id, actor_id=actor_id, action="profile.clear", target_kind="user", target_id=user_id,
            reason=reason,
        )
    return True
