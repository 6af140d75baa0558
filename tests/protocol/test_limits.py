"""One rule for text size (protocol/limits.py): the character limits are what a client is held
to, and the byte limits never refuse a request whose every field is within its character limit,
sent as UTF-8 unescaped. The largest frames are built here from the limits themselves, with the
characters that cost the most bytes, so that raising a character limit fails here until the
byte limits follow."""

from __future__ import annotations

import json

import pytest

from protocol import Encoding, Post, ProtocolError, SendMail, decode_client, encode_client
from protocol.codec import MAX_INT
from protocol.limits import DEFAULT_LIMITS as LIMITS

# The costliest characters: a control character is six bytes in JSON (escaped), a four-byte
# character (an emoji, most of CJK's extension planes) four in both encodings.
CONTROL, FOUR_BYTES, QUOTE, ACCENTED = "\x01", "\U0001f30a", '"', "é"
KINDS = {"control": CONTROL, "four_bytes": FOUR_BYTES, "quote": QUOTE, "accented": ACCENTED, "ascii": "a"}
LINK_PREFIX = "https://x.example/"  # links refuse control characters, quotes and spaces


def size(frame, encoding: Encoding) -> int:
    data = encode_client(frame, encoding)
    return len(data.encode() if isinstance(data, str) else data)


def journal_entry_at_its_limits(char: str) -> Post:
    link_char = FOUR_BYTES if char in (CONTROL, QUOTE) else char
    link = LINK_PREFIX + link_char * (500 - len(LINK_PREFIX))
    return Post(
        channel="room:" + "9" * 18,
        text=char * LIMITS.max_text_chars,
        client_id=char * LIMITS.max_client_id_chars,
        title=char * LIMITS.max_subject_chars,
        links=(link,) * 5,
        ref=char * LIMITS.max_ref_chars,
    )


@pytest.mark.parametrize("encoding", list(Encoding), ids=lambda e: e.name)
@pytest.mark.parametrize("kind", KINDS)
def test_a_journal_entry_at_every_field_limit_fits_in_a_frame(kind, encoding):
    frame = journal_entry_at_its_limits(KINDS[kind])
    assert size(frame, encoding) <= LIMITS.max_frame_bytes, size(frame, encoding)
    assert decode_client(encode_client(frame, encoding), encoding) == frame


def test_the_largest_frame_is_the_one_the_limits_docstring_names():
    """The figures in protocol/limits.py and docs/protocol.md ("Text size") are these."""
    assert max(size(journal_entry_at_its_limits(c), Encoding.JSON) for c in KINDS.values()) == 35_819
    assert max(size(journal_entry_at_its_limits(c), Encoding.MSGPACK) for c in KINDS.values()) == 27_144


@pytest.mark.parametrize("encoding", list(Encoding), ids=lambda e: e.name)
def test_a_mail_at_every_field_limit_fits_in_a_frame(encoding):
    mail = SendMail(
        space=MAX_INT, to=tuple(range(MAX_INT - LIMITS.max_mail_recipients, MAX_INT)),
        text=CONTROL * LIMITS.max_text_chars, subject=CONTROL * LIMITS.max_subject_chars, reply_to=MAX_INT,
        client_id=CONTROL * LIMITS.max_client_id_chars, ref=CONTROL * LIMITS.max_ref_chars,
    )
    assert size(mail, encoding) <= LIMITS.max_frame_bytes
    assert decode_client(encode_client(mail, encoding), encoding) == mail


def test_escaping_what_need_not_be_escaped_can_cost_the_frame():
    """The rule's other half: the same entry with its emoji written as escaped surrogates (twelve
    bytes each) is over the frame limit, and refused as too large — never cut or misread."""
    frame = journal_entry_at_its_limits(FOUR_BYTES)
    escaped = json.dumps({"type": "post", "channel": frame.channel, "text": frame.text, "title": frame.title})
    assert len(escaped) > LIMITS.max_frame_bytes
    with pytest.raises(ProtocolError) as refused:
        decode_client(escaped, Encoding.JSON)
    assert refused.value.code == "too_large"


def test_a_hundred_pupils_at_their_name_limit_fit_in_an_http_body():
    """POST /api/spaces/{id}/pupils takes 100 names of 100 characters (docs/protocol.md)."""
    body = {"pupils": [CONTROL * 100] * 100, "school": CONTROL * 200}
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= LIMITS.max_body_bytes
    body = {"pupils": [FOUR_BYTES * 100] * 100, "school": FOUR_BYTES * 200}
    assert len(json.dumps(body, ensure_ascii=False).encode()) <= LIMITS.max_body_bytes


def test_the_byte_limits_keep_their_order():
    """A frame over its limit but under the transport's gets `too_large` and the socket lives on."""
    assert LIMITS.max_frame_bytes < LIMITS.max_transport_bytes
