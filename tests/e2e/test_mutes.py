"""Mutes through real sockets and HTTP: a muted pupil's next post or mail gets `muted` with the
time it ends, at once on their open socket; only the right people mute; every act is audited."""

from __future__ import annotations

import asyncio

from protocol import Edit, Post, SendMail
from realtime.fanout.control import MemberChanged
from realtime.policy import Area
from storage import audit
from tests.conftest import login


async def _auth(http, world, who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users[who].username)}"}


async def test_a_muted_pupil_is_refused_at_once_in_that_area_only(world, connect, http, pool):
    pupil = await connect(world.users["pupil_member"])
    corner, chat = world.channel(Area.PUPILS_CORNER), world.channel(Area.CHAT)
    mine = await pupil.ok(Post(corner, "before"))
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin, json={
        "user_id": world.users["pupil_member"].id, "scope": "pupils_corner", "minutes": 1440, "reason": "unkind words",
    })
    assert r.status_code == 201, r.text
    until = r.json()["until"]

    refused = await pupil.error(Post(corner, "after"))  # the same open socket, no reconnect
    assert refused.code == "muted" and refused.data == {"scope": "pupils_corner", "until": until}
    assert (await pupil.error(Edit(corner, mine.data["id"], "edited"))).code == "muted"
    await pupil.ok(Post(chat, "the chat is not muted"))
    await pupil.ok(SendMail(world.space_id, (world.users["teacher_admin"].id,), "nor the mail", subject="x"))

    lifted = await http.delete(
        f"/api/spaces/{world.space_id}/mutes/{world.users['pupil_member'].id}/pupils_corner", headers=admin
    )
    assert lifted.json()["lifted"] is True
    await pupil.ok(Post(corner, "back"))
    log = [(e.action, e.details.get("scope")) for e in await audit.entries(pool, world.space_id)]
    assert log[:2] == [("member.unmute", "pupils_corner"), ("member.mute", "pupils_corner")]


async def test_muted_in_mail_or_everywhere(world, connect, http):
    pupil = await connect(world.users["pupil_admin"])
    admin = await _auth(http, world, "teacher_admin")
    to = (world.users["teacher_member"].id,)
    for scope in ("mail", "all"):
        r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin,
                            json={"user_id": world.users["pupil_admin"].id, "scope": scope, "minutes": 10})
        assert r.status_code == 201, r.text
        assert (await pupil.error(SendMail(world.space_id, to, "hi", subject="x"))).code == "muted"
        chat = await pupil.request(Post(world.channel(Area.CHAT), "hi"))
        assert (chat.type == "ok") is (scope == "mail")


async def test_a_mute_ends_by_itself(world, connect, pool, server):
    pupil = await connect(world.users["pupil_member"])
    who = world.users["pupil_member"].id
    await pool.execute(
        "INSERT INTO mutes (space_id, user_id, scope, until) VALUES ($1, $2, 'chat', now() + interval '1 second')",
        world.space_id, who,
    )
    await server.app.state.changes.send(MemberChanged(world.space_id, who))
    refused = await pupil.error(Post(world.channel(Area.CHAT), "now"))
    assert refused.code == "muted"
    await asyncio.sleep(1.2)  # the mute's own length: nothing reloads it, its end was known
    await pupil.ok(Post(world.channel(Area.CHAT), "later"))


async def test_who_may_mute_whom(world, http):
    target = world.users["pupil_member"].id
    cases = [
        ("teacher_member", {"user_id": target, "scope": "pupils_corner", "minutes": 5}, 403, "forbidden"),
        ("pupil_admin", {"user_id": target, "scope": "chat", "minutes": 5}, 403, "forbidden"),
        ("teacher_admin", {"user_id": world.users["teacher_member"].id, "scope": "chat", "minutes": 5}, 403,
         "forbidden"),  # teachers are not muted
        ("teacher_admin", {"user_id": world.users["outsider"].id, "scope": "chat", "minutes": 5}, 404, "not_found"),
        ("teacher_admin", {"user_id": target, "scope": "everywhere", "minutes": 5}, 400, "invalid_field"),
        ("teacher_admin", {"user_id": target, "scope": "chat", "minutes": -5}, 400, "invalid_field"),
        ("teacher_admin", {"user_id": target, "scope": "chat", "minutes": 10**9}, 400, "invalid_field"),
        ("teacher_admin", {"user_id": "x", "scope": "chat", "minutes": 5}, 400, "invalid_field"),
        ("outsider", {"user_id": target, "scope": "chat", "minutes": 5}, 404, "not_found"),
    ]
    for who, body, status, code in cases:
        r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=await _auth(http, world, who), json=body)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), (who, body, r.text)
    moderator = await _auth(http, world, "moderator")
    r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=moderator,
                        json={"user_id": target, "scope": "all", "minutes": 5, "reason": "platform safeguarding"})
    assert r.status_code == 201


async def test_unmuting_in_another_project_changes_nothing(world, make_world, connect, http):
    other = await make_world()
    pupil = await connect(world.users["pupil_member"])
    target = world.users["pupil_member"].id
    admin = await _auth(http, world, "teacher_admin")
    r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=admin,
                        json={"user_id": target, "scope": "chat", "minutes": 30})
    assert r.status_code == 201
    # The other project's teacher admin: the pupil is not their member; their own project is not this one.
    foreign = await _auth(http, other, "teacher_admin")
    wrong = await http.delete(f"/api/spaces/{other.space_id}/mutes/{target}/chat", headers=foreign)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (404, "not_found")
    here = await http.delete(f"/api/spaces/{world.space_id}/mutes/{target}/chat", headers=foreign)
    assert (here.status_code, here.json()["error"]["code"]) == (404, "not_found")
    assert (await pupil.error(Post(world.channel(Area.CHAT), "still muted"))).code == "muted"


async def test_a_muted_pupil_is_not_shown_typing_where_they_may_not_post(world, connect, http):
    """A muted member could otherwise keep a room watching "… is typing" for words that cannot
    come: `typing` is refused `muted` where they are muted, and nobody is told."""
    from protocol import Subscribe, Typing, TypingNotice

    pupil, other = await connect(world.users["pupil_member"]), await connect(world.users["pupil_admin"])
    corner, chat = world.channel(Area.PUPILS_CORNER), world.channel(Area.CHAT)
    for client in (pupil, other):
        await client.ok(Subscribe(corner))
        await client.ok(Subscribe(chat))
    r = await http.post(f"/api/spaces/{world.space_id}/mutes", headers=await _auth(http, world, "teacher_admin"),
                        json={"user_id": world.users["pupil_member"].id, "scope": "pupils_corner", "minutes": 60,
                              "reason": "a pause"})
    assert r.status_code == 201, r.text
    assert (await pupil.error(Typing(corner))).code == "muted"
    await pupil.ok(Typing(chat))  # not muted there
    notice = await other.next_frame(TypingNotice)
    assert notice.channel == chat
    await asyncio.sleep(0.3)
    assert not [f for f in other.unsolicited if isinstance(f, TypingNotice) and f.channel == corner]
