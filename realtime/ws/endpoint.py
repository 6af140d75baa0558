"""The /ws endpoint: the WebSocket handshake (subprotocol, cookie, Origin), then a Connection
and its Session until the socket closes.

Encoding is chosen by subprotocol: `twinhub.v1.json` (text frames) or `twinhub.v1.msgpack`
(binary frames). A client that offers neither gets JSON; one that offers only others is refused.

A refused handshake is an HTTP answer, `403 Forbidden`, never a WebSocket close code: the socket
never opened. Under a server with the ASGI denial-response extension (uvicorn has it) its body is
the JSON error every HTTP answer has, saying why.

Cross-site WebSocket hijacking: browsers send cookies on cross-site WebSocket handshakes, so a
handshake that carries the session cookie must come from an allowed Origin (the server's own
host, or TWINHUB_ALLOWED_ORIGINS). A handshake without the cookie authenticates with a token in
`hello`, which another site cannot read, so its Origin does not matter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from protocol import CloseCode, ErrorCode

from ..config import Settings
from ..errors import refusals
from ..handshake import choose_encoding, origin_allowed, session_cookie
from ..services.bundle import Services
from .connection import Connection
from .session import Session


def forget_handshake(receive: Any) -> None:
    """The handshake is over: let the protocol drop what it kept of it (realtime/ws/server_protocol.py).
    Under another server or protocol implementation this does nothing."""
    forget = getattr(getattr(receive, "__self__", None), "forget_handshake", None)
    if forget is not None:
        forget()


async def refuse(scope: dict[str, Any], send: Any, why: str) -> None:
    """Refuse the handshake: HTTP 403, with a JSON error body where the server can send one."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close"})  # the ASGI server answers 403 by itself
        return
    body = json.dumps({"error": {"code": ErrorCode.FORBIDDEN.value, "message": why}}).encode()
    await send({"type": "websocket.http.response.start", "status": 403, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
    ]})
    await send({"type": "websocket.http.response.body", "body": body})


class WebSocketEndpoint:
    """A plain ASGI app (no Starlette WebSocket wrapper on the hot path: the writer calls the
    server's `send` directly)."""

    def __init__(self, services: Services, settings: Settings) -> None:
        self.services = services
        self.settings = settings
        self.open = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        offered = list(scope.get("subprotocols") or [])
        encoding = choose_encoding(offered)
        cookie = session_cookie(scope)
        if encoding is None:
            await refuse(scope, send, "offer the subprotocol twinhub.v1.json or twinhub.v1.msgpack")
            return
        if cookie is not None and not origin_allowed(scope, self.settings.allowed_origins):
            refusals.note("cross-site websocket", "refused a cookie-authenticated WebSocket from another origin",
                          level=logging.WARNING)
            await refuse(scope, send, "a WebSocket with the session cookie must come from this site's own pages")
            return
        # Everything needed from the handshake has been read; the headers would otherwise live
        # as long as the socket does.
        scope["headers"] = ()
        await send({"type": "websocket.accept", "subprotocol": encoding.value if offered else None})
        forget_handshake(receive)
        conn = Connection(
            receive, send, encoding, self.services.limits, outbox_bytes=self.settings.outbox_bytes
        )
        session = Session(self.services, conn, cookie_token=cookie)
        self.open += 1
        def hello_deadline() -> None:
            if not session.hello_received:
                conn.close(CloseCode.AUTH_FAILED, "no hello in time")

        timer = asyncio.get_running_loop().call_later(self.settings.auth_timeout, hello_deadline)
        try:
            await conn.run(session)
        finally:
            timer.cancel()
            self.open -= 1
