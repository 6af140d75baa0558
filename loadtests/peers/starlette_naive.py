"""Starlette under uvicorn, the naive way: one `await send_text()` per subscriber, in turn.

The pattern of countless chat tutorials (a dict of sockets per room, a loop of sends in the
poster's handler), written correctly but without any of TwinHub's work: same wire shape
(loadtests/peers/shape.py), no authentication, no persistence, no batching. The event is encoded
once; each subscriber gets it as its own WebSocket message.

    loadtests/peers/.venv/bin/python -m loadtests.peers.starlette_naive --ws websockets-sansio [--port 0]

--ws picks uvicorn's WebSocket protocol: `websockets` (the legacy implementation on the
websockets library's legacy API) or `websockets-sansio` (on its sans-I/O core). Prints
"starlette (uvicorn --ws X) listening on ws://HOST:PORT"; stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import json

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .shape import SUBPROTOCOL, Channels, message, serve_uvicorn

channels = Channels()
subscribers: dict[str, set[WebSocket]] = {}


async def endpoint(ws: WebSocket) -> None:
    await ws.accept(subprotocol=SUBPROTOCOL)
    joined: set[str] = set()
    try:
        while True:
            answer = channels.answer(json.loads(await ws.receive_text()))
            if answer.event is not None:
                text = message(answer.event)  # encoded once, sent to each
                for other in list(subscribers.get(answer.channel or "", ())):
                    try:
                        await other.send_text(text)
                    except (WebSocketDisconnect, RuntimeError, OSError):  # it left meanwhile
                        subscribers[answer.channel or ""].discard(other)
            if answer.join is not None:
                subscribers.setdefault(answer.join, set()).add(ws)
                joined.add(answer.join)
            await ws.send_text(message(answer.reply))
    except WebSocketDisconnect:
        pass
    finally:
        for channel in joined:
            subscribers[channel].discard(ws)


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ws", choices=["websockets", "websockets-sansio"], default="websockets-sansio")
    args = parser.parse_args()
    serve_uvicorn(app, f"starlette (uvicorn --ws {args.ws})", args.host, args.port, ws=args.ws)
