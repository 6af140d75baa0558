"""One's own account, and a pupil's data in the hands of their school (docs/privacy.md;
docs/protocol.md, "Your account"):

- export: every account downloads its own data — the account, its profile and memberships, the
  messages it wrote, the mail it holds (sent and received copies of its own mailboxes, never
  anyone else's); the teacher admins of a pupil's home project download the pupil's — without
  the mail, which nobody but its holder reads (docs/roles.md);
- erasure: an adult deletes their own account (their password proved again); the teacher admins
  of a pupil's home project erase the pupil's. What goes and what stays is storage/erasure.py's.

Changing one's own password is auth.py's (it makes the new session). Rights:
policy.decide_own_account, policy.decide_pupil_data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import Conflict, LastTeacherAdmin, NotFound, account_data, erasure
from storage import files as files_store
from storage import profiles as profiles_store
from storage.account_data import OwnMessage
from storage.blobs import Blobs
from storage.mail import MailItem

from ..errors import ServiceError, database, rate_limited
from ..fanout.control import Changes, MemberChanged, SessionsRevoked
from ..fanout.directory import Viewer
from ..policy import Role, decide_pupil_data
from ..ratelimit import Limiter
from . import access
from .auth import Auth
from .feed import Feed
from .profiles import profile_data

EXPORT_FORMAT = "twinhub.export.v1"
PAGE = 500  # messages or mails read at a time while an export streams
# Exports are heavy (every message an account ever wrote): ten in a row, then one a minute, per
# account asking (a teacher admin answering a class's requests is one account).
EXPORTS_IN_A_ROW = 10
EXPORT_REFILL = 1 / 60
MAX_REASON = 500

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Export:
    """An export, for the edge to write as one JSON document: the small part first (`head`),
    then the messages and the mail as pages, read while the document is being sent. `mail` None:
    not included (another member's mailbox: `mail_note` says so in the document)."""

    head: dict[str, Any]
    messages: AsyncIterator[list[dict[str, Any]]]
    mail: AsyncIterator[list[dict[str, Any]]] | None
    mail_note: dict[str, Any] | None = None


def message_data(m: OwnMessage) -> dict[str, Any]:
    state = "deleted" if m.deleted_at else "hidden" if m.hidden_at else "visible"
    data: dict[str, Any] = {
        "id": m.id, "project": m.space_id, "room": {"id": m.room_id, "name": m.room_name, "area": m.area},
        "seq": m.seq, "state": state, "text": m.text, "created_at": iso(m.created_at), "edited_at": iso(m.edited_at),
    }
    if m.title is not None or m.parent_id is not None or m.links is not None:
        data.update(title=m.title, parent_id=m.parent_id, links=list(m.links or ()))
    return data


def mail_data(item: MailItem) -> dict[str, Any]:
    def person(p: Any) -> dict[str, Any]:
        return {"id": p.id, "name": p.name, "school": p.school}

    return {
        "id": item.mail_id, "project": item.space_id, "thread": item.thread_id, "reply_to": item.reply_to,
        "folder": item.folder, "origin": item.origin, "read": item.read, "from": person(item.sender),
        "to": [person(p) for p in item.recipients], "subject": item.subject, "text": item.text,
        "created_at": iso(item.created_at),
    }


async def _pages(read: Callable[[Any], Awaitable[list[T]]], key: Callable[[T], Any], start: Any,
                 render: Callable[[T], dict[str, Any]]) -> AsyncIterator[list[dict[str, Any]]]:
    """Every page `read(after)` gives, rendered, from `start` on, each page's last key the next `after`."""
    after = start
    while True:
        found = await database(read(after), undone="the export stopped short: download it again")
        if found:
            yield [render(x) for x in found]
            after = key(found[-1])
        if len(found) < PAGE:
            return


class Accounts:
    def __init__(
        self, pool: asyncpg.Pool, changes: Changes, auth: Auth, feed: Feed, blobs: Blobs, *, export_limiter: Limiter,
    ) -> None:
        self._pool = pool
        self._blobs = blobs
        self._changes = changes
        self._auth = auth
        self._feed = feed
        self._export_limiter = export_limiter

    # -- export ---------------------------------------------------------------------------------

    async def export_own(self, viewer: Viewer) -> Export:
        """The viewer's own data, theirs to keep (every account, pupils included: a pupil's own
        export is the only one that holds their mail). Raises rate_limited past the budget."""
        user_id = viewer.user.id
        rate_limited(await self._export_limiter.acquire(user_id), "you are exporting")
        head = await self._head(user_id, None, viewer.user.id)
        messages = _pages(lambda after: account_data.messages(self._pool, user_id, after, PAGE), lambda m: m.id, 0,
                          message_data)
        mail = _pages(lambda after: account_data.mail(self._pool, user_id, after, PAGE),
                      lambda i: (i.mailbox_id, i.mail_id), (0, 0), mail_data)
        return Export(head, messages, mail)

    async def export_pupil(self, viewer: Viewer, space_id: int, user_id: int) -> Export:
        """A pupil's data, for the teacher admins of the pupil's home project (a family's request
        to the school): the account, its profile, its memberships and the messages it wrote in
        this project — not its mail (nobody reads another member's mailbox: the pupil's own
        export holds it), nor its words in other projects (they are those projects')."""
        await self._may_handle_pupil(viewer, space_id, user_id)
        rate_limited(await self._export_limiter.acquire(viewer.user.id), "you are exporting")
        head = await self._head(user_id, space_id, viewer.user.id)
        messages = _pages(lambda after: account_data.messages(self._pool, user_id, after, PAGE, space_id),
                          lambda m: m.id, 0, message_data)
        note = {"included": False, "why": "nobody reads another member's mailbox: the pupil's own export "
                "(GET /api/account/export, signed in as the pupil) holds their mail"}
        return Export(head, messages, None, note)

    async def _head(self, user_id: int, space_id: int | None, by: int) -> dict[str, Any]:
        found = await database(account_data.account(self._pool, user_id))
        if found is None:
            raise ServiceError(ErrorCode.NOT_FOUND, "this account no longer exists")
        # In this project only, for a teacher's export of a pupil (`space_id`); all of them for one's own.
        memberships = await database(account_data.memberships(self._pool, user_id, space_id))
        profile = await database(profiles_store.get(self._pool, user_id))
        return {
            "format": EXPORT_FORMAT, "exported_at": iso(datetime.now(UTC)), "exported_by": by,
            "account": {
                "id": found.id, "username": found.username, "name": found.display_name, "school": found.school,
                "kind": found.kind, "home_project": found.home_space_id, "platform_role": found.platform_role,
                "created_at": iso(found.created_at), "language": found.language,
            },
            "profile": profile_data(profile),
            "memberships": [
                {"project": m.space_id, "name": m.space_name, "role": m.role, "joined_at": iso(m.joined_at)}
                for m in memberships
            ],
        }

    # -- erasure --------------------------------------------------------------------------------

    async def delete_own(self, viewer: Viewer, password: Any, address: str) -> dict[str, Any]:
        """An adult deletes their own account, their password proved again (throttled as logins
        are). Their sessions end and their sockets close on every process. A pupil's account is
        erased by their home project's teacher admins (forbidden here); the last teacher admin of
        a project names another one first (forbidden, with the projects)."""
        creds = await self._auth.prove(viewer.user, password, address, "delete")
        try:
            erased = await database(erasure.erase(
                self._pool, user_id=viewer.user.id, actor_id=viewer.user.id, expected_hash=creds.password_hash,
            ))
        except LastTeacherAdmin as exc:
            raise ServiceError(ErrorCode.FORBIDDEN, "you are the last teacher admin of project(s) "
                               f"{', '.join(map(str, exc.spaces))}: name another teacher admin there first") from None
        except (NotFound, Conflict):  # deleted, or its password changed, by a request that won the race
            raise ServiceError(ErrorCode.NOT_FOUND, "this account no longer exists as it was: "
                               "nothing was deleted by this request") from None
        await self._told(erased)
        return {"id": viewer.user.id, "erased": True}

    async def erase_pupil(self, viewer: Viewer, space_id: int, user_id: int, reason: Any) -> dict[str, Any]:
        """The teacher admins of a pupil's home project erase the pupil's account (audited in
        every project it was in, with `reason`); its sockets close on every process. Of several
        erasures at once, one erases and the others answer not_found, as for any erased account."""
        if reason is None:
            reason = ""
        if not isinstance(reason, str):
            raise ServiceError(ErrorCode.INVALID_FIELD, "reason must be a string")
        if len(reason) > MAX_REASON:
            raise ServiceError(ErrorCode.TOO_LARGE, f"a reason is at most {MAX_REASON} characters")
        await self._may_handle_pupil(viewer, space_id, user_id)
        try:
            erased = await database(erasure.erase(
                self._pool, user_id=user_id, actor_id=viewer.user.id, reason=reason, by_project=space_id,
            ))
        except NotFound:
            raise ServiceError(ErrorCode.NOT_FOUND, "no such member in this project") from None
        await self._told(erased)
        return {"id": user_id, "erased": True}

    async def _may_handle_pupil(self, viewer: Viewer, space_id: int, user_id: int) -> None:
        facts = await database(erasure.account_in(self._pool, space_id, user_id))
        refusal = decide_pupil_data(
            viewer.roles_in(space_id), Role(facts.role) if facts and facts.role else None,
            facts.kind if facts else None, home=facts is not None and facts.home_space_id == space_id,
        )
        access.space(viewer, space_id, refusal)

    async def _told(self, erased: erasure.Erased) -> None:
        """Every process, after the commit: the account's sockets close first (4001), then each
        project it left reloads who is in it (rosters, subscriptions, the public stream's names).
        And the bytes of the files they added leave the store, where no other upload holds them."""
        for space_id, digest in erased.files:
            if not await database(files_store.is_stored(self._pool, space_id, digest)):
                await self._blobs.delete(files_store.blob_key(space_id, digest))
        await self._changes.send(SessionsRevoked(erased.user_id))
        for space_id in erased.spaces:
            await self._changes.send(MemberChanged(space_id, erased.user_id))
            await self._feed.announce(space_id)
