"""Errors raised by the services, each carrying what the client is told: a stable code, a sentence
for developers, and data fields that each kind declares (sent beside the code in the `error`
frame, or in the HTTP error body — docs/protocol.md, "Errors").

    ServiceError(code, message, channel=None)    a request was refused; `channel` when it named one
      NotFound(message, channel=None)            not_found — also what "not yours" answers
                                                 (services/access.py masks it, written once)
      Refused(refusal, channel=None)             the policy said no: its code and sentence
      RateLimited(wait, doing)                   rate_limited, with retry_after_ms
      Muted(scope, until)                        muted, with the scope and when the mute ends
      RecipientsRefused(code, message, who)      a mail nobody got, with the recipients refused
      AlreadyResolved(report)                    conflict: a report closed before, with its id

The services raise them; ws/session.py turns them into `error` frames and web/http.py's one
handler into HTTP answers (HTTP_STATUS); both tell `refusals` (a Tally, below), which writes each
kind of refusal or failure to the log once a minute and counts the rest. `database()` (and `write()`, built on it) is the one translation of storage's
outage into `unavailable` (storage/errors.py draws storage's own tree; other storage errors are
caught where they mean something: a conflict, a row that is not there).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, ClassVar, TypeVar

from protocol import ErrorCode
from storage import StorageError, Unavailable

from .policy import Refusal

T = TypeVar("T")


class ServiceError(Exception):
    fields: ClassVar[tuple[str, ...]] = ("channel",)  # what `data` may carry, beside the code

    def __init__(self, code: ErrorCode, message: str, *, channel: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.channel = channel

    @property
    def data(self) -> dict[str, Any]:
        """The declared fields that have a value."""
        return {name: value for name in self.fields if (value := getattr(self, name)) is not None}


class NotFound(ServiceError):
    def __init__(self, message: str, *, channel: str | None = None) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message, channel=channel)


class Refused(ServiceError):
    def __init__(self, refusal: Refusal, *, channel: str | None = None) -> None:
        super().__init__(refusal.code, refusal.message, channel=channel)


class RateLimited(ServiceError):
    fields = ("retry_after_ms",)

    def __init__(self, wait: float, message: str) -> None:
        super().__init__(ErrorCode.RATE_LIMITED, message)
        self.retry_after_ms = int(wait * 1000) + 1


class Muted(ServiceError):
    fields = ("scope", "until")

    def __init__(self, scope: str, until: str | None) -> None:
        super().__init__(ErrorCode.MUTED, f"you are muted here until {until}")
        self.scope = scope
        self.until = until


class RecipientsRefused(ServiceError):
    fields = ("recipients",)

    def __init__(self, code: ErrorCode, message: str, recipients: list[int]) -> None:
        super().__init__(code, message)
        self.recipients = recipients


class AlreadyResolved(ServiceError):
    fields = ("report",)

    def __init__(self, report: int) -> None:
        super().__init__(ErrorCode.CONFLICT, f"report {report} is already closed")
        self.report = report


def rate_limited(wait: float, doing: str) -> None:
    """Raise `rate_limited` when a limiter asked to `wait` seconds ("you are posting too fast")."""
    if wait:
        raise RateLimited(wait, f"{doing} too fast; try again in {wait:.1f} s")


HTTP_STATUS = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_MEMBER: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.SPACE_CLOSED: 409,
    ErrorCode.ROOM_ARCHIVED: 409,
    ErrorCode.MUTED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
    ErrorCode.FILE_EMPTY: 400,
    ErrorCode.FILE_TYPE_REFUSED: 415,
    ErrorCode.FILE_TYPE_UNKNOWN: 415,
    ErrorCode.FILE_TYPE_MISMATCH: 415,
    ErrorCode.FILE_NAME_INVALID: 400,
    ErrorCode.IMAGE_TOO_LARGE: 413,
    ErrorCode.IMAGE_UNREADABLE: 422,
    ErrorCode.QUOTA_EXCEEDED: 413,
}


async def database(op: Awaitable[T], *, undone: str = "nothing was changed") -> T:
    """Await a storage call; a database that cannot answer becomes `unavailable` for the client,
    saying what was not done (`undone`: the storage call committed nothing). Any other storage
    error is the caller's to catch where it means something (a conflict, a missing row); a
    write that the client waits on also turns the rest into `internal` with `undone` (`write`)."""
    try:
        return await op
    except Unavailable:
        raise ServiceError(ErrorCode.UNAVAILABLE, f"the database is not answering; {undone}") from None


def outage() -> ServiceError:
    """What any request answers when PostgreSQL is away and no service said more precisely what was
    not done (a hello, a login, a page): `unavailable`, never `internal` — retrying later is right."""
    return ServiceError(ErrorCode.UNAVAILABLE, "the database is not answering; nothing was changed, try again shortly")


async def write(op: Awaitable[T], *, undone: str) -> T:
    """`database()` for a write whose every failure the client must hear of: an outage is
    `unavailable`, any other storage error `internal` — both saying what was not done."""
    try:
        return await database(op, undone=undone)
    except StorageError:
        raise ServiceError(ErrorCode.INTERNAL, f"the server could not store this; {undone}") from None


# -- what the log says about refusals and failures -------------------------------------------
#
# A client (or an attacker) decides how many requests are refused; if each one wrote a line — or
# a traceback — the log would be theirs to fill, and the one line an operator needs would drown.
# So each kind (a refusal's error code, a cross-site handshake, a bug in a request handler) is
# written the first time it happens in a period, with its traceback for a bug; the rest of the
# period is counted, and one line at the period's end says how many more there were.

PERIOD = 60.0


class Tally:
    def __init__(self, logger: logging.Logger, period: float = PERIOD) -> None:
        self._log = logger
        self.period = period
        self._since: dict[str, float] = {}  # kind -> when its period began
        self._more: dict[str, int] = {}  # kind -> how many came after the first line of the period
        self._levels: dict[str, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def restart(self, period: float) -> None:
        """Forget what was counted, and count in periods of `period` seconds from now on."""
        if self._timer is not None:
            self._timer.cancel()
        self.__init__(self._log, period)  # type: ignore[misc]

    def note(self, kind: str, message: str, *args: Any, level: int = logging.INFO, exc_info: Any = None) -> None:
        """Write `message` if `kind` was not written in the current period, else count it."""
        now = time.monotonic()
        began = self._since.get(kind)
        if began is not None and now - began < self.period:
            self._more[kind] = self._more.get(kind, 0) + 1
            self._arm()
            return
        self._summarise(kind)
        self._since[kind] = now
        self._levels[kind] = level
        self._log.log(level, message, *args, exc_info=exc_info)

    def flush(self) -> None:
        """Say how many of each kind went unwritten in periods that are over."""
        self._timer = None
        now = time.monotonic()
        for kind in [k for k, began in self._since.items() if now - began >= self.period]:
            self._summarise(kind)
            del self._since[kind]
        if self._more:
            self._arm()

    def _summarise(self, kind: str) -> None:
        more = self._more.pop(kind, 0)
        if more:
            self._log.log(self._levels.get(kind, logging.INFO), "%d more of \"%s\" in the last %.0f s (written once a period)",
                          more, kind, self.period)

    def _arm(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a command-line tool): the next note says it
            return
        if self._timer is not None and self._loop is loop:
            return
        self._loop = loop
        self._timer = loop.call_later(self.period, self.flush)


refusals = Tally(logging.getLogger("twinhub.refusals"))
