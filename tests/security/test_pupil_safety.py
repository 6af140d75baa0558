"""The pupils' own safety rules under attack: a pupil trying every moderator's and teacher's
action, and a visitor (a parent, a head teacher — or someone posing as one) trying every way to
reach a pupil. Each refusal is `forbidden` (a member the table refuses) and changes nothing.

Covered elsewhere (docs/security.md): every cell of the room table (tests/e2e/test_role_matrix.py),
the mail table cell by cell (tests/e2e/test_mail.py), who may invite, reset passwords and change
roles (tests/e2e/test_pupils.py, tests/e2e/test_members.py), a visitor posting in chat or the
pupils' corner (tests/e2e/test_role_matrix.py).
"""

from __future__ import annotations

import pytest

from protocol import (
    Delete,
    Edit,
    Error,
    Hide,
    ListModeration,
    ListRecipients,
    ListReports,
    Mute,
    Post,
    RemoveMember,
    Report,
    ResolveReport,
    SendMail,
    SetRole,
    Subscribe,
    Typing,
    Unhide,
    Unmute,
)
from realtime.policy import Area
from tests.conftest import login


async def everything(pool, world):
    s = world.space_id
    return (
        await pool.fetch("SELECT id, text, edited_at, deleted_at, hidden_at FROM messages WHERE space_id = $1 ORDER BY id", s),
        await pool.fetch("SELECT user_id, role FROM members WHERE space_id = $1 ORDER BY user_id", s),
        await pool.fetch("SELECT id, status FROM reports WHERE space_id = $1 ORDER BY id", s),
        await pool.fetchval("SELECT count(*) FROM mutes WHERE space_id = $1", s),
        await pool.fetchval("SELECT count(*) FROM mails WHERE space_id = $1", s),
        await pool.fetch("SELECT id, password_hash FROM users WHERE id = ANY($1) ORDER BY id", [u.id for u in world.users.values()]),
        await pool.fetchrow("SELECT closed_at, public FROM spaces WHERE id = $1", s),
        await pool.fetchval("SELECT count(*) FROM rooms WHERE space_id = $1", s),
        await pool.fetchval("SELECT count(*) FROM invitations WHERE space_id = $1", s),
        await pool.fetchval("SELECT count(*) FROM bots WHERE space_id = $1", s),
    )


@pytest.fixture
async def scene(world, connect):
    """A classmate's message in the pupils' corner, reported by a teacher, and a muted pupil."""
    corner = world.channel(Area.PUPILS_CORNER)
    classmate = await connect(world.users["pupil_admin"])
    message = (await classmate.ok(Post(corner, "my drawing"))).data["id"]
    teacher = await connect(world.users["teacher_member"])
    report = (await teacher.ok(Report(corner, message, "check this"))).data["report"]
    admin = await connect(world.users["teacher_admin"])
    await admin.ok(Mute(world.space_id, world.users["visitor"].id, "all", 30, "rude"))
    return {"message": message, "report": report}


async def test_a_pupil_tries_every_moderator_action_over_the_websocket(world, connect, pool, scene):
    """Threat: a pupil acting as a moderator — hiding or erasing a classmate's words, muting
    them, lifting their own mute, reading or closing reports, changing roles."""
    pupil = await connect(world.users["pupil_member"])
    corner = world.channel(Area.PUPILS_CORNER)
    s, classmate, visitor = world.space_id, world.users["pupil_admin"].id, world.users["visitor"].id
    before = await everything(pool, world)
    frames = [
        Hide(corner, scene["message"], "mine now"),
        Unhide(corner, scene["message"]),
        Mute(s, classmate, "pupils_corner", 60, "I said so"),
        Mute(s, classmate, "all", 60),
        Unmute(s, visitor, "all"),
        ResolveReport(scene["report"], "dismissed", "nothing to see"),
        ListModeration(space=s),
        ListReports(s),
        Subscribe(f"moderation:{s}"),
        Subscribe("moderation:0"),
        SetRole(s, world.users["pupil_member"].id, "teacher_admin"),
        SetRole(s, classmate, "pupil_member"),
        RemoveMember(s, classmate),
        Subscribe(world.channel(Area.TEACHERS_ROOM)),
        Post(world.channel(Area.TEACHERS_ROOM), "hello teachers"),
    ]
    for frame in frames:
        err = await pupil.error(frame)
        assert err.code == "forbidden", (frame, err)
    # Someone else's message: not editable, and not deletable without the moderate right
    # (answered like a message that does not exist, docs/roles.md).
    for frame in (Edit(corner, scene["message"], "rewritten"), Delete(corner, scene["message"]),
                  Delete(corner, scene["message"], "erased by me")):
        assert (await pupil.error(frame)).code == "not_found"
    assert await everything(pool, world) == before


