"""A newcomer's way in, through the page (issue 23, point 3): an invitation seen live on the Start
screen and accepted; /join with an invitation code (a printed card's address) making the account
and landing on Start; a locked-out login told how long to wait and to ask the teacher, in the
reader's language, without saying whether the username exists; and My account — password,
profile, the export downloaded, every session ended, the account deleted — with what pupils and
a project's last teacher admin may not do there, refused by the server too."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from pathlib import Path

from tests.browser.pages import TIMEOUT, open_page
from tests.conftest import PASSWORD, login

NEW_PASSWORD = "a brand new river phrase"


def project_name(world) -> str:
    return f"Project {world.slug[2:]}"  # tests/conftest.py's make_world


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def no_overflow(page) -> None:
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the screen"


async def small_targets(page, selector: str) -> list[str]:
    """The controls under `selector` less than 44 px high (a finger's size) on a phone."""
    return await page.evaluate(
        """sel => [...document.querySelectorAll(sel)].filter(e => e.offsetParent && e.getBoundingClientRect().height < 44)
                  .map(e => e.outerHTML.slice(0, 80))""", selector)


async def test_an_invited_teacher_sees_the_invitation_live_and_accepts_it(browser, server, world, make_world, http, screenshot, axe):
    outsider = world.users["outsider"]
    page = await open_page(browser, server.port, outsider)
    # After login: Start, not an empty room — and for someone in no project, what happens next.
    await page.wait_for_selector("[data-testid=home] [data-testid=home-empty]")
    assert page.url.endswith("#/home")
    assert await page.locator("nav .nav-top a").first.get_attribute("data-testid") == "nav-home"
    await screenshot(page, "outsider-home-empty")
    await axe(page, "Start, in no project yet")

    admin = bearer(await login(http, world.users["teacher_admin"].username))
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"username": outsider.username, "role": "teacher_member", "note": "welcome aboard"})
    assert r.status_code == 201, r.text
    invitation = page.locator("[data-testid=invitations] .invitation", has_text="welcome aboard")
    await invitation.wait_for()  # live: the `invitation` frame, no reload
    assert "as a teacher" in await invitation.text_content()
    assert "Teacher Admin" in await invitation.text_content()
    await screenshot(page, "outsider-home-invitation")
    await axe(page, "Start with an invitation")
    # Nobody else is told, and a pupil may not accept it for him.
    pupil = bearer(await login(http, world.users["pupil_member"].username))
    assert (await http.get("/api/invitations", headers=pupil)).json() == {"invitations": []}
    assert (await http.post(f"/api/invitations/{r.json()['invitation']['id']}/accept", headers=pupil)).status_code in (403, 404)

    await invitation.locator("[data-action=accept]").click()
    await page.wait_for_selector(f"nav h2:has-text('{project_name(world)}')")  # the project is in the menu
    card = page.locator(f".home-project[data-space='{world.space_id}']")
    await card.wait_for()
    assert "You are a teacher in this project." in await card.text_content()
    assert await card.locator(".rooms.write a").count() >= 1  # where to write first
    assert await page.locator("[data-testid=invitations] .invitation").count() == 0
    await screenshot(page, "teacher-home-project")
    await axe(page, "Start with a project")

    # An invitation coming while another screen is open is not missed: a notice, then Start lists it.
    other = await make_world()
    await page.click("[data-testid=nav-account]")
    await page.wait_for_selector("[data-testid=account]")
    admin2 = bearer(await login(http, other.users["teacher_admin"].username))
    r = await http.post(f"/api/spaces/{other.space_id}/invitations", headers=admin2,
                        json={"username": outsider.username, "role": "visitor"})
    assert r.status_code == 201, r.text
    await page.wait_for_selector(f"[data-testid=toasts] p:has-text('{project_name(other)}')")
    await page.click("[data-testid=nav-home]")
    second = page.locator("[data-testid=invitations] .invitation", has_text=project_name(other))
    await second.locator("[data-action=decline]").click()
    await page.locator("dialog[open] [data-action=confirm]").click()
    await second.wait_for(state="detached")
    assert await page.locator(f"nav h2:has-text('{project_name(other)}')").count() == 0
    assert (await http.get("/api/invitations", headers=bearer(await login(http, outsider.username)))).json()["invitations"] == []
    await page.context.close()


