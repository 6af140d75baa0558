"""TwinMail in the browser (issue 23, point 5): a teacher writes to two pupils, a pupil answers all
with a quote and files the thread through every folder; older threads page in; a draft survives
leaving the screen; a pupil reports a mail; another pupil never sees it (and the server refuses
it); a visitor's address book holds teachers only; the screen on a 360×740 phone."""

from __future__ import annotations

import re

from realtime.policy import Area
from tests.browser.pages import answer, open_menu, open_page, open_room
from tests.conftest import PASSWORD, login

THREADS = "[data-testid=threads]"


async def watched(page):
    """The page, with every script error it raises kept in page.errors (none is expected)."""
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda err: page.errors.append(str(err)))  # type: ignore[attr-defined]
    return page


async def close(*pages) -> None:
    for page in pages:
        assert page.errors == [], page.errors
        assert await page.locator("[data-testid=toasts] p", has_text="No connection").count() == 0
        await page.context.close()


async def open_mail(page) -> None:
    await open_menu(page)
    await page.click("[data-testid=nav-mail]")
    await page.wait_for_selector(f"[data-testid=mail] {THREADS}:not([aria-busy])")


def thread_button(page, subject: str):
    return page.locator(f"{THREADS} .thread-open", has_text=subject)


async def choose_folder(page, folder: str) -> None:
    await page.click(f"[data-testid=folder-{folder}]")
    await page.wait_for_selector(f"[data-testid=folder-{folder}][aria-pressed=true]")
    await page.wait_for_selector(f"{THREADS}:not([aria-busy])")


async def toast(page, text: str) -> None:
    await page.locator("[data-testid=toasts] p", has_text=text).last.wait_for()


