"""The public view over real HTTP, without login: name, description and journal, never a
pupil's name; nothing else; off for a new project until a teacher admin turns it on, however the
project was made; and it can be turned off again, by them or by an operator for every project."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys

import httpx
import pytest

from protocol import Hide, Post
from realtime.policy import Area
from storage import accounts, spaces
from tests.conftest import PASSWORD, login, public_view_on
from tests.processes import twinhub_cli


@pytest.fixture
async def world(make_world, pool):
    """The tests' project, its public view turned on by its teacher admin (a new project's is
    off: test_a_new_projects_public_view_is_off_however_it_was_made)."""
    made = await make_world()
    await public_view_on(pool, made)
    return made


async def _not_public(http, slug: str) -> None:
    r = await http.get(f"/api/public/{slug}")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found"), r.text
    assert (await http.get(f"/api/public/{slug}/events")).status_code == 404


async def test_a_new_projects_public_view_is_off_however_it_was_made(
    make_world, server, http, pool, password_hash, database_url,
):
    """On a platform for children a pupil's comment must not reach the open internet before a
    teacher admin chose that it may: a project made by the platform route, by the command line
    or in storage answers 404 `not_found` on the public routes — like a project that does not
    exist — until a teacher admin turns its public view on."""
    tag = secrets.token_hex(4)
    root = await accounts.create_user(pool, username=f"root-{tag}", display_name="Platform Admin",
                                      password_hash=password_hash, platform_role="admin")
    teacher = await accounts.create_user(pool, username=f"adult-{tag}", display_name="Claire Martin",
                                         password_hash=password_hash, school="Lyon")
    r = await http.post("/api/admin/spaces", json={"slug": f"api-{tag}", "name": "River", "admin": teacher.username},
                        headers={"authorization": f"Bearer {await login(http, root.username)}"})
    assert r.status_code == 201, r.text
    assert r.json()["space"]["public"] is False
    await _not_public(http, f"api-{tag}")
    out = await asyncio.to_thread(twinhub_cli, database_url, "admin", "create-space", "--slug", f"cli-{tag}", "--name", "River")
    assert "created" in out
    await _not_public(http, f"cli-{tag}")
    stored = await make_world()
    await _not_public(http, stored.slug)

    # Its teacher admin turns it on: then, and only then, anyone reads it.
    admin = {"authorization": f"Bearer {await login(http, teacher.username, PASSWORD)}"}
    sid = r.json()["space"]["id"]
    assert (await http.post(f"/api/spaces/{sid}/public", headers=admin, json={"public": True})).json()["public"] is True
    assert (await http.get(f"/api/public/api-{tag}")).status_code == 200
    entries = (await http.get(f"/api/spaces/{sid}/audit", headers=admin, params={"action": "space.public_on"})).json()
    assert [(e["actor_id"], e["action"]) for e in entries["entries"]] == [(teacher.id, "space.public_on")]


async def test_an_operator_turns_the_public_view_off_for_one_project_or_for_all(world, http, database_url, pool):
    """`twinhub admin public-view`: --space <slug> (off, or --on), --all (off only: turning a
    project's on is its teacher admins' choice). Each change is in the project's audit log."""
    other = (await spaces.create_space(pool, slug=f"q-{secrets.token_hex(4)}", name="Other", public=True)).slug
    assert (await http.get(f"/api/public/{world.slug}")).status_code == 200
    out = await asyncio.to_thread(twinhub_cli, database_url, "admin", "public-view", "--space", world.slug)
    assert "is off (1 changed)" in out
    await _not_public(http, world.slug)
    assert (await http.get(f"/api/public/{other}")).status_code == 200  # one project only
    await asyncio.to_thread(twinhub_cli, database_url, "admin", "public-view", "--space", world.slug, "--on")
    assert (await http.get(f"/api/public/{world.slug}")).status_code == 200
    out = await asyncio.to_thread(twinhub_cli, database_url, "admin", "public-view", "--all")
    assert "every project's public view is off" in out
    for slug in (world.slug, other):
        await _not_public(http, slug)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "realtime", "admin", "public-view", "--all",
                                                    "--on", "--database-url", database_url],
                                   capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0 and "--all only turns public views off" in done.stderr
    await _not_public(http, world.slug)
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    log = (await http.get(f"/api/spaces/{world.space_id}/audit", headers=admin)).json()["entries"]
    assert [(e["action"], e["actor_id"], e["details"]) for e in log if e["action"].startswith("space.public")][:4] == [
        ("space.public_off", None, {"all": True}), ("space.public_on", None, {}), ("space.public_off", None, {}),
        ("space.public_on", world.users["teacher_admin"].id, {}),
    ]


def journal_of(client, world) -> str:
    [space] = [s for s in client.welcome.spaces if s["id"] == world.space_id]
    return next(r["channel"] for r in space["rooms"] if r["kind"] == "journal")


async def test_the_public_page_shows_the_journal_and_no_pupil_name(world, connect, http):
    teacher = await connect(world.users["teacher_admin"])
    pupil = await connect(world.users["pupil_member"])
    visitor = await connect(world.users["visitor"])
    journal = journal_of(teacher, world)
    entry = await teacher.ok(Post(journal, "Our river in November.", title="Week 5"))
    await pupil.ok(Post(journal, "I took the photos!", parent=entry.data["id"]))
    await visitor.ok(Post(journal, "Lovely work", parent=entry.data["id"]))
    rude = await pupil.ok(Post(journal, "something rude", parent=entry.data["id"]))
    await teacher.ok(Hide(journal, rude.data["id"]))
    await pupil.ok(Post(world.channel(Area.PUPILS_CORNER), "corner talk, never public"))

    r = await http.get(f"/api/public/{world.slug}")  # no token, no cookie
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["name"] == f"Project {world.slug[2:]}" and page["slug"] == world.slug
    texts = [m["text"] for m in page["journal"]]
    assert texts == ["Lovely work", "I took the photos!", "Our river in November."]  # newest first, no hidden one
    by_text = {m["text"]: m["author"] for m in page["journal"]}
    admin = world.users["teacher_admin"]
    assert by_text["Our river in November."] == {"name": admin.display_name, "school": admin.school, "badge": "teacher"}
    school = world.users["pupil_member"].school
    assert by_text["I took the photos!"] == {"name": None, "label": f"a pupil of {school}", "school": school,
                                             "badge": "pupil"}
    assert by_text["Lovely work"] == {"name": None, "label": "a member of the project", "badge": None}
    for secret in (world.users["pupil_member"].display_name, world.users["pupil_member"].username,
                   world.users["visitor"].display_name, "corner talk", "something rude"):
        assert secret not in r.text


async def test_a_teacher_admin_turns_the_public_view_off(world, http):
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    assert (await http.get(f"/api/public/{world.slug}")).status_code == 200  # turned on (the fixture)
    member = {"authorization": f"Bearer {await login(http, world.users['teacher_member'].username)}"}
    r = await http.post(f"/api/spaces/{world.space_id}/public", headers=member, json={"public": False})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": False})
    assert r.json()["public"] is False
    off = await http.get(f"/api/public/{world.slug}")
    unknown = await http.get("/api/public/no-such-project")
    assert off.status_code == unknown.status_code == 404  # off answers like a project that does not exist
    assert off.json()["error"]["code"] == "not_found"
    await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": True})
    assert (await http.get(f"/api/public/{world.slug}")).status_code == 200


async def test_anonymous_requests_reach_nothing_else(world, http):
    for path in ("/api/me", f"/api/spaces/{world.space_id}/activity", f"/api/spaces/{world.space_id}/mail",
                 f"/api/rooms/{world.rooms[Area.HOME]}/messages"):
        assert (await http.get(path)).status_code == 401, path
    assert (await http.get("/api/public/../../etc/passwd")).status_code == 404


class SseReader:
    """Reads a text/event-stream response into (id, event, data) tuples."""

    def __init__(self, response) -> None:
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 5.0):
        async def read():
            fields: dict[str, str] = {}
            async for line in self.lines:
                if not line:
                    if "data" in fields:
                        return int(fields["id"]), fields["event"], json.loads(fields["data"])
                    fields = {}
                    continue
                name, _, value = line.partition(":")
                if name:  # a line starting with ':' is a comment (keep-alive)
                    fields[name] = value.lstrip(" ")
            raise AssertionError("the stream ended")

        return await asyncio.wait_for(read(), timeout)


async def test_the_journal_live_for_anonymous_viewers_with_resume(world, connect, server):
    teacher = await connect(world.users["teacher_admin"])
    pupil = await connect(world.users["pupil_member"])
    journal = journal_of(teacher, world)
    first = await teacher.ok(Post(journal, "Before anyone watched.", title="Week 6"))
    url = f"http://127.0.0.1:{server.port}/api/public/{world.slug}/events"
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream("GET", url) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = SseReader(r)
        seq, kind, data = await events.next()  # the replay
        assert (kind, data["message"]["title"]) == ("message.posted", "Week 6")
        comment = await pupil.ok(Post(journal, "Photos from Kraków", parent=first.data["id"]))
        seq2, _, data = await events.next()  # live
        assert seq2 == seq + 1 and data["message"]["text"] == "Photos from Kraków"
        school = world.users["pupil_member"].school
        assert data["message"]["author"] == {"name": None, "label": f"a pupil of {school}", "school": school,
                                             "badge": "pupil"}
        await teacher.ok(Hide(journal, comment.data["id"]))
        _, kind, data = await events.next()
        assert kind == "message.hidden" and data["message"]["text"] is None
    await teacher.ok(Post(journal, "While nobody watched.", title="Week 7"))
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream(
        "GET", url, headers={"Last-Event-ID": str(seq2 + 1)}
    ) as r:
        _, _, data = await SseReader(r).next()  # only what was missed
        assert data["message"]["title"] == "Week 7"


