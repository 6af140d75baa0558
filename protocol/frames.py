"""Typed frames: what clients send (ClientFrame) and what the server sends (ServerFrame).

Every frame on the wire is a map with a `type` key. Client → server: one frame per WebSocket
message. Server → client: every WebSocket message is an *array* of one or more frames, so that
the server can batch whatever is waiting for a socket into one write (docs/protocol.md).

Requests may carry `ref` (an int or short string chosen by the client); the server's `ok` or
`error` answer to that request carries the same `ref`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Ref = int | str | None


# -- client → server --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """Authenticate the connection. `token` may be omitted when the browser's session cookie
    already authenticated the WebSocket handshake."""

    token: str | None = None
    ref: Ref = None
    type = "hello"


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Follow a channel. With `since`, first replay every event with seq > since, in order."""

    channel: str
    since: int | None = None
    ref: Ref = None
    type = "subscribe"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str
    ref: Ref = None
    type = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Post:
    """Post a message. A retry with the same `client_id` returns the first post's seq. In the
    project journal, a post with a `title` is an entry, one with a `parent` (an entry's id) a
    comment on it."""

    channel: str
    text: str
    client_id: str | None = None
    title: str | None = None
    parent: int | None = None
    links: tuple[str, ...] | None = None  # a journal entry's: up to 5 http(s) URLs
    ref: Ref = None
    type = "post"


@dataclass(frozen=True, slots=True)
class Edit:
    channel: str
    id: int
    text: str
    ref: Ref = None
    type = "edit"


@dataclass(frozen=True, slots=True)
class Delete:
    """Erase a message: one's own, or (a moderator of the room's area) anyone's, with a reason."""

    channel: str
    id: int
    reason: str = ""
    ref: Ref = None
    type = "delete"


@dataclass(frozen=True, slots=True)
class Hide:
    """Moderation: hide someone's message from everyone (kept in the audit log)."""

    channel: str
    id: int
    reason: str = ""
    ref: Ref = None
    type = "hide"


@dataclass(frozen=True, slots=True)
class Typing:
    channel: str
    ref: Ref = None
    type = "typing"


@dataclass(frozen=True, slots=True)
class Ping:
    ref: Ref = None
    type = "ping"


# -- TwinMail (client → server). A mail is named by its id alone: the server looks for it only in
# the sender's own mailbox, so there is no frame that names someone else's.

MAIL_FOLDERS = ("inbox", "sent", "archive", "trash")


@dataclass(frozen=True, slots=True)
class SendMail:
    """Send a mail to members of project `space`. With `reply_to` (a mail in your mailbox), the
    mail joins that mail's thread; its subject defaults to "Re: <subject>"."""

    space: int
    to: tuple[int, ...]
    text: str
    subject: str | None = None
    reply_to: int | None = None
    client_id: str | None = None
    ref: Ref = None
    type = "send_mail"


@dataclass(frozen=True, slots=True)
class MarkMail:
    id: int
    read: bool
    ref: Ref = None
    type = "mark_mail"


@dataclass(frozen=True, slots=True)
class MoveMail:
    """Move a mail of your mailbox to `archive` or `trash`, or back (`inbox` for one you
    received, `sent` for one you sent)."""

    id: int
    folder: str
    ref: Ref = None
    type = "move_mail"


@dataclass(frozen=True, slots=True)
class DeleteMail:
    """Delete a mail from your own mailbox for good (the other holders keep theirs)."""

    id: int
    ref: Ref = None
    type = "delete_mail"


@dataclass(frozen=True, slots=True)
class ReportMail:
    """Report a mail you received: it (and nothing else of your mailbox) goes to the project's
    moderation queue with your note."""

    id: int
    note: str = ""
    ref: Ref = None
    type = "report_mail"


@dataclass(frozen=True, slots=True)
class GetMail:
    id: int
    ref: Ref = None
    type = "get_mail"


@dataclass(frozen=True, slots=True)
class ListThreads:
    """A page of your threads with mail in `folder`, most recently active first."""

    space: int
    folder: str = "inbox"
    before: int | None = None
    limit: int = 20
    ref: Ref = None
    type = "mail_threads"


@dataclass(frozen=True, slots=True)
class GetThread:
    """Your mails of one thread, oldest first; page on with `after` = the last id you got."""

    space: int
    thread: int
    after: int | None = None
    limit: int = 100
    ref: Ref = None
    type = "mail_thread"


@dataclass(frozen=True, slots=True)
class ListRecipients:
    """The members of project `space` you may write to."""

    space: int
    ref: Ref = None
    type = "mail_recipients"


@dataclass(frozen=True, slots=True)
class ListReports:
    """Teacher admins and moderators: a page of the project's mail reports (each look is audited)."""

    space: int
    before: int | None = None
    limit: int = 20
    ref: Ref = None
    type = "mail_reports"


# -- moderation (client → server). Reports name a message by its room channel and id; a
# reviewer's frames name reports by id, and a member by user id within a project.

