"""`twinhub serve` in a process of its own, on a free port, for the tests that need several
processes on one PostgreSQL and one Redis (tests/e2e/test_scale_out.py,
tests/e2e/test_membership_across_processes.py). Every wait is bounded; every process is stopped
by PID. They share BUS_SECRET, as the processes of one installation share TWINHUB_BUS_SECRET."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BUS_SECRET = secrets.token_urlsafe(32)  # tests/conftest.py watches the logs for it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """One `twinhub serve` process; `env` adds TWINHUB_* settings to the common ones."""

    def __init__(self, database_url: str, redis_url: str, prefix: str, **env: str) -> None:
        self.port = free_port()
        settings = {
            "TWINHUB_DATABASE_URL": database_url, "TWINHUB_REDIS_URL": redis_url, "TWINHUB_REDIS_PREFIX": prefix,
            "TWINHUB_LOG_LEVEL": "warning", "TWINHUB_DB_POOL_SIZE": "5", "TWINHUB_LOGIN_BACKOFF": "0.2",
            "TWINHUB_BUS_SECRET": BUS_SECRET, **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "realtime", "serve", "--port", str(self.port)], env={**os.environ, **settings},
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )

    @classmethod
    def adopt(cls, proc: subprocess.Popen[bytes], port: int) -> ServeProcess:
        """A process some test started itself (e.g. `serve --workers 2`), to wait on and stop."""
        process = cls.__new__(cls)
        process.proc, process.port = proc, port
        return process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"twinhub exited with {self.proc.returncode}")
                with contextlib.suppress(httpx.HTTPError, OSError):
                    if (await http.get(f"{self.url}/readyz", timeout=1)).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise RuntimeError("twinhub did not become ready")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextlib.asynccontextmanager
async def serving(database_url: str, redis_url: str, prefix: str, count: int = 2, **env: str):
    """`count` processes on one PostgreSQL and one Redis, ready; stopped by PID on the way out."""
    processes = [ServeProcess(database_url, redis_url, prefix, **env) for _ in range(count)]
    try:
        await asyncio.gather(*(p.ready() for p in processes))
        yield processes
    finally:
        for p in processes:
            p.stop()


@contextlib.asynccontextmanager
async def two_processes(database_url: str, redis_url: str, prefix: str, **env: str):
    """Two processes on one PostgreSQL and one Redis, each with an HTTP client: (a, b, on_a, on_b)."""
    async with serving(database_url, redis_url, prefix, **env) as (a, b):
        async with httpx.AsyncClient(base_url=a.url, timeout=60) as on_a, \
                httpx.AsyncClient(base_url=b.url, timeout=60) as on_b:
            yield a, b, on_a, on_b


def twinhub_cli(database_url: str, *args: str) -> str:
    """`python -m realtime <args>` against `database_url`, as an operator runs it (none of the
    tests' TWINHUB_ settings); its output, after checking it succeeded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    done = subprocess.run([sys.executable, "-m", "realtime", *args, "--database-url", database_url],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout

