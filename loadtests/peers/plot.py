"""The plots of a `python -m loadtests peers` result, written next to its JSON file.

    loadtests/peers/.venv/bin/python -m loadtests.peers.plot loadtests/results/peers-<time>.json

Writes <result>-throughput.png (delivered/s against offered deliveries/s, one line per server,
the diagonal = keeping up) and <result>-latency.png (p50, p90 and p99 against offered load, one
panel each, log scale), from the open-loop sweep; the closed-loop saturation figure of each server
is marked (◀) at the throughput plot's right edge. Runs in the peers' venv (matplotlib is not a
TwinHub dependency); `python -m loadtests peers` calls it after writing the JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 — after choosing the backend
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

PLAIN = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")

STYLE = {"TwinHub": dict(color="black", linewidth=2.5, marker="o")}


def _lines(figures: dict) -> dict[str, list[dict]]:
    return {name: [s for s in r.get("sweep", []) if "skipped" not in s] for name, r in figures["results"].items()}


def plot(path: Path) -> list[Path]:
    body = json.loads(path.read_text())
    figures, machine = body["figures"], body.get("machine", {})
    lines = _lines(figures)
    subs = figures["params"]["subscribers"]
    note = f"{subs:,} subscribers in one room, ~{figures['params']['text_size']}-char messages; commit {machine.get('commit', '?')}"
    written = []

    fig, ax = plt.subplots(figsize=(9, 6))
    rates = sorted({s["offered_deliveries_per_s"] for steps in lines.values() for s in steps})
    if rates:
        ax.plot(rates, rates, color="grey", linestyle=":", linewidth=1, label="offered (keeping up)")
    edge = max(rates) * 1.6 if rates else 1.0
    for name, steps in lines.items():
        xs = [s["offered_deliveries_per_s"] for s in steps]
        ys = [s["deliveries_per_s"] for s in steps]
        (line,) = ax.plot(xs, ys, label=name, **STYLE.get(name, dict(marker=".")))
        closed = figures["results"][name]["closed"]["deliveries_per_s"]
        ax.plot([edge], [closed], marker="<", markersize=9, color=line.get_color(), linestyle="none")
    if rates:
        ax.axvline(edge / 1.15, color="grey", linewidth=0.5)
        ax.text(edge, ax.get_ylim()[1], "closed\nloop", ha="center", va="top", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PLAIN)
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("offered deliveries/s (open loop)")
    ax.set_ylabel("delivered/s")
    ax.set_title(f"Fan-out throughput against offered load\n{note}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    out = path.with_name(path.stem + "-throughput.png")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)

    fig, axes = plt.subplots(1, 3, figsize=(15, 5), sharey=True)
    for ax, point in zip(axes, ("p50", "p90", "p99"), strict=True):
        for name, steps in lines.items():
            pts = [(s["offered_deliveries_per_s"], s["latency"].get(f"{point}_ms")) for s in steps]
            pts = [(x, y) for x, y in pts if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=name, **STYLE.get(name, dict(marker=".")))
        ax.axhline(20, color="red", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(PLAIN)
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("offered deliveries/s (open loop)")
        ax.set_title(f"{point} latency, ms")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("post -> delivery, ms (from the scheduled send time)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Delivery latency against offered load (red: 20 ms)\n{note}", fontsize=10)
    out = path.with_name(path.stem + "-latency.png")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    written.append(out)
    return written


if __name__ == "__main__":
    for written in plot(Path(sys.argv[1])):
        print(f"plot written to {written}")
