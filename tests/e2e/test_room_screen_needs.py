"""What the room screen asks of the server beyond the chat frames, through real sockets and HTTP:
one room by its id (`GET /api/rooms/{id}`) — for a platform moderator following a report to a
room no welcome lists them, with the rights they have there — and the history around a message
for them; and a member's own mutes in `welcome`, so that the page says "muted until …" before
they write. Each with who is refused, and how (docs/protocol.md, "One room", `welcome`, "Mutes")."""

from __future__ import annotations

from protocol import Post
from protocol.frames import Welcome
from realtime.policy import Area
from tests.conftest import login


async def _auth(http, user) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


def _code(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


async def test_one_room_by_its_id_for_whoever_reads_it_and_nobody_else(world, make_world, http, connect):
    other = await make_world()
    corner, teachers = world.rooms[Area.PUPILS_CORNER], world.rooms[Area.TEACHERS_ROOM]
    moderator = await _auth(http, world.users["moderator"])
    found = await http.get(f"/api/rooms/{corner}", headers=moderator)
    assert found.status_code == 200, found.text
    assert found.json() == {
        "id": corner, "channel": f"room:{corner}", "name": "pupils_corner", "area": "pupils_corner", "kind": "room",
        "archived": False, "rights": ["moderate", "read"],
        "space": {"id": world.space_id, "name": f"Project {world.slug[2:]}", "closed": False},
    }
    # A platform moderator reads every project's rooms, the teachers' room too; never posts.
    assert (await http.get(f"/api/rooms/{other.rooms[Area.TEACHERS_ROOM]}", headers=moderator)).json()["rights"] == [
        "moderate", "read"]
    # A member is given their own rights, as the welcome gives them.
    pupil = await _auth(http, world.users["pupil_member"])
    assert (await http.get(f"/api/rooms/{corner}", headers=pupil)).json()["rights"] == ["post", "read"]
    admin = await _auth(http, world.users["teacher_admin"])
    assert (await http.get(f"/api/rooms/{corner}", headers=admin)).json()["rights"] == ["moderate", "read"]

    # Refused as subscribing is: a pupil and the teachers' room; anyone outside the project, a
    # deleted room and one that never existed alike.
    assert _code(await http.get(f"/api/rooms/{teachers}", headers=pupil)) == (403, "forbidden")
    assert _code(await http.get(f"/api/rooms/{corner}", headers=await _auth(http, world.users["visitor"]))) == (
        403, "forbidden")
    outsider = await _auth(http, world.users["outsider"])
    missing = _code(await http.get(f"/api/rooms/{corner}", headers=outsider))
    assert missing == (404, "not_found")
    assert _code(await http.get(f"/api/rooms/{corner}", headers=await _auth(http, other.users["teacher_admin"]))) == missing
    made = await http.post(f"/api/spaces/{world.space_id}/rooms", headers=admin, json={"area": "activities", "name": "Gone"})
    gone = made.json()["id"]
    assert (await http.get(f"/api/rooms/{gone}", headers=moderator)).status_code == 200
    assert (await http.delete(f"/api/spaces/{world.space_id}/rooms/{gone}", headers=admin)).status_code == 200
    assert _code(await http.get(f"/api/rooms/{gone}", headers=moderator)) == missing
    assert _code(await http.get(f"/api/rooms/{gone}", headers=admin)) == missing
    assert _code(await http.get("/api/rooms/999999999", headers=moderator)) == missing
    assert (await http.get(f"/api/rooms/{corner}")).status_code == 401
    assert _code(await http.get("/api/rooms/x", headers=moderator)) == missing  # not a room id

    # Archived, and the project closed: said as they are now.
    assert (await http.post(f"/api/spaces/{world.space_id}/rooms/{corner}/archive", headers=admin)).status_code == 200
    assert (await http.post(f"/api/spaces/{world.space_id}/close", headers=admin)).status_code == 200
    now = (await http.get(f"/api/rooms/{corner}", headers=moderator)).json()
    assert now["archived"] is True and now["space"]["closed"] is True


async def test_a_platform_moderator_reads_the_history_around_a_reported_message(world, make_world, http, connect):
    other = await make_world()
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    ids = [(await author.ok(Post(corner, f"line {i}"))).data["id"] for i in range(5)]
    moderator = await _auth(http, world.users["moderator"])
    page = await http.get(f"/api/rooms/{world.rooms[Area.PUPILS_CORNER]}/messages?around={ids[2]}&limit=3", headers=moderator)
    assert page.status_code == 200, page.text
    assert [m["id"] for m in page.json()["messages"]] == [ids[3], ids[2], ids[1]]
    assert page.json()["more"] is True and page.json()["newer"] is True
    # Nobody outside the project, another project's teacher admin included, reads it.
    for who in (world.users["outsider"], other.users["teacher_admin"]):
        r = await http.get(f"/api/rooms/{world.rooms[Area.PUPILS_CORNER]}/messages?around={ids[2]}", headers=await _auth(http, who))
        assert _code(r) == (404, "not_found")
    r = await http.get(f"/api/rooms/{world.rooms[Area.PUPILS_CORNER]}/messages?around={ids[2]}",
                       headers=await _auth(http, world.users["visitor"]))
    assert _code(r) == (403, "forbidden")


async def test_a_members_own_mutes_are_in_their_welcome(world, connect, http):
    pupil_user = world.users["pupil_member"]
    pupil = await connect(pupil_user)
    first = await http.get("/api/me", headers=await _auth(http, pupil_user))
    assert first.json()["spaces"][0]["mutes"] == []
    admin = await _auth(http, world.users["teacher_admin"])
    made = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin, json={
        "user_id": pupil_user.id, "scope": "chat", "minutes": 60, "reason": "shouting"})
    assert made.status_code == 201, made.text
    until = made.json()["until"]
    # The muted pupil's open socket is told at once, with the mute's scope and end.
    while True:
        welcome = await pupil.next_frame(Welcome)
        space = next(s for s in welcome.spaces if s["id"] == world.space_id)
        if space["mutes"]:
            break
    assert space["mutes"] == [{"scope": "chat", "until": until}]
    assert (await pupil.error(Post(world.channel(Area.CHAT), "hi"))).data == {"scope": "chat", "until": until}
    me = (await http.get("/api/me", headers=await _auth(http, pupil_user))).json()
    assert next(s for s in me["spaces"] if s["id"] == world.space_id)["mutes"] == [{"scope": "chat", "until": until}]
    # Nobody else learns of it: another pupil's welcome lists no mute.
    other = (await http.get("/api/me", headers=await _auth(http, world.users["pupil_admin"]))).json()
    assert next(s for s in other["spaces"] if s["id"] == world.space_id)["mutes"] == []

    assert (await http.delete(f"/api/spaces/{world.space_id}/mutes/{pupil_user.id}/chat", headers=admin)).json()["lifted"]
    while True:
        welcome = await pupil.next_frame(Welcome)
        if next(s for s in welcome.spaces if s["id"] == world.space_id)["mutes"] == []:
            break
    await pupil.ok(Post(world.channel(Area.CHAT), "back"))
