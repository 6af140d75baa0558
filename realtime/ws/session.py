"""What a connection's frames mean: authentication, subscriptions with resume, and requests.

A Session belongs to one Connection. Until a good `hello` it accepts nothing else (a browser
whose handshake carried the session cookie still sends `hello`, without a token). Afterwards
every request is checked by the services against the user's roles as they are *now*.

Answers: a request that carried a `ref` gets an `ok` with that ref when it succeeded; every
refused request gets an `error` (with the ref when there was one). Posts run concurrently (a
client may keep a window of posts in flight); they are committed and acknowledged in order.

Reconnects are cheap in crowds: what a `hello` and a resuming `subscribe` read from PostgreSQL —
the session token, the welcome's rooms and mailboxes, a room's replay — goes through group
readers (storage/reader.py, `Readers` below), so that a class (or a school) reconnecting at once
costs a few statements per batch rather than a few round trips per socket, and the sessions that
resume one room from the same seq share its events and their encoding. Each read still starts
after its caller asked (resume's ordering depends on it). The rights themselves come from the
directory, which keeps them for a grace period after a user's last socket closed.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from protocol import (
    ClientFrame,
    CloseCode,
    Delete,
    Edit,
    Encoding,
    Error,
    ErrorCode,
    Event,
    Hello,
    Hide,
    MailFrame,
    ModerationFrame,
    Ok,
    Ping,
    Pong,
    Post,
    SendMail,
    Subscribe,
    Typing,
    Unhide,
    Unsubscribe,
    Welcome,
    encode_server_item,
)
from protocol.limits import Limits
from storage import accounts
from storage import mail as mail_store
from storage import messages as messages_store
from storage import spaces as spaces_store
from storage.accounts import User
from storage.mail import Mailbox
from storage.reader import GroupReader
from storage.reports import PLATFORM_QUEUE
from storage.spaces import Room

from ..errors import ServiceError
from ..fanout.directory import Directory, Viewer
from ..fanout.hub import Hub, Subscription
from ..fanout.presence import PresenceTracker
from ..policy import Action, Area, Refusal, decide_queue, rights
from ..ratelimit import RateLimiter
from ..services.auth import Auth, session_key
from ..services.chat import Chat, room_channel
from ..services.chat import to_event as room_event
from ..services.feed import Feed, feed_channel
from ..services.mail import Mail, answer_mail, mail_channel
from ..services.moderation import Moderation, answer_moderation, queue_channel
from ..services.projects import Projects
from ..wire import database, parse_channel
from .connection import Connection

log = logging.getLogger("twinhub.session")

MAX_POSTS_IN_FLIGHT = 64
REPLAY_PAGE = 200  # events read and queued at a time when replaying
PUSH_PAGE_BYTES = 64 * 1024  # a shared replay page this small is queued at once (then paced)


class Stream(Protocol):
    """A kind of channel a client can follow (rooms, mailboxes): how to open one for a viewer,
    read its log, and tell whether the viewer may still follow it."""

    presence: bool
    max_replay: int

    async def open(self, viewer: Viewer, channel: str) -> Any:
        """The channel's meta if the viewer may follow it; raises ServiceError otherwise."""

    def refusal(self, viewer: Viewer, meta: Any) -> Refusal | None: ...

    def accepts(self, viewer: Viewer, meta: Any) -> frozenset[str] | None:
        """The areas whose events reach this subscriber (None: all of them)."""

    async def head(self, meta: Any) -> int: ...

    async def replay_page(self, meta: Any, since: int, limit: int) -> tuple[list[Event], int, bool]: ...


@dataclass(slots=True)
class Services:
    """What a session needs from the server (built once by the app)."""

    auth: Auth
    directory: Directory
    hub: Hub
    chat: Chat
    mail: Mail
    feed: Feed
    moderation: Moderation
    projects: Projects
    presence: PresenceTracker
    limits: Limits
    typing_limiter: RateLimiter
    readers: Readers

    def stream(self, channel: str) -> Stream:
        kind, _ = parse_channel(channel)
        if kind == "room":
            return self.readers.rooms
        if kind == "mail":
            return self.mail
        if kind == "feed":
            return self.feed
        if kind == "moderation":
            return self.moderation
        raise ServiceError(ErrorCode.NOT_FOUND, f"there is no channel {channel} in your projects", channel=channel)


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


