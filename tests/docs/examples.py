"""The docs' examples, read and run: what tests/docs/test_examples.py does with every block the
docs mark as an example (docs/protocol.md, at its top, says how to mark one).

    <!-- example http as=claire.martin -->     a ```sh block of curl commands, each followed by
                                               its answer: `# 201 {"id":1,…}`
    <!-- example ws as=ana.l -->               a ```text block of `→` frames sent and `←`
                                               arrays received, or a ```json block whose
                                               objects are sent and whose arrays are received
    <!-- example … fresh -->                   this example starts on a demo of its own

Each `##` section of a document runs on a freshly started demo, its examples in order (a
`fresh` one starts another). In what is expected, `…` stands for whatever the server adds: a
bare `…` in an object for more fields, in an array for more items, as a value for any value;
a string ending in `…` (`"twb_…"`) for any string that starts so — remembered, and the same text
in a later command of the section stands for it; a timestamp in the documented form
(2026-11-22T09:14:03.512Z) for any timestamp in that form. Everything else must be as written:
the fields of an object without `…` are all the fields it has.

Parsing is pure (no I/O) so that a malformed example fails before any server starts; `Demo` runs
them against a server on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from realtime.run.demo import PASSWORD as DEMO_PASSWORD

ELLIPSIS = "…"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MARKER = re.compile(r"^\s*<!--\s*example\b(?P<attrs>[^>]*?)\s*-->\s*$")
FENCE = re.compile(r"^\s*```(?P<lang>\w*)\s*$")  # indented too: a block inside a list item
WAIT = 5.0  # seconds an expected frame may take to arrive


class ExampleError(AssertionError):
    """An example that does not parse, or that the server does not bear out."""


# -- reading the documents ------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    doc: str  # the document's path, relative to the repository
    line: int  # the line of the marker
    section: str  # the `##` heading it is under
    kind: str  # "http" or "ws"
    user: str | None  # as=<username>: whose token `$TOKEN` is, whose socket the frames go over
    fresh: bool
    lang: str
    body: str

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def read_examples(path: Path, root: Path) -> list[Example]:
    """Every marked block of the document, in order. Raises ExampleError for a marker that names
    no known kind, an unknown attribute, or no fenced block right under it."""
    lines = path.read_text().splitlines()
    doc = str(path.relative_to(root))
    found, section = [], ""
    for i, line in enumerate(lines):
        if line.startswith("## "):
            section = line[3:].strip()
        m = MARKER.match(line)
        if m is None:
            continue
        where = f"{doc}:{i + 1}"
        words = m.group("attrs").split()
        if not words or words[0] not in ("http", "ws"):
            raise ExampleError(f"{where}: an example marker starts with its kind, http or ws: {line!r}")
        kind, user, fresh = words[0], None, False
        for word in words[1:]:
            if word.startswith("as="):
                user = word[3:]
            elif word == "fresh":
                fresh = True
            else:
                raise ExampleError(f"{where}: unknown attribute {word!r} (known: as=<username>, fresh)")
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        if fence is None:
            raise ExampleError(f"{where}: a marker goes on the line right above the block's ```")
        end = next((j for j in range(i + 2, len(lines)) if lines[j].strip().startswith("```")), None)
        if end is None:
            raise ExampleError(f"{where}: the block is never closed")
        lang = fence.group("lang")
        if (kind, lang) not in (("http", "sh"), ("ws", "text"), ("ws", "json")):
            raise ExampleError(f"{where}: a {kind} example is a ```{'sh' if kind == 'http' else 'text or json'} block")
        if kind == "ws" and user is None:
            raise ExampleError(f"{where}: a ws example says whose socket it is (as=<username>)")
        body = textwrap.dedent("\n".join(lines[i + 2 : end]))
        found.append(Example(doc, i + 1, section, kind, user, fresh, lang, body))
    return found


# -- relaxed JSON: the docs' `…` --------------------------------------------------------------------


def _with_ellipses_quoted(text: str) -> str:
    """The docs' JSON with each bare `…` made JSON: a field `"…": "…"` in an object, a value `"…"`
    elsewhere."""
    out, stack, in_string, escaped, last = [], [], False, False, ""
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string, last = False, '"'
            continue
        if ch == ELLIPSIS:
            in_object = stack and stack[-1] == "{" and last != ":"
            out.append('"…": "…"' if in_object else '"…"')
            last = '"'
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
        out.append(ch)
        if not ch.isspace():
            last = ch
    return "".join(out)


def json_values(text: str, where: str) -> list[Any]:
    """The JSON values written one after another in `text` (with the docs' `…`)."""
    text, decoder, values, at = _with_ellipses_quoted(text), json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return values
        try:
            value, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError as exc:
            raise ExampleError(f"{where}: not JSON (with …): {exc}: {text[at : at + 120]!r}") from None
        values.append(value)


def json_value(text: str, where: str) -> Any:
    values = json_values(text, where)
    if len(values) != 1:
        raise ExampleError(f"{where}: expected one JSON value, found {len(values)}")
    return values[0]


def _holds_ellipsis(value: Any) -> bool:
    if value == ELLIPSIS:
        return True
    if isinstance(value, dict):
        return ELLIPSIS in value or any(_holds_ellipsis(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_ellipsis(v) for v in value)
    return False


# -- matching an answer against what the docs show -------------------------------------------------


def match(expected: Any, actual: Any, path: str = "", bound: dict[str, Any] | None = None) -> list[str]:
    """Where `actual` differs from `expected` (the docs' value, with its placeholders); empty when
    it matches. Fills `bound` with the values that `"…"`-ended strings stood for."""
    bound = {} if bound is None else bound
    here = path or "the answer"
    if isinstance(expected, str) and expected == ELLIPSIS:
        return []
    if isinstance(expected, str) and expected.endswith(ELLIPSIS):
        if isinstance(actual, str) and actual.startswith(expected[:-1]):
            bound[expected] = actual
            return []
        return [f"{here}: expected a string starting {expected[:-1]!r}, got {_short(actual)}"]
    if isinstance(expected, str) and TIMESTAMP.match(expected):
        if isinstance(actual, str) and TIMESTAMP.match(actual):
            return []
        return [f"{here}: expected a timestamp like {expected!r} (UTC, milliseconds), got {_short(actual)}"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{here}: expected an object, got {_short(actual)}"]
        keys = [k for k in expected if k != ELLIPSIS]
        problems = [f"{here}: no field {k!r}" for k in keys if k not in actual]
        if ELLIPSIS not in expected:
            problems += [f"{here}: a field the docs do not show: {k!r}" for k in actual if k not in expected]
        for k in keys:
            if k in actual:
                problems += match(expected[k], actual[k], f"{path}.{k}" if path else k, bound)
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{here}: expected a list, got {_short(actual)}"]
        items = [e for e in expected if e != ELLIPSIS]
        if len(items) == len(expected):
            if len(actual) != len(expected):
                return [f"{here}: expected {len(expected)} items, got {len(actual)}: {_short(actual)}"]
            return [p for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                    for p in match(e, a, f"{path}[{i}]", bound)]
        at = 0  # `…` in a list: the items written, in order, among the items there
        for e in items:
            while at < len(actual) and match(e, actual[at], "", {}):
                at += 1
            if at == len(actual):
                return [f"{here}: no item like {_short(e)} (in this order) in {_short(actual)}"]
            match(e, actual[at], "", bound)
            at += 1
        return []
    if isinstance(expected, bool) or isinstance(actual, bool) or expected is None:
        return [] if expected is actual else [f"{here}: expected {_short(expected)}, got {_short(actual)}"]
    return [] if expected == actual and type(actual) is not bool else [
        f"{here}: expected {_short(expected)}, got {_short(actual)}"
    ]


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# -- http examples: curl commands and their answers ------------------------------------------------


@dataclass
class Command:
    line: str  # the command as written (continuation lines joined)
    answer: str | None = None  # what the `# <status> <body>` comment under it says
    assign: str | None = None  # NAME in NAME=$(curl … | python3 -c '…["key"]…')
    key: str | None = None


_ASSIGN = re.compile(r"^(?P<name>\w+)=\$\((?P<curl>curl .*?)\s*\|\s*python3 -c '.*\[\"(?P<key>\w+)\"\].*'\)$")


def commands(example: Example) -> list[Command]:
    """The block's commands, continuation lines joined, each with the answer written under it."""
    logical: list[str] = []
    pending = ""
    for raw in example.body.splitlines():
        line = raw.rstrip()
        if pending:
            pending += " " + line.strip()
        elif line.strip():
            pending = line.strip()
        else:
            continue
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        logical.append(pending)
        pending = ""
    found: list[Command] = []
    for line in logical:
        if line.startswith("#"):
            if not found:
                raise ExampleError(f"{example.where}: an answer comes after its command: {line!r}")
            text = line[1:].strip()
            last = found[-1]
            last.answer = text if last.answer is None else f"{last.answer}\n{text}"
            continue
        m = _ASSIGN.match(line)
        if m:
            found.append(Command(m.group("curl"), assign=m.group("name"), key=m.group("key")))
        elif line.startswith("curl "):
            found.append(Command(line))
        else:
            raise ExampleError(f"{example.where}: only curl commands (or NAME=$(curl … | python3 -c …)): {line!r}")
    return found


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    data: str | None


def curl_request(line: str, where: str) -> Request:
    """The request a curl command line makes — the options the docs use, no others."""
    words = shlex.split(line)
    assert words[0] == "curl"
    method, url, headers, data = None, None, {}, None
    it = iter(words[1:])
    for word in it:
        if word in ("-s", "-S", "-sS"):
            continue
        if word == "-X":
            method = next(it)
        elif word == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip().lower()] = value.strip()
        elif word in ("-d", "--data", "--data-binary"):
            data = next(it)
        elif word.startswith("-"):
            raise ExampleError(f"{where}: the examples' curl knows -s, -X, -H, -d and --data-binary, not {word}")
        elif url is None:
            url = word
        else:
            raise ExampleError(f"{where}: two URLs in one curl command: {line!r}")
    if url is None:
        raise ExampleError(f"{where}: a curl command without a URL: {line!r}")
    if data is not None:
        headers.setdefault("content-type", "application/x-www-form-urlencoded")  # what curl sends with -d
    return Request(method or ("POST" if data is not None else "GET"), url, headers, data)


def expected_answer(answer: str, where: str) -> tuple[int, Any]:
    """`201 {"id": 1, …}` → (201, the body as the docs write it); a body may be left out."""
    status, _, body = answer.partition(" ")
    if not status.isdigit():
        raise ExampleError(f"{where}: an answer is `# <status> <body>`: {answer!r}")
    return int(status), (json_value(body, where) if body.strip() else None)


# -- ws examples: frames sent and arrays received --------------------------------------------------


def exchange(example: Example) -> list[tuple[str, Any]]:
    """("send", frame) and ("expect", [frames]) in the order the block writes them."""
    steps: list[tuple[str, str]] = []
    if example.lang == "json":
        values = json_values(example.body, example.where)
        return [("send" if isinstance(v, dict) else "expect", v) for v in values]
    for raw in example.body.splitlines():
        line = raw.strip()
        if line.startswith(("→", "←")):
            steps.append(("send" if line[0] == "→" else "expect", line[1:].strip()))
        elif line and steps:
            steps[-1] = (steps[-1][0], steps[-1][1] + "\n" + line)
        elif line:
            raise ExampleError(f"{example.where}: a ws exchange's lines start with → or ←: {line!r}")
    return [(direction, json_value(text, example.where)) for direction, text in steps]


def check_exchange(example: Example) -> None:
    """Sent frames are objects with a type and no `…`; received ones are arrays of objects."""
    for direction, value in exchange(example):
        if direction == "send":
            if not isinstance(value, dict) or not isinstance(value.get("type"), str) or _holds_ellipsis(value):
                raise ExampleError(f"{example.where}: a frame to send is an object with a type and no bare …: {value}")
        elif not isinstance(value, list) or not all(isinstance(f, dict) for f in value):
            raise ExampleError(f"{example.where}: what the server sends is an array of frames: {value}")


# -- running them ---------------------------------------------------------------------------------


class Socket:
    """One user's WebSocket for a section: every frame received, kept until an example claims it."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.inbox: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.refs: set[Any] = set()  # refs sent, not yet answered
        self.authenticated = False
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                for frame in json.loads(message):
                    self.inbox.append(frame)
                    self.refs.discard(frame.get("ref"))
                self.arrived.set()

    async def send(self, frame: dict[str, Any]) -> None:
        if "ref" in frame:
            self.refs.add(frame["ref"])
        await self.ws.send(json.dumps(frame, ensure_ascii=False))

    async def claim(self, expected: list[dict[str, Any]], where: str, bound: dict[str, Any]) -> None:
        """Wait until each expected frame matches a frame received (each frame claimed once)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            taken: set[int] = set()
            found: dict[str, Any] = {}
            missing = None
            for want in expected:
                j = next((j for j, frame in enumerate(self.inbox) if j not in taken and not match(want, frame)), None)
                if j is None:
                    missing = want
                    break
                taken.add(j)
                match(want, self.inbox[j], "", found)
            if missing is None:
                bound.update(found)
                self.inbox = [f for j, f in enumerate(self.inbox) if j not in taken]
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), deadline - loop.time())
            except TimeoutError:
                raise ExampleError(_unmatched(where, missing, self.inbox)) from None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(BaseException):
            await self.reader


