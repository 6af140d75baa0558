"""The page's catalogues (realtime/web/static/locales): every language has exactly English's
keys with the same placeholders, and every key the page's code asks for exists in English."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[1] / "realtime" / "web" / "static"
LOCALES = STATIC / "locales"
LANGUAGES = json.loads((STATIC / "languages.json").read_text("utf-8"))  # each catalogue by its own name
ENGLISH = json.loads((LOCALES / "en.json").read_text("utf-8"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@pytest.mark.parametrize("tag", sorted(LANGUAGES))
def test_a_catalogue_has_the_keys_and_placeholders_of_english(tag):
    catalogue = json.loads((LOCALES / f"{tag}.json").read_text("utf-8"))
    assert sorted(set(ENGLISH) - set(catalogue)) == [], "missing"
    assert sorted(set(catalogue) - set(ENGLISH)) == [], "not in English"
    wrong = {k: v for k, v in catalogue.items() if set(PLACEHOLDER.findall(v)) != set(PLACEHOLDER.findall(ENGLISH[k]))}
    assert wrong == {}
    assert all(isinstance(v, str) and v.strip() for v in catalogue.values())


def test_every_key_the_page_asks_for_is_in_english():
    asked = set()
    for script in STATIC.rglob("*.js"):
        asked |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", script.read_text("utf-8")))
    assert sorted(asked - set(ENGLISH)) == []
