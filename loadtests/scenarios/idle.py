"""Idle connections: what N authenticated, subscribed, silent sockets cost the server in memory.

    server started and settled → RSS before
    N connections, each its own user: hello (token) + subscribe to a room (spread over R rooms)
    settle (presence frames flushed, buffers drained) → RSS after;  KB per connection
    close them all, settle → RSS after close (what is not given back)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..clients import Tally, close_all, open_subscribers
from ..report import Progress
from ..server_proc import cpu_percent, pin, raise_open_files_limit, usage
from .targets import Target


@dataclass(frozen=True)
class IdleParams:
    connections: int = 5000
    rooms: int = 1
    settle: float = 5.0  # seconds to wait before each RSS reading
    client_cpu: int | None = 1
    concurrency: int = 200  # handshakes at a time
    connect_timeout: float = 30.0


async def _settle(target: Target, progress: Progress, phase: str, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, left))
        rss = target.server.process.memory_info().rss
        progress.show(f"[{target.name}] {phase}: RSS {rss / 2**20:,.1f} MB")


async def measure(target: Target, p: IdleParams, progress: Progress) -> dict[str, Any]:
    """Open, hold and close `p.connections` idle subscribed connections; return the figures."""
    pin(p.client_cpu)
    raise_open_files_limit()
    process = target.server.process
    await _settle(target, progress, "settling", p.settle)
    before = usage(process)
    tally = Tally()
    started = time.monotonic()
    clients = await open_subscribers(
        target.url, tally, target.logins[: p.connections], concurrency=p.concurrency, timeout=p.connect_timeout,
        on_joined=lambda n: n % 250 == 0 and progress.show(f"[{target.name}] connected {n}/{p.connections}"),
    )
    connected = usage(process)
    connect_s = time.monotonic() - started
    try:
        await _settle(target, progress, f"{len(clients)} connections open", p.settle)
        held = usage(process)
        open_now = target.counters().get("twinhub_websockets_open")
    finally:
        await close_all(clients, p.connect_timeout)
    await _settle(target, progress, "closed", p.settle)
    after_close = usage(process)
    progress.done()
    n = len(clients)
    connect_cpu, _ = cpu_percent(before, connected)
    return {
        "server": target.name,
        "connections": n,
        "rooms": p.rooms,
        "connect_s": round(connect_s, 2),
        "connections_per_s": round(n / connect_s),
        "server_cpu_percent_while_connecting": round(connect_cpu, 1),
        "server_rss_before_mb": round(before.rss / 2**20, 1),
        "server_rss_open_mb": round(held.rss / 2**20, 1),
        "server_rss_after_close_mb": round(after_close.rss / 2**20, 1),
        "kb_per_connection": round((held.rss - before.rss) / n / 1024, 1),
        "kb_per_connection_not_returned": round((after_close.rss - before.rss) / n / 1024, 1),
        "server_says_open": open_now,
        "closed_by_server": sum(tally.closes.values()),
        "error_codes": dict(tally.errors),
        "frames_received": tally.messages,
        "load_generator_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
        "params": asdict(p),
    }
