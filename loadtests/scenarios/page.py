"""`python -m loadtests page`: the browser page, as a pupil's Chromium sees it over loopback (issue
10, point 10: first screen interactive in under 1 s with a cold cache; a room of 5,000 messages
scrolls smoothly; a bounded number of messages in the DOM).

Each server under test is `twinhub serve` on the demo project (realtime/run/demo.py), seeded
first through storage/ with --messages messages in its Chat room (authors in turn) and a few in
the Pupils' corner. `--before PATH` starts a second server from another checkout (a worktree of
an older commit) on its own data, seeded the same, and measures both in turn, round by round (the
order swapped every other round), so that the two columns share the machine's noise.

Each round opens a fresh browser context (a cold cache) and, as the pupil ana.l:
  - navigation -> the login form in the DOM (its handler is bound before it is inserted);
  - the login submitted -> the Start screen's room links in the DOM; and -> the connection online;
  - requests and bytes (Resource Timing; the WebSocket apart) on the login page and through the
    Start screen (once the network is idle); the JavaScript modules fetched;
  - a click on a small room -> its messages in the DOM; on the room of --messages -> the same;
  - in the first --scroll-rounds rounds, scrolling that room up to its first message, in the
    page: the list scrolled by --step px on each animation frame (a steady fling; the list loads
    older pages as it nears the top), frame times from requestAnimationFrame's deltas (p50, p95,
    max, frames over 50 ms), long tasks from a PerformanceObserver, and the most and the last
    number of message elements in the list;
  - a second visit in the same context (warm cache, the session cookie): navigation -> the Start
    screen, its requests, how many were revalidated (304) or taken from the cache unasked, and
    the bytes transferred.
Bytes are Resource Timing's transferSize: the encoded body plus 300 bytes for the response's
head (the figure Chromium gives in place of the real head's size).
Times are the page's own clock (performance.now(), 0 at navigation): a MutationObserver notes
when an element appears. The table shows each figure's median over the rounds, and its least.

Chromium: the machine's (TWINHUB_CHROMIUM, or chromium on PATH), driven by Playwright; it runs
on --client-cpu (it inherits this process's CPU), each server and its PostgreSQL on --server-cpu.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..report import table
from ..server_proc import ServerProcess, launch, pin
from .targets import REPO, _server_env

PUPIL = "ana.l"  # realtime/run/demo.py: a pupil_member of the demo project
TEACHER_ONLY = ("screens/project.js", "screens/members.js", "screens/platform.js")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Notes, in the page's clock, when each watched selector first matches (and the next animation
# frame after it), and when a form is submitted or something is clicked. Runs before the page's
# own scripts in every document (it is the browser's devtools that inject it: the CSP does not
# apply).
MARKS = """
(() => {
  const marks = (window.__marks = {});
  const watch = (window.__watched = {
    login: "#username",
    home: "[data-testid=projects] a[data-channel]",
    online: '[data-testid=status][data-state="online"]',
  });
  const observer = new MutationObserver(check);
  function check() {
    let waiting = false;
    for (const [name, selector] of Object.entries(watch)) {
      if (name in marks) continue;
      if (document.querySelector(selector)) {
        marks[name] = performance.now();
        requestAnimationFrame(() => { marks[`${name}:frame`] = performance.now(); });
      } else {
        waiting = true;
      }
    }
    if (!waiting) observer.disconnect();
  }
  window.__watch = (name, selector) => {
    delete marks[name];
    watch[name] = selector;
    observer.observe(document, { subtree: true, childList: true, attributes: true });
    check();
  };
  observer.observe(document, { subtree: true, childList: true, attributes: true });
  document.addEventListener("submit", () => { marks.submit = performance.now(); }, true);
  document.addEventListener("click", () => { marks.click = performance.now(); }, true);
})();
"""

# The transfers so far: the navigation and every resource (fetches included).
TRANSFERS = """
() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")].map((e) => ({
  url: e.name, transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize,
}))
"""

# Scrolls the open room's list up by `step` px each frame until its first message (`first`, a
# seq) is in it and the top is reached, or `seconds` pass.
SCROLL = """
async ({ step, seconds, first }) => {
  const list = document.querySelector("[data-testid=messages]");
  const deltas = [];
  let longTasks = 0, longMs = 0, most = 0, frames = 0;
  const observer = new PerformanceObserver((found) => {
    for (const e of found.getEntries()) { longTasks += 1; longMs += e.duration; }
  });
  observer.observe({ type: "longtask" });
  const count = () => list.querySelectorAll(":scope > li.message").length;
  const start = performance.now();
  let last = start;
  const reached = await new Promise((done) => {
    function frame(now) {
      deltas.push(now - last);
      last = now;
      frames += 1;
      if (frames % 5 === 0) most = Math.max(most, count());
      if (list.scrollTop <= 0 && list.querySelector(`:scope > li.message[data-seq="${first}"]`)) return done(true);
      if (now - start > seconds * 1000) return done(false);
      list.scrollTop = Math.max(0, list.scrollTop - step);
      requestAnimationFrame(frame);
    }
    requestAnimationFrame(frame);
  });
  await new Promise((r) => setTimeout(r, 100));
  observer.disconnect();
  deltas.shift();
  const sorted = [...deltas].sort((a, b) => a - b);
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  return {
    reached, seconds: (last - start) / 1000, frames: deltas.length,
    p50: at(50), p95: at(95), p99: at(99), max: sorted[sorted.length - 1],
    over50: deltas.filter((d) => d > 50).length, longTasks, longMs,
    most: Math.max(most, count()), end: count(),
  };
}
"""


@dataclass
class PageServer:
    label: str  # "after" (this checkout) or "before" (--before)
    root: Path
    server: ServerProcess
    rooms: dict[str, tuple[int, str]]  # area -> (room id, channel)
    first_seq: int  # the big room's first message


def chromium_path() -> str | None:
    return os.environ.get("TWINHUB_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM)), None)


async def seed_demo(data_dir: Path, messages: int) -> tuple[dict[str, tuple[int, str]], int]:
    """The demo project in the embedded PostgreSQL of `data_dir`, with `messages` messages in its
    Chat room and 20 in the Pupils' corner, written through storage/ (then PostgreSQL is stopped:
    `serve --data-dir` starts it again). Answers the rooms by area and the Chat room's first seq."""
    from realtime.run.demo import ensure_demo
    from storage import accounts, spaces
    from storage.db import create_pool
    from storage.embedded import database_url
    from storage.messages import NewPost, post_many
    from storage.migrate import migrate

    async with contextlib.AsyncExitStack() as stack:
        url = await database_url(None, data_dir, stack)
        pool = await create_pool(url, min_size=1, max_size=2)
        stack.push_async_callback(pool.close)
        async with pool.acquire() as conn:
            await migrate(conn)
        await ensure_demo(pool)
        from realtime.run.demo import PEOPLE, SLUG

        space = await spaces.space_by_slug(pool, SLUG)
        assert space is not None
        rooms = {r.area: r for r in await spaces.rooms_of(pool, [space.id]) if r.kind == "room"}
        authors = [await accounts.user_by_username(pool, p[0]) for p in PEOPLE if p[3] and p[3] != "visitor"]

        async def write(area: str, n: int) -> list[int]:
            room, seqs = rooms[area], []
            for start in range(0, n, 500):
                batch = []
                for i in range(start, min(n, start + 500)):
                    a = authors[i % len(authors)]
                    text = f"message {i:04d}: " + ("where does the water of our town come from? " * (1 + i % 4)).strip()
                    batch.append(NewPost(space.id, room.id, a.id, a.display_name, a.school, text, None, area))
                async with pool.acquire() as conn, conn.transaction():
                    seqs += [r.event.seq for r in await post_many(conn, batch)]
            return seqs

        await write("pupils_corner", 20)
        first = (await write("chat", messages))[0]
        return {area: (r.id, f"room:{r.id}") for area, r in rooms.items()}, first


