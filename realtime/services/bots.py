"""Bots: tokens teacher admins create for one project, to post journal entries (or, a service's,
activity records) over HTTP.

A bot token is not a session: no WebSocket `hello`, no other route accepts it; the one thing it
does is `POST /api/spaces/{id}/journal` (or `/activity`) for its own project while that project
is open (policy.decide_bot). The token is shown once and stored as its SHA-256. An
`Idempotency-Key` header makes a retry harmless; the same key with a different entry is a
`conflict`. Each bot has a rate limit of its own. A bot answers to the teacher admin who made it:
when they leave the project or stop being a teacher admin there, the database revokes it
(storage/bots.py). An activity record names an adult member at most, never a pupil
(policy.decide_bot_actor).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg

from protocol import ErrorCode, ProtocolError, frame_from_map
from protocol.limits import Limits
from protocol.timestamps import iso
from storage import NotTeacherAdmin, activity, spaces
from storage import bots as store
from storage.accounts import User
from storage.activity import NewActivity
from storage.spaces import Room

from ..errors import Refused, ServiceError, database, rate_limited
from ..fanout.bus import Bus
from ..fanout.directory import Directory, Viewer
from ..policy import BOT_SCOPES, MAX_BOT_ACTORS, Action, Area, Role, decide_bot, decide_bot_actor
from ..ratelimit import Limiter
from .auth import token_hash
from .chat import Chat, room_channel
from .feed import to_event as feed_event

EXTERNAL_KIND = re.compile(rf"^({'|'.join(activity.EXTERNAL_SERVICES)})\.[a-z_]{{1,30}}$")
LINK = re.compile(r"^https?://[^\s]+$")
_AREAS = frozenset(a.value for a in Area)
TOKEN_PREFIX = "twb_"  # tells a bot token from a session token at a glance (logs, leaked-secret scanners)


class Bots:
    def __init__(
        self, pool: asyncpg.Pool, chat: Chat, directory: Directory, limits: Limits, limiter: Limiter, bus: Bus
    ) -> None:
        self._bus = bus
        self._pool = pool
        self._chat = chat
        self._directory = directory
        self._limits = limits
        self._limiter = limiter

    async def create(
        self, viewer: Viewer, space_id: int, name: Any, scope: Any = "journal", actors: Any = None
    ) -> dict[str, Any]:
        """A new bot of the project, made by the viewer (a teacher admin); its token is in the
        answer and nowhere else. `actors` (activity tokens only): the members its records may
        name, each an adult member now (checked again at each use)."""
        viewer.require(space_id, Action.MANAGE_SPACE)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 100:
            raise ServiceError(ErrorCode.INVALID_FIELD, "name must be 1 to 100 characters")
        if scope not in BOT_SCOPES:
            raise ServiceError(ErrorCode.INVALID_FIELD, f"scope must be one of {', '.join(BOT_SCOPES)}")
        chosen = await self._actors(space_id, scope, actors)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            bot = await database(store.create(
                self._pool, space_id=space_id, name=name.strip(), created_by=viewer.user.id,
                token_hash=token_hash(token), scope=scope, actors=chosen,
            ))
        except NotTeacherAdmin:  # removed or demoted while this was on its way (the schema refuses it)
            raise ServiceError(ErrorCode.FORBIDDEN, "only the project's teacher administrators may do this") from None
        return {"id": bot.id, "space": space_id, "name": bot.name, "scope": bot.scope,
                "actors": None if chosen is None else list(chosen), "token": token}

    async def _actors(self, space_id: int, scope: str, actors: Any) -> tuple[int, ...] | None:
        """The members an activity token is made for, without repeats (None: any adult member).
        The teacher admin making it sees the member list: the refusal may name the id."""
        if actors is None:
            return None
        if scope != "activity":
            raise ServiceError(ErrorCode.INVALID_FIELD, "only an activity token is made for some actors")
        if (not isinstance(actors, list) or not 1 <= len(actors) <= MAX_BOT_ACTORS
                or any(isinstance(a, bool) or not isinstance(a, int) for a in actors)):
            raise ServiceError(ErrorCode.INVALID_FIELD, f"actors must be a list of 1 to {MAX_BOT_ACTORS} member ids")
        roster = await database(self._directory.roster(space_id))
        for actor in actors:
            member = roster.get(actor)
            refusal = decide_bot_actor(member.role if member else None, actor, None)
            if refusal is not None:
                raise ServiceError(refusal.code, f"actors: {actor} is not a member an activity token may name "
                                   "(a teacher or a visitor of this project)")
        return tuple(dict.fromkeys(actors))

    async def of_space(self, viewer: Viewer, space_id: int) -> dict[str, Any]:
        """Every bot of the project, revoked ones included, for its teacher admins: who made it,
        its scope, when it was last used (to the minute) and why it was revoked. Never a token."""
        viewer.require(space_id, Action.MANAGE_SPACE)
        found = await database(store.of_space(self._pool, space_id))
        return {"space": space_id, "bots": [
            {
                "id": b.id, "name": b.name, "scope": b.scope,
                "created_by": None if b.created_by is None else {"id": b.created_by, "name": b.created_by_name},
                "actors": None if b.actors is None else list(b.actors),
                "created_at": iso(b.created_at), "last_used_at": iso(b.last_used_at),
                "revoked_at": iso(b.revoked_at), "revoked_reason": b.revoked_reason,
            }
            for b in found
        ]}

    async def revoke(self, viewer: Viewer, space_id: int, bot_id: int) -> dict[str, Any]:
        viewer.require(space_id, Action.MANAGE_SPACE)
        revoked = await database(store.revoke(self._pool, space_id=space_id, bot_id=bot_id, actor_id=viewer.user.id))
        if not revoked:
            raise ServiceError(ErrorCode.NOT_FOUND, f"this project has no active bot {bot_id}")
        return {"id": bot_id, "revoked": True}

    async def post_entry(
        self, token: str | None, space_id: int, idempotency_key: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        bot = await self._bot(token, space_id, "journal")
        journal = await self._journal(space_id)
        try:
            frame = frame_from_map({
                "type": "post", "channel": room_channel(journal.id), "title": body.get("title"),
                "text": body.get("text"), "links": body.get("links"), "client_id": idempotency_key,
            }, self._limits)
        except ProtocolError as exc:
            raise ServiceError(exc.code, exc.message) from None
        if frame.title is None:  # type: ignore[union-attr]
            raise ServiceError(ErrorCode.INVALID_FIELD, "a journal entry needs a title")
        rate_limited(await self._limiter.acquire(bot.id), "this bot is posting")
        await self._used(bot)
        author = User(bot.user_id, "", bot.name, "bot", f"bot · {bot.created_by_name}" if bot.created_by_name else "bot")
        posted = await self._chat.store_and_publish(
            journal, author, "bot", frame.text, frame.client_id, frame.title, None, frame.links  # type: ignore[union-attr]
        )
        message = posted.event.data["message"]
        asked = (frame.title, frame.text, list(frame.links or ()))  # type: ignore[union-attr]
        if posted.duplicate and (message["title"], message["text"], message["links"]) != asked:
            raise ServiceError(ErrorCode.CONFLICT, "this Idempotency-Key was used for a different entry")
        return {
            "id": message["id"], "channel": posted.event.channel, "seq": posted.event.seq,
            "duplicate": posted.duplicate, "bot": {"id": bot.id, "name": bot.name, "created_by": bot.created_by},
        }

    async def post_activity(
        self, token: str | None, space_id: int, idempotency_key: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        """A service records an action done elsewhere in the TwinSpace (a page, a document, the
        calendar, a forum), so that the feed covers the whole space."""
        bot = await self._bot(token, space_id, "activity")
        kind, area, title, link, actor = (body.get(k) for k in ("kind", "area", "title", "link", "actor_id"))
        if not isinstance(kind, str) or not EXTERNAL_KIND.match(kind):
            raise ServiceError(
                ErrorCode.INVALID_FIELD, "kind must look like 'document.added' (page, document, calendar, forum, "
                "blog, wiki or gallery, a dot, then a word)",
            )
        if area not in _AREAS:
            raise ServiceError(ErrorCode.INVALID_FIELD, "area must be one of home, activities, teachers_room, "
                               "pupils_corner, chat: it decides who sees the record")
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
            raise ServiceError(ErrorCode.INVALID_FIELD, "title must be 1 to 200 characters")
        if link is not None and (not isinstance(link, str) or len(link) > 500 or not LINK.match(link)):
            raise ServiceError(ErrorCode.INVALID_FIELD, "link must be an http(s) URL of at most 500 characters")
        if actor is not None:
            if isinstance(actor, bool) or not isinstance(actor, int):
                raise ServiceError(ErrorCode.INVALID_FIELD, "actor_id must be a member's id (an integer)")
            await self._may_name(bot, actor)
        if idempotency_key is not None and not 1 <= len(idempotency_key) <= 64:
            raise ServiceError(ErrorCode.INVALID_FIELD, "Idempotency-Key must be 1 to 64 characters")
        rate_limited(await self._limiter.acquire(bot.id), "this service is posting")
        await self._used(bot)
        details = {"title": title.strip(), "link": link, "by": bot.name}
        new = NewActivity(space_id, kind, area, actor, details=details, idempotency_key=idempotency_key)
        record, duplicate = await database(activity.record_once(self._pool, new))
        if duplicate and (record.kind, record.area, record.details, (record.actor or {}).get("id")) != (
                kind, area, details, actor
            ):
                raise ServiceError(ErrorCode.CONFLICT, "this Idempotency-Key was used for a different record")
        if not duplicate:
            await self._bus.publish(feed_event(record))
        return {"seq": record.seq, "channel": f"feed:{space_id}", "duplicate": duplicate}

    async def _bot(self, token: str | None, space_id: int, scope: str) -> store.Bot:
        bot = await database(store.by_token(self._pool, token_hash(token))) if token else None
        if bot is None:
            raise ServiceError(ErrorCode.UNAUTHENTICATED, "unknown or revoked bot token")
        refusal = decide_bot(bot.space_id, bot.scope, space_id, scope, closed=bot.space_closed)
        if refusal is not None:
            raise ServiceError(refusal.code, refusal.message)
        return bot

    async def _may_name(self, bot: store.Bot, actor: int) -> None:
        """Refuse an actor the token may not name. The role is read from the database, not the
        directory: a membership changed by the CLI, which tells no running process, counts at once.
        Every refusal reads the same, whoever the id is (or is not)."""
        role = await database(spaces.role_in(self._pool, bot.space_id, actor)) if 0 < actor < 2**63 else None
        refusal = decide_bot_actor(None if role is None else Role(role), actor, bot.actors)
        if refusal is not None:
            raise Refused(refusal)

    async def _used(self, bot: store.Bot) -> None:
        """Note the token's use once it is accepted (authentic, in its project and scope, a valid
        request within its rate), before anything is stored: if the database cannot note it,
        nothing is stored either. At most once a minute per bot (store.USE_RESOLUTION): the
        common case of a busy bot costs no write."""
        if bot.last_used_at is None or datetime.now(UTC) - bot.last_used_at >= store.USE_RESOLUTION:
            await database(store.mark_used(self._pool, bot.id), undone="nothing was posted")

    async def _journal(self, space_id: int) -> Room:
        rooms = await database(self._directory.rooms_of([space_id]))
        for room in rooms:
            if room.kind == "journal":
                return room
        raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id}")
