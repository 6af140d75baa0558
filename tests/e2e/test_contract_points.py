"""The contract seen from outside (issue 22, points 3, 5–9, 13, 14): a client written from
docs/protocol.md alone — JSON or MessagePack frames over a real socket, raw HTTP bytes where the
answer below the app matters — against a running server. Each test states the documented rule
it holds the server to."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import websockets

from realtime.policy import Area
from realtime.web.headers import SECURITY_HEADERS
from realtime.web.public_stream import PublicStreams
from tests.conftest import PASSWORD, login, public_view_on

TIMEOUT = 5.0
PRESENCE_INTERVAL = 1.0  # realtime/fanout/presence.py's default: changes are gathered this long
JSON, MSGPACK = "twinhub.v1.json", "twinhub.v1.msgpack"


class Wire:
    """A client written from docs/protocol.md alone: one frame per message out, an array of frames
    per message in, every frame kept in arrival order."""

    def __init__(self, ws: websockets.ClientConnection, subprotocol: str) -> None:
        self.ws = ws
        self.binary = subprotocol == MSGPACK
        self.frames: list[dict[str, Any]] = []
        self._taken = 0  # frames already looked at by next()
        self._arrived = asyncio.Event()
        self._refs = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, server: Any, token: str | None, subprotocol: str = JSON) -> Wire:
        ws = await websockets.connect(f"ws://127.0.0.1:{server.port}/ws", subprotocols=[subprotocol], max_size=2**22)
        wire = cls(ws, subprotocol)
        if token is not None:
            welcome = await wire.request({"type": "hello", "token": token})
            assert welcome["type"] == "welcome", welcome
        return wire

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                batch = msgpack.unpackb(message) if self.binary else json.loads(message)
                self.frames.extend(batch)
                self._arrived.set()

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        if isinstance(frame, dict):
            frame = msgpack.packb(frame) if self.binary else json.dumps(frame)
        await self.ws.send(frame)

    async def next(self, match: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame not yet looked at that `match`es (those before it are passed over)."""
        async with asyncio.timeout(timeout):
            while True:
                while self._taken < len(self.frames):
                    frame = self.frames[self._taken]
                    self._taken += 1
                    if match(frame):
                        return frame
                self._arrived.clear()
                await self._arrived.wait()

    async def request(self, frame: dict[str, Any], timeout: float = TIMEOUT) -> dict[str, Any]:
        """Send `frame` with a fresh ref; the ok, error or welcome answering it."""
        ref = frame.get("ref") or f"r{next(self._refs)}"
        await self.send({**frame, "ref": ref})
        return await self.next(lambda f: f.get("ref") == ref and f["type"] in ("ok", "error", "welcome"), timeout)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader


@pytest.fixture
async def wires(server):
    """open(token, subprotocol=JSON) -> a Wire, closed at the end of the test."""
    opened: list[Wire] = []

    async def open_wire(token: str | None, subprotocol: str = JSON) -> Wire:
        wire = await Wire.open(server, token, subprotocol)
        opened.append(wire)
        return wire

    yield open_wire
    await asyncio.gather(*(w.close() for w in opened), return_exceptions=True)


async def _token(http, world, who: str) -> str:
    return await login(http, world.users[who].username)


async def _bearer(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await _token(http, world, who)}"}


