"""One rule for text size, over real sockets: a journal entry with every field at its character
limit, in the characters that cost the most bytes, is stored — from a member's socket in JSON and
in MessagePack, and from a bot over HTTP (docs/protocol.md, "Text size")."""

from __future__ import annotations

import json

import pytest

from protocol import Encoding, Post, Subscribe
from tests.conftest import login
from tests.protocol.test_limits import CONTROL, FOUR_BYTES, journal_entry_at_its_limits


def journal_of(client, world) -> str:
    [space] = [s for s in client.welcome.spaces if s["id"] == world.space_id]
    [room] = [r for r in space["rooms"] if r["kind"] == "journal"]
    return room["channel"]


@pytest.mark.parametrize("char", [CONTROL, FOUR_BYTES], ids=["control", "four_bytes"])
@pytest.mark.parametrize("encoding", list(Encoding), ids=lambda e: e.name)
async def test_a_journal_entry_at_every_field_limit_is_stored(char, encoding, world, connect):
    teacher = await connect(world.users["teacher_admin"], encoding)
    journal = journal_of(teacher, world)
    at_limits = journal_entry_at_its_limits(char)
    entry = Post(journal, at_limits.text, client_id=at_limits.client_id, title=at_limits.title, links=at_limits.links)
    reader = await connect(world.users["pupil_member"])
    await reader.ok(Subscribe(journal, since=0))
    ok = await teacher.ok(entry)
    [event] = [e for e in await reader.wait_events(journal, 1) if e.data["message"]["id"] == ok.data["id"]]
    message = event.data["message"]
    assert (message["text"], message["title"], tuple(message["links"])) == (entry.text, entry.title, entry.links)


async def test_a_bot_entry_at_every_field_limit_is_stored_over_http(world, http):
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    bot = (await http.post(f"/api/spaces/{world.space_id}/bots", headers=admin, json={"name": "Limits"})).json()
    at_limits = journal_entry_at_its_limits(FOUR_BYTES)
    body = {"title": at_limits.title, "text": at_limits.text, "links": list(at_limits.links)}
    # UTF-8 unescaped: httpx's json= would escape every emoji as two surrogates (12 bytes for 4).
    r = await http.post(
        f"/api/spaces/{world.space_id}/journal", content=json.dumps(body, ensure_ascii=False).encode(),
        headers={"authorization": f"Bearer {bot['token']}", "content-type": "application/json",
                 "idempotency-key": "k" * 64},
    )
    assert r.status_code == 201, r.text
