"""The baseline: a minimal broadcast server on the `websockets` library.

Same wire shape as TwinHub (subprotocol `twinhub.v1.json`; a client frame is one JSON object,
every server message a JSON array of frames) and none of its work: no authentication (any
`hello` is welcome), no rights, no persistence. A post takes its channel's next seq; its event,
shaped like TwinHub's `message.posted`, is encoded once and handed to `websockets.broadcast()`
for every subscriber of the channel — one WebSocket message per event per subscriber — then
the poster gets its `ok`.

    python -m loadtests.peers.websockets_broadcast [--host 127.0.0.1] [--port 0] [--deflate]

--deflate accepts permessage-deflate when a client offers it (off by default, as in TwinHub).

Prints "websockets baseline listening on ws://HOST:PORT"; stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "twinhub.v1.json"
AUTHOR = {"id": 1, "name": "Load publisher", "school": "Bench"}

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Broadcaster:
    """Channels and their subscribers; one handler call per connection."""

    def __init__(self) -> None:
        self.subscribers: dict[str, set[ServerConnection]] = {}
        self.heads: dict[str, int] = {}
        self._ids = itertools.count(1)

    async def handler(self, ws: ServerConnection) -> None:
        joined: set[str] = set()
        try:
            async for data in ws:
                frame = json.loads(data)
                answer = self.answer(ws, frame, joined)
                if answer is not None:
                    await ws.send("[" + _dumps(answer) + "]")
        except ConnectionClosed:
            pass
        finally:
            for channel in joined:
                self.subscribers[channel].discard(ws)

    def answer(self, ws: ServerConnection, frame: dict[str, Any], joined: set[str]) -> dict[str, Any] | None:
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
            broadcast(self.subscribers.get(channel, ()), "[" + _dumps(event) + "]")
            return {"type": "ok", "ref": ref, "channel": channel, "seq": seq, "id": message_id, "duplicate": False}
        if kind == "subscribe":
            channel = frame["channel"]
            self.subscribers.setdefault(channel, set()).add(ws)
            joined.add(channel)
            return {"type": "ok", "ref": ref, "channel": channel, "head": self.heads.get(channel, 0), "replayed": 0}
        if kind == "hello":
            return {"type": "welcome", "ref": ref, "user": {"id": 0, "name": "anyone"}, "spaces": [], "limits": {}}
        return {"type": "error", "ref": ref, "code": "unknown_type", "message": f"{kind!r} is not handled here"}


async def main(host: str, port: int, deflate: bool) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    app = Broadcaster()
    async with serve(
        app.handler, host, port, subprotocols=[SUBPROTOCOL], compression="deflate" if deflate else None, max_size=2**20,
        ping_interval=20, ping_timeout=20, backlog=2048,
    ) as server:
        bound = next(iter(server.sockets)).getsockname()
        print(f"websockets baseline listening on ws://{bound[0]}:{bound[1]}", flush=True)
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--deflate", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.deflate))
