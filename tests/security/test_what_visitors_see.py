"""Issue 21, rule 10: a visitor (a parent) reading an activity room is not told which pupils are
there — not by presence lists, counts or changes, not by typing notices — on one process or
across two. Everyone else in the room sees who is there, each with the badge of their role.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from protocol import Presence, Subscribe, Typing, TypingNotice, Unsubscribe
from realtime.policy import Area
from tests.client import Client
from tests.conftest import login
from tests.processes import serving


def _ids_shown(client: Client, channel: str) -> set[int]:
    """Every user id a client was shown in `channel` by presence or typing."""
    shown: set[int] = set()
    for frame in client.unsolicited:
        if isinstance(frame, Presence) and frame.channel == channel:
            for card in (*(frame.members or ()), *(frame.joined or ()), *(frame.left or ())):
                shown.add(card["id"])
        elif isinstance(frame, TypingNotice) and frame.channel == channel:
            shown.add(frame.user["id"])
    return shown


async def _until_shown(client: Client, channel: str, user_id: int, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while user_id not in _ids_shown(client, channel):
        assert asyncio.get_running_loop().time() < deadline, f"{user_id} never shown on {channel}"
        await asyncio.sleep(0.05)


async def _scene(world, teacher: Client, visitor: Client, pupils: list[Client], admin: Client) -> None:
    """Pupils come into an activity room where a teacher and a visitor are, one types, then
    leaves; a teacher admin comes in after them."""
    room = world.channel(Area.ACTIVITIES)
    await teacher.ok(Subscribe(room))
    await visitor.ok(Subscribe(room))
    for pupil in pupils:
        await pupil.ok(Subscribe(room))
    pupil_ids = [world.users["pupil_member"].id, world.users["pupil_admin"].id]
    for pid in pupil_ids:
        await _until_shown(teacher, room, pid)
    await pupils[0].ok(Typing(room))
    typed = await teacher.next_frame(TypingNotice)
    assert typed.user == {"id": pupil_ids[0], "name": world.users["pupil_member"].display_name,
                          "school": world.users["pupil_member"].school, "role": "pupil"}
    await pupils[0].ok(Unsubscribe(room))
    await admin.ok(Subscribe(room))
    await _until_shown(visitor, room, world.users["teacher_admin"].id)  # the visitor hears adults come and go
    await _until_shown(teacher, room, world.users["teacher_admin"].id)
    await asyncio.sleep(1.5)  # a presence interval and more: a leak would have arrived by now
    shown = _ids_shown(visitor, room)
    assert not shown & set(pupil_ids), "a visitor was shown a pupil"
    assert shown == {world.users["teacher_member"].id, world.users["visitor"].id, world.users["teacher_admin"].id}
    counts = [f.count for f in visitor.unsolicited if isinstance(f, Presence) and f.channel == room]
    assert counts and max(counts) <= 3, counts  # counts leave the pupils out too: not even how many
    assert not [f for f in visitor.unsolicited if isinstance(f, TypingNotice)]
    badges = {card["id"]: card["role"] for f in visitor.unsolicited if isinstance(f, Presence)
              for card in (*(f.members or ()), *(f.joined or ()))}
    assert badges == {world.users["teacher_member"].id: "teacher", world.users["visitor"].id: "visitor",
                      world.users["teacher_admin"].id: "teacher"}
    everyone = {card["id"]: card["role"] for f in teacher.unsolicited if isinstance(f, Presence)
                for card in (*(f.members or ()), *(f.joined or ()))}
    assert everyone[pupil_ids[0]] == everyone[pupil_ids[1]] == "pupil"  # the others see pupils as pupils
    assert pupil_ids[0] in {c["id"] for f in teacher.unsolicited if isinstance(f, Presence) for c in f.left or ()}


async def test_a_visitor_is_never_shown_the_pupils_in_a_room(world, connect):
    """Threat: a parent (or someone posing as one) sitting in an activity room to learn the
    children's names and ids, or how many of them are online, from presence and typing."""
    teacher, visitor = await connect(world.users["teacher_member"]), await connect(world.users["visitor"])
    pupils = [await connect(world.users["pupil_member"]), await connect(world.users["pupil_admin"])]
    await _scene(world, teacher, visitor, pupils, await connect(world.users["teacher_admin"]))


@pytest.fixture(scope="module")
async def pair(database_url, redis_url):
    async with serving(database_url, redis_url, f"twinhub-presence-{os.getpid()}") as (a, b):
        yield a, b


async def test_a_visitor_on_another_process_is_never_shown_the_pupils_either(pair, world):
    """The same scene with the pupils on process A and the visitor and the teacher on B: presence
    and typing cross the bus with each card's badge, and B filters them for its visitor."""
    a, b = pair
    clients: dict[str, Client] = {}
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as on_a, httpx.AsyncClient(base_url=b.url, timeout=30) as on_b:
        for who, process, http in (("teacher_member", b, on_b), ("visitor", b, on_b), ("pupil_member", a, on_a),
                                   ("pupil_admin", a, on_a), ("teacher_admin", a, on_a)):
            token = await login(http, world.users[who].username)
            clients[who] = await Client.connect(f"ws://127.0.0.1:{process.port}/ws", token)
    try:
        await _scene(world, clients["teacher_member"], clients["visitor"],
                     [clients["pupil_member"], clients["pupil_admin"]], clients["teacher_admin"])
    finally:
        for client in clients.values():
            await client.close()


