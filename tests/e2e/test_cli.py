"""The `twinhub` command as a newcomer uses it: serve --demo on the embedded PostgreSQL, stop,
start again, and the history is there; admin commands set up a project."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from protocol import Post, Subscribe
from tests.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start(data_dir: Path, port: int, log: Path, preexec_fn=None, **settings: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")} | settings
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "serve", "--demo", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, preexec_fn=preexec_fn,
    )
    async with httpx.AsyncClient() as http:
        for _ in range(300):  # bounded: up to 30 s for initdb on a slow machine
            if proc.poll() is not None:
                raise AssertionError(f"twinhub serve exited: {log.read_text()[-2000:]}")
            try:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("twinhub serve did not become ready")


async def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(proc.wait, 20)


async def login(port: int, username: str) -> str:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"http://127.0.0.1:{port}/api/login", json={"username": username, "password": "demo1234"})
        return r.json()["token"]


async def test_serve_demo_stop_start_keeps_history(tmp_path):
    data, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    proc = await start(data, port, log)
    try:
        assert "claire.martin" in log.read_text() and "demo1234" in log.read_text()  # logins printed
        client = await Client.connect(f"ws://127.0.0.1:{port}/ws", await login(port, "ana.l"))
        chat = next(r["channel"] for s in client.welcome.spaces for r in s["rooms"] if r["area"] == "chat")
        await client.ok(Post(chat, "written before the restart"))
        [mailbox] = [s["mailbox"] for s in client.welcome.spaces]
        assert mailbox["unread"]["inbox"] == 1  # the demo's welcome mail
        await client.close()
    finally:
        await stop(proc)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit status -15).
    assert proc.returncode in (0, -signal.SIGTERM), log.read_text()[-2000:]
    assert "Application shutdown complete" in log.read_text()
    assert not list(data.glob("pgdata/postmaster.pid")), "the embedded PostgreSQL was left running"
    assert "event loop: uvloop" in log.read_text()  # the default where uvloop is installed

    # The second start on asyncio's own loop (TWINHUB_EVENT_LOOP), which must serve as well.
    proc = await start(data, port, log, TWINHUB_EVENT_LOOP="asyncio")
    try:
        assert "event loop: asyncio" in log.read_text()
        client = await Client.connect(f"ws://127.0.0.1:{port}/ws", await login(port, "claire.martin"))
        await client.ok(Subscribe(chat, since=0))
        [event] = await client.wait_events(chat, 1)
        assert event.data["message"]["text"] == "written before the restart"
        await client.close()
        pupil = await Client.connect(f"ws://127.0.0.1:{port}/ws", await login(port, "ana.l"))
        [mailbox] = [s["mailbox"] for s in pupil.welcome.spaces]
        replay = await pupil.ok(Subscribe(mailbox["channel"], since=0))
        assert replay.data["replayed"] == 1  # the demo did not send it again on restart
        [mail] = await pupil.wait_events(mailbox["channel"], 1)
        assert mail.data["mail"]["subject"] == "Welcome to our project!"
        await pupil.close()
    finally:
        await stop(proc)


def test_admin_commands_set_up_a_project(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}}
    base = [sys.executable, "-m", "realtime"]

    def twinhub(*args: str) -> str:
        done = subprocess.run([*base, *args, "--data-dir", str(tmp_path / "d")], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    twinhub("admin", "create-space", "--slug", "river-project", "--name", "River")
    out = twinhub("admin", "create-user", "--username", "t.river", "--name", "T. River")
    assert "password:" in out
    twinhub("admin", "add-member", "--space", "river-project", "--username", "t.river", "--role", "teacher_admin")
    out = twinhub("admin", "create-room", "--space", "river-project", "--area", "activities", "--name", "Samples")
    assert "channel room:" in out
    out = twinhub("admin", "create-bot", "--space", "river-project", "--name", "Sensor bot", "--by", "t.river")
    assert "token (shown once): twb_" in out
    assert "up to date" in twinhub("migrate")
    done = subprocess.run([*base, "admin", "add-member", "--space", "nope", "--username", "t.river", "--role", "visitor",
                           "--data-dir", str(tmp_path / "d")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0 and "no space 'nope'" in done.stderr


def test_a_wrong_event_loop_setting_stops_serve_before_it_starts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")} | {"TWINHUB_EVENT_LOOP": "tokio"}
    done = subprocess.run([sys.executable, "-m", "realtime", "serve", "--data-dir", str(tmp_path / "d")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0
    assert "TWINHUB_EVENT_LOOP must be auto, uvloop or asyncio, not 'tokio'" in done.stderr
    assert not (tmp_path / "d").exists()  # no database was started for it


async def test_serve_takes_more_connections_than_a_low_open_files_limit(tmp_path):
    """Started under a soft limit of 128 open files (a hard one of at least 1,024), `serve`
    raises it and keeps answering with 300 connections open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 1024, "this machine's hard limit on open files is too low for the test"
    data, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    proc = await start(data, port, log, preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, hard)))
    held = []
    try:
        assert f"at most {hard:,} open files" in log.read_text()
        for _ in range(300):
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"http://127.0.0.1:{port}/readyz", timeout=5)).status_code == 200
    finally:
        for s in held:
            s.close()
        await stop(proc)
