"""Bot tokens answer to the teacher admin who made them (issue 21, rule 9), over real sockets.

A project's teacher admins list its bots (creator, scope, last use — never a token); a bot is
revoked in the same transaction as its creator leaving the project or stopping being a teacher
admin there, by any route (HTTP, WebSocket, `twinhub admin`); a token is refused while its project
is closed; an activity token never names a pupil, and answers for a pupil exactly as for nobody.

Covered elsewhere (docs/security.md): a bot token used on another project, route or scope
(tests/e2e/test_bots.py::test_a_bot_token_does_nothing_else), tokens stored as hashes
(tests/security/test_tokens.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from protocol import RemoveMember, SetRole
from tests.conftest import login

ROOT = Path(__file__).resolve().parents[2]
LIST_KEYS = {"id", "name", "scope", "created_by", "actors", "created_at", "last_used_at", "revoked_at",
             "revoked_reason"}
RECORD = {"kind": "document.added", "area": "activities", "title": "River map.pdf"}


async def bearer(http, user) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


async def make_bot(http, world, headers, name: str = "Weather bot", **more) -> dict:
    r = await http.post(f"/api/spaces/{world.space_id}/bots", headers=headers, json={"name": name, **more})
    assert r.status_code == 201, r.text
    return r.json()


async def second_admin(http, world) -> dict[str, str]:
    """Makes the world's teacher member a second teacher admin (a project keeps one: the first
    stays to remove or demote the second); returns the new admin's headers."""
    r = await http.patch(f"/api/spaces/{world.space_id}/members/{world.users['teacher_member'].id}",
                         headers=await bearer(http, world.users["teacher_admin"]), json={"role": "teacher_admin"})
    assert r.status_code == 200, r.text
    return await bearer(http, world.users["teacher_member"])


async def post_entry(http, world, token: str, title: str = "Rain"):
    return await http.post(f"/api/spaces/{world.space_id}/journal", headers={"authorization": f"Bearer {token}"},
                           json={"title": title, "text": "12 mm today"})


async def post_record(http, world, token: str, **fields):
    return await http.post(f"/api/spaces/{world.space_id}/activity", headers={"authorization": f"Bearer {token}"},
                           json={**RECORD, **fields})


async def listed(http, world, headers) -> dict[int, dict]:
    r = await http.get(f"/api/spaces/{world.space_id}/bots", headers=headers)
    assert r.status_code == 200, r.text
    return {b["id"]: b for b in r.json()["bots"]}


