"""One's own account over the documented API (docs/protocol.md, "Your account" and "Member
profiles"): changing one's password, exporting one's data, deleting one's account, writing one's
profile — through real sockets of a running server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from protocol import Error, Post
from realtime.policy import Area
from storage import messages as messages_store
from storage.db import transaction
from storage.messages import NewPost
from tests.client import Client
from tests.conftest import PASSWORD, WATCH, login

NEW = "a longer new secret"


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def _auth(http, username: str, password: str = PASSWORD) -> dict[str, str]:
    return _bearer(await login(http, username, password))


def _code(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def _mail(http, auth, space_id: int, to: int, subject: str) -> int:
    r = await http.post(f"/api/spaces/{space_id}/mail", headers=auth, json={"to": [to], "subject": subject,
                                                                           "text": f"text of {subject}"})
    assert r.status_code == 201, r.text
    return r.json()["id"]


# -- changing one's password ------------------------------------------------------------------------


async def test_changing_ones_password_ends_every_session_and_gives_a_new_one(world, http, server):
    WATCH.secrets.add(NEW)
    teacher = world.users["teacher_member"]
    first, second = await login(http, teacher.username), await login(http, teacher.username)
    sockets = [await Client.connect(f"ws://127.0.0.1:{server.port}/ws", t) for t in (first, second)]
    try:
        r = await http.post("/api/account/password", headers=_bearer(first),
                            json={"current_password": PASSWORD, "new_password": NEW})
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["sessions_ended"] == 2 and done["token"] not in (first, second)
        assert "twinhub_session=" in r.headers["set-cookie"] and r.headers["cache-control"] == "no-store"
        for s in sockets:  # the caller's own socket too: this session ended with the others
            assert (await s.next_frame(Error, timeout=3)).code == "unauthenticated"
            assert await s.closed(timeout=3) == 4001
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
    for old in (first, second):
        assert (await http.get("/api/me", headers=_bearer(old))).status_code == 401
    assert (await http.get("/api/me", headers=_bearer(done["token"]))).status_code == 200
    assert (await http.post("/api/login", json={"username": teacher.username, "password": PASSWORD})).status_code == 401
    await login(http, teacher.username, NEW)


async def test_a_wrong_current_password_counts_as_a_failed_login(world, http):
    visitor = world.users["visitor"]
    auth = await _auth(http, visitor.username)
    answers = []
    while len(answers) < 5:  # five wrong tries, each when the back-off lets it in
        r = await http.post("/api/account/password", headers=auth,
                            json={"current_password": "not my password", "new_password": NEW})
        if r.status_code == 429 and r.json()["error"]["retry_after_ms"] < 60_000:  # slowed, not locked
            await asyncio.sleep(r.json()["error"]["retry_after_ms"] / 1000)
            continue
        answers.append(_code(r))
    # The fifth locks the account, and says so at once, as the failed login that locks does.
    assert answers == [(403, "forbidden")] * 4 + [(429, "rate_limited")]
    # Locked, as five wrong logins lock it: the right password is refused too, here and at login.
    r = await http.post("/api/account/password", headers=auth, json={"current_password": PASSWORD, "new_password": NEW})
    assert _code(r) == (429, "rate_limited")
    r = await http.post("/api/login", json={"username": visitor.username, "password": PASSWORD})
    assert r.status_code == 429
    log = (await http.get(f"/api/spaces/{world.space_id}/audit",
                          headers=await _auth(http, world.users["teacher_admin"].username))).json()["entries"]
    assert [e["target_id"] for e in log if e["action"] == "login.locked"] == [visitor.id]


async def test_pupils_neither_change_their_password_nor_delete_their_account(world, http):
    pupil = world.users["pupil_member"]
    auth = await _auth(http, pupil.username)
    r = await http.post("/api/account/password", headers=auth, json={"current_password": PASSWORD, "new_password": NEW})
    assert _code(r) == (403, "forbidden") and "teachers reset" in r.json()["error"]["message"]
    r = await http.post("/api/account/delete", headers=auth, json={"password": PASSWORD})
    assert _code(r) == (403, "forbidden")
    await login(http, pupil.username)  # still their password, still their account
    assert (await http.get("/api/me", headers=auth)).status_code == 200


@pytest.mark.parametrize("body", [
    {"new_password": NEW},  # no current password
    {"current_password": PASSWORD, "new_password": "short"},
    {"current_password": PASSWORD, "new_password": PASSWORD},  # the same one
    {"current_password": PASSWORD, "new_password": 1234567890123},
    {"current_password": ["x"], "new_password": NEW},
    {"current_password": PASSWORD, "new_password": "x" * 201},
])
async def test_a_bad_password_change_is_refused_and_changes_nothing(world, http, body):
    teacher = world.users["teacher_admin"]
    token = await login(http, teacher.username)
    r = await http.post("/api/account/password", headers=_bearer(token), json=body)
    assert _code(r) == (400, "invalid_field"), r.text
    assert (await http.get("/api/me", headers=_bearer(token))).status_code == 200
    await login(http, teacher.username)


async def test_twenty_password_changes_at_once_change_it_once(world, http, pool):
    teacher = world.users["teacher_member"]
    token = await login(http, teacher.username)
    candidates = [f"new password number {i:02d}" for i in range(20)]
    WATCH.secrets.update(candidates)
    answers = await asyncio.gather(*(
        http.post("/api/account/password", headers=_bearer(token), json={"current_password": PASSWORD,
                                                                       "new_password": c})
        for c in candidates
    ))
    won = [c for c, r in zip(candidates, answers, strict=True) if r.status_code == 200]
    assert len(won) == 1, [r.status_code for r in answers]
    assert {_code(r) for r in answers if r.status_code != 200} <= {(409, "conflict"), (429, "rate_limited")}
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE id = $1", teacher.id)

    def matches(candidate: str) -> bool:
        try:
            return PasswordHasher().verify(stored, candidate)
        except VerificationError:
            return False

    assert [c for c in candidates if matches(c)] == won  # the winner's, and nobody else's
    await login(http, teacher.username, won[0])


# -- exporting one's data ---------------------------------------------------------------------------


async def _export(http, auth, url: str = "/api/account/export") -> dict:
    r = await http.get(url, headers=auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store" and "attachment" in r.headers["content-disposition"]
    return json.loads(r.content)


async def test_an_export_holds_ones_own_data_and_no_one_elses_mail(world, http, connect):
    sid, pupil, admin = world.space_id, world.users["pupil_member"], world.users["teacher_admin"]
    as_pupil, as_admin = await _auth(http, pupil.username), await _auth(http, admin.username)
    client = await connect(pupil)
    await client.ok(Post(world.channel(Area.CHAT), "my own words in the chat"))
    await _mail(http, as_admin, sid, pupil.id, "to the pupil")
    await _mail(http, as_pupil, sid, admin.id, "from the pupil")
    await _mail(http, await _auth(http, world.users["teacher_member"].username), sid, admin.id, "between teachers")
    dropped = await _mail(http, await _auth(http, world.users["pupil_admin"].username), sid, pupil.id, "deleted one")
    assert (await http.delete(f"/api/mail/{dropped}", headers=as_pupil)).status_code == 200
    r = await http.put("/api/profile", headers=as_pupil, json={"about": "I like rivers", "languages": ["fr"]})
    assert r.status_code == 200, r.text
    assert (await http.put("/api/account/language", headers=as_pupil, json={"language": "pl"})).status_code == 200

    export = await _export(http, as_pupil)
    assert export["format"] == "twinhub.export.v1"
    assert export["account"] | {"created_at": None} == {
        "id": pupil.id, "username": pupil.username, "name": pupil.display_name, "school": pupil.school,
        "kind": "pupil", "home_project": sid, "platform_role": None, "created_at": None, "language": "pl",
    }
    assert export["profile"]["about"] == "I like rivers" and export["profile"]["languages"] == ["fr"]
    assert [(m["project"], m["role"]) for m in export["memberships"]] == [(sid, "pupil_member")]
    assert [(m["text"], m["room"]["id"], m["state"]) for m in export["messages"]] == [
        ("my own words in the chat", world.rooms[Area.CHAT], "visible")
    ]
    mail = {(m["subject"], m["origin"], m["from"]["id"]) for m in export["mail"]}
    assert mail == {("to the pupil", "inbox", admin.id), ("from the pupil", "sent", pupil.id)}
    text = json.dumps(export)
    assert "between teachers" not in text and "deleted one" not in text  # never another mailbox; not a dropped copy


async def test_a_long_export_is_read_in_pages_and_written_whole(world, http, pool):
    teacher = world.users["teacher_member"]
    room = world.rooms[Area.ACTIVITIES]
    posts = [NewPost(world.space_id, room, teacher.id, teacher.display_name, teacher.school, f"entry {i}", None,
                     "activities", room_name="activities", author_role="teacher") for i in range(1234)]
    async with transaction(pool, "test_posts") as conn:
        await messages_store.post_many(conn, posts)
    export = await _export(http, await _auth(http, teacher.username))
    texts = [m["text"] for m in export["messages"]]
    assert texts == [f"entry {i}" for i in range(1234)]  # 3 pages of 500, in order, none twice
    assert export["mail"] == []


async def test_exports_are_rate_limited(world, http):
    auth = await _auth(http, world.users["visitor"].username)
    codes = [(await http.get("/api/account/export", headers=auth)).status_code for _ in range(10)]
    assert codes == [200] * 10
    r = await http.get("/api/account/export", headers=auth)
    assert _code(r) == (429, "rate_limited") and int(r.headers["retry-after"]) >= 1


# -- deleting one's account -------------------------------------------------------------------------


async def test_an_adult_deletes_their_account_and_what_they_wrote_stays_unsigned(world, http, server, pool, connect):
    sid, teacher, pupil = world.space_id, world.users["teacher_member"], world.users["pupil_member"]
    as_teacher = await _auth(http, teacher.username)
    writer = await connect(teacher)
    posted = await writer.ok(Post(world.channel(Area.CHAT), "a teacher's words"))
    mail_id = await _mail(http, as_teacher, sid, pupil.id, "from a teacher who leaves")
    await http.put("/api/profile", headers=as_teacher, json={"about": "Maths in Lyon"})
    token = await login(http, teacher.username)
    socket = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)
    try:
        r = await http.post("/api/account/delete", headers=_bearer(token), json={"password": "not it"})
        assert _code(r) == (403, "forbidden")
        r = await http.post("/api/account/delete", headers=_bearer(token), json={"password": PASSWORD})
        assert r.status_code == 200 and r.json() == {"id": teacher.id, "erased": True}
        assert await socket.closed(timeout=3) == 4001
        assert await writer.closed(timeout=3) == 4001
    finally:
        await socket.close()
    assert (await http.get("/api/me", headers=_bearer(token))).status_code == 401
    assert (await http.post("/api/login", json={"username": teacher.username, "password": PASSWORD})).status_code == 401

    as_pupil, as_admin = await _auth(http, pupil.username), await _auth(http, world.users["teacher_admin"].username)
    members = (await http.get(f"/api/spaces/{sid}/members", headers=as_admin)).json()["members"]
    assert teacher.id not in {m["id"] for m in members}
    # Their words stay — evidence for a report, a conversation others replied to — unsigned.
    history = (await http.get(f"/api/rooms/{world.rooms[Area.CHAT]}/messages", headers=as_pupil)).json()["messages"]
    [kept] = [m for m in history if m["id"] == posted.data["id"]]
    assert kept["text"] == "a teacher's words" and kept["author"]["name"] == "a former member"
    assert kept["author"]["school"] == "" and kept["author"]["id"] == teacher.id
    # The mail they sent is the pupil's, in the pupil's mailbox.
    got = (await http.get(f"/api/mail/{mail_id}", headers=as_pupil)).json()
    assert got["mail"]["text"] == "text of from a teacher who leaves"
    assert got["mail"]["from"]["name"] == "a former member"
    row = await pool.fetchrow("SELECT * FROM users WHERE id = $1", teacher.id)
    assert (row["username"], row["display_name"], row["school"], row["password_hash"]) == (
        f"#erased-{teacher.id}", "a former member", "", None)
    assert row["erased_at"] is not None
    assert await pool.fetchval("SELECT count(*) FROM sessions WHERE user_id = $1", teacher.id) == 0
    assert await pool.fetchval("SELECT count(*) FROM profiles WHERE user_id = $1", teacher.id) == 0
    log = (await http.get(f"/api/spaces/{sid}/audit", headers=as_admin)).json()["entries"]
    [entry] = [e for e in log if e["action"] == "account.erased"]
    assert (entry["actor_id"], entry["actor"], entry["target_id"], entry["details"]) == (
        teacher.id, "a former member", teacher.id, {"own": True})


async def test_the_last_teacher_admin_names_another_before_leaving(world, http):
    sid, admin = world.space_id, world.users["teacher_admin"]
    auth = await _auth(http, admin.username)
    r = await http.post("/api/account/delete", headers=auth, json={"password": PASSWORD})
    assert _code(r) == (403, "forbidden") and str(sid) in r.json()["error"]["message"]
    await login(http, admin.username)  # nothing was erased
    r = await http.patch(f"/api/spaces/{sid}/members/{world.users['teacher_member'].id}", headers=auth,
                         json={"role": "teacher_admin"})
    assert r.status_code == 200, r.text
    r = await http.post("/api/account/delete", headers=auth, json={"password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_twenty_deletions_at_once_delete_once(world, http):
    visitor = world.users["visitor"]
    auth = await _auth(http, visitor.username)
    answers = await asyncio.gather(*(
        http.post("/api/account/delete", headers=auth, json={"password": PASSWORD}) for _ in range(20)
    ))
    assert sorted(r.status_code for r in answers).count(200) == 1, [r.status_code for r in answers]
    assert {_code(r) for r in answers if r.status_code != 200} <= {
        (401, "unauthenticated"), (404, "not_found"), (429, "rate_limited")}
    log = (await http.get(f"/api/spaces/{world.space_id}/audit",
                          headers=await _auth(http, world.users["teacher_admin"].username))).json()["entries"]
    assert [e["target_id"] for e in log if e["action"] == "account.erased"] == [visitor.id]


# -- one's profile ----------------------------------------------------------------------------------


async def test_a_profile_is_written_whole_normalised_and_read_back(world, http):
    auth = await _auth(http, world.users["pupil_admin"].username)
    empty = (await http.get("/api/profile", headers=auth)).json()
    assert empty == {"about": "", "languages": [], "interests": [], "updated_at": None}
    r = await http.put("/api/profile", headers=auth, json={
        "about": "  J'aime la musique\net la rivière  ", "languages": ["FR", "pl", "en-GB", "fr"],
        "interests": ["ｆｏｏｔｂａｌｌ", "ﬁshing", "chess"],
    })
    assert r.status_code == 200, r.text
    mine = (await http.get("/api/profile", headers=auth)).json()
    assert mine | {"updated_at": None} == {
        "about": "J'aime la musique\net la rivière", "languages": ["fr", "pl", "en-gb"],
        "interests": ["football", "fishing", "chess"], "updated_at": None,
    }
    assert mine["updated_at"] is not None
    r = await http.put("/api/profile", headers=auth, json={"about": "only this"})
    assert r.json()["languages"] == [] and r.json()["interests"] == []  # PUT replaces the whole profile


@pytest.mark.parametrize(("body", "code"), [
    ({"about": "hidden\u200bspace"}, (400, "invalid_field")),  # zero-width space (Cf)
    ({"interests": ["evil\u202eexe.txt"]}, (400, "invalid_field")),  # right-to-left override (Cf)
    ({"about": "bell\x07"}, (400, "invalid_field")),  # control (Cc)
    ({"interests": ["two\nlines"]}, (400, "invalid_field")),
    ({"about": "one\u2028two"}, (400, "invalid_field")),  # line separator (Zl)
    ({"about": "\ue000private"}, (400, "invalid_field")),  # private use
    ({"about": "x" * 501}, (413, "too_large")),
    ({"about": "\n".join("line" for _ in range(11))}, (400, "invalid_field")),
    ({"languages": [f"l{i}a" for i in range(11)]}, (413, "too_large")),
    ({"languages": ["français"]}, (400, "invalid_field")),
    ({"languages": ["call me at 0612345678"]}, (400, "invalid_field")),
    ({"interests": "football"}, (400, "invalid_field")),
    ({"interests": [""]}, (400, "invalid_field")),
    ({"interests": ["x" * 41]}, (413, "too_large")),
    ({"about": 12}, (400, "invalid_field")),
])
async def test_a_bad_profile_is_refused_with_a_clear_error_and_keeps_the_old_one(world, http, body, code):
    auth = await _auth(http, world.users["pupil_member"].username)
    before = (await http.put("/api/profile", headers=auth, json={"about": "kept", "interests": ["maps"]})).json()
    r = await http.put("/api/profile", headers=auth, json=body)
    assert _code(r) == code, r.text
    assert (await http.get("/api/profile", headers=auth)).json() == before
