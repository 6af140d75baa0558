"""Small pieces of the wire form shared by the services: channel names, timestamps, and turning
a database that does not answer into the client's `unavailable`."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import TypeVar

from protocol import ErrorCode
from storage import Unavailable

from .errors import ServiceError

T = TypeVar("T")


def parse_channel(channel: str) -> tuple[str, int]:
    """'room:42' -> ('room', 42). The decoder has already checked the shape."""
    kind, _, ident = channel.partition(":")
    return kind, int(ident)


def iso(t: datetime | None) -> str | None:
    """UTC, milliseconds, with a Z: what browsers' Date parses."""
    if t is None:
        return None
    global _last
    last = _last  # one tuple, read and replaced whole: no torn pair even across threads
    # A group commit's posts share one now(), and a batch's events follow each other: the same
    # instant is formatted many times running. Only UTC (what asyncpg returns) is kept, since
    # equal instants in other zones are written differently.
    if t.tzinfo is timezone.utc and t == last[0]:
        return last[1]
    text = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if t.tzinfo is timezone.utc:
        _last = (t, text)
    return text


_last: tuple[datetime | None, str] = (None, "")


async def database(op: Awaitable[T]) -> T:
    """Await a storage call; a database that cannot answer becomes `unavailable` for the client
    (nothing was stored — the storage call committed nothing)."""
    try:
        return await op
    except Unavailable:
        raise ServiceError(ErrorCode.UNAVAILABLE, "the database is not answering; nothing was changed") from None
