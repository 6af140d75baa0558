"""The ASGI application: /ws to the WebSocket endpoint, everything else to the Starlette app of
HTTP routes (web/api.py, web/members.py), and the lifespan that the composition root
(run/assemble.py) gives it: the parts are built there and bound here with `bind`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware

from ..errors import ServiceError, refusals
from . import api
from .headers import with_security_headers
from .http import FAILED, Web, WebApp, on_bug, on_service_error

ASGIApp = Callable[..., Any]

# HTTP answers of at least this many bytes are gzipped for a client that accepts it: the page's
# modules, stylesheet and catalogues, and JSON (a welcome, a page of history). Never the live SSE
# stream (text/event-stream is among GZipMiddleware's exclusions: each event goes out as it
# comes) nor the WebSocket (/ws never reaches the Starlette app). Level 6, zlib's default: the
# page's files come within 0.3 % of level 9's size for 60 % of its CPU (docs/performance.md).
GZIP_MINIMUM = 1024
GZIP_LEVEL = 6


class TwinHub:
    """The ASGI app: /ws goes straight to the WebSocket endpoint — no middleware stack to build
    and keep per socket (a few KB each, thousands of sockets) — and everything else, lifespan
    included, to the Starlette app."""

    def __init__(self, lifespan: Callable[[Any], AbstractAsyncContextManager[None]]) -> None:
        self.starlette = WebApp(
            routes=api.routes, lifespan=lifespan, exception_handlers={ServiceError: on_service_error, Exception: on_bug},
            middleware=[Middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM, compresslevel=GZIP_LEVEL)],
        )
        self._ws: ASGIApp | None = None
        self.state: Any = None  # the running server's parts (run/assemble.py's Assembly), for tests

    def bind(self, web: Web, ws_endpoint: ASGIApp, state: Any) -> None:
        """Serve with these parts (the lifespan calls this once they are built)."""
        self.starlette.web = web
        self._ws = ws_endpoint
        self.state = state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws" and self._ws is not None:
            await self._ws(scope, receive, send)
        elif scope["type"] == "http":
            try:
                await self.starlette(scope, receive, with_security_headers(send))
            except Exception as exc:
                # Starlette raises it again after on_bug answered, for the server to log a traceback
                # per request: the tally has it already. Only a failure after the answer began
                # (streams) did not pass through on_bug.
                if not scope.get(FAILED):
                    refusals.note(f"failed http stream: {type(exc).__name__}", "an HTTP answer failed midway",
                                  level=logging.ERROR, exc_info=exc)
        else:
            await self.starlette(scope, receive, send)
