"""The Starlette application: HTTP routes, the /ws endpoint, and the lifespan that builds
(and tears down, in reverse) everything the server runs on.

    lifespan: PostgreSQL (configured URL, or the embedded one) → pools → migrations
              → group-commit writers → bus → hub, directory, services, group readers

Two pools: the group-commit writers have their own (one connection each: a writer commits one
batch at a time), so that an acknowledgement never waits for a connection behind a storm of
reads; everything else shares the main one (`db_pool_size`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette

from storage.db import create_pool
from storage.embedded import DATABASE, EmbeddedPostgres, ensure_database
from storage.mail import send_many
from storage.messages import post_many
from storage.migrate import migrate
from storage.writer import GroupCommitWriter

from ..config import Settings
from ..fanout.bus import Bus, LocalBus
from ..fanout.directory import Directory
from ..fanout.hub import Hub
from ..fanout.presence import PresenceTracker
from ..fanout.redis_bus import RedisBus
from ..fanout.redis_client import detect as redis_is_cluster
from ..fanout.shared_limits import SharedLimits
from ..ratelimit import Limiter, RateLimiter
from ..services.auth import Auth, LoginThrottle
from ..services.bots import Bots
from ..services.chat import Chat
from ..services.feed import Feed
from ..services.invitations import Invitations
from ..services.mail import Mail
from ..services.moderation import Moderation
from ..services.projects import Projects
from ..services.public import PublicView
from ..services.pupils import Pupils
from ..ws.endpoint import WebSocketEndpoint
from ..ws.session import Readers, Services
from . import api
from .public_stream import PublicStreams

log = logging.getLogger("twinhub")


class TwinHub:
    """The ASGI app: /ws goes straight to the WebSocket endpoint — no middleware stack to build
    and keep per socket (a few KB each, thousands of sockets) — and everything else, lifespan
    included, to the Starlette app."""

    def __init__(self, starlette: Starlette) -> None:
        self.starlette = starlette

    @property
    def state(self) -> Any:
        return self.starlette.state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            await self.starlette.state.ws_endpoint(scope, receive, send)
        elif scope["type"] == "http":
            await self.starlette(scope, receive, _with_security_headers(send))
        else:
            await self.starlette(scope, receive, send)


# On every HTTP answer. The page runs only its own scripts and styles (no inline script: a
# message that smuggled markup in could not run it), talks only to this server, and is framed
# by nobody.
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
     b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def _with_security_headers(send: Any) -> Any:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return sending


async def database_url(settings: Settings, stack: contextlib.AsyncExitStack) -> str:
    """The configured URL, or start the embedded PostgreSQL in data_dir/pgdata and return its URL."""
    if settings.database_url:
        return settings.database_url
    embedded = EmbeddedPostgres(settings.data_dir / "pgdata")
    admin_url = await asyncio.to_thread(embedded.start)
    stack.callback(embedded.stop)
    await ensure_database(admin_url, DATABASE)
    log.info("using the embedded PostgreSQL in %s", embedded.data_dir)
    return embedded.url(DATABASE)


def _local_limiter(name: str, rate: float, burst: int) -> Limiter:
    return RateLimiter(rate, burst)


def create_app(settings: Settings) -> TwinHub:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            url = await database_url(settings, stack)
            pool = await create_pool(url, max_size=settings.db_pool_size, statement_timeout=settings.statement_timeout)
            stack.push_async_callback(pool.close)
            async with pool.acquire() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            # The writers' own connections (one each): commits never queue behind reads.
            writers_pool = await create_pool(url, min_size=2, max_size=2, statement_timeout=settings.statement_timeout)
            stack.push_async_callback(writers_pool.close)

            batch = 500 if settings.group_commit else 1
            writer = GroupCommitWriter(writers_pool, post_many, name="post", max_batch=batch)
            writer.start()
            stack.push_async_callback(writer.close)
            mail_writer = GroupCommitWriter(writers_pool, send_many, name="mail", atomic=True, max_batch=batch)
            mail_writer.start()
            stack.push_async_callback(mail_writer.close)
            hub = Hub()
            directory = Directory(pool)
            directory.start()
            stack.push_async_callback(directory.close)

            async def resync() -> None:  # the bus lost messages: events and control messages alike
                directory.forget_idle()
                await hub.catch_up()

            # Members' limits: counted in Redis when there are several processes, else here.
            limiter: Callable[[str, float, int], Limiter] = _local_limiter
            shared_limits: SharedLimits | None = None
            bus: Bus
            if settings.redis_url:
                cluster = await redis_is_cluster(settings.redis_url)  # any node's address will do
                shared_limits = SharedLimits(settings.redis_url, prefix=settings.redis_prefix, cluster=cluster)
                shared_limits.start()
                stack.push_async_callback(shared_limits.close)
                limiter = shared_limits.limiter
                bus = RedisBus(
                    settings.redis_url, prefix=settings.redis_prefix, sharded=settings.redis_sharded,
                    cluster=cluster, on_resync=resync,
                )
            else:
                bus = LocalBus()
            await bus.start()
            stack.push_async_callback(bus.close)

            chat = Chat(
                pool, writer, bus, directory, limiter("post", settings.post_rate, settings.post_burst),
                max_replay=settings.max_replay,
            )
            mail = Mail(
                pool, mail_writer, bus, directory, settings.limits,
                teacher_limiter=limiter("mail", settings.mail_rate, settings.mail_burst),
                pupil_limiter=limiter("pupil_mail", settings.pupil_mail_rate, settings.pupil_mail_burst),
                max_replay=settings.max_replay,
            )
            shared = isinstance(bus, RedisBus)  # other processes to tell about presence and typing
            presence = PresenceTracker(
                hub, share=bus.share if shared else None, origin=bus.origin if isinstance(bus, RedisBus) else b"",
            )
            bus.attach_ephemeral(presence.on_remote)
            presence.start()
            stack.callback(presence.close)
            bus.attach(hub.publish, directory.on_control)
            hub.register_backfill("room", chat.backfill)
            hub.register_backfill("mail", mail.backfill)
            feed = Feed(pool, bus, max_replay=settings.max_replay)
            hub.register_backfill("feed", feed.backfill)
            # Reports are rare: ten at once, then one every ten seconds (a flood is itself a signal).
            moderation = Moderation(pool, bus, chat, limiter("report", 0.1, 10), max_replay=settings.max_replay)
            hub.register_backfill("moderation", moderation.backfill)
            projects = Projects(pool, bus, directory, feed)

            readers = Readers(pool, chat, directory)
            readers.start()
            stack.push_async_callback(readers.close)
            services = Services(
                auth=Auth(
                    pool, session_ttl=timedelta(hours=settings.session_hours), login_backoff=settings.login_backoff,
                    throttle=shared_limits.login_throttle if shared_limits is not None else LoginThrottle,
                ),
                directory=directory, hub=hub, chat=chat, mail=mail, feed=feed, moderation=moderation, projects=projects,
                presence=presence, limits=settings.limits, typing_limiter=RateLimiter(0.5, 1), readers=readers,
            )
            app.state.settings = settings
            app.state.pool = pool
            app.state.writer = writer
            app.state.mail_writer = mail_writer
            app.state.bus = bus
            app.state.services = services
            app.state.projects = projects
            app.state.moderation = moderation
            app.state.pupils = Pupils(pool, bus, directory, feed)
            app.state.invitations = Invitations(pool, projects, feed)
            app.state.public = PublicView(
                pool, directory, app.state.projects, PublicStreams(hub, chat, directory, pool)
            )
            app.state.bots = Bots(pool, chat, directory, settings.limits, limiter("bot", 1.0, 10), bus)
            app.state.ws_endpoint = WebSocketEndpoint(services, settings)
            app.state.database_url = url
            seed = getattr(app.state, "seed", None)
            if seed is not None:
                await seed(pool)
            # What start-up built lives as long as the process: keep it out of every future
            # garbage collection (fewer objects to scan in each full collection).
            gc.freeze()
            yield

    return TwinHub(Starlette(routes=api.routes, lifespan=lifespan))
