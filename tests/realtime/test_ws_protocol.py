"""realtime/ws/server_protocol.py: a message framed once is what the `websockets` library parses as the
same message; the lean queue and flag behave as uvicorn needs them to."""

from __future__ import annotations

import asyncio

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from realtime.ws.server_protocol import Flag, Inbox, frame_message


def parse_one(wire: bytes) -> tuple[Frame, int]:
    """(the frame a client reads from `wire`, bytes left over)."""
    reader = StreamReader()
    reader.feed_data(wire)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value, len(reader.buffer)
    raise AssertionError("the frame is incomplete")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 300_000])
@pytest.mark.parametrize("text", [True, False])
def test_a_framed_message_is_what_a_client_parses(size, text):
    payload = (b"x" * size) if not text else ("é" * (size // 2) + "a" * (size % 2)).encode()
    frame, left = parse_one(frame_message(payload, text=text))
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert frame.fin and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
    assert frame.data == payload and left == 0


async def test_inbox_gives_items_in_order_and_waits_for_the_next():
    inbox = Inbox()
    assert inbox.empty() and inbox.qsize() == 0
    inbox.put_nowait(1)
    inbox.put_nowait(2)
    assert inbox.qsize() == 2
    assert [await inbox.get(), await inbox.get()] == [1, 2]
    assert inbox.empty()
    later = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    assert not later.done()  # waits
    inbox.put_nowait(3)
    assert await asyncio.wait_for(later, 1) == 3


async def test_inbox_get_cancelled_while_waiting_loses_nothing():
    inbox = Inbox()
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    inbox.put_nowait("kept")
    assert await asyncio.wait_for(inbox.get(), 1) == "kept"


async def test_flag_holds_its_waiters_while_cleared_and_releases_them_all():
    flag = Flag()
    await asyncio.wait_for(flag.wait(), 1)  # set from the start: no wait
    flag.clear()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters) and not flag.is_set()
    flag.set()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)
    assert flag.is_set()
