"""TwinMail through real sockets, real HTTP and a real PostgreSQL: live delivery, resume,
threads and filing, who may write to whom, and reporting."""

from __future__ import annotations

import asyncio

import pytest

from protocol import (
    DeleteMail,
    Error,
    GetMail,
    GetThread,
    ListRecipients,
    ListReports,
    ListThreads,
    MarkMail,
    MoveMail,
    ReportMail,
    SendMail,
    Subscribe,
)
from realtime.policy import MAIL_TO, Role
from storage import audit
from tests.conftest import login

MEMBERS = ["teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor"]


def box(client, world) -> dict:
    """The client's mailbox in the world's project, as its welcome announced it."""
    [space] = [s for s in client.welcome.spaces if s["id"] == world.space_id]
    return space["mailbox"]


def ids(world, *who: str) -> tuple[int, ...]:
    return tuple(world.users[w].id for w in who)


async def test_a_mail_reaches_every_recipient_live_with_unread_counts(world, connect):
    sender = await connect(world.users["pupil_member"])
    # pupil_admin has two sockets open: both see the mail.
    tabs = [await connect(world.users["pupil_admin"]), await connect(world.users["pupil_admin"])]
    teacher = await connect(world.users["teacher_member"])
    for c in (sender, *tabs, teacher):
        await c.ok(Subscribe(box(c, world)["channel"], since=box(c, world)["seq"]))

    ok = await sender.ok(SendMail(world.space_id, ids(world, "pupil_admin", "teacher_member"), "Our river data!",
                                  subject="Water samples"))
    assert ok.data["duplicate"] is False and ok.data["thread_id"] == ok.data["id"]

    for c in (*tabs, teacher):
        [event] = await c.wait_events(box(c, world)["channel"], 1)
        assert event.kind == "mail.received"
        mail = event.data["mail"]
        assert (mail["id"], mail["subject"], mail["text"]) == (ok.data["id"], "Water samples", "Our river data!")
        assert mail["from"]["id"] == world.users["pupil_member"].id and not mail["read"] and mail["folder"] == "inbox"
        assert [p["id"] for p in mail["to"]] == list(ids(world, "pupil_admin", "teacher_member"))
        assert event.data["unread"]["inbox"] == 1
    # The sender's own mailbox (their other tabs) shows it in Sent.
    [own] = await sender.wait_events(box(sender, world)["channel"], 1)
    assert own.kind == "mail.sent" and own.seq == ok.data["seq"] and own.data["mail"]["folder"] == "sent"


async def test_a_retried_send_is_stored_once_and_the_sender_can_match_it(world, connect, pool):
    sender = await connect(world.users["teacher_member"])
    channel = box(sender, world)["channel"]
    await sender.ok(Subscribe(channel, since=box(sender, world)["seq"]))
    frame = SendMail(world.space_id, ids(world, "pupil_admin"), "Trip on Friday", subject="Trip", client_id="trip-1")
    first, again = await sender.ok(frame), await sender.ok(frame)
    assert again.data == {**first.data, "duplicate": True}
    [own] = await sender.wait_events(channel, 1)
    assert own.data["mail"]["client_id"] == "trip-1"  # how a client that lost the ok finds its mail
    pupil = await connect(world.users["pupil_admin"])
    got = await pupil.ok(GetMail(first.data["id"]))
    assert got.data["mail"]["client_id"] is None  # the sender's key is theirs alone
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE client_id = 'trip-1'") == 1


async def test_a_long_thread_pages(world, connect):
    teacher = await connect(world.users["teacher_admin"])
    first = await teacher.ok(SendMail(world.space_id, ids(world, "teacher_member"), "0", subject="long"))
    for i in range(1, 5):
        await teacher.ok(SendMail(world.space_id, ids(world, "teacher_member"), str(i), reply_to=first.data["id"]))
    page = await teacher.ok(GetThread(world.space_id, first.data["thread_id"], limit=3))
    assert [m["text"] for m in page.data["mails"]] == ["0", "1", "2"] and page.data["more"]
    rest = await teacher.ok(GetThread(world.space_id, first.data["thread_id"], after=page.data["mails"][-1]["id"]))
    assert [m["text"] for m in rest.data["mails"]] == ["3", "4"] and not rest.data["more"]