async def _raw(server, request: bytes, *, until_blank_line: bool = False) -> bytes:
    """Write `request` at once on a fresh TCP connection; the answer, read until the server closes
    (or, for an answer that keeps the connection, until the end of its head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(request)
        async with asyncio.timeout(TIMEOUT):
            return await (reader.readuntil(b"\r\n\r\n") if until_blank_line else reader.read())
    finally:
        writer.close()


def _has_security_headers(answer: bytes) -> bool:
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    return all(b"\r\n" + name + b": " + value.lower() + b"\r\n" in head + b"\r\n" for name, value in SECURITY_HEADERS)


def _handshake(path: str = "/ws", *headers: str, key: bool = True) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Version: 13", *(["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="] if key else []), *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# -- point 3: a frame over the limit still gets its ref -----------------------------------------


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_a_frame_over_the_frame_limit_is_answered_too_large_with_its_ref(world, http, wires, subprotocol):
    """protocol.md, Frames: "A refused request always gets an `error` (with its `ref` if it had
    one)" — a frame over `max_frame_bytes` (16 KiB) included, up to the transport's limit."""
    client = await wires(await _token(http, world, "pupil_member"), subprotocol)
    chat = world.channel(Area.CHAT)
    for size, ref in ((45_000, "too-big"), (60_000, 7)):
        await client.send({"type": "post", "channel": chat, "text": "x" * size, "ref": ref})
        error = await client.next(lambda f: f["type"] == "error")
        assert (error["code"], error.get("ref")) == ("too_large", ref), error
    # A frame whose ref cannot be read has none: not a frame at all, or a ref no answer could carry.
    unreadable = "x" * 45_000 if subprotocol == JSON else b"\xc1" * 45_000
    await client.send(unreadable)
    error = await client.next(lambda f: f["type"] == "error")
    assert error["code"] == "too_large" and "ref" not in error
    await client.send({"type": "ping", "ref": "still"})
    assert (await client.next(lambda f: f.get("ref") == "still"))["type"] == "pong"
    stored = await http.get(f"/api/rooms/{world.rooms[Area.CHAT]}/messages",
                            headers=await _bearer(http, world, "pupil_member"))
    assert stored.json()["messages"] == []


async def test_a_ref_no_answer_can_carry_is_refused_and_the_socket_lives_on(world, http, wires):
    """protocol.md, error codes: every bad input gets an error with a stable code and the
    connection stays open — a `ref` holding a lone surrogate ("\\ud800": valid JSON, no text)
    included, which the server once tried to send back and failed on, closing the socket."""
    client = await wires(await _token(http, world, "pupil_member"))
    await client.send('{"type":"ping","ref":"a\\ud800b"}')
    error = await client.next(lambda f: f["type"] == "error")
    assert error["code"] == "invalid_field" and "ref" not in error
    await client.send('{"type":"post","channel":"room:1","text":"' + "x" * 45_000 + '","ref":"\\ud800"}')
    error = await client.next(lambda f: f["type"] == "error")
    assert error["code"] == "too_large" and "ref" not in error
    await client.send({"type": "ping", "ref": "alive"})
    assert (await client.next(lambda f: f.get("ref") == "alive"))["type"] == "pong"


async def test_the_example_chat_client_drops_and_reports_posts_too_large_to_send(world, http, server, tmp_path):
    """examples/chat_client.py resends what was never acknowledged after each reconnect. A post over
    the transport's limit closed every new socket (1009) before any answer: it was resent for ever,
    and nothing typed after it ever got through. Now it drops what cannot be sent, and what the
    server refuses, and says so."""
    pupil = world.users["pupil_member"]
    script = Path(__file__).resolve().parents[2] / "examples" / "chat_client.py"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), "--server", f"http://127.0.0.1:{server.port}", "--user", pupil.username,
        "--password", PASSWORD, "--room", "chat", cwd=tmp_path,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Over the transport's limit (64 KiB), over the frame limit (16 KiB), over the text limit
        # (4,000 characters: refused by the server, with the post's ref), then an ordinary line.
        for line in ("a" * 70_000, "b" * 20_000, "c" * 5_000, "after the long ones"):
            proc.stdin.write(line.encode() + b"\n")
        await proc.stdin.drain()
        async with asyncio.timeout(20):
            while b"after the long ones" not in (out := await proc.stdout.readline()):
                assert out, "the client ended"
        await asyncio.sleep(0.5)  # anything it would still resend has had time to be
    finally:
        proc.kill()
        _, err = await proc.communicate()
    report = err.decode()
    dropped = [line for line in report.splitlines() if line.startswith("! not sent (")]
    assert [line.endswith(f"{letter * 40}… ({n} characters)") for line, (letter, n) in zip(
        dropped, (("a", 70_000), ("b", 20_000), ("c", 5_000)), strict=True)] == [True] * 3, report[-2000:]
    assert "disconnected" not in report, report[-2000:]
    stored = await http.get(f"/api/rooms/{world.rooms[Area.CHAT]}/messages",
                            headers=await _bearer(http, world, "pupil_member"))
    assert [m["text"] for m in stored.json()["messages"]] == ["after the long ones"]


