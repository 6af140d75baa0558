"""The activity feed: N connected members of mixed roles in one project, each following the
project's feed, while posts flow through its rooms in every area; feed deliveries per second,
the post → feed-delivery latency, and whether each role got exactly the areas it may read.

    seed one space with one room per area and N members (10 % teachers, 80 % pupils, 10 %
    visitors unless told), shuffled with a fixed seed, and P posters per area (members too:
    teachers for teachers_room and home, pupils for pupils_corner, chat and activities)
    connect the N members (hello, then subscribe to the feed channel the welcome lists), and
    the posters (hello only: they do not follow the feed, so that an `ok` never waits behind
    the poster's own feed records and post → ok times the server's commit path alone)
    post in open loop at R posts/s: areas in turn (teachers_room, pupils_corner, chat,
    activities, home), each post by the next of that area's posters
    warm-up → measure D seconds → stop posting → drain → check → close

A feed record does not carry the message's text, so a delivery is timed through its
`message_id`: the poster keeps each post's *scheduled* send time by ref, the `ok` names the
message's id, and each delivery received while measuring is kept as (message_id, receive time)
and matched after the run (a delivery may arrive before its post's `ok`: the server publishes
before it answers).

Checks after the drain: per role and area, the records received are exactly (members of the
role) × (posts acknowledged in the area) where the role may read the area, and 0 where it may
not; every member on its own got every record of its areas; seqs only go up (teachers read
every area: their seqs follow on without a hole); each record's area is its room's.

From the server's /metrics: events reaching the hub (`twinhub_events_total`: the feed records;
nobody follows the rooms) and frames queued to sockets (`twinhub_deliveries_total`). With
`--py-spy`, the server is sampled while measuring and the samples are counted in the hub's
fan-out loop (`Hub._deliver`), in encoding (`encode_server_item`) and in `Connection.push`: the
event is encoded once per wire format, so encoding stays a sliver of the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from realtime.policy import Area, Role

from ..clients import Client, Tally, close_all, drain, open_clients, pace, post_text
from ..report import Progress, percentiles
from ..server_proc import Usage, cpu_figures, pin, raise_open_files_limit, usage, watch
from .targets import Target

# What each role may read (docs/roles.md; the feed shows a member these areas' records only).
READS: dict[str, frozenset[str]] = {
    Role.TEACHER_MEMBER.value: frozenset(a.value for a in Area),
    Role.PUPIL_MEMBER.value: frozenset({"home", "activities", "pupils_corner", "chat"}),
    Role.VISITOR.value: frozenset({"home", "activities"}),
}
ROLES = (Role.TEACHER_MEMBER, Role.PUPIL_MEMBER, Role.VISITOR)
# The areas posted to, in turn, and who posts there (a role allowed to post in it).
POSTING: dict[Area, Role] = {
    Area.TEACHERS_ROOM: Role.TEACHER_MEMBER,
    Area.PUPILS_CORNER: Role.PUPIL_MEMBER,
    Area.CHAT: Role.PUPIL_MEMBER,
    Area.ACTIVITIES: Role.PUPIL_MEMBER,
    Area.HOME: Role.TEACHER_MEMBER,
}
AREAS = tuple(POSTING)


@dataclass(frozen=True)
class FeedParams:
    members: int = 2000
    mix: tuple[float, float, float] = (10.0, 80.0, 10.0)  # % teachers, pupils, visitors
    rate: float = 200.0  # posts per second offered (open loop)
    posters: int = 4  # per area
    duration: float = 10.0
    warmup: float = 3.0
    text_size: int = 100
    client_cpu: int | None = 1
    concurrency: int = 100  # handshakes at a time while connecting
    connect_timeout: float = 20.0
    drain: float = 10.0  # longest wait, after the last post, for answers and deliveries
    seed: int = 1  # of the roles' shuffle
    py_spy: bool = False  # sample the server while measuring


def poster_roles(p: FeedParams) -> list[Role]:
    """The posters' roles, seeded after the members: p.posters per area, in AREAS order."""
    return [POSTING[area] for area in AREAS for _ in range(p.posters)]


def member_roles(p: FeedParams) -> list[Role]:
    """The role of each member: counts by the mix (largest remainders), shuffled with p.seed."""
    total = sum(p.mix)
    exact = [p.members * share / total for share in p.mix]
    counts = [int(x) for x in exact]
    for k in sorted(range(len(exact)), key=lambda k: exact[k] - counts[k], reverse=True)[: p.members - sum(counts)]:
        counts[k] += 1
    roles = [role for role, n in zip(ROLES, counts, strict=True) for _ in range(n)]
    random.Random(p.seed).shuffle(roles)
    return roles