async def test_an_offline_recipient_gets_the_mail_when_they_connect(world, connect):
    sender = await connect(world.users["teacher_admin"])
    ok = await sender.ok(SendMail(world.space_id, ids(world, "pupil_member"), "See you on Monday", subject="Visit"))
    later = await connect(world.users["pupil_member"])
    announced = box(later, world)
    assert announced["unread"]["inbox"] == 1 and announced["seq"] == 1
    # Resuming from what the pupil last saw (nothing yet) replays the mail.
    reply = await later.ok(Subscribe(announced["channel"], since=0))
    assert reply.data["replayed"] == 1 and reply.data["head"] == 1
    [event] = await later.wait_events(announced["channel"], 1)
    assert event.data["mail"]["id"] == ok.data["id"] and event.data["unread"] == announced["unread"]


async def test_resume_after_being_offline_replays_exactly_what_was_missed(world, connect):
    pupil = await connect(world.users["pupil_admin"])
    channel = box(pupil, world)["channel"]
    await pupil.ok(Subscribe(channel, since=0))
    teacher = await connect(world.users["teacher_member"])
    await teacher.ok(SendMail(world.space_id, ids(world, "pupil_admin"), "one", subject="1"))
    [first] = await pupil.wait_events(channel, 1)
    await pupil.close()
    for n in ("two", "three"):
        await teacher.ok(SendMail(world.space_id, ids(world, "pupil_admin"), n, subject=n))
    back = await connect(world.users["pupil_admin"])
    await back.ok(Subscribe(channel, since=first.seq))
    events = await back.wait_events(channel, 2)
    assert [e.data["mail"]["text"] for e in events] == ["two", "three"]
    assert [e.seq for e in events] == [first.seq + 1, first.seq + 2]
    assert events[-1].data["unread"]["inbox"] == 3


async def test_reply_read_archive_and_delete_for_oneself(world, connect):
    pupil = await connect(world.users["pupil_member"])
    partner = await connect(world.users["pupil_admin"])
    teacher = await connect(world.users["teacher_member"])
    first = await pupil.ok(SendMail(world.space_id, ids(world, "pupil_admin", "teacher_member"), "Hello!", subject="Hi"))
    mail_id = first.data["id"]

    # Reply in the thread: the subject follows, the thread is kept.
    reply = await partner.ok(SendMail(world.space_id, ids(world, "pupil_member"), "Hello back", reply_to=mail_id))
    assert reply.data["thread_id"] == mail_id
    thread = await pupil.ok(GetThread(world.space_id, mail_id))
    assert [(m["subject"], m["folder"]) for m in thread.data["mails"]] == [("Hi", "sent"), ("Re: Hi", "inbox")]

    # Read and unread, with the counts that follow.
    channel = box(partner, world)["channel"]
    await partner.ok(Subscribe(channel, since=box(partner, world)["seq"]))
    done = await partner.ok(MarkMail(mail_id, True))
    assert done.data["changed"] and done.data["unread"]["inbox"] == 0
    again = await partner.ok(MarkMail(mail_id, True))
    assert again.data["changed"] is False  # asking twice changes nothing
    await partner.ok(MarkMail(mail_id, False))
    moved = await partner.ok(MoveMail(mail_id, "archive"))
    assert moved.data["unread"] == {"inbox": 0, "sent": 0, "archive": 1, "trash": 0}
    events = await partner.wait_events(channel, 5)  # from the welcome's seq: both mails came after it
    assert [e.kind for e in events] == ["mail.received", "mail.sent"] + ["mail.updated"] * 3
    assert events[-1].data["mail"]["folder"] == "archive"
    archived = await partner.ok(ListThreads(world.space_id, folder="archive"))
    assert [t["thread_id"] for t in archived.data["threads"]] == [mail_id]
    refused = await partner.error(MoveMail(mail_id, "sent"))  # a received mail never goes to Sent
    assert refused.code == "invalid_field"

    # Delete for oneself: gone for the pupil admin, kept by the teacher.
    gone = await partner.ok(DeleteMail(mail_id))
    assert gone.data["changed"]
    [deleted] = [e for e in await partner.wait_events(channel, 6) if e.kind == "mail.deleted"]
    assert deleted.data["mail"]["text"] is None and deleted.data["mail"]["state"] == "deleted"
    assert (await partner.error(GetMail(mail_id))).code == "not_found"
    kept = await teacher.ok(GetMail(mail_id))
    assert kept.data["mail"]["text"] == "Hello!"


