"""The page by keyboard alone: the first Tab reaches a skip link that says where it goes — the
message box in a room, the content elsewhere — and Enter takes the focus there."""

from __future__ import annotations

from realtime.policy import Area
from tests.browser.pages import open_page, open_room


async def test_the_skip_link_leads_to_the_message_box_or_the_content(browser, server, world, screenshot, axe):
    page = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(page, world.channel(Area.CHAT))
    await page.reload()  # a fresh start at the room's address: nothing has the focus yet
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    await page.wait_for_selector("#composer")
    await page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert await page.evaluate("document.activeElement.className") == "skip"
    assert await skip.text_content() == "Skip to the message box"
    assert await skip.is_visible()  # shown while it has the focus
    await screenshot(page, "pupil-skip-link")
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "composer"
    await page.keyboard.type("typed without a mouse")
    await page.keyboard.press("Enter")
    await page.locator("[data-testid=messages] .message", has_text="typed without a mouse").wait_for()

    await page.evaluate("location.hash = '#/home'")
    await page.wait_for_selector("[data-testid=home]")
    await page.reload()
    await page.wait_for_selector("[data-testid=home]")
    await page.keyboard.press("Tab")
    assert await skip.text_content() == "Skip to the content"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"
    assert await page.evaluate("window.scrollY") == 0
    await axe(page, "Start, by keyboard")
    await page.context.close()
