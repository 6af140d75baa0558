"""Presence: exact lists for a class, counts for a crowd, one frame per interval per socket."""

from __future__ import annotations

import asyncio
import json

from protocol import Encoding
from realtime.fanout.hub import Hub
from realtime.fanout.presence import LIST_CAP, PresenceTracker


class Outlet:
    encoding = Encoding.JSON

    def __init__(self) -> None:
        self.frames: list[dict] = []

    def push(self, item) -> None:
        self.frames.append(json.loads(item))


def card(i: int) -> dict:
    return {"id": i, "name": f"P{i}", "school": "Lyon"}


async def test_changes_are_gathered_into_one_frame():
    hub = Hub()
    watcher = Outlet()
    hub.go_live(hub.subscribe(watcher, "room:1"), 0)
    presence = PresenceTracker(hub, interval=0.01)
    for i in range(30):
        presence.join("room:1", card(i))
    presence.leave("room:1", 3)
    await asyncio.sleep(0.05)
    [frame] = watcher.frames
    assert frame["count"] == 29 and len(frame["joined"]) == 29 and frame["left"] == []
    presence.close()


async def test_a_second_socket_of_the_same_user_changes_nothing():
    hub = Hub()
    presence = PresenceTracker(hub, interval=0.01)
    presence.join("room:1", card(1))
    presence.join("room:1", card(1))
    presence.leave("room:1", 1)
    assert presence.snapshot("room:1").count == 1
    presence.leave("room:1", 1)
    assert presence.snapshot("room:1").count == 0
    presence.close()


async def test_crowds_get_counts_not_lists():
    hub = Hub()
    watcher = Outlet()
    hub.go_live(hub.subscribe(watcher, "room:1"), 0)
    presence = PresenceTracker(hub, interval=0.01)
    for i in range(LIST_CAP + 50):
        presence.join("room:1", card(i))
    snapshot = presence.snapshot("room:1")
    assert len(snapshot.members) == LIST_CAP and snapshot.count == LIST_CAP + 50
    await asyncio.sleep(0.05)
    [frame] = watcher.frames
    assert frame == {"type": "presence", "channel": "room:1", "count": LIST_CAP + 50}
    presence.close()


class Processes:
    """Two trackers wired as two processes on a bus (delivery by direct call: the real Redis
    path is tested end to end in tests/e2e/test_scale_out.py)."""

    def __init__(self, expire_after: float = 6.0) -> None:
        self.hubs = [Hub(), Hub()]
        self.watchers = [Outlet(), Outlet()]
        for hub, w in zip(self.hubs, self.watchers, strict=True):
            hub.go_live(hub.subscribe(w, "room:1"), 0)
        self.trackers: list[PresenceTracker] = []
        self.cut = False
        for i, hub in enumerate(self.hubs):
            self.trackers.append(PresenceTracker(
                hub, interval=0.01, share=self._sender(i), origin=bytes([i]), alive_every=0.05,
                expire_after=expire_after,
            ))

    def _sender(self, i: int):
        def share(message):
            if not self.cut:
                self.trackers[1 - i].on_remote(bytes([i]), message)
        return share


async def test_presence_is_the_union_of_every_process():
    p = Processes()
    a, b = p.trackers
    a.join("room:1", card(1))
    b.join("room:1", card(2))
    b.join("room:1", card(1))  # the same user on both processes: one presence
    await asyncio.sleep(0.05)
    assert a.snapshot("room:1").count == 2 and b.snapshot("room:1").count == 2
    a.leave("room:1", 1)  # still on b
    await asyncio.sleep(0.05)
    assert a.snapshot("room:1").count == 2
    assert all(f.get("left", []) == [] for f in p.watchers[0].frames)
    b.leave("room:1", 1)
    await asyncio.sleep(0.05)
    assert a.snapshot("room:1").count == 1
    assert p.watchers[0].frames[-1]["left"] == [{"id": 1}]


async def test_a_silent_process_users_leave_and_a_late_one_learns_everyone():
    p = Processes(expire_after=0.2)
    a, b = p.trackers
    a.start()
    b.start()
    b.join("room:1", card(7))
    await asyncio.sleep(0.05)
    assert a.snapshot("room:1").count == 1
    p.cut = True  # b dies (its messages stop)
    b.close()
    await asyncio.sleep(0.4)
    assert a.snapshot("room:1").count == 0 and p.watchers[0].frames[-1]["left"] == [{"id": 7}]
    # A new process starting late hears a's heartbeat and is told whom a has.
    a.join("room:1", card(8))
    late = PresenceTracker(Hub(), interval=0.01, share=lambda m: a.on_remote(b"\x09", m), origin=b"\x09")
    a._share = lambda m: late.on_remote(b"\x00", m)  # a now talks to the newcomer
    late.start()
    await asyncio.sleep(0.15)
    assert late.snapshot("room:1").count == 1
    for t in (a, late):
        t.close()
