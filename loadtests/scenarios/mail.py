"""TwinMail: N connected members of one project, each following their own mailbox, each sending
mails to R other members; committed mails per second and the send → delivery latency.

    connect N members (teachers: hello, then subscribe to the mailbox the welcome names)
    for each step (a window, or a rate):
        send: closed loop (keep W sends in flight, a new one on each answer) or open loop (S mails/s);
              senders in turn (round robin), recipients R others drawn at random (fixed seed)
        warm-up → measure D seconds
    stop sending → drain → check → close

Measured per step, over its D seconds: committed mails/s (`ok` answers to send_mail received),
deliveries/s (`mail.received` events received by the recipients), the send → delivery latency
(receive time − the send time at the start of the mail's text; in open loop the *scheduled*
send time), the send → ok latency, the server's group commits (the distinct `created_at` of the
mails sent: a batch is one transaction and `now()` is its start), its /metrics counter of
committed mails, the database's rows written and WAL (pg_stat_database, pg_current_wal_lsn),
CPU of the server, of the embedded PostgreSQL (it runs on the server's CPU), of this load
generator, RSS.

After the drain, every acknowledged mail must have reached each of its R recipients and the
sender's own mailbox (`mail.sent`), and every mailbox's seqs must follow on without gap or
duplicate.
"""

from __future__ import annotations

import asyncio
import random
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
import psutil

from ..clients import STAMP_DIGITS, Client, Tally, close_all, drain, open_clients, pace, post_text
from ..report import Progress, percentiles
from ..server_proc import Usage, cpu_figures, cpu_percent, pin, raise_open_files_limit, usage
from .targets import Target

SUBJECT = "Load test"
# What the server is started with: the per-member mail rate limits out of the way (teachers
# send 0.5 mails/s by default; at 2,000 mails/s over 1,000 members each sends 2/s).
SERVER_ENV = (
    ("TWINHUB_MAIL_RATE", "100000"), ("TWINHUB_MAIL_BURST", "100000"),
    ("TWINHUB_PUPIL_MAIL_RATE", "100000"), ("TWINHUB_PUPIL_MAIL_BURST", "100000"),
)


@dataclass(frozen=True)
class MailParams:
    members: int = 1000
    recipients: int = 5  # per mail
    windows: tuple[int, ...] = (200,)  # closed loop: sends in flight, one step per window
    rates: tuple[float, ...] = ()  # open loop: mails per second, one step per rate (overrides windows)
    duration: float = 10.0  # measured seconds per step
    warmup: float = 3.0  # seconds of load before each step's measurement
    text_size: int = 100
    client_cpu: int | None = 1
    concurrency: int = 100  # handshakes at a time while connecting
    connect_timeout: float = 10.0
    drain: float = 10.0  # longest wait, after the last send, for answers and deliveries
    seed: int = 1  # of the recipients' draw


class Member(Client):
    """One member's connection: follows its mailbox (checks that seqs follow on), sends mail
    when the load tells it to, and reports answers and deliveries to the load."""

    def __init__(self, load: MailLoad) -> None:
        super().__init__(load.tally)
        self.load = load
        self.user_id = 0
        self.space_id = 0
        self.mailbox = ""
        self.last_seq = 0
        self._sends: dict[int, int] = {}  # ref -> stamp (ns)

    async def join(self, token: str, timeout: float) -> None:
        """hello; then subscribe to the mailbox that the welcome lists for the first space."""
        welcome = await self.expect({"type": "hello", "token": token}, "welcome", timeout)
        self.user_id = welcome["user"]["id"]
        box = next(((s["id"], s["mailbox"]) for s in welcome["spaces"] if s.get("mailbox")), None)
        if box is None:
            raise RuntimeError(f"user {self.user_id} has no mailbox in its welcome")
        self.space_id, self.mailbox = box[0], box[1]["channel"]
        await self.expect({"type": "subscribe", "channel": self.mailbox}, "ok", timeout)

    def send_mail(self, to: list[int], stamp_ns: int, text_size: int) -> None:
        ref = self.next_ref()
        self._sends[ref] = stamp_ns
        self.send({
            "type": "send_mail", "space": self.space_id, "to": to, "subject": SUBJECT,
            "text": post_text(stamp_ns, text_size), "client_id": f"m{ref}", "ref": ref,
        })

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        load, tally = self.load, self.tally
        for frame in frames:
            kind = frame["type"]
            if kind == "event":
                seq = frame["seq"]
                if seq != self.last_seq + 1:
                    tally.seq_anomalies += 1
                self.last_seq = seq
                if frame["kind"] == "mail.received":
                    tally.deliveries += 1
                    if tally.recording:
                        tally.latencies.append(now_ns - int(frame["mail"]["text"][:STAMP_DIGITS]))
                elif frame["kind"] == "mail.sent":
                    load.sent_events += 1
                    if tally.recording:
                        load.commit_stamps.add(frame["mail"]["created_at"])
                continue
            stamp = self._sends.pop(frame.get("ref"), None)  # type: ignore[arg-type]
            if stamp is None:
                if kind == "ok" and "head" in frame:  # subscribed: live events follow on from head
                    self.last_seq = frame["head"]
                self.answer(frame)
                continue
            load.answered(frame, now_ns - stamp)
        tally.messages += 1


