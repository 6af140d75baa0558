"""Encoding and decoding frames, in two wire formats with one schema.

    JSON         subprotocol "twinhub.v1.json"     text frames, UTF-8
    MessagePack  subprotocol "twinhub.v1.msgpack"  binary frames

`encode_client`/`decode_client` and `encode_server`/`decode_server` are exact inverses:
decode(encode(frame)) == frame for every frame this module can build. Decoding checks the
frame size *before* parsing and every field's type and range *before* building the frame;
whatever the input, it raises nothing but ProtocolError.

Server messages are arrays of frames. `encode_server_item` encodes one frame once; `join_batch`
builds the array from already-encoded items without re-encoding them, so a fan-out encodes an
event once per wire format and each socket's writer only concatenates bytes.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

import msgpack
import orjson

from .errors import ErrorCode, ProtocolError
from .frames import (
    MAIL_FOLDERS,
    MEMBER_ROLE_NAMES,
    MUTE_SCOPE_NAMES,
    REPORT_OUTCOMES,
    REPORT_STATUSES,
    ClientFrame,
    Delete,
    DeleteMail,
    Edit,
    Error,
    Event,
    GetMail,
    GetThread,
    Hello,
    Hide,
    InvitationNotice,
    ListModeration,
    ListRecipients,
    ListReports,
    ListThreads,
    MarkMail,
    MoveMail,
    Mute,
    Ok,
    Ping,
    Pong,
    Post,
    Presence,
    RemoveMember,
    Report,
    ReportMail,
    ResolveReport,
    RoomNotice,
    SendMail,
    ServerFrame,
    SetRole,
    Subscribe,
    Typing,
    TypingNotice,
    Unhide,
    Unmute,
    Unsubscribe,
    Welcome,
)
from .limits import DEFAULT_LIMITS, Limits


class Encoding(StrEnum):
    JSON = "twinhub.v1.json"
    MSGPACK = "twinhub.v1.msgpack"


SUBPROTOCOLS = (Encoding.JSON.value, Encoding.MSGPACK.value)
# Ids are positive; the one platform-wide channel is `moderation:0` (every project's reports).
CHANNEL_RE = re.compile(r"^(?:[a-z]{1,16}:[1-9][0-9]{0,17}|moderation:0)$")
LINK_RE = re.compile(r"^https?://[^\s\x00-\x1f\"<>]+$")
MAX_INT = 2**63 - 1


# -- low level: bytes <-> plain values ----------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


# One decoder for every frame: json.loads(..., parse_constant=...) builds a new one per call,
# which was 17 % of the server's time per post in the ingest benchmark.
_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _loads_json(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    # What orjson refuses, the standard library decides, so that a frame means what it always
    # meant: "\ud800" is valid JSON that orjson refuses (the text check answers it,
    # INVALID_FIELD), NaN and a nesting too deep are refused by both (BAD_FRAME). The one
    # difference left is harmless: orjson reads an integer beyond 64 bits as a float, refused
    # as INVALID_FIELD where an integer belongs, as the integer itself would be.
    if isinstance(data, bytes | bytearray | memoryview):
        data = bytes(data).decode("utf-8")
    # Deep nesting ends in RecursionError inside the C scanner, which _loads turns into
    # BAD_FRAME; the frame-size limit bounds how much work that can cost. Like json.loads,
    # decode() refuses anything but whitespace after the value.
    return _JSON_DECODER.decode(data)


def _is_unicode(s: str) -> bool:
    """False for a string holding a lone surrogate (valid JSON, "\\ud800", but no text: no
    database, file or page can store it)."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _all_unicode(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return _is_unicode(value)
    if isinstance(value, dict):
        return all(_all_unicode(k, depth) and _all_unicode(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_all_unicode(v, depth + 1) for v in value)
    return True


def json_document(data: bytes | str) -> dict[str, Any]:
    """An HTTP body: a JSON object, parsed as frames are (NaN refused, nesting bounded), every
    string of it valid Unicode. Raises ProtocolError: BAD_FRAME for what is not a JSON object
    (too deep included), INVALID_FIELD for a lone surrogate anywhere in it."""
    try:
        value = _loads_json(data) if data else {}
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise ProtocolError(ErrorCode.BAD_FRAME, "the body must be a JSON object") from None
    if not isinstance(value, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "the body must be a JSON object")
    try:
        unicode = _all_unicode(value)
    except RecursionError:
        raise ProtocolError(ErrorCode.BAD_FRAME, "the body is nested too deep") from None
    if not unicode:
        raise ProtocolError(ErrorCode.INVALID_FIELD, "the body holds a string that is not valid Unicode (lone surrogate)")
    return value


def _loads_msgpack(data: bytes) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ValueError("MessagePack frames are binary")
    n = len(data)
    # The C unpacker's limits keep a forged "4 GB string" header from allocating anything.
    return msgpack.unpackb(
        data,
        raw=False,
        strict_map_key=True,
        use_list=True,
        max_str_len=n,
        max_bin_len=n,
        max_array_len=n,
        max_map_len=n,
        max_ext_len=0,
    )


def _loads(data: bytes | str, encoding: Encoding, limits: Limits) -> Any:
    size = len(data) if isinstance(data, bytes | bytearray | memoryview) else len(data.encode("utf-8", "surrogatepass"))
    if size > limits.max_frame_bytes:
        raise ProtocolError(
            ErrorCode.TOO_LARGE, f"frame is {size} bytes; the limit is {limits.max_frame_bytes}",
            ref=_ref_of_oversized(data, size, encoding, limits),
        )
    if size == 0:
        raise ProtocolError(ErrorCode.BAD_FRAME, "empty frame")
    try:
        return _parse(data, encoding)
    except Exception as exc:  # noqa: BLE001 — the decoding boundary: any parser failure is the peer's
        raise ProtocolError(ErrorCode.BAD_FRAME, f"not a valid {encoding.name} frame: {_brief(exc)}") from None


def _parse(data: bytes | str, encoding: Encoding) -> Any:
    if encoding is Encoding.JSON:
        return _loads_json(data)
    if isinstance(data, str):
        raise ValueError("MessagePack frames must be binary, not text")
    return _loads_msgpack(data)


def _ref_of_oversized(data: bytes | str, size: int, encoding: Encoding, limits: Limits) -> int | str | None:
    """The `ref` of a frame refused as too large, when it can be read: without it a client cannot
    tell which request failed, and one that resends what was never answered resends it for ever.
    Bounded: only a frame the transport let through (at most max_transport_bytes, above the frame
    limit; beyond, the socket is closed with 1009 before we see it) is parsed, by the same
    parsers and limits as any frame; a frame that does not parse, is not a map, or whose `ref`
    is not a valid one, has none."""
    if size > limits.max_transport_bytes:
        return None
    try:
        m = _parse(data, encoding)
    except Exception:  # noqa: BLE001 — not a frame at all: nothing to read a ref from
        return None
    if not isinstance(m, dict):
        return None
    try:
        return _Fields(m, limits).ref
    except ProtocolError:
        return None


def _brief(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]


def _dumps_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _dumps_json_bytes(value: Any) -> bytes:
    """UTF-8 JSON. Integer keys become strings, as json.dumps makes them; anything orjson will
    not write (an integer beyond 64 bits) is written, or refused, by the standard library."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return _dumps_json(value).encode()


def _dumps_msgpack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# -- field validation ---------------------------------------------------------------------------


class _Fields:
    """Reads typed fields out of a decoded map, raising INVALID_FIELD with the field's name."""

    __slots__ = ("m", "ref", "limits")

    def __init__(self, m: dict[str, Any], limits: Limits) -> None:
        self.m = m
        self.limits = limits
        self.ref = None
        self.ref = self.optional_ref()

    def _fail(self, name: str, why: str) -> ProtocolError:
        return ProtocolError(ErrorCode.INVALID_FIELD, f"field '{name}' {why}", ref=self.ref)

    def optional_ref(self) -> int | str | None:
        v = self.m.get("ref")
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, int | str):
            raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'ref' must be an integer or a string")
        if isinstance(v, int) and not -MAX_INT <= v <= MAX_INT:
            raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'ref' is out of range")
        if isinstance(v, str) and len(v) > self.limits.max_ref_chars:
            raise ProtocolError(ErrorCode.INVALID_FIELD, f"field 'ref' is longer than {self.limits.max_ref_chars}")
        if isinstance(v, str) and not _is_unicode(v):  # it is sent back: no answer could carry it
            raise ProtocolError(ErrorCode.INVALID_FIELD, "field 'ref' is not valid Unicode (lone surrogate)")
        return v

    def string(self, name: str, *, max_chars: int, required: bool = True, allow_empty: bool = False) -> str | None:
        v = self.m.get(name)
        if v is None:
            if required:
                raise self._fail(name, "is required")
            return None
        if not isinstance(v, str):
            raise self._fail(name, "must be a string")
        if len(v) > max_chars:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"field '{name}' has {len(v)} characters; the limit is {max_chars}", ref=self.ref
            )
        if not allow_empty and not v.strip():
            raise self._fail(name, "must not be empty")
        if "\x00" in v:
            raise self._fail(name, "must not contain NUL characters")
        if not _is_unicode(v):
            raise self._fail(name, "is not valid Unicode (lone surrogate)")
        return v

    def text(self, name: str) -> str:
        v = self.string(name, max_chars=self.limits.max_text_chars)
        assert v is not None
        return v

    def integer(self, name: str, *, required: bool = True, minimum: int = 0) -> int | None:
        v = self.m.get(name)
        if v is None:
            if required:
                raise self._fail(name, "is required")
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            raise self._fail(name, "must be an integer")
        if not minimum <= v <= MAX_INT:
            raise self._fail(name, f"must be between {minimum} and {MAX_INT}")
        return v

    def boolean(self, name: str) -> bool:
        v = self.m.get(name)
        if not isinstance(v, bool):
            raise self._fail(name, "is required and must be true or false")
        return v

    def choice(self, name: str, options: tuple[str, ...], default: str | None = None) -> str:
        v = self.m.get(name, default)
        if v not in options:
            raise self._fail(name, f"must be one of {', '.join(options)}")
        return v  # type: ignore[return-value]

    def page_limit(self, default: int) -> int:
        v = self.integer("limit", required=False, minimum=1)
        if v is None:
            return default
        if v > self.limits.max_page:
            raise self._fail("limit", f"must be at most {self.limits.max_page}")
        return v

    def ids(self, name: str) -> tuple[int, ...]:
        """A non-empty list of distinct ids (recipients)."""
        v = self.m.get(name)
        if not isinstance(v, list) or not v:
            raise self._fail(name, "is required and must be a non-empty list of member ids")
        if len(v) > self.limits.max_mail_recipients:
            raise ProtocolError(
                ErrorCode.TOO_LARGE, f"field '{name}' has {len(v)} ids; the limit is {self.limits.max_mail_recipients}",
                ref=self.ref,
            )
        if any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= MAX_INT for x in v):
            raise self._fail(name, "must hold member ids (positive integers)")
        if len(set(v)) != len(v):
            raise self._fail(name, "must not name the same member twice")
        return tuple(v)

    def links(self) -> tuple[str, ...] | None:
        """Optional: up to 5 http(s) URLs of at most 500 characters each."""
        v = self.m.get("links")
        if v is None:
            return None
        if not isinstance(v, list) or len(v) > 5:
            raise self._fail("links", "must be a list of at most 5 URLs")
        for url in v:
            if not isinstance(url, str) or len(url) > 500 or not LINK_RE.match(url):
                raise self._fail("links", "must hold http(s) URLs of at most 500 characters")
        return tuple(v)

    def channel(self) -> str:
        v = self.m.get("channel")
        if not isinstance(v, str):
            raise self._fail("channel", "is required and must be a string like 'room:42'")
        if not CHANNEL_RE.match(v):
            raise self._fail("channel", "must look like 'room:42'")
        return v


