"""A project run over the documented API (issue 22, points 17–19), through real sockets and HTTP.

17. Platform administrators (a platform role of their own, made by `twinhub admin create-user
    --platform-admin`) create projects with their rooms and first teacher admin, list, rename,
    close and reopen them — every open one at once at the start of a school year — and nobody
    else does; moderators keep moderating, and only that.
18. Teacher admins rename their project's rooms; names are trimmed, 1–100 characters, without
    control or invisible characters, on creating and on renaming; open sockets follow at once.
19. A removed pupil is added back by their home project only, and finds their mail and history
    as they left them; a platform moderator joins a project as a visitor; a project's pending
    invitations are listed; an invitee's open sockets are told of an invitation as it happens.

Who may and who may not is tried from the other project, every other role, a platform moderator,
an outsider and a removed teacher admin; concurrency with twenty requests at once; the live
effects on a second `twinhub serve` process (one Redis, one PostgreSQL of this module's own, so
that closing every project closes only this module's)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import asyncpg
import httpx
import pytest

from protocol import InvitationNotice, Post, RoomNotice, SendMail, Subscribe, Welcome
from realtime.policy import Area, Role
from realtime.services.platform import DEFAULT_ROOMS
from storage import accounts, projects, spaces
from storage.db import create_pool
from storage.embedded import drop_database
from tests.client import Client
from tests.conftest import PASSWORD, World, login, migrated_database
from tests.processes import ServeProcess, twinhub_cli, two_processes

LIVE = 5.0  # seconds a change may take to reach a socket (another process: the bus's latency)
NEVER = 10**12  # an id nobody will ever have
STAFF = ("teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor", "moderator", "outsider")


async def _auth(http: httpx.AsyncClient, user: accounts.User | str) -> dict[str, str]:
    username = user if isinstance(user, str) else user.username
    return {"authorization": f"Bearer {await login(http, username)}"}


def _error(r: httpx.Response) -> tuple[int, str, str]:
    body = r.json()["error"]
    return r.status_code, body["code"], body["message"]


async def _platform_admin(pool: asyncpg.Pool, password_hash: str) -> accounts.User:
    return await accounts.create_user(
        pool, username=f"root-{secrets.token_hex(4)}", display_name="Platform Admin", password_hash=password_hash,
        platform_role="admin",
    )


async def _adult(pool: asyncpg.Pool, password_hash: str, name: str = "Marta Nowak") -> accounts.User:
    return await accounts.create_user(
        pool, username=f"adult-{secrets.token_hex(4)}", display_name=name, password_hash=password_hash,
        school="Kraków",
    )


async def _audit(http: httpx.AsyncClient, headers: dict[str, str], space_id: int) -> list[dict]:
    """The project's audit log, oldest first."""
    r = await http.get(f"/api/spaces/{space_id}/audit", headers=headers, params={"limit": 1000})
    assert r.status_code == 200, r.text
    return list(reversed(r.json()["entries"]))


def _space(welcome: Welcome | dict, space_id: int) -> dict | None:
    found = welcome.spaces if isinstance(welcome, Welcome) else welcome["spaces"]
    return next((s for s in found if s["id"] == space_id), None)


async def _told(client: Client, kind: type, check=lambda frame: True, *, since: int = 0, timeout: float = LIVE):
    """The first frame of `kind` the server sent `client` unasked (from the `since`-th such frame
    on) for which `check` holds, waiting at most `timeout` s for it. Frames of other kinds, and
    those that came before, stay where they are for the next look."""
    deadline = time.monotonic() + timeout
    while True:
        found = next((f for f in client.unsolicited[since:] if isinstance(f, kind) and check(f)), None)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no {kind.__name__} as expected within {timeout} s: {client.unsolicited[since:]}")
        await asyncio.sleep(0.02)


async def _welcome_where(client: Client, check, *, since: int = 0) -> Welcome:
    """The first fresh welcome (since the `since`-th unasked frame) for which `check` holds."""
    return await _told(client, Welcome, check, since=since)


async def _removed_teacher_admin(http: httpx.AsyncClient, pool: asyncpg.Pool, password_hash: str,
                                 world: World) -> accounts.User:
    """A second teacher admin of the project, removed by the first one over HTTP."""
    second = await _adult(pool, password_hash, "Second Admin")
    await spaces.set_member(pool, world.space_id, second.id, Role.TEACHER_ADMIN.value)
    r = await http.delete(f"/api/spaces/{world.space_id}/members/{second.id}",
                          headers=await _auth(http, world.users["teacher_admin"]))
    assert r.status_code == 200, r.text
    return second


# -- 17. platform administrators run projects ------------------------------------------------------


async def test_a_platform_administrator_made_by_the_command_line_creates_a_project_over_http(
    server, http, connect, pool, password_hash, database_url,
):
    tag = secrets.token_hex(4)
    out = await asyncio.to_thread(twinhub_cli, database_url, "admin", "create-user", "--username", f"root-{tag}",
                                  "--name", "Platform Admin", "--password", PASSWORD, "--platform-admin")
    assert "(platform administrator)" in out
    admin = await _auth(http, f"root-{tag}")
    me = (await http.get("/api/me", headers=admin)).json()
    assert me["user"]["platform_role"] == "admin" and me["spaces"] == []  # in no project
    teacher = await _adult(pool, password_hash, "Claire Martin")
    teacher_socket = await connect(teacher)
    assert teacher_socket.welcome.spaces == []

    r = await http.post("/api/admin/spaces", headers=admin, json={
        "slug": f"river-{tag}", "name": "  River / La rivière ", "description": "Two schools\nmeasure a river",
        "admin": teacher.username,
    })
    assert r.status_code == 201, r.text
    made = r.json()
    sid = made["space"]["id"]
    assert made["space"] == {"id": sid, "slug": f"river-{tag}", "name": "River / La rivière",
                             "description": "Two schools\nmeasure a river", "closed": False, "closed_at": None,
                             "public": False}  # off until its teacher admin turns it on
    assert [(room["area"], room["name"], room["kind"]) for room in made["rooms"]] == [
        ("home", "Project journal", "journal"), *((area, name, "room") for area, name in DEFAULT_ROOMS)]
    assert made["admin"] == {"id": teacher.id, "username": teacher.username, "name": "Claire Martin",
                             "school": "Kraków"}
    assert (await http.get(f"/api/public/river-{tag}")).status_code == 404  # not public yet

    # Its first teacher admin's open socket has it at once, and works in it.
    fresh = await _welcome_where(teacher_socket, lambda w: _space(w, sid) is not None)
    space = _space(fresh, sid)
    assert space["role"] == "teacher_admin" and {r["id"] for r in space["rooms"]} == {r["id"] for r in made["rooms"]}
    chat = next(r["channel"] for r in space["rooms"] if r["area"] == "chat")
    await teacher_socket.ok(Post(chat, "first words"))
    # Its audit log says who made it, and who made them its teacher admin.
    entries = await _audit(http, await _auth(http, teacher), sid)
    assert [(e["action"], e["actor_id"], e["target_id"]) for e in entries][:2] == [
        ("space.create", me["user"]["id"], sid), ("member.joined", me["user"]["id"], teacher.id)]
    # The same slug again: nothing is made twice.
    again = await http.post("/api/admin/spaces", headers=admin, json={
        "slug": f"river-{tag}", "name": "Another", "admin": teacher.username})
    assert _error(again)[:2] == (409, "conflict")


@pytest.mark.parametrize("who", [*STAFF, "former platform administrator"])
async def test_only_platform_administrators_run_the_platforms_projects(server, http, world, pool, password_hash, who):
    """Every route of /api/admin/… refused — each role of the project, a platform moderator, an
    outsider, and an administrator whose platform role was taken away (refused at the next
    request) — and nothing changed by any of them."""
    if who == "former platform administrator":
        former = await _platform_admin(pool, password_hash)
        headers = await _auth(http, former)
        await pool.execute("UPDATE users SET platform_role = NULL WHERE id = $1", former.id)
    else:
        headers = await _auth(http, world.users[who])
    sid, slug = world.space_id, f"taken-{secrets.token_hex(4)}"
    moderator = world.users["moderator"]
    tries = [
        http.post("/api/admin/spaces", headers=headers, json={
            "slug": slug, "name": "Taken over", "admin": world.users["teacher_admin"].username}),
        http.get("/api/admin/spaces", headers=headers),
        http.patch(f"/api/admin/spaces/{sid}", headers=headers, json={"name": "Taken over"}),
        http.post("/api/admin/spaces/close", headers=headers),
        http.post(f"/api/admin/spaces/{sid}/moderators", headers=headers, json={"username": moderator.username}),
    ]
    for r in await asyncio.gather(*tries):
        status, code, message = _error(r)
        assert (status, code) == (403, "forbidden"), (who, r.request.url, r.text)
        assert message.startswith("only platform administrators")
    # Closing one project stays its teacher admins' (and no longer this former administrator's).
    closing = await http.post(f"/api/spaces/{sid}/close", headers=headers)
    if who == "teacher_admin":
        assert closing.status_code == 200
        assert (await http.post(f"/api/spaces/{sid}/reopen", headers=headers)).status_code == 200
    elif who in ("outsider", "former platform administrator"):
        assert _error(closing) == (404, "not_found", f"there is no project {sid} in your projects")
    else:
        assert _error(closing)[:2] == (403, "forbidden")
    assert await spaces.space_by_slug(pool, slug) is None
    space = await spaces.get_space(pool, sid)
    assert (space.name, space.closed) == (world.slug.replace("p-", "Project "), False)
    assert await spaces.role_in(pool, sid, moderator.id) is None
    assert (await http.get("/api/admin/spaces")).status_code == 401  # and nobody without a session


async def test_bad_project_requests_get_clear_errors_and_change_nothing(server, http, world, pool, password_hash):
    admin = await _auth(http, await _platform_admin(pool, password_hash))
    teacher, tag = world.users["teacher_admin"].username, secrets.token_hex(4)
    good = {"slug": f"ok-{tag}", "name": "A name", "admin": teacher}
    bad = [
        ({**good, "slug": "Not A Slug"}, 400, "invalid_field"),
        ({**good, "slug": "x"}, 400, "invalid_field"),
        ({**good, "slug": 12}, 400, "invalid_field"),
        ({**good, "name": "   "}, 400, "invalid_field"),
        ({**good, "name": "\u200b"}, 400, "invalid_field"),  # zero-width space: blank to the eye
        ({**good, "name": "Rivers \u202eevil"}, 400, "invalid_field"),  # a bidi override
        ({**good, "name": "x" * 201}, 400, "invalid_field"),
        ({**good, "name": None}, 400, "invalid_field"),
        ({**good, "description": "nul \x00 here"}, 400, "invalid_field"),
        ({**good, "description": "x" * 2001}, 400, "invalid_field"),
        ({**good, "description": ["a list"]}, 400, "invalid_field"),
        ({k: v for k, v in good.items() if k != "admin"}, 400, "invalid_field"),
        ({**good, "admin": "nobody-" + tag}, 404, "not_found"),
        ({**good, "admin": world.users["pupil_member"].username}, 404, "not_found"),  # a pupil is never found
        ({**good, "admin": world.users["moderator"].username}, 404, "not_found"),
        ({**good, "slug": world.slug}, 409, "conflict"),
    ]
    for body, status, code in bad:
        r = await http.post("/api/admin/spaces", headers=admin, json=body)
        assert _error(r)[:2] == (status, code), (body, r.text)
    assert _error(await http.post("/api/admin/spaces", headers=admin, content=b"[1]"))[:2] == (400, "bad_frame")
    assert await spaces.space_by_slug(pool, f"ok-{tag}") is None
    # not found answers the same for an unknown username, a pupil's and a moderator's
    sentences = {_error(await http.post("/api/admin/spaces", headers=admin, json={**good, "admin": u}))[2]
                 .replace(repr(u), "<u>") for u in ("nobody-" + tag, world.users["pupil_member"].username,
                                                     world.users["moderator"].username)}
    assert len(sentences) == 1

    renames = [
        (f"/api/admin/spaces/{world.space_id}", {}, 400, "invalid_field"),
        (f"/api/admin/spaces/{world.space_id}", {"name": "bell \x07"}, 400, "invalid_field"),
        (f"/api/admin/spaces/{world.space_id}", {"description": "\u2066isolated"}, 400, "invalid_field"),
        (f"/api/admin/spaces/{NEVER}", {"name": "Nobody's"}, 404, "not_found"),
        ("/api/admin/spaces/abc", {"name": "Nobody's"}, 404, "not_found"),
    ]
    for url, body, status, code in renames:
        assert _error(await http.patch(url, headers=admin, json=body))[:2] == (status, code), (url, body)
    for query in ({"closed": "maybe"}, {"limit": "0"}, {"limit": "501"}, {"before": "x"}):
        assert _error(await http.get("/api/admin/spaces", headers=admin, params=query))[:2] == (400, "invalid_field")
    moderators = [
        (world.space_id, {}, 400, "invalid_field"),
        (world.space_id, {"username": world.users["teacher_member"].username}, 404, "not_found"),
        (world.space_id, {"username": "nobody-" + tag}, 404, "not_found"),
        (NEVER, {"username": world.users["moderator"].username}, 404, "not_found"),
    ]
    for space_id, body, status, code in moderators:
        r = await http.post(f"/api/admin/spaces/{space_id}/moderators", headers=admin, json=body)
        assert _error(r)[:2] == (status, code), (space_id, body)
    assert (await spaces.get_space(pool, world.space_id)).name == world.slug.replace("p-", "Project ")


async def test_an_administrator_lists_renames_closes_and_reopens_a_project_its_members_see_it_at_once(
    server, http, world, connect, pool, password_hash,
):
    root = await _platform_admin(pool, password_hash)
    admin = await _auth(http, root)
    sid = world.space_id
    pupil = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)

    newest = (await http.get("/api/admin/spaces", headers=admin, params={"limit": 1})).json()
    [listed] = newest["projects"]
    assert newest["more"] is True
    assert listed["id"] == sid and listed["members"] == 5 and listed["closed"] is False
    ta = world.users["teacher_admin"]
    assert listed["teacher_admins"] == [{"id": ta.id, "username": ta.username, "name": ta.display_name,
                                         "school": ta.school}]
    older = (await http.get("/api/admin/spaces", headers=admin, params={"before": sid, "limit": 3})).json()
    assert older["projects"] and all(p["id"] < sid for p in older["projects"])

    r = await http.patch(f"/api/admin/spaces/{sid}", headers=admin,
                         json={"name": " Rivers of Europe ", "description": "Measured\nby two classes"})
    assert r.status_code == 200, r.text
    assert (r.json()["space"]["name"], r.json()["changed"]) == ("Rivers of Europe", True)
    renamed = await _welcome_where(pupil, lambda w: _space(w, sid)["name"] == "Rivers of Europe")
    assert _space(renamed, sid)["description"] == "Measured\nby two classes"
    again = await http.patch(f"/api/admin/spaces/{sid}", headers=admin, json={"name": "Rivers of Europe"})
    assert again.json()["changed"] is False

    mark = len(pupil.unsolicited)
    assert (await http.post(f"/api/spaces/{sid}/close", headers=admin)).json() == {"id": sid, "closed": True}
    await _welcome_where(pupil, lambda w: _space(w, sid)["closed"] is True, since=mark)
    assert (await pupil.error(Post(chat, "still open?"))).code == "space_closed"
    closed = (await http.get("/api/admin/spaces", headers=admin, params={"closed": "true", "limit": 50})).json()
    assert sid in [p["id"] for p in closed["projects"]] and all(p["closed"] for p in closed["projects"])
    opened = (await http.get("/api/admin/spaces", headers=admin, params={"closed": "false", "limit": 50})).json()
    assert sid not in [p["id"] for p in opened["projects"]]

    mark = len(pupil.unsolicited)
    assert (await http.post(f"/api/spaces/{sid}/reopen", headers=admin)).json() == {"id": sid, "closed": False}
    await _welcome_where(pupil, lambda w: _space(w, sid)["closed"] is False, since=mark)
    await pupil.ok(Post(chat, "open again"))
    entries = [(e["action"], e["actor_id"], e["details"]) for e in await _audit(http, await _auth(http, ta), sid)]
    assert [e for e in entries if e[0].startswith("space.")] == [
        ("space.rename", root.id, {"name": "Rivers of Europe", "was": world.slug.replace("p-", "Project "),
                                   "description": "Measured\nby two classes", "description_was": ""}),
        ("space.close", root.id, {}), ("space.reopen", root.id, {})]


async def test_twenty_renames_of_a_project_at_once_are_each_audited_and_the_last_stands(
    server, http, world, connect, pool, password_hash,
):
    root = await _platform_admin(pool, password_hash)
    admin, sid = await _auth(http, root), world.space_id
    member = await connect(world.users["teacher_member"])
    names = [f"Name {i}" for i in range(20)]
    answers = await asyncio.gather(*(
        http.patch(f"/api/admin/spaces/{sid}", headers=admin, json={"name": n}) for n in names))
    assert all(r.status_code == 200 and r.json()["changed"] for r in answers)
    renames = [e for e in await _audit(http, await _auth(http, world.users["teacher_admin"]), sid)
               if e["action"] == "space.rename"]
    assert sorted(e["details"]["name"] for e in renames) == sorted(names)
    last = renames[-1]["details"]["name"]
    assert (await spaces.get_space(pool, sid)).name == last
    await _welcome_where(member, lambda w: _space(w, sid)["name"] == last)
    assert _space((await http.get("/api/me", headers=await _auth(http, world.users["teacher_member"]))).json(),
                  sid)["name"] == last


# -- 18. rooms renamed ---------------------------------------------------------------------------


