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
    assert (await page.title()).endswith("— TwinHub")  # the screen's name first, for tabs and history
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


async def test_an_error_is_written_under_the_form_it_answers(browser, server, world, axe):
    """A refusal is announced (a toast) and written under the form, where the user is looking,
    until they change what they typed: a pupil admin's new room with an invisible character."""
    page = await open_page(browser, server.port, world.users["pupil_admin"])
    await page.goto(f"http://127.0.0.1:{server.port}/#/new-room/{world.space_id}")
    await page.fill("#project-room-name", "Art\u200bClub")
    await page.click("[data-testid=room-create] button[type=submit]")  # by the mouse: the button is disabled meanwhile
    line = page.locator("[data-testid=room-create] [data-testid=form-error]")
    await line.wait_for()
    toast = await page.text_content("[data-testid=toasts] p")
    assert toast and (await line.text_content()) == toast
    await axe(page, "a form with its error")
    await page.fill("#project-room-name", "Art Club")  # changing it clears the line
    assert await line.text_content() == ""
    await page.context.close()
