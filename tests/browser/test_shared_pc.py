"""A classroom PC shared by a class: one pupil logs out, the next logs in on the same browser.
Nothing the first typed — a chat draft, a journal comment, a TwinMail draft, a post not yet
acknowledged — stays on the machine for the next one to see or, worse, to send as their own."""

from __future__ import annotations

from realtime.policy import Area
from tests.browser.pages import TIMEOUT, log_in, open_room
from tests.conftest import PASSWORD


async def test_the_next_pupil_on_a_shared_pc_finds_nothing_of_the_last_one(browser, server, world, screenshot, axe):
    first, second = world.users["pupil_member"], world.users["pupil_admin"]
    chat = world.channel(Area.CHAT)
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await log_in(page, server.port, first)
    await open_room(page, chat)
    await page.fill("#composer", "my secret crush is")
    await page.wait_for_function(
        "id => Object.keys(localStorage).some(k => k.startsWith(`twinhub.draft.${id}.`))", arg=first.id
    )
    # A post that never got its answer, as a dropped connection leaves one.
    await page.evaluate(
        """id => localStorage.setItem(`twinhub.pending.${id}`, JSON.stringify([["c-1",
            {type: "post", channel: "%s", text: "sent as whoever logs in next", client_id: "c-1"}]]))""" % chat,
        first.id,
    )
    await page.click("header button:has-text('Log out')")
    await page.wait_for_selector("form.login")
    left = await page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('twinhub.'))")
    assert not [k for k in left if f".{first.id}." in f"{k}." ], left  # only the device's own settings

    await log_in(page, server.port, second)
    await open_room(page, chat)
    assert await page.input_value("#composer") == ""
    await page.wait_for_timeout(500)  # time for a stray pending post to go out, if one were kept
    assert await page.locator("[data-testid=messages] .message", has_text="sent as whoever").count() == 0
    await axe(page, "a room after another pupil logged out")
    await screenshot(page, "shared-pc-next-pupil")
    await context.close()


async def test_logging_out_on_a_phone_leaves_the_login_page_for_the_next_one(browser, server, world, axe):
    """The class tablet: a pupil logs out from the folded menu; the next finds the login form (not
    a blank page) and, logged in, starts at Start — not where the last one was."""
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB", is_mobile=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await log_in(page, server.port, world.users["pupil_member"])
    await page.evaluate(f"location.hash = '#/mail/{world.space_id}'")
    await page.wait_for_selector("[data-testid=mail]")
    await page.click("[data-testid=menu-toggle]")
    await page.click("header button.logout")
    await page.wait_for_selector("#username", state="visible")
    assert await page.evaluate("location.hash") == ""
    await axe(page, "the login page after a logout on a phone")
    await page.fill("#username", world.users["pupil_admin"].username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector("[data-testid=home]")
    await context.close()