async def test_only_the_projects_teacher_admins_rename_its_rooms(
    server, http, world, make_world, pool, password_hash,
):
    sid, room = world.space_id, world.rooms[Area.ACTIVITIES]
    url = f"/api/spaces/{sid}/rooms/{room}"
    forbidden = "only the project's teacher administrators rename, archive and delete its rooms"
    for who in ("teacher_member", "pupil_admin", "pupil_member", "visitor", "moderator"):
        r = await http.patch(url, headers=await _auth(http, world.users[who]), json={"name": "Mine now"})
        assert _error(r) == (403, "forbidden", forbidden), who
    other = await make_world()
    removed = await _removed_teacher_admin(http, pool, password_hash, world)
    nobody = _error(await http.patch(f"/api/spaces/{NEVER}/rooms/{room}",
                                     headers=await _auth(http, world.users["teacher_admin"]), json={"name": "x"}))
    assert nobody == (404, "not_found", f"there is no project {NEVER} in your projects")
    for user in (other.users["teacher_admin"], world.users["outsider"], removed,
                 await _platform_admin(pool, password_hash)):
        r = await http.patch(url, headers=await _auth(http, user), json={"name": "Mine now"})
        assert _error(r) == (404, "not_found", f"there is no project {sid} in your projects"), user.username
    # a room of another project named through this one, and one that never existed: the same answer
    admin = await _auth(http, world.users["teacher_admin"])
    for foreign in (other.rooms[Area.ACTIVITIES], NEVER):
        r = await http.patch(f"/api/spaces/{sid}/rooms/{foreign}", headers=admin, json={"name": "x"})
        assert _error(r) == (404, "not_found", f"there is no room {foreign} in project {sid}")
    assert (await spaces.get_room(pool, room)).name == "activities"  # nothing changed

    # A teacher admin renames any room, the journal and an archived room included ...
    journal = await pool.fetchval("SELECT id FROM rooms WHERE space_id = $1 AND kind = 'journal'", sid)
    assert (await http.patch(f"/api/spaces/{sid}/rooms/{journal}", headers=admin,
                             json={"name": "Our journal"})).status_code == 200
    chat = world.rooms[Area.CHAT]
    assert (await http.post(f"/api/spaces/{sid}/rooms/{chat}/archive", headers=admin)).status_code == 200
    assert (await http.patch(f"/api/spaces/{sid}/rooms/{chat}", headers=admin,
                             json={"name": "Last year's chat"})).json()["name"] == "Last year's chat"
    # ... but not a deleted one (gone: as one that never existed), nor anything in a closed project.
    assert (await http.delete(url, headers=admin)).status_code == 200
    assert _error(await http.patch(url, headers=admin, json={"name": "x"})) == (
        404, "not_found", f"there is no room {room} in project {sid}")
    assert (await http.post(f"/api/spaces/{sid}/close", headers=admin)).status_code == 200
    r = await http.patch(f"/api/spaces/{sid}/rooms/{journal}", headers=admin, json={"name": "Closed journal"})
    assert _error(r)[:2] == (409, "space_closed")


@pytest.mark.parametrize("name", [
    "", "    ", "\u200b", "\u200bpadded\u200b", "zero\u200dwidth", "bidi \u202e override", "soft\u00adhyphen",
    "bell\x07", "two\nlines", "tab\there", "nul\x00", "x" * 101, 7, None, ["a"],
])
async def test_a_room_name_with_control_or_invisible_characters_or_out_of_bounds_is_refused(
    server, http, world, name,
):
    sid, admin = world.space_id, await _auth(http, world.users["teacher_admin"])
    made = await http.post(f"/api/spaces/{sid}/rooms", headers=admin, json={"area": "activities", "name": name})
    assert _error(made)[:2] == (400, "invalid_field"), made.text
    renamed = await http.patch(f"/api/spaces/{sid}/rooms/{world.rooms[Area.ACTIVITIES]}", headers=admin,
                               json={"name": name})
    assert _error(renamed)[:2] == (400, "invalid_field"), renamed.text


async def test_a_room_name_is_trimmed_and_counted_in_characters(server, http, world, pool):
    sid, admin = world.space_id, await _auth(http, world.users["teacher_admin"])
    made = await http.post(f"/api/spaces/{sid}/rooms", headers=admin,
                           json={"area": "activities", "name": "  River samples \u3000"})
    assert made.status_code == 201 and made.json()["name"] == "River samples"
    longest = "🌊" * 100  # 100 characters, 400 bytes
    r = await http.patch(f"/api/spaces/{sid}/rooms/{made.json()['id']}", headers=admin, json={"name": f" {longest} "})
    assert r.status_code == 200 and r.json()["name"] == longest
    assert (await spaces.get_room(pool, made.json()["id"])).name == longest


async def test_a_rename_reaches_the_rooms_subscribers_and_the_members_at_once_audited_and_in_the_feed(
    server, http, world, connect,
):
    sid, room, channel = world.space_id, world.rooms[Area.ACTIVITIES], world.channel(Area.ACTIVITIES)
    pupil, visitor = await connect(world.users["pupil_member"]), await connect(world.users["visitor"])
    await pupil.ok(Subscribe(channel))
    admin = await _auth(http, world.users["teacher_admin"])
    r = await http.patch(f"/api/spaces/{sid}/rooms/{room}", headers=admin, json={"name": "River samples"})
    assert r.json() == {"id": room, "channel": channel, "name": "River samples", "was": "activities",
                        "changed": True}
    notice = await _told(pupil, RoomNotice)
    assert (notice.channel, notice.room["name"], notice.room["archived"]) == (channel, "River samples", False)
    for client in (pupil, visitor):  # a member who does not follow the room sees it in a fresh welcome
        await _welcome_where(client, lambda w: {r["id"]: r["name"] for r in _space(w, sid)["rooms"]}.get(room)
                             == "River samples")
    await pupil.ok(Post(channel, "still here"))  # renaming is not archiving
    same = await http.patch(f"/api/spaces/{sid}/rooms/{room}", headers=admin, json={"name": "River samples "})
    assert same.json()["changed"] is False
    entries = [e for e in await _audit(http, admin, sid) if e["action"] == "room.rename"]
    assert [(e["target_id"], e["details"]) for e in entries] == [
        (room, {"name": "River samples", "was": "activities", "area": "activities"})]
    feed = (await http.get(f"/api/spaces/{sid}/activity", headers=await _auth(http, world.users["visitor"]))).json()
    [record] = [a for a in feed["activities"] if a["kind"] == "room.renamed"]
    assert (record["room"], record["details"]) == ({"id": room, "name": "River samples"}, {"was": "activities"})


