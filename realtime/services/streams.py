"""Channels as streams a session can follow, and the group readers of hello, welcome and resume.

`Streams` is the channel-kind registry's other half (realtime/channels.py holds the kinds): one
Stream per kind, which the session subscribes through and the hub backfills gaps from. A kind
without a stream, or a stream without a kind, stops the server at start (and fails
tests/realtime/test_channels.py).

Reconnects are cheap in crowds: what a `hello` and a resuming `subscribe` read from PostgreSQL —
the session token, the welcome's rooms and mailboxes, a room's replay — goes through group
readers (storage/reader.py, `Readers` below), so that a class (or a school) reconnecting at once
costs a few statements per batch rather than a few round trips per socket, and the sessions that
resume one room from the same seq share its events and their encoding (services/chat.py's
`Page`). Each read still starts after its caller asked (resume's ordering depends on it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from protocol import Event
from storage import accounts
from storage import mail as mail_store
from storage import spaces as spaces_store
from storage.accounts import User
from storage.mail import Mailbox
from storage.reader import GroupReader
from storage.spaces import Room

from ..channels import KINDS, ChannelKind, parse
from ..errors import database
from ..fanout.directory import Directory, Viewer
from ..policy import Refusal
from . import access
from .auth import session_key
from .chat import Page, read_replays
from .mail import mail_channel


class Stream(Protocol):
    """A kind of channel a client can follow (rooms, mailboxes, feeds, moderation queues): how to
    open one for a viewer, read its log, and tell whether the viewer may still follow it."""

    max_replay: int

    async def open(self, viewer: Viewer, channel: str) -> Any:
        """The channel's meta if the viewer may follow it; raises ServiceError otherwise."""

    def refusal(self, viewer: Viewer, meta: Any) -> Refusal | None: ...

    def accepts(self, viewer: Viewer, meta: Any) -> frozenset[str] | None:
        """The areas whose events reach this subscriber (None: all of them)."""

    async def head(self, meta: Any) -> int: ...

    async def replay_page(self, meta: Any, since: int, limit: int) -> tuple[list[Event], int, bool]: ...

    async def backfill(self, channel: str, after: int, upto: int) -> list[Event]:
        """Committed events after..upto of one channel of this kind (the hub's gap filler)."""


class Streams:
    """Kind -> Stream, for every kind in realtime/channels.py and no other."""

    def __init__(self, by_kind: dict[ChannelKind, Stream]) -> None:
        missing = set(KINDS.values()) ^ set(by_kind)
        if missing:
            raise ValueError(f"channel kinds without a stream, or streams without a kind: {sorted(k.name for k in missing)}")
        self._by_kind = by_kind

    def of(self, channel: str) -> tuple[ChannelKind, Stream]:
        """The kind and stream of a channel name; `not_found` for a kind there is none of."""
        kind, _ = parse(channel)
        if kind is None:
            raise access.no_channel(channel)
        return kind, self._by_kind[kind]

    def __iter__(self) -> Iterator[tuple[ChannelKind, Stream]]:
        return iter(self._by_kind.items())


class Readers:
    """The group readers of hello, welcome and resume (storage/reader.py), built once by
    run/assemble.py; start() before serving, close() after."""

    def __init__(self, pool: asyncpg.Pool, directory: Directory) -> None:
        self._directory = directory
        self.sessions: GroupReader[bytes, tuple[User, datetime] | None] = GroupReader(
            pool, accounts.session_users, name="session_user"
        )
        self.rooms_of: GroupReader[int, list[Room]] = GroupReader(pool, spaces_store.rooms_of_each, name="rooms_of")
        self.mailboxes: GroupReader[int, list[Mailbox]] = GroupReader(
            pool, mail_store.mailboxes_of_owners, name="mailboxes_of"
        )
        # A room's replay pages, shared by the sessions resuming it from one seq (services/chat.py).
        self.replays: GroupReader[tuple[int, int, int], tuple[Page, int, bool]] = GroupReader(
            pool, read_replays, name="replay"
        )

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