# -- point 5: a mute of `all` is shown as `all`, and lifted by it ---------------------------------


async def test_a_mute_of_everything_is_shown_as_all_and_lifted_by_that_scope(world, http, wires):
    """protocol.md, Mutes: `muted` carries the mute's `scope` and `until`, and `unmute` with that
    scope lifts it. A mute of `all` answered with the area posted in (`chat`), whose unmute
    lifted nothing (`lifted: false`) and left the pupil silenced. Where two mutes apply, the one
    that ends last is shown; lifting it shows the other."""
    sid, pupil_id = world.space_id, world.users["pupil_member"].id
    admin = await wires(await _token(http, world, "teacher_admin"))
    pupil = await wires(await _token(http, world, "pupil_member"))
    pupil_http = await _bearer(http, world, "pupil_member")
    chat, corner = world.channel(Area.CHAT), world.channel(Area.PUPILS_CORNER)
    muted = await admin.request({"type": "mute", "space": sid, "user_id": pupil_id, "scope": "all", "minutes": 60})
    assert muted["type"] == "ok", muted

    refusals = await asyncio.gather(*(pupil.request({"type": "post", "channel": room, "text": f"hi {i}"})
                                      for i, room in enumerate([chat, corner] * 10)))
    refusals.append(await pupil.request({"type": "send_mail", "space": sid, "to": [world.users["teacher_admin"].id],
                                         "subject": "s", "text": "t"}))
    for error in refusals:
        # Top-level fields of the error frame (docs: "some codes add fields"), never under `data`.
        assert (error["code"], error["scope"], error["until"]) == ("muted", "all", muted["until"]), error
        assert "data" not in error
    over_http = await http.post(f"/api/spaces/{sid}/mail", headers=pupil_http,
                                json={"to": [world.users["teacher_admin"].id], "subject": "s", "text": "t"})
    assert over_http.status_code == 403
    assert {k: over_http.json()["error"][k] for k in ("code", "scope", "until")} == {
        "code": "muted", "scope": "all", "until": muted["until"]}

    lifted = await admin.request({"type": "unmute", "space": sid, "user_id": pupil_id, "scope": refusals[0]["scope"]})
    assert lifted["lifted"] is True
    assert (await pupil.request({"type": "post", "channel": chat, "text": "free again"}))["type"] == "ok"

    # Two mutes in force: the one that ends last is named; lifting it names the other.
    for scope, minutes in (("chat", 120), ("all", 60)):
        assert (await admin.request({"type": "mute", "space": sid, "user_id": pupil_id, "scope": scope,
                                     "minutes": minutes}))["type"] == "ok"
    for expected in ("chat", "all"):
        error = await pupil.request({"type": "post", "channel": chat, "text": "still?"})
        assert (error["code"], error["scope"]) == ("muted", expected)
        assert (await admin.request({"type": "unmute", "space": sid, "user_id": pupil_id,
                                     "scope": error["scope"]}))["lifted"] is True
    assert (await pupil.request({"type": "post", "channel": chat, "text": "free"}))["type"] == "ok"


# -- point 6 and 13: every answer of the handshake is HTTP, with the security headers ------------


