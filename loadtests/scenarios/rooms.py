"""Many rooms: R rooms of M members each (every room its own space, like classes), every member
connected, subscribed to its room and chatting; posts/s acknowledged, deliveries/s, latency.

    connect R x M members (pupils: hello, subscribe to their own room)
    for each step (a total offered rate, posts/s):
        open loop: members post in turn (round robin over all of them, so each posts once every
        R x M / rate seconds), each post stamped with its scheduled send time
        warm-up → measure D seconds
    stop posting → drain → check → close

Measured per step, over its D seconds: posts/s acknowledged (`ok` received), deliveries/s
(event frames received by all members; a member receives its own posts too, so the deliveries
to the *other* members are counted apart), delivery latency (receive time − the scheduled send
time at the start of the text), post → ok latency, the server's commits/s and posts per commit
(/metrics), CPU of the server, of the embedded PostgreSQL and of this load generator, RSS.

After the drain (whole run): every member's seqs followed on without gap or duplicate, and each
member's last seq is its room's highest acknowledged seq — every acknowledged post reached every
member of its room once, in order; the deliveries add up to the posts acknowledged in each room
times its members. A post never answered (there should be none) is reported, not guessed at.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..clients import STAMP_DIGITS, Subscriber, Tally, close_all, drain, open_clients, pace, post_text
from ..report import Progress, percentiles
from ..server_proc import Usage, cpu_figures, pin, raise_open_files_limit, usage, watch
from .targets import Target


@dataclass(frozen=True)
class RoomsParams:
    rooms: int = 500
    members: int = 10  # per room, all posting, all subscribed to their room
    rates: tuple[float, ...] = (1000.0,)  # total offered posts/s, one step each
    duration: float = 10.0  # measured seconds per step
    warmup: float = 3.0
    text_size: int = 100
    client_cpu: int | None = 1
    concurrency: int = 200  # handshakes at a time while connecting
    connect_timeout: float = 30.0
    drain: float = 10.0  # longest wait, after the last post, for answers and deliveries


class Member(Subscriber):
    """A member's one connection: follows its room (Subscriber's seq check), and posts to it when
    the load says so. Its own posts come back as events too; those are counted apart."""

    def __init__(self, load: RoomsLoad) -> None:
        super().__init__(load.tally)
        self.load = load
        self.channel = ""  # its room's, set before it joins
        self.user_id = 0
        self._sends: dict[int, int] = {}  # ref -> scheduled send time (ns)

    async def join(self, token: str, timeout: float) -> None:
        welcome = await self.expect({"type": "hello", "token": token}, "welcome", timeout)
        self.user_id = welcome["user"]["id"]
        await self.expect({"type": "subscribe", "channel": self.channel}, "ok", timeout)

    def post(self, stamp_ns: int) -> None:
        ref = self.next_ref()
        self._sends[ref] = stamp_ns
        self.send({"type": "post", "channel": self.channel, "text": post_text(stamp_ns, self.load.p.text_size),
                   "ref": ref})

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        load, tally = self.load, self.tally
        latencies = tally.latencies if tally.recording else None
        for frame in frames:
            kind = frame["type"]
            if kind == "event":
                seq = frame["seq"]
                if seq != self.last_seq + 1:
                    tally.seq_anomalies += 1
                self.last_seq = seq
                message = frame["message"]
                if message["author"]["id"] == self.user_id:
                    load.own_deliveries += 1
                else:
                    tally.deliveries += 1
                    if latencies is not None:
                        latencies.append(now_ns - int(message["text"][:STAMP_DIGITS]))
                continue
            stamp = self._sends.pop(frame.get("ref"), None)  # type: ignore[arg-type]
            if stamp is None:
                if kind == "ok" and "head" in frame:  # subscribed: live events follow on from head
                    self.last_seq = frame["head"]
                self.answer(frame)
                continue
            load.answered(self.channel, frame, now_ns - stamp)
        tally.messages += 1


class RoomsLoad:
    """All members as one sender for pace(): round robin over them, one global count in flight."""

    def __init__(self, p: RoomsParams) -> None:
        self.p = p
        self.tally = Tally()  # deliveries: to the other members of the room
        self.members: list[Member] = []
        self.own_deliveries = 0  # a member's own posts coming back to it
        self.in_flight = 0
        self.sent = 0
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.ack_latencies = array("q")  # ns, while tally.recording
        self.acked_in: Counter[str] = Counter()  # channel -> posts acknowledged
        self.top_seq: dict[str, int] = {}  # channel -> highest seq acknowledged
        self._next = 0

    def post(self, stamp_ns: int | None = None) -> None:
        member = self.members[self._next]
        self._next = (self._next + 1) % len(self.members)
        member.post(time.monotonic_ns() if stamp_ns is None else stamp_ns)
        self.in_flight += 1
        self.sent += 1

    def answered(self, channel: str, frame: dict[str, Any], latency_ns: int) -> None:
        self.in_flight -= 1
        if frame["type"] == "ok":
            self.acked += 1
            self.acked_in[channel] += 1
            seq = frame["seq"]
            if seq > self.top_seq.get(channel, 0):
                self.top_seq[channel] = seq
            if self.tally.recording:
                self.ack_latencies.append(latency_ns)
        else:
            self.refused[str(frame.get("code"))] += 1


@dataclass
class _Mark:
    deliveries: int
    own: int
    messages: int
    acked: int
    server: Usage
    client: Usage
    counters: dict[str, float]


class _Run:
    def __init__(self, target: Target, p: RoomsParams, progress: Progress) -> None:
        self.target, self.p, self.progress = target, p, progress
        self.load = RoomsLoad(p)
        self.me = psutil.Process()
        self.rss_peak = 0

    def mark(self, *, counters: bool = False) -> _Mark:
        server = usage(self.target.server.process, self.target.server.helpers())
        self.rss_peak = max(self.rss_peak, server.rss)
        load = self.load
        return _Mark(load.tally.deliveries, load.own_deliveries, load.tally.messages, load.acked, server,
                     usage(self.me), self.target.counters() if counters else {})

    async def watch(self, step: str, phase: str, seconds: float) -> None:
        await watch(self.progress, step, phase, seconds, self.mark, lambda s: (
            f"posts/s {s.rate('acked'):>6,.0f}  deliveries/s {s.rate('deliveries'):>7,.0f}"
            f"  in flight {self.load.in_flight:>5}  {s.cpu()}"))

    async def step(self, rate: float) -> dict[str, Any]:
        p, load, tally = self.p, self.load, self.load.tally
        label = f"{rate:g} posts/s"
        until = time.monotonic_ns() + int((p.warmup + p.duration) * 1e9)
        # At most 2 s of posts unanswered: beyond that the server is not keeping up, and the
        # sends skipped say by how much.
        pacer = asyncio.create_task(pace(load, rate, until, max_in_flight=max(1000, int(2 * rate))))
        try:
            await self.watch(label, "warm-up", p.warmup)
            tally.latencies, load.ack_latencies = array("q"), array("q")
            start = self.mark(counters=True)
            tally.recording = True
            await self.watch(label, "measure", p.duration)
            tally.recording = False
            end = self.mark(counters=True)
            skipped = await pacer
        finally:
            pacer.cancel()
        return self.figures(label, rate, start, end, skipped)

    async def run(self) -> dict[str, Any]:
        p, target, load = self.p, self.target, self.load
        pin(p.client_cpu)
        raise_open_files_limit()
        n = p.rooms * p.members

        async def setup(member: Member, token: str, channel: str) -> None:
            member.channel = channel
            await member.join(token, p.connect_timeout)

        started = time.monotonic()
        load.members = await open_clients(
            target.url, target.logins[:n], lambda: Member(load), setup,
            concurrency=p.concurrency, timeout=p.connect_timeout,
            on_joined=lambda k: k % 500 == 0 and self.progress.show(f"[{target.name}] connected {k}/{n}"),
        )
        connect_s = time.monotonic() - started
        steps = []
        try:
            for rate in p.rates:
                steps.append(await self.step(rate))
            await drain(load, p.drain)
            self.progress.done()
        finally:
            await close_all(load.members, p.connect_timeout)
        return {**self.totals(), "connect_s": round(connect_s, 2), "steps": steps}

    def totals(self) -> dict[str, Any]:
        load, tally = self.load, self.load.tally
        by_room = Counter(m.channel for m in load.members)
        expected_others = sum(load.acked_in[c] * (k - 1) for c, k in by_room.items())
        expected_own = load.acked
        behind = sum(1 for m in load.members if m.last_seq != load.top_seq.get(m.channel, 0))
        return {
            "server": self.target.name,
            "rooms": len(by_room),
            "members": len(load.members),
            "members_per_room": sorted(set(by_room.values())),
            "posts_sent_total": load.sent,
            "posts_acked_total": load.acked,
            "refused_posts": sum(load.refused.values()),
            "refused_codes": dict(load.refused),
            "unanswered_after_drain": load.in_flight,
            "deliveries_to_others_total": tally.deliveries,
            # What is missing (or extra, if negative) once drained, to the others and to the author.
            "undelivered_to_others_after_drain": expected_others - tally.deliveries,
            "undelivered_to_author_after_drain": expected_own - load.own_deliveries,
            # A member whose last seq is not its room's highest acknowledged seq missed the end.
            "members_behind_room_head": behind,
            "seq_anomalies": tally.seq_anomalies,
            "closed_by_server": sum(tally.closes.values()),
            "close_codes": dict(tally.closes),
            "error_codes": dict(tally.errors),
            "server_rss_mb": round(self.target.server.process.memory_info().rss / 2**20, 1),
            "server_rss_peak_mb": round(self.rss_peak / 2**20, 1),
        }

    def figures(self, label: str, rate: float, a: _Mark, b: _Mark, skipped: int) -> dict[str, Any]:
        load = self.load
        wall = b.server.at - a.server.at
        acked = b.acked - a.acked
        others, own = b.deliveries - a.deliveries, b.own - a.own
        messages = b.messages - a.messages
        out: dict[str, Any] = {
            "server": self.target.name,
            "step": label,
            "mode": f"open loop {rate:g} posts/s",
            "measured_s": round(wall, 2),
            "offered_posts_per_s": rate,
            "posts_per_s": round(acked / wall, 1),
            "deliveries_to_others_per_s": round(others / wall),
            "deliveries_per_s": round((others + own) / wall),
            "expected_deliveries_to_others_per_s": round(acked / wall * (self.p.members - 1)),
            "messages_per_s": round(messages / wall),
            "events_per_message": round((others + own) / messages, 2) if messages else None,
            "latency": percentiles(load.tally.latencies),
            "ack_latency": percentiles(load.ack_latencies),
            **cpu_figures(a.server, b.server, a.client, b.client),
            "server_rss_mb": round(b.server.rss / 2**20, 1),
            "skipped_sends": skipped,
        }
        if acked:
            out["server_cpu_us_per_post"] = round(out["server_cpu_percent"] / 100 * wall / acked * 1e6, 1)
        if a.counters and b.counters:
            batches = b.counters["twinhub_commit_batches_total"] - a.counters["twinhub_commit_batches_total"]
            committed = b.counters["twinhub_posts_committed_total"] - a.counters["twinhub_posts_committed_total"]
            out["server_counters"] = {
                "commits_per_s": round(batches / wall, 1),
                "posts_per_commit": round(committed / batches, 2) if batches else None,
                "queued_deliveries_per_s": round(
                    (b.counters["twinhub_deliveries_total"] - a.counters["twinhub_deliveries_total"]) / wall
                ),
            }
        return out


async def measure(target: Target, p: RoomsParams, progress: Progress) -> dict[str, Any]:
    """Run the rooms scenario against a started TwinHub (seeded with p.rooms spaces and
    p.rooms x p.members members); return its figures."""
    figures = await _Run(target, p, progress).run()
    figures["params"] = asdict(p)
    return figures