def _decode_client_map(m: Any, limits: Limits) -> ClientFrame:
    if not isinstance(m, dict):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must be a map with a 'type' key")
    f = _Fields(m, limits)
    kind = m.get("type")
    ref = f.ref
    if not isinstance(kind, str):  # first: a list or a map here is unhashable for the lookups below
        raise ProtocolError(ErrorCode.BAD_FRAME, "a frame must have a string 'type'", ref=ref)
    if kind == "post":
        return Post(
            channel=f.channel(),
            text=f.text("text"),
            client_id=f.string("client_id", max_chars=limits.max_client_id_chars, required=False),
            title=f.string("title", max_chars=limits.max_subject_chars, required=False),
            parent=f.integer("parent", required=False, minimum=1),
            links=f.links(),
            ref=ref,
        )
    if kind == "subscribe":
        return Subscribe(channel=f.channel(), since=f.integer("since", required=False), ref=ref)
    if kind == "unsubscribe":
        return Unsubscribe(channel=f.channel(), ref=ref)
    if kind == "typing":
        return Typing(channel=f.channel(), ref=ref)
    if kind == "edit":
        return Edit(channel=f.channel(), id=f.integer("id", minimum=1), text=f.text("text"), ref=ref)
    if kind == "delete":
        return Delete(channel=f.channel(), id=f.integer("id", minimum=1), reason=_reason(f), ref=ref)
    if kind == "hide":
        return Hide(channel=f.channel(), id=f.integer("id", minimum=1), reason=_reason(f), ref=ref)
    if kind in _MAIL_DECODERS:
        return _MAIL_DECODERS[kind](f, ref)
    if kind in _MODERATION_DECODERS:
        return _MODERATION_DECODERS[kind](f, ref)
    if kind == "hello":
        # A token longer than any token is no token: it is refused as every token that opens no
        # session is (`unauthenticated`, then close 4001: services/auth.py's session_key, before
        # any hash or lookup), not as a field over its limit — that would leave the socket open
        # and unauthenticated, and answer otherwise than HTTP does (401). The frame's own limit
        # bounds it.
        return Hello(token=f.string("token", max_chars=limits.max_frame_bytes, required=False), ref=ref)
    if kind == "ping":
        return Ping(ref=ref)
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r}", ref=ref)


