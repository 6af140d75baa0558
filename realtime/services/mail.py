"""The TwinMail service: send, reply, read, file, delete for oneself, report — and each member's
mailbox as a resumable channel `mail:<mailbox id>`.

Privacy comes first. Every call works on the caller's own mailbox: the owner is always the
authenticated user, never a parameter, and storage has no query that takes a mailbox without
its owner. Asking for a mail one does not hold — someone else's, a deleted one, one that never
existed — answers the same `not_found`, so a prober learns nothing. The one exception is a mail
its recipient reports (`report`): teacher admins and moderators then see that one mail, and the
audit log records each look.

Who may write to whom is realtime.policy.MAIL_TO, checked against the space's roster as it is
now. Sends go through a group-commit writer of their own: "ok" means every mailbox has it; then
the events are published, one per mailbox (the sender's other sockets see it in Sent).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from protocol import (
    ErrorCode,
    Event,
    Limits,
)
from protocol.timestamps import iso
from storage import Conflict, mail_reports
from storage import mail as store
from storage.mail import Change, MailboxEvent, MailItem, NewMail, Person, SendResult
from storage.writer import GroupCommitWriter

from ..channels import MAIL
from ..channels import parse as parse_channel
from ..errors import RecipientsRefused, ServiceError, database, rate_limited, write
from ..fanout.bus import Bus
from ..fanout.directory import Directory, Viewer
from ..fanout.shield import shield_mail
from ..policy import Action, Refusal, Role, badge, decide_mail, sees_pupils
from ..ratelimit import Limiter
from . import access
from .moderation import to_event as queue_event


def mail_channel(mailbox_id: int) -> str:
    return MAIL.name_of(mailbox_id)


def _card(p: Person) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "school": p.school}


def _sender_card(p: Person) -> dict[str, Any]:
    """Who wrote or got a mail, with the badge of their role in the project (a pupil tells a
    teacher's mail from a pupil's who took a teacher's name; a visitor's copy is shielded by it)."""
    return {**_card(p), "role": badge((Role(p.role),)) if p.role else None}


def _shown(viewer: Viewer, space_id: int, mail: dict[str, Any]) -> dict[str, Any]:
    """A mail as this holder may see it: a visitor never learns who the pupils are (policy.sees_pupils)."""
    return mail if sees_pupils(viewer.roles_in(space_id)) else shield_mail(mail)


def item_data(item: MailItem) -> dict[str, Any]:
    """The wire form of a mail as its owner holds it. A deleted one carries no content."""
    return {
        "id": item.mail_id,
        "space": item.space_id,
        "thread_id": item.thread_id,
        "reply_to": item.reply_to,
        "from": _sender_card(item.sender),
        "to": [_sender_card(p) for p in item.recipients],
        "subject": item.subject,
        "text": item.text,
        "created_at": iso(item.created_at),
        "folder": item.folder,
        "read": item.read,
        "state": "deleted" if item.deleted else "visible",
        "client_id": item.client_id,
    }


def _send_events(new: NewMail, result: SendResult) -> list[Event]:
    """The events of a mail just stored, one per holder. The mail's wire form is built once and
    shared by every recipient's event (events are only read, then encoded)."""
    assert result.sent is not None
    core = {
        "id": result.mail_id, "space": new.space_id, "thread_id": result.thread_id, "reply_to": new.reply_to,
        "from": _sender_card(new.sender), "to": [_sender_card(p) for p, _ in new.recipients], "subject": new.subject,
        "text": new.text, "created_at": iso(result.created_at),
    }
    sent = {**core, "folder": "sent", "read": True, "state": "visible", "client_id": new.client_id}
    received = {**core, "folder": "inbox", "read": False, "state": "visible", "client_id": None}
    d = result.sent
    events = [Event(mail_channel(d.mailbox_id), d.seq, "mail.sent", {"mail": sent, "unread": _unread(d.unread)})]
    for d in result.received:
        events.append(
            Event(mail_channel(d.mailbox_id), d.seq, "mail.received", {"mail": received, "unread": _unread(d.unread)})
        )
    return events


def _unread(counts: tuple[int, int, int, int]) -> dict[str, int]:
    return dict(zip(store.FOLDERS, counts, strict=True))


def to_event(e: MailboxEvent) -> Event:
    return Event(mail_channel(e.mailbox_id), e.seq, e.kind, {"mail": item_data(e.item), "unread": e.unread})


@dataclass(frozen=True, slots=True)
class OwnMailbox:
    """A subscription's meta: whose mailbox, in which space."""

    id: int
    space_id: int
    owner_id: int


