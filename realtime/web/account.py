"""HTTP routes for one's own account and profile, and for a pupil's data in the hands of their
home project's teacher admins (docs/protocol.md, "Your account" and "Member profiles"). Rights
are the services' and the policy's; these only translate HTTP — and write an export as one JSON
document, streamed page by page as the service reads it."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from protocol.timestamps import iso

from ..handshake import SESSION_COOKIE
from ..services.account import Export
from .http import int_param_path, json_body, viewer_of, web_of

# Answers that hold a person's data, or a new session: never kept by a cache (a classroom
# computer is shared).
NO_STORE = {"Cache-Control": "no-store"}


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def change_password(request: Request) -> Response:
    """The caller's own password: every session ends (this one too) and a new one is given."""
    viewer = await viewer_of(request)
    body = await json_body(request)
    done, ended = await web_of(request).services.auth.change_password(
        viewer.user, body.get("current_password"), body.get("new_password"), _address(request)
    )
    response = JSONResponse(
        {"token": done.token, "expires_at": iso(done.expires_at), "sessions_ended": ended}, headers=NO_STORE
    )
    response.set_cookie(
        SESSION_COOKIE, done.token, httponly=True, samesite="lax", path="/", secure=request.url.scheme == "https",
        max_age=max(int(done.expires_at.timestamp() - time.time()), 1),
    )
    return response


async def delete_account(request: Request) -> Response:
    viewer = await viewer_of(request)
    body = await json_body(request)
    done = await web_of(request).services.accounts.delete_own(viewer, body.get("password"), _address(request))
    response = JSONResponse(done)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


async def _document(export: Export) -> AsyncIterator[bytes]:
    """The export as one JSON object: its head's fields, then "messages" and "mail" as arrays
    written a page at a time. A failure midway ends the stream there: the document is then not
    valid JSON, so a client cannot take half an export for a whole one."""
    yield _dump(export.head)[:-1]
    yield b',"messages":['
    first = True
    async for page in export.messages:
        for item in page:
            yield (b"" if first else b",") + _dump(item)
            first = False
    if export.mail is None:
        yield b'],"mail":' + _dump(export.mail_note) + b"}"
        return
    yield b'],"mail":['
    first = True
    async for page in export.mail:
        for item in page:
            yield (b"" if first else b",") + _dump(item)
            first = False
    yield b"]}"


def _download(export: Export, name: str) -> Response:
    return StreamingResponse(
        _document(export), media_type="application/json",
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'},
    )


async def export_own(request: Request) -> Response:
    viewer = await viewer_of(request)
    export = await web_of(request).services.accounts.export_own(viewer)
    return _download(export, f"twinhub-export-{viewer.user.id}.json")


async def export_pupil(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id, user_id = int_param_path(request, "space_id"), int_param_path(request, "user_id")
    export = await web_of(request).services.accounts.export_pupil(viewer, space_id, user_id)
    return _download(export, f"twinhub-export-{user_id}.json")


async def erase_pupil(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id, user_id = int_param_path(request, "space_id"), int_param_path(request, "user_id")
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.accounts.erase_pupil(viewer, space_id, user_id,
                                                                           body.get("reason")))


async def own_profile(request: Request) -> Response:
    viewer = await viewer_of(request)
    profiles = web_of(request).services.profiles
    if request.method == "PUT":
        return JSONResponse(await profiles.put_own(viewer, await json_body(request)))
    return JSONResponse(await profiles.own(viewer), headers=NO_STORE)


async def own_language(request: Request) -> Response:
    """The caller's own language ({"language": "pl"}, or null: the browser's decides)."""
    viewer = await viewer_of(request)
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.languages.set_own(viewer, body.get("language")))


async def member_profile(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id, user_id = int_param_path(request, "space_id"), int_param_path(request, "user_id")
    profiles = web_of(request).services.profiles
    if request.method == "DELETE":
        return JSONResponse(await profiles.clear(viewer, space_id, user_id, request.query_params.get("reason")))
    return JSONResponse(await profiles.of_member(viewer, space_id, user_id), headers=NO_STORE)


routes = [
    Route("/api/account/password", change_password, methods=["POST"]),
    Route("/api/account/delete", delete_account, methods=["POST"]),
    Route("/api/account/export", export_own),
    Route("/api/profile", own_profile, methods=["GET", "PUT"]),
    Route("/api/account/language", own_language, methods=["PUT"]),
    Route("/api/spaces/{space_id}/members/{user_id}/profile", member_profile, methods=["GET", "DELETE"]),
    Route("/api/spaces/{space_id}/pupils/{user_id}/export", export_pupil),
    Route("/api/spaces/{space_id}/pupils/{user_id}/erase", erase_pupil, methods=["POST"]),
]
