"""What a connection's frames mean: authentication, subscriptions with resume, and requests.

A Session belongs to one Connection. Until a good `hello` it accepts nothing else (a browser
whose handshake carried the session cookie still sends `hello`, without a token). Afterwards
every request is looked up in the request table (services/requests.py, shared with HTTP) and
checked by the services against the user's roles as they are *now*; hello, ping, subscribe,
unsubscribe and typing are the session's own.

Answers: a request that carried a `ref` gets an `ok` with that ref when it succeeded; every
refused request gets an `error` (with the ref when there was one). Rows marked concurrent (posts,
sends) run concurrently (a client may keep a window of posts in flight); they are committed and
acknowledged in order.

What hello and a resuming subscribe read goes through the group readers (services/streams.py),
so that a class reconnecting at once costs a few statements per batch. The rights themselves
come from the directory, which keeps them for a grace period after a user's last socket closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from protocol import (
    ClientFrame,
    CloseCode,
    Error,
    ErrorCode,
    Event,
    Hello,
    InvitationNotice,
    Ok,
    Ping,
    Pong,
    Subscribe,
    Typing,
    Unsubscribe,
    Welcome,
)
from storage import Unavailable

from ..errors import Refused, ServiceError, outage, refusals
from ..fanout.directory import Viewer
from ..fanout.hub import Subscription
from ..fanout.shield import shield
from ..policy import Action, sees_pupils
from ..services.bundle import Services
from ..services.chat import Page
from ..services.requests import SESSION_FRAMES, TABLE, answer
from ..services.streams import Stream
from ..services.welcome import welcome
from .connection import Connection

log = logging.getLogger("twinhub.session")

MAX_POSTS_IN_FLIGHT = 64
_OWN = SESSION_FRAMES  # answered here; every other frame through the request table
REPLAY_PAGE = 200  # events read and queued at a time when replaying
PUSH_PAGE_BYTES = 64 * 1024  # a shared replay page this small is queued at once (then paced)
MAX_TOLD = 100  # invitations whose last status a socket remembers (to tell each change once)


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
        self._welcome_due = False  # rights changed since the last welcome was built
        self._notices: set[asyncio.Task[None]] = set()  # invitations being read to be told
        self._told: dict[int, str] = {}  # invitation id -> the status this socket was last told
        self.hello_received = False  # the auth deadline is for sending hello, not for our checking it

    # -- dispatch ----------------------------------------------------------------------------

    async def dispatch(self, frame: ClientFrame) -> None:
        row = TABLE.get(type(frame))
        if row is not None and row.concurrent:
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
            data = await self._own(self.viewer, frame) if type(frame) in _OWN else await answer(self.s, self.viewer, frame)
            if data is not None and frame.ref is not None:
                self.conn.send(Ok(ref=frame.ref, data=data))
        except (ServiceError, Unavailable) as caught:
            exc = caught if isinstance(caught, ServiceError) else outage()
            self.conn.send(Error(exc.code.value, exc.message, ref=frame.ref, data=exc.data))
            self.conn.count_error(exc.code.value)
            refusals.note(f"refused {exc.code.value}", "refused a %s frame: %s", frame.type, exc.code.value)
        except Exception as exc:
            refusals.note(f"failed {frame.type}: {type(exc).__name__}", "request %s failed", frame.type,
                          level=logging.ERROR, exc_info=True)
            self.conn.send(Error(ErrorCode.INTERNAL.value, "the server failed on this request", ref=frame.ref))

    async def _own(self, viewer: Viewer, frame: ClientFrame) -> dict[str, Any] | None:
        """The session's own requests; returns the `ok` fields, or None when it answered by itself."""
        if isinstance(frame, Subscribe):
            return await self._subscribe(viewer, frame)
        if isinstance(frame, Unsubscribe):
            sub = self.subs.pop(frame.channel, None)
            if sub is None:
                raise ServiceError(ErrorCode.NOT_SUBSCRIBED, f"you are not subscribed to {frame.channel}")
            self._drop(frame.channel, sub)
            return {"channel": frame.channel}
        assert isinstance(frame, Typing)
        return await self._typing(viewer, frame)

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
        self.s.directory.listen_invitations(user.id, self._invitation_changed)
        # Outside the outbox's budget: a member of many big projects has a big welcome, and it
        # must never cost them their socket (ws/connection.py).
        self.conn.send_whole(Welcome(**await welcome(self.s, self.viewer), ref=frame.ref))

    # -- subscriptions -----------------------------------------------------------------------

    async def _subscribe(self, viewer: Viewer, frame: Subscribe) -> None:
        hub, (kind, stream) = self.s.hub, self.s.streams.of(frame.channel)
        meta = await stream.open(viewer, frame.channel)
        old = self.subs.pop(frame.channel, None)
        if old is not None:
            self._drop(frame.channel, old)
        elif len(self.subs) >= self.s.limits.max_channels:
            raise ServiceError(ErrorCode.TOO_MANY_CHANNELS, f"at most {self.s.limits.max_channels} channels per connection")
        # Subscribe first, then read the replay: whatever commits meanwhile is kept aside by the
        # hub and sent after the replay, without gap or duplicate.
        sub = hub.subscribe(self.conn, frame.channel, meta=meta)
        _fit(sub, viewer, stream)
        sub.viewer_id = viewer.user.id
        try:
            head, replayed, resync = await self._replay(viewer, frame.channel, stream, sub, frame.since)
            # The replay took a while: rights changed meanwhile (a removal, a new role) were not
            # seen by _rights_changed (this subscription was not live). Check them again now.
            self._still_allowed(viewer, frame.channel, stream, meta)
            _fit(sub, viewer, stream)
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
        if kind.presence:
            presence = self.s.presence
            presence.join(frame.channel, viewer.card(meta.space_id))
            self.conn.send(presence.snapshot(frame.channel, sees_pupils=sub.sees_pupils, follower=sub))
        return None

    async def _replay(
        self, viewer: Viewer, channel: str, stream: Stream, sub: Subscription, since: int | None
    ) -> tuple[int, int, bool]:
        """Send the channel's events after `since`, page by page, never faster than the socket
        takes them, each page only while the viewer may still read the channel. Returns (head,
        events sent, resync). Too far behind (more than max_replay events): nothing is sent and
        resync is True — the client reloads over HTTP."""
        meta = sub.meta
        if since is None:
            return await stream.head(meta), 0, False
        events, head, more = await stream.replay_page(meta, since, REPLAY_PAGE)
        if head - since > stream.max_replay:
            return head, 0, True
        sent = 0
        while True:
            self._still_allowed(viewer, channel, stream, meta)
            await self._send_page(events if sub.sees_pupils else [shield(e) for e in events])
            sent += len(events)
            if not more or self.conn.closing:
                return head, sent, False
            events, head, more = await stream.replay_page(meta, events[-1].seq, REPLAY_PAGE)

    @staticmethod
    def _still_allowed(viewer: Viewer, channel: str, stream: Stream, meta: Any) -> None:
        """Raise the refusal if the viewer, as they are now, may no longer follow the channel."""
        refusal = stream.refusal(viewer, meta)
        if refusal is not None:
            raise Refused(refusal, channel=channel)

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
        if self.viewer is not None and self.s.streams.of(channel)[0].presence:
            self.s.presence.leave(channel, self.viewer.user.id)

    async def _typing(self, viewer: Viewer, frame: Typing) -> dict[str, Any]:
        if frame.channel not in self.subs:
            raise ServiceError(ErrorCode.NOT_SUBSCRIBED, f"subscribe to {frame.channel} before typing in it")
        if not self.s.streams.of(frame.channel)[0].presence:
            raise ServiceError(ErrorCode.INVALID_FIELD, "typing notices are for rooms")
        room = await self.s.chat.room_for(viewer, frame.channel)
        await self.s.chat.check(viewer, room, Action.POST)
        # Muted there: they may not post, so they are not shown typing either (a notice that keeps
        # a room waiting for words that cannot come is a way around the mute).
        viewer.require_not_muted(room.space_id, room.area)
        # Typing notices are advisory: extra ones are dropped silently, never refused.
        if not self.s.typing_limiter.take((viewer.user.id, frame.channel)):
            self.s.presence.typing(frame.channel, viewer.card(room.space_id), exclude=self.conn)
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
            _, stream = self.s.streams.of(channel)
            refusal = stream.refusal(viewer, sub.meta)
            if refusal is None:
                _fit(sub, viewer, stream)  # a new role may see more, or less
            else:
                del self.subs[channel]
                self._drop(channel, sub)
                self.conn.send(Error(refusal.code.value, refusal.message, data={"channel": channel}))
        # Then tell the client what it may do now (a new project, a new role, rooms it lost or
        # that were archived): a fresh `welcome`, one at a time however many changes arrive.
        self._welcome_due = True
        if self._rewelcome is None or self._rewelcome.done():
            self._rewelcome = asyncio.create_task(self._send_welcome())

    async def _send_welcome(self) -> None:
        """Send fresh welcomes until one was built after the last change. Each is built only
        once the socket took what waited before the previous one (Connection.drained), so a
        client that reads slowly gets the latest state, not a pile of welcomes: changes however
        many (a room archived and unarchived in a loop) never fill its outbox."""
        await asyncio.sleep(0)  # changes applied in the same tick share one welcome
        while self._welcome_due:
            await self.conn.drained()
            viewer = self.viewer
            if viewer is None or self.conn.closing:
                return
            self._welcome_due = False
            try:
                self.conn.send_whole(Welcome(**await welcome(self.s, viewer)))
            except Exception:  # the database is away: the client still has its last welcome
                log.warning("could not send a fresh welcome", exc_info=True)
                return

    def _invitation_changed(self, invitation_id: int) -> None:
        """An invitation to this user was made, answered or withdrawn (on whichever process):
        tell this socket, with the invitation as it is now."""
        task = asyncio.create_task(self._tell_invitation(invitation_id))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _tell_invitation(self, invitation_id: int) -> None:
        viewer = self.viewer
        if viewer is None or self.conn.closing:
            return
        try:
            found = await self.s.invitations.notice(viewer.user.id, invitation_id)
        except Exception:  # the database is away: GET /api/invitations still has it
            log.warning("could not read an invitation to tell its invitee", exc_info=True)
            return
        if found is None or self.conn.closing:
            return
        # A change may be heard more than once (this process applies its own control messages,
        # and hears them from the bus), and two reads may come back out of order: an invitation
        # is told once per status, and never pending again once answered or withdrawn.
        was, status = self._told.get(invitation_id), found["status"]
        if was == status or (was is not None and was != "pending"):
            return
        self._told[invitation_id] = status
        if len(self._told) > MAX_TOLD:
            del self._told[next(iter(self._told))]
        self.conn.send(InvitationNotice(found))

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
        for task in list(self._notices):
            task.cancel()
        for channel, sub in list(self.subs.items()):
            self._drop(channel, sub)
        self.subs.clear()
        if self.viewer is not None:
            self.s.directory.unlisten(self.viewer.user.id, self._rights_changed)
            self.s.directory.unlisten_invitations(self.viewer.user.id, self._invitation_changed)
            self.s.directory.release(self.viewer)
            self.viewer = None


def _fit(sub: Subscription, viewer: Viewer, stream: Stream) -> None:
    """What of the channel reaches this subscriber, for their roles now: the areas of its events,
    and whether it shows them who the pupils are (events, presence, typing)."""
    sub.accepts = stream.accepts(viewer, sub.meta)
    space_id = getattr(sub.meta, "space_id", None)  # the project a room, feed or mailbox belongs to
    sub.sees_pupils = space_id is None or sees_pupils(viewer.roles_in(space_id))