@dataclass(frozen=True, slots=True)
class Sent:
    mail_id: int
    thread_id: int
    channel: str
    seq: int
    duplicate: bool


_NO_MAIL = "you have no mail {} in your mailboxes"


class Mail:
    def __init__(
        self,
        pool: asyncpg.Pool,
        writer: GroupCommitWriter[NewMail, SendResult],
        bus: Bus,
        directory: Directory,
        limits: Limits,
        *,
        teacher_limiter: Limiter,
        pupil_limiter: Limiter,
        filing_limiter: Limiter,
        max_replay: int = 5000,
    ) -> None:
        self._filing_limiter = filing_limiter  # marking, moving, deleting: a member's post budget
        self._pool = pool
        self._writer = writer
        self._bus = bus
        self._directory = directory
        self._limits = limits
        self._teacher_limiter = teacher_limiter
        self._pupil_limiter = pupil_limiter  # pupils and visitors: stricter
        self.max_replay = max_replay
        # mailbox id -> owner id, for the mailboxes followed here (the hub's gap filler reads
        # a mailbox's log as its owner, like everything else)
        self._owners: dict[int, int] = {}

    @staticmethod
    def _spaces(viewer: Viewer) -> list[int]:
        """The spaces whose mailbox the viewer may open: those they are a member of, now."""
        return list(viewer.roles)

    def _role(self, viewer: Viewer, space_id: int) -> Role:
        role = viewer.roles.get(space_id)
        if role is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no project {space_id} in your projects")
        return role

    # -- the mailbox channel (session subscriptions) ------------------------------------------

    async def open(self, viewer: Viewer, channel: str) -> OwnMailbox:
        """The viewer's own mailbox behind `channel`. Anyone else's, and one that does not exist,
        answer the same not_found."""
        _, mailbox_id = parse_channel(channel)
        roster_hit = None
        for space_id in self._spaces(viewer):
            member = (await database(self._directory.roster(space_id))).get(viewer.user.id)
            if member is not None and member.mailbox_id == mailbox_id:
                roster_hit = OwnMailbox(mailbox_id, space_id, viewer.user.id)
                break
        if roster_hit is None:
            raise access.no_channel(channel)
        self._owners[mailbox_id] = viewer.user.id
        return roster_hit

    def accepts(self, viewer: Viewer, box: OwnMailbox) -> None:
        return None  # every event of the channel goes to every subscriber

    def refusal(self, viewer: Viewer, box: OwnMailbox) -> Refusal | None:
        """Whether the viewer may still follow their mailbox (they must still be a member)."""
        if box.space_id not in viewer.roles:
            return Refusal(ErrorCode.NOT_MEMBER, "you are no longer a member of this project")
        return None

    async def head(self, box: OwnMailbox) -> int:
        return await database(store.head(self._pool, box.owner_id, box.id))

    async def replay_page(self, box: OwnMailbox, since: int, limit: int) -> tuple[list[Event], int, bool]:
        r = await database(store.replay(self._pool, box.owner_id, box.id, since, limit))
        return [to_event(e) for e in r.events], r.head, r.more

    async def backfill(self, channel: str, after: int, upto: int) -> list[Event]:
        """Committed events after..upto of a mailbox channel (the hub's gap filler)."""
        _, mailbox_id = parse_channel(channel)
        owner = self._owners.get(mailbox_id)
        if owner is None:
            return []
        r = await store.replay(self._pool, owner, mailbox_id, after, max(upto - after, 0))
        return [to_event(e) for e in r.events if e.seq <= upto]

    async def mailboxes(self, viewer: Viewer) -> dict[int, dict[str, Any]]:
        """space id -> the viewer's mailbox there: channel, head seq and unread counts (one
        snapshot: subscribe with since=seq to miss nothing)."""
        found = await database(store.mailboxes_of(self._pool, viewer.user.id, self._spaces(viewer)))
        return {b.space_id: {"channel": mail_channel(b.id), "seq": b.last_seq, "unread": b.unread} for b in found}

    # -- sending ------------------------------------------------------------------------------

    async def send(
        self,
        viewer: Viewer,
        space_id: int,
        to: tuple[int, ...],
        text: str,
        subject: str | None,
        reply_to: int | None,
        client_id: str | None,
    ) -> Sent:
        # The frame's shape (ids, lengths, blank text) was checked by the decoder, for HTTP too.
        role = self._role(viewer, space_id)
        try:
            return await self._send(viewer, space_id, role, to, text, subject, reply_to, client_id)
        except ServiceError as refused:
            # A resend of a mail that was sent is answered the original, whatever happened since
            # (budget spent, project closed, a recipient gone, a mute): the client that lost its
            # `ok` must not be told "no" about a mail that went (docs/protocol.md, "Retrying").
            # Looked up only when refusing: the hot path pays nothing for it.
            if client_id is None or refused.code in (ErrorCode.UNAVAILABLE, ErrorCode.INTERNAL):
                raise
            sent = await database(store.original(self._pool, viewer.user.id, client_id))
            if sent is None:
                raise
            return Sent(sent.mail_id, sent.thread_id, mail_channel(sent.sender_mailbox), sent.seq, True)

    async def _send(
        self, viewer: Viewer, space_id: int, role: Role, to: tuple[int, ...], text: str, subject: str | None,
        reply_to: int | None, client_id: str | None,
    ) -> Sent:
        if viewer.user.id in to:
            raise ServiceError(ErrorCode.INVALID_FIELD, "you cannot send mail to yourself")
        directory = self._directory
        roster = directory.cached_roster(space_id) or await database(directory.roster(space_id))
        sender = roster.get(viewer.user.id)
        if sender is None:  # the roster is current; the viewer's roles were a moment older
            raise ServiceError(ErrorCode.NOT_MEMBER, "you are no longer a member of this project")
        space = self._directory.cached_space(space_id) or await database(self._directory.space(space_id))
        self._check_recipients(role, roster, to, space.closed)
        viewer.require_not_muted(space_id, "mail")
        thread_id = None
        if reply_to is not None:
            original = await database(store.get_item(self._pool, viewer.user.id, [space_id], reply_to))
            if original is None:
                raise ServiceError(ErrorCode.NOT_FOUND, _NO_MAIL.format(reply_to) + " to reply to")
            thread_id = original.thread_id
            if subject is None:
                base = original.subject or ""
                subject = base if base.lower().startswith("re:") else f"Re: {base}"
        if subject is None or not subject.strip():
            raise ServiceError(ErrorCode.INVALID_FIELD, "a new mail needs a subject")
        limiter = self._teacher_limiter if role in (Role.TEACHER_ADMIN, Role.TEACHER_MEMBER) else self._pupil_limiter
        rate_limited(await limiter.acquire(viewer.user.id), "you are sending mail")
        recipients = tuple((replace(roster[i].person, role=roster[i].role.value), roster[i].mailbox_id) for i in to)
        new = NewMail(
            space_id, replace(sender.person, role=role.value), sender.mailbox_id, recipients,
            subject.strip()[: self._limits.max_subject_chars], text, thread_id, reply_to, client_id,
        )
        result = await write(self._writer.submit(new), undone="the mail was not sent")
        if not result.duplicate:
            for event in _send_events(new, result):
                await self._bus.publish(event)
        return Sent(result.mail_id, result.thread_id, mail_channel(result.sender_mailbox), result.seq, result.duplicate)

    @staticmethod
    def _check_recipients(role: Role, roster: dict[Any, Any], to: tuple[int, ...], closed: bool) -> None:
        """Every recipient must be someone this sender may write to, or nothing is sent."""
        refused: dict[ErrorCode, tuple[Refusal, list[int]]] = {}
        for user_id in to:
            member = roster.get(user_id)
            refusal = decide_mail(role, member.role if member else None, closed=closed)
            if refusal is not None:
                refused.setdefault(refusal.code, (refusal, []))[1].append(user_id)
        for code in (ErrorCode.NOT_FOUND, ErrorCode.FORBIDDEN, ErrorCode.SPACE_CLOSED, ErrorCode.NOT_MEMBER):
            if code in refused:
                refusal, who = refused[code]
                message = refusal.message
                if code is ErrorCode.NOT_FOUND:
                    message = f"no member {', '.join(map(str, who))} in this project; nothing was sent"
                elif code is ErrorCode.FORBIDDEN:
                    message = f"{refusal.message}; nothing was sent"
                raise RecipientsRefused(code, message, who)

    # -- one's own mail -----------------------------------------------------------------------

    async def get(self, viewer: Viewer, mail_id: int) -> dict[str, Any]:
        item = await database(store.get_item(self._pool, viewer.user.id, self._spaces(viewer), mail_id))
        if item is None:
            raise ServiceError(ErrorCode.NOT_FOUND, _NO_MAIL.format(mail_id))
        return _shown(viewer, item.space_id, item_data(item))

    async def change(self, viewer: Viewer, mail_id: int, what: Change) -> dict[str, Any]:
        """Mark read/unread, move, or delete for oneself. Filing one's mail stays possible in a
        closed project (it changes nobody else's view). Returns the `ok` fields."""
        # Each change is an event to the owner's every socket: it takes from the post budget.
        rate_limited(await self._filing_limiter.acquire(viewer.user.id), "you are filing mail")
        try:
            done = await database(store.change(self._pool, viewer.user.id, self._spaces(viewer), mail_id, what))
        except Conflict:
            raise ServiceError(
                ErrorCode.INVALID_FIELD, "a mail goes back to the folder it came from: inbox if received, sent if sent"
            ) from None
        if done is None:
            raise ServiceError(ErrorCode.NOT_FOUND, _NO_MAIL.format(mail_id))
        item, event = done
        answer: dict[str, Any] = {"id": mail_id, "channel": mail_channel(item.mailbox_id), "changed": event is not None}
        if event is not None:
            await self._bus.publish(to_event(event))
            answer["seq"] = event.seq
            answer["unread"] = event.unread
        return answer

    async def threads(
        self, viewer: Viewer, space_id: int, folder: str, before: int | None, limit: int
    ) -> dict[str, Any]:
        self._role(viewer, space_id)
        found, box = await database(store.threads(self._pool, viewer.user.id, space_id, folder, before, limit + 1))
        page = found[:limit]
        mailbox = None if box is None else {"channel": mail_channel(box.id), "seq": box.last_seq, "unread": box.unread}
        return {
            "space": space_id, "folder": folder, "mailbox": mailbox,
            "threads": [
                {"thread_id": t.thread_id, "mails": t.mails, "unread": t.unread, "last": _shown(viewer, space_id, item_data(t.last))}
                for t in page
            ],
            "more": len(found) > limit,
        }

    async def thread(
        self, viewer: Viewer, space_id: int, thread_id: int, after: int | None, limit: int
    ) -> dict[str, Any]:
        self._role(viewer, space_id)
        mails = await database(store.thread(self._pool, viewer.user.id, space_id, thread_id, after, limit + 1))
        if not mails and after is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"you have no thread {thread_id} in this project's mailbox")
        return {
            "space": space_id, "thread_id": thread_id, "mails": [_shown(viewer, space_id, item_data(m)) for m in mails[:limit]],
            "more": len(mails) > limit,
        }

    async def recipients(self, viewer: Viewer, space_id: int) -> dict[str, Any]:
        """Who the viewer may write to in the space (the address book)."""
        role = self._role(viewer, space_id)
        roster = await database(self._directory.roster(space_id))
        members = [
            {**_card(m.person), "role": m.role.value}
            for uid, m in roster.items()
            if uid != viewer.user.id and decide_mail(role, m.role) is None
        ]
        return {"space": space_id, "members": members}

    # -- reports ------------------------------------------------------------------------------

    async def report(self, viewer: Viewer, mail_id: int, note: str) -> dict[str, Any]:
        """Report a mail one received. Works in a closed project too: safeguarding does not wait."""
        if len(note) > self._limits.max_reason_chars:
            raise ServiceError(ErrorCode.TOO_LARGE, f"a note is at most {self._limits.max_reason_chars} characters")
        found = await database(mail_reports.report(self._pool, viewer.user.id, self._spaces(viewer), mail_id, note))
        if found is None:
            raise ServiceError(ErrorCode.NOT_FOUND, _NO_MAIL.format(mail_id) + " that you received")
        for e in found.events:
            await self._bus.publish(queue_event(e))
        return {"id": mail_id, "report": found.id, "duplicate": found.duplicate}

    async def reports(self, viewer: Viewer, space_id: int, before: int | None, limit: int) -> dict[str, Any]:
        viewer.require(space_id, Action.REVIEW_REPORTS)
        found, more = await database(mail_reports.reports_for_review(self._pool, space_id, viewer.user.id, before, limit))
        return {
            "space": space_id,
            "reports": [
                {
                    "id": r.id, "reporter": _card(r.reporter), "note": r.note, "created_at": iso(r.created_at),
                    "mail": _reported(r.mail),
                }
                for r in found
            ],
            "more": more,
        }


def _reported(item: MailItem) -> dict[str, Any]:
    """The reported mail as reviewers see it: the mail, none of its reporter's mailbox state."""
    return {
        "id": item.mail_id, "thread_id": item.thread_id, "from": _sender_card(item.sender),
        "to": [_sender_card(p) for p in item.recipients], "subject": item.subject, "text": item.text,
        "created_at": iso(item.created_at),
    }
