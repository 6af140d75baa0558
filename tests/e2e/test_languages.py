"""Languages over real HTTP (docs/protocol.md, "Languages"): each account's own, kept by the
server; each project's own, its teacher admins' to set; pupils' accounts made in it, with
usernames transliterated from any script and never taken twice; the printed sheet in it."""

from __future__ import annotations

import asyncio
import html

import pytest

from realtime.services import pupils as pupils_service
from realtime.web.words import say
from storage import audit
from tests.conftest import login


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def _me(http, headers) -> dict:
    r = await http.get("/api/me", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_account_keeps_its_language_wherever_it_logs_in(world, http):
    pupil = world.users["pupil_member"]
    first = {"authorization": f"Bearer {await login(http, pupil.username)}"}
    assert (await _me(http, first))["user"]["language"] is None  # none chosen: the browser's decides
    r = await http.put("/api/account/language", headers=first, json={"language": "fr"})
    assert r.status_code == 200 and r.json() == {"language": "fr"}
    # Another computer: a new login, the same language.
    other = {"authorization": f"Bearer {await login(http, pupil.username)}"}
    assert (await _me(http, other))["user"]["language"] == "fr"
    # Someone else's choice is their own.
    assert (await _me(http, await _auth(http, world, "pupil_admin")))["user"]["language"] is None
    assert (await http.put("/api/account/language", headers=other, json={"language": None})).json() == {"language": None}
    assert (await _me(http, first))["user"]["language"] is None


@pytest.mark.parametrize("bad", ["xx", "", "EN", "fr; DROP TABLE users", 7, ["fr"], {"tag": "fr"}, "x" * 5000])
async def test_a_language_the_page_lacks_is_refused(world, http, bad):
    headers = await _auth(http, world, "pupil_member")
    r = await http.put("/api/account/language", headers=headers, json={"language": bad})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field")
    admin = await _auth(http, world, "teacher_admin")
    r = await http.put(f"/api/spaces/{world.space_id}/language", headers=admin, json={"language": bad})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field")
    assert (await _me(http, headers))["user"]["language"] is None


async def test_no_language_without_a_session(world, http):
    r = await http.put("/api/account/language", json={"language": "fr"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated")


async def test_a_projects_language_is_its_teacher_admins(world, http, pool):
    sid = world.space_id
    url = f"/api/spaces/{sid}/language"
    for who, status, code in (("teacher_member", 403, "forbidden"), ("pupil_admin", 403, "forbidden"),
                              ("pupil_member", 403, "forbidden"), ("visitor", 403, "forbidden"),
                              ("outsider", 404, "not_found")):
        r = await http.put(url, headers=await _auth(http, world, who), json={"language": "fr"})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), who
    member = await _auth(http, world, "pupil_member")
    [space] = [s for s in (await _me(http, member))["spaces"] if s["id"] == sid]
    assert space["language"] == "en"  # a new project's, until its teacher admins choose

    admin = await _auth(http, world, "teacher_admin")
    r = await http.put(url, headers=admin, json={"language": "fr"})
    assert r.status_code == 200 and r.json() == {"id": sid, "language": "fr"}
    [space] = [s for s in (await _me(http, member))["spaces"] if s["id"] == sid]
    assert space["language"] == "fr"
    entries = await audit.entries(pool, sid, action="space.language")
    assert [(e.actor_id, e.details) for e in entries] == [(world.users["teacher_admin"].id, {"language": "fr"})]

    # Twenty at once, between two languages: each is answered, and the project holds one of them.
    answers = await asyncio.gather(*(
        http.put(url, headers=admin, json={"language": ("en", "fr")[i % 2]}) for i in range(20)
    ))
    assert [a.status_code for a in answers] == [200] * 20
    [space] = [s for s in (await _me(http, member))["spaces"] if s["id"] == sid]
    assert space["language"] in ("en", "fr")

    # A teacher admin removed from the project no longer sets it.
    remover = await _auth(http, world, "teacher_admin")
    other_admin = world.users["teacher_member"]
    r = await http.patch(f"/api/spaces/{sid}/members/{other_admin.id}", headers=remover, json={"role": "teacher_admin"})
    assert r.status_code == 200, r.text
    promoted = await _auth(http, world, "teacher_member")
    assert (await http.put(url, headers=promoted, json={"language": "en"})).status_code == 200
    r = await http.delete(f"/api/spaces/{sid}/members/{other_admin.id}", headers=remover)
    assert r.status_code == 200, r.text
    r = await http.put(url, headers=promoted, json={"language": "fr"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


async def test_pupils_start_in_the_projects_language_and_their_sheet_is_printed_in_it(world, http):
    sid = world.space_id
    admin = await _auth(http, world, "teacher_admin")
    assert (await http.put(f"/api/spaces/{sid}/language", headers=admin, json={"language": "fr"})).status_code == 200
    r = await http.post(f"/api/spaces/{sid}/pupils?format=html", headers=admin,
                        json={"pupils": ["Łucja Ślusarczyk", "Жанна Щукина", "Γιώργος Παπαδόπουλος"]}, timeout=60)
    assert r.status_code == 201, r.text
    sheet = r.text
    assert '<html lang="fr"' in sheet
    for key in ("members.card.username", "members.card.password", "members.card.how"):
        assert html.escape(say("fr", key)) in sheet and say("fr", key) != say("en", key)
    assert html.escape(say("fr", "members.sheet.title", n=3)) in sheet
    # The accounts read the page in French at their first login.
    r = await http.post(f"/api/spaces/{sid}/pupils", headers=admin, json={"pupils": ["Łucja Ślusarczyk"]}, timeout=60)
    [lucja] = r.json()["pupils"]
    assert lucja["username"].startswith("lucja.s-") and lucja["language"] == "fr"
    token = await login(http, lucja["username"], lucja["password"])
    assert (await _me(http, {"authorization": f"Bearer {token}"}))["user"]["language"] == "fr"
    # A teacher may print a class's sheet in another language than the project's.
    r = await http.post(f"/api/spaces/{sid}/pupils?format=html", headers=admin,
                        json={"pupils": ["Jürgen Groß"], "language": "en"}, timeout=60)
    assert '<html lang="en"' in r.text and say("en", "members.card.username") in r.text


async def test_a_username_taken_is_drawn_again(world, http, monkeypatch):
    """Every draw of the random tail collides at first: the batch's own pupils and an account made
    before are kept apart, and the invitation succeeds."""
    admin = await _auth(http, world, "teacher_admin")
    url = f"/api/spaces/{world.space_id}/pupils"
    monkeypatch.setattr(pupils_service, "_generated", lambda n: "a" * n)
    [first] = (await http.post(url, headers=admin, json={"pupils": ["Ana Kowalska"]})).json()["pupils"]
    assert first["username"] == "ana.k-aaaa"
    tails = iter(["aaaa", "aaaa", "bbbb", "bbbb", "cccc"])
    monkeypatch.setattr(pupils_service, "_generated", lambda n: next(tails) if n == 4 else "p" * n)
    r = await http.post(url, headers=admin, json={"pupils": ["Ana Kowalska", "Ana Kwiatkowska"]})
    assert r.status_code == 201, r.text
    names = [p["username"] for p in r.json()["pupils"]]
    assert len(set(names) | {first["username"]}) == 3, names
