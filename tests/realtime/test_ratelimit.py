from realtime.ratelimit import RateLimiter


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
