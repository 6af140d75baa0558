"""The load generator's WebSocket clients, on picows: thousands of connections in one asyncio process.

Every client speaks the TwinHub protocol shape on the JSON subprotocol: one JSON object per
message to the server; every message from the server is a JSON array of frames. Each received
message is parsed whole (orjson if installed — 2-4x faster than the standard library's json,
which is the fallback); each `event` frame in it is one *delivery*. With `deflate`, clients offer
permessage-deflate as browsers do, and inflate what the server compressed.

A delivery's latency is its receive time minus the send time that the publisher wrote at the
start of the message text. Publisher and subscribers live in this process, so both times come
from the same monotonic clock.

A LeanSubscriber parses nothing when a message holds only events: it counts them and checks their
seqs on the raw bytes, so its CPU goes per message (the server batches many events per message)
rather than per delivery, and it records no latency. The scale-out scenario uses it for most of
its subscribers, leaving latencies to a sample of full Subscribers, so that the load generator
costs less than the servers it measures.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, TypeVar

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

try:
    from orjson import loads as _loads

    PARSER = "orjson"
except ImportError:  # pragma: no cover — the standard library's parser, slower
    _loads = json.loads
    PARSER = "json"

SUBPROTOCOL = "twinhub.v1.json"
STAMP_DIGITS = 19  # time.monotonic_ns() as zero-padded decimal at the start of each post's text
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
PACE_TICK_NS = 1_000_000  # the event loop's timer resolution (uvloop: 1 ms): pace() sleeps no less
DEFLATE_OFFER = "permessage-deflate; client_max_window_bits"  # what browsers send
_DEFLATE_TAIL = b"\x00\x00\xff\xff"  # RFC 7692: removed by the sender, appended before inflating

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def post_text(stamp_ns: int, size: int) -> str:
    """A message text of `size` characters that starts with the time `stamp_ns`."""
    head = f"{stamp_ns:0{STAMP_DIGITS}d} "
    return head + "x" * max(size - len(head), 0)


class Tally:
    """What all the subscribers of a run received. Latencies are kept only while `recording`."""

    __slots__ = ("deliveries", "messages", "seq_anomalies", "errors", "closes", "latencies", "recording",
                 "lean_messages", "lean_fallbacks")

    def __init__(self) -> None:
        self.deliveries = 0  # event frames
        self.messages = 0  # WebSocket messages (arrays of frames)
        self.lean_messages = 0  # of which checked by a LeanSubscriber without parsing them
        self.lean_fallbacks = 0  # messages a LeanSubscriber parsed whole (not only events, or a seq amiss)
        self.seq_anomalies = 0  # an event whose seq is not the previous one + 1 (gap or duplicate)
        self.errors: Counter[str] = Counter()  # error frames by code
        self.closes: Counter[int] = Counter()  # close frames from the server, by code
        self.latencies = array("q")  # ns, one per delivery while recording
        self.recording = False


class Client(WSListener):
    """One connection: requests answered by `ref` (hello, subscribe); subclasses take the rest."""

    def __init__(self, tally: Tally) -> None:
        super().__init__()
        self.tally = tally
        self.transport: WSTransport | None = None
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._last_ref = 0
        self._parts: list[bytes] = []
        self._closed_with = ""  # the server's close code and reason, once it sent a close frame
        self._compressed = False  # the message being received has RSV1 set (permessage-deflate)
        self._inflate: Any = None  # one zlib stream per connection (the server may keep its context)

    # -- picows callbacks ----------------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.CONTINUATION:
            if kind is WSMsgType.TEXT and frame.rsv1:
                self._compressed = True
            if not frame.fin:
                self._parts.append(frame.get_payload_as_bytes())
                return
            if self._parts:
                self._parts.append(frame.get_payload_as_bytes())
                payload = b"".join(self._parts)
                self._parts = []
            else:
                payload = frame.get_payload_as_bytes()
            if self._compressed:
                self._compressed = False
                if self._inflate is None:
                    self._inflate = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
                payload = self._inflate.decompress(payload + _DEFLATE_TAIL)
            self.on_message(payload)
        elif kind is WSMsgType.CLOSE:
            code = int(frame.get_close_code())
            self.tally.closes[code] += 1
            self._closed_with = f" with {code} {frame.get_close_reason()!r}"
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for fut in self._answers.values():
            if not fut.done():
                fut.set_exception(ConnectionError(f"the connection was closed{self._closed_with}"))
        self._answers.clear()

    # -- protocol ------------------------------------------------------------------------------

    def on_message(self, payload: bytes) -> None:
        """One whole WebSocket message from the server (inflated): parsed whole, then on_frames()."""
        self.on_frames(_loads(payload), time.monotonic_ns())

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        for frame in frames:
            self.answer(frame)

    def answer(self, frame: dict[str, Any]) -> None:
        """Hand a frame to the request waiting for its `ref`; count errors; ignore the rest."""
        if frame.get("type") == "error":
            self.tally.errors[str(frame.get("code"))] += 1
        fut = self._answers.pop(frame.get("ref"), None)  # type: ignore[arg-type]
        if fut is not None and not fut.done():
            fut.set_result(frame)

    def next_ref(self) -> int:
        self._last_ref += 1
        return self._last_ref

    def send(self, frame: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, _dumps(frame).encode())

    async def request(self, frame: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send `frame` with a fresh ref; return the frame that answers it (ok, welcome or error)."""
        ref = self.next_ref()
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[ref] = fut
        self.send({**frame, "ref": ref})
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._answers.pop(ref, None)

    async def expect(self, frame: dict[str, Any], kind: str, timeout: float) -> dict[str, Any]:
        answer = await self.request(frame, timeout)
        if answer.get("type") != kind:
            raise RuntimeError(f"{frame['type']} was answered with {answer}")
        return answer

    async def close(self, timeout: float) -> None:
        if self.transport is not None:
            self.transport.disconnect()
            await asyncio.wait_for(self.transport.wait_disconnected(), timeout)


