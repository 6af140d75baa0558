"""Reconnect storm: N members in rooms of K, connected and subscribed, all drop at once while
posts go on, then all reconnect at once and resume with `subscribe since=<last seq seen>`.

    connect N members (pupils; member i in room i mod N/K), each subscribed to its room
    one poster per room (a member of that room, not subscribed) posts; open loop, S posts/s in all
    post for --before s with everyone connected
    all N drop at once (TCP closed, no goodbye) — posts go on for --offline s
    all N reconnect at once: hello, subscribe since=<last seq it saw>     ← t0
    wait until every member has every post acknowledged before t0        ← caught up
    posts go on for --after s; stop; drain; check

The figure: time from t0 until every member is caught up, i.e. has received every post that was
acknowledged before t0 (those it missed while away, and those before). Posts acknowledged after
t0 keep arriving live; the check after the drain covers them too: every member's seqs followed
on without gap or duplicate across both of its connections (the replay, then the live stream),
and each ended on its room's highest acknowledged seq; the deliveries add up to exactly the
posts acknowledged in each room times its members (all rooms start empty).

Subscribers are LeanSubscribers: a message of events only is checked on its bytes (count, first
and last seq) without parsing, so 5,000 of them cost the load generator little; anything else
(ok, presence, error) is parsed whole.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..clients import LeanSubscriber, Publisher, Tally, close_all, connect, open_clients, pace
from ..report import Progress, percentiles
from ..server_proc import cpu_figures, pin, raise_open_files_limit, usage
from .targets import Target


@dataclass(frozen=True)
class ReconnectParams:
    clients: int = 5000
    room_size: int = 25  # members per room: N / K rooms, one space each
    rate: float = 200.0  # posts/s over all rooms, posters in turn
    before: float = 3.0  # seconds of posts with everyone connected, before the drop
    offline: float = 3.0  # seconds of posts while everyone is away
    after: float = 3.0  # seconds of posts once everyone caught up
    catchup_timeout: float = 60.0  # longest wait, from t0, for everyone to catch up
    concurrency: int = 200  # handshakes at a time for the first connect
    storm_concurrency: int = 0  # for the reconnect; 0: all at once
    text_size: int = 100
    client_cpu: int | None = 1
    connect_timeout: float = 60.0  # per connection (the storm's handshakes queue up)
    drain: float = 10.0


class Member(LeanSubscriber):
    """A member's connection, carrying over what the previous one saw (`last_seq`). Notes when
    its `last_seq` first reaches `target` (the room's highest seq acknowledged before t0)."""

    def __init__(self, tally: Tally, stats: Stats, channel: str, last_seq: int = 0, target: int = 0) -> None:
        super().__init__(tally)
        self.stats = stats
        self.channel = channel
        self.token = ""
        self.last_seq = last_seq
        self.target = target
        self.resuming = False  # the subscribe being answered carried `since`
        self.connected_at = 0.0  # the WebSocket handshake done (the storm's connections only)
        self.welcomed_at = 0.0
        self.joined_at = 0.0
        self.caught_at = 0.0 if last_seq < target else time.monotonic()

    def on_message(self, payload: bytes) -> None:
        super().on_message(payload)
        if not self.caught_at and self.last_seq >= self.target:
            self.caught_at = time.monotonic()

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        tally = self.tally
        for frame in frames:
            kind = frame["type"]
            if kind == "event":
                seq = frame["seq"]
                if seq != self.last_seq + 1:
                    tally.seq_anomalies += 1
                self.last_seq = seq
                tally.deliveries += 1
                continue
            if kind == "ok" and "head" in frame:
                if frame.get("resync"):
                    self.stats.resyncs += 1
                if self.resuming:
                    # The replay came before this ok: it must have brought us to head exactly.
                    # (Not reset to head, which would hide a hole.)
                    self.stats.replayed += frame.get("replayed", 0)
                    if frame["head"] != self.last_seq:
                        self.stats.head_mismatches += 1
                else:
                    self.last_seq = frame["head"]
            self.answer(frame)
        tally.messages += 1

    async def join(self, token: str, timeout: float, *, resume: bool) -> None:
        await self.expect({"type": "hello", "token": token}, "welcome", timeout)
        self.welcomed_at = time.monotonic()
        subscribe: dict[str, Any] = {"type": "subscribe", "channel": self.channel}
        if resume:
            subscribe["since"] = self.last_seq
            self.resuming = True
        await self.expect(subscribe, "ok", timeout)
        self.joined_at = time.monotonic()


class Stats:
    __slots__ = ("resyncs", "replayed", "head_mismatches")

    def __init__(self) -> None:
        self.resyncs = 0
        self.replayed = 0
        self.head_mismatches = 0


class Poster(Publisher):
    """A Publisher that keeps its room's highest acknowledged seq."""

    def __init__(self, tally: Tally, channel: str, text_size: int) -> None:
        super().__init__(tally, channel, text_size)
        self.top_seq = 0

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        for frame in frames:
            if frame.get("type") == "ok" and "seq" in frame and frame.get("ref") in self._in_flight:
                self.top_seq = max(self.top_seq, frame["seq"])
        super().on_frames(frames, now_ns)


class Posters:
    """The posters as one sender for pace(): in turn, one room after the other."""

    def __init__(self, posters: list[Poster]) -> None:
        self.posters = posters
        self._next = 0

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self.posters)

    def post(self, stamp_ns: int | None = None) -> None:
        self.posters[self._next].post(stamp_ns)
        self._next = (self._next + 1) % len(self.posters)

    @property
    def acked(self) -> int:
        return sum(p.acked for p in self.posters)


