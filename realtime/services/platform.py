"""The platform's administrators at work: projects created (with their rooms and first teacher
admin), listed, renamed, closed all at once at the start of a school year, and a platform
moderator placed in one. Seed 000_…: a TwinSpace is made once the national office validated the
project, its first members being the teachers who registered it; "all eTwinning projects are
closed at the start of the school year", and their teacher admins reopen those that go on.

Rights: policy.decide_platform (administrators only). Closing and reopening one project is the
projects service's (its teacher admins, and administrators). Each change commits, is audited in
the project's own log, then holds on every process (SpaceChanged, MemberChanged).
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import Conflict, NotFound, spaces
from storage import projects as store
from storage.spaces import Space

from ..errors import Refused, ServiceError, database
from ..fanout.control import Changes, MemberChanged, SpaceChanged
from ..fanout.directory import Viewer
from ..policy import MODERATOR_MEMBER_ROLE, Area, PlatformAction, decide_platform
from .chat import room_data
from .feed import Feed
from .names import plain_text

# The rooms a project comes with, beside its journal: one per area, named after it — what
# `twinhub admin create-space` has always made (run/cli.py uses this too).
DEFAULT_ROOMS = tuple((area.value, area.value.replace("_", " ")) for area in Area)
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")  # the schema's own check (0001_core.sql)
MAX_NAME = 200
MAX_DESCRIPTION = 2000
MAX_PAGE = 500


def project_data(space: Space) -> dict[str, Any]:
    return {
        "id": space.id, "slug": space.slug, "name": space.name, "description": space.description,
        "closed": space.closed, "closed_at": iso(space.closed_at), "public": space.public,
    }


def _allowed(viewer: Viewer, action: PlatformAction) -> None:
    refusal = decide_platform(viewer.user.platform_role, action)
    if refusal is not None:
        raise Refused(refusal)


def _username(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{what} must be an account's username")
    return value


async def project_page(pool: asyncpg.Pool, closed: bool | None, before: int | None, limit: int) -> dict[str, Any]:
    """A page of every project, newest first (rights are the caller's: administrators here,
    platform moderators in moderation.py)."""
    found = await database(store.list_projects(pool, closed=closed, before=before, limit=limit + 1))
    return {
        "projects": [
            {**project_data(p.space), "created_at": iso(p.created_at), "members": p.members,
             "teacher_admins": p.teacher_admins}
            for p in found[:limit]
        ],
        "more": len(found) > limit,
    }


class Platform:
    def __init__(self, pool: asyncpg.Pool, changes: Changes, feed: Feed) -> None:
        self._pool = pool
        self._changes = changes
        self._feed = feed

    async def create(self, viewer: Viewer, body: dict[str, Any]) -> dict[str, Any]:
        """A new project: `slug`, `name`, `description` (optional), its default rooms and its
        first teacher admin `admin` (the username of an adult's account without a platform
        role). All or nothing; the admin's open sockets get a welcome listing it at once."""
        _allowed(viewer, PlatformAction.RUN_PROJECTS)
        slug = body.get("slug")
        if not isinstance(slug, str) or not SLUG.match(slug):
            raise ServiceError(ErrorCode.INVALID_FIELD, "slug: 2 to 63 lowercase letters, digits or dashes, "
                               "starting with a letter or a digit")
        name = plain_text(body.get("name"), "name", most=MAX_NAME)
        description = plain_text(body.get("description", ""), "description", most=MAX_DESCRIPTION, least=0,
                                 lines=True)
        admin = _username(body.get("admin"), "admin")
        try:
            made = await database(store.create_project(
                self._pool, slug=slug, name=name, description=description, rooms=list(DEFAULT_ROOMS), admin=admin,
                actor_id=viewer.user.id,
            ))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no adult account {admin!r} to make its teacher "
                               "admin") from None
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, f"the slug {slug} is taken; choose another") from None
        assert made.admin is not None
        await self._changes.send(MemberChanged(made.space.id, made.admin.id))
        await self._feed.announce(made.space.id)
        return {
            "space": project_data(made.space), "rooms": [room_data(r) for r in made.rooms],
            "admin": {"id": made.admin.id, "username": made.admin.username, "name": made.admin.display_name,
                      "school": made.admin.school},
        }

    async def projects(self, viewer: Viewer, closed: bool | None, before: int | None, limit: int) -> dict[str, Any]:
        """Every project, newest first, a page at a time (`before`: the last id of the previous
        page), only the closed or the open ones if `closed` says so."""
        _allowed(viewer, PlatformAction.RUN_PROJECTS)
        return await project_page(self._pool, closed, before, limit)

    async def rename(self, viewer: Viewer, space_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """A new `name` and/or `description` for a project (the slug, its public address, stays).
        Its members' open sockets get a welcome with it, on every process."""
        _allowed(viewer, PlatformAction.RUN_PROJECTS)
        if "name" not in body and "description" not in body:
            raise ServiceError(ErrorCode.INVALID_FIELD, "give a name, a description or both")
        name = plain_text(body["name"], "name", most=MAX_NAME) if "name" in body else None
        description = (plain_text(body["description"], "description", most=MAX_DESCRIPTION, least=0, lines=True)
                       if "description" in body else None)
        try:
            done = await database(store.rename_project(
                self._pool, space_id, name=name, description=description, actor_id=viewer.user.id,
            ))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}") from None
        if done.changed:
            await self._changes.send(SpaceChanged(space_id))
        return {"space": project_data(done.space), "changed": done.changed}

    async def close_all(self, viewer: Viewer) -> dict[str, Any]:
        """Close every open project (the start of a school year): each audited in its own log and
        in its feed, and told to its members' sockets on every process. Returns the ids closed
        now (those closed already are not)."""
        _allowed(viewer, PlatformAction.RUN_PROJECTS)
        closed = await database(store.close_all(self._pool, actor_id=viewer.user.id))
        for space_id in closed:
            await self._changes.send(SpaceChanged(space_id))
            await self._feed.announce(space_id)
        return {"closed": closed, "count": len(closed)}

    async def place_moderator(self, viewer: Viewer, space_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Make the platform moderator `username` a member of project `space_id`, as a visitor
        (policy.MODERATOR_MEMBER_ROLE): a mailbox to work with its teachers; they moderate as
        staff, as before. Effective on their open sockets at once."""
        _allowed(viewer, PlatformAction.PLACE_MODERATORS)
        username = _username(body.get("username"), "username")
        role = MODERATOR_MEMBER_ROLE.value
        try:
            await database(spaces.get_space(self._pool, space_id))  # projects are never deleted
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}") from None
        try:
            user = await database(store.add_moderator(
                self._pool, space_id, username, role, actor_id=viewer.user.id,
            ))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no platform moderator {username!r}") from None
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, f"{username} is a member of this project already") from None
        await self._changes.send(MemberChanged(space_id, user.id))
        await self._feed.announce(space_id)
        return {"space": space_id, "user_id": user.id, "role": role}
