"""The hub's ordering, exactly-once and resume rules, with in-memory outlets (no sockets)."""

from __future__ import annotations

import asyncio
import json

from protocol import Encoding, Event
from realtime.fanout.hub import Hub


class Outlet:
    def __init__(self, encoding: Encoding = Encoding.JSON) -> None:
        self.encoding = encoding
        self.items: list = []

    def push(self, item) -> None:
        self.items.append(item)

    def seqs(self) -> list[int]:
        return [json.loads(i)["seq"] for i in self.items]


def ev(seq: int, channel: str = "room:1") -> Event:
    return Event(channel, seq, "message.posted", {"message": {"id": seq}})


def live(hub: Hub, outlet: Outlet, head: int, channel: str = "room:1"):
    sub = hub.subscribe(outlet, channel)
    hub.go_live(sub, head)
    return sub


async def test_in_order_events_are_delivered_once():
    hub = Hub()
    out = Outlet()
    live(hub, out, 0)
    for seq in (1, 2, 2, 3, 1):
        hub.publish(ev(seq))
    assert out.seqs() == [1, 2, 3]


async def test_early_event_waits_for_the_missing_one():
    hub = Hub()
    out = Outlet()
    live(hub, out, 0)
    hub.publish(ev(2))
    hub.publish(ev(3))
    assert out.seqs() == []
    hub.publish(ev(1))
    assert out.seqs() == [1, 2, 3]


async def test_events_of_unfollowed_channels_are_ignored():
    hub = Hub()
    hub.publish(ev(1, "room:9"))
    assert hub.channels == {}


async def test_encoded_once_per_encoding_for_all_subscribers():
    hub = Hub()
    outs = [Outlet(Encoding.JSON) for _ in range(3)] + [Outlet(Encoding.MSGPACK) for _ in range(2)]
    for o in outs:
        live(hub, o, 0)
    hub.publish(ev(1))
    assert outs[0].items[0] is outs[1].items[0] is outs[2].items[0]  # the same object, not equal copies
    assert outs[3].items[0] is outs[4].items[0]
    assert isinstance(outs[3].items[0], bytes)


async def test_events_during_replay_are_kept_aside_then_sent_after_head():
    hub = Hub()
    other = Outlet()
    live(hub, other, 0)
    out = Outlet()
    sub = hub.subscribe(out, "room:1")  # replaying
    hub.publish(ev(1))
    hub.publish(ev(2))
    hub.publish(ev(3))
    assert out.seqs() == []
    hub.go_live(sub, head=2)  # the replay covered 1..2
    assert out.seqs() == [3]
    hub.publish(ev(4))
    assert out.seqs() == [3, 4]
    assert other.seqs() == [1, 2, 3, 4]


async def test_replay_head_ahead_of_the_bus_skips_what_the_replay_had():
    hub = Hub()
    out = Outlet()
    sub = hub.subscribe(out, "room:1")
    hub.go_live(sub, head=5)  # replay saw 1..5 committed; the bus has not delivered them yet
    for seq in range(6, 8):
        hub.publish(ev(seq))
    assert out.seqs() == [6, 7]


async def test_first_subscribers_with_different_snapshots_both_get_everything():
    hub = Hub()
    a, b = Outlet(), Outlet()
    sub_a = hub.subscribe(a, "room:1")
    sub_b = hub.subscribe(b, "room:1")
    hub.publish(ev(6))  # committed after B's snapshot (head 5), before A's (head 6)
    hub.go_live(sub_a, head=6)
    hub.publish(ev(7))
    hub.go_live(sub_b, head=5)
    assert a.seqs() == [7]
    assert b.seqs() == [6, 7]


async def test_a_gap_is_filled_from_the_backfill_function():
    hub = Hub(gap_timeout=0.01)
    fetched = []

    async def backfill(channel, after, upto):
        fetched.append((channel, after, upto))
        return [ev(s) for s in range(after + 1, upto + 1)]

    hub.register_backfill("room", backfill)
    out = Outlet()
    live(hub, out, 0)
    hub.publish(ev(1))
    hub.publish(ev(4))  # 2 and 3 were lost on the bus
    for _ in range(100):
        if out.seqs() == [1, 2, 3, 4]:
            break
        await asyncio.sleep(0.01)
    assert out.seqs() == [1, 2, 3, 4]
    assert fetched == [("room:1", 1, 3)]
    assert hub.gaps_filled == 1


async def test_a_failed_backfill_is_retried():
    hub = Hub(gap_timeout=0.01)
    calls = 0

    async def flaky(channel, after, upto):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("database down")
        return [ev(s) for s in range(after + 1, upto + 1)]

    hub.register_backfill("room", flaky)
    out = Outlet()
    live(hub, out, 0)
    hub.publish(ev(2))
    for _ in range(200):
        if out.seqs() == [1, 2]:
            break
        await asyncio.sleep(0.01)
    assert out.seqs() == [1, 2] and calls == 2


async def test_unsubscribe_removes_empty_channels():
    hub = Hub()
    out = Outlet()
    sub = live(hub, out, 0)
    hub.unsubscribe(sub)
    assert hub.channels == {}
    hub.publish(ev(1))
    assert out.items == []


async def test_ephemeral_frames_skip_the_sender_and_replaying_subscribers():
    from protocol import TypingNotice

    hub = Hub()
    a, b, c = Outlet(), Outlet(), Outlet()
    live(hub, a, 0)
    live(hub, b, 0)
    hub.subscribe(c, "room:1")  # still replaying
    hub.send_ephemeral("room:1", TypingNotice("room:1", {"id": 1}), exclude=a)
    assert len(a.items) == 0 and len(b.items) == 1 and len(c.items) == 0
