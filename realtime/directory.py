"""Who belongs where, now: this process's cache of memberships, spaces and rooms.

Rights are checked on every frame against this cache, so it must follow every change at once:
the services that change a membership or close a space send a control message on the bus after
committing, and every process's directory reloads what changed and tells its listeners (the
sessions), which re-check their live subscriptions (DESIGN.md, "Membership is live").

Only the memberships of users connected to this process are kept (reference-counted by their
sessions); rooms and spaces are kept once read (they are few and small), and so is each space's
roster (who is in it, with which role and mailbox) once someone sends mail in it: a project has
tens of members, not thousands, and a roster is dropped as soon as a membership in it changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from protocol import ErrorCode
from storage import accounts, mutes, spaces
from storage import mail as mail_store
from storage.accounts import User
from storage.mail import Person
from storage.spaces import Room, Space

from .errors import ServiceError
from .policy import Action, Area, Role, decide, muted_until
from .wire import iso

log = logging.getLogger("twinhub.directory")

Listener = Callable[[int], None]  # called with the id of a user whose rights may have changed


class Viewer:
    """A connected user and their roles, kept current by the directory. Shared by all the
    user's connections on this process."""

    __slots__ = ("user", "roles", "mutes", "refs", "epoch")

    def __init__(self, user: User, roles: dict[int, Role], mutes: dict[int, dict[str, datetime]] | None = None) -> None:
        self.user = user
        self.roles = roles  # space_id -> member role
        self.mutes = mutes or {}  # space_id -> scope -> end of the mute
        self.refs = 0
        self.epoch = 0  # bumped when all the user's sessions are revoked: older sockets must go

    @property
    def is_moderator(self) -> bool:
        return self.user.platform_role == "moderator"

    def roles_in(self, space_id: int) -> tuple[Role, ...]:
        role = self.roles.get(space_id)
        found = (role,) if role is not None else ()
        return (*found, Role.MODERATOR) if self.is_moderator else found

    def require(self, space_id: int, action: Action) -> None:
        """Raise the refusal of a project-wide right (manage the project, review reports). A
        project the viewer is not in answers like one that does not exist."""
        roles = self.roles_in(space_id)
        if not roles:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        refusal = decide(roles, Area.HOME, action)
        if refusal is not None:
            raise ServiceError(refusal.code, refusal.message)

    def require_not_muted(self, space_id: int, scope: str) -> None:
        """Raise `muted` (with when it ends) if the viewer is muted in `scope` of the project now."""
        mutes = self.mutes.get(space_id)
        if not mutes:  # nearly always: no clock read on the post path
            return
        until = muted_until(mutes, scope, datetime.now(UTC))
        if until is not None:
            ends = iso(until)
            raise ServiceError(
                ErrorCode.MUTED, f"you are muted here until {ends}", scope=scope, until=ends,
            )

    def card(self) -> dict[str, Any]:
        """How this user appears to others (never more than name and school: pupils' profiles
        stay in the space)."""
        return {"id": self.user.id, "name": self.user.display_name, "school": self.user.school}


class Member:
    """One member of a space, as the roster holds them."""

    __slots__ = ("person", "role", "mailbox_id")

    def __init__(self, person: Person, role: Role, mailbox_id: int) -> None:
        self.person = person
        self.role = role
        self.mailbox_id = mailbox_id


