"""The bus contract, run against every bus implementation (today: LocalBus; the Redis bus
joins this list in the scale-out issue)."""

from __future__ import annotations

import pytest

from protocol import Event
from realtime.bus import LocalBus


@pytest.fixture(params=["local"])
async def bus(request):
    bus = LocalBus()
    await bus.start()
    yield bus
    await bus.close()


def ev(channel: str, seq: int) -> Event:
    return Event(channel, seq, "message.posted", {"message": {"id": seq}})


async def test_every_sink_gets_every_event_in_order_per_channel(bus):
    got_a, got_b, controls = [], [], []
    bus.attach(got_a.append, controls.append)
    bus.attach(got_b.append, controls.append)
    events = [ev("room:1", 1), ev("room:2", 1), ev("room:1", 2), ev("room:1", 3)]
    for e in events:
        await bus.publish(e)
    assert got_a == events and got_b == events


async def test_control_messages_reach_every_sink(bus):
    controls = []
    bus.attach(lambda e: None, controls.append)
    await bus.control({"kind": "space_changed", "space_id": 3})
    assert controls == [{"kind": "space_changed", "space_id": 3}]


async def test_sinks_attached_later_get_later_events_only(bus):
    early, late = [], []
    bus.attach(early.append, lambda m: None)
    await bus.publish(ev("room:1", 1))
    bus.attach(late.append, lambda m: None)
    await bus.publish(ev("room:1", 2))
    assert [e.seq for e in early] == [1, 2] and [e.seq for e in late] == [2]
