"""What a Redis that hangs costs an acknowledgement, beside one that runs and one that is dead:
`python -m loadtests.redis_hang [-r 200] [-d 8]` (issue 22, point 16).

One run, one load that never stops, Redis changing under it:

    running    Redis as it should be
    hung       Redis stopped with SIGSTOP (EmbeddedRedis.hang): it holds its connections, the
               kernel still accepts new ones and takes what is sent, and nothing answers
    back       SIGCONT: it goes on where it stopped
    dead       Redis killed (SIGKILL): connections refused at once
    restarted  started again on the same port, empty

Started here, in a temporary folder: the embedded PostgreSQL, a throwaway Redis-compatible
server (realtime.run.embedded_redis), P members of one room (loadtests/seed.py), and two
`python -m realtime serve` processes, A and B, over that Redis (the post rate limit raised out of
the way, as the other runs do; every post is still checked in Redis). P posters on A post open
loop, R posts/s in all, each post stamped with its *scheduled* send time, so that a late send
counts as latency; a subscriber on B counts what crosses Redis and checks the seqs follow on.

Printed per phase: posts acknowledged and refused, sends skipped (MAX_IN_FLIGHT posts of a
poster were unanswered: the server was not keeping up), ack latency p50 / p90 / p99 / max (ms), the
same for the posts sent from 1 s into the phase on (past the wait of the posts in flight when
Redis changed), and the posts B received during the phase. At the end: whether B got every
acknowledged post, in order, once. Written to loadtests/results/redis_hang-<time>.json.

Run the same file against another build by copying it there (`git worktree add`), as
docs/performance.md did for the build before the breaker. Every process started here is stopped
by PID, also on an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from realtime.run.embedded_redis import EmbeddedRedis

from .clients import Client, Subscriber, Tally, close_all, connect, join, pace, post_text
from .report import machine, percentiles, table, write_result
from .seed import Database, seed
from .server_proc import launch

REPO = Path(__file__).resolve().parents[1]
PHASES = ("running", "hung", "back", "dead", "restarted")
SETTLED = 1.0  # seconds into a phase after which a post counts as "settled"
MAX_IN_FLIGHT = 60  # per poster (a session takes at most 64 posts at a time)


@dataclass
class Answers:
    """Every answer of the run: (phase, scheduled send time ns, latency ns, seq or None, code)."""

    phase: str = "warm-up"
    phase_started_ns: int = 0
    rows: list[tuple[str, int, int, int | None, str]] = field(default_factory=list)


class Poster(Client):
    """Posts stamped messages when pace() says; records each answer in `answers`."""

    def __init__(self, tally: Tally, channel: str, text_size: int, answers: Answers) -> None:
        super().__init__(tally)
        self.channel, self.text_size, self.answers = channel, text_size, answers
        self._sent: dict[int, tuple[str, int]] = {}  # ref -> (phase, stamp)

    @property
    def in_flight(self) -> int:
        return len(self._sent)

    def post(self, stamp_ns: int | None = None) -> None:
        stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
        ref = self.next_ref()
        self._sent[ref] = (self.answers.phase, stamp)
        self.send({"type": "post", "channel": self.channel, "text": post_text(stamp, self.text_size), "ref": ref})

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        for frame in frames:
            sent = self._sent.pop(frame.get("ref"), None)  # type: ignore[arg-type]
            if sent is None:
                self.answer(frame)
                continue
            phase, stamp = sent
            ok = frame.get("type") == "ok"
            self.answers.rows.append((phase, stamp, now_ns - stamp, frame.get("seq") if ok else None,
                                      "ok" if ok else str(frame.get("code"))))


def _phase_figures(answers: Answers, phase: str, started_ns: int, received: int) -> dict[str, Any]:
    rows = [r for r in answers.rows if r[0] == phase]
    acked = array("q", (lat for _, _, lat, _, code in rows if code == "ok"))
    settled = array("q", (lat for _, at, lat, _, code in rows if code == "ok" and at >= started_ns + SETTLED * 1e9))
    refused: dict[str, int] = {}
    for *_, code in rows:
        if code != "ok":
            refused[code] = refused.get(code, 0) + 1
    return {"acked": len(acked), "refused": refused, "ack": percentiles(acked), "ack_settled": percentiles(settled),
            "received_on_b": received}


async def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from storage.embedded import database_url

    async with contextlib.AsyncExitStack() as stack:
        url = await database_url(None, work, stack)
        seeded = await seed(Database(url, work), subscribers=args.posters + 1, rooms=1)
        channel = seeded.channels[0]
        redis = EmbeddedRedis()
        redis_url = await asyncio.to_thread(redis.start)
        stack.callback(redis.stop)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")},
            "TWINHUB_REDIS_URL": redis_url, "TWINHUB_REDIS_PREFIX": f"hang-{secrets.token_hex(3)}",
            "TWINHUB_BUS_SECRET": secrets.token_urlsafe(32), "TWINHUB_POST_RATE": "100000",
            "TWINHUB_POST_BURST": "100000", "TWINHUB_LOG_LEVEL": "warning",
        }
        servers = []
        for name in ("A", "B"):
            argv = [sys.executable, "-m", "realtime", "serve", "--port", "0", "--database-url", url,
                    "--data-dir", str(work / "data")]
            server = stack.enter_context(launch(f"twinhub {name}", argv, env=env, cpu=None, log=work / f"{name}.log",
                                                cwd=REPO, timeout=60))
            await asyncio.to_thread(server.wait_ready, "/readyz", 60)
            servers.append(server)
            print(f"twinhub {name}: pid {server.pid}, port {server.port}", file=sys.stderr)
        a, b = servers
        tally, answers = Tally(), Answers()
        posters: list[Poster] = []
        for token, _ in seeded.logins[: args.posters]:
            poster = await connect(f"ws://127.0.0.1:{a.port}/ws",
                                   lambda: Poster(tally, channel, args.text_size, answers), 10)
            posters.append(poster)  # type: ignore[arg-type]
            await join(poster, token, None, 10)
        subscriber = await connect(f"ws://127.0.0.1:{b.port}/ws", lambda: Subscriber(tally), 10)
        await join(subscriber, seeded.logins[args.posters][0], channel, 10)
        stack.push_async_callback(close_all, [*posters, subscriber], 5)

        async def load(seconds: float) -> int:
            """Post for `seconds`; returns the sends skipped (MAX_IN_FLIGHT unanswered on a poster)."""
            until = time.monotonic_ns() + int(seconds * 1e9)
            return sum(await asyncio.gather(*(pace(p, args.rate / len(posters), until, MAX_IN_FLIGHT)
                                             for p in posters)))

        await load(args.warmup)
        actions = {"running": lambda: None, "hung": redis.hang, "back": redis.resume, "dead": redis.kill,
                   "restarted": redis.start}
        phases: dict[str, tuple[int, int, int]] = {}  # phase -> (started ns, skipped, received on B)
        for phase in args.phases:
            await asyncio.to_thread(actions[phase])
            answers.phase, started, before = phase, time.monotonic_ns(), tally.deliveries
            skipped = await load(args.duration)
            phases[phase] = (started, skipped, tally.deliveries - before)
            print(f"{phase}: {args.duration:g} s, {skipped} sends skipped, {tally.deliveries - before} events on B",
                  file=sys.stderr)
        redis.resume()  # whatever the last phase left, B must hear the rest
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(p.in_flight for p in posters):
            await asyncio.sleep(0.1)
        # Only now: the posts sent at the end of a slow phase are answered after it ended.
        figures: dict[str, Any] = {
            phase: {**_phase_figures(answers, phase, started, received), "skipped": skipped}
            for phase, (started, skipped, received) in phases.items()
        }
        acked = sorted(seq for *_, seq, code in answers.rows if code == "ok" and seq is not None)
        while time.monotonic() < deadline and subscriber.last_seq < acked[-1]:
            await asyncio.sleep(0.1)
        figures["b_end"] = {
            "acknowledged": len(acked), "received": tally.deliveries, "last_seq": subscriber.last_seq,
            "highest_acked": acked[-1], "seq_anomalies": tally.seq_anomalies,
            "every_post_once_in_order": tally.seq_anomalies == 0 and subscriber.last_seq == acked[-1]
                                        and tally.deliveries >= len(acked),
        }
        return figures


def _ms(figures: dict[str, Any], key: str) -> str:
    value = figures.get(key)
    return "–" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--rate", type=float, default=200.0, help="posts per second, all posters together")
    parser.add_argument("--posters", type=int, default=4)
    parser.add_argument("-d", "--duration", type=float, default=8.0, help="seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--text-size", type=int, default=100)
    parser.add_argument("--phases", default=",".join(PHASES), help=f"in order, from {', '.join(PHASES)}")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, database)")
    args = parser.parse_args(argv)
    args.phases = [p for p in args.phases.split(",") if p]
    host = machine()
    work = Path(tempfile.mkdtemp(prefix="twinhub-redis-hang-"))
    try:
        figures = asyncio.run(measure(args, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    rows = []
    for phase in args.phases:
        f = figures[phase]
        refused = ", ".join(f"{code} {n}" for code, n in f["refused"].items()) or "0"
        rows.append([phase, f["acked"], refused, f["skipped"], _ms(f["ack"], "p50_ms"), _ms(f["ack"], "p90_ms"),
                     _ms(f["ack"], "p99_ms"), _ms(f["ack"], "max_ms"), _ms(f["ack_settled"], "p50_ms"),
                     _ms(f["ack_settled"], "p99_ms"), f["received_on_b"]])
    print(f"\nack latency, {args.rate:g} posts/s offered through {args.posters} posters on A, "
          f"{args.duration:g} s per phase (commit {host.get('commit')})")
    print(table(["phase", "acked", "refused", "skipped", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 f"from {SETTLED:g} s: p50", "p99", "received on B"], rows))
    end = figures["b_end"]
    print(f"B at the end: {end['received']} events for {end['acknowledged']} acknowledged posts, last seq "
          f"{end['last_seq']} of {end['highest_acked']}, {end['seq_anomalies']} seq anomalies: "
          + ("every post, in order, once" if end["every_post_once_in_order"] else "NOT every post in order once"))
    path = write_result("redis_hang", vars(args), figures, host)
    print(f"written to {path}")
    return 0 if end["every_post_once_in_order"] else 1


if __name__ == "__main__":
    sys.exit(main())
