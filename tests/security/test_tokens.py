"""Tokens: forged, expired, revoked, too long, of another kind, of another project — over the
WebSocket and over HTTP. Each refusal is the one docs/protocol.md documents (`unauthenticated`,
HTTP 401, close 4001) and changes nothing.

Covered elsewhere (docs/security.md): a forged token in `hello` (tests/e2e/test_bad_input.py),
a logged-out token (tests/e2e/test_auth.py), logging out everywhere closing open sockets
(tests/e2e/test_auth.py), a bot token used anywhere but its own project's journal
(tests/e2e/test_bots.py).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest

from protocol import CloseCode, Error, Hello, Post, SendMail, Subscribe
from realtime.policy import Area
from realtime.services.auth import token_hash
from storage import accounts
from tests.client import Client
from tests.conftest import login

NOT_A_SESSION = "log in first (unknown, expired or revoked token)"


async def hello_refused(server, token: str) -> None:
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
    try:
        err = await client.error(Hello(token=token))
        assert err.code == "unauthenticated"
        assert await client.closed() == CloseCode.AUTH_FAILED
    finally:
        await client.close()


async def http_refused(http, token: str, world) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    for method, path, body in (
        ("GET", "/api/me", None),
        ("GET", f"/api/rooms/{world.rooms[Area.CHAT]}/messages", None),
        ("POST", f"/api/spaces/{world.space_id}/close", None),
        ("POST", f"/api/spaces/{world.space_id}/mail", {"to": [world.users["pupil_member"].id], "subject": "s", "text": "t"}),
    ):
        r = await http.request(method, path, headers=bearer, json=body)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"] == {"code": "unauthenticated", "message": NOT_A_SESSION}


async def expired_session(pool, user_id: int) -> str:
    token = secrets.token_urlsafe(32)
    await accounts.create_session(pool, token_hash(token), user_id, datetime.now(UTC) - timedelta(seconds=1))
    return token


async def test_an_expired_token_is_refused_everywhere(server, http, world, pool):
    """Threat: a session token copied from an old browser or log, used after it expired."""
    token = await expired_session(pool, world.users["teacher_admin"].id)
    await hello_refused(server, token)
    await http_refused(http, token, world)
    assert (await pool.fetchrow("SELECT closed_at FROM spaces WHERE id = $1", world.space_id))["closed_at"] is None


async def test_a_revoked_token_is_refused_on_every_http_route(server, http, world, pool):
    """Threat: a token that was logged out (a shared classroom computer) still works somewhere."""
    token = await login(http, world.users["teacher_admin"].username)
    r = await http.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    await http_refused(http, token, world)
    await hello_refused(server, token)


@pytest.mark.parametrize("token", [
    "null",
    "x" * 201,  # over the documented 200 characters
    "twb_" + "A" * 43,  # the shape of a bot token
    "' OR '1'='1",
    "\u00e9\u00e8\U0001f600",
    "Bearer Bearer",
])
async def test_forged_tokens_of_every_shape_are_refused_over_http(token, http, world):
    """Threat: a forged token — "null", oversized, a guessed bot-token shape, SQL, odd Unicode."""
    r = await http.get("/api/me", headers={"Authorization": f"Bearer {token}".encode()})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthenticated"


async def test_an_oversized_token_in_hello_is_refused_before_any_lookup(server, http):
    """Threat: a megabyte "token" to make the server hash and look it up. A token longer than any
    token is refused as every token that opens no session is — `unauthenticated`, then close
    4001, as HTTP answers 401 — before it is hashed or looked up (services/auth.py's session_key)."""
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
    try:
        await client.send_raw('{"type":"hello","token":"' + "x" * 10_000 + '","ref":1}')
        err = await client.next_frame(Error)
        assert (err.code, err.ref) == ("unauthenticated", 1)
        assert await client.closed() == CloseCode.AUTH_FAILED
    finally:
        await client.close()
    r = await http.get("/api/me", headers={"Authorization": "Bearer " + "x" * 10_000})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated")


async def test_a_token_of_project_a_opens_nothing_of_project_b(make_world, connect, http, pool):
    """Threat: a valid session of a member of project A, used to reach project B's rooms,
    mail, members, reports and audit log (a token is a person, never a project pass)."""
    a, b = await make_world(), await make_world()
    intruder = a.users["teacher_admin"]
    client = await connect(intruder)
    assert [s["id"] for s in client.welcome.spaces] == [a.space_id]
    for area in Area:
        for frame in (Subscribe(b.channel(area)), Post(b.channel(area), "hi from A")):
            err = await client.error(frame)
            assert err.code == "not_found", (area, frame)
    err = await client.error(SendMail(b.space_id, (b.users["pupil_member"].id,), "hello", subject="hi"))
    assert err.code == "not_found"
    bearer = {"Authorization": f"Bearer {await login(http, intruder.username)}"}
    for method, path in (
        ("GET", f"/api/spaces/{b.space_id}/members"),
        ("GET", f"/api/spaces/{b.space_id}/audit"),
        ("GET", f"/api/spaces/{b.space_id}/reports"),
        ("GET", f"/api/spaces/{b.space_id}/activity"),
        ("GET", f"/api/spaces/{b.space_id}/invitations"),
        ("GET", f"/api/spaces/{b.space_id}/mail"),
        ("POST", f"/api/spaces/{b.space_id}/close"),
        ("POST", f"/api/spaces/{b.space_id}/pupils"),
    ):
        r = await http.request(method, path, headers=bearer, json={"pupils": ["Eve"]} if "pupils" in path else None)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found"), (path, r.text)
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE space_id = $1", b.space_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM members WHERE space_id = $1", b.space_id) == 5
    assert (await pool.fetchrow("SELECT closed_at FROM spaces WHERE id = $1", b.space_id))["closed_at"] is None