class MailLoad:
    """The senders as one: round robin over the members, R recipients drawn at random among the
    others, a global window of sends in flight (closed loop) or pace()'s post() (open loop)."""

    def __init__(self, p: MailParams) -> None:
        self.p = p
        self.tally = Tally()
        self.members: list[Member] = []
        self.window = 0  # > 0: closed loop, a new send on each answer while fewer are in flight
        self.in_flight = 0
        self.sent = 0
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.ack_latencies = array("q")  # ns, while tally.recording
        self.sent_events = 0  # mail.sent events received by the senders' own mailboxes
        self.commit_stamps: set[str] = set()  # created_at of the mails sent, while recording
        self._rng = random.Random(p.seed)
        self._next = 0

    def post(self, stamp_ns: int | None = None) -> None:
        """One mail from the next member to R others, stamped `stamp_ns` (default: now)."""
        members = self.members
        i = self._next
        self._next = (i + 1) % len(members)
        picks = self._rng.sample(range(len(members) - 1), self.p.recipients)
        to = [members[j + (j >= i)].user_id for j in picks]  # anyone but the sender
        members[i].send_mail(to, time.monotonic_ns() if stamp_ns is None else stamp_ns, self.p.text_size)
        self.in_flight += 1
        self.sent += 1

    def answered(self, frame: dict[str, Any], latency_ns: int) -> None:
        self.in_flight -= 1
        if frame["type"] == "ok":
            self.acked += 1
            if self.tally.recording:
                self.ack_latencies.append(latency_ns)
        else:
            self.refused[str(frame.get("code"))] += 1
        if self.window and self.in_flight < self.window:
            self.post()

    def start_window(self, window: int) -> None:
        self.window = window
        while self.in_flight < window:
            self.post()

    def stop(self) -> None:
        self.window = 0


class DatabaseStats:
    """pg_stat_database of the server's database (committed transactions, rows written) and
    the WAL position, over one connection of our own. Statistics reach pg_stat_database when a
    backend flushes them (at most once a second under load): figures over a few seconds are
    right to within about a second's worth."""

    _QUERY = (
        "SELECT xact_commit, tup_inserted, tup_updated, pg_current_wal_lsn() - '0/0'::pg_lsn AS wal"
        " FROM pg_stat_database WHERE datname = current_database()"
    )

    def __init__(self, conn: asyncpg.Connection | None) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, url: str | None) -> DatabaseStats:
        if url is None:
            return cls(None)
        try:
            return cls(await asyncpg.connect(url, timeout=10))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            return cls(None)  # figures without the database's side

    async def read(self) -> dict[str, float]:
        if self._conn is None:
            return {}
        try:
            r = await self._conn.fetchrow(self._QUERY)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return {}
        return {k: float(r[k]) for k in ("xact_commit", "tup_inserted", "tup_updated", "wal")} if r else {}

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()


@dataclass
class _Mark:
    """Counters at one instant."""

    deliveries: int
    messages: int
    acked: int
    sent_events: int
    server: Usage
    client: Usage
    counters: dict[str, float]
    database: dict[str, float]


