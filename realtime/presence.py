"""Who is in each room now, on this process, and the coalesced `presence` frames.

A subscriber gets the list once; everyone else gets the changes, gathered for up to `interval`
seconds per channel, so that a class of thirty joining at once costs each socket one frame
instead of thirty (O(n) frames per interval rather than O(n²)). Lists are capped at LIST_CAP
entries and always come with the total `count`: a class-sized room gets exact lists, an
assembly of thousands gets counts, and neither costs O(n²) bytes. A user with several sockets
is in the room while at least one of them is.
"""

from __future__ import annotations

import asyncio
from typing import Any

from protocol import Presence

from .hub import Hub

LIST_CAP = 100


class PresenceTracker:
    def __init__(self, hub: Hub, *, interval: float = 1.0) -> None:
        self._hub = hub
        self._interval = interval
        self._here: dict[str, dict[int, list[Any]]] = {}  # channel -> user_id -> [card, sockets]
        self._changes: dict[str, tuple[dict[int, Any], dict[int, Any]]] = {}  # joined, left
        self._timer: asyncio.TimerHandle | None = None

    def snapshot(self, channel: str) -> Presence:
        """The frame a new subscriber gets: up to LIST_CAP members and the total count."""
        here = self._here.get(channel, {})
        members = [entry[0] for _, entry in zip(range(LIST_CAP), here.values(), strict=False)]
        return Presence(channel, members=members, count=len(here))

    def join(self, channel: str, card: dict[str, Any]) -> None:
        here = self._here.setdefault(channel, {})
        entry = here.get(card["id"])
        if entry is not None:
            entry[1] += 1
            return
        here[card["id"]] = [card, 1]
        joined, left = self._changes.setdefault(channel, ({}, {}))
        if left.pop(card["id"], None) is None:
            joined[card["id"]] = card
        self._arm()

    def leave(self, channel: str, user_id: int) -> None:
        here = self._here.get(channel)
        entry = here.get(user_id) if here else None
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del here[user_id]  # type: ignore[union-attr]
        if not here:
            del self._here[channel]
        joined, left = self._changes.setdefault(channel, ({}, {}))
        if joined.pop(user_id, None) is None:
            left[user_id] = {"id": user_id}
        self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._flush)

    def _flush(self) -> None:
        self._timer = None
        changes, self._changes = self._changes, {}
        for channel, (joined, left) in changes.items():
            if not (joined or left):
                continue
            count = len(self._here.get(channel, ()))
            if len(joined) + len(left) <= LIST_CAP:
                frame = Presence(channel, joined=list(joined.values()), left=list(left.values()), count=count)
            else:
                frame = Presence(channel, count=count)
            self._hub.send_ephemeral(channel, frame)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