class _Run:
    def __init__(self, target: Target, p: ReconnectParams, progress: Progress) -> None:
        self.target, self.p, self.progress = target, p, progress
        self.tally = Tally()
        self.stats = Stats()
        self.me = psutil.Process()

    def show(self, text: str) -> None:
        self.progress.show(f"[{self.target.name}] {text}")

    async def run(self) -> dict[str, Any]:
        p, target = self.p, self.target
        pin(p.client_cpu)
        raise_open_files_limit()
        member_logins, poster_logins = target.logins[: p.clients], target.logins[p.clients:]
        opened: list[Any] = []
        pacer: asyncio.Task[int] | None = None
        try:
            members = await self._connect_members(member_logins)
            opened += members
            posters = await self._connect_posters(poster_logins)
            opened += posters
            load = Posters(posters)
            total = p.before + p.offline + p.catchup_timeout + p.after
            until = time.monotonic_ns() + int(total * 1e9)
            pacer = asyncio.create_task(pace(load, p.rate, until, max_in_flight=max(1000, int(2 * p.rate))))
            posting_from = time.monotonic()
            await self.wait("posting, everyone connected", p.before, load)

            # The drop: every member's TCP connection closed at once, without a close frame.
            for m in members:
                if m.transport is not None:
                    m.transport.disconnect()
            await close_all(members, p.connect_timeout)
            opened = list(posters)
            await self.wait("posting, everyone away", p.offline, load)

            # The storm: all reconnect at once, each resuming from where it was.
            top = {pst.channel: pst.top_seq for pst in posters}
            missed = sum(top.get(m.channel, 0) - m.last_seq for m in members)
            server_a, client_a = usage(target.server.process, target.server.helpers()), usage(self.me)
            t0 = time.monotonic()
            storm = asyncio.create_task(self._storm(members, top))
            caught_s = await self.wait_caught(storm, t0, load)
            fresh, failures = await storm
            opened += fresh
            server_b, client_b = usage(target.server.process, target.server.helpers()), usage(self.me)
            await self.wait("posting, everyone back", p.after, load)
            pacer.cancel()
            # pace() skips a send while 1,000 posts are unanswered (the storm holds the acks
            # back): what was offered but never sent, counted from the time spent posting.
            offered = round(p.rate * (time.monotonic() - posting_from))
            await self.drain(load)
            self.progress.done()
            figures = self.figures(fresh, failures, posters, top, missed, t0, caught_s,
                                   cpu_figures(server_a, server_b, client_a, client_b))
            sent = sum(pst.sent for pst in posters)
            return {**figures, "posts_offered": offered, "posts_sent": sent, "skipped_sends": max(offered - sent, 0)}
        finally:
            if pacer is not None:
                pacer.cancel()
            await close_all(opened, p.connect_timeout)

    async def _connect_members(self, logins: list[tuple[str, str]]) -> list[Member]:
        p, tally, stats = self.p, self.tally, self.stats

        async def setup(member: Member, token: str, channel: str) -> None:
            member.channel, member.token = channel, token
            await member.join(token, p.connect_timeout, resume=False)

        return await open_clients(
            self.target.url, logins, lambda: Member(tally, stats, ""), setup, concurrency=p.concurrency,
            timeout=p.connect_timeout,
            on_joined=lambda k: k % 500 == 0 and self.show(f"connected {k}/{len(logins)}"),
        )

    async def _connect_posters(self, logins: list[tuple[str, str]]) -> list[Poster]:
        p, posters_tally = self.p, Tally()
        posters_tally.recording = True  # ack latencies over the whole run

        async def setup(poster: Poster, token: str, channel: str) -> None:
            poster.channel = channel
            await poster.expect({"type": "hello", "token": token}, "welcome", p.connect_timeout)

        return await open_clients(
            self.target.url, logins, lambda: Poster(posters_tally, "", p.text_size), setup,
            concurrency=p.concurrency, timeout=p.connect_timeout,
        )

    async def _storm(self, old: list[Member], top: dict[str, int]) -> tuple[list[Member], Counter[str]]:
        """Reconnect every member of `old` (all at once, or storm_concurrency at a time): a new
        connection carrying the old one's last seq, hello, subscribe since=last seq. Returns the
        new connections that joined, and the failures by kind (a failure is reported, not fatal)."""
        p = self.p
        gate = asyncio.Semaphore(p.storm_concurrency or len(old))
        fresh: list[Member] = []
        failures: Counter[str] = Counter()

        async def one(m: Member) -> None:
            async with gate:
                try:
                    new = await connect(
                        self.target.url,
                        lambda: Member(self.tally, self.stats, m.channel, m.last_seq, top.get(m.channel, 0)),
                        p.connect_timeout,
                    )
                except (OSError, TimeoutError) as exc:
                    failures[type(exc).__name__] += 1
                    return
                assert isinstance(new, Member)
                new.connected_at = time.monotonic()
                new.token = m.token
                fresh.append(new)
                try:
                    await new.join(m.token, p.connect_timeout, resume=True)
                except (OSError, TimeoutError, RuntimeError, ConnectionError) as exc:
                    failures[type(exc).__name__] += 1

        # All at once: started together, the coroutines go through each step of connecting in
        # turn (every socket made before the first handshake leaves), so the server sees the
        # storm arrive as a burst about a second after t0, while this process is at 100 %.
        # (Started 50 per turn of the loop instead, the handshakes arrived spread over ~3.5 s —
        # as fast as this one core could open them — and the storm took 15-16 s instead of 8.)
        await asyncio.gather(*(one(m) for m in old))
        return fresh, failures

    async def wait(self, phase: str, seconds: float, load: Posters) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(1.0, left))
            self.show(f"{phase}: {seconds - max(end - time.monotonic(), 0):4.1f}/{seconds:g}s, "
                      f"posts acked {load.acked:,}, deliveries {self.tally.deliveries:,}")

    async def wait_caught(self, storm: asyncio.Task[Any], t0: float, load: Posters) -> float | None:
        """Seconds from t0 until the storm is over and every new connection is caught up (None:
        not within catchup_timeout). Polls every 10 ms; the time is the last member's own."""
        p, last_shown = self.p, 0.0
        while (now := time.monotonic()) - t0 < p.catchup_timeout:
            if storm.done():
                fresh, failures = storm.result()
                if failures:
                    return None
                if all(m.caught_at for m in fresh):
                    return max(m.caught_at for m in fresh) - t0
            if now - last_shown >= 1.0:
                last_shown = now
                self.show(f"reconnecting: {now - t0:4.1f}s, deliveries {self.tally.deliveries:,}, "
                          f"posts acked {load.acked:,}")
            await asyncio.sleep(0.01)
        return None

    async def drain(self, load: Posters) -> None:
        end = time.monotonic() + self.p.drain
        seen = -1
        while time.monotonic() < end and (load.in_flight or self.tally.deliveries != seen):
            seen = self.tally.deliveries
            await asyncio.sleep(0.25)

    def figures(self, fresh: list[Member], failures: Counter[str], posters: list[Poster], top_at_t0: dict[str, int],
                missed: int, t0: float, caught_s: float | None, cpu: dict[str, Any]) -> dict[str, Any]:
        p, tally, stats = self.p, self.tally, self.stats
        top = {pst.channel: pst.top_seq for pst in posters}
        acked_in = {pst.channel: pst.acked for pst in posters}
        joined = sorted(m.joined_at - t0 for m in fresh if m.joined_at)

        def spread(name: str) -> dict[str, float] | None:
            # When each phase of the reconnect was done, from t0: p50 and the last one.
            times = sorted(getattr(m, name) - t0 for m in fresh if getattr(m, name))
            return {"p50_s": round(times[len(times) // 2], 3), "max_s": round(times[-1], 3)} if times else None

        caught = sorted(m.caught_at - t0 for m in fresh if m.caught_at)
        per_room = Counter(m.channel for m in fresh)
        # Every room started empty: each member should have received seqs 1..top of its room once.
        expected = sum(top.get(c, 0) * k for c, k in per_room.items())
        ms = {"count": 0}
        if caught:
            ms = {"count": len(caught), "p50_s": round(caught[len(caught) // 2], 3),
                  "p99_s": round(caught[min(len(caught) - 1, int(0.99 * len(caught)))], 3),
                  "max_s": round(caught[-1], 3)}
        return {
            "server": self.target.name,
            "clients": p.clients,
            "rooms": len(posters),
            "members_per_room": p.room_size,
            "offered_posts_per_s": p.rate,
            "posts_acked_total": sum(acked_in.values()),
            "posts_acked_before_t0": sum(top_at_t0.values()),
            "posts_missed_while_away": missed,  # over all members: what the replays had to bring
            "replayed_events": stats.replayed,
            "reconnected": len(fresh),
            "reconnect_failures": dict(failures),
            "all_joined_s": round(joined[-1], 3) if len(joined) == p.clients else None,
            "joined_p50_s": round(joined[len(joined) // 2], 3) if joined else None,
            # the phases of a reconnect, from t0: handshake done, welcome received, subscribe answered
            "phases": {"connected": spread("connected_at"), "welcomed": spread("welcomed_at"),
                       "joined": spread("joined_at")},
            "caught_up_s": round(caught_s, 3) if caught_s is not None else None,
            "caught_up": ms,
            # from t0 until everyone caught up (or the time-out)
            "server_cpu_percent_during_storm": cpu["server_cpu_percent"],
            "database_cpu_percent_during_storm": cpu["database_cpu_percent"],
            "client_cpu_percent_during_storm": cpu["client_cpu_percent"],
            "interrupts_cpu_percent_during_storm": cpu["interrupts_cpu_percent"],
            "other_processes_cpu_percent_during_storm": cpu["other_processes_cpu_percent"],
            "ack_latency": percentiles(_joined_latencies(posters)),
            "resyncs": stats.resyncs,
            "head_mismatches_after_replay": stats.head_mismatches,
            "seq_anomalies": tally.seq_anomalies,
            # what is missing (or extra, if negative) once drained, over all members
            "undelivered_after_drain": expected - tally.deliveries,
            "members_behind_room_head": sum(1 for m in fresh if m.last_seq != top.get(m.channel, 0)),
            "lean_messages": tally.lean_messages,
            "parsed_messages": tally.lean_fallbacks,
            "unanswered_posts": sum(pst.in_flight for pst in posters),
            "refused_posts": sum(sum(pst.refused.values()) for pst in posters),
            "closed_by_server": sum(tally.closes.values()),
            "close_codes": dict(tally.closes),
            "error_codes": dict(tally.errors),
            "server_rss_mb": round(self.target.server.process.memory_info().rss / 2**20, 1),
        }


def _joined_latencies(posters: list[Poster]) -> array:
    out = array("q")
    for pst in posters:
        out.extend(pst.ack_latencies)
    return out


async def measure(target: Target, p: ReconnectParams, progress: Progress) -> dict[str, Any]:
    """Run the storm against a started TwinHub seeded with p.clients members in rooms of
    p.room_size, then one more member per room (the posters); return the figures."""
    figures = await _Run(target, p, progress).run()
    figures["params"] = asdict(p)
    return figures