async def test_twenty_renames_of_a_room_at_once_are_each_audited_once_and_the_last_stands(
    server, http, world, connect, pool,
):
    sid, room, channel = world.space_id, world.rooms[Area.CHAT], world.channel(Area.CHAT)
    pupil = await connect(world.users["pupil_member"])
    await pupil.ok(Subscribe(channel))
    admin = await _auth(http, world.users["teacher_admin"])
    names = [f"Chat {i}" for i in range(20)]
    answers = await asyncio.gather(*(
        http.patch(f"/api/spaces/{sid}/rooms/{room}", headers=admin, json={"name": n}) for n in names))
    assert all(r.status_code == 200 and r.json()["changed"] for r in answers), [r.text for r in answers]
    renames = [e for e in await _audit(http, admin, sid) if e["action"] == "room.rename"]
    assert sorted(e["details"]["name"] for e in renames) == sorted(names)
    # each rename took the room from the one before it: a chain, never two from the same name
    assert [e["details"]["was"] for e in renames] == ["chat", *(e["details"]["name"] for e in renames[:-1])]
    last = renames[-1]["details"]["name"]
    assert (await spaces.get_room(pool, room)).name == last
    await _told(pupil, RoomNotice, lambda f: f.room["name"] == last)  # the subscriber is told the last name
    me = (await http.get("/api/me", headers=await _auth(http, world.users["pupil_member"]))).json()
    assert {r["id"]: r["name"] for r in _space(me, sid)["rooms"]}[room] == last


# -- 19. members: a removed pupil added back, a moderator placed, invitations ----------------------


async def test_a_removed_pupil_added_back_finds_their_mail_and_history_as_they_left_them(
    server, http, world, connect,
):
    sid, pupil_user, chat = world.space_id, world.users["pupil_member"], world.channel(Area.CHAT)
    admin = await _auth(http, world.users["teacher_admin"])
    sent = await http.post(f"/api/spaces/{sid}/mail", headers=admin, json={
        "to": [pupil_user.id], "subject": "Your river drawing", "text": "Bravo !", "client_id": "before"})
    assert sent.status_code == 201, sent.text
    pupil = await connect(pupil_user)
    mailbox = _space(pupil.welcome, sid)["mailbox"]
    assert mailbox["unread"]["inbox"] == 1
    posted = await pupil.ok(Post(chat, "my words stay"))

    assert (await http.delete(f"/api/spaces/{sid}/members/{pupil_user.id}", headers=admin)).status_code == 200
    await _welcome_where(pupil, lambda w: _space(w, sid) is None)
    mark = len(pupil.unsolicited)
    former = (await http.get(f"/api/spaces/{sid}/members/former", headers=admin)).json()
    [listed] = [p for p in former["pupils"] if p["id"] == pupil_user.id]
    assert listed["username"] == pupil_user.username and listed["removed_at"] is not None

    r = await http.post(f"/api/spaces/{sid}/members", headers=admin, json={"user_id": pupil_user.id})
    assert (r.status_code, r.json()) == (201, {"space": sid, "user_id": pupil_user.id, "role": "pupil_member"})
    back = await _welcome_where(pupil, lambda w: _space(w, sid) is not None, since=mark)
    assert _space(back, sid)["role"] == "pupil_member"
    assert _space(back, sid)["mailbox"]["channel"] == mailbox["channel"]  # the same mailbox ...
    assert _space(back, sid)["mailbox"]["unread"] == mailbox["unread"]  # ... as they left it
    threads = (await http.get(f"/api/spaces/{sid}/mail", headers=await _auth(http, pupil_user))).json()["threads"]
    assert [t["last"]["subject"] for t in threads] == ["Your river drawing"]
    history = (await http.get(f"/api/rooms/{world.rooms[Area.CHAT]}/messages", headers=admin)).json()["messages"]
    assert [(m["id"], m["author"]["id"]) for m in history if m["id"] == posted.data["id"]] == [
        (posted.data["id"], pupil_user.id)]
    await pupil.ok(Post(chat, "I am back"))
    await pupil.ok(Subscribe(mailbox["channel"], since=0))
    assert pupil_user.id not in [p["id"] for p in (await http.get(
        f"/api/spaces/{sid}/members/former", headers=admin)).json()["pupils"]]
    restored = [e for e in await _audit(http, admin, sid) if e["target_id"] == pupil_user.id
                and e["action"] in ("member.removed", "member.restored")]
    assert [(e["action"], e["actor_id"]) for e in restored] == [
        ("member.removed", world.users["teacher_admin"].id), ("member.restored", world.users["teacher_admin"].id)]


