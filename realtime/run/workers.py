"""`twinhub serve --workers N`: N processes on one port, one per core, behaving as one server.

The supervisor (this module, in the parent process) binds the listening socket once and hands
it to N `twinhub serve` children (the kernel spreads new connections over the processes that
accept on it). Each child has its own hub and shares PostgreSQL and Redis with the others.

What they share is prepared here, once:
- PostgreSQL: the configured URL, or the embedded one, started by the supervisor (migrations are
  applied once, before the children start);
- Redis: the configured URL, or — with the embedded default — a throwaway Redis-compatible server
  started by the supervisor (realtime/run/embedded_redis.py): `--workers 2` works out of the box.
  That one has a random password, and the bus secret is made here too unless one is configured:
  both reach the children in their environment (TWINHUB_REDIS_URL, TWINHUB_BUS_SECRET), never on
  their command lines, which `ps` shows to every user of the machine.

A child that dies is started again after a pause (`RestartPause`): 0.5 s the first time,
doubling up to 10 s while it keeps dying within 30 s of its start, and back to 0.5 s once it ran
30 s (TWINHUB_WORKER_RESTART_PAUSE, _MAX and TWINHUB_WORKER_HEALTHY_AFTER). A crash loop thus
costs a restart every 10 s, and a crash after a healthy while is restarted at once, not after the
pause the last crash loop reached. While a slot waits, the supervisor goes on watching the other
workers and its signals. The dead child's clients reconnect, land on the others, and resume from
their last seq. SIGINT/SIGTERM stop them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace

from storage.db import create_pool
from storage.migrate import migrate

from ..config import Settings
from ..fanout.redis_client import safe_url
from .embedded_redis import EmbeddedRedis
from .server import bind

log = logging.getLogger("twinhub.workers")


@dataclass
class RestartPause:
    """How long one worker's slot waits before the worker is started again."""

    first: float = 0.5
    most: float = 10.0
    healthy_after: float = 30.0  # seconds a worker runs for its next crash to count as a new one
    _last: float = field(default=0.0, repr=False)  # the pause given last (0: none yet)

    def after(self, ran: float) -> float:
        """The pause before starting again a worker that exited after running `ran` seconds:
        `first` for a first exit or one after a healthy run, else twice the last pause, at most
        `most`."""
        if self._last == 0.0 or ran >= self.healthy_after:
            self._last = self.first
        else:
            self._last = min(self._last * 2, self.most)
        return self._last


def _prepare(settings: Settings, stack: contextlib.ExitStack, seed_demo: bool) -> Settings:
    """Start what the children share and apply the migrations; returns the children's settings."""
    if not settings.database_url:
        from storage.embedded import DATABASE, EmbeddedPostgres, ensure_database

        embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
        admin_url = embedded.start()
        stack.callback(embedded.stop)
        asyncio.run(ensure_database(admin_url, DATABASE))
        settings = replace(settings, database_url=embedded.url(DATABASE))
    if not settings.redis_url:
        redis = EmbeddedRedis()
        url = redis.start()
        stack.callback(redis.stop)
        print(f"started a Redis-compatible server for the workers on {safe_url(url)}", flush=True)
        settings = replace(settings, redis_url=url, bus_secret=settings.bus_secret or secrets.token_urlsafe(32))
    database_url = settings.database_url
    assert database_url is not None

    async def once() -> None:
        pool = await create_pool(database_url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            if seed_demo:
                from .demo import ensure_demo, logins_table

                print(logins_table(await ensure_demo(pool), f"http://{settings.host}:{settings.port}"), flush=True)
        finally:
            await pool.close()

    asyncio.run(once())
    return settings


def serve_workers(settings: Settings, workers: int, *, demo: bool = False) -> int:
    with contextlib.ExitStack() as stack:
        shared = _prepare(settings, stack, demo)
        sock = bind(settings.host, settings.port)
        stack.callback(sock.close)
        sock.set_inheritable(True)
        port = sock.getsockname()[1]
        env = {
            **os.environ, "TWINHUB_DATABASE_URL": shared.database_url or "", "TWINHUB_REDIS_URL": shared.redis_url or "",
            "TWINHUB_BUS_SECRET": shared.bus_secret,
        }
        command = [sys.executable, "-m", "realtime", "serve", "--fd", str(sock.fileno())]
        print(f"TwinHub listening on http://{settings.host}:{port} with {workers} workers (WebSocket: /ws)", flush=True)

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(command, env=env, pass_fds=(sock.fileno(),))

        children = [start() for _ in range(workers)]
        started = [time.monotonic()] * workers
        due: list[float | None] = [None] * workers  # when a slot whose worker exited starts it again
        pauses = [
            RestartPause(settings.worker_restart_pause, settings.worker_restart_max, settings.worker_healthy_after)
            for _ in range(workers)
        ]
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            time.sleep(0.1)
            for i, child in enumerate(children):
                now, when = time.monotonic(), due[i]
                if stopping:
                    break
                if when is not None:
                    if now >= when:
                        children[i], started[i], due[i] = start(), now, None
                    continue
                code = child.poll()
                if code is None:
                    continue
                ran = now - started[i]
                pause = pauses[i].after(ran)
                log.warning("worker %d (pid %d) exited with %s after %.1f s; restarting in %g s", i, child.pid, code,
                            ran, pause)
                due[i] = now + pause
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(5)
    return 0
