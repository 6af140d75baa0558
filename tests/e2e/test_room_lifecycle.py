"""Rooms archived, unarchived and deleted (issue 21, rule 12), through real sockets and HTTP.

An archived room is read-only for everyone and still read; a deleted one is gone for the members
— every request about it answers like a room that never existed — while its messages stay for the
reports about them. Only a project's teacher admins change rooms; every change is audited once,
holds at once on every process (two `twinhub serve` processes on one Redis), and a `welcome` —
however large — never costs a slow reader its socket."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import struct
import time

import asyncpg
import httpx
import pytest

from protocol import (
    Delete,
    Edit,
    Encoding,
    Error,
    Hide,
    Post,
    Report,
    ResolveReport,
    RoomNotice,
    Subscribe,
    Typing,
    Welcome,
    decode_server,
    encode_server_item,
)
from realtime.config import Settings
from realtime.policy import Area, Role
from realtime.run.server import RunningServer
from realtime.services.projects import MAX_ROOMS
from storage import accounts, spaces
from storage.messages import NewPost
from tests.client import Client
from tests.conftest import login
from tests.e2e.test_live_rights_and_slow_consumers import stalled_client
from tests.processes import two_processes

LIVE = 5.0  # seconds a change may take to reach a socket (another process: the bus's latency)
NEVER = 10**12  # a room id nobody will ever have


async def _headers(http: httpx.AsyncClient, user: accounts.User) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


async def _change(http: httpx.AsyncClient, headers: dict[str, str], space_id: int, room_id: int,
                  change: str) -> httpx.Response:
    if change == "delete":
        return await http.delete(f"/api/spaces/{space_id}/rooms/{room_id}", headers=headers)
    return await http.post(f"/api/spaces/{space_id}/rooms/{room_id}/{change}", headers=headers)


def _error(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()["error"]
    return r.status_code, body["code"], body["message"]


def _rooms(welcome: Welcome | dict, space_id: int) -> dict[int, dict]:
    found = welcome.spaces if isinstance(welcome, Welcome) else welcome["spaces"]
    [space] = [s for s in found if s["id"] == space_id]
    return {r["id"]: r for r in space["rooms"]}


async def _audit(http: httpx.AsyncClient, headers: dict[str, str], space_id: int, room_id: int) -> list[dict]:
    r = await http.get(f"/api/spaces/{space_id}/audit", headers=headers, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["entries"] if e["action"].startswith("room.") and e["target_id"] == room_id]


# -- archived: read-only, still read -----------------------------------------------------------


async def test_an_archived_room_is_read_only_for_everyone_and_still_read(world, http, connect):
    sid, room, channel = world.space_id, world.rooms[Area.ACTIVITIES], world.channel(Area.ACTIVITIES)
    admin_http = await _headers(http, world.users["teacher_admin"])
    pupil = await connect(world.users["pupil_member"])
    admin = await connect(world.users["teacher_admin"])
    mine = (await pupil.ok(Post(channel, "our river samples"))).data["id"]
    await pupil.ok(Subscribe(channel, since=0))
    await pupil.wait_events(channel, 1)
    assert _rooms(pupil.welcome, sid)[room]["archived"] is False

    r = await _change(http, admin_http, sid, room, "archive")
    assert (r.status_code, r.json()) == (200, {"id": room, "channel": channel, "changed": True, "archived": True})
    notice = await pupil.next_frame(RoomNotice, timeout=LIVE)
    assert notice.channel == channel
    assert notice.room == {"id": room, "channel": channel, "name": "activities", "area": "activities",
                           "kind": "room", "archived": True}
    entry = _rooms(await pupil.next_frame(Welcome, timeout=LIVE), sid)[room]
    assert entry["archived"] is True and entry["rights"] == ["post", "read"]  # the role's cell, as ever

    # Read-only for everyone, the teacher admin included: one code, the room's channel with it.
    for client in (pupil, admin):
        refused = await client.error(Post(channel, "after the archive"))
        assert (refused.code, refused.data["channel"]) == ("room_archived", channel)
    assert (await pupil.error(Edit(channel, mine, "edited"))).code == "room_archived"
    assert (await pupil.error(Delete(channel, mine))).code == "room_archived"
    assert (await pupil.error(Typing(channel))).code == "room_archived"
    # ... and still read: replay, history, reports and moderation work.
    reader = await connect(world.users["pupil_admin"])
    await reader.ok(Subscribe(channel, since=0))
    [event] = await reader.wait_events(channel, 1)
    assert event.data["message"]["text"] == "our river samples"
    history = await http.get(f"/api/rooms/{room}/messages", headers=await _headers(http, world.users["visitor"]))
    assert history.status_code == 200 and [m["id"] for m in history.json()["messages"]] == [mine]
    await reader.ok(Report(channel, mine, "testing"))
    await admin.ok(Hide(channel, mine, "hidden in an archived room"))

    r = await _change(http, admin_http, sid, room, "unarchive")
    assert (r.status_code, r.json()) == (200, {"id": room, "channel": channel, "changed": True, "archived": False})
    notice = await pupil.next_frame(RoomNotice, timeout=LIVE)
    assert notice.room["archived"] is False
    await pupil.ok(Post(channel, "back to work"))
    assert [(e["action"], e["details"]) for e in await _audit(http, admin_http, sid, room)] == [
        ("room.unarchive", {"name": "activities", "area": "activities"}),
        ("room.archive", {"name": "activities", "area": "activities"}),
    ]


async def test_posts_racing_an_archive_are_refused_never_written_after_it(world, http, connect, server, pool):
    """The service refuses a post once its process knows of the archive; one checked just before
    is refused by the statement that would take its seq (the row lock the archive took)."""
    sid, room, channel = world.space_id, world.rooms[Area.CHAT], world.channel(Area.CHAT)
    poster = await connect(world.users["pupil_member"])
    replies = [poster.send(Post(channel, f"race {i}", client_id=f"race-{secrets.token_hex(4)}", ref=f"r{i}"))
               for i in range(40)]
    archived = await _change(http, await _headers(http, world.users["teacher_admin"]), sid, room, "archive")
    assert archived.status_code == 200
    answers = await asyncio.wait_for(asyncio.gather(*replies), LIVE)
    codes = [a.code if isinstance(a, Error) else "ok" for a in answers]
    assert set(codes) <= {"ok", "room_archived"}, codes
    stored = await pool.fetchval("SELECT count(*) FROM messages WHERE room_id = $1 AND text LIKE 'race %'", room)
    assert stored == codes.count("ok")

    # Past the service's check (the writer itself): the statement refuses, writes nothing.
    pupil = world.users["pupil_member"]
    writer = server.app.state.writer
    late = NewPost(sid, room, pupil.id, pupil.display_name, pupil.school, "too late", None, "chat")
    assert (await writer.submit(late)).refused == "archived"
    deleted = await _change(http, await _headers(http, world.users["teacher_admin"]), sid,
                            world.rooms[Area.ACTIVITIES], "delete")
    assert deleted.status_code == 200
    gone = NewPost(sid, world.rooms[Area.ACTIVITIES], pupil.id, pupil.display_name, pupil.school, "gone", None,
                   "activities")
    assert (await writer.submit(gone)).refused == "deleted"
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE text IN ('too late', 'gone')") == 0


# -- deleted: gone for the members, kept for the reviewers -----------------------------------------


async def test_a_deleted_room_answers_exactly_like_one_that_never_existed(world, http, connect, pool):
    sid, room, channel = world.space_id, world.rooms[Area.ACTIVITIES], world.channel(Area.ACTIVITIES)
    admin_http = await _headers(http, world.users["teacher_admin"])
    pupil_http = await _headers(http, world.users["pupil_member"])
    pupil = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    admin = await connect(world.users["teacher_admin"])
    said = (await pupil.ok(Post(channel, "you cannot join our group"))).data["id"]
    report = (await classmate.ok(Report(channel, said, "unkind"))).data["report"]
    await pupil.ok(Subscribe(channel))

    r = await _change(http, admin_http, sid, room, "delete")
    assert (r.status_code, r.json()) == (200, {"id": room, "channel": channel, "changed": True, "deleted": True})
    ended = await pupil.next_frame(Error, timeout=LIVE)
    ghost = f"room:{NEVER}"
    never = await pupil.error(Subscribe(ghost))

    def same(answer: Error) -> None:  # the code and sentence of a room that never existed
        assert answer.code == never.code == "not_found"
        assert answer.message.replace(str(room), str(NEVER)) == never.message

    assert ended.ref is None and ended.data == {"channel": channel}
    same(ended)
    same(await pupil.error(Subscribe(channel, since=0)))
    same(await pupil.error(Post(channel, "hello?")))
    assert (await pupil.error(Post(ghost, "hello?"))).message == never.message
    same(await pupil.error(Edit(channel, said, "sorry")))
    same(await admin.error(Hide(channel, said, "too late")))
    for who in (pupil_http, admin_http):  # over HTTP: the same 404 body, but for the id
        gone = await http.get(f"/api/rooms/{room}/messages", headers=who)
        nothing = await http.get(f"/api/rooms/{NEVER}/messages", headers=who)
        assert gone.status_code == nothing.status_code == 404
        assert json.dumps(gone.json()).replace(str(room), str(NEVER)) == json.dumps(nothing.json())
    for change in ("archive", "unarchive", "delete"):
        gone, nothing = [await _change(http, admin_http, sid, r_id, change) for r_id in (room, NEVER)]
        assert _error(gone)[:2] == _error(nothing)[:2] == (404, "not_found")
        assert _error(gone)[2].replace(str(room), str(NEVER)) == _error(nothing)[2]
    # Not listed any more: the members' open sockets got a fresh welcome, and /api/me agrees.
    assert room not in _rooms(await pupil.next_frame(Welcome, timeout=LIVE), sid)
    assert room not in _rooms((await http.get("/api/me", headers=pupil_http)).json(), sid)

    # Its messages stay, and the report about one keeps working for the reviewers.
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE room_id = $1", room) == 1
    listed = (await http.get(f"/api/spaces/{sid}/reports", headers=admin_http)).json()["reports"]
    [kept] = [x for x in listed if x["id"] == report]
    assert kept["message"]["text"] == "you cannot join our group" and kept["message"]["room"]["id"] == room
    closed = await admin.ok(ResolveReport(report, "resolved", "the room is gone; talked with them"))
    assert closed.data["report"]["status"] == "resolved"
    assert [e["action"] for e in await _audit(http, admin_http, sid, room)] == ["room.delete"]


async def test_the_database_keeps_a_deleted_room_deleted_and_the_journal_active(world, pool):
    """Whoever asks (the CLI, a script, a bug): 0018_room_states.sql holds both, and 0014 keeps
    every row."""
    room = world.rooms[Area.ACTIVITIES]
    journal = await pool.fetchval("SELECT id FROM rooms WHERE space_id = $1 AND kind = 'journal'", world.space_id)
    await pool.execute("UPDATE rooms SET state = 'deleted' WHERE id = $1", room)
    for state in ("active", "archived"):
        with pytest.raises(asyncpg.CheckViolationError, match="stays deleted"):
            await pool.execute("UPDATE rooms SET state = $2 WHERE id = $1", room, state)
    with pytest.raises(asyncpg.PostgresError, match="never deleted"):
        await pool.execute("DELETE FROM rooms WHERE id = $1", room)
    for state in ("archived", "deleted"):
        with pytest.raises(asyncpg.CheckViolationError, match="journal_always_active"):
            await pool.execute("UPDATE rooms SET state = $2 WHERE id = $1", journal, state)
    with pytest.raises(asyncpg.CheckViolationError):
        await pool.execute("UPDATE rooms SET state = 'gone' WHERE id = $1", journal)


async def test_a_deleted_room_no_longer_counts_towards_the_cap_and_an_archived_one_does(world, http, pool):
    sid = world.space_id
    admin_http = await _headers(http, world.users["teacher_admin"])
    have = await pool.fetchval("SELECT count(*) FROM rooms WHERE space_id = $1", sid)
    fillers = [await spaces.create_room(pool, space_id=sid, area="activities", name=f"filler {i}")
               for i in range(MAX_ROOMS - have)]
    url, body = f"/api/spaces/{sid}/rooms", {"area": "activities", "name": "one more"}
    assert (await http.post(url, headers=admin_http, json=body)).status_code == 409
    assert (await _change(http, admin_http, sid, fillers[0].id, "archive")).status_code == 200
    assert _error(await http.post(url, headers=admin_http, json=body))[:2] == (409, "conflict")
    assert (await _change(http, admin_http, sid, fillers[1].id, "delete")).status_code == 200
    made = await http.post(url, headers=admin_http, json=body)
    assert made.status_code == 201, made.text
    assert _error(await http.post(url, headers=admin_http, json={**body, "name": "and another"}))[:2] == (409, "conflict")


async def test_the_journal_is_never_archived_nor_deleted_and_the_projects_own_rooms_are_only_archived(
    world, http, pool,
):
    sid = world.space_id
    admin_http = await _headers(http, world.users["teacher_admin"])
    journal = await pool.fetchval("SELECT id FROM rooms WHERE space_id = $1 AND kind = 'journal'", sid)
    for change in ("archive", "unarchive", "delete"):
        assert _error(await _change(http, admin_http, sid, journal, change)) == (
            403, "forbidden", "the project journal cannot be archived or deleted")
    for area in (Area.HOME, Area.TEACHERS_ROOM, Area.PUPILS_CORNER, Area.CHAT):
        status, code, message = _error(await _change(http, admin_http, sid, world.rooms[area], "delete"))
        assert (status, code) == (403, "forbidden") and "archive it instead" in message
        assert (await _change(http, admin_http, sid, world.rooms[area], "archive")).status_code == 200
    assert (await _change(http, admin_http, sid, world.rooms[Area.ACTIVITIES], "delete")).status_code == 200
    states = dict(await pool.fetch("SELECT id, state FROM rooms WHERE space_id = $1", sid))
    assert states[journal] == "active" and states[world.rooms[Area.ACTIVITIES]] == "deleted"
    assert {states[world.rooms[a]] for a in (Area.HOME, Area.TEACHERS_ROOM, Area.PUPILS_CORNER, Area.CHAT)} == {
        "archived"}


async def test_changing_rooms_in_a_closed_project_and_bad_paths(world, http):
    sid, room = world.space_id, world.rooms[Area.ACTIVITIES]
    admin_http = await _headers(http, world.users["teacher_admin"])
    assert (await http.post(f"/api/spaces/{sid}/close", headers=admin_http)).status_code == 200
    for change in ("archive", "delete"):
        assert _error(await _change(http, admin_http, sid, room, change))[:2] == (409, "space_closed")
    for path in (f"/api/spaces/{sid}/rooms/x/archive", f"/api/spaces/{sid}/rooms/0/archive",
                 f"/api/spaces/{sid}/rooms/-3/archive", f"/api/spaces/{sid}/rooms/{2**70}/archive",
                 f"/api/spaces/x/rooms/{room}/archive"):
        assert _error(await http.post(path, headers=admin_http))[:2] == (404, "not_found"), path
    r = await http.post(f"/api/spaces/{sid}/rooms/{room}/archive", headers=admin_http, content=b"\xff{not json")
    assert _error(r)[:2] == (409, "space_closed")  # the body is not read: nothing in it matters
    assert (await http.post(f"/api/spaces/{sid}/rooms/{room}/archive")).status_code == 401


# -- who may --------------------------------------------------------------------------------------


async def test_only_the_projects_teacher_admins_change_its_rooms(world, http, make_world, pool):
    sid, room = world.space_id, world.rooms[Area.ACTIVITIES]
    theirs = (await http.post(f"/api/spaces/{sid}/rooms", headers=await _headers(http, world.users["pupil_admin"]),
                              json={"area": "activities", "name": "our group"})).json()["id"]
    refused = "only the project's teacher administrators rename, archive and delete its rooms"
    for who in ("teacher_member", "pupil_admin", "pupil_member", "visitor", "moderator"):
        headers = await _headers(http, world.users[who])
        for target in (room, theirs):  # the pupil admin's own room too
            for change in ("archive", "unarchive", "delete"):
                assert _error(await _change(http, headers, sid, target, change)) == (403, "forbidden", refused), who

    # Another project's teacher admin, and a stranger: this project does not exist for them; and
    # under their own project's id, this room is like one that never existed.
    other = await make_world()
    for headers in (await _headers(http, other.users["teacher_admin"]), await _headers(http, world.users["outsider"])):
        for change in ("archive", "unarchive", "delete"):
            assert _error(await _change(http, headers, sid, room, change)) == (
                404, "not_found", f"there is no project {sid} in your projects")
    theirs_http = await _headers(http, other.users["teacher_admin"])
    for change in ("archive", "delete"):
        mine, nothing = [await _change(http, theirs_http, other.space_id, r_id, change) for r_id in (room, NEVER)]
        assert _error(mine)[:2] == _error(nothing)[:2] == (404, "not_found")
        assert _error(mine)[2].replace(str(room), str(NEVER)) == _error(nothing)[2]
    # Nothing changed, nothing was written.
    assert await pool.fetchval("SELECT count(*) FROM rooms WHERE id = ANY($1::bigint[]) AND state <> 'active'",
                               [room, theirs]) == 0
    admin_http = await _headers(http, world.users["teacher_admin"])
    assert await _audit(http, admin_http, sid, room) == []


async def test_a_teacher_admin_removed_or_demoted_no_longer_changes_rooms(world, http, server, password_hash):
    sid, room = world.space_id, world.rooms[Area.ACTIVITIES]
    projects = server.app.state.projects
    second = await accounts.create_user(
        server.app.state.pool, username=f"second-admin-{secrets.token_hex(3)}", display_name="Second Admin",
        password_hash=password_hash, school="Lyon",
    )
    await projects.set_member(sid, second.id, Role.TEACHER_ADMIN)  # the project keeps a teacher admin
    first = await _headers(http, world.users["teacher_admin"])  # a session opened before the removal
    demoted = await _headers(http, second)
    await projects.set_member(sid, world.users["teacher_admin"].id, None)
    assert _error(await _change(http, first, sid, room, "archive")) == (
        404, "not_found", f"there is no project {sid} in your projects")
    await projects.set_member(sid, second.id, Role.TEACHER_MEMBER)
    assert _error(await _change(http, demoted, sid, room, "delete"))[:2] == (403, "forbidden")


# -- at once, once ------------------------------------------------------------------------------


async def test_twenty_archives_at_once_make_one_change_and_one_audit_entry(world, http):
    sid, room = world.space_id, world.rooms[Area.ACTIVITIES]
    admin_http = await _headers(http, world.users["teacher_admin"])
    answers = await asyncio.gather(*(_change(http, admin_http, sid, room, "archive") for _ in range(20)))
    assert [a.status_code for a in answers] == [200] * 20
    assert sorted(a.json()["changed"] for a in answers) == [False] * 19 + [True]
    assert all(a.json()["archived"] for a in answers)
    assert [e["action"] for e in await _audit(http, admin_http, sid, room)] == ["room.archive"]
    feed = (await http.get(f"/api/spaces/{sid}/activity", headers=admin_http)).json()["activities"]
    assert [a["kind"] for a in feed if (a["room"] or {}).get("id") == room and a["kind"] != "room.created"] == [
        "room.archived"]


async def test_twenty_mixed_changes_at_once_are_each_audited_once_and_one_delete_wins(world, http):
    sid, room = world.space_id, world.rooms[Area.ACTIVITIES]
    admin_http = await _headers(http, world.users["teacher_admin"])
    changes = ["archive", "unarchive", "delete", "archive", "unarchive"] * 4
    answers = await asyncio.gather(*(_change(http, admin_http, sid, room, c) for c in changes))
    assert {a.status_code for a in answers} <= {200, 404}, [a.text for a in answers]
    assert all(_error(a)[1] == "not_found" for a in answers if a.status_code == 404)
    made = {c: sum(a.status_code == 200 and a.json()["changed"] for a, cc in zip(answers, changes) if cc == c)
            for c in ("archive", "unarchive", "delete")}
    assert made["delete"] == 1
    audited = [e["action"] for e in await _audit(http, admin_http, sid, room)]
    assert sorted(audited) == sorted(f"room.{c}" for c, n in made.items() for _ in range(n))
    feed = (await http.get(f"/api/spaces/{sid}/activity", headers=admin_http, params={"limit": 200})).json()
    kinds = [a["kind"] for a in feed["activities"] if (a["room"] or {}).get("id") == room]
    assert sorted(k for k in kinds if k != "room.created") == sorted(
        {"archive": "room.archived", "unarchive": "room.unarchived", "delete": "room.deleted"}[c]
        for c, n in made.items() for _ in range(n))


# -- on every process ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def pair(database_url, redis_url):
    async with two_processes(database_url, redis_url, f"twinhub-rooms-{os.getpid()}") as processes:
        yield processes


async def test_archive_and_delete_made_on_a_hold_on_b_at_once(pair, world):
    a, b, on_a, on_b = pair
    sid, room, channel = world.space_id, world.rooms[Area.ACTIVITIES], world.channel(Area.ACTIVITIES)
    admin_on_a = await _headers(on_a, world.users["teacher_admin"])
    pupil = await Client.connect(b.ws, await login(on_b, world.users["pupil_member"].username))
    watcher = await Client.connect(b.ws, await login(on_b, world.users["moderator"].username))
    try:
        await pupil.ok(Post(channel, "on b"))
        await pupil.ok(Subscribe(channel))
        await watcher.ok(Subscribe(channel))  # a platform moderator, who is no member
        assert (await _change(on_a, admin_on_a, sid, room, "archive")).status_code == 200
        for client in (pupil, watcher):
            assert (await client.next_frame(RoomNotice, timeout=LIVE)).room["archived"] is True
        assert _rooms(await pupil.next_frame(Welcome, timeout=LIVE), sid)[room]["archived"] is True
        assert (await pupil.error(Post(channel, "still on b?"))).code == "room_archived"

        assert (await _change(on_a, admin_on_a, sid, room, "unarchive")).status_code == 200
        assert (await pupil.next_frame(RoomNotice, timeout=LIVE)).room["archived"] is False
        await pupil.ok(Post(channel, "back on b"))

        assert (await _change(on_a, admin_on_a, sid, room, "delete")).status_code == 200
        for client in (pupil, watcher):
            ended = await client.next_frame(Error, timeout=LIVE)
            assert (ended.code, ended.data) == ("not_found", {"channel": channel})
        assert (await pupil.error(Subscribe(channel))).code == "not_found"
        assert (await pupil.error(Post(channel, "anyone?"))).code == "not_found"
        assert room not in _rooms(await pupil.next_frame(Welcome, timeout=LIVE), sid)
        assert (await on_b.get(f"/api/rooms/{room}/messages",
                               headers=await _headers(on_b, world.users["teacher_admin"]))).status_code == 404
    finally:
        await pupil.close()
        await watcher.close()


# -- welcome: however big, never a slow consumer's close ---------------------------------------------

ROOM_NAME = "🌊" * 100  # the longest name (100 characters) in the most bytes (4 each in UTF-8)
JSON_WORST_NAME = "\x01" * 100  # ... and in the most JSON (each written \u0001: 6 bytes)


async def _project_at_the_cap(pool, admin: accounts.User, tag: str, name: str = ROOM_NAME) -> tuple[int, list[int]]:
    space = await spaces.create_space(pool, slug=f"cap-{tag}", name=f"Capped {tag}")
    await spaces.set_member(pool, space.id, admin.id, Role.TEACHER_ADMIN.value)
    have = await pool.fetchval("SELECT count(*) FROM rooms WHERE space_id = $1", space.id)
    made = [await spaces.create_room(pool, space_id=space.id, area="activities", name=name)
            for _ in range(MAX_ROOMS - have)]
    return space.id, [r.id for r in made]


async def test_a_welcome_at_the_room_cap_is_measured_and_does_not_grow_with_the_roster(
    server, http, pool, password_hash,
):
    """The measure (docs/protocol.md, `welcome`): a project at the room cap, as its teacher
    admin sees it (the longest rights), every room named with the most bytes a name can take —
    in UTF-8, and in JSON. The roster is not in a welcome: 300 more members change nothing."""
    tag = secrets.token_hex(4)
    admin = await accounts.create_user(pool, username=f"cap-admin-{tag}", display_name="Cap Admin",
                                       password_hash=password_hash, school="Lyon")
    projects = {"4-byte names": (await _project_at_the_cap(pool, admin, f"{tag}-u"))[0],
                "control-character names": (await _project_at_the_cap(pool, admin, f"{tag}-c", JSON_WORST_NAME))[0]}
    headers = await _headers(http, admin)

    async def sizes() -> dict[str, dict[Encoding, int]]:
        me = (await http.get("/api/me", headers=headers)).json()
        found = {}
        for label, sid in projects.items():
            listed = _rooms(me, sid).values()
            assert len(listed) == MAX_ROOMS and not any(r["archived"] for r in listed)
            one = {**me, "spaces": [s for s in me["spaces"] if s["id"] == sid]}
            found[label] = {e: len(encode_server_item(Welcome(**one), e)) for e in Encoding}
        return found

    alone = await sizes()
    sid = projects["4-byte names"]
    for i in range(300):
        pupil = await accounts.create_user(pool, username=f"cap-pupil-{tag}-{i}", display_name=f"Pupil {i}",
                                           password_hash=password_hash)
        await spaces.set_member(pool, sid, pupil.id, Role.PUPIL_MEMBER.value)
    assert await sizes() == alone
    for label, size in alone.items():
        print(f"\nwelcome of one project at the cap ({MAX_ROOMS} rooms, {label}): "
              f"JSON {size[Encoding.JSON]} B, MessagePack {size[Encoding.MSGPACK]} B")
    # Under a sixteenth of the default outbox (1 MiB) per project, whatever the names: but a
    # member may be in any number of projects, so a welcome is never counted against the outbox
    # (ws/connection.py, send_whole) — the next test.
    assert max(n for size in alone.values() for n in size.values()) < 64 * 1024


async def test_a_welcome_larger_than_the_outbox_never_closes_a_slow_reader(database_url, http, pool, password_hash):
    """A teacher admin of four projects at the room cap has a welcome larger than this server's
    whole outbox (64 KiB): their client connects and reads nothing — the server keeps the socket
    through the hello's welcome and through the 29 more, one per room archived or unarchived
    (paced: at most one waits), and the client, reading at last, gets them whole, the last one
    saying what is so now."""
    settings = Settings(database_url=database_url, port=0, outbox_bytes=64 * 1024, log_level="warning")
    small = RunningServer(settings)
    await small.start()
    tag = secrets.token_hex(4)
    admin = await accounts.create_user(pool, username=f"busy-admin-{tag}", display_name="Busy Admin",
                                       password_hash=password_hash, school="Lyon")
    projects = [await _project_at_the_cap(pool, admin, f"{tag}-{i}") for i in range(4)]
    sid, rooms = projects[0]
    try:
        url = f"http://127.0.0.1:{small.port}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as on_small:
            token = await login(on_small, admin.username)
            headers = {"authorization": f"Bearer {token}"}
            me = (await on_small.get("/api/me", headers=headers)).json()
            assert len(encode_server_item(Welcome(**me), Encoding.JSON)) > settings.outbox_bytes
            open_before = small.app.state.ws_endpoint.open
            sock = await stalled_client(small.port, token, f"room:{rooms[0]}")
            await _until(lambda: small.app.state.ws_endpoint.open == open_before + 1)
            for i in range(28):  # each one: a new welcome for every socket of the admin
                change = "archive" if i % 2 == 0 else "unarchive"
                r = await _change(on_small, headers, sid, rooms[(i // 2) % len(rooms)], change)
                assert r.status_code == 200, r.text
            r = await _change(on_small, headers, sid, rooms[-1], "archive")
            assert r.status_code == 200, r.text
            await asyncio.sleep(0.5)  # bounded: a close would have come by now
            assert small.app.state.ws_endpoint.open == open_before + 1, "the slow reader was closed"

            welcomes = await _read_until_welcome_with(sock, lambda w: _rooms(w, sid)[rooms[-1]]["archived"])
            sock.close()
        assert 1 < len(welcomes) <= 30
        last = _rooms(welcomes[-1], sid)
        assert [r for r in rooms if last[r]["archived"]] == [rooms[-1]]
    finally:
        await small.stop()


async def _until(check, timeout: float = LIVE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _read_until_welcome_with(sock: socket.socket, done, timeout: float = 20.0) -> list[Welcome]:
    """Read the server's WebSocket messages (unmasked, RFC 6455) until a welcome for which
    `done(welcome)`; return every welcome read."""
    loop = asyncio.get_running_loop()
    buf, welcomes = b"", []
    deadline = time.monotonic() + timeout
    while True:
        while True:  # every whole frame in the buffer
            if len(buf) < 2:
                break
            opcode, n, at = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, at = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, at = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < at + n:
                break
            payload, buf = buf[at:at + n], buf[at + n:]
            assert opcode != 0x8, f"closed by the server: {payload[:2].hex()} {payload[2:]!r}"
            if opcode == 0x1:
                for frame in decode_server(payload, Encoding.JSON):
                    if isinstance(frame, Welcome):
                        welcomes.append(frame)
                        if done(frame):
                            return welcomes
        left = deadline - time.monotonic()
        assert left > 0, f"no such welcome in time ({len(welcomes)} read)"
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), left)
        assert chunk, "the server closed the connection"
        buf += chunk

