"""Errors raised by storage. asyncpg's own exceptions never leave this package.

    StorageError
      NotFound        the row the caller named does not exist
      Conflict        a unique constraint said no (e.g. the username is taken)
      Unavailable     PostgreSQL could not be reached or could not commit: nothing was stored
"""

from __future__ import annotations


class StorageError(Exception):
    pass


class NotFound(StorageError):
    pass


class Conflict(StorageError):
    pass


class Unavailable(StorageError):
    pass
