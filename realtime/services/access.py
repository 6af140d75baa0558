""""Not yours" reads as "not found", written once (Zulip's `access_stream_by_id` answers "Invalid
channel ID" for both). A project the viewer is not in — and so its rooms, channels, reports,
invitations and members — does not exist for them: the answer is the same `not_found` as for an
id that was never used, so that a prober learns nothing. Inside their projects, the policy's
refusal is said as it is (`forbidden`, `space_closed`, …): they know the thing exists.

Each helper returns the object, or raises the masked error.
"""

from __future__ import annotations

from protocol import ErrorCode
from storage.spaces import Room

from ..channels import ROOM, parse
from ..errors import NotFound, Refused, database
from ..fanout.directory import Directory, Viewer
from ..policy import Refusal


def no_channel(channel: str) -> NotFound:
    return NotFound(f"there is no channel {channel} in your projects", channel=channel)


def space(viewer: Viewer, space_id: int, refusal: Refusal | None, *, channel: str | None = None) -> None:
    """Raise `refusal` (what the policy said of the viewer's request in project `space_id`), as
    `not_found` when the viewer is not in the project."""
    if refusal is None:
        return
    if not viewer.roles_in(space_id) or refusal.code is ErrorCode.NOT_MEMBER:
        raise no_channel(channel) if channel else NotFound(f"there is no project {space_id} in your projects")
    raise Refused(refusal, channel=channel)


async def room(directory: Directory, viewer: Viewer, channel: str) -> Room:
    """The room behind `channel` if the viewer may know of it (they are in its project). A
    deleted room answers exactly like one that never existed, to everyone."""
    kind, room_id = parse(channel)
    found = directory.cached_room(room_id) if kind is ROOM else None
    if found is None and kind is ROOM:
        found = await database(directory.room(room_id))
    if found is None or found.deleted or not viewer.roles_in(found.space_id):
        raise no_channel(channel)
    return found


async def room_of(directory: Directory, viewer: Viewer, space_id: int, room_id: int) -> Room:
    """Room `room_id` of project `space_id` (an HTTP path naming both), if the viewer is in the
    project: a project they are not in, a room of another project, a deleted room and one that
    never existed all answer not_found (the last three the same sentence)."""
    if not viewer.roles_in(space_id):
        raise NotFound(f"there is no project {space_id} in your projects")
    found = directory.cached_room(room_id) or await database(directory.room(room_id))
    if found is None or found.deleted or found.space_id != space_id:
        raise NotFound(f"there is no room {room_id} in project {space_id}")
    return found


def report(viewer: Viewer, report_id: int, space_id: int | None, refusal: Refusal | None) -> int:
    """The project of report `report_id` (None: there is no such report), if the viewer reviews its
    reports; one of a project they are not in answers like one that does not exist."""
    if space_id is None or (refusal is not None and (refusal.code is ErrorCode.NOT_MEMBER
                                                     or not viewer.roles_in(space_id))):
        raise NotFound(f"there is no report {report_id} that you review")
    if refusal is not None:
        raise Refused(refusal)
    return space_id
