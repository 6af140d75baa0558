"""Privacy of accounts and profiles (docs/privacy.md; docs/roles.md, "Own accounts and
profiles"): who reads a member's profile, who clears it, who exports or erases a pupil's data —
tried from every role, from another project, by a platform moderator, by an outsider and after
the member was removed; twenty erasures at once; an erasure that must close the pupil's sockets
on every process; and what an erasure keeps. Real sockets, real PostgreSQL, real processes."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from protocol import Error, Post, Subscribe
from realtime.policy import Area
from storage import spaces
from tests.client import Client
from tests.conftest import login, public_view_on
from tests.processes import two_processes

ROLES = ("teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor")
LIVE = 5.0  # seconds another process may take to follow a change


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _auth(http, username: str) -> dict[str, str]:
    return _bearer(await login(http, username))


def _answer(r) -> tuple[int, str]:
    return r.status_code, (r.json().get("error") or {}).get("code", "ok")


@pytest.fixture
async def two_projects(make_world, pool):
    """Project A (the pupils' home) and project B, whose teacher admin is a stranger to A — A's
    pupil_member is also a member of B (as the CLI's add-member would make them)."""
    a, b = await make_world(), await make_world()
    await spaces.set_member(pool, b.space_id, a.users["pupil_member"].id, "pupil_member")
    return a, b


# -- profiles ---------------------------------------------------------------------------------------


# viewer -> the roles whose profile they read (200); the others answer as given.
SEES = {
    "teacher_admin": dict.fromkeys(ROLES, 200),
    "teacher_member": dict.fromkeys(ROLES, 200),
    "moderator": dict.fromkeys(ROLES, 200),
    "pupil_admin": {**dict.fromkeys(ROLES[:4], 200), "visitor": 403},
    "pupil_member": {**dict.fromkeys(ROLES[:4], 200), "visitor": 403},
    "visitor": {"teacher_admin": 200, "teacher_member": 200, "pupil_admin": 404, "pupil_member": 404, "visitor": 200},
    "outsider": dict.fromkeys(ROLES, 404),
}


async def test_who_reads_whose_profile(two_projects, http):
    """Threat: a visitor collecting pupils' profiles (names, schools, interests), a stranger's
    "about me" read by children, a profile read from another project."""
    a, b = two_projects
    for who in ROLES:
        r = await http.put("/api/profile", headers=await _auth(http, a.users[who].username),
                           json={"about": f"about {who}", "interests": [f"secret of {who}"]})
        assert r.status_code == 200, r.text
    for viewer, expected in SEES.items():
        auth = await _auth(http, a.users[viewer].username)
        for target in ROLES:
            r = await http.get(f"/api/spaces/{a.space_id}/members/{a.users[target].id}/profile", headers=auth)
            assert r.status_code == expected[target], (viewer, target, r.text)
            if r.status_code == 200:
                assert r.json()["about"] == f"about {target}"
                assert r.json()["user"] == {"id": a.users[target].id, "name": a.users[target].display_name,
                                            "school": a.users[target].school,
                                            "role": {"teacher_admin": "teacher", "teacher_member": "teacher",
                                                     "visitor": "visitor"}.get(target, "pupil")}
    # A pupil asked for by a visitor answers exactly as someone who is not in the project.
    visitor = await _auth(http, a.users["visitor"].username)
    pupil = await http.get(f"/api/spaces/{a.space_id}/members/{a.users['pupil_admin'].id}/profile", headers=visitor)
    nobody = await http.get(f"/api/spaces/{a.space_id}/members/{a.users['outsider'].id}/profile", headers=visitor)
    assert pupil.json() == nobody.json()
    # Another project's teacher admin, through A's id or their own project: nothing.
    stranger = await _auth(http, b.users["teacher_admin"].username)
    for space, target in ((a.space_id, "teacher_admin"), (a.space_id, "pupil_admin"), (b.space_id, "pupil_admin")):
        r = await http.get(f"/api/spaces/{space}/members/{a.users[target].id}/profile", headers=stranger)
        assert _answer(r) == (404, "not_found"), (space, target)
    # The pupil who is in B too is seen there by B's members: it is their project as well.
    r = await http.get(f"/api/spaces/{b.space_id}/members/{a.users['pupil_member'].id}/profile", headers=stranger)
    assert r.json()["about"] == "about pupil_member"


async def test_a_removed_member_neither_reads_nor_is_read(world, http):
    """Threat: a member removed from a project keeps reading its members' profiles, or stays
    readable there."""
    sid = world.space_id
    leaving = world.users["teacher_member"]
    auth = await _auth(http, leaving.username)
    await http.put("/api/profile", headers=auth, json={"about": "still here"})
    admin = await _auth(http, world.users["teacher_admin"].username)
    assert (await http.get(f"/api/spaces/{sid}/members/{leaving.id}/profile", headers=admin)).status_code == 200
    assert (await http.delete(f"/api/spaces/{sid}/members/{leaving.id}", headers=admin)).status_code == 200
    for target in ROLES:
        r = await http.get(f"/api/spaces/{sid}/members/{world.users[target].id}/profile", headers=auth)
        assert _answer(r) == (404, "not_found"), target
    r = await http.get(f"/api/spaces/{sid}/members/{leaving.id}/profile", headers=admin)
    assert _answer(r) == (404, "not_found")
    assert (await http.get("/api/profile", headers=auth)).json()["about"] == "still here"  # it is still theirs


async def test_a_profile_never_reaches_the_public_view(world, http, pool):
    """Threat: a pupil's profile leaving the project through the public view (no login)."""
    await public_view_on(pool, world)  # off for a new project: on, to look there
    marker = "my-secret-hobby-7f3a"
    for who in ROLES:
        await http.put("/api/profile", headers=await _auth(http, world.users[who].username),
                       json={"about": marker, "interests": [marker]})
    page = await http.get(f"/api/public/{world.slug}")
    assert page.status_code == 200 and marker not in page.text
    async with http.stream("GET", f"/api/public/{world.slug}/events") as events:
        assert events.status_code == 200
        seen = b""
        async for chunk in events.aiter_bytes():
            seen += chunk
            if b"keep-alive" in seen or len(seen) > 4096 or b"\n\n" in seen:
                break
        assert marker.encode() not in seen
    # Nor through anything anonymous: every profile route wants a session.
    for url in ("/api/profile", f"/api/spaces/{world.space_id}/members/{world.users['pupil_member'].id}/profile"):
        assert (await http.get(url)).status_code == 401


async def test_who_clears_a_profile(two_projects, http):
    """Threat: anyone but the pupil's school (or, for an adult, the platform's moderators)
    tampering with a profile; the cleared words kept for ever in the audit log."""
    a, b = two_projects
    pupil, visitor = a.users["pupil_member"], a.users["visitor"]
    for who in (pupil, visitor):
        await http.put("/api/profile", headers=await _auth(http, who.username), json={"about": "something unkind"})
    url = f"/api/spaces/{a.space_id}/members/{pupil.id}/profile"
    refusals = {
        "teacher_member": (403, "forbidden"), "pupil_admin": (403, "forbidden"), "visitor": (404, "not_found"),
        "moderator": (403, "forbidden"), "outsider": (404, "not_found"),
    }
    for who, expected in refusals.items():
        r = await http.delete(url, headers=await _auth(http, a.users[who].username))
        assert _answer(r) == expected, who
    # B's teacher admin, where the pupil is a member too: not the pupil's home.
    stranger = await _auth(http, b.users["teacher_admin"].username)
    r = await http.delete(f"/api/spaces/{b.space_id}/members/{pupil.id}/profile", headers=stranger)
    assert _answer(r) == (403, "forbidden")
    admin = await _auth(http, a.users["teacher_admin"].username)
    r = await http.delete(f"{url}?reason=not%20kind", headers=admin)
    assert r.json() == {"space": a.space_id, "user_id": pupil.id, "cleared": True}
    assert (await http.get(url, headers=admin)).json()["about"] == ""
    # An adult's profile shows in every project they are in: platform moderators clear it, not
    # one project's teacher admins.
    adult = f"/api/spaces/{a.space_id}/members/{visitor.id}/profile"
    assert _answer(await http.delete(adult, headers=admin)) == (403, "forbidden")
    r = await http.delete(adult, headers=await _auth(http, a.users["moderator"].username))
    assert r.json()["cleared"] is True
    log = (await http.get(f"/api/spaces/{a.space_id}/audit", headers=admin)).json()["entries"]
    cleared = [(e["actor_id"], e["target_id"], e["reason"]) for e in log if e["action"] == "profile.clear"]
    assert cleared == [(a.users["moderator"].id, visitor.id, ""), (a.users["teacher_admin"].id, pupil.id, "not kind")]
    assert "something unkind" not in json.dumps(log)  # the act is audited, never the words


# -- a pupil's data: export and erasure -------------------------------------------------------------


async def test_only_the_home_projects_teacher_admins_export_or_erase_a_pupil(two_projects, http):
    """Threat: another project's teacher admin, a colleague, a moderator, a parent or a teacher
    admin since removed taking a child's data or erasing the child's account; a teacher admin
    reading a pupil's mail through an export."""
    a, b = two_projects
    pupil = a.users["pupil_member"]
    await http.post(f"/api/spaces/{a.space_id}/mail", headers=await _auth(http, pupil.username),
                    json={"to": [a.users["pupil_admin"].id], "subject": "our secret", "text": "a pupil's mail"})
    home = f"/api/spaces/{a.space_id}/pupils/{pupil.id}"
    refusals = {
        "teacher_member": (403, "forbidden"), "pupil_admin": (403, "forbidden"), "pupil_member": (403, "forbidden"),
        "visitor": (404, "not_found"), "moderator": (403, "forbidden"), "outsider": (404, "not_found"),
    }
    for who, expected in refusals.items():
        auth = await _auth(http, a.users[who].username)
        assert _answer(await http.get(f"{home}/export", headers=auth)) == expected, who
        assert _answer(await http.post(f"{home}/erase", headers=auth, json={})) == expected, who
    stranger = await _auth(http, b.users["teacher_admin"].username)
    for url, expected in ((f"/api/spaces/{b.space_id}/pupils/{pupil.id}", (403, "forbidden")),  # in B, not at home
                          (home, (404, "not_found"))):  # A, a project B's teacher admin is not in
        assert _answer(await http.get(f"{url}/export", headers=stranger)) == expected, url
        assert _answer(await http.post(f"{url}/erase", headers=stranger, json={})) == expected, url
    admin = await _auth(http, a.users["teacher_admin"].username)
    for target, expected in ((a.users["visitor"].id, (403, "forbidden")),  # adults delete their own
                             (b.users["pupil_admin"].id, (404, "not_found")),  # a pupil of another project
                             (2**40, (404, "not_found"))):
        assert _answer(await http.get(f"/api/spaces/{a.space_id}/pupils/{target}/export", headers=admin)) == expected

    r = await http.get(f"{home}/export", headers=admin)
    assert r.status_code == 200, r.text
    export = json.loads(r.content)
    assert export["account"]["id"] == pupil.id and export["exported_by"] == a.users["teacher_admin"].id
    assert export["mail"]["included"] is False  # nobody reads another member's mailbox
    assert [m["project"] for m in export["memberships"]] == [a.space_id]  # B's is B's
    assert "our secret" not in r.text and "a pupil's mail" not in r.text

    # A teacher admin who left the project holds no right over its pupils any more.
    colleague = a.users["teacher_member"]
    assert (await http.patch(f"/api/spaces/{a.space_id}/members/{colleague.id}", headers=admin,
                             json={"role": "teacher_admin"})).status_code == 200
    assert (await http.post(f"/api/spaces/{a.space_id}/leave", headers=admin)).status_code == 200
    assert _answer(await http.get(f"{home}/export", headers=admin)) == (404, "not_found")
    assert _answer(await http.post(f"{home}/erase", headers=admin, json={})) == (404, "not_found")
    r = await http.post(f"{home}/erase", headers=await _auth(http, colleague.username), json={"reason": "family asked"})
    assert r.json() == {"id": pupil.id, "erased": True}


async def test_twenty_erasures_at_once_erase_once(two_projects, http):
    """Threat: erasures racing each other, erasing twice or half-way."""
    a, b = two_projects
    pupil = a.users["pupil_member"]
    admin = await _auth(http, a.users["teacher_admin"].username)
    answers = await asyncio.gather(*(
        http.post(f"/api/spaces/{a.space_id}/pupils/{pupil.id}/erase", headers=admin, json={}) for _ in range(20)
    ))
    assert sorted(_answer(r) for r in answers) == [(200, "ok")] + [(404, "not_found")] * 19
    for project in (a, b):  # one entry in each project the pupil was in
        log = (await http.get(f"/api/spaces/{project.space_id}/audit",
                              headers=await _auth(http, project.users["teacher_admin"].username))).json()["entries"]
        erased = [e for e in log if e["action"] == "account.erased"]
        assert [(e["target_id"], e["details"]) for e in erased] == [(pupil.id, {"by_project": a.space_id})]


async def test_an_erasure_keeps_the_facts_and_the_evidence_and_forgets_the_person(two_projects, http, pool, connect):
    """Threat: an erasure that destroys the evidence of what a pupil wrote (a report, the audit
    log), or one that leaves the pupil's name, login or address-like profile behind."""
    a, b = two_projects
    sid, pupil = a.space_id, a.users["pupil_member"]
    admin = await _auth(http, a.users["teacher_admin"].username)
    writer = await connect(pupil)
    posted = await writer.ok(Post(a.channel(Area.CHAT), "you are all stupid"))
    room = a.rooms[Area.CHAT]
    r = await http.post(f"/api/rooms/{room}/messages/{posted.data['id']}/report",
                        headers=await _auth(http, a.users["pupil_admin"].username), json={"note": "unkind"})
    assert r.status_code == 201, r.text
    assert (await http.post(f"/api/spaces/{sid}/members/{pupil.id}/password", headers=admin,
                            json={"password": "river5"})).status_code == 200
    r = await http.put("/api/profile", headers=_bearer(await login(http, pupil.username, "river5")),
                       json={"about": "I live at 3 rue X"})
    assert r.status_code == 200, r.text

    r = await http.post(f"/api/spaces/{sid}/pupils/{pupil.id}/erase", headers=admin, json={"reason": "left school"})
    assert r.status_code == 200, r.text

    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1", pupil.id)
    assert (row["username"], row["display_name"], row["school"], row["password_hash"]) == (
        f"#erased-{pupil.id}", "a former member", "", None)
    assert row["kind"] == "pupil" and row["home_space_id"] == sid  # what the account was, not who
    assert await pool.fetchval("SELECT count(*) FROM profiles WHERE user_id = $1", pupil.id) == 0
    assert await pool.fetchval("SELECT count(*) FROM members WHERE user_id = $1", pupil.id) == 0
    assert (await http.post("/api/login", json={"username": pupil.username, "password": "river5"})).status_code == 401
    # The audit log keeps every fact, naming an id that no longer maps to a person.
    log = (await http.get(f"/api/spaces/{sid}/audit", headers=admin)).json()["entries"]
    about = [(e["action"], e["reason"]) for e in log if e["target_id"] == pupil.id and e["target_kind"] == "user"]
    assert ("account.erased", "left school") in about and ("member.password_reset", "") in about
    assert pupil.display_name not in json.dumps(log) and pupil.username not in json.dumps(log)
    # The evidence: the report still quotes the words, the message is still there, unsigned.
    reports = (await http.get(f"/api/spaces/{sid}/reports", headers=admin)).json()["reports"]
    [report] = [x for x in reports if x["message"]["id"] == posted.data["id"]]
    assert "you are all stupid" in json.dumps(report) and pupil.display_name not in json.dumps(report)
    history = (await http.get(f"/api/rooms/{room}/messages", headers=admin)).json()["messages"]
    [kept] = [m for m in history if m["id"] == posted.data["id"]]
    assert kept["text"] == "you are all stupid" and kept["author"]["name"] == "a former member"
    # B, where the pupil was too, is told: the member is gone, and the fact is in B's log.
    members = (await http.get(f"/api/spaces/{b.space_id}/members",
                              headers=await _auth(http, b.users["teacher_admin"].username))).json()["members"]
    assert pupil.id not in {m["id"] for m in members}


@pytest.fixture(scope="module")
async def pair(database_url, redis_url):
    async with two_processes(database_url, redis_url, f"twinhub-privacy-{os.getpid()}") as processes:
        yield processes


async def test_an_erasure_closes_the_pupils_sockets_on_every_process(pair, world):
    """Threat: an erased pupil's socket left open on another process, still reading the project."""
    a, b, on_a, on_b = pair
    pupil = world.users["pupil_member"]
    tokens = [await login(on_a, pupil.username), await login(on_b, pupil.username)]
    sockets = [await Client.connect(a.ws, tokens[0]), await Client.connect(b.ws, tokens[1])]
    try:
        for s in sockets:
            await s.ok(Subscribe(world.channel(Area.CHAT)))
        admin = _bearer(await login(on_a, world.users["teacher_admin"].username))
        started = time.monotonic()
        r = await on_a.post(f"/api/spaces/{world.space_id}/pupils/{pupil.id}/erase", headers=admin, json={})
        assert r.status_code == 200, r.text
        for s in sockets:
            assert (await s.next_frame(Error, timeout=LIVE)).code == "unauthenticated"
            assert await s.closed(timeout=LIVE) == 4001
        assert time.monotonic() - started < LIVE
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
    for token in tokens:
        assert (await on_b.get("/api/me", headers=_bearer(token))).status_code == 401
    # B has forgotten them as a member too (its roster followed): mail to them is refused.
    teacher = _bearer(await login(on_b, world.users["teacher_member"].username))
    r = await on_b.post(f"/api/spaces/{world.space_id}/mail", headers=teacher,
                        json={"to": [pupil.id], "subject": "hello", "text": "are you there?"})
    assert _answer(r) == (404, "not_found")
