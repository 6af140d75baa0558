"""The Members console (screens/members.js), in a real Chromium against a real server: a teacher
admin invites a teacher by username (the invitee, a Python client, is told at once) and makes a
one-time invitation code; makes pupils' accounts from a pasted list and from a file, duplicates
flagged before anything is sent, then prints the login sheet (the cards alone) and a pupil logs in
with a printed password; resets a pupil's password, changes a role, removes a pupil and adds them
back; unlocks a locked-out pupil, who logs in at once. A teacher member has the screen with what
they may do (pupils' accounts, the pupils they invited), no role change nor removal of others, and
the server refuses those anyway; pupils and visitors have no such screen. Every sentence the page
asks the catalogue for gets the placeholders it needs."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from pathlib import Path

from protocol import InvitationNotice
from storage import audit
from tests.browser.pages import bearer, open_page
from tests.client import Client
from tests.conftest import PASSWORD, login

# Whatever is visible on the page (an element with its own text, or a drawing) outside the cards.
VISIBLE_OUTSIDE_CARDS = """() => [...document.querySelectorAll('body *')].filter(el => {
  if (el.closest('.print-card')) return false;
  if (!el.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
  const r = el.getBoundingClientRect();
  if (r.width === 0 || r.height === 0) return false;
  const ownText = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  const drawn = ['IMG', 'SVG', 'INPUT', 'BUTTON', 'SELECT', 'TEXTAREA'].includes(el.tagName.toUpperCase());
  const frame = getComputedStyle(el).borderTopStyle !== 'none' && parseFloat(getComputedStyle(el).borderTopWidth) > 0;
  return ownText || drawn || frame;
}).map(el => el.tagName + '.' + el.className)"""


async def open_members(page, space_id: int) -> None:
    await page.click("[data-testid=nav-members]")
    await page.wait_for_selector("[data-testid=member-list]")
    assert page.url.endswith(f"#/members/{space_id}")


async def confirm_dialog(page, testid: str) -> str:
    """Confirms the open dialog (named by its test id) and gives back what it said."""
    box = page.locator(f"dialog[open][data-testid={testid}]")
    await box.wait_for()
    said = await box.text_content()
    await box.locator("[data-action=confirm]").click()
    await box.wait_for(state="detached")
    return said


async def test_a_teacher_admin_invites_by_username_and_with_a_code_shown_once(
        browser, server, world, http, screenshot, axe):
    invitee = world.users["outsider"]
    told = await Client.connect(f"ws://127.0.0.1:{server.port}/ws", await login(http, invitee.username))
    page = await open_page(browser, server.port, world.users["teacher_admin"])
    await open_members(page, world.space_id)
    await screenshot(page, "teacher_admin-members")
    await axe(page, "the members console")

    # By username: the invitee is told at once, and sees it in their pending invitations.
    form = page.locator("[data-testid=invite-username]")
    await form.locator("#field-invite-username").fill(invitee.username)
    await form.locator("#field-invite-role").select_option("teacher_member")
    await form.locator("#field-invite-note").fill("welcome aboard")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector(f"[data-testid=toasts] p:has-text('Invitation sent to {invitee.username}')")
    notice = await told.next_frame(InvitationNotice)
    assert notice.invitation["status"] == "pending" and notice.invitation["role"] == "teacher_member"
    assert notice.invitation["space"]["id"] == world.space_id and notice.invitation["note"] == "welcome aboard"
    mine = (await http.get("/api/invitations", headers=await bearer(http, invitee))).json()["invitations"]
    assert [i["id"] for i in mine] == [notice.invitation["id"]]
    pending = page.locator(f"[data-testid=pending] [data-invitation='{notice.invitation['id']}']")
    await pending.wait_for()
    assert invitee.username in await pending.text_content()

    # An unknown username is said in words, not as a server sentence.
    await form.locator("#field-invite-username").fill("nobody-by-that-name")
    await form.locator("button[type=submit]").click()
    await page.wait_for_selector("[data-testid=toasts] p:has-text('No adult')")

    # With a code: shown once, on a card with the address and its QR code.
    form = page.locator("[data-testid=invite-code]")
    await form.locator("#field-code-role").select_option("visitor")
    await form.locator("#field-code-label").fill("Mme Durand, a parent")
    await form.locator("button[type=submit]").click()
    card = page.locator("[data-testid=sheet][data-kind=code] [data-testid=code-card]")
    await card.wait_for()
    code = (await card.locator("[data-field=code]").text_content()).strip()
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}", code), code  # easy to read, to type
    assert await card.locator("svg.qr path").count() == 1
    assert await card.locator("[data-field=address]").text_content() == f"http://127.0.0.1:{server.port}/join"
    await screenshot(page, "teacher_admin-members-code")
    await axe(page, "an invitation card")
    await page.emulate_media(media="print")
    assert await page.evaluate(VISIBLE_OUTSIDE_CARDS) == []
    await screenshot(page, "teacher_admin-members-code-print")
    await page.emulate_media(media="screen")
    # On a phone the card fits the screen: the code breaks, if it must, between its groups.
    await page.set_viewport_size({"width": 360, "height": 740})
    assert await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    await card.scroll_into_view_if_needed()
    await screenshot(page, "teacher_admin-members-code-phone")
    await page.set_viewport_size({"width": 1280, "height": 720})

    # Leaving the card asks first; once left, the code is nowhere on the page.
    await page.click("[data-testid=sheet] [data-action=done]")
    said = await confirm_dialog(page, "confirm")
    assert "will not be shown again" in said
    await page.wait_for_selector("[data-testid=member-list]")
    code_row = page.locator("[data-testid=pending] li", has_text="Mme Durand, a parent")
    await code_row.wait_for()
    assert code not in await page.text_content("body")
    # It was the real code: a parent makes an account with it, typed as read, in small letters.
    r = await http.post("/api/invitations/redeem", json={
        "code": code.lower().replace("-", " "), "username": f"durand-{world.slug}", "name": "C. Durand",
        "password": "a long enough phrase"})
    assert r.status_code == 201, r.text

    # Withdrawing the username invitation tells the invitee too.
    await pending.locator("[data-action=revoke]").click()
    await confirm_dialog(page, "confirm")
    withdrawn = await told.next_frame(InvitationNotice)
    assert withdrawn.invitation["status"] == "revoked"
    await pending.wait_for(state="detached")
    await told.close()
    await page.context.close()


async def test_pupils_in_bulk_duplicates_flagged_then_a_login_sheet_that_prints_alone(
        browser, server, world, http, screenshot, axe):
    page = await open_page(browser, server.port, world.users["teacher_admin"])
    await open_members(page, world.space_id)

    # From a file (read in the browser): the first column, the header line left out.
    await page.set_input_files("#pupil-file", files=[{
        "name": "class.csv", "mimeType": "text/csv",
        "buffer": "Name;Class\n\"Léa M.\";5B\nPupil Member;5B\n".encode(),
    }])
    await page.wait_for_selector("[data-testid=pupils-preview] li")
    assert await page.input_value("#pupil-names") == "Léa M.\nPupil Member"
    assert await page.locator("[data-testid=pupils-preview] li[data-problem=member]").count() == 1  # a member's name

    # Pasted: a name twice (in other case and spacing) is flagged and left out unless ticked.
    await page.fill("#pupil-names", "Ana L.\nZoé Dupont\n\n  ana   l. \nTom K.\n")
    await page.click("text=Check the list")
    rows = page.locator("[data-testid=pupils-preview] li")
    await rows.first.wait_for()
    assert await rows.count() == 4
    twice = page.locator("[data-testid=pupils-preview] li[data-problem=twice]")
    assert await twice.count() == 1 and "twice in this list" in await twice.text_content()
    assert not await twice.locator("input").is_checked()
    await screenshot(page, "teacher_admin-members-pupils-check")
    await axe(page, "a checked list of pupils")
    await page.click("[data-action=create-pupils]")

    sheet = page.locator("[data-testid=sheet][data-kind=pupils]")
    await sheet.wait_for()
    cards = sheet.locator("[data-testid=login-card]")
    assert await cards.count() == 3
    logins = []
    for i in range(3):
        card = cards.nth(i)
        logins.append({
            "name": await card.locator(".print-name").text_content(),
            "username": (await card.locator("[data-field=username]").text_content()).strip(),
            "password": (await card.locator("[data-field=password]").text_content()).strip(),
        })
        assert world.slug not in await card.text_content()  # the project's name, not its slug
    assert [x["name"] for x in logins] == ["Ana L.", "Zoé Dupont", "Tom K."]
    await screenshot(page, "teacher_admin-members-sheet")
    await axe(page, "a login sheet")

    # The print view: the cards alone, each whole, two across an A4 page (190 mm by 277 mm
    # inside its margins: 718 by 1047 CSS pixels).
    await page.set_viewport_size({"width": 718, "height": 1047})
    await page.emulate_media(media="print")
    assert await page.evaluate(VISIBLE_OUTSIDE_CARDS) == []
    layout = await page.evaluate("""() => [...document.querySelectorAll('.print-card')].map(c => {
      const s = getComputedStyle(c); const r = c.getBoundingClientRect();
      return {avoid: s.breakInside, border: s.borderTopStyle, top: Math.round(r.top), left: Math.round(r.left)}; })""")
    assert all(c["avoid"] == "avoid" and c["border"] == "dashed" for c in layout)
    assert layout[0]["top"] == layout[1]["top"] and layout[0]["left"] < layout[1]["left"]  # side by side
    shot = await screenshot(page, "teacher_admin-members-print")
    pdf = await page.pdf(prefer_css_page_size=True)  # what the printer gets (A4, from the sheet's @page)
    assert pdf.startswith(b"%PDF")
    shot.with_suffix(".pdf").write_bytes(pdf)
    await page.emulate_media(media="screen")
    await page.set_viewport_size({"width": 1280, "height": 720})

    # The cards speak the class's language (the project's, English here), whatever the teacher
    # reads the page in: a French teacher prints cards for an English-speaking class.
    await page.select_option("[data-testid=lang]", "fr")
    await page.wait_for_selector("[data-testid=sheet] h2:text-is('Feuille de connexion (3)')")
    assert await cards.first.locator("dt").all_text_contents() == ["Username", "Password", "Address"]
    assert await page.get_attribute(".print-cards", "lang") == "en"
    assert (await cards.nth(1).locator("[data-field=password]").text_content()).strip() == logins[1]["password"]
    await page.select_option("[data-testid=lang]", "en")
    await page.wait_for_selector("[data-testid=sheet] h2:text-is('Login sheet (3)')")

    # A pupil logs in with what the card says.
    r = await http.post("/api/login", json={"username": logins[1]["username"], "password": logins[1]["password"]})
    assert r.status_code == 200, r.text
    http.cookies.clear()

    # Leaving the sheet (here through the menu) says the passwords will not be shown again.
    await page.click("[data-testid=nav-feed]")
    said = await confirm_dialog(page, "confirm")
    assert "passwords will not be shown again" in said
    await page.wait_for_selector("[data-testid=feed]")
    await page.go_back()
    await page.wait_for_selector("[data-testid=member-list]")
    assert logins[1]["password"] not in await page.text_content("body")
    for x in logins:
        await page.locator("[data-testid=member-list] li", has_text=x["username"]).wait_for()
    await page.context.close()


async def test_password_reset_lockout_role_change_removal_and_add_back(
        browser, server, world, http, pool, screenshot, axe):
    admin = await bearer(http, world.users["teacher_admin"])
    made = await http.post(f"/api/spaces/{world.space_id}/pupils", headers=admin, json={"pupils": ["Lena P.", "Max R."]})
    assert made.status_code == 201
    lena, max_ = made.json()["pupils"]
    # Someone tried passwords on Max's account until it locked: what the login throttle writes
    # then (tests/e2e/test_auth.py locks an account for real).
    await audit.record_lockout(pool, user_id=max_["id"], failures=5, seconds=300)

    page = await open_page(browser, server.port, world.users["teacher_admin"])
    await open_members(page, world.space_id)
    row = page.locator(f"[data-testid=member-list] li[data-user='{max_['id']}']")
    assert "Login locked until" in await row.locator("[data-testid=locked]").text_content()
    assert await row.locator("[data-action=reset]").count() == 1  # a pupil; adults have no reset here
    teacher_row = page.locator(f"[data-testid=member-list] li[data-user='{world.users['teacher_member'].id}']")
    assert await teacher_row.locator("[data-action=reset]").count() == 0
    # …and who invited whom.
    assert f"invited by {world.users['teacher_admin'].display_name}" in await row.text_content()

    # A new password: shown once on a card; the old one stops working at once.
    row = page.locator(f"[data-testid=member-list] li[data-user='{lena['id']}']")
    await row.locator("[data-action=reset]").click()
    said = await confirm_dialog(page, "reset-dialog")
    assert "Lena P.'s open sessions end" in said and "{" not in said, said
    card = page.locator("[data-testid=sheet][data-kind=reset] [data-testid=login-card]")
    await card.wait_for()
    assert await page.locator("[data-testid=login-card]").count() == 1
    password = (await card.locator("[data-field=password]").text_content()).strip()
    assert password != lena["password"] and len(password) == 8
    await screenshot(page, "teacher_admin-members-reset")
    old = await http.post("/api/login", json={"username": lena["username"], "password": lena["password"]})
    assert old.status_code == 401
    new = await http.post("/api/login", json={"username": lena["username"], "password": password})
    assert new.status_code == 200 and new.json()["password_reset"]["by"]["name"] == world.users["teacher_admin"].display_name
    http.cookies.clear()
    # The back button asks too; staying keeps the card.
    await page.go_back()
    box = page.locator("dialog[open][data-testid=confirm]")
    await box.locator("[data-action=cancel]").click()
    await box.wait_for(state="detached")
    assert await card.locator("[data-field=password]").text_content() == password
    await page.click("[data-testid=sheet] [data-action=done]")
    await confirm_dialog(page, "confirm")
    await page.wait_for_selector("[data-testid=member-list]")

    # A role change: a pupil's account is offered pupils' roles only.
    await row.locator("[data-action=role]").click()
    options = await page.locator("dialog[open] #field-role option").evaluate_all("os => os.map(o => o.value)")
    assert options == ["pupil_member", "pupil_admin"]
    await page.select_option("dialog[open] #field-role", "pupil_admin")
    await confirm_dialog(page, "role-dialog")
    await page.wait_for_selector(f"[data-testid=member-list] li[data-user='{lena['id']}'][data-role=pupil_admin]")
    listed = (await http.get(f"/api/spaces/{world.space_id}/members", headers=admin)).json()["members"]
    assert {m["id"]: m["role"] for m in listed}[lena["id"]] == "pupil_admin"

    # Removed, then added back from the former pupils.
    await page.locator(f"[data-testid=member-list] li[data-user='{lena['id']}'] [data-action=remove]").click()
    said = await confirm_dialog(page, "confirm")
    assert "add them back" in said
    former = page.locator(f"[data-testid=former] li[data-user='{lena['id']}']")
    await former.wait_for()
    assert await page.locator(f"[data-testid=member-list] li[data-user='{lena['id']}']").count() == 0
    await page.locator("#members-former-title").scroll_into_view_if_needed()
    await screenshot(page, "teacher_admin-members-former")
    await former.locator("[data-action=add-back]").click()
    await confirm_dialog(page, "add-back-dialog")
    await page.wait_for_selector(f"[data-testid=member-list] li[data-user='{lena['id']}'][data-role=pupil_member]")
    listed = (await http.get(f"/api/spaces/{world.space_id}/members", headers=admin)).json()["members"]
    assert lena["id"] in {m["id"] for m in listed}
    await page.context.close()

    # On a phone: nothing wider than the screen, and the controls big enough to touch.
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR", is_mobile=True)
    phone = await context.new_page()
    await phone.goto(f"http://127.0.0.1:{server.port}/#/members/{world.space_id}")
    await phone.fill("#username", world.users["teacher_admin"].username)
    await phone.fill("#password", PASSWORD)
    await phone.press("#password", "Enter")
    await phone.wait_for_selector("[data-testid=member-list]")
    assert "Membres" in await phone.text_content("[data-testid=members] h1")
    assert await phone.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    small = await phone.evaluate("""() => [...document.querySelectorAll('[data-testid=members] button')]
      .filter(b => b.getBoundingClientRect().height < 44).map(b => b.textContent)""")
    assert small == []
    await screenshot(phone, "teacher_admin-members-phone")
    # (one step: the list may be redrawn meanwhile, when the feed tells of a change)
    await phone.evaluate(f"document.querySelector(\"[data-testid=member-list] li[data-user='{lena['id']}']\").scrollIntoView()")
    await screenshot(phone, "teacher_admin-members-phone-pupil")
    await axe(phone, "the members console on a phone")
    await context.close()


async def test_a_locked_out_pupil_is_unlocked_from_the_page_and_logs_in_at_once(
        browser, server, world, http, screenshot, axe):
    pupil = world.users["pupil_member"]
    # Five wrong passwords at once (from addresses of their own): locked for five minutes.
    net = secrets.randbelow(250) + 1
    await asyncio.gather(*(http.post("/api/login", json={"username": pupil.username, "password": f"oops-{i}"},
                                     headers={"X-Forwarded-For": f"198.19.{net}.{i + 1}"}) for i in range(5)))
    right = {"username": pupil.username, "password": PASSWORD}
    assert (await http.post("/api/login", json=right)).status_code == 429

    page = await open_page(browser, server.port, world.users["teacher_admin"])
    await open_members(page, world.space_id)
    row = page.locator(f"[data-testid=member-list] li[data-user='{pupil.id}']")
    assert "or now if you unlock it" in await row.locator("[data-testid=locked]").text_content()
    await row.locator("[data-action=unlock]").focus()
    await screenshot(page, "teacher_admin-members-locked")
    await axe(page, "a locked-out pupil on the member list")
    await page.keyboard.press("Enter")
    said = await confirm_dialog(page, "confirm")
    assert "Pupil Member cannot log in until" in said and "{" not in said, said
    await page.wait_for_selector("[data-testid=toasts] p:has-text('Pupil Member can log in again')")
    await row.locator("[data-testid=locked]").wait_for(state="detached")  # the list says the lock is over
    assert await row.locator("[data-action=unlock]").count() == 0
    assert "Login locked once in 30 days" in await row.text_content()
    r = await http.post("/api/login", json=right)  # and the pupil logs in at once
    assert r.status_code == 200, r.text
    http.cookies.clear()
    await page.context.close()


async def test_a_teacher_member_makes_pupils_and_acts_only_on_their_own(browser, server, world, http, screenshot, axe):
    teacher = world.users["teacher_member"]
    page = await open_page(browser, server.port, teacher)
    await open_members(page, world.space_id)
    # What a teacher member may do: the list, pupils' accounts, former pupils — no invitations.
    assert await page.locator("[data-testid=invite-username], [data-testid=invite-code], [data-testid=pending]").count() == 0
    assert await page.locator("[data-testid=teacher-member-note]").count() == 1
    await page.fill("#pupil-names", "Ada T.\nBen T.")
    await page.click("text=Check the list")
    await page.click("[data-action=create-pupils]")
    sheet = page.locator("[data-testid=sheet][data-kind=pupils]")
    await sheet.wait_for()
    assert await sheet.locator("[data-testid=login-card]").count() == 2
    logins = {}
    for i in range(2):
        card = sheet.locator("[data-testid=login-card]").nth(i)
        logins[await card.locator(".print-name").text_content()] = (
            (await card.locator("[data-field=username]").text_content()).strip())
    await page.click("[data-testid=sheet] [data-action=done]")
    await confirm_dialog(page, "confirm")
    listed = page.locator("[data-testid=member-list]")
    await listed.locator("li", has_text=logins["Ada T."]).wait_for()
    members = (await http.get(f"/api/spaces/{world.space_id}/members", headers=await bearer(http, teacher))).json()["members"]
    ids = {m["name"]: m["id"] for m in members}
    ada = listed.locator(f"li[data-user='{ids['Ada T.']}']")
    await page.evaluate(f"document.querySelector(\"[data-testid=member-list] li[data-user='{ids['Ada T.']}']\").scrollIntoView()")
    await screenshot(page, "teacher_member-members")
    await axe(page, "the members console of a teacher member")

    # Their own pupils: a new password and a removal, no role change; everyone else: nothing.
    assert await ada.locator("button").evaluate_all("bs => bs.map(b => b.dataset.action)") == ["reset", "remove"]
    for other in ("teacher_admin", "pupil_member", "pupil_admin", "visitor"):
        row = listed.locator(f"li[data-user='{world.users[other].id}']")
        assert await row.locator("button").count() == 0, other
    assert await page.locator("[data-testid=member-list] [data-action=role]").count() == 0
    # A new password for their own pupil: the dialog names her, placeholders filled.
    await ada.locator("[data-action=reset]").click()
    said = await confirm_dialog(page, "reset-dialog")
    assert "Ada T.'s open sessions end" in said and "{" not in said, said
    await page.locator("[data-testid=sheet][data-kind=reset]").wait_for()
    await page.click("[data-testid=sheet] [data-action=done]")
    await confirm_dialog(page, "confirm")
    await page.wait_for_selector("[data-testid=member-list]")

    # The server refuses them what the page does not offer, all the same.
    headers = await bearer(http, teacher)
    base = f"/api/spaces/{world.space_id}/members"
    r = await http.patch(f"{base}/{ids['Ada T.']}", headers=headers, json={"role": "pupil_admin"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.delete(f"{base}/{world.users['pupil_member'].id}", headers=headers)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.post(f"{base}/{world.users['pupil_member'].id}/password", headers=headers, json={})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    r = await http.post(f"/api/spaces/{world.space_id}/invitations", headers=headers, json={"role": "visitor"})
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")

    # And they remove a pupil they invited, from the page.
    await listed.locator(f"li[data-user='{ids['Ben T.']}'] [data-action=remove]").click()
    await confirm_dialog(page, "confirm")
    await page.locator(f"[data-testid=former] li[data-user='{ids['Ben T.']}']").wait_for()
    await page.context.close()


def test_every_sentence_gets_the_placeholders_it_needs():
    """Each `t("members.…")` of the screen names every {placeholder} its English sentence has
    (the reset dialog once showed "{name}'s open sessions end")."""
    static = Path(__file__).resolve().parents[2] / "realtime" / "web" / "static"
    source = (static / "screens" / "members.js").read_text()
    english = json.loads((static / "locales" / "en.json").read_text())

    def object_after(i: int) -> str:
        start = source.index("{", i)
        depth = 0
        for k in range(start, len(source)):
            depth += {"{": 1, "}": -1}.get(source[k], 0)
            if depth == 0:
                return source[start + 1:k]
        raise AssertionError("unbalanced braces")

    missing = []
    for found in re.finditer(r'"(members\.[a-z_.]+)"', source):
        key = found.group(1)
        assert key in english, key
        text = english[key]
        needed = set(re.findall(r"\{(\w+)\}", " ".join(text.values()) if isinstance(text, dict) else text))
        given: set[str] = set()
        if source[found.start() - 2:found.start()] in ("t(", "w(") and source[found.end():].lstrip().startswith(","):
            body = object_after(found.end())
            given = set(re.findall(r"(\w+)\s*:", body)) | set(re.findall(r"(?:^|,)\s*(\w+)\s*(?=,|$)", body))
        if needed - given:
            missing.append((key, sorted(needed - given)))
    assert missing == []


async def test_pupils_and_visitors_have_no_members_console(browser, server, world, http):
    url = f"/api/spaces/{world.space_id}/invitations"

    async def refused(role: str) -> None:
        user = world.users[role]
        page = await open_page(browser, server.port, user)
        assert await page.locator("[data-testid=nav-members]").count() == 0, role
        await page.goto(f"http://127.0.0.1:{server.port}/#/members/{world.space_id}")  # the address typed anyway
        await page.wait_for_selector('[data-testid=status][data-state="online"]')
        await page.wait_for_timeout(200)
        assert await page.locator("[data-testid=members]").count() == 0, role
        await page.context.close()

    await asyncio.gather(*(refused(role) for role in ("pupil_member", "visitor")))
    for role in ("teacher_member", "pupil_member", "visitor"):
        r = await http.get(url, headers=await bearer(http, world.users[role]))  # and the server refuses
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", role
    for role in ("pupil_member", "visitor"):
        r = await http.post(f"/api/spaces/{world.space_id}/members/{world.users['pupil_admin'].id}/unlock",
                            headers=await bearer(http, world.users[role]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", role
