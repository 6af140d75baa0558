"""Nobody reads another member's mailbox — not a teacher admin of the same project, not a
platform moderator. Each test is one way of trying, through real sockets and real HTTP; every
attempt must answer exactly as if the mail (or mailbox) did not exist, and change nothing."""

from __future__ import annotations

import re

import pytest

from protocol import (
    DeleteMail,
    GetMail,
    GetThread,
    ListThreads,
    MarkMail,
    MoveMail,
    ReportMail,
    SendMail,
    Subscribe,
)
from tests.conftest import login

NOWHERE = 987_654_321  # an id nothing has


@pytest.fixture
async def secret(world, connect):
    """A conversation between two pupils and a partner teacher that the prober is not part of."""
    pupil = await connect(world.users["pupil_member"])
    to = (world.users["pupil_admin"].id, world.users["teacher_member"].id)
    ok = await pupil.ok(SendMail(world.space_id, to, "my secret plan", subject="secret"))
    return ok.data


PROBERS = ["teacher_admin", "moderator"]


def same_answer(a, b, *ids: int) -> None:
    """Two refusals are the same once the ids asked for are blanked out."""

    def blank(text: str) -> str:
        for i in ids:
            text = re.sub(rf"\b{i}\b", "N", text)
        return text

    assert (a.code, blank(a.message), blank(repr(a.data))) == (b.code, blank(b.message), blank(repr(b.data)))


def blanked(text: str, *ids: int) -> str:
    wanted = {str(i) for i in ids}
    return re.sub(r"\d+", lambda m: "N" if m[0] in wanted else m[0], text)


async def state_of(pool, world, who: str, mail_id: int):
    return await pool.fetchrow(
        "SELECT i.folder, i.read, i.deleted_at, b.last_seq FROM mailbox_items i JOIN mailboxes b ON b.id = i.mailbox_id"
        " WHERE b.owner_id = $1 AND i.mail_id = $2",
        world.users[who].id, mail_id,
    )


@pytest.mark.parametrize("prober", PROBERS)
async def test_subscribing_to_another_members_mailbox(prober, world, connect, secret):
    victim = await connect(world.users["pupil_admin"])
    channel = next(s["mailbox"]["channel"] for s in victim.welcome.spaces if s["id"] == world.space_id)
    spy = await connect(world.users[prober])
    mailbox_id = int(channel.split(":")[1])
    for since in (None, 0):
        refused = await spy.error(Subscribe(channel, since=since))
        missing = await spy.error(Subscribe(f"mail:{NOWHERE}", since=since))
        assert refused.code == "not_found"
        same_answer(refused, missing, mailbox_id, NOWHERE)
    assert not spy.events  # nothing was replayed


@pytest.mark.parametrize("prober", PROBERS)
async def test_guessing_mail_ids_over_the_websocket(prober, world, connect, pool, secret):
    spy = await connect(world.users[prober])
    mail_id = secret["id"]
    before = await state_of(pool, world, "pupil_admin", mail_id)
    for make in (
        GetMail, lambda i: MarkMail(i, True), lambda i: MoveMail(i, "trash"), DeleteMail,
        lambda i: ReportMail(i, "x"),
    ):
        refused, missing = await spy.error(make(mail_id)), await spy.error(make(NOWHERE))
        assert refused.code == "not_found"
        same_answer(refused, missing, mail_id, NOWHERE)
    assert await state_of(pool, world, "pupil_admin", mail_id) == before  # not read, not moved, not deleted


async def test_replying_to_a_mail_one_does_not_hold(world, connect, pool, secret):
    spy = await connect(world.users["teacher_admin"])
    to = (world.users["pupil_admin"].id,)
    refused = await spy.error(SendMail(world.space_id, to, "hi", reply_to=secret["id"]))
    missing = await spy.error(SendMail(world.space_id, to, "hi", reply_to=NOWHERE))
    assert refused.code == "not_found"
    same_answer(refused, missing, secret["id"], NOWHERE)
    # Nothing was sent, so the thread did not gain a mail.
    assert await pool.fetchval("SELECT count(*) FROM mails WHERE thread_id = $1", secret["thread_id"]) == 1


@pytest.mark.parametrize("prober", PROBERS)
async def test_listing_threads_never_shows_someone_elses(prober, world, connect, secret):
    spy = await connect(world.users[prober])
    refused = await spy.error(GetThread(world.space_id, secret["thread_id"]))
    missing = await spy.error(GetThread(world.space_id, NOWHERE))
    assert refused.code == "not_found"
    same_answer(refused, missing, secret["thread_id"], NOWHERE)
    if prober == "teacher_admin":  # a member: their own, empty, mailbox
        for folder in ("inbox", "sent", "archive", "trash"):
            page = await spy.ok(ListThreads(world.space_id, folder=folder))
            assert page.data["threads"] == []
    else:  # a moderator has no mailbox in the project at all
        assert (await spy.error(ListThreads(world.space_id))).code == "not_found"


