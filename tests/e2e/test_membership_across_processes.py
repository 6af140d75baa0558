"""A membership changed through the HTTP API on process A holds on process B: B's cached rights
(its open sockets) and B's cached roster of the project (TwinMail) follow. This covers every path that
changes who belongs: pupil accounts, an accepted invitation, a role change, a removal.

Two `twinhub serve` processes share one PostgreSQL and one Redis. Before each change, B caches
the roster: a teacher on B sends mail in the project. Then the change is made on A. Every wait is
bounded (LIVE seconds: the bus's latency, with room for a loaded machine), and every process
started here is stopped by its PID."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

from protocol import Error, Ok, Post, SendMail, Subscribe, Welcome
from realtime.policy import Area
from tests.client import Client
from tests.conftest import PASSWORD, login
from tests.processes import two_processes

LIVE = 5.0  # seconds B may take to follow a change made on A


@pytest.fixture(scope="module")
async def pair(database_url, redis_url):
    async with two_processes(database_url, redis_url, f"twinhub-membership-{os.getpid()}", TWINHUB_MAIL_RATE="1000",
                    TWINHUB_MAIL_BURST="1000") as processes:
        yield processes


async def _auth(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, username, password)}"}


async def _mail(http: httpx.AsyncClient, auth: dict[str, str], space_id: int, to: int, tag: str) -> httpx.Response:
    """A TwinMail from the `auth` user to `to` (the client_id makes a retry safe)."""
    return await http.post(f"/api/spaces/{space_id}/mail", headers=auth, json={
        "to": [to], "subject": f"mail {tag}", "text": "Bonjour !", "client_id": tag,
    })


async def _until(attempt, done) -> httpx.Response:
    """Call `attempt()` until `done(answer)` or LIVE seconds have passed; return the last answer."""
    deadline = time.monotonic() + LIVE
    while True:
        answer = await attempt()
        if done(answer) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.1)


def _projects(spaces: list[dict]) -> list[tuple[int, str]]:
    return [(s["id"], s["role"]) for s in spaces]


async def test_pupils_created_on_a_are_members_on_b_at_once(pair, world):
    a, b, on_a, on_b = pair
    sid, teacher = world.space_id, world.users["teacher_admin"]
    on_b_teacher = await _auth(on_b, teacher.username)
    cached = await _mail(on_b, on_b_teacher, sid, world.users["pupil_member"].id, "roster-1")
    assert cached.status_code == 201, cached.text  # B now holds the project's roster

    r = await on_a.post(f"/api/spaces/{sid}/pupils", headers=await _auth(on_a, teacher.username),
                        json={"pupils": ["Zoé Dupont"], "school": "École Jean Moulin, Lyon"})
    assert r.status_code == 201, r.text
    [zoe] = r.json()["pupils"]
    assert (zoe["name"], zoe["school"]) == ("Zoé Dupont", "École Jean Moulin, Lyon")

    # She logs in on B: /api/me and her welcome list the project.
    zoe_token = await login(on_b, zoe["username"], zoe["password"])
    me = await on_b.get("/api/me", headers={"authorization": f"Bearer {zoe_token}"})
    assert me.status_code == 200 and _projects(me.json()["spaces"]) == [(sid, "pupil_member")]
    zoe_socket = await Client.connect(b.ws, zoe_token)
    try:
        assert _projects(zoe_socket.welcome.spaces) == [(sid, "pupil_member")]
        # A teacher on B mails her: B's roster has her.
        sent = await _until(lambda: _mail(on_b, on_b_teacher, sid, zoe["id"], "to-zoe"),
                            lambda r: r.status_code == 201)
        assert sent.status_code == 201, sent.text
        book = (await on_b.get(f"/api/spaces/{sid}/mail/recipients", headers=on_b_teacher)).json()["members"]
        assert {m["id"]: m["role"] for m in book}.get(zoe["id"]) == "pupil_member"
        # On B, her own socket follows her mailbox, which holds that mail, and she answers.
        box = zoe_socket.welcome.spaces[0]["mailbox"]["channel"]
        await zoe_socket.ok(Subscribe(box, since=0))
        [received] = await zoe_socket.wait_events(box, 1)
        assert received.kind == "mail.received" and received.data["mail"]["from"]["id"] == teacher.id
        reply = await zoe_socket.request(SendMail(sid, (teacher.id,), "Merci !", subject="Re"))
        assert isinstance(reply, Ok), reply
    finally:
        await zoe_socket.close()


async def test_an_invitation_accepted_on_a_makes_a_member_on_b_at_once(pair, world):
    a, b, on_a, on_b = pair
    sid, guest = world.space_id, world.users["outsider"]
    on_b_teacher = await _auth(on_b, world.users["teacher_admin"].username)
    cached = await _mail(on_b, on_b_teacher, sid, world.users["pupil_member"].id, "roster-2")
    assert cached.status_code == 201, cached.text
    guest_socket = await Client.connect(b.ws, await login(on_b, guest.username))  # open on B before
    try:
        assert guest_socket.welcome.spaces == []
        r = await on_a.post(f"/api/spaces/{sid}/invitations",
                            headers=await _auth(on_a, world.users["teacher_admin"].username),
                            json={"username": guest.username, "role": "teacher_member"})
        assert r.status_code == 201, r.text
        r = await on_a.post(f"/api/invitations/{r.json()['invitation']['id']}/accept",
                            headers=await _auth(on_a, guest.username))
        assert r.status_code == 200 and r.json()["invitation"]["status"] == "accepted", r.text

        # Her socket on B gets a fresh welcome with the project, and enters it without reconnecting.
        fresh = await guest_socket.next_frame(Welcome, timeout=LIVE)
        assert _projects(fresh.spaces) == [(sid, "teacher_member")]
        await guest_socket.ok(Subscribe(world.channel(Area.TEACHERS_ROOM)))
        # B's member list and B's roster have her: a teacher on B mails her.
        members = (await on_b.get(f"/api/spaces/{sid}/members", headers=on_b_teacher)).json()["members"]
        assert {m["id"]: m["role"] for m in members}.get(guest.id) == "teacher_member"
        sent = await _until(lambda: _mail(on_b, on_b_teacher, sid, guest.id, "to-guest"),
                            lambda r: r.status_code == 201)
        assert sent.status_code == 201, sent.text
    finally:
        await guest_socket.close()


@pytest.mark.parametrize(("method", "body", "ends_with"), [
    ("PATCH", {"role": "visitor"}, "forbidden"),  # visitors do not read the chat
    ("DELETE", None, "not_member"),
], ids=["role-change", "removal"])
async def test_a_role_change_or_removal_on_a_ends_the_subscription_on_b(pair, world, method, body, ends_with):
    a, b, on_a, on_b = pair
    sid, member, chat = world.space_id, world.users["teacher_member"], world.channel(Area.CHAT)
    on_b_teacher = await _auth(on_b, world.users["teacher_admin"].username)
    cached = await _mail(on_b, on_b_teacher, sid, member.id, f"roster-{method}")
    assert cached.status_code == 201, cached.text
    member_socket = await Client.connect(b.ws, await login(on_b, member.username))
    try:
        await member_socket.ok(Subscribe(chat))
        r = await on_a.request(method, f"/api/spaces/{sid}/members/{member.id}", json=body,
                               headers=await _auth(on_a, world.users["teacher_admin"].username))
        assert r.status_code == 200, r.text
        assert r.json() == {"space": sid, "user_id": member.id, "role": body["role"] if body else None}

        ended = await member_socket.next_frame(Error, timeout=LIVE)
        assert (ended.code, ended.ref, ended.data.get("channel")) == (ends_with, None, chat)
        fresh = await member_socket.next_frame(Welcome, timeout=LIVE)
        assert _projects(fresh.spaces) == ([(sid, "visitor")] if body else [])
        # B's roster follows too: the teacher's address book on B, and a mail to them from B.
        if body:
            book = await _until(lambda: on_b.get(f"/api/spaces/{sid}/mail/recipients", headers=on_b_teacher),
                                lambda r: {m["id"]: m["role"] for m in r.json()["members"]}.get(member.id) == "visitor")
            assert {m["id"]: m["role"] for m in book.json()["members"]}.get(member.id) == "visitor", book.text
        else:
            refused = await _until(lambda: _mail(on_b, on_b_teacher, sid, member.id, "to-removed"),
                                   lambda r: r.status_code == 404)
            assert refused.status_code == 404, refused.text
            assert (refused.json()["error"]["code"], refused.json()["error"]["recipients"]) == ("not_found", [member.id])
    finally:
        await member_socket.close()


async def test_the_public_stream_on_b_follows_changes_made_on_a(pair, world):
    """An anonymous viewer of the public journal on B: a teacher demoted to visitor on A is not
    named on B any more (the relay re-reads the roles), and turning the public view off on A ends
    the stream on B at once."""
    from tests.e2e.test_public import SseReader

    a, b, on_a, on_b = pair
    sid = world.space_id
    admin = await _auth(on_a, world.users["teacher_admin"].username)
    r = await on_a.post(f"/api/spaces/{sid}/public", headers=admin, json={"public": True})  # off for a new project
    assert r.json()["public"] is True
    teacher = world.users["teacher_member"]
    teacher_socket = await Client.connect(a.ws, await login(on_a, teacher.username))
    [space] = [s for s in teacher_socket.welcome.spaces if s["id"] == sid]
    journal = next(r["channel"] for r in space["rooms"] if r["kind"] == "journal")
    try:
        entry = await teacher_socket.ok(Post(journal, "From the river", title="Week 8"))
        async with httpx.AsyncClient(timeout=LIVE * 2) as anonymous, anonymous.stream(
            "GET", f"{b.url}/api/public/{world.slug}/events"
        ) as stream:
            events = SseReader(stream)
            _, _, data = await events.next(timeout=LIVE)
            assert data["message"]["author"]["name"] == teacher.display_name  # a teacher: named
            r = await on_a.patch(f"/api/spaces/{sid}/members/{teacher.id}", headers=admin, json={"role": "visitor"})
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.5)  # the bus's latency; the relay on B re-reads the roles
            await teacher_socket.ok(Post(journal, "Now as a parent", parent=entry.data["id"]))
            _, _, data = await events.next(timeout=LIVE)
            assert data["message"]["author"] == {"name": None, "label": "a member of the project", "badge": None}
            r = await on_a.post(f"/api/spaces/{sid}/public", headers=admin, json={"public": False})
            assert r.json()["public"] is False
            with pytest.raises(AssertionError, match="the stream ended"):
                await events.next(timeout=LIVE)
    finally:
        await teacher_socket.close()
        await on_a.post(f"/api/spaces/{sid}/public", headers=admin, json={"public": True})


async def test_closing_a_project_on_a_reaches_its_members_sockets_on_b(pair, world):
    """A project closed (then reopened) through A: every member's socket on B gets a fresh
    `welcome` saying so at once (docs/protocol.md, `welcome`), and B refuses posts while it is
    closed — not only A's sockets, and not only once the member tries to post."""
    a, b, on_a, on_b = pair
    sid, chat = world.space_id, world.channel(Area.CHAT)
    admin = await _auth(on_a, world.users["teacher_admin"].username)
    on_b_sockets = [await Client.connect(b.ws, await login(on_b, world.users[who].username))
                    for who in ("pupil_member", "visitor", "teacher_member")]
    try:
        for closed, route in ((True, "close"), (False, "reopen")):
            r = await on_a.post(f"/api/spaces/{sid}/{route}", headers=admin)
            assert r.status_code == 200, r.text
            for socket in on_b_sockets:
                fresh = await socket.next_frame(Welcome, timeout=LIVE)
                assert [s["closed"] for s in fresh.spaces if s["id"] == sid] == [closed]
            answer = await on_b_sockets[0].request(Post(chat, f"closed={closed}"))
            assert (answer.code if isinstance(answer, Error) else "ok") == ("space_closed" if closed else "ok")
    finally:
        for socket in on_b_sockets:
            await socket.close()


