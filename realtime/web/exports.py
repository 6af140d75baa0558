"""What the HTTP routes hand over as files: CSV exports (the audit log, pupils' logins) and the
printable sheet of pupils' logins.

A CSV is opened in a spreadsheet, which runs a cell that starts with `=`, `+`, `-` or `@` (or a
tab or carriage return before one) as a formula: a pupil named `=HYPERLINK(…)`, or an audit
reason typed by anyone, would run in the teacher's spreadsheet. Every such cell is written with a
leading apostrophe, which spreadsheets show as text and do not run (OWASP, "CSV Injection").
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable
from typing import Any

from .words import say

RIGHT_TO_LEFT = {"ar", "fa", "he", "ur"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """A value as a CSV cell a spreadsheet will not run."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_text(header: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """CSV that a spreadsheet opens as it is: UTF-8 with a byte-order mark, without which Excel
    reads "École" and "Kraków" as Latin-1."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return out.getvalue()


def logins_csv(logins: list[dict[str, Any]]) -> str:
    return csv_text(["name", "username", "password", "school"],
                    ([p["name"], p["username"], p["password"], p["school"]] for p in logins))


def logins_sheet(logins: list[dict[str, Any]], project: str, language: str, address: str) -> str:
    """A printable page in the pupils' language, one card per pupil to cut out."""
    def card(p: dict[str, Any]) -> str:
        # Label above value, as the page's cards: no colon to place by each language's typography.
        rows = (("members.card.username", p["username"]), ("members.card.password", p["password"]),
                ("members.card.address", address))
        return f'<div class="card"><b>{html.escape(p["name"])}</b><dl>' + "".join(
            f"<dt>{html.escape(say(language, key))}</dt><dd><code>{html.escape(value)}</code></dd>" for key, value in rows
        ) + "</dl></div>"
    title = say(language, "members.sheet.title", n=len(logins))
    return (
        f'<!doctype html><html lang="{language}" dir="{"rtl" if language in RIGHT_TO_LEFT else "ltr"}">'
        f"<meta charset=utf-8><title>{html.escape(title)} — {html.escape(project)}</title>"
        "<style>body{font-family:sans-serif}.card{display:inline-block;width:16em;margin:.5em;padding:1em;"
        "border:1px dashed #888}dt{font-size:.8em}dd{margin:0 0 .4em}code{font-size:1.2em}</style>"
        f"<h1>{html.escape(project)}</h1>\n<p>{html.escape(say(language, 'members.card.how'))}</p>\n"
        + "\n".join(card(p) for p in logins) + "\n"
    )