@pytest.mark.parametrize("sender", MEMBERS)
async def test_who_may_write_to_whom_cell_by_cell(sender, world, connect):
    client = await connect(world.users[sender])
    for recipient in MEMBERS:
        if recipient == sender:
            continue
        reply = await client.request(SendMail(world.space_id, ids(world, recipient), "hello", subject="cell"))
        if Role(recipient) in MAIL_TO[Role(sender)]:
            assert reply.type == "ok", (sender, recipient, reply)
        else:
            hidden = sender == "visitor" and recipient.startswith("pupil")  # like nobody in the project
            assert reply.type == "error" and reply.code == ("not_found" if hidden else "forbidden"), (
                sender, recipient, reply)
            assert reply.data["recipients"] == [world.users[recipient].id]
    # The address book lists exactly who the table allows.
    book = await client.ok(ListRecipients(world.space_id))
    allowed = {w for w in MEMBERS if w != sender and Role(w) in MAIL_TO[Role(sender)]}
    assert {m["id"] for m in book.data["members"]} == set(ids(world, *allowed))


async def test_moderators_and_outsiders_have_no_mailbox_in_the_project(world, connect):
    for who in ("moderator", "outsider"):
        client = await connect(world.users[who])
        assert all(s["id"] != world.space_id for s in client.welcome.spaces)
        refused = await client.error(SendMail(world.space_id, ids(world, "teacher_admin"), "hi", subject="x"))
        assert refused.code == "not_found"


async def test_a_refused_recipient_means_nothing_is_sent_to_anyone(world, connect, pool):
    visitor = await connect(world.users["visitor"])
    refused = await visitor.error(
        SendMail(world.space_id, ids(world, "teacher_admin", "pupil_member"), "hello", subject="x")
    )
    assert refused.code == "not_found" and refused.data["recipients"] == [world.users["pupil_member"].id]
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE sender_id = $1", world.users["visitor"].id) == 0
    admin = await connect(world.users["teacher_admin"])
    assert box(admin, world)["unread"]["inbox"] == 0


async def test_bad_mail_input_gets_clear_codes_and_stores_nothing(world, connect, make_world, pool):
    other = await make_world()
    teacher = await connect(world.users["teacher_member"])
    me = world.users["teacher_member"].id
    cases = [
        (SendMail(world.space_id, (999_999_999,), "hi", subject="x"), "not_found"),  # unknown recipient
        (SendMail(world.space_id, (other.users["pupil_member"].id,), "hi", subject="x"), "not_found"),  # other space
        (SendMail(world.space_id, (me,), "hi", subject="x"), "invalid_field"),  # to oneself
        (SendMail(world.space_id, ids(world, "pupil_member"), "hi"), "invalid_field"),  # a new mail needs a subject
        (SendMail(world.space_id, ids(world, "pupil_member"), "hi", subject="x", reply_to=999_999_999), "not_found"),
        (SendMail(other.space_id, ids(other, "pupil_member"), "hi", subject="x"), "not_found"),  # not my project
    ]
    for frame, code in cases:
        refused = await teacher.error(frame)
        assert refused.code == code, (frame, refused)
    # What the decoder refuses: empty text, repeated recipient, too many, too long, wrong types.
    raw = [
        ('{"type":"send_mail","space":%d,"to":[%d],"text":"  ","subject":"x","ref":1}', "invalid_field"),
        ('{"type":"send_mail","space":%d,"to":[%d,%d],"text":"hi","subject":"x","ref":1}', "invalid_field"),
        ('{"type":"send_mail","space":%d,"to":%s,"text":"hi","subject":"x","ref":1}', "too_large"),
        ('{"type":"send_mail","space":%d,"to":[%d],"text":"hi","subject":"%s","ref":1}', "too_large"),
        ('{"type":"send_mail","space":%d,"to":["%d"],"text":"hi","subject":"x","ref":1}', "invalid_field"),
        ('{"type":"send_mail","space":%d,"to":[],"text":"hi","subject":"x","ref":1}', "invalid_field"),
    ]
    pm = world.users["pupil_member"].id
    args = [
        (world.space_id, pm), (world.space_id, pm, pm), (world.space_id, str(list(range(1, 52)))),
        (world.space_id, pm, "s" * 201), (world.space_id, pm), (world.space_id,),
    ]
    for (template, code), a in zip(raw, args, strict=True):
        await teacher.send_raw(template % a)
        reply = await teacher.next_frame(Error)
        assert reply.code == code, (template, reply)
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE sender_id = $1", me) == 0


