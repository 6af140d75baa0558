"""The servers a scenario can run against, each started fresh for the run and stopped after it.

    twinhub()   `python -m realtime serve` on its own database (seeded through storage/)
    baseline()  loadtests/peers/websockets_broadcast.py (no database, any token is welcome)

Both yield a Target: where to connect, the tokens and channels to use, the server process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..seed import run_database, seed
from ..server_proc import ServerProcess, launch

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServerOptions:
    """How to run the server under test."""

    server_cpu: int | None = 0
    database_url: str | None = None  # TwinHub: a PostgreSQL server for a throwaway database; None: embedded
    start_timeout: float = 120.0  # seeding plus start-up
    keep: bool = False  # keep the work folder (server log, embedded data) after the run


@dataclass
class Target:
    name: str
    server: ServerProcess
    url: str  # ws://127.0.0.1:<port>/ws
    channels: list[str]
    publisher_token: str
    subscriber_tokens: list[str]
    counters: Callable[[], dict[str, float]] = field(default=lambda: {})  # server-side counters, if any


def _server_env() -> dict[str, str]:
    """The server's environment: ours, without the settings the launcher passes as flags, with
    the post rate limit out of the way (TWINHUB_POST_RATE/BURST, unless already set)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TWINHUB_DATABASE_URL", "TWINHUB_DATA_DIR", "TWINHUB_PORT")}
    env.setdefault("TWINHUB_POST_RATE", "100000")
    env.setdefault("TWINHUB_POST_BURST", "100000")
    env.setdefault("TWINHUB_LOG_LEVEL", "warning")
    return env


def prometheus_counters(text: str) -> dict[str, float]:
    """`name value` lines of a /metrics page."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="twinhub-loadtest-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def _reporting_failures(server: ServerProcess) -> AsyncIterator[None]:
    """Say which process serves (so it can be profiled: py-spy top --pid PID); on failure, show
    the end of its log."""
    print(f"{server.name}: pid {server.pid}, port {server.port}, CPUs {sorted(server.process.cpu_affinity())}",
          file=sys.stderr)
    try:
        yield
    except BaseException:
        print(f"\n--- last lines of the {server.name} log ---\n{server.log_tail()}", file=sys.stderr)
        raise


@contextlib.asynccontextmanager
async def twinhub(opts: ServerOptions, *, subscribers: int, rooms: int) -> AsyncIterator[Target]:
    """Seed a fresh database, start `twinhub serve` on it, yield the Target, stop everything."""
    with _workdir(opts.keep) as work:
        async with run_database(opts.database_url, work / "data") as db:
            seeded = await asyncio.wait_for(seed(db, subscribers=subscribers, rooms=rooms), opts.start_timeout)
            argv = [sys.executable, "-m", "realtime", "serve", "--port", "0", "--data-dir", str(db.data_dir)]
            if db.url is not None:
                argv += ["--database-url", db.url]
            pidfile = None if db.url else db.data_dir / "pgdata" / "postmaster.pid"
            with launch("twinhub", argv, env=_server_env(), cpu=opts.server_cpu, log=work / "server.log",
                        cwd=REPO, timeout=opts.start_timeout, postmaster_pid=pidfile) as server:
                await asyncio.to_thread(server.wait_ready, "/readyz", opts.start_timeout)
                async with _reporting_failures(server):
                    yield Target(
                        "TwinHub", server, f"ws://127.0.0.1:{server.port}/ws", seeded.channels,
                        seeded.publisher_token, seeded.subscriber_tokens,
                        counters=lambda: prometheus_counters(server.http_get("/metrics")),
                    )


@contextlib.asynccontextmanager
async def baseline(opts: ServerOptions, *, subscribers: int, rooms: int) -> AsyncIterator[Target]:
    """Start the websockets.broadcast peer; tokens are arbitrary (it checks none)."""
    with _workdir(opts.keep) as work:
        argv = [sys.executable, "-m", "loadtests.peers.websockets_broadcast", "--port", "0"]
        with launch("websockets.broadcast", argv, env=dict(os.environ), cpu=opts.server_cpu,
                    log=work / "server.log", cwd=REPO, timeout=opts.start_timeout) as server:
            async with _reporting_failures(server):
                yield Target(
                    "websockets.broadcast", server, f"ws://127.0.0.1:{server.port}/", [f"room:{i + 1}" for i in range(rooms)],
                    secrets.token_urlsafe(8), [secrets.token_urlsafe(8) for _ in range(subscribers)],
                )


TARGETS = {"twinhub": twinhub, "baseline": baseline}
