"""A listener on the Redis bus of a scale-out step: when each event reaches Redis.

    TWINHUB_REDIS_URL=redis://… python -m loadtests.redis_spy PREFIX

The URL comes in the environment, as the servers' does: it holds the Redis password, and a
command line is shown to every user of the machine.

Subscribes (by pattern) to the bus's event channels, `<PREFIX>:ev:*` (realtime/fanout/redis_bus.py),
decodes each message (its signature, then msgpack: origin, 3, a list of [channel, seq, kind, data];
the signature is not checked here) and keeps, for each event while recording,
its arrival time minus the send time that the load generator wrote at the start of the post's
text (time.monotonic_ns(): one clock for every process of the machine). Together with the
latencies of the subscribers of the publishing process and of the others, this tells where an
event waits on its way to another process: before Redis (the publishing process's commit and
bus writer) or after it (the other process's reader, hub and socket writes).

Runs in its own process so that a busy load generator does not delay it. Driven on stdin:
prints "ready" once subscribed; "start" begins recording, "stop" ends it, prints one JSON line
(report.percentiles() of the delays, plus the counts) and exits. EOF also ends it. Its own
delay (a busy machine may keep it waiting for a CPU) is included: an upper bound.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from array import array

import msgpack
import redis

from realtime.fanout.redis_bus import SIGNATURE

from .clients import STAMP_DIGITS
from .report import percentiles


def main() -> int:
    url, prefix = os.environ["TWINHUB_REDIS_URL"], sys.argv[1]
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.psubscribe(f"{prefix}:ev:*")
    delays = array("q")
    state = {"recording": False, "stop": False, "seen": 0, "other": 0}

    def control() -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "start":
                state["recording"] = True
            elif word == "stop":
                break
        state["stop"] = True

    # the subscription is made once a first read goes through
    pubsub.get_message(timeout=0.1)
    print("ready", flush=True)
    threading.Thread(target=control, daemon=True).start()
    while not state["stop"]:
        message = pubsub.get_message(timeout=0.2)
        if message is None or message.get("type") != "pmessage":
            continue
        now = time.monotonic_ns()
        state["seen"] += 1
        if not state["recording"]:
            continue
        try:
            events = msgpack.unpackb(message["data"][SIGNATURE:])[2]  # a shard's events of one turn
        except (ValueError, IndexError, TypeError):
            continue
        for _, _, _, data in events:
            try:  # a chat message's text starts with the stamp
                delays.append(now - int(data["message"]["text"][:STAMP_DIGITS]))
            except (ValueError, KeyError, IndexError, TypeError):
                state["other"] += 1  # not a chat message (e.g. a feed record): no stamp
    pubsub.close()
    client.close()
    print(json.dumps({"to_redis": percentiles(delays), "messages_seen": state["seen"],
                      "without_stamp": state["other"]}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
