"""A classroom PC shared by a class: one pupil logs out, the next logs in on the same browser.
Nothing the first typed — a chat draft, a journal comment, a TwinMail draft, a post not yet
acknowledged — stays on the machine for the next one to see or, worse, to send as their own."""

from __future__ import annotations

from realtime.policy import Area
from tests.browser.pages import TIMEOUT, open_room
from tests.conftest import PASSWORD


async def log_in(page, port: int, user) -> None:
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.fill("#username", user.username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')


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
