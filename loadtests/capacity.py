"""Connections per process: the cap, and twice the cap (issue 9: "maximum connections per process
before refusal, behaviour at 2× that").

    python -m loadtests.capacity [-c CAP] [--factor 2] [--rooms 400] [--timeout 600]

One TwinHub server (embedded PostgreSQL) started with TWINHUB_MAX_CONNECTIONS=CAP (`-c 0`: its
own default, the open-files limit less realtime.run.server.FILES_RESERVE, read from the line it
prints at start, "... so at most N connections"); CAP + a few members seeded over --rooms rooms.

    fill      CAP authenticated, subscribed sockets (hello + subscribe): --publish-rooms posters
              (one member of each of the first rooms) and CAP - posters subscribers. At CAP - 1
              the server's /metrics is read (twinhub_websockets_open; the request itself takes the
              last place for a moment), then the last socket is opened; at CAP the server is full,
              and a GET /healthz must be answered 503, while GET /metrics is still served (a
              place over the cap, realtime/run/guard.py). The server's ESTABLISHED sockets on its
              port (psutil) are counted: CAP.
    before    the posters post --rate posts/s (in turn) for --before s; the held subscribers of
              their rooms receive: deliveries and latency with the server full but not attacked
    overload  the same posts go on while (factor - 1) × CAP more connections are attempted,
              --attempt-concurrency at a time, each a raw WebSocket upgrade request on a new TCP
              connection, read until the server closes it: answers by kind (503 with
              Retry-After: 5 expected, every one), the time each took; the server's RSS, CPU and
              open files sampled twice a second. Then the posts stop and deliveries drain.
    close     every held socket closed; /metrics must say 0 open, the server 0 sockets on its port
    refill    (unless --no-refill) CAP sockets again — every place given back is taken again —
              then one more attempt: 503; closed again

Every held socket must stay open throughout (none closed by the server, none disconnected) and
the posters' rooms must get every delivery: expected = posts acknowledged × held subscribers of
the room. The attempts are raw sockets (asyncio streams), not picows clients: what is measured
is the server's answer, and a refused attempt costs the load generator one descriptor for its
lifetime only. They come from other loopback addresses (127.0.0.2 … , ATTEMPT_SOURCES of them)
than the held sockets: each address has its own ~28,000 ephemeral ports, and from 127.0.0.1, with
19,800 held, the refused attempts' TIME_WAITs filled the ~8,400 ports left and the load
generator's connect() — not the server — set the pace (docs/reliability.md). They are counted
per address by the server's guard (127.0.0.1 is a trusted proxy, not counted), far under its
limit at --attempt-concurrency. The load generator holds one descriptor per held socket too: it must have
CAP + --attempt-concurrency + GENERATOR_FILES descriptors (checked before anything starts).

Loopback only; every loop is bounded in count and time; the server (and its PostgreSQL) are
stopped by PID (loadtests/server_proc.py) on the way out, --timeout included. The result goes to
loadtests/results/capacity-<UTC>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import errno
import os
import re
import resource
import signal
import sys
import time
from array import array
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from realtime.run.server import FILES_RESERVE

from .clients import PARSER, Publisher, Subscriber, Tally, close_all, connect, join, open_clients
from .report import Progress, machine, percentiles, table, write_result
from .scenarios.targets import ServerOptions, Target, twinhub
from .server_proc import cpu_figures, pin, raise_open_files_limit, usage

SCENARIO = "capacity"
EXPECTED = "503 Retry-After 5"  # realtime/run/guard.py _FULL
FULL_TEXT = b"try again"  # in _FULL's body
GENERATOR_FILES = 100  # descriptors the load generator needs besides its sockets (interpreter, loop, psutil...)
ATTEMPT_SOURCES = 8  # loopback addresses the attempts past the cap come from: 127.0.0.2 … 127.0.0.9
EXTRA_MEMBERS = 5  # seeded beyond the cap (the refill reuses the same tokens)
_CAP_LINE = re.compile(rb"so at most ([\d,]+) connections")


@dataclass(frozen=True)
class CapacityParams:
    cap: int = 10_000  # TWINHUB_MAX_CONNECTIONS; 0: the server's own default
    factor: float = 2.0  # connections attempted in all, as a multiple of the cap
    rooms: int = 400
    publish_rooms: int = 4  # posters, one per room, in the first rooms
    rate: float = 20.0  # posts/s over all posters
    before: float = 10.0  # seconds of posts with the server full, before the overload
    text_size: int = 100
    concurrency: int = 200  # handshakes at a time while filling
    attempt_concurrency: int = 50  # attempts past the cap in flight at a time
    attempt_timeout: float = 10.0  # per attempt: connect, send the request, read the whole answer
    overload_timeout: float = 300.0  # bound on the whole overload phase
    connect_timeout: float = 60.0  # per held connection
    settle: float = 5.0  # seconds before each RSS reading
    drain: float = 15.0  # longest wait for deliveries once the posts stop
    refill: bool = True
    server_cpu: int | None = 0
    client_cpu: int | None = 1


class Watch:
    """What happened to the held sockets: disconnected while we were not closing them."""

    def __init__(self) -> None:
        self.closing = False
        self.lost = 0


class HeldSubscriber(Subscriber):
    def __init__(self, tally: Tally, watch: Watch) -> None:
        super().__init__(tally)
        self.watch = watch

    def on_ws_disconnected(self, transport: Any) -> None:
        if not self.watch.closing:
            self.watch.lost += 1
        super().on_ws_disconnected(transport)


class HeldPublisher(Publisher):
    def __init__(self, tally: Tally, watch: Watch, channel: str, text_size: int) -> None:
        super().__init__(tally, channel, text_size)
        self.watch = watch

    def on_ws_disconnected(self, transport: Any) -> None:
        if not self.watch.closing:
            self.watch.lost += 1
        super().on_ws_disconnected(transport)


# -- raw attempts ------------------------------------------------------------------------------


def _upgrade_request(port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: twinhub.v1.json\r\n\r\n"
    ).encode()


def _plain_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()


async def attempt(port: int, request: bytes, timeout: float, source: str | None = None) -> tuple[str, int, str]:
    """One connection (from the loopback address `source`, if given): send `request`, read the
    answer until the server closes (or, for a 101, until the head). Returns (kind, ns it took,
    the status line or error)."""
    started = time.monotonic_ns()
    writer: asyncio.StreamWriter | None = None
    detail = ""
    try:
        async with asyncio.timeout(timeout):
            local = (source, 0) if source else None
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            detail = lines[0]
            parts = lines[0].split(" ", 2)
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
            headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
            if status == 101:
                kind = "101 accepted"
            else:
                body = await reader.read(65536)
                kind = f"{status}"
                if "retry-after" in headers:
                    kind += f" Retry-After {headers['retry-after']}"
                if kind == EXPECTED and FULL_TEXT not in body:
                    kind += " (other text)"
    except TimeoutError:
        kind = "timeout"
    except asyncio.IncompleteReadError as exc:
        kind = "cut mid-answer" if exc.partial else "closed without an answer"
    except asyncio.LimitOverrunError:
        kind = "answer head too long"
    except ConnectionResetError:
        kind = "reset"
    except ConnectionRefusedError:
        kind = "connection refused"
    except OSError as exc:
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            kind = "load generator out of files"
        else:
            kind = f"error {errno.errorcode.get(exc.errno or 0, exc.errno)}"
        detail = str(exc)
    finally:
        if writer is not None:
            writer.close()
    return kind, time.monotonic_ns() - started, detail


# -- the server's side ---------------------------------------------------------------------------


def server_sockets(process: psutil.Process, port: int) -> int:
    """The server's ESTABLISHED TCP sockets on its listening port (its clients)."""
    return sum(
        1 for c in process.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
    )


