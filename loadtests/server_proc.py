"""Starting, measuring and stopping the server under test, as a child process.

- The child is pinned to one CPU (os.sched_setaffinity) and gets its open-files limit raised to
  the hard limit, both in preexec_fn; it runs in its own session, so a Ctrl-C reaches only the
  load generator, which then stops the child itself. Should the load generator die without
  doing so (SIGKILL), the child gets SIGTERM from the kernel (Linux PR_SET_PDEATHSIG).
- Ready: the server prints "... listening on http://127.0.0.1:<port>" (port 0 asks for a free
  one); TwinHub is ready once GET /readyz answers 200.
- Helpers: processes the server started, child processes or not. The embedded PostgreSQL is not
  a child (pg_ctl daemonizes it, as another user when run as root): it is found through its
  postmaster.pid file, and counted apart from the server in CPU figures.
- Stopped by PID: SIGINT (graceful), then SIGKILL after a timeout; helpers that outlive it are
  ended by their PIDs too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import resource
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

_PR_SET_PDEATHSIG = 1
_LISTENING = re.compile(rb"listening on (?:http|ws)://127\.0\.0\.1:(\d+)")


def raise_open_files_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; return the new soft limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def pin(cpu: int | None) -> None:
    """Run this process on CPU `cpu` only (None: leave it)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


