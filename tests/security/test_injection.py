"""SQL injection strings in every text field a client fills — posts, edits, mail, login, report
notes, moderators' reasons, room names, invitations, pupils' names, bots, query and path
parameters. Each must come back stored verbatim (read from PostgreSQL and through the API) or be
refused with its documented code, and every table must be intact afterwards: SQL only ever sees
them as parameters (storage/, DESIGN.md "Errors and bad input").

Covered elsewhere (docs/security.md): SQL-looking chat text and client_id
(tests/e2e/test_bad_input.py), hostile frames for the decoder (tests/protocol/).
"""

from __future__ import annotations

import pytest

from protocol import Edit, GetMail, Hide, Mute, Post, Report, ReportMail, SendMail, Subscribe
from realtime.policy import Area
from tests.conftest import PASSWORD, login

INJ = "x'); DROP TABLE users; -- ' OR '1'='1 \"; DELETE FROM messages; $1 %s {0} \\' UNION SELECT password_hash FROM users --"
SHORT = "a' OR '1'='1' --"  # where a field is short (usernames, keys)
PAYLOADS = [
    INJ,
    "'; TRUNCATE audit_log; --",
    "1; UPDATE users SET platform_role = 'moderator'; --",
    "$$; DROP SCHEMA public CASCADE; $$",
    "\\x27 OR 1=1 /* */ ; SELECT pg_sleep(10); --",
]


@pytest.fixture
async def tables_intact(pool):
    """The schema and the row counts of the accounts tables, before and after the test."""

    async def state():
        tables = await pool.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        )
        moderators = await pool.fetchval("SELECT count(*) FROM users WHERE platform_role = 'moderator'")
        return [t["table_name"] for t in tables], moderators

    before = await state()
    yield
    after = await state()
    assert after[0] == before[0], "a table disappeared or appeared"
    assert after[1] == before[1], "platform moderators changed"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_room_messages_edits_notes_and_reasons_are_stored_verbatim(world, connect, http, pool, tables_intact):
    """Threat: SQL injection through a post, an edit, a report note and a moderator's reason."""
    corner = world.channel(Area.PUPILS_CORNER)
    author, classmate, admin = [await connect(world.users[w]) for w in ("pupil_member", "pupil_admin", "teacher_admin")]
    for payload in PAYLOADS:
        posted = await author.ok(Post(corner, payload, client_id=payload[:64]))
        mid = posted.data["id"]
        await author.ok(Edit(corner, mid, payload + " (edited)"))
        report = (await classmate.ok(Report(corner, mid, payload))).data["report"]
        await admin.ok(Hide(corner, mid, payload))
        row = await pool.fetchrow("SELECT text, client_id, hidden_at FROM messages WHERE id = $1", mid)
        assert (row["text"], row["client_id"]) == (payload + " (edited)", payload[:64]) and row["hidden_at"] is not None
        report_row = await pool.fetchrow("SELECT note, reported_text FROM reports WHERE id = $1", report)
        assert (report_row["note"], report_row["reported_text"]) == (payload, payload + " (edited)")
    await admin.ok(Mute(world.space_id, world.users["pupil_member"].id, "pupils_corner", 5, INJ))
    reasons = [r["reason"] for r in await pool.fetch("SELECT reason FROM audit_log WHERE space_id = $1", world.space_id)]
    assert sorted(set(reasons) - {""}) == sorted(PAYLOADS)  # each hide's reason, and the mute's (INJ)
    # Through the API too, as the teacher reads it.
    r = await http.get(f"/api/rooms/{world.rooms[Area.PUPILS_CORNER]}/messages",
                       headers=bearer(await login(http, world.users["teacher_admin"].username)))
    assert r.status_code == 200 and r.json()["messages"]


@pytest.mark.parametrize("payload", PAYLOADS[:2])
async def test_mail_subject_text_and_report_note_are_stored_verbatim(payload, world, connect, pool, tables_intact):
    """Threat: SQL injection through a mail's subject, text and a report's note."""
    sender, recipient = await connect(world.users["pupil_member"]), await connect(world.users["pupil_admin"])
    sent = await sender.ok(SendMail(world.space_id, (world.users["pupil_admin"].id,), payload, subject=payload[:200]))
    got = await recipient.ok(GetMail(sent.data["id"]))
    assert (got.data["mail"]["subject"], got.data["mail"]["text"]) == (payload[:200], payload)
    await recipient.ok(ReportMail(sent.data["id"], payload))
    row = await pool.fetchrow("SELECT subject, text FROM mails WHERE id = $1", sent.data["id"])
    assert (row["subject"], row["text"]) == (payload[:200], payload)
    assert await pool.fetchval("SELECT note FROM reports WHERE mail_id = $1", sent.data["id"]) == payload


async def test_login_with_sql_for_a_username_or_password_is_refused_like_any_wrong_login(world, http, tables_intact):
    """Threat: SQL injection at login, to sign in without a password (`' OR '1'='1`)."""
    # Few tries: failed logins count per address (50 lock 127.0.0.1 for the rest of the run).
    for username, password in ((SHORT, SHORT), ("admin'--", PASSWORD), ("x' UNION SELECT 1 --", "' OR ''='"),
                               (world.users["pupil_member"].username, "' OR '1'='1")):
        r = await http.post("/api/login", json={"username": username, "password": password})
        assert (r.status_code, r.json()["error"]) == (401, {"code": "unauthenticated", "message": "wrong username or password"})


