#!/usr/bin/env python3
"""A small TwinHub chat client: log in, follow a room, print what arrives, post what you type.

    .venv/bin/python examples/chat_client.py --user ana.l --password demo1234 --room chat

It resumes where it left off: the last seq it saw is kept in a file, and on reconnect (after a
network drop or a server restart, with back-off and jitter) it subscribes with `since`, so it
gets exactly what it missed — nothing lost, nothing twice. Every post carries a client_id, so a
post retried after a drop is stored once. A post the server refuses (too long, muted, …) is
reported and dropped, never resent; one too long to send at all (over `max_frame_bytes`, from
`welcome`'s limits) is reported and not sent. It speaks only what docs/protocol.md documents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import urllib.request
import uuid
from pathlib import Path

import websockets


def login(base: str, username: str, password: str) -> dict:
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(f"{base}/api/login", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def pick_room(welcome: dict, wanted: str) -> dict:
    rooms = [room for space in welcome["spaces"] for room in space["rooms"]]
    for room in rooms:
        if wanted in (room["channel"], room["area"], room["name"]):
            return room
    if wanted.startswith("room:"):  # not listed for you: ask the server anyway, it will say why not
        return {"channel": wanted, "name": wanted, "rights": []}
    names = ", ".join(f"{r['channel']} ({r['name']})" for r in rooms)
    sys.exit(f"no room '{wanted}' for you; you may read: {names}")


class ChatClient:
    def __init__(self, base: str, token: str, wanted_room: str, state_file: Path) -> None:
        self.ws_url = base.replace("http", "ws", 1) + "/ws"
        self.token = token
        self.wanted_room = wanted_room
        self.state_file = state_file
        self.last_seq = int(state_file.read_text()) if state_file.exists() else 0
        self.lines: asyncio.Queue[str] = asyncio.Queue()  # typed, not yet sent
        self.unacked: dict[str, dict] = {}  # sent, neither acknowledged nor refused: resent after a reconnect
        self.limits: dict = {}

    async def run(self) -> None:
        delay = 0.5
        asyncio.get_running_loop().create_task(self.read_stdin())
        while True:
            try:
                async with websockets.connect(self.ws_url, subprotocols=["twinhub.v1.json"]) as ws:
                    delay = 0.5
                    await self.session(ws)
            except (OSError, websockets.ConnectionClosed) as exc:
                print(f"… disconnected ({exc}); reconnecting", file=sys.stderr)
            await asyncio.sleep(delay + random.uniform(0, delay))  # jitter: a class does not reconnect in lockstep
            delay = min(delay * 2, 15)

    async def session(self, ws) -> None:
        await ws.send(json.dumps({"type": "hello", "token": self.token, "ref": "hello"}))
        [welcome] = json.loads(await ws.recv())
        if welcome["type"] != "welcome":
            sys.exit(f"refused: {welcome.get('message')}")
        self.limits = welcome["limits"]
        room = pick_room(welcome, self.wanted_room)
        self.channel = room["channel"]
        await ws.send(json.dumps({"type": "subscribe", "channel": self.channel, "since": self.last_seq, "ref": "sub"}))
        print(f"— {room['name']} ({self.channel}); you may: {', '.join(room['rights']) or '?'}", file=sys.stderr)
        for post in self.unacked.values():  # resend what was never acknowledged: same client_id
            await ws.send(json.dumps(post))
        sender = asyncio.create_task(self.send_posts(ws))
        try:
            async for message in ws:
                for frame in json.loads(message):
                    self.show(frame)
        finally:
            sender.cancel()

    def show(self, frame: dict) -> None:
        kind = frame["type"]
        if kind == "event" and frame["channel"] == self.channel:
            if frame["seq"] <= self.last_seq:
                return
            self.last_seq = frame["seq"]
            self.state_file.write_text(str(self.last_seq))
            m = frame["message"]
            text = m["text"] if m["state"] == "visible" else f"[{m['state']}]"
            verb = {"message.posted": "", "message.edited": " (edited)"}.get(frame["kind"], f" ({frame['kind']})")
            print(f"#{frame['seq']:>4} {m['author']['name']}{verb}: {text}")
        elif kind == "ok" and frame.get("ref") in self.unacked:
            self.unacked.pop(frame["ref"])
        elif kind == "ok" and frame.get("ref") == "sub":
            note = " — too far behind: see the history page" if frame.get("resync") else ""
            print(f"— caught up: {frame['replayed']} missed message(s){note}", file=sys.stderr)
        elif kind == "error" and frame.get("ref") in self.unacked:  # refused: resending would be refused again
            post = self.unacked.pop(frame["ref"])
            print(f"! not sent ({frame['code']}: {frame['message']}): {brief(post['text'])}", file=sys.stderr)
        elif kind == "error":
            print(f"! {frame['code']}: {frame['message']}", file=sys.stderr)
        elif kind == "presence" and "members" in frame:
            print("— here now: " + ", ".join(m["name"] for m in frame["members"]), file=sys.stderr)

    async def send_posts(self, ws) -> None:
        while True:
            text = await self.lines.get()
            client_id = uuid.uuid4().hex
            post = {"type": "post", "channel": self.channel, "text": text, "client_id": client_id, "ref": client_id}
            frame = json.dumps(post)
            # A frame over the limit is refused (`too_large`), and one over four times the limit
            # closes the socket (1009) before any answer: resent after each reconnect, it would
            # close every new socket for ever. Neither is sent.
            size, limit = len(frame.encode()), self.limits["max_frame_bytes"]
            if size > limit:
                print(f"! not sent (too long: {size} bytes, the limit is {limit}): {brief(text)}", file=sys.stderr)
                continue
            self.unacked[client_id] = post
            await ws.send(frame)

    async def read_stdin(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            if line.strip():
                self.lines.put_nowait(line.rstrip("\n"))


def brief(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", default="http://127.0.0.1:8000")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--room", default="chat", help="channel (room:5), area (chat) or room name")
    args = p.parse_args()
    token = login(args.server, args.user, args.password)["token"]
    state = Path(f".chat-{args.user}-{args.room.replace(':', '-')}.seq")
    try:
        asyncio.run(ChatClient(args.server, token, args.room, state).run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
