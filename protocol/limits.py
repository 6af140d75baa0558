"""Limits the decoder and the server enforce. One frozen value, passed in; no module globals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    max_frame_bytes: int = 16 * 1024  # one client frame, encoded
    max_text_chars: int = 4000  # one chat message
    max_channels: int = 100  # live subscriptions per connection
    max_client_id_chars: int = 64
    max_ref_chars: int = 64
    max_token_chars: int = 200
    max_reason_chars: int = 500  # a moderator's reason, a reporter's note
    max_mail_recipients: int = 50
    max_subject_chars: int = 200
    max_page: int = 100  # items in one page of a listing

    @property
    def max_message_bytes(self) -> int:
        """The transport's limit on one WebSocket message (4 × max_frame_bytes): above it the
        socket closes with 1009; between the two, a frame is answered `too_large` and the socket
        lives on."""
        return 4 * self.max_frame_bytes


DEFAULT_LIMITS = Limits()
