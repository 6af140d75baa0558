"""A report about a teacher admin — a message they wrote, a mail they sent — is never shown to
that teacher admin, nor resolvable by them: it goes to the project's other teacher admins and to
the platform moderators. (The member reported never learns who reported them: they never see the
report.) Live queue, replay, HTTP pages and the mail reports alike."""

from __future__ import annotations

import asyncio

from protocol import (
    Event,
    ListModeration,
    ListReports,
    Post,
    Report,
    ReportMail,
    ResolveReport,
    SendMail,
    Subscribe,
)
from realtime.policy import Area
from tests.conftest import login


async def test_a_report_about_a_teacher_admin_skips_them_and_reaches_the_others(world, connect, http):
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users['teacher_member'].id}", headers=admin,
                         json={"role": "teacher_admin"})  # a second teacher admin
    assert r.status_code == 200, r.text
    reported, other = await connect(world.users["teacher_admin"]), await connect(world.users["teacher_member"])
    moderator, pupil = await connect(world.users["moderator"]), await connect(world.users["pupil_member"])
    queue = f"moderation:{world.space_id}"
    for reviewer in (reported, other):
        await reviewer.ok(Subscribe(queue))
    await moderator.ok(Subscribe("moderation:0"))
    chat = world.channel(Area.CHAT)
    said = await reported.ok(Post(chat, "something a child found hurtful"))
    report = (await pupil.ok(Report(chat, said.data["id"], "the teacher was unkind"))).data["report"]
    seen = await other.wait_events(queue, 1)
    assert [e.data["report"]["id"] for e in seen] == [report]
    assert [e.data["report"]["id"] for e in await moderator.wait_events("moderation:0", 1)] == [report]
    # A report about someone else reaches every reviewer, the first admin too: the queue works for them.
    other_said = await other.ok(Post(chat, "and this one"))
    second = (await pupil.ok(Report(chat, other_said.data["id"], "also"))).data["report"]
    got = await reported.wait_events(queue, 1)
    assert [e.data["report"]["id"] for e in got] == [second]  # only the one not about them
    await asyncio.sleep(0.2)
    assert report not in [e.data["report"]["id"] for e in reported.events.get(queue, [])]
    # Not in their pages, not in a replay, not theirs to resolve.
    page = await reported.ok(ListModeration(world.space_id))
    assert report not in [r["id"] for r in page.data["reports"]]
    replayer = await connect(world.users["teacher_admin"])
    await replayer.ok(Subscribe(queue, since=0))
    await asyncio.sleep(0.3)
    assert report not in [e.data["report"]["id"] for e in replayer.events.get(queue, []) if isinstance(e, Event)]
    refused = await reported.error(ResolveReport(report, "dismissed", "nothing to see"))
    assert refused.code == "not_found"
    assert (await other.ok(ResolveReport(report, "resolved", "spoken to"))).data["report"]["status"] == "resolved"


async def test_a_reported_mail_is_never_shown_to_its_sender(world, connect, http):
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users['teacher_member'].id}", headers=admin,
                         json={"role": "teacher_admin"})
    assert r.status_code == 200, r.text
    sender, other = await connect(world.users["teacher_admin"]), await connect(world.users["teacher_member"])
    pupil = await connect(world.users["pupil_member"])
    sent = await sender.ok(SendMail(world.space_id, (world.users["pupil_member"].id,), "a mail", subject="hello"))
    await pupil.ok(ReportMail(sent.data["id"], "this made me uncomfortable"))
    theirs = await sender.ok(ListReports(world.space_id))
    assert theirs.data["reports"] == []
    others = await other.ok(ListReports(world.space_id))
    assert [r["mail"]["id"] for r in others.data["reports"]] == [sent.data["id"]]
