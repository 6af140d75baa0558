"""TwinMail storage on a real PostgreSQL: one transaction per batch, gap-free mailbox logs,
unread counters that always agree with the items, and queries that cannot open someone else's
mailbox."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace

import pytest

from storage import audit, mail_reports
from storage import mail as store
from storage.mail import Change, NewMail
from storage.writer import GroupCommitWriter


@pytest.fixture
async def boxes(pool, world):
    """user role name -> (Person, mailbox id) for every member of the world."""
    found = await store.roster(pool, world.space_id)
    by_id = {p.id: (p, box) for p, _, box in found}
    return {who: by_id[u.id] for who, u in world.users.items() if u.id in by_id}


@pytest.fixture
async def writer(pool):
    w = GroupCommitWriter(pool, store.send_many, name="mail", atomic=True)
    w.start()
    yield w
    await w.close()


def mail(world, boxes, sender, recipients, *, subject="Hello", text="text", thread=None, reply_to=None, client_id=None):
    person, box = boxes[sender]
    return NewMail(
        world.space_id, person, box, tuple(boxes[r] for r in recipients), subject, text, thread, reply_to, client_id
    )


async def recount(pool, box: int) -> dict[str, int]:
    rows = await pool.fetch(
        "SELECT folder, count(*) AS n FROM mailbox_items WHERE mailbox_id = $1 AND NOT read AND deleted_at IS NULL"
        " GROUP BY folder", box,
    )
    counts = dict.fromkeys(store.FOLDERS, 0)
    counts.update({r["folder"]: r["n"] for r in rows})
    return counts


async def test_every_member_has_a_mailbox(pool, world, boxes):
    members = [w for w in world.users if w not in ("outsider", "moderator")]
    assert sorted(boxes) == sorted(members)
    assert len({box for _, box in boxes.values()}) == len(members)


async def test_send_stores_once_and_logs_each_mailbox(pool, world, boxes, writer):
    sent = await writer.submit(mail(world, boxes, "pupil_member", ["pupil_admin", "teacher_member"]))
    assert not sent.duplicate and sent.thread_id == sent.mail_id
    assert sent.sent.mailbox_id == boxes["pupil_member"][1] and sent.sent.unread == (0, 0, 0, 0)
    assert [d.mailbox_id for d in sent.received] == [boxes["pupil_admin"][1], boxes["teacher_member"][1]]
    assert all(d.unread == (1, 0, 0, 0) for d in sent.received)
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE id = $1", sent.mail_id) == 1
    # What the batch said it stored is what a replay reads back.
    p, box = boxes["pupil_member"]
    [own] = (await store.replay(pool, p.id, box, 0, 10)).events
    assert (own.seq, own.kind, own.item.folder, own.item.read) == (sent.sent.seq, "mail.sent", "sent", True)
    for who in ("pupil_admin", "teacher_member"):
        p, box = boxes[who]
        replay = await store.replay(pool, p.id, box, 0, 10)
        assert [e.seq for e in replay.events] == [1] and replay.head == 1
        # The recipients as they were given, each with their role in the project now.
        assert replay.events[0].item.recipients == (
            replace(boxes["pupil_admin"][0], role="pupil_admin"), replace(boxes["teacher_member"][0], role="teacher_member"),
        )
        [e] = replay.events
        assert (e.kind, e.item.folder, e.item.read, e.unread["inbox"]) == ("mail.received", "inbox", False, 1)


async def test_concurrent_sends_give_gap_free_seqs_and_exact_counts(pool, world, boxes, writer):
    senders = ["teacher_admin", "teacher_member", "pupil_member"]
    results = await asyncio.gather(*(
        writer.submit(mail(world, boxes, senders[i % 3], ["pupil_admin"], text=f"m{i}")) for i in range(60)
    ))
    assert writer.batches < 60  # gathered into batches
    p, box = boxes["pupil_admin"]
    replay = await store.replay(pool, p.id, box, 0, 100)
    assert [e.seq for e in replay.events] == list(range(1, 61))
    assert [e.unread["inbox"] for e in replay.events] == list(range(1, 61))
    assert [e.item.text for e in replay.events] == [f"m{i}" for i in range(60)]  # submission order
    assert {r.received[0].seq for r in results} == set(range(1, 61))
    # Each sender's own log too, and the seqs the batch reported are the ones stored.
    for who in senders:
        person, own = boxes[who]
        logged = {e.item.mail_id: e.seq for e in (await store.replay(pool, person.id, own, 0, 100)).events}
        assert sorted(logged.values()) == list(range(1, 21))
        assert all(logged[r.mail_id] == r.sent.seq for r in results if r.sent.mailbox_id == own)


async def test_client_id_makes_a_retry_harmless(pool, world, boxes, writer):
    first = await writer.submit(mail(world, boxes, "teacher_admin", ["visitor"], client_id="k1"))
    again = await asyncio.gather(*(
        writer.submit(mail(world, boxes, "teacher_admin", ["visitor"], client_id="k1")) for _ in range(3)
    ))
    assert all(r.duplicate and r.mail_id == first.mail_id and r.seq == first.seq for r in again)
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE sender_id = $1", boxes["teacher_admin"][0].id) == 1


async def test_reply_keeps_the_thread(pool, world, boxes, writer):
    first = await writer.submit(mail(world, boxes, "pupil_member", ["teacher_admin"], subject="Question"))
    reply = await writer.submit(mail(
        world, boxes, "teacher_admin", ["pupil_member"], subject="Re: Question", thread=first.thread_id,
        reply_to=first.mail_id,
    ))
    assert reply.thread_id == first.mail_id
    p, _ = boxes["pupil_member"]
    mails = await store.thread(pool, p.id, world.space_id, first.thread_id, None, 50)
    assert [(m.mail_id, m.folder) for m in mails] == [(first.mail_id, "sent"), (reply.mail_id, "inbox")]


async def test_unread_counters_always_match_the_items(pool, world, boxes, writer):
    """Random sends, marks, moves and deletes: the kept counters equal a recount after each step."""
    rng = random.Random(7)
    who = ["teacher_admin", "pupil_member", "pupil_admin"]
    ids: list[int] = []
    for step in range(80):
        if step % 3 == 0 or not ids:
            s = rng.choice(who)
            r = await writer.submit(mail(world, boxes, s, [w for w in who if w != s]))
            ids.append(r.mail_id)
            continue
        owner = rng.choice(who)
        person, box = boxes[owner]
        what = rng.choice([
            Change(read=True), Change(read=False), Change(folder=rng.choice(["archive", "trash", "inbox"])),
            Change(delete=True),
        ])
        done = await store.change(pool, person.id, [world.space_id], rng.choice(ids), what)
        if done is not None and done[1] is not None:
            assert done[1].unread == await recount(pool, box)
    for owner in who:
        _, box = boxes[owner]
        row = await pool.fetchrow("SELECT * FROM mailboxes WHERE id = $1", box)
        assert {f: row[f"unread_{f}"] for f in store.FOLDERS} == await recount(pool, box)
        events = await pool.fetch("SELECT seq FROM mailbox_events WHERE mailbox_id = $1 ORDER BY seq", box)
        assert [e["seq"] for e in events] == list(range(1, row["last_seq"] + 1))  # gap-free


async def test_changes_are_per_owner(pool, world, boxes, writer):
    r = await writer.submit(mail(world, boxes, "teacher_member", ["pupil_member", "pupil_admin"]))
    pm, _ = boxes["pupil_member"]
    item, event = await store.change(pool, pm.id, [world.space_id], r.mail_id, Change(delete=True))
    assert item.deleted and item.text is None and event.kind == "mail.deleted"
    pa, _ = boxes["pupil_admin"]
    kept = await store.get_item(pool, pa.id, [world.space_id], r.mail_id)
    assert kept is not None and kept.text == "text"
    assert await store.get_item(pool, pm.id, [world.space_id], r.mail_id) is None  # gone for them
    # Asking twice is harmless: no new event.
    again = await store.change(pool, pa.id, [world.space_id], r.mail_id, Change(read=False))
    assert again is not None and again[1] is None


async def test_no_query_opens_a_mailbox_without_its_owner(pool, world, boxes, writer):
    r = await writer.submit(mail(world, boxes, "pupil_member", ["pupil_admin"], text="secret"))
    admin, _ = boxes["teacher_admin"]
    _, pupil_box = boxes["pupil_admin"]
    assert await store.get_item(pool, admin.id, [world.space_id], r.mail_id) is None
    assert await store.change(pool, admin.id, [world.space_id], r.mail_id, Change(read=True)) is None
    assert (await store.replay(pool, admin.id, pupil_box, 0, 10)).events == []
    assert await store.thread(pool, admin.id, world.space_id, r.thread_id, None, 10) == []
    assert await mail_reports.report(pool, admin.id, [world.space_id], r.mail_id, "x") is None
    # The owner, asking with the wrong space, does not get it either.
    pa, _ = boxes["pupil_admin"]
    assert await store.get_item(pool, pa.id, [], r.mail_id) is None


async def test_threads_page_by_latest_activity(pool, world, boxes, writer):
    tm = boxes["teacher_member"][0]
    firsts = []
    for i in range(5):
        firsts.append(await writer.submit(mail(world, boxes, "pupil_member", ["teacher_member"], subject=f"t{i}")))
    # A reply to the oldest thread brings it to the top.
    await writer.submit(mail(
        world, boxes, "pupil_admin", ["teacher_member"], thread=firsts[0].thread_id, reply_to=firsts[0].mail_id,
    ))
    page1, box = await store.threads(pool, tm.id, world.space_id, "inbox", None, 3)
    assert box.unread["inbox"] == 6 and box.last_seq == 6
    assert [t.thread_id for t in page1] == [firsts[0].thread_id, firsts[4].thread_id, firsts[3].thread_id]
    assert page1[0].mails == 2 and page1[0].unread == 2
    page2, _ = await store.threads(pool, tm.id, world.space_id, "inbox", page1[-1].last.mail_id, 3)
    assert [t.thread_id for t in page2] == [firsts[2].thread_id, firsts[1].thread_id]


async def test_report_shows_one_mail_and_every_look_is_audited(pool, world, boxes, writer):
    bad = await writer.submit(mail(world, boxes, "pupil_admin", ["pupil_member"], text="you are stupid"))
    await writer.submit(mail(world, boxes, "pupil_admin", ["pupil_member"], text="another, not reported"))
    pm, _ = boxes["pupil_member"]
    reported = await mail_reports.report(pool, pm.id, [world.space_id], bad.mail_id, "this hurt me")
    assert reported is not None and not reported.duplicate
    assert (await mail_reports.report(pool, pm.id, [world.space_id], bad.mail_id, "again")).duplicate
    # The sender cannot report their own mail.
    pa, _ = boxes["pupil_admin"]
    assert await mail_reports.report(pool, pa.id, [world.space_id], bad.mail_id, "x") is None
    # Deleting one's copy does not withdraw the report.
    await store.change(pool, pm.id, [world.space_id], bad.mail_id, Change(delete=True))
    admin = boxes["teacher_admin"][0]
    queue, more = await mail_reports.reports_for_review(pool, world.space_id, admin.id, None, 10)
    assert not more
    assert [(r.mail.mail_id, r.mail.text, r.note) for r in queue] == [(bad.mail_id, "you are stupid", "this hurt me")]
    log = await audit.entries(pool, world.space_id)
    assert [(e.action, e.actor_id, e.target_id) for e in log[:2]] == [
        ("mail_report.view", admin.id, bad.mail_id), ("mail.report", pm.id, bad.mail_id),
    ]


async def test_the_last_holder_deleting_a_mail_erases_its_words_unless_reported(pool, world, boxes, writer):
    plain = await writer.submit(mail(world, boxes, "pupil_member", ["pupil_admin"], text="forget me"))
    kept = await writer.submit(mail(world, boxes, "pupil_member", ["pupil_admin"], text="report me"))
    pm, pa = boxes["pupil_member"][0], boxes["pupil_admin"][0]
    await mail_reports.report(pool, pa.id, [world.space_id], kept.mail_id, "evidence")
    for r in (plain, kept):
        await store.change(pool, pm.id, [world.space_id], r.mail_id, Change(delete=True))
        assert await pool.fetchval("SELECT text FROM mails WHERE id = $1", r.mail_id) != ""  # one holder left
        await store.change(pool, pa.id, [world.space_id], r.mail_id, Change(delete=True))
    assert await pool.fetchval("SELECT text FROM mails WHERE id = $1", plain.mail_id) == ""
    assert await pool.fetchval("SELECT text FROM mails WHERE id = $1", kept.mail_id) == "report me"


async def test_a_batch_where_mailboxes_send_and_receive_keeps_every_log_exact(pool, world, boxes, writer):
    """Everyone writes to everyone at once: in one batch a mailbox gets sent and received events
    mixed; its seqs stay gap-free in batch order and its counts match a recount."""
    who = ["teacher_admin", "teacher_member", "pupil_admin", "pupil_member"]
    sends = [mail(world, boxes, who[i % 4], [w for w in who if w != who[i % 4]], text=f"m{i}") for i in range(80)]
    results = await asyncio.gather(*(writer.submit(s) for s in sends))
    assert writer.batches < 80
    for w in who:
        person, box = boxes[w]
        replay = await store.replay(pool, person.id, box, 0, 200)
        assert [e.seq for e in replay.events] == list(range(1, 81))  # 20 sent + 60 received
        reported = {d.seq: (r.mail_id, d.unread) for r in results for d in (r.sent, *r.received) if d.mailbox_id == box}
        assert {e.seq: (e.item.mail_id, tuple(e.unread.values())) for e in replay.events} == reported
        assert replay.events[-1].unread == await recount(pool, box)
