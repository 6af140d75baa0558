"""HTTP API: login and logout, who am I, room history, closing a project, TwinMail, health and
metrics.

Every error answers {"error": {"code": ..., "message": ...}} with the same stable codes as the
WebSocket protocol (docs/protocol.md, "HTTP API"). A request authenticates with
`Authorization: Bearer <token>` or, from a browser, with the HttpOnly session cookie; a
cookie-authenticated POST must come from the server's own origin (no cross-site requests).
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from protocol import ErrorCode, MailFrame, ModerationFrame, ProtocolError, frame_from_map
from storage import accounts, audit
from storage.db import ping

from .auth import SESSION_COOKIE
from .directory import Viewer
from .errors import HTTP_STATUS, ServiceError
from .mail import answer_mail
from .moderation import answer_moderation
from .policy import Action
from .pupils import logins_csv, logins_sheet
from .session import welcome
from .wire import database, iso
from .ws import origin_allowed


def error_response(exc: ServiceError) -> JSONResponse:
    headers = {}
    if "retry_after_ms" in exc.data:
        headers["Retry-After"] = str(int(exc.data["retry_after_ms"] / 1000) + 1)
    body = {"error": {"code": exc.code.value, "message": exc.message, **exc.data}}
    return JSONResponse(body, status_code=HTTP_STATUS.get(exc.code, 400), headers=headers)


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 16 * 1024:
        raise ServiceError(ErrorCode.TOO_LARGE, "request body over 16 KiB")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ServiceError(ErrorCode.BAD_FRAME, "the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ServiceError(ErrorCode.BAD_FRAME, "the body must be a JSON object")
    return body


def _token(request: Request) -> tuple[str | None, bool]:
    """(token, from_cookie)"""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


def _handler(fn):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except ServiceError as exc:
            return error_response(exc)

    endpoint.__name__ = fn.__name__
    return endpoint


async def _viewer(request: Request) -> Viewer:
    token, from_cookie = _token(request)
    if from_cookie and request.method not in ("GET", "HEAD") and token is not None:
        if not origin_allowed(request.scope, request.app.state.settings.allowed_origins):
            raise ServiceError(ErrorCode.FORBIDDEN, "cross-site request refused")
    user = await request.app.state.services.auth.user_for(token)
    if user is None:
        raise ServiceError(ErrorCode.UNAUTHENTICATED, "log in first (unknown, expired or revoked token)")
    directory = request.app.state.services.directory
    viewer = await directory.acquire(user)
    directory.release(viewer)  # an HTTP request holds no live state: reload per request
    return viewer


@_handler
async def login(request: Request) -> Response:
    body = await _json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username or len(username) > 64:
        raise ServiceError(ErrorCode.INVALID_FIELD, "username and password are required strings")
    if len(password) > 200:
        raise ServiceError(ErrorCode.INVALID_FIELD, "password too long")
    address = request.client.host if request.client else "?"
    done = await request.app.state.services.auth.login(username, password, address)
    user = done.user
    response = JSONResponse({
        "token": done.token,
        "expires_at": done.expires_at.isoformat(),
        "user": {"id": user.id, "username": user.username, "name": user.display_name, "school": user.school},
    })
    response.set_cookie(
        SESSION_COOKIE, done.token, httponly=True, samesite="lax", path="/",
        secure=request.url.scheme == "https", max_age=max(int(done.expires_at.timestamp() - time.time()), 1),
    )
    return response


@_handler
async def logout(request: Request) -> Response:
    token, _ = _token(request)
    if token:
        await request.app.state.services.auth.logout(token)
    response = JSONResponse({"ok": True})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@_handler
async def logout_everywhere(request: Request) -> Response:
    """End every session of the caller — other browsers, lost phones — and close their sockets."""
    viewer = await _viewer(request)
    ended = await database(accounts.revoke_all_sessions(request.app.state.pool, viewer.user.id))
    await request.app.state.projects.changed({"kind": "sessions_revoked", "user_id": viewer.user.id})
    response = JSONResponse({"ok": True, "sessions_ended": ended})
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@_handler
async def me(request: Request) -> Response:
    viewer = await _viewer(request)
    w = await welcome(request.app.state.services, viewer)
    return JSONResponse({"user": w.user, "spaces": w.spaces, "limits": w.limits})


def _int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{name} must be between {lo} and {hi}")
    return value


@_handler
async def room_messages(request: Request) -> Response:
    viewer = await _viewer(request)
    room_id = _int_param_path(request, "room_id")
    before = _int_param(request, "before", None, 1, 2**62)
    limit = _int_param(request, "limit", 50, 1, 200)
    assert limit is not None
    found = await request.app.state.services.chat.history(viewer, room_id, before, limit + 1)
    return JSONResponse({"messages": found[:limit], "more": len(found) > limit})


def _int_param_path(request: Request, name: str) -> int:
    try:
        value = int(request.path_params[name])
    except (KeyError, ValueError):
        raise ServiceError(ErrorCode.NOT_FOUND, "no such resource") from None
    if not 1 <= value <= 2**62:
        raise ServiceError(ErrorCode.NOT_FOUND, "no such resource")
    return value


def _set_closed(closed: bool):  # type: ignore[no-untyped-def]
    @_handler
    async def endpoint(request: Request) -> Response:
        viewer = await _viewer(request)
        space_id = _int_param_path(request, "space_id")
        space = await request.app.state.projects.set_closed(viewer, space_id, closed)
        return JSONResponse({"id": space.id, "closed": space.closed})

    return endpoint


@_handler
async def create_room(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    body = await _json_body(request)
    room = await request.app.state.projects.create_room(viewer, space_id, body.get("area"), body.get("name"))
    return JSONResponse(
        {"id": room.id, "channel": f"room:{room.id}", "area": room.area, "name": room.name}, status_code=201
    )


_PATH_FIELDS = (("space_id", "space"), ("mail_id", "id"), ("thread_id", "thread"), ("message_id", "id"),
                ("report_id", "id"))
_TEXT_QUERIES = frozenset({"folder", "status", "reason"})


def _frame_route(frame_type: str, *, body: bool = False, query: tuple[str, ...] = (), status: int = 200):  # type: ignore[no-untyped-def]
    """An HTTP route for a request that is also a WebSocket frame: path parameters, query
    parameters and the JSON body become the frame a WebSocket client sends (decoded with the
    same checks), answered by the same code. `{space_id}` is the frame's `space`, `{mail_id}`,
    `{message_id}` and `{report_id}` its `id`, `{thread_id}` its `thread`, `{room_id}` its
    `channel` (room:<id>)."""

    @_handler
    async def endpoint(request: Request) -> Response:
        viewer = await _viewer(request)
        fields: dict[str, Any] = dict(await _json_body(request)) if body else {}
        for name in query:
            raw = request.query_params.get(name)
            if raw is not None:
                fields[name] = raw if name in _TEXT_QUERIES else _int_param(request, name, None, -(2**62), 2**62)
        for param, field in _PATH_FIELDS:
            if param in request.path_params:
                fields[field] = _int_param_path(request, param)
        if "room_id" in request.path_params:
            fields["channel"] = f"room:{_int_param_path(request, 'room_id')}"
        fields["type"] = frame_type
        fields.pop("ref", None)
        try:
            frame = frame_from_map(fields, request.app.state.settings.limits)
        except ProtocolError as exc:
            raise ServiceError(exc.code, exc.message) from None
        data = await _answer(request, viewer, frame)
        # A retried send answers what the first one did, but it created nothing this time.
        return JSONResponse(data, status_code=200 if data.get("duplicate") else status)

    endpoint.__name__ = frame_type
    return endpoint


async def _answer(request: Request, viewer: Viewer, frame: Any) -> dict[str, Any]:
    services = request.app.state.services
    if isinstance(frame, MailFrame):
        return await answer_mail(services.mail, viewer, frame)
    if isinstance(frame, ModerationFrame):
        return await answer_moderation(services.moderation, services.projects, viewer, frame)
    act = {"hide": services.chat.hide, "unhide": services.chat.unhide, "delete": services.chat.delete}[frame.type]
    e = await act(viewer, frame.channel, frame.id, frame.reason)
    return {"channel": e.channel, "seq": e.seq, "id": frame.id}


@_handler
async def public_page(request: Request) -> Response:
    """No login: the project's name, description and journal, if its public view is on."""
    before = _int_param(request, "before", None, 1, 2**62)
    limit = _int_param(request, "limit", 20, 1, 100)
    assert limit is not None
    page = await request.app.state.public.page(request.path_params["slug"], before, limit)
    return JSONResponse(page)