def _send_mail(f: _Fields, ref: Any) -> SendMail:
    lim = f.limits
    return SendMail(
        space=f.integer("space", minimum=1),  # type: ignore[arg-type]
        to=f.ids("to"),
        text=f.text("text"),
        subject=f.string("subject", max_chars=lim.max_subject_chars, required=False),
        reply_to=f.integer("reply_to", required=False, minimum=1),
        client_id=f.string("client_id", max_chars=lim.max_client_id_chars, required=False),
        ref=ref,
    )


def _note(f: _Fields) -> str:
    return f.string("note", max_chars=f.limits.max_reason_chars, required=False, allow_empty=True) or ""


def _reason(f: _Fields) -> str:
    return f.string("reason", max_chars=f.limits.max_reason_chars, required=False, allow_empty=True) or ""


_MAIL_DECODERS: dict[str, Any] = {
    "send_mail": _send_mail,
    "mark_mail": lambda f, ref: MarkMail(id=f.integer("id", minimum=1), read=f.boolean("read"), ref=ref),
    "move_mail": lambda f, ref: MoveMail(id=f.integer("id", minimum=1), folder=f.choice("folder", MAIL_FOLDERS), ref=ref),
    "delete_mail": lambda f, ref: DeleteMail(id=f.integer("id", minimum=1), ref=ref),
    "report_mail": lambda f, ref: ReportMail(id=f.integer("id", minimum=1), note=_note(f), ref=ref),
    "get_mail": lambda f, ref: GetMail(id=f.integer("id", minimum=1), ref=ref),
    "mail_threads": lambda f, ref: ListThreads(
        space=f.integer("space", minimum=1), folder=f.choice("folder", MAIL_FOLDERS, "inbox"),
        before=f.integer("before", required=False, minimum=1), limit=f.page_limit(20), ref=ref,
    ),
    "mail_thread": lambda f, ref: GetThread(
        space=f.integer("space", minimum=1), thread=f.integer("thread", minimum=1),
        after=f.integer("after", required=False, minimum=1), limit=f.page_limit(100), ref=ref,
    ),
    "mail_recipients": lambda f, ref: ListRecipients(space=f.integer("space", minimum=1), ref=ref),
    "mail_reports": lambda f, ref: ListReports(
        space=f.integer("space", minimum=1), before=f.integer("before", required=False, minimum=1),
        limit=f.page_limit(20), ref=ref,
    ),
}


