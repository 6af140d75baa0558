"""How storage turns a failing database into the errors the services answer with: `Unavailable`
(the client hears `unavailable`, nothing was stored, a retry with the same client_id is safe)
versus a fault of the statement itself (`internal`)."""

from __future__ import annotations

import asyncpg
import pytest

from storage import NotFound, StorageError, Unavailable
from storage.db import _translating, create_pool, read, transaction

ex = asyncpg.exceptions


async def test_a_connection_terminated_by_the_server_is_unavailable(database_url):
    """Threat: PostgreSQL shut down under a request (57P01, what a fast shutdown sends). Real:
    the backend is terminated by the server while the statement runs."""
    own = await create_pool(database_url, min_size=1, max_size=1)
    try:
        async with own.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
        killer = await asyncpg.connect(database_url)
        try:
            with pytest.raises(Unavailable):
                async with transaction(own, "terminated") as conn:
                    await conn.execute("SELECT 1")
                    await killer.execute("SELECT pg_terminate_backend($1)", pid)
                    await conn.execute("SELECT pg_sleep(0.1)")
        finally:
            await killer.close()
        async with read(own, "after") as conn:  # the pool replaced the dead connection
            assert await conn.fetchval("SELECT 2") == 2
    finally:
        await own.close()


async def test_a_statement_error_is_not_called_unavailable(pool):
    """A wrong statement is the server's bug, not an outage: a retry would fail again."""
    with pytest.raises(StorageError) as caught:
        async with read(pool, "wrong") as conn:
            await conn.execute("SELECT no_such_column FROM users")
    assert not isinstance(caught.value, Unavailable)


@pytest.mark.parametrize("error", [
    ex.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
    ex.CannotConnectNowError("the database system is shutting down"),  # 57P03
    ex.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
    ex.CrashShutdownError("terminating connection because of crash of another server process"),
    ex.DiskFullError("could not extend file"),  # 53100
    ex.OutOfMemoryError("out of memory"),  # 53200
    ex.TooManyConnectionsError("sorry, too many clients already"),  # 53300
    ex.ConnectionFailureError("connection failure"),  # 08006
    ex.ConnectionDoesNotExistError("connection was closed in the middle of operation"),  # 08003
    ex.PostgresIOError("could not read block"),  # 58030
    ex.InterfaceError("cannot call Transaction.__aexit__(): the underlying connection is closed"),
    # Seen in CI with PostgreSQL stopped under load: the rollback after a shutdown error found the
    # protocol still consuming that error, and its failure replaced it.
    ex.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
    ConnectionResetError(104, "Connection reset by peer"),
    TimeoutError(),
], ids=lambda e: type(e).__name__)
async def test_every_kind_of_outage_is_unavailable(error):
    """Each of these, raised inside a storage call, leaves nothing committed and must reach the
    client as `unavailable` (not `internal`), so that it retries."""
    with pytest.raises(Unavailable):
        async with _translating("transaction", "outage"):
            raise error


async def test_the_callers_own_errors_pass_through():
    with pytest.raises(NotFound):
        async with _translating("read", "own"):
            raise NotFound("room 7")
