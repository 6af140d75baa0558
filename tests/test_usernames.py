"""Generated usernames (realtime/services/pupils.py): readable ASCII from any Latin, Greek or
Cyrillic name, every letter transliterated (anyascii), none twice in one class."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from realtime.services import pupils
from realtime.services.pupils import username_for

SHAPE = re.compile(r"^[a-z0-9]{1,12}(\.[a-z0-9])?-[a-z2-9]{4}$")


@pytest.mark.parametrize(("name", "stem"), [
    ("Łucja Ślusarczyk", "lucja.s"), ("Zoé Dupont", "zoe.d"), ("Jürgen Groß", "jurgen.g"), ("Groß", "gross"),
    ("Søren Ørsted", "soren.o"), ("Şule Yılmaz", "sule.y"), ("Жанна Щукина", "zhanna.s"),
    ("Γιώργος Παπαδόπουλος", "giorgos.p"), ("Þórunn Ægisdóttir", "thorunn.a"), ("Đorđe Čović", "dorde.c"),
    ("Siobhán Ó Briain", "siobhan.b"), ("Ħanna Żammit", "hanna.z"), ("ნინო ბერიძე", "nino.b"),
    ("Ëlena-Maria Ţepeş", "elena.t"), ("  ", "pupil"), ("🙂", "pupil"),
])
def test_a_name_becomes_a_username_a_pupil_can_type(name, stem):
    username = username_for(name)
    assert username.rsplit("-", 1)[0] == stem and SHAPE.match(username), username


def _letters(first: int, last: int) -> list[str]:
    return [chr(c) for c in range(first, last + 1) if unicodedata.category(chr(c)).startswith("L")]


@pytest.mark.parametrize(("script", "letters"), [
    ("Latin", _letters(0x00C0, 0x024F) + _letters(0x1E00, 0x1EFF)),
    ("Greek", _letters(0x0370, 0x03FF) + _letters(0x1F00, 0x1FFF)),
    ("Cyrillic", _letters(0x0400, 0x052F)),
])
def test_no_letter_is_dropped(script, letters):
    """Each letter, alone as a first name, gives a stem of its own (never the 'pupil' fallback)."""
    dropped = [c for c in letters if username_for(c + " x").startswith(("pupil", ".x"))]
    assert dropped == [], f"{script}: {''.join(dropped)}"


def test_a_class_never_gets_one_username_twice(monkeypatch):
    tails = iter(["aaaa"] * 3 + ["bbbb", "aaaa", "cccc"])
    monkeypatch.setattr(pupils, "_generated", lambda n: next(tails))
    assert pupils._distinct_usernames(["Ana K", "Ana K", "Ana K"]) == ["ana.k-aaaa", "ana.k-bbbb", "ana.k-cccc"]
    assert sys.modules["anyascii"]  # the library named in docs/architecture.md does the transliteration
