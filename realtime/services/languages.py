"""Languages: which the page speaks (its catalogues, listed in web/static/languages.json, each by
its own name), the one each account chose (kept by the server: a pupil on a shared classroom
computer gets theirs wherever they log in) and each project's own (pupils' new accounts start in
it; their login sheets are printed in it — docs/i18n.md). Rights: a project's language is its
teacher admins' (Action.MANAGE_SPACE); one's own is one's own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg

from protocol import ErrorCode
from storage import NotFound
from storage import accounts as accounts_store
from storage import spaces as spaces_store

from ..errors import ServiceError, database
from ..fanout.control import Changes, SpaceChanged
from ..fanout.directory import Viewer
from ..policy import Action

# tag -> the language's own name ("pl": "Polski"): the catalogues the page has.
LANGUAGES: dict[str, str] = json.loads(
    (Path(__file__).resolve().parents[1] / "web" / "static" / "languages.json").read_text("utf-8")
)


def language_tag(value: Any, what: str = "language") -> str:
    """A tag the page has a catalogue for, or invalid_field."""
    if not isinstance(value, str) or value not in LANGUAGES:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{what} must be one of: {', '.join(sorted(LANGUAGES))}")
    return value


class Languages:
    def __init__(self, pool: asyncpg.Pool, changes: Changes) -> None:
        self._pool = pool
        self._changes = changes

    async def set_own(self, viewer: Viewer, language: Any) -> dict[str, Any]:
        """The viewer's own language, or None to let the browser's languages decide."""
        tag = None if language is None else language_tag(language)
        await database(accounts_store.set_language(self._pool, viewer.user.id, tag))
        return {"language": tag}

    async def set_project(self, viewer: Viewer, space_id: int, language: Any) -> dict[str, Any]:
        """The project's own language (its teacher admins'); audited as `space.language`."""
        viewer.require(space_id, Action.MANAGE_SPACE)
        tag = language_tag(language)
        try:
            space = await database(spaces_store.set_language(self._pool, space_id, tag, actor_id=viewer.user.id))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}") from None
        # Every process reloads the space: the members' next welcome carries it.
        await self._changes.send(SpaceChanged(space_id))
        return {"id": space.id, "language": space.language}
