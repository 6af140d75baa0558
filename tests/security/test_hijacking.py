"""Another site acting with a child's browser: cross-site WebSocket hijacking, cross-site
requests riding the session cookie (CSRF), login CSRF, and reading answers across origins.

Covered elsewhere (docs/security.md): a cookie-authenticated WebSocket from a foreign Origin is
refused with HTTP 403 and one from our own origin works, a cookie POST from a foreign Origin is
`forbidden` (tests/e2e/test_auth.py).
"""

from __future__ import annotations

import pytest
import websockets

from protocol import Hello
from realtime.policy import Area
from tests.client import Client
from tests.conftest import PASSWORD, login

EVIL = "http://evil.example"


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"twinhub_session={token}"}


@pytest.mark.parametrize("origin", [
    None,  # no Origin at all: not a browser on our page, and the cookie is all it has
    "null",  # a sandboxed iframe or a file: page
    "http://127.0.0.1.evil.example",  # our host as a prefix of theirs
    "https://evil.example",
])
async def test_cookie_websocket_from_anywhere_but_our_origin_is_refused(origin, server, http, world):
    """Threat: cross-site WebSocket hijacking — a page elsewhere opens /ws with the child's
    cookie and reads their rooms and mail."""
    token = await login(http, world.users["pupil_member"].username)
    kw = {"origin": origin} if origin else {}
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"ws://127.0.0.1:{server.port}/ws", additional_headers=cookie(token), **kw)
    assert refused.value.response.status_code == 403


async def test_a_foreign_page_with_a_token_it_guessed_still_gets_nothing(server, http, world):
    """Threat: cross-site WebSocket without the cookie — allowed on purpose (a token is needed,
    which another site cannot read); a made-up one ends the socket with 4001."""
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None, origin=EVIL)
    err = await client.error(Hello(token="guessed"))
    assert err.code == "unauthenticated" and await client.closed() == 4001


@pytest.mark.parametrize(("method", "path", "body"), [
    ("DELETE", "/api/spaces/{space}/members/{pupil}", None),
    ("PATCH", "/api/spaces/{space}/members/{pupil}", {"role": "pupil_admin"}),
    ("POST", "/api/spaces/{space}/mail", {"to": ["{pupil}"], "subject": "s", "text": "from evil"}),
    ("POST", "/api/spaces/{space}/invitations", {"role": "teacher_admin", "label": "evil"}),
    ("POST", "/api/spaces/{space}/members/{pupil}/password", {}),
    ("POST", "/api/spaces/{space}/public", {"public": False}),
    ("POST", "/api/logout/everywhere", None),
])
async def test_cookie_requests_that_change_things_from_another_site_are_forbidden(method, path, body, http, world, pool):
    """Threat: CSRF — a page elsewhere makes the teacher's browser remove a pupil, send mail,
    invite a stranger as administrator, reset a pupil's password or end the sessions."""
    token = await login(http, world.users["teacher_admin"].username)
    fill = {"space": world.space_id, "pupil": world.users["pupil_member"].id}
    path = path.format(**fill)
    if body and "to" in body:
        body = {**body, "to": [fill["pupil"]]}
    before = await snapshot(pool, world)
    r = await http.request(method, path, json=body, headers={**cookie(token), "Origin": EVIL})
    assert (r.status_code, r.json()["error"]) == (403, {"code": "forbidden", "message": "cross-site request refused"})
    assert await snapshot(pool, world) == before
    assert (await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def snapshot(pool, world):
    return (
        await pool.fetch("SELECT user_id, role FROM members WHERE space_id = $1 ORDER BY user_id", world.space_id),
        await pool.fetchval("SELECT count(*) FROM mails WHERE space_id = $1", world.space_id),
        await pool.fetchval("SELECT count(*) FROM invitations WHERE space_id = $1", world.space_id),
        await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", world.users["pupil_member"].id),
        await pool.fetchval("SELECT public FROM spaces WHERE id = $1", world.space_id),
        await pool.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL",
                            world.users["teacher_admin"].id),
    )


