"""The comparison's Markdown tables (ratios TwinHub / peer) and its targets, from measure()'s figures.

Targets (issue 7; same run, same load generator, one server process on one core, TwinHub full
stack with auth, policy and persistence):

    closed-loop deliveries/s:  TwinHub >= 2x websockets.broadcast, >= 2.5x Node socket.io,
                               >= 30x Django Channels
    latency:                   TwinHub p99 <= 20 ms at an offered 20,000 deliveries/s

A target whose peer was not in the run (or failed) is reported as not checked, never as met.
"""

from __future__ import annotations

from typing import Any

from ..server_proc import CLIENT_BOUND_PERCENT

TWINHUB = "TwinHub"
RATIO_TARGETS = (("websockets.broadcast", 2.0), ("Node socket.io", 2.5), ("Django Channels", 30.0))
P99_TARGET_MS = 20.0
P99_TARGET_LOAD = 20_000.0


def _n(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and value < 100:
        return f"{value:,.1f}{unit}"
    return f"{value:,.0f}{unit}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _step(r: dict[str, Any], rate: float) -> dict[str, Any] | None:
    for s in r.get("sweep", []):
        if s["offered_deliveries_per_s"] == rate and "skipped" not in s:
            return s
    return None


def client_bound(step: dict[str, Any]) -> float | None:
    """The load generator's busiest figure in a step (its process, or its core with the kernel's
    receiving work), if at or above CLIENT_BOUND_PERCENT; else None."""
    busiest = max(step.get("client_cpu_percent") or 0.0, step.get("client_core_busy_percent") or 0.0)
    return busiest if busiest >= CLIENT_BOUND_PERCENT else None


def _most_kept_up(r: dict[str, Any]) -> float | None:
    kept = [s["offered_deliveries_per_s"] for s in r.get("sweep", []) if s.get("kept_up")]
    return max(kept) if kept else None


def closed_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per server: closed loop at saturation, memory per connection, p99 at 20,000/s."""
    hub = results.get(TWINHUB, {}).get("closed", {}).get("deliveries_per_s")
    head = ("| server | deliveries/s | TwinHub / server | p50 / p99 ms | server CPU % | helpers CPU % "
            "| load generator CPU %: process / its core | KB RSS per connection | p99 ms at 20,000/s offered | most offered load kept up |")
    lines = [head, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        c = r["closed"]
        at20k = _step(r, P99_TARGET_LOAD)
        kept = _most_kept_up(r)
        lines.append(
            f"| {name} | {_n(c['deliveries_per_s'])} | "
            f"{'—' if name == TWINHUB else _n(_ratio(hub, c['deliveries_per_s']), '×')} | "
            f"{_n(c['latency'].get('p50_ms'))} / {_n(c['latency'].get('p99_ms'))} | {_n(c['server_cpu_percent'])} | "
            f"{_n(c['database_cpu_percent'])} | {_n(c['client_cpu_percent'])} / {_n(c.get('client_core_busy_percent'))} | "
            f"{_n(r['kb_per_connection'])} | "
            f"{_n(at20k['latency'].get('p99_ms')) if at20k else '—'} | {_n(kept)} |"
        )
    return "\n".join(lines)


def sweep_table(results: dict[str, dict[str, Any]], rates: list[float]) -> str:
    """Open loop: delivered/s and p50 / p90 / p99 ms per server and offered load."""
    lines = ["| server | " + " | ".join(f"{r:,.0f}/s offered" for r in rates) + " |",
             "| --- |" + " ---: |" * len(rates)]
    for name, r in results.items():
        cells = []
        for rate in rates:
            s = next((s for s in r.get("sweep", []) if s["offered_deliveries_per_s"] == rate), None)
            if s is None:
                cells.append("—")
            elif "skipped" in s:
                cells.append("not run")
            else:
                lat = s["latency"]
                mark = "" if s.get("kept_up") else " ✗"
                cells.append(f"{_n(s['deliveries_per_s'])}{mark}<br>{_n(lat.get('p50_ms'))} / {_n(lat.get('p90_ms'))} / "
                             f"{_n(lat.get('p99_ms'))} ms")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def checks(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each met / not met with its margin, or not checked (peer missing)."""
    out: list[dict[str, Any]] = []
    hub = results.get(TWINHUB)
    for peer, factor in RATIO_TARGETS:
        target = f"TwinHub deliveries/s >= {factor:g}x {peer} (closed loop, same run)"
        if hub is None or peer not in results:
            out.append({"target": target, "met": False, "checked": False})
            continue
        a, b = hub["closed"]["deliveries_per_s"], results[peer]["closed"]["deliveries_per_s"]
        ratio = _ratio(a, b)
        out.append({"target": target, "twinhub": a, "peer": b, "ratio": ratio, "checked": True,
                    "met": ratio is not None and ratio >= factor,
                    "margin": f"x{ratio:g} against x{factor:g}" if ratio is not None else None})
    target = f"TwinHub p99 <= {P99_TARGET_MS:g} ms at {P99_TARGET_LOAD:,.0f} deliveries/s offered"
    step = _step(hub, P99_TARGET_LOAD) if hub else None
    if step is None or step["latency"].get("p99_ms") is None:
        out.append({"target": target, "met": False, "checked": False})
    else:
        p99 = step["latency"]["p99_ms"]
        out.append({"target": target, "p99_ms": p99, "kept_up": step["kept_up"], "checked": True,
                    "met": p99 <= P99_TARGET_MS and step["kept_up"],
                    "margin": f"{p99:g} ms against {P99_TARGET_MS:g} ms"})
    bound = [f"{name} ({s['step']}: {client_bound(s):.0f}%)" for name, r in results.items()
             for s in [r["closed"], *r.get("sweep", [])] if "skipped" not in s and client_bound(s)]
    out.append({"target": f"the load generator's process and core below {CLIENT_BOUND_PERCENT:g}% busy in every step "
                          "(else that server may be faster than measured)",
                "checked": True, "met": not bound, "client_bound_steps": bound})
    bad = {name: {k: r[k] for k in ("seq_anomalies", "undelivered_after_drain", "closed_by_server", "refused_posts")}
           for name, r in results.items()
           if r["seq_anomalies"] or r["undelivered_after_drain"] or r["closed_by_server"] or r["refused_posts"]}
    out.append({"target": "every acknowledged post reached every subscriber once, in seq order (every server)",
                "checked": True, "met": not bad, "failures": bad})
    return out


def verdicts(found: list[dict[str, Any]]) -> str:
    """The checks as Markdown bullets."""
    lines = []
    for c in found:
        state = "not checked (peer not in the run)" if not c["checked"] else ("**met**" if c["met"] else "**NOT MET**")
        extra = c.get("margin") or ""
        if c.get("client_bound_steps"):
            extra = "client-bound: " + ", ".join(c["client_bound_steps"])
        if c.get("failures"):
            extra = f"failures: {c['failures']}"
        lines.append(f"- {c['target']}: {state}" + (f" ({extra})" if extra else ""))
    return "\n".join(lines)
