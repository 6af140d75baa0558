"""Command line: `python -m loadtests {fanout,baseline-broadcast,compare,idle,mail,feed,scaleout,peers,rooms,reconnect,
ingest,soak,page} [options]`.

Each command starts its server(s) as child processes (pinned to --server-cpu), runs the load
from this process (pinned to --client-cpu), prints a progress line and the figures, checks them
against the project's targets, writes loadtests/results/<scenario>-<time>.json, and stops every
process it started — also on error, time-out (--timeout) or Ctrl-C.

`scaleout` (loadtests/scenarios/scaleout.py) runs the fan-out against TwinHub as 1, 2 or 4
`serve` processes on ports of their own, sharing one PostgreSQL and one Redis
(`--processes 1,2,4`: subscribers spread evenly, the publisher on the first process), then the
Redis hop (`--hop`, on by default): one process on the in-process bus against two over Redis with
the publisher on A and every subscriber on B, in closed loop (`--window`) and open loop
(`--hop-rate`). Server process i is pinned to `--server-cpus[i mod len]` (default 0,1); the load
generator, PostgreSQL and Redis run on every CPU unless `--client-cpus`/`--services-cpus` say
otherwise.

`peers` (loadtests/scenarios/peers.py, its options in peers_cli.py) runs the same fan-out against
TwinHub and each peer of loadtests/peers/ in turn: closed loop, then an open-loop sweep; one
Markdown table with ratios, and PNG plots next to the JSON result.

`rooms`, `reconnect` and `ingest` (loadtests/scenarios/rooms.py, reconnect.py, ingest.py; their
options, tables and targets in chat_cli.py): many rooms all chatting at once, a reconnect storm
resuming with `since`, and persisted posts/s with group commit on and off.

`soak` (loadtests/scenarios/soak.py): N members for minutes under posts, mail, feed traffic and
churn (members dropping and resuming with `since`); whether the server's RSS, file descriptors,
PostgreSQL connections and tasks stay flat, p99 per window, and zero loss across the reconnects.

`page` (loadtests/scenarios/page.py): the browser page in Chromium over loopback, cold cache —
the login form and the Start screen, requests and bytes, opening rooms, scrolling a room of 5,000
messages (frame times, long tasks, message elements held), a second visit; `--before PATH`
measures an older checkout side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from realtime.policy import Role

from .clients import PARSER
from .report import RESOURCE_ROWS, Progress, fanout_table, machine, table, write_result
from .scenarios import chat_cli, fanout, feed, idle, mail, page, peers_cli, scaleout, soak
from .scenarios.targets import ServerOptions, baseline, twinhub

# The project's targets for one server process (docs/performance.md).
P99_TARGET_MS = 50.0
P99_TARGET_LOAD = 20_000  # deliveries/s offered
IDLE_TARGET_KB = 25.0
IDLE_TARGET_CONNECTIONS = 5000
MAIL_TARGET_RATE = 2000.0  # committed mails/s, each to 5 recipients, 1,000 members connected
MAIL_P99_TARGET_MS = 100.0  # send -> delivery, at MAIL_TARGET_RATE offered
MAIL_TARGET_MEMBERS = 1000
MAIL_TARGET_RECIPIENTS = 5
MAIL_KEPT_UP = 0.99  # open loop: committed/offered at which the server counts as keeping up
SCALE_OUT_TARGET = 1.6  # 2 processes: deliveries/s at least this many times one process's (2 cores)
HOP_P99_TARGET = 2.0  # p99 with the Redis hop (publisher on A, subscribers on B) / one process's p99


def _event_loop(choice: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    if choice in ("auto", "uvloop"):
        try:
            import uvloop

            return "uvloop", uvloop.new_event_loop
        except ImportError:
            if choice == "uvloop":
                raise SystemExit("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
    return "asyncio", None


def _fanout_params(args: argparse.Namespace) -> fanout.FanoutParams:
    return fanout.FanoutParams(
        subscribers=args.subscribers, window=args.window, rate=args.rate, duration=args.duration,
        warmup=args.warmup, text_size=args.text_size, deflate=args.deflate, client_cpu=args.client_cpu,
        concurrency=args.concurrency, lean=args.lean, latency_every=args.latency_every,
    )


def _server_options(args: argparse.Namespace) -> ServerOptions:
    return ServerOptions(
        server_cpu=args.server_cpu, database_url=getattr(args, "database_url", None), keep=args.keep,
        database_cpu=getattr(args, "database_cpu", None),
        deflate=getattr(args, "deflate", False),
    )


NOISY_PERCENT = 15.0  # other processes' CPU during a measurement above which its figures are suspect


def _warn_if_noisy(figures: dict[str, Any]) -> None:
    others = figures.get("other_processes_cpu_percent") or 0.0
    if others > NOISY_PERCENT:
        print(f"warning: [{figures['server']}] other processes used {others:.0f}% of a core during the "
              "measurement; these figures are noisy, repeat on a quiet machine")
    if figures.get("client_bound"):
        print(f"warning: [{figures['server']}] the load generator used {figures['client_cpu_percent']:.0f}% of its "
              "core: the server may be faster than measured")


def _verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def _p99_check(figures: dict[str, Any]) -> dict[str, Any] | None:
    offered = figures.get("offered_deliveries_per_s")
    p99 = figures["latency"].get("p99_ms")
    if offered is None or offered < P99_TARGET_LOAD or p99 is None:
        return None
    return {"target": f"p99 <= {P99_TARGET_MS:g} ms at >= {P99_TARGET_LOAD:,} deliveries/s offered",
            "p99_ms": p99, "met": p99 <= P99_TARGET_MS}


async def _one_fanout(args: argparse.Namespace, start: Any, scenario: str) -> dict[str, Any]:
    p, progress = _fanout_params(args), Progress()
    async with start(_server_options(args), subscribers=p.subscribers, rooms=1) as target:
        figures = await fanout.measure(target, p, progress)
    print(f"\n{scenario}: {figures['subscribers']:,} subscribers, {figures['mode']}, {figures['measured_s']} s\n")
    print(fanout_table({figures["server"]: figures}))
    _warn_if_noisy(figures)
    return {**figures, "checks": [c for c in [_p99_check(figures)] if c]}


async def cmd_fanout(args: argparse.Namespace) -> dict[str, Any]:
    return await _one_fanout(args, twinhub, "fanout")


async def cmd_baseline(args: argparse.Namespace) -> dict[str, Any]:
    return await _one_fanout(args, baseline, "baseline-broadcast")


async def cmd_compare(args: argparse.Namespace) -> dict[str, Any]:
    p, opts, progress = _fanout_params(args), _server_options(args), Progress()
    results = {}
    for start in (baseline, twinhub):
        async with start(opts, subscribers=p.subscribers, rooms=1) as target:
            results[target.name] = await fanout.measure(target, p, progress)
    base, hub = results["websockets.broadcast"], results["TwinHub"]
    print(f"\ncompare: {p.subscribers:,} subscribers, {hub['mode']}, {p.duration:g} s each, same load generator\n")
    print(fanout_table(results))
    for figures in results.values():
        _warn_if_noisy(figures)
    checks = []
    if not p.rate:  # open loop offers both the same load: their throughputs say nothing
        checks.append({
            "target": "TwinHub deliveries/s >= websockets.broadcast deliveries/s (same run)",
            "twinhub": hub["deliveries_per_s"], "baseline": base["deliveries_per_s"],
            "met": hub["deliveries_per_s"] >= base["deliveries_per_s"],
        })
    checks += [c for c in [_p99_check(hub)] if c]
    return {"results": results, "checks": checks}


async def cmd_idle(args: argparse.Namespace) -> dict[str, Any]:
    p = idle.IdleParams(
        connections=args.connections, rooms=args.rooms, settle=args.settle, client_cpu=args.client_cpu,
        concurrency=args.concurrency,
    )
    start = baseline if args.server == "baseline" else twinhub
    async with start(_server_options(args), subscribers=p.connections, rooms=p.rooms) as target:
        figures = await idle.measure(target, p, Progress())
    print(f"\nidle: {figures['connections']:,} subscribed connections over {p.rooms} room(s)\n")
    rows = [[k, v] for k, v in figures.items() if k not in ("params", "server", "error_codes")]
    print(table(["", figures["server"]], rows))
    checks = []
    if args.server == "twinhub" and figures["connections"] >= IDLE_TARGET_CONNECTIONS:
        checks.append({"target": f"{IDLE_TARGET_CONNECTIONS:,} idle authenticated connections at <= {IDLE_TARGET_KB:g} KB RSS each",
                       "kb_per_connection": figures["kb_per_connection"],
                       "met": figures["kb_per_connection"] <= IDLE_TARGET_KB})
    return {**figures, "checks": checks}


MAIL_ROWS = [
    ("committed mails/s (ok received)", "mails_per_s"),
    ("  offered mails/s (open loop)", "offered_mails_per_s"),
    ("  server: mails committed/s (/metrics)", "commits.server_mails_committed_per_s"),
    ("deliveries/s (mail.received)", "deliveries_per_s"),
    ("events per WS message", "events_per_message"),
    ("send->delivery p50 ms", "latency.p50_ms"),
    ("send->delivery p99 ms", "latency.p99_ms"),
    ("send->delivery max ms", "latency.max_ms"),
    ("send->ok p50 ms", "ack_latency.p50_ms"),
    ("send->ok p99 ms", "ack_latency.p99_ms"),
    ("group commits/s (distinct created_at)", "commits.group_commits_per_s"),
    ("mails per group commit", "commits.mails_per_group_commit"),
    ("DB rows written/s", "commits.db_rows_written_per_s"),
    ("hub: gaps filled from the DB /s", "commits.hub_gaps_filled_per_s"),
    ("WAL KB per mail", "commits.wal_kb_per_mail"),
    ("server CPU %", "server_cpu_percent"),
    ("database CPU % (embedded PostgreSQL)", "database_cpu_percent"),
    ("server CPU us per mail", "server_cpu_us_per_mail"),
    ("server + DB CPU us per mail", "server_and_db_cpu_us_per_mail"),
    ("load generator CPU %", "client_cpu_percent"),
    ("interrupts CPU % (loopback TCP)", "interrupts_cpu_percent"),
    ("other processes CPU %", "other_processes_cpu_percent"),
    ("server RSS MB", "server_rss_mb"),
    ("skipped sends (open loop)", "skipped_sends"),
]


def _mail_params(args: argparse.Namespace) -> mail.MailParams:
    return mail.MailParams(
        members=args.members, recipients=args.recipients, windows=tuple(args.window), rates=tuple(args.rate or ()),
        duration=args.duration, warmup=args.warmup, text_size=args.text_size, client_cpu=args.client_cpu,
        concurrency=args.concurrency, seed=args.seed,
    )


def _mail_checks(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The TwinMail targets, where the run's shape is the target's (1,000 members, 5 recipients)."""
    if figures["members"] < MAIL_TARGET_MEMBERS or figures["recipients_per_mail"] != MAIL_TARGET_RECIPIENTS:
        return []
    checks = []
    if figures["mode"] == "closed loop":
        best = figures["best_mails_per_s"]
        checks.append({"target": f">= {MAIL_TARGET_RATE:,.0f} committed mails/s (closed loop, best step: {figures['best_step']})",
                       "mails_per_s": best, "met": best >= MAIL_TARGET_RATE})
    for step in figures["steps"]:
        offered = step.get("offered_mails_per_s")
        if offered is None or offered < MAIL_TARGET_RATE:
            continue
        kept_up = step["mails_per_s"] >= MAIL_KEPT_UP * offered and not step["skipped_sends"]
        checks.append({"target": f">= {MAIL_TARGET_RATE:,.0f} committed mails/s (open loop {offered:g}/s: committed "
                                 f">= {MAIL_KEPT_UP:.0%} of offered, no send skipped)",
                       "mails_per_s": step["mails_per_s"], "met": kept_up})
        p99 = step["latency"].get("p99_ms")
        checks.append({"target": f"send->delivery p99 <= {MAIL_P99_TARGET_MS:g} ms at {offered:g} mails/s offered",
                       "p99_ms": p99, "met": p99 is not None and p99 <= MAIL_P99_TARGET_MS})
    return checks


