"""What a retrying client relies on (docs/protocol.md, "Retrying"), over real sockets: a resend of
a post or mail that was stored is answered the original whatever happened since; two attempts with
one client_id in flight at once, on one process or two, store one message; and when PostgreSQL
stops answering altogether, every request hears `unavailable` within statement_timeout + 5 s."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from protocol import Error, Hello, Ok, Post, SendMail, Subscribe
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import RunningServer
from realtime.services.auth import hash_password
from storage import accounts, spaces
from storage.db import COMMAND_MARGIN, create_pool
from storage.embedded import EmbeddedPostgres, ensure_database
from tests.client import Client
from tests.conftest import login


async def _server(database_url: str, **settings) -> RunningServer:
    server = RunningServer(Settings(database_url=database_url, port=0, log_level="warning", **settings))
    await server.start()
    return server


async def _client(server: RunningServer, token: str) -> Client:
    return await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)


async def test_a_resend_of_a_stored_post_is_answered_the_original_when_the_budget_is_spent(database_url, world, http):
    server = await _server(database_url, post_rate=0.01, post_burst=2)
    try:
        client = await _client(server, await login(http, world.users["pupil_member"].username))
        chat = world.channel(Area.CHAT)
        first = await client.ok(Post(chat, "stored, but its ok was lost", client_id="lost-ok"))
        await client.ok(Post(chat, "the budget's last token"))
        refused = await client.error(Post(chat, "a new post", client_id="new"))
        assert refused.code == "rate_limited"
        again = await client.ok(Post(chat, "stored, but its ok was lost", client_id="lost-ok"))
        assert again.data == {**first.data, "duplicate": True}
        # Nothing new was stored by the resend, and the budget is as spent as it was.
        assert (await client.error(Post(chat, "still a new post", client_id="new"))).code == "rate_limited"
        await client.close()
    finally:
        await server.stop()


async def test_a_resend_of_a_stored_post_is_answered_the_original_after_a_mute_and_an_archive(world, http, connect):
    pupil = await connect(world.users["pupil_member"])
    chat = world.channel(Area.CHAT)
    first = await pupil.ok(Post(chat, "before the mute", client_id="before-mute"))
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    mute = {"user_id": world.users["pupil_member"].id, "scope": "chat", "minutes": 10}
    assert (await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin, json=mute)).status_code == 201
    assert (await pupil.error(Post(chat, "after the mute", client_id="after-mute"))).code == "muted"
    assert (await pupil.ok(Post(chat, "before the mute", client_id="before-mute"))).data == {**first.data, "duplicate": True}

    archive = f"/api/spaces/{world.space_id}/rooms/{world.rooms[Area.CHAT]}/archive"
    assert (await http.post(archive, headers=admin)).status_code == 200
    teacher = await connect(world.users["teacher_member"])
    mine = await teacher.error(Post(chat, "in an archived room", client_id="archived"))
    assert mine.code == "room_archived"
    assert (await pupil.ok(Post(chat, "before the mute", client_id="before-mute"))).data["id"] == first.data["id"]


async def test_a_resend_of_a_sent_mail_is_answered_the_original_when_it_would_be_refused_now(world, http, connect):
    pupil = await connect(world.users["pupil_member"])
    teacher = world.users["teacher_admin"]
    mail = SendMail(world.space_id, (teacher.id,), "sent once", subject="Once", client_id="mail-lost-ok")
    first = await pupil.ok(mail)
    admin = {"authorization": f"Bearer {await login(http, teacher.username)}"}
    assert (await http.post(f"/api/spaces/{world.space_id}/close", headers=admin)).status_code == 200
    new = SendMail(world.space_id, (teacher.id,), "a new one", subject="New", client_id="mail-new")
    assert (await pupil.error(new)).code == "space_closed"
    assert (await pupil.ok(mail)).data == {**first.data, "duplicate": True}


async def test_two_attempts_with_one_client_id_in_flight_store_one_message(database_url, world, http):
    """On one socket, on two sockets of one process, and on two processes sharing PostgreSQL."""
    other = await _server(database_url, post_rate=1000.0, post_burst=1000)
    try:
        token = await login(http, world.users["pupil_member"].username)
        here, there = await _client(other, token), await _client(other, token)
        chat = world.channel(Area.CHAT)
        for attempt in range(10):
            frame = Post(chat, f"attempt {attempt}", client_id=f"in-flight-{attempt}")
            answers = await asyncio.gather(here.ok(frame), here.ok(frame), there.ok(frame))
            assert sorted(a.data["duplicate"] for a in answers) == [False, True, True], answers
            assert len({(a.data["id"], a.data["seq"]) for a in answers}) == 1
        await here.close()
        await there.close()
    finally:
        await other.stop()


async def test_one_client_id_in_flight_on_two_processes_is_stored_once(database_url, world, http):
    servers = [await _server(database_url, post_rate=1000.0, post_burst=1000) for _ in range(2)]
    try:
        token = await login(http, world.users["pupil_member"].username)
        clients = [await _client(s, token) for s in servers]
        chat = world.channel(Area.CHAT)
        for attempt in range(10):
            frame = Post(chat, f"twice {attempt}", client_id=f"two-processes-{attempt}")
            answers = await asyncio.gather(*(c.request(frame) for c in clients))
            assert all(isinstance(a, Ok) for a in answers), answers  # never `internal` for a stored post
            assert sorted(a.data["duplicate"] for a in answers) == [False, True]
            assert len({a.data["id"] for a in answers}) == 1
        for c in clients:
            await c.close()
    finally:
        for s in servers:
            await s.stop()


def _postgres_processes(folder: Path) -> list[psutil.Process]:
    """The embedded PostgreSQL this test started (its postmaster and every backend)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if p.info["cmdline"] and str(folder) in " ".join(p.info["cmdline"]):
            found += [p, *p.children(recursive=True)]
    return found