@pytest.mark.parametrize("who", ["pupil_member", "pupil_admin"])
async def test_a_pupil_tries_every_teacher_route_over_http(who, world, http, pool, scene):
    """Threat: a pupil (a pupil admin too) using the teachers' HTTP routes — moderation,
    the audit log, closing the project, bots, invitations, passwords and login locks (their own included)."""
    bearer = {"Authorization": f"Bearer {await login(http, world.users[who].username)}"}
    s, room = world.space_id, world.rooms[Area.PUPILS_CORNER]
    me, classmate = world.users[who].id, world.users["pupil_admin" if who == "pupil_member" else "pupil_member"].id
    before = await everything(pool, world)
    for method, path, body in (
        ("POST", f"/api/rooms/{room}/messages/{scene['message']}/hide", {"reason": "x"}),
        ("POST", f"/api/rooms/{room}/messages/{scene['message']}/unhide", {}),
        ("POST", f"/api/spaces/{s}/mutes", {"user_id": classmate, "scope": "all", "minutes": 60}),
        ("DELETE", f"/api/spaces/{s}/mutes/{world.users['visitor'].id}/all", None),
        ("GET", f"/api/spaces/{s}/mutes", None),
        ("GET", "/api/moderation/spaces", None),
        ("GET", f"/api/spaces/{s}/reports", None),
        ("GET", "/api/moderation/reports", None),
        ("POST", f"/api/reports/{scene['report']}/resolve", {"outcome": "dismissed"}),
        ("GET", f"/api/spaces/{s}/mail/reports", None),
        ("GET", f"/api/spaces/{s}/audit", None),
        ("POST", f"/api/spaces/{s}/close", None),
        ("POST", f"/api/spaces/{s}/public", {"public": False}),
        ("POST", f"/api/spaces/{s}/bots", {"name": "my bot"}),
        ("POST", f"/api/spaces/{s}/invitations", {"role": "visitor", "label": "my friend"}),
        ("GET", f"/api/spaces/{s}/invitations", None),
        ("POST", f"/api/spaces/{s}/pupils", {"pupils": ["Fake Pupil"]}),
        ("POST", f"/api/spaces/{s}/members/{classmate}/password", {}),
        ("POST", f"/api/spaces/{s}/members/{me}/password", {"password": "mine123"}),  # pupils never change their own
        ("POST", f"/api/spaces/{s}/members/{classmate}/unlock", None),
        ("POST", f"/api/spaces/{s}/members/{me}/unlock", None),
        ("PATCH", f"/api/spaces/{s}/members/{me}", {"role": "teacher_admin"}),
        ("PATCH", f"/api/spaces/{s}/members/{classmate}", {"role": "visitor"}),
        ("DELETE", f"/api/spaces/{s}/members/{classmate}", None),
        ("POST", f"/api/spaces/{s}/rooms", {"area": "teachers_room", "name": "ours"}),
    ):
        r = await http.request(method, path, headers=bearer, json=body)
        # The report is about the pupil admin's own message: to them it does not exist at all.
        about_me = path.endswith("/resolve") and who == "pupil_admin"
        expected = (404, "not_found") if about_me else (403, "forbidden")
        assert (r.status_code, r.json()["error"]["code"]) == expected, (method, path, r.text)
    assert await everything(pool, world) == before