class Subscriber(Client):
    """Counts the events it receives, checks their seqs follow on, records their latency."""

    def __init__(self, tally: Tally) -> None:
        super().__init__(tally)
        self.last_seq = 0

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        tally = self.tally
        latencies = tally.latencies if tally.recording else None
        events = 0
        for frame in frames:
            kind = frame["type"]
            if kind == "event":
                seq = frame["seq"]
                if seq != self.last_seq + 1:
                    tally.seq_anomalies += 1
                self.last_seq = seq
                events += 1
                if latencies is not None:
                    latencies.append(now_ns - int(frame["message"]["text"][:STAMP_DIGITS]))
            else:
                if kind == "ok" and "head" in frame:  # subscribed: live events follow on from head
                    self.last_seq = frame["head"]
                self.answer(frame)
        tally.deliveries += events
        tally.messages += 1


_EVENT_HEAD = b'{"type":"event","channel":"'  # how every event frame starts (protocol/codec.py server_to_map)
_FIRST_EVENT = b"[" + _EVENT_HEAD
_ANY_FRAME = b'"type":'
_SEQ_AFTER_CHANNEL = b'","seq":'  # the channel's closing quote, then the event's own seq


class LeanSubscriber(Subscriber):
    """A Subscriber whose CPU is spent per WebSocket message rather than per delivery: a message
    made only of event frames is checked on its bytes, without parsing it, and records no latency.

    The server batches the events waiting for a socket into one message, a JSON array of frames
    each encoded as `{"type":"event","channel":"room:2","seq":41,"kind":...,"message":{...}}`
    (`protocol/codec.py` `server_to_map`: the keys in that order, no spaces). A message is lean
    when it starts with an event and every `"type":` in it opens an event (`"type":` is the
    frames' first key, and a chat message's own fields hold none; inside a JSON string a quote is
    always escaped, so a text cannot fake a key). Then: its events are counted with
    `bytes.count`, the first event's seq and the last one's are read where they stand (after
    the channel, before `"kind"`: the `"seq"` of the `message` inside comes later), and the
    message passes when first = the previous message's last + 1 and last - first + 1 = the count.

    Anything else is handed to Subscriber's full parse, which answers requests, counts errors
    and counts every seq out of order exactly as a Subscriber would: a message holding anything
    but events (ok, error, presence...), or one whose seqs do not follow on. The check is
    complete if the seqs inside a message increase, which is how the server writes them; what
    it cannot see is a gap and a duplicate in the *same* message that cancel out (41, 43, 43:
    three events, 41 to 43). A Subscriber (the latency sample) checks every seq.
    """

    def on_message(self, payload: bytes) -> None:
        count = payload.count(_EVENT_HEAD)
        if count and payload.startswith(_FIRST_EVENT) and payload.count(_ANY_FRAME) == count:
            try:
                at = payload.index(_SEQ_AFTER_CHANNEL, len(_FIRST_EVENT)) + len(_SEQ_AFTER_CHANNEL)
                first = int(payload[at: payload.index(b",", at)])
                at = payload.index(_SEQ_AFTER_CHANNEL, payload.rindex(_EVENT_HEAD) + len(_EVENT_HEAD))
                at += len(_SEQ_AFTER_CHANNEL)
                last = int(payload[at: payload.index(b",", at)])
            except ValueError:  # not shaped as expected: let the parser say what it is
                pass
            else:
                if first == self.last_seq + 1 and last - first + 1 == count:
                    self.last_seq = last
                    tally = self.tally
                    tally.deliveries += count
                    tally.messages += 1
                    tally.lean_messages += 1
                    return
        self.tally.lean_fallbacks += 1
        super().on_message(payload)