class Rooms:
    """The chat service as a Stream, its replays read together: every room page asked for while
    the previous batch was being read is answered by one statement (storage.messages.replay_many),
    and sessions resuming one room from the same seq get the same Page."""

    presence = True

    def __init__(self, chat: Chat, replays: GroupReader[tuple[int, int, int], tuple[Page, int, bool]]) -> None:
        self.chat = chat
        self._replays = replays

    @property
    def max_replay(self) -> int:
        return self.chat.max_replay

    async def open(self, viewer: Viewer, channel: str) -> Room:
        return await self.chat.open(viewer, channel)

    def refusal(self, viewer: Viewer, room: Room) -> Refusal | None:
        return self.chat.refusal(viewer, room)

    def accepts(self, viewer: Viewer, room: Room) -> frozenset[str] | None:
        return self.chat.accepts(viewer, room)

    async def head(self, room: Room) -> int:
        return await self.chat.head(room)

    async def replay_page(self, room: Room, since: int, limit: int) -> tuple[list[Event], int, bool]:
        """Up to `limit` events after `since`, the room's head in the same snapshot, and whether
        more are waiting — from a statement that started after this call (so after the caller's
        hub subscription: resume stays gap-free)."""
        return await database(self._replays.read((room.id, since, limit)))


async def _read_replays(conn: asyncpg.Connection, keys: list[tuple[int, int, int]]) -> list[tuple[Page, int, bool]]:
    found = await messages_store.replay_many(conn, keys)
    return [(Page(room_event(e) for e in r.events), r.head, r.more) for r in found]


class Readers:
    """The group readers of hello, welcome and resume (storage/reader.py), built once by the
    app; start() before serving, close() after."""

    def __init__(self, pool: asyncpg.Pool, chat: Chat, directory: Directory) -> None:
        self._directory = directory
        self.sessions: GroupReader[bytes, tuple[User, datetime] | None] = GroupReader(
            pool, accounts.session_users, name="session_user"
        )
        self.rooms_of: GroupReader[int, list[Room]] = GroupReader(pool, spaces_store.rooms_of_each, name="rooms_of")
        self.mailboxes: GroupReader[int, list[Mailbox]] = GroupReader(
            pool, mail_store.mailboxes_of_owners, name="mailboxes_of"
        )
        self.replays: GroupReader[tuple[int, int, int], tuple[Page, int, bool]] = GroupReader(
            pool, _read_replays, name="replay"
        )
        self.rooms = Rooms(chat, self.replays)

    def _all(self) -> list[GroupReader[Any, Any]]:
        return [self.sessions, self.rooms_of, self.mailboxes, self.replays]

    def start(self) -> None:
        for reader in self._all():
            reader.start()

    async def close(self) -> None:
        for reader in self._all():
            await reader.close()

    async def user_for(self, token: str | None) -> User | None:
        """The user of a live session token, or None (unknown, expired or revoked): what
        Auth.user_for answers, read together with the other hellos of the moment."""
        key = session_key(token)
        if key is None:
            return None
        found = await self.sessions.read(key)
        return None if found is None else found[0]

    async def rooms_in(self, space_ids: list[int]) -> list[Room]:
        """The rooms of these spaces, space by space (Directory.rooms_of, read together)."""
        rooms: list[Room] = []
        for found in await asyncio.gather(*(self.rooms_of.read(s) for s in space_ids)):
            rooms.extend(found)
        self._directory.keep_rooms(rooms)
        return rooms

    async def mailboxes_of(self, viewer: Viewer) -> dict[int, dict[str, Any]]:
        """Mail.mailboxes, read together: space id -> the viewer's mailbox in the spaces they are
        a member of now (channel, head seq, unread counts; subscribe with since=seq)."""
        found = await database(self.mailboxes.read(viewer.user.id))
        return {
            b.space_id: {"channel": mail_channel(b.id), "seq": b.last_seq, "unread": b.unread}
            for b in found if b.space_id in viewer.roles
        }


