"""Bots: tokens teacher admins create for one project, to post journal entries over HTTP.

A bot token is not a session: no WebSocket `hello`, no other route accepts it; the one thing it
does is `POST /api/spaces/{id}/journal` for its own project (policy.decide_bot). The token is
shown once and stored as its SHA-256. An `Idempotency-Key` header makes a retry harmless; the
same key with a different entry is a `conflict`. Each bot has a rate limit of its own.
"""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from protocol import ErrorCode, ProtocolError, frame_from_map
from protocol.limits import Limits
from storage import bots as store
from storage.accounts import User
from storage.spaces import Room

from .auth import token_hash
from .chat import Chat, room_channel
from .directory import Directory, Viewer
from .errors import ServiceError
from .policy import Action, decide_bot
from .ratelimit import RateLimiter
from .wire import database

TOKEN_PREFIX = "twb_"  # tells a bot token from a session token at a glance (logs, leaked-secret scanners)


class Bots:
    def __init__(
        self, pool: asyncpg.Pool, chat: Chat, directory: Directory, limits: Limits, limiter: RateLimiter
    ) -> None:
        self._pool = pool
        self._chat = chat
        self._directory = directory
        self._limits = limits
        self._limiter = limiter

    async def create(self, viewer: Viewer, space_id: int, name: Any) -> dict[str, Any]:
        viewer.require(space_id, Action.MANAGE_SPACE)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            raise ServiceError(ErrorCode.INVALID_FIELD, "name must be 1 to 100 characters")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        bot = await database(store.create(
            self._pool, space_id=space_id, name=name.strip(), created_by=viewer.user.id, token_hash=token_hash(token)
        ))
        return {"id": bot.id, "space": space_id, "name": bot.name, "token": token}

    async def revoke(self, viewer: Viewer, space_id: int, bot_id: int) -> dict[str, Any]:
        viewer.require(space_id, Action.MANAGE_SPACE)
        revoked = await database(store.revoke(self._pool, space_id=space_id, bot_id=bot_id, actor_id=viewer.user.id))
        if not revoked:
            raise ServiceError(ErrorCode.NOT_FOUND, f"this project has no active bot {bot_id}")
        return {"id": bot_id, "revoked": True}

    async def post_entry(
        self, token: str | None, space_id: int, idempotency_key: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        bot = await database(store.by_token(self._pool, token_hash(token))) if token else None
        if bot is None:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "unknown or revoked bot token")
        refusal = decide_bot(bot.space_id, space_id)
        if refusal is not None:
            raise ServiceError(refusal.code, refusal.message)
        journal = await self._journal(space_id)
        try:
            frame = frame_from_map({
                "type": "post", "channel": room_channel(journal.id), "title": body.get("title"),
                "text": body.get("text"), "client_id": idempotency_key,
            }, self._limits)
        except ProtocolError as exc:
            raise ServiceError(exc.code, exc.message) from None
        if frame.title is None:  # type: ignore[union-attr]
            raise ServiceError(ErrorCode.INVALID_FIELD, "a journal entry needs a title")
        wait = self._limiter.take(bot.id)
        if wait:
            raise ServiceError(
                ErrorCode.RATE_LIMITED, f"this bot is posting too fast; try again in {wait:.1f} s",
                retry_after_ms=int(wait * 1000) + 1,
            )
        author = User(bot.user_id, "", bot.name, "bot", f"bot · {bot.created_by_name}" if bot.created_by_name else "bot")
        posted = await self._chat.store_and_publish(
            journal, author, frame.text, frame.client_id, frame.title  # type: ignore[union-attr]
        )
        message = posted.event.data["message"]
        if posted.duplicate and (message["title"], message["text"]) != (frame.title, frame.text):  # type: ignore[union-attr]
            raise ServiceError(ErrorCode.CONFLICT, "this Idempotency-Key was used for a different entry")
        return {
            "id": message["id"], "channel": posted.event.channel, "seq": posted.event.seq,
            "duplicate": posted.duplicate, "bot": {"id": bot.id, "name": bot.name, "created_by": bot.created_by},
        }

    async def _journal(self, space_id: int) -> Room:
        rooms = await database(self._directory.rooms_of([space_id]))
        for room in rooms:
            if room.kind == "journal":
                return room
        raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}")
