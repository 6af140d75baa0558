"""The files service (issue 26): a member adds a file to a project — streamed to a folder of its
own, never whole in memory, at most MAX_FILE_BYTES — and the server decides what it is by its
content (file_types.inspect), makes an image safe (images.clean_image: re-encoded, no metadata
left, a thumbnail), keeps it once per content in the blob store (storage/blobs.py) and records it
against the project's quota (storage/files.py). Whatever refuses an upload, nothing of it is kept.

Who adds files: policy.decide_upload. Who reads one: for now its uploader while they are in the
project (a file not yet attached to anything); attaching files to messages, mails and entries,
with their readers' rights, comes with those (issue 26, point 2).

May import: storage/, protocol/, the top-level leaves and the services beside it."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from protocol import ErrorCode
from protocol.timestamps import iso
from storage import files as store
from storage.blobs import Blobs
from storage.files import File, NewFile, OverQuota

from ..errors import ServiceError, database, rate_limited
from ..fanout.directory import Directory, Viewer
from ..policy import decide_upload
from ..ratelimit import Limiter
from . import access
from .file_types import Refusal, RefusalCode, inspect
from .images import clean_image

MAX_FILE_BYTES = 20 * 1024 * 1024  # seed 000: "20 Mo, à peu près le poids d'une courte vidéo"
DEFAULT_QUOTA = 5 * 1024**3  # a project's files, each content once: 250 short videos, or thousands of photos
# Uploads per member: a class's photos at once (30), then one every 10 s — each is inspected, an
# image decoded and re-encoded: the CPU a member may ask of the server is bounded.
UPLOADS_IN_A_ROW = 30
UPLOAD_REFILL = 1 / 10
UPLOAD_SECONDS = 600  # an upload slower than ~35 KB/s for 20 MB is ended (a connection held open on purpose)
_WRITE_BATCH = 1024 * 1024  # received bytes gathered before one write off the event loop


@dataclass(frozen=True, slots=True)
class Download:
    file: File
    key: str
    media_type: str
    size: int


def file_data(f: File) -> dict[str, Any]:
    """A file as clients see it (docs/protocol.md, "Files")."""
    return {
        "id": f.id, "space": f.space_id, "name": f.name, "size": f.size, "media_type": f.media_type,
        "kind": f.kind, "width": f.width, "height": f.height, "thumbnail": f.thumb_sha256 is not None,
        "uploader": f.uploader_id, "created_at": iso(f.created_at),
    }


class Files:
    def __init__(
        self, pool: asyncpg.Pool, blobs: Blobs, directory: Directory, limiter: Limiter, work_dir: Path,
        quota: int = DEFAULT_QUOTA,
    ) -> None:
        """`limiter`: uploads per member; `work_dir`: where uploads are received (each in a folder
        of its own, removed when the upload ends, however it ends)."""
        self._pool = pool
        self._blobs = blobs
        self._directory = directory
        self._limiter = limiter
        self._work = work_dir
        self._quota = quota

    async def upload(self, viewer: Viewer, space_id: int, name: Any, chunks: AsyncIterator[bytes],
                     length: int | None = None) -> dict[str, Any]:
        """Add the file whose bytes `chunks` brings, named `name` by its sender (`length`: the
        size announced, refused at once when over the limit)."""
        access.space(viewer, space_id, decide_upload(viewer.roles_in(space_id)))
        if (await self._directory.space(space_id)).closed:
            raise ServiceError(ErrorCode.SPACE_CLOSED, "the project is closed: nothing can be added until it is reopened")
        if not isinstance(name, str) or not name.strip():
            raise ServiceError(ErrorCode.FILE_NAME_INVALID, "give the file's name (?name=)")
        if length is not None and length > MAX_FILE_BYTES:
            raise ServiceError(ErrorCode.TOO_LARGE, f"a file may have at most {MAX_FILE_BYTES // (1024 * 1024)} MB")
        rate_limited(await self._limiter.acquire(viewer.user.id), "you are adding files")
        self._work.mkdir(parents=True, exist_ok=True)
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, dir=self._work, prefix="upload-"))
        try:
            received = folder / "received"
            try:
                async with asyncio.timeout(UPLOAD_SECONDS):
                    size = await _receive(chunks, received)
            except TimeoutError:
                raise ServiceError(ErrorCode.TOO_LARGE, f"the upload took longer than {UPLOAD_SECONDS} s") from None
            if size == 0:
                raise ServiceError(ErrorCode.FILE_EMPTY, "the file is empty")
            return file_data(await self._keep(viewer, space_id, name, received))
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)

    async def _keep(self, viewer: Viewer, space_id: int, name: str, received: Path) -> File:
        found = await asyncio.to_thread(inspect, received, name)
        if isinstance(found, Refusal):
            raise _refused(found)
        stored, media_type, width, height, thumb, thumb_type = received, found.media_type, None, None, None, None
        display_name = found.name
        if found.kind == "image":
            cleaned = await asyncio.to_thread(clean_image, received, found)
            if isinstance(cleaned, Refusal):
                raise _refused(cleaned)
            stored, media_type, width, height = cleaned.path, cleaned.media_type, cleaned.width, cleaned.height
            thumb, thumb_type = cleaned.thumbnail_path, cleaned.thumbnail_media_type
            display_name = cleaned.name
        digest, size = await asyncio.to_thread(_sha256, stored)
        thumb_digest, thumb_size = await asyncio.to_thread(_sha256, thumb) if thumb else (None, None)
        keys = [store.blob_key(space_id, digest)] + ([store.blob_key(space_id, thumb_digest)] if thumb_digest else [])
        await self._blobs.put(keys[0], stored)
        if thumb:
            await self._blobs.put(keys[1], thumb)
        new = NewFile(space_id, viewer.user.id, digest, size, media_type, found.kind, display_name, width, height,
                      thumb_digest, thumb_size, thumb_type)
        try:
            return await database(store.add(self._pool, new, self._quota))
        except (OverQuota, ServiceError) as exc:
            # Nothing half-kept: the bytes just put go unless another upload holds the same.
            for key, digest_ in zip(keys, (digest, thumb_digest), strict=False):
                if digest_ is not None and not await store.is_stored(self._pool, space_id, digest_):
                    await self._blobs.delete(key)
            if isinstance(exc, OverQuota):
                raise ServiceError(ErrorCode.QUOTA_EXCEEDED, "the project's files would pass its quota") from None
            raise

    async def open(self, viewer: Viewer, file_id: int, *, thumbnail: bool = False) -> Download:
        """A file (or its thumbnail) the viewer may read; `not_found` for any other, whether it
        exists or not."""
        f = await database(store.get(self._pool, file_id))
        if f is None or not self._may_read(viewer, f) or (thumbnail and f.thumb_sha256 is None):
            raise ServiceError(ErrorCode.NOT_FOUND, f"there is no file {file_id} you may read")
        if thumbnail:
            assert f.thumb_sha256 is not None and f.thumb_size is not None
            return Download(f, store.blob_key(f.space_id, f.thumb_sha256), f.thumb_media_type or "image/jpeg", f.thumb_size)
        return Download(f, store.blob_key(f.space_id, f.sha256), f.media_type, f.size)

    def read(self, download: Download) -> AsyncIterator[bytes]:
        return self._blobs.read(download.key)

    @staticmethod
    def _may_read(viewer: Viewer, f: File) -> bool:
        # Not yet attached to anything: its uploader's alone, while they are in the project.
        return f.uploader_id == viewer.user.id and bool(viewer.roles_in(f.space_id))


async def _receive(chunks: AsyncIterator[bytes], path: Path) -> int:
    """Write what arrives to `path` in batches off the event loop; `too_large` past the limit."""
    size = 0
    pending: list[bytes] = []
    waiting = 0
    out = await asyncio.to_thread(path.open, "wb")
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise ServiceError(ErrorCode.TOO_LARGE, f"a file may have at most {MAX_FILE_BYTES // (1024 * 1024)} MB")
            pending.append(chunk)
            waiting += len(chunk)
            if waiting >= _WRITE_BATCH:
                await asyncio.to_thread(out.write, b"".join(pending))
                pending, waiting = [], 0
        if pending:
            await asyncio.to_thread(out.write, b"".join(pending))
    finally:
        await asyncio.to_thread(out.close)
    return size


def _sha256(path: Path) -> tuple[bytes, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.digest(), size


def _refused(refusal: Refusal) -> ServiceError:
    # An archive that would unpack past the bounds is, to the client, a file over a limit.
    if refusal.code is RefusalCode.FILE_ARCHIVE_TOO_LARGE:
        return ServiceError(ErrorCode.TOO_LARGE, refusal.reason)
    return ServiceError(ErrorCode(refusal.code.value), refusal.reason)