async def test_login_from_another_site_is_refused(http, world, server):
    """Threat: login CSRF — a page elsewhere signs the child's browser in to an account the
    attacker holds; whatever the child then writes, the attacker reads."""
    user = world.users["pupil_member"]
    r = await http.post("/api/login", json={"username": user.username, "password": "correct horse"},
                        headers={"Origin": EVIL})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert "set-cookie" not in r.headers
    own = await http.post("/api/login", json={"username": user.username, "password": "correct horse"},
                          headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert own.status_code == 200 and "twinhub_session" in own.headers["set-cookie"]
    http.cookies.clear()


async def test_logout_from_another_site_is_refused(http, world):
    """Threat: a page elsewhere signs the child out again and again (a nuisance that teaches
    children to ignore logins)."""
    token = await login(http, world.users["pupil_member"].username)
    r = await http.post("/api/logout", headers={**cookie(token), "Origin": EVIL})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert (await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200


async def test_answers_are_not_readable_across_origins(http, world):
    """Threat: a page elsewhere reads the child's data with their cookie (a GET needs no
    Origin check: no CORS header ever lets another origin read the answer)."""
    token = await login(http, world.users["pupil_member"].username)
    for path in ("/api/me", f"/api/rooms/{world.rooms[Area.CHAT]}/messages", f"/api/spaces/{world.space_id}/members"):
        r = await http.get(path, headers={**cookie(token), "Origin": EVIL})
        assert r.status_code == 200
        assert not [h for h in r.headers if h.startswith("access-control-")], (path, r.headers)
    pre = await http.request("OPTIONS", "/api/me", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in pre.headers


async def test_the_session_cookie_is_httponly_and_samesite(http, world):
    """Threat: a script injected in a page (or another site's request) carries the session away."""
    r = await http.post("/api/login", json={"username": world.users["pupil_member"].username, "password": "correct horse"})
    set_cookie = r.headers["set-cookie"].lower()
    http.cookies.clear()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie and "path=/" in set_cookie


async def test_a_get_another_site_makes_with_the_cookie_does_nothing(http, world, pool):
    """Threat: a GET with an effect — a reported mail viewed is written to the audit log — made by
    another site's <img> or link with the child's (or teacher's) cookie. A browser says who made
    the request (Sec-Fetch-Site): a cross-site one is refused on every API route."""
    token = await login(http, world.users["teacher_admin"].username)
    looks = "SELECT count(*) FROM audit_log WHERE space_id = $1"
    before = await pool.fetchval(looks, world.space_id)
    for path in (f"/api/spaces/{world.space_id}/mail/reports", "/api/me", f"/api/spaces/{world.space_id}/audit"):
        r = await http.get(path, headers={**cookie(token), "Sec-Fetch-Site": "cross-site"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), path
    assert await pool.fetchval(looks, world.space_id) == before
    # The page's own requests (same-origin), and bearer tokens (bots, scripts), are not affected.
    assert (await http.get("/api/me", headers={**cookie(token), "Sec-Fetch-Site": "same-origin"})).status_code == 200
    assert (await http.get("/api/me", headers={"Authorization": f"Bearer {token}",
                                               "Sec-Fetch-Site": "cross-site"})).status_code == 200


async def test_the_session_cookie_is_secure_over_tls_through_a_trusted_proxy(http, world):
    """Threat: the session cookie sent in clear over plain HTTP after a login over HTTPS. Behind a
    trusted proxy (the test server trusts 127.0.0.1) that terminated TLS, the cookie is Secure."""
    r = await http.post("/api/login", headers={"X-Forwarded-Proto": "https"},
                        json={"username": world.users["pupil_member"].username, "password": PASSWORD})
    assert "secure" in r.headers["set-cookie"].lower()
    http.cookies.clear()
    r = await http.post("/api/login", json={"username": world.users["pupil_member"].username, "password": PASSWORD})
    assert "secure" not in r.headers["set-cookie"].lower()  # plain HTTP (local development): no
    http.cookies.clear()
