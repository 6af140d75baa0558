"""The whole role matrix walked cell by cell through real sockets (and HTTP for room creation).

For every area and every role (plus a platform moderator and someone from outside the project):
subscribe (read), post, hide someone's message (moderate) and create a room (create_room) are
tried for real, and each outcome must be what realtime.policy.MATRIX says — which
tests/realtime/test_policy.py checks against DESIGN.md. `comment` is the project journal's
(its issue walks those cells).
"""

from __future__ import annotations

import pytest

from protocol import Error, Hide, Ok, Post, Subscribe
from realtime.policy import MATRIX, Action, Area, Role
from tests.conftest import login

WHO = ["teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor", "moderator", "outsider"]


def allowed(who: str, area: Area, action: Action) -> bool:
    if who == "outsider":
        return False
    return action in MATRIX[area].get(Role(who), frozenset())


def refusal_code(who: str) -> str:
    # Someone outside the project cannot tell a room they may not see from one that does not exist.
    return "not_found" if who == "outsider" else "forbidden"


def a_poster(area: Area) -> str:
    return next(w for w in WHO if allowed(w, area, Action.POST))


@pytest.mark.parametrize("area", list(Area))
async def test_room_rights_cell_by_cell(area, world, connect, http):
    channel = world.channel(area)
    clients = {who: await connect(world.users[who]) for who in WHO}
    poster = clients[a_poster(area)]
    outcomes = {}
    for who, client in clients.items():
        # read
        reply = await client.request(Subscribe(channel, since=0))
        outcomes[(who, "read")] = reply
        # post
        reply = await client.request(Post(channel, f"{who} was here"))
        outcomes[(who, "post")] = reply
        # moderate: hide a message someone else posted there
        target = await poster.ok(Post(channel, f"for {who} to hide"))
        reply = await client.request(Hide(channel, target.data["id"], reason="matrix test"))
        outcomes[(who, "moderate")] = reply
        # create a room in this area (HTTP)
        token = await login(http, world.users[who].username)
        r = await http.post(
            f"/api/spaces/{world.space_id}/rooms", json={"area": area.value, "name": f"by {who}"},
            headers={"Authorization": f"Bearer {token}"},
        )
        outcomes[(who, "create_room")] = r

    wrong = []
    for (who, action), reply in outcomes.items():
        expect = allowed(who, area, Action(action))
        if action == "create_room":
            got = reply.status_code == 201
            code = reply.json().get("error", {}).get("code") if not got else None
        else:
            got = isinstance(reply, Ok)
            code = reply.code if isinstance(reply, Error) else None
        if got != expect:
            wrong.append(f"{who} {action}: expected {'ok' if expect else 'refusal'}, got {reply}")
        elif not got and code != refusal_code(who):
            wrong.append(f"{who} {action}: refused with {code}, expected {refusal_code(who)}")
    assert not wrong, "\n".join(wrong)


async def test_visitor_never_reaches_pupils_in_chat(world, connect):
    visitor = await connect(world.users["visitor"])
    for area in (Area.CHAT, Area.PUPILS_CORNER):
        err = await visitor.error(Post(world.channel(area), "hello child"))
        assert err.code == "forbidden"


async def test_welcome_lists_only_rooms_the_role_may_read(world, connect):
    pupil = await connect(world.users["pupil_member"])
    [space] = [s for s in pupil.welcome.spaces if s["id"] == world.space_id]
    areas = {room["area"] for room in space["rooms"]}
    assert "teachers_room" not in areas
    assert {"home", "activities", "pupils_corner", "chat"} <= areas
    corner = next(r for r in space["rooms"] if r["area"] == "pupils_corner")
    assert "post" in corner["rights"]
    teacher = await connect(world.users["teacher_member"])
    [space] = [s for s in teacher.welcome.spaces if s["id"] == world.space_id]
    corner = next(r for r in space["rooms"] if r["area"] == "pupils_corner")
    assert corner["rights"] == ["read"]


async def test_outsider_sees_no_project(world, connect):
    outsider = await connect(world.users["outsider"])
    assert all(s["id"] != world.space_id for s in outsider.welcome.spaces)
