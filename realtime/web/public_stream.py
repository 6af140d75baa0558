"""Live public view: Server-Sent Events of a project's journal for anonymous viewers.

Why SSE and not the WebSocket: a public viewer only listens, and a browser's EventSource
reconnects by itself and sends `Last-Event-ID` — which is exactly our resume (`since`) — with no
protocol to implement on the page; no `hello`, no token, no frame a stranger could send.

One relay per project with public viewers holds the project's single hub subscription to the
journal: each event is made public once (pupils unnamed: policy.named_in_public) and fanned out
to the viewers' queues. A viewer that does not read (a queue over its bound) is dropped; its
browser reconnects and resumes from its last id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from protocol import Encoding
from storage import bots as bots_store
from storage.spaces import Space

from ..fanout.directory import Directory
from ..fanout.hub import Hub, Subscription
from ..policy import Role
from ..ratelimit import address_key
from ..services.chat import Chat, room_channel
from ..services.public import shown_author

MAX_QUEUED = 500  # events waiting for one viewer before it is dropped
MAX_REPLAY = 200  # events a (re)connecting viewer is sent at most; past that, `reload`
MAX_STREAMS_PER_ADDRESS = 10  # anonymous streams one address (an IPv6 /64) holds at once
KEEPALIVE = 20.0  # seconds: a comment line keeps proxies from closing an idle stream


RETRY_MS = 3000  # `retry:` at the start of every stream: how long EventSource waits to reconnect
BUSY_RETRY_MS = 10_000  # ... and after `busy`: one address holds too many streams


def sse(seq: int | None, kind: str, data: dict[str, Any]) -> str:
    """One event. Without `seq` it has no `id:` line, and a browser keeps the last id it had: an
    `id:` sets where EventSource resumes (Last-Event-ID), and only the journal's events may."""
    head = "" if seq is None else f"id: {seq}\n"
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


class Relay:
    """The hub's outlet for one project's journal; turns events public once for all viewers."""

    encoding = Encoding.JSON

    def __init__(self, space_id: int, roles: dict[int, Role], bot_ids: set[int]) -> None:
        self.space_id = space_id
        self.roles = roles  # author id -> role in the project (refreshed from the directory)
        # Who belongs, with which role, changed and the roles are being read again: meanwhile
        # nobody is named (a member who is now a visitor must not be named on the way).
        self.unsure = False
        self.bot_ids = bot_ids
        self.viewers: set[asyncio.Queue[tuple[int, str] | None]] = set()
        self.sub: Subscription | None = None

    def push(self, item: bytes) -> None:
        event = json.loads(item)
        if event.get("type") != "event":  # presence and typing in the journal: not for the public
            return
        seq = event["seq"]
        line = sse(seq, event["kind"], {"seq": seq, "message": self.public(event["message"])})
        for queue in list(self.viewers):
            if queue.qsize() >= MAX_QUEUED:
                self.viewers.discard(queue)
                queue.put_nowait(None)  # the viewer's stream ends; EventSource reconnects and resumes
            else:
                queue.put_nowait((seq, line))

    def public(self, message: dict[str, Any]) -> dict[str, Any]:
        author = message["author"]
        role = None if self.unsure else self.roles.get(author["id"])
        shown = shown_author(author["name"], author["school"], role and role.value, author["id"] in self.bot_ids)
        visible = message["state"] == "visible"
        return {
            "id": message["id"], "title": message.get("title") if visible else None,
            "text": message["text"] if visible else None, "parent_id": message.get("parent_id"),
            "links": message.get("links", []) if visible else [],
            "state": message["state"], "author": shown, "created_at": message["created_at"],
            "edited_at": message["edited_at"],
        }


