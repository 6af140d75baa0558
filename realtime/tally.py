"""What the server logs about requests it refused or failed: one line per kind per minute.

A client (or an attacker) decides how many requests are refused; if each one wrote a line — or a
traceback — the log would be theirs to fill, and the one line an operator needs would drown. So
each kind (a refusal's error code, a cross-site handshake, a bug in a request handler) is
written the first time it happens in a period, with its traceback for a bug; the rest of the
period is counted, and one line at the period's end says how many more there were.

Imports: the standard library only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

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
