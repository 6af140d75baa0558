"""Files added to a project (0025_files.sql): one row per upload, its bytes in the blob store
(storage/blobs.py) under `blob_key(space, sha256)`. A project's quota counts each distinct
content once, as the store keeps it; `add` checks it under a per-project lock, so that twenty
uploads at once cannot together pass it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from .db import read, transaction
from .errors import Conflict

_LOCK = 0x46494C45  # "FILE": the first key of the per-project advisory lock on the quota


class OverQuota(Conflict):
    """The project's files would pass its quota."""


@dataclass(frozen=True, slots=True)
class NewFile:
    space_id: int
    uploader_id: int
    sha256: bytes
    size: int
    media_type: str
    kind: str
    name: str
    width: int | None = None
    height: int | None = None
    thumb_sha256: bytes | None = None
    thumb_size: int | None = None
    thumb_media_type: str | None = None


@dataclass(frozen=True, slots=True)
class File:
    id: int
    space_id: int
    uploader_id: int | None
    sha256: bytes
    size: int
    media_type: str
    kind: str
    name: str
    width: int | None
    height: int | None
    thumb_sha256: bytes | None
    thumb_size: int | None
    thumb_media_type: str | None
    created_at: datetime


_COLUMNS = ("id, space_id, uploader_id, sha256, size, media_type, kind, name, width, height, thumb_sha256,"
            " thumb_size, thumb_media_type, created_at")


def blob_key(space_id: int, sha256: bytes) -> str:
    """Where a project's content is kept: one copy for the same bytes within a project."""
    digest = sha256.hex()
    return f"spaces/{space_id}/{digest[:2]}/{digest}"


def _file(r: asyncpg.Record) -> File:
    return File(*(r[c.strip()] for c in _COLUMNS.split(",")))


async def _stored_bytes(conn: asyncpg.Connection, space_id: int) -> int:
    return await conn.fetchval(
        "SELECT coalesce(sum(size), 0) FROM ("
        " SELECT DISTINCT sha256, size FROM files WHERE space_id = $1"
        " UNION SELECT DISTINCT thumb_sha256, thumb_size FROM files WHERE space_id = $1 AND thumb_sha256 IS NOT NULL"
        ") stored",
        space_id,
    )


async def stored_bytes(pool: asyncpg.Pool, space_id: int) -> int:
    """What the project's files take in the store (each content once)."""
    async with read(pool, "files_stored_bytes") as conn:
        return await _stored_bytes(conn, space_id)


async def add(pool: asyncpg.Pool, new: NewFile, quota: int) -> File:
    """Record an upload whose bytes are in the store. Raises OverQuota (nothing recorded) when
    the content it adds would take the project past `quota` bytes; content already there adds
    nothing."""
    async with transaction(pool, "add_file") as conn:
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2::int)", _LOCK, new.space_id)
        contents = [c for c in (new.sha256, new.thumb_sha256) if c is not None]
        rows = await conn.fetch(
            "SELECT sha256, thumb_sha256 FROM files WHERE space_id = $1"
            " AND (sha256 = ANY($2::bytea[]) OR thumb_sha256 = ANY($2::bytea[]))",
            new.space_id, contents,
        )
        present = {bytes(c) for r in rows for c in (r["sha256"], r["thumb_sha256"]) if c is not None}
        adds = 0 if new.sha256 in present else new.size
        if new.thumb_sha256 is not None and new.thumb_sha256 not in present and new.thumb_sha256 != new.sha256:
            adds += new.thumb_size or 0
        if adds and await _stored_bytes(conn, new.space_id) + adds > quota:
            raise OverQuota(f"space {new.space_id}")
        r = await conn.fetchrow(
            "INSERT INTO files (space_id, uploader_id, sha256, size, media_type, kind, name, width, height,"
            " thumb_sha256, thumb_size, thumb_media_type) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            f" RETURNING {_COLUMNS}",
            new.space_id, new.uploader_id, new.sha256, new.size, new.media_type, new.kind, new.name,
            new.width, new.height, new.thumb_sha256, new.thumb_size, new.thumb_media_type,
        )
    return _file(r)


async def get(pool: asyncpg.Pool, file_id: int) -> File | None:
    async with read(pool, "get_file") as conn:
        r = await conn.fetchrow(f"SELECT {_COLUMNS} FROM files WHERE id = $1", file_id)
    return None if r is None else _file(r)


async def is_stored(pool: asyncpg.Pool, space_id: int, sha256: bytes) -> bool:
    """Whether any upload of the project holds this content (as a file or a thumbnail): a blob
    put for a refused upload is deleted only when none does."""
    async with read(pool, "file_is_stored") as conn:
        return bool(await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM files WHERE space_id = $1 AND (sha256 = $2 OR thumb_sha256 = $2))",
            space_id, sha256,
        ))
