"""The soak's short version (issue 9, part 4): `python -m loadtests soak` itself, as a child
process, with 200 members in 4 spaces for 20 s — posts at 200/s, mail at 20/s, everyone on
their room, mailbox and feed, 2 % of the members dropping and resuming with `since` each second.

It asserts what a short run can tell for sure: nothing acknowledged lost or doubled across the
reconnects, every write answered, the server's PostgreSQL connections within its pools' size,
and once every client left its file descriptors back at the baseline (plus one per PostgreSQL
connection its pool opened meanwhile), no socket counted open, its tasks back, and its RSS grown
by less than a generous bound. Not the leak slopes: half a minute is too short for them (the
10-minute run and its figures are in docs/reliability.md). No timing is asserted: this runs on
a loaded shared machine. About 40 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RSS_GROWTH_MB = 60.0  # baseline (no client) -> after every client left; it was ~6 MB when written
FD_MARGIN = 5  # beyond the baseline and the PostgreSQL connections opened meanwhile
TASK_MARGIN = 5


def test_short_soak_loses_nothing_and_gives_back_its_sockets(tmp_path: Path) -> None:
    result = tmp_path / "soak.json"
    argv = [sys.executable, "-m", "loadtests", "soak", "-n", "200", "--space-size", "50", "-d", "20",
            "--warmup", "5", "--window", "5", "--sample", "2", "--timeout", "150", "--result", str(result)]
    admin = os.environ.get("TWINHUB_TEST_DATABASE_URL")
    if admin:  # a throwaway database on that server, as the other tests use
        argv += ["--database-url", admin]
    run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=200, check=False)  # noqa: S603
    output = run.stdout[-6000:] + "\n" + run.stderr[-3000:]
    assert run.returncode == 0, output
    f = json.loads(result.read_text())["figures"]

    c = f["correctness"]
    assert c["zero_loss"], json.dumps(c, indent=1) + output
    assert f["posts_acked"] == f["posts_sent"] > 1000, output
    assert f["mails_acked"] == f["mails_sent"] > 100, output
    assert f["churn_cycles"] >= 20 and not f["reconnect_failures"], output
    assert f["replayed_events"] > 0, output  # the churned members did resume with since

    r = f["resources"]
    base, after = r["baseline"], r["after_clients_left"]
    assert r["pg_connections_peak"] is not None and r["pg_connections_peak"] <= r["pg_connections_max_allowed"], r
    assert after["websockets_open"] == 0, after
    opened_pg = after["pg_connections"] - base["pg_connections"]
    assert after["fds"] <= base["fds"] + opened_pg + FD_MARGIN, (base, after)
    assert after["tasks"] <= base["tasks"] + TASK_MARGIN, (base, after)
    assert after["rss_mb"] - base["rss_mb"] <= RSS_GROWTH_MB, (base, after)
