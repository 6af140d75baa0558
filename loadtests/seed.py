"""The database a TwinHub run uses, and what the run needs in it: project spaces with one chat
room each (or one room per area, for the feed scenario), a publisher and N member accounts (each
with a mailbox; of one role, or of a given role each) with a live session token each.

Everything is written through `storage/` (no SQL here). Passwords are hashed once (argon2 is
slow on purpose) and the hash is shared; session tokens are inserted directly rather than
obtained through /api/login, which would cost one argon2 verification per client.

Database: without a URL, the embedded PostgreSQL in `<data_dir>/pgdata` — the same one
`twinhub serve --data-dir` then starts. With a URL (a server where the user may create
databases), a throwaway database `twinhub_bench_<tag>` is created on that server for the run
and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from realtime.policy import Area, Role
from realtime.services.auth import hash_password, token_hash
from storage import accounts, spaces
from storage.db import create_pool
from storage.embedded import database_url, drop_database, ensure_database
from storage.migrate import migrate

PUBLISHER_NAME = "Load publisher"
SCHOOL = "Bench"
_WRITERS = 8  # concurrent transactions while seeding
_TITLES = {Role.PUPIL_MEMBER: "Pupil", Role.TEACHER_MEMBER: "Teacher", Role.VISITOR: "Visitor"}  # "Pupil 00042"


@dataclass(frozen=True)
class Database:
    """Where a run's TwinHub keeps its data: `url` None means the embedded PostgreSQL in `data_dir`."""

    url: str | None
    data_dir: Path


@dataclass(frozen=True)
class Seeded:
    channels: list[str]  # "room:<id>", one per space (its first area's room); the publisher posts to the first
    publisher_token: str
    logins: list[tuple[str, str]]  # per member: (session token, the channel of its space's room)
    roles: list[str] = field(default_factory=list)  # per member (same order as logins): its role
    rooms: list[tuple[str, str]] = field(default_factory=list)  # the first space's rooms: (channel, area)
    space_ids: list[int] = field(default_factory=list)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@contextlib.asynccontextmanager
async def run_database(server_url: str | None, data_dir: Path) -> AsyncIterator[Database]:
    """The run's database: embedded in `data_dir`, or a throwaway one on `server_url`."""
    if server_url is None:
        yield Database(None, data_dir)
        return
    name = f"twinhub_bench_{secrets.token_hex(4)}"
    await ensure_database(server_url, name)
    try:
        yield Database(_with_database(server_url, name), data_dir)
    finally:
        await drop_database(server_url, name)


async def seed(
    db: Database, *, subscribers: int, rooms: int, role: Role = Role.PUPIL_MEMBER,
    roles: Sequence[Role] | None = None, areas: Sequence[Area] = (Area.CHAT,),
) -> Seeded:
    """Create `rooms` spaces of one chat room each (like classes: a welcome lists only the rooms
    of one's own spaces), the publisher (a teacher of the first space) and `subscribers` members
    with `role` (pupils unless told: the mail scenario makes them teachers), member i in space
    i % rooms, each with a session token. Every member has a mailbox in their space
    (spaces.set_member creates it). Starts (and stops) the embedded PostgreSQL when `db.url` is
    None.

    `roles`: member i gets roles[i % len(roles)] instead of `role` (a mix: the feed scenario).
    `areas`: one room per area in each space instead of the chat room alone (the home area's is
    a plain room, besides the project journal every space has)."""
    async with contextlib.AsyncExitStack() as stack:
        url = await database_url(db.url, db.data_dir, stack)
        pool = await create_pool(url, min_size=1, max_size=_WRITERS)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await migrate(conn)

        tag = secrets.token_hex(3)
        space_ids, channels, first_rooms = [], [], []
        for i in range(rooms):
            space = await spaces.create_space(pool, slug=f"bench-{tag}-{i}", name=f"Load test {tag} #{i}")
            made = []
            for area in areas:
                name = "chat" if area is Area.CHAT else area.value
                room = await spaces.create_room(pool, space_id=space.id, area=area.value, name=name)
                made.append((f"room:{room.id}", area.value))
            space_ids.append(space.id)
            channels.append(made[0][0])
            if i == 0:
                first_rooms = made

        password_hash = hash_password(secrets.token_urlsafe(12))
        expires = datetime.now(UTC) + timedelta(days=1)
        gate = asyncio.Semaphore(_WRITERS)

        async def member(username: str, display_name: str, role: Role, space_id: int) -> str:
            async with gate:
                user = await accounts.create_user(
                    pool, username=username, display_name=display_name, password_hash=password_hash, school=SCHOOL,
                )
                await spaces.set_member(pool, space_id, user.id, role.value)
                token = secrets.token_urlsafe(32)
                await accounts.create_session(pool, token_hash(token), user.id, expires)
                return token

        publisher = await member(f"bench-{tag}-pub", PUBLISHER_NAME, Role.TEACHER_MEMBER, space_ids[0])
        mix = list(roles) if roles else [role]
        member_roles = [mix[i % len(mix)] for i in range(subscribers)]
        tokens = await asyncio.gather(*(
            member(f"bench-{tag}-{i}", f"{_TITLES.get(r, 'Member')} {i:05d}", r, space_ids[i % rooms])
            for i, r in enumerate(member_roles)
        ))
        return Seeded(
            channels, publisher, [(token, channels[i % rooms]) for i, token in enumerate(tokens)],
            roles=[r.value for r in member_roles], rooms=first_rooms, space_ids=space_ids,
        )
