"""The hub: this process's channels and their local subscribers, and the fan-out.

    Hub ── channels: name → Channel ── subs: [Subscription → Outlet (a connection)]

An event reaches the hub once (from the bus) and is encoded at most once per wire format,
whatever the number of subscribers; per subscriber the work is a comparison and an append to
the connection's bounded outbox (Outlet.push never blocks and never awaits).

Order and gaps. Each channel delivers its events in `seq` order, each exactly once: an event
that arrives early waits in the channel's stash until the ones before it arrive; one that is
still missing after `gap_timeout` is fetched from PostgreSQL through the channel kind's
backfill function (the truth is in PostgreSQL; the bus is only the doorbell).

Resume. A new subscription starts *replaying*: live events for it are kept aside while the
caller sends the replay read from PostgreSQL; `go_live(sub, head)` then sends what was kept
aside past `head`, in order, and switches to live. Nothing is missed between the replay and the
live stream, and nothing is sent twice (docs/protocol.md, "Resume").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Container
from typing import Protocol

from protocol import Encoding, Event, ServerFrame, encode_server_item

from .shield import shield

log = logging.getLogger("twinhub.hub")

Backfill = Callable[[str, int, int], Awaitable[list[Event]]]  # (channel, after_seq, upto_seq) -> events


class _Same:
    """The default of send_ephemeral's `without_pupils`: the same frame for everyone."""


SAME = _Same()


class Outlet(Protocol):
    """What the hub writes to: one connection's outbox."""

    encoding: Encoding

    def push(self, item: bytes) -> None:
        """Queue an encoded frame. Never blocks; closes the connection if its outbox is full."""


class Subscription:
    __slots__ = ("outlet", "channel", "last_seq", "pending", "meta", "accepts", "viewer_id", "sees_pupils", "__weakref__")

    def __init__(self, outlet: Outlet, channel: Channel, meta: object = None) -> None:
        self.outlet = outlet
        self.channel = channel
        self.last_seq = 0
        # While replaying: events kept aside as (seq, encoded item). None once live.
        self.pending: list[tuple[int, bytes]] | None = []
        self.meta = meta  # the session's own data about this subscription (user, role, …)
        # The areas whose events this subscriber receives (a feed's reader); None: every event.
        # An event with no area (data["area"] None or absent) goes to everyone.
        self.accepts: frozenset[str] | None = None
        # Who follows it: an event whose data names them in "hidden_from" (a report about them)
        # does not reach this subscription.
        self.viewer_id: int | None = None
        # False: a follower who may not learn who the pupils are (a visitor, policy.sees_pupils):
        # events reach them with the pupils made anonymous (shield.py), ephemeral frames about
        # pupils filtered, or not at all.
        self.sees_pupils = True

    def wants(self, area: str | None) -> bool:
        return area is None or self.accepts is None or area in self.accepts


class Channel:
    __slots__ = ("name", "subs", "last_seq", "stash", "_gap_timer", "_backfilling")

    def __init__(self, name: str) -> None:
        self.name = name
        self.subs: dict[Subscription, None] = {}  # insertion-ordered set
        self.last_seq: int | None = None  # None until the first replay tells where we are
        self.stash: dict[int, Event] = {}
        self._gap_timer: asyncio.TimerHandle | None = None
        self._backfilling = False


def _encoder(event: ServerFrame) -> Callable[[Encoding], bytes]:
    cache: dict[Encoding, bytes] = {}

    def get(enc: Encoding) -> bytes:
        item = cache.get(enc)
        if item is None:
            item = cache[enc] = encode_server_item(event, enc)
        return item

    return get