async def mail_over_http(http, token: str, space: int, to: list[int], subject: str, text: str) -> dict:
    r = await http.post(f"/api/spaces/{space}/mail", json={"to": to, "subject": subject, "text": text},
                        headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()


async def overflow(page) -> int:
    return await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


async def test_a_teacher_writes_to_two_pupils_who_answer_all_and_file_the_thread(browser, server, world, screenshot, axe):
    users = world.users
    pupil = await watched(await open_page(browser, server.port, users["pupil_member"]))
    await open_mail(pupil)
    teacher = await watched(await open_page(browser, server.port, users["teacher_admin"]))
    await open_mail(teacher)

    # Writing: the address book by role and school, filtered as one types.
    await teacher.click("[data-action=compose]")
    await teacher.wait_for_selector("[data-testid=composer] .book-group")
    legends = await teacher.locator(".book-group legend").all_text_contents()
    assert legends == ["Teachers — Lyon", "Pupils — Kraków", "Visitors — Kraków"]
    await teacher.locator("#mail-search").press_sequentially("pupil")
    assert await teacher.locator(".recipient:visible .name").all_text_contents() == ["Pupil Admin", "Pupil Member"]
    assert await teacher.locator(".book-group:visible legend").all_text_contents() == ["Pupils — Kraków"]
    await teacher.fill("#mail-search", "nobody at all")
    await teacher.locator("#mail-search-found", has_text="Nobody matches").wait_for()
    assert await teacher.locator(".recipient:visible").count() == 0
    await teacher.fill("#mail-search", "pupil")
    await teacher.check('.recipient:has-text("Pupil Member") input')
    await teacher.check('.recipient:has-text("Pupil Admin") input')
    assert await teacher.locator("[data-testid=chosen] li .name").all_text_contents() == ["Pupil Member", "Pupil Admin"]
    assert await teacher.text_content("#compose-to-hint") == "2 chosen — at most 50."
    # The limits are said before the server has to refuse.
    await teacher.fill("#mail-subject", "x" * 201)
    assert await teacher.text_content("#mail-subject-count") == "Too long: 201 / 200 characters"
    await teacher.click("[data-action=send]")
    assert await teacher.text_content("[data-testid=compose-error]") == "Too long: 201 / 200 characters"
    await teacher.fill("#mail-subject", "River samples")
    assert await teacher.text_content("#mail-subject-count") == "13 / 200 characters"
    await teacher.fill("#mail-text", "Please bring your river samples.\nTwo bottles each.")
    await teacher.locator("[data-testid=reader]").evaluate("el => { el.scrollTop = 0; }")
    await screenshot(teacher, "teacher-mail-compose")
    await axe(teacher, "the composer")
    await teacher.click("[data-action=send]")
    await toast(teacher, "Mail sent")
    await teacher.locator("[data-testid=thread] .mail .text", has_text="Two bottles each.").wait_for()
    assert await teacher.locator("[data-testid=thread] [data-action=report]").count() == 0  # one's own mail
    # A new thread is shown where it is: in Sent, not as "none of its mails is in Inbox".
    assert await teacher.get_attribute("[data-testid=folder-sent]", "aria-pressed") == "true"
    assert await teacher.locator("[data-testid=thread]", has_text="any more").count() == 0

    # Reading: the count and the thread arrive live; From and To with their badges; a date.
    await pupil.locator("[data-testid=count-inbox]", has_text="1 unread").wait_for()
    await pupil.locator("[data-testid=unread]", has_text="1 unread").wait_for()  # the menu's count too
    await thread_button(pupil, "River samples").click()
    mail = pupil.locator("[data-testid=thread] .mail").first
    await mail.wait_for()
    assert re.sub(r"\s+", " ", await mail.locator("[data-testid=from]").inner_text()) == "From: Teacher Admin teacher Lyon"
    to_line = re.sub(r"\s+", " ", await mail.locator("[data-testid=to]").inner_text())
    assert to_line == "To: Pupil Member (you) pupil Kraków, Pupil Admin pupil Kraków"
    assert await mail.locator("time").get_attribute("datetime")
    assert re.search(r"\d{4}", await mail.locator("time").inner_text())  # the full date, in English here
    await pupil.locator("[data-testid=count-inbox]").wait_for(state="detached")  # read now
    await pupil.locator(f"{THREADS} .unread").wait_for(state="detached")
    await screenshot(pupil, "pupil-mail-thread")
    await axe(pupil, "a thread")

    # Reply to all, quoting.
    await mail.locator("[data-action=reply-all]").click()
    await pupil.wait_for_selector("[data-testid=composer]")
    assert await pupil.locator("[data-testid=chosen] li .name").all_text_contents() == ["Teacher Admin", "Pupil Admin"]
    assert await pupil.input_value("#mail-subject") == "Re: River samples"
    await pupil.click("[data-action=quote]")
    quoted = await pupil.input_value("#mail-text")
    assert re.match(r"On .+, Teacher Admin wrote:\n> Please bring your river samples.\n> Two bottles each.\n\n$", quoted)
    await pupil.fill("#mail-text", quoted + "We will bring three!")
    await screenshot(pupil, "pupil-mail-reply")
    await axe(pupil, "a reply with a quote")
    await pupil.click("[data-action=send]")
    await toast(pupil, "Mail sent")
    await pupil.locator("[data-testid=thread] .mail .text", has_text="We will bring three!").wait_for()

    # The teacher, reading the thread, sees the reply come in: From, To, the quote set apart.
    reply = teacher.locator("[data-testid=thread] .mail", has_text="We will bring three!")
    await reply.wait_for()
    assert re.sub(r"\s+", " ", await reply.locator("[data-testid=from]").inner_text()) == "From: Pupil Member pupil Kraków"
    assert re.sub(r"\s+", " ", await reply.locator("[data-testid=to]").inner_text()) == "To: Teacher Admin (you) teacher Lyon, Pupil Admin pupil Kraków"
    assert "Two bottles each." in await reply.locator("blockquote.quote").inner_text()
    await screenshot(teacher, "teacher-mail-thread-reply")

    # Filing: archive, find it there, trash it, restore it, mark it unread.
    await pupil.click("[data-testid=thread] [data-action=archive]")
    await toast(pupil, "Moved to the archive.")
    await thread_button(pupil, "River samples").wait_for(state="detached")
    await choose_folder(pupil, "archive")
    await thread_button(pupil, "River samples").click()
    await pupil.locator("[data-testid=thread] .mail .where", has_text="in Sent").wait_for()  # one's reply stays in Sent
    await screenshot(pupil, "pupil-mail-archive")
    await axe(pupil, "the archive")
    await pupil.click("[data-testid=thread] [data-action=trash]")
    await toast(pupil, "Moved to the trash.")
    await thread_button(pupil, "River samples").wait_for(state="detached")
    await choose_folder(pupil, "trash")
    await thread_button(pupil, "River samples").click()
    await pupil.locator("[data-testid=thread] [data-action=delete]").wait_for()  # only in the trash
    await pupil.click("[data-testid=thread] [data-action=restore]")
    await toast(pupil, "Put back where it was.")
    await thread_button(pupil, "River samples").wait_for(state="detached")
    await choose_folder(pupil, "inbox")
    await thread_button(pupil, "River samples").click()
    await pupil.click("[data-testid=thread] [data-action=unread]")
    await pupil.locator("[data-testid=count-inbox]", has_text="1 unread").wait_for()
    await pupil.locator("[data-testid=unread]", has_text="1 unread").wait_for()
    await pupil.locator(f"{THREADS} .unread", has_text="River samples").wait_for()
    assert await pupil.evaluate("document.activeElement.dataset.thread") is not None  # back on the thread in the list
    await screenshot(pupil, "pupil-mail-inbox")
    await axe(pupil, "the inbox")
    await close(pupil, teacher)


async def test_older_threads_page_in_and_new_mail_arrives_live(browser, server, world, http):
    token = await login(http, world.users["teacher_admin"].username)
    pupil_id = world.users["pupil_member"].id
    for i in range(25):
        await mail_over_http(http, token, world.space_id, [pupil_id], f"Note {i:02}", f"Number {i}")
    pupil = await watched(await open_page(browser, server.port, world.users["pupil_member"]))
    await open_mail(pupil)
    items = pupil.locator(f"{THREADS} .thread-open")
    assert await items.count() == 20
    assert "Note 24" in await items.first.inner_text()
    assert await pupil.text_content("[data-testid=count-inbox]") == "25 unread"
    await pupil.click("[data-testid=older]")
    await thread_button(pupil, "Note 00").wait_for()
    assert await items.count() == 25
    assert await pupil.locator("[data-testid=older]").is_hidden()
    assert "Note 04" in await pupil.evaluate("document.activeElement.textContent")  # the keyboard goes on there

    # A new mail: at the top of the list, counted, without a reload — and the older pages stay.
    await mail_over_http(http, token, world.space_id, [pupil_id], "Note 25, live", "Just now")
    await pupil.locator("[data-testid=count-inbox]", has_text="26 unread").wait_for()
    await items.nth(25).wait_for()
    assert await items.count() == 26
    assert "Note 25, live" in await items.first.inner_text()
    assert await pupil.locator("[data-testid=older]").is_hidden()
    await close(pupil)


async def test_a_draft_is_kept_when_leaving_mail_and_cleared_on_send(browser, server, world):
    teacher = await watched(await open_page(browser, server.port, world.users["teacher_admin"]))
    await open_mail(teacher)
    await teacher.click("[data-action=compose]")
    await teacher.check('.recipient:has-text("Pupil Member") input')
    await teacher.fill("#mail-subject", "Trip to the river")
    await teacher.fill("#mail-text", "Dear pupils,\nwe leave at nine.")
    await open_room(teacher, world.channel(Area.CHAT))  # clicked away
    await teacher.click("[data-testid=nav-mail]")
    await teacher.wait_for_selector("[data-testid=composer]")
    assert await teacher.input_value("#mail-subject") == "Trip to the river"
    assert await teacher.input_value("#mail-text") == "Dear pupils,\nwe leave at nine."
    assert await teacher.locator("[data-testid=chosen] li .name").all_text_contents() == ["Pupil Member"]
    assert await teacher.text_content("[data-action=compose]") == "New mail (draft)"
    await teacher.reload()  # a reload loses nothing either
    await teacher.wait_for_selector("[data-testid=composer] .book-group")  # the address book too, once online
    await teacher.wait_for_selector(f"{THREADS}:not([aria-busy])")
    assert await teacher.input_value("#mail-text") == "Dear pupils,\nwe leave at nine."
    await teacher.select_option("[data-testid=lang]", "fr")  # written again in French, the words kept
    await teacher.locator("[data-action=send]", has_text="Envoyer le message").wait_for()
    assert await teacher.input_value("#mail-text") == "Dear pupils,\nwe leave at nine."
    assert await teacher.text_content("#mail-subject-count") == "17 / 200 caractères"
    await teacher.select_option("[data-testid=lang]", "en")
    await teacher.locator("[data-action=send]", has_text="Send mail").wait_for()
    await teacher.click("[data-action=send]")
    await toast(teacher, "Mail sent")
    keys = await teacher.evaluate("Object.keys(localStorage).filter(k => k.startsWith('twinhub.mail.'))")
    assert keys == []  # sent: the draft is gone from the device
    assert await teacher.text_content("[data-action=compose]") == "New mail"
    await teacher.click("[data-action=compose]")
    assert await teacher.input_value("#mail-subject") == ""
    await close(teacher)


async def test_a_pupil_reports_a_mail_that_another_pupil_never_sees(browser, server, world, http, screenshot, axe):
    users = world.users
    writer_token = await login(http, users["teacher_member"].username)
    await mail_over_http(http, writer_token, world.space_id, [users["pupil_member"].id, users["visitor"].id], "Trip for families", "Parents welcome")
    secret = await mail_over_http(http, writer_token, world.space_id, [users["pupil_member"].id], "Just for you", "Your marks: 19/20")
    plants = await mail_over_http(http, writer_token, world.space_id, [users["pupil_admin"].id], "For the class helper", "Please water the plants")

    pupil = await watched(await open_page(browser, server.port, users["pupil_member"]))
    await open_mail(pupil)
    # Answering all on a mail that also went to a parent: the parent is left out, and said so
    # (a pupil may not write to a visitor: the server would refuse the whole mail).
    await thread_button(pupil, "Trip for families").click()
    await pupil.click("[data-testid=thread] [data-action=reply-all]")
    await pupil.wait_for_selector("[data-testid=composer]")
    assert await pupil.locator("[data-testid=chosen] li .name").all_text_contents() == ["Teacher Member"]
    assert await pupil.text_content("[data-testid=left-out]") == "Not added (you may not write to them): Visitor."
    await thread_button(pupil, "Just for you").click()
    await pupil.click("[data-testid=thread] [data-action=report]")
    box = pupil.locator("[data-testid=report-mail-dialog]")
    await box.wait_for()
    assert "will not see your other mails" in await box.inner_text()  # what the reviewers see, said
    await screenshot(pupil, "pupil-mail-report")
    await axe(pupil, "the report dialog")
    await answer(pupil, "I do not understand this mail")
    await toast(pupil, "The mail was reported")
    # What the project's teacher admin reviews: that one mail and the note (the sender is never shown it).
    teacher_token = await login(http, users["teacher_admin"].username)
    r = await http.get(f"/api/spaces/{world.space_id}/mail/reports", headers={"authorization": f"Bearer {teacher_token}"})
    assert r.status_code == 200, r.text
    [report] = r.json()["reports"]
    assert report["note"] == "I do not understand this mail" and report["mail"]["id"] == secret["id"]

    # Another pupil's page never shows it, and the server refuses it as if it did not exist.
    other = await watched(await open_page(browser, server.port, users["pupil_admin"]))
    await open_mail(other)
    await thread_button(other, "For the class helper").wait_for()
    for folder in ("inbox", "sent", "archive", "trash"):
        await choose_folder(other, folder)
        assert await other.locator(THREADS, has_text="Just for you").count() == 0
    other_token = await login(http, users["pupil_admin"].username)
    r = await http.get(f"/api/mail/{secret['id']}", headers={"authorization": f"Bearer {other_token}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    # Deleting one's own copy for good, from the trash, after saying yes.
    await choose_folder(other, "inbox")
    await thread_button(other, "For the class helper").click()
    await other.click("[data-testid=thread] [data-action=trash]")
    await choose_folder(other, "trash")
    await thread_button(other, "For the class helper").click()
    await other.click("[data-testid=thread] [data-action=delete]")
    await axe(other, "the confirmation of a deletion")
    await answer(other)
    await toast(other, "Deleted for good.")
    await thread_button(other, "For the class helper").wait_for(state="detached")
    r = await http.get(f"/api/mail/{plants['id']}", headers={"authorization": f"Bearer {other_token}"})
    assert r.status_code == 404

    # A visitor's address book holds the teachers only; the server refuses a pupil anyway.
    visitor = await watched(await open_page(browser, server.port, users["visitor"]))
    await open_mail(visitor)
    await visitor.click("[data-action=compose]")
    await visitor.wait_for_selector("[data-testid=composer] .book-group")
    assert await visitor.locator(".book-group legend").all_text_contents() == ["Teachers — Lyon"]
    assert await visitor.locator(".recipient .name").all_text_contents() == ["Teacher Admin", "Teacher Member"]
    visitor_token = await login(http, users["visitor"].username)
    r = await http.post(f"/api/spaces/{world.space_id}/mail", json={"to": [users["pupil_member"].id], "subject": "Hi", "text": "Hello"},
                        headers={"authorization": f"Bearer {visitor_token}"})
    assert r.status_code == 404 and r.json()["error"]["recipients"] == [users["pupil_member"].id]
    await close(pupil, other, visitor)


async def test_mail_on_a_phone_one_pane_at_a_time(browser, server, world, http, screenshot, axe):
    token = await login(http, world.users["teacher_admin"].username)
    long_word = "Wasserqualitätsuntersuchungsergebnisse" * 3
    await mail_over_http(http, token, world.space_id, [world.users["pupil_member"].id, world.users["pupil_admin"].id],
                         "Results of the water survey in both towns", f"Hello!\n> quoted line\n{long_word}")
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="fr-FR", is_mobile=True)
    page = await watched(await context.new_page())
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.fill("#username", world.users["pupil_member"].username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    await open_mail(page)

    scroll_areas = """[...document.querySelectorAll('.mail-view *')].filter(e => e.tagName !== 'TEXTAREA'
        && /(auto|scroll)/.test(getComputedStyle(e).overflowY) && e.scrollHeight > e.clientHeight + 1).length"""
    small_targets = """[...document.querySelectorAll('.mail-view button, .mail-view .recipient, .mail-view input:not([type=checkbox])')]
        .filter(e => e.offsetParent && e.getBoundingClientRect().height < 44).map(e => e.outerHTML.slice(0, 80))"""

    async def check(name: str) -> None:
        assert await overflow(page) <= 0, name
        assert await page.evaluate(scroll_areas) == 0, name  # one scroll area: the page
        assert await page.evaluate(small_targets) == [], name
        await screenshot(page, f"pupil-mail-phone-{name}")
        await axe(page, f"mail on a phone: {name}")

    assert await page.locator("[data-testid=reader]").is_hidden()
    await check("list")
    await thread_button(page, "Results of the water survey").click()
    await page.locator("[data-testid=thread] .mail").wait_for()
    assert await page.locator(THREADS).is_hidden()  # one at a time
    assert await page.locator("[data-testid=thread] [data-action=back]").is_visible()
    await check("thread")
    await page.click("[data-testid=thread] [data-action=reply-all]")
    await page.wait_for_selector("[data-testid=composer]")
    await check("compose")
    await page.click("[data-testid=composer] [data-action=back]")
    await page.click("[data-testid=thread] [data-action=back]")
    await page.locator(THREADS).wait_for()
    assert "Results of the water survey" in await page.evaluate("document.activeElement.textContent")
    assert await page.locator("[data-testid=reader]").is_hidden()
    await close(page)


async def test_a_parent_reads_a_mail_that_also_went_to_a_pupil_without_learning_who(browser, server, world, http, axe):
    """A teacher writes to a parent and a pupil at once: the parent's To line and Reply to all
    say "a pupil of <school>", never the pupil's name (and never an empty name)."""
    pupil, visitor = world.users["pupil_member"], world.users["visitor"]
    token = await login(http, world.users["teacher_admin"].username)
    await mail_over_http(http, token, world.space_id, [visitor.id, pupil.id], "School trip", "Bring a coat.")
    parent = await watched(await open_page(browser, server.port, visitor))
    await open_mail(parent)
    await thread_button(parent, "School trip").click()
    to_line = parent.locator("[data-testid=thread] [data-testid=to]").first
    await to_line.wait_for()
    text = await to_line.text_content()
    assert f"a pupil of {pupil.school}" in text and pupil.display_name not in text
    await axe(parent, "a parent's mail sent to a pupil too")
    reply_all = parent.locator("[data-testid=thread] [data-action=reply-all]")
    if await reply_all.count():  # the other recipients are the teacher and the pupil
        await reply_all.first.click()
        note = parent.locator("[data-testid=left-out]")
        await note.wait_for()
        said = await note.text_content()
        assert f"a pupil of {pupil.school}" in said and pupil.display_name not in said and ": ." not in said
    page_text = await parent.locator("main").text_content()
    assert pupil.display_name not in page_text and pupil.username not in page_text
    await close(parent)


async def test_an_open_thread_has_its_address_and_back_returns_to_the_list(browser, server, world, http):
    """An open mail is at #/mail/<project>/thread/<id>: a reload reopens it, and the browser's
    Back (a phone's back button) returns to the list rather than leaving TwinMail."""
    pupil = world.users["pupil_member"]
    token = await login(http, world.users["teacher_admin"].username)
    sent = await mail_over_http(http, token, world.space_id, [pupil.id], "Field trip", "Wear boots.")
    page = await watched(await open_page(browser, server.port, pupil))
    await open_mail(page)
    await thread_button(page, "Field trip").click()
    await page.locator("[data-testid=thread] .mail .text", has_text="Wear boots.").wait_for()
    address = f"#/mail/{world.space_id}/thread/{sent['thread_id']}"
    assert await page.evaluate("location.hash") == address
    await page.reload()
    await page.locator("[data-testid=thread] .mail .text", has_text="Wear boots.").wait_for()
    await page.go_back()
    await page.wait_for_selector(f"[data-testid=mail] {THREADS}")
    assert await page.evaluate("location.hash") == f"#/mail/{world.space_id}"
    assert await page.locator("[data-testid=thread] .mail .text", has_text="Wear boots.").count() == 0
    await close(page)
