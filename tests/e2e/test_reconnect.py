"""Reconnecting: a member's rights are kept for a while after their last socket closed (a class
whose Wi-Fi drops comes back without reading them again), but any change to them while they are
away is in force when they come back; many sessions resuming at once share their reads and
still get exactly what they missed."""

from __future__ import annotations

import asyncio

from protocol import Error, Hello, Post, Subscribe
from realtime.fanout.control import MemberChanged, SessionsRevoked
from realtime.fanout.directory import Directory
from realtime.policy import Area, Role
from storage import accounts
from tests.client import Client
from tests.conftest import login


async def wait_idle(server, user_id: int) -> None:
    """Until the server has ended the user's last session (its rights are then kept, idle)."""
    directory = server.app.state.services.directory
    for _ in range(200):
        viewer = directory._viewers.get(user_id)
        if viewer is None or viewer.refs == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the session did not end")


async def test_a_reconnect_reuses_the_rights_kept_for_the_user(world, connect, server):
    directory = server.app.state.services.directory
    pupil = world.users["pupil_member"]
    first = await connect(pupil)
    await first.close()
    await wait_idle(server, pupil.id)
    reused = directory.rights_reused
    back = await connect(pupil)
    assert directory.rights_reused == reused + 1
    assert [s["role"] for s in back.welcome.spaces] == ["pupil_member"]
    await back.ok(Subscribe(world.channel(Area.CHAT)))


async def test_a_member_removed_while_away_gets_nothing_after_reconnecting(world, connect, server):
    chat = world.channel(Area.CHAT)
    pupil = world.users["pupil_admin"]
    away = await connect(pupil)
    await away.ok(Subscribe(chat))
    await away.close()
    await wait_idle(server, pupil.id)

    await server.app.state.projects.set_member(world.space_id, pupil.id, None)
    back = await connect(pupil)
    assert back.welcome.spaces == []
    assert (await back.error(Subscribe(chat, since=0))).code == "not_found"
    poster = await connect(world.users["teacher_admin"])
    await poster.ok(Post(chat, "after she was removed"))
    await asyncio.sleep(0.1)  # bounded: an event wrongly delivered would have arrived by now
    assert chat not in back.events


async def test_a_role_changed_while_away_holds_on_reconnect(world, connect, server):
    chat = world.channel(Area.CHAT)
    teacher = world.users["teacher_member"]
    away = await connect(teacher)
    await away.close()
    await wait_idle(server, teacher.id)

    await server.app.state.projects.set_member(world.space_id, teacher.id, Role.VISITOR)
    back = await connect(teacher)
    assert [s["role"] for s in back.welcome.spaces] == ["visitor"]
    assert (await back.error(Subscribe(chat))).code == "forbidden"


async def test_a_mute_while_away_holds_on_reconnect(world, connect, server, pool):
    chat = world.channel(Area.CHAT)
    pupil = world.users["pupil_member"]
    away = await connect(pupil)
    await away.close()
    await wait_idle(server, pupil.id)

    await pool.execute(
        "INSERT INTO mutes (space_id, user_id, scope, until) VALUES ($1, $2, 'chat', now() + interval '1 hour')",
        world.space_id, pupil.id,
    )
    await server.app.state.changes.send(MemberChanged(world.space_id, pupil.id))
    back = await connect(pupil)
    assert (await back.error(Post(chat, "hello?"))).code == "muted"


async def test_a_token_revoked_while_away_is_refused(world, server, http):
    pupil = world.users["pupil_member"]
    token = await login(http, pupil.username)
    url = f"ws://127.0.0.1:{server.port}/ws"
    away = await Client.connect(url, token)
    await away.close()
    await wait_idle(server, pupil.id)
    await accounts.revoke_all_sessions(server.app.state.pool, pupil.id)
    await server.app.state.changes.send(SessionsRevoked(pupil.id))
    client = await Client.connect(url, None)
    try:
        refused = await client.request(Hello(token=token))
        assert isinstance(refused, Error) and refused.code == "unauthenticated"
    finally:
        await client.close()
    fresh = await Client.connect(url, await login(http, pupil.username))  # a new login works
    await fresh.close()


async def test_kept_rights_are_bounded_and_expire(pool, world):
    directory = Directory(pool, grace=0.2, max_idle=2)
    directory.start()
    try:
        users = [world.users[r] for r in ("pupil_member", "pupil_admin", "teacher_member")]
        for user in users:
            directory.release(await directory.acquire(user))
        assert directory.idle_users == 2  # the oldest was dropped
        loaded = directory.rights_loaded
        directory.release(await directory.acquire(users[2]))
        assert directory.rights_loaded == loaded  # kept
        directory.release(await directory.acquire(users[0]))
        assert directory.rights_loaded == loaded + 1  # dropped for the bound: read again
        await asyncio.sleep(0.25)
        viewer = await directory.acquire(users[2])
        assert directory.rights_loaded == loaded + 2  # past the grace period: read again
        assert viewer.roles == {world.space_id: Role.TEACHER_MEMBER}
        directory.release(viewer)
        directory.forget_idle()  # the bus may have lost messages
        assert directory.idle_users == 0
    finally:
        await directory.close()


async def test_many_resume_at_once_without_gap_or_duplicate(world, connect, server):
    chat = world.channel(Area.CHAT)
    poster = await connect(world.users["pupil_member"])
    for i in range(20):
        await poster.ok(Post(chat, f"history {i}"))
    members = [world.users[r] for r in ("teacher_admin", "teacher_member", "pupil_admin")]
    clients = [await connect(members[i % 3]) for i in range(24)]
    since = [(0, 5, 20)[i % 3] for i in range(24)]  # groups resuming from the same seq share a page

    stop = asyncio.Event()

    async def keep_posting() -> int:
        n = 0
        while not stop.is_set():
            await poster.ok(Post(chat, f"live {n}"))
            n += 1
        return n

    posting = asyncio.create_task(keep_posting())
    try:
        oks = await asyncio.gather(*(c.ok(Subscribe(chat, since=s)) for c, s in zip(clients, since, strict=True)))
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        total = 20 + await posting
    for client, s, ok in zip(clients, since, oks, strict=True):
        assert ok.data["head"] >= 20
        events = await client.wait_events(chat, total - s, timeout=10)
        assert [e.seq for e in events] == list(range(s + 1, total + 1)), f"since={s}"
    replays = server.app.state.services.readers.replays
    assert replays.callers >= replays.keys


async def test_posts_commit_while_every_read_connection_is_taken(world, connect, server):
    """The group-commit writers have connections of their own: a storm of reads holding the
    whole main pool does not hold the acknowledgements back."""
    chat = world.channel(Area.CHAT)
    poster = await connect(world.users["pupil_member"])
    await poster.ok(Post(chat, "warm-up"))  # the room and the project are in the directory now
    pool = server.app.state.pool
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        ok = await poster.ok(Post(chat, "while every read waits"), timeout=5)
        assert ok.data["seq"] == 2
    finally:
        for conn in held:
            await pool.release(conn)
