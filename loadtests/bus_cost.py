"""What the Redis bus costs per event, without sockets: `python -m loadtests.bus_cost [-n 20000]`.

Two processes, each with a realtime.fanout.redis_bus.RedisBus on a throwaway Redis-compatible server
(realtime.run.embedded_redis): this one publishes N chat events (a message of 100 characters, as the
load tests post) in bursts of 50, the other only receives them and hands them to a sink that counts.
Printed: CPU per event of the receiving process (from its first event to its last: redis-py's
pub/sub read and parse, the signature checked, msgpack, the Event), and of the publishing process
(pack, sign, pipelined PUBLISH, and reading back its own events, which Redis sends it too and the
bus skips), and which RESP parser redis-py used (hiredis, in C, if installed; else its pure-Python
one). The receiver gets the Redis URL (with its password) and the bus secret in its environment.
Both processes run on uvloop, as the server does. Every process started is stopped by PID.

`python -m loadtests.bus_cost --signing`: what the signature alone costs (realtime/fanout/redis_bus.py:
HMAC-SHA256 over the channel and body), in this process, without Redis: signing one message and
checking it, for a lone event and for a turn's batch of 50, against reading the message whole.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable

from protocol import Event
from realtime.fanout.redis_bus import RedisBus

PREFIX = "buscost"
SECRET = "TWINHUB_BUS_SECRET"
DATA = {
    "message": {"id": 1, "text": "x" * 100, "author": {"id": 7, "name": "Pupil 00001", "school": "Bench"},
                "at": "2026-11-22T07:00:00Z"},
}


def _parser() -> str:
    try:
        import hiredis  # noqa: F401

        return "hiredis (C)"
    except ImportError:
        return "redis-py's pure-Python RESP parser (hiredis not installed)"


async def _receive(url: str, secret: str, n: int) -> None:
    bus = RedisBus(url, secret=secret, prefix=PREFIX)
    seen = [0, 0.0]
    done = asyncio.Event()

    def sink(event: Event) -> None:
        if seen[0] == 0:
            seen[1] = time.process_time()
        seen[0] += 1
        if seen[0] == n:
            done.set()

    bus.attach(sink, lambda message: None)
    await bus.start()
    print("ready", flush=True)
    try:
        await asyncio.wait_for(done.wait(), 120)
    finally:
        cpu = time.process_time() - seen[1]
        print(f"{seen[0]} {cpu:.6f}", flush=True)
        await bus.close()


async def _publish(url: str, secret: str, n: int) -> float:
    bus = RedisBus(url, secret=secret, prefix=PREFIX)
    bus.attach(lambda event: None, lambda message: None)
    await bus.start()
    start = time.process_time()
    for i in range(n):
        await bus.publish(Event("room:1", i + 1, "message", DATA))
        if i % 50 == 49:
            await asyncio.sleep(0.001)  # bursts, as a group commit publishes
    await asyncio.sleep(1.0)  # its own events come back: read them too
    cpu = time.process_time() - start
    await bus.close()
    return cpu


def _signing() -> None:
    import timeit

    import msgpack

    bus = RedisBus("redis://unused", secret=secrets.token_urlsafe(32), prefix=PREFIX)
    bus.attach(lambda event: None, lambda message: None)
    channel = f"{PREFIX}:ev:{{3}}"
    for size in (1, 50):
        body = msgpack.packb([bus.origin[::-1], 3, [["room:1", i + 1, "message", DATA] for i in range(size)]])
        signed = bus._sign(channel, body)
        number = 20000 // size

        def best(work: Callable[[], object], number: int = number) -> float:  # the least disturbed of 7 runs, in µs
            return 1e6 * min(timeit.repeat(work, number=number, repeat=7)) / number

        sign = best(lambda body=body: bus._sign(channel, body))
        check = best(lambda signed=signed: bus._verified(channel.encode(), signed))
        read = best(lambda signed=signed: bus._receive(channel.encode(), signed))
        print(f"{size} event(s) a message ({len(body):,} bytes): sign {sign:.2f} us, check {check:.2f} us, "
              f"read whole (check, unpack, Events) {read:.2f} us: the signature is {check / read:.0%} of reading, "
              f"{(sign + check) / size:.2f} us per event to sign and check")
    assert bus.rejected == 0


def main() -> int:
    import uvloop

    from realtime.run.embedded_redis import EmbeddedRedis

    if len(sys.argv) == 3 and sys.argv[1] == "--receiver":
        uvloop.run(_receive(os.environ["TWINHUB_REDIS_URL"], os.environ[SECRET], int(sys.argv[2])))
        return 0
    ap = argparse.ArgumentParser(prog="python -m loadtests.bus_cost", description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--events", type=int, default=20000, help="events to publish (default 20000)")
    ap.add_argument("--signing", action="store_true", help="only what signing and checking a message costs")
    args = ap.parse_args()
    if args.signing:
        _signing()
        return 0
    redis = EmbeddedRedis()
    url = redis.start()
    secret = secrets.token_urlsafe(32)
    receiver = None
    try:
        receiver = subprocess.Popen(  # noqa: S603 — our own interpreter and module
            [sys.executable, "-m", "loadtests.bus_cost", "--receiver", str(args.events)],
            env={**os.environ, "TWINHUB_REDIS_URL": url, SECRET: secret}, stdout=subprocess.PIPE, text=True,
        )
        assert receiver.stdout is not None
        if receiver.stdout.readline().strip() != "ready":
            raise RuntimeError("the receiving process did not start")
        sent_cpu = uvloop.run(_publish(url, secret, args.events))
        got, cpu = receiver.stdout.readline().split()
        receiver.wait(30)
    finally:
        if receiver is not None and receiver.poll() is None:
            receiver.kill()
            receiver.wait(5)
        redis.stop()
    print(f"RESP parser: {_parser()}")
    print(f"receiving process: {int(got):,} events, {1e6 * float(cpu) / max(int(got) - 1, 1):.1f} us of CPU per event")
    print(f"publishing process: {args.events:,} events, {1e6 * sent_cpu / args.events:.1f} us of CPU per event "
          "(its own events read back included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
