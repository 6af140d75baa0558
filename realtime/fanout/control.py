"""Control messages: what tells every process that rights changed, so that each one's directory
reloads them and re-checks its open sockets at once (DESIGN.md, "Membership is live").

    MemberChanged(space_id, user_id)   a membership was made, changed or ended (role, mute,
                                       removal, a new pupil account, an accepted invitation)
    SpaceChanged(space_id)             a project's own settings (closed, public, name) changed:
                                       its members' sockets get a fresh welcome
    RoomChanged(space_id, room_id)     a room was archived, unarchived, deleted or renamed: its
                                       subscribers are told, posting follows its state, welcomes
                                       are sent again
    SessionsRevoked(user_id)           every session of a user ended (logged out everywhere, a
                                       password changed or reset, the account erased): their
                                       sockets close
    InvitationChanged(user_id, invitation_id)
                                       an invitation to that user was made, answered or withdrawn:
                                       their open sockets are told (`invitation` frame), not only
                                       their next look at GET /api/invitations

They leave from one place, `Changes.send` — called by the services after the change committed —
which applies the message to this process's directory first (the change holds here as soon as
the call that made it returns), then publishes it on the bus to every other process. The command
line (`twinhub admin`), which has no bus, sends them through PostgreSQL's NOTIFY
(storage/notify.py); every process listens and applies what it hears (`Changes.heard`). Every kind
sent is handled by `Directory.apply` and every kind handled is sent
(tests/realtime/test_control.py checks both ways, as Zulip's test_events checks send_event).

Over Redis they travel as small maps (`to_wire`/`from_wire`); a map of a kind this version does
not know is refused with ValueError (the bus logs and drops it: a newer process's message).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

log = logging.getLogger("twinhub.control")


@dataclass(frozen=True, slots=True)
class MemberChanged:
    space_id: int
    user_id: int


@dataclass(frozen=True, slots=True)
class SpaceChanged:
    space_id: int


@dataclass(frozen=True, slots=True)
class RoomChanged:
    space_id: int
    room_id: int


@dataclass(frozen=True, slots=True)
class SessionsRevoked:
    user_id: int


@dataclass(frozen=True, slots=True)
class InvitationChanged:
    user_id: int
    invitation_id: int


Control = MemberChanged | SpaceChanged | RoomChanged | SessionsRevoked | InvitationChanged

_KINDS: dict[str, type[Control]] = {
    "member_changed": MemberChanged, "space_changed": SpaceChanged, "room_changed": RoomChanged,
    "sessions_revoked": SessionsRevoked, "invitation_changed": InvitationChanged,
}
_NAMES = {cls: name for name, cls in _KINDS.items()}


def to_wire(message: Control) -> dict[str, Any]:
    return {"kind": _NAMES[type(message)], **asdict(message)}


def from_wire(m: Any) -> Control:
    """The message a map from the bus stands for; ValueError if it is not one we know."""
    if not isinstance(m, dict) or m.get("kind") not in _KINDS:
        raise ValueError(f"not a control message: {m!r}")
    cls = _KINDS[m["kind"]]
    fields = {k: v for k, v in m.items() if k != "kind"}
    if any(not isinstance(v, int) for v in fields.values()):
        raise ValueError(f"not a control message: {m!r}")
    try:
        return cls(**fields)
    except TypeError:
        raise ValueError(f"not a control message: {m!r}") from None


class _Applies(Protocol):
    async def apply(self, message: Control) -> None: ...


class _Publishes(Protocol):
    reaches_others: bool

    async def control(self, message: Control) -> None: ...


class Changes:
    """The one sender of control messages (built once by run/assemble.py, given to the services)."""

    def __init__(self, directory: _Applies, bus: _Publishes) -> None:
        self._directory = directory
        self._bus = bus
        self._applying: set[asyncio.Task[None]] = set()

    async def send(self, message: Control) -> None:
        """Apply `message` here, then tell every other process. Call it after the change committed."""
        await self._directory.apply(message)
        if self._bus.reaches_others:  # an in-process bus would only hand it back to the directory
            await self._bus.control(message)

    def heard(self, payload: str) -> None:
        """A message from the command line (NOTIFY): every process hears it, so each applies it here
        only. One that cannot be read is dropped (a newer version's, or not ours)."""
        try:
            message = from_wire(json.loads(payload))
        except ValueError:
            log.warning("dropped a notification that is not a control message")
            return
        task = asyncio.get_running_loop().create_task(self._directory.apply(message))
        self._applying.add(task)
        task.add_done_callback(self._applying.discard)
