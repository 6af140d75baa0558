"""The "most recent activity" feed: a resumable channel `feed:<space id>` per project.

Every record (storage/activity.py) carries the area it belongs to. A subscriber is served only
the records of areas their role may read *now* — in replay (filtered in SQL) and live (the hub
checks each subscription's `accepts` set against the event's area). The event is encoded once
per wire format whatever the mix of roles: filtering is a set lookup per subscriber, never an
encoding. A reader's feed therefore has holes in its seqs: those are records for other roles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol import ErrorCode, Event
from protocol.timestamps import iso
from storage import activity as store
from storage.activity import Activity

from ..channels import FEED
from ..channels import parse as parse_channel
from ..errors import ServiceError, database
from ..fanout.bus import Bus
from ..fanout.directory import Viewer
from ..fanout.shield import shield_data
from ..policy import Area, Refusal, readable_areas, sees_pupils
from . import access

ALL_AREAS = [a.value for a in Area]


def feed_channel(space_id: int) -> str:
    return FEED.name_of(space_id)


def activity_data(a: Activity) -> dict[str, Any]:
    """The wire form of a record. `area` is null for what concerns the whole project."""
    return {
        "area": a.area, "actor": a.actor, "room": a.room, "message_id": a.message_id, "user": a.user,
        "details": a.details, "created_at": iso(a.created_at),
    }


def to_event(a: Activity) -> Event:
    return Event(feed_channel(a.space_id), a.seq, a.kind, activity_data(a))


@dataclass(frozen=True, slots=True)
class FeedView:
    space_id: int
    areas: frozenset[str]  # what this subscriber may see, from their roles when they subscribed


class Feed:
    def __init__(self, pool: asyncpg.Pool, bus: Bus, *, max_replay: int = 5000) -> None:
        self._pool = pool
        self._bus = bus
        self.max_replay = max_replay

    # -- the channel (session subscriptions) --------------------------------------------------

    async def open(self, viewer: Viewer, channel: str) -> FeedView:
        _, space_id = parse_channel(channel)
        roles = viewer.roles_in(space_id)
        if not roles:
            raise access.no_channel(channel)
        return FeedView(space_id, readable_areas(roles))

    def refusal(self, viewer: Viewer, view: FeedView) -> Refusal | None:
        if not viewer.roles_in(view.space_id):
            return Refusal(ErrorCode.NOT_MEMBER, "you are no longer a member of this project")
        return None

    def accepts(self, viewer: Viewer, view: FeedView) -> frozenset[str]:
        """The areas whose records reach this subscriber, with their roles as they are now."""
        return readable_areas(viewer.roles_in(view.space_id))

    async def head(self, view: FeedView) -> int:
        return await database(store.head(self._pool, view.space_id))

    async def replay_page(self, view: FeedView, since: int, limit: int) -> tuple[list[Event], int, bool]:
        page = await database(store.replay(self._pool, view.space_id, since, limit, sorted(view.areas)))
        return [to_event(a) for a in page.activities], page.head, page.more

    async def backfill(self, channel: str, after: int, upto: int) -> list[Event]:
        """Every record after..upto (the hub's gap filler: it filters per subscriber itself)."""
        _, space_id = parse_channel(channel)
        page = await store.replay(self._pool, space_id, after, max(upto - after, 0), ALL_AREAS)
        return [to_event(a) for a in page.activities if a.seq <= upto]

    # -- HTTP paging --------------------------------------------------------------------------

    async def page(self, viewer: Viewer, space_id: int, before: int | None, limit: int) -> dict[str, Any]:
        roles = viewer.roles_in(space_id)
        if not roles:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        page = await database(store.recent(self._pool, space_id, before, limit, sorted(readable_areas(roles))))
        records = [{"seq": a.seq, "kind": a.kind, **activity_data(a)} for a in page.activities]
        return {
            "space": space_id, "channel": feed_channel(space_id), "head": page.head, "more": page.more,
            "activities": records if sees_pupils(roles) else [shield_data(r) for r in records],
        }

    # -- publishing ---------------------------------------------------------------------------

    async def publish(self, record: Activity | None) -> None:
        if record is not None:
            await self._bus.publish(to_event(record))

    async def announce(self, space_id: int) -> None:
        """After an action that wrote its record but did not return it: publish the space's newest
        records. Those already delivered are dropped by the hub (by seq); one older that is still
        missing is fetched by the hub's gap repair."""
        page = await store.recent(self._pool, space_id, None, 3, ALL_AREAS)
        for a in reversed(page.activities):
            await self._bus.publish(to_event(a))