class Publisher(Client):
    """Posts stamped messages to one channel, either keeping `window` posts in flight (a new one
    on each answer) or when told to (open-loop pacing). Counts answers; records ack latency."""

    def __init__(self, tally: Tally, channel: str, text_size: int) -> None:
        super().__init__(tally)
        self.channel = channel
        self.text_size = text_size
        self.window = 0  # > 0: closed loop, refill on each answer
        self.sent = 0
        self.acked = 0
        self.refused: Counter[str] = Counter()
        self.ack_latencies = array("q")  # ns, while tally.recording
        self._in_flight: dict[int, int] = {}  # ref -> stamp

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def post(self, stamp_ns: int | None = None) -> None:
        """Send one post stamped `stamp_ns` (default: now; open loop passes the scheduled time)."""
        stamp = time.monotonic_ns() if stamp_ns is None else stamp_ns
        ref = self.next_ref()
        self._in_flight[ref] = stamp
        self.send({"type": "post", "channel": self.channel, "text": post_text(stamp, self.text_size), "ref": ref})
        self.sent += 1

    def start_window(self, window: int) -> None:
        self.window = window
        for _ in range(window - self.in_flight):
            self.post()

    def stop(self) -> None:
        self.window = 0

    def on_frames(self, frames: list[dict[str, Any]], now_ns: int) -> None:
        for frame in frames:
            stamp = self._in_flight.pop(frame.get("ref"), None)  # type: ignore[arg-type]
            if stamp is None:
                self.answer(frame)
                continue
            if frame["type"] == "ok":
                self.acked += 1
                if self.tally.recording:
                    self.ack_latencies.append(now_ns - stamp)
            else:
                self.refused[str(frame.get("code"))] += 1
            if self.window and self.in_flight < self.window:
                self.post()


class Sender(Protocol):
    """What pace() drives: a Publisher, or the mail scenario's senders."""

    @property
    def in_flight(self) -> int: ...

    def post(self, stamp_ns: int | None = None) -> None: ...


async def pace(publisher: Sender, rate: float, until_ns: int, max_in_flight: int) -> int:
    """Open loop: post at `rate` per second until `until_ns`, each stamped with its *scheduled*
    time (so a late send counts as latency). Skips sends while `max_in_flight` posts are
    unanswered (the server is not keeping up); returns the number skipped."""
    interval = 1e9 / rate
    start = time.monotonic_ns()
    k = skipped = 0
    while (now := time.monotonic_ns()) < until_ns:
        while start + int(k * interval) <= now:
            if publisher.in_flight < max_in_flight:
                publisher.post(start + int(k * interval))
            else:
                skipped += 1
            k += 1
        # Not less than a timer tick: a shorter sleep returns at once and the loop would spin
        # (at 2,000 sends/s the interval is 0.5 ms); sends due meanwhile go together on waking,
        # stamped with their scheduled times.
        await asyncio.sleep(max(start + int(k * interval) - time.monotonic_ns(), PACE_TICK_NS) / 1e9)
    return skipped


