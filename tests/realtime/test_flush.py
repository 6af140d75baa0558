"""realtime/ws/connection.py's _Flush: the sockets pushed to in one turn are written at the start of
the next, FLUSH_CHUNK a turn, each once, in the order they were pushed to."""

from __future__ import annotations

import asyncio

from realtime.ws.connection import FLUSH_CHUNK, _Flush


class Outlet:
    """What _Flush needs of a Connection: its `_flush`, and the flag it clears."""

    def __init__(self, name: object, log: list[object]) -> None:
        self.name, self.log, self._flush_armed = name, log, True

    def _flush(self) -> None:
        self._flush_armed = False
        self.log.append(self.name)


async def test_a_large_flush_lets_the_loop_turn_between_chunks():
    """A post to more sockets than a chunk must not hold the loop for all of them: what else is
    ready (a frame read, a PostgreSQL answer) runs between two chunks."""
    flush, log = _Flush(), []
    n = 2 * FLUSH_CHUNK + 5
    for i in range(n):
        flush.add(Outlet(i, log))
    loop = asyncio.get_running_loop()
    loop.call_soon(log.append, "other work")  # queued after the flush's first turn
    for _ in range(5):
        await asyncio.sleep(0)
    assert log.index("other work") == FLUSH_CHUNK  # after the first chunk, before the second
    assert [x for x in log if x != "other work"] == list(range(n))  # each once, in order


async def test_a_socket_pushed_to_during_a_chunked_flush_is_written_after_it():
    flush, log = _Flush(), []
    outlets = [Outlet(i, log) for i in range(FLUSH_CHUNK + 10)]
    for outlet in outlets:
        flush.add(outlet)
    await asyncio.sleep(0)  # the first chunk is written
    assert log == list(range(FLUSH_CHUNK))
    flush.add(outlets[0])  # pushed to again while the rest wait
    for _ in range(3):
        await asyncio.sleep(0)
    assert log == [*range(FLUSH_CHUNK), *range(FLUSH_CHUNK, FLUSH_CHUNK + 10), 0]


async def test_a_small_flush_is_one_turn():
    flush, log = _Flush(), []
    for i in range(FLUSH_CHUNK):
        flush.add(Outlet(i, log))
    asyncio.get_running_loop().call_soon(log.append, "other work")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert log == [*range(FLUSH_CHUNK), "other work"]
