"""Security headers on every HTTP answer — the page, its modules, JSON, CSV and HTML exports,
errors of every kind (the app's, the router's, the HTTP parser's), the live SSE stream,
/healthz, /readyz and /metrics — each header exactly once, as docs/protocol.md "HTTP API" lists
them, and nothing that names the server's software. And the page's files: revalidated (ETag,
304) and gzipped, their security headers kept on both (docs/performance.md, "The page")."""

from __future__ import annotations

import asyncio
import json

from protocol import Post
from realtime.policy import Area
from realtime.web.api import STATIC
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
        ("GET", "/static/favicon.svg", None, None, 200),
        ("GET", "/favicon.ico", None, None, 301),
        ("GET", f"/public/{world.slug}", None, None, 200),
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


async def test_the_page_s_files_are_revalidated_and_gzipped_with_their_headers(world, http):
    """Not a threat but the page's weight (issue 10): every file of the page is kept by the
    browser and asked again with its ETag (no-cache: a deploy is seen at once), answered 304
    while unchanged, gzipped above 1 KB — and each of these answers keeps the security headers."""
    gzip = {"Accept-Encoding": "gzip"}
    for path in ("/static/app.js", "/static/style.css", "/static/locales/en.json", "/"):
        r = await http.get(path, headers=gzip)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "no-cache" and r.headers["etag"], (path, r.headers)
        assert r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower(), path
        check(r.headers, path)
        again = await http.get(path, headers={**gzip, "If-None-Match": r.headers["etag"]})
        assert again.status_code == 304 and again.content == b"", path
        assert again.headers["cache-control"] == "no-cache" and again.headers["etag"] == r.headers["etag"], path
        check(again.headers, f"{path} (304)")
    # The body is the file, whether gzipped or not; a file under 1 KB goes as it is.
    plain = await http.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == (STATIC / "app.js").read_bytes() == (await http.get("/static/app.js", headers=gzip)).content
    assert (STATIC / "favicon.svg").stat().st_size < 1024
    assert "content-encoding" not in (await http.get("/static/favicon.svg", headers=gzip)).headers
    # The tab's icon: a small SVG, kept a day; /favicon.ico leads to it (never a 404 in the log).
    icon = await http.get("/favicon.ico")
    assert (icon.status_code, icon.headers["location"]) == (301, "/static/favicon.svg")
    svg = await http.get("/static/favicon.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and svg.headers["cache-control"] == "max-age=86400"
    # JSON too: a welcome is well over 1 KB.
    admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    me = await http.get("/api/me", headers={**admin, **gzip})
    assert me.headers["content-encoding"] == "gzip" and me.json()["user"]["id"] == world.users["teacher_admin"].id


async def test_the_live_stream_is_neither_gzipped_nor_held_back(world, connect, server, pool):
    """The SSE stream must go out event by event: compression would hold each event back in the
    compressor (or the stream would need a flush per event), so text/event-stream is never gzipped,
    even for a client that asks for it."""
    import httpx

    await public_view_on(pool, world)  # a new project's public view is off
    teacher = await connect(world.users["teacher_admin"])
    [space] = [s for s in teacher.welcome.spaces if s["id"] == world.space_id]
    journal = next(r["channel"] for r in space["rooms"] if r["kind"] == "journal")
    url = f"http://127.0.0.1:{server.port}/api/public/{world.slug}/events"
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream(
        "GET", url, headers={"Accept-Encoding": "gzip"}
    ) as r:
        assert r.status_code == 200 and "content-encoding" not in r.headers
        check(r.headers, "SSE asked gzipped")
        lines = r.aiter_lines()
        await teacher.ok(Post(journal, "Live, at once " + "x" * 2000, title="Week 9"))

        async def first_event() -> dict:
            async for line in lines:
                if line.startswith("data:"):
                    return json.loads(line[5:])
            raise AssertionError("the stream ended")

        data = await asyncio.wait_for(first_event(), 5)
        assert data["message"]["title"] == "Week 9"


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
