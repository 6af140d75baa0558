"""HTTP routes of the platform's administrators (`/api/admin/…`, docs/protocol.md "Projects"):
projects created, listed, renamed and closed all at once, and a platform moderator placed in one;
and the list of projects platform moderators cover (`/api/moderation/spaces`).
Closing and reopening one project is the project's own route (api.py), which administrators may
use too. Rights are the platform service's and the policy's; these only translate HTTP."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from protocol import ErrorCode

from ..errors import ServiceError
from ..services.platform import MAX_PAGE
from .http import int_param_path, json_body, page_params, viewer_of, web_of


async def projects(request: Request) -> Response:
    """GET: every project, a page at a time (?closed=true|false&before=<id>&limit=); POST: a new one."""
    viewer = await viewer_of(request)
    platform = web_of(request).services.platform
    if request.method == "POST":
        return JSONResponse(await platform.create(viewer, await json_body(request)), status_code=201)
    closed = request.query_params.get("closed")
    if closed not in (None, "true", "false"):
        raise ServiceError(ErrorCode.INVALID_FIELD, "closed must be true or false")
    before, limit = page_params(request, 100, MAX_PAGE)
    return JSONResponse(await platform.projects(viewer, None if closed is None else closed == "true", before, limit))


async def moderated_projects(request: Request) -> Response:
    """Every project, as a platform moderator covers them (?closed=true|false&before=<id>&limit=):
    the listing administrators get, for whoever follows the platform's moderation queue."""
    viewer = await viewer_of(request)
    closed = request.query_params.get("closed")
    if closed not in (None, "true", "false"):
        raise ServiceError(ErrorCode.INVALID_FIELD, "closed must be true or false")
    before, limit = page_params(request, 100, MAX_PAGE)
    return JSONResponse(await web_of(request).services.moderation.projects(
        viewer, None if closed is None else closed == "true", before, limit
    ))


async def rename(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.platform.rename(viewer, space_id, body))


async def close_all(request: Request) -> Response:
    """Every open project closed (the start of a school year): {"closed": [ids], "count"}."""
    viewer = await viewer_of(request)
    return JSONResponse(await web_of(request).services.platform.close_all(viewer))


async def place_moderator(request: Request) -> Response:
    viewer = await viewer_of(request)
    space_id = int_param_path(request, "space_id")
    body = await json_body(request)
    return JSONResponse(await web_of(request).services.platform.place_moderator(viewer, space_id, body),
                        status_code=201)


routes = [
    Route("/api/admin/spaces", projects, methods=["GET", "POST"]),
    Route("/api/admin/spaces/close", close_all, methods=["POST"]),
    Route("/api/admin/spaces/{space_id}", rename, methods=["PATCH"]),
    Route("/api/admin/spaces/{space_id}/moderators", place_moderator, methods=["POST"]),
    Route("/api/moderation/spaces", moderated_projects),
]