_MODERATION_DECODERS: dict[str, Any] = {
    "unhide": lambda f, ref: Unhide(channel=f.channel(), id=f.integer("id", minimum=1), reason=_reason(f), ref=ref),
    "report": lambda f, ref: Report(channel=f.channel(), id=f.integer("id", minimum=1), note=_note(f), ref=ref),
    "resolve_report": lambda f, ref: ResolveReport(
        id=f.integer("id", minimum=1), outcome=f.choice("outcome", REPORT_OUTCOMES), note=_note(f), ref=ref,
    ),
    "reports": lambda f, ref: ListModeration(
        space=f.integer("space", required=False, minimum=1),
        status=None if f.m.get("status") is None else f.choice("status", REPORT_STATUSES),
        before=f.integer("before", required=False, minimum=1), limit=f.page_limit(20), ref=ref,
    ),
    "mute": lambda f, ref: Mute(
        space=f.integer("space", minimum=1), user_id=f.integer("user_id", minimum=1),
        scope=f.choice("scope", MUTE_SCOPE_NAMES), minutes=f.integer("minutes", minimum=1),
        reason=_reason(f), ref=ref,
    ),
    "set_role": lambda f, ref: SetRole(
        space=f.integer("space", minimum=1), user_id=f.integer("user_id", minimum=1),
        role=f.choice("role", MEMBER_ROLE_NAMES), ref=ref,
    ),
    "remove_member": lambda f, ref: RemoveMember(
        space=f.integer("space", minimum=1), user_id=f.integer("user_id", minimum=1), ref=ref,
    ),
    "unmute": lambda f, ref: Unmute(
        space=f.integer("space", minimum=1), user_id=f.integer("user_id", minimum=1),
        scope=f.choice("scope", MUTE_SCOPE_NAMES), ref=ref,
    ),
}