@_handler
async def public_events(request: Request) -> Response:
    """No login: the journal live, as Server-Sent Events; resumes from Last-Event-ID."""
    public = request.app.state.public
    space = await public.space(request.path_params["slug"])
    raw = request.headers.get("last-event-id") or request.query_params.get("since")
    since = None
    if raw is not None:
        try:
            since = max(int(raw), 0)
        except ValueError:
            raise ServiceError(ErrorCode.INVALID_FIELD, "Last-Event-ID must be an event's id (an integer)") from None
    return StreamingResponse(
        public.streams.stream(space.id, since), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@_handler
async def set_public(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    body = await _json_body(request)
    return JSONResponse(await request.app.state.public.set_public(viewer, space_id, body.get("public")))


@_handler
async def invite_pupils(request: Request) -> Response:
    """A class at once: 201 with the logins as JSON, or ?format=csv, or ?format=html (a sheet to
    print). The passwords are shown this once."""
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    body = await _json_body(request)
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv", "html"):
        raise ServiceError(ErrorCode.INVALID_FIELD, "format must be json, csv or html")
    logins = await request.app.state.pupils.invite(viewer, space_id, body.get("pupils"), body.get("school"))
    headers = {"Cache-Control": "no-store"}  # passwords: never kept by a cache
    if fmt == "csv":
        return Response(logins_csv(logins), status_code=201, media_type="text/csv; charset=utf-8", headers=headers)
    if fmt == "html":
        space = await request.app.state.services.directory.space(space_id)
        return HTMLResponse(logins_sheet(logins, space.name), status_code=201, headers=headers)
    return JSONResponse({"pupils": logins}, status_code=201, headers=headers)


@_handler
async def members(request: Request) -> Response:
    viewer = await _viewer(request)
    return JSONResponse(await request.app.state.projects.members(viewer, _int_param_path(request, "space_id")))


@_handler
async def invitations_of_space(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    invitations = request.app.state.invitations
    if request.method == "POST":
        return JSONResponse(
            await invitations.invite(viewer, space_id, await _json_body(request)), status_code=201,
            headers={"Cache-Control": "no-store"},  # a code is shown this once
        )
    return JSONResponse(await invitations.of_space(viewer, space_id))


@_handler
async def revoke_invitation(request: Request) -> Response:
    viewer = await _viewer(request)
    done = await request.app.state.invitations.revoke(
        viewer, _int_param_path(request, "space_id"), _int_param_path(request, "invitation_id")
    )
    return JSONResponse(done)


@_handler
async def my_invitations(request: Request) -> Response:
    return JSONResponse(await request.app.state.invitations.mine(await _viewer(request)))


def _answer_invitation(accept: bool):  # type: ignore[no-untyped-def]
    @_handler
    async def endpoint(request: Request) -> Response:
        viewer = await _viewer(request)
        done = await request.app.state.invitations.answer(viewer, _int_param_path(request, "invitation_id"), accept)
        return JSONResponse(done)

    return endpoint


@_handler
async def redeem_invitation(request: Request) -> Response:
    """With a session: join with one's account. Without: make an account with the code (a stale
    cookie left by an earlier visit counts as no session)."""
    token, from_cookie = _token(request)
    viewer = None
    if token and (not from_cookie or await request.app.state.services.auth.user_for(token) is not None):
        viewer = await _viewer(request)
    done = await request.app.state.invitations.redeem(viewer, await _json_body(request))
    return JSONResponse(done, status_code=201 if viewer is None else 200)


def _member_change(leave: bool = False, body: bool = False):  # type: ignore[no-untyped-def]
    @_handler
    async def endpoint(request: Request) -> Response:
        viewer = await _viewer(request)
        space_id = _int_param_path(request, "space_id")
        user_id = viewer.user.id if leave else _int_param_path(request, "user_id")
        role = (await _json_body(request)).get("role") if body else None
        if body and role is None:
            raise ServiceError(ErrorCode.INVALID_FIELD, "role is required")
        return JSONResponse(await request.app.state.projects.change_member(viewer, space_id, user_id, role))

    return endpoint


@_handler
async def audit_log(request: Request) -> Response:
    """The project's audit log, newest first: JSON pages (?before=<id>&limit=), or ?format=csv."""
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    viewer.require(space_id, Action.READ_AUDIT)
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ServiceError(ErrorCode.INVALID_FIELD, "format must be json or csv")
    before = _int_param(request, "before", None, 1, 2**62)
    limit = _int_param(request, "limit", 100 if fmt == "json" else 10_000, 1, 10_000)
    assert limit is not None
    found = await database(audit.entries(request.app.state.pool, space_id, limit + 1, before))
    rows = [
        {"id": e.id, "at": iso(e.created_at), "actor_id": e.actor_id, "actor": e.actor_name, "action": e.action,
         "target_kind": e.target_kind, "target_id": e.target_id, "reason": e.reason, "details": e.details}
        for e in found[:limit]
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "at", "actor_id", "actor", "action", "target_kind", "target_id", "reason", "details"])
        for r in rows:
            writer.writerow([*(r[k] for k in list(r)[:-1]), json.dumps(r["details"], ensure_ascii=False)])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="audit-{space_id}.csv"'})
    return JSONResponse({"space": space_id, "entries": rows, "more": len(found) > limit})


@_handler
async def reset_password(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    user_id = _int_param_path(request, "user_id")
    body = await _json_body(request)
    done = await request.app.state.pupils.reset_password(viewer, space_id, user_id, body.get("password"))
    return JSONResponse(done, headers={"Cache-Control": "no-store"})


@_handler
async def create_bot(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    body = await _json_body(request)
    bots = request.app.state.bots
    return JSONResponse(await bots.create(viewer, space_id, body.get("name"), body.get("scope", "journal")), status_code=201)


@_handler
async def revoke_bot(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    bot_id = _int_param_path(request, "bot_id")
    return JSONResponse(await request.app.state.bots.revoke(viewer, space_id, bot_id))


def _bot_route(post: str, doc: str):  # type: ignore[no-untyped-def]
    """A route for a bot token (never the session cookie): `Authorization: Bearer <token>`, an
    optional `Idempotency-Key`; 201 when something was created, 200 for a repeat."""

    @_handler
    async def endpoint(request: Request) -> Response:
        token, from_cookie = _token(request)
        space_id = _int_param_path(request, "space_id")
        body = await _json_body(request)
        key = request.headers.get("idempotency-key")
        done = await getattr(request.app.state.bots, post)(None if from_cookie else token, space_id, key, body)
        return JSONResponse(done, status_code=200 if done["duplicate"] else 201)

    endpoint.__name__, endpoint.__doc__ = post, doc
    return endpoint


journal_entry = _bot_route("post_entry", "A bot posts a journal entry.")
service_activity = _bot_route("post_activity", "A service records an action done elsewhere in the space.")


@_handler
async def activity(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    before = _int_param(request, "before", None, 1, 2**62)
    limit = _int_param(request, "limit", 50, 1, 200)
    assert limit is not None
    return JSONResponse(await request.app.state.services.feed.page(viewer, space_id, before, limit))


@_handler
async def mute(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    body = await _json_body(request)
    done = await request.app.state.projects.mute(
        viewer, space_id, body.get("user_id"), body.get("scope"), body.get("minutes"), body.get("reason", "")
    )
    return JSONResponse(done, status_code=201)


@_handler
async def unmute(request: Request) -> Response:
    viewer = await _viewer(request)
    space_id = _int_param_path(request, "space_id")
    user_id = _int_param_path(request, "user_id")
    done = await request.app.state.projects.unmute(viewer, space_id, user_id, request.path_params.get("scope"))
    return JSONResponse(done)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    ready = await ping(request.app.state.pool)
    return JSONResponse({"status": "ready" if ready else "database unavailable"}, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    state = request.app.state
    hub, writer, ws = state.services.hub, state.writer, state.ws_endpoint
    lines = [
        "# TYPE twinhub_websockets_open gauge", f"twinhub_websockets_open {ws.open}",
        "# TYPE twinhub_channels gauge", f"twinhub_channels {len(hub.channels)}",
        "# TYPE twinhub_events_total counter", f"twinhub_events_total {hub.events}",
        "# TYPE twinhub_deliveries_total counter", f"twinhub_deliveries_total {hub.delivered}",
        "# TYPE twinhub_gaps_filled_total counter", f"twinhub_gaps_filled_total {hub.gaps_filled}",
        "# TYPE twinhub_commit_batches_total counter", f"twinhub_commit_batches_total {writer.batches}",
        "# TYPE twinhub_posts_committed_total counter", f"twinhub_posts_committed_total {writer.committed}",
        "# TYPE twinhub_mail_commit_batches_total counter",
        f"twinhub_mail_commit_batches_total {state.mail_writer.batches}",
        "# TYPE twinhub_mails_committed_total counter", f"twinhub_mails_committed_total {state.mail_writer.committed}",
    ]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")


STATIC = Path(__file__).parent / "static"


async def index(request: Request) -> Response:
    """The browser client (realtime/static/): one page, its ES modules and its stylesheet."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


routes = [
    Route("/", index),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
    Route("/api/login", login, methods=["POST"]),
    Route("/api/logout", logout, methods=["POST"]),
    Route("/api/logout/everywhere", logout_everywhere, methods=["POST"]),
    Route("/api/me", me),
    Route("/api/rooms/{room_id}/messages", room_messages),
    Route("/api/spaces/{space_id}/rooms", create_room, methods=["POST"]),
    Route("/api/spaces/{space_id}/close", _set_closed(True), methods=["POST"]),
    Route("/api/spaces/{space_id}/reopen", _set_closed(False), methods=["POST"]),
    Route("/api/spaces/{space_id}/activity", activity),
    Route("/api/spaces/{space_id}/pupils", invite_pupils, methods=["POST"]),
    Route("/api/spaces/{space_id}/members", members),
    Route("/api/spaces/{space_id}/members/{user_id}/password", reset_password, methods=["POST"]),
    Route("/api/spaces/{space_id}/members/{user_id}", _member_change(body=True), methods=["PATCH"]),
    Route("/api/spaces/{space_id}/members/{user_id}", _member_change(), methods=["DELETE"]),
    Route("/api/spaces/{space_id}/leave", _member_change(leave=True), methods=["POST"]),
    Route("/api/spaces/{space_id}/invitations", invitations_of_space, methods=["GET", "POST"]),
    Route("/api/spaces/{space_id}/invitations/{invitation_id}", revoke_invitation, methods=["DELETE"]),
    Route("/api/invitations", my_invitations),
    Route("/api/invitations/{invitation_id}/accept", _answer_invitation(True), methods=["POST"]),
    Route("/api/invitations/{invitation_id}/decline", _answer_invitation(False), methods=["POST"]),
    Route("/api/invitations/redeem", redeem_invitation, methods=["POST"]),
    Route("/api/spaces/{space_id}/audit", audit_log),
    Route("/api/spaces/{space_id}/activity", service_activity, methods=["POST"]),
    Route("/api/spaces/{space_id}/public", set_public, methods=["POST"]),
    Route("/api/public/{slug}", public_page),
    Route("/api/public/{slug}/events", public_events),
    Route("/api/spaces/{space_id}/bots", create_bot, methods=["POST"]),
    Route("/api/spaces/{space_id}/bots/{bot_id}", revoke_bot, methods=["DELETE"]),
    Route("/api/spaces/{space_id}/journal", journal_entry, methods=["POST"]),
    Route("/api/spaces/{space_id}/mutes", mute, methods=["POST"]),
    Route("/api/spaces/{space_id}/mutes/{user_id}/{scope}", unmute, methods=["DELETE"]),
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
