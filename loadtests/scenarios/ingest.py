"""Ingest: persisted posts per second, every `ok` sent after COMMIT, with nobody listening.

    for each mode (group commit on: the default; off: TWINHUB_GROUP_COMMIT=0, one post per
    transaction), on a fresh server and database:
        connect N members (pupils of R rooms, member i in room i mod R; hello, no subscription)
        closed loop: each member keeps W posts in flight, a new one on each answer
        warm-up → measure D seconds → stop → drain
        read back every room's history over HTTP (GET /api/rooms/{id}/messages, as a member)

Measured per mode, over its D seconds: acknowledged posts/s, post → ok latency, CPU of the server,
of the embedded PostgreSQL (on the server's CPU unless --database-cpu) and of this load
generator, and from the server's /metrics the commits/s (twinhub_commit_batches_total) and the
posts per commit (twinhub_posts_committed_total / batches). Then the ratio of the two modes.

The check after each mode: the history holds exactly the posts acknowledged — as many, and at
the very seqs the `ok`s named (no post acknowledged but missing, none stored twice; a post
refused with `unavailable` was not stored, so there should be no post stored but not
acknowledged either, unless one was left unanswered, which is reported).
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from array import array
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..clients import Publisher, Tally, close_all, open_clients
from ..report import Progress, percentiles
from ..server_proc import Usage, cpu_figures, pin, raise_open_files_limit, usage, watch
from .targets import Target

HISTORY_PAGE = 200  # the most GET /api/rooms/{id}/messages gives at once (docs/protocol.md)


@dataclass(frozen=True)
class IngestParams:
    members: int = 200  # posting connections, one member each
    rooms: int = 1  # the members post to this many rooms (member i to room i mod R)
    window: int = 8  # posts in flight per member (a session handles at most 64 at a time)
    duration: float = 10.0
    warmup: float = 3.0
    text_size: int = 100
    client_cpu: int | None = 1
    concurrency: int = 100
    connect_timeout: float = 10.0
    drain: float = 10.0


class Writer(Publisher):
    """A Publisher that keeps the seq of every post acknowledged to it."""

    def __init__(self, tally: Tally, text_size: int) -> None:
        super().__init__(tally, "", text_size)
        self.seqs = array("q")

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        for frame in frames:
            if frame.get("type") == "ok" and "seq" in frame and frame.get("ref") in self._in_flight:
                self.seqs.append(frame["seq"])
        super().on_frames(frames, now_ns)


@dataclass
class _Mark:
    acked: int
    server: Usage
    client: Usage
    counters: dict[str, float]


def _history_page(port: int, token: str, room_id: int, before: int | None) -> dict[str, Any]:
    query = f"limit={HISTORY_PAGE}" + (f"&before={before}" if before is not None else "")
    request = urllib.request.Request(  # noqa: S310 — loopback only
        f"http://127.0.0.1:{port}/api/rooms/{room_id}/messages?{query}", headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.loads(response.read())


def read_history(port: int, token: str, room_id: int, max_pages: int) -> list[int]:
    """The seqs of every message of room `room_id`, newest first, paged over HTTP as a member
    (`token`); at most `max_pages` pages (a bound, not a limit expected to be reached)."""
    seqs: list[int] = []
    before = None
    for _ in range(max_pages):
        page = _history_page(port, token, room_id, before)
        seqs += [m["seq"] for m in page["messages"]]
        if not page["more"] or not page["messages"]:
            return seqs
        before = page["messages"][-1]["seq"]
    raise RuntimeError(f"room {room_id}: more than {max_pages} pages of history")


class _Run:
    def __init__(self, target: Target, p: IngestParams, progress: Progress, label: str) -> None:
        self.target, self.p, self.progress, self.label = target, p, progress, label
        self.tally = Tally()
        self.writers: list[Writer] = []
        self.me = psutil.Process()

    @property
    def acked(self) -> int:
        return sum(w.acked for w in self.writers)

    @property
    def in_flight(self) -> int:
        return sum(w.in_flight for w in self.writers)

    def mark(self, *, counters: bool = False) -> _Mark:
        server = usage(self.target.server.process, self.target.server.helpers())
        return _Mark(self.acked, server, usage(self.me), self.target.counters() if counters else {})

    async def watch(self, phase: str, seconds: float) -> None:
        await watch(self.progress, self.label, phase, seconds, self.mark, lambda s: (
            f"posts/s {s.rate('acked'):>7,.0f}  in flight {self.in_flight:>5}  {s.cpu()}"))

    async def run(self) -> dict[str, Any]:
        p, target, tally = self.p, self.target, self.tally

        async def setup(writer: Writer, token: str, channel: str) -> None:
            writer.channel = channel
            await writer.expect({"type": "hello", "token": token}, "welcome", p.connect_timeout)

        self.writers = await open_clients(
            target.url, target.logins[: p.members], lambda: Writer(tally, p.text_size), setup,
            concurrency=p.concurrency, timeout=p.connect_timeout,
        )
        try:
            for w in self.writers:
                w.start_window(p.window)
            await self.watch("warm-up", p.warmup)
            start = self.mark(counters=True)
            tally.recording = True
            await self.watch("measure", p.duration)
            tally.recording = False
            end = self.mark(counters=True)
            for w in self.writers:
                w.stop()
            deadline = time.monotonic() + p.drain
            while self.in_flight and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            self.progress.show(f"[{self.label}] reading the history back over HTTP")
            check = await self.check()
            self.progress.done()
        finally:
            await close_all(self.writers, p.connect_timeout)
        return {**self.figures(start, end), "history_check": check}

    async def check(self) -> dict[str, Any]:
        """Compare every room's stored seqs with the seqs the `ok`s named."""
        acked: dict[str, list[int]] = defaultdict(list)
        for w in self.writers:
            acked[w.channel] += w.seqs
        token_of = {channel: token for token, channel in reversed(self.target.logins[: self.p.members])}
        stored_total = missing = unacked_stored = duplicates = 0
        started = time.monotonic()
        for channel, seqs in sorted(acked.items()):
            max_pages = len(seqs) // HISTORY_PAGE + 1000
            stored = await asyncio.to_thread(
                read_history, self.target.server.port, token_of[channel], int(channel.split(":")[1]), max_pages,
            )
            stored_total += len(stored)
            stored_set, acked_set = set(stored), set(seqs)
            duplicates += (len(seqs) - len(acked_set)) + (len(stored) - len(stored_set))
            missing += len(acked_set - stored_set)
            unacked_stored += len(stored_set - acked_set)
        acked_total = sum(len(s) for s in acked.values())
        unanswered = self.in_flight
        return {
            "posts_acked": acked_total,
            "posts_in_history": stored_total,
            "acked_but_missing": missing,
            "stored_but_not_acked": unacked_stored,
            "duplicate_seqs": duplicates,
            "unanswered_posts": unanswered,
            "read_s": round(time.monotonic() - started, 2),
            # equal counts, and the very same seqs
            "ok": stored_total == acked_total and not missing and not unacked_stored and not duplicates,
        }

    def figures(self, a: _Mark, b: _Mark) -> dict[str, Any]:
        p = self.p
        wall = b.server.at - a.server.at
        acked = b.acked - a.acked
        ack_latencies = array("q")
        refused: Counter[str] = Counter()
        for w in self.writers:
            ack_latencies.extend(w.ack_latencies)
            refused.update(w.refused)
        out: dict[str, Any] = {
            "server": self.target.name,
            "step": self.label,
            "mode": f"closed loop, {len(self.writers)} members x window {p.window}, {p.rooms} room(s)",
            "measured_s": round(wall, 2),
            "posts_per_s": round(acked / wall, 1),
            "ack_latency": percentiles(ack_latencies),
            **cpu_figures(a.server, b.server, a.client, b.client),
            "server_rss_mb": round(b.server.rss / 2**20, 1),
            "refused_posts": sum(refused.values()),
            "refused_codes": dict(refused),
            "closed_by_server": sum(self.tally.closes.values()),
            "error_codes": dict(self.tally.errors),
        }
        if acked:
            out["server_cpu_us_per_post"] = round(out["server_cpu_percent"] / 100 * wall / acked * 1e6, 1)
            if out["database_cpu_percent"] is not None:
                out["database_cpu_us_per_post"] = round(out["database_cpu_percent"] / 100 * wall / acked * 1e6, 1)
        if a.counters and b.counters:
            batches = b.counters["twinhub_commit_batches_total"] - a.counters["twinhub_commit_batches_total"]
            committed = b.counters["twinhub_posts_committed_total"] - a.counters["twinhub_posts_committed_total"]
            out["server_counters"] = {
                "posts_committed_per_s": round(committed / wall, 1),
                "commits_per_s": round(batches / wall, 1),
                "posts_per_commit": round(committed / batches, 2) if batches else None,
            }
        return out


async def measure(target: Target, p: IngestParams, progress: Progress, label: str) -> dict[str, Any]:
    """One mode's run against a started TwinHub seeded with p.members members in p.rooms rooms."""
    pin(p.client_cpu)
    raise_open_files_limit()
    figures = await _Run(target, p, progress, label).run()
    figures["params"] = asdict(p)
    return figures