def decode_client(data: bytes | str, encoding: Encoding, limits: Limits = DEFAULT_LIMITS) -> ClientFrame:
    """Decode one client frame. Raises ProtocolError (and nothing else) on any bad input."""
    return _decode_client_map(_loads(data, encoding, limits), limits)


def frame_from_map(m: Any, limits: Limits = DEFAULT_LIMITS) -> ClientFrame:
    """Build a client frame from an already-parsed map (an HTTP request's JSON body with its
    `type` set by the route), with exactly the checks `decode_client` makes."""
    return _decode_client_map(m, limits)


def _client_to_map(frame: ClientFrame) -> dict[str, Any]:
    m: dict[str, Any] = {"type": frame.type}
    for name in frame.__dataclass_fields__:  # type: ignore[union-attr]
        v = getattr(frame, name)
        if v is not None:
            m[name] = v
    return m


def encode_client(frame: ClientFrame, encoding: Encoding) -> bytes | str:
    """Encode a client frame (used by clients, the load tests and the tests)."""
    m = _client_to_map(frame)
    return _dumps_json(m) if encoding is Encoding.JSON else _dumps_msgpack(m)


# -- server frames ------------------------------------------------------------------------------


def server_to_map(frame: ServerFrame) -> dict[str, Any]:
    """The wire map of a server frame: `data` dicts are flattened, `ref: None` omitted."""
    if isinstance(frame, Event):
        return {"type": "event", "channel": frame.channel, "seq": frame.seq, "kind": frame.kind, **frame.data}
    if isinstance(frame, Ok):
        m: dict[str, Any] = {"type": "ok", **frame.data}
    elif isinstance(frame, Error):
        m = {"type": "error", "code": frame.code, "message": frame.message, **frame.data}
    elif isinstance(frame, Welcome):
        m = {"type": "welcome", "user": frame.user, "spaces": frame.spaces, "limits": frame.limits}
    elif isinstance(frame, TypingNotice):
        return {"type": "typing", "channel": frame.channel, "user": frame.user}
    elif isinstance(frame, Presence):
        m = {"type": "presence", "channel": frame.channel}
        for name in ("members", "joined", "left", "count"):
            if getattr(frame, name) is not None:
                m[name] = getattr(frame, name)
        return m
    elif isinstance(frame, RoomNotice):
        return {"type": "room", "channel": frame.channel, "room": frame.room}
    elif isinstance(frame, InvitationNotice):
        return {"type": "invitation", "invitation": frame.invitation}
    elif isinstance(frame, Pong):
        m = {"type": "pong"}
    else:  # pragma: no cover — the union is closed
        raise TypeError(f"not a server frame: {frame!r}")
    if frame.ref is not None:
        m["ref"] = frame.ref
    return m


