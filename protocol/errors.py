"""The protocol's error codes, close codes and its one exception.

    ProtocolError          a frame from the peer could not be accepted (the peer's fault)
      carries .code        a stable ErrorCode string sent back in the `error` frame
      carries .message     a sentence a developer understands

Decoding never raises anything but ProtocolError: whatever bytes arrive, the caller has one
thing to catch and one error frame to send back.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """Stable codes carried by `error` frames. Never renamed once published (docs/protocol.md)."""

    BAD_FRAME = "bad_frame"  # not valid JSON/MessagePack, or not a frame object
    UNKNOWN_TYPE = "unknown_type"  # a frame whose `type` the server does not know
    INVALID_FIELD = "invalid_field"  # a field missing, of the wrong type or out of range
    TOO_LARGE = "too_large"  # frame or text over the documented limit
    UNAUTHENTICATED = "unauthenticated"  # first frame was not `hello`, or the token is bad/expired
    ALREADY_AUTHENTICATED = "already_authenticated"
    FORBIDDEN = "forbidden"  # the role matrix says no
    NOT_MEMBER = "not_member"  # not (or no longer) a member of the channel's space
    NOT_FOUND = "not_found"  # no such channel/message, or one the caller may not know of
    NOT_SUBSCRIBED = "not_subscribed"
    TOO_MANY_CHANNELS = "too_many_channels"
    SPACE_CLOSED = "space_closed"  # the project is closed: read-only until reopened
    ROOM_ARCHIVED = "room_archived"  # the room is archived: read-only until unarchived
    MUTED = "muted"
    RATE_LIMITED = "rate_limited"
    CONFLICT = "conflict"  # an idempotency key reused for a different request
    UNAVAILABLE = "unavailable"  # the database could not commit; nothing was stored
    INTERNAL = "internal"
    # Files (docs/protocol.md, "Files"): what an upload may be refused for; nothing is kept.
    FILE_EMPTY = "file_empty"
    FILE_TYPE_REFUSED = "file_type_refused"  # a known type the platform does not take (html, svg, exe…)
    FILE_TYPE_UNKNOWN = "file_type_unknown"  # content of no type on the list
    FILE_TYPE_MISMATCH = "file_type_mismatch"  # the name says one type, the content another
    FILE_NAME_INVALID = "file_name_invalid"
    IMAGE_TOO_LARGE = "image_too_large"  # more pixels than an image may have (a decompression bomb)
    IMAGE_UNREADABLE = "image_unreadable"  # says it is an image, does not decode as one
    QUOTA_EXCEEDED = "quota_exceeded"  # the project's files would pass its quota


class CloseCode(IntEnum):
    """WebSocket close codes the server uses (docs/protocol.md, "Close codes")."""

    NORMAL = 1000
    MESSAGE_TOO_BIG = 1009  # frame above the hard transport limit (sent by the transport)
    SERVICE_RESTART = 1012  # server shutting down: reconnect (to another process) and resume
    AUTH_FAILED = 4001  # no valid `hello` in time, or the session was revoked
    # (No code for a refused handshake, a foreign Origin or subprotocol: that is HTTP 403, the
    # socket never opened.)
    ABUSIVE = 4008  # too many bad frames or rate-limit violations in a row
    SLOW_CONSUMER = 4009  # outbox full: the client did not read fast enough; resume with `since`


class ProtocolError(Exception):
    """A frame from the peer could not be accepted. Carries the code sent back to the peer."""

    def __init__(self, code: ErrorCode, message: str, *, ref: int | str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ref = ref

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value!r}, {self.message!r})"
