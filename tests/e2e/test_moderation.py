"""Moderation through real sockets and HTTP: reports of messages and of mail reach the live
moderation queues, reviewers hide, unhide, erase, mute and close reports, and every act is in
the audit log. Each refusal is checked with its code, and that nothing changed."""

from __future__ import annotations

import asyncio
import json

from protocol import (
    Delete,
    Edit,
    Error,
    Hide,
    ListModeration,
    Mute,
    Post,
    Report,
    ReportMail,
    ResolveReport,
    SendMail,
    Subscribe,
    Unhide,
    Unmute,
)
from realtime.policy import Area
from storage import audit
from tests.conftest import login


def queue(space_id: int) -> str:
    return f"moderation:{space_id}"


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def test_the_issue_story_report_hide_mute_resolve(world, connect, pool):
    """A pupil posts something hurtful in the pupils' corner; a classmate reports it; the teacher
    admin's queue shows it live (and the platform moderator's); she hides it — gone from every
    open screen — mutes the author for 24 hours and closes the report."""
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    teacher = await connect(world.users["teacher_member"])
    admin = await connect(world.users["teacher_admin"])
    moderator = await connect(world.users["moderator"])
    for c in (author, classmate, teacher):
        await c.ok(Subscribe(corner))
    assert admin.welcome.spaces[0]["moderation"] == queue(world.space_id)
    assert classmate.welcome.spaces[0]["moderation"] is None
    assert moderator.welcome.user["moderation"] == "moderation:0"
    await admin.ok(Subscribe(queue(world.space_id)))
    await moderator.ok(Subscribe("moderation:0"))

    hurtful = await author.ok(Post(corner, "nobody wants you in the team"))
    mid = hurtful.data["id"]
    reported = await classmate.ok(Report(corner, mid, "this is mean"))
    assert reported.data["duplicate"] is False

    [opened] = await admin.wait_events(queue(world.space_id), 1)
    assert opened.kind == "report.opened"
    report = opened.data["report"]
    assert report["id"] == reported.data["report"] and report["status"] == "open" and report["kind"] == "message"
    assert report["message"]["text"] == "nobody wants you in the team"
    assert report["message"]["author"]["id"] == world.users["pupil_member"].id
    assert report["reporter"]["id"] == world.users["pupil_admin"].id and report["note"] == "this is mean"
    [platform] = await moderator.wait_events("moderation:0", 1)
    assert platform.data["report"]["id"] == report["id"] and platform.data["report"]["space"] == world.space_id

    await admin.ok(Hide(corner, mid, "unkind words"))
    for c in (author, classmate, teacher):
        events = await c.wait_events(corner, 2)
        assert events[-1].kind == "message.hidden" and events[-1].data["message"]["text"] is None

    muted = await admin.ok(Mute(world.space_id, world.users["pupil_member"].id, "pupils_corner", 24 * 60, "unkind"))
    refused = await author.error(Post(corner, "again"))
    assert refused.code == "muted" and refused.data["until"] == muted.data["until"]

    closed = await admin.ok(ResolveReport(report["id"], "resolved", "hidden, author muted for a day"))
    assert closed.data["report"]["status"] == "resolved"
    assert closed.data["report"]["resolution"]["note"] == "hidden, author muted for a day"
    events = await admin.wait_events(queue(world.space_id), 2)
    assert events[1].kind == "report.resolved" and events[1].data["report"]["message"]["state"] == "hidden"
    again = await admin.error(ResolveReport(report["id"], "dismissed"))
    assert again.code == "conflict"

    log = [(e.action, e.actor_id) for e in await audit.entries(pool, world.space_id)]
    assert log[:4] == [
        ("report.resolve", world.users["teacher_admin"].id),
        ("member.mute", world.users["teacher_admin"].id),
        ("message.hide", world.users["teacher_admin"].id),
        ("message.report", world.users["pupil_admin"].id),
    ]


async def test_the_queue_resumes_with_each_report_as_it_is_now(world, connect):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    admin = await connect(world.users["teacher_admin"])
    ids = [(await author.ok(Post(corner, f"m{i}"))).data["id"] for i in range(3)]
    reports = [(await classmate.ok(Report(corner, m))).data["report"] for m in ids]
    await admin.ok(ResolveReport(reports[1], "dismissed", "a joke between friends"))

    replayed = await admin.ok(Subscribe(queue(world.space_id), since=0))
    assert replayed.data["replayed"] == 4 and replayed.data["head"] == 4
    events = await admin.wait_events(queue(world.space_id), 4)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert [e.kind for e in events] == ["report.opened"] * 3 + ["report.dismissed"]
    assert events[1].data["report"]["status"] == "dismissed"  # replayed as it is now
    page = await admin.ok(ListModeration(world.space_id, status="open"))
    assert [r["id"] for r in page.data["reports"]] == [reports[2], reports[0]]


