"""HTTP API: login and logout, who am I, room history, rooms made, renamed, archived and deleted,
closing a project, TwinMail, moderation, bots, the public view, the browser client, health and
metrics (the routes about a project's people are in members.py, one's own account and profiles in
account.py, the platform administrators' in platform.py; what every route shares in http.py).

Every error answers {"error": {"code": ..., "message": ...}} with the same stable codes as the
WebSocket protocol (docs/protocol.md, "HTTP API"). A request authenticates with
`Authorization: Bearer <token>` or, from a browser, with the HttpOnly session cookie; a
cookie-authenticated POST must come from the server's own origin (no cross-site requests).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import NotModifiedResponse, StaticFiles

from protocol import ErrorCode, ProtocolError, frame_from_map
from protocol.timestamps import iso

from ..channels import ROOM
from ..errors import RateLimited, ServiceError
from ..handshake import SESSION_COOKIE
from ..services.requests import answer
from ..services.welcome import unread_rooms, welcome
from . import account as api_account
from . import files as api_files
from . import members as api_members
from . import platform as api_platform
from .http import (
    int_param,
    int_param_path,
    json_body,
    page_params,
    refuse_foreign_origin,
    token_of,
    viewer_of,
    web_of,
)
from .metrics import may_read_metrics, render


async def login(request: Request) -> Response:
    # Login CSRF: another site must not sign a child's browser in to an account it controls
    # (what the child then writes would be the attacker's to read).
    refuse_foreign_origin(request)
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or len(username) > 64:
        raise ServiceError(ErrorCode.INVALID_FIELD, "username and password are required strings")
    if len(password) > 200:
        raise ServiceError(ErrorCode.INVALID_FIELD, "password too long")
    address = request.client.host if request.client else "?"
    done = await web_of(request).services.auth.login(username, password, address)
    user = done.user
    response = JSONResponse({
        "token": done.token,
        "expires_at": iso(done.expires_at),  # the wire's one time format, as everywhere else
        "user": {"id": user.id, "username": user.username, "name": user.display_name, "school": user.school},
        # A pupil whose teacher set a new password is told who did, at their first login after.
        "password_reset": None if done.password_reset is None else {
            "by": {"name": done.password_reset.by_name, "school": done.password_reset.by_school},
            "at": iso(done.password_reset.at),
        },
    })
    response.set_cookie(
        SESSION_COOKIE, done.token, httponly=True, samesite="lax", path="/",
        secure=request.url.scheme == "https", max_age=max(int(done.expires_at.timestamp() - time.time()), 1),
    )
    return response


async def logout(request: Request) -> Response:
    token, from_cookie = token_of(request)
    if from_cookie:
        refuse_foreign_origin(request)  # another site must not sign people out
    if token:
        await web_of(request).services.auth.logout(token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def logout_everywhere(request: Request) -> Response:
    """End every session of the caller — other browsers, lost phones — and close their sockets."""
    viewer = await viewer_of(request)
    ended = await web_of(request).services.auth.logout_everywhere(viewer.user.id)
    response = JSONResponse({"ok": True, "sessions_ended": ended})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: Request) -> Response:
    viewer = await viewer_of(request)
    return JSONResponse(await welcome(web_of(request).services, viewer))


async def room_messages(request: Request) -> Response:
    """A page of a room's history, newest first: the newest messages, those `before` a seq
    (`more`: older ones remain), those `after` a seq (`newer`: newer ones remain), or those
    `around` a message id (both) — docs/protocol.md, "HTTP API"."""
    viewer = await viewer_of(request)
    room_id = int_param_path(request, "room_id")
    before, limit = page_params(request, 50, 200)
    after = int_param(request, "after", None, 0, 2**62)
    around = int_param(request, "around", None, 1, 2**62)
    if sum(x is not None for x in (before, after, around)) > 1:
        raise ServiceError(ErrorCode.INVALID_FIELD, "give at most one of before, after and around")
    chat = web_of(request).services.chat
    if after is not None:
        found = await chat.history_after(viewer, room_id, after, limit + 1)
        return JSONResponse({"messages": found[-limit:], "newer": len(found) > limit})
    if around is not None:
        # Half the page after the message, the rest (the message first) before it; near either
        # end of the room, the other side fills the page.
        older, later = await chat.history_around(viewer, room_id, around, limit, limit + 1)
        newer = min(len(later), limit // 2)
        taken = min(len(older), limit - newer)
        newer = min(len(later), limit - taken)
        return JSONResponse({
            "messages": later[len(later) - newer:] + older[:taken],
            "more": len(older) > taken, "newer": len(later) > newer,
        })
    found = await chat.history(viewer, room_id, before, limit + 1)
    return JSONResponse({"messages": found[:limit], "more": len(found) > limit})


async def room_info(request: Request) -> Response:
    """One room the caller may read, with their rights there and its project (docs/protocol.md,
    "One room")."""
    viewer = await viewer_of(request)
    room_id = int_param_path(request, "room_id")
    return JSONResponse(await web_of(request).services.chat.room_info(viewer, room_id))


async def mark_read(request: Request) -> Response:
    """The caller has read the room up to `seq` (omitted: all of it so far)."""
    viewer = await viewer_of(request)
    room_id = int_param_path(request, "room_id")
    body = await json_body(request)
    seq = body.get("seq")
    if seq is not None and (type(seq) is not int or not 0 <= seq <= 2**62):
        raise ServiceError(ErrorCode.INVALID_FIELD, "seq must be an integer >= 0")
    done = await web_of(request).services.chat.mark_read(viewer, room_id, seq)
    return JSONResponse({"id": room_id, "channel": ROOM.name_of(room_id), "read": done})


async def rooms_unread(request: Request) -> Response:
    viewer = await viewer_of(request)
    return JSONResponse({"rooms": await unread_rooms(web_of(request).services, viewer)})


def _set_closed(closed: bool):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        viewer = await viewer_of(request)
        space_id = int_param_path(request, "space_id")
        space = await web_of(request).services.projects.set_closed(viewer, space_id, closed)
        return JSONResponse({"id": space.id, "closed": space.closed})

    return endpoint


async def create_room(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    room = await web_of(request).services.projects.create_room(viewer, space_id, body.get("area"), body.get("name"))
    return JSONResponse(
        {"id": room.id, "channel": ROOM.name_of(room.id), "area": room.area, "name": room.name}, status_code=201
    )


async def rename_room(request: Request) -> Response:
    """A new name for a room (teacher admins): {"id", "channel", "name", "was", "changed"}."""
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    room_id = int_param_path(request, "room_id")
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.projects.rename_room(viewer, space_id, room_id, body.get("name")))


def _change_room(change: str):  # type: ignore[no-untyped-def]
    """Archive, unarchive or delete a room (teacher admins): answered {"id", "channel",
    "changed", "archived"} — or "deleted": true."""
    async def endpoint(request: Request) -> Response:
        viewer = await viewer_of(request)
        space_id = int_param_path(request, "space_id")
        room_id = int_param_path(request, "room_id")
        return JSONResponse(await web_of(request).services.projects.change_room(viewer, space_id, room_id, change))

    endpoint.__name__ = f"{change}_room"
    return endpoint


_PATH_FIELDS = (("space_id", "space"), ("mail_id", "id"), ("thread_id", "thread"), ("message_id", "id"),
                ("report_id", "id"))
_TEXT_QUERIES = frozenset({"folder", "status", "reason"})


def _frame_route(frame_type: str, *, body: bool = False, query: tuple[str, ...] = (), status: int = 200):  # type: ignore[no-untyped-def]
    """An HTTP route for a request that is also a WebSocket frame: path parameters, query
    parameters and the JSON body become the frame a WebSocket client sends (decoded with the
    same checks), answered by the same code. `{space_id}` is the frame's `space`, `{mail_id}`,
    `{message_id}` and `{report_id}` its `id`, `{thread_id}` its `thread`, `{room_id}` its
    `channel` (room:<id>)."""
    async def endpoint(request: Request) -> Response:
        viewer = await viewer_of(request)
        fields: dict[str, Any] = dict(await json_body(request)) if body else {}
        for name in query:
            raw = request.query_params.get(name)
            if raw is not None:
                fields[name] = raw if name in _TEXT_QUERIES else int_param(request, name, None, -(2**62), 2**62)
        for param, field in _PATH_FIELDS:
            if param in request.path_params:
                fields[field] = int_param_path(request, param)
        if "room_id" in request.path_params:
            fields["channel"] = ROOM.name_of(int_param_path(request, "room_id"))
        fields["type"] = frame_type
        fields.pop("ref", None)
        try:
            frame = frame_from_map(fields, web_of(request).settings.limits)
        except ProtocolError as exc:
            raise ServiceError(exc.code, exc.message) from None
        data = await answer(web_of(request).services, viewer, frame)
        # A retried send answers what the first one did, but it created nothing this time.
        return JSONResponse(data, status_code=200 if data.get("duplicate") else status)

    endpoint.__name__ = frame_type
    return endpoint


async def public_page(request: Request) -> Response:
    """No login: the project's name, description and journal, if its public view is on."""
    before, limit = page_params(request, 20, 100)
    page = await web_of(request).services.public.page(request.path_params["slug"], before, limit)
    return JSONResponse(page)


