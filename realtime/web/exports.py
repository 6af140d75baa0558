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


def logins_sheet(logins: list[dict[str, Any]], project: str) -> str:
    """A printable page, one card per pupil to cut out."""
    cards = "\n".join(
        f'<div class="card"><b>{html.escape(p["name"])}</b><br>username: <code>{html.escape(p["username"])}</code>'
        f'<br>password: <code>{html.escape(p["password"])}</code></div>'
        for p in logins
    )
    return (
        f"<!doctype html><meta charset=utf-8><title>Logins — {html.escape(project)}</title>"
        "<style>body{font-family:sans-serif}.card{display:inline-block;width:16em;margin:.5em;padding:1em;"
        "border:1px dashed #888}code{font-size:1.2em}</style>"
        f"<h1>{html.escape(project)}</h1>\n{cards}\n"
    )