async def test_reporting_refusals_change_nothing(world, connect, server):
    corner, teachers = world.channel(Area.PUPILS_CORNER), world.channel(Area.TEACHERS_ROOM)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    teacher = await connect(world.users["teacher_member"])
    mine = (await author.ok(Post(corner, "my words"))).data["id"]
    staff = (await teacher.ok(Post(teachers, "staff only"))).data["id"]

    assert (await author.error(Report(corner, mine))).code == "forbidden"  # one's own message
    first = await classmate.ok(Report(corner, mine, "first"))
    twice = await classmate.ok(Report(corner, mine, "second"))
    assert twice.data == {**first.data, "duplicate": True}
    assert (await classmate.error(Report(teachers, staff))).code == "forbidden"  # cannot read it
    assert (await classmate.error(Report(corner, 10**9))).code == "not_found"
    assert (await classmate.error(Report(corner, staff))).code == "not_found"  # another room's message
    outsider = await connect(world.users["outsider"])
    assert (await outsider.error(Report(corner, mine))).code == "not_found"
    bad = await classmate.error(Report(corner, mine, "x" * 501))
    assert bad.code == "too_large"

    page = await server.app.state.moderation.page(
        await server.app.state.services.directory.acquire(world.users["teacher_admin"]), world.space_id, None, None, 20
    )
    assert [r["note"] for r in page["reports"]] == ["first"]  # one report, the first note


async def test_who_follows_which_queue(world, connect, make_world):
    other = await make_world()
    space_queue = queue(world.space_id)
    for who, code in [("pupil_admin", "forbidden"), ("pupil_member", "forbidden"), ("teacher_member", "forbidden"),
                      ("visitor", "forbidden"), ("outsider", "not_found")]:
        c = await connect(world.users[who])
        assert (await c.error(Subscribe(space_queue))).code == code, who
        assert (await c.error(Subscribe("moderation:0"))).code == "forbidden", who
    admin = await connect(world.users["teacher_admin"])
    await admin.ok(Subscribe(space_queue))
    assert (await admin.error(Subscribe("moderation:0"))).code == "forbidden"
    assert (await admin.error(Subscribe(queue(other.space_id)))).code == "not_found"
    moderator = await connect(world.users["moderator"])
    for channel in (space_queue, queue(other.space_id), "moderation:0"):
        await moderator.ok(Subscribe(channel))


async def test_a_demoted_admin_loses_the_queue_at_once(world, connect, server):
    admin = await connect(world.users["teacher_admin"])
    await admin.ok(Subscribe(queue(world.space_id)))
    await server.app.state.projects.set_member(world.space_id, world.users["teacher_admin"].id, None)
    ended = await admin.next_frame(Error, timeout=2)
    assert ended.code == "not_member" and ended.data["channel"] == queue(world.space_id)


async def test_closing_reports_refusals(world, connect, make_world):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    m = (await author.ok(Post(corner, "hm"))).data["id"]
    rid = (await classmate.ok(Report(corner, m))).data["report"]
    for who, code in [("pupil_admin", "forbidden"), ("teacher_member", "forbidden"), ("outsider", "not_found")]:
        c = await connect(world.users[who])
        assert (await c.error(ResolveReport(rid, "dismissed"))).code == code, who
    other = await make_world()
    foreign_admin = await connect(other.users["teacher_admin"])
    assert (await foreign_admin.error(ResolveReport(rid, "dismissed"))).code == "not_found"
    assert (await foreign_admin.error(ResolveReport(10**9, "dismissed"))).code == "not_found"
    admin = await connect(world.users["teacher_admin"])
    assert (await admin.error(ListModeration())).code == "forbidden"  # every project: moderators only
    await classmate.send_raw(json.dumps({"type": "resolve_report", "id": rid, "outcome": "deleted", "ref": "x"}))
    assert (await classmate.next_frame(Error)).code == "invalid_field"
    page = await admin.ok(ListModeration(world.space_id))
    assert page.data["reports"][0]["status"] == "open"  # nothing changed
    moderator = await connect(world.users["moderator"])
    done = await moderator.ok(ResolveReport(rid, "dismissed", "looked fine"))
    assert done.data["report"]["resolution"]["by"]["id"] == world.users["moderator"].id


