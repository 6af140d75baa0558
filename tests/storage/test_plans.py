"""Query plans that must not grow with the history: checked with EXPLAIN on a real PostgreSQL
holding enough rows for the planner to choose as it would in production."""

from __future__ import annotations

import json
from typing import Any

from storage import spaces
from storage.messages import ORIGINALS_SQL


def scanned(plan: dict[str, Any]) -> set[str]:
    """Relations the plan reads with a sequential scan, anywhere in the tree."""
    found = {plan["Relation Name"]} if plan["Node Type"] == "Seq Scan" else set()
    for child in plan.get("Plans", ()):
        found |= scanned(child)
    return found


async def test_finding_retried_posts_probes_the_index_however_long_the_history(pool, world):
    """Every post with a client_id is looked up before it is written (a retry must not be stored
    twice). With 30,000 messages stored, a batch of 500 lookups is 500 index probes, not a scan
    of every message (the plain join the planner turned into one)."""
    author = world.users["pupil_member"]
    room = await spaces.create_room(pool, space_id=world.space_id, area="chat", name="history")
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO messages (space_id, room_id, seq, author_id, text, client_id)"
            " SELECT $1, $2, g, $3, 'old', 'h' || g FROM generate_series(1, 30000) g",
            room.space_id, room.id, author.id,
        )
        await conn.execute("ANALYZE messages")
        keys = [f"new-{i}" for i in range(497)] + ["h7", "h20000", "h29999"]
        [row] = await conn.fetch(f"EXPLAIN (FORMAT JSON) {ORIGINALS_SQL}", [author.id] * len(keys), keys)
        found = await conn.fetch(ORIGINALS_SQL, [author.id] * len(keys), keys)
    assert "messages" not in scanned(json.loads(row[0])[0]["Plan"])
    assert sorted(r["client_id"] for r in found) == ["h20000", "h29999", "h7"]
    assert {r["author_name"] for r in found} == {author.display_name}
