"""Scale-out: the fan-out of `fanout` against TwinHub run as 1, 2 or 4 processes sharing events
over Redis, and what the Redis hop costs.

    python -m loadtests scaleout                  1,2,4 processes twice (1,2,4,4,2,1), then the hop: ~4.5 min
    python -m loadtests scaleout --processes 1,2 --rounds 1 --no-hop
    python -m loadtests scaleout --database-dir /dev/shm      PostgreSQL's data in memory: no disk stalls

Started once for the whole run: one PostgreSQL (the embedded one, in a temporary folder or in
--database-dir, or a throwaway database on --database-url), one throwaway Redis-compatible server
(realtime.run.embedded_redis.EmbeddedRedis, or --redis-url), and the seeded data (loadtests/seed.py):
C pupils in one room, a teacher and K-1 more pupils who post. Then, for each step, N separate
`python -m realtime serve --port 0 --database-url URL` processes, each on a port of its own,
sharing that database and (for a step over Redis) that Redis, with a TWINHUB_REDIS_PREFIX fresh
for the step. Separate processes on separate ports rather than `serve --workers N` (one port
shared by N processes, the kernel choosing which one accepts each connection): here the load
generator decides which process each subscriber connects to, so the spread is exactly even, and
each process's CPU is measured by its PID. The servers of a step are stopped (by PID) before the
next step starts; the database and its data are kept across the steps (each step's subscribers
subscribe at the room's head). Before each step the run waits (at most --quiet-wait s) for the
machine to be under 10 % busy.

Load: K publisher connections (--publishers, default 4: one session takes at most 64 posts at a
time), all through process 0, posting to the room in turn.
  closed loop: a window of W posts (default 200) over all publishers; a post leaves the window
     once it was answered *and* delivered to every subscriber (per server process: the
     deliveries its subscribers received / their number). The loop closes over the whole way,
     the Redis hop and the slowest process included (--window-on ok: as `fanout`, on the ok).
  open loop: R posts/s, each stamped with its scheduled send time.

Steps:
  scale-out, closed loop, --rounds times (every other round in reverse order, so that a drift of
  the machine, or the first step's place, weighs on every configuration alike):
    "1 process"       in-process bus (no TWINHUB_REDIS_URL): the plain one-process server
    "N processes"     Redis bus; subscriber i connects to process i mod N (an even spread); the
                      publishers post through process 0, which delivers to its own subscribers
                      and publishes each event to Redis for the other N-1 processes
  hop (unless --no-hop), closed loop (window W), then open loop (--hop-rate posts/s):
    "1 process"       in-process bus, publishers and every subscriber on it
    "1 process, Redis bus"  the same with TWINHUB_REDIS_URL set: events also go out to Redis (and
                      come back, skipped) and each post's rate limit is checked in Redis, but no
                      delivery crosses it
    "hop A->B"        2 processes over Redis: the publishers post through A, every subscriber is
                      on B, so every delivery crossed Redis (A publishes, B's reader hands the
                      event to B's hub)

Subscribers (--lean, on by default): 9 in 10 on each process are clients.LeanSubscriber, which
count a message's events and check their seqs on its bytes without parsing it (the load
generator's CPU then goes per WebSocket message, not per delivery); 1 in --latency-every (10)
parses every message whole and records every delivery's latency, as `fanout`'s subscribers do.
Latencies, and open loop's per-post figures, come from that sample; counts and seq checks from
every subscriber. The time spent in each kind's message handler is reported per delivery.
--no-lean: every subscriber parses fully, as before (the load generator then costs 2-4.5 us per
delivery against 1.2-1.4 lean: docs/performance.md, "With a lean load generator").

Measured per step as `fanout` measures (deliveries/s, latency from the send time written in the
text, ack latency, the same checks after the drain: every acknowledged post reached every
subscriber once, in seq order), and also:
- per server process: its subscribers' deliveries/s, events per WebSocket message and latency,
  its CPU, the events that reached its hub and the gaps it filled from PostgreSQL (/metrics);
- the CPU of PostgreSQL and Redis (when embedded), of the load generator, of interrupt handlers,
  and how busy the whole machine was (every CPU's time but idle: % of all CPUs);
- with Redis: when each event reached Redis (send -> Redis), from loadtests/redis_spy.py, a
  pattern subscriber in its own process;
- open loop, per post: its first delivery's latency, the spread of its fan-out (last - first
  delivery), and first delivery - its ok at the publisher: in the hop step the ok comes from A
  and the first delivery from B, so the commit (and any stall of the disk) cancels out and what
  is left is the hop itself.

CPU: server process i is pinned to --server-cpus[i mod len] (default 0,1: one process on CPU 0,
two on CPUs 0 and 1, four two per CPU). The load generator, PostgreSQL, Redis and the spy are
not pinned unless --client-cpus/--services-cpus say so: on a 2-core machine the load generator
competes with the servers for the same 2 cores in every step; its share, and the machine's, are
reported (docs/performance.md, "Scale-out").
--server-cpu-quota Q caps every server process at Q cores (loadtests/cpu_quota.py, a cgroup
quota): N processes get N equal slices and the load generator, PostgreSQL and Redis the rest,
which stands for "a core per process" on a machine without spare cores. --spread-publishers
puts publisher j on process j mod N in the scale-out steps, as a load balancer would spread the
members who post; by default they all post through process 0.

With --py-spy every server process is sampled while measuring (raw stacks in the work folder:
--keep keeps them); py-spy costs CPU, so profile in another run than the one whose figures count.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from realtime.fanout.redis_client import safe_url

from ..clients import (
    STAMP_DIGITS,
    LeanSubscriber,
    Publisher,
    Subscriber,
    Tally,
    close_all,
    connect,
    join,
    open_clients,
    pace,
)
from ..cpu_quota import CpuQuota
from ..report import Progress, table
from ..seed import Database, Seeded, run_database, seed
from ..server_proc import ServerProcess, launch, raise_open_files_limit
from .feed import Profiler
from .targets import REPO, _server_env, _workdir, prometheus_counters

ALL_CPUS = tuple(sorted(os.sched_getaffinity(0)))
_REDIS_ENV = ("TWINHUB_REDIS_URL", "TWINHUB_REDIS_PREFIX", "TWINHUB_REDIS_SHARDED", "TWINHUB_BUS_SECRET")
BUS_SECRET = secrets.token_urlsafe(32)  # the run's processes sign their bus messages with it


@dataclass(frozen=True)
class ScaleoutParams:
    subscribers: int = 1000
    processes: tuple[int, ...] = (1, 2, 4)
    rounds: int = 2  # the scale-out steps, this many times (every other round in reverse order)
    window: int = 200  # closed loop: posts in flight, over all publishers
    window_on_delivery: bool = True  # a post leaves the window once delivered everywhere (else: once answered)
    publishers: int = 4  # publisher connections, all through one process (a session takes 64 posts at a time)
    spread_publishers: bool = False  # scale-out steps: publisher j on process j mod N (as a load balancer would)
    hop: bool = True  # also measure the Redis hop (publisher on A, subscribers on B)
    hop_rate: float | None = 20.0  # hop, open loop: posts/s (None: no open-loop steps)
    duration: float = 10.0
    warmup: float = 3.0
    text_size: int = 100
    server_cpus: tuple[int, ...] | None = (0, 1)  # process i on server_cpus[i % len]; None: not pinned
    server_cpu_quota: float | None = None  # cores each server process may use (a cgroup quota); None: no cap
    client_cpus: tuple[int, ...] | None = None  # None: every CPU
    services_cpus: tuple[int, ...] | None = None  # PostgreSQL (embedded) and Redis (embedded); None: every CPU
    database_url: str | None = None  # None: embedded PostgreSQL
    database_dir: Path | None = None  # where the embedded PostgreSQL keeps its data; None: the work folder
    redis_url: str | None = None  # None: an embedded Redis-compatible server
    concurrency: int = 100
    connect_timeout: float = 10.0
    start_timeout: float = 120.0
    drain: float = 5.0
    py_spy: bool = False
    keep: bool = False
    quiet_percent: float = 10.0  # before each step: wait until the machine is less busy than this (% of all CPUs)
    quiet_wait: float = 60.0  # ... for at most this long, then go on (and say so)
    lean: bool = True  # subscribers check event messages on their bytes (LeanSubscriber), but the latency sample
    latency_every: int = 10  # lean: 1 subscriber in this many (on each process) parses fully and records latency


@dataclass(frozen=True)
class Step:
    key: str  # short, for the JSON and the log files
    name: str  # the table's column
    part: str  # "scale-out" or "hop"
    processes: int
    redis: bool
    publisher_on: int = 0
    subscribers_on: tuple[int, ...] | None = None  # the processes the subscribers spread over (None: all)
    rate: float | None = None  # open loop posts/s; None: closed loop
    round: int = 1


def plan(p: ScaleoutParams) -> list[Step]:
    """The steps of a run, in the order they run. The scale-out steps run p.rounds times, every
    other round in reverse order (1, 2, 4, 4, 2, 1): a drift of the machine during the run, or a
    first step's disadvantage, weighs on every configuration alike."""
    steps: list[Step] = []
    for r in range(p.rounds):
        for n in (p.processes if r % 2 == 0 else tuple(reversed(p.processes))):
            key = f"p{n}" + (f".{r + 1}" if r else "")
            while any(step.key == key for step in steps):  # the same count twice in --processes
                key += "'"
            name = ("1 process" if n == 1 else f"{n} processes") + (f" (round {r + 1})" if p.rounds > 1 else "")
            steps.append(Step(key, name, "scale-out", n, redis=n > 1, round=r + 1))
    if p.hop:
        modes: list[float | None] = [None] + ([p.hop_rate] if p.hop_rate else [])
        for rate in modes:
            tag = f"r{rate:g}" if rate else "w"
            steps.append(Step(f"local-{tag}", "1 process", "hop", 1, redis=False, rate=rate))
            steps.append(Step(f"redis1-{tag}", "1 process, Redis bus", "hop", 1, redis=True, rate=rate))
            steps.append(Step(f"hop-{tag}", "hop A->B", "hop", 2, redis=True, publisher_on=0,
                              subscribers_on=(1,), rate=rate))
    return steps