async def test_a_replay_sends_each_message_once_in_its_current_state(world, connect, server):
    """Threat: a stranger replaying a journal whose entries were edited a hundred times to make
    the server send every edit. Each message is sent once, as it is now."""
    from protocol import Edit

    teacher = await connect(world.users["teacher_admin"])
    journal = journal_of(teacher, world)
    entry = await teacher.ok(Post(journal, "draft 0", title="Week 10"))
    for i in range(1, 6):
        await teacher.ok(Edit(journal, entry.data["id"], f"draft {i}"))
    url = f"http://127.0.0.1:{server.port}/api/public/{world.slug}/events"
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream("GET", url) as r:
        events = SseReader(r)
        seq, kind, data = await events.next()
        assert (data["message"]["id"], data["message"]["text"]) == (entry.data["id"], "draft 5")
        await teacher.ok(Post(journal, "live", title="Week 11"))
        _, _, data = await events.next()
        assert data["message"]["text"] == "live"  # nothing of the five edits came in between


async def test_a_replay_of_more_than_200_events_says_reload(world, connect, server):
    teacher = await connect(world.users["teacher_admin"])
    journal = journal_of(teacher, world)
    await asyncio.gather(*(teacher.ok(Post(journal, f"entry {i}", title=f"T{i}")) for i in range(201)))
    url = f"http://127.0.0.1:{server.port}/api/public/{world.slug}/events"
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream("GET", url) as r:
        events = SseReader(r)
        seq, kind, data = await events.next()
        assert kind == "reload" and data == {"seq": seq}
        await teacher.ok(Post(journal, "after the reload", title="Live"))
        seq2, kind, data = await events.next()  # then live, nothing replayed
        assert kind == "message.posted" and data["message"]["text"] == "after the reload" and seq2 == seq + 1


async def test_an_address_holds_a_bounded_number_of_public_streams(world, server):
    """Threat: a stranger opening thousands of anonymous streams, each holding a queue."""
    from realtime.web.public_stream import MAX_STREAMS_PER_ADDRESS

    url = f"http://127.0.0.1:{server.port}/api/public/{world.slug}/events"
    one = {"X-Forwarded-For": "2001:db8:5e:1::1"}  # through the trusted proxy: one /64
    async with contextlib.AsyncExitStack() as stack:
        anonymous = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        readers = []  # kept: dropping a line iterator closes its stream
        for i in range(MAX_STREAMS_PER_ADDRESS):
            r = await stack.enter_async_context(anonymous.stream(
                "GET", url, headers={"X-Forwarded-For": f"2001:db8:5e:1::{i + 1:x}"}))
            assert r.status_code == 200
            readers.append(r.aiter_lines())
            await readers[-1].__anext__()  # the stream has started (its retry line)
        refused = await anonymous.get(url, headers=one)
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
        other = await stack.enter_async_context(anonymous.stream(
            "GET", url, headers={"X-Forwarded-For": "2001:db8:5e:2::1"}))
        assert other.status_code == 200
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream("GET", url, headers=one) as r:
        assert r.status_code == 200  # the closed ones gave their places back


async def test_an_anonymous_viewer_breaks_neither_presence_nor_typing_in_the_journal(world, connect, server):
    """Issue 22, point 1: the public stream follows the journal's channel, where members' presence
    and typing go too; they are not for the public, and must not fail for the members."""
    from protocol import Presence, Subscribe, Typing, TypingNotice

    teacher, other = await connect(world.users["teacher_admin"]), await connect(world.users["teacher_member"])
    journal = journal_of(teacher, world)
    url = f"http://127.0.0.1:{server.port}/api/public/{world.slug}/events"
    await teacher.ok(Post(journal, "Before the viewer came", title="Week 8"))
    async with httpx.AsyncClient(timeout=10) as anonymous, anonymous.stream("GET", url) as r:
        events = SseReader(r)
        _, _, data = await events.next()  # the viewer is in: its relay follows the journal's channel
        assert data["message"]["title"] == "Week 8"
        await other.ok(Subscribe(journal))
        await teacher.ok(Subscribe(journal))
        assert (await teacher.request(Typing(journal))).type == "ok"  # not `internal`
        assert (await other.next_frame(TypingNotice)).user["id"] == world.users["teacher_admin"].id
        deadline = asyncio.get_running_loop().time() + 5
        while not any(isinstance(f, Presence) and world.users["teacher_admin"].id in {m["id"] for m in (*(f.joined or ()), *(f.members or ()))}
                      for f in other.unsolicited):  # the presence flush went through
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        await teacher.ok(Post(journal, "Seen by the public", title="Week 9"))
        _, kind, data = await events.next()
        assert kind == "message.posted" and data["message"]["title"] == "Week 9"  # only events, in order
