"""/metrics: the gauges the soak (loadtests/scenarios/soak.py) watches for leaks."""

from __future__ import annotations

from loadtests.scenarios.targets import prometheus_counters


async def test_metrics_expose_tasks_and_the_database_pool(world, http, connect, server):
    before = prometheus_counters((await http.get("/metrics")).text)
    client = await connect(world.users["pupil_member"])
    during = prometheus_counters((await http.get("/metrics")).text)
    assert during["twinhub_websockets_open"] >= before["twinhub_websockets_open"] + 1
    # Every open socket runs at least one task of its own on the event loop.
    assert during["twinhub_asyncio_tasks"] >= 1
    assert during["twinhub_db_pool_max"] == server.settings.db_pool_size
    assert 1 <= during["twinhub_db_pool_connections"] <= during["twinhub_db_pool_max"]
    assert 0 <= during["twinhub_db_pool_idle"] <= during["twinhub_db_pool_connections"]
    await client.close()
