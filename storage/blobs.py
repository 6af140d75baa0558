"""Where the bytes of attached files are kept (issue 26): one interface, `Blobs`, and two backends.

    LocalBlobs   a folder (data_dir/files by default): one process, or several sharing that folder
    S3Blobs      a bucket of any S3-compatible store (AWS S3, MinIO, SeaweedFS, Ceph, ...), through
                 botocore in threads of our own (storage/s3.py)

`open_blobs(settings.files_url, settings.data_dir)` picks one. The rows that say which file is
whose live in PostgreSQL; this module only keeps bytes under keys, and checks nothing but the key.

Keys: lowercase ASCII letters, digits and `._-`, in segments joined by `/` ("spaces/12/ab/ab12…",
the sha256 hex of the content). A segment never starts with `.` (no `.`, `..` or hidden names: a
key can never leave its folder or bucket prefix, and LocalBlobs' temporary files cannot be named),
no `..` anywhere, no leading, trailing or doubled `/`. Anything else is refused with ValueError
before any I/O. On LocalBlobs a key cannot also be the folder of other keys ("a/b" and "a/b/c"):
keep every key at the same depth, as content keys are.

The contract both backends keep, and tests/storage/test_blobs.py checks against both:
- `put` is atomic: a reader sees the old blob or the whole new one, never part; a put that fails
  (the source shrank or grew while it was read, the disk or the store refused) leaves what was
  there before, and nothing under a new key. It is idempotent: the same bytes put again under
  the same key leave the same blob (it is written again: a key is not trusted to name its bytes).
- `read` raises NotFound before its first chunk when the key is absent; a failure after that
  raises Unavailable mid-stream (the caller has sent part of a response and must drop it).
- Memory: a put or a read holds one chunk at a time (the copy buffer, or the HTTP client's
  blocks), never the file: 20 MB through either backend peaks well under 4 MB (tested).
- Failures of the store itself (disk full, bucket unreachable, refused) raise
  storage.Unavailable; a source the caller cannot read raises its own OSError.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import stat
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar
from urllib.parse import unquote, urlsplit

from .errors import NotFound, Unavailable

CHUNK = 64 * 1024  # what `read` yields by default: a socket write's worth
COPY_CHUNK = 256 * 1024  # LocalBlobs' copy buffer (the one piece of a put held in memory)
MAX_KEY = 512  # characters (S3 allows 1024 bytes with the bucket prefix; file systems 255 a segment)
MAX_SEGMENT = 128
T = TypeVar("T")
_SEGMENT = re.compile(r"[a-z0-9_-][a-z0-9._-]*")


class Blobs(Protocol):
    async def put(self, key: str, source: Path) -> None:
        """Store the regular file at `source` under `key`, replacing what was there, atomically.
        Raises ValueError (bad key), OSError (the source cannot be read; SourceChanged if it
        changed size while read), Unavailable (the store failed). On any failure the key holds
        what it held before. Cancelling the caller does not stop a write already under way in its
        thread: it completes or fails whole, as above."""
        ...

    def read(self, key: str, chunk: int = CHUNK) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks of at most `chunk`. ValueError (bad key) at the call;
        NotFound (absent) at the first `__anext__`, before any chunk; Unavailable mid-stream.
        Stopping early (aclose, or a `break` out of `async for`) releases the file or connection."""
        ...

    async def size(self, key: str) -> int | None:
        """The blob's size in bytes, or None when absent."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; an absent key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix` (a folder: "spaces/12/", ending in
        `/`, so that "spaces/1/" never takes "spaces/12/…"); returns how many were removed."""
        ...

    async def close(self) -> None:
        ...


class SourceChanged(OSError):
    """The file given to `put` was shorter or longer than when it was opened (a clean-up removed
    or truncated it, something still wrote to it): nothing was stored."""


def check_key(key: str) -> str:
    """`key` if it is a valid key (module docstring), else ValueError. Never echoes more than the
    start of a refused key: keys can come from requests."""
    if (
        not isinstance(key, str) or not key or len(key) > MAX_KEY or ".." in key
        or not all(len(s) <= MAX_SEGMENT and _SEGMENT.fullmatch(s) for s in key.split("/"))
    ):
        raise ValueError(f"not a blob key: {str(key)[:40]!r} (lowercase a-z, 0-9, '._-' in segments joined by '/')")
    return key


def check_prefix(prefix: str) -> str:
    """`prefix` if it is a valid key followed by `/` (a folder of keys), else ValueError."""
    if not isinstance(prefix, str) or not prefix.endswith("/"):
        raise ValueError(f"not a blob prefix: {str(prefix)[:40]!r} (a key's folder, ending in '/')")
    check_key(prefix[:-1])
    return prefix