class Session:
    def __init__(self, services: Services, conn: Connection, *, cookie_token: str | None = None) -> None:
        self.s = services
        self.conn = conn
        self.viewer: Viewer | None = None
        self.subs: dict[str, Subscription] = {}
        self._cookie_token = cookie_token
        self._posts: set[asyncio.Task[None]] = set()
        self._epoch = 0  # the viewer's epoch at hello (see _rights_changed)
        self._rewelcome: asyncio.Task[None] | None = None
        self.hello_received = False  # the auth deadline is for sending hello, not for our checking it

    # -- dispatch ----------------------------------------------------------------------------

    async def dispatch(self, frame: ClientFrame) -> None:
        if isinstance(frame, Post | SendMail):
            # Run concurrently so that a window of posts shares group commits. Creation order is
            # queue order: Chat.post does not suspend before it queues when its caches are warm.
            if self.viewer is not None and len(self._posts) >= MAX_POSTS_IN_FLIGHT:
                await asyncio.wait(self._posts, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.create_task(self._answer(frame))
            self._posts.add(task)
            task.add_done_callback(self._posts.discard)
            return
        await self._answer(frame)

    async def _answer(self, frame: ClientFrame) -> None:
        try:
            if isinstance(frame, Ping):
                self.conn.send(Pong(ref=frame.ref))
                return
            if isinstance(frame, Hello):
                await self._hello(frame)
                return
            if self.viewer is None:
                raise ServiceError(ErrorCode.UNAUTHENTICATED, "send hello with your token first")
            data = await self._request(self.viewer, frame)
            if data is not None and frame.ref is not None:
                self.conn.send(Ok(ref=frame.ref, data=data))
        except ServiceError as exc:
            self.conn.send(Error(exc.code.value, exc.message, ref=frame.ref, data=exc.data))
            self.conn.count_error(exc.code.value)
        except Exception:
            log.exception("request %s failed", frame.type)
            self.conn.send(Error(ErrorCode.INTERNAL.value, "the server failed on this request", ref=frame.ref))

    async def _request(self, viewer: Viewer, frame: ClientFrame) -> dict[str, Any] | None:
        """Carry out a request; returns the `ok` fields, or None when it answered by itself."""
        chat = self.s.chat
        if isinstance(frame, Post):
            posted = await chat.post(
                viewer, frame.channel, frame.text, frame.client_id, frame.title, frame.parent, frame.links
            )
            e = posted.event
            return {"channel": e.channel, "seq": e.seq, "id": e.data["message"]["id"], "duplicate": posted.duplicate}
        if isinstance(frame, Subscribe):
            return await self._subscribe(viewer, frame)
        if isinstance(frame, Unsubscribe):
            sub = self.subs.pop(frame.channel, None)
            if sub is None:
                raise ServiceError(ErrorCode.NOT_SUBSCRIBED, f"you are not subscribed to {frame.channel}")
            self._drop(frame.channel, sub)
            return {"channel": frame.channel}
        if isinstance(frame, Typing):
            return await self._typing(viewer, frame)
        if isinstance(frame, Edit):
            e = await chat.edit(viewer, frame.channel, frame.id, frame.text)
            return {"channel": e.channel, "seq": e.seq, "id": frame.id}
        if isinstance(frame, Delete):
            e = await chat.delete(viewer, frame.channel, frame.id, frame.reason)
            return {"channel": e.channel, "seq": e.seq, "id": frame.id}
        if isinstance(frame, Hide):
            e = await chat.hide(viewer, frame.channel, frame.id, frame.reason)
            return {"channel": e.channel, "seq": e.seq, "id": frame.id}
        if isinstance(frame, Unhide):
            e = await chat.unhide(viewer, frame.channel, frame.id, frame.reason)
            return {"channel": e.channel, "seq": e.seq, "id": frame.id}
        if isinstance(frame, MailFrame):
            return await answer_mail(self.s.mail, viewer, frame)
        if isinstance(frame, ModerationFrame):
            return await answer_moderation(self.s.moderation, self.s.projects, viewer, frame)
        raise ServiceError(ErrorCode.UNKNOWN_TYPE, f"frame type {frame.type} is not handled")  # pragma: no cover

    # -- hello -------------------------------------------------------------------------------

    async def _hello(self, frame: Hello) -> None:
        self.hello_received = True
        if self.viewer is not None:
            raise ServiceError(ErrorCode.ALREADY_AUTHENTICATED, "this connection is already authenticated")
        user = await self.s.readers.user_for(frame.token or self._cookie_token)
        if user is None:
            self.conn.send(Error(ErrorCode.UNAUTHENTICATED.value, "unknown, expired or revoked token", ref=frame.ref))
            self.conn.close(CloseCode.AUTH_FAILED, "authentication failed")
            return
        self.viewer = await self.s.directory.acquire(user)
        self._epoch = self.viewer.epoch
        self.s.directory.listen(user.id, self._rights_changed)
        self.conn.send(await welcome(self.s, self.viewer, frame.ref))

    # -- subscriptions -----------------------------------------------------------------------

    async def _subscribe(self, viewer: Viewer, frame: Subscribe) -> None:
        hub, stream = self.s.hub, self.s.stream(frame.channel)
        meta = await stream.open(viewer, frame.channel)
        old = self.subs.pop(frame.channel, None)
        if old is not None:
            self._drop(frame.channel, old)
        elif len(self.subs) >= self.s.limits.max_channels:
            raise ServiceError(ErrorCode.TOO_MANY_CHANNELS, f"at most {self.s.limits.max_channels} channels per connection")
        # Subscribe first, then read the replay: whatever commits meanwhile is kept aside by the
        # hub and sent after the replay, without gap or duplicate.
        sub = hub.subscribe(self.conn, frame.channel, meta=meta)
        sub.accepts = stream.accepts(viewer, meta)
        try:
            head, replayed, resync = await self._replay(stream, meta, frame.since)
        except BaseException:
            hub.unsubscribe(sub)
            raise
        if self.conn.closing:
            hub.unsubscribe(sub)
            return None
        self.subs[frame.channel] = sub
        answer: dict[str, Any] = {"channel": frame.channel, "head": head, "replayed": replayed}
        if resync:
            answer["resync"] = True
        if frame.ref is not None:
            self.conn.send(Ok(ref=frame.ref, data=answer))
        hub.go_live(sub, head)
        if stream.presence:
            presence = self.s.presence
            presence.join(frame.channel, viewer.card())
            self.conn.send(presence.snapshot(frame.channel))
        return None

    async def _replay(self, stream: Stream, meta: Any, since: int | None) -> tuple[int, int, bool]:
        """Send the channel's events after `since`, page by page, never faster than the socket
        takes them. Returns (head, events sent, resync). Too far behind (more than max_replay
        events): nothing is sent and resync is True — the client reloads over HTTP."""
        if since is None:
            return await stream.head(meta), 0, False
        events, head, more = await stream.replay_page(meta, since, REPLAY_PAGE)
        if head - since > stream.max_replay:
            return head, 0, True
        sent = 0
        while True:
            await self._send_page(events)
            sent += len(events)
            if not more or self.conn.closing:
                return head, sent, False
            events, head, more = await stream.replay_page(meta, events[-1].seq, REPLAY_PAGE)

    async def _send_page(self, events: list[Event]) -> None:
        """Queue a replay page, never faster than the socket takes it. A small shared page goes
        out as the items it was encoded into once (its last event paced: past half the outbox
        budget, wait for the socket), else event by event."""
        conn = self.conn
        if isinstance(events, Page) and events:
            items, size = events.items(conn.encoding)
            if size <= PUSH_PAGE_BYTES:
                for item in items[:-1]:
                    conn.push(item)
                await conn.send_paced(events[-1])
                return
        for event in events:
            await conn.send_paced(event)

    def _drop(self, channel: str, sub: Subscription) -> None:
        self.s.hub.unsubscribe(sub)
        if self.viewer is not None and self.s.stream(channel).presence:
            self.s.presence.leave(channel, self.viewer.user.id)

    async def _typing(self, viewer: Viewer, frame: Typing) -> dict[str, Any]:
        if frame.channel not in self.subs:
            raise ServiceError(ErrorCode.NOT_SUBSCRIBED, f"subscribe to {frame.channel} before typing in it")
        if not self.s.stream(frame.channel).presence:
            raise ServiceError(ErrorCode.INVALID_FIELD, "typing notices are for rooms")
        room = await self.s.chat.room_for(viewer, frame.channel)
        await self.s.chat.check(viewer, room, Action.POST)
        # Typing notices are advisory: extra ones are dropped silently, never refused.
        if not self.s.typing_limiter.take((viewer.user.id, frame.channel)):
            self.s.presence.typing(frame.channel, viewer.card(), exclude=self.conn)
        return {"channel": frame.channel}

    def _rights_changed(self, user_id: int) -> None:
        """The directory reloaded this user's roles: end subscriptions they may no longer read."""
        viewer = self.viewer
        if viewer is None:
            return
        if viewer.epoch != self._epoch:  # the user logged out everywhere: this socket's session is over
            self.conn.send(Error(ErrorCode.UNAUTHENTICATED.value, "your sessions were ended; log in again"))
            self.conn.close(CloseCode.AUTH_FAILED, "session revoked")
            return
        for channel, sub in list(self.subs.items()):
            stream = self.s.stream(channel)
            refusal = stream.refusal(viewer, sub.meta)
            if refusal is None:
                sub.accepts = stream.accepts(viewer, sub.meta)  # a new role may see more, or less
            else:
                del self.subs[channel]
                self._drop(channel, sub)
                self.conn.send(Error(refusal.code.value, refusal.message, data={"channel": channel}))
        # Then tell the client what it may do now (a new project, a new role, rooms it lost):
        # a fresh `welcome`, one at a time however many changes arrive together.
        if self._rewelcome is None or self._rewelcome.done():
            self._rewelcome = asyncio.create_task(self._send_welcome())

    async def _send_welcome(self) -> None:
        await asyncio.sleep(0)  # changes applied in the same tick share one welcome
        viewer = self.viewer
        if viewer is None or self.conn.closing:
            return
        try:
            self.conn.send(await welcome(self.s, viewer))
        except Exception:  # the database is away: the client still has its last welcome
            log.warning("could not send a fresh welcome", exc_info=True)

    async def close(self) -> None:
        # Posts already queued commit anyway; let them finish so that they are also published
        # (a post cancelled between its commit and its publish would reach live subscribers only
        # through the hub's gap repair).
        if self._posts:
            await asyncio.wait(self._posts, timeout=5)
        for task in list(self._posts):
            task.cancel()
        if self._rewelcome is not None:
            self._rewelcome.cancel()
        for channel, sub in list(self.subs.items()):
            self._drop(channel, sub)
        self.subs.clear()
        if self.viewer is not None:
            self.s.directory.unlisten(self.viewer.user.id, self._rights_changed)
            self.s.directory.release(self.viewer)
            self.viewer = None


async def welcome(services: Services, viewer: Viewer, ref: Any = None) -> Welcome:
    """Who the viewer is, their projects with the rooms they may read (and their rights in
    each), and the limits in force. Sent after `hello`; also the body of GET /api/me."""
    directory = services.directory
    space_ids = sorted(viewer.roles)
    readers = services.readers
    rooms = await database(readers.rooms_in(space_ids)) if space_ids else []
    mailboxes = await readers.mailboxes_of(viewer) if space_ids else {}
    spaces = []
    for space_id in space_ids:
        space = await directory.space(space_id)
        role = viewer.roles[space_id]
        visible = []
        for room in rooms:
            may = rights(role, Area(room.area))
            if room.space_id != space_id or Action.READ not in may:
                continue
            visible.append({
                "id": room.id, "channel": room_channel(room.id), "name": room.name,
                "area": room.area, "kind": room.kind, "rights": sorted(a.value for a in may),
            })
        reviews = decide_queue(viewer.roles_in(space_id), platform=False) is None
        spaces.append({
            "id": space.id, "slug": space.slug, "name": space.name, "description": space.description,
            "closed": space.closed, "role": role.value, "rooms": visible, "mailbox": mailboxes.get(space_id),
            "feed": feed_channel(space_id), "moderation": queue_channel(space_id) if reviews else None,
        })
    user = {**viewer.card(), "username": viewer.user.username}
    if viewer.is_moderator:
        user["platform_role"] = "moderator"
        user["moderation"] = queue_channel(PLATFORM_QUEUE)
    lim = services.limits
    limits = {
        "max_frame_bytes": lim.max_frame_bytes, "max_text_chars": lim.max_text_chars,
        "max_channels": lim.max_channels, "max_mail_recipients": lim.max_mail_recipients,
        "max_subject_chars": lim.max_subject_chars, "max_note_chars": lim.max_reason_chars, "max_page": lim.max_page,
    }
    return Welcome(user=user, spaces=spaces, limits=limits, ref=ref)
