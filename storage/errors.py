"""Errors raised by storage. asyncpg's own exceptions never leave this package.

    StorageError
      NotFound        the row the caller named does not exist
      Conflict        a unique constraint said no (e.g. the username is taken)
        WrongKind     a pupil account given an adult's role, or the reverse (the schema's
                      members_keep_account_kind trigger: adult <-> pupil is not a role change)
      NotTeacherAdmin a bot's creator is not (or no longer) a teacher admin of its project (the
                      schema's bots_made_by_a_teacher_admin trigger)
      LastTeacherAdmin an account to erase is the last teacher admin of some projects (`spaces`)
      Unavailable     PostgreSQL could not be reached or could not commit: nothing was stored
"""

from __future__ import annotations


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