async def connect(url: str, make: Callable[[], Client], timeout: float, *, deflate: bool = False) -> Client:
    """Open one WebSocket with the JSON subprotocol (and, with `deflate`, an offer of
    permessage-deflate); the handshake must finish within `timeout`."""
    headers = {"Sec-WebSocket-Protocol": SUBPROTOCOL}
    if deflate:
        headers["Sec-WebSocket-Extensions"] = DEFLATE_OFFER
    _, client = await asyncio.wait_for(
        ws_connect(
            make, url, extra_headers=headers,
            websocket_handshake_timeout=timeout, max_frame_size=MAX_MESSAGE_BYTES,
        ),
        timeout,
    )
    return client  # type: ignore[return-value]


async def join(client: Client, token: str, channel: str | None, timeout: float) -> None:
    """hello with `token` (expects welcome), then subscribe to `channel` (expects ok)."""
    await client.expect({"type": "hello", "token": token}, "welcome", timeout)
    if channel is not None:
        await client.expect({"type": "subscribe", "channel": channel}, "ok", timeout)


C = TypeVar("C", bound=Client)


async def open_clients(
    url: str,
    logins: Iterable[tuple[str, str]],
    make: Callable[[], C],
    setup: Callable[[C, str, str], Awaitable[None]],
    *,
    concurrency: int,
    timeout: float,
    deflate: bool = False,
    on_joined: Callable[[int], None] | None = None,
) -> list[C]:
    """Connect one client `make()` per (token, channel), `concurrency` handshakes at a time, and
    run `setup(client, token, channel)` on each (hello, subscribe...). Raises if any of them
    fails (after closing those that opened)."""
    gate = asyncio.Semaphore(concurrency)
    opened: list[C] = []

    async def one(token: str, channel: str) -> None:
        async with gate:
            client: C = await connect(url, make, timeout, deflate=deflate)  # type: ignore[assignment]
            opened.append(client)
            await setup(client, token, channel)
            joined[0] += 1
        if on_joined is not None:
            on_joined(joined[0])

    joined = [0]
    try:
        async with asyncio.TaskGroup() as group:
            for token, channel in logins:
                group.create_task(one(token, channel))
    except BaseExceptionGroup as failed:
        await close_all(opened, timeout)
        first = failed.exceptions[0]
        raise RuntimeError(
            f"{len(failed.exceptions)} connection(s) failed after {joined[0]} joined; first: {first!r}"
        ) from first
    return opened


async def open_subscribers(
    url: str,
    tally: Tally,
    logins: Iterable[tuple[str, str]],
    *,
    concurrency: int,
    timeout: float,
    deflate: bool = False,
    on_joined: Callable[[int], None] | None = None,
) -> list[Subscriber]:
    """Connect one Subscriber per (token, channel), `concurrency` handshakes at a time; each
    says hello and subscribes. Raises if any of them fails (after closing those that opened)."""

    async def setup(client: Subscriber, token: str, channel: str) -> None:
        await join(client, token, channel, timeout)

    return await open_clients(
        url, logins, lambda: Subscriber(tally), setup, concurrency=concurrency, timeout=timeout, deflate=deflate,
        on_joined=on_joined,
    )


async def close_all(clients: Iterable[Client], timeout: float) -> None:
    """Close every client; one that does not close within `timeout` is left to the OS."""
    await asyncio.gather(*(c.close(timeout) for c in clients), return_exceptions=True)


async def drain(load: Any, seconds: float) -> None:
    """Wait until every request of `load` was answered (load.in_flight == 0) and its deliveries
    (load.tally.deliveries) stopped coming, at most `seconds`."""
    end = time.monotonic() + seconds
    seen = -1
    while time.monotonic() < end and (load.in_flight or load.tally.deliveries != seen):
        seen = load.tally.deliveries
        await asyncio.sleep(0.25)
