"""Who is in each room now — on every process — and the coalesced `presence` frames.

A subscriber gets the list once; everyone else gets the changes, gathered for up to `interval`
seconds per channel, so that a class of thirty joining at once costs each socket one frame
instead of thirty (O(n) frames per interval rather than O(n²)). Lists are capped at LIST_CAP
entries and always come with the total `count`: a class-sized room gets exact lists, an
assembly of thousands gets counts, and neither costs O(n²) bytes. A user with several sockets
is in the room while at least one of them is — on any process.

Several processes (the Redis bus): each tells the others when a user arrives in a room on it or
leaves it (`share`), and that it is alive, every `alive_every` seconds. A process not heard for
`expire_after` seconds is taken for dead: the users only it had in a room leave that room, so a
killed process's sockets vanish from presence within seconds. A process that hears a new one
tells it whom it has, so a process that starts late knows everyone. Typing notices travel the
same way. None of this is stored: presence is what the live processes say now.

A subscriber's list is taken in the middle of an interval: the changes gathered so far (its own
arrival among them) are already in it. So at the end of that interval it alone gets, instead of
the frame the others get, what changed since its list — never itself, nor anyone twice.

Cards carry the member's badge in the room's project (`role`). A follower who may not learn who
the pupils are (a visitor: Subscription.sees_pupils) gets lists, counts and changes without the
pupils, and no typing notice of a pupil — no name, no id, not even their number.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable
from typing import Any

from protocol import Presence, TypingNotice

from .hub import Hub, Outlet, Subscription

LIST_CAP = 100

Share = Callable[[dict[str, Any]], None]


class PresenceTracker:
    def __init__(
        self, hub: Hub, *, interval: float = 1.0, share: Share | None = None, origin: bytes = b"",
        alive_every: float = 2.0, expire_after: float = 6.0,
    ) -> None:
        self._hub = hub
        self._origin = origin  # this process, as the others know it
        self._interval = interval
        self._share = share
        self._alive_every = alive_every
        self._expire_after = expire_after
        self._here: dict[str, dict[int, list[Any]]] = {}  # channel -> user_id -> [card, sockets] (this process)
        self._remote: dict[str, dict[bytes, dict[int, Any]]] = {}  # channel -> process -> user_id -> card
        self._heard: dict[bytes, float] = {}  # process -> when it was last heard
        self._changes: dict[str, tuple[dict[int, Any], dict[int, Any]]] = {}  # joined, left
        # channel -> subscriber whose list was taken during this interval -> what it listed (id ->
        # card), or only the count it was told (a crowd, over LIST_CAP). Held weakly: a socket
        # closed within the interval is freed at once (tests/e2e/test_closed_sockets_freed.py).
        self._fresh: dict[str, weakref.WeakKeyDictionary[Subscription, dict[int, Any] | int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._alive_timer: asyncio.TimerHandle | None = None

    # -- this process's sockets ----------------------------------------------------------------

    def snapshot(self, channel: str, *, sees_pupils: bool = True, follower: Subscription | None = None) -> Presence:
        """The frame a new subscriber gets: up to LIST_CAP members and the total count (of those
        they may see). With `follower` (its subscription), the end of this interval sends it what
        changed since this list rather than the changes it already holds."""
        everyone = self._everyone(channel)
        if not sees_pupils:
            everyone = _adults(everyone)
        members = [c for _, c in zip(range(LIST_CAP), everyone.values(), strict=False)]
        if follower is not None and channel in self._changes:
            self._fresh.setdefault(channel, weakref.WeakKeyDictionary())[follower] = everyone if len(everyone) <= LIST_CAP else len(everyone)
        return Presence(channel, members=members, count=len(everyone))

    def join(self, channel: str, card: dict[str, Any]) -> None:
        here = self._here.setdefault(channel, {})
        entry = here.get(card["id"])
        if entry is not None:
            entry[1] += 1
            return
        elsewhere = self._remotely(channel, card["id"])
        here[card["id"]] = [card, 1]
        if self._share is not None:
            self._share({"k": "join", "c": channel, "u": card})
        if not elsewhere:
            self._joined(channel, card)

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
        if self._share is not None:
            self._share({"k": "leave", "c": channel, "u": user_id})
        if not self._remotely(channel, user_id):
            self._left(channel, entry[0])

    def typing(self, channel: str, card: dict[str, Any], *, exclude: Outlet | None = None) -> None:
        self._typing(channel, card, exclude)
        if self._share is not None:
            self._share({"k": "typing", "c": channel, "u": card})

    # -- the other processes -----------------------------------------------------------------

    def start(self) -> None:
        """Begin telling the other processes we are alive (and hearing who is not)."""
        if self._share is not None and self._alive_timer is None:
            self._alive()

    def on_remote(self, origin: bytes, message: dict[str, Any]) -> None:
        kind = message.get("k")
        newcomer = origin not in self._heard
        self._heard[origin] = time.monotonic()
        if newcomer and self._share is not None:
            self._share({"k": "sync", "to": origin, "here": self._local_lists()})  # tell it whom we have
        if kind == "join":
            self._remote_join(origin, message["c"], message["u"])
        elif kind == "leave":
            self._remote_leave(origin, message["c"], message["u"])
        elif kind == "typing":
            self._typing(message["c"], message["u"], None)
        elif kind == "sync" and message.get("to") == self._origin:
            for channel, cards in message["here"].items():
                for card in cards:
                    self._remote_join(origin, channel, card)

    def _remote_join(self, origin: bytes, channel: str, card: dict[str, Any]) -> None:
        users = self._remote.setdefault(channel, {}).setdefault(origin, {})
        if card["id"] in users:
            return
        present = self._present(channel, card["id"])
        users[card["id"]] = card
        if not present:
            self._joined(channel, card)

    def _remote_leave(self, origin: bytes, channel: str, user_id: int) -> None:
        procs = self._remote.get(channel)
        users = procs.get(origin) if procs else None
        card = users.pop(user_id, None) if users is not None else None
        if card is None:
            return
        if not users:
            del procs[origin]  # type: ignore[union-attr]
            if not procs:
                del self._remote[channel]
        if not self._present(channel, user_id):
            self._left(channel, card)

    def _alive(self) -> None:
        assert self._share is not None
        self._share({"k": "alive"})
        now = time.monotonic()
        for origin, heard in list(self._heard.items()):
            if now - heard > self._expire_after:
                self._forget(origin)
        self._alive_timer = asyncio.get_running_loop().call_later(self._alive_every, self._alive)

    def _forget(self, origin: bytes) -> None:
        """A process not heard for a while is gone: its users leave where nobody else has them."""
        del self._heard[origin]
        for channel in list(self._remote):
            users = self._remote[channel].get(origin)
            for user_id in list(users or ()):
                self._remote_leave(origin, channel, user_id)

    # -- the view --------------------------------------------------------------------------------

    def _local_lists(self) -> dict[str, list[Any]]:
        return {channel: [entry[0] for entry in here.values()] for channel, here in self._here.items()}

    def _remotely(self, channel: str, user_id: int) -> bool:
        return any(user_id in users for users in self._remote.get(channel, {}).values())

    def _present(self, channel: str, user_id: int) -> bool:
        return user_id in self._here.get(channel, ()) or self._remotely(channel, user_id)

    def _everyone(self, channel: str) -> dict[int, Any]:
        found = {uid: entry[0] for uid, entry in self._here.get(channel, {}).items()}
        for users in self._remote.get(channel, {}).values():
            for uid, card in users.items():
                found.setdefault(uid, card)
        return found

    def _joined(self, channel: str, card: dict[str, Any]) -> None:
        joined, left = self._changes.setdefault(channel, ({}, {}))
        if left.pop(card["id"], None) is None:
            joined[card["id"]] = card
        self._arm()

    def _left(self, channel: str, card: dict[str, Any]) -> None:
        joined, left = self._changes.setdefault(channel, ({}, {}))
        if joined.pop(card["id"], None) is None:
            left[card["id"]] = card
        self._arm()

    def _typing(self, channel: str, card: dict[str, Any], exclude: Outlet | None) -> None:
        notice = TypingNotice(channel, card)
        self._hub.send_ephemeral(channel, notice, exclude=exclude, without_pupils=None if _is_pupil(card) else notice)

    def _arm(self) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._flush)

    def _flush(self) -> None:
        self._timer = None
        changes, self._changes = self._changes, {}
        fresh, self._fresh = self._fresh, {}
        for channel, (joined, left) in changes.items():
            followers = fresh.get(channel, {})
            if not (joined or left or followers):
                continue
            everyone = self._everyone(channel)
            for sub, listed in followers.items():
                frame = _since(channel, listed, everyone if sub.sees_pupils else _adults(everyone), sub.sees_pupils)
                if frame is not None:
                    self._hub.send_ephemeral_to(sub, frame)
            if not (joined or left):
                continue
            frame = _changes_frame(channel, joined, left, len(everyone))
            if not any(map(_is_pupil, (*joined.values(), *left.values()))):
                self._hub.send_ephemeral(channel, frame, skip=followers)
                continue
            joined, left = _adults(joined), _adults(left)
            adults = _changes_frame(channel, joined, left, len(_adults(everyone))) if joined or left else None
            self._hub.send_ephemeral(channel, frame, without_pupils=adults, skip=followers)

    def close(self) -> None:
        for timer in (self._timer, self._alive_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._alive_timer = None


def _changes_frame(channel: str, joined: dict[int, Any], left: dict[int, Any], count: int) -> Presence:
    if len(joined) + len(left) > LIST_CAP:
        return Presence(channel, count=count)
    return Presence(channel, joined=list(joined.values()), left=[{"id": uid} for uid in left], count=count)


def _since(channel: str, listed: dict[int, Any] | int, visible: dict[int, Any], sees_pupils: bool) -> Presence | None:
    """What changed for a subscriber since its list (`listed`), now that it may see `visible`;
    None if nothing did. A pupil it was shown and may no longer see is not named as leaving."""
    if isinstance(listed, int):  # a crowd: it was told a count
        return None if listed == len(visible) else Presence(channel, count=len(visible))
    joined = {uid: card for uid, card in visible.items() if uid not in listed}
    left = {uid: card for uid, card in listed.items() if uid not in visible and (sees_pupils or not _is_pupil(card))}
    if not joined and not left:
        return None
    return _changes_frame(channel, joined, left, len(visible))


def _is_pupil(card: dict[str, Any]) -> bool:
    return card.get("role") == "pupil"


def _adults(cards: dict[int, Any]) -> dict[int, Any]:
    return {uid: card for uid, card in cards.items() if not _is_pupil(card)}
