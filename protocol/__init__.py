"""TwinHub's wire protocol, sans I/O: frames, codecs, limits and error codes.

Nothing here touches a socket, an event loop or a database; it is pure functions over bytes,
so it can be tested exactly and reused by any client (docs/protocol.md is its contract).
"""

from .codec import (
    CHANNEL_RE,
    SUBPROTOCOLS,
    Encoding,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
    encode_server_item,
    frame_from_map,
    join_batch,
    server_to_map,
)
from .errors import CloseCode, ErrorCode, ProtocolError
from .frames import (
    MAIL_FOLDERS,
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
    ListRecipients,
    ListReports,
    ListThreads,
    MailFrame,
    MarkMail,
    MoveMail,
    Ok,
    Ping,
    Pong,
    Post,
    Presence,
    ReportMail,
    SendMail,
    ServerFrame,
    Subscribe,
    Typing,
    TypingNotice,
    Unsubscribe,
    Welcome,
)
from .limits import DEFAULT_LIMITS, Limits

__all__ = [
    "CHANNEL_RE", "SUBPROTOCOLS", "DEFAULT_LIMITS", "ClientFrame", "CloseCode", "Delete", "Edit",
    "Encoding", "Error", "ErrorCode", "Event", "Hello", "Hide", "Limits", "Ok", "Ping", "Pong",
    "Post", "Presence", "ProtocolError", "ServerFrame", "Subscribe", "Typing", "TypingNotice",
    "Unsubscribe", "Welcome", "decode_client", "decode_server", "encode_client", "encode_server",
    "encode_server_item", "join_batch", "server_to_map",
    "MAIL_FOLDERS", "DeleteMail", "GetMail", "GetThread", "ListRecipients", "ListReports", "ListThreads",
    "MailFrame", "MarkMail", "MoveMail", "ReportMail", "SendMail", "frame_from_map",
]