async def test_unavailable_comes_within_its_bound_when_postgres_stops_answering():
    """A frozen database host (SIGSTOP: its statement_timeout cannot fire): every request — a post,
    one queued behind it, a hello, a resuming subscribe — answers `unavailable` within
    statement_timeout + COMMAND_MARGIN of reaching the server; afterwards the resent post is
    stored once."""
    folder = Path(tempfile.mkdtemp(prefix="twinhub-frozen-"))
    pg = EmbeddedPostgres(folder / "pgdata")
    admin = await asyncio.to_thread(pg.start)
    stopped: list[psutil.Process] = []
    try:
        await ensure_database(admin, "frozen")
        url = pg.url("frozen")
        bound = 1.0 + COMMAND_MARGIN
        server = await _server(url, statement_timeout=1.0)
        pool = await create_pool(url, min_size=1, max_size=1)
        space = await spaces.create_space(pool, slug="frozen-db", name="Frozen")
        room = await spaces.create_room(pool, space_id=space.id, area=Area.CHAT.value, name="chat")
        user = await accounts.create_user(pool, username="ana", display_name="Ana", password_hash=hash_password("pw-12345"))
        await spaces.set_member(pool, space.id, user.id, "pupil_member")
        await pool.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            token = (await http.post("/api/login", json={"username": "ana", "password": "pw-12345"})).json()["token"]
        client, late, reader = await _client(server, token), await _client(server, None), await _client(server, token)
        channel = f"room:{room.id}"
        await client.ok(Post(channel, "before", client_id="before"))

        stopped = _postgres_processes(folder)
        assert stopped, "the embedded PostgreSQL's processes were not found"
        for p in stopped:
            p.send_signal(signal.SIGSTOP)
        started = time.monotonic()

        async def answered(request, delay: float = 0.0) -> tuple[str, float]:
            await asyncio.sleep(delay)
            sent = time.monotonic()
            reply = await request
            assert isinstance(reply, Error), reply
            return reply.code, time.monotonic() - sent

        answers = await asyncio.gather(
            answered(client.request(Post(channel, "during", client_id="during"), timeout=60)),
            answered(client.request(Post(channel, "queued behind it", client_id="queued"), timeout=60), 1.0),
            answered(late.request(Hello(token=token), timeout=60)),
            answered(reader.request(Subscribe(channel, since=0), timeout=60)),
        )
        assert {code for code, _ in answers} == {"unavailable"}, answers
        assert max(took for _, took in answers) < bound + 1.5, (answers, bound)
        assert time.monotonic() - started < 2 * bound  # the queued post did not wait a second bound

        for p in stopped:
            p.send_signal(signal.SIGCONT)
        stopped = []
        again = await client.request(Post(channel, "during", client_id="during"), timeout=30)
        assert isinstance(again, Ok) and again.data["seq"] == 2, again  # stored once, no seq burnt
        for c in (client, late, reader):
            await c.close()
        await server.stop()
    finally:
        for p in stopped:
            p.send_signal(signal.SIGCONT)
        await asyncio.to_thread(pg.stop)
        shutil.rmtree(folder, ignore_errors=True)

