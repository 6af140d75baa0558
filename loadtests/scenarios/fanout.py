"""Fan-out: C subscribers in one room, one publisher; deliveries per second and their latency.

    connect C subscribers (hello + subscribe), connect the publisher (hello)
    publish: closed loop (keep W posts in flight, a new one on each ok) or open loop (R posts/s)
    warm-up → measure D seconds → stop publishing → drain → close

Measured over the D seconds: deliveries/s (event frames received by all subscribers), delivery
latency (receive time − the send time carried in the text; in open loop the *scheduled* send
time), the publisher's ack latency, CPU % of the server, of its child processes (the embedded
PostgreSQL) and of this load generator, and the server's RSS. After the drain, every
acknowledged post must have reached every subscriber exactly once, in seq order.

With `lean`, 9 subscribers in 10 (all but 1 in `latency_every`) are LeanSubscribers: they count
a message of events and check its seqs on the bytes, without parsing it, and record no latency;
the latency figures then come from the others. With 5,000 subscribers a load generator that
parses every delivery is the limit before the server is.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..clients import (
    LeanSubscriber,
    Publisher,
    Subscriber,
    Tally,
    close_all,
    connect,
    join,
    open_clients,
    pace,
)
from ..report import Progress, percentiles
from ..server_proc import Usage, cpu_figures, pin, raise_open_files_limit, usage, watch
from .targets import Target


@dataclass(frozen=True)
class FanoutParams:
    subscribers: int = 1000
    window: int = 50  # posts in flight (closed loop)
    rate: float | None = None  # posts per second (open loop); overrides window
    duration: float = 10.0
    warmup: float = 3.0
    text_size: int = 100
    deflate: bool = False  # clients offer permessage-deflate (the server must be started accepting it)
    client_cpu: int | None = 1
    concurrency: int = 100  # handshakes at a time while connecting
    connect_timeout: float = 10.0
    drain: float = 5.0  # longest wait, after the last post, for deliveries to arrive
    # lean: subscribers check event messages on their bytes (clients.LeanSubscriber), but 1 in
    # latency_every, which parses fully and records latencies — so that the load generator
    # costs less than the server with thousands of subscribers
    lean: bool = False
    latency_every: int = 10


@dataclass
class _Mark:
    """Counters at one instant."""

    deliveries: int
    messages: int
    acked: int
    server: Usage
    client: Usage
    counters: dict[str, float]


class _Run:
    def __init__(self, target: Target, p: FanoutParams, progress: Progress) -> None:
        self.target = target
        self.p = p
        self.progress = progress
        self.tally = Tally()
        self.me = psutil.Process()
        self.rss_peak = 0
        self.publisher: Publisher | None = None

    def mark(self, *, counters: bool = False) -> _Mark:
        """Read the counters now (`counters`: also the server's own, over HTTP)."""
        server = usage(self.target.server.process, self.target.server.helpers())
        self.rss_peak = max(self.rss_peak, server.rss)
        assert self.publisher is not None
        return _Mark(
            self.tally.deliveries, self.tally.messages, self.publisher.acked, server, usage(self.me),
            self.target.counters() if counters else {},
        )

    async def watch(self, phase: str, seconds: float) -> None:
        """Wait `seconds`, showing the rates of each past second."""
        await watch(self.progress, self.target.name, phase, seconds, self.mark, lambda s: (
            f"deliveries/s {s.rate('deliveries'):>9,.0f}  posts/s {s.rate('acked'):>7,.0f}  {s.cpu()}"
            f"  RSS {s.now.server.rss / 2**20:,.0f} MB"))

    async def drain(self) -> None:
        """Wait until every post was answered and deliveries stopped coming (at most p.drain s)."""
        assert self.publisher is not None
        end = time.monotonic() + self.p.drain
        seen = -1
        while time.monotonic() < end and (self.publisher.in_flight or self.tally.deliveries != seen):
            seen = self.tally.deliveries
            await asyncio.sleep(0.25)

    async def run(self) -> dict[str, Any]:
        p, target, tally = self.p, self.target, self.tally
        pin(p.client_cpu)
        raise_open_files_limit()
        made = [0]

        def make() -> Subscriber:
            made[0] += 1
            lean = p.lean and made[0] % p.latency_every != 1 % p.latency_every
            return LeanSubscriber(tally) if lean else Subscriber(tally)

        async def setup(client: Subscriber, token: str, channel: str) -> None:
            await join(client, token, channel, p.connect_timeout)

        subscribers = await open_clients(
            target.url, target.logins[: p.subscribers], make, setup, concurrency=p.concurrency,
            timeout=p.connect_timeout, deflate=p.deflate, on_joined=lambda n: n % 100 == 0 and self.progress.show(f"[{target.name}] connected {n}/{p.subscribers}"),
        )
        pacer: asyncio.Task[int] | None = None
        opened = list(subscribers)
        try:
            publisher = await connect(
                target.url, lambda: Publisher(tally, target.channel, p.text_size), p.connect_timeout, deflate=p.deflate
            )
            assert isinstance(publisher, Publisher)
            opened.append(publisher)
            self.publisher = publisher
            await join(publisher, target.publisher_token, None, p.connect_timeout)
            if p.rate:
                until = time.monotonic_ns() + int((p.warmup + p.duration) * 1e9)
                pacer = asyncio.create_task(pace(publisher, p.rate, until, max_in_flight=max(1000, int(p.rate))))
            else:
                publisher.start_window(p.window)
            await self.watch("warm-up", p.warmup)
            start = self.mark(counters=True)
            tally.recording = True
            await self.watch("measure", p.duration)
            tally.recording = False
            end = self.mark(counters=True)
            publisher.stop()
            skipped = await pacer if pacer is not None else 0
            await self.drain()
            self.progress.done()
            return self.figures(start, end, skipped, len(subscribers))
        finally:
            if pacer is not None:
                pacer.cancel()
            await close_all(opened, p.connect_timeout)

    def figures(self, a: _Mark, b: _Mark, skipped: int, subscribers: int) -> dict[str, Any]:
        p, tally, publisher = self.p, self.tally, self.publisher
        assert publisher is not None
        wall = b.server.at - a.server.at
        deliveries = b.deliveries - a.deliveries
        messages = b.messages - a.messages
        out: dict[str, Any] = {
            "server": self.target.name,
            "subscribers": subscribers,
            "mode": (f"open loop {p.rate:g} posts/s" if p.rate else f"closed loop, window {p.window}")
            + (", permessage-deflate" if p.deflate else "")
            + (f", lean (latency from 1 subscriber in {p.latency_every})" if p.lean else ""),
            "measured_s": round(wall, 2),
            "deliveries_per_s": round(deliveries / wall),
            "posts_per_s": round((b.acked - a.acked) / wall, 1),
            "messages_per_s": round(messages / wall),
            "events_per_message": round(deliveries / messages, 2) if messages else None,
            "latency": percentiles(tally.latencies),
            "ack_latency": percentiles(publisher.ack_latencies),
            **cpu_figures(a.server, b.server, a.client, b.client),
            "server_rss_mb": round(b.server.rss / 2**20, 1),
            "server_rss_peak_mb": round(self.rss_peak / 2**20, 1),
            "seq_anomalies": tally.seq_anomalies,
            "closed_by_server": sum(tally.closes.values()),
            "close_codes": dict(tally.closes),
            "error_codes": dict(tally.errors),
            "refused_posts": sum(publisher.refused.values()),
            "refused_codes": dict(publisher.refused),
            "posts_acked_total": publisher.acked,
            # Every acked post should reach every subscriber: what is missing once drained.
            "undelivered_after_drain": publisher.acked * subscribers - tally.deliveries,
        }
        if p.rate:
            out["offered_posts_per_s"] = p.rate
            out["offered_deliveries_per_s"] = round(p.rate * subscribers)
            out["skipped_sends"] = skipped
        if a.counters and b.counters:
            batches = b.counters["twinhub_commit_batches_total"] - a.counters["twinhub_commit_batches_total"]
            committed = b.counters["twinhub_posts_committed_total"] - a.counters["twinhub_posts_committed_total"]
            out["server_counters"] = {
                "queued_deliveries_per_s": round(
                    (b.counters["twinhub_deliveries_total"] - a.counters["twinhub_deliveries_total"]) / wall
                ),
                "commits_per_s": round(batches / wall, 1),
                "posts_per_commit": round(committed / batches, 2) if batches else None,
            }
        return out


async def measure(target: Target, p: FanoutParams, progress: Progress) -> dict[str, Any]:
    """Run the fan-out against a started target; return its figures."""
    figures = await _Run(target, p, progress).run()
    figures["params"] = asdict(p)
    return figures
