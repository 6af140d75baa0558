"""The asyncpg pool and the one way to run a named transaction.

The pool is created by the caller (the app's lifespan, the CLI, the tests) and passed down:
no module-level pool, no connection opened at import time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import asyncpg

from .errors import Conflict, NotTeacherAdmin, StorageError, Unavailable, WrongKind

log = logging.getLogger("twinhub.storage")

# Errors that mean "the database is not there or not answering" rather than "your query is wrong":
# the SQLSTATE classes 08 (connection), 53 (insufficient resources: disk full, out of memory, too
# many connections), 57 (operator intervention: shutdown, cancel, statement timeout) and 58
# (system: I/O), and the client's own failures to reach the server or keep its protocol going.
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.PostgresSystemError,
    asyncpg.exceptions.InterfaceError,
    # A connection that broke mid-statement can leave asyncpg's protocol still consuming the
    # error when the transaction's ROLLBACK is sent ("cannot switch to state 15; another
    # operation (2) is in progress"): the rollback's failure replaces the shutdown error.
    asyncpg.exceptions.InternalClientError,
)


COMMAND_MARGIN = 5.0  # seconds the client waits beyond statement_timeout before it gives up itself


class _Connection(asyncpg.Connection):
    """A pooled connection released without a reset query. We never LISTEN, SET session state,
    keep cursors or advisory locks across a release (migrate unlocks its own), so asyncpg's
    default reset (four statements per release) would only cost a round trip per query; a
    connection released inside a transaction is still rolled back by asyncpg."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(
    url: str, *, min_size: int = 2, max_size: int = 10, timeout: float = 10.0, statement_timeout: float = 15.0,
) -> asyncpg.Pool:
    """Open a pool to `url`. Raises Unavailable if PostgreSQL cannot be reached in `timeout` s.
    A statement running longer than `statement_timeout` s is cancelled by PostgreSQL (its
    transaction rolled back: nothing of it stored), which the caller gets as Unavailable."""
    try:
        pool = await asyncpg.create_pool(
            url,
            connection_class=_Connection,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            # The client's own bound, for a PostgreSQL that stopped answering altogether (a frozen
            # host: its statement_timeout cannot fire). A little above statement_timeout, so that
            # a server that still answers says "cancelled" first, and the transaction rolls back.
            command_timeout=statement_timeout + COMMAND_MARGIN,
            # A statement that runs away (or waits on a lock) must not hold a connection for ever.
            server_settings={"application_name": "twinhub", "statement_timeout": str(int(statement_timeout * 1000))},
        )
    except _UNAVAILABLE as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {type(exc).__name__}") from exc
    assert pool is not None
    return pool


def _translated(kind: str, name: str, exc: Exception) -> StorageError | None:
    """The storage error for an asyncpg failure in `name`, or None when it is not asyncpg's
    (the caller's own exception, e.g. NotFound, passes through unchanged)."""
    if isinstance(exc, asyncpg.exceptions.CheckViolationError) and exc.constraint_name == "account_kind":
        return WrongKind(f"{name}: {exc.args[0] if exc.args else 'account kind'}")
    if isinstance(exc, asyncpg.exceptions.CheckViolationError) and exc.constraint_name == "bot_creator":
        return NotTeacherAdmin(f"{name}: a bot is made by a teacher admin of its project")
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return Conflict(f"{name}: {exc.constraint_name or 'unique violation'}")
    if isinstance(exc, _UNAVAILABLE):
        log.warning("%s %s failed: database unavailable (%s)", kind, name, type(exc).__name__)
        return Unavailable(f"{name}: database unavailable")
    if isinstance(exc, asyncpg.PostgresError):
        log.error("%s %s failed: %s", kind, name, type(exc).__name__)
        return StorageError(f"{name}: {type(exc).__name__}")
    return None


@contextlib.asynccontextmanager
async def _translating(kind: str, name: str) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        error = _translated(kind, name, exc)
        if error is None:
            raise
        raise error from exc


@contextlib.asynccontextmanager
async def _dropped_when_silent(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A statement that got no answer within command_timeout leaves a connection nobody can
    trust: it is closed at once. (Left to asyncpg, the cancel request it sends to a silent
    server, and a ROLLBACK after it, would each wait as long again before the caller hears.)
    PostgreSQL rolls back a transaction whose connection is gone."""
    try:
        yield
    except TimeoutError:
        if not conn.is_closed():
            conn.terminate()
        raise


@contextlib.asynccontextmanager
async def read(pool: asyncpg.Pool, name: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one read-only statement, outside any explicit transaction (a single
    statement is atomic by itself; BEGIN/COMMIT around it would be two more round trips).
    Translates errors like transaction()."""
    async with _translating("read", name), pool.acquire() as conn, _dropped_when_silent(conn):
        yield conn


@contextlib.asynccontextmanager
async def transaction(
    pool: asyncpg.Pool, name: str, *, isolation: str | None = None, readonly: bool = False
) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction named `name` (for logs). Translates asyncpg errors into
    storage errors: Unavailable when nothing could be committed, Conflict on a unique violation."""
    started = time.perf_counter()
    try:
        async with (
            _translating("transaction", name),
            pool.acquire() as conn,
            _dropped_when_silent(conn),  # a BEGIN or a COMMIT without an answer
            conn.transaction(isolation=isolation, readonly=readonly),
            _dropped_when_silent(conn),  # a statement without one: before the ROLLBACK would wait
        ):
            yield conn
    finally:
        elapsed = (time.perf_counter() - started) * 1000
        if elapsed > 500:
            log.warning("slow transaction %s: %.0f ms", name, elapsed)


async def ping(pool: asyncpg.Pool) -> bool:
    """True when PostgreSQL answers a trivial query within 2 s."""
    try:
        async with pool.acquire(timeout=2) as conn:
            return await conn.fetchval("SELECT 1", timeout=2) == 1
    except (*_UNAVAILABLE, asyncpg.PostgresError):
        return False
