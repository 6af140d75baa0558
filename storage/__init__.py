"""Everything that speaks SQL. Plain values in, our own dataclasses out; asyncpg stays inside.

Modules, one per aggregate: accounts (users, sessions), spaces (spaces, members, rooms),
messages (messages and the room event log), mail (mailboxes, mails, each mailbox's event log),
mail_reports (reported mail, for reviewers), profiles (members' short profiles), erasure (an
account erased: what goes, what stays), account_data (one account's data, read for its export),
audit, writer (group commit), migrate, embedded
(the private PostgreSQL used when no database URL is configured), db (pool, transactions).

And the one place without SQL: blobs (the bytes of attached files, under keys: a folder, or with
s3 a bucket of an S3-compatible store through botocore, imported only when one is configured).
"""

from .errors import (
    Conflict,
    DataFolderUnusable,
    LastTeacherAdmin,
    NotFound,
    NotTeacherAdmin,
    StorageError,
    Unavailable,
    WrongKind,
)

__all__ = [
    "Conflict", "DataFolderUnusable", "LastTeacherAdmin", "NotFound", "NotTeacherAdmin", "StorageError",
    "Unavailable", "WrongKind",
]
