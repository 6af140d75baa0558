"""What a retrying client relies on, at the storage layer (docs/protocol.md, "Retrying"): two
attempts with one client_id, in flight at once on two processes' writers, store one message and
both are answered it."""

from __future__ import annotations

import asyncio

import pytest

from storage import messages as store
from storage.db import create_pool
from storage.messages import NewPost, post_many
from storage.writer import GroupCommitWriter


@pytest.fixture
async def room(pool, world):
    from realtime.policy import Area
    from storage import spaces

    return await spaces.get_room(pool, world.rooms[Area.CHAT])


def post(world, room, client_id: str, text: str = "hi") -> NewPost:
    u = world.users["pupil_member"]
    return NewPost(room.space_id, room.id, u.id, u.display_name, u.school, text, client_id, room.area)


async def test_one_client_id_in_flight_on_two_processes_writers_stores_one_message(database_url, pool, world, room):
    pools = [await create_pool(database_url, min_size=1, max_size=1) for _ in range(2)]
    writers = [GroupCommitWriter(p, post_many, name="post") for p in pools]
    for w in writers:
        w.start()
    try:
        for attempt in range(20):
            client_id = f"twice-{attempt}"
            results = await asyncio.gather(*(w.submit(post(world, room, client_id)) for w in writers))
            assert sorted(r.duplicate for r in results) == [False, True], results
            assert len({r.event.message.id for r in results}) == 1
    finally:
        for w in writers:
            await w.close()
        for p in pools:
            await p.close()
    assert (await store.replay(pool, room.id, 0, 100)).head == 20