async def cmd_mail(args: argparse.Namespace) -> dict[str, Any]:
    p = _mail_params(args)
    opts = dataclasses.replace(_server_options(args), env=mail.SERVER_ENV)
    async with twinhub(opts, subscribers=p.members, rooms=1, role=Role.TEACHER_MEMBER) as target:
        figures = await mail.measure(target, p, Progress())
    print(f"\nmail: {figures['members']:,} members, {p.recipients} recipients per mail, {figures['mode']}, "
          f"{p.duration:g} s per step\n")
    print(fanout_table({s["step"]: s for s in figures["steps"]}, MAIL_ROWS, ratio=False))
    print()
    totals = ["mails_acked_total", "refused_sends", "unanswered_after_drain", "undelivered_after_drain",
              "sent_events_missing", "seq_anomalies", "closed_by_server", "server_rss_peak_mb"]
    print(table(["whole run", figures["server"]], [[k, figures[k]] for k in totals]))
    for step in figures["steps"]:
        _warn_if_noisy({**step, "server": f"{step['server']}, {step['step']}"})
    return {**figures, "checks": _mail_checks(figures)}


FEED_ROWS = [
    ("posts/s acknowledged", "posts_per_s"),
    ("  offered posts/s (open loop)", "offered_posts_per_s"),
    ("feed deliveries/s", "deliveries_per_s"),
    ("  expected (mix x areas x rate)", "expected_deliveries_per_s"),
    ("events per WS message", "events_per_message"),
    ("post->feed delivery p50 ms", "latency.p50_ms"),
    ("post->feed delivery p99 ms", "latency.p99_ms"),
    ("post->feed delivery max ms", "latency.max_ms"),
    ("post->ok p50 ms", "ack_latency.p50_ms"),
    ("post->ok p99 ms", "ack_latency.p99_ms"),
    ("server: events reaching the hub /s", "server_counters.hub_events_per_s"),
    ("server: frames queued to sockets /s", "server_counters.queued_deliveries_per_s"),
    ("server: deliveries per event", "server_counters.deliveries_per_event"),
    ("server: commits/s", "server_counters.commits_per_s"),
    ("server: posts per commit", "server_counters.posts_per_commit"),
    ("server: gaps filled from the DB /s", "server_counters.gaps_filled_per_s"),
    ("server CPU %", "server_cpu_percent"),
    ("server CPU us per delivery", "server_cpu_us_per_delivery"),
    ("server CPU us per post", "server_cpu_us_per_post"),
    *RESOURCE_ROWS,
    ("skipped sends (open loop)", "skipped_sends"),
]


