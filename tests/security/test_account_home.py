"""An account has a home (docs/roles.md, "Accounts belong somewhere"): the attack of a teacher
admin of *another* project — invite a pupil by username, make them a pupil there, reset their
password, log in as the child — fails at every step, and the rules behind it hold on every path.
Everything through the HTTP API and real sockets of a running server."""

from __future__ import annotations

import asyncio

import pytest

from protocol import Error, Subscribe
from realtime.policy import Area
from storage import WrongKind, spaces
from tests.client import Client
from tests.conftest import PASSWORD, login


async def _auth(http, username: str, password: str = PASSWORD) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, username, password)}"}


@pytest.fixture
async def two_projects(make_world):
    """Project A (the pupil's own) and project B, whose teacher admin is the attacker."""
    return await make_world(), await make_world()


async def test_a_pupil_is_never_invited_by_username_and_the_answer_says_nothing(two_projects, http):
    a, b = two_projects
    attacker = await _auth(http, b.users["teacher_admin"].username)
    url = f"/api/spaces/{b.space_id}/invitations"
    answers = {}
    for who in (a.users["pupil_member"].username, a.users["pupil_admin"].username, "nobody-at-all",
                a.users["moderator"].username):
        r = await http.post(url, headers=attacker, json={"username": who, "role": "visitor"})
        answers[who] = (r.status_code, r.json()["error"]["code"], r.json()["error"]["message"].replace(who, "…"))
    assert len(set(answers.values())) == 1, answers  # a pupil answers exactly like no account at all
    assert next(iter(answers.values()))[:2] == (404, "not_found")
    # An adult can be invited; their real name is not shown before they accept.
    r = await http.post(url, headers=attacker, json={"username": a.users["visitor"].username, "role": "visitor"})
    assert r.status_code == 201, r.text
    assert r.json()["invitation"]["invitee"]["name"] is None


async def test_an_outside_project_cannot_reset_re_role_or_take_over_a_pupil(two_projects, http, pool):
    a, b = two_projects
    pupil = a.users["pupil_member"]
    # However the pupil came to be in B too (here, as the CLI's add-member would put them):
    await spaces.set_member(pool, b.space_id, pupil.id, "pupil_member")
    attacker = await _auth(http, b.users["teacher_admin"].username)
    r = await http.post(f"/api/spaces/{b.space_id}/members/{pupil.id}/password", headers=attacker,
                        json={"password": "taken1"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    for role in ("visitor", "teacher_member", "teacher_admin"):
        r = await http.patch(f"/api/spaces/{b.space_id}/members/{pupil.id}", headers=attacker, json={"role": role})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), role
    await login(http, pupil.username)  # the child's password is still their own
    r = await http.post("/api/login", json={"username": pupil.username, "password": "taken1"})
    assert r.status_code == 401


async def test_an_adult_is_never_made_a_pupil_by_a_role_change(world, http, pool):
    admin = await _auth(http, world.users["teacher_admin"].username)
    for who in ("visitor", "teacher_member"):
        r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users[who].id}", headers=admin,
                             json={"role": "pupil_member"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), who
    # And the schema holds it on every other path (the CLI, a script): adult <-> pupil is not a role.
    with pytest.raises(WrongKind):
        await spaces.set_member(pool, world.space_id, world.users["visitor"].id, "pupil_member")
    with pytest.raises(WrongKind):
        await spaces.set_member(pool, world.space_id, world.users["pupil_member"].id, "teacher_member")


async def test_a_pupil_cannot_take_an_adults_invitation_code(two_projects, http):
    a, b = two_projects
    admin = await _auth(http, b.users["teacher_admin"].username)
    code = (await http.post(f"/api/spaces/{b.space_id}/invitations", headers=admin,
                            json={"role": "teacher_member"})).json()["code"]
    pupil = a.users["pupil_member"]
    r = await http.post("/api/invitations/redeem", headers=await _auth(http, pupil.username), json={"code": code})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    members = (await http.get(f"/api/spaces/{b.space_id}/members", headers=admin)).json()["members"]
    assert pupil.id not in {m["id"] for m in members}
    invitations = (await http.get(f"/api/spaces/{b.space_id}/invitations", headers=admin)).json()["invitations"]
    assert [i["status"] for i in invitations] == ["pending"]  # the code is not used up


async def test_a_reset_at_home_ends_every_session_at_once_and_every_project_sees_it(two_projects, http, server, pool):
    a, b = two_projects
    pupil = a.users["pupil_member"]
    await spaces.set_member(pool, b.space_id, pupil.id, "pupil_member")
    old = await login(http, pupil.username)
    sockets = [await Client.connect(f"ws://127.0.0.1:{server.port}/ws", old) for _ in range(2)]
    try:
        await sockets[0].ok(Subscribe(a.channel(Area.CHAT)))
        home = await _auth(http, a.users["teacher_admin"].username)
        r = await http.post(f"/api/spaces/{a.space_id}/members/{pupil.id}/password", headers=home,
                            json={"password": "river5"})
        assert r.status_code == 200, r.text
        for s in sockets:  # closed at once, 4001, on every socket of the old password
            ended = await s.next_frame(Error, timeout=3)
            assert ended.code == "unauthenticated"
            assert await s.closed(timeout=3) == 4001
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
    assert (await http.get("/api/me", headers={"authorization": f"Bearer {old}"})).status_code == 401
    # Written to the audit log of each project the child is in, not only the one that reset it.
    for project in (a, b):
        log = (await http.get(f"/api/spaces/{project.space_id}/audit",
                              headers=await _auth(http, project.users["teacher_admin"].username))).json()["entries"]
        resets = [e for e in log if e["action"] == "member.password_reset" and e["target_id"] == pupil.id]
        assert len(resets) == 1 and resets[0]["details"] == {"by_project": a.space_id}, project.space_id
    # The pupil is told who reset it, at the first login after, and only then.
    first = await http.post("/api/login", json={"username": pupil.username, "password": "river5"})
    assert first.json()["password_reset"]["by"]["name"] == a.users["teacher_admin"].display_name
    again = await http.post("/api/login", json={"username": pupil.username, "password": "river5"})
    assert again.json()["password_reset"] is None


async def test_invitations_are_limited_per_inviter_and_per_project(world, http):
    """Threat: a script trying usernames (or flooding codes) through a teacher admin's account."""
    from realtime.services.invitations import INVITES_PER_MEMBER, INVITES_PER_PROJECT

    url = f"/api/spaces/{world.space_id}/invitations"
    first = await _auth(http, world.users["teacher_admin"].username)
    for who in ("teacher_member", "visitor"):  # two more teacher admins
        r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users[who].id}", headers=first,
                             json={"role": "teacher_admin"})
        assert r.status_code == 200, r.text
    admins = [first, *[await _auth(http, world.users[w].username) for w in ("teacher_member", "visitor")]]

    async def invite(headers) -> int:
        return (await http.post(url, headers=headers, json={"role": "visitor"})).status_code

    made = [await invite(first) for _ in range(INVITES_PER_MEMBER)]
    assert made == [201] * INVITES_PER_MEMBER
    r = await http.post(url, headers=first, json={"role": "visitor"})
    assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited") and "retry-after" in r.headers
    rest = INVITES_PER_PROJECT - INVITES_PER_MEMBER
    made = [await invite(admins[1 + i % 2]) for i in range(rest)]
    assert made == [201] * rest
    assert await invite(admins[2]) == 429  # the project's budget is spent, whoever asks
