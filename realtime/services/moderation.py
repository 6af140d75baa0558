"""Reports and the live moderation queues.

A member reports a message they can read (`report`); a recipient reports a mail (realtime/services/mail.py).
Either opens a report on two resumable channels: `moderation:<space id>`, followed by the
project's teacher admins and by platform moderators, and `moderation:0`, every project's, for
platform moderators. A reviewer closes a report as resolved or dismissed with a note
(`resolve_report`); hiding, erasing and muting are their own acts (chat.py, projects.py), each
in the audit log.

A mail report's event names the mail but does not carry its words: reading them is the audited
mail report listing (`mail_reports`), so that every look at someone's mail is on record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from protocol import (
    ErrorCode,
    Event,
)
from protocol.timestamps import iso
from storage import reports as store
from storage.reports import PLATFORM_QUEUE, QueueEvent, ReportView

from ..channels import MODERATION
from ..channels import parse as parse_channel
from ..errors import AlreadyResolved, Refused, ServiceError, database, rate_limited
from ..fanout.bus import Bus
from ..fanout.directory import Viewer
from ..policy import Action, Area, Refusal, decide_queue, decide_report
from ..ratelimit import Limiter
from . import access
from .chat import Chat
from .platform import project_page


def queue_channel(queue: int) -> str:
    return MODERATION.name_of(queue)


def report_data(r: ReportView) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": r.id, "space": r.space_id, "kind": r.kind, "status": r.status, "reporter": r.reporter,
        "note": r.note, "created_at": iso(r.created_at), "resolution": None,
    }
    if r.message is not None:
        data["message"] = {
            **r.message, "created_at": iso(r.message["created_at"]), "edited_at": iso(r.message["edited_at"]),
        }
    if r.mail_id is not None:
        data["mail"] = {"id": r.mail_id}
    if r.resolution is not None:
        data["resolution"] = {**r.resolution, "at": iso(r.resolution["at"])}
    return data


def to_event(e: QueueEvent) -> Event:
    # The member a report is about never receives it (fanout/hub.py skips their subscriptions),
    # whatever their role: a teacher admin reported is not among those who review the report.
    data = {"report": report_data(e.report), "hidden_from": e.report.about_id}
    return Event(queue_channel(e.queue), e.seq, e.kind, data)


@dataclass(frozen=True, slots=True)
class QueueView:
    queue: int  # a space id, or 0: every project
    viewer_id: int = 0  # who follows it: reports about them are left out of what they are sent


class Moderation:
    def __init__(
        self, pool: asyncpg.Pool, bus: Bus, chat: Chat, report_limiter: Limiter, *, max_replay: int = 5000
    ) -> None:
        self._pool = pool
        self._bus = bus
        self._chat = chat
        self._report_limiter = report_limiter
        self.max_replay = max_replay

    # -- the queues (session subscriptions) ---------------------------------------------------

    async def open(self, viewer: Viewer, channel: str) -> QueueView:
        _, queue = parse_channel(channel)
        view = QueueView(queue, viewer.user.id)
        refusal = self.refusal(viewer, view)
        if queue == PLATFORM_QUEUE and refusal is not None:
            raise Refused(refusal, channel=channel)
        access.space(viewer, queue, refusal, channel=channel)
        return view

    def refusal(self, viewer: Viewer, view: QueueView) -> Refusal | None:
        return decide_queue(viewer.roles_in(view.queue), platform=view.queue == PLATFORM_QUEUE)

    def accepts(self, viewer: Viewer, view: QueueView) -> None:
        return None

    async def head(self, view: QueueView) -> int:
        return await database(store.head(self._pool, view.queue))

    async def replay_page(self, view: QueueView, since: int, limit: int) -> tuple[list[Event], int, bool]:
        page = await database(store.replay(self._pool, view.queue, since, limit))
        events = [to_event(e) for e in page.events if e.report.about_id != view.viewer_id]
        if not events and page.events:  # a page only of reports about them: still a page (resume's cursor)
            return await self.replay_page(view, page.events[-1].seq, limit) if page.more else ([], page.head, False)
        return events, page.head, page.more

    async def backfill(self, channel: str, after: int, upto: int) -> list[Event]:
        _, queue = parse_channel(channel)
        page = await store.replay(self._pool, queue, after, max(upto - after, 0))
        return [to_event(e) for e in page.events if e.seq <= upto]

    async def publish(self, events: list[QueueEvent] | tuple[QueueEvent, ...]) -> None:
        for e in events:
            await self._bus.publish(to_event(e))

    # -- requests -----------------------------------------------------------------------------

    async def report(self, viewer: Viewer, channel: str, message_id: int, note: str) -> dict[str, Any]:
        """Report a message of a room one can read. Reporting it again answers with the first
        report (duplicate: true) and changes nothing."""
        room = await self._chat.room_for(viewer, channel)
        message = await self._chat.message(room, message_id)
        own = message is not None and message.author_id == viewer.user.id
        refusal = decide_report(viewer.roles_in(room.space_id), Area(room.area), own=own)
        if refusal is not None:
            raise Refused(refusal, channel=channel)
        if message is None or message.state != "visible":
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no message {message_id} to report in this room")
        rate_limited(await self._report_limiter.acquire(viewer.user.id), "you are reporting")
        done = await database(store.report_message(
            self._pool, reporter_id=viewer.user.id, space_id=room.space_id, room_id=room.id, message_id=message_id,
            note=note,
        ))
        if done is None:  # hidden or erased meanwhile
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no message {message_id} to report in this room")
        await self.publish(done.events)
        return {"channel": channel, "id": message_id, "report": done.report.id, "duplicate": done.duplicate}

    async def resolve(self, viewer: Viewer, report_id: int, outcome: str, note: str) -> dict[str, Any]:
        space_id = await self._reviewable(viewer, report_id)
        done = await database(store.resolve(
            self._pool, report_id=report_id, space_id=space_id, reviewer_id=viewer.user.id, outcome=outcome, note=note,
        ))
        if done is None:
            raise AlreadyResolved(report_id)
        view, events = done
        await self.publish(events)
        return {"report": report_data(view)}

    async def page(
        self, viewer: Viewer, space_id: int | None, status: str | None, before: int | None, limit: int
    ) -> dict[str, Any]:
        """Reports newest first: of one project (its reviewers), or of every project (platform
        moderators, space_id None)."""
        if space_id is None:
            refusal = decide_queue(viewer.roles_in(PLATFORM_QUEUE), platform=True)
            if refusal is not None:
                raise Refused(refusal)
        else:
            viewer.require(space_id, Action.REVIEW_REPORTS)
        found, more = await database(store.page(
            self._pool, space_id=space_id, status=status, before=before, limit=limit, not_about=viewer.user.id,
        ))
        return {"space": space_id, "reports": [report_data(r) for r in found], "more": more}

    async def projects(self, viewer: Viewer, closed: bool | None, before: int | None, limit: int) -> dict[str, Any]:
        """The projects a platform moderator covers — every one, newest first, as administrators
        list them — so that the platform's queue has its projects beside it. Whoever follows the
        platform's queue (policy.decide_queue): platform moderators alone."""
        refusal = decide_queue(viewer.roles_in(PLATFORM_QUEUE), platform=True)
        if refusal is not None:
            raise Refused(refusal)
        return await project_page(self._pool, closed, before, limit)

    async def _reviewable(self, viewer: Viewer, report_id: int) -> int:
        """The report's project, if the viewer reviews its reports. A report of a project they
        are not in answers like one that does not exist."""
        found = await database(store.space_of(self._pool, report_id))
        if found is None or found[1] == viewer.user.id:  # a report about them: not theirs to review
            return access.report(viewer, report_id, None, None)
        space_id = found[0]
        refusal = decide_queue(viewer.roles_in(space_id), platform=False)
        return access.report(viewer, report_id, space_id, refusal)
