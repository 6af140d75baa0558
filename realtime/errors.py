"""Errors raised by the services, each carrying what the client is told.

    ServiceError(code, message, **data)    a request was refused; sent as an `error` frame
                                           (or an HTTP error body) with the same code

The services raise them; the session and the HTTP layer turn them into frames and responses.
"""

from __future__ import annotations

from typing import Any

from protocol import ErrorCode


class ServiceError(Exception):
    def __init__(self, code: ErrorCode, message: str, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def rate_limited(wait: float, doing: str) -> None:
    """Raise `rate_limited` when a limiter asked to `wait` seconds ("you are posting too fast")."""
    if wait:
        raise ServiceError(
            ErrorCode.RATE_LIMITED, f"{doing} too fast; try again in {wait:.1f} s", retry_after_ms=int(wait * 1000) + 1
        )


HTTP_STATUS = {
    ErrorCode.BAD_FRAME: 400,
    ErrorCode.INVALID_FIELD: 400,
    ErrorCode.UNKNOWN_TYPE: 400,
    ErrorCode.TOO_LARGE: 413,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_MEMBER: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.SPACE_CLOSED: 409,
    ErrorCode.MUTED: 403,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.CONFLICT: 409,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL: 500,
}