async def test_unhide_and_erase_by_a_moderator(world, connect, pool):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    teacher = await connect(world.users["teacher_member"])
    admin = await connect(world.users["teacher_admin"])
    await teacher.ok(Subscribe(corner))
    m = (await author.ok(Post(corner, "my phone is 06 12 34 56 78"))).data["id"]
    await admin.ok(Hide(corner, m, "personal data"))
    assert (await teacher.error(Unhide(corner, m))).code == "forbidden"
    assert (await author.error(Unhide(corner, m))).code == "forbidden"
    await admin.ok(Unhide(corner, m, "hid the wrong one"))
    events = await teacher.wait_events(corner, 3)
    assert events[2].kind == "message.unhidden" and events[2].data["message"]["text"] == "my phone is 06 12 34 56 78"
    assert (await admin.error(Unhide(corner, m))).code == "not_found"  # not hidden any more

    # Someone else's message: a teacher member does not moderate the corner; it answers as missing.
    assert (await teacher.error(Delete(corner, m, "no"))).code == "not_found"
    await admin.ok(Delete(corner, m, "a phone number"))
    events = await teacher.wait_events(corner, 4)
    assert events[3].kind == "message.deleted" and events[3].data["message"]["text"] is None
    assert await pool.fetchval("SELECT text FROM messages WHERE id = $1", m) is None  # erased for good
    [entry] = [e for e in await audit.entries(pool, world.space_id) if e.action == "message.delete"]
    assert entry.reason == "a phone number" and entry.details["author_id"] == world.users["pupil_member"].id
    assert "06 12" not in str(entry.details)
    assert [e.action for e in await audit.entries(pool, world.space_id)][:3] == [
        "message.delete", "message.unhide", "message.hide",
    ]


async def test_reviewers_see_the_words_as_reported_whatever_the_author_does_after(world, connect, pool):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    admin = await connect(world.users["teacher_admin"])
    edited = (await author.ok(Post(corner, "something mean"))).data["id"]
    erased = (await author.ok(Post(corner, "something meaner"))).data["id"]
    for m in (edited, erased):
        await classmate.ok(Report(corner, m))
    await author.ok(Edit(corner, edited, "something nice"))
    await author.ok(Delete(corner, erased))
    assert await pool.fetchval("SELECT text FROM messages WHERE id = $1", erased) is None  # gone for the class
    shown = {r["message"]["id"]: r["message"] for r in (await admin.ok(ListModeration(world.space_id))).data["reports"]}
    assert shown[edited]["text"] == "something mean" and shown[edited]["edited_at"] is not None
    assert shown[erased]["text"] == "something meaner" and shown[erased]["state"] == "deleted"

    # A moderator's erasure (personal data) takes the quoted words with it.
    phone = (await author.ok(Post(corner, "call me on 06 12 34 56 78"))).data["id"]
    await classmate.ok(Report(corner, phone))
    await admin.ok(Delete(corner, phone, "a phone number"))
    shown = {r["message"]["id"]: r["message"] for r in (await admin.ok(ListModeration(world.space_id))).data["reports"]}
    assert shown[phone]["text"] is None and shown[phone]["state"] == "deleted"
    assert await pool.fetchval("SELECT count(*) FROM reports WHERE reported_text LIKE '%06 12%'") == 0


async def test_mail_reports_reach_the_queue_without_their_words(world, connect):
    admin = await connect(world.users["teacher_admin"])
    await admin.ok(Subscribe(queue(world.space_id)))
    bully = await connect(world.users["pupil_admin"])
    victim = await connect(world.users["pupil_member"])
    sent = await bully.ok(SendMail(world.space_id, (world.users["pupil_member"].id,), "go away", subject="hey"))
    await victim.ok(ReportMail(sent.data["id"], "this made me sad"))
    [opened] = await admin.wait_events(queue(world.space_id), 1)
    report = opened.data["report"]
    assert report["kind"] == "mail" and report["mail"] == {"id": sent.data["id"]} and "message" not in report
    assert "go away" not in str(opened.data)  # the words are read through the audited listing


async def test_mute_and_unmute_frames(world, connect, pool):
    pupil = await connect(world.users["pupil_member"])
    admin = await connect(world.users["teacher_admin"])
    chat = world.channel(Area.CHAT)
    who = world.users["pupil_member"].id
    assert (await pupil.error(Mute(world.space_id, who, "chat", 5))).code == "forbidden"
    assert (await admin.error(Mute(world.space_id, world.users["teacher_member"].id, "chat", 5))).code == "forbidden"
    assert (await admin.error(Mute(world.space_id, who, "chat", 10**7))).code == "invalid_field"  # absurd
    await admin.send_raw(json.dumps(
        {"type": "mute", "space": world.space_id, "user_id": who, "scope": "chat", "minutes": -5, "ref": 1}
    ))
    assert (await admin.next_frame(Error)).code == "invalid_field"
    await pupil.ok(Post(chat, "not muted yet"))
    await admin.ok(Mute(world.space_id, who, "chat", 5, "calm down"))
    assert (await pupil.error(Post(chat, "now"))).code == "muted"
    lifted = await admin.ok(Unmute(world.space_id, who, "chat"))
    assert lifted.data["lifted"] is True
    await pupil.ok(Post(chat, "back"))
    actions = [e.action for e in await audit.entries(pool, world.space_id)]
    assert actions[:2] == ["member.unmute", "member.mute"]


