"""S3Blobs: the `Blobs` of storage/blobs.py in a bucket of an S3-compatible store (AWS S3, MinIO,
SeaweedFS, Ceph RGW, Garage, …), through botocore, AWS's own client, run in a small pool of
threads of ours (docs/architecture.md, "Libraries, and why", says why botocore and not
aiobotocore). Imported only when TWINHUB_FILES_URL is an s3:// URL.

- put: one streamed PUT of the file (`Source`), with its length. botocore reads it in blocks —
  to sign it (over plain HTTP it hashes the body, then rewinds) and to send it — and never holds
  it whole. An object appears only once its PUT completes, so a reader never sees half of one,
  and a PUT cut short (the source shrank, the connection broke) stores nothing. One PUT takes
  up to 5 GiB; files here are at most 20 MB, so no multipart upload (and no parts to abort).
- read: one GET, its body read in chunks, each in a pool thread.
- delete_prefix: the keys listed under the prefix, deleted 1000 to a request (DeleteObjects).
- Errors: an absent key is NotFound (or None, or nothing, as the method says); every other
  refusal or failure of the store (unreachable, timed out, access denied, no such bucket) is
  storage.Unavailable, whose message names the operation and the store's error code, never a
  credential. botocore retries transient failures (its "standard" mode, 3 tries) first.

Credentials are given to botocore explicitly (`from_url`), so it never runs its own search:
no ~/.aws/credentials, no instance metadata service. The secret is held by the client alone:
not in repr, not in any message. Checksums are sent only where S3 requires them
("when_required"): stores that are not AWS often refuse the newer default checksums.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from .blobs import CHUNK, Source, check_key, check_prefix
from .errors import NotFound, Unavailable

T = TypeVar("T")
MAX_PUT = 5 * 1024**3  # bytes one PUT may carry (S3's limit)
WORKERS = 8  # threads, and HTTP connections, per S3Blobs: puts in flight at once; reads hold none between chunks
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ABSENT = frozenset({"NoSuchKey", "404", "NotFound"})
_OPTIONS = frozenset({"endpoint", "region", "addressing"})


class S3Blobs:
    def __init__(
        self, bucket: str, prefix: str = "", *, access_key: str, secret_key: str, session_token: str | None = None,
        endpoint: str | None = None, region: str = "us-east-1", addressing: str | None = None,
        workers: int = WORKERS, timeout: float = 30.0,
    ) -> None:
        """`prefix` ("" or a key such as "twinhub/files") is put before every key, with a `/`.
        `addressing` is "path" (bucket in the path: what most stores other than AWS want, and
        the default with an `endpoint`) or "virtual" (bucket in the host name: AWS's default).
        Opens no connection (the first request does), but builds botocore's client at once,
        which blocks for some 0.2-0.5 s (loading its S3 model): make one at start-up."""
        import botocore.config
        import botocore.session

        if not _BUCKET.fullmatch(bucket):
            raise ValueError("an S3 bucket's name is 3 to 63 characters: a-z, 0-9, '.' and '-'")
        self.bucket = bucket
        self.prefix = f"{check_key(prefix)}/" if prefix else ""
        self.endpoint = endpoint
        config = botocore.config.Config(
            region_name=region, signature_version="s3v4",
            s3={"addressing_style": addressing or ("path" if endpoint else "auto")},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5, read_timeout=timeout, max_pool_connections=workers,
            request_checksum_calculation="when_required", response_checksum_validation="when_required",
        )
        self._client = botocore.session.Session().create_client(
            "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            aws_session_token=session_token, config=config,
        )
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="twinhub-s3")
        self._bucket_seen = False  # size(): see there

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> S3Blobs:
        """s3://[KEY:SECRET@]bucket[/prefix][?endpoint=http://host:port&region=…&addressing=path|virtual]
        (storage/blobs.py's open_blobs). Without KEY:SECRET, AWS_ACCESS_KEY_ID and
        AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN, if set) from `env` (the environment)."""
        env = os.environ if env is None else env
        parts = urlsplit(url)
        userinfo, _, bucket = parts.netloc.rpartition("@")
        options = dict(parse_qsl(parts.query))
        if parts.scheme != "s3" or not bucket or parts.fragment or options.keys() - _OPTIONS:
            raise ValueError("TWINHUB_FILES_URL: s3://bucket/prefix?endpoint=https://host:port&region=… "
                             f"(options: {', '.join(sorted(_OPTIONS))}; docs/deployment.md)")
        endpoint = options.get("endpoint")
        if endpoint is not None:
            ep = urlsplit(endpoint)
            if ep.scheme not in ("http", "https") or not ep.hostname or ep.username or ep.query:
                raise ValueError("TWINHUB_FILES_URL: its endpoint is http(s)://host[:port]")
        if options.get("addressing") not in (None, "path", "virtual"):
            raise ValueError("TWINHUB_FILES_URL: addressing is path or virtual")
        if userinfo:
            key, colon, secret = userinfo.partition(":")
            key, secret, token = unquote(key), unquote(secret), None
            if not (key and colon and secret):
                raise ValueError("TWINHUB_FILES_URL: credentials in it are written KEY:SECRET@ (percent-encoded)")
        else:
            key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
            token = env.get("AWS_SESSION_TOKEN") or None
            if not (key and secret):
                raise ValueError("TWINHUB_FILES_URL is an S3 bucket, but no credentials: set AWS_ACCESS_KEY_ID and "
                                 "AWS_SECRET_ACCESS_KEY (or put KEY:SECRET@ in the URL)")
        prefix = parts.path.strip("/")
        try:
            if prefix:
                check_key(prefix)
        except ValueError:
            raise ValueError("TWINHUB_FILES_URL: its prefix is a path of a-z, 0-9, '._-'") from None
        return cls(bucket, prefix, access_key=key, secret_key=secret, session_token=token, endpoint=endpoint,
                   region=options.get("region") or "us-east-1", addressing=options.get("addressing"))

    def __repr__(self) -> str:  # never the credentials
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"S3Blobs({self.bucket}/{self.prefix}{where})"

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _run(self, what: str, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`call` in a pool thread; the store's errors as ours (module docstring)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, functools.partial(call, *args, **kwargs))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "?"))
            if code in _ABSENT:
                raise NotFound(f"no blob ({what})") from None
            raise Unavailable(f"the file store refused {what}: {code}") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"the file store failed {what}: {type(exc).__name__}") from exc

    async def put(self, key: str, source: Path) -> None:
        await self._run("a put", self._put, self._name(key), source if isinstance(source, Path) else Path(source))

    def _put(self, name: str, source: Path) -> None:
        with Source(source) as body:
            if body.size > MAX_PUT:
                raise ValueError(f"a blob is at most {MAX_PUT} bytes")
            try:
                self._client.put_object(Bucket=self.bucket, Key=name, Body=body, ContentLength=body.size,
                                        ContentType="application/octet-stream")
            except Exception:
                # The HTTP client may have wrapped the source's own error (it is an OSError, which
                # urllib3 takes for a broken connection): the put failed because of the source.
                if body.failure is not None:
                    raise body.failure from None
                raise

    def read(self, key: str, chunk: int = CHUNK) -> AsyncIterator[bytes]:
        if chunk <= 0:
            raise ValueError("chunk is a positive number of bytes")
        return self._read(self._name(key), chunk)

    async def _read(self, name: str, chunk: int) -> AsyncIterator[bytes]:
        answer = await self._run("a read", self._client.get_object, Bucket=self.bucket, Key=name)
        body = answer["Body"]
        try:
            while data := await self._run("a read", body.read, chunk):
                yield data
        finally:
            body.close()  # early: the connection is dropped, not read to its end

    async def size(self, key: str) -> int | None:
        try:
            head = await self._run("a size", self._client.head_object, Bucket=self.bucket, Key=self._name(key))
        except NotFound:
            # A HEAD's 404 has no body to say whether the key or the whole bucket is missing:
            # the bucket is asked once, so that a wrong bucket is never "every blob absent".
            if not self._bucket_seen:
                try:
                    await self._run("a bucket's check", self._client.head_bucket, Bucket=self.bucket)
                except NotFound:
                    raise Unavailable(f"the file store has no bucket {self.bucket}") from None
                self._bucket_seen = True
            return None
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        await self._run("a delete", self._client.delete_object, Bucket=self.bucket, Key=self._name(key))

    async def delete_prefix(self, prefix: str) -> int:
        return await self._run("a prefix's delete", self._delete_prefix, self.prefix + check_prefix(prefix))

    def _delete_prefix(self, prefix: str) -> int:
        removed = 0
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000})
        for page in pages:
            names = [{"Key": item["Key"]} for item in page.get("Contents", ())]
            if not names:
                continue
            answer = self._client.delete_objects(Bucket=self.bucket, Delete={"Objects": names, "Quiet": True})
            errors = answer.get("Errors", ())
            if errors:
                raise Unavailable(f"the file store kept {len(errors)} of {len(names)} blobs under a prefix "
                                  f"({errors[0].get('Code', '?')}); {removed + len(names) - len(errors)} removed")
            removed += len(names)
        return removed

    async def close(self) -> None:
        await asyncio.to_thread(self._pool.shutdown)
        self._client.close()

