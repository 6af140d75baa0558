"""Guessing ids across projects (IDOR): a teacher admin of project A — the most a member can be —
tries the real ids of project B's rooms, messages, mail, members, reports, invitations and bots,
over the WebSocket and over HTTP, through B's paths and through A's own. Each answer must be
exactly the answer for an id that does not exist (same code, same sentence once the ids are
blanked out), and nothing of B may change (read back from PostgreSQL).

Covered elsewhere (docs/security.md): a teacher admin or a platform moderator of the *same*
project guessing a member's mail ids (tests/e2e/test_mail_privacy.py); foreign rooms answering
`not_found` (tests/e2e/test_bad_input.py, tests/e2e/test_role_matrix.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from protocol import (
    Delete,
    DeleteMail,
    Edit,
    Error,
    GetMail,
    GetThread,
    Hide,
    ListModeration,
    ListRecipients,
    ListReports,
    ListThreads,
    MarkMail,
    MoveMail,
    Mute,
    Post,
    RemoveMember,
    Report,
    ReportMail,
    ResolveReport,
    SendMail,
    SetRole,
    Subscribe,
    Unhide,
)
from realtime.policy import Area
from tests.conftest import login

NOWHERE = 987_654_321  # an id nothing has


@dataclass
class Victim:
    """Project B, with one of everything to guess."""

    world: object
    message: int  # a pupil's message in B's pupils' corner
    mail: int
    thread: int
    report: int
    invitation: int  # to B's outsider (a pending invitation by username)
    bot: int


@pytest.fixture
async def victim(make_world, connect, http) -> Victim:
    b = await make_world()
    corner = b.channel(Area.PUPILS_CORNER)
    author, classmate = await connect(b.users["pupil_member"]), await connect(b.users["pupil_admin"])
    message = (await author.ok(Post(corner, "B's words"))).data["id"]
    report = (await classmate.ok(Report(corner, message, "mean"))).data["report"]
    mail = (await author.ok(SendMail(b.space_id, (b.users["pupil_admin"].id,), "B's secret", subject="B"))).data
    admin = {"Authorization": f"Bearer {await login(http, b.users['teacher_admin'].username)}"}
    r = await http.post(f"/api/spaces/{b.space_id}/invitations", headers=admin,
                        json={"username": b.users["outsider"].username, "role": "teacher_member"})
    invitation = r.json()["invitation"]["id"]
    bot = (await http.post(f"/api/spaces/{b.space_id}/bots", headers=admin, json={"name": "B's bot"})).json()["id"]
    return Victim(b, message, mail["id"], mail["thread_id"], report, invitation, bot)


async def state_of(pool, v: Victim):
    """Everything of B an attack could change."""
    b = v.world
    return (
        await pool.fetch("SELECT id, text, edited_at, deleted_at, hidden_at FROM messages WHERE space_id = $1 ORDER BY id",
                         b.space_id),
        await pool.fetch("SELECT mailbox_id, mail_id, folder, read, deleted_at FROM mailbox_items WHERE mail_id = $1"
                         " ORDER BY mailbox_id", v.mail),
        await pool.fetchval("SELECT count(*) FROM reports WHERE mail_id = $1", v.mail),
        await pool.fetch("SELECT id, status FROM reports WHERE space_id = $1 ORDER BY id", b.space_id),
        await pool.fetch("SELECT user_id, role FROM members WHERE space_id = $1 ORDER BY user_id", b.space_id),
        await pool.fetch("SELECT id, password_hash FROM users WHERE id = ANY($1) ORDER BY id",
                         [u.id for u in b.users.values()]),
        await pool.fetch("SELECT id, status FROM invitations WHERE space_id = $1 ORDER BY id", b.space_id),
        await pool.fetch("SELECT id, revoked_at FROM bots WHERE space_id = $1 ORDER BY id", b.space_id),
        await pool.fetchval("SELECT count(*) FROM mutes WHERE space_id = $1", b.space_id),
        await pool.fetchval("SELECT count(*) FROM rooms WHERE space_id = $1", b.space_id),
    )


def blank(text: str, *ids: int) -> str:
    wanted = {str(i) for i in ids}
    return re.sub(r"\d+", lambda m: "N" if m[0] in wanted else m[0], text)


def same_error(real: Error, fake: Error, *ids: int) -> None:
    assert isinstance(real, Error) and isinstance(fake, Error), (real, fake)
    # `forbidden` only where the role may not do that at all, whatever the id (A's own room)
    assert real.code in ("not_found", "forbidden"), real
    assert (real.code, blank(real.message, *ids), blank(repr(real.data), *ids)) == (
        fake.code, blank(fake.message, *ids), blank(repr(fake.data), *ids)), (real, fake)


@pytest.mark.parametrize("attacker", ["teacher_admin", "pupil_member"])
async def test_guessing_b_ids_over_the_websocket(attacker, world, victim, connect, pool):
    """Threat: IDOR over the WebSocket — a member of project A names B's messages, mail,
    members and reports by their (sequential, guessable) ids, through B's channels and A's own."""
    v, b = victim, victim.world
    before = await state_of(pool, v)
    client = await connect(world.users[attacker])
    own, theirs = world.channel(Area.PUPILS_CORNER), b.channel(Area.PUPILS_CORNER)
    b_room, b_pupil = b.rooms[Area.PUPILS_CORNER], b.users["pupil_member"].id
    cases = [
        # rooms
        (Subscribe(theirs), Subscribe(f"room:{NOWHERE}"), (b_room,)),
        (Post(theirs, "hi"), Post(f"room:{NOWHERE}", "hi"), (b_room,)),
        # B's message, through B's room and through A's own room
        *((make(theirs, v.message), make(f"room:{NOWHERE}", NOWHERE), (b_room, v.message)) for make in _MESSAGE_FRAMES),
        *((make(own, v.message), make(own, NOWHERE), (v.message,)) for make in _MESSAGE_FRAMES),
        # mail
        (GetMail(v.mail), GetMail(NOWHERE), (v.mail,)),
        (MarkMail(v.mail, True), MarkMail(NOWHERE, True), (v.mail,)),
        (MoveMail(v.mail, "archive"), MoveMail(NOWHERE, "archive"), (v.mail,)),
        (DeleteMail(v.mail), DeleteMail(NOWHERE), (v.mail,)),
        (ReportMail(v.mail, "x"), ReportMail(NOWHERE, "x"), (v.mail,)),
        (GetThread(b.space_id, v.thread), GetThread(NOWHERE, NOWHERE), (b.space_id, v.thread)),
        (GetThread(world.space_id, v.thread), GetThread(world.space_id, NOWHERE), (v.thread,)),
        (ListThreads(b.space_id), ListThreads(NOWHERE), (b.space_id,)),
        (ListRecipients(b.space_id), ListRecipients(NOWHERE), (b.space_id,)),
        (SendMail(b.space_id, (b_pupil,), "hi", subject="s"), SendMail(NOWHERE, (b_pupil,), "hi", subject="s"),
         (b.space_id,)),
        (Subscribe(f"mail:{_mailbox_of(before, b)}"), Subscribe(f"mail:{NOWHERE}"), (_mailbox_of(before, b),)),
        # reports
        (ResolveReport(v.report, "dismissed"), ResolveReport(NOWHERE, "dismissed"), (v.report,)),
        (ListModeration(space=b.space_id), ListModeration(space=NOWHERE), (b.space_id,)),
        (ListReports(b.space_id), ListReports(NOWHERE), (b.space_id,)),
        (Subscribe(f"moderation:{b.space_id}"), Subscribe(f"moderation:{NOWHERE}"), (b.space_id,)),
        (Subscribe(f"feed:{b.space_id}"), Subscribe(f"feed:{NOWHERE}"), (b.space_id,)),
        # members
        (SetRole(b.space_id, b_pupil, "pupil_admin"), SetRole(NOWHERE, b_pupil, "pupil_admin"), (b.space_id,)),
        (RemoveMember(b.space_id, b_pupil), RemoveMember(NOWHERE, b_pupil), (b.space_id,)),
        (Mute(b.space_id, b_pupil, "all", 60), Mute(NOWHERE, b_pupil, "all", 60), (b.space_id,)),
    ]
    if attacker == "teacher_admin":  # A's own project, B's pupil: who may do it in A, on a stranger
        cases += [
            (SetRole(world.space_id, b_pupil, "pupil_admin"), SetRole(world.space_id, NOWHERE, "pupil_admin"), (b_pupil,)),
            (RemoveMember(world.space_id, b_pupil), RemoveMember(world.space_id, NOWHERE), (b_pupil,)),
            (Mute(world.space_id, b_pupil, "all", 60), Mute(world.space_id, NOWHERE, "all", 60), (b_pupil,)),
            (SendMail(world.space_id, (b_pupil,), "hi", subject="s"), SendMail(world.space_id, (NOWHERE,), "hi", subject="s"),
             (b_pupil,)),
        ]
    for n, (real, fake, ids) in enumerate(cases):
        if n and n % 20 == 0:  # a patient prober stays under the abuse limit (50 refusals in 10 s: 4008)
            client = await connect(world.users[attacker])
        same_error(await client.request(real), await client.request(fake), NOWHERE, world.space_id, *ids)
    assert await state_of(pool, v) == before


_MESSAGE_FRAMES = [
    lambda ch, i: Edit(ch, i, "rewritten"),
    lambda ch, i: Delete(ch, i),
    lambda ch, i: Delete(ch, i, "erased by a moderator"),
    lambda ch, i: Hide(ch, i, "hidden"),
    lambda ch, i: Unhide(ch, i),
    lambda ch, i: Report(ch, i, "reported"),
]


def _mailbox_of(state, b) -> int:
    return min(r["mailbox_id"] for r in state[1])


HTTP_CASES = [
    # (method, path with {real} placeholders, body)
    ("GET", "/api/rooms/{room}/messages", None),
    ("POST", "/api/spaces/{space}/rooms", {"area": "activities", "name": "mine now"}),
    ("POST", "/api/rooms/{room}/messages/{message}/hide", {"reason": "x"}),
    ("POST", "/api/rooms/{room}/messages/{message}/unhide", {}),
    ("POST", "/api/rooms/{room}/messages/{message}/report", {"note": "x"}),
    ("DELETE", "/api/rooms/{room}/messages/{message}?reason=x", None),
    ("POST", "/api/rooms/{own_room}/messages/{message}/hide", {"reason": "x"}),
    ("POST", "/api/rooms/{own_room}/messages/{message}/report", {"note": "x"}),
    ("DELETE", "/api/rooms/{own_room}/messages/{message}?reason=x", None),
    ("GET", "/api/mail/{mail}", None),
    ("POST", "/api/mail/{mail}/read", {"read": True}),
    ("POST", "/api/mail/{mail}/move", {"folder": "archive"}),
    ("POST", "/api/mail/{mail}/report", {"note": "x"}),
    ("DELETE", "/api/mail/{mail}", None),
    ("GET", "/api/spaces/{space}/mail/threads/{thread}", None),
    ("GET", "/api/spaces/{own_space}/mail/threads/{thread}", None),
    ("GET", "/api/spaces/{space}/mail/reports", None),
    ("POST", "/api/reports/{report}/resolve", {"outcome": "dismissed"}),
    ("GET", "/api/spaces/{space}/reports", None),
    ("GET", "/api/spaces/{space}/members", None),
    ("PATCH", "/api/spaces/{space}/members/{pupil}", {"role": "pupil_admin"}),
    ("DELETE", "/api/spaces/{space}/members/{pupil}", None),
    ("POST", "/api/spaces/{space}/members/{pupil}/password", {}),
    ("PATCH", "/api/spaces/{own_space}/members/{pupil}", {"role": "pupil_admin"}),
    ("DELETE", "/api/spaces/{own_space}/members/{pupil}", None),
    ("POST", "/api/spaces/{own_space}/members/{pupil}/password", {}),
    ("POST", "/api/spaces/{space}/mutes", {"user_id": "{pupil}", "scope": "all", "minutes": 60}),
    ("POST", "/api/spaces/{own_space}/mutes", {"user_id": "{pupil}", "scope": "all", "minutes": 60}),
    ("DELETE", "/api/spaces/{space}/mutes/{pupil}/all", None),
    ("GET", "/api/spaces/{space}/invitations", None),
    ("DELETE", "/api/spaces/{space}/invitations/{invitation}", None),
    ("DELETE", "/api/spaces/{own_space}/invitations/{invitation}", None),
    ("POST", "/api/invitations/{invitation}/accept", None),
    ("POST", "/api/invitations/{invitation}/decline", None),
    ("GET", "/api/spaces/{space}/bots", None),
    ("DELETE", "/api/spaces/{space}/bots/{bot}", None),
    ("DELETE", "/api/spaces/{own_space}/bots/{bot}", None),
    ("GET", "/api/spaces/{space}/audit", None),
    ("GET", "/api/spaces/{space}/activity", None),
    ("POST", "/api/spaces/{space}/close", None),
    ("POST", "/api/spaces/{space}/public", {"public": False}),
    ("POST", "/api/spaces/{space}/pupils", {"pupils": ["Eve"]}),
    ("POST", "/api/spaces/{space}/bots", {"name": "evil"}),
]


@pytest.mark.parametrize("attacker", ["teacher_admin", "pupil_member"])
async def test_guessing_b_ids_over_http(attacker, world, victim, http, pool):
    """Threat: IDOR over HTTP — every route that takes an id, given B's real ids (in B's paths
    and in A's own), answers exactly like one given ids that do not exist."""
    v, b = victim, victim.world
    before = await state_of(pool, v)
    bearer = {"Authorization": f"Bearer {await login(http, world.users[attacker].username)}"}
    real = {"room": b.rooms[Area.PUPILS_CORNER], "message": v.message, "mail": v.mail, "thread": v.thread,
            "report": v.report, "pupil": b.users["pupil_member"].id, "invitation": v.invitation, "bot": v.bot,
            "space": b.space_id, "own_space": world.space_id, "own_room": world.rooms[Area.PUPILS_CORNER]}
    fake = {k: (val if k.startswith("own_") else NOWHERE) for k, val in real.items()}
    ids = [val for k, val in real.items() if not k.startswith("own_")]
    for method, path, body in HTTP_CASES:
        answers = []
        for values in (real, fake):
            filled = _fill(body, values)
            answers.append(await http.request(method, path.format(**values), headers=bearer, json=filled))
        r, f = answers
        # `forbidden` only in A's own paths, where the role may not do that at all whatever the id
        allowed = {(404, "not_found"), (403, "forbidden")} if "own_" in path else {(404, "not_found")}
        assert (r.status_code, r.json()["error"]["code"]) in allowed, (path, r.text)
        assert (r.status_code, blank(r.text, NOWHERE, *ids)) == (f.status_code, blank(f.text, NOWHERE, *ids)), path
    assert await state_of(pool, v) == before


def _fill(body, values):
    if body is None:
        return None
    return {k: (int(val.format(**values)) if isinstance(val, str) and val.startswith("{") else val)
            for k, val in body.items()}
