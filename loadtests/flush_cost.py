"""What realtime/ws/connection.py's _Flush costs a post by itself, without a socket.

    python -m loadtests.flush_cost [--recipients 1000,5000] [--posts 50] [--repeats 9]

Each round pushes every one of --recipients stand-in connections (whose `_flush` does nothing)
as a fan-out does, then lets the loop turn until the flush is done; the time spent inside
`_Flush._run` is summed over its chunks. Run it from two snapshots (`git archive`) to compare two
versions of the flush side by side. docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from realtime.ws.connection import _Flush


class Outlet:
    """What _Flush needs of a Connection: its `_flush`, and the flag it clears."""

    __slots__ = ("_flush_armed",)

    def __init__(self) -> None:
        self._flush_armed = True

    def _flush(self) -> None:
        self._flush_armed = False


class TimedFlush(_Flush):
    __slots__ = ("spent",)

    def __init__(self) -> None:
        super().__init__()
        self.spent = 0.0

    def _run(self) -> None:
        started = time.perf_counter()
        super()._run()
        self.spent += time.perf_counter() - started


async def per_post_us(recipients: int, posts: int) -> float:
    outlets = [Outlet() for _ in range(recipients)]
    flush = TimedFlush()
    for _ in range(posts):
        for outlet in outlets:
            flush.add(outlet)
        for _ in range(recipients):  # bounded: a flush takes one turn per chunk
            if flush._armed_on is None:
                break
            await asyncio.sleep(0)
    return flush.spent / posts * 1e6


async def main(args: argparse.Namespace) -> None:
    for recipients in (int(n) for n in args.recipients.split(",")):
        runs = sorted([await per_post_us(recipients, args.posts) for _ in range(args.repeats)])
        print(f"{recipients:>6} recipients: _Flush._run {runs[0]:.0f} us per post at best, "
              f"median {runs[len(runs) // 2]:.0f} ({args.repeats} runs of {args.posts} posts)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m loadtests.flush_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", default="1000,5000")
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=9)
    import uvloop

    uvloop.run(main(parser.parse_args()))
