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


async def test_metrics_are_not_public(http, database_url):
    """Threat: anyone on the internet reading the server's load (who is connected, how many, when)
    and probing it. /metrics answers loopback clients; through a trusted proxy the client is the
    proxy's client, so a visitor from outside is refused; a configured token opens it to a
    remote Prometheus."""
    from realtime.config import Settings
    from realtime.run.server import RunningServer

    outside = {"X-Forwarded-For": "203.0.113.8"}  # the test server trusts 127.0.0.1 as its proxy
    assert (await http.get("/metrics")).status_code == 200
    r = await http.get("/metrics", headers=outside)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    with_token = RunningServer(Settings(database_url=database_url, port=0, log_level="warning",
                                        metrics_token="metrics-token-for-tests-0123456789"))
    await with_token.start()
    try:
        import httpx

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{with_token.port}") as remote:
            ok = await remote.get("/metrics", headers={**outside,
                                                       "Authorization": "Bearer metrics-token-for-tests-0123456789"})
            assert ok.status_code == 200 and "twinhub_websockets_open" in ok.text
            wrong = await remote.get("/metrics", headers={**outside, "Authorization": "Bearer guess"})
            assert wrong.status_code == 403
            assert (await remote.get("/metrics", headers=outside)).status_code == 403
    finally:
        await with_token.stop()
