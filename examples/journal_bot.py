"""A journal bot: posts one entry to a TwinHub project's journal over HTTP.

    python examples/journal_bot.py --url http://127.0.0.1:8000 --space 1 --token twb_… \\
        --title "Rhône at Lyon" --text "Flow: 620 m3/s, 9 °C"

The token comes from a teacher admin (`POST /api/spaces/{id}/bots`, or
`twinhub admin create-bot --space <slug> --name "Weather bot" --by <teacher>`). The entry's
Idempotency-Key is derived from its content and the day, so running the bot twice the same day
posts once; a network error is retried with the same key (docs/protocol.md, "Bots").
Only the standard library: copy it anywhere.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request


def post_entry(url: str, space: int, token: str, title: str, text: str, *, attempts: int = 5) -> dict:
    day = datetime.date.today().isoformat()
    key = hashlib.sha256(f"{day}\n{title}\n{text}".encode()).hexdigest()[:40]
    body = json.dumps({"title": title, "text": text}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/api/spaces/{space}/journal", data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key, "Content-Type": "application/json"},
    )
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            error = json.load(exc).get("error", {})
            if exc.code == 429 or exc.code >= 500:  # rate limited, or the server is not ready: wait, retry
                time.sleep(int(exc.headers.get("Retry-After", 2 ** attempt)))
                continue
            raise SystemExit(f"refused: {exc.code} {error.get('code')}: {error.get('message')}") from None
        except urllib.error.URLError:
            time.sleep(2 ** attempt)  # the same key makes the retry safe
    raise SystemExit("the server did not answer")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--space", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--title", required=True)
    p.add_argument("--text", required=True)
    args = p.parse_args()
    done = post_entry(args.url, args.space, args.token, args.title, args.text)
    print(("already posted: " if done["duplicate"] else "posted: ") + json.dumps(done), file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
