"""Bad input from anyone is a clear error with a stable code, never a traceback, and nothing is
stored: JSON nested too deep, lone surrogates (valid JSON, "\\ud800", but no text), in HTTP
bodies and in every string field of a frame."""

from __future__ import annotations

import json

import pytest

from protocol import Error
from realtime.policy import Area
from tests.conftest import login

DEEP = "[" * 5000 + "]" * 5000
SURROGATE = "caf\\ud800"  # as it travels in JSON: an escape for half of a UTF-16 pair


async def _admin(http, world) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, world.users['teacher_admin'].username)}",
            "content-type": "application/json"}


@pytest.mark.parametrize("body", [
    '{"pupils": ' + DEEP + "}", DEEP, '{"a":' * 2000 + "1" + "}" * 2000,
])
async def test_json_nested_too_deep_is_a_bad_frame(world, http, body):
    r = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=await _admin(http, world), content=body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_frame"), r.text[:200]
    r = await http.post("/api/login", headers={"content-type": "application/json"}, content=body)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "bad_frame")


async def test_a_lone_surrogate_anywhere_in_a_body_is_an_invalid_field(world, http, pool):
    admin = await _admin(http, world)
    before = await pool.fetchval("SELECT count(*) FROM users")
    for path, body in (
        (f"/api/spaces/{world.space_id}/pupils", '{"pupils": ["' + SURROGATE + '"]}'),
        (f"/api/spaces/{world.space_id}/pupils", '{"pupils": ["Ana"], "school": "' + SURROGATE + '"}'),
        (f"/api/spaces/{world.space_id}/invitations", '{"role": "visitor", "note": "' + SURROGATE + '"}'),
        (f"/api/spaces/{world.space_id}/rooms", '{"area": "chat", "name": "' + SURROGATE + '"}'),
        ("/api/login", '{"username": "' + SURROGATE + '", "password": "x"}'),
        (f"/api/spaces/{world.space_id}/pupils", '{"' + SURROGATE + '": 1, "pupils": ["Ana"]}'),  # in a key
    ):
        r = await http.post(path, headers=admin, content=body)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_field"), (path, r.text)
    assert await pool.fetchval("SELECT count(*) FROM users") == before


async def test_a_lone_surrogate_in_any_string_field_of_a_frame_is_an_invalid_field(world, connect):
    teacher = await connect(world.users["teacher_admin"])
    chat = world.channel(Area.CHAT)
    frames = [
        {"type": "post", "channel": chat, "text": "x", "client_id": "c\ud800", "ref": 1},
        {"type": "send_mail", "space": world.space_id, "to": [world.users["teacher_member"].id], "text": "x",
         "subject": "s\ud800", "ref": 2},
        {"type": "hide", "channel": chat, "id": 1, "reason": "r\ud800", "ref": 3},
        {"type": "mute", "space": world.space_id, "user_id": world.users["pupil_member"].id, "scope": "chat",
         "minutes": 5, "reason": "m\ud800", "ref": 4},
    ]
    for frame in frames:
        await teacher.send_raw(json.dumps(frame))  # ensure_ascii: the surrogate travels as \ud800
        answer = await teacher.next_frame(Error)
        assert (answer.code, answer.ref) == ("invalid_field", frame["ref"]), (frame, answer)
