"""The bus over Redis pub/sub: many TwinHub processes (one machine's cores, or many machines)
behave as one.

    publish(event) ─▶ this process's hub at once (no Redis round trip for local subscribers)
                  └▶ outbox ─▶ writer task: one pipelined PUBLISH batch per loop turn
    Redis ─▶ reader task ─▶ every other process's hub (its own messages come back and are skipped)

Channels: events go to one of `shards` Redis channels, `twinhub:ev:{n}` with n = crc32(channel)
mod shards, so that a channel's events stay in order on one Redis channel; control messages
(membership changed, resync) go to `twinhub:ctl`; presence and typing (`share`) to `twinhub:eph`.
Sharded (`sharded=True`, and always on a Redis Cluster), every one of them is a shard channel
(SPUBLISH/SSUBSCRIBE): each `{n}` is a hash tag, so the shards spread over the cluster's nodes, a
channel's events always take the same node, and no message is broadcast to every node as classic
pub/sub is in a cluster. On a cluster the reader holds one connection per node that owns some of
these channels; a node that hands a slot over (resharding, failover) unsubscribes us, and the
reader then subscribes again where the slots now are and catches up from PostgreSQL
(docs/scaling.md).

Every message is signed (issue 21, rule 17): it goes to Redis as HMAC-SHA256(secret, its Redis
channel's name and its body) followed by the body, and the reader checks the signature
(`hmac.compare_digest`) before it reads anything else. Whoever can reach Redis without the secret
(`TWINHUB_BUS_SECRET`) cannot make a process deliver a chat message, change someone's rights,
close their sockets or show someone present: such a message is dropped and counted (`rejected`,
`twinhub_bus_rejected_total` on /metrics), with one log line a minute at most and never its
content. The channel is signed with the body, so a message cannot be moved to another channel or
another installation's prefix. What a signature does not stop: a signed message read off Redis
and published again (a chat event is then a duplicate seq, which the hub drops; a control message
makes the processes re-read rights they already have, or closes the sockets of a user whose
sessions were once revoked), nor anything done to Redis itself (docs/deployment.md: AUTH, ACL, TLS).
A batch of events is one message, signed once.

A Redis that hangs (stopped, not dead: it accepts connections and answers nothing) holds up
neither a post nor its acknowledgement: `publish` only queues. The writer's batch waits for
Redis's answer up to ANSWER_TIMEOUT. A shorter hang only delays the other processes' deliveries
(the outbox goes out, in order, once Redis answers); past it the batch counts as lost and a
resync is owed, and so does each batch after it (one every ANSWER_TIMEOUT) until Redis answers:
then the others catch up from PostgreSQL, as after Redis died. The reader hears nothing
meanwhile, which pub/sub cannot tell from a quiet moment.

Nothing here is the truth: PostgreSQL is. Every event carries its channel's `seq`, so a process
that misses some (Redis restarted, a connection dropped, the outbox overflowed) gets them back
from PostgreSQL: on reconnecting it catches up every channel it serves (`on_resync`), and a
process whose outgoing messages were lost tells every other process to do the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import redis.asyncio as redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from protocol import Event

from .bus import ControlSink, EphemeralSink, EventSink
from .control import Control, from_wire, to_wire
from .redis_client import REDIS_ERRORS, Client, detect, node_client, open_client, safe_url

log = logging.getLogger("twinhub.bus")

MAX_OUTBOX = 100_000  # messages waiting for Redis; past this they are dropped and a resync is owed
MAX_BATCH = 2_000  # messages per pipelined batch
CLOSE_WAIT = 5.0  # seconds close() waits for the reader and the writer to stop
RESYNC = {"kind": "resync"}
SIGNATURE = 32  # bytes of HMAC-SHA256 before each message's body
REJECTED_LOG_EVERY = 60.0  # seconds: at most one log line this often about dropped unsigned messages
# Seconds a PUBLISH batch waits for Redis's answer before it counts as lost (a resync owed). Said
# here rather than left to redis-py's default (5 s in the version we use; none in older ones).
ANSWER_TIMEOUT = 5.0


def shard_of(channel: str, shards: int) -> int:
    return zlib.crc32(channel.encode()) % shards


class RedisBus:
    reaches_others = True

    def __init__(
        self, url: str, *, secret: str, prefix: str = "twinhub", shards: int = 16, sharded: bool = False,
        cluster: bool | None = None, on_resync: Callable[[], Awaitable[None]] | None = None,
        retry_delay: float = 0.2,
    ) -> None:
        """`secret`: what every message is signed with, the same on every process of the
        installation (ValueError if empty). `cluster`: whether `url` is a Redis Cluster node
        (None: ask it at start)."""
        if not secret:
            raise ValueError("a RedisBus needs the secret its messages are signed with (TWINHUB_BUS_SECRET)")
        self._key = secret.encode()
        self._url = url
        # Pub/sub ignores Redis's numbered databases: two installations sharing one Redis keep
        # apart by their prefix.
        self._shard_names = [f"{prefix}:ev:{{{n}}}" for n in range(shards)]
        self._control = f"{prefix}:ctl"
        self._ephemeral = f"{prefix}:eph"
        # Each channel's HMAC, keyed and fed the channel's name (length first) once: a message's
        # signature is a copy of it fed the body (OpenSSL's set-up of a fresh HMAC costs more
        # than hashing a small message).
        self._macs = {
            name.encode(): hmac.new(self._key, len(name.encode()).to_bytes(2, "big") + name.encode(), "sha256")
            for name in (*self._shard_names, self._control, self._ephemeral)
        }
        self._shards = shards
        self._sharded = sharded
        self._cluster = cluster
        self.on_resync = on_resync
        self._retry_delay = retry_delay
        self.origin = secrets.token_bytes(8)  # this process: its own messages come back, skipped
        self._event_sinks: list[EventSink] = []
        self._control_sinks: list[ControlSink] = []
        self._ephemeral_sinks: list[EphemeralSink] = []
        # (Redis channel, packed message) — or, for an event, (shard channel, its unpacked item):
        # the writer packs each shard's events of one turn into one message.
        self._outbox: deque[tuple[str, bytes | list[Any]]] = deque()
        self._wake = asyncio.Event()
        self._owe_resync = False  # our messages were lost: the others must catch up from PostgreSQL
        self._client: Client | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._subscribed = asyncio.Event()
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.rejected = 0  # messages received without a valid signature, dropped
        self._rejected_logged = (-REJECTED_LOG_EVERY, 0)  # (when the last line said so, `rejected` then)
        self.connected = False
        self.subscriptions = 0  # (re)subscriptions made: 1 after start, one more per reconnection

    # -- the Bus interface -------------------------------------------------------------------

    def attach(self, on_event: EventSink, on_control: ControlSink) -> None:
        self._event_sinks.append(on_event)
        self._control_sinks.append(on_control)

    async def publish(self, event: Event) -> None:
        """Hand the event to this process's hub now, and queue it for the others. Never waits
        for Redis: a post is acknowledged once committed, whatever Redis is doing."""
        self.published += 1
        for sink in self._event_sinks:
            sink(event)
        self._queue(
            self._shard_names[shard_of(event.channel, self._shards)], [event.channel, event.seq, event.kind, event.data]
        )

    async def control(self, message: Control) -> None:
        for sink in self._control_sinks:
            sink(message)
        self._queue(self._control, msgpack.packb([self.origin, 1, to_wire(message)]))

    def attach_ephemeral(self, on_ephemeral: EphemeralSink) -> None:
        self._ephemeral_sinks.append(on_ephemeral)

    def share(self, message: dict[str, Any]) -> None:
        if len(self._outbox) < MAX_OUTBOX:  # best effort: never owes a resync
            self._outbox.append((self._ephemeral, msgpack.packb([self.origin, 2, message])))
            self._wake.set()

    async def start(self) -> None:
        """Connect and subscribe; raises ConnectionError if Redis does not answer within 10 s."""
        if self._cluster is None:
            self._cluster = await detect(self._url)
        self._sharded = self._sharded or self._cluster  # classic pub/sub in a cluster goes to every node
        self._client = open_client(self._url, cluster=self._cluster, socket_connect_timeout=2,
                                   socket_timeout=ANSWER_TIMEOUT, health_check_interval=10)
        self._tasks = [
            asyncio.create_task(self._read(), name="redis bus reader"),
            asyncio.create_task(self._write(), name="redis bus writer"),
        ]
        try:
            await asyncio.wait_for(self._subscribed.wait(), 10)
        except TimeoutError:
            await self.close()
            raise ConnectionError(f"cannot subscribe to Redis at {safe_url(self._url)}") from None

    async def close(self) -> None:
        """Stop reading and writing; returns within CLOSE_WAIT seconds whatever Redis does."""
        self._closing = True  # the reader's loop ends on it even if its cancellation is lost
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            stopped, stuck = await asyncio.wait(self._tasks, timeout=CLOSE_WAIT)
            for task in stopped:
                if not task.cancelled() and task.exception() is not None:
                    log.warning("Redis bus: %s had failed: %r", task.get_name(), task.exception())
            for task in stuck:
                log.warning("Redis bus: %s did not stop within %.0f s; left behind", task.get_name(), CLOSE_WAIT)
        self._tasks = []
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        self._event_sinks.clear()
        self._control_sinks.clear()
        self._ephemeral_sinks.clear()

    # -- outgoing ------------------------------------------------------------------------------

    def _queue(self, channel: str, payload: bytes | list[Any]) -> None:
        if len(self._outbox) >= MAX_OUTBOX:
            self.dropped += 1
            self._owe_resync = True
            return
        self._outbox.append((channel, payload))
        self._wake.set()

    async def _write(self) -> None:
        assert self._client is not None
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox or self._owe_resync:
                batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), MAX_BATCH))]
                if self._owe_resync and not batch:
                    batch = [(self._control, msgpack.packb([self.origin, 1, RESYNC]))]
                try:
                    # A cluster's pipeline sends each node its own commands, in order.
                    async with self._client.pipeline(transaction=False) as pipe:
                        publish = pipe.spublish if self._sharded else pipe.publish
                        for channel, payload in self._pack(batch):
                            publish(channel, self._sign(channel, payload))
                        await pipe.execute()
                    if batch[-1][0] == self._control and self._owe_resync and len(batch) == 1:
                        self._owe_resync = False
                        log.info("told the other processes to catch up from PostgreSQL")
                except REDIS_ERRORS as exc:
                    # Lost: the other processes will not see these; they catch up once we can
                    # tell them to (the events are committed, PostgreSQL has them).
                    self.dropped += len(batch)
                    if not self._owe_resync:
                        log.warning("Redis publish failed (%s): %d messages lost, resync owed", type(exc).__name__,
                                    len(batch))
                    self._owe_resync = True
                    await asyncio.sleep(self._retry_delay)

    def _pack(self, batch: list[tuple[str, bytes | list[Any]]]) -> list[tuple[str, bytes]]:
        """One Redis message per shard for the events of this turn (in their order; a shard's
        message goes where its first event was): every process parses one reply per shard and
        turn instead of one per event, which is most of what the bus costs (docs/performance.md)."""
        out: list[tuple[str, bytes | list[Any]]] = []
        shards: dict[str, list[Any]] = {}
        for channel, payload in batch:
            if isinstance(payload, bytes):
                out.append((channel, payload))
            elif channel in shards:
                shards[channel].append(payload)
            else:
                shards[channel] = [payload]
                out.append((channel, shards[channel]))
        return [
            (channel, payload if isinstance(payload, bytes) else msgpack.packb([self.origin, 3, payload]))
            for channel, payload in out
        ]

    def _sign(self, channel: str, body: bytes) -> bytes:
        """The message as it goes to Redis: its signature, then its body."""
        mac = self._macs[channel.encode()].copy()
        mac.update(body)
        return mac.digest() + body

    # -- incoming ------------------------------------------------------------------------------

    async def _read(self) -> None:
        first = True
        while not self._closing:
            clients: list[redis.Redis] = []  # connections to cluster nodes, ours to close
            pubsubs: list[PubSub] = []
            try:
                for client, channels in await self._plan(clients):
                    pubsub = client.pubsub()
                    pubsubs.append(pubsub)
                    if self._sharded:
                        for channel in channels:  # one slot per command, or a cluster says CROSSSLOT
                            await pubsub.ssubscribe(channel)
                    else:
                        await pubsub.subscribe(*channels)
                self.connected = True
                self.subscriptions += 1
                self._subscribed.set()
                if not first:
                    log.info("Redis bus reconnected; catching up from PostgreSQL")
                    await self._resync()
                first = False
                async with asyncio.TaskGroup() as group:
                    for pubsub in pubsubs:
                        group.create_task(self._pump(pubsub))
            except* REDIS_ERRORS as failed:
                # On Python 3.11 a TaskGroup whose child fails while the group is being cancelled
                # raises that failure and drops the cancellation: close() is heard by its flag.
                if self.connected and not self._closing:
                    log.warning("Redis bus disconnected (%s); retrying", type(failed.exceptions[0]).__name__)
                self.connected = False
                first = first and not self._subscribed.is_set()
                if not self._closing:
                    await asyncio.sleep(self._retry_delay)
            finally:
                for pubsub in pubsubs:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                for client in clients:
                    with contextlib.suppress(Exception):
                        await client.aclose()

    async def _plan(self, opened: list[redis.Redis]) -> list[tuple[Client, list[str]]]:
        """Which connection subscribes to which Redis channels: one connection for one server;
        on a cluster, one per node owning some of them, from a fresh look at the slot map (the
        nodes opened are appended to `opened`)."""
        channels = [self._control, self._ephemeral, *self._shard_names]
        client = self._client
        if not isinstance(client, RedisCluster):
            assert client is not None
            return [(client, channels)]
        await client.initialize()  # the first time only
        if self.subscriptions:  # a reconnection: where are the slots now?
            await client.nodes_manager.initialize()
        by_node: dict[str, tuple[Any, list[str]]] = {}
        for channel in channels:
            node = client.get_node_from_key(channel)
            by_node.setdefault(node.name, (node, []))[1].append(channel)
        plan: list[tuple[Client, list[str]]] = []
        for node, owned in by_node.values():
            opened.append(node_client(self._url, node, socket_connect_timeout=2, health_check_interval=10))
            plan.append((opened[-1], owned))
        return plan

    async def _pump(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            kind = message["type"]
            if kind == "message" or kind == "smessage":
                self._receive(message["channel"], message["data"])
            elif kind == "sunsubscribe":  # the node gave a slot away: subscribe where it went
                raise _SlotMoved(f"shard channel {message['channel']!r} left its node")

    def _verified(self, channel: bytes, data: bytes) -> memoryview | None:
        """The body of a message from one of our channels whose signature is right, else None."""
        keyed = self._macs.get(channel)
        if keyed is None or len(data) < SIGNATURE:
            return None
        body = memoryview(data)[SIGNATURE:]
        mac = keyed.copy()
        mac.update(body)
        if not hmac.compare_digest(mac.digest(), data[:SIGNATURE]):
            return None
        return body

    def _reject(self) -> None:
        """Count a message without a valid signature; say so in the log once a minute at most
        (an attacker must not be able to fill the log), never with its content."""
        self.rejected += 1
        when, then = self._rejected_logged
        now = time.monotonic()
        if now - when >= REJECTED_LOG_EVERY:
            self._rejected_logged = (now, self.rejected)
            log.warning(
                "dropped %d bus message(s) without a valid signature since the last such line: forged, or sent "
                "with another TWINHUB_BUS_SECRET (one line a minute at most; twinhub_bus_rejected_total counts all)",
                self.rejected - then,
            )

    def _receive(self, channel: bytes, data: bytes) -> None:
        body = self._verified(channel, data)
        if body is None:
            self._reject()
            return
        try:
            m = msgpack.unpackb(body)
            if m[0] == self.origin:
                return
            self.received += 1
            if m[1] == 3:
                for channel, seq, kind, data in m[2]:
                    event = Event(channel, seq, kind, data)
                    for sink in self._event_sinks:
                        sink(event)
            elif m[1] == 0:  # one event a message (before batching): still understood
                event = Event(m[2], m[3], m[4], m[5])
                for sink in self._event_sinks:
                    sink(event)
            elif m[1] == 2:
                for ephemeral in self._ephemeral_sinks:
                    ephemeral(m[0], m[2])
            elif m[2] == RESYNC:
                asyncio.get_running_loop().create_task(self._resync())
            else:
                message = from_wire(m[2])
                for control in self._control_sinks:
                    control(message)
        except Exception:  # one bad message must not stop the reader
            log.exception("dropped an unreadable bus message")

    async def _resync(self) -> None:
        if self.on_resync is not None:
            try:
                await self.on_resync()
            except Exception:
                log.exception("catching up from PostgreSQL failed")


class _SlotMoved(RedisClusterException):
    """A node unsubscribed us from a shard channel it no longer owns."""
