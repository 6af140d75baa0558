from realtime.ratelimit import LoginThrottle, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill():
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("ana") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.take("ana")
    assert 0.49 < wait <= 0.5
    clock.now += 0.5
    assert limiter.take("ana") == 0.0
    assert limiter.take("ana") > 0


def test_keys_are_independent_and_idle_keys_are_forgotten():
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    assert limiter.take("a") == 0.0
    assert limiter.take("b") == 0.0
    assert limiter.take("a") > 0
    clock.now += 120
    limiter.take("c")
    assert set(limiter._buckets) == {"c"}


def test_login_throttle_slows_then_locks_a_username():
    t = LoginThrottle(limit=5, window=900, lockout=300, backoff=1.0)
    now = 1000.0
    assert not t.fail("u", now) and t.retry_after("u", now) == 0  # free mistakes
    assert not t.fail("u", now) and t.retry_after("u", now) == 0
    assert not t.fail("u", now) and t.retry_after("u", now) == 1.0  # slowed: 1 s
    now += 1.0
    assert not t.fail("u", now) and t.retry_after("u", now) == 2.0  # then 2 s
    now += 2.0
    assert t.fail("u", now) and t.retry_after("u", now) == 300  # then refused for a while
    assert t.retry_after("u", now + 301) == 0 and t.retry_after("other", now) == 0
    now += 301
    assert not t.fail("u", now) and t.retry_after("u", now) == 0  # the count started again


def test_a_lifted_lock_is_over_and_its_failures_forgotten():
    """A teacher unlocked the pupil (or gave them a new password): the lock and the count go."""
    t = LoginThrottle(limit=3, window=900, lockout=300, backoff=1.0, free=1)
    now = 1000.0
    for _ in range(3):
        t.fail("u", now)
    assert t.retry_after("u", now) == 300
    assert t.lift_now("u", now) and t.retry_after("u", now) == 0
    assert not t.fail("u", now) and t.retry_after("u", now) == 0  # the count started again
    assert not t.lift_now("other", now)  # nothing to lift
    t.fail("u", now)  # the second: slowed (one free mistake), and a back-off is lifted too
    assert t.retry_after("u", now) > 0 and t.lift_now("u", now) and t.retry_after("u", now) == 0


def test_login_throttle_per_address_is_not_slowed():
    t = LoginThrottle(limit=50, window=900, lockout=900)
    for _ in range(49):
        assert not t.fail("addr", 0.0)
    assert t.retry_after("addr", 0.0) == 0  # a class behind one school address keeps logging in
    assert t.fail("addr", 0.0) and t.retry_after("addr", 0.0) == 900


def test_addresses_are_limited_by_ipv4_address_and_ipv6_64():
    from realtime.ratelimit import address_key
    from realtime.run.guard import AddressGuard

    assert address_key("203.0.113.5") == "203.0.113.5"
    assert address_key("2001:db8:1:2:3:4:5:6") == address_key("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::9") == "2001:db8:1:3::/64"
    assert address_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert address_key("/tmp/socket") == "/tmp/socket"
    guard = AddressGuard(2)
    assert guard.enter("2001:db8::1") and guard.enter("2001:db8::2") and not guard.enter("2001:db8::ffff")
    assert guard.enter("2001:db8:0:1::1")  # another /64
    guard.leave("2001:db8::1")
    assert guard.enter("2001:db8::3")
