"""The servers of the side-by-side comparison (`python -m loadtests peers`), by name, each started
fresh, pinned to the server CPU like TwinHub, and stopped by PID after its turn.

    twinhub            TwinHub, full stack: auth, policy, persistence (targets.twinhub)
    websockets         raw websockets.broadcast() (targets.baseline; TwinHub's venv, asyncio loop)
    starlette-legacy   Starlette, one send per subscriber, uvicorn --ws websockets
    starlette-sansio   the same on uvicorn --ws websockets-sansio
    socketio           python-socketio, in-memory manager, under uvicorn (speaks socket.io)
    channels           Django Channels + channels_redis RedisChannelLayer, under uvicorn; its Redis
                       (a throwaway one unless --redis-url) runs on the server CPU too, and its CPU
                       counts as the server's helpers' (like TwinHub's embedded PostgreSQL)
    node-ws            Node.js `ws`, a loop of send()
    node-socketio      Node.js socket.io 4, in-memory adapter (speaks socket.io)

The Python peers run in loadtests/peers/.venv and the Node ones on loadtests/peers/node_modules,
both made by loadtests.peers.install (called first: it returns at once when they are up to date).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..peers import install
from ..server_proc import launch
from .targets import REPO, ServerOptions, Target, _reporting_failures, _workdir, baseline, twinhub


@dataclass
class Running:
    """A started server: the Target, and `services`, processes of its stack that it did not start
    itself (the Channels peer's Redis), counted with its helpers. Its logins hold `subscribers`
    subscribers' then the extra publishers'."""

    target: Target
    services: list[psutil.Process] = field(default_factory=list)

    def helpers(self) -> list[psutil.Process]:
        """The server's helpers (its children, TwinHub's PostgreSQL) and the services still running."""
        return [*self.target.server.helpers(), *[p for p in self.services if p.is_running()]]


Start = Callable[[ServerOptions, int, int, "str | None"], contextlib.AbstractAsyncContextManager[Running]]


@dataclass(frozen=True)
class Server:
    """One server of the comparison: `label` in tables, `sio` if it speaks socket.io, `start`
    (options, subscribers, publishers, Redis URL or None) -> async context manager of Running."""

    name: str
    label: str
    sio: bool
    start: Start
    needs: str  # "" (TwinHub's venv), "python" (the peers' venv) or "node"


@contextlib.asynccontextmanager
async def _twinhub(opts: ServerOptions, subscribers: int, publishers: int, _: str | None) -> AsyncIterator[Running]:
    # The extra publishers are members too (pupils may post in chat); each is its own session.
    async with twinhub(opts, subscribers=subscribers + publishers - 1, rooms=1) as target:
        yield Running(target)


@contextlib.asynccontextmanager
async def _baseline(opts: ServerOptions, subscribers: int, publishers: int, _: str | None) -> AsyncIterator[Running]:
    async with baseline(opts, subscribers=subscribers + publishers - 1, rooms=1) as target:
        yield Running(target)


@contextlib.contextmanager
def _redis(url: str | None, cpu: int | None) -> Iterator[tuple[str, list[psutil.Process]]]:
    """An existing Redis (`url`), or a throwaway one pinned to `cpu`: (url, its processes)."""
    if url:
        yield url, []
        return
    from realtime.run.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis()
    redis.start()
    try:
        ours = [p for p in psutil.Process().children() if f"{redis.port}" in " ".join(p.cmdline())]
        if cpu is not None:
            for p in ours:
                p.cpu_affinity([cpu])
        yield redis.url, ours
    finally:
        redis.stop()


def _peer(label: str, argv: Callable[[], list[str]], *, path: str = "/ws", redis: bool = False) -> Start:
    """A launcher for the peer run by `argv()` (a command printing "... listening on ws://...");
    with `redis`, it gets --redis-url (the URL given, or a throwaway Redis on the server CPU)."""

    @contextlib.asynccontextmanager
    async def start(opts: ServerOptions, subscribers: int, publishers: int, redis_url: str | None) -> AsyncIterator[Running]:
        with contextlib.ExitStack() as stack:
            work = stack.enter_context(_workdir(opts.keep))
            command, services = argv(), []
            if redis:
                url, services = stack.enter_context(_redis(redis_url, opts.server_cpu))
                command += ["--redis-url", url]
            env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
            server = stack.enter_context(launch(label, command, env=env, cpu=opts.server_cpu, log=work / "server.log",
                                                cwd=REPO, timeout=opts.start_timeout))
            async with _reporting_failures(server):
                yield Running(Target(
                    label, server, f"ws://127.0.0.1:{server.port}{path}", "room:1", secrets.token_urlsafe(8),
                    [(secrets.token_urlsafe(8), "room:1") for _ in range(subscribers + publishers - 1)],
                ), services)

    return start


def _py(module: str, *args: str) -> Callable[[], list[str]]:
    return lambda: [str(install.PYTHON), "-m", f"loadtests.peers.{module}", "--port", "0", *args]


def _node(script: str) -> Callable[[], list[str]]:
    return lambda: ["node", str(install.HERE / script), "--port", "0"]


SERVERS: dict[str, Server] = {s.name: s for s in [
    Server("twinhub", "TwinHub", False, _twinhub, ""),
    Server("websockets", "websockets.broadcast", False, _baseline, ""),
    Server("starlette-legacy", "Starlette naive (ws legacy)", False,
           _peer("Starlette naive (ws legacy)", _py("starlette_naive", "--ws", "websockets")),
           "python"),
    Server("starlette-sansio", "Starlette naive (ws sansio)", False,
           _peer("Starlette naive (ws sansio)", _py("starlette_naive", "--ws", "websockets-sansio")), "python"),
    Server("socketio", "python-socketio", True, _peer("python-socketio", _py("socketio_python"), path=""),
           "python"),
    Server("channels", "Django Channels", False,
           _peer("Django Channels", _py("channels_django", "--no-ping"), redis=True), "python"),
    Server("node-ws", "Node ws", False, _peer("Node ws", _node("node_ws.js")), "node"),
    Server("node-socketio", "Node socket.io", True,
           _peer("Node socket.io", _node("node_socketio.js"), path=""), "node"),
]}


def ensure_installed(names: list[str]) -> dict[str, Any]:
    """Install (or check) the environments the chosen servers need; return the peers' versions."""
    needs = {SERVERS[n].needs for n in names}
    if "python" in needs:
        install.python_env()
    if "node" in needs:
        install.node_env()
    found = install.versions()
    if not any(SERVERS[n].needs == "" for n in names):
        return found
    from importlib import metadata

    for package in ("websockets", "starlette", "uvicorn", "uvloop"):
        found[f"twinhub-venv:{package}"] = metadata.version(package)
    found["python"] = sys.version.split()[0]
    return found
