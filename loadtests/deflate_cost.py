"""What permessage-deflate would cost TwinHub's fan-out.

    python -m loadtests.deflate_cost [--recipients 1000] [--rounds 20]

The extension keeps one compression context per socket, so a fan-out compresses the same
message once *per recipient*. This measures exactly that with the `websockets` library's own
PerMessageDeflate (the code uvicorn would run): the CPU time per recipient to compress a
typical message (one chat event; a batch of 20), and the bytes it saves. No sockets: it isolates
the cost the extension would add to each delivery. docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import random
import time

from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode

from protocol import Encoding, Event, encode_server_item, join_batch

WORDS = ("eau rivière Saône Wisła pluie température mesure école classe projet bonjour dzień dobry "
         "filtre robinet station nuage goutte cycle expérience résultat tableau photo carte").split()


def event(seq: int, rng: random.Random) -> bytes:
    """A typical chat event; each one different, as a real stream's are."""
    message = {
        "id": 1000 + seq, "seq": seq, "author": {"id": rng.randint(1, 60), "name": "Ana L.", "school": "École Jean Moulin, Lyon"},
        "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 25))),
        "state": "visible", "created_at": "2026-11-22T09:14:03.512Z", "edited_at": None, "client_id": "c-8f14e45f",
    }
    return encode_server_item(Event("room:5", seq, "message.posted", {"message": message}), Encoding.JSON)


def measure(payloads: list[bytes], recipients: int) -> tuple[float, float]:
    """(µs of CPU per recipient per message, mean compressed size) over a stream of messages,
    each compressed in every recipient's own context (with context takeover, as negotiated by
    default)."""
    contexts = [PerMessageDeflate(False, False, 15, 15) for _ in range(recipients)]
    total = 0
    start = time.process_time()
    for payload in payloads:
        for ctx in contexts:
            total += len(ctx.encode(Frame(Opcode.TEXT, payload)).data)
    elapsed = time.process_time() - start
    n = len(payloads) * recipients
    return elapsed / n * 1e6, total / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipients", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    rng = random.Random(7)
    singles = [join_batch([event(r, rng)], Encoding.JSON) for r in range(args.rounds)]
    batches = [
        join_batch([event(r * 20 + i, rng) for i in range(20)], Encoding.JSON)
        for r in range(args.rounds)
    ]
    print(f"recipients: {args.recipients}, messages: {args.rounds} of each kind, all different")
    print(f"{'message':<20} {'bytes':>7} {'deflated':>9} {'µs CPU per recipient':>21} {'ms CPU per fan-out':>19}")
    for name, payloads in (("1 event", singles), ("batch of 20 events", batches)):
        us, size = measure(payloads, args.recipients)
        raw = sum(map(len, payloads)) / len(payloads)
        print(f"{name:<20} {raw:>7.0f} {size:>9.0f} {us:>21.1f} {us * args.recipients / 1000:>19.1f}")


if __name__ == "__main__":
    main()
