"""storage/notify.py on a real PostgreSQL: what `twinhub admin` NOTIFYs reaches every listening
process once committed, and a listener whose connection is cut reconnects, says so (so that the
server reloads what it missed), and hears what comes next."""

from __future__ import annotations

import asyncio

from storage.notify import CHANNEL, Listener, notify


async def _until(condition, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_every_listener_hears_a_notification_and_hears_again_after_its_connection_is_cut(pool, database_url):
    heard: list[list[str]] = [[], []]
    reconnects = [0]

    async def reloaded() -> None:
        reconnects[0] += 1

    listeners = [Listener(database_url, heard[i].append, reloaded, retry=0.1) for i in range(2)]
    for listener in listeners:
        await listener.start()
    try:
        await notify(pool, '{"kind": "space_changed", "space_id": 1}')
        await _until(lambda: all(h == ['{"kind": "space_changed", "space_id": 1}'] for h in heard))
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    await conn.execute("SELECT pg_notify($1, 'rolled back')", CHANNEL)
                    raise LookupError("roll back")
            except LookupError:
                pass
            # An outage, as far as the listeners can tell: their connections are cut.
            cut = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()"
            )
        assert cut >= 2
        await _until(lambda: reconnects[0] >= 2)  # both reconnected and asked for a reload
        await _until(lambda: all(listener.listening.is_set() for listener in listeners))
        await notify(pool, '{"kind": "member_changed", "space_id": 1, "user_id": 2}')
        await _until(lambda: all(len(h) == 2 for h in heard))
        assert all("rolled back" not in h for h in heard)  # a notification is sent on commit only
    finally:
        for listener in listeners:
            await listener.close()
