"""Live chat through real sockets against a real server and a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from protocol import (
    Delete,
    Edit,
    Encoding,
    Error,
    Event,
    Hide,
    Post,
    Presence,
    Subscribe,
    Typing,
    TypingNotice,
    Unsubscribe,
)
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import RunningServer
from realtime.ws.connection import FLUSH_CHUNK
from tests.client import Client
from tests.conftest import login


async def test_teacher_and_pupil_chat_live(world, connect):
    teacher = await connect(world.users["teacher_admin"])
    pupil = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    await teacher.ok(Subscribe(chat))
    await pupil.ok(Subscribe(chat))

    ok = await pupil.ok(Post(chat, "Bonjour from Kraków!"))
    assert ok.data["seq"] == 1 and ok.data["duplicate"] is False

    [event] = await teacher.wait_events(chat, 1)
    message = event.data["message"]
    assert event.kind == "message.posted" and event.seq == 1
    assert message["text"] == "Bonjour from Kraków!" and message["author"]["id"] == world.users["pupil_member"].id
    assert message["id"] == ok.data["id"]


async def test_messagepack_and_json_clients_see_the_same_event(world, connect):
    a = await connect(world.users["pupil_member"], Encoding.MSGPACK)
    b = await connect(world.users["pupil_admin"], Encoding.JSON)
    chat = world.channel(Area.CHAT)
    await a.ok(Subscribe(chat))
    await b.ok(Subscribe(chat))
    await b.ok(Post(chat, "é ü ł — emoji 🌊"))
    [ea] = await a.wait_events(chat, 1)
    [eb] = await b.wait_events(chat, 1)
    assert ea == eb
    assert ea.data["message"]["text"] == "é ü ł — emoji 🌊"


async def test_teacher_admin_hides_a_pupils_message_for_everyone(world, connect):
    pupil = await connect(world.users["pupil_member"])
    other = await connect(world.users["pupil_admin"])
    admin = await connect(world.users["teacher_admin"])
    corner = world.channel(Area.PUPILS_CORNER)
    for c in (pupil, other, admin):
        await c.ok(Subscribe(corner))
    posted = await pupil.ok(Post(corner, "something hurtful"))

    hidden = await admin.ok(Hide(corner, posted.data["id"], reason="unkind"))
    assert hidden.data["seq"] == 2

    events = await other.wait_events(corner, 2)
    assert events[1].kind == "message.hidden"
    assert events[1].data["message"]["text"] is None and events[1].data["message"]["state"] == "hidden"


async def test_pupil_cannot_hide(world, connect):
    pupil = await connect(world.users["pupil_member"])
    corner = world.channel(Area.PUPILS_CORNER)
    posted = await pupil.ok(Post(corner, "mine"))
    err = await pupil.error(Hide(corner, posted.data["id"]))
    assert err.code == "forbidden"


async def test_edit_and_delete_own_message(world, connect):
    pupil = await connect(world.users["pupil_member"])
    watcher = await connect(world.users["teacher_member"])
    chat = world.channel(Area.CHAT)
    await watcher.ok(Subscribe(chat))
    posted = await pupil.ok(Post(chat, "helo"))
    await pupil.ok(Edit(chat, posted.data["id"], "hello"))
    await pupil.ok(Delete(chat, posted.data["id"]))
    events = await watcher.wait_events(chat, 3)
    assert [e.kind for e in events] == ["message.posted", "message.edited", "message.deleted"]
    assert events[1].data["message"]["text"] == "hello" and events[1].data["message"]["edited_at"]
    assert events[2].data["message"]["text"] is None


async def test_nobody_edits_or_deletes_someone_elses_message(world, connect):
    author = await connect(world.users["pupil_member"])
    admin = await connect(world.users["teacher_admin"])
    teacher = await connect(world.users["teacher_member"])  # does not moderate the chat
    chat = world.channel(Area.CHAT)
    posted = await author.ok(Post(chat, "my words"))
    for client, frame in ((admin, Edit(chat, posted.data["id"], "your words")), (teacher, Delete(chat, posted.data["id"]))):
        err = await client.error(frame)
        assert err.code == "not_found"  # like a message that does not exist: nothing revealed
    missing = await author.error(Edit(chat, 10**12, "x"))
    assert missing.code == "not_found"


async def test_retry_with_same_client_id_posts_once(world, connect, server):
    pupil = await connect(world.users["pupil_member"])
    watcher = await connect(world.users["pupil_admin"])
    chat = world.channel(Area.CHAT)
    await watcher.ok(Subscribe(chat))
    first = await pupil.ok(Post(chat, "only once", client_id="retry-1"))
    again = await pupil.ok(Post(chat, "only once", client_id="retry-1"))
    assert again.data["duplicate"] is True
    assert (again.data["seq"], again.data["id"]) == (first.data["seq"], first.data["id"])
    # concurrent retries (a client resending on a flaky network) also store one message
    futures = [pupil.send(Post(chat, "burst", client_id="retry-2", ref=f"r{i}")) for i in range(10)]
    replies = await asyncio.gather(*futures)
    assert len({r.data["id"] for r in replies}) == 1
    assert sum(not r.data["duplicate"] for r in replies) == 1
    await watcher.wait_events(chat, 2)
    await asyncio.sleep(0.2)  # bounded: give a wrongly doubled event time to show up
    assert len(watcher.events[chat]) == 2


async def test_typing_reaches_others_not_the_typist(world, connect):
    a = await connect(world.users["pupil_member"])
    b = await connect(world.users["pupil_admin"])
    chat = world.channel(Area.CHAT)
    await a.ok(Subscribe(chat))
    await b.ok(Subscribe(chat))
    await a.ok(Typing(chat))
    notice = await b.next_frame(TypingNotice)
    assert notice.user["id"] == world.users["pupil_member"].id
    assert not any(isinstance(f, TypingNotice) for f in a.unsolicited)


async def test_presence_lists_who_is_in_the_room(world, connect):
    a = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    await a.ok(Subscribe(chat))
    first = await a.next_frame(Presence)
    assert [m["id"] for m in first.members] == [world.users["pupil_member"].id]
    b = await connect(world.users["teacher_member"])
    await b.ok(Subscribe(chat))

    async def joined() -> Presence:
        while True:
            p = await a.next_frame(Presence, timeout=3)
            if p.joined and any(m["id"] == world.users["teacher_member"].id for m in p.joined):
                return p

    await joined()
    await b.ok(Unsubscribe(chat))
    while True:
        p = await a.next_frame(Presence, timeout=3)
        if p.left and p.left[0]["id"] == world.users["teacher_member"].id:
            break


async def test_closed_project_is_read_only_until_reopened(world, connect, http):
    from tests.conftest import login

    pupil = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    await pupil.ok(Post(chat, "before closing"))
    admin_token = await login(http, world.users["teacher_admin"].username)
    member_token = await login(http, world.users["teacher_member"].username)
    headers = {"Authorization": f"Bearer {member_token}"}
    refused = await http.post(f"/api/spaces/{world.space_id}/close", headers=headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"

    headers = {"Authorization": f"Bearer {admin_token}"}
    closed = await http.post(f"/api/spaces/{world.space_id}/close", headers=headers)
    assert closed.status_code == 200 and closed.json()["closed"] is True

    async def post_code() -> str:
        reply = await pupil.request(Post(chat, "after closing"))
        return reply.code if isinstance(reply, Error) else "ok"

    for _ in range(50):  # the close reaches the session through the bus: bounded wait
        if await post_code() == "space_closed":
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("posting in a closed project was never refused")
    ok = await pupil.ok(Subscribe(chat, since=0))  # reading still works
    assert ok.data["replayed"] >= 1

    reopened = await http.post(f"/api/spaces/{world.space_id}/reopen", headers=headers)
    assert reopened.json()["closed"] is False
    for _ in range(50):
        if await post_code() == "ok":
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the reopened project stayed read-only")


@pytest.mark.parametrize("encoding", [Encoding.JSON, Encoding.MSGPACK])
async def test_with_permessage_deflate_every_event_arrives_compressed_and_in_order(database_url, world, http, encoding):
    """TWINHUB_WS_DEFLATE=1: single events and batches (a burst of 300 posts) both go through
    the compressing path; nothing is lost or reordered."""
    settings = Settings(database_url=database_url, port=0, post_rate=10_000.0, post_burst=10_000, ws_deflate=True,
                        log_level="warning")
    server = RunningServer(settings)
    await server.start()
    url = f"ws://127.0.0.1:{server.port}/ws"
    chat = world.channel(Area.CHAT)
    try:
        reader = await Client.connect(url, await login(http, world.users["teacher_member"].username), encoding)
        writer = await Client.connect(url, await login(http, world.users["pupil_member"].username), encoding)
        assert reader.ws.protocol.extensions, "the client and server did not agree on permessage-deflate"
        head = (await reader.ok(Subscribe(chat))).data["head"]
        await writer.ok(Post(chat, "one alone"))
        [alone] = await reader.wait_events(chat, 1)
        assert alone.seq == head + 1 and alone.data["message"]["text"] == "one alone"
        answers = await asyncio.gather(*(writer.request(Post(chat, f"burst {i}")) for i in range(300)))
        assert all(a.data["seq"] for a in answers)
        burst = (await reader.wait_events(chat, 301, timeout=20))[1:]
        assert [e.seq for e in burst] == list(range(head + 2, head + 302))
        assert reader.messages < 302  # some events came batched
        assert sorted(e.data["message"]["text"] for e in burst) == sorted(f"burst {i}" for i in range(300))
        await reader.close()
        await writer.close()
    finally:
        await server.stop()


async def test_a_burst_goes_out_batched_and_a_lone_post_alone(world, connect):
    """Adaptive batching: a lone event is a message of its own (written at once); a burst — a
    group commit of 300 posts — reaches a reader in far fewer messages than events, in order."""
    reader = await connect(world.users["teacher_member"])
    writer = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    head = (await reader.ok(Subscribe(chat))).data["head"]
    before = reader.messages
    await writer.ok(Post(chat, "alone"))
    await reader.wait_events(chat, 1)
    assert reader.messages == before + 1
    await asyncio.gather(*(writer.request(Post(chat, f"burst {i}")) for i in range(300)))
    events = await reader.wait_events(chat, 301, timeout=20)
    assert [e.seq for e in events] == list(range(head + 1, head + 302))
    assert reader.messages - before < 150


async def test_what_one_turn_of_the_loop_delivers_reaches_each_reader_as_one_message(world, connect, server):
    """Events the hub gets in one turn of the event loop (a group commit's burst, a batch read
    from Redis) reach every reader that keeps up as one message, in order, in either encoding;
    the next turn's events as the next message."""
    chat = world.channel(Area.CHAT)
    readers = [
        await connect(world.users["teacher_member"]),
        await connect(world.users["pupil_member"], Encoding.MSGPACK),
        await connect(world.users["pupil_admin"]),
    ]
    heads = {(await r.ok(Subscribe(chat))).data["head"] for r in readers}
    assert len(heads) == 1
    head = heads.pop()
    hub = server.app.state.services.hub
    for seq in range(head + 1, head + 41):  # one turn: no await in between
        hub.publish(Event(chat, seq, "message.posted", {"message": {"id": seq, "text": f"event {seq}"}}))
    for reader in readers:
        events = await reader.wait_events(chat, 40)
        assert [e.seq for e in events] == list(range(head + 1, head + 41))
        assert events[-1].data["message"]["text"] == f"event {head + 40}"
        assert reader.event_batches == [40]
    hub.publish(Event(chat, head + 41, "message.posted", {"message": {"id": head + 41, "text": "alone"}}))
    for reader in readers:
        [event] = (await reader.wait_events(chat, 41))[40:]
        assert event.seq == head + 41 and reader.event_batches == [40, 1]


async def test_posts_to_more_sockets_than_one_turn_writes_reach_every_one_in_order(world, server, http, connect):
    """The flush writes FLUSH_CHUNK sockets a turn: posts that arrive while a fan-out is only
    part-way through must still reach every socket once each, in seq order."""
    chat = world.channel(Area.CHAT)
    token = await login(http, world.users["teacher_member"].username)
    url = f"ws://127.0.0.1:{server.port}/ws"
    readers = [await Client.connect(url, token) for _ in range(2 * FLUSH_CHUNK + 30)]
    try:
        heads = {(await r.ok(Subscribe(chat))).data["head"] for r in readers}
        assert len(heads) == 1
        head = heads.pop()
        writer = await connect(world.users["pupil_member"])
        for i in range(10):  # one after the other, so that each lands in a fan-out under way
            await writer.ok(Post(chat, f"wave {i}"))
        for reader in readers:
            events = await reader.wait_events(chat, 10, timeout=20)
            assert [e.seq for e in events] == list(range(head + 1, head + 11))
            assert [e.data["message"]["text"] for e in events] == [f"wave {i}" for i in range(10)]
    finally:
        await asyncio.gather(*(r.close() for r in readers))