# -- what the whole run shares ---------------------------------------------------------------------


@dataclass
class Backends:
    database_url: str
    redis_url: str
    seeded: Seeded
    data_dir: Path
    postmaster: psutil.Process | None = None  # embedded PostgreSQL: counted apart
    redis: psutil.Process | None = None  # embedded Redis: counted apart

    def database_processes(self) -> list[psutil.Process]:
        if self.postmaster is None:
            return []
        with contextlib.suppress(psutil.Error):
            return [self.postmaster, *self.postmaster.children(recursive=True)]
        return []


def _set_affinity(processes: Sequence[psutil.Process], cpus: Sequence[int]) -> None:
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.cpu_affinity(list(cpus))


@contextlib.asynccontextmanager
async def backends(p: ScaleoutParams, work: Path) -> AsyncIterator[Backends]:
    """Start PostgreSQL and Redis (unless given), seed the data, yield; stop what was started."""
    os.sched_setaffinity(0, ALL_CPUS)  # what we start inherits it: pinned below if asked
    services_cpus = p.services_cpus or ALL_CPUS
    async with contextlib.AsyncExitStack() as stack:
        postmaster = None
        if p.database_url:
            db = await stack.enter_async_context(run_database(p.database_url, work / "data"))
            assert db.url is not None
            url = db.url
        else:
            from storage.embedded import DATABASE, EmbeddedPostgres, ensure_database

            if p.database_dir is not None:  # e.g. /dev/shm: no fsync stalls of the disk
                import tempfile

                pgroot = Path(tempfile.mkdtemp(dir=p.database_dir, prefix="twinhub-scaleout-"))
                stack.callback(shutil.rmtree, pgroot, True)  # after embedded.stop (callbacks run last first)
            else:
                pgroot = work
            embedded = EmbeddedPostgres(pgroot / "pgdata")
            admin_url = await asyncio.to_thread(embedded.start)
            stack.callback(embedded.stop)  # pg_ctl stop: the postmaster and its backends
            await ensure_database(admin_url, DATABASE)
            url = embedded.url(DATABASE)
            postmaster = psutil.Process(int((pgroot / "pgdata" / "postmaster.pid").read_text().split()[0]))
            _set_affinity([postmaster, *postmaster.children(recursive=True)], services_cpus)
        redis_proc = None
        if p.redis_url:
            redis_url = p.redis_url
        else:
            from realtime.run.embedded_redis import EmbeddedRedis

            embedded_redis = EmbeddedRedis()
            redis_url = await asyncio.to_thread(embedded_redis.start)
            stack.callback(embedded_redis.stop)  # terminate() by PID, then kill()
            assert embedded_redis.pid is not None
            redis_proc = psutil.Process(embedded_redis.pid)
            _set_affinity([redis_proc], services_cpus)
        # members beyond the C subscribers post: pupils may post in the chat, as teachers may
        seeded = await asyncio.wait_for(
            seed(Database(url, work / "data"), subscribers=p.subscribers + p.publishers - 1, rooms=1),
            p.start_timeout,
        )
        print(f"scaleout: PostgreSQL {'pid ' + str(postmaster.pid) if postmaster else url.split('@')[-1]}, "
              f"Redis {'pid ' + str(redis_proc.pid) if redis_proc else ''} {safe_url(redis_url)}; "
              f"seeded {p.subscribers:,} subscribers in {seeded.channels[0]}", file=sys.stderr)
        yield Backends(url, redis_url, seeded, work / "data", postmaster, redis_proc)