async def twinhub(database_url: str, *args: str) -> tuple[int, str, str]:
    """`twinhub <args>` in a process of its own, against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINHUB_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "realtime", *args, "--database-url", database_url, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out.decode(), err.decode()


# -- the list ------------------------------------------------------------------------------------

async def test_teacher_admins_list_every_bot_with_creator_scope_and_last_use_never_a_token(world, http):
    admin = await bearer(http, world.users["teacher_admin"])
    journal = await make_bot(http, world, admin)
    pages = await make_bot(http, world, admin, "TwinSpace pages", scope="activity")
    gone = await make_bot(http, world, admin, "Old bot")
    assert (await http.delete(f"/api/spaces/{world.space_id}/bots/{gone['id']}", headers=admin)).status_code == 200
    r = await http.get(f"/api/spaces/{world.space_id}/bots", headers=admin)
    for secret in (journal["token"], pages["token"], gone["token"]):
        assert secret not in r.text
    assert "token" not in r.text and "hash" not in r.text
    bots = {b["id"]: b for b in r.json()["bots"]}
    assert r.json()["space"] == world.space_id and list(bots) == [journal["id"], pages["id"], gone["id"]]
    creator = {"id": world.users["teacher_admin"].id, "name": world.users["teacher_admin"].display_name}
    for bot in bots.values():
        assert set(bot) == LIST_KEYS
        assert bot["created_by"] == creator and bot["last_used_at"] is None and bot["actors"] is None
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", bot["created_at"])
    assert (bots[journal["id"]]["name"], bots[journal["id"]]["scope"]) == ("Weather bot", "journal")
    assert (bots[pages["id"]]["name"], bots[pages["id"]]["scope"]) == ("TwinSpace pages", "activity")
    assert [(b["revoked_at"] is None, b["revoked_reason"]) for b in bots.values()] == [
        (True, None), (True, None), (False, "revoked")]


async def test_last_use_is_noted_once_accepted_and_at_most_once_a_minute(world, http, pool):
    admin = await bearer(http, world.users["teacher_admin"])
    journal = await make_bot(http, world, admin)
    pages = await make_bot(http, world, admin, "TwinSpace pages", scope="activity")
    # Refused uses are not uses: another scope, a bad body.
    assert (await post_entry(http, world, pages["token"])).status_code == 403
    assert (await http.post(f"/api/spaces/{world.space_id}/journal", headers={"authorization": f"Bearer {journal['token']}"},
                            json={"text": "no title"})).status_code == 400
    assert all(b["last_used_at"] is None for b in (await listed(http, world, admin)).values())
    assert (await post_entry(http, world, journal["token"], "first")).status_code == 201
    first = (await listed(http, world, admin))[journal["id"]]["last_used_at"]
    assert first is not None
    assert (await post_entry(http, world, journal["token"], "second")).status_code == 201
    bots = await listed(http, world, admin)
    assert bots[journal["id"]]["last_used_at"] == first  # within the minute: no write
    assert bots[pages["id"]]["last_used_at"] is None
    # A minute later, the next use is noted again.
    await pool.execute("UPDATE bots SET last_used_at = last_used_at - interval '61 seconds' WHERE id = $1", journal["id"])
    assert (await post_entry(http, world, journal["token"], "third")).status_code == 201
    assert (await listed(http, world, admin))[journal["id"]]["last_used_at"] > first


async def test_only_the_projects_teacher_admins_list_its_bots(world, make_world, http):
    admin = await bearer(http, world.users["teacher_admin"])
    bot = await make_bot(http, world, admin)
    other = await make_world()
    path = f"/api/spaces/{world.space_id}/bots"
    nowhere = f"/api/spaces/{2**61}/bots"
    # Not in the project (another project's teacher admin, an outsider): the answer of a project
    # that does not exist, with the same sentence.
    for user in (other.users["teacher_admin"], world.users["outsider"]):
        headers = await bearer(http, user)
        real, fake = await http.get(path, headers=headers), await http.get(nowhere, headers=headers)
        assert (real.status_code, real.json()["error"]["code"]) == (404, "not_found"), user.username
        assert real.text.replace(str(world.space_id), "N") == fake.text.replace(str(2**61), "N")
    # In the project without the right (a platform moderator is in every project): what creating
    # a bot answers them.
    for who in ("teacher_member", "pupil_admin", "pupil_member", "visitor", "moderator"):
        headers = await bearer(http, world.users[who])
        r = await http.get(path, headers=headers)
        made = await http.post(path, headers=headers, json={"name": "mine"})
        assert (r.status_code, r.json()) == (403, made.json()), who
        assert r.json()["error"]["code"] == "forbidden"
    for headers in ({}, {"authorization": f"Bearer {bot['token']}"}):
        assert (await http.get(path, headers=headers)).status_code == 401
    r = await http.get("/api/spaces/abc/bots", headers=admin)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "not_found")


# -- revoked with the creator's rights -------------------------------------------------------------

@pytest.mark.parametrize("how", ["http_remove", "http_leave", "http_demote", "ws_remove", "ws_leave", "ws_demote"])
async def test_a_creators_bots_are_revoked_when_they_leave_or_lose_teacher_admin(how, world, make_world, http,
                                                                                 connect):
    first = await bearer(http, world.users["teacher_admin"])
    creator = world.users["teacher_member"]
    second = await second_admin(http, world)
    mine = [await make_bot(http, world, second, "Sensor"), await make_bot(http, world, second, "Pages", scope="activity")]
    colleague = await make_bot(http, world, first, "Colleague's bot")
    # The same teacher's bot in another project is that project's business.
    elsewhere = await make_world()
    r = await http.post(f"/api/spaces/{elsewhere.space_id}/invitations", headers=await bearer(
        http, elsewhere.users["teacher_admin"]), json={"username": creator.username, "role": "teacher_admin"})
    invitation = r.json()["invitation"]["id"]
    assert (await http.post(f"/api/invitations/{invitation}/accept", headers=second)).status_code == 200
    kept = await make_bot(http, elsewhere, second, "Elsewhere")

    space, member = world.space_id, f"/api/spaces/{world.space_id}/members/{creator.id}"
    if how == "http_remove":
        r = await http.delete(member, headers=first)
    elif how == "http_leave":
        r = await http.post(f"/api/spaces/{space}/leave", headers=second)
    elif how == "http_demote":
        r = await http.patch(member, headers=first, json={"role": "teacher_member"})
    else:
        actor = await connect(world.users["teacher_admin"] if how != "ws_leave" else creator)
        frame = SetRole(space, creator.id, "teacher_member") if how == "ws_demote" else RemoveMember(space, creator.id)
        await actor.ok(frame)
        r = None
    assert r is None or r.status_code == 200, r.text

    reason = "creator_demoted" if how.endswith("demote") else "creator_left"
    assert (await post_entry(http, world, mine[0]["token"])).status_code == 401
    assert (await post_record(http, world, mine[1]["token"])).status_code == 401
    assert (await post_entry(http, world, colleague["token"])).status_code == 201
    assert (await post_entry(http, elsewhere, kept["token"])).status_code == 201
    bots = await listed(http, world, first)
    assert [(bots[b["id"]]["revoked_reason"], bots[b["id"]]["revoked_at"] is not None) for b in mine] == [
        (reason, True)] * 2
    assert bots[colleague["id"]]["revoked_at"] is None
    r = await http.get(f"/api/spaces/{space}/audit", headers=first)
    revokes = [e for e in r.json()["entries"] if e["action"] == "bot.revoke"]
    assert sorted((e["target_id"], e["actor_id"], e["reason"], e["details"]) for e in revokes) == [
        (b["id"], None, reason, {"creator": creator.id}) for b in mine]


async def test_a_demotion_by_the_cli_revokes_the_bots_and_the_cli_makes_none_for_a_non_admin(world, http,
                                                                                             database_url):
    first = await bearer(http, world.users["teacher_admin"])
    creator = world.users["teacher_member"]
    bot = await make_bot(http, world, await second_admin(http, world))
    code, out, err = await twinhub(database_url, "admin", "add-member", "--space", world.slug, "--username",
                                   creator.username, "--role", "teacher_member")
    assert code == 0, err
    assert (await post_entry(http, world, bot["token"])).status_code == 401
    assert (await listed(http, world, first))[bot["id"]]["revoked_reason"] == "creator_demoted"
    code, out, err = await twinhub(database_url, "admin", "create-bot", "--space", world.slug, "--name", "Sneaky",
                                   "--by", creator.username)
    assert code != 0 and "Traceback" not in err
    assert f"'{creator.username}' is not a teacher admin of '{world.slug}'" in err
    assert list(await listed(http, world, first)) == [bot["id"]]


async def test_a_bot_made_while_its_creator_is_demoted_never_outlives_the_demotion(world, http, pool):
    """Twenty bots asked for at once while the creator is demoted: each is refused, or made and
    then revoked with the demotion. None is left working."""
    first = await bearer(http, world.users["teacher_admin"])
    creator = world.users["teacher_member"]
    second = await second_admin(http, world)
    url = f"/api/spaces/{world.space_id}/bots"
    demote = http.patch(f"/api/spaces/{world.space_id}/members/{creator.id}", headers=first,
                        json={"role": "teacher_member"})
    asks = [http.post(url, headers=second, json={"name": f"bot {i}"}) for i in range(20)]
    answers = await asyncio.gather(*asks[:10], demote, *asks[10:])
    demoted, made = answers[10], answers[:10] + answers[10 + 1:]
    assert demoted.status_code == 200, demoted.text
    assert {r.status_code for r in made} <= {201, 403}, [r.text for r in made]
    for r in made:
        if r.status_code == 201:
            assert (await post_entry(http, world, r.json()["token"])).status_code == 401
    assert await pool.fetchval("SELECT count(*) FROM bots WHERE created_by = $1 AND revoked_at IS NULL", creator.id) == 0


# -- a closed project ------------------------------------------------------------------------------

async def test_a_bot_token_is_refused_while_its_project_is_closed_and_works_once_reopened(world, make_world, http,
                                                                                          pool):
    admin = await bearer(http, world.users["teacher_admin"])
    journal = await make_bot(http, world, admin)
    pages = await make_bot(http, world, admin, "TwinSpace pages", scope="activity")
    other = await make_world()
    foreign = await make_bot(http, other, await bearer(http, other.users["teacher_admin"]))
    assert (await http.post(f"/api/spaces/{world.space_id}/close", headers=admin)).status_code == 200
    answers = await asyncio.gather(*(post_entry(http, world, journal["token"], f"t{i}") for i in range(20)))
    answers.append(await post_record(http, world, pages["token"]))
    for r in answers:
        assert (r.status_code, r.json()["error"]) == (409, {
            "code": "space_closed",
            "message": "this project is closed: its bots post nothing until a teacher administrator reopens it"})
    # Another project's token learns nothing of this one: still `forbidden`.
    r = await post_entry(http, world, foreign["token"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE space_id = $1", world.space_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM activities WHERE space_id = $1 AND kind = 'document.added'",
                               world.space_id) == 0
    assert all(b["revoked_at"] is None and b["last_used_at"] is None for b in (await listed(http, world, admin)).values())
    assert (await http.post(f"/api/spaces/{world.space_id}/reopen", headers=admin)).status_code == 200
    assert (await post_entry(http, world, journal["token"])).status_code == 201
    assert (await post_record(http, world, pages["token"])).status_code == 201


async def test_a_project_closed_by_the_cli_refuses_its_bots_at_once(world, http, database_url):
    """The CLI tells no running process; the token's lookup reads the project's state itself."""
    bot = await make_bot(http, world, await bearer(http, world.users["teacher_admin"]))
    code, _, err = await twinhub(database_url, "admin", "close-space", "--space", world.slug)
    assert code == 0, err
    r = await post_entry(http, world, bot["token"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "space_closed")
    code, _, err = await twinhub(database_url, "admin", "close-space", "--space", world.slug, "--reopen")
    assert code == 0, err
    assert (await post_entry(http, world, bot["token"])).status_code == 201


# -- whom an activity record names -----------------------------------------------------------------

async def test_an_activity_token_never_names_a_pupil_and_a_pupil_answers_like_nobody(world, make_world, http, pool):
    admin = await bearer(http, world.users["teacher_admin"])
    pages = await make_bot(http, world, admin, "TwinSpace pages", scope="activity")
    journal = await make_bot(http, world, admin)
    bot_user = await pool.fetchval("SELECT user_id FROM bots WHERE id = $1", journal["id"])
    former = world.users["visitor"]
    assert (await http.delete(f"/api/spaces/{world.space_id}/members/{former.id}", headers=admin)).status_code == 200
    other = await make_world()
    nobody = {
        "pupil_member": world.users["pupil_member"].id, "pupil_admin": world.users["pupil_admin"].id,
        "a bot": bot_user, "an outsider": world.users["outsider"].id, "a platform moderator": world.users["moderator"].id,
        "a former member": former.id, "another project's teacher": other.users["teacher_admin"].id,
        "no one": 2**61, "past bigint": 2**63,
    }
    answers = {who: await post_record(http, world, pages["token"], actor_id=uid) for who, uid in nobody.items()}
    answers["20 at once"] = await asyncio.gather(*(
        post_record(http, world, pages["token"], actor_id=world.users["pupil_member"].id) for _ in range(20)))
    expected = (404, {"error": {"code": "not_found", "message": "actor_id is not a member this token may name"}})
    for who, r in answers.items():
        for one in (r if isinstance(r, list) else [r]):
            assert (one.status_code, one.json()) == expected, who
    assert await pool.fetchval("SELECT count(*) FROM activities WHERE space_id = $1 AND kind = 'document.added'",
                               world.space_id) == 0
    for who in ("teacher_admin", "teacher_member"):
        r = await post_record(http, world, pages["token"], actor_id=world.users[who].id)
        assert r.status_code == 201, (who, r.text)
    for bad in ("5", 1.5, True, [1]):
        r = await post_record(http, world, pages["token"], actor_id=bad)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field"), bad


async def test_an_activity_token_made_for_some_members_names_only_them(world, http):
    admin = await bearer(http, world.users["teacher_admin"])
    teacher, visitor = world.users["teacher_member"], world.users["visitor"]
    pages = await make_bot(http, world, admin, "Calendar", scope="activity", actors=[teacher.id, visitor.id, teacher.id])
    assert pages["actors"] == [teacher.id, visitor.id]
    assert (await listed(http, world, admin))[pages["id"]]["actors"] == [teacher.id, visitor.id]
    for who in (teacher, visitor):
        assert (await post_record(http, world, pages["token"], actor_id=who.id)).status_code == 201
    r = await post_record(http, world, pages["token"], actor_id=world.users["teacher_admin"].id)
    pupil = await post_record(http, world, pages["token"], actor_id=world.users["pupil_member"].id)
    assert (r.status_code, r.json()) == (pupil.status_code, pupil.json()) == (
        404, {"error": {"code": "not_found", "message": "actor_id is not a member this token may name"}})
    url = f"/api/spaces/{world.space_id}/bots"
    for body, code in (
        ({"scope": "activity", "actors": [world.users["pupil_member"].id]}, "not_found"),
        ({"scope": "activity", "actors": [world.users["outsider"].id]}, "not_found"),
        ({"scope": "journal", "actors": [teacher.id]}, "invalid_field"),
        ({"actors": [teacher.id]}, "invalid_field"),
        ({"scope": "activity", "actors": []}, "invalid_field"),
        ({"scope": "activity", "actors": [teacher.id] * 21}, "invalid_field"),
        ({"scope": "activity", "actors": [True]}, "invalid_field"),
        ({"scope": "activity", "actors": str(teacher.id)}, "invalid_field"),
        ({"scope": "activity", "actors": {"id": teacher.id}}, "invalid_field"),
    ):
        r = await http.post(url, headers=admin, json={"name": "x", **body})
        assert r.json()["error"]["code"] == code, (body, r.text)
    assert len(await listed(http, world, admin)) == 1
