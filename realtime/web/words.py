"""The server's own words on what it renders for people — the printed login sheet — taken from
the page's catalogues (static/locales/<tag>.json), so that a language is translated once, in one
place (docs/i18n.md). A counted phrase picks its CLDR plural form through Babel, as the page does
through Intl.PluralRules; a key a catalogue lacks falls back to English's."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from babel import Locale

LOCALES = Path(__file__).parent / "static" / "locales"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@functools.cache
def _catalogue(tag: str) -> dict[str, Any]:
    return json.loads((LOCALES / f"{tag}.json").read_text("utf-8"))


@functools.cache
def _plural_rule(tag: str) -> Any:
    return Locale.parse(tag.replace("-", "_")).plural_form


def say(tag: str, key: str, **values: Any) -> str:
    """The text of `key` in language `tag` (a tag the server checked: services/languages.py)."""
    text = _catalogue(tag).get(key) or _catalogue("en")[key]
    if isinstance(text, dict):
        text = text.get(_plural_rule(tag)(values.get("n", 0))) or text["other"]
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), text)
