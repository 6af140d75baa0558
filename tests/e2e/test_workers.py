"""The supervisor of `twinhub serve --workers N` (realtime/run/workers.py): a worker that keeps
crashing is started again after a growing pause, and one that crashes after a healthy while is
started again after the first pause, not after the pause the last crash loop reached (issue 22,
point 16: the pause had climbed to 10 s and stayed there after 24 s of healthy running).
Real processes: the supervisor and its workers on one PostgreSQL and one Redis, workers killed
with SIGKILL; the timings are settings, made short here so that the test runs in seconds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import psutil

from realtime.run.workers import RestartPause
from tests.processes import BUS_SECRET, ROOT, free_port

FIRST, MOST, HEALTHY_AFTER = 0.2, 5.0, 3.0
EXITED = re.compile(r"worker (\d+) \(pid (\d+)\) exited with -9[^;]*; restarting in ([\d.]+) s")


def test_the_pause_doubles_while_a_worker_keeps_crashing_and_starts_over_after_a_healthy_run():
    pause = RestartPause(first=0.5, most=10.0, healthy_after=30.0)
    assert [pause.after(1.0) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert pause.after(29.0) == 10.0  # still within the crash loop
    assert pause.after(30.0) == 0.5  # it ran healthily: this crash is a new one
    assert pause.after(0.1) == 1.0


def _workers(supervisor: psutil.Process) -> set[int]:
    found = set()
    for p in supervisor.children():
        try:
            if "--fd" in p.cmdline() and p.status() != psutil.STATUS_ZOMBIE:
                found.add(p.pid)
        except psutil.Error:
            pass
    return found


def _wait(what: str, found, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {timeout} s")


def test_a_crashing_worker_is_restarted_after_a_growing_pause_that_resets_after_a_healthy_run(
    database_url, redis_url, tmp_path
):
    log = tmp_path / "supervisor.log"
    env = {
        **os.environ, "TWINHUB_DATABASE_URL": database_url, "TWINHUB_REDIS_URL": redis_url,
        "TWINHUB_BUS_SECRET": BUS_SECRET, "TWINHUB_LOG_LEVEL": "warning",
        "TWINHUB_WORKER_RESTART_PAUSE": str(FIRST), "TWINHUB_WORKER_RESTART_MAX": str(MOST),
        "TWINHUB_WORKER_HEALTHY_AFTER": str(HEALTHY_AFTER),
    }
    with log.open("wb") as out:
        parent = subprocess.Popen(
            [sys.executable, "-m", "realtime", "serve", "--workers", "2", "--port", str(free_port())], env=env,
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=out,
        )
    supervisor = psutil.Process(parent.pid)
    try:
        workers = _wait("two workers", lambda: w if len(w := _workers(supervisor)) == 2 else None)
        victim = min(workers)
        pauses: list[float] = []
        gaps: list[float] = []  # from the kill to the next worker, measured here

        def crash(pid: int) -> int:
            """Kill the worker `pid`; return the one started in its place."""
            others = _workers(supervisor) - {pid}
            os.kill(pid, signal.SIGKILL)
            killed = time.monotonic()
            said = _wait(f"log line about {pid}", lambda: [m for m in EXITED.finditer(log.read_text())
                                                          if int(m.group(2)) == pid])
            pauses.append(float(said[0].group(3)))
            new = _wait("a new worker", lambda: _workers(supervisor) - others - {pid})
            gaps.append(time.monotonic() - killed)
            return new.pop()

        for _ in range(4):  # crashes as soon as it starts, four times
            victim = crash(victim)
        time.sleep(HEALTHY_AFTER + 1)  # then it runs healthily past the reset time
        assert parent.poll() is None and victim in _workers(supervisor)
        victim = crash(victim)  # and crashes again
        assert pauses == [FIRST, 2 * FIRST, 4 * FIRST, 8 * FIRST, FIRST], pauses
        assert all(gap >= pause for gap, pause in zip(gaps, pauses, strict=True)), (gaps, pauses)
        assert gaps[-1] < 8 * FIRST, (gaps, pauses)  # not the 16 × FIRST the crash loop was heading to
        started = time.monotonic()
        parent.terminate()  # heard at once, not after a pause
        parent.wait(20)
        assert time.monotonic() - started < 15
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
        for child in supervisor.children(recursive=True) if supervisor.is_running() else ():
            child.kill()