async def test_a_newcomer_joins_with_a_code_on_a_phone_and_lands_on_start(browser, server, world, make_world, http, screenshot, axe):
    admin = bearer(await login(http, world.users["teacher_admin"].username))
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin,
                        json={"role": "visitor", "label": "Mme Durand, a parent"})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB", is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(f"http://127.0.0.1:{server.port}/join?code={code}")
    await page.wait_for_selector("[data-testid=join]")
    assert await page.input_value("#join-code") == code  # the printed card's QR code filled it in
    assert code not in page.url and page.url.endswith("/join")  # … and it left the address at once
    await no_overflow(page)
    assert await small_targets(page, "[data-testid=join] button, [data-testid=join] label.choice") == []
    await screenshot(page, "newcomer-join-phone")
    await axe(page, "/join")

    username = f"c.durand-{secrets.token_hex(3)}"
    await page.fill("#join-name", "C. Durand")
    await page.fill("#join-username", username)
    await page.fill("#join-password", "a long enough phrase")
    await page.fill("#join-repeat", "a long enough phrase")
    await page.fill("#join-code", "mistyped-code-123")  # a wrong code first: said in words
    await page.click("[data-testid=join-submit]")
    await page.wait_for_selector("[data-testid=join-error]:has-text('This code does not work')")
    # Said right under the button, on screen, and the focus back on the button (not lost).
    assert await page.evaluate("document.querySelector('[data-testid=join-submit]').nextElementSibling.id") == "join-error"
    box = await page.locator("[data-testid=join-error]").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 740
    assert await page.evaluate("document.activeElement.dataset.testid") == "join-submit"
    await page.fill("#join-code", code)
    await page.click("[data-testid=join-submit]")

    await page.wait_for_selector(f".home-project[data-space='{world.space_id}']")
    assert page.url.endswith("/#/home")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    assert "You are a visitor in this project." in await page.text_content(".home-project")
    assert await page.locator("[data-testid=toasts] p:has-text('Welcome to')").count() == 1
    await no_overflow(page)
    assert await small_targets(page, ".home-project a.link, nav .nav-top a.link") == []
    await screenshot(page, "newcomer-home-phone")
    await axe(page, "Start after joining")
    stored = await page.evaluate("JSON.stringify(Object.entries(localStorage))")
    assert code not in stored  # never kept on the machine
    # The account is real: it logs in, and the code is used up.
    assert (await http.post("/api/login", json={"username": username, "password": "a long enough phrase"})).status_code == 200
    http.cookies.clear()
    again = await http.post("/api/invitations/redeem", json={"code": code, "username": "someone-else", "name": "X",
                                                             "password": "another long phrase"})
    assert again.status_code == 404

    # A second card, for another project: signed in now, the page joins with this account.
    other = await make_world()
    admin2 = bearer(await login(http, other.users["teacher_admin"].username))
    code2 = (await http.post(f"/api/spaces/{other.space_id}/invitations", headers=admin2, json={"role": "visitor"})).json()["code"]
    await page.goto(f"http://127.0.0.1:{server.port}/join?code={code2}")
    await page.wait_for_selector("[data-testid=join]:has-text('You are logged in as C. Durand')")
    await page.click("[data-testid=join-submit]")
    await page.wait_for_selector(f".home-project[data-space='{other.space_id}']")
    assert await page.locator(".home-project").count() == 2
    await context.close()


async def test_someone_with_an_account_logs_in_and_joins_with_a_code(browser, server, world, http):
    admin = bearer(await login(http, world.users["teacher_admin"].username))
    code = (await http.post(f"/api/spaces/{world.space_id}/invitations", headers=admin, json={"role": "teacher_member"})).json()["code"]
    context = await browser.new_context(locale="fr-FR")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(f"http://127.0.0.1:{server.port}/join?code={code}")
    await page.focus("input[name=join-mode][value=new]")
    await page.keyboard.press("ArrowDown")  # the keyboard chooses; the focus stays on the choice
    assert await page.evaluate("document.activeElement.value") == "existing"
    assert await page.is_hidden("#join-name")  # the other set of fields is put away
    await page.fill("#join-login-username", world.users["outsider"].username)
    await page.fill("#join-login-password", PASSWORD)
    await page.click("[data-testid=join-submit]")
    card = page.locator(f".home-project[data-space='{world.space_id}']")
    await card.wait_for()
    assert "Tu es enseignant dans ce projet." in await card.text_content()
    assert await page.locator(f"nav h2:has-text('{project_name(world)}')").count() == 1
    await context.close()


