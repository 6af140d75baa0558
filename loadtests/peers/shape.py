"""The wire shape every Python peer speaks, as plain dicts: TwinHub's JSON frames, none of its work.

A client frame is one JSON object (`hello`, `subscribe`, `post`); every server message is a JSON
array of frames. `Channels.answer()` turns one client frame into what a peer must do: the answer
for the sender and, for a post, the event text to fan out — the event shaped like TwinHub's
`message.posted` (keys in TwinHub's order, no spaces, so the load generator's lean subscribers
read it as they read TwinHub's), encoded once. No authentication (any `hello` is welcome), no
rights, no persistence: a peer does only the fan-out, which is what it is compared on.

Standard library only: the peers import it from their own environment (loadtests/peers/.venv).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SUBPROTOCOL = "twinhub.v1.json"
AUTHOR = {"id": 1, "name": "Load publisher", "school": "Bench"}

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def message(frames: list[dict[str, Any]] | dict[str, Any]) -> str:
    """One server message: the frame(s) as a JSON array."""
    return "[" + dumps(frames) + "]" if isinstance(frames, dict) else dumps(frames)


@dataclass
class Answer:
    """What to do with one client frame: `reply` to the sender; for a post, first fan `event`
    out to `channel`'s subscribers (encoded once: `message(event)`; socket.io peers hand the
    dict to their library, which encodes its packet once); for a subscribe, add the sender to
    `join`."""

    reply: dict[str, Any]
    channel: str | None = None
    event: dict[str, Any] | None = None
    join: str | None = None


class Channels:
    """Each channel's head seq, and message ids: the state a peer keeps (in memory)."""

    def __init__(self) -> None:
        self.heads: dict[str, int] = {}
        self._ids = itertools.count(1)

    def answer(self, frame: dict[str, Any]) -> Answer:
        kind, ref = frame.get("type"), frame.get("ref")
        if kind == "post":
            channel = frame["channel"]
            seq = self.heads[channel] = self.heads.get(channel, 0) + 1
            message_id = next(self._ids)
            event = {
                "type": "event", "channel": channel, "seq": seq, "kind": "message.posted",
                "message": {
                    "id": message_id, "seq": seq, "author": AUTHOR, "text": frame["text"], "state": "visible",
                    "created_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "edited_at": None, "client_id": None,
                },
            }
            ok = {"type": "ok", "ref": ref, "channel": channel, "seq": seq, "id": message_id, "duplicate": False}
            return Answer(ok, channel=channel, event=event)
        if kind == "subscribe":
            channel = frame["channel"]
            ok = {"type": "ok", "ref": ref, "channel": channel, "head": self.heads.get(channel, 0), "replayed": 0}
            return Answer(ok, join=channel)
        if kind == "hello":
            return Answer({"type": "welcome", "ref": ref, "user": {"id": 0, "name": "anyone"}, "spaces": [], "limits": {}})
        return Answer({"type": "error", "ref": ref, "code": "unknown_type", "message": f"{kind!r} is not handled here"})


def serve_uvicorn(app: Any, name: str, host: str, port: int, **config: Any) -> None:
    """Run `app` under uvicorn (`config`: uvicorn.Config options, e.g. ws="websockets-sansio")
    on a socket bound here, so that port 0 gives a free port we can print: "NAME listening on
    ws://HOST:PORT" (the load generator waits for that line). Connections that come before
    uvicorn accepts wait in the listen backlog. Returns when uvicorn stops (SIGINT, SIGTERM)."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # 1,000 subscribers connect 100 at a time; the kernel caps it at somaxconn
    bound = sock.getsockname()
    print(f"{name} listening on ws://{bound[0]}:{bound[1]}", flush=True)
    options = {"lifespan": "off", "log_level": "warning", "access_log": False, "loop": "auto", "backlog": 2048,
               "ws_max_size": 2**20, "ws_per_message_deflate": False, **config}
    uvicorn.Server(uvicorn.Config(app, **options)).run(sockets=[sock])
