"""The "most recent activity" feed through real sockets: each role's feed holds exactly the
records of the areas it may read, live and on resume, and follows a role change at once."""

from __future__ import annotations

from protocol import Delete, Edit, Hide, Post, Subscribe
from realtime.policy import Area, Role
from tests.conftest import login

# Which areas each role's feed shows, transcribed from DESIGN.md's table (read rights), not from
# realtime/policy.py.
EVERYTHING = {"home", "activities", "teachers_room", "pupils_corner", "chat"}
SEES = {
    "teacher_admin": EVERYTHING, "teacher_member": EVERYTHING, "moderator": EVERYTHING,
    "pupil_admin": {"home", "activities", "pupils_corner", "chat"},
    "pupil_member": {"home", "activities", "pupils_corner", "chat"},
    "visitor": {"home", "activities"},
}
# One action per area, by someone allowed to post there.
POSTS = [
    (Area.HOME, "teacher_admin"), (Area.ACTIVITIES, "pupil_admin"), (Area.TEACHERS_ROOM, "teacher_member"),
    (Area.PUPILS_CORNER, "pupil_member"), (Area.CHAT, "pupil_member"),
]


def feed_of(client, world) -> str:
    [space] = [s for s in client.welcome.spaces if s["id"] == world.space_id]
    return space["feed"]


async def test_each_roles_feed_holds_what_it_may_read(world, connect, http, server):
    readers = {who: await connect(world.users[who]) for who in SEES}
    channel = f"feed:{world.space_id}"
    heads = {}
    for who, client in readers.items():
        heads[who] = (await client.ok(Subscribe(channel))).data["head"]
    posters = {who: await connect(world.users[who]) for _, who in POSTS}
    for area, who in POSTS:
        await posters[who].ok(Post(world.channel(area), f"in {area.value}"))
    token = await login(http, world.users["pupil_admin"].username)
    r = await http.post(f"/api/spaces/{world.space_id}/rooms", headers={"authorization": f"Bearer {token}"},
                        json={"area": "activities", "name": "River samples"})
    assert r.status_code == 201
    await server.app.state.projects.set_member(world.space_id, world.users["outsider"].id, Role.VISITOR)

    for who, client in readers.items():
        # The last action concerns the whole project: once it is there, everything before it is.
        events = await _until(client, channel, "member.joined")
        got = [(e.kind, e.data["area"]) for e in events]
        expected = [("message.posted", a.value) for a, _ in POSTS if a.value in SEES[who]]
        expected += [("room.created", "activities"), ("member.joined", None)]
        assert got == expected, who
        # Resuming gives the same records.
        again = await connect(world.users[who])
        await again.ok(Subscribe(channel, since=heads[who]))
        replayed = await _until(again, channel, "member.joined")
        assert [(e.kind, e.data["area"]) for e in replayed] == expected, who
    # A line says who did it, with their role and school, and links to the item.
    teacher_view = await _until(readers["teacher_admin"], channel, "member.joined")
    corner = next(e for e in teacher_view if e.data["area"] == "pupils_corner")
    pupil = world.users["pupil_member"]
    assert corner.data["actor"] == {"id": pupil.id, "name": pupil.display_name, "school": pupil.school,
                                    "role": "pupil_member"}
    assert corner.data["room"]["id"] == world.rooms[Area.PUPILS_CORNER] and corner.data["message_id"] > 0


async def _until(client, channel: str, kind: str):
    n = 1
    while True:
        events = await client.wait_events(channel, n)
        if any(e.kind == kind for e in events):
            return events
        n = len(events) + 1


async def test_a_role_change_changes_the_feed_at_once(world, connect, server):
    parent = await connect(world.users["visitor"])
    channel = feed_of(parent, world)
    await parent.ok(Subscribe(channel))
    teacher = await connect(world.users["teacher_member"])
    await teacher.ok(Post(world.channel(Area.TEACHERS_ROOM), "not for visitors"))
    await server.app.state.projects.set_member(world.space_id, world.users["visitor"].id, Role.TEACHER_MEMBER)
    await teacher.ok(Post(world.channel(Area.TEACHERS_ROOM), "now for a colleague"))
    events = await _until(parent, channel, "message.posted")
    assert [(e.kind, e.data["area"]) for e in events] == [
        ("member.role_changed", None), ("message.posted", "teachers_room"),
    ]


async def test_the_feed_over_http_newest_first(world, connect, http):
    pupil = await connect(world.users["pupil_member"])
    await pupil.ok(Post(world.channel(Area.CHAT), "one"))
    await pupil.ok(Post(world.channel(Area.CHAT), "two"))
    teacher = await connect(world.users["teacher_member"])
    await teacher.ok(Post(world.channel(Area.TEACHERS_ROOM), "hidden from visitors"))
    token = await login(http, world.users["visitor"].username)
    r = await http.get(f"/api/spaces/{world.space_id}/activity?limit=3", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    page = r.json()
    assert all(a["area"] in (None, "home", "activities") for a in page["activities"])
    seqs = [a["seq"] for a in page["activities"]]
    assert seqs == sorted(seqs, reverse=True)
    outsider = await login(http, world.users["outsider"].username)
    r = await http.get(f"/api/spaces/{world.space_id}/activity", headers={"authorization": f"Bearer {outsider}"})
    assert r.status_code == 404


async def test_edits_and_hides_reach_the_feed_but_erasures_do_not(world, connect):
    reader = await connect(world.users["teacher_member"])
    channel = f"feed:{world.space_id}"
    await reader.ok(Subscribe(channel))
    pupil = await connect(world.users["pupil_member"])
    admin = await connect(world.users["teacher_admin"])
    corner = world.channel(Area.PUPILS_CORNER)
    a = await pupil.ok(Post(corner, "first"))
    b = await pupil.ok(Post(corner, "second"))
    await pupil.ok(Edit(corner, a.data["id"], "first, fixed"))
    await pupil.ok(Delete(corner, b.data["id"]))
    await admin.ok(Hide(corner, a.data["id"], reason="test"))
    events = await _until(reader, channel, "message.hidden")
    assert [(e.kind, e.data["actor"]["id"]) for e in events] == [
        ("message.posted", world.users["pupil_member"].id), ("message.posted", world.users["pupil_member"].id),
        ("message.edited", world.users["pupil_member"].id), ("message.hidden", world.users["teacher_admin"].id),
    ]