_EVENT_KEYS = {"type", "channel", "seq", "kind"}


def server_from_map(m: dict[str, Any]) -> ServerFrame:
    """Inverse of server_to_map. Raises ProtocolError on a map that is not a server frame."""
    try:
        kind = m["type"]
        if kind == "event":
            return Event(m["channel"], m["seq"], m["kind"], {k: v for k, v in m.items() if k not in _EVENT_KEYS})
        if kind == "ok":
            return Ok(ref=m.get("ref"), data={k: v for k, v in m.items() if k not in ("type", "ref")})
        if kind == "error":
            rest = {k: v for k, v in m.items() if k not in ("type", "ref", "code", "message")}
            return Error(m["code"], m["message"], ref=m.get("ref"), data=rest)
        if kind == "welcome":
            return Welcome(m["user"], m["spaces"], m["limits"], ref=m.get("ref"))
        if kind == "typing":
            return TypingNotice(m["channel"], m["user"])
        if kind == "presence":
            return Presence(m["channel"], m.get("members"), m.get("joined"), m.get("left"), m.get("count"))
        if kind == "room":
            return RoomNotice(m["channel"], m["room"])
        if kind == "invitation":
            return InvitationNotice(m["invitation"])
        if kind == "pong":
            return Pong(ref=m.get("ref"))
    except (KeyError, TypeError) as exc:
        raise ProtocolError(ErrorCode.BAD_FRAME, f"malformed server frame: {_brief(exc)}") from None
    raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown server frame type {str(kind)[:40]!r}")


def encode_server_item(frame: ServerFrame, encoding: Encoding) -> bytes:
    """Encode one server frame as an array *item* (not yet a WebSocket message): UTF-8 JSON text
    or MessagePack. Bytes for both, so that a message is joined and written without decoding or
    re-encoding text on the way to the socket."""
    m = server_to_map(frame)
    return _dumps_json_bytes(m) if encoding is Encoding.JSON else _dumps_msgpack(m)


def _msgpack_array_header(n: int) -> bytes:
    if n < 16:
        return bytes((0x90 | n,))
    if n < 0x10000:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


def join_batch(items: list[bytes], encoding: Encoding) -> bytes:
    """One WebSocket message's payload holding `items` (each from encode_server_item), without
    re-encoding: a JSON array (UTF-8 text) or a MessagePack array."""
    if encoding is Encoding.JSON:
        return b"[" + b",".join(items) + b"]"
    return _msgpack_array_header(len(items)) + b"".join(items)


def encode_server(frames: list[ServerFrame], encoding: Encoding) -> bytes:
    """Encode a whole server message (an array of frames): UTF-8 JSON text or MessagePack."""
    return join_batch([encode_server_item(f, encoding) for f in frames], encoding)


def decode_server(data: bytes | str, encoding: Encoding) -> list[ServerFrame]:
    """Decode a server message into its frames (for clients). Raises ProtocolError on bad input."""
    try:
        value = json.loads(data) if encoding is Encoding.JSON else msgpack.unpackb(data, raw=False)
    except Exception as exc:  # noqa: BLE001 — decoding boundary
        raise ProtocolError(ErrorCode.BAD_FRAME, f"not a valid server message: {_brief(exc)}") from None
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise ProtocolError(ErrorCode.BAD_FRAME, "a server message is an array of frames")
    return [server_from_map(m) for m in value]
