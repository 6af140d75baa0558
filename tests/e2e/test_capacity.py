"""A full process (issue 9: "maximum connections per process before refusal, behaviour at 2×
that"): past `max_connections` a new connection is answered 503 with Retry-After, the ones
already open keep working, and a place given back is taken again. The default cap follows the
open-files limit, so that the process refuses cleanly before accept() starts failing."""

from __future__ import annotations

import asyncio
import resource
import socket
import struct
import sys
import time

import httpx
import pytest
import websockets

from protocol import Post, Subscribe
from realtime.config import Settings
from realtime.policy import Area
from realtime.run.server import FILES_RESERVE, LISTEN_BACKLOG, RunningServer, connection_cap
from realtime.web.headers import SECURITY_HEADERS
from tests.client import Client
from tests.conftest import login

CAP = 8


def guard_of(running: RunningServer):
    return running.server.config.http.guard


async def total_is(running: RunningServer, expected: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while guard_of(running).total != expected:
        assert time.monotonic() < deadline, f"{guard_of(running).total} connections counted, not {expected}"
        await asyncio.sleep(0.02)


async def test_past_the_cap_connections_are_refused_and_the_open_ones_live_on(database_url, world, http):
    settings = Settings(database_url=database_url, port=0, log_level="warning", max_connections=CAP)
    running = RunningServer(settings)
    await running.start()
    url = f"ws://127.0.0.1:{running.port}/ws"
    held: list[Client] = []
    try:
        await total_is(running, 0)
        tokens = [await login(http, world.users[who].username) for who in ("pupil_member", "teacher_member")]
        chat = world.channel(Area.CHAT)
        for i in range(CAP):
            client = await Client.connect(url, tokens[i % 2])
            await client.ok(Subscribe(chat))
            held.append(client)
        await total_is(running, CAP)

        # Twice the cap: every one of the extra connections is refused, cleanly.
        refused = 0
        for _ in range(CAP):
            with pytest.raises(websockets.InvalidStatus) as caught:
                await websockets.connect(url, subprotocols=["twinhub.v1.json"])
            response = caught.value.response
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert b"try again" in response.body
            for name, value in SECURITY_HEADERS:
                assert response.headers[name.decode()] == value.decode()
            refused += 1
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}", timeout=5) as plain:
            assert (await plain.get("/healthz")).status_code == 503  # a balancer sends people elsewhere
            # ... but monitoring still sees it, as full (its scrape takes a place over the cap).
            scrape = await plain.get("/metrics")
            assert scrape.status_code == 200, scrape.text
            gauges = dict(line.split(" ", 1) for line in scrape.text.splitlines() if not line.startswith("#"))
            assert gauges["twinhub_connections_max"] == str(CAP)
            assert gauges["twinhub_connections"] == str(CAP + 1)
            assert int(gauges["twinhub_connections_refused_full_total"]) >= CAP + 1
        assert refused == CAP and guard_of(running).refused_full >= CAP + 1
        await total_is(running, CAP)  # the refused ones took no place (and the scrape gave its back)

        # The connections already open were not disturbed: a post reaches all of them.
        ok = await held[0].ok(Post(chat, "still here"))
        for client in held:
            [event] = [e for e in await client.wait_events(chat, 1) if e.seq == ok.data["seq"]]
            assert event.data["message"]["text"] == "still here"

        # Places given back are taken again.
        for client in held[-3:]:
            await client.close()
        del held[-3:]
        await total_is(running, CAP - 3)
        for _ in range(3):
            client = await Client.connect(url, tokens[0])
            await client.ok(Subscribe(chat))
            held.append(client)
        await total_is(running, CAP)
    finally:
        for client in held:
            await client.close()
        await total_is(running, 0)  # every socket gave its place back, WebSockets and HTTP alike
        await running.stop()


def test_the_default_cap_follows_the_open_files_limit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_cap(Settings()) == soft - FILES_RESERVE
    assert connection_cap(Settings(max_connections=123)) == 123


def _listen_queue_size(sock: socket.socket) -> int:
    """The accept queue's size of a listening socket: Linux reports it in tcp_info's tcpi_sacked
    (and the connections waiting in it in tcpi_unacked) for a socket in LISTEN."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, 8 + 4 * 5)[0]  # 8 one-byte fields, then rto, ato, snd_mss, rcv_mss, unacked


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tcp_info's queue size is Linux's")
def test_the_accept_queue_is_the_largest_the_system_allows(server):
    """Threat: a reconnect storm (a school's Wi-Fi back, a restart) larger than the queue of
    connections not yet accepted: each one past it waits a second for its SYN to be sent again
    (697 of a 5,000 storm at the old 2,048, docs/performance.md). The server asks for 65,535 and
    the kernel gives net.core.somaxconn; this reads what the running server's socket got, after
    uvicorn's own listen()."""
    somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
    assert _listen_queue_size(server.sock) == min(LISTEN_BACKLOG, somaxconn)
    assert somaxconn < 2048 or _listen_queue_size(server.sock) > 2048