async def test_only_the_teachers_of_a_pupils_home_add_them_back(server, http, world, make_world, pool, password_hash):
    sid, pupil_user = world.space_id, world.users["pupil_member"]
    admin = await _auth(http, world.users["teacher_admin"])
    other = await make_world()
    removed_admin = await _removed_teacher_admin(http, pool, password_hash, world)
    # a removed adult and the pupil, both former members now
    for gone in (pupil_user, world.users["teacher_member"]):
        assert (await http.delete(f"/api/spaces/{sid}/members/{gone.id}", headers=admin)).status_code == 200
    url = f"/api/spaces/{sid}/members"
    for who in ("pupil_admin", "visitor", "moderator"):
        r = await http.post(url, headers=await _auth(http, world.users[who]), json={"user_id": pupil_user.id})
        assert _error(r)[:2] == (403, "forbidden"), who
    for user in (other.users["teacher_admin"], world.users["outsider"], removed_admin,
                 await _platform_admin(pool, password_hash)):
        r = await http.post(url, headers=await _auth(http, user), json={"user_id": pupil_user.id})
        assert _error(r) == (404, "not_found", f"there is no project {sid} in your projects"), user.username
    # Another project's teacher admin, into their own project; here, an adult who was a member, a
    # pupil of another project, and an id nobody has: all answer as no one.
    no_one = (404, "not_found", "no former pupil of this project has that id")
    other_admin = await _auth(http, other.users["teacher_admin"])
    r = await http.post(f"/api/spaces/{other.space_id}/members", headers=other_admin, json={"user_id": pupil_user.id})
    assert _error(r) == no_one
    for user_id in (world.users["teacher_member"].id, other.users["pupil_member"].id, NEVER):
        assert _error(await http.post(url, headers=admin, json={"user_id": user_id})) == no_one, user_id
    for body in ({}, {"user_id": "5"}, {"user_id": True}, {"user_id": pupil_user.id, "role": "teacher_member"},
                 {"user_id": pupil_user.id, "role": "boss"}):
        assert _error(await http.post(url, headers=admin, json=body))[:2] == (400, "invalid_field"), body
    assert await spaces.role_in(pool, sid, pupil_user.id) is None
    assert await spaces.role_in(pool, other.space_id, pupil_user.id) is None
    # nobody but its teachers sees whom they may add back
    for who in ("pupil_admin", "visitor", "moderator"):
        r = await http.get(f"/api/spaces/{sid}/members/former", headers=await _auth(http, world.users[who]))
        assert _error(r)[:2] == (403, "forbidden"), who
    r = await http.get(f"/api/spaces/{sid}/members/former", headers=other_admin)
    assert _error(r) == (404, "not_found", f"there is no project {sid} in your projects")

    # A teacher member adds a pupil back (as a pupil member only), and an existing member is a conflict.
    member = await _adult(pool, password_hash, "Luc Bernard")
    await spaces.set_member(pool, sid, member.id, Role.TEACHER_MEMBER.value)
    by_member = await _auth(http, member)
    r = await http.post(url, headers=by_member, json={"user_id": pupil_user.id, "role": "pupil_admin"})
    assert _error(r)[:2] == (403, "forbidden")
    r = await http.post(url, headers=by_member, json={"user_id": pupil_user.id})
    assert r.status_code == 201, r.text
    r = await http.post(url, headers=admin, json={"user_id": pupil_user.id, "role": "pupil_admin"})
    assert _error(r)[:2] == (409, "conflict")
    assert await spaces.role_in(pool, sid, pupil_user.id) == "pupil_member"


async def test_twenty_adds_back_at_once_make_one_membership(server, http, world, connect):
    sid, pupil_user = world.space_id, world.users["pupil_member"]
    admin = await _auth(http, world.users["teacher_admin"])
    assert (await http.delete(f"/api/spaces/{sid}/members/{pupil_user.id}", headers=admin)).status_code == 200
    answers = await asyncio.gather(*(
        http.post(f"/api/spaces/{sid}/members", headers=admin, json={"user_id": pupil_user.id}) for _ in range(20)))
    assert sorted(r.status_code for r in answers) == [201] + [409] * 19
    restored = [e for e in await _audit(http, admin, sid) if e["action"] == "member.restored"]
    assert [e["target_id"] for e in restored] == [pupil_user.id]
    members = (await http.get(f"/api/spaces/{sid}/members", headers=admin)).json()["members"]
    assert [m["role"] for m in members if m["id"] == pupil_user.id] == ["pupil_member"]
    feed = (await http.get(f"/api/spaces/{sid}/activity", headers=admin)).json()["activities"]
    assert [a["kind"] for a in feed if a["user"] and a["user"]["id"] == pupil_user.id] == [
        "member.joined", "member.removed", "member.joined"]


async def test_a_platform_moderator_placed_in_a_project_is_a_visitor_there_with_a_mailbox(
    server, http, world, connect, pool, password_hash,
):
    sid, moderator = world.space_id, world.users["moderator"]
    root = await _platform_admin(pool, password_hash)
    admin = await _auth(http, root)
    ta = await _auth(http, world.users["teacher_admin"])
    refused = await http.post(f"/api/admin/spaces/{sid}/moderators", headers=ta, json={"username": moderator.username})
    assert _error(refused)[:2] == (403, "forbidden")  # a project's teacher admins do not place staff
    socket = await connect(moderator)
    assert socket.welcome.spaces == []
    r = await http.post(f"/api/admin/spaces/{sid}/moderators", headers=admin, json={"username": moderator.username})
    assert (r.status_code, r.json()) == (201, {"space": sid, "user_id": moderator.id, "role": "visitor"})
    again = await http.post(f"/api/admin/spaces/{sid}/moderators", headers=admin, json={"username": moderator.username})
    assert _error(again)[:2] == (409, "conflict")
    joined = await _welcome_where(socket, lambda w: _space(w, sid) is not None)
    space = _space(joined, sid)
    assert space["role"] == "visitor" and space["mailbox"] is not None
    assert joined.user["platform_role"] == "moderator"  # still staff: every project's queue, every room
    await socket.ok(Subscribe(world.channel(Area.PUPILS_CORNER)))  # which a visitor could not read
    # Mail: to the project's teachers, never privately to a pupil.
    await socket.ok(SendMail(sid, (world.users["teacher_admin"].id,), "Can we talk?", subject="From staff"))
    to_pupil = await socket.error(SendMail(sid, (world.users["pupil_member"].id,), "Hello", subject="From staff"))
    assert to_pupil.code == "not_found"
    # The project's teacher admins may remove them, never make them anything else.
    r = await http.patch(f"/api/spaces/{sid}/members/{moderator.id}", headers=ta, json={"role": "teacher_member"})
    assert _error(r) == (403, "forbidden", "a platform moderator is a member of a project as a visitor only")
    entries = [(e["action"], e["actor_id"], e["target_id"]) for e in await _audit(http, ta, sid)]
    assert ("member.joined", root.id, moderator.id) in entries
    mark = len(socket.unsolicited)
    assert (await http.delete(f"/api/spaces/{sid}/members/{moderator.id}", headers=ta)).status_code == 200
    await _welcome_where(socket, lambda w: _space(w, sid) is None, since=mark)


