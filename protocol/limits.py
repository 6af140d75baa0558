"""Limits the decoder and the server enforce. One frozen value, passed in; no module globals.

One rule for text size: a client is held to the *character* limits of the fields (4,000
characters of text, 200 of a title, …); the byte limits are set so that they never refuse a
request whose every field is within its character limit, sent as UTF-8 unescaped — every
character as itself, escaping only what JSON must (the quote, the backslash and the control
characters U+0000–U+001F). The largest such frame is a journal entry with every field at its
limit: 35,819 bytes in JSON when its text is all control characters (six bytes each, escaped),
27,144 in MessagePack with four-byte characters. tests/protocol/test_limits.py builds it from
these numbers, so a character limit raised here fails there until the byte limits follow. A
client that escapes what it need not (an emoji as two escaped surrogates: twelve bytes for
four) may be refused `too_large`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    # One client frame, encoded: room for a journal entry at every field's limit (above).
    max_frame_bytes: int = 40 * 1024
    # Above this the WebSocket transport closes the connection (1009) without reading the frame;
    # between max_frame_bytes and this a frame is answered `too_large` and the socket lives on.
    max_transport_bytes: int = 64 * 1024
    # One HTTP request body: room for 100 pupils' names of 100 characters each (POST …/pupils).
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 4000  # one chat message
    max_channels: int = 100  # live subscriptions per connection
    max_client_id_chars: int = 64
    max_ref_chars: int = 64
    max_token_chars: int = 200
    max_reason_chars: int = 500  # a moderator's reason, a reporter's note
    max_mail_recipients: int = 50
    max_subject_chars: int = 200
    max_page: int = 100  # items in one page of a listing


DEFAULT_LIMITS = Limits()
