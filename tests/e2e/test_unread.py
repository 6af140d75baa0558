"""Read positions and unread counts per room (GET /api/rooms/unread, POST /api/rooms/{id}/read),
and history pages after a seq and around one message (GET /api/rooms/{id}/messages?after=,
?around=) — what the page's menu and its links to one message use (issue 23, points 5 and 6)."""

from __future__ import annotations

from protocol import Hide, Post
from realtime.policy import Area
from tests.conftest import login


async def _bearer(http, user) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


def _room(answer, room_id):
    [found] = [r for r in answer.json()["rooms"] if r["id"] == room_id]
    return found


async def test_unread_counts_others_visible_messages_after_the_read_position(world, http, connect):
    chat = world.rooms[Area.CHAT]
    pupil = await connect(world.users["pupil_member"])
    admin = await connect(world.users["teacher_admin"])
    teacher = await _bearer(http, world.users["teacher_member"])
    ids = [(await pupil.ok(Post(f"room:{chat}", f"hello {i}"))).data["id"] for i in range(3)]
    await admin.ok(Post(f"room:{chat}", "from the admin"))
    own = await connect(world.users["teacher_member"])
    await own.ok(Post(f"room:{chat}", "my own words"))  # one's own messages are never unread

    r = await http.get("/api/rooms/unread", headers=teacher)
    assert r.status_code == 200
    room = _room(r, chat)
    assert room == {"id": chat, "channel": f"room:{chat}", "read": 0, "unread": 4, "latest": room["latest"]}
    assert room["latest"] > ids[-1]
    assert all(r["unread"] == 0 for r in r.json()["rooms"] if r["id"] != chat)

    await admin.ok(Hide(f"room:{chat}", ids[0], "unkind"))  # hidden: not to be read
    assert _room(await http.get("/api/rooms/unread", headers=teacher), chat)["unread"] == 3

    # Read up to the pupil's second message (its seq), then everything; a position never moves back.
    r = await http.post(f"/api/rooms/{chat}/read", headers=teacher, json={"seq": 2})
    assert r.status_code == 200 and r.json() == {"id": chat, "channel": f"room:{chat}", "read": 2}
    assert _room(await http.get("/api/rooms/unread", headers=teacher), chat)["unread"] == 2
    r = await http.post(f"/api/rooms/{chat}/read", headers=teacher, json={})
    head = r.json()["read"]
    assert head >= 6  # five posts and a hide
    assert (await http.post(f"/api/rooms/{chat}/read", headers=teacher, json={"seq": 1})).json()["read"] == head
    assert (await http.post(f"/api/rooms/{chat}/read", headers=teacher, json={"seq": 10**9})).json()["read"] == head
    assert _room(await http.get("/api/rooms/unread", headers=teacher), chat) == {
        "id": chat, "channel": f"room:{chat}", "read": head, "unread": 0, "latest": room["latest"],
    }
    # Another member's position is their own.
    pupil_admin = await _bearer(http, world.users["pupil_admin"])
    assert _room(await http.get("/api/rooms/unread", headers=pupil_admin), chat)["unread"] == 4


async def test_read_positions_follow_the_role_matrix(world, http):
    pupil = await _bearer(http, world.users["pupil_member"])
    listed = {r["id"] for r in (await http.get("/api/rooms/unread", headers=pupil)).json()["rooms"]}
    assert world.rooms[Area.CHAT] in listed and world.rooms[Area.TEACHERS_ROOM] not in listed
    r = await http.post(f"/api/rooms/{world.rooms[Area.TEACHERS_ROOM]}/read", headers=pupil, json={})
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    outsider = await _bearer(http, world.users["outsider"])
    assert (await http.get("/api/rooms/unread", headers=outsider)).json() == {"rooms": []}
    r = await http.post(f"/api/rooms/{world.rooms[Area.CHAT]}/read", headers=outsider, json={})
    assert r.status_code in (403, 404)
    r = await http.post(f"/api/rooms/{world.rooms[Area.CHAT]}/read", headers=pupil, json={"seq": -1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
    r = await http.post(f"/api/rooms/{world.rooms[Area.CHAT]}/read", headers=pupil, json={"seq": "3"})
    assert r.status_code == 400
    assert (await http.get("/api/rooms/unread")).status_code == 401


async def test_history_after_a_seq_and_around_a_message(world, http, connect):
    chat = world.rooms[Area.CHAT]
    pupil = await connect(world.users["pupil_member"])
    oks = [(await pupil.ok(Post(f"room:{chat}", f"line {i}"))).data for i in range(10)]
    headers = await _bearer(http, world.users["teacher_member"])
    url = f"/api/rooms/{chat}/messages"

    def texts(r):
        return [m["text"] for m in r.json()["messages"]]

    r = await http.get(url, headers=headers, params={"around": oks[4]["id"], "limit": 4})
    assert r.status_code == 200
    assert texts(r) == ["line 6", "line 5", "line 4", "line 3"] and r.json()["more"] is True and r.json()["newer"] is True
    r = await http.get(url, headers=headers, params={"around": oks[8]["id"], "limit": 6})
    assert texts(r) == ["line 9", "line 8", "line 7", "line 6", "line 5", "line 4"] and r.json()["newer"] is False
    r = await http.get(url, headers=headers, params={"around": oks[0]["id"], "limit": 1})
    assert texts(r) == ["line 0"] and (r.json()["more"], r.json()["newer"]) == (False, True)
    r = await http.get(url, headers=headers, params={"around": oks[1]["id"], "limit": 4})
    assert texts(r) == ["line 3", "line 2", "line 1", "line 0"] and (r.json()["more"], r.json()["newer"]) == (False, True)

    r = await http.get(url, headers=headers, params={"after": oks[6]["seq"], "limit": 2})
    assert texts(r) == ["line 8", "line 7"] and r.json()["newer"] is True and "more" not in r.json()
    r = await http.get(url, headers=headers, params={"after": oks[7]["seq"], "limit": 5})
    assert texts(r) == ["line 9", "line 8"] and r.json()["newer"] is False
    r = await http.get(url, headers=headers, params={"after": 0, "limit": 1})
    assert texts(r) == ["line 0"]

    r = await http.get(url, headers=headers, params={"after": 1, "before": 5})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_field"
    r = await http.get(url, headers=headers, params={"around": 10**12})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # A message of another room is not found through this one.
    other = world.rooms[Area.ACTIVITIES]
    r = await http.get(f"/api/rooms/{other}/messages", headers=headers, params={"around": oks[0]["id"]})
    assert r.status_code == 404
    # The room's rights hold: a pupil does not page the teachers' room.
    pupil_headers = await _bearer(http, world.users["pupil_member"])
    r = await http.get(f"/api/rooms/{world.rooms[Area.TEACHERS_ROOM]}/messages", headers=pupil_headers,
                       params={"after": 0})
    assert r.status_code == 403
