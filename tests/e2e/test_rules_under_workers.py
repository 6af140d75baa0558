"""Issue 21's rules that must bite on every process, tried on `twinhub serve --workers 2` — the way
a school runs TwinHub on one machine: two workers on one port, the embedded Redis (with its
password) and the bus secret the parent makes. The kernel spreads connections over the workers;
each test finds out which worker holds each socket (psutil reads the workers' connections), and
opens sockets until the member has one on each, so that every rule is seen crossing workers.
Every wait is bounded; every process started here is stopped by PID."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from protocol import CloseCode, Error, Post, Subscribe
from realtime.policy import Area
from tests.client import Client
from tests.conftest import PASSWORD, login, public_view_on
from tests.processes import ROOT, ServeProcess, free_port

LIVE = 5.0  # seconds a change may take to reach the other worker


@pytest.fixture(scope="module")
async def served(database_url):
    """`twinhub serve --workers 2` and its two worker PIDs."""
    port = free_port()
    env = {**os.environ, "TWINHUB_DATABASE_URL": database_url, "TWINHUB_LOG_LEVEL": "warning"}
    for name in ("TWINHUB_REDIS_URL", "TWINHUB_BUS_SECRET"):
        env.pop(name, None)
    parent = subprocess.Popen([sys.executable, "-m", "realtime", "serve", "--workers", "2", "--port", str(port)],
                              env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    process = ServeProcess.adopt(parent, port)
    try:
        await process.ready()
        deadline = time.monotonic() + 30
        while True:
            workers = [p.pid for p in psutil.Process(parent.pid).children() if "realtime" in " ".join(p.cmdline())]
            if len(workers) == 2 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
        assert len(workers) == 2
        yield process, workers
    finally:
        parent.terminate()
        try:
            parent.wait(20)
        except subprocess.TimeoutExpired:
            parent.kill()
            parent.wait(5)


def _worker_of(client: Client, workers: list[int]) -> int:
    """The PID of the worker holding this client's socket."""
    mine = client.ws.local_address[1]
    for pid in workers:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == mine:
                return pid
    raise AssertionError("no worker holds this socket")


async def _on_both(served, user, http: httpx.AsyncClient) -> list[Client]:
    """Sockets of `user`, at least one on each worker (at most 24 tries)."""
    process, workers = served
    token = await login(http, user.username)
    clients, placed = [], set()
    for _ in range(24):
        client = await Client.connect(process.ws, token)
        clients.append(client)
        placed.add(_worker_of(client, workers))
        if placed == set(workers):
            return clients
    raise AssertionError("the kernel put 24 sockets on one worker")


async def _on_each(served, user, http: httpx.AsyncClient) -> dict[int, Client]:
    """One socket of `user` on each worker (the others closed)."""
    process, workers = served
    found: dict[int, Client] = {}
    for client in await _on_both(served, user, http):
        pid = _worker_of(client, workers)
        if pid in found:
            await client.close()
        else:
            found[pid] = client
    return found


async def _closed_with(client: Client, code: int) -> bool:
    return await client.closed(timeout=LIVE) == code


async def _refused(client: Client, channel: str) -> Error:
    """The error that ended a subscription (no ref), waited for."""
    deadline = time.monotonic() + LIVE
    while time.monotonic() < deadline:
        for frame in client.unsolicited:
            if isinstance(frame, Error) and (frame.data or {}).get("channel") == channel:
                return frame
        await asyncio.sleep(0.05)
    raise AssertionError(f"{channel} was never ended")


async def test_a_removed_member_loses_every_socket_on_every_worker(served, world):
    """Rules 6–7: a removal made through one worker ends the member's subscriptions on both."""
    process, _ = served
    chat = world.channel(Area.CHAT)
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        sockets = await _on_both(served, world.users["pupil_member"], http)
        for client in sockets:
            await client.ok(Subscribe(chat))
        admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
        r = await http.delete(f"/api/spaces/{world.space_id}/members/{world.users['pupil_member'].id}", headers=admin)
        assert r.status_code == 200, r.text
        for client in sockets:
            assert (await _refused(client, chat)).code == "not_member"
            assert (await client.request(Post(chat, "still here?"))).type == "error"
            await client.close()


async def test_a_password_reset_closes_the_pupils_sockets_on_every_worker(served, world):
    """Rule 3: every socket of the account is closed (4001), wherever it is."""
    process, _ = served
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        sockets = await _on_both(served, world.users["pupil_admin"], http)
        admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
        r = await http.post(f"/api/spaces/{world.space_id}/members/{world.users['pupil_admin'].id}/password",
                            headers=admin)
        assert r.status_code == 200, r.text
        closed = await asyncio.gather(*(_closed_with(c, CloseCode.AUTH_FAILED) for c in sockets))
        assert all(closed), closed


