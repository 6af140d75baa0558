"""Timestamps on the wire: UTC, milliseconds, with a Z — what browsers' Date parses."""

from __future__ import annotations

from datetime import datetime, timezone


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