def metric(target: Target, name: str) -> int | None:
    try:
        value = target.counters().get(name)
        return None if value is None else int(value)
    except OSError as exc:  # urllib's errors are OSErrors; a 503 when the server is full
        return None if "503" not in str(exc) else -503


class Sampler:
    """The server's RSS, open files and CPU, every `every` seconds while running."""

    def __init__(self, process: psutil.Process, every: float = 0.5) -> None:
        self.process = process
        self.every = every
        self.samples: list[dict[str, float]] = []

    async def run(self, until: float) -> None:
        last_t, last_cpu = time.monotonic(), _cpu(self.process)
        while time.monotonic() < until:
            await asyncio.sleep(self.every)
            with contextlib.suppress(psutil.Error):
                now, cpu = time.monotonic(), _cpu(self.process)
                self.samples.append({
                    "t": round(now, 2), "rss_mb": round(self.process.memory_info().rss / 2**20, 1),
                    "fds": self.process.num_fds(), "cpu_percent": round(100 * (cpu - last_cpu) / max(now - last_t, 1e-9), 1),
                })
                last_t, last_cpu = now, cpu

    def figures(self) -> dict[str, Any]:
        if not self.samples:
            return {"samples": 0}
        start = self.samples[0]["t"]
        return {
            "samples": len(self.samples),
            "rss_max_mb": max(s["rss_mb"] for s in self.samples),
            "fds_max": max(s["fds"] for s in self.samples),
            "cpu_max_percent": max(s["cpu_percent"] for s in self.samples),
            "series": [{**s, "t": round(s["t"] - start, 2)} for s in self.samples],
        }


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


