"""What a client is told about itself after `hello` (and by GET /api/me): who the viewer is, their
projects with the rooms they may read and their rights in each, and the limits in force."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from protocol.timestamps import iso
from storage.reports import PLATFORM_QUEUE
from storage.spaces import Room

from ..errors import database
from ..fanout.directory import Viewer
from ..policy import Action, Area, decide_queue, rights
from .bundle import Services
from .chat import room_channel, room_data
from .feed import feed_channel
from .moderation import queue_channel


async def welcome(services: Services, viewer: Viewer) -> dict[str, Any]:
    """The welcome's fields: {"user", "spaces", "limits"} (docs/protocol.md, `welcome`)."""
    directory = services.directory
    space_ids = sorted(viewer.roles)
    readers = services.readers
    rooms = await database(readers.rooms_in(space_ids)) if space_ids else []
    mailboxes = await readers.mailboxes_of(viewer) if space_ids else {}
    by_space: dict[int, list[Room]] = {}
    for room in rooms:
        by_space.setdefault(room.space_id, []).append(room)
    spaces = []
    now = datetime.now(UTC)
    for space_id in space_ids:
        space = await directory.space(space_id)
        role = viewer.roles[space_id]
        visible = []
        for room in by_space.get(space_id, ()):
            may = rights(role, Area(room.area))
            # The directory's copy is the current one (RoomChanged keeps it so); a deleted room
            # is not listed.
            room = directory.cached_room(room.id) or room
            if room.deleted or Action.READ not in may:
                continue
            visible.append({**room_data(room), "rights": sorted(a.value for a in may)})
        reviews = decide_queue(viewer.roles_in(space_id), platform=False) is None
        # The viewer's own mutes in force there, so that a client says so before they write.
        mutes = [{"scope": scope, "until": iso(until)}
                 for scope, until in sorted(viewer.mutes.get(space_id, {}).items()) if until > now]
        spaces.append({
            "id": space.id, "slug": space.slug, "name": space.name, "description": space.description,
            "closed": space.closed, "public": space.public, "language": space.language, "role": role.value,
            "rooms": visible, "mailbox": mailboxes.get(space_id),
            "feed": feed_channel(space_id), "moderation": queue_channel(space_id) if reviews else None,
            "mutes": mutes,
        })
    user = {**viewer.card(), "username": viewer.user.username, "language": viewer.user.language}
    if viewer.is_moderator:
        user["platform_role"] = "moderator"
        user["moderation"] = queue_channel(PLATFORM_QUEUE)
    elif viewer.is_platform_admin:
        user["platform_role"] = "admin"  # the client shows the platform's console (/api/admin/…)
    lim = services.limits
    limits = {
        "max_frame_bytes": lim.max_frame_bytes, "max_text_chars": lim.max_text_chars,
        "max_channels": lim.max_channels, "max_mail_recipients": lim.max_mail_recipients,
        "max_subject_chars": lim.max_subject_chars, "max_note_chars": lim.max_reason_chars, "max_page": lim.max_page,
    }
    return {"user": user, "spaces": spaces, "limits": limits}


async def unread_rooms(services: Services, viewer: Viewer) -> list[dict[str, Any]]:
    """Every room the viewer may read in their projects (the welcome's rooms), with where they
    left it: `read`, their position (a seq); `unread`, the visible messages by others after it
    (at most storage.reads.UNREAD_CAP); `latest`, the id of the room's newest message — a client
    counting new posts from the feed counts only those with a greater id (docs/protocol.md,
    "Unread messages")."""
    space_ids = sorted(viewer.roles)
    if not space_ids:
        return []
    directory = services.directory
    readable = []
    for room in await database(services.readers.rooms_in(space_ids)):
        room = directory.cached_room(room.id) or room
        if not room.deleted and Action.READ in rights(viewer.roles[room.space_id], Area(room.area)):
            readable.append(room)
    found = await services.chat.unread(viewer, readable)
    return [
        {"id": u.room_id, "channel": room_channel(u.room_id), "read": u.read, "unread": u.unread, "latest": u.latest}
        for u in found
    ]
