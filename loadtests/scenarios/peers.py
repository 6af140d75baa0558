"""Peers side by side: the same load generator and scenario against TwinHub and each peer, in turn.

For each server (loadtests/scenarios/peer_servers.py), started fresh and alone on the server CPU:

    connect C subscribers (hello + subscribe) and K publishers; read RSS before and after: KB per connection
    closed loop: a window of W posts over the K publishers; a post leaves the window once it was
        answered and delivered to every subscriber (so no server can pile up a backlog the window
        does not see: the peers answer a post before its fan-out is written) -> deliveries/s at
        saturation, latency, server CPU
    open-loop sweep: each offered load (deliveries/s = posts/s x C) for D s after a warm-up ->
        delivered/s, p50/p90/p99, sends skipped while more than a second's posts were undelivered
    after each step: wait until every post reached every subscriber (bounded: see drain())
    close everything, stop the server by PID

Before each server the run waits (up to `quiet_wait` s) for the machine to be under 10 % busy,
and records how busy it was. Each step records the CPU of the server process (and of its helpers:
TwinHub's PostgreSQL, Channels' Redis), of the load generator's process, and how busy each of the
two cores was — the load generator's core also does the kernel's receiving work, charged to no
process, so "its core" is what says whether the client was the limit.

Subscribers: all read every message, 1 in `latency_every` parses it whole and records each
delivery's latency (its receive time minus the send time written in the post; in open loop the
*scheduled* send time), the others check it on its bytes (clients.LeanSubscriber: count and seqs,
no parse) so that the load generator costs less per delivery than the servers it measures. The
socket.io peers get the same clients wrapped in socket.io packets (loadtests/sio_client.py).

An offered load above `skip_above` x the server's closed-loop deliveries/s is not run (it would
only measure the bound on the backlog); the table says so. Every loop here is bounded in count
and in time; the servers are stopped by PID (server_proc.launch) also on error and Ctrl-C.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from .. import sio_client
from ..clients import (
    Client,
    LeanSubscriber,
    Publisher,
    Subscriber,
    Tally,
    close_all,
    join,
    open_clients,
    pace,
)
from ..report import Progress, percentiles
from ..server_proc import Usage, cpu_figures, pin, raise_open_files_limit, usage, watch
from .peer_servers import SERVERS, Running, Server
from .targets import ServerOptions


@dataclass(frozen=True)
class PeersParams:
    servers: tuple[str, ...] = tuple(SERVERS)
    subscribers: int = 1000
    # 8 x 25 posts: under TwinHub's 64 posts at a time per session, and under uvicorn's 32
    # messages queued per socket (ws_max_queue) past which it stops reading one, its pongs
    # included: Channels' publishers were closed with 1011 (ping timeout) at 4 x 50
    publishers: int = 8
    window: int = 200  # closed loop: posts in flight over all publishers, until delivered to every subscriber
    rates: tuple[float, ...] = (1_000, 2_500, 5_000, 10_000, 20_000, 40_000, 80_000)  # open loop: offered deliveries/s
    sweep: bool = True
    skip_above: float = 2.0  # run no offered load above this x the closed-loop deliveries/s
    duration: float = 10.0  # measured seconds, closed loop
    sweep_duration: float = 8.0  # measured seconds per offered load
    warmup: float = 3.0
    sweep_warmup: float = 2.0
    text_size: int = 100
    latency_every: int = 10  # 1 subscriber in this many parses every message and records latencies
    settle: float = 2.0  # s before each RSS reading
    drain: float = 10.0  # least bound on the wait after a step for its deliveries (see _ServerRun.drain)
    quiet_wait: float = 60.0  # before each server, wait up to this long for the machine to be quiet
    server_cpu: int | None = 0
    client_cpu: int | None = 1
    concurrency: int = 100
    connect_timeout: float = 20.0
    redis_url: str | None = None  # Django Channels' Redis (default: a throwaway one on the server CPU)
    database_url: str | None = None  # TwinHub's PostgreSQL (default: embedded)
    keep: bool = False


MAX_DRAIN = 180.0  # s


class _Publishers:
    """K publishers driven as one: posts go round robin; `in_flight` counts posts not yet
    delivered to every subscriber (answered or not), which is what both loops bound."""

    def __init__(self, publishers: list[Publisher], delivered: Callable[[], int]) -> None:
        self.all = publishers
        self._delivered = delivered
        self._next = 0
        self.window = 0

    @property
    def posted(self) -> int:
        return sum(x.sent - sum(x.refused.values()) for x in self.all)

    @property
    def acked(self) -> int:
        return sum(x.acked for x in self.all)

    @property
    def in_flight(self) -> int:
        return max(self.posted - self._delivered(), sum(x.in_flight for x in self.all))

    def post(self, stamp_ns: int | None = None) -> None:
        self.all[self._next].post(stamp_ns)
        self._next = (self._next + 1) % len(self.all)

    async def hold_window(self, window: int, until: float) -> None:
        """Closed loop until `until` (monotonic s): refill the window every millisecond."""
        while time.monotonic() < until:
            for _ in range(window - self.in_flight):
                self.post()
            await asyncio.sleep(0.001)


@dataclass
class _Mark:
    deliveries: int
    acked: int
    server: Usage
    client: Usage
    cores: list[Any]  # psutil.cpu_times(percpu=True)


def _core_busy(a: _Mark, b: _Mark, cpu: int | None) -> float | None:
    """% of CPU `cpu` busy between two marks, whoever used it: the load generator's core counts
    its process *and* the kernel's receiving work (softirq), which psutil charges to no process."""
    if cpu is None or cpu >= len(a.cores):
        return None
    x, y = a.cores[cpu], b.cores[cpu]
    busy = sum(getattr(y, f) - getattr(x, f) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    total = busy + (y.idle - x.idle) + (getattr(y, "iowait", 0.0) - getattr(x, "iowait", 0.0))
    return round(100 * busy / total, 1) if total > 0 else None


class _ServerRun:
    """One server's turn: connect, closed loop, sweep, close."""

    def __init__(self, server: Server, running: Running, p: PeersParams, progress: Progress) -> None:
        self.server, self.running, self.p, self.progress = server, running, p, progress
        self.target = running.target
        self.tally = Tally()
        self.me = psutil.Process()
        self.rss_peak = 0
        self.pubs: _Publishers | None = None
        self.subscribers = 0

    # -- readings ------------------------------------------------------------------------------

    def mark(self) -> _Mark:
        server = usage(self.target.server.process, self.running.helpers())
        self.rss_peak = max(self.rss_peak, server.rss)
        assert self.pubs is not None
        return _Mark(self.tally.deliveries, self.pubs.acked, server, usage(self.me), psutil.cpu_times(percpu=True))

    def delivered(self) -> int:
        """Posts delivered to every subscriber, as far as the count tells."""
        return self.tally.deliveries // self.subscribers if self.subscribers else 0

    async def watch(self, phase: str, seconds: float) -> None:
        await watch(self.progress, self.target.name, phase, seconds, self.mark, lambda s: (
            f"deliveries/s {s.rate('deliveries'):>9,.0f}  {s.cpu()}  RSS {s.now.server.rss / 2**20:,.0f} MB"))

    async def drain(self, rate: float) -> tuple[bool, float]:
        """Wait until every post was delivered everywhere: at most p.drain s, or twice the time
        the backlog takes at `rate` deliveries/s, up to MAX_DRAIN s (after a closed loop, a slow
        server holds a window's worth: 200 posts x 1,000 subscribers is 2 minutes at 1,700/s).
        Returns (drained, seconds waited): a step that starts on a backlog measures it."""
        assert self.pubs is not None
        start = time.monotonic()
        backlog = self.pubs.in_flight * self.subscribers
        end = start + min(MAX_DRAIN, max(self.p.drain, 2 * backlog / max(rate, 1.0)))
        while time.monotonic() < end and self.pubs.in_flight:
            await asyncio.sleep(0.1)
        return not self.pubs.in_flight, round(time.monotonic() - start, 1)

    # -- connecting ----------------------------------------------------------------------------

    async def _open(self, logins: list[tuple[str, str]], make: Callable[[int], Client], channel: bool) -> list[Any]:
        p, target, sio = self.p, self.target, self.server.sio
        made = [0]

        def one() -> Client:
            made[0] += 1
            return make(made[0] - 1)

        async def setup(client: Client, token: str, room: str) -> None:
            await join(client, token, room if channel else None, p.connect_timeout)

        if not sio:
            return await open_clients(target.url, logins, one, setup, concurrency=p.concurrency, timeout=p.connect_timeout,
                                      on_joined=lambda n: n % 200 == 0 and self.progress.show(
                                          f"[{target.name}] connected {n}/{len(logins)}"))
        gate, opened = asyncio.Semaphore(p.concurrency), []

        async def sio_one(token: str, room: str) -> None:
            async with gate:
                client = await sio_client.connect(target.url, one, p.connect_timeout)
                opened.append(client)
                await setup(client, token, room)

        try:
            async with asyncio.TaskGroup() as group:
                for token, room in logins:
                    group.create_task(sio_one(token, room))
        except BaseExceptionGroup as failed:
            await close_all(opened, p.connect_timeout)
            raise RuntimeError(f"{len(failed.exceptions)} socket.io connection(s) failed; first: "
                               f"{failed.exceptions[0]!r}") from failed.exceptions[0]
        return opened

    def _subscriber(self, k: int) -> Subscriber:
        full = k % self.p.latency_every == 0
        if self.server.sio:
            return sio_client.SioSubscriber(self.tally) if full else sio_client.SioLeanSubscriber(self.tally)
        return Subscriber(self.tally) if full else LeanSubscriber(self.tally)

    def _publisher(self, _: int) -> Publisher:
        kind = sio_client.SioPublisher if self.server.sio else Publisher
        return kind(self.tally, self.target.channel, self.p.text_size)

    # -- the run -------------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        p, target = self.p, self.target
        await asyncio.sleep(p.settle)
        rss_before = target.server.process.memory_info().rss
        t0 = time.monotonic()
        subs = await self._open(target.logins[: p.subscribers], self._subscriber, True)
        connect_s = time.monotonic() - t0
        opened: list[Any] = list(subs)
        try:
            tokens = [target.publisher_token] + [t for t, _ in target.logins[p.subscribers: p.subscribers + p.publishers - 1]]
            pubs = await self._open([(t, target.channel) for t in tokens], self._publisher, False)
            opened += pubs
            self.subscribers = len(subs)
            self.pubs = _Publishers(pubs, self.delivered)
            await asyncio.sleep(p.settle)
            rss_open = target.server.process.memory_info().rss
            out: dict[str, Any] = {
                "server": target.name, "name": self.server.name, "pid": target.server.pid,
                "subscribers": len(subs), "publishers": len(pubs), "connect_s": round(connect_s, 2),
                "rss_before_mb": round(rss_before / 2**20, 1), "rss_connected_mb": round(rss_open / 2**20, 1),
                "kb_per_connection": round((rss_open - rss_before) / 1024 / (len(subs) + len(pubs)), 1),
            }
            out["closed"] = await self.step(None)
            out["sweep"] = []
            best = out["closed"]["deliveries_per_s"]
            for rate in p.rates if p.sweep else ():
                if rate > p.skip_above * best:
                    out["sweep"].append({"offered_deliveries_per_s": rate, "skipped": f"above {p.skip_above:g}x "
                                         f"the closed-loop {best:,} deliveries/s"})
                    continue
                out["sweep"].append(await self.step(rate))
            out.update(self.totals())
            return out
        finally:
            self.progress.done()
            await close_all(opened, p.connect_timeout)

    async def step(self, rate: float | None) -> dict[str, Any]:
        """One measurement: closed loop (`rate` None) or open loop at `rate` deliveries/s."""
        p, pubs, tally = self.p, self.pubs, self.tally
        assert pubs is not None
        warmup, duration = (p.warmup, p.duration) if rate is None else (p.sweep_warmup, p.sweep_duration)
        name = "closed loop" if rate is None else f"{rate:,.0f}/s offered"
        tally.latencies = type(tally.latencies)("q")
        for x in pubs.all:
            x.ack_latencies = type(x.ack_latencies)("q")
        until = time.monotonic() + warmup + duration
        if rate is None:
            driver = asyncio.create_task(pubs.hold_window(p.window, until))
        else:
            posts_per_s = rate / self.subscribers
            driver = asyncio.create_task(pace(pubs, posts_per_s, time.monotonic_ns() + int((warmup + duration) * 1e9),
                                              max_in_flight=max(20, int(posts_per_s))))  # a second's posts
        try:
            await self.watch(f"{name} warm-up", warmup)
            a = self.mark()
            tally.recording = True
            await self.watch(f"{name} measure", duration)
            tally.recording = False
            b = self.mark()
            skipped = await driver
        finally:
            driver.cancel()
        wall = b.server.at - a.server.at
        deliveries = b.deliveries - a.deliveries
        drained, drain_s = await self.drain(deliveries / wall if deliveries else 1.0)
        acks = [v for x in pubs.all for v in x.ack_latencies]
        out = {
            "step": name, "mode": "closed loop" if rate is None else "open loop",
            "window": p.window if rate is None else None,
            "offered_deliveries_per_s": rate, "measured_s": round(wall, 2),
            "deliveries_per_s": round(deliveries / wall), "posts_per_s": round((b.acked - a.acked) / wall, 1),
            "latency": percentiles(tally.latencies),
            "ack_latency": percentiles(type(tally.latencies)("q", acks)),
            **cpu_figures(a.server, b.server, a.client, b.client),
            "server_core_busy_percent": _core_busy(a, b, p.server_cpu),
            "client_core_busy_percent": _core_busy(a, b, p.client_cpu),
            "server_rss_mb": round(b.server.rss / 2**20, 1),
            "skipped_sends": skipped if rate is not None else None,
            "drained": drained, "drain_s": drain_s,
        }
        if rate is not None:
            # Kept up: no send skipped, every post delivered after the step, and delivered/s within
            # 3 % of offered — less two posts' fan-out, which the edges of the measured span can
            # cut at a few posts per second.
            slack = 2 * self.subscribers / wall
            out["kept_up"] = bool(drained and not skipped and out["deliveries_per_s"] >= 0.97 * rate - slack)
        return out

    def totals(self) -> dict[str, Any]:
        assert self.pubs is not None
        tally, pubs = self.tally, self.pubs
        return {
            "server_rss_peak_mb": round(self.rss_peak / 2**20, 1),
            "posts_acked_total": pubs.acked,
            "undelivered_after_drain": pubs.acked * self.subscribers - tally.deliveries,
            "seq_anomalies": tally.seq_anomalies, "closed_by_server": sum(tally.closes.values()),
            "close_codes": dict(tally.closes), "error_codes": dict(tally.errors),
            "refused_posts": sum(sum(x.refused.values()) for x in pubs.all),
            "lean_messages": tally.lean_messages, "lean_fallbacks": tally.lean_fallbacks,
        }


QUIET_PERCENT = 10.0  # % of all CPUs: the machine counts as quiet below this


async def wait_quiet(bound: float) -> float:
    """Wait (at most `bound` s) until the whole machine was under QUIET_PERCENT busy for 2 s:
    other engineers' runs share it. Returns the last reading, recorded with each server's figures."""
    end = time.monotonic() + bound
    while True:
        busy = await asyncio.to_thread(psutil.cpu_percent, 2.0)
        if busy < QUIET_PERCENT or time.monotonic() >= end:
            return busy
        print(f"waiting for a quiet machine: {busy:.0f}% busy", flush=True)


async def measure(p: PeersParams, progress: Progress) -> dict[str, Any]:
    """Run every server of `p.servers` in turn; return {"results": {label: figures}, ...}."""
    pin(p.client_cpu)
    raise_open_files_limit()
    opts = ServerOptions(server_cpu=p.server_cpu, database_url=p.database_url, keep=p.keep)
    results: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    for name in p.servers:
        server = SERVERS[name]
        quiet = await wait_quiet(p.quiet_wait)
        try:
            async with server.start(opts, p.subscribers, p.publishers, p.redis_url) as running:
                results[running.target.name] = await _ServerRun(server, running, p, progress).run()
                results[running.target.name]["machine_busy_before_percent"] = quiet
        except (RuntimeError, TimeoutError, OSError) as exc:  # one peer failing does not void the others
            progress.done()
            print(f"[{server.label}] failed: {exc!r}")
            failures[server.label] = repr(exc)
    return {"results": results, "failures": failures, "params": asdict(p)}