async def test_http_text_fields_are_stored_verbatim(world, http, pool, tables_intact):
    """Threat: SQL injection through room names, invitation labels and notes, pupils' names and
    school, bot names, journal entries, idempotency keys and a resolution note."""
    admin = bearer(await login(http, world.users["teacher_admin"].username))
    s = world.space_id
    r = await http.post(f"/api/spaces/{s}/rooms", headers=admin, json={"area": "activities", "name": INJ[:100]})
    assert r.status_code == 201 and r.json()["name"] == INJ[:100]
    assert await pool.fetchval("SELECT name FROM rooms WHERE id = $1", r.json()["id"]) == INJ[:100]

    r = await http.post(f"/api/spaces/{s}/invitations", headers=admin, json={"role": "visitor", "label": INJ, "note": INJ})
    assert r.status_code == 201, r.text
    inv = r.json()["invitation"]
    assert (inv["label"], inv["note"]) == (INJ, INJ)
    row = await pool.fetchrow("SELECT label, note FROM invitations WHERE id = $1", inv["id"])
    assert (row["label"], row["note"]) == (INJ, INJ)
    r = await http.post(f"/api/spaces/{s}/invitations", headers=admin, json={"role": "visitor", "username": SHORT})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")  # no such account, however named

    r = await http.post(f"/api/spaces/{s}/pupils", headers=admin, json={"pupils": [INJ[:100]], "school": INJ})
    assert r.status_code == 201, r.text
    [pupil] = r.json()["pupils"]
    row = await pool.fetchrow("SELECT username, display_name, school FROM users WHERE id = $1", pupil["id"])
    assert (row["display_name"], row["school"]) == (INJ[:100].strip(), INJ)
    assert (await http.post("/api/login", json={"username": pupil["username"], "password": pupil["password"]})).status_code == 200
    http.cookies.clear()

    r = await http.post(f"/api/spaces/{s}/bots", headers=admin, json={"name": INJ[:100]})
    assert r.status_code == 201
    bot = r.json()
    assert await pool.fetchval("SELECT display_name FROM users u JOIN bots b ON b.user_id = u.id WHERE b.id = $1",
                               bot["id"]) == INJ[:100]
    r = await http.post(f"/api/spaces/{s}/journal", json={"title": INJ[:200], "text": INJ},
                        headers={**bearer(bot["token"]), "Idempotency-Key": SHORT})
    assert r.status_code == 201, r.text
    row = await pool.fetchrow("SELECT title, text FROM messages WHERE id = $1", r.json()["id"])
    assert (row["title"], row["text"]) == (INJ[:200], INJ)


async def test_code_redemption_with_sql_in_every_field(world, http, pool, tables_intact):
    """Threat: SQL injection through an invitation code and a new account's fields, with no
    login at all (the one write route open to strangers)."""
    admin = bearer(await login(http, world.users["teacher_admin"].username))
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "visitor", "label": "a parent"})).json()["code"]
    users_before = await pool.fetchval("SELECT count(*) FROM users")
    r = await http.post("/api/invitations/redeem", json={"code": INJ, "username": "eve.x", "name": "Eve", "password": "long enough pw"})
    assert r.status_code in (400, 404) and r.json()["error"]["code"] in ("invalid_field", "not_found")
    r = await http.post("/api/invitations/redeem", json={"code": code, "username": SHORT, "name": INJ, "password": INJ})
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field")  # usernames are [a-z0-9._-]
    assert await pool.fetchval("SELECT count(*) FROM users") == users_before
    r = await http.post("/api/invitations/redeem",
                        json={"code": code, "username": "c.durand-x", "name": INJ[:100], "password": INJ, "school": INJ})
    assert r.status_code == 201, r.text
    row = await pool.fetchrow("SELECT display_name, school FROM users WHERE id = $1", r.json()["user"]["id"])
    assert (row["display_name"], row["school"]) == (INJ[:100], INJ)
    ok = await http.post("/api/login", json={"username": "c.durand-x", "password": INJ})
    assert ok.status_code == 200
    http.cookies.clear()


SQL_IN_URLS = [
    ("/api/rooms/1%20OR%201=1/messages", "not_found"),
    ("/api/rooms/1;DROP%20TABLE%20rooms/messages", "not_found"),
    ("/api/rooms/{room}/messages?before=1%20OR%201=1", "invalid_field"),
    ("/api/rooms/{room}/messages?limit=1;DELETE", "invalid_field"),
    ("/api/spaces/{space}/reports?status=open'%20OR%20'1'='1", "invalid_field"),
    ("/api/spaces/{space}/mail?folder=inbox'%20OR%20'1'='1", "invalid_field"),
    ("/api/spaces/{space}/audit?before=0x1", "invalid_field"),
    ("/api/mail/1'%20OR%20'1'='1", "not_found"),
    ("/api/public/x'%20OR%20'1'='1", "not_found"),
]


async def test_sql_in_path_and_query_parameters_is_refused(world, http, tables_intact):
    """Threat: SQL injection through ids and filters in URLs."""
    token = await login(http, world.users["teacher_admin"].username)
    for path, code in SQL_IN_URLS:
        r = await http.get(path.format(room=world.rooms[Area.CHAT], space=world.space_id), headers=bearer(token))
        assert r.json()["error"]["code"] == code, (path, r.text)


async def test_sql_in_channel_names_is_refused(world, connect, tables_intact):
    """Threat: SQL injection through a channel name in subscribe and post."""
    client = await connect(world.users["teacher_admin"])
    for channel in ("room:1 OR 1=1", "room:1;DROP TABLE rooms", "mail:' OR '1'='1", "feed:-1", "room:0x1"):
        for frame in (Subscribe(channel), Post(channel, "x")):
            err = await client.error(frame)
            assert err.code in ("not_found", "invalid_field"), (channel, err)
