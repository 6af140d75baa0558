"""Soak: one TwinHub process under steady mixed traffic and churn for minutes on end; whether its
memory, file descriptors, PostgreSQL connections and tasks stay flat, whether its p99 stays put,
and whether anything acknowledged was lost across the reconnects (issue 9, part 4).

    seed S spaces of --space-size members (N in all), each space with three rooms (chat,
    activities, teachers' room) and a mix of roles (10 % teachers, 80 % pupils, 10 % visitors
    unless told; the same pattern in every space, so each has teachers)
    connect the N members: hello, then subscribe to their room (pupils: chat, teachers: the
    teachers' room, visitors: activities), their mailbox and their space's activity feed
    traffic for -d seconds, all open loop:
      posts  (--post-rate/s)  spaces in turn; areas chat, chat, activities, chat, teachers' room
             in turn; in each, the next *connected* member allowed to post there
      mails  (--mail-rate/s)  the next connected member to --recipients members of its space it
             may write to (online or not: the others get theirs on their next resume)
      churn  (--churn % of N per second)  a member picked at random drops its socket (every other
             time with a close frame, else just the TCP connection), stays away --away-min to
             --away-max s, reconnects: hello, subscribe to its three channels with since=<the
             last seq it saw on each>, then sends again, with the same client_id, every write
             that was not answered when it dropped (the server answers a write it had stored
             with its original seq: nothing is stored twice)
    warm-up (--warmup s, part of -d), then windows of --window s: posts, mails, deliveries and
    churn cycles per second, delivery latency p50/p99 (room events: receive time - the post's
    *scheduled* send time; mail.received likewise), CPU
    every --sample s, from the start: the server's RSS and open file descriptors (psutil), the
    PostgreSQL connections of the server to its database (pg_stat_activity, application_name
    'twinhub', over a connection of our own), and from /metrics its open sockets, asyncio tasks
    and main pool size
    stop traffic and churn, let the last cycles end, drain; check; close every client; wait
    until the server counts no socket, sample once more ("after")

Zero loss, checked after the drain, for every member over all its connections: its room's seqs
followed on without gap or duplicate and it ends on the room's highest acknowledged seq; its
mailbox's likewise, with exactly one event per acknowledged mail it sent or received; its feed's
seqs only went up (teachers', who read every area: without a hole) and it got exactly one
`message.posted` record per acknowledged post in the areas its role may read (none of the
others); after each resume the `ok`'s head was the last seq the replay brought (rooms, mailboxes,
teachers' feeds), and no `resync`. Every post and mail was answered `ok`, none refused.

The leak verdict: least-squares slopes over the measured part (after the warm-up, until the
traffic stops), each against a threshold that a real leak at the default shape (2,000 members,
2 %/s: 40 churn cycles a second, 2,400 a minute) would exceed many times over:

    RSS              1 MB/min   one connection's objects left behind per cycle (its session,
                                subscriptions, outbox: several KB) is >= 10 MB/min; 1 MB/min is
                                ~400 bytes per cycle, or 9 MB over the nine measured minutes
    file descriptors 10 /min    one socket left open per cycle is 2,400/min; 10/min is one per
                                240 cycles (the churn moves the count by +-~10 around its mean)
    PG connections   0.5 /min   the pools cap what they hold; a connection opened outside them
                                now and then would be 5 over nine minutes
    asyncio tasks    20 /min    one task left per cycle is 2,400/min; 20/min is one per 120

A slope above its threshold prints "LEAK?" (a question: a cache filling up looks the same for a
while; the samples are in the JSON result to look at). p99 stability: the last window's p99
over the first (measured) window's, "stable" up to 2 (a shared 2-core machine moves p99 by
that much between quiet and busy minutes).

The short version (tests/e2e/test_soak_short.py) runs this with 200 members for 20 s and
asserts the zero-loss checks, the FDs back at their baseline after every client left, the
PostgreSQL connections within the pools' size and a bound on RSS growth — not the slopes, which
need minutes to mean anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg
import psutil
from picows import WSCloseCode

from realtime.policy import Area, Role

from ..clients import STAMP_DIGITS, Client, Tally, close_all, connect, open_clients, pace, post_text
from ..report import Progress, percentiles, table
from ..server_proc import Usage, cpu_figures, pin, raise_open_files_limit, usage, watch
from . import mail
from .targets import ServerOptions, Target, prometheus_counters, twinhub

ROOM_OF: dict[str, Area] = {  # the room each role follows
    Role.TEACHER_MEMBER.value: Area.TEACHERS_ROOM,
    Role.PUPIL_MEMBER.value: Area.CHAT,
    Role.VISITOR.value: Area.ACTIVITIES,
}
AREAS = (Area.CHAT, Area.ACTIVITIES, Area.TEACHERS_ROOM)  # each space's rooms, seeded in this order
POST_AREAS = (Area.CHAT, Area.CHAT, Area.ACTIVITIES, Area.CHAT, Area.TEACHERS_ROOM)  # posts, in turn
POSTERS: dict[Area, frozenset[str]] = {  # who posts where (the role matrix allows them)
    Area.CHAT: frozenset({Role.TEACHER_MEMBER.value, Role.PUPIL_MEMBER.value}),
    Area.ACTIVITIES: frozenset({Role.TEACHER_MEMBER.value, Role.PUPIL_MEMBER.value}),
    Area.TEACHERS_ROOM: frozenset({Role.TEACHER_MEMBER.value}),
}
READS: dict[str, frozenset[str]] = {  # the areas (of AREAS) each role's feed shows
    Role.TEACHER_MEMBER.value: frozenset(a.value for a in AREAS),
    Role.PUPIL_MEMBER.value: frozenset({Area.CHAT.value, Area.ACTIVITIES.value}),
    Role.VISITOR.value: frozenset({Area.ACTIVITIES.value}),
}
WRITES_TO: dict[str, frozenset[str]] = {  # TwinMail: whom each role may write to (realtime/policy MAIL_TO)
    Role.TEACHER_MEMBER.value: frozenset(READS),
    Role.PUPIL_MEMBER.value: frozenset({Role.TEACHER_MEMBER.value, Role.PUPIL_MEMBER.value}),
    Role.VISITOR.value: frozenset({Role.TEACHER_MEMBER.value}),
}
ROLES = (Role.TEACHER_MEMBER, Role.PUPIL_MEMBER, Role.VISITOR)
WRITERS_POOL = 2  # the group-commit writers' own pool (realtime/web/app.py), besides the main one

# Leak thresholds (see the docstring): slope per minute above which the verdict is "LEAK?".
THRESHOLDS = {"rss_mb": 1.0, "fds": 10.0, "pg_connections": 0.5, "tasks": 20.0}
# Not judged, shown beside the RSS to say where its growth is: (sample key, /metrics name, scale).
DIAGNOSTICS = (
    ("py_blocks_k", "twinhub_python_allocated_blocks", 1000),
    ("malloc_in_use_mb", "twinhub_malloc_in_use_bytes", 2**20),
    ("malloc_free_kept_mb", "twinhub_malloc_free_kept_bytes", 2**20),
)
P99_STABLE_RATIO = 2.0
PG_QUERY = (
    "SELECT count(*) FILTER (WHERE application_name = 'twinhub') AS server, count(*) AS all_"
    " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@dataclass(frozen=True)
class SoakParams:
    members: int = 2000
    space_size: int = 50  # members per space: N / this many spaces
    mix: tuple[float, float, float] = (10.0, 80.0, 10.0)  # % teachers, pupils, visitors in each space
    post_rate: float = 200.0  # posts/s offered, open loop
    mail_rate: float = 20.0  # mails/s offered, open loop
    recipients: int = 3  # per mail
    churn: float = 2.0  # % of the members dropping (and coming back) per second
    away_min: float = 0.5  # s a dropped member stays away, drawn uniformly in [min, max]
    away_max: float = 3.0
    duration: float = 600.0  # s of traffic, warm-up included
    warmup: float = 60.0
    window: float = 60.0  # s per latency window
    sample: float = 5.0  # s between two readings of the server's resources
    text_size: int = 100
    client_cpu: int | None = 1
    concurrency: int = 100  # handshakes at a time while connecting
    connect_timeout: float = 20.0
    drain: float = 20.0  # longest wait, after the traffic, for answers and deliveries
    settle: float = 20.0  # longest wait, after closing every client, for the server to count none
    seed: int = 1


def space_roles(p: SoakParams) -> list[Role]:
    """The roles of one space's members, by rank: counts by the mix (largest remainders), at
    least one teacher (the teachers' room needs a poster, visitors a recipient)."""
    size = p.space_size
    total = sum(p.mix)
    exact = [size * share / total for share in p.mix]
    counts = [int(x) for x in exact]
    for k in sorted(range(3), key=lambda k: exact[k] - counts[k], reverse=True)[: size - sum(counts)]:
        counts[k] += 1
    if counts[0] == 0:
        counts[0], counts[1 if counts[1] else 2] = 1, counts[1 if counts[1] else 2] - 1
    return [role for role, n in zip(ROLES, counts, strict=True) for _ in range(n)]


def member_roles(p: SoakParams) -> list[Role]:
    """Member i is in space i % S (seed.seed) with rank i // S in it: the role of that rank."""
    spaces = max(1, -(-p.members // p.space_size))
    pattern = space_roles(p)
    return [pattern[min(i // spaces, len(pattern) - 1)] for i in range(p.members)]


# -- members -----------------------------------------------------------------------------------

ON, AWAY, LOST = "on", "away", "lost"


@dataclass
class Write:
    kind: str  # "post" or "mail"
    frame: dict[str, Any]  # without ref
    stamp_ns: int
    area: str = ""  # post: the area of its room
    to: tuple[int, ...] = ()  # mail: recipients' user ids
    retried: bool = False


@dataclass(eq=False)
class Person:
    """A member, over all its connections: where it is, the last seq it saw on each channel,
    what it received, and its writes not answered yet (by client_id)."""

    index: int
    token: str
    role: str
    space: int = 0  # index of its space
    user_id: int = 0
    space_id: int = 0
    room: str = ""
    rooms: dict[str, str] = field(default_factory=dict)  # area -> channel, of its space
    mailbox: str = ""
    feed: str = ""
    last: dict[str, int] = field(default_factory=dict)  # channel -> last seq seen
    first: dict[str, int] = field(default_factory=dict)  # channel -> head at the first subscribe
    room_events: int = 0
    mail_events: int = 0
    mail_expected: int = 0  # mail events due to it: one per acknowledged mail it sent or received
    feed_posted: Counter[str] = field(default_factory=Counter)  # message.posted records by area
    pending: dict[str, Write] = field(default_factory=dict)
    conn: Conn | None = None
    state: str = ON
    cycles: int = 0


class Conn(Client):
    """One connection of a Person. Once `active` is False (we are dropping it) it ignores what
    still comes: what it would have counted is replayed on the next connection."""

    def __init__(self, soak: Soak, person: Person | None = None) -> None:
        super().__init__(soak.tally)
        self.soak = soak
        self.person = person
        self.active = True
        self.resuming = False
        self.live: set[str] = set()  # channels whose subscribe was answered: events after it are live
        self.writes: dict[int, str] = {}  # ref -> client_id

    def on_message(self, payload: bytes) -> None:
        if self.active:
            super().on_message(payload)

    def write(self, client_id: str, w: Write) -> None:
        ref = self.next_ref()
        self.writes[ref] = client_id
        self.send({**w.frame, "ref": ref})

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        soak, person = self.soak, self.person
        assert person is not None
        for frame in frames:
            kind = frame["type"]
            if kind == "event":
                soak.on_event(person, frame, now_ns, frame["channel"] in self.live)
                continue
            ref = frame.get("ref")
            client_id = self.writes.pop(ref, None) if ref is not None else None  # type: ignore[arg-type]
            if client_id is not None:
                soak.answered(person, client_id, frame, now_ns)
                continue
            if kind == "ok" and "head" in frame:
                soak.on_subscribed(person, frame, self.resuming)
                self.live.add(frame["channel"])
            self.answer(frame)
        self.tally.messages += 1


class Posts:
    """What pace() drives for posts: spaces in turn, POST_AREAS in turn, the next connected poster."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.in_flight = 0
        self._k = 0
        self._next: Counter[tuple[int, str]] = Counter()

    def post(self, stamp_ns: int | None = None) -> None:
        soak, k = self.soak, self._k
        self._k += 1
        stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
        space = k % len(soak.spaces)
        area = POST_AREAS[(k // len(soak.spaces)) % len(POST_AREAS)].value
        person = soak.next_online(soak.posters[(space, area)], self._next, (space, area))
        if person is None:
            soak.counts["posts_skipped_nobody_online"] += 1
            return
        channel = person.rooms[area]
        soak.counts["posts_sent"] += 1
        client_id = f"p{soak.counts['posts_sent']}"
        frame = {"type": "post", "channel": channel, "text": post_text(stamp, soak.p.text_size), "client_id": client_id}
        soak.send(person, client_id, Write("post", frame, stamp, area=area))
        self.in_flight += 1


class Mails:
    """What pace() drives for mail: the next connected member, to R members of its space it may write to."""

    def __init__(self, soak: Soak) -> None:
        self.soak = soak
        self.in_flight = 0
        self._next: Counter[str] = Counter()
        self._rng = random.Random(soak.p.seed + 1)

    def post(self, stamp_ns: int | None = None) -> None:
        soak = self.soak
        stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
        person = soak.next_online(soak.persons, self._next, "all")
        if person is None:
            soak.counts["mails_skipped_nobody_online"] += 1
            return
        allowed = [q for q in soak.spaces[person.space] if q is not person and q.role in WRITES_TO[person.role]]
        to = tuple(q.user_id for q in self._rng.sample(allowed, min(soak.p.recipients, len(allowed))))
        soak.counts["mails_sent"] += 1
        client_id = f"m{soak.counts['mails_sent']}"
        frame = {"type": "send_mail", "space": person.space_id, "to": list(to), "subject": mail.SUBJECT,
                 "text": post_text(stamp, soak.p.text_size), "client_id": client_id}
        soak.send(person, client_id, Write("mail", frame, stamp, to=to))
        self.in_flight += 1


@dataclass
class _Mark:
    posts: int
    mails: int
    deliveries: int
    cycles: int
    server: Usage
    client: Usage


class Soak:
    def __init__(self, target: Target, p: SoakParams, progress: Progress) -> None:
        self.target, self.p, self.progress = target, p, progress
        self.tally = Tally()
        self.me = psutil.Process()
        self.rng = random.Random(p.seed)
        self.persons: list[Person] = []
        self.by_user: dict[int, Person] = {}
        self.spaces: list[list[Person]] = []
        self.posters: dict[tuple[int, str], list[Person]] = {}
        self.posts = Posts(self)
        self.mails = Mails(self)
        self.counts: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.anomalies: Counter[str] = Counter()  # seq gaps/duplicates by channel kind
        self.reconnect_failures: Counter[str] = Counter()
        self.acked_in: Counter[tuple[int, str]] = Counter()  # (space, area) -> posts acknowledged
        self.room_top: dict[str, int] = {}  # room channel -> highest seq acknowledged
        self.room_acked: Counter[str] = Counter()
        self.latencies = array("q")  # ns: room deliveries, this window
        self.mail_latencies = array("q")  # ns: mail.received, this window
        self.ack_latencies = array("q")  # ns: post -> ok, this window
        self.samples: list[dict[str, Any]] = []
        self.cycles: set[asyncio.Task[None]] = set()
        self.t0 = time.monotonic()  # the traffic's start (set when it starts)
        self.db: asyncpg.Connection | None = None
        self.last_sample: dict[str, Any] = {}

    # -- what the connections report -----------------------------------------------------------

    def on_event(self, person: Person, frame: dict[str, Any], now_ns: int, live: bool) -> None:
        """One event: seq checked against the last one this person saw on the channel (over all
        its connections), counted; its latency recorded if it came live (a replayed event's age
        is the time its receiver was away)."""
        channel, seq = frame["channel"], frame["seq"]
        last = person.last.get(channel, 0)
        recording = self.tally.recording and live
        if channel == person.room:
            if seq != last + 1:
                self.anomalies["room"] += 1
            person.room_events += 1
            if recording:
                self.latencies.append(now_ns - int(frame["message"]["text"][:STAMP_DIGITS]))
        elif channel == person.mailbox:
            if seq != last + 1:
                self.anomalies["mailbox"] += 1
            person.mail_events += 1
            if recording and frame["kind"] == "mail.received":
                self.mail_latencies.append(now_ns - int(frame["mail"]["text"][:STAMP_DIGITS]))
        elif channel == person.feed:
            if seq <= last or (person.role == Role.TEACHER_MEMBER.value and seq != last + 1):
                self.anomalies["feed"] += 1
            area = frame.get("area")
            if area is not None and area not in READS[person.role]:
                self.counts["feed_forbidden_records"] += 1
            if frame["kind"] == "message.posted":
                person.feed_posted[area] += 1
        else:
            self.counts["events_on_unexpected_channels"] += 1
            return
        person.last[channel] = seq
        self.tally.deliveries += 1

    def on_subscribed(self, person: Person, frame: dict[str, Any], resuming: bool) -> None:
        channel, head = frame["channel"], frame["head"]
        if frame.get("resync"):
            self.counts["resyncs"] += 1
        if not resuming:
            person.last[channel] = person.first[channel] = head
            return
        self.counts["replayed_events"] += frame.get("replayed", 0)
        gap_free = channel != person.feed or person.role == Role.TEACHER_MEMBER.value
        if gap_free and head != person.last.get(channel, 0):
            self.counts["head_mismatches_after_replay"] += 1

    def send(self, person: Person, client_id: str, w: Write) -> None:
        person.pending[client_id] = w
        assert person.conn is not None
        person.conn.write(client_id, w)

    def answered(self, person: Person, client_id: str, frame: dict[str, Any], now_ns: int) -> None:
        w = person.pending.pop(client_id, None)
        if w is None:
            self.counts["stray_answers"] += 1
            return
        load = self.posts if w.kind == "post" else self.mails
        load.in_flight -= 1
        if frame["type"] != "ok":
            self.refused[f"{w.kind}:{frame.get('code')}"] += 1
            return
        if frame.get("duplicate"):
            self.counts[f"{w.kind}s_acked_as_duplicate"] += 1
        if w.kind == "post":
            self.counts["posts_acked"] += 1
            channel = frame["channel"]
            self.acked_in[(person.space, w.area)] += 1
            self.room_acked[channel] += 1
            if frame["seq"] > self.room_top.get(channel, 0):
                self.room_top[channel] = frame["seq"]
            if self.tally.recording and not w.retried:
                self.ack_latencies.append(now_ns - w.stamp_ns)
        else:
            self.counts["mails_acked"] += 1
            person.mail_expected += 1  # mail.sent
            for user_id in w.to:
                self.by_user[user_id].mail_expected += 1  # mail.received

    def next_online(self, people: list[Person], cursor: Counter[Any], key: Any) -> Person | None:
        """The next of `people` (round robin from cursor[key]) that is connected, or None."""
        n = len(people)
        for _ in range(n):
            person = people[cursor[key] % n]
            cursor[key] += 1
            if person.state == ON and person.conn is not None:
                return person
        return None

    # -- connecting ----------------------------------------------------------------------------

    async def join(self, conn: Conn, person: Person, *, resume: bool) -> None:
        timeout = self.p.connect_timeout
        welcome = await conn.expect({"type": "hello", "token": person.token}, "welcome", timeout)
        if not person.room:
            space = welcome["spaces"][0]
            if space["role"] != person.role:
                raise RuntimeError(f"user {welcome['user']['id']} is {space['role']}, seeded as {person.role}")
            person.user_id, person.space_id = welcome["user"]["id"], space["id"]
            person.rooms = {r["area"]: r["channel"] for r in space["rooms"]}
            person.room = person.rooms[ROOM_OF[person.role].value]
            person.mailbox, person.feed = space["mailbox"]["channel"], space["feed"]
        conn.resuming = resume

        async def subscribe(channel: str) -> None:
            frame: dict[str, Any] = {"type": "subscribe", "channel": channel}
            if resume:
                frame["since"] = person.last.get(channel, 0)
            await conn.expect(frame, "ok", timeout)

        await asyncio.gather(*(subscribe(c) for c in (person.room, person.mailbox, person.feed)))
        person.conn = conn
        for client_id, w in list(person.pending.items()):  # unanswered when it dropped: again, same client_id
            w.retried = True
            self.counts[f"{w.kind}s_resent_after_reconnect"] += 1
            conn.write(client_id, w)

    async def connect_all(self) -> float:
        p, target = self.p, self.target
        roles = target.roles[: p.members]
        self.persons = [Person(i, token, roles[i]) for i, (token, _) in enumerate(target.logins[: p.members])]
        by_token = {person.token: person for person in self.persons}

        async def setup(conn: Conn, token: str, _channel: str) -> None:
            conn.person = by_token[token]
            await self.join(conn, conn.person, resume=False)

        started = time.monotonic()
        await open_clients(
            target.url, target.logins[: p.members], lambda: Conn(self), setup, concurrency=p.concurrency,
            timeout=p.connect_timeout,
            on_joined=lambda k: k % 500 == 0 and self.progress.show(f"[soak] connected {k}/{p.members}"),
        )
        spaces: dict[int, list[Person]] = {}
        for person in self.persons:
            self.by_user[person.user_id] = person
            spaces.setdefault(person.space_id, []).append(person)
        self.spaces = [spaces[k] for k in sorted(spaces)]
        for s, members in enumerate(self.spaces):
            for person in members:
                person.space = s
            for area, roles_ in POSTERS.items():
                self.posters[(s, area.value)] = [q for q in members if q.role in roles_]
        return time.monotonic() - started

    # -- churn ---------------------------------------------------------------------------------

    async def cycle(self, person: Person, clean: bool) -> None:
        """Drop `person`'s connection, stay away, come back resuming (up to 3 tries)."""
        p = self.p
        conn, person.state, person.conn = person.conn, AWAY, None
        assert conn is not None and conn.transport is not None
        conn.active = False
        if clean:
            conn.transport.send_close(WSCloseCode.OK)
        conn.transport.disconnect()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.transport.wait_disconnected(), p.connect_timeout)
        await asyncio.sleep(self.rng.uniform(p.away_min, p.away_max))
        for attempt in range(3):
            fresh: Conn | None = None
            try:
                fresh = await connect(self.target.url, lambda: Conn(self, person), p.connect_timeout)  # type: ignore[assignment]
                assert fresh is not None
                await self.join(fresh, person, resume=True)
            except (OSError, TimeoutError, RuntimeError, ConnectionError) as exc:
                self.reconnect_failures[type(exc).__name__] += 1
                if fresh is not None:
                    fresh.active = False
                    if fresh.transport is not None:
                        fresh.transport.disconnect()
                person.conn = None
                await asyncio.sleep(1.0 + attempt)
                continue
            person.state = ON
            person.cycles += 1
            self.counts["churn_cycles"] += 1
            self.counts["churn_clean_closes" if clean else "churn_tcp_drops"] += 1
            return
        person.state = LOST

    async def churn(self, until: float) -> None:
        """Start cycles at --churn % of the members per second until `until` (monotonic s), at
        most 10 % of the members away at once (more are skipped and counted)."""
        p, owed = self.p, 0.0
        per_s = len(self.persons) * p.churn / 100
        max_away = max(1, len(self.persons) // 10)
        k, last = 0, time.monotonic()
        while (now := time.monotonic()) < until:
            owed += (now - last) * per_s  # by the clock: a late wake-up starts more, not fewer
            last = now
            await asyncio.sleep(0.1)
            while owed >= 1:
                owed -= 1
                if len(self.cycles) >= max_away:
                    self.counts["churn_skipped_too_many_away"] += 1
                    continue
                for _ in range(20):
                    person = self.persons[self.rng.randrange(len(self.persons))]
                    if person.state == ON and person.conn is not None:
                        break
                else:
                    self.counts["churn_skipped_nobody_online"] += 1
                    continue
                k += 1
                person.state = AWAY  # now, not when the task starts: no second pick in the same batch
                task = asyncio.create_task(self.cycle(person, clean=k % 2 == 0))
                self.cycles.add(task)
                task.add_done_callback(self.cycles.discard)

    # -- the server's resources ----------------------------------------------------------------

    async def read_server(self, phase: str) -> dict[str, Any]:
        server = self.target.server
        out: dict[str, Any] = {"t_s": round(time.monotonic() - self.t0, 1), "phase": phase}
        try:
            proc = server.process
            out["rss_mb"] = round(proc.memory_info().rss / 2**20, 2)
            out["fds"] = proc.num_fds()
            out["threads"] = proc.num_threads()
        except psutil.Error as exc:
            out["error"] = repr(exc)
        try:
            metrics = prometheus_counters(await asyncio.to_thread(server.http_get, "/metrics"))
            out["websockets_open"] = int(metrics.get("twinhub_websockets_open", -1))
            out["tasks"] = int(metrics["twinhub_asyncio_tasks"]) if "twinhub_asyncio_tasks" in metrics else None
            out["pool_connections"] = int(metrics.get("twinhub_db_pool_connections", -1))
            out["pool_max"] = int(metrics.get("twinhub_db_pool_max", -1))
            # Where the RSS is (realtime/web/metrics.py): Python objects, C allocations, freed but kept.
            for key, metric, scale in DIAGNOSTICS:
                if metric in metrics:
                    out[key] = round(metrics[metric] / scale, 2)
        except (OSError, ValueError) as exc:
            out["metrics_error"] = repr(exc)
        if self.db is not None:
            try:
                row = await asyncio.wait_for(self.db.fetchrow(PG_QUERY), 10)
                out["pg_connections"], out["pg_backends"] = row["server"], row["all_"]
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                out["pg_error"] = repr(exc)
        out["online"] = sum(1 for q in self.persons if q.state == ON and q.conn is not None)
        out["client_rss_mb"] = round(self.me.memory_info().rss / 2**20, 1)
        self.last_sample = out
        return out

    async def sampler(self, phase: list[str]) -> None:
        while True:
            self.samples.append(await self.read_server(phase[0]))
            await asyncio.sleep(self.p.sample)

    # -- the run -------------------------------------------------------------------------------

    def mark(self) -> _Mark:
        c = self.counts
        return _Mark(c["posts_acked"], c["mails_acked"], self.tally.deliveries, c["churn_cycles"],
                     usage(self.target.server.process, self.target.server.helpers()), usage(self.me))

    def line(self, s: Any) -> str:
        last = self.last_sample
        return (f"posts/s {s.rate('posts'):4.0f}  mails/s {s.rate('mails'):3.0f}  deliveries/s "
                f"{s.rate('deliveries'):6,.0f}  churn/s {s.rate('cycles'):3.0f}  online {last.get('online', 0):,}  "
                f"RSS {last.get('rss_mb', 0):.0f} MB  FDs {last.get('fds', 0):,}  PG {last.get('pg_connections', '-')}  "
                f"tasks {last.get('tasks', '-')}  {s.cpu()}")

    async def run(self) -> dict[str, Any]:
        p, target = self.p, self.target
        pin(p.client_cpu)
        raise_open_files_limit()
        if target.database_url:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                self.db = await asyncpg.connect(target.database_url, timeout=10,
                                                server_settings={"application_name": "twinhub-soak"})
        phase = ["baseline"]
        baseline = await self.read_server("baseline")
        pacers: list[asyncio.Task[int]] = []
        sampler: asyncio.Task[None] | None = None
        try:
            connect_s = await self.connect_all()
            self.progress.done()
            self.t0 = time.monotonic()
            phase[0] = "warm-up"
            sampler = asyncio.create_task(self.sampler(phase))
            until = self.t0 + p.duration
            until_ns = time.monotonic_ns() + int(p.duration * 1e9)
            pacers = [
                asyncio.create_task(pace(self.posts, p.post_rate, until_ns, max(1000, int(2 * p.post_rate)))),
                asyncio.create_task(pace(self.mails, p.mail_rate, until_ns, max(200, int(2 * p.mail_rate)))),
            ]
            churn = asyncio.create_task(self.churn(until))
            pacers.append(churn)  # type: ignore[arg-type]
            windows = [await self.window("warm-up", p.warmup, phase)]
            phase[0] = "measure"
            k = 0
            while (left := until - time.monotonic()) > 0.5:
                k += 1
                windows.append(await self.window(f"window {k}", min(p.window, left), phase))
            self.tally.recording = False
            skipped = [await t for t in pacers[:2]]
            await churn
            phase[0] = "drain"
            bound = p.away_max + 3 * (p.connect_timeout + 3) + 5
            if self.cycles:
                await asyncio.wait(set(self.cycles), timeout=bound)
            unfinished = len(self.cycles)
            for task in list(self.cycles):
                task.cancel()
            await self.drain()
            end = await self.read_server("end of traffic")
            checks = self.check()
        finally:
            for task in pacers:
                task.cancel()
            for task in list(self.cycles):
                task.cancel()
            if sampler is not None:
                sampler.cancel()
            await close_all([q.conn for q in self.persons if q.conn is not None], p.connect_timeout)
        after = await self.after()
        if self.db is not None:
            with contextlib.suppress(Exception):
                await self.db.close()
        self.progress.done()
        return self.figures(baseline, end, after, windows, checks, connect_s, skipped, unfinished)

    async def window(self, label: str, seconds: float, phase: list[str]) -> dict[str, Any]:
        self.latencies, self.mail_latencies, self.ack_latencies = array("q"), array("q"), array("q")
        self.tally.recording = True
        a = self.mark()
        from_s = time.monotonic() - self.t0
        await watch(self.progress, "soak", label, seconds, self.mark, self.line)
        b = self.mark()
        wall = max(b.server.at - a.server.at, 1e-9)
        last = self.last_sample
        return {
            "window": label, "from_s": round(from_s, 1), "to_s": round(time.monotonic() - self.t0, 1),
            "posts_per_s": round((b.posts - a.posts) / wall, 1), "mails_per_s": round((b.mails - a.mails) / wall, 1),
            "deliveries_per_s": round((b.deliveries - a.deliveries) / wall),
            "churn_cycles_per_s": round((b.cycles - a.cycles) / wall, 1),
            "latency": percentiles(self.latencies), "mail_latency": percentiles(self.mail_latencies),
            "ack_latency": percentiles(self.ack_latencies),
            **cpu_figures(a.server, b.server, a.client, b.client),
            **{k: last.get(k) for k in ("rss_mb", "fds", "pg_connections", "tasks", "websockets_open", "online")},
        }

    async def drain(self) -> None:
        end, seen = time.monotonic() + self.p.drain, -1
        while time.monotonic() < end and (self.posts.in_flight or self.mails.in_flight or self.tally.deliveries != seen):
            seen = self.tally.deliveries
            await asyncio.sleep(0.5)

    async def after(self) -> dict[str, Any]:
        """Once every client is closed: wait (at most --settle s) until the server counts no open
        socket, 2 s more for what closes after, then read it."""
        end = time.monotonic() + self.p.settle
        while time.monotonic() < end:
            sample = await self.read_server("after")
            if sample.get("websockets_open", 1) == 0:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2.0)
        sample = await self.read_server("after every client left")
        self.samples.append(sample)
        return sample

    # -- checks and figures --------------------------------------------------------------------

    def check(self) -> dict[str, Any]:
        room_behind = room_count_wrong = mail_wrong = feed_wrong = lost = 0
        for q in self.persons:
            if q.state == LOST:
                lost += 1
            top = self.room_top.get(q.room, 0)
            if q.last.get(q.room, 0) != top:
                room_behind += 1
            if q.room_events != top - q.first.get(q.room, 0):
                room_count_wrong += 1
            if q.mail_events != q.mail_expected or q.last.get(q.mailbox, 0) - q.first.get(q.mailbox, 0) != q.mail_expected:
                mail_wrong += 1
            for area in (a.value for a in AREAS):
                expected = self.acked_in[(q.space, area)] if area in READS[q.role] else 0
                if q.feed_posted[area] != expected:
                    feed_wrong += 1
                    break
        # Each room's top seq is the number of posts acknowledged in it (rooms start empty).
        rooms_top_not_acked = sum(1 for ch, top in self.room_top.items() if top != self.room_acked[ch])
        c = self.counts
        out = {
            "posts_unanswered_after_drain": self.posts.in_flight,
            "mails_unanswered_after_drain": self.mails.in_flight,
            "refused": dict(self.refused),
            "seq_anomalies": dict(self.anomalies),
            "head_mismatches_after_replay": c["head_mismatches_after_replay"],
            "resyncs": c["resyncs"],
            "members_behind_room_head": room_behind,
            "members_with_wrong_room_count": room_count_wrong,
            "rooms_top_seq_not_acked_count": rooms_top_not_acked,
            "members_with_wrong_mailbox": mail_wrong,
            "members_with_wrong_feed": feed_wrong,
            "feed_forbidden_records": c["feed_forbidden_records"],
            "events_on_unexpected_channels": c["events_on_unexpected_channels"],
            "stray_answers": c["stray_answers"],
            "members_lost": lost,
            "closed_by_server": dict(self.tally.closes),
            "error_codes": dict(self.tally.errors),
        }
        out["zero_loss"] = not any(out.values())
        return out

    def figures(self, baseline: dict[str, Any], end: dict[str, Any], after: dict[str, Any],
                windows: list[dict[str, Any]], checks: dict[str, Any], connect_s: float, skipped: list[int],
                unfinished: int) -> dict[str, Any]:
        p, c = self.p, self.counts
        measured = [s for s in self.samples if s["phase"] == "measure"]
        leak = {}
        for key in [*THRESHOLDS, *(k for k, _, _ in DIAGNOSTICS)]:
            points = [(s["t_s"] / 60, s[key]) for s in measured if s.get(key) is not None]
            slope = least_squares_slope(points)
            late = least_squares_slope(points[len(points) // 2:])  # levelling off, or going on?
            leak[key] = {
                "start": points[0][1] if points else None, "end": points[-1][1] if points else None,
                "min": min(v for _, v in points) if points else None, "max": max(v for _, v in points) if points else None,
                "slope_per_min": round(slope, 3) if slope is not None else None,
                "slope_second_half_per_min": round(late, 3) if late is not None else None,
                "threshold_per_min": THRESHOLDS.get(key),
                "verdict": None if slope is None or key not in THRESHOLDS
                else ("flat" if slope <= THRESHOLDS[key] else "LEAK?"),
            }
        first, last = (windows[1], windows[-1]) if len(windows) >= 2 else (None, None)
        ratio = None
        if first and last and first["latency"].get("p99_ms") and last["latency"].get("p99_ms"):
            ratio = round(last["latency"]["p99_ms"] / first["latency"]["p99_ms"], 2)
        pool_max = max((s.get("pool_max") or 0) for s in self.samples + [baseline]) or None
        pg_peak = max((s.get("pg_connections") or 0) for s in self.samples) if self.samples else None
        roles = Counter(q.role for q in self.persons)
        return {
            "server": self.target.name,
            "members": len(self.persons), "spaces": len(self.spaces), "members_by_role": dict(roles),
            "connect_s": round(connect_s, 1),
            "traffic_s": round(windows[-1]["to_s"], 1) if windows else 0,
            "posts_sent": c["posts_sent"], "posts_acked": c["posts_acked"],
            "mails_sent": c["mails_sent"], "mails_acked": c["mails_acked"],
            "posts_resent_after_reconnect": c["posts_resent_after_reconnect"],
            "mails_resent_after_reconnect": c["mails_resent_after_reconnect"],
            "posts_acked_as_duplicate": c["posts_acked_as_duplicate"],
            "mails_acked_as_duplicate": c["mails_acked_as_duplicate"],
            "skipped_sends": {"posts_server_behind": skipped[0], "mails_server_behind": skipped[1],
                              "posts_nobody_online": c["posts_skipped_nobody_online"],
                              "mails_nobody_online": c["mails_skipped_nobody_online"]},
            "deliveries": self.tally.deliveries, "replayed_events": c["replayed_events"],
            "churn_cycles": c["churn_cycles"], "churn_clean_closes": c["churn_clean_closes"],
            "churn_tcp_drops": c["churn_tcp_drops"], "churn_skipped": c["churn_skipped_too_many_away"]
            + c["churn_skipped_nobody_online"], "churn_unfinished_at_end": unfinished,
            "reconnect_failures": dict(self.reconnect_failures),
            "correctness": checks,
            "resources": {"baseline": baseline, "end_of_traffic": end, "after_clients_left": after,
                          "pool_max": pool_max, "pg_connections_max_allowed": (pool_max or 0) + WRITERS_POOL,
                          "pg_connections_peak": pg_peak,
                          "fds_after_minus_baseline": _minus(after.get("fds"), baseline.get("fds")),
                          "pg_after_minus_baseline": _minus(after.get("pg_connections"), baseline.get("pg_connections")),
                          "rss_growth_measured_mb": _minus(leak["rss_mb"]["end"], leak["rss_mb"]["start"])},
            "leak": leak,
            "p99_ratio_last_to_first_window": ratio,
            "p99_verdict": None if ratio is None else ("stable" if ratio <= P99_STABLE_RATIO else "NOT STABLE"),
            "windows": windows,
            "samples": self.samples,
            "params": asdict(p),
        }


def _minus(a: Any, b: Any) -> Any:
    return round(a - b, 2) if isinstance(a, int | float) and isinstance(b, int | float) else None


def least_squares_slope(points: list[tuple[float, float]]) -> float | None:
    """The slope of the least-squares line through (x, y) points (None for fewer than 3)."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / sxx


# -- the command line --------------------------------------------------------------------------

def add_parser(sub: Any) -> None:
    d = SoakParams()
    two_cpus = (os.cpu_count() or 1) >= 2
    s = sub.add_parser(
        "soak", help="TwinHub: N members for minutes under posts, mail, feed and churn; leaks, p99, zero loss",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    s.add_argument("-n", "--members", type=int, default=d.members, help=f"connected members (default {d.members})")
    s.add_argument("--space-size", type=int, default=d.space_size, help=f"members per space (default {d.space_size})")
    s.add_argument("--mix", default="10,80,10", help="%% teachers, pupils, visitors in each space (default 10,80,10)")
    s.add_argument("-r", "--post-rate", type=float, default=d.post_rate, help=f"posts/s offered (default {d.post_rate:g})")
    s.add_argument("--mail-rate", type=float, default=d.mail_rate, help=f"mails/s offered (default {d.mail_rate:g})")
    s.add_argument("--recipients", type=int, default=d.recipients, help=f"recipients per mail (default {d.recipients})")
    s.add_argument("--churn", type=float, default=d.churn,
                   help=f"%% of the members dropping and reconnecting per second (default {d.churn:g})")
    s.add_argument("--away-min", type=float, default=d.away_min, help=f"s away, at least (default {d.away_min:g})")
    s.add_argument("--away-max", type=float, default=d.away_max, help=f"s away, at most (default {d.away_max:g})")
    s.add_argument("-d", "--duration", type=float, default=d.duration,
                   help=f"s of traffic, warm-up included (default {d.duration:g})")
    s.add_argument("--warmup", type=float, default=d.warmup, help=f"s of warm-up (default {d.warmup:g})")
    s.add_argument("--window", type=float, default=d.window, help=f"s per latency window (default {d.window:g})")
    s.add_argument("--sample", type=float, default=d.sample,
                   help=f"s between readings of the server's resources (default {d.sample:g})")
    s.add_argument("--text-size", type=int, default=d.text_size, help="characters per post and mail text")
    s.add_argument("--seed", type=int, default=d.seed, help="seed of the random draws (churn, recipients)")
    s.add_argument("--result", default=None, help="write the JSON result here (default loadtests/results/soak-<time>.json)")
    s.add_argument("--concurrency", type=int, default=d.concurrency, help="connections opened at a time at the start")
    s.add_argument("--server-cpu", type=int, default=0 if two_cpus else None, help="CPU of the server (default 0)")
    s.add_argument("--client-cpu", type=int, default=1 if two_cpus else None, help="CPU of the load generator (default 1)")
    s.add_argument("--database-url", default=os.environ.get("TWINHUB_DATABASE_URL") or None,
                   help="PostgreSQL server for a throwaway database (default: the embedded PostgreSQL)")
    s.add_argument("--database-cpu", type=int, default=None, help="CPU of the embedded PostgreSQL (default: the server's)")
    s.add_argument("--timeout", type=float, default=900, help="bound on the whole run, s (default 900)")
    s.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto", help="load generator's event loop")
    s.add_argument("--server-loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                   help="server's event loop (TWINHUB_EVENT_LOOP; default auto: uvloop where installed)")
    s.add_argument("--keep", action="store_true", help="keep the work folder (server log, data) after the run")


def _params(args: argparse.Namespace) -> SoakParams:
    try:
        mix = tuple(float(v) for v in args.mix.split(","))
    except ValueError:
        raise SystemExit(f"--mix: three numbers, e.g. 10,80,10 (got {args.mix!r})") from None
    if len(mix) != 3 or any(v < 0 for v in mix) or not sum(mix):
        raise SystemExit(f"--mix: three shares, of teachers, pupils and visitors (got {args.mix!r})")
    if args.warmup >= args.duration:
        raise SystemExit("--warmup must be shorter than --duration")
    return SoakParams(
        members=args.members, space_size=args.space_size, mix=mix, post_rate=args.post_rate,  # type: ignore[arg-type]
        mail_rate=args.mail_rate, recipients=args.recipients, churn=args.churn, away_min=args.away_min,
        away_max=args.away_max, duration=args.duration, warmup=args.warmup, window=args.window, sample=args.sample,
        text_size=args.text_size, client_cpu=args.client_cpu, concurrency=args.concurrency, seed=args.seed,
    )


def report(f: dict[str, Any]) -> str:
    """The printed figures: totals, correctness, resources and slopes, windows."""
    r, c = f["resources"], f["correctness"]
    lines = [f"soak: {f['members']:,} members in {f['spaces']} spaces "
             f"({', '.join(f'{n:,} {k}' for k, n in f['members_by_role'].items())}), {f['traffic_s']:g} s of traffic, "
             f"connected in {f['connect_s']:g} s", ""]
    totals = [
        ["posts acknowledged / sent", f"{f['posts_acked']:,} / {f['posts_sent']:,}"],
        ["mails acknowledged / sent", f"{f['mails_acked']:,} / {f['mails_sent']:,}"],
        ["writes resent after a reconnect (posts, mails)",
         f"{f['posts_resent_after_reconnect']}, {f['mails_resent_after_reconnect']}"],
        ["  of which already stored (ok duplicate)", f"{f['posts_acked_as_duplicate']}, {f['mails_acked_as_duplicate']}"],
        ["deliveries (room, mailbox, feed events)", f"{f['deliveries']:,}"],
        ["  replayed on resume", f"{f['replayed_events']:,}"],
        ["churn cycles (clean close / TCP drop)",
         f"{f['churn_cycles']:,} ({f['churn_clean_closes']:,} / {f['churn_tcp_drops']:,})"],
        ["churn skipped, unfinished at the end", f"{f['churn_skipped']}, {f['churn_unfinished_at_end']}"],
        ["reconnect failures", f["reconnect_failures"] or 0],
        ["skipped sends", ", ".join(f"{k} {v}" for k, v in f["skipped_sends"].items())],
    ]
    lines += [table(["whole run", f["server"]], totals), ""]
    lines += [table(["zero loss", ""], [[k, v if not isinstance(v, dict) else (v or 0)] for k, v in c.items()]), ""]
    rows = []
    for key in [*THRESHOLDS, *(k for k, _, _ in DIAGNOSTICS)]:
        lk = f["leak"][key]
        if lk["start"] is None and key not in THRESHOLDS:
            continue  # a server without those gauges
        limit = lk["threshold_per_min"]
        rows.append([key, r["baseline"].get(key), lk["start"], lk["end"], r["after_clients_left"].get(key),
                     lk["slope_per_min"], lk["slope_second_half_per_min"], "-" if limit is None else f"{limit:g}",
                     lk["verdict"] or "-"])
    lines.append("server resources: baseline (no client), measured part start and end (after the warm-up), after "
                 "every client left; least-squares slope over the measured part")
    lines += [table(["", "baseline", "start", "end", "after", "slope /min", "2nd half", "threshold", "verdict"], rows),
              ""]
    lines.append(f"PG connections of the server: peak {r['pg_connections_peak']} (allowed: main pool {r['pool_max']} "
                 f"+ writers {WRITERS_POOL}); FDs after - baseline {r['fds_after_minus_baseline']} "
                 f"(PG connections after - baseline {r['pg_after_minus_baseline']})")
    lines.append("")
    wrows = [[w["window"], f"{w['from_s']:g}-{w['to_s']:g}", w["posts_per_s"], w["mails_per_s"], w["deliveries_per_s"],
              w["churn_cycles_per_s"], w["latency"].get("p50_ms"), w["latency"].get("p99_ms"),
              w["mail_latency"].get("p99_ms"), w["ack_latency"].get("p99_ms"), w["server_cpu_percent"],
              w["database_cpu_percent"], w["client_cpu_percent"], w["other_processes_cpu_percent"], w["rss_mb"],
              w["fds"]] for w in f["windows"]]
    lines.append(table(["window", "s", "posts/s", "mails/s", "deliv/s", "churn/s", "p50 ms", "p99 ms", "mail p99",
                        "ok p99", "srv CPU%", "db CPU%", "gen CPU%", "other CPU%", "RSS MB", "FDs"], wrows))
    lines.append(f"\np99 last window / first measured window: {f['p99_ratio_last_to_first_window']} "
                 f"({f['p99_verdict']}; stable up to {P99_STABLE_RATIO:g})")
    return "\n".join(lines)


async def command(args: argparse.Namespace) -> dict[str, Any]:
    p = _params(args)
    roles = member_roles(p)
    spaces = max(1, -(-p.members // p.space_size))
    opts = ServerOptions(server_cpu=args.server_cpu, database_url=args.database_url, keep=args.keep,
                         database_cpu=args.database_cpu,
                         env=(*mail.SERVER_ENV, ("TWINHUB_EVENT_LOOP", args.server_loop)))
    async with twinhub(opts, subscribers=p.members, rooms=spaces, roles=roles, areas=AREAS) as target:
        figures = await Soak(target, p, Progress()).run()
    print("\n" + report(figures))
    r, leak = figures["resources"], figures["leak"]
    checks = [
        {"target": "soak: zero loss — every post and mail acknowledged, none lost or doubled across the "
                   "reconnects (rooms, mailboxes, feeds), no resync, no member lost",
         "met": figures["correctness"]["zero_loss"]},
        {"target": f"soak: PostgreSQL connections of the server <= its pools' size ({r['pg_connections_max_allowed']})",
         "peak": r["pg_connections_peak"],
         "met": r["pg_connections_peak"] is not None and r["pg_connections_peak"] <= r["pg_connections_max_allowed"]},
    ]
    for key, lk in leak.items():
        if lk["verdict"] is not None:
            checks.append({"target": f"soak: {key} flat (slope <= {lk['threshold_per_min']:g}/min after the warm-up)",
                           "slope_per_min": lk["slope_per_min"], "met": lk["verdict"] == "flat"})
    if figures["p99_verdict"] is not None:
        checks.append({"target": f"soak: p99 stable (last window / first <= {P99_STABLE_RATIO:g})",
                       "ratio": figures["p99_ratio_last_to_first_window"], "met": figures["p99_verdict"] == "stable"})
    return {**figures, "checks": checks}
