"""Role changes, removals and leaving over real HTTP, taking effect on open sockets at once."""

from __future__ import annotations

import json

from protocol import Error, Post, RemoveMember, SetRole, Subscribe, Welcome
from realtime.policy import Area
from storage import audit
from tests.conftest import login


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def test_a_teacher_admin_promotes_a_pupil_and_removes_a_partner_teacher(world, http, connect, pool):
    admin = await _auth(http, world, "teacher_admin")
    pupil = world.users["pupil_member"]
    r = await http.patch(f"/api/spaces/{world.space_id}/members/{pupil.id}", headers=admin,
                         json={"role": "pupil_admin"})
    assert r.json() == {"space": world.space_id, "user_id": pupil.id, "role": "pupil_admin"}
    partner = await connect(world.users["teacher_member"])
    room = world.channel(Area.TEACHERS_ROOM)
    await partner.ok(Subscribe(room))
    r = await http.delete(f"/api/spaces/{world.space_id}/members/{world.users['teacher_member'].id}", headers=admin)
    assert r.status_code == 200
    ended = await partner.next_frame(Error)  # her open socket stops at once
    assert ended.code == "not_member" and ended.data["channel"] == room
    assert (await partner.error(Post(room, "still here?"))).code == "not_found"
    actions = [e.action for e in await audit.entries(pool, world.space_id)][:2]
    assert actions == ["member.removed", "member.role_changed"]


async def test_who_may_change_whom(world, http):
    url = f"/api/spaces/{world.space_id}/members/{{}}"
    tm = await _auth(http, world, "teacher_member")
    cases = [
        (tm, "PATCH", world.users["pupil_member"].id, {"role": "pupil_admin"}, 403),  # only admins change roles
        (tm, "DELETE", world.users["pupil_member"].id, None, 403),  # not a pupil this teacher invited
        (await _auth(http, world, "pupil_admin"), "DELETE", world.users["pupil_member"].id, None, 403),
        (await _auth(http, world, "teacher_admin"), "PATCH", world.users["pupil_member"].id, {"role": "boss"}, 400),
        (await _auth(http, world, "teacher_admin"), "PATCH", world.users["outsider"].id, {"role": "visitor"}, 404),
        # the project's only teacher admin cannot step down or leave
        (await _auth(http, world, "teacher_admin"), "PATCH", world.users["teacher_admin"].id,
         {"role": "teacher_member"}, 403),
    ]
    for headers, method, user_id, body, status in cases:
        r = await http.request(method, url.format(user_id), headers=headers, json=body)
        assert r.status_code == status, (method, user_id, body, r.text)
    r = await http.post(f"/api/spaces/{world.space_id}/leave", headers=await _auth(http, world, "teacher_admin"))
    assert r.status_code == 403


async def test_a_teacher_member_removes_a_pupil_they_invited_and_anyone_may_leave(world, http):
    tm = await _auth(http, world, "teacher_member")
    mine = (await http.post(f"/api/spaces/{world.space_id}/pupils", headers=tm, json={"pupils": ["Tom"]})).json()
    r = await http.delete(f"/api/spaces/{world.space_id}/members/{mine['pupils'][0]['id']}", headers=tm)
    assert r.status_code == 200 and r.json()["role"] is None
    visitor = await _auth(http, world, "visitor")
    assert (await http.post(f"/api/spaces/{world.space_id}/leave", headers=visitor)).status_code == 200
    me = (await http.get("/api/me", headers=visitor)).json()
    assert all(s["id"] != world.space_id for s in me["spaces"])


async def test_the_audit_log_for_teacher_admins_and_moderators_as_json_and_csv(world, http):
    admin = await _auth(http, world, "teacher_admin")
    pupil = world.users["pupil_member"]
    await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin,
                    json={"user_id": pupil.id, "scope": "chat", "minutes": 5, "reason": "calm down"})
    r = await http.get(f"/api/spaces/{world.space_id}/audit?limit=1", headers=admin)
    assert r.status_code == 200, r.text
    [entry] = r.json()["entries"]
    assert (entry["action"], entry["actor"], entry["target_id"], entry["reason"]) == (
        "member.mute", world.users["teacher_admin"].display_name, pupil.id, "calm down",
    )
    assert r.json()["more"] is True  # the world's set-up is audited too
    csv_text = (await http.get(f"/api/spaces/{world.space_id}/audit?format=csv",
                               headers=await _auth(http, world, "moderator"))).text
    assert csv_text.startswith("\ufeff")  # a spreadsheet reads it as UTF-8
    lines = csv_text.lstrip("\ufeff").strip().splitlines()
    assert lines[0].startswith("id,at,actor_id,actor,action") and "member.mute" in lines[1]
    for who, status in (("teacher_member", 403), ("pupil_admin", 403), ("outsider", 404)):
        r = await http.get(f"/api/spaces/{world.space_id}/audit", headers=await _auth(http, world, who))
        assert r.status_code == status, who


