"""The composition root: builds everything one server process runs on — and tears it down, in
reverse — then hands the parts to the edges as arguments. Imported only by run/ (the server, the
CLI); nothing else builds a service (tests/test_layers.py holds it).

    PostgreSQL (configured URL, or the embedded one) → pools → migrations
      → group-commit writers → directory → bus (in-process or Redis) → control messages
      → hub, presence → services → channel streams (backfills) → the web routes and /ws

Two pools: the group-commit writers have their own (one connection each: a writer commits one
batch at a time), so that an acknowledgement never waits for a connection behind a storm of
reads; everything else shares the main one (`db_pool_size`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg

from storage.blobs import open_blobs
from storage.db import create_pool, ping
from storage.embedded import database_url
from storage.mail import send_many
from storage.messages import post_many
from storage.migrate import migrate
from storage.notify import Listener
from storage.writer import GroupCommitWriter

from ..channels import FEED, MAIL, MODERATION, ROOM
from ..config import Settings
from ..fanout.bus import Bus, LocalBus
from ..fanout.control import Changes
from ..fanout.directory import Directory
from ..fanout.hub import Hub
from ..fanout.presence import PresenceTracker
from ..fanout.redis_bus import RedisBus
from ..fanout.redis_client import detect as redis_is_cluster
from ..fanout.shared_limits import SharedLimits
from ..ratelimit import Limiter, LoginThrottle, RateLimiter
from ..services.account import EXPORT_REFILL, EXPORTS_IN_A_ROW, Accounts
from ..services.audit import AuditLog
from ..services.auth import Auth
from ..services.bots import Bots
from ..services.bundle import Services
from ..services.chat import Chat, announce_room
from ..services.feed import Feed
from ..services.files import UPLOAD_REFILL, UPLOADS_IN_A_ROW, Files
from ..services.invitations import INVITE_REFILL, INVITES_PER_MEMBER, INVITES_PER_PROJECT, Invitations
from ..services.languages import Languages
from ..services.mail import Mail
from ..services.moderation import Moderation
from ..services.platform import Platform
from ..services.profiles import PROFILE_REFILL, PROFILE_WRITES_IN_A_ROW, Profiles
from ..services.projects import (
    ROOM_CHANGE_REFILL,
    ROOM_CHANGES_PER_MEMBER,
    ROOM_REFILL,
    ROOMS_PER_MEMBER,
    Projects,
)
from ..services.public import PublicView
from ..services.pupils import Pupils
from ..services.streams import Readers, Streams
from ..web.app import TwinHub
from ..web.http import Web
from ..web.metrics import ConnectionCounts, Sources
from ..web.public_stream import PublicStreams
from ..ws.endpoint import WebSocketEndpoint

log = logging.getLogger("twinhub")

Seed = Callable[[asyncpg.Pool], Awaitable[None]]


@dataclass(slots=True)
class Assembly:
    """What a running server is made of (tests and diagnostics reach it as `app.state`)."""

    settings: Settings
    pool: asyncpg.Pool
    writer: GroupCommitWriter[Any, Any]
    mail_writer: GroupCommitWriter[Any, Any]
    bus: Bus
    services: Services
    ws_endpoint: WebSocketEndpoint
    web: Web

    @property
    def projects(self) -> Projects:
        return self.services.projects

    @property
    def moderation(self) -> Moderation:
        return self.services.moderation

    @property
    def changes(self) -> Changes:
        return self.services.changes


def _local_limiter(name: str, rate: float, burst: int) -> Limiter:
    return RateLimiter(rate, burst)


@contextlib.asynccontextmanager
async def assemble(
    settings: Settings, *, seed: Seed | None = None, guard: ConnectionCounts | None = None
) -> AsyncIterator[Assembly]:
    """Build a server's parts; they live until the context exits. `seed(pool)` runs once the
    database is ready (the demo project); `guard` is the connection guard whose counts /metrics shows.
    Raises ValueError before building anything if the settings cannot run a server (Settings.check)."""
    settings.check()
    async with contextlib.AsyncExitStack() as stack:
        url = await database_url(settings.database_url, settings.data_dir, stack)
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
            await directory.resync()
            await hub.catch_up()

        # Members' limits: counted in Redis when there are several processes, else here.
        limiter: Callable[[str, float, int], Limiter] = _local_limiter
        shared_limits: SharedLimits | None = None
        bus: Bus
        presence: PresenceTracker
        if settings.redis_url:
            cluster = await redis_is_cluster(settings.redis_url)  # any node's address will do
            shared_limits = SharedLimits(settings.redis_url, prefix=settings.redis_prefix, cluster=cluster)
            shared_limits.start()
            stack.push_async_callback(shared_limits.close)
            limiter = shared_limits.limiter
            redis_bus = RedisBus(
                settings.redis_url, secret=settings.bus_secret, prefix=settings.redis_prefix,
                sharded=settings.redis_sharded, cluster=cluster, on_resync=resync,
            )
            # Other processes to tell about presence and typing.
            presence = PresenceTracker(hub, share=redis_bus.share, origin=redis_bus.origin)
            bus = redis_bus
        else:
            bus = LocalBus()
            presence = PresenceTracker(hub, share=None, origin=b"")
        await bus.start()
        stack.push_async_callback(bus.close)
        bus.attach_ephemeral(presence.on_remote)
        presence.start()
        stack.callback(presence.close)
        bus.attach(hub.publish, directory.on_control)
        changes = Changes(directory, bus)
        # What `twinhub admin` changes reaches every process through PostgreSQL (storage/notify.py).
        listener = Listener(url, changes.heard, on_reconnect=directory.resync)
        await listener.start()
        stack.push_async_callback(listener.close)

        # Files' bytes: the data folder's files/, or S3-compatible storage (settings.files_url).
        blobs = open_blobs(settings.files_url, settings.data_dir)
        stack.push_async_callback(blobs.close)

        readers = Readers(pool, directory)
        readers.start()
        stack.push_async_callback(readers.close)
        # One budget per member for what reaches others' screens or their own sockets: posts, edits,
        # and filing mail (marking, moving, deleting).
        post_limiter = limiter("post", settings.post_rate, settings.post_burst)
        chat = Chat(pool, writer, bus, directory, post_limiter, readers.replays, max_replay=settings.max_replay)
        mail = Mail(
            pool, mail_writer, bus, directory, settings.limits,
            teacher_limiter=limiter("mail", settings.mail_rate, settings.mail_burst),
            pupil_limiter=limiter("pupil_mail", settings.pupil_mail_rate, settings.pupil_mail_burst),
            filing_limiter=post_limiter, max_replay=settings.max_replay,
        )
        feed = Feed(pool, bus, max_replay=settings.max_replay)
        # Reports are rare: ten at once, then one every ten seconds (a flood is itself a signal).
        moderation = Moderation(pool, bus, chat, limiter("report", 0.1, 10), max_replay=settings.max_replay)
        streams = Streams({ROOM: chat, MAIL: mail, FEED: feed, MODERATION: moderation})
        for kind, stream in streams:
            hub.register_backfill(kind.name, stream.backfill)
        public_streams = PublicStreams(hub, chat, directory, pool)
        directory.listen_projects(public_streams.space_changed, public_streams.members_changed)
        directory.listen_rooms(functools.partial(announce_room, hub))
        throttle = shared_limits.login_throttle if shared_limits is not None else LoginThrottle
        auth = Auth(
            pool, changes, session_ttl=timedelta(hours=settings.session_hours), login_backoff=settings.login_backoff,
            throttle=throttle,
        )
        services = Services(
            auth=auth,
            directory=directory, hub=hub, changes=changes, chat=chat, mail=mail, feed=feed, moderation=moderation,
            projects=Projects(
                pool, changes, directory, feed, room_limiter=limiter("room", ROOM_REFILL, ROOMS_PER_MEMBER),
                room_change_limiter=limiter("room_change", ROOM_CHANGE_REFILL, ROOM_CHANGES_PER_MEMBER),
            ),
            platform=Platform(pool, changes, feed),
            pupils=Pupils(pool, changes, feed, directory, lift_lock=auth.unlock),
            invitations=Invitations(
                pool, changes, feed,
                by_member=limiter("invite", INVITE_REFILL, INVITES_PER_MEMBER),
                by_project=limiter("invite_project", INVITE_REFILL, INVITES_PER_PROJECT),
                # Wrong codes per address, as logins: 20 in 15 minutes, then 15 minutes' wait.
                codes=throttle(name="code", limit=20, window=900, lockout=900), hashing=auth.hashing,
                directory=directory,
            ),
            public=PublicView(pool, directory, changes),
            languages=Languages(pool, changes),
            bots=Bots(pool, chat, directory, settings.limits, limiter("bot", 1.0, 10), bus),
            audit=AuditLog(pool),
            accounts=Accounts(pool, changes, auth, feed, blobs,
                              export_limiter=limiter("export", EXPORT_REFILL, EXPORTS_IN_A_ROW)),
            profiles=Profiles(pool, directory, limiter("profile", PROFILE_REFILL, PROFILE_WRITES_IN_A_ROW)),
            files=Files(pool, blobs, directory, limiter("upload", UPLOAD_REFILL, UPLOADS_IN_A_ROW),
                        settings.data_dir / "uploads"),
            presence=presence, readers=readers, streams=streams, limits=settings.limits,
            typing_limiter=RateLimiter(0.5, 1),
        )
        ws_endpoint = WebSocketEndpoint(services, settings)
        web = Web(
            settings=settings, services=services, public_streams=public_streams,
            metrics=Sources(
                hub, writer, mail_writer, pool, lambda: ws_endpoint.open, guard,
                bus_rejected=lambda: bus.rejected if isinstance(bus, RedisBus) else 0,
            ),
            ready=lambda: ping(pool),
        )
        if seed is not None:
            await seed(pool)
        # What start-up built lives as long as the process: keep it out of every future
        # garbage collection (fewer objects to scan in each full collection).
        gc.freeze()
        yield Assembly(settings, pool, writer, mail_writer, bus, services, ws_endpoint, web)


def create_app(settings: Settings, *, seed: Seed | None = None, guard: ConnectionCounts | None = None) -> TwinHub:
    """The ASGI app; its lifespan assembles the server and binds the parts to the routes and /ws."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with assemble(settings, seed=seed, guard=guard) as parts:
            app.bind(parts.web, parts.ws_endpoint, parts)
            yield

    app = TwinHub(lifespan)
    return app
