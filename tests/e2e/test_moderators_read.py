"""What a project's moderators read that nobody else does, through real sockets and HTTP: the
project's mutes in force (`GET /api/spaces/{id}/mutes`), the words of a message they hid (a
history page), and — platform moderators — the projects they cover (`GET /api/moderation/spaces`).
Each with who is refused, and how."""

from __future__ import annotations

import secrets

from protocol import Hide, Post, Subscribe
from realtime.policy import Area
from storage import accounts
from tests.conftest import login


async def _auth(http, user) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


def _code(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def test_a_projects_mutes_are_listed_to_its_teacher_admins_and_platform_moderators(world, make_world, http, pool):
    other = await make_world()
    pupil, visitor = world.users["pupil_member"], world.users["visitor"]
    admin = await _auth(http, world.users["teacher_admin"])
    path = f"/api/spaces/{world.space_id}/mutes"
    assert (await http.get(path, headers=admin)).json() == {"space": world.space_id, "mutes": []}
    made = await http.post(path, headers=admin, json={
        "user_id": pupil.id, "scope": "pupils_corner", "minutes": 60, "reason": "unkind words"})
    assert made.status_code == 201, made.text
    assert (await http.post(path, headers=admin, json={"user_id": visitor.id, "scope": "all", "minutes": 15})).is_success
    # An ended mute and a removed member's mute are not listed: nothing waits on them.
    await pool.execute("INSERT INTO mutes (space_id, user_id, scope, until) VALUES ($1, $2, 'chat', now() - interval"
                       " '1 minute')", world.space_id, world.users["pupil_admin"].id)
    await pool.execute("INSERT INTO mutes (space_id, user_id, scope, until) VALUES ($1, $2, 'chat', now() + interval"
                       " '1 hour')", world.space_id, world.users["outsider"].id)

    listed = await http.get(path, headers=admin)
    assert listed.status_code == 200, listed.text
    mutes = listed.json()["mutes"]
    assert [(m["user"]["id"], m["scope"]) for m in mutes] == [(visitor.id, "all"), (pupil.id, "pupils_corner")]
    by = world.users["teacher_admin"]
    assert mutes[1] == {
        "user": {"id": pupil.id, "name": pupil.display_name, "school": pupil.school}, "scope": "pupils_corner",
        "until": made.json()["until"], "muted_by": {"id": by.id, "name": by.display_name}, "reason": "unkind words",
        "created_at": mutes[1]["created_at"],
    }
    moderator = await _auth(http, world.users["moderator"])
    assert (await http.get(path, headers=moderator)).json()["mutes"] == mutes  # in every project

    # Other members are told no; anyone outside the project is told nothing.
    for who in ("pupil_member", "pupil_admin", "teacher_member", "visitor"):
        assert _code(await http.get(path, headers=await _auth(http, world.users[who]))) == (403, "forbidden"), who
    assert _code(await http.get(path, headers=await _auth(http, other.users["teacher_admin"]))) == (404, "not_found")
    assert _code(await http.get(path, headers=await _auth(http, world.users["outsider"]))) == (404, "not_found")
    assert (await http.get(path)).status_code == 401

    lifted = await http.delete(f"{path}/{pupil.id}/pupils_corner", headers=admin)
    assert lifted.json()["lifted"] is True
    assert [m["user"]["id"] for m in (await http.get(path, headers=admin)).json()["mutes"]] == [visitor.id]


async def test_those_who_moderate_a_room_read_what_was_hidden_there_and_nobody_else(world, connect, http):
    chat, corner = world.channel(Area.CHAT), world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    admin = await connect(world.users["teacher_admin"])
    teacher = await connect(world.users["teacher_member"])
    for client in (admin, teacher):
        await client.ok(Subscribe(chat))
    said = (await author.ok(Post(chat, "give me your password"))).data["id"]
    kept = (await author.ok(Post(corner, "a kind word"))).data["id"]
    await admin.ok(Hide(chat, said, "asks for a password"))
    # The live event carries no text, to anyone (the hub sends one event to every subscriber).
    for client in (admin, teacher):
        event = (await client.wait_events(chat, 2))[-1]
        assert event.kind == "message.hidden"
        assert event.data["message"]["state"] == "hidden" and event.data["message"]["text"] is None

    def hidden_in(page):
        return next(m for m in page["messages"] if m["id"] == said)

    room = world.rooms[Area.CHAT]
    for who in ("teacher_admin", "moderator"):  # the moderate right in the chat
        page = (await http.get(f"/api/rooms/{room}/messages", headers=await _auth(http, world.users[who]))).json()
        found = hidden_in(page)
        assert (found["state"], found["text"]) == ("hidden", "give me your password"), who
    for who in ("teacher_member", "pupil_member", "pupil_admin"):  # readers without it
        r = await http.get(f"/api/rooms/{room}/messages", headers=await _auth(http, world.users[who]))
        assert r.status_code == 200, r.text
        assert hidden_in(r.json())["state"] == "hidden" and hidden_in(r.json())["text"] is None, who
    # A visible message reads the same for everyone.
    corner_page = await http.get(f"/api/rooms/{world.rooms[Area.PUPILS_CORNER]}/messages",
                                 headers=await _auth(http, world.users["pupil_admin"]))
    assert [m["text"] for m in corner_page.json()["messages"] if m["id"] == kept] == ["a kind word"]


async def test_platform_moderators_list_the_projects_they_cover(world, make_world, http, pool, password_hash):
    other = await make_world()
    moderator = await _auth(http, world.users["moderator"])
    r = await http.get("/api/moderation/spaces?limit=500", headers=moderator)
    assert r.status_code == 200, r.text
    found = {p["id"]: p for p in r.json()["projects"]}
    assert {world.space_id, other.space_id} <= found.keys()
    mine = found[world.space_id]
    assert mine["slug"] == world.slug and mine["closed"] is False and mine["members"] == 5
    assert [a["id"] for a in mine["teacher_admins"]] == [world.users["teacher_admin"].id]
    ids = [p["id"] for p in r.json()["projects"]]
    assert ids == sorted(ids, reverse=True)  # newest first
    page = await http.get(f"/api/moderation/spaces?limit=1&before={other.space_id}", headers=moderator)
    assert [p["id"] for p in page.json()["projects"]] == [world.space_id] and page.json()["more"] is True
    assert _code(await http.get("/api/moderation/spaces?closed=maybe", headers=moderator)) == (400, "invalid_field")

    root = await accounts.create_user(pool, username=f"root-{secrets.token_hex(4)}", display_name="Root",
                                      password_hash=password_hash, platform_role="admin")
    for user in (world.users["teacher_admin"], world.users["pupil_member"], root):  # the admin has /api/admin/spaces
        assert _code(await http.get("/api/moderation/spaces", headers=await _auth(http, user))) == (403, "forbidden")
