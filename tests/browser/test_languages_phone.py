"""Every language of the page on a phone (390 × 844, the browser in that language): Start, a room
(with a message and its actions open), TwinMail, Members, Project settings and the folded menu
opened, as a teacher admin sees them. Nothing is wider than the screen, nothing scrolls sideways,
and no button or link cuts its words (docs/i18n.md: long words overflow buttons on a phone).

A screenshot is saved for each screen that fails (`phone-<tag>-<screen>`) and, for every
language, one of the room (`phone-<tag>-room`), to look at as a pupil would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from realtime.policy import Area
from tests.browser.pages import TIMEOUT, log_in, open_menu, send

STATIC = Path(__file__).resolve().parents[2] / "realtime" / "web" / "static"
LANGUAGES = list(json.loads((STATIC / "languages.json").read_text("utf-8")))
PHONE = {"width": 390, "height": 844}
SCREENS = ("home", "menu", "room", "mail", "members", "project")

# What sticks out, as the page itself measures it. The page: not wider than the window (in Arabic
# too, where it would grow to the left). A scroll area (the message list, a table): no sideways
# scrolling. A button or link that has a box of its own (an inline link wraps with its line): its
# words within its box.
MEASURE = """
() => {
  const found = [];
  const name = (el) => {
    const what = el.getAttribute("data-testid") || el.id || [...el.classList].join(".");
    const text = (el.innerText || el.getAttribute("aria-label") || "").trim().replace(/\\s+/g, " ").slice(0, 60);
    return `<${el.tagName.toLowerCase()}${what ? " " + what : ""}> "${text}"`;
  };
  const shown = (el) => el.checkVisibility() && el.getBoundingClientRect().width > 1;
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    // The deepest boxes past either edge: those that make the page wider.
    const out = [...document.querySelectorAll("body *")].filter((el) => {
      if (!shown(el) || el.closest(".skip")) return false;
      const r = el.getBoundingClientRect();
      return r.right > window.innerWidth + 1 || r.left < -1;
    });
    const deepest = out.filter((el) => !out.some((other) => other !== el && el.contains(other)));
    found.push(`the page is ${root.scrollWidth} px wide on a ${window.innerWidth} px screen, past its edge: `
      + deepest.slice(0, 6).map((el) => {
        const r = el.getBoundingClientRect();
        return `${name(el)} (${Math.round(r.left)}..${Math.round(r.right)} px)`;
      }).join(", "));
  }
  for (const el of document.querySelectorAll("#app *")) {
    if (!shown(el)) continue;
    const style = getComputedStyle(el);
    if (["auto", "scroll"].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name(el)} scrolls sideways: ${el.scrollWidth} px in ${el.clientWidth} px`);
    }
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button], summary")) {
    if (!shown(el) || getComputedStyle(el).display === "inline") continue;
    if (el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name(el)} cut: ${el.scrollWidth} px of words in ${el.clientWidth} px`);
    }
  }
  return found;
}
"""


@pytest.mark.parametrize("tag", LANGUAGES)
async def test_every_language_fits_a_phone(tag, browser, server, world, screenshot):
    sid = world.space_id
    address = {
        "home": "#/home", "room": f"#/room/{world.rooms[Area.TEACHERS_ROOM]}", "mail": f"#/mail/{sid}",
        "members": f"#/members/{sid}", "project": f"#/project/{sid}/project",
    }
    context = await browser.new_context(viewport=PHONE, locale=tag)
    try:
        page = await context.new_page()
        page.set_default_timeout(TIMEOUT)
        await log_in(page, server.port, world.users["teacher_admin"])
        assert await page.evaluate("document.documentElement.lang") == tag
        problems = []
        for screen in SCREENS:
            if screen == "menu":  # the shell's folded menu, opened over Start: the language, logging out
                await open_menu(page)
                await page.wait_for_selector("nav#menu a.link")
            else:
                await page.goto(f"http://127.0.0.1:{server.port}/{address[screen]}")
                await page.wait_for_selector(f"main#main > [data-testid={screen}]")
            if screen == "room":  # a message, and its actions open under it
                await send(page, "Hello from the phone!")
                await page.locator(".message [data-testid=more]").first.click()
            await page.wait_for_timeout(200)  # its lists in
            found = await page.evaluate(MEASURE)
            problems += [f"{screen}: {p}" for p in found]
            if found or screen == "room":
                await screenshot(page, f"phone-{tag}-{screen}")
        assert not problems, f"{tag} on a phone:\n" + "\n".join(problems)
    finally:
        await context.close()
