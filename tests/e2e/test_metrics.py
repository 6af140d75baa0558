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


async def test_metrics_say_where_the_memory_is(world, http, connect):
    """Python's blocks and malloc's bytes (realtime/web/metrics.py): a thousand objects kept by the
    server show up in the first, a C allocation in the second."""
    import ctypes
    import sys

    before = prometheus_counters((await http.get("/metrics")).text)
    kept = [object() for _ in range(100_000)]  # the in-process server shares this process's allocator
    raw = ctypes.create_string_buffer(8 * 2**20)  # 8 MB from malloc
    after = prometheus_counters((await http.get("/metrics")).text)
    assert after["twinhub_python_allocated_blocks"] - before["twinhub_python_allocated_blocks"] >= 90_000
    if sys.platform.startswith("linux"):
        assert after["twinhub_malloc_in_use_bytes"] - before["twinhub_malloc_in_use_bytes"] >= 8 * 2**20
        assert after["twinhub_malloc_free_kept_bytes"] >= 0
    del kept, raw