async def test_every_answer_to_a_websocket_handshake_carries_the_security_headers(world, http, server):
    """protocol.md, HTTP API: every HTTP answer carries the security headers — the answers to a
    WebSocket handshake included: its 101, and every refusal, whether the app's (403: a foreign
    Origin with the cookie, no subprotocol we speak, a path that is not /ws) or the WebSocket
    parser's own (400: no key; 431: a header line over 8 KiB). A refused handshake is an HTTP
    answer, never a close code (protocol.md, Close codes): 403 with the JSON error body."""
    token = await _token(http, world, "pupil_member")
    cases = [
        (_handshake("/ws", "Origin: https://evil.example", f"Cookie: twinhub_session={token}"), 403),
        (_handshake("/ws", "Sec-WebSocket-Protocol: chat.v9"), 403),
        (_handshake("/elsewhere"), 403),
        (_handshake("/ws", key=False), 400),
        (_handshake("/ws", "X-Long: " + "a" * 9_000), 431),
    ]
    for request, status in cases:
        answer = await _raw(server, request)
        assert answer.startswith(f"HTTP/1.1 {status} ".encode()), (request[:80], answer[:200])
        assert _has_security_headers(answer), answer[:1000]
    for request in cases[0][0], cases[1][0]:
        body = json.loads((await _raw(server, request)).split(b"\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "forbidden" and body["error"]["message"]
    accepted = await _raw(server, _handshake("/ws", f"Sec-WebSocket-Protocol: {JSON}"), until_blank_line=True)
    assert accepted.startswith(b"HTTP/1.1 101 ") and _has_security_headers(accepted), accepted


# -- point 7: a request's head is at most 16 KiB, however it arrives ----------------------------


async def test_a_request_head_over_16_kib_is_refused_even_when_it_arrives_whole(server):
    """security.md: request heads over 16 KiB are refused (431). h11 stopped only a head still
    incomplete at 16 KiB: one written whole, of any size one read brings, was served."""
    def head(path: str, size: int, *extra: str) -> bytes:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *extra]
        filler = size - len("\r\n".join(lines)) - len("\r\nX-Fill: \r\n\r\n")
        return ("\r\n".join([*lines, "X-Fill: " + "a" * filler]) + "\r\n\r\n").encode()

    fits = await _raw(server, head("/healthz", 16 * 1024, "Connection: close"))
    assert fits.startswith(b"HTTP/1.1 200 "), fits[:200]
    for request in (head("/healthz", 16 * 1024 + 1), head("/healthz", 40_000),
                    head("/ws", 20_000, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")):
        answer = await _raw(server, request)
        assert answer.startswith(b"HTTP/1.1 431 ") and _has_security_headers(answer), (len(request), answer[:200])

    # On a keep-alive connection: each head is counted alone, and the rest of a body a route
    # answered without reading (401 before the body is read) is no head.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        body = b"{" + b" " * 14_998 + b"}"
        writer.write(f"POST /api/spaces/1/mail HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        async with asyncio.timeout(TIMEOUT):
            first = await _answer(reader)
            writer.write(body)
            writer.write(head("/healthz", 10_000))
            second = await _answer(reader)
            writer.write(head("/healthz", 20_000))
            third = await reader.read()
    finally:
        writer.close()
    assert first.startswith(b"HTTP/1.1 401 ") and second.startswith(b"HTTP/1.1 200 "), (first[:80], second[:80])
    assert third.startswith(b"HTTP/1.1 431 "), third[:200]


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """One whole answer on a keep-alive connection: its head, then as many bytes as it says."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return head + await reader.readexactly(length)


# -- point 8: a field over its limit is `too_large`, over WebSocket and HTTP alike ---------------


async def test_a_reason_over_500_characters_is_too_large_over_websocket_and_http(world, http, wires):
    """protocol.md, error codes: a moderator's reason over its limit (`max_note_chars`, 500) is
    `too_large` — the same code over HTTP (413) as over the WebSocket, as the Mutes section says."""
    sid, pupil_id = world.space_id, world.users["pupil_member"].id
    admin_http = await _bearer(http, world, "teacher_admin")
    admin = await wires(await _token(http, world, "teacher_admin"))
    for reason, code, status in (("x" * 501, "too_large", 413), ("x" * 500, None, 201)):
        r = await http.post(f"/api/spaces/{sid}/mutes", headers=admin_http,
                            json={"user_id": pupil_id, "scope": "chat", "minutes": 5, "reason": reason})
        assert r.status_code == status, r.text
        if code is not None:
            assert r.json()["error"]["code"] == code
        answer = await admin.request({"type": "mute", "space": sid, "user_id": pupil_id, "scope": "chat",
                                      "minutes": 5, "reason": reason})
        assert answer.get("code") == code, answer
    posted = await (await wires(await _token(http, world, "pupil_admin"))).request(
        {"type": "post", "channel": world.channel(Area.CHAT), "text": "to hide"})
    hide = f"/api/rooms/{world.rooms[Area.CHAT]}/messages/{posted['id']}/hide"
    r = await http.post(hide, headers=admin_http, json={"reason": "x" * 501})
    assert (r.status_code, r.json()["error"]["code"]) == (413, "too_large")
    error = await admin.request({"type": "hide", "channel": world.channel(Area.CHAT), "id": posted["id"],
                                 "reason": "x" * 501})
    assert error["code"] == "too_large"


# -- point 9: presence lists each person once, never you to yourself -----------------------------


def _people(wire: Wire, channel: str) -> tuple[set[int], list[str]]:
    """Who the client holds as present, from `members` then each change in order, and what was
    wrong on the way: someone announced who was already listed, or gone who was not."""
    present: set[int] = set()
    wrong = []
    for frame in wire.frames:
        if frame["type"] != "presence" or frame["channel"] != channel:
            continue
        if "members" in frame:
            present = {m["id"] for m in frame["members"]}
        for card in frame.get("joined", ()):
            if card["id"] in present:
                wrong.append(f"{card['id']} joined twice")
            present.add(card["id"])
        for card in frame.get("left", ()):
            if card["id"] not in present:
                wrong.append(f"{card['id']} left unseen")
            present.discard(card["id"])
        if len(present) != frame["count"]:
            wrong.append(f"{len(present)} present, count {frame['count']}")
    return present, wrong


async def test_presence_never_announces_you_to_yourself_nor_anyone_twice(world, http, wires):
    """protocol.md, presence: on subscribe you get `members`, afterwards the changes. The changes
    gathered in the second of your subscribe were sent to you as well: you joined a room and were
    then told you had joined, as was everyone your list already held."""
    chat = world.channel(Area.CHAT)
    who = ["teacher_admin", "pupil_member"]
    first, second = [await wires(await _token(http, world, w)) for w in who]
    for wire in (first, second):
        assert (await wire.request({"type": "subscribe", "channel": chat}))["type"] == "ok"
    await asyncio.sleep(PRESENCE_INTERVAL * 2)  # the interval in which both arrived has been sent
    ids = {world.users[w].id for w in who}
    for wire, me in zip((first, second), who, strict=True):
        present, wrong = _people(wire, chat)
        assert (present, wrong) == (ids, []), (me, wire.frames)
        for frame in wire.frames:
            assert world.users[me].id not in {c["id"] for c in frame.get("joined", ())}, (me, frame)


async def test_twenty_arriving_at_once_each_see_everyone_once(world, http, wires, pool, password_hash):
    """The same, for a class arriving in the same second, spread over the seconds of presence."""
    from storage import accounts, spaces

    chat = world.channel(Area.CHAT)
    tokens = []
    for i in range(20):
        user = await accounts.create_user(pool, username=f"class-{world.slug}-{i}", display_name=f"Pupil {i}",
                                          password_hash=password_hash, school="Kraków")
        await spaces.set_member(pool, world.space_id, user.id, "pupil_member")
        tokens.append((user.id, await login(http, user.username)))
    clients = await asyncio.gather(*(wires(token) for _, token in tokens))

    async def arrive(wire: Wire, delay: float) -> None:
        await asyncio.sleep(delay)
        assert (await wire.request({"type": "subscribe", "channel": chat}))["type"] == "ok"

    await asyncio.gather(*(arrive(c, i * 0.1) for i, c in enumerate(clients)))  # two seconds of arrivals
    await asyncio.sleep(PRESENCE_INTERVAL * 2)
    everyone = {user_id for user_id, _ in tokens}
    for (user_id, _), wire in zip(tokens, clients, strict=True):
        present, wrong = _people(wire, chat)
        assert (present, wrong) == (everyone, []), (user_id, wrong, len(present))


# -- point 13: the public stream's `retry:`, and HTTP bodies whatever their Content-Type ---------


async def test_the_public_stream_tells_eventsource_when_to_retry(world, http, server, pool):
    """protocol.md, Public view: every stream begins with `retry: 3000` (EventSource reconnects 3 s
    after a drop); `busy` sets `retry: 10000` and carries no `id:` — an `id: 0` made the browser
    come back with Last-Event-ID 0, replaying the journal from its start."""
    await public_view_on(pool, world)  # off for a new project
    async with http.stream("GET", f"/api/public/{world.slug}/events") as r:
        assert r.status_code == 200
        first = await asyncio.wait_for(anext(r.aiter_text()), TIMEOUT)
    assert first.startswith("retry: 3000\n\n"), first
    streams = PublicStreams(hub=None, chat=None, directory=None, pool=None)  # the busy answer needs none
    streams._open["203.0.113.9"] = 10**6
    busy = "".join([chunk async for chunk in streams.stream(1, None, "203.0.113.9")])
    assert busy.startswith("retry: 10000\n\n") and "event: busy\n" in busy, busy
    assert "id:" not in busy, busy


async def test_an_http_body_is_read_as_json_whatever_its_content_type(world, http):
    """protocol.md, HTTP API: "JSON in": the body is read as JSON whatever `Content-Type` says (curl
    -d sends a form type), and anything that is not a JSON object is `bad_frame` (400)."""
    teacher = await _bearer(http, world, "teacher_admin")
    url = f"/api/spaces/{world.space_id}/mail"
    mail = {"to": [world.users["teacher_member"].id], "subject": "s", "text": "t"}
    for kind in (None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"):
        headers = {**teacher, **({"content-type": kind} if kind else {})}
        r = await http.post(url, headers=headers, content=json.dumps({**mail, "client_id": f"ct-{kind}"}))
        assert r.status_code == 201, (kind, r.text)
    r = await http.post(url, headers={**teacher, "content-type": "application/json"}, content=b"to=5&text=t")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_frame")


# -- point 14: a project closed reaches its members' open sockets --------------------------------


async def test_closing_a_project_sends_every_members_socket_a_fresh_welcome(world, http, wires):
    """protocol.md, welcome: it comes again whenever your rights change — a project closed or
    reopened among them, on every socket you have open. Closing reached no open socket: a client
    learned it only from a refused post (`space_closed`)."""
    sid = world.space_id
    members = ["pupil_member", "pupil_member", "visitor", "teacher_member", "teacher_admin"]
    sockets = [await wires(await _token(http, world, who)) for who in members]
    sockets += [await wires(await _token(http, world, "pupil_admin")) for _ in range(15)]  # twenty in all
    outsider = await wires(await _token(http, world, "outsider"))
    admin = await _bearer(http, world, "teacher_admin")

    for closed, route in ((True, "close"), (False, "reopen")):
        r = await http.post(f"/api/spaces/{sid}/{route}", headers=admin)
        assert r.status_code == 200, r.text
        for wire in sockets:
            welcome = await wire.next(lambda f: f["type"] == "welcome" and "ref" not in f)
            [space] = [s for s in welcome["spaces"] if s["id"] == sid]
            assert space["closed"] is closed
    answer = await sockets[0].request({"type": "post", "channel": world.channel(Area.CHAT), "text": "open again"})
    assert answer["type"] == "ok"
    assert [f for f in outsider.frames if f["type"] == "welcome" and "ref" not in f] == []


async def test_closing_and_reopening_share_the_room_changes_budget(world, http):
    """Each close or reopen sends every member's sockets a welcome: like archiving rooms, thirty
    at once, then one every ten seconds (protocol.md, Limits)."""
    admin = await _bearer(http, world, "teacher_admin")
    started = time.monotonic()
    codes = []
    for i in range(31):
        r = await http.post(f"/api/spaces/{world.space_id}/{'close' if i % 2 == 0 else 'reopen'}", headers=admin)
        codes.append(r.status_code)
    assert codes == [200] * 30 + [429], codes
    assert time.monotonic() - started < 30
