"""Names that look alike: what an adult joining with a code may not choose — the name of a member
of the project written with other letters that look the same (a Cyrillic "а" for a Latin "a", a
capital "I" for an "l", a zero for an "O"), in other case, or with other spacing.

Which characters look alike is Unicode's data (confusables.txt, Unicode Technical Standard #39),
as the `confusable_homoglyphs` package keeps it. Its pairs are joined into groups (an "l", a
capital "I", a "1" and a "|" are one group), and a name is folded to one representative per
group, before and after case folding, as TR39's "skeleton" does. A fold is only ever compared,
never shown: it is not a spelling of anything.
"""

from __future__ import annotations

import functools
import unicodedata

from confusable_homoglyphs import confusables

_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")  # the data wraps right-to-left glyphs in them


@functools.cache
def _representatives() -> dict[str, str]:
    """Each character that looks like another -> the smallest of the characters it looks like."""
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.get(c, c) != c:
            parent[c] = parent.get(parent[c], parent[c])
            c = parent[c]
        return c

    for char, glyphs in confusables.confusables_data.items():
        for glyph in glyphs:
            other = glyph["c"].translate(_DIRECTION_MARKS)
            if len(char) == 1 and len(other) == 1:
                a, b = root(char), root(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {c: root(c) for c in parent}


def _skeleton(text: str) -> str:
    reps = _representatives()
    return "".join(reps.get(c, c) for c in text)


def fold(name: str) -> str:
    """What `name` looks like: equal folds, names a reader cannot tell apart."""
    text = " ".join(unicodedata.normalize("NFKC", name).split())
    return _skeleton(_skeleton(text).casefold())


def looks_like(name: str, others: list[str]) -> bool:
    """Whether `name` looks like one of `others` (case and spacing aside)."""
    mine = {fold(name), " ".join(name.casefold().split())}
    return any(fold(o) in mine or " ".join(o.casefold().split()) in mine for o in others)
