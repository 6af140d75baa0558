"""A room's states in a real Chromium against a real server: a room deleted under its readers
sends them back to Start saying so; the message box's place says why there is none — the room
archived, the project closed, a mute and until when — and a half-typed message survives all of
them; messages are compact, their actions shown for the one under the pointer or holding the
keyboard's focus (behind one "⋯" button on a touch screen); the room's mute is the moderation
screen's dialog, offering only where the member writes; and a platform moderator, in no project,
opens a reported message in its room from the report."""

from __future__ import annotations

import json

import httpx

from protocol import Delete, Post, Report, ReportMail, SendMail
from realtime.policy import Area
from tests.browser.pages import message, open_page, open_room, send
from tests.client import Client
from tests.conftest import PASSWORD, login


async def _auth(server, user) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        return {"authorization": f"Bearer {await login(http, user.username)}"}


async def _call(server, user, method: str, path: str, body=None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        return await http.request(method, path, json=body, headers=await _auth(server, user))


async def _client(server, user) -> Client:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as http:
        token = await login(http, user.username)
    return await Client.connect(f"ws://127.0.0.1:{server.port}/ws", token)


async def _phone(browser, server, user):
    context = await browser.new_context(viewport={"width": 360, "height": 740}, locale="en-GB", is_mobile=True, has_touch=True)
    page = await context.new_page()
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.fill("#username", user.username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    return page


NOTICE = "[data-testid=composer-area] [data-testid=readonly]"


async def test_a_room_deleted_under_its_readers_sends_them_back_to_start(browser, server, world, screenshot, axe):
    admin = world.users["teacher_admin"]
    made = await _call(server, admin, "POST", f"/api/spaces/{world.space_id}/rooms", {"area": "activities", "name": "Old group work"})
    assert made.status_code == 201, made.text
    room = made.json()
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await pupil.wait_for_selector(f'nav [data-channel="{room["channel"]}"]')
    await open_room(pupil, room["channel"])
    assert (await _call(server, admin, "DELETE", f"/api/spaces/{world.space_id}/rooms/{room['id']}")).status_code == 200

    await pupil.wait_for_function("() => location.hash === '#/home'")
    await pupil.wait_for_selector("[data-testid=toasts] p:has-text('This room was deleted')")
    assert "Old group work" in await pupil.text_content("[data-testid=toasts]")
    assert await pupil.locator("[data-testid=room]").count() == 0  # no dead screen left behind
    assert await pupil.locator(f'nav [data-channel="{room["channel"]}"]').count() == 0
    assert "not allowed" not in await pupil.text_content("main")
    await screenshot(pupil, "pupil-room-deleted")
    await axe(pupil, "Start after the open room was deleted")
    # The server refuses the room to everyone now, as one that never existed.
    writer = await _client(server, world.users["pupil_member"])
    assert (await writer.error(Post(room["channel"], "still there?"))).code == "not_found"
    await writer.close()
    await pupil.context.close()


async def test_why_there_is_no_message_box_and_the_half_typed_message_kept(browser, server, world, screenshot, axe):
    chat, admin = world.channel(Area.CHAT), world.users["teacher_admin"]
    base = f"/api/spaces/{world.space_id}"
    pupil = await open_page(browser, server.port, world.users["pupil_member"])
    await open_room(pupil, chat)
    await pupil.fill("#composer", "We measured the river and")
    await pupil.focus("#composer")

    # Archived while she types: the box's place says so; her words are kept.
    assert (await _call(server, admin, "POST", f"{base}/rooms/{world.rooms[Area.CHAT]}/archive")).status_code == 200
    notice = pupil.locator(NOTICE)
    await pupil.wait_for_selector(f"{NOTICE}[data-state=archived]")
    text = await notice.text_content()
    assert "A teacher archived this room" in text and "still read it" in text
    assert "can read this room but not write" not in text
    assert "What you had started to write is kept" in text
    assert await pupil.locator("#composer").count() == 0
    assert await pupil.locator("[data-testid=room-archived]").text_content() == "archived"
    assert await notice.evaluate("el => document.activeElement === el")  # the focus was in the box: it is on why
    await screenshot(pupil, "pupil-room-archived")
    await axe(pupil, "an archived room")
    await pupil.set_viewport_size({"width": 360, "height": 740})
    assert await pupil.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    await screenshot(pupil, "pupil-room-archived-phone")
    await pupil.set_viewport_size({"width": 1280, "height": 720})
    writer = await _client(server, world.users["pupil_member"])
    assert (await writer.error(Post(chat, "let me"))).code == "room_archived"  # the server refuses anyway
    # Unarchived: the box comes back with her words.
    assert (await _call(server, admin, "POST", f"{base}/rooms/{world.rooms[Area.CHAT]}/unarchive")).status_code == 200
    await pupil.wait_for_selector("#composer")
    assert await pupil.input_value("#composer") == "We measured the river and"

    # The project closed: said so; reopened: the words again, and they go out.
    assert (await _call(server, admin, "POST", f"{base}/close")).status_code == 200
    await pupil.wait_for_selector(f"{NOTICE}[data-state=closed]")
    assert "This project is closed" in await notice.text_content()
    assert "What you had started to write is kept" in await notice.text_content()
    assert (await writer.error(Post(chat, "let me"))).code == "space_closed"
    await screenshot(pupil, "pupil-room-project-closed")
    assert (await _call(server, admin, "POST", f"{base}/reopen")).status_code == 200
    await pupil.wait_for_selector("#composer")
    assert await pupil.input_value("#composer") == "We measured the river and"
    await pupil.press("#composer", "End")
    await pupil.type("#composer", " it was cold")
    await pupil.press("#composer", "Enter")
    await message(pupil, "We measured the river and it was cold").wait_for()
    await writer.close()
    await pupil.context.close()


async def test_a_muted_pupil_is_told_until_when_before_writing(browser, server, world, screenshot, axe):
    chat, admin, who = world.channel(Area.CHAT), world.users["teacher_admin"], world.users["pupil_member"]
    base = f"/api/spaces/{world.space_id}/mutes"
    pupil = await open_page(browser, server.port, who)
    await open_room(pupil, chat)
    await pupil.fill("#composer", "I was only joking")
    made = await _call(server, admin, "POST", base, {"user_id": who.id, "scope": "chat", "minutes": 15, "reason": "shouting"})
    assert made.status_code == 201, made.text
    # The welcome says it at once: no message box to type into and be refused.
    await pupil.wait_for_selector(f"{NOTICE}[data-state=muted]")
    text = await pupil.text_content(NOTICE)
    until = await pupil.evaluate("iso => new Date(iso).toLocaleString('en-GB', {dateStyle: 'medium', timeStyle: 'short'})", made.json()["until"])
    assert f"You are muted here until {until}" in text and "What you had started to write is kept" in text
    assert await pupil.locator("#composer").count() == 0
    await screenshot(pupil, "pupil-room-muted")
    await axe(pupil, "a room where the pupil is muted")
    # Elsewhere she writes as ever: the mute is the chat's.
    await open_room(pupil, world.channel(Area.PUPILS_CORNER))
    await pupil.wait_for_selector("#composer")
    await open_room(pupil, chat)
    await pupil.wait_for_selector(f"{NOTICE}[data-state=muted]")
    # Lifted: the box again, with her words.
    assert (await _call(server, admin, "DELETE", f"{base}/{who.id}/chat")).status_code == 200
    await pupil.wait_for_selector("#composer")
    assert await pupil.input_value("#composer") == "I was only joking"
    await pupil.context.close()


async def test_a_post_refused_as_muted_gives_the_words_back_and_the_box_at_the_end(browser, server, world):
    """A server whose welcome does not list mutes (or a mute the page had not heard of yet): the
    refusal says until when; the box comes back then, with the words."""
    chat, admin, who = world.channel(Area.CHAT), world.users["teacher_admin"], world.users["pupil_member"]
    context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="en-GB")
    page = await context.new_page()
    await page.clock.install()

    def without_mutes(ws):
        server_side = ws.connect_to_server()

        def down(raw):
            frames = json.loads(raw)
            for frame in frames:
                for space in frame.get("spaces", []) if frame.get("type") == "welcome" else []:
                    space.pop("mutes", None)
            ws.send(json.dumps(frames))

        server_side.on_message(down)

    await page.route_web_socket("**/ws", without_mutes)
    await page.goto(f"http://127.0.0.1:{server.port}/")
    await page.fill("#username", who.username)
    await page.fill("#password", PASSWORD)
    await page.press("#password", "Enter")
    await page.wait_for_selector('[data-testid=status][data-state="online"]')
    await open_room(page, chat)
    made = await _call(server, admin, "POST", f"/api/spaces/{world.space_id}/mutes", {"user_id": who.id, "scope": "all", "minutes": 1})
    assert made.status_code == 201, made.text
    await page.wait_for_timeout(500)
    assert await page.locator("#composer").count() == 1  # this page was not told
    await send(page, "are you there?")
    await page.wait_for_selector(f"{NOTICE}[data-state=muted]")
    assert "You are muted here until" in await page.text_content(NOTICE)
    assert "What you had started to write is kept" in await page.text_content(NOTICE)
    assert await message(page, "are you there?").count() == 0
    # At the mute's end the box is back, with the words.
    await page.clock.fast_forward("01:05")
    await page.wait_for_selector("#composer")
    assert await page.input_value("#composer") == "are you there?"
    await context.close()


async def test_messages_are_compact_and_their_actions_come_on_demand(browser, server, world, screenshot, axe):
    chat = world.channel(Area.CHAT)
    pupil = await _client(server, world.users["pupil_member"])
    for text in ("first line", "second line", "third line"):
        await pupil.ok(Post(chat, text))
    gone = (await pupil.ok(Post(chat, "taken back"))).data["id"]
    await pupil.ok(Delete(chat, gone))
    colleague = await _client(server, world.users["teacher_member"])
    await colleague.ok(Post(chat, "a teacher's line"))
    admin = await open_page(browser, server.port, world.users["teacher_admin"])
    await open_room(admin, chat)
    await message(admin, "a teacher's line").wait_for()
    first = message(admin, "first line")

    # One line for who and when, one for the words: no row of buttons under each message.
    box = await first.bounding_box()
    assert box and box["height"] < 70, box
    toolbar = first.locator("[data-testid=actions]")
    opacity = "el => getComputedStyle(el).opacity"
    assert await toolbar.evaluate(opacity) == "0"
    await first.hover()
    assert await toolbar.evaluate(opacity) == "1"
    assert [await b.text_content() for b in await toolbar.locator("button").all()] == ["Report", "Hide", "Delete", "Mute…"]
    await screenshot(admin, "teacher_admin-chat-actions-on-hover")
    await admin.mouse.move(5, 5)
    assert await toolbar.evaluate(opacity) == "0"
    # No mute on a deleted message (nothing left to answer for), nor for a teacher.
    deleted = admin.locator(f'[data-testid=messages] .message[data-id="{gone}"]')
    assert await deleted.locator("[data-action=mute]").count() == 0
    assert await message(admin, "a teacher's line").locator("[data-action=mute]").count() == 0

    # The keyboard: Tab into the list's first message shows its actions, one stop each.
    await admin.focus("[data-testid=messages]")
    reached = []
    for _ in range(5):
        await admin.keyboard.press("Tab")
        reached.append(await admin.evaluate(
            "() => { const b = document.activeElement; const m = b.closest('.message');"
            " return [m && m.querySelector('.text')?.textContent, b.dataset.action, getComputedStyle(b.closest('.actions')).opacity]; }"))
    assert reached == [["first line", a, "1"] for a in ("report", "hide", "delete", "mute")] + [["second line", "report", "1"]]
    assert await toolbar.evaluate(opacity) == "0"  # the focus moved on
    await screenshot(admin, "teacher_admin-chat-actions-keyboard")
    await axe(admin, "a chat room with the actions of the focused message")
    await admin.keyboard.press("Shift+Tab")
    await admin.keyboard.press("Enter")  # Mute…, from the keyboard

    # The moderation screen's dialog: how long, where — where a pupil writes, and the whole project.
    dialog = admin.locator("[data-testid=mute-dialog]")
    await dialog.wait_for()
    lengths = await dialog.locator("select[name=minutes] option").evaluate_all("os => os.map(o => o.value)")
    assert lengths == ["15", "60", "1440", "10080"]
    scopes = await dialog.locator("select[name=scope] option").evaluate_all("os => os.map(o => o.value)")
    assert scopes == ["home", "activities", "pupils_corner", "chat", "all"]  # no teachers' room, no mail
    assert await dialog.locator("select[name=scope]").input_value() == "chat"
    await screenshot(admin, "teacher_admin-chat-mute-dialog")
    await axe(admin, "the room's mute dialog")
    await dialog.locator("select[name=minutes]").select_option("60")
    await dialog.locator("textarea").fill("shouting")
    await dialog.locator("[data-action=confirm]").click()
    await admin.wait_for_selector("[data-testid=toasts] p:has-text('is muted until')")
    listed = (await _call(server, world.users["teacher_admin"], "GET", f"/api/spaces/{world.space_id}/mutes")).json()["mutes"]
    assert [(m["user"]["id"], m["scope"], m["reason"]) for m in listed] == [(world.users["pupil_member"].id, "chat", "shouting")]
    # A pupil has no moderation actions, and the server refuses her a mute anyway.
    assert (await _call(server, world.users["pupil_admin"], "POST", f"/api/spaces/{world.space_id}/mutes",
                        {"user_id": world.users["pupil_member"].id, "scope": "chat", "minutes": 15})).status_code == 403
    for client in (pupil, colleague):
        await client.close()
    await admin.context.close()


async def test_on_a_touch_screen_each_message_opens_its_actions(browser, server, world, screenshot, axe):
    chat = world.channel(Area.CHAT)
    writer = await _client(server, world.users["pupil_admin"])
    await writer.ok(Post(chat, "look at our photos https://example.org/photos"))
    page = await _phone(browser, server, world.users["pupil_member"])
    await open_room(page, chat)
    await send(page, "my own line")
    mine = message(page, "my own line")
    await mine.locator("[data-testid=more]").wait_for()
    other = message(page, "look at our photos")
    more = other.locator("[data-testid=more]")
    assert await more.get_attribute("aria-expanded") == "false"
    assert "What to do with the message by" in await more.get_attribute("aria-label")
    assert not await other.locator("[data-action=report]").is_visible()
    size = await more.bounding_box()
    assert size and size["height"] >= 44 and size["width"] >= 44
    await more.tap()
    assert await more.get_attribute("aria-expanded") == "true"
    report = other.locator("[data-action=report]")
    assert await report.is_visible()
    box = await report.bounding_box()
    assert box and box["height"] >= 44
    await mine.locator("[data-testid=more]").tap()
    for action in ("edit", "delete"):
        box = await mine.locator(f"[data-action={action}]").bounding_box()
        assert box and box["height"] >= 44, action
    assert await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    await screenshot(page, "pupil-chat-phone-actions")
    await axe(page, "a chat room on a phone, a message's actions open")
    await more.tap()
    assert await more.get_attribute("aria-expanded") == "false" and not await report.is_visible()
    await writer.close()
    await page.context.close()


async def test_a_platform_moderator_goes_from_a_report_to_the_message_in_its_room(browser, server, world, screenshot, axe):
    corner = world.channel(Area.PUPILS_CORNER)
    author = await _client(server, world.users["pupil_member"])
    for i in range(5):
        await author.ok(Post(corner, f"before {i}"))
    said = (await author.ok(Post(corner, "you smell"))).data["id"]
    await author.ok(Post(corner, "after it"))
    classmate = await _client(server, world.users["pupil_admin"])
    reported = (await classmate.ok(Report(corner, said, "mean"))).data["report"]
    # A mail report on the same queue: it has no message to go to (and its card draws as ever).
    sent = await author.ok(SendMail(world.space_id, (world.users["pupil_admin"].id,), "not my friend", subject="Saturday"))
    mail_report = (await classmate.ok(ReportMail(sent.data["id"], "sad"))).data["report"]

    moderator = await open_page(browser, server.port, world.users["moderator"])
    await moderator.wait_for_function("() => location.hash === '#/platform'")
    card = moderator.locator(f'[data-testid=reports] [data-report="{reported}"]', has_text="you smell")
    await card.wait_for()
    mail_card = moderator.locator(f'[data-testid=reports] [data-report="{mail_report}"]')
    await mail_card.wait_for()
    assert await mail_card.locator("[data-action=goto]").count() == 0
    await card.locator("[data-action=goto]").click()  # was not offered to platform moderators
    await moderator.wait_for_function(f"() => location.hash === '#/room/{world.rooms[Area.PUPILS_CORNER]}/message/{said}'")
    target = moderator.locator(f'[data-testid=messages] .message[data-id="{said}"]')
    await target.wait_for()
    assert "highlight" in await target.get_attribute("class")
    await moderator.wait_for_selector("[data-testid=room] h1:has-text('pupils_corner')")
    assert f"Project {world.slug[2:]}" in await moderator.text_content("[data-testid=room-project]")
    assert "As a platform moderator you read this room" in await moderator.text_content(NOTICE)
    assert await moderator.locator("#composer").count() == 0
    assert await message(moderator, "before 0").count() == 1 and await message(moderator, "after it").count() == 1
    assert await target.evaluate("el => document.activeElement === el")
    actions = [await b.get_attribute("data-action") for b in await target.locator("[data-testid=actions] button").all()]
    assert actions == ["report", "hide", "delete", "mute"]
    await screenshot(moderator, "moderator-room-at-a-reported-message")
    await axe(moderator, "a platform moderator in a room, at a reported message")

    await target.locator("[data-action=hide]").click()
    box = moderator.locator("dialog[open]")
    await box.locator("textarea").fill("unkind")
    await box.locator("[data-action=confirm]").click()
    await moderator.wait_for_selector(f'[data-testid=messages] .message[data-id="{said}"][data-state=hidden]')
    page = (await _call(server, world.users["pupil_admin"], "GET", f"/api/rooms/{world.rooms[Area.PUPILS_CORNER]}/messages?around={said}")).json()
    assert next(m for m in page["messages"] if m["id"] == said)["state"] == "hidden"
    # The mute dialog from here: where a pupil writes, in every area (a platform moderator moderates all).
    await target.locator("[data-action=mute]").click()
    dialog = moderator.locator("[data-testid=mute-dialog]")
    scopes = await dialog.locator("select[name=scope] option").evaluate_all("os => os.map(o => o.value)")
    assert scopes == ["home", "activities", "pupils_corner", "chat", "all"]
    assert await dialog.locator("select[name=scope]").input_value() == "pupils_corner"
    await dialog.locator("[data-action=cancel]").click()
    await moderator.set_viewport_size({"width": 360, "height": 740})
    assert await moderator.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    await screenshot(moderator, "moderator-room-phone")

    # Anyone else following such a link lands on Start: no room of another project opens.
    outsider = await open_page(browser, server.port, world.users["outsider"])
    await outsider.goto(f"http://127.0.0.1:{server.port}/#/room/{world.rooms[Area.PUPILS_CORNER]}/message/{said}")
    await outsider.wait_for_selector('[data-testid=status][data-state="online"]')
    await outsider.wait_for_function("() => location.hash === '#/home'")
    assert await outsider.locator("[data-testid=room]").count() == 0
    for client in (author, classmate):
        await client.close()
    for page_ in (moderator, outsider):
        await page_.context.close()