async def test_the_member_list_shows_each_role_what_it_may_see(world, http):
    url = f"/api/spaces/{world.space_id}/members"
    teacher = (await http.get(url, headers=await _auth(http, world, "teacher_member"))).json()["members"]
    assert [m["role"] for m in teacher] == [
        "teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor",
    ]
    pupil_row = next(m for m in teacher if m["role"] == "pupil_member")
    assert pupil_row["username"] == world.users["pupil_member"].username and pupil_row["lockouts"] == 0

    pupil = (await http.get(url, headers=await _auth(http, world, "pupil_member"))).json()["members"]
    assert [m["role"] for m in pupil] == ["teacher_admin", "teacher_member", "pupil_admin", "pupil_member"]
    assert all(set(m) == {"id", "name", "school", "role"} for m in pupil)  # no usernames, no lockouts
    visitor = (await http.get(url, headers=await _auth(http, world, "visitor"))).json()["members"]
    assert [m["role"] for m in visitor] == ["teacher_admin", "teacher_member", "visitor"]  # no pupils
    outsider = await http.get(url, headers=await _auth(http, world, "outsider"))
    assert outsider.status_code == 404
    moderator = (await http.get(url, headers=await _auth(http, world, "moderator"))).json()["members"]
    assert len(moderator) == 5 and all("username" in m for m in moderator)


async def test_the_member_list_says_what_each_teacher_may_do_to_each_member(world, http):
    """`may`: what the routes would allow the viewer, member by member — for a page to offer."""
    url = f"/api/spaces/{world.space_id}/members"
    tm = await _auth(http, world, "teacher_member")
    made = (await http.post(f"/api/spaces/{world.space_id}/pupils", headers=tm, json={"pupils": ["Mine T."]})).json()
    mine = made["pupils"][0]["id"]
    admin = {m["id"]: m["may"] for m in (await http.get(url, headers=await _auth(http, world, "teacher_admin"))).json()["members"]}
    assert admin[world.users["teacher_admin"].id] == []  # oneself
    assert admin[world.users["pupil_member"].id] == ["set_role", "remove", "reset_password", "unlock"]
    assert admin[world.users["teacher_member"].id] == ["set_role", "remove"]
    teacher = {m["id"]: m["may"] for m in (await http.get(url, headers=tm)).json()["members"]}
    assert teacher[mine] == ["remove", "reset_password", "unlock"]
    assert all(teacher[u.id] == [] for k, u in world.users.items() if k not in ("outsider", "moderator"))
    # …and the routes agree: what is not offered is refused.
    r = await http.patch(f"{url}/{mine}", headers=tm, json={"role": "pupil_admin"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.post(f"{url}/{world.users['pupil_admin'].id}/unlock", headers=tm)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")


async def test_a_promoted_pupil_gets_a_fresh_welcome_with_the_new_rights(world, http, connect):
    pupil = await connect(world.users["pupil_member"])
    assert pupil.welcome.spaces[0]["role"] == "pupil_member"
    admin = await _auth(http, world, "teacher_admin")
    r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users['pupil_member'].id}", headers=admin,
                         json={"role": "pupil_admin"})
    assert r.status_code == 200
    fresh = await pupil.next_frame(Welcome, timeout=2)
    [space] = fresh.spaces
    assert space["role"] == "pupil_admin"
    activities = next(room for room in space["rooms"] if room["area"] == "activities")
    assert "create_room" in activities["rights"]


async def test_role_changes_and_removals_as_frames(world, connect, pool):
    admin = await connect(world.users["teacher_admin"])
    teacher = await connect(world.users["teacher_member"])
    pupil = await connect(world.users["pupil_admin"])
    space, pupil_id = world.space_id, world.users["pupil_member"].id
    assert (await pupil.error(SetRole(space, pupil_id, "pupil_admin"))).code == "forbidden"
    assert (await teacher.error(SetRole(space, pupil_id, "pupil_admin"))).code == "forbidden"
    assert (await teacher.error(RemoveMember(space, pupil_id))).code == "forbidden"  # not a pupil she invited
    assert (await admin.error(RemoveMember(space, world.users["teacher_admin"].id))).code == "forbidden"  # last one
    assert (await admin.error(SetRole(space, world.users["outsider"].id, "visitor"))).code == "not_found"
    await admin.send_raw(json.dumps({"type": "set_role", "space": space, "user_id": pupil_id, "role": "king", "ref": 1}))
    assert (await admin.next_frame(Error)).code == "invalid_field"
    roles = dict(await pool.fetch("SELECT user_id, role FROM members WHERE space_id = $1", space))
    assert roles[pupil_id] == "pupil_member"  # nothing changed

    done = await admin.ok(SetRole(space, pupil_id, "pupil_admin"))
    assert done.data == {"space": space, "user_id": pupil_id, "role": "pupil_admin"}
    await admin.ok(RemoveMember(space, pupil_id))
    left = await pupil.ok(RemoveMember(space, world.users["pupil_admin"].id))  # leaving
    assert left.data["role"] is None
    roles = dict(await pool.fetch("SELECT user_id, role FROM members WHERE space_id = $1", space))
    assert pupil_id not in roles and world.users["pupil_admin"].id not in roles
