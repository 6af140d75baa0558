"""The kinds of channel a client can follow, in one table: the name and id of each, whether it
shows presence, and how its names are built and read back. Everything that needs a channel's
kind reads it here: the services build names with `ROOM.name_of(id)`, the session and the hub find
a channel's stream and backfill through services/streams.py's `Streams` (one entry per kind
below, checked by tests/realtime/test_channels.py), and protocol/codec.py's CHANNEL_RE admits
every name built here.

    kind         id                           presence   events
    room         a room's id                  yes        messages posted, edited, hidden …
    mail         a mailbox's id (its owner's) no         mail arrived, read, filed …
    feed         a project's id               no         the "most recent activity" records
    moderation   a project's id, 0: platform  no         reports opened and resolved
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelKind:
    name: str
    presence: bool  # subscribers are shown who else is there, and may send `typing`; its meta is a Room
    min_id: int = 1

    def name_of(self, ident: int) -> str:
        """The channel's name: ROOM.name_of(42) == 'room:42'."""
        return f"{self.name}:{ident}"


ROOM = ChannelKind("room", presence=True)
MAIL = ChannelKind("mail", presence=False)
FEED = ChannelKind("feed", presence=False)
MODERATION = ChannelKind("moderation", presence=False, min_id=0)  # 0: the platform moderators' queue

KINDS: dict[str, ChannelKind] = {k.name: k for k in (ROOM, MAIL, FEED, MODERATION)}


def parse(channel: str) -> tuple[ChannelKind | None, int]:
    """'room:42' -> (ROOM, 42); a kind that is not in the table -> (None, id). The decoder has
    already checked the shape (protocol.CHANNEL_RE)."""
    kind, _, ident = channel.partition(":")
    return KINDS.get(kind), int(ident)