class Source:
    """A regular file opened for a put, read exactly as long as it was when opened: `read` raises
    SourceChanged at a premature end, or when bytes remain past that length. Seekable, for the
    HTTP client (it hashes the body, then sends it, and rewinds it to retry)."""

    def __init__(self, path: Path) -> None:
        self._file: IO[bytes] = path.open("rb")
        try:
            st = os.fstat(self._file.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ValueError("a blob's source is a regular file")
        except BaseException:
            self._file.close()
            raise
        self.size = st.st_size
        self.failure: SourceChanged | None = None  # what `read` raised, if it did
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        left = self.size - self._pos
        if n is None or n < 0:
            n = left  # callers ask for blocks; this is the whole rest only if someone does not
        if left == 0:
            if n and self._file.read(1):
                self.failure = SourceChanged(f"the source grew past its {self.size} bytes while it was stored")
                raise self.failure
            return b""
        data = self._file.read(min(n, left))
        if n and not data:
            self.failure = SourceChanged(f"the source ended at {self._pos} of its {self.size} bytes while it was stored")
            raise self.failure
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._file.seek(offset, whence)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalBlobs:
    """Blobs as files under `root`, each at root/<key>. A put writes a temporary file beside its
    destination (".put-…": no key can have that name), fsyncs it, renames it over the key
    (os.replace: atomic on POSIX, and readers that opened the old file keep reading it) and
    fsyncs the folder. Every file operation runs in a thread (asyncio.to_thread), the copy in
    COPY_CHUNK pieces. Several processes may share the folder (a network file system must keep
    rename atomic, as NFS does)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalBlobs({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, source: Path) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._put, path, _path(source))

    @staticmethod
    def _put(path: Path, source: Path) -> None:
        with Source(source) as src:  # the source's own errors (and SourceChanged) are the caller's
            _store(path.parent.mkdir, parents=True, exist_ok=True)
            fd, tmp = _store(tempfile.mkstemp, dir=path.parent, prefix=".put-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as out:
                    while data := src.read(COPY_CHUNK):
                        _store(out.write, data)
                    _store(out.flush)
                    _store(os.fsync, out.fileno())
                _store(os.replace, tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        _store(_fsync_folder, path.parent)

    def read(self, key: str, chunk: int = CHUNK) -> AsyncIterator[bytes]:
        if chunk <= 0:
            raise ValueError("chunk is a positive number of bytes")
        return self._read(self._path(key), chunk)

    async def _read(self, path: Path, chunk: int) -> AsyncIterator[bytes]:
        file = await asyncio.to_thread(_store, _open_file, path)
        if file is None:
            raise NotFound(f"no blob {path.name[:16]}…")
        try:
            while data := await asyncio.to_thread(_store, file.read, chunk):
                yield data
        finally:
            file.close()

    async def size(self, key: str) -> int | None:
        st = await asyncio.to_thread(_store, _stat, self._path(key))
        return st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None

    async def delete(self, key: str) -> None:
        # The folder stays even if this empties it: a put may be about to write in it.
        await asyncio.to_thread(_store, _unlink, self._path(key))

    async def delete_prefix(self, prefix: str) -> int:
        folder = self.root / check_prefix(prefix)
        return await asyncio.to_thread(_store, _delete_tree, folder)

    async def close(self) -> None:
        pass


# An absent key may also be a folder of other keys, or lie under a key's file ("a/b" a file, "a/b/c" asked).
_ABSENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


def _path(source: Path | str) -> Path:
    return source if isinstance(source, Path) else Path(source)


def _open_file(path: Path) -> IO[bytes] | None:
    try:
        file = path.open("rb")
    except _ABSENT:
        return None
    if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
        file.close()
        return None
    return file


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except _ABSENT:
        return None


def _unlink(path: Path) -> None:
    with contextlib.suppress(*_ABSENT):
        os.unlink(path)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows has no folder handles to fsync)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _delete_tree(folder: Path) -> int:
    """Unlink every key's file under `folder` and remove the folders left empty; a put's
    temporary file is left to its put. Returns how many files were unlinked."""
    removed = 0
    for here, _dirs, files in os.walk(folder, topdown=False):
        for name in files:
            if name.startswith("."):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(here, name))
                removed += 1
        with contextlib.suppress(OSError):  # not empty: a put is writing there
            os.rmdir(here)
    return removed


def _store(operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`operation` on the files folder; its OSError (disk full, quota, permissions, I/O) becomes
    Unavailable, which says whose fault it was: the store's, not the caller's source's."""
    try:
        return operation(*args, **kwargs)
    except OSError as exc:
        raise Unavailable(f"the files folder failed: {exc.strerror or type(exc).__name__}") from exc


def open_blobs(url: str | None, data_dir: Path) -> Blobs:
    """The backend `url` (Settings.files_url, TWINHUB_FILES_URL) names:

        None                          LocalBlobs(data_dir / "files")
        file:///srv/twinhub/files     LocalBlobs at that folder (absolute)
        s3://bucket[/prefix]?endpoint=https://host:port&region=eu-west-1
        s3://KEY:SECRET@bucket[/prefix]?...   credentials in the URL (percent-encode / + and @)

    For s3:, credentials come from the URL, else from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY
    (and AWS_SESSION_TOKEN if set); nothing else is asked (no ~/.aws files, no instance metadata).
    Without `endpoint` it is AWS S3 itself. ValueError, naming what is wrong but never echoing
    the URL (it may hold a secret), if it cannot be read. Opens no connection; an S3 client takes
    some 0.2-0.5 s to build, blocking: call this once, at start-up."""
    if url is None or url == "":
        return LocalBlobs(Path(data_dir) / "files")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or not parts.path.startswith("/"):
            raise ValueError("TWINHUB_FILES_URL: a folder is written file:///absolute/path")
        return LocalBlobs(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        from .s3 import S3Blobs

        return S3Blobs.from_url(url)
    raise ValueError("TWINHUB_FILES_URL is file:///folder or s3://bucket/prefix?endpoint=… (docs/deployment.md)")
