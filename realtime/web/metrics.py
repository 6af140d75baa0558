"""GET /metrics (Prometheus text): sockets, channels, deliveries, commits, the database pool,
connections per process — and where the process's memory is: what Python's own allocator holds
in blocks, and what C's malloc hands out and keeps. RSS alone cannot tell a leak of Python
objects from one in a C extension (asyncpg, uvloop, hiredis) or from freed memory the allocator
keeps; these three can (docs/reliability.md, the soak). The gauges are read from `Sources`, which
the composition root (run/assemble.py) fills in."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hmac
import ipaddress
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import asyncpg
from starlette.requests import Request

from storage.writer import GroupCommitWriter

from ..fanout.hub import Hub


class ConnectionCounts(Protocol):
    """What the connection guard (run/guard.py) counts."""

    total: int
    max_total: int
    refused_full: int
    refused: int


@dataclass(slots=True)
class Sources:
    hub: Hub
    writer: GroupCommitWriter[Any, Any]
    mail_writer: GroupCommitWriter[Any, Any]
    pool: asyncpg.Pool
    websockets_open: Callable[[], int]
    guard: ConnectionCounts | None = None  # when served by run/server.py
    bus_rejected: Callable[[], int] = lambda: 0  # bus messages dropped for a missing or wrong signature


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
    )]


@cache
def _mallinfo2():  # type: ignore[no-untyped-def]
    """glibc's mallinfo2 (2.33 and newer), or None elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _Mallinfo2
    fn.argtypes = []
    return fn


def python_blocks() -> int:
    """Blocks Python's allocator has handed out and not got back: objects alive, roughly."""
    return sys.getallocatedblocks()


def malloc_bytes() -> tuple[int, int] | None:
    """(in use, free but kept) by malloc — C extensions' allocations and Python's large objects
    in the first; fragmentation in the second. mmap'd chunks count as in use. None without glibc."""
    fn = _mallinfo2()
    if fn is None:
        return None
    info = fn()
    return info.uordblks + info.hblkhd, info.fordblks


def render(s: Sources) -> str:
    hub, writer, pool = s.hub, s.writer, s.pool
    lines = [
        "# TYPE twinhub_websockets_open gauge", f"twinhub_websockets_open {s.websockets_open()}",
        "# TYPE twinhub_channels gauge", f"twinhub_channels {len(hub.channels)}",
        "# TYPE twinhub_events_total counter", f"twinhub_events_total {hub.events}",
        "# TYPE twinhub_deliveries_total counter", f"twinhub_deliveries_total {hub.delivered}",
        "# TYPE twinhub_gaps_filled_total counter", f"twinhub_gaps_filled_total {hub.gaps_filled}",
        "# TYPE twinhub_commit_batches_total counter", f"twinhub_commit_batches_total {writer.batches}",
        "# TYPE twinhub_posts_committed_total counter", f"twinhub_posts_committed_total {writer.committed}",
        "# TYPE twinhub_mail_commit_batches_total counter",
        f"twinhub_mail_commit_batches_total {s.mail_writer.batches}",
        "# TYPE twinhub_mails_committed_total counter", f"twinhub_mails_committed_total {s.mail_writer.committed}",
        # Forged messages on the Redis bus, or a process with another TWINHUB_BUS_SECRET (0: in-process bus).
        "# TYPE twinhub_bus_rejected_total counter", f"twinhub_bus_rejected_total {s.bus_rejected()}",
        # For leak checks (the soak, loadtests/scenarios/soak.py): the event loop's tasks, and the
        # main PostgreSQL pool's connections open, idle and at most (the writers' own pool of 2 is apart).
        "# TYPE twinhub_asyncio_tasks gauge", f"twinhub_asyncio_tasks {len(asyncio.all_tasks())}",
        "# TYPE twinhub_db_pool_connections gauge", f"twinhub_db_pool_connections {pool.get_size()}",
        "# TYPE twinhub_db_pool_idle gauge", f"twinhub_db_pool_idle {pool.get_idle_size()}",
        "# TYPE twinhub_db_pool_max gauge", f"twinhub_db_pool_max {pool.get_max_size()}",
    ]
    lines += ["# TYPE twinhub_python_allocated_blocks gauge", f"twinhub_python_allocated_blocks {python_blocks()}"]
    held = malloc_bytes()
    if held is not None:
        lines += [
            "# TYPE twinhub_malloc_in_use_bytes gauge", f"twinhub_malloc_in_use_bytes {held[0]}",
            "# TYPE twinhub_malloc_free_kept_bytes gauge", f"twinhub_malloc_free_kept_bytes {held[1]}",
        ]
    guard = s.guard
    if guard is not None:
        lines += [
            "# TYPE twinhub_connections gauge", f"twinhub_connections {guard.total}",
            "# TYPE twinhub_connections_max gauge", f"twinhub_connections_max {guard.max_total}",
            "# TYPE twinhub_connections_refused_full_total counter",
            f"twinhub_connections_refused_full_total {guard.refused_full}",
            "# TYPE twinhub_connections_refused_per_address_total counter",
            f"twinhub_connections_refused_per_address_total {guard.refused}",
        ]
    return "\n".join(lines) + "\n"


def may_read_metrics(request: Request, token: str) -> bool:
    """A loopback client (the address uvicorn believed: through a trusted proxy, the proxy's
    client), or the bearer of `token` when one is configured."""
    header = request.headers.get("authorization", "")
    if token and header.lower().startswith("bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
