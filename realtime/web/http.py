"""What every HTTP route shares: errors as JSON with the protocol's codes, the JSON body, the
session (a bearer token, or the browser's cookie from our own origin), and path and query integers."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from protocol import ErrorCode

from ..errors import HTTP_STATUS, ServiceError
from ..fanout.directory import Viewer
from ..services.auth import SESSION_COOKIE
from ..ws.endpoint import origin_allowed


def error_response(exc: ServiceError) -> JSONResponse:
    headers = {}
    if "retry_after_ms" in exc.data:
        headers["Retry-After"] = str(int(exc.data["retry_after_ms"] / 1000) + 1)
    body = {"error": {"code": exc.code.value, "message": exc.message, **exc.data}}
    return JSONResponse(body, status_code=HTTP_STATUS.get(exc.code, 400), headers=headers)


async def json_body(request: Request) -> dict[str, Any]:
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


def token_of(request: Request) -> tuple[str | None, bool]:
    """(token, from_cookie)"""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    return request.cookies.get(SESSION_COOKIE), True


def handler(fn):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except ServiceError as exc:
            return error_response(exc)

    endpoint.__name__ = fn.__name__
    return endpoint


def refuse_foreign_origin(request: Request) -> None:
    """Refuse a request a browser sent from another site (its `Origin` is foreign). Requests
    without `Origin` (curl, bots, other servers) are not browsers acting for someone else."""
    if "origin" in request.headers and not origin_allowed(
        request.scope, request.app.state.settings.allowed_origins
    ):
        raise ServiceError(ErrorCode.FORBIDDEN, "cross-site request refused")


async def viewer_of(request: Request) -> Viewer:
    token, from_cookie = token_of(request)
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


def int_param_path(request: Request, name: str) -> int:
    try:
        value = int(request.path_params[name])
    except (KeyError, ValueError):
        raise ServiceError(ErrorCode.NOT_FOUND, "no such resource") from None
    if not 1 <= value <= 2**62:
        raise ServiceError(ErrorCode.NOT_FOUND, "no such resource")
    return value