def _unmatched(where: str, want: dict[str, Any], inbox: list[dict[str, Any]]) -> str:
    near = [f for f in inbox if f.get("type") == want.get("type") and f.get("ref") == want.get("ref")] or inbox
    lines = [f"{where}: the server sent nothing like {_short(want, 400)}"]
    for frame in near[:3]:
        lines += [f"  received {_short(frame, 400)}", *(f"    {p}" for p in match(want, frame))]
    if not inbox:
        lines.append("  (nothing received)")
    return "\n".join(lines)


@dataclass
class Demo:
    """A running demo server and what a section's examples built up on it."""

    port: int
    http: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)
    sockets: dict[str, Socket] = field(default_factory=dict)
    bound: dict[str, Any] = field(default_factory=dict)  # "twb_…" -> the token it stood for
    variables: dict[str, str] = field(default_factory=dict)  # TOKEN=$(…)

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            r = await self.http.post("/api/login", json={"username": username, "password": DEMO_PASSWORD})
            self.http.cookies.clear()
            if r.status_code != 200:
                raise ExampleError(f"the demo has no login {username!r} ({r.status_code} {r.text[:200]})")
            self.tokens[username] = r.json()["token"]
        return self.tokens[username]

    async def run(self, example: Example) -> None:
        if example.kind == "http":
            await self._run_http(example)
        else:
            await self._run_ws(example)

    async def finish(self) -> None:
        """Every request sent got its answer, and no answer was an error no example showed."""
        for user, socket in self.sockets.items():
            await socket.send({"type": "ping", "ref": "docs-examples-end"})
            await socket.claim([{"type": "pong", "ref": "docs-examples-end"}], f"{user}'s socket", {})
            for _ in range(int(WAIT / 0.05)):
                if not socket.refs:
                    break
                await asyncio.sleep(0.05)
            unanswered, errors = socket.refs, [f for f in socket.inbox if f.get("type") == "error"]
            if unanswered or errors:
                raise ExampleError(
                    f"{user}'s socket: requests without an answer {sorted(map(str, unanswered))}, "
                    f"or errors no example shows: {[_short(e) for e in errors]}"
                )

    async def close(self) -> None:
        for socket in self.sockets.values():
            await socket.close()

    # -- http --

    def _substitute(self, text: str) -> str:
        for placeholder, value in self.bound.items():
            text = text.replace(placeholder, str(value))
        for name, value in self.variables.items():
            text = text.replace(f"${{{name}}}", value).replace(f"${name}", value)
        return text.replace("localhost:8000", f"127.0.0.1:{self.port}")

    async def _run_http(self, example: Example) -> None:
        if example.user is not None:
            self.variables["TOKEN"] = await self.token(example.user)
        for command in commands(example):
            where = f"{example.where} ({command.line[:80]})"
            if "$" in self._substitute(command.line).replace("$(", ""):
                raise ExampleError(f"{where}: a variable the example never set")
            request = curl_request(self._substitute(command.line), where)
            url = request.url if "://" in request.url else f"http://{request.url}"
            r = await self.http.request(request.method, url, headers=request.headers,
                                        content=None if request.data is None else request.data.encode())
            self.http.cookies.clear()  # curl keeps no cookies
            if command.assign is not None:
                if r.status_code >= 300:
                    raise ExampleError(f"{where}: answered {r.status_code} {r.text[:300]}")
                self.variables[command.assign] = str(r.json()[command.key])
                continue
            if command.answer is None:
                if r.status_code >= 300:
                    raise ExampleError(f"{where}: answered {r.status_code} {r.text[:300]} (the docs show no answer)")
                continue
            status, body = expected_answer(command.answer, where)
            problems = [] if r.status_code == status else [f"status: expected {status}, got {r.status_code}"]
            if body is not None:
                try:
                    got = r.json()
                except ValueError:
                    got = r.text
                found: dict[str, Any] = {}
                problems += match(body, got, "", found)
                if not problems:
                    self.bound.update(found)
            if problems:
                raise ExampleError("\n".join([f"{where}:", *(f"  {p}" for p in problems), f"  received {r.text[:600]}"]))

    # -- ws --

    async def _socket(self, username: str) -> Socket:
        if username not in self.sockets:
            ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/ws", subprotocols=["twinhub.v1.json"],
                                          max_size=2**22)
            self.sockets[username] = Socket(ws)
        return self.sockets[username]

    async def _run_ws(self, example: Example) -> None:
        check_exchange(example)
        assert example.user is not None
        socket = await self._socket(example.user)
        token = await self.token(example.user)
        for direction, value in exchange(example):
            if direction == "expect":
                await socket.claim(value, example.where, self.bound)
                continue
            frame = dict(value)
            if frame["type"] == "hello":
                frame["token"] = token  # whatever the docs wrote there: the user's own
                socket.authenticated = True
            elif not socket.authenticated:  # the example starts after hello: say it first
                await socket.send({"type": "hello", "token": token, "ref": "docs-examples-hello"})
                await socket.claim([{"type": "welcome", "ref": "docs-examples-hello", ELLIPSIS: ELLIPSIS}],
                                   example.where, {})
                socket.authenticated = True
            await socket.send(frame)
