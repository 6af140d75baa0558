"""The docs' examples are true (issue 22, point 10): every block README.md and docs/protocol.md
mark as an example (docs/protocol.md says how, at its top; tests/docs/examples.py reads and runs
them) is run against a freshly started demo — the project `twinhub serve --demo` makes — and
the answers must be the ones the docs show: ids, fields and codes; tokens, timestamps and the
like through the docs' `…`. So the demo's room ids, user ids and mail ids in the docs cannot drift.

Each `##` section runs on a demo of its own (a copy of one demo database, made once), its
examples in document order; an example marked `fresh` starts another."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from realtime.config import Settings
from realtime.run.demo import ensure_demo
from realtime.run.server import RunningServer
from storage.db import create_pool
from storage.embedded import drop_database
from tests.conftest import _with_database, migrated_database
from tests.docs.examples import (
    ELLIPSIS,
    Demo,
    Example,
    ExampleError,
    check_exchange,
    commands,
    curl_request,
    exchange,
    expected_answer,
    json_value,
    match,
    read_examples,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "protocol.md"]


@dataclass(frozen=True)
class Run:
    """Examples that run in order on one fresh demo."""

    examples: tuple[Example, ...]

    def __str__(self) -> str:
        first = self.examples[0]
        return f"{first.doc}:{first.line} {first.section}"


def runs() -> list[Run]:
    found: list[Run] = []
    for path in DOCS:
        current: list[Example] = []
        for example in read_examples(path, ROOT):
            if current and (example.fresh or example.section != current[0].section):
                found.append(Run(tuple(current)))
                current = []
            current.append(example)
        if current:
            found.append(Run(tuple(current)))
    return found


RUNS = runs()


# -- the documents themselves, before any server ----------------------------------------------------


def test_every_example_is_well_formed():
    """Each marked block parses as its kind says; a broken marker fails here, naming its line."""
    for run in RUNS:
        for example in run.examples:
            if example.kind == "ws":
                check_exchange(example)
            else:
                for command in commands(example):
                    curl_request(command.line, example.where)
                    if command.answer is not None:
                        expected_answer(command.answer, example.where)


def _coverage() -> tuple[set[str], set[str], set[str], set[tuple[str, str]]]:
    sent, received, codes, routes = set(), set(), set(), set()
    for run in RUNS:
        for example in run.examples:
            if example.kind == "ws":
                for direction, value in exchange(example):
                    if direction == "send":
                        sent.add(value["type"])
                    else:
                        received |= {f.get("type") for f in value}
                        codes |= {f["code"] for f in value if f.get("type") == "error" and "code" in f}
                continue
            for command in commands(example):
                request = curl_request(command.line, example.where)
                routes.add((request.method, request.url.split("localhost:8000", 1)[-1].split("?")[0]))
                if command.answer is not None:
                    _, body = expected_answer(command.answer, example.where)
                    if isinstance(body, dict) and isinstance(body.get("error"), dict):
                        codes.add(body["error"].get("code"))
    return sent, received, codes, routes


def test_the_examples_cover_the_core_of_the_contract():
    """Markers cannot quietly disappear: the examples run log in, say hello and get welcome,
    subscribe, post and get the ok and the event, send mail, show an error of each family, and
    walk the bots', the public view's and the main HTTP routes."""
    sent, received, codes, routes = _coverage()
    assert {"hello", "subscribe", "post", "send_mail"} <= sent, sent
    assert {"welcome", "ok", "event", "error", "presence"} <= received, received
    assert {"not_found", "forbidden", "invalid_field", "rate_limited", "unauthenticated"} <= codes, codes
    for route in [
        ("POST", "/api/login"), ("GET", "/api/me"), ("GET", "/api/rooms/6/messages"), ("POST", "/api/spaces/1/mail"),
        ("POST", "/api/spaces/1/bots"), ("POST", "/api/spaces/1/journal"), ("GET", "/api/public/water-lyon-krakow"),
        ("GET", "/api/spaces/1/activity"), ("GET", "/api/spaces/1/members"), ("GET", "/healthz"), ("GET", "/readyz"),
    ]:
        assert route in routes, (route, sorted(routes))


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        ({"id": 5, ELLIPSIS: ELLIPSIS}, {"id": 5, "name": "Ana L."}, True),
        ({"id": 5}, {"id": 5, "name": "Ana L."}, False),  # a field the docs do not show
        ({"id": 5, "name": "Ana L."}, {"id": 5}, False),  # a field the server does not send
        ({"id": 5}, {"id": 4}, False),
        ({"id": 1}, {"id": True}, False),
        ({"ok": True}, {"ok": 1}, False),
        (["…"], [1, 2, 3], True),
        ([1, "…"], [1, 2, 3], True),
        ([3, "…"], [1, 2], False),
        ([1, 2], [1, 2, 3], False),
        ("twb_…", "twb_secret", True),
        ("twb_…", "tok_secret", False),
        ("2026-11-22T09:14:03.512Z", "2027-01-01T00:00:00.000Z", True),
        ("2026-11-22T09:14:03.512Z", "2026-12-07T12:03:31.833213+00:00", False),  # not the documented form
        ("room:5", "room:6", False),
    ],
)
def test_the_matcher_tells_what_differs(expected, actual, ok):
    assert (match(expected, actual) == []) is ok, match(expected, actual)


def test_the_docs_ellipsis_reads_as_json():
    assert json_value('{"user":{"id":5,…},"spaces":[…],"limits":{…}}', "here") == {
        "user": {"id": 5, ELLIPSIS: ELLIPSIS}, "spaces": [ELLIPSIS], "limits": {ELLIPSIS: ELLIPSIS},
    }
    assert json_value('{"message": "a … in a string stays", "ids": [1, …]}', "here") == {
        "message": "a … in a string stays", "ids": [1, ELLIPSIS],
    }
    with pytest.raises(ExampleError):
        json_value("{oops", "here")


# -- the examples, run against a fresh demo -------------------------------------------------------------


@pytest.fixture(scope="session")
async def demo_database(admin_url: str) -> AsyncIterator[str]:
    """A database holding what a fresh `twinhub serve --demo` holds (its seed is ensure_demo), to
    be copied for each run: a copy of a database is a file copy, a seed is seconds of argon2."""
    name, url = await migrated_database(admin_url, "twinhub_demo")
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        await ensure_demo(pool)
    finally:
        await pool.close()
    yield name
    await drop_database(admin_url, name)


@contextlib.asynccontextmanager
async def fresh_demo(admin_url: str, template: str) -> AsyncIterator[Demo]:
    name = f"twinhub_demo_run_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(admin_url)
    try:
        # Identifiers cannot be parameters; both names are made above from hex digits.
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await admin.close()
    server = RunningServer(Settings(database_url=_with_database(admin_url, name), port=0, log_level="warning"))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            demo = Demo(server.port, http)
            try:
                yield demo
            finally:
                await demo.close()
    finally:
        await server.stop()
        await drop_database(admin_url, name)


@pytest.mark.parametrize("run", RUNS, ids=str)
async def test_the_docs_examples_are_what_a_fresh_demo_answers(run, admin_url, demo_database):
    async with fresh_demo(admin_url, demo_database) as demo:
        for example in run.examples:
            await demo.run(example)
        await demo.finish()
