"""Everything that speaks SQL. Plain values in, our own dataclasses out; asyncpg stays inside.

Modules, one per aggregate: accounts (users, sessions), spaces (spaces, members, rooms),
messages (messages and the room event log), mail (mailboxes, mails, each mailbox's event log),
mail_reports (reported mail, for reviewers), audit, writer (group commit), migrate, embedded
(the private PostgreSQL used when no database URL is configured), db (pool, transactions).
"""

from .errors import (
    Conflict,
    DataFolderUnusable,
    NotFound,
    NotTeacherAdmin,
    StorageError,
    Unavailable,
    WrongKind,
)

__all__ = [
    "Conflict", "DataFolderUnusable", "NotFound", "NotTeacherAdmin", "StorageError", "Unavailable", "WrongKind",
]