# -- the load -------------------------------------------------------------------------------------


async def publish(publishers: list[HeldPublisher], rate: float, stop: asyncio.Event, until: float,
                  max_in_flight: int = 50) -> int:
    """Open loop, `rate` posts/s over all publishers in turn, each stamped with its scheduled
    time, until `stop` is set or `until` (monotonic s); returns the sends skipped (a publisher
    with `max_in_flight` posts unanswered)."""
    interval = 1e9 / rate
    start = time.monotonic_ns()
    k = skipped = 0
    while not stop.is_set() and time.monotonic() < until:
        now = time.monotonic_ns()
        while start + int(k * interval) <= now:
            pub = publishers[k % len(publishers)]
            if pub.in_flight < max_in_flight:
                pub.post(start + int(k * interval))
            else:
                skipped += 1
            k += 1
        await asyncio.sleep(max(start + int(k * interval) - time.monotonic_ns(), 1_000_000) / 1e9)
    return skipped


async def drain(tally: Tally, publishers: list[HeldPublisher], expected: Any, seconds: float) -> None:
    """Until every post is answered and the deliveries reached `expected()` (or stopped
    coming for 2 s), at most `seconds`."""
    end = time.monotonic() + seconds
    seen, still = -1, 0.0
    while time.monotonic() < end:
        if not any(p.in_flight for p in publishers) and tally.deliveries >= expected():
            return
        if tally.deliveries == seen and not any(p.in_flight for p in publishers):
            still += 0.1
            if still >= 2.0:
                return
        else:
            seen, still = tally.deliveries, 0.0
        await asyncio.sleep(0.1)


@dataclass
class Phase:
    """Deliveries during one phase of posts."""

    acked: dict[str, int]  # per channel, posts acknowledged at the start
    deliveries: int
    sent: int


def _mark(tally: Tally, publishers: list[HeldPublisher]) -> Phase:
    return Phase({p.channel: p.acked for p in publishers}, tally.deliveries, sum(p.sent for p in publishers))


def _phase_figures(start: Phase, end: Phase, subscribers_in: Counter[str], latencies: array, seconds: float,
                   skipped: int) -> dict[str, Any]:
    acked = {ch: end.acked[ch] - start.acked[ch] for ch in end.acked}
    expected = sum(n * subscribers_in[ch] for ch, n in acked.items())
    received = end.deliveries - start.deliveries
    return {
        "seconds": round(seconds, 2),
        "posts_sent": end.sent - start.sent,
        "posts_acked": sum(acked.values()),
        "sends_skipped": skipped,
        "deliveries_expected": expected,
        "deliveries_received": received,
        "deliveries_missing": expected - received,
        "latency": percentiles(latencies),
    }


async def settle(process: psutil.Process, progress: Progress, phase: str, seconds: float) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, left))
        progress.show(f"[capacity] {phase}: server RSS {process.memory_info().rss / 2**20:,.1f} MB")


async def open_last(url: str, tally: Tally, watch: Watch, token: str, channel: str, timeout: float,
                    tries: int = 40) -> tuple[HeldSubscriber, int]:
    """The CAPth socket. Right after the /metrics read the server may not have given back that
    request's place yet: a 503 here is retried (0.25 s apart, at most `tries` times)."""
    for k in range(tries):
        client: HeldSubscriber | None = None
        try:
            client = await connect(url, lambda: HeldSubscriber(tally, watch), timeout)  # type: ignore[assignment]
            assert client is not None
            await join(client, token, channel, timeout)
            return client, k
        except Exception:  # noqa: BLE001 — picows' upgrade error on a 503; retried
            if client is not None:
                await close_all([client], timeout)
            if k == tries - 1:
                raise
            await asyncio.sleep(0.25)
    raise AssertionError("unreachable")