@pytest.mark.parametrize("prober", PROBERS)
async def test_http_with_another_members_id(prober, world, http, pool, secret):
    token = await login(http, world.users[prober].username)
    auth = {"authorization": f"Bearer {token}"}
    victim = world.users["pupil_admin"].id
    mail_id = secret["id"]
    before = await state_of(pool, world, "pupil_admin", mail_id)
    # There is no parameter that names an owner: adding one changes nothing.
    for query in (f"?owner={victim}", f"?user_id={victim}", f"?owner_id={victim}&folder=inbox"):
        r = await http.get(f"/api/spaces/{world.space_id}/mail{query}", headers=auth)
        assert "my secret plan" not in r.text and "secret" not in r.text
    # Each mail route with the mail's id answers like an id that does not exist.
    for method, path, body in (
        ("GET", "/api/mail/{}", None), ("GET", f"/api/mail/{{}}?owner={victim}", None),
        ("POST", "/api/mail/{}/read", {"read": True}), ("POST", "/api/mail/{}/move", {"folder": "archive"}),
        ("DELETE", "/api/mail/{}", None), ("POST", "/api/mail/{}/report", {"note": "x"}),
        ("GET", f"/api/spaces/{world.space_id}/mail/threads/{{}}", None),
    ):
        ident = secret["thread_id"] if "threads" in path else mail_id
        real = await http.request(method, path.format(ident), headers=auth, json=body)
        fake = await http.request(method, path.format(NOWHERE), headers=auth, json=body)
        assert real.status_code == fake.status_code == 404, (path, real.text)
        assert real.json()["error"]["code"] == "not_found"
        assert blanked(real.text, ident, NOWHERE, world.space_id) == blanked(fake.text, ident, NOWHERE, world.space_id)
    assert await state_of(pool, world, "pupil_admin", mail_id) == before


async def test_a_visitor_never_learns_which_pupils_got_a_mail(world, connect, http):
    """Rule 10 in TwinMail: a teacher writes to a parent (visitor) and to pupils at once. The
    parent's copy — live, replayed, listed, read over WebSocket and HTTP — names the teachers and
    says that pupils of a school got it, never which; the teacher's copy names everyone."""
    pupil, visitor = world.users["pupil_member"], world.users["visitor"]
    parent = await connect(visitor)
    box = next(s["mailbox"] for s in parent.welcome.spaces if s["id"] == world.space_id)
    await parent.ok(Subscribe(box["channel"], since=box["seq"]))
    teacher = await connect(world.users["teacher_admin"])
    sent = (await teacher.ok(SendMail(world.space_id, (visitor.id, pupil.id), "Trip on Friday", subject="Trip"))).data

    def check(mail: dict) -> None:
        assert pupil.display_name not in repr(mail) and pupil.id not in [c["id"] for c in mail["to"]]
        shown = {c["role"]: c for c in mail["to"]}
        assert shown["pupil"] == {"id": None, "name": None, "school": pupil.school, "role": "pupil"}
        assert shown["visitor"]["id"] == visitor.id
        assert mail["from"]["name"] == world.users["teacher_admin"].display_name

    live = (await parent.wait_events(box["channel"], 1))[0].data["mail"]
    check(live)
    check((await parent.ok(GetMail(sent["id"]))).data["mail"])
    check((await parent.ok(ListThreads(world.space_id))).data["threads"][0]["last"])
    check((await parent.ok(GetThread(world.space_id, sent["thread_id"]))).data["mails"][0])
    auth = {"authorization": f"Bearer {await login(http, visitor.username)}"}
    for path in (f"/api/mail/{sent['id']}", f"/api/spaces/{world.space_id}/mail/threads/{sent['thread_id']}"):
        r = await http.get(path, headers=auth)
        assert r.status_code == 200 and pupil.display_name not in r.text and pupil.username not in r.text
    again = await connect(visitor)  # a replay from the start
    await again.ok(Subscribe(box["channel"], since=0))
    check((await again.wait_events(box["channel"], 1))[-1].data["mail"])
    # The sender sees whom she wrote to, each with their badge.
    own = (await teacher.ok(GetMail(sent["id"]))).data["mail"]
    assert [(c["id"], c["role"]) for c in own["to"]] == [(visitor.id, "visitor"), (pupil.id, "pupil")]
