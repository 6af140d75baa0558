"""What a teacher admin's project console needs from the server, through real sockets and HTTP:
a room made over HTTP reaches the members' menus at once (a fresh welcome), and the audit log
filtered by action, actor and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from protocol import Welcome
from tests.conftest import login

LIVE = 5.0  # seconds a change may take to reach a socket


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


def _room_names(welcome: Welcome, space_id: int) -> set[str]:
    [space] = [s for s in welcome.spaces if s["id"] == space_id]
    return {r["name"] for r in space["rooms"]}


async def test_a_room_made_over_http_reaches_the_members_open_sockets_in_a_fresh_welcome(world, http, connect):
    sid = world.space_id
    teacher = await connect(world.users["teacher_member"])
    visitor = await connect(world.users["visitor"])
    assert "River samples" not in _room_names(teacher.welcome, sid)
    r = await http.post(f"/api/spaces/{sid}/rooms", headers=await _auth(http, world, "teacher_admin"),
                        json={"area": "activities", "name": "River samples"})
    assert r.status_code == 201, r.text
    for client in (teacher, visitor):  # visitors read the activities too
        welcome = await client.next_frame(Welcome, timeout=LIVE)
        assert "River samples" in _room_names(welcome, sid)


async def test_a_room_in_the_teachers_room_is_not_shown_to_pupils(world, http, connect):
    sid = world.space_id
    pupil = await connect(world.users["pupil_member"])
    admin = await _auth(http, world, "teacher_admin")
    # Teacher admins make rooms in the activities only (docs/roles.md); a pupil admin does too.
    r = await http.post(f"/api/spaces/{sid}/rooms", headers=admin, json={"area": "teachers_room", "name": "Plans"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.post(f"/api/spaces/{sid}/rooms", headers=await _auth(http, world, "pupil_admin"),
                        json={"area": "activities", "name": "Our group"})
    assert r.status_code == 201
    assert "Our group" in _room_names(await pupil.next_frame(Welcome, timeout=LIVE), sid)


async def test_the_audit_log_filtered_by_action_actor_and_time(world, http):
    sid = world.space_id
    admin = await _auth(http, world, "teacher_admin")
    pupil = world.users["pupil_member"]
    url = f"/api/spaces/{sid}/audit"
    await http.post(f"/api/spaces/{sid}/mutes", headers=admin,
                    json={"user_id": pupil.id, "scope": "chat", "minutes": 5, "reason": "calm down"})
    room = (await http.post(f"/api/spaces/{sid}/rooms", headers=admin,
                            json={"area": "activities", "name": "Group A"})).json()["id"]
    await http.post(f"/api/spaces/{sid}/rooms/{room}/archive", headers=admin)

    everything = (await http.get(url, headers=admin)).json()["entries"]
    assert [e["action"] for e in everything[:3]] == ["room.archive", "room.created", "member.mute"]

    r = await http.get(url, headers=admin, params={"action": "member.mute"})
    assert [e["action"] for e in r.json()["entries"]] == ["member.mute"]
    by_admin = (await http.get(url, headers=admin, params={"actor": world.users["teacher_admin"].id})).json()
    assert [e["action"] for e in by_admin["entries"]] == ["room.archive", "room.created", "member.mute"]
    assert (await http.get(url, headers=admin, params={"actor": pupil.id})).json()["entries"] == []

    newest = datetime.fromisoformat(everything[0]["at"])
    r = await http.get(url, headers=admin, params={"since": newest.isoformat()})
    assert [e["id"] for e in r.json()["entries"]] == [everything[0]["id"]]
    r = await http.get(url, headers=admin, params={"until": newest.isoformat(), "action": "room.archive"})
    assert r.json()["entries"] == []  # until is exclusive
    later = (newest + timedelta(seconds=1)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    r = await http.get(url, headers=admin, params={"since": later})
    assert r.json() == {"space": sid, "entries": [], "more": False}

    # One filter with paging, and the CSV export holding the same rows.
    r = await http.get(url, headers=admin, params={"action": "room.created", "limit": 1})
    assert r.json()["more"] is False and len(r.json()["entries"]) == 1
    csv_text = (await http.get(url, headers=admin, params={"format": "csv", "action": "room.archive"})).text
    lines = csv_text.removeprefix("\ufeff").strip().splitlines()
    assert len(lines) == 2 and ",room.archive," in lines[1]

    for params in ({"action": "DROP TABLE"}, {"action": "room"}, {"since": "yesterday"},
                   {"since": "2026-11-22T00:00:00"}, {"actor": "me"}, {"until": "x" * 100}):
        r = await http.get(url, headers=admin, params=params)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field"), params
    for who, status in (("teacher_member", 403), ("pupil_member", 403), ("visitor", 403), ("outsider", 404)):
        r = await http.get(url, headers=await _auth(http, world, who), params={"action": "room.created"})
        assert r.status_code == status, who

