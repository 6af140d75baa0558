"""Guessing pupils' passwords (and other secrets), against a server of its own: its login
throttle lives in its memory, so that locking 127.0.0.1 here locks no other test out.

Covered elsewhere (docs/security.md): one username slowed after three failures and locked after
five, the right password included, the lockout in the audit log and on the member list
(tests/e2e/test_auth.py); a wrong password and an unknown user answer alike
(tests/e2e/test_auth.py); a forged token ends its socket, one guess per connection
(tests/e2e/test_bad_input.py).
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest

from realtime.config import Settings
from realtime.run.server import RunningServer
from tests.conftest import PASSWORD, login


@pytest.fixture(scope="module")
async def guarded(database_url):
    settings = Settings(database_url=database_url, port=0, log_level="warning", login_backoff=0.01, trusted_proxies=())
    running = RunningServer(settings)
    await running.start()
    yield running
    await running.stop()


async def test_password_spraying_from_one_address_locks_the_address(guarded, world):
    """Threat: password spraying — one common password tried once on each of many pupils'
    usernames, so that no username reaches its own lockout."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{guarded.port}", timeout=30) as http:
        async def spray(i: int) -> int:
            r = await http.post("/api/login", json={"username": f"pupil-{i:03d}-x7k2", "password": "123456"})
            return r.status_code

        # Ten real tries, each on another username: none is slowed, each counts for the address.
        codes = await asyncio.gather(*(spray(i) for i in range(10)))
        assert codes == [401] * 10
        throttle = guarded.app.state.services.auth.per_address
        assert len(throttle._failures["addr:127.0.0.1"]) == 10
        # The next 39 as the throttle counts them (argon2 is slow on purpose: 50 real ones take
        # many seconds on a loaded machine), then the 50th for real.
        for _ in range(39):
            await throttle.failed("addr:127.0.0.1")
        assert await spray(99) == 429  # the 50th failure locks the address, and says so at once
        # Now even a real pupil with the right password is refused from this address, for 15 minutes.
        r = await http.post("/api/login", json={"username": world.users["pupil_member"].username, "password": PASSWORD})
        assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited")
        assert 890 <= int(r.headers["retry-after"]) <= 901
        # A forged X-Forwarded-For does not make a new address (only trusted proxies' is believed).
        r = await http.post("/api/login", json={"username": world.users["pupil_member"].username, "password": PASSWORD},
                            headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 429


async def test_generated_pupil_passwords_resist_guessing_within_the_lockout(world, http):
    """Threat: guessing a generated pupil password — five tries per 15 minutes per username must
    leave an attacker no real chance (8 characters of 31: ~40 bits)."""
    admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    r = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=admin,
                        json={"pupils": [f"P{i}" for i in range(12)]}, timeout=60)  # 12 argon2 hashes: slow when loaded
    passwords = [p["password"] for p in r.json()["pupils"]]
    alphabet = set("".join(passwords))
    assert all(len(p) >= 8 for p in passwords) and len(set(passwords)) == len(passwords)
    assert alphabet <= set("abcdefghjkmnpqrstuvwxyz23456789") and len(alphabet) >= 20  # 96 draws of 31
    bits = 8 * math.log2(31)
    tries_per_year = 5 * 4 * 24 * 365  # five per 15 minutes
    assert tries_per_year / 2**bits < 1e-6  # odds of a year of guessing one pupil's password
    # And none is the username, the name, or a common password.
    for p in r.json()["pupils"]:
        assert p["password"] not in (p["username"], p["name"].lower(), "password", "12345678")