class Member(Client):
    """One member's socket: follows the feed (counts its records by area, checks seqs go up),
    and posts when the load tells it to."""

    def __init__(self, load: FeedLoad) -> None:
        super().__init__(load.tally)
        self.load = load
        self.role = ""  # set before hello (the server sends nothing until then)
        self.token = ""
        self.reads: frozenset[str] = frozenset()
        self.feed = ""
        self.last_seq = 0
        self.received: Counter[str | None] = Counter()  # records by area
        self._posts: dict[int, int] = {}  # ref -> scheduled send time (ns)

    async def join(self, token: str, role: str, space_id: int, timeout: float, *, follow: bool = True) -> None:
        """hello as a member seeded with `role`; then (`follow`) subscribe to the feed that the
        welcome lists for the space."""
        self.role, self.reads, self.token = role, READS[role], token
        welcome = await self.expect({"type": "hello", "token": token}, "welcome", timeout)
        space = next((s for s in welcome["spaces"] if s["id"] == space_id), None)
        if space is None or not space.get("feed"):
            raise RuntimeError(f"user {welcome['user']['id']} has no feed for space {space_id} in its welcome")
        if space["role"] != self.role:
            raise RuntimeError(f"user {welcome['user']['id']} is {space['role']}, seeded as {self.role}")
        self.feed = space["feed"]
        if follow:
            await self.expect({"type": "subscribe", "channel": self.feed}, "ok", timeout)

    def post(self, channel: str, stamp_ns: int, text_size: int) -> None:
        ref = self.next_ref()
        self._posts[ref] = stamp_ns
        self.send({"type": "post", "channel": channel, "text": post_text(stamp_ns, text_size), "ref": ref})

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        load, tally = self.load, self.tally
        events = 0
        for frame in frames:
            kind = frame["type"]
            if kind == "event":
                seq = frame["seq"]
                if seq <= self.last_seq or (self.role == "teacher_member" and seq != self.last_seq + 1):
                    tally.seq_anomalies += 1  # a duplicate, out of order, or (teachers) a hole
                self.last_seq = seq
                area = frame.get("area")
                self.received[area] += 1
                if area is not None and area not in self.reads:
                    load.forbidden += 1
                room = frame.get("room")
                if room is not None and load.room_areas.get(room["id"]) != area:
                    load.wrong_area += 1
                events += 1
                if tally.recording:
                    load.delivered_ids.append(frame.get("message_id") or 0)
                    load.delivered_ns.append(now_ns)
                continue
            stamp = self._posts.pop(frame.get("ref"), None)  # type: ignore[arg-type]
            if stamp is None:
                if kind == "ok" and "head" in frame:  # subscribed: live records follow on from head
                    self.last_seq = frame["head"]
                self.answer(frame)
                continue
            load.answered(frame, stamp, now_ns)
        tally.deliveries += events
        tally.messages += 1


