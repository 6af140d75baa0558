"""The project journal through real sockets: entries (with a title) by whoever may post on the
home page, comments by whoever may comment, each cell of the home row tried for real."""

from __future__ import annotations

import pytest

from protocol import Edit, Error, Hide, Post, Subscribe
from realtime.policy import MATRIX, Action, Area, Role
from tests.conftest import public_view_on

WHO = ["teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor", "moderator", "outsider"]


def journal_of(client, world) -> str:
    [space] = [s for s in client.welcome.spaces if s["id"] == world.space_id]
    [room] = [r for r in space["rooms"] if r["kind"] == "journal"]
    return room["channel"]


def may(who: str, action: Action) -> bool:
    return who != "outsider" and action in MATRIX[Area.HOME].get(Role(who), frozenset())


@pytest.mark.parametrize("who", WHO)
async def test_journal_cells_entry_and_comment(who, world, connect):
    admin = await connect(world.users["teacher_admin"])
    journal = journal_of(admin, world)
    entry = await admin.ok(Post(journal, "We measured the Rhône today.", title="Week 3"))
    client = await connect(world.users[who])

    reply = await client.request(Post(journal, "Our entry", title="From us"))
    if may(who, Action.POST):
        assert reply.type == "ok", reply
    else:
        assert reply.type == "error" and reply.code == ("not_found" if who == "outsider" else "forbidden"), reply

    reply = await client.request(Post(journal, "Bravo !", parent=entry.data["id"]))
    if may(who, Action.COMMENT):
        assert reply.type == "ok", reply
        # One edits one's own comment with the right that wrote it.
        assert (await client.request(Edit(journal, reply.data["id"], "Bravo, encore !"))).type == "ok"
    else:
        assert reply.type == "error" and reply.code in ("forbidden", "not_found"), reply


async def test_entries_comments_and_their_mistakes(world, connect):
    teacher = await connect(world.users["teacher_member"])
    pupil = await connect(world.users["pupil_member"])
    journal = journal_of(teacher, world)
    await pupil.ok(Subscribe(journal, since=0))
    entry = await teacher.ok(Post(journal, "Samples from the Vistula.", title="Kraków, week 3"))
    comment = await pupil.ok(Post(journal, "Can we see the photos?", parent=entry.data["id"]))
    events = await pupil.wait_events(journal, 2)
    assert [(e.data["message"]["title"], e.data["message"]["parent_id"]) for e in events] == [
        ("Kraków, week 3", None), (None, entry.data["id"]),
    ]
    mistakes = [
        (Post(journal, "no title"), "invalid_field"),  # an entry needs a title
        (Post(journal, "x", title="t", parent=entry.data["id"]), "invalid_field"),  # a comment has none
        (Post(journal, "x", parent=comment.data["id"]), "not_found"),  # comments are on entries only
        (Post(journal, "x", parent=987_654_321), "not_found"),
        (Post(world.channel(Area.CHAT), "x", title="t"), "invalid_field"),  # titles are the journal's
    ]
    for frame, code in mistakes:
        assert (await teacher.error(frame)).code == code, frame


async def test_teacher_admins_moderate_comments_and_the_feed_shows_the_journal(world, connect):
    admin = await connect(world.users["teacher_admin"])
    visitor = await connect(world.users["visitor"])
    journal = journal_of(admin, world)
    feed = f"feed:{world.space_id}"
    await visitor.ok(Subscribe(feed))
    entry = await admin.ok(Post(journal, "Photos are up.", title="Week 4"))
    rude = await visitor.ok(Post(journal, "something rude", parent=entry.data["id"]))
    await admin.ok(Hide(journal, rude.data["id"], reason="not kind"))
    events = await visitor.wait_events(feed, 2)
    assert [(e.kind, e.data["area"]) for e in events[:2]] == [("journal.entry", "home"), ("journal.comment", "home")]


async def test_entries_carry_links_and_only_entries_do(world, connect, http, pool):
    await public_view_on(pool, world)  # off for a new project
    teacher = await connect(world.users["teacher_admin"])
    journal = journal_of(teacher, world)
    links = ("https://padlet.example/river", "https://photos.example/album/3?from=twinhub")
    entry = await teacher.ok(Post(journal, "Our work is here.", title="Links", links=links))
    r = await http.get(f"/api/public/{world.slug}")
    [public] = [m for m in r.json()["journal"] if m["id"] == entry.data["id"]]
    assert public["links"] == list(links)
    for frame in (
        Post(journal, "x", parent=entry.data["id"], links=("https://a.example",)),  # a comment has none
        Post(world.channel(Area.CHAT), "x", links=("https://a.example",)),  # nor a chat message
    ):
        assert (await teacher.error(frame)).code == "invalid_field"
    too_many = '["https://a.example"' + ',"https://b.example"' * 5 + "]"
    for bad in ('["javascript:alert(1)"]', '["https://a.example/x y"]', too_many, '"https://a.example"'):
        await teacher.send_raw(f'{{"type":"post","channel":"{journal}","text":"x","title":"t","links":{bad}}}')
        reply = await teacher.next_frame(Error)
        assert reply.code == "invalid_field", bad
