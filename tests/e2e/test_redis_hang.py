"""A Redis that hangs — stopped with SIGSTOP, not dead: the kernel still accepts its connections
and takes what is sent, and nothing answers — under a steady post load (issue 22, point 16).

Two real `twinhub serve` processes over a Redis of the test's own. Before the breaker
(realtime/fanout/breaker.py) every `ok` waited for the shared rate limiter's timeout for as long
as Redis hung (here p50 0.9 s hung against 8–30 ms running), while a dead Redis cost nothing. Now the checks in
flight when it stopped wait one timeout, and every post after them is acknowledged as fast as
with Redis running; limits hold per process meanwhile; the other process gets every post, in
order, once, when Redis answers again (some of them late, the rest from PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import httpx

from protocol import Error, Ok, Post, Subscribe
from realtime.policy import Area
from tests.client import Client
from tests.conftest import login
from tests.processes import ServeProcess

WRITERS = ("pupil_admin", "pupil_member", "teacher_admin")
IN_FLIGHT = 3  # posts each writer keeps going, each followed by a 0.1 s pause: ~90 posts/s in all
# Seconds Redis hangs: past the bus's ANSWER_TIMEOUT (5 s, realtime/fanout/redis_bus.py), so that
# A's publishing gives up on a batch and B must catch up from PostgreSQL, not only wait.
HANG = 6.5


async def _client(process: ServeProcess, user) -> Client:
    async with httpx.AsyncClient(base_url=process.url) as http:
        token = await login(http, user.username)
    return await Client.connect(process.ws, token)


class Load:
    """Steady posting by several members; each `ok` recorded with the phase it was sent in and
    when, relative to the phase's start."""

    def __init__(self, writers: list[Client], channel: str) -> None:
        self.writers, self.channel = writers, channel
        self.phase, self.phase_started = "running", time.monotonic()
        self.acks: list[tuple[str, float, float, int]] = []  # (phase, sent after the phase began, latency, seq)
        self.refused: list[Error] = []
        self._stop = asyncio.Event()

    def enter(self, phase: str) -> None:
        self.phase, self.phase_started = phase, time.monotonic()

    async def run(self) -> None:
        async def one(writer: Client, n: int) -> None:
            for i in range(10_000):
                if self._stop.is_set():
                    return
                phase, sent = self.phase, time.monotonic()
                reply = await writer.request(Post(self.channel, f"{n}-{i}"), timeout=30)
                if isinstance(reply, Ok):
                    self.acks.append((phase, sent - self.phase_started, time.monotonic() - sent, reply.data["seq"]))
                else:
                    self.refused.append(reply)
                await asyncio.sleep(0.1)

        await asyncio.gather(*(one(w, n * IN_FLIGHT + k) for n, w in enumerate(self.writers) for k in range(IN_FLIGHT)))

    def stop(self) -> None:
        self._stop.set()

    def latencies(self, phase: str, *, sent_after: float = 0.0) -> list[float]:
        return [lat for p, at, lat, _ in self.acks if p == phase and at >= sent_after]


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(int(q * len(values)), len(values) - 1)]


async def test_a_hung_redis_under_load_slows_no_acknowledgement(database_url, own_redis, world):
    prefix = f"twinhub-hang-{os.getpid()}"
    a, b = (ServeProcess(database_url, own_redis.url, prefix, TWINHUB_POST_RATE="100", TWINHUB_POST_BURST="100")
            for _ in range(2))
    chat = world.channel(Area.CHAT)
    clients: list[Client] = []
    try:
        await asyncio.gather(a.ready(), b.ready())
        reader = await _client(b, world.users["teacher_member"])
        writers = [await _client(a, world.users[who]) for who in WRITERS]
        flooder = await _client(a, world.users["teacher_member"])
        clients += [reader, *writers, flooder]
        await reader.ok(Subscribe(chat))
        load = Load(writers, chat)
        posting = asyncio.create_task(load.run())
        try:
            await asyncio.sleep(3)
            own_redis.hang()
            load.enter("hung")
            try:
                await asyncio.sleep(HANG)
                # The limit still holds while Redis hangs: counted in this process.
                flood = await asyncio.gather(*(flooder.request(Post(chat, f"flood {i}")) for i in range(150)))
            finally:
                own_redis.resume()
            load.enter("back")
            await asyncio.sleep(1)
        finally:
            load.stop()
            await posting

        assert load.refused == []  # PostgreSQL is fine: every post commits
        running, hung = load.latencies("running"), load.latencies("hung")
        settled = load.latencies("hung", sent_after=1.0)  # past the one wait of the checks in flight
        figures = (f"p50/p90 ms: running {1000 * _p(running, .5):.1f}/{1000 * _p(running, .9):.1f}, "
                   f"hung {1000 * _p(hung, .5):.1f}/{1000 * _p(hung, .9):.1f}, "
                   f"hung after 1 s {1000 * _p(settled, .5):.1f}/{1000 * _p(settled, .9):.1f}")
        print(figures)
        assert len(running) > 100, figures  # under load
        # Side by side, in the same run: a hung Redis costs an ok next to nothing...
        assert statistics.median(hung) < max(5 * statistics.median(running), 0.02), figures
        assert statistics.median(hung) < 0.25 and _p(settled, 0.9) < 0.25, figures
        # ...and nothing after the one wait of the checks in flight when it stopped.
        assert max(hung) < 0.5 + 1.0, figures  # the server's timeout (SharedLimits), and slack
        assert len(settled) > 100, figures  # the same load all along

        codes = [f.code for f in flood if isinstance(f, Error)]
        assert 20 <= len(codes) <= 50 and set(codes) == {"rate_limited"}, codes  # 100 at once (and the refill), here

        # B heard nothing while Redis hung; now it has every post, in order, once.
        seqs = sorted(seq for *_, seq in load.acks) + [f.data["seq"] for f in flood if isinstance(f, Ok)]
        events = await reader.wait_events(chat, len(seqs), timeout=20)
        assert [e.seq for e in events] == sorted(seqs)
    finally:
        for cl in clients:
            await cl.close()
        for p in (a, b):
            p.stop()
