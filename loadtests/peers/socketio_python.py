"""python-socketio (ASGI, its default in-memory manager) under uvicorn: a room per channel.

Speaks socket.io, not TwinHub's subprotocol: every frame travels as the argument of a socket.io
event named "m" — the client emits `["m", {frame}]`, the server emits `["m", [frames]]`, the same
JSON array a TwinHub message holds (loadtests/sio_client.py unwraps it). A post is fanned out with
one `emit("m", [event], room=channel)`: the manager encodes the packet once and queues it to
each participant's Engine.IO socket. No authentication, no persistence (loadtests/peers/shape.py).

    loadtests/peers/.venv/bin/python -m loadtests.peers.socketio_python [--port 0]

Clients connect to /socket.io/?EIO=4&transport=websocket (WebSocket only, no long-polling).
Prints "python-socketio listening on ws://HOST:PORT"; stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
from typing import Any

import socketio

from .shape import Channels, serve_uvicorn

channels = Channels()
sio = socketio.AsyncServer(
    async_mode="asgi", transports=["websocket"], cors_allowed_origins=None, max_http_buffer_size=2**20,
    ping_interval=20, ping_timeout=20,
)
app = socketio.ASGIApp(sio)


@sio.on("m")
async def on_frame(sid: str, frame: dict[str, Any]) -> None:
    answer = channels.answer(frame)
    if answer.event is not None:
        await sio.emit("m", [answer.event], room=answer.channel)
    if answer.join is not None:
        await sio.enter_room(sid, answer.join)
    await sio.emit("m", [answer.reply], to=sid)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    serve_uvicorn(app, "python-socketio", args.host, args.port)