async def public_events(request: Request) -> Response:
    """No login: the journal live, as Server-Sent Events; resumes from Last-Event-ID."""
    web = web_of(request)
    space = await web.services.public.space(request.path_params["slug"])
    raw = request.headers.get("last-event-id") or request.query_params.get("since")
    since = None
    if raw is not None:
        try:
            since = max(int(raw), 0)
        except ValueError:
            raise ServiceError(ErrorCode.INVALID_FIELD, "Last-Event-ID must be an event's id (an integer)") from None
    address = request.client.host if request.client else "?"
    if web.public_streams.full(address):
        raise RateLimited(10.0, "too many public streams from your address; close some first")
    return StreamingResponse(
        web.public_streams.stream(space.id, since, address), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def set_public(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.public.set_public(viewer, space_id, body.get("public")))


async def set_language(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.languages.set_project(viewer, space_id, body.get("language")))


async def create_bot(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    bots = web_of(request).services.bots
    made = await bots.create(viewer, space_id, body.get("name"), body.get("scope", "journal"), body.get("actors"))
    return JSONResponse(made, status_code=201)


async def list_bots(request: Request) -> Response:
    """The project's bots, revoked ones included (teacher admins): never a token."""
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    return JSONResponse(await web_of(request).services.bots.of_space(viewer, space_id))


async def revoke_bot(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    bot_id = int_param_path(request, "bot_id")
    return JSONResponse(await web_of(request).services.bots.revoke(viewer, space_id, bot_id))


def _bot_route(post: str, doc: str):  # type: ignore[no-untyped-def]
    """A route for a bot token (never the session cookie): `Authorization: Bearer <token>`, an
    optional `Idempotency-Key`; 201 when something was created, 200 for a repeat."""
    async def endpoint(request: Request) -> Response:
        token, from_cookie = token_of(request)
        space_id = int_param_path(request, "space_id")
        body = await json_body(request)
        key = request.headers.get("idempotency-key")
        done = await getattr(web_of(request).services.bots, post)(None if from_cookie else token, space_id, key, body)
        return JSONResponse(done, status_code=200 if done["duplicate"] else 201)

    endpoint.__name__, endpoint.__doc__ = post, doc
    return endpoint


journal_entry = _bot_route("post_entry", "A bot posts a journal entry.")
service_activity = _bot_route("post_activity", "A service records an action done elsewhere in the space.")


async def activity(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    before, limit = page_params(request, 50, 200)
    return JSONResponse(await web_of(request).services.feed.page(viewer, space_id, before, limit))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ready = await web_of(request).ready()
    return JSONResponse({"status": "ready" if ready else "database unavailable"}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text, for loopback clients or the bearer of TWINHUB_METRICS_TOKEN (web/metrics.py)."""
    web = web_of(request)
    if not may_read_metrics(request, web.settings.metrics_token):
        raise ServiceError(ErrorCode.FORBIDDEN, "/metrics answers loopback clients, or a bearer of TWINHUB_METRICS_TOKEN")
    return PlainTextResponse(render(web.metrics), media_type="text/plain; version=0.0.4")


STATIC = Path(__file__).parent / "static"

# Every file of the page is revalidated on each visit ("no-cache": kept, but asked again with its
# ETag and answered 304 while unchanged), so a deploy reaches every browser at once, with no build
# step to give files hashed names. Compressed by GZipMiddleware (app.py) above 1 KB.
REVALIDATE = "no-cache"
# But the tab's icon, which Chromium asks for again at each change of address (#/room/3): a day.
KEPT = {"favicon.svg": "max-age=86400"}


class StaticWithRevalidation(StaticFiles):
    """/static/…: Starlette's StaticFiles (ETag, Last-Modified, 304s), each answer told to revalidate."""

    def file_response(self, full_path: Any, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(full_path, *args, **kwargs)
        response.headers.setdefault("cache-control", KEPT.get(os.path.basename(full_path), REVALIDATE))
        return response


static_files = StaticWithRevalidation(directory=STATIC)


def _page(request: Request, name: str) -> Response:
    """A page of static/ at its own address, revalidated like the files it loads (304 while unchanged)."""
    path = STATIC / name
    response = FileResponse(path, stat_result=os.stat(path), headers={"Cache-Control": REVALIDATE})
    if static_files.is_not_modified(response.headers, request.headers):
        return NotModifiedResponse(response.headers)
    return response


async def index(request: Request) -> Response:
    """The browser client (realtime/web/static/): one page, its ES modules and its stylesheet —
    at / and at /join (a printed invitation card's address)."""
    return _page(request, "index.html")


async def public_html(request: Request) -> Response:
    """The public view's page (static/public.html): anyone reads the project's journal there, no
    login; the page asks GET /api/public/{slug} and listens to its events. Served whatever the
    slug: the page itself says, in the reader's language, when there is no such public project."""
    return _page(request, "public.html")


async def favicon(request: Request) -> Response:
    """Browsers and tools that ask for /favicon.ico without reading the page's <link rel="icon">
    get the SVG mark (no 404 in the log)."""
    return RedirectResponse("/static/favicon.svg", status_code=301)


routes = [
    Route("/", index),
    Route("/public/{slug}", public_html),
    Route("/join", index),  # the same page, opening on joining with an invitation code (app.js)
    Route("/favicon.ico", favicon),
    Mount("/static", static_files, name="static"),
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/logout/everywhere", logout_everywhere, methods=["POST"]),
    Route("/api/me", me),
    Route("/api/rooms/{room_id}/messages", room_messages),
    Route("/api/rooms/unread", rooms_unread),
    Route("/api/rooms/{room_id}", room_info),
    Route("/api/rooms/{room_id}/read", mark_read, methods=["POST"]),
    Route("/api/spaces/{space_id}/rooms", create_room, methods=["POST"]),
    Route("/api/spaces/{space_id}/rooms/{room_id}/archive", _change_room("archive"), methods=["POST"]),
    Route("/api/spaces/{space_id}/rooms/{room_id}/unarchive", _change_room("unarchive"), methods=["POST"]),
    Route("/api/spaces/{space_id}/rooms/{room_id}", _change_room("delete"), methods=["DELETE"]),
    Route("/api/spaces/{space_id}/rooms/{room_id}", rename_room, methods=["PATCH"]),
    Route("/api/spaces/{space_id}/close", _set_closed(True), methods=["POST"]),
    Route("/api/spaces/{space_id}/reopen", _set_closed(False), methods=["POST"]),
    Route("/api/spaces/{space_id}/activity", activity),
    *api_members.routes,
    *api_account.routes,
    *api_files.routes,
    *api_platform.routes,
    Route("/api/spaces/{space_id}/activity", service_activity, methods=["POST"]),
    Route("/api/spaces/{space_id}/public", set_public, methods=["POST"]),
    Route("/api/spaces/{space_id}/language", set_language, methods=["PUT"]),
    Route("/api/public/{slug}", public_page),
    Route("/api/public/{slug}/events", public_events),
    Route("/api/spaces/{space_id}/bots", create_bot, methods=["POST"]),
    Route("/api/spaces/{space_id}/bots", list_bots),
    Route("/api/spaces/{space_id}/bots/{bot_id}", revoke_bot, methods=["DELETE"]),
    Route("/api/spaces/{space_id}/journal", journal_entry, methods=["POST"]),
    Route("/api/spaces/{space_id}/mail", _frame_route("send_mail", body=True, status=201), methods=["POST"]),
    Route("/api/spaces/{space_id}/mail", _frame_route("mail_threads", query=("folder", "before", "limit"))),
    Route("/api/spaces/{space_id}/mail/threads/{thread_id}", _frame_route("mail_thread", query=("after", "limit"))),
    Route("/api/spaces/{space_id}/mail/recipients", _frame_route("mail_recipients")),
    Route("/api/spaces/{space_id}/mail/reports", _frame_route("mail_reports", query=("before", "limit"))),
    Route("/api/mail/{mail_id}", _frame_route("get_mail")),
    Route("/api/mail/{mail_id}", _frame_route("delete_mail"), methods=["DELETE"]),
    Route("/api/mail/{mail_id}/read", _frame_route("mark_mail", body=True), methods=["POST"]),
    Route("/api/mail/{mail_id}/move", _frame_route("move_mail", body=True), methods=["POST"]),
    Route("/api/mail/{mail_id}/report", _frame_route("report_mail", body=True), methods=["POST"]),
    Route("/api/rooms/{room_id}/messages/{message_id}/report", _frame_route("report", body=True, status=201),
          methods=["POST"]),
    Route("/api/rooms/{room_id}/messages/{message_id}/hide", _frame_route("hide", body=True), methods=["POST"]),
    Route("/api/rooms/{room_id}/messages/{message_id}/unhide", _frame_route("unhide", body=True), methods=["POST"]),
    Route("/api/rooms/{room_id}/messages/{message_id}", _frame_route("delete", query=("reason",)), methods=["DELETE"]),
    Route("/api/spaces/{space_id}/reports", _frame_route("reports", query=("status", "before", "limit"))),
    Route("/api/moderation/reports", _frame_route("reports", query=("status", "before", "limit"))),
    Route("/api/reports/{report_id}/resolve", _frame_route("resolve_report", body=True), methods=["POST"]),
    Route("/healthz", healthz),
    Route("/readyz", readyz),
    Route("/metrics", metrics),
]
