"""The channel-kind registry (realtime/channels.py) against what else knows channel names: the
protocol's decoder admits every name it builds, and the streams the server runs on cover each
kind once (services/streams.py refuses anything else)."""

from __future__ import annotations

import pytest

from protocol import CHANNEL_RE
from realtime.channels import FEED, KINDS, MAIL, MODERATION, ROOM, parse
from realtime.services.streams import Streams


def test_every_kind_builds_names_the_decoder_admits_and_reads_back():
    for kind in KINDS.values():
        for ident in (kind.min_id, 42, 2**40):
            name = kind.name_of(ident)
            assert CHANNEL_RE.match(name), name
            assert parse(name) == (kind, ident)
    assert parse("nosuch:3") == (None, 3)


def test_only_rooms_show_presence():
    assert [k.name for k in KINDS.values() if k.presence] == ["room"]


def test_streams_cover_every_kind_and_no_other():
    class S:
        pass

    Streams({ROOM: S(), MAIL: S(), FEED: S(), MODERATION: S()})
    with pytest.raises(ValueError, match="moderation"):
        Streams({ROOM: S(), MAIL: S(), FEED: S()})


def test_a_kind_without_a_stream_is_not_found_not_a_crash():
    from realtime.errors import ServiceError

    class S:
        pass

    streams = Streams({ROOM: S(), MAIL: S(), FEED: S(), MODERATION: S()})
    with pytest.raises(ServiceError) as refused:
        streams.of("nosuch:3")
    assert refused.value.code.value == "not_found"