async def attempts(port: int, count: int, concurrency: int, timeout: float, until: float,
                   progress: Progress) -> dict[str, Any]:
    """`count` attempts, `concurrency` at a time, until `until` (monotonic s)."""
    kinds: Counter[str] = Counter()
    durations: dict[str, array] = {}
    examples: dict[str, str] = {}
    next_one = [0]
    done = [0]

    async def worker(source: str) -> None:
        while next_one[0] < count and time.monotonic() < until:
            next_one[0] += 1
            kind, ns, detail = await attempt(port, _upgrade_request(port), timeout, source)
            kinds[kind] += 1
            durations.setdefault(kind, array("q")).append(ns)
            examples.setdefault(kind, detail)
            done[0] += 1
            if done[0] % 1000 == 0:
                progress.show(f"[capacity] overload: {done[0]:,}/{count:,} attempted, {kinds[EXPECTED]:,} refused 503")

    started = time.monotonic()
    await asyncio.gather(*(worker(f"127.0.0.{2 + i % ATTEMPT_SOURCES}") for i in range(min(concurrency, count))))
    took = time.monotonic() - started
    return {
        "attempted": done[0],
        "not_attempted": count - done[0],
        "seconds": round(took, 2),
        "attempts_per_s": round(done[0] / max(took, 1e-9)),
        "by_kind": dict(kinds.most_common()),
        "refused_as_expected": kinds[EXPECTED],
        "other_answers": done[0] - kinds[EXPECTED],
        "time_by_kind": {k: percentiles(v) for k, v in durations.items()},
        "examples": examples,
    }