async def test_a_projects_pending_invitations_are_listed_to_its_teacher_admins(
    server, http, world, pool, password_hash,
):
    sid = world.space_id
    ta = await _auth(http, world.users["teacher_admin"])
    url = f"/api/spaces/{sid}/invitations"
    waiting = await http.post(url, headers=ta, json={"username": world.users["outsider"].username, "role": "visitor"})
    code = await http.post(url, headers=ta, json={"role": "visitor", "label": "a parent"})
    withdrawn = await http.post(url, headers=ta, json={"username": (await _adult(pool, password_hash)).username,
                                                       "role": "teacher_member"})
    ids = [r.json()["invitation"]["id"] for r in (waiting, code, withdrawn)]
    assert (await http.delete(f"{url}/{ids[2]}", headers=ta)).status_code == 200
    pending = (await http.get(url, headers=ta, params={"status": "pending"})).json()
    assert [(i["id"], i["status"]) for i in pending["invitations"]] == [(ids[1], "pending"), (ids[0], "pending")]
    every = (await http.get(url, headers=ta)).json()
    assert [i["id"] for i in every["invitations"]] == ids[::-1]
    assert _error(await http.get(url, headers=ta, params={"status": "revoked"}))[:2] == (400, "invalid_field")
    for who in ("teacher_member", "pupil_member", "visitor", "moderator"):
        r = await http.get(url, headers=await _auth(http, world.users[who]), params={"status": "pending"})
        assert _error(r)[:2] == (403, "forbidden"), who
    removed = await _removed_teacher_admin(http, pool, password_hash, world)
    for user in (world.users["outsider"], removed, await _platform_admin(pool, password_hash)):
        r = await http.get(url, headers=await _auth(http, user), params={"status": "pending"})
        assert _error(r) == (404, "not_found", f"there is no project {sid} in your projects")


async def test_an_invitee_is_told_of_an_invitation_on_every_open_socket_and_nobody_else_is(
    server, http, world, connect,
):
    sid, guest = world.space_id, world.users["outsider"]
    ta = await _auth(http, world.users["teacher_admin"])
    tab1, tab2 = await connect(guest), await connect(guest)
    bystander = await connect(world.users["teacher_member"])
    url = f"/api/spaces/{sid}/invitations"

    def status(wanted: str, invitation_id: int):  # noqa: ANN202
        return lambda f: (f.invitation["id"], f.invitation["status"]) == (invitation_id, wanted)

    made = (await http.post(url, headers=ta, json={"username": guest.username, "role": "teacher_member",
                                                   "note": "welcome aboard"})).json()["invitation"]
    for tab in (tab1, tab2):
        told = (await _told(tab, InvitationNotice)).invitation
        assert told == made and (told["status"], told["note"], told["space"]["id"]) == ("pending", "welcome aboard", sid)
    assert (await http.delete(f"{url}/{made['id']}", headers=ta)).status_code == 200
    for tab in (tab1, tab2):
        await _told(tab, InvitationNotice, status("revoked", made["id"]))

    again = (await http.post(url, headers=ta, json={"username": guest.username, "role": "teacher_member"})).json()
    again_id = again["invitation"]["id"]
    for tab in (tab1, tab2):
        await _told(tab, InvitationNotice, status("pending", again_id))
    r = await http.post(f"/api/invitations/{again_id}/accept", headers=await _auth(http, guest))
    assert r.status_code == 200
    for tab in (tab1, tab2):  # answered from elsewhere: each tab shows it, and has the project
        await _told(tab, InvitationNotice, status("accepted", again_id))
        await _welcome_where(tab, lambda w: _space(w, sid) is not None)
    await http.post(url, headers=ta, json={"role": "visitor", "label": "by code: nobody to tell"})
    await tab1.ok(Subscribe(world.channel(Area.TEACHERS_ROOM)))  # a round trip: anything sent has arrived
    assert not [f for f in bystander.unsolicited if isinstance(f, InvitationNotice)]
    assert len([f for f in tab1.unsolicited if isinstance(f, InvitationNotice)]) == 4


# -- on every process ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def own_database(admin_url):
    """A database for this module's two processes: closing every project closes only its own."""
    name, url = await migrated_database(admin_url, "twinhub_projects")
    own = await create_pool(url, min_size=1, max_size=3)
    yield url, own
    await own.close()
    await drop_database(admin_url, name)


@pytest.fixture(scope="module")
async def pair(own_database, redis_url):
    url, _ = own_database
    prefix = f"twinhub-projects-{os.getpid()}-{secrets.token_hex(3)}"
    async with two_processes(url, redis_url, prefix) as processes:
        yield processes


async def _project(pool: asyncpg.Pool, password_hash: str) -> World:
    """A project as the platform makes it, with one member of each role (and an outsider and a
    moderator), in this module's own database."""
    tag = secrets.token_hex(4)
    made = await projects.create_project(pool, slug=f"p-{tag}", name=f"Project {tag}", description="",
                                         rooms=list(DEFAULT_ROOMS), admin=None, actor_id=None)
    users = {}
    for who in (*(r.value for r in Role if r not in (Role.MODERATOR, Role.BOT)), "outsider", "moderator"):
        users[who] = await accounts.create_user(
            pool, username=f"{who}-{tag}", display_name=who.replace("_", " ").title(), password_hash=password_hash,
            school="Lyon", platform_role="moderator" if who == "moderator" else None,
        )
        if who not in ("outsider", "moderator"):
            await spaces.set_member(pool, made.space.id, users[who].id, who)
    rooms = {Area(r.area): r.id for r in made.rooms if r.kind == "room"}
    return World(made.space.id, made.space.slug, users, rooms)


async def _socket(process: ServeProcess, http: httpx.AsyncClient, user: accounts.User) -> Client:
    return await Client.connect(process.ws, await login(http, user.username))


