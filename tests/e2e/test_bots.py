"""Bots over real HTTP: a teacher admin creates a token for one project; it posts journal
entries there (idempotently), is refused everywhere else, and stops working once revoked."""

from __future__ import annotations

from protocol import Hello, Subscribe
from tests.client import Client
from tests.conftest import login


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def _bot(http, world, name: str = "Weather bot") -> dict:
    r = await http.post(f"/api/spaces/{world.space_id}/bots", headers=await _auth(http, world, "teacher_admin"),
                        json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_bot_posts_an_entry_once_and_it_arrives_live(world, http, connect):
    bot = await _bot(http, world)
    pupil = await connect(world.users["pupil_member"])
    [journal] = [r["channel"] for s in pupil.welcome.spaces for r in s["rooms"] if r["kind"] == "journal"]
    await pupil.ok(Subscribe(journal, since=0))
    headers = {"authorization": f"Bearer {bot['token']}", "idempotency-key": "reading-2026-11-22"}
    entry = {"title": "Rhône at Lyon", "text": "Flow: 620 m3/s, 9 °C", "links": ["https://hydro.example/rhone"]}
    first = await http.post(f"/api/spaces/{world.space_id}/journal", headers=headers, json=entry)
    again = await http.post(f"/api/spaces/{world.space_id}/journal", headers=headers, json=entry)
    assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
    assert again.json()["duplicate"] and again.json()["id"] == first.json()["id"]
    [event] = await pupil.wait_events(journal, 1)
    message = event.data["message"]
    assert (message["title"], message["author"]["name"]) == ("Rhône at Lyon", "Weather bot")
    assert message["links"] == ["https://hydro.example/rhone"]
    assert world.users["teacher_admin"].display_name in message["author"]["school"]  # who created the bot
    clash = await http.post(f"/api/spaces/{world.space_id}/journal", headers=headers,
                            json={"title": "Rhône at Lyon", "text": "a different reading"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"


async def test_a_bot_token_does_nothing_else(world, make_world, http, server):
    bot = await _bot(http, world)
    other = await make_world()
    bearer = {"authorization": f"Bearer {bot['token']}"}
    r = await http.post(f"/api/spaces/{other.space_id}/journal", headers=bearer, json={"title": "x", "text": "y"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    for method, path in (("GET", "/api/me"), ("GET", f"/api/spaces/{world.space_id}/activity"),
                         ("GET", f"/api/rooms/{world.rooms[next(iter(world.rooms))]}/messages")):
        r = await http.request(method, path, headers=bearer)
        assert r.status_code == 401, (path, r.text)
    client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
    reply = await client.request(Hello(token=bot["token"]))
    assert reply.type == "error" and reply.code == "unauthenticated"
    await client.close()


async def test_only_teacher_admins_manage_bots_and_revoking_stops_the_token(world, http):
    for who in ("teacher_member", "pupil_admin"):
        r = await http.post(f"/api/spaces/{world.space_id}/bots", headers=await _auth(http, world, who),
                            json={"name": "mine"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden"), who
    bot = await _bot(http, world)
    admin = await _auth(http, world, "teacher_admin")
    r = await http.delete(f"/api/spaces/{world.space_id}/bots/{bot['id']}", headers=admin)
    assert r.json() == {"id": bot["id"], "revoked": True}
    r = await http.post(f"/api/spaces/{world.space_id}/journal", headers={"authorization": f"Bearer {bot['token']}"},
                        json={"title": "x", "text": "y"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthenticated")
    forged = await http.post(f"/api/spaces/{world.space_id}/journal", headers={"authorization": "Bearer twb_forged"},
                             json={"title": "x", "text": "y"})
    assert forged.status_code == 401


async def test_bad_entries_and_the_bots_rate_limit(world, http):
    bot = await _bot(http, world)
    bearer = {"authorization": f"Bearer {bot['token']}"}
    url = f"/api/spaces/{world.space_id}/journal"
    for body, code in (({"text": "no title"}, "invalid_field"), ({"title": "t"}, "invalid_field"),
                       ({"title": "t", "text": "x" * 4001}, "too_large"), ({"title": 5, "text": "x"}, "invalid_field")):
        r = await http.post(url, headers=bearer, json=body)
        assert r.json()["error"]["code"] == code, (body, r.text)
    codes = [(await http.post(url, headers=bearer, json={"title": f"t{i}", "text": "x"})).status_code for i in range(12)]
    assert codes[:10] == [201] * 10 and 429 in codes[10:]


async def test_the_example_bot_posts_once_a_day(world, http, server):
    import asyncio
    import sys
    from pathlib import Path

    bot = await _bot(http, world, "Example bot")
    script = Path(__file__).resolve().parents[2] / "examples" / "journal_bot.py"
    argv = [sys.executable, str(script), "--url", f"http://127.0.0.1:{server.port}", "--space", str(world.space_id),
            "--token", bot["token"], "--title", "Rain", "--text", "12 mm today"]
    outputs = []
    for _ in range(2):
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        outputs.append(out.decode())
    assert outputs[0].startswith("posted: ") and outputs[1].startswith("already posted: ")


async def test_a_service_token_posts_activity_records_for_the_rest_of_the_space(world, http, connect):
    service = await _bot(http, world, "TwinSpace documents")  # a journal bot first: wrong scope below
    r = await http.post(f"/api/spaces/{world.space_id}/bots", headers=await _auth(http, world, "teacher_admin"),
                        json={"name": "TwinSpace pages", "scope": "activity"})
    assert r.status_code == 201 and r.json()["scope"] == "activity"
    pages = r.json()
    visitor = await connect(world.users["visitor"])
    pupil = await connect(world.users["pupil_member"])
    feed = f"feed:{world.space_id}"
    for c in (visitor, pupil):
        await c.ok(Subscribe(feed))
    url = f"/api/spaces/{world.space_id}/activity"
    headers = {"authorization": f"Bearer {pages['token']}", "idempotency-key": "doc-17"}
    record = {"kind": "document.added", "area": "activities", "title": "River map.pdf",
              "link": "https://twinspace.example/doc/17", "actor_id": world.users["teacher_member"].id}
    first = await http.post(url, headers=headers, json=record)
    again = await http.post(url, headers=headers, json=record)
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert again.json()["duplicate"] and again.json()["seq"] == first.json()["seq"]
    assert (await http.post(url, headers=headers, json={**record, "title": "other"})).status_code == 409
    secret = {**record, "area": "teachers_room", "title": "Marks.xlsx", "actor_id": None}
    assert (await http.post(url, headers={"authorization": f"Bearer {pages['token']}"}, json=secret)).status_code == 201
    [seen] = await visitor.wait_events(feed, 1)
    assert (seen.kind, seen.data["details"]["title"], seen.data["actor"]["id"]) == (
        "document.added", "River map.pdf", world.users["teacher_member"].id,
    )
    assert seen.data["details"]["link"] == "https://twinspace.example/doc/17"
    marker = {**record, "title": "after the teachers' file", "actor_id": None}
    assert (await http.post(url, headers={"authorization": f"Bearer {pages['token']}"}, json=marker)).status_code == 201
    got = await pupil.wait_events(feed, 2)
    assert [e.data["details"]["title"] for e in got] == ["River map.pdf", "after the teachers' file"]
    # Each token does its one thing only.
    wrong = await http.post(url, headers={"authorization": f"Bearer {service['token']}"}, json=record)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "forbidden")
    wrong = await http.post(f"/api/spaces/{world.space_id}/journal", headers={"authorization": f"Bearer {pages['token']}"},
                            json={"title": "x", "text": "y"})
    assert wrong.status_code == 403
    for bad in ({**record, "kind": "message.posted"}, {**record, "area": "mail"}, {**record, "link": "javascript:x"},
                {**record, "title": ""}):
        r = await http.post(url, headers={"authorization": f"Bearer {pages['token']}"}, json=bad)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field"), bad