async def test_pupils_are_rate_limited_more_strictly_than_teachers(world, connect):
    pupil = await connect(world.users["pupil_member"])
    teacher = await connect(world.users["teacher_member"])
    to = ids(world, "pupil_admin")
    for i in range(8):  # the test server's pupil burst
        await pupil.ok(SendMail(world.space_id, to, f"m{i}", subject="s"))
    limited = await pupil.error(SendMail(world.space_id, to, "one too many", subject="s"))
    assert limited.code == "rate_limited" and limited.data["retry_after_ms"] > 0
    for i in range(12):
        await teacher.ok(SendMail(world.space_id, to, f"t{i}", subject="s"))


async def test_a_closed_project_reads_and_files_mail_but_sends_none(world, connect, server):
    teacher = await connect(world.users["teacher_admin"])
    pupil = await connect(world.users["pupil_member"])
    sent = await teacher.ok(SendMail(world.space_id, ids(world, "pupil_member"), "last one", subject="June"))
    await server.app.state.projects.set_closed(await _viewer(server, world, "teacher_admin"), world.space_id, True)
    refused = await pupil.error(SendMail(world.space_id, ids(world, "teacher_admin"), "hi", reply_to=sent.data["id"]))
    assert refused.code == "space_closed"
    assert (await pupil.ok(GetMail(sent.data["id"]))).data["mail"]["text"] == "last one"
    assert (await pupil.ok(MarkMail(sent.data["id"], True))).data["changed"]
    assert (await pupil.ok(ReportMail(sent.data["id"], "checking reports still work"))).data["report"] > 0


async def _viewer(server, world, who):
    directory = server.app.state.services.directory
    viewer = await directory.acquire(world.users[who])
    directory.release(viewer)
    return viewer


async def test_a_removed_member_loses_their_mailbox_at_once(world, connect, server):
    teacher = await connect(world.users["teacher_admin"])
    pupil = await connect(world.users["pupil_member"])
    sent = await teacher.ok(SendMail(world.space_id, ids(world, "pupil_member"), "hello", subject="x"))
    channel = box(pupil, world)["channel"]
    await pupil.ok(Subscribe(channel, since=0))
    await server.app.state.projects.set_member(world.space_id, world.users["pupil_member"].id, None)
    ended = await pupil.next_frame(Error)
    assert ended.code == "not_member" and ended.data["channel"] == channel
    assert (await pupil.error(GetMail(sent.data["id"]))).code == "not_found"
    assert (await pupil.error(SendMail(world.space_id, ids(world, "teacher_admin"), "x", subject="x"))).code == "not_found"
    assert (await pupil.error(Subscribe(channel, since=0))).code == "not_found"
    # The teacher can no longer write to them either.
    refused = await teacher.error(SendMail(world.space_id, ids(world, "pupil_member"), "still there?", subject="x"))
    assert refused.code == "not_found"


async def test_reporting_reveals_exactly_one_mail_to_teacher_admins_and_moderators(world, connect, pool):
    bully = await connect(world.users["pupil_admin"])
    victim = await connect(world.users["pupil_member"])
    bad = await bully.ok(SendMail(world.space_id, ids(world, "pupil_member"), "nobody likes you", subject="hey"))
    await bully.ok(SendMail(world.space_id, ids(world, "pupil_member"), "a private joke", subject="other"))
    await victim.ok(SendMail(world.space_id, ids(world, "pupil_admin"), "please stop", reply_to=bad.data["id"]))

    reported = await victim.ok(ReportMail(bad.data["id"], "this made me sad"))
    assert reported.data["duplicate"] is False
    assert (await victim.ok(ReportMail(bad.data["id"], "again"))).data["duplicate"] is True
    assert (await bully.error(ReportMail(bad.data["id"], "own mail"))).code == "not_found"

    for who in ("teacher_admin", "moderator"):
        reviewer = await connect(world.users[who])
        queue = await reviewer.ok(ListReports(world.space_id))
        [report] = queue.data["reports"]
        assert report["note"] == "this made me sad" and report["reporter"]["id"] == world.users["pupil_member"].id
        assert report["mail"]["text"] == "nobody likes you" and report["mail"]["id"] == bad.data["id"]
        # Nothing else of either mailbox: the other mail and the reply stay private.
        for mail_id in (bad.data["id"], bad.data["id"] + 1, bad.data["id"] + 2):
            assert (await reviewer.error(GetMail(mail_id))).code == "not_found"
    for who in ("teacher_member", "pupil_member", "visitor"):
        client = await connect(world.users[who])
        assert (await client.error(ListReports(world.space_id))).code == "forbidden"

    log = await audit.entries(pool, world.space_id)
    actions = [(e.action, e.actor_id) for e in reversed(log) if e.action.startswith("mail")]
    assert actions == [
        ("mail.report", world.users["pupil_member"].id),
        ("mail_report.view", world.users["teacher_admin"].id),
        ("mail_report.view", world.users["moderator"].id),
    ]