def _anonymous_pupil(world, who: str) -> dict:
    return {"id": None, "name": None, "school": world.users[who].school, "role": "pupil"}


async def test_authors_carry_their_badge_and_a_visitor_reads_pupils_work_without_their_names(world, connect, http):
    """Threat: a parent collecting the children's names and ids from their work — the activity
    rooms and the journal a visitor may read, live, replayed, paged over HTTP, or from the feed.
    A visitor sees a pupil's message as the public does, "a pupil of <school>"; teachers and
    pupils see its author, every author with the badge of their role (rule 4)."""
    from protocol import Post

    room, feed = world.channel(Area.ACTIVITIES), f"feed:{world.space_id}"
    visitor, teacher = await connect(world.users["visitor"]), await connect(world.users["teacher_member"])
    pupil = await connect(world.users["pupil_member"])
    for client in (visitor, teacher):
        await client.ok(Subscribe(room))
        await client.ok(Subscribe(feed))
    by_pupil = await pupil.ok(Post(room, "Our river is 312 km long"))
    by_teacher = await teacher.ok(Post(room, "Well measured!"))
    full = {"id": world.users["pupil_member"].id, "name": world.users["pupil_member"].display_name,
            "school": world.users["pupil_member"].school, "role": "pupil"}
    teacher_card = {"id": world.users["teacher_member"].id, "name": world.users["teacher_member"].display_name,
                    "school": world.users["teacher_member"].school, "role": "teacher"}

    def authors(events) -> list[dict]:
        return [e.data["message"]["author"] for e in events]

    assert authors(await teacher.wait_events(room, 2)) == [full, teacher_card]
    assert authors(await visitor.wait_events(room, 2)) == [_anonymous_pupil(world, "pupil_member"), teacher_card]
    [record] = [e for e in await teacher.wait_events(feed, 2) if e.data["message_id"] == by_pupil.data["id"]]
    assert record.data["actor"]["id"] == full["id"] and record.data["actor"]["role"] == "pupil_member"
    [record] = [e for e in await visitor.wait_events(feed, 2) if e.data["message_id"] == by_pupil.data["id"]]
    assert record.data["actor"] == _anonymous_pupil(world, "pupil_member")

    # Replayed on a new socket, and paged over HTTP: the same.
    late = await connect(world.users["visitor"])
    await late.ok(Subscribe(room, since=0))
    assert authors(await late.wait_events(room, 2)) == [_anonymous_pupil(world, "pupil_member"), teacher_card]
    await late.ok(Subscribe(feed, since=0))
    replayed = [e for e in await late.wait_events(feed, 2) if e.data["message_id"] == by_pupil.data["id"]]
    assert [e.data["actor"] for e in replayed] == [_anonymous_pupil(world, "pupil_member")]
    token = await login(http, world.users["visitor"].username)
    auth = {"Authorization": f"Bearer {token}"}
    page = (await http.get(f"/api/rooms/{world.rooms[Area.ACTIVITIES]}/messages", headers=auth)).json()
    listed = {m["id"]: m["author"] for m in page["messages"]}
    assert listed == {by_pupil.data["id"]: _anonymous_pupil(world, "pupil_member"), by_teacher.data["id"]: teacher_card}
    records = (await http.get(f"/api/spaces/{world.space_id}/activity", headers=auth)).json()["activities"]
    assert [r["actor"] for r in records if r["message_id"] == by_pupil.data["id"]] == [
        _anonymous_pupil(world, "pupil_member")]
    assert str(full["id"]) not in {str(r["actor"]["id"]) for r in records if r["actor"]}
    # A teacher over HTTP sees the pupil, with the badge.
    teacher_auth = {"Authorization": f"Bearer {await login(http, world.users['teacher_member'].username)}"}
    page = (await http.get(f"/api/rooms/{world.rooms[Area.ACTIVITIES]}/messages", headers=teacher_auth)).json()
    assert {m["id"]: m["author"] for m in page["messages"]}[by_pupil.data["id"]] == full


async def test_a_visitor_on_another_process_reads_pupils_work_without_their_names(pair, world):
    """The hub of every process makes pupils anonymous for its own visitors."""
    from protocol import Post

    a, b = pair
    room = world.channel(Area.ACTIVITIES)
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as on_a, httpx.AsyncClient(base_url=b.url, timeout=30) as on_b:
        pupil = await Client.connect(a.ws, await login(on_a, world.users["pupil_admin"].username))
        visitor = await Client.connect(b.ws, await login(on_b, world.users["visitor"].username))
    try:
        await visitor.ok(Subscribe(room))
        await pupil.ok(Post(room, "Photos of the bridge"))
        [event] = await visitor.wait_events(room, 1)
        assert event.data["message"]["author"] == _anonymous_pupil(world, "pupil_admin")
    finally:
        await pupil.close()
        await visitor.close()
