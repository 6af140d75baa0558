"""How TwinHub reaches Redis: one server, or a Redis Cluster, told apart by asking the server.

`TWINHUB_REDIS_URL` may name a standalone Redis or any node of a cluster; `detect` asks it
(`INFO cluster`) once at start-up, and the bus and the shared limits then open the matching
client. A cluster needs a cluster-aware client for keys (each key lives on the node that owns
its slot) and for sharded pub/sub (each shard channel is heard only on the node that owns its
slot: `node_client` opens a plain connection to that node).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import ConnectionPool, parse_url
from redis.exceptions import RedisClusterException, RedisError

# What a lost or changed Redis raises: a cluster client's own errors are not RedisErrors.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)

Client = redis.Redis | RedisCluster


async def detect(url: str, *, timeout: float = 10.0) -> bool:
    """True if the server at `url` is a Redis Cluster node. Retries until `timeout` (Redis may
    be starting beside us); raises ConnectionError, without the password, if it never answers."""
    deadline = time.monotonic() + timeout
    while True:
        probe = redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            info = await probe.info("cluster")
            return bool(info.get("cluster_enabled"))
        except REDIS_ERRORS as exc:
            if time.monotonic() >= deadline:
                raise ConnectionError(f"Redis at {safe_url(url)} does not answer ({type(exc).__name__})") from None
            await asyncio.sleep(0.2)
        finally:
            await probe.aclose()


def open_client(url: str, *, cluster: bool, **options: Any) -> Client:
    """A client for commands and pipelines; connects on first use."""
    if cluster:
        return RedisCluster.from_url(url, **options)
    return redis.from_url(url, **options)


def node_client(url: str, node: ClusterNode, **options: Any) -> redis.Redis:
    """A plain client to one node of the cluster, with the credentials and TLS of `url`."""
    settings = {**parse_url(url), **options, "host": node.host, "port": node.port, "db": 0}
    return redis.Redis.from_pool(ConnectionPool(**settings))


def safe_url(url: str) -> str:
    """The URL without its password (secrets are never logged)."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"