@contextlib.asynccontextmanager
async def page_server(label: str, root: Path, work: Path, args: argparse.Namespace) -> AsyncIterator[PageServer]:
    data = work / label
    data.mkdir()
    rooms, first = await seed_demo(data, args.messages)
    argv = [sys.executable, "-m", "realtime", "serve", "--port", "0", "--data-dir", str(data)]
    env = _server_env(False)
    env["PYTHONPATH"] = str(root)  # that checkout's code, whatever is installed
    with launch(f"twinhub ({label})", argv, env=env, cpu=args.server_cpu, log=work / f"{label}.log", cwd=root,
                timeout=120, postmaster_pid=data / "pgdata" / "postmaster.pid") as server:
        await asyncio.to_thread(server.wait_ready, "/readyz", 120)
        print(f"{label}: {root} on port {server.port} (pid {server.pid})", file=sys.stderr)
        yield PageServer(label, root, server, rooms, first)


def _sum(transfers: list[dict[str, Any]], key: str) -> int:
    return int(sum(t[key] for t in transfers))


async def _wait_mark(page: Any, name: str, timeout: float = 30_000) -> float:
    await page.wait_for_function("(name) => window.__marks && name in window.__marks", arg=name, timeout=timeout)
    return float(await page.evaluate("(name) => window.__marks[name]", name))