async def measure(target: Target, cap: int, p: CapacityParams, progress: Progress) -> dict[str, Any]:
    pin(p.client_cpu)
    own_files = raise_open_files_limit()
    need = cap + p.attempt_concurrency + GENERATOR_FILES
    if need > own_files:
        raise RuntimeError(f"the load generator needs {need:,} open files for a cap of {cap:,} but may have "
                           f"{own_files:,}: lower the cap (-c) or --attempt-concurrency")
    server = target.server
    process = server.process
    me = psutil.Process()
    url = target.url
    logins = target.logins
    if len(logins) < cap:
        raise RuntimeError(f"{len(logins):,} members seeded, fewer than the cap {cap:,}")
    posters = logins[: p.publish_rooms]
    channels = [ch for _, ch in posters]
    if len(set(channels)) != len(channels):
        raise RuntimeError("--publish-rooms must not exceed --rooms")
    watch, tally, pub_tally = Watch(), Tally(), Tally()
    figures: dict[str, Any] = {"server": target.name, "cap": cap, "server_pid": server.pid}

    await settle(process, progress, "settling", p.settle)
    start_usage = usage(process)
    figures["server_rss_before_mb"] = round(start_usage.rss / 2**20, 1)
    figures["server_fds_before"] = process.num_fds()

    # -- fill -----------------------------------------------------------------------------------
    publishers: list[HeldPublisher] = []
    subscribers: list[HeldSubscriber] = []
    last: HeldSubscriber | None = None
    fill_started = time.monotonic()
    try:
        for token, channel in posters:
            pub: HeldPublisher = await connect(  # type: ignore[assignment]
                url, lambda ch=channel: HeldPublisher(pub_tally, watch, ch, p.text_size), p.connect_timeout,
            )
            publishers.append(pub)
            await join(pub, token, channel, p.connect_timeout)
        subscriber_logins = logins[p.publish_rooms: cap - 1]

        async def setup(client: HeldSubscriber, token: str, channel: str) -> None:
            await join(client, token, channel, p.connect_timeout)

        subscribers = await open_clients(
            url, subscriber_logins, lambda: HeldSubscriber(tally, watch), setup,
            concurrency=p.concurrency, timeout=p.connect_timeout,
            on_joined=lambda n: n % 500 == 0 and progress.show(
                f"[capacity] fill: {n + len(publishers):,}/{cap:,} connected, "
                f"server RSS {process.memory_info().rss / 2**20:,.1f} MB"),
        )
        await asyncio.sleep(1.0)  # presence and welcome frames flushed; every place settled
        figures["websockets_open_at_cap_minus_1"] = metric(target, "twinhub_websockets_open")
        token, channel = logins[cap - 1]
        last, retries = await open_last(url, tally, watch, token, channel, p.connect_timeout)
        subscribers.append(last)
        fill_s = time.monotonic() - fill_started
        held = len(subscribers) + len(publishers)
        await settle(process, progress, f"{held:,} held", p.settle)
        full_usage = usage(process)
        healthz, _, healthz_line = await attempt(server.port, _plain_request(server.port, "/healthz"), 5.0)
        metrics_when_full, _, _ = await attempt(server.port, _plain_request(server.port, "/metrics"), 5.0)
        sockets_at_cap = await asyncio.to_thread(server_sockets, process, server.port)
        figures["fill"] = {
            "held": held,
            "publishers": len(publishers),
            "subscribers": len(subscribers),
            "seconds": round(fill_s, 2),
            "connections_per_s": round(held / fill_s),
            "last_connection_retries": retries,
            "server_rss_held_mb": round(full_usage.rss / 2**20, 1),
            "kb_per_connection": round((full_usage.rss - start_usage.rss) / held / 1024, 1),
            "server_fds_held": process.num_fds(),
            "server_sockets_on_port": sockets_at_cap,
            "healthz_when_full": healthz,
            "healthz_line": healthz_line,
            "metrics_when_full": metrics_when_full,  # a full process cannot be scraped either
            "load_generator_rss_mb": round(me.memory_info().rss / 2**20, 1),
        }
        subscribers_in: Counter[str] = Counter(c for _, c in logins[p.publish_rooms: cap])
        subscribers_in = Counter({ch: subscribers_in[ch] for ch in channels})
        figures["held_subscribers_in_publishing_rooms"] = dict(subscribers_in)

        # -- before: posts with the server full ------------------------------------------------
        tally.recording = True
        pub_tally.recording = True
        mark0 = _mark(tally, publishers)
        helpers = server.helpers()
        b0, bc0 = usage(process, helpers), usage(me)  # the baseline the overload's CPU compares with
        t0 = time.monotonic()
        stop = asyncio.Event()
        progress.show(f"[capacity] before: {p.rate:g} posts/s for {p.before:g} s")
        skipped = await publish(publishers, p.rate, stop, time.monotonic() + p.before)
        posting_s = time.monotonic() - t0
        b1, bc1 = usage(process, helpers), usage(me)

        def expected_since(mark: Phase) -> Any:
            return lambda: sum((pub.acked - mark.acked[pub.channel]) * subscribers_in[pub.channel] for pub in publishers)

        await drain(tally, publishers, expected_since(mark0), p.drain)
        mark1 = _mark(tally, publishers)
        figures["before"] = {**_phase_figures(mark0, mark1, subscribers_in, tally.latencies, posting_s, skipped),
                             "server": cpu_figures(b0, b1, bc0, bc1)}
        tally.latencies = array("q")

        # -- overload: attempts past the cap while the posts go on -----------------------------
        extra = max(round((p.factor - 1) * cap), 0)
        until = time.monotonic() + p.overload_timeout
        sampler = Sampler(process)
        s0, c0 = usage(process, helpers), usage(me)
        stop = asyncio.Event()
        t0 = time.monotonic()
        sampling = asyncio.create_task(sampler.run(until))
        posting = asyncio.create_task(publish(publishers, p.rate, stop, until))
        try:
            tried = await attempts(server.port, extra, p.attempt_concurrency, p.attempt_timeout, until, progress)
        finally:
            stop.set()
            skipped = await posting
            posting_s = time.monotonic() - t0
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        s1, c1 = usage(process, helpers), usage(me)
        await drain(tally, publishers, expected_since(mark1), p.drain)
        mark2 = _mark(tally, publishers)
        figures["overload"] = {
            **tried,
            "server": {**cpu_figures(s0, s1, c0, c1), **sampler.figures(),
                       "rss_after_mb": round(s1.rss / 2**20, 1)},
            "held_sockets": _phase_figures(mark1, mark2, subscribers_in, tally.latencies, posting_s, skipped),
        }
        tally.recording = False
        healthz, _, _ = await attempt(server.port, _plain_request(server.port, "/healthz"), 5.0)
        figures["after_overload"] = {
            "server_sockets_on_port": await asyncio.to_thread(server_sockets, process, server.port),
            "healthz": healthz,
            "server_fds": process.num_fds(),
        }
        figures["held_sockets"] = {
            "lost": watch.lost,  # disconnected while we were not closing them
            "closed_by_server": sum(tally.closes.values()) + sum(pub_tally.closes.values()),
            "close_codes": dict(tally.closes + pub_tally.closes),
            "error_codes": dict(tally.errors + pub_tally.errors),
            "seq_anomalies": tally.seq_anomalies,
            "refused_posts": dict(sum((pub.refused for pub in publishers), Counter())),
            "ack_latency": percentiles(array("q", [x for pub in publishers for x in pub.ack_latencies])),
        }
    finally:
        watch.closing = True
        progress.show(f"[capacity] closing {len(subscribers) + len(publishers):,}")
        await close_all([*subscribers, *publishers], p.connect_timeout)

    # -- close ------------------------------------------------------------------------------------
    await settle(process, progress, "closed", p.settle)
    closed_usage = usage(process)
    figures["after_close"] = {
        "server_sockets_on_port": await asyncio.to_thread(server_sockets, process, server.port),
        "websockets_open": metric(target, "twinhub_websockets_open"),
        "server_fds": process.num_fds(),
        "server_rss_mb": round(closed_usage.rss / 2**20, 1),
    }

    # -- refill: every place given back is taken again -------------------------------------------
    if p.refill:
        watch.closing = False
        refill_tally = Tally()
        again: list[HeldSubscriber] = []
        t0 = time.monotonic()
        try:
            async def setup2(client: HeldSubscriber, token: str, channel: str) -> None:
                await join(client, token, channel, p.connect_timeout)

            again = await open_clients(
                url, logins[:cap], lambda: HeldSubscriber(refill_tally, watch), setup2,
                concurrency=p.concurrency, timeout=p.connect_timeout,
                on_joined=lambda n: n % 500 == 0 and progress.show(f"[capacity] refill: {n:,}/{cap:,}"),
            )
            refill_s = time.monotonic() - t0
            next_kind, next_ns, _ = await attempt(server.port, _upgrade_request(server.port), p.attempt_timeout)
            figures["refill"] = {
                "opened": len(again), "seconds": round(refill_s, 2), "next_attempt": next_kind,
                "next_attempt_ms": round(next_ns / 1e6, 2),
                "server_sockets_on_port": await asyncio.to_thread(server_sockets, process, server.port),
                "lost": watch.lost,
            }
        finally:
            watch.closing = True
            await close_all(again, p.connect_timeout)
        await settle(process, progress, "closed again", p.settle)
        figures["refill"]["after_close_websockets_open"] = metric(target, "twinhub_websockets_open")
        figures["refill"]["after_close_server_sockets_on_port"] = await asyncio.to_thread(
            server_sockets, process, server.port)
        figures["refill"]["server_rss_after_close_mb"] = round(process.memory_info().rss / 2**20, 1)
    progress.done()
    figures["load_generator_rss_mb"] = round(me.memory_info().rss / 2**20, 1)
    figures["load_generator_open_files_limit"] = own_files
    return figures


