"""Security headers on every HTTP answer — the page, its modules, JSON, CSV and HTML exports,
errors of every kind (the app's, the router's, the HTTP parser's), the live SSE stream,
/healthz, /readyz and /metrics — each header exactly once, as docs/protocol.md "HTTP API" lists
them, and nothing that names the server's software."""

from __future__ import annotations

import asyncio

from realtime.policy import Area
from realtime.web.headers import SECURITY_HEADERS
from tests.conftest import login, public_view_on

EXPECTED = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}


def check(response_headers, what: str) -> None:
    for name, value in EXPECTED.items():
        assert response_headers.get_list(name) == [value], (what, name, response_headers)
    assert "server" not in response_headers and "x-powered-by" not in response_headers, what


def test_the_documented_headers_are_the_ones_set():
    """Threat: the documentation promising a policy the server does not send (or the reverse)."""
    assert EXPECTED == {
        "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                   "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                                   "form-action 'self'",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "x-frame-options": "DENY",
    }


async def test_every_kind_of_answer_carries_the_security_headers(world, http, pool):
    """Threat: a message's markup run as script in the page (XSS), the page framed by another
    site (clickjacking), a JSON or CSV answer sniffed as HTML, a pupil's link leaking the page's
    address (Referer) — on the one answer that forgot its headers."""
    admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    s = world.space_id
    await public_view_on(pool, world)  # off for a new project
    cases = [
        ("GET", "/", None, None, 200),
        ("GET", "/static/app.js", None, None, 200),
        ("GET", "/static/style.css", None, None, 200),
        ("GET", "/static/nothing.js", None, None, 404),
        ("GET", "/healthz", None, None, 200),
        ("GET", "/readyz", None, None, 200),
        ("GET", "/metrics", None, None, 200),
        ("GET", "/api/me", admin, None, 200),
        ("GET", "/api/me", None, None, 401),
        ("POST", "/api/login", None, {"username": "nobody-here", "password": "x"}, 401),
        ("POST", "/api/login", None, {"username": 5}, 400),
        ("GET", f"/api/rooms/{world.rooms[Area.CHAT]}/messages", admin, None, 200),
        ("GET", "/api/rooms/987654321/messages", admin, None, 404),
        ("GET", f"/api/spaces/{s}/audit?format=csv", admin, None, 200),
        ("POST", f"/api/spaces/{s}/pupils?format=html", admin, {"pupils": ["Zoé"]}, 201),
        ("POST", f"/api/spaces/{s}/pupils?format=csv", admin, {"pupils": ["Zoë"]}, 201),
        ("GET", f"/api/public/{world.slug}", None, None, 200),
        ("GET", "/api/public/no-such-project", None, None, 404),
        ("GET", "/no/such/route", None, None, 404),
        ("DELETE", "/healthz", None, None, 405),
        ("POST", f"/api/spaces/{s}/mail", admin, "x" * 70_000, 413),
    ]
    for method, path, headers, body, status in cases:
        kw = {"content": body} if isinstance(body, str) else {"json": body}
        r = await http.request(method, path, headers=headers, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text[:200])
        check(r.headers, f"{method} {path}")


async def test_the_live_public_stream_carries_them_too(world, http, pool):
    """Threat: the one long-lived HTTP answer (SSE) served without the policy."""
    await public_view_on(pool, world)  # off for a new project
    async with http.stream("GET", f"/api/public/{world.slug}/events") as r:
        assert r.status_code == 200
        check(r.headers, "SSE")


async def test_the_http_parser_s_own_errors_carry_them(server):
    """Threat: an answer written by the server below the app (a malformed request) that the
    app's headers never reach."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
    answer = (await asyncio.wait_for(reader.read(), 5)).lower()
    writer.close()
    assert answer.startswith(b"http/1.1 400 ")
    for name, value in SECURITY_HEADERS:
        assert name + b": " + value.lower() in answer


async def test_the_session_is_never_read_from_a_url(http, world):
    """Threat: a token in a URL ends up in history, proxies' logs and Referer headers: the
    server never reads one from the query string."""
    token = await login(http, world.users["pupil_member"].username)
    r = await http.get(f"/api/me?token={token}&access_token={token}")
    assert r.status_code == 401
