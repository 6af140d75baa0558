"""Errors raised by storage. asyncpg's own exceptions never leave this package.

    StorageError
      NotFound        the row the caller named does not exist
      Conflict        a unique constraint said no (e.g. the username is taken)
        WrongKind     a pupil account given an adult's role, or the reverse (the schema's
                      members_keep_account_kind trigger: adult <-> pupil is not a role change)
      NotTeacherAdmin a bot's creator is not (or no longer) a teacher admin of its project (the
                      schema's bots_made_by_a_teacher_admin trigger)
      LastTeacherAdmin an account to erase is the last teacher admin of some projects (`spaces`)
      Unavailable     PostgreSQL could not be reached or could not commit: nothing was stored;
                      or the files' store (storage/blobs.py) failed or refused
      DataFolderUnusable  this process may not keep the embedded PostgreSQL in its data folder
                      (storage/embedded.py): the message says what to chown, in one line
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    pass


class NotFound(StorageError):
    pass


class Conflict(StorageError):
    pass


class WrongKind(Conflict):
    pass


class NotTeacherAdmin(StorageError):
    pass


class LastTeacherAdmin(StorageError):
    def __init__(self, spaces: list[int]) -> None:
        super().__init__(f"the last teacher admin of projects {spaces}")
        self.spaces = spaces


class Unavailable(StorageError):
    pass


class DataFolderUnusable(StorageError):
    """`folder` cannot hold the embedded PostgreSQL for this process (`uid`, `gid`): `problem`
    says why ("belongs to uid 0, gid 0 and is not writable by this process", …). The message
    is one line that names the chown which mends it; the command line adds its own alternative
    (a database URL) and prints it instead of a traceback."""

    def __init__(self, folder: Path, problem: str, uid: int, gid: int) -> None:
        self.folder, self.problem, self.uid, self.gid = folder, problem, uid, gid
        super().__init__(
            f"the data folder {folder} {problem}; it holds the embedded PostgreSQL, which runs as this process "
            f"(uid {uid}, gid {gid}): give it to that user, chown -R {uid}:{gid} {folder} "
            f"(in a container: the host folder mounted at {folder})"
        )