# -- report -----------------------------------------------------------------------------------------


def rows(f: dict[str, Any]) -> list[list[Any]]:
    fill, over, held = f["fill"], f["overload"], f["held_sockets"]
    before, during = f["before"], over["held_sockets"]
    srv = over["server"]
    out: list[list[Any]] = [
        ["cap (TWINHUB_MAX_CONNECTIONS or the server's default)", f["cap"]],
        ["held sockets (hello + subscribe)", fill["held"]],
        ["  fill: s / connections per s", f"{fill['seconds']:,.1f} / {fill['connections_per_s']:,}"],
        ["  /metrics websockets_open at cap - 1", f.get("websockets_open_at_cap_minus_1")],
        ["  server sockets on its port at cap (psutil)", fill["server_sockets_on_port"]],
        ["  GET /healthz, GET /metrics when full", f"{fill['healthz_when_full']}, {fill.get('metrics_when_full')}"],
        ["server RSS MB: before -> held", f"{f['server_rss_before_mb']:,.1f} -> {fill['server_rss_held_mb']:,.1f}"],
        ["  KB per held socket", fill["kb_per_connection"]],
        ["server open files: before -> held", f"{f['server_fds_before']:,} -> {fill['server_fds_held']:,}"],
        ["attempts past the cap", over["attempted"]],
        ["  not attempted (time bound)", over["not_attempted"]],
        ["  s / attempts per s", f"{over['seconds']:,.1f} / {over['attempts_per_s']:,}"],
    ]
    for kind, n in over["by_kind"].items():
        out.append([f"  answered {kind}", n])
    exp = over["time_by_kind"].get(EXPECTED, {})
    out += [
        ["  refusal time p50 / p99 / max ms", f"{exp.get('p50_ms', '-')} / {exp.get('p99_ms', '-')} / {exp.get('max_ms', '-')}"],
        ["server CPU %, before (full, posts only)", before.get("server", {}).get("server_cpu_percent")],
        ["server during overload: CPU % (mean / max sample)", f"{srv['server_cpu_percent']} / {srv.get('cpu_max_percent', '-')}"],
        ["  RSS MB max / open files max", f"{srv.get('rss_max_mb', '-')} / {srv.get('fds_max', '-')}"],
        ["  load generator CPU %", srv["client_cpu_percent"]],
        ["  other processes CPU %", srv["other_processes_cpu_percent"]],
        ["held: deliveries expected / received, before", f"{before['deliveries_expected']:,} / {before['deliveries_received']:,}"],
        ["held: deliveries expected / received, overload", f"{during['deliveries_expected']:,} / {during['deliveries_received']:,}"],
        ["held: latency p50 / p99 ms, before", f"{before['latency'].get('p50_ms', '-')} / {before['latency'].get('p99_ms', '-')}"],
        ["held: latency p50 / p99 ms, overload", f"{during['latency'].get('p50_ms', '-')} / {during['latency'].get('p99_ms', '-')}"],
        ["held: lost / closed by server / seq anomalies", f"{held['lost']} / {held['closed_by_server']} / {held['seq_anomalies']}"],
        ["after overload: server sockets on port / healthz", f"{f['after_overload']['server_sockets_on_port']:,} / {f['after_overload']['healthz']}"],
        ["after close: websockets_open / server sockets on port", f"{f['after_close']['websockets_open']} / {f['after_close']['server_sockets_on_port']}"],
        ["after close: server open files / RSS MB", f"{f['after_close']['server_fds']:,} / {f['after_close']['server_rss_mb']:,.1f}"],
    ]
    if "refill" in f:
        r = f["refill"]
        out += [
            ["refill: opened again / next attempt", f"{r['opened']:,} / {r['next_attempt']}"],
            ["refill closed: websockets_open / sockets on port", f"{r['after_close_websockets_open']} / {r['after_close_server_sockets_on_port']}"],
        ]
    return out


