"""The moderation screens in a real Chromium against a real server: a report reaching a teacher
admin's menu and title live on any screen, dealt with from the report (to the message, the
author muted, the report resolved with a note and found among the closed ones); what a moderator
reads of a message she hid while a pupil reads only that it was hidden; the project's mutes
listed, lifted and set from the member picker; the platform screen of a platform moderator and
of a platform administrator; and who sees none of it, with the server refusing them anyway."""

from __future__ import annotations

import re
import secrets
import time

from protocol import Post, Report, ReportMail, SendMail
from realtime.policy import Area
from storage import accounts
from tests.browser.pages import answer, message, open_page, open_room
from tests.conftest import login

COUNT = "[data-testid=nav-moderation] [data-testid=queue-count]"


async def _auth(http, user) -> dict[str, str]:
    return {"authorization": f"Bearer {await login(http, user.username)}"}


async def _no_overflow(page) -> None:
    """Nothing wider than a phone's screen: no sideways scrolling."""
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide on a 360px screen"


async def _controls_are_tall_enough(page, selector: str) -> None:
    heights = await page.eval_on_selector_all(selector, "els => els.filter(e => e.offsetParent).map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44, heights


async def test_a_report_reaches_the_teacher_admin_anywhere_and_she_deals_with_it_from_the_report(
    browser, server, world, connect, http, screenshot, axe,
):
    corner = world.channel(Area.PUPILS_CORNER)
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await open_room(admin, world.channel(Area.CHAT))  # busy elsewhere
    assert await admin.locator(COUNT).count() == 0 and await admin.title() == "chat — TwinHub"

    author = await connect(world.users["pupil_member"])
    classmate = await connect(world.users["pupil_admin"])
    said = (await author.ok(Post(corner, "nobody wants you in the team"))).data["id"]
    await classmate.ok(Report(corner, said, "she is sad"))
    reported = time.monotonic()
    await admin.locator(COUNT).wait_for(timeout=2000)
    # The title counts what awaits her: the report (and the corner's post, unread).
    await admin.wait_for_function("/^\\(\\d+\\) .*TwinHub$/.test(document.title)", timeout=2000)
    assert time.monotonic() - reported < 1.0, "the count took more than a second"
    assert await admin.text_content(COUNT) == "1 open"

    await admin.click("[data-testid=nav-moderation]")
    card = admin.locator("[data-testid=reports] [data-report]", has_text="nobody wants you in the team")
    await card.wait_for()
    assert "she is sad" in await card.text_content()
    await screenshot(admin, "teacher_admin-moderation")
    await axe(admin, "the moderation queue")
    # On a phone: no sideways scrolling, controls large enough to touch.
    await admin.set_viewport_size({"width": 360, "height": 740})
    await _no_overflow(admin)
    await _controls_are_tall_enough(admin, ".review button, .review a.button")
    await card.scroll_into_view_if_needed()
    await screenshot(admin, "teacher_admin-moderation-phone")
    await admin.set_viewport_size({"width": 1280, "height": 720})

    # One click to the message in its room.
    await card.locator("[data-action=goto]").click()
    await admin.wait_for_function(f"location.hash === '#/room/{world.rooms[Area.PUPILS_CORNER]}/message/{said}'")
    await admin.wait_for_selector(f'[data-testid=room][data-channel="{corner}"]')
    await admin.go_back()
    await card.wait_for()

    # One click to mute its author: an hour, in the pupils' corner; her next post there is refused.
    await card.locator("[data-action=mute]").click()
    box = admin.locator("[data-testid=mute-dialog]")
    await box.wait_for()
    assert await box.locator("#field-scope").input_value() == "pupils_corner"  # the message's area, first
    await box.locator("#field-minutes").select_option("60")
    await box.locator("#field-reason").fill("unkind words")
    await screenshot(admin, "teacher_admin-moderation-mute-dialog")
    await axe(admin, "the mute dialog")
    await box.locator("[data-action=confirm]").click()
    await admin.wait_for_selector("[data-testid=toasts] p:has-text('is muted until')")
    refused = await author.error(Post(corner, "again"))
    assert refused.code == "muted" and refused.data["scope"] == "pupils_corner"

    # Hidden from the report, then shown again from it (a hide by mistake is undone where it was made).
    await card.locator("[data-action=hide]").click()
    await answer(admin, "unkind")
    await card.locator("[data-action=unhide]").wait_for()
    assert await card.locator("[data-action=hide]").count() == 0
    await card.locator("[data-action=unhide]").click()
    await answer(admin, "a misunderstanding")
    await card.locator("[data-action=hide]").wait_for()

    # Resolved with a note: gone from the open reports, the menu and the title; in the history.
    await card.locator("[data-action=resolve]").click()
    await answer(admin, "talked with both; muted an hour")
    await card.wait_for(state="detached")
    await admin.locator(COUNT).wait_for(state="detached")
    await admin.wait_for_function("/^[^(].*TwinHub$/.test(document.title)")
    await admin.click("[data-tab=closed]")
    closed = admin.locator("[data-testid=closed-reports] [data-report]", has_text="nobody wants you in the team")
    await closed.wait_for()
    resolution = await closed.locator("[data-testid=resolution]").text_content()
    assert "Resolved by Teacher Admin" in resolution and "talked with both; muted an hour" in resolution
    await closed.locator("[data-action=goto]").wait_for()  # a closed report still leads to its message
    await screenshot(admin, "teacher_admin-moderation-closed")
    await axe(admin, "the closed reports")

    await admin.context.close()


async def test_a_moderator_reads_what_she_hid_and_a_pupil_reads_only_that_it_was_hidden(
    browser, server, world, connect, screenshot, axe,
):
    chat = world.channel(Area.CHAT)
    author = await connect(world.users["pupil_member"])
    await author.ok(Post(chat, "my phone is 06 12 34 56 78"))
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    pupil = await open_page(browser, server.port, world.users["pupil_admin"])
    for page in (admin, pupil):
        await open_room(page, chat)
    await message(admin, "my phone is").locator("[data-action=hide]").click()
    await answer(admin, "a phone number")
    hidden = admin.locator("[data-testid=messages] .message[data-state=hidden]")
    await hidden.wait_for()
    assert "my phone is 06 12 34 56 78" in await hidden.text_content()  # kept as she saw it
    assert "hidden — only moderators see this" in await hidden.text_content()
    on_pupils = pupil.locator("[data-testid=messages] .message[data-state=hidden]")
    await on_pupils.wait_for()
    assert await on_pupils.text_content() != "" and "06 12" not in await on_pupils.text_content()
    assert "hidden by a moderator" in await on_pupils.text_content()

    await admin.reload()  # from the history: the server gives her the words
    await admin.wait_for_selector('[data-testid=status][data-state="online"]')
    hidden = admin.locator("[data-testid=messages] .message[data-state=hidden]")
    await hidden.wait_for()
    assert "my phone is 06 12 34 56 78" in await hidden.text_content()
    await screenshot(admin, "teacher_admin-room-hidden")
    await axe(admin, "a room with a hidden message, as its moderator sees it")
    assert await message(pupil, "06 12").count() == 0  # (the history gives her no words: tests/e2e)
    await screenshot(pupil, "pupil_admin-room-hidden")
    for page in (admin, pupil):
        await page.context.close()


async def test_a_reported_mail_shows_its_words_only_when_asked_and_that_look_is_audited(
    browser, server, world, connect, http, screenshot, axe,
):
    sender, recipient = world.users["pupil_member"], world.users["pupil_admin"]
    author = await connect(sender)
    sent = await author.ok(SendMail(world.space_id, (recipient.id,), "you are not my friend any more", subject="Saturday"))
    reader = await connect(recipient)
    await reader.ok(ReportMail(sent.data["id"], "this made me sad"))
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await admin.click("[data-testid=nav-moderation]")
    card = admin.locator("[data-testid=reports] [data-report]", has_text="A TwinMail message")
    await card.wait_for()
    assert "not my friend" not in await card.text_content()  # the queue names the mail, not its words
    assert "this made me sad" in await card.text_content()
    headers = await _auth(http, world.users["teacher_admin"])

    async def views() -> int:
        log = (await http.get(f"/api/spaces/{world.space_id}/audit", headers=headers)).json()["entries"]
        return sum(e["action"] == "mail_report.view" for e in log)

    assert await views() == 0
    await card.locator("[data-action=read-mail]").click()
    await card.locator("blockquote", has_text="you are not my friend any more").wait_for()
    assert "Saturday" in await card.text_content() and await views() == 1  # that look is on record
    await screenshot(admin, "teacher_admin-moderation-mail")
    await axe(admin, "a reported mail, read")
    await card.locator("[data-action=mute-sender]").click()
    box = admin.locator("[data-testid=mute-dialog]")
    await box.wait_for()
    assert await box.locator("#field-scope").input_value() == "mail"
    await box.locator("[data-action=confirm]").click()
    await admin.wait_for_selector("[data-testid=toasts] p:has-text('is muted until')")
    assert (await author.error(SendMail(world.space_id, (recipient.id,), "and again", subject="x"))).code == "muted"
    await admin.context.close()


async def test_the_projects_mutes_listed_lifted_and_set_from_the_member_picker(
    browser, server, world, connect, http, screenshot, axe,
):
    pupil = world.users["pupil_member"]
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await admin.click("[data-testid=nav-moderation]")
    await admin.click("[data-tab=mutes]")
    await admin.wait_for_selector("[data-testid=mutes] .empty")

    await admin.click("[data-action=mute-someone]")
    box = admin.locator("[data-testid=mute-dialog]")
    await box.wait_for()
    options = await box.locator("#field-user option").all_text_contents()
    assert any("Pupil Member" in o for o in options) and not any("Teacher" in o for o in options)  # teachers are never muted
    await box.locator("#field-user").select_option(str(pupil.id))
    await box.locator("#field-minutes").select_option("15")
    await box.locator("#field-scope").select_option("chat")
    await box.locator("#field-reason").fill("shouting")
    await box.locator("[data-action=confirm]").click()
    item = admin.locator(f'[data-testid=mutes] [data-user="{pupil.id}"][data-scope=chat]')
    await item.wait_for()
    text = await item.text_content()
    assert "Pupil Member" in text and "Chat" in text and "set by Teacher Admin" in text and "shouting" in text
    listed = (await http.get(f"/api/spaces/{world.space_id}/mutes", headers=await _auth(http, world.users["teacher_admin"]))).json()
    assert [(m["user"]["id"], m["scope"]) for m in listed["mutes"]] == [(pupil.id, "chat")]
    client = await connect(pupil)
    assert (await client.error(Post(world.channel(Area.CHAT), "HELLO"))).code == "muted"
    await screenshot(admin, "teacher_admin-mutes")
    await axe(admin, "the project's mutes")

    await item.locator("[data-action=unmute]").click()
    confirm = admin.locator("[data-testid=confirm]")
    await confirm.wait_for()
    await confirm.locator("[data-action=confirm]").click()
    await item.wait_for(state="detached")
    await admin.wait_for_selector("[data-testid=mutes] .empty")
    await client.ok(Post(world.channel(Area.CHAT), "hello"))
    await admin.set_viewport_size({"width": 360, "height": 740})
    await _no_overflow(admin)
    await admin.context.close()


async def test_a_platform_moderator_lands_on_every_projects_queue_and_the_projects(
    browser, server, world, connect, screenshot, axe,
):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await connect(world.users["pupil_member"])
    said = (await author.ok(Post(corner, "you smell"))).data["id"]
    moderator = await open_page(browser, server.port, world.users["moderator"])
    await moderator.wait_for_function("location.hash === '#/platform'")  # not a blank page
    await moderator.wait_for_selector("[data-testid=platform] h1:has-text('Platform moderation')")
    project = moderator.locator(f'[data-testid=projects] [data-project="{world.space_id}"]')
    await project.wait_for()
    assert f"Project {world.slug[2:]}" in await project.text_content()

    classmate = await connect(world.users["pupil_admin"])
    await classmate.ok(Report(corner, said, "mean"))  # live, on the platform's queue
    card = moderator.locator("[data-testid=reports] [data-report]", has_text="you smell")
    await card.wait_for()
    assert f"Project {world.slug[2:]}" in await card.text_content()  # which project it came from
    await moderator.locator("[data-testid=nav-platform] [data-testid=queue-count]").wait_for()
    await moderator.wait_for_function("/^\\(\\d+\\) .*TwinHub$/.test(document.title)")
    await project.locator("button").first.click()
    await moderator.wait_for_selector(f"[data-testid=queue-scope]:has-text('Project {world.slug[2:]}')")
    await card.wait_for()
    await screenshot(moderator, "moderator-platform")
    await axe(moderator, "the platform moderator's screen")
    await moderator.click("[data-tab=mutes]")  # a project chosen: its mutes too
    await moderator.wait_for_selector("[data-testid=mutes] .empty")
    await moderator.set_viewport_size({"width": 360, "height": 740})
    await _no_overflow(moderator)
    await screenshot(moderator, "moderator-platform-phone")
    await moderator.context.close()


async def test_a_platform_admin_creates_a_project_from_the_console(
    browser, server, world, http, pool, password_hash, screenshot, axe,
):
    root = await accounts.create_user(pool, username=f"root-{secrets.token_hex(4)}", display_name="Platform Admin",
                                      password_hash=password_hash, platform_role="admin")
    page = await open_page(browser, server.port, root)
    await page.wait_for_function("location.hash === '#/platform'")
    await page.wait_for_selector("[data-testid=platform] h1:has-text('Projects console')")
    await page.wait_for_selector(f'[data-testid=projects] [data-project="{world.space_id}"]')
    slug = f"river-{secrets.token_hex(3)}"
    await page.click("[data-action=create]")
    box = page.locator("[data-testid=create-dialog]")
    await box.wait_for()
    await box.locator("#field-name").fill("Rivers of Europe")
    await box.locator("#field-slug").fill(slug)
    await box.locator("#field-description").fill("Two classes measure their rivers")
    await box.locator("#field-admin").fill(world.users["teacher_member"].username)
    await axe(page, "the new project dialog")
    await box.locator("[data-action=confirm]").click()
    made = page.locator(f'[data-testid=projects] [data-slug="{slug}"]')
    await made.wait_for()
    assert "Rivers of Europe" in await made.text_content() and "Teacher Member" in await made.text_content()
    listed = (await http.get("/api/admin/spaces", headers=await _auth(http, root))).json()["projects"]
    assert listed[0]["slug"] == slug and listed[0]["teacher_admins"][0]["id"] == world.users["teacher_member"].id
    await screenshot(page, "admin-platform")
    await axe(page, "the projects console")
    await page.set_viewport_size({"width": 360, "height": 740})
    await _no_overflow(page)
    await page.context.close()


async def test_a_pupil_sees_no_moderation_and_the_server_refuses_pupils_and_teacher_members(browser, server, world, http):
    page = await open_page(browser, server.port, world.users["pupil_member"])
    await page.wait_for_selector("nav [data-testid=nav-feed]")
    assert await page.locator("[data-testid=nav-moderation], [data-testid=nav-platform]").count() == 0
    await page.evaluate(f"location.hash = '#/moderation/{world.space_id}'")  # typed by hand
    await page.wait_for_selector("[data-testid=home]")  # sent to Start instead
    assert await page.evaluate("location.hash") == "#/home"
    await page.evaluate("location.hash = '#/platform'")
    for _ in range(50):  # the router puts Start back in the address
        if await page.evaluate("location.hash") == "#/home":
            break
        await page.wait_for_timeout(100)
    assert await page.evaluate("location.hash") == "#/home"
    assert await page.locator("[data-testid=platform]").count() == 0
    await page.context.close()
    pupil = await _auth(http, world.users["pupil_member"])
    r = await http.get(f"/api/spaces/{world.space_id}/reports?status=open", headers=pupil)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    teacher = await _auth(http, world.users["teacher_member"])
    r = await http.get(f"/api/spaces/{world.space_id}/mutes", headers=teacher)
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
    assert re.match(r"^4\d\d$", str((await http.get("/api/moderation/spaces", headers=teacher)).status_code))