async def test_a_projects_language_set_on_a_reaches_b_at_once(pair, world):
    """Languages (docs/protocol.md): a teacher admin sets the project's language on A; a member's
    socket on B gets a fresh welcome carrying it, and B's /api/me says it."""
    a, b, on_a, on_b = pair
    sid = world.space_id
    pupil_token = await login(on_b, world.users["pupil_member"].username)
    socket = await Client.connect(b.ws, pupil_token)
    try:
        r = await on_a.put(f"/api/spaces/{sid}/language", headers=await _auth(on_a, world.users["teacher_admin"].username),
                           json={"language": "pl"})
        assert r.status_code == 200, r.text
        fresh = await socket.next_frame(Welcome, timeout=LIVE)
        assert [s["language"] for s in fresh.spaces if s["id"] == sid] == ["pl"]
        me = await on_b.get("/api/me", headers={"authorization": f"Bearer {pupil_token}"})
        assert [s["language"] for s in me.json()["spaces"] if s["id"] == sid] == ["pl"]
        # A pupil's own choice made on B is the one A's next login reads.
        assert (await on_b.put("/api/account/language", headers={"authorization": f"Bearer {pupil_token}"},
                               json={"language": "uk"})).status_code == 200
        again = await _auth(on_a, world.users["pupil_member"].username)
        assert (await on_a.get("/api/me", headers=again)).json()["user"]["language"] == "uk"
    finally:
        await socket.close()
