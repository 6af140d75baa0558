"""Connections per address and per process, and the time and bytes a client has to send a request's head.

Three attacks that cost an attacker one cheap socket each, before any request reaches the app:

- **Too many sockets from one address.** Each open socket holds a file descriptor and some memory
  (docs/deployment.md: ~16 KB for an authenticated WebSocket). One address may hold at most
  `max_connections_per_address` TCP connections at once — HTTP keep-alive connections, WebSockets
  and half-sent handshakes alike; the next one is answered `503 Service Unavailable` (with
  `Retry-After`) and closed. The default, 500, is generous on purpose: a whole school reaches us
  from one NAT address, every pupil's browser holds a WebSocket and a keep-alive connection or
  two, and a school of 300 pupils online at once must not be refused. What the cap stops is one
  machine opening tens of thousands of sockets. Reverse proxies and load balancers
  (`trusted_proxies`) carry many clients on their connections: they are not counted here (cap at
  the proxy), and only their `X-Forwarded-For` is believed (uvicorn's `forwarded_allow_ips`).
- **Slowloris.** uvicorn starts its keep-alive timer only once a response is complete: a client
  that opens a connection and sends its request head a byte at a time — or nothing at all — holds
  the socket for ever. Here a request's head (the WebSocket handshake included) must be complete
  within `handshake_timeout` seconds of the connection opening, or of the previous response on a
  keep-alive connection; otherwise the answer is `408 Request Timeout` and the connection closes.
  Known limit: a request *body* sent slowly is not timed (bodies are at most 64 KiB, read only by
  the routes that take one; the per-address cap bounds how many one address can hold).
- **A huge request head.** A head (request line and headers, a WebSocket handshake's included)
  may be at most MAX_HEAD_BYTES (16 KiB), however it arrives; the next byte is answered
  `431 Request Header Fields Too Large` and the connection closes. h11's own bound
  (`h11_max_incomplete_event_size`, 16 KiB) holds only for a head still incomplete: one that
  arrived whole in one read, of any size the socket delivers at once, was parsed, and httptools,
  which uvicorn takes when it is installed, has no bound at all. Counting here holds for both
  (under httptools, a body a route answered without reading is counted as the next head until
  the answer is complete: h11 alone tells where a request ends). Known limit: a head that arrives
  in the same read as the end of such a body is parsed by h11 before it can be counted (at most
  one read, which the connection holds anyway).

And one limit that is not about attackers: a process holds at most `max_connections` sockets
(all addresses together, proxies included). Past the open-files limit `accept()` itself fails
(EMFILE): the event loop stops accepting for a while and logs errors, and the clients see their
connection hang or reset. Below it, the next connection is answered `503` with `Retry-After`, as
above, and a client tries again (another process, behind a load balancer): the sockets already
open are not disturbed. Only `GET /metrics` is still served, so that monitoring sees a full
process as full rather than as down. By default the cap is the open-files limit less a reserve for the
database pools, Redis, logs and the embedded PostgreSQL's pipes (realtime/run/server.py).

All of them are HTTP-level (the protocol uvicorn would choose, `AutoHTTPProtocol`, with a mixin), so that
an upgraded WebSocket hands its place in the count to the WebSocket protocol, which gives it back
when the socket closes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from typing import Any

import h11
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from ..ratelimit import address_key
from ..web.headers import SECURITY_HEADERS
from ..ws.server_protocol import LeanWebSocketProtocol


class AddressGuard:
    """Open connections per client address, at most `limit` each (0: no limit); addresses in
    `trusted` (IPs or networks: proxies) are not counted."""

    def __init__(
        self, limit: int, trusted: tuple[str, ...] = (), handshake_timeout: float = 10.0, max_total: int = 0,
    ) -> None:
        self.limit = limit
        self.handshake_timeout = handshake_timeout
        self.max_total = max_total  # connections in all (0: no cap)
        self.total = 0
        self.refused_full = 0
        self._trusted = [ipaddress.ip_network(t, strict=False) for t in trusted if t != "*"]
        self._trust_all = "*" in trusted
        self.open: dict[str, int] = {}
        self.refused = 0

    def counts(self, address: str | None) -> bool:
        if self.limit <= 0 or address is None or self._trust_all:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # not an IP (a Unix socket): nothing to count by
            return False
        return not any(ip in net for net in self._trusted)

    def enter(self, address: str) -> bool:
        """Count one more connection from `address` (an IPv6 address: its /64); False (nothing
        counted) when it is at the limit."""
        address = address_key(address)
        n = self.open.get(address, 0)
        if n >= self.limit:
            self.refused += 1
            return False
        self.open[address] = n + 1
        return True

    def enter_total(self) -> bool:
        """Count one more connection in all; False (nothing counted) when the process is full."""
        if self.max_total > 0 and self.total >= self.max_total:
            self.refused_full += 1
            return False
        self.total += 1
        return True

    def leave_total(self) -> None:
        self.total -= 1

    def give_back(self, address: str | None, in_total: bool) -> None:
        """A connection closed: give back the places it held (its address's, the total's)."""
        if address is not None:
            self.leave(address)
        if in_total:
            self.leave_total()

    def leave(self, address: str) -> None:
        address = address_key(address)
        n = self.open.get(address, 0) - 1
        if n > 0:
            self.open[address] = n
        else:
            self.open.pop(address, None)


def plain_response(status: int, reason: str, text: str, *extra: tuple[bytes, bytes]) -> bytes:
    """A whole `Connection: close` text answer, written before (or instead of) the app."""
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), *extra, *SECURITY_HEADERS,
    ]
    head = f"HTTP/1.1 {status} {reason}\r\n".encode() + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
    return head + b"\r\n" + body


MAX_HEAD_BYTES = 16 * 1024  # a request's line and headers, together (docs/security.md)
_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line that ends a head (h11 takes a bare LF too)
_HEAD_TOO_LARGE = plain_response(
    431, "Request Header Fields Too Large", f"a request's head is at most {MAX_HEAD_BYTES} bytes\n",
)
_TOO_MANY = plain_response(
    503, "Service Unavailable", "too many connections from your address\n", (b"retry-after", b"10"),
)
_MONITORING = (b"GET /metrics ", b"GET /metrics?")
_FULL = plain_response(
    503, "Service Unavailable", "this server holds all the connections it can; try again\n", (b"retry-after", b"5"),
)


class _GuardedHTTP:
    """Mixed in before uvicorn's HTTP protocol (h11 or httptools: both keep `transport`,
    `client`, `cycle` and call `on_response_complete`)."""

    guard: AddressGuard
    transport: asyncio.Transport
    client: tuple[str, int] | None
    cycle: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._counted: str | None = None
        self._in_total = False
        self._refused: bytes | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_after: Any = None
        self._head: int | None = 0  # bytes of the head arriving; None once it ended (a body may follow)
        self._head_began = False  # past the blank lines a client may send before a request (RFC 9112 §2.2)
        self._head_tail = b""  # its last bytes, to find its end across reads
        address = self.client[0] if self.client else None
        if not self.guard.enter_total():
            self._refuse(_FULL)
            return
        self._in_total = True
        if self.guard.counts(address):
            assert address is not None
            if not self.guard.enter(address):
                self._refuse(_TOO_MANY)
                return
            self._counted = address
        self._arm()

    def _refuse(self, answer: bytes) -> None:
        # Answer once the request has arrived (an answer before it, then a close, can be lost to
        # a TCP reset); a client that sends nothing is dropped after a second.
        self._refused = answer
        self._deadline = asyncio.get_running_loop().call_later(1.0, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._refused is not None:
            if not (self._refused is _FULL and data.startswith(_MONITORING) and self._admit_over_the_cap()):
                if not self.transport.is_closing():
                    self.transport.write(self._refused)
                    self.transport.close()
                return
        if self._head is None and self._between_requests():
            self._start_head()
        if self._head is not None and not self._head_fits(data):
            self._refuse_head()
            return
        super().data_received(data)  # type: ignore[misc]
        if self._head is None and self._between_requests() and self.transport.get_protocol() is self:
            # Requests sent behind the one this read ended (pipelined): h11 keeps their bytes,
            # unparsed, until that one is answered. Counted now, since no read brings them again.
            self._start_head()
            if not self._head_fits(self._unparsed()):
                self._refuse_head()

    def _between_requests(self) -> bool:
        """Whether the client has sent the whole of its last request, so that what it sends next
        is a new head (not the rest of a body a route answered without reading). h11 says so;
        under another parser, once the last answer is complete."""
        conn = getattr(self, "conn", None)
        if isinstance(conn, h11.Connection):
            return conn.their_state in (h11.IDLE, h11.DONE)
        return self.cycle is None or self.cycle.response_complete

    def _unparsed(self) -> bytes:
        conn = getattr(self, "conn", None)
        return conn.trailing_data[0] if isinstance(conn, h11.Connection) else b""

    def _start_head(self) -> None:
        self._head, self._head_began, self._head_tail = 0, False, b""

    def _refuse_head(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def _head_fits(self, data: bytes) -> bool:
        """Count `data` into the head arriving; False once the head is over MAX_HEAD_BYTES.
        Counting stops at the blank line that ends it, until the client has sent the whole
        request (`_between_requests`); blank lines before the request line end nothing (else they
        would stop the count)."""
        assert self._head is not None
        if not self._head_began:
            blank = len(data) - len(data.lstrip(b"\r\n"))
            self._head += blank
            data = data[blank:]
            if not data:
                return self._head <= MAX_HEAD_BYTES
            self._head_began = True
        seen = self._head_tail + data
        end = _HEAD_END.search(seen)
        if end is None:
            self._head += len(data)
            self._head_tail = seen[-3:]
            return self._head <= MAX_HEAD_BYTES
        size = self._head + end.end() - len(self._head_tail)
        self._head, self._head_tail = None, b""
        return size <= MAX_HEAD_BYTES

    def _admit_over_the_cap(self) -> bool:
        """A full process still answers its monitoring (GET /metrics): a place over the cap, so
        that the moment it is fullest is not the moment it looks dead. The per-address cap holds."""
        address = self.client[0] if self.client else None
        if self.guard.counts(address):
            assert address is not None
            if not self.guard.enter(address):
                self._refused = _TOO_MANY
                return False
            self._counted = address
        self._disarm()
        self._refused = None
        self.guard.total += 1
        self._in_total = True
        self._arm()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.guard.give_back(self._counted, self._in_total)
        self._counted, self._in_total = None, False
        super().connection_lost(exc)  # type: ignore[misc]

    def handle_websocket_upgrade(self, *args: Any) -> None:
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]
        self._disarm()
        ws = self.transport.get_protocol()
        if ws is not self:  # the WebSocket protocol now owns the socket and its places in the counts
            ws.guard_address = self._counted  # type: ignore[attr-defined]
            ws.guard_total = self._in_total  # type: ignore[attr-defined]
            self._counted = None
            self._in_total = False

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm()

    def send_400_response(self, msg: str) -> None:  # uvicorn's, with our headers
        self.transport.write(plain_response(400, "Bad Request", msg))
        self.transport.close()

    def _arm(self) -> None:
        """From now, the next request's head has `handshake_timeout` seconds to arrive."""
        self._disarm()
        if self.guard.handshake_timeout > 0 and not self.transport.is_closing():
            self._waiting_after = self.cycle
            self._deadline = asyncio.get_running_loop().call_later(self.guard.handshake_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return
        cycle = self.cycle
        if cycle is not self._waiting_after or (cycle is not None and not cycle.response_complete):
            return  # a request arrived since (it is being answered, or was)
        self.transport.write(plain_response(408, "Request Timeout", "the request took too long to arrive\n"))
        self.transport.close()


class _GuardedWebSocket(LeanWebSocketProtocol):
    guard: AddressGuard
    guard_address: str | None = None
    guard_total = False
    answer_headers = tuple(SECURITY_HEADERS)  # the handshake's 101 and its refusals (403, 400, 431, …)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.guard.give_back(self.guard_address, self.guard_total)
        self.guard_address, self.guard_total = None, False


def guarded_protocols(guard: AddressGuard) -> tuple[type[asyncio.Protocol], type[asyncio.Protocol]]:
    """uvicorn's (http, ws) protocol classes, counting and timing connections with `guard`."""
    http = type("GuardedHTTPProtocol", (_GuardedHTTP, AutoHTTPProtocol), {"guard": guard})
    ws = type("GuardedWebSocketProtocol", (_GuardedWebSocket,), {"guard": guard})
    return http, ws