class ServerProcess:
    """A server we started: `pid`, `port`, `log`; stop() ends it and its children by PID."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path, postmaster_pid: Path | None) -> None:
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log = log
        self.port = 0
        self.process = psutil.Process(popen.pid)
        self._postmaster_pid = postmaster_pid
        self._helpers: list[psutil.Process] = []

    def wait_listening(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log.read_bytes())
            if found:
                self.port = int(found.group(1))
                return self.port
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not listen within {timeout:.0f} s:\n{self.log_tail()}")

    def wait_ready(self, path: str, timeout: float) -> None:
        """Poll http://127.0.0.1:<port><path> until it answers 200."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port}{path}"
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 — loopback only
                    if response.status == 200:
                        self._helpers = self.helpers()
                        return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} was not ready within {timeout:.0f} s:\n{self.log_tail()}")

    def http_get(self, path: str, timeout: float = 5.0) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as response:  # noqa: S310
            return response.read().decode()

    def helpers(self) -> list[psutil.Process]:
        """The processes it runs now: its children, and the embedded PostgreSQL with its backends."""
        found: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            found += self.process.children(recursive=True)
        postmaster = self._postmaster()
        if postmaster is not None:
            with contextlib.suppress(psutil.Error):
                found += [postmaster, *postmaster.children(recursive=True)]
        return found

    def _postmaster(self) -> psutil.Process | None:
        """The PostgreSQL of our data folder, if it runs (checked by its command line, so a
        stale pid file never names someone else's process)."""
        if self._postmaster_pid is None:
            return None
        try:
            pid = int(self._postmaster_pid.read_text().split()[0])
            process = psutil.Process(pid)
            if str(self._postmaster_pid.parent) in " ".join(process.cmdline()):
                return process
        except (OSError, ValueError, IndexError, psutil.Error):
            pass
        return None

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT, then SIGKILL after `timeout` s; then end any of its helpers still running."""
        self._helpers += [c for c in self.helpers() if c not in self._helpers]
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        leftovers = [c for c in self._helpers if c.is_running()]
        for child in leftovers:
            with contextlib.suppress(psutil.Error):
                child.send_signal(signal.SIGINT)  # PostgreSQL: fast shutdown
        _, alive = psutil.wait_procs(leftovers, timeout=10)
        for child in alive:
            with contextlib.suppress(psutil.Error):
                child.kill()


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM to this (child) process when its parent dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _child_setup(cpu: int | None) -> None:
    pin(cpu)
    raise_open_files_limit()
    _die_with_parent()


@contextlib.contextmanager
def launch(name: str, argv: list[str], *, env: dict[str, str], cpu: int | None, log: Path, cwd: Path,
           timeout: float, postmaster_pid: Path | None = None) -> Iterator[ServerProcess]:
    """Start `argv` pinned to `cpu`, wait until it listens, yield it; stop it on the way out.
    `postmaster_pid`: the postmaster.pid file of the PostgreSQL it will start, if any."""
    with log.open("wb") as out:
        popen = subprocess.Popen(  # noqa: S603 — our own interpreter and modules
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
            preexec_fn=lambda: _child_setup(cpu), start_new_session=True,
        )
    server = ServerProcess(name, popen, log, postmaster_pid)
    try:
        server.wait_listening(timeout)
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Usage:
    """One reading of a process: when, its CPU seconds, its helpers' CPU seconds by PID, RSS;
    and of the whole machine (all CPUs): CPU seconds in processes, and in interrupt handlers
    (on loopback, most of the TCP work is there, charged to no process)."""

    at: float
    cpu: float
    children_cpu: dict[int, float]
    rss: int
    machine_cpu: float
    interrupts_cpu: float


def _cpu_seconds(p: psutil.Process) -> float:
    t = p.cpu_times()
    return t.user + t.system


def usage(process: psutil.Process, helpers: list[psutil.Process] | None = None) -> Usage:
    """Read `process` (and `helpers`, counted apart) now."""
    kids: dict[int, float] = {}
    for child in helpers or ():
        with contextlib.suppress(psutil.Error):
            kids[child.pid] = _cpu_seconds(child)
    t = psutil.cpu_times()
    interrupts = t.irq + t.softirq
    busy = t.user + t.nice + t.system + getattr(t, "steal", 0.0)
    return Usage(time.monotonic(), _cpu_seconds(process), kids, process.memory_info().rss, busy, interrupts)


def machine_percent(a: Usage, b: Usage) -> tuple[float, float]:
    """(% of one core used by all processes of the machine, % spent in interrupt handlers)
    between readings a and b."""
    wall = max(b.at - a.at, 1e-9)
    return 100 * (b.machine_cpu - a.machine_cpu) / wall, 100 * (b.interrupts_cpu - a.interrupts_cpu) / wall


def cpu_percent(a: Usage, b: Usage) -> tuple[float, float]:
    """(% of one core used by the process, % used by its helpers) between readings a and b."""
    wall = max(b.at - a.at, 1e-9)
    kids = sum(b.children_cpu[pid] - a.children_cpu[pid] for pid in b.children_cpu if pid in a.children_cpu)
    return 100 * (b.cpu - a.cpu) / wall, 100 * kids / wall


CLIENT_BOUND_PERCENT = 90.0  # above this the load generator, not the server, may be the limit


def cpu_figures(server_a: Usage, server_b: Usage, client_a: Usage, client_b: Usage) -> dict[str, Any]:
    """The CPU figures of a measurement between two readings of the server (with its helpers)
    and two of the load generator: % of one core for each, interrupts, everything else."""
    server_cpu, db_cpu = cpu_percent(server_a, server_b)
    client_cpu, _ = cpu_percent(client_a, client_b)
    machine, interrupts = machine_percent(server_a, server_b)
    others = machine - server_cpu - db_cpu - client_cpu
    return {
        "server_cpu_percent": round(server_cpu, 1),
        "database_cpu_percent": round(db_cpu, 1) if server_b.children_cpu else None,
        "client_cpu_percent": round(client_cpu, 1),
        "client_bound": client_cpu >= CLIENT_BOUND_PERCENT,
        "interrupts_cpu_percent": round(interrupts, 1),
        # CPU used meanwhile by every other process of the machine: high means a noisy run.
        "other_processes_cpu_percent": round(max(others, 0.0), 1),
    }


@dataclass(frozen=True)
class Second:
    """One second of a measurement, as watch() hands it to a scenario's progress line: two
    readings (each with `.server` and `.client` Usage, and the scenario's own counters)."""

    last: Any
    now: Any

    @property
    def wall(self) -> float:
        return max(self.now.server.at - self.last.server.at, 1e-9)

    def rate(self, counter: str) -> float:
        """The counter's increase per second (e.g. "deliveries", "acked")."""
        return (getattr(self.now, counter) - getattr(self.last, counter)) / self.wall

    def cpu(self) -> str:
        """The server's, its database's (when embedded) and the load generator's CPU."""
        server, db = cpu_percent(self.last.server, self.now.server)
        client, _ = cpu_percent(self.last.client, self.now.client)
        return f"server CPU {server:3.0f}%  db CPU {db:3.0f}%  client CPU {client:3.0f}%"


async def watch(progress: Any, label: str, phase: str, seconds: float, mark: Any, line: Any) -> None:
    """Wait `seconds`; once a second show `[label] phase t/seconds` and `line(Second)` on
    `progress`, from the readings `mark()` takes."""
    end = time.monotonic() + seconds
    last = mark()
    while (left := end - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, left))
        now = mark()
        elapsed = seconds - max(end - time.monotonic(), 0)
        progress.show(f"[{label}] {phase} {elapsed:4.1f}/{seconds:g}s  {line(Second(last, now))}")
        last = now