class Hub:
    def __init__(self, *, gap_timeout: float = 0.25) -> None:
        self.channels: dict[str, Channel] = {}
        self._backfills: dict[str, Backfill] = {}
        self._gap_timeout = gap_timeout
        self.delivered = 0  # frames queued to sockets (for /metrics and the benchmarks)
        self.events = 0
        self.gaps_filled = 0

    def register_backfill(self, kind: str, fetch: Backfill) -> None:
        """`fetch(channel, after, upto)` returns the committed events after..upto of a channel of
        this kind ("room" for "room:42")."""
        self._backfills[kind] = fetch

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(self, outlet: Outlet, name: str, meta: object = None) -> Subscription:
        """Register a subscription in replay mode. Call go_live() once its replay was sent."""
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(name)
        sub = Subscription(outlet, channel, meta)
        channel.subs[sub] = None
        return sub

    def go_live(self, sub: Subscription, head: int) -> None:
        """The caller has queued the replay up to seq `head`: send what was kept aside after it."""
        channel = sub.channel
        if channel.last_seq is None:
            self._set_baseline(channel, head)
        pending, sub.pending = sub.pending or [], None
        sub.last_seq = head
        for seq, item in sorted(pending, key=lambda p: p[0]):
            if seq > sub.last_seq:
                sub.last_seq = seq
                sub.outlet.push(item)
                self.delivered += 1

    def unsubscribe(self, sub: Subscription) -> None:
        channel = sub.channel
        channel.subs.pop(sub, None)
        if not channel.subs and self.channels.get(channel.name) is channel:
            if channel._gap_timer is not None:
                channel._gap_timer.cancel()
            del self.channels[channel.name]

    def subscribers(self, name: str) -> list[Subscription]:
        channel = self.channels.get(name)
        return list(channel.subs) if channel else []

    # -- delivery ----------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Deliver a committed event to this process's subscribers, in seq order, exactly once."""
        channel = self.channels.get(event.channel)
        if channel is None:
            return  # nobody here follows it; PostgreSQL has it for whoever comes later
        self.events += 1
        last = channel.last_seq
        if last is None or event.seq > last + 1:
            channel.stash[event.seq] = event
            if last is not None:
                self._arm_gap_timer(channel)
            return
        if event.seq <= last:
            return  # already delivered (a replay overlap or a bus redelivery)
        self._deliver(channel, event)
        self._drain_stash(channel)

    def send_ephemeral(
        self, name: str, frame: ServerFrame, *, exclude: Outlet | None = None,
        without_pupils: ServerFrame | None | _Same = SAME, skip: Container[Subscription] = (),
    ) -> None:
        """Typing and presence: no seq, not stored, only to live subscribers (but those in
        `skip`). Those who may not see pupils get `without_pupils` instead (None: nothing; by
        default the same frame)."""
        channel = self.channels.get(name)
        if channel is None:
            return
        encoded = _encoder(frame)
        other = encoded if without_pupils is SAME else (None if without_pupils is None else _encoder(without_pupils))
        for sub in channel.subs:
            if sub.pending is None and sub.outlet is not exclude and sub not in skip:
                get = encoded if sub.sees_pupils else other
                if get is not None:
                    sub.outlet.push(get(sub.outlet.encoding))

    def send_ephemeral_to(self, sub: Subscription, frame: ServerFrame) -> None:
        """An ephemeral frame for one subscription alone, if it is still live."""
        if sub.pending is None and sub in sub.channel.subs and self.channels.get(sub.channel.name) is sub.channel:
            sub.outlet.push(encode_server_item(frame, sub.outlet.encoding))

    def _deliver(self, channel: Channel, event: Event) -> None:
        seq = event.seq
        channel.last_seq = seq
        items: dict[Encoding, bytes] = {}  # the event, encoded once per wire format
        shielded: dict[Encoding, bytes] | None = None  # ... and as a visitor gets it (shield.py)
        event_for_visitors = event
        area = event.data.get("area")  # feed records: only readers of that area get them
        hidden = event.data.get("hidden_from")  # a report: never to the member it is about
        n = 0
        for sub in channel.subs:
            if area is not None and sub.accepts is not None and area not in sub.accepts:
                continue  # its seq passes unseen: the reader's feed has a hole there, by design
            if hidden is not None and sub.viewer_id == hidden:
                continue
            outlet = sub.outlet
            if not sub.sees_pupils:
                if shielded is None:
                    event_for_visitors = shield(event)
                    shielded = items if event_for_visitors is event else {}
                item = shielded.get(outlet.encoding)
                if item is None:
                    item = shielded[outlet.encoding] = encode_server_item(event_for_visitors, outlet.encoding)
            else:
                item = items.get(outlet.encoding)
                if item is None:
                    item = items[outlet.encoding] = encode_server_item(event, outlet.encoding)
            if sub.pending is not None:
                sub.pending.append((seq, item))
            elif seq > sub.last_seq:
                sub.last_seq = seq
                outlet.push(item)
                n += 1
        self.delivered += n

    def _drain_stash(self, channel: Channel) -> None:
        stash = channel.stash
        while stash:
            assert channel.last_seq is not None
            nxt = stash.pop(channel.last_seq + 1, None)
            if nxt is None:
                for seq in [s for s in stash if s <= channel.last_seq]:
                    del stash[seq]
                break
            self._deliver(channel, nxt)
        if not stash and channel._gap_timer is not None:
            channel._gap_timer.cancel()
            channel._gap_timer = None

    def _set_baseline(self, channel: Channel, head: int) -> None:
        """First replay on this channel: everything up to `head` is in PostgreSQL's snapshot.

        Events that arrived before we knew where we were, at or below head, are handed to the
        subscriptions still replaying (their snapshots may be older than this one)."""
        channel.last_seq = head
        early = sorted(s for s in channel.stash if s <= head)
        for seq in early:
            event = channel.stash.pop(seq)
            encoded = _encoder(event)
            area = event.data.get("area")
            for other in channel.subs:
                if other.pending is not None and other.wants(area):
                    other.pending.append((seq, encoded(other.outlet.encoding)))
        self._drain_stash(channel)
        if channel.stash:
            self._arm_gap_timer(channel)

    # -- gaps --------------------------------------------------------------------------------

    def _arm_gap_timer(self, channel: Channel) -> None:
        if channel._gap_timer is None and not channel._backfilling:
            loop = asyncio.get_running_loop()
            channel._gap_timer = loop.call_later(self._gap_timeout, self._on_gap_timeout, channel)

    def _on_gap_timeout(self, channel: Channel) -> None:
        channel._gap_timer = None
        if channel.stash and channel.last_seq is not None and self.channels.get(channel.name) is channel:
            channel._backfilling = True
            asyncio.get_running_loop().create_task(self._backfill(channel), name=f"backfill {channel.name}")

    async def catch_up(self, span: int = 10_000) -> int:
        """Fetch from PostgreSQL whatever this process may have missed on every channel it
        serves (the bus lost messages: Redis restarted, a connection dropped). Returns the number
        of events delivered. A channel more than `span` events behind gets the first `span`; the
        rest arrive through the usual gap repair."""
        delivered = 0
        for channel in list(self.channels.values()):
            kind = channel.name.split(":", 1)[0]
            fetch = self._backfills.get(kind)
            if fetch is None or channel.last_seq is None or channel._backfilling:
                continue
            channel._backfilling = True
            try:
                events = await fetch(channel.name, channel.last_seq, channel.last_seq + span)
                for event in events:
                    if channel.last_seq is not None and event.seq == channel.last_seq + 1:
                        self._deliver(channel, event)
                        delivered += 1
                self._drain_stash(channel)
            except Exception:
                log.exception("catching up %s failed", channel.name)
            finally:
                channel._backfilling = False
                if channel.stash:
                    self._arm_gap_timer(channel)
        if delivered:
            log.info("caught up %d events from PostgreSQL", delivered)
        return delivered

    async def _backfill(self, channel: Channel) -> None:
        try:
            kind = channel.name.split(":", 1)[0]
            fetch = self._backfills.get(kind)
            if fetch is None or channel.last_seq is None:
                log.error("gap on %s and no way to backfill it", channel.name)
                return
            upto = min(channel.stash)
            events = await fetch(channel.name, channel.last_seq, upto - 1)
            log.info("filled a gap on %s: %d events after seq %d", channel.name, len(events), channel.last_seq)
            self.gaps_filled += 1
            for event in events:
                if channel.last_seq is not None and event.seq == channel.last_seq + 1:
                    self._deliver(channel, event)
            self._drain_stash(channel)
        except Exception:  # a failed backfill is retried on the next timeout, never lost
            log.exception("backfill of %s failed; will retry", channel.name)
        finally:
            channel._backfilling = False
            if channel.stash:
                self._arm_gap_timer(channel)
