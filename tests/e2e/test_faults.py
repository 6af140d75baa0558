"""Faults under load (issue 9, part 1): PostgreSQL stopped and restarted while members keep
posting, and a statement that times out (a lock held by someone else) in the middle of a write.
The promises checked: every acknowledged post is in the history, exactly once, in seq order;
every unacknowledged one was told `unavailable` (never anything else); a retry with the same
client_id never writes twice; a reader that stayed connected saw exactly the history; a write
that failed left nothing of itself behind (no message without its feed record, no seq burnt).

Other faults have their tests elsewhere: a process killed with SIGKILL and Redis restarted under
load (test_scale_out.py), a consumer that stops reading (test_live_rights_and_slow_consumers.py),
PostgreSQL down for a single write and for mail (test_database_outage.py)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from protocol import Error, Ok, Post, Subscribe
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import RunningServer
from realtime.services.auth import hash_password
from storage import accounts, spaces
from storage.db import create_pool
from storage.embedded import EmbeddedPostgres, ensure_database
from tests.client import Client
from tests.conftest import login

PASSWORD = "pw-fault-1234"


class Poster:
    """One member posting `window` posts at a time, each retried with its client_id until it is
    acknowledged; records what the server answered."""

    def __init__(self, client: Client, channel: str, name: str, window: int) -> None:
        self.client, self.channel, self.name, self.window = client, channel, name, window
        self.acked: dict[str, int] = {}  # text -> seq
        self.errors: list[str] = []  # codes of refused attempts
        self._numbers = itertools.count()

    async def run(self, until: asyncio.Event) -> None:
        async def one() -> None:
            while not until.is_set():
                text = f"{self.name}-{next(self._numbers)}"
                await self.post_until_acked(text)

        await asyncio.gather(*(one() for _ in range(self.window)))

    async def post_until_acked(self, text: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reply = await self.client.request(Post(self.channel, text, client_id=text), timeout=30)
            if isinstance(reply, Ok):
                seq = reply.data["seq"]
                assert self.acked.setdefault(text, seq) == seq, f"{text} acknowledged twice with different seqs"
                return
            assert isinstance(reply, Error), reply
            self.errors.append(reply.code)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text} never acknowledged")


async def test_postgres_stopped_and_restarted_under_a_steady_post_load():
    """Threat: the database fails in the middle of a school day. No acknowledged post may be
    lost, none doubled by a retry, and the live stream must carry the history exactly."""
    folder = Path(tempfile.mkdtemp(prefix="twinhub-fault-"))
    pg = EmbeddedPostgres(folder / "pgdata")
    admin = await asyncio.to_thread(pg.start)
    await ensure_database(admin, "fault")
    url = pg.url("fault")
    # max_replay: the late reader below reads the whole history back in one subscribe, however
    # many posts a fast machine acknowledged in those seconds (8,000 and more seen; past
    # max_replay the answer is `resync`, by design).
    server = RunningServer(Settings(database_url=url, port=0, log_level="critical", post_rate=1000.0, post_burst=1000,
                                    max_replay=1_000_000))
    await server.start()
    clients: list[Client] = []
    try:
        pool = await create_pool(url, min_size=1, max_size=1)
        space = await spaces.create_space(pool, slug="fault", name="Fault")
        room = await spaces.create_room(pool, space_id=space.id, area=Area.CHAT.value, name="chat")
        names = ["ana", "ben", "cleo", "reader"]
        digest = hash_password(PASSWORD)
        for name in names:
            user = await accounts.create_user(pool, username=name, display_name=name.title(), password_hash=digest)
            await spaces.set_member(pool, space.id, user.id, "pupil_member")
        await pool.close()
        channel = f"room:{room.id}"
        ws = f"ws://127.0.0.1:{server.port}/ws"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            tokens = {name: await login(http, name, PASSWORD) for name in names}
        for name in names:
            clients.append(await Client.connect(ws, tokens[name]))
        *writers, reader = clients
        await reader.ok(Subscribe(channel, since=0))
        posters = [Poster(c, channel, name, window=4) for c, name in zip(writers, names)]

        stop = asyncio.Event()
        load = asyncio.gather(*(p.run(stop) for p in posters))
        await asyncio.sleep(1.5)
        before = sum(len(p.acked) for p in posters)
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(1.5)  # posting goes on against a dead database
        during = sum(len(p.acked) for p in posters)
        await asyncio.to_thread(pg.start)
        await asyncio.sleep(2.0)  # and after it came back
        stop.set()
        await asyncio.wait_for(load, 90)

        acked = {text: seq for p in posters for text, seq in p.acked.items()}
        errors = [code for p in posters for code in p.errors]
        assert before > 20, "the load did not get going before the outage"
        assert errors and set(errors) == {"unavailable"}, f"refusals other than unavailable: {set(errors)}"
        assert during - before <= 3 * len(posters) * 4  # at most what was in flight when it stopped
        assert len(acked) > during, "nothing was acknowledged after the database came back"

        # The history, read afresh: exactly the acknowledged posts, once each, gap-free.
        late = await Client.connect(ws, tokens["reader"])
        clients.append(late)
        welcome = await late.ok(Subscribe(channel, since=0))
        assert not welcome.data.get("resync"), f"{len(acked)} posts are more than the server replays"
        history = await late.wait_events(channel, len(acked), timeout=20)
        await asyncio.sleep(0.3)
        history = late.events[channel]
        assert [e.seq for e in history] == list(range(1, len(acked) + 1)), "the history has gaps or extras"
        assert {e.data["message"]["text"]: e.seq for e in history} == acked
        # The reader that stayed connected through it all saw the same, in order, once.
        live = await reader.wait_events(channel, len(acked), timeout=20)
        assert [(e.seq, e.data["message"]["text"]) for e in live] == [
            (e.seq, e.data["message"]["text"]) for e in history
        ]
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
        await server.stop()
        await asyncio.to_thread(pg.stop)


async def test_a_write_cut_by_the_statement_timeout_leaves_nothing_behind(database_url, world, http):
    """Threat: a lock held elsewhere (a migration, an operator's query) stalls writes. A post
    cut off by the statement timeout is answered `unavailable` in bounded time and stores
    nothing — not its message, not its feed record, not a seq — and its retry stores it once."""
    server = RunningServer(Settings(database_url=database_url, port=0, log_level="critical", statement_timeout=1.0))
    await server.start()
    clients: list[Client] = []
    locker = await asyncpg.connect(database_url)
    try:
        ws = f"ws://127.0.0.1:{server.port}/ws"
        token = await login(http, world.users["pupil_member"].username)
        writer = await Client.connect(ws, token)
        clients.append(writer)
        chat, feed = world.channel(Area.CHAT), f"feed:{world.space_id}"
        head = (await writer.ok(Subscribe(chat))).data["head"]
        feed_head = (await writer.ok(Subscribe(feed))).data["head"]
        assert isinstance(await writer.request(Post(chat, "before", client_id="t-1")), Ok)

        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE activities IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        reply = await writer.request(Post(chat, "stalled", client_id="t-2"), timeout=20)
        waited = time.monotonic() - started
        await lock.rollback()
        assert isinstance(reply, Error) and reply.code == "unavailable", reply
        assert 0.9 <= waited < 10, f"answered after {waited:.1f} s"

        retried = await writer.request(Post(chat, "stalled", client_id="t-2"), timeout=20)
        assert isinstance(retried, Ok) and retried.data["seq"] == head + 2, retried  # no seq was burnt
        again = await writer.request(Post(chat, "stalled", client_id="t-2"), timeout=20)
        assert isinstance(again, Ok) and again.data["seq"] == head + 2  # idempotent: not written twice

        reader = await Client.connect(ws, token)
        clients.append(reader)
        await reader.ok(Subscribe(chat, since=head))
        await reader.ok(Subscribe(feed, since=feed_head))
        await reader.wait_events(chat, 2)
        await asyncio.sleep(0.3)
        assert [(e.seq, e.data["message"]["text"]) for e in reader.events[chat]] == [
            (head + 1, "before"), (head + 2, "stalled"),
        ]
        posted = [e for e in reader.events.get(feed, []) if e.kind == "message.posted"]
        assert len(posted) == 2, f"feed records: {[e.kind for e in reader.events.get(feed, [])]}"
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await c.close()
        await locker.close()
        await server.stop()
