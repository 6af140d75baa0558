"""Login, sessions, cookies and the WebSocket Origin check, through the real HTTP API; a login
lockout, said by the failure that locks, and lifted by a pupil's teacher (on every process)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from protocol import CloseCode, Hello, Ping
from tests.client import Client
from tests.conftest import PASSWORD, login
from tests.processes import two_processes


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
    # The fifth failure locks the username for five minutes, and says so at once (not "wrong
    # password", then the lock at the next try).
    locking = await attempt(6)
    assert locking.status_code == 429 and locking.json()["error"]["code"] == "rate_limited"
    assert 290 <= int(locking.headers["retry-after"]) <= 301
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


# -- a lockout said at once, and lifted by the pupil's teacher ----------------------------------


async def _lock(http, username: str) -> list:
    """Five wrong passwords at once for `username` (the throttle counts them before checking
    them: the fifth locks), from addresses of their own so that no other test's address is
    counted; the answers, in order."""
    net = secrets.randbelow(250) + 1

    async def guess(i: int):
        return await http.post("/api/login", json={"username": username, "password": f"wrong-{i}"},
                               headers={"X-Forwarded-For": f"198.18.{net}.{i + 1}"})

    return await asyncio.gather(*(guess(i) for i in range(5)))


async def _locked(http, username: str) -> bool:
    r = await http.post("/api/login", json={"username": username, "password": PASSWORD},
                        headers={"X-Forwarded-For": "198.18.0.1"})
    http.cookies.clear()
    if r.status_code == 429:
        return True
    assert r.status_code == 200, r.text
    return False


async def test_the_failure_that_locks_says_so_for_a_real_and_an_unknown_username_alike(http, world):
    """The try that reaches the limit answers 429 with the lock's wait — for a username nobody
    has, counted and locked the same way, the very same answer (no username enumeration)."""
    answers = {}
    for username in (world.users["visitor"].username, f"nobody-{secrets.token_hex(3)}"):
        tried = [await http.post("/api/login", json={"username": username, "password": f"wrong-{i}"},
                                 headers={"X-Forwarded-For": "198.18.251.7"}) for i in range(2)]
        assert [r.status_code for r in tried] == [401, 401]  # two free mistakes
        locking = await _lock(http, username)  # three more at once: the last of them locks
        assert [r.status_code for r in locking].count(429) >= 1
        last = next(r for r in locking if r.status_code == 429 and int(r.headers["retry-after"]) > 60)
        assert 290 <= int(last.headers["retry-after"]) <= 301
        answers[username] = (last.status_code, last.json()["error"]["code"],
                             re.sub(r"\d+", "#", last.json()["error"]["message"]))  # the wait may differ by a second
    real, unknown = answers.values()
    assert real == unknown
    assert real[:2] == (429, "rate_limited")


async def test_a_teacher_admin_unlocks_a_locked_pupil_who_logs_in_at_once(http, world, make_world, pool):
    pupil = world.users["pupil_member"]
    await _lock(http, pupil.username)
    assert await _locked(http, pupil.username)
    url = f"/api/spaces/{world.space_id}/members/{pupil.id}/unlock"

    # Refused: a teacher of another project (from this project's address, and from their own),
    # a pupil, a visitor, and a teacher member who did not invite this pupil — the lock holds.
    other = await make_world()
    stranger = {"authorization": f"Bearer {await login(http, other.users['teacher_admin'].username)}"}
    r = await http.post(url, headers=stranger)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    r = await http.post(f"/api/spaces/{other.space_id}/members/{pupil.id}/unlock", headers=stranger)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    for who in ("pupil_admin", "visitor", "teacher_member"):
        r = await http.post(url, headers={"authorization": f"Bearer {await login(http, world.users[who].username)}"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), who
    assert (await http.post(url)).status_code == 401  # and nobody signed in
    assert await _locked(http, pupil.username)

    # Their teacher admin lifts it: the pupil logs in at once, with the right password.
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    before = datetime.now(UTC)
    r = await http.post(url, headers=admin)
    assert r.status_code == 200 and r.json() == {"space": world.space_id, "user_id": pupil.id, "unlocked": True}
    assert not await _locked(http, pupil.username)
    # The audit log says who did it; the member list says the lock is over.
    log = (await http.get(f"/api/spaces/{world.space_id}/audit", headers=admin)).json()["entries"]
    unlocked = [e for e in log if e["action"] == "login.unlocked"]
    assert [(e["actor_id"], e["target_id"], e["details"]) for e in unlocked] == [
        (world.users["teacher_admin"].id, pupil.id, {"by_project": world.space_id})]
    row = next(m for m in (await http.get(f"/api/spaces/{world.space_id}/members", headers=admin)).json()["members"]
               if m["id"] == pupil.id)
    ends = datetime.fromisoformat(row["locked_until"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) <= ends <= datetime.now(UTC) and row["lockouts"] == 1
    # Nothing locked now: an unlock lifts nothing, and writes nothing.
    r = await http.post(url, headers=admin)
    assert r.status_code == 200 and r.json()["unlocked"] is False
    # An adult's lock is not theirs to lift (nobody but its owner holds an adult's password).
    r = await http.post(f"/api/spaces/{world.space_id}/members/{world.users['visitor'].id}/unlock", headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


async def test_twenty_unlocks_at_once_lift_one_lock_and_write_one_entry(http, world, pool):
    pupil = world.users["pupil_admin"]
    await _lock(http, pupil.username)
    assert await _locked(http, pupil.username)
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    url = f"/api/spaces/{world.space_id}/members/{pupil.id}/unlock"
    answers = await asyncio.gather(*(http.post(url, headers=admin) for _ in range(20)))
    assert [r.status_code for r in answers] == [200] * 20
    assert 1 <= [r.json()["unlocked"] for r in answers].count(True) <= 2  # the lift, and the entry
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'login.unlocked' AND target_id = $1"
                               " AND space_id = $2", pupil.id, world.space_id) == 1
    assert not await _locked(http, pupil.username)


async def test_a_new_password_lifts_the_lock_and_a_teacher_member_unlocks_their_own_pupils(http, world):
    teacher = {"authorization": f"Bearer {await login(http, world.users['teacher_member'].username)}"}
    made = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=teacher, json={"pupils": ["Ana L.", "Ola K."]})
    ana, ola = made.json()["pupils"]
    # A new password, given by the teacher who invited her, works at once: the lock is over.
    await _lock(http, ana["username"])
    r = await http.post(f"/api/spaces/{world.space_id}/members/{ana['id']}/password", headers=teacher,
                        json={"password": "river5"})
    assert r.status_code == 200
    await login(http, ana["username"], "river5")
    row = next(m for m in (await http.get(f"/api/spaces/{world.space_id}/members", headers=teacher)).json()["members"]
               if m["id"] == ana["id"])
    assert datetime.fromisoformat(row["locked_until"].replace("Z", "+00:00")) <= datetime.now(UTC)
    # The same teacher member unlocks the other pupil they invited.
    await _lock(http, ola["username"])
    r = await http.post(f"/api/spaces/{world.space_id}/members/{ola['id']}/unlock", headers=teacher)
    assert r.status_code == 200 and r.json()["unlocked"] is True
    await login(http, ola["username"], ola["password"])


@pytest.fixture(scope="module")
async def pair(database_url, redis_url):
    async with two_processes(database_url, redis_url, f"twinhub-unlock-{os.getpid()}") as processes:
        yield processes


async def test_an_unlock_on_one_process_holds_on_the_other(pair, world):
    """Two processes count failures together (in Redis): a pupil locked through A is refused on
    B; their teacher unlocks on B, and the pupil logs in on A at once."""
    a, b, on_a, on_b = pair
    pupil = world.users["pupil_member"]
    await _lock(on_a, pupil.username)
    assert await _locked(on_b, pupil.username) and await _locked(on_a, pupil.username)
    admin = {"authorization": f"Bearer {await login(on_b, world.users['teacher_admin'].username)}"}
    r = await on_b.post(f"/api/spaces/{world.space_id}/members/{pupil.id}/unlock", headers=admin)
    assert r.status_code == 200 and r.json()["unlocked"] is True
    assert not await _locked(on_a, pupil.username)