class PublicStreams:
    def __init__(self, hub: Hub, chat: Chat, directory: Directory, pool: Any) -> None:
        self._hub = hub
        self._chat = chat
        self._directory = directory
        self._pool = pool
        self._relays: dict[int, Relay] = {}
        self._reloads: set[asyncio.Task[None]] = set()
        self._open: dict[str, int] = {}  # address key -> anonymous streams open

    async def _relay(self, space_id: int) -> Relay:
        relay = self._relays.get(space_id)
        if relay is None:
            room = await self._chat.journal_room(space_id)
            roster = await self._directory.roster(space_id)
            bot_ids = await bots_store.user_ids(self._pool, space_id)
            relay = self._relays.get(space_id)  # someone may have made it meanwhile
            if relay is None:
                relay = self._relays[space_id] = Relay(space_id, {u: m.role for u, m in roster.items()}, bot_ids)
                # Subscribe first, then read where the journal is: the hub keeps aside what
                # commits in between (the resume pattern of every channel).
                relay.sub = self._hub.subscribe(relay, room_channel(room.id), meta=room)
                self._hub.go_live(relay.sub, await self._chat.head(room))
        cached = self._directory.cached_roster(space_id)
        if cached is not None:  # membership changed since: who counts as a pupil follows
            relay.roles = {u: m.role for u, m in cached.items()}
        return relay

    def end(self, space_id: int) -> None:
        """End the project's viewers' streams (their browsers reconnect, and are refused if the
        public view is off)."""
        relay = self._relays.get(space_id)
        for queue in list(relay.viewers if relay else ()):
            queue.put_nowait(None)

    def space_changed(self, space: Space) -> None:
        """A project's settings changed (on any process: a control message): a public view
        turned off ends every anonymous stream of it here."""
        if not space.public:
            self.end(space.id)

    def members_changed(self, space_id: int) -> None:
        """Who belongs changed: read the roles again; until then, name nobody."""
        relay = self._relays.get(space_id)
        if relay is None:
            return
        relay.unsure = True
        self._reloads.add(task := asyncio.get_running_loop().create_task(self._reload_roles(relay)))
        task.add_done_callback(self._reloads.discard)

    async def _reload_roles(self, relay: Relay) -> None:
        try:
            roster = await self._directory.roster(relay.space_id)
        except Exception:  # noqa: BLE001 — PostgreSQL away: stay unsure, try with the next change
            return
        relay.roles = {u: m.role for u, m in roster.items()}
        relay.unsure = False

    def full(self, address: str) -> bool:
        """Whether `address` already holds as many anonymous streams as it may."""
        return self._open.get(address_key(address), 0) >= MAX_STREAMS_PER_ADDRESS

    async def stream(self, space_id: int, since: int | None, address: str) -> AsyncIterator[str]:
        """The journal's events after `since` (from the start if None), then live ones, as SSE
        text. What is replayed is bounded: each message once, in its current state (not each of
        its edits), and at most MAX_REPLAY events' worth — past that the viewer is sent `reload`
        (load GET /api/public/{slug} again) and goes on live. An address holding
        MAX_STREAMS_PER_ADDRESS streams gets `busy` and the stream ends."""
        key = address_key(address)
        if self._open.get(key, 0) >= MAX_STREAMS_PER_ADDRESS:  # checked again: opens race the route's check
            # No id: `id: 0` made the browser come back with Last-Event-ID 0, replaying the
            # journal from its start instead of resuming.
            yield f"retry: {BUSY_RETRY_MS}\n\n" + sse(None, "busy", {"retry_after_ms": BUSY_RETRY_MS})
            return
        self._open[key] = self._open.get(key, 0) + 1
        room = await self._chat.journal_room(space_id)
        relay = await self._relay(space_id)
        queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()
        relay.viewers.add(queue)  # before reading the replay: nothing falls between the two
        try:
            yield f"retry: {RETRY_MS}\n\n"
            after = since or 0
            head = await self._chat.head(room)
            if head - after > MAX_REPLAY:
                yield sse(head, "reload", {"seq": head})  # too much missed: the page reloads the journal
            else:
                latest: dict[int, Any] = {}  # message id -> its last event: its state now
                while True:
                    events, head, more = await self._chat.replay_page(room, after, MAX_REPLAY)
                    for e in events:
                        latest.pop(e.data["message"]["id"], None)
                        latest[e.data["message"]["id"]] = e
                    if not more or not events or len(latest) >= MAX_REPLAY:
                        break
                    after = events[-1].seq
                for e in latest.values():
                    yield sse(e.seq, e.kind, {"seq": e.seq, "message": relay.public(e.data["message"])})
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if item is None:
                    return
                seq, line = item
                if seq > head:
                    yield line
        finally:
            left = self._open.get(key, 1) - 1
            if left:
                self._open[key] = left
            else:
                self._open.pop(key, None)
            relay.viewers.discard(queue)
            if not relay.viewers and self._relays.get(space_id) is relay:
                del self._relays[space_id]
                if relay.sub is not None:
                    self._hub.unsubscribe(relay.sub)
