"""Browser tests: Playwright driving the machine's Chromium (no browser download: schools and
CI machines filter the internet). Without Chromium they are skipped with the command that
installs it — unless TWINHUB_REQUIRE_BROWSER=1 (CI sets it), then they fail."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SCREENSHOTS = Path(os.environ.get("TWINHUB_SCREENSHOTS", Path(__file__).resolve().parents[2] / ".twinhub-screenshots"))


def chromium_path() -> str | None:
    return os.environ.get("TWINHUB_CHROMIUM") or next(filter(None, map(shutil.which, CANDIDATES)), None)


def _missing(what: str) -> None:
    message = (
        f"browser tests need {what}: on Debian or Ubuntu `sudo apt-get install chromium` "
        "(or set TWINHUB_CHROMIUM to a Chrome/Chromium binary); `python3 dev.py test` installs Playwright itself"
    )
    if os.environ.get("TWINHUB_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
async def browser():
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("the playwright package (pip install playwright)")
    path = chromium_path()
    if path is None:
        _missing("Chromium")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        await browser.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    async def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=False)
        return path

    return take


AXE = Path(__file__).with_name("vendor") / "axe.min.js"  # axe-core 4.14.1 (MPL-2.0), pinned
SERIOUS = ("serious", "critical")


@pytest.fixture
def axe():
    """Runs axe-core on the page as it is now and fails on any serious or critical violation
    (WCAG 2.2 A and AA rules and axe's best practices), naming each rule and where it broke."""

    async def check(page, screen: str) -> list[dict]:
        if not await page.evaluate("typeof window.axe === 'object'"):
            await page.evaluate(AXE.read_text())  # evaluated by the browser's devtools: the page's CSP does not apply
        found = await page.evaluate(
            "async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}))"
            ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))"
        )
        bad = [v for v in found if v["impact"] in SERIOUS]
        assert not bad, f"axe-core on {screen}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in bad)
        return found

    return check