async def test_moderation_over_http(world, connect, http, make_world):
    other = await make_world()
    corner = world.rooms[Area.PUPILS_CORNER]
    author = await connect(world.users["pupil_member"])
    m = (await author.ok(Post(f"room:{corner}", "hmm"))).data["id"]
    other_author = await connect(other.users["pupil_member"])
    om = (await other_author.ok(Post(other.channel(Area.PUPILS_CORNER), "hmm too"))).data["id"]

    classmate = await _auth(http, world, "pupil_admin")
    r = await http.post(f"/api/rooms/{corner}/messages/{m}/report", headers=classmate, json={"note": "mean"})
    assert r.status_code == 201, r.text
    again = await http.post(f"/api/rooms/{corner}/messages/{m}/report", headers=classmate, json={"note": "mean"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    other_classmate = await _auth(http, other, "pupil_admin")
    r2 = await http.post(
        f"/api/rooms/{other.rooms[Area.PUPILS_CORNER]}/messages/{om}/report", headers=other_classmate, json={}
    )
    assert r2.status_code == 201, r2.text

    moderator = await _auth(http, world, "moderator")
    everywhere = await http.get("/api/moderation/reports?status=open", headers=moderator)
    assert everywhere.status_code == 200, everywhere.text
    spaces = {rep["space"] for rep in everywhere.json()["reports"]}
    assert {world.space_id, other.space_id} <= spaces
    admin = await _auth(http, world, "teacher_admin")
    assert (await http.get("/api/moderation/reports", headers=admin)).status_code == 403
    mine = await http.get(f"/api/spaces/{world.space_id}/reports", headers=admin)
    assert [rep["id"] for rep in mine.json()["reports"]] == [r.json()["report"]]
    assert (await http.get(f"/api/spaces/{world.space_id}/reports", headers=classmate)).status_code == 403
    assert (await http.get(f"/api/spaces/{world.space_id}/reports?status=maybe", headers=admin)).status_code == 400

    hidden = await http.post(f"/api/rooms/{corner}/messages/{m}/hide", headers=admin, json={"reason": "mean"})
    assert hidden.status_code == 200, hidden.text
    shown = await http.post(f"/api/rooms/{corner}/messages/{m}/unhide", headers=admin, json={})
    assert shown.status_code == 200, shown.text
    erased = await http.delete(f"/api/rooms/{corner}/messages/{m}?reason=personal+data", headers=admin)
    assert erased.status_code == 200, erased.text
    done = await http.post(f"/api/reports/{r.json()['report']}/resolve", headers=moderator,
                           json={"outcome": "resolved", "note": "erased"})
    assert done.status_code == 200 and done.json()["report"]["status"] == "resolved"
    twice = await http.post(f"/api/reports/{r.json()['report']}/resolve", headers=moderator,
                            json={"outcome": "resolved"})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "conflict"


async def test_reports_work_in_a_closed_project_and_moderation_too(world, connect, server):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    admin = await connect(world.users["teacher_admin"])
    m = (await author.ok(Post(corner, "last words of the year"))).data["id"]
    viewer = await server.app.state.services.directory.acquire(world.users["teacher_admin"])
    await server.app.state.projects.set_closed(viewer, world.space_id, True)
    await classmate.ok(Report(corner, m, "still mean"))
    await admin.ok(Hide(corner, m))
    await admin.ok(Unhide(corner, m))
    assert (await author.error(Post(corner, "x"))).code == "space_closed"
    assert (await author.error(Delete(corner, m))).code == "space_closed"  # the class's words are frozen
    await admin.ok(Delete(corner, m, "erasing still works when closed"))


async def test_report_floods_are_slowed(world, connect):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    ids = [(await author.ok(Post(corner, f"m{i}"))).data["id"] for i in range(12)]
    answers = await asyncio.gather(*(classmate.request(Report(corner, m)) for m in ids))
    codes = [a.code if isinstance(a, Error) else "ok" for a in answers]
    assert codes.count("ok") == 10 and codes.count("rate_limited") == 2
