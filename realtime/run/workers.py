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

A child that dies is started again (after a pause that grows if it keeps dying); its clients
reconnect, land on the others, and resume from their last seq. SIGINT/SIGTERM stop them all.
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
from dataclasses import replace

from storage.db import create_pool
from storage.migrate import migrate

from ..config import Settings
from ..fanout.redis_client import safe_url
from .embedded_redis import EmbeddedRedis
from .server import bind

log = logging.getLogger("twinhub.workers")


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
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        restarts = [0.0] * workers  # when each slot was last restarted, for the pause
        pause = [0.5] * workers
        while not stopping:
            time.sleep(0.2)
            for i, child in enumerate(children):
                code = child.poll()
                if code is None or stopping:
                    continue
                now = time.monotonic()
                pause[i] = 0.5 if now - restarts[i] > 30 else min(pause[i] * 2, 10.0)
                log.warning("worker %d (pid %d) exited with %s; restarting in %.1f s", i, child.pid, code, pause[i])
                time.sleep(pause[i])
                restarts[i] = time.monotonic()
                children[i] = start()
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