async def test_a_mute_made_on_one_worker_bites_on_the_other(served, world):
    """A mute is a right that takes effect at once, on every process."""
    process, _ = served
    chat = world.channel(Area.CHAT)
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        sockets = await _on_each(served, world.users["pupil_member"], http)
        admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
        r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin, json={
            "user_id": world.users["pupil_member"].id, "scope": "chat", "minutes": 10, "reason": "a pause"})
        assert r.status_code in (200, 201), r.text
        for client in sockets.values():
            deadline = time.monotonic() + LIVE
            while True:
                reply = await client.request(Post(chat, "muted?"))
                if reply.type == "error" and reply.code == "muted" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.1)
            assert reply.type == "error" and reply.code == "muted", reply
            await client.close()


async def test_a_visitor_on_one_worker_never_learns_the_pupils_on_the_other(served, world):
    """Rule 10: the worker that holds the visitor shields the pupil's post made on the other, and
    leaves the pupil out of presence."""
    process, workers = served
    room = world.channel(Area.ACTIVITIES)
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        visitors = await _on_each(served, world.users["visitor"], http)
        pupils = await _on_each(served, world.users["pupil_member"], http)
    for pid in workers:
        visitor, pupil = visitors[pid], pupils[next(p for p in workers if p != pid)]
        await visitor.ok(Subscribe(room))
        await pupil.ok(Subscribe(room))
        await pupil.ok(Post(room, f"from the other worker than {pid}"))
        events = await visitor.wait_events(room, 1, timeout=LIVE)
        assert events[-1].data["message"]["author"] == {
            "id": None, "name": None, "school": world.users["pupil_member"].school, "role": "pupil"}
    await asyncio.sleep(1.5)  # presence is gathered for a second
    for visitor in visitors.values():
        shown = {c["id"] for f in visitor.unsolicited if getattr(f, "type", "") == "presence"
                 for c in (*(f.members or ()), *(f.joined or ()), *(f.left or ()))}
        assert world.users["pupil_member"].id not in shown
    for client in (*visitors.values(), *pupils.values()):
        await client.close()


async def test_turning_the_public_view_off_ends_anonymous_streams_on_both_workers(served, world, pool):
    """Rule 8: every anonymous viewer, on whichever worker, is cut off."""
    await public_view_on(pool, world)  # off for a new project
    process, workers = served
    streams: list[tuple[httpx.AsyncClient, httpx.Response]] = []
    placed: set[int] = set()

    def my_ports() -> set[int]:
        return {c.laddr.port for c in psutil.Process(os.getpid()).net_connections(kind="tcp")
                if c.raddr and c.raddr.port == process.port}

    async def open_stream() -> tuple[httpx.AsyncClient, httpx.Response]:
        viewer = httpx.AsyncClient(base_url=process.url, timeout=30)
        response = await viewer.send(viewer.build_request("GET", f"/api/public/{world.slug}/events"), stream=True)
        assert response.status_code == 200
        return viewer, response

    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        # Connections on a shared listening socket mostly go to the worker that accepted last
        # (the kernel wakes one waiter); a few go to the other. An address holds at most 10 streams.
        for _ in range(40):
            streams = list(await asyncio.gather(*(open_stream() for _ in range(8))))
            ours = my_ports()
            placed = {pid for pid in workers if any(c.raddr and c.raddr.port in ours
                                                    for c in psutil.Process(pid).net_connections(kind="tcp"))}
            if placed == set(workers):
                break
            for viewer, response in streams:
                await response.aclose()
                await viewer.aclose()
        assert placed == set(workers), "40 times 8 streams all on one worker"
        admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username, PASSWORD)}"}
        r = await http.post(f"/api/spaces/{world.space_id}/public", headers=admin, json={"public": False})
        assert r.status_code == 200, r.text

    async def ended(response: httpx.Response) -> None:
        async for _ in response.aiter_bytes():
            pass

    try:
        await asyncio.wait_for(asyncio.gather(*(ended(r) for _, r in streams)), LIVE)
    finally:
        for viewer, response in streams:
            await response.aclose()
            await viewer.aclose()


async def test_the_command_line_reaches_both_workers_at_once(served, world, database_url):
    """Rule 7: a change of rights made with `twinhub admin` (no bus, only the database) bites on
    every worker at once — here a teacher made a visitor loses the teachers' room everywhere."""
    process, _ = served
    room = world.channel(Area.TEACHERS_ROOM)
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as http:
        sockets = await _on_both(served, world.users["teacher_member"], http)
    for client in sockets:
        await client.ok(Subscribe(room))
    env = {**os.environ, "TWINHUB_DATABASE_URL": database_url}
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "realtime", "admin", "add-member", "--space", world.slug,
        "--username", world.users["teacher_member"].username, "--role", "visitor"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "running servers were told" in done.stdout
    for client in sockets:
        assert (await _refused(client, room)).code == "forbidden"
        await client.close()