async def test_a_visitor_tries_every_way_to_reach_a_pupil(world, connect, http, pool):
    """Threat: a visitor (or someone posing as a parent) starting contact with a child — mail,
    a mail to a teacher and a pupil together, chat, the pupils' corner, typing notices, activity
    rooms, the address book."""
    visitor = await connect(world.users["visitor"])
    pupils = (world.users["pupil_member"].id, world.users["pupil_admin"].id)
    teacher = world.users["teacher_member"].id
    before = await everything(pool, world)
    err = await visitor.error(SendMail(world.space_id, pupils[:1], "hello, I am a friend of your mum", subject="hi"))
    assert err.code == "not_found" and err.data["recipients"] == [pupils[0]]
    err = await visitor.error(SendMail(world.space_id, (teacher, *pupils), "to all of you", subject="hi"))
    assert err.code == "not_found" and sorted(err.data["recipients"]) == sorted(pupils)
    # ... exactly as for ids of nobody in the project: the answer does not say who is a pupil.
    nobody = await visitor.error(SendMail(world.space_id, (teacher, 999_999_001), "hi", subject="hi"))
    assert (nobody.code, nobody.message.replace("999999001", "…")) == (
        err.code, err.message.replace(", ".join(map(str, sorted(pupils))), "…").replace(
            ", ".join(map(str, pupils)), "…"))
    for area in (Area.CHAT, Area.PUPILS_CORNER):
        assert (await visitor.error(Subscribe(world.channel(area)))).code == "forbidden"
        assert (await visitor.error(Typing(world.channel(area)))).code in ("not_subscribed", "forbidden")
    assert (await visitor.error(Post(world.channel(Area.ACTIVITIES), "pupils, write to me"))).code == "forbidden"
    book = await visitor.ok(ListRecipients(world.space_id))
    assert not {m["id"] for m in book.data["members"]} & set(pupils)
    bearer = {"Authorization": f"Bearer {await login(http, world.users['visitor'].username)}"}
    r = await http.post(f"/api/spaces/{world.space_id}/mail", headers=bearer,
                        json={"to": list(pupils), "subject": "hi", "text": "over HTTP then"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")
    assert await everything(pool, world) == before  # no mail at all: not even to the teacher


async def test_a_pupil_cannot_write_to_a_visitor_either(world, connect, pool):
    """Threat: a child lured into writing first to a stranger who joined as a visitor."""
    pupil = await connect(world.users["pupil_member"])
    err = await pupil.error(SendMail(world.space_id, (world.users["visitor"].id,), "hi", subject="hi"))
    assert isinstance(err, Error) and err.code == "forbidden"
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE space_id = $1", world.space_id) == 0


async def test_a_visitors_feed_never_names_a_pupil(world, connect, http):
    """Threat: a parent (or someone posing as one) reading the feed's member records to learn who
    the pupils are, their ids and roles. Records about pupils joining, changing role or leaving
    reach every role that may read the pupils' corner, never a visitor — live or over HTTP."""
    from protocol import Post

    visitor = await connect(world.users["visitor"])
    teacher = await connect(world.users["teacher_member"])
    [space] = [s for s in visitor.welcome.spaces if s["id"] == world.space_id]
    feed = space["feed"]
    await visitor.ok(Subscribe(feed))
    await teacher.ok(Subscribe(feed))
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    made = (await http.post(f"/api/spaces/{world.space_id}/pupils", headers=admin,
                            json={"pupils": ["Zoé Dupont", "Piotr Nowak"]})).json()["pupils"]
    assert (await http.patch(f"/api/spaces/{world.space_id}/members/{made[0]['id']}", headers=admin,
                             json={"role": "pupil_admin"})).status_code == 200
    assert (await http.delete(f"/api/spaces/{world.space_id}/members/{made[1]['id']}", headers=admin)).status_code == 200
    journal = next(r["channel"] for r in space["rooms"] if r["kind"] == "journal")
    await teacher.ok(Post(journal, "A marker everyone sees", title="Week 9"))
    seen = await visitor.wait_events(feed, 1)
    teacher_seen = await teacher.wait_events(feed, 5)  # 2 joined, 1 role changed, 1 removed, the entry
    pupil_ids = {p["id"] for p in made}
    about = [e for e in teacher_seen if e.kind.startswith("member.") and (e.data.get("user") or {}).get("id") in pupil_ids]
    assert len(about) == 4
    assert [e.kind for e in seen] == ["journal.entry"]
    page = (await http.get(f"/api/spaces/{world.space_id}/activity",
                           headers={"authorization": f"Bearer {await login(http, world.users['visitor'].username)}"}
                           )).json()["activities"]
    assert not [a for a in page if (a.get("user") or {}).get("id") in pupil_ids]
    for p in made:
        assert p["name"] not in str(page) and str(p["id"]) not in [str((a.get("user") or {}).get("id")) for a in page]
