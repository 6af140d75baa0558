"""The request table: every client frame that asks a service for something, with the function
that carries it out — the one dispatcher for both transports. A WebSocket frame (ws/session.py)
and an HTTP request decoded into the same frame (web/api.py's frame routes) look up the same row,
so a new request is a frame, a decoder entry and one row here (docs/architecture.md).

Each row's handler takes (services, viewer, frame) and returns the fields of the `ok` answer (or
the HTTP body); it raises ServiceError when refused. `concurrent` rows run beside the
connection's other requests (a window of posts in flight shares group commits); the others run
one at a time, in order. The frames that only make sense on a connection — hello, ping,
subscribe, unsubscribe, typing — are the session's own (SESSION_FRAMES), and
tests/realtime/test_requests.py fails when a client frame type is in neither.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from protocol import (
    ClientFrame,
    Delete,
    DeleteMail,
    Edit,
    ErrorCode,
    GetMail,
    GetThread,
    Hello,
    Hide,
    ListModeration,
    ListRecipients,
    ListReports,
    ListThreads,
    MarkMail,
    MoveMail,
    Mute,
    Ping,
    Post,
    RemoveMember,
    Report,
    ReportMail,
    ResolveReport,
    SendMail,
    SetRole,
    Subscribe,
    Typing,
    Unhide,
    Unmute,
    Unsubscribe,
)
from storage.mail import Change

from ..errors import ServiceError
from ..fanout.directory import Viewer
from .bundle import Services

Answer = dict[str, Any]
Handler = Callable[[Services, Viewer, Any], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Row:
    handler: Handler
    concurrent: bool = False


# The frames a session answers itself: they need its own state (authentication, subscriptions).
SESSION_FRAMES: frozenset[type] = frozenset({Hello, Ping, Subscribe, Unsubscribe, Typing})


async def _post(s: Services, viewer: Viewer, f: Post) -> Answer:
    posted = await s.chat.post(viewer, f.channel, f.text, f.client_id, f.title, f.parent, f.links)
    e = posted.event
    return {"channel": e.channel, "seq": e.seq, "id": e.data["message"]["id"], "duplicate": posted.duplicate}


def _message_change(act: Callable[[Services], Callable[..., Awaitable[Any]]], *fields: str) -> Handler:
    """A change to one message of a room (edit, delete, hide, unhide): answered by the event's
    channel and seq and the message's id."""

    async def handler(s: Services, viewer: Viewer, f: Any) -> Answer:
        e = await act(s)(viewer, f.channel, f.id, *(getattr(f, name) for name in fields))
        return {"channel": e.channel, "seq": e.seq, "id": f.id}

    return handler


async def _send_mail(s: Services, viewer: Viewer, f: SendMail) -> Answer:
    sent = await s.mail.send(viewer, f.space, f.to, f.text, f.subject, f.reply_to, f.client_id)
    return {
        "id": sent.mail_id, "thread_id": sent.thread_id, "channel": sent.channel, "seq": sent.seq,
        "duplicate": sent.duplicate,
    }


async def _get_mail(s: Services, viewer: Viewer, f: GetMail) -> Answer:
    return {"mail": await s.mail.get(viewer, f.id)}


TABLE: dict[type, Row] = {
    # rooms (services/chat.py)
    Post: Row(_post, concurrent=True),
    Edit: Row(_message_change(lambda s: s.chat.edit, "text")),
    Delete: Row(_message_change(lambda s: s.chat.delete, "reason")),
    Hide: Row(_message_change(lambda s: s.chat.hide, "reason")),
    Unhide: Row(_message_change(lambda s: s.chat.unhide, "reason")),
    # TwinMail (services/mail.py)
    SendMail: Row(_send_mail, concurrent=True),
    MarkMail: Row(lambda s, v, f: s.mail.change(v, f.id, Change(read=f.read))),
    MoveMail: Row(lambda s, v, f: s.mail.change(v, f.id, Change(folder=f.folder))),
    DeleteMail: Row(lambda s, v, f: s.mail.change(v, f.id, Change(delete=True))),
    ReportMail: Row(lambda s, v, f: s.mail.report(v, f.id, f.note)),
    GetMail: Row(_get_mail),
    ListThreads: Row(lambda s, v, f: s.mail.threads(v, f.space, f.folder, f.before, f.limit)),
    GetThread: Row(lambda s, v, f: s.mail.thread(v, f.space, f.thread, f.after, f.limit)),
    ListRecipients: Row(lambda s, v, f: s.mail.recipients(v, f.space)),
    ListReports: Row(lambda s, v, f: s.mail.reports(v, f.space, f.before, f.limit)),
    # reports and the moderation queues (services/moderation.py)
    Report: Row(lambda s, v, f: s.moderation.report(v, f.channel, f.id, f.note)),
    ResolveReport: Row(lambda s, v, f: s.moderation.resolve(v, f.id, f.outcome, f.note)),
    ListModeration: Row(lambda s, v, f: s.moderation.page(v, f.space, f.status, f.before, f.limit)),
    # members and mutes (services/projects.py)
    Mute: Row(lambda s, v, f: s.projects.mute(v, f.space, f.user_id, f.scope, f.minutes, f.reason)),
    Unmute: Row(lambda s, v, f: s.projects.unmute(v, f.space, f.user_id, f.scope)),
    SetRole: Row(lambda s, v, f: s.projects.change_member(v, f.space, f.user_id, f.role)),
    RemoveMember: Row(lambda s, v, f: s.projects.change_member(v, f.space, f.user_id, None)),
}


def row_for(frame: ClientFrame) -> Row:
    """The frame's row; `unknown_type` for a frame no service answers (the one place it is said)."""
    row = TABLE.get(type(frame))
    if row is None:
        raise ServiceError(ErrorCode.UNKNOWN_TYPE, f"frame type {frame.type} is not handled here")
    return row


async def answer(services: Services, viewer: Viewer, frame: ClientFrame) -> Answer:
    """Carry out a request frame for `viewer`; returns the fields of its answer."""
    return await row_for(frame).handler(services, viewer, frame)