@contextlib.contextmanager
def cluster(step: Step, shared: Backends, p: ScaleoutParams, work: Path, prefix: str) -> Iterator[list[ServerProcess]]:
    """Start the step's N `serve` processes (each pinned as asked), wait until every one is
    ready, yield them; stop them all by PID on the way out."""
    env = _server_env(False)
    for name in _REDIS_ENV:
        env.pop(name, None)
    if step.redis:
        env["TWINHUB_REDIS_URL"] = shared.redis_url
        env["TWINHUB_REDIS_PREFIX"] = prefix  # fresh for the step: nothing seen from an earlier one
        env["TWINHUB_BUS_SECRET"] = BUS_SECRET
    os.sched_setaffinity(0, ALL_CPUS)  # children inherit it unless pinned
    with contextlib.ExitStack() as stack:
        servers = []
        for i in range(step.processes):
            cpu = p.server_cpus[i % len(p.server_cpus)] if p.server_cpus else None
            argv = [sys.executable, "-m", "realtime", "serve", "--port", "0",
                    "--database-url", shared.database_url, "--data-dir", str(shared.data_dir)]
            quota = None
            if p.server_cpu_quota:
                quota = CpuQuota(f"twinhub-bench-{os.getpid()}-{step.key}-{i}", p.server_cpu_quota)
                stack.callback(quota.remove)  # once the server has stopped (callbacks run last first)
            server = stack.enter_context(launch(
                f"twinhub[{i}]", argv, env=env, cpu=cpu, log=work / f"{step.key}-{i}.log", cwd=REPO,
                timeout=p.start_timeout,
            ))
            if quota is not None:
                quota.add(server.pid)
            servers.append(server)
        for server in servers:
            try:
                server.wait_ready("/readyz", p.start_timeout)
            except BaseException:
                print(f"\n--- last lines of the {server.name} log ---\n{server.log_tail()}", file=sys.stderr)
                raise
            print(f"{server.name}: pid {server.pid}, port {server.port}, CPUs {sorted(server.process.cpu_affinity())}"
                  + (", bus over Redis" if step.redis else ", in-process bus"), file=sys.stderr)
        try:
            yield servers
        except BaseException:
            for server in servers:
                print(f"\n--- last lines of the {server.name} log ---\n{server.log_tail()}", file=sys.stderr)
            raise


# -- one step ----------------------------------------------------------------------------------------


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _cpu_of(processes: Sequence[psutil.Process]) -> dict[int, float]:
    out = {}
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            out[proc.pid] = _cpu_seconds(proc)
    return out


@dataclass
class _Reading:
    at: float
    deliveries: list[int]  # per server, what its subscribers received
    messages: list[int]
    lean: int  # messages lean subscribers checked on their bytes
    lean_fallbacks: int  # ... and those they parsed whole
    acked: int
    servers: list[float]  # CPU seconds per server process
    rss: list[int]
    client: float
    database: dict[int, float]
    redis: dict[int, float]
    machine_busy: float  # every CPU: user + nice + system + steal (as fanout's "other processes")
    machine_not_idle: float  # every CPU: all time but idle and iowait (interrupts included)
    interrupts: float
    counters: list[dict[str, float]] = field(default_factory=list)


def _delta_percent(a: dict[int, float], b: dict[int, float], wall: float) -> float:
    return 100 * sum(b[pid] - a[pid] for pid in b if pid in a) / wall


def _nearest_rank(n: int, point: float) -> int:
    return min(n - 1, max(0, int(point / 100 * n + 0.5) - 1))


POINTS = (50, 90, 99, 99.9)


def _percentiles_sorted(ordered: list[int]) -> dict[str, float]:
    """report.percentiles() of an already sorted list."""
    n = len(ordered)
    if not n:
        return {"count": 0}
    out: dict[str, float] = {"count": n}
    for point in POINTS:
        out[f"p{point:g}_ms"] = round(ordered[_nearest_rank(n, point)] / 1e6, 3)
    out["max_ms"] = round(ordered[-1] / 1e6, 3)
    return out


def _kth_of_sorted(lists: Sequence[list[int]], k: int) -> int:
    """The k-th smallest (0-based) of the union of sorted lists, without merging them: the least
    value v with at least k+1 elements <= v (a binary search over the values)."""
    lo = min(lst[0] for lst in lists if lst)
    hi = max(lst[-1] for lst in lists if lst)
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(bisect.bisect_right(lst, mid) for lst in lists) >= k + 1:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _percentiles_union(lists: Sequence[list[int]]) -> dict[str, float]:
    """report.percentiles() of all samples of the sorted lists together (same nearest rank)."""
    n = sum(len(lst) for lst in lists)
    if not n:
        return {"count": 0}
    out: dict[str, float] = {"count": n}
    for point in POINTS:
        out[f"p{point:g}_ms"] = round(_kth_of_sorted(lists, _nearest_rank(n, point)) / 1e6, 3)
    out["max_ms"] = round(max(lst[-1] for lst in lists if lst) / 1e6, 3)
    return out


class _StampedPublisher(Publisher):
    """A Publisher that also keeps, while recording, each post's ack latency by its stamp."""

    def __init__(self, tally: Tally, channel: str, text_size: int, acks: dict[int, int] | None) -> None:
        super().__init__(tally, channel, text_size)
        self.acks = acks
        self.on_answered: Callable[[], None] | None = None  # the driver's refill, after each answer

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        if self.acks is not None and self.tally.recording:
            for frame in frames:
                stamp = self._in_flight.get(frame.get("ref"))  # type: ignore[arg-type]
                if stamp is not None and frame.get("type") == "ok":
                    self.acks[stamp] = now_ns - stamp
        super().on_frames(frames, now_ns)
        if self.on_answered is not None:
            self.on_answered()


class HandlerCost:
    """Time spent in the subscribers' message handlers while recording, and what they received:
    per delivery, what a kind of subscriber costs (the picows reading and the kernel left out)."""

    __slots__ = ("ns", "deliveries", "messages", "subscribers")

    def __init__(self) -> None:
        self.ns = self.deliveries = self.messages = self.subscribers = 0

    def figures(self) -> dict[str, Any]:
        return {
            "subscribers": self.subscribers, "messages": self.messages, "deliveries": self.deliveries,
            "us_per_delivery": round(self.ns / 1e3 / self.deliveries, 3) if self.deliveries else None,
            "us_per_message": round(self.ns / 1e3 / self.messages, 2) if self.messages else None,
        }


class _Timed(Subscriber):
    """Times each message's handling (perf_counter_ns: a handler never waits) into `cost`."""

    cost: HandlerCost

    def on_message(self, payload: bytes) -> None:
        tally = self.tally
        if not tally.recording:
            super().on_message(payload)
            return
        before, start = tally.deliveries, time.perf_counter_ns()
        super().on_message(payload)
        cost = self.cost
        cost.ns += time.perf_counter_ns() - start
        cost.deliveries += tally.deliveries - before
        cost.messages += 1


class _StampedSubscriber(Subscriber):
    """A Subscriber that also keeps, while recording, the stamp of each delivery (same order as
    tally.latencies), to tell how long after its post's `ok` each delivery arrived."""

    def __init__(self, tally: Tally, stamps: array) -> None:
        super().__init__(tally)
        self.stamps = stamps

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        if self.tally.recording:
            self.stamps.extend(int(f["message"]["text"][:STAMP_DIGITS]) for f in frames if f["type"] == "event")
        super().on_frames(frames, now_ns)


class _TimedLean(_Timed, LeanSubscriber):
    pass


class _TimedFull(_Timed, Subscriber):
    pass


