"""The projects service: closing and reopening a space, its rooms (made, renamed, archived,
unarchived, deleted), changing who belongs to it (a removed pupil added back included), muting.

Each change commits, then sends a control message on the bus so that every process's directory
reloads it and every open socket is re-checked at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import Conflict, NotFound, WrongKind
from storage import members as members_store
from storage import mutes as mutes_store
from storage import pupils as pupils_store
from storage import spaces as store
from storage.spaces import Room, Space

from ..channels import ROOM
from ..errors import Refused, ServiceError, database, rate_limited
from ..fanout.control import Changes, MemberChanged, RoomChanged, SpaceChanged
from ..fanout.directory import Directory, Viewer
from ..policy import (
    MUTE_SCOPES,
    Action,
    Area,
    Role,
    decide,
    decide_close,
    decide_invite,
    decide_mail,
    decide_member_change,
    decide_mute,
    decide_mute_list,
    decide_readd,
    decide_room_change,
    member_actions,
)
from ..ratelimit import Limiter
from . import access
from .feed import Feed
from .names import room_name

MAX_MUTE_MINUTES = 30 * 24 * 60
# Rooms a project may hold (its five areas' own and the ones its members make), and how fast one
# member makes them: ten at once, then one a minute (a script must not fill a project's page).
MAX_ROOMS = 60
ROOMS_PER_MEMBER = 10
ROOM_REFILL = 1 / 60
# Archiving, unarchiving and deleting rooms, and closing and reopening the project, per member
# (one budget): thirty at once (a year's tidying), then one every ten seconds — each change sends
# every connected member of the project a new welcome.
ROOM_CHANGES_PER_MEMBER = 30
ROOM_CHANGE_REFILL = 1 / 10
# change -> the room's state after it (storage/spaces.py)
_ROOM_STATES = {"archive": "archived", "unarchive": "active", "delete": "deleted"}


class Projects:
    def __init__(
        self, pool: asyncpg.Pool, changes: Changes, directory: Directory, feed: Feed, *, room_limiter: Limiter,
        room_change_limiter: Limiter,
    ) -> None:
        self._room_limiter = room_limiter
        self._room_change_limiter = room_change_limiter
        self._pool = pool
        self._changes = changes
        self._directory = directory
        self._feed = feed

    async def set_closed(self, viewer: Viewer, space_id: int, closed: bool) -> Space:
        """Close the project (read-only for everyone) or reopen it: its teacher admins, and
        platform administrators for any project (policy.decide_close). Its members' open
        sockets, on every process, get a fresh welcome saying so (SpaceChanged)."""
        access.space(viewer, space_id, decide_close(viewer.roles_in(space_id), viewer.user.platform_role))
        rate_limited(await self._room_change_limiter.acquire(viewer.user.id), "you are closing and reopening the project")
        try:
            space = await database(store.set_closed(self._pool, space_id, closed, actor_id=viewer.user.id))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}") from None
        await self._changes.send(SpaceChanged(space_id))
        await self._feed.announce(space_id)
        return space

    async def create_room(self, viewer: Viewer, space_id: int, area: str, name: str) -> Room:
        """A new room in `area`, if the viewer's role may create rooms there."""
        try:
            where = Area(area)
        except ValueError:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"area must be one of {', '.join(a.value for a in Area)}") from None
        name = room_name(name)
        roles = viewer.roles_in(space_id)
        if not roles:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        space = await self._directory.space(space_id)
        refusal = decide(roles, where, Action.CREATE_ROOM, closed=space.closed)
        if refusal is not None:
            raise ServiceError(refusal.code, refusal.message)
        rate_limited(await self._room_limiter.acquire(viewer.user.id), "you are creating rooms")
        try:
            room = await database(store.create_room(
                self._pool, space_id=space_id, area=where.value, name=name, created_by=viewer.user.id,
                max_rooms=MAX_ROOMS,
            ))
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, f"a project has at most {MAX_ROOMS} rooms") from None
        # Every process learns of it, and the members who may read it see it in a fresh welcome
        # (their menu lists it at once), as the command line's create-room does.
        await self._changes.send(RoomChanged(space_id, room.id))
        await self._feed.announce(space_id)
        return room

    async def change_room(self, viewer: Viewer, space_id: int, room_id: int, change: str) -> dict[str, Any]:
        """Archive (read-only for everyone), unarchive or delete (gone for the members, its
        messages kept for the reports about them) room `room_id` of project `space_id`: teacher
        admins only, never the journal, and deleting only where rooms are made (policy's
        decide_room_change). Audited and in the feed; holds on every process at once (RoomChanged:
        posting follows the state, the room's subscribers are told, the members get a fresh
        welcome). Asking for the state the room is in changes nothing (`changed: false`); a
        deleted room answers not_found, like one that never existed."""
        room = await access.room_of(self._directory, viewer, space_id, room_id)
        space = await self._directory.space(space_id)
        refusal = decide_room_change(viewer.roles_in(space_id), Area(room.area), room.kind, change, closed=space.closed)
        if refusal is not None:
            raise Refused(refusal)
        rate_limited(await self._room_change_limiter.acquire(viewer.user.id), "you are changing rooms")
        try:
            done = await database(store.set_room_state(
                self._pool, space_id=space_id, room_id=room_id, state=_ROOM_STATES[change], actor_id=viewer.user.id,
            ))
        except NotFound:  # deleted meanwhile
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no room {room_id} in project {space_id}") from None
        if done.changed:
            await self._changes.send(RoomChanged(space_id, room_id))
            await self._feed.publish(done.record)
        answer: dict[str, Any] = {"id": room_id, "channel": ROOM.name_of(room_id), "changed": done.changed}
        if change == "delete":
            answer["deleted"] = True
        else:
            answer["archived"] = done.room.archived
        return answer

    async def rename_room(self, viewer: Viewer, space_id: int, room_id: int, name: Any) -> dict[str, Any]:
        """A new name for room `room_id` of project `space_id` (names.room_name: trimmed, 1 to 100
        characters, no control or invisible character): teacher admins only, any room but a
        deleted one, the journal and an archived room included, while the project is open
        (policy's decide_room_change). Audited (`room.rename`) and in the feed; holds on every
        process at once (RoomChanged: the room's subscribers get a `room` frame with the new
        name, the members a fresh welcome). The name it has already changes nothing."""
        name = room_name(name)
        room = await access.room_of(self._directory, viewer, space_id, room_id)
        space = await self._directory.space(space_id)
        refusal = decide_room_change(viewer.roles_in(space_id), Area(room.area), room.kind, "rename",
                                     closed=space.closed)
        if refusal is not None:
            raise Refused(refusal)
        rate_limited(await self._room_change_limiter.acquire(viewer.user.id), "you are changing rooms")
        try:
            done = await database(store.rename_room(
                self._pool, space_id=space_id, room_id=room_id, name=name, actor_id=viewer.user.id,
            ))
        except NotFound:  # deleted meanwhile
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no room {room_id} in project {space_id}") from None
        if done.changed:
            await self._changes.send(RoomChanged(space_id, room_id))
            await self._feed.publish(done.record)
        return {"id": room_id, "channel": ROOM.name_of(room_id), "name": done.room.name, "was": done.was,
                "changed": done.changed}

    async def change_member(self, viewer: Viewer, space_id: int, user_id: int, role: Any) -> dict[str, Any]:
        """A new role for a member, or (role None) their removal — or the viewer leaving."""
        new_role = None
        if role is not None:
            try:
                new_role = Role(role)
            except ValueError:
                new_role = None
            if new_role is None or new_role not in (Role.TEACHER_ADMIN, Role.TEACHER_MEMBER, Role.PUPIL_ADMIN,
                                                    Role.PUPIL_MEMBER, Role.VISITOR):
                raise ServiceError(ErrorCode.INVALID_FIELD, "role must be one of teacher_admin, teacher_member, "
                                   "pupil_admin, pupil_member, visitor")
        roles = viewer.roles_in(space_id)
        if not roles:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        member = await database(pupils_store.membership(self._pool, space_id, user_id))
        admins = await database(store.count_role(self._pool, space_id, Role.TEACHER_ADMIN.value))
        refusal = decide_member_change(
            roles, viewer.user.id, user_id, Role(member.role) if member else None,
            member.invited_by if member else None, new_role, admins=admins, staff=bool(member and member.staff),
        )
        if refusal is not None:
            raise Refused(refusal)
        try:
            await database(self.set_member(space_id, user_id, new_role, actor_id=viewer.user.id))
        except WrongKind:  # the account's kind changed under us (the schema refuses it too)
            raise ServiceError(ErrorCode.FORBIDDEN, "adult and pupil are kinds of account, not roles") from None
        return {"space": space_id, "user_id": user_id, "role": new_role.value if new_role else None}

    async def add_back(self, viewer: Viewer, space_id: int, user_id: Any, role: Any) -> dict[str, Any]:
        """Make a pupil removed from their home project (`space_id` made their account) a member
        again with `role` (default pupil_member): their mailbox and their messages are as they
        left them. Who may invite a pupil with that role there (policy.decide_readd); any other
        project, and an id that is not such a pupil, answer not_found. Effective on their open
        sockets at once (MemberChanged); in the feed (`member.joined`) and the audit log
        (`member.restored`). Several at once make one membership; the others answer conflict."""
        if isinstance(user_id, bool) or not isinstance(user_id, int) or not 1 <= user_id <= 2**62:
            raise ServiceError(ErrorCode.INVALID_FIELD, "user_id must be a former pupil's id")
        if role is None:
            role = Role.PUPIL_MEMBER.value
        if role not in (Role.PUPIL_MEMBER.value, Role.PUPIL_ADMIN.value):
            raise ServiceError(ErrorCode.INVALID_FIELD, "role must be pupil_member or pupil_admin: a pupil's account "
                               "keeps a pupil's role")
        home = await database(pupils_store.is_home_pupil(self._pool, space_id, user_id))
        access.space(viewer, space_id, decide_readd(viewer.roles_in(space_id), Role(role), home=home))
        try:
            await database(pupils_store.restore(
                self._pool, space_id=space_id, user_id=user_id, role=role, actor_id=viewer.user.id,
            ))
        except NotFound:  # not theirs after all (cannot happen: a home never changes), said as above
            raise ServiceError(ErrorCode.NOT_FOUND, "no former pupil of this project has that id") from None
        except Conflict:
            raise ServiceError(ErrorCode.CONFLICT, "this pupil is a member of the project already") from None
        await self._changes.send(MemberChanged(space_id, user_id))
        await self._feed.announce(space_id)
        return {"space": space_id, "user_id": user_id, "role": role}

    async def former_pupils(self, viewer: Viewer, space_id: int) -> dict[str, Any]:
        """The pupils this project made who are not its members now — whom its teachers may add
        back: teacher admins and teacher members (who may invite a pupil here)."""
        access.space(viewer, space_id, decide_invite(viewer.roles_in(space_id), Role.PUPIL_MEMBER))
        found = await database(pupils_store.former_pupils(self._pool, space_id))
        return {"space": space_id, "pupils": [
            {"id": p.id, "name": p.name, "username": p.username, "school": p.school, "removed_at": iso(p.removed_at)}
            for p in found
        ]}

    async def set_member(self, space_id: int, user_id: int, role: Role | None, *, actor_id: int | None = None) -> None:
        """Add, change or (role=None) remove a member, effective on every open socket at once.
        Rights are the caller's to check (change_member; the CLI and tests call this directly)."""
        if role is None:
            await store.remove_member(self._pool, space_id, user_id, actor_id=actor_id)
        else:
            await store.set_member(self._pool, space_id, user_id, role.value, actor_id=actor_id)
        await self._changes.send(MemberChanged(space_id, user_id))
        await self._feed.announce(space_id)

    async def mute(
        self, viewer: Viewer, space_id: int, user_id: Any, scope: Any, minutes: Any, reason: Any
    ) -> dict[str, Any]:
        """Silence a pupil or visitor in `scope` (an area, 'mail' or 'all') for `minutes`. Takes
        effect on their open sockets at once; muting again replaces the end."""
        scope, reason = self._mute_fields(user_id, scope, reason)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= MAX_MUTE_MINUTES:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"minutes must be an integer from 1 to {MAX_MUTE_MINUTES}")
        await self._may_mute(viewer, space_id, user_id, scope)
        until = datetime.now(UTC) + timedelta(minutes=minutes)
        await database(mutes_store.mute(
            self._pool, space_id=space_id, user_id=user_id, scope=scope, until=until, actor_id=viewer.user.id,
            reason=reason,
        ))
        await self._changes.send(MemberChanged(space_id, user_id))
        return {"space": space_id, "user_id": user_id, "scope": scope, "until": iso(until)}

    async def unmute(self, viewer: Viewer, space_id: int, user_id: Any, scope: Any) -> dict[str, Any]:
        scope, _ = self._mute_fields(user_id, scope, "")
        await self._may_mute(viewer, space_id, user_id, scope)
        lifted = await database(mutes_store.unmute(
            self._pool, space_id=space_id, user_id=user_id, scope=scope, actor_id=viewer.user.id
        ))
        if lifted:
            await self._changes.send(MemberChanged(space_id, user_id))
        return {"space": space_id, "user_id": user_id, "scope": scope, "lifted": lifted}

    async def mutes(self, viewer: Viewer, space_id: int) -> dict[str, Any]:
        """The project's mutes in force — who, where, until when, by whom, why — for those who may
        mute in all of it (policy.decide_mute_list); anyone outside the project: not_found."""
        access.space(viewer, space_id, decide_mute_list(viewer.roles_in(space_id)))
        found = await database(mutes_store.of_space(self._pool, space_id))
        return {"space": space_id, "mutes": [
            {"user": m.user, "scope": m.scope, "until": iso(m.until), "muted_by": m.muted_by, "reason": m.reason,
             "created_at": iso(m.created_at)}
            for m in found
        ]}

    @staticmethod
    def _mute_fields(user_id: Any, scope: Any, reason: Any) -> tuple[str, str]:
        if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
            raise ServiceError(ErrorCode.INVALID_FIELD, "user_id must be a member's id")
        if scope not in MUTE_SCOPES:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"scope must be one of {', '.join(MUTE_SCOPES)}")
        if not isinstance(reason, str):
            raise ServiceError(ErrorCode.INVALID_FIELD, "reason must be a string")
        if len(reason) > 500:  # the same code as the frame's decoder gives
            raise ServiceError(ErrorCode.TOO_LARGE, "a reason is at most 500 characters")
        return scope, reason

    async def _may_mute(self, viewer: Viewer, space_id: int, user_id: int, scope: str) -> None:
        roles = viewer.roles_in(space_id)
        if not roles:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        member = (await database(self._directory.roster(space_id))).get(user_id)
        refusal = decide_mute(roles, member.role if member else None, scope)
        if refusal is not None:
            raise ServiceError(refusal.code, refusal.message)

    async def members(self, viewer: Viewer, space_id: int) -> dict[str, Any]:
        """The project's member list. Teachers (and moderators) see everyone with their username,
        who invited them and their login lockouts (a pupil who cannot log in, or someone trying
        passwords on a pupil's account, shows here); pupils and visitors see the members they may
        write to (docs/roles.md)."""
        roles = viewer.roles_in(space_id)
        if not roles:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        full = decide(roles, Area.HOME, Action.SEE_LOGINS) is None
        mine = viewer.roles.get(space_id)
        found = []
        rows = await database(members_store.member_list(self._pool, space_id))
        admins = sum(m.role == Role.TEACHER_ADMIN.value for m in rows)
        for m in rows:
            role = Role(m.role)
            if not full and m.id != viewer.user.id and decide_mail(mine, role) is not None:
                continue
            item: dict[str, Any] = {"id": m.id, "name": m.name, "school": m.school, "role": m.role}
            if full:
                item.update(
                    username=m.username, invited_by=m.invited_by, joined_at=iso(m.joined_at),
                    locked_at=iso(m.locked_at), lockouts=m.lockouts, locked_until=iso(m.locked_until),
                    may=member_actions(roles, viewer.user.id, m.id, role, m.invited_by, admins=admins, staff=m.staff,
                                       home=m.home_space_id == space_id),
                )
            found.append(item)
        return {"space": space_id, "members": found}