async def test_a_locked_out_pupil_is_told_how_long_and_to_ask_their_teacher(browser, server, world, http, screenshot, axe):
    pupil = world.users["pupil_member"]
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.wait_for_selector("form.login")

    async def try_login(username: str, password: str) -> str:
        await page.evaluate("document.querySelector('#login-error').textContent = ''")
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("form.login button[type=submit]")
        await page.wait_for_selector("#login-error:not(:empty)")
        text = await page.text_content("#login-error")
        await page.wait_for_timeout(450)  # past the back-off between tries (0.2 s, 0.4 s here)
        return text

    for _ in range(4):
        assert await try_login(pupil.username, "not my password") == "Wrong username or password."
    said = await try_login(pupil.username, "not my password")  # the fifth locks, and says so at once
    assert "blocked for 5 minutes" in said and "ask your teacher" in said, said
    said = await try_login(pupil.username, PASSWORD)  # the right one, too late
    assert "blocked for" in said and "ask your teacher" in said, said
    await screenshot(page, "pupil-login-locked")
    await axe(page, "the login page, locked out")
    await page.select_option("[data-testid=lang]", "fr")  # said again in the reader's language
    await page.wait_for_selector("#login-error:has-text('bloquée')")
    french = await page.text_content("#login-error")
    assert "bloquée pendant 5 minutes" in french and "demande à ton enseignant" in french, french
    await screenshot(page, "pupil-login-locked-fr")
    # The server still refuses the right password; the page never said the username exists: an
    # unknown one, locked the same way (five tries at once, over HTTP), gets the very same words.
    assert (await http.post("/api/login", json={"username": pupil.username, "password": PASSWORD})).status_code == 429
    nobody = f"nobody-{secrets.token_hex(3)}"
    tries = await asyncio.gather(*(http.post("/api/login", json={"username": nobody, "password": "not mine"}) for _ in range(5)))
    assert {t.status_code for t in tries} <= {401, 429}
    unknown_words = await try_login(nobody, PASSWORD)
    assert "bloquée pendant" in unknown_words
    pupil_words = await try_login(pupil.username, PASSWORD)
    assert re.sub(r"\d+", "#", unknown_words) == re.sub(r"\d+", "#", pupil_words)
    await context.close()


async def test_my_account_password_profile_export_and_logging_out_everywhere(browser, server, world, http, screenshot, axe):
    teacher = world.users["teacher_member"]
    page = await open_page(browser, server.port, teacher)
    await page.click("[data-testid=nav-account]")
    await page.wait_for_selector("[data-testid=account-profile-form]")
    assert page.url.endswith("#/account")
    await screenshot(page, "teacher-account")
    await axe(page, "My account")

    # The password: the new one twice; this page stays signed in (a new session), the old one is gone.
    await page.fill("#account-current", PASSWORD)
    await page.fill("#account-new", NEW_PASSWORD)
    await page.fill("#account-again", NEW_PASSWORD)
    await page.click("[data-testid=account-password-form] button[type=submit]")
    await page.wait_for_selector("[data-testid=toasts] p:has-text('Password changed')")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    await page.wait_for_timeout(500)
    assert await page.locator("form.login").count() == 0
    assert (await http.post("/api/login", json={"username": teacher.username, "password": PASSWORD})).status_code == 401
    token = await login(http, teacher.username, NEW_PASSWORD)

    # The profile.
    await page.fill("#profile-about", "J'aime la rivière.")
    await page.check(".languages input[value=fr]")
    await page.check(".languages input[value=pl]")
    await page.fill("#profile-interests", "football, drawing")
    await page.click("[data-testid=account-profile-form] button[type=submit]")
    await page.wait_for_selector("[data-testid=toasts] p:has-text('Profile saved')")
    profile = (await http.get("/api/profile", headers=bearer(token))).json()
    assert profile["about"] == "J'aime la rivière."
    assert sorted(profile["languages"]) == ["fr", "pl"] and profile["interests"] == ["football", "drawing"]

    # The export, downloaded as a whole JSON document.
    async with page.expect_download() as info:
        await page.click("[data-testid=account-export]")
    download = await info.value
    assert download.suggested_filename == f"twinhub-export-{teacher.id}.json"
    exported = json.loads(Path(await download.path()).read_text("utf-8"))
    assert exported["format"] == "twinhub.export.v1"
    assert exported["account"]["username"] == teacher.username and exported["profile"]["about"] == "J'aime la rivière."

    # Every session ends — the one over HTTP too — and the login page says why.
    await page.click("[data-testid=account-logout-everywhere]")
    await page.locator("dialog[open] [data-action=confirm]").click()
    await page.wait_for_selector("form.login #login-error:has-text('logged out everywhere')")
    assert (await http.get("/api/me", headers=bearer(token))).status_code == 401
    await page.context.close()