class _TimedStamped(_Timed, _StampedSubscriber):
    pass


class _Publishers:
    """K publisher connections driven as one (pace() and the window): posts go round robin.

    Closed loop, `on_delivery` (the default): a post stays in the window until it was answered
    *and* delivered to every subscriber, counted per server process as deliveries received by its
    subscribers / their number (each of them gets every post). So the loop closes over the whole
    way, the Redis hop and the slowest process included: a process that falls behind slows the
    publishers down instead of piling up a backlog that the window does not see (with only the
    `ok` in the window, a hop step's publisher process, which fans out to no one, would post
    faster than the other process can deliver). Otherwise (`on_delivery` False) each publisher
    keeps its share of the window in flight until answered, as in `fanout`."""

    def __init__(self, publishers: list[_StampedPublisher], delivered: Callable[[], int]) -> None:
        self.all = publishers
        self._next = 0
        self._delivered = delivered
        self.window = 0
        self._ticker: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        return sum(x.in_flight for x in self.all)

    @property
    def acked(self) -> int:
        return sum(x.acked for x in self.all)

    def post(self, stamp_ns: int | None = None) -> None:
        self.all[self._next].post(stamp_ns)
        self._next = (self._next + 1) % len(self.all)

    def start_window(self, window: int, *, on_delivery: bool = True) -> None:
        if not on_delivery:
            for k, publisher in enumerate(self.all):  # window split as evenly as it goes
                publisher.start_window(window // len(self.all) + (k < window % len(self.all)))
            return
        self.window = window
        for publisher in self.all:
            publisher.on_answered = self.refill
        self.refill()
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def refill(self) -> None:
        """Post until the window is full: posted - refused - fully delivered < window."""
        if not self.window:
            return
        posted = sum(x.sent - sum(x.refused.values()) for x in self.all)
        for _ in range(self.window - (posted - self._delivered())):
            self.post()

    async def _tick(self) -> None:
        """Deliveries free the window too, and they do not pass here: look every millisecond."""
        while self.window:
            self.refill()
            await asyncio.sleep(0.001)

    def stop(self) -> None:
        self.window = 0
        if self._ticker is not None:
            self._ticker.cancel()
        for publisher in self.all:
            publisher.stop()


class ScaleoutProfiler(Profiler):
    """py-spy on one server process; samples counted in the frames of the Redis bus too."""

    FRAMES = {
        # inclusive counts: publish() hands the event to this process's hub first (its own fan-out)
        "RedisBus.publish (this process's fan-out included)": ("publish", "redis_bus.py"),
        "RedisBus._write (pipelined PUBLISH)": ("_write", "redis_bus.py"),
        "RedisBus._read (reader; the fan-out of what it reads included)": ("_read", "redis_bus.py"),
        "RedisBus._receive (unpack, Event; the fan-out included)": ("_receive", "redis_bus.py"),
        "shared rate limits (Redis)": ("", "shared_limits.py"),
        "Hub._deliver (fan-out loop)": ("_deliver", "hub.py"),
        "Connection.push": ("push", "connection.py"),
        "Connection._write_loop (socket writes)": ("_write_loop", "connection.py"),
        "group commit (storage/writer.py)": ("", "writer.py"),
        "presence": ("", "presence.py"),
    }

    def __init__(self, pid: int, out: Path) -> None:  # Profiler's, the output where we say
        self.pid = pid
        self.seconds = 0
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.out = out
        self.proc = None


class _StepRun:
    def __init__(self, step: Step, servers: list[ServerProcess], shared: Backends, p: ScaleoutParams,
                 progress: Progress, work: Path, prefix: str) -> None:
        self.step, self.servers, self.shared, self.p, self.progress, self.work = step, servers, shared, p, progress, work
        self.prefix = prefix
        self.tallies = [Tally() for _ in servers]  # what each server's subscribers received
        self.publisher_tally = Tally()  # only its `recording` flag matters (ack latencies)
        self.publisher: _Publishers | None = None
        # open loop: each delivery's stamp (per server, same order as its tally's latencies), and
        # each post's ack latency by stamp: how long after its `ok` a delivery arrived
        self.stamps = [array("q") for _ in servers] if step.rate else None
        self.acks: dict[int, int] | None = {} if step.rate else None
        self.me = psutil.Process()
        self.subscribers_per_server = [0] * len(servers)
        self.sampled_per_server = [0] * len(servers)  # of which parse fully and record latency
        self.lean_cost, self.full_cost = HandlerCost(), HandlerCost()

    def read(self, *, counters: bool = False) -> _Reading:
        t = psutil.cpu_times()
        assert self.publisher is not None
        rss = []
        for server in self.servers:
            try:
                rss.append(server.process.memory_info().rss)
            except psutil.Error:
                rss.append(0)
        return _Reading(
            at=time.monotonic(),
            deliveries=[x.deliveries for x in self.tallies],
            messages=[x.messages for x in self.tallies],
            lean=sum(x.lean_messages for x in self.tallies),
            lean_fallbacks=sum(x.lean_fallbacks for x in self.tallies),
            acked=self.publisher.acked,
            servers=[_cpu_seconds(s.process) for s in self.servers],
            rss=rss,
            client=_cpu_seconds(self.me),
            database=_cpu_of(self.shared.database_processes()),
            redis=_cpu_of([self.shared.redis] if self.shared.redis else []),
            machine_busy=t.user + t.nice + t.system + getattr(t, "steal", 0.0),
            machine_not_idle=t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0),
            interrupts=t.irq + t.softirq,
            counters=[prometheus_counters(s.http_get("/metrics")) for s in self.servers] if counters else [],
        )

    async def watch(self, phase: str, seconds: float) -> None:
        end = time.monotonic() + seconds
        last = self.read()
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(1.0, left))
            now = self.read()
            wall = max(now.at - last.at, 1e-9)
            cpus = " ".join(f"{100 * (b - a) / wall:3.0f}%" for a, b in zip(last.servers, now.servers, strict=True))
            self.progress.show(
                f"[{self.step.name}] {phase} {seconds - max(end - time.monotonic(), 0):4.1f}/{seconds:g}s"
                f"  deliveries/s {(sum(now.deliveries) - sum(last.deliveries)) / wall:>9,.0f}"
                f"  posts/s {(now.acked - last.acked) / wall:>6,.0f}"
                f"  server CPU {cpus}  client CPU {100 * (now.client - last.client) / wall:3.0f}%"
                f"  machine {100 * (now.machine_not_idle - last.machine_not_idle) / wall:3.0f}%"
            )
            last = now

    async def drain(self) -> None:
        assert self.publisher is not None
        end = time.monotonic() + self.p.drain
        seen = -1
        while time.monotonic() < end and (self.publisher.in_flight or sum(t.deliveries for t in self.tallies) != seen):
            seen = sum(t.deliveries for t in self.tallies)
            await asyncio.sleep(0.25)

    def _start_spy(self) -> subprocess.Popen[str]:
        """loadtests/redis_spy.py on this step's bus: when each event reaches Redis."""
        spy = subprocess.Popen(  # noqa: S603 — our own interpreter and module
            [sys.executable, "-m", "loadtests.redis_spy", self.prefix],
            env={**os.environ, "TWINHUB_REDIS_URL": self.shared.redis_url}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        )
        assert spy.stdout is not None
        if spy.stdout.readline().strip() != "ready":
            spy.kill()
            spy.wait(5)
            raise RuntimeError("the Redis spy did not start")
        return spy

    def _publisher_process(self, j: int) -> int:
        """Which process publisher j posts through."""
        if self.p.spread_publishers and self.step.part == "scale-out":
            return j % self.step.processes
        return self.step.publisher_on

    def _fully_delivered(self) -> int:
        """Posts delivered to every subscriber, as far as the counts tell: per server process, the
        deliveries its subscribers received / their number; the least of the processes."""
        return min(t.deliveries // n for t, n in zip(self.tallies, self.subscribers_per_server, strict=True) if n)

    def _set_recording(self, on: bool) -> None:
        for tally in (*self.tallies, self.publisher_tally):
            tally.recording = on

    async def _open_subscribers(self) -> list[Subscriber]:
        step, p, seeded = self.step, self.p, self.shared.seeded
        on = step.subscribers_on or tuple(range(step.processes))
        share: dict[int, list[tuple[str, str]]] = {k: [] for k in on}
        for i, login in enumerate(seeded.logins[: p.subscribers]):
            share[on[i % len(on)]].append(login)
        joined = [0]

        def shown(_: int) -> None:
            joined[0] += 1
            if joined[0] % 200 == 0:
                self.progress.show(f"[{step.name}] connected {joined[0]}/{p.subscribers}")

        async def setup(client: Subscriber, token: str, channel: str) -> None:
            await join(client, token, channel, p.connect_timeout)

        def make(k: int) -> Callable[[], Subscriber]:
            """Process k's j-th subscriber (in the order they connect) is a LeanSubscriber, but
            for every p.latency_every-th (j = 0, N, 2N...), which parses fully and records latency:
            the sample spreads over the processes as the subscribers do."""
            made = [0]

            def one() -> Subscriber:
                j, made[0] = made[0], made[0] + 1
                client: _Timed
                if p.lean and j % p.latency_every:
                    client = _TimedLean(self.tallies[k])
                    client.cost = self.lean_cost
                else:
                    self.sampled_per_server[k] += 1
                    client = (_TimedFull(self.tallies[k]) if self.stamps is None
                              else _TimedStamped(self.tallies[k], self.stamps[k]))
                    client.cost = self.full_cost
                client.cost.subscribers += 1
                return client

            return one

        results = await asyncio.gather(*(
            open_clients(
                f"ws://127.0.0.1:{self.servers[k].port}/ws", logins, make(k), setup,
                concurrency=max(10, p.concurrency // len(on)), timeout=p.connect_timeout, on_joined=shown,
            )
            for k, logins in share.items()
        ), return_exceptions=True)
        opened = [s for r in results if isinstance(r, list) for s in r]
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await close_all(opened, p.connect_timeout)
            raise failed[0]
        for k, logins in share.items():
            self.subscribers_per_server[k] = len(logins)
        return opened

    async def run(self) -> dict[str, Any]:
        step, p = self.step, self.p
        if p.client_cpus:
            os.sched_setaffinity(0, p.client_cpus)
        raise_open_files_limit()
        opened: list[Any] = await self._open_subscribers()
        pacer: asyncio.Task[int] | None = None
        profilers: list[ScaleoutProfiler] = []
        spy: subprocess.Popen[str] | None = None
        try:
            if step.redis:
                spy = await asyncio.to_thread(self._start_spy)
            seeded = self.shared.seeded
            tokens = [seeded.publisher_token] + [t for t, _ in seeded.logins[p.subscribers: p.subscribers + p.publishers - 1]]
            publishers = []
            for j, token in enumerate(tokens):
                server = self.servers[self._publisher_process(j)]
                one = await connect(
                    f"ws://127.0.0.1:{server.port}/ws",
                    lambda: _StampedPublisher(self.publisher_tally, seeded.channels[0], p.text_size, self.acks),
                    p.connect_timeout,
                )
                assert isinstance(one, Publisher)
                opened.append(one)
                publishers.append(one)
                await join(one, token, None, p.connect_timeout)
            self.publisher = publisher = _Publishers(publishers, self._fully_delivered)
            if step.rate:
                until = time.monotonic_ns() + int((p.warmup + p.duration) * 1e9)
                pacer = asyncio.create_task(pace(publisher, step.rate, until, max_in_flight=max(1000, int(step.rate))))
            else:
                publisher.start_window(p.window, on_delivery=p.window_on_delivery)
            await self.watch("warm-up", p.warmup)
            if p.py_spy:
                for i, s in enumerate(self.servers):
                    prof = ScaleoutProfiler(s.pid, self.work / f"pyspy-{step.key}-{i}.txt")
                    prof.start(p.duration)
                    profilers.append(prof)
            start = self.read(counters=True)
            self._set_recording(True)
            if spy is not None:
                _tell(spy, "start")
            await self.watch("measure", p.duration)
            self._set_recording(False)
            if spy is not None:
                _tell(spy, "stop")
            end = self.read(counters=True)
            publisher.stop()
            skipped = await pacer if pacer is not None else 0
            await self.drain()
            self.progress.done()
            figures = self.figures(start, end, skipped)
            if spy is not None:
                figures["redis_spy"] = await asyncio.to_thread(_spy_result, spy)
            if profilers:
                figures["profiles"] = [await prof.result() for prof in profilers]
            return figures
        finally:
            if pacer is not None:
                pacer.cancel()
            if spy is not None and spy.poll() is None:
                spy.kill()
                spy.wait(5)
            for prof in profilers:
                if prof.proc is not None and prof.proc.poll() is None:
                    prof.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        prof.proc.wait(5)
            await close_all(opened, p.connect_timeout)

    def _per_post(self) -> dict[str, Any] | None:
        """Open loop: per post delivered to every subscriber while recording, from each
        delivery's stamp and receive time (stamp + latency):

        - first delivery: its first delivery's latency (the commit, then the way to the first
          subscriber: in a hop step, over Redis);
        - spread: last delivery - first delivery (the fan-out to all C subscribers);
        - first delivery after ok: first delivery - the post's `ok` at the publisher. The commit,
          and any stall of the disk, cancel out. In a hop step (publisher process A fans out to
          no one) this is the hop itself: A's publish to Redis, B's reader, B's hub, the first
          socket write. On one process it is negative: the `ok` is written after the fan-out.
        """
        if self.stamps is None or self.acks is None:
            return None
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        count: dict[int, int] = {}
        for tally, stamps in zip(self.tallies, self.stamps, strict=True):
            for latency, stamp in zip(tally.latencies, stamps, strict=True):
                at = stamp + latency
                if stamp in first:
                    count[stamp] += 1
                    if at < first[stamp]:
                        first[stamp] = at
                    elif at > last[stamp]:
                        last[stamp] = at
                else:
                    first[stamp] = last[stamp] = at
                    count[stamp] = 1
        everyone = sum(self.sampled_per_server)  # those that record latencies (all unless lean)
        posts = [stamp for stamp, n in count.items() if n == everyone]  # not cut by the start or end
        acks = self.acks
        return {
            "posts": len(posts),
            "first_delivery": _percentiles_sorted(sorted(first[st] - st for st in posts)),
            "spread": _percentiles_sorted(sorted(last[st] - first[st] for st in posts)),
            "first_delivery_after_ok": _percentiles_sorted(
                sorted(first[st] - st - acks[st] for st in posts if st in acks)
            ),
        }

    def figures(self, a: _Reading, b: _Reading, skipped: int) -> dict[str, Any]:
        step, p, publisher = self.step, self.p, self.publisher
        assert publisher is not None
        wall = b.at - a.at
        deliveries = sum(b.deliveries) - sum(a.deliveries)
        messages = sum(b.messages) - sum(a.messages)
        per_post = self._per_post()
        # Latencies: each server's subscribers' samples sorted once; all of them by rank selection.
        ordered = [sorted(t.latencies) for t in self.tallies]
        for t in self.tallies:
            t.latencies = array("q")
        subscribers = sum(self.subscribers_per_server)
        server_cpu = [round(100 * (y - x) / wall, 1) for x, y in zip(a.servers, b.servers, strict=True)]
        servers_seconds = sum(b.servers) - sum(a.servers)
        client_cpu = 100 * (b.client - a.client) / wall
        database_cpu = _delta_percent(a.database, b.database, wall) if b.database else None
        redis_cpu = _delta_percent(a.redis, b.redis, wall) if b.redis else None
        busy = 100 * (b.machine_busy - a.machine_busy) / wall
        others = busy - sum(server_cpu) - (database_cpu or 0) - (redis_cpu or 0) - client_cpu
        ncpu = len(ALL_CPUS)
        per_server = []
        for k, server in enumerate(self.servers):
            d = b.deliveries[k] - a.deliveries[k]
            ca, cb = a.counters[k], b.counters[k]

            def rate(name: str, ca: dict[str, float] = ca, cb: dict[str, float] = cb) -> float:
                return round((cb.get(name, 0.0) - ca.get(name, 0.0)) / wall, 1)

            per_server.append({
                "pid": server.pid,
                "cpus": sorted(server.process.cpu_affinity()),
                "subscribers": self.subscribers_per_server[k],
                "latency_subscribers": self.sampled_per_server[k],
                "publisher": any(self._publisher_process(j) == k for j in range(p.publishers)),
                "deliveries_per_s": round(d / wall),
                "events_per_message": round(d / (b.messages[k] - a.messages[k]), 2) if b.messages[k] > a.messages[k] else None,
                "latency": _percentiles_sorted(ordered[k]),
                "cpu_percent": server_cpu[k],
                "cpu_us_per_delivery": round(1e6 * (b.servers[k] - a.servers[k]) / d, 3) if d else None,
                "rss_mb": round(b.rss[k] / 2**20, 1),
                "hub_events_per_s": rate("twinhub_events_total"),
                "queued_deliveries_per_s": rate("twinhub_deliveries_total"),
                "commits_per_s": rate("twinhub_commit_batches_total"),
                "posts_committed_per_s": rate("twinhub_posts_committed_total"),
                "gaps_filled": int(cb.get("twinhub_gaps_filled_total", 0) - ca.get("twinhub_gaps_filled_total", 0)),
            })
        out: dict[str, Any] = {
            "step": step.name,
            "part": step.part,
            "round": step.round,
            "processes": step.processes,
            "bus": "Redis" if step.redis else "in-process",
            "publisher_on": step.publisher_on,
            "subscribers": subscribers,
            "subscribers_per_process": list(self.subscribers_per_server),
            # lean: most subscribers check event messages on their bytes and record no latency; the
            # latencies (and open loop's per-post figures) come from this sample, which parses fully
            "lean": p.lean,
            "latency_subscribers": sum(self.sampled_per_server),
            "lean_messages": b.lean - a.lean,  # while measuring
            "lean_fallbacks": b.lean_fallbacks - a.lean_fallbacks,
            # time in the message handlers while measuring, per kind of subscriber
            "handlers": {"lean": self.lean_cost.figures(), "full": self.full_cost.figures()},
            "mode": f"open loop {step.rate:g} posts/s" if step.rate
            else f"closed loop, window {p.window}" + ("" if p.window_on_delivery else " (on ok)"),
            "measured_s": round(wall, 2),
            "deliveries_per_s": round(deliveries / wall),
            "posts_per_s": round((b.acked - a.acked) / wall, 1),
            "messages_per_s": round(messages / wall),
            "events_per_message": round(deliveries / messages, 2) if messages else None,
            "latency": _percentiles_union(ordered),
            "ack_latency": _percentiles_sorted(sorted(v for x in publisher.all for v in x.ack_latencies)),
            # open loop: per post, its first delivery, the spread of its fan-out, first delivery - ok
            "per_post": per_post,
            "publishers": len(publisher.all),
            "servers_cpu_percent": round(sum(server_cpu), 1),
            "server_cpu_percent_each": server_cpu,
            "servers_cpu_us_per_delivery": round(1e6 * servers_seconds / deliveries, 3) if deliveries else None,
            "database_cpu_percent": round(database_cpu, 1) if database_cpu is not None else None,
            "redis_cpu_percent": round(redis_cpu, 1) if redis_cpu is not None else None,
            "client_cpu_percent": round(client_cpu, 1),
            "client_cpu_us_per_delivery": round(1e6 * (b.client - a.client) / deliveries, 3) if deliveries else None,
            "client_bound": client_cpu >= 90.0,
            "interrupts_cpu_percent": round(100 * (b.interrupts - a.interrupts) / wall, 1),
            "other_processes_cpu_percent": round(max(others, 0.0), 1),
            # every CPU's time but idle and iowait, as % of all CPUs (100: the machine was full)
            "machine_busy_percent_of_all_cpus": round(100 * (b.machine_not_idle - a.machine_not_idle) / wall / ncpu, 1),
            "servers": per_server,
            "gaps_filled": sum(s["gaps_filled"] for s in per_server),
            "seq_anomalies": sum(t.seq_anomalies for t in self.tallies),
            "closed_by_server": sum(sum(t.closes.values()) for t in self.tallies)
            + sum(self.publisher_tally.closes.values()),
            "error_codes": {k: v for t in self.tallies for k, v in t.errors.items()},
            "refused_posts": sum(sum(x.refused.values()) for x in publisher.all),
            "refused_codes": {k: v for x in publisher.all for k, v in x.refused.items()},
            "posts_acked_total": publisher.acked,
            "undelivered_after_drain": publisher.acked * subscribers - sum(t.deliveries for t in self.tallies),
        }
        if step.rate:
            out["offered_posts_per_s"] = step.rate
            out["offered_deliveries_per_s"] = round(step.rate * subscribers)
            out["skipped_sends"] = skipped
        return out


def _tell(spy: subprocess.Popen[str], word: str) -> None:
    assert spy.stdin is not None
    with contextlib.suppress(OSError):
        spy.stdin.write(word + "\n")
        spy.stdin.flush()


def _spy_result(spy: subprocess.Popen[str]) -> dict[str, Any]:
    """The spy's JSON line (it exits after "stop"), or what went wrong."""
    import json

    try:
        out, _ = spy.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(5)
        return {"error": "the Redis spy did not answer"}
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": f"the Redis spy said {out[-200:]!r}"}


# -- the run ------------------------------------------------------------------------------------------


async def wait_quiet(p: ScaleoutParams) -> float:
    """Wait until the machine was less than p.quiet_percent busy (all CPUs) for 2 s in a row, at
    most p.quiet_wait s; return the last 2 s reading (% of all CPUs)."""
    end = time.monotonic() + p.quiet_wait
    while True:
        busy = await asyncio.to_thread(psutil.cpu_percent, 2.0)
        if busy < p.quiet_percent or time.monotonic() >= end:
            if busy >= p.quiet_percent:
                print(f"warning: the machine is still {busy:.0f}% busy after {p.quiet_wait:g} s; measuring anyway",
                      file=sys.stderr)
            return busy


async def measure(p: ScaleoutParams, progress: Progress) -> dict[str, Any]:
    """Every step of plan(p), one after the other on the same database and Redis."""
    steps = plan(p)
    results: dict[str, dict[str, Any]] = {}
    with _workdir(p.keep) as work:
        async with backends(p, work) as shared:
            for n, step in enumerate(steps, 1):
                before = await wait_quiet(p)
                print(f"\n[{n}/{len(steps)}] {step.part}: {step.name}, "
                      + (f"open loop {step.rate:g} posts/s" if step.rate else f"closed loop, window {p.window}")
                      + f" (machine {before:.1f}% busy before)", file=sys.stderr)
                prefix = f"bench-{secrets.token_hex(4)}"
                with cluster(step, shared, p, work, prefix) as servers:
                    results[step.key] = await _StepRun(step, servers, shared, p, progress, work, prefix).run()
                results[step.key]["machine_busy_before_percent"] = before
                os.sched_setaffinity(0, ALL_CPUS)
            if p.keep:
                print(f"kept {work}", file=sys.stderr)
    return {"params": asdict(p), "steps": results, "summary": summary(results, p)}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(b / a, 2) if isinstance(a, int | float) and isinstance(b, int | float) and a else None


def summary(results: dict[str, dict[str, Any]], p: ScaleoutParams) -> dict[str, Any]:
    """The ratios the targets are about."""
    out: dict[str, Any] = {}
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in results.values():
        if r["part"] == "scale-out":
            by_n.setdefault(r["processes"], []).append(r)
    if by_n:
        means = {n: round(sum(r["deliveries_per_s"] for r in rs) / len(rs)) for n, rs in by_n.items()}
        out["scale_out"] = {
            str(n): {
                "deliveries_per_s_each_round": [r["deliveries_per_s"] for r in rs],
                "deliveries_per_s_mean": means[n],
                # each round against that round's one process, and the means against each other
                "ratio_to_1_process_each_round": [
                    _ratio(one["deliveries_per_s"], r["deliveries_per_s"])
                    for one, r in zip(by_n.get(1, []), rs, strict=False)
                ],
                "ratio_to_1_process_of_means": _ratio(means.get(1), means[n]),
                "servers_cpu_us_per_delivery_each_round": [r["servers_cpu_us_per_delivery"] for r in rs],
                "client_cpu_percent_each_round": [r["client_cpu_percent"] for r in rs],
                "machine_busy_percent_each_round": [r["machine_busy_percent_of_all_cpus"] for r in rs],
            }
            for n, rs in sorted(by_n.items())
        }
    for tag in ("w", *([f"r{p.hop_rate:g}"] if p.hop_rate else [])):
        local = results.get(f"local-{tag}")
        hop, redis1 = results.get(f"hop-{tag}"), results.get(f"redis1-{tag}")
        if local and hop:
            out[f"hop_{tag}"] = {
                "mode": hop["mode"],
                "p99_ratio_hop_to_1_process": _ratio(local["latency"].get("p99_ms"), hop["latency"].get("p99_ms")),
                "p50_ratio_hop_to_1_process": _ratio(local["latency"].get("p50_ms"), hop["latency"].get("p50_ms")),
                "deliveries_ratio_hop_to_1_process": _ratio(local["deliveries_per_s"], hop["deliveries_per_s"]),
                "p99_ratio_redis_bus_to_1_process": _ratio(local["latency"].get("p99_ms"),
                                                           redis1["latency"].get("p99_ms")) if redis1 else None,
            }
            if hop.get("per_post") and local.get("per_post"):
                a, b = local["per_post"]["first_delivery"], hop["per_post"]["first_delivery"]
                out[f"hop_{tag}"]["first_delivery_added_ms"] = {
                    k: round(b[k] - a[k], 3) for k in ("p50_ms", "p99_ms") if k in a and k in b
                }
                out[f"hop_{tag}"]["hop_first_delivery_after_ok"] = hop["per_post"]["first_delivery_after_ok"]
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def tables(figures: dict[str, Any]) -> str:
    """The printed report: one summary table per part, then every figure side by side."""
    results, summ = figures["steps"], figures["summary"]
    parts = []
    scale = [r for r in results.values() if r["part"] == "scale-out"]
    if scale:
        one = {r["round"]: r["deliveries_per_s"] for r in scale if r["processes"] == 1}
        rows = [[
            r["step"], r["deliveries_per_s"], _ratio(one.get(r["round"]), r["deliveries_per_s"]),
            r["latency"].get("p50_ms"), r["latency"].get("p99_ms"),
            " + ".join(_pct(c) for c in r["server_cpu_percent_each"]), r["servers_cpu_us_per_delivery"],
            _pct(r["client_cpu_percent"]), r["client_cpu_us_per_delivery"],
            _pct(r["database_cpu_percent"]), _pct(r["redis_cpu_percent"]),
            _pct(r["interrupts_cpu_percent"]), _pct(r["machine_busy_percent_of_all_cpus"]),
        ] for r in scale]
        sample = (f"latency from {scale[0]['latency_subscribers']:,} of them (1 in {figures['params']['latency_every']} "
                  "on each process parses fully; the others count events on the bytes)" if scale[0].get("lean")
                  else "every subscriber parses fully")
        parts.append(f"scale-out: {scale[0]['subscribers']:,} subscribers spread evenly, {scale[0]['mode']}, "
                     f"{scale[0]['publishers']} publisher connection(s) on process 0; {sample}\n\n" + table(
            ["", "deliveries/s", "x 1 process", "p50 ms", "p99 ms", "server CPU (each)", "server us/delivery",
             "load gen CPU", "load gen us/delivery", "PostgreSQL", "Redis", "interrupts", "machine busy"], rows))
        means = summ.get("scale_out", {})
        if len({r["round"] for r in scale}) > 1:
            parts.append("scale-out, over the rounds\n\n" + table(
                ["", "deliveries/s each round", "mean", "x 1 process (means)", "x 1 process each round",
                 "server us/delivery", "load gen CPU", "machine busy"],
                [[f"{n} process" + ("es" if n != "1" else ""),
                  " / ".join(f"{v:,}" for v in m["deliveries_per_s_each_round"]), m["deliveries_per_s_mean"],
                  m["ratio_to_1_process_of_means"], " / ".join(str(v) for v in m["ratio_to_1_process_each_round"]),
                  " / ".join(str(v) for v in m["servers_cpu_us_per_delivery_each_round"]),
                  " / ".join(_pct(v) for v in m["client_cpu_percent_each_round"]),
                  " / ".join(_pct(v) for v in m["machine_busy_percent_each_round"])]
                 for n, m in means.items()]))
        multi = [r for r in scale if r["processes"] > 1]
        if multi:
            rows = []
            for r in multi:
                to_redis = (r.get("redis_spy") or {}).get("to_redis", {})
                rows.append([f"{r['step']}: event reaches Redis", "", "", "", to_redis.get("p50_ms"),
                             to_redis.get("p99_ms"), "", "", "", ""])
                for k, s in enumerate(r["servers"]):
                    rows.append([f"{r['step']}: #{k}" + (" (publisher)" if s["publisher"] else ""), s["subscribers"],
                                 s["deliveries_per_s"], s["events_per_message"], s["latency"].get("p50_ms"),
                                 s["latency"].get("p99_ms"),
                                 _pct(s["cpu_percent"]), s["cpu_us_per_delivery"], s["hub_events_per_s"],
                                 s["gaps_filled"]])
            parts.append("per process (the publisher's process delivers its events itself; the others get them "
                         "over Redis)\n\n" + table(
                             ["", "subscribers", "deliveries/s", "events per message", "p50 ms", "p99 ms", "CPU",
                              "us/delivery", "events to hub /s", "gaps filled"], rows))
    hop_rows = []
    for r in results.values():
        if r["part"] == "hop":
            post = r.get("per_post") or {}
            first, after = post.get("first_delivery", {}), post.get("first_delivery_after_ok", {})
            hop_rows.append([
                r["step"], r["mode"], r["deliveries_per_s"], r["latency"].get("p50_ms"), r["latency"].get("p99_ms"),
                r["ack_latency"].get("p50_ms"), r["ack_latency"].get("p99_ms"), first.get("p50_ms"), first.get("p99_ms"),
                after.get("p50_ms"), after.get("p99_ms"),
                " + ".join(_pct(c) for c in r["server_cpu_percent_each"]),
                _pct(r["client_cpu_percent"]), _pct(r["redis_cpu_percent"]),
            ])
    if hop_rows:
        hop_rows.sort(key=lambda row: row[1].startswith("open"))  # closed loop first, else in step order
        lines = [table(["", "mode", "deliveries/s", "p50 ms", "p99 ms", "ack p50", "ack p99", "1st deliv. p50",
                        "1st deliv. p99", "1st - ok p50", "1st - ok p99", "server CPU (each)", "load gen CPU",
                        "Redis"], hop_rows)]
        for key, s in summ.items():
            if key.startswith("hop_"):
                lines.append(f"{s['mode']}: p99 hop / 1 process x{s['p99_ratio_hop_to_1_process']}, "
                             f"p50 x{s['p50_ratio_hop_to_1_process']}, deliveries/s x{s['deliveries_ratio_hop_to_1_process']}"
                             f"; p99 Redis bus (no hop) / in-process x{s['p99_ratio_redis_bus_to_1_process']}"
                             + (f"; a post's first delivery {s['first_delivery_added_ms'].get('p50_ms'):+} ms at p50, "
                                f"{s['first_delivery_added_ms'].get('p99_ms'):+} ms at p99" if s.get("first_delivery_added_ms") else ""))
        lines.append("(open loop, per post: 1st deliv. = its first delivery's latency; 1st - ok = first delivery minus "
                     "its ok at the publisher: with the hop, A's ok to B's first delivery, the hop itself; on one "
                     "process negative, the ok being written after the fan-out)")
        parts.append("the Redis hop: publisher on A, every subscriber on B, against one process\n\n" + "\n".join(lines))
    rows_spec = [
        ("deliveries/s", "deliveries_per_s"), ("posts/s (acked)", "posts_per_s"),
        ("events per WS message", "events_per_message"), ("latency p50 ms", "latency.p50_ms"),
        ("latency p99 ms", "latency.p99_ms"), ("latency max ms", "latency.max_ms"),
        ("ack p50 ms", "ack_latency.p50_ms"), ("ack p99 ms", "ack_latency.p99_ms"),
        ("per post: first delivery p50 ms (open loop)", "per_post.first_delivery.p50_ms"),
        ("per post: first delivery p99 ms (open loop)", "per_post.first_delivery.p99_ms"),
        ("per post: fan-out spread p50 ms (open loop)", "per_post.spread.p50_ms"),
        ("per post: fan-out spread p99 ms (open loop)", "per_post.spread.p99_ms"),
        ("per post: first delivery - ok p50 ms (open loop)", "per_post.first_delivery_after_ok.p50_ms"),
        ("per post: first delivery - ok p99 ms (open loop)", "per_post.first_delivery_after_ok.p99_ms"),
        ("servers CPU % (sum)", "servers_cpu_percent"), ("servers CPU us per delivery", "servers_cpu_us_per_delivery"),
        ("PostgreSQL CPU %", "database_cpu_percent"), ("Redis CPU %", "redis_cpu_percent"),
        ("load generator CPU %", "client_cpu_percent"), ("load generator us per delivery", "client_cpu_us_per_delivery"),
        ("subscribers recording latency", "latency_subscribers"),
        ("handler us per delivery: lean subscribers", "handlers.lean.us_per_delivery"),
        ("handler us per delivery: full parse (sample)", "handlers.full.us_per_delivery"),
        ("handler us per message: lean subscribers", "handlers.lean.us_per_message"),
        ("handler us per message: full parse (sample)", "handlers.full.us_per_message"),
        ("messages checked lean (on the bytes)", "lean_messages"),
        ("messages a lean subscriber parsed whole", "lean_fallbacks"),
        ("interrupts CPU %", "interrupts_cpu_percent"), ("other processes CPU %", "other_processes_cpu_percent"),
        ("machine busy, % of all CPUs", "machine_busy_percent_of_all_cpus"),
        ("send -> reaching Redis p50 ms (spy)", "redis_spy.to_redis.p50_ms"),
        ("send -> reaching Redis p99 ms (spy)", "redis_spy.to_redis.p99_ms"),
        ("gaps filled from PostgreSQL", "gaps_filled"), ("seq gaps/duplicates", "seq_anomalies"),
        ("undelivered after drain", "undelivered_after_drain"), ("closed by server", "closed_by_server"),
        ("refused posts", "refused_posts"), ("skipped sends (open loop)", "skipped_sends"),
    ]
    from ..report import pick

    names = [f"{r['step']} ({'open' if r['mode'].startswith('open') else 'closed'})" for r in results.values()]
    rows = [[label, *(pick(r, key) for r in results.values())] for label, key in rows_spec]
    parts.append("every step\n\n" + table(["", *names], rows))
    return "\n\n".join(parts)
