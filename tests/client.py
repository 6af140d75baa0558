"""A small test client over the `websockets` library, speaking the protocol through `protocol/`."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import websockets

from protocol import (
    ClientFrame,
    Encoding,
    Error,
    Event,
    Hello,
    Ok,
    ServerFrame,
    Welcome,
    decode_server,
    encode_client,
)

TIMEOUT = 5.0


class Client:
    def __init__(self, ws: websockets.ClientConnection, encoding: Encoding) -> None:
        self.ws = ws
        self.encoding = encoding
        self.frames: asyncio.Queue[ServerFrame] = asyncio.Queue()
        self.replies: dict[Any, asyncio.Future[ServerFrame]] = {}
        self.events: dict[str, list[Event]] = {}
        self.unsolicited: list[ServerFrame] = []
        self.welcome: Welcome | None = None
        self.messages = 0
        self.event_batches: list[int] = []  # events per message, for the messages that held any
        self._refs = itertools.count(1)
        self._reader = asyncio.create_task(self._read())
        self._event_waiters: list[tuple[str, int, asyncio.Future[None]]] = []

    @classmethod
    async def connect(cls, url: str, token: str | None, encoding: Encoding = Encoding.JSON, **kw: Any) -> Client:
        ws = await websockets.connect(url, subprotocols=[encoding.value], max_size=2**22, **kw)
        client = cls(ws, encoding)
        if token is not None:
            reply = await client.request(Hello(token=token))
            assert isinstance(reply, Welcome), reply
            client.welcome = reply
        return client

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for data in self.ws:
                self.messages += 1
                frames = decode_server(data, self.encoding)
                events = sum(isinstance(f, Event) for f in frames)
                if events:
                    self.event_batches.append(events)
                for frame in frames:
                    ref = getattr(frame, "ref", None)
                    if ref is not None and ref in self.replies:
                        self.replies.pop(ref).set_result(frame)
                        continue
                    if isinstance(frame, Event):
                        self.events.setdefault(frame.channel, []).append(frame)
                        self._wake_event_waiters()
                    else:
                        self.unsolicited.append(frame)
                    self.frames.put_nowait(frame)

    def _wake_event_waiters(self) -> None:
        for channel, count, fut in list(self._event_waiters):
            if len(self.events.get(channel, [])) >= count and not fut.done():
                fut.set_result(None)

    def send(self, frame: ClientFrame) -> asyncio.Future[ServerFrame] | None:
        """Send without waiting; returns the future reply when the frame has a ref."""
        fut = None
        if frame.ref is not None:
            fut = asyncio.get_running_loop().create_future()
            self.replies[frame.ref] = fut
        asyncio.get_running_loop().create_task(self.ws.send(encode_client(frame, self.encoding)))
        return fut

    async def request(self, frame: ClientFrame, timeout: float = TIMEOUT) -> ServerFrame:
        """Send `frame` with a fresh ref and wait for the ok/error/welcome that answers it."""
        frame = type(frame)(**{**{f: getattr(frame, f) for f in frame.__dataclass_fields__}, "ref": next(self._refs)})
        fut = asyncio.get_running_loop().create_future()
        self.replies[frame.ref] = fut
        await self.ws.send(encode_client(frame, self.encoding))
        return await asyncio.wait_for(fut, timeout)

    async def ok(self, frame: ClientFrame, timeout: float = TIMEOUT) -> Ok:
        reply = await self.request(frame, timeout)
        assert isinstance(reply, Ok), reply
        return reply

    async def error(self, frame: ClientFrame, timeout: float = TIMEOUT) -> Error:
        reply = await self.request(frame, timeout)
        assert isinstance(reply, Error), reply
        return reply

    async def send_raw(self, data: bytes | str) -> None:
        await self.ws.send(data)

    async def wait_events(self, channel: str, count: int, timeout: float = TIMEOUT) -> list[Event]:
        """Wait until at least `count` events of `channel` arrived; return them all."""
        if len(self.events.get(channel, [])) < count:
            fut = asyncio.get_running_loop().create_future()
            entry = (channel, count, fut)
            self._event_waiters.append(entry)
            try:
                await asyncio.wait_for(fut, timeout)
            finally:
                self._event_waiters.remove(entry)
        return self.events[channel]

    async def next_frame(self, kind: type, timeout: float = TIMEOUT) -> Any:
        """The next frame of type `kind` not yet taken (other frames are skipped)."""
        async def find() -> Any:
            while True:
                frame = await self.frames.get()
                if isinstance(frame, kind):
                    return frame

        return await asyncio.wait_for(find(), timeout)

    async def closed(self, timeout: float = TIMEOUT) -> int | None:
        """Wait for the server to close the connection; return the close code."""
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader
