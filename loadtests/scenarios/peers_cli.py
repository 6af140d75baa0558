"""The `python -m loadtests peers` subcommand: its options, what it prints, and its plots.

Kept out of loadtests/__main__.py, which only registers it (add_parser, command, after_write).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..peers import install
from ..report import Progress
from . import peers, peers_table
from .peer_servers import SERVERS, ensure_installed

NOISY_PERCENT = 15.0  # as __main__'s: other processes' CPU above which a step's figures are suspect
PLOT_TIMEOUT = 120.0


def _servers(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown server(s) {unknown}; choose among {', '.join(SERVERS)}")
    return names


def _rates(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers: {text!r}")
    return sorted(values)


def add_parser(sub: Any) -> None:
    two_cpus = (os.cpu_count() or 1) >= 2
    d = peers.PeersParams()
    sp = sub.add_parser(
        "peers", help="TwinHub and its peers side by side: same client, same scenario, one table with ratios",
        description="Runs the same fan-out against each server in turn (started fresh, alone on --server-cpu): "
                    "a closed loop at saturation, then an open-loop sweep of offered loads. Servers: "
                    + ", ".join(f"{s.name} ({s.label})" for s in SERVERS.values())
                    + ". The peers' packages are installed first into loadtests/peers/.venv and "
                      "loadtests/peers/node_modules (python -m loadtests.peers.install), never into TwinHub's "
                      "environment. About 2 minutes per server with the defaults.")
    sp.add_argument("--servers", type=_servers, default=list(SERVERS),
                    help=f"comma-separated subset, in the order to run (default: all: {','.join(SERVERS)})")
    sp.add_argument("-c", "--subscribers", type=int, default=d.subscribers, help="subscribers in the room (default 1000)")
    sp.add_argument("--publishers", type=int, default=d.publishers, help="publisher connections, the window split between them (default 8)")
    sp.add_argument("-w", "--window", type=int, default=d.window,
                    help="closed loop: posts in flight until delivered to every subscriber (default 200)")
    sp.add_argument("--rates", type=_rates, default=list(d.rates),
                    help="open loop: offered deliveries/s, one step each (default 1000,2500,5000,10000,20000,40000,80000)")
    sp.add_argument("--no-sweep", dest="sweep", action="store_false", help="closed loop only")
    sp.add_argument("--skip-above", type=float, default=d.skip_above,
                    help="do not run an offered load above this x the server's closed-loop deliveries/s (default 2)")
    sp.add_argument("-d", "--duration", type=float, default=d.duration, help="closed loop: measured s (default 10)")
    sp.add_argument("--sweep-duration", type=float, default=d.sweep_duration, help="measured s per offered load (default 8)")
    sp.add_argument("--warmup", type=float, default=d.warmup, help="closed loop warm-up s (default 3)")
    sp.add_argument("--sweep-warmup", type=float, default=d.sweep_warmup, help="warm-up s per offered load (default 2)")
    sp.add_argument("--text-size", type=int, default=d.text_size, help="characters per message text (default 100)")
    sp.add_argument("--latency-every", type=int, default=d.latency_every,
                    help="1 subscriber in this many parses every message and records latencies; the others check "
                         "counts and seqs on the bytes (default 10)")
    sp.add_argument("--server-cpu", type=int, default=0 if two_cpus else None, help="CPU of each server (default 0)")
    sp.add_argument("--client-cpu", type=int, default=1 if two_cpus else None, help="CPU of the load generator (default 1)")
    sp.add_argument("--concurrency", type=int, default=d.concurrency, help="connections opened at a time (default 100)")
    sp.add_argument("--redis-url", default=None,
                    help="Redis for Django Channels (default: a throwaway one, pinned to the server CPU)")
    sp.add_argument("--database-url", default=os.environ.get("TWINHUB_DATABASE_URL") or None,
                    help="TwinHub: a PostgreSQL server for a throwaway database (default: embedded)")
    sp.add_argument("--quiet-wait", type=float, default=d.quiet_wait,
                    help="before each server, wait up to this many s for the machine to be under 10%% busy (default 60)")
    sp.add_argument("--no-plots", dest="plots", action="store_false", help="write no PNG plots")
    sp.add_argument("--timeout", type=float, default=2400, help="bound on the whole run, s (default 2400)")
    sp.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                    help="load generator's event loop (auto: uvloop if installed)")
    sp.add_argument("--keep", action="store_true", help="keep the work folders (server logs, data)")


async def command(args: argparse.Namespace) -> dict[str, Any]:
    """Install what the servers need, run them in turn, print the tables; the figures and checks."""
    versions = ensure_installed(args.servers)
    p = peers.PeersParams(
        servers=tuple(args.servers), subscribers=args.subscribers, publishers=args.publishers, window=args.window,
        rates=tuple(args.rates), sweep=args.sweep, skip_above=args.skip_above, duration=args.duration,
        sweep_duration=args.sweep_duration, warmup=args.warmup, sweep_warmup=args.sweep_warmup,
        text_size=args.text_size, latency_every=args.latency_every, server_cpu=args.server_cpu,
        client_cpu=args.client_cpu, concurrency=args.concurrency, redis_url=args.redis_url,
        database_url=args.database_url, keep=args.keep, quiet_wait=args.quiet_wait,
    )
    figures = await peers.measure(p, Progress())
    results = figures["results"]
    found = peers_table.checks(results)
    markdown = "\n\n".join([
        f"{p.subscribers:,} subscribers, closed loop (window {p.window} posts until delivered everywhere, "
        f"{p.duration:g} s):", peers_table.closed_table(results),
        f"Open loop, {p.sweep_duration:g} s per offered load: delivered/s (✗: not kept up) and p50 / p90 / p99:",
        peers_table.sweep_table(results, list(p.rates)) if p.sweep else "(no sweep)",
        "Targets:", peers_table.verdicts(found),
    ])
    print("\n" + markdown + "\n")
    for name, r in results.items():
        for s in [r["closed"], *(s for s in r.get("sweep", []) if "skipped" not in s)]:
            if peers_table.client_bound(s):
                print(f"warning: [{name}, {s['step']}] the load generator's process or core was "
                      f"{peers_table.client_bound(s):.0f}% busy: the server may be faster than measured")
            if (s.get("other_processes_cpu_percent") or 0) > NOISY_PERCENT:
                print(f"warning: [{name}, {s['step']}] other processes used {s['other_processes_cpu_percent']:.0f}% "
                      "of a core: noisy, repeat on a quiet machine")
    for name, why in figures["failures"].items():
        print(f"warning: [{name}] did not run: {why}")
    checks = [{**c, "target": c["target"] + ("" if c["checked"] else " (not checked: peer missing)")} for c in found]
    return {**figures, "versions": versions, "markdown": markdown, "checks": checks}


def after_write(args: argparse.Namespace, path: Path) -> None:
    """Write the plots next to the result `path`, in the peers' venv (matplotlib lives there)."""
    if not args.plots or not args.sweep:
        return
    try:
        python = install.python_env()
        done = subprocess.run(  # noqa: S603 — our own interpreter and module
            [str(python), "-m", "loadtests.peers.plot", str(path)], cwd=install.HERE.parents[1],
            capture_output=True, text=True, timeout=PLOT_TIMEOUT, check=False,
        )
    except (OSError, subprocess.TimeoutExpired, install.InstallError) as exc:
        print(f"warning: no plots: {exc}", file=sys.stderr)
        return
    print(done.stdout.strip())
    if done.returncode:
        print(f"warning: the plots failed:\n{done.stderr[-2000:]}", file=sys.stderr)