class Directory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._viewers: dict[int, Viewer] = {}
        self._spaces: dict[int, Space] = {}
        self._rooms: dict[int, Room] = {}
        self._rosters: dict[int, dict[int, Member]] = {}  # space_id -> user_id -> member
        self._roster_generation = 0  # bumped by every membership change: a load that raced one is not kept
        self._listeners: dict[int, set[Listener]] = {}  # user_id -> sessions' callbacks

    def listen(self, user_id: int, listener: Listener) -> None:
        """Call `listener(user_id)` whenever that user's memberships change."""
        self._listeners.setdefault(user_id, set()).add(listener)

    def unlisten(self, user_id: int, listener: Listener) -> None:
        found = self._listeners.get(user_id)
        if found is not None:
            found.discard(listener)
            if not found:
                del self._listeners[user_id]

    async def acquire(self, user: User) -> Viewer:
        """The live Viewer of `user`; call release() when the connection ends."""
        viewer = self._viewers.get(user.id)
        if viewer is None:
            roles, mutes = await self._load_rights(user.id)
            viewer = Viewer(user, roles, mutes)
            viewer = self._viewers.setdefault(user.id, viewer)
        viewer.refs += 1
        return viewer

    def release(self, viewer: Viewer) -> None:
        viewer.refs -= 1
        if viewer.refs <= 0 and self._viewers.get(viewer.user.id) is viewer:
            del self._viewers[viewer.user.id]

    async def _load_rights(self, user_id: int) -> tuple[dict[int, Role], dict[int, dict[str, datetime]]]:
        """The user's roles and their mutes (which end by themselves: no reload needed then)."""
        found = await spaces.memberships(self._pool, user_id)
        for m in found:
            self._spaces[m.space.id] = m.space
        muted: dict[int, dict[str, datetime]] = {}
        for mute in await mutes.active(self._pool, user_id):
            muted.setdefault(mute.space_id, {})[mute.scope] = mute.until
        return {m.space.id: Role(m.role) for m in found}, muted

    async def room(self, room_id: int) -> Room | None:
        room = self._rooms.get(room_id)
        if room is None:
            room = await spaces.get_room(self._pool, room_id)
            if room is not None:
                self._rooms[room_id] = room
                await self.space(room.space_id)
        return room

    def cached_room(self, room_id: int) -> Room | None:
        return self._rooms.get(room_id)

    async def space(self, space_id: int) -> Space:
        space = self._spaces.get(space_id)
        if space is None:
            space = self._spaces[space_id] = await spaces.get_space(self._pool, space_id)
        return space

    def cached_space(self, space_id: int) -> Space | None:
        return self._spaces.get(space_id)

    async def rooms_of(self, space_ids: list[int]) -> list[Room]:
        rooms = await spaces.rooms_of(self._pool, space_ids)
        for room in rooms:
            self._rooms.setdefault(room.id, room)
        return rooms

    def cached_roster(self, space_id: int) -> dict[int, Member] | None:
        return self._rosters.get(space_id)

    async def roster(self, space_id: int) -> dict[int, Member]:
        """The space's members now: user id -> Member."""
        found = self._rosters.get(space_id)
        if found is None:
            generation = self._roster_generation
            rows = await mail_store.roster(self._pool, space_id)
            found = {p.id: Member(p, Role(role), box) for p, role, box in rows}
            if generation == self._roster_generation:
                self._rosters[space_id] = found
        return found

    def forget_room(self, room_id: int) -> None:
        self._rooms.pop(room_id, None)

    # -- control messages (from the bus, every process) ---------------------------------------

    def on_control(self, message: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(self.apply(message), name="directory-control")

    async def apply(self, message: dict[str, Any]) -> None:
        """Reload what a control message says changed. The process that made the change calls
        this itself before sending the message, so that the change holds here as soon as the
        call that made it returns (other processes follow within the bus's latency)."""
        try:
            kind = message.get("kind")
            if kind == "member_changed":
                self._roster_generation += 1
                self._rosters.pop(int(message["space_id"]), None)
                user_id = int(message["user_id"])
                viewer = self._viewers.get(user_id)
                if viewer is not None:
                    viewer.roles, viewer.mutes = await self._load_rights(user_id)
                self._notify(user_id)
            elif kind == "space_changed":
                space_id = int(message["space_id"])
                self._spaces[space_id] = await spaces.get_space(self._pool, space_id)
            elif kind == "sessions_revoked":
                user_id = int(message["user_id"])
                viewer = self._viewers.get(user_id)
                if viewer is not None:
                    viewer.epoch += 1
                self._notify(user_id)
            elif kind == "user_changed":
                self._roster_generation += 1
                self._rosters.clear()  # a name or school changed: it may be on any roster
                user_id = int(message["user_id"])
                viewer = self._viewers.get(user_id)
                if viewer is not None:
                    viewer.user = await accounts.get_user(self._pool, user_id)
        except Exception:  # a control message we cannot apply must not kill the bus reader
            log.exception("could not apply control message %r", message)

    def _notify(self, user_id: int) -> None:
        for listener in list(self._listeners.get(user_id, ())):
            listener(user_id)