async def one_round(browser: Any, target: PageServer, args: argparse.Namespace, scroll: bool) -> dict[str, Any]:
    """One cold visit by the pupil, then a second visit in the same context (figures: ms, bytes)."""
    from realtime.run.demo import PASSWORD

    base = f"http://127.0.0.1:{target.server.port}"
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale=args.locale)
    await context.add_init_script(MARKS)
    page = await context.new_page()
    page.set_default_timeout(30_000)
    statuses: list[tuple[int, str]] = []
    page.on("response", lambda r: statuses.append((r.status, r.url)))
    out: dict[str, Any] = {}
    try:
        await page.goto(base + "/")
        out["login_form_ms"] = await _wait_mark(page, "login")
        out["login_form_frame_ms"] = await _wait_mark(page, "login:frame")
        at_login = await page.evaluate(TRANSFERS)
        out["login_requests"], out["login_bytes"] = len(at_login), _sum(at_login, "transfer")
        await page.fill("#username", PUPIL)
        await page.fill("#password", PASSWORD)
        await page.click("form.login button[type=submit]")
        submitted = await _wait_mark(page, "submit")
        out["start_ms"] = await _wait_mark(page, "home") - submitted
        out["online_ms"] = await _wait_mark(page, "online") - submitted
        await page.wait_for_load_state("networkidle")
        first = await page.evaluate(TRANSFERS)
        out["first_visit_requests"] = len(first)
        out["first_visit_bytes"] = _sum(first, "transfer")
        out["first_visit_decoded_bytes"] = _sum(first, "decoded")
        scripts = [t["url"].split("/static/", 1)[-1] for t in first if t["url"].endswith(".js")]
        out["modules"] = len(scripts)
        out["teacher_modules"] = sorted(s for s in scripts if s in TEACHER_ONLY)

        small, big = target.rooms["pupils_corner"], target.rooms["chat"]
        for key, (_, channel) in (("small_room_ms", small), ("big_room_ms", big)):
            shown = f'[data-testid=room][data-channel="{channel}"] [data-testid=messages] > li.message'
            await page.evaluate("([n, s]) => window.__watch(n, s)", [key, shown])
            await page.click(f'nav a[data-channel="{channel}"]')
            out[key] = await _wait_mark(page, key) - float(await page.evaluate("window.__marks.click"))
            await page.wait_for_load_state("networkidle")
        await page.wait_for_timeout(500)  # the newest page in, the list at the bottom
        if scroll:
            out["scroll"] = await page.evaluate(SCROLL, {"step": args.step, "seconds": args.scroll_seconds,
                                                        "first": target.first_seq})

        # The second visit: the same browser (its cache, its cookie), a new navigation.
        await page.goto(base + "/")
        out["revisit_start_ms"] = await _wait_mark(page, "home")
        await page.wait_for_load_state("networkidle")
        again = await page.evaluate(TRANSFERS)
        out["revisit_requests"] = len(again)
        # Chromium counts 300 bytes for a response's head (Resource Timing's stand-in): a
        # revalidated file (304) transfers those alone, one taken from the cache unasked nothing.
        out["revisit_304"] = sum(1 for t in again if t["transfer"] == 300)
        out["revisit_cached"] = sum(1 for t in again if t["transfer"] == 0)
        out["revisit_bytes"] = _sum(again, "transfer")
        out["not_found"] = sorted({url for status, url in statuses if status == 404})
    finally:
        await context.close()
    return out