def checks(f: dict[str, Any], p: CapacityParams) -> list[dict[str, Any]]:
    cap, fill, over, held = f["cap"], f["fill"], f["overload"], f["held_sockets"]
    during = over["held_sockets"]
    out = [
        {"target": "the cap's sockets held, and counted by the server",
         "met": fill["held"] == cap and fill["server_sockets_on_port"] == cap
         and f.get("websockets_open_at_cap_minus_1") == cap - 1 and fill["healthz_when_full"] == EXPECTED},
        {"target": f"every attempt past the cap answered {EXPECTED}",
         "met": over["not_attempted"] == 0 and over["refused_as_expected"] == over["attempted"]},
        {"target": "no held socket closed or lost, every delivery received",
         "met": held["lost"] == 0 and held["closed_by_server"] == 0 and held["seq_anomalies"] == 0
         and f["before"]["deliveries_missing"] == 0 and during["deliveries_missing"] == 0},
        {"target": "the server's counts back to 0 after close",
         "met": f["after_close"]["websockets_open"] == 0 and f["after_close"]["server_sockets_on_port"] == 0},
    ]
    if "refill" in f:
        r = f["refill"]
        out.append({"target": "every place given back taken again, then refused",
                    "met": r["opened"] == cap and r["next_attempt"] == EXPECTED and r["lost"] == 0
                    and r["after_close_websockets_open"] == 0})
    return out


