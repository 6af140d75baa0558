"""Coverage-guided fuzzing of the protocol decoder with atheris (libFuzzer for Python), both
encodings. The properties, checked on every input:

1. `decode_client` raises ProtocolError and nothing else (any other exception is a crash that
   libFuzzer reports, with the input saved as crash-<sha1>);
2. a frame it accepts survives the way back: decode(encode(frame)) == frame;
3. no input takes longer than -timeout seconds or more than -rss_limit_mb (libFuzzer's own
   watchdogs; the CI run sets them).

    .venv/bin/python tests/fuzz/fuzz_decoder.py -max_total_time=600 -timeout=2 -rss_limit_mb=1024 CORPUS_DIR
    .venv/bin/python tests/fuzz/fuzz_decoder.py -atheris_runs=2000000 CORPUS_DIR

The first byte of an input picks the encoding (odd: JSON, even: MessagePack); for JSON the rest
is tried both as bytes and, when it is valid UTF-8, as text (a WebSocket text frame). With
--seed DIR, the script writes a seed corpus (one valid frame of every type, in both encodings)
to DIR and exits. tests/fuzz/test_fuzz_decoder.py runs a short session in CI;
docs/reliability.md records the longer runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import atheris
import msgpack

with atheris.instrument_imports(include=["protocol"]):
    from protocol import Encoding, ProtocolError, decode_client, encode_client

SEEDS = [
    {"type": "hello", "token": "abc-123", "ref": 1},
    {"type": "ping", "ref": "p"},
    {"type": "subscribe", "channel": "room:12", "since": 41},
    {"type": "unsubscribe", "channel": "feed:3"},
    {"type": "post", "channel": "room:12", "text": "Bonjour à tous 👋", "client_id": "c-1", "ref": 7},
    {"type": "post", "channel": "journal:3", "text": "Day 3", "title": "Our visit", "parent": 9,
     "links": [{"url": "https://example.org", "title": "x"}]},
    {"type": "edit", "channel": "room:12", "id": 5, "text": "fixed"},
    {"type": "delete", "channel": "room:12", "id": 5, "reason": "spam"},
    {"type": "hide", "channel": "room:12", "id": 5, "reason": "rude"},
    {"type": "unhide", "channel": "room:12", "id": 5, "reason": "ok"},
    {"type": "typing", "channel": "room:12"},
    {"type": "send_mail", "space": 3, "to": [4, 5], "subject": "Hi", "text": "Hello", "reply_to": 2, "client_id": "m1"},
    {"type": "mark_mail", "id": 3, "read": True},
    {"type": "move_mail", "id": 3, "folder": "archive"},
    {"type": "delete_mail", "id": 3},
    {"type": "report_mail", "id": 3, "note": "this scared me"},
    {"type": "get_mail", "id": 3},
    {"type": "mail_threads", "space": 3, "folder": "inbox", "before": 10, "limit": 20},
    {"type": "mail_thread", "id": 3},
    {"type": "mail_recipients", "space": 3},
    {"type": "mail_reports", "space": 3, "limit": 5},
    {"type": "report", "channel": "room:12", "id": 5, "note": "bullying"},
    {"type": "resolve_report", "id": 8, "outcome": "resolved", "note": "talked to them"},
    {"type": "reports", "space": 3, "limit": 10},
    {"type": "mute", "space": 3, "user": 7, "area": "chat", "minutes": 60, "reason": "flood"},
    {"type": "unmute", "space": 3, "user": 7, "area": "chat"},
    {"type": "set_role", "space": 3, "user": 7, "role": "pupil_admin"},
    {"type": "remove_member", "space": 3, "user": 7},
]


def check(data: bytes | str, encoding: Encoding) -> None:
    try:
        frame = decode_client(data, encoding)
    except ProtocolError:
        return
    again = decode_client(encode_client(frame, encoding), encoding)
    if again != frame:
        raise AssertionError(f"round trip changed the frame: {frame!r} -> {again!r}")


def test_one_input(data: bytes) -> None:
    if not data:
        return
    payload = data[1:]
    if data[0] & 1:
        check(payload, Encoding.JSON)
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return
        check(text, Encoding.JSON)
    else:
        check(payload, Encoding.MSGPACK)


def write_seeds(folder: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS):
        (folder / f"json-{i:02d}").write_bytes(b"\x01" + json.dumps(seed, ensure_ascii=False).encode())
        (folder / f"msgpack-{i:02d}").write_bytes(b"\x00" + msgpack.packb(seed))
    return 2 * len(SEEDS)


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--seed":
        print(f"wrote {write_seeds(Path(argv[2]))} seeds to {argv[2]}")
        return
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
