"""Inviting teachers and visitors through real HTTP and sockets: an existing account accepts or
declines; someone without one joins with a one-time code; every refusal has its code and
changes nothing; every step is in the audit log."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta

from protocol import Subscribe, Welcome
from realtime.policy import Area, Role
from realtime.services.invitations import code_forms
from storage import audit
from storage import invitations as invitations_store
from tests.conftest import PASSWORD, login


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def _members(pool, space_id):
    return {r["user_id"]: (r["role"], r["invited_by"]) for r in await pool.fetch(
        "SELECT user_id, role, invited_by FROM members WHERE space_id = $1", space_id
    )}


async def test_a_partner_teacher_accepts_and_her_open_socket_joins_at_once(world, connect, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    partner = world.users["outsider"]
    socket = await connect(partner)
    teachers_room = world.channel(Area.TEACHERS_ROOM)
    assert (await socket.error(Subscribe(teachers_room))).code == "not_found"

    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"username": partner.username, "role": "teacher_member", "note": "welcome aboard"})
    assert r.status_code == 201, r.text
    invitation = r.json()["invitation"]
    assert invitation["status"] == "pending" and invitation["invitee"]["id"] == partner.id and "code" not in r.json()

    mine = await _auth(http, world, "outsider")
    pending = (await http.get("/api/invitations", headers=mine)).json()["invitations"]
    assert [(i["id"], i["space"]["id"], i["role"], i["note"]) for i in pending] == [
        (invitation["id"], world.space_id, "teacher_member", "welcome aboard")
    ]
    assert world.users["outsider"].id not in await _members(pool, world.space_id)  # not before she accepts

    ok = await http.post(f"/api/invitations/{invitation['id']}/accept", headers=mine)
    assert ok.status_code == 200 and ok.json()["invitation"]["status"] == "accepted"
    assert (await _members(pool, world.space_id))[partner.id] == ("teacher_member", world.users["teacher_admin"].id)
    fresh = await socket.next_frame(Welcome, timeout=2)  # the project appears on her open socket
    assert [(sp["id"], sp["role"]) for sp in fresh.spaces] == [(world.space_id, "teacher_member")]
    await socket.ok(Subscribe(teachers_room))  # the same socket, no reconnect
    assert (await http.get("/api/invitations", headers=mine)).json()["invitations"] == []
    again = await http.post(f"/api/invitations/{invitation['id']}/accept", headers=mine)
    assert again.status_code == 404

    log = [e.action for e in await audit.entries(pool, world.space_id)]
    assert log[:3] == ["invitation.accepted", "member.joined", "member.invite"]


async def test_declining_changes_nothing_but_the_invitation(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    before = await _members(pool, world.space_id)
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"username": world.users["outsider"].username, "role": "visitor"})
    mine = await _auth(http, world, "outsider")
    done = await http.post(f"/api/invitations/{r.json()['invitation']['id']}/decline", headers=mine)
    assert done.status_code == 200 and done.json()["invitation"]["status"] == "declined"
    assert await _members(pool, world.space_id) == before
    listed = (await http.get(f"/api/spaces/{world.space_id}/invitations", headers=admin)).json()["invitations"]
    assert listed[0]["status"] == "declined"


async def test_refusals(world, http, pool):
    url = f"/api/spaces/{world.space_id}/invitations"
    outsider = world.users["outsider"].username
    before = await _members(pool, world.space_id)
    cases = [
        ("teacher_member", {"username": outsider, "role": "teacher_member"}, 403, "forbidden"),
        ("teacher_member", {"username": outsider, "role": "visitor"}, 403, "forbidden"),
        ("pupil_admin", {"username": outsider, "role": "visitor"}, 403, "forbidden"),
        ("visitor", {"role": "visitor"}, 403, "forbidden"),
        ("outsider", {"username": outsider, "role": "visitor"}, 404, "not_found"),
        ("teacher_admin", {"username": outsider, "role": "pupil_member"}, 400, "invalid_field"),  # pupils: their own way
        ("teacher_admin", {"username": outsider, "role": "king"}, 400, "invalid_field"),
        ("teacher_admin", {"username": "nobody-at-all", "role": "visitor"}, 404, "not_found"),
        ("teacher_admin", {"username": world.users["moderator"].username, "role": "visitor"}, 404, "not_found"),
        # a pupil is never found by username: the same answer as no account at all
        ("teacher_admin", {"username": world.users["pupil_member"].username, "role": "visitor"}, 404, "not_found"),
        ("teacher_admin", {"username": world.users["teacher_member"].username, "role": "visitor"}, 409, "conflict"),
        ("teacher_admin", {"username": outsider, "role": "visitor", "note": "x" * 501}, 400, "invalid_field"),
    ]
    for who, body, status, code in cases:
        r = await http.post(url, headers=await _auth(http, world, who), json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (who, body, r.text)
    admin = await _auth(http, world, "teacher_admin")
    first = await http.post(url, headers=admin, json={"username": outsider, "role": "visitor"})
    assert first.status_code == 201
    twice = await http.post(url, headers=admin, json={"username": outsider, "role": "teacher_member"})
    assert twice.status_code == 409  # one pending invitation at a time
    # Nobody else answers it, and the project's list is for its teacher admins.
    someone = await _auth(http, world, "pupil_member")
    assert (await http.post(f"/api/invitations/{first.json()['invitation']['id']}/accept", headers=someone)).status_code == 404
    assert (await http.get(url, headers=await _auth(http, world, "teacher_member"))).status_code == 403
    assert await _members(pool, world.space_id) == before


async def test_someone_without_an_account_joins_with_a_code(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"role": "visitor", "label": "Mme Martin, a parent"})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    code = r.json()["code"]
    assert r.json()["invitation"]["invitee"] is None and r.json()["invitation"]["label"] == "Mme Martin, a parent"

    weak = await http.post("/api/invitations/redeem", json={"code": code, "username": "c.martin", "name": "C. Martin",
                                                           "password": "short"})
    assert weak.status_code == 400
    taken = await http.post("/api/invitations/redeem", json={
        "code": code, "username": world.users["teacher_member"].username, "name": "C. Martin",
        "password": "a long enough phrase",
    })
    assert taken.status_code == 409  # the code stays usable
    http.cookies.set("twinhub_session", "stale-token-from-an-earlier-visit")  # counts as no session
    made = await http.post("/api/invitations/redeem", json={
        "code": code, "username": "c.martin", "name": "C. Martin", "password": "a long enough phrase", "school": "",
    })
    http.cookies.clear()
    assert made.status_code == 201, made.text
    assert made.json()["invitation"]["answered_by"] == {"id": made.json()["user"]["id"], "name": "C. Martin"}
    user_id = made.json()["user"]["id"]
    assert (await _members(pool, world.space_id))[user_id] == ("visitor", world.users["teacher_admin"].id)
    assert (await http.post("/api/login", json={"username": "c.martin", "password": "a long enough phrase"})).status_code == 200
    http.cookies.clear()
    reused = await http.post("/api/invitations/redeem", json={
        "code": code, "username": "someone.else", "name": "X", "password": "a long enough phrase",
    })
    assert reused.status_code == 404  # one use
    stored = await pool.fetchval("SELECT code_hash FROM invitations WHERE id = $1", r.json()["invitation"]["id"])
    assert stored == hashlib.sha256(code.replace("-", "").encode()).digest()  # only its hash is kept


async def test_a_signed_in_user_redeems_a_code_and_a_revoked_one_is_dead(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    url = f"/api/spaces/{world.space_id}/invitations"
    first = (await http.post(url, headers=admin, json={"role": "teacher_member"})).json()
    second = (await http.post(url, headers=admin, json={"role": "teacher_member"})).json()
    revoked = await http.delete(f"{url}/{second['invitation']['id']}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["invitation"]["status"] == "revoked"
    mine = await _auth(http, world, "outsider")
    dead = await http.post("/api/invitations/redeem", headers=mine, json={"code": second["code"]})
    assert dead.status_code == 404
    joined = await http.post("/api/invitations/redeem", headers=mine, json={"code": first["code"]})
    assert joined.status_code == 200, joined.text
    assert (await _members(pool, world.space_id))[world.users["outsider"].id][0] == "teacher_member"
    member = await _auth(http, world, "pupil_member")
    third = (await http.post(url, headers=admin, json={"role": "visitor"})).json()
    assert (await http.post("/api/invitations/redeem", headers=member, json={"code": third["code"]})).status_code == 409
    assert (await http.post("/api/invitations/redeem", json={"code": "x"})).status_code == 400


async def test_an_expired_invitation_cannot_be_accepted(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"username": world.users["outsider"].username, "role": "visitor"})
    invitation_id = r.json()["invitation"]["id"]
    await pool.execute("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE id = $1", invitation_id)
    mine = await _auth(http, world, "outsider")
    assert (await http.get("/api/invitations", headers=mine)).json()["invitations"] == []
    assert (await http.post(f"/api/invitations/{invitation_id}/accept", headers=mine)).status_code == 404
    listed = (await http.get(f"/api/spaces/{world.space_id}/invitations", headers=admin)).json()["invitations"]
    assert listed[0]["status"] == "expired"
    # It does not stand in the way of a new one.
    again = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"username": world.users["outsider"].username, "role": "visitor"})
    assert again.status_code == 201, again.text


async def test_an_old_invitation_does_not_change_the_role_of_someone_who_joined_since(world, http, pool, server):
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"username": world.users["outsider"].username, "role": "teacher_admin"})
    await server.app.state.projects.set_member(world.space_id, world.users["outsider"].id, Role.VISITOR)
    mine = await _auth(http, world, "outsider")
    late = await http.post(f"/api/invitations/{r.json()['invitation']['id']}/accept", headers=mine)
    assert (late.status_code, late.json()["error"]["code"]) == (409, "conflict")
    assert (await _members(pool, world.space_id))[world.users["outsider"].id][0] == "visitor"


async def test_platform_moderators_do_not_join_with_a_code(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "teacher_admin"})).json()["code"]
    moderator = await _auth(http, world, "moderator")
    r = await http.post("/api/invitations/redeem", headers=moderator, json={"code": code})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert world.users["moderator"].id not in await _members(pool, world.space_id)


async def test_passwords_of_new_accounts_are_argon2(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                            json={"role": "teacher_member"})).json()["code"]
    await http.post("/api/invitations/redeem", json={
        "code": code, "username": "j.ortiz", "name": "J. Ortiz", "password": PASSWORD + "-and-more",
    })
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE username = 'j.ortiz'")
    assert stored.startswith("$argon2id$")


def test_a_code_is_read_by_crockfords_rules():
    """Whatever case, dashes or spaces; I and L read as 1, O as 0; an older code as it was given."""
    for typed in ("K7QM-4TZP-9XWD-2F81", "k7qm4tzp9xwd2f81", " k7qm 4tzp 9xwd 2f8l ", "K7QM\u20134TZP\u20149XWD-2F8I"):
        assert code_forms(typed)[0] == "K7QM4TZP9XWD2F81", typed
    assert code_forms("AB0O-CDEF-GHJK-MNPQ")[0] == "AB00CDEFGHJKMNPQ"
    assert code_forms("_eDIkxIZ4UkUT84J-bZx6Nfl") == ["_eDIkxIZ4UkUT84J-bZx6Nfl"]  # a code of before: as given
    assert code_forms("K7QM-4TZP-9XWD-2F8U")[-1] == "K7QM-4TZP-9XWD-2F8U"  # no U in the alphabet: no new code


async def test_a_code_is_easy_to_type_from_paper_and_older_codes_still_work(world, http, pool):
    admin = await _auth(http, world, "teacher_admin")
    url = f"/api/spaces/{world.space_id}/invitations"
    codes = [(await http.post(url, headers=admin, json={"role": "visitor", "label": f"parent {i}"})).json()["code"]
             for i in range(3)]
    for code in codes:  # four groups of four, none of I, L, O, U
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code), code
    # Typed as a parent would type them from the card: lower case, no dashes; spaces, an O for a
    # zero and an l for a one.
    typed = [codes[0].replace("-", "").lower(),
             codes[1].replace("-", " ").replace("0", "O").replace("1", "l")]
    for i, code in enumerate(typed):
        r = await http.post("/api/invitations/redeem", json={
            "code": code, "username": f"parent{i}-{world.slug}", "name": f"Parent {'AB'[i]}. Durand",
            "password": "a long enough phrase",
        })
        assert r.status_code == 201, (code, r.text)
    # One character wrong is no code at all.
    wrong = codes[2][:-1] + ("A" if codes[2][-1] != "A" else "B")
    r = await http.post("/api/invitations/redeem", headers=await _auth(http, world, "outsider"), json={"code": wrong})
    assert r.status_code == 404
    # A code handed out before (24 characters, case-sensitive, stored as the hash of what was
    # shown) still works, as it was given.
    old = secrets.token_urlsafe(18)
    await invitations_store.invite_by_code(
        pool, space_id=world.space_id, role="visitor", code_hash=hashlib.sha256(old.encode()).digest(), label="old card",
        invited_by=world.users["teacher_admin"].id, note="", expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    r = await http.post("/api/invitations/redeem", headers=await _auth(http, world, "outsider"), json={"code": old})
    assert r.status_code == 200, r.text
