"""Storage against a real PostgreSQL: migrations, the event log, group commit, the audit log."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import Conflict, Unavailable, accounts, activity, audit, spaces
from storage import messages as store
from storage.db import create_pool
from storage.messages import NewPost, post_many
from storage.migrate import migrate, migration_files
from storage.writer import GroupCommitWriter


@pytest.fixture
async def room(pool, world):
    from realtime.policy import Area

    return await spaces.get_room(pool, world.rooms[Area.CHAT])


def post(world, room, who="pupil_member", text="hi", client_id=None) -> NewPost:
    u = world.users[who]
    return NewPost(room.space_id, room.id, u.id, u.display_name, u.school, text, client_id, room.area)


async def test_migrations_are_numbered_and_idempotent(pool):
    versions = [v for v, _, _ in migration_files()]
    assert versions == sorted(versions) and versions[0] == 1
    async with pool.acquire() as conn:
        assert await migrate(conn) == []  # already applied by the fixture


async def test_concurrent_migrations_apply_once(admin_url):
    from storage.embedded import drop_database, ensure_database
    from tests.conftest import _with_database

    name = "twinhub_test_migrate_race"
    await drop_database(admin_url, name)
    await ensure_database(admin_url, name)
    url = _with_database(admin_url, name)
    conns = [await asyncpg.connect(url) for _ in range(3)]
    try:
        applied = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(len(a) for a in applied) == [0, 0, len(migration_files())]
    finally:
        for c in conns:
            await c.close()
        await drop_database(admin_url, name)


async def test_group_commit_gives_gap_free_seqs_in_submission_order(pool, world, room):
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        results = await asyncio.gather(*(writer.submit(post(world, room, text=f"m{i}")) for i in range(200)))
    finally:
        await writer.close()
    assert [r.event.seq for r in results] == list(range(1, 201))
    assert [r.event.message.text for r in results] == [f"m{i}" for i in range(200)]
    assert writer.batches < 200  # they were gathered, not committed one by one
    replay = await store.replay(pool, room.id, 0, 1000)
    assert [e.seq for e in replay.events] == list(range(1, 201)) and replay.head == 200


async def test_one_batch_across_rooms_and_spaces_takes_each_ones_seqs_in_order(pool, make_world):
    """One batch of post_many: interleaved posts to two rooms of one space and a room of another
    take each room's next seqs and each space's next feed seqs in list order, and each feed record
    names its room, its author and the author's role, as a reader reads it back."""
    from realtime.policy import Area

    a, b = await make_world(), await make_world()
    chat_a, corner_a, chat_b = [await spaces.get_room(pool, rid) for rid in
                                (a.rooms[Area.CHAT], a.rooms[Area.PUPILS_CORNER], b.rooms[Area.CHAT])]
    feed_a = await activity.head(pool, a.space_id)
    feed_b = await activity.head(pool, b.space_id)
    plan = [(a, chat_a, "pupil_member"), (b, chat_b, "teacher_admin"), (a, corner_a, "pupil_admin"),
            (a, chat_a, "visitor"), (b, chat_b, "pupil_member"), (a, corner_a, "pupil_member"), (a, chat_a, "pupil_member")]
    async with pool.acquire() as conn, conn.transaction():
        results = await post_many(conn, [post(w, r, who, f"{i}") for i, (w, r, who) in enumerate(plan)])
    assert [(r.event.room_id, r.event.seq) for r in results] == [
        (chat_a.id, 1), (chat_b.id, 1), (corner_a.id, 1), (chat_a.id, 2), (chat_b.id, 2), (corner_a.id, 2), (chat_a.id, 3)]
    assert [(r.activity.space_id, r.activity.seq) for r in results] == [
        (a.space_id, feed_a + 1), (b.space_id, feed_b + 1), (a.space_id, feed_a + 2), (a.space_id, feed_a + 3),
        (b.space_id, feed_b + 2), (a.space_id, feed_a + 4), (a.space_id, feed_a + 5)]
    assert [r.activity.actor["role"] for r in results] == [who for _, _, who in plan]
    assert [r.activity.room["name"] for r in results] == [r.name for _, r, _ in plan]
    assert all(r.activity.message_id == r.event.message.id for r in results)
    for w, rooms in ((a, (chat_a, corner_a)), (b, (chat_b,))):
        page = await activity.replay(pool, w.space_id, 0, 1000, [x.value for x in Area])
        made = {x.activity.seq: x.activity for x in results if x.activity.space_id == w.space_id}
        assert {x.seq: x for x in page.activities if x.seq in made} == made
        for r in rooms:
            replay = await store.replay(pool, r.id, 0, 100)
            assert [e.message.text for e in replay.events] == [str(i) for i, (_, rr, _) in enumerate(plan) if rr is r]


async def test_without_group_commit_each_write_is_its_own_transaction(pool, world, room):
    """TWINHUB_GROUP_COMMIT=0 (what the ingest benchmark compares with): max_batch 1."""
    writer = GroupCommitWriter(pool, post_many, name="post", max_batch=1)
    writer.start()
    try:
        results = await asyncio.gather(*(writer.submit(post(world, room, text=f"one {i}")) for i in range(20)))
    finally:
        await writer.close()
    seqs = [r.event.seq for r in results]
    assert seqs == list(range(seqs[0], seqs[0] + 20))  # still in order, gap-free
    assert writer.batches == writer.committed == 20


