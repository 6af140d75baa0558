"""The bus: how a committed event reaches the hub of every process.

    Bus (interface)
      LocalBus     one process: publish hands the event straight to this process's hub
      (RedisBus    many processes, over Redis pub/sub — the scale-out issue; same contract)

Contract, for every implementation (tests/realtime/test_bus_contract.py runs against each):
- publish(event) is called only after the event's transaction committed, by the services;
- every attached sink receives every event published after it attached, per channel in the
  order published; the hub re-orders by seq and backfills any gap from PostgreSQL, so a bus
  may lose or reorder under failure without a subscriber ever seeing a hole;
- publish raises BusError when it cannot hand the event on — it never logs-and-drops;
- control messages (fanout/control.py: membership changed, space changed, sessions revoked)
  travel the same way, to every process;
- ephemeral messages (presence, typing) go to the other processes only, best effort.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from protocol import Event

from .control import Control

EventSink = Callable[[Event], None]
ControlSink = Callable[[Control], None]
EphemeralSink = Callable[[bytes, dict[str, Any]], None]  # (the sending process, the message)


class BusError(Exception):
    """The bus could not hand an event on. The event is committed; subscribers will get it by
    backfill from PostgreSQL, but the caller should know."""


class Bus(Protocol):
    # Whether other processes hear what this bus carries. An in-process bus carries control
    # messages only to this process's directory, which Changes.send has already told.
    reaches_others: bool

    def attach(self, on_event: EventSink, on_control: ControlSink) -> None: ...

    async def publish(self, event: Event) -> None: ...

    async def control(self, message: Control) -> None: ...

    def attach_ephemeral(self, on_ephemeral: EphemeralSink) -> None: ...

    def share(self, message: dict[str, Any]) -> None:
        """Tell the *other* processes something that is not stored (presence, typing): best
        effort, never waits, may be lost."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """In-process bus. publish() does not suspend: an event is delivered before it returns, so
    events published in seq order reach the hub in seq order."""

    reaches_others = False

    def __init__(self) -> None:
        self._event_sinks: list[EventSink] = []
        self._control_sinks: list[ControlSink] = []
        self.published = 0

    def attach(self, on_event: EventSink, on_control: ControlSink) -> None:
        self._event_sinks.append(on_event)
        self._control_sinks.append(on_control)

    async def publish(self, event: Event) -> None:
        self.published += 1
        for sink in self._event_sinks:
            sink(event)

    async def control(self, message: Control) -> None:
        for sink in self._control_sinks:
            sink(message)

    def attach_ephemeral(self, on_ephemeral: EphemeralSink) -> None:
        return None  # there is no other process

    def share(self, message: dict[str, Any]) -> None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._event_sinks.clear()
        self._control_sinks.clear()
