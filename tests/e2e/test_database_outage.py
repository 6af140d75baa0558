"""PostgreSQL goes away under a running server: writes fail fast with `unavailable`, nothing is
acknowledged that was not committed, and service resumes by itself when the database returns."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from protocol import Error, Ok, Post, SendMail, Subscribe
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import RunningServer
from realtime.services.auth import hash_password
from storage import accounts, spaces
from storage.db import create_pool
from storage.embedded import EmbeddedPostgres, ensure_database
from tests.client import Client


async def test_writes_fail_fast_while_the_database_is_down_and_resume_after():
    folder = Path(tempfile.mkdtemp(prefix="twinhub-outage-"))
    pg = EmbeddedPostgres(folder / "pgdata")
    admin = await asyncio.to_thread(pg.start)
    await ensure_database(admin, "outage")
    url = pg.url("outage")
    server = RunningServer(Settings(database_url=url, port=0, log_level="critical"))
    await server.start()
    try:
        pool = await create_pool(url, min_size=1, max_size=1)
        space = await spaces.create_space(pool, slug="outage", name="Outage")
        room = await spaces.create_room(pool, space_id=space.id, area=Area.CHAT.value, name="chat")
        user = await accounts.create_user(pool, username="ana", display_name="Ana", password_hash=hash_password("pw-1234"))
        await spaces.set_member(pool, space.id, user.id, "pupil_member")
        teacher = await accounts.create_user(pool, username="tom", display_name="Tom", password_hash=None)
        await spaces.set_member(pool, space.id, teacher.id, "teacher_admin")
        await pool.close()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            token = (await http.post("/api/login", json={"username": "ana", "password": "pw-1234"})).json()["token"]
        client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)
        channel = f"room:{room.id}"
        await client.ok(Subscribe(channel))
        assert isinstance(await client.request(Post(channel, "before", client_id="a")), Ok)

        await asyncio.to_thread(pg.stop)
        started = time.monotonic()
        reply = await client.request(Post(channel, "during", client_id="b"), timeout=15)
        assert isinstance(reply, Error) and reply.code == "unavailable", reply
        assert time.monotonic() - started < 12
        # Mail too — even its first send, which must read the project's members first.
        mail = SendMail(space.id, (teacher.id,), "during", subject="outage", client_id="m")
        reply = await client.request(mail, timeout=15)
        assert isinstance(reply, Error) and reply.code == "unavailable", reply

        # Every other request too, thirty at once: `unavailable` (HTTP 503, JSON), never `internal`.
        async def hello() -> Error:
            from protocol import Hello

            late = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", None)
            try:
                return await late.request(Hello(token=token), timeout=15)
            finally:
                await late.close()

        hellos = await asyncio.gather(*(hello() for _ in range(30)))
        assert {(type(r).__name__, getattr(r, "code", None)) for r in hellos} == {("Error", "unavailable")}, hellos
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=15) as http:
            answers = await asyncio.gather(
                *(http.post("/api/login", json={"username": "ana", "password": "pw-1234"}) for _ in range(10)),
                *(http.get("/api/me", headers={"Authorization": f"Bearer {token}"}) for _ in range(10)),
                *(http.get(f"/api/rooms/{room.id}/messages", headers={"Authorization": f"Bearer {token}"})
                  for _ in range(10)),
            )
        for r in answers:
            assert r.status_code == 503 and r.headers["content-type"] == "application/json", (r.status_code, r.text)
            assert r.json()["error"]["code"] == "unavailable"

        await asyncio.to_thread(pg.start)
        for _ in range(100):
            reply = await client.request(Post(channel, "during", client_id="b"), timeout=15)
            if isinstance(reply, Ok):
                break
            await asyncio.sleep(0.1)
        assert isinstance(reply, Ok), reply
        assert isinstance(await client.request(mail, timeout=15), Ok)
        reader = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)
        await reader.ok(Subscribe(channel, since=0))
        events = await reader.wait_events(channel, 2)
        assert [e.data["message"]["text"] for e in events] == ["before", "during"]
        for c in (client, reader):
            await c.close()
    finally:
        await server.stop()
        await asyncio.to_thread(pg.stop)
