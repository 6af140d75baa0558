"""Small pieces of the wire form shared by the services: channel names, timestamps, and turning
a database that does not answer into the client's `unavailable`."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
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
    return None if t is None else t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def database(op: Awaitable[T]) -> T:
    """Await a storage call; a database that cannot answer becomes `unavailable` for the client
    (nothing was stored — the storage call committed nothing)."""
    try:
        return await op
    except Unavailable:
        raise ServiceError(ErrorCode.UNAVAILABLE, "the database is not answering; nothing was changed") from None
