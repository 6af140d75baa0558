"""A subscription still replaying when the member's rights change is re-checked before each page
and before it goes live: a member removed (or demoted) mid-replay receives nothing more, ever.

The replay is held at a gate (the room's group reader, in this process: the test server runs in
the test's event loop) so that the change lands exactly while it is in flight."""

from __future__ import annotations

import asyncio

import pytest

from protocol import Error, Ok, Post, Subscribe
from realtime.policy import Area, Role


@pytest.fixture
def gated_replays(server):
    """Hold every room replay read at a gate until the test opens it."""
    replays = server.app.state.services.readers.replays
    gate, reached = asyncio.Event(), asyncio.Event()
    read = replays.read

    async def held(key):
        reached.set()
        await gate.wait()
        return await read(key)

    replays.read = held
    yield gate, reached
    gate.set()
    del replays.read


@pytest.mark.parametrize(("change", "code"), [(None, "not_member"), (Role.VISITOR, "forbidden")],
                         ids=["removed", "demoted-to-visitor"])
async def test_rights_lost_during_a_replay_end_it_before_anything_is_sent(world, connect, server, gated_replays,
                                                                          change, code):
    gate, reached = gated_replays
    chat = world.channel(Area.CHAT)
    poster = await connect(world.users["teacher_admin"])
    for i in range(3):
        await poster.ok(Post(chat, f"before {i}"))
    member = await connect(world.users["teacher_member"])
    answer = member.send(Subscribe(chat, since=0, ref="sub"))
    await asyncio.wait_for(reached.wait(), 5)  # the replay is in flight
    await server.app.state.projects.set_member(world.space_id, world.users["teacher_member"].id, change)
    gate.set()
    refused = await asyncio.wait_for(answer, 5)
    assert isinstance(refused, Error) and (refused.code, refused.data.get("channel")) == (code, chat)
    await poster.ok(Post(chat, "after"))
    await asyncio.sleep(0.3)  # anything still on its way would have arrived
    assert member.events.get(chat, []) == []


async def test_a_replay_that_keeps_its_rights_goes_live(world, connect, gated_replays):
    gate, reached = gated_replays
    chat = world.channel(Area.CHAT)
    poster = await connect(world.users["teacher_admin"])
    await poster.ok(Post(chat, "before"))
    member = await connect(world.users["teacher_member"])
    answer = member.send(Subscribe(chat, since=0, ref="sub"))
    await asyncio.wait_for(reached.wait(), 5)
    gate.set()
    assert isinstance(await asyncio.wait_for(answer, 5), Ok)
    await poster.ok(Post(chat, "after"))
    events = await member.wait_events(chat, 2)
    assert [e.data["message"]["text"] for e in events] == ["before", "after"]