async def test_deleting_an_account_and_who_may_not(browser, server, world, http, screenshot, axe):
    # A throwaway visitor deletes their account, after the dialog said what it means.
    visitor = world.users["visitor"]
    page = await open_page(browser, server.port, visitor)
    await page.click("[data-testid=nav-account]")
    await page.click("[data-testid=account-delete]")
    box = page.locator("[data-testid=delete-dialog]")
    await box.wait_for()
    words = await box.text_content()
    assert "cannot be brought back" in words and project_name(world) in words and "a former member" in words
    await screenshot(page, "visitor-account-delete")
    await axe(page, "the delete dialog")
    await box.locator("input[type=password]").fill("not my password")
    await box.locator("[data-action=confirm]").click()
    box = page.locator("[data-testid=delete-dialog]")
    await box.locator("p.error:has-text('not your current password')").wait_for()  # asked again
    await box.locator("input[type=password]").fill(PASSWORD)
    await box.locator("[data-action=confirm]").click()
    await page.wait_for_selector("form.login #login-error:has-text('Your account was deleted')")
    assert (await http.post("/api/login", json={"username": visitor.username, "password": PASSWORD})).status_code == 401
    await page.context.close()

    # A pupil has neither a password form nor a delete button — and the server refuses both.
    pupil = world.users["pupil_member"]
    page = await open_page(browser, server.port, pupil)
    await page.click("[data-testid=nav-account]")
    await page.wait_for_selector("[data-testid=account-pupil-password]")
    assert await page.locator("[data-testid=account-pupil-delete]").count() == 1
    assert await page.locator("[data-testid=account-password-form], [data-testid=account-delete]").count() == 0
    await page.wait_for_selector("[data-testid=account-profile-form]")  # a pupil writes their profile
    await screenshot(page, "pupil-account")
    await axe(page, "a pupil's account")
    await page.set_viewport_size({"width": 360, "height": 740})  # and on a phone
    await no_overflow(page)
    assert await small_targets(page, "[data-testid=account] button, [data-testid=account] label.choice") == []
    await screenshot(page, "pupil-account-phone")
    token = bearer(await login(http, pupil.username))
    r = await http.post("/api/account/password", headers=token, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert r.status_code == 403
    assert (await http.post("/api/account/delete", headers=token, json={"password": PASSWORD})).status_code == 403
    await page.context.close()

    # The project's only teacher admin is told to name another one first; the server agrees.
    admin = world.users["teacher_admin"]
    page = await open_page(browser, server.port, admin)
    await page.click("[data-testid=nav-account]")
    note = page.locator("[data-testid=account-last-admin]")
    await note.wait_for()
    assert project_name(world) in await note.text_content()
    assert await page.locator("[data-testid=account-delete]").count() == 0
    token = bearer(await login(http, admin.username))
    assert (await http.post("/api/account/delete", headers=token, json={"password": PASSWORD})).status_code == 403
    await page.context.close()


async def test_join_is_the_same_page_with_the_same_policy(http):
    page, join = await http.get("/"), await http.get("/join?code=anything-at-all")
    assert join.status_code == 200 and join.text == page.text
    assert join.headers["content-security-policy"] == page.headers["content-security-policy"]
    assert join.headers["referrer-policy"] == "no-referrer"  # the code in the address goes nowhere else
    assert (await http.post("/join")).status_code == 405
