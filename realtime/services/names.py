"""What a name given to a room or a project may be: text a person reads on every member's screen.

Trimmed of spaces at both ends, of a bounded length, and free of control characters and of
invisible (format) ones — Unicode categories Cc and Cf: zero-width spaces and joiners, bidi
overrides, soft hyphens — which could make a name blank to the eye, look like another one, or
reverse the text around it on the page. A description may hold line breaks, and nothing else of
the kind. Each refusal is `invalid_field` naming the field.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from protocol import ErrorCode

from ..errors import ServiceError

_HIDDEN = frozenset({"Cc", "Cf"})


def plain_text(value: Any, field: str, *, most: int, least: int = 1, lines: bool = False) -> str:
    """`value` trimmed, if it is a string of `least` to `most` characters (counted once trimmed)
    with no control or invisible character (but line breaks, with `lines`); else `invalid_field`."""
    if not isinstance(value, str):
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{field} must be a string of {least} to {most} characters")
    text = value.strip()
    allowed = "\n" if lines else ""
    if any(c not in allowed and unicodedata.category(c) in _HIDDEN for c in text):
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{field} must not contain control or invisible characters")
    if not least <= len(text) <= most:
        raise ServiceError(ErrorCode.INVALID_FIELD, f"{field} must be {least} to {most} characters once trimmed")
    return text


def room_name(value: Any) -> str:
    """A room's name, on creating or renaming it: 1 to 100 characters."""
    return plain_text(value, "name", most=100)