class _Run:
    def __init__(self, target: Target, p: MailParams, progress: Progress) -> None:
        self.target = target
        self.p = p
        self.progress = progress
        self.load = MailLoad(p)
        self.me = psutil.Process()
        self.rss_peak = 0
        self.db = DatabaseStats(None)

    async def mark(self, *, counters: bool = False) -> _Mark:
        """Read the counters now (`counters`: also the server's /metrics and the database's)."""
        server = usage(self.target.server.process, self.target.server.helpers())
        self.rss_peak = max(self.rss_peak, server.rss)
        load, tally = self.load, self.load.tally
        database = await self.db.read() if counters else {}
        return _Mark(
            tally.deliveries, tally.messages, load.acked, load.sent_events, server, usage(self.me),
            self.target.counters() if counters else {}, database,
        )

    async def watch(self, step: str, phase: str, seconds: float) -> None:
        """Wait `seconds`, showing the rates of each past second."""
        end = time.monotonic() + seconds
        last = await self.mark()
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(1.0, left))
            now = await self.mark()
            wall = now.server.at - last.server.at
            server_cpu, db_cpu = cpu_percent(last.server, now.server)
            client_cpu, _ = cpu_percent(last.client, now.client)
            self.progress.show(
                f"[{step}] {phase} {seconds - max(end - time.monotonic(), 0):4.1f}/{seconds:g}s"
                f"  mails/s {(now.acked - last.acked) / wall:>6,.0f}"
                f"  deliveries/s {(now.deliveries - last.deliveries) / wall:>7,.0f}"
                f"  in flight {self.load.in_flight:>5}"
                f"  server CPU {server_cpu:3.0f}%  db CPU {db_cpu:3.0f}%  client CPU {client_cpu:3.0f}%"
            )
            last = now

    async def drain(self) -> None:
        """Wait until every request was answered and deliveries stopped coming (at most p.drain s)."""
        await drain(self.load, self.p.drain)

    async def step(self, label: str, *, window: int = 0, rate: float | None = None) -> dict[str, Any]:
        """One step at `window` sends in flight, or at `rate` mails/s; its figures."""
        p, load, tally = self.p, self.load, self.load.tally
        pacer: asyncio.Task[int] | None = None
        if rate:
            load.stop()
            until = time.monotonic_ns() + int((p.warmup + p.duration) * 1e9)
            pacer = asyncio.create_task(pace(load, rate, until, max_in_flight=max(1000, int(rate))))
        else:
            load.start_window(window)
        try:
            await self.watch(label, "warm-up", p.warmup)
            tally.latencies, load.ack_latencies, load.commit_stamps = array("q"), array("q"), set()
            start = await self.mark(counters=True)
            tally.recording = True
            await self.watch(label, "measure", p.duration)
            tally.recording = False
            end = await self.mark(counters=True)
            skipped = await pacer if pacer is not None else 0
        finally:
            if pacer is not None:
                pacer.cancel()
        return self.figures(label, start, end, window=window, rate=rate, skipped=skipped)

    async def run(self) -> dict[str, Any]:
        p, target, load = self.p, self.target, self.load
        pin(p.client_cpu)
        raise_open_files_limit()

        async def setup(member: Member, token: str, _room: str) -> None:
            await member.join(token, p.connect_timeout)

        load.members = await open_clients(
            target.url, target.logins[: p.members], lambda: Member(load), setup,
            concurrency=p.concurrency, timeout=p.connect_timeout,
            on_joined=lambda n: n % 100 == 0 and self.progress.show(f"[{target.name}] connected {n}/{p.members}"),
        )
        if len(load.members) <= p.recipients:
            raise RuntimeError(f"{len(load.members)} members cannot each write to {p.recipients} others")
        self.db = await DatabaseStats.open(target.database_url)
        steps = []
        try:
            if p.rates:
                for rate in p.rates:
                    steps.append(await self.step(f"rate {rate:g}/s", rate=rate))
            else:
                for window in p.windows:
                    steps.append(await self.step(f"window {window}", window=window))
            load.stop()
            await self.drain()
            self.progress.done()
        finally:
            await self.db.close()
            await close_all(load.members, p.connect_timeout)
        tally, n = load.tally, p.recipients
        best = max(steps, key=lambda s: s["mails_per_s"])
        return {
            "server": target.name,
            "members": len(load.members),
            "recipients_per_mail": n,
            "mode": "open loop" if p.rates else "closed loop",
            "steps": steps,
            "best_mails_per_s": best["mails_per_s"],
            "best_step": best["step"],
            "mails_sent_total": load.sent,
            "mails_acked_total": load.acked,
            "refused_sends": sum(load.refused.values()),
            "refused_codes": dict(load.refused),
            "unanswered_after_drain": load.in_flight,
            # Every acked mail should reach each recipient's mailbox and the sender's own.
            "undelivered_after_drain": load.acked * n - tally.deliveries,
            "sent_events_missing": load.acked - load.sent_events,
            "seq_anomalies": tally.seq_anomalies,
            "closed_by_server": sum(tally.closes.values()),
            "close_codes": dict(tally.closes),
            "error_codes": dict(tally.errors),
            "server_rss_mb": round(self.target.server.process.memory_info().rss / 2**20, 1),
            "server_rss_peak_mb": round(self.rss_peak / 2**20, 1),
        }

    def figures(self, label: str, a: _Mark, b: _Mark, *, window: int, rate: float | None,
                skipped: int) -> dict[str, Any]:
        load, tally = self.load, self.load.tally
        wall = b.server.at - a.server.at
        acked = b.acked - a.acked
        messages = b.messages - a.messages
        events = (b.deliveries - a.deliveries) + (b.sent_events - a.sent_events)
        out: dict[str, Any] = {
            "server": self.target.name,
            "step": label,
            "mode": f"open loop {rate:g} mails/s" if rate else f"closed loop, window {window}",
            "measured_s": round(wall, 2),
            "mails_per_s": round(acked / wall, 1),
            "deliveries_per_s": round((b.deliveries - a.deliveries) / wall),
            "messages_per_s": round(messages / wall),
            "events_per_message": round(events / messages, 2) if messages else None,
            "latency": percentiles(tally.latencies),
            "ack_latency": percentiles(load.ack_latencies),
            **cpu_figures(a.server, b.server, a.client, b.client),
            "server_rss_mb": round(b.server.rss / 2**20, 1),
            "refused_sends_total": sum(load.refused.values()),
        }
        if rate:
            out["offered_mails_per_s"] = rate
            out["skipped_sends"] = skipped
        else:
            out["window"] = window
        if acked:
            out["server_cpu_us_per_mail"] = round(out["server_cpu_percent"] / 100 * wall / acked * 1e6, 1)
            if out["database_cpu_percent"] is not None:  # the embedded PostgreSQL (not one of --database-url)
                both = (out["server_cpu_percent"] + out["database_cpu_percent"]) / 100 * wall
                out["server_and_db_cpu_us_per_mail"] = round(both / acked * 1e6, 1)
        commits: dict[str, Any] = {}
        if a.counters and b.counters and "twinhub_mails_committed_total" in b.counters:
            def rate_of(name: str) -> float:
                return round((b.counters.get(name, 0.0) - a.counters.get(name, 0.0)) / wall, 1)

            commits["server_mails_committed_per_s"] = rate_of("twinhub_mails_committed_total")
            # events published to this process's hub, and the ones it had to fetch back from
            # PostgreSQL because they reached it out of seq order (each fetch is a read)
            commits["hub_events_per_s"] = rate_of("twinhub_events_total")
            commits["hub_gaps_filled_per_s"] = rate_of("twinhub_gaps_filled_total")
        if a.database and b.database:
            # All transactions of the database, reads included, as its backends report them: an idle
            # backend reports up to 10 s late, so the reads of the connect phase can land in the first
            # step. Hence the group commits are counted from created_at below, not from here.
            xacts = b.database["xact_commit"] - a.database["xact_commit"]
            commits["db_transactions_per_s"] = round(xacts / wall, 1)
            commits["mails_per_db_transaction"] = round(acked / xacts, 1) if xacts else None
            commits["db_rows_written_per_s"] = round(
                (b.database["tup_inserted"] - a.database["tup_inserted"]
                 + b.database["tup_updated"] - a.database["tup_updated"]) / wall
            )
            commits["wal_kb_per_mail"] = round((b.database["wal"] - a.database["wal"]) / acked / 1024, 2) if acked else None
        # One writer commits one batch at a time, each a transaction of several round trips (> 1 ms):
        # every batch has a created_at of its own, even at the millisecond resolution of the wire.
        stamps = len(load.commit_stamps)
        commits["group_commits_per_s"] = round(stamps / wall, 1)
        commits["mails_per_group_commit"] = round((b.sent_events - a.sent_events) / stamps, 1) if stamps else None
        out["commits"] = commits
        return out


async def measure(target: Target, p: MailParams, progress: Progress) -> dict[str, Any]:
    """Run the mail scenario against a started TwinHub; return its figures."""
    figures = await _Run(target, p, progress).run()
    figures["params"] = asdict(p)
    return figures
