"""The activity feed's records on a real PostgreSQL: written in the action's own transaction, on
a gap-free sequence per space, read back filtered by the areas a reader may see."""

from __future__ import annotations

import asyncio

from realtime.policy import Area
from storage import activity, spaces
from storage.messages import NewPost, post_many
from storage.writer import GroupCommitWriter


def post(world, area: Area, who: str, text: str = "hi", author_id: int | None = None) -> NewPost:
    u = world.users[who]
    return NewPost(world.space_id, world.rooms[area], author_id or u.id, u.display_name, u.school, text, None,
                   area.value)


async def kinds(pool, world, areas=None):
    areas = areas or [a.value for a in Area]
    page = await activity.replay(pool, world.space_id, 0, 1000, areas)
    return [(a.seq, a.kind, a.area) for a in page.activities], page.head


async def test_every_action_writes_its_record_in_order(pool, world):
    base = (await kinds(pool, world))[1]  # the world's own set-up (rooms, members) is recorded too
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        posted = await writer.submit(post(world, Area.PUPILS_CORNER, "pupil_member"))
    finally:
        await writer.close()
    assert posted.activity is not None and posted.activity.actor["role"] == "pupil_member"
    assert posted.activity.room == {"id": world.rooms[Area.PUPILS_CORNER], "name": "pupils_corner"}
    admin = world.users["teacher_admin"].id
    await spaces.create_room(pool, space_id=world.space_id, area="activities", name="Samples", created_by=admin)
    await spaces.set_member(pool, world.space_id, world.users["outsider"].id, "visitor", actor_id=admin)
    await spaces.set_member(pool, world.space_id, world.users["outsider"].id, "visitor", actor_id=admin)  # no change
    await spaces.set_member(pool, world.space_id, world.users["outsider"].id, "teacher_member", actor_id=admin)
    await spaces.remove_member(pool, world.space_id, world.users["outsider"].id, actor_id=admin)
    await spaces.set_closed(pool, world.space_id, True, actor_id=admin)
    found, head = await kinds(pool, world)
    assert [k for k in found if k[0] > base] == [
        (base + 1, "message.posted", "pupils_corner"), (base + 2, "room.created", "activities"),
        (base + 3, "member.joined", None), (base + 4, "member.role_changed", None),
        (base + 5, "member.removed", None), (base + 6, "space.closed", None),
    ]
    assert head == base + 6 and [k[0] for k in found] == list(range(1, head + 1))  # gap-free


async def test_a_reader_sees_only_the_areas_given(pool, world):
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        await asyncio.gather(
            writer.submit(post(world, Area.TEACHERS_ROOM, "teacher_member", "for teachers")),
            writer.submit(post(world, Area.CHAT, "pupil_member", "for all")),
        )
    finally:
        await writer.close()
    pupil_view, _ = await kinds(pool, world, ["home", "activities", "pupils_corner", "chat"])
    assert ("message.posted", "teachers_room") not in [(k, a) for _, k, a in pupil_view]
    assert ("message.posted", "chat") in [(k, a) for _, k, a in pupil_view]


async def test_no_record_without_its_action(pool, world):
    before = (await kinds(pool, world))[1]
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        bad = post(world, Area.CHAT, "pupil_member", "ghost", author_id=10**12)  # the insert fails (foreign key)
        results = await asyncio.gather(writer.submit(bad), return_exceptions=True)
    finally:
        await writer.close()
    assert isinstance(results[0], Exception)
    assert (await kinds(pool, world))[1] == before  # the failed action left no record and no seq


async def test_a_post_record_built_from_what_the_post_knew_is_the_record_stored(pool, world):
    """With the author's and the room's names given (as chat gives them), record() writes
    without reading them back: what it returns must equal what a reader reads, field by field,
    for every role (the role comes from the members table in the same statement)."""
    from dataclasses import replace

    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        results = await asyncio.gather(*(
            writer.submit(replace(post(world, area, who, f"{who} in {area.value}"), room_name=area.value))
            for area, who in [(Area.CHAT, "pupil_member"), (Area.TEACHERS_ROOM, "teacher_admin"),
                              (Area.PUPILS_CORNER, "pupil_admin"), (Area.CHAT, "visitor")]
        ))
    finally:
        await writer.close()
    page = await activity.replay(pool, world.space_id, 0, 1000, [a.value for a in Area])
    stored = {a.seq: a for a in page.activities}
    made = [r.activity for r in results]
    assert [a.actor["role"] for a in made] == ["pupil_member", "teacher_admin", "pupil_admin", "visitor"]
    for a in made:
        assert a == stored[a.seq]


async def test_without_the_names_the_record_reads_them(pool, world):
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        done = await writer.submit(post(world, Area.CHAT, "pupil_member"))  # no room_name
    finally:
        await writer.close()
    assert done.activity.room == {"id": world.rooms[Area.CHAT], "name": "chat"}
    assert done.activity.actor["name"] == world.users["pupil_member"].display_name


async def test_records_about_pupils_written_before_migration_16_move_to_the_pupils_corner(pool, world):
    """Migration 0016 moves the member records of pupils written with area NULL (before records
    about pupils were kept from visitors) to the pupils' corner's area; adults' stay NULL."""
    from importlib import resources

    from storage.activity import NewActivity

    pupil, adult = world.users["pupil_member"].id, world.users["visitor"].id
    async with pool.acquire() as conn, conn.transaction():
        await activity.record(conn, [
            NewActivity(world.space_id, "member.role_changed", None, None, user_id=pupil, details={"old": 1}),
            NewActivity(world.space_id, "member.role_changed", None, None, user_id=adult, details={"old": 1}),
        ])
        await conn.execute(resources.files("storage.migrations").joinpath("0016_pupil_member_records.sql").read_text())
    rows = dict(await pool.fetch(
        "SELECT user_id, area FROM activities WHERE space_id = $1 AND details ->> 'old' = '1'", world.space_id))
    assert rows == {pupil: "pupils_corner", adult: None}
