"""No secret in the logs. tests/conftest.py's `WATCH` keeps every log line of the run and every
secret the tests met (passwords, session and bot tokens, invitation codes, generated pupil
passwords), and fails the session if any line holds one (pytest_sessionfinish). Here: the watch
itself works, and the paths most likely to log a secret — lockouts, refused handshakes, refused
tokens, errors — are walked on a server logging at the production level (INFO).
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import websockets

from protocol import Hello
from realtime.config import Settings
from realtime.run.server import RunningServer
from tests.client import Client
from tests.conftest import PASSWORD, WATCH


@pytest.fixture(scope="module")
async def chatty(database_url):
    """A server of its own (its login throttle too) logging at INFO, as `twinhub serve` does."""
    running = RunningServer(Settings(database_url=database_url, port=0, log_level="info", login_backoff=0.01))
    await running.start()
    yield running
    await running.stop()


def test_the_watch_catches_a_secret_in_a_log_line():
    """Threat: a check that cannot fail — the watch must see lines of every logger, and find a
    secret in them."""
    secret = "s3cr3t-for-the-watch-only"
    WATCH.secrets.add(secret)
    lines = len(WATCH.lines)
    logging.getLogger("twinhub.somewhere").warning("oops: %s", secret)
    logging.getLogger("uvicorn.error").warning("oops again: %s", secret)
    try:
        assert [line for s, line in WATCH.leaks() if s == secret] == WATCH.lines[lines:]
        assert len(WATCH.lines) == lines + 2
    finally:
        del WATCH.lines[lines:]
        WATCH.secrets.discard(secret)


async def test_lockouts_refusals_and_handshakes_log_no_secret(chatty, world):
    """Threat: passwords, tokens or codes written to the server's log (read by operators,
    shipped to log services, kept for months) — on the paths that log about a request."""
    from realtime.errors import PERIOD, refusals

    refusals.restart(PERIOD)  # each kind is written once a minute: earlier tests may have had this minute's
    lines = len(WATCH.lines)
    url = f"http://127.0.0.1:{chatty.port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        token = (await http.post("/api/login", json={"username": world.users["teacher_admin"].username,
                                                     "password": PASSWORD})).json()["token"]
        admin = {"Authorization": f"Bearer {token}"}
        pupil = (await http.post(f"/api/spaces/{world.space_id}/pupils", headers=admin,
                                 json={"pupils": ["Léa Log"]})).json()["pupils"][0]
        bot = (await http.post(f"/api/spaces/{world.space_id}/bots", headers=admin, json={"name": "Logbot"})).json()["token"]
        code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                                json={"role": "visitor", "label": "a parent"})).json()["code"]
        secrets = {token, pupil["password"], bot, code, PASSWORD}
        WATCH.secrets.update(secrets)
        # A child types their password into the username field, then secrets as passwords: locked.
        await http.post("/api/login", json={"username": pupil["password"], "password": pupil["password"]})
        for password in (bot, code, token, PASSWORD, pupil["password"][::-1]):
            await asyncio.sleep(0.05)  # past the (test server's 10 ms) back-off: each one counts
            await http.post("/api/login", json={"username": pupil["username"], "password": password})
        r = await http.post("/api/login", json={"username": pupil["username"], "password": pupil["password"]})
        assert r.status_code == 429  # locked: the lockout was logged
        # Tokens where they do not belong, and a cookie handshake from another site.
        for bad in (bot, code, pupil["password"]):
            assert (await http.get("/api/me", headers={"Authorization": f"Bearer {bad}"})).status_code == 401
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(f"ws://127.0.0.1:{chatty.port}/ws", origin="http://evil.example",
                                     additional_headers={"Cookie": f"twinhub_session={token}"})
        client = await Client.connect(f"ws://127.0.0.1:{chatty.port}/ws", None)
        assert (await client.error(Hello(token=bot))).code == "unauthenticated"
        await client.close()
        await http.post("/api/logout", headers=admin)
    logged = "\n".join(WATCH.lines[lines:])
    assert "login locked" in logged and "another origin" in logged  # the watch saw these paths
    for secret in secrets:
        assert secret not in logged
    assert pupil["username"] not in logged  # nor who was locked: the audit log names them, for teachers


async def test_no_client_address_is_logged(chatty, world):
    """Threat: an access log that keeps, for months, which address (which home) each child
    connected from. Neither HTTP nor WebSocket requests are logged with their client's address,
    at the production level (INFO), directly or through a trusted proxy."""
    lines = len(WATCH.lines)
    proxied = {"X-Forwarded-For": "198.51.100.77"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{chatty.port}", timeout=30) as http:
        token = (await http.post("/api/login", headers=proxied, json={
            "username": world.users["pupil_member"].username, "password": PASSWORD})).json()["token"]
        assert (await http.get("/api/me", headers={**proxied, "Authorization": f"Bearer {token}"})).status_code == 200
        assert (await http.get("/api/nothing-here", headers=proxied)).status_code == 404
    for headers in (proxied, {}):
        client = await Client.connect(f"ws://127.0.0.1:{chatty.port}/ws", token, additional_headers=headers)
        await client.close()
    with pytest.raises(websockets.InvalidStatus):  # a refused handshake is not logged with its address either
        await websockets.connect(f"ws://127.0.0.1:{chatty.port}/ws", origin="http://evil.example",
                                 additional_headers={**proxied, "Cookie": f"twinhub_session={token}"})
    await asyncio.sleep(0.2)  # the server's last lines
    logged = WATCH.lines[lines:]
    assert not [line for line in logged if "198.51.100.77" in line or "127.0.0.1:" in line], logged


async def test_refusals_and_failures_are_written_once_a_kind_a_period(chatty, world, monkeypatch):
    """Threat: a client that decides how big the log gets — hundreds of refused requests, or a
    request that makes the server fail, written (with a traceback) once per request — until the
    line an operator needs drowns, or the disk fills. Each kind is written once a period, its
    traceback too; one line at the end of the period counts the rest (realtime/errors.py, Tally)."""
    from protocol import ListRecipients, Ping, Subscribe
    from realtime.errors import PERIOD, refusals

    refusals.restart(1.0)

    def boom(*args, **kwargs):
        raise RuntimeError("a bug for the test")

    services = chatty.app.state.services
    monkeypatch.setattr(services.mail, "recipients", boom)
    monkeypatch.setattr("realtime.web.api.welcome", boom)
    lines = len(WATCH.lines)
    url = f"http://127.0.0.1:{chatty.port}"
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        token = (await http.post("/api/login", json={"username": world.users["teacher_member"].username,
                                                     "password": PASSWORD})).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        client = await Client.connect(f"ws://127.0.0.1:{chatty.port}/ws", token)
        for i in range(20):  # refused over the socket and over HTTP: one kind, `not_found`
            assert (await client.error(Subscribe(channel=f"room:{900_000 + i}", ref=i))).code == "not_found"
            r = await http.get(f"/api/rooms/{900_000 + i}/messages", headers=auth)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        for _ in range(10):  # failures: each answered `internal`, in JSON over HTTP
            assert (await client.error(ListRecipients(space=world.space_id, ref=99))).code == "internal"
            r = await http.get("/api/me", headers=auth)
            assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
        await client.request(Ping(ref=500))  # 30 client refusals in 10 s: not yet abusive
        await client.close()

    def written() -> list[str]:
        return [line for line in WATCH.lines[lines:] if "twinhub.refusals" in line]

    for _ in range(40):
        if sum("more of" in line for line in written()) >= 3:
            break
        await asyncio.sleep(0.1)
    refusals.restart(PERIOD)
    logged = written()
    firsts = [line for line in logged if "more of" not in line]
    assert sum("not_found" in line for line in firsts) == 1, firsts
    assert sum("request mail_recipients failed" in line for line in firsts) == 1, firsts
    assert sum("GET /api/me failed" in line for line in firsts) == 1, firsts
    assert "\n".join(WATCH.lines[lines:]).count("Traceback") == 2  # one per kind of failure, not one per request
    summaries = [line for line in logged if "more of" in line]
    assert any(line.startswith("INFO") and "39 more of \"refused not_found\"" in line for line in summaries), summaries
    assert any("9 more of \"failed mail_recipients: RuntimeError\"" in line for line in summaries), summaries
    assert any("9 more of \"failed /api/me: RuntimeError\"" in line for line in summaries), summaries
    assert str(900_005) not in "\n".join(logged)  # routes are named by their pattern, not their ids


async def test_refusals_of_any_kind_count_towards_the_abuse_close(connect, world):
    """Threat: a script that keeps asking for what it may not have (another project's rooms,
    another member's mail) one well-formed frame at a time, which malformed-frame counting alone
    would let through for ever."""
    from protocol import CloseCode, GetMail, Subscribe

    client = await connect(world.users["visitor"])
    for i in range(30):
        client.send(Subscribe(channel=f"room:{900_000 + i}", ref=i))
        client.send(GetMail(id=900_000 + i, ref=100 + i))
    assert await client.closed() == CloseCode.ABUSIVE
