"""The public view of a project: its name, description and journal, read-only, without login.

Pupils never appear by name here (policy.named_in_public): an entry or comment by a pupil is
signed "a pupil of <school>", one by anyone else who is not a teacher or a bot carries no name.
A teacher admin can turn the public view off; then it answers exactly like a project that does
not exist.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import NotFound
from storage import messages as messages_store
from storage import spaces as store
from storage.messages import Message
from storage.spaces import Space

from ..errors import ServiceError, database
from ..fanout.control import Changes, SpaceChanged
from ..fanout.directory import Directory, Viewer
from ..policy import Action, Role, named_in_public

PUPILS = (Role.PUPIL_ADMIN.value, Role.PUPIL_MEMBER.value)


def shown_author(name: str | None, school: str | None, role: str | None, is_bot: bool) -> dict[str, Any]:
    """An author as the public view shows them: teachers and bots by name, pupils as "a pupil of
    <school>", anyone else as "a member of the project". `badge` (`teacher`, `bot`, `pupil` or
    null) lets a page say it in its reader's language, and show a bot's entries as a bot's."""
    if named_in_public(Role(role) if role else None, is_bot):
        return {"name": name, "school": school, "badge": "bot" if is_bot else "teacher"}
    if role in PUPILS:
        return {"name": None, "label": f"a pupil of {school}" if school else "a pupil", "school": school,
                "badge": "pupil"}
    return {"name": None, "label": "a member of the project", "badge": None}


def public_author(m: Message, role: str | None, is_bot: bool) -> dict[str, Any]:
    return shown_author(m.author_name, m.author_school, role, is_bot)


def public_message(m: Message, role: str | None, is_bot: bool) -> dict[str, Any]:
    return {
        "id": m.id, "seq": m.seq, "title": m.title, "text": m.text, "parent_id": m.parent_id,
        "links": list(m.links or ()),
        "author": public_author(m, role, is_bot), "created_at": iso(m.created_at), "edited_at": iso(m.edited_at),
    }


class PublicView:
    def __init__(self, pool: asyncpg.Pool, directory: Directory, changes: Changes) -> None:
        self._pool = pool
        self._directory = directory
        self._changes = changes

    async def space(self, slug: str) -> Space:
        space = await database(store.space_by_slug(self._pool, slug)) if _slug_ok(slug) else None
        if space is None or not space.public:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no public project '{slug[:64]}'")
        return space

    async def page(self, slug: str, before: int | None, limit: int) -> dict[str, Any]:
        """The project's summary and a page of its journal (entries and comments), newest first."""
        space = await self.space(slug)
        journal = next(r for r in await database(self._directory.rooms_of([space.id])) if r.kind == "journal")
        found = await database(messages_store.public_journal(self._pool, space.id, journal.id, before, limit + 1))
        return {
            "slug": space.slug, "name": space.name, "description": space.description, "closed": space.closed,
            "journal": [public_message(m, role, bot) for m, role, bot in found[:limit]],
            "more": len(found) > limit,
        }

    async def set_public(self, viewer: Viewer, space_id: int, public: Any) -> dict[str, Any]:
        viewer.require(space_id, Action.MANAGE_SPACE)
        if not isinstance(public, bool):
            raise ServiceError(ErrorCode.INVALID_FIELD, "public must be true or false")
        try:
            space = await database(store.set_public(self._pool, space_id, public, actor_id=viewer.user.id))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}") from None
        # Every process reloads the space; there, web/public_stream.py ends the live streams.
        await self._changes.send(SpaceChanged(space_id))
        return {"id": space.id, "slug": space.slug, "public": space.public}


def _slug_ok(slug: str) -> bool:
    return 2 <= len(slug) <= 63 and slug.replace("-", "").isalnum() and slug.isascii()
