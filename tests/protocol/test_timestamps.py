"""Timestamps on the wire: UTC with milliseconds and a Z, whatever iso() formatted before."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from protocol.timestamps import iso


def test_timestamps_are_utc_milliseconds_with_a_z():
    t = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert iso(t) == "2026-12-01T10:00:00.123Z"
    assert iso(None) is None


def test_an_instant_formatted_again_is_the_same_text_and_its_neighbours_their_own():
    """iso keeps the last UTC instant it wrote (a group commit's posts share one): the next
    different instant, or the same instant in another zone, must not get that text."""
    t = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert iso(t) == iso(t.replace()) == "2026-12-01T10:00:00.123Z"
    assert iso(t + timedelta(milliseconds=1)) == "2026-12-01T10:00:00.124Z"
    paris = t.astimezone(timezone(timedelta(hours=1)))
    assert paris == t and iso(t) == "2026-12-01T10:00:00.123Z"
    assert iso(paris) == "2026-12-01T11:00:00.123+01:00"
    assert iso(t.replace(tzinfo=None)) == "2026-12-01T10:00:00.123"