ROWS = [
    ("navigation -> login form in the DOM, ms", "login_form_ms"),
    ("  -> its first frame, ms", "login_form_frame_ms"),
    ("login page: requests", "login_requests"),
    ("login page: bytes transferred", "login_bytes"),
    ("login submitted -> Start screen, ms", "start_ms"),
    ("login submitted -> online (WebSocket), ms", "online_ms"),
    ("first visit to Start: requests", "first_visit_requests"),
    ("first visit to Start: bytes transferred", "first_visit_bytes"),
    ("first visit to Start: bytes decoded", "first_visit_decoded_bytes"),
    ("first visit to Start: JS modules", "modules"),
    ("click -> small room's messages, ms", "small_room_ms"),
    ("click -> room of N messages shown, ms", "big_room_ms"),
    ("scroll to its first message, s", "scroll.seconds"),
    ("  reached the first message (rounds)", "scroll.reached"),
    ("  frames", "scroll.frames"),
    ("  frame time p50, ms", "scroll.p50"),
    ("  frame time p95, ms", "scroll.p95"),
    ("  frame time p99, ms", "scroll.p99"),
    ("  frame time max, ms", "scroll.max"),
    ("  frames over 50 ms", "scroll.over50"),
    ("  long tasks", "scroll.longTasks"),
    ("  long tasks, total ms", "scroll.longMs"),
    ("  message elements, most", "scroll.most"),
    ("  message elements, at the end", "scroll.end"),
    ("second visit: navigation -> Start, ms", "revisit_start_ms"),
    ("second visit: requests", "revisit_requests"),
    ("second visit: of which revalidated (304)", "revisit_304"),
    ("second visit: of which from the cache", "revisit_cached"),
    ("second visit: bytes transferred", "revisit_bytes"),
]