# -- command line -----------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    d = CapacityParams()
    two = (os.cpu_count() or 1) >= 2
    a = argparse.ArgumentParser(prog="python -m loadtests.capacity", description=__doc__.split("\n\n")[0])
    a.add_argument("-c", "--cap", type=int, default=d.cap,
                   help=f"TWINHUB_MAX_CONNECTIONS (default {d.cap:,}); 0: the server's default (open files - {FILES_RESERVE})")
    a.add_argument("--factor", type=float, default=d.factor, help="connections attempted in all / cap (default 2)")
    a.add_argument("--rooms", type=int, default=d.rooms, help=f"rooms the members are spread over (default {d.rooms})")
    a.add_argument("--publish-rooms", type=int, default=d.publish_rooms, help="rooms posted to, one poster each (default 4)")
    a.add_argument("-r", "--rate", type=float, default=d.rate, help="posts/s over all posters (default 20)")
    a.add_argument("--before", type=float, default=d.before, help="seconds of posts before the overload (default 10)")
    a.add_argument("--concurrency", type=int, default=d.concurrency, help="handshakes at a time while filling (default 200)")
    a.add_argument("--attempt-concurrency", type=int, default=d.attempt_concurrency,
                   help="attempts past the cap in flight at a time (default 50)")
    a.add_argument("--attempt-timeout", type=float, default=d.attempt_timeout, help="per attempt, s (default 10)")
    a.add_argument("--no-refill", action="store_true", help="skip taking every place again after the close")
    a.add_argument("--server-cpu", type=int, default=0 if two else None, help="CPU the server runs on (default 0)")
    a.add_argument("--client-cpu", type=int, default=1 if two else None, help="CPU the load generator runs on (default 1)")
    a.add_argument("--timeout", type=float, default=600.0, help="bound on the whole run, s (default 600)")
    a.add_argument("--keep", action="store_true", help="keep the work folder (server log, data)")
    return a


async def run(args: argparse.Namespace, p: CapacityParams, progress: Progress) -> dict[str, Any]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The server's open-files limit is raised to the hard limit (server_proc._child_setup), so its
    # default cap will be this; seeded before the server starts, so computed rather than read.
    expected_cap = p.cap or (hard - FILES_RESERVE)
    os.environ["TWINHUB_MAX_CONNECTIONS"] = str(p.cap)  # 0: the server's own default
    opts = ServerOptions(server_cpu=p.server_cpu, keep=args.keep,
                         start_timeout=max(120.0, expected_cap / 100))
    async with twinhub(opts, subscribers=expected_cap + EXTRA_MEMBERS, rooms=p.rooms) as target:
        found = _CAP_LINE.search(target.server.log.read_bytes())
        if found is None:
            raise RuntimeError(f"the server did not print its cap:\n{target.server.log_tail()}")
        cap = int(found.group(1).replace(b",", b""))
        print(f"server says: at most {cap:,} connections", file=sys.stderr)
        if cap > expected_cap:
            raise RuntimeError(f"the server's cap {cap:,} is above the {expected_cap:,} members seeded")
        figures = await measure(target, cap, p, progress)
        figures["server_log_tail"] = target.server.log_tail()[-4000:]
        return figures


async def bounded(args: argparse.Namespace, p: CapacityParams, progress: Progress) -> dict[str, Any]:
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    async with asyncio.timeout(args.timeout):
        return await run(args, p, progress)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    p = CapacityParams(
        cap=args.cap, factor=args.factor, rooms=args.rooms, publish_rooms=args.publish_rooms, rate=args.rate,
        before=args.before, concurrency=args.concurrency, attempt_concurrency=args.attempt_concurrency,
        attempt_timeout=args.attempt_timeout, refill=not args.no_refill, server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        overload_timeout=max(args.timeout / 2, 30.0),
    )
    if p.cap < 0 or p.factor < 1 or p.rooms < p.publish_rooms or p.publish_rooms < 1 or p.rate <= 0:
        print("need: cap >= 0, factor >= 1, 1 <= publish-rooms <= rooms, rate > 0", file=sys.stderr)
        return 2
    try:
        import uvloop

        loop_name, loop_factory = "uvloop", uvloop.new_event_loop
    except ImportError:
        loop_name, loop_factory = "asyncio", None
    host = machine()
    print(f"load generator: pid {os.getpid()}, {loop_name}, {PARSER} parser; commit {host['commit']}", file=sys.stderr)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            figures = runner.run(bounded(args, p, Progress()))
    except TimeoutError:
        print(f"\nstopped: the run took longer than --timeout {args.timeout:g} s (servers stopped)", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:
        print(f"\nfailed: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; servers stopped", file=sys.stderr)
        return 130
    print(f"\ncapacity: cap {figures['cap']:,}, {p.factor:g}x attempted, {p.rooms} rooms\n")
    print(table(["", "TwinHub"], rows(figures)))
    figures["checks"] = checks(figures, p)
    for check in figures["checks"]:
        print(f"check: {check['target']}: {'MET' if check['met'] else 'NOT MET'}")
    params = {**asdict(p), "event_loop": loop_name, "json_parser": PARSER, "database": "embedded",
              "timeout": args.timeout}
    path = write_result(SCENARIO, params, figures, host)
    print(f"\nresult written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
