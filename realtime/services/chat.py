"""The chat service: rooms' messages — post, edit own, delete own, hide (moderation), replay,
history — with the policy checked on every call against the live directory.

Each write commits first (posts through the group-commit writer), then publishes its event on
the bus. Nothing is published that was not committed, and nothing else publishes room events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol import Encoding, ErrorCode, Event, RoomNotice, encode_server_item
from protocol.timestamps import iso
from storage import messages as store
from storage import reads
from storage.accounts import User
from storage.messages import NewPost, PostResult, RoomEvent
from storage.reader import GroupReader
from storage.spaces import Room
from storage.writer import GroupCommitWriter

from ..channels import ROOM
from ..channels import parse as parse_channel
from ..errors import Refused, ServiceError, database, rate_limited, write
from ..fanout.bus import Bus
from ..fanout.directory import Directory, Viewer
from ..fanout.hub import Hub
from ..fanout.shield import shield_message
from ..policy import ARCHIVED, Action, Area, Refusal, badge, decide, rights, sees_hidden_text, sees_pupils
from ..ratelimit import Limiter
from . import access
from .feed import to_event as feed_event


def room_channel(room_id: int) -> str:
    return ROOM.name_of(room_id)


def room_data(room: Room) -> dict[str, Any]:
    """A room as clients see it (welcome adds the viewer's rights there)."""
    return {
        "id": room.id, "channel": room_channel(room.id), "name": room.name, "area": room.area, "kind": room.kind,
        "archived": room.archived,
    }


def announce_room(hub: Hub, room: Room) -> None:
    """Tell the live subscribers of an archived or unarchived room, on this process, its new
    state (`room` frame; a deleted room's subscriptions end with not_found instead: the sessions
    re-check them). Called on every process by the directory (run/assemble.py)."""
    if not room.deleted:
        channel = room_channel(room.id)
        hub.send_ephemeral(channel, RoomNotice(channel, room_data(room)))


def message_data(m: store.Message, *, hidden_text: bool = False) -> dict[str, Any]:
    """The wire form of a message: a deleted message never carries its text, nor a hidden one —
    but to those who moderate its area (`hidden_text`, policy.sees_hidden_text), in a history
    page: they read what they hid."""
    state = m.state
    shown = state == "visible" or (hidden_text and state == "hidden")
    data = {
        "id": m.id,
        "seq": m.seq,
        "author": {"id": m.author_id, "name": m.author_name, "school": m.author_school, "role": m.author_role},
        "text": m.text if shown else None,
        "state": state,
        "created_at": iso(m.created_at),
        "edited_at": iso(m.edited_at),
        "client_id": m.client_id,
    }
    if m.title is not None or m.parent_id is not None:  # the journal's; chat frames stay lean
        data["title"] = m.title if shown else None
        data["parent_id"] = m.parent_id
        data["links"] = list(m.links or ()) if shown else []
    return data


def to_event(e: RoomEvent) -> Event:
    return Event(room_channel(e.room_id), e.seq, e.kind, {"message": message_data(e.message)})


class Page(list[Event]):
    """A page of a room's replay, shared by every session that asked for it in one group read:
    each event is encoded once per wire format, however many sessions send it."""

    __slots__ = ("_items",)

    def __init__(self, events: Any = ()) -> None:
        super().__init__(events)
        self._items: dict[Encoding, tuple[list[bytes], int]] = {}

    def items(self, encoding: Encoding) -> tuple[list[bytes], int]:
        """The events encoded as array items, and their total size in bytes."""
        found = self._items.get(encoding)
        if found is None:
            items = [encode_server_item(e, encoding) for e in self]
            found = self._items[encoding] = (items, sum(len(i) for i in items))
        return found


async def read_replays(conn: asyncpg.Connection, keys: list[tuple[int, int, int]]) -> list[tuple[Page, int, bool]]:
    """Many rooms' replay pages in one statement (a group reader's read: services/streams.py)."""
    found = await store.replay_many(conn, keys)
    return [(Page(to_event(e) for e in r.events), r.head, r.more) for r in found]


@dataclass(frozen=True, slots=True)
class Posted:
    event: Event
    duplicate: bool


class Chat:
    def __init__(
        self,
        pool: asyncpg.Pool,
        writer: GroupCommitWriter[NewPost, PostResult],
        bus: Bus,
        directory: Directory,
        post_limiter: Limiter,
        replays: GroupReader[tuple[int, int, int], tuple[Page, int, bool]],
        *,
        max_replay: int = 5000,
    ) -> None:
        self._replays = replays
        self._pool = pool
        self._writer = writer
        self._bus = bus
        self._directory = directory
        self._post_limiter = post_limiter
        self.max_replay = max_replay

    # -- rights ------------------------------------------------------------------------------

    async def room_for(self, viewer: Viewer, channel: str) -> Room:
        """The room behind `channel` if the viewer may know of it (services/access.py)."""
        return await access.room(self._directory, viewer, channel)

    async def open(self, viewer: Viewer, channel: str) -> Room:
        """The room behind `channel`, if the viewer may read it (a session's subscribe)."""
        room = await self.room_for(viewer, channel)
        await self.check(viewer, room, Action.READ)
        return room

    async def room_info(self, viewer: Viewer, room_id: int) -> dict[str, Any]:
        """A room the viewer may read, as `welcome` lists it — with their rights there (every role
        they have in the project: a platform moderator's too) — and its project `{"id", "name",
        "closed"}`: for a client opening a room its welcome does not list, such as a platform
        moderator following a report to the message (docs/protocol.md, "One room")."""
        room = await self.open(viewer, room_channel(room_id))
        room = self._directory.cached_room(room.id) or room
        space = self._directory.cached_space(room.space_id) or await database(self._directory.space(room.space_id))
        may = frozenset().union(*(rights(role, Area(room.area)) for role in viewer.roles_in(room.space_id)))
        return {
            **room_data(room), "rights": sorted(a.value for a in may),
            "space": {"id": space.id, "name": space.name, "closed": space.closed},
        }

    def accepts(self, viewer: Viewer, room: Room) -> None:
        return None  # every event of the channel goes to every subscriber

    def refusal(self, viewer: Viewer, room: Room) -> Refusal | None:
        """Whether the viewer may still read the room, with their roles and its state as they are
        now: a deleted room answers what subscribing to one that never existed answers."""
        if (self._directory.cached_room(room.id) or room).deleted:
            return Refusal(ErrorCode.NOT_FOUND, access.no_channel(room_channel(room.id)).message)
        return decide(viewer.roles_in(room.space_id), Area(room.area), Action.READ)

    async def check(self, viewer: Viewer, room: Room, action: Action) -> None:
        space = self._directory.cached_space(room.space_id) or await database(self._directory.space(room.space_id))
        room = self._directory.cached_room(room.id) or room  # its state as it is now
        refusal = decide(
            viewer.roles_in(room.space_id), Area(room.area), action, closed=space.closed, archived=room.archived
        )
        if refusal is not None:
            raise Refused(refusal, channel=room_channel(room.id))

    # -- writes ------------------------------------------------------------------------------

    async def post(
        self, viewer: Viewer, channel: str, text: str, client_id: str | None,
        title: str | None = None, parent: int | None = None, links: tuple[str, ...] | None = None,
    ) -> Posted:
        """Store a message and publish it. Returns once committed. A retry with a client_id
        already used by this author returns the original (duplicate=True) and publishes nothing,
        even where this attempt would be refused once the room is found (rate limit, mute,
        archive, …); a room the author may no longer know of still answers not_found.
        In the journal: with `title`, an entry (needs `post`); with `parent`, a comment on that
        entry (needs `comment`)."""
        room = await self.room_for(viewer, channel)
        try:
            if links is not None and (room.kind != "journal" or title is None):
                raise ServiceError(ErrorCode.INVALID_FIELD, "links are for journal entries")
            await self._check_journal_shape(viewer, room, title, parent)
            viewer.require_not_muted(room.space_id, room.area)
            rate_limited(await self._post_limiter.acquire(viewer.user.id), "you are posting")
        except ServiceError as refused:
            # A resend of a post that was stored is answered the original, whatever happened
            # since — budget spent, room archived, a mute: the client that lost its `ok` must
            # not be told "no" about a message that is there (docs/protocol.md, "Retrying").
            # Looked up only when refusing, so the hot path pays nothing for it.
            if client_id is None or refused.code in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL):
                raise
            stored = await database(store.original(self._pool, viewer.user.id, client_id))
            if stored is None:
                raise
            return Posted(to_event(RoomEvent(stored.room_id, stored.seq, "message.posted", stored)), duplicate=True)
        return await self.store_and_publish(
            room, viewer.user, badge(viewer.roles_in(room.space_id)), text, client_id, title, parent, links
        )

    async def store_and_publish(
        self, room: Room, user: User, role: str | None, text: str, client_id: str | None, title: str | None = None,
        parent: int | None = None, links: tuple[str, ...] | None = None,
    ) -> Posted:
        """Commit a post whose rights were checked by the caller, then publish it and its feed
        record (sessions through post(); bots through the Bots service). `role`: the author's
        badge (policy.badge)."""
        result = await write(self._writer.submit(NewPost(
            room.space_id, room.id, user.id, user.display_name, user.school, text, client_id, room.area, title,
            parent, links, room_name=room.name, author_role=role,
        )), undone="the message was not sent")
        if result.refused is not None:  # archived or deleted after the check, before the commit
            channel = room_channel(room.id)
            if result.refused == "deleted":
                raise access.no_channel(channel)
            raise Refused(ARCHIVED, channel=channel)
        assert result.event is not None
        event = to_event(result.event)
        if not result.duplicate:
            await self._bus.publish(event)
            if result.activity is not None:
                await self._bus.publish(feed_event(result.activity))
        return Posted(event, result.duplicate)

    async def _check_journal_shape(self, viewer: Viewer, room: Room, title: str | None, parent: int | None) -> None:
        """Entries and comments belong to the journal; everywhere else a post is a plain message."""
        if room.kind != "journal":
            if title is not None or parent is not None:
                raise ServiceError(ErrorCode.INVALID_FIELD, "title and parent are for the project journal")
            await self.check(viewer, room, Action.POST)
            return
        if parent is None:
            if title is None:
                raise ServiceError(ErrorCode.INVALID_FIELD, "a journal entry needs a title (or a parent, for a comment)")
            await self.check(viewer, room, Action.POST)
            return
        if title is not None:
            raise ServiceError(ErrorCode.INVALID_FIELD, "a comment has no title")
        await self.check(viewer, room, Action.COMMENT)
        entry = await database(store.get_message(self._pool, room.id, parent))
        if entry is None or entry.parent_id is not None or entry.state != "visible":
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no journal entry {parent} to comment on")

    async def _own_message(self, viewer: Viewer, room: Room, message_id: int) -> store.Message:
        m = await self.message(room, message_id)
        # Someone else's message answers like a missing one: a prober learns nothing.
        if m is None or m.author_id != viewer.user.id or m.state == "deleted":
            raise ServiceError(ErrorCode.NOT_FOUND, f"you have no message {message_id} in this room")
        return m

    async def edit(self, viewer: Viewer, channel: str, message_id: int, text: str) -> Event:
        room = await self.room_for(viewer, channel)
        m = await self._own_message(viewer, room, message_id)
        # A journal comment is edited with the right that wrote it.
        await self.check(viewer, room, Action.COMMENT if m.parent_id is not None else Action.EDIT_OWN)
        viewer.require_not_muted(room.space_id, room.area)
        if m.state != "visible":
            raise ServiceError(ErrorCode.FORBIDDEN, "a hidden message cannot be edited")
        # An edit reaches every subscriber as a post does: it takes from the same budget.
        rate_limited(await self._post_limiter.acquire(viewer.user.id), "you are editing")
        changed = await database(store.edit(self._pool, room.id, message_id, viewer.user.id, text))
        return await self._published(changed, message_id)

    async def delete(self, viewer: Viewer, channel: str, message_id: int, reason: str = "") -> Event:
        """Erase a message: one's own (its words gone for good), or — a moderator of the room's
        area, in a closed project too — anyone's, with a reason, audited."""
        room = await self.room_for(viewer, channel)
        m = await self.message(room, message_id)
        if m is not None and m.author_id == viewer.user.id:
            await self.check(viewer, room, Action.DELETE_OWN)
            if m.state == "deleted":
                raise ServiceError(ErrorCode.NOT_FOUND, f"you have no message {message_id} in this room")
            changed = await database(store.delete(self._pool, room.id, message_id, viewer.user.id))
            return await self._published(changed, message_id)
        roles = viewer.roles_in(room.space_id)
        if decide(roles, Area(room.area), Action.MODERATE) is not None:
            await self.check(viewer, room, Action.READ)  # one who cannot read the room hears why
            # Someone else's message answers like a missing one: a prober learns nothing.
            raise ServiceError(ErrorCode.NOT_FOUND, f"you have no message {message_id} in this room")
        await self.check(viewer, room, Action.MODERATE)
        changed = await database(store.moderator_delete(
            self._pool, space_id=room.space_id, room_id=room.id, message_id=message_id,
            moderator_id=viewer.user.id, reason=reason,
        ))
        return await self._published(changed, message_id)

    async def hide(self, viewer: Viewer, channel: str, message_id: int, reason: str) -> Event:
        return await self._moderate(viewer, channel, message_id, reason, store.hide)

    async def unhide(self, viewer: Viewer, channel: str, message_id: int, reason: str) -> Event:
        return await self._moderate(viewer, channel, message_id, reason, store.unhide)

    async def _moderate(self, viewer: Viewer, channel: str, message_id: int, reason: str, act: Any) -> Event:
        """A moderator's act on a message (hide, unhide): the `moderate` right in the room's
        area, the act and its audit row in one transaction, then published."""
        room = await self.room_for(viewer, channel)
        await self.check(viewer, room, Action.MODERATE)
        changed = await database(act(
            self._pool, space_id=room.space_id, room_id=room.id, message_id=message_id,
            moderator_id=viewer.user.id, reason=reason,
        ))
        return await self._published(changed, message_id)

    async def message(self, room: Room, message_id: int) -> store.Message | None:
        return await database(store.get_message(self._pool, room.id, message_id))

    async def _published(self, changed: RoomEvent | None, message_id: int) -> Event:
        if changed is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no message {message_id} that can be changed in this room")
        event = to_event(changed)
        await self._bus.publish(event)
        if changed.activity is not None:
            await self._bus.publish(feed_event(changed.activity))
        return event

    # -- reads -------------------------------------------------------------------------------

    async def journal_room(self, space_id: int) -> Room:
        """The project's journal (every space has one)."""
        for room in await database(self._directory.rooms_of([space_id])):
            if room.kind == "journal":
                return room
        raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}")

    async def head(self, room: Room) -> int:
        return await database(store.head(self._pool, room.id))

    async def replay_page(self, room: Room, since: int, limit: int) -> tuple[list[Event], int, bool]:
        """Up to `limit` events after `since`, the room's head in the same snapshot, and whether
        more are waiting — from a statement that started after this call (so after the caller's
        hub subscription: resume stays gap-free), read together with the other rooms' replays of
        the moment."""
        return await database(self._replays.read((room.id, since, limit)))

    async def backfill(self, channel: str, after: int, upto: int) -> list[Event]:
        """Committed events after..upto of a room channel (the hub's gap filler)."""
        _, room_id = parse_channel(channel)
        r = await store.replay(self._pool, room_id, after, max(upto - after, 0))
        return [to_event(e) for e in r.events if e.seq <= upto]

    async def history(self, viewer: Viewer, room_id: int, before: int | None, limit: int) -> list[dict[str, Any]]:
        room = await self.open(viewer, room_channel(room_id))
        return self._as_seen(viewer, room, await database(store.history(self._pool, room.id, before, limit)))

    async def history_after(self, viewer: Viewer, room_id: int, after: int, limit: int) -> list[dict[str, Any]]:
        """The `limit` messages that follow seq `after`, newest first (paging towards the present)."""
        room = await self.open(viewer, room_channel(room_id))
        return self._as_seen(viewer, room, await database(store.history_after(self._pool, room.id, after, limit)))

    async def history_around(
        self, viewer: Viewer, room_id: int, message_id: int, older: int, newer: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The message `message_id` with up to `older` messages before it and `newer` after it
        (a link to one message); not_found when the room has no such message."""
        room = await self.open(viewer, room_channel(room_id))
        found = await database(store.history_around(self._pool, room.id, message_id, older, newer))
        if found is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"no message {message_id} in this room")
        before, after = found
        return self._as_seen(viewer, room, before), self._as_seen(viewer, room, after)

    @staticmethod
    def _as_seen(viewer: Viewer, room: Room, found: list[store.Message]) -> list[dict[str, Any]]:
        """Messages as this viewer may see them: a hidden one's text to those who moderate the
        room, pupils anonymous to a visitor."""
        roles = viewer.roles_in(room.space_id)
        hidden_text = sees_hidden_text(roles, Area(room.area))
        if sees_pupils(roles):
            return [message_data(m, hidden_text=hidden_text) for m in found]
        return [shield_message(message_data(m, hidden_text=hidden_text)) for m in found]

    # -- read positions ----------------------------------------------------------------------

    async def mark_read(self, viewer: Viewer, room_id: int, seq: int | None) -> int:
        """The viewer has read the room up to `seq` (None: all of it); their position now."""
        room = await self.open(viewer, room_channel(room_id))
        return await database(reads.mark_read(self._pool, viewer.user.id, room.id, seq))

    async def unread(self, viewer: Viewer, rooms: list[Room]) -> list[reads.Unread]:
        """Where the viewer left each of `rooms` (rooms they may read: the caller chose them)."""
        if not rooms:
            return []
        return await database(reads.unread(self._pool, viewer.user.id, [r.id for r in rooms]))