async def test_the_same_operations_over_http(world, http, connect):
    teacher = await login(http, world.users["teacher_member"].username)
    pupil = await login(http, world.users["pupil_member"].username)
    live = await connect(world.users["pupil_member"])
    channel = box(live, world)["channel"]
    await live.ok(Subscribe(channel, since=box(live, world)["seq"]))

    auth = {"authorization": f"Bearer {teacher}"}
    r = await http.post(f"/api/spaces/{world.space_id}/mail", headers=auth, json={
        "to": [world.users["pupil_member"].id], "subject": "Homework", "text": "Page 12", "client_id": "hw-1",
    })
    assert r.status_code == 201, r.text
    sent = r.json()
    again = await http.post(f"/api/spaces/{world.space_id}/mail", headers=auth, json={
        "to": [world.users["pupil_member"].id], "subject": "Homework", "text": "Page 12", "client_id": "hw-1",
    })
    assert again.status_code == 200 and again.json()["duplicate"] is True and again.json()["id"] == sent["id"]
    [event] = await live.wait_events(channel, 1)  # delivered live once, not twice
    assert event.data["mail"]["id"] == sent["id"]

    mine = {"authorization": f"Bearer {pupil}"}
    page = (await http.get(f"/api/spaces/{world.space_id}/mail?folder=inbox&limit=10", headers=mine)).json()
    assert [t["last"]["subject"] for t in page["threads"]] == ["Homework"] and page["mailbox"]["unread"]["inbox"] == 1
    assert (await http.post(f"/api/mail/{sent['id']}/read", headers=mine, json={"read": True})).json()["changed"]
    assert (await http.post(f"/api/mail/{sent['id']}/move", headers=mine, json={"folder": "trash"})).status_code == 200
    assert (await http.get(f"/api/mail/{sent['id']}", headers=mine)).json()["mail"]["folder"] == "trash"
    thread = await http.get(f"/api/spaces/{world.space_id}/mail/threads/{sent['thread_id']}", headers=mine)
    assert [m["id"] for m in thread.json()["mails"]] == [sent["id"]]
    assert (await http.delete(f"/api/mail/{sent['id']}", headers=mine)).status_code == 200
    assert (await http.get(f"/api/mail/{sent['id']}", headers=mine)).status_code == 404
    bad = await http.post(f"/api/spaces/{world.space_id}/mail", headers=auth, json={"to": "everyone", "text": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_field"
    await asyncio.sleep(0)


async def test_a_mails_sender_carries_the_badge_of_their_role(world, connect):
    """Issue 21, rule 4: a pupil tells a teacher's mail from a pupil's who chose a teacher's name —
    live, in the mailbox's replay and when the mail is read again."""
    from protocol import GetMail

    pupil = await connect(world.users["pupil_member"])
    mailbox = box(pupil, world)["channel"]
    await pupil.ok(Subscribe(mailbox, since=box(pupil, world)["seq"]))
    for who, badge in (("teacher_member", "teacher"), ("pupil_admin", "pupil")):
        sender = await connect(world.users[who])
        sent = await sender.ok(SendMail(world.space_id, ids(world, "pupil_member"), "Bonjour", subject=f"from {who}"))
        [event] = [e for e in await pupil.wait_events(mailbox, 1 if badge == "teacher" else 2)
                   if e.data["mail"]["id"] == sent.data["id"]]
        assert event.data["mail"]["from"] == {"id": world.users[who].id, "name": world.users[who].display_name,
                                              "school": world.users[who].school, "role": badge}
        again = await pupil.ok(GetMail(sent.data["id"]))
        assert again.data["mail"]["from"]["role"] == badge