def _get(figures: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(figures, dict) or part not in figures:
            return None
        figures = figures[part]
    return figures


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds, and its least as `<key>.least` (booleans: how many
    rounds were true). On a busy machine the least is the figure least disturbed by others."""
    out: dict[str, Any] = {}
    for _, key in ROWS:
        values = [v for v in (_get(r, key) for r in rounds) if v is not None]
        if not values:
            continue
        if isinstance(values[0], bool):
            out[key] = f"{sum(values)}/{len(values)}"
        else:
            out[key] = round(statistics.median(values), 1)
            out[f"{key}.least"] = round(min(values), 1)
    return out


def report(labels: list[str], summaries: dict[str, dict[str, Any]], messages: int) -> str:
    rows = [[label.replace("N messages", f"{messages:,} messages"),
             *(summaries[s].get(key) for s in labels), *(summaries[s].get(f"{key}.least") for s in labels)]
            for label, key in ROWS]
    return table(["", *(f"{s}: median" for s in labels), *(f"{s}: least" for s in labels)], rows)


async def command(args: argparse.Namespace) -> dict[str, Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise RuntimeError("the page benchmark needs Playwright: pip install playwright (the [test] extra)") from None
    path = chromium_path()
    if path is None:
        raise RuntimeError("the page benchmark needs Chromium: apt-get install chromium (or set TWINHUB_CHROMIUM)")
    trees = [("after", REPO)] + ([("before", Path(args.before).resolve())] if args.before else [])
    work = Path(tempfile.mkdtemp(prefix="twinhub-page-"))
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, _ in trees}
    try:
        async with contextlib.AsyncExitStack() as stack:
            targets = [await stack.enter_async_context(page_server(label, root, work, args)) for label, root in trees]
            pin(args.client_cpu)  # this process, and so Chromium
            p = await stack.enter_async_context(async_playwright())
            browser = await p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
            stack.push_async_callback(browser.close)
            for k in range(args.rounds):
                for target in targets if k % 2 == 0 else targets[::-1]:
                    figures = await one_round(browser, target, args, k < args.scroll_rounds)
                    results[target.label].append(figures)
                    scroll = figures.get("scroll", {})
                    print(f"round {k + 1}/{args.rounds} {target.label}: login form {figures['login_form_ms']:.0f} ms, "
                          f"Start {figures['start_ms']:.0f} ms, {figures['first_visit_requests']} requests "
                          f"{figures['first_visit_bytes'] / 1024:.0f} KB, big room {figures['big_room_ms']:.0f} ms"
                          + (f", scroll p95 {scroll['p95']:.1f} ms, {scroll['most']} messages at most" if scroll else ""),
                          file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    labels = [label for label in ("before", "after") if label in results]
    summaries = {label: summary(results[label]) for label in labels}
    print("\n" + report(labels, summaries, args.messages))
    for label in labels:
        last = results[label][-1]
        print(f"{label}: teacher-only modules fetched by the pupil: {last['teacher_modules'] or 'none'}; "
              f"404s: {last['not_found'] or 'none'}")
    after = summaries["after"]
    checks = [
        {"target": "page: navigation -> login form interactive under 1 s (cold cache, median)",
         "ms": after["login_form_ms"], "met": after["login_form_ms"] < 1000},
        {"target": "page: login -> Start screen interactive under 1 s (cold cache, median)",
         "ms": after["start_ms"], "met": after["start_ms"] < 1000},
        {"target": "page: no teacher-only screen module on a pupil's first visit",
         "met": not any(r["teacher_modules"] for r in results["after"])},
        {"target": "page: no 404 on a visit", "met": not any(r["not_found"] for r in results["after"])},
    ]
    if args.scroll_rounds:
        checks.append({"target": f"page: the room of {args.messages:,} messages holds a bounded list "
                                 f"(<= {args.max_dom} message elements) while scrolled through",
                       "most": after.get("scroll.most"),
                       "met": all(r["scroll"]["most"] <= args.max_dom and r["scroll"]["reached"]
                                  for r in results["after"] if "scroll" in r)})
    return {"rounds": results, "medians": summaries, "checks": checks}


def add_parser(sub: Any) -> None:
    two_cpus = (os.cpu_count() or 1) >= 2
    s = sub.add_parser("page", help="the browser page with Chromium: first screens, requests and bytes, a long room",
                       description=(__doc__ or "").split("\n\n")[0])
    s.add_argument("--rounds", type=int, default=5, help="cold visits per server (default 5)")
    s.add_argument("--before", default=None,
                   help="a checkout of an older commit (git worktree add --detach /tmp/before <commit>): measured "
                        "side by side, round by round")
    s.add_argument("--locale", default="en-GB",
                   help="the browser's language (default en-GB; pl-PL: the page in Polish, docs/i18n.md)")
    s.add_argument("--messages", type=int, default=5000, help="messages in the long room (default 5000)")
    s.add_argument("--step", type=int, default=300, help="px scrolled up each frame (default 300: a fast fling)")
    s.add_argument("--scroll-seconds", type=float, default=120.0, help="bound on the scroll, s (default 120)")
    s.add_argument("--scroll-rounds", type=int, default=1,
                   help="rounds that also scroll through the long room, the first ones (default 1; 0: none)")
    s.add_argument("--max-dom", type=int, default=300, help="message elements the list may hold (screens/room.js MAX_DOM)")
    s.add_argument("--server-cpu", type=int, default=0 if two_cpus else None, help="CPU of the servers (default 0)")
    s.add_argument("--client-cpu", type=int, default=1 if two_cpus else None,
                   help="CPU of this process and Chromium (default 1)")
    s.add_argument("--timeout", type=float, default=1800, help="bound on the whole run, s (default 1800)")
    s.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="asyncio", help="this process's event loop")
    s.add_argument("--keep", action="store_true", help="keep the work folder (server logs, data) after the run")
