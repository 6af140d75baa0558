"""Rate limits counted in a real Redis (one server, and a real three-node Redis Cluster): two
processes (two SharedLimits) share each member's bucket; order of answers is order of asking;
no Redis means per-process limits, not an outage."""

from __future__ import annotations

import asyncio
import socket
import statistics
import time

import pytest
import redis

from realtime.fanout.shared_limits import SharedLimits


@pytest.fixture(params=["redis", "redis-cluster"])
def redis_at(request) -> tuple[str, bool]:
    """(URL, whether it is a cluster)."""
    cluster = request.param == "redis-cluster"
    return request.getfixturevalue("redis_cluster_url" if cluster else "redis_url"), cluster


async def test_two_processes_share_one_bucket(redis_at, redis_prefix):
    url, cluster = redis_at
    a = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    b = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    a.start()
    b.start()
    try:
        la, lb = a.limiter("post", 1.0, 4), b.limiter("post", 1.0, 4)
        waits = [await la.acquire(7), await lb.acquire(7), await la.acquire(7), await lb.acquire(7)]
        assert waits == [0.0] * 4
        refused = await lb.acquire(7)
        assert 0.5 < refused <= 1.0  # the fifth, whichever process it comes through
        assert await la.acquire(8) == 0.0  # another member has their own bucket
        assert await a.limiter("mail", 1.0, 4).acquire(7) == 0.0  # and another limit its own
    finally:
        await a.close()
        await b.close()


async def test_answers_come_in_the_order_asked(redis_at, redis_prefix):
    url, cluster = redis_at
    shared = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    shared.start()
    try:
        limiter = shared.limiter("post", 0.001, 10)
        order: list[int] = []
        # many members too: on a cluster their buckets sit on different nodes
        others = await asyncio.gather(*(limiter.acquire(f"m{i}") for i in range(30)))
        assert others == [0.0] * 30

        async def ask(i: int) -> float:
            wait = await limiter.acquire(1)
            order.append(i)
            return wait

        waits = await asyncio.gather(*(ask(i) for i in range(15)))
        assert order == list(range(15))
        assert waits[:10] == [0.0] * 10 and all(w > 0 for w in waits[10:])
    finally:
        await shared.close()


