"""Pupil accounts over real HTTP: a teacher invites a class and gets its logins (JSON, CSV, a
sheet to print); teachers reset pupils' passwords within their rights; pupils cannot."""

from __future__ import annotations

import csv
import io

from protocol import Subscribe
from tests.client import Client
from tests.conftest import login

CLASS = [f"Pupil {i} Nowak" for i in range(27)] + ["Zoé Dupont"]


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def test_a_teacher_invites_a_class_and_every_pupil_can_log_in(world, http, server):
    # 28 argon2 hashes (64 MiB each): ~2 s on a quiet core, over 10 s (the client's default
    # timeout) when the test machine is saturated, as on a shared CI runner.
    r = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=await _auth(http, world, "teacher_member"),
                        json={"pupils": CLASS}, timeout=60)
    assert r.status_code == 201, r.text
    assert r.headers["cache-control"] == "no-store"
    pupils = r.json()["pupils"]
    assert [p["name"] for p in pupils] == CLASS
    assert len({p["username"] for p in pupils}) == len(CLASS)
    assert all(len(p["password"]) == 8 and p["username"].isascii() for p in pupils)
    assert pupils[-1]["username"].startswith("zoe.d-")  # readable: from the name, accents dropped
    for p in (pupils[0], pupils[-1]):  # log in, and the project is theirs, as pupils
        token = await login(http, p["username"], p["password"])
        client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)
        [space] = [s for s in client.welcome.spaces if s["id"] == world.space_id]
        assert space["role"] == "pupil_member" and space["mailbox"] is not None
        await client.ok(Subscribe(space["feed"]))
        await client.close()


async def test_the_logins_as_csv_and_as_a_sheet_to_print(world, http):
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/pupils?format=csv", headers=admin,
                        json={"pupils": ["Ana L.", "Ola K."], "school": "Kraków"})
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text.removeprefix("\ufeff"))))
    assert [(row["name"], row["school"]) for row in rows] == [("Ana L.", "Kraków"), ("Ola K.", "Kraków")]
    r = await http.post(f"/api/spaces/{world.space_id}/pupils?format=html", headers=admin,
                        json={"pupils": ["<b>Zoé</b> Dupont"]})
    assert r.status_code == 201 and r.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;Zoé&lt;/b&gt; Dupont" in r.text and "<b>Zoé</b>" not in r.text  # names are escaped


async def test_who_may_invite(world, http):
    for who, status, code in (("pupil_admin", 403, "forbidden"), ("visitor", 403, "forbidden"),
                              ("outsider", 404, "not_found")):
        r = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=await _auth(http, world, who),
                            json={"pupils": ["X"]})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), who
    admin = await _auth(http, world, "teacher_admin")
    for body, code in (({"pupils": []}, "invalid_field"), ({"pupils": ["x"] * 101}, "too_large"),
                       ({"pupils": [""]}, "invalid_field"), ({"pupils": "Ana"}, "invalid_field")):
        r = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=admin, json=body)
        assert r.json()["error"]["code"] == code, body


async def test_password_resets_follow_who_invited_whom(world, http):
    tm = await _auth(http, world, "teacher_member")
    mine = (await http.post(f"/api/spaces/{world.space_id}/pupils", headers=tm, json={"pupils": ["Mine"]})).json()
    pupil = mine["pupils"][0]
    old_token = await login(http, pupil["username"], pupil["password"])
    url = f"/api/spaces/{world.space_id}/members/{{}}/password"

    r = await http.post(url.format(pupil["id"]), headers=tm, json={"password": "river5"})  # a simple one, 5–8
    assert r.status_code == 200 and r.json()["password"] == "river5"
    assert (await http.get("/api/me", headers={"authorization": f"Bearer {old_token}"})).status_code == 401
    assert (await http.post("/api/login", json={"username": pupil["username"], "password": pupil["password"]})
            ).status_code == 401
    await login(http, pupil["username"], "river5")

    other = world.users["pupil_member"].id  # not invited by this teacher member
    cases = [
        (tm, other, {}, 403), (tm, world.users["teacher_admin"].id, {}, 403),  # not theirs; not a pupil
        (await _auth(http, world, "pupil_admin"), pupil["id"], {}, 403),
        (await _auth(http, world, "visitor"), pupil["id"], {}, 403),
        (tm, pupil["id"], {"password": "abc"}, 400), (tm, pupil["id"], {"password": "waytoolong"}, 400),
    ]
    for headers, user_id, body, status in cases:
        r = await http.post(url.format(user_id), headers=headers, json=body)
        assert r.status_code == status, (user_id, body, r.text)
    # The pupil cannot change their own password (no right, not even with the old one).
    own = {"authorization": f"Bearer {await login(http, pupil['username'], 'river5')}"}
    assert (await http.post(url.format(pupil["id"]), headers=own, json={"password": "mine12"})).status_code == 403
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(url.format(other), headers=admin, json={})
    assert r.status_code == 200 and len(r.json()["password"]) == 8