async def test_closing_every_project_at_once_reaches_every_members_socket_on_both_processes(
    pair, own_database, password_hash,
):
    a, b, on_a, on_b = pair
    _, own = own_database
    worlds = [await _project(own, password_hash) for _ in range(3)]
    already = await _project(own, password_hash)
    await spaces.set_closed(own, already.space_id, True, actor_id=None)
    open_before = {r["id"] for r in await own.fetch("SELECT id FROM spaces WHERE closed_at IS NULL")}
    assert {w.space_id for w in worlds} <= open_before and already.space_id not in open_before
    root = await _platform_admin(own, password_hash)
    sockets = []
    try:
        for w in worlds:  # a pupil of each project on A, its teacher member on B
            sockets.append((w, await _socket(a, on_a, w.users["pupil_member"])))
            sockets.append((w, await _socket(b, on_b, w.users["teacher_member"])))
        headers_a, headers_b = await _auth(on_a, root), await _auth(on_b, root)
        answers = await asyncio.gather(*(
            (on_a if i % 2 else on_b).post("/api/admin/spaces/close", headers=headers_a if i % 2 else headers_b)
            for i in range(20)))
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
        closed = [i for r in answers for i in r.json()["closed"]]
        assert sorted(closed) == sorted(open_before)  # each closed once, by one of the twenty
        assert sum(r.json()["count"] for r in answers) == len(open_before)
        for space_id in open_before:
            rows = await own.fetch("SELECT actor_id, details FROM audit_log WHERE space_id = $1"
                                   " AND action = 'space.close'", space_id)
            assert [(r["actor_id"], r["details"]) for r in rows] == [(root.id, '{"all": true}')]
        rows = await own.fetch("SELECT actor_id FROM audit_log WHERE space_id = $1 AND action = 'space.close'",
                               already.space_id)
        assert [r["actor_id"] for r in rows] == [None]  # closed before (above), and left as it was
        for w, client in sockets:
            await _welcome_where(client, lambda wel, sid=w.space_id: _space(wel, sid)["closed"] is True)
            assert (await client.error(Post(w.channel(Area.CHAT), "closed?"))).code == "space_closed"

        # A teacher admin reopens their own project (on A); its member's socket on B follows.
        w, on_b_member = worlds[0], sockets[1][1]
        mark = len(on_b_member.unsolicited)
        r = await on_a.post(f"/api/spaces/{w.space_id}/reopen", headers=await _auth(on_a, w.users["teacher_admin"]))
        assert r.json() == {"id": w.space_id, "closed": False}
        await _welcome_where(on_b_member, lambda wel: _space(wel, w.space_id)["closed"] is False, since=mark)
        await on_b_member.ok(Post(w.channel(Area.CHAT), "a new school year"))
    finally:
        for _, client in sockets:
            await client.close()


async def test_renames_made_on_a_reach_b_and_twenty_at_once_end_on_the_last_there(pair, own_database, password_hash):
    a, b, on_a, on_b = pair
    _, own = own_database
    w = await _project(own, password_hash)
    sid, room, channel = w.space_id, w.rooms[Area.ACTIVITIES], w.channel(Area.ACTIVITIES)
    pupil = await _socket(b, on_b, w.users["pupil_member"])
    try:
        await pupil.ok(Subscribe(channel))
        admin_a, admin_b = await _auth(on_a, w.users["teacher_admin"]), await _auth(on_b, w.users["teacher_admin"])
        r = await on_a.patch(f"/api/spaces/{sid}/rooms/{room}", headers=admin_a, json={"name": "Samples"})
        assert r.status_code == 200
        assert (await _told(pupil, RoomNotice)).room["name"] == "Samples"
        await _welcome_where(pupil, lambda wel: {r["id"]: r["name"] for r in _space(wel, sid)["rooms"]}[room]
                             == "Samples")

        answers = await asyncio.gather(*(
            (on_a if i % 2 else on_b).patch(f"/api/spaces/{sid}/rooms/{room}", headers=admin_a if i % 2 else admin_b,
                                            json={"name": f"Samples {i}"})
            for i in range(20)))
        assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
        last = (await spaces.get_room(own, room)).name
        assert await own.fetchval("SELECT count(*) FROM audit_log WHERE target_id = $1 AND action = 'room.rename'",
                                  room) == 21
        await _told(pupil, RoomNotice, lambda f: f.room["name"] == last)
        # Both processes keep the last name, not whichever of their reads came back last.
        for http in (on_a, on_b):
            me = (await http.get("/api/me", headers=await _auth(http, w.users["teacher_member"]))).json()
            assert {r["id"]: r["name"] for r in _space(me, sid)["rooms"]}[room] == last
    finally:
        await pupil.close()


async def test_an_invitation_made_on_a_is_told_to_the_invitees_socket_on_b(pair, own_database, password_hash):
    a, b, on_a, on_b = pair
    _, own = own_database
    w = await _project(own, password_hash)
    guest = await _socket(b, on_b, w.users["outsider"])
    try:
        ta = await _auth(on_a, w.users["teacher_admin"])
        r = await on_a.post(f"/api/spaces/{w.space_id}/invitations", headers=ta,
                            json={"username": w.users["outsider"].username, "role": "visitor"})
        assert r.status_code == 201, r.text
        told = await _told(guest, InvitationNotice)
        assert told.invitation == r.json()["invitation"]
        r = await on_a.delete(f"/api/spaces/{w.space_id}/invitations/{told.invitation['id']}", headers=ta)
        assert r.status_code == 200
        await _told(guest, InvitationNotice, lambda f: f.invitation["status"] == "revoked")
    finally:
        await guest.close()


async def test_a_pupil_added_back_on_a_is_back_on_their_socket_on_b(pair, own_database, password_hash):
    a, b, on_a, on_b = pair
    _, own = own_database
    w = await _project(own, password_hash)
    sid, pupil_user = w.space_id, w.users["pupil_member"]
    pupil = await _socket(b, on_b, pupil_user)
    try:
        ta = await _auth(on_a, w.users["teacher_admin"])
        assert (await on_a.delete(f"/api/spaces/{sid}/members/{pupil_user.id}", headers=ta)).status_code == 200
        ended = await _welcome_where(pupil, lambda wel: _space(wel, sid) is None)
        assert ended.spaces == []
        assert (await pupil.error(Post(w.channel(Area.CHAT), "gone?"))).code == "not_found"
        mark = len(pupil.unsolicited)
        r = await on_a.post(f"/api/spaces/{sid}/members", headers=ta, json={"user_id": pupil_user.id})
        assert r.status_code == 201, r.text
        await _welcome_where(pupil, lambda wel: _space(wel, sid) is not None, since=mark)
        await pupil.ok(Post(w.channel(Area.CHAT), "back, on b"))
    finally:
        await pupil.close()
