"""Three TwinHub processes on three ports, one PostgreSQL, one real Redis: they behave as one.
Each test bounds its waits; every process started here is stopped by PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time

import httpx
import pytest

from protocol import Error, Post, Presence, SendMail, Subscribe, Typing, TypingNotice, Welcome
from realtime.policy import Area
from tests.client import Client
from tests.conftest import PASSWORD, WATCH, login
from tests.processes import ROOT, ServeProcess, free_port


def Process(database_url: str, redis_url: str, prefix: str) -> ServeProcess:  # noqa: N802
    return ServeProcess(database_url, redis_url, prefix, TWINHUB_POST_RATE="1000", TWINHUB_POST_BURST="1000")


@pytest.fixture(scope="module", params=["redis", "redis-cluster"])
async def processes(request, database_url):
    """Three processes over one Redis server, then over a three-node Redis Cluster (any node's
    address in TWINHUB_REDIS_URL: the processes find out it is a cluster)."""
    redis_url = request.getfixturevalue("redis_cluster_url" if request.param == "redis-cluster" else "redis_url")
    prefix = f"twinhub-processes-{os.getpid()}"
    processes = [Process(database_url, redis_url, prefix) for _ in range(3)]
    try:
        await asyncio.gather(*(p.ready() for p in processes))
        yield processes
    finally:
        for p in processes:
            p.stop()


async def _client(process: Process, user) -> Client:
    async with httpx.AsyncClient(base_url=process.url) as http:
        token = await login(http, user.username)
    return await Client.connect(process.ws, token)


async def test_a_post_on_one_process_reaches_subscribers_on_the_others(processes, world):
    a, b, c = processes
    chat = world.channel(Area.CHAT)
    readers = [await _client(p, world.users[who]) for p, who in ((a, "pupil_member"), (c, "teacher_admin"))]
    writer = await _client(b, world.users["pupil_admin"])
    try:
        for r in readers:
            await r.ok(Subscribe(chat))
        sent = [(await writer.ok(Post(chat, f"from B #{i}"))).data["seq"] for i in range(20)]
        for r in readers:
            events = await r.wait_events(chat, 20)
            assert [e.seq for e in events] == sent  # every one, in order, once
            assert events[0].data["message"]["text"] == "from B #0"
    finally:
        for cl in (*readers, writer):
            await cl.close()


async def test_a_role_change_on_one_process_holds_on_the_others_sockets(processes, world):
    a, b, _ = processes
    chat = world.channel(Area.CHAT)
    teacher = await _client(a, world.users["teacher_member"])
    try:
        await teacher.ok(Subscribe(chat))
        async with httpx.AsyncClient(base_url=b.url) as http:
            token = await login(http, world.users["teacher_admin"].username)
            r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users['teacher_member'].id}",
                                 headers={"authorization": f"Bearer {token}"}, json={"role": "visitor"})
            assert r.status_code == 200, r.text
        ended = await teacher.next_frame(Error, timeout=3)  # visitors have no chat
        assert ended.code == "forbidden" and ended.data["channel"] == chat
        fresh = await teacher.next_frame(Welcome, timeout=3)
        assert fresh.spaces[0]["role"] == "visitor"
    finally:
        await teacher.close()


async def test_a_killed_process_loses_no_acknowledged_message(database_url, redis_url, world):
    """kill -9 one of three processes while its clients post: they reconnect to another one and
    resume from their last seq; every acknowledged post is there exactly once, in order."""
    prefix = f"twinhub-kill-{os.getpid()}"
    processes = [Process(database_url, redis_url, prefix) for _ in range(3)]
    chat = world.channel(Area.CHAT)
    clients: list[Client] = []
    try:
        await asyncio.gather(*(p.ready() for p in processes))
        victim, survivor, _ = processes
        reader = await _client(victim, world.users["teacher_member"])
        writer = await _client(survivor, world.users["pupil_admin"])
        clients += [reader, writer]
        await reader.ok(Subscribe(chat, since=0))
        acked: list[int] = []

        async def post_steadily() -> None:
            for i in range(60):
                reply = await writer.request(Post(chat, f"steady #{i}", client_id=f"steady-{i}"))
                if not isinstance(reply, Error):
                    acked.append(reply.data["seq"])
                await asyncio.sleep(0.01)

        posting = asyncio.create_task(post_steadily())
        await asyncio.sleep(0.2)
        victim.kill()  # SIGKILL: no goodbye
        assert await reader.closed(timeout=5) is not None
        seen = [e.seq for e in reader.events.get(chat, [])]
        last = seen[-1] if seen else 0
        await posting
        # The reader's client reconnects to another process and resumes from its last seq.
        again = await _client(processes[2], world.users["teacher_member"])
        clients.append(again)
        await again.ok(Subscribe(chat, since=last))
        await again.wait_events(chat, len([s for s in acked if s > last]), timeout=5)
        resumed = [e.seq for e in again.events[chat]]
        assert seen + resumed == sorted(set(seen + resumed))  # nothing twice, in order
        assert set(acked) <= set(seen + resumed)  # nothing acknowledged is lost
    finally:
        for cl in clients:
            await cl.close()
        for p in processes:
            p.stop()


async def test_serve_workers_shares_one_port_and_stops_cleanly(database_url, world):
    """`twinhub serve --workers 2` with no Redis configured: it starts its own Redis-compatible
    server, with a password, and a bus secret; two workers accept on one port, told both in their
    environment and on no command line; and SIGTERM stops every process it started."""
    from urllib.parse import urlsplit

    import psutil

    port = free_port()
    env = {**os.environ, "TWINHUB_DATABASE_URL": database_url, "TWINHUB_LOG_LEVEL": "warning"}
    env.pop("TWINHUB_REDIS_URL", None)
    env.pop("TWINHUB_BUS_SECRET", None)
    parent = subprocess.Popen(
        [sys.executable, "-m", "realtime", "serve", "--workers", "2", "--port", str(port)], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        started: list[psutil.Process] = []
        while time.monotonic() < deadline:
            started = psutil.Process(parent.pid).children(recursive=True)
            if len([p for p in started if "realtime" in " ".join(p.cmdline())]) == 2:
                break
            await asyncio.sleep(0.1)
        workers = [p for p in started if "realtime" in " ".join(p.cmdline())]
        assert len(workers) == 2 and any("server" in p.name() for p in started)  # + the Redis server
        told = workers[0].environ()
        password, secret = urlsplit(told["TWINHUB_REDIS_URL"]).password, told["TWINHUB_BUS_SECRET"]
        WATCH.secrets.update({password or "", secret} - {""})
        assert password and len(secret) >= 16 and workers[1].environ()["TWINHUB_BUS_SECRET"] == secret
        for p in [psutil.Process(parent.pid), *started]:  # `ps` shows command lines to everyone
            assert password not in " ".join(p.cmdline()) and secret not in " ".join(p.cmdline())
        process = ServeProcess.adopt(parent, port)
        await process.ready()
        chat = world.channel(Area.CHAT)
        clients = [await _client(process, world.users[w]) for w in ("pupil_member", "teacher_admin", "pupil_admin")]
        try:
            for cl in clients[:2]:
                await cl.ok(Subscribe(chat))
            await clients[2].ok(Post(chat, "to whichever worker you are on"))
            for cl in clients[:2]:
                assert (await cl.wait_events(chat, 1))[0].data["message"]["text"] == "to whichever worker you are on"
        finally:
            for cl in clients:
                await cl.close()
        parent.terminate()
        parent.wait(20)
        await asyncio.sleep(0.2)
        assert not [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)


async def _presence_until(client: Client, channel: str, check, timeout: float) -> None:
    """Wait (bounded) until the presence the client was told about satisfies `check(ids)`."""
    deadline = time.monotonic() + timeout
    while True:
        here: set[int] = set()
        for frame in list(client.unsolicited):
            here = _apply(here, frame, channel)
        if check(here):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"presence on {channel} is {sorted(here)}")
        await asyncio.sleep(0.05)


def _apply(here: set[int], frame, channel: str) -> set[int]:
    if not isinstance(frame, Presence) or frame.channel != channel:
        return here
    if frame.members is not None:
        return {m["id"] for m in frame.members}
    return (here | {m["id"] for m in frame.joined or ()}) - {m["id"] for m in frame.left or ()}


async def test_presence_and_typing_span_processes_and_a_dead_one_vanishes(database_url, redis_url, world):
    prefix = f"twinhub-presence-{os.getpid()}"
    a, b = (Process(database_url, redis_url, prefix) for _ in range(2))
    chat = world.channel(Area.CHAT)
    clients: list[Client] = []
    try:
        await asyncio.gather(a.ready(), b.ready())
        await asyncio.sleep(0.5)  # they hear each other's first heartbeat
        ana = await _client(a, world.users["pupil_member"])
        ola = await _client(b, world.users["pupil_admin"])
        clients += [ana, ola]
        await ana.ok(Subscribe(chat))
        await ola.ok(Subscribe(chat))
        ana_id, ola_id = world.users["pupil_member"].id, world.users["pupil_admin"].id
        await _presence_until(ana, chat, lambda ids: ids == {ana_id, ola_id}, timeout=5)
        await _presence_until(ola, chat, lambda ids: ids == {ana_id, ola_id}, timeout=5)
        await ola.ok(Typing(chat))
        notice = await ana.next_frame(TypingNotice, timeout=3)
        assert notice.user["id"] == ola_id
        b.kill()  # Ola's process dies without a word: she leaves Ana's room within seconds
        started = time.monotonic()
        await _presence_until(ana, chat, lambda ids: ids == {ana_id}, timeout=12)
        assert time.monotonic() - started < 12
    finally:
        for cl in clients:
            await cl.close()
        for p in (a, b):
            p.stop()


async def test_a_members_rate_limit_holds_across_processes(processes, world):
    """A pupil may send 5 mails at once, then one every 10 s (the default): sending through
    two processes does not double that."""
    a, b, _ = processes
    to = (world.users["teacher_admin"].id,)
    via_a = await _client(a, world.users["pupil_member"])
    via_b = await _client(b, world.users["pupil_member"])
    try:
        answers = []
        for i in range(8):
            client = via_a if i % 2 == 0 else via_b
            answers.append(await client.request(SendMail(world.space_id, to, f"mail {i}", subject="hi")))
        codes = [a.code if isinstance(a, Error) else "ok" for a in answers]
        assert codes == ["ok"] * 5 + ["rate_limited"] * 3
    finally:
        await via_a.close()
        await via_b.close()


async def test_password_guesses_spread_over_processes_are_counted_together(processes, world):
    """Five wrong passwords for one username, sent round-robin to three processes (honouring
    the back-off), lock it on all of them."""
    username = world.users["visitor"].username
    clients = [httpx.AsyncClient(base_url=p.url) for p in processes]
    try:
        failures = 0
        for i in range(20):
            if failures == 5:
                break
            r = await clients[i % 3].post("/api/login", json={"username": username, "password": f"guess{i}"})
            if r.status_code == 429 and r.json()["error"]["retry_after_ms"] > 200_000:
                failures += 1  # the try that locks answers with the lock (docs/protocol.md, Login protection)
            elif r.status_code == 429:
                await asyncio.sleep(r.json()["error"]["retry_after_ms"] / 1000)
            else:
                assert r.status_code == 401
                failures += 1
        assert failures == 5
        for c in clients:  # locked everywhere, the right password included
            r = await c.post("/api/login", json={"username": username, "password": PASSWORD})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 200
    finally:
        for c in clients:
            await c.aclose()


@contextlib.asynccontextmanager
async def _two_on_a_redis_we_may_stop(database_url: str, redis_server, name: str):
    """Processes A and B on a Redis this test may stop (the one the test setup started), with a
    list of clients closed at the end; skipped on a Redis service (the CI's second pass)."""
    url, server = redis_server
    if server is None:
        pytest.skip("needs a Redis this test may stop: runs when the test setup starts its own "
                    "(unset TWINHUB_TEST_REDIS_URL); the CI's first pass does")
    a, b = (Process(database_url, url, f"twinhub-{name}-{os.getpid()}") for _ in range(2))
    clients: list[Client] = []
    try:
        await asyncio.gather(a.ready(), b.ready())
        yield a, b, server, clients
    finally:
        for cl in clients:
            await cl.close()
        for p in (a, b):
            p.stop()


async def test_redis_restarted_under_load_delivery_recovers_with_no_gap(database_url, redis_server, world):
    """Redis dies and comes back while a pupil posts on process B and a teacher reads on A:
    posts keep being acknowledged (they are committed), A's reader gets every one, in order,
    once — the ones Redis lost come back from PostgreSQL."""
    chat = world.channel(Area.CHAT)
    async with _two_on_a_redis_we_may_stop(database_url, redis_server, "redis-restart") as (a, b, server, clients):
        reader = await _client(a, world.users["teacher_member"])
        writer = await _client(b, world.users["pupil_admin"])
        clients += [reader, writer]
        await reader.ok(Subscribe(chat))
        acked: list[int] = []

        async def post_steadily(n: int, tag: str) -> None:
            for i in range(n):
                reply = await writer.request(Post(chat, f"{tag} #{i}"))
                assert not isinstance(reply, Error), reply  # PostgreSQL is fine: every post commits
                acked.append(reply.data["seq"])
                await asyncio.sleep(0.01)

        await post_steadily(10, "before")
        server.kill()
        await post_steadily(20, "during")  # Redis is gone: A hears nothing of these for now
        server.start()
        await post_steadily(10, "after")
        events = await reader.wait_events(chat, len(acked), timeout=15)
        assert [e.seq for e in events] == acked  # all of them, in order, once


async def test_rights_changed_while_redis_was_away_bite_on_every_socket_once_it_is_back(
    database_url, redis_server, world
):
    """A member is removed and the project closed on A while Redis is down: B never hears the
    control messages. When Redis is back, B reloads the rights of its *connected* users (not only
    idle ones) and re-checks their subscriptions: the removed member's socket on B loses the room,
    and a post on B meets the closed project."""
    chat = world.channel(Area.CHAT)
    async with _two_on_a_redis_we_may_stop(database_url, redis_server, "redis-away-rights") as (a, b, server, clients):
        removed = await _client(b, world.users["teacher_member"])
        poster = await _client(b, world.users["pupil_member"])
        clients += [removed, poster]
        await removed.ok(Subscribe(chat))
        await poster.ok(Post(chat, "before"))
        server.kill()
        async with httpx.AsyncClient(base_url=a.url) as http:
            admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
            r = await http.delete(f"/api/spaces/{world.space_id}/members/{world.users['teacher_member'].id}",
                                  headers=admin)
            assert r.status_code == 200, r.text
            assert (await http.post(f"/api/spaces/{world.space_id}/close", headers=admin)).status_code == 200
        await asyncio.sleep(0.5)
        assert removed.events.get(chat, []) and not [f for f in removed.unsolicited if isinstance(f, Error)]
        server.start()
        ended = await removed.next_frame(Error, timeout=20)  # the bus reconnects, then resyncs
        assert (ended.code, ended.data.get("channel")) == ("not_member", chat)
        refused = await poster.request(Post(chat, "after"))
        assert isinstance(refused, Error) and refused.code == "space_closed"