def _feed_checks(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """No numeric target for this scenario: the checks are about correctness."""
    c = figures["correctness"]
    return [
        {"target": "feed: each role received exactly the records of the areas it may read (per role, per area, "
                   "per member); none of the teachers' room reached a pupil or a visitor",
         "forbidden_deliveries": c["forbidden_deliveries"], "members_with_wrong_records": c["members_with_wrong_records"],
         "met": c["ok"]},
        {"target": "feed: every acknowledged post answered, seqs only go up (teachers: without a hole), no socket closed",
         "seq_anomalies": figures["seq_anomalies"], "closed_by_server": figures["closed_by_server"],
         "met": not figures["seq_anomalies"] and not figures["closed_by_server"]
         and not figures["unanswered_after_drain"] and not figures["refused_posts"]},
    ]


async def cmd_feed(args: argparse.Namespace) -> dict[str, Any]:
    if len(args.mix) != 3:
        raise SystemExit("--mix: three shares, of teachers, pupils and visitors (e.g. 10,80,10)")
    p = feed.FeedParams(
        members=args.members, mix=tuple(args.mix), rate=args.rate, posters=args.posters, duration=args.duration,
        warmup=args.warmup, text_size=args.text_size, client_cpu=args.client_cpu, concurrency=args.concurrency,
        seed=args.seed, py_spy=args.py_spy,
    )
    roles = feed.member_roles(p) + feed.poster_roles(p)
    async with twinhub(_server_options(args), subscribers=len(roles), rooms=1, roles=roles,
                       areas=tuple(feed.POSTING)) as target:
        figures = await feed.measure(target, p, Progress())
    by_role = figures["members_by_role"]
    print(f"\nfeed: {figures['members']:,} members ({', '.join(f'{n:,} {r}' for r, n in by_role.items())}), "
          f"{figures['mode']} over {len(feed.AREAS)} areas, {p.posters} posters per area "
          f"(members not following the feed), {figures['measured_s']} s\n")
    print(fanout_table({figures["server"]: figures}, FEED_ROWS))
    c = figures["correctness"]
    rows = []
    for role, r in c["by_role"].items():
        cells = [f"{v['received']:,} / {v['expected']:,}" + ("" if v["ok"] else " !") for v in r["areas"].values()]
        rows.append([f"{role} x {r['members']:,}", *cells, "yes" if r["ok"] else "NO"])
    print("\nrecords received / expected after the drain (expected: members x posts acked in the area, "
          "or 0 where the role may not read):\n")
    print(table(["role", *(a.value for a in feed.AREAS), "exact"], rows))
    print()
    totals = ["posts_acked_total", "refused_posts", "unanswered_after_drain", "seq_anomalies", "closed_by_server",
              "latency_unmatched", "server_rss_peak_mb"]
    checks = {k: c[k] for k in ("forbidden_deliveries", "teachers_room_to_pupils_or_visitors",
                                "members_with_wrong_records", "records_in_wrong_area")}
    print(table(["whole run", figures["server"]], [[k, figures[k]] for k in totals] + [[k, v] for k, v in checks.items()]))
    if "profile" in figures:
        prof = figures["profile"]
        print(f"\nserver profile while measuring ({prof.get('samples', 0):,} samples at 200/s): "
              + (", ".join(f"{k} {v}%" for k, v in prof.get("share_percent", {}).items()) or prof.get("error", "")))
    _warn_if_noisy(figures)
    return {**figures, "checks": _feed_checks(figures)}


def _scaleout_checks(figures: dict[str, Any]) -> list[dict[str, Any]]:
    steps, summary = figures["steps"], figures["summary"]
    checks = []
    scale = summary.get("scale_out", {})
    if "1" in scale and "2" in scale:
        ratio = scale["2"]["ratio_to_1_process_of_means"]
        params = figures["params"]
        quota = params.get("server_cpu_quota")
        cpus = (f"each server process capped at {quota:g} core, the load generator and services on the rest"
                if quota else f"load generator on the same {len(scaleout.ALL_CPUS)} CPUs")
        posters = "posters spread over the processes" if params.get("spread_publishers") else "posters on process 0"
        checks.append({"target": f"2 processes deliver >= {SCALE_OUT_TARGET:g}x one process's deliveries/s "
                                 f"({steps['p2']['mode']}, mean of {len(scale['2']['deliveries_per_s_each_round'])} "
                                 f"round(s) in the same run; {cpus}; {posters})",
                       "one_process": scale["1"]["deliveries_per_s_mean"],
                       "two_processes": scale["2"]["deliveries_per_s_mean"],
                       "ratio": ratio, "met": ratio is not None and ratio >= SCALE_OUT_TARGET})
    for key, s in summary.items():
        if key.startswith("hop_"):
            ratio = s["p99_ratio_hop_to_1_process"]
            checks.append({"target": f"p99 with the Redis hop within {HOP_P99_TARGET:g}x of one process's ({s['mode']})",
                           "ratio": ratio, "met": ratio is not None and ratio <= HOP_P99_TARGET})
    bad = {name: {k: r[k] for k in ("seq_anomalies", "undelivered_after_drain", "closed_by_server", "refused_posts")}
           for name, r in steps.items()
           if r["seq_anomalies"] or r["undelivered_after_drain"] or r["closed_by_server"] or r["refused_posts"]}
    checks.append({"target": "every acknowledged post reached every subscriber once, in seq order; no socket closed, "
                             "no post refused (every step)", "failures": bad, "met": not bad})
    return checks


async def cmd_scaleout(args: argparse.Namespace) -> dict[str, Any]:
    p = scaleout.ScaleoutParams(
        subscribers=args.subscribers, processes=tuple(args.processes), rounds=args.rounds, window=args.window,
        publishers=args.publishers, hop=args.hop,
        hop_rate=args.hop_rate or None, duration=args.duration, warmup=args.warmup, text_size=args.text_size,
        server_cpus=args.server_cpus, client_cpus=args.client_cpus, services_cpus=args.services_cpus,
        database_url=args.database_url, redis_url=args.redis_url, concurrency=args.concurrency,
        py_spy=args.py_spy, keep=args.keep, window_on_delivery=args.window_on == "delivery",
        quiet_wait=args.quiet_wait, database_dir=args.database_dir, lean=args.lean, latency_every=args.latency_every,
        server_cpu_quota=args.server_cpu_quota, spread_publishers=args.spread_publishers,
    )
    figures = await scaleout.measure(p, Progress())
    print("\n" + scaleout.tables(figures))
    for r in figures["steps"].values():
        _warn_if_noisy({**r, "server": r["step"]})
        if r.get("machine_busy_percent_of_all_cpus", 0) >= 95:
            print(f"note: [{r['step']}] the machine was {r['machine_busy_percent_of_all_cpus']:.0f}% busy "
                  "(all CPUs): the figures are bound by the CPUs the servers and the load generator share")
        for k, prof in enumerate(r.get("profiles", [])):
            share = prof.get("share_percent", {})
            print(f"profile [{r['step']}] process #{k} (pid {r['servers'][k]['pid']}), "
                  f"{prof.get('samples', 0):,} samples: "
                  + (", ".join(f"{k} {v}%" for k, v in share.items() if v) or prof.get("error", "")))
    return {**figures, "checks": _scaleout_checks(figures)}


COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "fanout": cmd_fanout, "baseline-broadcast": cmd_baseline, "compare": cmd_compare, "idle": cmd_idle,
    "mail": cmd_mail, "feed": cmd_feed, "scaleout": cmd_scaleout,
}
COMMANDS["peers"] = peers_cli.command
COMMANDS["soak"] = soak.command
COMMANDS["page"] = page.command
COMMANDS.update(chat_cli.COMMANDS)


