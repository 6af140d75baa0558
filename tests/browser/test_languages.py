"""Every language of the page, in Chromium: a Polish pupil reads it in Polish with 24-hour times;
the language chosen from the menu (each language by its own name) follows the account to another
computer; Arabic turns the page right to left; a Polish class's login sheet is printed in Polish
with usernames transliterated from the pupils' names; and every screen, in Polish, German, Greek
and Arabic, shows no English sentence and is saved as a screenshot (docs/i18n.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from realtime.policy import Area
from tests.browser.pages import bearer, log_in, open_page, open_room, send

STATIC = Path(__file__).resolve().parents[2] / "realtime" / "web" / "static"
LANGUAGES = json.loads((STATIC / "languages.json").read_text("utf-8"))


def catalogue(tag: str) -> dict:
    return json.loads((STATIC / "locales" / f"{tag}.json").read_text("utf-8"))


ENGLISH = catalogue("en")


def english_sentences_on(text: str, tag: str) -> list[str]:
    """English sentences of the catalogue (whole ones, long enough not to be a name) that the
    language says otherwise but that are on screen all the same."""
    own = catalogue(tag)
    return sorted(
        v for k, v in ENGLISH.items()
        if isinstance(v, str) and len(v) >= 16 and "{" not in v and own.get(k) != v and v in text
    )


async def test_a_polish_pupil_reads_polish_with_24_hour_times_and_keeps_the_language_chosen(browser, server, world, http, screenshot, axe):
    pl = catalogue("pl")
    pupil = await open_page(browser, server.port, world.users["pupil_member"], lang="pl-PL")
    assert await pupil.evaluate("document.documentElement.lang") == "pl"
    assert await pupil.evaluate("document.documentElement.dir") == "ltr"
    await open_room(pupil, world.channel(Area.PUPILS_CORNER))
    await send(pupil, "Cześć wszystkim!")
    posted = pupil.locator(".message", has_text="Cześć wszystkim!")
    await posted.wait_for()
    stamp = posted.locator("time[datetime^='2']").first  # once the server took it ("sending…" until then)
    await stamp.wait_for()
    shown = (await stamp.text_content()).strip()
    assert re.fullmatch(r"\d{2}:\d{2}", shown), shown  # 24-hour, as Poland writes it (not "2:05 PM")
    assert pl["logout"] == (await pupil.locator("button.logout").text_content()).strip()
    assert english_sentences_on(await pupil.inner_text("body"), "pl") == []
    await screenshot(pupil, "lang-pl-pupil-room")
    await axe(pupil, "a room in Polish")

    # The menu names each language in its own words, marked with its language.
    options = await pupil.eval_on_selector_all("[data-testid=lang] option", "os => os.map(o => [o.value, o.lang, o.textContent])")
    assert options == [[tag, tag, name] for tag, name in LANGUAGES.items()]
    assert len(options) >= 33

    # Chosen from the menu: kept by the server, so the next login elsewhere (an English browser) has it.
    await pupil.select_option("[data-testid=lang]", "de")
    await pupil.wait_for_function("() => document.documentElement.lang === 'de'")
    saved = None
    for _ in range(50):
        saved = (await http.get("/api/me", headers=await bearer(http, world.users["pupil_member"]))).json()["user"]["language"]
        if saved == "de":
            break
        await pupil.wait_for_timeout(100)
    assert saved == "de"
    await pupil.context.close()
    elsewhere = await open_page(browser, server.port, world.users["pupil_member"], lang="en-US")
    await elsewhere.wait_for_function("() => document.documentElement.lang === 'de'")
    assert (await elsewhere.locator("button.logout").text_content()).strip() == catalogue("de")["logout"]
    # Logging out leaves a shared computer in its own browser's language for the next pupil.
    await elsewhere.click("button.logout")
    await elsewhere.wait_for_selector("form.login")
    assert await elsewhere.evaluate("document.documentElement.lang") == "en"
    await elsewhere.context.close()


async def test_arabic_turns_the_page_right_to_left(browser, server, world, http, screenshot, axe):
    # Chosen on the login page of an English browser: the page turns at once, and the account
    # keeps the choice once logged in.
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.select_option("[data-testid=lang]", "ar")
    await page.wait_for_function("() => document.documentElement.dir === 'rtl'")
    await screenshot(page, "lang-ar-login")
    await log_in(page, server.port, world.users["teacher_admin"])
    assert await page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
    headers = await bearer(http, world.users["teacher_admin"])
    for _ in range(50):
        if (await http.get("/api/me", headers=headers)).json()["user"]["language"] == "ar":
            break
        await page.wait_for_timeout(100)
    assert (await http.get("/api/me", headers=headers)).json()["user"]["language"] == "ar"
    await open_room(page, world.channel(Area.ACTIVITIES))
    await send(page, "مرحبا بالجميع")
    await page.locator(".message", has_text="مرحبا بالجميع").wait_for()
    # The menu stands on the right, the room on its left; a message's text starts at the right.
    nav = await page.locator("nav#menu").bounding_box()
    main = await page.locator("main#main").bounding_box()
    assert nav["x"] > main["x"], (nav, main)
    align = await page.eval_on_selector(".message", "m => getComputedStyle(m).direction")
    assert align == "rtl"
    assert english_sentences_on(await page.inner_text("body"), "ar") == []
    await screenshot(page, "lang-ar-room")
    await axe(page, "a room in Arabic")
    await page.context.close()


async def test_a_polish_class_gets_its_sheet_in_polish_with_usernames_from_its_names(browser, server, world, screenshot):
    pl = catalogue("pl")
    page = await open_page(browser, server.port, world.users["teacher_admin"], lang="fr-FR")
    # The teacher (reading French) makes Polish the project's language in its settings.
    await page.goto(f"http://127.0.0.1:{server.port}/#/project/{world.space_id}/project")
    form = page.locator("[data-testid=project-language]")
    await form.locator("select").select_option("pl")
    await form.locator("button[type=submit]").click()
    await page.locator("[data-testid=toasts]", has_text=catalogue("fr")["project.language.saved"]).wait_for()

    await page.goto(f"http://127.0.0.1:{server.port}/#/members/{world.space_id}")
    await page.wait_for_selector("#pupil-names")
    await page.wait_for_function("() => document.querySelector('#pupil-language').value === 'pl'")  # the project's, at once
    await page.fill("#pupil-names", "Łucja Ślusarczyk\nŻaneta Wąż\nJürgen Groß")
    await page.click("form.members-pupils button[type=submit]")
    await page.click("[data-action=create-pupils]")
    sheet = page.locator("[data-testid=sheet][data-kind=pupils]")
    await sheet.wait_for()
    cards = sheet.locator("[data-testid=login-card]")
    assert await cards.count() == 3
    usernames = [(await cards.nth(i).locator("[data-field=username]").text_content()).strip() for i in range(3)]
    assert [u.rsplit("-", 1)[0] for u in usernames] == ["lucja.s", "zaneta.w", "jurgen.g"]
    labels = [pl["members.card.username"], pl["members.card.password"], pl["members.card.address"]]
    assert await cards.first.locator("dt").all_text_contents() == labels
    assert (await cards.first.locator(".print-how").text_content()) == pl["members.card.how"]
    assert await page.get_attribute(".print-cards", "lang") == "pl"
    await page.emulate_media(media="print")
    await screenshot(page, "lang-pl-login-sheet")
    await page.emulate_media(media="screen")
    await page.context.close()


async def test_a_language_the_browser_has_no_dates_for_gets_numeric_dates_and_a_24_hour_clock(browser, server, world):
    """Chromium carries date data for its own interface's languages only: an Icelandic reader
    gets 07/12/2026 and 14:05, not "Dec 7, 2026, 2:05 PM"; a Bokmål browser (nb-NO) reads Norwegian."""
    page = await open_page(browser, server.port, world.users["pupil_member"], lang="is-IS")
    assert await page.evaluate("document.documentElement.lang") == "is"
    await open_room(page, world.channel(Area.PUPILS_CORNER))
    await send(page, "Halló!")
    stamp = page.locator(".message", has_text="Halló!").locator("time[datetime^='2']").first
    await stamp.wait_for()
    assert re.fullmatch(r"\d{2}:\d{2}", (await stamp.text_content()).strip())
    text = await page.inner_text("body")
    english = ("January February March April May June July August September October November December"
               " Monday Tuesday Wednesday Thursday Friday Saturday Sunday AM PM").split()
    assert [w for w in english if re.search(rf"\b{w}\b", text)] == []
    await page.context.close()
    page = await open_page(browser, server.port, world.users["pupil_member"], lang="nb-NO")
    assert await page.evaluate("document.documentElement.lang") == "no"
    await page.context.close()


SCREENS = ("home", "room", "journal", "feed", "mail", "moderation", "members", "project", "account")


async def test_every_screen_in_polish_german_greek_and_arabic(browser, server, world, http, screenshot):
    me = (await http.get("/api/me", headers=await bearer(http, world.users["teacher_admin"]))).json()
    [space] = [s for s in me["spaces"] if s["id"] == world.space_id]
    journal = next(r["id"] for r in space["rooms"] if r["kind"] == "journal")
    sid = world.space_id
    address = {
        "home": "#/home", "room": f"#/room/{world.rooms[Area.TEACHERS_ROOM]}", "journal": f"#/room/{journal}",
        "feed": f"#/feed/{sid}", "mail": f"#/mail/{sid}", "moderation": f"#/moderation/{sid}",
        "members": f"#/members/{sid}", "project": f"#/project/{sid}/project", "account": "#/account",
    }
    for tag, browser_locale in (("pl", "pl-PL"), ("de", "de-DE"), ("el", "el-GR"), ("ar", "ar")):
        page = await open_page(browser, server.port, world.users["teacher_admin"], lang=browser_locale)
        assert await page.evaluate("document.documentElement.lang") == tag
        for screen in SCREENS:
            await page.goto(f"http://127.0.0.1:{server.port}/{address[screen]}")
            await page.wait_for_selector("main#main > *")
            await page.wait_for_timeout(400)  # its lists in
            assert await page.evaluate("document.documentElement.lang") == tag
            leaked = english_sentences_on(await page.inner_text("body"), tag)
            assert leaked == [], f"{tag} {screen}: {leaked}"
            await screenshot(page, f"lang-{tag}-{screen}")
        await page.context.close()