class FeedLoad:
    """The posters as one (what pace() drives): areas in turn, each area's posters in turn."""

    def __init__(self, p: FeedParams) -> None:
        self.p = p
        self.tally = Tally()
        self.members: list[Member] = []  # following the feed
        self.posting: list[Member] = []  # the posters (not following it)
        self.posters: dict[str, list[Member]] = {}  # area -> members who post there
        self.channels: dict[str, str] = {}  # area -> its room's channel
        self.room_areas: dict[int, str] = {}  # room id -> area
        self.in_flight = 0
        self.sent = 0
        self.sent_by_area: Counter[str] = Counter()
        self.acked_by_area: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.ack_latencies = array("q")  # ns, while tally.recording
        self.sent_at: dict[int, int] = {}  # message id -> scheduled send time (ns), from each ok
        self.delivered_ids = array("q")  # while recording: message id of each delivery...
        self.delivered_ns = array("q")  # ... and when it was received
        self.forbidden = 0  # records of an area the receiver's role may not read
        self.wrong_area = 0  # records whose area is not their room's
        self._next = 0

    @property
    def acked(self) -> int:
        return sum(self.acked_by_area.values())

    def post(self, stamp_ns: int | None = None) -> None:
        k = self._next
        self._next += 1
        area = AREAS[k % len(AREAS)].value
        posters = self.posters[area]
        poster = posters[(k // len(AREAS)) % len(posters)]
        poster.post(self.channels[area], time.monotonic_ns() if stamp_ns is None else stamp_ns, self.p.text_size)
        self.in_flight += 1
        self.sent += 1
        self.sent_by_area[area] += 1

    def answered(self, frame: dict[str, Any], stamp_ns: int, now_ns: int) -> None:
        self.in_flight -= 1
        if frame["type"] != "ok":
            self.refused[str(frame.get("code"))] += 1
            return
        self.sent_at[frame["id"]] = stamp_ns
        self.acked_by_area[self.room_areas[int(frame["channel"].split(":", 1)[1])]] += 1
        if self.tally.recording:
            self.ack_latencies.append(now_ns - stamp_ns)

    def set_rooms(self, rooms: list[tuple[str, str]]) -> None:
        self.channels = {area: channel for channel, area in rooms}
        self.room_areas = {int(channel.split(":", 1)[1]): area for channel, area in rooms}

    def pick_posters(self) -> None:
        """The posters, p.posters per area in AREAS order (as poster_roles() seeded them)."""
        n = self.p.posters
        for k, area in enumerate(AREAS):
            posters = self.posting[k * n: (k + 1) * n]
            if len(posters) != n or any(m.role != POSTING[area].value for m in posters):
                raise RuntimeError(f"the posters of {area.value} were not seeded as {POSTING[area].value}s")
            self.posters[area.value] = posters


@dataclass
class _Mark:
    """Counters at one instant."""

    deliveries: int
    messages: int
    acked: int
    server: Usage
    client: Usage
    counters: dict[str, float]


class Profiler:
    """`py-spy record` on the server for a while (raw collapsed stacks), then its samples counted."""

    # label: (function, file) of a frame that a sample's stack must hold (function "": any)
    FRAMES = {
        "Hub._deliver (fan-out loop, encoding included)": ("_deliver", "hub.py"),
        "encode_server_item (encoding)": ("encode_server_item", "codec.py"),
        "Connection.push (outbox append, writer wake-up)": ("push", "connection.py"),
        "Connection._write_loop (socket writes)": ("_write_loop", "connection.py"),
        "group commit (storage/writer.py)": ("", "writer.py"),
    }

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seconds = 0
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out = Path(tempfile.mkdtemp(prefix="twinhub-feed-pyspy-")) / "server.txt"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, seconds: float) -> None:
        self.seconds = max(int(seconds), 1)
        self.proc = subprocess.Popen(  # noqa: S603 — py-spy on our own server's PID
            [self.exe, "record", "--pid", str(self.pid), "-r", "200", "--nonblocking", "-f", "raw",
             "-d", str(self.seconds), "-o", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )

    async def result(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        try:
            _, err = await asyncio.to_thread(self.proc.communicate, timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {"error": "py-spy did not finish"}
        if not self.out.exists():
            return {"error": (err or b"").decode(errors="replace").strip()[-300:]}
        total, hits = 0, Counter()
        for line in self.out.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            # py-spy's raw frames read "Class.function (path/file.py:line)"
            frames = [(f.partition(" (")[0], f.partition(" (")[2].rpartition(":")[0]) for f in stack.split(";")]
            for label, (function, file) in self.FRAMES.items():
                if any((not function or name == function or name.endswith("." + function))
                       and (path == file or path.endswith("/" + file)) for name, path in frames):
                    hits[label] += n
        return {
            "raw": str(self.out),  # the collapsed stacks, left in a temporary folder
            "samples": total,
            "share_percent": {label: round(100 * hits[label] / total, 2) if total else None for label in self.FRAMES},
            "command": f"py-spy record --pid <server> -r 200 --nonblocking -f raw -d {self.seconds}",
        } if total else {"error": "no samples"}


class _Run:
    def __init__(self, target: Target, p: FeedParams, progress: Progress) -> None:
        self.target = target
        self.p = p
        self.progress = progress
        self.load = FeedLoad(p)
        self.me = psutil.Process()
        self.rss_peak = 0

    def mark(self, *, counters: bool = False) -> _Mark:
        server = usage(self.target.server.process, self.target.server.helpers())
        self.rss_peak = max(self.rss_peak, server.rss)
        tally = self.load.tally
        return _Mark(tally.deliveries, tally.messages, self.load.acked, server, usage(self.me),
                     self.target.counters() if counters else {})

    async def watch(self, phase: str, seconds: float) -> None:
        await watch(self.progress, self.target.name, phase, seconds, self.mark, lambda s: (
            f"posts/s {s.rate('acked'):>5,.0f}  feed deliveries/s {s.rate('deliveries'):>8,.0f}"
            f"  in flight {self.load.in_flight:>4}  {s.cpu()}"))

    async def drain(self) -> None:
        """Wait until every request was answered and deliveries stopped coming (at most p.drain s)."""
        await drain(self.load, self.p.drain)

    async def run(self) -> dict[str, Any]:
        p, target, load = self.p, self.target, self.load
        n_posters = p.posters * len(AREAS)
        if target.space_id is None or not target.rooms or len(target.roles) < p.members + n_posters:
            raise RuntimeError("the feed scenario needs a target seeded with mixed roles and one room per area")
        pin(p.client_cpu)
        raise_open_files_limit()
        load.set_rooms(target.rooms)
        space_id = target.space_id
        role_of = {token: role for (token, _), role in zip(target.logins, target.roles, strict=False)}

        async def setup(member: Member, token: str, _room: str) -> None:
            await member.join(token, role_of[token], space_id, p.connect_timeout)

        async def setup_poster(member: Member, token: str, _room: str) -> None:
            await member.join(token, role_of[token], space_id, p.connect_timeout, follow=False)

        load.members = await open_clients(
            target.url, target.logins[: p.members], lambda: Member(load), setup, concurrency=p.concurrency,
            timeout=p.connect_timeout,
            on_joined=lambda n: n % 200 == 0 and self.progress.show(f"[{target.name}] connected {n}/{p.members}"),
        )
        try:
            posting = await open_clients(
                target.url, target.logins[p.members: p.members + n_posters], lambda: Member(load), setup_poster,
                concurrency=p.concurrency, timeout=p.connect_timeout,
            )
        except BaseException:
            await close_all(load.members, p.connect_timeout)
            raise
        # open_clients returns them in the order they joined: put them back in the seeded order
        order = {token: k for k, (token, _) in enumerate(target.logins[p.members: p.members + n_posters])}
        load.posting = sorted(posting, key=lambda m: order[m.token])
        load.pick_posters()
        profiler = Profiler(target.server.pid) if p.py_spy else None
        pacer: asyncio.Task[int] | None = None
        try:
            until = time.monotonic_ns() + int((p.warmup + p.duration) * 1e9)
            pacer = asyncio.create_task(pace(load, p.rate, until, max_in_flight=max(1000, int(p.rate))))
            await self.watch("warm-up", p.warmup)
            load.ack_latencies = array("q")
            start = self.mark(counters=True)
            load.tally.recording = True
            if profiler is not None:
                profiler.start(p.duration)
            await self.watch("measure", p.duration)
            load.tally.recording = False
            end = self.mark(counters=True)
            skipped = await pacer
            await self.drain()
            self.progress.done()
            profile = await profiler.result() if profiler is not None else None
        finally:
            if pacer is not None:
                pacer.cancel()
            if profiler is not None and profiler.proc is not None and profiler.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    profiler.proc.kill()
            await close_all([*load.members, *load.posting], p.connect_timeout)
        figures = self.figures(start, end, skipped)
        if profile is not None:
            figures["profile"] = profile
        return figures

    def latency(self) -> tuple[array, int]:
        """Post (scheduled send) → feed delivery, ns, for the deliveries received while measuring;
        and how many of those had no acknowledged post to match."""
        load = self.load
        sent_at = load.sent_at
        out, unmatched = array("q"), 0
        for message_id, received in zip(load.delivered_ids, load.delivered_ns, strict=True):
            stamp = sent_at.get(message_id)
            if stamp is None:
                unmatched += 1
            else:
                out.append(received - stamp)
        return out, unmatched

    def correctness(self) -> dict[str, Any]:
        """Per role: records received per area against what the role may read × posts acked."""
        load = self.load
        by_role: dict[str, dict[str, Any]] = {}
        per_member_wrong = 0
        for role in ROLES:
            members = [m for m in load.members if m.role == role.value]
            reads = READS[role.value]
            received: Counter[str | None] = Counter()
            for m in members:
                received.update(m.received)
                expected_own = sum(load.acked_by_area[a] for a in reads)
                own = sum(n for a, n in m.received.items() if a in reads)
                if own != expected_own or own != m.received.total():
                    per_member_wrong += 1
            areas = {}
            for area in AREAS:
                expected = len(members) * load.acked_by_area[area.value] if area.value in reads else 0
                areas[area.value] = {"received": received[area.value], "expected": expected,
                                     "ok": received[area.value] == expected}
            others = {str(a): n for a, n in received.items() if a not in {x.value for x in AREAS}}
            by_role[role.value] = {
                "members": len(members), "reads": sorted(reads), "areas": areas, "other_records": others,
                "ok": all(v["ok"] for v in areas.values()) and not others,
            }
        return {
            "by_role": by_role,
            "forbidden_deliveries": load.forbidden,  # a record of an area its receiver may not read
            "teachers_room_to_pupils_or_visitors": sum(
                by_role[r]["areas"]["teachers_room"]["received"] for r in ("pupil_member", "visitor")
            ),
            "members_with_wrong_records": per_member_wrong,
            "records_in_wrong_area": load.wrong_area,
            "ok": all(v["ok"] for v in by_role.values()) and load.forbidden == 0 and per_member_wrong == 0
            and load.wrong_area == 0,
        }

    def figures(self, a: _Mark, b: _Mark, skipped: int) -> dict[str, Any]:
        p, load, tally = self.p, self.load, self.load.tally
        wall = b.server.at - a.server.at
        deliveries = b.deliveries - a.deliveries
        acked = b.acked - a.acked
        messages = b.messages - a.messages
        latencies, unmatched = self.latency()
        roles = Counter(m.role for m in load.members)
        out: dict[str, Any] = {
            "server": self.target.name,
            "members": len(load.members),
            "members_by_role": dict(roles),
            "posters_per_area": p.posters,  # members too, not following the feed
            "mode": f"open loop {p.rate:g} posts/s",
            "measured_s": round(wall, 2),
            "offered_posts_per_s": p.rate,
            "posts_per_s": round(acked / wall, 1),
            "deliveries_per_s": round(deliveries / wall),
            # What the mix and the round robin should give: each post reaches the readers of its area.
            "expected_deliveries_per_s": round(p.rate / len(AREAS) * sum(
                sum(n for r, n in roles.items() if area.value in READS[r]) for area in AREAS)),
            "messages_per_s": round(messages / wall),
            "events_per_message": round(deliveries / messages, 2) if messages else None,
            "latency": percentiles(latencies),
            "latency_unmatched": unmatched,
            "ack_latency": percentiles(load.ack_latencies),
            **cpu_figures(a.server, b.server, a.client, b.client),
            "server_rss_mb": round(b.server.rss / 2**20, 1),
            "server_rss_peak_mb": round(self.rss_peak / 2**20, 1),
            "skipped_sends": skipped,
            "posts_sent_total": load.sent,
            "posts_acked_total": load.acked,
            "posts_acked_by_area": dict(load.acked_by_area),
            "refused_posts": sum(load.refused.values()),
            "refused_codes": dict(load.refused),
            "unanswered_after_drain": load.in_flight,
            "seq_anomalies": tally.seq_anomalies,
            "closed_by_server": sum(tally.closes.values()),
            "close_codes": dict(tally.closes),
            "error_codes": dict(tally.errors),
            "correctness": self.correctness(),
        }
        if deliveries:
            out["server_cpu_us_per_delivery"] = round(out["server_cpu_percent"] / 100 * wall / deliveries * 1e6, 2)
        if acked:
            out["server_cpu_us_per_post"] = round(out["server_cpu_percent"] / 100 * wall / acked * 1e6)
        if a.counters and b.counters:
            def delta(name: str) -> float:
                return b.counters.get(name, 0.0) - a.counters.get(name, 0.0)

            events, queued = delta("twinhub_events_total"), delta("twinhub_deliveries_total")
            batches = delta("twinhub_commit_batches_total")
            out["server_counters"] = {
                "hub_events_per_s": round(events / wall, 1),
                "queued_deliveries_per_s": round(queued / wall),
                "deliveries_per_event": round(queued / events, 1) if events else None,
                "gaps_filled_per_s": round(delta("twinhub_gaps_filled_total") / wall, 2),
                "commits_per_s": round(batches / wall, 1),
                "posts_per_commit": round(delta("twinhub_posts_committed_total") / batches, 2) if batches else None,
            }
        return out


async def measure(target: Target, p: FeedParams, progress: Progress) -> dict[str, Any]:
    """Run the feed scenario against a TwinHub seeded with mixed roles and one room per area
    (see cmd_feed); return its figures."""
    figures = await _Run(target, p, progress).run()
    figures["params"] = asdict(p)
    return figures