def _numbers(kind: type) -> Callable[[str], list[Any]]:
    """An argparse type: one number or a comma-separated list of them ("100,200,400")."""

    def parse(text: str) -> list[Any]:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__} or a list of them: {text!r}") from None
        if not values or any(v <= 0 for v in values):
            raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
        return values

    return parse


def _cpus(text: str) -> tuple[int, ...] | None:
    """An argparse type: "none" (not pinned: every CPU) or a comma-separated list of CPUs ("0,1")."""
    if text.strip().lower() in ("none", "all", ""):
        return None
    try:
        cpus = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of CPUs: {text!r}") from None
    if not cpus or any(c < 0 for c in cpus):
        raise argparse.ArgumentTypeError(f"not a list of CPUs: {text!r}")
    return cpus


def parser() -> argparse.ArgumentParser:
    two_cpus = (os.cpu_count() or 1) >= 2
    p = argparse.ArgumentParser(prog="python -m loadtests", description="TwinHub load tests")
    sub = p.add_subparsers(dest="scenario", required=True)

    def common(sp: argparse.ArgumentParser, *, database: bool, timeout: float, concurrency: int) -> None:
        sp.add_argument("--concurrency", type=int, default=concurrency,
                        help=f"connections being opened at a time: handshake, hello, subscribe (default {concurrency})")
        sp.add_argument("--server-cpu", type=int, default=0 if two_cpus else None, help="CPU the server runs on (default 0)")
        sp.add_argument("--client-cpu", type=int, default=1 if two_cpus else None,
                        help="CPU the load generator runs on (default 1)")
        sp.add_argument("--timeout", type=float, default=timeout, help=f"bound on the whole run, s (default {timeout:g})")
        sp.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                        help="load generator's event loop (auto: uvloop if installed)")
        sp.add_argument("--keep", action="store_true", help="keep the work folder (server log, data) after the run")
        if database:
            sp.add_argument("--database-url", default=os.environ.get("TWINHUB_DATABASE_URL") or None,
                            help="PostgreSQL server on which each run creates (and drops) a throwaway database "
                                 "(TWINHUB_DATABASE_URL); default: the embedded PostgreSQL in a temporary folder")
            sp.add_argument("--database-cpu", type=int, default=None,
                            help="CPU the embedded PostgreSQL runs on (default: the server's, which it inherits); "
                                 "e.g. 1 to give the server its core alone, as a separate database server would")

    def fanout_options(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-c", "--subscribers", type=int, default=1000, help="subscribers in the room (default 1000)")
        sp.add_argument("-w", "--window", type=int, default=50, help="posts in flight, closed loop (default 50)")
        sp.add_argument("-r", "--rate", type=float, help="open loop: offered posts per second (overrides --window)")
        sp.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds (default 10)")
        sp.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (default 3)")
        sp.add_argument("--text-size", type=int, default=100, help="characters per message text (default 100)")
        sp.add_argument("--deflate", action="store_true",
                        help="clients offer permessage-deflate as browsers do; the server accepts it "
                             "(TwinHub: TWINHUB_WS_DEFLATE=1)")
        sp.add_argument("--lean", action="store_true",
                        help="subscribers check event messages on their bytes instead of parsing them, but 1 in "
                             "--latency-every, which record latencies (for thousands of subscribers)")
        sp.add_argument("--latency-every", type=int, default=10,
                        help="with --lean: 1 subscriber in this many parses fully (default 10)")

    f = sub.add_parser("fanout", help="TwinHub: C subscribers in one room, one publisher")
    fanout_options(f)
    common(f, database=True, timeout=600, concurrency=100)
    b = sub.add_parser("baseline-broadcast", help="the same load against a raw websockets.broadcast() server")
    fanout_options(b)
    common(b, database=False, timeout=600, concurrency=100)
    c = sub.add_parser("compare", help="baseline-broadcast then fanout, same parameters, side by side")
    fanout_options(c)
    common(c, database=True, timeout=1200, concurrency=100)
    i = sub.add_parser("idle", help="TwinHub: N authenticated idle connections, RSS per connection")
    i.add_argument("-n", "--connections", type=int, default=5000, help="connections, one user each (default 5000)")
    i.add_argument("--rooms", type=int, default=1,
                   help="spread the connections over this many spaces of one room each (default 1: one room)")
    i.add_argument("--server", choices=["twinhub", "baseline"], default="twinhub",
                   help="baseline: the websockets.broadcast peer, for reference (default twinhub)")
    i.add_argument("--settle", type=float, default=5.0, help="seconds to wait before each RSS reading (default 5)")
    common(i, database=True, timeout=900, concurrency=200)
    m = sub.add_parser("mail", help="TwinHub: N members each following their mailbox, each sending mail to R others")
    m.add_argument("-n", "--members", type=int, default=1000,
                   help="connected members of one project, teachers, one connection each (default 1000)")
    m.add_argument("--recipients", type=int, default=5, help="recipients per mail (default 5)")
    m.add_argument("-w", "--window", type=_numbers(int), default=[200],
                   help="closed loop: sends in flight, a new one on each answer; a list (100,200,400) "
                        "measures one step per window on the same server (default 200)")
    m.add_argument("-r", "--rate", type=_numbers(float),
                   help="open loop: offered mails per second (overrides --window); a list measures one step each")
    m.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds per step (default 10)")
    m.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each step's measurement (default 3)")
    m.add_argument("--text-size", type=int, default=100, help="characters per mail text (default 100)")
    m.add_argument("--seed", type=int, default=1, help="seed of the recipients' random draw (default 1)")
    common(m, database=True, timeout=600, concurrency=100)
    fd = sub.add_parser("feed", help="TwinHub: N members of mixed roles following one project's activity feed")
    fd.add_argument("-n", "--members", type=int, default=2000,
                    help="connected members of one project, one connection each, all following its feed (default 2000)")
    fd.add_argument("--mix", type=_numbers(float), default=[10.0, 80.0, 10.0],
                    help="shares of teachers, pupils and visitors among them, e.g. 10,80,10 (default)")
    fd.add_argument("-r", "--rate", type=float, default=200.0,
                    help="open loop: offered posts per second, areas in turn (default 200)")
    fd.add_argument("--posters", type=int, default=4,
                    help="members posting in each area, in turn, besides the N (they do not follow the feed; default 4)")
    fd.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds (default 10)")
    fd.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring (default 3)")
    fd.add_argument("--text-size", type=int, default=100, help="characters per message text (default 100)")
    fd.add_argument("--seed", type=int, default=1, help="seed of the roles' shuffle (default 1)")
    fd.add_argument("--py-spy", action="store_true",
                    help="sample the server with py-spy while measuring and count the samples in the hub's "
                         "fan-out loop and in encoding (py-spy must be installed)")
    common(fd, database=True, timeout=600, concurrency=100)
    so = sub.add_parser(
        "scaleout", help="TwinHub as 1, 2, 4 processes over Redis (fan-out, subscribers spread), and the Redis hop",
        description="The fan-out against TwinHub run as N separate `serve` processes on ports of their own, "
                    "sharing one PostgreSQL and one Redis (started once for the run; not `serve --workers`, "
                    "whose shared port leaves the spread to the kernel). Scale-out steps (closed loop): "
                    "1 process on the in-process bus, then N processes over Redis with the subscribers "
                    "spread evenly (subscriber i on process i mod N) and the publisher on process 0. Hop "
                    "steps (--hop): 1 process on the in-process bus, 1 process with the Redis bus, and 2 "
                    "processes with the publisher on A and every subscriber on B, in closed loop and in "
                    "open loop (--hop-rate). Targets: 2 processes >= 1.6x one process's deliveries/s; "
                    "p99 with the hop within 2x of one process's. About 4.5 minutes with the defaults on a quiet "
                    "machine (each step first waits, up to --quiet-wait s, for the machine to be under 10% busy).")
    so.add_argument("-c", "--subscribers", type=int, default=1000, help="subscribers in the room (default 1000)")
    so.add_argument("--processes", type=_numbers(int), default=[1, 2, 4],
                    help="scale-out steps: server processes in each (default 1,2,4; 1 is the in-process bus)")
    so.add_argument("--rounds", type=int, default=2,
                    help="run the scale-out steps this many times, every other round in reverse order "
                         "(1,2,4 then 4,2,1; default 2); the ratios are of the means")
    so.add_argument("-w", "--window", type=int, default=200,
                    help="closed loop: posts in flight (default 200: at 50 one process is bound by the window, "
                         "not by its CPU)")
    so.add_argument("--window-on", choices=["delivery", "ok"], default="delivery",
                    help="closed loop: a post leaves the window once delivered to every subscriber (default: the "
                         "loop closes over the Redis hop and the slowest process too) or once answered (as fanout)")
    so.add_argument("--quiet-wait", type=float, default=60.0,
                    help="before each step, wait up to this many seconds for the machine to be under 10%% busy "
                         "(default 60)")
    so.add_argument("--publishers", type=int, default=4,
                    help="publisher connections (distinct members), all posting through process 0, the window "
                         "split between them (default 4: one session takes at most 64 posts at a time)")
    so.add_argument("--lean", action=argparse.BooleanOptionalAction, default=True,
                    help="subscribers check each message of events on its bytes (count, first and last seq) "
                         "instead of parsing it, but 1 in --latency-every, which parse fully and record every "
                         "delivery's latency (default on; --no-lean: every subscriber parses fully, as fanout's)")
    so.add_argument("--latency-every", type=int, default=10,
                    help="with --lean: 1 subscriber in this many on each process parses fully and records "
                         "latencies (default 10: 100 of 1,000)")
    so.add_argument("--hop", action=argparse.BooleanOptionalAction, default=True,
                    help="also measure the Redis hop: publisher on A, every subscriber on B (default on)")
    so.add_argument("--hop-rate", type=float, default=20.0,
                    help="hop steps in open loop too, at this many posts/s (default 20: 20,000 deliveries/s "
                         "with 1,000 subscribers, the p99 target's load; 0: closed loop only)")
    so.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds per step (default 10)")
    so.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each measurement (default 3)")
    so.add_argument("--text-size", type=int, default=100, help="characters per message text (default 100)")
    so.add_argument("--server-cpus", type=_cpus, default=(0, 1) if two_cpus else None,
                    help="server process i runs on CPU server_cpus[i mod len] (default 0,1; none: not pinned)")
    so.add_argument("--spread-publishers", action="store_true",
                    help="scale-out steps: publisher j posts through process j mod N, as behind a load balancer "
                         "(default: every publisher through process 0)")
    so.add_argument("--server-cpu-quota", type=float, default=None,
                    help="cap each server process at this many cores (a cgroup CPU quota, e.g. 0.4): N processes "
                         "get N equal slices and the load generator the rest, as if each process had a core of "
                         "its own (default: no cap)")
    so.add_argument("--client-cpus", type=_cpus, default=None,
                    help="CPUs of the load generator (default none: every CPU, shared with the servers)")
    so.add_argument("--services-cpus", type=_cpus, default=None,
                    help="CPUs of the embedded PostgreSQL and Redis (default none: every CPU)")
    so.add_argument("--database-url", default=os.environ.get("TWINHUB_DATABASE_URL") or None,
                    help="PostgreSQL server on which the run creates (and drops) a throwaway database; "
                         "default: an embedded PostgreSQL in a temporary folder, started once for all steps")
    so.add_argument("--database-dir", type=Path, default=None,
                    help="folder for the embedded PostgreSQL's data (default: the run's temporary folder, on "
                         "disk); e.g. /dev/shm to take the disk's fsync stalls out of the latencies")
    so.add_argument("--redis-url", default=None,
                    help="an existing Redis (each step uses a fresh TWINHUB_REDIS_PREFIX); default: a throwaway "
                         "Redis-compatible server (realtime.run.embedded_redis), started once for all steps")
    so.add_argument("--py-spy", action="store_true",
                    help="sample every server process with py-spy while measuring (costs CPU: profile in a "
                         "separate run from the one whose figures you keep)")
    so.add_argument("--concurrency", type=int, default=100,
                    help="connections being opened at a time, over all processes (default 100)")
    so.add_argument("--timeout", type=float, default=900, help="bound on the whole run, s (default 900)")
    so.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                    help="load generator's event loop (auto: uvloop if installed)")
    so.add_argument("--keep", action="store_true", help="keep the work folder (server logs, data, profiles)")
    peers_cli.add_parser(sub)
    chat_cli.add_parsers(sub)
    soak.add_parser(sub)
    page.add_parser(sub)
    return p


