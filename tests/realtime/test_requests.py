"""The request table (realtime/services/requests.py) is the one dispatcher for both transports:
every client frame type has a row there or is one of the session's own, and nothing else."""

from __future__ import annotations

import typing

from protocol import ClientFrame, Post, SendMail
from realtime.services.requests import SESSION_FRAMES, TABLE


def _flat(union: object) -> set[type]:
    out: set[type] = set()
    for member in typing.get_args(union):
        out |= _flat(member) if typing.get_args(member) else {member}
    return out


def test_every_client_frame_has_a_row_or_is_the_sessions_own():
    frames = _flat(ClientFrame)
    assert frames - set(TABLE) - SESSION_FRAMES == set(), "a client frame no one answers"
    assert set(TABLE) | SESSION_FRAMES == frames, "a row for a frame clients cannot send"
    assert not set(TABLE) & SESSION_FRAMES


def test_only_posts_and_sends_run_concurrently():
    """A window of posts (and mails) in flight shares group commits; every other request is
    answered in the order it came."""
    assert {f for f, row in TABLE.items() if row.concurrent} == {Post, SendMail}
