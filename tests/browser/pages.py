"""Driving the page as a person would — log in, open a room, type, answer a dialog — for every
browser test."""

from __future__ import annotations

import asyncio

from tests.conftest import PASSWORD, login

TIMEOUT = 10_000  # ms, for each wait on the page


async def open_page(browser, port: int, user, *, lang: str = "en-GB", answers: str | None = "because"):
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale=lang)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    page.dialogs = []  # type: ignore[attr-defined]

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        asyncio.ensure_future(dialog.accept(answers) if answers is not None else dialog.dismiss())

    page.on("dialog", on_dialog)
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.fill("#username", user.username)
    await page.fill("#password", PASSWORD)
    await page.click("form.login button[type=submit]")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    return page


async def open_menu(page) -> None:
    """On a phone the menu folds behind a button: unfold it (nothing to do on a wide screen)."""
    toggle = page.locator("[data-testid=menu-toggle]")
    if await toggle.is_visible() and await toggle.get_attribute("aria-expanded") != "true":
        await toggle.click()


async def open_room(page, channel: str) -> None:
    await open_menu(page)
    await page.click(f'nav [data-channel="{channel}"]')
    await page.wait_for_selector(f'[data-testid=room][data-channel="{channel}"]')
    await page.wait_for_timeout(300)  # its subscription answered (history and presence in)


async def send(page, text: str) -> None:
    await page.fill("#composer", text)
    await page.press("#composer", "Enter")


async def answer(page, text: str | None = None) -> None:
    """Fills the open dialog's first field (when given text) and confirms it."""
    box = page.locator("dialog[open]")
    await box.wait_for()
    if text is not None:
        await box.locator("textarea, input").first.fill(text)
    await box.locator("[data-action=confirm]").click()
    await box.wait_for(state="detached")


def message(page, text: str):
    return page.locator("[data-testid=messages] .message", has_text=text)


async def log_in(page, port: int, user, *, at: str = "/") -> None:
    """Logs in on the page as it stands (a context made by the test: a phone, a locale), by the
    keyboard, and waits for the connection."""
    await page.goto(f"http://127.0.0.1:{port}{at}")
    await page.fill("#username", user.username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')


async def bearer(http, user) -> dict[str, str]:
    """The Authorization header of a fresh session of `user`, for the HTTP calls a test makes."""
    return {"authorization": f"Bearer {await login(http, user.username)}"}