async def _bounded(args: argparse.Namespace) -> dict[str, Any]:
    """The scenario, within --timeout; SIGINT or SIGTERM cancels it (its servers are stopped on
    the way out), even where SIGINT is ignored, as for a job started in the background."""
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        async with asyncio.timeout(args.timeout) as bound:
            return await COMMANDS[args.scenario](args)
    except TimeoutError:
        if bound.expired():
            raise _RunTimedOut from None
        raise


class _RunTimedOut(Exception):
    """The whole run took longer than --timeout."""


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    loop_name, loop_factory = _event_loop(args.loop)
    host = machine()
    print(f"load generator: picows on {loop_name}, {PARSER} parser, pid {os.getpid()}; commit {host['commit']}",
          file=sys.stderr)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            figures = runner.run(_bounded(args))
    except _RunTimedOut:
        print(f"\nstopped: the run took longer than --timeout {args.timeout:g} s", file=sys.stderr)
        return 2
    except (RuntimeError, TimeoutError, OSError) as exc:  # a server did not start, connections failed
        print(f"\nfailed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    params = {k: v for k, v in vars(args).items() if k not in ("database_url", "redis_url")}
    params["database"] = "url" if getattr(args, "database_url", None) else "embedded"
    if args.scenario == "scaleout":
        params["redis"] = "url" if args.redis_url else "embedded"
    params["event_loop"] = loop_name
    params["json_parser"] = PARSER
    for check in figures.get("checks", []):
        print(f"target: {check['target']}: {_verdict(check['met'])}")
    result = getattr(args, "result", None)
    path = write_result(args.scenario, params, figures, host, Path(result) if result else None)
    print(f"\nresult written to {path}")
    if args.scenario == "peers":
        peers_cli.after_write(args, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