async def test_without_redis_the_limit_holds_per_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    shared = SharedLimits(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    shared.start()
    try:
        limiter = shared.limiter("post", 1.0, 2)
        waits = [await limiter.acquire(1) for _ in range(3)]
        assert waits[:2] == [0.0, 0.0] and waits[2] > 0
    finally:
        await shared.close()


async def test_login_failures_count_across_processes(redis_at, redis_prefix):
    url, cluster = redis_at  # on a cluster, a username's two keys share a slot (one script takes both)
    a = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    b = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    try:
        ta = a.login_throttle(name="user", limit=4, window=60, lockout=30, backoff=0.05, free=2)
        tb = b.login_throttle(name="user", limit=4, window=60, lockout=30, backoff=0.05, free=2)
        assert not await ta.failed("ana") and not await tb.failed("ana")  # two free mistakes
        assert await ta.wait("ana") == 0 and await tb.wait("ana") == 0
        assert not await tb.failed("ana")  # the third: slowed, on both
        assert 0 < await ta.wait("ana") <= 0.05
        await asyncio.sleep(0.06)
        assert await ta.failed("ana")  # the fourth, through the other process: locked
        assert 29 < await tb.wait("ana") <= 30
        assert await ta.wait("ola") == 0  # someone else is not
        await tb.cleared("ola")
    finally:
        await a.close()
        await b.close()


async def test_attempts_at_once_are_counted_before_verification_across_processes(redis_at, redis_prefix):
    """Guesses sent at once to two processes: each reserved (counted) before it is checked; the
    one that reaches the limit locks the key and those after are not allowed; a failure starts
    the back-off from its verdict; a success un-counts itself and lifts the lock it reached."""
    url, cluster = redis_at
    a = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    b = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    try:
        ta = a.login_throttle(name="user", limit=5, window=60, lockout=30, backoff=10, free=2)
        tb = b.login_throttle(name="user", limit=5, window=60, lockout=30, backoff=10, free=2)
        attempts = await asyncio.gather(*((ta if i % 2 else tb).reserve("zoe") for i in range(8)))
        assert sorted(x.allowed for x in attempts) == [False] * 3 + [True] * 5
        assert sum(x.locked for x in attempts) == 1 and 29 < await ta.wait("zoe") <= 30
        more = await asyncio.gather(*(ta.reserve("zoe") for _ in range(10)))  # while locked: no second lock
        assert not any(x.allowed or x.locked for x in more)
        tries = [await ta.reserve("kim") for _ in range(3)]
        assert all(x.allowed for x in tries) and await tb.wait("kim") == 0  # no back-off before a verdict
        await tb.confirm("kim", tries[2].token)  # the third failed: 10 s before the next
        assert 9 < await ta.wait("kim") <= 10
        near = [await tb.reserve("eva") for _ in range(5)]
        assert near[4].locked and await ta.wait("eva") > 29
        await ta.release("eva", near[4].token)  # the fifth was right after all: no lock
        assert await tb.wait("eva") == 0
    finally:
        await a.close()
        await b.close()


async def test_a_lock_lifted_through_one_process_is_lifted_on_every_one(redis_at, redis_prefix):
    url, cluster = redis_at
    a = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    b = SharedLimits(url, prefix=redis_prefix, cluster=cluster)
    try:
        ta = a.login_throttle(name="user", limit=3, window=60, lockout=30, backoff=0.0, free=2)
        tb = b.login_throttle(name="user", limit=3, window=60, lockout=30, backoff=0.0, free=2)
        for _ in range(3):
            await ta.failed("lea")
        assert await tb.wait("lea") > 29
        assert await tb.lift("lea") is True
        assert await ta.wait("lea") == 0 and await tb.wait("lea") == 0
        assert not await ta.failed("lea")  # its failures were forgotten too: the count starts again
        assert await ta.lift("lea") is False  # a count without a lock: nothing was in force
        assert await ta.lift("lea") is False
    finally:
        await a.close()
        await b.close()


async def test_the_local_throttle_reserves_and_releases_the_same_way():
    from realtime.ratelimit import LoginThrottle

    t = LoginThrottle(limit=5, window=60, lockout=30, backoff=10, free=2)
    attempts = [await t.reserve("zoe") for _ in range(8)]
    assert [x.allowed for x in attempts] == [True] * 5 + [False] * 3
    assert [x.locked for x in attempts].count(True) == 1 and 29 < await t.wait("zoe") <= 30
    assert not any(x.locked for x in [await t.reserve("zoe") for _ in range(10)])  # no second lockout
    kim = [await t.reserve("kim") for _ in range(3)]
    assert await t.wait("kim") == 0
    await t.confirm("kim", kim[2].token)
    assert 9 < await t.wait("kim") <= 10
    eva = [await t.reserve("eva") for _ in range(5)]
    assert eva[4].locked
    await t.release("eva", eva[4].token)
    assert await t.wait("eva") == 0


async def test_a_cluster_node_without_the_script_still_counts_in_redis(redis_cluster, redis_prefix):
    """A node that lost its scripts (restarted, failed over) answers NOSCRIPT: the script is
    loaded again and the check is still counted in Redis, not per process."""
    url, local = redis_cluster
    if local is None:
        pytest.skip("flushes the scripts of the cluster the test setup starts (unset TWINHUB_TEST_REDIS_CLUSTER_URL)")
    a = SharedLimits(url, prefix=redis_prefix, cluster=True)
    b = SharedLimits(url, prefix=redis_prefix, cluster=True)
    a.start()
    b.start()
    try:
        la, lb = a.limiter("post", 0.01, 3), b.limiter("post", 0.01, 3)
        assert [await la.acquire(7) for _ in range(3)] == [0.0] * 3
        for port in local.ports:
            redis.Redis(host="127.0.0.1", port=port).script_flush()
        assert await lb.acquire(7) > 0  # b's own bucket would have said 0.0
    finally:
        await a.close()
        await b.close()


async def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = await call
    return time.perf_counter() - started, result


async def test_a_hung_redis_costs_the_checks_one_wait_then_nothing(own_redis, redis_prefix):
    """Redis stopped (SIGSTOP: it holds its connections and answers nothing, unlike a dead one).
    The checks waiting when it stopped, and those asked while they waited, fall back together
    after one timeout, in the order asked; every check after that falls back at once — as fast
    as a check with Redis running, or faster — and the limit still holds in this process. When
    Redis answers again, checks are counted in Redis again (another process sees them).
    Before the breaker every check waited the whole timeout (0.5 s by default) while it hung."""
    a = SharedLimits(own_redis.url, prefix=redis_prefix, timeout=0.25)
    b = SharedLimits(own_redis.url, prefix=redis_prefix)
    a.start()
    b.start()
    try:
        limiter = a.limiter("post", 0.01, 3)
        running = [(await _timed(limiter.acquire(f"warm{i}")))[0] for i in range(20)]
        own_redis.hang()
        try:
            order: list[int] = []

            async def ask(i: int) -> float:
                wait = await limiter.acquire(f"m{i}")
                order.append(i)
                return wait

            started = time.perf_counter()
            asking = []
            for i in range(8):  # asked over three timeouts' worth of turns: one wait for all
                asking.append(asyncio.create_task(ask(i)))
                await asyncio.sleep(0.02)
            assert await asyncio.gather(*asking) == [0.0] * 8
            first = time.perf_counter() - started
            assert order == list(range(8)) and first < 0.25 + 0.4, first
            hung = [(await _timed(limiter.acquire(f"h{i}")))[0] for i in range(20)]
            assert statistics.median(hung) < max(5 * statistics.median(running), 0.002), (hung, running)
            assert max(hung) < 0.1, hung
            assert [await limiter.acquire("ana") for _ in range(4)][3] > 0  # 3 at once, then 1 a 100 s, here
        finally:
            own_redis.resume()
        deadline = time.monotonic() + 5
        while not a.breaker.answering and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert a.breaker.answering and a.breaker.opened == 1
        assert [await limiter.acquire("eva") for _ in range(3)] == [0.0] * 3
        assert await b.limiter("post", 0.01, 3).acquire("eva") > 0  # counted in Redis: b saw them
    finally:
        await a.close()
        await b.close()


async def test_a_hung_redis_costs_logins_one_wait_then_nothing(own_redis, redis_prefix):
    """The login throttle through the same breaker: with Redis stopped, the first call waits one
    timeout, the next logins' calls none, and failures still lock — in this process."""
    shared = SharedLimits(own_redis.url, prefix=redis_prefix, timeout=0.25)
    try:
        throttle = shared.login_throttle(name="user", limit=3, window=60, lockout=30)

        async def login(key: str) -> None:  # what Auth does around a right password
            await throttle.wait(key)
            attempt = await throttle.reserve(key)
            await throttle.release(key, attempt.token)

        running = [(await _timed(login(f"warm{i}")))[0] for i in range(10)]
        own_redis.hang()
        try:
            first, _ = await _timed(login("ana"))
            assert first < 0.25 + 0.4, first
            hung = [(await _timed(login(f"ola{i}")))[0] for i in range(10)]
            assert statistics.median(hung) < max(5 * statistics.median(running), 0.002), (hung, running)
            assert not await throttle.failed("kim") and not await throttle.failed("kim")
            assert await throttle.failed("kim") and await throttle.wait("kim") > 29
        finally:
            own_redis.resume()
    finally:
        await shared.close()