async def test_invitation_codes_are_too_long_to_guess(world, http):
    """Threat: guessing a one-time invitation code to join a project as a visitor (redeeming
    needs no login)."""
    admin = {"Authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    codes = [
        (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                         json={"role": "visitor", "label": f"parent {i}"})).json()["code"]
        for i in range(3)
    ]
    assert len(set(codes)) == 3
    # 16 characters of Crockford's base32 (read from paper, typed in any case): 80 bits. Even
    # at 20 wrong codes per address per 15 minutes from a million addresses, for the 30 days a
    # code lives, the odds of finding one of 100,000 live codes stay below one in a million.
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for c in codes:
        groups = c.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4] and set("".join(groups)) <= set(alphabet), c
    bits = 16 * math.log2(len(alphabet))
    assert bits == 80
    guesses = 20 * 4 * 24 * 30 * 1_000_000
    assert guesses * 100_000 / 2**bits < 1e-6
    r = await http.post("/api/invitations/redeem",
                        json={"code": codes[0][:-1] + ("A" if codes[0][-1] != "A" else "B"), "username": "guess.er",
                              "name": "Guesser", "password": "long enough pw"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


async def test_an_ipv6_client_is_limited_by_its_64_not_by_each_address(server, http, world):
    """Threat: a machine with a /64 of its own (most IPv6 homes and phones) takes a fresh address
    for each guess, and so a fresh per-address budget. Through a trusted proxy (the test server
    trusts 127.0.0.1), as a real deployment sees it."""
    async def attempt(address: str, username: str, password: str = "123456") -> int:
        r = await http.post("/api/login", json={"username": username, "password": password},
                            headers={"X-Forwarded-For": address})
        return r.status_code

    codes = await asyncio.gather(*(attempt(f"2001:db8:7:7::{i + 1:x}", f"nobody-{i}-v6") for i in range(10)))
    assert codes == [401] * 10
    throttle = server.app.state.services.auth.per_address
    assert len(throttle._failures["addr:2001:db8:7:7::/64"]) == 10
    for _ in range(39):  # as in the spraying test: argon2 is slow on purpose
        await throttle.failed("addr:2001:db8:7:7::/64")
    assert await attempt("2001:db8:7:7:ffff::1", "nobody-last-v6") == 429  # the 50th failure: locked, said at once
    pupil = world.users["pupil_member"].username
    assert await attempt("2001:db8:7:7:abcd::9", pupil, PASSWORD) == 429  # any address of that /64
    assert await attempt("2001:db8:7:8::1", pupil, PASSWORD) == 200  # the next /64 is someone else


async def test_guesses_sent_at_once_all_count_before_any_is_verified(server, http, world, pool):
    """Threat: twenty password guesses on twenty connections at the same instant, each checked
    before any of them was counted as a failure (the throttle saw them one at a time, too late).
    Each attempt is counted before it is verified: at most the limit (5) are checked, the rest
    refused without an argon2 check, and past the limit even the right password is."""
    pupil = world.users["pupil_admin"]

    async def guess(i: int) -> int:
        r = await http.post("/api/login", json={"username": pupil.username, "password": f"wrong-{i}"},
                            headers={"X-Forwarded-For": f"198.51.100.{i + 1}"})  # spread over addresses
        return r.status_code

    codes = await asyncio.gather(*(guess(i) for i in range(20)))
    # At most the limit are checked (fewer when the back-off of an early answer came first); the
    # rest are refused unchecked.
    assert set(codes) <= {401, 429} and 1 <= codes.count(401) <= 5, codes
    r = await http.post("/api/login", json={"username": pupil.username, "password": PASSWORD},
                        headers={"X-Forwarded-For": "198.51.100.99"})
    assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited")  # locked: 20 >= 5
    lockouts = await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'login.locked' AND target_id = $1", pupil.id)
    assert lockouts == 1


async def test_argon2_work_is_bounded_and_a_full_server_says_so_at_once(server, http, world):
    """Threat: a crowd of logins (or code redemptions) each starting an argon2 check, queueing for
    ever behind each other. Past the checks running and the few waiting their turn, the answer is
    an immediate 429; a wrong invitation code is answered without any argon2 work at all."""
    from realtime.services.auth import Hashing

    auth, invitations = server.app.state.services.auth, server.app.state.services.invitations
    full = Hashing(slots=1, waiting=0)
    kept = auth.hashing, invitations._hashing
    auth.hashing = invitations._hashing = full
    try:
        async with full.slot():  # the one check that may run is running
            r = await http.post("/api/login", json={"username": world.users["teacher_member"].username,
                                                    "password": PASSWORD})
            assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited") and r.headers["retry-after"]
            r = await http.post("/api/invitations/redeem", json={"code": "x" * 24, "username": "some.one",
                                                                 "name": "Some One", "password": "a long password"},
                                headers={"X-Forwarded-For": "198.51.100.200"})
            assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")  # not "busy"
        r = await http.post("/api/login", json={"username": world.users["teacher_member"].username,
                                                "password": PASSWORD})
        assert r.status_code == 200
    finally:
        auth.hashing, invitations._hashing = kept


async def test_wrong_invitation_codes_are_throttled_per_address(server, http, world):
    """Threat: guessing invitation codes (each a way into a project with children in it)."""
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "visitor"})).json()["code"]
    here = {"X-Forwarded-For": "2001:db8:c0de:1::1"}
    outsider = {"authorization": f"Bearer {await login(http, world.users['outsider'].username)}", **here}
    wrong = [await http.post("/api/invitations/redeem", headers=outsider, json={"code": f"guess-{i:04d}-abcdef"})
             for i in range(20)]
    assert [r.status_code for r in wrong] == [404] * 20
    r = await http.post("/api/invitations/redeem", headers=outsider, json={"code": code})  # right, but too late
    assert (r.status_code, r.json()["error"]["code"]) == (429, "rate_limited")
    elsewhere = {**outsider, "X-Forwarded-For": "2001:db8:c0de:2::1"}  # another /64
    assert (await http.post("/api/invitations/redeem", headers=elsewhere, json={"code": code})).status_code == 200


async def test_a_name_chosen_with_a_code_is_normalised_and_cannot_pass_for_a_member(world, http, pool):
    """Threat: a parent's account named with invisible characters, or as a teacher of the
    project, to be taken for them by the children."""
    admin = {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}"}
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "visitor"})).json()["code"]
    here = {"X-Forwarded-For": "2001:db8:c0de:9::1"}

    async def redeem(username: str, name: str, school: str = "") -> httpx.Response:
        return await http.post("/api/invitations/redeem", headers=here, json={
            "code": code, "username": username, "name": name, "school": school, "password": "a long password"})

    for name in ("Ana\u200bL.", "\u202eevil", "Tab\tname"):
        r = await redeem("new.parent", name)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field"), name
    r = await redeem("new.parent", "Ana", school="Kraków\u2066")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field")
    r = await redeem("new.parent", world.users["teacher_admin"].display_name.upper())  # the teacher's name
    assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict")
    teacher = world.users["teacher_admin"].display_name  # "Teacher Admin"
    for lookalike in (teacher.replace("c", "\u0441"),  # a Cyrillic "с"
                      teacher.replace("T", "\u0422", 1),  # a Cyrillic "Т"
                      teacher.replace(" ", "   "),  # more spaces
                      teacher.replace("A", "\u0391")):  # a Greek "Α"
        r = await redeem("new.parent", lookalike)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "conflict"), lookalike
    r = await redeem("new.parent", "Ｍａｒｔａ Ｎｏｗａｋ")  # full-width: stored as it reads
    assert r.status_code == 201, r.text
    name = await pool.fetchval("SELECT display_name FROM users WHERE username = 'new.parent'")
    assert name == "Marta Nowak"
