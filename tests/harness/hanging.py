"""Run only by test_deadline.py, in a pytest of its own: a coroutine test that never ends."""

import asyncio

import pytest


async def wait_forever():
    await asyncio.get_running_loop().create_future()


@pytest.mark.timeout(4)
async def test_hangs():
    asyncio.get_running_loop().create_task(wait_forever(), name="a helper that hangs too")
    await wait_forever()


async def test_after_it():
    await asyncio.sleep(0)
