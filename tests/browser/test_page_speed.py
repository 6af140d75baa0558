"""What keeps the page light, checked without timing it (issue 10, point 10; the timings are
`python -m loadtests page`, docs/performance.md "The page"): a pupil's browser fetches no teacher
screen, a screen's module comes when the screen is first opened, nothing answers 404 (the tab's
icon included), files come gzipped and marked for revalidation, and a second visit revalidates
(304) instead of downloading the page again."""

from __future__ import annotations

from realtime.policy import Area
from tests.browser.pages import TIMEOUT, open_menu, open_page, open_room
from tests.conftest import PASSWORD

TEACHER_ONLY = ("/static/screens/project.js", "/static/screens/members.js", "/static/screens/platform.js")
STAFF_AND_MODERATORS = ("/static/screens/moderation.js",)


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3].split("?")[0].split("#")[0]


def _watch(page) -> dict[str, list]:
    seen: dict[str, list] = {"requests": [], "responses": []}
    page.on("request", lambda r: seen["requests"].append(_path(r.url)))
    page.on("response", lambda r: seen["responses"].append(r))
    return seen


async def test_a_pupil_s_first_visit_fetches_no_teacher_screen_and_nothing_missing(browser, server, world, screenshot, axe):
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    seen = _watch(page)
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.fill("#username", world.users["pupil_member"].username)
    await page.fill("#password", PASSWORD)
    await page.click("form.login button[type=submit]")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    await page.wait_for_selector("[data-testid=projects] a[data-channel]")
    await page.wait_for_load_state("networkidle")
    await screenshot(page, "pupil-start-first-visit")
    await axe(page, "Start, on a first visit")

    fetched = set(seen["requests"])
    assert not fetched & {*TEACHER_ONLY, *STAFF_AND_MODERATORS}, sorted(fetched)
    assert "/static/screens/mail.js" not in fetched  # a screen's module waits for the screen
    # The tab's icon is the page's own (no request for /favicon.ico), and every file the page
    # asks for is there: nothing answered 404 (a module preloaded by index.html and since renamed).
    assert await page.get_attribute('link[rel="icon"]', "href") == "/static/favicon.svg"
    assert "/static/favicon.svg" in fetched
    missing = [(_path(r.url), r.status) for r in seen["responses"] if r.status == 404]
    assert not missing, missing

    # A screen's module is fetched when the screen is first opened: TwinMail here.
    await open_menu(page)
    await page.click("[data-testid=nav-mail]")
    await page.wait_for_selector("[data-testid=mail]")
    assert "/static/screens/mail.js" in seen["requests"]
    await open_room(page, world.channel(Area.CHAT))

    # The pupil has no way to the teachers' screens, and an address that names one lands on
    # Start without even fetching its module (the server refuses its routes anyway: test_idor).
    assert await page.locator("[data-testid=nav-members], [data-testid=nav-project]").count() == 0
    for screen in ("members", "project"):
        await page.goto(f"http://127.0.0.1:{server.port}/#/{screen}/{world.space_id}")
        await page.wait_for_selector("[data-testid=home]")
        assert page.url.endswith("#/home")
    await page.wait_for_load_state("networkidle")
    assert not set(seen["requests"]) & set(TEACHER_ONLY), sorted(set(seen["requests"]))
    await context.close()


async def test_a_teacher_s_screens_come_when_first_opened(browser, server, world):
    page = await open_page(browser, server.port, world.users["teacher_admin"])
    seen = _watch(page)
    await page.wait_for_load_state("networkidle")
    assert "/static/screens/members.js" not in seen["requests"]
    await open_menu(page)
    await page.click("[data-testid=nav-members]")
    await page.wait_for_selector("[data-testid=members]")
    assert seen["requests"].count("/static/screens/members.js") == 1
    # Opened again: the module is the one already loaded, not asked for again.
    await page.click("[data-testid=nav-home]")
    await page.wait_for_selector("[data-testid=home]")
    await page.click("[data-testid=nav-members]")
    await page.wait_for_selector("[data-testid=members]")
    assert seen["requests"].count("/static/screens/members.js") == 1
    await page.context.close()


async def test_files_come_gzipped_marked_for_revalidation_and_a_second_visit_revalidates(browser, server, world):
    page = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(page, world.channel(Area.CHAT))
    await page.wait_for_load_state("networkidle")
    seen = _watch(page)
    # The first visit again in a fresh context, to see every answer's headers as sent.
    cold = await browser.new_context()
    first = await cold.new_page()
    answers = _watch(first)
    await first.goto(f"http://127.0.0.1:{server.port}/")
    await first.wait_for_selector("#username")
    await first.wait_for_load_state("networkidle")
    scripts = [r for r in answers["responses"] if _path(r.url).endswith(".js")]
    assert len(scripts) >= 5
    gzipped = 0
    for r in scripts:
        headers = await r.all_headers()
        assert headers.get("cache-control") == "no-cache", (r.url, headers)
        assert headers.get("etag"), (r.url, headers)
        assert headers.get("content-security-policy"), (r.url, headers)  # the security headers too
        size = len(await r.body())  # as decoded
        assert headers.get("content-encoding") == ("gzip" if size >= 1024 else None), (r.url, size, headers)
        gzipped += size >= 1024
    assert gzipped >= 5
    await cold.close()

    # The second visit in the first browser: the page's files are revalidated (304), not sent again.
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.wait_for_selector("[data-testid=projects] a[data-channel]")
    await page.wait_for_load_state("networkidle")
    again = {_path(r.url): r.status for r in seen["responses"] if _path(r.url).startswith("/static/") and r.url.endswith(".js")}
    assert again and all(status == 304 for status in again.values()), again
    await page.context.close()


async def test_the_login_page_on_a_phone(browser, server, screenshot, axe):
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR", is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    seen = _watch(page)
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.wait_for_selector("#username")
    await page.wait_for_load_state("networkidle")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert not [r.url for r in seen["responses"] if r.status == 404]
    await screenshot(page, "visitor-login-phone")
    await axe(page, "the login page on a phone")
    await context.close()
