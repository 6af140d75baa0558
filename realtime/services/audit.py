"""A project's audit log, as its teacher admins read it (the log is written by storage/, in the
same transaction as each act it records)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import audit as store

from ..errors import ServiceError, database
from ..fanout.directory import Viewer
from ..policy import Action

_ACTION = re.compile(r"[a-z_]{1,30}\.[a-z_]{1,30}")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which entries a page holds: one action, one actor (a user id), written in [since, until)."""

    action: str | None = None
    actor_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def parse(cls, action: str | None, actor_id: int | None, since: str | None, until: str | None) -> AuditFilter:
        """From a request's query: raises invalid_field for an action that is no action's name,
        or a time that is not ISO 8601 with its offset (2026-11-22T00:00:00+01:00, …Z)."""
        if action is not None and not _ACTION.fullmatch(action):
            raise ServiceError(ErrorCode.INVALID_FIELD, "action must be an action's name, like room.archive")
        return cls(action, actor_id, _instant("since", since), _instant("until", until))


def _instant(name: str, raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must be an ISO 8601 time with its offset, like 2026-11-22T00:00:00Z")
    return when


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(
        self, viewer: Viewer, space_id: int, before: int | None, limit: int, only: AuditFilter = AuditFilter()
    ) -> dict[str, Any]:
        """Entries newest first, before the entry id `before`, those `only` names:
        {"space", "entries", "more"}. Raises ServiceError unless the viewer may read the project's
        audit log."""
        viewer.require(space_id, Action.READ_AUDIT)
        found = await database(store.entries(
            self._pool, space_id, limit + 1, before,
            action=only.action, actor_id=only.actor_id, since=only.since, until=only.until,
        ))
        entries = [
            {"id": e.id, "at": iso(e.created_at), "actor_id": e.actor_id, "actor": e.actor_name, "action": e.action,
             "target_kind": e.target_kind, "target_id": e.target_id, "reason": e.reason, "details": e.details}
            for e in found[:limit]
        ]
        return {"space": space_id, "entries": entries, "more": len(found) > limit}
