"""Django Channels with channels_redis' RedisChannelLayer under uvicorn: a group per channel.

The way the Channels tutorial builds a chat room: an AsyncWebsocketConsumer per socket; a
subscribe is `group_add(channel, self.channel_name)`; a post is one `group_send(channel, ...)`
carrying the event's text, encoded once; the layer pushes it through Redis to every member's
channel and each consumer's `room_event` sends it on its socket. Same wire shape as TwinHub
(loadtests/peers/shape.py), no authentication, no database, no Django ORM.

    loadtests/peers/.venv/bin/python -m loadtests.peers.channels_django --redis-url redis://127.0.0.1:6379/0

Two of the layer's settings are raised, each because past it a message is dropped without a
word: `capacity` (messages waiting per channel) from 100 to --capacity (default 2000), as the
load generator keeps up to 200 posts in flight; `expiry` from 60 s to 10 minutes, as draining a
window's backlog takes about 2 minutes here. Prints "django channels listening on
ws://HOST:PORT"; stops on SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from typing import Any

import django
from django.conf import settings

from .shape import SUBPROTOCOL, Channels, message, serve_uvicorn


def group(channel: str) -> str:
    """The group of a channel: Channels allows only ASCII letters, digits, "-", "_" and "." ("room:1" -> "room.1")."""
    return channel.replace(":", ".")


def application(redis_url: str, capacity: int) -> Any:
    """Configure Django (no project, no database) and return the ASGI application."""
    settings.configure(
        DEBUG=False, SECRET_KEY=secrets.token_hex(16), ALLOWED_HOSTS=["*"], INSTALLED_APPS=["channels"],
        DATABASES={}, USE_TZ=True, LOGGING_CONFIG=None,
        CHANNEL_LAYERS={"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                    "CONFIG": {"hosts": [redis_url], "capacity": capacity, "expiry": 600}}},
    )
    django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import URLRouter
    from django.urls import path

    channels = Channels()
    order = asyncio.Lock()

    class Room(AsyncWebsocketConsumer):
        groups: list[str] = []

        async def connect(self) -> None:
            self.joined: set[str] = set()
            await self.accept(subprotocol=SUBPROTOCOL)

        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            frame = json.loads(text_data or bytes_data or b"{}")
            if frame.get("type") == "post":
                # group_send awaits Redis: without the lock, two publishers' posts could reach
                # the group in another order than their seqs (the other peers send before any await).
                async with order:
                    answer = channels.answer(frame)
                    await self.channel_layer.group_send(
                        group(answer.channel or ""), {"type": "room.event", "text": message(answer.event or {})}
                    )
            else:
                answer = channels.answer(frame)
            if answer.join is not None:
                await self.channel_layer.group_add(group(answer.join), self.channel_name)
                self.joined.add(group(answer.join))
            await self.send(text_data=message(answer.reply))

        async def room_event(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

        async def disconnect(self, code: int) -> None:
            for name in self.joined:
                await self.channel_layer.group_discard(name, self.channel_name)

    return URLRouter([path("ws", Room.as_asgi())])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--capacity", type=int, default=2000)
    parser.add_argument("--no-ping", action="store_true", help="uvicorn sends no keepalive pings (ws_ping_interval=None)")
    args = parser.parse_args()
    serve_uvicorn(application(args.redis_url, args.capacity), "django channels", args.host, args.port,
                  ws_ping_interval=None if args.no_ping else 20.0)
