"""Figures out of raw samples, the progress line, the printed tables and the JSON result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def percentiles(samples_ns: array, points: Sequence[float] = (50, 90, 99, 99.9)) -> dict[str, float]:
    """Latency figures in milliseconds: count, p50..., max (nearest-rank percentiles)."""
    if not samples_ns:
        return {"count": 0}
    ordered = sorted(samples_ns)
    n = len(ordered)
    out: dict[str, float] = {"count": n}
    for p in points:
        out[f"p{p:g}_ms"] = round(ordered[min(n - 1, max(0, int(p / 100 * n + 0.5) - 1))] / 1e6, 3)
    out["max_ms"] = round(ordered[-1] / 1e6, 3)
    return out


def machine() -> dict[str, Any]:
    """The machine and software a result was measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("picows", "websockets", "uvicorn", "uvloop", "psutil"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
            timeout=5, check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "cpu": model, "cpus": os.cpu_count(), "memory_gib": round(_memory_bytes() / 2**30, 1),
        "os": platform.platform(), "python": sys.version.split()[0], "packages": versions, "commit": commit,
    }


def _memory_bytes() -> int:
    import psutil

    return psutil.virtual_memory().total


def write_result(scenario: str, params: dict[str, Any], figures: dict[str, Any], host: dict[str, Any],
                 path: Path | None = None) -> Path:
    """Write loadtests/results/<scenario>-<UTC time>.json, or `path` (`host`: machine() read when
    the run started, so the commit is the one that was measured) and return its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if path is None:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{scenario}-{stamp}.json"
    body = {"scenario": scenario, "finished_at": stamp, "machine": host, "params": params, "figures": figures}
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


class Progress:
    """One status line, rewritten in place on a terminal (one line per update otherwise)."""

    def __init__(self) -> None:
        self._tty = sys.stderr.isatty()
        self._width = 0

    def show(self, text: str) -> None:
        if self._tty:
            sys.stderr.write("\r" + text.ljust(self._width))
            self._width = len(text)
        else:
            sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self._tty and self._width:
            sys.stderr.write("\n")
            self._width = 0


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, numbers right-aligned."""
    cells = [list(header), *[[_fmt(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for k, row in enumerate(cells):
        lines.append("  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# The rows every scenario's table ends its figures with: what the machine spent (label, key).
RESOURCE_ROWS = (
    ("database CPU % (embedded PostgreSQL)", "database_cpu_percent"),
    ("load generator CPU %", "client_cpu_percent"),
    ("interrupts CPU % (loopback TCP)", "interrupts_cpu_percent"),
    ("other processes CPU %", "other_processes_cpu_percent"),
    ("server RSS MB (end)", "server_rss_mb"),
    ("server RSS MB (peak)", "server_rss_peak_mb"),
)

FANOUT_ROWS = [
    ("deliveries/s", "deliveries_per_s"),
    ("posts/s (acked)", "posts_per_s"),
    ("events per WS message", "events_per_message"),
    ("latency p50 ms", "latency.p50_ms"),
    ("latency p99 ms", "latency.p99_ms"),
    ("latency max ms", "latency.max_ms"),
    ("ack p50 ms", "ack_latency.p50_ms"),
    ("ack p99 ms", "ack_latency.p99_ms"),
    ("server CPU %", "server_cpu_percent"),
    *RESOURCE_ROWS,
    ("seq gaps/duplicates", "seq_anomalies"),
    ("undelivered after drain", "undelivered_after_drain"),
    ("closed by server", "closed_by_server"),
    ("refused posts", "refused_posts"),
]


def pick(figures: dict[str, Any], dotted: str) -> Any:
    value: Any = figures
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def fanout_table(results: dict[str, dict[str, Any]], rows_spec: Sequence[tuple[str, str]] = FANOUT_ROWS,
                 *, ratio: bool = True) -> str:
    """Side by side: one column per server (or per step of a run); with two, a ratio column
    (second / first) unless `ratio` is False. `rows_spec`: (label, dotted key) per row."""
    names = list(results)
    with_ratio = ratio and len(names) == 2
    header = ["", *names] + ([f"{names[1]} / {names[0]}"] if with_ratio else [])
    rows = []
    for label, key in rows_spec:
        values = [pick(results[n], key) for n in names]
        if with_ratio:
            a, b = values
            values.append(
                round(b / a, 2) if isinstance(a, int | float) and isinstance(b, int | float) and a else None
            )
        rows.append([label, *values])
    return table(header, rows)
