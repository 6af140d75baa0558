"""HTTP routes for the people of a project: pupil accounts (and a removed pupil added back),
invitations, the member list, role changes, password resets, login unlocks, mutes and the audit log (docs/protocol.md, "Pupil accounts" to
"Mutes"). Rights are the services' and the policy's; these only translate HTTP."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from protocol import ErrorCode

from ..errors import ServiceError
from ..services.audit import AuditFilter
from .exports import csv_text, logins_csv, logins_sheet
from .http import int_param, int_param_path, json_body, page_params, token_of, viewer_of, web_of


async def invite_pupils(request: Request) -> Response:
    """A class at once: 201 with the logins as JSON, or ?format=csv, or ?format=html (a sheet to
    print). The passwords are shown this once."""
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv", "html"):
        raise ServiceError(ErrorCode.INVALID_FIELD, "format must be json, csv or html")
    logins = await web_of(request).services.pupils.invite(
        viewer, space_id, body.get("pupils"), body.get("school"), body.get("language")
    )
    headers = {"Cache-Control": "no-store"}  # passwords: never kept by a cache
    if fmt == "csv":
        return Response(logins_csv(logins), status_code=201, media_type="text/csv; charset=utf-8", headers=headers)
    if fmt == "html":
        space = await web_of(request).services.directory.space(space_id)
        address = f"{request.url.scheme}://{request.url.netloc}/"
        sheet = logins_sheet(logins, space.name, logins[0]["language"], address)
        return HTMLResponse(sheet, status_code=201, headers=headers)
    return JSONResponse({"pupils": logins}, status_code=201, headers=headers)


async def members(request: Request) -> Response:
    viewer = await viewer_of(request)
    return JSONResponse(await web_of(request).services.projects.members(viewer, int_param_path(request, "space_id")))


async def add_back(request: Request) -> Response:
    """A pupil removed from their home project made a member again: 201 {"space", "user_id", "role"}."""
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    done = await web_of(request).services.projects.add_back(viewer, space_id, body.get("user_id"), body.get("role"))
    return JSONResponse(done, status_code=201)


async def former_pupils(request: Request) -> Response:
    viewer = await viewer_of(request)
    return JSONResponse(await web_of(request).services.projects.former_pupils(
        viewer, int_param_path(request, "space_id")
    ))


async def invitations_of_space(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    invitations = web_of(request).services.invitations
    if request.method == "POST":
        return JSONResponse(
            await invitations.invite(viewer, space_id, await json_body(request)), status_code=201,
            headers={"Cache-Control": "no-store"},  # a code is shown this once
        )
    return JSONResponse(await invitations.of_space(viewer, space_id, request.query_params.get("status")))


async def revoke_invitation(request: Request) -> Response:
    viewer = await viewer_of(request)
    done = await web_of(request).services.invitations.revoke(
        viewer, int_param_path(request, "space_id"), int_param_path(request, "invitation_id")
    )
    return JSONResponse(done)


async def my_invitations(request: Request) -> Response:
    return JSONResponse(await web_of(request).services.invitations.mine(await viewer_of(request)))


def _answer_invitation(accept: bool):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        viewer = await viewer_of(request)
        done = await web_of(request).services.invitations.answer(viewer, int_param_path(request, "invitation_id"), accept)
        return JSONResponse(done)

    return endpoint


async def redeem_invitation(request: Request) -> Response:
    """With a session: join with one's account. Without: make an account with the code (a stale
    cookie left by an earlier visit counts as no session)."""
    token, from_cookie = token_of(request)
    viewer = None
    if token and (not from_cookie or await web_of(request).services.auth.user_for(token) is not None):
        viewer = await viewer_of(request)
    address = request.client.host if request.client else "?"
    done = await web_of(request).services.invitations.redeem(viewer, await json_body(request), address)
    return JSONResponse(done, status_code=201 if viewer is None else 200)


def _member_change(leave: bool = False, body: bool = False):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        viewer = await viewer_of(request)
        space_id = int_param_path(request, "space_id")
        user_id = viewer.user.id if leave else int_param_path(request, "user_id")
        role = (await json_body(request)).get("role") if body else None
        if body and role is None:
            raise ServiceError(ErrorCode.INVALID_FIELD, "role is required")
        return JSONResponse(await web_of(request).services.projects.change_member(viewer, space_id, user_id, role))

    return endpoint


async def audit_log(request: Request) -> Response:
    """The project's audit log, newest first: JSON pages (?before=<id>&limit=), or ?format=csv; only
    one action, one actor, a time range, with ?action=, ?actor=, ?since=, ?until=."""
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    fmt = request.query_params.get("format", "json")
    if fmt not in ("json", "csv"):
        raise ServiceError(ErrorCode.INVALID_FIELD, "format must be json or csv")
    before, limit = page_params(request, 100 if fmt == "json" else 10_000, 10_000)
    query = request.query_params
    only = AuditFilter.parse(query.get("action"), int_param(request, "actor", None, 1, 2**62),
                             query.get("since"), query.get("until"))
    page = await web_of(request).services.audit.page(viewer, space_id, before, limit, only)
    rows = page["entries"]
    if fmt == "csv":
        header = ["id", "at", "actor_id", "actor", "action", "target_kind", "target_id", "reason", "details"]
        text = csv_text(header, ([*(r[k] for k in header[:-1]), json.dumps(r["details"], ensure_ascii=False)]
                                 for r in rows))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="audit-{space_id}.csv"'})
    return JSONResponse(page)


async def reset_password(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    user_id = int_param_path(request, "user_id")
    body = await json_body(request)
    done = await web_of(request).services.pupils.reset_password(viewer, space_id, user_id, body.get("password"))
    return JSONResponse(done, headers={"Cache-Control": "no-store"})


async def unlock(request: Request) -> Response:
    """A pupil's login lockout lifted by a teacher who may reset their password."""
    viewer = await viewer_of(request)
    done = await web_of(request).services.pupils.unlock(
        viewer, int_param_path(request, "space_id"), int_param_path(request, "user_id")
    )
    return JSONResponse(done)


async def mute(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    done = await web_of(request).services.projects.mute(
        viewer, space_id, body.get("user_id"), body.get("scope"), body.get("minutes"), body.get("reason", "")
    )
    return JSONResponse(done, status_code=201)


async def mutes(request: Request) -> Response:
    """The project's mutes in force (teacher admins, platform moderators)."""
    viewer = await viewer_of(request)
    return JSONResponse(await web_of(request).services.projects.mutes(viewer, int_param_path(request, "space_id")))


async def unmute(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    user_id = int_param_path(request, "user_id")
    done = await web_of(request).services.projects.unmute(viewer, space_id, user_id, request.path_params.get("scope"))
    return JSONResponse(done)


routes = [
    Route("/api/spaces/{space_id}/pupils", invite_pupils, methods=["POST"]),
    Route("/api/spaces/{space_id}/members", members),
    Route("/api/spaces/{space_id}/members", add_back, methods=["POST"]),
    Route("/api/spaces/{space_id}/members/former", former_pupils),
    Route("/api/spaces/{space_id}/members/{user_id}/password", reset_password, methods=["POST"]),
    Route("/api/spaces/{space_id}/members/{user_id}/unlock", unlock, methods=["POST"]),
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
    Route("/api/spaces/{space_id}/mutes", mute, methods=["POST"]),
    Route("/api/spaces/{space_id}/mutes", mutes),
    Route("/api/spaces/{space_id}/mutes/{user_id}/{scope}", unmute, methods=["DELETE"]),
]
