"""A project's audit log, as its teacher admins read it (the log is written by storage/, in the
same transaction as each act it records)."""

from __future__ import annotations

from typing import Any

import asyncpg

from protocol.timestamps import iso
from storage import audit as store

from ..errors import database
from ..fanout.directory import Viewer
from ..policy import Action


class AuditLog:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def page(self, viewer: Viewer, space_id: int, before: int | None, limit: int) -> dict[str, Any]:
        """Entries newest first, before the entry id `before`: {"space", "entries", "more"}.
        Raises ServiceError unless the viewer may read the project's audit log."""
        viewer.require(space_id, Action.READ_AUDIT)
        found = await database(store.entries(self._pool, space_id, limit + 1, before))
        entries = [
            {"id": e.id, "at": iso(e.created_at), "actor_id": e.actor_id, "actor": e.actor_name, "action": e.action,
             "target_kind": e.target_kind, "target_id": e.target_id, "reason": e.reason, "details": e.details}
            for e in found[:limit]
        ]
        return {"space": space_id, "entries": entries, "more": len(found) > limit}