async def test_client_id_is_written_once_across_and_within_batches(pool, world, room):
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        first = await writer.submit(post(world, room, client_id="k1"))
        again = await asyncio.gather(*(writer.submit(post(world, room, client_id="k1")) for _ in range(5)))
        fresh = await asyncio.gather(*(writer.submit(post(world, room, client_id="k2")) for _ in range(5)))
    finally:
        await writer.close()
    assert not first.duplicate and all(r.duplicate for r in again)
    assert {r.event.message.id for r in again} == {first.event.message.id}
    assert sum(not r.duplicate for r in fresh) == 1 and len({r.event.seq for r in fresh}) == 1
    assert (await store.replay(pool, room.id, 0, 100)).head == 2


async def test_a_bad_post_does_not_fail_its_batch(pool, world, room):
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    bad = NewPost(room.space_id, room.id, 10**12, "ghost", "", "no such author", None, room.area)  # foreign key
    try:
        results = await asyncio.gather(
            writer.submit(post(world, room, text="a")), writer.submit(bad), writer.submit(post(world, room, text="b")),
            return_exceptions=True,
        )
    finally:
        await writer.close()
    assert [r.event.message.text for r in (results[0], results[2])] == ["a", "b"]
    assert isinstance(results[1], Exception)
    replay = await store.replay(pool, room.id, 0, 100)
    assert [e.seq for e in replay.events] == [1, 2]  # still gap-free


async def test_changes_take_the_next_seq_and_hide_is_audited(pool, world, room):
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        p = await writer.submit(post(world, room, text="first"))
    finally:
        await writer.close()
    mid = p.event.message.id
    author = world.users["pupil_member"].id
    assert await store.edit(pool, room.id, mid, world.users["pupil_admin"].id, "not yours") is None
    edited = await store.edit(pool, room.id, mid, author, "second")
    hidden = await store.hide(
        pool, space_id=room.space_id, room_id=room.id, message_id=mid,
        moderator_id=world.users["teacher_admin"].id, reason="test",
    )
    assert (edited.seq, hidden.seq) == (2, 3)
    assert hidden.message.state == "hidden"
    assert await store.edit(pool, room.id, mid, author, "after hide") is None
    entry = (await audit.entries(pool, room.space_id))[0]  # the newest (the world's set-up is audited too)
    assert (entry.action, entry.target_id, entry.reason) == ("message.hide", mid, "test")


async def test_audit_log_refuses_updates_and_deletes(pool, world):
    async with pool.acquire() as conn:
        async with conn.transaction():
            await audit.record(conn, space_id=world.space_id, actor_id=None, action="x", target_kind="t", target_id=1)
        for sql in ("UPDATE audit_log SET reason = 'rewritten'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(sql)


async def test_a_post_to_a_missing_room_fails_alone_and_leaves_nothing(pool, world, room):
    """The room check a foreign key made (0014_hot_path_references.sql): the post fails, its
    neighbours in the same group commit are stored, and no message or event of it is left."""
    from dataclasses import replace

    from storage import StorageError

    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        posts = [post(world, room, text=f"n{i}") for i in range(10)]
        posts[4] = replace(posts[4], room_id=room.id + 10_000, text="to nowhere")
        results = await asyncio.gather(*(writer.submit(p) for p in posts), return_exceptions=True)
    finally:
        await writer.close()
    assert isinstance(results[4], StorageError)
    good = [r for i, r in enumerate(results) if i != 4]
    assert [r.event.message.text for r in good] == [f"n{i}" for i in range(10) if i != 4]
    seqs = [r.event.seq for r in good]
    assert seqs == list(range(seqs[0], seqs[0] + 9))  # gap-free without it
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE text = 'to nowhere'") == 0
        assert await conn.fetchval("SELECT count(*) FROM room_events WHERE room_id = $1", room.id + 10_000) == 0


@pytest.mark.parametrize("table", ["rooms", "messages"])
async def test_history_rows_are_never_deleted(pool, world, room, table):
    """What the dropped foreign keys also promised (0014): a row a message or an event refers to
    never disappears, not even through SQL."""
    await post_many_now(pool, world, room)
    async with pool.acquire() as conn:
        for sql in (f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
            with pytest.raises(asyncpg.RaiseError, match="never deleted"):
                await conn.execute(sql)
        assert await conn.fetchval(f"SELECT count(*) FROM {table}") > 0


async def post_many_now(pool, world, room) -> None:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await post_many(conn, [post(world, room, text="kept")])


async def test_the_owner_of_the_audit_log_holds_no_update_or_delete_privilege(pool):
    granted = {r["privilege_type"] for r in await pool.fetch(
        "SELECT a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
        " WHERE c.oid = 'audit_log'::regclass AND a.grantee = c.relowner"
    )}
    assert {"INSERT", "SELECT"} <= granted and not granted & {"UPDATE", "DELETE", "TRUNCATE"}


async def test_unknown_username_and_duplicate_username(pool, world):
    assert await accounts.credentials(pool, "nobody-here") is None
    with pytest.raises(Conflict):
        await accounts.create_user(pool, username=world.users["visitor"].username, display_name="x", password_hash=None)


async def test_hostile_text_is_stored_verbatim(pool, world, room):
    nasty = "'); DROP TABLE messages; -- <img src=x onerror=alert(1)> \u0000".replace("\u0000", "")
    writer = GroupCommitWriter(pool, post_many, name="post")
    writer.start()
    try:
        p = await writer.submit(post(world, room, text=nasty, client_id="' OR 1=1 --"))
    finally:
        await writer.close()
    [m] = await store.history(pool, room.id, None, 10)
    assert m.text == nasty and m.client_id == "' OR 1=1 --" and p.event.message.id == m.id


async def test_unreachable_database_is_unavailable():
    with pytest.raises(Unavailable):
        await create_pool("postgresql://nobody@127.0.0.1:1/none", timeout=2)
