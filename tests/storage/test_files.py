"""storage/files.py on a real PostgreSQL: a project's quota counts each content once, and twenty
uploads at once cannot together pass it."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from storage import files
from storage.files import NewFile, OverQuota


def _new(world, content: bytes, *, thumb: bytes | None = None, name: str = "photo.jpg") -> NewFile:
    return NewFile(
        space_id=world.space_id, uploader_id=world.users["pupil_member"].id, sha256=hashlib.sha256(content).digest(),
        size=len(content), media_type="image/jpeg", kind="image", name=name,
        thumb_sha256=hashlib.sha256(thumb).digest() if thumb else None, thumb_size=len(thumb) if thumb else None,
    )


async def test_the_same_content_is_counted_once(pool, world):
    first = await files.add(pool, _new(world, b"x" * 100, thumb=b"t" * 10), quota=1000)
    again = await files.add(pool, _new(world, b"x" * 100, thumb=b"t" * 10, name="again.jpg"), quota=1000)
    assert first.id != again.id and (again.name, again.uploader_id) == ("again.jpg", world.users["pupil_member"].id)
    assert await files.stored_bytes(pool, world.space_id) == 110
    assert await files.is_stored(pool, world.space_id, hashlib.sha256(b"t" * 10).digest())
    assert not await files.is_stored(pool, world.space_id, hashlib.sha256(b"other").digest())
    assert (await files.get(pool, first.id)).sha256 == hashlib.sha256(b"x" * 100).digest()
    assert await files.get(pool, 10**12) is None


async def test_a_file_past_the_quota_is_not_recorded(pool, world):
    await files.add(pool, _new(world, b"a" * 600), quota=1000)
    with pytest.raises(OverQuota):
        await files.add(pool, _new(world, b"b" * 500), quota=1000)
    assert await files.stored_bytes(pool, world.space_id) == 600
    # Content already there adds nothing, so it still fits.
    await files.add(pool, _new(world, b"a" * 600, name="copy.jpg"), quota=1000)


async def test_twenty_uploads_at_once_do_not_pass_the_quota_together(pool, world):
    results = await asyncio.gather(
        *(files.add(pool, _new(world, bytes([i]) * 100), quota=1000) for i in range(20)), return_exceptions=True
    )
    kept = [r for r in results if not isinstance(r, Exception)]
    assert len(kept) == 10 and all(isinstance(r, OverQuota) for r in results if isinstance(r, Exception))
    assert await files.stored_bytes(pool, world.space_id) == 1000


def test_the_blob_key_stays_inside_its_project():
    digest = hashlib.sha256(b"x").digest()
    assert files.blob_key(12, digest) == f"spaces/12/{digest.hex()[:2]}/{digest.hex()}"
