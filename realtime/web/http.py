"""What every HTTP route shares: what the routes work with (`Web`, handed over by the composition
root), errors as JSON with the protocol's codes (one handler, for the whole app), the JSON body,
the session (a bearer token, or the browser's cookie from our own origin), and path and query
integers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol import ErrorCode, ProtocolError, json_document
from storage import Unavailable

from ..config import Settings
from ..errors import HTTP_STATUS, ServiceError, outage, refusals
from ..fanout.directory import Viewer
from ..handshake import SESSION_COOKIE, origin_allowed
from ..services.bundle import Services
from .metrics import Sources


@dataclass(slots=True)
class Web:
    """What the HTTP routes work with, built by run/assemble.py once the server is up."""

    settings: Settings
    services: Services
    metrics: Sources
    ready: Callable[[], Awaitable[bool]]  # /readyz: does the database answer?
    public_streams: Any  # web/public_stream.py's PublicStreams (the public journal, live)


class WebApp(Starlette):
    """The Starlette app, holding the `Web` its routes read (`web_of`)."""

    web: Web | None = None


def web_of(request: Request) -> Web:
    web = request.app.web
    if web is None:  # pragma: no cover — the lifespan binds it before the first request is served
        raise ServiceError(ErrorCode.UNAVAILABLE, "the server is starting")
    return web


async def on_service_error(request: Request, exc: Exception) -> Response:
    """The one map from a refused request to its HTTP answer (installed for the whole app)."""
    assert isinstance(exc, ServiceError)
    refusals.note(f"refused {exc.code.value}", "refused %s %s: %s", request.method, _route_of(request), exc.code.value)
    return error_response(exc)


FAILED = "twinhub.failed"  # in an ASGI scope: on_bug has answered and logged this request's failure


async def on_bug(request: Request, exc: Exception) -> Response:
    """A request the server failed on: `internal` in the error body every other answer has, and a
    traceback once a period per route and exception (tally.py), not once a request."""
    request.scope[FAILED] = True
    if isinstance(exc, Unavailable):  # PostgreSQL is away: the client retries later (503), not a bug
        refusals.note("refused unavailable", "%s %s: the database is not answering", request.method,
                      _route_of(request), level=logging.WARNING)
        return error_response(outage())
    refusals.note(f"failed {_route_of(request)}: {type(exc).__name__}", "%s %s failed", request.method,
                  _route_of(request), level=logging.ERROR, exc_info=exc)
    return error_response(ServiceError(ErrorCode.INTERNAL, "the server failed on this request"))


def _route_of(request: Request) -> str:
    """The route's pattern (/api/spaces/{space_id}/…), never the path itself: ids and slugs in a
    log line would say who asked for what."""
    route = request.scope.get("route")
    return getattr(route, "path", "?")


def error_response(exc: ServiceError) -> JSONResponse:
    headers = {}
    if "retry_after_ms" in exc.data:
        headers["Retry-After"] = str(int(exc.data["retry_after_ms"] / 1000) + 1)
    body = {"error": {"code": exc.code.value, "message": exc.message, **exc.data}}
    return JSONResponse(body, status_code=HTTP_STATUS.get(exc.code, 400), headers=headers)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object (an empty body is {}), parsed as a frame is (protocol's
    json_document): too large, not an object, nested too deep or holding a lone surrogate is a
    clear error, never a traceback."""
    raw = await request.body()
    limit = web_of(request).settings.limits.max_body_bytes
    if len(raw) > limit:
        raise ServiceError(ErrorCode.TOO_LARGE, f"request body over {limit // 1024} KiB")
    try:
        return json_document(raw)
    except ProtocolError as exc:
        raise ServiceError(exc.code, exc.message) from None


def token_of(request: Request) -> tuple[str | None, bool]:
    """(token, from_cookie)"""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


def refuse_foreign_origin(request: Request) -> None:
    """Refuse a request a browser sent from another site (its `Origin` is foreign). Requests
    without `Origin` (curl, bots, other servers) are not browsers acting for someone else."""
    if "origin" in request.headers and not origin_allowed(
        request.scope, web_of(request).settings.allowed_origins
    ):
        raise ServiceError(ErrorCode.FORBIDDEN, "cross-site request refused")


async def viewer_of(request: Request) -> Viewer:
    token, from_cookie = token_of(request)
    if from_cookie and token is not None:
        if request.method not in ("GET", "HEAD") and not origin_allowed(
            request.scope, web_of(request).settings.allowed_origins
        ):
            raise ServiceError(ErrorCode.FORBIDDEN, "cross-site request refused")
        # A GET can have an effect too (a reported mail viewed is written to the audit log): a
        # browser that says another site made it (an <img>, a link) carries the cookie but not
        # the person's intent. No API route is a page to navigate to from elsewhere.
        if request.headers.get("sec-fetch-site") == "cross-site":
            raise ServiceError(ErrorCode.FORBIDDEN, "cross-site request refused")
    services = web_of(request).services
    user = await services.auth.user_for(token)
    if user is None:
        raise ServiceError(ErrorCode.UNAUTHENTICATED, "log in first (unknown, expired or revoked token)")
    directory = services.directory
    viewer = await directory.acquire(user)
    directory.release(viewer)  # an HTTP request holds no live state: reload per request
    return viewer


def int_param(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
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


def page_params(request: Request, default: int, most: int) -> tuple[int | None, int]:
    """A page's `?before=<id or seq>&limit=<n>`: (before or None, limit: `default` when not given,
    at most `most`)."""
    before = int_param(request, "before", None, 1, 2**62)
    limit = int_param(request, "limit", default, 1, most)
    assert limit is not None
    return before, limit


def int_param_path(request: Request, name: str) -> int:
    try:
        value = int(request.path_params[name])
    except (KeyError, ValueError):
        raise ServiceError(ErrorCode.NOT_FOUND, "no such resource") from None
    if not 1 <= value <= 2**62:
        raise ServiceError(ErrorCode.NOT_FOUND, "no such resource")
    return value