REPORT_STATUSES = ("open", "resolved", "dismissed")
REPORT_OUTCOMES = ("resolved", "dismissed")
MUTE_SCOPE_NAMES = ("home", "activities", "teachers_room", "pupils_corner", "chat", "mail", "all")


@dataclass(frozen=True, slots=True)
class Unhide:
    """Moderation: show a hidden message again."""

    channel: str
    id: int
    reason: str = ""
    ref: Ref = None
    type = "unhide"


@dataclass(frozen=True, slots=True)
class Report:
    """Report a message you can read (not your own) to the project's reviewers."""

    channel: str
    id: int
    note: str = ""
    ref: Ref = None
    type = "report"


@dataclass(frozen=True, slots=True)
class ResolveReport:
    """Reviewers: close an open report as resolved or dismissed, with a note."""

    id: int
    outcome: str
    note: str = ""
    ref: Ref = None
    type = "resolve_report"


@dataclass(frozen=True, slots=True)
class ListModeration:
    """Reviewers: a page of reports, newest first — of project `space`, or (platform moderators,
    no `space`) of every project."""

    space: int | None = None
    status: str | None = None
    before: int | None = None
    limit: int = 20
    ref: Ref = None
    type = "reports"


@dataclass(frozen=True, slots=True)
class Mute:
    """Silence a member of project `space` in `scope` (an area, `mail` or `all`) for `minutes`."""

    space: int
    user_id: int
    scope: str
    minutes: int
    reason: str = ""
    ref: Ref = None
    type = "mute"


@dataclass(frozen=True, slots=True)
class Unmute:
    space: int
    user_id: int
    scope: str
    ref: Ref = None
    type = "unmute"


MEMBER_ROLE_NAMES = ("teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor")


@dataclass(frozen=True, slots=True)
class SetRole:
    """Teacher admins: give a member of project `space` another role (effective at once)."""

    space: int
    user_id: int
    role: str
    ref: Ref = None
    type = "set_role"


@dataclass(frozen=True, slots=True)
class RemoveMember:
    """Remove a member from project `space` (teacher admins; teacher members: pupils they
    invited); your own id: leave the project."""

    space: int
    user_id: int
    ref: Ref = None
    type = "remove_member"


ModerationFrame = Report | ResolveReport | ListModeration | Mute | Unmute | SetRole | RemoveMember

MailFrame = (
    SendMail | MarkMail | MoveMail | DeleteMail | ReportMail | GetMail | ListThreads | GetThread | ListRecipients
    | ListReports
)
ClientFrame = (
    Hello | Subscribe | Unsubscribe | Post | Edit | Delete | Hide | Unhide | Typing | Ping | MailFrame | ModerationFrame
)


# -- server → client --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Welcome:
    """Answer to a good `hello`: who you are, your spaces and rooms, and the limits in force."""

    user: dict[str, Any]
    spaces: list[dict[str, Any]]
    limits: dict[str, int]
    ref: Ref = None
    type = "welcome"


@dataclass(frozen=True, slots=True)
class Ok:
    """Success answer to a request. `data` fields are flattened into the frame."""

    ref: Ref = None
    data: dict[str, Any] = field(default_factory=dict)
    type = "ok"


@dataclass(frozen=True, slots=True)
class Error:
    code: str
    message: str
    ref: Ref = None
    data: dict[str, Any] = field(default_factory=dict)
    type = "error"


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened on a channel, at position `seq` (gap-free per channel)."""

    channel: str
    seq: int
    kind: str
    data: dict[str, Any]
    type = "event"


@dataclass(frozen=True, slots=True)
class TypingNotice:
    """Someone is typing in a channel. Ephemeral: no seq, never replayed."""

    channel: str
    user: dict[str, Any]
    type = "typing"


@dataclass(frozen=True, slots=True)
class Presence:
    """Who is in a channel. Ephemeral. On subscribe: `members` (at most 100 of them) and
    `count`, how many in all. Afterwards: `joined` and `left`, the changes, gathered for up to a
    second so that a class of thirty arriving at once costs each of them one frame, not thirty;
    when more than 100 changed in that second, only the new `count`."""

    channel: str
    members: list[dict[str, Any]] | None = None
    joined: list[dict[str, Any]] | None = None
    left: list[dict[str, Any]] | None = None
    count: int | None = None
    type = "presence"


@dataclass(frozen=True, slots=True)
class RoomNotice:
    """A room's new state, to its live subscribers (it was archived or unarchived). Ephemeral:
    no seq, never replayed — `welcome` lists every room's state."""

    channel: str
    room: dict[str, Any]
    type = "room"


@dataclass(frozen=True, slots=True)
class InvitationNotice:
    """An invitation to you was made, answered or withdrawn (its `status` says which), on
    whichever process: the invitation object as GET /api/invitations lists it. Ephemeral: no
    seq, never replayed — after a reconnect, GET /api/invitations has the pending ones."""

    invitation: dict[str, Any]
    type = "invitation"


@dataclass(frozen=True, slots=True)
class Pong:
    ref: Ref = None
    type = "pong"


ServerFrame = Welcome | Ok | Error | Event | TypingNotice | Presence | RoomNotice | InvitationNotice | Pong
