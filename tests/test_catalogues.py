"""The page's catalogues (realtime/web/static/locales): every language has exactly English's
keys with the same placeholders, a counted phrase has every plural form its language's counts take
(CLDR's rules, read through Babel), and every key the page's code asks for exists in English."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from babel import Locale

STATIC = Path(__file__).resolve().parents[1] / "realtime" / "web" / "static"
LOCALES = STATIC / "locales"
LANGUAGES = json.loads((STATIC / "languages.json").read_text("utf-8"))  # each catalogue by its own name
ENGLISH = json.loads((LOCALES / "en.json").read_text("utf-8"))
PLACEHOLDER = re.compile(r"\{(\w+)\}")
COUNTS = range(0, 1001)  # what the page counts: mails, names, members


def placeholders(value: str | dict[str, str]) -> set[str]:
    texts = value.values() if isinstance(value, dict) else [value]
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def plural_forms(tag: str) -> dict[str, set[int]]:
    """Each form a whole count takes in this language, with the counts that take it."""
    rule = Locale.parse(tag.replace("-", "_")).plural_form
    forms: dict[str, set[int]] = {"other": set()}  # "other" always: the form the page falls back on
    for n in COUNTS:
        forms.setdefault(rule(n), set()).add(n)
    return forms


def test_the_catalogues_are_the_languages_listed():
    assert sorted(p.stem for p in LOCALES.glob("*.json")) == sorted(LANGUAGES)


@pytest.mark.parametrize("tag", sorted(LANGUAGES))
def test_a_catalogue_has_the_keys_and_placeholders_of_english(tag):
    catalogue = json.loads((LOCALES / f"{tag}.json").read_text("utf-8"))
    assert sorted(set(ENGLISH) - set(catalogue)) == [], "missing"
    assert sorted(set(catalogue) - set(ENGLISH)) == [], "not in English"
    wrong = {k: v for k, v in catalogue.items() if placeholders(v) != placeholders(ENGLISH[k])}
    assert wrong == {}, "placeholders left out, misspelt or added"
    texts = [t for v in catalogue.values() for t in (v.values() if isinstance(v, dict) else [v])]
    assert all(isinstance(t, str) and t.strip() for t in texts), "an empty text"


@pytest.mark.parametrize("tag", sorted(LANGUAGES))
def test_a_counted_phrase_has_each_form_of_its_language(tag):
    catalogue = json.loads((LOCALES / f"{tag}.json").read_text("utf-8"))
    forms = plural_forms(tag)
    assert {k for k, v in catalogue.items() if isinstance(v, dict)} == {k for k, v in ENGLISH.items() if isinstance(v, dict)}
    for key, value in catalogue.items():
        if not isinstance(value, dict):
            continue
        assert set(value) == set(forms), f"{key}: forms {sorted(value)}, {tag} needs {sorted(forms)}"
        for form, counts in forms.items():
            # A form for one count may say it in words ("Delete this mail"); a form several
            # counts share (Ukrainian "one": 1, 21, 31…) must show the number.
            if len(counts) > 1 and "n" in placeholders(ENGLISH[key]):
                assert "{n}" in value[form], f"{key}.{form} is used for {sorted(counts)[:4]}… but does not show {{n}}"


def test_english_counts_pick_the_right_form():
    assert plural_forms("en") == {"one": {1}, "other": set(COUNTS) - {1}}
    assert set(plural_forms("pl")) == {"one", "few", "many", "other"}
    assert set(plural_forms("ar")) == {"zero", "one", "two", "few", "many", "other"}


def test_every_key_the_page_asks_for_is_in_english():
    asked = set()
    for script in STATIC.rglob("*.js"):
        asked |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", script.read_text("utf-8")))
    assert sorted(asked - set(ENGLISH)) == []


def test_every_error_code_is_said_in_words():
    """The page shows an error by its code in the reader's language, never the server's English."""
    from protocol import ErrorCode

    assert sorted(c.value for c in ErrorCode if f"error.{c.value}" not in ENGLISH) == []


def test_every_language_of_the_etwinning_community_is_there():
    """The EU's 24 official languages, and those of eTwinning's other countries the issue names."""
    eu = "bg cs da de el en es et fi fr ga hr hu it lt lv mt nl pl pt ro sk sl sv".split()
    others = "is no sq mk sr tr uk ka ar".split()
    assert sorted(set(eu + others) - set(LANGUAGES)) == []
    assert len(set(LANGUAGES.values())) == len(LANGUAGES)  # each by its own, distinct name
