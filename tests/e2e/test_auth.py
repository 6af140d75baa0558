"""Login, sessions, cookies and the WebSocket Origin check, through the real HTTP API."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import websockets

from protocol import CloseCode, Hello, Ping
from tests.client import Client
from tests.conftest import PASSWORD, login


async def test_login_gives_a_token_and_an_httponly_cookie(http, world):
    r = await http.post("/api/login", json={"username": world.users["pupil_member"].username, "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert len(body["token"]) >= 40 and body["user"]["id"] == world.users["pupil_member"].id
    cookie = r.headers["set-cookie"].lower()
    assert "twinhub_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie


@pytest.mark.parametrize("body", [{}, {"username": "x"}, {"username": 5, "password": "y"}, [1, 2]])
async def test_malformed_login_is_invalid_field(http, body):
    r = await http.post("/api/login", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] in ("invalid_field", "bad_frame")


async def test_wrong_password_and_unknown_user_look_the_same(http, world):
    a = await http.post("/api/login", json={"username": world.users["visitor"].username, "password": "nope"})
    b = await http.post("/api/login", json={"username": "nobody-at-all", "password": "nope"})
    assert a.status_code == b.status_code == 401
    assert a.json() == b.json()


async def test_brute_force_is_slowed_then_locked_out_even_with_the_right_password(http, world):
    username = world.users["pupil_admin"].username

    async def attempt(i: int):
        return await http.post("/api/login", json={"username": username, "password": f"guess{i}"})

    assert [(await attempt(i)).status_code for i in range(3)] == [401, 401, 401]  # two free mistakes, a third
    slowed = await attempt(3)  # at once: it must wait (the test server's back-off is 0.2 s, doubling)
    assert slowed.status_code == 429 and slowed.json()["error"]["code"] == "rate_limited"
    assert 0 < slowed.json()["error"]["retry_after_ms"] <= 200
    await asyncio.sleep(0.25)
    assert (await attempt(4)).status_code == 401  # the fourth failure: 0.4 s now
    assert (await attempt(5)).status_code == 429
    await asyncio.sleep(0.45)
    assert (await attempt(6)).status_code == 401  # the fifth: locked for five minutes
    r = await http.post("/api/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert 290 <= int(r.headers["retry-after"]) <= 301
    # The pupil's teacher admins see it happened, in their project's audit log.
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    log = (await http.get(f"/api/spaces/{world.space_id}/audit", headers=admin)).json()["entries"]
    locked = [e for e in log if e["action"] == "login.locked"]
    assert [(e["target_id"], e["details"]["failures"]) for e in locked] == [(world.users["pupil_admin"].id, 5)]
    # So do the teacher members, on the member list (the pupil may have been theirs).
    teacher = {"authorization": f"Bearer {await login(http, world.users['teacher_member'].username)}"}
    members = (await http.get(f"/api/spaces/{world.space_id}/members", headers=teacher)).json()["members"]
    by_id = {m["id"]: m for m in members}
    assert by_id[world.users["pupil_admin"].id]["lockouts"] == 1
    assert by_id[world.users["pupil_admin"].id]["locked_at"] is not None
    # …and until when the pupil cannot log in: the lock's five minutes from when it began.
    locked = by_id[world.users["pupil_admin"].id]
    began, ends = (datetime.fromisoformat(locked[k].replace("Z", "+00:00")) for k in ("locked_at", "locked_until"))
    assert ends - began == timedelta(seconds=300)
    assert by_id[world.users["pupil_member"].id]["lockouts"] == 0
    assert by_id[world.users["pupil_member"].id]["locked_until"] is None


async def test_me_needs_a_session(http, world):
    assert (await http.get("/api/me")).json()["error"]["code"] == "unauthenticated"
    token = await login(http, world.users["teacher_member"].username)
    me = (await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["user"]["id"] == world.users["teacher_member"].id
    assert any(s["id"] == world.space_id and s["role"] == "teacher_member" for s in me["spaces"])


async def test_logout_revokes_the_token_for_http_and_websocket(http, server, world):
    token = await login(http, world.users["pupil_member"].username)
    await http.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
    r = await http.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
    err = await client.error(Hello(token=token))
    assert err.code == "unauthenticated"
    assert await client.closed() == CloseCode.AUTH_FAILED


async def test_cookie_websocket_from_own_origin_needs_no_token(server, http, world):
    token = await login(http, world.users["pupil_member"].username)
    headers = {"Cookie": f"twinhub_session={token}"}
    origin = f"http://127.0.0.1:{server.port}"
    client = await Client.connect(
        f"ws://127.0.0.1:{server.port}/ws", None, additional_headers=headers, origin=origin
    )
    try:
        welcome = await client.request(Hello())
        assert welcome.user["id"] == world.users["pupil_member"].id
    finally:
        await client.close()


async def test_cookie_websocket_from_another_site_is_refused(server, http, world):
    token = await login(http, world.users["pupil_member"].username)
    headers = {"Cookie": f"twinhub_session={token}"}
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(
            f"ws://127.0.0.1:{server.port}/ws", additional_headers=headers, origin="http://evil.example"
        )
    assert info.value.response.status_code == 403


async def test_cookie_post_from_another_site_is_refused(server, http, world):
    token = await login(http, world.users["teacher_admin"].username)
    r = await http.post(
        f"/api/spaces/{world.space_id}/close",
        headers={"Cookie": f"twinhub_session={token}", "Origin": "http://evil.example"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_history_over_http_pages_newest_first(http, world, connect):
    from protocol import Post
    from realtime.policy import Area

    client = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    for i in range(5):
        await client.ok(Post(chat, f"m{i}"))
    token = await login(http, world.users["teacher_member"].username)
    auth = {"Authorization": f"Bearer {token}"}
    room_id = world.rooms[Area.CHAT]
    page = (await http.get(f"/api/rooms/{room_id}/messages?limit=2", headers=auth)).json()
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"] and page["more"] is True
    before = page["messages"][-1]["seq"]
    page = (await http.get(f"/api/rooms/{room_id}/messages?limit=10&before={before}", headers=auth)).json()
    assert [m["text"] for m in page["messages"]] == ["m2", "m1", "m0"] and page["more"] is False
    bad = await http.get(f"/api/rooms/{room_id}/messages?limit=abc", headers=auth)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_field"


async def test_history_of_a_forbidden_room_is_refused(http, world):
    from realtime.policy import Area

    token = await login(http, world.users["pupil_member"].username)
    auth = {"Authorization": f"Bearer {token}"}
    r = await http.get(f"/api/rooms/{world.rooms[Area.TEACHERS_ROOM]}/messages", headers=auth)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await http.get("/api/rooms/987654321/messages", headers=auth)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_health_and_readiness(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    r = await http.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    metrics = (await http.get("/metrics")).text
    assert "twinhub_websockets_open" in metrics and "twinhub_posts_committed_total" in metrics


async def test_log_out_everywhere_ends_every_session_and_closes_their_sockets(world, http, server):
    user = world.users["teacher_member"]
    phone, laptop = await login(http, user.username), await login(http, user.username)
    socket = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", phone)
    r = await http.post("/api/logout/everywhere", headers={"authorization": f"Bearer {laptop}"})
    assert r.status_code == 200 and r.json()["sessions_ended"] >= 2
    assert await socket.closed() == CloseCode.AUTH_FAILED  # the phone's open socket, at once
    for token in (phone, laptop):
        assert (await http.get("/api/me", headers={"authorization": f"Bearer {token}"})).status_code == 401
    fresh = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", await login(http, user.username))
    assert fresh.welcome is not None  # logging in again works, and is not caught by the old revocation
    assert (await fresh.request(Ping())).type == "pong"
    await fresh.close()