async def test_a_bot_token_of_project_a_posts_nothing_in_project_b(make_world, http, pool):
    """Threat: a bot token (scoped to one project's journal) used on another project, or on
    its own project as a member session."""
    a, b = await make_world(), await make_world()
    admin = {"Authorization": f"Bearer {await login(http, a.users['teacher_admin'].username)}"}
    bot = (await http.post(f"/api/spaces/{a.space_id}/bots", headers=admin, json={"name": "Weather"})).json()
    bearer = {"Authorization": f"Bearer {bot['token']}"}
    r = await http.post(f"/api/spaces/{b.space_id}/journal", headers=bearer, json={"title": "t", "text": "x"})
    assert r.status_code in (403, 404) and r.json()["error"]["code"] in ("forbidden", "not_found")
    r = await http.post(f"/api/spaces/{a.space_id}/mail", headers=bearer,
                        json={"to": [a.users["pupil_member"].id], "subject": "s", "text": "t"})
    assert r.status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE space_id = ANY($1)", [a.space_id, b.space_id]) == 0


async def test_tokens_and_codes_are_stored_only_as_hashes(world, http, pool):
    """Threat: a leaked database backup gives working sessions, bot tokens or invitation codes."""
    admin = {"Authorization": f"Bearer {(token := await login(http, world.users['teacher_admin'].username))}"}
    bot = (await http.post(f"/api/spaces/{world.space_id}/bots", headers=admin, json={"name": "B"})).json()["token"]
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "visitor", "label": "a parent"})).json()["code"]
    rows = []
    for table in ("sessions", "bots", "invitations"):
        rows += await pool.fetch(f"SELECT * FROM {table}")  # noqa: S608 — fixed table names
    dump = "\n".join(str(tuple(r)) for r in rows)
    for secret in (token, bot, code):
        assert secret not in dump
        hashes = await pool.fetch("SELECT token_hash FROM sessions UNION ALL SELECT token_hash FROM bots")
        assert secret.encode() not in b"".join(bytes(r[0]) for r in hashes)
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE token_hash = $1", token_hash(token)) == 1
