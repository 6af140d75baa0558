"""The security headers on every HTTP answer. The page runs only its own scripts and styles (no
inline script: a message that smuggled markup in could not run it), talks only to this server,
and is framed by nobody. The connection guard (run/guard.py) sends them on its own refusals too."""

from __future__ import annotations

from typing import Any

SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def with_security_headers(send: Any) -> Any:
    """An ASGI `send` that adds SECURITY_HEADERS to the response's start."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            # A route's own (a file's sandboxing CSP) stands; the rest are added.
            own = {name.lower() for name, _ in message.get("headers", [])}
            message["headers"] = [*message.get("headers", []), *(h for h in SECURITY_HEADERS if h[0] not in own)]
        await send(message)

    return sending
