"""Pure decisions about a request's headers, shared by both edges (web/ and ws/): the session
cookie, whether an Origin is the server's own (or allowed), and which subprotocol a WebSocket
handshake gets. No I/O: they read an ASGI scope and answer, like python-websockets'
`ServerProtocol.process_origin` or Centrifugo's `internal/origin`.

Cross-site WebSocket hijacking and CSRF are decided here: browsers send cookies with cross-site
requests and handshakes, so whatever the cookie authenticates must come from an allowed Origin.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from protocol import SUBPROTOCOLS, Encoding

SESSION_COOKIE = "twinhub_session"


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """The first value of a request header (`name` in lower case), or None."""
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def session_cookie(scope: dict[str, Any]) -> str | None:
    """The session token the browser's cookie carries, or None (no cookie, or a malformed one)."""
    raw = header(scope, b"cookie")
    if not raw:
        return None
    try:
        jar = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel else None


def origin_allowed(scope: dict[str, Any], allowed: tuple[str, ...]) -> bool:
    """True when the request's Origin is one of `allowed` or the host it was sent to; False
    without an Origin (callers decide what a request with none may do)."""
    origin = header(scope, b"origin")
    if origin is None:
        return False
    if origin in allowed:
        return True
    host = header(scope, b"host")
    return host is not None and urlsplit(origin).netloc == host


def choose_encoding(offered: list[str]) -> Encoding | None:
    """The wire format for the subprotocols a client offered: the first one we speak, JSON when it
    offered none, None when it offered only others (the handshake is then refused)."""
    if not offered:
        return Encoding.JSON
    for name in offered:
        if name in SUBPROTOCOLS:
            return Encoding(name)
    return None
