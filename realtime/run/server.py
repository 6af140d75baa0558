"""Running the app under uvicorn, on a socket we bind ourselves (so port 0 works for tests).

Per-message compression is off by default (TWINHUB_WS_DEFLATE=1 turns it on): uvicorn would
accept permessage-deflate, every browser offers it, and it compresses each frame once *per
recipient* — the opposite of "encode once". docs/performance.md has the measurement.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import socket

import uvicorn

from ..config import Settings
from .assemble import Seed, create_app
from .guard import AddressGuard, guarded_protocols

# Connections the kernel holds for us before we accept them. When it is full, a new connection's
# SYN is dropped and the client sends it again only after a second (then 3 s, 7 s …): in a
# reconnect storm of 5,000 at 2,048, 697 of them waited that second (docs/performance.md). The
# kernel caps whatever is asked at net.core.somaxconn (4,096 by default since Linux 5.4), so ask
# for more and let the system's setting decide (docs/deployment.md).
LISTEN_BACKLOG = 65_535


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def raise_open_files_limit() -> int | None:
    """Raise the soft limit on open files to the hard one and return it (None where there is no
    such limit): each socket is a file, and a soft limit of 1,024 (a common default) would refuse
    the 1,025th connection whatever the memory. Past the hard limit, the system's settings must
    change (docs/deployment.md)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def tune_gc() -> None:
    """Collect the young generation less often.

    Each socket keeps a few dozen small objects alive, and every event creates short-lived ones
    (futures, frames). With CPython's default thresholds (700, 10, 10) they are promoted fast and
    full collections of ~150k objects ran every few seconds for 80-100 ms with 1,000 sockets:
    every delivery caught in one was late (p99 67 ms at 20k deliveries/s). With a larger young
    generation most of them die young instead (docs/performance.md has the before and after).
    """
    gc.set_threshold(50_000, 20, 100)


# Files a process keeps open besides its clients' sockets: the database pools (20 + 2), Redis
# (a few per node), the embedded PostgreSQL's and Redis's pipes, logs, the listening socket, and
# the handful each accept() in flight needs — with room to spare.
FILES_RESERVE = 200


def connection_cap(settings: Settings) -> int:
    """How many sockets this process takes before answering 503: `max_connections` if set, else
    the soft open-files limit in effect less FILES_RESERVE (0, no cap, where there is no such limit)."""
    if settings.max_connections > 0:
        return settings.max_connections
    try:
        import resource
    except ImportError:  # Windows
        return 0
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 0
    return max(soft - FILES_RESERVE, 1)


class NoAccessLog(logging.Filter):
    """Drops uvicorn's line per WebSocket handshake ('<address> - "WebSocket /ws" [accepted]'): the
    server keeps no access log — no client address of a child in a log file (docs/security.md).
    HTTP's access log is off (`access_log=False`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return '"WebSocket %s"' not in str(record.msg)


def make_server(settings: Settings, *, seed: Seed | None = None) -> uvicorn.Server:
    guard = AddressGuard(
        settings.max_connections_per_address, settings.trusted_proxies, settings.handshake_timeout,
        max_total=connection_cap(settings),
    )
    # uvicorn's own protocols (its websockets-sansio one keeping less per socket, realtime/ws/server_protocol.py),
    # counting connections per address and timing request heads (realtime/run/guard.py).
    http_protocol, ws_protocol = guarded_protocols(guard)
    app = create_app(settings, seed=seed, guard=guard)  # the guard's counts are on /metrics
    config = uvicorn.Config(
        app,
        http=http_protocol,
        ws=ws_protocol,
        forwarded_allow_ips=list(settings.trusted_proxies),
        ws_per_message_deflate=settings.ws_deflate,
        # Frames above the protocol limit but below this get a `too_large` error (with their
        # `ref`) and the socket lives on; above this the transport closes with 1009.
        ws_max_size=settings.limits.max_transport_bytes,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        lifespan="on",
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        backlog=LISTEN_BACKLOG,  # asyncio listens again on the socket bound above, with this
    )
    error_log = logging.getLogger("uvicorn.error")  # configured by uvicorn.Config just above
    if not any(isinstance(f, NoAccessLog) for f in error_log.filters):
        error_log.addFilter(NoAccessLog())
    return uvicorn.Server(config)


class RunningServer:
    """A server started inside the current event loop (tests, the demo command)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = make_server(settings)
        self.sock = bind(settings.host, settings.port)
        self.port = self.sock.getsockname()[1]
        self._task: asyncio.Task[None] | None = None

    @property
    def app(self):  # type: ignore[no-untyped-def]
        """The ASGI app (web/app.py); its .state is the running server's parts (run/assemble.py)."""
        return self.server.config.app

    async def start(self) -> None:
        self.server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await self._task
        self.sock.close()
