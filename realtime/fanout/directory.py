"""Who belongs where, now: this process's cache of memberships, spaces and rooms.

Rights are checked on every frame against this cache, so it must follow every change at once:
the services that change a membership or close a space send a control message on the bus after
committing, and every process's directory reloads what changed and tells its listeners (the
sessions), which re-check their live subscriptions (DESIGN.md, "Membership is live").

Only the memberships of users connected to this process are kept (reference-counted by their
sessions), and for a grace period after their last socket closed (`grace` s, at most `max_idle`
users, oldest dropped first): a class whose Wi-Fi drops and comes back — a reconnect storm —
finds its rights here instead of reading them again. An idle user's rights are dropped, not
reloaded, by any change to them (the same control messages that re-check live sessions), and
all of them when the bus says it may have lost messages (`resync`, after Redis came back): a
reconnect after a change reads the rights anew, so a pupil removed from a space never regains it
from this cache — and the rights of the users connected here are read again and their sessions
re-check every subscription, so a change made while Redis was away bites on open sockets too.
Rights that are read are read by the group reader (storage/reader.py): many hellos at once are
one statement of memberships and one of mutes.

Rooms and spaces are kept once read (they are few and small), and so is each space's roster (who
is in it, with which role and mailbox) once someone sends mail in it: a project has tens of
members, not thousands, and a roster is dropped as soon as a membership in it changes. A room
archived, unarchived or deleted is read again on every process (RoomChanged): its state decides
posting and subscribing from then on, its live subscribers are told (`listen_rooms`), and the
sessions of the project's members here re-check their subscriptions and get a fresh welcome; a
project closed, reopened or renamed is read again and its members here get a fresh welcome too.
A room or project changed many times at once keeps what was read after the last change heard.
An invitation made, answered or withdrawn is told to the invitee's sessions here
(`listen_invitations`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import mail as mail_store
from storage import mutes, spaces
from storage.accounts import User
from storage.mail import Person
from storage.reader import GroupReader
from storage.spaces import Membership, Room, Space

from ..errors import Muted, ServiceError
from ..policy import PLATFORM_ADMIN, PLATFORM_MODERATOR, Action, Area, Role, badge, decide, mute_in_force
from .control import Control, InvitationChanged, MemberChanged, RoomChanged, SessionsRevoked, SpaceChanged

log = logging.getLogger("twinhub.directory")

Listener = Callable[[int], None]  # called with the id of a user whose rights may have changed
Invited = Callable[[int], None]  # called with the id of an invitation to the user that changed
Rights = tuple[dict[int, Role], dict[int, dict[str, datetime]]]  # roles by space; mutes by space and scope

GRACE_SECONDS = 60.0  # an idle user's rights are kept this long after their last socket closed
MAX_IDLE = 10_000  # ... for at most this many users (a few hundred bytes each)


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
        return self.user.platform_role == PLATFORM_MODERATOR

    @property
    def is_platform_admin(self) -> bool:
        return self.user.platform_role == PLATFORM_ADMIN

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
        """Raise `muted` if the viewer is muted in `scope` of the project now, naming the mute's
        own scope (`all` for a mute of everything) and when it ends."""
        mutes = self.mutes.get(space_id)
        if not mutes:  # nearly always: no clock read on the post path
            return
        found = mute_in_force(mutes, scope, datetime.now(UTC))
        if found is not None:
            muted_in, until = found
            raise Muted(muted_in, iso(until))

    def card(self, space_id: int | None = None) -> dict[str, Any]:
        """How this user appears to others (never more than name and school: pupils' profiles
        stay in the space) — in a project, with the badge of their role there."""
        card = {"id": self.user.id, "name": self.user.display_name, "school": self.user.school}
        if space_id is not None:
            card["role"] = badge(self.roles_in(space_id))
        return card


class Member:
    """One member of a space, as the roster holds them."""

    __slots__ = ("person", "role", "mailbox_id")

    def __init__(self, person: Person, role: Role, mailbox_id: int) -> None:
        self.person = person
        self.role = role
        self.mailbox_id = mailbox_id


class Directory:
    def __init__(self, pool: asyncpg.Pool, *, grace: float = GRACE_SECONDS, max_idle: int = MAX_IDLE) -> None:
        self._pool = pool
        self._viewers: dict[int, Viewer] = {}  # connected users, and idle ones (refs 0) in _idle
        self._idle: OrderedDict[int, float] = OrderedDict()  # user_id -> when their last session ended
        self._grace = grace
        self._max_idle = max_idle
        self._rights_generation = 0  # bumped by every change to someone's rights: a load that raced one is redone
        self._spaces: dict[int, Space] = {}
        self._rooms: dict[int, Room] = {}
        # Changes heard per room and per space: a reload that a later change of the same one
        # overtook is not kept (twenty renames at once: the last read must be the one that stays).
        self._room_changes: dict[int, int] = {}
        self._space_changes: dict[int, int] = {}
        self._rosters: dict[int, dict[int, Member]] = {}  # space_id -> user_id -> member
        self._roster_generation = 0  # bumped by every membership change: a load that raced one is not kept
        self._listeners: dict[int, set[Listener]] = {}  # user_id -> sessions' callbacks
        self._invited: dict[int, set[Invited]] = {}  # user_id -> sessions' callbacks for their invitations
        self._space_listeners: list[Callable[[Space], None]] = []  # a project's settings changed
        self._member_listeners: list[Callable[[int], None]] = []  # who belongs to a project changed
        self._room_listeners: list[Callable[[Room], None]] = []  # a room's state changed (as reloaded)
        self._rights_reader: GroupReader[int, Rights] = GroupReader(pool, self._read_rights, name="rights")
        self.rights_loaded = 0  # counters for the benchmarks: rights read from PostgreSQL, and kept ones reused
        self.rights_reused = 0

    def start(self) -> None:
        self._rights_reader.start()

    async def close(self) -> None:
        await self._rights_reader.close()

    def listen(self, user_id: int, listener: Listener) -> None:
        """Call `listener(user_id)` whenever that user's memberships change."""
        self._listeners.setdefault(user_id, set()).add(listener)

    def listen_projects(self, on_space: Callable[[Space], None], on_members: Callable[[int], None]) -> None:
        """Call `on_space(space)` when a project's settings changed (as reloaded), and
        `on_members(space_id)` when who belongs to it, or with which role, changed — on every
        process, from the same control messages (web/public_stream.py follows both)."""
        self._space_listeners.append(on_space)
        self._member_listeners.append(on_members)

    def listen_rooms(self, on_room: Callable[[Room], None]) -> None:
        """Call `on_room(room)` when a room was archived, unarchived or deleted (as reloaded), on
        every process, before the project's members here are told (run/assemble.py: the room's
        live subscribers get its new state)."""
        self._room_listeners.append(on_room)

    def unlisten(self, user_id: int, listener: Listener) -> None:
        _discard(self._listeners, user_id, listener)

    def listen_invitations(self, user_id: int, on_invitation: Invited) -> None:
        """Call `on_invitation(invitation_id)` when an invitation to that user was made, answered
        or withdrawn, on whichever process did it (InvitationChanged)."""
        self._invited.setdefault(user_id, set()).add(on_invitation)

    def unlisten_invitations(self, user_id: int, on_invitation: Invited) -> None:
        _discard(self._invited, user_id, on_invitation)

    async def acquire(self, user: User) -> Viewer:
        """The live Viewer of `user`; call release() when the connection ends. The user's rights
        come from this process's cache when they are connected, or were within the grace period;
        else from PostgreSQL, read after this call began."""
        self._expire_idle(time.monotonic())
        viewer = self._viewers.get(user.id)
        if viewer is not None:
            # The account as the session's token read it, just now (a language chosen since the
            # user's other connections began is in it).
            viewer.user = user
            if viewer.refs <= 0:
                self._idle.pop(user.id, None)
                self.rights_reused += 1
        else:
            for _ in range(3):  # a change to someone's rights during the read: read again
                generation = self._rights_generation
                roles, mutes = await self._rights_reader.read(user.id)
                if generation == self._rights_generation:
                    break
            self.rights_loaded += 1
            viewer = Viewer(user, roles, mutes)
            viewer = self._viewers.setdefault(user.id, viewer)
        viewer.refs += 1
        return viewer

    def release(self, viewer: Viewer) -> None:
        viewer.refs -= 1
        user_id = viewer.user.id
        if viewer.refs > 0 or self._viewers.get(user_id) is not viewer:
            return
        if self._grace <= 0 or self._max_idle <= 0:
            del self._viewers[user_id]
            return
        now = time.monotonic()
        self._idle[user_id] = now
        self._idle.move_to_end(user_id)
        self._expire_idle(now)

    def _expire_idle(self, now: float) -> None:
        """Drop idle users past the grace period, and the oldest ones beyond max_idle."""
        idle = self._idle
        while idle:
            user_id, since = next(iter(idle.items()))
            if now - since < self._grace and len(idle) <= self._max_idle:
                break
            self._forget_idle(user_id)

    def _forget_idle(self, user_id: int) -> bool:
        """Drop an idle user's kept rights (False: the user is connected, or not kept)."""
        if self._idle.pop(user_id, None) is None:
            return False
        viewer = self._viewers.get(user_id)
        if viewer is not None and viewer.refs <= 0:
            del self._viewers[user_id]
        return True

    def forget_idle(self) -> None:
        """Drop every idle user's kept rights (they may be stale: part of resync())."""
        self._rights_generation += 1
        for user_id in list(self._idle):
            self._forget_idle(user_id)

    async def resync(self) -> None:
        """The bus may have lost control messages (Redis went away and came back): nothing kept
        may be trusted. Idle users' rights are dropped; connected users' are read again (many at
        once, through the group reader) and their sessions told, which re-check every
        subscription; rosters and spaces are read again when next needed."""
        self.forget_idle()
        self._roster_generation += 1
        self._rosters.clear()
        await self._reload_rooms()
        known, self._spaces = list(self._spaces), {}
        if self._space_listeners or self._member_listeners:
            for space_id in known:  # what changed meanwhile may matter to them (a public view turned off)
                try:
                    space = self._spaces[space_id] = await spaces.get_space(self._pool, space_id)
                except Exception:  # noqa: BLE001 — PostgreSQL away too, or the space is gone: next time
                    continue
                for on_space in self._space_listeners:
                    on_space(space)
                for on_members in self._member_listeners:
                    on_members(space_id)
        connected = [(user_id, v) for user_id, v in self._viewers.items() if v.refs > 0]
        found = await asyncio.gather(*(self._rights_reader.read(user_id) for user_id, _ in connected),
                                     return_exceptions=True)
        for (user_id, viewer), rights in zip(connected, found, strict=True):
            if isinstance(rights, BaseException):  # PostgreSQL away too: they stay as they were
                log.warning("could not reload a connected user's rights after a resync: %s", type(rights).__name__)
                continue
            viewer.roles, viewer.mutes = rights
            self._notify(user_id)

    async def _reload_rooms(self) -> None:
        """Read again every room kept (a change to one may have been lost with the bus). Kept as
        they were if PostgreSQL is away too: the next resync tries again."""
        if not self._rooms:
            return
        try:
            found = await spaces.rooms_by_id(self._pool, list(self._rooms))
        except Exception:  # noqa: BLE001 — PostgreSQL away too
            log.warning("could not read the rooms again after a resync")
            return
        for room in found:
            self._rooms[room.id] = room

    @property
    def idle_users(self) -> int:
        return len(self._idle)

    async def _load_rights(self, user_id: int) -> Rights:
        """The user's roles and their mutes (which end by themselves: no reload needed then)."""
        found = await spaces.memberships(self._pool, user_id)
        return self._rights(found, await mutes.active(self._pool, user_id))

    async def _read_rights(self, conn: asyncpg.Connection, user_ids: list[int]) -> list[Rights]:
        """_load_rights() of many users: two statements (the group reader's batch)."""
        found = await spaces.memberships_of(conn, user_ids)
        muted = await mutes.active_of(conn, user_ids)
        return [self._rights(f, m) for f, m in zip(found, muted, strict=True)]

    def _rights(self, found: list[Membership], active: list[mutes.Mute]) -> Rights:
        for m in found:
            self._spaces[m.space.id] = m.space
        muted: dict[int, dict[str, datetime]] = {}
        for mute in active:
            muted.setdefault(mute.space_id, {})[mute.scope] = mute.until
        return {m.space.id: Role(m.role) for m in found}, muted

    async def room(self, room_id: int) -> Room | None:
        """The room (in whatever state: callers check `deleted`), or None if it never existed."""
        room = self._rooms.get(room_id)
        if room is None:
            room = await spaces.get_room(self._pool, room_id)
            if room is not None:
                # setdefault: a RoomChanged applied meanwhile stored what it read after the
                # change, which this read (begun before) must not replace.
                room = self._rooms.setdefault(room_id, room)
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
        self.keep_rooms(rooms)
        return rooms

    def keep_rooms(self, rooms: list[Room]) -> None:
        """Remember rooms read elsewhere (the welcome's group read), as rooms_of() does. A room
        kept already stays as it is: RoomChanged keeps it current, and the read may be older."""
        for room in rooms:
            self._rooms.setdefault(room.id, room)

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

    def on_control(self, message: Control) -> None:
        asyncio.get_running_loop().create_task(self.apply(message), name="directory-control")

    async def apply(self, message: Control) -> None:
        """Reload what a control message says changed (fanout/control.py). The process that made
        the change calls this itself before sending the message (`Changes.send`), so that the
        change holds here as soon as the call that made it returns (other processes follow
        within the bus's latency)."""
        try:
            match message:
                case MemberChanged(space_id=space_id, user_id=user_id):
                    self._roster_generation += 1
                    self._rights_generation += 1
                    self._rosters.pop(space_id, None)
                    viewer = self._viewers.get(user_id)
                    if not self._forget_idle(user_id) and viewer is not None:
                        viewer.roles, viewer.mutes = await self._load_rights(user_id)
                    self._notify(user_id)
                    for on_members in self._member_listeners:
                        on_members(space_id)
                case SpaceChanged(space_id=space_id):
                    heard = self._space_changes[space_id] = self._space_changes.get(space_id, 0) + 1
                    space = await spaces.get_space(self._pool, space_id)
                    if self._space_changes[space_id] != heard:
                        return  # a later change of it is being read: that one tells
                    self._spaces[space_id] = space
                    for on_space in self._space_listeners:
                        on_space(space)
                    # Its members here are shown what it is now (closed, reopened, renamed) in a
                    # fresh welcome, on every socket; a closed project's subscriptions go on (it
                    # is still read).
                    self._notify_members(space_id)
                case RoomChanged(space_id=space_id, room_id=room_id):
                    heard = self._room_changes[room_id] = self._room_changes.get(room_id, 0) + 1
                    room = await spaces.get_room(self._pool, room_id)
                    if room is None or self._room_changes[room_id] != heard:
                        return  # (a later change of it is being read: that one tells)
                    self._rooms[room_id] = room
                    for on_room in self._room_listeners:
                        on_room(room)
                    # The members here see it in a fresh welcome; each of their sessions (and a
                    # platform moderator's, who may follow any room) re-checks its subscriptions:
                    # a deleted room's end with not_found.
                    self._notify_members(space_id, moderators=True)
                case InvitationChanged(user_id=user_id, invitation_id=invitation_id):
                    for on_invitation in list(self._invited.get(user_id, ())):
                        on_invitation(invitation_id)
                case SessionsRevoked(user_id=user_id):
                    self._rights_generation += 1
                    viewer = self._viewers.get(user_id)
                    if not self._forget_idle(user_id) and viewer is not None:
                        viewer.epoch += 1
                    self._notify(user_id)
        except Exception:  # a control message we cannot apply must not kill the bus reader
            log.exception("could not apply control message %r", message)

    def _notify_members(self, space_id: int, *, moderators: bool = False) -> None:
        """Tell the sessions of the project's members connected here (and of platform moderators)
        that what they may do there changed: each re-checks its subscriptions and sends a fresh
        welcome."""
        for user_id, viewer in list(self._viewers.items()):
            if viewer.refs > 0 and (space_id in viewer.roles or (moderators and viewer.is_moderator)):
                self._notify(user_id)

    def _notify(self, user_id: int) -> None:
        for listener in list(self._listeners.get(user_id, ())):
            listener(user_id)


def _discard(listeners: dict[int, set[Any]], user_id: int, listener: Any) -> None:
    found = listeners.get(user_id)
    if found is not None:
        found.discard(listener)
        if not found:
            del listeners[user_id]
