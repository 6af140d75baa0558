"""Group reads against a real PostgreSQL: the batched replay agrees with one room's replay, and
the group reader gathers, shares, never joins a read already sent, and survives failures."""

from __future__ import annotations

import asyncio

import pytest

from realtime.policy import Area
from storage import StorageError, Unavailable, spaces
from storage import messages as store
from storage.messages import NewPost, post_many
from storage.reader import GroupReader


def post(world, room, text: str) -> NewPost:
    u = world.users["pupil_member"]
    return NewPost(room.space_id, room.id, u.id, u.display_name, u.school, text, None, room.area)


async def test_replay_many_reads_each_room_page_with_its_head(pool, world):
    chat = await spaces.get_room(pool, world.rooms[Area.CHAT])
    home = await spaces.get_room(pool, world.rooms[Area.HOME])
    async with pool.acquire() as conn, conn.transaction():
        await post_many(conn, [post(world, chat, f"c{i}") for i in range(5)] + [post(world, home, "h0")])
    async with pool.acquire() as conn:
        found = await store.replay_many(
            conn, [(chat.id, 0, 2), (chat.id, 3, 10), (home.id, 1, 10), (chat.id, 5, 10), (10**12, 0, 10)]
        )
    assert [([e.seq for e in r.events], r.head, r.more) for r in found] == [
        ([1, 2], 5, True), ([4, 5], 5, False), ([], 1, False), ([], 5, False), ([], 0, False),
    ]
    assert [e.message.text for e in found[1].events] == ["c3", "c4"]
    # One room's replay is the same read.
    single = await store.replay(pool, chat.id, 3, 10)
    assert single == found[1]


class Recorder:
    """A read_many that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold: asyncio.Event | None = None
        self.entered = asyncio.Event()
        self.fail = False

    async def __call__(self, conn, keys: list[int]) -> list[tuple[int, int]]:
        self.batches.append(list(keys))
        self.entered.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.fail:
            raise StorageError("no")
        stamp = await conn.fetchval("SELECT $1::int", len(self.batches))
        return [(k, stamp) for k in keys]


@pytest.fixture
async def reader(pool):
    recorder = Recorder()
    reader = GroupReader(pool, recorder, name="test")
    reader.start()
    yield reader, recorder
    await reader.close()


async def test_concurrent_reads_are_one_batch_and_share_a_key(reader):
    reader, recorder = reader
    results = await asyncio.gather(*(reader.read(k) for k in (1, 2, 2, 3)))
    assert results == [(1, 1), (2, 1), (2, 1), (3, 1)]
    assert recorder.batches == [[1, 2, 3]]
    assert (reader.batches, reader.keys, reader.callers) == (1, 3, 4)


async def test_a_read_never_joins_a_batch_already_sent(reader):
    reader, recorder = reader
    recorder.hold = asyncio.Event()
    first = asyncio.create_task(reader.read(1))
    await asyncio.wait_for(recorder.entered.wait(), 5)
    # Key 1 is being read; asking for it now must wait for a statement that starts later.
    again = asyncio.create_task(reader.read(1))
    other = asyncio.create_task(reader.read(2))
    await asyncio.sleep(0.05)
    assert not again.done()
    recorder.hold.set()
    assert await first == (1, 1)
    assert await again == (1, 2) and await other == (2, 2)
    assert recorder.batches == [[1], [1, 2]]


async def test_a_failed_batch_fails_its_callers_and_the_reader_goes_on(reader):
    reader, recorder = reader
    recorder.fail = True
    with pytest.raises(StorageError):
        await reader.read(1)
    recorder.fail = False
    assert await reader.read(1) == (1, 2)


async def test_a_closed_reader_is_unavailable(pool):
    reader = GroupReader(pool, Recorder(), name="test")
    with pytest.raises(Unavailable):
        await reader.read(1)  # never started
    reader.start()
    await reader.close()
    with pytest.raises(Unavailable):
        await reader.read(1)
