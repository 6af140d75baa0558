"""The command lines of the chat scenarios of issue 7 — `rooms`, `reconnect`, `ingest` — their
options, what they print, and their targets (checked against the figures of the same run).

    rooms      R rooms x M members, everyone subscribed to their room and posting (open loop)
    reconnect  N members drop at once while posts go on, reconnect at once, resume with since
    ingest     persisted posts/s, every ok after COMMIT: group commit on, then off; the ratio

Each starts TwinHub (targets.twinhub) on a fresh embedded PostgreSQL (or a throwaway database on
--database-url), the server pinned to --server-cpu, the load generator to --client-cpu.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

from ..report import RESOURCE_ROWS, Progress, fanout_table, pick, table
from . import ingest, reconnect, rooms
from .targets import ServerOptions, twinhub

RECONNECT_TARGET_S = 5.0  # 5,000 members back, resumed and caught up within this, with zero loss
RECONNECT_TARGET_CLIENTS = 5000
INGEST_TARGET = 5000.0  # persisted posts/s, group commit on


def _options(args: argparse.Namespace, env: tuple[tuple[str, str], ...] = ()) -> ServerOptions:
    return ServerOptions(server_cpu=args.server_cpu, database_url=args.database_url, keep=args.keep,
                         database_cpu=args.database_cpu, env=env)


# -- rooms -------------------------------------------------------------------------------------

ROOMS_ROWS = [
    ("offered posts/s (open loop)", "offered_posts_per_s"),
    ("posts/s acknowledged", "posts_per_s"),
    ("deliveries/s to the other members", "deliveries_to_others_per_s"),
    ("  expected (posts/s x (members - 1))", "expected_deliveries_to_others_per_s"),
    ("deliveries/s, authors' own included", "deliveries_per_s"),
    ("events per WS message", "events_per_message"),
    ("delivery latency p50 ms", "latency.p50_ms"),
    ("delivery latency p99 ms", "latency.p99_ms"),
    ("delivery latency max ms", "latency.max_ms"),
    ("post->ok p50 ms", "ack_latency.p50_ms"),
    ("post->ok p99 ms", "ack_latency.p99_ms"),
    ("server: commits/s", "server_counters.commits_per_s"),
    ("server: posts per commit", "server_counters.posts_per_commit"),
    ("server CPU %", "server_cpu_percent"),
    ("server CPU us per post", "server_cpu_us_per_post"),
    *RESOURCE_ROWS[:-1],
    ("skipped sends (open loop)", "skipped_sends"),
]


async def cmd_rooms(args: argparse.Namespace) -> dict[str, Any]:
    p = rooms.RoomsParams(
        rooms=args.rooms, members=args.members, rates=tuple(args.rate), duration=args.duration, warmup=args.warmup,
        text_size=args.text_size, client_cpu=args.client_cpu, concurrency=args.concurrency,
    )
    async with twinhub(_options(args), subscribers=p.rooms * p.members, rooms=p.rooms) as target:
        figures = await rooms.measure(target, p, Progress())
    print(f"\nrooms: {figures['rooms']:,} rooms x {p.members} members ({figures['members']:,} connected, each "
          f"subscribed to its room and posting), open loop, {p.duration:g} s per step\n")
    print(fanout_table({s["step"]: s for s in figures["steps"]}, ROOMS_ROWS, ratio=False))
    print()
    totals = ["posts_acked_total", "refused_posts", "unanswered_after_drain", "undelivered_to_others_after_drain",
              "undelivered_to_author_after_drain", "members_behind_room_head", "seq_anomalies", "closed_by_server",
              "connect_s", "server_rss_peak_mb"]
    print(table(["whole run", figures["server"]], [[k, figures[k]] for k in totals]))
    checks = [{
        "target": "rooms: every acknowledged post reached every member of its room once, in seq order; "
                  "no post refused or unanswered, no socket closed",
        "met": not any(figures[k] for k in totals[1:8]),
    }]
    for step in figures["steps"]:
        # 97%: over a few seconds, the posts acknowledged just after the window end count out
        kept_up = step["posts_per_s"] >= 0.97 * step["offered_posts_per_s"] and not step["skipped_sends"]
        checks.append({"target": f"rooms: kept up at {step['offered_posts_per_s']:g} posts/s offered "
                                 "(acknowledged >= 97% of offered, no send skipped)",
                       "posts_per_s": step["posts_per_s"], "p99_ms": step["latency"].get("p99_ms"), "met": kept_up})
    return {**figures, "checks": checks}


# -- reconnect ---------------------------------------------------------------------------------

async def cmd_reconnect(args: argparse.Namespace) -> dict[str, Any]:
    p = reconnect.ReconnectParams(
        clients=args.clients, room_size=args.room_size, rate=args.rate, before=args.before, offline=args.offline,
        after=args.after, catchup_timeout=args.catchup_timeout, concurrency=args.concurrency,
        storm_concurrency=args.storm_concurrency, client_cpu=args.client_cpu,
    )
    n_rooms = -(-p.clients // p.room_size)
    # Members 0..N-1 are the subscribers (member i in room i mod n_rooms); the next n_rooms
    # members, one per room, are the posters.
    async with twinhub(_options(args), subscribers=p.clients + n_rooms, rooms=n_rooms) as target:
        figures = await reconnect.measure(target, p, Progress())
    print(f"\nreconnect: {p.clients:,} members in {n_rooms} rooms of {p.room_size}, {p.rate:g} posts/s throughout; "
          f"all dropped after {p.before:g} s, away {p.offline:g} s, then all back at once "
          f"({'all at once' if not p.storm_concurrency else f'{p.storm_concurrency} at a time'})\n")
    keys = ["posts_acked_before_t0", "posts_missed_while_away", "replayed_events", "reconnected",
            "reconnect_failures", "joined_p50_s", "all_joined_s", "caught_up_s", "caught_up.p50_s", "caught_up.p99_s",
            "server_cpu_percent_during_storm", "database_cpu_percent_during_storm",
            "client_cpu_percent_during_storm", "other_processes_cpu_percent_during_storm", "posts_offered", "posts_sent", "skipped_sends", "posts_acked_total", "ack_latency.p50_ms", "ack_latency.p99_ms", "resyncs",
            "head_mismatches_after_replay", "seq_anomalies", "undelivered_after_drain", "members_behind_room_head",
            "unanswered_posts", "refused_posts", "closed_by_server", "server_rss_mb"]
    print(table(["", figures["server"]], [[k, pick(figures, k)] for k in keys]))
    lossless = not any(figures[k] for k in ("resyncs", "head_mismatches_after_replay", "seq_anomalies",
                                            "undelivered_after_drain", "members_behind_room_head",
                                            "unanswered_posts", "refused_posts", "reconnect_failures"))
    checks = [{"target": "reconnect: zero loss, zero duplicates (seqs follow on across the drop; each member ends on "
                         "its room's highest acknowledged seq; deliveries = acknowledged posts x members)",
               "met": lossless}]
    if p.clients >= RECONNECT_TARGET_CLIENTS:
        caught = figures["caught_up_s"]
        checks.append({"target": f"reconnect: {RECONNECT_TARGET_CLIENTS:,} members reconnected, resumed and caught up "
                                 f"within {RECONNECT_TARGET_S:g} s",
                       "caught_up_s": caught, "met": caught is not None and caught <= RECONNECT_TARGET_S})
    return {**figures, "checks": checks}


# -- ingest ------------------------------------------------------------------------------------

INGEST_ROWS = [
    ("posts/s acknowledged (persisted)", "posts_per_s"),
    ("post->ok p50 ms", "ack_latency.p50_ms"),
    ("post->ok p99 ms", "ack_latency.p99_ms"),
    ("post->ok max ms", "ack_latency.max_ms"),
    ("server: commits/s", "server_counters.commits_per_s"),
    ("server: posts per commit", "server_counters.posts_per_commit"),
    ("server CPU %", "server_cpu_percent"),
    ("server CPU us per post", "server_cpu_us_per_post"),
    ("PostgreSQL CPU us per post", "database_cpu_us_per_post"),
    *RESOURCE_ROWS[:-2],
    ("server RSS MB", "server_rss_mb"),
    ("refused posts", "refused_posts"),
    ("history: posts stored", "history_check.posts_in_history"),
    ("history: posts acknowledged", "history_check.posts_acked"),
    ("history: acked but missing", "history_check.acked_but_missing"),
    ("history: stored, not acked", "history_check.stored_but_not_acked"),
]


async def cmd_ingest(args: argparse.Namespace) -> dict[str, Any]:
    p = ingest.IngestParams(
        members=args.members, rooms=args.rooms, window=args.window, duration=args.duration, warmup=args.warmup,
        text_size=args.text_size, client_cpu=args.client_cpu, concurrency=args.concurrency,
    )
    # The post rate limits are raised by targets.twinhub (TWINHUB_POST_RATE/BURST = 100000 unless set).
    modes = {"group commit on": "1", "group commit off": "0"}
    steps = {}
    for label, value in modes.items():
        if label == "group commit off" and args.on_only:
            continue
        opts = _options(args, env=(("TWINHUB_GROUP_COMMIT", value),))
        async with twinhub(opts, subscribers=p.members, rooms=p.rooms) as target:
            steps[label] = await ingest.measure(target, p, Progress(), label)
    print(f"\ningest: {p.members} members posting to {p.rooms} room(s), window {p.window} each "
          f"({p.members * p.window:,} in flight), nobody subscribed, {p.duration:g} s per mode\n")
    print(fanout_table(steps, INGEST_ROWS))
    on, off = steps.get("group commit on"), steps.get("group commit off")
    ratio = round(on["posts_per_s"] / off["posts_per_s"], 2) if on and off and off["posts_per_s"] else None
    if ratio is not None:
        print(f"\ngroup commit on / off: x{ratio} posts/s")
    checks = [{"target": f"ingest: >= {INGEST_TARGET:,.0f} persisted posts/s with group commit on",
               "posts_per_s": on["posts_per_s"] if on else None,
               "met": bool(on) and on["posts_per_s"] >= INGEST_TARGET}]
    for label, s in steps.items():
        c = s["history_check"]
        checks.append({"target": f"ingest ({label}): the rooms' history holds exactly the posts acknowledged "
                                 "(count and seqs)", "acked": c["posts_acked"], "stored": c["posts_in_history"],
                       "met": c["ok"]})
    return {"steps": list(steps.values()), "on_off_ratio": ratio, "checks": checks}


COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "rooms": cmd_rooms, "reconnect": cmd_reconnect, "ingest": cmd_ingest,
}


def _positive_floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or a list of them: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
    return values


def add_parsers(sub: Any) -> None:
    """Add the `rooms`, `reconnect` and `ingest` subcommands to `sub` (argparse subparsers)."""
    two_cpus = (os.cpu_count() or 1) >= 2

    def common(sp: argparse.ArgumentParser, *, timeout: float, concurrency: int) -> None:
        sp.add_argument("--concurrency", type=int, default=concurrency,
                        help=f"connections being opened at a time (default {concurrency})")
        sp.add_argument("--server-cpu", type=int, default=0 if two_cpus else None, help="CPU of the server (default 0)")
        sp.add_argument("--client-cpu", type=int, default=1 if two_cpus else None,
                        help="CPU of the load generator (default 1)")
        sp.add_argument("--database-url", default=os.environ.get("TWINHUB_DATABASE_URL") or None,
                        help="PostgreSQL server for a throwaway database (default: the embedded PostgreSQL)")
        sp.add_argument("--database-cpu", type=int, default=None,
                        help="CPU of the embedded PostgreSQL (default: the server's, which it inherits)")
        sp.add_argument("--timeout", type=float, default=timeout, help=f"bound on the whole run, s (default {timeout:g})")
        sp.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                        help="load generator's event loop (auto: uvloop if installed)")
        sp.add_argument("--keep", action="store_true", help="keep the work folder (server log, data) after the run")

    d = rooms.RoomsParams()
    r = sub.add_parser("rooms", help="TwinHub: R rooms x M members, everyone subscribed to their room and posting")
    r.add_argument("--rooms", type=int, default=d.rooms, help=f"rooms, one space each (default {d.rooms})")
    r.add_argument("-m", "--members", type=int, default=d.members, help=f"members per room (default {d.members})")
    r.add_argument("-r", "--rate", type=_positive_floats, default=list(d.rates),
                   help="total offered posts/s, members in turn (open loop); a list (500,1000,2000) measures one "
                        "step each on the same server (default 1000: each member posts every 5 s, 9,000 "
                        "deliveries/s to the others)")
    r.add_argument("-d", "--duration", type=float, default=d.duration, help="measured s per step (default 10)")
    r.add_argument("--warmup", type=float, default=d.warmup, help="warm-up s per step (default 3)")
    r.add_argument("--text-size", type=int, default=d.text_size, help="characters per message text (default 100)")
    common(r, timeout=900, concurrency=d.concurrency)

    e = reconnect.ReconnectParams()
    c = sub.add_parser("reconnect", help="TwinHub: N members drop at once and reconnect at once, resuming with since")
    c.add_argument("-n", "--clients", type=int, default=e.clients, help=f"members (default {e.clients})")
    c.add_argument("--room-size", type=int, default=e.room_size, help=f"members per room (default {e.room_size})")
    c.add_argument("-r", "--rate", type=float, default=e.rate,
                   help=f"posts/s over all rooms, throughout (default {e.rate:g}: one post per room per second)")
    c.add_argument("--before", type=float, default=e.before, help="s of posts before the drop (default 3)")
    c.add_argument("--offline", type=float, default=e.offline, help="s of posts while everyone is away (default 3)")
    c.add_argument("--after", type=float, default=e.after, help="s of posts once everyone caught up (default 3)")
    c.add_argument("--catchup-timeout", type=float, default=e.catchup_timeout,
                   help="longest wait for everyone to catch up, s (default 60)")
    c.add_argument("--storm-concurrency", type=int, default=e.storm_concurrency,
                   help="reconnections at a time (default 0: all at once)")
    common(c, timeout=900, concurrency=e.concurrency)

    g = ingest.IngestParams()
    i = sub.add_parser("ingest", help="TwinHub: persisted posts/s with every ok after commit; group commit on, then off")
    i.add_argument("-n", "--members", type=int, default=g.members, help=f"posting connections (default {g.members})")
    i.add_argument("--rooms", type=int, default=g.rooms, help=f"rooms they post to (default {g.rooms})")
    i.add_argument("-w", "--window", type=int, default=g.window, help=f"posts in flight per member (default {g.window})")
    i.add_argument("-d", "--duration", type=float, default=g.duration, help="measured s per mode (default 10)")
    i.add_argument("--warmup", type=float, default=g.warmup, help="warm-up s per mode (default 3)")
    i.add_argument("--text-size", type=int, default=g.text_size, help="characters per message text (default 100)")
    i.add_argument("--on-only", action="store_true", help="group commit on only (skip the off run)")
    common(i, timeout=900, concurrency=g.concurrency)

