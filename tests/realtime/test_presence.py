"""Presence: exact lists for a class, counts for a crowd, one frame per interval per socket."""

from __future__ import annotations

import asyncio
import json

from protocol import Encoding
from realtime.hub import Hub
from realtime.presence import LIST_CAP, PresenceTracker


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
